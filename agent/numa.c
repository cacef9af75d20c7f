/* numa: see numa.h.
 * Page cache: 4-way buckets keyed by (pid, page), the oldest entry of a bucket is replaced; an
 * entry older than max_age_ms is asked again. A window costs one cache probe per sample plus,
 * for the misses, a sort of the distinct pages and one page_nodes call per max_batch pages of
 * each process. */
#include "numa.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "events.h"
#include "ms_abi.h"

#define NUMA_PAGE_MASK (~(uint64_t)4095)
#define NUMA_WAYS 4

struct page_entry {
	uint64_t page;    /* 0 = empty */
	uint32_t pid;
	int16_t node;     /* node or negative errno (cut to int16) */
	uint16_t _pad;
	uint64_t t_ms;
};

struct hot_slot {
	struct numa_hotspot h;
	uint8_t used;
};

struct numa {
	const struct numa_ops *ops;
	void *ctx;
	int nodes;
	int16_t cpu_node[NUMA_MAX_CPUS];
	uint32_t nbuckets;            /* power of two */
	struct page_entry *cache;     /* nbuckets * NUMA_WAYS */
	uint32_t max_age_ms, max_batch, max_hot;
	uint32_t hcap, hmask;
	struct hot_slot *hot;         /* hcap slots */
	uint32_t *hot_used;           /* used slot positions, max_hot entries */
	uint32_t nhot;
};

/* ---- host ops: sysfs and move_pages(2) ---- */

