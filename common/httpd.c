/* httpd: see httpd.h.
 *
 * nng routing is bypassed: one catch-all handler ("/", any method, tree, no body collection)
 * receives every request, so 404/405/401/413 are ours and JSON. nng would answer an oversized
 * Content-Length with its own 400 HTML page, so bodies are read here with
 * nng_http_conn_read_all after the length was checked.
 *
 * Ownership. nng hands each request over as an aio that must be finished exactly once; until
 * then nng keeps the request and the connection alive. A call is "open" (in h->pending) while
 * that aio is unfinished. Whoever moves the call to CALL_DONE under h->mtx (reply, timeout or
 * close via the cancel function, a failed body read, httpd_free) finishes the aio, after
 * dropping the lock. The call memory is refcounted (nng side, user side, body read) under
 * h->mtx, so a late reply finds a closed call and is discarded. The cancel function gets h, not
 * the call, and looks the aio up in h->pending: the call may be gone by the time it runs.
 * h itself is refcounted: owner, the nng handler (released by nng once no callback can run any
 * more) and every live call, so late replies and late nng callbacks never see freed memory.
 * While one of our threads is between nng calls on a call's connection (c->busy), a cancel is
 * parked in c->deferred_rv and carried out when busy drops to 0: finishing the aio would let
 * nng free the connection under our feet.
 * The reply timeout is nng's own aio timeout on the request aio (no thread of ours). */
#include "httpd.h"
#include "httpd_req.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "jsonw.h"
#include "log.h"

enum call_state { CALL_BODY, CALL_PENDING, CALL_DONE };

#define CALL_MAX_HEADERS 16

struct httpd_route {
	char method[16];
	char path[HTTPD_MAX_PATH];
	size_t path_len;
	unsigned flags;
	httpd_handler_fn fn;
	void *arg;
};

struct httpd {
	pthread_mutex_t mtx;
	pthread_cond_t idle;     /* inflight dropped to 0 while stopping */
	unsigned refs;
	unsigned inflight;       /* our code running inside nng callbacks that may call handlers */
	bool stopping;
	bool started;            /* nng_http_server_start succeeded: ours to stop */
	uintptr_t next_id;
	nng_http_server *srv;
	nng_url *url;
	uint16_t port;
	size_t max_body;
	uint32_t reply_timeout_ms;
	uint32_t max_pending;
	char *token;             /* NULL = no auth */
	char *server_name;
	struct httpd_route routes[HTTPD_MAX_ROUTES];
	unsigned nroutes;
	struct httpd_call *pending; /* open calls, doubly linked */
	struct httpd_stats stats;
};

struct httpd_call {
	struct httpd *h;
	struct httpd_call *prev, *next;
	nng_aio *aio;            /* nng's; ours to finish while state != CALL_DONE */
	nng_http_req *req;       /* valid while state != CALL_DONE */
	nng_http_conn *conn;     /* idem */
	nng_aio *body_aio;
	enum call_state state;
	unsigned refs;
	unsigned busy;
	int deferred_rv;
	uintptr_t id;            /* what on_cancel is given: nng reuses the aio per connection */
	bool expect_continue;    /* 100 Continue still to be written before the body read */
	httpd_handler_fn fn;
	void *arg;
	char method[16];
	char *path;
	char *query;
	char *body;
	size_t body_len;
	unsigned nheaders;
	struct { char *name, *value; } headers[CALL_MAX_HEADERS];
};

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

static void httpd_unref(struct httpd *h)
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

/* nng calls this when its handler is finalised, i.e. after the last request callback. */
static void handler_dtor(void *arg)
{
	httpd_unref(arg);
}

/* ---- responses ---------------------------------------------------------------------- */

/* {"error":"<status text>","reason":"<reason>"}; the reason is cut at 512 bytes. */
static int error_body(int status, const char *reason, char **ret_body, size_t *ret_len)
{
	struct jsonw *w;
	int rv = jsonw_new(2048, &w);
	if (rv < 0)
		return rv;
	reason = reason ? reason : "";
	jsonw_begin_object(w);
	jsonw_key(w, "error");
	jsonw_string(w, httpd_req_status_text(status));
	jsonw_key(w, "reason");
	jsonw_stringn(w, reason, strnlen(reason, 512));
	jsonw_end_object(w);
	rv = jsonw_take(w, ret_body, ret_len);
	jsonw_free(w);
	return rv;
}

