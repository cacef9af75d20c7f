/* chwriter: see chwriter.h. The writer thread owns the HTTP connection, the spool's consumer
 * side and the outage state; producers only touch the open round under the mutex. */
#include "chwriter.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chbatch.h"
#include "chhttp.h"
#include "chsend.h"

const double chwriter_lat_bounds[CHWRITER_LAT_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
							   0.5,   1,    2.5,   5,    10,  1e300 };

struct round {
	struct chwriter_unit *head, *tail;
	uint32_t nunits;
	uint64_t rows[CHWRITER_MAX_TABLES];
	uint64_t bytes, nrows;
	uint64_t opened_ns;
	/* built by the writer thread when it takes the round; kept across retries (no spool) */
	struct chsend_section secs[CHBATCH_MAX_SECTIONS];
	struct chhttp_chunk *chunks;
	uint32_t nsecs;
	struct round *next;
};

struct chwriter {
	/* immutable after new */
	struct chwriter_opts o;
	char names[CHWRITER_MAX_TABLES][CHBATCH_MAX_NAME + 1];
	uint32_t nt;
	struct chsend *send;          /* writer thread only (its stats: any thread) */
	pthread_t thr;
	bool started;

	pthread_mutex_t mu;
	pthread_cond_t wake; /* the writer thread waits on it */
	pthread_cond_t fin;  /* flush and submit_wait wait on it */
	struct round *open;
	struct round *sealed, *sealed_tail;
	uint64_t submitted, finished; /* units */
	bool stopping;
	uint64_t stop_deadline_ns;
	struct chwriter_stats st;     /* producer-side fields */
	/* finished units kept for reuse: their buffers are already faulted in, so a busy writer
	 * does not map and unmap memory for every window (page faults are expensive in VMs) */
	struct chwriter_unit *pool;
	uint32_t npool;
	uint64_t pool_bytes;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t until_ns)
{
	struct timespec ts = { .tv_sec = (time_t)(until_ns / 1000000000ull), .tv_nsec = (long)(until_ns % 1000000000ull) };
	pthread_cond_timedwait(cv, mu, &ts);
}

int chwriter_unit_new(size_t max_table_bytes, struct chwriter_unit **ret)
{
	struct chwriter_unit *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	for (int i = 0; i < CHWRITER_MAX_TABLES; i++)
		rowbinary_init(&u->data[i], max_table_bytes ? max_table_bytes : CHWRITER_MAX_UNIT_BYTES);
	*ret = u;
	return 0;
}

struct chwriter_unit *chwriter_unit_free(struct chwriter_unit *u)
{
	if (!u)
		return NULL;
	for (int i = 0; i < CHWRITER_MAX_TABLES; i++)
		rowbinary_release(&u->data[i]);
	free(u);
	return NULL;
}

void chwriter_unit_reset(struct chwriter_unit *u)
{
	for (int i = 0; i < CHWRITER_MAX_TABLES; i++) {
		rowbinary_reset(&u->data[i]);
		u->rows[i] = 0;
	}
	u->next = NULL;
	u->done = NULL;
	u->done_arg = NULL;
}

static uint64_t unit_capacity(const struct chwriter_unit *u)
{
	uint64_t n = 0;
	for (int i = 0; i < CHWRITER_MAX_TABLES; i++)
		n += u->data[i].cap;
	return n;
}

int chwriter_unit_take(struct chwriter *w, struct chwriter_unit **ret)
{
	pthread_mutex_lock(&w->mu);
	struct chwriter_unit *u = w->pool;
	if (u) {
		w->pool = u->next;
		w->npool--;
		w->pool_bytes -= unit_capacity(u);
		u->next = NULL;
	}
	pthread_mutex_unlock(&w->mu);
	if (u) {
		*ret = u;
		return 0;
	}
	return chwriter_unit_new(0, ret);
}

