/* numa: remote-DRAM / NUMA attribution. For sampled data addresses it finds the memory node of
 * the page (move_pages(2) query of the sampled process, batched per window and cached per
 * (pid, page) with a bound and an age limit) and compares it with the node of the CPU that took
 * the sample (from /sys/devices/system/node/nodeN/cpulist), then aggregates hotspots per
 * (flow, memory node, CPU node, data object). The topology and page-node source is an ops table
 * so tests can model a multi-node machine on a single-node one. It is not a page mover and
 * never changes placement (move_pages is called with nodes = NULL: query only).
 * Thread-safety: none; one owner (the export worker). */
#ifndef MS_NUMA_H
#define MS_NUMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NUMA_MAX_NODES 64
#define NUMA_MAX_CPUS 4096
#define NUMA_NODE_UNKNOWN (-1)

/* Where node information comes from. ctx is the ops' own state (NULL for the host ops). */
struct numa_ops {
	/* Fills cpu_node[0..ncpu) with the node of each CPU (NUMA_NODE_UNKNOWN when not known) and
	 * returns the number of nodes (>= 1), or a negative errno. Called once at numa_new. */
	int (*cpu_nodes)(void *ctx, int16_t *cpu_node, uint32_t ncpu);
	/* Node of each of n page-aligned addresses of process pid into ret_status[i]: the node,
	 * or a negative errno for that page (-ENOENT not present, -EFAULT not mapped). Returns 0,
	 * or a negative errno for the whole batch (-ESRCH: the process is gone). */
	int (*page_nodes)(void *ctx, uint32_t pid, uint32_t n, const uint64_t *pages, int *ret_status);
};

/* The host: sysfs node cpulists and move_pages(2). */
extern const struct numa_ops numa_host_ops;

struct numa_opts {
	const struct numa_ops *ops;  /* NULL: numa_host_ops */
	void *ctx;
	uint32_t cache_entries;      /* (pid, page) -> node entries; 0: 65536 */
	uint32_t max_age_ms;         /* re-ask about a cached page after this (pages migrate); 0: 10000 */
	uint32_t max_batch;          /* pages per page_nodes call; 0: 1024 */
	uint32_t max_hotspots;       /* distinct (flow, mem node, cpu node, object) per window; 0: 4096 */
};

/* One sampled data access. */
struct numa_sample {
	uint64_t addr;
	uint64_t flow_id;
	uint64_t object_id;   /* data object id (0 = none) */
	uint64_t period;      /* 0 counts as 1 */
	uint32_t pid;
	uint32_t cpu;
	uint32_t ifindex;     /* of the flow, 0 = unknown */
	uint32_t _pad;
};

struct numa_hotspot {
	uint64_t flow_id;
	uint64_t object_id;
	int16_t mem_node;
	int16_t cpu_node;
	uint32_t ifindex;
	uint64_t samples;
	uint64_t events;      /* sum of periods */
};

struct numa_stats {
	uint64_t samples;           /* offered */
	uint64_t known;             /* memory and CPU node known */
	uint64_t local, remote;     /* of known */
	uint64_t unknown;           /* memory node not known (page gone, process gone, no address) */
	uint64_t queries;           /* page_nodes calls */
	uint64_t pages_queried;
	uint64_t cache_hits;
	uint64_t hotspot_overflow;  /* samples whose hotspot key did not fit */
};

struct numa;

/* -EINVAL, -ENOMEM, or the cpu_nodes error. */
int numa_new(const struct numa_opts *opts, struct numa **ret_numa);
struct numa *numa_free(struct numa *nm);

int numa_node_count(const struct numa *nm);
/* Node of a CPU, NUMA_NODE_UNKNOWN when out of range or unknown. */
int numa_cpu_node(const struct numa *nm, uint32_t cpu);

/* Resolves one window: the memory node of each sample's page into ret_mem_node[i] and its CPU's
 * node into ret_cpu_node[i] (either may be NULL), aggregates hotspots into ret_hot (caller's
 * array of max_hotspots entries, returned count, heaviest first) and adds to *stats (may be
 * NULL; counters are added, not overwritten). now_ms drives the cache age. */
int numa_resolve(struct numa *nm, const struct numa_sample *samples, uint32_t n, uint64_t now_ms,
		 int16_t *ret_mem_node, int16_t *ret_cpu_node, struct numa_hotspot *ret_hot,
		 struct numa_stats *stats);

uint32_t numa_max_hotspots(const struct numa *nm);
/* Drops cached pages of pid (process exit). */
void numa_forget_pid(struct numa *nm, uint32_t pid);
/* The same for pids[0..n) in one pass over the cache; sorts pids in place. */
void numa_forget_pids(struct numa *nm, uint32_t *pids, size_t n);

#endif
