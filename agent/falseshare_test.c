/* falseshare: ground-truth tests on generated sample streams.
 *
 * No hardware on the test machines produces HITM or precise store addresses (they are VMs
 * without a PMU), so the streams are generated: a small model of what the PMU would deliver.
 * Threads on their own CPUs run a workload (read-modify-write counters, stores, loads) against
 * a MESI-like line model: a load of a line held Modified by another core is a HITM event, a
 * store makes the line Modified in the storing core. Every `period`-th event of each kind
 * becomes a sample with its data address, as PEBS would give it (mem_inst_retired.all_stores,
 * mem_load_l3_hit_retired.xsnp_hitm, load-latency loads). The detector only ever sees the
 * samples; the test knows the layout, which is the ground truth. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "falseshare.h"

#define PID 1234
#define MAXS 200000

enum op { OP_RMW, OP_STORE, OP_LOAD };

struct gen_thread {
	uint32_t tid, cpu;
	uint64_t addr;     /* what it touches */
	enum op op;
	uint64_t ip;
};

struct gen {
	uint64_t rng;
	uint64_t period_store, period_hitm, period_load; /* 0: that kind is not sampled */
	uint64_t n_store, n_hitm, n_load;                /* event counters (the PMU's) */
	/* line model: owner CPU + 1 of a Modified line, 0 when shared/clean; small direct map */
	uint64_t line_addr[1024];
	uint32_t owner[1024];
	struct fs_sample *out;
	uint32_t n;
};

static uint64_t rnd(struct gen *g)
{
	g->rng ^= g->rng << 13;
	g->rng ^= g->rng >> 7;
	g->rng ^= g->rng << 17;
	return g->rng;
}

static uint32_t *owner_of(struct gen *g, uint64_t addr)
{
	uint64_t line = addr & ~63ull;
	uint32_t i = (uint32_t)((line >> 6) * 0x9e3779b1u) & 1023;
	while (g->line_addr[i] && g->line_addr[i] != line)
		i = (i + 1) & 1023;
	g->line_addr[i] = line;
	return &g->owner[i];
}

static void emit(struct gen *g, const struct gen_thread *t, uint8_t access, uint64_t period)
{
	if (g->n >= MAXS)
		return;
	g->out[g->n++] = (struct fs_sample){ .addr = t->addr, .ip = t->ip, .period = period, .pid = PID,
					     .tid = t->tid, .cpu = t->cpu, .access = access };
}

static void load(struct gen *g, const struct gen_thread *t)
{
	uint32_t *own = owner_of(g, t->addr);
	if (*own && *own != t->cpu + 1) {
		*own = 0; /* the modified line is forwarded and becomes shared */
		if (g->period_hitm && ++g->n_hitm % g->period_hitm == 0)
			emit(g, t, FS_ACC_HITM, g->period_hitm);
	} else if (g->period_load && ++g->n_load % g->period_load == 0) {
		emit(g, t, FS_ACC_LOAD, g->period_load);
	}
}

static void store(struct gen *g, const struct gen_thread *t)
{
	*owner_of(g, t->addr) = t->cpu + 1;
	if (g->period_store && ++g->n_store % g->period_store == 0)
		emit(g, t, FS_ACC_STORE, g->period_store);
}

/* Interleaves the threads randomly for steps accesses. */
static void run(struct gen *g, const struct gen_thread *th, int nth, uint32_t steps)
{
	for (uint32_t i = 0; i < steps; i++) {
		const struct gen_thread *t = &th[rnd(g) % (uint64_t)nth];
		if (t->op != OP_STORE)
			load(g, t);
		if (t->op != OP_LOAD)
			store(g, t);
	}
}

static struct gen *gen_new(uint64_t seed)
{
	struct gen *g = calloc(1, sizeof(*g));
	g->out = calloc(MAXS, sizeof(*g->out));
	g->rng = seed | 1;
	g->period_store = 101;
	g->period_hitm = 23;
	g->period_load = 0;
	return g;
}

static void gen_free(struct gen *g)
{
	free(g->out);
	free(g);
}

static struct falseshare *fs_new(uint32_t lines, uint32_t report)
{
	struct falseshare *fs;
	struct falseshare_opts o = { .max_lines = lines, .max_report = report };
	assert_int_equal(falseshare_new(&o, &fs), 0);
	return fs;
}

#define BASE 0x7f0000001000ull

