/* httpd tests: a real server on loopback, libcurl as the client: routes, auth, bodies, deferred
 * and late replies, timeouts, concurrency, addresses. Raw-socket tests are in httpd_conn_test.c,
 * the text helpers' tests in httpd_req_test.c. */
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

static bool has_header(const struct resp *r, const char *needle)
{
	return strcasestr(r->headers, needle) != NULL;
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

/* Parks calls for a test thread to answer. */
struct parking {
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	struct httpd_call *calls[64];
	double when[64];
	int n;
};

static void h_park(void *arg, struct httpd_call *c)
{
	struct parking *p = arg;
	pthread_mutex_lock(&p->mtx);
	if (p->n == 64)
		abort(); /* a test bug; cmocka asserts cannot be used off the main thread */
	p->when[p->n] = now_s();
	p->calls[p->n++] = c;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mtx);
}

static struct httpd_call *park_wait_when(struct parking *p, double *ret_when)
{
	pthread_mutex_lock(&p->mtx);
	while (p->n == 0)
		pthread_cond_wait(&p->cv, &p->mtx);
	struct httpd_call *c = p->calls[0];
	*ret_when = p->when[0];
	--p->n;
	memmove(p->calls, p->calls + 1, sizeof(p->calls[0]) * (size_t)p->n);
	memmove(p->when, p->when + 1, sizeof(p->when[0]) * (size_t)p->n);
	pthread_mutex_unlock(&p->mtx);
	return c;
}

static struct httpd_call *park_wait(struct parking *p)
{
	double when;
	return park_wait_when(p, &when);
}

struct client {
	pthread_t thr;
	char url[128];
	struct resp r;
};

static void *client_main(void *arg)
{
	struct client *cl = arg;
	req("GET", cl->url, NULL, NULL, 0, NULL, &cl->r);
	return NULL;
}

/* ---- tests --------------------------------------------------------------------------- */

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

static void test_routing(void **state)
{
	struct httpd *h = server(NULL);
	struct resp r;
	char u[160];

	assert_int_equal(httpd_route(h, "GET", "/hello", 0, h_hello, NULL), -EEXIST);
	assert_int_equal(httpd_route(h, "get", "/x", 0, h_hello, NULL), -EINVAL);
	assert_int_equal(httpd_route(h, "GET", "x", 0, h_hello, NULL), -EINVAL);

	url(u, sizeof(u), h, "/hello?name=a%20b+c&x=1");
	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 200);
	assert_string_equal(r.body, "{\"method\":\"GET\",\"path\":\"/hello\",\"name\":\"a b c\"}");
	assert_true(has_header(&r, "Content-Type: application/json"));

	assert_int_equal(req("HEAD", u, NULL, NULL, 0, NULL, &r), 200);
	assert_int_equal(r.len, 0);

	url(u, sizeof(u), h, "/echo");
	assert_int_equal(req("POST", u, NULL, "{\"k\":1}", 7, "Content-Type: application/json", &r), 201);
	assert_string_equal(r.body, "{\"k\":1}");
	assert_int_equal(req("PUT", u, NULL, "abc", 3, NULL, &r), 201);
	assert_string_equal(r.body, "abc");
	assert_int_equal(req("POST", u, NULL, "", 0, NULL, &r), 201);
	assert_int_equal(r.len, 0);

	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 405);
	assert_string_equal(r.body, "{\"error\":\"Method Not Allowed\","
				    "\"reason\":\"method not allowed for this path\"}");
	assert_true(has_header(&r, "Allow: POST, PUT"));
	assert_true(has_header(&r, "Content-Type: application/json"));

	url(u, sizeof(u), h, "/nope");
	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 404);
	assert_string_equal(r.body, "{\"error\":\"Not Found\",\"reason\":\"no such path\"}");
	url(u, sizeof(u), h, "/hello/more");
	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 404);
	url(u, sizeof(u), h, "/api/agentsx");
	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 404);

	url(u, sizeof(u), h, "/api/agents/a%2F1/windows");
	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 200);
	assert_non_null(strstr(r.body, "\"path\":\"/api/agents/a/1/windows\""));
	url(u, sizeof(u), h, "/api/agents");
	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 200);
	url(u, sizeof(u), h, "/api/agents/%zz");
	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 400);
	assert_non_null(strstr(r.body, "\"error\":\"Bad Request\""));

	url(u, sizeof(u), h, "/metrics");
	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 200);
	assert_true(has_header(&r, "Content-Type: text/plain; version=0.0.4"));

	struct httpd_stats st;
	httpd_stats(h, &st);
	assert_true(st.requests >= 12);
	assert_true(st.by_class[2] >= 8);
	assert_int_equal(st.by_class[4], 5);
	assert_int_equal(st.pending, 0);
	httpd_free(h);
	(void)state;
}

