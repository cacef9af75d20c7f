/* schema_test: rendering per feature set, the committed SQL files (backend/clickhouse_schema.sql
 * and backend/migrations/) match the migrations compiled in, every column chrows writes exists
 * in the DDL, and the runner's logic against a scripted server: fresh install, migration from
 * the previous version, a second run that changes nothing, guarded ADD COLUMN, retention
 * without TTL. The real server is exercised by tests/integration/test_clickhouse_schema.py. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chrows.h"
#include "schema.h"

/* ---- scripted server ---- */

struct fake {
	bool modern;             /* answer like a current server (all features) */
	const char *applied;     /* "1\n2" answer of the migrations query */
	const char *has_column;  /* "0" or "1" */
	const char *partitions;  /* system.parts answer */
	char log[64][4096];       /* statements that change something (CREATE/ALTER/INSERT/DROP) */
	int nlog;
	const char *fail_prefix; /* statements starting with this fail (-EREMOTEIO) */
};

static int fake_query(void *arg, const char *sql, const char *settings, struct strbuf *out)
{
	struct fake *f = arg;
	const char *ans = "";
	if (f->fail_prefix && !strncmp(sql, f->fail_prefix, strlen(f->fail_prefix)))
		return -EREMOTEIO;
	if (!strcmp(sql, "SELECT version()"))
		ans = f->modern ? "24.3.1.1\n" : "18.16.1\n";
	else if (strstr(sql, "system.build_options"))
		ans = f->modern ? "24003001\n" : "18016001\n";
	else if (strstr(sql, "system.data_type_families"))
		ans = f->modern ? "LowCardinality\nDateTime64\nIPv6\n" : "LowCardinality\n";
	else if (strstr(sql, "system.settings"))
		ans = f->modern ? "1\n" : "0\n";
	else if (strstr(sql, "system.functions"))
		ans = f->modern ? "fromUnixTimestamp64Nano\n" : "";
	else if (strstr(sql, "SELECT DISTINCT version"))
		ans = f->applied ? f->applied : "";
	else if (strstr(sql, "system.columns"))
		ans = f->has_column ? f->has_column : "0";
	else if (strstr(sql, "system.parts"))
		ans = f->partitions ? f->partitions : "";
	else if (strstr(sql, "_ms_probe (") && !f->modern)
		return -EREMOTEIO; /* 18.16: TTL and CODEC are syntax errors */
	if (strncmp(sql, "SELECT", 6) != 0 && !strstr(sql, "_ms_probe") && f->nlog < 64) {
		snprintf(f->log[f->nlog], sizeof(f->log[0]), "%s%s", settings ? "[lc] " : "", sql);
		f->nlog++;
	}
	if (out)
		strbuf_append(out, ans, strlen(ans));
	return 0;
}

static int count_log(struct fake *f, const char *prefix)
{
	int n = 0;
	for (int i = 0; i < f->nlog; i++)
		n += strncmp(f->log[i], prefix, strlen(prefix)) == 0 || strstr(f->log[i], prefix) != NULL;
	return n;
}

/* ---- files ---- */

static char *read_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	size_t got = fread(buf, 1, (size_t)n, fp);
	buf[got] = 0;
	fclose(fp);
	return buf;
}

static const char header[] =
	"-- MicroSentinel ClickHouse schema, rendered for ClickHouse 18.16 (no TTL, CODEC, DateTime64,\n"
	"-- IPv6). GENERATED from the migrations in coordinator/schema.c: do not edit by hand;\n"
	"-- coordinator/schema_test.c checks this file and writes the expected text beside the test\n"
	"-- binary when it differs. The coordinator applies the same migrations itself (and adapts\n"
	"-- them to newer servers); this file is for people and for loading by hand:\n"
	"--   clickhouse-client --multiquery < FILE\n\n";

