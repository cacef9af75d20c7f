/* httpd_conn: the listener and the connections of httpd (see httpd.h for the behaviour and
 * httpd_int.h for the shared structures).
 *
 * One connection = one nng byte stream and three aios (rx, tx, reply timer). A connection
 * serves one request at a time: HEAD (reading a request head into the 16 KiB `in` buffer,
 * which also keeps pipelined bytes) -> BODY (reading into the call's body) -> CALL (handler
 * owns the call, reply timer armed) -> SEND (one formatted response) -> HEAD again, or DRAIN /
 * close. All state is under h->mtx. An aio is "busy" from the start of its operation until the
 * end of its callback; nobody else starts an operation on a busy aio: conn_kick_locked starts
 * whatever the state needs on the aios that are free, and every callback kicks again when it
 * ends, so work wanted meanwhile is never lost. A connection is freed once it is closed and no
 * aio is busy, by whoever sees that last. nng completes aios on its own threads (never inline in
 * the call that starts or cancels them), so starting and cancelling under h->mtx is safe; only
 * nng_aio_free/stop wait for callbacks and they are never called under the lock. */
#include "httpd_int.h"
#include "httpd_req.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum conn_state { CONN_HEAD, CONN_BODY, CONN_CALL, CONN_SEND, CONN_DRAIN };

struct httpd_conn {
	struct httpd *h;
	struct httpd_conn *prev, *next;
	nng_stream *s;
	nng_aio *rx, *tx, *timer;
	enum conn_state state;
	enum conn_state after_send; /* CONN_HEAD, or CONN_BODY after "100 Continue" */
	bool closed;
	bool rx_busy, tx_busy, timer_busy;
	bool timer_want;            /* the reply timer is to be armed for call */
	bool close_after, drain_after;
	bool out_static;
	nng_time deadline;          /* HEAD/BODY/DRAIN: read by then; CALL: reply by then */
	char *in;                   /* HTTPPARSE_MAX_HEAD bytes; NULL for rejected connections */
	size_t in_len;
	size_t drained;
	char *out;
	size_t out_len, out_off;
	struct httpd_call *call;    /* BODY: owned here; CALL: the handler's (or about to be) */
	uint64_t seq, timer_seq;
};

static const char continue_text[] = "HTTP/1.1 100 Continue\r\n\r\n";

static nng_duration left_ms(nng_time deadline)
{
	nng_time now = nng_clock();
	if (deadline <= now)
		return 1;
	uint64_t d = deadline - now;
	return d > INT32_MAX ? INT32_MAX : (nng_duration)d;
}

/* The call is answered or abandoned: no reply may be sent for it any more. h->mtx held. */
static void call_end_locked(struct httpd *h, struct httpd_call *call)
{
	if (call->conn)
		call->conn->call = NULL;
	call->conn = NULL;
	call->done = true;
	if (call->counted) {
		call->counted = false;
		h->stats.pending--;
	}
}

static void conn_close_locked(struct httpd_conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	struct httpd_call *call = c->call;
	if (call) {
		call_end_locked(c->h, call);
		if (c->state == CONN_BODY)
			httpd_call_discard_(call);
	}
	nng_stream_close(c->s); /* outstanding rx/tx complete with NNG_ECLOSED */
	if (c->timer_busy)
		nng_aio_cancel(c->timer);
}

/* Starts what the state needs on the aios that are free. h->mtx held. */
static void conn_kick_locked(struct httpd_conn *c)
{
	nng_iov iov;
	if (c->closed)
		return;
	switch (c->state) {
	case CONN_HEAD:
	case CONN_BODY:
	case CONN_DRAIN:
		if (c->rx_busy)
			return;
		if (c->state == CONN_BODY) {
			iov.iov_buf = c->call->body + c->call->body_got;
			iov.iov_len = c->call->body_len - c->call->body_got;
		} else if (c->state == CONN_HEAD) {
			iov.iov_buf = c->in + c->in_len;
			iov.iov_len = HTTPPARSE_MAX_HEAD - c->in_len; /* > 0: a full buffer is a 431 */
		} else {
			iov.iov_buf = c->in;
			iov.iov_len = HTTPPARSE_MAX_HEAD;
		}
		nng_aio_set_iov(c->rx, 1, &iov);
		nng_aio_set_timeout(c->rx, left_ms(c->deadline));
		c->rx_busy = true;
		nng_stream_recv(c->s, c->rx);
		return;
	case CONN_SEND:
		if (c->tx_busy)
			return;
		iov.iov_buf = c->out + c->out_off;
		iov.iov_len = c->out_len - c->out_off;
		nng_aio_set_iov(c->tx, 1, &iov);
		nng_aio_set_timeout(c->tx, (nng_duration)c->h->idle_timeout_ms);
		c->tx_busy = true;
		nng_stream_send(c->s, c->tx);
		return;
	case CONN_CALL:
		if (!c->timer_want || c->timer_busy || !c->call)
			return;
		c->timer_want = false;
		c->timer_busy = true;
		c->timer_seq = c->call->seq;
		nng_sleep_aio(left_ms(c->deadline), c->timer);
		return;
	}
}

