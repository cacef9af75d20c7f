/* httpd connection tests: a real server on loopback driven over raw sockets (and libcurl):
 * malformed and oversized requests, keep-alive and pipelining, the connection cap, the idle and
 * head read timeouts, slow clients. The API-level tests are in httpd_test.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>

#include "httpd.h"

struct resp {
	long status;
	char body[8192];
	size_t len;
	char headers[4096];
	size_t hlen;
	double secs;
	CURLcode code;
};

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
	struct resp *r = arg;
	size_t k = sz * n, room = sizeof(r->body) - 1 - r->len;
	memcpy(r->body + r->len, p, k < room ? k : room);
	r->len += k < room ? k : room;
	r->body[r->len] = '\0';
	return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
	struct resp *r = arg;
	size_t k = sz * n, room = sizeof(r->headers) - 1 - r->hlen;
	memcpy(r->headers + r->hlen, p, k < room ? k : room);
	r->hlen += k < room ? k : room;
	r->headers[r->hlen] = '\0';
	return k;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One request; extra is one more header line or NULL. Returns the HTTP status (0 on error). */
static long req(const char *method, const char *url, const char *auth, const void *body,
		size_t blen, const char *extra, struct resp *r)
{
	memset(r, 0, sizeof(*r));
	CURL *e = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	char line[512];
	if (auth) {
		snprintf(line, sizeof(line), "Authorization: %s", auth);
		hdrs = curl_slist_append(hdrs, line);
	}
	if (extra)
		hdrs = curl_slist_append(hdrs, extra);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	if (body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)blen);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	double t0 = now_s();
	r->code = curl_easy_perform(e);
	r->secs = now_s() - t0;
	if (r->code == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(e);
	return r->status;
}

static void url(char *buf, size_t size, struct httpd *h, const char *path)
{
	snprintf(buf, size, "http://127.0.0.1:%u%s", (unsigned)httpd_port(h), path);
}

/* ---- handlers ------------------------------------------------------------------------ */

static void h_hello(void *arg, struct httpd_call *c)
{
	(void)arg;
	char body[512];
	char v[64];
	int n = httpd_query_get(httpd_call_query(c), "name", v, sizeof(v));
	snprintf(body, sizeof(body), "{\"method\":\"%s\",\"path\":\"%s\",\"name\":\"%s\"}",
		 httpd_call_method(c), httpd_call_path(c), n >= 0 ? v : "");
	httpd_call_reply(c, 200, "application/json", body, strlen(body));
}

static void h_echo(void *arg, struct httpd_call *c)
{
	(void)arg;
	size_t len;
	const void *b = httpd_call_body(c, &len);
	const char *ct = httpd_call_header(c, "content-type");
	httpd_call_reply(c, 201, ct ? ct : "text/plain", b, len);
}

static void h_metrics(void *arg, struct httpd_call *c)
{
	(void)arg;
	static const char m[] = "# TYPE x counter\nx 1\n";
	httpd_call_reply(c, 200, "text/plain; version=0.0.4", m, sizeof(m) - 1);
}

static struct httpd *server(const struct httpd_opts *o)
{
	struct httpd *h = NULL;
	assert_int_equal(httpd_new("127.0.0.1", 0, o, &h), 0);
	assert_non_null(h);
	assert_true(httpd_port(h) > 0);
	assert_int_equal(httpd_route(h, "GET", "/hello", 0, h_hello, NULL), 0);
	assert_int_equal(httpd_route(h, "POST", "/echo", 0, h_echo, NULL), 0);
	assert_int_equal(httpd_route(h, "PUT", "/echo", 0, h_echo, NULL), 0);
	assert_int_equal(httpd_route(h, "GET", "/api/agents", HTTPD_PREFIX, h_hello, NULL), 0);
	assert_int_equal(httpd_route(h, "GET", "/metrics", HTTPD_PUBLIC, h_metrics, NULL), 0);
	return h;
}