/* Builds a response; extra is one more "Name", "value" header pair or NULLs. */
static nng_http_res *make_res(const struct httpd *h, int status, const char *ctype,
			      const void *body, size_t len, bool close, const char *xname,
			      const char *xvalue)
{
	nng_http_res *res;
	if (nng_http_res_alloc(&res) != 0)
		return NULL;
	/* nng 1.5.2 knows no reason phrase for e.g. 413; always set ours. */
	if (nng_http_res_set_status(res, (uint16_t)status) != 0 ||
	    nng_http_res_set_reason(res, httpd_req_status_text(status)) != 0 ||
	    nng_http_res_set_header(res, "Content-Type", ctype ? ctype : "application/json") ||
	    (h->server_name && nng_http_res_set_header(res, "Server", h->server_name)) ||
	    (close && nng_http_res_set_header(res, "Connection", "close")) ||
	    (xname && nng_http_res_set_header(res, xname, xvalue)) ||
	    (len ? nng_http_res_copy_data(res, body, len) : nng_http_res_set_data(res, NULL, 0))) {
		nng_http_res_free(res);
		return NULL;
	}
	return res;
}

static nng_http_res *make_error(const struct httpd *h, int status, const char *reason,
				bool close, const char *xname, const char *xvalue)
{
	char *body;
	size_t len;
	if (error_body(status, reason, &body, &len) < 0)
		return NULL;
	nng_http_res *res = make_res(h, status, NULL, body, len, close, xname, xvalue);
	free(body);
	return res;
}

