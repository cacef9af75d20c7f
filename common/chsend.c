/* chsend: see chsend.h. */
#include "chsend.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chbatch.h"
#include "spool.h"

struct chsend {
	struct chsend_opts o;
	char database[CHBATCH_MAX_NAME + 1];
	char names[CHWRITER_MAX_TABLES][CHBATCH_MAX_NAME + 1];
	char *columns[CHWRITER_MAX_TABLES];
	char *queries[CHWRITER_MAX_TABLES];
	struct chhttp *http;
	struct spool *spool;
	struct rowbinary rec;      /* spool record being built */
	bool outage;
	uint32_t backoff_ms;
	uint64_t next_try_ns;
	uint64_t replay_id;        /* record whose sections replay_done/replay_poison describe */
	uint32_t replay_done, replay_poison[CHBATCH_MAX_SECTIONS];

	pthread_mutex_t mu;        /* guards st */
	struct chwriter_stats st;  /* delivery fields only */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ClickHouse error codes meaning "this data can never insert" (parse and type errors):
 * retrying them only blocks the spool, so they are dropped after poison_attempts. */
static bool is_poison(int code)
{
	static const int codes[] = { 6, 16, 26, 27, 32, 33, 38, 41, 53, 62, 69, 72, 117 };
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i] == code)
			return true;
	return false;
}

static char *insert_query(const char *db, const char *table, size_t tlen, const char *cols, size_t clen)
{
	size_t n = strlen(db) + tlen + clen + 48;
	char *q = malloc(n);
	if (q)
		snprintf(q, n, "INSERT INTO %s.%.*s (%.*s) FORMAT RowBinary", db, (int)tlen, table, (int)clen, cols);
	return q;
}

int chsend_new(const struct chsend_opts *o, struct chsend **ret)
{
	struct chsend *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *o;
	s->o.tables = NULL;
	s->o.endpoint = s->o.user = s->o.password = s->o.database = s->o.spool_dir = NULL;
	snprintf(s->database, sizeof(s->database), "%s", o->database);
	rowbinary_init(&s->rec, CHWRITER_MAX_UNIT_BYTES + (1u << 20));
	pthread_mutex_init(&s->mu, NULL);
	s->backoff_ms = o->retry_min_ms;
	int r = -ENOMEM;
	for (uint32_t i = 0; i < o->ntables; i++) {
		const struct chwriter_table *t = &o->tables[i];
		snprintf(s->names[i], sizeof(s->names[i]), "%s", t->name);
		s->columns[i] = strdup(t->columns);
		s->queries[i] = insert_query(o->database, t->name, strlen(t->name), t->columns, strlen(t->columns));
		if (!s->columns[i] || !s->queries[i])
			goto fail;
	}
	struct chhttp_opts ho = { .endpoint = o->endpoint, .user = o->user, .password = o->password,
				  .timeout_ms = o->timeout_ms };
	if ((r = chhttp_new(&ho, &s->http)) < 0)
		goto fail;
	if (o->spool_dir && o->spool_dir[0]) {
		struct spool_opts so = {
			.max_bytes = o->spool_max_bytes,
			.policy = o->spool_drop_oldest ? SPOOL_DROP_OLDEST : SPOOL_DROP_NEWEST,
			.fsync = SPOOL_FSYNC_NONE,
		};
		if ((r = spool_open(o->spool_dir, &so, &s->spool)) < 0)
			goto fail;
	}
	*ret = s;
	return 0;
fail:
	chsend_free(s);
	return r;
}

struct chsend *chsend_free(struct chsend *s)
{
	if (!s)
		return NULL;
	spool_free(s->spool);
	chhttp_free(s->http);
	for (uint32_t i = 0; i < s->o.ntables; i++) {
		free(s->columns[i]);
		free(s->queries[i]);
	}
	rowbinary_release(&s->rec);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return NULL;
}

bool chsend_has_spool(const struct chsend *s)
{
	return s->spool != NULL;
}

uint64_t chsend_next_try_ns(const struct chsend *s)
{
	return s->next_try_ns;
}

uint64_t chsend_spool_pending(struct chsend *s)
{
	if (!s->spool)
		return 0;
	struct spool_stats ss;
	spool_stats(s->spool, &ss);
	return ss.records;
}

static int table_index(struct chsend *s, const char *name, size_t len)
{
	for (uint32_t i = 0; i < s->o.ntables; i++)
		if (strlen(s->names[i]) == len && memcmp(s->names[i], name, len) == 0)
			return (int)i;
	return -1;
}

