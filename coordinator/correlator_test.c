/* Tests of correlator.c on a fleet of four hosts: lb-1..lb-3 in group lb, db-1 in group db. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "correlator.h"

#define KEY "anomaly:rx_drops:drop"

static struct correlator *fleet(struct correlator_opts o)
{
	struct correlator *c = NULL;
	assert_int_equal(correlator_new(&o, &c), 0);
	assert_int_equal(correlator_host(c, "lb-1", "lb"), 0);
	assert_int_equal(correlator_host(c, "lb-2", "lb"), 0);
	assert_int_equal(correlator_host(c, "lb-3", "lb"), 0);
	assert_int_equal(correlator_host(c, "db-1", "db"), 0);
	return c;
}

/* Runs a tick and returns the number of decisions; *d must be freed by the caller. */
static size_t tick(struct correlator *c, uint64_t now, struct correlator_decision **d)
{
	size_t n = 0;
	*d = NULL;
	assert_int_equal(correlator_tick(c, now, d, &n), 0);
	return n;
}

static void test_count_trigger_extend_clear(void **state)
{
	(void)state;
	struct correlator *c = fleet((struct correlator_opts){ .span_ms = 10000, .min_hosts = 2, .diag_ttl_ms = 20000,
							      .clear_ms = 15000, .max_diag_fraction = 1.0 });
	struct correlator_decision *d;
	assert_int_equal(correlator_signal(c, "lb-1", KEY, 1000), 0);
	assert_int_equal(tick(c, 1000, &d), 0);
	assert_int_equal(correlator_signal(c, "db-1", KEY, 1500), 0); /* other group: does not count */
	assert_int_equal(tick(c, 1500, &d), 0);
	assert_int_equal(correlator_signal(c, "lb-2", KEY, 2000), 0);
	assert_int_equal(tick(c, 2000, &d), 1);
	assert_int_equal(d[0].kind, CORRELATOR_TRIGGER);
	assert_string_equal(d[0].group, "lb");
	assert_string_equal(d[0].key, KEY);
	assert_int_equal(d[0].agreeing, 2);
	assert_int_equal(d[0].nagents, 3); /* the whole group goes to diagnostic */
	assert_string_equal(d[0].agents[2], "lb-3");
	correlator_decisions_free(d, 1);
	struct correlator_stats st;
	correlator_get_stats(c, 2000, &st);
	assert_int_equal(st.hosts_in_diagnostic, 3);
	assert_int_equal(st.groups_in_diagnostic, 1);
	assert_int_equal(tick(c, 3000, &d), 0); /* no repeat */
	/* signals go on: extended before the TTL (22000) runs out */
	correlator_signal(c, "lb-1", KEY, 12500);
	assert_int_equal(tick(c, 12500, &d), 1);
	assert_int_equal(d[0].kind, CORRELATOR_EXTEND);
	correlator_decisions_free(d, 1);
	/* quiet for clear_ms after the last signal: cleared */
	assert_int_equal(tick(c, 27000, &d), 0);
	assert_int_equal(tick(c, 27500, &d), 1);
	assert_int_equal(d[0].kind, CORRELATOR_CLEAR);
	assert_int_equal(d[0].nagents, 3);
	correlator_decisions_free(d, 1);
	correlator_get_stats(c, 27500, &st);
	assert_int_equal(st.hosts_in_diagnostic, 0);
	assert_int_equal(st.groups_in_diagnostic, 0);
	assert_int_equal(st.triggers, 1);
	assert_int_equal(st.clears, 1);
	correlator_free(c);
}

static void test_span(void **state)
{
	(void)state;
	struct correlator *c = fleet((struct correlator_opts){ .span_ms = 5000, .min_hosts = 2, .max_diag_fraction = 1 });
	struct correlator_decision *d;
	correlator_signal(c, "lb-1", KEY, 1000);
	correlator_signal(c, "lb-2", KEY, 7000); /* 6 s apart: not within the span */
	assert_int_equal(tick(c, 7000, &d), 0);
	correlator_signal(c, "lb-3", KEY, 8000);
	assert_int_equal(tick(c, 8000, &d), 1);
	assert_int_equal(d[0].agreeing, 2);
	correlator_decisions_free(d, 1);
	correlator_free(c);
}

static void test_fraction(void **state)
{
	(void)state;
	struct correlator *c = fleet((struct correlator_opts){ .min_hosts = 1, .min_fraction = 0.9, .max_diag_fraction = 1 });
	struct correlator_decision *d;
	correlator_signal(c, "lb-1", KEY, 1000);
	correlator_signal(c, "lb-2", KEY, 1000);
	assert_int_equal(tick(c, 1000, &d), 0); /* 2 of 3 < 90 % */
	correlator_signal(c, "lb-3", KEY, 1100);
	assert_int_equal(tick(c, 1100, &d), 1);
	assert_int_equal(d[0].kind, CORRELATOR_TRIGGER);
	correlator_decisions_free(d, 1);
	/* db has one host: one signal is 100 % of it and min_hosts 1 */
	correlator_signal(c, "db-1", KEY, 1200);
	assert_int_equal(tick(c, 1200, &d), 1);
	assert_string_equal(d[0].group, "db");
	correlator_decisions_free(d, 1);
	correlator_free(c);
}

