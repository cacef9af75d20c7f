/* targets: see targets.h. Sets, cgroup resolution and matching; the text forms are in
 * targets_parse.c. */
#include "targets.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CGROUP_MAX_DEPTH 16
#define FLOW_KINDS ((1u << TARGETS_FLOW) | (1u << TARGETS_PORT) | (1u << TARGETS_PROTO) | (1u << TARGETS_IFINDEX))

struct targets {
	size_t n;
	struct targets_entry e[TARGETS_MAX];
	uint32_t kinds;              /* bit per kind present */
	char root[256];
	size_t nids;
	uint64_t ids[TARGETS_MAX_CGROUP_IDS]; /* sorted */
};

/* ---- cgroups --------------------------------------------------------------------------- */

int targets_cgroup_id(const char *path, uint64_t *ret_id)
{
	struct statfs sf;
	if (statfs(path, &sf) < 0)
		return -errno;
	if ((unsigned long)sf.f_type != CGROUP2_SUPER_MAGIC)
		return -ENOTSUP;
	/* On cgroup2 (kernfs) the file handle is the 64-bit node id, the value the kernel reports
	 * as the task's cgroup id. */
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + 16];
	} h;
	h.fh.handle_bytes = 16;
	int mount_id;
	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0) < 0)
		return -errno;
	if (h.fh.handle_bytes != 8)
		return -ENOTSUP;
	uint64_t id;
	memcpy(&id, h.fh.f_handle, 8);
	*ret_id = id;
	return 0;
}

/* The cgroup2 mount point: /sys/fs/cgroup itself on unified hosts, /sys/fs/cgroup/unified on
 * hybrid ones; otherwise the first cgroup2 line of /proc/self/mounts. */
static int find_root(char *out, size_t len)
{
	static const char *const guesses[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	struct statfs sf;
	for (size_t i = 0; i < 2; i++)
		if (statfs(guesses[i], &sf) == 0 && (unsigned long)sf.f_type == CGROUP2_SUPER_MAGIC) {
			snprintf(out, len, "%s", guesses[i]);
			return 0;
		}
	FILE *f = fopen("/proc/self/mounts", "re");
	if (!f)
		return -errno;
	char line[1024], dev[256], dir[256], type[64];
	int r = -ENOENT;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%255s %255s %63s", dev, dir, type) == 3 && strcmp(type, "cgroup2") == 0) {
			snprintf(out, len, "%s", dir);
			r = 0;
			break;
		}
	fclose(f);
	return r;
}

static int add_id(struct targets *t, uint64_t id)
{
	if (t->nids >= TARGETS_MAX_CGROUP_IDS)
		return -E2BIG;
	t->ids[t->nids++] = id;
	return 0;
}

/* Adds the ids of every directory below dir (depth-first, bounded depth and count). */
static int walk(struct targets *t, char *path, size_t len, size_t cap, int depth)
{
	if (depth > CGROUP_MAX_DEPTH)
		return 0;
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno; /* removed meanwhile */
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		size_t nl = strlen(de->d_name);
		if (len + 1 + nl + 1 > cap)
			continue;
		path[len] = '/';
		memcpy(path + len + 1, de->d_name, nl + 1);
		uint64_t id;
		if (targets_cgroup_id(path, &id) == 0) {
			r = add_id(t, id);
			if (r == 0)
				r = walk(t, path, len + 1 + nl, cap, depth + 1);
		}
		path[len] = 0;
	}
	closedir(d);
	return r;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int resolve(struct targets *t, char *err, size_t errlen)
{
	t->nids = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (t->e[i].kind != TARGETS_CGROUP)
			continue;
		char path[4096];
		int n = snprintf(path, sizeof(path), "%s%s%s", t->root, t->e[i].u.cgroup[0] ? "/" : "", t->e[i].u.cgroup);
		if (n < 0 || (size_t)n >= sizeof(path))
			return -ENAMETOOLONG;
		uint64_t id;
		int r = targets_cgroup_id(path, &id);
		if (r < 0) {
			if (err && errlen)
				snprintf(err, errlen, "cgroup '%s': %s", path,
					 r == -ENOTSUP ? "not a cgroup v2 directory" : strerror(-r));
			return r;
		}
		if ((r = add_id(t, id)) < 0 || (r = walk(t, path, (size_t)n, sizeof(path), 0)) < 0) {
			if (err && errlen)
				snprintf(err, errlen, "cgroup '%s': %s", path,
					 r == -E2BIG ? "more than 1024 cgroups in the subtree" : strerror(-r));
			return r;
		}
	}
	qsort(t->ids, t->nids, sizeof(t->ids[0]), cmp_u64);
	size_t o = 0;
	for (size_t i = 0; i < t->nids; i++)
		if (o == 0 || t->ids[o - 1] != t->ids[i])
			t->ids[o++] = t->ids[i];
	t->nids = o;
	return (int)o;
}

