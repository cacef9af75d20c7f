/* httpd: see httpd.h. This file holds the public API, the routes, the listener and the call
 * accessors and replies; the connections (request intake, responses, timeouts) are in
 * httpd_conn.c, the head parser in httpparse.c and the pure text helpers in httpd_req.c.
 *
 * Lifetime. h is refcounted under h->mtx: the owner, each connection and each call handed to
 * a handler hold one, so a late reply (after a timeout or httpd_free) still finds h and is
 * discarded. httpd_free closes the listener and every connection and waits until the accept
 * loop and all connections are gone, so no handler runs after it returns. */
#include "httpd.h"
#include "httpd_int.h"
#include "httpd_req.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

static int errno_from_nng(int rv)
{
	switch (rv) {
	case 0: return 0;
	case NNG_ENOMEM: return -ENOMEM;
	case NNG_EADDRINUSE: return -EADDRINUSE;
	case NNG_EADDRINVAL: return -EADDRNOTAVAIL;
	case NNG_EPERM: return -EACCES;
	case NNG_EINVAL: return -EINVAL;
	default: return -EIO;
	}
}

void httpd_unref(struct httpd *h)
{
	pthread_mutex_lock(&h->mtx);
	bool last = --h->refs == 0;
	pthread_mutex_unlock(&h->mtx);
	if (!last)
		return;
	pthread_cond_destroy(&h->idle);
	pthread_mutex_destroy(&h->mtx);
	free(h->token);
	free(h->server_name);
	free(h);
}

struct httpd_call *httpd_call_free_(struct httpd_call *c)
{
	if (!c)
		return NULL;
	struct httpd *h = c->h;
	httpd_call_discard_(c);
	httpd_unref(h);
	return NULL;
}

struct httpd_call *httpd_call_new_(struct httpd *h, const char *in, const struct httpparse_req *pr)
{
	struct httpd_call *call = calloc(1, sizeof(*call));
	if (!call || !(call->head = malloc(pr->head_len + 1))) {
		free(call);
		return NULL;
	}
	call->h = h;
	call->req = *pr;
	memcpy(call->method, pr->method, sizeof(call->method));
	memcpy(call->head, in, pr->head_len);
	call->head[pr->head_len] = '\0';
	/* each value and the target are followed by CR, LF, SP or HT inside the head */
	for (unsigned i = 0; i < pr->nfields; i++)
		call->head[pr->fields[i].value_off + pr->fields[i].value_len] = '\0';
	call->head[pr->target_off + pr->target_len] = '\0';
	call->http10 = pr->minor == 0;
	size_t n;
	const char *conn = httpparse_field(pr, call->head, "Connection", &n);
	call->keep_alive = call->http10 ? conn && httpparse_has_token(conn, n, "keep-alive")
					: !conn || !httpparse_has_token(conn, n, "close");
	call->head_only = strcmp(call->method, "HEAD") == 0;
	return call;
}

void httpd_call_discard_(struct httpd_call *c)
{
	free(c->path);
	free(c->query);
	free(c->head);
	free(c->body);
	free(c);
}

void httpd_count_status_locked(struct httpd *h, int status)
{
	int cls = status / 100;
	if (cls >= 1 && cls <= 5)
		h->stats.by_class[cls]++;
}

/* ---- routes -------------------------------------------------------------------------- */

static bool route_matches(const struct httpd_route *r, const char *path)
{
	if (strncmp(path, r->path, r->path_len) != 0)
		return false;
	if (path[r->path_len] == '\0')
		return true;
	return (r->flags & HTTPD_PREFIX) &&
	       (path[r->path_len] == '/' || (r->path_len > 0 && r->path[r->path_len - 1] == '/'));
}

const struct httpd_route *httpd_route_find_locked(const struct httpd *h, const char *method,
						  const char *path, char *allow, size_t size)
{
	const struct httpd_route *best = NULL, *get = NULL;
	bool head = strcmp(method, "HEAD") == 0;
	allow[0] = '\0';
	for (unsigned i = 0; i < h->nroutes; i++) {
		const struct httpd_route *r = &h->routes[i];
		if (!route_matches(r, path))
			continue;
		if (!strstr(allow, r->method)) { /* methods are whole upper-case tokens */
			size_t n = strlen(allow);
			snprintf(allow + n, size - n, "%s%s%s", n ? ", " : "", r->method,
				 strcmp(r->method, "GET") == 0 ? ", HEAD" : "");
		}
		if (strcmp(r->method, method) == 0 && (!best || r->path_len > best->path_len))
			best = r;
		if (head && strcmp(r->method, "GET") == 0 && (!get || r->path_len > get->path_len))
			get = r;
	}
	return best ? best : get;
}

