/* wire: the Window codec (see wire.h). Requests, hellos and acks are in wire_msg.c. */
#include "wire.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ms.pb-c.h"

/* Costs are sent in whole units; 2^62 keeps every sum and llround() in range. */
#define COST_MAX 0x1p62

/* ------------------------------------------------------------------ small maps */

/* u64 key -> u32 value, open addressing, value UINT32_MAX = empty slot. Grows by doubling at
 * half full, so its memory follows the distinct keys of the window, not its rows: the encoder
 * runs once per window on the agent and the coordinator and should not touch more memory
 * than the window has dictionary entries. */
struct idmap {
	uint64_t *k;
	uint32_t *v;
	uint32_t mask;
	uint32_t n;
};

static int idmap_alloc(struct idmap *m, uint32_t cap)
{
	m->k = malloc((size_t)cap * sizeof(*m->k));
	m->v = malloc((size_t)cap * sizeof(*m->v));
	if (!m->k || !m->v) {
		free(m->k);
		free(m->v);
		m->k = NULL;
		m->v = NULL;
		return -ENOMEM;
	}
	memset(m->v, 0xff, (size_t)cap * sizeof(*m->v));
	m->mask = cap - 1;
	return 0;
}

static int idmap_init(struct idmap *m, uint32_t hint)
{
	uint32_t cap = 16;
	while (cap < 2 * (uint64_t)hint + 2)
		cap <<= 1;
	m->n = 0;
	return idmap_alloc(m, cap);
}

static void idmap_release(struct idmap *m)
{
	free(m->k);
	free(m->v);
}

static uint32_t idmap_pos(const struct idmap *m, uint64_t key)
{
	uint32_t p = (uint32_t)ms_mix64(key) & m->mask;
	while (m->v[p] != UINT32_MAX && m->k[p] != key)
		p = (p + 1) & m->mask;
	return p;
}

static uint32_t idmap_get(const struct idmap *m, uint64_t key)
{
	return m->v[idmap_pos(m, key)];
}

/* The key's value, giving it the next value (n) when new; UINT32_MAX on -ENOMEM. */
static uint32_t idmap_add(struct idmap *m, uint64_t key)
{
	uint32_t p = idmap_pos(m, key);
	if (m->v[p] != UINT32_MAX)
		return m->v[p];
	if (2 * (m->n + 1) > m->mask + 1) {
		struct idmap old = *m;
		if (idmap_alloc(m, (old.mask + 1) * 2) < 0) {
			*m = old;
			return UINT32_MAX;
		}
		for (uint32_t i = 0; i <= old.mask; i++)
			if (old.v[i] != UINT32_MAX) {
				uint32_t q = idmap_pos(m, old.k[i]);
				m->k[q] = old.k[i];
				m->v[q] = old.v[i];
			}
		idmap_release(&old);
		p = idmap_pos(m, key);
	}
	m->k[p] = key;
	m->v[p] = m->n;
	return m->n++;
}

static uint64_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return h;
}

/* ------------------------------------------------------------------ encoder */

struct rowkey {
	uint64_t flow;
	uint32_t ix;
};

static int cmp_rowkey(const void *a, const void *b)
{
	const struct rowkey *x = a, *y = b;
	if (x->flow != y->flow)
		return x->flow < y->flow ? -1 : 1;
	return x->ix < y->ix ? -1 : x->ix > y->ix;
}

/* Everything the encoder allocates, released in one place. Per-row arrays are one block;
 * dictionaries are sized by a first pass that counts distinct keys. */
struct enc {
	struct rowkey *order;
	struct idmap wflows, wfuncs, wobjs, funcs, pids, stacks, objs, mods;
	uint32_t nflows;                  /* distinct flows of the rows */
	uint32_t nfn;                     /* function entries made so far (pass 2) */
	const struct wire_window *w;
	Ms__V1__Flow *pf;
	Ms__V1__Flow **ppf;
	uint8_t (*addr)[2][16];
	Ms__V1__Func *pfn;
	Ms__V1__Func **ppfn;
	Ms__V1__DataObject *po;
	Ms__V1__DataObject **ppo;
	Ms__V1__EventInfo pe[WIRE_MAX_EVENTS];
	Ms__V1__EventInfo *ppe[WIRE_MAX_EVENTS];
	char **mods_s;
	uint32_t *pid_v;
	uint64_t *stack_v;
	void *block;                      /* the per-row columns below */
	uint32_t *col[8];                 /* flow_delta func pid event attrs numa stack object */
	uint64_t *samples;
	int64_t *cost;
};

