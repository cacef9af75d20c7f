/* pmu: the pmu-config parser, validation with refusal reasons (injected host and this host,
 * which has no hardware PMU), defaults per vendor, classes, the rotation plan, and the scale
 * math — also against the kernel's own time_enabled/time_running with software counters
 * rotated the way the agent rotates groups. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pmu.h"

static int parse(const char *s, struct pmu_config *c, char *why)
{
	return pmu_config_parse(s, strlen(s), c, why, 200);
}

static void test_parse_guide_payload(void **state)
{
	struct pmu_config c;
	char why[200] = "";
	const char *body = "{\"sentinel\":{\"groups\":[{\"name\":\"core\",\"events\":[\"cycles\",\"branch-misses\"]},"
			   "{\"name\":\"numa\",\"events\":[{\"name\":\"offcore-rd\",\"type\":\"raw\",\"config\":\"0x01b7\","
			   "\"config1\":\"0x63B800491\",\"period\":10007,\"class\":\"topology\"}]}]},"
			   "\"rotation_ms\":50}";
	assert_int_equal(parse(body, &c, why), 0);
	assert_true(c.present[0]);
	assert_false(c.present[1]);
	assert_int_equal(c.rotation_ms, 50);
	assert_int_equal(c.mode[0].ngroups, 2);
	assert_string_equal(c.mode[0].groups[0].name, "core");
	assert_int_equal(c.mode[0].groups[0].nevents, 2);
	assert_int_equal(c.mode[0].groups[0].ev[0].type, PERF_TYPE_HARDWARE);
	assert_string_equal(c.mode[0].groups[0].ev[0].fallback, "cpu-clock");
	const struct events_spec *e = &c.mode[0].groups[1].ev[0];
	assert_int_equal(e->type, PERF_TYPE_RAW);
	assert_int_equal(e->config, 0x01b7);
	assert_int_equal(e->config1, 0x63B800491ull);
	assert_int_equal(e->period, 10007);
	assert_false(e->freq);
	assert_int_equal(e->iclass, EVENTS_IC_TOPOLOGY);
	assert_string_equal(e->fallback, "");
}

static void test_parse_full_encoding(void **state)
{
	struct pmu_config c;
	char why[200] = "";
	const char *body = "{\"diagnostic\":{\"groups\":[{\"events\":[{\"name\":\"hitm2\",\"type\":\"raw\",\"config\":1234,"
			   "\"config2\":18446744073709551615,\"precise\":3,\"freq\":4000,\"sample_addr\":true,"
			   "\"access\":\"hitm\",\"fallback\":\"page-faults\"},"
			   "{\"name\":\"ibs\",\"type\":\"ibs_op\",\"config\":0,\"period\":65536,\"sample_addr\":true},"
			   "{\"name\":\"weird\",\"type\":42,\"config\":7,\"period\":1}]}]}}";
	assert_int_equal(parse(body, &c, why), 0);
	const struct pmu_group *g = &c.mode[1].groups[0];
	assert_string_equal(g->name, "g0");
	assert_int_equal(g->ev[0].config2, UINT64_MAX);
	assert_int_equal(g->ev[0].precise, 3);
	assert_true(g->ev[0].freq);
	assert_int_equal(g->ev[0].period, 4000);
	assert_int_equal(g->ev[0].access, EVENTS_ACC_HITM);
	assert_int_equal(g->ev[0].iclass, EVENTS_IC_TOPOLOGY); /* 1234 = 0x4d2: event select 0xd2 (snoops) */
	assert_string_equal(g->ev[1].pmu, "ibs_op");
	assert_int_equal(g->ev[1].iclass, EVENTS_IC_DATA_PATH);
	/* an encoding nobody knows is "unknown", explicitly */
	assert_int_equal(g->ev[2].iclass, EVENTS_IC_UNKNOWN);
	assert_string_equal(events_iclass_name(g->ev[2].iclass), "unknown");
}

