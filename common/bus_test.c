/* Tests of the nng REQ/REP adapter: pipelined echo over ipc and tcp, replies from another
 * thread, dialing before the listener exists, timeouts, busy contexts, size limits, errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>

#include "bus.h"

/* Collected replies, guarded by mu. */
struct sink {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t n, errors, last_err;
	uint8_t seen[1024];
	char last[64];
};

static void on_reply(void *arg, uint64_t tag, int err, const void *reply, size_t len)
{
	struct sink *s = arg;
	pthread_mutex_lock(&s->mu);
	if (err) {
		s->errors++;
		s->last_err = (uint32_t)-err;
	} else {
		if (tag < sizeof(s->seen))
			s->seen[tag]++;
		snprintf(s->last, sizeof(s->last), "%.*s", (int)len, (const char *)reply);
	}
	s->n++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static int wait_n(struct sink *s, uint32_t n, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_sec++, ts.tv_nsec -= 1000000000L;
	pthread_mutex_lock(&s->mu);
	while (s->n < n)
		if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
			break;
	int r = s->n >= n ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&s->mu);
	return r;
}

static void sink_init(struct sink *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
}

/* Server handler: echoes "ok:<request>" at once. */
static void echo(void *arg, struct bus_call *call, const void *data, size_t len)
{
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "ok:%.*s", (int)(len < 100 ? len : 100), (const char *)data);
	struct bus_peer p;
	bus_call_peer(call, &p);
	if (arg)
		snprintf(arg, 64, "%s", p.addr);
	bus_call_reply(call, buf, (size_t)n);
}

static void url_ipc(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "ipc:///tmp/ms-bus-test-%d-%s.ipc", (int)getpid(), tag);
}

static void test_pipelined_echo_ipc(void **state)
{
	char url[128];
	url_ipc(url, sizeof(url), "echo");
	struct bus_rep *rep;
	struct bus_rep_opts ro = { .url = url, .contexts = 4 };
	assert_int_equal(bus_rep_new(&ro, echo, NULL, &rep), 0);
	struct sink s;
	sink_init(&s);
	struct bus_req *req;
	struct bus_req_opts qo = { .url = url, .contexts = 8, .timeout_ms = 5000 };
	assert_int_equal(bus_req_new(&qo, on_reply, &s, &req), 0);
	uint32_t sent = 0;
	while (sent < 500) {
		char m[32];
		int n = snprintf(m, sizeof(m), "req-%u", sent);
		int r = bus_req_send(req, sent, m, (size_t)n);
		if (r == -EBUSY) {
			usleep(200);
			continue;
		}
		assert_int_equal(r, 0);
		sent++;
	}
	assert_int_equal(wait_n(&s, 500, 10000), 0);
	assert_int_equal(s.errors, 0);
	for (uint32_t i = 0; i < 500; i++)
		assert_int_equal(s.seen[i], 1);
	assert_true(bus_req_connected(req));
	/* a context is free again only after its callback returned */
	for (int i = 0; i < 200 && bus_req_idle(req) < 8; i++)
		usleep(1000);
	assert_int_equal(bus_req_idle(req), 8);
	bus_req_free(req);
	bus_rep_free(rep);
}

/* Replies come later from a worker thread, as the coordinator's ingest does. */
struct deferred {
	pthread_mutex_t mu;
	struct bus_call *calls[64];
	int n;
	bool go, stop;
};

static void defer(void *arg, struct bus_call *call, const void *data, size_t len)
{
	struct deferred *d = arg;
	pthread_mutex_lock(&d->mu);
	d->calls[d->n++] = call;
	pthread_mutex_unlock(&d->mu);
}

static void *answer(void *arg)
{
	struct deferred *d = arg;
	for (;;) {
		pthread_mutex_lock(&d->mu);
		struct bus_call *c = d->go && d->n ? d->calls[--d->n] : NULL;
		bool stop = d->stop;
		pthread_mutex_unlock(&d->mu);
		if (c)
			bus_call_reply(c, "later", 5);
		else if (stop)
			return NULL;
		else
			usleep(1000);
	}
}

static void test_deferred_reply_tcp(void **state)
{
	struct deferred d = { .n = 0 };
	pthread_mutex_init(&d.mu, NULL);
	struct bus_rep *rep;
	struct bus_rep_opts ro = { .url = "tcp://127.0.0.1:0", .contexts = 16 };
	assert_int_equal(bus_rep_new(&ro, defer, &d, &rep), 0);
	uint16_t port = bus_rep_port(rep);
	assert_true(port > 0);
	pthread_t thr;
	pthread_create(&thr, NULL, answer, &d);
	char url[64];
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", port);
	struct sink s;
	sink_init(&s);
	struct bus_req *req;
	struct bus_req_opts qo = { .url = url, .contexts = 16 };
	assert_int_equal(bus_req_new(&qo, on_reply, &s, &req), 0);
	for (uint32_t i = 0; i < 16; i++)
		assert_int_equal(bus_req_send(req, i, "x", 1), 0);
	assert_int_equal(bus_req_send(req, 99, "x", 1), -EBUSY);
	pthread_mutex_lock(&d.mu);
	d.go = true; /* answers are held until now, so no context could free up before the check */
	pthread_mutex_unlock(&d.mu);
	assert_int_equal(wait_n(&s, 16, 10000), 0);
	assert_int_equal(s.errors, 0);
	assert_string_equal(s.last, "later");
	bus_req_free(req);
	pthread_mutex_lock(&d.mu);
	d.stop = true;
	pthread_mutex_unlock(&d.mu);
	pthread_join(thr, NULL);
	bus_rep_free(rep);
}

