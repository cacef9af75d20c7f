/* chrows_test: the rows of every table, read back column by column in the order of
 * chrows_tables: key columns on every row, row ordinals as keys, Enum codes clamped, strings
 * bounded, dictionaries, findings, Hello and fleet-event rows; and the mapping is a pure
 * function of the window (same window, same bytes). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chrows.h"
#include "rowbinary.h"

#define T0 1764000000ull

static struct wire_window *make_window(void)
{
	struct wire_window *w;
	assert_int_equal(wire_window_new(3, 2, 1, 2, &w), 0);
	snprintf(w->agent_id, sizeof(w->agent_id), "host-a");
	w->seq = 42;
	w->start_ns = T0 * 1000000000ull + 5;
	w->end_ns = w->start_ns + 1000000000ull;
	w->mode = 1;
	w->budget_per_cpu = 6000;
	w->nevents = 2;
	snprintf(w->events[0].name, sizeof(w->events[0].name), "cpu-clock");
	snprintf(w->events[1].name, sizeof(w->events[1].name), "page-faults");
	w->events[1].source = 1;
	w->c.bpf[MS_CNT_EMITTED] = 7;
	w->c.bpf[MS_CNT_STACK_FAIL] = 3;
	w->c.processed = 7;
	w->c.flows_overflow = 9;
	w->ncpu = 2;
	w->cpu_emitted[0] = 4;
	w->cpu_emitted[1] = 3;
	w->nrows = 3;
	w->nflows = 2;
	w->nfuncs = 1;
	struct wire_row rows[3] = {
		{ .flow_id = 11, .func_id = 100, .stack_id = WIRE_NO_STACK, .samples = 4, .norm_cost = 4000, .pid = 5,
		  .event = 0, .numa_node = -1, .dir = MS_DIR_RX, .iclass = 2, .user_mode = 1 },
		{ .flow_id = 12, .func_id = 100, .stack_id = 77, .object_id = 9, .samples = 2, .norm_cost = 1.5,
		  .pid = 6, .event = 1, .numa_node = 1, .dir = MS_DIR_TX },
		{ .flow_id = 0, .samples = 1, .event = 7 /* out of range */, .dir = 9 /* out of range */ },
	};
	memcpy(w->rows, rows, sizeof(rows));
	w->flows[0].flow_id = 11;
	w->flows[0].has_tuple = true;
	w->flows[0].tuple.family = MS_FAMILY_V4;
	w->flows[0].tuple.proto = 6;
	w->flows[0].tuple.saddr[10] = 0xff;
	w->flows[0].tuple.saddr[11] = 0xff;
	w->flows[0].tuple.saddr[12] = 10;
	w->flows[0].tuple.saddr[15] = 1;
	w->flows[0].tuple.sport = 443;
	w->flows[0].tuple.dport = 50000;
	w->flows[0].tuple.dir = MS_DIR_RX;
	w->flows[0].tuple.ifindex = 3;
	w->flows[0].tuple.netns = 4026531840u;
	w->flows[0].tuple.flags = MS_FLOW_F_ENCAP;
	w->flows[1].flow_id = 12; /* id only */
	w->funcs[0].func_id = 100;
	snprintf(w->funcs[0].name, sizeof(w->funcs[0].name), "tcp_sendmsg");
	snprintf(w->funcs[0].module, sizeof(w->funcs[0].module), "[kernel]");
	return w;
}

static void expect_key(struct rowbinary_reader *r, const char *host, uint64_t seq)
{
	size_t n;
	assert_int_equal(rowbinary_get_u32(r), (uint32_t)T0);
	const char *h = rowbinary_get_string(r, 256, &n);
	assert_int_equal(n, strlen(host));
	assert_memory_equal(h, host, n);
	assert_true(rowbinary_get_u64(r) == seq);
}

static void expect_str(struct rowbinary_reader *r, const char *want)
{
	size_t n;
	const char *s = rowbinary_get_string(r, 1 << 16, &n);
	if (n != strlen(want) || memcmp(s, want, n) != 0)
		fail_msg("string <%.*s> want <%s>", (int)n, s, want);
}

