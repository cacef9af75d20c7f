/* chrows: see chrows.h. Each encoder writes columns in exactly the order of its column list
 * below; coordinator/schema.c's migrations define the same columns (schema_test checks it). */
#include "chrows.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rowbinary.h"

_Static_assert(MS_CNT__MAX == 14, "ms_windows has one column per BPF counter: add the new one");

const struct chwriter_table chrows_tables[CHROWS__N] = {
	[CHROWS_ROLLUP] = { "ms_flow_rollup",
			    "ts,host,seq,row,flow_id,func_id,stack_id,object_id,event,pid,numa_node,direction,"
			    "iclass,user_mode,samples,norm_cost,mode,window_ms" },
	[CHROWS_WINDOWS] = { "ms_windows",
			     "ts,host,seq,start_ns,end_ns,mode,budget_per_cpu,nrows,nflows,samples,emitted,budget,gap,"
			     "ringfull,unattributed,attr_thread,attr_packet,idle,filtered,ctx_rx,ctx_tx,ctx_sock,"
			     "ctx_parse_fail,stack_fail,processed,lost,agg_degraded,agg_dropped,flows_overflow,events,"
			     "event_sources,cpu_emitted" },
	[CHROWS_FLOWS] = { "ms_flows",
			   "ts,host,seq,flow_id,has_tuple,family,proto,saddr,daddr,sport,dport,direction,ifindex,netns,"
			   "vlan,encap" },
	[CHROWS_FUNCTIONS] = { "ms_functions", "ts,host,seq,func_id,name,module" },
	[CHROWS_OBJECTS] = { "ms_data_objects", "ts,host,seq,object_id,name,addr,size" },
	[CHROWS_FALSE_SHARING] = { "ms_false_sharing",
				   "ts,host,seq,idx,line_addr,object_id,offsets,pids,func_ids,writers,readers,score,"
				   "true_sharing" },
	[CHROWS_REMOTE_DRAM] = { "ms_remote_dram", "ts,host,seq,idx,flow_id,object_id,mem_node,cpu_node,samples,cost" },
	[CHROWS_ANOMALIES] = { "ms_anomalies", "ts,host,seq,idx,ts_ns,ifname,ifindex,kind,metric,value,baseline" },
	[CHROWS_FLEET_EVENTS] = { "ms_fleet_events",
				  "ts,host,seq,ts_ns,kind,group_key,hosts,mode,ttl_ms,reason,details" },
	[CHROWS_AGENTS] = { "ms_agents",
			    "ts,host,seq,instance,version,hostname,label_keys,label_values,control_endpoint,hook_tier,"
			    "synthetic,kernel,ncpu,window_ms,events_live,events_fallback" },
	[CHROWS_RAW_SAMPLES] = { "ms_raw_samples",
				 "ts,host,seq,idx,ts_ns,cpu,pid,tid,flow_id,event,ip,data_addr,stack_id,numa_node,"
				 "direction,gso_segs,attr_rule,lbr_from,lbr_to" },
	[CHROWS_STACK_TRACES] = { "ms_stack_traces", "ts,host,seq,stack_id,user_stack,kernel_stack,frames" },
};

void chrows_tables_named(struct chwriter_table ret[CHROWS__N], const char *rollup, const char *raw)
{
	memcpy(ret, chrows_tables, sizeof(chrows_tables));
	if (rollup && rollup[0])
		ret[CHROWS_ROLLUP].name = rollup;
	if (raw && raw[0])
		ret[CHROWS_RAW_SAMPLES].name = raw;
}

/* Enum8 columns only take their declared values: anything else would make ClickHouse refuse
 * the whole batch, so out-of-range codes become the "none" member. */
static int8_t enum_or_zero(uint32_t v, uint32_t max)
{
	return v <= max ? (int8_t)v : 0;
}

/* The key columns every row starts with: ts (window start, s), host, seq. */
static void key(struct rowbinary *rb, const struct wire_window *w)
{
	rowbinary_datetime(rb, w->start_ns / 1000000000ull);
	rowbinary_cstring(rb, w->agent_id, sizeof(w->agent_id));
	rowbinary_u64(rb, w->seq);
}

/* The hot table: its rows are written through one bound check each, with the key prefix (ts,
 * host, seq) and the event names encoded once per window. ~30 ns per row. */