/* Keeps a finished unit for chwriter_unit_take while the pool is under its bounds. */
static void unit_recycle(struct chwriter *w, struct chwriter_unit *u)
{
	uint64_t cap = unit_capacity(u);
	for (int i = 0; i < CHWRITER_MAX_TABLES; i++)
		if (u->data[i].max != CHWRITER_MAX_UNIT_BYTES) {
			chwriter_unit_free(u); /* a caller-sized unit: not interchangeable */
			return;
		}
	chwriter_unit_reset(u);
	pthread_mutex_lock(&w->mu);
	bool keep = w->npool < CHWRITER_POOL_UNITS && w->pool_bytes + cap <= CHWRITER_POOL_BYTES;
	if (keep) {
		u->next = w->pool;
		w->pool = u;
		w->npool++;
		w->pool_bytes += cap;
	}
	pthread_mutex_unlock(&w->mu);
	if (!keep)
		chwriter_unit_free(u);
}

uint64_t chwriter_unit_bytes(const struct chwriter_unit *u)
{
	uint64_t n = 0;
	for (int i = 0; i < CHWRITER_MAX_TABLES; i++)
		n += u->data[i].len;
	return n;
}

static void *writer_main(void *arg);

int chwriter_new(const struct chwriter_opts *o, struct chwriter **ret)
{
	if (!o || !o->endpoint || !o->tables || o->ntables == 0 || o->ntables > CHWRITER_MAX_TABLES ||
	    o->batch_bytes > CHWRITER_MAX_UNIT_BYTES || o->parallel > CHHTTP_MAX_PARALLEL)
		return -EINVAL;
	const char *db = o->database && o->database[0] ? o->database : "default";
	if (!chbatch_valid_table(db, strlen(db)))
		return -EINVAL;
	for (uint32_t i = 0; i < o->ntables; i++) {
		const struct chwriter_table *t = &o->tables[i];
		if (!t->name || !t->columns || !chbatch_valid_table(t->name, strlen(t->name)) ||
		    !chbatch_valid_columns(t->columns, strlen(t->columns)))
			return -EINVAL;
	}
	struct chwriter *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->o = *o;
	w->o.batch_rows = o->batch_rows ? o->batch_rows : 100000;
	w->o.batch_bytes = o->batch_bytes ? o->batch_bytes : (16ull << 20);
	w->o.flush_ms = o->flush_ms ? o->flush_ms : 500;
	w->o.max_pending_bytes = o->max_pending_bytes ? o->max_pending_bytes : (256ull << 20);
	w->o.attempts = o->attempts ? o->attempts : 2;
	w->o.stop_timeout_ms = o->stop_timeout_ms ? o->stop_timeout_ms : 10000;
	w->o.parallel = o->parallel ? o->parallel : 2;
	w->o.tables = NULL;
	w->o.endpoint = w->o.user = w->o.password = w->o.database = w->o.spool_dir = NULL;
	w->nt = o->ntables;
	for (uint32_t i = 0; i < o->ntables; i++)
		snprintf(w->names[i], sizeof(w->names[i]), "%s", o->tables[i].name);
	struct chsend_opts so = {
		.endpoint = o->endpoint,
		.user = o->user,
		.password = o->password,
		.database = db,
		.tables = o->tables,
		.ntables = o->ntables,
		.spool_dir = o->spool_dir,
		.spool_max_bytes = o->spool_max_bytes ? o->spool_max_bytes : (1ull << 30),
		.spool_drop_oldest = o->spool_drop_oldest,
		.timeout_ms = o->timeout_ms ? o->timeout_ms : 30000,
		.retry_min_ms = o->retry_min_ms ? o->retry_min_ms : 100,
		.retry_max_ms = o->retry_max_ms ? o->retry_max_ms : 5000,
		.poison_attempts = o->poison_attempts ? o->poison_attempts : 5,
		.parallel = w->o.parallel,
	};
	int r = chsend_new(&so, &w->send);
	if (r < 0) {
		free(w);
		return r;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &ca);
	pthread_cond_init(&w->fin, &ca);
	pthread_condattr_destroy(&ca);
	if ((r = -pthread_create(&w->thr, NULL, writer_main, w)) < 0) {
		chwriter_free(w);
		return r;
	}
	w->started = true;
	*ret = w;
	return 0;
}