/* Hands res to nng (or closes the connection when res is NULL: out of memory). */
static void finish_res(nng_aio *aio, nng_http_res *res)
{
	if (!res) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static void count_status_locked(struct httpd *h, int status)
{
	int cls = status / 100;
	if (cls >= 1 && cls <= 5)
		h->stats.by_class[cls]++;
}

/* Answers a request that never became a call. */
static void early_error(struct httpd *h, nng_aio *aio, int status, const char *reason,
			bool close, const char *xname, const char *xvalue)
{
	pthread_mutex_lock(&h->mtx);
	count_status_locked(h, status);
	if (status == 401)
		h->stats.auth_failures++;
	pthread_mutex_unlock(&h->mtx);
	finish_res(aio, make_error(h, status, reason, close, xname, xvalue));
}

/* ---- call lifetime ------------------------------------------------------------------ */

static void call_free(struct httpd_call *c)
{
	struct httpd *h = c->h;
	if (c->body_aio)
		nng_aio_reap(c->body_aio); /* may run inside its own callback */
	for (unsigned i = 0; i < c->nheaders; i++) {
		free(c->headers[i].name);
		free(c->headers[i].value);
	}
	free(c->path);
	free(c->query);
	free(c->body);
	free(c);
	httpd_unref(h);
}

static void call_unref(struct httpd_call *c, unsigned n)
{
	struct httpd *h = c->h;
	pthread_mutex_lock(&h->mtx);
	c->refs -= n;
	bool last = c->refs == 0;
	pthread_mutex_unlock(&h->mtx);
	if (last)
		call_free(c);
}

/* Moves an open call to CALL_DONE; the caller then owns finishing c->aio. h->mtx held. */
static enum call_state call_close_locked(struct httpd_call *c)
{
	struct httpd *h = c->h;
	enum call_state was = c->state;
	if (was == CALL_DONE)
		return was;
	c->state = CALL_DONE;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->pending = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	h->stats.pending--;
	return was;
}

/* Completes a call closed by a cancel: rv NNG_ETIMEDOUT answers 503 (or 408 while the body
 * was still arriving), anything else (connection or server closing) drops the connection. */
static void call_cancel_finish(struct httpd_call *c, enum call_state was, int rv)
{
	struct httpd *h = c->h;
	/* A body read still queued is not aborted: in nng that closes the connection before the
	 * 408 could be written. The 408 carries "Connection: close"; closing ends the read. */
	if (rv == NNG_ETIMEDOUT) {
		char reason[96];
		int status = was == CALL_BODY ? 408 : 503;
		snprintf(reason, sizeof(reason), was == CALL_BODY ?
			 "request body not received within %u ms" :
			 "handler did not reply within %u ms", (unsigned)h->reply_timeout_ms);
		pthread_mutex_lock(&h->mtx);
		count_status_locked(h, status);
		pthread_mutex_unlock(&h->mtx);
		finish_res(c->aio, make_error(h, status, reason, was == CALL_BODY, NULL, NULL));
	} else {
		nng_aio_finish(c->aio, rv);
	}
	call_unref(c, 1); /* the nng side */
}

/* nng's cancel: connection or server closing, or the reply timeout (NNG_ETIMEDOUT). arg is
 * the call id, not the call: a late cancel (the expire thread took it just before a reply
 * finished the aio) must not hit the next request nng runs on the same aio. */
static void on_cancel(nng_aio *aio, void *arg, int rv)
{
	/* the only handler, alive until nng stops calling into it; it holds a ref on h */
	struct httpd *h = nng_http_handler_get_data(nng_aio_get_input(aio, 1));
	struct httpd_call *c;
	pthread_mutex_lock(&h->mtx);
	for (c = h->pending; c && (c->aio != aio || c->id != (uintptr_t)arg); c = c->next)
		;
	if (!c) { /* already answered: nothing to do */
		pthread_mutex_unlock(&h->mtx);
		return;
	}
	if (c->busy) {
		c->deferred_rv = rv;
		pthread_mutex_unlock(&h->mtx);
		return;
	}
	enum call_state was = call_close_locked(c);
	if (rv == NNG_ETIMEDOUT)
		h->stats.timeouts++;
	pthread_mutex_unlock(&h->mtx);
	call_cancel_finish(c, was, rv);
}

/* Leaves a busy section and drops its reference; carries out a cancel parked meanwhile. */
static void call_unbusy(struct httpd_call *c)
{
	struct httpd *h = c->h;
	pthread_mutex_lock(&h->mtx);
	int rv = --c->busy == 0 ? c->deferred_rv : 0;
	enum call_state was = CALL_DONE;
	if (rv != 0) {
		c->deferred_rv = 0;
		was = call_close_locked(c);
		if (rv == NNG_ETIMEDOUT && was != CALL_DONE)
			h->stats.timeouts++;
	}
	pthread_mutex_unlock(&h->mtx);
	if (was != CALL_DONE)
		call_cancel_finish(c, was, rv);
	call_unref(c, 1);
}

/* Calls the handler with the user reference the caller holds (dropped if the call closed). */
static void call_dispatch(struct httpd_call *c)
{
	struct httpd *h = c->h;
	pthread_mutex_lock(&h->mtx);
	bool go = c->state == CALL_PENDING && !h->stopping;
	pthread_mutex_unlock(&h->mtx);
	if (go)
		c->fn(c->arg, c);
	else
		call_unref(c, 1);
}

static void inflight_leave(struct httpd *h)
{
	pthread_mutex_lock(&h->mtx);
	if (--h->inflight == 0 && h->stopping)
		pthread_cond_broadcast(&h->idle);
	pthread_mutex_unlock(&h->mtx);
}

/* Body machinery: optional "100 Continue" write, then one read of exactly body_len bytes. */
static void body_start(struct httpd_call *c)
{
	nng_iov iov;
	if (c->expect_continue) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		iov.iov_buf = (void *)cont;
		iov.iov_len = sizeof(cont) - 1;
		nng_aio_set_iov(c->body_aio, 1, &iov);
		nng_http_conn_write_all(c->conn, c->body_aio);
		return;
	}
	iov.iov_buf = c->body;
	iov.iov_len = c->body_len;
	nng_aio_set_iov(c->body_aio, 1, &iov);
	nng_http_conn_read_all(c->conn, c->body_aio);
}

static void on_body(void *arg)
{
	struct httpd_call *c = arg;
	struct httpd *h = c->h;
	int rv = nng_aio_result(c->body_aio);
	enum call_state was = CALL_DONE;
	bool more = false, dispatch = false;

	pthread_mutex_lock(&h->mtx);
	if (c->state == CALL_BODY) {
		if (rv != 0 || h->stopping) {
			was = call_close_locked(c);
		} else if (c->expect_continue) {
			c->expect_continue = false;
			c->busy++;
			c->refs++;
			h->inflight++;
			more = true;
		} else {
			c->state = CALL_PENDING;
			h->inflight++;
			dispatch = true;
		}
	}
	pthread_mutex_unlock(&h->mtx);

	if (was != CALL_DONE) { /* connection failed or server stopping */
		nng_aio_finish(c->aio, rv != 0 ? rv : NNG_ECLOSED);
		call_unref(c, 2); /* nng side and body read */
	} else if (more) {
		body_start(c); /* the read completes into on_body again, with the body ref */
		call_unbusy(c);
		inflight_leave(h);
	} else if (dispatch) {
		call_dispatch(c); /* the body ref becomes the user ref */
		inflight_leave(h);
	} else {
		call_unref(c, 1); /* closed meanwhile: drop the body ref */
	}
}

