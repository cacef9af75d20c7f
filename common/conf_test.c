/* conf_test: every value type's good and bad inputs, file syntax and line numbers, flags and
 * the defaults → flags → file → flags ordering, help output and schema checks, against a small
 * schema that covers every type. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

enum t_mode { T_FAST = 0, T_SAFE = 1, T_DEBUG = 7 };

struct tcfg {
	bool verbose;
	int64_t level;
	int64_t big;
	uint64_t bytes;
	uint64_t limit;
	double ratio;
	char name[16];
	int mode;
	uint16_t metrics_port;
	uint16_t api_port;
	char bind[64];
	char upstream[64];
	uint64_t interval_ms;
	uint64_t timeout_ms;
};

static const struct conf_choice t_modes[] = {
	{ "fast", T_FAST }, { "safe", T_SAFE }, { "debug", T_DEBUG }, { NULL, 0 },
};

#define K(n, t) .name = #n, .type = t, .offset = offsetof(struct tcfg, n)
static const struct conf_key t_keys[] = {
	{ K(verbose, CONF_BOOL), .help = "log more" },
	{ K(level, CONF_INT), .def = "3", .min = -5, .max = 10, .help = "a bounded int" },
	{ K(big, CONF_INT), .help = "an unbounded int" },
	{ K(bytes, CONF_UINT64), .def = "1024", .help = "an unbounded uint64" },
	{ K(limit, CONF_UINT64), .def = "10", .min = 10, .max = -1, .help = "uint64 >= 10" },
	{ K(ratio, CONF_DOUBLE), .def = "0.5", .help = "a double" },
	{ K(name, CONF_STRING), .str_size = sizeof(((struct tcfg *)0)->name), .def = "agent",
	  .help = "a short string" },
	{ K(mode, CONF_ENUM), .def = "safe", .choices = t_modes, .help = "how to run" },
	{ K(metrics_port, CONF_PORT), .def = "9100", .help = "metrics port (0 = off)" },
	{ K(api_port, CONF_PORT), .def = "8080", .min = 1, .max = 65535, .help = "API port" },
	{ K(bind, CONF_HOST), .str_size = 64, .help = "address to bind (empty = all)" },
	{ K(upstream, CONF_HOST), .str_size = 64, .def = "localhost", .help = "upstream host" },
	{ K(interval_ms, CONF_DURATION), .def = "10s", .help = "poll interval" },
	{ K(timeout_ms, CONF_DURATION), .def = "1s", .min = 100, .max = 60000, .help = "timeout" },
};

static const struct conf_schema t_schema = {
	.prog = "tprog",
	.summary = "Test program for the conf engine.",
	.keys = t_keys,
	.nkeys = sizeof(t_keys) / sizeof(t_keys[0]),
};

static struct tcfg fresh(void)
{
	struct tcfg c;
	struct conf_error err;
	memset(&c, 0xa5, sizeof(c));
	assert_int_equal(conf_defaults(&t_schema, &c, &err), 0);
	return c;
}

/* Sets key=value from origin "t.conf:1"; returns the result and leaves the message in err. */
static int set(struct tcfg *c, const char *key, const char *value, struct conf_error *err)
{
	err->msg[0] = '\0';
	return conf_set(&t_schema, c, key, value, "t.conf:1", err);
}

#define assert_contains(hay, needle)                                                     \
	do {                                                                             \
		if (!strstr((hay), (needle)))                                            \
			fail_msg("'%s' does not contain '%s'", (hay), (needle));          \
	} while (0)

/* The field of key rendered as text, so one table can check every type. */
static void field_text(const struct tcfg *c, const char *key, char *buf, size_t size)
{
	const struct conf_key *k = conf_find(&t_schema, key);
	const char *f = (const char *)c + k->offset;
	switch (k->type) {
	case CONF_BOOL: snprintf(buf, size, "%s", *(const bool *)f ? "true" : "false"); break;
	case CONF_INT: snprintf(buf, size, "%" PRId64, *(const int64_t *)f); break;
	case CONF_UINT64:
	case CONF_DURATION: snprintf(buf, size, "%" PRIu64, *(const uint64_t *)f); break;
	case CONF_DOUBLE: snprintf(buf, size, "%g", *(const double *)f); break;
	case CONF_ENUM: snprintf(buf, size, "%d", *(const int *)f); break;
	case CONF_PORT: snprintf(buf, size, "%u", *(const uint16_t *)f); break;
	case CONF_STRING:
	case CONF_HOST: snprintf(buf, size, "%s", f); break;
	}
}

