/* bus: see bus.h. */
#include "bus.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "log.h"

int bus_errno(int e)
{
	if (e == 0)
		return 0;
	if (e & NNG_ESYSERR)
		return -(e & ~NNG_ESYSERR);
	switch (e) {
	case NNG_EINTR: return -EINTR;
	case NNG_ENOMEM: return -ENOMEM;
	case NNG_EINVAL: return -EINVAL;
	case NNG_EBUSY: return -EBUSY;
	case NNG_ETIMEDOUT: return -ETIMEDOUT;
	case NNG_ECONNREFUSED: return -ECONNREFUSED;
	case NNG_ECLOSED: return -ESHUTDOWN;
	case NNG_EAGAIN: return -EAGAIN;
	case NNG_ENOTSUP: return -ENOTSUP;
	case NNG_EADDRINUSE: return -EADDRINUSE;
	case NNG_ESTATE: return -EPROTO;
	case NNG_ENOENT: return -ENOENT;
	case NNG_EPROTO: return -EPROTO;
	case NNG_EUNREACHABLE: return -EHOSTUNREACH;
	case NNG_EADDRINVAL: return -EADDRNOTAVAIL;
	case NNG_EPERM: return -EPERM;
	case NNG_EMSGSIZE: return -EMSGSIZE;
	case NNG_ECONNABORTED: return -ECONNABORTED;
	case NNG_ECONNRESET: return -ECONNRESET;
	case NNG_ECANCELED: return -ECANCELED;
	case NNG_ENOFILES: return -EMFILE;
	case NNG_ENOSPC: return -ENOSPC;
	case NNG_EEXIST: return -EEXIST;
	case NNG_ECRYPTO: return -EACCES;
	case NNG_EPEERAUTH: return -EACCES;
	case NNG_ECONNSHUT: return -ECONNRESET;
	default: return -EIO;
	}
}

/* Reads a whole PEM file (bounded) into a NUL-terminated buffer. */
static int read_pem(const char *path, char **ret)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char *buf = malloc(BUS_PEM_MAX + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	size_t n = fread(buf, 1, BUS_PEM_MAX + 1, f);
	int err = ferror(f) ? -EIO : 0;
	fclose(f);
	if (!err && n > BUS_PEM_MAX)
		err = -EFBIG;
	if (err) {
		free(buf);
		return err;
	}
	buf[n] = 0;
	*ret = buf;
	return 0;
}

/* Builds the TLS config of a tls+tcp:// endpoint; *ret stays NULL for other schemes. */
static int tls_setup(const char *url, const struct bus_tls *t, bool server, nng_tls_config **ret)
{
	*ret = NULL;
	if (strncmp(url, "tls+tcp", 7) != 0)
		return 0;
	if (server ? !t->cert_file || !t->key_file : !t->ca_file)
		return -EINVAL;
	nng_tls_config *cfg;
	int r = bus_errno(nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT));
	if (r < 0)
		return r;
	char *cert = NULL, *key = NULL, *ca = NULL;
	if (t->cert_file && t->key_file) {
		if ((r = read_pem(t->cert_file, &cert)) < 0 || (r = read_pem(t->key_file, &key)) < 0)
			goto out;
		if ((r = bus_errno(nng_tls_config_own_cert(cfg, cert, key, NULL))) < 0)
			goto out;
	}
	if (t->ca_file) {
		if ((r = read_pem(t->ca_file, &ca)) < 0 || (r = bus_errno(nng_tls_config_ca_chain(cfg, ca, NULL))) < 0)
			goto out;
	}
	r = bus_errno(nng_tls_config_auth_mode(cfg, t->ca_file ? NNG_TLS_AUTH_MODE_REQUIRED : NNG_TLS_AUTH_MODE_NONE));
	if (r == 0 && !server) {
		char host[256] = "";
		const char *name = t->server_name;
		if (!name) {
			/* tls+tcp://host:port -> host (IPv6 literals in brackets) */
			const char *h = strstr(url, "://");
			h = h ? h + 3 : url;
			size_t n = strcspn(h, h[0] == '[' ? "]" : ":/");
			if (h[0] == '[')
				h++, n--;
			snprintf(host, sizeof(host), "%.*s", (int)n, h);
			name = host;
		}
		r = bus_errno(nng_tls_config_server_name(cfg, name));
	}
