/* Tests of common/rpc.c (the gRPC adapter) against itself over loopback. It lives here because
 * only the coordinator's and the agent's targets link gRPC. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rpc.h"

struct fix {
	struct rpc_server *srv;
	struct rpc_client *cli;
	pthread_mutex_t mu;
	struct rpc_stream *stream;
	atomic_int closed;
};

static void echo(void *arg, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	(void)arg;
	if (len == 3 && memcmp(req, "bad", 3) == 0) {
		rep->code = RPC_INVALID_ARGUMENT;
		snprintf(rep->detail, sizeof(rep->detail), "bad request: %s", "bad");
		return;
	}
	rep->buf = malloc(len + 1);
	memcpy(rep->buf, req, len);
	rep->buf[len] = '!';
	rep->len = len + 1;
}

static void watch_start(void *arg, struct rpc_stream *s, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	struct fix *f = arg;
	if (len == 0) {
		rep->code = RPC_INVALID_ARGUMENT;
		snprintf(rep->detail, sizeof(rep->detail), "empty");
		return;
	}
	rpc_stream_ref(s);
	pthread_mutex_lock(&f->mu);
	f->stream = s;
	pthread_mutex_unlock(&f->mu);
}

static void watch_close(void *arg, struct rpc_stream *s)
{
	struct fix *f = arg;
	pthread_mutex_lock(&f->mu);
	if (f->stream == s)
		f->stream = NULL;
	pthread_mutex_unlock(&f->mu);
	rpc_stream_unref(s);
	atomic_fetch_add(&f->closed, 1);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	struct rpc_method m[] = {
		{ .name = "/t.T/Echo", .unary = echo, .arg = f },
		{ .name = "/t.T/Watch", .stream = watch_start, .close = watch_close, .arg = f },
	};
	struct rpc_server_opts so = { .address = "127.0.0.1", .port = 0, .token = "s3cret", .methods = m, .nmethods = 2 };
	assert_int_equal(rpc_server_new(&so, &f->srv), 0);
	assert_true(rpc_server_port(f->srv) > 0);
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%u", rpc_server_port(f->srv));
	struct rpc_client_opts co = { .target = target, .token = "s3cret" };
	assert_int_equal(rpc_client_new(&co, &f->cli), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	rpc_client_free(f->cli);
	rpc_server_free(f->srv);
	pthread_mutex_destroy(&f->mu);
	free(f);
	return 0;
}

static void test_unary_ok(void **state)
{
	struct fix *f = *state;
	uint8_t *out = NULL;
	size_t n = 0;
	struct rpc_status st;
	assert_int_equal(rpc_call(f->cli, "/t.T/Echo", (const uint8_t *)"hi", 2, 2000, &out, &n, &st), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "hi!", 3);
	free(out);
}

static void test_unary_invalid(void **state)
{
	struct fix *f = *state;
	uint8_t *out = NULL;
	size_t n = 0;
	struct rpc_status st;
	assert_int_equal(rpc_call(f->cli, "/t.T/Echo", (const uint8_t *)"bad", 3, 2000, &out, &n, &st),
			 RPC_INVALID_ARGUMENT);
	assert_string_equal(st.detail, "bad request: bad");
}

static void test_unauthenticated(void **state)
{
	struct fix *f = *state;
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%u", rpc_server_port(f->srv));
	const char *toks[] = { NULL, "wrong", "s3cre" };
	for (int i = 0; i < 3; i++) {
		struct rpc_client *c = NULL;
		struct rpc_client_opts co = { .target = target, .token = toks[i] };
		assert_int_equal(rpc_client_new(&co, &c), 0);
		uint8_t *out = NULL;
		size_t n = 0;
		struct rpc_status st;
		assert_int_equal(rpc_call(c, "/t.T/Echo", (const uint8_t *)"hi", 2, 2000, &out, &n, &st),
				 RPC_UNAUTHENTICATED);
		rpc_client_free(c);
	}
	struct rpc_server_stats ss;
	rpc_server_get_stats(f->srv, &ss);
	assert_true(ss.unauthenticated >= 3);
}

static void test_unimplemented(void **state)
{
	struct fix *f = *state;
	uint8_t *out = NULL;
	size_t n = 0;
	struct rpc_status st;
	assert_int_equal(rpc_call(f->cli, "/t.T/Nope", (const uint8_t *)"x", 1, 2000, &out, &n, &st), RPC_UNIMPLEMENTED);
}

static struct rpc_stream *wait_stream(struct fix *f)
{
	for (int i = 0; i < 500; i++) {
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

static void test_stream_push(void **state)
{
	struct fix *f = *state;
	struct rpc_cstream *cs = NULL;
	assert_int_equal(rpc_cstream_open(f->cli, "/t.T/Watch", (const uint8_t *)"a", 1, 0, &cs), 0);
	struct rpc_stream *s = wait_stream(f);
	assert_non_null(s);
	char msg[16];
	for (int i = 0; i < 20; i++) {
		int n = snprintf(msg, sizeof(msg), "m%d", i);
		assert_int_equal(rpc_stream_send(s, (const uint8_t *)msg, (size_t)n), 0);
	}
	for (int i = 0; i < 20; i++) {
		uint8_t *b = NULL;
		size_t n = 0;
		assert_int_equal(rpc_cstream_next(cs, 5000, &b, &n), 1);
		int w = snprintf(msg, sizeof(msg), "m%d", i);
		assert_int_equal(n, (size_t)w);
		assert_memory_equal(b, msg, n);
		free(b);
	}
	uint8_t *b = NULL;
	size_t n = 0;
	assert_int_equal(rpc_cstream_next(cs, 100, &b, &n), -ETIMEDOUT);
	rpc_stream_finish(s, RPC_FAILED_PRECONDITION, "replaced");
	assert_int_equal(rpc_cstream_next(cs, 5000, &b, &n), 0);
	struct rpc_status st;
	rpc_cstream_status(cs, &st);
	assert_int_equal(st.code, RPC_FAILED_PRECONDITION);
	assert_string_equal(st.detail, "replaced");
	assert_int_equal(rpc_stream_send(s, (const uint8_t *)"x", 1), -EPIPE);
	rpc_stream_unref(s);
	rpc_cstream_free(cs);
	for (int i = 0; i < 300 && atomic_load(&f->closed) < 1; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&f->closed), 1);
}

static void test_stream_refused_and_cancel(void **state)
{
	struct fix *f = *state;
	struct rpc_cstream *cs = NULL;
	uint8_t *b = NULL;
	size_t n = 0;
	struct rpc_status st;
	assert_int_equal(rpc_cstream_open(f->cli, "/t.T/Watch", NULL, 0, 0, &cs), 0);
	assert_int_equal(rpc_cstream_next(cs, 5000, &b, &n), 0);
	rpc_cstream_status(cs, &st);
	assert_int_equal(st.code, RPC_INVALID_ARGUMENT);
	rpc_cstream_free(cs);
	/* client cancel: the server sees on_close */
	assert_int_equal(rpc_cstream_open(f->cli, "/t.T/Watch", (const uint8_t *)"a", 1, 0, &cs), 0);
	struct rpc_stream *s = wait_stream(f);
	assert_non_null(s);
	rpc_cstream_cancel(cs);
	assert_int_equal(rpc_cstream_next(cs, 5000, &b, &n), 0);
	rpc_cstream_free(cs);
	for (int i = 0; i < 300 && atomic_load(&f->closed) < 1; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&f->closed), 1);
	rpc_stream_unref(s);
}

