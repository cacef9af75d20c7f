/* rowbinary_test: byte-exact encodings of every type the writer uses, the sticky size bound and
 * the reader's bounds checks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "rowbinary.h"

static void expect_bytes(const struct rowbinary *rb, const void *want, size_t n)
{
	assert_int_equal(rowbinary_error(rb), 0);
	assert_int_equal(rb->len, n);
	assert_memory_equal(rb->buf, want, n);
}

static void test_integers_little_endian(void **state)
{
	struct rowbinary rb;
	rowbinary_init(&rb, 1024);
	rowbinary_u8(&rb, 0xab);
	rowbinary_u16(&rb, 0x1234);
	rowbinary_u32(&rb, 0xdeadbeef);
	rowbinary_u64(&rb, 0x0102030405060708ULL);
	rowbinary_i8(&rb, -2);
	rowbinary_i16(&rb, -1);
	rowbinary_i64(&rb, -3);
	const uint8_t want[] = { 0xab, 0x34, 0x12, 0xef, 0xbe, 0xad, 0xde, 8, 7, 6, 5, 4, 3, 2, 1, 0xfe, 0xff, 0xff,
				 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	expect_bytes(&rb, want, sizeof(want));
	rowbinary_release(&rb);
}

static void test_float_datetime(void **state)
{
	struct rowbinary rb;
	rowbinary_init(&rb, 1024);
	rowbinary_f64(&rb, 1.5); /* 0x3ff8000000000000 */
	rowbinary_datetime(&rb, 1700000000ULL);
	rowbinary_datetime(&rb, 1ULL << 40); /* saturates */
	const uint8_t want[] = { 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0x00, 0xf1, 0x53, 0x65, 0xff, 0xff, 0xff, 0xff };
	expect_bytes(&rb, want, sizeof(want));
	rowbinary_release(&rb);
}

static void test_strings_and_leb128(void **state)
{
	struct rowbinary rb;
	rowbinary_init(&rb, 1024);
	rowbinary_string(&rb, "ab", 2);
	rowbinary_cstring(&rb, "hello", 3); /* bounded: "hel" */
	rowbinary_cstring(&rb, NULL, 10);   /* empty */
	rowbinary_uleb128(&rb, 300);        /* 0xac 0x02 */
	rowbinary_uleb128(&rb, 127);
	rowbinary_fixed(&rb, "xyz", 3, 5);  /* zero padded */
	rowbinary_fixed(&rb, "abcdef", 6, 2); /* cut */
	const uint8_t want[] = { 2, 'a', 'b', 3, 'h', 'e', 'l', 0, 0xac, 0x02, 0x7f, 'x', 'y', 'z', 0, 0, 'a', 'b' };
	expect_bytes(&rb, want, sizeof(want));

	struct rowbinary big;
	rowbinary_init(&big, 1 << 20);
	char s[200];
	memset(s, 'q', sizeof(s));
	rowbinary_string(&big, s, sizeof(s));
	assert_int_equal(big.len, 2 + sizeof(s));
	assert_int_equal(big.buf[0], 0xc8);
	assert_int_equal(big.buf[1], 0x01);
	rowbinary_release(&big);
	rowbinary_release(&rb);
}

static void test_bound_is_sticky(void **state)
{
	struct rowbinary rb;
	rowbinary_init(&rb, 10);
	rowbinary_u64(&rb, 1);
	assert_int_equal(rowbinary_error(&rb), 0);
	rowbinary_u32(&rb, 2); /* 12 > 10 */
	assert_int_equal(rowbinary_error(&rb), -ENOSPC);
	rowbinary_u8(&rb, 3); /* would fit, but the error is sticky */
	assert_int_equal(rb.len, 8);
	assert_int_equal(rowbinary_error(&rb), -ENOSPC);
	rowbinary_reset(&rb);
	assert_int_equal(rowbinary_error(&rb), 0);
	rowbinary_u8(&rb, 3);
	assert_int_equal(rb.len, 1);
	rowbinary_release(&rb);
}

