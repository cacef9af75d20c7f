/* Tests of fleet.c against a fake coordinator built on rpc.h: commands pushed on Watch reach
 * the apply callback and their results come back on Report; the client reconnects after the
 * coordinator goes away and comes back on the same port; fleet_free ends promptly. */
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

#include "fleet.h"
#include "fleet.pb-c.h"
#include "rpc.h"

struct fake {
	struct rpc_server *srv;
	uint16_t port;
	pthread_mutex_t mu;
	struct rpc_stream *stream;
	char watch_agent[64], watch_label[64];
	int reports, report_ok;
	uint64_t report_id;
	char report_err[64];
	int applied;
	uint64_t applied_ttl;
	int applied_mode;
};

static void on_watch(void *arg, struct rpc_stream *s, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	struct fake *f = arg;
	Ms__V1__WatchRequest *w = ms__v1__watch_request__unpack(NULL, len, req);
	if (!w) {
		rep->code = RPC_INVALID_ARGUMENT;
		return;
	}
	pthread_mutex_lock(&f->mu);
	snprintf(f->watch_agent, sizeof(f->watch_agent), "%s", w->agent_id);
	if (w->n_labels)
		snprintf(f->watch_label, sizeof(f->watch_label), "%s=%s", w->labels[0]->key, w->labels[0]->value);
	rpc_stream_ref(s);
	if (f->stream)
		rpc_stream_unref(f->stream);
	f->stream = s;
	pthread_mutex_unlock(&f->mu);
	ms__v1__watch_request__free_unpacked(w, NULL);
}

static void on_close(void *arg, struct rpc_stream *s)
{
	struct fake *f = arg;
	pthread_mutex_lock(&f->mu);
	if (f->stream == s) {
		f->stream = NULL;
		rpc_stream_unref(s);
	}
	pthread_mutex_unlock(&f->mu);
}

static void on_report(void *arg, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	struct fake *f = arg;
	Ms__V1__CommandResult *r = ms__v1__command_result__unpack(NULL, len, req);
	if (!r) {
		rep->code = RPC_INVALID_ARGUMENT;
		return;
	}
	pthread_mutex_lock(&f->mu);
	f->reports++;
	f->report_ok = r->ok;
	f->report_id = r->command_id;
	snprintf(f->report_err, sizeof(f->report_err), "%s", r->error);
	pthread_mutex_unlock(&f->mu);
	ms__v1__command_result__free_unpacked(r, NULL);
}

static void start_server(struct fake *f)
{
	struct rpc_method m[] = {
		{ .name = "/ms.v1.AgentControl/Watch", .stream = on_watch, .close = on_close, .arg = f },
		{ .name = "/ms.v1.AgentControl/Report", .unary = on_report, .arg = f },
	};
	struct rpc_server_opts so = { .address = "127.0.0.1", .port = f->port, .token = "tok", .methods = m, .nmethods = 2 };
	int r = -1;
	for (int i = 0; i < 50 && r < 0; i++) /* the port of a just-freed server may linger briefly */
		if ((r = rpc_server_new(&so, &f->srv)) < 0)
			usleep(100000);
	assert_int_equal(r, 0);
	f->port = rpc_server_port(f->srv);
}

static void stop_server(struct fake *f)
{
	f->srv = rpc_server_free(f->srv);
}

static int apply(void *arg, const struct Ms__V1__Command *c, char *err, size_t len)
{
	struct fake *f = arg;
	pthread_mutex_lock(&f->mu);
	f->applied++;
	f->applied_ttl = c->ttl_ms;
	f->applied_mode = c->body_case == MS__V1__COMMAND__BODY_MODE ? (int)c->mode : -1;
	pthread_mutex_unlock(&f->mu);
	if (c->body_case != MS__V1__COMMAND__BODY_MODE) {
		snprintf(err, len, "only modes here");
		return -EOPNOTSUPP;
	}
	return 0;
}

static struct rpc_stream *wait_stream(struct fake *f)
{
	for (int i = 0; i < 1000; i++) {
		pthread_mutex_lock(&f->mu);
		struct rpc_stream *s = f->stream;
		if (s)
			rpc_stream_ref(s);
		pthread_mutex_unlock(&f->mu);
		if (s)
			return s;
		usleep(10000);
	}
	return NULL;
}

static int wait_reports(struct fake *f, int n)
{
	for (int i = 0; i < 1000; i++) {
		pthread_mutex_lock(&f->mu);
		int k = f->reports;
		pthread_mutex_unlock(&f->mu);
		if (k >= n)
			return k;
		usleep(10000);
	}
	return -1;
}

