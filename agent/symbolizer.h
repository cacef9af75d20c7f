/* symbolizer: turns sampled code and data addresses into stable (function, module) names
 * in-process — ELF symbols via libelf (elfsym.h) for /proc/PID/maps mappings (procmaps.h), JIT
 * maps /tmp/perf-PID.map (perfmap.h), regions registered through the API, kernel symbols from
 * /proc/kallsyms (kallsyms.h) — with bounded, evicting caches. Never executes another program,
 * never demangles, not for the sampling hot path (a cache miss reads files).
 *
 * Thread-safety: one thread (the symbolization worker) owns a symbolizer and calls resolve,
 * resolve_data, forget_pid and free. symbolizer_register_region/_register_data may be called
 * from any thread (the registered-region table has its own mutex); symbolizer_stats too
 * (counters are read relaxed-atomically).
 *
 * Stable ids (computable by outside tools):
 *   fnv1a64(bytes) = FNV-1a 64: h = 0xcbf29ce484222325; for each byte b: h ^= b; h *= 0x100000001b3.
 *   key      = lowercase hex of the ELF's NT_GNU_BUILD_ID when it has one, else the module name
 *              (file basename, "[kernel]", or the module given at registration; "[jit]" for
 *              perf maps).
 *   object_id = fnv1a64(key)
 *   func_id   = fnv1a64(key + "\0" + name), name being the symbol name as stored (raw,
 *              mangled, at most 1023 bytes).
 *   Unresolved addresses use name "+0x<page>" in that formula: page = (ELF virtual address, or
 *   file offset when not even that is known, or the address itself for anonymous memory) with
 *   the low 12 bits cleared, lowercase hex; so one id per unresolved 4 KiB page of a module.
 * Data objects use the same formulas (func_id then identifies the data object). */
#ifndef MS_SYMBOLIZER_H
#define MS_SYMBOLIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct sym_result {
	uint64_t func_id;   /* see the formula above */
	uint64_t object_id; /* id of the module (binary, DSO, JIT, kernel, region) */
	char name[128];     /* symbol name (cut to fit), "[unknown]", or "module+0xoff" when unresolved */
	char module[128];   /* ELF basename, "[kernel]", "[jit]", "[heap]", "[stack]", "[anon]", "[vdso]"... */
	uint64_t offset;    /* address - symbol (or region) start */
	uint8_t resolved;   /* 1 if a symbol or registered region was found */
	uint8_t _pad[7];
};

struct symbolizer_opts {
	uint32_t max_pids;         /* 0: 1024 processes' maps cached, LRU-evicted */
	uint32_t max_elf_files;    /* 0: 256 symbol tables cached, LRU-evicted */
	uint64_t max_bytes;        /* 0: 512 MiB for symbol tables, maps and JIT maps together */
	uint32_t max_regions;      /* 0: 65536 registered code and data regions in all */
	uint32_t maps_refresh_ms;  /* 0: 1000; an address outside every mapping re-reads maps at most this often */
	uint32_t perfmap_check_ms; /* 0: 1000; a JIT map's stamp is checked at most this often */
	uint32_t retry_ms;         /* 0: 30000; a pid or file that failed to load is retried after this */
	const char *proc_root;     /* NULL: "/proc" */
	const char *kallsyms_path; /* NULL: "/proc/kallsyms" */
	const char *perfmap_dir;   /* NULL: "/tmp" */
	const char *debug_dir;     /* NULL: "/usr/lib/debug" (separate .symtab by build-id); "": off */
};

struct symbolizer_stats {
	uint64_t lookups;           /* resolve + resolve_data calls */
	uint64_t resolved;          /* of which found a symbol or region */
	uint64_t unresolved;
	uint64_t hits;              /* lookups served from caches, without reading any file */
	uint64_t misses;            /* lookups that read a file (maps, ELF, JIT map, kallsyms) */
	uint64_t evictions;         /* pid_evictions + elf_evictions */
	uint64_t pid_evictions, elf_evictions;
	uint64_t maps_loads, maps_failures;
	uint64_t elf_loads, elf_failures;
	uint64_t elf_shared;        /* files served by an already loaded table with the same build-id */
	uint64_t perfmap_loads, perfmap_failures;
	uint64_t kernel_lookups;
	uint64_t regions;           /* registered regions now */
	uint64_t region_drops;      /* registrations refused: table full */
	uint64_t pids, elf_files;   /* cached now */
	uint64_t bytes;             /* heap held by cached tables now */
	uint8_t kallsyms_loaded;
	uint8_t kallsyms_restricted; /* addresses hidden (kptr_restrict): kernel ips stay "[kernel]" */
	uint8_t _pad[6];
};

struct symbolizer;

/* opts may be NULL (all defaults); strings are copied. -ENOMEM, -EINVAL. */
int symbolizer_new(const struct symbolizer_opts *opts, struct symbolizer **ret_sym);
struct symbolizer *symbolizer_free(struct symbolizer *s);

/* Code address of process pid (user_mode) or of the kernel (!user_mode; pid ignored). Always
 * fills ret (unresolved results carry module+page ids); returns 0, or -EINVAL on bad args. */
int symbolizer_resolve(struct symbolizer *s, uint32_t pid, uint64_t ip, bool user_mode, struct sym_result *ret);

/* Data address: registered data regions, then ELF data symbols (STT_OBJECT, .bss included),
 * then the mapping ("[heap]", "[stack]", "anon:<start>", or the file). Returns like resolve. */
int symbolizer_resolve_data(struct symbolizer *s, uint32_t pid, uint64_t addr, struct sym_result *ret);

/* [start, start+len) of pid is code named name in module (NULL: "[jit]"), or a data object.
 * Registrations win over everything else; a new one replaces the ones it overlaps. name and
 * module are cut to 127 bytes. -EINVAL (len 0, overflow, empty name), -ENOSPC (table full). */
int symbolizer_register_region(struct symbolizer *s, uint32_t pid, uint64_t start, uint64_t len,
			       const char *name, const char *module);
int symbolizer_register_data(struct symbolizer *s, uint32_t pid, uint64_t start, uint64_t len, const char *name);

/* Drops everything cached for pid, registrations included (call on process exit). */
void symbolizer_forget_pid(struct symbolizer *s, uint32_t pid);
/* Process-exit cleanup: forgets every cached or registered pid that no longer exists
 * (<proc_root>/<pid> is gone) and writes up to max of them into ret_pids (may be NULL) so the
 * caller can drop its own per-pid state. Returns the number forgotten. Cost: one stat per
 * cached process and per registered pid; run it every few seconds, not per window. A pid reused
 * by a new process keeps the cache (its maps are re-read when an address misses them). */
size_t symbolizer_sweep_exited(struct symbolizer *s, uint32_t *ret_pids, size_t max);

void symbolizer_stats(const struct symbolizer *s, struct symbolizer_stats *ret);

/* The id formulas above, for callers that name things themselves. */
#define SYMBOLIZER_FNV_SEED 0xcbf29ce484222325ull

static inline uint64_t symbolizer_fnv1a64(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static inline uint64_t symbolizer_object_id(const char *key)
{
	return symbolizer_fnv1a64(SYMBOLIZER_FNV_SEED, key, strlen(key));
}

static inline uint64_t symbolizer_func_id(const char *key, const char *name)
{
	uint64_t h = symbolizer_fnv1a64(SYMBOLIZER_FNV_SEED, key, strlen(key) + 1);
	return symbolizer_fnv1a64(h, name, strlen(name));
}

#endif
