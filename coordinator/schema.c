/* schema: see schema.h. The migrations are below as templates; docs/STORAGE.md explains the
 * tables. Template syntax: {db} database, {LC} LowCardinality(String) or String, {IP} IPv6 or
 * FixedString(16) (same 16 bytes on the wire), {DELTA} a delta codec for monotonic columns or
 * nothing, {DAYS}/{RAW_DAYS} retention; a line starting "@ttl " or "@dt64 " is kept (without
 * the marker) only when the server has TTL / DateTime64. Released migrations are never edited:
 * a change is a new migration. */
#include "schema.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chbatch.h"
#include "chhttp.h"

enum step_kind {
	STEP_SQL,        /* idempotent by itself (IF NOT EXISTS) */
	STEP_ADD_COLUMN, /* run only when system.columns lacks table.column */
};

struct step {
	enum step_kind kind;
	const char *table, *column; /* STEP_ADD_COLUMN */
	const char *sql;
};

struct migration {
	uint32_t version;
	const char *name;
	const struct step *steps;
	uint32_t nsteps;
};

#define ENUM_DIR "Enum8('none' = 0, 'rx' = 1, 'tx' = 2)"
#define ENUM_MODE "Enum8('sentinel' = 0, 'diagnostic' = 1)"
#define KEY_COLS "    ts DateTime{DELTA},\n    host {LC},\n    seq UInt64{DELTA},\n"
#define REPLACING_DAY(order, days) \
	")\nENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMMDD(ts)\nORDER BY " order "\n@ttl TTL ts + INTERVAL " days " DAY\n"
#define REPLACING_MONTH(order) \
	")\nENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMM(ts)\nORDER BY " order "\n@ttl TTL ts + INTERVAL {DAYS} DAY\n"

static const char migrations_table[] =
	"CREATE TABLE IF NOT EXISTS {db}." SCHEMA_MIGRATIONS_TABLE "\n(\n"
	"    version UInt32,\n    name String,\n    applied_at DateTime,\n    features String,\n    checksum UInt64\n"
	")\nENGINE = ReplacingMergeTree\nORDER BY version\n";

static const struct step v1_steps[] = {
	{ STEP_SQL, NULL, NULL,
	  "CREATE TABLE IF NOT EXISTS {db}.ms_flow_rollup\n(\n" KEY_COLS
	  "    row UInt32,\n    flow_id UInt64,\n    func_id UInt64,\n    stack_id UInt64,\n    object_id UInt64,\n"
	  "    event {LC},\n    pid UInt32,\n    numa_node Int16,\n    direction " ENUM_DIR ",\n"
	  "    iclass UInt8,\n    user_mode UInt8,\n    samples UInt64,\n    norm_cost Float64\n"
	  REPLACING_DAY("(ts, host, seq, row)", "{DAYS}") },
	{ STEP_SQL, NULL, NULL,
	  "CREATE TABLE IF NOT EXISTS {db}.ms_raw_samples\n(\n" KEY_COLS
	  "    idx UInt32,\n    ts_ns UInt64{DELTA},\n"
	  "@dt64     time DateTime64(9) MATERIALIZED fromUnixTimestamp64Nano(toInt64(ts_ns)),\n"
	  "    cpu UInt16,\n    pid UInt32,\n    tid UInt32,\n    flow_id UInt64,\n    event {LC},\n    ip UInt64,\n"
	  "    data_addr UInt64,\n    stack_id UInt64,\n    numa_node Int16,\n    direction " ENUM_DIR ",\n"
	  "    gso_segs UInt16,\n    attr_rule Enum8('none' = 0, 'thread' = 1, 'packet' = 2),\n"
	  "    lbr_from Array(UInt64),\n    lbr_to Array(UInt64)\n"
	  REPLACING_DAY("(ts, host, seq, idx)", "{RAW_DAYS}") },
	{ STEP_SQL, NULL, NULL,
	  "CREATE TABLE IF NOT EXISTS {db}.ms_stack_traces\n(\n" KEY_COLS
	  "    stack_id UInt64,\n    user_stack UInt32,\n    kernel_stack UInt32,\n    frames Array(String)\n"
	  REPLACING_MONTH("(host, stack_id)") },
	{ STEP_SQL, NULL, NULL,
	  "CREATE TABLE IF NOT EXISTS {db}.ms_data_objects\n(\n" KEY_COLS
	  "    object_id UInt64,\n    name String,\n    addr UInt64,\n    size UInt64\n"
	  REPLACING_MONTH("(host, object_id)") },
	{ STEP_SQL, NULL, NULL,
	  "CREATE TABLE IF NOT EXISTS {db}.ms_flows\n(\n" KEY_COLS
	  "    flow_id UInt64,\n    has_tuple UInt8,\n    family UInt8,\n    proto UInt8,\n    saddr {IP},\n"
	  "    daddr {IP},\n    sport UInt16,\n    dport UInt16,\n    direction " ENUM_DIR ",\n    ifindex UInt32,\n"
	  "    netns UInt32,\n    vlan UInt16,\n    encap UInt8\n"
	  REPLACING_MONTH("(host, flow_id)") },
	{ STEP_SQL, NULL, NULL,
	  "CREATE TABLE IF NOT EXISTS {db}.ms_functions\n(\n" KEY_COLS
	  "    func_id UInt64,\n    name String,\n    module {LC}\n"
	  REPLACING_MONTH("(host, func_id)") },
};