static void rollup_rows(struct chwriter_unit *u, const struct wire_window *w)
{
	struct rowbinary *rb = &u->data[CHROWS_ROLLUP];
	struct rowbinary pre;
	uint8_t ev_enc[WIRE_MAX_EVENTS][sizeof(w->events[0].name) + 1];
	uint8_t ev_len[WIRE_MAX_EVENTS];
	uint32_t ne = w->nevents < WIRE_MAX_EVENTS ? w->nevents : WIRE_MAX_EVENTS;
	for (uint32_t e = 0; e < ne; e++) {
		size_t n = strnlen(w->events[e].name, sizeof(w->events[e].name) - 1);
		ev_enc[e][0] = (uint8_t)n; /* < 128: one LEB128 byte */
		memcpy(&ev_enc[e][1], w->events[e].name, n);
		ev_len[e] = (uint8_t)(n + 1);
	}
	rowbinary_init(&pre, 4 + 2 + WIRE_ID_MAX + 8);
	key(&pre, w);
	if (rowbinary_error(&pre)) {
		rowbinary_release(&pre);
		rb->err = -ENOMEM;
		return;
	}
	const uint8_t none = 0;
	uint32_t window_ms = w->end_ns > w->start_ns ? (uint32_t)((w->end_ns - w->start_ns) / 1000000ull) : 0;
	int8_t mode = enum_or_zero(w->mode, 1);
	size_t row_max = pre.len + 4 + 32 + sizeof(ev_enc[0]) + 4 + 2 + 3 + 16 + 1 + 4;
	for (uint32_t i = 0; i < w->nrows; i++) {
		const struct wire_row *r = &w->rows[i];
		uint8_t *p0 = rowbinary_room(rb, row_max), *p = p0;
		if (!p)
			break;
		p = rowbinary_put_bytes(p, pre.buf, pre.len);
		p = rowbinary_put_u32(p, i);
		p = rowbinary_put_u64(p, r->flow_id);
		p = rowbinary_put_u64(p, r->func_id);
		p = rowbinary_put_u64(p, r->stack_id);
		p = rowbinary_put_u64(p, r->object_id);
		if (r->event < ne)
			p = rowbinary_put_bytes(p, ev_enc[r->event], ev_len[r->event]);
		else
			p = rowbinary_put_bytes(p, &none, 1);
		p = rowbinary_put_u32(p, r->pid);
		p = rowbinary_put_u16(p, (uint16_t)r->numa_node);
		*p++ = (uint8_t)enum_or_zero(r->dir, MS_DIR_TX);
		*p++ = r->iclass;
		*p++ = r->user_mode;
		p = rowbinary_put_u64(p, r->samples);
		uint64_t cost;
		memcpy(&cost, &r->norm_cost, sizeof(cost));
		p = rowbinary_put_u64(p, cost);
		*p++ = (uint8_t)mode;
		p = rowbinary_put_u32(p, window_ms);
		rowbinary_commit(rb, (size_t)(p - p0));
	}
	rowbinary_release(&pre);
	u->rows[CHROWS_ROLLUP] += w->nrows;
}

static void window_row(struct chwriter_unit *u, const struct wire_window *w)
{
	struct rowbinary *rb = &u->data[CHROWS_WINDOWS];
	uint64_t samples = 0;
	for (uint32_t i = 0; i < w->nrows; i++)
		samples += w->rows[i].samples;
	key(rb, w);
	rowbinary_u64(rb, w->start_ns);
	rowbinary_u64(rb, w->end_ns);
	rowbinary_i8(rb, enum_or_zero(w->mode, 1));
	rowbinary_u64(rb, w->budget_per_cpu);
	rowbinary_u32(rb, w->nrows);
	rowbinary_u32(rb, w->nflows);
	rowbinary_u64(rb, samples);
	for (int c = 0; c < MS_CNT__MAX; c++)
		rowbinary_u64(rb, w->c.bpf[c]);
	rowbinary_u64(rb, w->c.processed);
	rowbinary_u64(rb, w->c.lost);
	rowbinary_u64(rb, w->c.agg_degraded);
	rowbinary_u64(rb, w->c.agg_dropped);
	rowbinary_u64(rb, w->c.flows_overflow);
	uint32_t ne = w->nevents < WIRE_MAX_EVENTS ? w->nevents : WIRE_MAX_EVENTS;
	rowbinary_uleb128(rb, ne);
	for (uint32_t e = 0; e < ne; e++)
		rowbinary_cstring(rb, w->events[e].name, sizeof(w->events[e].name));
	rowbinary_uleb128(rb, ne);
	for (uint32_t e = 0; e < ne; e++)
		rowbinary_u8(rb, w->events[e].source);
	uint32_t nc = w->cpu_emitted ? w->ncpu : 0;
	rowbinary_uleb128(rb, nc);
	for (uint32_t c = 0; c < nc; c++)
		rowbinary_u64(rb, w->cpu_emitted[c]);
	u->rows[CHROWS_WINDOWS]++;
}

