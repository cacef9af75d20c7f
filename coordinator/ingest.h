/* ingest: the coordinator's receiving end of the fleet wire (SPEC §6). An nng REP listener
 * with many contexts (bus.h) hands each request to a pool of worker threads, which decode and
 * validate it (wire.h), authenticate the agent (shared token and/or a verified TLS client
 * certificate), register Hellos (registry.h), deduplicate windows by (agent id, seq)
 * (dedup.h) and give each new window to a sink that makes it durable. The ack is sent only
 * after the sink reports the window durable and the dedup journal recorded it. Anything bad —
 * garbage, oversize, unknown or unauthenticated agent, a seq that went backwards — is
 * answered (never silently dropped when an answer is possible), counted by reason and
 * reported through on_reject; the other agents are not affected.
 *
 * The sink is the seam to storage: the coordinator's own window spool today, the ClickHouse
 * writer (chwriter.h) later. It borrows the decoded window only for the duration of the call
 * and must call done exactly once, from any thread, possibly before returning.
 * Thread-safety: ingest_stats from any thread; new/free from one thread. */
#ifndef MS_INGEST_H
#define MS_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "wire.h"

struct registry;
struct dedup;

enum ingest_reason {
	INGEST_R_DECODE = 0,        /* not a protobuf Request */
	INGEST_R_INVALID,           /* a field failed validation */
	INGEST_R_OVERSIZE,          /* over max_message_bytes */
	INGEST_R_PROTOCOL,          /* newer protocol than ours */
	INGEST_R_UNAUTHENTICATED,   /* bad token or no verified client certificate */
	INGEST_R_UNKNOWN_AGENT,     /* window before a Hello */
	INGEST_R_SEQ_REGRESSION,    /* Hello with next_seq not above seqs already accepted */
	INGEST_R_STORE,             /* the sink or the dedup journal failed: agent retries */
	INGEST_R_BUSY,              /* queue full, window in progress, dedup set full: retry */
	INGEST_R_TOO_MANY_AGENTS,   /* registry or dedup table full */
	INGEST_R__N,
};

const char *ingest_reason_name(enum ingest_reason r);

typedef void (*ingest_done_fn)(void *done_arg, int status);
/* Makes w durable; calls done(done_arg, status >= 0) once it is, or with a negative errno.
 * Returns 0 when done was or will be called, a negative errno (without calling done) when the
 * window cannot be taken now. */
typedef int (*ingest_sink_fn)(void *arg, const struct wire_window *w, ingest_done_fn done, void *done_arg);
/* Called on a worker thread for every rejected request (agent and peer may be ""). */
typedef void (*ingest_reject_fn)(void *arg, enum ingest_reason r, const char *agent, const char *peer,
				 const char *detail);

/* Called on a worker thread after a Hello entered the registry (ts_ns: CLOCK_REALTIME), e.g. to
 * store it as an ms_agents row. A negative return is counted (hellos_unstored), the agent is
 * answered all the same: its registration does not depend on the store. */
typedef int (*ingest_hello_fn)(void *arg, const struct wire_hello *h, uint64_t ts_ns);

struct ingest_opts {
	struct bus_rep_opts bus;        /* url, contexts (0 = 64), TLS; max_recv_bytes is set here */
	uint64_t max_message_bytes;     /* 0 = BUS_DEFAULT_MAX_MSG; nng drops above twice this */
	uint32_t workers;               /* 0 = 2 */
	uint32_t queue_len;             /* requests waiting for a worker; 0 = 4096 */
	const char *token;              /* NULL/"" = no token required */
	bool require_client_cert;       /* mutual TLS: requests must come over a verified pipe */
	uint32_t heartbeat_ms;          /* advertised to agents; 0 = 5000 */
	uint64_t coordinator_id;        /* advertised to agents */
	struct registry *reg;           /* required */
	struct dedup *dedup;            /* required */
	ingest_sink_fn sink;            /* required */
	void *sink_arg;
	ingest_reject_fn on_reject;     /* may be NULL */
	void *reject_arg;
	ingest_hello_fn on_hello;       /* may be NULL */
	void *hello_arg;
};

struct ingest_stats {
	uint64_t accepted, duplicate;
	uint64_t rejected[INGEST_R__N];
	uint64_t hellos, heartbeats;
	uint64_t hellos_unstored;       /* on_hello failed (e.g. the ClickHouse writer is full) */
	uint64_t samples, rows;         /* of accepted windows */
	uint64_t bytes;                 /* request bytes received */
	uint32_t queued, in_store;      /* requests waiting for a worker / windows in the sink */
};

struct ingest;

int ingest_new(const struct ingest_opts *opts, struct ingest **ret);
/* Stops listening, finishes what is queued, waits for the sink's pending windows, frees.
 * NULL-safe; returns NULL. */
struct ingest *ingest_free(struct ingest *g);
uint16_t ingest_port(struct ingest *g);
void ingest_stats(struct ingest *g, struct ingest_stats *ret);

#endif
