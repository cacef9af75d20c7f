/* Tests of the fleet wire codec: window round trips (every column and dictionary), bytes per
 * rollup row, validation of hostile messages, requests, hellos and acks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms.pb-c.h"
#include "wire.h"

static void tuple4(struct ms_flow_tuple *t, uint32_t i, uint8_t dir)
{
	memset(t, 0, sizeof(*t));
	t->saddr[10] = t->saddr[11] = t->daddr[10] = t->daddr[11] = 0xff;
	t->saddr[12] = 10, t->saddr[13] = 0, t->saddr[14] = (uint8_t)(i >> 8), t->saddr[15] = (uint8_t)i;
	t->daddr[12] = 10, t->daddr[13] = 1, t->daddr[14] = 0, t->daddr[15] = 1;
	t->sport = (uint16_t)(30000 + i);
	t->dport = 443;
	t->family = MS_FAMILY_V4;
	t->proto = 6;
	t->dir = dir;
	t->ifindex = 2;
	t->netns = 4026531840u;
}

/* A window shaped like the synthetic source's: nflows flows x nfuncs functions, one event. */
static struct wire_window *make_window(uint32_t nflows, uint32_t nfuncs, uint32_t nrows)
{
	struct wire_window *w;
	assert_int_equal(wire_window_new(nrows, nflows, nfuncs, 2, &w), 0);
	snprintf(w->agent_id, sizeof(w->agent_id), "host-1");
	w->seq = 7;
	w->start_ns = 1700000000000000000ull;
	w->end_ns = w->start_ns + 1000000000ull;
	w->budget_per_cpu = 5000;
	w->nevents = 1;
	snprintf(w->events[0].name, sizeof(w->events[0].name), "cpu-clock");
	w->events[0].source = 1;
	w->ncpu = 2;
	w->cpu_emitted[0] = 10;
	w->cpu_emitted[1] = 20;
	w->c.bpf[MS_CNT_EMITTED] = 30;
	w->c.processed = 30;
	w->c.flows_overflow = 1;
	w->nflows = nflows;
	for (uint32_t i = 0; i < nflows; i++) {
		tuple4(&w->flows[i].tuple, i, 1 + (i & 1));
		w->flows[i].flow_id = ms_flow_hash(&w->flows[i].tuple);
		w->flows[i].has_tuple = true;
	}
	w->nfuncs = nfuncs;
	for (uint32_t i = 0; i < nfuncs; i++) {
		w->funcs[i].func_id = 0x1000 + i;
		snprintf(w->funcs[i].name, sizeof(w->funcs[i].name), "synth_func_%02u", i);
		snprintf(w->funcs[i].module, sizeof(w->funcs[i].module), "[synthetic]");
	}
	w->nrows = nrows;
	for (uint32_t i = 0; i < nrows; i++) {
		struct wire_row *r = &w->rows[i];
		r->flow_id = w->flows[(i * 7) % nflows].flow_id;
		r->func_id = w->funcs[(i / nflows) % nfuncs].func_id;
		r->stack_id = WIRE_NO_STACK;
		r->pid = 4242;
		r->dir = 1;
		r->user_mode = 1;
		r->numa_node = -1;
		r->samples = 1 + (i % 13);
		r->norm_cost = (double)r->samples * 1001001.0;
	}
	return w;
}

/* Rows come back sorted by flow: compare as multisets keyed by (flow, func, pid). */
static const struct wire_row *find_row(const struct wire_window *w, const struct wire_row *k)
{
	for (uint32_t i = 0; i < w->nrows; i++) {
		const struct wire_row *r = &w->rows[i];
		if (r->flow_id == k->flow_id && r->func_id == k->func_id && r->pid == k->pid && r->event == k->event &&
		    r->stack_id == k->stack_id && r->object_id == k->object_id && r->numa_node == k->numa_node &&
		    r->dir == k->dir && r->iclass == k->iclass && r->user_mode == k->user_mode)
			return r;
	}
	return NULL;
}

