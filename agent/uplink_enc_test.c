/* Tests of uplink_encode_window's detector findings: an analysed window (data objects,
 * false-sharing lines, NUMA hotspots) encoded and decoded by the coordinator's codec gives the
 * same findings; a window without them gives empty sections; sections past the wire bounds are
 * cut, not refused. Anomaly signals: the window's list travels as Window.anomalies, and the
 * control plane (control_take_anomalies) attaches what the anomaly monitor raised to the window
 * it was raised or in force in, bounded, with the rest counted. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "falseshare.h"
#include "uplink.h"
#include "window.h"
#include "wire.h"

#define OBJ_A 0x1111000000000001ULL
#define OBJ_B 0x2222000000000002ULL
#define FUNC_1 0xf1f1ULL
#define FUNC_2 0xf2f2ULL

/* A window of 3 rows (two on data objects) with 2 objects, 2 contended lines, 3 hotspots. */
static struct window *analysed_window(void)
{
	struct window *w = window_alloc(3, 1);
	assert_non_null(w);
	w->seq = 42;
	w->start_ns = 1000000000ULL;
	w->end_ns = 2000000000ULL;
	w->nevents = 1;
	strcpy(w->event_names[0], "hitm");
	w->nflows = 1;
	w->flows[0].flow_id = 0xabcULL;
	w->flows[0].tuple.family = MS_FAMILY_V4;
	w->nrows = 3;
	for (uint32_t i = 0; i < 3; i++) {
		w->rows[i] = (struct window_row){ .flow_id = 0xabcULL, .func_id = FUNC_1, .stack_id = WINDOW_NO_STACK,
						  .samples = 10 + i, .norm_cost = 1000.0 * (10 + i), .pid = 4242,
						  .numa_node = -1 };
	}
	w->rows[1].object_id = OBJ_A;
	w->rows[1].numa_node = 1;
	w->rows[2].object_id = OBJ_B;
	w->rows[2].numa_node = 0;
	w->nfuncs = 2;
	w->funcs = calloc(2, sizeof(*w->funcs));
	assert_non_null(w->funcs);
	w->funcs[0].func_id = FUNC_1;
	strcpy(w->funcs[0].name, "writer_a");
	w->funcs[1].func_id = FUNC_2;
	strcpy(w->funcs[1].name, "writer_b");

	w->nobjects = 2;
	w->objects = calloc(2, sizeof(*w->objects));
	assert_non_null(w->objects);
	w->objects[0] = (struct window_object){ .object_id = OBJ_A, .pid = 4242, .samples = 11 };
	strcpy(w->objects[0].name, "shared_counters");
	strcpy(w->objects[0].module, "/usr/bin/app");
	w->objects[1] = (struct window_object){ .object_id = OBJ_B, .pid = 4242, .samples = 12 };
	strcpy(w->objects[1].module, "[heap]"); /* no name: the module names it */

	w->nfs = 2;
	w->fs = calloc(2, sizeof(*w->fs));
	assert_non_null(w->fs);
	/* false sharing inferred from HITM loads: offsets 0 and 8 written, 16 only read */
	w->fs[0] = (struct window_fs_line){ .line = 0x7e0000001000ULL, .object_id = OBJ_A, .pid = 4242,
					    .cls = FS_CLASS_FALSE, .inferred = 1, .nthreads = 2, .ncpus = 2,
					    .written = (1ULL << 0) | (1ULL << 8),
					    .accessed = (1ULL << 0) | (1ULL << 8) | (1ULL << 16),
					    .samples = 30, .loads = 4, .stores = 0, .hitm = 26, .score = 26000.5,
					    .func_id = { FUNC_1, FUNC_2, 0, 0 }, .func_samples = { 20, 10, 0, 0 } };
	/* mixed sharing with stores */
	w->fs[1] = (struct window_fs_line){ .line = 0x7e0000002040ULL, .object_id = 0, .pid = 4243,
					    .cls = FS_CLASS_MIXED, .written = 1ULL << 63, .accessed = 1ULL << 63,
					    .samples = 9, .loads = 2, .stores = 5, .hitm = 2, .score = 3.25,
					    .func_id = { 0, FUNC_2, 0, 0 } };

