/* Agent configuration: the sampling keys parse with their documented meaning, bad values name
 * the line and the key, the command line wins over the file, and the guide's spellings work. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "sampler.h"

static int load(struct agent_config *c, const char *text, struct conf_error *err)
{
	memset(err, 0, sizeof(*err));
	int r = conf_defaults(&agent_config_schema, c, err);
	if (r < 0)
		return r;
	r = conf_load_buffer(&agent_config_schema, c, "agent.conf", text, strlen(text), err);
	if (r < 0)
		return r;
	return agent_config_validate(c, err);
}

static void test_defaults(void **state)
{
	struct agent_config c;
	struct conf_error err;
	assert_int_equal(load(&c, "", &err), 0);
	assert_int_equal(c.sentinel_budget, 5000);
	assert_int_equal(c.diagnostic_budget, 20000);
	assert_int_equal(c.mode, AGENT_MODE_AUTO);
	assert_int_equal(c.window_ms, 1000);
	assert_int_equal(c.metrics_port, 9105);
	assert_int_equal(c.control_port, 9200);
	assert_string_equal(c.control_address, "127.0.0.1");
	assert_int_equal(c.bpf_hook_tier, SAMPLER_TIER_AUTO);
	assert_true(c.thread_flow_ns > c.flow_skid_ns);
}

static void test_sampling_keys(void **state)
{
	struct agent_config c;
	struct conf_error err;
	const char *text = "# sampling\n"
			   "sentinel_budget=6000\n"
			   "diagnostic_budget=20000\n"
			   "hard_drop_ns=4000\n"
			   "flow_skid_ns=20000\n"
			   "thread_flow_ns=3000000\n"
			   "window_ms=2s\n"
			   "events=cpu-clock,page-faults\n"
			   "mode=sentinel\n"
			   "bpf_hook_tier=raw_tp\n"
			   "stacks=both\n";
	assert_int_equal(load(&c, text, &err), 0);
	assert_int_equal(c.sentinel_budget, 6000);
	assert_int_equal(c.hard_drop_ns, 4000);
	assert_int_equal(c.flow_skid_ns, 20000);
	assert_int_equal(c.thread_flow_ns, 3000000);
	assert_int_equal(c.window_ms, 2000);
	assert_string_equal(c.events, "cpu-clock,page-faults");
	assert_int_equal(c.mode, AGENT_MODE_SENTINEL);
	assert_int_equal(c.bpf_hook_tier, SAMPLER_TIER_RAW_TP);
	assert_int_equal(c.stacks, SAMPLER_STACKS_BOTH);
}

static void test_guide_template(void **state)
{
	/* OPERATIONS_GUIDE §3.1 verbatim */
	struct agent_config c;
	struct conf_error err;
	const char *text = "sentinel_budget=6000\ndiagnostic_budget=20000\n"
			   "clickhouse_endpoint=http://127.0.0.1:8123\nclickhouse_table=ms_flow_rollup\n"
			   "clickhouse_raw_table=ms_raw_samples\nclickhouse_flush_ms=500\n"
			   "metrics_address=0.0.0.0\nmetrics_port=9105\ncontrol_address=127.0.0.1\n"
			   "control_port=9200\nanomaly_enabled=true\nanomaly_interfaces=eth0,eth1\n"
			   "anomaly_interval_ms=500\nmode=false\nperf_mock_mode=false\n";
	assert_int_equal(load(&c, text, &err), 0);
	assert_int_equal(c.mode, AGENT_MODE_AUTO);
	assert_false(c.perf_mock_mode);
	assert_string_equal(c.metrics_address, "0.0.0.0");
}

static void test_errors_name_line_and_key(void **state)
{
	struct agent_config c;
	struct conf_error err;
	assert_true(load(&c, "sentinel_budget=5000\n\nmetrics_port=70000\n", &err) < 0);
	assert_non_null(strstr(err.msg, ":3:"));
	assert_non_null(strstr(err.msg, "metrics_port"));
	assert_true(load(&c, "sentinel_budget=abc\n", &err) < 0);
	assert_non_null(strstr(err.msg, "sentinel_budget"));
	assert_true(load(&c, "sentinel_budget=0\n", &err) < 0);
	assert_true(load(&c, "mode=turbo\n", &err) < 0);
	assert_non_null(strstr(err.msg, "mode"));
	assert_true(load(&c, "no_such_key=1\n", &err) < 0);
	assert_non_null(strstr(err.msg, "no_such_key"));
	/* cross-key check */
	assert_true(load(&c, "sentinel_budget=9000\ndiagnostic_budget=100\n", &err) < 0);
	assert_non_null(strstr(err.msg, "diagnostic_budget"));
	assert_true(load(&c, "ringbuf_bytes=100000\n", &err) < 0);
	assert_true(load(&c, "ringbuf_bytes=32768\n", &err) < 0);
}

