/* costdev: per-host cost deviations from the windows agents send, as correlator signals (SPEC
 * §6 "per-(flow or service label, function, event) cost deviations"). For each window it takes
 * the share of each (function, event) in the window's samples of that event, compares it with
 * that host's baseline (an EWMA of the share over its earlier windows) and reports the pairs
 * whose share jumped: share >= min_share and share > ratio x baseline, after warmup windows of
 * the host. A function a warmed host never showed before counts from baseline 0 (a new hot
 * path). While a pair deviates its baseline learns 16x slower, so a regression keeps
 * signalling for tens of windows instead of becoming the norm in three.
 * Keys compare across hosts: a function id is fnv1a64(build id or module, symbol name)
 * (agent/symbolizer.h), the same for the same binary everywhere; the signal key is
 * "cost:<func id, 16 hex>:<event name>". Flows are host-local, so the "service" part of the
 * SPEC's key is the correlator's group (an agent label), not a flow.
 * It only detects: feeding the correlator is the caller's (ctlplane.c). Bounded: max_hosts
 * hosts (more: windows of new hosts are ignored, counted), keys_per_host tracked pairs per host
 * (the smallest baseline is evicted). Thread-safety: one mutex; any thread. */
#ifndef MS_COSTDEV_H
#define MS_COSTDEV_H

#include <stdint.h>

#include "wire.h"

#define COSTDEV_KEY_MAX 96

struct costdev_opts {
	double alpha;            /* EWMA weight of a new window; 0: 0.1 */
	double ratio;            /* deviation: share > ratio x baseline; 0: 3.0 */
	double min_share;        /* and share >= this; 0: 0.05 */
	uint32_t min_samples;    /* an event with fewer samples in the window is skipped; 0: 50 */
	uint32_t warmup;         /* windows of a host before it may deviate; 0: 10 */
	uint32_t max_hosts;      /* 0: 4096 */
	uint32_t keys_per_host;  /* 0: 64 */
};

struct costdev_stats {
	uint64_t windows, deviations, hosts, hosts_refused, evictions;
};

struct costdev;

int costdev_new(const struct costdev_opts *o, struct costdev **ret);
struct costdev *costdev_free(struct costdev *cd);

/* Feeds one decoded window of w->agent_id; calls emit(arg, key) for every deviating pair
 * (at most keys_per_host). Returns the number of deviations, or -ENOMEM. */
int costdev_window(struct costdev *cd, const struct wire_window *w, void (*emit)(void *arg, const char *key),
		   void *arg);

void costdev_stats(struct costdev *cd, struct costdev_stats *ret);

#endif
