/* rpc: server streams — the per-stream queue, the one send batch in flight, finish, and the
 * completions the CQ thread hands back (rpc.c). See rpc.h and rpc_int.h. */
#include "rpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>

#include "rpc_int.h"

void rpc_stream_ref(struct rpc_stream *s)
{
	atomic_fetch_add(&s->refs, 1);
}

static void qdrop(struct rpc_stream *s)
{
	while (s->qn) {
		free(s->q[s->qhead].buf);
		s->qhead = (s->qhead + 1) % RPC_STREAM_QUEUE;
		s->qn--;
	}
}

void rpc_stream_unref(struct rpc_stream *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	qdrop(s);
	if (s->have_status_slice)
		grpc_slice_unref(s->status_slice);
	if (s->call)
		grpc_call_unref(s->call);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* Starts the next batch if none is in flight. Caller holds s->mu. */
static void kick(struct rpc_stream *s)
{
	if (!s->started || s->inflight || s->status_sent || (s->ended && !s->finish_req))
		return;
	grpc_op op;
	memset(&op, 0, sizeof(op));
	if (s->qn && !s->ended) {
		struct qmsg *m = &s->q[s->qhead];
		s->inflight_bb = rpc_bb_from(m->buf, m->len);
		free(m->buf);
		s->qhead = (s->qhead + 1) % RPC_STREAM_QUEUE;
		s->qn--;
		op.op = GRPC_OP_SEND_MESSAGE;
		op.data.send_message.send_message = s->inflight_bb;
	} else if (s->finish_req && !s->ended) {
		s->status_slice = grpc_slice_from_copied_string(s->fin_detail);
		s->have_status_slice = true;
		op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
		op.data.send_status_from_server.status = (grpc_status_code)s->fin_code;
		op.data.send_status_from_server.status_details = &s->status_slice;
		s->status_sent = true;
	} else {
		return;
	}
	rpc_stream_ref(s);
	s->inflight = true;
	if (grpc_call_start_batch(s->call, &op, 1, &s->send_tag, NULL) != GRPC_CALL_OK) {
		s->inflight = false;
		s->ended = true;
		if (s->inflight_bb) {
			grpc_byte_buffer_destroy(s->inflight_bb);
			s->inflight_bb = NULL;
		}
		atomic_fetch_sub(&s->refs, 1); /* cannot reach 0: the close tag holds one */
	}
}

int rpc_stream_send(struct rpc_stream *s, const uint8_t *buf, size_t len)
{
	int r = 0;
	pthread_mutex_lock(&s->mu);
	if (s->ended || s->finish_req) {
		r = -EPIPE;
	} else if (s->qn == RPC_STREAM_QUEUE) {
		atomic_fetch_add(&s->cnt->stream_drops, 1);
		r = -ENOSPC;
	} else {
		uint8_t *c = malloc(len ? len : 1);
		if (!c) {
			r = -ENOMEM;
		} else {
			memcpy(c, buf, len);
			s->q[(s->qhead + s->qn) % RPC_STREAM_QUEUE] = (struct qmsg){ c, len };
			s->qn++;
			atomic_fetch_add(&s->cnt->stream_msgs, 1);
			kick(s);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

void rpc_stream_finish(struct rpc_stream *s, int code, const char *detail)
{
	pthread_mutex_lock(&s->mu);
	if (!s->finish_req && !s->ended) {
		s->finish_req = true;
		s->fin_code = code;
		snprintf(s->fin_detail, sizeof(s->fin_detail), "%s", detail ? detail : "");
		kick(s);
	}
	pthread_mutex_unlock(&s->mu);
}

void rpc_stream_peer(struct rpc_stream *s, char *out, size_t cap)
{
	snprintf(out, cap, "%s", s->peer);
}

void rpc_stream_set_user(struct rpc_stream *s, void *user)
{
	s->user = user;
}

void *rpc_stream_user(struct rpc_stream *s)
{
	return s->user;
}

void rpc_stream_on_send_done(struct rpc_stream *s, bool ok)
{
	pthread_mutex_lock(&s->mu);
	s->inflight = false;
	if (s->inflight_bb) {
		grpc_byte_buffer_destroy(s->inflight_bb);
		s->inflight_bb = NULL;
	}
	if (!ok) {
		s->ended = true;
		qdrop(s);
	} else {
		kick(s);
	}
	pthread_mutex_unlock(&s->mu);
	rpc_stream_unref(s);
}

void rpc_stream_on_close_done(struct rpc_stream *s)
{
	pthread_mutex_lock(&s->mu);
	s->ended = true;
	qdrop(s);
	bool cb = s->kept && !s->closed_cb;
	s->closed_cb = true;
	pthread_mutex_unlock(&s->mu);
	atomic_fetch_sub(&s->cnt->streams_open, 1);
	if (cb && s->m->close)
		s->m->close(s->m->arg, s);
	rpc_stream_unref(s);
}

