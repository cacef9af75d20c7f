/* config: see config.h. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "listenpolicy.h"
#include "log.h"
#include "secretfile.h"

#define S(f) CONF_STR_FIELD(struct coord_config, f)
#define F(f) CONF_FIELD(struct coord_config, f)

static const struct conf_choice durability_choices[] = {
	{ "process", COORD_DURABILITY_PROCESS },
	{ "roll", COORD_DURABILITY_ROLL },
	{ "sync", COORD_DURABILITY_SYNC },
	{ NULL, 0 },
};

static const struct conf_key keys[] = {
	{ "listen_url", CONF_STRING, S(listen_url), "tcp://127.0.0.1:9300", 0, 0, NULL,
	  "nng URL agents send windows to (tcp://, ipc://, tls+tcp://); beyond loopback it needs token_file or tls_ca_file" },
	{ "token_file", CONF_STRING, S(token_file), "", 0, 0, NULL,
	  "file holding the shared bearer token agents must present (empty = none)" },
	{ "tls_cert_file", CONF_STRING, S(tls_cert_file), "", 0, 0, NULL, "server certificate (PEM) for tls+tcp://" },
	{ "tls_key_file", CONF_STRING, S(tls_key_file), "", 0, 0, NULL, "its private key (PEM, unencrypted)" },
	{ "tls_ca_file", CONF_STRING, S(tls_ca_file), "", 0, 0, NULL,
	  "CA of agent certificates: when set, agents must present one (mutual TLS)" },
	{ "max_message_bytes", CONF_UINT64, F(max_message_bytes), 0, "4194304", 4096, 1073741824, NULL,
	  "largest window message accepted" },
	{ "ingest_contexts", CONF_INT, F(ingest_contexts), 0, "64", 1, 256, NULL,
	  "requests received at once (nng REP contexts)" },
	{ "ingest_workers", CONF_INT, F(ingest_workers), 0, "2", 1, 64, NULL, "threads decoding and storing windows" },
	{ "heartbeat_ms", CONF_DURATION, F(heartbeat_ms), 0, "5000", 100, 3600000, NULL,
	  "heartbeat interval asked of agents" },
	{ "stale_after_ms", CONF_DURATION, F(stale_after_ms), 0, "15000", 100, 86400000, NULL,
	  "an agent not heard from this long is stale" },
	{ "max_agents", CONF_INT, F(max_agents), 0, "10000", 1, 1000000, NULL, "agents registered at most" },
	{ "state_dir", CONF_STRING, S(state_dir), "/var/lib/micro_sentinel_coordinator", 0, 0, NULL,
	  "dedup journal and the window store" },
	{ "spool_max_bytes", CONF_UINT64, F(spool_max_bytes), 0, "1073741824", 65536, INT64_MAX, NULL,
	  "bound of the on-disk window store" },
	{ "durability", CONF_ENUM, F(durability), 0, "process", 0, 0, durability_choices,
	  "what an ack survives: process (coordinator crash), roll, sync (host crash; one fsync per window)" },
	{ "accept_log", CONF_STRING, S(accept_log), "", 0, 0, NULL,
	  "keep the whole dedup journal (one JSON line per accepted window) at this path (tests)" },
	{ "metrics_address", CONF_HOST, S(metrics_address), "127.0.0.1", 0, 0, NULL, "/metrics and /healthz bind address" },
	{ "metrics_port", CONF_PORT, F(metrics_port), 0, "9302", 0, 65535, NULL, "/metrics and /healthz port (0 = off)" },
	{ "grpc_address", CONF_HOST, S(grpc_address), "127.0.0.1", 0, 0, NULL, "gRPC API bind address" },
	{ "grpc_port", CONF_PORT, F(grpc_port), 0, "9301", 0, 65535, NULL, "gRPC API port (0 = no control plane)" },
	{ "correlator_group_label", CONF_STRING, S(correlator_group_label), "role", 0, 0, NULL,
	  "agents are grouped by this label's value for fleet triggers (no label: group \"*\")" },
	{ "correlator_span_ms", CONF_DURATION, F(correlator_span_ms), 0, "30000", 1000, 86400000, NULL,
	  "hosts of a group must show the same anomaly within this span" },
	{ "correlator_min_hosts", CONF_INT, F(correlator_min_hosts), 0, "2", 1, 100000, NULL,
	  "hosts of a group that must agree for a fleet trigger" },
	{ "correlator_min_fraction", CONF_DOUBLE, F(correlator_min_fraction), 0, "0", 0, 0, NULL,
	  "also this share (0..1) of the group's hosts must agree (0 = the count alone)" },
	{ "correlator_diag_ttl_ms", CONF_DURATION, F(correlator_diag_ttl_ms), 0, "60000", 1000, 86400000, NULL,
	  "a triggered group is pinned to diagnostic for this long, extended while the anomaly goes on" },
	{ "correlator_clear_ms", CONF_DURATION, F(correlator_clear_ms), 0, "0", 0, 0, NULL,
	  "no signal for this long clears a trigger (group back to sentinel); 0 = twice the span" },
	{ "correlator_min_interval_ms", CONF_DURATION, F(correlator_min_interval_ms), 0, "60000", 0, 0, NULL,
	  "rate limit: at most one trigger per group in this interval" },
	{ "correlator_max_diag_fraction", CONF_DOUBLE, F(correlator_max_diag_fraction), 0, "0.5", 0, 0, NULL,
	  "cap: a trigger may not put more than this share (0..1] of the fleet in diagnostic" },
	{ "correlator_mode_signals", CONF_BOOL, F(correlator_mode_signals), 0, "false", 0, 0, NULL,
	  "a window in diagnostic from an agent the coordinator has not pinned is a signal (its own controller escalated)" },
	{ "correlator_cost_signals", CONF_BOOL, F(correlator_cost_signals), 0, "false", 0, 0, NULL,
	  "a (function, event) whose share of a window's samples jumps above that host's baseline is a signal "
	  "(cost:<function id>:<event>)" },
	{ "correlator_cost_ratio", CONF_DOUBLE, F(correlator_cost_ratio), 0, "3.0", 0, 0, NULL,
	  "cost deviation: share above this many times the host's baseline (> 1)" },
	{ "correlator_cost_min_share", CONF_DOUBLE, F(correlator_cost_min_share), 0, "0.05", 0, 0, NULL,
	  "cost deviation: and at least this share (0..1] of the window's samples of the event" },
	{ "command_pending_ms", CONF_DURATION, F(command_pending_ms), 0, "600000", 0, 604800000, NULL,
	  "keep the latest command of each kind for an agent that is not connected and send it when its Watch returns, "
	  "within its TTL or this long (0 = off: such a push fails)" },
	{ "clickhouse_endpoint", CONF_STRING, S(clickhouse_endpoint), "", 0, 0, NULL,
	  "ClickHouse HTTP endpoint (empty = keep windows in the local store)" },
	{ "clickhouse_user", CONF_STRING, S(clickhouse_user), "default", 0, 0, NULL, "ClickHouse user" },
	{ "clickhouse_password_file", CONF_STRING, S(clickhouse_password_file), "", 0, 0, NULL,
	  "file holding the ClickHouse password" },
	{ "clickhouse_database", CONF_STRING, S(clickhouse_database), "microsentinel", 0, 0, NULL,
	  "ClickHouse database (created if missing)" },
	{ "clickhouse_flush_ms", CONF_DURATION, F(clickhouse_flush_ms), 0, "500", 10, 600000, NULL,
	  "flush a batch at this age" },
	{ "clickhouse_batch_rows", CONF_INT, F(clickhouse_batch_rows), 0, "100000", 1, 10000000, NULL,
	  "flush a batch at this many rows" },
	{ "init_schema", CONF_BOOL, F(init_schema), 0, "false", 0, 0, NULL,
	  "create or migrate the ClickHouse schema (docs/STORAGE.md), then exit" },
	{ "log_level", CONF_STRING, S(log_level), "info", 0, 0, NULL, "error, warn, info or debug" },
	{ "duration_ms", CONF_DURATION, F(duration_ms), 0, "0", 0, 0, NULL, "stop after this long (0 = until signalled)" },
};

const struct conf_schema coord_config_schema = {
	.prog = "micro_sentinel_coordinator",
	.summary = "MicroSentinel coordinator: receives windows from agents over nng, deduplicates them, "
		   "keeps a registry of agents and stores windows durably before acking them.",
	.keys = keys,
	.nkeys = sizeof(keys) / sizeof(keys[0]),
};

/* Secret files and the listen policy (docs/OPERATIONS.md, security). */
static int check_security(const struct coord_config *c, struct conf_error *err)
{
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
	/* Control surfaces beyond loopback only with authentication: agents and operators present
	 * the token, or (nng, gRPC) a client certificate of tls_ca_file. The HTTP port has no TLS and
	 * serves the agent list behind the token, so only the token counts there. */
	bool tok = c->token_file[0] != 0, mtls = c->tls_ca_file[0] != 0;
	if (listenpolicy_check("listen_url", c->listen_url, true, tok || mtls, "token_file or tls_ca_file (mutual TLS)",
			       err->msg, sizeof(err->msg)) < 0 ||
	    (c->grpc_port && listenpolicy_check("grpc_address", c->grpc_address, false, tok || mtls,
						"token_file or tls_ca_file (mutual TLS)", err->msg, sizeof(err->msg)) < 0) ||
	    (c->metrics_port && listenpolicy_check("metrics_address", c->metrics_address, false, tok, "token_file",
						   err->msg, sizeof(err->msg)) < 0))
		return -EINVAL;
	return 0;
}