static const struct step v2_steps[] = {
	{ STEP_ADD_COLUMN, "ms_flow_rollup", "mode",
	  "ALTER TABLE {db}.ms_flow_rollup ADD COLUMN mode " ENUM_MODE " DEFAULT 'sentinel'" },
	{ STEP_ADD_COLUMN, "ms_flow_rollup", "window_ms",
	  "ALTER TABLE {db}.ms_flow_rollup ADD COLUMN window_ms UInt32 DEFAULT 0" },
	{ STEP_SQL, NULL, NULL,
	  "CREATE TABLE IF NOT EXISTS {db}.ms_windows\n(\n" KEY_COLS
	  "    start_ns UInt64,\n    end_ns UInt64,\n"
	  "@dt64     start_time DateTime64(9) MATERIALIZED fromUnixTimestamp64Nano(toInt64(start_ns)),\n"
	  "    mode " ENUM_MODE ",\n    budget_per_cpu UInt64,\n    nrows UInt32,\n    nflows UInt32,\n"
	  "    samples UInt64,\n    emitted UInt64,\n    budget UInt64,\n    gap UInt64,\n    ringfull UInt64,\n"
	  "    unattributed UInt64,\n    attr_thread UInt64,\n    attr_packet UInt64,\n    idle UInt64,\n"
	  "    filtered UInt64,\n    ctx_rx UInt64,\n    ctx_tx UInt64,\n    ctx_sock UInt64,\n"
	  "    ctx_parse_fail UInt64,\n    stack_fail UInt64,\n    processed UInt64,\n    lost UInt64,\n"
	  "    agg_degraded UInt64,\n    agg_dropped UInt64,\n    flows_overflow UInt64,\n"
	  "    events Array({LC}),\n    event_sources Array(UInt8),\n    cpu_emitted Array(UInt64)\n"
	  REPLACING_DAY("(ts, host, seq)", "{DAYS}") },
	{ STEP_SQL, NULL, NULL,
	  "CREATE TABLE IF NOT EXISTS {db}.ms_false_sharing\n(\n" KEY_COLS
	  "    idx UInt32,\n    line_addr UInt64,\n    object_id UInt64,\n    offsets Array(UInt32),\n"
	  "    pids Array(UInt32),\n    func_ids Array(UInt64),\n    writers UInt64,\n    readers UInt64,\n"
	  "    score Float64,\n    true_sharing UInt8\n"
	  REPLACING_DAY("(ts, host, seq, idx)", "{DAYS}") },
	{ STEP_SQL, NULL, NULL,
	  "CREATE TABLE IF NOT EXISTS {db}.ms_remote_dram\n(\n" KEY_COLS
	  "    idx UInt32,\n    flow_id UInt64,\n    object_id UInt64,\n    mem_node Int32,\n    cpu_node Int32,\n"
	  "    samples UInt64,\n    cost Float64\n"
	  REPLACING_DAY("(ts, host, seq, idx)", "{DAYS}") },
	{ STEP_SQL, NULL, NULL,
	  "CREATE TABLE IF NOT EXISTS {db}.ms_anomalies\n(\n" KEY_COLS
	  "    idx UInt32,\n    ts_ns UInt64,\n"
	  "@dt64     time DateTime64(9) MATERIALIZED fromUnixTimestamp64Nano(toInt64(ts_ns)),\n"
	  "    ifname {LC},\n    ifindex UInt32,\n"
	  "    kind Enum8('unspecified' = 0, 'drop' = 1, 'spike' = 2, 'stop' = 3, 'latency' = 4),\n"
	  "    metric {LC},\n    value Float64,\n    baseline Float64\n"
	  REPLACING_DAY("(ts, host, seq, idx)", "{DAYS}") },
	{ STEP_SQL, NULL, NULL,
	  "CREATE TABLE IF NOT EXISTS {db}.ms_fleet_events\n(\n" KEY_COLS
	  "    ts_ns UInt64,\n"
	  "@dt64     time DateTime64(9) MATERIALIZED fromUnixTimestamp64Nano(toInt64(ts_ns)),\n"
	  "    kind {LC},\n    group_key String,\n    hosts Array(String),\n    mode {LC},\n    ttl_ms UInt64,\n"
	  "    reason String,\n    details String\n"
	  REPLACING_MONTH("(ts, host, seq)") },
	{ STEP_SQL, NULL, NULL,
	  "CREATE TABLE IF NOT EXISTS {db}.ms_agents\n(\n" KEY_COLS
	  "    instance UInt64,\n    version String,\n    hostname String,\n    label_keys Array(String),\n"
	  "    label_values Array(String),\n    control_endpoint String,\n    hook_tier {LC},\n"
	  "    synthetic UInt8,\n    kernel String,\n    ncpu UInt32,\n    window_ms UInt32,\n"
	  "    events_live Array(String),\n    events_fallback Array(String)\n"
	  ")\nENGINE = ReplacingMergeTree(ts)\nORDER BY host\n" },
};