	w->nnuma = 3;
	w->numa = calloc(3, sizeof(*w->numa));
	assert_non_null(w->numa);
	w->numa[0] = (struct window_numa){ .flow_id = 0xabcULL, .object_id = OBJ_A, .mem_node = 1, .cpu_node = 0,
					   .samples = 11, .events = 11099 };
	w->numa[1] = (struct window_numa){ .flow_id = 0xabcULL, .object_id = OBJ_B, .mem_node = 0, .cpu_node = 0,
					   .samples = 12, .events = 12108 };
	w->numa[2] = (struct window_numa){ .flow_id = 0, .object_id = 0, .mem_node = 0, .cpu_node = 1,
					   .samples = 1, .events = 1009 };
	return w;
}

static struct wire_window *round_trip(const struct window *w)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	struct wire_window *d = NULL;
	assert_int_equal(uplink_encode_window(w, "h8-agent", &buf, &len), 0);
	assert_int_equal(wire_decode_window(buf, len, &d), 0);
	free(buf);
	return d;
}

static const struct wire_object *find_object(const struct wire_window *d, uint64_t id)
{
	for (uint32_t i = 0; i < d->nobjects; i++)
		if (d->objects[i].object_id == id)
			return &d->objects[i];
	return NULL;
}

static void test_objects_travel(void **state)
{
	(void)state;
	struct window *w = analysed_window();
	struct wire_window *d = round_trip(w);
	assert_int_equal(d->seq, 42);
	assert_int_equal(d->nobjects, 2);
	const struct wire_object *a = find_object(d, OBJ_A), *b = find_object(d, OBJ_B);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a->name, "shared_counters");
	assert_string_equal(b->name, "[heap]");
	/* the rows still point at their objects */
	uint32_t on_objects = 0;
	for (uint32_t i = 0; i < d->nrows; i++)
		if (d->rows[i].object_id) {
			assert_true(d->rows[i].object_ix < d->nobjects);
			assert_int_equal(d->objects[d->rows[i].object_ix].object_id, d->rows[i].object_id);
			on_objects++;
		}
	assert_int_equal(on_objects, 2);
	wire_window_free(d);
	window_free(w);
}

static void test_false_sharing_travels(void **state)
{
	(void)state;
	struct window *w = analysed_window();
	struct wire_window *d = round_trip(w);
	assert_int_equal(d->nfalse_sharing, 2);
	const struct wire_false_sharing *f = &d->false_sharing[0];
	assert_int_equal(f->line_addr, 0x7e0000001000ULL);
	assert_int_equal(f->object_id, OBJ_A);
	assert_int_equal(f->noffsets, 3);
	assert_int_equal(f->offsets[0], 0);
	assert_int_equal(f->offsets[1], 8);
	assert_int_equal(f->offsets[2], 16);
	assert_int_equal(f->npids, 1);
	assert_int_equal(f->pids[0], 4242);
	assert_int_equal(f->nfuncs, 2);
	assert_int_equal(f->func_ids[0], FUNC_1);
	assert_int_equal(f->func_ids[1], FUNC_2);
	assert_int_equal(f->writers, 26); /* inferred: the HITM loads are the writes */
	assert_int_equal(f->readers, 30);
	assert_true(f->score == 26000.5);
	assert_false(f->true_sharing);
	f = &d->false_sharing[1];
	assert_int_equal(f->line_addr, 0x7e0000002040ULL);
	assert_int_equal(f->object_id, 0);
	assert_int_equal(f->noffsets, 1);
	assert_int_equal(f->offsets[0], 63);
	assert_int_equal(f->pids[0], 4243);
	assert_int_equal(f->nfuncs, 1);
	assert_int_equal(f->func_ids[0], FUNC_2);
	assert_int_equal(f->writers, 5);
	assert_int_equal(f->readers, 4);
	assert_true(f->score == 3.25);
	assert_true(f->true_sharing);
	wire_window_free(d);
	window_free(w);
}

static void test_remote_dram_travels(void **state)
{
	(void)state;
	struct window *w = analysed_window();
	struct wire_window *d = round_trip(w);
	assert_int_equal(d->nremote_dram, 3);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(d->remote_dram[i].flow_id, w->numa[i].flow_id);
		assert_int_equal(d->remote_dram[i].object_id, w->numa[i].object_id);
		assert_int_equal(d->remote_dram[i].mem_node, w->numa[i].mem_node);
		assert_int_equal(d->remote_dram[i].cpu_node, w->numa[i].cpu_node);
		assert_int_equal(d->remote_dram[i].samples, w->numa[i].samples);
		assert_true(d->remote_dram[i].cost == (double)w->numa[i].events);
	}
	wire_window_free(d);
	window_free(w);
}