static void test_roundtrip_synthetic(void **state)
{
	struct wire_window *w = make_window(64, 32, 2048), *d = NULL;
	uint8_t *buf;
	size_t len;
	assert_int_equal(wire_encode_window(w, &buf, &len), 0);
	assert_int_equal(wire_decode_window(buf, len, &d), 0);
	assert_string_equal(d->agent_id, "host-1");
	assert_int_equal(d->seq, 7);
	assert_int_equal(d->end_ns, w->end_ns);
	assert_int_equal(d->nrows, 2048);
	assert_int_equal(d->nflows, 64);
	assert_int_equal(d->nfuncs, 32);
	assert_int_equal(d->ncpu, 2);
	assert_int_equal(d->cpu_emitted[1], 20);
	assert_int_equal(d->c.bpf[MS_CNT_EMITTED], 30);
	assert_int_equal(d->c.flows_overflow, 1);
	uint64_t sum = 0;
	for (uint32_t i = 0; i < w->nrows; i++) {
		const struct wire_row *r = find_row(d, &w->rows[i]);
		assert_non_null(r);
		assert_int_equal(r->samples, w->rows[i].samples);
		assert_true(fabs(r->norm_cost - round(w->rows[i].norm_cost)) < 0.5);
		assert_int_equal(d->flows[r->flow_ix].flow_id, r->flow_id);
		assert_string_equal(d->funcs[r->func_ix].module, "[synthetic]");
		sum += r->samples;
	}
	assert_int_equal(d->samples, sum);
	for (uint32_t i = 0; i < d->nflows; i++) {
		assert_true(d->flows[i].has_tuple);
		assert_int_equal(ms_flow_hash(&d->flows[i].tuple), d->flows[i].flow_id);
	}
	double per_row = (double)len / 2048.0;
	printf("# synthetic window: 2048 rows, 64 flows, 32 funcs: %zu bytes, %.2f bytes/row\n", len, per_row);
	assert_true(per_row <= 16.0);
	free(buf);
	wire_window_free(d);
	wire_window_free(w);
}

/* Every column non-default, IPv6, id-only flow and function, objects, stacks, several events. */
static void test_roundtrip_all_columns(void **state)
{
	struct wire_window *w = make_window(3, 2, 6), *d = NULL;
	w->nevents = 2;
	snprintf(w->events[1].name, sizeof(w->events[1].name), "page-faults");
	struct ms_flow_tuple *t6 = &w->flows[2].tuple;
	t6->family = MS_FAMILY_V6;
	memset(t6->saddr, 0, 16);
	t6->saddr[0] = 0xfd, t6->saddr[15] = 1;
	w->flows[2].flow_id = 0xabcdef; /* not the hash: must travel explicitly */
	w->flows[1].has_tuple = false;
	w->nobjects = 1;
	w->objects = calloc(1, sizeof(*w->objects));
	w->objects[0] = (struct wire_object){ .object_id = 99, .addr = 0x1000, .size = 64 };
	snprintf(w->objects[0].name, sizeof(w->objects[0].name), "heap");
	struct wire_row *r = w->rows;
	r[0] = (struct wire_row){ .flow_id = 0, .func_id = 0, .stack_id = WIRE_NO_STACK, .samples = 3,
				  .norm_cost = 3.0, .numa_node = -1 };
	r[1].flow_id = w->flows[2].flow_id, r[1].event = 1, r[1].object_id = 99, r[1].stack_id = 5ull << 32 | 6;
	r[1].numa_node = 1, r[1].iclass = 7, r[1].dir = 2, r[1].user_mode = 0, r[1].norm_cost = 12345.0;
	r[2].flow_id = w->flows[1].flow_id, r[2].func_id = 0x77777; /* function without an entry */
	r[3].object_id = 1234;                                       /* object without an entry */
	r[4].pid = 1, r[5].samples = 0, r[5].norm_cost = 0;
	uint8_t *buf;
	size_t len;
	assert_int_equal(wire_encode_window(w, &buf, &len), 0);
	assert_int_equal(wire_decode_window(buf, len, &d), 0);
	assert_int_equal(d->nrows, 6);
	for (uint32_t i = 0; i < 6; i++) {
		const struct wire_row *x = find_row(d, &w->rows[i]);
		assert_non_null(x);
		assert_int_equal(x->samples, w->rows[i].samples);
		assert_true(fabs(x->norm_cost - w->rows[i].norm_cost) < 0.5);
	}
	const struct wire_row *x = find_row(d, &r[1]);
	assert_int_equal(d->flows[x->flow_ix].tuple.family, MS_FAMILY_V6);
	assert_int_equal(d->flows[x->flow_ix].tuple.saddr[0], 0xfd);
	assert_string_equal(d->objects[x->object_ix].name, "heap");
	assert_int_equal(d->objects[x->object_ix].size, 64);
	x = find_row(d, &r[2]);
	assert_false(d->flows[x->flow_ix].has_tuple);
	assert_string_equal(d->funcs[x->func_ix].name, "");
	x = find_row(d, &r[0]);
	assert_int_equal(x->flow_ix, WIRE_NONE);
	assert_int_equal(x->func_ix, WIRE_NONE);
	free(buf);
	wire_window_free(d);
	wire_window_free(w);
}

