/* schema: creates and migrates MicroSentinel's ClickHouse tables (SPEC §8, docs/STORAGE.md).
 * Migrations are versioned, compiled into the binary (never read relative to the working
 * directory) and recorded in <db>.ms_schema_migrations; running them again changes nothing
 * (CREATE ... IF NOT EXISTS, ADD COLUMN only when system.columns lacks the column). The DDL is
 * a template adapted to what the server has, found by probing it: LowCardinality (on 18.16
 * only with allow_experimental_low_cardinality_type=1 on the DDL query), DateTime64
 * (MATERIALIZED time columns), TTL (retention; without it schema_enforce_retention drops old
 * partitions), column CODECs and the IPv6 type. What the writer sends (RowBinary, chrows.h) is
 * the same on every server: the adaptive parts are storage types with identical encodings,
 * MATERIALIZED columns and table clauses. It is not the writer and not a query library.
 * Thread-safety: stateless functions; the query callback is called from the caller's thread. */
#ifndef MS_SCHEMA_H
#define MS_SCHEMA_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "strbuf.h"

#define SCHEMA_DEFAULT_DATABASE "microsentinel"
#define SCHEMA_MIGRATIONS_TABLE "ms_schema_migrations"

/* What the server supports; decides the DDL. */
struct schema_features {
	char version[32];        /* SELECT version() */
	uint32_t version_int;    /* VERSION_INTEGER build option: 18016001 for 18.16.1; 0 unknown */
	bool low_cardinality;    /* the LowCardinality type exists */
	bool lc_experimental;    /* ... and DDL needs allow_experimental_low_cardinality_type=1 */
	bool datetime64;         /* DateTime64 and fromUnixTimestamp64Nano exist */
	bool ttl;                /* table TTL clauses parse */
	bool codecs;             /* column CODEC clauses parse */
	bool ipv6;               /* the IPv6 type exists */
};

/* The feature set of ClickHouse 18.16, the oldest supported server (what
 * backend/clickhouse_schema.sql is rendered for). */
void schema_features_18_16(struct schema_features *ret);
/* "lc,ttl,..." (or "none") into buf. */
void schema_features_string(const struct schema_features *f, char *buf, size_t len);

struct schema_opts {
	const char *database;        /* NULL = SCHEMA_DEFAULT_DATABASE; an identifier */
	uint32_t target_version;     /* 0 = latest */
	uint32_t raw_retention_days; /* ms_raw_samples; 0 = 7 */
	uint32_t retention_days;     /* rollups, windows, findings, dictionaries; 0 = 90 */
};

/* Runs sql with extra URL settings ("k=v&..." or NULL); the result text goes to out (may be
 * NULL). Returns 0 or -errno. chhttp_query has this shape (schema_query_chhttp adapts it). */
typedef int (*schema_query_fn)(void *arg, const char *sql, const char *settings, struct strbuf *out);
/* arg is a struct chhttp *. */
int schema_query_chhttp(void *arg, const char *sql, const char *settings, struct strbuf *out);

struct schema_report {
	struct schema_features f;
	uint32_t from_version;       /* highest version recorded before the run (0 = fresh) */
	uint32_t to_version;         /* highest version recorded after it */
	uint32_t applied;            /* migrations applied by this run */
	char failed_sql[160];        /* start of the statement that failed, if any */
};

uint32_t schema_latest_version(void);
/* Name of migration v ("core", ...) or NULL. */
const char *schema_migration_name(uint32_t v);

/* Probes the server's features; uses (and creates) the database for try-create probe tables,
 * which it drops again. Returns 0 or the query's -errno. */
int schema_probe(schema_query_fn q, void *arg, const char *database, struct schema_features *ret);

/* Probes, creates the database and the migrations table, then applies every migration above
 * the recorded version up to the target, recording each. Returns 0, -EINVAL (bad options,
 * target above the latest), -EPROTO (unexpected server answer) or the failing query's -errno
 * (report->failed_sql says which statement). report may be NULL. */
int schema_migrate(schema_query_fn q, void *arg, const struct schema_opts *o, struct schema_report *report);

/* Renders migrations from+1..to for features f as a clickhouse-client --multiquery script
 * (SET for LowCardinality when needed, each statement ending with ";\n", the migrations-table
 * records included). from = 0 also renders the database and migrations table. This is how
 * backend/clickhouse_schema.sql and backend/migrations/NNNN_*.sql are produced. */
int schema_render(const struct schema_features *f, const struct schema_opts *o, uint32_t from, uint32_t to,
		  struct strbuf *out);

/* Retention without TTL: drops the partitions of every retained table whose newest possible
 * day is older than its retention (day partitions: raw/retention days; month partitions: the
 * whole month older). A no-op when f->ttl (the tables carry TTL clauses). *ret_dropped (may be
 * NULL) counts the partitions dropped. Returns 0 or the first failing query's -errno. */
int schema_enforce_retention(schema_query_fn q, void *arg, const struct schema_opts *o,
			     const struct schema_features *f, time_t now, uint32_t *ret_dropped);

#endif
