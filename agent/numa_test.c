/* numa: remote share and hotspots against a generator's truth on an injected two-node machine
 * (this test machine has one node), batching and caching of page queries, the host ops on this
 * process's own pages. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "numa.h"

/* The model: CPUs 0-3 on node 0, 4-7 on node 1; a page's node is what the generator placed it
 * on (table), pages never placed are not present (-ENOENT); pid GONE has exited. */
#define NPAGES 512
#define GONE 999
#define PAGE0 0x7f1200000000ull

struct model {
	int8_t node[NPAGES];   /* -1: not present */
	uint32_t calls, pages, max_n;
	uint32_t pid_pages[2]; /* pages asked about for pid 100 and 101 */
};

static int model_cpu_nodes(void *ctx, int16_t *cpu_node, uint32_t ncpu)
{
	for (uint32_t i = 0; i < ncpu; i++)
		cpu_node[i] = i < 8 ? (int16_t)(i / 4) : NUMA_NODE_UNKNOWN;
	return 2;
}

static int model_page_nodes(void *ctx, uint32_t pid, uint32_t n, const uint64_t *pages, int *status)
{
	struct model *m = ctx;
	m->calls++;
	m->pages += n;
	if (n > m->max_n)
		m->max_n = n;
	if (pid == 100 || pid == 101)
		m->pid_pages[pid - 100] += n;
	if (pid == GONE)
		return -ESRCH;
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(pages[i] & 4095, 0);
		uint64_t idx = (pages[i] - PAGE0) / 4096;
		status[i] = idx < NPAGES && m->node[idx] >= 0 ? m->node[idx] : -ENOENT;
	}
	return 0;
}

static const struct numa_ops model_ops = {
	.cpu_nodes = model_cpu_nodes,
	.page_nodes = model_page_nodes,
};

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static struct numa *new_numa(struct model *m, uint32_t batch, uint32_t hot)
{
	struct numa *nm;
	struct numa_opts o = { .ops = &model_ops, .ctx = m, .max_batch = batch, .max_hotspots = hot,
			       .max_age_ms = 1000 };
	assert_int_equal(numa_new(&o, &nm), 0);
	return nm;
}

static void place(struct model *m)
{
	for (int i = 0; i < NPAGES; i++)
		m->node[i] = (int8_t)(i % 7 == 0 ? -1 : (int)(rnd() % 2));
}

struct truth {
	uint64_t local, remote, unknown;
};

/* n samples over pages of pid 100 and 101, flows 1..3, objects by page range */
static void generate(struct numa_sample *s, uint32_t n, const struct model *m, struct truth *t)
{
	memset(t, 0, sizeof(*t));
	for (uint32_t i = 0; i < n; i++) {
		uint64_t page = rnd() % NPAGES;
		uint32_t cpu = (uint32_t)(rnd() % 8);
		s[i] = (struct numa_sample){ .addr = PAGE0 + page * 4096 + rnd() % 4096, .flow_id = 1 + rnd() % 3,
					     .object_id = 1000 + page / 128, .period = 1 + rnd() % 5,
					     .pid = 100 + (uint32_t)(rnd() % 2), .cpu = cpu, .ifindex = 3 };
		int mem = m->node[page];
		if (mem < 0)
			t->unknown++;
		else if (mem == (int)(cpu / 4))
			t->local++;
		else
			t->remote++;
	}
}