/* Accepted values and what the field holds afterwards. */
static const struct { const char *key, *value, *want; } goods[] = {
	{ "verbose", "true", "true" }, { "verbose", "false", "false" }, { "verbose", "1", "true" },
	{ "verbose", "0", "false" }, { "verbose", "yes", "true" }, { "verbose", "no", "false" },
	{ "verbose", "on", "true" }, { "verbose", "off", "false" }, { "verbose", "TRUE", "true" },
	{ "verbose", "Off", "false" }, { "verbose", "yEs", "true" },
	{ "level", "10", "10" }, { "level", "-5", "-5" }, { "level", "+7", "7" },
	{ "level", "007", "7" }, /* decimal, not octal */
	{ "big", "9223372036854775807", "9223372036854775807" },
	{ "big", "-9223372036854775808", "-9223372036854775808" },
	{ "bytes", "18446744073709551615", "18446744073709551615" }, { "bytes", "-0", "0" },
	{ "limit", "18446744073709551615", "18446744073709551615" }, { "limit", "10", "10" },
	{ "ratio", "1.5", "1.5" }, { "ratio", "-2e3", "-2000" }, { "ratio", ".5", "0.5" },
	{ "ratio", "5.", "5" }, { "ratio", "+1E-2", "0.01" }, { "ratio", "0", "0" },
	{ "name", "123456789012345", "123456789012345" }, { "name", "", "" },
	{ "mode", "debug", "7" }, { "mode", "fast", "0" },
	{ "metrics_port", "0", "0" }, { "metrics_port", "65535", "65535" },
	{ "api_port", "1", "1" },
	{ "upstream", "10.0.0.1", "10.0.0.1" }, { "upstream", "::1", "::1" },
	{ "upstream", "[::1]", "::1" }, { "upstream", "[fe80::1:2]", "fe80::1:2" },
	{ "upstream", "2001:db8::ff00:42:8329", "2001:db8::ff00:42:8329" },
	{ "upstream", "::ffff:192.0.2.1", "::ffff:192.0.2.1" },
	{ "upstream", "collector.example.com", "collector.example.com" },
	{ "upstream", "localhost", "localhost" }, { "upstream", "a-b.c0", "a-b.c0" },
	{ "upstream", "3com.net", "3com.net" }, { "upstream", "A.B", "A.B" },
	{ "bind", "", "" }, /* empty only where the default is empty */
	{ "interval_ms", "500", "500" }, { "interval_ms", "500ms", "500" },
	{ "interval_ms", "10s", "10000" }, { "interval_ms", "5m", "300000" },
	{ "interval_ms", "1h", "3600000" }, { "interval_ms", "0", "0" },
	{ "interval_ms", "18446744073709551615", "18446744073709551615" },
	{ "interval_ms", "5124095576030h", "18446744073708000000" },
	{ "timeout_ms", "1m", "60000" }, { "timeout_ms", "100", "100" },
};

/* Rejected values and a part of the reason; the message must also name origin and key. */
static const struct { const char *key, *value, *why; } bads[] = {
	{ "verbose", "", "is not a boolean" }, { "verbose", "2", "is not a boolean" },
	{ "verbose", "truee", "is not a boolean" }, { "verbose", " true", "is not a boolean" },
	{ "level", "11", "11 is out of range -5..10" }, { "level", "-6", "-6 is out of range" },
	{ "level", "abc", "'abc' is not an integer" }, { "level", "1x", "'1x' is not an integer" },
	{ "level", "", "is not an integer" }, { "level", " 1", "is not an integer" },
	{ "level", "1 ", "is not an integer" }, { "level", "0x10", "is not an integer" },
	{ "level", "1.0", "is not an integer" }, { "level", "-", "is not an integer" },
	{ "level", "+-1", "is not an integer" },
	{ "big", "9223372036854775808", "out of range" },
	{ "big", "-9223372036854775809", "out of range" },
	{ "big", "99999999999999999999999", "out of range" },
	{ "big", "99999999999999999999999x", "is not an integer" },
	{ "bytes", "18446744073709551616", "out of range 0..18446744073709551615" },
	{ "bytes", "-1", "-1 is out of range" }, { "bytes", "1e3", "is not an integer" },
	{ "limit", "9", "9 is out of range 10..18446744073709551615" },
	{ "ratio", "", "is not a number" }, { "ratio", ".", "is not a number" },
	{ "ratio", "1e", "is not a number" }, { "ratio", "inf", "is not a number" },
	{ "ratio", "nan", "is not a number" }, { "ratio", "0x1p3", "is not a number" },
	{ "ratio", " 1", "is not a number" }, { "ratio", "1e999", "out of range" },
	{ "name", "1234567890123456", "key 'name': value is too long (16 bytes, at most 15)" },
	{ "mode", "FAST", "'FAST' is not one of: fast, safe, debug" },
	{ "mode", "", "is not one of" }, { "mode", "fas", "is not one of" },
	/* Ports above 65535 are errors, never truncated (70000 would become 4464). */
	{ "metrics_port", "65536", "65536 is out of range 0..65535" },
	{ "metrics_port", "131072", "out of range" }, { "metrics_port", "-1", "out of range" },
	{ "metrics_port", "99999999999999999999", "out of range" },
	{ "metrics_port", "http", "is not an integer" },
	{ "metrics_port", "80 ", "is not an integer" },
	{ "api_port", "0", "0 is out of range 1..65535" },
	{ "upstream", "", "an address or host name is required" },
	{ "interval_ms", "18446744073709552s", "out of range" },
	{ "timeout_ms", "50", "50 is out of range 100..60000 ms" },
	{ "timeout_ms", "2m", "out of range 100..60000 ms" },
};

