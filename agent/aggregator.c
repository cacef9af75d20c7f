/* aggregator: see aggregator.h.
 * Layout: one open-addressing table (linear probing, power-of-two capacity, load <= 1/2) holds
 * full-key rows up to max_rows plus up to max_rows/8 + 16 coarse rows; the coarse reserve
 * guarantees that a full table still counts samples under a coarser key. Cost per sample: one
 * 64-bit hash of the key and, typically, one or two probes. */
#include "aggregator.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct agg_key {
	uint64_t flow_id;
	uint64_t ip;
	uint64_t stack_id;
	uint64_t object_id;
	uint32_t pid;
	uint16_t event;
	int16_t numa_node;
	uint8_t dir;
	uint8_t iclass;
	uint8_t user_mode;
	uint8_t level;       /* 0 full key, 1 no code location, 2 flow/event/dir, 3 overflow flow */
	uint32_t _pad;
};

/* One cache line: a lookup that misses the cache costs one line. samples == 0 marks a free slot
 * (a used slot always has at least one sample). */
struct agg_slot {
	struct agg_key k;
	uint64_t samples;
	double norm_cost;
};
_Static_assert(sizeof(struct agg_slot) == 64, "aggregator slot must stay one cache line");

struct flow_slot {
	uint64_t flow_id;    /* 0 = empty */
	struct ms_flow_tuple tuple;
};

struct aggregator {
	uint32_t max_rows, max_coarse;
	uint32_t cap, mask;           /* table capacity now: grows by doubling up to max_cap */
	uint32_t max_cap;             /* capacity that holds every row the budgets allow */
	uint32_t nfull, ncoarse;
	struct agg_slot *slots;
	uint32_t *used_idx;           /* indices of used slots, for O(rows) close */
	uint32_t nused;
	uint32_t fcap, fmask, nflows, max_flows, max_fcap;
	struct flow_slot *flows;
	uint64_t samples, degraded, dropped, flows_overflow;
};

static inline uint64_t mix(uint64_t h, uint64_t v)
{
	return ms_mix64(h ^ v);
}

static uint64_t key_hash(const struct agg_key *k)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL;
	h = mix(h, k->flow_id);
	h = mix(h, k->ip ^ ((uint64_t)k->pid << 48));
	h = mix(h, k->stack_id ^ k->object_id);
	h = mix(h, (uint64_t)k->event | (uint64_t)(uint16_t)k->numa_node << 16 |
		   (uint64_t)k->dir << 32 | (uint64_t)k->iclass << 40 | (uint64_t)k->user_mode << 48 |
		   (uint64_t)k->level << 56);
	return h;
}