/* A server freed with a stream in flight ends it with UNAVAILABLE and calls on_close. */
static void test_shutdown_in_flight(void **state)
{
	struct fix *f = *state;
	struct rpc_cstream *cs = NULL;
	assert_int_equal(rpc_cstream_open(f->cli, "/t.T/Watch", (const uint8_t *)"a", 1, 0, &cs), 0);
	struct rpc_stream *s = wait_stream(f);
	assert_non_null(s);
	assert_int_equal(rpc_stream_send(s, (const uint8_t *)"x", 1), 0);
	rpc_stream_unref(s);
	uint8_t *b = NULL;
	size_t n = 0;
	assert_int_equal(rpc_cstream_next(cs, 5000, &b, &n), 1);
	free(b);
	f->srv = rpc_server_free(f->srv);
	assert_int_equal(atomic_load(&f->closed), 1);
	assert_int_equal(rpc_cstream_next(cs, 5000, &b, &n), 0);
	struct rpc_status st;
	rpc_cstream_status(cs, &st);
	assert_int_not_equal(st.code, RPC_OK);
	rpc_cstream_free(cs);
}

static void test_bad_options(void **state)
{
	(void)state;
	struct rpc_server *s = NULL;
	struct rpc_method m = { .name = "/t.T/Echo", .unary = echo };
	struct rpc_server_opts so = { .address = "127.0.0.1", .methods = &m, .nmethods = 1,
				      .tls_cert_file = "/nonexistent.pem", .tls_key_file = "/nonexistent.key" };
	assert_int_equal(rpc_server_new(&so, &s), -ENOENT);
	so.tls_cert_file = NULL;
	so.nmethods = 0;
	assert_int_equal(rpc_server_new(&so, &s), -EINVAL);
	assert_null(rpc_server_free(NULL));
	assert_null(rpc_client_free(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unary_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unary_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unauthenticated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unimplemented, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_push, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_refused_and_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_in_flight, setup, teardown),
		cmocka_unit_test(test_bad_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
