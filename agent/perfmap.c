/* perfmap: JIT symbol map parser (see perfmap.h). */
#include "perfmap.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Overlap resolution looks back this many entries from the nearest start: bounded work per
 * lookup; an older entry longer than 16 later-starting ones is not seen (fine for JITs, whose
 * reused regions are replaced by entries at the same or nearby starts). */
#define LOOKBACK 16

struct pent {
	uint64_t start, size;
	uint32_t name_off;
	uint32_t seq; /* line order: later lines win */
};

struct perfmap {
	struct pent *ents;
	size_t n, cap;
	char *pool;
	size_t pool_len, pool_cap;
	size_t bad;
	struct perfmap_stamp stamp;
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int take_hex(const char **p, const char *end, uint64_t *ret)
{
	if (end - *p >= 2 && (*p)[0] == '0' && ((*p)[1] == 'x' || (*p)[1] == 'X'))
		*p += 2;
	uint64_t v = 0;
	unsigned n = 0;
	int d;
	while (*p < end && (d = hexval(**p)) >= 0) {
		if (++n > 16)
			return -EINVAL;
		v = v << 4 | (uint64_t)d;
		(*p)++;
	}
	if (n == 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int take_spaces(const char **p, const char *end)
{
	if (*p >= end || **p != ' ')
		return -EINVAL;
	while (*p < end && **p == ' ')
		(*p)++;
	return 0;
}

int perfmap_parse_line(const char *line, size_t len, uint64_t *ret_start, uint64_t *ret_size,
		       const char **ret_name, size_t *ret_name_len)
{
	if (len > PERFMAP_LINE_MAX || memchr(line, '\0', len))
		return -EINVAL;
	const char *p = line, *end = line + len;
	uint64_t start, size;
	if (take_hex(&p, end, &start) || take_spaces(&p, end) || take_hex(&p, end, &size) ||
	    take_spaces(&p, end) || p == end)
		return -EINVAL;
	if (size == 0 || start > UINT64_MAX - size)
		return -EINVAL;
	*ret_start = start;
	*ret_size = size;
	*ret_name = p;
	*ret_name_len = (size_t)(end - p);
	return 0;
}

static int pool_add(struct perfmap *pm, const char *s, size_t len, uint32_t *ret_off)
{
	if (pm->pool_len + len + 1 > pm->pool_cap) {
		size_t cap = pm->pool_cap ? pm->pool_cap : 4096;
		while (cap < pm->pool_len + len + 1)
			cap *= 2;
		if (cap > UINT32_MAX)
			return -ENOSPC;
		char *np = realloc(pm->pool, cap);
		if (!np)
			return -ENOMEM;
		pm->pool = np;
		pm->pool_cap = cap;
	}
	memcpy(pm->pool + pm->pool_len, s, len);
	pm->pool[pm->pool_len + len] = '\0';
	*ret_off = (uint32_t)pm->pool_len;
	pm->pool_len += len + 1;
	return 0;
}

static int add(struct perfmap *pm, const char *line, size_t len)
{
	uint64_t start, size;
	const char *name;
	size_t nlen;
	if (perfmap_parse_line(line, len, &start, &size, &name, &nlen) < 0) {
		pm->bad++;
		return 0;
	}
	if (pm->n == pm->cap) {
		size_t cap = pm->cap ? pm->cap * 2 : 64;
		struct pent *ne = realloc(pm->ents, cap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		pm->ents = ne;
		pm->cap = cap;
	}
	struct pent *e = &pm->ents[pm->n];
	int r = pool_add(pm, name, nlen, &e->name_off);
	if (r < 0)
		return r;
	e->start = start;
	e->size = size;
	e->seq = (uint32_t)pm->n;
	pm->n++;
	return 0;
}

static int pent_cmp(const void *pa, const void *pb)
{
	const struct pent *a = pa, *b = pb;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

int perfmap_parse(const char *buf, size_t len, const struct perfmap_limits *lim, struct perfmap **ret_pm)
{
	size_t max = lim && lim->max_entries ? lim->max_entries : PERFMAP_DEFAULT_MAX_ENTRIES;
	if (max > UINT32_MAX)
		max = UINT32_MAX;
	struct perfmap *pm = calloc(1, sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	const char *p = buf, *end = buf + len;
	int r = 0;
	while (p < end && r == 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl || pm->n >= max) { /* partial last line, or over the bound */
			pm->bad++;
			if (!nl)
				break;
		} else {
			r = add(pm, p, (size_t)(nl - p));
		}
		p = nl + 1;
	}
	if (r == -ENOSPC)
		r = 0;
	if (r < 0) {
		perfmap_free(pm);
		return r;
	}
	if (pm->n > 1)
		qsort(pm->ents, pm->n, sizeof(*pm->ents), pent_cmp);
	*ret_pm = pm;
	return 0;
}

static void stamp_of(const struct stat *st, struct perfmap_stamp *s)
{
	s->dev = (uint64_t)st->st_dev;
	s->ino = (uint64_t)st->st_ino;
	s->size = (uint64_t)st->st_size;
	s->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	s->uid = st->st_uid;
}

int perfmap_stat(const char *path, struct perfmap_stamp *ret_stamp)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	stamp_of(&st, ret_stamp);
	return 0;
}

int perfmap_load(const char *path, const struct perfmap_limits *lim, struct perfmap **ret_pm)
{
	size_t max = lim && lim->max_bytes ? lim->max_bytes : PERFMAP_DEFAULT_MAX_BYTES;
	struct perfmap_stamp before;
	int r = perfmap_stat(path, &before); /* refuse FIFOs and devices before opening anything */
	if (r < 0)
		return r;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_ino != before.ino)
		r = -EINVAL;
	else if ((uint64_t)st.st_size > max)
		r = -EFBIG;
	else if (!(buf = malloc((size_t)st.st_size + 1)))
		r = -ENOMEM;
	/* Read what the stamp describes; lines appended meanwhile change the stamp and are read
	 * on the next reload. */
	while (r == 0 && len < (size_t)st.st_size) {
		ssize_t got = read(fd, buf + len, (size_t)st.st_size - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			r = -errno;
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	if (r == 0)
		r = perfmap_parse(buf ? buf : "", len, lim, ret_pm);
	if (r == 0)
		stamp_of(&st, &(*ret_pm)->stamp);
	free(buf);
	return r;
}

int perfmap_refresh(struct perfmap **pm, const char *path, uid_t owner, const struct perfmap_limits *lim)
{
	struct perfmap_stamp cur;
	int r = perfmap_stat(path, &cur);
	if (r == 0 && *pm && perfmap_stamp_equal(&(*pm)->stamp, &cur))
		return 0;
	*pm = perfmap_free(*pm);
	if (r == 0 && cur.uid != 0 && cur.uid != owner)
		r = -EPERM;
	if (r == 0 && (r = perfmap_load(path, lim, pm)) == 0 && (*pm)->stamp.uid != 0 && (*pm)->stamp.uid != owner)
		r = -EPERM; /* replaced between the stat and the open */
	if (r < 0)
		*pm = perfmap_free(*pm);
	return r < 0 ? r : 1;
}

void perfmap_get_stamp(const struct perfmap *pm, struct perfmap_stamp *ret_stamp)
{
	*ret_stamp = pm->stamp;
}

bool perfmap_stamp_equal(const struct perfmap_stamp *a, const struct perfmap_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns &&
	       a->uid == b->uid;
}

struct perfmap *perfmap_free(struct perfmap *pm)
{
	if (pm) {
		free(pm->ents);
		free(pm->pool);
		free(pm);
	}
	return NULL;
}

int perfmap_lookup(const struct perfmap *pm, uint64_t ip, struct perfmap_hit *ret_hit)
{
	size_t lo = 0, hi = pm->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pm->ents[mid].start <= ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	const struct pent *best = NULL;
	for (size_t i = lo, k = 0; i > 0 && k < LOOKBACK; i--, k++) {
		const struct pent *e = &pm->ents[i - 1];
		if (ip - e->start < e->size && (!best || e->seq > best->seq))
			best = e;
	}
	if (!best)
		return -ENOENT;
	ret_hit->name = pm->pool + best->name_off;
	ret_hit->start = best->start;
	ret_hit->size = best->size;
	return 0;
}

size_t perfmap_count(const struct perfmap *pm)
{
	return pm->n;
}

size_t perfmap_bad_lines(const struct perfmap *pm)
{
	return pm->bad;
}

size_t perfmap_mem_bytes(const struct perfmap *pm)
{
	return sizeof(*pm) + pm->cap * sizeof(*pm->ents) + pm->pool_cap;
}

struct reg_ent {
	uint32_t pid;
	uint8_t cls;
	struct perfmap_region r;
};

struct perfmap_registry {
	pthread_mutex_t mu; /* guards everything below */
	struct reg_ent *ents; /* sorted by (pid, cls, start), non-overlapping per (pid, cls) */
	size_t n, cap, max;
};

int perfmap_registry_new(size_t max_regions, struct perfmap_registry **ret_reg)
{
	struct perfmap_registry *reg = calloc(1, sizeof(*reg));
	if (!reg)
		return -ENOMEM;
	int r = -pthread_mutex_init(&reg->mu, NULL);
	if (r < 0) {
		free(reg);
		return r;
	}
	reg->max = max_regions;
	*ret_reg = reg;
	return 0;
}

struct perfmap_registry *perfmap_registry_free(struct perfmap_registry *reg)
{
	if (reg) {
		pthread_mutex_destroy(&reg->mu);
		free(reg->ents);
		free(reg);
	}
	return NULL;
}

static int reg_cmp(const struct reg_ent *e, uint32_t pid, uint8_t cls, uint64_t addr)
{
	if (e->pid != pid)
		return e->pid < pid ? -1 : 1;
	if (e->cls != cls)
		return e->cls < cls ? -1 : 1;
	return e->r.start < addr ? -1 : e->r.start > addr;
}

/* Number of entries ordered before (pid, cls, addr); or_equal: at or before. */
static size_t reg_pos(const struct perfmap_registry *reg, uint32_t pid, uint8_t cls, uint64_t addr, bool or_equal)
{
	size_t lo = 0, hi = reg->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = reg_cmp(&reg->ents[mid], pid, cls, addr);
		if (c < 0 || (or_equal && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int reg_room(struct perfmap_registry *reg, size_t n)
{
	if (n > reg->max)
		return -ENOSPC;
	if (n <= reg->cap)
		return 0;
	size_t cap = reg->cap ? reg->cap * 2 : 64;
	if (cap < n)
		cap = n;
	struct reg_ent *ne = realloc(reg->ents, cap * sizeof(*ne));
	if (!ne)
		return -ENOMEM;
	reg->ents = ne;
	reg->cap = cap;
	return 0;
}

int perfmap_registry_put(struct perfmap_registry *reg, uint32_t pid, uint8_t cls, uint64_t start, uint64_t len,
			 const char *name, const char *module)
{
	if (len == 0 || start > UINT64_MAX - len || !name || !name[0] || !module || !module[0])
		return -EINVAL;
	uint64_t end = start + len;
	pthread_mutex_lock(&reg->mu);
	size_t a = reg_pos(reg, pid, cls, start, false), b;
	const struct reg_ent *prev = a ? &reg->ents[a - 1] : NULL;
	if (prev && prev->pid == pid && prev->cls == cls && prev->r.start + prev->r.len > start)
		a--;
	for (b = a; b < reg->n && reg->ents[b].pid == pid && reg->ents[b].cls == cls && reg->ents[b].r.start < end; b++)
		; /* [a, b) overlap the new region and are replaced by it */
	size_t n = reg->n - (b - a) + 1;
	int r = reg_room(reg, n);
	if (r == 0) {
		memmove(&reg->ents[a + 1], &reg->ents[b], (reg->n - b) * sizeof(*reg->ents));
		struct reg_ent *e = &reg->ents[a];
		*e = (struct reg_ent){ .pid = pid, .cls = cls, .r = { .start = start, .len = len } };
		snprintf(e->r.name, sizeof(e->r.name), "%s", name);
		snprintf(e->r.module, sizeof(e->r.module), "%s", module);
		__atomic_store_n(&reg->n, n, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&reg->mu);
	return r;
}

int perfmap_registry_find(struct perfmap_registry *reg, uint32_t pid, uint8_t cls, uint64_t addr,
			  struct perfmap_region *ret_region)
{
	if (__atomic_load_n(&reg->n, __ATOMIC_RELAXED) == 0)
		return -ENOENT; /* nearly every lookup: no lock for them */
	int r = -ENOENT;
	pthread_mutex_lock(&reg->mu);
	size_t i = reg_pos(reg, pid, cls, addr, true);
	const struct reg_ent *e = i ? &reg->ents[i - 1] : NULL;
	if (e && e->pid == pid && e->cls == cls && addr - e->r.start < e->r.len) {
		*ret_region = e->r;
		r = 0;
	}
	pthread_mutex_unlock(&reg->mu);
	return r;
}

void perfmap_registry_forget(struct perfmap_registry *reg, uint32_t pid)
{
	pthread_mutex_lock(&reg->mu);
	size_t a = reg_pos(reg, pid, 0, 0, false), b = reg_pos(reg, pid, UINT8_MAX, UINT64_MAX, true);
	if (b > a) {
		memmove(&reg->ents[a], &reg->ents[b], (reg->n - b) * sizeof(*reg->ents));
		__atomic_store_n(&reg->n, reg->n - (b - a), __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&reg->mu);
}

size_t perfmap_registry_pids(struct perfmap_registry *reg, uint32_t *ret_pids, size_t max)
{
	size_t n = 0;
	pthread_mutex_lock(&reg->mu);
	for (size_t i = 0; i < reg->n && n < max; i++)
		if (!n || ret_pids[n - 1] != reg->ents[i].pid)
			ret_pids[n++] = reg->ents[i].pid;
	pthread_mutex_unlock(&reg->mu);
	return n;
}

size_t perfmap_registry_count(const struct perfmap_registry *reg)
{
	return __atomic_load_n(&reg->n, __ATOMIC_RELAXED);
}