static void enc_release(struct enc *e)
{
	free(e->order);
	idmap_release(&e->wflows);
	idmap_release(&e->wfuncs);
	idmap_release(&e->wobjs);
	idmap_release(&e->funcs);
	idmap_release(&e->pids);
	idmap_release(&e->stacks);
	idmap_release(&e->objs);
	idmap_release(&e->mods);
	free(e->pf);
	free(e->ppf);
	free(e->addr);
	free(e->pfn);
	free(e->ppfn);
	free(e->po);
	free(e->ppo);
	free(e->mods_s);
	free(e->pid_v);
	free(e->stack_v);
	free(e->block);
}

static bool v4_mapped(const uint8_t *a)
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return memcmp(a, pfx, 12) == 0;
}

static void enc_flow(struct enc *e, uint32_t i, uint64_t id, const struct wire_flow *f)
{
	Ms__V1__Flow *p = &e->pf[i];
	ms__v1__flow__init(p);
	e->ppf[i] = p;
	p->flow_id = id;
	if (!f || !f->has_tuple)
		return;
	const struct ms_flow_tuple *t = &f->tuple;
	bool v4 = t->family == MS_FAMILY_V4 && v4_mapped(t->saddr) && v4_mapped(t->daddr);
	size_t alen = v4 ? 4 : 16;
	memcpy(e->addr[i][0], t->saddr + 16 - alen, alen);
	memcpy(e->addr[i][1], t->daddr + 16 - alen, alen);
	p->saddr.len = p->daddr.len = alen;
	p->saddr.data = e->addr[i][0];
	p->daddr.data = e->addr[i][1];
	p->sport = t->sport;
	p->dport = t->dport;
	p->family = t->family;
	p->proto = t->proto;
	p->dir = t->dir;
	p->ifindex = t->ifindex;
	p->netns = t->netns;
	p->vlan = t->vlan;
	p->flags = t->flags;
	/* the decoder recomputes the documented hash when the id is omitted; omit it only when
	 * the tuple survives the round trip byte for byte */
	if ((v4 || t->family == MS_FAMILY_V6) && ms_flow_hash(t) == id)
		p->flow_id = 0;
}

/* Module name dictionary: the module's index, adding it when new (mods_s has room for one
 * module per function). */
static uint32_t enc_module(struct enc *e, const char *name)
{
	uint64_t h = str_hash(name);
	uint32_t p = (uint32_t)ms_mix64(h) & e->mods.mask;
	while (e->mods.v[p] != UINT32_MAX) {
		if (e->mods.k[p] == h && strcmp(e->mods_s[e->mods.v[p]], name) == 0)
			return e->mods.v[p];
		p = (p + 1) & e->mods.mask;
	}
	e->mods.k[p] = h;
	e->mods.v[p] = e->mods.n;
	e->mods_s[e->mods.n] = (char *)name;
	return e->mods.n++;
}

static int check_window(const struct wire_window *w)
{
	size_t idlen = strnlen(w->agent_id, WIRE_ID_MAX);
	if (idlen == 0 || idlen == WIRE_ID_MAX || w->seq == 0 || w->mode > 1)
		return -EINVAL;
	if (w->nrows > WIRE_MAX_ROWS || w->nflows > WIRE_MAX_DICT || w->nfuncs > WIRE_MAX_DICT ||
	    w->nobjects > WIRE_MAX_DICT || w->nevents > WIRE_MAX_EVENTS || w->ncpu > WIRE_MAX_CPUS ||
	    w->nfalse_sharing > WIRE_MAX_FINDINGS || w->nremote_dram > WIRE_MAX_FINDINGS ||
	    w->nanomalies > WIRE_MAX_FINDINGS || w->nstacks > WIRE_MAX_STACKS)
		return -E2BIG;
	for (uint32_t i = 0; i < (w->stacks ? w->nstacks : 0); i++) {
		uint32_t n = (uint32_t)w->stacks[i].nkernel + w->stacks[i].nuser;
		if (n > WIRE_MAX_FRAMES)
			return -E2BIG;
		if (n && !w->stacks[i].func_ids)
			return -EINVAL;
	}
	for (uint32_t i = 0; i < w->nevents; i++)
		if (strnlen(w->events[i].name, sizeof(w->events[i].name)) == sizeof(w->events[i].name))
			return -EINVAL;
	for (uint32_t i = 0; i < w->nfuncs; i++)
		if (strnlen(w->funcs[i].name, WIRE_NAME_MAX) == WIRE_NAME_MAX ||
		    strnlen(w->funcs[i].module, WIRE_NAME_MAX) == WIRE_NAME_MAX)
			return -EINVAL;
	for (uint32_t i = 0; i < w->nobjects; i++)
		if (strnlen(w->objects[i].name, WIRE_NAME_MAX) == WIRE_NAME_MAX)
			return -EINVAL;
	for (uint32_t i = 0; i < w->nanomalies; i++)
		if (strnlen(w->anomalies[i].ifname, 32) == 32 || strnlen(w->anomalies[i].metric, 32) == 32)
			return -EINVAL;
	for (uint32_t i = 0; i < w->nrows; i++) {
		const struct wire_row *r = &w->rows[i];
		if ((r->event >= w->nevents && !(w->nevents == 0 && r->event == 0)) || r->dir > 2 ||
		    r->user_mode > 1 || r->iclass >= 32 || r->numa_node < -1 || r->numa_node == INT16_MAX ||
		    !(r->norm_cost >= 0 && r->norm_cost <= COST_MAX))
			return -EINVAL;
	}
	return 0;
}

