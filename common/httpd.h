/* httpd: a small HTTP/1.1 server of our own over nng byte streams (nng_stream_listener), for
 * small JSON control APIs and /metrics: exact or prefix routes, optional bearer-token auth, JSON
 * errors (400/401/404/405/408/411/413/414/431/501/503/505...), request bodies up to a bound,
 * keep-alive and pipelining (one request at a time per connection), and replies that may come
 * later from any thread with a reply timeout. It is not a general web server: no TLS, no chunked
 * request bodies, no static files, no HTTP/2.
 * Bounds: the request head (request line + header fields) is at most 16 KiB (HTTPPARSE_MAX_HEAD)
 * and 64 fields (431), the target at most HTTPD_MAX_URI (414), the body max_body_bytes (413).
 * Per connection: the next request's head must arrive within idle_timeout_ms of the connection
 * opening or the previous reply (else it is closed: silently when nothing came, 408 when part
 * of a head came; slowloris is cut there), a body within reply_timeout_ms of its head (408), a
 * reply is written within idle_timeout_ms or the connection is closed. At most max_conns
 * connections are served; a connection beyond that gets one 503 and is closed (counted in
 * conn_rejects); beyond max_conns + 64 it is closed at once. A failed accept (e.g. EMFILE)
 * retries after 100 ms instead of spinning. Every connection is served asynchronously on nng's
 * threads: a slow or idle client never delays others. An error reply that closes the
 * connection (e.g. 413 with the body unread) first drains up to 256 KiB of the request for up
 * to 1 s, so that closing does not reset the connection before the client read the reply.
 * Thread-safety: httpd_new/httpd_free from one thread; httpd_route, httpd_port and httpd_stats
 * from any thread; a call's accessors and its reply from any one thread at a time. Handlers run
 * on nng's callback threads and must not block them: queue the call and reply later. */
#ifndef MS_HTTPD_H
#define MS_HTTPD_H

#include <stddef.h>
#include <stdint.h>

struct httpd;
struct httpd_call;

#define HTTPD_DEFAULT_MAX_BODY (1u << 20)
#define HTTPD_DEFAULT_REPLY_TIMEOUT_MS 5000u
#define HTTPD_DEFAULT_MAX_PENDING 256u
#define HTTPD_DEFAULT_MAX_CONNS 128u
#define HTTPD_DEFAULT_IDLE_TIMEOUT_MS 10000u
#define HTTPD_MAX_CONNS_LIMIT 4096u
#define HTTPD_MAX_ROUTES 64
#define HTTPD_MAX_PATH 256      /* longest route path */
#define HTTPD_MAX_URI 8192      /* longer request targets get 414 */
#define HTTPD_MAX_BODY_LIMIT (1u << 30)          /* largest max_body_bytes accepted */
#define HTTPD_MAX_REPLY_TIMEOUT_MS 86400000u     /* largest reply_timeout_ms accepted (1 day) */

struct httpd_opts {
	size_t max_body_bytes;     /* 0 = HTTPD_DEFAULT_MAX_BODY; larger bodies get 413 */
	const char *bearer_token;  /* NULL or "" = no auth; else non-public routes need
				    * "Authorization: Bearer <token>" (constant-time compare) */
	const char *server_name;   /* value of the Server header; NULL = no header */
	uint32_t reply_timeout_ms; /* 0 = HTTPD_DEFAULT_REPLY_TIMEOUT_MS; then 503 is sent */
	uint32_t max_pending;      /* 0 = HTTPD_DEFAULT_MAX_PENDING calls awaiting a reply;
				    * beyond it new requests get 503 at once */
	uint32_t max_conns;        /* 0 = HTTPD_DEFAULT_MAX_CONNS open connections, at most
				    * HTTPD_MAX_CONNS_LIMIT; beyond it: 503 and close */
	uint32_t idle_timeout_ms;  /* 0 = HTTPD_DEFAULT_IDLE_TIMEOUT_MS: keep-alive idle time and
				    * head read time, at most HTTPD_MAX_REPLY_TIMEOUT_MS */
};

/* Route flags. */
#define HTTPD_PUBLIC (1u << 0) /* no auth even when a bearer token is set (/healthz, /metrics) */
#define HTTPD_PREFIX (1u << 1) /* also matches every path below: "/a" matches "/a/b/c" */

