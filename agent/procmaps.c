/* procmaps: /proc/PID/maps parser and mapped-file opener (see procmaps.h). */
#include "procmaps.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct procmaps {
	struct procmaps_entry *ents;
	size_t n, cap;
	char *pool;             /* NUL-separated paths; entries point into it */
	size_t pool_len, pool_cap;
	size_t bad;
	bool truncated;
};

static const char DELETED_SUFFIX[] = " (deleted)";

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

/* Reads 1..maxdig hex digits at *p (bounded by end); advances *p. */
static int take_hex(const char **p, const char *end, unsigned maxdig, uint64_t *ret)
{
	uint64_t v = 0;
	unsigned n = 0;
	int d;
	while (*p < end && (d = hexval(**p)) >= 0) {
		if (++n > maxdig)
			return -EINVAL;
		v = v << 4 | (uint64_t)d;
		(*p)++;
	}
	if (n == 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int take_char(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return -EINVAL;
	(*p)++;
	return 0;
}

static int take_dec(const char **p, const char *end, uint64_t *ret)
{
	uint64_t v = 0;
	unsigned n = 0;
	while (*p < end && **p >= '0' && **p <= '9') {
		unsigned d = (unsigned)(**p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
		n++;
		(*p)++;
	}
	if (n == 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int take_perms(const char **p, const char *end, uint8_t *ret)
{
	static const char want[3] = { 'r', 'w', 'x' };
	if (end - *p < 4)
		return -EINVAL;
	uint8_t v = 0;
	for (int i = 0; i < 3; i++) {
		if ((*p)[i] == want[i])
			v |= (uint8_t)(1u << i);
		else if ((*p)[i] != '-')
			return -EINVAL;
	}
	if ((*p)[3] == 's')
		v |= PROCMAPS_SHARED;
	else if ((*p)[3] != 'p')
		return -EINVAL;
	*p += 4;
	*ret = v;
	return 0;
}

static uint8_t classify(const char *path, size_t len)
{
	if (len == 0)
		return PROCMAPS_ANON;
	if (path[0] == '/')
		return PROCMAPS_FILE;
	if (len == 6 && memcmp(path, "[heap]", 6) == 0)
		return PROCMAPS_HEAP;
	if (len >= 7 && memcmp(path, "[stack", 6) == 0 && (path[6] == ']' || path[6] == ':'))
		return PROCMAPS_STACK;
	return PROCMAPS_SPECIAL;
}

int procmaps_parse_line(const char *line, size_t len, struct procmaps_entry *ret_entry,
			const char **ret_path, size_t *ret_path_len)
{
	if (len > PROCMAPS_LINE_MAX || memchr(line, '\0', len))
		return -EINVAL;
	const char *p = line, *end = line + len;
	struct procmaps_entry e = { 0 };
	uint64_t maj, min;
	if (take_hex(&p, end, 16, &e.start) || take_char(&p, end, '-') ||
	    take_hex(&p, end, 16, &e.end) || take_char(&p, end, ' ') ||
	    take_perms(&p, end, &e.perms) || take_char(&p, end, ' ') ||
	    take_hex(&p, end, 16, &e.pgoff) || take_char(&p, end, ' ') ||
	    take_hex(&p, end, 8, &maj) || take_char(&p, end, ':') ||
	    take_hex(&p, end, 8, &min) || take_char(&p, end, ' ') ||
	    take_dec(&p, end, &e.inode))
		return -EINVAL;
	if (e.start >= e.end || (e.start & 0xfff) || (e.end & 0xfff))
		return -EINVAL;
	e.dev_major = (uint32_t)maj;
	e.dev_minor = (uint32_t)min;
	/* The kernel pads to a column with spaces before the path; an anonymous mapping may end
	 * right after the inode or with trailing spaces. */
	if (p < end && *p != ' ')
		return -EINVAL;
	while (p < end && *p == ' ')
		p++;
	size_t plen = (size_t)(end - p);
	size_t slen = sizeof(DELETED_SUFFIX) - 1;
	if (plen > slen && p[0] == '/' && memcmp(end - slen, DELETED_SUFFIX, slen) == 0) {
		e.deleted = 1;
		plen -= slen;
	}
	e.kind = classify(p, plen);
	*ret_entry = e;
	*ret_path = p;
	*ret_path_len = plen;
	return 0;
}

static int pool_add(struct procmaps *m, const char *s, size_t len, size_t *ret_off)
{
	if (m->pool_len + len + 1 > m->pool_cap) {
		size_t cap = m->pool_cap ? m->pool_cap : 4096;
		while (cap < m->pool_len + len + 1)
			cap *= 2;
		char *np = realloc(m->pool, cap);
		if (!np)
			return -ENOMEM;
		m->pool = np;
		m->pool_cap = cap;
	}
	memcpy(m->pool + m->pool_len, s, len);
	m->pool[m->pool_len + len] = '\0';
	*ret_off = m->pool_len;
	m->pool_len += len + 1;
	return 0;
}

/* Appends e; path offsets are kept in e.path as an integer until the pool stops moving. */
static int add_entry(struct procmaps *m, struct procmaps_entry *e, const char *path, size_t plen,
		     size_t *prev_off, size_t *prev_len)
{
	if (m->n && e->start < m->ents[m->n - 1].end) {
		m->bad++;
		return 0;
	}
	size_t off;
	/* Consecutive mappings of one file share the path (a DSO has four or five). */
	if (m->n && *prev_len == plen && memcmp(m->pool + *prev_off, path, plen) == 0)
		off = *prev_off;
	else if (pool_add(m, path, plen, &off) < 0)
		return -ENOMEM;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct procmaps_entry *ne = realloc(m->ents, cap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		m->ents = ne;
		m->cap = cap;
	}
	e->path = (const char *)(uintptr_t)off;
	m->ents[m->n++] = *e;
	*prev_off = off;
	*prev_len = plen;
	return 0;
}

int procmaps_parse(const char *buf, size_t len, size_t max_entries, struct procmaps **ret_maps)
{
	if (!max_entries)
		max_entries = PROCMAPS_DEFAULT_MAX_ENTRIES;
	struct procmaps *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	size_t prev_off = 0, prev_len = 0;
	const char *p = buf, *end = buf + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		struct procmaps_entry e;
		const char *path;
		size_t plen;
		if (procmaps_parse_line(p, (size_t)(le - p), &e, &path, &plen) < 0) {
			m->bad++;
		} else if (m->n >= max_entries) {
			m->truncated = true;
			break;
		} else if (add_entry(m, &e, path, plen, &prev_off, &prev_len) < 0) {
			procmaps_free(m);
			return -ENOMEM;
		}
		p = nl ? nl + 1 : end;
	}
	if (!m->pool && pool_add(m, "", 0, &prev_off) < 0) {
		procmaps_free(m);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->n; i++)
		m->ents[i].path = m->pool + (uintptr_t)m->ents[i].path;
	*ret_maps = m;
	return 0;
}

int procmaps_load(const char *proc_root, uint32_t pid, size_t max_entries, struct procmaps **ret_maps)
{
	char path[512];
	int n = snprintf(path, sizeof(path), "%s/%u/maps", proc_root ? proc_root : "/proc", pid);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	/* /proc files report size 0: read in growing chunks up to the bound. */
	size_t cap = 64 << 10, len = 0;
	char *buf = malloc(cap);
	int r = 0;
	while (buf) {
		if (len == cap) {
			if (cap >= PROCMAPS_FILE_MAX) {
				r = -EFBIG;
				break;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				r = -ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t got = read(fd, buf + len, cap - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			break;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	if (!buf)
		return -ENOMEM;
	if (r == 0)
		r = procmaps_parse(buf, len, max_entries, ret_maps);
	free(buf);
	return r;
}

struct procmaps *procmaps_free(struct procmaps *maps)
{
	if (maps) {
		free(maps->ents);
		free(maps->pool);
		free(maps);
	}
	return NULL;
}

const struct procmaps_entry *procmaps_find(const struct procmaps *maps, uint64_t addr, size_t *ret_idx)
{
	size_t lo = 0, hi = maps->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (maps->ents[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == maps->n || maps->ents[lo].start > addr)
		return NULL;
	if (ret_idx)
		*ret_idx = lo;
	return &maps->ents[lo];
}

size_t procmaps_count(const struct procmaps *maps)
{
	return maps->n;
}

const struct procmaps_entry *procmaps_at(const struct procmaps *maps, size_t idx)
{
	return idx < maps->n ? &maps->ents[idx] : NULL;
}

const char *procmaps_name(const struct procmaps_entry *m)
{
	const char *b;
	switch (m->kind) {
	case PROCMAPS_FILE:
		b = strrchr(m->path, '/');
		return b && b[1] ? b + 1 : m->path;
	case PROCMAPS_HEAP:
		return "[heap]";
	case PROCMAPS_STACK:
		return "[stack]";
	case PROCMAPS_SPECIAL:
		return m->path;
	default:
		return "[anon]";
	}
}

const struct procmaps_entry *procmaps_data_file(const struct procmaps *maps, size_t idx)
{
	const struct procmaps_entry *m = procmaps_at(maps, idx), *prev = idx ? procmaps_at(maps, idx - 1) : NULL;
	if (m && m->kind == PROCMAPS_FILE)
		return m;
	if (m && m->kind == PROCMAPS_ANON && prev && prev->kind == PROCMAPS_FILE && prev->end == m->start)
		return prev;
	return NULL;
}

size_t procmaps_bad_lines(const struct procmaps *maps)
{
	return maps->bad;
}

bool procmaps_truncated(const struct procmaps *maps)
{
	return maps->truncated;
}

size_t procmaps_mem_bytes(const struct procmaps *maps)
{
	return sizeof(*maps) + maps->cap * sizeof(*maps->ents) + maps->pool_cap;
}

/* Takes an O_PATH descriptor (or a negative errno); when it names a regular file with the
 * mapping's inode, returns a readable descriptor of that file. O_PATH first, so a device node
 * (a mapped /dev/dri/card0, say) is never really opened: opening devices can have effects. */
static int verify(int pfd, const struct procmaps_entry *m)
{
	if (pfd < 0)
		return pfd;
	struct stat st;
	int r = -ESTALE;
	if (fstat(pfd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_ino == m->inode) {
		char self[64];
		snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
		r = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (r < 0)
			r = -errno;
	}
	close(pfd);
	return r;
}

static int open_path(const char *path)
{
	int fd = open(path, O_PATH | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int open_in_root(const char *proc_root, uint32_t pid, const char *path)
{
	char root[512];
	int n = snprintf(root, sizeof(root), "%s/%u/root", proc_root, pid);
	if (n < 0 || (size_t)n >= sizeof(root))
		return -ENAMETOOLONG;
	int dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, dfd, path, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS) /* pre-5.6: symlinks may leave the root; the inode check remains */
		fd = openat(dfd, path[0] == '/' ? path + 1 : path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	close(dfd);
	return fd;
}

int procmaps_open_file(const char *proc_root, uint32_t pid, const struct procmaps_entry *m, int *ret_fd)
{
	if (m->kind != PROCMAPS_FILE || m->path[0] != '/')
		return -EINVAL;
	if (!proc_root)
		proc_root = "/proc";
	int fd, last = -ENOENT;
	if (!m->deleted) {
		fd = verify(open_in_root(proc_root, pid, m->path), m);
		if (fd >= 0)
			goto ok;
		last = fd;
	}
	char mf[512];
	int n = snprintf(mf, sizeof(mf), "%s/%u/map_files/%llx-%llx", proc_root, pid,
			 (unsigned long long)m->start, (unsigned long long)m->end);
	if (n > 0 && (size_t)n < sizeof(mf)) {
		fd = verify(open_path(mf), m);
		if (fd >= 0)
			goto ok;
		last = fd;
	}
	if (!m->deleted) {
		fd = verify(open_path(m->path), m);
		if (fd >= 0)
			goto ok;
		last = fd;
	}
	return last == -ESTALE ? -ENOENT : last;
ok:
	*ret_fd = fd;
	return 0;
}
