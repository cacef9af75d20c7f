/* json_test: the parser's acceptance table, limits, 64-bit exactness, UTF-8 and the DOM API. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* Parses s (length n, or strlen when n is 0) with lim; returns the code, frees the doc. */
static int parse_code(const char *s, size_t n, const struct json_limits *lim,
		      struct json_error *err)
{
	struct json_doc *doc = NULL;
	int r = json_parse(s, n ? n : strlen(s), lim, &doc, err);
	if (r == 0)
		assert_non_null(doc);
	json_doc_free(doc);
	return r;
}

static struct json_doc *must_parse(const char *s)
{
	struct json_doc *doc = NULL;
	struct json_error err;
	int r = json_parse(s, strlen(s), NULL, &doc, &err);
	if (r)
		fail_msg("parse of %s failed: %s", s, err.msg);
	return doc;
}

static const struct {
	const char *in;
	size_t len; /* 0: strlen */
	int code;
} cases[] = {
	{ "null", 0, 0 },
	{ "true", 0, 0 },
	{ "false", 0, 0 },
	{ "0", 0, 0 },
	{ "-0", 0, 0 },
	{ "-0.0e-0", 0, 0 },
	{ "1.5E+10", 0, 0 },
	{ "123456789012345678901234567890", 0, 0 },
	{ "\"\"", 0, 0 },
	{ "[]", 0, 0 },
	{ "{}", 0, 0 },
	{ " \t\r\n[ 1 , 2 ,3 ] \n", 0, 0 },
	{ "{\"a\":{\"b\":[{}, [], \"\"]},\"c\":null}", 0, 0 },
	{ "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\"", 0, 0 },
	{ "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x7f\"", 0, 0 },
	{ "{\"a\":{\"a\":1},\"b\":{\"a\":2}}", 0, 0 },
	{ "{\"a\\u0000b\":1,\"a\\u0000c\":2}", 0, 0 },
	{ "", 0, -EINVAL },
	{ "   ", 0, -EINVAL },
	{ "[1,]", 0, -EINVAL },
	{ "{\"a\":1,}", 0, -EINVAL },
	{ "[1,,2]", 0, -EINVAL },
	{ "[,1]", 0, -EINVAL },
	{ "{,}", 0, -EINVAL },
	{ "[1 2]", 0, -EINVAL },
	{ "1 2", 0, -EINVAL },
	{ "[1]x", 0, -EINVAL },
	{ "{}{}", 0, -EINVAL },
	{ "// c\n1", 0, -EINVAL },
	{ "1 /* c */", 0, -EINVAL },
	{ "# c\n1", 0, -EINVAL },
	{ "'a'", 0, -EINVAL },
	{ "{'a':1}", 0, -EINVAL },
	{ "{a:1}", 0, -EINVAL },
	{ "{\"a\" 1}", 0, -EINVAL },
	{ "{\"a\":}", 0, -EINVAL },
	{ "{\"a\"}", 0, -EINVAL },
	{ "{1:2}", 0, -EINVAL },
	{ "NaN", 0, -EINVAL },
	{ "Infinity", 0, -EINVAL },
	{ "-Infinity", 0, -EINVAL },
	{ "[nan]", 0, -EINVAL },
	{ "01", 0, -EINVAL },
	{ "-01", 0, -EINVAL },
	{ "00", 0, -EINVAL },
	{ "1.", 0, -EINVAL },
	{ ".5", 0, -EINVAL },
	{ "1.e5", 0, -EINVAL },
	{ "1e", 0, -EINVAL },
	{ "1e+", 0, -EINVAL },
	{ "+1", 0, -EINVAL },
	{ "-", 0, -EINVAL },
	{ "0x10", 0, -EINVAL },
	{ "tru", 0, -EINVAL },
	{ "truex", 0, -EINVAL },
	{ "nul", 0, -EINVAL },
	{ "True", 0, -EINVAL },
	{ "[", 0, -EINVAL },
	{ "{", 0, -EINVAL },
	{ "]", 0, -EINVAL },
	{ "\"abc", 0, -EINVAL },
	{ "\"abc\\", 0, -EINVAL },
	{ "\"\\x41\"", 0, -EINVAL },
	{ "\"\\'\"", 0, -EINVAL },
	{ "\"\\u12\"", 0, -EINVAL },
	{ "\"\\u12G4\"", 0, -EINVAL },
	{ "\"\\U0041\"", 0, -EINVAL },
	{ "\"\\ud800\"", 0, -EINVAL },
	{ "\"\\udc00\"", 0, -EINVAL },
	{ "\"\\ud800\\u0041\"", 0, -EINVAL },
	{ "\"\\ud800\\ud800\"", 0, -EINVAL },
	{ "\"\\ude00\\ud83d\"", 0, -EINVAL },
	{ "\"a\tb\"", 0, -EINVAL },
	{ "\"a\nb\"", 0, -EINVAL },
	{ "\"a\x00" "b\"", 5, -EINVAL },
	{ "[1]\x00", 4, -EINVAL },
	{ "\"\xff\"", 0, -EINVAL },
	{ "\"\xc0\x80\"", 0, -EINVAL },
	{ "\"\xc1\xbf\"", 0, -EINVAL },
	{ "\"\xe0\x80\x80\"", 0, -EINVAL },
	{ "\"\xed\xa0\x80\"", 0, -EINVAL },
	{ "\"\xf0\x80\x80\x80\"", 0, -EINVAL },
	{ "\"\xf4\x90\x80\x80\"", 0, -EINVAL },
	{ "\"\xf5\x80\x80\x80\"", 0, -EINVAL },
	{ "\"\xe2\x82\"", 0, -EINVAL },
	{ "\"\x80\"", 0, -EINVAL },
	{ "\xef\xbb\xbf{}", 0, -EINVAL },
	{ "{\"a\":1,\"a\":2}", 0, -EINVAL },
	{ "{\"a\":1,\"\\u0061\":2}", 0, -EINVAL },
	{ "{\"a\\u0000b\":1,\"a\\u0000b\":2}", 0, -EINVAL },
};

