/* chwriter: the ClickHouse batcher used by the coordinator and by the agent's standalone mode.
 * Producers submit *units* (one window's rows for any of up to CHWRITER_MAX_TABLES tables,
 * already RowBinary-encoded); one writer thread gathers units into a *round* and inserts each
 * table's rows of the round with one HTTP request (RowBinary, keep-alive, basic auth). A round
 * is sealed when one table reaches batch_rows, when its bytes reach batch_bytes, or when it is
 * flush_ms old. ClickHouse parses one INSERT on one core, so a big table section is split
 * into `parallel` INSERTs sent at once over as many keep-alive connections. It is not a schema manager (coordinator/schema.c) and not a row mapper
 * (chrows.c).
 *
 * Delivery. Each unit's done callback runs exactly once, on the writer thread, after the unit
 * is *durable* — inserted (status CHWRITER_INSERTED) or appended to the on-disk spool
 * (CHWRITER_SPOOLED) — or with a negative errno when it is neither (spool full: -ENOSPC; no
 * spool and stopped before ClickHouse came back: -ETIMEDOUT). Callers acknowledge their own
 * producers (agents) from that callback, never earlier. A failed insert is retried `attempts`
 * times with backoff; then the round goes to the spool and the writer is in *outage*: later
 * rounds go to the spool too, so the spool is replayed strictly in order (oldest first, with
 * exponential backoff between attempts) before anything newer is inserted. Nothing is dropped
 * except (a) rounds the spool refuses when full (counted, done gets -ENOSPC) and (b) a table
 * section that ClickHouse rejects as malformed data (parse/type errors) poison_attempts times
 * in a row (counted in rows_failed): such data can never insert and would block the spool
 * forever. Unknown tables, auth and server errors are retried without limit.
 *
 * Duplicates. An insert that failed after the server committed it (connection lost while
 * waiting for the answer), or a crash between an insert and the spool cursor write, inserts
 * the rows again. The writer does not hide this: tables are idempotent instead (docs/STORAGE.md:
 * ReplacingMergeTree keyed on host, seq and row, read with FINAL).
 *
 * Bounds: bytes held in memory (open and sealed rounds) <= max_pending_bytes, beyond which
 * submit returns -EAGAIN; spool bytes <= spool_max_bytes; a unit <= CHWRITER_MAX_UNIT_BYTES;
 * finished units kept for reuse <= CHWRITER_POOL_UNITS and CHWRITER_POOL_BYTES.
 * Thread-safety: submit, flush, stats and metrics from any thread; new/free from one thread.
 * Done callbacks run on the writer thread without the writer's lock held; they must not block
 * for long and must not call chwriter_free. */
#ifndef MS_CHWRITER_H
#define MS_CHWRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rowbinary.h"
#include "strbuf.h"

#define CHWRITER_MAX_TABLES 16
#define CHWRITER_MAX_UNIT_BYTES (32ull << 20)
#define CHWRITER_LAT_BUCKETS 12
#define CHWRITER_SPLIT_BYTES (1u << 20)
#define CHWRITER_POOL_UNITS 256          /* finished units kept for reuse, at most */
#define CHWRITER_POOL_BYTES (64ull << 20) /* ... and their buffers' capacity, at most */

/* done statuses (>= 0 means durable) */
#define CHWRITER_INSERTED 0
#define CHWRITER_SPOOLED 1

struct chwriter_table {
	const char *name;    /* table name, without the database: [A-Za-z0-9_] */
	const char *columns; /* INSERT column list in RowBinary order: "ts,host,seq" */
};

struct chwriter_opts {
	const char *endpoint;          /* http://host:port; required */
	const char *user, *password;   /* NULL/"" = default user, no password */
	const char *database;          /* NULL/"" = "default" */
	const struct chwriter_table *tables;
	uint32_t ntables;              /* 1..CHWRITER_MAX_TABLES */
	uint32_t batch_rows;           /* 0 = 100000 */
	uint64_t batch_bytes;          /* 0 = 16 MiB; at most CHWRITER_MAX_UNIT_BYTES */
	uint32_t flush_ms;             /* 0 = 500 */
	uint64_t max_pending_bytes;    /* 0 = 256 MiB */
	const char *spool_dir;         /* NULL/"" = no spool: failed rounds wait in memory */
	uint64_t spool_max_bytes;      /* 0 = 1 GiB */
	bool spool_drop_oldest;        /* full spool: false = refuse new rounds (default) */
	uint32_t timeout_ms;           /* per insert; 0 = 30000 */
	uint32_t attempts;             /* insert attempts before spooling; 0 = 2 */
	uint32_t retry_min_ms;         /* backoff; 0 = 100 */
	uint32_t retry_max_ms;         /* 0 = 5000 */
	uint32_t poison_attempts;      /* 0 = 5 */
	uint32_t stop_timeout_ms;      /* free: time to drain before spooling the rest; 0 = 10000 */
	uint32_t parallel;             /* concurrent INSERTs (connections); 0 = 1, <= 8. A table's
					* rows of a round above CHWRITER_SPLIT_BYTES are split into
					* this many INSERTs on unit boundaries */
};