/* Unlinks c when it is closed and no aio is busy; the caller then frees it outside the lock. */
static bool conn_gone_locked(struct httpd_conn *c)
{
	struct httpd *h = c->h;
	if (!c->closed || c->rx_busy || c->tx_busy || c->timer_busy)
		return false;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->stats.conns--;
	return true;
}

static void conn_free(struct httpd_conn *c)
{
	struct httpd *h = c->h;
	nng_stream_free(c->s);
	/* reap: we may be inside one of these aios' callbacks */
	nng_aio_reap(c->rx);
	nng_aio_reap(c->tx);
	nng_aio_reap(c->timer);
	free(c->in);
	if (!c->out_static)
		free(c->out);
	free(c);
	/* only now may httpd_free return (and a caller then run nng_fini) */
	pthread_mutex_lock(&h->mtx);
	if (--h->nlive == 0 && h->stopping)
		pthread_cond_broadcast(&h->idle);
	pthread_mutex_unlock(&h->mtx);
	httpd_unref(h);
}

/* Ends a callback: kick, then free the connection if that was the last thing it waited for. */
static void conn_end_unlock(struct httpd_conn *c)
{
	struct httpd *h = c->h;
	conn_kick_locked(c);
	bool gone = conn_gone_locked(c);
	pthread_mutex_unlock(&h->mtx);
	if (gone)
		conn_free(c);
}

/* Queues buf (ours to free) as the one response to send. */
static void conn_queue_locked(struct httpd_conn *c, char *buf, size_t len, bool is_static,
			      bool close, bool drain)
{
	if (!c->out_static)
		free(c->out);
	c->out = buf;
	c->out_len = len;
	c->out_off = 0;
	c->out_static = is_static;
	c->close_after = close;
	c->drain_after = close && drain;
	c->after_send = CONN_HEAD;
	c->state = CONN_SEND;
}

/* Formats and queues a response; closes the connection when it cannot (no memory). */
static int conn_respond_locked(struct httpd_conn *c, const struct httpd_req_resp *r, bool drain)
{
	char *buf;
	size_t len;
	int rv = httpd_req_format(r, &buf, &len);
	if (rv < 0)
		return rv;
	httpd_count_status_locked(c->h, r->status);
	conn_queue_locked(c, buf, len, false, r->connection && strcmp(r->connection, "close") == 0,
			  drain);
	return 0;
}

static void conn_error_locked(struct httpd_conn *c, int status, const char *reason, bool close,
			      const char *xname, const char *xvalue, const struct httpd_call *call)
{
	char *body;
	size_t len;
	bool keep10 = call && call->http10 && call->keep_alive;
	if (httpd_req_error_body(status, reason, &body, &len) < 0) {
		conn_close_locked(c);
		return;
	}
	struct httpd_req_resp r = {
		.status = status, .server_name = c->h->server_name,
		.extra_name = xname, .extra_value = xvalue,
		.connection = close ? "close" : keep10 ? "keep-alive" : NULL,
		.body = body, .body_len = len, .head_only = call && call->head_only,
	};
	if (conn_respond_locked(c, &r, true) < 0)
		conn_close_locked(c);
	free(body);
}

