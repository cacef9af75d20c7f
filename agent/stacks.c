/* stacks: see stacks.h.
 * Per window: an open-addressing map from (raw pair, pid) to the dictionary entry, so each
 * distinct pair costs two map lookups and one symbolizer lookup per frame, once. */
#include "stacks.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer.h"
#include "window.h"

#define STACKS_BAD_ID 0x80000000u /* ids at or above: negative errno from bpf_get_stackid */

struct stacks {
	struct stacks_opts o;
	uint32_t *last_seen;      /* per map id: window count + 1 when last referenced, 0 = never */
	uint32_t nseen;           /* ids with last_seen != 0 */
	uint32_t windows;
	struct stacks_stats st;
};

static int bpf_lookup(void *ctx, uint32_t id, uint64_t *ips)
{
	return bpf_map_lookup_elem((int)(intptr_t)ctx, &id, ips) < 0 ? -ENOENT : 0;
}

static int bpf_drop(void *ctx, uint32_t id)
{
	return bpf_map_delete_elem((int)(intptr_t)ctx, &id) < 0 ? -errno : 0;
}

const struct stacks_ops stacks_bpf_ops = { .lookup = bpf_lookup, .drop = bpf_drop };

int stacks_new(const struct stacks_opts *opts, struct stacks **ret)
{
	struct stacks *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->o = *opts;
	if (!st->o.ops)
		st->o.ops = &stacks_bpf_ops;
	if (!st->o.map_entries)
		st->o.map_entries = 16384;
	if (!st->o.max_stacks)
		st->o.max_stacks = 4096;
	if (!st->o.idle_windows)
		st->o.idle_windows = 8;
	if (st->o.map_entries > (1u << 24) || !st->o.sym) {
		free(st);
		return -EINVAL;
	}
	st->last_seen = calloc(st->o.map_entries, sizeof(*st->last_seen));
	if (!st->last_seen) {
		free(st);
		return -ENOMEM;
	}
	*ret = st;
	return 0;
}

struct stacks *stacks_free(struct stacks *st)
{
	if (!st)
		return NULL;
	free(st->last_seen);
	free(st);
	return NULL;
}

void stacks_stats(const struct stacks *st, struct stacks_stats *ret)
{
	*ret = st->st;
}

static void seen(struct stacks *st, uint32_t id)
{
	if (id >= st->o.map_entries)
		return;
	if (!st->last_seen[id])
		st->nseen++;
	st->last_seen[id] = st->windows + 1;
}

/* The function joins the window's dictionary (one entry per id; linear check, once per
 * distinct stack and frame). */
static void add_name(struct window *w, const struct sym_result *r, bool *nomem)
{
	if (window_find_func(w, r->func_id))
		return;
	struct window_func *f = realloc(w->funcs, ((size_t)w->nfuncs + 1) * sizeof(*f));
	if (!f) {
		*nomem = true;
		return;
	}
	w->funcs = f;
	f = &w->funcs[w->nfuncs++];
	memset(f, 0, sizeof(*f));
	f->func_id = r->func_id;
	memcpy(f->name, r->name, sizeof(f->name));
	memcpy(f->module, r->module, sizeof(f->module));
}

/* Frames of id into func[], symbolized and named in w; returns the count (0 when missing). */
static uint32_t read_frames(struct stacks *st, struct window *w, uint32_t id, uint32_t pid, bool user, uint64_t *func,
			    uint32_t room, bool *nomem)
{
	uint64_t ips[STACKS_MAP_FRAMES];
	st->st.ids_read++;
	if (st->o.ops->lookup(st->o.ctx, id, ips) < 0) {
		st->st.ids_missing++;
		return 0;
	}
	seen(st, id);
	uint32_t n = 0;
	for (uint32_t i = 0; i < STACKS_MAP_FRAMES && ips[i] && n < room; i++) {
		struct sym_result r;
		/* outer frames are return addresses: the call is the instruction before */
		uint64_t ip = i ? ips[i] - 1 : ips[i];
		if (symbolizer_resolve(st->o.sym, user ? pid : 0, ip, user, &r) < 0 || !r.func_id)
			continue;
		func[n++] = r.func_id;
		add_name(w, &r, nomem);
	}
	return n;
}

struct slot {
	uint64_t raw;
	uint32_t pid;
	uint32_t idx;     /* dictionary index + 1; 0 = empty slot */
	uint64_t stable;  /* WINDOW_NO_STACK when unresolvable */
};

