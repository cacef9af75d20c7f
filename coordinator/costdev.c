/* costdev: see costdev.h. Per window: per-event sample totals, then the (function, event)
 * sums by sorting a copy of the rows' (event, function, samples) — O(rows log rows), a few
 * tens of µs for the windows agents send — then one linear scan of the host's few tracked
 * pairs per pair. */
#include "costdev.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pair_key {
	uint64_t func_id;
	double base;          /* EWMA of the share */
	uint32_t n;           /* windows observed */
	uint16_t event_len;
	bool dev;             /* deviating in the last window it was seen */
	bool seen;            /* in the current window */
	char event[48];
};

struct host {
	char id[WIRE_ID_MAX];
	uint64_t windows;
	uint32_t nkeys;
	struct pair_key keys[];
};

struct costdev {
	pthread_mutex_t mu;
	struct costdev_opts o;
	struct host **hosts;
	uint32_t cap, nhosts;
	struct costdev_stats st;
};

struct pair {
	uint64_t func_id, samples;
	uint16_t event;
};

static uint64_t fnv(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

int costdev_new(const struct costdev_opts *o, struct costdev **ret)
{
	struct costdev *cd = calloc(1, sizeof(*cd));
	if (!cd)
		return -ENOMEM;
	cd->o = o ? *o : (struct costdev_opts){ 0 };
	if (cd->o.alpha <= 0 || cd->o.alpha > 1)
		cd->o.alpha = 0.1;
	if (cd->o.ratio <= 1)
		cd->o.ratio = 3.0;
	if (cd->o.min_share <= 0 || cd->o.min_share > 1)
		cd->o.min_share = 0.05;
	if (!cd->o.min_samples)
		cd->o.min_samples = 50;
	if (!cd->o.warmup)
		cd->o.warmup = 10;
	if (!cd->o.max_hosts)
		cd->o.max_hosts = 4096;
	if (!cd->o.keys_per_host || cd->o.keys_per_host > 1024)
		cd->o.keys_per_host = 64;
	cd->cap = 16;
	while (cd->cap < 2 * cd->o.max_hosts)
		cd->cap <<= 1;
	if (!(cd->hosts = calloc(cd->cap, sizeof(*cd->hosts)))) {
		free(cd);
		return -ENOMEM;
	}
	pthread_mutex_init(&cd->mu, NULL);
	*ret = cd;
	return 0;
}

struct costdev *costdev_free(struct costdev *cd)
{
	if (!cd)
		return NULL;
	for (uint32_t i = 0; i < cd->cap; i++)
		free(cd->hosts[i]);
	free(cd->hosts);
	pthread_mutex_destroy(&cd->mu);
	free(cd);
	return NULL;
}

static struct host *host_of(struct costdev *cd, const char *id)
{
	uint32_t i = (uint32_t)fnv(id) & (cd->cap - 1);
	for (;; i = (i + 1) & (cd->cap - 1)) {
		struct host *h = cd->hosts[i];
		if (h && strcmp(h->id, id) == 0)
			return h;
		if (!h)
			break;
	}
	if (cd->nhosts >= cd->o.max_hosts) {
		cd->st.hosts_refused++;
		return NULL;
	}
	struct host *h = calloc(1, sizeof(*h) + cd->o.keys_per_host * sizeof(h->keys[0]));
	if (!h)
		return NULL;
	snprintf(h->id, sizeof(h->id), "%s", id);
	cd->hosts[i] = h;
	cd->nhosts++;
	cd->st.hosts = cd->nhosts;
	return h;
}

static int cmp_pair(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	if (x->event != y->event)
		return x->event < y->event ? -1 : 1;
	return (x->func_id > y->func_id) - (x->func_id < y->func_id);
}

static struct pair_key *find_key(struct host *h, uint64_t func_id, const char *event)
{
	for (uint32_t i = 0; i < h->nkeys; i++)
		if (h->keys[i].func_id == func_id && strcmp(h->keys[i].event, event) == 0)
			return &h->keys[i];
	return NULL;
}

/* A slot for a new pair: a free one, or the one with the smallest baseline if that is below
 * the new share (else NULL: the new pair is not tracked). */
static struct pair_key *new_key(struct costdev *cd, struct host *h, double share)
{
	if (h->nkeys < cd->o.keys_per_host)
		return &h->keys[h->nkeys++];
	struct pair_key *min = &h->keys[0];
	for (uint32_t i = 1; i < h->nkeys; i++)
		if (h->keys[i].base < min->base)
			min = &h->keys[i];
	if (min->base >= share)
		return NULL;
	cd->st.evictions++;
	return min;
}

static void emit_key(void (*emit)(void *, const char *), void *arg, uint64_t func_id, const char *event)
{
	char key[COSTDEV_KEY_MAX];
	snprintf(key, sizeof(key), "cost:%016" PRIx64 ":%s", func_id, event);
	emit(arg, key);
}

int costdev_window(struct costdev *cd, const struct wire_window *w, void (*emit)(void *arg, const char *key),
		   void *arg)
{
	struct pair *p = malloc((w->nrows ? w->nrows : 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	uint64_t total[WIRE_MAX_EVENTS] = { 0 };
	uint32_t n = 0;
	for (uint32_t i = 0; i < w->nrows; i++) {
		const struct wire_row *r = &w->rows[i];
		if (r->event >= w->nevents || r->event >= WIRE_MAX_EVENTS)
			continue;
		total[r->event] += r->samples;
		if (r->func_id)
			p[n++] = (struct pair){ r->func_id, r->samples, r->event };
	}
	qsort(p, n, sizeof(*p), cmp_pair);

	pthread_mutex_lock(&cd->mu);
	int devs = 0;
	struct host *h = host_of(cd, w->agent_id);
	if (!h)
		goto out;
	cd->st.windows++;
	bool warmed = h->windows >= cd->o.warmup;
	double a = cd->o.alpha, floor = cd->o.min_share / 4;
	for (uint32_t i = 0; i < h->nkeys; i++)
		h->keys[i].seen = false;
	for (uint32_t i = 0; i < n;) {
		uint32_t j = i;
		uint64_t s = 0;
		while (j < n && p[j].event == p[i].event && p[j].func_id == p[i].func_id)
			s += p[j++].samples;
		const char *ev = w->events[p[i].event].name;
		uint64_t t = total[p[i].event];
		if (t < cd->o.min_samples) {
			i = j;
			continue;
		}
		double share = (double)s / (double)t;
		struct pair_key *k = find_key(h, p[i].func_id, ev);
		double base = k ? k->base : 0;
		bool dev = warmed && (k ? k->n >= 1 : true) && share >= cd->o.min_share && share > cd->o.ratio * base;
		if (!k && share >= floor && (k = new_key(cd, h, share)) != NULL) {
			memset(k, 0, sizeof(*k));
			k->func_id = p[i].func_id;
			snprintf(k->event, sizeof(k->event), "%s", ev);
			k->base = warmed ? 0 : share; /* a new pair on a warmed host starts from nothing */
		}
		if (k) {
			double rate = dev ? a / 16 : a;
			k->base += rate * (share - k->base);
			k->n++;
			k->dev = dev;
			k->seen = true;
		}
		if (dev && devs < (int)cd->o.keys_per_host) {
			devs++;
			emit_key(emit, arg, p[i].func_id, ev);
		}
		i = j;
	}
	/* tracked pairs absent from this window, whose event was sampled: share 0 */
	for (uint32_t i = 0; i < h->nkeys; i++) {
		struct pair_key *k = &h->keys[i];
		if (k->seen)
			continue;
		for (uint32_t e = 0; e < w->nevents && e < WIRE_MAX_EVENTS; e++)
			if (total[e] >= cd->o.min_samples && strcmp(w->events[e].name, k->event) == 0) {
				k->base -= a * k->base;
				k->dev = false;
				break;
			}
	}
	h->windows++;
	cd->st.deviations += (uint64_t)devs;
out:
	pthread_mutex_unlock(&cd->mu);
	free(p);
	return devs;
}

void costdev_stats(struct costdev *cd, struct costdev_stats *ret)
{
	pthread_mutex_lock(&cd->mu);
	*ret = cd->st;
	pthread_mutex_unlock(&cd->mu);
}
