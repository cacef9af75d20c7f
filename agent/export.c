/* export: see export.h. */
#include "export.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analyze.h"
#include "bqueue.h"
#include "falseshare.h"
#include "jsonw.h"
#include "stacks.h"
#include "log.h"
#include "metrics.h"
#include "symbolizer.h"
#include "window.h"

/* Cumulative run summary: bounded tables, the smallest entry is replaced when full. */
#define SUMMARY_MAX 4096

struct sum_flow {
	uint64_t id, samples;
	struct ms_flow_tuple t;
};

struct sum_func {
	uint64_t id, samples;
	char name[128];
	char module[128];
};

struct export {
	struct export_opts o;
	pthread_t thr;
	bool started;
	FILE *log;
	pthread_mutex_t mu;           /* guards the summary */
	struct sum_flow *flows;
	struct sum_func *funcs;
	uint32_t nflows, nfuncs;
	uint64_t total, unattributed;
};

int export_symbolize(struct symbolizer *sym, struct window *w)
{
	/* resolve every row; then merge rows with equal keys once ip is dropped. The dictionary
	 * grows by doubling: sized for one function per row it was a ~40 MB (mostly untouched)
	 * mapping per window at 100k flows, for a few dozen functions. */
	uint32_t fcap = w->nfuncs + 64;
	struct window_func *funcs = calloc(fcap, sizeof(*funcs));
	if (!funcs)
		return -ENOMEM;
	uint32_t nf = w->nfuncs; /* keep the functions named before (stack frames) */
	if (nf)
		memcpy(funcs, w->funcs, nf * sizeof(*funcs));
	for (uint32_t i = 0; i < w->nrows; i++) {
		struct window_row *r = &w->rows[i];
		struct sym_result sr;
		if (r->ip == 0 || symbolizer_resolve(sym, r->pid, r->ip, r->user_mode, &sr) < 0) {
			memset(&sr, 0, sizeof(sr));
			sr.func_id = 1; /* "[unknown]" */
			snprintf(sr.name, sizeof(sr.name), "[unknown]");
			snprintf(sr.module, sizeof(sr.module), "%s", r->user_mode ? "[user]" : "[kernel]");
		}
		r->func_id = sr.func_id ? sr.func_id : 1;
		r->ip = 0;
		uint32_t j;
		for (j = 0; j < nf; j++)
			if (funcs[j].func_id == r->func_id)
				break;
		if (j == nf && nf == fcap) {
			struct window_func *more = realloc(funcs, (size_t)fcap * 2 * sizeof(*funcs));
			if (!more) {
				free(funcs);
				return -ENOMEM;
			}
			funcs = more;
			fcap *= 2;
		}
		if (j == nf) {
			funcs[nf].func_id = r->func_id;
			snprintf(funcs[nf].name, sizeof(funcs[nf].name), "%s", sr.name);
			snprintf(funcs[nf].module, sizeof(funcs[nf].module), "%s", sr.module);
			nf++;
		}
	}
	/* merge: O(n^2) worst case over rows of one window would be too slow for big windows, so
	 * sort-free merge with a small open-addressing index */
	uint32_t cap = 16;
	while (cap < 2 * (w->nrows + 1))
		cap <<= 1;
	uint32_t *idx = malloc(cap * sizeof(*idx));
	if (!idx) {
		free(funcs);
		return -ENOMEM;
	}
	memset(idx, 0xff, cap * sizeof(*idx));
	uint32_t out = 0;
	for (uint32_t i = 0; i < w->nrows; i++) {
		struct window_row *r = &w->rows[i];
		uint64_t h = ms_mix64(r->flow_id ^ ms_mix64(r->func_id ^ ms_mix64(r->stack_id ^ r->object_id)) ^
				      ((uint64_t)r->event << 1 | (uint64_t)r->dir << 20 | (uint64_t)r->pid << 24 |
				       (uint64_t)(uint16_t)r->numa_node << 48));
		uint32_t p = (uint32_t)h & (cap - 1);
		for (;;) {
			if (idx[p] == UINT32_MAX) {
				idx[p] = out;
				if (out != i)
					w->rows[out] = *r;
				out++;
				break;
			}
			struct window_row *o = &w->rows[idx[p]];
			if (o->flow_id == r->flow_id && o->func_id == r->func_id && o->stack_id == r->stack_id &&
			    o->object_id == r->object_id && o->event == r->event && o->dir == r->dir &&
			    o->pid == r->pid && o->numa_node == r->numa_node && o->iclass == r->iclass &&
			    o->user_mode == r->user_mode) {
				o->samples += r->samples;
				o->norm_cost += r->norm_cost;
				break;
			}
			p = (p + 1) & (cap - 1);
		}
	}
	free(idx);
	/* Give back what merging freed: rows were sized for the window before the merge (up to
	 * ~200k x 64 bytes at 100k flows; ~25 % fewer after it). */
	if (out < w->nrows) {
		struct window_row *rows = realloc(w->rows, ((size_t)out + 1) * sizeof(*rows));
		if (rows)
			w->rows = rows;
	}
	w->nrows = out;
	free(w->funcs);
	w->funcs = funcs;
	w->nfuncs = nf;
	return 0;
}