static void test_no_findings(void **state)
{
	(void)state;
	struct window *w = analysed_window();
	/* analysed sections that are empty, or a window the analyzers never saw */
	w->nfs = 0;
	w->nnuma = 0;
	for (uint32_t i = 0; i < w->nrows; i++)
		w->rows[i].object_id = 0;
	struct wire_window *d = round_trip(w);
	assert_int_equal(d->nobjects, 0);
	assert_int_equal(d->nfalse_sharing, 0);
	assert_int_equal(d->nremote_dram, 0);
	assert_int_equal(d->nrows, 3);
	wire_window_free(d);
	window_free(w);
}

static void test_lists_cut_to_wire_bounds(void **state)
{
	(void)state;
	struct window *w = analysed_window();
	/* every offset touched: 64 offsets, the wire carries WIRE_MAX_LIST, written ones first */
	w->fs[0].written = 0xff00000000000000ULL;
	w->fs[0].accessed = UINT64_MAX;
	struct wire_window *d = round_trip(w);
	const struct wire_false_sharing *f = &d->false_sharing[0];
	assert_int_equal(f->noffsets, WIRE_MAX_LIST);
	for (uint32_t k = 0; k < 8; k++)
		assert_int_equal(f->offsets[k], 56 + k);
	for (uint32_t k = 8; k < WIRE_MAX_LIST; k++)
		assert_int_equal(f->offsets[k], k - 8);
	wire_window_free(d);
	window_free(w);
}

static void test_anomalies_travel(void **state)
{
	(void)state;
	struct window *w = analysed_window();
	w->nanomalies = 3;
	w->anomalies = calloc(3, sizeof(*w->anomalies));
	assert_non_null(w->anomalies);
	w->anomalies[0] = (struct window_anomaly){ .ifname = "h9veth0", .metric = "tx_bytes", .ifindex = 7,
						   .kind = WINDOW_ANOMALY_DROP, .value = 512000.5, .baseline = 1.0e6,
						   .ts_ns = 1700000000123000000ULL };
	w->anomalies[1] = (struct window_anomaly){ .ifname = "eth1", .metric = "rx_drops", .ifindex = 3,
						   .kind = WINDOW_ANOMALY_DROP, .value = 120, .baseline = 0.5,
						   .ts_ns = 1700000000456000000ULL };
	w->anomalies[2] = (struct window_anomaly){ .metric = "latency_us", .kind = WINDOW_ANOMALY_LATENCY,
						   .value = 4000, .baseline = 800, .ts_ns = 1700000000789000000ULL };
	struct wire_window *d = round_trip(w);
	assert_int_equal(d->nanomalies, 3);
	for (uint32_t i = 0; i < 3; i++) {
		const struct window_anomaly *a = &w->anomalies[i];
		const struct wire_anomaly *b = &d->anomalies[i];
		assert_string_equal(b->ifname, a->ifname);
		assert_string_equal(b->metric, a->metric);
		assert_int_equal(b->ifindex, a->ifindex);
		assert_int_equal(b->kind, a->kind);
		assert_true(b->value == a->value);
		assert_true(b->baseline == a->baseline);
		assert_int_equal(b->ts_ns, a->ts_ns);
	}
	/* the rest of the window is unchanged */
	assert_int_equal(d->nrows, 3);
	assert_int_equal(d->nfalse_sharing, 2);
	wire_window_free(d);
	/* none: an empty section */
	w->nanomalies = 0;
	d = round_trip(w);
	assert_int_equal(d->nanomalies, 0);
	wire_window_free(d);
	window_free(w);
}

/* A control plane whose anomaly monitor reads a /proc/net/dev file the test writes. */
struct rig {
	char dir[32], nd[64];
	struct control *c;
	uint64_t mono_ms, real_ms;
	uint32_t nifs;
	bool rx;                  /* RX counts as much as TX (otherwise RX stays idle) */
	uint64_t bytes[ANOMALY_MAX_IFACES], drops[ANOMALY_MAX_IFACES];
};

