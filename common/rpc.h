/* rpc: the one adapter over the gRPC C core (grpc/grpc.h, 1.51). Server side: one completion
 * queue drained by one thread, methods registered by full name ("/ms.v1.Coordinator/SetMode"),
 * bearer-token check from the "authorization" metadata before any handler runs, unary handlers
 * and server-streaming calls whose messages may be pushed from any thread, optional TLS and
 * mutual TLS, keepalive, and a shutdown that ends streams in flight. Client side: blocking unary
 * calls and streams with deadlines. Payloads are opaque bytes: the callers pack protobuf-c.
 * It is not a protobuf layer and knows no service. Linked only by targets that link gRPC (the
 * coordinator, the agent, msctl). Thread-safety: server handlers run on the CQ thread and must
 * not block; rpc_stream_* may be called from any thread (a mutex per stream); a client may be
 * used from several threads, a client stream from one thread at a time (rpc_cstream_cancel from
 * any). */
#ifndef MS_RPC_H
#define MS_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* gRPC status codes used by callers (same numbers as grpc_status_code). */
enum rpc_code {
	RPC_OK = 0,
	RPC_CANCELLED = 1,
	RPC_UNKNOWN = 2,
	RPC_INVALID_ARGUMENT = 3,
	RPC_DEADLINE_EXCEEDED = 4,
	RPC_NOT_FOUND = 5,
	RPC_FAILED_PRECONDITION = 9,
	RPC_RESOURCE_EXHAUSTED = 8,
	RPC_UNIMPLEMENTED = 12,
	RPC_INTERNAL = 13,
	RPC_UNAVAILABLE = 14,
	RPC_UNAUTHENTICATED = 16,
};

#define RPC_DETAIL_MAX 256
#define RPC_MAX_METHODS 32
#define RPC_STREAM_QUEUE 64     /* messages queued per stream before rpc_stream_send says -ENOSPC */

/* What a handler answers: code, a message for non-OK codes, and for OK a malloc'd reply (the
 * adapter frees it). */
struct rpc_reply {
	int code;
	char detail[RPC_DETAIL_MAX];
	uint8_t *buf;
	size_t len;
};

struct rpc_stream;

/* Unary: req/len is the request message (valid during the call). */
typedef void (*rpc_unary_fn)(void *arg, const uint8_t *req, size_t len, struct rpc_reply *rep);
/* Server streaming, start: validate the request; to keep the stream, leave rep->code RPC_OK and
 * take a reference with rpc_stream_ref(s) (keep it until on_close or rpc_stream_finish). Any
 * other code ends the call at once with that status. */
typedef void (*rpc_stream_fn)(void *arg, struct rpc_stream *s, const uint8_t *req, size_t len,
			      struct rpc_reply *rep);
/* Server streaming, end: the client went away, cancelled, or the server shuts down. Runs on the
 * CQ thread once per stream that was kept; drop your references to s. */
typedef void (*rpc_close_fn)(void *arg, struct rpc_stream *s);

struct rpc_method {
	const char *name;            /* "/pkg.Service/Method", static storage */
	rpc_unary_fn unary;          /* exactly one of unary / stream */
	rpc_stream_fn stream;
	rpc_close_fn close;          /* with stream */
	void *arg;
	bool no_auth;                /* skip the token check (none of ours does) */
};

struct rpc_server_opts {
	const char *address;         /* "127.0.0.1", "0.0.0.0", "[::1]" */
	uint16_t port;               /* 0 = ephemeral (rpc_server_port says which) */
	const char *token;           /* NULL/"": no bearer token required */
	const char *tls_cert_file;   /* both set: TLS */
	const char *tls_key_file;
	const char *tls_ca_file;     /* set (with TLS): clients must present a certificate it signed */
	uint32_t max_message_bytes;  /* 0: 4 MiB */
	const struct rpc_method *methods;
	uint32_t nmethods;
};

struct rpc_server_stats {
	uint64_t calls, unauthenticated, streams_open, stream_msgs, stream_drops;
};

struct rpc_server;

