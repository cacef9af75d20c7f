/* dedup: the coordinator's memory of which (agent id, seq) windows it has accepted, so a
 * window delivered twice (REQ re-send, agent replay after a lost ack) is acked again but
 * stored once. Per agent: a high-water mark H (every seq <= H was accepted, or the agent said
 * it will never send it: Request.low_water) plus a bounded sorted set of accepted seqs above H
 * (out-of-order arrivals from several contexts), and windows being processed right now.
 *
 * Durability: every accept is one appended line of a journal, written (one write(2)) after
 * the window is durable and before it is acked:
 *     {"agent":"host-1","seq":17,"samples":1234,"rows":56}
 * and a low-water move that skips seqs is a line {"agent":"host-1","low":18}. Open replays the
 * snapshot then the journal; a torn last line (host crash) is cut. When the journal passes
 * compact_bytes its content is folded into a snapshot (written to a temporary file, fsync'd,
 * renamed) and the journal is emptied. With keep_journal (the --accept-log used by tests) the
 * journal is never compacted and lists every accepted window exactly once.
 * The gap between the durable store and the journal is one syscall: a coordinator killed
 * exactly there stores that window twice (acked once); the tables are idempotent (SPEC §5).
 *
 * It is not the registry (who the agents are) and does not decide acks.
 * Thread-safety: every call takes one mutex; journal appends happen under it. */
#ifndef MS_DEDUP_H
#define MS_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

#define DEDUP_DEFAULT_MAX_AGENTS 100000u
#define DEDUP_DEFAULT_MAX_ABOVE 8192u  /* seqs remembered above an agent's high-water mark */
#define DEDUP_MAX_PENDING 64u          /* windows of one agent being processed at once */
#define DEDUP_DEFAULT_COMPACT_BYTES (64ull << 20)

struct dedup_opts {
	const char *journal_path;  /* required */
	const char *snapshot_path; /* required unless keep_journal */
	bool keep_journal;         /* never compact (accept log for tests) */
	bool fsync;                /* fdatasync the journal after every line */
	uint32_t max_agents;       /* 0 = DEFAULT */
	uint32_t max_above;        /* 0 = DEFAULT */
	uint64_t compact_bytes;    /* 0 = DEFAULT */
};

struct dedup_recovery {
	uint64_t agents, accepts, lows;  /* replayed */
	uint64_t torn_bytes;             /* cut from the journal's end */
	uint64_t bad_lines;              /* unparsable lines skipped (corruption in the middle) */
};

enum dedup_verdict {
	DEDUP_NEW = 0,       /* not seen: process it, then dedup_commit or dedup_abort */
	DEDUP_DUPLICATE = 1, /* already accepted: ack it again, store nothing */
	DEDUP_BUSY = 2,      /* the same window is being processed right now: retry later */
};

struct dedup;

/* Returns 0, -EINVAL, -ENOMEM or the -errno of a file operation. */
int dedup_open(const struct dedup_opts *opts, struct dedup **ret, struct dedup_recovery *ret_rec);
struct dedup *dedup_free(struct dedup *d);

/* Classifies (agent, seq) and, for DEDUP_NEW, marks it in progress. Returns the verdict or
 * -ENOSPC (too many agents, or the agent's set above its high-water mark is full: the agent
 * retries; its low water will free room) / -ENOMEM. */
int dedup_begin(struct dedup *d, const char *agent, uint64_t seq);
/* Records an in-progress window as accepted (journal line). Returns 0 or the -errno of the
 * journal write (the window then stays unaccepted: the caller must not ack it). */
int dedup_commit(struct dedup *d, const char *agent, uint64_t seq, uint64_t samples, uint32_t rows);
/* Forgets an in-progress window that could not be stored. */
void dedup_abort(struct dedup *d, const char *agent, uint64_t seq);
/* The agent promises never to send a seq below low_water as new: raises its high-water mark
 * to low_water - 1 (journaled when that skips seqs). No-op for unknown agents or 0. */
int dedup_low_water(struct dedup *d, const char *agent, uint64_t low_water);
/* Highest seq ever accepted from the agent (0 = none): a Hello whose next_seq is not above it
 * means the agent's seq went backwards. */
uint64_t dedup_max_seq(struct dedup *d, const char *agent);
/* High-water mark and set size of an agent (tests, status). -ENOENT for unknown agents. */
int dedup_agent_state(struct dedup *d, const char *agent, uint64_t *ret_hwm, uint32_t *ret_above);

#endif
