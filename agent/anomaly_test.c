/* Anomaly monitor on simulated counters: a stop, a halving, a spike, packet drops and a latency
 * spike are each detected within a few intervals, both directions count, idle interfaces never
 * fire, gauges move every interval, counter resets and relearning behave; the /proc/net/dev and
 * latency parsers accept the real formats and refuse the rest. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomaly.h"

#define IV 500

struct feed {
	struct anomaly *a;
	uint64_t now;
	struct anomaly_sample s;
};

static void feed_init(struct feed *f, const struct anomaly_opts *o)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(anomaly_new(o, &f->a), 0);
	snprintf(f->s.name, sizeof(f->s.name), "eth0");
	f->now = 100000;
}

/* One interval at the given byte rates (packets: 1000-byte packets). */
static void step(struct feed *f, double rx_bps, double tx_bps, double drops_ps, const double *lat)
{
	f->now += IV;
	f->s.bytes[ANOMALY_RX] += (uint64_t)(rx_bps * IV / 1000);
	f->s.bytes[ANOMALY_TX] += (uint64_t)(tx_bps * IV / 1000);
	f->s.packets[ANOMALY_RX] += (uint64_t)(rx_bps * IV / 1000 / 1000);
	f->s.packets[ANOMALY_TX] += (uint64_t)(tx_bps * IV / 1000 / 1000);
	f->s.dropped[ANOMALY_RX] += (uint64_t)(drops_ps * IV / 1000);
	anomaly_feed(f->a, &f->s, 1, lat, f->now, f->now + 1700000000000ull);
}

static uint32_t active_bits(struct feed *f)
{
	struct anomaly_view *v = malloc(sizeof(*v));
	anomaly_view(f->a, v);
	uint32_t b = v->ifs[0].active;
	free(v);
	return b;
}

#define BIT(dir, kind) (1u << ((dir) * ANOMALY__NIFKINDS + (kind)))

static int intervals_until(struct feed *f, double rx, double tx, uint32_t bit, int max)
{
	for (int i = 1; i <= max; i++) {
		step(f, rx, tx, 0, NULL);
		if (active_bits(f) & bit)
			return i;
	}
	return -1;
}

static void test_stop_detected(void **state)
{
	struct anomaly_opts o = { .interfaces = "" };
	struct feed f;
	feed_init(&f, &o);
	for (int i = 0; i < 20; i++)
		step(&f, 1e6, 1e6, 0, NULL);
	assert_false(anomaly_active(f.a));
	int n = intervals_until(&f, 0, 1e6, BIT(ANOMALY_RX, ANOMALY_STOP), 3);
	assert_true(n >= 1 && n <= 1);
	assert_true(anomaly_active(f.a));
	/* a stop stays an anomaly while it lasts (zero traffic is not skipped) */
	for (int i = 0; i < 20; i++)
		step(&f, 0, 1e6, 0, NULL);
	assert_true(active_bits(&f) & BIT(ANOMALY_RX, ANOMALY_STOP));
	/* traffic back: clears after clear_intervals */
	step(&f, 1e6, 1e6, 0, NULL);
	assert_true(anomaly_active(f.a));
	step(&f, 1e6, 1e6, 0, NULL);
	assert_false(anomaly_active(f.a));
	struct anomaly_view v;
	anomaly_view(f.a, &v);
	assert_int_equal(v.fired[ANOMALY_STOP], 1);
	anomaly_free(f.a);
}

static void test_halving_both_directions(void **state)
{
	struct anomaly_opts o = { 0 };
	struct feed f;
	feed_init(&f, &o);
	for (int i = 0; i < 20; i++)
		step(&f, 2e6, 2e6, 0, NULL);
	/* TX only (the earlier monitor counted RX only) */
	int n = intervals_until(&f, 2e6, 1e6, BIT(ANOMALY_TX, ANOMALY_DROP), 3);
	assert_true(n >= 1 && n <= 2);
	assert_false(active_bits(&f) & BIT(ANOMALY_RX, ANOMALY_DROP));
	assert_false(active_bits(&f) & BIT(ANOMALY_TX, ANOMALY_STOP));
	struct anomaly_view v;
	anomaly_view(f.a, &v);
	assert_true(v.ifs[0].since_ms[ANOMALY_TX][ANOMALY_DROP] > 1700000000000ull);
	assert_true(v.ifs[0].bytes_per_sec[ANOMALY_TX] < 1.1e6);
	/* the baseline was frozen: still about the old level */
	assert_true(v.ifs[0].baseline_bytes_per_sec[ANOMALY_TX] > 1.8e6);
	anomaly_free(f.a);
}

/* A halving that straddles an interval boundary is still caught within three intervals. */
static void test_halving_mid_interval(void **state)
{
	struct anomaly_opts o = { 0 };
	struct feed f;
	feed_init(&f, &o);
	for (int i = 0; i < 20; i++)
		step(&f, 2e6, 0, 0, NULL);
	step(&f, 1.5e6, 0, 0, NULL); /* half the interval at full rate */
	int n = intervals_until(&f, 1e6, 0, BIT(ANOMALY_RX, ANOMALY_DROP), 2);
	assert_true(n >= 1);
	anomaly_free(f.a);
}