static void dictionary_rows(struct chwriter_unit *u, const struct wire_window *w)
{
	struct rowbinary *rb = &u->data[CHROWS_FLOWS];
	for (uint32_t i = 0; i < w->nflows; i++) {
		const struct wire_flow *f = &w->flows[i];
		const struct ms_flow_tuple *t = &f->tuple;
		key(rb, w);
		rowbinary_u64(rb, f->flow_id);
		rowbinary_u8(rb, f->has_tuple);
		rowbinary_u8(rb, f->has_tuple ? t->family : 0);
		rowbinary_u8(rb, f->has_tuple ? t->proto : 0);
		rowbinary_fixed(rb, t->saddr, f->has_tuple ? 16 : 0, 16);
		rowbinary_fixed(rb, t->daddr, f->has_tuple ? 16 : 0, 16);
		rowbinary_u16(rb, f->has_tuple ? t->sport : 0);
		rowbinary_u16(rb, f->has_tuple ? t->dport : 0);
		rowbinary_i8(rb, f->has_tuple ? enum_or_zero(t->dir, MS_DIR_TX) : 0);
		rowbinary_u32(rb, f->has_tuple ? t->ifindex : 0);
		rowbinary_u32(rb, f->has_tuple ? t->netns : 0);
		rowbinary_u16(rb, f->has_tuple ? t->vlan : 0);
		rowbinary_u8(rb, f->has_tuple && (t->flags & MS_FLOW_F_ENCAP));
	}
	u->rows[CHROWS_FLOWS] += w->nflows;
	rb = &u->data[CHROWS_FUNCTIONS];
	for (uint32_t i = 0; i < w->nfuncs; i++) {
		key(rb, w);
		rowbinary_u64(rb, w->funcs[i].func_id);
		rowbinary_cstring(rb, w->funcs[i].name, WIRE_NAME_MAX);
		rowbinary_cstring(rb, w->funcs[i].module, WIRE_NAME_MAX);
	}
	u->rows[CHROWS_FUNCTIONS] += w->nfuncs;
	rb = &u->data[CHROWS_OBJECTS];
	for (uint32_t i = 0; i < w->nobjects; i++) {
		key(rb, w);
		rowbinary_u64(rb, w->objects[i].object_id);
		rowbinary_cstring(rb, w->objects[i].name, WIRE_NAME_MAX);
		rowbinary_u64(rb, w->objects[i].addr);
		rowbinary_u64(rb, w->objects[i].size);
	}
	u->rows[CHROWS_OBJECTS] += w->nobjects;
}

