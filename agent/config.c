/* config: see config.h. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sampler.h"
#include "secretfile.h"
#include "spool.h"
#include "targets.h"

#define S(f) CONF_STR_FIELD(struct agent_config, f)
#define F(f) CONF_FIELD(struct agent_config, f)

static const struct conf_choice mode_choices[] = {
	{ "sentinel", AGENT_MODE_SENTINEL },
	{ "diagnostic", AGENT_MODE_DIAGNOSTIC },
	{ "auto", AGENT_MODE_AUTO },
	/* the operations guide's template says mode=false: no forced mode, i.e. automatic */
	{ "false", AGENT_MODE_AUTO },
	{ NULL, 0 },
};

static const struct conf_choice spool_policy_choices[] = {
	{ "drop_oldest", SPOOL_DROP_OLDEST },
	{ "drop_newest", SPOOL_DROP_NEWEST },
	{ NULL, 0 },
};

static const struct conf_choice tier_choices[] = {
	{ "auto", SAMPLER_TIER_AUTO },
	{ "tp_btf", SAMPLER_TIER_TP_BTF },
	{ "raw_tp", SAMPLER_TIER_RAW_TP },
	{ "tracepoint", SAMPLER_TIER_TRACEPOINT },
	{ NULL, 0 },
};

static const struct conf_choice stack_choices[] = {
	{ "none", SAMPLER_STACKS_NONE },
	{ "kernel", SAMPLER_STACKS_KERNEL },
	{ "user", SAMPLER_STACKS_USER },
	{ "both", SAMPLER_STACKS_BOTH },
	{ NULL, 0 },
};

