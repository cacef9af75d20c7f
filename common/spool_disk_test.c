/* spool tests on a really full filesystem (a small tmpfs; needs CAP_SYS_ADMIN, skipped visibly
 * otherwise): under DROP_OLDEST a full disk deletes the oldest segments like the spool's own
 * bound does (the fault suite's disk-full case, docs/FAULTS.md); every deleted record is counted
 * and no partial record is left behind. The DROP_NEWEST case is in spool_test.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"

#define REC 4000u
#define RECORDS 100u

struct fixture {
	char dir[64], mnt[96], sdir[128];
};

static void rm_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/spool_disk_test.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->mnt, sizeof(f->mnt), "%s/mnt", f->dir);
	snprintf(f->sdir, sizeof(f->sdir), "%s/sp", f->mnt);
	*state = f;
	return mkdir(f->mnt, 0700);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	rm_files(f->sdir);
	umount2(f->mnt, MNT_DETACH);
	rmdir(f->mnt);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void fill(uint8_t *b, unsigned i)
{
	for (size_t k = 0; k < REC; k++)
		b[k] = (uint8_t)(i * 31u + k);
}

/* Total size of the segment files in dir. */
static off_t seg_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];
	off_t total = 0;
	struct stat st;
	while (d && (e = readdir(d))) {
		if (!strstr(e->d_name, ".seg"))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (stat(p, &st) == 0)
			total += st.st_size;
	}
	if (d)
		closedir(d);
	return total;
}

/* Reads every pending record: consecutive ids ending at last_id, payloads intact. */
static void expect_newest(struct spool *sp, uint64_t n, uint64_t last_id)
{
	uint8_t want[REC];
	for (uint64_t id = last_id - n + 1; id <= last_id; id++) {
		const void *buf;
		size_t len;
		uint64_t got;
		assert_int_equal(spool_peek(sp, &buf, &len, &got), 0);
		assert_int_equal(got, id);
		assert_int_equal(len, REC);
		fill(want, (unsigned)id);
		assert_memory_equal(buf, want, REC);
		assert_int_equal(spool_pop(sp), 0);
	}
	const void *buf;
	size_t len;
	assert_int_equal(spool_peek(sp, &buf, &len, NULL), -ENOENT);
}

static void test_disk_full_drop_oldest(void **state)
{
	struct fixture *f = *state;
	if (mount("tmpfs", f->mnt, "tmpfs", 0, "size=64k") < 0) {
		fprintf(stderr, "SKIP test_disk_full_drop_oldest: cannot mount tmpfs: %s\n", strerror(errno));
		skip();
	}
	/* the bound (1 MiB) is far above the disk (64 KiB): the disk runs out first */
	struct spool_opts o = { .max_bytes = 1 << 20, .segment_bytes = 16384, .policy = SPOOL_DROP_OLDEST };
	struct spool *sp = NULL;
	assert_int_equal(spool_open(f->sdir, &o, &sp), 0);
	uint8_t b[REC];
	uint64_t id = 0;
	for (unsigned i = 1; i <= RECORDS; i++) {
		fill(b, i);
		assert_int_equal(spool_append(sp, b, REC, &id), 0); /* never refused */
		assert_int_equal(id, i);
	}
	struct spool_stats st;
	spool_stats(sp, &st);
	assert_true(st.dropped_oldest > 0);
	assert_int_equal(st.records + st.dropped_oldest, RECORDS);
	assert_int_equal(st.dropped_newest, 0);
	assert_int_equal(st.write_errors, 0);
	assert_int_equal(seg_bytes(f->sdir), (off_t)st.bytes); /* no partial record left */
	spool_free(sp);
	assert_int_equal(spool_open(f->sdir, &o, &sp), 0);
	struct spool_stats again;
	spool_stats(sp, &again);
	assert_int_equal(again.corrupt_truncations, 0);
	assert_int_equal(again.records, st.records);
	expect_newest(sp, st.records, RECORDS);
	spool_free(sp);
}

/* The segment being written is never deleted: with one segment only, a full disk refuses. */
static void test_disk_full_single_segment(void **state)
{
	struct fixture *f = *state;
	if (mount("tmpfs", f->mnt, "tmpfs", 0, "size=64k") < 0) {
		fprintf(stderr, "SKIP test_disk_full_single_segment: cannot mount tmpfs: %s\n", strerror(errno));
		skip();
	}
	struct spool_opts o = { .max_bytes = 1 << 20, .segment_bytes = 1 << 20, .policy = SPOOL_DROP_OLDEST };
	struct spool *sp = NULL;
	assert_int_equal(spool_open(f->sdir, &o, &sp), 0);
	uint8_t b[REC];
	unsigned ok = 0;
	int r;
	for (;;) {
		fill(b, ok + 1);
		if ((r = spool_append(sp, b, REC, NULL)) < 0)
			break;
		ok++;
	}
	assert_int_equal(r, -ENOSPC);
	struct spool_stats st;
	spool_stats(sp, &st);
	assert_int_equal(st.dropped_oldest, 0);
	assert_int_equal(st.records, ok);
	assert_int_equal(st.write_errors, 1);
	assert_int_equal(seg_bytes(f->sdir), (off_t)st.bytes);
	expect_newest(sp, ok, ok);
	spool_free(sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_disk_full_drop_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_single_segment, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