struct httpd_stats {
	uint64_t requests;        /* requests that reached this module */
	uint64_t by_class[6];     /* responses sent by status class: [2] = 2xx ... [5] = 5xx */
	uint64_t auth_failures;   /* 401s */
	uint64_t timeouts;        /* handler did not reply in time (503) or body too slow (408) */
	uint64_t late_replies;    /* replies that came after a timeout or shutdown: discarded */
	uint64_t busy_rejects;    /* 503 because max_pending calls were already waiting */
	uint32_t pending;         /* calls awaiting a reply now */
	uint32_t conns;           /* open connections now */
	uint64_t conn_rejects;    /* connections refused over max_conns (503 or closed at once) */
	uint64_t idle_closes;     /* connections closed by the idle/head read timeout */
};

/* Called on an nng thread with a call that must be answered exactly once (now or later, from
 * any thread) with httpd_call_reply or httpd_call_reply_error. */
typedef void (*httpd_handler_fn)(void *arg, struct httpd_call *call);

/* Starts listening on address:port. address is an IPv4 literal, an IPv6 literal ("::1" or
 * "[::1]") or a host name, resolved here (first result). port 0 picks a free port.
 * Returns 0, -EINVAL (bad arguments or options out of range), -EADDRNOTAVAIL (name does not resolve or the address is
 * not local), -EADDRINUSE, -EACCES or -ENOMEM. */
int httpd_new(const char *address, uint16_t port, const struct httpd_opts *opts,
	      struct httpd **ret_httpd);

/* Stops listening, closes every connection, answers nothing more (pending calls are cancelled:
 * their connections are closed) and releases this module's resources. After it returns no
 * handler runs. A call already handed to a handler stays valid until the handler replies;
 * that reply is discarded. NULL-safe; returns NULL. */
struct httpd *httpd_free(struct httpd *h);

/* The bound port (the real one when httpd_new was given 0). */
uint16_t httpd_port(const struct httpd *h);

/* Adds a route. method is an upper-case token ("GET", "POST"...); GET routes also answer HEAD.
 * path starts with '/'. Several methods may share a path; for a request the longest matching
 * path with a matching method wins. Returns 0, -EINVAL, -EEXIST (same method and path) or
 * -ENOSPC (HTTPD_MAX_ROUTES). */
int httpd_route(struct httpd *h, const char *method, const char *path, unsigned flags,
		httpd_handler_fn fn, void *arg);

void httpd_stats(const struct httpd *h, struct httpd_stats *ret_stats);

/* Call accessors. Strings stay valid until the call is replied to. */
const char *httpd_call_method(const struct httpd_call *c);
const char *httpd_call_path(const struct httpd_call *c);  /* percent-decoded, no query */
const char *httpd_call_query(const struct httpd_call *c); /* raw text after '?', or "" */
/* Header value (case-insensitive name; the first of repeated fields) or NULL. Valid until the
 * call is replied to, also after a timeout or httpd_free. */
const char *httpd_call_header(struct httpd_call *c, const char *name);
/* The request body (NUL-terminated for convenience; len excludes the NUL). */
const void *httpd_call_body(const struct httpd_call *c, size_t *ret_len);

/* Sends status with a copy of body (content_type NULL = "application/json"). Consumes the
 * call: do not touch it afterwards. A reply after a timeout or httpd_free is discarded. */
void httpd_call_reply(struct httpd_call *c, int status, const char *content_type,
		      const void *body, size_t len);
/* Sends {"error":"<status text>","reason":"<reason, JSON-escaped>"} as application/json. */
void httpd_call_reply_error(struct httpd_call *c, int status, const char *reason);

/* Helpers for handlers (also fuzzed). */

/* Looks key up in a raw query string ("a=1&b=x%20y"); decodes %XX and '+' into buf (always
 * NUL-terminated when size > 0). "k" without '=' has the value "". Returns the value length,
 * -ENOENT (absent), -ENOSPC (buf too small) or -EINVAL (bad escape or %00 in the value). */
int httpd_query_get(const char *query, const char *key, char *buf, size_t size);

/* Percent-decodes in[0..len) into out (NUL-terminated). Returns the decoded length, -EINVAL
 * for a malformed escape or %00, -ENOSPC when out is too small. */
int httpd_path_decode(const char *in, size_t len, char *out, size_t size);

#endif