static void finding_rows(struct chwriter_unit *u, const struct wire_window *w)
{
	struct rowbinary *rb = &u->data[CHROWS_FALSE_SHARING];
	for (uint32_t i = 0; i < w->nfalse_sharing; i++) {
		const struct wire_false_sharing *f = &w->false_sharing[i];
		uint32_t no = f->noffsets < WIRE_MAX_LIST ? f->noffsets : WIRE_MAX_LIST;
		uint32_t np = f->npids < WIRE_MAX_LIST ? f->npids : WIRE_MAX_LIST;
		uint32_t nf = f->nfuncs < WIRE_MAX_LIST ? f->nfuncs : WIRE_MAX_LIST;
		key(rb, w);
		rowbinary_u32(rb, i);
		rowbinary_u64(rb, f->line_addr);
		rowbinary_u64(rb, f->object_id);
		rowbinary_uleb128(rb, no);
		for (uint32_t k = 0; k < no; k++)
			rowbinary_u32(rb, f->offsets[k]);
		rowbinary_uleb128(rb, np);
		for (uint32_t k = 0; k < np; k++)
			rowbinary_u32(rb, f->pids[k]);
		rowbinary_uleb128(rb, nf);
		for (uint32_t k = 0; k < nf; k++)
			rowbinary_u64(rb, f->func_ids[k]);
		rowbinary_u64(rb, f->writers);
		rowbinary_u64(rb, f->readers);
		rowbinary_f64(rb, f->score);
		rowbinary_u8(rb, f->true_sharing);
	}
	u->rows[CHROWS_FALSE_SHARING] += w->nfalse_sharing;
	rb = &u->data[CHROWS_REMOTE_DRAM];
	for (uint32_t i = 0; i < w->nremote_dram; i++) {
		const struct wire_remote_dram *d = &w->remote_dram[i];
		key(rb, w);
		rowbinary_u32(rb, i);
		rowbinary_u64(rb, d->flow_id);
		rowbinary_u64(rb, d->object_id);
		rowbinary_i32(rb, d->mem_node);
		rowbinary_i32(rb, d->cpu_node);
		rowbinary_u64(rb, d->samples);
		rowbinary_f64(rb, d->cost);
	}
	u->rows[CHROWS_REMOTE_DRAM] += w->nremote_dram;
	rb = &u->data[CHROWS_ANOMALIES];
	for (uint32_t i = 0; i < w->nanomalies; i++) {
		const struct wire_anomaly *a = &w->anomalies[i];
		key(rb, w);
		rowbinary_u32(rb, i);
		rowbinary_u64(rb, a->ts_ns);
		rowbinary_cstring(rb, a->ifname, sizeof(a->ifname));
		rowbinary_u32(rb, a->ifindex);
		rowbinary_i8(rb, enum_or_zero(a->kind, 4));
		rowbinary_cstring(rb, a->metric, sizeof(a->metric));
		rowbinary_f64(rb, a->value);
		rowbinary_f64(rb, a->baseline);
	}
	u->rows[CHROWS_ANOMALIES] += w->nanomalies;
}

/* ms_stack_traces: one row per stack dictionary entry (the table replaces repeats by (host,
 * stack_id)); frames are "module!function" (the bare name without a module, the hex function id
 * without a name), kernel frames first; user_stack / kernel_stack hold the frame counts of each
 * part. Cost: one snprintf per frame. */
static void stack_rows(struct chwriter_unit *u, const struct wire_window *w)
{
	struct rowbinary *rb = &u->data[CHROWS_STACK_TRACES];
	char f[2 * WIRE_NAME_MAX + 2];
	for (uint32_t i = 0; i < w->nstacks; i++) {
		const struct wire_stack *s = &w->stacks[i];
		uint32_t n = (uint32_t)s->nkernel + s->nuser;
		n = n < WIRE_MAX_FRAMES ? n : WIRE_MAX_FRAMES;
		key(rb, w);
		rowbinary_u64(rb, s->stack_id);
		rowbinary_u32(rb, s->nuser);
		rowbinary_u32(rb, s->nkernel);
		rowbinary_uleb128(rb, n);
		for (uint32_t k = 0; k < n; k++) {
			uint32_t ix = s->func_ix ? s->func_ix[k] : WIRE_NONE;
			const struct wire_func *fn =
				ix < w->nfuncs && w->funcs[ix].func_id == s->func_ids[k] ? &w->funcs[ix] : NULL;
			if (fn && fn->name[0] && fn->module[0])
				snprintf(f, sizeof(f), "%.*s!%.*s", WIRE_NAME_MAX, fn->module, WIRE_NAME_MAX, fn->name);
			else if (fn && fn->name[0])
				snprintf(f, sizeof(f), "%.*s", WIRE_NAME_MAX, fn->name);
			else
				snprintf(f, sizeof(f), "0x%016llx", (unsigned long long)s->func_ids[k]);
			rowbinary_cstring(rb, f, sizeof(f));
		}
	}
	u->rows[CHROWS_STACK_TRACES] += w->nstacks;
}

static int unit_error(const struct chwriter_unit *u)
{
	for (int t = 0; t < CHROWS__N; t++)
		if (rowbinary_error(&u->data[t]))
			return rowbinary_error(&u->data[t]);
	return 0;
}

