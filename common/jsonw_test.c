/* jsonw_test: writer output, escaping, limits, misuse and write -> parse round trips. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "jsonw.h"

static int setup(void **state)
{
	struct jsonw *w = NULL;
	if (jsonw_new(1 << 16, &w) < 0)
		return -1;
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	jsonw_free(*state);
	return 0;
}

static void expect_output(struct jsonw *w, const char *want, size_t want_len)
{
	const char *out;
	size_t n;
	assert_int_equal(jsonw_result(w, &out, &n), 0);
	if (n != want_len || memcmp(out, want, n) != 0)
		fail_msg("got <%s> want <%s>", out, want);
	assert_int_equal(out[n], 0);
}

static void test_basic(void **state)
{
	struct jsonw *w = *state;
	jsonw_begin_object(w);
	jsonw_key(w, "mode");
	jsonw_string(w, "sentinel");
	jsonw_key(w, "pin");
	jsonw_begin_object(w);
	jsonw_key(w, "expires");
	jsonw_null(w);
	jsonw_end_object(w);
	jsonw_key(w, "list");
	jsonw_begin_array(w);
	jsonw_bool(w, true);
	jsonw_bool(w, false);
	jsonw_i64(w, INT64_MIN);
	jsonw_u64(w, UINT64_MAX);
	jsonw_begin_array(w);
	jsonw_end_array(w);
	jsonw_begin_object(w);
	jsonw_end_object(w);
	jsonw_end_array(w);
	assert_int_equal(jsonw_end_object(w), 0);
	const char *want = "{\"mode\":\"sentinel\",\"pin\":{\"expires\":null},\"list\":[true,false,"
			   "-9223372036854775808,18446744073709551615,[],{}]}";
	expect_output(w, want, strlen(want));
}

static void test_escaping(void **state)
{
	struct jsonw *w = *state;
	static const char in[] = "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f\0z\xc3\xa9\xf0\x9f\x98\x80";
	assert_int_equal(jsonw_stringn(w, in, sizeof(in) - 1), 0);
	static const char want[] = "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\\u0000z"
				   "\xc3\xa9\xf0\x9f\x98\x80\"";
	expect_output(w, want, sizeof(want) - 1);

	/* Invalid UTF-8: every bad byte becomes U+FFFD; valid neighbours survive. */
	static const struct {
		const char *in, *want;
	} bad[] = {
		{ "a\xff" "b", "\"a\xef\xbf\xbd" "b\"" },
		{ "\xc0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\"" },
		{ "\xe2\x82", "\"\xef\xbf\xbd\xef\xbf\xbd\"" },
		{ "\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" },
		{ "\xf4\x90\x80\x80x", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx\"" },
		{ "\xe2\x82\xac\x80", "\"\xe2\x82\xac\xef\xbf\xbd\"" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		jsonw_reset(w);
		assert_int_equal(jsonw_string(w, bad[i].in), 0);
		expect_output(w, bad[i].want, strlen(bad[i].want));
		const char *out;
		size_t n;
		struct json_doc *doc = NULL;
		assert_int_equal(jsonw_result(w, &out, &n), 0);
		assert_int_equal(json_parse(out, n, NULL, &doc, NULL), 0);
		json_doc_free(doc);
	}
	/* Keys are escaped the same way. */
	jsonw_reset(w);
	jsonw_begin_object(w);
	jsonw_keyn(w, "k\"\n\0", 4);
	jsonw_null(w);
	jsonw_end_object(w);
	expect_output(w, "{\"k\\\"\\n\\u0000\":null}", 20);
}

static void test_doubles(void **state)
{
	struct jsonw *w = *state;
	jsonw_begin_array(w);
	jsonw_double(w, 0.1);
	jsonw_double(w, -0.0);
	jsonw_double(w, 1e300);
	jsonw_double(w, 5e-324);
	jsonw_double(w, 100.0);
	jsonw_double(w, NAN);
	jsonw_double(w, INFINITY);
	jsonw_double(w, -INFINITY);
	jsonw_end_array(w);
	expect_output(w, "[0.1,-0,1e+300,4.94065645841247e-324,100,null,null,null]", 56);

	/* Pseudo-random bit patterns read back bit-exact. */
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 2000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double d;
		memcpy(&d, &x, sizeof(d));
		if (!isfinite(d))
			continue;
		jsonw_reset(w);
		assert_int_equal(jsonw_double(w, d), 0);
		const char *out;
		size_t n;
		struct json_doc *doc = NULL;
		assert_int_equal(jsonw_result(w, &out, &n), 0);
		assert_int_equal(json_parse(out, n, NULL, &doc, NULL), 0);
		double back;
		assert_int_equal(json_get_double(json_doc_root(doc), &back), 0);
		assert_memory_equal(&back, &d, sizeof(d));
		json_doc_free(doc);
	}
}