/* Per event: mean cost per sample, the base the rows' cost deltas are taken from. Falls back
 * to 0 (delta = whole cost) if any row's product would leave the exact range. */
static void enc_costs(struct enc *e, const struct wire_window *w)
{
	double sc[WIRE_MAX_EVENTS] = { 0 }, ss[WIRE_MAX_EVENTS] = { 0 };
	for (uint32_t i = 0; i < w->nrows; i++) {
		sc[w->rows[i].event] += w->rows[i].norm_cost;
		ss[w->rows[i].event] += (double)w->rows[i].samples;
	}
	for (uint32_t ev = 0; ev < w->nevents; ev++)
		e->pe[ev].cost_per_sample = ss[ev] > 0 ? sc[ev] / ss[ev] : 0.0;
	for (uint32_t i = 0; i < w->nrows; i++) {
		const struct wire_row *r = &w->rows[i];
		if (w->nevents && !((double)r->samples * e->pe[r->event].cost_per_sample < COST_MAX))
			e->pe[r->event].cost_per_sample = 0.0;
	}
}

/* Pass 1: sort rows by flow and count the distinct keys of every dictionary (the maps give
 * each key its index in order of first appearance, which pass 2 repeats). */
static int enc_count(struct enc *e, const struct wire_window *w)
{
	uint32_t n = w->nrows;
	int r = 0;
	r |= idmap_init(&e->wflows, w->nflows);
	r |= idmap_init(&e->wfuncs, w->nfuncs);
	r |= idmap_init(&e->wobjs, w->nobjects);
	r |= idmap_init(&e->funcs, w->nfuncs);
	r |= idmap_init(&e->pids, 4);
	r |= idmap_init(&e->stacks, 4);
	r |= idmap_init(&e->objs, w->nobjects);
	if (r || !(e->order = malloc((size_t)(n ? n : 1) * sizeof(*e->order))))
		return -ENOMEM;
	for (uint32_t i = 0; i < w->nflows; i++)
		if (idmap_add(&e->wflows, w->flows[i].flow_id) == UINT32_MAX)
			return -ENOMEM;
	for (uint32_t i = 0; i < w->nfuncs; i++)
		if (idmap_add(&e->wfuncs, w->funcs[i].func_id) == UINT32_MAX)
			return -ENOMEM;
	for (uint32_t i = 0; i < w->nobjects; i++)
		if (idmap_add(&e->wobjs, w->objects[i].object_id) == UINT32_MAX)
			return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		e->order[i] = (struct rowkey){ w->rows[i].flow_id, i };
	qsort(e->order, n, sizeof(*e->order), cmp_rowkey);
	uint64_t prev = 0;
	for (uint32_t k = 0; k < n; k++) {
		const struct wire_row *row = &w->rows[e->order[k].ix];
		if (row->flow_id && (k == 0 || row->flow_id != prev))
			e->nflows++;
		prev = row->flow_id;
		if ((row->func_id && idmap_add(&e->funcs, row->func_id) == UINT32_MAX) ||
		    idmap_add(&e->pids, row->pid) == UINT32_MAX ||
		    (row->stack_id != WIRE_NO_STACK && idmap_add(&e->stacks, row->stack_id) == UINT32_MAX) ||
		    (row->object_id && idmap_add(&e->objs, row->object_id) == UINT32_MAX))
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < (w->stacks ? w->nstacks : 0); i++)
		for (uint32_t k = 0; k < (uint32_t)w->stacks[i].nkernel + w->stacks[i].nuser && k < WIRE_MAX_FRAMES; k++)
			if (w->stacks[i].func_ids[k] && idmap_add(&e->funcs, w->stacks[i].func_ids[k]) == UINT32_MAX)
				return -ENOMEM;
	uint32_t nf = e->nflows ? e->nflows : 1, nfn = e->funcs.n ? e->funcs.n : 1, no = e->objs.n ? e->objs.n : 1;
	e->pf = malloc((size_t)nf * sizeof(*e->pf));
	e->ppf = malloc((size_t)nf * sizeof(*e->ppf));
	e->addr = malloc((size_t)nf * sizeof(*e->addr));
	e->pfn = malloc((size_t)nfn * sizeof(*e->pfn));
	e->ppfn = malloc((size_t)nfn * sizeof(*e->ppfn));
	e->mods_s = malloc((size_t)nfn * sizeof(*e->mods_s));
	e->po = malloc((size_t)no * sizeof(*e->po));
	e->ppo = malloc((size_t)no * sizeof(*e->ppo));
	e->pid_v = malloc((size_t)(e->pids.n ? e->pids.n : 1) * sizeof(*e->pid_v));
	e->stack_v = malloc((size_t)(e->stacks.n ? e->stacks.n : 1) * sizeof(*e->stack_v));
	/* one block for the per-row columns: 8 u32 columns, samples and costs */
	size_t rn = n ? n : 1;
	e->block = malloc(rn * (8 * sizeof(uint32_t) + sizeof(uint64_t) + sizeof(int64_t)));
	if (idmap_init(&e->mods, e->funcs.n) < 0 || !e->pf || !e->ppf || !e->addr || !e->pfn || !e->ppfn ||
	    !e->mods_s || !e->po || !e->ppo || !e->pid_v || !e->stack_v || !e->block)
		return -ENOMEM;
	e->samples = e->block;
	e->cost = (int64_t *)(e->samples + rn);
	for (int i = 0; i < 8; i++)
		e->col[i] = (uint32_t *)(e->cost + rn) + (size_t)i * rn;
	return 0;
}