static int host_cpu_nodes(void *ctx, int16_t *cpu_node, uint32_t ncpu)
{
	(void)ctx;
	for (uint32_t i = 0; i < ncpu; i++)
		cpu_node[i] = NUMA_NODE_UNKNOWN;
	DIR *d = opendir("/sys/devices/system/node");
	if (!d) {
		/* kernel without NUMA support: one node holding every CPU */
		for (uint32_t i = 0; i < ncpu; i++)
			cpu_node[i] = 0;
		return 1;
	}
	int nodes = 0;
	int *cpus = malloc(NUMA_MAX_CPUS * sizeof(*cpus));
	if (!cpus) {
		closedir(d);
		return -ENOMEM;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		if (strncmp(de->d_name, "node", 4) != 0)
			continue;
		long node = strtol(de->d_name + 4, &end, 10);
		if (end == de->d_name + 4 || *end || node < 0 || node >= NUMA_MAX_NODES)
			continue;
		char path[300], buf[4096];
		snprintf(path, sizeof(path), "/sys/devices/system/node/%s/cpulist", de->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		char *line = fgets(buf, sizeof(buf), f);
		fclose(f);
		if (!line)
			continue;
		int n = events_parse_cpulist(buf, cpus, NUMA_MAX_CPUS);
		for (int i = 0; i < n; i++)
			if (cpus[i] >= 0 && (uint32_t)cpus[i] < ncpu)
				cpu_node[cpus[i]] = (int16_t)node;
		if (node + 1 > nodes)
			nodes = (int)node + 1;
	}
	closedir(d);
	free(cpus);
	return nodes ? nodes : 1;
}

static int host_page_nodes(void *ctx, uint32_t pid, uint32_t n, const uint64_t *pages, int *ret_status)
{
	(void)ctx;
	/* nodes = NULL: query only, nothing moves. Needs ptrace-read access to pid (root). */
	long r = syscall(__NR_move_pages, (int)pid, (unsigned long)n, (void **)pages, NULL, ret_status, 0);
	return r < 0 ? -errno : 0;
}

const struct numa_ops numa_host_ops = {
	.cpu_nodes = host_cpu_nodes,
	.page_nodes = host_page_nodes,
};

/* ---- lifecycle ---- */

int numa_new(const struct numa_opts *opts, struct numa **ret_numa)
{
	struct numa *nm = calloc(1, sizeof(*nm));
	if (!nm)
		return -ENOMEM;
	nm->ops = opts && opts->ops ? opts->ops : &numa_host_ops;
	nm->ctx = opts ? opts->ctx : NULL;
	uint32_t entries = opts && opts->cache_entries ? opts->cache_entries : 65536;
	nm->max_age_ms = opts && opts->max_age_ms ? opts->max_age_ms : 10000;
	nm->max_batch = opts && opts->max_batch ? opts->max_batch : 1024;
	nm->max_hot = opts && opts->max_hotspots ? opts->max_hotspots : 4096;
	int r = -EINVAL;
	if (entries > (1u << 24) || nm->max_hot > (1u << 20) || nm->max_batch > (1u << 20))
		goto fail;
	nm->nbuckets = 1;
	while (nm->nbuckets * NUMA_WAYS < entries)
		nm->nbuckets <<= 1;
	nm->hcap = 16;
	while (nm->hcap < 2 * nm->max_hot)
		nm->hcap <<= 1;
	nm->hmask = nm->hcap - 1;
	r = -ENOMEM;
	nm->cache = calloc((size_t)nm->nbuckets * NUMA_WAYS, sizeof(*nm->cache));
	nm->hot = calloc(nm->hcap, sizeof(*nm->hot));
	nm->hot_used = calloc(nm->max_hot, sizeof(*nm->hot_used));
	if (!nm->cache || !nm->hot || !nm->hot_used)
		goto fail;
	r = nm->ops->cpu_nodes(nm->ctx, nm->cpu_node, NUMA_MAX_CPUS);
	if (r < 0)
		goto fail;
	nm->nodes = r;
	*ret_numa = nm;
	return 0;
fail:
	numa_free(nm);
	return r;
}

struct numa *numa_free(struct numa *nm)
{
	if (!nm)
		return NULL;
	free(nm->cache);
	free(nm->hot);
	free(nm->hot_used);
	free(nm);
	return NULL;
}

int numa_node_count(const struct numa *nm)
{
	return nm->nodes;
}

int numa_cpu_node(const struct numa *nm, uint32_t cpu)
{
	return cpu < NUMA_MAX_CPUS ? nm->cpu_node[cpu] : NUMA_NODE_UNKNOWN;
}

uint32_t numa_max_hotspots(const struct numa *nm)
{
	return nm->max_hot;
}

/* ---- page cache ---- */

static struct page_entry *bucket_of(struct numa *nm, uint32_t pid, uint64_t page)
{
	uint32_t b = (uint32_t)ms_mix64(page ^ ((uint64_t)pid << 40)) & (nm->nbuckets - 1);
	return &nm->cache[(size_t)b * NUMA_WAYS];
}

static bool cache_get(struct numa *nm, uint32_t pid, uint64_t page, uint64_t now_ms, int16_t *ret_node)
{
	struct page_entry *b = bucket_of(nm, pid, page);
	for (int i = 0; i < NUMA_WAYS; i++)
		if (b[i].page == page && b[i].pid == pid) {
			if (now_ms - b[i].t_ms > nm->max_age_ms)
				return false;
			*ret_node = b[i].node;
			return true;
		}
	return false;
}

static void cache_put(struct numa *nm, uint32_t pid, uint64_t page, int16_t node, uint64_t now_ms)
{
	struct page_entry *b = bucket_of(nm, pid, page);
	int victim = -1, oldest = 0;
	for (int i = 0; i < NUMA_WAYS && victim < 0; i++) {
		if ((b[i].page == page && b[i].pid == pid) || !b[i].page)
			victim = i;
		else if (b[i].t_ms < b[oldest].t_ms)
			oldest = i;
	}
	if (victim < 0)
		victim = oldest;
	b[victim] = (struct page_entry){ .page = page, .pid = pid, .node = node, .t_ms = now_ms };
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* One pass over the cache for the whole batch: a sweep hands over up to a thousand exited pids
 * on a busy build host, and a pass per pid (65,536 entries each) cost ~50 ms of CPU per sweep. */
void numa_forget_pids(struct numa *nm, uint32_t *pids, size_t n)
{
	if (!nm || !pids || !n)
		return;
	qsort(pids, n, sizeof(*pids), cmp_u32);
	for (size_t i = 0; i < (size_t)nm->nbuckets * NUMA_WAYS; i++) {
		uint32_t pid = nm->cache[i].pid;
		if (pid && bsearch(&pid, pids, n, sizeof(*pids), cmp_u32))
			memset(&nm->cache[i], 0, sizeof(nm->cache[i]));
	}
}

void numa_forget_pid(struct numa *nm, uint32_t pid)
{
	numa_forget_pids(nm, &pid, 1);
}

/* ---- one window ---- */

struct pending {
	uint32_t pid;
	uint32_t idx;     /* sample index */
	uint64_t page;
};

static int cmp_pending(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->page != y->page)
		return x->page < y->page ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Asks page_nodes about the distinct pages of p[0..np) (sorted by pid, page) and writes each
 * sample's node into mem[]. */
static int query_pending(struct numa *nm, struct pending *p, uint32_t np, uint64_t now_ms, int16_t *mem,
			 struct numa_stats *st)
{
	uint64_t *pages = malloc((size_t)nm->max_batch * sizeof(*pages));
	int *status = malloc((size_t)nm->max_batch * sizeof(*status));
	uint32_t *first = malloc((size_t)nm->max_batch * sizeof(*first)); /* p index of each page */
	if (!pages || !status || !first) {
		free(pages);
		free(status);
		free(first);
		return -ENOMEM;
	}
	uint32_t i = 0;
	while (i < np) {
		/* one batch: the distinct pages of one pid, at most max_batch; j ends at the first
		 * entry not covered (the next pid, or the first entry of a page that did not fit) */
		uint32_t pid = p[i].pid, n = 0, j = i;
		for (; j < np && p[j].pid == pid; j++) {
			if (j == i || p[j].page != p[j - 1].page) {
				if (n == nm->max_batch)
					break;
				first[n] = j;
				pages[n++] = p[j].page;
			}
		}
		int r = nm->ops->page_nodes(nm->ctx, pid, n, pages, status);
		st->queries++;
		st->pages_queried += n;
		for (uint32_t k = 0; k < n; k++) {
			int node = r < 0 ? r : status[k];
			int16_t v = node < 0 ? (int16_t)(node < -32768 ? -32768 : node)
					     : (int16_t)(node < NUMA_MAX_NODES ? node : NUMA_NODE_UNKNOWN);
			/* only real nodes are cached: an absent page may be faulted in any moment
			 * (page-fault samples are taken before the page exists) */
			if (r >= 0 && v >= 0)
				cache_put(nm, pid, pages[k], v, now_ms);
			uint32_t end = k + 1 < n ? first[k + 1] : j;
			for (uint32_t q = first[k]; q < end; q++)
				mem[p[q].idx] = v < 0 ? NUMA_NODE_UNKNOWN : v;
		}
		i = j;
	}
	free(pages);
	free(status);
	free(first);
	return 0;
}

static void hot_add(struct numa *nm, const struct numa_sample *s, int16_t mem, int16_t cpu, struct numa_stats *st)
{
	uint64_t h = ms_mix64(s->flow_id ^ ms_mix64(s->object_id ^ ((uint64_t)(uint16_t)mem << 16 | (uint16_t)cpu)));
	uint32_t i = (uint32_t)h & nm->hmask;
	for (;;) {
		struct hot_slot *hs = &nm->hot[i];
		if (!hs->used) {
			if (nm->nhot >= nm->max_hot) {
				st->hotspot_overflow++;
				return;
			}
			hs->used = 1;
			hs->h = (struct numa_hotspot){ .flow_id = s->flow_id, .object_id = s->object_id,
						       .mem_node = mem, .cpu_node = cpu, .ifindex = s->ifindex };
			nm->hot_used[nm->nhot++] = i;
			break;
		}
		if (hs->h.flow_id == s->flow_id && hs->h.object_id == s->object_id && hs->h.mem_node == mem &&
		    hs->h.cpu_node == cpu)
			break;
		i = (i + 1) & nm->hmask;
	}
	nm->hot[i].h.samples++;
	nm->hot[i].h.events += s->period ? s->period : 1;
}

static int cmp_hot(const void *a, const void *b)
{
	const struct numa_hotspot *x = a, *y = b;
	if (x->events != y->events)
		return x->events < y->events ? 1 : -1;
	if (x->flow_id != y->flow_id)
		return x->flow_id < y->flow_id ? -1 : 1;
	return x->object_id < y->object_id ? -1 : x->object_id > y->object_id;
}

int numa_resolve(struct numa *nm, const struct numa_sample *samples, uint32_t n, uint64_t now_ms,
		 int16_t *ret_mem_node, int16_t *ret_cpu_node, struct numa_hotspot *ret_hot,
		 struct numa_stats *stats)
{
	struct numa_stats st = { 0 };
	int16_t *mem = malloc((n ? n : 1) * sizeof(*mem));
	struct pending *p = malloc((n ? n : 1) * sizeof(*p));
	if (!mem || !p) {
		free(mem);
		free(p);
		return -ENOMEM;
	}
	uint32_t np = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct numa_sample *s = &samples[i];
		mem[i] = NUMA_NODE_UNKNOWN;
		if (!s->addr)
			continue;
		uint64_t page = s->addr & NUMA_PAGE_MASK;
		int16_t node;
		if (cache_get(nm, s->pid, page, now_ms, &node)) {
			st.cache_hits++;
			mem[i] = node < 0 ? NUMA_NODE_UNKNOWN : node;
			continue;
		}
		p[np++] = (struct pending){ .pid = s->pid, .idx = i, .page = page };
	}
	int r = 0;
	if (np) {
		qsort(p, np, sizeof(*p), cmp_pending);
		r = query_pending(nm, p, np, now_ms, mem, &st);
	}
	for (uint32_t i = 0; i < nm->nhot; i++)
		nm->hot[nm->hot_used[i]].used = 0;
	nm->nhot = 0;
	for (uint32_t i = 0; r == 0 && i < n; i++) {
		const struct numa_sample *s = &samples[i];
		int16_t cpu = (int16_t)numa_cpu_node(nm, s->cpu);
		st.samples++;
		if (ret_mem_node)
			ret_mem_node[i] = mem[i];
		if (ret_cpu_node)
			ret_cpu_node[i] = cpu;
		if (mem[i] == NUMA_NODE_UNKNOWN || cpu == NUMA_NODE_UNKNOWN) {
			st.unknown++;
			continue;
		}
		st.known++;
		if (mem[i] == cpu)
			st.local++;
		else
			st.remote++;
		hot_add(nm, s, mem[i], cpu, &st);
	}
	free(mem);
	free(p);
	if (r < 0)
		return r;
	uint32_t out = 0;
	for (uint32_t i = 0; i < nm->nhot; i++)
		ret_hot[out++] = nm->hot[nm->hot_used[i]].h;
	qsort(ret_hot, out, sizeof(*ret_hot), cmp_hot);
	if (stats) {
		stats->samples += st.samples;
		stats->known += st.known;
		stats->local += st.local;
		stats->remote += st.remote;
		stats->unknown += st.unknown;
		stats->queries += st.queries;
		stats->pages_queried += st.pages_queried;
		stats->cache_hits += st.cache_hits;
		stats->hotspot_overflow += st.hotspot_overflow;
	}
	return (int)out;
}