/* ---- request parsing ---------------------------------------------------------------- */

static bool route_matches(const struct httpd_route *r, const char *path)
{
	if (strncmp(path, r->path, r->path_len) != 0)
		return false;
	if (path[r->path_len] == '\0')
		return true;
	return (r->flags & HTTPD_PREFIX) &&
	       (path[r->path_len] == '/' || (r->path_len > 0 && r->path[r->path_len - 1] == '/'));
}

/* Finds the route for method+path, or lists the allowed methods in allow. h->mtx held. */
static const struct httpd_route *route_find(const struct httpd *h, const char *method,
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

/* Constant-time check of "Authorization: Bearer <token>" (scheme case-insensitive). */
static struct httpd_call *call_new(struct httpd *h, nng_aio *aio, nng_http_req *req,
				   nng_http_conn *conn, const char *method, size_t blen)
{
	struct httpd_call *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->h = h;
	c->aio = aio;
	c->req = req;
	c->conn = conn;
	snprintf(c->method, sizeof(c->method), "%s", method);
	c->body_len = blen;
	c->body = malloc(blen + 1);
	if (!c->body || (blen && nng_aio_alloc(&c->body_aio, on_body, c) != 0)) {
		free(c->body);
		free(c);
		return NULL;
	}
	c->body[blen] = '\0';
	return c;
}

static void handle_request(struct httpd *h, nng_aio *aio, nng_http_req *req, nng_http_conn *conn)
{
	const char *method = nng_http_req_get_method(req);
	const char *cl = nng_http_req_get_header(req, "Content-Length");
	const char *te = nng_http_req_get_header(req, "Transfer-Encoding");
	/* An error answer leaves a declared body unread: close so it is not parsed as a request. */
	bool close = te || (cl && strcmp(cl, "0") != 0);
	char *path = NULL, *query = NULL, allow[160];
	int status = strlen(method) >= sizeof(((struct httpd_call *)0)->method) ? 501 :
		     httpd_req_split_uri(nng_http_req_get_uri(req), &path, &query);
	if (status) {
		early_error(h, aio, status, status == 414 ? "request target too long" :
			    status == 501 ? "method not implemented" : "malformed request target",
			    true, NULL, NULL);
		return;
	}

	pthread_mutex_lock(&h->mtx);
	const struct httpd_route *r = route_find(h, method, path, allow, sizeof(allow));
	struct httpd_route route = r ? *r : (struct httpd_route){ .fn = NULL };
	pthread_mutex_unlock(&h->mtx);

	size_t blen = 0;
	struct httpd_call *c = NULL;
	if (!route.fn) {
		if (allow[0])
			early_error(h, aio, 405, "method not allowed for this path", close, "Allow", allow);
		else
			early_error(h, aio, 404, "no such path", close, NULL, NULL);
	} else if (h->token && !(route.flags & HTTPD_PUBLIC) &&
		   !httpd_req_auth_ok(h->token, nng_http_req_get_header(req, "Authorization"))) {
		bool given = nng_http_req_get_header(req, "Authorization") != NULL;
		early_error(h, aio, 401, given ? "invalid bearer token" : "bearer token required",
			    close, "WWW-Authenticate",
			    given ? "Bearer error=\"invalid_token\"" : "Bearer");
	} else if ((status = httpd_req_body_length(cl, te, h->max_body, &blen)) != 0) {
		early_error(h, aio, status, status == 413 ? "request body too large" :
			    status == 411 ? "send a Content-Length (chunked bodies unsupported)" :
			    "bad Content-Length", true, NULL, NULL);
	} else if (!(c = call_new(h, aio, req, conn, method, blen))) {
		early_error(h, aio, 500, "out of memory", close, NULL, NULL);
	}
	if (!c) {
		free(path);
		free(query);
		return;
	}
	c->path = path;
	c->query = query;
	c->fn = route.fn;
	c->arg = route.arg;
	const char *expect = nng_http_req_get_header(req, "Expect");
	c->expect_continue = blen && expect && strcasestr(expect, "100-continue") &&
			     strcmp(nng_http_req_get_version(req), "HTTP/1.1") == 0;

	pthread_mutex_lock(&h->mtx);
	bool full = h->stats.pending >= h->max_pending;
	if (full) {
		h->stats.busy_rejects++;
	} else {
		h->refs++; /* the call's */
		c->id = ++h->next_id;
		c->state = blen ? CALL_BODY : CALL_PENDING;
		c->refs = 3; /* nng side, busy section, body read or user */
		c->busy = 1;
		c->next = h->pending;
		if (h->pending)
			h->pending->prev = c;
		h->pending = c;
		h->stats.pending++;
	}
	pthread_mutex_unlock(&h->mtx);
	if (full) {
		c->h = NULL;
		if (c->body_aio)
			nng_aio_free(c->body_aio);
		free(c->path);
		free(c->query);
		free(c->body);
		free(c);
		early_error(h, aio, 503, "too many requests waiting for a reply", close, NULL, NULL);
		return;
	}
	/* nng's aio timeout is the reply timeout: on expiry on_cancel gets NNG_ETIMEDOUT. */
	nng_aio_set_timeout(aio, (nng_duration)h->reply_timeout_ms);
	nng_aio_defer(aio, on_cancel, (void *)c->id);
	if (blen)
		body_start(c);
	call_unbusy(c);
	if (!blen)
		call_dispatch(c);
}

static void on_request(nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	nng_http_handler *nh = nng_aio_get_input(aio, 1);
	struct httpd *h = nng_http_handler_get_data(nh);

	pthread_mutex_lock(&h->mtx);
	h->stats.requests++;
	bool stopping = h->stopping;
	if (!stopping)
		h->inflight++;
	pthread_mutex_unlock(&h->mtx);
	if (stopping) {
		nng_aio_finish(aio, NNG_ECLOSED);
		return;
	}
	handle_request(h, aio, req, nng_aio_get_input(aio, 2));
	inflight_leave(h);
}

/* ---- public API ---------------------------------------------------------------------- */

/* Resolves address into a URL nng can listen on; literal addresses pass through getaddrinfo. */
static int make_url(const char *address, uint16_t port, nng_url **ret_url)
{
	char host[256], ip[INET6_ADDRSTRLEN], text[300];
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
	snprintf(text, sizeof(text), v6 ? "http://[%s]:%u" : "http://%s:%u", ip, (unsigned)port);
	return errno_from_nng(nng_url_parse(ret_url, text));
}

/* Bodies for the errors nng answers by itself, before our handler runs: malformed request
 * lines or headers (400), a target not starting with '/' (404), HTTP/2 or 0.9 (505). nng
 * labels them text/html whatever we put in, so they are JSON with that one flaw. */
static const struct {
	uint16_t status;
	const char *body;
} nng_pages[] = {
	{ 400, "{\"error\":\"Bad Request\",\"reason\":\"malformed HTTP request\"}" },
	{ 404, "{\"error\":\"Not Found\",\"reason\":\"request target must start with /\"}" },
	{ 405, "{\"error\":\"Method Not Allowed\",\"reason\":\"method not allowed\"}" },
	{ 500, "{\"error\":\"Internal Server Error\",\"reason\":\"internal error\"}" },
	{ 505, "{\"error\":\"HTTP Version Not Supported\",\"reason\":\"HTTP/1.x only\"}" },
};

static int start_server(struct httpd *h, const char *address, uint16_t port)
{
	nng_http_handler *nh;
	nng_sockaddr sa;
	int rv = make_url(address, port, &h->url);
	if (rv < 0)
		return rv;
	if ((rv = nng_http_server_hold(&h->srv, h->url)) != 0) {
		h->srv = NULL;
		return errno_from_nng(rv);
	}
	for (size_t i = 0; i < sizeof(nng_pages) / sizeof(nng_pages[0]); i++)
		if ((rv = nng_http_server_set_error_page(h->srv, nng_pages[i].status,
							 nng_pages[i].body)) != 0)
			return errno_from_nng(rv);
	if ((rv = nng_http_handler_alloc(&nh, "/", on_request)) != 0)
		return errno_from_nng(rv);
	h->refs++; /* released by nng through handler_dtor */
	if ((rv = nng_http_handler_set_data(nh, h, handler_dtor)) != 0) {
		h->refs--;
		nng_http_handler_free(nh);
		return errno_from_nng(rv);
	}
	if ((rv = nng_http_handler_set_method(nh, NULL)) != 0 ||
	    (rv = nng_http_handler_set_tree(nh)) != 0 ||
	    (rv = nng_http_handler_collect_body(nh, false, 0)) != 0 ||
	    (rv = nng_http_server_add_handler(h->srv, nh)) != 0) {
		nng_http_handler_free(nh); /* calls handler_dtor */
		return errno_from_nng(rv);
	}
	if ((rv = nng_http_server_start(h->srv)) != 0)
		return errno_from_nng(rv);
	h->started = true;
	if ((rv = nng_http_server_get_addr(h->srv, &sa)) != 0)
		return errno_from_nng(rv);
	h->port = ntohs(sa.s_family == NNG_AF_INET6 ? sa.s_in6.sa_port : sa.s_in.sa_port);
	return 0;
}

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
	h->max_pending = o.max_pending ? o.max_pending : HTTPD_DEFAULT_MAX_PENDING;
	int rv = 0;
	if (h->max_body > HTTPD_MAX_BODY_LIMIT || h->reply_timeout_ms > HTTPD_MAX_REPLY_TIMEOUT_MS)
		rv = -EINVAL;
	if (rv == 0 && ((o.bearer_token && o.bearer_token[0] && !(h->token = strdup(o.bearer_token))) ||
			(o.server_name && !(h->server_name = strdup(o.server_name)))))
		rv = -ENOMEM;
	if (rv == 0)
		rv = start_server(h, address, port);
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
	pthread_mutex_unlock(&h->mtx);
	/* nng shares one server per address: stop only what we started (a failed httpd_new on a
	 * port this process already serves must not stop the other one) */
	if (h->started)
		nng_http_server_stop(h->srv); /* closes connections: on_cancel for deferred calls */
	pthread_mutex_lock(&h->mtx);
	while (h->inflight > 0)
		pthread_cond_wait(&h->idle, &h->mtx);
	/* Calls still open (their cancel raced with the stop) are closed here. */
	struct httpd_call *c;
	while ((c = h->pending) != NULL) {
		enum call_state was = call_close_locked(c);
		pthread_mutex_unlock(&h->mtx);
		call_cancel_finish(c, was, NNG_ECLOSED);
		pthread_mutex_lock(&h->mtx);
	}
	pthread_mutex_unlock(&h->mtx);
	if (h->srv)
		nng_http_server_release(h->srv);
	nng_url_free(h->url);
	h->srv = NULL;
	h->url = NULL;
	httpd_unref(h);
	return NULL;
}