out:
	free(cert);
	free(key);
	free(ca);
	if (r < 0) {
		nng_tls_config_free(cfg);
		return r;
	}
	*ret = cfg;
	return 0;
}

/* nng 1.5.2 can hang in nng_close when a pipe is torn down at the same moment (nng#1543, fixed
 * upstream in 2024, not in Debian's 1.5.2): observed here once, with 100 REQ sockets under load.
 * The close runs on a helper thread and is waited for at most BUS_CLOSE_WAIT_MS; after that the
 * socket (a few KiB and its descriptors) is abandoned to the helper so that shutdown completes. */
#define BUS_CLOSE_WAIT_MS 5000

struct closer {
	nng_socket sock;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done, abandoned;
};

static void *close_thread(void *arg)
{
	struct closer *c = arg;
	nng_close(c->sock);
	pthread_mutex_lock(&c->mu);
	c->done = true;
	bool free_it = c->abandoned;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (free_it) {
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		free(c);
	}
	return NULL;
}

/* Returns 0, or -ETIMEDOUT when the close was abandoned to its thread. */
static int close_socket(nng_socket sock)
{
	struct closer *c = calloc(1, sizeof(*c));
	pthread_t thr;
	if (!c) {
		nng_close(sock);
		return 0;
	}
	c->sock = sock;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&thr, NULL, close_thread, c) != 0) {
		nng_close(sock);
		c->done = true;
	} else {
		pthread_detach(thr);
	}
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += BUS_CLOSE_WAIT_MS / 1000;
	pthread_mutex_lock(&c->mu);
	while (!c->done)
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT)
			break;
	bool done = c->done;
	c->abandoned = !done;
	pthread_mutex_unlock(&c->mu);
	if (!done)
		return -ETIMEDOUT;
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
	return 0;
}

/* ------------------------------------------------------------------ REQ */

enum { CTX_IDLE = 0, CTX_SEND, CTX_RECV };

struct req_ctx {
	struct bus_req *b;
	nng_ctx ctx;
	nng_aio *aio;
	uint64_t tag;
	int state;      /* guarded by b->mu while IDLE; owned by the aio callback otherwise */
	bool opened;
};

struct bus_req {
	struct bus_req_opts o;
	bus_reply_fn fn;
	void *arg;
	nng_socket sock;
	bool sock_open;
	nng_dialer dialer;
	nng_tls_config *tls;
	pthread_mutex_t mu;
	uint32_t nctx;
	struct req_ctx *ctx;
	atomic_int pipes;
};

static void req_cb(void *p)
{
	struct req_ctx *c = p;
	struct bus_req *b = c->b;
	int err = bus_errno(nng_aio_result(c->aio));
	nng_msg *m = nng_aio_get_msg(c->aio);
	if (c->state == CTX_SEND && err == 0) {
		/* the request left: wait for its reply (the socket owns the message now) */
		c->state = CTX_RECV;
		nng_aio_set_timeout(c->aio, (nng_duration)b->o.timeout_ms);
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	bool reply = c->state == CTX_RECV && err == 0 && m;
	if (c->state == CTX_SEND && m) /* a failed send leaves the message with us */
		nng_msg_free(m);
	/* report before the context is reusable: a caller that counts outcomes never sees more
	 * of them pending than it has contexts */
	if (reply) {
		b->fn(b->arg, c->tag, 0, nng_msg_body(m), nng_msg_len(m));
		nng_msg_free(m);
	} else {
		b->fn(b->arg, c->tag, err ? err : -EIO, NULL, 0);
	}
	pthread_mutex_lock(&b->mu);
	c->state = CTX_IDLE;
	pthread_mutex_unlock(&b->mu);
}

static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct bus_req *b = arg;
	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(&b->pipes, 1);
	else if (ev == NNG_PIPE_EV_REM_POST)
		atomic_fetch_sub(&b->pipes, 1);
}

