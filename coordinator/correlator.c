/* correlator: see correlator.h. Flat tables searched linearly: a tick walks every key and, per
 * key, its hosts (bounded by CORRELATOR_MAX_HOSTS_PER_KEY), so one tick costs at most
 * max_keys * hosts-per-key steps; at one tick per second that is far below a core even for a
 * thousand hosts agreeing on dozens of keys. */
#include "correlator.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct host {
	char id[WIRE_ID_MAX];
	char group[CORRELATOR_GROUP_MAX];
	uint64_t diag_until_ms;      /* set by TRIGGER/EXTEND, cleared by CLEAR */
};

struct hit {
	uint32_t host;               /* index into hosts */
	uint64_t ts;
};

struct key {
	char group[CORRELATOR_GROUP_MAX];
	char key[CORRELATOR_KEY_MAX];
	struct hit *hits;
	uint32_t nhits;
	uint64_t last_ms;
	bool triggered, suppressed;
	uint64_t until_ms;           /* TTL end of the current trigger */
};

struct group_rate {
	char group[CORRELATOR_GROUP_MAX];
	uint64_t last_trigger_ms;
	uint32_t triggered_keys;     /* keys of the group triggered and not cleared */
};

struct correlator {
	struct correlator_opts o;
	pthread_mutex_t mu;
	struct host *hosts;
	uint32_t nhosts;
	struct key *keys;
	uint32_t nkeys;
	struct group_rate *rates;    /* one per group that ever triggered; at most max_hosts */
	uint32_t nrates;
	struct correlator_stats st;
};

const char *correlator_kind_name(enum correlator_kind k)
{
	switch (k) {
	case CORRELATOR_TRIGGER:
		return "trigger";
	case CORRELATOR_EXTEND:
		return "extend";
	case CORRELATOR_CLEAR:
		return "clear";
	case CORRELATOR_SUPPRESSED_RATE:
		return "suppressed_rate";
	case CORRELATOR_SUPPRESSED_CAP:
		return "suppressed_cap";
	}
	return "?";
}

