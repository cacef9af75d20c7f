/* uplink: conversion of the agent's closed window (window.h) into the wire window (wire.h)
 * and its encoding (see uplink.h). Kept apart from the transport state machine in uplink.c. */
#include "uplink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "window.h"

_Static_assert(WINDOW_NO_STACK == WIRE_NO_STACK, "stack sentinel shared by window.h and wire.h");
_Static_assert(WINDOW_MAX_EVENTS <= WIRE_MAX_EVENTS, "every agent event fits the wire");
_Static_assert(WINDOW_MAX_CPUS <= WIRE_MAX_CPUS, "every CPU fits the wire");

int uplink_encode_window(const struct window *w, const char *agent_id, uint8_t **ret_buf, size_t *ret_len)
{
	struct wire_window *x;
	int r = wire_window_new(w->nrows, w->nflows, w->nfuncs, w->ncpu, &x);
	if (r < 0)
		return r;
	snprintf(x->agent_id, sizeof(x->agent_id), "%s", agent_id);
	x->seq = w->seq;
	x->start_ns = w->start_ns;
	x->end_ns = w->end_ns;
	x->mode = w->mode;
	x->budget_per_cpu = w->budget_per_cpu;
	memcpy(x->c.bpf, w->c.bpf, sizeof(x->c.bpf));
	x->c.processed = w->c.processed;
	x->c.lost = w->c.lost;
	x->c.agg_degraded = w->c.agg_degraded;
	x->c.agg_dropped = w->c.agg_dropped;
	x->c.flows_overflow = w->c.flows_overflow;
	x->nevents = w->nevents < WINDOW_MAX_EVENTS ? w->nevents : WINDOW_MAX_EVENTS;
	for (uint32_t i = 0; i < x->nevents; i++) {
		snprintf(x->events[i].name, sizeof(x->events[i].name), "%s", w->event_names[i]);
		x->events[i].source = w->event_sources[i];
	}
	x->ncpu = w->ncpu < WINDOW_MAX_CPUS ? w->ncpu : WINDOW_MAX_CPUS;
	memcpy(x->cpu_emitted, w->cpu_emitted, x->ncpu * sizeof(*x->cpu_emitted));
	x->nflows = w->nflows;
	for (uint32_t i = 0; i < w->nflows; i++) {
		x->flows[i].flow_id = w->flows[i].flow_id;
		x->flows[i].tuple = w->flows[i].tuple;
		x->flows[i].has_tuple = w->flows[i].tuple.family != 0;
	}
	x->nfuncs = w->nfuncs;
	for (uint32_t i = 0; i < w->nfuncs; i++) {
		x->funcs[i].func_id = w->funcs[i].func_id;
		snprintf(x->funcs[i].name, sizeof(x->funcs[i].name), "%s", w->funcs[i].name);
		snprintf(x->funcs[i].module, sizeof(x->funcs[i].module), "%s", w->funcs[i].module);
	}
	x->nrows = w->nrows;
	for (uint32_t i = 0; i < w->nrows; i++) {
		const struct window_row *a = &w->rows[i];
		struct wire_row *b = &x->rows[i];
		b->flow_id = a->flow_id;
		b->func_id = a->func_id;
		b->stack_id = a->stack_id;
		b->object_id = a->object_id;
		b->samples = a->samples;
		b->norm_cost = a->norm_cost;
		b->pid = a->pid;
		/* an event index without a name (nevents 0) travels as event 0 */
		b->event = a->event < x->nevents ? a->event : 0;
		b->numa_node = a->numa_node < -1 ? -1 : a->numa_node;
		b->dir = a->dir <= 2 ? a->dir : 0;
		b->iclass = a->iclass < 32 ? a->iclass : 31;
		b->user_mode = a->user_mode ? 1 : 0;
	}
	r = wire_encode_window(x, ret_buf, ret_len);
	wire_window_free(x);
	return r;
}
