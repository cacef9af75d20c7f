/* Control API helpers: which bind addresses count as loopback (the token rule), the token file
 * format, and the status document's shape (SPEC §13 keys) written from a snapshot. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "json.h"
#include "jsonw.h"
#include "metrics.h"
#include "symbolizer.h"

static void test_loopback(void **state)
{
	assert_true(api_is_loopback("127.0.0.1"));
	assert_true(api_is_loopback("127.1.2.3"));
	assert_true(api_is_loopback("::1"));
	assert_true(api_is_loopback("[::1]"));
	assert_true(api_is_loopback("localhost"));
	assert_false(api_is_loopback("0.0.0.0"));
	assert_false(api_is_loopback("::"));
	assert_false(api_is_loopback("10.1.2.3"));
	assert_false(api_is_loopback("no-such-host.invalid"));
	assert_false(api_is_loopback(""));
}

static int token_of(const char *content, char *buf, size_t size)
{
	char path[] = "/tmp/ms-token-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	int r = api_read_token(path, buf, size);
	unlink(path);
	return r;
}

static void test_token(void **state)
{
	char t[128];
	assert_int_equal(token_of("s3cret-token-0123456789\n", t, sizeof(t)), 0);
	assert_string_equal(t, "s3cret-token-0123456789");
	assert_int_equal(token_of("  s3cret-token-0123456789  \r\nsecond line", t, sizeof(t)), 0);
	assert_string_equal(t, "s3cret-token-0123456789");
	assert_int_equal(token_of("short\n", t, sizeof(t)), -EINVAL);
	assert_int_equal(token_of("\n", t, sizeof(t)), -EINVAL);
	assert_int_equal(token_of("has a space in the middle\n", t, sizeof(t)), -EINVAL);
	assert_int_equal(token_of("0123456789abcdef0123456789", t, 8), -E2BIG);
	assert_int_equal(api_read_token("/nonexistent/token", t, sizeof(t)), -ENOENT);
}

static void test_status_shape(void **state)
{
	struct metrics_snapshot *s = calloc(1, sizeof(*s));
	snprintf(s->agent_id, sizeof(s->agent_id), "host-1");
	s->nev = 1;
	snprintf(s->ev[0].name, sizeof(s->ev[0].name), "cycles");
	snprintf(s->ev[0].reason, sizeof(s->ev[0].reason), "cannot open: No such device; fell back to cpu-clock");
	s->have_ctl = true;
	s->ctl.mc.mode = 1;
	s->ctl.mc.pinned = true;
	s->ctl.mc.pin_mode = 1;
	snprintf(s->ctl.mc.pin_source, sizeof(s->ctl.mc.pin_source), "api");
	s->ctl.mc.reason = "pin";
	s->ctl.pin_expires_real_ms = 2000;
	s->ctl.sentinel_budget = 8000;
	s->ctl.diagnostic_budget = 20000;
	s->ctl.ntargets = 1;
	snprintf(s->ctl.targets[0], sizeof(s->ctl.targets[0]), "flow:10.1.0.0/16");
	s->have_top = true;
	s->top.nflows = 1;
	s->top.flows[0].id = 18446744073709551557ull;
	s->top.flows[0].t.family = 4;
	s->top.flows[0].t.saddr[10] = s->top.flows[0].t.saddr[11] = 0xff;
	s->top.flows[0].t.saddr[12] = 10;
	s->top.nfuncs = 1;
	snprintf(s->top.funcs[0].name, sizeof(s->top.funcs[0].name), "hot_loop");
	struct symbolizer_stats ss = { .regions = 3 };
	struct jsonw *j;
	assert_int_equal(jsonw_new(1 << 20, &j), 0);
	api_write_status(j, s, &ss, "1.0", 1500);
	const char *buf;
	size_t len;
	assert_int_equal(jsonw_result(j, &buf, &len), 0);
	struct json_doc *doc;
	assert_int_equal(json_parse(buf, len, NULL, &doc, NULL), 0);
	const struct json_value *root = json_doc_root(doc);
	static const char *const keys[] = { "mode", "pin", "budgets", "events", "uplink", "counters", "top",
					    "targets", "anomaly", "capability", "symbols", NULL };
	for (int i = 0; keys[i]; i++)
		if (!json_obj_get(root, keys[i]))
			fail_msg("status lacks %s", keys[i]);
	const char *str;
	json_get_string(json_obj_get(root, "mode"), &str, NULL);
	assert_string_equal(str, "diagnostic");
	const struct json_value *pin = json_obj_get(root, "pin");
	json_get_string(json_obj_get(pin, "source"), &str, NULL);
	assert_string_equal(str, "api");
	uint64_t u;
	assert_int_equal(json_get_u64(json_obj_get(pin, "expires"), &u), 0);
	assert_int_equal(u, 2000);
	const struct json_value *flow = json_arr_at(json_obj_get(json_obj_get(root, "top"), "flows"), 0);
	assert_int_equal(json_get_u64(json_obj_get(flow, "id"), &u), 0);
	assert_int_equal(u, 18446744073709551557ull); /* exact */
	json_get_string(json_obj_get(flow, "saddr"), &str, NULL);
	assert_string_equal(str, "10.0.0.0");
	const struct json_value *ev = json_arr_at(json_obj_get(root, "events"), 0);
	assert_non_null(json_obj_get(ev, "reason"));
	json_doc_free(doc);
	jsonw_free(j);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_status_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
