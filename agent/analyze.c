/* analyze: see analyze.h.
 * Cost per window: one resolve_data per address sample (cached tables, no file read once warm),
 * one numa_resolve (a cache probe per sample plus one move_pages call per process and 1024
 * missed pages), one hash probe per sample to refine rows, and the detector's O(samples). */
#include "analyze.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "falseshare.h"
#include "metrics.h"
#include "numa.h"
#include "symbolizer.h"
#include "window.h"

struct analyze {
	struct analyze_opts o;
	struct falseshare *fs;
	struct numa *numa;
	struct fs_report *reports;   /* max_fs_report */
	struct numa_hotspot *hot;    /* numa_max_hotspots */
	pthread_mutex_t mu;          /* guards st */
	struct analyze_stats st;
	struct symbolizer_stats prev_sym; /* for per-window deltas (owner thread only) */
	uint64_t last_sweep_ms;      /* process-exit cleanup, every ANALYZE_SWEEP_MS */
};

#define ANALYZE_SWEEP_MS 10000

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Exited processes leave the symbolizer's caches and registrations and the page-node cache. */
static void sweep_exited(struct analyze *an)
{
	uint64_t now = mono_ms();
	if (an->o.no_exit_sweep || now - an->last_sweep_ms < ANALYZE_SWEEP_MS)
		return;
	an->last_sweep_ms = now;
	uint32_t gone[1024];
	size_t n = symbolizer_sweep_exited(an->o.sym, gone, sizeof(gone) / sizeof(gone[0]));
	numa_forget_pids(an->numa, gone, n < sizeof(gone) / sizeof(gone[0]) ? n : sizeof(gone) / sizeof(gone[0]));
}

int analyze_new(const struct analyze_opts *opts, struct analyze **ret)
{
	struct analyze *an = calloc(1, sizeof(*an));
	if (!an)
		return -ENOMEM;
	an->o = *opts;
	if (!an->o.max_objects)
		an->o.max_objects = 1024;
	if (!an->o.max_fs_report)
		an->o.max_fs_report = 64;
	if (!an->o.max_numa)
		an->o.max_numa = 256;
	pthread_mutex_init(&an->mu, NULL);
	struct falseshare_opts fo = { .max_lines = opts->max_fs_lines, .max_report = an->o.max_fs_report };
	struct numa_opts no = { .ops = opts->numa_ops, .ctx = opts->numa_ctx };
	int r = falseshare_new(&fo, &an->fs);
	if (r == 0)
		r = numa_new(&no, &an->numa);
	if (r == 0) {
		an->reports = calloc(an->o.max_fs_report, sizeof(*an->reports));
		an->hot = calloc(numa_max_hotspots(an->numa), sizeof(*an->hot));
		if (!an->reports || !an->hot)
			r = -ENOMEM;
	}
	if (r < 0) {
		analyze_free(an);
		return r;
	}
	*ret = an;
	return 0;
}

struct analyze *analyze_free(struct analyze *an)
{
	if (!an)
		return NULL;
	falseshare_free(an->fs);
	numa_free(an->numa);
	free(an->reports);
	free(an->hot);
	pthread_mutex_destroy(&an->mu);
	free(an);
	return NULL;
}

void analyze_stats(struct analyze *an, struct analyze_stats *ret)
{
	pthread_mutex_lock(&an->mu);
	*ret = an->st;
	pthread_mutex_unlock(&an->mu);
}

/* ---- small open-addressing maps keyed by u64 (0 is never a key: callers map it away) ---- */

struct u64map {
	uint32_t cap;
	uint64_t *key;
	uint32_t *val;
};

static int map_init(struct u64map *m, uint32_t n)
{
	m->cap = 16;
	while (m->cap < 2 * n + 2)
		m->cap <<= 1;
	m->key = calloc(m->cap, sizeof(*m->key));
	m->val = calloc(m->cap, sizeof(*m->val));
	return m->key && m->val ? 0 : -ENOMEM;
}

static void map_free(struct u64map *m)
{
	free(m->key);
	free(m->val);
}