static void write_tuple(struct jsonw *j, const struct ms_flow_tuple *t)
{
	char buf[160];
	window_format_tuple(t, buf, sizeof(buf));
	jsonw_key(j, "tuple");
	jsonw_string(j, buf);
	jsonw_key(j, "proto");
	jsonw_u64(j, t->proto);
	jsonw_key(j, "sport");
	jsonw_u64(j, t->sport);
	jsonw_key(j, "dport");
	jsonw_u64(j, t->dport);
	jsonw_key(j, "dir");
	jsonw_string(j, t->dir == MS_DIR_RX ? "rx" : t->dir == MS_DIR_TX ? "tx" : "none");
	jsonw_key(j, "ifindex");
	jsonw_u64(j, t->ifindex);
	jsonw_key(j, "netns");
	jsonw_u64(j, t->netns);
}

static void kv_u64(struct jsonw *j, const char *k, uint64_t v)
{
	jsonw_key(j, k);
	jsonw_u64(j, v);
}

static void offsets(struct jsonw *j, const char *k, uint64_t bits)
{
	jsonw_key(j, k);
	jsonw_begin_array(j);
	for (int o = 0; o < 64; o++)
		if (bits >> o & 1)
			jsonw_u64(j, (uint64_t)o);
	jsonw_end_array(j);
}

/* The memory analysis (analyze.h): event scales, data objects, rows moved onto objects and
 * memory nodes ([flow, func, event, pid, object, numa_node, samples, norm_cost]), NUMA
 * hotspots and contended cache lines. */
