/* perfmap: names for code outside ELF files, from its two sources: a strict, bounded parser of
 * JIT symbol maps (/tmp/perf-PID.map: lines "START SIZE name", hex with or without 0x) into an
 * address-sorted table, and the registry of regions processes announce through the API. Not a
 * file watcher: callers decide when to look again (perfmap_refresh).
 * Thread-safety: a loaded table is immutable, any thread may read it; the registry has its own
 * mutex (registrations come from the API thread, lookups from the symbolization worker). */
#ifndef MS_PERFMAP_H
#define MS_PERFMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest accepted line; longer names are not cut but the line is refused (a cut name would
 * give a different function id than the full one elsewhere). */
#define PERFMAP_LINE_MAX 1024
#define PERFMAP_DEFAULT_MAX_ENTRIES (1u << 20)
#define PERFMAP_DEFAULT_MAX_BYTES (64u << 20)

struct perfmap_limits {
	size_t max_entries; /* 0: PERFMAP_DEFAULT_MAX_ENTRIES; further lines are dropped and counted */
	size_t max_bytes;   /* 0: PERFMAP_DEFAULT_MAX_BYTES; a larger file is refused (-EFBIG) */
};

/* Identity of a map file version: any change means "reload". */
struct perfmap_stamp {
	uint64_t dev, ino, size;
	int64_t mtime_ns;
	uid_t uid;
};

struct perfmap_hit {
	const char *name; /* owned by the table */
	uint64_t start, size;
};

struct perfmap;

/* One line without '\n': START, one or more spaces, SIZE, one or more spaces, a name running to
 * the end of the line (spaces allowed, no NUL, non-empty). START and SIZE are 1..16 hex digits
 * with an optional 0x; SIZE > 0; START + SIZE must not overflow. -EINVAL otherwise. */
int perfmap_parse_line(const char *line, size_t len, uint64_t *ret_start, uint64_t *ret_size,
		       const char **ret_name, size_t *ret_name_len);

/* Parses a whole file's text. Bad lines and a final line without '\n' (the JIT may be in the
 * middle of writing it) are skipped and counted. When entries overlap, the one written last
 * wins for the addresses it covers from its start (a JIT reuses code memory). -ENOMEM only. */
int perfmap_parse(const char *buf, size_t len, const struct perfmap_limits *lim, struct perfmap **ret_pm);

/* Reads path: no symlink at the last component, regular file only, size bounded. The stamp of
 * what was read is kept (perfmap_get_stamp). */
int perfmap_load(const char *path, const struct perfmap_limits *lim, struct perfmap **ret_pm);
/* The stamp of path now (lstat-like: a symlink is -ELOOP). */
int perfmap_stat(const char *path, struct perfmap_stamp *ret_stamp);
void perfmap_get_stamp(const struct perfmap *pm, struct perfmap_stamp *ret_stamp);
bool perfmap_stamp_equal(const struct perfmap_stamp *a, const struct perfmap_stamp *b);

struct perfmap *perfmap_free(struct perfmap *pm);

/* Keeps *pm in step with the file at path: 0 when its stamp is unchanged, 1 when (re)loaded,
 * negative when the file is gone, unreadable, or owned by neither root nor owner (anyone can
 * write /tmp) — *pm is then freed and NULL. */
int perfmap_refresh(struct perfmap **pm, const char *path, uid_t owner, const struct perfmap_limits *lim);

/* The entry containing ip. -ENOENT. O(log n). */
int perfmap_lookup(const struct perfmap *pm, uint64_t ip, struct perfmap_hit *ret_hit);
size_t perfmap_count(const struct perfmap *pm);
size_t perfmap_bad_lines(const struct perfmap *pm);
size_t perfmap_mem_bytes(const struct perfmap *pm);

/* The registry: per (pid, class) non-overlapping named ranges, a new one replacing those it
 * overlaps; at most max_regions in all. Lookups copy the region out under the lock. */
struct perfmap_region {
	uint64_t start, len;
	char name[128];   /* cut to 127 bytes */
	char module[128];
};

struct perfmap_registry;

int perfmap_registry_new(size_t max_regions, struct perfmap_registry **ret_reg);
struct perfmap_registry *perfmap_registry_free(struct perfmap_registry *reg);
/* -EINVAL (len 0, start + len overflows, empty name or module), -ENOSPC (full), -ENOMEM. */
int perfmap_registry_put(struct perfmap_registry *reg, uint32_t pid, uint8_t cls, uint64_t start, uint64_t len,
			 const char *name, const char *module);
/* The region of (pid, cls) containing addr. -ENOENT. O(log n); lock-free when empty. */
int perfmap_registry_find(struct perfmap_registry *reg, uint32_t pid, uint8_t cls, uint64_t addr,
			  struct perfmap_region *ret_region);
/* Drops every region of pid. */
void perfmap_registry_forget(struct perfmap_registry *reg, uint32_t pid);
/* The distinct pids that have regions, ascending, at most max into ret_pids; returns how many
 * were written. */
size_t perfmap_registry_pids(struct perfmap_registry *reg, uint32_t *ret_pids, size_t max);
size_t perfmap_registry_count(const struct perfmap_registry *reg);

#endif