int bus_req_new(const struct bus_req_opts *opts, bus_reply_fn fn, void *arg, struct bus_req **ret)
{
	if (!opts || !opts->url || !opts->url[0] || !fn || opts->contexts > BUS_MAX_CONTEXTS)
		return -EINVAL;
	struct bus_req *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->o = *opts;
	b->fn = fn;
	b->arg = arg;
	pthread_mutex_init(&b->mu, NULL);
	struct bus_req_opts *o = &b->o;
	o->contexts = o->contexts ? o->contexts : BUS_DEFAULT_CONTEXTS;
	o->timeout_ms = o->timeout_ms ? o->timeout_ms : BUS_DEFAULT_TIMEOUT_MS;
	o->reconnect_min_ms = o->reconnect_min_ms ? o->reconnect_min_ms : 100;
	o->reconnect_max_ms = o->reconnect_max_ms ? o->reconnect_max_ms : 5000;
	o->resend_ms = o->resend_ms ? o->resend_ms : o->timeout_ms / 2;
	o->max_send_bytes = o->max_send_bytes ? o->max_send_bytes : BUS_DEFAULT_MAX_MSG;
	o->max_recv_bytes = o->max_recv_bytes ? o->max_recv_bytes : 64 * 1024;
	int r = bus_errno(nng_req0_open(&b->sock));
	if (r < 0)
		goto fail;
	b->sock_open = true;
	nng_pipe_notify(b->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, b);
	nng_pipe_notify(b->sock, NNG_PIPE_EV_REM_POST, pipe_cb, b);
	if ((r = bus_errno(nng_socket_set_ms(b->sock, NNG_OPT_REQ_RESENDTIME, (nng_duration)o->resend_ms))) < 0 ||
	    (r = bus_errno(nng_socket_set_size(b->sock, NNG_OPT_RECVMAXSZ, o->max_recv_bytes))) < 0)
		goto fail;
	if ((r = tls_setup(o->url, &o->tls, false, &b->tls)) < 0)
		goto fail;
	if ((r = bus_errno(nng_dialer_create(&b->dialer, b->sock, o->url))) < 0)
		goto fail;
	nng_dialer_set_ms(b->dialer, NNG_OPT_RECONNMINT, (nng_duration)o->reconnect_min_ms);
	nng_dialer_set_ms(b->dialer, NNG_OPT_RECONNMAXT, (nng_duration)o->reconnect_max_ms);
	if (b->tls && (r = bus_errno(nng_dialer_set_ptr(b->dialer, NNG_OPT_TLS_CONFIG, b->tls))) < 0)
		goto fail;
	b->ctx = calloc(o->contexts, sizeof(*b->ctx));
	if (!b->ctx) {
		r = -ENOMEM;
		goto fail;
	}
	b->nctx = o->contexts;
	for (uint32_t i = 0; i < b->nctx; i++) {
		struct req_ctx *c = &b->ctx[i];
		c->b = b;
		if ((r = bus_errno(nng_aio_alloc(&c->aio, req_cb, c))) < 0 ||
		    (r = bus_errno(nng_ctx_open(&c->ctx, b->sock))) < 0)
			goto fail;
		c->opened = true;
	}
	/* non-blocking: returns at once and keeps redialing while nobody listens */
	if ((r = bus_errno(nng_dialer_start(b->dialer, NNG_FLAG_NONBLOCK))) < 0)
		goto fail;
	*ret = b;
	return 0;
fail:
	bus_req_free(b);
	return r;
}

struct bus_req *bus_req_free(struct bus_req *b)
{
	if (!b)
		return NULL;
	/* the connection first, while the socket is whole; then the requests in flight. The pipe
	 * callbacks go before anything, since an abandoned close may still run them */
	if (b->sock_open) {
		nng_pipe_notify(b->sock, NNG_PIPE_EV_ADD_POST, NULL, NULL);
		nng_pipe_notify(b->sock, NNG_PIPE_EV_REM_POST, NULL, NULL);
		nng_dialer_close(b->dialer);
	}
	for (uint32_t i = 0; b->ctx && i < b->nctx; i++)
		if (b->ctx[i].aio)
			nng_aio_stop(b->ctx[i].aio); /* runs pending callbacks with -ECANCELED */
	for (uint32_t i = 0; b->ctx && i < b->nctx; i++) {
		if (b->ctx[i].opened)
			nng_ctx_close(b->ctx[i].ctx);
		nng_aio_free(b->ctx[i].aio);
	}
	if (b->sock_open && close_socket(b->sock) < 0)
		ms_debug("BUS-CLOSE-HANG", "nng_close did not return within %d ms: socket abandoned", BUS_CLOSE_WAIT_MS);
	if (b->tls)
		nng_tls_config_free(b->tls);
	free(b->ctx);
	pthread_mutex_destroy(&b->mu);
	free(b);
	return NULL;
}