/* Slot of key: found (*ret_new = 0) or empty (*ret_new = 1, key stored). */
static uint32_t map_slot(struct u64map *m, uint64_t key, int *ret_new)
{
	uint32_t i = (uint32_t)ms_mix64(key) & (m->cap - 1);
	while (m->key[i] && m->key[i] != key)
		i = (i + 1) & (m->cap - 1);
	*ret_new = !m->key[i];
	m->key[i] = key;
	return i;
}

/* ---- data objects ---- */

/* The window dictionary index of an object, added when new and there is room; -1 otherwise. */
static int object_add(struct analyze *an, struct window *w, const struct sym_result *sr, uint32_t pid,
		      struct u64map *idx)
{
	int fresh;
	uint32_t slot = map_slot(idx, sr->func_id ? sr->func_id : 1, &fresh);
	if (!fresh)
		return (int)idx->val[slot] - 1;
	if (w->nobjects >= an->o.max_objects) {
		idx->val[slot] = 0; /* remembered as "no room" */
		return -1;
	}
	struct window_object *o = &w->objects[w->nobjects];
	memset(o, 0, sizeof(*o));
	o->object_id = sr->func_id;
	o->pid = pid;
	memcpy(o->name, sr->name, sizeof(o->name));
	memcpy(o->module, sr->module, sizeof(o->module));
	idx->val[slot] = ++w->nobjects;
	return (int)w->nobjects - 1;
}

/* ---- rows ---- */

static uint64_t row_hash(const struct window_row *r)
{
	return ms_mix64(r->flow_id ^ ms_mix64(r->func_id ^ ms_mix64(r->stack_id ^ r->object_id)) ^
			((uint64_t)r->event << 1 | (uint64_t)r->dir << 20 | (uint64_t)r->pid << 24 |
			 (uint64_t)(uint16_t)r->numa_node << 48));
}

static int row_eq(const struct window_row *a, const struct window_row *b)
{
	return a->flow_id == b->flow_id && a->func_id == b->func_id && a->stack_id == b->stack_id &&
	       a->object_id == b->object_id && a->event == b->event && a->dir == b->dir && a->pid == b->pid &&
	       a->numa_node == b->numa_node && a->iclass == b->iclass && a->user_mode == b->user_mode;
}

struct rowidx {
	uint32_t cap;
	uint32_t *slot; /* row index + 1, 0 empty */
};

static uint32_t *rowidx_find(struct rowidx *x, const struct window *w, const struct window_row *k)
{
	uint32_t i = (uint32_t)row_hash(k) & (x->cap - 1);
	while (x->slot[i] && !row_eq(&w->rows[x->slot[i] - 1], k))
		i = (i + 1) & (x->cap - 1);
	return &x->slot[i];
}

/* The function id export_symbolize gave the row this sample was aggregated into. */
static uint64_t func_of(struct analyze *an, const struct window_addr *a)
{
	struct sym_result sr;
	uint32_t pid = a->user_mode ? a->pid : 0;
	if (!a->ip || symbolizer_resolve(an->o.sym, pid, a->ip, a->user_mode, &sr) < 0 || !sr.func_id)
		return 1;
	return sr.func_id;
}

/* Moves each sample from its row (object 0, node -1) onto the row with its object and memory
 * node, carrying the row's average cost per sample. Rows left empty are removed. */