static const struct migration migrations[] = {
	{ 1, "core", v1_steps, sizeof(v1_steps) / sizeof(v1_steps[0]) },
	{ 2, "fleet", v2_steps, sizeof(v2_steps) / sizeof(v2_steps[0]) },
};
#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

/* Tables whose rows expire (TTL on servers with it, schema_enforce_retention otherwise). */
static const struct {
	const char *table;
	bool raw, monthly;
} retained[] = {
	{ "ms_flow_rollup", false, false }, { "ms_raw_samples", true, false }, { "ms_stack_traces", false, true },
	{ "ms_data_objects", false, true }, { "ms_flows", false, true },       { "ms_functions", false, true },
	{ "ms_windows", false, false },     { "ms_false_sharing", false, false }, { "ms_remote_dram", false, false },
	{ "ms_anomalies", false, false },   { "ms_fleet_events", false, true },
};

uint32_t schema_latest_version(void)
{
	return migrations[NMIGRATIONS - 1].version;
}

const char *schema_migration_name(uint32_t v)
{
	for (size_t i = 0; i < NMIGRATIONS; i++)
		if (migrations[i].version == v)
			return migrations[i].name;
	return NULL;
}

void schema_features_18_16(struct schema_features *ret)
{
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->version, sizeof(ret->version), "18.16.1");
	ret->version_int = 18016001;
	ret->low_cardinality = true;
	ret->lc_experimental = true;
}

void schema_features_string(const struct schema_features *f, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s%s", f->low_cardinality ? "lc," : "", f->datetime64 ? "dt64," : "",
		 f->ttl ? "ttl," : "", f->codecs ? "codecs," : "", f->ipv6 ? "ipv6," : "");
	size_t n = strlen(buf);
	if (n)
		buf[n - 1] = 0;
	else
		snprintf(buf, len, "none");
}

static const char *dbname(const struct schema_opts *o)
{
	return o && o->database && o->database[0] ? o->database : SCHEMA_DEFAULT_DATABASE;
}

static uint32_t days(const struct schema_opts *o, bool raw)
{
	if (raw)
		return o && o->raw_retention_days ? o->raw_retention_days : 7;
	return o && o->retention_days ? o->retention_days : 90;
}

