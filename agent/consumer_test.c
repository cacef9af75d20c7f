/* consumer: ring records are validated before use; wrong sizes and headers are rejected. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "consumer.h"
#include "synth.h"

static void good(struct ms_sample *s)
{
	struct synth *sy;
	struct synth_opts o = { .nflows = 4, .seed = 7, .nevents = 1, .unattributed_pct = 0 };
	assert_int_equal(synth_new(&o, &sy), 0);
	synth_next(sy, s);
	synth_free(sy);
}

static void test_valid(void **state)
{
	struct ms_sample s, out;
	good(&s);
	assert_int_equal(consumer_validate(&s, sizeof(s), &out), 0);
	assert_int_equal(out.flow_id, s.flow_id);
}

static void test_wrong_sizes(void **state)
{
	uint8_t buf[sizeof(struct ms_sample) + MS_LBR_MAX * sizeof(struct ms_branch) + 8];
	struct ms_sample s, out;
	good(&s);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &s, sizeof(s));
	assert_int_equal(consumer_validate(buf, sizeof(s) - 1, &out), -EBADMSG);
	assert_int_equal(consumer_validate(buf, 0, &out), -EBADMSG);
	assert_int_equal(consumer_validate(buf, sizeof(s) + 8, &out), -EBADMSG);
	/* the LBR tail size is accepted with a plausible count */
	((struct ms_sample *)buf)->lbr_nr = 3;
	assert_int_equal(consumer_validate(buf, sizeof(s) + MS_LBR_MAX * sizeof(struct ms_branch), &out), 0);
	/* but a count without the tail, or beyond the maximum, is not */
	assert_int_equal(consumer_validate(buf, sizeof(s), &out), -EBADMSG);
	((struct ms_sample *)buf)->lbr_nr = MS_LBR_MAX + 1;
	assert_int_equal(consumer_validate(buf, sizeof(s) + MS_LBR_MAX * sizeof(struct ms_branch), &out), -EBADMSG);
}

static void test_bad_header(void **state)
{
	struct ms_sample s, out;
	good(&s);
	s.magic = 0;
	assert_int_equal(consumer_validate(&s, sizeof(s), &out), -EBADMSG);
	good(&s);
	s.version = 99;
	assert_int_equal(consumer_validate(&s, sizeof(s), &out), -EBADMSG);
	good(&s);
	s.flow.family = 5;
	assert_int_equal(consumer_validate(&s, sizeof(s), &out), -EBADMSG);
	good(&s);
	s.attr_rule = 9;
	assert_int_equal(consumer_validate(&s, sizeof(s), &out), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_wrong_sizes),
		cmocka_unit_test(test_bad_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