static void test_false_sharing_two_offsets(void **state)
{
	/* struct { long a; long b; } on one line; thread 1 increments a, thread 2 increments b */
	struct gen_thread th[] = {
		{ .tid = 101, .cpu = 0, .addr = BASE + 8, .op = OP_RMW, .ip = 0x401000 },
		{ .tid = 102, .cpu = 1, .addr = BASE + 16, .op = OP_RMW, .ip = 0x401100 },
	};
	struct gen *g = gen_new(7);
	run(g, th, 2, 100000);
	struct falseshare *fs = fs_new(0, 0);
	struct fs_report rep[64];
	struct fs_stats st;
	int n = falseshare_analyze(fs, g->out, g->n, 1000000000ull, rep, &st);
	assert_int_equal(n, 1);
	assert_int_equal(rep[0].cls, FS_CLASS_FALSE);
	assert_string_equal(falseshare_class_name(rep[0].cls), "false");
	assert_int_equal(rep[0].line, BASE);
	assert_int_equal(rep[0].pid, PID);
	assert_int_equal(rep[0].written, (1ull << 8) | (1ull << 16));
	assert_int_equal(rep[0].nthreads, 2);
	assert_int_equal(rep[0].ncpus, 2);
	assert_false(rep[0].inferred);
	assert_true(rep[0].hitm > 0 && rep[0].stores > 0);
	/* each thread wrote only its own offset */
	for (int t = 0; t < 2; t++)
		assert_int_equal(rep[0].thread_written[t], rep[0].tids[t] == 101 ? 1ull << 8 : 1ull << 16);
	/* score: HITM events per second = HITM samples x period over a 1 s window */
	assert_true(rep[0].score == (double)rep[0].hitm * 23.0);
	assert_true(rep[0].top_ip[0] == 0x401000 || rep[0].top_ip[0] == 0x401100);
	assert_true(rep[0].sample_addr >= BASE && rep[0].sample_addr < BASE + 64);
	gen_free(g);
	falseshare_free(fs);
}

static void test_true_sharing_same_offset(void **state)
{
	struct gen_thread th[] = {
		{ .tid = 201, .cpu = 0, .addr = BASE + 8, .op = OP_RMW, .ip = 0x402000 },
		{ .tid = 202, .cpu = 1, .addr = BASE + 8, .op = OP_RMW, .ip = 0x402000 },
	};
	struct gen *g = gen_new(11);
	run(g, th, 2, 100000);
	struct falseshare *fs = fs_new(0, 0);
	struct fs_report rep[64];
	int n = falseshare_analyze(fs, g->out, g->n, 1000000000ull, rep, NULL);
	assert_int_equal(n, 1);
	assert_int_equal(rep[0].cls, FS_CLASS_TRUE);
	assert_int_not_equal(rep[0].cls, FS_CLASS_FALSE);
	assert_int_equal(rep[0].written, 1ull << 8);
	gen_free(g);
	falseshare_free(fs);
}

static void test_padded_layout_reports_nothing(void **state)
{
	/* the same two counters, each on its own line: no line is shared */
	struct gen_thread th[] = {
		{ .tid = 301, .cpu = 0, .addr = BASE + 8, .op = OP_RMW },
		{ .tid = 302, .cpu = 1, .addr = BASE + 64 + 8, .op = OP_RMW },
	};
	struct gen *g = gen_new(13);
	g->period_load = 7; /* plain loads sampled too: still nothing */
	run(g, th, 2, 100000);
	assert_true(g->n > 1000);
	struct falseshare *fs = fs_new(0, 0);
	struct fs_report rep[64];
	struct fs_stats st;
	assert_int_equal(falseshare_analyze(fs, g->out, g->n, 1000000000ull, rep, &st), 0);
	assert_int_equal(st.lines, 2);
	assert_int_equal(st.contended, 0);
	gen_free(g);
	falseshare_free(fs);
}

static void test_read_mostly_sharing_not_reported(void **state)
{
	/* four threads read one configuration line nobody writes */
	struct gen_thread th[4];
	for (int i = 0; i < 4; i++)
		th[i] = (struct gen_thread){ .tid = 400 + i, .cpu = i, .addr = BASE + 8 * i, .op = OP_LOAD };
	struct gen *g = gen_new(17);
	g->period_load = 5;
	run(g, th, 4, 50000);
	struct falseshare *fs = fs_new(0, 0);
	struct fs_report rep[64];
	assert_int_equal(falseshare_analyze(fs, g->out, g->n, 1000000000ull, rep, NULL), 0);
	gen_free(g);
	falseshare_free(fs);
}