static void write_memory(struct jsonw *j, const struct window *w)
{
	jsonw_key(j, "event_scale");
	jsonw_begin_array(j);
	for (uint32_t i = 0; i < w->nevents; i++)
		jsonw_double(j, w->event_scale[i]);
	jsonw_end_array(j);
	jsonw_key(j, "mem");
	jsonw_begin_object(j);
	kv_u64(j, "addr_samples", w->mem.addr_samples);
	kv_u64(j, "objects_resolved", w->mem.objects_resolved);
	kv_u64(j, "rows_refined", w->mem.rows_refined);
	kv_u64(j, "numa_local", w->mem.numa_local);
	kv_u64(j, "numa_remote", w->mem.numa_remote);
	kv_u64(j, "numa_unknown", w->mem.numa_unknown);
	kv_u64(j, "fs_contended", w->mem.fs_contended);
	jsonw_end_object(j);
	jsonw_key(j, "objects");
	jsonw_begin_array(j);
	for (uint32_t i = 0; i < w->nobjects; i++) {
		jsonw_begin_object(j);
		kv_u64(j, "id", w->objects[i].object_id);
		kv_u64(j, "pid", w->objects[i].pid);
		kv_u64(j, "samples", w->objects[i].samples);
		jsonw_key(j, "name");
		jsonw_string(j, w->objects[i].name);
		jsonw_key(j, "module");
		jsonw_string(j, w->objects[i].module);
		jsonw_end_object(j);
	}
	jsonw_end_array(j);
	jsonw_key(j, "mem_rows");
	jsonw_begin_array(j);
	for (uint32_t i = 0; i < w->nrows; i++) {
		const struct window_row *r = &w->rows[i];
		if (!r->object_id && r->numa_node < 0)
			continue;
		jsonw_begin_array(j);
		jsonw_u64(j, r->flow_id);
		jsonw_u64(j, r->func_id);
		jsonw_u64(j, r->event);
		jsonw_u64(j, r->pid);
		jsonw_u64(j, r->object_id);
		jsonw_i64(j, r->numa_node);
		jsonw_u64(j, r->samples);
		jsonw_double(j, r->norm_cost);
		jsonw_end_array(j);
	}
	jsonw_end_array(j);
	jsonw_key(j, "remote_dram");
	jsonw_begin_array(j);
	for (uint32_t i = 0; i < w->nnuma; i++) {
		const struct window_numa *n = &w->numa[i];
		jsonw_begin_object(j);
		kv_u64(j, "flow", n->flow_id);
		kv_u64(j, "object", n->object_id);
		jsonw_key(j, "mem_node");
		jsonw_i64(j, n->mem_node);
		jsonw_key(j, "cpu_node");
		jsonw_i64(j, n->cpu_node);
		kv_u64(j, "ifindex", n->ifindex);
		kv_u64(j, "samples", n->samples);
		kv_u64(j, "events", n->events);
		jsonw_end_object(j);
	}
	jsonw_end_array(j);
	/* stacks: [{id, kernel:[func...], user:[func...]}] and [flow, func, stack, pid, samples] */
	jsonw_key(j, "stacks");
	jsonw_begin_array(j);
	for (uint32_t i = 0; i < w->nstacks; i++) {
		const struct window_stack *s = &w->stacks[i];
		jsonw_begin_object(j);
		kv_u64(j, "id", s->stack_id);
		jsonw_key(j, "kernel");
		jsonw_begin_array(j);
		for (uint32_t k = 0; k < s->nkernel; k++)
			jsonw_u64(j, s->func[k]);
		jsonw_end_array(j);
		jsonw_key(j, "user");
		jsonw_begin_array(j);
		for (uint32_t k = 0; k < s->nuser; k++)
			jsonw_u64(j, s->func[s->nkernel + k]);
		jsonw_end_array(j);
		jsonw_end_object(j);
	}
	jsonw_end_array(j);
	jsonw_key(j, "stack_rows");
	jsonw_begin_array(j);
	for (uint32_t i = 0; w->nstacks && i < w->nrows; i++) {
		const struct window_row *r = &w->rows[i];
		if (r->stack_id == WINDOW_NO_STACK)
			continue;
		jsonw_begin_array(j);
		jsonw_u64(j, r->flow_id);
		jsonw_u64(j, r->func_id);
		jsonw_u64(j, r->stack_id);
		jsonw_u64(j, r->pid);
		jsonw_u64(j, r->samples);
		jsonw_end_array(j);
	}
	jsonw_end_array(j);
	jsonw_key(j, "false_sharing");
	jsonw_begin_array(j);
	for (uint32_t i = 0; i < w->nfs; i++) {
		const struct window_fs_line *l = &w->fs[i];
		jsonw_begin_object(j);
		kv_u64(j, "line", l->line);
		kv_u64(j, "pid", l->pid);
		kv_u64(j, "object", l->object_id);
		jsonw_key(j, "class");
		jsonw_string(j, falseshare_class_name(l->cls));
		jsonw_key(j, "inferred");
		jsonw_bool(j, l->inferred);
		jsonw_key(j, "score");
		jsonw_double(j, l->score);
		offsets(j, "written", l->written);
		offsets(j, "accessed", l->accessed);
		kv_u64(j, "samples", l->samples);
		kv_u64(j, "hitm", l->hitm);
		kv_u64(j, "stores", l->stores);
		kv_u64(j, "loads", l->loads);
		jsonw_key(j, "tids");
		jsonw_begin_array(j);
		for (int k = 0; k < l->nthreads && k < WINDOW_FS_THREADS; k++)
			jsonw_u64(j, l->tids[k]);
		jsonw_end_array(j);
		jsonw_key(j, "cpus");
		jsonw_begin_array(j);
		for (int k = 0; k < l->ncpus && k < WINDOW_FS_THREADS; k++)
			jsonw_u64(j, l->cpus[k]);
		jsonw_end_array(j);
		jsonw_key(j, "funcs");
		jsonw_begin_array(j);
		for (int k = 0; k < WINDOW_FS_FUNCS; k++)
			if (l->func_id[k])
				jsonw_u64(j, l->func_id[k]);
		jsonw_end_array(j);
		jsonw_end_object(j);
	}
	jsonw_end_array(j);
}

