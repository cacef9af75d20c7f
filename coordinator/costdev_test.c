/* costdev: stable shares stay quiet, a jump and a new hot function signal (and keep
 * signalling), thin events and extra hosts are ignored. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "costdev.h"

#define FA UINT64_C(0x1111111111111111)
#define FB UINT64_C(0x2222222222222222)
#define FC UINT64_C(0x3333333333333333)

struct got {
	int n;
	char last[COSTDEV_KEY_MAX];
};

static void on_key(void *arg, const char *key)
{
	struct got *g = arg;
	g->n++;
	snprintf(g->last, sizeof(g->last), "%s", key);
}

/* One window of host id: samples per function (0 = absent) for FA, FB, FC. */
static int feed(struct costdev *cd, const char *id, uint64_t a, uint64_t b, uint64_t c, struct got *g)
{
	struct wire_window *w;
	assert_int_equal(wire_window_new(3, 1, 3, 1, &w), 0);
	snprintf(w->agent_id, sizeof(w->agent_id), "%s", id);
	w->nevents = 1;
	snprintf(w->events[0].name, sizeof(w->events[0].name), "cpu-clock");
	const uint64_t f[3] = { FA, FB, FC }, s[3] = { a, b, c };
	w->nrows = 0;
	for (int i = 0; i < 3; i++)
		if (s[i]) {
			w->rows[w->nrows] = (struct wire_row){ .func_id = f[i], .samples = s[i], .event = 0, .numa_node = -1 };
			w->nrows++;
		}
	int r = costdev_window(cd, w, on_key, g);
	wire_window_free(w);
	return r;
}

static void test_stable_then_jump(void **state)
{
	(void)state;
	struct costdev *cd;
	assert_int_equal(costdev_new(NULL, &cd), 0);
	struct got g = { 0 };
	for (int i = 0; i < 30; i++)
		assert_int_equal(feed(cd, "h1", 900 + i % 7, 100 - i % 5, 0, &g), 0);
	assert_int_equal(g.n, 0);
	/* FB goes from ~10 % to 50 % of the host's samples */
	assert_int_equal(feed(cd, "h1", 500, 500, 0, &g), 1);
	char want[COSTDEV_KEY_MAX];
	snprintf(want, sizeof(want), "cost:%016" PRIx64 ":cpu-clock", FB);
	assert_string_equal(g.last, want);
	/* it keeps signalling while it lasts (the baseline learns slowly meanwhile) */
	int more = 0;
	for (int i = 0; i < 10; i++)
		more += feed(cd, "h1", 500, 500, 0, &g);
	assert_int_equal(more, 10);
	/* back to normal: quiet again */
	g.n = 0;
	for (int i = 0; i < 5; i++)
		feed(cd, "h1", 900, 100, 0, &g);
	assert_int_equal(g.n, 0);
	costdev_free(cd);
}

static void test_new_hot_function(void **state)
{
	(void)state;
	struct costdev *cd;
	assert_int_equal(costdev_new(NULL, &cd), 0);
	struct got g = { 0 };
	/* before the warm-up a new function is only learnt */
	feed(cd, "h1", 800, 0, 200, &g);
	assert_int_equal(g.n, 0);
	for (int i = 0; i < 15; i++)
		feed(cd, "h1", 1000, 0, 0, &g);
	assert_int_equal(g.n, 0);
	/* FB never seen on this warmed host takes 30 % */
	assert_int_equal(feed(cd, "h1", 700, 300, 0, &g), 1);
	char want[COSTDEV_KEY_MAX];
	snprintf(want, sizeof(want), "cost:%016" PRIx64 ":cpu-clock", FB);
	assert_string_equal(g.last, want);
	/* another host has its own baseline: not warmed yet, quiet */
	g.n = 0;
	feed(cd, "h2", 700, 300, 0, &g);
	assert_int_equal(g.n, 0);
	struct costdev_stats st;
	costdev_stats(cd, &st);
	assert_int_equal(st.hosts, 2);
	assert_true(st.deviations >= 1);
	costdev_free(cd);
}

static void test_thin_events_and_bounds(void **state)
{
	(void)state;
	struct costdev_opts o = { .max_hosts = 2, .warmup = 2 };
	struct costdev *cd;
	assert_int_equal(costdev_new(&o, &cd), 0);
	struct got g = { 0 };
	for (int i = 0; i < 5; i++)
		feed(cd, "h1", 40, 2, 0, &g);
	/* 45 samples < min_samples 50: a jump in so few samples says nothing */
	feed(cd, "h1", 5, 40, 0, &g);
	assert_int_equal(g.n, 0);
	feed(cd, "h2", 10, 10, 0, &g);
	assert_int_equal(feed(cd, "h3", 10, 10, 0, &g), 0);
	struct costdev_stats st;
	costdev_stats(cd, &st);
	assert_int_equal(st.hosts, 2);
	assert_int_equal(st.hosts_refused, 1);
	/* a window with no rows is fine */
	assert_int_equal(feed(cd, "h1", 0, 0, 0, &g), 0);
	costdev_free(cd);
	assert_null(costdev_free(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stable_then_jump),
		cmocka_unit_test(test_new_hot_function),
		cmocka_unit_test(test_thin_events_and_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
