/* window: a closed aggregation window — rows keyed by (flow, code location/function, stack,
 * event, memory node, direction, interference class, data object) with sample counts and
 * normalised cost, plus the dictionaries (flow tuples, function names) its rows refer to, the
 * sampling counters of the window and the anomaly signals in force during it. Immutable once closed and handed out of the sampling loop,
 * except for window_symbolize, which the export worker runs on its own copy before anyone else
 * reads it. Not thread-safe by itself: one owner at a time (passed through queues). */
#ifndef MS_WINDOW_H
#define MS_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "ms_abi.h"

#define WINDOW_NO_STACK UINT64_MAX
/* Flow id of samples whose flow could not get a row of its own (window table exhausted). */
#define WINDOW_FLOW_OVERFLOW UINT64_MAX
#define WINDOW_MAX_EVENTS 16
#define WINDOW_MAX_CPUS 256

struct window_row {
	uint64_t flow_id;     /* 0 = unattributed */
	uint64_t ip;          /* code address; 0 once rows are merged by function */
	uint64_t func_id;     /* stable function id; 0 until symbolized */
	uint64_t stack_id;    /* (ustack << 32 | kstack) as u32 each until stacks_window makes it the
			       * stable id of w->stacks (stacks.h); WINDOW_NO_STACK = none */
	uint64_t object_id;   /* data object id, 0 = none */
	uint64_t samples;
	double norm_cost;     /* Σ period × multiplex scale / GSO segments */
	uint32_t pid;
	uint16_t event;       /* index into the window's event names */
	int16_t numa_node;    /* memory node of the data address, -1 unknown */
	uint8_t dir;          /* enum ms_dir */
	uint8_t iclass;       /* interference class of the event */
	uint8_t user_mode;
	uint8_t _pad[5];
};

struct window_flow {
	uint64_t flow_id;
	struct ms_flow_tuple tuple;
};

struct window_func {
	uint64_t func_id;
	char name[128];
	char module[128];
};

/* A call stack (stacks.h): kernel frames then user frames, innermost first, as function ids of
 * the window's function dictionary; stack_id is the stable id rows carry. */
#define WINDOW_STACK_FRAMES 64
struct window_stack {
	uint64_t stack_id;
	uint16_t nkernel, nuser;   /* frames kept (cut at WINDOW_STACK_FRAMES in all) */
	uint32_t _pad;
	uint64_t func[WINDOW_STACK_FRAMES];
};

/* A sample that carried a data address, copied by the loop into a bounded per-window buffer for
 * the memory analyzers (analyze.h: data objects, NUMA, false sharing) that run on the export
 * worker. 64 bytes. */
struct window_addr {
	uint64_t addr;
	uint64_t ip;
	uint64_t flow_id;
	uint64_t period;
	uint64_t stack_id;    /* as in window_row */
	uint32_t pid, tid, cpu;
	uint16_t event;
	uint8_t access;       /* enum events_access */
	uint8_t user_mode;
	uint8_t dir;
	uint8_t iclass;
	uint8_t _pad[6];
};

/* A data object sampled in the window (symbolizer_resolve_data: registered region, ELF data
 * symbol, or mapping). */
struct window_object {
	uint64_t object_id;   /* stable id (symbolizer.h formula) */
	uint32_t pid;
	uint32_t _pad;
	uint64_t samples;     /* address samples that fell into it */
	char name[128];
	char module[128];
};

/* A contended cache line (falseshare.h), with its object and top functions resolved. */
#define WINDOW_FS_THREADS 8
#define WINDOW_FS_FUNCS 4
struct window_fs_line {
	uint64_t line;        /* line address */
	uint64_t object_id;   /* 0 = unknown */
	uint32_t pid;
	uint8_t cls;          /* enum fs_class */
	uint8_t inferred;
	uint8_t nthreads, ncpus;
	uint64_t written, accessed; /* offset bitmaps */
	uint64_t samples, loads, stores, hitm;
	double score;
	uint32_t tids[WINDOW_FS_THREADS];
	uint32_t cpus[WINDOW_FS_THREADS];
	uint64_t func_id[WINDOW_FS_FUNCS];     /* 0 = unused */
	uint64_t func_samples[WINDOW_FS_FUNCS];
};

/* A remote-DRAM / NUMA hotspot (numa.h): samples per (flow, memory node, CPU node, object). */
struct window_numa {
	uint64_t flow_id;
	uint64_t object_id;
	int16_t mem_node, cpu_node;
	uint32_t ifindex;
	uint64_t samples;
	uint64_t events;      /* sum of periods */
};

/* Memory analysis of the window (filled on the export worker). */
struct window_mem {
	uint64_t addr_samples;     /* address samples analysed */
	uint64_t objects_resolved; /* of which found a named object (registered, ELF symbol, mapping) */
	uint64_t rows_refined;     /* samples moved onto rows keyed by object and memory node */
	uint64_t numa_local, numa_remote, numa_unknown;
	uint64_t fs_contended;     /* contended lines (before the top-K cut) */
	uint64_t fs_lines_dropped; /* samples whose line did not fit the detector's table */
};

