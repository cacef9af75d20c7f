/* symbolizer: caches and lookup order over procmaps, elfsym, perfmap and kallsyms (see
 * symbolizer.h). Caches are fixed slot arrays with a chained hash index; eviction scans the
 * slots for the least recently used one, O(slots), which only happens on a miss that is about
 * to read a file anyway (tens of microseconds), so a hit never maintains LRU lists. */
#include "symbolizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "elfsym.h"
#include "kallsyms.h"
#include "perfmap.h"
#include "procmaps.h"

#define NIL UINT32_MAX
#define MS_NS 1000000ull

/* Counters have one writer (the worker); relaxed loads and stores give stats() readers on other
 * threads untorn values without a locked instruction per lookup. */
#define STAT_ADD(s, f, v) __atomic_store_n(&(s)->st.f, __atomic_load_n(&(s)->st.f, __ATOMIC_RELAXED) + (v), __ATOMIC_RELAXED)
#define STAT_SET(s, f, v) __atomic_store_n(&(s)->st.f, (v), __ATOMIC_RELAXED)

/* (a, b) -> slot of a fixed slot array: chained hash, about one bucket per slot. */
struct kidx {
	uint32_t *head, *next; /* next[slot] */
	uint64_t (*key)[2];    /* key[slot] */
	uint32_t mask;
};

/* A loaded table; slots whose files share a build-id share it. */
struct elfobj {
	struct elfsym *es;
	uint32_t refs;
	size_t bytes;
	char key[2 * ELFSYM_BUILD_ID_MAX + 1]; /* build-id hex, "" when none */
	uint64_t oid;                          /* object id of key, computed once */
};

struct elfslot {
	uint8_t used;
	uint64_t last_used; /* s->tick of the last lookup */
	uint64_t dev, ino;
	struct elfobj *obj; /* NULL: the load failed at failed_ns */
	uint64_t failed_ns;
	uint8_t bid[ELFSYM_BUILD_ID_MAX];
	size_t bid_len;
};

struct proc {
	uint8_t used;
	uint64_t last_used;
	uint32_t pid;
	struct procmaps *maps; /* NULL: unreadable at maps_ns */
	uint64_t maps_ns;
	struct perfmap *pm;
	uint64_t pm_ns;        /* last JIT map check, 0: never */
};