/* A function's 1 + index in the Window's dictionary (0 for id 0), the entry made on its first
 * appearance in the order of pass 1 (rows, then stack frames). */
static uint32_t enc_func(void *ctx, uint64_t id)
{
	struct enc *e = ctx;
	if (!id)
		return 0;
	uint32_t fn = idmap_get(&e->funcs, id);
	if (fn == e->nfn) {
		Ms__V1__Func *p = &e->pfn[e->nfn];
		ms__v1__func__init(p);
		e->ppfn[e->nfn++] = p;
		p->func_id = id;
		uint32_t wi = idmap_get(&e->wfuncs, id);
		if (wi != UINT32_MAX) {
			p->name = (char *)e->w->funcs[wi].name;
			p->module = enc_module(e, e->w->funcs[wi].module);
		}
	}
	return fn + 1;
}

/* Pass 2: every row column and the dictionary entries they index. */
static void enc_rows(struct enc *e, const struct wire_window *w, Ms__V1__Window *m)
{
	uint32_t prev = 0, nf = 0, no = 0;
	uint64_t prev_id = 0;
	for (uint32_t k = 0; k < w->nrows; k++) {
		const struct wire_row *r = &w->rows[e->order[k].ix];
		uint32_t fx = 0;
		if (r->flow_id) {
			if (nf == 0 || r->flow_id != prev_id) {
				uint32_t wi = idmap_get(&e->wflows, r->flow_id);
				enc_flow(e, nf, r->flow_id, wi == UINT32_MAX ? NULL : &w->flows[wi]);
				nf++;
			}
			fx = nf;
		}
		prev_id = r->flow_id;
		e->col[0][k] = fx - prev;
		prev = fx;

		uint32_t fn = enc_func(e, r->func_id);
		e->col[1][k] = fn;
		uint32_t pv = idmap_get(&e->pids, r->pid);
		e->pid_v[pv] = r->pid;
		e->col[2][k] = pv;
		e->col[3][k] = r->event;
		e->col[4][k] = (uint32_t)r->dir | (uint32_t)r->user_mode << 2 | (uint32_t)r->iclass << 3;
		e->col[5][k] = (uint32_t)(r->numa_node + 1);
		uint32_t sv = 0;
		if (r->stack_id != WIRE_NO_STACK) {
			sv = idmap_get(&e->stacks, r->stack_id);
			e->stack_v[sv++] = r->stack_id;
		}
		e->col[6][k] = sv;
		uint32_t ov = 0;
		if (r->object_id) {
			ov = idmap_get(&e->objs, r->object_id);
			if (ov == no) {
				Ms__V1__DataObject *p = &e->po[no];
				ms__v1__data_object__init(p);
				e->ppo[no++] = p;
				p->object_id = r->object_id;
				uint32_t wi = idmap_get(&e->wobjs, r->object_id);
				if (wi != UINT32_MAX) {
					p->name = (char *)w->objects[wi].name;
					p->addr = w->objects[wi].addr;
					p->size = w->objects[wi].size;
				}
			}
			ov++;
		}
		e->col[7][k] = ov;
		e->samples[k] = r->samples;
		double cps = w->nevents ? e->pe[r->event].cost_per_sample : 0.0;
		e->cost[k] = (int64_t)llround(r->norm_cost) - (int64_t)llround((double)r->samples * cps);
	}
	m->n_flows = nf;
	m->flows = e->ppf;
	m->funcs = e->ppfn;
	m->n_objects = no;
	m->objects = e->ppo;
	m->n_modules = e->mods.n;
	m->modules = e->mods_s;
	m->n_pids = e->pids.n;
	m->pids = e->pid_v;
	m->n_stack_ids = e->stacks.n;
	m->stack_ids = e->stack_v;
}

