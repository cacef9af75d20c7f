/* uplink: conversion of the agent's closed window (window.h) into the wire window (wire.h)
 * and its encoding (see uplink.h). Kept apart from the transport state machine in uplink.c. */
#include "uplink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "falseshare.h"
#include "ms.pb-c.h"
#include "window.h"

_Static_assert(WINDOW_NO_STACK == WIRE_NO_STACK, "stack sentinel shared by window.h and wire.h");
_Static_assert(WINDOW_MAX_EVENTS <= WIRE_MAX_EVENTS, "every agent event fits the wire");
_Static_assert(WINDOW_MAX_CPUS <= WIRE_MAX_CPUS, "every CPU fits the wire");
_Static_assert(WINDOW_FS_FUNCS <= WIRE_MAX_LIST, "every function of a line fits the wire");
_Static_assert(WINDOW_ANOMALY_DROP == MS__V1__ANOMALY_KIND__ANOMALY_DROP &&
		       WINDOW_ANOMALY_SPIKE == MS__V1__ANOMALY_KIND__ANOMALY_SPIKE &&
		       WINDOW_ANOMALY_STOP == MS__V1__ANOMALY_KIND__ANOMALY_STOP &&
		       WINDOW_ANOMALY_LATENCY == MS__V1__ANOMALY_KIND__ANOMALY_LATENCY,
	       "window anomaly kinds are ms.v1.AnomalyKind");
_Static_assert(WINDOW_STACK_FRAMES <= WIRE_MAX_FRAMES, "every frame of a stack fits the wire");
_Static_assert(WINDOW_MAX_ANOMALIES <= WIRE_MAX_FINDINGS, "every anomaly of a window fits the wire");
_Static_assert(sizeof(((struct window_anomaly *)0)->ifname) <= sizeof(((struct wire_anomaly *)0)->ifname) &&
		       sizeof(((struct window_anomaly *)0)->metric) <= sizeof(((struct wire_anomaly *)0)->metric),
	       "anomaly names fit the wire");

/* Data objects, false-sharing lines and NUMA hotspots of the analysed window (analyze.h), and
 * the anomaly signals of the window (control.h). The encoder sends an object only when a row
 * refers to it, with its name from this list. Cost: one allocation per non-empty section,
 * O(objects + lines + hotspots + signals). */