/* Counter deltas over the window, in the names of SPEC §13. */
struct window_counters {
	uint64_t bpf[MS_CNT__MAX];     /* BPF outcome counters (emitted, budget, gap, ...) */
	uint64_t processed;            /* samples through the user-space pipeline */
	uint64_t lost;                 /* ring records rejected by validation */
	uint64_t agg_degraded;         /* samples aggregated under a coarser key (table full) */
	uint64_t agg_dropped;          /* samples that did not fit even coarsened */
	uint64_t flows_overflow;       /* flows whose tuple did not fit the dictionary */
	uint64_t addr_dropped;         /* address samples past the per-window buffer (not analysed) */
	uint64_t anomalies_dropped;    /* anomaly signals past WINDOW_MAX_ANOMALIES (not attached) */
};

/* An anomaly signal of the agent's monitor (anomaly.h) that was raised during the window or was
 * still in force at some point of it; one entry per signal episode, value and baseline as last
 * evaluated in the window. kind uses the numbering of ms.v1.AnomalyKind (the wire's): the
 * monitor's throughput drop and packet drops are both WINDOW_ANOMALY_DROP, told apart by
 * metric ("tx_bytes" vs "tx_drops"). */
#define WINDOW_MAX_ANOMALIES 64
#define WINDOW_ANOMALY_DROP 1
#define WINDOW_ANOMALY_SPIKE 2
#define WINDOW_ANOMALY_STOP 3
#define WINDOW_ANOMALY_LATENCY 4
struct window_anomaly {
	char ifname[16];      /* "" for latency */
	char metric[16];      /* rx_bytes, tx_bytes, rx_drops, tx_drops, latency_us */
	uint32_t ifindex;     /* 0 = unknown (latency, or the interface is gone) */
	uint32_t kind;        /* WINDOW_ANOMALY_* */
	double value, baseline; /* bytes/s, drops/s or microseconds */
	uint64_t ts_ns;       /* CLOCK_REALTIME when the signal fired (the same in every window of
			       * one episode) */
};

struct window {
	uint64_t seq;
	uint64_t start_ns, end_ns;     /* CLOCK_REALTIME */
	uint8_t mode;                  /* 0 sentinel, 1 diagnostic */
	uint8_t _pad[7];
	uint64_t budget_per_cpu;       /* budget in force when the window closed */
	struct window_counters c;
	uint32_t nevents;
	char event_names[WINDOW_MAX_EVENTS][48];
	uint8_t event_sources[WINDOW_MAX_EVENTS]; /* 0 hw, 1 sw */
	uint32_t ncpu;                 /* entries of cpu_emitted */
	uint64_t cpu_emitted[WINDOW_MAX_CPUS]; /* emitted per CPU in the window (token bucket checks) */
	uint32_t nrows, nflows, nfuncs;
	struct window_row *rows;
	struct window_flow *flows;
	struct window_func *funcs;     /* filled by window_symbolize */
	double event_scale[WINDOW_MAX_EVENTS]; /* multiplexing scale applied to norm_cost (0: did not run) */
	/* memory analysis: addrs from the loop; the rest filled by analyze_window on the export worker */
	uint32_t nstacks;
	struct window_stack *stacks;   /* filled by stacks_window (stacks.h) */
	uint32_t naddrs, nobjects, nfs, nnuma;
	struct window_addr *addrs;
	struct window_object *objects;
	struct window_fs_line *fs;
	struct window_numa *numa;
	struct window_mem mem;
	uint32_t nanomalies;
	struct window_anomaly *anomalies; /* filled at window close (control_take_anomalies) */
};

struct window *window_alloc(uint32_t nrows, uint32_t nflows);
struct window *window_free(struct window *w);

/* Heap bytes the window holds (struct, rows, flows, functions, stacks, address samples and
 * analysis results): what the closed-window queue bounds (loop.h closed_bytes). */
size_t window_bytes(const struct window *w);

/* Σ samples over rows. */
uint64_t window_samples(const struct window *w);

const struct window_flow *window_find_flow(const struct window *w, uint64_t flow_id);
const struct window_func *window_find_func(const struct window *w, uint64_t func_id);

/* Top-k flows by samples: fills ids[] and samples[] (k entries max), returns count. */
int window_top_flows(const struct window *w, int k, uint64_t *ids, uint64_t *samples);
/* Top-k functions by samples (after symbolization). */
int window_top_funcs(const struct window *w, int k, uint64_t *ids, uint64_t *samples);

/* Formats a tuple as "tcp 10.0.0.1:443 -> 10.0.0.2:5555 rx". */
void window_format_tuple(const struct ms_flow_tuple *t, char *buf, size_t len);

#endif