int bus_req_send(struct bus_req *b, uint64_t tag, const void *data, size_t len)
{
	if (len > b->o.max_send_bytes)
		return -EMSGSIZE;
	nng_msg *m;
	if (nng_msg_alloc(&m, len) != 0)
		return -ENOMEM;
	if (len)
		memcpy(nng_msg_body(m), data, len);
	struct req_ctx *c = NULL;
	pthread_mutex_lock(&b->mu);
	for (uint32_t i = 0; i < b->nctx && !c; i++)
		if (b->ctx[i].state == CTX_IDLE)
			c = &b->ctx[i];
	if (c) {
		c->state = CTX_SEND;
		c->tag = tag;
	}
	pthread_mutex_unlock(&b->mu);
	if (!c) {
		nng_msg_free(m);
		return -EBUSY;
	}
	nng_aio_set_msg(c->aio, m);
	nng_aio_set_timeout(c->aio, (nng_duration)b->o.timeout_ms);
	nng_ctx_send(c->ctx, c->aio);
	return 0;
}

uint32_t bus_req_idle(struct bus_req *b)
{
	uint32_t n = 0;
	pthread_mutex_lock(&b->mu);
	for (uint32_t i = 0; i < b->nctx; i++)
		n += b->ctx[i].state == CTX_IDLE;
	pthread_mutex_unlock(&b->mu);
	return n;
}

bool bus_req_connected(struct bus_req *b)
{
	return atomic_load(&b->pipes) > 0;
}

/* ------------------------------------------------------------------ REP */

enum { CALL_RECV = 0, CALL_HANDLER, CALL_SEND, CALL_DEAD };

struct bus_call {
	struct bus_rep *b;
	nng_ctx ctx;
	nng_aio *aio;
	nng_msg *msg;   /* the request while the handler has it */
	int state;
	bool opened;
};

struct bus_rep {
	struct bus_rep_opts o;
	bus_request_fn fn;
	void *arg;
	nng_socket sock;
	bool sock_open;
	nng_listener listener;
	nng_tls_config *tls;
	uint32_t ncalls;
	struct bus_call *calls;
	atomic_bool closing;
	uint16_t port;
};

static void rep_arm(struct bus_call *c)
{
	if (atomic_load(&c->b->closing)) {
		c->state = CALL_DEAD;
		return;
	}
	c->state = CALL_RECV;
	nng_ctx_recv(c->ctx, c->aio);
}

static void rep_cb(void *p)
{
	struct bus_call *c = p;
	int rv = nng_aio_result(c->aio);
	if (c->state == CALL_SEND) {
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(c->aio));
		rep_arm(c);
		return;
	}
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
		c->state = CALL_DEAD;
		return;
	}
	if (rv != 0) {
		rep_arm(c);
		return;
	}
	c->msg = nng_aio_get_msg(c->aio);
	c->state = CALL_HANDLER;
	c->b->fn(c->b->arg, c, nng_msg_body(c->msg), nng_msg_len(c->msg));
}

int bus_rep_new(const struct bus_rep_opts *opts, bus_request_fn fn, void *arg, struct bus_rep **ret)
{
	if (!opts || !opts->url || !opts->url[0] || !fn || opts->contexts > BUS_MAX_CONTEXTS)
		return -EINVAL;
	struct bus_rep *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->o = *opts;
	b->fn = fn;
	b->arg = arg;
	b->o.contexts = b->o.contexts ? b->o.contexts : 16;
	b->o.max_recv_bytes = b->o.max_recv_bytes ? b->o.max_recv_bytes : BUS_DEFAULT_MAX_MSG;
	int r = bus_errno(nng_rep0_open(&b->sock));
	if (r < 0)
		goto fail;
	b->sock_open = true;
	if ((r = bus_errno(nng_socket_set_size(b->sock, NNG_OPT_RECVMAXSZ, b->o.max_recv_bytes))) < 0 ||
	    (r = tls_setup(b->o.url, &b->o.tls, true, &b->tls)) < 0 ||
	    (r = bus_errno(nng_listener_create(&b->listener, b->sock, b->o.url))) < 0)
		goto fail;
	if (b->tls && (r = bus_errno(nng_listener_set_ptr(b->listener, NNG_OPT_TLS_CONFIG, b->tls))) < 0)
		goto fail;
	b->calls = calloc(b->o.contexts, sizeof(*b->calls));
	if (!b->calls) {
		r = -ENOMEM;
		goto fail;
	}
	b->ncalls = b->o.contexts;
	for (uint32_t i = 0; i < b->ncalls; i++) {
		struct bus_call *c = &b->calls[i];
		c->b = b;
		c->state = CALL_DEAD;
		if ((r = bus_errno(nng_aio_alloc(&c->aio, rep_cb, c))) < 0 ||
		    (r = bus_errno(nng_ctx_open(&c->ctx, b->sock))) < 0)
			goto fail;
		c->opened = true;
	}
	if ((r = bus_errno(nng_listener_start(b->listener, 0))) < 0)
		goto fail;
	int port = 0;
	if (strncmp(b->o.url, "ipc", 3) != 0 && nng_listener_get_int(b->listener, NNG_OPT_TCP_BOUND_PORT, &port) == 0)
		b->port = (uint16_t)port;
	for (uint32_t i = 0; i < b->ncalls; i++)
		rep_arm(&b->calls[i]);
	*ret = b;
	return 0;
fail:
	bus_rep_close(b);
	bus_rep_free(b);
	return r;
}

