/* standalone: the agent's own ClickHouse writer, for a host without a coordinator (SPEC §4,
 * the operations guide's single-host mode: clickhouse_endpoint set, coordinator_url empty).
 * Each symbolized window is encoded with the fleet wire codec exactly as the uplink would send
 * it, decoded back, mapped to rows by chrows and handed to a chwriter — so a standalone agent
 * writes the same rows, with the same keys, into the same tables as a coordinator would
 * (docs/STORAGE.md). The schema must exist (micro_sentinel_coordinator --init-schema, or
 * backend/clickhouse_schema.sql); until it does, inserts fail and batches wait in the spool.
 * It is not the uplink and keeps no connection to a coordinator.
 * Thread-safety: standalone_forward from one producer thread (the export worker);
 * standalone_stats and standalone_metrics from any thread. */
#ifndef MS_STANDALONE_H
#define MS_STANDALONE_H

#include <stdint.h>

#include "chwriter.h"
#include "strbuf.h"
#include "wire.h"

struct window;
struct standalone;

struct standalone_opts {
	const char *agent_id;                   /* required: the host column */
	const char *endpoint;                   /* http://host:port; required */
	const char *user, *password;            /* NULL/"" = default user */
	const char *database;                   /* NULL/"" = "microsentinel" */
	const char *rollup_table, *raw_table;   /* the guide's clickhouse_table / clickhouse_raw_table */
	uint32_t flush_ms, batch_rows;          /* 0 = chwriter defaults */
	const char *spool_dir;                  /* NULL/"" = no spool (failed batches wait in memory) */
	uint64_t spool_max_bytes;
	const struct wire_hello *hello;         /* optional: an ms_agents row at start (copied) */
	uint32_t submit_wait_ms;                /* how long a window waits for room; 0 = 5000 */
};

struct standalone_stats {
	uint64_t windows;          /* handed to standalone_forward */
	uint64_t windows_durable;  /* inserted or spooled */
	uint64_t windows_dropped;  /* not durable: encode failure, no room in time, spool refused */
	struct chwriter_stats ch;
};

/* Starts the writer (opens its spool: batches a previous run left are replayed first).
 * Returns 0, -EINVAL, -ENOMEM, -EBUSY (spool in use) or -errno. */
int standalone_new(const struct standalone_opts *opts, struct standalone **ret);
/* Flushes (bounded by the writer's stop timeout; what cannot be inserted is spooled) and
 * frees. NULL-safe; returns NULL. */
struct standalone *standalone_free(struct standalone *s);

/* export_opts.forward hook: takes the window (always; returns 0), writes its rows. */
int standalone_forward(void *arg, struct window *w);

void standalone_stats(struct standalone *s, struct standalone_stats *ret);
/* Prometheus text: chwriter's series with prefix ms_ch, plus
 * ms_ch_windows_total{result="durable|dropped"}. */
int standalone_metrics(struct standalone *s, struct strbuf *sb);

#endif