static int raw_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Sends text on a fresh connection; returns the status of the reply (0 if none). */
static int raw_request(uint16_t port, const char *text, char *out, size_t size)
{
	int fd = raw_connect(port);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	shutdown(fd, SHUT_WR); /* the client is done sending */
	size_t n = 0;
	ssize_t k;
	while (n + 1 < size && (k = read(fd, out + n, size - 1 - n)) > 0)
		n += (size_t)k;
	out[n] = '\0';
	close(fd);
	int status = 0;
	sscanf(out, "HTTP/1.%*d %d", &status);
	return status;
}

static void test_raw_requests(void **state)
{
	struct httpd *h = server(NULL);
	char out[2048];
	uint16_t port = httpd_port(h);
	assert_int_equal(raw_request(port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n"
				     "\r\nabc", out, sizeof(out)), 400);
	assert_non_null(strstr(out, "bad Content-Length"));
	assert_int_equal(raw_request(port, "POST /echo HTTP/1.1\r\nHost: x\r\n"
				     "Content-Length: 99999999999999999999\r\n\r\n", out, sizeof(out)), 400);
	assert_int_equal(raw_request(port, "GET http://x/hello?name=abs HTTP/1.1\r\nHost: x\r\n"
				     "Connection: close\r\n\r\n", out, sizeof(out)), 200);
	assert_non_null(strstr(out, "\"name\":\"abs\""));
	/* a target that is not a path */
	assert_int_equal(raw_request(port, "GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
				     out, sizeof(out)), 404);
	assert_non_null(strstr(out, "{\"error\":\"Not Found\""));
	assert_int_equal(raw_request(port, "GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", out,
				     sizeof(out)), 505);
	assert_non_null(strstr(out, "{\"error\":"));
	assert_non_null(strstr(out, "Content-Type: application/json"));
	assert_int_equal(raw_request(port, "GET /hel%00lo HTTP/1.1\r\nHost: x\r\n"
				     "Connection: close\r\n\r\n", out, sizeof(out)), 400);
	assert_int_equal(raw_request(port, "VERYLONGMETHODNAME /hello HTTP/1.1\r\nHost: x\r\n"
				     "Connection: close\r\n\r\n", out, sizeof(out)), 501);
	/* body cut short by the client: no handler call, no leak */
	assert_int_equal(raw_request(port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
				     "\r\nshort", out, sizeof(out)), 0);
	httpd_free(h);
	(void)state;
}

static void test_slow_clients_do_not_block(void **state)
{
	struct httpd_opts o = { .reply_timeout_ms = 300 };
	struct httpd *h = server(&o);
	struct resp r;
	char u[160];
	int idle = raw_connect(httpd_port(h));
	int half = raw_connect(httpd_port(h));
	int body = raw_connect(httpd_port(h));
	const char *hdr = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Half: ";
	const char *partial = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nabc";
	assert_true(write(half, hdr, strlen(hdr)) > 0);
	assert_true(write(body, partial, strlen(partial)) > 0);

	url(u, sizeof(u), h, "/hello");
	for (int i = 0; i < 5; i++) {
		assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 200);
		assert_true(r.secs < 1.0);
	}
	/* the trickling body is cut off by the reply timeout */
	char out[1024];
	ssize_t n = read(body, out, sizeof(out) - 1);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "HTTP/1.1 408"));
	close(idle);
	close(half);
	close(body);
	httpd_free(h);
	(void)state;
}

/* A connection that reads responses one by one (Content-Length framed). */
struct rconn {
	int fd;
	char buf[65536];
	size_t len;
};

/* The next response: its status (0 at EOF or timeout), its head and body copied out. */
static int next_resp(struct rconn *rc, char *head, size_t hsize, char *body, size_t bsize)
{
	for (;;) {
		char *end = strstr(rc->buf, "\r\n\r\n");
		if (end) {
			size_t hl = (size_t)(end + 4 - rc->buf), cl = 0;
			const char *p = strcasestr(rc->buf, "Content-Length:");
			if (p && p < end)
				cl = strtoul(p + 15, NULL, 10);
			if (rc->len >= hl + cl) {
				int status = 0;
				sscanf(rc->buf, "HTTP/1.%*d %d", &status);
				snprintf(head, hsize, "%.*s", (int)hl, rc->buf);
				snprintf(body, bsize, "%.*s", (int)cl, rc->buf + hl);
				memmove(rc->buf, rc->buf + hl + cl, rc->len - hl - cl + 1);
				rc->len -= hl + cl;
				return status;
			}
		}
		if (rc->len + 1 >= sizeof(rc->buf))
			return 0;
		ssize_t k = read(rc->fd, rc->buf + rc->len, sizeof(rc->buf) - 1 - rc->len);
		if (k <= 0)
			return 0;
		rc->len += (size_t)k;
		rc->buf[rc->len] = '\0';
	}
}

