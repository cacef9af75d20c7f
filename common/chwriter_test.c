/* chwriter_test: the batcher against an in-process fake ClickHouse HTTP endpoint whose answers
 * the test controls (ok, server error, malformed-data error, dropped connection): batching by
 * rows and by age, keep-alive, credentials, outage → spool → in-order replay, spool recovery
 * across restarts, no-spool waiting, poison data, memory bound, stop semantics, metrics, and
 * the password-file permission check. The real server is exercised by the integration tests. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chbatch.h"
#include "chhttp.h"
#include "chwriter.h"

enum fake_mode { FAKE_OK, FAKE_500, FAKE_POISON, FAKE_DROP };

#define FAKE_MAX_REQ 4096

struct fake {
	int lfd;
	uint16_t port;
	pthread_t thr;
	pthread_mutex_t mu;
	volatile int stop;
	enum fake_mode mode;
	uint32_t requests, connections;
	char auth[256];
	/* bodies of successful INSERTs, in arrival order, and their tables */
	uint8_t *bodies;
	size_t blen;
	char tables[FAKE_MAX_REQ][32];
	uint32_t ninserts;
};

static void fake_set(struct fake *f, enum fake_mode m)
{
	pthread_mutex_lock(&f->mu);
	f->mode = m;
	pthread_mutex_unlock(&f->mu);
}

static int read_request(int fd, char *hdr, size_t hcap, uint8_t **body, size_t *blen)
{
	size_t n = 0;
	while (n + 1 < hcap) {
		ssize_t r = read(fd, hdr + n, 1);
		if (r <= 0)
			return -1;
		n++;
		hdr[n] = 0;
		if (n >= 4 && memcmp(hdr + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	size_t cl = 0;
	for (char *p = hdr; (p = strchr(p, '\n')); p++)
		if (strncasecmp(p + 1, "Content-Length:", 15) == 0)
			cl = strtoul(p + 16, NULL, 10);
	*body = malloc(cl + 1);
	size_t got = 0;
	while (got < cl) {
		ssize_t r = read(fd, *body + got, cl - got);
		if (r <= 0) {
			free(*body);
			return -1;
		}
		got += (size_t)r;
	}
	*blen = cl;
	return 0;
}

static void serve(struct fake *f, int fd)
{
	char hdr[8192];
	uint8_t *body;
	size_t blen;
	while (!f->stop && read_request(fd, hdr, sizeof(hdr), &body, &blen) == 0) {
		pthread_mutex_lock(&f->mu);
		enum fake_mode m = f->mode;
		f->requests++;
		char *a = strcasestr(hdr, "\nAuthorization: ");
		if (a)
			snprintf(f->auth, sizeof(f->auth), "%.*s", (int)strcspn(a + 16, "\r"), a + 16);
		const char *text = "Ok.\n", *status = "200 OK";
		if (m == FAKE_OK && strstr(hdr, "INSERT%20INTO%20") && f->ninserts < FAKE_MAX_REQ) {
			const char *t = strstr(hdr, "INSERT%20INTO%20") + 16;
			snprintf(f->tables[f->ninserts++], 32, "%.*s", (int)strcspn(t, "%"), t);
			f->bodies = realloc(f->bodies, f->blen + blen + 1);
			memcpy(f->bodies + f->blen, body, blen);
			f->blen += blen;
		} else if (m == FAKE_500) {
			status = "500 Internal Server Error";
			text = "Code: 241, e.displayText() = DB::Exception: Memory limit exceeded\n";
		} else if (m == FAKE_POISON) {
			status = "500 Internal Server Error";
			text = "Code: 27, e.displayText() = DB::Exception: Cannot parse input\n";
		}
		pthread_mutex_unlock(&f->mu);
		free(body);
		if (m == FAKE_DROP)
			return;
		char resp[512];
		int rl = snprintf(resp, sizeof(resp), "HTTP/1.1 %s\r\nContent-Length: %zu\r\n\r\n%s", status,
				  strlen(text), text);
		if (write(fd, resp, (size_t)rl) != rl)
			return;
	}
}

struct conn_arg {
	struct fake *f;
	int fd;
};

static void *conn_main(void *arg)
{
	struct conn_arg *c = arg;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	serve(c->f, c->fd);
	close(c->fd);
	free(c);
	return NULL;
}

/* Accepts connections and serves each on its own thread (the writer uses several at once). */
static void *fake_main(void *arg)
{
	struct fake *f = arg;
	pthread_t th[256];
	int nth = 0;
	while (!f->stop) {
		struct pollfd p = { .fd = f->lfd, .events = POLLIN };
		if (poll(&p, 1, 20) <= 0)
			continue;
		int fd = accept(f->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&f->mu);
		f->connections++;
		pthread_mutex_unlock(&f->mu);
		struct conn_arg *c = malloc(sizeof(*c));
		c->f = f;
		c->fd = fd;
		if (nth < 256 && pthread_create(&th[nth], NULL, conn_main, c) == 0)
			nth++;
		else {
			close(fd);
			free(c);
		}
	}
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	return NULL;
}

static struct fake *fake_start(void)
{
	struct fake *f = calloc(1, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f->lfd, 16), 0);
	getsockname(f->lfd, (struct sockaddr *)&a, &al);
	f->port = ntohs(a.sin_port);
	pthread_create(&f->thr, NULL, fake_main, f);
	return f;
}

static void fake_stop(struct fake *f)
{
	f->stop = 1;
	pthread_join(f->thr, NULL);
	close(f->lfd);
	free(f->bodies);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static const struct chwriter_table tables[] = {
	{ "t_a", "x,y" },
	{ "t_b", "z" },
};

struct fixture {
	struct fake *f;
	char endpoint[64];
	char dir[64];
	char spool[80];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	fx->f = fake_start();
	snprintf(fx->endpoint, sizeof(fx->endpoint), "http://127.0.0.1:%u", fx->f->port);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/chwriter_test.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->spool, sizeof(fx->spool), "%s/spool", fx->dir);
	*state = fx;
	return 0;
}

static void rm_tree(const char *path)
{
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char p[512];
			snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
			if (e->d_type == DT_DIR)
				rm_tree(p);
			else
				unlink(p);
		}
		closedir(d);
	}
	rmdir(path);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	fake_stop(fx->f);
	rm_tree(fx->dir);
	free(fx);
	return 0;
}

