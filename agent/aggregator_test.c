/* aggregator: keys, bounds, overflow degradation (never cleared), window close. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "aggregator.h"
#include "synth.h"
#include "window.h"

static void mk(struct ms_sample *s, uint32_t flow_idx, uint64_t ip, uint32_t event)
{
	memset(s, 0, sizeof(*s));
	s->magic = MS_SAMPLE_MAGIC;
	s->version = MS_SAMPLE_VERSION;
	s->pid = 10;
	s->user_mode = 1;
	s->ip = ip;
	s->event = event;
	s->period = 100;
	s->gso_segs = 1;
	s->kstack_id = s->ustack_id = -1;
	if (flow_idx != UINT32_MAX) {
		synth_flow_tuple(flow_idx, &s->flow);
		s->flow_id = ms_flow_hash(&s->flow);
	}
}

static void add(struct aggregator *a, struct ms_sample *s)
{
	struct agg_sample as = { .s = s, .scale = 1.0, .numa_node = -1 };
	aggregator_add(a, &as);
}

static void test_same_key_merges(void **state)
{
	struct aggregator *a;
	assert_int_equal(aggregator_new(64, 64, &a), 0);
	struct ms_sample s;
	mk(&s, 1, 0x1000, 0);
	for (int i = 0; i < 10; i++)
		add(a, &s);
	mk(&s, 1, 0x2000, 0);
	add(a, &s);
	mk(&s, UINT32_MAX, 0x1000, 0); /* unattributed */
	add(a, &s);
	assert_int_equal(aggregator_rows(a), 3);
	struct window *w = aggregator_close(a);
	assert_non_null(w);
	assert_int_equal(w->nrows, 3);
	assert_int_equal(window_samples(w), 12);
	assert_int_equal(w->nflows, 1);
	double cost = 0;
	for (uint32_t i = 0; i < w->nrows; i++)
		cost += w->rows[i].norm_cost;
	assert_true(cost > 1199.0 && cost < 1201.0);
	window_free(w);
	/* the table is empty after close */
	assert_int_equal(aggregator_rows(a), 0);
	w = aggregator_close(a);
	assert_int_equal(w->nrows, 0);
	window_free(w);
	aggregator_free(a);
}

static void test_gso_and_scale_in_cost(void **state)
{
	struct aggregator *a;
	assert_int_equal(aggregator_new(16, 16, &a), 0);
	struct ms_sample s;
	mk(&s, 2, 0x1000, 0);
	s.gso_segs = 4;
	struct agg_sample as = { .s = &s, .scale = 2.0, .numa_node = -1 };
	aggregator_add(a, &as);
	struct window *w = aggregator_close(a);
	assert_int_equal(w->nrows, 1);
	assert_true(w->rows[0].norm_cost > 49.9 && w->rows[0].norm_cost < 50.1); /* 100*2/4 */
	window_free(w);
	aggregator_free(a);
}

static void test_overflow_degrades_never_clears(void **state)
{
	struct aggregator *a;
	const uint32_t max = 32;
	assert_int_equal(aggregator_new(max, 1024, &a), 0);
	struct ms_sample s;
	uint64_t n = 0;
	/* 4 flows × 100 distinct ips: far more keys than rows */
	for (uint32_t f = 0; f < 4; f++)
		for (uint64_t ip = 0; ip < 100; ip++) {
			mk(&s, f, 0x1000 + ip * 16, 0);
			add(a, &s);
			n++;
		}
	assert_true(aggregator_rows(a) <= max + max / 8 + 16);
	struct window *w = aggregator_close(a);
	/* every sample is still counted: under its full key or a coarser one */
	assert_int_equal(window_samples(w) + w->c.agg_dropped, n);
	assert_int_equal(w->c.agg_dropped, 0);
	assert_true(w->c.agg_degraded > 0);
	/* per-flow totals survive coarsening */
	for (uint32_t f = 0; f < 4; f++) {
		struct ms_flow_tuple t;
		synth_flow_tuple(f, &t);
		uint64_t id = ms_flow_hash(&t), got = 0;
		for (uint32_t i = 0; i < w->nrows; i++)
			if (w->rows[i].flow_id == id)
				got += w->rows[i].samples;
		assert_int_equal(got, 100);
	}
	window_free(w);
	aggregator_free(a);
}

