/* Per-window top-K: flows and functions by samples, (flow, function, event) by estimated events
 * per second; unattributed and overflow samples are not flows; k bounds every view. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "window.h"
#include "wintop.h"

static void row(struct window *w, uint64_t flow, uint64_t func, uint16_t ev, uint64_t samples, double cost)
{
	struct window_row *r = &w->rows[w->nrows++];
	memset(r, 0, sizeof(*r));
	r->flow_id = flow;
	r->func_id = func;
	r->event = ev;
	r->samples = samples;
	r->norm_cost = cost;
	r->iclass = 1;
}

static struct window *make(void)
{
	struct window *w = window_alloc(16, 4);
	w->seq = 9;
	w->start_ns = 1000000000ULL;
	w->end_ns = 3000000000ULL; /* 2 s */
	w->nevents = 2;
	strcpy(w->event_names[0], "cpu-clock");
	strcpy(w->event_names[1], "page-faults");
	for (uint64_t f = 1; f <= 3; f++) {
		w->flows[w->nflows].flow_id = f * 100;
		w->flows[w->nflows].tuple.sport = (uint16_t)f;
		w->nflows++;
	}
	w->funcs = calloc(2, sizeof(*w->funcs));
	w->funcs[0].func_id = 11;
	strcpy(w->funcs[0].name, "hot_loop");
	strcpy(w->funcs[0].module, "app");
	w->funcs[1].func_id = 12;
	strcpy(w->funcs[1].name, "parse");
	w->nfuncs = 2;
	row(w, 100, 11, 0, 10, 1000);
	row(w, 100, 11, 0, 5, 500);  /* same triple: merged */
	row(w, 200, 12, 1, 30, 300);
	row(w, 300, 11, 0, 20, 4000);
	row(w, 0, 12, 0, 50, 50);     /* unattributed */
	row(w, WINDOW_FLOW_OVERFLOW, 11, 0, 7, 7);
	return w;
}

static void test_views(void **state)
{
	struct window *w = make();
	struct wintop *t = malloc(sizeof(*t));
	assert_int_equal(wintop_compute(w, 2, t), 0);
	assert_int_equal(t->seq, 9);
	assert_int_equal(t->samples, 122);
	assert_int_equal(t->unattributed, 57);
	assert_int_equal(t->nflows, 2);
	assert_int_equal(t->flows[0].id, 200);
	assert_int_equal(t->flows[0].samples, 30);
	assert_int_equal(t->flows[0].t.sport, 2);
	assert_int_equal(t->flows[1].id, 300);
	assert_int_equal(t->nfuncs, 2);
	assert_int_equal(t->funcs[0].id, 12); /* 80 samples incl. unattributed */
	assert_string_equal(t->funcs[0].name, "parse");
	assert_string_equal(t->funcs[1].module, "app");
	assert_int_equal(t->nrows, 2);
	assert_int_equal(t->rows[0].flow_id, 300);
	assert_true(t->rows[0].per_sec == 2000.0);
	assert_int_equal(t->rows[1].flow_id, 100);
	assert_int_equal(t->rows[1].samples, 15);
	assert_string_equal(t->rows[1].func, "hot_loop");
	assert_string_equal(t->rows[1].event_name, "cpu-clock");
	assert_int_equal(wintop_compute(w, 100, t), 0);
	assert_int_equal(t->nflows, 3);
	assert_int_equal(t->nrows, 3);
	assert_int_equal(wintop_compute(w, 0, t), -EINVAL);
	assert_int_equal(wintop_compute(w, WINTOP_MAX + 1, t), -EINVAL);
	free(t);
	window_free(w);
}

static void test_empty(void **state)
{
	struct window *w = window_alloc(1, 1);
	struct wintop *t = malloc(sizeof(*t));
	assert_int_equal(wintop_compute(w, 5, t), 0);
	assert_int_equal(t->nflows + t->nfuncs + t->nrows, 0);
	free(t);
	window_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_views),
		cmocka_unit_test(test_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
