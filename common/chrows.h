/* chrows: the one mapping from MicroSentinel's data to ClickHouse rows (SPEC §8,
 * docs/STORAGE.md), used by the coordinator and by the agent's standalone mode so both write
 * identical rows. It turns a decoded window (wire.h) into RowBinary rows of every table it
 * feeds, in the column order of chrows_tables, appended to a chwriter unit; likewise an
 * agent's Hello (ms_agents) and a fleet event (ms_fleet_events). Every row carries host (the
 * agent id) and the window's seq; rows of one window are keyed by their ordinal in the decoded
 * window (column row / idx), which is a pure function of the window's bytes, so a window
 * written twice yields the same keys and the ReplacingMergeTree tables collapse the copies.
 * It is not the schema (coordinator/schema.c creates the tables) and does no I/O.
 * Thread-safety: stateless functions; a unit has one owner. */
#ifndef MS_CHROWS_H
#define MS_CHROWS_H

#include <stdint.h>

#include "chwriter.h"
#include "wire.h"

enum chrows_table {
	CHROWS_ROLLUP = 0,     /* ms_flow_rollup: one row per rollup row */
	CHROWS_WINDOWS,        /* ms_windows: one row per window (counters, Σ samples) */
	CHROWS_FLOWS,          /* ms_flows: the window's flow dictionary */
	CHROWS_FUNCTIONS,      /* ms_functions: the window's function dictionary */
	CHROWS_OBJECTS,        /* ms_data_objects */
	CHROWS_FALSE_SHARING,  /* ms_false_sharing */
	CHROWS_REMOTE_DRAM,    /* ms_remote_dram */
	CHROWS_ANOMALIES,      /* ms_anomalies */
	CHROWS_FLEET_EVENTS,   /* ms_fleet_events (coordinator decisions) */
	CHROWS_AGENTS,         /* ms_agents (one row per Hello) */
	CHROWS_RAW_SAMPLES,    /* ms_raw_samples: no producer on the wire yet */
	CHROWS_STACK_TRACES,   /* ms_stack_traces: the window's stack dictionary */
	CHROWS__N,
};

/* Names and INSERT column lists, indexed by enum chrows_table: pass as chwriter_opts.tables
 * (ntables = CHROWS__N). */
extern const struct chwriter_table chrows_tables[CHROWS__N];

/* chrows_tables with the rollup and raw-sample tables renamed (the operations guide's
 * clickhouse_table / clickhouse_raw_table keys); NULL or "" keeps a name. The strings must
 * outlive the writer. */
void chrows_tables_named(struct chwriter_table ret[CHROWS__N], const char *rollup, const char *raw);

/* Appends every row of w (rollup rows, the window row, flows, functions, objects, findings,
 * anomalies, stacks) to u. Returns 0, or the unit's sticky encoding error (-ENOSPC when a table's
 * buffer bound is reached: the unit is then unusable). Cost: O(rows), ~100 bytes per row. */
int chrows_window(struct chwriter_unit *u, const struct wire_window *w);

/* Appends the ms_agents row of a Hello received at ts_ns (CLOCK_REALTIME). */
int chrows_hello(struct chwriter_unit *u, const struct wire_hello *h, uint64_t ts_ns);

/* A coordinator decision (correlator trigger, mode push, expiry). */
struct chrows_fleet_event {
	uint64_t ts_ns;          /* CLOCK_REALTIME */
	const char *coordinator; /* host column: the coordinator's id */
	uint64_t seq;            /* per-coordinator event sequence: the row key with ts and host */
	const char *kind;        /* "trigger", "mode_push", "expire", ... */
	const char *group_key;
	const char *const *hosts;
	uint32_t nhosts;
	const char *mode;
	uint64_t ttl_ms;
	const char *reason;
	const char *details;     /* free text or JSON */
};

int chrows_fleet_event(struct chwriter_unit *u, const struct chrows_fleet_event *e);

#endif
