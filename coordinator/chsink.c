/* chsink: see chsink.h. */
#include "chsink.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chbatch.h"
#include "chhttp.h"
#include "chrows.h"

#define MIGRATE_RETRY_S 10
#define RETENTION_EVERY_S 3600

struct chsink {
	struct chhttp *http;          /* main thread: migrations and retention */
	struct chwriter *w;
	struct schema_opts so;
	char database[(CHBATCH_MAX_NAME + 1)];
	pthread_mutex_t mu;           /* guards st (metrics read it) */
	struct chsink_schema_state st;
	time_t next_migrate, next_retention;
};

/* Opens the HTTP connection used for DDL with the password from the file. */
static int connect_ddl(const struct chsink_opts *o, struct chhttp **ret, char *err, size_t errlen)
{
	char pw[CHHTTP_MAX_CRED] = "";
	if (o->password_file && o->password_file[0]) {
		int r = chhttp_read_password_file(o->password_file, pw, sizeof(pw));
		if (r < 0) {
			snprintf(err, errlen, "clickhouse_password_file %s: %s%s", o->password_file, strerror(-r),
				 r == -EPERM ? " (it must not be readable or writable by others: chmod 600)" : "");
			return r;
		}
	}
	struct chhttp_opts ho = { .endpoint = o->endpoint, .user = o->user, .password = pw, .timeout_ms = 60000 };
	int r = chhttp_new(&ho, ret);
	explicit_bzero(pw, sizeof(pw));
	if (r < 0)
		snprintf(err, errlen, "clickhouse_endpoint %s: %s", o->endpoint, strerror(-r));
	return r;
}

static void migrate(struct chsink *s)
{
	struct schema_report rep;
	int r = schema_migrate(schema_query_chhttp, s->http, &s->so, &rep);
	pthread_mutex_lock(&s->mu);
	s->st.last_error = r;
	s->st.report = rep;
	s->st.migrated = r == 0;
	pthread_mutex_unlock(&s->mu);
}

int chsink_init_schema(const struct chsink_opts *o, struct schema_report *ret, char *err, size_t errlen)
{
	if (!o || !o->endpoint || !o->endpoint[0])
		return -EINVAL;
	struct chhttp *h;
	int r = connect_ddl(o, &h, err, errlen);
	if (r < 0)
		return r;
	struct schema_opts so = { .database = o->database };
	r = schema_migrate(schema_query_chhttp, h, &so, ret);
	if (r < 0)
		snprintf(err, errlen, "migration failed: %s%s%s", strerror(-r), ret->failed_sql[0] ? " at: " : "",
			 ret->failed_sql);
	chhttp_free(h);
	return r;
}