static int refine_rows(struct analyze *an, struct window *w, const uint64_t *obj, const int16_t *mem,
		       struct analyze_stats *st)
{
	uint32_t cap = 16;
	while (cap < 2 * (w->nrows + w->naddrs) + 2)
		cap <<= 1;
	struct rowidx x = { .cap = cap, .slot = calloc(cap, sizeof(uint32_t)) };
	struct window_row *rows = realloc(w->rows, ((size_t)w->nrows + w->naddrs + 1) * sizeof(*rows));
	if (!x.slot || !rows) {
		free(x.slot);
		if (rows)
			w->rows = rows;
		return -ENOMEM;
	}
	w->rows = rows;
	for (uint32_t i = 0; i < w->nrows; i++) {
		uint32_t *s = rowidx_find(&x, w, &w->rows[i]);
		if (!*s)
			*s = i + 1;
	}
	for (uint32_t i = 0; i < w->naddrs; i++) {
		const struct window_addr *a = &w->addrs[i];
		if (!obj[i] && mem[i] < 0)
			continue; /* nothing to add: the sample stays where it is */
		struct window_row k = { .flow_id = a->flow_id, .func_id = func_of(an, a), .stack_id = a->stack_id,
					.pid = a->user_mode ? a->pid : 0, .event = a->event, .numa_node = -1,
					.dir = a->dir, .iclass = a->iclass, .user_mode = a->user_mode };
		uint32_t *from = rowidx_find(&x, w, &k);
		if (!*from || w->rows[*from - 1].samples == 0) {
			st->rows_unmatched++; /* its row was coarsened (table full) or merged away */
			continue;
		}
		struct window_row *src = &w->rows[*from - 1];
		double share = src->norm_cost / (double)src->samples;
		k.object_id = obj[i];
		k.numa_node = mem[i];
		uint32_t *to = rowidx_find(&x, w, &k);
		if (!*to) {
			w->rows[w->nrows] = k;
			w->rows[w->nrows].samples = 0;
			w->rows[w->nrows].norm_cost = 0;
			*to = ++w->nrows;
			src = &w->rows[*from - 1];
		}
		struct window_row *dst = &w->rows[*to - 1];
		src->samples--;
		src->norm_cost -= share;
		if (src->samples == 0)
			src->norm_cost = 0;
		dst->samples++;
		dst->norm_cost += share;
		st->rows_refined++;
	}
	free(x.slot);
	uint32_t out = 0;
	for (uint32_t i = 0; i < w->nrows; i++)
		if (w->rows[i].samples)
			w->rows[out++] = w->rows[i];
	w->nrows = out;
	return 0;
}

/* ---- functions of contended lines join the window dictionary ---- */

static uint64_t func_add(struct analyze *an, struct window *w, uint32_t pid, uint64_t ip)
{
	struct sym_result sr;
	bool user = ip < 0x800000000000ull;
	if (!ip || symbolizer_resolve(an->o.sym, user ? pid : 0, ip, user, &sr) < 0 || !sr.func_id)
		return 0;
	if (window_find_func(w, sr.func_id))
		return sr.func_id;
	struct window_func *f = realloc(w->funcs, ((size_t)w->nfuncs + 1) * sizeof(*f));
	if (!f)
		return sr.func_id;
	w->funcs = f;
	f = &w->funcs[w->nfuncs++];
	memset(f, 0, sizeof(*f));
	f->func_id = sr.func_id;
	memcpy(f->name, sr.name, sizeof(f->name));
	memcpy(f->module, sr.module, sizeof(f->module));
	return sr.func_id;
}

static int run_falseshare(struct analyze *an, struct window *w, const uint64_t *obj, struct analyze_stats *st)
{
	uint32_t n = 0;
	struct fs_sample *fss = malloc(((size_t)w->naddrs + 1) * sizeof(*fss));
	if (!fss)
		return -ENOMEM;
	for (uint32_t i = 0; i < w->naddrs; i++) {
		const struct window_addr *a = &w->addrs[i];
		if (a->access == EVENTS_ACC_NONE)
			continue;
		fss[n++] = (struct fs_sample){ .addr = a->addr, .ip = a->ip, .period = a->period, .pid = a->pid,
					       .tid = a->tid, .cpu = a->cpu, .access = a->access };
	}
	struct fs_stats fst = { 0 };
	int nr = n ? falseshare_analyze(an->fs, fss, n, w->end_ns > w->start_ns ? w->end_ns - w->start_ns : 0,
					an->reports, &fst)
		   : 0;
	free(fss);
	w->mem.fs_contended = fst.contended;
	w->mem.fs_lines_dropped = fst.lines_dropped;
	st->fs_lines_dropped += fst.lines_dropped;
	if (nr <= 0)
		return 0;
	w->fs = calloc((size_t)nr, sizeof(*w->fs));
	if (!w->fs)
		return -ENOMEM;
	for (int i = 0; i < nr; i++) {
		const struct fs_report *r = &an->reports[i];
		struct window_fs_line *l = &w->fs[i];
		l->line = r->line;
		l->pid = r->pid;
		l->cls = r->cls;
		l->inferred = r->inferred;
		l->nthreads = r->nthreads;
		l->ncpus = r->ncpus;
		l->written = r->written;
		l->accessed = r->accessed;
		l->samples = r->samples;
		l->loads = r->loads;
		l->stores = r->stores;
		l->hitm = r->hitm;
		l->score = r->score;
		memcpy(l->tids, r->tids, sizeof(l->tids));
		memcpy(l->cpus, r->cpus, sizeof(l->cpus));
		/* the line's object: the object of one of its sampled addresses */
		for (uint32_t k = 0; k < w->naddrs; k++)
			if (w->addrs[k].addr == r->sample_addr && w->addrs[k].pid == r->pid) {
				l->object_id = obj[k];
				break;
			}
		for (int k = 0; k < WINDOW_FS_FUNCS && k < FS_TOP_IPS; k++) {
			l->func_id[k] = r->top_ip[k] ? func_add(an, w, r->pid, r->top_ip[k]) : 0;
			l->func_samples[k] = l->func_id[k] ? r->top_ip_samples[k] : 0;
		}
	}
	w->nfs = (uint32_t)nr;
	st->fs_lines += (uint64_t)nr;
	return 0;
}

