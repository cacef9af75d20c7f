/* Tests of the uplink against an in-process fake coordinator (a bus REP listener that decodes
 * requests and acks them): delivery and acks, replay in order after an outage and after an
 * agent restart, both spool policies, re-Hello on UNKNOWN_AGENT, refusals, size limit, and
 * the seq store. */
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "seqstore.h"
#include "spool.h"
#include "uplink.h"
#include "wire.h"

#define MAXSEQ 4096

struct fake {
	pthread_mutex_t mu;
	struct bus_rep *rep;
	bool known;          /* a Hello was received */
	bool require_hello;  /* windows before a Hello get UNKNOWN_AGENT */
	uint64_t invalid_seq;
	uint32_t hellos, heartbeats, windows;
	uint64_t order[MAXSEQ]; /* seqs in arrival order */
	uint32_t norder;
	uint8_t count[MAXSEQ];  /* arrivals per seq - base */
	uint64_t base;
	bool hold;              /* windows are not answered until fake_release */
	struct bus_call *held[16];
	uint8_t held_ack[16][WIRE_ACK_MAX];
	size_t held_len[16];
	uint32_t nheld;
};

static void fake_handle(void *arg, struct bus_call *call, const void *data, size_t len)
{
	struct fake *f = arg;
	struct wire_request rq;
	struct wire_ack a = { .status = WIRE_ACK_OK, .coordinator_id = 7, .max_message_bytes = 1 << 20 };
	pthread_mutex_lock(&f->mu);
	if (wire_decode_request(data, len, &rq) < 0) {
		a.status = WIRE_ACK_INVALID;
	} else if (rq.kind == WIRE_KIND_HELLO) {
		f->known = true;
		f->hellos++;
	} else if (rq.kind == WIRE_KIND_HEARTBEAT) {
		f->heartbeats++;
	} else if (f->require_hello && !f->known) {
		a.status = WIRE_ACK_UNKNOWN_AGENT;
	} else {
		uint64_t s = rq.window->seq;
		a.seq = s;
		if (s == f->invalid_seq) {
			a.status = WIRE_ACK_INVALID;
		} else {
			f->windows++;
			if (f->norder < MAXSEQ)
				f->order[f->norder++] = s;
			if (s >= f->base && s - f->base < MAXSEQ)
				f->count[s - f->base]++;
		}
	}
	bool window = a.seq != 0;
	wire_request_release(&rq);
	uint8_t buf[WIRE_ACK_MAX];
	size_t n;
	assert_int_equal(wire_encode_ack(&a, buf, sizeof(buf), &n), 0);
	if (f->hold && window && f->nheld < 16) {
		memcpy(f->held_ack[f->nheld], buf, n);
		f->held_len[f->nheld] = n;
		f->held[f->nheld++] = call;
		pthread_mutex_unlock(&f->mu);
		return;
	}
	pthread_mutex_unlock(&f->mu);
	bus_call_reply(call, buf, n);
}

/* Answers the held windows and stops holding. */
static void fake_release(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	f->hold = false;
	for (uint32_t i = 0; i < f->nheld; i++)
		bus_call_reply(f->held[i], f->held_ack[i], f->held_len[i]);
	f->nheld = 0;
	pthread_mutex_unlock(&f->mu);
}

static void fake_start(struct fake *f, const char *url)
{
	struct bus_rep_opts o = { .url = url, .contexts = 8 };
	assert_int_equal(bus_rep_new(&o, fake_handle, f, &f->rep), 0);
}

static void fake_stop(struct fake *f)
{
	bus_rep_close(f->rep);
	f->rep = bus_rep_free(f->rep);
}

struct env {
	char dir[128], url[160];
	struct fake f;
	struct wire_hello hello;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/ms-uplink-test-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->url, sizeof(e->url), "ipc://%s/coord.ipc", e->dir);
	pthread_mutex_init(&e->f.mu, NULL);
	e->f.base = 1;
	snprintf(e->hello.agent_id, sizeof(e->hello.agent_id), "agent-a");
	*state = e;
	return 0;
}