/* Not hosts: each is also rejected by conf_valid_host. */
static const char *const not_hosts[] = {
	"-a.com", "a-.com", "a..b", ".a", "a b", "a_b.com", "1.2.3", "10.1", "123", "256.1.1.1",
	"0x7f", "a.0x1", "1.2.3.4.5", "[::1", "::1]", "[1.2.3.4]", "[]", ":::", "[::1]:80",
	"example.com.", "host:80", "fe80::1%eth0", "exa$mple.com", "\x01host",
};

/* Not durations: each is also rejected by conf_parse_duration_ms. */
static const char *const not_durations[] = {
	"", "1.5s", "-1s", "+1s", "10 s", " 10s", "10S", "1d", "s", "ms", "10sec", "1h1m",
};

static void bad(const char *key, const char *value, const char *why)
{
	struct tcfg c = fresh(), before = c;
	struct conf_error err;
	char prefix[128];
	if (set(&c, key, value, &err) != -EINVAL)
		fail_msg("%s=%s was accepted", key, value);
	snprintf(prefix, sizeof(prefix), "t.conf:1: key '%s': ", key);
	assert_contains(err.msg, prefix);
	assert_contains(err.msg, why);
	assert_memory_equal(&c, &before, sizeof(c)); /* a bad value changes nothing */
}

static void test_values(void **state)
{
	struct conf_error err;
	char got[128];
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		struct tcfg c = fresh();
		if (set(&c, goods[i].key, goods[i].value, &err))
			fail_msg("%s=%s: %s", goods[i].key, goods[i].value, err.msg);
		field_text(&c, goods[i].key, got, sizeof(got));
		if (strcmp(got, goods[i].want))
			fail_msg("%s=%s: got %s", goods[i].key, goods[i].value, got);
	}
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
		bad(bads[i].key, bads[i].value, bads[i].why);
	for (size_t i = 0; i < sizeof(not_hosts) / sizeof(not_hosts[0]); i++) {
		if (conf_valid_host(not_hosts[i]))
			fail_msg("'%s' accepted as a host", not_hosts[i]);
		bad("upstream", not_hosts[i], "is not an IPv4/IPv6 address or a host name");
	}
	for (size_t i = 0; i < sizeof(not_durations) / sizeof(not_durations[0]); i++)
		bad("interval_ms", not_durations[i], "is not a duration");
}

static void test_defaults(void **state)
{
	struct tcfg c = fresh();
	assert_false(c.verbose);
	assert_int_equal(c.level, 3);
	assert_int_equal(c.big, 0);
	assert_int_equal(c.bytes, 1024);
	assert_int_equal(c.limit, 10);
	assert_true(c.ratio == 0.5);
	assert_string_equal(c.name, "agent");
	assert_int_equal(c.mode, T_SAFE);
	assert_int_equal(c.metrics_port, 9100);
	assert_int_equal(c.api_port, 8080);
	assert_string_equal(c.bind, "");
	assert_string_equal(c.upstream, "localhost");
	assert_int_equal(c.interval_ms, 10000);
	assert_int_equal(c.timeout_ms, 1000);
}