static void test_dial_before_listen(void **state)
{
	char url[128];
	url_ipc(url, sizeof(url), "late");
	struct sink s;
	sink_init(&s);
	struct bus_req *req;
	struct bus_req_opts qo = { .url = url, .contexts = 2, .timeout_ms = 8000, .reconnect_min_ms = 50,
				   .reconnect_max_ms = 200 };
	assert_int_equal(bus_req_new(&qo, on_reply, &s, &req), 0);
	assert_false(bus_req_connected(req));
	assert_int_equal(bus_req_send(req, 1, "early", 5), 0);
	usleep(300 * 1000);
	char peer[64] = "";
	struct bus_rep *rep;
	struct bus_rep_opts ro = { .url = url };
	assert_int_equal(bus_rep_new(&ro, echo, peer, &rep), 0);
	assert_int_equal(wait_n(&s, 1, 8000), 0);
	assert_int_equal(s.errors, 0);
	assert_string_equal(s.last, "ok:early");
	assert_string_equal(peer, "ipc");
	bus_req_free(req);
	bus_rep_free(rep);
}

static void test_timeout_and_cancel(void **state)
{
	char url[128];
	url_ipc(url, sizeof(url), "nobody");
	struct sink s;
	sink_init(&s);
	struct bus_req *req;
	struct bus_req_opts qo = { .url = url, .contexts = 2, .timeout_ms = 200 };
	assert_int_equal(bus_req_new(&qo, on_reply, &s, &req), 0);
	assert_int_equal(bus_req_send(req, 1, "a", 1), 0);
	assert_int_equal(wait_n(&s, 1, 3000), 0);
	assert_int_equal(s.errors, 1);
	assert_int_equal(s.last_err, ETIMEDOUT);
	/* in flight at free: the callback runs with -ECANCELED before free returns */
	struct bus_req_opts qo2 = { .url = url, .contexts = 1, .timeout_ms = 60000 };
	struct bus_req *req2;
	assert_int_equal(bus_req_new(&qo2, on_reply, &s, &req2), 0);
	assert_int_equal(bus_req_send(req2, 2, "b", 1), 0);
	bus_req_free(req2);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.last_err, ECANCELED);
	bus_req_free(req);
}

static void test_size_limits(void **state)
{
	char url[128];
	url_ipc(url, sizeof(url), "size");
	struct bus_rep *rep;
	struct bus_rep_opts ro = { .url = url, .max_recv_bytes = 4096 };
	assert_int_equal(bus_rep_new(&ro, echo, NULL, &rep), 0);
	struct sink s;
	sink_init(&s);
	struct bus_req *req;
	struct bus_req_opts qo = { .url = url, .timeout_ms = 2000, .max_send_bytes = 1 << 20,
				   .reconnect_min_ms = 50, .reconnect_max_ms = 200 };
	assert_int_equal(bus_req_new(&qo, on_reply, &s, &req), 0);
	static char big[(1 << 20) + 1];
	assert_int_equal(bus_req_send(req, 1, big, sizeof(big)), -EMSGSIZE);
	/* under our limit but over the listener's: nng drops it, we only see the timeout */
	assert_int_equal(bus_req_send(req, 2, big, 8192), 0);
	assert_int_equal(wait_n(&s, 1, 10000), 0);
	assert_int_equal(s.errors, 1);
	assert_int_equal(s.last_err, ETIMEDOUT);
	/* and the listener keeps serving (nng closed that connection: wait for the redial) */
	for (int i = 0; i < 500 && !bus_req_connected(req); i++)
		usleep(10000);
	assert_int_equal(bus_req_send(req, 3, "small", 5), 0);
	assert_int_equal(wait_n(&s, 2, 10000), 0);
	assert_int_equal(s.errors, 1);
	bus_req_free(req);
	bus_rep_free(rep);
}

static void test_bad_options(void **state)
{
	struct sink s;
	sink_init(&s);
	struct bus_req *req;
	struct bus_req_opts qo = { .url = "bogus://x" };
	assert_true(bus_req_new(&qo, on_reply, &s, &req) < 0);
	struct bus_req_opts tls = { .url = "tls+tcp://127.0.0.1:1" }; /* no CA: refused */
	assert_int_equal(bus_req_new(&tls, on_reply, &s, &req), -EINVAL);
	struct bus_req_opts nofile = { .url = "tls+tcp://127.0.0.1:1", .tls.ca_file = "/nonexistent/ca.pem" };
	assert_int_equal(bus_req_new(&nofile, on_reply, &s, &req), -ENOENT);
	struct bus_rep *rep;
	struct bus_rep_opts ro = { .url = "tls+tcp://127.0.0.1:0" }; /* no certificate */
	assert_int_equal(bus_rep_new(&ro, echo, NULL, &rep), -EINVAL);
	struct bus_rep_opts a = { .url = "tcp://127.0.0.1:0" };
	assert_int_equal(bus_rep_new(&a, echo, NULL, &rep), 0);
	char url[64];
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", bus_rep_port(rep));
	struct bus_rep *rep2;
	struct bus_rep_opts b = { .url = url };
	assert_int_equal(bus_rep_new(&b, echo, NULL, &rep2), -EADDRINUSE);
	bus_rep_free(rep);
	assert_int_equal(bus_errno(NNG_ETIMEDOUT), -ETIMEDOUT);
	assert_int_equal(bus_errno(NNG_ESYSERR | EPIPE), -EPIPE);
	assert_int_equal(bus_errno(0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_echo_ipc),
		cmocka_unit_test(test_deferred_reply_tcp),
		cmocka_unit_test(test_dial_before_listen),
		cmocka_unit_test(test_timeout_and_cancel),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_bad_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
