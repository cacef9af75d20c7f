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
	uint64_t replay_done;
	uint32_t replay_poison[CHBATCH_MAX_SECTIONS];

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
				  .timeout_ms = o->timeout_ms, .parallel = o->parallel ? o->parallel : 1 };
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

bool chsend_outage(const struct chsend *s)
{
	return s->outage;
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

/* One batch of concurrent INSERTs, one per job (n <= parallel); updates the stats and each
 * job's result and poison flag. */
struct job {
	int table;                     /* index, or -1 for a table this writer does not know */
	char *query;                   /* NULL = the table's prebuilt query */
	const struct chhttp_chunk *chunks;
	size_t nchunks;
	uint64_t rows;
	int result;
	bool poison;
};

static void insert_group(struct chsend *s, struct job *jobs, uint32_t n, bool replay)
{
	struct chhttp_req req[CHHTTP_MAX_PARALLEL];
	for (uint32_t i = 0; i < n; i++)
		req[i] = (struct chhttp_req){ .query = jobs[i].query ? jobs[i].query : s->queries[jobs[i].table],
					      .chunks = jobs[i].chunks, .nchunks = jobs[i].nchunks };
	uint64_t t0 = mono_ns();
	chhttp_insert_many(s->http, req, n);
	uint64_t dt = mono_ns() - t0;
	pthread_mutex_lock(&s->mu);
	for (uint32_t i = 0; i < n; i++) {
		struct job *j = &jobs[i];
		j->result = req[i].result;
		j->poison = j->result < 0 && !req[i].err.transport && is_poison(req[i].err.ch_code);
		uint64_t bytes = 0;
		for (size_t k = 0; k < j->nchunks; k++)
			bytes += j->chunks[k].len;
		s->st.up = j->result == 0;
		if (j->result < 0) {
			snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", req[i].err.msg);
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
		if (j->table >= 0) {
			struct chwriter_table_stats *ts = &s->st.t[j->table];
			if (j->result == 0) {
				ts->inserts_ok++;
				ts->rows_inserted += j->rows;
				ts->rows_replayed += replay ? j->rows : 0;
			} else {
				ts->inserts_failed++;
			}
		}
	}
	pthread_mutex_unlock(&s->mu);
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

/* One attempt over every pending section, `parallel` at a time. Returns 0 when all are done
 * (inserted, or dropped as poison), else the first failure. */
static int insert_attempt(struct chsend *s, struct chsend_section *secs, uint32_t n, uint32_t poison_max)
{
	int rc = 0;
	uint32_t i = 0;
	while (i < n) {
		struct job jobs[CHHTTP_MAX_PARALLEL];
		struct chsend_section *which[CHHTTP_MAX_PARALLEL];
		uint32_t k = 0;
		for (; i < n && k < s->o.parallel; i++) {
			if (secs[i].done || secs[i].hold || !secs[i].rows)
				continue;
			which[k] = &secs[i];
			jobs[k++] = (struct job){ .table = (int)secs[i].table, .chunks = secs[i].chunks,
						  .nchunks = secs[i].nchunks, .rows = secs[i].rows };
		}
		if (k == 0)
			break;
		insert_group(s, jobs, k, false);
		for (uint32_t j = 0; j < k; j++) {
			struct chsend_section *x = which[j];
			if (jobs[j].result == 0) {
				x->done = true;
			} else if (jobs[j].poison && ++x->poison >= poison_max) {
				/* the data itself is refused: spooling it would only block the spool */
				x->done = true;
				count_rows(s, (int)x->table, false, x->rows);
			} else if (rc == 0) {
				rc = jobs[j].result;
			}
		}
		if (rc < 0)
			break;
	}
	return rc;
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
		if ((rc = insert_attempt(s, secs, n, poison_max)) == 0)
			return 0;
	}
	return rc;
}

/* Appends the round's remaining sections as one spool record; adjacent parts of one table
 * whose chunks are contiguous become one section again. */
static int spool_sections(struct chsend *s, struct chsend_section *secs, uint32_t n)
{
	struct chsend_section m[CHBATCH_MAX_SECTIONS];
	uint16_t ns = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct chsend_section *x = &secs[i];
		if (x->done || x->hold || !x->rows)
			continue;
		struct chsend_section *last = ns ? &m[ns - 1] : NULL;
		if (last && last->table == x->table && last->chunks + last->nchunks == x->chunks) {
			last->rows += x->rows;
			last->nchunks += x->nchunks;
		} else if (ns < CHBATCH_MAX_SECTIONS) {
			m[ns++] = *x;
		} else {
			return -E2BIG;
		}
	}
	if (ns == 0)
		return 0;
	rowbinary_reset(&s->rec);
	chbatch_encode_header(&s->rec, ns);
	for (uint32_t i = 0; i < ns; i++)
		chbatch_encode_section(&s->rec, s->names[m[i].table], s->columns[m[i].table], m[i].rows, m[i].chunks,
				       m[i].nchunks);
	int rc = rowbinary_error(&s->rec);
	if (rc == 0)
		rc = spool_append(s->spool, s->rec.buf, s->rec.len, NULL);
	for (uint32_t i = 0; i < ns; i++)
		count_rows(s, (int)m[i].table, rc == 0, m[i].rows);
	for (uint32_t i = 0; rc == 0 && i < n; i++)
		if (!secs[i].done && !secs[i].hold && secs[i].rows)
			secs[i].done = secs[i].spooled = true;
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
	for (uint32_t i = 0; i < n;) {
		struct job jobs[CHHTTP_MAX_PARALLEL];
		struct chhttp_chunk c[CHHTTP_MAX_PARALLEL];
		uint32_t idx[CHHTTP_MAX_PARALLEL], k = 0;
		for (; i < n && k < s->o.parallel; i++) {
			if (s->replay_done & (1ull << i))
				continue;
			c[k] = (struct chhttp_chunk){ sec[i].data, sec[i].len };
			jobs[k] = (struct job){ .table = table_index(s, sec[i].table, sec[i].table_len),
						.query = insert_query(s->database, sec[i].table, sec[i].table_len,
								      sec[i].columns, sec[i].columns_len),
						.chunks = &c[k], .nchunks = 1, .rows = sec[i].rows };
			idx[k] = i;
			if (!jobs[k].query)
				break;
			k++;
		}
		bool oom = i < n && k < s->o.parallel && !(s->replay_done & (1ull << i));
		if (k)
			insert_group(s, jobs, k, true);
		bool failed = oom;
		for (uint32_t j = 0; j < k; j++) {
			free(jobs[j].query);
			uint32_t x = idx[j];
			if (jobs[j].result < 0 && !(jobs[j].poison && ++s->replay_poison[x] >= s->o.poison_attempts)) {
				failed = true;
				continue;
			}
			if (jobs[j].result < 0)
				count_rows(s, jobs[j].table, false, sec[x].rows);
			s->replay_done |= 1ull << x;
		}
		if (failed) {
			schedule_retry(s);
			return;
		}
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
