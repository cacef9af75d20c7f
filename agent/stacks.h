/* stacks: the call stacks of a closed window. Rows and address samples carry the BPF stack-trace
 * map's ids (user id << 32 | kernel id, from bpf_get_stackid); this stage reads each id's frames
 * once per window, symbolizes every frame (symbolizer.h), replaces the pair of ids by a stable
 * stack id computed from the frames' function ids, and fills the window's stack dictionary (the
 * frames' functions join the function dictionary). It also reclaims map entries no window has
 * referenced for idle_windows windows once the map is half full, so a long run does not fill it
 * (a reclaimed id that a not yet exported sample still names reads as missing, counted). Runs on
 * the export worker before export_symbolize, so rows merge by stable stack. Never on the hot path.
 *
 * Stable id: fnv1a64 (symbolizer.h) over the 8-byte little-endian function ids of the kernel
 * frames (innermost first), one zero id, then those of the user frames; 0 maps to 1. So equal
 * call chains get equal ids on every host and across restarts.
 * Thread-safety: one owner (the export worker). */
#ifndef MS_STACKS_H
#define MS_STACKS_H

#include <stdint.h>

#define STACKS_MAP_FRAMES 127 /* value size of the BPF map: 127 u64 */

struct symbolizer;
struct window;

/* Where frames come from: the BPF map (host) or a test's table. */
struct stacks_ops {
	/* Fills ips[0..STACKS_MAP_FRAMES) for id (zero-terminated when shorter): 0 or -ENOENT. */
	int (*lookup)(void *ctx, uint32_t id, uint64_t *ips);
	/* Deletes id from the map: 0 or negative errno. */
	int (*drop)(void *ctx, uint32_t id);
};

/* ctx is the map fd cast with (void *)(intptr_t)fd. */
extern const struct stacks_ops stacks_bpf_ops;

struct stacks_opts {
	const struct stacks_ops *ops;  /* NULL: stacks_bpf_ops */
	void *ctx;
	struct symbolizer *sym;        /* borrowed */
	uint32_t map_entries;          /* max_entries of the map (ids are below it); 0: 16384 */
	uint32_t max_stacks;           /* stack dictionary per window; 0: 4096 */
	uint32_t idle_windows;         /* reclaim ids unseen for this many windows; 0: 8 */
};

struct stacks_stats {
	uint64_t ids_read;       /* map lookups */
	uint64_t ids_missing;    /* ids the map no longer had */
	uint64_t stacks;         /* dictionary entries written */
	uint64_t overflow;       /* rows whose stack did not fit the dictionary (stack dropped) */
	uint64_t reclaimed;      /* map entries deleted */
};

struct stacks;

int stacks_new(const struct stacks_opts *opts, struct stacks **ret_st);
struct stacks *stacks_free(struct stacks *st);

/* Rewrites w's rows and address samples to stable stack ids and fills w->stacks (see above).
 * Returns 0 or -ENOMEM (rows whose stack could not be resolved lose it: WINDOW_NO_STACK). */
int stacks_window(struct stacks *st, struct window *w);

void stacks_stats(const struct stacks *st, struct stacks_stats *ret);

#endif
