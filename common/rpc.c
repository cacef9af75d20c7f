/* rpc: server side over the gRPC C core. See rpc.h.
 *
 * One completion queue, one thread calling grpc_completion_queue_next on it. Every tag is a
 * struct rpc_tag whose first field says what completed. Each registered method keeps one
 * pending request slot that is re-armed as soon as a call arrives. Unary calls finish in one
 * batch (initial metadata, message, status, close). Streams post RECV_CLOSE_ON_SERVER at once
 * and keep at most one send batch in flight (the C core allows one op of a kind outstanding);
 * rpc_stream_send queues under the stream's mutex and starts the batch itself when nothing is in
 * flight, so pushes from other threads cost one start_batch and no wake-up of the CQ thread
 * (the C core has no public alarm). Streams are reference counted: one reference per
 * outstanding tag, plus the owner's. */
#include "rpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>

#include "rpc_int.h"

struct slot {                    /* pending request of one method */
	struct rpc_tag tag;
	struct rpc_server *srv;
	uint32_t mi;
	void *handle;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
};

struct gslot {                   /* calls to methods nobody registered: UNIMPLEMENTED */
	struct rpc_tag tag;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array md;
};

struct ucall {                   /* a unary reply (or a refused stream) in flight */
	struct rpc_tag tag;
	grpc_call *call;
	grpc_byte_buffer *bb;
	grpc_slice details;
	int cancelled;
};

struct rpc_server {
	grpc_server *srv;
	grpc_completion_queue *cq;
	pthread_t thr;
	bool thr_started;
	atomic_bool stopping;
	pthread_mutex_t life_mu;      /* orders shutdown+cancel (caller) before destroy (CQ thread) */
	struct rpc_tag shutdown_tag;
	char auth[300];               /* "Bearer <token>" or "" */
	struct rpc_method methods[RPC_MAX_METHODS];
	struct slot slots[RPC_MAX_METHODS];
	struct gslot generic;
	uint32_t nmethods;
	uint16_t port;
	atomic_uint_fast64_t calls, unauth;
	struct rpc_counters cnt;
};

const char *rpc_code_name(int code)
{
	static const char *const n[] = { "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
					 "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
					 "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
					 "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED" };
	return code >= 0 && code < (int)(sizeof(n) / sizeof(n[0])) ? n[code] : "?";
}

/* ---------------------------------------------------------------- helpers shared with rpc_client.c */

int rpc_read_pem(const char *path, char **ret)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char *buf = malloc(RPC_PEM_MAX + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	size_t n = fread(buf, 1, RPC_PEM_MAX + 1, f);
	fclose(f);
	if (n == 0 || n > RPC_PEM_MAX) {
		free(buf);
		return n ? -EFBIG : -ENODATA;
	}
	buf[n] = 0;
	*ret = buf;
	return 0;
}