static void test_rollup_rows(void **state)
{
	struct wire_window *w = make_window();
	struct chwriter_unit *u;
	assert_int_equal(chwriter_unit_new(0, &u), 0);
	assert_int_equal(chrows_window(u, w), 0);
	assert_int_equal(u->rows[CHROWS_ROLLUP], 3);
	struct rowbinary_reader r;
	rowbinary_reader_init(&r, u->data[CHROWS_ROLLUP].buf, u->data[CHROWS_ROLLUP].len);
	/* ts,host,seq,row,flow_id,func_id,stack_id,object_id,event,pid,numa_node,direction,iclass,
	 * user_mode,samples,norm_cost,mode,window_ms */
	const char *events[3] = { "cpu-clock", "page-faults", "" };
	uint8_t dirs[3] = { 1, 2, 0 };
	for (uint32_t i = 0; i < 3; i++) {
		const struct wire_row *x = &w->rows[i];
		expect_key(&r, "host-a", 42);
		assert_int_equal(rowbinary_get_u32(&r), i);
		assert_true(rowbinary_get_u64(&r) == x->flow_id);
		assert_true(rowbinary_get_u64(&r) == x->func_id);
		assert_true(rowbinary_get_u64(&r) == x->stack_id);
		assert_true(rowbinary_get_u64(&r) == x->object_id);
		expect_str(&r, events[i]);
		assert_int_equal(rowbinary_get_u32(&r), x->pid);
		assert_int_equal((int16_t)rowbinary_get_u16(&r), x->numa_node);
		assert_int_equal(rowbinary_get_u8(&r), dirs[i]);
		assert_int_equal(rowbinary_get_u8(&r), x->iclass);
		assert_int_equal(rowbinary_get_u8(&r), x->user_mode);
		assert_true(rowbinary_get_u64(&r) == x->samples);
		assert_true(rowbinary_get_f64(&r) == x->norm_cost);
		assert_int_equal(rowbinary_get_u8(&r), 1);
		assert_int_equal(rowbinary_get_u32(&r), 1000);
	}
	assert_int_equal(rowbinary_reader_error(&r), 0);
	assert_int_equal(rowbinary_reader_left(&r), 0);

	/* the same window again gives the same bytes: keys are a function of the window */
	struct chwriter_unit *v;
	assert_int_equal(chwriter_unit_new(0, &v), 0);
	assert_int_equal(chrows_window(v, w), 0);
	for (int t = 0; t < CHROWS__N; t++) {
		assert_int_equal(u->data[t].len, v->data[t].len);
		assert_int_equal(u->rows[t], v->rows[t]);
		if (u->data[t].len)
			assert_memory_equal(u->data[t].buf, v->data[t].buf, u->data[t].len);
	}
	chwriter_unit_free(v);
	chwriter_unit_free(u);
	wire_window_free(w);
}

