/* Tests of the synthetic source's data addresses: the stream is unchanged apart from the
 * address, addresses fall in the two objects with each thread on its own counter of the shared
 * line, the false-sharing detector finds that line, and the two-node model makes part of the
 * accesses remote. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "falseshare.h"
#include "numa.h"
#include "synth.h"

#define N 20000

static struct synth *make(bool data_addr)
{
	struct synth_opts o = { .nflows = 16, .seed = 7, .nevents = 2, .unattributed_pct = 10, .data_addr = data_addr };
	struct synth *s = NULL;
	assert_int_equal(synth_new(&o, &s), 0);
	return s;
}

static void test_stream_unchanged_but_addr(void **state)
{
	(void)state;
	struct synth *a = make(false), *b = make(true);
	for (int i = 0; i < N; i++) {
		struct ms_sample x, y;
		synth_next(a, &x);
		synth_next(b, &y);
		assert_int_equal(x.addr, 0);
		assert_int_not_equal(y.addr, 0);
		y.addr = 0;
		assert_memory_equal(&x, &y, sizeof(x));
	}
	synth_free(a);
	synth_free(b);
}

static void test_addresses_in_objects(void **state)
{
	(void)state;
	struct synth_object line, table, none;
	assert_int_equal(synth_data_object(0, &line), 0);
	assert_int_equal(synth_data_object(1, &table), 0);
	assert_int_equal(synth_data_object(SYNTH_NOBJECTS, &none), -EINVAL);
	assert_int_equal(line.size, 64);
	assert_int_equal(line.start % 64, 0);
	struct synth *s = make(true);
	uint32_t on_line = 0, per_thread[SYNTH_LINE_THREADS] = { 0 };
	for (int i = 0; i < N; i++) {
		struct ms_sample x;
		synth_next(s, &x);
		if (x.addr >= line.start && x.addr < line.start + line.size) {
			on_line++;
			/* each thread only ever touches its own counter */
			uint32_t t = x.tid - SYNTH_PID;
			assert_true(t < SYNTH_LINE_THREADS);
			assert_int_equal(x.addr - line.start, t * 8);
			per_thread[t]++;
		} else {
			assert_true(x.addr >= table.start && x.addr + 8 <= table.start + table.size);
			assert_int_equal(x.addr % 8, 0);
		}
	}
	/* 1 in 4 on the line (binomial, N = 20000: far inside ±3 %) */
	assert_in_range(on_line, N / 4 - N * 3 / 100, N / 4 + N * 3 / 100);
	for (int t = 0; t < SYNTH_LINE_THREADS; t++)
		assert_true(per_thread[t] > 0);
	synth_free(s);
}

static void test_detector_finds_false_sharing(void **state)
{
	(void)state;
	struct synth *s = make(true);
	struct fs_sample *fss = calloc(N, sizeof(*fss));
	assert_non_null(fss);
	for (int i = 0; i < N; i++) {
		struct ms_sample x;
		synth_next(s, &x);
		/* as the loop hands over samples of a HITM event */
		fss[i] = (struct fs_sample){ .addr = x.addr, .ip = x.ip, .period = x.period, .pid = x.pid,
					     .tid = x.tid, .cpu = x.cpu, .access = FS_ACC_HITM };
	}
	struct falseshare *fs = NULL;
	assert_int_equal(falseshare_new(&(struct falseshare_opts){ 0 }, &fs), 0);
	struct fs_report *rep = calloc(falseshare_max_report(fs), sizeof(*rep));
	assert_non_null(rep);
	int nr = falseshare_analyze(fs, fss, N, 1000000000ULL, rep, NULL);
	assert_true(nr >= 1);
	struct synth_object line;
	assert_int_equal(synth_data_object(0, &line), 0);
	/* the counters line is the hottest and is false sharing (inferred from HITM) */
	assert_int_equal(rep[0].line, line.start);
	assert_int_equal(rep[0].pid, SYNTH_PID);
	assert_int_equal(rep[0].cls, FS_CLASS_FALSE);
	assert_int_equal(rep[0].nthreads, SYNTH_LINE_THREADS);
	assert_int_equal(rep[0].written, 0x0101010101010101ULL);
	/* table lines have one thread each: contended (HITM) at most, never shared */
	for (int i = 1; i < nr; i++) {
		assert_int_equal(rep[i].cls, FS_CLASS_CONTENDED);
		assert_int_equal(rep[i].nthreads, 1);
	}
	free(rep);
	falseshare_free(fs);
	free(fss);
	synth_free(s);
}

static void test_two_node_model(void **state)
{
	(void)state;
	struct numa *nm = NULL;
	struct numa_opts o = { .ops = &synth_numa_ops };
	assert_int_equal(numa_new(&o, &nm), 0);
	assert_int_equal(numa_node_count(nm), 2);
	struct synth *s = make(true);
	struct numa_sample *ns = calloc(N, sizeof(*ns));
	struct numa_hotspot *hot = calloc(numa_max_hotspots(nm), sizeof(*hot));
	assert_non_null(ns);
	assert_non_null(hot);
	for (int i = 0; i < N; i++) {
		struct ms_sample x;
		synth_next(s, &x);
		ns[i] = (struct numa_sample){ .addr = x.addr, .flow_id = x.flow_id, .period = x.period, .pid = x.pid,
					      .cpu = x.cpu };
	}
	struct numa_stats st = { 0 };
	int nh = numa_resolve(nm, ns, N, 1, NULL, NULL, hot, &st);
	assert_true(nh > 0);
	assert_int_equal(st.unknown, 0);
	assert_int_equal(st.local + st.remote, N);
	/* CPU and page parity are independent: about half remote */
	assert_in_range(st.remote, N * 4 / 10, N * 6 / 10);
	bool remote_hot = false;
	for (int i = 0; i < nh; i++)
		remote_hot |= hot[i].mem_node != hot[i].cpu_node;
	assert_true(remote_hot);
	/* other processes are not the synthetic one */
	uint64_t page = 0x1000;
	int status = 0;
	assert_int_equal(synth_numa_ops.page_nodes(NULL, SYNTH_PID + 100, 1, &page, &status), -ESRCH);
	free(hot);
	free(ns);
	synth_free(s);
	numa_free(nm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_unchanged_but_addr),
		cmocka_unit_test(test_addresses_in_objects),
		cmocka_unit_test(test_detector_finds_false_sharing),
		cmocka_unit_test(test_two_node_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