/* Rows of one producer's unit: per table, the RowBinary bytes and how many rows they hold. */
struct chwriter_unit {
	struct rowbinary data[CHWRITER_MAX_TABLES];
	uint64_t rows[CHWRITER_MAX_TABLES];
	/* owned by the writer once submitted */
	struct chwriter_unit *next;
	void (*done)(void *arg, int status);
	void *done_arg;
};

struct chwriter_table_stats {
	uint64_t rows_queued;    /* submitted */
	uint64_t rows_inserted;  /* inserted (including replayed from the spool) */
	uint64_t rows_spooled;   /* appended to the spool */
	uint64_t rows_replayed;  /* inserted from the spool */
	uint64_t rows_failed;    /* dropped: rejected data, or refused by a full spool */
	uint64_t inserts_ok, inserts_failed;
};

struct chwriter_stats {
	struct chwriter_table_stats t[CHWRITER_MAX_TABLES];
	uint64_t units_submitted, units_rejected; /* rejected: -EAGAIN (memory bound) */
	uint64_t units_inserted, units_spooled, units_failed;
	uint64_t pending_bytes, pending_rows;     /* in memory now */
	uint64_t bytes_sent;
	uint64_t spool_bytes, spool_records;      /* on disk now */
	uint64_t spool_dropped;                   /* records the spool deleted or refused */
	uint64_t lat_count, lat_sum_ns, lat_max_ns;
	uint64_t lat_buckets[CHWRITER_LAT_BUCKETS]; /* cumulative, bounds below */
	bool outage;                              /* ClickHouse failing: rounds go to the spool */
	bool up;                                  /* last insert succeeded */
	char last_error[256];
};

/* Upper bounds (seconds) of the latency buckets; the last is +Inf. */
extern const double chwriter_lat_bounds[CHWRITER_LAT_BUCKETS];

struct chwriter;

/* Validates options, opens the spool (recovering what a previous run left: it is replayed
 * first) and starts the writer thread. Returns 0, -EINVAL, -EBUSY (spool in use), -ENOMEM or
 * -errno. Nothing is sent before the first round is due. */
int chwriter_new(const struct chwriter_opts *opts, struct chwriter **ret);
/* Seals the open round, drains for up to stop_timeout_ms (inserting, or spooling once
 * ClickHouse fails), stops the thread, closes the spool. Every pending unit gets its done
 * call before this returns. NULL-safe. */
struct chwriter *chwriter_free(struct chwriter *w);

/* An empty unit with default bounds, reusing one that finished earlier when there is one (its
 * buffers keep their allocation: no page faults for the next window). Prefer it to
 * chwriter_unit_new on hot paths. -ENOMEM. */
int chwriter_unit_take(struct chwriter *w, struct chwriter_unit **ret);
/* A unit whose per-table buffers hold at most max_table_bytes each (0 = CHWRITER_MAX_UNIT_BYTES). */
int chwriter_unit_new(size_t max_table_bytes, struct chwriter_unit **ret);
struct chwriter_unit *chwriter_unit_free(struct chwriter_unit *u);
/* Empties a unit for reuse (keeps its allocations). */
void chwriter_unit_reset(struct chwriter_unit *u);
/* Σ bytes over tables. */
uint64_t chwriter_unit_bytes(const struct chwriter_unit *u);

/* Hands *unit to the writer (and sets *unit = NULL) on success; done(done_arg, status) is then
 * called exactly once. Returns 0, -EAGAIN (memory bound reached: counted, the caller keeps the
 * unit), -EMSGSIZE (unit over CHWRITER_MAX_UNIT_BYTES), -EINVAL (an encoding error in the
 * unit, or rows for a table index >= ntables), -EPIPE (stopping). done may be NULL. */
int chwriter_submit(struct chwriter *w, struct chwriter_unit **unit, void (*done)(void *arg, int status),
		    void *done_arg);
/* submit, then wait up to timeout_ms (< 0 = forever) for the done status, which is returned
 * (CHWRITER_INSERTED/CHWRITER_SPOOLED or -errno; -ETIMEDOUT if it did not come in time). */
int chwriter_submit_wait(struct chwriter *w, struct chwriter_unit **unit, int timeout_ms);
/* Seals the open round and waits until every unit submitted before the call is done.
 * Returns 0 or -ETIMEDOUT. */
int chwriter_flush(struct chwriter *w, int timeout_ms);

void chwriter_stats(struct chwriter *w, struct chwriter_stats *ret);
/* Prometheus text: <prefix>_rows_{queued,inserted,spooled,replayed,failed}_total{table},
 * <prefix>_inserts_total{table,result}, <prefix>_insert_duration_seconds (histogram),
 * <prefix>_spool_bytes, <prefix>_spool_records, <prefix>_pending_rows, <prefix>_up,
 * <prefix>_outage, <prefix>_units_rejected_total. */
int chwriter_metrics(struct chwriter *w, const char *prefix, struct strbuf *sb);

#endif