static void test_window_and_dictionaries(void **state)
{
	struct wire_window *w = make_window();
	struct chwriter_unit *u;
	assert_int_equal(chwriter_unit_new(0, &u), 0);
	assert_int_equal(chrows_window(u, w), 0);
	assert_int_equal(u->rows[CHROWS_WINDOWS], 1);
	assert_int_equal(u->rows[CHROWS_FLOWS], 2);
	assert_int_equal(u->rows[CHROWS_FUNCTIONS], 1);
	assert_int_equal(u->rows[CHROWS_OBJECTS], 0);
	assert_int_equal(u->data[CHROWS_OBJECTS].len, 0);
	assert_int_equal(u->rows[CHROWS_AGENTS], 0);

	struct rowbinary_reader r;
	rowbinary_reader_init(&r, u->data[CHROWS_WINDOWS].buf, u->data[CHROWS_WINDOWS].len);
	expect_key(&r, "host-a", 42);
	assert_true(rowbinary_get_u64(&r) == w->start_ns);
	assert_true(rowbinary_get_u64(&r) == w->end_ns);
	assert_int_equal(rowbinary_get_u8(&r), 1);
	assert_int_equal(rowbinary_get_u64(&r), 6000);
	assert_int_equal(rowbinary_get_u32(&r), 3);  /* nrows */
	assert_int_equal(rowbinary_get_u32(&r), 2);  /* nflows */
	assert_int_equal(rowbinary_get_u64(&r), 7);  /* samples = Σ rows */
	uint64_t c[MS_CNT__MAX];
	for (int i = 0; i < MS_CNT__MAX; i++)
		c[i] = rowbinary_get_u64(&r);
	assert_int_equal(c[MS_CNT_EMITTED], 7);
	assert_int_equal(c[MS_CNT_STACK_FAIL], 3);
	assert_int_equal(rowbinary_get_u64(&r), 7); /* processed */
	assert_int_equal(rowbinary_get_u64(&r), 0); /* lost */
	assert_int_equal(rowbinary_get_u64(&r), 0); /* agg_degraded */
	assert_int_equal(rowbinary_get_u64(&r), 0); /* agg_dropped */
	assert_int_equal(rowbinary_get_u64(&r), 9); /* flows_overflow */
	assert_int_equal(rowbinary_get_uleb128(&r), 2);
	expect_str(&r, "cpu-clock");
	expect_str(&r, "page-faults");
	assert_int_equal(rowbinary_get_uleb128(&r), 2);
	assert_int_equal(rowbinary_get_u8(&r), 0);
	assert_int_equal(rowbinary_get_u8(&r), 1);
	assert_int_equal(rowbinary_get_uleb128(&r), 2);
	assert_int_equal(rowbinary_get_u64(&r), 4);
	assert_int_equal(rowbinary_get_u64(&r), 3);
	assert_int_equal(rowbinary_reader_left(&r), 0);

	rowbinary_reader_init(&r, u->data[CHROWS_FLOWS].buf, u->data[CHROWS_FLOWS].len);
	/* ts,host,seq,flow_id,has_tuple,family,proto,saddr,daddr,sport,dport,direction,ifindex,netns,vlan,encap */
	expect_key(&r, "host-a", 42);
	assert_int_equal(rowbinary_get_u64(&r), 11);
	assert_int_equal(rowbinary_get_u8(&r), 1);
	assert_int_equal(rowbinary_get_u8(&r), MS_FAMILY_V4);
	assert_int_equal(rowbinary_get_u8(&r), 6);
	const uint8_t *sa = rowbinary_get_bytes(&r, 16);
	assert_memory_equal(sa, w->flows[0].tuple.saddr, 16);
	rowbinary_get_bytes(&r, 16);
	assert_int_equal(rowbinary_get_u16(&r), 443);
	assert_int_equal(rowbinary_get_u16(&r), 50000);
	assert_int_equal(rowbinary_get_u8(&r), MS_DIR_RX);
	assert_int_equal(rowbinary_get_u32(&r), 3);
	assert_int_equal(rowbinary_get_u32(&r), 4026531840u);
	assert_int_equal(rowbinary_get_u16(&r), 0);
	assert_int_equal(rowbinary_get_u8(&r), 1);
	expect_key(&r, "host-a", 42);
	assert_int_equal(rowbinary_get_u64(&r), 12);
	assert_int_equal(rowbinary_get_u8(&r), 0); /* no tuple: zeros after */
	const uint8_t zero[64] = { 0 };
	assert_memory_equal(rowbinary_get_bytes(&r, 2 + 32 + 4 + 1 + 8 + 2 + 1), zero, 2 + 32 + 4 + 1 + 8 + 2 + 1);
	assert_int_equal(rowbinary_reader_left(&r), 0);

	rowbinary_reader_init(&r, u->data[CHROWS_FUNCTIONS].buf, u->data[CHROWS_FUNCTIONS].len);
	expect_key(&r, "host-a", 42);
	assert_int_equal(rowbinary_get_u64(&r), 100);
	expect_str(&r, "tcp_sendmsg");
	expect_str(&r, "[kernel]");
	assert_int_equal(rowbinary_reader_left(&r), 0);
	chwriter_unit_free(u);
	wire_window_free(w);
}