static void test_remote_share_matches_truth(void **state)
{
	struct model m = { 0 };
	place(&m);
	struct numa *nm = new_numa(&m, 0, 0);
	assert_int_equal(numa_node_count(nm), 2);
	assert_int_equal(numa_cpu_node(nm, 5), 1);
	assert_int_equal(numa_cpu_node(nm, 100), NUMA_NODE_UNKNOWN);
	enum { N = 20000 };
	struct numa_sample *s = calloc(N, sizeof(*s));
	int16_t *mem = calloc(N, sizeof(*mem)), *cpu = calloc(N, sizeof(*cpu));
	struct numa_hotspot *hot = calloc(numa_max_hotspots(nm), sizeof(*hot));
	struct truth t;
	generate(s, N, &m, &t);
	struct numa_stats st = { 0 };
	int nh = numa_resolve(nm, s, N, 1000, mem, cpu, hot, &st);
	assert_true(nh > 0);
	print_message("two-node model: %llu local, %llu remote, %llu unknown (truth %llu / %llu / %llu)\n",
		      (unsigned long long)st.local, (unsigned long long)st.remote, (unsigned long long)st.unknown,
		      (unsigned long long)t.local, (unsigned long long)t.remote, (unsigned long long)t.unknown);
	assert_int_equal(st.samples, N);
	assert_int_equal(st.local, t.local);
	assert_int_equal(st.remote, t.remote);
	assert_int_equal(st.unknown, t.unknown);
	assert_int_equal(st.known, t.local + t.remote);
	/* per sample and per hotspot, exactly the generator's placement */
	uint64_t hs_remote = 0, hs_local = 0, hs_events = 0, events = 0;
	for (uint32_t i = 0; i < N; i++) {
		int want = m.node[(s[i].addr - PAGE0) / 4096];
		assert_int_equal(mem[i], want < 0 ? NUMA_NODE_UNKNOWN : want);
		assert_int_equal(cpu[i], (int)(s[i].cpu / 4));
		if (want >= 0)
			events += s[i].period;
	}
	for (int i = 0; i < nh; i++) {
		if (hot[i].mem_node == hot[i].cpu_node)
			hs_local += hot[i].samples;
		else
			hs_remote += hot[i].samples;
		hs_events += hot[i].events;
		assert_int_equal(hot[i].ifindex, 3);
		if (i)
			assert_true(hot[i - 1].events >= hot[i].events);
	}
	assert_int_equal(hs_remote, t.remote);
	assert_int_equal(hs_local, t.local);
	assert_int_equal(hs_events, events);
	/* 3 flows x 4 objects x 2 memory nodes x 2 CPU nodes */
	assert_int_equal(nh, 3 * 4 * 2 * 2);
	/* one query per pid and batch: 2 pids, <= 512 distinct pages each, batch 1024 */
	assert_int_equal(m.calls, 2);
	assert_int_equal(st.queries, 2);
	free(s);
	free(mem);
	free(cpu);
	free(hot);
	numa_free(nm);
}

static void test_batches_and_cache(void **state)
{
	struct model m = { 0 };
	place(&m);
	struct numa *nm = new_numa(&m, 7, 0);
	enum { N = 3000 };
	struct numa_sample *s = calloc(N, sizeof(*s));
	struct numa_hotspot *hot = calloc(numa_max_hotspots(nm), sizeof(*hot));
	struct truth t;
	generate(s, N, &m, &t);
	struct numa_stats st = { 0 };
	assert_true(numa_resolve(nm, s, N, 5000, NULL, NULL, hot, &st) > 0);
	assert_int_equal(m.max_n, 7);
	assert_int_equal(st.remote, t.remote);
	uint32_t first_pages = m.pages;
	assert_true(first_pages <= 2 * NPAGES);
	/* same pages again within max_age: cache hits, except the absent pages (never cached as
	 * a node, asked again: they may have been faulted in since) ... */
	struct numa_stats st2 = { 0 };
	assert_true(numa_resolve(nm, s, N, 5500, NULL, NULL, hot, &st2) > 0);
	assert_int_equal(st2.remote, t.remote);
	assert_int_equal(st2.unknown, t.unknown);
	assert_int_equal(st2.cache_hits, t.local + t.remote);
	/* ... and after max_age everything is asked again */
	uint32_t calls = m.calls;
	struct numa_stats st3 = { 0 };
	numa_resolve(nm, s, N, 9000, NULL, NULL, hot, &st3);
	assert_true(m.calls > calls);
	assert_int_equal(st3.remote, t.remote);
	/* a page that moved is seen once its cache entry ages out */
	numa_forget_pid(nm, 100);
	numa_forget_pid(nm, 101);
	free(s);
	free(hot);
	numa_free(nm);
}

/* numa_forget_pids drops exactly the listed pids' pages (unsorted list, an unknown pid in it). */
static void test_forget_pids(void **state)
{
	struct model m = { 0 };
	place(&m);
	struct numa *nm = new_numa(&m, 0, 0);
	enum { N = 4000 };
	struct numa_sample *s = calloc(N, sizeof(*s));
	struct numa_hotspot *hot = calloc(numa_max_hotspots(nm), sizeof(*hot));
	struct truth t;
	generate(s, N, &m, &t);
	struct numa_stats st = { 0 };
	assert_true(numa_resolve(nm, s, N, 100, NULL, NULL, hot, &st) > 0);
	uint32_t first[2] = { m.pid_pages[0], m.pid_pages[1] };
	/* again within max_age: only the absent pages are asked about */
	assert_true(numa_resolve(nm, s, N, 200, NULL, NULL, hot, &st) > 0);
	uint32_t absent[2] = { m.pid_pages[0] - first[0], m.pid_pages[1] - first[1] };
	assert_true(absent[1] < first[1]);
	uint32_t gone[] = { 555, 101, 7 };
	numa_forget_pids(nm, gone, 3);
	uint32_t before[2] = { m.pid_pages[0], m.pid_pages[1] };
	assert_true(numa_resolve(nm, s, N, 300, NULL, NULL, hot, &st) > 0);
	assert_int_equal(m.pid_pages[0] - before[0], absent[0]); /* 100 still cached */
	assert_int_equal(m.pid_pages[1] - before[1], first[1]);  /* 101 asked about in full */
	numa_forget_pids(nm, NULL, 0);
	numa_forget_pids(NULL, gone, 3);
	free(s);
	free(hot);
	numa_free(nm);
}

