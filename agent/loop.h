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
struct targets;
struct pmu_config;
struct anomaly_opts;
struct control_snapshot;

enum loop_mode {
	LOOP_MODE_SENTINEL = 0,
	LOOP_MODE_DIAGNOSTIC = 1,
	LOOP_MODE_AUTO = 2,          /* LOOP_CMD_SET_MODE only: clears the pin */
};

struct loop_opts {
	struct sampler *sampler;     /* BPF source, or NULL with synth */
	struct events *events;       /* event table (names, classes), may be NULL with synth */
	bool synth;                  /* synthetic source instead of BPF */
	uint32_t synth_flows;
	uint64_t synth_seed;
	uint64_t synth_rate;         /* samples/s; 0 = as fast as possible */
	uint32_t synth_period_ms;
	bool synth_data_addr;        /* synthetic samples carry data addresses */
	uint64_t window_ms;
	uint32_t agg_max_rows, agg_max_flows;
	uint64_t sentinel_budget, diagnostic_budget, hard_drop_ns;
	uint64_t flow_skid_ns, thread_flow_ns;
	uint32_t thread_send_flow_ns; /* validity after a send (ms_abi.h); 0 = thread_flow_ns */
	uint32_t cfg_flags;          /* MS_CFG_F_* */
	uint32_t filter_tgid;
	uint32_t ringbuf_wakeup_bytes;
	int mode;                    /* enum loop_mode at start */
	uint64_t first_seq;          /* seq of the first window */
	uint64_t duration_ms;        /* 0 = until stopped */
	struct bqueue *closed_out;   /* receives struct window * (owner: the consumer) */
	/* Bytes (window_bytes) of the windows in closed_out not yet taken by the consumer: the loop
	 * adds at push, the consumer subtracts at pop (export_opts.closed_bytes); atomic. NULL: the
	 * queue is bounded by its length only. See LOOP_CLOSED_SOFT_BYTES in loop.c. */
	uint64_t *closed_bytes;
	struct samplelog *sample_log; /* optional; owned by the caller, written by the loop thread */
	/* control (control.h): mode controller, anomaly monitor, targets */
	bool mode_auto;              /* the controller decides; else `mode` is pinned (source "config") */
	uint64_t mode_hold_ms;       /* 0: MODECTL_DEFAULT_HOLD_MS */
	double shed_enter, shed_exit;/* per-CPU load ratios of ShedHeavy; 0: defaults */
	const struct anomaly_opts *anomaly; /* NULL: no anomaly monitor */
	struct targets *targets;     /* initial targets or NULL; loop_new takes them in every case */
	/* Called on the loop thread after every control tick (~250 ms) and every command with the
	 * control state; it must copy what it keeps and not block (metrics, top-level logs). */
	void (*on_ctl)(void *arg, const struct control_snapshot *snap);
	void *on_ctl_arg;
};

/* Commands (from the local API and the fleet client alike). The loop applies a command between
 * drains, fills cmd->out and calls done(cmd, result) from the loop thread (result 0 or a negative
 * errno, with out.reason saying why); done owns cmd afterwards.
 * - SET_MODE: u.mode sentinel or diagnostic pins that mode for ttl_ms (0 = until cleared) on
 *   behalf of source ("api", "coordinator"); LOOP_MODE_AUTO clears the pin. Switching keeps the
 *   open window; budgets and the mode's event groups follow at once.
 * - SET_BUDGETS: per-CPU budgets and hard gap; `set` selects which (0 = all three). Resets the
 *   shedding state.
 * - SET_TARGETS: u.targets replaces the filter (NULL = none). The loop takes the pointer in every
 *   case (it sets u.targets to NULL). A lone pid also becomes the BPF tgid filter.
 * - SET_PMU: u.pmu, a config already parsed and validated against the host (pmu.h), replaces the
 *   groups of the modes it names. Slot indices change, so the open window is closed first. The
 *   loop takes the pointer (free()d by it) in every case. -EOPNOTSUPP with the synthetic source. */
enum loop_cmd_type {
	LOOP_CMD_SET_MODE = 1,       /* u.mode, ttl_ms, source */
	LOOP_CMD_SET_BUDGETS = 2,    /* u.budgets */
	LOOP_CMD_SET_VALIDITY = 3,   /* u.validity */
	LOOP_CMD_SET_FILTER = 4,     /* u.filter_tgid */
	LOOP_CMD_SET_TARGETS = 5,    /* u.targets */
	LOOP_CMD_SET_PMU = 6,        /* u.pmu */
};

#define LOOP_BUDGET_SENTINEL 0x1u
#define LOOP_BUDGET_DIAGNOSTIC 0x2u
#define LOOP_BUDGET_HARD_DROP 0x4u

/* State after a command, for the reply. */
struct loop_cmd_out {
	int mode;                    /* mode in force */
	bool pinned;
	int pin_mode;
	uint64_t pin_expires_ms;     /* CLOCK_REALTIME ms; 0 = until cleared (or not pinned) */
	char pin_source[32];
	uint64_t sentinel, diagnostic, hard_drop_ns;
	uint32_t ntargets, filter_tgid;
	int live_events;             /* after SET_PMU */
	char reason[192];            /* why it failed */
};

struct loop_cmd {
	enum loop_cmd_type type;
	union {
		int mode;
		struct { uint64_t sentinel, diagnostic, hard_drop_ns; uint32_t set; } budgets;
		struct { uint64_t flow_skid_ns, thread_flow_ns; } validity;
		uint32_t filter_tgid;
		struct targets *targets;
		struct pmu_config *pmu;
	} u;
	uint64_t ttl_ms;             /* SET_MODE */
	char source[32];             /* SET_MODE: who asks ("" = "api") */
	struct loop_cmd_out out;
	void (*done)(struct loop_cmd *cmd, int result);
	void *arg;
};

struct loop;

struct loop_stats {
	uint64_t windows_closed;
	uint64_t windows_dropped;    /* closed_out queue full (length or byte bound) */
	uint64_t windows_stretched;  /* closes put off because the consumer was a window behind */
	uint64_t samples_processed;
	uint64_t lost;
	uint64_t filtered;           /* samples the targets filtered out in user space */
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