/* ---- producer side ---- */

static void seal_locked(struct chwriter *w)
{
	struct round *r = w->open;
	if (!r)
		return;
	w->open = NULL;
	if (w->sealed_tail)
		w->sealed_tail->next = r;
	else
		w->sealed = r;
	w->sealed_tail = r;
	pthread_cond_signal(&w->wake);
}

int chwriter_submit(struct chwriter *w, struct chwriter_unit **unit, void (*done)(void *, int), void *done_arg)
{
	struct chwriter_unit *u = unit ? *unit : NULL;
	if (!w || !u)
		return -EINVAL;
	uint64_t ub = 0, urows = 0;
	for (uint32_t t = 0; t < CHWRITER_MAX_TABLES; t++) {
		if (rowbinary_error(&u->data[t]) || (u->rows[t] == 0) != (u->data[t].len == 0) ||
		    (t >= w->nt && u->rows[t]))
			return -EINVAL;
		ub += u->data[t].len;
		urows += u->rows[t];
	}
	if (ub > CHWRITER_MAX_UNIT_BYTES)
		return -EMSGSIZE;
	u->next = NULL;
	u->done = done;
	u->done_arg = done_arg;
	pthread_mutex_lock(&w->mu);
	int r = 0;
	if (w->stopping) {
		r = -EPIPE;
		goto out;
	}
	if (w->st.pending_bytes + ub > w->o.max_pending_bytes) {
		w->st.units_rejected++;
		r = -EAGAIN;
		goto out;
	}
	if (w->open && w->open->nunits && w->open->bytes + ub > w->o.batch_bytes)
		seal_locked(w);
	if (!w->open) {
		w->open = calloc(1, sizeof(*w->open));
		if (!w->open) {
			r = -ENOMEM;
			goto out;
		}
		w->open->opened_ns = mono_ns();
		pthread_cond_signal(&w->wake); /* the writer now has an age deadline */
	}
	struct round *rd = w->open;
	if (rd->tail)
		rd->tail->next = u;
	else
		rd->head = u;
	rd->tail = u;
	rd->nunits++;
	rd->bytes += ub;
	rd->nrows += urows;
	bool full = rd->bytes >= w->o.batch_bytes;
	for (uint32_t t = 0; t < w->nt; t++) {
		rd->rows[t] += u->rows[t];
		w->st.t[t].rows_queued += u->rows[t];
		full |= rd->rows[t] >= w->o.batch_rows;
	}
	w->st.pending_bytes += ub;
	w->st.pending_rows += urows;
	w->st.units_submitted++;
	w->submitted++;
	if (full)
		seal_locked(w);
	*unit = NULL;
out:
	pthread_mutex_unlock(&w->mu);
	return r;
}

struct waiter {
	struct chwriter *w;
	int status, refs;
	bool done;
};

static void waiter_done(void *arg, int status)
{
	struct waiter *wt = arg;
	struct chwriter *w = wt->w;
	pthread_mutex_lock(&w->mu);
	wt->status = status;
	wt->done = true;
	pthread_cond_broadcast(&w->fin);
	bool last = --wt->refs == 0;
	pthread_mutex_unlock(&w->mu);
	if (last)
		free(wt);
}

int chwriter_submit_wait(struct chwriter *w, struct chwriter_unit **unit, int timeout_ms)
{
	struct waiter *wt = calloc(1, sizeof(*wt));
	if (!wt)
		return -ENOMEM;
	wt->w = w;
	wt->refs = 2;
	int r = chwriter_submit(w, unit, waiter_done, wt);
	if (r < 0) {
		free(wt);
		return r;
	}
	uint64_t until = mono_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000ull;
	pthread_mutex_lock(&w->mu);
	while (!wt->done && (timeout_ms < 0 || mono_ns() < until)) {
		if (timeout_ms < 0)
			pthread_cond_wait(&w->fin, &w->mu);
		else
			timed_wait(&w->fin, &w->mu, until);
	}
	r = wt->done ? wt->status : -ETIMEDOUT;
	bool last = --wt->refs == 0;
	pthread_mutex_unlock(&w->mu);
	if (last)
		free(wt);
	return r;
}