static const struct conf_key keys[] = {
	{ "agent_id", CONF_STRING, S(agent_id), NULL, 0, 0, NULL, "agent identity (default: hostname)" },
	{ "labels", CONF_STRING, S(labels), "", 0, 0, NULL, "labels k=v,k=v for fleet selectors" },
	{ "coordinator_url", CONF_STRING, S(coordinator_url), "", 0, 0, NULL,
	  "nng URL of the coordinator (tcp://, ipc://, tls+tcp://); empty = standalone" },
	{ "coordinator_grpc", CONF_STRING, S(coordinator_grpc), "", 0, 0, NULL,
	  "host:port of the coordinator's gRPC API (fleet control Watch stream)" },
	{ "token_file", CONF_STRING, S(token_file), "", 0, 0, NULL,
	  "file holding the bearer token (control API, coordinator)" },
	{ "state_dir", CONF_STRING, S(state_dir), "/var/lib/micro_sentinel", 0, 0, NULL,
	  "persisted window seq and spool" },
	{ "spool_max_bytes", CONF_UINT64, F(spool_max_bytes), 0, "268435456", 4096, INT64_MAX, NULL,
	  "bound of the on-disk spool of unacked windows" },
	{ "spool_policy", CONF_ENUM, F(spool_policy), 0, "drop_oldest", 0, 0, spool_policy_choices,
	  "when the spool is full: drop_oldest (keep recent windows) or drop_newest; every drop is counted" },
	{ "uplink_contexts", CONF_INT, F(uplink_contexts), 0, "8", 1, 64, NULL,
	  "windows in flight to the coordinator at once" },
	{ "uplink_timeout_ms", CONF_DURATION, F(uplink_timeout_ms), 0, "10000", 100, 600000, NULL,
	  "a window not acked within this time is sent again" },
	{ "uplink_heartbeat_ms", CONF_DURATION, F(uplink_heartbeat_ms), 0, "5000", 100, 600000, NULL,
	  "heartbeat to the coordinator when no window was sent for this long" },
	{ "uplink_max_message_bytes", CONF_UINT64, F(uplink_max_message_bytes), 0, "4194304", 4096, 1073741824, NULL,
	  "largest window message sent (larger windows are dropped and counted)" },
	{ "coordinator_ca_file", CONF_STRING, S(coordinator_ca_file), "", 0, 0, NULL,
	  "tls+tcp:// coordinator: CA certificate (PEM) that signed the coordinator's certificate" },
	{ "coordinator_cert_file", CONF_STRING, S(coordinator_cert_file), "", 0, 0, NULL,
	  "mutual TLS: this agent's certificate (PEM)" },
	{ "coordinator_key_file", CONF_STRING, S(coordinator_key_file), "", 0, 0, NULL,
	  "mutual TLS: this agent's private key (PEM, unencrypted)" },
	{ "mode", CONF_ENUM, F(mode), 0, "auto", 0, 0, mode_choices,
	  "start mode: sentinel, diagnostic, or auto (mode controller decides)" },
	{ "sentinel_budget", CONF_INT, F(sentinel_budget), 0, "5000", 1, 10000000, NULL,
	  "samples per second per CPU in sentinel mode" },
	{ "diagnostic_budget", CONF_INT, F(diagnostic_budget), 0, "20000", 1, 10000000, NULL,
	  "samples per second per CPU in diagnostic mode" },
	{ "hard_drop_ns", CONF_UINT64, F(hard_drop_ns), 0, "0", 0, 1000000000, NULL,
	  "minimum gap between two emitted samples on one CPU (0 = none)" },
	{ "flow_skid_ns", CONF_UINT64, F(flow_skid_ns), 0, "50000", 0, 10000000000LL, NULL,
	  "validity of per-CPU packet context (skid scale)" },
	{ "thread_flow_ns", CONF_UINT64, F(thread_flow_ns), 0, "5000000", 0, 60000000000LL, NULL,
	  "validity of per-thread socket context (request scale)" },
	{ "thread_send_flow_ns", CONF_UINT64, F(thread_send_flow_ns), 0, "100000", 0, 4000000000LL, NULL,
	  "validity of a thread context set by a send, which usually ends a request (0 = thread_flow_ns)" },
	{ "window_ms", CONF_DURATION, F(window_ms), 0, "1000", 10, 3600000, NULL,
	  "aggregation window length" },
	{ "events", CONF_STRING, S(events), "", 0, 0, NULL,
	  "sampling events, comma list (cycles,cache-misses,branch-misses,l3-miss,hitm,cpu-clock,page-faults); empty = defaults" },
	{ "sample_freq", CONF_INT, F(sample_freq), 0, "999", 1, 100000, NULL, "cpu-clock sampling frequency in Hz" },
	{ "page_fault_period", CONF_INT, F(page_fault_period), 0, "64", 1, 1000000, NULL,
	  "sample every Nth page fault" },
	{ "target_pid", CONF_INT, F(target_pid), 0, "0", 0, 4194304, NULL,
	  "sample only this process (0 = the whole host)" },
	{ "bpf_hook_tier", CONF_ENUM, F(bpf_hook_tier), 0, "auto", 0, 0, tier_choices,
	  "context hook flavour: auto probes tp_btf, raw_tp, tracepoint in that order" },
	{ "stacks", CONF_ENUM, F(stacks), 0, "none", 0, 0, stack_choices, "record stack ids" },
	{ "packet_context", CONF_BOOL, F(packet_context), 0, "true", 0, 0, NULL,
	  "attach the per-packet RX/TX context hooks (the packet rule, flow_skid_ns); false: socket (thread) context only, without their per-packet cost" },
	{ "ringbuf_bytes", CONF_INT, F(ringbuf_bytes), 0, "0", 0, 1073741824, NULL,
	  "BPF ring buffer size (power of two, >= 65536); 0 = 512 KiB per CPU, within 1..64 MiB" },
	{ "agg_max_rows", CONF_INT, F(agg_max_rows), 0, "65536", 16, 16777216, NULL,
	  "rows per window before keys are coarsened" },
	{ "agg_max_flows", CONF_INT, F(agg_max_flows), 0, "131072", 1, 16777216, NULL,
	  "flows per window in the flow dictionary" },
	{ "xdp_interfaces", CONF_STRING, S(xdp_interfaces), "", 0, 0, NULL,
	  "interfaces to attach the XDP context injector to (comma list)" },
	{ "perf_mock_mode", CONF_BOOL, F(perf_mock_mode), 0, "false", 0, 0, NULL,
	  "use the deterministic synthetic source instead of BPF (also --perf-mock / --no-perf-mock)" },
	{ "mock_period_ms", CONF_INT, F(mock_period_ms), 0, "25", 1, 60000, NULL,
	  "synthetic source: emit a batch every N ms" },
	{ "mock_flows", CONF_INT, F(mock_flows), 0, "64", 1, 10000000, NULL, "synthetic source: distinct flows" },
	{ "mock_rate", CONF_INT, F(mock_rate), 0, "20000", 0, 1000000000, NULL,
	  "synthetic source: samples per second (0 = as fast as possible)" },
	{ "mock_seed", CONF_UINT64, F(mock_seed), 0, "1", 0, 0, NULL, "synthetic source: seed" },
	{ "mock_data_addr", CONF_BOOL, F(mock_data_addr), 0, "false", 0, 0, NULL,
	  "synthetic source: samples carry data addresses on a falsely shared line and a two-node table "
	  "(kept for events that deliver addresses, e.g. events=hitm)" },
	{ "metrics_address", CONF_HOST, S(metrics_address), "127.0.0.1", 0, 0, NULL, "Prometheus /metrics bind address" },
	{ "metrics_port", CONF_PORT, F(metrics_port), 0, "9105", 0, 65535, NULL, "Prometheus /metrics port (0 = off)" },
	{ "control_address", CONF_HOST, S(control_address), "127.0.0.1", 0, 0, NULL, "local control API bind address" },
	{ "control_port", CONF_PORT, F(control_port), 0, "9200", 0, 65535, NULL, "local control API port (0 = off)" },
	{ "control_timeout_ms", CONF_DURATION, F(control_timeout_ms), 0, "5000", 100, 600000, NULL,
	  "control API: a request not answered within this time gets 503 (408 for a body that trickles)" },
	{ "metrics_top_k", CONF_INT, F(metrics_top_k), 0, "20", 1, 200, NULL,
	  "per-flow series (ms_flow_micromiss_rate) exported per window: the top K, the rest leave" },
	{ "metrics_guide_names", CONF_BOOL, F(metrics_guide_names), 0, "false", 0, 0, NULL,
	  "also export ms_samples_per_sec under the guide's name (promtool's linter flags the abbreviation; "
	  "ms_samples_per_second is always exported)" },
	{ "clickhouse_endpoint", CONF_STRING, S(clickhouse_endpoint), "", 0, 0, NULL,
	  "standalone mode: ClickHouse HTTP endpoint (used when no coordinator is configured)" },
	{ "clickhouse_table", CONF_STRING, S(clickhouse_table), "ms_flow_rollup", 0, 0, NULL, "rollup table" },
	{ "clickhouse_raw_table", CONF_STRING, S(clickhouse_raw_table), "ms_raw_samples", 0, 0, NULL, "raw sample table" },
	{ "clickhouse_flush_ms", CONF_DURATION, F(clickhouse_flush_ms), 0, "500", 10, 600000, NULL,
	  "standalone mode: flush age" },
	{ "clickhouse_user", CONF_STRING, S(clickhouse_user), "default", 0, 0, NULL, "standalone mode: ClickHouse user" },
	{ "clickhouse_password_file", CONF_STRING, S(clickhouse_password_file), "", 0, 0, NULL,
	  "standalone mode: file holding the ClickHouse password (must not be readable by others)" },
	{ "clickhouse_database", CONF_STRING, S(clickhouse_database), "microsentinel", 0, 0, NULL,
	  "standalone mode: ClickHouse database (schema from micro_sentinel_coordinator --init-schema)" },
	{ "clickhouse_batch_rows", CONF_INT, F(clickhouse_batch_rows), 0, "100000", 1, 10000000, NULL,
	  "standalone mode: flush a batch at this many rows" },
	{ "anomaly_enabled", CONF_BOOL, F(anomaly_enabled), 0, "true", 0, 0, NULL, "run the anomaly monitor" },
	{ "anomaly_interfaces", CONF_STRING, S(anomaly_interfaces), "", 0, 0, NULL,
	  "interfaces watched by the anomaly monitor (comma list; empty = every interface but lo)" },
	{ "anomaly_interval_ms", CONF_DURATION, F(anomaly_interval_ms), 0, "500", 10, 600000, NULL,
	  "anomaly monitor period" },
	{ "anomaly_latency_file", CONF_STRING, S(anomaly_latency_file), "", 0, 0, NULL,
	  "latency source: a file holding one number, the latest latency in microseconds, re-read every period" },
	{ "anomaly_drop_ratio", CONF_DOUBLE, F(anomaly_drop_ratio), 0, "0.6", 0, 0, NULL,
	  "throughput below this share of its baseline is a drop (0.06..0.95)" },
	{ "anomaly_spike_ratio", CONF_DOUBLE, F(anomaly_spike_ratio), 0, "3.0", 0, 0, NULL,
	  "throughput above this multiple of its baseline is a spike (> 1)" },
	{ "anomaly_latency_ratio", CONF_DOUBLE, F(anomaly_latency_ratio), 0, "2.0", 0, 0, NULL,
	  "latency above this multiple of its baseline is a spike (> 1)" },
	{ "anomaly_min_bytes_per_sec", CONF_INT, F(anomaly_min_bytes_per_sec), 0, "16384", 1, INT64_MAX, NULL,
	  "interfaces whose baseline is below this never raise throughput signals (idle links)" },
	{ "mode_hold_ms", CONF_DURATION, F(mode_hold_ms), 0, "5000", 100, 3600000, NULL,
	  "mode controller: minimum time between automatic switches and before leaving diagnostic/shedding" },
	{ "shed_enter_ratio", CONF_DOUBLE, F(shed_enter_ratio), 0, "2.0", 0, 0, NULL,
	  "ShedHeavy when a CPU's sampling demand exceeds this multiple of its budget for mode_hold_ms" },
	{ "shed_exit_ratio", CONF_DOUBLE, F(shed_exit_ratio), 0, "1.2", 0, 0, NULL,
	  "leave ShedHeavy when every CPU's demand is below this multiple of its budget for mode_hold_ms" },
	{ "targets", CONF_STRING, S(targets), "", 0, 0, NULL,
	  "initial targets, comma list of kind:value (flow:10.1., flow:10.0.0.0/8, port:443, proto:tcp, "
	  "ifindex:eth0, pid:1234, cgroup:/system.slice/x.service); empty = everything" },
	{ "log_level", CONF_STRING, S(log_level), "info", 0, 0, NULL, "error, warn, info or debug" },
	{ "window_log", CONF_STRING, S(window_log), "", 0, 0, NULL,
	  "append every closed window as one JSON line to this file" },
	{ "sample_log", CONF_STRING, S(sample_log), "", 0, 0, NULL,
	  "write every processed sample (64-byte records, docs/BENCHMARKS.md) to this file; for the accuracy suite" },
	{ "sample_log_max_bytes", CONF_UINT64, F(sample_log_max_bytes), 0, "268435456", 4096, INT64_MAX, NULL,
	  "bound of the sample log; samples past it are counted, not written" },
	{ "duration_ms", CONF_DURATION, F(duration_ms), 0, "0", 0, 0, NULL, "stop after this long (0 = until signalled)" },
	{ "summary", CONF_BOOL, F(summary), 0, "false", 0, 0, NULL, "print top flows and functions at exit" },
};