/* Counts rows that went to the spool (spooled) or were dropped (!spooled). */
static void count_rows(struct chsend *s, int ti, bool spooled, uint64_t rows)
{
	if (ti < 0)
		return;
	pthread_mutex_lock(&s->mu);
	if (spooled)
		s->st.t[ti].rows_spooled += rows;
	else
		s->st.t[ti].rows_failed += rows;
	pthread_mutex_unlock(&s->mu);
}

static void set_outage(struct chsend *s, bool outage)
{
	s->outage = outage;
	pthread_mutex_lock(&s->mu);
	s->st.outage = outage;
	pthread_mutex_unlock(&s->mu);
}

/* One INSERT; updates the stats. Returns 0 or -errno; *ret_poison tells data rejection. */
static int insert_once(struct chsend *s, int ti, const char *query, const struct chhttp_chunk *c, size_t n,
		       uint64_t rows, bool replay, bool *ret_poison)
{
	uint64_t t0 = mono_ns(), bytes = 0;
	for (size_t i = 0; i < n; i++)
		bytes += c[i].len;
	int r = chhttp_insert(s->http, query, c, n);
	uint64_t dt = mono_ns() - t0;
	struct chhttp_error e;
	chhttp_last_error(s->http, &e);
	*ret_poison = r < 0 && !e.transport && is_poison(e.ch_code);
	pthread_mutex_lock(&s->mu);
	s->st.up = r == 0;
	if (r < 0) {
		snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", e.msg);
	} else {
		s->st.bytes_sent += bytes;
		s->st.lat_count++;
		s->st.lat_sum_ns += dt;
		if (dt > s->st.lat_max_ns)
			s->st.lat_max_ns = dt;
		for (int b = 0; b < CHWRITER_LAT_BUCKETS; b++)
			if ((double)dt / 1e9 <= chwriter_lat_bounds[b])
				s->st.lat_buckets[b]++;
	}
	if (ti >= 0) {
		struct chwriter_table_stats *ts = &s->st.t[ti];
		if (r == 0) {
			ts->inserts_ok++;
			ts->rows_inserted += rows;
			ts->rows_replayed += replay ? rows : 0;
		} else {
			ts->inserts_failed++;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

static void schedule_retry(struct chsend *s)
{
	set_outage(s, true);
	s->next_try_ns = mono_ns() + (uint64_t)s->backoff_ms * 1000000ull;
	s->backoff_ms = s->backoff_ms >= s->o.retry_max_ms / 2 ? s->o.retry_max_ms : s->backoff_ms * 2;
}

static void recovered(struct chsend *s)
{
	set_outage(s, false);
	s->backoff_ms = s->o.retry_min_ms;
	s->next_try_ns = 0;
}

static int insert_sections(struct chsend *s, struct chsend_section *secs, uint32_t n, uint32_t attempts)
{
	uint32_t poison_max = attempts < s->o.poison_attempts ? attempts : s->o.poison_attempts;
	int rc = 0;
	for (uint32_t a = 0; a < attempts; a++) {
		if (a > 0) {
			uint64_t ms = (uint64_t)s->o.retry_min_ms << (a - 1 < 16 ? a - 1 : 16);
			if (ms > s->o.retry_max_ms)
				ms = s->o.retry_max_ms;
			struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };
			nanosleep(&ts, NULL);
		}
		rc = 0;
		for (uint32_t i = 0; i < n && rc == 0; i++) {
			struct chsend_section *x = &secs[i];
			if (x->done || !x->rows)
				continue;
			bool poison;
			rc = insert_once(s, (int)x->table, s->queries[x->table], x->chunks, x->nchunks, x->rows, false,
					 &poison);
			if (rc == 0) {
				x->done = true;
			} else if (poison && ++x->poison >= poison_max) {
				/* the data itself is refused: spooling it would only block the spool */
				x->done = true;
				count_rows(s, (int)x->table, false, x->rows);
				rc = 0;
			}
		}
		if (rc == 0)
			return 0;
	}
	return rc;
}

/* Appends the round's remaining sections as one spool record. */
static int spool_sections(struct chsend *s, struct chsend_section *secs, uint32_t n)
{
	uint16_t ns = 0;
	for (uint32_t i = 0; i < n; i++)
		ns += !secs[i].done && secs[i].rows;
	if (ns == 0)
		return 0;
	rowbinary_reset(&s->rec);
	chbatch_encode_header(&s->rec, ns);
	for (uint32_t i = 0; i < n; i++)
		if (!secs[i].done && secs[i].rows)
			chbatch_encode_section(&s->rec, s->names[secs[i].table], s->columns[secs[i].table], secs[i].rows,
					       secs[i].chunks, secs[i].nchunks);
	int rc = rowbinary_error(&s->rec);
	if (rc == 0)
		rc = spool_append(s->spool, s->rec.buf, s->rec.len, NULL);
	for (uint32_t i = 0; i < n; i++)
		if (!secs[i].done && secs[i].rows)
			count_rows(s, (int)secs[i].table, rc == 0, secs[i].rows);
	return rc;
}

int chsend_round(struct chsend *s, struct chsend_section *secs, uint32_t n, uint32_t attempts, bool stopping)
{
	bool due = mono_ns() >= s->next_try_ns;
	if (s->spool && (chsend_spool_pending(s) > 0 || (s->outage && (!due || stopping)))) {
		int rc = spool_sections(s, secs, n);
		return rc == 0 ? CHWRITER_SPOOLED : rc;
	}
	if (insert_sections(s, secs, n, stopping ? 1 : attempts) == 0) {
		recovered(s);
		return CHWRITER_INSERTED;
	}
	schedule_retry(s);
	if (!s->spool)
		return -EAGAIN;
	int rc = spool_sections(s, secs, n);
	return rc == 0 ? CHWRITER_SPOOLED : rc;
}

void chsend_replay(struct chsend *s)
{
	const void *buf;
	size_t len;
	uint64_t id;
	if (!s->spool)
		return;
	int rc = spool_peek(s->spool, &buf, &len, &id);
	if (rc == -ENOENT)
		return;
	if (rc < 0) {
		schedule_retry(s);
		return;
	}
	if (id != s->replay_id) {
		s->replay_id = id;
		s->replay_done = 0;
		memset(s->replay_poison, 0, sizeof(s->replay_poison));
	}
	struct chbatch_section sec[CHBATCH_MAX_SECTIONS];
	uint32_t n = 0;
	if (chbatch_parse(buf, len, sec, &n) < 0) {
		/* not ours, or damaged past the spool's CRC: it can never insert */
		spool_ack(s->spool, id);
		pthread_mutex_lock(&s->mu);
		s->st.spool_dropped++;
		pthread_mutex_unlock(&s->mu);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (s->replay_done & (1u << i))
			continue;
		int ti = table_index(s, sec[i].table, sec[i].table_len);
		char *q = insert_query(s->database, sec[i].table, sec[i].table_len, sec[i].columns, sec[i].columns_len);
		if (!q) {
			schedule_retry(s);
			return;
		}
		struct chhttp_chunk c = { sec[i].data, sec[i].len };
		bool poison;
		rc = insert_once(s, ti, q, &c, 1, sec[i].rows, true, &poison);
		free(q);
		if (rc < 0 && !(poison && ++s->replay_poison[i] >= s->o.poison_attempts)) {
			schedule_retry(s);
			return;
		}
		if (rc < 0)
			count_rows(s, ti, false, sec[i].rows);
		s->replay_done |= 1u << i;
	}
	spool_ack(s->spool, id);
	s->backoff_ms = s->o.retry_min_ms;
	s->next_try_ns = 0;
	if (chsend_spool_pending(s) == 0)
		recovered(s);
}

void chsend_stats(struct chsend *s, struct chwriter_stats *into)
{
	pthread_mutex_lock(&s->mu);
	const struct chwriter_stats *st = &s->st;
	for (int i = 0; i < CHWRITER_MAX_TABLES; i++) {
		struct chwriter_table_stats *d = &into->t[i];
		d->rows_inserted = st->t[i].rows_inserted;
		d->rows_spooled = st->t[i].rows_spooled;
		d->rows_replayed = st->t[i].rows_replayed;
		d->rows_failed = st->t[i].rows_failed;
		d->inserts_ok = st->t[i].inserts_ok;
		d->inserts_failed = st->t[i].inserts_failed;
	}
	into->bytes_sent = st->bytes_sent;
	into->lat_count = st->lat_count;
	into->lat_sum_ns = st->lat_sum_ns;
	into->lat_max_ns = st->lat_max_ns;
	memcpy(into->lat_buckets, st->lat_buckets, sizeof(into->lat_buckets));
	into->up = st->up;
	memcpy(into->last_error, st->last_error, sizeof(into->last_error));
	into->spool_dropped = st->spool_dropped;
	into->outage = st->outage;
	pthread_mutex_unlock(&s->mu);
	if (s->spool) {
		struct spool_stats ss;
		spool_stats(s->spool, &ss);
		into->spool_bytes = ss.bytes;
		into->spool_records = ss.records;
		into->spool_dropped += ss.dropped_oldest + ss.dropped_newest;
	}
}
