/* wire: decoding and validation of a Window (see wire.h). Everything in the message is
 * untrusted: every count is checked against its WIRE_MAX_* bound before anything is allocated
 * for it, every row index against its dictionary, every string length against its buffer. */
#include "wire.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ms.pb-c.h"

#define COST_MAX 0x1p62

static int copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	if (n >= cap)
		return -EINVAL;
	memcpy(dst, src ? src : "", n + 1);
	return 0;
}

bool wire_valid_agent_id(const char *s)
{
	size_t n = 0;
	for (; s && s[n]; n++)
		if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f || s[n] == '"' || s[n] == '\\')
			return false;
	return n > 0 && n < WIRE_ID_MAX;
}

int wire_window_new(uint32_t nrows, uint32_t nflows, uint32_t nfuncs, uint32_t ncpu, struct wire_window **ret)
{
	if (nrows > WIRE_MAX_ROWS || nflows > WIRE_MAX_DICT || nfuncs > WIRE_MAX_DICT || ncpu > WIRE_MAX_CPUS)
		return -E2BIG;
	struct wire_window *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->rows = calloc(nrows ? nrows : 1, sizeof(*w->rows));
	w->flows = calloc(nflows ? nflows : 1, sizeof(*w->flows));
	w->funcs = calloc(nfuncs ? nfuncs : 1, sizeof(*w->funcs));
	w->cpu_emitted = calloc(ncpu ? ncpu : 1, sizeof(*w->cpu_emitted));
	if (!w->rows || !w->flows || !w->funcs || !w->cpu_emitted) {
		wire_window_free(w);
		return -ENOMEM;
	}
	*ret = w;
	return 0;
}

struct wire_window *wire_window_free(struct wire_window *w)
{
	if (!w)
		return NULL;
	free(w->rows);
	free(w->flows);
	free(w->funcs);
	free(w->objects);
	free(w->cpu_emitted);
	free(w->false_sharing);
	free(w->remote_dram);
	free(w->anomalies);
	free(w->stacks);
	free(w->stack_func_ids);
	free(w->stack_func_ix);
	free(w);
	return NULL;
}

static int dec_flow(const Ms__V1__Flow *p, struct wire_flow *f)
{
	if (p->sport > 65535 || p->dport > 65535 || p->proto > 255 || p->dir > 2 || p->flags > 255 ||
	    p->vlan > 4095)
		return -EINVAL;
	f->flow_id = p->flow_id;
	if (p->family == 0) {
		/* id only: the agent knew the flow but not its tuple */
		return f->flow_id ? 0 : -EINVAL;
	}
	struct ms_flow_tuple *t = &f->tuple;
	size_t alen = p->saddr.len;
	if (p->daddr.len != alen)
		return -EINVAL;
	if (p->family == MS_FAMILY_V4 && (alen == 4 || alen == 16)) {
		if (alen == 4) {
			t->saddr[10] = t->saddr[11] = t->daddr[10] = t->daddr[11] = 0xff;
		}
	} else if (!(p->family == MS_FAMILY_V6 && alen == 16)) {
		return -EINVAL;
	}
	memcpy(t->saddr + 16 - alen, p->saddr.data, alen);
	memcpy(t->daddr + 16 - alen, p->daddr.data, alen);
	t->sport = (uint16_t)p->sport;
	t->dport = (uint16_t)p->dport;
	t->family = (uint8_t)p->family;
	t->proto = (uint8_t)p->proto;
	t->dir = (uint8_t)p->dir;
	t->flags = (uint8_t)p->flags;
	t->ifindex = p->ifindex;
	t->netns = p->netns;
	t->vlan = (uint16_t)p->vlan;
	f->has_tuple = true;
	if (!f->flow_id)
		f->flow_id = ms_flow_hash(t);
	return 0;
}

static void dec_counters(const Ms__V1__Counters *p, struct wire_counters *c)
{
	if (!p)
		return;
	c->bpf[MS_CNT_EMITTED] = p->emitted;
	c->bpf[MS_CNT_DROP_BUDGET] = p->budget;
	c->bpf[MS_CNT_DROP_GAP] = p->gap;
	c->bpf[MS_CNT_DROP_RINGFULL] = p->ringfull;
	c->bpf[MS_CNT_UNATTRIBUTED] = p->unattributed;
	c->bpf[MS_CNT_ATTR_THREAD] = p->attr_thread;
	c->bpf[MS_CNT_ATTR_PACKET] = p->attr_packet;
	c->bpf[MS_CNT_IDLE] = p->idle;
	c->bpf[MS_CNT_FILTERED] = p->filtered;
	c->bpf[MS_CNT_CTX_RX] = p->ctx_rx;
	c->bpf[MS_CNT_CTX_TX] = p->ctx_tx;
	c->bpf[MS_CNT_CTX_SOCK] = p->ctx_sock;
	c->bpf[MS_CNT_CTX_PARSE_FAIL] = p->ctx_parse_fail;
	c->bpf[MS_CNT_STACK_FAIL] = p->stack_fail;
	c->processed = p->processed;
	c->lost = p->lost;
	c->agg_degraded = p->agg_degraded;
	c->agg_dropped = p->agg_dropped;
	c->flows_overflow = p->flows_overflow;
}