static void push(struct rpc_stream *s, uint64_t id, Ms__V1__Command *c)
{
	c->id = id;
	uint8_t buf[256];
	size_t n = ms__v1__command__pack(c, buf);
	assert_int_equal(rpc_stream_send(s, buf, n), 0);
}

static void test_push_report_reconnect(void **state)
{
	(void)state;
	struct fake f = { 0 };
	pthread_mutex_init(&f.mu, NULL);
	start_server(&f);
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%u", f.port);
	struct wire_label lab = { "role", "lb" };
	struct fleet_opts o = { .target = target, .token = "tok", .agent_id = "agent-1", .labels = &lab, .nlabels = 1,
				.backoff_min_ms = 50, .backoff_max_ms = 200, .apply = apply, .apply_arg = &f };
	struct fleet *fl = NULL;
	assert_int_equal(fleet_new(&o, &fl), 0);
	struct rpc_stream *s = wait_stream(&f);
	assert_non_null(s);
	assert_string_equal(f.watch_agent, "agent-1");
	assert_string_equal(f.watch_label, "role=lb");

	Ms__V1__Command c = MS__V1__COMMAND__INIT;
	c.body_case = MS__V1__COMMAND__BODY_MODE;
	c.mode = MS__V1__MODE_REQUEST__MODE_REQUEST_DIAGNOSTIC;
	c.ttl_ms = 30000;
	push(s, 7, &c);
	assert_int_equal(wait_reports(&f, 1), 1);
	assert_int_equal(f.report_id, 7);
	assert_true(f.report_ok);
	assert_int_equal(f.applied_mode, MS__V1__MODE_REQUEST__MODE_REQUEST_DIAGNOSTIC);
	assert_int_equal(f.applied_ttl, 30000);
	Ms__V1__Budgets b = MS__V1__BUDGETS__INIT;
	Ms__V1__Command c2 = MS__V1__COMMAND__INIT;
	c2.body_case = MS__V1__COMMAND__BODY_BUDGETS;
	c2.budgets = &b;
	push(s, 8, &c2);
	assert_int_equal(wait_reports(&f, 2), 2);
	assert_false(f.report_ok);
	assert_string_equal(f.report_err, "only modes here");
	assert_int_equal(rpc_stream_send(s, (const uint8_t *)"\xff\xff", 2), 0); /* garbage: counted, no report */
	rpc_stream_unref(s);
	struct fleet_stats st;
	for (int i = 0; i < 200; i++) {
		fleet_get_stats(fl, &st);
		if (st.bad)
			break;
		usleep(10000);
	}
	assert_int_equal(st.bad, 1);
	assert_true(st.connected);
	assert_int_equal(st.applied, 1);
	assert_int_equal(st.failed, 1);

	/* coordinator away, then back on the same port: the client comes back by itself */
	stop_server(&f);
	for (int i = 0; i < 300; i++) {
		fleet_get_stats(fl, &st);
		if (!st.connected)
			break;
		usleep(10000);
	}
	assert_false(st.connected);
	usleep(500000);
	start_server(&f);
	s = wait_stream(&f);
	assert_non_null(s);
	push(s, 9, &c);
	assert_int_equal(wait_reports(&f, 3), 3);
	assert_int_equal(f.report_id, 9);
	rpc_stream_unref(s);
	fleet_get_stats(fl, &st);
	assert_true(st.connects >= 2);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fl = fleet_free(fl);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 3);
	stop_server(&f);
	pthread_mutex_destroy(&f.mu);
}

static void test_bad_options(void **state)
{
	(void)state;
	struct fleet *fl = NULL;
	struct fleet_opts o = { .target = "127.0.0.1:1", .agent_id = "has space" };
	assert_int_equal(fleet_new(&o, &fl), -EINVAL);
	o.agent_id = "ok";
	o.target = "";
	assert_int_equal(fleet_new(&o, &fl), -EINVAL);
	assert_null(fleet_free(NULL));
	/* nobody listening: it keeps trying and stops promptly */
	o.target = "127.0.0.1:1";
	assert_int_equal(fleet_new(&o, &fl), 0);
	usleep(300000);
	struct fleet_stats st;
	fleet_get_stats(fl, &st);
	assert_false(st.connected);
	assert_int_equal(st.connects, 0);
	fleet_free(fl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_report_reconnect),
		cmocka_unit_test(test_bad_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
