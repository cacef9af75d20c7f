/* httpd_metrics: two real servers on loopback (one with a token) answer a 200, a 404 and a
 * 401; the rendered text has each family once, each server's line, and those counts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd_metrics.h"

static void ok(void *arg, struct httpd_call *call)
{
	(void)arg;
	httpd_call_reply(call, 200, "text/plain", "ok", 2);
}

/* One request on a fresh connection; returns the status code. */
static int get(uint16_t port, const char *path, const char *auth)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	char req[256], resp[512] = "";
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n%s%s%sConnection: close\r\n\r\n", path,
			 auth ? "Authorization: Bearer " : "", auth ? auth : "", auth ? "\r\n" : "");
	assert_int_equal(write(fd, req, (size_t)n), n);
	size_t got = 0;
	ssize_t r;
	while (got < sizeof(resp) - 1 && (r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
		got += (size_t)r;
	close(fd);
	int code = 0;
	assert_int_equal(sscanf(resp, "HTTP/1.1 %d", &code), 1);
	return code;
}

static int count(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_two_servers(void **state)
{
	(void)state;
	struct httpd *open_srv, *tok_srv;
	struct httpd_opts oo = { 0 }, to = { .bearer_token = "s3cret" };
	assert_int_equal(httpd_new("127.0.0.1", 0, &oo, &open_srv), 0);
	assert_int_equal(httpd_new("127.0.0.1", 0, &to, &tok_srv), 0);
	assert_int_equal(httpd_route(open_srv, "GET", "/x", 0, ok, NULL), 0);
	assert_int_equal(httpd_route(tok_srv, "GET", "/x", 0, ok, NULL), 0);
	assert_int_equal(get(httpd_port(open_srv), "/x", NULL), 200);
	assert_int_equal(get(httpd_port(open_srv), "/nope", NULL), 404);
	assert_int_equal(get(httpd_port(tok_srv), "/x", NULL), 401);
	assert_int_equal(get(httpd_port(tok_srv), "/x", "s3cret"), 200);

	struct httpd_metrics_server s[] = { { "metrics", open_srv }, { "control", tok_srv }, { "off", NULL } };
	struct strbuf sb;
	strbuf_init(&sb, 1 << 16);
	assert_int_equal(httpd_metrics_render("ms_t", s, 3, &sb), 0);
	print_message("%s", sb.buf);
	assert_int_equal(count(sb.buf, "# TYPE ms_t_http_requests_total counter"), 1);
	assert_int_equal(count(sb.buf, "# TYPE "), 9);
	assert_non_null(strstr(sb.buf, "ms_t_http_requests_total{server=\"metrics\",class=\"2xx\"} 1\n"));
	assert_non_null(strstr(sb.buf, "ms_t_http_requests_total{server=\"metrics\",class=\"4xx\"} 1\n"));
	assert_non_null(strstr(sb.buf, "ms_t_http_requests_total{server=\"control\",class=\"2xx\"} 1\n"));
	assert_non_null(strstr(sb.buf, "ms_t_http_auth_failures_total{server=\"control\"} 1\n"));
	assert_non_null(strstr(sb.buf, "ms_t_http_auth_failures_total{server=\"metrics\"} 0\n"));
	assert_non_null(strstr(sb.buf, "ms_t_http_pending_calls{server=\"control\"} 0\n"));
	assert_null(strstr(sb.buf, "server=\"off\""));
	strbuf_release(&sb);

	struct strbuf small;
	strbuf_init(&small, 64);
	assert_int_equal(httpd_metrics_render("ms_t", s, 2, &small), -ENOSPC);
	strbuf_release(&small);
	assert_int_equal(httpd_metrics_render("ms_t", s, HTTPD_METRICS_MAX_SERVERS + 1, &small), -EINVAL);
	assert_int_equal(httpd_metrics_render(NULL, s, 1, &small), -EINVAL);
	httpd_free(open_srv);
	httpd_free(tok_srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_servers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