static void test_rate_limit(void **state)
{
	(void)state;
	struct correlator *c = fleet((struct correlator_opts){ .span_ms = 1000, .min_hosts = 2, .clear_ms = 1000,
							      .min_interval_ms = 60000, .max_diag_fraction = 1 });
	struct correlator_decision *d;
	correlator_signal(c, "lb-1", KEY, 1000);
	correlator_signal(c, "lb-2", KEY, 1000);
	assert_int_equal(tick(c, 1000, &d), 1);
	correlator_decisions_free(d, 1);
	assert_int_equal(tick(c, 2500, &d), 1);
	assert_int_equal(d[0].kind, CORRELATOR_CLEAR);
	correlator_decisions_free(d, 1);
	/* the same group again within min_interval: suppressed, said once */
	correlator_signal(c, "lb-1", KEY, 5000);
	correlator_signal(c, "lb-3", KEY, 5000);
	assert_int_equal(tick(c, 5000, &d), 1);
	assert_int_equal(d[0].kind, CORRELATOR_SUPPRESSED_RATE);
	assert_int_equal(d[0].nagents, 0);
	correlator_decisions_free(d, 1);
	correlator_signal(c, "lb-1", KEY, 5500);
	correlator_signal(c, "lb-3", KEY, 5500);
	assert_int_equal(tick(c, 5500, &d), 0);
	struct correlator_stats st;
	correlator_get_stats(c, 5500, &st);
	assert_int_equal(st.suppressed_rate, 1);
	assert_int_equal(st.suppressed_cap, 0);
	assert_int_equal(st.groups_in_diagnostic, 0);
	/* after the interval it triggers */
	correlator_signal(c, "lb-1", KEY, 61000);
	correlator_signal(c, "lb-2", KEY, 61000);
	assert_int_equal(tick(c, 61000, &d), 1);
	assert_int_equal(d[0].kind, CORRELATOR_TRIGGER);
	correlator_decisions_free(d, 1);
	correlator_free(c);
}

static void test_cap(void **state)
{
	(void)state;
	/* lb is 3 of 4 hosts: over a 50 % cap */
	struct correlator *c = fleet((struct correlator_opts){ .min_hosts = 2, .max_diag_fraction = 0.5 });
	struct correlator_decision *d;
	correlator_signal(c, "lb-1", KEY, 1000);
	correlator_signal(c, "lb-2", KEY, 1000);
	assert_int_equal(tick(c, 1000, &d), 1);
	assert_int_equal(d[0].kind, CORRELATOR_SUPPRESSED_CAP);
	correlator_decisions_free(d, 1);
	/* db (1 of 4) fits */
	struct correlator *c2 = fleet((struct correlator_opts){ .min_hosts = 1, .max_diag_fraction = 0.5 });
	correlator_signal(c2, "db-1", KEY, 1000);
	assert_int_equal(tick(c2, 1000, &d), 1);
	assert_int_equal(d[0].kind, CORRELATOR_TRIGGER);
	correlator_decisions_free(d, 1);
	correlator_free(c2);
	correlator_free(c);
}

static void test_bounds(void **state)
{
	(void)state;
	struct correlator *c = NULL;
	struct correlator_opts o = { .max_hosts = 2, .max_keys = 1 };
	assert_int_equal(correlator_new(&o, &c), 0);
	assert_int_equal(correlator_host(c, "a", "g"), 0);
	assert_int_equal(correlator_host(c, "b", "g"), 0);
	assert_int_equal(correlator_host(c, "c", "g"), -ENOSPC);
	assert_int_equal(correlator_host(c, "bad id", "g"), -EINVAL);
	assert_int_equal(correlator_signal(c, "nobody", KEY, 1), -ENOENT);
	assert_int_equal(correlator_signal(c, "a", KEY, 1), 0);
	assert_int_equal(correlator_signal(c, "a", "other", 1), -ENOSPC);
	assert_int_equal(correlator_signal(c, "a", "", 1), -EINVAL);
	struct correlator_stats st;
	correlator_get_stats(c, 1, &st);
	assert_int_equal(st.unknown_host, 1);
	assert_int_equal(st.key_drops, 1);
	correlator_free(c);
	o = (struct correlator_opts){ .min_fraction = 2 };
	assert_int_equal(correlator_new(&o, &c), -EINVAL);
	assert_null(correlator_free(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count_trigger_extend_clear),
		cmocka_unit_test(test_span),
		cmocka_unit_test(test_fraction),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
