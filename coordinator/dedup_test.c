/* Tests of the persistent (agent, seq) deduplication: verdicts, out-of-order accepts, low
 * water, bounds, in-progress windows, recovery from journal and snapshot, a torn journal. */
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

#include "dedup.h"

struct env {
	char dir[64], journal[128], snap[128];
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/ms-dedup-test-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->journal, sizeof(e->journal), "%s/journal", e->dir);
	snprintf(e->snap, sizeof(e->snap), "%s/snap", e->dir);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	unlink(e->journal);
	unlink(e->snap);
	rmdir(e->dir);
	free(e);
	return 0;
}

static struct dedup *open_d(struct env *e, uint64_t compact, struct dedup_recovery *rec)
{
	struct dedup_opts o = { .journal_path = e->journal, .snapshot_path = e->snap, .compact_bytes = compact,
				.max_above = 64, .max_agents = 4 };
	struct dedup *d;
	assert_int_equal(dedup_open(&o, &d, rec), 0);
	return d;
}

static void accept(struct dedup *d, const char *a, uint64_t seq)
{
	assert_int_equal(dedup_begin(d, a, seq), DEDUP_NEW);
	assert_int_equal(dedup_commit(d, a, seq, seq * 10, 1), 0);
}

static void test_verdicts_and_order(void **state)
{
	struct env *e = *state;
	struct dedup *d = open_d(e, 0, NULL);
	assert_int_equal(dedup_low_water(d, "a", 100), 0);
	accept(d, "a", 100);
	accept(d, "a", 102); /* out of order */
	assert_int_equal(dedup_begin(d, "a", 100), DEDUP_DUPLICATE);
	assert_int_equal(dedup_begin(d, "a", 102), DEDUP_DUPLICATE);
	assert_int_equal(dedup_begin(d, "a", 99), DEDUP_DUPLICATE); /* below the low water */
	uint64_t hwm;
	uint32_t above;
	assert_int_equal(dedup_agent_state(d, "a", &hwm, &above), 0);
	assert_int_equal(hwm, 100);
	assert_int_equal(above, 1);
	accept(d, "a", 101);
	assert_int_equal(dedup_agent_state(d, "a", &hwm, &above), 0);
	assert_int_equal(hwm, 102);
	assert_int_equal(above, 0);
	/* in progress: a second copy is told to retry; abort frees it */
	assert_int_equal(dedup_begin(d, "a", 103), DEDUP_NEW);
	assert_int_equal(dedup_begin(d, "a", 103), DEDUP_BUSY);
	dedup_abort(d, "a", 103);
	assert_int_equal(dedup_begin(d, "a", 103), DEDUP_NEW);
	dedup_abort(d, "a", 103);
	assert_int_equal(dedup_max_seq(d, "a"), 102);
	assert_int_equal(dedup_max_seq(d, "zz"), 0);
	/* other agents are independent */
	assert_int_equal(dedup_begin(d, "b", 100), DEDUP_NEW);
	dedup_abort(d, "b", 100);
	dedup_free(d);
}

static void test_bounds(void **state)
{
	struct env *e = *state;
	struct dedup *d = open_d(e, 0, NULL);
	dedup_low_water(d, "a", 1);
	for (uint64_t s = 2; s < 2 + 64; s++) /* seq 1 missing: all of these stay in the set */
		accept(d, "a", s);
	assert_int_equal(dedup_begin(d, "a", 1000), -ENOSPC);
	/* the missing one is still welcome and collapses the set */
	accept(d, "a", 1);
	uint64_t hwm;
	uint32_t above;
	assert_int_equal(dedup_agent_state(d, "a", &hwm, &above), 0);
	assert_int_equal(hwm, 65);
	assert_int_equal(above, 0);
	/* a low water past a gap frees room too */
	accept(d, "a", 70);
	dedup_low_water(d, "a", 71);
	assert_int_equal(dedup_agent_state(d, "a", &hwm, &above), 0);
	assert_int_equal(hwm, 70);
	/* max_agents = 4 */
	assert_int_equal(dedup_begin(d, "b", 1), DEDUP_NEW);
	assert_int_equal(dedup_begin(d, "c", 1), DEDUP_NEW);
	assert_int_equal(dedup_begin(d, "d", 1), DEDUP_NEW);
	assert_int_equal(dedup_begin(d, "e", 1), -ENOSPC);
	assert_int_equal(dedup_begin(d, "bad id", 1), -ENOSPC);
	dedup_free(d);
}

static void test_recovery_journal(void **state)
{
	struct env *e = *state;
	struct dedup *d = open_d(e, 0, NULL);
	dedup_low_water(d, "a", 10);
	accept(d, "a", 10);
	accept(d, "a", 12);
	accept(d, "b", 5);
	dedup_free(d);
	/* a torn last line (host crash mid-write) */
	FILE *f = fopen(e->journal, "a");
	fputs("{\"agent\":\"a\",\"se", f);
	fclose(f);
	struct dedup_recovery rec;
	d = open_d(e, 0, &rec);
	assert_int_equal(rec.agents, 2);
	assert_int_equal(rec.accepts, 3);
	assert_int_equal(rec.lows, 1);
	assert_true(rec.torn_bytes > 0);
	assert_int_equal(dedup_begin(d, "a", 10), DEDUP_DUPLICATE);
	assert_int_equal(dedup_begin(d, "a", 12), DEDUP_DUPLICATE);
	assert_int_equal(dedup_begin(d, "a", 9), DEDUP_DUPLICATE);
	assert_int_equal(dedup_begin(d, "a", 11), DEDUP_NEW);
	dedup_abort(d, "a", 11);
	assert_int_equal(dedup_begin(d, "b", 5), DEDUP_DUPLICATE);
	assert_int_equal(dedup_max_seq(d, "a"), 12);
	dedup_free(d);
	/* garbage in the middle is skipped and counted */
	f = fopen(e->journal, "a");
	fputs("not json\n{\"agent\":\"a\",\"seq\":13,\"samples\":1,\"rows\":1}\n", f);
	fclose(f);
	d = open_d(e, 0, &rec);
	assert_int_equal(rec.bad_lines, 1);
	assert_int_equal(dedup_begin(d, "a", 13), DEDUP_DUPLICATE);
	dedup_free(d);
}

static void test_compaction(void **state)
{
	struct env *e = *state;
	struct dedup *d = open_d(e, 256, NULL); /* compacts every few lines */
	dedup_low_water(d, "a", 1);
	for (uint64_t s = 1; s <= 50; s++)
		if (s != 20)
			accept(d, "a", s);
	dedup_free(d);
	struct dedup_recovery rec;
	d = open_d(e, 256, &rec);
	for (uint64_t s = 1; s <= 50; s++)
		assert_int_equal(dedup_begin(d, "a", s), s == 20 ? DEDUP_NEW : DEDUP_DUPLICATE);
	dedup_abort(d, "a", 20);
	assert_int_equal(dedup_max_seq(d, "a"), 50);
	uint64_t hwm;
	uint32_t above;
	assert_int_equal(dedup_agent_state(d, "a", &hwm, &above), 0);
	assert_int_equal(hwm, 19);
	assert_int_equal(above, 30);
	dedup_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_verdicts_and_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
