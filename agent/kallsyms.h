/* kallsyms: the kernel's text symbols (T/t/W/w lines of /proc/kallsyms), sorted for binary
 * search. Not a module tracker: it is a snapshot taken once. When kptr_restrict hides the
 * addresses (every address reads 0) the table is empty and says so. Thread-safety: a loaded
 * table is immutable; any thread may read it. */
#ifndef MS_KALLSYMS_H
#define MS_KALLSYMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KALLSYMS_LINE_MAX 512
#define KALLSYMS_DEFAULT_MAX_SYMBOLS (2u << 20)
/* kallsyms has no sizes: a symbol ends at the next one, but never more than this past its start
 * (the last function before a gap would otherwise swallow it). */
#define KALLSYMS_MAX_SPAN (1u << 20)

struct kallsyms_hit {
	const char *name;   /* owned by the table */
	const char *module; /* "" for vmlinux, else the module name */
	uint64_t start;
};

struct kallsyms;

/* Parses one line "ADDR TYPE NAME[\t[MODULE]]" (without '\n'). -EINVAL when malformed. */
int kallsyms_parse_line(const char *line, size_t len, uint64_t *ret_addr, char *ret_type,
			const char **ret_name, size_t *ret_name_len, const char **ret_mod, size_t *ret_mod_len);

/* Loads path (NULL: /proc/kallsyms), keeping at most max_symbols (0: the default) text symbols.
 * Malformed and over-long lines are skipped and counted. */
int kallsyms_load(const char *path, size_t max_symbols, struct kallsyms **ret_ks);
struct kallsyms *kallsyms_free(struct kallsyms *ks);

/* True when the file listed symbols but every address was 0 (kptr_restrict or no privilege). */
bool kallsyms_restricted(const struct kallsyms *ks);
/* The text symbol containing addr. -ENOENT. O(log n). */
int kallsyms_lookup(const struct kallsyms *ks, uint64_t addr, struct kallsyms_hit *ret_hit);
size_t kallsyms_count(const struct kallsyms *ks);
size_t kallsyms_bad_lines(const struct kallsyms *ks);
size_t kallsyms_mem_bytes(const struct kallsyms *ks);

#endif
