/* control: the sampling loop's control plane — the mode controller (modectl.h), the anomaly
 * monitor (anomaly.h), the targets filter (targets.h) and the per-CPU demand they are fed with,
 * bundled so the loop calls a few hooks: control_accept per sample, control_tick per loop
 * iteration, control_pin / control_set_targets / control_set_budgets for commands, and
 * control_snapshot for the state it publishes (metrics, status endpoint), control_take_anomalies
 * for the anomaly signals of a closing window. It does not apply
 * anything to BPF or perf events itself: it returns the mode and tgid filter the loop applies.
 *
 * Per-CPU demand (what the mode controller compares with the per-CPU budget): with BPF, the
 * emitted samples per CPU plus the samples the token bucket dropped; the kernel counts budget drops
 * per CPU but the sampler only reports their sum, so the sum is spread over the CPUs whose emitted
 * rate is at >= 80 % of the budget (the only ones whose bucket can be empty). With the synthetic
 * source, the samples per CPU the sink saw.
 * Thread-safety: none; owned by the sampling loop thread. The snapshot is a plain value. */
#ifndef MS_CONTROL_H
#define MS_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "anomaly.h"
#include "modectl.h"
#include "ms_abi.h"
#include "targets.h"

#define CONTROL_DEFAULT_TICK_MS 250
#define CONTROL_TARGETS_REFRESH_MS 2000
#define CONTROL_MAX_CPUS 256
#define CONTROL_MAX_EVENTS 32

/* A sampling event as the loop last saw it (filled by the loop, which owns the events). */
struct control_event {
	char name[48];
	char reason[160];
	uint8_t source;                     /* 0 hw, 1 sw */
	bool live;
};

struct sampler;
struct window;

struct control_opts {
	int start_mode;                     /* MODECTL_AUTO, or a mode pinned with source "config" */
	struct modectl_opts mode;           /* budgets, hold time, shedding thresholds */
	uint64_t hard_drop_ns;              /* reported only */
	const struct anomaly_opts *anomaly; /* NULL: no anomaly monitor */
	struct targets *targets;            /* initial set or NULL; taken by control_new on success */
	uint32_t base_filter_tgid;          /* BPF tgid filter when the targets name no single pid */
	struct sampler *sampler;            /* counters for the per-CPU demand; NULL with synth */
	uint32_t ncpu;                      /* possible CPUs (<= CONTROL_MAX_CPUS) */
	uint64_t tick_ms;                   /* mode controller period; 0: CONTROL_DEFAULT_TICK_MS */
};

/* What the loop publishes after every control tick and command. */
struct control_snapshot {
	uint64_t real_ms, mono_ms;
	struct modectl_status mc;
	uint64_t pin_expires_real_ms;       /* CLOCK_REALTIME ms; 0 = not pinned or until cleared */
	uint64_t sentinel_budget, diagnostic_budget, hard_drop_ns;
	uint32_t filter_tgid;               /* BPF tgid filter in force (0 = none) */
	uint32_t ntargets;
	char targets[TARGETS_MAX][TARGETS_TEXT_MAX];
	uint64_t cgroup_ids;
	uint64_t filtered;                  /* samples the targets filtered out, since start */
	uint64_t accepted;                  /* samples that passed */
	bool anomaly_enabled;
	struct anomaly_view anomaly;
	uint64_t anomaly_signals_dropped;   /* signals not attached to a window (list full), since start */
	uint64_t pmu_reconfigs;             /* PMU configs applied */
	int pmu_last_err;                   /* negative errno of the last PMU config, 0 = ok */
	int nev;                            /* events in force (0 with the synthetic source) */
	struct control_event ev[CONTROL_MAX_EVENTS];
};

struct control;

/* -EINVAL, -ENOMEM; the anomaly monitor's errors (bad interface list) pass through. */
int control_new(const struct control_opts *opts, struct control **ret);
struct control *control_free(struct control *c);

/* Per sample: true if the targets want it (counted either way). */
bool control_accept(struct control *c, const struct ms_sample *s);

/* Every loop iteration: runs the anomaly monitor when due and, every tick_ms, the mode controller
 * on the per-CPU demand since the last tick, measured in cur_mode. Returns the mode the loop must
 * be in (apply it when it differs from cur_mode) and sets *ret_ticked when the controller ran. */
int control_tick(struct control *c, uint64_t mono_ns, uint64_t real_ns, int cur_mode, bool *ret_ticked);
/* At window close: hands w every anomaly signal raised or in force during the window (bounded by
 * WINDOW_MAX_ANOMALIES; the rest counted in w->c.anomalies_dropped) as an exact-size copy, and
 * starts the next window's list with the signals still in force. Without an anomaly monitor it
 * attaches nothing. Signals are noted after every evaluation of the monitor, so one that fires
 * and clears between two window closes is still attached. */
void control_take_anomalies(struct control *c, struct window *w);
/* The loop changed mode (command or tick): the current interval mixes two budgets. */
void control_mode_switched(struct control *c);

/* Commands. Each returns the mode to apply or a negative errno with reason filled. */
int control_pin(struct control *c, int mode, uint64_t ttl_ms, const char *source, uint64_t mono_ns,
		char *reason, size_t rlen);
int control_set_budgets(struct control *c, uint64_t sentinel, uint64_t diagnostic, uint64_t hard_drop_ns,
			char *reason, size_t rlen);
/* Replaces the targets (t may be NULL = none); takes t whatever the result. Returns the BPF tgid
 * filter to apply (>= 0). */
int control_set_targets(struct control *c, struct targets *t);
void control_pmu_result(struct control *c, int err);

int control_mode(const struct control *c);
uint32_t control_filter_tgid(const struct control *c);
uint64_t control_filtered(const struct control *c);

/* Fills the snapshot (about 30 KiB: pass storage that outlives nothing, e.g. the loop's). */
void control_snapshot(const struct control *c, uint64_t mono_ns, uint64_t real_ns, struct control_snapshot *ret);

#endif
