/* metrics: the agent's Prometheus exposition (/metrics). It keeps a snapshot of cumulative
 * counters and current gauges, updated by the export worker once per closed window and by the
 * main thread at start-up (capability), and renders it on request from the HTTP thread. Names
 * follow SPEC §13 and the operations guide §5.1.
 * Thread-safety: every function locks the snapshot's mutex; render never blocks the loop. */
#ifndef MS_METRICS_H
#define MS_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "control.h"
#include "strbuf.h"
#include "wintop.h"

struct window;
struct events;
struct metrics;
struct uplink;

/* One sampling event as reported (capability). */
struct metrics_event {
	char name[48];
	char reason[160];
	uint8_t source;              /* 0 hw, 1 sw */
	bool live;
};

#define METRICS_MAX_EVENTS 32
#define METRICS_MAX_FAMILIES 8
#define METRICS_FAMILY_MAX_SERIES 512
#define METRICS_MAX_LABELS 8

/* Everything the status endpoint reports, copied out under the lock (about 170 KiB). */
struct metrics_snapshot {
	char agent_id[128];
	char tier[32];
	bool synthetic;
	uint64_t start_real_ms;
	int nev;
	struct metrics_event ev[METRICS_MAX_EVENTS];
	int mode;                    /* of the last window (the control snapshot is more recent) */
	uint64_t sentinel_budget, diagnostic_budget;
	uint64_t bpf[MS_CNT__MAX];
	uint64_t processed, lost, windows, degraded, agg_dropped;
	double samples_per_sec;
	bool have_ctl;
	struct control_snapshot ctl;
	bool have_uplink;
	bool uplink_connected;
	uint64_t uplink_sent, uplink_acked, uplink_dropped, uplink_replayed, uplink_spool_windows, uplink_spool_bytes;
	bool have_top;
	struct wintop top;
};

/* A labelled value of a published family. */
struct metrics_series {
	const char *labels[METRICS_MAX_LABELS][2]; /* name, value; names are [a-z_][a-z0-9_]* */
	uint32_t nlabels;
	double value;
};

int metrics_new(const char *agent_id, struct metrics **ret);
struct metrics *metrics_free(struct metrics *m);

/* Capability at start-up: the events (live or fallen back) and the context-hook tier. */
void metrics_set_capability(struct metrics *m, const struct events *ev, const char *tier, bool synthetic);
void metrics_set_mode(struct metrics *m, int mode, uint64_t sentinel_budget, uint64_t diagnostic_budget);
/* Accumulates the counter deltas of a closed window and refreshes the per-window gauges. */
void metrics_on_window(struct metrics *m, const struct window *w);
/* Per-flow series: the top k (1..WINTOP_MAX, default 20) per window. guide_names adds
 * ms_samples_per_sec, the guide's name for ms_samples_per_second (promtool's linter flags it). */
void metrics_set_options(struct metrics *m, uint32_t top_k, bool guide_names);
/* The control plane's state (mode, pin, shedding, targets, anomaly gauges); from the loop's
 * on_ctl callback. */
void metrics_on_ctl(struct metrics *m, const struct control_snapshot *c);
/* Appends render(arg, sb) to every /metrics page (after the families above), called without
 * the metrics lock held; arg must outlive the HTTP server. From one thread at start-up.
 * -ENOSPC past METRICS_MAX_SOURCES. */
#define METRICS_MAX_SOURCES 8
int metrics_add_source(struct metrics *m, int (*render)(void *arg, struct strbuf *sb), void *arg);
/* The uplink whose uplink_stats feed ms_uplink_* (NULL: none, the families report 0). */
void metrics_set_uplink(struct metrics *m, struct uplink *u);
/* The standalone ClickHouse writer whose ms_ch_* families are served (NULL: none). */
struct standalone;
void metrics_set_standalone(struct metrics *m, struct standalone *s);
/* One window's encode-and-hand-over time (export worker). */
void metrics_observe_encode(struct metrics *m, double seconds);
/* Publishes a whole gauge family (e.g. ms_false_sharing_score from the analyzers): replaces
 * every series it had, so series not given again disappear. n <= METRICS_FAMILY_MAX_SERIES,
 * at most METRICS_MAX_FAMILIES names. -EINVAL (bad name or labels), -E2BIG, -ENOSPC, -ENOMEM. */
int metrics_publish_family(struct metrics *m, const char *name, const char *help, const struct metrics_series *s,
			   size_t n);
/* Copies the status view (ret is large: allocate it). */
void metrics_snapshot(struct metrics *m, struct metrics_snapshot *ret);
/* Renders the exposition into sb. */
int metrics_render(struct metrics *m, struct strbuf *sb);

#define METRICS_DEFAULT_STALL_MS 10000u
/* The /healthz answer: 200 and {"status":"ok","mode":...} while the sampling loop reported
 * within stall_ms (0: METRICS_DEFAULT_STALL_MS), else 503 and the reason. Writes a
 * NUL-terminated JSON line into body (cap >= 160) and returns the HTTP status. */
int metrics_health(struct metrics *m, uint64_t stall_ms, char *body, size_t cap);

/* Registers GET /metrics and GET /healthz (default stall bound) on an httpd, so that a
 * liveness probe needs only the metrics port (the control API may be off or token-protected). */
struct httpd;
int metrics_register(struct metrics *m, struct httpd *h);

#endif