static void test_port_message(void **state)
{
	struct conf_error err;
	struct tcfg c = fresh();
	assert_int_equal(conf_set(&t_schema, &c, "metrics_port", "70000", "agent.conf:12", &err),
			 -EINVAL);
	assert_string_equal(err.msg, "agent.conf:12: key 'metrics_port': 70000 is out of range "
				     "0..65535");
	assert_int_equal(c.metrics_port, 9100);
}

static void test_host_lengths(void **state)
{
	char label[70], name[300];
	/* A label of 63 is fine, 64 is not; a name of 253 is fine, 254 is not. */
	memset(label, 'a', 64);
	label[63] = '\0';
	assert_true(conf_valid_host(label));
	label[63] = 'a';
	label[64] = '\0';
	assert_false(conf_valid_host(label));
	for (size_t i = 0; i < 253; i++)
		name[i] = (i % 2) ? '.' : 'x';
	name[253] = '\0';
	assert_true(conf_valid_host(name));
	name[253] = 'y';
	name[254] = '\0';
	assert_false(conf_valid_host(name));
	assert_false(conf_valid_host(""));
	assert_false(conf_valid_host(NULL));
	/* Valid, but longer than the field: an error, never truncated. */
	name[99] = '\0';
	bad("upstream", name, "is too long (99 bytes, at most 63)");
}

static void test_duration_parse(void **state)
{
	uint64_t ms = 42;
	for (size_t i = 0; i < sizeof(not_durations) / sizeof(not_durations[0]); i++)
		assert_int_equal(conf_parse_duration_ms(not_durations[i], &ms), -EINVAL);
	assert_int_equal(ms, 42); /* written only on success */
	assert_int_equal(conf_parse_duration_ms("5m", &ms), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(conf_parse_duration_ms("18446744073709551616", &ms), -ERANGE);
	assert_int_equal(conf_parse_duration_ms("18446744073709552s", &ms), -ERANGE);
	assert_int_equal(conf_parse_duration_ms("5124095576031h", &ms), -ERANGE);
	assert_int_equal(conf_parse_duration_ms("99999999999999999999999x", &ms), -EINVAL);
	assert_int_equal(conf_parse_duration_ms(NULL, &ms), -EINVAL);
}

static void test_set_unknown_and_find(void **state)
{
	struct conf_error err;
	struct tcfg c = fresh();
	assert_int_equal(set(&c, "foo", "1", &err), -EINVAL);
	assert_string_equal(err.msg, "t.conf:1: unknown key 'foo'");
	assert_int_equal(conf_set(&t_schema, &c, "foo", "1", NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "unknown key 'foo'");
	assert_int_equal(conf_set(&t_schema, &c, "level", "x", NULL, NULL), -EINVAL);
	assert_ptr_equal(conf_find(&t_schema, "metrics_port"), &t_keys[8]);
	assert_ptr_equal(conf_find(&t_schema, "metrics-port"), &t_keys[8]);
	assert_null(conf_find(&t_schema, "metrics"));
	assert_null(conf_find(&t_schema, "metrics_port_"));
	assert_null(conf_find(&t_schema, "Metrics_port"));
	assert_null(conf_find(&t_schema, NULL));
	assert_null(conf_find(NULL, "level"));
}

static int load(struct tcfg *c, const char *text, struct conf_error *err)
{
	err->msg[0] = '\0';
	return conf_load_buffer(&t_schema, c, "agent.conf", text, strlen(text), err);
}

static void test_file_good(void **state)
{
	static const char text[] =
		"\xef\xbb\xbf# comment\n"
		"   # indented comment\n"
		"\n"
		"  level =  -2  \r\n"
		"name=\"a \\\"q\\\" \\\\ \"\n"
		"upstream = [::1]\n"
		"metrics-port=0\n"
		"bind=\n"
		"mode=debug\t\n"
		"verbose=yes\n"
		"interval_ms=5m"; /* no final newline */
	struct conf_error err;
	struct tcfg c = fresh();
	assert_int_equal(load(&c, text, &err), 0);
	assert_int_equal(c.level, -2);
	assert_string_equal(c.name, "a \"q\" \\ ");
	assert_string_equal(c.upstream, "::1");
	assert_int_equal(c.metrics_port, 0);
	assert_int_equal(c.mode, T_DEBUG);
	assert_true(c.verbose);
	assert_int_equal(c.interval_ms, 300000);
	/* '=' and '#' inside a value are part of it; quotes keep spaces and may be empty. */
	assert_int_equal(load(&c, "name=a=b#c\n", &err), 0);
	assert_string_equal(c.name, "a=b#c");
	assert_int_equal(load(&c, "name=\"  x  \"\n", &err), 0);
	assert_string_equal(c.name, "  x  ");
	assert_int_equal(load(&c, "name=\"\"\n", &err), 0);
	assert_string_equal(c.name, "");
	assert_int_equal(load(&c, "name=a\"b\n", &err), 0); /* quotes only count at the start */
	assert_string_equal(c.name, "a\"b");
	assert_int_equal(load(&c, "", &err), 0);
	assert_int_equal(load(&c, "\n\n# only comments\n", &err), 0);
}

static void test_file_errors(void **state)
{
	static const struct { const char *text, *msg; } cases[] = {
		{ "level=1\n\nfoo=2\n", "agent.conf:3: unknown key 'foo'" },
		{ "level=1\nlevel=2\n", "agent.conf:2: key 'level': repeated (first set on line 1)" },
		{ "level=1\nlevel-x=2\n", "agent.conf:2: unknown key 'level-x'" },
		{ "level=1\nlevel\n", "agent.conf:2: expected key=value" },
		{ "=5\n", "agent.conf:1: missing key before '='" },
		{ "# c\n\nmetrics_port = 70000\n",
		  "agent.conf:3: key 'metrics_port': 70000 is out of range 0..65535" },
		{ "name=\"abc\n", "agent.conf:1: key 'name': unterminated quoted value" },
		{ "name=\"a\\nb\"\n", "agent.conf:1: key 'name': bad escape in quoted value" },
		{ "name=\"a\" b\n", "agent.conf:1: key 'name': text after the closing quote" },
		{ "name=\"a\\\"\n", "agent.conf:1: key 'name': unterminated quoted value" },
		{ "name=\"abc\\", "agent.conf:1: key 'name': bad escape in quoted value" },
		{ "level=1\r\nmode=Fast\r\n", "agent.conf:2: key 'mode': 'Fast' is not one of: fast, "
					       "safe, debug" },
		{ "level = 1 # trailing comment\n", "agent.conf:1: key 'level': '1 # trailing "
						    "comment' is not an integer" },
		{ "upstream=\"\"\n", "agent.conf:1: key 'upstream': an address or host name" },
		{ "metrics-port=1\nmetrics_port=2\n", "agent.conf:2: key 'metrics_port': repeated" },
	};
	struct conf_error err;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tcfg c = fresh();
		if (load(&c, cases[i].text, &err) != -EINVAL)
			fail_msg("case %zu accepted", i);
		if (strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)))
			fail_msg("case %zu: got '%s', want '%s'", i, err.msg, cases[i].msg);
	}
}

