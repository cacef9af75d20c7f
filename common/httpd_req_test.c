/* httpd_req tests: query lookup, path decoding, URI splitting, auth, body-length rules, error
 * bodies and response formatting (pure functions, no server). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "httpd_req.h"

static void test_helpers(void **state)
{
	char b[16];
	assert_int_equal(httpd_query_get("a=1&b=x%20y+z&c&d=", "b", b, sizeof(b)), 5);
	assert_string_equal(b, "x y z");
	assert_int_equal(httpd_query_get("a=1&b=2", "a", b, sizeof(b)), 1);
	assert_string_equal(b, "1");
	assert_int_equal(httpd_query_get("a=1&c&d=", "c", b, sizeof(b)), 0);
	assert_string_equal(b, "");
	assert_int_equal(httpd_query_get("a=1&d=", "d", b, sizeof(b)), 0);
	assert_int_equal(httpd_query_get("a=1", "b", b, sizeof(b)), -ENOENT);
	assert_int_equal(httpd_query_get("", "a", b, sizeof(b)), -ENOENT);
	assert_int_equal(httpd_query_get("ab=1", "a", b, sizeof(b)), -ENOENT);
	assert_int_equal(httpd_query_get("a%62=7", "ab", b, sizeof(b)), 1);
	assert_int_equal(httpd_query_get("a=%4", "a", b, sizeof(b)), -EINVAL);
	assert_int_equal(httpd_query_get("a=%00", "a", b, sizeof(b)), -EINVAL);
	assert_int_equal(httpd_query_get("a=0123456789abcdef", "a", b, sizeof(b)), -ENOSPC);
	assert_int_equal(httpd_query_get("a=%zz&a=2", "a", b, sizeof(b)), -EINVAL);

	assert_int_equal(httpd_path_decode("/a%2Fb", 6, b, sizeof(b)), 4);
	assert_string_equal(b, "/a/b");
	assert_int_equal(httpd_path_decode("/a+b", 4, b, sizeof(b)), 4);
	assert_string_equal(b, "/a+b");
	assert_int_equal(httpd_path_decode("/%", 2, b, sizeof(b)), -EINVAL);
	assert_int_equal(httpd_path_decode("/abc", 4, b, 4), -ENOSPC);

	(void)state;
}

static void test_split_uri(void **state)
{
	char *path, *query;
	assert_int_equal(httpd_req_split_uri("/a%20b?x=1#frag", &path, &query), 0);
	assert_string_equal(path, "/a b");
	assert_string_equal(query, "x=1");
	free(path);
	free(query);
	assert_int_equal(httpd_req_split_uri("http://host:1/p?q", &path, &query), 0);
	assert_string_equal(path, "/p");
	assert_string_equal(query, "q");
	free(path);
	free(query);
	assert_int_equal(httpd_req_split_uri("/a%4", &path, &query), 400);
	assert_int_equal(httpd_req_split_uri("/%41%", &path, &query), 400);
	assert_int_equal(httpd_req_split_uri("/%00", &path, &query), 400);
	assert_int_equal(httpd_req_split_uri("*", &path, &query), 404);
	assert_int_equal(httpd_req_split_uri("?x", &path, &query), 400);
	char *long_uri = malloc(HTTPD_MAX_URI + 2);
	memset(long_uri, 'a', HTTPD_MAX_URI + 1);
	long_uri[0] = '/';
	long_uri[HTTPD_MAX_URI + 1] = '\0';
	assert_int_equal(httpd_req_split_uri(long_uri, &path, &query), 414);
	free(long_uri);
	(void)state;
}

static void test_auth_and_length(void **state)
{
	size_t n;
	assert_true(httpd_req_auth_ok("tok", "Bearer tok"));
	assert_true(httpd_req_auth_ok("tok", "bearer   tok"));
	assert_false(httpd_req_auth_ok("tok", "Bearer tok2"));
	assert_false(httpd_req_auth_ok("tok", NULL));
	assert_int_equal(httpd_req_body_length(NULL, NULL, 10, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(httpd_req_body_length("10", NULL, 10, &n), 0);
	assert_int_equal(n, 10);
	assert_int_equal(httpd_req_body_length("11", NULL, 10, &n), 413);
	assert_int_equal(httpd_req_body_length("-1", NULL, 10, &n), 400);
	assert_int_equal(httpd_req_body_length("", NULL, 10, &n), 400);
	assert_int_equal(httpd_req_body_length("1", "chunked", 10, &n), 411);
	(void)state;
}

static void test_format(void **state)
{
	char *buf, *body;
	size_t len;
	assert_int_equal(httpd_req_error_body(404, "no \"such\"", &body, &len), 0);
	assert_string_equal(body, "{\"error\":\"Not Found\",\"reason\":\"no \\\"such\\\"\"}");
	struct httpd_req_resp r = { .status = 404, .server_name = "ms/1", .extra_name = "Allow",
				    .extra_value = "GET", .connection = "close", .body = body,
				    .body_len = len };
	assert_int_equal(httpd_req_format(&r, &buf, &len), 0);
	assert_non_null(strstr(buf, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
				    "Server: ms/1\r\nAllow: GET\r\nContent-Length: 44\r\n"
				    "Connection: close\r\n\r\n{\"error\""));
	free(buf);
	r.head_only = true; /* HEAD: the length of the body, not the body */
	assert_int_equal(httpd_req_format(&r, &buf, &len), 0);
	assert_non_null(strstr(buf, "Content-Length: 44\r\n"));
	assert_int_equal(len, strlen(buf) - strlen(strstr(buf, "\r\n\r\n")) + 4);
	free(buf);
	free(body);
	r = (struct httpd_req_resp){ .status = 204 };
	assert_int_equal(httpd_req_format(&r, &buf, &len), 0);
	assert_null(strstr(buf, "Content-Length"));
	free(buf);
	r = (struct httpd_req_resp){ .status = 200, .content_type = "text/plain\r\nX: 1" };
	assert_int_equal(httpd_req_format(&r, &buf, &len), -EINVAL);
	r = (struct httpd_req_resp){ .status = 42 };
	assert_int_equal(httpd_req_format(&r, &buf, &len), -EINVAL);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_split_uri),
		cmocka_unit_test(test_auth_and_length),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
