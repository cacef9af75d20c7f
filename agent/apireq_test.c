/* Control API request bodies: the guide's payloads parse as documented (including the bare
 * {"type":"flow","value":"10.1."} and [..] forms), and malformed JSON, wrong types, unknown
 * fields, out-of-range and oversized bodies are refused with the status and a reason. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apireq.h"
#include "loop.h"

#define S(x) x, strlen(x)

static void test_mode(void **state)
{
	struct apireq_mode m;
	struct apireq_err err;
	assert_int_equal(apireq_mode(S("{\"mode\":\"diagnostic\"}"), &m, &err), 0);
	assert_int_equal(m.mode, LOOP_MODE_DIAGNOSTIC);
	assert_int_equal(m.ttl_ms, 0);
	assert_int_equal(apireq_mode(S(" {\"mode\":\"sentinel\",\"ttl_s\":30} "), &m, &err), 0);
	assert_int_equal(m.mode, LOOP_MODE_SENTINEL);
	assert_int_equal(m.ttl_ms, 30000);
	assert_int_equal(apireq_mode(S("{\"mode\":\"auto\"}"), &m, &err), 0);
	assert_int_equal(m.mode, LOOP_MODE_AUTO);
	static const char *const bad[] = {
		"", "{", "{\"mode\":\"diagnostic\",}", "{\"mode\":1}", "{\"mode\":\"turbo\"}", "{}",
		"{\"mode\":\"diagnostic\",\"extra\":1}", "{\"mode\":\"diagnostic\",\"ttl_s\":-1}",
		"{\"mode\":\"diagnostic\",\"ttl_s\":1.5}", "{\"mode\":\"diagnostic\",\"ttl_s\":\"30\"}",
		"{\"mode\":\"diagnostic\",\"ttl_s\":99999999999}", "[\"diagnostic\"]", "\"diagnostic\"",
		"{\"mode\":\"auto\",\"ttl_s\":5}", "{\"mode\":\"diagnostic\",\"mode\":\"sentinel\"}",
		"{\"mode\":\"diag\\u0000nostic\"}", "{\"mode\":null}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		if (apireq_mode(S(bad[i]), &m, &err) >= 0)
			fail_msg("accepted %s", bad[i]);
		assert_int_equal(err.status, 400);
		assert_true(err.reason[0] != 0);
	}
	assert_int_equal(apireq_mode(S("{\"mode\":\"x\",\"other\":1}"), &m, &err), -EINVAL);
	assert_non_null(strstr(err.reason, "other"));
}

static void test_budgets(void **state)
{
	struct apireq_budgets b;
	struct apireq_err err;
	/* OPERATIONS_GUIDE §4.2 verbatim */
	assert_int_equal(apireq_budgets(S("{\"sentinel_samples_per_sec\":8000,\"diagnostic_samples_per_sec\":20000,"
					  "\"hard_drop_ns\":4000}"),
				    &b, &err),
			 0);
	assert_int_equal(b.set, LOOP_BUDGET_SENTINEL | LOOP_BUDGET_DIAGNOSTIC | LOOP_BUDGET_HARD_DROP);
	assert_int_equal(b.sentinel, 8000);
	assert_int_equal(b.diagnostic, 20000);
	assert_int_equal(b.hard_drop_ns, 4000);
	assert_int_equal(apireq_budgets(S("{\"hard_drop_ns\":0}"), &b, &err), 0);
	assert_int_equal(b.set, LOOP_BUDGET_HARD_DROP);
	static const char *const bad[] = {
		"{}", "{\"sentinel_samples_per_sec\":0}", "{\"sentinel_samples_per_sec\":10000001}",
		"{\"sentinel_samples_per_sec\":\"8000\"}", "{\"sentinel_samples_per_sec\":8000.5}",
		"{\"sentinel_samples_per_sec\":9000,\"diagnostic_samples_per_sec\":100}",
		"{\"hard_drop_ns\":1000000001}", "{\"sentinel_budget\":8000}", "[]",
		"{\"sentinel_samples_per_sec\":18446744073709551616}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (apireq_budgets(S(bad[i]), &b, &err) >= 0 || err.status != 400)
			fail_msg("accepted %s", bad[i]);
}

