/* Control plane bundle with the synthetic source: per-CPU demand from the samples the sink saw
 * drives shedding, targets filter and count, a lone pid becomes the BPF filter, pins show their
 * real-time expiry in the snapshot. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "control.h"

#define MS 1000000ULL

static struct control *make(uint32_t base_tgid, struct targets *t)
{
	struct control_opts o = {
		.start_mode = MODECTL_AUTO,
		.mode = { .sentinel_budget = 1000, .diagnostic_budget = 4000, .hold_ms = 1000 },
		.targets = t,
		.base_filter_tgid = base_tgid,
		.ncpu = 2,
	};
	struct control *c;
	assert_int_equal(control_new(&o, &c), 0);
	return c;
}

static void feed(struct control *c, uint32_t cpu, int n)
{
	struct ms_sample s;
	memset(&s, 0, sizeof(s));
	s.cpu = cpu;
	s.flow_id = 1;
	s.pid = 77;
	for (int i = 0; i < n; i++)
		control_accept(c, &s);
}

static void test_demand_sheds(void **state)
{
	struct control *c = make(0, NULL);
	uint64_t t = 1000 * MS;
	bool ticked;
	control_tick(c, t, t, MODECTL_SENTINEL, &ticked);
	assert_false(ticked);
	for (int i = 0; i < 12; i++) { /* 3 s at 3x the budget on CPU 1 */
		feed(c, 1, 750);
		feed(c, 0, 50);
		t += 250 * MS;
		control_tick(c, t, t, MODECTL_SENTINEL, &ticked);
		assert_true(ticked);
	}
	struct control_snapshot *s = malloc(sizeof(*s));
	control_snapshot(c, t, t, s);
	assert_int_equal(s->mc.safety, MODECTL_SHED_HEAVY);
	assert_int_equal(s->mc.hot_cpu, 1);
	assert_true(s->mc.load > 2.9 && s->mc.load < 3.1);
	assert_int_equal(s->accepted, 12 * 800);
	free(s);
	control_free(c);
}

static void test_targets_and_pid_filter(void **state)
{
	struct targets_entry e;
	struct targets *t;
	assert_int_equal(targets_parse_spec("pid:77", &e, NULL, 0), 0);
	assert_int_equal(targets_new(&e, 1, NULL, &t, NULL, 0), 0);
	struct control *c = make(5, t);
	assert_int_equal(control_filter_tgid(c), 77);
	struct ms_sample s;
	memset(&s, 0, sizeof(s));
	s.pid = 78;
	assert_false(control_accept(c, &s));
	s.pid = 77;
	assert_true(control_accept(c, &s));
	assert_int_equal(control_filtered(c), 1);
	/* flow targets: the BPF filter falls back to the configured one */
	assert_int_equal(targets_parse_spec("flow:10.1.", &e, NULL, 0), 0);
	assert_int_equal(targets_new(&e, 1, NULL, &t, NULL, 0), 0);
	assert_int_equal(control_set_targets(c, t), 5);
	struct control_snapshot *snap = malloc(sizeof(*snap));
	control_snapshot(c, 0, 0, snap);
	assert_int_equal(snap->ntargets, 1);
	assert_string_equal(snap->targets[0], "flow:10.1.0.0/16");
	/* none */
	assert_int_equal(control_set_targets(c, NULL), 5);
	control_snapshot(c, 0, 0, snap);
	assert_int_equal(snap->ntargets, 0);
	free(snap);
	control_free(c);
}

static void test_pin_snapshot(void **state)
{
	struct control *c = make(0, NULL);
	char why[128];
	uint64_t mono = 5000 * MS, real = 1700000000000ULL * MS;
	assert_int_equal(control_pin(c, MODECTL_DIAGNOSTIC, 30000, "coordinator", mono, why, sizeof(why)), MODECTL_DIAGNOSTIC);
	struct control_snapshot *s = malloc(sizeof(*s));
	control_snapshot(c, mono + 10000 * MS, real, s);
	assert_true(s->mc.pinned);
	assert_string_equal(s->mc.pin_source, "coordinator");
	assert_int_equal(s->pin_expires_real_ms, 1700000000000ULL + 20000);
	assert_true(control_pin(c, 9, 0, "api", mono, why, sizeof(why)) < 0);
	assert_true(why[0] != 0);
	assert_true(control_set_budgets(c, 100, 50, 0, why, sizeof(why)) < 0);
	assert_int_equal(control_set_budgets(c, 100, 500, 7, why, sizeof(why)), MODECTL_DIAGNOSTIC);
	control_snapshot(c, mono, real, s);
	assert_int_equal(s->sentinel_budget, 100);
	assert_int_equal(s->hard_drop_ns, 7);
	free(s);
	control_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demand_sheds),
		cmocka_unit_test(test_targets_and_pid_filter),
		cmocka_unit_test(test_pin_snapshot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