static void test_hot_line_reported_every_window(void **state)
{
	struct gen_thread th[] = {
		{ .tid = 501, .cpu = 2, .addr = BASE + 0, .op = OP_RMW },
		{ .tid = 502, .cpu = 3, .addr = BASE + 32, .op = OP_RMW },
	};
	struct falseshare *fs = fs_new(0, 0);
	struct fs_report rep[64];
	for (int w = 0; w < 30; w++) {
		struct gen *g = gen_new(100 + (uint64_t)w);
		run(g, th, 2, 20000);
		int n = falseshare_analyze(fs, g->out, g->n, 500000000ull, rep, NULL);
		assert_int_equal(n, 1);
		assert_int_equal(rep[0].cls, FS_CLASS_FALSE);
		assert_int_equal(rep[0].line, BASE);
		gen_free(g);
	}
	falseshare_free(fs);
}

static void test_hitm_only_infers_writes(void **state)
{
	/* a PMU that gives HITM load addresses but no store addresses */
	struct gen_thread th[] = {
		{ .tid = 601, .cpu = 0, .addr = BASE + 4, .op = OP_RMW },
		{ .tid = 602, .cpu = 1, .addr = BASE + 40, .op = OP_RMW },
	};
	struct gen *g = gen_new(19);
	g->period_store = 0;
	run(g, th, 2, 50000);
	struct falseshare *fs = fs_new(0, 0);
	struct fs_report rep[64];
	assert_int_equal(falseshare_analyze(fs, g->out, g->n, 1000000000ull, rep, NULL), 1);
	assert_int_equal(rep[0].cls, FS_CLASS_FALSE);
	assert_true(rep[0].inferred);
	assert_int_equal(rep[0].stores, 0);
	assert_int_equal(rep[0].written, (1ull << 4) | (1ull << 40));
	gen_free(g);
	falseshare_free(fs);
}

static void test_single_thread_hitm_is_contended(void **state)
{
	/* only the reader was sampled: the line is contended but the writer is unknown */
	struct fs_sample s[10];
	for (int i = 0; i < 10; i++)
		s[i] = (struct fs_sample){ .addr = BASE + 8, .ip = 1, .period = 100, .pid = PID, .tid = 7, .cpu = 0,
					   .access = FS_ACC_HITM };
	struct falseshare *fs = fs_new(0, 0);
	struct fs_report rep[64];
	assert_int_equal(falseshare_analyze(fs, s, 10, 2000000000ull, rep, NULL), 1);
	assert_int_equal(rep[0].cls, FS_CLASS_CONTENDED);
	assert_true(rep[0].inferred); /* no stores: the HITM offsets stand in for writes */
	assert_true(rep[0].score == 10 * 100 / 2.0);
	falseshare_free(fs);
}

static void test_mixed(void **state)
{
	/* a lock word both threads write plus each thread's own field on the same line */
	struct gen_thread th[] = {
		{ .tid = 701, .cpu = 0, .addr = BASE + 0, .op = OP_RMW },
		{ .tid = 702, .cpu = 1, .addr = BASE + 0, .op = OP_RMW },
		{ .tid = 701, .cpu = 0, .addr = BASE + 16, .op = OP_RMW },
		{ .tid = 702, .cpu = 1, .addr = BASE + 24, .op = OP_RMW },
	};
	struct gen *g = gen_new(23);
	run(g, th, 4, 100000);
	struct falseshare *fs = fs_new(0, 0);
	struct fs_report rep[64];
	assert_int_equal(falseshare_analyze(fs, g->out, g->n, 1000000000ull, rep, NULL), 1);
	assert_int_equal(rep[0].cls, FS_CLASS_MIXED);
	gen_free(g);
	falseshare_free(fs);
}

static void test_processes_do_not_share_lines(void **state)
{
	/* the same virtual address in two processes is two lines */
	struct fs_sample s[4] = {
		{ .addr = BASE + 8, .pid = 1, .tid = 1, .access = FS_ACC_STORE },
		{ .addr = BASE + 16, .pid = 2, .tid = 2, .access = FS_ACC_STORE },
		{ .addr = BASE + 8, .pid = 1, .tid = 1, .access = FS_ACC_STORE },
		{ .addr = BASE + 16, .pid = 2, .tid = 2, .access = FS_ACC_STORE },
	};
	struct falseshare *fs = fs_new(0, 0);
	struct fs_report rep[64];
	struct fs_stats st;
	assert_int_equal(falseshare_analyze(fs, s, 4, 0, rep, &st), 0);
	assert_int_equal(st.lines, 2);
	falseshare_free(fs);
}

