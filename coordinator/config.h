/* config: the coordinator's configuration (SPEC §13 keys plus the fleet wire's), as a conf.h
 * schema: key=value file plus --key-name flags, the command line wins. It is not runtime
 * state. Thread-safety: filled once by main before any thread starts; read-only afterwards. */
#ifndef MS_COORD_CONFIG_H
#define MS_COORD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"

enum coord_durability {
	COORD_DURABILITY_PROCESS = 0, /* survives a coordinator crash (page cache), not a host crash */
	COORD_DURABILITY_ROLL = 1,    /* + the window store syncs each sealed segment */
	COORD_DURABILITY_SYNC = 2,    /* every window and dedup line is fdatasync'd before its ack */
};

struct coord_config {
	/* fleet wire */
	char listen_url[256];
	char token_file[256];
	char tls_cert_file[256];
	char tls_key_file[256];
	char tls_ca_file[256];         /* set: agents must present a certificate it signed (mTLS) */
	uint64_t max_message_bytes;
	int64_t ingest_contexts;
	int64_t ingest_workers;
	uint64_t heartbeat_ms;
	uint64_t stale_after_ms;
	int64_t max_agents;
	/* storage */
	char state_dir[256];
	uint64_t spool_max_bytes;
	int durability;                /* enum coord_durability */
	char accept_log[256];          /* dedup journal kept whole at this path (tests) */
	/* HTTP */
	char metrics_address[256];
	uint16_t metrics_port;
	/* gRPC (control plane) */
	char grpc_address[256];
	uint16_t grpc_port;
	/* correlator (fleet triggers; coordinator/correlator.h) */
	char correlator_group_label[64];
	uint64_t correlator_span_ms;
	int64_t correlator_min_hosts;
	double correlator_min_fraction;
	uint64_t correlator_diag_ttl_ms;
	uint64_t correlator_clear_ms;
	uint64_t correlator_min_interval_ms;
	double correlator_max_diag_fraction;
	bool correlator_mode_signals;
	bool correlator_cost_signals;
	double correlator_cost_ratio, correlator_cost_min_share;
	uint64_t command_pending_ms;
	/* ClickHouse */
	char clickhouse_endpoint[256];
	char clickhouse_user[64];
	char clickhouse_password_file[256];
	char clickhouse_database[64];
	uint64_t clickhouse_flush_ms;
	int64_t clickhouse_batch_rows;
	bool init_schema;              /* create/migrate the ClickHouse schema, then exit */
	/* process */
	char log_level[16];
	uint64_t duration_ms;
};

extern const struct conf_schema coord_config_schema;

/* Cross-key checks after loading (e.g. TLS files needed by a tls+tcp:// URL). */
int coord_config_validate(const struct coord_config *c, struct conf_error *err);

#endif