static void test_body_limits(void **state)
{
	struct httpd_opts o = { .max_body_bytes = 1024, .server_name = "mstest/1" };
	struct httpd *h = server(&o);
	struct resp r;
	char u[160], *big = malloc(4096);
	memset(big, 'x', 4096);

	url(u, sizeof(u), h, "/echo");
	assert_int_equal(req("POST", u, NULL, big, 1024, NULL, &r), 201);
	assert_int_equal(r.len, 1024);
	assert_true(has_header(&r, "Server: mstest/1"));
	assert_int_equal(req("POST", u, NULL, big, 1025, NULL, &r), 413);
	assert_string_equal(r.body, "{\"error\":\"Payload Too Large\","
				    "\"reason\":\"request body too large\"}");
	assert_true(has_header(&r, "Connection: close"));
	/* curl waits up to 1 s for "100 Continue" when asked to; we send it at once */
	assert_int_equal(req("POST", u, NULL, big, 1000, "Expect: 100-continue", &r), 201);
	assert_int_equal(r.len, 1000);
	assert_true(r.secs < 0.9);
	assert_int_equal(req("POST", u, NULL, big, 10, "Transfer-Encoding: chunked", &r), 411);
	assert_non_null(strstr(r.body, "\"error\":\"Length Required\""));
	free(big);
	httpd_free(h);
	(void)state;
}

static void test_auth(void **state)
{
	struct httpd_opts o = { .bearer_token = "s3cret-token" };
	struct httpd *h = server(&o);
	struct resp r;
	char u[160];

	url(u, sizeof(u), h, "/hello");
	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 401);
	assert_string_equal(r.body, "{\"error\":\"Unauthorized\",\"reason\":\"bearer token required\"}");
	assert_true(has_header(&r, "WWW-Authenticate: Bearer"));
	assert_true(has_header(&r, "Content-Type: application/json"));
	assert_int_equal(req("GET", u, "Bearer wrong", NULL, 0, NULL, &r), 401);
	assert_non_null(strstr(r.body, "invalid bearer token"));
	assert_int_equal(req("GET", u, "Bearer s3cret-token-longer", NULL, 0, NULL, &r), 401);
	assert_int_equal(req("GET", u, "Bearer s3cret-toke", NULL, 0, NULL, &r), 401);
	assert_int_equal(req("GET", u, "Basic s3cret-token", NULL, 0, NULL, &r), 401);
	assert_int_equal(req("GET", u, "Bearer s3cret-token", NULL, 0, NULL, &r), 200);
	assert_int_equal(req("GET", u, "bearer s3cret-token", NULL, 0, NULL, &r), 200);
	url(u, sizeof(u), h, "/echo");
	assert_int_equal(req("POST", u, NULL, "abc", 3, NULL, &r), 401);
	assert_int_equal(req("POST", u, "Bearer s3cret-token", "abc", 3, NULL, &r), 201);
	url(u, sizeof(u), h, "/metrics");
	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 200);

	struct httpd_stats st;
	httpd_stats(h, &st);
	assert_int_equal(st.auth_failures, 6);
	httpd_free(h);
	(void)state;
}

struct later {
	struct parking *p;
	int delay_ms;
};

static void *reply_later(void *arg)
{
	struct later *l = arg;
	struct httpd_call *c = park_wait(l->p);
	usleep((useconds_t)l->delay_ms * 1000);
	httpd_call_reply_error(c, 409, "busy \"now\"\n");
	return NULL;
}