int chrows_window(struct chwriter_unit *u, const struct wire_window *w)
{
	if (!u || !w || (w->nrows && !w->rows) || (w->nflows && !w->flows) || (w->nfuncs && !w->funcs) ||
	    (w->nobjects && !w->objects) || (w->nfalse_sharing && !w->false_sharing) ||
	    (w->nremote_dram && !w->remote_dram) || (w->nanomalies && !w->anomalies) || (w->nstacks && !w->stacks))
		return -EINVAL;
	rollup_rows(u, w);
	window_row(u, w);
	dictionary_rows(u, w);
	finding_rows(u, w);
	stack_rows(u, w);
	return unit_error(u);
}

int chrows_hello(struct chwriter_unit *u, const struct wire_hello *h, uint64_t ts_ns)
{
	if (!u || !h)
		return -EINVAL;
	struct rowbinary *rb = &u->data[CHROWS_AGENTS];
	uint32_t nl = h->nlabels < WIRE_MAX_LABELS ? h->nlabels : WIRE_MAX_LABELS;
	uint32_t ne = h->nevents < WIRE_MAX_EVENTS ? h->nevents : WIRE_MAX_EVENTS, live = 0;
	for (uint32_t e = 0; e < ne; e++)
		live += h->events[e].live;
	rowbinary_datetime(rb, ts_ns / 1000000000ull);
	rowbinary_cstring(rb, h->agent_id, sizeof(h->agent_id));
	rowbinary_u64(rb, h->next_seq);
	rowbinary_u64(rb, h->instance);
	rowbinary_cstring(rb, h->version, sizeof(h->version));
	rowbinary_cstring(rb, h->host, sizeof(h->host));
	rowbinary_uleb128(rb, nl);
	for (uint32_t i = 0; i < nl; i++)
		rowbinary_cstring(rb, h->labels[i].key, sizeof(h->labels[i].key));
	rowbinary_uleb128(rb, nl);
	for (uint32_t i = 0; i < nl; i++)
		rowbinary_cstring(rb, h->labels[i].value, sizeof(h->labels[i].value));
	rowbinary_cstring(rb, h->control_endpoint, sizeof(h->control_endpoint));
	rowbinary_cstring(rb, h->hook_tier, sizeof(h->hook_tier));
	rowbinary_u8(rb, h->synthetic);
	rowbinary_cstring(rb, h->kernel, sizeof(h->kernel));
	rowbinary_u32(rb, h->ncpu);
	rowbinary_u32(rb, h->window_ms);
	for (int pass = 1; pass >= 0; pass--) {
		rowbinary_uleb128(rb, pass ? live : ne - live);
		for (uint32_t e = 0; e < ne; e++)
			if (h->events[e].live == pass)
				rowbinary_cstring(rb, h->events[e].name, sizeof(h->events[e].name));
	}
	u->rows[CHROWS_AGENTS]++;
	return rowbinary_error(rb);
}

int chrows_fleet_event(struct chwriter_unit *u, const struct chrows_fleet_event *e)
{
	if (!u || !e || (e->nhosts && !e->hosts))
		return -EINVAL;
	struct rowbinary *rb = &u->data[CHROWS_FLEET_EVENTS];
	const size_t max = 64 * 1024;
	rowbinary_datetime(rb, e->ts_ns / 1000000000ull);
	rowbinary_cstring(rb, e->coordinator, WIRE_ID_MAX);
	rowbinary_u64(rb, e->seq);
	rowbinary_u64(rb, e->ts_ns);
	rowbinary_cstring(rb, e->kind, 64);
	rowbinary_cstring(rb, e->group_key, 1024);
	rowbinary_uleb128(rb, e->nhosts);
	for (uint32_t i = 0; i < e->nhosts; i++)
		rowbinary_cstring(rb, e->hosts[i], WIRE_ID_MAX);
	rowbinary_cstring(rb, e->mode, 32);
	rowbinary_u64(rb, e->ttl_ms);
	rowbinary_cstring(rb, e->reason, 1024);
	rowbinary_cstring(rb, e->details, max);
	u->rows[CHROWS_FLEET_EVENTS]++;
	return rowbinary_error(rb);
}
