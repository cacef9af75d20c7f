/* spool tests: order, restart, corruption, bounds and policies, roll/delete, disk full (tmpfs),
 * threads, and a throughput figure for 4 KiB records. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spool.h"

static int setup(void **state)
{
	char *dir = strdup("/tmp/spool_test.XXXXXX");
	*state = dir;
	return dir && mkdtemp(dir) ? 0 : -1;
}

static void rm_dir(const char *dir)
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

static int teardown(void **state)
{
	char mnt[128];
	snprintf(mnt, sizeof(mnt), "%s/mnt", (char *)*state);
	umount2(mnt, MNT_DETACH); /* only mounted if test_disk_full failed half-way */
	rm_dir(mnt);
	rm_dir(*state);
	free(*state);
	return 0;
}

/* Deterministic payload for record number i (len depends on i unless fixed). */
static size_t fill(uint8_t *b, size_t cap, unsigned i, size_t fixed)
{
	size_t len = fixed ? fixed : (i * 37u) % 700u + 1;
	if (len > cap)
		len = cap;
	for (size_t k = 0; k < len; k++)
		b[k] = (uint8_t)(i * 31u + k);
	return len;
}

static void expect_rec(struct spool *sp, unsigned i, uint64_t id, size_t fixed)
{
	uint8_t want[8192];
	size_t wlen = fill(want, sizeof(want), i, fixed), len;
	const void *buf;
	uint64_t got;
	assert_int_equal(spool_peek(sp, &buf, &len, &got), 0);
	assert_int_equal(got, id);
	assert_int_equal(len, wlen);
	assert_memory_equal(buf, want, len);
}

static struct spool_stats stats(struct spool *sp)
{
	struct spool_stats st;
	spool_stats(sp, &st);
	return st;
}

/* Closes *sp (if any) and opens dir again with the default options. */
static struct spool_stats reopen(const char *dir, struct spool **sp)
{
	spool_free(*sp);
	assert_int_equal(spool_open(dir, NULL, sp), 0);
	return stats(*sp);
}

static int peek_rc(struct spool *sp)
{
	const void *buf;
	size_t len;
	return spool_peek(sp, &buf, &len, NULL);
}

static uint64_t app(struct spool *sp, unsigned i, size_t fixed)
{
	uint8_t b[8192];
	size_t len = fill(b, sizeof(b), i, fixed);
	uint64_t id = 0;
	assert_int_equal(spool_append(sp, b, len, &id), 0);
	return id;
}

static off_t fsize(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 ? st.st_size : -1;
}

/* Segment files in dir: how many, the path of the newest, their total size. */
static unsigned count_segs(const char *dir, char *ret_last, off_t *ret_total)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;
	char last[64] = "", p[512];
	off_t total = 0;
	while ((e = readdir(d))) {
		if (!strstr(e->d_name, ".seg"))
			continue;
		n++;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		total += fsize(p);
		if (strcmp(e->d_name, last) > 0)
			strcpy(last, e->d_name);
	}
	closedir(d);
	if (ret_last)
		snprintf(ret_last, 128, "%s/%s", dir, last);
	if (ret_total)
		*ret_total = total;
	return n;
}

static struct spool *open_fs(const char *dir, uint64_t max, uint64_t seg,
			     enum spool_full_policy p, enum spool_fsync fs)
{
	struct spool_opts o = { .max_bytes = max, .segment_bytes = seg, .policy = p, .fsync = fs };
	struct spool *sp = NULL;
	assert_int_equal(spool_open(dir, &o, &sp), 0);
	return sp;
}

static struct spool *open_ok(const char *dir, uint64_t max, uint64_t seg, enum spool_full_policy p)
{
	return open_fs(dir, max, seg, p, SPOOL_FSYNC_NONE);
}

static void write_at(const char *p, off_t off, const void *b, size_t n)
{
	int fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, b, n, off), (ssize_t)n);
	close(fd);
}