int export_window_json(const struct window *w, const char *agent_id, char **ret, size_t *ret_len)
{
	struct jsonw *j;
	int r = jsonw_new((size_t)64 << 20, &j);
	if (r < 0)
		return r;
	jsonw_begin_object(j);
	jsonw_key(j, "agent_id");
	jsonw_string(j, agent_id);
	jsonw_key(j, "seq");
	jsonw_u64(j, w->seq);
	jsonw_key(j, "start_ns");
	jsonw_u64(j, w->start_ns);
	jsonw_key(j, "end_ns");
	jsonw_u64(j, w->end_ns);
	jsonw_key(j, "mode");
	jsonw_string(j, w->mode ? "diagnostic" : "sentinel");
	jsonw_key(j, "budget_per_cpu");
	jsonw_u64(j, w->budget_per_cpu);
	jsonw_key(j, "samples");
	jsonw_u64(j, window_samples(w));
	jsonw_key(j, "counters");
	jsonw_begin_object(j);
	static const char *const names[MS_CNT__MAX] = {
		"emitted", "budget", "gap", "ringfull", "unattributed", "attr_thread", "attr_packet",
		"idle", "filtered", "ctx_rx", "ctx_tx", "ctx_sock", "ctx_parse_fail", "stack_fail",
	};
	for (int i = 0; i < MS_CNT__MAX; i++) {
		jsonw_key(j, names[i]);
		jsonw_u64(j, w->c.bpf[i]);
	}
	jsonw_key(j, "processed");
	jsonw_u64(j, w->c.processed);
	jsonw_key(j, "lost");
	jsonw_u64(j, w->c.lost);
	jsonw_key(j, "agg_degraded");
	jsonw_u64(j, w->c.agg_degraded);
	jsonw_key(j, "agg_dropped");
	jsonw_u64(j, w->c.agg_dropped);
	jsonw_key(j, "addr_dropped");
	jsonw_u64(j, w->c.addr_dropped);
	jsonw_end_object(j);
	jsonw_key(j, "emitted_per_cpu");
	jsonw_begin_array(j);
	for (uint32_t i = 0; i < w->ncpu; i++)
		jsonw_u64(j, w->cpu_emitted[i]);
	jsonw_end_array(j);
	jsonw_key(j, "events");
	jsonw_begin_array(j);
	for (uint32_t i = 0; i < w->nevents; i++)
		jsonw_string(j, w->event_names[i]);
	jsonw_end_array(j);
	jsonw_key(j, "flows");
	jsonw_begin_array(j);
	for (uint32_t i = 0; i < w->nflows; i++) {
		jsonw_begin_object(j);
		jsonw_key(j, "id");
		jsonw_u64(j, w->flows[i].flow_id);
		write_tuple(j, &w->flows[i].tuple);
		jsonw_end_object(j);
	}
	jsonw_end_array(j);
	jsonw_key(j, "funcs");
	jsonw_begin_array(j);
	for (uint32_t i = 0; i < w->nfuncs; i++) {
		jsonw_begin_object(j);
		jsonw_key(j, "id");
		jsonw_u64(j, w->funcs[i].func_id);
		jsonw_key(j, "name");
		jsonw_string(j, w->funcs[i].name);
		jsonw_key(j, "module");
		jsonw_string(j, w->funcs[i].module);
		jsonw_end_object(j);
	}
	jsonw_end_array(j);
	write_memory(j, w);
	jsonw_key(j, "rows");
	jsonw_begin_array(j);
	for (uint32_t i = 0; i < w->nrows; i++) {
		const struct window_row *r = &w->rows[i];
		jsonw_begin_array(j); /* compact: [flow, func, event, dir, pid, samples, norm_cost] */
		jsonw_u64(j, r->flow_id);
		jsonw_u64(j, r->func_id);
		jsonw_u64(j, r->event);
		jsonw_u64(j, r->dir);
		jsonw_u64(j, r->pid);
		jsonw_u64(j, r->samples);
		jsonw_double(j, r->norm_cost);
		jsonw_end_array(j);
	}
	jsonw_end_array(j);
	jsonw_end_object(j);
	jsonw_newline(j);
	r = jsonw_take(j, ret, ret_len);
	jsonw_free(j);
	return r;
}