struct symbolizer {
	struct symbolizer_opts o;
	char *strs[4];            /* owned copies of o's strings */
	struct proc *procs;
	struct elfslot *elfs;
	struct kidx pidx, didx;   /* pid -> procs slot, (dev, inode) -> elfs slot */
	uint64_t tick, bytes;
	bool loaded;              /* this lookup read a file */
	const struct proc *cur;   /* the process being resolved: never evicted meanwhile */
	struct kallsyms *ks;
	bool ks_tried;
	struct perfmap_registry *reg;
	struct symbolizer_stats st;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int kidx_init(struct kidx *x, uint32_t slots)
{
	uint32_t cap = 16;
	while (cap < slots)
		cap <<= 1;
	x->mask = cap - 1;
	x->head = malloc(cap * sizeof(*x->head));
	x->next = malloc(slots * sizeof(*x->next));
	x->key = malloc(slots * sizeof(*x->key));
	if (!x->head || !x->next || !x->key)
		return -ENOMEM;
	memset(x->head, 0xff, cap * sizeof(*x->head));
	return 0;
}

static uint32_t *kidx_bucket(const struct kidx *x, uint64_t a, uint64_t b)
{
	uint64_t z = (a * 0x9e3779b97f4a7c15ull) ^ b; /* splitmix64 finaliser */
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return &x->head[(z ^ (z >> 31)) & x->mask];
}

static uint32_t kidx_get(const struct kidx *x, uint64_t a, uint64_t b)
{
	uint32_t i = *kidx_bucket(x, a, b);
	while (i != NIL && (x->key[i][0] != a || x->key[i][1] != b))
		i = x->next[i];
	return i;
}

static void kidx_put(struct kidx *x, uint64_t a, uint64_t b, uint32_t slot)
{
	uint32_t *h = kidx_bucket(x, a, b);
	x->key[slot][0] = a;
	x->key[slot][1] = b;
	x->next[slot] = *h;
	*h = slot;
}

static void kidx_del(struct kidx *x, uint32_t slot)
{
	uint32_t *pp = kidx_bucket(x, x->key[slot][0], x->key[slot][1]);
	while (*pp != NIL && *pp != slot)
		pp = &x->next[*pp];
	if (*pp == slot)
		*pp = x->next[slot];
}

static void elf_evict(struct symbolizer *s, uint32_t i)
{
	struct elfslot *sl = &s->elfs[i];
	kidx_del(&s->didx, i);
	if (sl->obj && --sl->obj->refs == 0) {
		s->bytes -= sl->obj->bytes;
		elfsym_free(sl->obj->es);
		free(sl->obj);
	}
	memset(sl, 0, sizeof(*sl));
}

static void proc_clear(struct symbolizer *s, struct proc *p)
{
	s->bytes -= (p->maps ? procmaps_mem_bytes(p->maps) : 0) + (p->pm ? perfmap_mem_bytes(p->pm) : 0);
	procmaps_free(p->maps);
	perfmap_free(p->pm);
	kidx_del(&s->pidx, (uint32_t)(p - s->procs));
	memset(p, 0, sizeof(*p));
}

/* Evicts LRU tables (never s->cur's, nor ELF slot keep) until the byte budget holds. */
static void enforce_budget(struct symbolizer *s, uint32_t keep)
{
	while (s->bytes > s->o.max_bytes) {
		uint32_t elf = NIL, proc = NIL;
		for (uint32_t i = 0; i < s->o.max_elf_files; i++)
			if (s->elfs[i].obj && i != keep && (elf == NIL || s->elfs[i].last_used < s->elfs[elf].last_used))
				elf = i;
		for (uint32_t i = 0; i < s->o.max_pids; i++)
			if ((s->procs[i].maps || s->procs[i].pm) && &s->procs[i] != s->cur &&
			    (proc == NIL || s->procs[i].last_used < s->procs[proc].last_used))
				proc = i;
		if (proc != NIL && (elf == NIL || s->procs[proc].last_used < s->elfs[elf].last_used)) {
			proc_clear(s, &s->procs[proc]);
			STAT_ADD(s, pid_evictions, 1);
		} else if (elf != NIL) {
			elf_evict(s, elf);
			STAT_ADD(s, elf_evictions, 1);
		} else {
			return;
		}
	}
}

/* Loads the table behind an open file into slot i, or shares the one with its build-id. */
static void elf_fill(struct symbolizer *s, uint32_t i, int fd)
{
	struct elfslot *sl = &s->elfs[i];
	if (elfsym_read_build_id(fd, sl->bid, &sl->bid_len) < 0)
		return;
	/* The same build-id under another (dev, inode), e.g. another container image's copy.
	 * A scan of the slots, on a path that is reading ELF headers anyway. */
	for (uint32_t k = 0; sl->bid_len && k < s->o.max_elf_files; k++) {
		const struct elfslot *o = &s->elfs[k];
		if (k != i && o->obj && o->bid_len == sl->bid_len && memcmp(o->bid, sl->bid, sl->bid_len) == 0) {
			sl->obj = o->obj;
			sl->obj->refs++;
			STAT_ADD(s, elf_shared, 1);
			return;
		}
	}
	struct elfobj *o = calloc(1, sizeof(*o));
	struct elfsym_opts eo = { .debug_dir = s->o.debug_dir };
	/* a table over the whole budget would evict everything and still not fit */
	if (!o || elfsym_open_fd(fd, &eo, &o->es) < 0 || sizeof(*o) + elfsym_mem_bytes(o->es) > s->o.max_bytes) {
		elfsym_free(o ? o->es : NULL);
		free(o);
		return;
	}
	o->refs = 1;
	o->bytes = sizeof(*o) + elfsym_mem_bytes(o->es);
	for (size_t k = 0; k < sl->bid_len; k++)
		snprintf(o->key + 2 * k, 3, "%02x", sl->bid[k]);
	o->oid = symbolizer_object_id(o->key);
	s->bytes += o->bytes;
	sl->obj = o;
	STAT_ADD(s, elf_loads, 1);
}

/* The table of the file behind mapping m of pid, from the cache or loaded; NULL if none. */
static struct elfobj *elf_get(struct symbolizer *s, uint32_t pid, const struct procmaps_entry *m)
{
	uint64_t dev = (uint64_t)m->dev_major << 32 | m->dev_minor;
	uint32_t i = kidx_get(&s->didx, dev, m->inode);
	if (i != NIL) {
		s->elfs[i].last_used = ++s->tick;
		if (s->elfs[i].obj || now_ns() - s->elfs[i].failed_ns < s->o.retry_ms * MS_NS)
			return s->elfs[i].obj;
		elf_evict(s, i); /* failed long enough ago: try again */
	}
	uint32_t lru = 0;
	for (i = 0; i < s->o.max_elf_files && s->elfs[i].used; i++)
		if (s->elfs[i].last_used < s->elfs[lru].last_used)
			lru = i;
	if (i == s->o.max_elf_files) {
		elf_evict(s, i = lru);
		STAT_ADD(s, elf_evictions, 1);
	}
	struct elfslot *sl = &s->elfs[i];
	*sl = (struct elfslot){ .used = 1, .last_used = ++s->tick, .dev = dev, .ino = m->inode };
	kidx_put(&s->didx, dev, m->inode, i);
	s->loaded = true;
	int fd;
	if (procmaps_open_file(s->o.proc_root, pid, m, &fd) == 0) {
		elf_fill(s, i, fd);
		close(fd);
	}
	if (!sl->obj) {
		sl->failed_ns = now_ns();
		STAT_ADD(s, elf_failures, 1);
		return NULL;
	}
	enforce_budget(s, i);
	return sl->obj;
}

static void proc_load_maps(struct symbolizer *s, struct proc *p)
{
	if (p->maps)
		s->bytes -= procmaps_mem_bytes(p->maps);
	p->maps = procmaps_free(p->maps);
	s->loaded = true;
	p->maps_ns = now_ns();
	STAT_ADD(s, maps_loads, 1);
	if (procmaps_load(s->o.proc_root, p->pid, 0, &p->maps) < 0) {
		p->maps = NULL;
		STAT_ADD(s, maps_failures, 1);
		return;
	}
	s->bytes += procmaps_mem_bytes(p->maps);
	enforce_budget(s, NIL);
}

/* The cache entry of pid, created (maps read) on first use; s->cur is set to it. */
static struct proc *proc_get(struct symbolizer *s, uint32_t pid)
{
	uint32_t i = kidx_get(&s->pidx, pid, 0), lru = 0;
	struct proc *p;
	if (i != NIL) {
		p = &s->procs[i];
		p->last_used = ++s->tick;
		s->cur = p;
		if (!p->maps && now_ns() - p->maps_ns >= s->o.retry_ms * MS_NS)
			proc_load_maps(s, p);
		return p;
	}
	for (i = 0; i < s->o.max_pids && s->procs[i].used; i++)
		if (s->procs[i].last_used < s->procs[lru].last_used)
			lru = i;
	if (i == s->o.max_pids) {
		proc_clear(s, &s->procs[i = lru]);
		STAT_ADD(s, pid_evictions, 1);
	}
	p = &s->procs[i];
	*p = (struct proc){ .used = 1, .last_used = ++s->tick, .pid = pid };
	kidx_put(&s->pidx, pid, 0, i);
	s->cur = p;
	proc_load_maps(s, p);
	return p;
}

/* The JIT map of p, re-read when it changed (looked at most every perfmap_check_ms). */
static const struct perfmap *proc_perfmap(struct symbolizer *s, struct proc *p)
{
	uint64_t now = now_ns();
	if (p->pm_ns && now - p->pm_ns < s->o.perfmap_check_ms * MS_NS)
		return p->pm;
	p->pm_ns = now;
	char path[512], proc[512];
	struct stat pst;
	snprintf(path, sizeof(path), "%s/perf-%u.map", s->o.perfmap_dir, p->pid);
	snprintf(proc, sizeof(proc), "%s/%u", s->o.proc_root, p->pid);
	if (p->pm)
		s->bytes -= perfmap_mem_bytes(p->pm);
	int r = stat(proc, &pst) < 0 ? -errno : perfmap_refresh(&p->pm, path, pst.st_uid, NULL);
	if (r < 0) {
		p->pm = perfmap_free(p->pm);
		if (r != -ENOENT)
			STAT_ADD(s, perfmap_failures, 1);
		return NULL;
	}
	s->loaded |= r == 1;
	STAT_ADD(s, perfmap_loads, r == 1);
	s->bytes += perfmap_mem_bytes(p->pm);
	enforce_budget(s, NIL);
	return p->pm;
}

/* Bounded copy; snprintf's format parsing would be a third of a cached lookup. */
static void put_str(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* oid = symbolizer_object_id(key); func_id continues that hash with "\0" + name. */
static void found(struct sym_result *r, uint64_t oid, const char *name, const char *module, uint64_t off)
{
	put_str(r->name, sizeof(r->name), name);
	put_str(r->module, sizeof(r->module), module);
	r->offset = off;
	r->resolved = 1;
	r->object_id = oid;
	r->func_id = symbolizer_fnv1a64(symbolizer_fnv1a64(oid, "", 1), name, strlen(name));
}

/* Unresolved: named "module+0xoff" (named_off) or "[unknown]", with the id of off's page. */
static void not_found(struct sym_result *r, uint64_t oid, const char *module, uint64_t off, bool named_off)
{
	char page[32];
	snprintf(page, sizeof(page), "+0x%llx", (unsigned long long)(off & ~0xfffull));
	found(r, oid, page, module, off);
	if (named_off)
		snprintf(r->name, sizeof(r->name), "%s+0x%llx", module, (unsigned long long)off);
	else
		snprintf(r->name, sizeof(r->name), "[unknown]");
	r->resolved = 0;
}

static bool region_find(struct symbolizer *s, uint32_t pid, uint8_t cls, uint64_t addr, struct sym_result *r)
{
	struct perfmap_region g;
	if (perfmap_registry_find(s->reg, pid, cls, addr, &g) < 0)
		return false;
	found(r, symbolizer_object_id(g.module), g.name, g.module, addr - g.start);
	return true;
}

/* file_off = addr - start + pgoff; the PT_LOAD holding file_off gives the ELF virtual address;
 * the symbol table gives the symbol. The same for PIE, shared objects and fixed executables. */
static void resolve_file(struct symbolizer *s, uint32_t pid, const struct procmaps_entry *m, uint64_t addr,
			 bool data, struct sym_result *r)
{
	const char *base = procmaps_name(m);
	struct elfobj *o = elf_get(s, pid, m);
	uint64_t oid = o && o->key[0] ? o->oid : symbolizer_object_id(base);
	uint64_t off = addr - m->start + m->pgoff, va;
	struct elfsym_hit h;
	if (!o || elfsym_file_to_vaddr(o->es, off, data, &va) < 0)
		not_found(r, oid, base, off, true);
	else if (elfsym_lookup(o->es, data ? ELFSYM_DATA : ELFSYM_FUNC, va, &h) < 0)
		not_found(r, oid, base, va, true);
	else
		found(r, oid, h.name, base, va - h.start);
}

static void resolve_kernel(struct symbolizer *s, uint64_t ip, struct sym_result *r)
{
	STAT_ADD(s, kernel_lookups, 1);
	if (!s->ks_tried) { /* once: a kernel's symbols do not change (modules aside) */
		s->ks_tried = true;
		s->loaded = true;
		if (kallsyms_load(s->o.kallsyms_path, 0, &s->ks) == 0) {
			s->bytes += kallsyms_mem_bytes(s->ks);
			STAT_SET(s, kallsyms_loaded, 1);
			STAT_SET(s, kallsyms_restricted, kallsyms_restricted(s->ks) ? 1 : 0);
		}
	}
	struct kallsyms_hit h;
	if (s->ks && kallsyms_lookup(s->ks, ip, &h) == 0)
		found(r, symbolizer_object_id("[kernel]"), h.name, "[kernel]", ip - h.start);
	else
		not_found(r, symbolizer_object_id("[kernel]"), "[kernel]", ip, false);
}

static int finish(struct symbolizer *s, struct sym_result *r)
{
	STAT_ADD(s, lookups, 1);
	STAT_ADD(s, resolved, r->resolved);
	STAT_ADD(s, unresolved, !r->resolved);
	STAT_ADD(s, misses, s->loaded);
	STAT_ADD(s, hits, !s->loaded);
	STAT_SET(s, bytes, s->bytes);
	return 0;
}

/* The mapping of addr; maps are re-read (rate-limited) when no mapping contains it, and when the
 * last read failed (a process caught while it exec'd, or under memory pressure: without the
 * retry every later sample of that pid stayed [unknown]). */
static const struct procmaps_entry *find_map(struct symbolizer *s, struct proc *p, uint64_t addr, size_t *ret_idx)
{
	const struct procmaps_entry *m = p->maps ? procmaps_find(p->maps, addr, ret_idx) : NULL;
	if (!m && now_ns() - p->maps_ns >= s->o.maps_refresh_ms * MS_NS) {
		proc_load_maps(s, p);
		m = p->maps ? procmaps_find(p->maps, addr, ret_idx) : NULL;
	}
	return m;
}

int symbolizer_resolve(struct symbolizer *s, uint32_t pid, uint64_t ip, bool user_mode, struct sym_result *ret)
{
	if (!s || !ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	s->loaded = false;
	if (!user_mode) {
		resolve_kernel(s, ip, ret);
		return finish(s, ret);
	}
	if (region_find(s, pid, 0, ip, ret))
		return finish(s, ret);
	struct proc *p = proc_get(s, pid);
	size_t idx;
	const struct procmaps_entry *m = find_map(s, p, ip, &idx);
	if (m && m->kind == PROCMAPS_FILE) {
		resolve_file(s, pid, m, ip, false, ret);
		return finish(s, ret);
	}
	/* JIT code lives in anonymous memory (or in memory mapped after our maps snapshot). */
	const struct perfmap *pm = proc_perfmap(s, p);
	const char *mod = m ? procmaps_name(m) : "[unknown]";
	struct perfmap_hit h;
	if (pm && perfmap_lookup(pm, ip, &h) == 0)
		found(ret, symbolizer_object_id("[jit]"), h.name, "[jit]", ip - h.start);
	else
		not_found(ret, symbolizer_object_id(mod), mod, ip, false);
	return finish(s, ret);
}

int symbolizer_resolve_data(struct symbolizer *s, uint32_t pid, uint64_t addr, struct sym_result *ret)
{
	if (!s || !ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	s->loaded = false;
	if (region_find(s, pid, 1, addr, ret))
		return finish(s, ret);
	struct proc *p = proc_get(s, pid);
	size_t idx = 0;
	const struct procmaps_entry *m = find_map(s, p, addr, &idx);
	const struct procmaps_entry *f = m ? procmaps_data_file(p->maps, idx) : NULL;
	if (f) {
		resolve_file(s, pid, f, addr, true, ret);
		if (ret->resolved || m == f)
			return finish(s, ret);
	}
	if (!m) {
		not_found(ret, symbolizer_object_id("[unknown]"), "[unknown]", addr, false);
		return finish(s, ret);
	}
	/* the mapping names the object: "[heap]", "[stack]", "[vdso]", or "anon:<start>" */
	char nm[48];
	const char *mod = procmaps_name(m);
	snprintf(nm, sizeof(nm), "anon:%llx", (unsigned long long)m->start);
	found(ret, symbolizer_object_id(mod), m->kind == PROCMAPS_ANON ? nm : mod, mod, addr - m->start);
	ret->resolved = 0;
	return finish(s, ret);
}

static int region_add(struct symbolizer *s, uint32_t pid, uint8_t cls, uint64_t start, uint64_t len,
		      const char *name, const char *module)
{
	if (!s)
		return -EINVAL;
	int r = perfmap_registry_put(s->reg, pid, cls, start, len, name, module);
	if (r == -ENOSPC) /* API threads, not the worker: a real atomic add */
		__atomic_fetch_add(&s->st.region_drops, 1, __ATOMIC_RELAXED);
	return r;
}

int symbolizer_register_region(struct symbolizer *s, uint32_t pid, uint64_t start, uint64_t len,
			       const char *name, const char *module)
{
	return region_add(s, pid, 0, start, len, name, module && module[0] ? module : "[jit]");
}

int symbolizer_register_data(struct symbolizer *s, uint32_t pid, uint64_t start, uint64_t len, const char *name)
{
	return region_add(s, pid, 1, start, len, name, "[data]");
}

void symbolizer_forget_pid(struct symbolizer *s, uint32_t pid)
{
	if (!s)
		return;
	uint32_t i = kidx_get(&s->pidx, pid, 0);
	if (i != NIL)
		proc_clear(s, &s->procs[i]);
	STAT_SET(s, bytes, s->bytes);
	perfmap_registry_forget(s->reg, pid);
}

static bool pid_gone(const struct symbolizer *s, uint32_t pid)
{
	char path[300];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%u", s->o.proc_root, pid);
	return stat(path, &st) < 0 && errno == ENOENT;
}

size_t symbolizer_sweep_exited(struct symbolizer *s, uint32_t *ret_pids, size_t max)
{
	if (!s)
		return 0;
	size_t n = 0;
	for (uint32_t i = 0; i < s->o.max_pids; i++) {
		uint32_t pid = s->procs[i].pid;
		if (!s->procs[i].used || !pid_gone(s, pid))
			continue;
		symbolizer_forget_pid(s, pid);
		if (ret_pids && n < max)
			ret_pids[n] = pid;
		n++;
	}
	/* registered but never sampled processes hold regions too */
	size_t cap = perfmap_registry_count(s->reg);
	uint32_t *pids = cap ? malloc(cap * sizeof(*pids)) : NULL;
	size_t np = pids ? perfmap_registry_pids(s->reg, pids, cap) : 0;
	for (size_t i = 0; i < np; i++) {
		if (!pid_gone(s, pids[i]))
			continue;
		perfmap_registry_forget(s->reg, pids[i]);
		if (ret_pids && n < max)
			ret_pids[n] = pids[i];
		n++;
	}
	free(pids);
	return n;
}

void symbolizer_stats(const struct symbolizer *s, struct symbolizer_stats *ret)
{
	const struct symbolizer_stats *st = &s->st;
	memset(ret, 0, sizeof(*ret));
#define LD(f) ret->f = __atomic_load_n(&st->f, __ATOMIC_RELAXED)
	LD(lookups); LD(resolved); LD(unresolved); LD(hits); LD(misses); LD(pid_evictions);
	LD(elf_evictions); LD(maps_loads); LD(maps_failures); LD(elf_loads); LD(elf_failures);
	LD(elf_shared); LD(perfmap_loads); LD(perfmap_failures); LD(kernel_lookups); LD(region_drops);
	LD(bytes); LD(kallsyms_loaded); LD(kallsyms_restricted);
#undef LD
	ret->evictions = ret->pid_evictions + ret->elf_evictions;
	ret->regions = perfmap_registry_count(s->reg);
	/* occupancy: exact for the owner thread, a recent value for others */
	for (uint32_t i = 0; i < s->o.max_pids; i++)
		ret->pids += __atomic_load_n(&s->procs[i].used, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < s->o.max_elf_files; i++)
		ret->elf_files += __atomic_load_n(&s->elfs[i].used, __ATOMIC_RELAXED);
}

#define DEFAULT(f, v) (o->f = o->f ? o->f : (v))

int symbolizer_new(const struct symbolizer_opts *opts, struct symbolizer **ret_sym)
{
	struct symbolizer *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	struct symbolizer_opts *o = &s->o;
	if (opts)
		*o = *opts;
	DEFAULT(max_pids, 1024);
	DEFAULT(max_elf_files, 256);
	DEFAULT(max_bytes, 512ull << 20);
	DEFAULT(max_regions, 65536);
	DEFAULT(maps_refresh_ms, 1000);
	DEFAULT(perfmap_check_ms, 1000);
	DEFAULT(retry_ms, 30000);
	const char **strs[4] = { &o->proc_root, &o->kallsyms_path, &o->perfmap_dir, &o->debug_dir };
	static const char *const defs[4] = { "/proc", "/proc/kallsyms", "/tmp", "/usr/lib/debug" };
	int r = o->max_pids > (1u << 24) || o->max_elf_files > (1u << 24) ? -EINVAL : 0;
	for (int i = 0; i < 4 && r == 0; i++) {
		s->strs[i] = strdup(*strs[i] ? *strs[i] : defs[i]);
		*strs[i] = s->strs[i];
		r = s->strs[i] ? 0 : -ENOMEM;
	}
	if (r == 0 && (!(s->procs = calloc(o->max_pids, sizeof(*s->procs))) ||
		       !(s->elfs = calloc(o->max_elf_files, sizeof(*s->elfs))) ||
		       kidx_init(&s->pidx, o->max_pids) < 0 || kidx_init(&s->didx, o->max_elf_files) < 0))
		r = -ENOMEM;
	if (r == 0)
		r = perfmap_registry_new(o->max_regions, &s->reg);
	if (r < 0) {
		symbolizer_free(s);
		return r;
	}
	*ret_sym = s;
	return 0;
}

struct symbolizer *symbolizer_free(struct symbolizer *s)
{
	if (!s)
		return NULL;
	for (uint32_t i = 0; s->procs && i < s->o.max_pids; i++)
		if (s->procs[i].used)
			proc_clear(s, &s->procs[i]);
	for (uint32_t i = 0; s->elfs && i < s->o.max_elf_files; i++)
		if (s->elfs[i].used)
			elf_evict(s, i);
	kallsyms_free(s->ks);
	perfmap_registry_free(s->reg);
	struct kidx *x[2] = { &s->pidx, &s->didx };
	for (int i = 0; i < 2; i++) {
		free(x[i]->head);
		free(x[i]->next);
		free(x[i]->key);
	}
	free(s->procs);
	free(s->elfs);
	for (int i = 0; i < 4; i++)
		free(s->strs[i]);
	free(s);
	return NULL;
}