/* Expands a template (see the top of this file) into out. */
static void render(const char *t, const struct schema_features *f, const struct schema_opts *o, struct strbuf *out)
{
	while (*t) {
		const char *eol = strchr(t, '\n');
		size_t n = eol ? (size_t)(eol - t + 1) : strlen(t);
		bool keep = true;
		if (!strncmp(t, "@ttl ", 5) || !strncmp(t, "@dt64 ", 6)) {
			keep = t[1] == 't' ? f->ttl : f->datetime64;
			size_t m = t[1] == 't' ? 5 : 6;
			t += m;
			n -= m;
		}
		for (size_t i = 0; keep && i < n; i++) {
			if (t[i] != '{') {
				strbuf_append(out, t + i, 1);
				continue;
			}
			const char *end = memchr(t + i, '}', n - i);
			size_t k = end ? (size_t)(end - (t + i)) + 1 : 1;
			if (!strncmp(t + i, "{db}", k))
				strbuf_appendf(out, "%s", dbname(o));
			else if (!strncmp(t + i, "{LC}", k))
				strbuf_appendf(out, "%s", f->low_cardinality ? "LowCardinality(String)" : "String");
			else if (!strncmp(t + i, "{IP}", k))
				strbuf_appendf(out, "%s", f->ipv6 ? "IPv6" : "FixedString(16)");
			else if (!strncmp(t + i, "{DELTA}", k))
				strbuf_appendf(out, "%s", f->codecs ? " CODEC(Delta, LZ4)" : "");
			else if (!strncmp(t + i, "{DAYS}", k))
				strbuf_appendf(out, "%" PRIu32, days(o, false));
			else if (!strncmp(t + i, "{RAW_DAYS}", k))
				strbuf_appendf(out, "%" PRIu32, days(o, true));
			else
				strbuf_append(out, t + i, k); /* not a placeholder */
			i += k - 1;
		}
		t += n;
	}
}

static uint64_t fnv1a(const char *s, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3ULL;
	return h;
}

/* Renders the statements of one migration (without terminators) and its checksum. */
static uint64_t migration_checksum(const struct migration *m, const struct schema_features *f,
				   const struct schema_opts *o)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (uint32_t i = 0; i < m->nsteps; i++) {
		struct strbuf sb;
		strbuf_init(&sb, 1 << 16);
		render(m->steps[i].sql, f, o, &sb);
		h = fnv1a(sb.buf ? sb.buf : "", sb.len, h);
		strbuf_release(&sb);
	}
	return h;
}

static void record_sql(const struct migration *m, const struct schema_features *f, const struct schema_opts *o,
		       struct strbuf *out)
{
	char feats[64];
	schema_features_string(f, feats, sizeof(feats));
	strbuf_appendf(out,
		       "INSERT INTO %s." SCHEMA_MIGRATIONS_TABLE " (version, name, applied_at, features, checksum) "
		       "VALUES (%" PRIu32 ", '%s', now(), '%s', %" PRIu64 ")",
		       dbname(o), m->version, m->name, feats, migration_checksum(m, f, o));
}

static const char *lc_settings(const struct schema_features *f)
{
	return f->lc_experimental ? "allow_experimental_low_cardinality_type=1" : NULL;
}

int schema_render(const struct schema_features *f, const struct schema_opts *o, uint32_t from, uint32_t to,
		  struct strbuf *out)
{
	if (!f || !out || to > schema_latest_version() || !chbatch_valid_table(dbname(o), strlen(dbname(o))))
		return -EINVAL;
	if (f->lc_experimental)
		strbuf_appendf(out, "SET allow_experimental_low_cardinality_type = 1;\n\n");
	if (from == 0) {
		strbuf_appendf(out, "CREATE DATABASE IF NOT EXISTS %s;\n\n", dbname(o));
		render(migrations_table, f, o, out);
		strbuf_appendf(out, ";\n\n");
	}
	for (size_t i = 0; i < NMIGRATIONS; i++) {
		const struct migration *m = &migrations[i];
		if (m->version <= from || m->version > to)
			continue;
		strbuf_appendf(out, "-- migration %" PRIu32 ": %s\n\n", m->version, m->name);
		for (uint32_t s = 0; s < m->nsteps; s++) {
			render(m->steps[s].sql, f, o, out);
			if (out->len && out->buf[out->len - 1] == '\n')
				out->buf[--out->len] = 0;
			strbuf_appendf(out, ";\n\n");
		}
		record_sql(m, f, o, out);
		strbuf_appendf(out, ";\n\n");
	}
	return strbuf_error(out);
}

int schema_query_chhttp(void *arg, const char *sql, const char *settings, struct strbuf *out)
{
	return chhttp_query(arg, sql, settings, out);
}

/* Runs sql and returns the trimmed text result in out (reset first). */
static int q_text(schema_query_fn q, void *arg, const char *sql, const char *settings, struct strbuf *out)
{
	strbuf_release(out);
	strbuf_init(out, 1 << 20);
	int r = q(arg, sql, settings, out);
	if (r < 0)
		return r;
	if (strbuf_error(out))
		return strbuf_error(out);
	while (out->len && (out->buf[out->len - 1] == '\n' || out->buf[out->len - 1] == ' '))
		out->buf[--out->len] = 0;
	return 0;
}

