/* procmaps_test: the line parser's acceptance table, whole-file parsing (skipped lines,
 * ordering, bounds), lookups on this process's own maps, and opening mapped files (plain,
 * through the process root, deleted files through map_files, inode mismatch refused). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procmaps.h"

__attribute__((noinline)) int procmaps_test_marker(int x)
{
	return x * 3 + 1;
}

static const struct {
	const char *line;
	int ok;
	uint8_t kind;
	const char *path; /* expected path when ok */
	uint8_t deleted;
} cases[] = {
	{ "55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1234  /usr/bin/cat", 1, PROCMAPS_FILE, "/usr/bin/cat", 0 },
	{ "7f0000000000-7f0000001000 rw-p 00000000 00:00 0", 1, PROCMAPS_ANON, "", 0 },
	{ "7f0000000000-7f0000001000 rw-p 00000000 00:00 0    ", 1, PROCMAPS_ANON, "", 0 },
	{ "01000000-01021000 rw-p 00000000 00:00 0                          [heap]", 1, PROCMAPS_HEAP, "[heap]", 0 },
	{ "7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0 [stack]", 1, PROCMAPS_STACK, "[stack]", 0 },
	{ "7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0 [stack:1234]", 1, PROCMAPS_STACK, "[stack:1234]", 0 },
	{ "7ffc00000000-7ffc00002000 r-xp 00000000 00:00 0 [vdso]", 1, PROCMAPS_SPECIAL, "[vdso]", 0 },
	{ "7f0000000000-7f0000001000 rw-s 00000000 00:05 77 /dev/shm/a b c", 1, PROCMAPS_FILE, "/dev/shm/a b c", 0 },
	{ "7f0000000000-7f0000001000 r-xp 00001000 08:02 99 /tmp/x (deleted)", 1, PROCMAPS_FILE, "/tmp/x", 1 },
	{ "7f0000000000-7f0000001000 rw-s 00000000 00:01 5 /memfd:jit (deleted)", 1, PROCMAPS_FILE, "/memfd:jit", 1 },
	{ "7f0000000000-7f0000001000 rw-p 00000000 00:0e 5 anon_inode:[perf_event]", 1, PROCMAPS_SPECIAL,
	  "anon_inode:[perf_event]", 0 },
	{ "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]", 1, PROCMAPS_SPECIAL, "[vsyscall]", 0 },
	{ "7F0000000000-7F0000001000 r--p 0000000100000000 103:0a 18446744073709551615 /big", 1, PROCMAPS_FILE, "/big", 0 },
	{ " (deleted)", 0, 0, NULL, 0 },
	{ "", 0, 0, NULL, 0 },
	{ "7f0000000000-7f0000001000", 0, 0, NULL, 0 },
	{ "7f0000000000-7f0000001000 rw-p 00000000 00:00", 0, 0, NULL, 0 },
	{ "7f0000001000-7f0000001000 rw-p 00000000 00:00 0", 0, 0, NULL, 0 },  /* empty */
	{ "7f0000002000-7f0000001000 rw-p 00000000 00:00 0", 0, 0, NULL, 0 },  /* reversed */
	{ "7f0000000100-7f0000001000 rw-p 00000000 00:00 0", 0, 0, NULL, 0 },  /* unaligned */
	{ "17f00000000000000-27f00000000000000 rw-p 0 0:0 0", 0, 0, NULL, 0 }, /* 17 digits */
	{ "7f0000000000-7f0000001000 rwxq 00000000 00:00 0", 0, 0, NULL, 0 },
	{ "7f0000000000-7f0000001000 rw- 00000000 00:00 0", 0, 0, NULL, 0 },
	{ "7f0000000000-7f0000001000 rw-p 0000000g 00:00 0", 0, 0, NULL, 0 },
	{ "7f0000000000-7f0000001000 rw-p 00000000 00-00 0", 0, 0, NULL, 0 },
	{ "7f0000000000-7f0000001000 rw-p 00000000 00:00 1a /x", 0, 0, NULL, 0 },
	{ "7f0000000000-7f0000001000 rw-p 00000000 00:00 18446744073709551616 /x", 0, 0, NULL, 0 },
	{ "7f0000000000-7f0000001000\trw-p 00000000 00:00 0", 0, 0, NULL, 0 },
	{ "0x7f0000000000-7f0000001000 rw-p 00000000 00:00 0", 0, 0, NULL, 0 },
	{ "-7f0000001000 rw-p 00000000 00:00 0", 0, 0, NULL, 0 },
};