static bool at_eof(int fd)
{
	char ch;
	return read(fd, &ch, 1) == 0;
}

static void send_all(int fd, const char *text)
{
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

static void test_keep_alive_and_pipelining(void **state)
{
	struct httpd *h = server(NULL);
	struct rconn *rc = calloc(1, sizeof(*rc));
	char head[2048], body[2048];
	rc->fd = raw_connect(httpd_port(h));
	/* three requests in one write: answered in order on the same connection */
	send_all(rc->fd, "GET /hello?name=p1 HTTP/1.1\r\nHost: x\r\n\r\n"
		 "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
		 "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(next_resp(rc, head, sizeof(head), body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"name\":\"p1\""));
	assert_null(strcasestr(head, "Connection:"));
	assert_int_equal(next_resp(rc, head, sizeof(head), body, sizeof(body)), 201);
	assert_string_equal(body, "hello");
	assert_int_equal(next_resp(rc, head, sizeof(head), body, sizeof(body)), 404);
	assert_non_null(strstr(head, "Content-Type: application/json"));
	/* later, the same connection again, a request split across writes */
	usleep(50000);
	send_all(rc->fd, "GET /hel");
	usleep(20000);
	send_all(rc->fd, "lo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_int_equal(next_resp(rc, head, sizeof(head), body, sizeof(body)), 200);
	assert_non_null(strstr(head, "Connection: close"));
	assert_true(at_eof(rc->fd));
	close(rc->fd);

	/* HTTP/1.0: closed after the reply unless keep-alive is asked for */
	memset(rc, 0, sizeof(*rc));
	rc->fd = raw_connect(httpd_port(h));
	send_all(rc->fd, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /hello HTTP/1.0\r\n\r\n");
	assert_int_equal(next_resp(rc, head, sizeof(head), body, sizeof(body)), 200);
	assert_non_null(strstr(head, "Connection: keep-alive"));
	assert_int_equal(next_resp(rc, head, sizeof(head), body, sizeof(body)), 200);
	assert_non_null(strstr(head, "Connection: close"));
	assert_true(at_eof(rc->fd));
	close(rc->fd);
	free(rc);
	struct httpd_stats st;
	httpd_stats(h, &st);
	assert_int_equal(st.requests, 6);
	assert_int_equal(st.by_class[2], 5);
	httpd_free(h);
	(void)state;
}

static void test_conn_cap_and_idle_timeout(void **state)
{
	struct httpd_opts o = { .max_conns = 4, .idle_timeout_ms = 300 };
	struct httpd *h = server(&o);
	char out[2048];
	int fds[4];
	struct httpd_stats st;
	for (int i = 0; i < 4; i++)
		fds[i] = raw_connect(httpd_port(h));
	send_all(fds[3], "GET /hello HTTP/1.1\r\nHost: x\r\n"); /* half a head */
	do { /* the server accepts asynchronously */
		usleep(10000);
		httpd_stats(h, &st);
	} while (st.conns < 4);
	/* one over the cap: 503 and closed, before it sent anything */
	int over = raw_connect(httpd_port(h));
	size_t got = 0;
	ssize_t k;
	while (got + 1 < sizeof(out) && (k = read(over, out + got, sizeof(out) - 1 - got)) > 0)
		got += (size_t)k;
	out[got] = '\0';
	close(over);
	assert_non_null(strstr(out, "HTTP/1.1 503"));
	assert_non_null(strstr(out, "too many connections"));
	assert_non_null(strstr(out, "Connection: close"));
	/* the idle ones are closed by the timeout, silently; the half head gets 408 */
	for (int i = 0; i < 3; i++)
		assert_true(at_eof(fds[i]));
	ssize_t n = read(fds[3], out, sizeof(out) - 1);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "HTTP/1.1 408"));
	assert_non_null(strstr(out, "request head not received within 300 ms"));
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	do {
		usleep(10000);
		httpd_stats(h, &st);
	} while (st.conns > 0);
	assert_int_equal(st.conn_rejects, 1);
	assert_int_equal(st.idle_closes, 4);
	assert_int_equal(raw_request(httpd_port(h), "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", out,
				     sizeof(out)), 200);
	httpd_free(h);
	(void)state;
}