static struct chwriter_opts base_opts(struct fixture *fx, bool spool)
{
	struct chwriter_opts o = {
		.endpoint = fx->endpoint,
		.database = "db",
		.tables = tables,
		.ntables = 2,
		.batch_rows = 1000,
		.flush_ms = 30,
		.spool_dir = spool ? fx->spool : NULL,
		.spool_max_bytes = 1 << 20,
		.timeout_ms = 2000,
		.attempts = 2,
		.retry_min_ms = 10,
		.retry_max_ms = 40,
		.poison_attempts = 2,
		.stop_timeout_ms = 300,
	};
	return o;
}

/* A unit with n rows of table 0 (x u32 = first+i, y u8) and one row of table 1 (z u64). */
static struct chwriter_unit *make_unit(uint32_t first, uint32_t n)
{
	struct chwriter_unit *u;
	assert_int_equal(chwriter_unit_new(0, &u), 0);
	for (uint32_t i = 0; i < n; i++) {
		rowbinary_u32(&u->data[0], first + i);
		rowbinary_u8(&u->data[0], 7);
	}
	u->rows[0] = n;
	rowbinary_u64(&u->data[1], first);
	u->rows[1] = 1;
	return u;
}

struct done_log {
	pthread_mutex_t mu;
	int status[256];
	int n;
};

static void on_done(void *arg, int status)
{
	struct done_log *d = arg;
	pthread_mutex_lock(&d->mu);
	if (d->n < 256)
		d->status[d->n++] = status;
	pthread_mutex_unlock(&d->mu);
}

