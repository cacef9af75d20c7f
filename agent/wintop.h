/* wintop: the top-K views of one symbolized closed window — flows and functions by samples, and
 * (flow, function, event) triples by estimated events per second — for the per-flow Prometheus
 * series (bounded: only the last window's top K exist, the rest disappear) and the status
 * endpoint's "top". Unattributed samples (flow 0) and the aggregator's overflow flow are not flows
 * and are left out of the flow views (counted in `unattributed`). It is not the run summary.
 * Cost: one hash pass over the rows plus a heap selection, O(rows log K), on the export worker.
 * Thread-safety: none; a computed wintop is a plain value. */
#ifndef MS_WINTOP_H
#define MS_WINTOP_H

#include <stdint.h>

#include "ms_abi.h"

#define WINTOP_MAX 200

struct window;

struct wintop_flow {
	uint64_t id, samples;
	double cost;                  /* Σ norm_cost */
	struct ms_flow_tuple t;
};

struct wintop_func {
	uint64_t id, samples;
	char name[128];
	char module[128];
};

struct wintop_row {
	uint64_t flow_id, func_id, samples;
	double cost;
	double per_sec;               /* cost / window seconds: estimated events per second */
	uint16_t event;
	uint8_t iclass;
	uint8_t _pad[5];
	struct ms_flow_tuple t;
	char func[128];
	char event_name[48];
};

struct wintop {
	uint64_t seq, start_ns, end_ns;
	uint64_t samples, unattributed;
	uint32_t nflows, nfuncs, nrows;
	struct wintop_flow flows[WINTOP_MAX];
	struct wintop_func funcs[WINTOP_MAX];
	struct wintop_row rows[WINTOP_MAX];
};

/* Fills ret (about 130 KiB: allocate it) with the top k (1..WINTOP_MAX) of each view, best
 * first. -EINVAL for a bad k, -ENOMEM. */
int wintop_compute(const struct window *w, uint32_t k, struct wintop *ret);

#endif