void httpd_conn_reply_locked(struct httpd_call *call, int status, const char *ctype,
			     const void *body, size_t len)
{
	struct httpd_conn *c = call->conn;
	struct httpd *h = c->h;
	bool keep = call->keep_alive;
	struct httpd_req_resp r = {
		.status = status, .content_type = ctype, .server_name = h->server_name,
		.connection = !keep ? "close" : call->http10 ? "keep-alive" : NULL,
		.body = body, .body_len = len, .head_only = call->head_only,
	};
	call_end_locked(h, call);
	if (c->timer_busy)
		nng_aio_cancel(c->timer);
	int rv = conn_respond_locked(c, &r, false);
	if (rv == -EINVAL) /* status out of range or a content type with control characters */
		conn_error_locked(c, 500, "handler reply refused (bad status or header)", !keep,
				  NULL, NULL, call);
	else if (rv < 0)
		conn_close_locked(c);
	conn_kick_locked(c);
}

/* Drops the first n bytes of the input buffer (pipelined requests stay). */
static void conn_consume_locked(struct httpd_conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

/* The body is complete: the call goes to its handler (returned, handed over by the caller). */
static struct httpd_call *conn_dispatch_locked(struct httpd_conn *c)
{
	struct httpd *h = c->h;
	c->state = CONN_CALL;
	c->deadline = nng_clock() + h->reply_timeout_ms;
	c->timer_want = true;
	h->refs++; /* the call's, dropped when it is freed */
	return c->call;
}

static const char *reason_for(int status)
{
	switch (status) {
	case 400: return "malformed HTTP request";
	case 404: return "request target must start with /";
	case 414: return "request target too long";
	case 431: return "request header fields too large";
	case 501: return "method not implemented";
	case 505: return "HTTP/1.x only";
	default: return "bad request";
	}
}

/* A head was parsed: route, authorise, size the body. Returns a call ready for its handler. */
static struct httpd_call *conn_request_locked(struct httpd_conn *c, const struct httpparse_req *pr)
{
	struct httpd *h = c->h;
	struct httpd_call *call = httpd_call_new_(h, c->in, pr);
	if (!call) {
		conn_error_locked(c, 500, "out of memory", true, NULL, NULL, NULL);
		return NULL;
	}
	const char *cl = httpparse_field(pr, call->head, "Content-Length", NULL);
	const char *te = httpparse_field(pr, call->head, "Transfer-Encoding", NULL);
	const char *auth = httpparse_field(pr, call->head, "Authorization", NULL);
	/* An error answer leaves a declared body unread: close so it is not parsed as a request. */
	bool close = te || (cl && strcmp(cl, "0") != 0) || !call->keep_alive;
	char allow[160];
	size_t blen = 0;
	const struct httpd_route *r = NULL;
	int st = httpd_req_split_uri(call->head + pr->target_off, &call->path, &call->query);
	if (st) {
		conn_error_locked(c, st, st == 414 ? "request target too long" :
				  st == 404 ? reason_for(404) : "malformed request target", true,
				  NULL, NULL, call);
	} else if (httpparse_count(pr, call->head, "Content-Length") > 1) {
		conn_error_locked(c, 400, "repeated Content-Length", true, NULL, NULL, call);
	} else if (!(r = httpd_route_find_locked(h, call->method, call->path, allow, sizeof(allow)))) {
		if (allow[0])
			conn_error_locked(c, 405, "method not allowed for this path", close, "Allow",
					  allow, call);
		else
			conn_error_locked(c, 404, "no such path", close, NULL, NULL, call);
	} else if (h->token && !(r->flags & HTTPD_PUBLIC) && !httpd_req_auth_ok(h->token, auth)) {
		h->stats.auth_failures++;
		conn_error_locked(c, 401, auth ? "invalid bearer token" : "bearer token required",
				  close, "WWW-Authenticate",
				  auth ? "Bearer error=\"invalid_token\"" : "Bearer", call);
	} else if ((st = httpd_req_body_length(cl, te, h->max_body, &blen)) != 0) {
		conn_error_locked(c, st, st == 413 ? "request body too large" :
				  st == 411 ? "send a Content-Length (chunked bodies unsupported)" :
				  "bad Content-Length", true, NULL, NULL, call);
	} else if (h->stats.pending >= h->max_pending) {
		h->stats.busy_rejects++;
		conn_error_locked(c, 503, "too many requests waiting for a reply", close, NULL, NULL,
				  call);
	} else if (!(call->body = malloc(blen + 1))) {
		conn_error_locked(c, 500, "out of memory", true, NULL, NULL, call);
	} else {
		call->fn = r->fn;
		call->arg = r->arg;
		call->body_len = blen;
		call->body[blen] = '\0';
		size_t avail = c->in_len - pr->head_len;
		size_t take = avail < blen ? avail : blen;
		memcpy(call->body, c->in + pr->head_len, take);
		call->body_got = take;
		conn_consume_locked(c, pr->head_len + take);
		call->seq = ++c->seq;
		call->conn = c;
		call->counted = true;
		h->stats.pending++;
		c->call = call;
		if (take == blen)
			return conn_dispatch_locked(c);
		c->state = CONN_BODY;
		c->deadline = nng_clock() + h->reply_timeout_ms;
		const char *expect = httpparse_field(pr, call->head, "Expect", &avail);
		if (take == 0 && !call->http10 && expect &&
		    httpparse_has_token(expect, avail, "100-continue")) {
			conn_queue_locked(c, (char *)continue_text, sizeof(continue_text) - 1, true,
					  false, false);
			c->after_send = CONN_BODY;
		}
		return NULL;
	}
	conn_consume_locked(c, pr->head_len); /* keep-alive errors: the next request follows */
	httpd_call_discard_(call);
	return NULL;
}

/* Parses what the input buffer holds (HEAD state). Returns a call for its handler or NULL. */
static struct httpd_call *conn_process_locked(struct httpd_conn *c)
{
	struct httpparse_req pr;
	if (c->in_len == 0)
		return NULL;
	int st = httpparse_head(c->in, c->in_len, HTTPPARSE_MAX_HEAD, HTTPD_MAX_URI, &pr);
	if (st == -EAGAIN)
		return NULL;
	c->h->stats.requests++;
	if (st != 0) {
		conn_error_locked(c, st, reason_for(st), true, NULL, NULL, NULL);
		return NULL;
	}
	return conn_request_locked(c, &pr);
}

/* Gives the call to its handler, unless it ended (timeout, close, stop) meanwhile. */
static void conn_handoff(struct httpd *h, struct httpd_call *call)
{
	pthread_mutex_lock(&h->mtx);
	if (!call->done && h->stopping)
		call_end_locked(h, call);
	bool go = !call->done;
	pthread_mutex_unlock(&h->mtx);
	if (go)
		call->fn(call->arg, call);
	else
		httpd_call_free_(call);
}

/* A read timed out. */
static void conn_timeout_locked(struct httpd_conn *c)
{
	struct httpd *h = c->h;
	char reason[96];
	if (c->state == CONN_HEAD) {
		h->stats.idle_closes++;
		if (c->in_len == 0) {
			conn_close_locked(c);
			return;
		}
		snprintf(reason, sizeof(reason), "request head not received within %u ms",
			 (unsigned)h->idle_timeout_ms);
		conn_error_locked(c, 408, reason, true, NULL, NULL, NULL);
		c->drain_after = false;
	} else if (c->state == CONN_BODY) {
		struct httpd_call *call = c->call;
		h->stats.timeouts++;
		snprintf(reason, sizeof(reason), "request body not received within %u ms",
			 (unsigned)h->reply_timeout_ms);
		call_end_locked(h, call);
		conn_error_locked(c, 408, reason, true, NULL, NULL, call);
		c->drain_after = false;
		httpd_call_discard_(call);
	} else {
		conn_close_locked(c);
	}
}

static void on_rx(void *arg)
{
	struct httpd_conn *c = arg;
	struct httpd *h = c->h;
	int rv = nng_aio_result(c->rx);
	size_t n = nng_aio_count(c->rx);
	struct httpd_call *go = NULL;

	pthread_mutex_lock(&h->mtx);
	if (c->closed) {
		/* nothing: the stream is closing */
	} else if (rv == NNG_ETIMEDOUT) {
		conn_timeout_locked(c);
	} else if (rv != 0 || n == 0) {
		conn_close_locked(c); /* peer closed or reset */
	} else if (c->state == CONN_HEAD) {
		c->in_len += n;
		go = conn_process_locked(c);
	} else if (c->state == CONN_BODY) {
		c->call->body_got += n;
		if (c->call->body_got == c->call->body_len)
			go = conn_dispatch_locked(c);
	} else if ((c->drained += n) >= HTTPD_DRAIN_BYTES) {
		conn_close_locked(c);
	}
	pthread_mutex_unlock(&h->mtx);
	if (go)
		conn_handoff(h, go); /* rx stays busy meanwhile: nobody reuses it under the handler */
	pthread_mutex_lock(&h->mtx);
	c->rx_busy = false;
	conn_end_unlock(c);
}

static void on_tx(void *arg)
{
	struct httpd_conn *c = arg;
	struct httpd *h = c->h;
	int rv = nng_aio_result(c->tx);
	size_t n = nng_aio_count(c->tx);
	struct httpd_call *go = NULL;

	pthread_mutex_lock(&h->mtx);
	if (c->closed) {
		/* nothing */
	} else if (rv != 0) {
		conn_close_locked(c); /* includes a client that does not read for idle_timeout_ms */
	} else if ((c->out_off += n) < c->out_len) {
		/* partial write: the kick below sends the rest */
	} else {
		if (!c->out_static)
			free(c->out);
		c->out = NULL;
		c->out_static = false;
		if (c->drain_after) {
			c->state = CONN_DRAIN;
			c->deadline = nng_clock() + HTTPD_DRAIN_MS;
			c->drained = 0;
		} else if (c->close_after) {
			conn_close_locked(c);
		} else if (c->after_send == CONN_BODY) {
			c->state = CONN_BODY;
		} else {
			c->state = CONN_HEAD;
			c->deadline = nng_clock() + h->idle_timeout_ms;
			go = conn_process_locked(c); /* a pipelined request may be complete already */
		}
	}
	pthread_mutex_unlock(&h->mtx);
	if (go)
		conn_handoff(h, go);
	pthread_mutex_lock(&h->mtx);
	c->tx_busy = false;
	conn_end_unlock(c);
}

static void on_timer(void *arg)
{
	struct httpd_conn *c = arg;
	struct httpd *h = c->h;
	int rv = nng_aio_result(c->timer);

	pthread_mutex_lock(&h->mtx);
	c->timer_busy = false;
	struct httpd_call *call = c->call;
	if (rv == 0 && !c->closed && c->state == CONN_CALL && call && call->seq == c->timer_seq) {
		char reason[96];
		snprintf(reason, sizeof(reason), "handler did not reply within %u ms",
			 (unsigned)h->reply_timeout_ms);
		h->stats.timeouts++;
		call_end_locked(h, call); /* the handler's late reply is discarded */
		conn_error_locked(c, 503, reason, !call->keep_alive, NULL, NULL, call);
	}
	conn_end_unlock(c);
}

int httpd_conn_new_locked(struct httpd *h, nng_stream *s)
{
	bool reject = h->stats.conns >= h->max_conns;
	if (reject) {
		h->stats.conn_rejects++;
		if (h->stats.conns >= h->max_conns + HTTPD_REJECT_SLACK)
			return -EBUSY;
	}
	struct httpd_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->h = h;
	c->s = s;
	if ((!reject && !(c->in = malloc(HTTPPARSE_MAX_HEAD))) ||
	    nng_aio_alloc(&c->rx, on_rx, c) != 0 || nng_aio_alloc(&c->tx, on_tx, c) != 0 ||
	    nng_aio_alloc(&c->timer, on_timer, c) != 0) {
		nng_aio_free(c->rx);
		nng_aio_free(c->tx);
		free(c->in);
		free(c);
		return -ENOMEM;
	}
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	h->stats.conns++;
	h->nlive++;
	h->refs++; /* the connection's */
	if (reject) {
		/* one answer and close: nothing of the request is read (no buffer) */
		conn_error_locked(c, 503, "too many connections", true, NULL, NULL, NULL);
		c->drain_after = false;
	} else {
		c->state = CONN_HEAD;
		c->deadline = nng_clock() + h->idle_timeout_ms;
	}
	conn_kick_locked(c);
	return 0;
}

struct httpd_conn *httpd_conn_close_all_locked(struct httpd *h)
{
	struct httpd_conn *gone = NULL, *next;
	for (struct httpd_conn *c = h->conns; c; c = next) {
		next = c->next;
		conn_close_locked(c);
		if (conn_gone_locked(c)) {
			c->next = gone;
			gone = c;
		}
	}
	return gone;
}

void httpd_conn_free_list(struct httpd_conn *list)
{
	while (list) {
		struct httpd_conn *next = list->next;
		conn_free(list);
		list = next;
	}
}