static void flip_at(const char *p, off_t off)
{
	uint8_t c;
	int fd = open(p, O_RDWR);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x10;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void test_order(void **state)
{
	const char *dir = *state;
	struct spool *sp = open_ok(dir, 0, 0, SPOOL_DROP_OLDEST);
	const void *buf;
	size_t len;
	assert_int_equal(peek_rc(sp), -ENOENT);
	assert_int_equal(spool_pop(sp), -ENOENT);
	for (unsigned i = 0; i < 100; i++)
		assert_int_equal(app(sp, i, 0), i + 1);
	assert_int_equal(spool_append(sp, "", 0, NULL), 0); /* empty records are fine */
	for (unsigned i = 0; i < 100; i++) {
		expect_rec(sp, i, i + 1, 0);
		expect_rec(sp, i, i + 1, 0); /* peek does not consume */
		assert_int_equal(spool_pop(sp), 0);
	}
	assert_int_equal(spool_peek(sp, &buf, &len, NULL), 0);
	assert_int_equal(len, 0);
	assert_int_equal(spool_pop(sp), 0);
	struct spool_stats st = stats(sp);
	assert_true(st.records == 0 && st.bytes == 0 && st.segments == 1); /* emptied in place */
	assert_true(st.appended_total == 101 && st.consumed_total == 101);
	assert_int_equal(peek_rc(sp), -ENOENT);
	spool_free(sp);
}

static void test_restart_pending(void **state)
{
	const char *dir = *state;
	struct spool *sp = open_fs(dir, 0, 4096, SPOOL_DROP_OLDEST, SPOOL_FSYNC_APPEND);
	for (unsigned i = 0; i < 50; i++)
		app(sp, i, 0);
	for (unsigned i = 0; i < 7; i++)
		assert_int_equal(spool_pop(sp), 0);
	struct spool_stats st = reopen(dir, &sp);
	assert_int_equal(st.records, 43);
	assert_int_equal(st.corrupt_truncations, 0);
	uint64_t id = app(sp, 50, 0);
	assert_true(id > 50);
	for (unsigned i = 7; i < 50; i++) {
		expect_rec(sp, i, i + 1, 0);
		assert_int_equal(spool_ack(sp, i + 1), 0);
	}
	expect_rec(sp, 50, id, 0);
	spool_free(sp);
}

static void test_ids_monotonic(void **state)
{
	const char *dir = *state;
	uint64_t last = 0;
	for (int round = 0; round < 5; round++) {
		struct spool *sp = open_ok(dir, 0, 0, SPOOL_DROP_OLDEST);
		for (unsigned i = 0; i < 3; i++) {
			uint64_t id = app(sp, i, 0);
			assert_true(id > last);
			last = id;
		}
		if (round % 2) /* sometimes leave nothing on disk: the state file carries the ids */
			while (spool_pop(sp) == 0)
				;
		spool_free(sp);
	}
	uint64_t first_of_last_round = last - 2; /* ids are consecutive within a run */
	/* One state slot torn: the other one carries the ids. */
	char p[128];
	snprintf(p, sizeof(p), "%s/state", dir);
	flip_at(p, 12);
	struct spool *sp = open_ok(dir, 0, 0, SPOOL_DROP_OLDEST);
	assert_true(app(sp, 9, 0) > last);
	last = app(sp, 9, 0);
	spool_free(sp);
	/* With the state file gone, ids still continue above what the segments hold. */
	unlink(p);
	sp = open_ok(dir, 0, 0, SPOOL_DROP_OLDEST);
	assert_true(app(sp, 9, 0) > last);
	expect_rec(sp, 0, first_of_last_round, 0); /* the cursor restarts: redelivery, no loss */
	spool_free(sp);
}

static void test_ack(void **state)
{
	const char *dir = *state;
	struct spool *sp = open_ok(dir, 0, 0, SPOOL_DROP_OLDEST);
	assert_int_equal(spool_ack(sp, 1), -ESRCH); /* never issued */
	app(sp, 0, 0);
	app(sp, 1, 0);
	assert_int_equal(spool_ack(sp, 2), -ESRCH); /* not cumulative */
	assert_int_equal(spool_ack(sp, 1), 0);
	assert_int_equal(spool_ack(sp, 1), 0); /* duplicate ack */
	expect_rec(sp, 1, 2, 0);
	assert_int_equal(spool_ack(sp, 2), 0);
	assert_int_equal(spool_ack(sp, 2), 0);
	assert_int_equal(spool_ack(sp, 3), -ESRCH);
	struct spool *sp2 = NULL;
	assert_int_equal(spool_open(dir, NULL, &sp2), -EBUSY);
	spool_free(sp);
	assert_null(spool_free(NULL));
}

static void test_torn_tail(void **state)
{
	const char *dir = *state;
	char seg[128];
	struct spool *sp = open_ok(dir, 0, 0, SPOOL_DROP_OLDEST);
	for (unsigned i = 0; i < 5; i++)
		app(sp, i, 100);
	spool_free(sp);
	count_segs(dir, seg, NULL);
	off_t rec = SPOOL_HDR_SIZE + 100;
	assert_int_equal(fsize(seg), 5 * rec);
	assert_int_equal(truncate(seg, 4 * rec + 30), 0); /* 5th record torn mid-payload */
	sp = NULL;
	struct spool_stats st = reopen(dir, &sp);
	assert_int_equal(st.records, 4);
	assert_int_equal(st.corrupt_truncations, 1);
	assert_int_equal(st.corrupt_bytes, 30);
	assert_int_equal(fsize(seg), 4 * rec);
	/* Garbage after the good records, and a header cut short. */
	write_at(seg, 4 * rec, "garbage garbage garbage garbage!", 32);
	st = reopen(dir, &sp);
	assert_int_equal(st.records, 4);
	assert_int_equal(st.corrupt_bytes, 32);
	assert_int_equal(truncate(seg, 3 * rec + 10), 0);
	assert_int_equal(reopen(dir, &sp).records, 3);
	for (unsigned i = 0; i < 3; i++) {
		expect_rec(sp, i, i + 1, 100);
		assert_int_equal(spool_pop(sp), 0);
	}
	assert_true(app(sp, 9, 100) > 5); /* the torn record's id is not reused */
	spool_free(sp);
}

static void test_bit_flip(void **state)
{
	const char *dir = *state;
	char seg[128];
	struct spool *sp = open_ok(dir, 0, 0, SPOOL_DROP_OLDEST);
	for (unsigned i = 0; i < 5; i++)
		app(sp, i, 100);
	spool_free(sp);
	count_segs(dir, seg, NULL);
	const uint64_t rec = SPOOL_HDR_SIZE + 100;
	flip_at(seg, 2 * rec + SPOOL_HDR_SIZE + 50); /* payload of the 3rd record */
	uint8_t file[5 * (SPOOL_HDR_SIZE + 100)];
	int fd = open(seg, O_RDONLY);
	assert_int_equal(read(fd, file, sizeof(file)), (ssize_t)sizeof(file));
	close(fd);
	struct spool_scan sc;
	assert_int_equal(spool_segment_scan(file, sizeof(file), 0, 1, &sc), 0);
	assert_int_equal(sc.stop, SPOOL_SCAN_BAD_PAYLOAD_CRC);
	assert_true(sc.records == 2 && sc.good_bytes == 2 * rec && sc.bad_bytes == 3 * rec);
	assert_true(sc.first_id == 1 && sc.last_id == 2);
	assert_true(sc.pending_records == 1 && sc.pending_off == rec);
	file[2 * rec + 5] ^= 1; /* length byte: the header CRC catches it first */
	spool_segment_scan(file, sizeof(file), 0, 0, &sc);
	assert_int_equal(sc.stop, SPOOL_SCAN_BAD_HEADER_CRC);
	assert_int_equal(spool_segment_scan(NULL, 0, 0, 0, &sc), 0);
	assert_true(sc.stop == SPOOL_SCAN_END && sc.records == 0);
	assert_int_equal(spool_segment_scan(NULL, 1, 0, 0, &sc), -EINVAL);
	sp = NULL;
	struct spool_stats st = reopen(dir, &sp);
	assert_int_equal(st.records, 2);
	assert_int_equal(st.corrupt_truncations, 1);
	assert_int_equal(st.corrupt_bytes, 3 * rec);
	spool_free(sp);
}

static void test_corrupt_after_open(void **state)
{
	const char *dir = *state;
	char seg[128];
	struct spool *sp = open_ok(dir, 0, 0, SPOOL_DROP_OLDEST);
	for (unsigned i = 0; i < 4; i++)
		app(sp, i, 100);
	count_segs(dir, seg, NULL);
	flip_at(seg, (SPOOL_HDR_SIZE + 100) + SPOOL_HDR_SIZE + 3);
	expect_rec(sp, 0, 1, 100);
	assert_int_equal(spool_pop(sp), 0);
	assert_int_equal(peek_rc(sp), -ENOENT);
	struct spool_stats st = stats(sp);
	assert_int_equal(st.records, 0);
	assert_int_equal(st.corrupt_truncations, 1);
	assert_int_equal(st.corrupt_bytes, 3 * (SPOOL_HDR_SIZE + 100));
	assert_true(app(sp, 5, 100) > 4);
	spool_free(sp);
}

static void test_garbage_files(void **state)
{
	const char *dir = *state;
	char p[128];
	uint8_t junk[3000];
	fill(junk, sizeof(junk), 7, sizeof(junk));
	const char *names[] = { "000000000003.seg", "000000000007.seg", "state", "x.seg" };
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		write_at(p, 0, junk, sizeof(junk) - i * 500);
	}
	snprintf(p, sizeof(p), "%s/000000000009.seg", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	struct spool *sp = open_ok(dir, 0, 0, SPOOL_DROP_OLDEST);
	struct spool_stats st = stats(sp);
	assert_true(st.records == 0 && st.corrupt_truncations == 2 && st.segments == 0);
	assert_int_equal(app(sp, 1, 0), 1);
	expect_rec(sp, 1, 1, 0);
	spool_free(sp);
	rmdir(p);
}

static void test_drop_oldest(void **state)
{
	const char *dir = *state;
	struct spool *sp = open_ok(dir, 16384, 4096, SPOOL_DROP_OLDEST);
	unsigned n = 200;
	for (unsigned i = 0; i < n; i++) {
		app(sp, i, 1000);
		assert_true(stats(sp).bytes <= 16384);
	}
	struct spool_stats st = stats(sp);
	assert_int_equal(st.dropped_oldest + st.records, n);
	assert_true(st.dropped_oldest > 0);
	assert_int_equal(st.dropped_newest, 0);
	assert_true(count_segs(dir, NULL, NULL) <= 4);
	unsigned first = n - (unsigned)st.records;
	for (unsigned i = first; i < n; i++) {
		expect_rec(sp, i, i + 1, 1000);
		assert_int_equal(spool_pop(sp), 0);
	}
	/* A peeked record dropped meanwhile: its ack is a no-op, not a pop of the successor. */
	app(sp, 0, 1000);
	expect_rec(sp, 0, n + 1, 1000);
	for (unsigned i = 1; i < 20; i++)
		app(sp, i, 1000);
	assert_int_equal(spool_ack(sp, n + 1), 0);
	assert_int_equal(stats(sp).consumed_total, n - first);
	spool_free(sp);
}

static void test_drop_newest(void **state)
{
	const char *dir = *state;
	struct spool *sp = open_ok(dir, 16384, 4096, SPOOL_DROP_NEWEST);
	uint8_t b[1000] = { 0 };
	unsigned ok = 0;
	int r;
	while ((r = spool_append(sp, b, sizeof(b), NULL)) == 0)
		ok++;
	assert_int_equal(r, -ENOSPC);
	assert_int_equal(spool_append(sp, b, sizeof(b), NULL), -ENOSPC);
	struct spool_stats st = stats(sp);
	assert_int_equal(st.dropped_newest, 2);
	assert_int_equal(st.records, ok);
	assert_int_equal(st.write_errors, 0);
	assert_true(st.bytes <= 16384 && st.bytes + sizeof(b) + SPOOL_HDR_SIZE > 16384);
	/* Consuming a whole segment frees room. */
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(spool_pop(sp), 0);
	assert_int_equal(spool_append(sp, b, sizeof(b), NULL), 0);
	assert_int_equal(spool_append(sp, b, 20000, NULL), -EMSGSIZE); /* never fits */
	assert_int_equal(spool_append(sp, b, (size_t)SPOOL_RECORD_MAX + 1, NULL), -EMSGSIZE);
	spool_free(sp);
	struct spool_opts bad = { .max_bytes = 8192, .segment_bytes = 16384 };
	assert_int_equal(spool_open(dir, &bad, &sp), -EINVAL);
}

static void test_roll_and_delete(void **state)
{
	const char *dir = *state;
	struct spool *sp = open_fs(dir, 1 << 20, 4096, SPOOL_DROP_OLDEST, SPOOL_FSYNC_ROLL);
	for (unsigned i = 0; i < 40; i++)
		app(sp, i, 1000);
	/* 4 records of 1024 bytes per 4096-byte segment. */
	assert_int_equal(count_segs(dir, NULL, NULL), 10);
	for (unsigned i = 0; i < 40; i++) {
		expect_rec(sp, i, i + 1, 1000);
		assert_int_equal(spool_pop(sp), 0);
		unsigned done = (i + 1) / 4 < 9 ? (i + 1) / 4 : 9; /* the active one stays */
		assert_int_equal(count_segs(dir, NULL, NULL), 10 - done);
	}
	char last[128];
	count_segs(dir, last, NULL);
	assert_int_equal(fsize(last), 0); /* the active segment is emptied in place */
	spool_free(sp);
	sp = open_ok(dir, 1 << 20, 4096, SPOOL_DROP_OLDEST);
	assert_int_equal(count_segs(dir, NULL, NULL), 0);
	/* A record larger than segment_bytes gets a segment of its own. */
	app(sp, 1, 6000);
	app(sp, 2, 10);
	assert_int_equal(count_segs(dir, NULL, NULL), 2);
	spool_free(sp);
}

/* Disk full for real: a 64 KiB tmpfs (needs CAP_SYS_ADMIN; skipped visibly otherwise). */
static void test_disk_full(void **state)
{
	const char *dir = *state;
	char mnt[128];
	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	assert_int_equal(mkdir(mnt, 0700), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") < 0) {
		fprintf(stderr, "SKIP test_disk_full: cannot mount tmpfs: %s\n", strerror(errno));
		rmdir(mnt);
		skip();
	}
	char sdir[160];
	snprintf(sdir, sizeof(sdir), "%s/sp", mnt);
	struct spool *sp = open_ok(sdir, 1 << 20, 16384, SPOOL_DROP_NEWEST);
	uint8_t b[4000];
	unsigned ok = 0;
	int r;
	while ((r = spool_append(sp, b, fill(b, sizeof(b), ok, 4000), NULL)) == 0)
		ok++;
	assert_int_equal(r, -ENOSPC);
	struct spool_stats st = stats(sp);
	assert_true(st.write_errors >= 1);
	assert_int_equal(st.dropped_newest, 0);
	assert_int_equal(st.records, ok);
	/* No partial record was left behind: files hold exactly the counted bytes. */
	off_t total;
	count_segs(sdir, NULL, &total);
	assert_int_equal(total, st.bytes);
	for (unsigned i = 0; i < 8; i++) {
		expect_rec(sp, i, i + 1, 4000);
		assert_int_equal(spool_pop(sp), 0);
	}
	assert_int_equal(spool_append(sp, b, fill(b, sizeof(b), ok, 4000), NULL), 0);
	st = reopen(sdir, &sp);
	assert_int_equal(st.corrupt_truncations, 0);
	assert_int_equal(st.records, ok - 8 + 1);
	for (unsigned i = 8; i < ok + 1; i++) {
		expect_rec(sp, i, i + 1, 4000);
		assert_int_equal(spool_pop(sp), 0);
	}
	spool_free(sp);
	rm_dir(sdir);
	assert_int_equal(umount(mnt), 0);
	rmdir(mnt);
}

#define THREAD_RECORDS 20000u

static void *producer(void *sp)
{
	uint8_t b[512];
	for (unsigned i = 0; i < THREAD_RECORDS; i++)
		if (spool_append(sp, b, fill(b, sizeof(b), i, 0), NULL) != 0)
			return (void *)1;
	return NULL;
}

static void test_threads(void **state)
{
	const char *dir = *state;
	struct spool *sp = open_ok(dir, 64 << 20, 65536, SPOOL_DROP_NEWEST);
	pthread_t th;
	pthread_create(&th, NULL, producer, sp);
	unsigned got = 0;
	uint8_t want[512];
	while (got < THREAD_RECORDS) {
		const void *buf;
		size_t len;
		uint64_t id;
		if (spool_peek(sp, &buf, &len, &id) == -ENOENT) {
			sched_yield();
			continue;
		}
		assert_int_equal(id, got + 1);
		assert_int_equal(len, fill(want, sizeof(want), got, 0));
		assert_memory_equal(buf, want, len);
		assert_int_equal(spool_ack(sp, id), 0);
		got++;
	}
	void *res;
	pthread_join(th, &res);
	assert_null(res);
	spool_free(sp);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Throughput figure (printed, not asserted): 4 KiB records, append a burst, then pop it. */
static void test_throughput(void **state)
{
	const char *dir = *state;
	struct spool *sp = open_ok(dir, 256 << 20, 0, SPOOL_DROP_NEWEST);
	static uint8_t b[4096];
	unsigned burst = 1024, rounds = 32;
	double t0 = now_s();
	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < burst; i++)
			assert_int_equal(spool_append(sp, b, sizeof(b), NULL), 0);
		for (unsigned i = 0; i < burst; i++)
			assert_true(peek_rc(sp) == 0 && spool_pop(sp) == 0);
	}
	double dt = now_s() - t0, mb = (double)burst * rounds * sizeof(b) / 1e6;
	fprintf(stderr, "spool throughput: %.0f MB/s append+pop of 4 KiB records (%.0f rec/s)\n",
		mb / dt, burst * rounds / dt);
	spool_free(sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ids_monotonic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bit_flip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_after_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_newest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roll_and_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throughput, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