static void test_file_limits(void **state)
{
	struct conf_error err;
	struct tcfg c = fresh();
	size_t big = CONF_MAX_FILE + 1;
	char *buf = malloc(big + 1);
	assert_non_null(buf);
	/* A line of exactly CONF_MAX_LINE bytes is fine (it is a comment); one more is not. */
	memset(buf, ' ', big);
	buf[0] = '#';
	buf[CONF_MAX_LINE] = '\n';
	assert_int_equal(conf_load_buffer(&t_schema, &c, "f", buf, CONF_MAX_LINE + 1, &err), 0);
	buf[CONF_MAX_LINE] = ' ';
	buf[CONF_MAX_LINE + 1] = '\n';
	assert_int_equal(conf_load_buffer(&t_schema, &c, "f", buf, CONF_MAX_LINE + 2, &err),
			 -EINVAL);
	assert_string_equal(err.msg, "f:1: line too long (more than 4096 bytes)");
	/* CRLF does not count against the limit. */
	buf[CONF_MAX_LINE] = '\r';
	assert_int_equal(conf_load_buffer(&t_schema, &c, "f", buf, CONF_MAX_LINE + 2, &err), 0);
	/* Too large as a whole, even if each line is fine. */
	for (size_t i = 0; i < big; i++)
		buf[i] = (i % 64 == 63) ? '\n' : '#';
	assert_int_equal(conf_load_buffer(&t_schema, &c, "f", buf, big, &err), -EFBIG);
	assert_contains(err.msg, "file too large");
	assert_int_equal(conf_load_buffer(&t_schema, &c, "f", buf, big - 1, &err), 0);
	/* A NUL byte ends nothing: it is an error on its line. */
	memcpy(buf, "level=1\nlevel2\0=3\n", 18);
	assert_int_equal(conf_load_buffer(&t_schema, &c, "f", buf, 18, &err), -EINVAL);
	assert_string_equal(err.msg, "f:2: NUL byte in line");
	free(buf);
}