int httpd_route(struct httpd *h, const char *method, const char *path, unsigned flags,
		httpd_handler_fn fn, void *arg)
{
	if (!h || !method || !path || !fn || path[0] != '/' || strlen(path) >= HTTPD_MAX_PATH ||
	    !method[0] || strlen(method) >= sizeof(h->routes[0].method) ||
	    strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(method) ||
	    (flags & ~(HTTPD_PUBLIC | HTTPD_PREFIX)))
		return -EINVAL;
	int rv = 0;
	pthread_mutex_lock(&h->mtx);
	for (unsigned i = 0; i < h->nroutes; i++)
		if (strcmp(h->routes[i].method, method) == 0 && strcmp(h->routes[i].path, path) == 0)
			rv = -EEXIST;
	if (rv == 0 && h->nroutes == HTTPD_MAX_ROUTES)
		rv = -ENOSPC;
	if (rv == 0) {
		struct httpd_route *r = &h->routes[h->nroutes++];
		snprintf(r->method, sizeof(r->method), "%s", method);
		snprintf(r->path, sizeof(r->path), "%s", path);
		r->path_len = strlen(path);
		r->flags = flags;
		r->fn = fn;
		r->arg = arg;
	}
	pthread_mutex_unlock(&h->mtx);
	return rv;
}

/* ---- listener ------------------------------------------------------------------------ */

/* The accept loop: one accept outstanding at a time. A failed accept (EMFILE, ENFILE, ENOMEM,
 * ECONNABORTED) waits HTTPD_ACCEPT_RETRY_MS on the same aio before the next try: retrying at
 * once spins a core while the condition lasts. */
static void on_accept(void *arg)
{
	struct httpd *h = arg;
	int rv = nng_aio_result(h->accept_aio);
	nng_stream *s = NULL;

	pthread_mutex_lock(&h->mtx);
	bool slept = h->accept_sleeping;
	h->accept_sleeping = false;
	if (!slept && rv == 0) {
		s = nng_aio_get_output(h->accept_aio, 0);
		if (!h->stopping && httpd_conn_new_locked(h, s) == 0)
			s = NULL; /* else refused: closed below (counted in conn_rejects) */
	}
	if (h->stopping || (!slept && rv == NNG_ECLOSED)) {
		h->accepting = false;
		pthread_cond_broadcast(&h->idle);
	} else if (!slept && rv != 0) {
		ms_debug("HTTPD-ACCEPT", "accept failed: %s; retrying in %u ms", nng_strerror(rv),
			 HTTPD_ACCEPT_RETRY_MS);
		h->accept_sleeping = true;
		nng_sleep_aio(HTTPD_ACCEPT_RETRY_MS, h->accept_aio);
	} else {
		nng_stream_listener_accept(h->lst, h->accept_aio);
	}
	pthread_mutex_unlock(&h->mtx);
	if (s)
		nng_stream_free(s);
}