int coord_config_validate(const struct coord_config *c, struct conf_error *err)
{
	if (strncmp(c->listen_url, "tls+tcp://", 10) == 0 && (!c->tls_cert_file[0] || !c->tls_key_file[0])) {
		snprintf(err->msg, sizeof(err->msg), "listen_url %s needs tls_cert_file and tls_key_file", c->listen_url);
		return -EINVAL;
	}
	if (c->tls_ca_file[0] && strncmp(c->listen_url, "tls+tcp://", 10) != 0) {
		snprintf(err->msg, sizeof(err->msg), "tls_ca_file (mutual TLS) needs a tls+tcp:// listen_url");
		return -EINVAL;
	}
	if (!c->state_dir[0]) {
		snprintf(err->msg, sizeof(err->msg), "state_dir must not be empty");
		return -EINVAL;
	}
	if (c->correlator_min_fraction < 0 || c->correlator_min_fraction > 1 || c->correlator_max_diag_fraction <= 0 ||
	    c->correlator_max_diag_fraction > 1) {
		snprintf(err->msg, sizeof(err->msg), "correlator_min_fraction must be in [0, 1] and "
			 "correlator_max_diag_fraction in (0, 1]");
		return -EINVAL;
	}
	if (!(c->correlator_cost_ratio > 1) || !(c->correlator_cost_min_share > 0) || c->correlator_cost_min_share > 1) {
		snprintf(err->msg, sizeof(err->msg), "correlator_cost_ratio must be > 1 and correlator_cost_min_share in (0, 1]");
		return -EINVAL;
	}
	if (ms_log_parse_level(c->log_level) < 0) {
		snprintf(err->msg, sizeof(err->msg), "log_level '%s': expected error, warn, info or debug", c->log_level);
		return -EINVAL;
	}
	return check_security(c, err);
}