static bool has_line(const struct strbuf *sb, const char *word)
{
	size_t wl = strlen(word);
	for (const char *p = sb->buf; p && *p;) {
		size_t n = strcspn(p, "\n");
		if (n == wl && !strncmp(p, word, wl))
			return true;
		p += n + (p[n] == '\n');
	}
	return false;
}

/* Try-creates a probe table with a clause; true when the server accepts it. A server error
 * means "unsupported"; a transport error is returned. */
static int probe_clause(schema_query_fn q, void *arg, const char *db, const char *cols, const char *tail,
			bool *ret)
{
	char sql[512];
	snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s._ms_probe", db);
	int r = q(arg, sql, NULL, NULL);
	if (r < 0)
		return r;
	snprintf(sql, sizeof(sql), "CREATE TABLE %s._ms_probe (%s) ENGINE = MergeTree ORDER BY d %s", db, cols, tail);
	r = q(arg, sql, NULL, NULL);
	*ret = r == 0;
	if (r < 0 && r != -EREMOTEIO && r != -EACCES)
		return r;
	snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s._ms_probe", db);
	return q(arg, sql, NULL, NULL);
}

int schema_probe(schema_query_fn q, void *arg, const char *database, struct schema_features *ret)
{
	struct schema_features f;
	memset(&f, 0, sizeof(f));
	struct strbuf sb;
	char sql[256];
	strbuf_init(&sb, 1 << 20);
	int r = q_text(q, arg, "SELECT version()", NULL, &sb);
	if (r < 0)
		goto out;
	snprintf(f.version, sizeof(f.version), "%s", sb.buf ? sb.buf : "");
	if ((r = q_text(q, arg, "SELECT value FROM system.build_options WHERE name = 'VERSION_INTEGER'", NULL, &sb)) < 0)
		goto out;
	f.version_int = sb.buf ? (uint32_t)strtoul(sb.buf, NULL, 10) : 0;
	if ((r = q_text(q, arg, "SELECT name FROM system.data_type_families WHERE name IN "
			"('LowCardinality', 'DateTime64', 'IPv6')", NULL, &sb)) < 0)
		goto out;
	f.low_cardinality = has_line(&sb, "LowCardinality");
	f.ipv6 = has_line(&sb, "IPv6");
	bool dt64 = has_line(&sb, "DateTime64");
	if ((r = q_text(q, arg, "SELECT value FROM system.settings WHERE name = "
			"'allow_experimental_low_cardinality_type'", NULL, &sb)) < 0)
		goto out;
	f.lc_experimental = f.low_cardinality && has_line(&sb, "0");
	if ((r = q_text(q, arg, "SELECT name FROM system.functions WHERE name = 'fromUnixTimestamp64Nano'", NULL, &sb)) < 0)
		goto out;
	f.datetime64 = dt64 && has_line(&sb, "fromUnixTimestamp64Nano");
	snprintf(sql, sizeof(sql), "CREATE DATABASE IF NOT EXISTS %s", database);
	if ((r = q(arg, sql, NULL, NULL)) < 0)
		goto out;
	if ((r = probe_clause(q, arg, database, "d DateTime", "TTL d + INTERVAL 1 DAY", &f.ttl)) < 0)
		goto out;
	r = probe_clause(q, arg, database, "d DateTime CODEC(Delta, LZ4)", "", &f.codecs);
out:
	strbuf_release(&sb);
	if (r == 0)
		*ret = f;
	return r;
}

static int run_step(schema_query_fn q, void *arg, const struct step *st, const struct schema_features *f,
		    const struct schema_opts *o, struct schema_report *rep)
{
	struct strbuf sb, res;
	strbuf_init(&sb, 1 << 16);
	strbuf_init(&res, 4096);
	int r = 0;
	if (st->kind == STEP_ADD_COLUMN) {
		char sql[512];
		snprintf(sql, sizeof(sql), "SELECT count() FROM system.columns WHERE database = '%s' AND table = '%s' "
			 "AND name = '%s'", dbname(o), st->table, st->column);
		if ((r = q_text(q, arg, sql, NULL, &res)) < 0)
			goto out;
		if (res.buf && strcmp(res.buf, "0") != 0)
			goto out; /* already there */
	}
	render(st->sql, f, o, &sb);
	if ((r = strbuf_error(&sb)) == 0)
		r = q(arg, sb.buf, lc_settings(f), NULL);
out:
	if (r < 0 && rep)
		snprintf(rep->failed_sql, sizeof(rep->failed_sql), "%s", sb.buf ? sb.buf : st->sql);
	strbuf_release(&sb);
	strbuf_release(&res);
	return r;
}