grpc_byte_buffer *rpc_bb_from(const uint8_t *buf, size_t len)
{
	grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

int rpc_bb_to(grpc_byte_buffer *bb, uint8_t **ret, size_t *ret_len)
{
	grpc_byte_buffer_reader r;
	if (!grpc_byte_buffer_reader_init(&r, bb))
		return -EBADMSG;
	grpc_slice s = grpc_byte_buffer_reader_readall(&r);
	size_t n = GRPC_SLICE_LENGTH(s);
	uint8_t *out = malloc(n ? n : 1);
	if (out)
		memcpy(out, GRPC_SLICE_START_PTR(s), n);
	grpc_slice_unref(s);
	grpc_byte_buffer_reader_destroy(&r);
	if (!out)
		return -ENOMEM;
	*ret = out;
	*ret_len = n;
	return 0;
}

/* ---------------------------------------------------------------- calls */

/* Answers a call in one batch and forgets it; the completion frees the context. */
static void reply_unary(grpc_call *call, struct rpc_reply *rep)
{
	struct ucall *u = calloc(1, sizeof(*u));
	if (!u) {
		grpc_call_cancel(call, NULL);
		grpc_call_unref(call);
		free(rep->buf);
		return;
	}
	u->tag.kind = T_UNARY;
	u->tag.p = u;
	u->call = call;
	grpc_op ops[4];
	memset(ops, 0, sizeof(ops));
	size_t n = 0;
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (rep->code == RPC_OK) {
		u->bb = rpc_bb_from(rep->buf ? rep->buf : (const uint8_t *)"", rep->buf ? rep->len : 0);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = u->bb;
	}
	free(rep->buf);
	rep->buf = NULL;
	u->details = grpc_slice_from_copied_string(rep->code == RPC_OK ? "" : rep->detail);
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = (grpc_status_code)rep->code;
	ops[n++].data.send_status_from_server.status_details = &u->details;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &u->cancelled;
	if (grpc_call_start_batch(call, ops, n, &u->tag, NULL) != GRPC_CALL_OK) {
		grpc_call_cancel(call, NULL);
		grpc_call_unref(call);
		if (u->bb)
			grpc_byte_buffer_destroy(u->bb);
		grpc_slice_unref(u->details);
		free(u);
	}
}

static void on_unary_done(struct ucall *u)
{
	if (u->bb)
		grpc_byte_buffer_destroy(u->bb);
	grpc_slice_unref(u->details);
	grpc_call_unref(u->call);
	free(u);
}

static bool authorized(struct rpc_server *srv, const grpc_metadata_array *md)
{
	if (!srv->auth[0])
		return true;
	size_t want = strlen(srv->auth);
	for (size_t i = 0; i < md->count; i++) {
		if (grpc_slice_str_cmp(md->metadata[i].key, "authorization") != 0)
			continue;
		const grpc_slice *v = &md->metadata[i].value;
		if (GRPC_SLICE_LENGTH(*v) != want)
			return false;
		/* constant time over the token length: no early exit on the first difference */
		unsigned diff = 0;
		const uint8_t *p = GRPC_SLICE_START_PTR(*v);
		for (size_t k = 0; k < want; k++)
			diff |= p[k] ^ (uint8_t)srv->auth[k];
		return diff == 0;
	}
	return false;
}

static void start_stream(struct rpc_server *srv, const struct rpc_method *m, grpc_call *call, const uint8_t *req,
			 size_t len)
{
	struct rpc_reply rep = { .code = RPC_OK };
	struct rpc_stream *s = calloc(1, sizeof(*s));
	if (!s) {
		rep.code = RPC_RESOURCE_EXHAUSTED;
		snprintf(rep.detail, sizeof(rep.detail), "out of memory");
		reply_unary(call, &rep);
		return;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->send_tag = (struct rpc_tag){ T_SEND, s };
	s->close_tag = (struct rpc_tag){ T_CLOSE, s };
	s->cnt = &srv->cnt;
	s->m = m;
	atomic_init(&s->refs, 1); /* ours, until the end of this function */
	char *peer = grpc_call_get_peer(call);
	if (peer) {
		snprintf(s->peer, sizeof(s->peer), "%s", peer);
		gpr_free(peer);
	}
	/* The handler may publish s at once and other threads may send before the stream is set
	 * up: messages queue until `started`, when the initial metadata batch's completion kicks. */
	m->stream(m->arg, s, req, len, &rep);
	if (rep.code != RPC_OK) {
		rpc_stream_unref(s);
		reply_unary(call, &rep);
		return;
	}
	free(rep.buf);
	pthread_mutex_lock(&s->mu);
	s->call = call;
	s->kept = true;
	pthread_mutex_unlock(&s->mu);
	atomic_fetch_add(&srv->cnt.streams_open, 1);
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &s->cancelled;
	rpc_stream_ref(s);
	pthread_mutex_lock(&s->mu);
	if (grpc_call_start_batch(call, &op, 1, &s->close_tag, NULL) != GRPC_CALL_OK) {
		pthread_mutex_unlock(&s->mu);
		grpc_call_cancel(call, NULL);
		atomic_fetch_sub(&s->refs, 1);
		rpc_stream_on_close_done(s); /* drops our reference */
		return;
	}
	/* initial metadata now, so the client sees the stream open before the first command */
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_INITIAL_METADATA;
	rpc_stream_ref(s);
	s->inflight = true;
	s->started = true;
	if (grpc_call_start_batch(call, &op, 1, &s->send_tag, NULL) != GRPC_CALL_OK) {
		s->inflight = false;
		atomic_fetch_sub(&s->refs, 1);
		grpc_call_cancel(call, NULL);
	}
	pthread_mutex_unlock(&s->mu);
	rpc_stream_unref(s);
}

static int arm(struct slot *sl)
{
	grpc_metadata_array_init(&sl->md);
	sl->payload = NULL;
	sl->call = NULL;
	grpc_call_error e = grpc_server_request_registered_call(sl->srv->srv, sl->handle, &sl->call, &sl->deadline,
								&sl->md, &sl->payload, sl->srv->cq, sl->srv->cq,
								&sl->tag);
	if (e != GRPC_CALL_OK) {
		grpc_metadata_array_destroy(&sl->md);
		return -EIO;
	}
	return 0;
}

static void on_request(struct slot *sl, bool ok)
{
	struct rpc_server *srv = sl->srv;
	if (!ok) { /* shutdown: the slot is dead */
		grpc_metadata_array_destroy(&sl->md);
		if (sl->payload)
			grpc_byte_buffer_destroy(sl->payload);
		return;
	}
	grpc_call *call = sl->call;
	grpc_byte_buffer *payload = sl->payload;
	bool auth = sl->srv->methods[sl->mi].no_auth || authorized(srv, &sl->md);
	grpc_metadata_array_destroy(&sl->md);
	if (!atomic_load(&srv->stopping))
		arm(sl);
	const struct rpc_method *m = &srv->methods[sl->mi];
	atomic_fetch_add(&srv->calls, 1);
	struct rpc_reply rep = { .code = RPC_OK };
	uint8_t *req = NULL;
	size_t len = 0;
	if (!auth) {
		atomic_fetch_add(&srv->unauth, 1);
		rep.code = RPC_UNAUTHENTICATED;
		snprintf(rep.detail, sizeof(rep.detail), "missing or wrong bearer token (metadata authorization: Bearer <token>)");
	} else if (!payload) {
		rep.code = RPC_INVALID_ARGUMENT;
		snprintf(rep.detail, sizeof(rep.detail), "no request message");
	} else if (rpc_bb_to(payload, &req, &len) < 0) {
		rep.code = RPC_INVALID_ARGUMENT;
		snprintf(rep.detail, sizeof(rep.detail), "unreadable request message");
	}
	if (payload)
		grpc_byte_buffer_destroy(payload);
	if (rep.code != RPC_OK)
		reply_unary(call, &rep);
	else if (m->unary) {
		m->unary(m->arg, req, len, &rep);
		reply_unary(call, &rep);
	} else
		start_stream(srv, m, call, req, len);
	free(req);
}

static void arm_generic(struct rpc_server *srv)
{
	struct gslot *g = &srv->generic;
	g->call = NULL;
	grpc_call_details_init(&g->details);
	grpc_metadata_array_init(&g->md);
	if (grpc_server_request_call(srv->srv, &g->call, &g->details, &g->md, srv->cq, srv->cq, &g->tag) != GRPC_CALL_OK) {
		grpc_call_details_destroy(&g->details);
		grpc_metadata_array_destroy(&g->md);
	}
}

static void on_generic(struct rpc_server *srv, bool ok)
{
	struct gslot *g = &srv->generic;
	grpc_call *call = g->call;
	grpc_call_details_destroy(&g->details);
	grpc_metadata_array_destroy(&g->md);
	if (!ok)
		return;
	if (!atomic_load(&srv->stopping))
		arm_generic(srv);
	struct rpc_reply rep = { .code = RPC_UNIMPLEMENTED };
	snprintf(rep.detail, sizeof(rep.detail), "no such method");
	reply_unary(call, &rep);
}

static void *cq_thread(void *arg)
{
	struct rpc_server *srv = arg;
	bool destroyed = false;
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		struct rpc_tag *t = ev.tag;
		switch (t->kind) {
		case T_REQUEST:
			on_request(t->p, ev.success);
			break;
		case T_GENERIC:
			on_generic(t->p, ev.success);
			break;
		case T_UNARY:
			on_unary_done(t->p);
			break;
		case T_SEND:
			rpc_stream_on_send_done(t->p, ev.success);
			break;
		case T_CLOSE:
			rpc_stream_on_close_done(t->p);
			break;
		case T_SHUTDOWN:
			pthread_mutex_lock(&srv->life_mu);
			pthread_mutex_unlock(&srv->life_mu);
			if (!destroyed) {
				grpc_server_destroy(srv->srv);
				srv->srv = NULL;
				destroyed = true;
				grpc_completion_queue_shutdown(srv->cq);
			}
			break;
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------- server */

static grpc_server_credentials *server_creds(const struct rpc_server_opts *o, int *ret_err)
{
	if (!o->tls_cert_file || !o->tls_cert_file[0])
		return grpc_insecure_server_credentials_create();
	char *cert = NULL, *key = NULL, *ca = NULL;
	int r = rpc_read_pem(o->tls_cert_file, &cert);
	if (r == 0)
		r = rpc_read_pem(o->tls_key_file ? o->tls_key_file : "", &key);
	if (r == 0 && o->tls_ca_file && o->tls_ca_file[0])
		r = rpc_read_pem(o->tls_ca_file, &ca);
	grpc_server_credentials *c = NULL;
	if (r == 0) {
		grpc_ssl_pem_key_cert_pair kp = { key, cert };
		c = grpc_ssl_server_credentials_create_ex(
			ca, &kp, 1,
			ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
			NULL);
		if (!c)
			r = -EINVAL;
	}
	free(cert);
	free(key);
	free(ca);
	*ret_err = r;
	return c;
}

int rpc_server_new(const struct rpc_server_opts *o, struct rpc_server **ret)
{
	if (!o || !o->address || !o->methods || !o->nmethods || o->nmethods > RPC_MAX_METHODS)
		return -EINVAL;
	for (uint32_t i = 0; i < o->nmethods; i++)
		if (!o->methods[i].name || !!o->methods[i].unary == !!o->methods[i].stream)
			return -EINVAL;
	if (o->token && strlen(o->token) > 280)
		return -EINVAL;
	struct rpc_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	grpc_init();
	pthread_mutex_init(&s->life_mu, NULL);
	if (o->token && o->token[0])
		snprintf(s->auth, sizeof(s->auth), "Bearer %s", o->token);
	memcpy(s->methods, o->methods, o->nmethods * sizeof(*o->methods));
	s->nmethods = o->nmethods;
	s->shutdown_tag = (struct rpc_tag){ T_SHUTDOWN, s };

	grpc_arg args[7];
	memset(args, 0, sizeof(args));
	const struct { const char *k; int v; } kv[7] = {
		/* no SO_REUSEPORT: a second server on a taken port must fail, not share it */
		{ GRPC_ARG_ALLOW_REUSEPORT, 0 },
		{ GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, (int)(o->max_message_bytes ? o->max_message_bytes : 4u << 20) },
		{ GRPC_ARG_KEEPALIVE_TIME_MS, 30000 },
		{ GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000 },
		{ GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1 },
		/* agents ping every 10 s on their Watch: allow it instead of answering too_many_pings */
		{ GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000 },
		{ GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0 },
	};
	for (int i = 0; i < 7; i++) {
		args[i].type = GRPC_ARG_INTEGER;
		args[i].key = (char *)kv[i].k;
		args[i].value.integer = kv[i].v;
	}
	grpc_channel_args ca = { 7, args };
	s->srv = grpc_server_create(&ca, NULL);
	s->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(s->srv, s->cq, NULL);
	for (uint32_t i = 0; i < s->nmethods; i++) {
		s->slots[i] = (struct slot){ .tag = { T_REQUEST, &s->slots[i] }, .srv = s, .mi = i };
		s->slots[i].handle = grpc_server_register_method(s->srv, s->methods[i].name, NULL,
								GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
		if (!s->slots[i].handle) {
			grpc_server_destroy(s->srv);
			grpc_completion_queue_shutdown(s->cq);
			grpc_completion_queue_destroy(s->cq);
			grpc_shutdown();
			free(s);
			return -EINVAL;
		}
	}
	int err = 0;
	grpc_server_credentials *creds = server_creds(o, &err);
	char addr[300];
	if (strchr(o->address, ':') && o->address[0] != '[')
		snprintf(addr, sizeof(addr), "[%s]:%u", o->address, o->port);
	else
		snprintf(addr, sizeof(addr), "%s:%u", o->address, o->port);
	int port = creds ? grpc_server_add_http2_port(s->srv, addr, creds) : 0;
	if (creds)
		grpc_server_credentials_release(creds);
	if (port <= 0) {
		grpc_server_destroy(s->srv);
		grpc_completion_queue_shutdown(s->cq);
		while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(s->cq);
		grpc_shutdown();
		free(s);
		return err ? err : -EADDRINUSE;
	}
	s->port = (uint16_t)port;
	grpc_server_start(s->srv);
	for (uint32_t i = 0; i < s->nmethods; i++)
		arm(&s->slots[i]);
	s->generic.tag = (struct rpc_tag){ T_GENERIC, s };
	arm_generic(s);
	if (pthread_create(&s->thr, NULL, cq_thread, s) != 0) {
		rpc_server_free(s);
		return -EAGAIN;
	}
	s->thr_started = true;
	*ret = s;
	return 0;
}

uint16_t rpc_server_port(const struct rpc_server *s)
{
	return s ? s->port : 0;
}

void rpc_server_get_stats(struct rpc_server *s, struct rpc_server_stats *ret)
{
	*ret = (struct rpc_server_stats){
		.calls = atomic_load(&s->calls),
		.unauthenticated = atomic_load(&s->unauth),
		.streams_open = atomic_load(&s->cnt.streams_open),
		.stream_msgs = atomic_load(&s->cnt.stream_msgs),
		.stream_drops = atomic_load(&s->cnt.stream_drops),
	};
}

struct rpc_server *rpc_server_free(struct rpc_server *s)
{
	if (!s)
		return NULL;
	atomic_store(&s->stopping, true);
	pthread_mutex_lock(&s->life_mu);
	grpc_server_shutdown_and_notify(s->srv, s->cq, &s->shutdown_tag);
	grpc_server_cancel_all_calls(s->srv);
	pthread_mutex_unlock(&s->life_mu);
	if (s->thr_started) {
		pthread_join(s->thr, NULL);
	} else {
		/* no thread yet: drive the queue here */
		cq_thread(s);
	}
	grpc_completion_queue_destroy(s->cq);
	grpc_shutdown();
	pthread_mutex_destroy(&s->life_mu);
	free(s);
	return NULL;
}