static void rig_new(struct rig *r, const char *interfaces, uint32_t nifs)
{
	memset(r, 0, sizeof(*r));
	strcpy(r->dir, "/tmp/ms-h9enc-XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->nd, sizeof(r->nd), "%s/dev", r->dir);
	struct anomaly_opts ao = { .interfaces = interfaces, .netdev_path = r->nd, .interval_ms = 100 };
	struct control_opts o = { .start_mode = MODECTL_AUTO,
				  .mode = { .sentinel_budget = 1000, .diagnostic_budget = 4000, .hold_ms = 1000 },
				  .anomaly = &ao, .ncpu = 1 };
	assert_int_equal(control_new(&o, &r->c), 0);
	r->mono_ms = 1000;
	r->real_ms = 1700000000000ULL;
	r->nifs = nifs;
}

/* One evaluation interval (100 ms) in which every interface moved rate bytes/s (in 1000-byte
 * packets) and dropped drops packets/s. */
static void rig_step_drops(struct rig *r, double rate, double drops)
{
	FILE *fp = fopen(r->nd, "w");
	assert_non_null(fp);
	fprintf(fp, "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n");
	for (uint32_t i = 0; i < r->nifs; i++) {
		r->bytes[i] += (uint64_t)(rate / 10);
		r->drops[i] += (uint64_t)(drops / 10);
		unsigned long long b = r->bytes[i], p = r->bytes[i] / 1000, d = r->drops[i];
		if (r->rx)
			fprintf(fp, "  h9t%u: %llu %llu 0 %llu 0 0 0 0 %llu %llu 0 %llu 0 0 0 0\n", i, b, p, d, b, p, d);
		else
			fprintf(fp, "  h9t%u: 0 0 0 0 0 0 0 0 %llu %llu 0 %llu 0 0 0 0\n", i, b, p, d);
	}
	fclose(fp);
	r->mono_ms += 100;
	r->real_ms += 100;
	bool ticked;
	control_tick(r->c, r->mono_ms * 1000000ULL, r->real_ms * 1000000ULL, MODECTL_SENTINEL, &ticked);
}

static void rig_step(struct rig *r, double rate)
{
	rig_step_drops(r, rate, 0);
}

static struct window *rig_take(struct rig *r)
{
	struct window *w = window_alloc(1, 1);
	assert_non_null(w);
	w->seq = 7;
	control_take_anomalies(r->c, w);
	return w;
}

static void rig_free(struct rig *r)
{
	control_free(r->c);
	unlink(r->nd);
	rmdir(r->dir);
}

/* A throughput drop on one interface: attached to the window it fired in, to every window it is
 * still in force in (same fire time), and to the window it cleared in; then no more. */
static void test_control_attaches_signals(void **state)
{
	(void)state;
	struct rig r;
	rig_new(&r, "h9t0", 1);
	for (int i = 0; i < 8; i++)
		rig_step(&r, 1e6);
	struct window *w = rig_take(&r);
	assert_int_equal(w->nanomalies, 0); /* warm, quiet */
	window_free(w);
	rig_step(&r, 1e6);
	rig_step(&r, 4e5); /* 40 % of the baseline: a drop */
	uint64_t fired_ms = r.real_ms;
	rig_step(&r, 4e5);
	w = rig_take(&r);
	assert_int_equal(w->nanomalies, 1);
	assert_int_equal(w->c.anomalies_dropped, 0);
	const struct window_anomaly *a = &w->anomalies[0];
	assert_string_equal(a->ifname, "h9t0");
	assert_string_equal(a->metric, "tx_bytes");
	assert_int_equal(a->kind, WINDOW_ANOMALY_DROP);
	assert_int_equal(a->ifindex, 0); /* no such interface here */
	assert_int_equal(a->ts_ns, fired_ms * 1000000ULL);
	assert_true(a->value > 3.9e5 && a->value < 4.1e5);
	assert_true(a->baseline > 0.99e6 && a->baseline < 1.01e6);
	/* the wire carries it */
	struct wire_window *d = round_trip(w);
	assert_int_equal(d->nanomalies, 1);
	assert_string_equal(d->anomalies[0].metric, "tx_bytes");
	assert_int_equal(d->anomalies[0].kind, 1);
	assert_int_equal(d->anomalies[0].ts_ns, fired_ms * 1000000ULL);
	wire_window_free(d);
	window_free(w);
	/* still in force: the next window has the same episode */
	rig_step(&r, 4e5);
	w = rig_take(&r);
	assert_int_equal(w->nanomalies, 1);
	assert_int_equal(w->anomalies[0].ts_ns, fired_ms * 1000000ULL);
	window_free(w);
	/* traffic back: clears after 2 quiet intervals; that window still has it, the next not */
	rig_step(&r, 1e6);
	rig_step(&r, 1e6);
	w = rig_take(&r);
	assert_int_equal(w->nanomalies, 1);
	window_free(w);
	rig_step(&r, 1e6);
	w = rig_take(&r);
	assert_int_equal(w->nanomalies, 0);
	window_free(w);
	/* a signal that fires and clears between two closes is attached all the same */
	rig_step(&r, 1e6);
	rig_step(&r, 5e6); /* spike */
	uint64_t spike_ms = r.real_ms;
	for (int i = 0; i < 3; i++)
		rig_step(&r, 1e6);
	struct control_snapshot *snap = malloc(sizeof(*snap));
	assert_non_null(snap);
	control_snapshot(r.c, r.mono_ms * 1000000ULL, r.real_ms * 1000000ULL, snap);
	assert_false(snap->anomaly.active); /* cleared before the close */
	free(snap);
	w = rig_take(&r);
	assert_int_equal(w->nanomalies, 1);
	assert_int_equal(w->anomalies[0].kind, WINDOW_ANOMALY_SPIKE);
	assert_int_equal(w->anomalies[0].ts_ns, spike_ms * 1000000ULL);
	window_free(w);
	rig_free(&r);
}

/* More signals in force than a window holds: WINDOW_MAX_ANOMALIES attached, the rest counted
 * once per window (when they fire, and when a new window starts without room for them). */
static void test_control_bounded(void **state)
{
	(void)state;
	struct rig r;
	rig_new(&r, NULL, ANOMALY_MAX_IFACES); /* every interface of the file */
	r.rx = true;
	for (int i = 0; i < 8; i++)
		rig_step(&r, 1e6);
	/* every interface and direction stops and drops packets: 4 x 32 signals */
	rig_step_drops(&r, 0, 1000);
	rig_step_drops(&r, 0, 1000);
	const uint32_t all = 4 * ANOMALY_MAX_IFACES;
	struct window *w = rig_take(&r);
	assert_int_equal(w->nanomalies, WINDOW_MAX_ANOMALIES);
	assert_int_equal(w->c.anomalies_dropped, all - WINDOW_MAX_ANOMALIES);
	window_free(w);
	rig_step_drops(&r, 0, 1000);
	w = rig_take(&r);
	assert_int_equal(w->nanomalies, WINDOW_MAX_ANOMALIES);
	assert_int_equal(w->c.anomalies_dropped, all - WINDOW_MAX_ANOMALIES);
	/* the wire carries every attached one */
	struct wire_window *d = round_trip(w);
	assert_int_equal(d->nanomalies, WINDOW_MAX_ANOMALIES);
	wire_window_free(d);
	window_free(w);
	struct control_snapshot *snap = malloc(sizeof(*snap));
	assert_non_null(snap);
	control_snapshot(r.c, r.mono_ms * 1000000ULL, r.real_ms * 1000000ULL, snap);
	assert_int_equal(snap->anomaly_signals_dropped, 2 * (all - WINDOW_MAX_ANOMALIES));
	free(snap);
	/* a control plane without a monitor attaches nothing */
	rig_free(&r);
	struct control_opts o = { .start_mode = MODECTL_AUTO, .mode = { .sentinel_budget = 1000,
									.diagnostic_budget = 4000 }, .ncpu = 1 };
	struct control *c;
	assert_int_equal(control_new(&o, &c), 0);
	w = window_alloc(1, 1);
	control_take_anomalies(c, w);
	assert_int_equal(w->nanomalies, 0);
	assert_null(w->anomalies);
	window_free(w);
	control_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_objects_travel),
		cmocka_unit_test(test_false_sharing_travels),
		cmocka_unit_test(test_remote_dram_travels),
		cmocka_unit_test(test_no_findings),
		cmocka_unit_test(test_lists_cut_to_wire_bounds),
		cmocka_unit_test(test_anomalies_travel),
		cmocka_unit_test(test_control_attaches_signals),
		cmocka_unit_test(test_control_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