static int enc_findings(const struct window *w, struct wire_window *x)
{
	uint32_t no = w->objects ? w->nobjects : 0, nfs = w->fs ? w->nfs : 0, nnu = w->numa ? w->nnuma : 0;
	no = no < WIRE_MAX_DICT ? no : WIRE_MAX_DICT;
	nfs = nfs < WIRE_MAX_FINDINGS ? nfs : WIRE_MAX_FINDINGS;
	nnu = nnu < WIRE_MAX_FINDINGS ? nnu : WIRE_MAX_FINDINGS;
	if ((no && !(x->objects = calloc(no, sizeof(*x->objects)))) ||
	    (nfs && !(x->false_sharing = calloc(nfs, sizeof(*x->false_sharing)))) ||
	    (nnu && !(x->remote_dram = calloc(nnu, sizeof(*x->remote_dram)))))
		return -ENOMEM;
	for (uint32_t i = 0; i < no; i++) {
		const struct window_object *o = &w->objects[i];
		/* the window knows no address range of an object: addr and size stay 0 */
		x->objects[i].object_id = o->object_id;
		snprintf(x->objects[i].name, sizeof(x->objects[i].name), "%s", o->name[0] ? o->name : o->module);
	}
	x->nobjects = no;
	for (uint32_t i = 0; i < nfs; i++) {
		const struct window_fs_line *l = &w->fs[i];
		struct wire_false_sharing *f = &x->false_sharing[i];
		f->line_addr = l->line;
		f->object_id = l->object_id;
		/* samples, not threads (the window keeps no per-thread split): writers are the stores,
		 * and on an inferred line the HITM loads too; readers every load, HITM included */
		f->writers = l->stores + (l->inferred ? l->hitm : 0);
		f->readers = l->loads + l->hitm;
		f->score = l->score;
		f->true_sharing = l->cls == FS_CLASS_TRUE || l->cls == FS_CLASS_MIXED;
		/* written offsets first, then those only read, each ascending, WIRE_MAX_LIST in all */
		for (int pass = 0; pass < 2; pass++)
			for (uint32_t o = 0; o < 64 && f->noffsets < WIRE_MAX_LIST; o++)
				if (((pass ? l->accessed & ~l->written : l->written) >> o) & 1)
					f->offsets[f->noffsets++] = o;
		/* lines are per process (falseshare.h): one pid */
		f->pids[0] = l->pid;
		f->npids = 1;
		for (int k = 0; k < WINDOW_FS_FUNCS; k++)
			if (l->func_id[k])
				f->func_ids[f->nfuncs++] = l->func_id[k];
	}
	x->nfalse_sharing = nfs;
	for (uint32_t i = 0; i < nnu; i++) {
		const struct window_numa *n = &w->numa[i];
		/* every hotspot, local ones too (readers filter mem_node != cpu_node); cost = Σ period */
		x->remote_dram[i] = (struct wire_remote_dram){ .flow_id = n->flow_id, .object_id = n->object_id,
							       .samples = n->samples, .mem_node = n->mem_node,
							       .cpu_node = n->cpu_node, .cost = (double)n->events };
	}
	x->nremote_dram = nnu;
	uint32_t nan = w->anomalies ? w->nanomalies : 0;
	nan = nan < WINDOW_MAX_ANOMALIES ? nan : WINDOW_MAX_ANOMALIES;
	if (nan && !(x->anomalies = calloc(nan, sizeof(*x->anomalies))))
		return -ENOMEM;
	for (uint32_t i = 0; i < nan; i++) {
		const struct window_anomaly *a = &w->anomalies[i];
		struct wire_anomaly *b = &x->anomalies[i];
		snprintf(b->ifname, sizeof(b->ifname), "%.*s", (int)sizeof(a->ifname), a->ifname);
		snprintf(b->metric, sizeof(b->metric), "%.*s", (int)sizeof(a->metric), a->metric);
		b->ifindex = a->ifindex;
		b->kind = a->kind <= WINDOW_ANOMALY_LATENCY ? a->kind : 0;
		b->value = a->value;
		b->baseline = a->baseline;
		b->ts_ns = a->ts_ns;
	}
	x->nanomalies = nan;
	/* the stack dictionary (stacks.h); frame functions are in w->funcs, so the encoder names them */
	uint32_t ns = w->stacks ? w->nstacks : 0;
	ns = ns < WIRE_MAX_STACKS ? ns : WIRE_MAX_STACKS;
	size_t frames = 0;
	for (uint32_t i = 0; i < ns; i++) {
		const struct window_stack *a = &w->stacks[i];
		uint32_t nk = a->nkernel < WINDOW_STACK_FRAMES ? a->nkernel : WINDOW_STACK_FRAMES;
		frames += nk + (a->nuser < WINDOW_STACK_FRAMES - nk ? a->nuser : WINDOW_STACK_FRAMES - nk);
	}
	if (ns && (!(x->stacks = calloc(ns, sizeof(*x->stacks))) ||
		   !(x->stack_func_ids = malloc((frames ? frames : 1) * sizeof(*x->stack_func_ids)))))
		return -ENOMEM;
	frames = 0;
	for (uint32_t i = 0; i < ns; i++) {
		const struct window_stack *a = &w->stacks[i];
		struct wire_stack *b = &x->stacks[i];
		b->stack_id = a->stack_id;
		b->nkernel = a->nkernel < WINDOW_STACK_FRAMES ? a->nkernel : WINDOW_STACK_FRAMES;
		b->nuser = a->nuser < WINDOW_STACK_FRAMES - b->nkernel ? a->nuser : WINDOW_STACK_FRAMES - b->nkernel;
		b->func_ids = x->stack_func_ids + frames;
		frames += (size_t)b->nkernel + b->nuser;
		memcpy(b->func_ids, a->func, (size_t)(b->nkernel + b->nuser) * sizeof(*b->func_ids));
	}
	x->nstacks = ns;
	return 0;
}

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
	r = enc_findings(w, x);
	if (r == 0)
		r = wire_encode_window(x, ret_buf, ret_len);
	wire_window_free(x);
	return r;
}