/* Values of table t_a in the fake's bodies, in order (5-byte rows of t_a only). */
static uint32_t collect_a(struct fake *f, uint32_t *out, uint32_t max)
{
	uint32_t n = 0;
	size_t off = 0;
	pthread_mutex_lock(&f->mu);
	/* bodies alternate by table; t_b rows are 8 bytes: walk using the table log is not
	 * possible without sizes, so tests that read values use only table t_a */
	while (off + 5 <= f->blen && n < max) {
		out[n++] = (uint32_t)f->bodies[off] | (uint32_t)f->bodies[off + 1] << 8 |
			   (uint32_t)f->bodies[off + 2] << 16 | (uint32_t)f->bodies[off + 3] << 24;
		off += 5;
	}
	pthread_mutex_unlock(&f->mu);
	return n;
}

static struct chwriter_unit *make_a_only(uint32_t first, uint32_t n)
{
	struct chwriter_unit *u = make_unit(first, n);
	rowbinary_reset(&u->data[1]);
	u->rows[1] = 0;
	return u;
}

static void test_batches_by_rows_and_age(void **state)
{
	struct fixture *fx = *state;
	struct chwriter_opts o = base_opts(fx, false);
	o.batch_rows = 10;
	o.flush_ms = 60000; /* only the row count can seal */
	struct chwriter *w;
	assert_int_equal(chwriter_new(&o, &w), 0);
	for (uint32_t i = 0; i < 4; i++) {
		struct chwriter_unit *u = make_a_only(i * 5, 5);
		assert_int_equal(chwriter_submit(w, &u, NULL, NULL), 0);
		assert_null(u);
	}
	/* 20 rows: two rounds of 10 sealed by count, nothing left open */
	for (int i = 0; i < 200 && fx->f->ninserts < 2; i++)
		usleep(10000);
	assert_int_equal(fx->f->ninserts, 2);
	uint32_t v[64];
	assert_int_equal(collect_a(fx->f, v, 64), 20);
	for (uint32_t i = 0; i < 20; i++)
		assert_int_equal(v[i], i);
	chwriter_free(w);

	/* age: one small unit goes out after flush_ms */
	o.batch_rows = 1000;
	o.flush_ms = 30;
	assert_int_equal(chwriter_new(&o, &w), 0);
	struct chwriter_unit *u = make_unit(100, 1);
	assert_int_equal(chwriter_submit_wait(w, &u, 5000), CHWRITER_INSERTED);
	assert_int_equal(fx->f->ninserts, 4); /* t_a and t_b */
	/* the two tables go out concurrently: either order */
	assert_true((!strcmp(fx->f->tables[2], "db.t_a") && !strcmp(fx->f->tables[3], "db.t_b")) ||
		    (!strcmp(fx->f->tables[2], "db.t_b") && !strcmp(fx->f->tables[3], "db.t_a")));
	struct chwriter_stats st;
	chwriter_stats(w, &st);
	assert_int_equal(st.t[0].rows_inserted, 1);
	assert_int_equal(st.t[1].rows_inserted, 1);
	assert_int_equal(st.units_inserted, 1);
	assert_int_equal(st.pending_rows, 0);
	assert_true(st.up);
	/* the finished unit comes back, empty, with its buffers still allocated (flush: the writer
	 * recycles a unit after its done callback) */
	assert_int_equal(chwriter_flush(w, 5000), 0);
	struct chwriter_unit *again;
	assert_int_equal(chwriter_unit_take(w, &again), 0);
	assert_true(again->data[0].cap > 0);
	assert_int_equal(again->data[0].len, 0);
	assert_int_equal(again->rows[0], 0);
	assert_null(again->done);
	chwriter_unit_free(again);
	chwriter_free(w);
}

static void test_keepalive_and_credentials(void **state)
{
	struct fixture *fx = *state;
	struct chwriter_opts o = base_opts(fx, false);
	o.user = "ms";
	o.password = "s3cret";
	struct chwriter *w;
	assert_int_equal(chwriter_new(&o, &w), 0);
	for (uint32_t i = 0; i < 5; i++) {
		struct chwriter_unit *u = make_unit(i, 3);
		assert_int_equal(chwriter_submit_wait(w, &u, 5000), CHWRITER_INSERTED);
	}
	chwriter_free(w);
	assert_int_equal(fx->f->ninserts, 10);
	assert_true(fx->f->connections <= 2); /* two keep-alive connections (parallel) for 10 inserts */
	assert_string_equal(fx->f->auth, "Basic bXM6czNjcmV0"); /* base64("ms:s3cret") */
}

