/* chsink: the coordinator's ClickHouse storage, the ingest sink when clickhouse_endpoint is set
 * (SPEC §6). At open it migrates the schema (schema.h); then every accepted window becomes
 * rows of every table (chrows.h) handed to the batcher (chwriter.h), whose done callback is
 * the window's ack: an agent's window is acked only once it is inserted or in the writer's
 * on-disk spool. It also serves the writer's metrics (ms_coord_ch_*) and, on servers without
 * TTL, drops expired partitions once an hour. If ClickHouse is unreachable at open, the
 * coordinator still starts: windows are spooled and the migration is retried by chsink_tick.
 * It does not log (the daemon logs from the reports). Thread-safety: chsink_window and
 * chsink_metrics from any thread; open, tick and free from the main thread. */
#ifndef MS_CHSINK_H
#define MS_CHSINK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "chwriter.h"
#include "schema.h"
#include "strbuf.h"
#include "wire.h"

struct chsink_opts {
	const char *endpoint;          /* required */
	const char *user;              /* NULL/"" = default */
	const char *password_file;     /* NULL/"" = no password; refused if others may read it */
	const char *database;          /* NULL/"" = SCHEMA_DEFAULT_DATABASE */
	uint32_t flush_ms;             /* 0 = chwriter default */
	uint32_t batch_rows;           /* 0 = chwriter default */
	const char *spool_dir;         /* required: the writer's spool */
	uint64_t spool_max_bytes;      /* 0 = chwriter default */
};

/* What happened to the schema at open or at a later tick. */
struct chsink_schema_state {
	bool migrated;                 /* the schema is at the latest version */
	int last_error;                /* of the last attempt, 0 if it succeeded */
	struct schema_report report;   /* of the last attempt */
};

struct chsink;

/* Reads the password file, tries the migration once, starts the writer. Returns 0 (also when
 * the migration failed: see chsink_schema), -EPERM/-ENOENT/... for the password file,
 * -EINVAL, or the writer's error. err gets a one-line reason on failure. */
int chsink_open(const struct chsink_opts *opts, struct chsink **ret, char *err, size_t errlen);
/* Flushes the writer (bounded; the rest is spooled) and frees. NULL-safe; returns NULL. */
struct chsink *chsink_free(struct chsink *s);

/* ingest_sink_fn: turns w into rows and submits them; done(done_arg, >= 0) once durable.
 * Returns -EAGAIN (writer at its memory bound: the agent retries) or -ENOSPC/-EMSGSIZE without
 * calling done. */
int chsink_window(void *arg, const struct wire_window *w, void (*done)(void *done_arg, int status), void *done_arg);

/* ctlplane_store_fn: one fleet event as an ms_fleet_events row through the same writer as the
 * windows (batched; spooled while ClickHouse is away, replayed in order). 0, or -EAGAIN (writer
 * at its memory bound), -ENOSPC, -EINVAL: the event is not stored (the caller counts it). */
struct chrows_fleet_event;
int chsink_fleet_event(void *arg, const struct chrows_fleet_event *e);

/* ingest_hello_fn: an agent's Hello as an ms_agents row, through the same writer (one row per
 * Hello: every connect, reconnect and restart of an agent is on record). Errors as above. */
struct wire_hello;
int chsink_hello(void *arg, const struct wire_hello *h, uint64_t ts_ns);

/* status source: the writer's metrics with prefix ms_coord_ch (rows_inserted_total{table},
 * spool_bytes, ...) plus ms_coord_ch_schema_version. */
int chsink_metrics(void *arg, struct strbuf *sb);

/* Main-loop housekeeping: retries a failed migration every 10 s, enforces retention hourly
 * on servers without TTL. Returns 1 when it did something worth a log line (see
 * chsink_schema and ret_dropped), else 0. */
int chsink_tick(struct chsink *s, time_t now, uint32_t *ret_dropped);
void chsink_schema(struct chsink *s, struct chsink_schema_state *ret);
/* Seals the writer's open batch and waits up to timeout_ms until everything submitted is
 * durable (inserted or spooled). 0 or -ETIMEDOUT. */
int chsink_drain(struct chsink *s, int timeout_ms);
void chsink_stats(struct chsink *s, struct chwriter_stats *ret);

/* --init-schema: reads the password, migrates, returns (no writer). */
int chsink_init_schema(const struct chsink_opts *opts, struct schema_report *ret, char *err, size_t errlen);

#endif