static void rm_tree(const char *dir)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/spool", dir);
	struct stat st;
	if (stat(p, &st) == 0) {
		for (int i = 0; i < 100000; i++) { /* segment names are 12-digit numbers */
			char q[600];
			snprintf(q, sizeof(q), "%s/%012d.seg", p, i);
			unlink(q);
		}
		snprintf(p, sizeof(p), "%s/spool/state", dir);
		unlink(p);
		snprintf(p, sizeof(p), "%s/spool", dir);
		rmdir(p);
	}
	snprintf(p, sizeof(p), "%s/seq", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/coord.ipc", dir);
	unlink(p);
	rmdir(dir);
}

static int teardown(void **state)
{
	struct env *e = *state;
	if (e->f.rep)
		fake_stop(&e->f);
	rm_tree(e->dir);
	free(e);
	return 0;
}

static struct uplink *open_uplink(struct env *e, uint64_t spool_max, int policy)
{
	char sd[256];
	snprintf(sd, sizeof(sd), "%s/spool", e->dir);
	struct uplink_opts o = { .url = e->url, .spool_dir = sd, .spool_max_bytes = spool_max,
				 .spool_policy = policy, .contexts = 4, .timeout_ms = 1000,
				 .heartbeat_ms = 200, .backoff_max_ms = 200, .hello = &e->hello };
	struct uplink *u;
	assert_int_equal(uplink_new(&o, &u), 0);
	return u;
}

/* A small encoded window with the given seq. */
static void submit(struct uplink *u, uint64_t seq, uint32_t rows)
{
	struct wire_window *w;
	assert_int_equal(wire_window_new(rows, 0, 0, 0, &w), 0);
	snprintf(w->agent_id, sizeof(w->agent_id), "agent-a");
	w->seq = seq;
	w->nrows = rows;
	for (uint32_t i = 0; i < rows; i++) {
		w->rows[i].samples = 1 + i;
		w->rows[i].stack_id = WIRE_NO_STACK;
		w->rows[i].numa_node = -1;
		w->rows[i].pid = i;
	}
	uint8_t *buf;
	size_t len;
	assert_int_equal(wire_encode_window(w, &buf, &len), 0);
	uplink_submit(u, seq, buf, len);
	free(buf);
	wire_window_free(w);
}

static bool wait_for(struct uplink *u, uint64_t acked, uint64_t spool, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		struct uplink_stats st;
		uplink_stats(u, &st);
		if (st.acked >= acked && st.spool_windows == spool)
			return true;
		usleep(10000);
	}
	struct uplink_stats st;
	uplink_stats(u, &st);
	fprintf(stderr, "# stats: connected=%d sent=%lu acked=%lu dropped=%lu spool=%lu hellos=%lu replayed=%lu\n",
		st.connected, (unsigned long)st.sent, (unsigned long)st.acked, (unsigned long)st.dropped,
		(unsigned long)st.spool_windows, (unsigned long)st.hellos, (unsigned long)st.replayed);
	return false;
}

static void test_delivery(void **state)
{
	struct env *e = *state;
	fake_start(&e->f, e->url);
	struct uplink *u = open_uplink(e, 0, SPOOL_DROP_OLDEST);
	for (uint64_t s = 1; s <= 200; s++)
		submit(u, s, 8);
	assert_true(wait_for(u, 200, 0, 10000));
	struct uplink_stats st;
	uplink_stats(u, &st);
	assert_true(st.connected);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.hellos, 1);
	for (int i = 0; i < 200; i++)
		assert_int_equal(e->f.count[i], 1);
	usleep(500 * 1000); /* idle: heartbeats flow */
	assert_true(e->f.heartbeats >= 1);
	uplink_free(u, 1000);
}

static void test_outage_replay_in_order(void **state)
{
	struct env *e = *state;
	struct uplink *u = open_uplink(e, 0, SPOOL_DROP_OLDEST);
	for (uint64_t s = 1; s <= 50; s++)
		submit(u, s, 4);
	struct uplink_stats st;
	uplink_stats(u, &st);
	assert_int_equal(st.spool_windows, 50);
	assert_false(st.connected);
	fake_start(&e->f, e->url);
	assert_true(wait_for(u, 50, 0, 15000));
	uplink_stats(u, &st);
	assert_int_equal(st.dropped, 0);
	for (int i = 0; i < 50; i++)
		assert_true(e->f.count[i] >= 1);
	uplink_free(u, 0);
}

