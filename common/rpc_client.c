/* rpc: client side over the gRPC C core. See rpc.h.
 *
 * Blocking calls on pluck completion queues: a unary call owns a queue for its lifetime (one
 * create/destroy per call, cheap next to the round trip, and no limit on concurrent pluckers);
 * a stream owns one for its lifetime with its status batch posted at open and one RECV_MESSAGE
 * at a time. The bearer token travels as "authorization" metadata on every call: the C core's
 * call credentials are only sent over TLS, and tests run plaintext too. */
#include "rpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "rpc_int.h"

struct rpc_client {
	grpc_channel *ch;
	char auth[300];
};

struct rpc_cstream {
	grpc_completion_queue *cq;
	grpc_call *call;
	grpc_byte_buffer *send_bb, *recv_bb;
	grpc_metadata md;
	grpc_metadata_array init_md, trail_md;
	grpc_status_code status;
	grpc_slice details;
	int tag_start, tag_msg, tag_status;
	bool start_done, msg_pending, status_done;
	struct rpc_status final;
};

static gpr_timespec deadline_in(uint32_t ms)
{
	if (!ms)
		return gpr_inf_future(GPR_CLOCK_REALTIME);
	return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

int rpc_client_new(const struct rpc_client_opts *o, struct rpc_client **ret)
{
	if (!o || !o->target || !o->target[0] || (o->token && strlen(o->token) > 280))
		return -EINVAL;
	struct rpc_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (o->token && o->token[0])
		snprintf(c->auth, sizeof(c->auth), "Bearer %s", o->token);
	grpc_init();
	grpc_channel_credentials *creds = NULL;
	int r = 0;
	if (o->tls_ca_file && o->tls_ca_file[0]) {
		char *ca = NULL, *cert = NULL, *key = NULL;
		r = rpc_read_pem(o->tls_ca_file, &ca);
		if (r == 0 && o->tls_cert_file && o->tls_cert_file[0]) {
			r = rpc_read_pem(o->tls_cert_file, &cert);
			if (r == 0)
				r = rpc_read_pem(o->tls_key_file ? o->tls_key_file : "", &key);
		}
		if (r == 0) {
			grpc_ssl_pem_key_cert_pair kp = { key, cert };
			creds = grpc_ssl_credentials_create(ca, cert ? &kp : NULL, NULL, NULL);
		}
		free(ca);
		free(cert);
		free(key);
	} else {
		creds = grpc_insecure_credentials_create();
	}
	if (!creds) {
		grpc_shutdown();
		free(c);
		return r ? r : -EINVAL;
	}
	grpc_arg args[7];
	memset(args, 0, sizeof(args));
	int n = 0;
	const struct { const char *k; int v; } kv[] = {
		{ GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, (int)(o->max_message_bytes ? o->max_message_bytes : 4u << 20) },
		{ GRPC_ARG_KEEPALIVE_TIME_MS, (int)(o->keepalive_ms ? o->keepalive_ms : 10000) },
		{ GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000 },
		{ GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1 },
		{ GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100 },
		{ GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000 },
	};
	for (; n < (int)(sizeof(kv) / sizeof(kv[0])); n++) {
		args[n].type = GRPC_ARG_INTEGER;
		args[n].key = (char *)kv[n].k;
		args[n].value.integer = kv[n].v;
	}
	if (o->tls_server_name && o->tls_server_name[0]) {
		args[n].type = GRPC_ARG_STRING;
		args[n].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
		args[n++].value.string = (char *)o->tls_server_name;
	}
	grpc_channel_args ca = { (size_t)n, args };
	c->ch = grpc_channel_create(o->target, creds, &ca);
	grpc_channel_credentials_release(creds);
	if (!c->ch) {
		grpc_shutdown();
		free(c);
		return -EINVAL;
	}
	*ret = c;
	return 0;
}

struct rpc_client *rpc_client_free(struct rpc_client *c)
{
	if (!c)
		return NULL;
	grpc_channel_destroy(c->ch);
	grpc_shutdown();
	free(c);
	return NULL;
}

static void cq_destroy(grpc_completion_queue *cq)
{
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
}

static void set_status(struct rpc_status *st, grpc_status_code code, grpc_slice details, const char *err)
{
	if (!st)
		return;
	st->code = (int)code;
	size_t n = GRPC_SLICE_LENGTH(details);
	if (n >= sizeof(st->detail))
		n = sizeof(st->detail) - 1;
	memcpy(st->detail, GRPC_SLICE_START_PTR(details), n);
	st->detail[n] = 0;
	if (!n && err && code != GRPC_STATUS_OK)
		snprintf(st->detail, sizeof(st->detail), "%s", err);
}

int rpc_call(struct rpc_client *c, const char *method, const uint8_t *req, size_t len, uint32_t timeout_ms,
	     uint8_t **ret_buf, size_t *ret_len, struct rpc_status *st)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_slice ms = grpc_slice_from_copied_string(method);
	grpc_call *call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, ms, NULL,
						   deadline_in(timeout_ms ? timeout_ms : 5000), NULL);
	grpc_slice_unref(ms);
	if (!call) {
		cq_destroy(cq);
		return -ENOMEM;
	}
	grpc_metadata md = { 0 };
	grpc_metadata_array init_md, trail_md;
	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trail_md);
	grpc_byte_buffer *send = rpc_bb_from(req ? req : (const uint8_t *)"", req ? len : 0), *recv = NULL;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	const char *err_str = NULL;
	grpc_op ops[6];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (c->auth[0]) {
		md.key = grpc_slice_from_static_string("authorization");
		md.value = grpc_slice_from_static_string(c->auth);
		ops[0].data.send_initial_metadata.count = 1;
		ops[0].data.send_initial_metadata.metadata = &md;
	}
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
	ops[5].data.recv_status_on_client.error_string = &err_str;
	int tag = 0, r;
	if (grpc_call_start_batch(call, ops, 6, &tag, NULL) != GRPC_CALL_OK) {
		r = -EIO;
	} else {
		grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		set_status(st, status, details, err_str);
		r = (int)status;
		if (status == GRPC_STATUS_OK) {
			*ret_buf = NULL;
			*ret_len = 0;
			if (recv && (r = rpc_bb_to(recv, ret_buf, ret_len)) < 0)
				r = -ENOMEM;
		}
	}
	if (recv)
		grpc_byte_buffer_destroy(recv);
	grpc_byte_buffer_destroy(send);
	grpc_slice_unref(details);
	if (err_str)
		gpr_free((void *)err_str);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trail_md);
	grpc_call_unref(call);
	cq_destroy(cq);
	return r;
}

