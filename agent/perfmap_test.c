/* perfmap_test: the JIT map line parser, overlap and partial-line rules, bounds, loading
 * (symlinks, FIFOs, size), change detection and the owner check of perfmap_refresh, and the
 * region registry (overlap replacement, bounds, forget, concurrent registration). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "perfmap.h"

static void test_parse_line(void **state)
{
	static const struct {
		const char *line;
		int ok;
		uint64_t start, size;
		const char *name;
	} cases[] = {
		{ "7f0000001000 40 LazyCompile:~foo a.js:1", 1, 0x7f0000001000ull, 0x40, "LazyCompile:~foo a.js:1" },
		{ "0x7f0000001000 0x40 bar", 1, 0x7f0000001000ull, 0x40, "bar" },
		{ "0X10   0X2   baz  qux ", 1, 0x10, 0x2, "baz  qux " },
		{ "ffffffffffffff00 ff top", 1, 0xffffffffffffff00ull, 0xff, "top" },
		{ "ffffffffffffff00 100 wraps", 0, 0, 0, NULL },
		{ "10 0 empty", 0, 0, 0, NULL },
		{ "10 20", 0, 0, 0, NULL },
		{ "10 20 ", 0, 0, 0, NULL },
		{ "10\t20\tname", 0, 0, 0, NULL },
		{ "0x 20 name", 0, 0, 0, NULL },
		{ "10000000000000000 20 name", 0, 0, 0, NULL },
		{ " 10 20 name", 0, 0, 0, NULL },
		{ "1g 20 name", 0, 0, 0, NULL },
		{ "", 0, 0, 0, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t s, z;
		const char *n;
		size_t nl;
		int r = perfmap_parse_line(cases[i].line, strlen(cases[i].line), &s, &z, &n, &nl);
		if ((r == 0) != cases[i].ok)
			fail_msg("line \"%s\": %d", cases[i].line, r);
		if (r == 0) {
			assert_true(s == cases[i].start && z == cases[i].size);
			assert_int_equal(nl, strlen(cases[i].name));
			assert_memory_equal(n, cases[i].name, nl);
		}
	}
	char nul[] = "10 20 a\0b";
	uint64_t s, z;
	const char *n;
	size_t nl;
	assert_int_equal(perfmap_parse_line(nul, sizeof(nul) - 1, &s, &z, &n, &nl), -EINVAL);
}

static void test_parse_rules(void **state)
{
	const char *text = "1000 100 first\n"
			   "bad line\n"
			   "1000 80 first_again\n"   /* same start, written later: wins over its range */
			   "3000 1000 big\n"
			   "3400 10 inner\n"         /* inside big, later: wins for its bytes */
			   "5000 10 partial";        /* no '\n': the JIT is still writing it */
	struct perfmap *pm = NULL;
	assert_int_equal(perfmap_parse(text, strlen(text), NULL, &pm), 0);
	assert_int_equal(perfmap_count(pm), 4);
	assert_int_equal(perfmap_bad_lines(pm), 2);
	struct perfmap_hit h;
	assert_int_equal(perfmap_lookup(pm, 0xfff, &h), -ENOENT);
	assert_int_equal(perfmap_lookup(pm, 0x1000, &h), 0);
	assert_string_equal(h.name, "first_again");
	assert_int_equal(perfmap_lookup(pm, 0x1090, &h), 0);
	assert_string_equal(h.name, "first"); /* beyond the later, shorter entry */
	assert_int_equal(perfmap_lookup(pm, 0x1100, &h), -ENOENT);
	assert_int_equal(perfmap_lookup(pm, 0x3405, &h), 0);
	assert_string_equal(h.name, "inner");
	assert_int_equal(perfmap_lookup(pm, 0x3500, &h), 0);
	assert_string_equal(h.name, "big");
	assert_true(h.start == 0x3000 && h.size == 0x1000);
	assert_int_equal(perfmap_lookup(pm, 0x5005, &h), -ENOENT);
	perfmap_free(pm);

	struct perfmap_limits lim = { .max_entries = 2 };
	assert_int_equal(perfmap_parse(text, strlen(text), &lim, &pm), 0);
	assert_int_equal(perfmap_count(pm), 2);
	perfmap_free(pm);
	assert_null(perfmap_free(NULL));
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_load_refresh(void **state)
{
	char dir[] = "/tmp/perfmap_test.XXXXXX", path[128], link[128], fifo[128];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/perf-1.map", dir);
	snprintf(link, sizeof(link), "%s/perf-2.map", dir);
	snprintf(fifo, sizeof(fifo), "%s/perf-3.map", dir);
	write_file(path, "1000 10 one\n");
	struct perfmap *pm = NULL;
	assert_int_equal(perfmap_load(path, NULL, &pm), 0);
	assert_true(perfmap_mem_bytes(pm) > 0);
	struct perfmap_stamp a, b;
	perfmap_get_stamp(pm, &a);
	assert_int_equal(perfmap_stat(path, &b), 0);
	assert_true(perfmap_stamp_equal(&a, &b));
	perfmap_free(pm);

	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(perfmap_load(link, NULL, &pm), -ELOOP);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(perfmap_load(fifo, NULL, &pm), -EINVAL);
	struct perfmap_limits lim = { .max_bytes = 4 };
	assert_int_equal(perfmap_load(path, &lim, &pm), -EFBIG);

	/* refresh: load, unchanged, changed, owner check, gone */
	pm = NULL;
	uid_t me = geteuid();
	struct perfmap_hit h;
	assert_int_equal(perfmap_refresh(&pm, path, me, NULL), 1);
	assert_int_equal(perfmap_refresh(&pm, path, me, NULL), 0);
	write_file(path, "1000 10 one\n2000 10 two\n");
	assert_int_equal(perfmap_refresh(&pm, path, me, NULL), 1);
	assert_int_equal(perfmap_lookup(pm, 0x2001, &h), 0);
	assert_string_equal(h.name, "two");
	if (me == 0) {
		assert_int_equal(chown(path, 4321, 4321), 0);
		assert_int_equal(perfmap_refresh(&pm, path, 1234, NULL), -EPERM);
		assert_null(pm);
		assert_int_equal(perfmap_refresh(&pm, path, 4321, NULL), 1); /* the process's owner */
	}
	assert_int_equal(unlink(path), 0);
	assert_int_equal(perfmap_refresh(&pm, path, me, NULL), -ENOENT);
	assert_null(pm);
	assert_int_equal(perfmap_refresh(&pm, link, me, NULL), -ELOOP); /* a symlink, dangling or not */
	unlink(link);
	unlink(fifo);
	rmdir(dir);
}