static char *write_tmp(const char *text, size_t len)
{
	char *path = strdup("/tmp/conf_test.XXXXXX");
	assert_non_null(path);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

static void test_load_file(void **state)
{
	struct conf_error err;
	struct tcfg c = fresh();
	char *path = write_tmp("level=4\nverbose=on\n", 19), want[128];
	assert_int_equal(conf_load_file(&t_schema, &c, path, &err), 0);
	assert_int_equal(c.level, 4);
	assert_true(c.verbose);
	unlink(path);
	free(path);

	path = write_tmp("level=4\nfoo=1\n", 14);
	assert_int_equal(conf_load_file(&t_schema, &c, path, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: unknown key 'foo'", path);
	assert_string_equal(err.msg, want);
	unlink(path);
	free(path);

	char *big = calloc(1, CONF_MAX_FILE + 100);
	assert_non_null(big);
	memset(big, '\n', CONF_MAX_FILE + 100);
	path = write_tmp(big, CONF_MAX_FILE + 100);
	assert_int_equal(conf_load_file(&t_schema, &c, path, &err), -EFBIG);
	assert_contains(err.msg, "file too large");
	unlink(path);
	free(path);
	free(big);

	assert_int_equal(conf_load_file(&t_schema, &c, "/nonexistent/agent.conf", &err), -ENOENT);
	assert_contains(err.msg, "/nonexistent/agent.conf: cannot open");
	assert_int_equal(conf_load_file(&t_schema, &c, "/tmp", &err), -EISDIR);
	assert_int_equal(conf_load_file(&t_schema, &c, NULL, NULL), -EINVAL);
}

/* Runs conf_parse_args over line split at spaces (after "tprog"); argv lives in *buf. */
static int args(const char *line, char buf[256], struct tcfg *c, struct conf_args *a,
		struct conf_error *err)
{
	static char *argv[32];
	int argc = 1;
	argv[0] = "tprog";
	snprintf(buf, 256, "%s", line);
	for (char *save, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	argv[argc] = NULL;
	err->msg[0] = '\0';
	return conf_parse_args(&t_schema, c, argc, argv, a, err);
}

/* Accepted command lines and the value one key has afterwards (the last flag wins). */
static const struct { const char *argv, *key, *want; } good_args[] = {
	{ "--level=5", "level", "5" }, { "--metrics-port 9", "metrics_port", "9" },
	{ "--metrics_port=9", "metrics_port", "9" }, { "--api_port=81", "api_port", "81" },
	{ "--name --x--", "name", "--x--" }, /* a non-bool takes the next argument as it is */
	{ "--mode=fast", "mode", "0" }, { "--level=1 --level=2", "level", "2" },
	{ "--name=", "name", "" }, { "--name=a=b", "name", "a=b" },
	{ "--verbose", "verbose", "true" }, { "--no-verbose", "verbose", "false" },
	{ "--verbose=on", "verbose", "true" }, { "--verbose=false", "verbose", "false" },
	{ "--verbose --no_verbose", "verbose", "false" },
	{ "--verbose true", "verbose", "true" }, /* a bool never takes the next argument */
	{ "-- --level=9", "level", "3" }, { "pos --level 4", "level", "4" },
};

/* Rejected command lines and the start of the message. */
static const struct { const char *argv, *msg; } bad_args[] = {
	{ "--metrics-port=abc", "--metrics-port: key 'metrics_port': 'abc' is not an integer" },
	{ "--metrics_port=70000", "--metrics-port: key 'metrics_port': 70000 is out of range "
				  "0..65535" },
	{ "--level", "--level: key 'level': missing value" },
	{ "--foo=secret", "unknown flag '--foo'" }, /* a mistyped flag's value is not echoed */
	{ "--no-level", "unknown flag '--no-level'" }, { "--=1", "unknown flag '--'" },
	{ "---level=1", "unknown flag '---level'" },
	{ "--no-verbose=1", "--no-verbose: takes no value" },
	{ "--verbose=maybe", "--verbose: key 'verbose': 'maybe' is not a boolean" },
	{ "--config", "--config: missing file name" }, { "--config=", "--config: missing file" },
	{ "--help=1", "--help: takes no value" }, { "--version=1", "--version: takes no value" },
	{ "--level=1 --mode=x", "--mode: key 'mode': 'x' is not one of" },
};

static void test_args_table(void **state)
{
	struct conf_error err;
	struct conf_args a;
	char buf[256], got[128];
	for (size_t i = 0; i < sizeof(good_args) / sizeof(good_args[0]); i++) {
		struct tcfg c = fresh();
		if (args(good_args[i].argv, buf, &c, &a, &err))
			fail_msg("'%s': %s", good_args[i].argv, err.msg);
		field_text(&c, good_args[i].key, got, sizeof(got));
		if (strcmp(got, good_args[i].want))
			fail_msg("'%s': %s is %s", good_args[i].argv, good_args[i].key, got);
	}
	for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++) {
		struct tcfg c = fresh();
		if (args(bad_args[i].argv, buf, &c, &a, &err) != -EINVAL ||
		    strncmp(err.msg, bad_args[i].msg, strlen(bad_args[i].msg)))
			fail_msg("'%s': got '%s'", bad_args[i].argv, err.msg);
	}
}

static void test_args_special(void **state)
{
	struct conf_error err;
	struct conf_args a;
	struct tcfg c = fresh();
	char buf[256];
	assert_int_equal(args("--config=/etc/x.conf", buf, &c, &a, &err), 0);
	assert_string_equal(a.config_path, "/etc/x.conf");
	assert_false(a.help || a.version || a.npositional);
	assert_null(a.positional);
	assert_int_equal(args("--config y.conf", buf, &c, &a, &err), 0);
	assert_string_equal(a.config_path, "y.conf");
	assert_int_equal(args("-h", buf, &c, &a, &err), 0);
	assert_true(a.help && !a.version);
	assert_int_equal(args("--help --version", buf, &c, &a, &err), 0);
	assert_true(a.help && a.version);
	assert_int_equal(args("", buf, &c, &a, &err), 0);
	assert_false(a.help || a.version || a.npositional || a.config_path);
	/* ret_args may be NULL, argv may be empty. */
	assert_int_equal(conf_parse_args(&t_schema, &c, 0, NULL, NULL, &err), 0);
}

static void test_args_positional(void **state)
{
	struct conf_error err;
	struct conf_args a;
	struct tcfg c = fresh();
	char *argv[] = { "tprog", "one", "--level", "4", "-x", "--", "--verbose", "-h", "two",
			 NULL };
	int argc = 9;
	assert_int_equal(conf_parse_args(&t_schema, &c, argc, argv, &a, &err), 0);
	assert_int_equal(c.level, 4);
	assert_false(c.verbose); /* after "--" */
	assert_false(a.help);
	assert_int_equal(a.npositional, 5);
	assert_ptr_equal(a.positional, &argv[4]);
	assert_string_equal(a.positional[0], "one");
	assert_string_equal(a.positional[1], "-x");
	assert_string_equal(a.positional[2], "--verbose");
	assert_string_equal(a.positional[3], "-h");
	assert_string_equal(a.positional[4], "two");
	assert_string_equal(argv[1], "--level");
	assert_string_equal(argv[2], "4");
	assert_string_equal(argv[3], "--");
	assert_null(argv[9]);
	/* The reordered argv parses to the same result (the second pass of the usual sequence). */
	struct conf_args b;
	assert_int_equal(conf_parse_args(&t_schema, &c, argc, argv, &b, &err), 0);
	assert_int_equal(b.npositional, 5);
	assert_string_equal(b.positional[0], "one");
	assert_string_equal(b.positional[4], "two");
	assert_false(c.verbose);
	/* On error neither argv nor ret_args is touched. */
	char *bad_argv[] = { "tprog", "pos", "--level=99", NULL };
	memset(&b, 0x5a, sizeof(b));
	struct conf_args before = b;
	assert_int_equal(conf_parse_args(&t_schema, &c, 3, bad_argv, &b, &err), -EINVAL);
	assert_string_equal(bad_argv[1], "pos");
	assert_memory_equal(&b, &before, sizeof(b));
}

/* The documented sequence: defaults → flags (find --config) → file → flags, so flags win over
 * the file and the file wins over defaults. */
static void test_cli_wins(void **state)
{
	struct conf_error err;
	struct conf_args a;
	struct tcfg c;
	char *path = write_tmp("level=7\nmetrics_port=1000\nverbose=yes\n", 38);
	char cfgflag[64];
	snprintf(cfgflag, sizeof(cfgflag), "--config=%s", path);
	char *argv[] = { "tprog", "--level=-1", cfgflag, "--no-verbose", NULL };
	memset(&c, 0, sizeof(c));
	assert_int_equal(conf_defaults(&t_schema, &c, &err), 0);
	assert_int_equal(conf_parse_args(&t_schema, &c, 4, argv, &a, &err), 0);
	assert_string_equal(a.config_path, path);
	assert_int_equal(conf_load_file(&t_schema, &c, a.config_path, &err), 0);
	assert_int_equal(c.level, 7);
	assert_int_equal(conf_parse_args(&t_schema, &c, 4, argv, &a, &err), 0);
	assert_int_equal(c.level, -1);       /* flag over file */
	assert_false(c.verbose);             /* flag over file */
	assert_int_equal(c.metrics_port, 1000); /* file over default */
	assert_int_equal(c.api_port, 8080);  /* default */
	unlink(path);
	free(path);
}

static void test_help(void **state)
{
	char *text = NULL, flag[80];
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	assert_non_null(out);
	conf_print_help(&t_schema, out);
	fclose(out);
	assert_contains(text, "Usage: tprog [--config=FILE] [--key-name=VALUE ...]\n");
	assert_contains(text, "Test program for the conf engine.");
	for (size_t i = 0; i < t_schema.nkeys; i++) {
		snprintf(flag, sizeof(flag), "--%s", t_keys[i].name);
		for (char *p = flag; *p; p++)
			*p = *p == '_' ? '-' : *p;
		assert_contains(text, flag);
		assert_contains(text, t_keys[i].help);
	}
	assert_contains(text, "--config=FILE");
	assert_contains(text, "--help, -h");
	assert_contains(text, "--version");
	assert_contains(text, "--verbose, --no-verbose");
	assert_contains(text, "--metrics-port=<port>");
	assert_contains(text, "one of: fast, safe, debug; default: safe");
	assert_contains(text, "range -5..10; default: 3");
	assert_contains(text, "range 100..60000 ms; default: 1s");
	assert_contains(text, "(default: localhost)");
	assert_contains(text, "address to bind (empty = all)\n"); /* no default shown */
	free(text);
}

static void test_schema_checks(void **state)
{
	static const struct { struct conf_key key; const char *msg; } cases[] = {
		{ { .name = "help", .type = CONF_BOOL }, "schema: key 'help' is reserved" },
		{ { .name = "Bad", .type = CONF_BOOL }, "schema: key 1: name must be" },
		{ { .name = "9a", .type = CONF_BOOL }, "schema: key 1: name must be" },
		{ { .name = "a-b", .type = CONF_BOOL }, "schema: key 1: name must be" },
		{ { .name = "", .type = CONF_BOOL }, "schema: key 1: name must be" },
		{ { .name = NULL, .type = CONF_BOOL }, "schema: key 1: name must be" },
		{ { .name = "ok", .type = CONF_STRING }, "schema: key 'ok' has no str_size" },
		{ { .name = "ok", .type = CONF_ENUM }, "schema: key 'ok' has no choices" },
		{ { .name = "ok", .type = CONF_INT, .min = 5, .max = 1 }, "has min > max" },
		{ { .name = "ok", .type = CONF_UINT64, .min = -1, .max = 1 }, "has min > max" },
		{ { .name = "ok", .type = (enum conf_type)99 }, "has an unknown type" },
		{ { .name = "ok", .type = CONF_INT, .def = "x" },
		  "default: key 'ok': 'x' is not an integer" },
		{ { .name = "ok", .type = CONF_PORT, .def = "65536" }, "default: key 'ok': 65536 is "
									 "out of range" },
		{ { .name = "dup", .type = CONF_BOOL }, "schema: key 'dup' is defined twice" },
	};
	struct { bool a; int64_t b; } cfg;
	struct conf_error err;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf_key keys[2] = { { .name = "dup", .type = CONF_BOOL }, cases[i].key };
		keys[1].offset = offsetof(__typeof__(cfg), b);
		struct conf_schema s = { .prog = "p", .keys = keys, .nkeys = 2 };
		assert_int_equal(conf_defaults(&s, &cfg, &err), -EINVAL);
		if (strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)) && !strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: got '%s', want '%s'", i, err.msg, cases[i].msg);
	}
	assert_int_equal(conf_defaults(NULL, &cfg, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_port_message),
		cmocka_unit_test(test_host_lengths),
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_set_unknown_and_find),
		cmocka_unit_test(test_file_good),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_file_limits),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_args_table),
		cmocka_unit_test(test_args_special),
		cmocka_unit_test(test_args_positional),
		cmocka_unit_test(test_cli_wins),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_schema_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