static void test_gone_process_and_no_address(void **state)
{
	struct model m = { 0 };
	place(&m);
	struct numa *nm = new_numa(&m, 0, 0);
	struct numa_sample s[3] = {
		{ .addr = PAGE0 + 4096 * 3, .pid = GONE, .cpu = 0 },
		{ .addr = 0, .pid = 100, .cpu = 0 },
		{ .addr = PAGE0 + 4096 * 1, .pid = 100, .cpu = 99 }, /* CPU with no node */
	};
	struct numa_hotspot hot[8];
	int16_t mem[3];
	struct numa_stats st = { 0 };
	struct numa *small;
	struct numa_opts o = { .ops = &model_ops, .ctx = &m, .max_hotspots = 1 };
	assert_int_equal(numa_new(&o, &small), 0);
	assert_int_equal(numa_resolve(nm, s, 3, 1, mem, NULL, hot, &st), 0);
	assert_int_equal(st.unknown, 3);
	assert_int_equal(mem[0], NUMA_NODE_UNKNOWN);
	/* the gone process's answer is not cached: asked again next time */
	uint32_t calls = m.calls;
	numa_resolve(nm, s, 1, 2, NULL, NULL, hot, NULL);
	assert_int_equal(m.calls, calls + 1);
	/* hotspot bound: the second distinct key is counted, not stored */
	m.node[1] = 0;
	m.node[2] = 1;
	struct numa_sample two[2] = {
		{ .addr = PAGE0 + 4096 * 1, .pid = 100, .cpu = 0, .flow_id = 1 },
		{ .addr = PAGE0 + 4096 * 2, .pid = 100, .cpu = 0, .flow_id = 1 },
	};
	struct numa_stats st2 = { 0 };
	assert_int_equal(numa_resolve(small, two, 2, 1, NULL, NULL, hot, &st2), 1);
	assert_int_equal(st2.hotspot_overflow, 1);
	numa_free(small);
	numa_free(nm);
}

static void test_host_ops_on_own_pages(void **state)
{
	/* the real sources: this machine's nodes and move_pages(2) on this process's pages */
	struct numa *nm;
	assert_int_equal(numa_new(NULL, &nm), 0);
	assert_true(numa_node_count(nm) >= 1);
	assert_true(numa_cpu_node(nm, 0) >= 0);
	enum { PAGES = 16 };
	char *buf = aligned_alloc(4096, PAGES * 4096);
	memset(buf, 1, PAGES * 4096);
	struct numa_sample s[PAGES];
	for (int i = 0; i < PAGES; i++)
		s[i] = (struct numa_sample){ .addr = (uint64_t)(uintptr_t)(buf + i * 4096 + 100), .pid = (uint32_t)getpid(),
					     .cpu = 0, .flow_id = 9 };
	int16_t mem[PAGES];
	struct numa_hotspot hot[4096];
	struct numa_stats st = { 0 };
	assert_true(numa_resolve(nm, s, PAGES, 1, mem, NULL, hot, &st) >= 1);
	for (int i = 0; i < PAGES; i++)
		assert_true(mem[i] >= 0 && mem[i] < numa_node_count(nm));
	assert_int_equal(st.known, PAGES);
	free(buf);
	numa_free(nm);
}

static void test_bad_opts(void **state)
{
	struct numa *nm = NULL;
	struct numa_opts o = { .cache_entries = 1u << 30 };
	assert_int_equal(numa_new(&o, &nm), -EINVAL);
	assert_null(numa_free(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remote_share_matches_truth),
		cmocka_unit_test(test_batches_and_cache),
		cmocka_unit_test(test_forget_pids),
		cmocka_unit_test(test_gone_process_and_no_address),
		cmocka_unit_test(test_host_ops_on_own_pages),
		cmocka_unit_test(test_bad_opts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