static void test_registry(void **state)
{
	struct perfmap_registry *reg = NULL;
	assert_int_equal(perfmap_registry_new(4, &reg), 0);
	struct perfmap_region g;
	assert_int_equal(perfmap_registry_find(reg, 1, 0, 0x1000, &g), -ENOENT);
	assert_int_equal(perfmap_registry_put(reg, 1, 0, 0x1000, 0x100, "a", "[jit]"), 0);
	assert_int_equal(perfmap_registry_put(reg, 1, 0, 0x2000, 0x100, "b", "[jit]"), 0);
	assert_int_equal(perfmap_registry_put(reg, 1, 1, 0x1000, 0x100, "data_a", "[data]"), 0);
	assert_int_equal(perfmap_registry_put(reg, 2, 0, 0x1000, 0x100, "other_pid", "[x]"), 0);
	assert_int_equal(perfmap_registry_count(reg), 4);
	assert_int_equal(perfmap_registry_find(reg, 1, 0, 0x10ff, &g), 0);
	assert_string_equal(g.name, "a");
	assert_int_equal(perfmap_registry_find(reg, 1, 0, 0x1100, &g), -ENOENT);
	assert_int_equal(perfmap_registry_find(reg, 1, 1, 0x1000, &g), 0);
	assert_string_equal(g.name, "data_a");
	assert_int_equal(perfmap_registry_find(reg, 2, 0, 0x1050, &g), 0);
	assert_string_equal(g.module, "[x]");
	/* full: a new region is refused, one replacing two fits */
	assert_int_equal(perfmap_registry_put(reg, 3, 0, 0x1000, 0x10, "c", "[jit]"), -ENOSPC);
	assert_int_equal(perfmap_registry_put(reg, 1, 0, 0x10f0, 0x1000, "ab", "[jit]"), 0);
	assert_int_equal(perfmap_registry_count(reg), 3);
	assert_int_equal(perfmap_registry_find(reg, 1, 0, 0x1000, &g), -ENOENT);
	assert_int_equal(perfmap_registry_find(reg, 1, 0, 0x2050, &g), 0);
	assert_string_equal(g.name, "ab");
	/* bad arguments */
	assert_int_equal(perfmap_registry_put(reg, 1, 0, 0x1000, 0, "z", "[jit]"), -EINVAL);
	assert_int_equal(perfmap_registry_put(reg, 1, 0, UINT64_MAX, 2, "z", "[jit]"), -EINVAL);
	assert_int_equal(perfmap_registry_put(reg, 1, 0, 0x1000, 1, "", "[jit]"), -EINVAL);
	/* names are cut, not refused */
	char longname[300];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(perfmap_registry_put(reg, 2, 0, 0x1000, 0x100, longname, "[x]"), 0);
	assert_int_equal(perfmap_registry_find(reg, 2, 0, 0x1000, &g), 0);
	assert_int_equal(strlen(g.name), sizeof(g.name) - 1);
	perfmap_registry_forget(reg, 1);
	assert_int_equal(perfmap_registry_count(reg), 1);
	assert_int_equal(perfmap_registry_find(reg, 1, 1, 0x1000, &g), -ENOENT);
	perfmap_registry_forget(reg, 99);
	assert_int_equal(perfmap_registry_count(reg), 1);
	perfmap_registry_free(reg);
	assert_null(perfmap_registry_free(NULL));
}

static void *registrar(void *arg)
{
	struct perfmap_registry *reg = arg;
	for (uint64_t i = 0; i < 20000; i++)
		perfmap_registry_put(reg, (uint32_t)(i % 7), 0, (i % 500) * 0x100, 0x80, "r", "[jit]");
	return NULL;
}

static void test_registry_threads(void **state)
{
	struct perfmap_registry *reg = NULL;
	assert_int_equal(perfmap_registry_new(1000, &reg), 0);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, registrar, reg), 0);
	struct perfmap_region g;
	uint64_t hits = 0;
	for (uint64_t i = 0; i < 200000; i++)
		if (perfmap_registry_find(reg, (uint32_t)(i % 7), 0, (i % 500) * 0x100 + 0x10, &g) == 0) {
			hits++;
			assert_string_equal(g.name, "r");
		}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_true(perfmap_registry_count(reg) <= 1000);
	perfmap_registry_free(reg);
	(void)hits;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_line),
		cmocka_unit_test(test_parse_rules),
		cmocka_unit_test(test_load_refresh),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_registry_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
