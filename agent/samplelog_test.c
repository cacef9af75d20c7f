/* samplelog: header and record layout, every field carried, the byte bound, bad arguments. */
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

#include "samplelog.h"

static char path[64];

static int setup(void **state)
{
	snprintf(path, sizeof(path), "/tmp/ms-samplelog-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	return 0;
}

static void mk(struct ms_sample *s, uint64_t i)
{
	memset(s, 0, sizeof(*s));
	s->ts_ns = 1000 + i;
	s->flow_id = i ? 0xabc0 + i : 0;
	s->ip = 0x400000 + i;
	s->addr = 0x7000 + i;
	s->ctx_age_ns = 77 + i;
	s->period = 1000;
	s->cpu = (uint32_t)(i & 1);
	s->pid = 42;
	s->tid = 43 + (uint32_t)i;
	s->event = 3;
	s->attr_rule = i ? MS_ATTR_THREAD : MS_ATTR_NONE;
	s->user_mode = 1;
}

static long file_size(FILE *f)
{
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	return n;
}

static void test_roundtrip(void **state)
{
	struct samplelog *sl;
	assert_int_equal(samplelog_open(path, 1 << 20, &sl), 0);
	struct ms_sample s;
	for (uint64_t i = 0; i < 10; i++) {
		mk(&s, i);
		samplelog_write(sl, &s);
	}
	assert_int_equal(samplelog_written(sl), 10);
	assert_int_equal(samplelog_dropped(sl), 0);
	assert_null(samplelog_close(sl));

	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(file_size(f), 16 + 10 * 64);
	struct samplelog_header h;
	assert_int_equal(fread(&h, sizeof(h), 1, f), 1);
	assert_memory_equal(h.magic, SAMPLELOG_MAGIC, 8);
	assert_int_equal(h.rec_size, 64);
	assert_int_equal(h.version, SAMPLELOG_VERSION);
	for (uint64_t i = 0; i < 10; i++) {
		struct samplelog_rec r;
		assert_int_equal(fread(&r, sizeof(r), 1, f), 1);
		mk(&s, i);
		assert_int_equal(r.ts_ns, s.ts_ns);
		assert_int_equal(r.flow_id, s.flow_id);
		assert_int_equal(r.ip, s.ip);
		assert_int_equal(r.addr, s.addr);
		assert_int_equal(r.ctx_age_ns, s.ctx_age_ns);
		assert_int_equal(r.period, s.period);
		assert_int_equal(r.cpu, s.cpu);
		assert_int_equal(r.pid, s.pid);
		assert_int_equal(r.tid, s.tid);
		assert_int_equal(r.event, s.event);
		assert_int_equal(r.attr_rule, s.attr_rule);
		assert_int_equal(r.user_mode, 1);
	}
	fclose(f);
}

static void test_bound(void **state)
{
	struct samplelog *sl;
	assert_int_equal(samplelog_open(path, 4096, &sl), 0);
	struct ms_sample s;
	mk(&s, 1);
	for (int i = 0; i < 100; i++)
		samplelog_write(sl, &s);
	/* (4096 - 16) / 64 = 63 records fit */
	assert_int_equal(samplelog_written(sl), 63);
	assert_int_equal(samplelog_dropped(sl), 37);
	samplelog_close(sl);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_true(file_size(f) <= 4096);
	fclose(f);
}

static void test_bad_args(void **state)
{
	struct samplelog *sl = NULL;
	assert_int_equal(samplelog_open(path, 100, &sl), -EINVAL);
	assert_int_equal(samplelog_open("", 1 << 20, &sl), -EINVAL);
	assert_int_equal(samplelog_open("/nonexistent-dir/x", 1 << 20, &sl), -ENOENT);
	assert_null(sl);
	assert_null(samplelog_close(NULL));
	assert_int_equal(samplelog_written(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
