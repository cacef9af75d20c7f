/* window: see window.h. */
#include "window.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct window *window_alloc(uint32_t nrows, uint32_t nflows)
{
	struct window *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->rows = calloc(nrows ? nrows : 1, sizeof(*w->rows));
	w->flows = calloc(nflows ? nflows : 1, sizeof(*w->flows));
	if (!w->rows || !w->flows)
		return window_free(w);
	return w;
}

struct window *window_free(struct window *w)
{
	if (!w)
		return NULL;
	free(w->rows);
	free(w->flows);
	free(w->funcs);
	free(w->stacks);
	free(w->addrs);
	free(w->objects);
	free(w->fs);
	free(w->numa);
	free(w->anomalies);
	free(w);
	return NULL;
}

size_t window_bytes(const struct window *w)
{
	return sizeof(*w) + (size_t)w->nrows * sizeof(*w->rows) + (size_t)w->nflows * sizeof(*w->flows) +
	       (size_t)w->nfuncs * sizeof(*w->funcs) + (size_t)w->nstacks * sizeof(*w->stacks) +
	       (size_t)w->naddrs * sizeof(*w->addrs) + (size_t)w->nobjects * sizeof(*w->objects) +
	       (size_t)w->nfs * sizeof(*w->fs) + (size_t)w->nnuma * sizeof(*w->numa) +
	       (size_t)w->nanomalies * sizeof(*w->anomalies);
}

uint64_t window_samples(const struct window *w)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < w->nrows; i++)
		n += w->rows[i].samples;
	return n;
}

const struct window_flow *window_find_flow(const struct window *w, uint64_t flow_id)
{
	for (uint32_t i = 0; i < w->nflows; i++)
		if (w->flows[i].flow_id == flow_id)
			return &w->flows[i];
	return NULL;
}

const struct window_func *window_find_func(const struct window *w, uint64_t func_id)
{
	for (uint32_t i = 0; i < w->nfuncs; i++)
		if (w->funcs[i].func_id == func_id)
			return &w->funcs[i];
	return NULL;
}

/* Sums samples per key into a small scratch table, then partial-selects the top k.
 * O(rows × distinct keys) in the worst case: windows hold at most tens of thousands of rows and
 * this runs once per window off the hot path. */
static int top_by(const struct window *w, int k, int by_func, uint64_t *ids, uint64_t *samples)
{
	uint32_t cap = w->nrows ? w->nrows : 1;
	uint64_t *kid = calloc(cap, sizeof(*kid));
	uint64_t *ks = calloc(cap, sizeof(*ks));
	uint32_t n = 0;
	if (!kid || !ks) {
		free(kid);
		free(ks);
		return 0;
	}
	for (uint32_t i = 0; i < w->nrows; i++) {
		uint64_t id = by_func ? w->rows[i].func_id : w->rows[i].flow_id;
		if (id == 0)
			continue;
		uint32_t j;
		for (j = 0; j < n; j++)
			if (kid[j] == id)
				break;
		if (j == n)
			kid[n++] = id;
		ks[j] += w->rows[i].samples;
	}
	int out = 0;
	for (; out < k; out++) {
		uint32_t best = UINT32_MAX;
		for (uint32_t j = 0; j < n; j++)
			if (ks[j] && (best == UINT32_MAX || ks[j] > ks[best]))
				best = j;
		if (best == UINT32_MAX)
			break;
		ids[out] = kid[best];
		samples[out] = ks[best];
		ks[best] = 0;
	}
	free(kid);
	free(ks);
	return out;
}

int window_top_flows(const struct window *w, int k, uint64_t *ids, uint64_t *samples)
{
	return top_by(w, k, 0, ids, samples);
}

int window_top_funcs(const struct window *w, int k, uint64_t *ids, uint64_t *samples)
{
	return top_by(w, k, 1, ids, samples);
}

void window_format_tuple(const struct ms_flow_tuple *t, char *buf, size_t len)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	if (t->family == MS_FAMILY_V4) {
		inet_ntop(AF_INET, t->saddr + 12, s, sizeof(s));
		inet_ntop(AF_INET, t->daddr + 12, d, sizeof(d));
	} else {
		inet_ntop(AF_INET6, t->saddr, s, sizeof(s));
		inet_ntop(AF_INET6, t->daddr, d, sizeof(d));
	}
	const char *proto = t->proto == 6 ? "tcp" : t->proto == 17 ? "udp" : "ip";
	const char *dir = t->dir == MS_DIR_RX ? "rx" : t->dir == MS_DIR_TX ? "tx" : "-";
	if (t->family == MS_FAMILY_V6)
		snprintf(buf, len, "%s [%s]:%u -> [%s]:%u %s", proto, s, t->sport, d, t->dport, dir);
	else
		snprintf(buf, len, "%s %s:%u -> %s:%u %s", proto, s, t->sport, d, t->dport, dir);
}
