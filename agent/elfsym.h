/* elfsym: the function and data symbols of one ELF file read with libelf, sorted for binary
 * search, with its PT_LOAD segments (file offset -> virtual address) and its GNU build-id. Not a
 * cache and not process-aware (symbolizer.h is both). Reads files with pread, never mmap, so a
 * file truncated under us is an error, not a SIGBUS. Thread-safety: a loaded elfsym is
 * immutable; any thread may read it. */
#ifndef MS_ELFSYM_H
#define MS_ELFSYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Stored names are cut to ELFSYM_NAME_MAX - 1 bytes (C++ names can run to kilobytes). */
#define ELFSYM_NAME_MAX 1024
#define ELFSYM_BUILD_ID_MAX 64
#define ELFSYM_MAX_LOADS 64

struct elfsym_opts {
	uint64_t max_file_bytes; /* 0: 4 GiB; larger files are refused (-EFBIG) */
	uint32_t max_symbols;    /* 0: 4M; past it the rest of the table is dropped */
	uint64_t max_str_bytes;  /* 0: 128 MiB of stored names */
	/* Directory of separate debug files: when the file has no .symtab but a build-id,
	 * <debug_dir>/.build-id/xx/yyyy.debug with the same build-id supplies .symtab.
	 * NULL: "/usr/lib/debug"; "": never. */
	const char *debug_dir;
};

enum elfsym_kind {
	ELFSYM_FUNC = 0, /* STT_FUNC, STT_GNU_IFUNC */
	ELFSYM_DATA = 1, /* STT_OBJECT */
};

enum elfsym_source {
	ELFSYM_SRC_NONE = 0,
	ELFSYM_SRC_SYMTAB = 1,
	ELFSYM_SRC_DEBUGFILE = 2,
	ELFSYM_SRC_DYNSYM = 3,
};

struct elfsym_hit {
	const char *name; /* owned by the elfsym */
	uint64_t start;   /* st_value */
	uint64_t size;    /* st_size; 0 = unknown (the symbol runs to the next one) */
};

struct elfsym;

/* Loads from fd (not taken; only read during the call). Among symbols at one address the
 * chosen name is, in order: one with a size, fewer leading underscores, GLOBAL over WEAK over
 * LOCAL, the shorter, the strcmp-smaller — so equal files give equal names on every host.
 * -ENOEXEC: not an ELF executable or shared object; -EFBIG; -ENOMEM; -EIO. */
int elfsym_open_fd(int fd, const struct elfsym_opts *opts, struct elfsym **ret_es);
struct elfsym *elfsym_free(struct elfsym *es);

/* Only the build-id of the file behind fd (cheap: program headers and notes), so a cache can
 * share one table between copies of a file before loading it. *ret_len = 0 when there is none.
 * -ENOEXEC: not ELF. */
int elfsym_read_build_id(int fd, uint8_t ret_id[ELFSYM_BUILD_ID_MAX], size_t *ret_len);

/* ET_EXEC or ET_DYN. */
int elfsym_elf_type(const struct elfsym *es);
enum elfsym_source elfsym_source(const struct elfsym *es);
/* The NT_GNU_BUILD_ID bytes, NULL when the file has none. */
const uint8_t *elfsym_build_id(const struct elfsym *es, size_t *ret_len);

/* File offset -> virtual address through the PT_LOAD with p_offset <= off < p_offset + p_filesz
 * (with_bss: + p_memsz, for data addresses in the zero-filled tail). -ENOENT outside. */
int elfsym_file_to_vaddr(const struct elfsym *es, uint64_t off, bool with_bss, uint64_t *ret_vaddr);

/* The symbol of kind containing vaddr: the last one starting at or below it, provided vaddr is
 * below start + size (a size-0 symbol covers up to the next symbol). O(log n). -ENOENT. */
int elfsym_lookup(const struct elfsym *es, enum elfsym_kind kind, uint64_t vaddr, struct elfsym_hit *ret_hit);
size_t elfsym_count(const struct elfsym *es, enum elfsym_kind kind);
int elfsym_at(const struct elfsym *es, enum elfsym_kind kind, size_t idx, struct elfsym_hit *ret_hit);

/* Heap bytes held (for cache budgets). */
size_t elfsym_mem_bytes(const struct elfsym *es);

#endif