void bus_rep_close(struct bus_rep *b)
{
	if (!b || atomic_exchange(&b->closing, true))
		return;
	/* closing the socket fails every waiting receive (their contexts go dead); a call held by
	 * a handler stays valid: its reply then fails quietly and the context goes dead too */
	if (b->sock_open) {
		if (close_socket(b->sock) < 0)
			ms_debug("BUS-CLOSE-HANG", "nng_close did not return within %d ms: socket abandoned",
				 BUS_CLOSE_WAIT_MS);
		b->sock_open = false;
	}
}

struct bus_rep *bus_rep_free(struct bus_rep *b)
{
	if (!b)
		return NULL;
	bus_rep_close(b);
	for (uint32_t i = 0; b->calls && i < b->ncalls; i++)
		if (b->calls[i].aio)
			nng_aio_stop(b->calls[i].aio);
	for (uint32_t i = 0; b->calls && i < b->ncalls; i++) {
		if (b->calls[i].opened)
			nng_ctx_close(b->calls[i].ctx);
		nng_aio_free(b->calls[i].aio);
	}
	if (b->tls)
		nng_tls_config_free(b->tls);
	free(b->calls);
	free(b);
	return NULL;
}

uint16_t bus_rep_port(struct bus_rep *b)
{
	return b->port;
}

void bus_call_peer(const struct bus_call *c, struct bus_peer *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!c->msg)
		return;
	nng_pipe p = nng_msg_get_pipe(c->msg);
	nng_sockaddr sa;
	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) == 0) {
		char a[INET6_ADDRSTRLEN] = "";
		if (sa.s_family == NNG_AF_INET) {
			inet_ntop(AF_INET, &sa.s_in.sa_addr, a, sizeof(a));
			snprintf(ret->addr, sizeof(ret->addr), "%s:%u", a, ntohs(sa.s_in.sa_port));
		} else if (sa.s_family == NNG_AF_INET6) {
			inet_ntop(AF_INET6, sa.s_in6.sa_addr, a, sizeof(a));
			snprintf(ret->addr, sizeof(ret->addr), "[%s]:%u", a, ntohs(sa.s_in6.sa_port));
		} else if (sa.s_family == NNG_AF_IPC) {
			snprintf(ret->addr, sizeof(ret->addr), "ipc");
		}
	}
	bool v = false;
	ret->tls = c->b->tls != NULL;
	if (ret->tls && nng_pipe_get_bool(p, NNG_OPT_TLS_VERIFIED, &v) == 0)
		ret->tls_verified = v;
}

int bus_call_reply(struct bus_call *c, const void *data, size_t len)
{
	nng_msg *m;
	nng_msg_free(c->msg);
	c->msg = NULL;
	if (nng_msg_alloc(&m, len) != 0) {
		rep_arm(c);
		return -ENOMEM;
	}
	if (len)
		memcpy(nng_msg_body(m), data, len);
	c->state = CALL_SEND;
	nng_aio_set_msg(c->aio, m);
	nng_ctx_send(c->ctx, c->aio);
	return 0;
}

void bus_call_drop(struct bus_call *c)
{
	nng_msg_free(c->msg);
	c->msg = NULL;
	rep_arm(c);
}
