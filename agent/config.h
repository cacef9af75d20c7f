/* config: the agent's configuration — every key of the operations guide plus SPEC §13, as a
 * conf.h schema (key=value file + --key-name flags, command line wins). It is not the runtime
 * state: budgets and mode change at run time through commands, starting from these values.
 * Thread-safety: filled once by main before any thread starts; read-only afterwards. */
#ifndef MS_AGENT_CONFIG_H
#define MS_AGENT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"

enum agent_mode_cfg {
	AGENT_MODE_SENTINEL = 0,
	AGENT_MODE_DIAGNOSTIC = 1,
	AGENT_MODE_AUTO = 2,
};

struct agent_config {
	/* identity and fleet */
	char agent_id[128];
	char labels[512];
	char coordinator_url[256];
	char coordinator_grpc[256];
	char token_file[256];
	char state_dir[256];
	uint64_t spool_max_bytes;
	int spool_policy;              /* enum spool_full_policy */
	int64_t uplink_contexts;       /* windows in flight to the coordinator */
	uint64_t uplink_timeout_ms;
	uint64_t uplink_heartbeat_ms;
	uint64_t uplink_max_message_bytes;
	char coordinator_ca_file[256]; /* tls+tcp:// coordinator: CA of its certificate */
	char coordinator_cert_file[256]; /* mutual TLS: our certificate and key */
	char coordinator_key_file[256];
	/* sampling */
	int mode;                      /* enum agent_mode_cfg */
	int64_t sentinel_budget;       /* samples per second per CPU */
	int64_t diagnostic_budget;
	uint64_t hard_drop_ns;
	uint64_t flow_skid_ns;
	uint64_t thread_flow_ns;
	uint64_t thread_send_flow_ns;
	uint64_t window_ms;
	char events[256];
	int64_t sample_freq;           /* cpu-clock Hz */
	int64_t page_fault_period;
	int64_t target_pid;            /* 0 = whole host */
	int bpf_hook_tier;             /* enum sampler_tier */
	int stacks;                    /* enum sampler_stacks */
	bool packet_context;           /* attach the RX/TX packet hooks */
	int64_t ringbuf_bytes;
	int64_t agg_max_rows;
	int64_t agg_max_flows;
	char xdp_interfaces[256];
	bool perf_mock_mode;
	int64_t mock_period_ms;
	int64_t mock_flows;
	int64_t mock_rate;             /* synthetic samples per second (0 = as fast as possible) */
	uint64_t mock_seed;
	bool mock_data_addr;           /* synthetic samples carry data addresses (synth.h) */
	/* exports */
	char metrics_address[256];
	uint16_t metrics_port;
	char control_address[256];
	uint16_t control_port;
	uint64_t control_timeout_ms;   /* per-request reply timeout of the control API */
	int64_t metrics_top_k;         /* per-window top-K of the per-flow series */
	bool metrics_guide_names;      /* also ms_samples_per_sec (the guide's name; promtool lint flags it) */
	char clickhouse_endpoint[256];
	char clickhouse_table[64];
	char clickhouse_raw_table[64];
	uint64_t clickhouse_flush_ms;
	char clickhouse_user[64];
	char clickhouse_password_file[256];
	char clickhouse_database[64];
	int64_t clickhouse_batch_rows;
	/* anomaly monitor */
	bool anomaly_enabled;
	char anomaly_interfaces[256];
	uint64_t anomaly_interval_ms;
	char anomaly_latency_file[256];
	double anomaly_drop_ratio;
	double anomaly_spike_ratio;
	double anomaly_latency_ratio;
	int64_t anomaly_min_bytes_per_sec;
	/* mode controller and targets */
	uint64_t mode_hold_ms;
	double shed_enter_ratio;
	double shed_exit_ratio;
	char targets[2048];            /* comma list of kind:value (targets.h) */
	/* process */
	char log_level[16];
	char window_log[256];          /* append each closed window as a JSON line ("" = off) */
	char sample_log[256];          /* per-sample binary log for the accuracy suite ("" = off) */
	uint64_t sample_log_max_bytes;
	uint64_t duration_ms;          /* stop after this long (0 = run until signalled) */
	bool summary;                  /* print top flows/functions at exit */
};

extern const struct conf_schema agent_config_schema;

/* Rewrites the operations guide's flag spellings (--perf-mock, --no-perf-mock) in place. */
void agent_config_alias_args(int argc, char **argv);

/* Cross-key checks after loading (e.g. diagnostic budget >= sentinel budget). */
int agent_config_validate(const struct agent_config *c, struct conf_error *err);

/* The ring buffer size to create: ringbuf_bytes, or for 0 512 KiB per CPU rounded up to a power
 * of two within 1..64 MiB. Why not one big default: the handler writes where the consumer last
 * read a quarter-ring ago (it wakes at ringbuf_bytes / 4), so the ring's size is the sampling
 * path's cache footprint — 8 MiB cost ~820 ns per sample here, 1 MiB ~570 (bench bpf_cost). */
uint32_t agent_config_ringbuf_bytes(const struct agent_config *c, long ncpu);

#endif
