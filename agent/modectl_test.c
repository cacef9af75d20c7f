/* Mode controller with simulated time: a load near the sentinel budget does not flap, shedding
 * and escalation do not fight, pins survive load changes until their TTL, auto un-pins, and the
 * hold time bounds the transition rate whatever the inputs do. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "modectl.h"

#define TICK_MS 250
#define NCPU 4
#define SB 5000
#define DB 20000

struct sim {
	struct modectl *m;
	uint64_t now;
	int applied;      /* mode the "loop" applied */
	uint64_t changes; /* changes seen by the loop */
	double rate[NCPU];
	bool anomaly;
	uint32_t seed;
};

static struct sim *sim_new(int start_mode, uint64_t hold_ms)
{
	static struct sim s;
	memset(&s, 0, sizeof(s));
	struct modectl_opts o = { .sentinel_budget = SB, .diagnostic_budget = DB, .hold_ms = hold_ms };
	assert_int_equal(modectl_new(&o, start_mode, &s.m), 0);
	s.applied = modectl_mode(s.m);
	s.now = 1000;
	s.seed = 12345;
	return &s;
}

static double jitter(struct sim *s, double pct)
{
	s->seed = s->seed * 1103515245u + 12345u;
	double u = (double)((s->seed >> 8) & 0xffff) / 65535.0; /* 0..1 */
	return 1.0 + pct * (2.0 * u - 1.0);
}

/* Runs for ms of simulated time; hot_rate is the demand (samples/s the handler wants) of the
 * hottest CPU, the others carry 30 % of it; jit is a relative random jitter per tick. */
static void run(struct sim *s, uint64_t ms, double hot_rate, double jit)
{
	for (uint64_t t = 0; t < ms; t += TICK_MS) {
		s->now += TICK_MS;
		for (int c = 0; c < NCPU; c++)
			s->rate[c] = (c == 0 ? hot_rate : hot_rate * 0.3) * (jit ? jitter(s, jit) : 1.0);
		struct modectl_input in = {
			.now_ms = s->now, .interval_ms = TICK_MS, .mode = s->applied, .ncpu = NCPU,
			.cpu_rate = s->rate, .anomaly = s->anomaly,
		};
		int m = modectl_tick(s->m, &in);
		assert_true(m == MODECTL_SENTINEL || m == MODECTL_DIAGNOSTIC);
		if (m != s->applied) {
			s->applied = m;
			s->changes++;
		}
	}
}

static void sim_free(struct sim *s)
{
	modectl_free(s->m);
}

/* The earlier controller's failure case: 1.05 x the sentinel budget for 60 s. */
static void test_near_budget_no_flap(void **state)
{
	struct sim *s = sim_new(MODECTL_AUTO, 5000);
	run(s, 60000, SB * 1.05, 0.10);
	assert_true(s->changes <= 1);
	struct modectl_status st;
	modectl_status(s->m, &st);
	assert_int_equal(st.safety, MODECTL_NORMAL);
	assert_true(st.load > 0.9 && st.load < 1.2);
	sim_free(s);
}

/* With an anomaly present the whole time at 1.05 x: one escalation, then nothing. */
static void test_near_budget_with_anomaly_one_change(void **state)
{
	struct sim *s = sim_new(MODECTL_AUTO, 5000);
	run(s, 5000, SB * 1.05, 0.10);
	s->anomaly = true;
	run(s, 55000, SB * 1.05, 0.10);
	assert_int_equal(s->changes, 1);
	assert_int_equal(s->applied, MODECTL_DIAGNOSTIC);
	sim_free(s);
}

/* Load against the budget of the mode it was measured in: in diagnostic the same demand is a
 * quarter of the load, and that never sends the controller back by itself. */
static void test_load_same_mode(void **state)
{
	struct sim *s = sim_new(MODECTL_AUTO, 2000);
	s->anomaly = true;
	run(s, 10000, SB * 1.5, 0);
	assert_int_equal(s->applied, MODECTL_DIAGNOSTIC);
	struct modectl_status st;
	modectl_status(s->m, &st);
	assert_true(st.load > 1.5 * SB / DB - 0.01 && st.load < 1.5 * SB / DB + 0.01);
	assert_int_equal(st.hot_cpu, 0);
	sim_free(s);
}