/* Binds, registers the methods and starts the CQ thread. -EADDRINUSE (cannot bind), -EINVAL
 * (bad options), -ENOENT/-EACCES (TLS files). */
int rpc_server_new(const struct rpc_server_opts *o, struct rpc_server **ret);
uint16_t rpc_server_port(const struct rpc_server *s);
void rpc_server_get_stats(struct rpc_server *s, struct rpc_server_stats *ret);
/* Cancels all calls (streams end with UNAVAILABLE, on_close runs for each), waits for the CQ
 * thread, releases everything. NULL-safe; returns NULL. */
struct rpc_server *rpc_server_free(struct rpc_server *s);

/* Stream handle (server side). */
void rpc_stream_ref(struct rpc_stream *s);
void rpc_stream_unref(struct rpc_stream *s);
/* Queues one message (copied). -ENOSPC when RPC_STREAM_QUEUE are already waiting (counted as a
 * drop), -EPIPE when the stream has ended. */
int rpc_stream_send(struct rpc_stream *s, const uint8_t *buf, size_t len);
/* Ends the stream with a status after the queued messages. Idempotent. */
void rpc_stream_finish(struct rpc_stream *s, int code, const char *detail);
/* The peer's address ("ipv4:127.0.0.1:5555"), copied into out. */
void rpc_stream_peer(struct rpc_stream *s, char *out, size_t cap);
/* Opaque pointer the owner may attach (e.g. its own per-stream record). */
void rpc_stream_set_user(struct rpc_stream *s, void *user);
void *rpc_stream_user(struct rpc_stream *s);

/* ------------------------------------------------------------------ client */

struct rpc_client_opts {
	const char *target;          /* "host:port" */
	const char *token;           /* NULL/"": no authorization metadata */
	const char *tls_ca_file;     /* set: TLS, server verified against this CA */
	const char *tls_cert_file;   /* with tls_ca_file: client certificate (mutual TLS) */
	const char *tls_key_file;
	const char *tls_server_name; /* override of the name checked in the server certificate */
	uint32_t keepalive_ms;       /* 0: 10 s */
	uint32_t max_message_bytes;  /* 0: 4 MiB */
};

/* The final status of a call. */
struct rpc_status {
	int code;
	char detail[RPC_DETAIL_MAX];
};

struct rpc_client;
struct rpc_cstream;

int rpc_client_new(const struct rpc_client_opts *o, struct rpc_client **ret);
struct rpc_client *rpc_client_free(struct rpc_client *c);

/* Blocking unary call. Returns 0 with *ret_buf (malloc'd, may be NULL for an empty reply) when
 * the status is OK; otherwise a positive gRPC code with st->detail; negative errno for local
 * failures (-ENOMEM). st may be NULL. */
int rpc_call(struct rpc_client *c, const char *method, const uint8_t *req, size_t len, uint32_t timeout_ms,
	     uint8_t **ret_buf, size_t *ret_len, struct rpc_status *st);

/* Opens a server stream; timeout_ms 0 = no deadline (keepalive detects dead peers). */
int rpc_cstream_open(struct rpc_client *c, const char *method, const uint8_t *req, size_t len,
		     uint32_t timeout_ms, struct rpc_cstream **ret);
/* Waits up to wait_ms (0 = forever) for the next message: 1 with *ret_buf (malloc'd), 0 when
 * the stream ended (rpc_cstream_status tells how), -ETIMEDOUT when nothing arrived in wait_ms
 * (the stream stays usable). */
int rpc_cstream_next(struct rpc_cstream *s, uint32_t wait_ms, uint8_t **ret_buf, size_t *ret_len);
/* The final status (valid after next returned 0). */
void rpc_cstream_status(struct rpc_cstream *s, struct rpc_status *ret);
/* Cancels from any thread; a blocked next() returns 0 soon after. */
void rpc_cstream_cancel(struct rpc_cstream *s);
struct rpc_cstream *rpc_cstream_free(struct rpc_cstream *s);

const char *rpc_code_name(int code);

#endif