static void test_restart_replays_from_disk(void **state)
{
	struct env *e = *state;
	struct uplink *u = open_uplink(e, 0, SPOOL_DROP_OLDEST);
	for (uint64_t s = 1; s <= 30; s++)
		submit(u, s, 4);
	uplink_free(u, 0); /* nobody listening: all 30 stay in the spool */
	u = open_uplink(e, 0, SPOOL_DROP_OLDEST);
	struct uplink_stats st;
	uplink_stats(u, &st);
	for (uint64_t s = 31; s <= 40; s++)
		submit(u, s, 4);
	fake_start(&e->f, e->url);
	assert_true(wait_for(u, 40, 0, 15000));
	uplink_stats(u, &st);
	assert_true(st.replayed >= 30);
	/* the disk backlog goes one at a time, in order, before the newer windows */
	for (uint32_t i = 0; i < 30; i++)
		assert_int_equal(e->f.order[i], i + 1);
	for (int i = 0; i < 40; i++)
		assert_int_equal(e->f.count[i], 1);
	uplink_free(u, 0);
}

static void test_drop_newest_counts(void **state)
{
	struct env *e = *state;
	struct uplink *u = open_uplink(e, 8192, SPOOL_DROP_NEWEST);
	for (uint64_t s = 1; s <= 100; s++)
		submit(u, s, 64);
	struct uplink_stats st;
	uplink_stats(u, &st);
	assert_true(st.dropped > 0);
	assert_int_equal(st.dropped + st.spool_windows, 100);
	uint64_t kept = st.spool_windows;
	fake_start(&e->f, e->url);
	assert_true(wait_for(u, kept, 0, 15000));
	/* drop-newest keeps the oldest */
	assert_int_equal(e->f.count[0], 1);
	uplink_free(u, 0);
}

static void test_drop_oldest_counts(void **state)
{
	struct env *e = *state;
	struct uplink *u = open_uplink(e, 8192, SPOOL_DROP_OLDEST);
	for (uint64_t s = 1; s <= 100; s++)
		submit(u, s, 64);
	usleep(200 * 1000);
	struct uplink_stats st;
	uplink_stats(u, &st);
	assert_true(st.dropped > 0);
	assert_int_equal(st.dropped + st.spool_windows, 100);
	uint64_t kept = st.spool_windows;
	fake_start(&e->f, e->url);
	assert_true(wait_for(u, kept, 0, 15000));
	assert_int_equal(e->f.count[99], 1); /* drop-oldest keeps the newest */
	assert_int_equal(e->f.count[0], 0);
	uplink_free(u, 0);
}

/* Windows the drop-oldest policy deletes while they are in flight may still be delivered: the
 * reply decides, so dropped counts exactly the windows that never arrived. */
static void test_drop_oldest_inflight_delivered(void **state)
{
	struct env *e = *state;
	e->f.hold = true;
	fake_start(&e->f, e->url);
	struct uplink *u = open_uplink(e, 8192, SPOOL_DROP_OLDEST);
	for (uint64_t s = 1; s <= 4; s++)
		submit(u, s, 64);
	for (int i = 0; i < 500; i++) { /* all four in flight, held by the fake */
		pthread_mutex_lock(&e->f.mu);
		uint32_t n = e->f.nheld;
		pthread_mutex_unlock(&e->f.mu);
		if (n == 4)
			break;
		usleep(2000);
	}
	assert_int_equal(e->f.nheld, 4);
	for (uint64_t s = 5; s <= 100; s++) /* the policy deletes the oldest, 1..4 included */
		submit(u, s, 64);
	usleep(100 * 1000);
	fake_release(&e->f);
	struct uplink_stats st;
	for (int i = 0; i < 1000; i++) {
		uplink_stats(u, &st);
		if (st.spool_windows == 0 && st.acked + st.dropped >= 100)
			break;
		usleep(10000);
	}
	uint32_t got = 0;
	for (int i = 0; i < 100; i++)
		got += e->f.count[i] > 0;
	for (int i = 0; i < 4; i++)
		assert_int_equal(e->f.count[i], 1); /* delivered although deleted from the spool */
	assert_true(st.dropped > 0);
	assert_int_equal(got + st.dropped, 100);
	assert_int_equal(st.acked, got);
	uplink_free(u, 0);
}