static void summary_add(struct export *e, const struct window *w)
{
	pthread_mutex_lock(&e->mu);
	for (uint32_t i = 0; i < w->nrows; i++) {
		const struct window_row *r = &w->rows[i];
		e->total += r->samples;
		if (!r->flow_id) {
			e->unattributed += r->samples;
		} else {
			uint32_t j, min = 0;
			for (j = 0; j < e->nflows && e->flows[j].id != r->flow_id; j++)
				if (e->flows[j].samples < e->flows[min].samples)
					min = j;
			if (j == e->nflows) {
				const struct window_flow *wf = window_find_flow(w, r->flow_id);
				if (e->nflows < SUMMARY_MAX)
					e->nflows++;
				else
					j = min;
				e->flows[j].id = r->flow_id;
				e->flows[j].samples = 0;
				if (wf)
					e->flows[j].t = wf->tuple;
			}
			e->flows[j].samples += r->samples;
		}
		uint32_t j, min = 0;
		for (j = 0; j < e->nfuncs && e->funcs[j].id != r->func_id; j++)
			if (e->funcs[j].samples < e->funcs[min].samples)
				min = j;
		if (j == e->nfuncs) {
			const struct window_func *wf = window_find_func(w, r->func_id);
			if (e->nfuncs < SUMMARY_MAX)
				e->nfuncs++;
			else
				j = min;
			e->funcs[j].id = r->func_id;
			e->funcs[j].samples = 0;
			snprintf(e->funcs[j].name, sizeof(e->funcs[j].name), "%s", wf ? wf->name : "[unknown]");
			snprintf(e->funcs[j].module, sizeof(e->funcs[j].module), "%s", wf ? wf->module : "");
		}
		e->funcs[j].samples += r->samples;
	}
	pthread_mutex_unlock(&e->mu);
}