/* Compares a committed file (path relative to the source root) with the rendering. */
static void check_file(const char *rel, uint32_t from, uint32_t to)
{
	char src[512], path[600];
	snprintf(src, sizeof(src), "%s", __FILE__);
	snprintf(path, sizeof(path), "%s/../%s", dirname(src), rel);
	struct schema_features f;
	schema_features_18_16(&f);
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	strbuf_appendf(&sb, "%s", header);
	assert_int_equal(schema_render(&f, NULL, from, to, &sb), 0);
	char *have = read_file(path);
	if (!have || strcmp(have, sb.buf) != 0) {
		char out[600];
		snprintf(out, sizeof(out), "%s.expected", strrchr(rel, '/') + 1);
		FILE *fp = fopen(out, "wb");
		if (fp) {
			fwrite(sb.buf, 1, sb.len, fp);
			fclose(fp);
		}
		fail_msg("%s does not match the migrations; the expected text is in ./%s", path, out);
	}
	free(have);
	strbuf_release(&sb);
}

static void test_committed_sql_matches(void **state)
{
	check_file("backend/clickhouse_schema.sql", 0, schema_latest_version());
	check_file("backend/migrations/0001_core.sql", 0, 1);
	check_file("backend/migrations/0002_fleet.sql", 1, 2);
}

/* The CREATE statement of table t in a rendered script, or NULL. */
static const char *create_of(const char *sql, const char *table, size_t *ret_len)
{
	char needle[128];
	snprintf(needle, sizeof(needle), ".%s\n(", table);
	const char *p = strstr(sql, needle);
	if (!p)
		return NULL;
	const char *end = strstr(p, ";\n");
	*ret_len = (size_t)(end - p);
	return p;
}

static void check_columns(const struct schema_features *f)
{
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	assert_int_equal(schema_render(f, NULL, 0, schema_latest_version(), &sb), 0);
	for (int t = 0; t < CHROWS__N; t++) {
		size_t n = 0;
		const char *ddl = create_of(sb.buf, chrows_tables[t].name, &n);
		if (!ddl)
			fail_msg("no CREATE for %s", chrows_tables[t].name);
		char cols[4096];
		snprintf(cols, sizeof(cols), "%s", chrows_tables[t].columns);
		for (char *c = strtok(cols, ","); c; c = strtok(NULL, ",")) {
			char in_create[160], added[200];
			snprintf(in_create, sizeof(in_create), "\n    %s ", c);
			snprintf(added, sizeof(added), "ALTER TABLE microsentinel.%s ADD COLUMN %s ", chrows_tables[t].name, c);
			char *body = strndup(ddl, n);
			bool ok = strstr(body, in_create) || strstr(sb.buf, added);
			free(body);
			if (!ok)
				fail_msg("column %s.%s written by chrows is not in the schema", chrows_tables[t].name, c);
		}
	}
	strbuf_release(&sb);
}

static void test_chrows_columns_exist(void **state)
{
	struct schema_features f;
	schema_features_18_16(&f);
	check_columns(&f);
	struct schema_features all = { "24.3", 24003000, true, false, true, true, true, true };
	check_columns(&all);
}