static void test_deferred_reply(void **state)
{
	struct parking p = { .mtx = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	struct httpd *h = server(NULL);
	struct resp r;
	char u[160];
	pthread_t t;
	struct later l = { &p, 100 };

	assert_int_equal(httpd_route(h, "POST", "/later", 0, h_park, &p), 0);
	assert_int_equal(pthread_create(&t, NULL, reply_later, &l), 0);
	url(u, sizeof(u), h, "/later");
	assert_int_equal(req("POST", u, NULL, "{}", 2, NULL, &r), 409);
	assert_string_equal(r.body, "{\"error\":\"Conflict\",\"reason\":\"busy \\\"now\\\"\\n\"}");
	assert_true(r.secs >= 0.09);
	pthread_join(t, NULL);
	httpd_free(h);
	(void)state;
}

static void test_reply_timeout(void **state)
{
	struct parking p = { .mtx = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	struct httpd_opts o = { .reply_timeout_ms = 200 };
	struct httpd *h = server(&o);
	struct resp r;
	char u[160];

	assert_int_equal(httpd_route(h, "GET", "/slow", 0, h_park, &p), 0);
	url(u, sizeof(u), h, "/slow");
	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 503);
	assert_string_equal(r.body, "{\"error\":\"Service Unavailable\","
				    "\"reason\":\"handler did not reply within 200 ms\"}");
	assert_true(r.secs >= 0.19 && r.secs < 2.0);
	struct httpd_call *c = park_wait(&p);
	/* still readable after the timeout; the late reply is discarded */
	assert_string_equal(httpd_call_path(c), "/slow");
	assert_null(httpd_call_header(c, "X-Never-Looked-Up"));
	httpd_call_reply(c, 200, "text/plain", "late", 4);

	/* the connection pool still works afterwards */
	url(u, sizeof(u), h, "/hello");
	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 200);
	struct httpd_stats st;
	httpd_stats(h, &st);
	assert_int_equal(st.timeouts, 1);
	assert_int_equal(st.late_replies, 1);
	assert_int_equal(st.by_class[5], 1);
	assert_int_equal(st.pending, 0);
	httpd_free(h);
	(void)state;
}

static void test_concurrent_clients(void **state)
{
	struct httpd *h = server(NULL);
	enum { N = 8, ROUNDS = 10 };
	struct client cl[N];
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < N; i++) {
			url(cl[i].url, sizeof(cl[i].url), h, "/hello");
			assert_int_equal(pthread_create(&cl[i].thr, NULL, client_main, &cl[i]), 0);
		}
		for (int i = 0; i < N; i++) {
			pthread_join(cl[i].thr, NULL);
			assert_int_equal(cl[i].r.status, 200);
		}
	}
	struct httpd_stats st;
	httpd_stats(h, &st);
	assert_int_equal(st.by_class[2], N * ROUNDS);
	httpd_free(h);
	(void)state;
}