int schema_migrate(schema_query_fn q, void *arg, const struct schema_opts *o, struct schema_report *report)
{
	struct schema_report rep;
	memset(&rep, 0, sizeof(rep));
	uint32_t target = o && o->target_version ? o->target_version : schema_latest_version();
	const char *db = dbname(o);
	if (!q || target > schema_latest_version() || !chbatch_valid_table(db, strlen(db)))
		return -EINVAL;
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	int r = schema_probe(q, arg, db, &rep.f);
	if (r < 0)
		goto out;
	render(migrations_table, &rep.f, o, &sb);
	if ((r = strbuf_error(&sb)) < 0 || (r = q(arg, sb.buf, NULL, NULL)) < 0) {
		snprintf(rep.failed_sql, sizeof(rep.failed_sql), "%s", "CREATE TABLE " SCHEMA_MIGRATIONS_TABLE);
		goto out;
	}
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT DISTINCT version FROM %s." SCHEMA_MIGRATIONS_TABLE " ORDER BY version", db);
	if ((r = q_text(q, arg, sql, NULL, &sb)) < 0)
		goto out;
	bool applied[NMIGRATIONS + 1] = { false };
	for (const char *p = sb.buf; p && *p;) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (end == p) {
			r = -EPROTO;
			goto out;
		}
		if (v > rep.from_version)
			rep.from_version = (uint32_t)v;
		for (size_t i = 0; i < NMIGRATIONS; i++)
			if (migrations[i].version == v)
				applied[i] = true;
		p = end + strspn(end, "\n");
	}
	rep.to_version = rep.from_version;
	for (size_t i = 0; i < NMIGRATIONS; i++) {
		const struct migration *m = &migrations[i];
		if (applied[i] || m->version > target)
			continue;
		for (uint32_t s = 0; s < m->nsteps; s++)
			if ((r = run_step(q, arg, &m->steps[s], &rep.f, o, &rep)) < 0)
				goto out;
		strbuf_release(&sb);
		strbuf_init(&sb, 1 << 16);
		record_sql(m, &rep.f, o, &sb);
		if ((r = strbuf_error(&sb)) < 0 || (r = q(arg, sb.buf, NULL, NULL)) < 0)
			goto out;
		rep.applied++;
		if (m->version > rep.to_version)
			rep.to_version = m->version;
	}
out:
	strbuf_release(&sb);
	if (report)
		*report = rep;
	return r;
}

int schema_enforce_retention(schema_query_fn q, void *arg, const struct schema_opts *o,
			     const struct schema_features *f, time_t now, uint32_t *ret_dropped)
{
	uint32_t dropped = 0;
	int r = 0;
	const char *db = dbname(o);
	if (f->ttl || !chbatch_valid_table(db, strlen(db)))
		goto out;
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	for (size_t i = 0; i < sizeof(retained) / sizeof(retained[0]) && r == 0; i++) {
		time_t cut = now - (time_t)days(o, retained[i].raw) * 86400;
		struct tm tm;
		gmtime_r(&cut, &tm);
		unsigned long cutoff = retained[i].monthly ? (unsigned long)(tm.tm_year + 1900) * 100 + (unsigned long)tm.tm_mon + 1
							   : ((unsigned long)(tm.tm_year + 1900) * 100 + (unsigned long)tm.tm_mon + 1) * 100 +
								     (unsigned long)tm.tm_mday;
		char sql[320];
		snprintf(sql, sizeof(sql), "SELECT DISTINCT partition FROM system.parts WHERE database = '%s' AND "
			 "table = '%s' AND active", db, retained[i].table);
		if ((r = q_text(q, arg, sql, NULL, &sb)) < 0)
			break;
		for (const char *p = sb.buf; p && *p && r == 0;) {
			size_t n = strcspn(p, "\n");
			/* partitions are toYYYYMMDD / toYYYYMM values: digits only, else not ours */
			if (n > 0 && n <= 8 && strspn(p, "0123456789") == n && strtoul(p, NULL, 10) < cutoff) {
				snprintf(sql, sizeof(sql), "ALTER TABLE %s.%s DROP PARTITION %.*s", db, retained[i].table,
					 (int)n, p);
				if ((r = q(arg, sql, NULL, NULL)) == 0)
					dropped++;
			}
			p += n + (p[n] == '\n');
		}
	}
	strbuf_release(&sb);
out:
	if (ret_dropped)
		*ret_dropped = dropped;
	return r;
}
