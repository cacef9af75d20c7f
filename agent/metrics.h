/* metrics: the agent's Prometheus exposition (/metrics). It keeps a snapshot of cumulative
 * counters and current gauges, updated by the export worker once per closed window and by the
 * main thread at start-up (capability), and renders it on request from the HTTP thread. Names
 * follow SPEC §13 and the operations guide §5.1.
 * Thread-safety: every function locks the snapshot's mutex; render never blocks the loop. */
#ifndef MS_METRICS_H
#define MS_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "strbuf.h"

struct window;
struct events;
struct metrics;

int metrics_new(const char *agent_id, struct metrics **ret);
struct metrics *metrics_free(struct metrics *m);

/* Capability at start-up: the events (live or fallen back) and the context-hook tier. */
void metrics_set_capability(struct metrics *m, const struct events *ev, const char *tier, bool synthetic);
void metrics_set_mode(struct metrics *m, int mode, uint64_t sentinel_budget, uint64_t diagnostic_budget);
/* Accumulates the counter deltas of a closed window and refreshes the per-window gauges. */
void metrics_on_window(struct metrics *m, const struct window *w);
/* Renders the exposition into sb. */
int metrics_render(struct metrics *m, struct strbuf *sb);

/* Registers GET /metrics on an httpd. */
struct httpd;
int metrics_register(struct metrics *m, struct httpd *h);

#endif