static void test_render_adapts_to_features(void **state)
{
	struct schema_features f;
	schema_features_18_16(&f);
	struct strbuf old, neu;
	strbuf_init(&old, 1 << 20);
	strbuf_init(&neu, 1 << 20);
	struct schema_opts o = { .database = "obs", .raw_retention_days = 3, .retention_days = 30 };
	assert_int_equal(schema_render(&f, &o, 0, 2, &old), 0);
	assert_non_null(strstr(old.buf, "SET allow_experimental_low_cardinality_type = 1;"));
	assert_non_null(strstr(old.buf, "CREATE TABLE IF NOT EXISTS obs.ms_flow_rollup\n"));
	assert_non_null(strstr(old.buf, "host LowCardinality(String)"));
	assert_non_null(strstr(old.buf, "saddr FixedString(16)"));
	assert_null(strstr(old.buf, "TTL"));
	assert_null(strstr(old.buf, "CODEC"));
	assert_null(strstr(old.buf, "DateTime64"));
	assert_null(strstr(old.buf, "{"));
	assert_null(strstr(old.buf, "@"));
	struct schema_features all = { "24.3", 24003000, true, false, true, true, true, true };
	assert_int_equal(schema_render(&all, &o, 0, 2, &neu), 0);
	assert_null(strstr(neu.buf, "SET allow_experimental"));
	assert_non_null(strstr(neu.buf, "TTL ts + INTERVAL 3 DAY"));
	assert_non_null(strstr(neu.buf, "TTL ts + INTERVAL 30 DAY"));
	assert_non_null(strstr(neu.buf, "ts DateTime CODEC(Delta, LZ4)"));
	assert_non_null(strstr(neu.buf, "time DateTime64(9) MATERIALIZED fromUnixTimestamp64Nano(toInt64(ts_ns)),"));
	assert_non_null(strstr(neu.buf, "saddr IPv6"));
	struct schema_features none = { "x", 0, false, false, false, false, false, false };
	strbuf_release(&neu);
	strbuf_init(&neu, 1 << 20);
	assert_int_equal(schema_render(&none, &o, 1, 2, &neu), 0);
	assert_null(strstr(neu.buf, "LowCardinality"));
	assert_null(strstr(neu.buf, "CREATE DATABASE")); /* from > 0: no preamble */
	assert_non_null(strstr(neu.buf, "-- migration 2: fleet"));
	assert_null(strstr(neu.buf, "-- migration 1"));
	assert_int_equal(schema_render(&none, &o, 0, 99, &neu), -EINVAL);
	strbuf_release(&old);
	strbuf_release(&neu);
}

static void test_fresh_then_idempotent(void **state)
{
	struct fake f = { 0 };
	struct schema_report rep;
	struct schema_opts o = { 0 };
	assert_int_equal(schema_migrate(fake_query, &f, &o, &rep), 0);
	assert_int_equal(rep.from_version, 0);
	assert_int_equal(rep.to_version, schema_latest_version());
	assert_int_equal(rep.applied, 2);
	assert_true(rep.f.low_cardinality && rep.f.lc_experimental);
	assert_false(rep.f.ttl || rep.f.codecs || rep.f.datetime64);
	assert_int_equal(count_log(&f, "CREATE DATABASE IF NOT EXISTS microsentinel"), 1);
	assert_int_equal(count_log(&f, "[lc] CREATE TABLE IF NOT EXISTS microsentinel.ms_flow_rollup"), 1);
	assert_int_equal(count_log(&f, "ADD COLUMN"), 2);
	assert_int_equal(count_log(&f, "INSERT INTO microsentinel.ms_schema_migrations"), 2);

	/* second run: everything recorded, nothing but the migrations table's IF NOT EXISTS */
	struct fake g = { .applied = "1\n2\n", .has_column = "1" };
	assert_int_equal(schema_migrate(fake_query, &g, &o, &rep), 0);
	assert_int_equal(rep.from_version, 2);
	assert_int_equal(rep.applied, 0);
	assert_int_equal(count_log(&g, "ms_flow_rollup"), 0);
	assert_int_equal(count_log(&g, "INSERT"), 0);
	assert_int_equal(count_log(&g, "ALTER"), 0);
}

static void test_migrates_previous_version(void **state)
{
	struct fake f = { .applied = "1\n", .has_column = "0" };
	struct schema_report rep;
	assert_int_equal(schema_migrate(fake_query, &f, NULL, &rep), 0);
	assert_int_equal(rep.from_version, 1);
	assert_int_equal(rep.to_version, 2);
	assert_int_equal(rep.applied, 1);
	assert_int_equal(count_log(&f, "ALTER TABLE microsentinel.ms_flow_rollup ADD COLUMN mode"), 1);
	assert_int_equal(count_log(&f, "CREATE TABLE IF NOT EXISTS microsentinel.ms_windows"), 1);
	assert_int_equal(count_log(&f, "CREATE TABLE IF NOT EXISTS microsentinel.ms_raw_samples"), 0);
	assert_int_equal(count_log(&f, "VALUES (2, 'fleet'"), 1);

	/* a crash after the ALTERs but before the record: the columns exist, no ALTER again */
	struct fake g = { .applied = "1\n", .has_column = "1" };
	assert_int_equal(schema_migrate(fake_query, &g, NULL, &rep), 0);
	assert_int_equal(count_log(&g, "ALTER"), 0);
	assert_int_equal(rep.applied, 1);

	/* target version 1 on a fresh server stops there */
	struct fake h = { 0 };
	struct schema_opts o = { .target_version = 1 };
	assert_int_equal(schema_migrate(fake_query, &h, &o, &rep), 0);
	assert_int_equal(rep.to_version, 1);
	assert_int_equal(count_log(&h, "ms_windows"), 0);
}