/* A column whose values are all 0 is sent empty. */
static size_t col_len(const uint32_t *c, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (c[i])
			return n;
	return 0;
}

/* Findings and anomaly signals: one allocation for all their protobuf structs. The lists
 * point into w (no copies). */
static int enc_findings(const struct wire_window *w, Ms__V1__Window *m, void **ret_mem)
{
	size_t nfs = w->nfalse_sharing, nrd = w->nremote_dram, nan = w->nanomalies;
	size_t sz = nfs * (sizeof(Ms__V1__FalseSharing) + sizeof(void *)) +
		    nrd * (sizeof(Ms__V1__RemoteDram) + sizeof(void *)) +
		    nan * (sizeof(Ms__V1__AnomalySignal) + sizeof(void *));
	if (!sz)
		return 0;
	char *mem = calloc(1, sz);
	if (!mem)
		return -ENOMEM;
	Ms__V1__FalseSharing *fs = (void *)mem;
	Ms__V1__RemoteDram *rd = (void *)(fs + nfs);
	Ms__V1__AnomalySignal *an = (void *)(rd + nrd);
	Ms__V1__FalseSharing **pfs = (void *)(an + nan);
	Ms__V1__RemoteDram **prd = (void *)(pfs + nfs);
	Ms__V1__AnomalySignal **pan = (void *)(prd + nrd);
	for (size_t i = 0; i < nfs; i++) {
		const struct wire_false_sharing *f = &w->false_sharing[i];
		ms__v1__false_sharing__init(&fs[i]);
		pfs[i] = &fs[i];
		fs[i].line_addr = f->line_addr;
		fs[i].object_id = f->object_id;
		fs[i].n_offsets = f->noffsets < WIRE_MAX_LIST ? f->noffsets : WIRE_MAX_LIST;
		fs[i].offsets = (uint32_t *)f->offsets;
		fs[i].n_pids = f->npids < WIRE_MAX_LIST ? f->npids : WIRE_MAX_LIST;
		fs[i].pids = (uint32_t *)f->pids;
		fs[i].n_func_ids = f->nfuncs < WIRE_MAX_LIST ? f->nfuncs : WIRE_MAX_LIST;
		fs[i].func_ids = (uint64_t *)f->func_ids;
		fs[i].writers = f->writers;
		fs[i].readers = f->readers;
		fs[i].score = f->score;
		fs[i].true_sharing = f->true_sharing;
	}
	for (size_t i = 0; i < nrd; i++) {
		const struct wire_remote_dram *d = &w->remote_dram[i];
		ms__v1__remote_dram__init(&rd[i]);
		prd[i] = &rd[i];
		rd[i].flow_id = d->flow_id;
		rd[i].mem_node = d->mem_node;
		rd[i].cpu_node = d->cpu_node;
		rd[i].object_id = d->object_id;
		rd[i].samples = d->samples;
		rd[i].cost = d->cost;
	}
	for (size_t i = 0; i < nan; i++) {
		const struct wire_anomaly *a = &w->anomalies[i];
		ms__v1__anomaly_signal__init(&an[i]);
		pan[i] = &an[i];
		an[i].ifname = (char *)a->ifname;
		an[i].ifindex = a->ifindex;
		an[i].kind = (Ms__V1__AnomalyKind)a->kind;
		an[i].metric = (char *)a->metric;
		an[i].value = a->value;
		an[i].baseline = a->baseline;
		an[i].ts_ns = a->ts_ns;
	}
	m->n_false_sharing = nfs;
	m->false_sharing = pfs;
	m->n_remote_dram = nrd;
	m->remote_dram = prd;
	m->n_anomalies = nan;
	m->anomalies = pan;
	*ret_mem = mem;
	return 0;
}