static void test_encode_rejects(void **state)
{
	struct wire_window *w = make_window(2, 2, 4);
	uint8_t *buf;
	size_t len;
	w->rows[0].event = 3;
	assert_int_equal(wire_encode_window(w, &buf, &len), -EINVAL);
	w->rows[0].event = 0;
	w->rows[1].norm_cost = NAN;
	assert_int_equal(wire_encode_window(w, &buf, &len), -EINVAL);
	w->rows[1].norm_cost = 1;
	w->seq = 0;
	assert_int_equal(wire_encode_window(w, &buf, &len), -EINVAL);
	w->seq = 1;
	w->agent_id[0] = 0;
	assert_int_equal(wire_encode_window(w, &buf, &len), -EINVAL);
	wire_window_free(w);
}

/* The stack dictionary: frames come back as the same function ids, named even when no row
 * references their function; unknown frames (0) and stacks without frames survive. */
static void test_roundtrip_stacks(void **state)
{
	struct wire_window *w = make_window(2, 6, 4), *d = NULL;
	uint8_t *buf;
	size_t len;
	w->rows[0].stack_id = 0xabc;
	w->rows[1].stack_id = 0xdef;
	snprintf(w->funcs[4].module, sizeof(w->funcs[4].module), "libstackonly.so"); /* a module no row has */
	assert_non_null(w->stacks = calloc(2, sizeof(*w->stacks)));
	w->nstacks = 2;
	uint64_t frames0[] = { 0x1000, 0x1004, 0x9999, 0 };
	w->stacks[0] = (struct wire_stack){ .stack_id = 0xabc, .nkernel = 1, .nuser = 3, .func_ids = frames0 };
	w->stacks[1] = (struct wire_stack){ .stack_id = 0xdef };
	assert_int_equal(wire_encode_window(w, &buf, &len), 0);
	assert_int_equal(wire_decode_window(buf, len, &d), 0);
	assert_int_equal(d->nstacks, 2);
	const struct wire_stack *s = &d->stacks[0];
	assert_true(s->stack_id == 0xabc && s->nkernel == 1 && s->nuser == 3);
	assert_true(s->func_ids[0] == 0x1000 && s->func_ids[1] == 0x1004 && s->func_ids[2] == 0x9999 && !s->func_ids[3]);
	assert_int_equal(s->func_ix[3], WIRE_NONE);
	assert_string_equal(d->funcs[s->func_ix[1]].name, "synth_func_04");
	assert_string_equal(d->funcs[s->func_ix[1]].module, "libstackonly.so");
	assert_string_equal(d->funcs[s->func_ix[0]].module, "[synthetic]");
	assert_string_equal(d->funcs[s->func_ix[2]].name, ""); /* id-only entry */
	assert_true(d->stacks[1].stack_id == 0xdef && d->stacks[1].nkernel == 0 && d->stacks[1].nuser == 0);
	/* frames are packed into the window's arrays: memory follows the frames sent, not 128 each */
	assert_ptr_equal(d->stacks[1].func_ids, d->stacks[0].func_ids + 4);
	assert_ptr_equal(d->stacks[0].func_ids, d->stack_func_ids);
	assert_ptr_equal(d->stacks[1].func_ix, d->stacks[0].func_ix + 4);
	uint64_t seen = 0;
	for (uint32_t i = 0; i < d->nrows; i++)
		seen |= d->rows[i].stack_id == 0xabc ? 1 : d->rows[i].stack_id == 0xdef ? 2 : 0;
	assert_int_equal(seen, 3);
	wire_window_free(d);
	free(buf);
	/* over the bounds: refused by the encoder */
	w->stacks[1].nkernel = 100;
	w->stacks[1].nuser = WIRE_MAX_FRAMES - 99;
	assert_int_equal(wire_encode_window(w, &buf, &len), -E2BIG);
	w->stacks[1].nuser = 0;
	w->nstacks = WIRE_MAX_STACKS + 1;
	assert_int_equal(wire_encode_window(w, &buf, &len), -E2BIG);
	w->nstacks = 2;
	wire_window_free(w);
}

