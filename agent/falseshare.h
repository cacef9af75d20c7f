/* falseshare: the false-sharing detector. From one window's samples that carry a data address
 * and an access kind (load, store, HITM load), it builds per cache line (64 bytes, keyed by
 * process and line address) and per byte offset the threads that read and write it, classifies
 * each contended line and scores it. It is not a symbolizer (lines carry pid and code
 * addresses; naming them is the caller's job) and keeps no state between windows: every window
 * reports every line that was contended in it, so a line that stays hot is reported in every
 * window, not only when it goes idle.
 *
 * Classification (threads are (pid, tid); offsets are byte offsets in the line):
 *   writers(o)  = threads with a store sample at offset o
 *   users(o)    = threads with any sample at offset o
 *   true sharing:  some offset o has a writer t1 and another user t2 != t1
 *   false sharing: some offset o1 has a writer t1 and some other offset o2 != o1 a user t2 != t1
 *   both at once: "mixed"; neither, but HITM samples on the line: "contended" (the core that
 *   modified the line was not sampled); neither and no HITM: not reported.
 * When the PMU delivers HITM loads but no store addresses for a line (AMD IBS-less or
 * load-latency-only setups), each HITM load also counts as a write of its offset by its thread
 * (HITM lines are dominated by read-modify-write); such lines are marked inferred.
 *
 * Score = estimated cross-core transfers of the line per second: the HITM events (sum of the
 * sample periods of HITM samples; each is one cache-to-cache transfer of a modified line) when
 * the line has HITM samples, otherwise the store and load events of the line's sharing threads
 * (sum of their periods), an upper bound of the transfers when the PMU gives no HITM. Divided by
 * the window length in seconds.
 *
 * Bounds: at most max_lines lines per window (further lines are counted, not tracked), at most
 * FS_MAX_THREADS threads per line (further threads are counted as overflow and do not take part
 * in the classification), at most max_report lines reported (highest score first).
 * Thread-safety: none; one owner (the export worker). Memory is allocated once in _new. */
#ifndef MS_FALSESHARE_H
#define MS_FALSESHARE_H

#include <stdbool.h>
#include <stdint.h>

#define FS_LINE_BYTES 64
#define FS_MAX_THREADS 8
#define FS_TOP_IPS 4

enum fs_access {
	FS_ACC_NONE = 0,  /* no access kind: ignored by the detector */
	FS_ACC_LOAD = 1,
	FS_ACC_STORE = 2,
	FS_ACC_HITM = 3,  /* a load that hit a line modified in another core's cache */
};

enum fs_class {
	FS_CLASS_NONE = 0,
	FS_CLASS_FALSE = 1,
	FS_CLASS_TRUE = 2,
	FS_CLASS_MIXED = 3,
	FS_CLASS_CONTENDED = 4,
};

struct fs_sample {
	uint64_t addr;
	uint64_t ip;
	uint64_t period;   /* events one sample stands for (0 counts as 1) */
	uint32_t pid, tid, cpu;
	uint8_t access;    /* enum fs_access */
	uint8_t _pad[3];
};

struct fs_report {
	uint64_t line;                 /* line address (addr & ~63) */
	uint32_t pid;
	uint8_t cls;                   /* enum fs_class */
	uint8_t inferred;              /* writes inferred from HITM loads */
	uint8_t nthreads;              /* threads tracked (<= FS_MAX_THREADS) */
	uint8_t ncpus;                 /* distinct CPUs among cpus[] */
	uint64_t written;              /* bit o: offset o was written */
	uint64_t accessed;             /* bit o: offset o was accessed (any kind) */
	uint64_t samples, loads, stores, hitm;
	uint64_t thread_overflow;      /* samples of threads past FS_MAX_THREADS */
	double score;                  /* see the header comment */
	uint32_t tids[FS_MAX_THREADS];
	uint64_t thread_written[FS_MAX_THREADS]; /* per tracked thread: offsets it wrote */
	uint32_t cpus[FS_MAX_THREADS]; /* first CPUs seen */
	uint64_t top_ip[FS_TOP_IPS];   /* most sampled code addresses, 0 = unused */
	uint64_t top_ip_samples[FS_TOP_IPS];
	uint64_t sample_addr;          /* one sampled address of the line (for object lookup) */
};

struct fs_stats {
	uint64_t samples;        /* samples offered */
	uint64_t ignored;        /* no access kind or address 0 */
	uint64_t lines;          /* lines tracked */
	uint64_t lines_dropped;  /* samples whose line did not fit max_lines */
	uint64_t contended;      /* lines classified (any class but none) */
	uint64_t reported;       /* lines in the report (<= max_report) */
};

struct falseshare_opts {
	uint32_t max_lines;   /* 0: 16384 */
	uint32_t max_report;  /* 0: 64 */
};

struct falseshare;

int falseshare_new(const struct falseshare_opts *opts, struct falseshare **ret_fs);
struct falseshare *falseshare_free(struct falseshare *fs);

/* Analyses one window: n samples, window length window_ns (0 counts as 1 s). Writes up to
 * max_report lines into ret_reports (caller's array of at least max_report entries), highest
 * score first, and returns their number; *ret_stats (may be NULL) gets the counters. */
int falseshare_analyze(struct falseshare *fs, const struct fs_sample *samples, uint32_t n, uint64_t window_ns,
		       struct fs_report *ret_reports, struct fs_stats *ret_stats);

uint32_t falseshare_max_report(const struct falseshare *fs);
const char *falseshare_class_name(uint8_t cls);
const char *falseshare_access_name(uint8_t access);

#endif
