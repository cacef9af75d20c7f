/* rpc_int: what rpc.c (server), rpc_stream.c (server streams) and rpc_client.c share; not
 * part of the rpc API. Thread-safety: the helpers are pure; a stream's fields are guarded by
 * its mutex as rpc_stream.c says. */
#ifndef MS_RPC_INT_H
#define MS_RPC_INT_H

#include <stddef.h>
#include <stdint.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <grpc/grpc.h>

#include "rpc.h"

#define RPC_PEM_MAX (1u << 20) /* certificates, keys and CA bundles beyond 1 MiB are refused */

enum tag_kind { T_REQUEST = 1, T_UNARY, T_SEND, T_CLOSE, T_SHUTDOWN, T_GENERIC };

struct rpc_tag {
	int kind;
	void *p;
};

/* Server counters the streams update. */
struct rpc_counters {
	atomic_uint_fast64_t streams_open, stream_msgs, stream_drops;
};

struct qmsg {
	uint8_t *buf;
	size_t len;
};

struct rpc_stream {
	struct rpc_tag send_tag, close_tag;
	struct rpc_counters *cnt;   /* the server's */
	const struct rpc_method *m;
	grpc_call *call;
	atomic_int refs;
	pthread_mutex_t mu;
	bool started, kept, inflight, ended, finish_req, status_sent, closed_cb;
	int fin_code;
	char fin_detail[RPC_DETAIL_MAX];
	grpc_slice status_slice;
	bool have_status_slice;
	grpc_byte_buffer *inflight_bb;
	struct qmsg q[RPC_STREAM_QUEUE];
	uint32_t qhead, qn;
	int cancelled;
	void *user;
	char peer[96];
};

/* Completions of a stream's tags, called by the CQ thread. */
void rpc_stream_on_send_done(struct rpc_stream *s, bool ok);
void rpc_stream_on_close_done(struct rpc_stream *s);

/* Reads a PEM file whole (NUL-terminated, malloc'd). -ENOENT/-EACCES, -EFBIG, -ENODATA. */
int rpc_read_pem(const char *path, char **ret);
/* A byte buffer holding a copy of buf. */
grpc_byte_buffer *rpc_bb_from(const uint8_t *buf, size_t len);
/* The bytes of a (possibly compressed) byte buffer, malloc'd. */
int rpc_bb_to(grpc_byte_buffer *bb, uint8_t **ret, size_t *ret_len);

#endif