/* Hand-built messages that break one rule each. */
static int decode_pb(Ms__V1__Window *m)
{
	size_t n = protobuf_c_message_get_packed_size(&m->base);
	uint8_t *buf = malloc(n + 1);
	protobuf_c_message_pack(&m->base, buf);
	struct wire_window *w = NULL;
	int r = wire_decode_window(buf, n, &w);
	wire_window_free(w);
	free(buf);
	return r;
}

static void test_decode_hostile(void **state)
{
	Ms__V1__Window m = MS__V1__WINDOW__INIT;
	Ms__V1__Rows rows = MS__V1__ROWS__INIT;
	uint32_t col[2] = { 1, 0 };
	uint64_t samples[2] = { 1, 2 };
	m.agent_id = "a";
	m.seq = 1;
	assert_int_equal(decode_pb(&m), 0);
	m.rows = &rows;
	rows.count = 2;
	rows.n_samples = 2;
	rows.samples = samples;
	assert_int_equal(decode_pb(&m), 0); /* two unattributed rows */
	rows.n_flow_delta = 2;
	rows.flow_delta = col;                /* flow index 1 but no flows */
	assert_int_equal(decode_pb(&m), -EINVAL);
	rows.n_flow_delta = 1;                /* column of the wrong length */
	assert_int_equal(decode_pb(&m), -EINVAL);
	rows.n_flow_delta = 0;
	rows.n_func = 2;
	rows.func = col;
	assert_int_equal(decode_pb(&m), -EINVAL);
	rows.n_func = 0;
	rows.count = WIRE_MAX_ROWS + 1;
	assert_int_equal(decode_pb(&m), -E2BIG);
	rows.count = 2;
	m.agent_id = "bad id";
	assert_int_equal(decode_pb(&m), -EINVAL);
	m.agent_id = "a";
	m.seq = 0;
	assert_int_equal(decode_pb(&m), -EINVAL);
	m.seq = 1;
	m.start_ns = 5, m.end_ns = 4;
	assert_int_equal(decode_pb(&m), -EINVAL);
	m.end_ns = 5;
	int64_t cost[2] = { -5, 0 };
	rows.n_cost_delta = 2;
	rows.cost_delta = cost;               /* negative cost */
	assert_int_equal(decode_pb(&m), -EINVAL);
	rows.n_cost_delta = 0;
	Ms__V1__Flow f = MS__V1__FLOW__INIT, *pf = &f;
	uint8_t a3[3] = { 1, 2, 3 };
	f.family = 4;
	f.saddr.len = f.daddr.len = 3;
	f.saddr.data = f.daddr.data = a3;
	m.n_flows = 1;
	m.flows = &pf;
	assert_int_equal(decode_pb(&m), -EINVAL); /* 3-byte address */
	f.family = 0;
	f.saddr.len = f.daddr.len = 0;
	assert_int_equal(decode_pb(&m), -EINVAL); /* no tuple and no id */
	f.flow_id = 5;
	assert_int_equal(decode_pb(&m), 0);
	Ms__V1__Stack st = MS__V1__STACK__INIT, *pst = &st;
	uint32_t frames[WIRE_MAX_FRAMES + 1] = { 0 };
	st.stack_id = 9;
	st.n_frames = 2;
	st.frames = frames;
	m.n_stacks = 1;
	m.stacks = &pst;
	assert_int_equal(decode_pb(&m), 0);   /* two unknown frames */
	frames[1] = 1;                        /* function 1 but no functions */
	assert_int_equal(decode_pb(&m), -EINVAL);
	frames[1] = 0;
	st.nkernel = 3;                       /* more kernel frames than frames */
	assert_int_equal(decode_pb(&m), -EINVAL);
	st.nkernel = 0;
	st.n_frames = WIRE_MAX_FRAMES + 1;
	assert_int_equal(decode_pb(&m), -E2BIG);
	st.n_frames = 0;
	st.stack_id = WIRE_NO_STACK;
	assert_int_equal(decode_pb(&m), -EINVAL);
	m.n_stacks = 0;
	uint8_t garbage[64];
	for (unsigned i = 0; i < sizeof(garbage); i++)
		garbage[i] = (uint8_t)(i * 37 + 11);
	struct wire_window *w = NULL;
	int r = wire_decode_window(garbage, sizeof(garbage), &w);
	assert_true(r == -EBADMSG || r == -EINVAL || r == -E2BIG);
}