static void *worker(void *arg)
{
	struct export *e = arg;
	void *item;
	for (;;) {
		int r = bqueue_pop(e->o.in, &item, -1);
		if (r == -EPIPE)
			break;
		if (r < 0)
			continue;
		struct window *w = item;
		if (e->o.closed_bytes) /* the same size the loop added: w is untouched until here */
			__atomic_sub_fetch(e->o.closed_bytes, (uint64_t)window_bytes(w), __ATOMIC_RELAXED);
		if (e->o.stacks && stacks_window(e->o.stacks, w) < 0)
			ms_debug("EXPORT-STACKS", "window %" PRIu64 ": stacks incomplete", w->seq);
		if (export_symbolize(e->o.sym, w) < 0)
			ms_debug("EXPORT-SYMBOLIZE", "window %" PRIu64 ": symbolization failed", w->seq);
		if (e->o.analyze && analyze_window(e->o.analyze, w) < 0)
			ms_debug("EXPORT-ANALYZE", "window %" PRIu64 ": memory analysis incomplete", w->seq);
		/* encode time: the JSON line and the forward hook (uplink protobuf encoding + spool) */
		struct timespec t0, t1, t2, t3;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (e->log) {
			char *buf;
			size_t len;
			if (export_window_json(w, e->o.agent_id, &buf, &len) == 0) {
				fwrite(buf, 1, len, e->log);
				fflush(e->log);
				free(buf);
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (e->o.summary)
			summary_add(e, w);
		if (e->o.metrics)
			metrics_on_window(e->o.metrics, w);
		if (e->o.metrics && e->o.analyze && analyze_publish(e->o.analyze, w, e->o.metrics) < 0)
			ms_debug("EXPORT-ANALYZE", "window %" PRIu64 ": detector series not published", w->seq);
		clock_gettime(CLOCK_MONOTONIC, &t2);
		bool taken = e->o.forward && e->o.forward(e->o.forward_arg, w) == 0;
		clock_gettime(CLOCK_MONOTONIC, &t3);
		if (e->o.metrics && (e->log || e->o.forward))
			metrics_observe_encode(e->o.metrics, (double)(t1.tv_sec - t0.tv_sec + t3.tv_sec - t2.tv_sec) +
							     (double)(t1.tv_nsec - t0.tv_nsec + t3.tv_nsec - t2.tv_nsec) / 1e9);
		if (taken)
			continue;
		window_free(w);
	}
	return NULL;
}

int export_start(const struct export_opts *opts, struct export **ret)
{
	struct export *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->o = *opts;
	pthread_mutex_init(&e->mu, NULL);
	e->flows = calloc(SUMMARY_MAX, sizeof(*e->flows));
	e->funcs = calloc(SUMMARY_MAX, sizeof(*e->funcs));
	if (!e->flows || !e->funcs) {
		export_free(e);
		return -ENOMEM;
	}
	if (opts->window_log && opts->window_log[0]) {
		e->log = fopen(opts->window_log, "ae");
		if (!e->log) {
			int r = -errno;
			export_free(e);
			return r;
		}
	}
	int r = pthread_create(&e->thr, NULL, worker, e);
	if (r) {
		export_free(e);
		return -r;
	}
	e->started = true;
	*ret = e;
	return 0;
}

void export_stop(struct export *e)
{
	if (!e || !e->started)
		return;
	bqueue_close(e->o.in);
	pthread_join(e->thr, NULL);
	e->started = false;
}

static int cmp_flow(const void *a, const void *b)
{
	const struct sum_flow *x = a, *y = b;
	return x->samples < y->samples ? 1 : x->samples > y->samples ? -1 : 0;
}

static int cmp_func(const void *a, const void *b)
{
	const struct sum_func *x = a, *y = b;
	return x->samples < y->samples ? 1 : x->samples > y->samples ? -1 : 0;
}

void export_print_summary(struct export *e, FILE *out, int k)
{
	pthread_mutex_lock(&e->mu);
	qsort(e->flows, e->nflows, sizeof(*e->flows), cmp_flow);
	qsort(e->funcs, e->nfuncs, sizeof(*e->funcs), cmp_func);
	fprintf(out, "samples: %" PRIu64 " (unattributed %" PRIu64 ")\n", e->total, e->unattributed);
	fprintf(out, "top flows:\n");
	for (uint32_t i = 0; i < e->nflows && (int)i < k; i++) {
		char t[160];
		window_format_tuple(&e->flows[i].t, t, sizeof(t));
		fprintf(out, "  %8" PRIu64 "  %5.1f%%  %016" PRIx64 "  %s\n", e->flows[i].samples,
			e->total ? 100.0 * (double)e->flows[i].samples / (double)e->total : 0.0, e->flows[i].id, t);
	}
	fprintf(out, "top functions:\n");
	for (uint32_t i = 0; i < e->nfuncs && (int)i < k; i++)
		fprintf(out, "  %8" PRIu64 "  %5.1f%%  %s [%s]\n", e->funcs[i].samples,
			e->total ? 100.0 * (double)e->funcs[i].samples / (double)e->total : 0.0, e->funcs[i].name,
			e->funcs[i].module);
	pthread_mutex_unlock(&e->mu);
}

uint64_t export_samples_total(struct export *e)
{
	pthread_mutex_lock(&e->mu);
	uint64_t n = e->total;
	pthread_mutex_unlock(&e->mu);
	return n;
}

struct export *export_free(struct export *e)
{
	if (!e)
		return NULL;
	export_stop(e);
	if (e->log)
		fclose(e->log);
	free(e->flows);
	free(e->funcs);
	pthread_mutex_destroy(&e->mu);
	free(e);
	return NULL;
}