int rpc_cstream_open(struct rpc_client *c, const char *method, const uint8_t *req, size_t len, uint32_t timeout_ms,
		     struct rpc_cstream **ret)
{
	struct rpc_cstream *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_slice ms = grpc_slice_from_copied_string(method);
	s->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq, ms, NULL,
					   deadline_in(timeout_ms), NULL);
	grpc_slice_unref(ms);
	if (!s->call) {
		cq_destroy(s->cq);
		free(s);
		return -ENOMEM;
	}
	grpc_metadata_array_init(&s->init_md);
	grpc_metadata_array_init(&s->trail_md);
	s->details = grpc_empty_slice();
	s->status = GRPC_STATUS_UNKNOWN;
	s->send_bb = rpc_bb_from(req ? req : (const uint8_t *)"", req ? len : 0);
	grpc_op ops[4];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (c->auth[0]) {
		s->md.key = grpc_slice_from_static_string("authorization");
		s->md.value = grpc_slice_from_copied_string(c->auth);
		ops[0].data.send_initial_metadata.count = 1;
		ops[0].data.send_initial_metadata.metadata = &s->md;
	}
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = s->send_bb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
	grpc_call_error e1 = grpc_call_start_batch(s->call, ops, 4, &s->tag_start, NULL);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.status = &s->status;
	ops[0].data.recv_status_on_client.status_details = &s->details;
	ops[0].data.recv_status_on_client.trailing_metadata = &s->trail_md;
	grpc_call_error e2 = grpc_call_start_batch(s->call, ops, 1, &s->tag_status, NULL);
	s->start_done = e1 != GRPC_CALL_OK;
	s->status_done = e2 != GRPC_CALL_OK;
	if (e1 != GRPC_CALL_OK || e2 != GRPC_CALL_OK) {
		rpc_cstream_free(s);
		return -EIO;
	}
	*ret = s;
	return 0;
}

static void wait_status(struct rpc_cstream *s)
{
	if (s->status_done)
		return;
	grpc_completion_queue_pluck(s->cq, &s->tag_status, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	s->status_done = true;
	set_status(&s->final, s->status, s->details, NULL);
}

int rpc_cstream_next(struct rpc_cstream *s, uint32_t wait_ms, uint8_t **ret_buf, size_t *ret_len)
{
	if (s->status_done && !s->msg_pending)
		return 0;
	if (!s->msg_pending) {
		grpc_op op;
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_RECV_MESSAGE;
		op.data.recv_message.recv_message = &s->recv_bb;
		s->recv_bb = NULL;
		if (grpc_call_start_batch(s->call, &op, 1, &s->tag_msg, NULL) != GRPC_CALL_OK) {
			wait_status(s);
			return 0;
		}
		s->msg_pending = true;
	}
	grpc_event ev = grpc_completion_queue_pluck(s->cq, &s->tag_msg, deadline_in(wait_ms), NULL);
	if (ev.type == GRPC_QUEUE_TIMEOUT)
		return -ETIMEDOUT;
	s->msg_pending = false;
	if (!s->recv_bb) {
		wait_status(s);
		return 0;
	}
	int r = rpc_bb_to(s->recv_bb, ret_buf, ret_len);
	grpc_byte_buffer_destroy(s->recv_bb);
	s->recv_bb = NULL;
	return r < 0 ? r : 1;
}

void rpc_cstream_status(struct rpc_cstream *s, struct rpc_status *ret)
{
	*ret = s->final;
}

void rpc_cstream_cancel(struct rpc_cstream *s)
{
	grpc_call_cancel(s->call, NULL);
}

struct rpc_cstream *rpc_cstream_free(struct rpc_cstream *s)
{
	if (!s)
		return NULL;
	grpc_call_cancel(s->call, NULL);
	if (s->msg_pending) {
		grpc_completion_queue_pluck(s->cq, &s->tag_msg, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (s->recv_bb)
			grpc_byte_buffer_destroy(s->recv_bb);
	}
	if (!s->start_done)
		grpc_completion_queue_pluck(s->cq, &s->tag_start, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (!s->status_done)
		grpc_completion_queue_pluck(s->cq, &s->tag_status, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_call_unref(s->call);
	cq_destroy(s->cq);
	grpc_byte_buffer_destroy(s->send_bb);
	grpc_slice_unref(s->md.value);
	grpc_slice_unref(s->details);
	grpc_metadata_array_destroy(&s->init_md);
	grpc_metadata_array_destroy(&s->trail_md);
	free(s);
	return NULL;
}