int targets_new(const struct targets_entry *e, size_t n, const char *cgroup_root, struct targets **ret,
		char *err, size_t errlen)
{
	if (n > TARGETS_MAX) {
		if (err && errlen)
			snprintf(err, errlen, "more than %d targets", TARGETS_MAX);
		return -E2BIG;
	}
	struct targets *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned)e[i].kind >= TARGETS__NKINDS) {
			free(t);
			if (err && errlen)
				snprintf(err, errlen, "bad target kind");
			return -EINVAL;
		}
		t->e[i] = e[i];
		t->kinds |= 1u << e[i].kind;
	}
	t->n = n;
	int r = 0;
	if (t->kinds & (1u << TARGETS_CGROUP)) {
		if (cgroup_root && cgroup_root[0]) {
			snprintf(t->root, sizeof(t->root), "%s", cgroup_root);
		} else if ((r = find_root(t->root, sizeof(t->root))) < 0) {
			if (err && errlen)
				snprintf(err, errlen, "no cgroup v2 hierarchy is mounted");
		}
		size_t rl = strlen(t->root);
		while (rl > 1 && t->root[rl - 1] == '/')
			t->root[--rl] = 0;
		/* an absolute path under the root names the same cgroup as its relative form */
		for (size_t i = 0; r == 0 && i < n; i++) {
			char *c = t->e[i].u.cgroup;
			if (t->e[i].kind == TARGETS_CGROUP && rl > 1 && strncmp(c, t->root + 1, rl - 1) == 0 &&
			    (c[rl - 1] == '/' || c[rl - 1] == 0))
				memmove(c, c + rl - 1 + (c[rl - 1] == '/'), strlen(c + rl - 1 + (c[rl - 1] == '/')) + 1);
		}
		if (r == 0)
			r = resolve(t, err, errlen);
	}
	if (r < 0) {
		free(t);
		return r;
	}
	*ret = t;
	return 0;
}

struct targets *targets_free(struct targets *t)
{
	free(t);
	return NULL;
}

int targets_refresh(struct targets *t)
{
	if (!t || !(t->kinds & (1u << TARGETS_CGROUP)))
		return 0;
	struct targets *tmp = malloc(sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	*tmp = *t;
	int r = resolve(tmp, NULL, 0);
	if (r >= 0) {
		memcpy(t->ids, tmp->ids, tmp->nids * sizeof(t->ids[0]));
		t->nids = tmp->nids;
	}
	free(tmp);
	return r;
}

static bool prefix_match(const uint8_t *a, const uint8_t *p, unsigned plen)
{
	unsigned bytes = plen / 8, bits = plen % 8;
	if (memcmp(a, p, bytes) != 0)
		return false;
	return bits == 0 || ((a[bytes] ^ p[bytes]) & (uint8_t)(0xff00u >> bits)) == 0;
}

static bool entry_match(const struct targets_entry *e, const struct ms_sample *s)
{
	const struct ms_flow_tuple *f = &s->flow;
	switch (e->kind) {
	case TARGETS_FLOW:
		return prefix_match(f->saddr, e->u.net.addr, e->u.net.plen) ||
		       prefix_match(f->daddr, e->u.net.addr, e->u.net.plen);
	case TARGETS_PORT: return f->sport == e->u.port || f->dport == e->u.port;
	case TARGETS_PROTO: return f->proto == e->u.proto;
	case TARGETS_IFINDEX: return f->ifindex == e->u.ifindex;
	case TARGETS_PID: return s->pid == e->u.pid;
	default: return false;
	}
}

static bool cgroup_match(const struct targets *t, uint64_t id)
{
	size_t lo = 0, hi = t->nids;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->ids[mid] == id)
			return true;
		if (t->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

bool targets_match(const struct targets *t, const struct ms_sample *s)
{
	if (!t || t->n == 0)
		return true;
	if ((t->kinds & FLOW_KINDS) && s->flow_id == 0)
		return false;
	uint32_t got = 0;
	if (t->kinds & (1u << TARGETS_CGROUP)) {
		if (!cgroup_match(t, s->cgroup_id))
			return false;
		got |= 1u << TARGETS_CGROUP;
	}
	for (size_t i = 0; i < t->n; i++) {
		uint32_t bit = 1u << t->e[i].kind;
		if (!(got & bit) && entry_match(&t->e[i], s))
			got |= bit;
	}
	return got == t->kinds;
}

bool targets_empty(const struct targets *t)
{
	return !t || t->n == 0;
}

uint32_t targets_single_pid(const struct targets *t)
{
	uint32_t pid = 0;
	int n = 0;
	for (size_t i = 0; t && i < t->n; i++)
		if (t->e[i].kind == TARGETS_PID) {
			pid = t->e[i].u.pid;
			n++;
		}
	return n == 1 ? pid : 0;
}

size_t targets_count(const struct targets *t)
{
	return t ? t->n : 0;
}

const struct targets_entry *targets_get(const struct targets *t, size_t i)
{
	return t && i < t->n ? &t->e[i] : NULL;
}

size_t targets_cgroup_ids(const struct targets *t)
{
	return t ? t->nids : 0;
}