static void test_outage_spools_then_replays_in_order(void **state)
{
	struct fixture *fx = *state;
	struct done_log d = { .mu = PTHREAD_MUTEX_INITIALIZER };
	fake_set(fx->f, FAKE_DROP);
	struct chwriter_opts o = base_opts(fx, true);
	struct chwriter *w;
	assert_int_equal(chwriter_new(&o, &w), 0);
	for (uint32_t i = 0; i < 6; i++) {
		struct chwriter_unit *u = make_a_only(i * 10, 10);
		assert_int_equal(chwriter_submit(w, &u, on_done, &d), 0);
		assert_int_equal(chwriter_flush(w, 5000), 0);
	}
	struct chwriter_stats st;
	chwriter_stats(w, &st);
	assert_int_equal(d.n, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(d.status[i], CHWRITER_SPOOLED);
	assert_true(st.outage);
	assert_int_equal(st.t[0].rows_spooled, 60);
	assert_true(st.spool_records >= 1);
	assert_int_equal(fx->f->ninserts, 0);
	/* the server returns with errors first, then fine: replay keeps the order */
	fake_set(fx->f, FAKE_500);
	usleep(100000);
	fake_set(fx->f, FAKE_OK);
	struct chwriter_unit *u = make_a_only(60, 10); /* newer data waits behind the spool */
	assert_true(chwriter_submit_wait(w, &u, 5000) >= 0);
	for (int i = 0; i < 500; i++) {
		chwriter_stats(w, &st);
		if (st.spool_records == 0 && !st.outage)
			break;
		usleep(10000);
	}
	assert_int_equal(st.spool_records, 0);
	assert_false(st.outage);
	assert_int_equal(chwriter_flush(w, 5000), 0);
	uint32_t v[128];
	assert_int_equal(collect_a(fx->f, v, 128), 70);
	for (uint32_t i = 0; i < 70; i++)
		assert_int_equal(v[i], i);
	chwriter_stats(w, &st);
	assert_int_equal(st.t[0].rows_inserted, 70);
	assert_true(st.t[0].rows_replayed >= 60);
	assert_int_equal(st.t[0].rows_failed, 0);
	chwriter_free(w);
}

static void test_spool_survives_restart(void **state)
{
	struct fixture *fx = *state;
	fake_set(fx->f, FAKE_500);
	struct chwriter_opts o = base_opts(fx, true);
	struct chwriter *w;
	assert_int_equal(chwriter_new(&o, &w), 0);
	struct chwriter_unit *u = make_a_only(0, 25);
	assert_int_equal(chwriter_submit_wait(w, &u, 5000), CHWRITER_SPOOLED);
	chwriter_free(w); /* stops with the record still on disk */
	fake_set(fx->f, FAKE_OK);
	assert_int_equal(chwriter_new(&o, &w), 0);
	struct chwriter_stats st;
	for (int i = 0; i < 500; i++) {
		chwriter_stats(w, &st);
		if (st.spool_records == 0 && st.t[0].rows_inserted == 25)
			break;
		usleep(10000);
	}
	assert_int_equal(st.t[0].rows_replayed, 25);
	uint32_t v[32];
	assert_int_equal(collect_a(fx->f, v, 32), 25);
	chwriter_free(w);
}

static void test_no_spool_waits_in_memory(void **state)
{
	struct fixture *fx = *state;
	struct done_log d = { .mu = PTHREAD_MUTEX_INITIALIZER };
	fake_set(fx->f, FAKE_DROP);
	struct chwriter_opts o = base_opts(fx, false);
	o.max_pending_bytes = 200;
	struct chwriter *w;
	assert_int_equal(chwriter_new(&o, &w), 0);
	struct chwriter_unit *u = make_a_only(0, 20); /* 100 bytes */
	assert_int_equal(chwriter_submit(w, &u, on_done, &d), 0);
	u = make_a_only(20, 20);
	assert_int_equal(chwriter_submit(w, &u, on_done, &d), 0);
	u = make_a_only(40, 20);
	assert_int_equal(chwriter_submit(w, &u, on_done, &d), -EAGAIN); /* memory bound */
	assert_non_null(u);
	chwriter_unit_free(u);
	usleep(200000);
	assert_int_equal(d.n, 0); /* not durable anywhere: no done yet */
	fake_set(fx->f, FAKE_OK);
	assert_int_equal(chwriter_flush(w, 5000), 0);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.status[0], CHWRITER_INSERTED);
	struct chwriter_stats st;
	chwriter_stats(w, &st);
	assert_int_equal(st.units_rejected, 1);
	assert_int_equal(st.t[0].rows_inserted, 40);
	chwriter_free(w);

	/* stopping with the server away and no spool: done says not durable */
	fake_set(fx->f, FAKE_DROP);
	d.n = 0;
	assert_int_equal(chwriter_new(&o, &w), 0);
	u = make_a_only(0, 5);
	assert_int_equal(chwriter_submit(w, &u, on_done, &d), 0);
	chwriter_free(w);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.status[0], -ETIMEDOUT);
}