static void test_shed_heavy(void **state)
{
	struct sim *s = sim_new(MODECTL_AUTO, 3000);
	run(s, 2000, SB * 3, 0);
	struct modectl_status st;
	modectl_status(s->m, &st);
	assert_int_equal(st.safety, MODECTL_NORMAL); /* not for hold_ms yet */
	run(s, 3000, SB * 3, 0);
	modectl_status(s->m, &st);
	assert_int_equal(st.safety, MODECTL_SHED_HEAVY);
	assert_int_equal(st.shed_entries, 1);
	/* between the thresholds: stays shed */
	run(s, 10000, SB * 1.5, 0);
	modectl_status(s->m, &st);
	assert_int_equal(st.safety, MODECTL_SHED_HEAVY);
	/* under the exit threshold for hold_ms: back to normal */
	run(s, 6000, SB * 0.5, 0);
	modectl_status(s->m, &st);
	assert_int_equal(st.safety, MODECTL_NORMAL);
	assert_int_equal(s->changes, 0);
	sim_free(s);
}

/* An anomaly with a load far above even the diagnostic budget: escalation, shedding back to
 * sentinel, and then no fight — at most those two transitions in a minute. */
static void test_shed_beats_escalation(void **state)
{
	struct sim *s = sim_new(MODECTL_AUTO, 2000);
	s->anomaly = true;
	run(s, 60000, DB * 3, 0.1);
	struct modectl_status st;
	modectl_status(s->m, &st);
	assert_int_equal(st.safety, MODECTL_SHED_HEAVY);
	assert_int_equal(s->applied, MODECTL_SENTINEL);
	assert_string_equal(st.reason, "shed");
	assert_true(s->changes <= 2);
	sim_free(s);
}

static void test_pin_survives_load_until_ttl(void **state)
{
	struct sim *s = sim_new(MODECTL_AUTO, 2000);
	assert_int_equal(modectl_pin(s->m, MODECTL_DIAGNOSTIC, 20000, "api", s->now), MODECTL_DIAGNOSTIC);
	s->applied = MODECTL_DIAGNOSTIC;
	uint64_t t0 = s->now;
	run(s, 5000, SB * 0.1, 0);
	run(s, 5000, DB * 5, 0); /* shedding territory */
	run(s, 5000, 0, 0);
	struct modectl_status st;
	modectl_status(s->m, &st);
	assert_true(st.pinned);
	assert_string_equal(st.pin_source, "api");
	assert_int_equal(st.pin_expires_ms, t0 + 20000);
	assert_int_equal(s->applied, MODECTL_DIAGNOSTIC);
	run(s, 6000, 0, 0);
	modectl_status(s->m, &st);
	assert_false(st.pinned);
	assert_int_equal(s->applied, MODECTL_SENTINEL); /* no anomaly: automatic says sentinel */
	sim_free(s);
}

static void test_pin_until_cleared_and_auto(void **state)
{
	struct sim *s = sim_new(MODECTL_AUTO, 2000);
	modectl_pin(s->m, MODECTL_DIAGNOSTIC, 0, "coordinator", s->now);
	s->applied = MODECTL_DIAGNOSTIC;
	run(s, 600000, SB * 0.2, 0); /* ten minutes */
	assert_int_equal(s->applied, MODECTL_DIAGNOSTIC);
	struct modectl_status st;
	modectl_status(s->m, &st);
	assert_true(st.pinned);
	assert_int_equal(st.pin_expires_ms, 0);
	assert_int_equal(modectl_pin(s->m, MODECTL_AUTO, 0, "api", s->now), MODECTL_SENTINEL);
	s->applied = MODECTL_SENTINEL;
	modectl_status(s->m, &st);
	assert_false(st.pinned);
	/* auto with an anomaly: automatic escalation works again */
	s->anomaly = true;
	run(s, 3000, SB * 0.2, 0);
	assert_int_equal(s->applied, MODECTL_DIAGNOSTIC);
	sim_free(s);
}

static void test_config_mode_is_a_pin(void **state)
{
	struct sim *s = sim_new(MODECTL_DIAGNOSTIC, 2000);
	struct modectl_status st;
	modectl_status(s->m, &st);
	assert_true(st.pinned);
	assert_string_equal(st.pin_source, "config");
	run(s, 30000, 0, 0);
	assert_int_equal(s->applied, MODECTL_DIAGNOSTIC);
	modectl_pin(s->m, MODECTL_AUTO, 0, "api", s->now);
	assert_int_equal(modectl_mode(s->m), MODECTL_SENTINEL);
	sim_free(s);
}

/* A flickering anomaly cannot make the mode change more often than once per hold time. */
static void test_hold_bounds_transitions(void **state)
{
	struct sim *s = sim_new(MODECTL_AUTO, 5000);
	for (int i = 0; i < 240; i++) { /* 60 s */
		s->anomaly = (i / 2) % 2;
		run(s, TICK_MS, SB * 0.5, 0);
	}
	assert_true(s->changes <= 60000 / 5000 + 1);
	assert_true(s->changes >= 1);
	sim_free(s);
}