static void test_table(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct json_error err = { 0 };
		int r = parse_code(cases[i].in, cases[i].len, NULL, &err);
		if (r != cases[i].code)
			fail_msg("case %zu (%s): got %d want %d (%s)", i, cases[i].in, r,
				 cases[i].code, err.msg);
		if (r < 0) {
			assert_int_equal(err.code, r);
			assert_true(strncmp(err.msg, "offset ", 7) == 0);
		}
	}
}

static void test_error_messages(void **state)
{
	struct json_error err;
	assert_int_equal(parse_code("{\"a\" 1}", 0, NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "offset 5: expected ':' after object key");
	assert_int_equal(err.offset, 5);
	assert_int_equal(parse_code("[1,]", 0, NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "offset 3: unexpected character ']', expected a value");
	assert_int_equal(parse_code("{\"k\":1, \"k\":2}", 0, NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "offset 8: duplicate object key");
	assert_int_equal(parse_code("[1] x", 0, NULL, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "offset 4: unexpected character 'x' after the end of the document");
	assert_int_equal(parse_code("\"\\ud800x\"", 0, NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "offset 1: lone high surrogate in \\u escape");
	assert_int_equal(parse_code("012", 0, NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "offset 0: invalid number: leading zero in number");
	/* A NULL err is allowed. */
	assert_int_equal(parse_code("[", 0, NULL, NULL), -EINVAL);
	struct json_doc *doc = NULL;
	assert_int_equal(json_parse(NULL, 0, NULL, &doc, NULL), -EINVAL);
	assert_null(doc);
}

static void check_i64(const char *s, int want_r, int64_t want)
{
	struct json_doc *doc = must_parse(s);
	int64_t v = 0;
	int r = json_get_i64(json_doc_root(doc), &v);
	if (r != want_r)
		fail_msg("i64 %s: got %d want %d", s, r, want_r);
	if (r == 0 && v != want)
		fail_msg("i64 %s: got %lld", s, (long long)v);
	json_doc_free(doc);
}

static void check_u64(const char *s, int want_r, uint64_t want)
{
	struct json_doc *doc = must_parse(s);
	uint64_t v = 0;
	int r = json_get_u64(json_doc_root(doc), &v);
	if (r != want_r)
		fail_msg("u64 %s: got %d want %d", s, r, want_r);
	if (r == 0 && v != want)
		fail_msg("u64 %s: got %llu", s, (unsigned long long)v);
	json_doc_free(doc);
}

static void test_int64_exact(void **state)
{
	check_u64("18446744073709551615", 0, UINT64_MAX);
	check_u64("18446744073709551616", -ERANGE, 0);
	check_u64("99999999999999999999", -ERANGE, 0);
	check_u64("9223372036854775808", 0, (uint64_t)INT64_MAX + 1);
	check_u64("-1", -ERANGE, 0);
	check_u64("-0", 0, 0);
	check_u64("1.0", -EINVAL, 0);
	check_u64("1e2", -EINVAL, 0);
	check_u64("\"1\"", -EINVAL, 0);
	check_i64("9007199254740993", 0, 9007199254740993LL); /* 2^53 + 1: not a double */
	check_i64("-9007199254740993", 0, -9007199254740993LL);
	check_i64("9223372036854775807", 0, INT64_MAX);
	check_i64("9223372036854775808", -ERANGE, 0);
	check_i64("-9223372036854775808", 0, INT64_MIN);
	check_i64("-9223372036854775809", -ERANGE, 0);
	check_i64("18446744073709551615", -ERANGE, 0);
	check_i64("-0", 0, 0);
	check_i64("0", 0, 0);
	check_i64("-12", 0, -12);
	check_i64("12.5", -EINVAL, 0);
	check_i64("true", -EINVAL, 0);

	struct json_doc *doc = must_parse("[1, 1.5, -2e3, 1e400, 0.1, 123456789012345678901234567890]");
	const struct json_value *a = json_doc_root(doc);
	double d;
	assert_true(json_is_integer(json_arr_at(a, 0)));
	assert_false(json_is_integer(json_arr_at(a, 1)));
	assert_false(json_is_integer(json_arr_at(a, 2)));
	assert_int_equal(json_get_double(json_arr_at(a, 1), &d), 0);
	assert_true(d == 1.5);
	assert_int_equal(json_get_double(json_arr_at(a, 2), &d), 0);
	assert_true(d == -2000.0);
	assert_int_equal(json_get_double(json_arr_at(a, 3), &d), -ERANGE);
	assert_int_equal(json_get_double(json_arr_at(a, 4), &d), 0);
	assert_true(d == 0.1);
	assert_int_equal(json_get_double(json_arr_at(a, 5), &d), 0);
	assert_true(d == 1.2345678901234568e29);
	const char *t;
	size_t n;
	assert_int_equal(json_get_number_text(json_arr_at(a, 2), &t, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(t, "-2e3");
	assert_int_equal(json_get_double(json_arr_at(a, 9), &d), -ENOENT);
	json_doc_free(doc);
}

static void nest(char *buf, unsigned depth, char open, char close)
{
	memset(buf, open, depth);
	memset(buf + depth, close, depth);
	buf[2 * depth] = 0;
}

static void test_depth_limit(void **state)
{
	char buf[2 * 1000 + 1];
	struct json_error err;
	nest(buf, 32, '[', ']');
	assert_int_equal(parse_code(buf, 0, NULL, &err), 0);
	nest(buf, 33, '[', ']');
	assert_int_equal(parse_code(buf, 0, NULL, &err), -ELOOP);
	assert_int_equal(err.offset, 32);
	assert_string_equal(err.msg, "offset 32: nesting deeper than 32");
	/* Objects count the same. */
	assert_int_equal(parse_code("{\"a\":{\"b\":{}}}", 0,
				    &(struct json_limits){ .max_depth = 3 }, &err), 0);
	assert_int_equal(parse_code("{\"a\":{\"b\":{\"c\":[]}}}", 0,
				    &(struct json_limits){ .max_depth = 3 }, &err), -ELOOP);
	/* Scalars have depth 0. */
	assert_int_equal(parse_code("1", 0, &(struct json_limits){ .max_depth = 1 }, &err), 0);
	/* A huge request is clamped to JSON_DEPTH_CAP, so recursion stays bounded. */
	struct json_limits big = { .max_depth = 100000 };
	nest(buf, JSON_DEPTH_CAP, '[', ']');
	assert_int_equal(parse_code(buf, 0, &big, &err), 0);
	nest(buf, 1000, '[', ']');
	assert_int_equal(parse_code(buf, 0, &big, &err), -ELOOP);
	/* Unclosed deep input fails on depth before the end of input. */
	memset(buf, '[', 1000);
	buf[1000] = 0;
	assert_int_equal(parse_code(buf, 0, NULL, &err), -ELOOP);
}

static void test_size_limits(void **state)
{
	struct json_error err;
	struct json_limits lim = { .max_input = 10 };
	assert_int_equal(parse_code("[1,2,3,44]", 0, &lim, &err), 0);
	assert_int_equal(parse_code("[1,2,3,444]", 0, &lim, &err), -E2BIG);
	assert_string_equal(err.msg, "offset 0: input of 11 bytes exceeds limit of 10");
	/* The size check comes before syntax: an oversized body is 413 whatever it holds. */
	assert_int_equal(parse_code("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 0, &lim, &err), -E2BIG);

	size_t n = JSON_DEFAULT_MAX_INPUT + 1;
	char *big = malloc(n);
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '0';
	assert_int_equal(parse_code(big, n, NULL, &err), -E2BIG);
	assert_int_equal(parse_code(big, n - 1, NULL, &err), 0);
	free(big);

	struct json_limits nodes = { .max_nodes = 3 };
	assert_int_equal(parse_code("[1,2]", 0, &nodes, &err), 0);
	assert_int_equal(parse_code("{\"a\":1,\"b\":2}", 0, &nodes, &err), 0);
	assert_int_equal(parse_code("[1,2,3]", 0, &nodes, &err), -ENOSPC);
	assert_int_equal(parse_code("[[[[]]]]", 0, &nodes, &err), -ENOSPC);

	struct json_limits str = { .max_string = 3 };
	assert_int_equal(parse_code("[\"abc\",\"\\u00e9\"]", 0, &str, &err), 0);
	assert_int_equal(parse_code("\"abcd\"", 0, &str, &err), -EMSGSIZE);
	assert_int_equal(parse_code("\"\\u00e9\\u00e9\"", 0, &str, &err), -EMSGSIZE);
	assert_int_equal(parse_code("{\"abcd\":1}", 0, &str, &err), -EMSGSIZE);
}

static void test_duplicate_keys(void **state)
{
	/* Objects bigger than the linear-check bound take the sort path; the reported offset is
	 * the repeat that comes first in the document. */
	for (unsigned nkeys = 10; nkeys <= 2000; nkeys *= 4) {
		size_t cap = (size_t)nkeys * 16 + 16;
		char *buf = malloc(cap);
		assert_non_null(buf);
		size_t o = 0;
		buf[o++] = '{';
		for (unsigned i = 0; i < nkeys; i++)
			o += (size_t)snprintf(buf + o, cap - o, "%s\"k%u\":%u", i ? "," : "", i, i);
		buf[o++] = '}';
		struct json_doc *doc = NULL;
		assert_int_equal(json_parse(buf, o, NULL, &doc, NULL), 0);
		const struct json_value *root = json_doc_root(doc);
		assert_int_equal(json_len(root), nkeys);
		uint64_t u;
		char key[16];
		snprintf(key, sizeof(key), "k%u", nkeys - 1);
		assert_int_equal(json_get_u64(json_obj_get(root, key), &u), 0);
		assert_int_equal(u, nkeys - 1);
		json_doc_free(doc);

		/* Repeat k1 at 3/4 and k2 at 1/2 of the object: k2's repeat comes first. */
		char *dup = malloc(cap + 32);
		assert_non_null(dup);
		size_t d = 0;
		dup[d++] = '{';
		size_t want_off = 0;
		for (unsigned i = 0; i < nkeys; i++) {
			unsigned k = i;
			if (i == nkeys / 2)
				k = 2;
			else if (i == nkeys * 3 / 4)
				k = 1;
			if (i)
				dup[d++] = ',';
			if (i == nkeys / 2)
				want_off = d;
			d += (size_t)snprintf(dup + d, cap + 32 - d, "\"k%u\":%u", k, i);
		}
		dup[d++] = '}';
		struct json_error err;
		assert_int_equal(json_parse(dup, d, NULL, &doc, &err), -EINVAL);
		assert_int_equal(err.offset, want_off);
		assert_non_null(strstr(err.msg, "duplicate object key"));
		free(dup);
		free(buf);
	}
}

/* Reference: well-formed iff the bytes decode to a scalar value with its shortest encoding. */
static size_t ref_utf8(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xc0 && s[0] < 0xe0 ? 2 : s[0] >= 0xe0 && s[0] < 0xf0 ? 3
		   : s[0] >= 0xf0 && s[0] < 0xf8 ? 4 : 0;
	if (!len || n < len)
		return 0;
	uint32_t cp = len == 1 ? s[0] : s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	static const uint32_t minimum[] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (cp < minimum[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static void test_utf8_validation(void **state)
{
	unsigned char s[4];
	/* Every 1- and 2-byte sequence, every 3-byte one, and 4-byte ones over all leads and
	 * second bytes with fixed tails. */
	for (unsigned a = 0; a < 256; a++) {
		s[0] = (unsigned char)a;
		assert_int_equal(json_utf8_seq_len(s, 1), a < 0x80 ? 1 : 0);
		for (unsigned b = 0; b < 256; b++) {
			s[1] = (unsigned char)b;
			if (json_utf8_seq_len(s, 2) != (a < 0x80 ? 1 : ref_utf8(s, 2)))
				fail_msg("%02x %02x", a, b);
			if (a < 0xe0)
				continue;
			for (unsigned c = 0; c < 256; c++) {
				s[2] = (unsigned char)c;
				s[3] = 0x80;
				size_t got = json_utf8_seq_len(s, 4), want = ref_utf8(s, 4);
				if (got != want)
					fail_msg("%02x %02x %02x 80: got %zu want %zu", a, b, c, got,
						 want);
			}
		}
	}
	/* Raw UTF-8 in strings goes through the same check. */
	assert_int_equal(parse_code("\"\xf4\x8f\xbf\xbf\"", 0, NULL, NULL), 0);
	assert_int_equal(parse_code("\"\xf0\x90\x80\x80\"", 0, NULL, NULL), 0);
	assert_int_equal(parse_code("\"\xf0\x90\x80\"", 0, NULL, NULL), -EINVAL);
	assert_int_equal(parse_code("\"\xee\x80\x80\"", 0, NULL, NULL), 0);
	assert_int_equal(parse_code("{\"\xff\":1}", 0, NULL, NULL), -EINVAL);
}

static void check_string(const char *json, const char *want, size_t want_len)
{
	struct json_doc *doc = must_parse(json);
	const char *s;
	size_t n;
	assert_int_equal(json_get_string(json_doc_root(doc), &s, &n), 0);
	assert_int_equal(n, want_len);
	assert_memory_equal(s, want, want_len);
	assert_int_equal(s[n], 0);
	json_doc_free(doc);
}

static void test_surrogates_and_escapes(void **state)
{
	check_string("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4);
	check_string("\"\\uD834\\uDd1E\"", "\xf0\x9d\x84\x9e", 4);
	check_string("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf", 4);
	check_string("\"\\ud800\\udc00\"", "\xf0\x90\x80\x80", 4);
	check_string("\"\\u0041\\u00e9\\u20ac\\uffff\"", "A\xc3\xa9\xe2\x82\xac\xef\xbf\xbf", 9);
	check_string("\"a\\u0000b\"", "a\0b", 3);
	check_string("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8);
	check_string("\"\"", "", 0);
}

static void test_dom_api(void **state)
{
	struct json_doc *doc =
		must_parse("{\"mode\":\"diagnostic\",\"ttl_s\":300,\"on\":true,\"x\":null,"
			   "\"list\":[1,\"two\",[3]],\"o\":{}}");
	const struct json_value *root = json_doc_root(doc);
	assert_int_equal(json_type(root), JSON_OBJECT);
	assert_int_equal(json_len(root), 6);
	const char *key, *s;
	size_t klen, n;
	const struct json_value *v = json_obj_at(root, 4, &key, &klen);
	assert_int_equal(klen, 4);
	assert_memory_equal(key, "list", 4);
	assert_int_equal(json_type(v), JSON_ARRAY);
	assert_int_equal(json_len(v), 3);
	assert_int_equal(json_type(json_arr_at(v, 2)), JSON_ARRAY);
	assert_null(json_arr_at(v, 3));
	assert_null(json_obj_at(root, 6, NULL, NULL));
	assert_int_equal(json_get_string(json_arr_at(v, 1), &s, &n), 0);
	assert_string_equal(s, "two");

	bool b;
	assert_int_equal(json_get_bool(json_obj_get(root, "on"), &b), 0);
	assert_true(b);
	assert_int_equal(json_type(json_obj_get(root, "x")), JSON_NULL);
	assert_int_equal(json_type(json_obj_get(root, "missing")), JSON_NONE);
	assert_int_equal(json_get_bool(json_obj_get(root, "missing"), &b), -ENOENT);
	assert_int_equal(json_get_bool(json_obj_get(root, "mode"), &b), -EINVAL);
	assert_int_equal(json_get_string(json_obj_get(root, "ttl_s"), &s, &n), -EINVAL);
	assert_null(json_obj_get(v, "list")); /* not an object */
	assert_null(json_obj_getn(root, "listx", 3));
	assert_non_null(json_obj_getn(root, "listx", 4));
	assert_int_equal(json_len(json_obj_get(root, "o")), 0);
	assert_int_equal(json_len(json_obj_get(root, "mode")), 0);
	assert_string_equal(json_type_name(JSON_OBJECT), "object");
	assert_string_equal(json_type_name(json_type(NULL)), "none");
	assert_null(json_doc_root(NULL));
	assert_null(json_doc_free(NULL));
	json_doc_free(doc);
}

static void test_only_keys(void **state)
{
	static const char *const allowed[] = { "mode", "ttl_s", NULL };
	struct json_error err;
	struct json_doc *doc = must_parse("{\"mode\":\"auto\"}");
	assert_int_equal(json_obj_only_keys(json_doc_root(doc), allowed, &err), 0);
	json_doc_free(doc);

	doc = must_parse("{\"mode\":\"auto\", \"x\":1}");
	assert_int_equal(json_obj_only_keys(json_doc_root(doc), allowed, &err), -EINVAL);
	assert_string_equal(err.msg, "unknown field 'x'");
	assert_int_equal(err.offset, 16);
	json_doc_free(doc);

	/* Prefix of an allowed key, a control char and a long key: shown safely. */
	doc = must_parse("{\"mod\":1}");
	assert_int_equal(json_obj_only_keys(json_doc_root(doc), allowed, &err), -EINVAL);
	assert_string_equal(err.msg, "unknown field 'mod'");
	json_doc_free(doc);
	doc = must_parse("{\"a'\\n\\u0000\":1}");
	assert_int_equal(json_obj_only_keys(json_doc_root(doc), allowed, &err), -EINVAL);
	assert_string_equal(err.msg, "unknown field 'a\\x27\\x0a\\x00'");
	json_doc_free(doc);
	doc = must_parse("{\"0123456789012345678901234567890123456789\":1}");
	assert_int_equal(json_obj_only_keys(json_doc_root(doc), allowed, &err), -EINVAL);
	assert_string_equal(err.msg, "unknown field '01234567890123456789012345678901...'");
	json_doc_free(doc);

	doc = must_parse("[1]");
	assert_int_equal(json_obj_only_keys(json_doc_root(doc), allowed, &err), -EINVAL);
	assert_string_equal(err.msg, "expected an object, got array");
	json_doc_free(doc);
	static const char *const none[] = { NULL };
	doc = must_parse("{}");
	assert_int_equal(json_obj_only_keys(json_doc_root(doc), none, NULL), 0);
	json_doc_free(doc);
}

static void test_number_valid(void **state)
{
	assert_true(json_number_valid("0", 1));
	assert_true(json_number_valid("-1.5e-7", 7));
	assert_false(json_number_valid("1 ", 2));
	assert_false(json_number_valid("", 0));
	assert_false(json_number_valid("1e", 2));
	assert_false(json_number_valid("inf", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_error_messages),
		cmocka_unit_test(test_int64_exact),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_utf8_validation),
		cmocka_unit_test(test_surrogates_and_escapes),
		cmocka_unit_test(test_dom_api),
		cmocka_unit_test(test_only_keys),
		cmocka_unit_test(test_number_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