static void test_bounds_and_order(void **state)
{
	/* 8 falsely shared lines with growing activity, max_report 3, max_lines 5: the table keeps
	 * the first 5 lines, drops the rest (counted), reports the 3 heaviest of those */
	struct fs_sample s[4000];
	uint32_t n = 0;
	for (int line = 0; line < 8; line++)
		for (int k = 0; k <= line * 20; k++) {
			s[n++] = (struct fs_sample){ .addr = BASE + 64 * (uint64_t)line + 0, .pid = PID, .tid = 1,
						     .access = FS_ACC_STORE, .period = 1 };
			s[n++] = (struct fs_sample){ .addr = BASE + 64 * (uint64_t)line + 8, .pid = PID, .tid = 2,
						     .access = FS_ACC_STORE, .period = 1 };
		}
	s[n++] = (struct fs_sample){ .addr = 0, .pid = PID, .tid = 1, .access = FS_ACC_STORE };
	s[n++] = (struct fs_sample){ .addr = BASE, .pid = PID, .tid = 1, .access = FS_ACC_NONE };
	struct falseshare *fs = fs_new(5, 3);
	struct fs_report rep[3];
	struct fs_stats st;
	assert_int_equal(falseshare_analyze(fs, s, n, 1000000000ull, rep, &st), 3);
	assert_int_equal(st.lines, 5);
	assert_int_equal(st.ignored, 2);
	assert_int_equal(st.lines_dropped, (uint64_t)(5 * 20 + 1 + 6 * 20 + 1 + 7 * 20 + 1) * 2);
	assert_int_equal(st.contended, 5);
	assert_int_equal(rep[0].line, BASE + 64 * 4);
	assert_int_equal(rep[1].line, BASE + 64 * 3);
	assert_int_equal(rep[2].line, BASE + 64 * 2);
	assert_true(rep[0].score > rep[1].score && rep[1].score > rep[2].score);
	assert_int_equal(falseshare_max_report(fs), 3);
	falseshare_free(fs);
}

static void test_thread_overflow(void **state)
{
	struct fs_sample s[FS_MAX_THREADS + 4];
	for (int i = 0; i < FS_MAX_THREADS + 4; i++)
		s[i] = (struct fs_sample){ .addr = BASE + (uint64_t)i, .pid = PID, .tid = 10 + i, .cpu = i,
					   .access = FS_ACC_STORE };
	struct falseshare *fs = fs_new(0, 0);
	struct fs_report rep[64];
	assert_int_equal(falseshare_analyze(fs, s, FS_MAX_THREADS + 4, 0, rep, NULL), 1);
	assert_int_equal(rep[0].nthreads, FS_MAX_THREADS);
	assert_int_equal(rep[0].thread_overflow, 4);
	assert_int_equal(rep[0].cls, FS_CLASS_FALSE);
	falseshare_free(fs);
}

static void test_new_rejects_bad_opts(void **state)
{
	struct falseshare *fs = NULL;
	struct falseshare_opts o = { .max_lines = 4, .max_report = 5 };
	assert_int_equal(falseshare_new(&o, &fs), -EINVAL);
	assert_null(falseshare_free(NULL));
	assert_string_equal(falseshare_access_name(FS_ACC_HITM), "hitm");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_false_sharing_two_offsets),
		cmocka_unit_test(test_true_sharing_same_offset),
		cmocka_unit_test(test_padded_layout_reports_nothing),
		cmocka_unit_test(test_read_mostly_sharing_not_reported),
		cmocka_unit_test(test_hot_line_reported_every_window),
		cmocka_unit_test(test_hitm_only_infers_writes),
		cmocka_unit_test(test_single_thread_hitm_is_contended),
		cmocka_unit_test(test_mixed),
		cmocka_unit_test(test_processes_do_not_share_lines),
		cmocka_unit_test(test_bounds_and_order),
		cmocka_unit_test(test_thread_overflow),
		cmocka_unit_test(test_new_rejects_bad_opts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
