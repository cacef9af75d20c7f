/* kallsyms_test: the line parser, a synthetic table (types kept, aliases, modules, spans,
 * malformed and over-long lines), a kptr_restrict'ed file, and the running kernel's table. */
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

#include "kallsyms.h"

static char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/kallsyms_test.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_parse_line(void **state)
{
	static const struct {
		const char *line;
		int ok;
	} cases[] = {
		{ "ffffffff81000000 T _stext", 1 },
		{ "ffffffffc0a01000 t nft_do_chain\t[nf_tables]", 1 },
		{ "0000000000000000 D fixed_percpu_data", 1 },
		{ "ffffffff81000000 T", 0 },
		{ "ffffffff81000000  T x", 0 },
		{ "ffffffff81000000 T x y", 0 },
		{ "ffffffff81000000 T x\t[mod", 0 },
		{ "ffffffff81000000 T x\t[]", 0 },
		{ "ffffffff81000000 T x\t[a]b]", 0 },
		{ "1ffffffff81000000 T x", 0 },
		{ "zz T x", 0 },
		{ "", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t a;
		char t;
		const char *n, *m;
		size_t nl, ml;
		int r = kallsyms_parse_line(cases[i].line, strlen(cases[i].line), &a, &t, &n, &nl, &m, &ml);
		if ((r == 0) != cases[i].ok)
			fail_msg("line \"%s\": %d", cases[i].line, r);
	}
	uint64_t a;
	char t;
	const char *n, *m;
	size_t nl, ml;
	const char *l = "ffffffffc0a01000 t nft_do_chain\t[nf_tables]";
	assert_int_equal(kallsyms_parse_line(l, strlen(l), &a, &t, &n, &nl, &m, &ml), 0);
	assert_true(a == 0xffffffffc0a01000ull);
	assert_int_equal(t, 't');
	assert_int_equal(nl, strlen("nft_do_chain"));
	assert_memory_equal(m, "nf_tables", ml);
}

static void test_synthetic(void **state)
{
	char *longl = malloc(2000);
	assert_non_null(longl);
	memset(longl, 'x', 1999);
	longl[1999] = '\0';
	char text[4096];
	snprintf(text, sizeof(text),
		 "ffffffff81000000 T _text\n"
		 "ffffffff81000000 t _stext_local\n"
		 "ffffffff81000100 t helper\n"
		 "ffffffff81000200 D some_data\n"        /* not text: not kept */
		 "ffffffff81000300 W weak_fn\n"
		 "ffffffff81000300 T __strong_alias\n"   /* same address: T beats W */
		 "%s\n"                                  /* over-long: skipped */
		 "garbage\n"
		 "ffffffff81001000 T _etext\n"
		 "ffffffffc0000000 t mod_fn\t[mymod]\n"
		 "ffffffffc0000040 w mod_fn2\t[mymod]",   /* no final newline */
		 longl);
	free(longl);
	char *path = write_tmp(text);
	struct kallsyms *ks = NULL;
	assert_int_equal(kallsyms_load(path, 0, &ks), 0);
	unlink(path);
	assert_false(kallsyms_restricted(ks));
	assert_int_equal(kallsyms_count(ks), 6); /* two addresses carry two names each */
	assert_int_equal(kallsyms_bad_lines(ks), 2);
	struct kallsyms_hit h;
	assert_int_equal(kallsyms_lookup(ks, 0xffffffff80ffffffull, &h), -ENOENT);
	assert_int_equal(kallsyms_lookup(ks, 0xffffffff81000010ull, &h), 0);
	assert_string_equal(h.name, "_text");
	assert_string_equal(h.module, "");
	assert_int_equal(kallsyms_lookup(ks, 0xffffffff81000250ull, &h), 0);
	assert_string_equal(h.name, "helper"); /* the data symbol is not a boundary */
	assert_int_equal(kallsyms_lookup(ks, 0xffffffff81000300ull, &h), 0);
	assert_string_equal(h.name, "__strong_alias");
	assert_int_equal(kallsyms_lookup(ks, 0xffffffffc0000010ull, &h), 0);
	assert_string_equal(h.name, "mod_fn");
	assert_string_equal(h.module, "mymod");
	assert_int_equal(kallsyms_lookup(ks, 0xffffffffc0000050ull, &h), 0);
	assert_string_equal(h.name, "mod_fn2");
	/* the gap between _etext and the modules is nobody's, nor is the end of the table */
	assert_int_equal(kallsyms_lookup(ks, 0xffffffffa0000000ull, &h), -ENOENT);
	assert_int_equal(kallsyms_lookup(ks, 0xffffffffc0000040ull + KALLSYMS_MAX_SPAN, &h), -ENOENT);
	assert_true(kallsyms_mem_bytes(ks) > 0);
	kallsyms_free(ks);

	/* bounded */
	path = write_tmp("ffffffff81000000 T a\nffffffff81000100 T b\nffffffff81000200 T c\n");
	assert_int_equal(kallsyms_load(path, 2, &ks), 0);
	unlink(path);
	assert_int_equal(kallsyms_count(ks), 2);
	kallsyms_free(ks);
	assert_null(kallsyms_free(NULL));
	assert_int_equal(kallsyms_load("/nonexistent/kallsyms", 0, &ks), -ENOENT);
}

static void test_restricted(void **state)
{
	char *path = write_tmp("0000000000000000 T _text\n0000000000000000 T schedule\n0000000000000000 t x\t[m]\n");
	struct kallsyms *ks = NULL;
	assert_int_equal(kallsyms_load(path, 0, &ks), 0);
	unlink(path);
	assert_true(kallsyms_restricted(ks));
	assert_int_equal(kallsyms_count(ks), 0);
	struct kallsyms_hit h;
	assert_int_equal(kallsyms_lookup(ks, 0xffffffff81000000ull, &h), -ENOENT);
	kallsyms_free(ks);
	/* an empty file is not "restricted" */
	path = write_tmp("");
	assert_int_equal(kallsyms_load(path, 0, &ks), 0);
	unlink(path);
	assert_false(kallsyms_restricted(ks));
	kallsyms_free(ks);
}

/* The running kernel: the address of "schedule" resolves back to it. */
static void test_real_kernel(void **state)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[512];
	uint64_t addr = 0;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long a;
		char t, name[256];
		if (sscanf(line, "%llx %c %255s", &a, &t, name) == 3 && strcmp(name, "schedule") == 0) {
			addr = a;
			break;
		}
	}
	if (f)
		fclose(f);
	if (!addr) {
		print_message("SKIP: /proc/kallsyms unreadable or restricted\n");
		skip();
	}
	struct kallsyms *ks = NULL;
	assert_int_equal(kallsyms_load(NULL, 0, &ks), 0);
	assert_false(kallsyms_restricted(ks));
	struct kallsyms_hit h;
	assert_int_equal(kallsyms_lookup(ks, addr + 8, &h), 0);
	assert_string_equal(h.name, "schedule");
	assert_true(h.start == addr);
	print_message("%zu kernel text symbols, %zu bytes\n", kallsyms_count(ks), kallsyms_mem_bytes(ks));
	kallsyms_free(ks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_line),
		cmocka_unit_test(test_synthetic),
		cmocka_unit_test(test_restricted),
		cmocka_unit_test(test_real_kernel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