static void test_exhaustion_keeps_every_sample(void **state)
{
	struct aggregator *a;
	assert_int_equal(aggregator_new(16, 8, &a), 0);
	struct ms_sample s;
	uint64_t n = 0;
	for (uint32_t f = 0; f < 2000; f++) {
		mk(&s, f, 0x1000 + f, (uint32_t)(f % 3));
		add(a, &s);
		n++;
	}
	struct window *w = aggregator_close(a);
	assert_int_equal(window_samples(w), n);
	assert_int_equal(w->c.agg_dropped, 0);
	uint64_t overflow = 0;
	for (uint32_t i = 0; i < w->nrows; i++)
		if (w->rows[i].flow_id == WINDOW_FLOW_OVERFLOW)
			overflow += w->rows[i].samples;
	assert_true(overflow > 0);
	assert_null(window_find_flow(w, WINDOW_FLOW_OVERFLOW));
	window_free(w);
	aggregator_free(a);
}

static void test_flow_dictionary_bound(void **state)
{
	struct aggregator *a;
	assert_int_equal(aggregator_new(4096, 8, &a), 0);
	struct ms_sample s;
	for (uint32_t f = 0; f < 20; f++) {
		mk(&s, f, 0x1000, 0);
		add(a, &s);
	}
	struct window *w = aggregator_close(a);
	assert_int_equal(w->nflows, 8);
	assert_int_equal(w->c.flows_overflow, 12);
	assert_int_equal(window_samples(w), 20);
	window_free(w);
	aggregator_free(a);
}

/* Tables start small and grow while a window fills: every key and flow inserted across the
 * growth steps is still there, each row once, in first-seen order, with its samples. */
static void test_tables_grow_keep_rows(void **state)
{
	(void)state;
	struct aggregator *a;
	const uint32_t nflows = 20000; /* several doublings past the 4096-slot start */
	assert_int_equal(aggregator_new(65536, 131072, &a), 0);
	struct ms_sample s;
	for (int round = 0; round < 2; round++)
		for (uint32_t f = 0; f < nflows; f++) {
			mk(&s, f, 0x1000 + f, 0);
			add(a, &s);
		}
	assert_int_equal(aggregator_rows(a), nflows);
	struct window *w = aggregator_close(a);
	assert_non_null(w);
	assert_int_equal(w->nrows, nflows);
	assert_int_equal(w->nflows, nflows);
	assert_int_equal(window_samples(w), 2 * nflows);
	for (uint32_t i = 0; i < w->nrows; i++) {
		assert_int_equal(w->rows[i].ip, 0x1000 + i); /* insertion order survives rehashing */
		assert_int_equal(w->rows[i].samples, 2);
	}
	assert_int_equal(w->c.agg_degraded, 0);
	assert_int_equal(w->c.flows_overflow, 0);
	window_free(w);
	/* the next window reuses the grown tables */
	mk(&s, 1, 0x1001, 0);
	add(a, &s);
	w = aggregator_close(a);
	assert_int_equal(w->nrows, 1);
	window_free(w);
	aggregator_free(a);
}

static void test_bad_sizes_rejected(void **state)
{
	struct aggregator *a = NULL;
	assert_int_equal(aggregator_new(8, 8, &a), -22);
	assert_int_equal(aggregator_new(16, 0, &a), -22);
	assert_null(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_key_merges),
		cmocka_unit_test(test_gso_and_scale_in_cost),
		cmocka_unit_test(test_overflow_degrades_never_clears),
		cmocka_unit_test(test_exhaustion_keeps_every_sample),
		cmocka_unit_test(test_flow_dictionary_bound),
		cmocka_unit_test(test_tables_grow_keep_rows),
		cmocka_unit_test(test_bad_sizes_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