static void test_growth_keeps_content(void **state)
{
	struct rowbinary rb;
	rowbinary_init(&rb, 1 << 24);
	for (uint32_t i = 0; i < 100000; i++)
		rowbinary_u32(&rb, i);
	assert_int_equal(rowbinary_error(&rb), 0);
	struct rowbinary_reader r;
	rowbinary_reader_init(&r, rb.buf, rb.len);
	for (uint32_t i = 0; i < 100000; i++)
		if (rowbinary_get_u32(&r) != i)
			fail_msg("value %u", i);
	assert_int_equal(rowbinary_reader_left(&r), 0);
	rowbinary_release(&rb);
}

static void test_reader_round_trip(void **state)
{
	struct rowbinary rb;
	rowbinary_init(&rb, 1024);
	rowbinary_u8(&rb, 7);
	rowbinary_u16(&rb, 513);
	rowbinary_u64(&rb, UINT64_MAX);
	rowbinary_f64(&rb, -0.25);
	rowbinary_uleb128(&rb, UINT64_MAX);
	rowbinary_string(&rb, "table", 5);
	struct rowbinary_reader r;
	rowbinary_reader_init(&r, rb.buf, rb.len);
	assert_int_equal(rowbinary_get_u8(&r), 7);
	assert_int_equal(rowbinary_get_u16(&r), 513);
	assert_true(rowbinary_get_u64(&r) == UINT64_MAX);
	assert_true(rowbinary_get_f64(&r) == -0.25);
	assert_true(rowbinary_get_uleb128(&r) == UINT64_MAX);
	size_t n;
	const char *s = rowbinary_get_string(&r, 64, &n);
	assert_int_equal(n, 5);
	assert_memory_equal(s, "table", 5);
	assert_int_equal(rowbinary_reader_error(&r), 0);
	assert_int_equal(rowbinary_reader_left(&r), 0);
	rowbinary_release(&rb);
}

static void test_reader_rejects_truncation_and_overlong(void **state)
{
	const uint8_t short_u32[] = { 1, 2, 3 };
	struct rowbinary_reader r;
	rowbinary_reader_init(&r, short_u32, sizeof(short_u32));
	assert_int_equal(rowbinary_get_u32(&r), 0);
	assert_int_equal(rowbinary_reader_error(&r), -EBADMSG);
	assert_int_equal(rowbinary_get_u8(&r), 0); /* sticky */

	const uint8_t long_str[] = { 10, 'a', 'b' }; /* claims 10, has 2 */
	size_t n = 99;
	rowbinary_reader_init(&r, long_str, sizeof(long_str));
	rowbinary_get_string(&r, 64, &n);
	assert_int_equal(n, 0);
	assert_int_equal(rowbinary_reader_error(&r), -EBADMSG);

	const uint8_t over_max[] = { 3, 'a', 'b', 'c' };
	rowbinary_reader_init(&r, over_max, sizeof(over_max));
	rowbinary_get_string(&r, 2, &n);
	assert_int_equal(rowbinary_reader_error(&r), -EBADMSG);

	const uint8_t leb_too_long[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f };
	rowbinary_reader_init(&r, leb_too_long, sizeof(leb_too_long));
	rowbinary_get_uleb128(&r);
	assert_int_equal(rowbinary_reader_error(&r), -EBADMSG);

	const uint8_t leb_unterminated[] = { 0x80, 0x80 };
	rowbinary_reader_init(&r, leb_unterminated, sizeof(leb_unterminated));
	rowbinary_get_uleb128(&r);
	assert_int_equal(rowbinary_reader_error(&r), -EBADMSG);

	rowbinary_reader_init(&r, NULL, 5);
	assert_null(rowbinary_get_bytes(&r, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integers_little_endian),
		cmocka_unit_test(test_float_datetime),
		cmocka_unit_test(test_strings_and_leb128),
		cmocka_unit_test(test_bound_is_sticky),
		cmocka_unit_test(test_growth_keeps_content),
		cmocka_unit_test(test_reader_round_trip),
		cmocka_unit_test(test_reader_rejects_truncation_and_overlong),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