static void test_parse_refusals(void **state)
{
	static const struct {
		const char *body, *why;
	} bad[] = {
		{ "[]", "the body must be an object" },
		{ "{}", "give \"sentinel\"" },
		{ "{\"sentinel\":{\"groups\":[]}}", "sentinel: groups: must be an array of 1..8" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[\"nope\"]}]}}", "unknown event 'nope'" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[{\"name\":\"x\",\"config\":1,\"period\":1}]}]}}",
		  "type: required" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[{\"name\":\"cycles\",\"precise\":4}]}]}}",
		  "sentinel.groups[0].events[0]: precise: must be 0..3" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[{\"name\":\"cycles\",\"period\":1,\"freq\":1}]}]}}",
		  "not both" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[{\"name\":\"cycles\",\"access\":\"store\"}]}]}}",
		  "needs sample_addr" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[{\"name\":\"cycles\",\"fallback\":\"hitm\"}]}]}}",
		  "not a software event" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[\"cycles\"]},{\"events\":[\"cycles\"]}]}}", "appears twice" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[\"cycles\"]}]},"
		  "\"diagnostic\":{\"groups\":[{\"events\":[{\"name\":\"cycles\",\"period\":5}]}]}}",
		  "another encoding" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[{\"name\":\"c\",\"type\":\"../x\",\"config\":1,\"period\":1}]}]}}",
		  "sysfs PMU name" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[{\"name\":\"c\",\"type\":\"raw\",\"config\":\"0xzz\",\"period\":1}]}]}}",
		  "not a number" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[\"cycles\"],\"extra\":1}]}}", "unknown field 'extra'" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[\"cycles\"]}]},\"rotation_ms\":1}", "rotation_ms" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[\"cycles\"]}]}", "invalid JSON" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[{\"name\":\"c\",\"type\":\"raw\",\"config\":1,\"period\":0}]}]}}",
		  "period: must be an integer 1..2^62" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[{\"name\":\"c\",\"type\":\"tracepoint\",\"config\":1,\"period\":1}]}]}}",
		  "sysfs PMU name" },
		{ "{\"sentinel\":{\"groups\":[{\"events\":[{\"name\":\"c d\",\"type\":\"raw\",\"config\":1,\"period\":1}]}]}}",
		  "name: 1..47 characters" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pmu_config c;
		char why[200] = "";
		int r = parse(bad[i].body, &c, why);
		if (r != -EINVAL || !strstr(why, bad[i].why))
			fail_msg("case %zu: r=%d why='%s', wanted '%s'", i, r, why, bad[i].why);
	}
	char big[PMU_MAX_BODY + 2];
	memset(big, ' ', sizeof(big));
	struct pmu_config c;
	char why[200];
	assert_int_equal(pmu_config_parse(big, sizeof(big), &c, why, sizeof(why)), -E2BIG);
}

/* An injected host: only cycles, cpu-clock and page-faults open. */
static int fake_open(void *ctx, const struct events_spec *s)
{
	if (s->type == PERF_TYPE_SOFTWARE || (s->type == PERF_TYPE_HARDWARE && s->config == PERF_COUNT_HW_CPU_CYCLES))
		return 0;
	return s->type == PERF_TYPE_RAW ? -ENOENT : -EOPNOTSUPP;
}

static int fake_type(void *ctx, const char *name)
{
	return strcmp(name, "ibs_op") ? -ENODEV : 11;
}

static const struct pmu_probe_ops fake_ops = { .try_open = fake_open, .pmu_type = fake_type };

static void test_validate_reasons(void **state)
{
	struct pmu_host h = { .vendor = "intel", .cpu_pmu = true, .counters = 2, .max_precise = 2, .ibs_op_type = -1 };
	struct pmu_config c;
	char why[300] = "";
	/* a raw event without fallback that the host cannot open */
	assert_int_equal(parse("{\"sentinel\":{\"groups\":[{\"name\":\"mem\",\"events\":[{\"name\":\"l3-miss\","
			       "\"fallback\":\"\"}]}]}}", &c, why), 0);
	assert_int_equal(pmu_config_validate(&c, &h, &fake_ops, NULL, why, sizeof(why)), -EOPNOTSUPP);
	assert_non_null(strstr(why, "sentinel group 'mem' event 'l3-miss': perf_event_open: No such file or directory"));
	assert_non_null(strstr(why, "does not count this event"));
	/* the same with its catalogue fallback is accepted (events.c falls back visibly) */
	assert_int_equal(parse("{\"sentinel\":{\"groups\":[{\"events\":[\"l3-miss\"]}]}}", &c, why), 0);
	assert_int_equal(pmu_config_validate(&c, &h, &fake_ops, NULL, why, sizeof(why)), 0);
	/* precise beyond the host */
	assert_int_equal(parse("{\"sentinel\":{\"groups\":[{\"events\":[{\"name\":\"cycles\",\"precise\":3}]}]}}", &c,
			       why), 0);
	assert_int_equal(pmu_config_validate(&c, &h, &fake_ops, NULL, why, sizeof(why)), -EOPNOTSUPP);
	assert_non_null(strstr(why, "precise level 3 exceeds this host's maximum 2"));
	/* a group needing more counters than the host has */
	assert_int_equal(parse("{\"diagnostic\":{\"groups\":[{\"name\":\"big\",\"events\":[\"cycles\","
			       "{\"name\":\"c2\",\"type\":\"hardware\",\"config\":0,\"period\":9},"
			       "{\"name\":\"c3\",\"type\":\"hardware\",\"config\":0,\"period\":7}]}]}}", &c, why), 0);
	/* c2/c3 are cycles encodings: they open; the group is too big */
	assert_int_equal(pmu_config_validate(&c, &h, &fake_ops, NULL, why, sizeof(why)), -E2BIG);
	assert_non_null(strstr(why, "diagnostic group 'big' needs 3 hardware counters but this host has 2"));
	/* a dynamic PMU: resolved when present, refused when absent */
	assert_int_equal(parse("{\"diagnostic\":{\"groups\":[{\"events\":[{\"name\":\"ibs\",\"type\":\"ibs_op\","
			       "\"config\":0,\"period\":65536}]}]}}", &c, why), 0);
	assert_int_equal(pmu_config_validate(&c, &h, &fake_ops, NULL, why, sizeof(why)), -EOPNOTSUPP);
	assert_int_equal(parse("{\"diagnostic\":{\"groups\":[{\"events\":[{\"name\":\"ibs\",\"type\":\"ibs_op\","
			       "\"config\":0,\"period\":65536,\"fallback\":\"page-faults\"}]}]}}", &c, why), 0);
	assert_int_equal(pmu_config_validate(&c, &h, &fake_ops, NULL, why, sizeof(why)), 0);
	assert_int_equal(c.mode[1].groups[0].ev[0].type, 11);
	assert_int_equal(parse("{\"diagnostic\":{\"groups\":[{\"events\":[{\"name\":\"x\",\"type\":\"nopmu\","
			       "\"config\":0,\"period\":5}]}]}}", &c, why), 0);
	assert_int_equal(pmu_config_validate(&c, &h, &fake_ops, NULL, why, sizeof(why)), -EOPNOTSUPP);
	assert_non_null(strstr(why, "PMU 'nopmu'"));
}

static void test_validate_on_this_host(void **state)
{
	/* the real thing: this host has no hardware PMU, so a raw PEBS event is refused with the
	 * kernel's errno and its explanation, while the software set is accepted */
	struct pmu_host h;
	assert_int_equal(pmu_host_probe(&h), 0);
	struct pmu_config c;
	char why[300] = "";
	assert_int_equal(parse("{\"sentinel\":{\"groups\":[{\"events\":[\"cpu-clock\",\"page-faults\"]}]}}", &c, why), 0);
	int r = pmu_config_validate(&c, &h, NULL, NULL, why, sizeof(why));
	if (r == -EPERM)
		skip(); /* not root / paranoid: the kernel refuses everything */
	assert_int_equal(r, 0);
	if (h.cpu_pmu) {
		print_message("host has a hardware PMU (%s %s): refusal case not applicable\n", h.vendor, h.pmu_name);
		return;
	}
	assert_int_equal(parse("{\"sentinel\":{\"groups\":[{\"name\":\"mem\",\"events\":[{\"name\":\"hitm\","
			       "\"fallback\":\"\"}]}]}}", &c, why), 0);
	r = pmu_config_validate(&c, &h, NULL, NULL, why, sizeof(why));
	print_message("refused: %s\n", why);
	assert_int_equal(r, -EOPNOTSUPP);
	assert_non_null(strstr(why, "sentinel group 'mem' event 'hitm': perf_event_open: "));
}

static void test_defaults(void **state)
{
	struct pmu_config c;
	struct pmu_host intel = { .vendor = "intel", .cpu_pmu = true, .pmu_name = "skylake", .counters = 4,
				  .ibs_op_type = -1 };
	pmu_defaults(&intel, 0, 0, &c);
	assert_string_equal(c.source, "intel-skylake+");
	bool hitm = false, offcore = false, l3 = false, pf = false;
	for (uint32_t g = 0; g < c.mode[1].ngroups; g++)
		for (uint32_t i = 0; i < c.mode[1].groups[g].nevents; i++) {
			const struct events_spec *e = &c.mode[1].groups[g].ev[i];
			hitm |= e->config == 0x04d2 && e->access == EVENTS_ACC_HITM && e->sample_addr && e->precise;
			offcore |= e->config == 0x01b7 && e->config1 == 0x63b800491ull;
			l3 |= e->config == 0x20d1;
			pf |= e->type == PERF_TYPE_SOFTWARE && e->config == PERF_COUNT_SW_PAGE_FAULTS && e->period == 64;
		}
	assert_true(hitm && offcore && l3 && pf);
	struct pmu_host haswell = intel;
	snprintf(haswell.pmu_name, sizeof(haswell.pmu_name), "haswell");
	pmu_defaults(&haswell, 0, 0, &c);
	assert_string_equal(c.source, "generic");
	struct pmu_host amd = { .vendor = "amd", .cpu_pmu = true, .ibs_op_type = 11 };
	pmu_defaults(&amd, 500, 32, &c);
	assert_string_equal(c.source, "amd");
	assert_string_equal(c.mode[1].groups[1].ev[0].name, "ibs-op");
	assert_int_equal(c.mode[0].ngroups, 2); /* core + sw: no IBS in sentinel */
	struct pmu_host none = { .vendor = "amd", .ibs_op_type = -1 };
	pmu_defaults(&none, 0, 0, &c);
	assert_string_equal(c.source, "generic");
	assert_string_equal(c.mode[0].groups[0].ev[0].name, "cycles");
	assert_string_equal(c.mode[0].groups[0].ev[0].fallback, "cpu-clock");
}

static void test_from_names(void **state)
{
	struct pmu_config c;
	char why[200] = "";
	assert_int_equal(pmu_config_from_names("cpu-clock, page-faults,cpu-clock", 777, 16, &c, why, sizeof(why)), 0);
	assert_int_equal(c.mode[0].ngroups, 2);
	assert_int_equal(c.mode[1].ngroups, 2);
	assert_int_equal(c.mode[0].groups[0].ev[0].period, 777);
	assert_int_equal(c.mode[0].groups[1].ev[0].period, 16);
	assert_int_equal(pmu_config_from_names("cpu-clock,nonsense", 0, 0, &c, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "unknown event 'nonsense'");
	struct pmu_config api;
	assert_int_equal(parse("{\"diagnostic\":{\"groups\":[{\"events\":[\"cycles\"]}]}}", &api, why), 0);
	pmu_config_from_names("cpu-clock", 0, 0, &c, why, sizeof(why));
	pmu_config_merge(&c, &api);
	assert_string_equal(c.mode[0].groups[0].ev[0].name, "cpu-clock");
	assert_string_equal(c.mode[1].groups[0].ev[0].name, "cycles");
}

static void test_classes(void **state)
{
	struct events_spec s = { .type = PERF_TYPE_HARDWARE, .config = PERF_COUNT_HW_BRANCH_MISSES };
	assert_int_equal(pmu_classify(&s), EVENTS_IC_CONTROL_PATH);
	s = (struct events_spec){ .type = PERF_TYPE_RAW, .config = 0x04d2 };
	assert_int_equal(pmu_classify(&s), EVENTS_IC_TOPOLOGY);
	s = (struct events_spec){ .type = PERF_TYPE_HW_CACHE, .config = PERF_COUNT_HW_CACHE_NODE };
	assert_int_equal(pmu_classify(&s), EVENTS_IC_TOPOLOGY);
	s = (struct events_spec){ .type = PERF_TYPE_RAW, .config = 0x99 };
	assert_int_equal(pmu_classify(&s), EVENTS_IC_UNKNOWN);
	s = (struct events_spec){ .type = PERF_TYPE_SOFTWARE, .config = PERF_COUNT_SW_PAGE_FAULTS };
	assert_int_equal(pmu_classify(&s), EVENTS_IC_DATA_PATH);
	s = (struct events_spec){ .type = 77 };
	assert_int_equal(pmu_classify(&s), EVENTS_IC_UNKNOWN);
	assert_string_equal(pmu_errno_reason(-ENOENT), "this host's PMU does not count this event");
}

static void test_plan(void **state)
{
	struct pmu_plan p;
	/* four groups of 2 hardware events, 4 counters: two rotation slots of two groups */
	uint32_t hw[4] = { 0x3, 0xc, 0x30, 0xc0 }, sw[4] = { 0x100, 0, 0, 0x200 };
	assert_int_equal(pmu_plan_build(hw, sw, 4, 4, &p), 0);
	assert_int_equal(p.nslots, 2);
	assert_int_equal(p.slot[0], 0x0f);
	assert_int_equal(p.slot[1], 0xf0);
	assert_int_equal(p.always, 0x300);
	assert_int_equal(p.wanted, 0x3ff);
	assert_int_equal(pmu_plan_active(&p, 0, 100000000), 0x30f);
	assert_int_equal(pmu_plan_active(&p, 150000000, 100000000), 0x3f0);
	assert_int_equal(pmu_plan_active(&p, 250000000, 100000000), 0x30f);
	/* counters unknown: one slot, the kernel multiplexes */
	assert_int_equal(pmu_plan_build(hw, sw, 4, 0, &p), 0);
	assert_int_equal(p.nslots, 1);
	assert_int_equal(pmu_plan_active(&p, 12345, 100), 0x3ff);
	/* largest first, first fit: {3 events} {2 events}+{1 event} with 3 counters */
	uint32_t hw2[3] = { 0x3, 0x4, 0x38 }, sw2[3] = { 0 };
	assert_int_equal(pmu_plan_build(hw2, sw2, 3, 3, &p), 0);
	assert_int_equal(p.nslots, 2);
	assert_int_equal(p.slot[0], 0x38);
	assert_int_equal(p.slot[1], 0x7);
	/* a group larger than the counters gets a slot of its own */
	uint32_t hw3[2] = { 0x1f, 0x20 };
	assert_int_equal(pmu_plan_build(hw3, sw2, 2, 2, &p), 0);
	assert_int_equal(p.nslots, 2);
	assert_int_equal(p.slot[0], 0x1f);
	/* software only */
	uint32_t hw4[1] = { 0 }, sw4[1] = { 0x1 };
	assert_int_equal(pmu_plan_build(hw4, sw4, 1, 4, &p), 0);
	assert_int_equal(p.nslots, 1);
	assert_int_equal(pmu_plan_active(&p, 999, 10), 0x1);
}

static void test_scale_math(void **state)
{
	/* 2 CPUs, enabled half the wanted time by rotation, the kernel ran it half of that: x4 */
	struct pmu_times t = { .wanted_ns = 1000000000, .nfds = 2, .rotated = true, .enabled_ns = 2 * 500000000ull,
			       .running_ns = 2 * 250000000ull };
	assert_true(pmu_scale(&t) == 4.0);
	/* not rotated, not multiplexed */
	t = (struct pmu_times){ .wanted_ns = 10, .nfds = 8, .enabled_ns = 80, .running_ns = 80 };
	assert_true(pmu_scale(&t) == 1.0);
	/* not rotated: clock skew between the agent's and the kernel's time is not a scale */
	t = (struct pmu_times){ .wanted_ns = 1000, .nfds = 2, .enabled_ns = 2003, .running_ns = 2003 };
	assert_true(pmu_scale(&t) == 1.0);
	/* rotation only: one of three slots */
	t = (struct pmu_times){ .wanted_ns = 900, .nfds = 2, .rotated = true, .enabled_ns = 600, .running_ns = 600 };
	assert_true(pmu_scale(&t) == 3.0);
	/* kernel multiplexing only (another user holds counters) */
	t = (struct pmu_times){ .wanted_ns = 100, .nfds = 1, .enabled_ns = 100, .running_ns = 40 };
	assert_true(pmu_scale(&t) == 2.5);
	/* never ran while wanted: no estimate */
	t = (struct pmu_times){ .wanted_ns = 900, .nfds = 2, .enabled_ns = 600, .running_ns = 0 };
	assert_true(pmu_scale(&t) == 0.0);
	t = (struct pmu_times){ .wanted_ns = 900, .nfds = 2 };
	assert_true(pmu_scale(&t) == 0.0);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* cpu-clock on CPU 0 for every task, as the agent opens its events: it counts the CPU's time
 * while enabled, idle or not, so the truth does not depend on how this thread is scheduled */
static int open_counter(void)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_SOFTWARE;
	a.config = PERF_COUNT_SW_CPU_CLOCK;
	a.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
	a.disabled = 1;
	return (int)syscall(__NR_perf_event_open, &a, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
}

static void test_scale_with_kernel_rotation(void **state)
{
	/* Three counters: "truth" always enabled, A and B rotated every 5 ms the way events_tick
	 * rotates groups (ioctl enable/disable, wall-clock slots). Each rotated count x pmu_scale,
	 * computed from the kernel's time_enabled/time_running, must estimate the truth (5 %: the
	 * rotation points are taken by this thread, which other processes may delay). */
	int truth = open_counter(), fa = open_counter(), fb = open_counter();
	if (truth < 0 || fa < 0 || fb < 0)
		skip(); /* per-CPU events need root or CAP_PERFMON */
	ioctl(truth, PERF_EVENT_IOC_ENABLE, 0);
	uint64_t start = mono_ns();
	int cur = -1;
	volatile uint64_t sink = 0;
	while (mono_ns() - start < 800000000ull) {
		uint64_t now = mono_ns();
		int want = (int)(((now - start) / 5000000ull) % 2);
		if (want != cur) {
			ioctl(want ? fb : fa, PERF_EVENT_IOC_ENABLE, 0);
			ioctl(want ? fa : fb, PERF_EVENT_IOC_DISABLE, 0);
			cur = want;
		}
		for (int i = 0; i < 1000; i++)
			sink += (uint64_t)i * i;
		if (sink == 1)
			usleep(1);
	}
	uint64_t end = mono_ns();
	ioctl(fa, PERF_EVENT_IOC_DISABLE, 0);
	ioctl(fb, PERF_EVENT_IOC_DISABLE, 0);
	ioctl(truth, PERF_EVENT_IOC_DISABLE, 0);
	uint64_t vt[3], va[3], vb[3]; /* value, time_enabled, time_running */
	assert_int_equal(read(truth, vt, sizeof(vt)), sizeof(vt));
	assert_int_equal(read(fa, va, sizeof(va)), sizeof(va));
	assert_int_equal(read(fb, vb, sizeof(vb)), sizeof(vb));
	struct pmu_times ta = { .wanted_ns = end - start, .nfds = 1, .rotated = true, .enabled_ns = va[1],
				.running_ns = va[2] };
	struct pmu_times tb = { .wanted_ns = end - start, .nfds = 1, .rotated = true, .enabled_ns = vb[1],
				.running_ns = vb[2] };
	double sa = pmu_scale(&ta), sb = pmu_scale(&tb);
	double ea = (double)va[0] * sa, eb = (double)vb[0] * sb, tr = (double)vt[0];
	print_message("truth %.0f ns; A %.0f x %.3f = %.0f; B %.0f x %.3f = %.0f\n", tr, (double)va[0], sa, ea,
		      (double)vb[0], sb, eb);
	assert_true(sa > 1.0 && sb > 1.0); /* both were rotated out part of the time */
	assert_true(ea > 0.95 * tr && ea < 1.05 * tr);
	assert_true(eb > 0.95 * tr && eb < 1.05 * tr);
	close(truth);
	close(fa);
	close(fb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_guide_payload),
		cmocka_unit_test(test_parse_full_encoding),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_validate_reasons),
		cmocka_unit_test(test_validate_on_this_host),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_from_names),
		cmocka_unit_test(test_classes),
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_scale_math),
		cmocka_unit_test(test_scale_with_kernel_rotation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
