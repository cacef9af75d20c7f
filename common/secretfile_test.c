/* secretfile_test: mode, owner and type checks, the first-line rule, bounds, symlinks, FIFOs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secretfile.h"

struct fx {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/ms-secret-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/s", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[160];
	static const char *const names[] = { "s", "link", "fifo", "d" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		if (unlink(p) < 0)
			rmdir(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void put(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_private_file(void **state)
{
	struct fx *f = *state;
	char buf[64];
	put(f->path, "  s3cret-token \nsecond line\n", 0600);
	assert_int_equal(secretfile_read(f->path, buf, sizeof(buf)), 12);
	assert_string_equal(buf, "s3cret-token");
	assert_int_equal(secretfile_check(f->path), 0);
	put(f->path, "pw\r\n", 0400);
	assert_int_equal(secretfile_read(f->path, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "pw");
	/* execute bits do not expose the secret */
	put(f->path, "pw", 0700);
	assert_int_equal(secretfile_read(f->path, buf, sizeof(buf)), 2);
}

static void test_shared_modes_refused(void **state)
{
	struct fx *f = *state;
	char buf[64] = "x";
	static const mode_t bad[] = { 0640, 0620, 0604, 0602, 0644, 0666 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put(f->path, "secret\n", bad[i]);
		assert_int_equal(secretfile_read(f->path, buf, sizeof(buf)), -EPERM);
		assert_string_equal(buf, "");
		assert_int_equal(secretfile_check(f->path), -EPERM);
	}
	assert_non_null(strstr(secretfile_strerror(-EPERM), "chmod 600"));
}

static void test_owner(void **state)
{
	struct stat st = { .st_mode = S_IFREG | 0600, .st_uid = 1234 };
	assert_int_equal(secretfile_check_stat(&st, 1234), 0);
	assert_int_equal(secretfile_check_stat(&st, 0), -EACCES);
	assert_int_equal(secretfile_check_stat(&st, 999), -EACCES);
	st.st_uid = 0;
	assert_int_equal(secretfile_check_stat(&st, 999), 0); /* root-owned secrets are fine */
	st.st_mode = S_IFDIR | 0700;
	assert_int_equal(secretfile_check_stat(&st, 0), -EINVAL);
}

static void test_types_and_bounds(void **state)
{
	struct fx *f = *state;
	char buf[8], p[160];
	assert_int_equal(secretfile_read(NULL, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(secretfile_read("", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(secretfile_read("/nonexistent/secret", buf, sizeof(buf)), -ENOENT);
	snprintf(p, sizeof(p), "%s/d", f->dir);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(secretfile_read(p, buf, sizeof(buf)), -EINVAL);
	snprintf(p, sizeof(p), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(secretfile_read(p, buf, sizeof(buf)), -EINVAL); /* and it did not block */
	put(f->path, "\n  \n", 0600);
	assert_int_equal(secretfile_read(f->path, buf, sizeof(buf)), -ENODATA);
	put(f->path, "12345678", 0600);
	assert_int_equal(secretfile_read(f->path, buf, sizeof(buf)), -E2BIG);
	put(f->path, "1234567", 0600);
	assert_int_equal(secretfile_read(f->path, buf, sizeof(buf)), 7);
	char *big = malloc(SECRETFILE_MAX + 2);
	memset(big, 'a', SECRETFILE_MAX + 1);
	big[SECRETFILE_MAX + 1] = 0;
	put(f->path, big, 0600);
	free(big);
	char large[SECRETFILE_MAX * 2];
	assert_int_equal(secretfile_read(f->path, large, sizeof(large)), -E2BIG);
}

static void test_symlink_followed(void **state)
{
	struct fx *f = *state;
	char buf[64], link[160];
	put(f->path, "via-link\n", 0600);
	snprintf(link, sizeof(link), "%s/link", f->dir);
	assert_int_equal(symlink(f->path, link), 0);
	/* a Kubernetes secret volume is a symlink to a 0400 file: the target's mode counts */
	assert_int_equal(secretfile_read(link, buf, sizeof(buf)), 8);
	assert_string_equal(buf, "via-link");
	assert_int_equal(chmod(f->path, 0644), 0);
	assert_int_equal(secretfile_read(link, buf, sizeof(buf)), -EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_private_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_modes_refused, setup, teardown),
		cmocka_unit_test(test_owner),
		cmocka_unit_test_setup_teardown(test_types_and_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_followed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