static void test_findings(void **state)
{
	struct wire_window *w = make_window();
	struct wire_false_sharing fs = { .line_addr = 0x1000, .object_id = 5, .writers = 2, .readers = 1, .score = 0.5,
					 .true_sharing = true, .noffsets = 2, .offsets = { 0, 8 }, .npids = 1,
					 .pids = { 77 }, .nfuncs = 1, .func_ids = { 100 } };
	struct wire_remote_dram rd = { .flow_id = 11, .object_id = 5, .samples = 3, .mem_node = 1, .cpu_node = 0,
				       .cost = 30 };
	struct wire_anomaly an = { .ifname = "eth0", .metric = "rx_bytes", .ifindex = 2, .kind = 99, .value = 1,
				   .baseline = 100, .ts_ns = 123 };
	w->false_sharing = &fs;
	w->nfalse_sharing = 1;
	w->remote_dram = &rd;
	w->nremote_dram = 1;
	w->anomalies = &an;
	w->nanomalies = 1;
	struct chwriter_unit *u;
	assert_int_equal(chwriter_unit_new(0, &u), 0);
	assert_int_equal(chrows_window(u, w), 0);
	struct rowbinary_reader r;
	rowbinary_reader_init(&r, u->data[CHROWS_FALSE_SHARING].buf, u->data[CHROWS_FALSE_SHARING].len);
	expect_key(&r, "host-a", 42);
	assert_int_equal(rowbinary_get_u32(&r), 0);
	assert_int_equal(rowbinary_get_u64(&r), 0x1000);
	assert_int_equal(rowbinary_get_u64(&r), 5);
	assert_int_equal(rowbinary_get_uleb128(&r), 2);
	assert_int_equal(rowbinary_get_u32(&r), 0);
	assert_int_equal(rowbinary_get_u32(&r), 8);
	assert_int_equal(rowbinary_get_uleb128(&r), 1);
	assert_int_equal(rowbinary_get_u32(&r), 77);
	assert_int_equal(rowbinary_get_uleb128(&r), 1);
	assert_int_equal(rowbinary_get_u64(&r), 100);
	assert_int_equal(rowbinary_get_u64(&r), 2);
	assert_int_equal(rowbinary_get_u64(&r), 1);
	assert_true(rowbinary_get_f64(&r) == 0.5);
	assert_int_equal(rowbinary_get_u8(&r), 1);
	assert_int_equal(rowbinary_reader_left(&r), 0);
	rowbinary_reader_init(&r, u->data[CHROWS_REMOTE_DRAM].buf, u->data[CHROWS_REMOTE_DRAM].len);
	expect_key(&r, "host-a", 42);
	assert_int_equal(rowbinary_get_u32(&r), 0);
	assert_int_equal(rowbinary_get_u64(&r), 11);
	assert_int_equal(rowbinary_get_u64(&r), 5);
	assert_int_equal(rowbinary_get_u32(&r), 1);
	assert_int_equal(rowbinary_get_u32(&r), 0);
	assert_int_equal(rowbinary_get_u64(&r), 3);
	assert_true(rowbinary_get_f64(&r) == 30);
	assert_int_equal(rowbinary_reader_left(&r), 0);
	rowbinary_reader_init(&r, u->data[CHROWS_ANOMALIES].buf, u->data[CHROWS_ANOMALIES].len);
	expect_key(&r, "host-a", 42);
	assert_int_equal(rowbinary_get_u32(&r), 0);
	assert_int_equal(rowbinary_get_u64(&r), 123);
	expect_str(&r, "eth0");
	assert_int_equal(rowbinary_get_u32(&r), 2);
	assert_int_equal(rowbinary_get_u8(&r), 0); /* unknown kind 99 -> unspecified */
	expect_str(&r, "rx_bytes");
	assert_true(rowbinary_get_f64(&r) == 1);
	assert_true(rowbinary_get_f64(&r) == 100);
	assert_int_equal(rowbinary_reader_left(&r), 0);
	w->false_sharing = NULL;
	w->remote_dram = NULL;
	w->anomalies = NULL;
	w->nfalse_sharing = w->nremote_dram = w->nanomalies = 0;
	chwriter_unit_free(u);
	wire_window_free(w);
}