/* Leaving diagnostic needs the anomaly to be quiet for the hold time. */
static void test_quiet_before_deescalation(void **state)
{
	struct sim *s = sim_new(MODECTL_AUTO, 4000);
	s->anomaly = true;
	run(s, 500, 100, 0);
	assert_int_equal(s->applied, MODECTL_DIAGNOSTIC);
	run(s, 6000, 100, 0);
	s->anomaly = false;
	run(s, 3000, 100, 0);
	assert_int_equal(s->applied, MODECTL_DIAGNOSTIC);
	run(s, 1500, 100, 0);
	assert_int_equal(s->applied, MODECTL_SENTINEL);
	struct modectl_status st;
	modectl_status(s->m, &st);
	assert_string_equal(st.reason, "quiet");
	sim_free(s);
}

/* Intervals during which the mode changed are ignored for the load. */
static void test_mixed_interval_ignored(void **state)
{
	struct sim *s = sim_new(MODECTL_AUTO, 1000);
	double r[NCPU] = { SB * 10, 0, 0, 0 };
	for (int i = 0; i < 40; i++) {
		s->now += TICK_MS;
		struct modectl_input in = { .now_ms = s->now, .interval_ms = TICK_MS, .mode = MODECTL_SENTINEL,
					    .mixed = true, .ncpu = NCPU, .cpu_rate = r };
		assert_int_equal(modectl_tick(s->m, &in), MODECTL_SENTINEL);
	}
	struct modectl_status st;
	modectl_status(s->m, &st);
	assert_int_equal(st.safety, MODECTL_NORMAL);
	sim_free(s);
}

static void test_budgets_reset_safety(void **state)
{
	struct sim *s = sim_new(MODECTL_AUTO, 1000);
	run(s, 3000, SB * 4, 0);
	struct modectl_status st;
	modectl_status(s->m, &st);
	assert_int_equal(st.safety, MODECTL_SHED_HEAVY);
	assert_int_equal(modectl_set_budgets(s->m, SB * 10, DB * 10), 0);
	modectl_status(s->m, &st);
	assert_int_equal(st.safety, MODECTL_NORMAL);
	run(s, 3000, SB * 4, 0); /* 0.4 of the new budget */
	modectl_status(s->m, &st);
	assert_int_equal(st.safety, MODECTL_NORMAL);
	assert_int_equal(modectl_set_budgets(s->m, 10, 5), -EINVAL);
	sim_free(s);
}

static void test_bad_input(void **state)
{
	struct modectl *m;
	struct modectl_opts o = { .sentinel_budget = 10, .diagnostic_budget = 5 };
	assert_int_equal(modectl_new(&o, MODECTL_AUTO, &m), -EINVAL);
	o.diagnostic_budget = 10;
	o.shed_enter = 1.0;
	o.shed_exit = 2.0;
	assert_int_equal(modectl_new(&o, MODECTL_AUTO, &m), -EINVAL);
	o.shed_enter = o.shed_exit = 0;
	assert_int_equal(modectl_new(&o, 7, &m), -EINVAL);
	assert_int_equal(modectl_new(&o, MODECTL_AUTO, &m), 0);
	struct modectl_input in = { .now_ms = 1, .interval_ms = 0, .mode = 0 };
	assert_int_equal(modectl_tick(m, &in), -EINVAL);
	in.interval_ms = 10;
	in.ncpu = 2;
	assert_int_equal(modectl_tick(m, &in), -EINVAL); /* rates missing */
	in.ncpu = 0;
	in.mode = 5;
	assert_int_equal(modectl_tick(m, &in), -EINVAL);
	assert_int_equal(modectl_pin(m, 9, 0, "x", 1), -EINVAL);
	assert_int_equal(modectl_pin(m, MODECTL_DIAGNOSTIC, UINT64_MAX, "x", 10), -EINVAL);
	assert_string_equal(modectl_mode_name(MODECTL_DIAGNOSTIC), "diagnostic");
	modectl_free(m);
	assert_null(modectl_free(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_near_budget_no_flap),
		cmocka_unit_test(test_near_budget_with_anomaly_one_change),
		cmocka_unit_test(test_load_same_mode),
		cmocka_unit_test(test_shed_heavy),
		cmocka_unit_test(test_shed_beats_escalation),
		cmocka_unit_test(test_pin_survives_load_until_ttl),
		cmocka_unit_test(test_pin_until_cleared_and_auto),
		cmocka_unit_test(test_config_mode_is_a_pin),
		cmocka_unit_test(test_hold_bounds_transitions),
		cmocka_unit_test(test_quiet_before_deescalation),
		cmocka_unit_test(test_mixed_interval_ignored),
		cmocka_unit_test(test_budgets_reset_safety),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