int chwriter_flush(struct chwriter *w, int timeout_ms)
{
	uint64_t until = mono_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000ull;
	pthread_mutex_lock(&w->mu);
	uint64_t target = w->submitted;
	seal_locked(w);
	while (w->finished < target && (timeout_ms < 0 || mono_ns() < until)) {
		if (timeout_ms < 0)
			pthread_cond_wait(&w->fin, &w->mu);
		else
			timed_wait(&w->fin, &w->mu, until);
	}
	int r = w->finished >= target ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&w->mu);
	return r;
}

/* ---- writer thread ---- */

/* Lays the round out as sections, chunks pointing into its units: one per table with rows,
 * or up to `parallel` for a table with more than CHWRITER_SPLIT_BYTES (cut at unit
 * boundaries into parts of similar size), never more than CHBATCH_MAX_SECTIONS in all. */
static int prepare_round(struct chwriter *w, struct round *r)
{
	if (r->chunks)
		return 0;
	size_t total = 0;
	uint32_t tables = 0;
	for (uint32_t t = 0; t < w->nt; t++) {
		total += r->rows[t] ? r->nunits : 0;
		tables += r->rows[t] != 0;
	}
	r->chunks = malloc((total ? total : 1) * sizeof(*r->chunks));
	uint64_t *crows = malloc((total ? total : 1) * sizeof(*crows));
	if (!r->chunks || !crows) {
		free(crows);
		free(r->chunks);
		r->chunks = NULL;
		return -ENOMEM;
	}
	size_t k = 0;
	for (uint32_t t = 0; t < w->nt; t++) {
		if (!r->rows[t])
			continue;
		tables--;
		size_t first = k;
		uint64_t bytes = 0;
		for (const struct chwriter_unit *u = r->head; u; u = u->next)
			if (u->data[t].len) {
				crows[k] = u->rows[t];
				bytes += u->data[t].len;
				r->chunks[k++] = (struct chhttp_chunk){ u->data[t].buf, u->data[t].len };
			}
		uint64_t parts = bytes >= CHWRITER_SPLIT_BYTES ? w->o.parallel : 1;
		if (parts > k - first)
			parts = k - first;
		if (parts > CHBATCH_MAX_SECTIONS - r->nsecs - tables)
			parts = CHBATCH_MAX_SECTIONS - r->nsecs - tables;
		uint64_t acc = 0;
		size_t c = first;
		for (uint64_t p = 0; p < parts; p++) {
			struct chsend_section *x = &r->secs[r->nsecs++];
			memset(x, 0, sizeof(*x));
			x->table = t;
			x->chunks = r->chunks + c;
			/* the last part takes the rest; the others stop once past their share */
			while (c < k && (p == parts - 1 || acc < bytes * (p + 1) / parts)) {
				acc += r->chunks[c].len;
				x->rows += crows[c];
				c++;
			}
			x->nchunks = (size_t)(r->chunks + c - x->chunks);
		}
	}
	free(crows);
	return 0;
}

/* Counts the round, runs the done callbacks, frees the round, then counts it finished (so
 * flush returns only after the callbacks ran and the stats a callback's waiter reads are
 * already up to date). */