static inline bool key_eq(const struct agg_key *a, const struct agg_key *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

#define AGG_INITIAL_CAP 4096u
#define AGG_LEVEL3_RESERVE 1024u /* room for overflow rows (per event, direction, class) */

static uint32_t pow2_at_least(uint64_t n)
{
	uint32_t c = 16;
	while (c < n && c < (1u << 30))
		c <<= 1;
	return c;
}

int aggregator_new(uint32_t max_rows, uint32_t max_flows, struct aggregator **ret)
{
	if (max_rows < 16 || max_rows > (1u << 26) || max_flows < 1 || max_flows > (1u << 24))
		return -EINVAL;
	struct aggregator *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->max_rows = max_rows;
	/* coarse keys: (flow, event, dir) must fit every live flow, plus slack for level 1 */
	a->max_coarse = max_rows / 8 + max_flows + 16;
	/* Tables start small and double while in use (see grow_*): memory follows the live keys and
	 * flows instead of the budgets, which at the defaults would cost ~47 MiB up front. Smaller
	 * sizes double at a load of 3/4; the largest holds every row the budgets allow at a load of
	 * at most 4/5. At the defaults that is 2^18 slots (16 MiB) for 205,840 rows where 3/4 needed
	 * 2^19 (32 MiB): one burst past 196,608 rows (a stretched window, a stalled loop catching
	 * up) used to double the table for the rest of the process's life. Linear probing at 4/5
	 * costs ~3 probes per hit and ~13 per miss, only in a window that is that full. */
	a->max_cap = pow2_at_least((5ULL * (max_rows + a->max_coarse + AGG_LEVEL3_RESERVE) + 3) / 4 + 1);
	a->cap = a->max_cap < AGG_INITIAL_CAP ? a->max_cap : AGG_INITIAL_CAP;
	a->mask = a->cap - 1;
	a->slots = calloc(a->cap, sizeof(*a->slots));
	a->used_idx = calloc(a->cap, sizeof(*a->used_idx));
	a->max_flows = max_flows;
	a->max_fcap = pow2_at_least((5ULL * max_flows + 3) / 4 + 1);
	a->fcap = a->max_fcap < AGG_INITIAL_CAP ? a->max_fcap : AGG_INITIAL_CAP;
	a->fmask = a->fcap - 1;
	a->flows = calloc(a->fcap, sizeof(*a->flows));
	if (!a->slots || !a->used_idx || !a->flows) {
		aggregator_free(a);
		return -ENOMEM;
	}
	*ret = a;
	return 0;
}

struct aggregator *aggregator_free(struct aggregator *a)
{
	if (!a)
		return NULL;
	free(a->slots);
	free(a->used_idx);
	free(a->flows);
	free(a);
	return NULL;
}

/* Doubles the row table and re-inserts the used slots in used_idx order (rows keep their
 * order). Costs one pass over the live rows, a handful of times per process lifetime (the
 * table never shrinks). Returns false when out of memory: the caller stays at this size. */
static bool grow_rows(struct aggregator *a)
{
	uint32_t cap = a->cap * 2, mask = cap - 1;
	struct agg_slot *slots = calloc(cap, sizeof(*slots));
	uint32_t *idx = calloc(cap, sizeof(*idx));
	if (!slots || !idx) {
		free(slots);
		free(idx);
		return false;
	}
	for (uint32_t n = 0; n < a->nused; n++) {
		const struct agg_slot *old = &a->slots[a->used_idx[n]];
		uint32_t i = (uint32_t)key_hash(&old->k) & mask;
		while (slots[i].samples)
			i = (i + 1) & mask;
		slots[i] = *old;
		idx[n] = i;
	}
	free(a->slots);
	free(a->used_idx);
	a->slots = slots;
	a->used_idx = idx;
	a->cap = cap;
	a->mask = mask;
	return true;
}

static bool grow_flows(struct aggregator *a)
{
	uint32_t cap = a->fcap * 2, mask = cap - 1;
	struct flow_slot *flows = calloc(cap, sizeof(*flows));
	if (!flows)
		return false;
	for (uint32_t j = 0; j < a->fcap; j++) {
		if (!a->flows[j].flow_id)
			continue;
		uint32_t i = (uint32_t)ms_mix64(a->flows[j].flow_id) & mask;
		while (flows[i].flow_id)
			i = (i + 1) & mask;
		flows[i] = a->flows[j];
	}
	free(a->flows);
	a->flows = flows;
	a->fcap = cap;
	a->fmask = mask;
	return true;
}

/* Finds or inserts k. Inserting is allowed while the level's budget has room; level 3 (a few
 * rows per event and direction) always has room: the table reserves it. */
static struct agg_slot *lookup(struct aggregator *a, const struct agg_key *k, bool *full)
{
	uint32_t i = (uint32_t)key_hash(k) & a->mask;
	for (;;) {
		struct agg_slot *s = &a->slots[i];
		if (!s->samples) {
			bool room = k->level == 0   ? a->nfull < a->max_rows
				    : k->level < 3 ? a->ncoarse < a->max_coarse
						   : a->nused < a->max_cap / 5 * 4;
			if (!room) {
				*full = true;
				return NULL;
			}
			if (a->nused + 1 > a->cap / 2 + a->cap / 4 && a->cap < a->max_cap) {
				if (grow_rows(a))
					return lookup(a, k, full); /* once: the new table is half full */
				if (a->nused + 1 >= a->cap) {  /* out of memory and no free slot left */
					*full = true;
					return NULL;
				}
			}
			s->k = *k;
			a->used_idx[a->nused++] = i;
			if (k->level == 0)
				a->nfull++;
			else
				a->ncoarse++;
			return s;
		}
		if (key_eq(&s->k, k))
			return s;
		i = (i + 1) & a->mask;
	}
}

static void flow_remember(struct aggregator *a, uint64_t id, const struct ms_flow_tuple *t)
{
	uint32_t i = (uint32_t)ms_mix64(id) & a->fmask;
	for (;;) {
		struct flow_slot *f = &a->flows[i];
		if (f->flow_id == id)
			return;
		if (f->flow_id == 0) {
			if (a->nflows >= a->max_flows) {
				a->flows_overflow++;
				return;
			}
			/* flow ids compare in one word: a load up to 4/5 keeps probes short */
			if (a->nflows + 1 > a->fcap / 5 * 4) {
				if (a->fcap < a->max_fcap && grow_flows(a)) {
					flow_remember(a, id, t);
					return;
				}
				if (a->nflows + 1 >= a->fcap) {
					a->flows_overflow++;
					return;
				}
			}
			f->flow_id = id;
			f->tuple = *t;
			a->nflows++;
			return;
		}
		i = (i + 1) & a->fmask;
	}
}

void aggregator_add(struct aggregator *a, const struct agg_sample *as)
{
	const struct ms_sample *s = as->s;
	struct agg_key k;
	memset(&k, 0, sizeof(k));
	k.flow_id = s->flow_id;
	k.ip = s->ip;
	k.pid = s->user_mode ? s->pid : 0; /* kernel addresses are the same in every process */
	k.stack_id = (s->kstack_id < 0 && s->ustack_id < 0)
			     ? WINDOW_NO_STACK
			     : ((uint64_t)(uint32_t)s->ustack_id << 32 | (uint32_t)s->kstack_id);
	k.object_id = as->object_id;
	k.event = (uint16_t)s->event;
	k.numa_node = as->numa_node;
	k.dir = s->flow_id ? s->flow.dir : MS_DIR_NONE;
	k.iclass = as->iclass;
	k.user_mode = s->user_mode;

	uint16_t gso = s->gso_segs ? s->gso_segs : 1;
	double cost = (double)(s->period ? s->period : 1) * (as->scale > 0 ? as->scale : 1.0) / gso;

	bool full = false;
	struct agg_slot *slot = lookup(a, &k, &full);
	if (!slot) {
		/* degrade: drop code location and stack, keep process, flow, event, object */
		k.ip = 0;
		k.stack_id = WINDOW_NO_STACK;
		k.level = 1;
		slot = lookup(a, &k, &full);
		if (!slot) {
			struct agg_key c;
			memset(&c, 0, sizeof(c));
			c.flow_id = k.flow_id;
			c.event = k.event;
			c.dir = k.dir;
			c.iclass = k.iclass;
			c.numa_node = -1;
			c.stack_id = WINDOW_NO_STACK;
			c.level = 2;
			slot = lookup(a, &c, &full);
			if (!slot) {
				/* even per-flow rows are exhausted: count under the overflow flow, so
				 * Σsamples is kept and the loss of flow identity is visible */
				c.flow_id = WINDOW_FLOW_OVERFLOW;
				c.level = 3;
				slot = lookup(a, &c, &full);
			}
		}
		if (!slot) {
			a->dropped++;
			return;
		}
		a->degraded++;
	}
	/* a flow is remembered when it first gets a slot: later samples that hit an existing slot
	 * of that flow need no second random access (the dictionary is reset with the slots) */
	if (s->flow_id && slot->k.level < 3 && slot->samples == 0)
		flow_remember(a, s->flow_id, &s->flow);
	slot->samples++;
	slot->norm_cost += cost;
	a->samples++;
}

struct window *aggregator_close(struct aggregator *a)
{
	struct window *w = window_alloc(a->nused, a->nflows);
	if (!w)
		return NULL;
	for (uint32_t n = 0; n < a->nused; n++) {
		struct agg_slot *s = &a->slots[a->used_idx[n]];
		struct window_row *r = &w->rows[n];
		r->flow_id = s->k.flow_id;
		r->ip = s->k.ip;
		r->stack_id = s->k.stack_id;
		r->object_id = s->k.object_id;
		r->samples = s->samples;
		r->norm_cost = s->norm_cost;
		r->pid = s->k.pid;
		r->event = s->k.event;
		r->numa_node = s->k.numa_node;
		r->dir = s->k.dir;
		r->iclass = s->k.iclass;
		r->user_mode = s->k.user_mode;
		s->samples = 0;
	}
	w->nrows = a->nused;
	uint32_t nf = 0;
	if (a->nflows) {
		for (uint32_t i = 0; i < a->fcap; i++) {
			if (!a->flows[i].flow_id)
				continue;
			w->flows[nf].flow_id = a->flows[i].flow_id;
			w->flows[nf].tuple = a->flows[i].tuple;
			nf++;
			a->flows[i].flow_id = 0;
		}
	}
	w->nflows = nf;
	w->c.agg_degraded = a->degraded;
	w->c.agg_dropped = a->dropped;
	w->c.flows_overflow = a->flows_overflow;
	a->nused = a->nfull = a->ncoarse = a->nflows = 0;
	a->samples = a->degraded = a->dropped = a->flows_overflow = 0;
	return w;
}

uint32_t aggregator_rows(const struct aggregator *a)
{
	return a->nused;
}

uint64_t aggregator_samples(const struct aggregator *a)
{
	return a->samples;
}