static void test_truncated_never_crashes(void **state)
{
	struct wire_window *w = make_window(8, 4, 64), *d;
	uint8_t *buf;
	size_t len;
	assert_int_equal(wire_encode_window(w, &buf, &len), 0);
	for (size_t cut = 0; cut < len; cut++) {
		d = NULL;
		if (wire_decode_window(buf, cut, &d) == 0)
			assert_true(d->nrows <= 64);
		wire_window_free(d);
	}
	free(buf);
	wire_window_free(w);
}

static void test_request_window(void **state)
{
	struct wire_window *w = make_window(4, 4, 16);
	uint8_t *win, *req;
	size_t wlen, rlen;
	assert_int_equal(wire_encode_window(w, &win, &wlen), 0);
	assert_int_equal(wire_request_window("s3cret", 5, win, wlen, &req, &rlen), 0);
	struct wire_request rq;
	assert_int_equal(wire_decode_request(req, rlen, &rq), 0);
	assert_int_equal(rq.kind, WIRE_KIND_WINDOW);
	assert_string_equal(rq.token, "s3cret");
	assert_int_equal(rq.low_water, 5);
	assert_int_equal(rq.window->seq, 7);
	assert_int_equal(rq.window->nrows, 16);
	wire_request_release(&rq);
	/* the same window with a newer protocol number is refused */
	Ms__V1__Request *m = ms__v1__request__unpack(NULL, rlen, req);
	m->protocol = WIRE_PROTOCOL + 1;
	uint8_t big[4096];
	size_t n = protobuf_c_message_pack(&m->base, big);
	ms__v1__request__free_unpacked(m, NULL);
	assert_int_equal(wire_decode_request(big, n, &rq), -EPROTONOSUPPORT);
	assert_int_equal(wire_decode_request((const uint8_t *)"\x08\x01", 2, &rq), -EBADMSG); /* no body */
	free(win);
	free(req);
	wire_window_free(w);
}