static void finish_round(struct chwriter *w, struct round *r, int status)
{
	uint32_t n = r->nunits;
	pthread_mutex_lock(&w->mu);
	w->st.pending_bytes -= r->bytes;
	w->st.pending_rows -= r->nrows;
	if (status == CHWRITER_INSERTED)
		w->st.units_inserted += n;
	else if (status == CHWRITER_SPOOLED)
		w->st.units_spooled += n;
	else
		w->st.units_failed += n;
	pthread_mutex_unlock(&w->mu);
	for (struct chwriter_unit *u = r->head, *next; u; u = next) {
		next = u->next;
		if (u->done)
			u->done(u->done_arg, status);
		unit_recycle(w, u);
	}
	free(r->chunks);
	free(r);
	pthread_mutex_lock(&w->mu);
	w->finished += n;
	pthread_cond_broadcast(&w->fin);
	pthread_mutex_unlock(&w->mu);
}

static void process_round(struct chwriter *w, struct round *r, bool stopping, bool late)
{
	int rc = prepare_round(w, r);
	if (rc == 0 && !(late && !chsend_has_spool(w->send)))
		rc = chsend_round(w->send, r->secs, r->nsecs, w->o.attempts, stopping);
	else if (rc == 0)
		rc = -ETIMEDOUT; /* no spool, no server, no time left */
	if (rc != -EAGAIN) {
		finish_round(w, r, rc);
		return;
	}
	/* no spool: the round waits in memory, first in line */
	pthread_mutex_lock(&w->mu);
	r->next = w->sealed;
	w->sealed = r;
	if (!w->sealed_tail)
		w->sealed_tail = r;
	pthread_mutex_unlock(&w->mu);
}

static void *writer_main(void *arg)
{
	struct chwriter *w = arg;
	uint64_t flush_ns = (uint64_t)w->o.flush_ms * 1000000ull;
	bool spool = chsend_has_spool(w->send);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		uint64_t now = mono_ns();
		if (w->open && (w->stopping || now - w->open->opened_ns >= flush_ns))
			seal_locked(w);
		bool stopping = w->stopping;
		uint64_t next_try = chsend_next_try_ns(w->send);
		bool due = now >= next_try;
		bool late = stopping && now >= w->stop_deadline_ns;
		uint64_t pend = chsend_spool_pending(w->send);
		if (w->sealed && (spool || due || late)) {
			struct round *r = w->sealed;
			w->sealed = r->next;
			if (!w->sealed)
				w->sealed_tail = NULL;
			r->next = NULL;
			pthread_mutex_unlock(&w->mu);
			process_round(w, r, stopping, late);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		if (pend && due && !late) {
			pthread_mutex_unlock(&w->mu);
			chsend_replay(w->send);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		if (stopping && !w->open && !w->sealed && (!pend || late))
			break;
		uint64_t until = UINT64_MAX;
		if (w->open)
			until = w->open->opened_ns + flush_ns;
		if ((pend || w->sealed) && next_try < until)
			until = next_try;
		if (stopping && w->stop_deadline_ns < until)
			until = w->stop_deadline_ns;
		if (until == UINT64_MAX)
			pthread_cond_wait(&w->wake, &w->mu);
		else if (until > now)
			timed_wait(&w->wake, &w->mu, until);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

struct chwriter *chwriter_free(struct chwriter *w)
{
	if (!w)
		return NULL;
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->stopping = true;
		w->stop_deadline_ns = mono_ns() + (uint64_t)w->o.stop_timeout_ms * 1000000ull;
		pthread_cond_signal(&w->wake);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thr, NULL);
	}
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->fin);
	pthread_mutex_destroy(&w->mu);
	chsend_free(w->send);
	while (w->pool) {
		struct chwriter_unit *u = w->pool;
		w->pool = u->next;
		chwriter_unit_free(u);
	}
	free(w);
	return NULL;
}

void chwriter_stats(struct chwriter *w, struct chwriter_stats *ret)
{
	pthread_mutex_lock(&w->mu);
	*ret = w->st;
	pthread_mutex_unlock(&w->mu);
	chsend_stats(w->send, ret);
}