const struct conf_schema agent_config_schema = {
	.prog = "micro_sentinel_agent",
	.summary = "MicroSentinel agent: samples this host with eBPF and perf events, attributes samples "
		   "to network flows, aggregates them into windows and exports them.",
	.keys = keys,
	.nkeys = sizeof(keys) / sizeof(keys[0]),
};

void agent_config_alias_args(int argc, char **argv)
{
	static char on[] = "--perf-mock-mode", off[] = "--no-perf-mock-mode";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--perf-mock") == 0)
			argv[i] = on;
		else if (strcmp(argv[i], "--no-perf-mock") == 0)
			argv[i] = off;
	}
}

uint32_t agent_config_ringbuf_bytes(const struct agent_config *c, long ncpu)
{
	if (c->ringbuf_bytes)
		return (uint32_t)c->ringbuf_bytes;
	uint64_t want = (uint64_t)(ncpu > 0 ? ncpu : 1) * (512u << 10), rb = 1u << 20;
	while (rb < want && rb < (64u << 20))
		rb <<= 1;
	return (uint32_t)rb;
}

int agent_config_validate(const struct agent_config *c, struct conf_error *err)
{
	if (c->diagnostic_budget < c->sentinel_budget) {
		snprintf(err->msg, sizeof(err->msg),
			 "diagnostic_budget (%lld) must be >= sentinel_budget (%lld)",
			 (long long)c->diagnostic_budget, (long long)c->sentinel_budget);
		return -EINVAL;
	}
	int64_t rb = c->ringbuf_bytes;
	if ((rb & (rb - 1)) || (rb && rb < 65536)) {
		snprintf(err->msg, sizeof(err->msg), "ringbuf_bytes (%lld) must be 0 (auto) or a power of two >= 65536",
			 (long long)rb);
		return -EINVAL;
	}
	if (!(c->anomaly_drop_ratio > 0.06 && c->anomaly_drop_ratio < 0.95)) {
		snprintf(err->msg, sizeof(err->msg), "anomaly_drop_ratio (%g) must be within 0.06..0.95",
			 c->anomaly_drop_ratio);
		return -EINVAL;
	}
	if (!(c->anomaly_spike_ratio > 1 && c->anomaly_spike_ratio < 1e6) ||
	    !(c->anomaly_latency_ratio > 1 && c->anomaly_latency_ratio < 1e6)) {
		snprintf(err->msg, sizeof(err->msg), "anomaly_spike_ratio and anomaly_latency_ratio must be > 1");
		return -EINVAL;
	}
	if (!(c->shed_exit_ratio > 0 && c->shed_exit_ratio < c->shed_enter_ratio && c->shed_enter_ratio < 1e6)) {
		snprintf(err->msg, sizeof(err->msg), "shed ratios: need 0 < shed_exit_ratio (%g) < shed_enter_ratio (%g)",
			 c->shed_exit_ratio, c->shed_enter_ratio);
		return -EINVAL;
	}
	struct targets_entry *te = malloc(TARGETS_MAX * sizeof(*te));
	if (!te)
		return -ENOMEM;
	char why[256];
	int tr = targets_parse_list(c->targets, te, TARGETS_MAX, why, sizeof(why));
	free(te);
	if (tr < 0) {
		snprintf(err->msg, sizeof(err->msg), "key 'targets': %s", why);
		return -EINVAL;
	}
	if (ms_log_parse_level(c->log_level) < 0) {
		snprintf(err->msg, sizeof(err->msg), "log_level '%s': expected error, warn, info or debug", c->log_level);
		return -EINVAL;
	}
	/* secrets only from files only others cannot read (secretfile.h); checked here so a bad one
	 * stops the agent before it loads anything */
	const char *const secrets[2][2] = { { "token_file", c->token_file },
					    { "clickhouse_password_file", c->clickhouse_password_file } };
	for (int i = 0; i < 2; i++) {
		int r = secrets[i][1][0] ? secretfile_check(secrets[i][1]) : 0;
		if (r < 0) {
			snprintf(err->msg, sizeof(err->msg), "%s %.200s: %s", secrets[i][0], secrets[i][1],
				 secretfile_strerror(r));
			return -EINVAL;
		}
	}
	return 0;
}