int correlator_new(const struct correlator_opts *o, struct correlator **ret)
{
	struct correlator *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	c->o = o ? *o : (struct correlator_opts){ 0 };
	if (!c->o.span_ms)
		c->o.span_ms = 30000;
	if (!c->o.min_hosts)
		c->o.min_hosts = 2;
	if (!c->o.diag_ttl_ms)
		c->o.diag_ttl_ms = 60000;
	if (!c->o.clear_ms)
		c->o.clear_ms = 2 * c->o.span_ms;
	if (!c->o.min_interval_ms)
		c->o.min_interval_ms = 60000;
	if (c->o.max_diag_fraction <= 0 || c->o.max_diag_fraction > 1)
		c->o.max_diag_fraction = 0.5;
	if (!c->o.max_hosts)
		c->o.max_hosts = 10000;
	if (!c->o.max_keys)
		c->o.max_keys = 4096;
	if (c->o.min_fraction < 0 || c->o.min_fraction > 1) {
		correlator_free(c);
		return -EINVAL;
	}
	c->hosts = calloc(c->o.max_hosts, sizeof(*c->hosts));
	c->keys = calloc(c->o.max_keys, sizeof(*c->keys));
	c->rates = calloc(c->o.max_hosts, sizeof(*c->rates));
	if (!c->hosts || !c->keys || !c->rates) {
		correlator_free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

struct correlator *correlator_free(struct correlator *c)
{
	if (!c)
		return NULL;
	if (c->keys)
		for (uint32_t i = 0; i < c->nkeys; i++)
			free(c->keys[i].hits);
	free(c->keys);
	free(c->hosts);
	free(c->rates);
	pthread_mutex_destroy(&c->mu);
	free(c);
	return NULL;
}

static int find_host(struct correlator *c, const char *id)
{
	for (uint32_t i = 0; i < c->nhosts; i++)
		if (strcmp(c->hosts[i].id, id) == 0)
			return (int)i;
	return -1;
}

int correlator_host(struct correlator *c, const char *agent_id, const char *group)
{
	if (!wire_valid_agent_id(agent_id) || !group || strlen(group) >= CORRELATOR_GROUP_MAX)
		return -EINVAL;
	pthread_mutex_lock(&c->mu);
	int i = find_host(c, agent_id), r = 0;
	if (i < 0 && c->nhosts < c->o.max_hosts) {
		i = (int)c->nhosts++;
		snprintf(c->hosts[i].id, sizeof(c->hosts[i].id), "%s", agent_id);
	}
	if (i < 0)
		r = -ENOSPC;
	else
		snprintf(c->hosts[i].group, sizeof(c->hosts[i].group), "%s", group);
	pthread_mutex_unlock(&c->mu);
	return r;
}

int correlator_signal(struct correlator *c, const char *agent_id, const char *key, uint64_t now_ms)
{
	if (!key || !key[0] || strlen(key) >= CORRELATOR_KEY_MAX)
		return -EINVAL;
	pthread_mutex_lock(&c->mu);
	int r = 0, h = find_host(c, agent_id);
	if (h < 0) {
		c->st.unknown_host++;
		r = -ENOENT;
		goto out;
	}
	c->st.signals++;
	const char *g = c->hosts[h].group;
	struct key *k = NULL;
	for (uint32_t i = 0; i < c->nkeys && !k; i++)
		if (strcmp(c->keys[i].key, key) == 0 && strcmp(c->keys[i].group, g) == 0)
			k = &c->keys[i];
	if (!k) {
		if (c->nkeys == c->o.max_keys) {
			c->st.key_drops++;
			r = -ENOSPC;
			goto out;
		}
		k = &c->keys[c->nkeys++];
		memset(k, 0, sizeof(*k));
		snprintf(k->group, sizeof(k->group), "%s", g);
		snprintf(k->key, sizeof(k->key), "%s", key);
	}
	k->last_ms = now_ms > k->last_ms ? now_ms : k->last_ms;
	for (uint32_t i = 0; i < k->nhits; i++) {
		if (k->hits[i].host == (uint32_t)h) {
			k->hits[i].ts = now_ms > k->hits[i].ts ? now_ms : k->hits[i].ts;
			goto out;
		}
	}
	if (k->nhits == CORRELATOR_MAX_HOSTS_PER_KEY) {
		c->st.key_drops++;
		goto out;
	}
	struct hit *nh = realloc(k->hits, (k->nhits + 1) * sizeof(*nh));
	if (!nh) {
		r = -ENOMEM;
		goto out;
	}
	k->hits = nh;
	k->hits[k->nhits++] = (struct hit){ (uint32_t)h, now_ms };
out:
	pthread_mutex_unlock(&c->mu);
	return r;
}

/* Appends a decision naming every host of group (and marks their diagnostic deadline). */
static int emit(struct correlator *c, struct correlator_decision **out, size_t *n, size_t *cap,
		enum correlator_kind kind, const struct key *k, uint32_t agreeing, uint64_t until_ms)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct correlator_decision *p = realloc(*out, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*out = p;
		*cap = nc;
	}
	struct correlator_decision *d = &(*out)[*n];
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	d->agreeing = agreeing;
	snprintf(d->group, sizeof(d->group), "%s", k->group);
	snprintf(d->key, sizeof(d->key), "%s", k->key);
	for (uint32_t i = 0; i < c->nhosts; i++)
		if (strcmp(c->hosts[i].group, k->group) == 0)
			d->group_hosts++;
	bool names = kind == CORRELATOR_TRIGGER || kind == CORRELATOR_EXTEND || kind == CORRELATOR_CLEAR;
	if (names && d->group_hosts && !(d->agents = calloc(d->group_hosts, sizeof(*d->agents))))
		return -ENOMEM;
	for (uint32_t i = 0; names && i < c->nhosts; i++) {
		if (strcmp(c->hosts[i].group, k->group) != 0)
			continue;
		memcpy(d->agents[d->nagents++], c->hosts[i].id, WIRE_ID_MAX);
		c->hosts[i].diag_until_ms = until_ms;
	}
	(*n)++;
	return 0;
}

static struct group_rate *rate_of(struct correlator *c, const char *group)
{
	for (uint32_t i = 0; i < c->nrates; i++)
		if (strcmp(c->rates[i].group, group) == 0)
			return &c->rates[i];
	if (c->nrates == c->o.max_hosts)
		return NULL;
	struct group_rate *g = &c->rates[c->nrates++];
	snprintf(g->group, sizeof(g->group), "%s", group);
	g->last_trigger_ms = 0;
	g->triggered_keys = 0;
	return g;
}

int correlator_tick(struct correlator *c, uint64_t now_ms, struct correlator_decision **ret, size_t *ret_n)
{
	struct correlator_decision *out = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	pthread_mutex_lock(&c->mu);
	uint64_t since = now_ms > c->o.span_ms ? now_ms - c->o.span_ms : 0;
	for (uint32_t i = 0; i < c->nkeys && r == 0; i++) {
		struct key *k = &c->keys[i];
		/* forget hits older than the span; count the rest */
		uint32_t w = 0;
		for (uint32_t j = 0; j < k->nhits; j++)
			if (k->hits[j].ts >= since)
				k->hits[w++] = k->hits[j];
		k->nhits = w;
		uint32_t group_hosts = 0, in_diag = 0;
		for (uint32_t h = 0; h < c->nhosts; h++) {
			if (c->hosts[h].diag_until_ms > now_ms)
				in_diag++;
			if (strcmp(c->hosts[h].group, k->group) == 0)
				group_hosts++;
		}
		if (k->triggered) {
			if (now_ms >= k->last_ms + c->o.clear_ms) {
				k->triggered = false;
				k->suppressed = false;
				struct group_rate *g = rate_of(c, k->group);
				if (g && g->triggered_keys)
					g->triggered_keys--;
				r = emit(c, &out, &n, &cap, CORRELATOR_CLEAR, k, 0, 0);
				c->st.clears++;
			} else if (k->nhits && k->until_ms < now_ms + c->o.diag_ttl_ms / 2) {
				k->until_ms = now_ms + c->o.diag_ttl_ms;
				r = emit(c, &out, &n, &cap, CORRELATOR_EXTEND, k, k->nhits, k->until_ms);
				c->st.extends++;
			}
			continue;
		}
		bool enough = k->nhits >= c->o.min_hosts &&
			      (c->o.min_fraction <= 0 || (double)k->nhits >= c->o.min_fraction * (double)group_hosts);
		if (!enough) {
			if (!k->nhits)
				k->suppressed = false; /* the episode is over */
			continue;
		}
		struct group_rate *g = rate_of(c, k->group);
		/* hosts of this group not yet in diagnostic would join the ones that are */
		uint32_t joining = 0;
		for (uint32_t h = 0; h < c->nhosts; h++)
			if (strcmp(c->hosts[h].group, k->group) == 0 && c->hosts[h].diag_until_ms <= now_ms)
				joining++;
		enum correlator_kind kind = CORRELATOR_TRIGGER;
		if (!g || (g->last_trigger_ms && now_ms < g->last_trigger_ms + c->o.min_interval_ms))
			kind = CORRELATOR_SUPPRESSED_RATE;
		else if ((double)(in_diag + joining) > c->o.max_diag_fraction * (double)c->nhosts)
			kind = CORRELATOR_SUPPRESSED_CAP;
		if (kind == CORRELATOR_TRIGGER) {
			k->triggered = true;
			k->suppressed = false;
			k->until_ms = now_ms + c->o.diag_ttl_ms;
			g->last_trigger_ms = now_ms;
			g->triggered_keys++;
			r = emit(c, &out, &n, &cap, kind, k, k->nhits, k->until_ms);
			c->st.triggers++;
		} else if (!k->suppressed) {
			k->suppressed = true;
			r = emit(c, &out, &n, &cap, kind, k, k->nhits, 0);
			c->st.suppressed++;
			if (kind == CORRELATOR_SUPPRESSED_RATE)
				c->st.suppressed_rate++;
			else
				c->st.suppressed_cap++;
		}
	}
	pthread_mutex_unlock(&c->mu);
	if (r < 0) {
		correlator_decisions_free(out, n);
		return r;
	}
	*ret = out;
	*ret_n = n;
	return 0;
}

void correlator_decisions_free(struct correlator_decision *d, size_t n)
{
	for (size_t i = 0; d && i < n; i++)
		free(d[i].agents);
	free(d);
}

void correlator_get_stats(struct correlator *c, uint64_t now_ms, struct correlator_stats *ret)
{
	pthread_mutex_lock(&c->mu);
	*ret = c->st;
	ret->hosts = c->nhosts;
	ret->keys = c->nkeys;
	ret->hosts_in_diagnostic = 0;
	ret->groups_in_diagnostic = 0;
	for (uint32_t i = 0; i < c->nrates; i++)
		if (c->rates[i].triggered_keys)
			ret->groups_in_diagnostic++;
	for (uint32_t i = 0; i < c->nhosts; i++)
		if (c->hosts[i].diag_until_ms > now_ms)
			ret->hosts_in_diagnostic++;
	pthread_mutex_unlock(&c->mu);
}
