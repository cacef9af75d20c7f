/* procmaps: a strict, bounded parser of /proc/PID/maps into an address-sorted table of mappings,
 * and the one safe way to open the file behind a mapping (inside the process's root, verified
 * against the mapping's inode). Not a symbolizer (see symbolizer.h) and never runs programs.
 * Thread-safety: a loaded table is immutable; any thread may read it. */
#ifndef MS_PROCMAPS_H
#define MS_PROCMAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest accepted line: PATH_MAX for the path plus the fixed fields. */
#define PROCMAPS_LINE_MAX 4400
/* Largest maps file read (a JVM with 65k mappings writes about 7 MiB). */
#define PROCMAPS_FILE_MAX (32u << 20)
#define PROCMAPS_DEFAULT_MAX_ENTRIES 65536u

enum procmaps_perm {
	PROCMAPS_R = 1,
	PROCMAPS_W = 2,
	PROCMAPS_X = 4,
	PROCMAPS_SHARED = 8,
};

enum procmaps_kind {
	PROCMAPS_ANON = 0,    /* no path */
	PROCMAPS_FILE = 1,    /* absolute path ("/memfd:x" included) */
	PROCMAPS_HEAP = 2,    /* [heap] */
	PROCMAPS_STACK = 3,   /* [stack], [stack:TID] */
	PROCMAPS_SPECIAL = 4, /* anything else: [vdso], [vvar], [anon:name], anon_inode:... */
};

struct procmaps_entry {
	uint64_t start, end;  /* [start, end), page aligned */
	uint64_t pgoff;       /* file offset mapped at start */
	uint64_t inode;
	uint32_t dev_major, dev_minor;
	uint8_t perms;        /* enum procmaps_perm bits */
	uint8_t kind;         /* enum procmaps_kind */
	uint8_t deleted;      /* the path ended in " (deleted)"; the suffix is removed */
	uint8_t _pad[5];
	const char *path;     /* NUL-terminated, "" when anonymous; owned by the table */
};

struct procmaps;

/* Parses one line (without its '\n'). On success fills ret_entry (path left NULL) and points
 * *ret_path / *ret_path_len into line. -EINVAL for anything that is not exactly the kernel's
 * format: hex fields of at most 16 digits, start < end, 4 KiB alignment, 4 permission letters,
 * decimal inode, no NUL bytes, length <= PROCMAPS_LINE_MAX. */
int procmaps_parse_line(const char *line, size_t len, struct procmaps_entry *ret_entry,
			const char **ret_path, size_t *ret_path_len);

/* Parses a whole maps text. Bad lines, and lines that are out of order or overlap the previous
 * one, are skipped and counted; after max_entries (0: the default) parsing stops and the table
 * is marked truncated. -ENOMEM only. */
int procmaps_parse(const char *buf, size_t len, size_t max_entries, struct procmaps **ret_maps);

/* Reads <proc_root>/<pid>/maps (proc_root NULL: "/proc"). -ENOENT/-EACCES/... from open,
 * -EFBIG past PROCMAPS_FILE_MAX. */
int procmaps_load(const char *proc_root, uint32_t pid, size_t max_entries, struct procmaps **ret_maps);

struct procmaps *procmaps_free(struct procmaps *maps);

/* The mapping containing addr and its index, or NULL. O(log n). */
const struct procmaps_entry *procmaps_find(const struct procmaps *maps, uint64_t addr, size_t *ret_idx);
size_t procmaps_count(const struct procmaps *maps);
const struct procmaps_entry *procmaps_at(const struct procmaps *maps, size_t idx);
/* A display name: the basename for files, "[heap]", "[stack]", "[anon]", or the bracketed path
 * of special mappings ("[vdso]"). Owned by the table. */
const char *procmaps_name(const struct procmaps_entry *m);
/* The file mapping whose data the mapping at idx holds: itself when it is a file mapping, the
 * file mapping it directly follows when it is anonymous (the zero-filled .bss tail past the
 * file's last page), else NULL. */
const struct procmaps_entry *procmaps_data_file(const struct procmaps *maps, size_t idx);
size_t procmaps_bad_lines(const struct procmaps *maps);
bool procmaps_truncated(const struct procmaps *maps);
/* Heap bytes held by the table (for cache budgets). */
size_t procmaps_mem_bytes(const struct procmaps *maps);

/* Opens the regular file behind a PROCMAPS_FILE mapping of process pid, read-only, trying in
 * order: <proc_root>/<pid>/root + path resolved inside that root (openat2 RESOLVE_IN_ROOT, so
 * containers' symlinks cannot lead out), <proc_root>/<pid>/map_files/<start>-<end> (the exact
 * mapped file, also when deleted; needs CAP_SYS_ADMIN), and the plain path. A candidate is
 * accepted only if it is a regular file with the mapping's inode number (the device is not
 * compared: overlayfs reports the layer's device in maps and its own in stat). Deleted files
 * are only tried through map_files. -ENOENT when no candidate matched. */
int procmaps_open_file(const char *proc_root, uint32_t pid, const struct procmaps_entry *m, int *ret_fd);

#endif