static void test_parse_line_table(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct procmaps_entry e;
		const char *path;
		size_t plen;
		int r = procmaps_parse_line(cases[i].line, strlen(cases[i].line), &e, &path, &plen);
		if (!cases[i].ok) {
			if (r != -EINVAL)
				fail_msg("accepted: \"%s\"", cases[i].line);
			continue;
		}
		if (r != 0)
			fail_msg("refused: \"%s\"", cases[i].line);
		assert_int_equal(e.kind, cases[i].kind);
		assert_int_equal(e.deleted, cases[i].deleted);
		assert_int_equal(plen, strlen(cases[i].path));
		assert_memory_equal(path, cases[i].path, plen);
	}
}

static void test_parse_line_fields(void **state)
{
	const char *l = "7F0000000000-7F0000003000 r-xs 0000000100000000 103:0a 42 /big";
	struct procmaps_entry e;
	const char *path;
	size_t plen;
	assert_int_equal(procmaps_parse_line(l, strlen(l), &e, &path, &plen), 0);
	assert_true(e.start == 0x7f0000000000ull && e.end == 0x7f0000003000ull);
	assert_true(e.pgoff == 0x100000000ull);
	assert_int_equal(e.dev_major, 0x103);
	assert_int_equal(e.dev_minor, 0xa);
	assert_int_equal(e.inode, 42);
	assert_int_equal(e.perms, PROCMAPS_R | PROCMAPS_X | PROCMAPS_SHARED);
	/* NUL inside and over-long lines */
	char nul[] = "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 /a\0b";
	assert_int_equal(procmaps_parse_line(nul, sizeof(nul) - 1, &e, &path, &plen), -EINVAL);
	char *longl = malloc(PROCMAPS_LINE_MAX + 100);
	assert_non_null(longl);
	int n = snprintf(longl, 100, "7f0000000000-7f0000001000 rw-p 00000000 00:00 1 /");
	memset(longl + n, 'a', PROCMAPS_LINE_MAX + 50 - (size_t)n);
	assert_int_equal(procmaps_parse_line(longl, PROCMAPS_LINE_MAX + 50, &e, &path, &plen), -EINVAL);
	free(longl);
}

static void test_parse_file(void **state)
{
	const char *text =
		"1000-3000 r-xp 00000000 08:01 7 /bin/a\n"
		"garbage line\n"
		"3000-4000 rw-p 00002000 08:01 7 /bin/a\n"
		"3800-5000 rw-p 00000000 00:00 0\n"     /* overlaps the previous: skipped */
		"2000-2800 rw-p 00000000 00:00 0\n"     /* out of order: skipped */
		"4000-6000 rw-p 00000000 00:00 0\n"     /* .bss right after the file */
		"10000-11000 r--p 00000000 08:01 9 /lib/b.so"; /* no final newline */
	struct procmaps *m = NULL;
	assert_int_equal(procmaps_parse(text, strlen(text), 0, &m), 0);
	assert_int_equal(procmaps_count(m), 4);
	assert_int_equal(procmaps_bad_lines(m), 3);
	assert_false(procmaps_truncated(m));
	size_t idx = 99;
	assert_null(procmaps_find(m, 0xfff, NULL));
	const struct procmaps_entry *e = procmaps_find(m, 0x1000, &idx);
	assert_non_null(e);
	assert_int_equal(idx, 0);
	assert_string_equal(e->path, "/bin/a");
	assert_string_equal(procmaps_name(e), "a");
	e = procmaps_find(m, 0x2fff, &idx);
	assert_int_equal(idx, 0);
	e = procmaps_find(m, 0x3000, &idx);
	assert_int_equal(idx, 1);
	assert_true(e->pgoff == 0x2000);
	/* the anonymous mapping after the file's rw mapping is its .bss */
	e = procmaps_find(m, 0x5000, &idx);
	assert_int_equal(idx, 2);
	assert_string_equal(procmaps_name(e), "[anon]");
	assert_ptr_equal(procmaps_data_file(m, idx), procmaps_at(m, 1));
	assert_ptr_equal(procmaps_data_file(m, 1), procmaps_at(m, 1));
	assert_null(procmaps_find(m, 0x6000, NULL));
	e = procmaps_find(m, 0x10fff, &idx);
	assert_non_null(e);
	assert_string_equal(procmaps_name(e), "b.so");
	assert_null(procmaps_find(m, 0x11000, NULL));
	assert_null(procmaps_at(m, 4));
	procmaps_free(m);

	/* bounded entry count */
	assert_int_equal(procmaps_parse(text, strlen(text), 2, &m), 0);
	assert_int_equal(procmaps_count(m), 2);
	assert_true(procmaps_truncated(m));
	procmaps_free(m);
	/* empty input */
	assert_int_equal(procmaps_parse("", 0, 0, &m), 0);
	assert_int_equal(procmaps_count(m), 0);
	assert_null(procmaps_find(m, 0x1000, NULL));
	procmaps_free(m);
	assert_null(procmaps_free(NULL));
}