static int dec_findings(const Ms__V1__Window *m, struct wire_window *w)
{
	if (m->n_false_sharing > WIRE_MAX_FINDINGS || m->n_remote_dram > WIRE_MAX_FINDINGS ||
	    m->n_anomalies > WIRE_MAX_FINDINGS)
		return -E2BIG;
	if (m->n_false_sharing && !(w->false_sharing = calloc(m->n_false_sharing, sizeof(*w->false_sharing))))
		return -ENOMEM;
	if (m->n_remote_dram && !(w->remote_dram = calloc(m->n_remote_dram, sizeof(*w->remote_dram))))
		return -ENOMEM;
	if (m->n_anomalies && !(w->anomalies = calloc(m->n_anomalies, sizeof(*w->anomalies))))
		return -ENOMEM;
	for (size_t i = 0; i < m->n_false_sharing; i++) {
		const Ms__V1__FalseSharing *p = m->false_sharing[i];
		struct wire_false_sharing *f = &w->false_sharing[i];
		if (p->n_offsets > WIRE_MAX_LIST || p->n_pids > WIRE_MAX_LIST || p->n_func_ids > WIRE_MAX_LIST)
			return -E2BIG;
		if (!isfinite(p->score))
			return -EINVAL;
		f->line_addr = p->line_addr;
		f->object_id = p->object_id;
		f->writers = p->writers;
		f->readers = p->readers;
		f->score = p->score;
		f->true_sharing = p->true_sharing;
		f->noffsets = (uint32_t)p->n_offsets;
		f->npids = (uint32_t)p->n_pids;
		f->nfuncs = (uint32_t)p->n_func_ids;
		if (p->n_offsets)
			memcpy(f->offsets, p->offsets, p->n_offsets * sizeof(*f->offsets));
		if (p->n_pids)
			memcpy(f->pids, p->pids, p->n_pids * sizeof(*f->pids));
		if (p->n_func_ids)
			memcpy(f->func_ids, p->func_ids, p->n_func_ids * sizeof(*f->func_ids));
	}
	w->nfalse_sharing = (uint32_t)m->n_false_sharing;
	for (size_t i = 0; i < m->n_remote_dram; i++) {
		const Ms__V1__RemoteDram *p = m->remote_dram[i];
		if (!isfinite(p->cost))
			return -EINVAL;
		w->remote_dram[i] = (struct wire_remote_dram){ p->flow_id, p->object_id, p->samples,
							       p->mem_node, p->cpu_node, p->cost };
	}
	w->nremote_dram = (uint32_t)m->n_remote_dram;
	for (size_t i = 0; i < m->n_anomalies; i++) {
		const Ms__V1__AnomalySignal *p = m->anomalies[i];
		struct wire_anomaly *a = &w->anomalies[i];
		if (copy_str(a->ifname, sizeof(a->ifname), p->ifname) < 0 ||
		    copy_str(a->metric, sizeof(a->metric), p->metric) < 0 || !isfinite(p->value) ||
		    !isfinite(p->baseline) || (uint32_t)p->kind > 4)
			return -EINVAL;
		a->ifindex = p->ifindex;
		a->kind = (uint32_t)p->kind;
		a->value = p->value;
		a->baseline = p->baseline;
		a->ts_ns = p->ts_ns;
	}
	w->nanomalies = (uint32_t)m->n_anomalies;
	return 0;
}

