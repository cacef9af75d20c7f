/* anomaly: the anomaly monitor — per-interface RX and TX throughput, packet rate and drops read
 * from /proc/net/dev (the agent's network namespace), plus an optional latency file, each with
 * an EWMA baseline; it raises signals for a traffic stop (zero traffic is an anomaly, not a
 * skip), a throughput drop, a throughput spike, packet drops and a latency spike. The mode
 * controller escalates on them. It is not a traffic classifier and keeps no history beyond the
 * baselines. Gauges are refreshed every interval whether or not a signal fires.
 *
 * Rules per interface and direction, evaluated every interval_ms:
 * - warm-up: the first `warmup` intervals only build the baseline;
 * - a throughput signal needs a baseline of at least min_bytes_per_sec (an idle or nearly idle
 *   interface never fires): stop when rate <= stop_ratio x baseline, drop when rate <
 *   drop_ratio x baseline, spike when rate > spike_ratio x baseline;
 * - packet drops: dropped/s >= 10 and > 1 % of packets/s and > 3 x its own baseline;
 * - a signal fires on the first interval its condition holds and clears after clear_intervals
 *   intervals without it; the baseline is frozen while a throughput signal is active, and after
 *   relearn_ms of one continuous signal the current level becomes the new baseline;
 * - latency file: one decimal number of microseconds (what a prober last measured), re-read
 *   every interval; a spike is a value > latency_ratio x its baseline. A missing or malformed
 *   file is "no latency data", not an anomaly.
 * Counter decreases (interface re-created) restart that interface's deltas.
 * Thread-safety: none; owned by the sampling loop (runs on its timer). */
#ifndef MS_ANOMALY_H
#define MS_ANOMALY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ANOMALY_MAX_IFACES 32
#define ANOMALY_IFNAME 16

enum anomaly_kind {
	ANOMALY_STOP = 0,
	ANOMALY_DROP,          /* throughput drop */
	ANOMALY_SPIKE,         /* throughput spike */
	ANOMALY_PACKET_DROPS,
	ANOMALY__NIFKINDS,     /* kinds per interface and direction */
	ANOMALY_LATENCY = ANOMALY__NIFKINDS,
	ANOMALY__NKINDS,
};

enum anomaly_dir { ANOMALY_RX = 0, ANOMALY_TX = 1 };

struct anomaly_opts {
	const char *interfaces;     /* comma list; NULL or "" = every interface but lo */
	uint64_t interval_ms;       /* 0: 500 */
	const char *netdev_path;    /* NULL: /proc/net/dev */
	const char *latency_file;   /* NULL or "": no latency source */
	double drop_ratio;          /* 0: 0.6 */
	double stop_ratio;          /* 0: 0.05 */
	double spike_ratio;         /* 0: 3.0 */
	double latency_ratio;       /* 0: 2.0 */
	double min_bytes_per_sec;   /* 0: 16384 */
	double alpha;               /* EWMA weight of a new interval; 0: 0.2 */
	uint32_t warmup;            /* 0: 4 intervals */
	uint32_t clear_intervals;   /* 0: 2 */
	uint64_t relearn_ms;        /* 0: 60000 */
};

/* Counters of one interface as read. */
struct anomaly_sample {
	char name[ANOMALY_IFNAME];
	uint64_t bytes[2], packets[2], dropped[2]; /* [ANOMALY_RX], [ANOMALY_TX] */
};

struct anomaly_iface_view {
	char name[ANOMALY_IFNAME];
	bool present;               /* seen in the last read */
	bool warm;                  /* baseline ready */
	double bytes_per_sec[2], packets_per_sec[2], drops_per_sec[2];
	double baseline_bytes_per_sec[2];
	uint32_t active;            /* bit (dir * ANOMALY__NIFKINDS + kind) */
	uint64_t since_ms[2][ANOMALY__NIFKINDS]; /* CLOCK_REALTIME ms when the active signal fired */
};

struct anomaly_view {
	uint32_t n;
	struct anomaly_iface_view ifs[ANOMALY_MAX_IFACES];
	bool latency_configured, latency_valid, latency_active;
	double latency_us, latency_baseline_us;
	uint64_t latency_since_ms;
	bool active;                /* any signal */
	uint64_t fired[ANOMALY__NKINDS]; /* signals raised since start, by kind */
	uint64_t evaluations, read_errors, relearned;
	uint64_t interval_ms;
};

struct anomaly;

int anomaly_new(const struct anomaly_opts *opts, struct anomaly **ret);
struct anomaly *anomaly_free(struct anomaly *a);

/* Reads the counters when interval_ms has passed since the last evaluation (now_ms monotonic,
 * real_ms CLOCK_REALTIME for the signal stamps). Returns 1 evaluated, 0 not due yet, or a
 * negative errno when /proc/net/dev could not be read (counted, retried next interval). */
int anomaly_tick(struct anomaly *a, uint64_t now_ms, uint64_t real_ms);

/* The evaluation step on given counters (what anomaly_tick does after reading); latency_us NULL
 * = no latency data this interval. Exposed for tests. */
void anomaly_feed(struct anomaly *a, const struct anomaly_sample *s, size_t n, const double *latency_us,
		  uint64_t now_ms, uint64_t real_ms);

bool anomaly_active(const struct anomaly *a);

/* A signal in force after the last evaluation. */
struct anomaly_signal {
	char ifname[ANOMALY_IFNAME]; /* "" for latency */
	uint8_t dir;                 /* enum anomaly_dir (0 for latency) */
	uint8_t kind;                /* enum anomaly_kind */
	double value, baseline;      /* bytes/s (stop, drop, spike), drops/s (packet_drops), us (latency) */
	uint64_t since_ms;           /* CLOCK_REALTIME ms when it fired: identifies the episode */
};
/* Copies at most max of the signals in force into out (interfaces in table order, RX before TX,
 * kinds in enum order, latency last); returns how many are in force (may exceed max). Cost:
 * O(interfaces), no allocation. A caller that polls it after every evaluation (anomaly_tick
 * returned 1) sees every signal: a raised signal stays in force for at least one evaluation
 * (unless a relearn ends its episode in the evaluation that raised it). */
size_t anomaly_signals(const struct anomaly *a, struct anomaly_signal *out, size_t max);
void anomaly_view(const struct anomaly *a, struct anomaly_view *ret);
const char *anomaly_kind_name(int kind);

/* Parses /proc/net/dev text into at most max samples (lines that do not parse are skipped).
 * Returns the number of samples, or -EINVAL when the header is not the expected one. */
int anomaly_parse_netdev(const char *buf, size_t len, struct anomaly_sample *out, size_t max);
/* Parses the latency file: optional whitespace, a finite non-negative decimal, optional
 * whitespace. 0 or -EINVAL. */
int anomaly_parse_latency(const char *buf, size_t len, double *ret_us);

#endif