int chsink_open(const struct chsink_opts *o, struct chsink **ret, char *err, size_t errlen)
{
	if (!o || !o->endpoint || !o->endpoint[0] || !o->spool_dir || !o->spool_dir[0] ||
	    (o->database && strlen(o->database) >= (CHBATCH_MAX_NAME + 1))) {
		snprintf(err, errlen, "clickhouse: endpoint, spool directory and a short database name are required");
		return -EINVAL;
	}
	struct chsink *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	snprintf(s->database, sizeof(s->database), "%s", o->database && o->database[0] ? o->database
											: SCHEMA_DEFAULT_DATABASE);
	s->so.database = s->database;
	int r = connect_ddl(o, &s->http, err, errlen);
	if (r < 0)
		goto fail;
	migrate(s);
	s->next_migrate = time(NULL) + MIGRATE_RETRY_S;
	/* the writer gets the password again from the same file: nothing keeps it in between */
	char pw[CHHTTP_MAX_CRED] = "";
	if (o->password_file && o->password_file[0] && (r = chhttp_read_password_file(o->password_file, pw, sizeof(pw))) < 0)
		goto fail;
	struct chwriter_opts wo = {
		.endpoint = o->endpoint,
		.user = o->user,
		.password = pw,
		.database = s->database,
		.tables = chrows_tables,
		.ntables = CHROWS__N,
		.batch_rows = o->batch_rows,
		.flush_ms = o->flush_ms,
		.spool_dir = o->spool_dir,
		.spool_max_bytes = o->spool_max_bytes,
	};
	r = chwriter_new(&wo, &s->w);
	explicit_bzero(pw, sizeof(pw));
	if (r < 0) {
		snprintf(err, errlen, "clickhouse writer (spool %s): %s", o->spool_dir, strerror(-r));
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	chhttp_free(s->http);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return r;
}

struct chsink *chsink_free(struct chsink *s)
{
	if (!s)
		return NULL;
	chwriter_free(s->w);
	chhttp_free(s->http);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return NULL;
}

int chsink_window(void *arg, const struct wire_window *w, void (*done)(void *, int), void *done_arg)
{
	struct chsink *s = arg;
	struct chwriter_unit *u;
	int r = chwriter_unit_take(s->w, &u);
	if (r < 0)
		return r;
	if ((r = chrows_window(u, w)) == 0 && (r = chwriter_submit(s->w, &u, done, done_arg)) == 0)
		return 0;
	chwriter_unit_free(u);
	return r;
}

int chsink_fleet_event(void *arg, const struct chrows_fleet_event *e)
{
	struct chsink *s = arg;
	struct chwriter_unit *u;
	int r = chwriter_unit_take(s->w, &u);
	if (r < 0)
		return r;
	if ((r = chrows_fleet_event(u, e)) == 0 && (r = chwriter_submit(s->w, &u, NULL, NULL)) == 0)
		return 0;
	chwriter_unit_free(u);
	return r;
}

int chsink_hello(void *arg, const struct wire_hello *h, uint64_t ts_ns)
{
	struct chsink *s = arg;
	struct chwriter_unit *u;
	int r = chwriter_unit_take(s->w, &u);
	if (r < 0)
		return r;
	if ((r = chrows_hello(u, h, ts_ns)) == 0 && (r = chwriter_submit(s->w, &u, NULL, NULL)) == 0)
		return 0;
	chwriter_unit_free(u);
	return r;
}

int chsink_metrics(void *arg, struct strbuf *sb)
{
	struct chsink *s = arg;
	pthread_mutex_lock(&s->mu);
	uint32_t v = s->st.report.to_version;
	pthread_mutex_unlock(&s->mu);
	strbuf_appendf(sb, "# HELP ms_coord_ch_schema_version Schema migration version recorded in ClickHouse.\n"
		       "# TYPE ms_coord_ch_schema_version gauge\nms_coord_ch_schema_version %" PRIu32 "\n", v);
	return chwriter_metrics(s->w, "ms_coord_ch", sb);
}

void chsink_schema(struct chsink *s, struct chsink_schema_state *ret)
{
	pthread_mutex_lock(&s->mu);
	*ret = s->st;
	pthread_mutex_unlock(&s->mu);
}

int chsink_drain(struct chsink *s, int timeout_ms)
{
	return chwriter_flush(s->w, timeout_ms);
}

void chsink_stats(struct chsink *s, struct chwriter_stats *ret)
{
	chwriter_stats(s->w, ret);
}

int chsink_tick(struct chsink *s, time_t now, uint32_t *ret_dropped)
{
	if (ret_dropped)
		*ret_dropped = 0;
	if (!s->st.migrated) {
		if (now < s->next_migrate)
			return 0;
		s->next_migrate = now + MIGRATE_RETRY_S;
		migrate(s);
		return 1;
	}
	if (now < s->next_retention)
		return 0;
	s->next_retention = now + RETENTION_EVERY_S;
	uint32_t dropped = 0;
	int r = schema_enforce_retention(schema_query_chhttp, s->http, &s->so, &s->st.report.f, now, &dropped);
	if (ret_dropped)
		*ret_dropped = dropped;
	return r == 0 && dropped ? 1 : 0;
}