static void test_unknown_agent_rehello_and_invalid(void **state)
{
	struct env *e = *state;
	e->f.require_hello = true;
	e->f.invalid_seq = 5;
	fake_start(&e->f, e->url);
	struct uplink *u = open_uplink(e, 0, SPOOL_DROP_OLDEST);
	for (uint64_t s = 1; s <= 10; s++)
		submit(u, s, 4);
	assert_true(wait_for(u, 9, 0, 10000));
	/* the coordinator forgets us (restart): the next windows bring a new Hello */
	pthread_mutex_lock(&e->f.mu);
	e->f.known = false;
	pthread_mutex_unlock(&e->f.mu);
	for (uint64_t s = 11; s <= 20; s++)
		submit(u, s, 4);
	assert_true(wait_for(u, 19, 0, 10000));
	struct uplink_stats st;
	uplink_stats(u, &st);
	assert_int_equal(st.rejected, 1);
	assert_int_equal(st.dropped, 1);
	assert_true(e->f.hellos >= 2);
	assert_int_equal(e->f.count[4], 0);
	uplink_free(u, 0);
}

static void test_oversize(void **state)
{
	struct env *e = *state;
	char sd[256];
	snprintf(sd, sizeof(sd), "%s/spool", e->dir);
	struct uplink_opts o = { .url = e->url, .spool_dir = sd, .max_message_bytes = 4096, .hello = &e->hello };
	struct uplink *u;
	assert_int_equal(uplink_new(&o, &u), 0);
	uint8_t big[8192] = { 0 };
	assert_int_equal(uplink_submit(u, 1, big, sizeof(big)), -EMSGSIZE);
	struct uplink_stats st;
	uplink_stats(u, &st);
	assert_int_equal(st.oversize, 1);
	assert_int_equal(st.dropped, 1);
	assert_int_equal(st.spool_windows, 0);
	uplink_free(u, 0);
	struct wire_hello bad = { .agent_id = "has space" };
	o.hello = &bad;
	assert_int_equal(uplink_new(&o, &u), -EINVAL);
}

static void test_seqstore(void **state)
{
	struct env *e = *state;
	struct seqstore *s;
	bool repaired = true;
	assert_int_equal(seqstore_open(e->dir, &s, &repaired), 0);
	assert_false(repaired);
	uint64_t first = seqstore_first(s);
	assert_true(first > 1000000000000000ull); /* the clock term: µs since 1970 */
	assert_int_equal(seqstore_limit(s), first + SEQSTORE_SLACK);
	assert_int_equal(seqstore_advance(s, first + 10), 0);
	assert_int_equal(seqstore_limit(s), first + SEQSTORE_SLACK);
	assert_int_equal(seqstore_advance(s, first + SEQSTORE_SLACK), 0);
	uint64_t lim = seqstore_limit(s);
	assert_int_equal(lim, first + 2 * SEQSTORE_SLACK);
	seqstore_free(s);
	/* a limit far in the future (clock stepped back) wins over the clock */
	assert_int_equal(seqstore_open(e->dir, &s, NULL), 0);
	assert_true(seqstore_first(s) >= lim);
	assert_int_equal(seqstore_advance(s, seqstore_first(s) + 100000000000ull), 0);
	uint64_t far = seqstore_limit(s);
	seqstore_free(s);
	assert_int_equal(seqstore_open(e->dir, &s, NULL), 0);
	assert_int_equal(seqstore_first(s), far);
	seqstore_free(s);
	/* a corrupt file is replaced, and the clock still gives a fresh start */
	char p[256];
	snprintf(p, sizeof(p), "%s/seq", e->dir);
	FILE *f = fopen(p, "w");
	fputs("garbage!", f);
	fclose(f);
	assert_int_equal(seqstore_open(e->dir, &s, &repaired), 0);
	assert_true(repaired);
	assert_true(seqstore_first(s) >= first);
	seqstore_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delivery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outage_replay_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_replays_from_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_newest_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_oldest_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_oldest_inflight_delivered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_agent_rehello_and_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seqstore, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