static void test_round_trip(void **state)
{
	struct jsonw *w = *state;
	static const char blob[] = "a\0b\"\\\x01\xe2\x82\xac";
	jsonw_begin_object(w);
	jsonw_key(w, "i64");
	jsonw_i64(w, INT64_MIN);
	jsonw_key(w, "u64");
	jsonw_u64(w, UINT64_MAX);
	jsonw_key(w, "big_exact");
	jsonw_u64(w, 9007199254740993ull);
	jsonw_key(w, "d");
	jsonw_double(w, -1.25e-5);
	jsonw_key(w, "s");
	jsonw_stringn(w, blob, sizeof(blob) - 1);
	jsonw_key(w, "b");
	jsonw_bool(w, true);
	jsonw_key(w, "n");
	jsonw_string(w, NULL);
	jsonw_key(w, "raw");
	jsonw_number_text(w, "-12.5e+3", 8);
	jsonw_end_object(w);
	const char *out;
	size_t n;
	assert_int_equal(jsonw_result(w, &out, &n), 0);

	struct json_doc *doc = NULL;
	struct json_error err;
	if (json_parse(out, n, NULL, &doc, &err))
		fail_msg("%s: %s", out, err.msg);
	const struct json_value *root = json_doc_root(doc);
	int64_t i;
	uint64_t u;
	double d;
	bool b;
	const char *s;
	size_t slen;
	assert_int_equal(json_get_i64(json_obj_get(root, "i64"), &i), 0);
	assert_true(i == INT64_MIN);
	assert_int_equal(json_get_u64(json_obj_get(root, "u64"), &u), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(json_get_u64(json_obj_get(root, "big_exact"), &u), 0);
	assert_true(u == 9007199254740993ull);
	assert_int_equal(json_get_double(json_obj_get(root, "d"), &d), 0);
	assert_true(d == -1.25e-5);
	assert_int_equal(json_get_string(json_obj_get(root, "s"), &s, &slen), 0);
	assert_int_equal(slen, sizeof(blob) - 1);
	assert_memory_equal(s, blob, slen);
	assert_int_equal(json_get_bool(json_obj_get(root, "b"), &b), 0);
	assert_true(b);
	assert_int_equal(json_type(json_obj_get(root, "n")), JSON_NULL);
	assert_int_equal(json_get_double(json_obj_get(root, "raw"), &d), 0);
	assert_true(d == -12500.0);

	/* Writing the parsed document back gives the same bytes (canonical form). */
	struct jsonw *w2 = NULL;
	assert_int_equal(jsonw_new(1 << 16, &w2), 0);
	assert_int_equal(jsonw_value(w2, root), 0);
	expect_output(w2, out, n);
	jsonw_free(w2);
	json_doc_free(doc);
}

static void test_size_limit(void **state)
{
	struct jsonw *w = NULL;
	assert_int_equal(jsonw_new(10, &w), 0);
	jsonw_begin_array(w);
	jsonw_u64(w, 1234567);
	assert_int_equal(jsonw_end_array(w), 0); /* 9 bytes */
	expect_output(w, "[1234567]", 9);
	jsonw_reset(w);
	jsonw_begin_array(w);
	jsonw_u64(w, 12345678);
	assert_int_equal(jsonw_end_array(w), 0); /* exactly the limit */
	expect_output(w, "[12345678]", 10);
	jsonw_reset(w);
	jsonw_begin_array(w);
	jsonw_u64(w, 123456789);
	assert_int_equal(jsonw_end_array(w), -ENOSPC); /* 11th byte */
	const char *out;
	size_t n;
	assert_int_equal(jsonw_result(w, &out, &n), -ENOSPC);
	/* Sticky: later calls do nothing and report the same error. */
	assert_int_equal(jsonw_null(w), -ENOSPC);
	assert_int_equal(jsonw_error(w), -ENOSPC);
	jsonw_reset(w);
	assert_int_equal(jsonw_string(w, "0123456789"), -ENOSPC);
	jsonw_free(w);
	assert_int_equal(jsonw_new(0, &w), -EINVAL);

	/* Growth across many reallocations up to a larger bound. */
	assert_int_equal(jsonw_new(100000, &w), 0);
	jsonw_begin_array(w);
	for (int i = 0; i < 20000 && !jsonw_error(w); i++)
		jsonw_i64(w, i);
	assert_int_equal(jsonw_error(w), -ENOSPC);
	jsonw_free(w);
}

static void test_misuse(void **state)
{
	struct jsonw *w = *state;
	const char *out;
	size_t n;
	jsonw_begin_object(w);
	assert_int_equal(jsonw_i64(w, 1), -EINVAL); /* value without a key */
	jsonw_reset(w);
	jsonw_begin_array(w);
	assert_int_equal(jsonw_key(w, "k"), -EINVAL); /* key in an array */
	jsonw_reset(w);
	jsonw_begin_array(w);
	assert_int_equal(jsonw_end_object(w), -EINVAL);
	jsonw_reset(w);
	assert_int_equal(jsonw_end_array(w), -EINVAL);
	jsonw_reset(w);
	jsonw_begin_object(w);
	jsonw_key(w, "k");
	assert_int_equal(jsonw_key(w, "k2"), -EINVAL); /* two keys in a row */
	jsonw_reset(w);
	jsonw_begin_object(w);
	jsonw_key(w, "k");
	assert_int_equal(jsonw_result(w, &out, &n), -EINVAL); /* key pending */
	assert_int_equal(jsonw_end_object(w), -EINVAL);
	jsonw_reset(w);
	jsonw_begin_array(w);
	assert_int_equal(jsonw_result(w, &out, &n), -EINVAL); /* unclosed */
	assert_int_equal(jsonw_newline(w), -EINVAL);
	jsonw_reset(w);
	jsonw_null(w);
	assert_int_equal(jsonw_null(w), -EINVAL); /* two top-level values */
	jsonw_reset(w);
	assert_int_equal(jsonw_newline(w), -EINVAL); /* nothing to end */
	jsonw_reset(w);
	assert_int_equal(jsonw_number_text(w, "01", 2), -EINVAL);
	jsonw_reset(w);
	assert_int_equal(jsonw_value(w, NULL), -EINVAL);
	jsonw_reset(w);
	for (unsigned i = 0; i < JSONW_MAX_DEPTH; i++)
		jsonw_begin_array(w);
	assert_int_equal(jsonw_error(w), 0);
	assert_int_equal(jsonw_begin_array(w), -EINVAL);
	jsonw_reset(w);
	assert_int_equal(jsonw_result(w, &out, &n), 0); /* empty is fine after reset */
	assert_int_equal(n, 0);
	assert_null(jsonw_free(NULL));
}

static void test_json_lines_and_take(void **state)
{
	struct jsonw *w = *state;
	for (int i = 0; i < 3; i++) {
		jsonw_begin_object(w);
		jsonw_key(w, "seq");
		jsonw_i64(w, i);
		jsonw_end_object(w);
		assert_int_equal(jsonw_newline(w), 0);
	}
	expect_output(w, "{\"seq\":0}\n{\"seq\":1}\n{\"seq\":2}\n", 30);
	char *buf;
	size_t n;
	assert_int_equal(jsonw_take(w, &buf, &n), 0);
	assert_int_equal(n, 30);
	assert_string_equal(buf, "{\"seq\":0}\n{\"seq\":1}\n{\"seq\":2}\n");
	free(buf);
	/* The writer is empty and usable again; take of an empty writer gives "". */
	expect_output(w, "", 0);
	assert_int_equal(jsonw_take(w, &buf, &n), 0);
	assert_int_equal(n, 0);
	assert_string_equal(buf, "");
	free(buf);
	jsonw_u64(w, 7);
	expect_output(w, "7", 1);
	jsonw_begin_array(w);
	assert_int_equal(jsonw_take(w, &buf, &n), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_doubles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test_setup_teardown(test_misuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_lines_and_take, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
