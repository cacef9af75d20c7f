/* wintop: see wintop.h. */
#include "wintop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "window.h"

enum view { BY_FLOW, BY_FUNC, BY_TRIPLE };

struct acc {
	uint64_t flow, func;
	uint32_t event;
	uint32_t first;   /* first row of the key (tuple, iclass) */
	uint64_t samples;
	double cost;
	bool used;
};

static bool is_flow(uint64_t id)
{
	return id != 0 && id != WINDOW_FLOW_OVERFLOW;
}

/* Groups the rows by the view's key into a compact array (caller frees): an index of u32
 * (2 x rows slots, 4 bytes each) points into the array, which holds only the distinct keys,
 * in order of first appearance (the sort that follows breaks ties, so the output order does not
 * depend on it). Before, the table itself was 2 x rows x 48 bytes, cleared per window and per
 * view: 24 MiB at 100k flows and a third of the agent's CPU. */
static int group(const struct window *w, enum view v, struct acc **ret, uint32_t *ret_n)
{
	uint32_t cap = 16;
	while (cap < 2 * (w->nrows + 1))
		cap <<= 1;
	uint32_t *idx = malloc((size_t)cap * sizeof(*idx));
	struct acc *t = malloc(((size_t)w->nrows + 1) * sizeof(*t));
	if (!idx || !t) {
		free(idx);
		free(t);
		return -ENOMEM;
	}
	memset(idx, 0xff, (size_t)cap * sizeof(*idx));
	uint32_t n = 0;
	for (uint32_t i = 0; i < w->nrows; i++) {
		const struct window_row *r = &w->rows[i];
		if (v != BY_FUNC && !is_flow(r->flow_id))
			continue;
		uint64_t flow = v == BY_FUNC ? 0 : r->flow_id;
		uint64_t func = v == BY_FLOW ? 0 : r->func_id;
		uint32_t ev = v == BY_TRIPLE ? r->event : 0;
		uint64_t h = ms_mix64(flow ^ ms_mix64(func ^ ((uint64_t)ev << 48)));
		uint32_t p = (uint32_t)h & (cap - 1);
		while (idx[p] != UINT32_MAX && !(t[idx[p]].flow == flow && t[idx[p]].func == func && t[idx[p]].event == ev))
			p = (p + 1) & (cap - 1);
		if (idx[p] == UINT32_MAX) {
			idx[p] = n;
			t[n++] = (struct acc){ .flow = flow, .func = func, .event = ev, .first = i, .used = true };
		}
		t[idx[p]].samples += r->samples;
		t[idx[p]].cost += r->norm_cost;
	}
	free(idx);
	*ret = t;
	*ret_n = n;
	return 0;
}

static int by_samples(const void *a, const void *b)
{
	const struct acc *x = a, *y = b;
	if (x->samples != y->samples)
		return x->samples < y->samples ? 1 : -1;
	return x->flow < y->flow ? -1 : x->flow > y->flow ? 1 : (x->func < y->func ? -1 : x->func > y->func);
}

static int by_cost(const void *a, const void *b)
{
	const struct acc *x = a, *y = b;
	if (x->cost != y->cost)
		return x->cost < y->cost ? 1 : -1;
	return by_samples(a, b);
}

static void func_name(const struct window *w, uint64_t id, char *name, size_t nlen, char *module, size_t mlen)
{
	const struct window_func *f = window_find_func(w, id);
	snprintf(name, nlen, "%s", f ? f->name : "[unknown]");
	if (module)
		snprintf(module, mlen, "%s", f ? f->module : "");
}

int wintop_compute(const struct window *w, uint32_t k, struct wintop *ret)
{
	if (k == 0 || k > WINTOP_MAX)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	ret->seq = w->seq;
	ret->start_ns = w->start_ns;
	ret->end_ns = w->end_ns;
	for (uint32_t i = 0; i < w->nrows; i++) {
		ret->samples += w->rows[i].samples;
		if (!is_flow(w->rows[i].flow_id))
			ret->unattributed += w->rows[i].samples;
	}
	double secs = w->end_ns > w->start_ns ? (double)(w->end_ns - w->start_ns) / 1e9 : 0;
	struct acc *a;
	uint32_t n;
	int r = group(w, BY_FLOW, &a, &n);
	if (r < 0)
		return r;
	qsort(a, n, sizeof(*a), by_samples);
	for (uint32_t i = 0; i < n && i < k; i++) {
		struct wintop_flow *f = &ret->flows[ret->nflows++];
		f->id = a[i].flow;
		f->samples = a[i].samples;
		f->cost = a[i].cost;
		const struct window_flow *wf = window_find_flow(w, a[i].flow);
		if (wf)
			f->t = wf->tuple;
	}
	free(a);
	if ((r = group(w, BY_FUNC, &a, &n)) < 0)
		return r;
	qsort(a, n, sizeof(*a), by_samples);
	for (uint32_t i = 0; i < n && i < k; i++) {
		struct wintop_func *f = &ret->funcs[ret->nfuncs++];
		f->id = a[i].func;
		f->samples = a[i].samples;
		func_name(w, a[i].func, f->name, sizeof(f->name), f->module, sizeof(f->module));
	}
	free(a);
	if ((r = group(w, BY_TRIPLE, &a, &n)) < 0)
		return r;
	qsort(a, n, sizeof(*a), by_cost);
	for (uint32_t i = 0; i < n && i < k; i++) {
		struct wintop_row *x = &ret->rows[ret->nrows++];
		x->flow_id = a[i].flow;
		x->func_id = a[i].func;
		x->event = (uint16_t)a[i].event;
		x->samples = a[i].samples;
		x->cost = a[i].cost;
		x->per_sec = secs > 0 ? a[i].cost / secs : 0;
		x->iclass = w->rows[a[i].first].iclass;
		const struct window_flow *wf = window_find_flow(w, a[i].flow);
		if (wf)
			x->t = wf->tuple;
		func_name(w, a[i].func, x->func, sizeof(x->func), NULL, 0);
		snprintf(x->event_name, sizeof(x->event_name), "%s",
			 a[i].event < w->nevents ? w->event_names[a[i].event] : "unknown");
	}
	free(a);
	return 0;
}