uint16_t httpd_port(const struct httpd *h)
{
	return h ? h->port : 0;
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

void httpd_stats(const struct httpd *h, struct httpd_stats *ret_stats)
{
	struct httpd *m = (struct httpd *)h; /* the lock is not part of the logical state */
	pthread_mutex_lock(&m->mtx);
	*ret_stats = h->stats;
	pthread_mutex_unlock(&m->mtx);
}

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
	struct httpd *h = c->h;
	const char *found = NULL;
	pthread_mutex_lock(&h->mtx);
	for (unsigned i = 0; i < c->nheaders && !found; i++)
		if (strcasecmp(c->headers[i].name, name) == 0)
			found = c->headers[i].value;
	/* nng's request is only alive while the call is open; copy so the value outlives it */
	const char *v = !found && c->state != CALL_DONE ? nng_http_req_get_header(c->req, name) : NULL;
	if (v && c->nheaders < CALL_MAX_HEADERS) {
		char *n = strdup(name), *val = strdup(v);
		if (n && val) {
			c->headers[c->nheaders].name = n;
			c->headers[c->nheaders++].value = val;
			found = val;
		} else {
			free(n);
			free(val);
		}
	}
	pthread_mutex_unlock(&h->mtx);
	return found;
}

void httpd_call_reply(struct httpd_call *c, int status, const char *content_type,
		      const void *body, size_t len)
{
	struct httpd *h = c->h;
	nng_http_res *res = make_res(h, status, content_type, body ? body : "", body ? len : 0,
				     false, NULL, NULL);
	pthread_mutex_lock(&h->mtx);
	enum call_state was = c->state == CALL_PENDING ? call_close_locked(c) : CALL_DONE;
	if (was == CALL_DONE)
		h->stats.late_replies++;
	else
		count_status_locked(h, status);
	pthread_mutex_unlock(&h->mtx);
	if (was == CALL_DONE) {
		if (res)
			nng_http_res_free(res);
		call_unref(c, 1); /* user side */
		return;
	}
	finish_res(c->aio, res);
	call_unref(c, 2); /* nng side and user side */
}

void httpd_call_reply_error(struct httpd_call *c, int status, const char *reason)
{
	char *body = NULL;
	size_t len = 0;
	(void)error_body(status, reason, &body, &len); /* on ENOMEM an empty body still answers */
	httpd_call_reply(c, status, "application/json", body, len);
	free(body);
}