/* The stack dictionary: frames index the function dictionary already decoded. */
static int dec_stacks(const Ms__V1__Window *m, struct wire_window *w)
{
	if (!m->n_stacks)
		return 0;
	if (m->n_stacks > WIRE_MAX_STACKS)
		return -E2BIG;
	size_t frames = 0; /* <= 2^14 stacks x 128 frames: no overflow */
	for (size_t i = 0; i < m->n_stacks; i++) {
		if (m->stacks[i]->n_frames > WIRE_MAX_FRAMES)
			return -E2BIG;
		frames += m->stacks[i]->n_frames;
	}
	if (!(w->stacks = calloc(m->n_stacks, sizeof(*w->stacks))) ||
	    !(w->stack_func_ids = malloc((frames ? frames : 1) * sizeof(*w->stack_func_ids))) ||
	    !(w->stack_func_ix = malloc((frames ? frames : 1) * sizeof(*w->stack_func_ix))))
		return -ENOMEM;
	frames = 0;
	for (size_t i = 0; i < m->n_stacks; i++) {
		const Ms__V1__Stack *p = m->stacks[i];
		struct wire_stack *s = &w->stacks[i];
		if (p->nkernel > p->n_frames || p->stack_id == WIRE_NO_STACK)
			return -EINVAL;
		s->func_ids = w->stack_func_ids + frames;
		s->func_ix = w->stack_func_ix + frames;
		frames += p->n_frames;
		s->stack_id = p->stack_id;
		s->nkernel = (uint16_t)p->nkernel;
		s->nuser = (uint16_t)(p->n_frames - p->nkernel);
		for (size_t k = 0; k < p->n_frames; k++) {
			uint32_t fn = p->frames[k];
			if (fn > w->nfuncs)
				return -EINVAL;
			s->func_ix[k] = fn ? fn - 1 : WIRE_NONE;
			s->func_ids[k] = fn ? w->funcs[fn - 1].func_id : 0;
		}
	}
	w->nstacks = (uint32_t)m->n_stacks;
	return 0;
}

/* A column is either empty (all rows default) or has exactly one entry per row. */
#define COL_OK(n) ((n) == 0 || (n) == count)
#define COL(c, i) (rows->n_##c ? rows->c[i] : 0)

static int dec_rows(const Ms__V1__Window *m, struct wire_window *w, const double *cps)
{
	const Ms__V1__Rows *rows = m->rows;
	uint32_t count = w->nrows;
	if (!count)
		return 0;
	if (!COL_OK(rows->n_flow_delta) || !COL_OK(rows->n_func) || !COL_OK(rows->n_pid) ||
	    !COL_OK(rows->n_event) || !COL_OK(rows->n_attrs) || !COL_OK(rows->n_numa) ||
	    !COL_OK(rows->n_stack) || !COL_OK(rows->n_object) || !COL_OK(rows->n_samples) ||
	    !COL_OK(rows->n_cost_delta))
		return -EINVAL;
	uint64_t fx = 0, total = 0;
	for (uint32_t i = 0; i < count; i++) {
		struct wire_row *r = &w->rows[i];
		fx += COL(flow_delta, i);
		uint32_t fn = COL(func, i), pid = COL(pid, i), ev = COL(event, i), at = COL(attrs, i);
		uint32_t numa = COL(numa, i), st = COL(stack, i), ob = COL(object, i);
		if (fx > w->nflows || fn > w->nfuncs || (pid >= m->n_pids && !(m->n_pids == 0 && pid == 0)) ||
		    (ev >= w->nevents && !(w->nevents == 0 && ev == 0)) || (at & 3) == 3 || (at >> 3) >= 32 || numa > 32767 ||
		    st > m->n_stack_ids || ob > w->nobjects)
			return -EINVAL;
		r->flow_ix = fx ? (uint32_t)fx - 1 : WIRE_NONE;
		r->flow_id = fx ? w->flows[fx - 1].flow_id : 0;
		r->func_ix = fn ? fn - 1 : WIRE_NONE;
		r->func_id = fn ? w->funcs[fn - 1].func_id : 0;
		r->pid = m->n_pids ? m->pids[pid] : 0;
		r->event = (uint16_t)ev;
		r->dir = at & 3;
		r->user_mode = (at >> 2) & 1;
		r->iclass = (uint8_t)(at >> 3);
		r->numa_node = (int16_t)((int32_t)numa - 1);
		r->stack_id = st ? m->stack_ids[st - 1] : WIRE_NO_STACK;
		r->object_ix = ob ? ob - 1 : WIRE_NONE;
		r->object_id = ob ? w->objects[ob - 1].object_id : 0;
		r->samples = COL(samples, i);
		double base = (double)r->samples * (w->nevents ? cps[ev] : 0.0);
		int64_t cost;
		if (!(base < COST_MAX) ||
		    __builtin_add_overflow((int64_t)llround(base), (int64_t)COL(cost_delta, i), &cost) || cost < 0 ||
		    (double)cost > COST_MAX)
			return -EINVAL;
		r->norm_cost = (double)cost;
		if (__builtin_add_overflow(total, r->samples, &total))
			return -EINVAL;
	}
	w->samples = total;
	return 0;
}