static void test_ringbuf_auto(void **state)
{
	struct agent_config c;
	struct conf_error err;
	assert_int_equal(load(&c, "", &err), 0);
	assert_int_equal(agent_config_ringbuf_bytes(&c, 1), 1u << 20);
	assert_int_equal(agent_config_ringbuf_bytes(&c, 2), 1u << 20);
	assert_int_equal(agent_config_ringbuf_bytes(&c, 3), 2u << 20);
	assert_int_equal(agent_config_ringbuf_bytes(&c, 64), 32u << 20);
	assert_int_equal(agent_config_ringbuf_bytes(&c, 4096), 64u << 20);
	assert_int_equal(agent_config_ringbuf_bytes(&c, 0), 1u << 20);
	assert_int_equal(load(&c, "ringbuf_bytes=65536\n", &err), 0);
	assert_int_equal(agent_config_ringbuf_bytes(&c, 64), 65536);
}

static void test_cli_wins_and_aliases(void **state)
{
	struct agent_config c;
	struct conf_error err;
	assert_int_equal(load(&c, "sentinel_budget=6000\nperf_mock_mode=false\n", &err), 0);
	char a0[] = "agent", a1[] = "--sentinel-budget=8000", a2[] = "--perf-mock", a3[] = "--mock-period-ms=25";
	char *argv[] = { a0, a1, a2, a3, NULL };
	agent_config_alias_args(4, argv);
	struct conf_args args;
	assert_int_equal(conf_parse_args(&agent_config_schema, &c, 4, argv, &args, &err), 0);
	assert_int_equal(c.sentinel_budget, 8000);
	assert_true(c.perf_mock_mode);
	assert_int_equal(c.mock_period_ms, 25);
	char b1[] = "--no-perf-mock";
	char *argv2[] = { a0, b1, NULL };
	agent_config_alias_args(2, argv2);
	assert_int_equal(conf_parse_args(&agent_config_schema, &c, 2, argv2, &args, &err), 0);
	assert_false(c.perf_mock_mode);
}

static void test_control_keys(void **state)
{
	struct agent_config c;
	struct conf_error err;
	const char *text = "control_address=::1\nmetrics_address=localhost\ncontrol_timeout_ms=2s\n"
			   "mode_hold_ms=10s\nshed_enter_ratio=3\nshed_exit_ratio=1.5\n"
			   "targets=flow:10.1., port:443 ,cgroup:/system.slice\nmetrics_top_k=50\n"
			   "anomaly_latency_file=/run/lat\nanomaly_drop_ratio=0.5\n";
	assert_int_equal(load(&c, text, &err), 0);
	assert_string_equal(c.control_address, "::1");
	assert_string_equal(c.metrics_address, "localhost");
	assert_int_equal(c.control_timeout_ms, 2000);
	assert_int_equal(c.mode_hold_ms, 10000);
	assert_true(c.shed_enter_ratio == 3.0 && c.shed_exit_ratio == 1.5);
	assert_int_equal(c.metrics_top_k, 50);
	assert_true(c.anomaly_drop_ratio == 0.5);
	/* each bad value is named with its line and key */
	static const struct { const char *text, *needle; } bad[] = {
		{ "mode=sentinel\ncontrol_port=65536\n", ":2:" },
		{ "control_address=10.1\n", "control_address" },
		{ "control_address=host name\n", "control_address" },
		{ "targets=flow:10.1\n", "targets" },
		{ "targets=flow:10.1.,,port:1\n", "targets" },
		{ "shed_enter_ratio=1\nshed_exit_ratio=2\n", "shed" },
		{ "anomaly_drop_ratio=0.99\n", "anomaly_drop_ratio" },
		{ "anomaly_spike_ratio=1\n", "anomaly_spike_ratio" },
		{ "metrics_top_k=201\n", "metrics_top_k" },
		{ "control_timeout_ms=5\n", "control_timeout_ms" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (load(&c, bad[i].text, &err) >= 0)
			fail_msg("accepted %s", bad[i].text);
		if (!strstr(err.msg, bad[i].needle))
			fail_msg("%s: '%s' lacks '%s'", bad[i].text, err.msg, bad[i].needle);
	}
}

/* --help names every key with its default; the shipped example loads. */
static void test_help_and_example(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	conf_print_help(&agent_config_schema, f);
	fclose(f);
	for (size_t i = 0; i < agent_config_schema.nkeys; i++) {
		char flag[80];
		snprintf(flag, sizeof(flag), "--%s", agent_config_schema.keys[i].name);
		for (char *p = flag + 2; *p; p++)
			if (*p == '_')
				*p = '-';
		if (!strstr(buf, flag))
			fail_msg("--help lacks %s", flag);
	}
	assert_non_null(strstr(buf, "default: 9200"));
	free(buf);
	struct agent_config c;
	struct conf_error err;
	char path[4096];
	snprintf(path, sizeof(path), "%s", __FILE__);
	char *slash = strrchr(path, '/');
	assert_non_null(slash);
	snprintf(slash + 1, sizeof(path) - (size_t)(slash + 1 - path), "agent.conf");
	assert_int_equal(conf_defaults(&agent_config_schema, &c, &err), 0);
	if (conf_load_file(&agent_config_schema, &c, path, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(agent_config_validate(&c, &err), 0);
	assert_int_equal(c.control_port, 9200);
	assert_int_equal(c.mode, AGENT_MODE_AUTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_sampling_keys),
		cmocka_unit_test(test_guide_template),
		cmocka_unit_test(test_errors_name_line_and_key),
		cmocka_unit_test(test_cli_wins_and_aliases),
		cmocka_unit_test(test_ringbuf_auto),
		cmocka_unit_test(test_control_keys),
		cmocka_unit_test(test_help_and_example),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
