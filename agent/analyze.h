/* analyze: the memory analyzers of a closed window, run by the export worker after
 * symbolization (export_symbolize). For the window's address samples (window.h, copied by the
 * loop) it resolves the data object of each address (symbolizer_resolve_data: registered data
 * regions, ELF data symbols, mappings), the memory node of its page and the node of its CPU
 * (numa.h), moves the samples' counts from their rows onto rows keyed by (object, memory node),
 * runs the false-sharing detector (falseshare.h) on the samples that carry an access kind, and
 * fills the window's object dictionary, NUMA hotspots and contended lines (whose top functions
 * join the window's function dictionary). Not on the sampling hot path; never reaches back into
 * the loop; frees the window's address samples once used.
 * Thread-safety: one owner (the export worker); analyze_stats may be called from any thread. */
#ifndef MS_ANALYZE_H
#define MS_ANALYZE_H

#include <stdbool.h>
#include <stdint.h>

struct symbolizer;
struct numa_ops;
struct window;

struct analyze_opts {
	struct symbolizer *sym;           /* borrowed; used only on the owner's thread */
	const struct numa_ops *numa_ops;  /* NULL: the host (sysfs, move_pages) */
	void *numa_ctx;
	uint32_t max_objects;             /* window object dictionary; 0: 1024 */
	uint32_t max_fs_lines;            /* detector table; 0: falseshare's default */
	uint32_t max_fs_report;           /* contended lines per window; 0: 64 */
	uint32_t max_numa;                /* NUMA hotspots per window; 0: 256 */
	bool no_exit_sweep;               /* keep registrations of pids that do not exist (the
					   * synthetic source's fake process) */
};

/* Cumulative counters (for /metrics). */
struct analyze_stats {
	uint64_t windows;
	uint64_t addr_samples;
	uint64_t objects_named;      /* samples whose address fell into a named object */
	uint64_t objects_overflow;   /* samples whose object did not fit the window dictionary */
	uint64_t rows_refined, rows_unmatched; /* samples moved onto object rows / whose row was coarsened */
	uint64_t numa_local, numa_remote, numa_unknown;
	uint64_t fs_lines;           /* contended lines reported */
	uint64_t fs_lines_dropped;   /* samples past the detector's line table */
};

struct analyze;

int analyze_new(const struct analyze_opts *opts, struct analyze **ret_an);
struct analyze *analyze_free(struct analyze *an);

/* Analyses w in place (see above). Windows without address samples only get empty sections.
 * Returns 0, or -ENOMEM (the window keeps what was filled so far). */
int analyze_window(struct analyze *an, struct window *w);

void analyze_stats(struct analyze *an, struct analyze_stats *ret);

/* Publishes the window's detector series on /metrics (metrics_publish_family, gauges, each
 * family replaced whole so series that leave the top-K disappear):
 *   ms_false_sharing_score{line,mapping,pid,class}  top 20 lines, score (transfers/s)
 *   ms_remote_dram_hotspot{flow,numa,ifindex}       top 20, remote accesses/s (sum of periods)
 *   ms_pmu_scale{event}                             multiplexing scale applied to norm_cost
 *   ms_window_addr_samples{outcome}                 the window's address samples
 *   ms_window_symbolizer_lookups{result}            the window's symbolizer hits/misses/unresolved
 * Returns 0 or the first publish error. */
struct metrics;
int analyze_publish(struct analyze *an, const struct window *w, struct metrics *m);

#endif