static void test_load_self(void **state)
{
	struct procmaps *m = NULL;
	assert_int_equal(procmaps_load(NULL, (uint32_t)getpid(), 0, &m), 0);
	assert_true(procmaps_count(m) > 5);
	assert_true(procmaps_mem_bytes(m) > 0);
	const struct procmaps_entry *e = procmaps_find(m, (uint64_t)(uintptr_t)&procmaps_test_marker, NULL);
	assert_non_null(e);
	assert_int_equal(e->kind, PROCMAPS_FILE);
	assert_true(e->perms & PROCMAPS_X);
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	assert_string_equal(e->path, exe);
	/* the heap is "[heap]" (valgrind moves the stack and the heap elsewhere) */
	void *brk_now = sbrk(0);
	e = procmaps_find(m, (uint64_t)(uintptr_t)brk_now - 1, NULL);
	if (e && e->kind != PROCMAPS_HEAP)
		print_message("brk area is %s, not [heap]\n", procmaps_name(e));

	/* open the file behind the mapping: the same inode as /proc/self/exe */
	int fd = -1;
	e = procmaps_find(m, (uint64_t)(uintptr_t)&procmaps_test_marker + 1, NULL);
	struct procmaps_entry anon = { .kind = PROCMAPS_ANON, .path = "" };
	assert_int_equal(procmaps_open_file(NULL, (uint32_t)getpid(), &anon, &fd), -EINVAL); /* not a file */
	assert_int_equal(procmaps_open_file(NULL, (uint32_t)getpid(), e, &fd), 0);
	struct stat a, b;
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(stat(exe, &b), 0); /* not /proc/self/exe: valgrind emulates only readlink */
	assert_true(a.st_ino == b.st_ino);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	close(fd);
	/* a mapping claiming another inode is not opened */
	struct procmaps_entry wrong = *e;
	wrong.inode++;
	assert_int_equal(procmaps_open_file(NULL, (uint32_t)getpid(), &wrong, &fd), -ENOENT);
	procmaps_free(m);

	assert_int_equal(procmaps_load(NULL, 0x7ffffff0u, 0, &m), -ENOENT);
	assert_int_equal(procmaps_load("/nonexistent-proc", 1, 0, &m), -ENOENT);
}

/* A deleted file stays reachable through map_files while it is mapped. */
static void test_open_deleted(void **state)
{
	char path[] = "/tmp/procmaps_test.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	char buf[8192];
	memset(buf, 'z', sizeof(buf));
	assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	void *p = mmap(NULL, sizeof(buf), PROT_READ, MAP_PRIVATE, fd, 0);
	assert_true(p != MAP_FAILED);
	close(fd);
	assert_int_equal(unlink(path), 0);
	struct procmaps *m = NULL;
	assert_int_equal(procmaps_load(NULL, (uint32_t)getpid(), 0, &m), 0);
	const struct procmaps_entry *e = procmaps_find(m, (uint64_t)(uintptr_t)p, NULL);
	assert_non_null(e);
	assert_int_equal(e->deleted, 1);
	assert_string_equal(e->path, path);
	int r = procmaps_open_file(NULL, (uint32_t)getpid(), e, &fd);
	if (geteuid() == 0) { /* map_files needs CAP_SYS_ADMIN */
		assert_int_equal(r, 0);
		char c = 0;
		assert_int_equal(pread(fd, &c, 1, 100), 1);
		assert_int_equal(c, 'z');
		close(fd);
	} else {
		print_message("map_files not tried: not root (r=%d)\n", r);
	}
	procmaps_free(m);
	munmap(p, sizeof(buf));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_line_table),
		cmocka_unit_test(test_parse_line_fields),
		cmocka_unit_test(test_parse_file),
		cmocka_unit_test(test_load_self),
		cmocka_unit_test(test_open_deleted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