static int run_numa(struct analyze *an, struct window *w, const uint64_t *obj, int16_t *mem,
		    struct analyze_stats *st)
{
	struct numa_sample *ns = malloc(((size_t)w->naddrs + 1) * sizeof(*ns));
	struct u64map ifx = { 0 };
	int r = ns ? map_init(&ifx, w->nflows) : -ENOMEM;
	if (r < 0) {
		free(ns);
		map_free(&ifx);
		return r;
	}
	int fresh;
	for (uint32_t i = 0; i < w->nflows; i++)
		ifx.val[map_slot(&ifx, w->flows[i].flow_id, &fresh)] = w->flows[i].tuple.ifindex;
	for (uint32_t i = 0; i < w->naddrs; i++) {
		const struct window_addr *a = &w->addrs[i];
		uint32_t ifindex = 0;
		if (a->flow_id) {
			uint32_t s = map_slot(&ifx, a->flow_id, &fresh);
			ifindex = fresh ? 0 : ifx.val[s];
			if (fresh)
				ifx.key[s] = 0; /* not a flow of the dictionary: leave no trace */
		}
		ns[i] = (struct numa_sample){ .addr = a->addr, .flow_id = a->flow_id, .object_id = obj[i],
					      .period = a->period, .pid = a->pid, .cpu = a->cpu, .ifindex = ifindex };
	}
	uint64_t now_ms = mono_ms();
	struct numa_stats nst = { 0 };
	int nh = numa_resolve(an->numa, ns, w->naddrs, now_ms, mem, NULL, an->hot, &nst);
	free(ns);
	map_free(&ifx);
	if (nh < 0)
		return nh;
	w->mem.numa_local = nst.local;
	w->mem.numa_remote = nst.remote;
	w->mem.numa_unknown = nst.unknown;
	st->numa_local += nst.local;
	st->numa_remote += nst.remote;
	st->numa_unknown += nst.unknown;
	uint32_t keep = (uint32_t)nh < an->o.max_numa ? (uint32_t)nh : an->o.max_numa;
	if (!keep)
		return 0;
	w->numa = calloc(keep, sizeof(*w->numa));
	if (!w->numa)
		return -ENOMEM;
	for (uint32_t i = 0; i < keep; i++)
		w->numa[i] = (struct window_numa){ .flow_id = an->hot[i].flow_id, .object_id = an->hot[i].object_id,
						   .mem_node = an->hot[i].mem_node, .cpu_node = an->hot[i].cpu_node,
						   .ifindex = an->hot[i].ifindex, .samples = an->hot[i].samples,
						   .events = an->hot[i].events };
	w->nnuma = keep;
	return 0;
}