static void test_hello_and_fleet_event(void **state)
{
	struct wire_hello *h = calloc(1, sizeof(*h));
	snprintf(h->agent_id, sizeof(h->agent_id), "host-b");
	snprintf(h->host, sizeof(h->host), "b.example");
	snprintf(h->version, sizeof(h->version), "0.1.0");
	h->nlabels = 1;
	snprintf(h->labels[0].key, sizeof(h->labels[0].key), "rack");
	snprintf(h->labels[0].value, sizeof(h->labels[0].value), "r1");
	h->nevents = 2;
	snprintf(h->events[0].name, sizeof(h->events[0].name), "cycles");
	snprintf(h->events[1].name, sizeof(h->events[1].name), "cpu-clock");
	h->events[1].live = true;
	h->next_seq = 9;
	h->ncpu = 2;
	struct chwriter_unit *u;
	assert_int_equal(chwriter_unit_new(0, &u), 0);
	assert_int_equal(chrows_hello(u, h, T0 * 1000000000ull), 0);
	struct rowbinary_reader r;
	rowbinary_reader_init(&r, u->data[CHROWS_AGENTS].buf, u->data[CHROWS_AGENTS].len);
	expect_key(&r, "host-b", 9);
	assert_int_equal(rowbinary_get_u64(&r), 0); /* instance */
	expect_str(&r, "0.1.0");
	expect_str(&r, "b.example");
	assert_int_equal(rowbinary_get_uleb128(&r), 1);
	expect_str(&r, "rack");
	assert_int_equal(rowbinary_get_uleb128(&r), 1);
	expect_str(&r, "r1");
	expect_str(&r, "");
	expect_str(&r, "");
	assert_int_equal(rowbinary_get_u8(&r), 0);
	expect_str(&r, "");
	assert_int_equal(rowbinary_get_u32(&r), 2);
	assert_int_equal(rowbinary_get_u32(&r), 0);
	assert_int_equal(rowbinary_get_uleb128(&r), 1);
	expect_str(&r, "cpu-clock");
	assert_int_equal(rowbinary_get_uleb128(&r), 1);
	expect_str(&r, "cycles");
	assert_int_equal(rowbinary_reader_left(&r), 0);

	const char *hosts[2] = { "host-a", "host-b" };
	struct chrows_fleet_event e = { .ts_ns = T0 * 1000000000ull + 1, .coordinator = "coord-1", .seq = 3,
					.kind = "trigger", .group_key = "svc=web", .hosts = hosts, .nhosts = 2,
					.mode = "diagnostic", .ttl_ms = 600000, .reason = "2 of 2 hosts", .details = "{}" };
	assert_int_equal(chrows_fleet_event(u, &e), 0);
	rowbinary_reader_init(&r, u->data[CHROWS_FLEET_EVENTS].buf, u->data[CHROWS_FLEET_EVENTS].len);
	expect_key(&r, "coord-1", 3);
	assert_true(rowbinary_get_u64(&r) == e.ts_ns);
	expect_str(&r, "trigger");
	expect_str(&r, "svc=web");
	assert_int_equal(rowbinary_get_uleb128(&r), 2);
	expect_str(&r, "host-a");
	expect_str(&r, "host-b");
	expect_str(&r, "diagnostic");
	assert_int_equal(rowbinary_get_u64(&r), 600000);
	expect_str(&r, "2 of 2 hosts");
	expect_str(&r, "{}");
	assert_int_equal(rowbinary_reader_left(&r), 0);
	assert_int_equal(chrows_fleet_event(u, NULL), -EINVAL);
	chwriter_unit_free(u);
	free(h);
}

static void test_bounds_and_names(void **state)
{
	struct wire_window *w = make_window();
	struct chwriter_unit *u;
	assert_int_equal(chwriter_unit_new(64, &u), 0); /* far too small for 3 rollup rows */
	assert_int_equal(chrows_window(u, w), -ENOSPC);
	chwriter_unit_free(u);
	/* NULL arrays with counts are refused (a short array is the caller's bug) */
	struct wire_row *keep = w->rows;
	w->rows = NULL;
	assert_int_equal(chwriter_unit_new(0, &u), 0);
	assert_int_equal(chrows_window(u, w), -EINVAL);
	w->rows = keep;
	chwriter_unit_free(u);
	wire_window_free(w);

	struct chwriter_table t[CHROWS__N];
	chrows_tables_named(t, "rollup_v2", NULL);
	assert_string_equal(t[CHROWS_ROLLUP].name, "rollup_v2");
	assert_string_equal(t[CHROWS_RAW_SAMPLES].name, "ms_raw_samples");
	assert_string_equal(t[CHROWS_WINDOWS].columns, chrows_tables[CHROWS_WINDOWS].columns);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rollup_rows),
		cmocka_unit_test(test_window_and_dictionaries),
		cmocka_unit_test(test_findings),
		cmocka_unit_test(test_hello_and_fleet_event),
		cmocka_unit_test(test_bounds_and_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