static void test_bad_heads(void **state)
{
	struct httpd *h = server(NULL);
	uint16_t port = httpd_port(h);
	char *big = malloc(40000), out[2048];
	/* paths ending in or made of broken %XX escapes (nng 1.5.2 read past its buffer here) */
	const char *paths[] = { "/a%4", "/%41%", "/%", "/hello%4", "/%4", "/api/agents/%2" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		snprintf(big, 40000, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[i]);
		assert_int_equal(raw_request(port, big, out, sizeof(out)), 400);
		assert_non_null(strstr(out, "malformed request target"));
	}
	assert_int_equal(raw_request(port, "GET /hell%6f HTTP/1.1\r\nHost: x\r\n\r\n", out,
				     sizeof(out)), 200);
	/* oversized: target, one header, many headers */
	int k = snprintf(big, 40000, "GET /");
	memset(big + k, 'a', 9000);
	snprintf(big + k + 9000, 100, " HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(raw_request(port, big, out, sizeof(out)), 414);
	k = snprintf(big, 40000, "GET /hello HTTP/1.1\r\nX-Big: ");
	memset(big + k, 'b', 20000);
	snprintf(big + k + 20000, 100, "\r\n\r\n");
	assert_int_equal(raw_request(port, big, out, sizeof(out)), 431);
	assert_non_null(strstr(out, "Connection: close"));
	k = snprintf(big, 40000, "GET /hello HTTP/1.1\r\n");
	for (int i = 0; i < 100; i++)
		k += snprintf(big + k, 40000 - (size_t)k, "X-%d: %d\r\n", i, i);
	snprintf(big + k, 40000 - (size_t)k, "\r\n");
	assert_int_equal(raw_request(port, big, out, sizeof(out)), 431);
	/* smuggling shapes and garbage */
	assert_int_equal(raw_request(port, "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n"
				     "Content-Length: 4\r\n\r\nabcd", out, sizeof(out)), 400);
	assert_int_equal(raw_request(port, "GET /hello HTTP/1.1\r\nX: 1\r\n folded\r\n\r\n", out,
				     sizeof(out)), 400);
	assert_int_equal(raw_request(port, "\x16\x03\x01\x02\x00\x01", out, sizeof(out)), 400);
	assert_non_null(strstr(out, "Content-Type: application/json"));
	free(big);
	httpd_free(h);
	(void)state;
}

static void h_bad_reply(void *arg, struct httpd_call *c)
{
	(void)arg;
	httpd_call_reply(c, 200, "text/plain\r\nX-Injected: 1", "x", 1);
}

static void test_reply_header_injection(void **state)
{
	struct httpd *h = server(NULL);
	char out[2048];
	assert_int_equal(httpd_route(h, "GET", "/bad", 0, h_bad_reply, NULL), 0);
	assert_int_equal(raw_request(httpd_port(h), "GET /bad HTTP/1.1\r\nHost: x\r\n\r\n", out,
				     sizeof(out)), 500);
	assert_null(strstr(out, "X-Injected"));
	httpd_free(h);
	(void)state;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* a server that closed first must fail a write, not kill us */
	curl_global_init(CURL_GLOBAL_ALL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw_requests),
		cmocka_unit_test(test_slow_clients_do_not_block),
		cmocka_unit_test(test_keep_alive_and_pipelining),
		cmocka_unit_test(test_conn_cap_and_idle_timeout),
		cmocka_unit_test(test_bad_heads),
		cmocka_unit_test(test_reply_header_injection),
	};
	int rv = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	nng_fini(); /* drains nng's reaper so leak checkers see everything freed */
	return rv;
}
