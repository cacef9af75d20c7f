/* httpd_int: the structures shared by httpd.c (public API, routes, calls and replies) and
 * httpd_conn.c (listener, connections, request intake). Not an API: only those two include it.
 * Thread-safety: every field below is guarded by httpd.mtx unless marked otherwise. */
#ifndef MS_HTTPD_INT_H
#define MS_HTTPD_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "httpd.h"
#include "httpparse.h"

#define HTTPD_REJECT_SLACK 64u        /* rejected connections being answered 503 at once */
#define HTTPD_DRAIN_BYTES (256u << 10) /* unread request discarded before a close */
#define HTTPD_DRAIN_MS 1000u
#define HTTPD_ACCEPT_RETRY_MS 100u

struct httpd_route {
	char method[16];
	char path[HTTPD_MAX_PATH];
	size_t path_len;
	unsigned flags;
	httpd_handler_fn fn;
	void *arg;
};

struct httpd_conn;

struct httpd {
	pthread_mutex_t mtx;
	pthread_cond_t idle;       /* accept loop ended or a connection was freed, while stopping */
	unsigned refs;             /* owner + accept loop + each connection + each handed-out call */
	bool stopping;
	bool accepting;            /* the accept aio has an operation or callback outstanding */
	bool accept_sleeping;      /* the accept aio waits out an accept failure */
	nng_stream_listener *lst;  /* set before start, then read-only */
	nng_aio *accept_aio;
	uint16_t port;
	size_t max_body;
	uint32_t reply_timeout_ms;
	uint32_t idle_timeout_ms;
	uint32_t max_pending;
	uint32_t max_conns;
	char *token;               /* NULL = no auth */
	char *server_name;
	struct httpd_route routes[HTTPD_MAX_ROUTES];
	unsigned nroutes;
	struct httpd_conn *conns;  /* every connection not yet closed and idle, doubly linked */
	unsigned nlive;            /* connections not yet through conn_free (httpd_free waits) */
	struct httpd_stats stats;
};

/* A request. Owned by its connection until handed to the handler, then by the handler until
 * httpd_call_reply frees it. Its text (head copy, path, query, body) is immutable once handed
 * over, so accessors need no lock. */
struct httpd_call {
	struct httpd *h;
	struct httpd_conn *conn;   /* NULL once answered, timed out or its connection closed */
	bool done;                 /* no reply may be sent for it any more */
	bool counted;              /* in stats.pending */
	uint64_t seq;              /* which request of the connection (reply timer matching) */
	char method[HTTPPARSE_MAX_METHOD + 1];
	char *path;
	char *query;
	char *head;                /* copy of the request head, field values NUL-terminated */
	struct httpparse_req req;  /* offsets into head */
	char *body;
	size_t body_len, body_got;
	httpd_handler_fn fn;
	void *arg;
	bool keep_alive;
	bool http10;
	bool head_only;            /* HEAD request: no body in the reply */
};

/* httpd.c */
void httpd_unref(struct httpd *h);
/* A call from the parsed head at in[0..pr->head_len): the head is copied with field values and
 * the target NUL-terminated; keep-alive and HEAD are worked out. NULL when out of memory. */
struct httpd_call *httpd_call_new_(struct httpd *h, const char *in, const struct httpparse_req *pr);
/* Frees a call never handed out (it holds no ref on h). */
void httpd_call_discard_(struct httpd_call *c);
/* Frees a handed-out call and drops its ref on h. Returns NULL. */
struct httpd_call *httpd_call_free_(struct httpd_call *c);
void httpd_count_status_locked(struct httpd *h, int status);
const struct httpd_route *httpd_route_find_locked(const struct httpd *h, const char *method,
						  const char *path, char *allow, size_t size);

/* httpd_conn.c */
/* Takes over an accepted stream. h->mtx held. 0, or -EBUSY (far over max_conns) / -ENOMEM:
 * the caller still owns s. */
int httpd_conn_new_locked(struct httpd *h, nng_stream *s);
/* Closes every connection; returns those already free of I/O (unlinked) for
 * httpd_conn_free_list outside the lock; the others free themselves. h->mtx held. */
struct httpd_conn *httpd_conn_close_all_locked(struct httpd *h);
void httpd_conn_free_list(struct httpd_conn *list);
/* Sends the reply of call c (not done, c->conn set) and ends the call. h->mtx held. */
void httpd_conn_reply_locked(struct httpd_call *c, int status, const char *ctype,
			     const void *body, size_t len);

#endif
