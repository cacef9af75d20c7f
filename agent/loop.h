/* loop: the sampling loop — the one thread that owns the hot state: it drains the ring buffer
 * (or the synthetic source), validates and aggregates samples into the open window, closes a
 * window every window_ms (with the BPF counter deltas of that window) and hands it to the
 * closed-window queue, and applies commands from the command queue between drains. Nothing else
 * touches its state; other threads talk to it only through the two bounded queues.
 * Thread-safety: loop_run runs on one thread; loop_submit may be called from any thread. */
#ifndef MS_LOOP_H
#define MS_LOOP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "ms_abi.h"

struct sampler;
struct events;
struct bqueue;
struct window;
struct samplelog;

enum loop_mode {
	LOOP_MODE_SENTINEL = 0,
	LOOP_MODE_DIAGNOSTIC = 1,
};

struct loop_opts {
	struct sampler *sampler;     /* BPF source, or NULL with synth */
	struct events *events;       /* event table (names, classes), may be NULL with synth */
	bool synth;                  /* synthetic source instead of BPF */
	uint32_t synth_flows;
	uint64_t synth_seed;
	uint64_t synth_rate;         /* samples/s; 0 = as fast as possible */
	uint32_t synth_period_ms;
	uint64_t window_ms;
	uint32_t agg_max_rows, agg_max_flows;
	uint64_t sentinel_budget, diagnostic_budget, hard_drop_ns;
	uint64_t flow_skid_ns, thread_flow_ns;
	uint32_t cfg_flags;          /* MS_CFG_F_* */
	uint32_t filter_tgid;
	uint32_t ringbuf_wakeup_bytes;
	int mode;                    /* enum loop_mode at start */
	uint64_t first_seq;          /* seq of the first window */
	uint64_t duration_ms;        /* 0 = until stopped */
	struct bqueue *closed_out;   /* receives struct window * (owner: the consumer) */
	struct samplelog *sample_log; /* optional; owned by the caller, written by the loop thread */
};

/* Commands (from the local API and the fleet client alike). The loop applies a command between
 * drains and calls done(cmd, result) from the loop thread; done owns cmd afterwards. */
enum loop_cmd_type {
	LOOP_CMD_SET_MODE = 1,       /* u.mode */
	LOOP_CMD_SET_BUDGETS = 2,    /* u.budgets */
	LOOP_CMD_SET_VALIDITY = 3,   /* u.validity */
	LOOP_CMD_SET_FILTER = 4,     /* u.filter_tgid */
};

struct loop_cmd {
	enum loop_cmd_type type;
	union {
		int mode;
		struct { uint64_t sentinel, diagnostic, hard_drop_ns; } budgets;
		struct { uint64_t flow_skid_ns, thread_flow_ns; } validity;
		uint32_t filter_tgid;
	} u;
	void (*done)(struct loop_cmd *cmd, int result);
	void *arg;
};

struct loop;

struct loop_stats {
	uint64_t windows_closed;
	uint64_t windows_dropped;    /* closed_out queue full */
	uint64_t samples_processed;
	uint64_t lost;
	uint64_t bpf[MS_CNT__MAX];   /* totals since start */
};

int loop_new(const struct loop_opts *opts, struct loop **ret);
/* Runs until *stop is set (or duration_ms passed), then flushes the open window.
 * Returns 0 or a negative errno for a fatal source error. */
int loop_run(struct loop *l, volatile sig_atomic_t *stop);
/* Queues a command; -EAGAIN when the command queue is full. */
int loop_submit(struct loop *l, struct loop_cmd *cmd);
/* Copy of the loop's counters; safe from any thread (updated at window close). */
void loop_get_stats(struct loop *l, struct loop_stats *ret);
struct loop *loop_free(struct loop *l);

/* Synthetic-pipeline benchmark entry: pushes n synthetic samples through validate → aggregate
 * and closes windows every window_n samples; returns closed windows' total samples. */
uint64_t loop_bench_synth(struct loop *l, uint64_t n, uint64_t window_n);

#endif