/* Resolves address into an nng tcp URL; literal addresses pass through getaddrinfo. */
static int make_url(const char *address, uint16_t port, char *url, size_t size)
{
	char host[256], ip[INET6_ADDRSTRLEN];
	size_t len = strlen(address);
	if (len >= 2 && address[0] == '[' && address[len - 1] == ']') {
		address++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(host))
		return -EINVAL;
	memcpy(host, address, len);
	host[len] = '\0';
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	if (getaddrinfo(host, NULL, &hints, &ai) != 0)
		return -EADDRNOTAVAIL;
	const void *addr = ai->ai_family == AF_INET6 ?
		(const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr :
		(const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
	bool v6 = ai->ai_family == AF_INET6;
	bool ok = (ai->ai_family == AF_INET || v6) && inet_ntop(ai->ai_family, addr, ip, sizeof(ip));
	freeaddrinfo(ai);
	if (!ok)
		return -EADDRNOTAVAIL;
	snprintf(url, size, v6 ? "tcp://[%s]:%u" : "tcp://%s:%u", ip, (unsigned)port);
	return 0;
}

static int start_listener(struct httpd *h, const char *address, uint16_t port)
{
	char url[300];
	int bound = 0;
	int rv = make_url(address, port, url, sizeof(url));
	if (rv < 0)
		return rv;
	if ((rv = nng_stream_listener_alloc(&h->lst, url)) != 0) {
		h->lst = NULL;
		return errno_from_nng(rv);
	}
	if ((rv = nng_stream_listener_listen(h->lst)) != 0 ||
	    (rv = nng_stream_listener_get_int(h->lst, NNG_OPT_TCP_BOUND_PORT, &bound)) != 0 ||
	    (rv = nng_aio_alloc(&h->accept_aio, on_accept, h)) != 0)
		return errno_from_nng(rv);
	h->port = (uint16_t)bound;
	h->accepting = true;
	nng_stream_listener_accept(h->lst, h->accept_aio);
	return 0;
}

/* ---- public API ---------------------------------------------------------------------- */

int httpd_new(const char *address, uint16_t port, const struct httpd_opts *opts,
	      struct httpd **ret_httpd)
{
	if (!address || !ret_httpd)
		return -EINVAL;
	struct httpd_opts o = opts ? *opts : (struct httpd_opts){ 0 };
	struct httpd *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	pthread_mutex_init(&h->mtx, NULL);
	pthread_cond_init(&h->idle, NULL);
	h->refs = 1;
	h->max_body = o.max_body_bytes ? o.max_body_bytes : HTTPD_DEFAULT_MAX_BODY;
	h->reply_timeout_ms = o.reply_timeout_ms ? o.reply_timeout_ms : HTTPD_DEFAULT_REPLY_TIMEOUT_MS;
	h->idle_timeout_ms = o.idle_timeout_ms ? o.idle_timeout_ms : HTTPD_DEFAULT_IDLE_TIMEOUT_MS;
	h->max_pending = o.max_pending ? o.max_pending : HTTPD_DEFAULT_MAX_PENDING;
	h->max_conns = o.max_conns ? o.max_conns : HTTPD_DEFAULT_MAX_CONNS;
	int rv = 0;
	if (h->max_body > HTTPD_MAX_BODY_LIMIT || h->reply_timeout_ms > HTTPD_MAX_REPLY_TIMEOUT_MS ||
	    h->idle_timeout_ms > HTTPD_MAX_REPLY_TIMEOUT_MS || h->max_conns > HTTPD_MAX_CONNS_LIMIT)
		rv = -EINVAL;
	if (rv == 0 && ((o.bearer_token && o.bearer_token[0] && !(h->token = strdup(o.bearer_token))) ||
			(o.server_name && !(h->server_name = strdup(o.server_name)))))
		rv = -ENOMEM;
	if (rv == 0)
		rv = start_listener(h, address, port);
	if (rv < 0) {
		ms_debug("HTTPD-START", "cannot listen on %s:%u: %d", address, (unsigned)port, rv);
		httpd_free(h);
		return rv;
	}
	*ret_httpd = h;
	return 0;
}

struct httpd *httpd_free(struct httpd *h)
{
	if (!h)
		return NULL;
	pthread_mutex_lock(&h->mtx);
	h->stopping = true;
	struct httpd_conn *gone = httpd_conn_close_all_locked(h);
	pthread_mutex_unlock(&h->mtx);
	httpd_conn_free_list(gone);
	if (h->lst)
		nng_stream_listener_close(h->lst); /* the accept aio completes with NNG_ECLOSED */
	if (h->accept_aio)
		nng_aio_cancel(h->accept_aio); /* a retry wait ends at once */
	pthread_mutex_lock(&h->mtx);
	while (h->accepting || h->nlive > 0)
		pthread_cond_wait(&h->idle, &h->mtx);
	pthread_mutex_unlock(&h->mtx);
	nng_aio_free(h->accept_aio); /* NULL-safe; waits for a callback still returning */
	if (h->lst)
		nng_stream_listener_free(h->lst);
	h->accept_aio = NULL;
	h->lst = NULL;
	httpd_unref(h);
	return NULL;
}

uint16_t httpd_port(const struct httpd *h)
{
	return h ? h->port : 0;
}

void httpd_stats(const struct httpd *h, struct httpd_stats *ret_stats)
{
	struct httpd *m = (struct httpd *)h; /* the lock is not part of the logical state */
	pthread_mutex_lock(&m->mtx);
	*ret_stats = h->stats;
	pthread_mutex_unlock(&m->mtx);
}

/* ---- calls --------------------------------------------------------------------------- */

const char *httpd_call_method(const struct httpd_call *c)
{
	return c->method;
}

const char *httpd_call_path(const struct httpd_call *c)
{
	return c->path;
}

const char *httpd_call_query(const struct httpd_call *c)
{
	return c->query;
}

const void *httpd_call_body(const struct httpd_call *c, size_t *ret_len)
{
	if (ret_len)
		*ret_len = c->body_len;
	return c->body;
}

const char *httpd_call_header(struct httpd_call *c, const char *name)
{
	/* the head copy is immutable once the call is handed over: no lock */
	return name ? httpparse_field(&c->req, c->head, name, NULL) : NULL;
}

void httpd_call_reply(struct httpd_call *c, int status, const char *content_type,
		      const void *body, size_t len)
{
	struct httpd *h = c->h;
	pthread_mutex_lock(&h->mtx);
	if (c->done || !c->conn)
		h->stats.late_replies++;
	else
		httpd_conn_reply_locked(c, status, content_type, body ? body : "", body ? len : 0);
	pthread_mutex_unlock(&h->mtx);
	httpd_call_free_(c);
}

void httpd_call_reply_error(struct httpd_call *c, int status, const char *reason)
{
	char *body = NULL;
	size_t len = 0;
	(void)httpd_req_error_body(status, reason, &body, &len); /* on ENOMEM an empty body still answers */
	httpd_call_reply(c, status, "application/json", body, len);
	free(body);
}
