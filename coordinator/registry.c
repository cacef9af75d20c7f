/* registry: see registry.h. Entries live in one array in registration order, indexed by an
 * open-addressing table of agent ids; entries are never removed (stale is a state). */
#include "registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	struct registry_agent a;
};

struct registry {
	pthread_mutex_t mu;
	uint32_t max, stale_ms;
	struct entry *e;
	uint32_t n, cap;
	uint32_t *slots; /* index + 1, 0 = empty */
	uint32_t mask;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return h;
}

int registry_new(uint32_t max_agents, uint32_t stale_after_ms, struct registry **ret)
{
	struct registry *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->max = max_agents ? max_agents : REGISTRY_DEFAULT_MAX_AGENTS;
	r->stale_ms = stale_after_ms ? stale_after_ms : 15000;
	uint32_t cap = 16;
	while (cap < 2 * (uint64_t)r->max)
		cap <<= 1;
	r->slots = calloc(cap, sizeof(*r->slots));
	if (!r->slots) {
		free(r);
		return -ENOMEM;
	}
	r->mask = cap - 1;
	pthread_mutex_init(&r->mu, NULL);
	*ret = r;
	return 0;
}

struct registry *registry_free(struct registry *r)
{
	if (!r)
		return NULL;
	free(r->e);
	free(r->slots);
	pthread_mutex_destroy(&r->mu);
	free(r);
	return NULL;
}

static uint32_t *slot(struct registry *r, const char *id)
{
	uint32_t p = (uint32_t)str_hash(id) & r->mask;
	while (r->slots[p] && strcmp(r->e[r->slots[p] - 1].a.hello.agent_id, id) != 0)
		p = (p + 1) & r->mask;
	return &r->slots[p];
}

static struct registry_agent *find(struct registry *r, const char *id)
{
	uint32_t v = *slot(r, id);
	return v ? &r->e[v - 1].a : NULL;
}

int registry_hello(struct registry *r, const struct wire_hello *h, uint64_t now_ms)
{
	int ret = 0;
	pthread_mutex_lock(&r->mu);
	uint32_t *s = slot(r, h->agent_id);
	struct registry_agent *a = *s ? &r->e[*s - 1].a : NULL;
	if (!a) {
		if (r->n >= r->max) {
			ret = -ENOSPC;
			goto out;
		}
		if (r->n == r->cap) {
			uint32_t cap = r->cap ? r->cap * 2 : 64;
			struct entry *n = realloc(r->e, (size_t)cap * sizeof(*n));
			if (!n) {
				ret = -ENOMEM;
				goto out;
			}
			r->e = n;
			r->cap = cap;
		}
		a = &r->e[r->n].a;
		memset(a, 0, sizeof(*a));
		a->registered_ms = now_ms;
		*s = ++r->n;
	}
	a->hello = *h;
	a->last_seen_ms = now_ms;
	a->spool_windows = h->spool_windows;
out:
	pthread_mutex_unlock(&r->mu);
	return ret;
}

bool registry_known(struct registry *r, const char *agent_id)
{
	pthread_mutex_lock(&r->mu);
	bool k = find(r, agent_id) != NULL;
	pthread_mutex_unlock(&r->mu);
	return k;
}

int registry_touch(struct registry *r, const char *agent_id, uint64_t now_ms, uint64_t spool_windows, int mode)
{
	pthread_mutex_lock(&r->mu);
	struct registry_agent *a = find(r, agent_id);
	if (a) {
		a->last_seen_ms = now_ms;
		a->spool_windows = spool_windows;
		if (mode >= 0)
			a->mode = (uint8_t)mode;
	}
	pthread_mutex_unlock(&r->mu);
	return a ? 0 : -ENOENT;
}

int registry_window(struct registry *r, const struct wire_window *w, bool duplicate, uint64_t now_ms, uint64_t now_ns)
{
	pthread_mutex_lock(&r->mu);
	struct registry_agent *a = find(r, w->agent_id);
	if (a) {
		a->last_seen_ms = now_ms;
		a->mode = w->mode;
		if (duplicate) {
			a->duplicates++;
		} else {
			a->windows++;
			if (w->seq > a->last_seq) {
				a->last_seq = w->seq;
				a->last_window_end_ns = w->end_ns;
				a->lag_ms = now_ns > w->end_ns ? (now_ns - w->end_ns) / 1000000u : 0;
			}
		}
	}
	pthread_mutex_unlock(&r->mu);
	return a ? 0 : -ENOENT;
}

static enum registry_state state_of(const struct registry *r, const struct registry_agent *a, uint64_t now_ms)
{
	return now_ms > a->last_seen_ms + r->stale_ms ? REGISTRY_STALE : REGISTRY_LIVE;
}

void registry_counts(struct registry *r, uint64_t now_ms, uint32_t *ret_live, uint32_t *ret_stale)
{
	uint32_t live = 0, stale = 0;
	pthread_mutex_lock(&r->mu);
	for (uint32_t i = 0; i < r->n; i++) {
		if (state_of(r, &r->e[i].a, now_ms) == REGISTRY_LIVE)
			live++;
		else
			stale++;
	}
	pthread_mutex_unlock(&r->mu);
	*ret_live = live;
	*ret_stale = stale;
}

int registry_get(struct registry *r, uint32_t i, uint64_t now_ms, struct registry_agent *ret)
{
	pthread_mutex_lock(&r->mu);
	int rc = -ENOENT;
	if (i < r->n) {
		*ret = r->e[i].a;
		ret->state = state_of(r, &r->e[i].a, now_ms);
		rc = 0;
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

uint32_t registry_count(struct registry *r)
{
	pthread_mutex_lock(&r->mu);
	uint32_t n = r->n;
	pthread_mutex_unlock(&r->mu);
	return n;
}