static void test_spike_and_packet_drops(void **state)
{
	struct anomaly_opts o = { 0 };
	struct feed f;
	feed_init(&f, &o);
	for (int i = 0; i < 10; i++)
		step(&f, 1e6, 1e6, 0, NULL);
	assert_int_equal(intervals_until(&f, 4e6, 1e6, BIT(ANOMALY_RX, ANOMALY_SPIKE), 3), 1);
	for (int i = 0; i < 3; i++)
		step(&f, 1e6, 1e6, 0, NULL);
	assert_false(anomaly_active(f.a));
	step(&f, 1e6, 1e6, 500, NULL);
	assert_true(active_bits(&f) & BIT(ANOMALY_RX, ANOMALY_PACKET_DROPS));
	anomaly_free(f.a);
}

/* An idle or nearly idle interface never fires, whatever its relative swings. */
static void test_idle_never_fires(void **state)
{
	struct anomaly_opts o = { 0 };
	struct feed f;
	feed_init(&f, &o);
	for (int i = 0; i < 600; i++) { /* five minutes */
		double r = (i % 7 == 0) ? 12000 : (i % 3 == 0) ? 0 : 800;
		step(&f, r, r / 2, (i % 50 == 0) ? 4 : 0, NULL);
		assert_false(anomaly_active(f.a));
	}
	struct anomaly_view v;
	anomaly_view(f.a, &v);
	assert_int_equal(v.evaluations, 600);
	assert_true(v.ifs[0].warm);
	anomaly_free(f.a);
}

static void test_latency(void **state)
{
	struct anomaly_opts o = { .latency_file = "/nonexistent" };
	struct feed f;
	feed_init(&f, &o);
	double base = 1000, high = 5000;
	for (int i = 0; i < 10; i++)
		step(&f, 0, 0, 0, &base);
	assert_false(anomaly_active(f.a));
	step(&f, 0, 0, 0, &high);
	assert_true(anomaly_active(f.a));
	struct anomaly_view v;
	anomaly_view(f.a, &v);
	assert_true(v.latency_active && v.latency_valid);
	assert_true(v.latency_us == 5000);
	assert_true(v.latency_baseline_us > 900 && v.latency_baseline_us < 1100);
	step(&f, 0, 0, 0, NULL); /* no data is not an anomaly clearing nor firing */
	step(&f, 0, 0, 0, &base);
	step(&f, 0, 0, 0, &base);
	assert_false(anomaly_active(f.a));
	anomaly_free(f.a);
}

static void test_relearn_and_reset(void **state)
{
	struct anomaly_opts o = { .relearn_ms = 10000 };
	struct feed f;
	feed_init(&f, &o);
	for (int i = 0; i < 10; i++)
		step(&f, 1e6, 0, 0, NULL);
	step(&f, 0.3e6, 0, 0, NULL);
	assert_true(anomaly_active(f.a));
	for (int i = 0; i < 25; i++)
		step(&f, 0.3e6, 0, 0, NULL);
	assert_false(anomaly_active(f.a)); /* 0.3 MB/s is the new normal */
	struct anomaly_view v;
	anomaly_view(f.a, &v);
	assert_int_equal(v.relearned, 1);
	/* counters going backwards (interface re-created) restart the deltas, no signal */
	memset(f.s.bytes, 0, sizeof(f.s.bytes));
	memset(f.s.packets, 0, sizeof(f.s.packets));
	step(&f, 0.3e6, 0, 0, NULL);
	step(&f, 0.3e6, 0, 0, NULL);
	assert_false(anomaly_active(f.a));
	anomaly_free(f.a);
}

static const char netdev[] =
	"Inter-|   Receive                                                |  Transmit\n"
	" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
	"    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n"
	"  eth0: 123456789 1000 1 7 0 0 0 3 987654321 2000 0 9 0 0 0 0\n"
	"veth-x: 5 1 0 0 0 0 0 0 6 2 0 0 0 0 0 0\n"
	"broken line without colon\n"
	"  bad0: 1 2 3\n"
	"  big0: 99999999999999999999999 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