static void test_max_pending_and_free_with_pending(void **state)
{
	struct parking p = { .mtx = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	struct httpd_opts o = { .max_pending = 1, .reply_timeout_ms = 20000 };
	struct httpd *h = server(&o);
	struct resp r;
	struct client waiting;

	assert_int_equal(httpd_route(h, "GET", "/park", 0, h_park, &p), 0);
	url(waiting.url, sizeof(waiting.url), h, "/park");
	assert_int_equal(pthread_create(&waiting.thr, NULL, client_main, &waiting), 0);
	struct httpd_call *c = park_wait(&p);
	assert_int_equal(req("GET", waiting.url, NULL, NULL, 0, NULL, &r), 503);
	assert_non_null(strstr(r.body, "too many requests"));
	assert_non_null(httpd_call_header(c, "Host"));

	/* free while a call is parked: the client is cut off, the late reply is harmless */
	httpd_free(h);
	pthread_join(waiting.thr, NULL);
	assert_int_not_equal(waiting.r.code, CURLE_OK);
	assert_string_equal(httpd_call_path(c), "/park");
	assert_non_null(httpd_call_header(c, "host"));
	httpd_call_reply(c, 200, NULL, "{}", 2);
	(void)state;
}

/* Replies race the reply timeout; every request must end as exactly one of 200 or 503. */
struct racer {
	struct parking *p;
	int count;
};

static void *race_replier(void *arg)
{
	struct racer *rc = arg;
	for (int i = 0; i < rc->count; i++) {
		double when, due;
		struct httpd_call *c = park_wait_when(rc->p, &when);
		due = when + 0.040 + (rand() % 20000) / 1e6; /* around the 50 ms timeout */
		if (due > now_s())
			usleep((useconds_t)((due - now_s()) * 1e6));
		httpd_call_reply(c, 200, "text/plain", "ok", 2);
	}
	return NULL;
}

static void *race_client(void *arg)
{
	struct client *cl = arg;
	/* no cmocka asserts off the main thread: remember the first bad status instead */
	long bad = 0;
	for (int i = 0; i < 10; i++) {
		req("GET", cl->url, NULL, NULL, 0, NULL, &cl->r);
		if (cl->r.status != 200 && cl->r.status != 503 && !bad)
			bad = cl->r.status ? cl->r.status : -(long)cl->r.code;
	}
	cl->r.status = bad;
	return NULL;
}

static void test_timeout_reply_race(void **state)
{
	struct parking p = { .mtx = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	struct httpd_opts o = { .reply_timeout_ms = 50 };
	struct httpd *h = server(&o);
	enum { N = 4 };
	struct client cl[N];
	struct racer rc = { &p, N * 10 };
	pthread_t rt;

	assert_int_equal(httpd_route(h, "GET", "/race", 0, h_park, &p), 0);
	assert_int_equal(pthread_create(&rt, NULL, race_replier, &rc), 0);
	for (int i = 0; i < N; i++) {
		url(cl[i].url, sizeof(cl[i].url), h, "/race");
		assert_int_equal(pthread_create(&cl[i].thr, NULL, race_client, &cl[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(cl[i].thr, NULL);
		assert_int_equal(cl[i].r.status, 0);
	}
	pthread_join(rt, NULL);
	struct httpd_stats st;
	httpd_stats(h, &st);
	assert_int_equal(st.by_class[2] + st.by_class[5], N * 10);
	assert_int_equal(st.timeouts, st.by_class[5]);
	assert_int_equal(st.late_replies, st.timeouts);
	assert_int_equal(st.pending, 0);
	print_message("race: %llu replied, %llu timed out\n", (unsigned long long)st.by_class[2],
		      (unsigned long long)st.timeouts);
	httpd_free(h);
	(void)state;
}

static void test_bind_addresses(void **state)
{
	struct httpd *h = NULL;
	struct resp r;
	char u[160];

	assert_int_equal(httpd_new("localhost", 0, NULL, &h), 0);
	assert_int_equal(httpd_route(h, "GET", "/healthz", HTTPD_PUBLIC, h_metrics, NULL), 0);
	snprintf(u, sizeof(u), "http://localhost:%u/healthz", (unsigned)httpd_port(h));
	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 200);
	h = httpd_free(h);

	assert_int_equal(httpd_new("::1", 0, NULL, &h), 0);
	assert_int_equal(httpd_route(h, "GET", "/healthz", HTTPD_PUBLIC, h_metrics, NULL), 0);
	snprintf(u, sizeof(u), "http://[::1]:%u/healthz", (unsigned)httpd_port(h));
	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 200);
	uint16_t port = httpd_port(h);
	h = httpd_free(h);

	assert_int_equal(httpd_new("[::1]", port, NULL, &h), 0);
	assert_int_equal(httpd_port(h), port);
	struct httpd *h2 = NULL;
	assert_int_equal(httpd_new("::1", port, NULL, &h2), -EADDRINUSE);
	assert_null(h2);
	/* the failed second one must not stop the first */
	assert_int_equal(httpd_route(h, "GET", "/healthz", HTTPD_PUBLIC, h_metrics, NULL), 0);
	assert_int_equal(req("GET", u, NULL, NULL, 0, NULL, &r), 200);
	h = httpd_free(h);

	struct httpd_opts bad = { .reply_timeout_ms = HTTPD_MAX_REPLY_TIMEOUT_MS + 1 };
	assert_int_equal(httpd_new("127.0.0.1", 0, &bad, &h), -EINVAL);
	bad = (struct httpd_opts){ .max_body_bytes = (size_t)HTTPD_MAX_BODY_LIMIT + 1 };
	assert_int_equal(httpd_new("127.0.0.1", 0, &bad, &h), -EINVAL);

	assert_int_equal(httpd_new("no-such-host.invalid", 0, NULL, &h), -EADDRNOTAVAIL);
	assert_int_equal(httpd_new("300.1.2.3", 0, NULL, &h), -EADDRNOTAVAIL);
	assert_int_equal(httpd_new("192.0.2.1", 0, NULL, &h), -EADDRNOTAVAIL); /* not local */
	assert_int_equal(httpd_new("", 0, NULL, &h), -EINVAL);
	assert_int_equal(httpd_new(NULL, 0, NULL, &h), -EINVAL);
	assert_null(h);

	/* a port held by another socket */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	assert_int_equal(httpd_new("127.0.0.1", ntohs(sa.sin_port), NULL, &h), -EADDRINUSE);
	close(fd);
	assert_null(httpd_free(NULL));
	(void)state;
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routing),
		cmocka_unit_test(test_body_limits),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_deferred_reply),
		cmocka_unit_test(test_reply_timeout),
		cmocka_unit_test(test_concurrent_clients),
		cmocka_unit_test(test_timeout_reply_race),
		cmocka_unit_test(test_max_pending_and_free_with_pending),
		cmocka_unit_test(test_bind_addresses),
	};
	int rv = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	nng_fini(); /* drains nng's reaper so leak checkers see everything freed */
	return rv;
}