static uint64_t stable_id(const uint64_t *func, uint32_t nk, uint32_t nu)
{
	uint64_t h = SYMBOLIZER_FNV_SEED, zero = 0;
	for (uint32_t i = 0; i < nk; i++)
		h = symbolizer_fnv1a64(h, &func[i], 8);
	h = symbolizer_fnv1a64(h, &zero, 8);
	for (uint32_t i = 0; i < nu; i++)
		h = symbolizer_fnv1a64(h, &func[nk + i], 8);
	return h && h != WINDOW_NO_STACK ? h : 1;
}

/* Resolves one (raw, pid) to its stable id, adding the dictionary entry the first time. */
static uint64_t resolve(struct stacks *st, struct window *w, struct slot *map, uint32_t cap, uint64_t raw,
			uint32_t pid, bool *nomem)
{
	if (raw == WINDOW_NO_STACK)
		return raw;
	uint32_t i = (uint32_t)ms_mix64(raw ^ ((uint64_t)pid << 17)) & (cap - 1);
	while (map[i].idx && !(map[i].raw == raw && map[i].pid == pid))
		i = (i + 1) & (cap - 1);
	if (map[i].idx)
		return map[i].stable;
	map[i] = (struct slot){ .raw = raw, .pid = pid, .idx = 1, .stable = WINDOW_NO_STACK };
	uint32_t uid = (uint32_t)(raw >> 32), kid = (uint32_t)raw;
	struct window_stack s = { 0 };
	if (kid < STACKS_BAD_ID)
		s.nkernel = (uint16_t)read_frames(st, w, kid, pid, false, s.func, WINDOW_STACK_FRAMES, nomem);
	if (uid < STACKS_BAD_ID)
		s.nuser = (uint16_t)read_frames(st, w, uid, pid, true, s.func + s.nkernel,
						 WINDOW_STACK_FRAMES - s.nkernel, nomem);
	if (!s.nkernel && !s.nuser)
		return WINDOW_NO_STACK;
	s.stack_id = stable_id(s.func, s.nkernel, s.nuser);
	map[i].stable = s.stack_id;
	for (uint32_t k = 0; k < w->nstacks; k++)
		if (w->stacks[k].stack_id == s.stack_id)
			return s.stack_id; /* same chain through other addresses */
	if (w->nstacks >= st->o.max_stacks) {
		st->st.overflow++;
		map[i].stable = WINDOW_NO_STACK;
		return WINDOW_NO_STACK;
	}
	if (!w->stacks && !(w->stacks = calloc(st->o.max_stacks, sizeof(*w->stacks)))) {
		*nomem = true;
		map[i].stable = WINDOW_NO_STACK;
		return WINDOW_NO_STACK;
	}
	w->stacks[w->nstacks++] = s;
	st->st.stacks++;
	return s.stack_id;
}

/* Frees map entries no window referenced for idle_windows once half the map is tracked. */
static void reclaim(struct stacks *st)
{
	if (st->nseen < st->o.map_entries / 2)
		return;
	for (uint32_t id = 0; id < st->o.map_entries; id++) {
		uint32_t ls = st->last_seen[id];
		if (!ls || st->windows + 1 - ls < st->o.idle_windows)
			continue;
		if (st->o.ops->drop(st->o.ctx, id) == 0)
			st->st.reclaimed++;
		st->last_seen[id] = 0;
		st->nseen--;
	}
}

int stacks_window(struct stacks *st, struct window *w)
{
	uint32_t cap = 16;
	while (cap < 2 * (w->nrows + w->naddrs) + 2)
		cap <<= 1;
	struct slot *map = calloc(cap, sizeof(*map));
	if (!map)
		return -ENOMEM;
	bool nomem = false;
	for (uint32_t i = 0; i < w->nrows; i++) {
		struct window_row *r = &w->rows[i];
		r->stack_id = resolve(st, w, map, cap, r->stack_id, r->pid, &nomem);
	}
	for (uint32_t i = 0; i < w->naddrs; i++) {
		struct window_addr *a = &w->addrs[i];
		a->stack_id = resolve(st, w, map, cap, a->stack_id, a->user_mode ? a->pid : 0, &nomem);
	}
	free(map);
	st->windows++;
	reclaim(st);
	return nomem ? -ENOMEM : 0;
}
