/* httpparse tests: complete, incomplete and refused heads, bounds, field lookups. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpparse.h"

static int parse(const char *text, struct httpparse_req *r)
{
	return httpparse_head(text, strlen(text), 0, 8192, r);
}

static void test_complete(void **state)
{
	struct httpparse_req r;
	const char *t = "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Pad:  v  a l \t\r\nEmpty:\r\n\r\nBODY";
	assert_int_equal(parse(t, &r), 0);
	assert_string_equal(r.method, "GET");
	assert_int_equal(r.minor, 1);
	assert_int_equal(r.target_len, 6);
	assert_memory_equal(t + r.target_off, "/a?b=1", 6);
	assert_int_equal(r.nfields, 3);
	assert_int_equal(r.head_len, strlen(t) - 4);
	size_t n;
	const char *v = httpparse_field(&r, t, "x-pad", &n);
	assert_non_null(v);
	assert_int_equal(n, 6);
	assert_memory_equal(v, "v  a l", 6);
	assert_non_null(httpparse_field(&r, t, "EMPTY", &n));
	assert_int_equal(n, 0);
	assert_null(httpparse_field(&r, t, "Content-Length", &n));
	assert_int_equal(httpparse_count(&r, t, "host"), 1);

	/* LF-only lines, HTTP/1.0 and blank lines before the request line */
	t = "\r\n\nPOST /p HTTP/1.0\nContent-Length: 2\nContent-Length: 2\n\nhi";
	assert_int_equal(parse(t, &r), 0);
	assert_int_equal(r.minor, 0);
	assert_int_equal(r.skipped, 3);
	assert_int_equal(httpparse_count(&r, t, "content-length"), 2);
	assert_int_equal(r.head_len, strlen(t) - 2);
	(void)state;
}

static void test_incomplete(void **state)
{
	struct httpparse_req r;
	const char *t = "GET /a%41 HTTP/1.1\r\nHost: x\r\n\r\n";
	for (size_t k = 0; k < strlen(t); k++)
		assert_int_equal(httpparse_head(t, k, 0, 8192, &r), -EAGAIN);
	assert_int_equal(httpparse_head(t, strlen(t), 0, 8192, &r), 0);
	/* the buffer is not NUL-terminated: nothing past len is read (ASan checks the copy) */
	char *exact = malloc(8);
	memcpy(exact, "GET /a%4", 8);
	assert_int_equal(httpparse_head(exact, 8, 0, 8192, &r), -EAGAIN);
	free(exact);
	(void)state;
}

static void test_refused(void **state)
{
	struct httpparse_req r;
	assert_int_equal(parse("GET /hello HTTP/2.0\r\n\r\n", &r), 505);
	assert_int_equal(parse("GET /hello HTTP/2\r\n\r\n", &r), 505);
	assert_int_equal(parse("GET /hello\r\n\r\n", &r), 505);
	assert_int_equal(parse("GET /hello HTTP/1.1x\r\n\r\n", &r), 400);
	assert_int_equal(parse("GET /hello http/1.1\r\n\r\n", &r), 400);
	assert_int_equal(parse("VERYLONGMETHODNAME / HTTP/1.1\r\n\r\n", &r), 501);
	assert_int_equal(parse("G(T / HTTP/1.1\r\n\r\n", &r), 400);
	assert_int_equal(parse("GET  / HTTP/1.1\r\n\r\n", &r), 400);
	assert_int_equal(parse("GET /a\x7f HTTP/1.1\r\n\r\n", &r), 400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nX: 1\r\n folded\r\n\r\n", &r), 400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nX : 1\r\n\r\n", &r), 400);
	assert_int_equal(parse("GET / HTTP/1.1\r\n: 1\r\n\r\n", &r), 400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nNoColon\r\n\r\n", &r), 400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", &r), 400);
	assert_int_equal(parse("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", &r), 400);
	/* refused before the line is complete: what came can no longer be a request line */
	assert_int_equal(httpparse_head("\x16\x03\x01", 3, 0, 8192, &r), 400);
	assert_int_equal(httpparse_head("GET /a\tb", 8, 0, 8192, &r), 400);
	assert_int_equal(httpparse_head("GETGETGETGETGETGET", 18, 0, 8192, &r), 501);
	assert_int_equal(httpparse_head("GET /a\r", 7, 0, 8192, &r), -EAGAIN);
	const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
	assert_int_equal(httpparse_head(nul, sizeof(nul) - 1, 0, 8192, &r), 400);
	(void)state;
}

static void test_bounds(void **state)
{
	struct httpparse_req r;
	char *big = malloc(HTTPPARSE_MAX_HEAD + 100);
	/* target over max_target: 414, even before the line is complete */
	memset(big, 'a', HTTPPARSE_MAX_HEAD + 100);
	memcpy(big, "GET /", 5);
	assert_int_equal(httpparse_head(big, 200, 0, 100, &r), 414);
	assert_int_equal(httpparse_head(big, 50, 0, 100, &r), -EAGAIN);
	memcpy(big + 150, " HTTP/1.1\r\n\r\n", 13);
	assert_int_equal(httpparse_head(big, 163, 0, 100, &r), 414);
	assert_int_equal(httpparse_head(big, 163, 0, 200, &r), 0);
	/* head over max_head: 431 */
	assert_int_equal(httpparse_head(big, 163, 64, 200, &r), 431);
	memset(big, 'a', HTTPPARSE_MAX_HEAD + 100);
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	assert_int_equal(httpparse_head(big, HTTPPARSE_MAX_HEAD + 100, 0, 8192, &r), 431);
	assert_int_equal(httpparse_head(big, HTTPPARSE_MAX_HEAD - 1, 0, 8192, &r), -EAGAIN);
	/* too many fields: 431 */
	size_t n = (size_t)sprintf(big, "GET / HTTP/1.1\r\n");
	for (int i = 0; i <= HTTPPARSE_MAX_HEADERS; i++)
		n += (size_t)sprintf(big + n, "X%d: %d\r\n", i, i);
	n += (size_t)sprintf(big + n, "\r\n");
	assert_int_equal(httpparse_head(big, n, 0, 8192, &r), 431);
	free(big);
	(void)state;
}

static void test_tokens(void **state)
{
	const char *v = "keep-alive, Close ,x";
	assert_true(httpparse_has_token(v, strlen(v), "close"));
	assert_true(httpparse_has_token(v, strlen(v), "KEEP-ALIVE"));
	assert_true(httpparse_has_token(v, strlen(v), "x"));
	assert_false(httpparse_has_token(v, strlen(v), "clos"));
	assert_false(httpparse_has_token(v, 4, "keep-alive"));
	assert_false(httpparse_has_token("", 0, "close"));
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_complete),
		cmocka_unit_test(test_incomplete),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_tokens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