int chwriter_metrics(struct chwriter *w, const char *p, struct strbuf *sb)
{
	static const char *const names[5] = { "queued", "inserted", "spooled", "replayed", "failed" };
	static const char *const help[5] = { "submitted to the writer", "inserted into ClickHouse",
					     "written to the on-disk spool while ClickHouse failed",
					     "inserted from the spool", "dropped (data rejected, or spool full)" };
	struct chwriter_stats st;
	chwriter_stats(w, &st);
	for (int k = 0; k < 5; k++) {
		strbuf_appendf(sb, "# HELP %s_rows_%s_total Rows %s.\n# TYPE %s_rows_%s_total counter\n", p, names[k],
			       help[k], p, names[k]);
		for (uint32_t t = 0; t < w->nt; t++) {
			const struct chwriter_table_stats *ts = &st.t[t];
			uint64_t v[5] = { ts->rows_queued, ts->rows_inserted, ts->rows_spooled, ts->rows_replayed,
					  ts->rows_failed };
			strbuf_appendf(sb, "%s_rows_%s_total{table=\"%s\"} %" PRIu64 "\n", p, names[k], w->names[t], v[k]);
		}
	}
	strbuf_appendf(sb, "# HELP %s_inserts_total INSERT requests by result.\n# TYPE %s_inserts_total counter\n", p, p);
	for (uint32_t t = 0; t < w->nt; t++)
		strbuf_appendf(sb, "%s_inserts_total{table=\"%s\",result=\"ok\"} %" PRIu64 "\n"
			       "%s_inserts_total{table=\"%s\",result=\"error\"} %" PRIu64 "\n",
			       p, w->names[t], st.t[t].inserts_ok, p, w->names[t], st.t[t].inserts_failed);
	strbuf_appendf(sb, "# HELP %s_insert_duration_seconds Duration of successful INSERT requests.\n"
		       "# TYPE %s_insert_duration_seconds histogram\n", p, p);
	for (int b = 0; b < CHWRITER_LAT_BUCKETS - 1; b++)
		strbuf_appendf(sb, "%s_insert_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", p,
			       chwriter_lat_bounds[b], st.lat_buckets[b]);
	strbuf_appendf(sb, "%s_insert_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
		       "%s_insert_duration_seconds_sum %.6f\n%s_insert_duration_seconds_count %" PRIu64 "\n",
		       p, st.lat_count, p, (double)st.lat_sum_ns / 1e9, p, st.lat_count);
	strbuf_appendf(sb, "# HELP %s_spool_bytes Bytes in the writer's on-disk spool.\n# TYPE %s_spool_bytes gauge\n"
		       "%s_spool_bytes %" PRIu64 "\n", p, p, p, st.spool_bytes);
	strbuf_appendf(sb, "# HELP %s_spool_records Batches waiting in the spool.\n# TYPE %s_spool_records gauge\n"
		       "%s_spool_records %" PRIu64 "\n", p, p, p, st.spool_records);
	strbuf_appendf(sb, "# HELP %s_spool_dropped_total Spool records refused, deleted or unreadable.\n"
		       "# TYPE %s_spool_dropped_total counter\n%s_spool_dropped_total %" PRIu64 "\n", p, p, p,
		       st.spool_dropped);
	strbuf_appendf(sb, "# HELP %s_pending_rows Rows held in memory, not yet durable.\n# TYPE %s_pending_rows gauge\n"
		       "%s_pending_rows %" PRIu64 "\n", p, p, p, st.pending_rows);
	strbuf_appendf(sb, "# HELP %s_units_rejected_total Submissions refused at the memory bound.\n"
		       "# TYPE %s_units_rejected_total counter\n%s_units_rejected_total %" PRIu64 "\n", p, p, p,
		       st.units_rejected);
	strbuf_appendf(sb, "# HELP %s_up 1 when the last INSERT succeeded.\n# TYPE %s_up gauge\n%s_up %d\n", p, p, p,
		       st.up ? 1 : 0);
	strbuf_appendf(sb, "# HELP %s_outage 1 while batches go to the spool.\n# TYPE %s_outage gauge\n%s_outage %d\n",
		       p, p, p, st.outage ? 1 : 0);
	return strbuf_error(sb);
}