static int dec_dicts(const Ms__V1__Window *m, struct wire_window *w, double *cps)
{
	for (size_t i = 0; i < m->n_events; i++) {
		const Ms__V1__EventInfo *p = m->events[i];
		if (copy_str(w->events[i].name, sizeof(w->events[i].name), p->name) < 0 || (uint32_t)p->source > 1 ||
		    !(p->cost_per_sample >= 0 && p->cost_per_sample < COST_MAX))
			return -EINVAL;
		w->events[i].source = (uint8_t)p->source;
		cps[i] = p->cost_per_sample;
	}
	w->nevents = (uint32_t)m->n_events;
	for (size_t i = 0; i < m->n_modules; i++)
		if (strlen(m->modules[i]) >= WIRE_NAME_MAX)
			return -EINVAL;
	for (size_t i = 0; i < m->n_flows; i++)
		if (dec_flow(m->flows[i], &w->flows[i]) < 0)
			return -EINVAL;
	w->nflows = (uint32_t)m->n_flows;
	for (size_t i = 0; i < m->n_funcs; i++) {
		const Ms__V1__Func *p = m->funcs[i];
		struct wire_func *f = &w->funcs[i];
		if (copy_str(f->name, sizeof(f->name), p->name) < 0 ||
		    (p->module >= m->n_modules && !(m->n_modules == 0 && p->module == 0)))
			return -EINVAL;
		f->func_id = p->func_id;
		copy_str(f->module, sizeof(f->module), m->n_modules ? m->modules[p->module] : "");
	}
	w->nfuncs = (uint32_t)m->n_funcs;
	if (m->n_objects && !(w->objects = calloc(m->n_objects, sizeof(*w->objects))))
		return -ENOMEM;
	for (size_t i = 0; i < m->n_objects; i++) {
		const Ms__V1__DataObject *p = m->objects[i];
		if (copy_str(w->objects[i].name, sizeof(w->objects[i].name), p->name) < 0)
			return -EINVAL;
		w->objects[i].object_id = p->object_id;
		w->objects[i].addr = p->addr;
		w->objects[i].size = p->size;
	}
	w->nobjects = (uint32_t)m->n_objects;
	return 0;
}

int wire_window_from_pb(const void *pb, struct wire_window **ret)
{
	const Ms__V1__Window *m = pb;
	uint32_t count = m->rows ? m->rows->count : 0;
	if (!wire_valid_agent_id(m->agent_id) || m->seq == 0 || m->end_ns < m->start_ns ||
	    (uint32_t)m->mode > 1)
		return -EINVAL;
	if (count > WIRE_MAX_ROWS || m->n_events > WIRE_MAX_EVENTS || m->n_flows > WIRE_MAX_DICT ||
	    m->n_funcs > WIRE_MAX_DICT || m->n_modules > WIRE_MAX_DICT || m->n_pids > WIRE_MAX_DICT ||
	    m->n_stack_ids > WIRE_MAX_DICT || m->n_objects > WIRE_MAX_DICT || m->n_cpu_emitted > WIRE_MAX_CPUS)
		return -E2BIG;
	struct wire_window *w;
	int r = wire_window_new(count, (uint32_t)m->n_flows, (uint32_t)m->n_funcs, (uint32_t)m->n_cpu_emitted, &w);
	if (r < 0)
		return r;
	double cps[WIRE_MAX_EVENTS] = { 0 };
	copy_str(w->agent_id, sizeof(w->agent_id), m->agent_id);
	w->seq = m->seq;
	w->start_ns = m->start_ns;
	w->end_ns = m->end_ns;
	w->mode = (uint8_t)m->mode;
	w->budget_per_cpu = m->budget_per_cpu;
	w->nrows = count;
	dec_counters(m->counters, &w->c);
	w->ncpu = (uint32_t)m->n_cpu_emitted;
	if (w->ncpu)
		memcpy(w->cpu_emitted, m->cpu_emitted, w->ncpu * sizeof(*w->cpu_emitted));
	if ((r = dec_dicts(m, w, cps)) < 0 || (r = dec_rows(m, w, cps)) < 0 || (r = dec_findings(m, w)) < 0 ||
	    (r = dec_stacks(m, w)) < 0) {
		wire_window_free(w);
		return r;
	}
	*ret = w;
	return 0;
}

int wire_decode_window(const uint8_t *buf, size_t len, struct wire_window **ret)
{
	if (!buf && len)
		return -EINVAL;
	Ms__V1__Window *m = ms__v1__window__unpack(NULL, len, buf);
	if (!m)
		return -EBADMSG;
	int r = wire_window_from_pb(m, ret);
	ms__v1__window__free_unpacked(m, NULL);
	return r;
}