static void test_modern_server_and_errors(void **state)
{
	struct fake f = { .modern = true };
	struct schema_report rep;
	assert_int_equal(schema_migrate(fake_query, &f, NULL, &rep), 0);
	assert_true(rep.f.ttl && rep.f.codecs && rep.f.datetime64 && rep.f.ipv6 && rep.f.low_cardinality);
	assert_false(rep.f.lc_experimental);
	assert_int_equal(count_log(&f, "[lc]"), 0);
	assert_int_equal(count_log(&f, "TTL ts + INTERVAL 7 DAY"), 1);
	char feats[64];
	schema_features_string(&rep.f, feats, sizeof(feats));
	assert_string_equal(feats, "lc,dt64,ttl,codecs,ipv6");

	struct fake g = { .fail_prefix = "CREATE TABLE IF NOT EXISTS microsentinel.ms_flows" };
	assert_int_equal(schema_migrate(fake_query, &g, NULL, &rep), -EREMOTEIO);
	assert_non_null(strstr(rep.failed_sql, "ms_flows"));
	assert_int_equal(count_log(&g, "INSERT"), 0); /* v1 not recorded */

	struct schema_opts bad = { .database = "x;DROP" };
	assert_int_equal(schema_migrate(fake_query, &g, &bad, &rep), -EINVAL);
	struct schema_opts far = { .target_version = 99 };
	assert_int_equal(schema_migrate(fake_query, &g, &far, &rep), -EINVAL);
	assert_string_equal(schema_migration_name(1), "core");
	assert_null(schema_migration_name(99));
}

static void test_retention_without_ttl(void **state)
{
	/* 2026-11-25 12:00 UTC; raw 7 days: cutoff 20261118; others 90 days: 20260827, month 202608 */
	time_t now = 1795608000;
	struct fake f = { .partitions = "20261117\n20261118\n20261125\n202607\n202608\ntuple()\n" };
	struct schema_features feat;
	schema_features_18_16(&feat);
	uint32_t dropped = 0;
	assert_int_equal(schema_enforce_retention(fake_query, &f, NULL, &feat, now, &dropped), 0);
	assert_int_equal(count_log(&f, "ALTER TABLE microsentinel.ms_raw_samples DROP PARTITION 20261117"), 1);
	assert_int_equal(count_log(&f, "ALTER TABLE microsentinel.ms_raw_samples DROP PARTITION 20261118"), 0);
	/* rollup (90 days): none of the day partitions is that old; the 6-digit ones sort lower */
	assert_int_equal(count_log(&f, "ms_flow_rollup DROP PARTITION 202607"), 1);
	assert_int_equal(count_log(&f, "ms_flows DROP PARTITION 202607"), 1);
	assert_int_equal(count_log(&f, "ms_flows DROP PARTITION 202608"), 0);
	assert_int_equal(count_log(&f, "tuple"), 0);
	assert_true(dropped > 0);
	feat.ttl = true;
	struct fake g = { .partitions = "20000101\n" };
	assert_int_equal(schema_enforce_retention(fake_query, &g, NULL, &feat, now, &dropped), 0);
	assert_int_equal(dropped, 0);
	assert_int_equal(g.nlog, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_committed_sql_matches),
		cmocka_unit_test(test_chrows_columns_exist),
		cmocka_unit_test(test_render_adapts_to_features),
		cmocka_unit_test(test_fresh_then_idempotent),
		cmocka_unit_test(test_migrates_previous_version),
		cmocka_unit_test(test_modern_server_and_errors),
		cmocka_unit_test(test_retention_without_ttl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
