/* aggregator: the open window of the sampling loop — a bounded open-addressing table keyed by
 * (flow, pid, ip, stack, data object, event, memory node, direction, class) counting samples and
 * norm_cost, plus a bounded dictionary of the flows seen. When the table is full, samples are
 * aggregated under coarser keys (code location and stack dropped, then everything but flow,
 * event and direction, finally the flow itself: WINDOW_FLOW_OVERFLOW) in a reserved area,
 * counted as degraded. Samples are never dropped (agg_dropped stays for allocation failures). The table is never cleared except by closing the window.
 * Not thread-safe: owned by the sampling loop (the hot path takes no locks). */
#ifndef MS_AGGREGATOR_H
#define MS_AGGREGATOR_H

#include <stdint.h>

#include "ms_abi.h"
#include "window.h"

struct aggregator;

struct agg_sample {
	const struct ms_sample *s;
	double scale;        /* multiplexing scale of the event (>= 1) */
	uint64_t object_id;  /* data object, 0 = none */
	int16_t numa_node;   /* memory node of the data address, -1 unknown */
	uint8_t iclass;
};

/* max_rows: rows per window (>= 16); max_flows: flow dictionary entries per window. */
int aggregator_new(uint32_t max_rows, uint32_t max_flows, struct aggregator **ret);
void aggregator_add(struct aggregator *a, const struct agg_sample *as);
/* Moves the open window's content into a new window (rows, flows, counters) and starts an empty
 * one. Returns NULL on allocation failure (the data stays in the table and the next close
 * retries). */
struct window *aggregator_close(struct aggregator *a);
uint32_t aggregator_rows(const struct aggregator *a);
uint64_t aggregator_samples(const struct aggregator *a);
struct aggregator *aggregator_free(struct aggregator *a);

#endif