static void test_parse_netdev(void **state)
{
	struct anomaly_sample s[8];
	int n = anomaly_parse_netdev(netdev, strlen(netdev), s, 8);
	assert_int_equal(n, 3);
	assert_string_equal(s[1].name, "eth0");
	assert_int_equal(s[1].bytes[ANOMALY_RX], 123456789);
	assert_int_equal(s[1].packets[ANOMALY_RX], 1000);
	assert_int_equal(s[1].dropped[ANOMALY_RX], 7);
	assert_int_equal(s[1].bytes[ANOMALY_TX], 987654321);
	assert_int_equal(s[1].packets[ANOMALY_TX], 2000);
	assert_int_equal(s[1].dropped[ANOMALY_TX], 9);
	assert_string_equal(s[2].name, "veth-x");
	assert_int_equal(anomaly_parse_netdev(netdev, strlen(netdev), s, 1), 1);
	assert_int_equal(anomaly_parse_netdev("garbage\n", 8, s, 8), -EINVAL);
	assert_int_equal(anomaly_parse_netdev("", 0, s, 8), -EINVAL);
	/* the real file of this host parses */
	FILE *fp = fopen("/proc/net/dev", "r");
	if (fp) {
		char buf[65536];
		size_t len = fread(buf, 1, sizeof(buf), fp);
		fclose(fp);
		assert_true(anomaly_parse_netdev(buf, len, s, 8) >= 1);
	}
}

static void test_parse_latency(void **state)
{
	double v;
	assert_int_equal(anomaly_parse_latency("1500\n", 5, &v), 0);
	assert_true(v == 1500);
	assert_int_equal(anomaly_parse_latency("  12.25 ", 8, &v), 0);
	assert_true(v == 12.25);
	static const char *const bad[] = { "", "\n", "-1", "1e3", "inf", "nan", "0x10", "1.2.3", ".", "12 ms", "1,5" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(anomaly_parse_latency(bad[i], strlen(bad[i]), &v), -EINVAL);
}

/* The real reading path: a file in /proc/net/dev format and a latency file. */
static void test_tick_files(void **state)
{
	char dir[] = "/tmp/ms-anomaly-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char nd[128], lat[128];
	snprintf(nd, sizeof(nd), "%s/dev", dir);
	snprintf(lat, sizeof(lat), "%s/lat", dir);
	struct anomaly_opts o = { .interfaces = "eth0,missing0", .netdev_path = nd, .latency_file = lat,
				  .interval_ms = 100 };
	struct anomaly *a;
	assert_int_equal(anomaly_new(&o, &a), 0);
	uint64_t now = 1000;
	assert_int_equal(anomaly_tick(a, now, now), -ENOENT);
	for (int i = 0; i < 12; i++) {
		FILE *fp = fopen(nd, "w");
		fprintf(fp, "Inter-|\n face |\n  eth0: %d 0 0 0 0 0 0 0 %d 0 0 0 0 0 0 0\n  eth1: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
			i * 100000, i * 50000);
		fclose(fp);
		fp = fopen(lat, "w");
		fprintf(fp, "%d\n", i < 10 ? 800 : 4000);
		fclose(fp);
		now += 100;
		assert_int_equal(anomaly_tick(a, now, now), 1);
		assert_int_equal(anomaly_tick(a, now + 50, now + 50), 0); /* not due */
	}
	struct anomaly_view v;
	anomaly_view(a, &v);
	assert_int_equal(v.n, 2); /* the explicit list: eth1 is not watched */
	assert_string_equal(v.ifs[0].name, "eth0");
	assert_true(v.ifs[0].present);
	assert_false(v.ifs[1].present);
	assert_true(v.ifs[0].bytes_per_sec[ANOMALY_RX] > 0.99e6 && v.ifs[0].bytes_per_sec[ANOMALY_RX] < 1.01e6);
	assert_true(v.latency_active);
	assert_int_equal(v.read_errors, 1);
	anomaly_free(a);
	unlink(nd);
	unlink(lat);
	rmdir(dir);
}

static void test_bad_opts(void **state)
{
	struct anomaly *a;
	struct anomaly_opts o = { .interfaces = "eth0,this-name-is-too-long0" };
	assert_int_equal(anomaly_new(&o, &a), -EINVAL);
	struct anomaly_opts o2 = { .drop_ratio = 0.5, .stop_ratio = 0.6 };
	assert_int_equal(anomaly_new(&o2, &a), -EINVAL);
	struct anomaly_opts o3 = { .interfaces = " eth0 , eth1 ," };
	assert_int_equal(anomaly_new(&o3, &a), 0);
	struct anomaly_view v;
	anomaly_view(a, &v);
	assert_int_equal(v.n, 2);
	assert_string_equal(v.ifs[1].name, "eth1");
	anomaly_free(a);
	assert_null(anomaly_free(NULL));
	assert_string_equal(anomaly_kind_name(ANOMALY_LATENCY), "latency");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stop_detected),
		cmocka_unit_test(test_halving_both_directions),
		cmocka_unit_test(test_halving_mid_interval),
		cmocka_unit_test(test_spike_and_packet_drops),
		cmocka_unit_test(test_idle_never_fires),
		cmocka_unit_test(test_latency),
		cmocka_unit_test(test_relearn_and_reset),
		cmocka_unit_test(test_parse_netdev),
		cmocka_unit_test(test_parse_latency),
		cmocka_unit_test(test_tick_files),
		cmocka_unit_test(test_bad_opts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