static void test_targets(void **state)
{
	struct targets_entry e[TARGETS_MAX];
	struct apireq_err err;
	char text[TARGETS_TEXT_MAX];
	/* §8 verbatim, §4.2's bare array, and the lone object the earlier agent refused */
	assert_int_equal(apireq_targets(S("{\"targets\":[{\"type\":\"flow\",\"value\":\"10.1.\"}]}"), e, TARGETS_MAX, &err), 1);
	targets_format(&e[0], text, sizeof(text));
	assert_string_equal(text, "flow:10.1.0.0/16");
	assert_int_equal(apireq_targets(S("[{\"type\":\"flow\",\"value\":\"10.1.\"}]"), e, TARGETS_MAX, &err), 1);
	assert_int_equal(apireq_targets(S("{\"type\":\"flow\",\"value\":\"10.1.\"}"), e, TARGETS_MAX, &err), 1);
	assert_int_equal(apireq_targets(S("{\"targets\":[]}"), e, TARGETS_MAX, &err), 0);
	assert_int_equal(apireq_targets(S("[]"), e, TARGETS_MAX, &err), 0);
	assert_int_equal(apireq_targets(S("[{\"type\":\"port\",\"value\":443},{\"type\":\"proto\",\"value\":\"udp\"},"
					  "{\"type\":\"proto\",\"value\":6},{\"type\":\"pid\",\"value\":1},"
					  "{\"type\":\"ifindex\",\"value\":1},{\"type\":\"ifindex\",\"value\":\"lo\"},"
					  "{\"type\":\"cgroup\",\"value\":\"/system.slice\"}]"),
				    e, TARGETS_MAX, &err),
			 7);
	assert_int_equal(e[0].kind, TARGETS_PORT);
	assert_int_equal(e[0].u.port, 443);
	assert_int_equal(e[5].u.ifindex, 1);
	static const char *const bad[] = {
		"{\"targets\":{}}", "{\"targets\":[1]}", "[{\"type\":\"flow\"}]", "[{\"value\":\"10.1.\"}]",
		"[{\"type\":\"flow\",\"value\":10}]", "[{\"type\":\"port\",\"value\":\"443\"}]",
		"[{\"type\":\"pid\",\"value\":-1}]", "[{\"type\":\"flow\",\"value\":\"10.1\"}]",
		"[{\"type\":\"zone\",\"value\":\"a\"}]", "[{\"type\":\"flow\",\"value\":\"10.1.\",\"x\":1}]",
		"{\"targets\":[],\"mode\":\"x\"}", "{\"type\":\"flow\",\"value\":\"10.1.\",\"x\":1}", "7",
		"[{\"type\":\"port\",\"value\":70000}]", "[{\"type\":\"proto\",\"value\":true}]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (apireq_targets(S(bad[i]), e, TARGETS_MAX, &err) >= 0 || err.status != 400)
			fail_msg("accepted %s", bad[i]);
	/* more than the bound */
	char big[8192] = "[";
	for (int i = 0; i <= TARGETS_MAX; i++)
		strcat(big, i ? ",{\"type\":\"port\",\"value\":1}" : "{\"type\":\"port\",\"value\":1}");
	strcat(big, "]");
	assert_int_equal(apireq_targets(S(big), e, TARGETS_MAX, &err), -EINVAL);
	assert_non_null(strstr(err.reason, "at most"));
}

static void test_regions(void **state)
{
	struct apireq_region r[4];
	struct apireq_err err;
	uint32_t pid;
	assert_int_equal(apireq_regions(S("{\"pid\":42,\"regions\":[{\"start\":\"0x7f0000001000\",\"size\":4096,"
					  "\"name\":\"jit_fn\",\"module\":\"[v8]\"},"
					  "{\"start\":18446744073709547520,\"size\":\"16\",\"name\":\"top\"}]}"),
				    true, &pid, r, 4, &err),
			 2);
	assert_int_equal(pid, 42);
	assert_int_equal(r[0].start, 0x7f0000001000ull);
	assert_string_equal(r[0].module, "[v8]");
	assert_int_equal(r[1].start, 18446744073709547520ull); /* exact 64-bit integer */
	assert_string_equal(r[1].module, "");
	assert_int_equal(apireq_regions(S("{\"pid\":7,\"start\":4096,\"size\":64,\"name\":\"g_table\"}"), false, &pid, r, 4,
				    &err),
			 1);
	assert_string_equal(r[0].name, "g_table");
	static const char *const bad[] = {
		"{\"regions\":[{\"start\":1,\"size\":1,\"name\":\"a\"}]}",
		"{\"pid\":0,\"start\":1,\"size\":1,\"name\":\"a\"}",
		"{\"pid\":1,\"start\":1,\"size\":0,\"name\":\"a\"}",
		"{\"pid\":1,\"start\":18446744073709551615,\"size\":2,\"name\":\"a\"}",
		"{\"pid\":1,\"start\":1,\"size\":1}",
		"{\"pid\":1,\"start\":1,\"size\":1,\"name\":\"\"}",
		"{\"pid\":1,\"start\":\"0xZZ\",\"size\":1,\"name\":\"a\"}",
		"{\"pid\":1,\"start\":\"0x10000000000000000\",\"size\":1,\"name\":\"a\"}",
		"{\"pid\":1,\"start\":-1,\"size\":1,\"name\":\"a\"}",
		"{\"pid\":1,\"start\":1.5,\"size\":1,\"name\":\"a\"}",
		"{\"pid\":1,\"regions\":[]}",
		"{\"pid\":1,\"regions\":[{\"start\":1,\"size\":1,\"name\":\"a\",\"zzz\":1}]}",
		"{\"pid\":1,\"start\":1,\"size\":1,\"name\":\"a\",\"module\":\"m\"}", /* data: no module */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (apireq_regions(S(bad[i]), false, &pid, r, 4, &err) >= 0)
			fail_msg("accepted %s", bad[i]);
	/* too many regions: 413 */
	assert_int_equal(apireq_regions(S("{\"pid\":1,\"regions\":[{\"start\":1,\"size\":1,\"name\":\"a\"},"
					  "{\"start\":2,\"size\":1,\"name\":\"b\"}]}"),
				    false, &pid, r, 1, &err),
			 -E2BIG);
	assert_int_equal(err.status, 413);
}

static void test_limits(void **state)
{
	struct apireq_mode m;
	struct apireq_err err;
	/* deeper than the bound */
	char deep[256];
	memset(deep, '[', 40);
	memset(deep + 40, ']', 40);
	deep[80] = 0;
	assert_int_equal(apireq_mode(S(deep), &m, &err), -EINVAL);
	assert_int_equal(err.status, 400);
	assert_non_null(strstr(err.reason, "deeper"));
	/* bigger than the bound: 413 */
	size_t n = APIREQ_MAX_BODY + 16;
	char *big = malloc(n + 1);
	memset(big, ' ', n);
	memcpy(big, "{\"mode\":\"x\"}", 12);
	big[n] = 0;
	assert_int_equal(apireq_mode(big, n, &m, &err), -E2BIG);
	assert_int_equal(err.status, 413);
	free(big);
	/* invalid UTF-8 */
	assert_int_equal(apireq_mode(S("{\"mode\":\"\xff\"}"), &m, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode),
		cmocka_unit_test(test_budgets),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_regions),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