int analyze_window(struct analyze *an, struct window *w)
{
	struct analyze_stats st = { 0 };
	st.windows = 1;
	int r = 0;
	sweep_exited(an);
	if (!w->naddrs)
		goto out;
	uint64_t *obj = calloc(w->naddrs, sizeof(*obj));
	int16_t *mem = calloc(w->naddrs, sizeof(*mem));
	struct u64map oidx = { 0 };
	w->objects = calloc(an->o.max_objects, sizeof(*w->objects));
	if (!obj || !mem || !w->objects || map_init(&oidx, an->o.max_objects) < 0) {
		r = -ENOMEM;
		goto done;
	}
	st.addr_samples = w->naddrs;
	for (uint32_t i = 0; i < w->naddrs; i++) {
		const struct window_addr *a = &w->addrs[i];
		struct sym_result sr;
		if (symbolizer_resolve_data(an->o.sym, a->pid, a->addr, &sr) < 0 || !strcmp(sr.name, "[unknown]"))
			continue;
		int k = object_add(an, w, &sr, a->pid, &oidx);
		if (k < 0) {
			st.objects_overflow++;
			continue;
		}
		obj[i] = sr.func_id;
		w->objects[k].samples++;
		st.objects_named += sr.resolved;
	}
	w->mem.objects_resolved = st.objects_named;
	if ((r = run_numa(an, w, obj, mem, &st)) < 0)
		goto done;
	if ((r = run_falseshare(an, w, obj, &st)) < 0)
		goto done;
	r = refine_rows(an, w, obj, mem, &st);
	w->mem.rows_refined = st.rows_refined;
done:
	map_free(&oidx);
	free(obj);
	free(mem);
out:
	w->mem.addr_samples = st.addr_samples;
	free(w->addrs);
	w->addrs = NULL;
	w->naddrs = 0;
	pthread_mutex_lock(&an->mu);
	an->st.windows += st.windows;
	an->st.addr_samples += st.addr_samples;
	an->st.objects_named += st.objects_named;
	an->st.objects_overflow += st.objects_overflow;
	an->st.rows_refined += st.rows_refined;
	an->st.rows_unmatched += st.rows_unmatched;
	an->st.numa_local += st.numa_local;
	an->st.numa_remote += st.numa_remote;
	an->st.numa_unknown += st.numa_unknown;
	an->st.fs_lines += st.fs_lines;
	an->st.fs_lines_dropped += st.fs_lines_dropped;
	pthread_mutex_unlock(&an->mu);
	return r;
}

/* ---- /metrics ---- */

#define PUBLISH_TOP 20

struct numa_agg {
	uint64_t flow;
	int16_t node;
	uint32_t ifindex;
	double per_sec;
};

