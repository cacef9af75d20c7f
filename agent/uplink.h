/* uplink: ships closed windows to the coordinator (SPEC §4). Each window is encoded as a
 * protobuf Window (common/wire.h) on the export worker, appended to a bounded on-disk spool
 * (common/spool.h) and sent over nng REQ/REP (common/bus.h) with several requests in flight;
 * the coordinator's reply is the ack, and a window leaves the spool only when acked (or when
 * the coordinator says it can never accept it). While the coordinator is away windows stay in
 * the spool; they are sent again in order when it returns, from memory while they fit and
 * from disk one at a time after that (and after an agent restart). A Hello announces the agent
 * on every (re)connection; a Heartbeat is sent when nothing else was for heartbeat_ms.
 * Delivery is at-least-once; the coordinator deduplicates by (agent id, seq). When the spool
 * is full the configured policy drops the oldest or the newest windows, every drop counted.
 *
 * It is not the encoder of the sampling loop's seq: windows arrive numbered (seqstore.h).
 * It does not log above debug: state changes worth an operator's attention are reported
 * through on_event, from the uplink's own thread, once per transition.
 * Thread-safety: uplink_forward / uplink_submit from one producer thread (the export worker);
 * uplink_stats from any thread; everything else happens on the uplink's thread and nng's. */
#ifndef MS_UPLINK_H
#define MS_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "wire.h"

struct window;
struct seqstore;
struct uplink;

#define UPLINK_MEM_RECORDS 1024u       /* windows kept in memory for pipelined (re)sends */
#define UPLINK_MEM_BYTES (32u << 20)

enum uplink_event {
	UPLINK_EV_CONNECTED = 1,      /* Hello acked; detail: coordinator id */
	UPLINK_EV_DISCONNECTED,       /* first failure after being connected; detail: error */
	UPLINK_EV_REJECTED,           /* the coordinator refused a window for good: dropped */
	UPLINK_EV_UNAUTHENTICATED,    /* the coordinator refused our credentials */
	UPLINK_EV_SEQ_REGRESSION,     /* the coordinator has seen seqs above ours */
	UPLINK_EV_SPOOL_FULL,         /* first window dropped by the spool policy since the last one kept */
	UPLINK_EV_OVERSIZE,           /* a window over the message size limit was dropped */
	UPLINK_EV_SPOOL_ERROR,        /* a spool write failed: the window was dropped */
	UPLINK_EV_SPOOL_REPAIRED,     /* at start: the spool was cut at corrupt records (counted) */
};

struct uplink_opts {
	const char *url;                /* tcp://, ipc://, tls+tcp:// */
	const char *token;              /* bearer token, NULL/"" = none */
	const char *spool_dir;          /* required; created if missing */
	uint64_t spool_max_bytes;       /* 0 = spool default */
	int spool_policy;               /* enum spool_full_policy */
	uint32_t contexts;              /* requests in flight; 0 = 8 */
	uint32_t timeout_ms;            /* per request; 0 = 10000 */
	uint32_t heartbeat_ms;          /* 0 = 5000 */
	uint32_t backoff_max_ms;        /* retry backoff cap (starts at 100 ms); 0 = 5000 */
	uint64_t max_message_bytes;     /* 0 = BUS_DEFAULT_MAX_MSG */
	struct bus_tls tls;
	const struct wire_hello *hello; /* identity and capability (copied); agent_id required */
	struct seqstore *seqs;          /* advanced as windows pass; may be NULL */
	void (*on_event)(void *arg, enum uplink_event ev, const char *detail);
	void *event_arg;
};

struct uplink_stats {
	bool connected;                 /* transport up and Hello acked */
	uint64_t sent;                  /* window requests sent (re-sends included) */
	uint64_t acked;                 /* windows acked (duplicates included) */
	uint64_t duplicates;            /* acked as already known to the coordinator */
	uint64_t replayed;              /* acked windows that needed more than one attempt or came
					 * from the spool of an earlier run */
	uint64_t dropped;               /* every window given up: spool policy, oversize, refused,
					 * spool write errors */
	uint64_t rejected;              /* refused by the coordinator (in dropped) */
	uint64_t oversize;              /* over the size limit (in dropped) */
	uint64_t spool_windows;         /* windows waiting in the spool (in flight included) */
	uint64_t spool_bytes;
	uint64_t spool_corrupt;         /* spool segments cut at a bad record */
	uint64_t hellos;                /* Hellos acked */
	uint64_t first_seq, last_seq;   /* of windows given to the uplink this run */
};

int uplink_new(const struct uplink_opts *opts, struct uplink **ret);
/* Stops waiting for acks after drain_ms (0 = at once), cancels what is in flight and frees.
 * Unacked windows stay in the spool for the next run. NULL-safe; returns NULL. */
struct uplink *uplink_free(struct uplink *u, uint32_t drain_ms);

/* Waits up to drain_ms for every spooled window to be acked (returns at once while not
 * connected). Returns the windows still in the spool (they stay for the next run). */
uint64_t uplink_drain(struct uplink *u, uint32_t drain_ms);

/* export_opts.forward hook: encodes the window, spools it, frees it. Always returns 0 (the
 * window is consumed; failures are counted as drops). */
int uplink_forward(void *arg, struct window *w);
/* Queues an already-encoded Window (wire_encode_window bytes) with its seq. Returns 0, or
 * the negative errno of the drop (also counted): -EMSGSIZE, -ENOSPC, or a spool error. */
int uplink_submit(struct uplink *u, uint64_t seq, const uint8_t *win, size_t len);

void uplink_stats(struct uplink *u, struct uplink_stats *ret);

/* Converts an agent window into a wire window (rows, flows, functions, events, counters) and
 * encodes it. Exposed for the benchmark and tests. */
int uplink_encode_window(const struct window *w, const char *agent_id, uint8_t **ret_buf, size_t *ret_len);

#endif