int wire_encode_window(const struct wire_window *w, uint8_t **ret_buf, size_t *ret_len)
{
	int r = check_window(w);
	if (r < 0)
		return r;
	struct enc e;
	memset(&e, 0, sizeof(e));
	void *fmem = NULL, *smem = NULL;
	e.w = w;
	Ms__V1__Window m = MS__V1__WINDOW__INIT;
	Ms__V1__Rows rows = MS__V1__ROWS__INIT;
	Ms__V1__Counters cnt;
	if ((r = enc_count(&e, w)) < 0)
		goto out;
	m.agent_id = (char *)w->agent_id;
	m.seq = w->seq;
	m.start_ns = w->start_ns;
	m.end_ns = w->end_ns;
	m.mode = w->mode;
	m.budget_per_cpu = w->budget_per_cpu;
	for (uint32_t i = 0; i < w->nevents; i++) {
		ms__v1__event_info__init(&e.pe[i]);
		e.pe[i].name = (char *)w->events[i].name;
		e.pe[i].source = w->events[i].source ? MS__V1__EVENT_SOURCE__SOURCE_SW : MS__V1__EVENT_SOURCE__SOURCE_HW;
		e.ppe[i] = &e.pe[i];
	}
	m.n_events = w->nevents;
	m.events = e.ppe;
	enc_costs(&e, w);
	enc_rows(&e, w, &m);
	if ((r = wire_stacks_to_pb(w, &m, enc_func, &e, &smem)) < 0)
		goto out;
	m.n_funcs = e.nfn;
	m.n_modules = e.mods.n; /* frame functions may add modules */
	uint32_t n = w->nrows;
	rows.count = n;
	rows.n_flow_delta = col_len(e.col[0], n);
	rows.flow_delta = e.col[0];
	rows.n_func = col_len(e.col[1], n);
	rows.func = e.col[1];
	rows.n_pid = col_len(e.col[2], n);
	rows.pid = e.col[2];
	rows.n_event = col_len(e.col[3], n);
	rows.event = e.col[3];
	rows.n_attrs = col_len(e.col[4], n);
	rows.attrs = e.col[4];
	rows.n_numa = col_len(e.col[5], n);
	rows.numa = e.col[5];
	rows.n_stack = col_len(e.col[6], n);
	rows.stack = e.col[6];
	rows.n_object = col_len(e.col[7], n);
	rows.object = e.col[7];
	rows.n_samples = n;
	rows.samples = e.samples;
	rows.n_cost_delta = 0;
	for (uint32_t i = 0; i < n; i++)
		if (e.cost[i])
			rows.n_cost_delta = n;
	rows.cost_delta = e.cost;
	m.rows = &rows;
	wire_counters_to_pb(&w->c, &cnt);
	m.counters = &cnt;
	m.n_cpu_emitted = w->ncpu;
	m.cpu_emitted = w->cpu_emitted;
	if ((r = enc_findings(w, &m, &fmem)) < 0)
		goto out;
	size_t len = protobuf_c_message_get_packed_size(&m.base);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	protobuf_c_message_pack(&m.base, buf);
	*ret_buf = buf;
	*ret_len = len;
	r = 0;
out:
	free(fmem);
	free(smem);
	enc_release(&e);
	return r;
}