static void test_request_hello_heartbeat(void **state)
{
	struct wire_hello h;
	memset(&h, 0, sizeof(h));
	snprintf(h.agent_id, sizeof(h.agent_id), "node-7");
	snprintf(h.host, sizeof(h.host), "node-7.example");
	assert_int_equal(wire_parse_labels("zone=a,role=db", &h), 0);
	assert_int_equal(h.nlabels, 2);
	h.nevents = 1;
	snprintf(h.events[0].name, sizeof(h.events[0].name), "cycles");
	snprintf(h.events[0].reason, sizeof(h.events[0].reason), "no PMU");
	h.next_seq = 1234;
	h.instance = 99;
	uint8_t *req;
	size_t len;
	assert_int_equal(wire_request_hello("t", 0, &h, &req, &len), 0);
	struct wire_request rq;
	assert_int_equal(wire_decode_request(req, len, &rq), 0);
	assert_int_equal(rq.kind, WIRE_KIND_HELLO);
	assert_string_equal(rq.hello->agent_id, "node-7");
	assert_string_equal(rq.hello->labels[1].key, "role");
	assert_string_equal(rq.hello->labels[1].value, "db");
	assert_string_equal(rq.hello->events[0].reason, "no PMU");
	assert_int_equal(rq.hello->next_seq, 1234);
	assert_int_equal(rq.hello->instance, 99);
	wire_request_release(&rq);
	free(req);
	struct wire_heartbeat hb = { .next_seq = 5, .spool_windows = 2, .mode = 1 };
	snprintf(hb.agent_id, sizeof(hb.agent_id), "node-7");
	assert_int_equal(wire_request_heartbeat(NULL, 3, &hb, &req, &len), 0);
	assert_int_equal(wire_decode_request(req, len, &rq), 0);
	assert_int_equal(rq.kind, WIRE_KIND_HEARTBEAT);
	assert_int_equal(rq.heartbeat.spool_windows, 2);
	assert_int_equal(rq.heartbeat.mode, 1);
	wire_request_release(&rq);
	free(req);
	assert_int_equal(wire_parse_labels("a=1,", &h), -EINVAL);
	assert_int_equal(wire_parse_labels("=1", &h), -EINVAL);
	assert_int_equal(wire_parse_labels("a", &h), -EINVAL);
	assert_int_equal(wire_parse_labels("", &h), 0);
	assert_int_equal(h.nlabels, 0);
}

static void test_ack(void **state)
{
	struct wire_ack a = { .status = WIRE_ACK_SEQ_REGRESSION, .seq = 3, .resume_seq = 100,
			      .coordinator_id = 42, .heartbeat_ms = 5000, .max_message_bytes = 4 << 20 };
	snprintf(a.agent_id, sizeof(a.agent_id), "x");
	memset(a.reason, 'r', sizeof(a.reason) - 1);
	uint8_t buf[WIRE_ACK_MAX];
	size_t n;
	assert_int_equal(wire_encode_ack(&a, buf, sizeof(buf), &n), 0);
	struct wire_ack b;
	assert_int_equal(wire_decode_ack(buf, n, &b), 0);
	assert_int_equal(b.status, WIRE_ACK_SEQ_REGRESSION);
	assert_int_equal(b.resume_seq, 100);
	assert_int_equal(strlen(b.reason), sizeof(a.reason) - 1);
	assert_int_equal(wire_encode_ack(&a, buf, 8, &n), -ENOSPC);
	assert_int_equal(wire_decode_ack((const uint8_t *)"\xff\xff", 2, &b), -EBADMSG);
	assert_int_equal(wire_decode_ack((const uint8_t *)"\x08\x09", 2, &b), -EINVAL); /* status 9 */
	assert_string_equal(wire_ack_status_name(WIRE_ACK_DUPLICATE), "duplicate");
}

static void test_agent_id(void **state)
{
	assert_true(wire_valid_agent_id("host-1.example:a_b"));
	assert_false(wire_valid_agent_id(""));
	assert_false(wire_valid_agent_id("a b"));
	assert_false(wire_valid_agent_id("a\"b"));
	char longid[WIRE_ID_MAX + 1];
	memset(longid, 'a', WIRE_ID_MAX);
	longid[WIRE_ID_MAX] = 0;
	assert_false(wire_valid_agent_id(longid));
	longid[WIRE_ID_MAX - 1] = 0;
	assert_true(wire_valid_agent_id(longid));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_synthetic),
		cmocka_unit_test(test_roundtrip_all_columns),
		cmocka_unit_test(test_roundtrip_stacks),
		cmocka_unit_test(test_encode_rejects),
		cmocka_unit_test(test_decode_hostile),
		cmocka_unit_test(test_truncated_never_crashes),
		cmocka_unit_test(test_request_window),
		cmocka_unit_test(test_request_hello_heartbeat),
		cmocka_unit_test(test_ack),
		cmocka_unit_test(test_agent_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