static void test_poison_is_dropped_and_counted(void **state)
{
	struct fixture *fx = *state;
	fake_set(fx->f, FAKE_POISON);
	struct chwriter_opts o = base_opts(fx, true);
	struct chwriter *w;
	assert_int_equal(chwriter_new(&o, &w), 0);
	struct chwriter_unit *u = make_a_only(0, 4);
	assert_int_equal(chwriter_submit_wait(w, &u, 5000), CHWRITER_INSERTED);
	struct chwriter_stats st;
	chwriter_stats(w, &st);
	assert_int_equal(st.t[0].rows_failed, 4);
	assert_int_equal(st.t[0].rows_spooled, 0); /* never blocks the spool */
	assert_int_equal(st.spool_records, 0);
	assert_true(strstr(st.last_error, "Code: 27") != NULL);
	chwriter_free(w);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* A round of 1.2 MB is split into two INSERTs sent at once; spooled, the parts become one
 * section again and replay as one INSERT. Every row arrives exactly once either way. */
static void test_split_parallel(void **state)
{
	struct fixture *fx = *state;
	struct chwriter_opts o = base_opts(fx, true);
	o.batch_rows = 1000000;
	o.flush_ms = 100;
	o.parallel = 2;
	o.spool_max_bytes = 16 << 20;
	struct chwriter *w;
	uint32_t *v = malloc(300000 * sizeof(*v));
	for (int round = 0; round < 2; round++) {
		fake_set(fx->f, round == 0 ? FAKE_OK : FAKE_DROP);
		uint32_t before = fx->f->ninserts;
		assert_int_equal(chwriter_new(&o, &w), 0);
		for (uint32_t i = 0; i < 4; i++) {
			struct chwriter_unit *u = make_a_only(i * 60000, 60000);
			assert_int_equal(chwriter_submit(w, &u, NULL, NULL), 0);
		}
		assert_int_equal(chwriter_flush(w, 10000), 0);
		struct chwriter_stats st;
		chwriter_stats(w, &st);
		if (round == 0) {
			assert_int_equal(fx->f->ninserts - before, 2);
			assert_int_equal(st.t[0].inserts_ok, 2);
		} else {
			assert_int_equal(st.t[0].rows_spooled, 240000);
			assert_int_equal(st.spool_records, 1);
			fake_set(fx->f, FAKE_OK);
			for (int i = 0; i < 500 && (st.spool_records || st.t[0].rows_inserted < 240000); i++) {
				usleep(10000);
				chwriter_stats(w, &st);
			}
			assert_int_equal(fx->f->ninserts - before, 1);
		}
		assert_int_equal(st.t[0].rows_inserted, 240000);
		chwriter_free(w);
		uint32_t n = collect_a(fx->f, v, 300000);
		assert_int_equal(n, 240000);
		qsort(v, n, sizeof(*v), cmp_u32);
		for (uint32_t i = 0; i < n; i++)
			if (v[i] != i)
				fail_msg("row %u: %u", i, v[i]);
		pthread_mutex_lock(&fx->f->mu);
		fx->f->blen = 0;
		pthread_mutex_unlock(&fx->f->mu);
	}
	free(v);
}

/* Rounds sealed by size insert their big table at once and carry the small table's rows to
 * one merged INSERT at the flush age: fewer tiny parts, same rows, every unit done once. */
static void test_small_tables_deferred(void **state)
{
	struct fixture *fx = *state;
	struct done_log d = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct chwriter_opts o = base_opts(fx, true);
	o.batch_rows = 100;
	o.flush_ms = 400;
	o.parallel = 1;
	struct chwriter *w;
	assert_int_equal(chwriter_new(&o, &w), 0);
	for (uint32_t i = 0; i < 10; i++) {
		struct chwriter_unit *u = make_unit(i * 100, 100); /* 100 rows of t_a: a full round each */
		assert_int_equal(chwriter_submit(w, &u, on_done, &d), 0);
		usleep(10000);
	}
	assert_int_equal(chwriter_flush(w, 5000), 0);
	struct chwriter_stats st;
	chwriter_stats(w, &st);
	assert_int_equal(d.n, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(d.status[i], CHWRITER_INSERTED);
	assert_int_equal(st.t[0].rows_inserted, 1000);
	assert_int_equal(st.t[1].rows_inserted, 10);
	assert_int_equal(st.t[0].inserts_ok, 10);
	assert_true(st.t[1].inserts_ok < 5); /* merged: one INSERT per flush age, not per round */
	assert_int_equal(st.pending_rows, 0);

	/* an outage while rows are carried: they go to the spool with the rest, then replay */
	fake_set(fx->f, FAKE_DROP);
	d.n = 0;
	for (uint32_t i = 10; i < 14; i++) {
		struct chwriter_unit *u = make_unit(i * 100, 100);
		assert_int_equal(chwriter_submit(w, &u, on_done, &d), 0);
	}
	assert_int_equal(chwriter_flush(w, 5000), 0);
	assert_int_equal(d.n, 4);
	for (int i = 0; i < 4; i++)
		assert_true(d.status[i] >= 0);
	fake_set(fx->f, FAKE_OK);
	for (int i = 0; i < 500; i++) {
		chwriter_stats(w, &st);
		if (!st.spool_records && st.t[0].rows_inserted == 1400 && st.t[1].rows_inserted == 14)
			break;
		usleep(10000);
	}
	assert_int_equal(st.spool_records, 0);
	assert_int_equal(st.t[0].rows_inserted, 1400);
	assert_int_equal(st.t[1].rows_inserted, 14);
	chwriter_free(w);
}

static void test_rejects_bad_input(void **state)
{
	struct fixture *fx = *state;
	struct chwriter_opts o = base_opts(fx, false);
	struct chwriter *w;
	struct chwriter_table bad[] = { { "t; DROP", "x" } };
	o.tables = bad;
	o.ntables = 1;
	assert_int_equal(chwriter_new(&o, &w), -EINVAL);
	bad[0].name = "ok";
	bad[0].columns = "x,,y";
	assert_int_equal(chwriter_new(&o, &w), -EINVAL);
	o = base_opts(fx, false);
	o.database = "a-b";
	assert_int_equal(chwriter_new(&o, &w), -EINVAL);
	o = base_opts(fx, false);
	assert_int_equal(chwriter_new(&o, &w), 0);
	struct chwriter_unit *u = make_unit(0, 1);
	u->rows[5] = 1; /* table 5 does not exist */
	rowbinary_u8(&u->data[5], 1);
	assert_int_equal(chwriter_submit(w, &u, NULL, NULL), -EINVAL);
	chwriter_unit_reset(u);
	u->rows[0] = 2; /* rows without bytes */
	assert_int_equal(chwriter_submit(w, &u, NULL, NULL), -EINVAL);
	chwriter_unit_free(u);
	chwriter_free(w);
}

static void test_metrics_text(void **state)
{
	struct fixture *fx = *state;
	struct chwriter_opts o = base_opts(fx, true);
	struct chwriter *w;
	assert_int_equal(chwriter_new(&o, &w), 0);
	struct chwriter_unit *u = make_unit(0, 2);
	assert_int_equal(chwriter_submit_wait(w, &u, 5000), CHWRITER_INSERTED);
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	assert_int_equal(chwriter_metrics(w, "ms_coord_ch", &sb), 0);
	assert_non_null(strstr(sb.buf, "ms_coord_ch_rows_inserted_total{table=\"t_a\"} 2\n"));
	assert_non_null(strstr(sb.buf, "ms_coord_ch_rows_inserted_total{table=\"t_b\"} 1\n"));
	assert_non_null(strstr(sb.buf, "# TYPE ms_coord_ch_insert_duration_seconds histogram\n"));
	assert_non_null(strstr(sb.buf, "ms_coord_ch_insert_duration_seconds_count 2\n"));
	assert_non_null(strstr(sb.buf, "ms_coord_ch_spool_bytes "));
	assert_non_null(strstr(sb.buf, "ms_coord_ch_up 1\n"));
	strbuf_release(&sb);
	chwriter_free(w);
}

static void test_password_file(void **state)
{
	struct fixture *fx = *state;
	char p[128], buf[64];
	snprintf(p, sizeof(p), "%s/pw", fx->dir);
	int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(write(fd, "hunter2\nignored\n", 16) == 16);
	close(fd);
	assert_int_equal(chhttp_read_password_file(p, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "hunter2");
	chmod(p, 0644);
	assert_int_equal(chhttp_read_password_file(p, buf, sizeof(buf)), -EPERM);
	chmod(p, 0640);
	assert_int_equal(chhttp_read_password_file(p, buf, sizeof(buf)), 7);
	assert_int_equal(chhttp_read_password_file(p, buf, 4), -ENAMETOOLONG);
	assert_int_equal(chhttp_read_password_file(fx->dir, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(chhttp_read_password_file("/nonexistent/pw", buf, sizeof(buf)), -ENOENT);
	unlink(p);
}

static void test_chhttp_errors(void **state)
{
	struct fixture *fx = *state;
	struct chhttp *h;
	struct chhttp_opts ho = { .endpoint = fx->endpoint, .timeout_ms = 2000 };
	assert_int_equal(chhttp_new(&ho, &h), 0);
	assert_int_equal(chhttp_ping(h), 0);
	fake_set(fx->f, FAKE_500);
	struct strbuf sb;
	strbuf_init(&sb, 1024);
	assert_int_equal(chhttp_query(h, "SELECT 1", NULL, &sb), -EREMOTEIO);
	struct chhttp_error e;
	chhttp_last_error(h, &e);
	assert_false(e.transport);
	assert_int_equal(e.http_status, 500);
	assert_int_equal(e.ch_code, 241);
	fake_set(fx->f, FAKE_DROP);
	assert_true(chhttp_query(h, "SELECT 1", NULL, &sb) < 0);
	chhttp_last_error(h, &e);
	assert_true(e.transport);
	strbuf_release(&sb);
	chhttp_free(h);
	/* nothing listens on port 1 */
	ho.endpoint = "http://127.0.0.1:1";
	assert_int_equal(chhttp_new(&ho, &h), 0);
	assert_int_equal(chhttp_ping(h), -ECONNREFUSED);
	chhttp_free(h);
	assert_int_equal(chhttp_parse_code("Code: 60, e.displayText()", 25), 60);
	assert_int_equal(chhttp_parse_code("Oops", 4), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_batches_by_rows_and_age, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keepalive_and_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outage_spools_then_replays_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_survives_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_spool_waits_in_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poison_is_dropped_and_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_parallel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_tables_deferred, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejects_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_password_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chhttp_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