static int publish_detectors(const struct window *w, struct metrics *m)
{
	double secs = w->end_ns > w->start_ns ? (double)(w->end_ns - w->start_ns) / 1e9 : 1.0;
	struct metrics_series s[PUBLISH_TOP];
	char line[PUBLISH_TOP][24], pid[PUBLISH_TOP][12], map[PUBLISH_TOP][128];
	uint32_t n = 0;
	for (uint32_t i = 0; i < w->nfs && n < PUBLISH_TOP; i++, n++) {
		const struct window_fs_line *l = &w->fs[i]; /* highest score first */
		snprintf(line[n], sizeof(line[n]), "0x%llx", (unsigned long long)l->line);
		snprintf(pid[n], sizeof(pid[n]), "%u", l->pid);
		snprintf(map[n], sizeof(map[n]), "[unknown]");
		for (uint32_t k = 0; l->object_id && k < w->nobjects; k++)
			if (w->objects[k].object_id == l->object_id) {
				snprintf(map[n], sizeof(map[n]), "%.60s:%.60s", w->objects[k].module, w->objects[k].name);
				break;
			}
		s[n] = (struct metrics_series){ .labels = { { "line", line[n] }, { "mapping", map[n] }, { "pid", pid[n] },
							    { "class", falseshare_class_name(l->cls) } },
						.nlabels = 4, .value = l->score };
	}
	int r = metrics_publish_family(m, "ms_false_sharing_score",
				       "Contended cache lines of the last window (top 20): estimated cross-core line transfers per second (docs/ANALYZERS.md).",
				       s, n);
	/* remote accesses per (flow, memory node), summed over objects and CPU nodes */
	struct numa_agg agg[PUBLISH_TOP];
	uint32_t na = 0;
	for (uint32_t i = 0; i < w->nnuma; i++) {
		const struct window_numa *h = &w->numa[i];
		if (h->mem_node < 0 || h->cpu_node < 0 || h->mem_node == h->cpu_node)
			continue;
		uint32_t k = 0;
		while (k < na && !(agg[k].flow == h->flow_id && agg[k].node == h->mem_node))
			k++;
		if (k == na) {
			if (na == PUBLISH_TOP)
				continue; /* hotspots come heaviest first: the top 20 keys are already in */
			agg[na++] = (struct numa_agg){ .flow = h->flow_id, .node = h->mem_node, .ifindex = h->ifindex };
		}
		agg[k].per_sec += (double)h->events / secs;
	}
	char flow[PUBLISH_TOP][20], node[PUBLISH_TOP][8], ifx[PUBLISH_TOP][12];
	for (uint32_t i = 0; i < na; i++) {
		snprintf(flow[i], sizeof(flow[i]), "%016llx", (unsigned long long)agg[i].flow);
		snprintf(node[i], sizeof(node[i]), "%d", agg[i].node);
		snprintf(ifx[i], sizeof(ifx[i]), "%u", agg[i].ifindex);
		s[i] = (struct metrics_series){ .labels = { { "flow", flow[i] }, { "numa", node[i] }, { "ifindex", ifx[i] } },
						.nlabels = 3, .value = agg[i].per_sec };
	}
	int r2 = metrics_publish_family(m, "ms_remote_dram_hotspot",
					"Sampled accesses per second to memory on a remote NUMA node in the last window, by flow and memory node (top 20).",
					s, na);
	struct metrics_series es[WINDOW_MAX_EVENTS];
	uint32_t ne = w->nevents < WINDOW_MAX_EVENTS ? w->nevents : WINDOW_MAX_EVENTS;
	for (uint32_t i = 0; i < ne; i++)
		es[i] = (struct metrics_series){ .labels = { { "event", w->event_names[i] } }, .nlabels = 1,
						 .value = w->event_scale[i] };
	int r3 = metrics_publish_family(m, "ms_pmu_scale",
					"Multiplexing scale applied to norm_cost in the last window (agent rotation x kernel multiplexing; 1 = none, 0 = did not run).",
					es, ne);
	return r < 0 ? r : r2 < 0 ? r2 : r3;
}

int analyze_publish(struct analyze *an, const struct window *w, struct metrics *m)
{
	int r = publish_detectors(w, m);
	static const char *const outcome[] = { "analysed", "dropped", "object", "numa_local", "numa_remote",
					       "numa_unknown" };
	double v[] = { (double)w->mem.addr_samples, (double)w->c.addr_dropped, (double)w->mem.objects_resolved,
		       (double)w->mem.numa_local, (double)w->mem.numa_remote, (double)w->mem.numa_unknown };
	struct metrics_series s[6];
	for (int i = 0; i < 6; i++)
		s[i] = (struct metrics_series){ .labels = { { "outcome", outcome[i] } }, .nlabels = 1, .value = v[i] };
	int r2 = metrics_publish_family(m, "ms_window_addr_samples",
					"Address samples of the last window: analysed, dropped past the buffer, in a named object, by NUMA locality.",
					s, 6);
	struct symbolizer_stats ss;
	symbolizer_stats(an->o.sym, &ss);
	static const char *const result[] = { "hit", "miss", "unresolved" };
	double d[] = { (double)(ss.hits - an->prev_sym.hits), (double)(ss.misses - an->prev_sym.misses),
		       (double)(ss.unresolved - an->prev_sym.unresolved) };
	an->prev_sym = ss;
	for (int i = 0; i < 3; i++)
		s[i] = (struct metrics_series){ .labels = { { "result", result[i] } }, .nlabels = 1, .value = d[i] };
	int r3 = metrics_publish_family(m, "ms_window_symbolizer_lookups",
					"Symbolizer lookups of the last window: served from cache (hit), reading a file (miss), unresolved.",
					s, 3);
	return r < 0 ? r : r2 < 0 ? r2 : r3;
}
