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
#include "chmetrics.h"
#include "chround.h"
#include "chsend.h"

const double chwriter_lat_bounds[CHWRITER_LAT_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
							   0.5,   1,    2.5,   5,    10,  1e300 };

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
	struct chround *open;
	struct chround *sealed, *sealed_tail;
	uint64_t submitted, finished; /* units */
	bool stopping;
	uint64_t stop_deadline_ns;
	struct chwriter_stats st;     /* producer-side fields */
	/* finished units kept for reuse: their buffers are already faulted in, so a busy writer
	 * does not map and unmap memory for every window (page faults are expensive in VMs) */
	struct chwriter_unit *pool;
	uint32_t npool;
	uint64_t pool_bytes;

	/* writer thread only: rounds whose big sections are in and whose small ones wait for the
	 * flush age (chround.h), and their merge while a flush of it is being retried */
	struct chround *carry, *carry_tail;
	uint64_t carry_opened_ns, carry_rows;
	uint32_t ncarry;
	struct chround_merge cm;
	bool cm_built;
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
	w->o.parallel = o->parallel ? o->parallel : 1;
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
	struct chround *r = w->open;
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
	if (w->open && w->open->nunits && w->open->bytes + ub > w->o.batch_bytes) {
		w->open->full = true;
		seal_locked(w);
	}
	if (!w->open) {
		w->open = calloc(1, sizeof(*w->open));
		if (!w->open) {
			r = -ENOMEM;
			goto out;
		}
		w->open->opened_ns = mono_ns();
		pthread_cond_signal(&w->wake); /* the writer now has an age deadline */
	}
	struct chround *rd = w->open;
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
	if (full) {
		rd->full = true;
		seal_locked(w);
	}
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

/* Counts the round, runs the done callbacks, frees the round, then counts it finished (so
 * flush returns only after the callbacks ran and the stats a callback's waiter reads are
 * already up to date). */
static void finish_round(struct chwriter *w, struct chround *r, int status)
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

static void requeue(struct chwriter *w, struct chround *r)
{
	pthread_mutex_lock(&w->mu);
	r->next = w->sealed;
	w->sealed = r;
	if (!w->sealed_tail)
		w->sealed_tail = r;
	pthread_mutex_unlock(&w->mu);
}

/* Inserts (or spools) the carried rounds' small sections, merged one per table, and finishes
 * those rounds. -EAGAIN: no spool and ClickHouse failing, try again after the backoff. */
static int flush_carry(struct chwriter *w, bool stopping, bool late)
{
	if (!w->carry)
		return 0;
	int rc = 0;
	if (!w->cm_built && (rc = chround_merge(w->carry, w->nt, &w->cm)) == 0)
		w->cm_built = true;
	if (rc == 0)
		rc = late && !chsend_has_spool(w->send) ? -ETIMEDOUT
			: chsend_round(w->send, w->cm.secs, w->cm.nsecs, w->o.attempts, stopping);
	if (rc == -EAGAIN)
		return rc;
	bool spooled = w->cm_built && chround_merge_spooled(&w->cm);
	chround_merge_release(&w->cm);
	w->cm_built = false;
	struct chround *r = w->carry;
	w->carry = w->carry_tail = NULL;
	w->ncarry = 0;
	w->carry_rows = 0;
	while (r) {
		struct chround *next = r->next;
		finish_round(w, r, rc < 0 ? rc : spooled || chround_spooled(r) ? CHWRITER_SPOOLED : CHWRITER_INSERTED);
		r = next;
	}
	return rc < 0 ? rc : 0;
}

static bool carry_due(struct chwriter *w, uint64_t now)
{
	return w->carry && (now - w->carry_opened_ns >= (uint64_t)w->o.flush_ms * 1000000ull ||
			    w->carry_rows >= w->o.batch_rows / 4 || w->ncarry >= 64);
}

/* A round sealed by size while all is well: its big sections now, its small ones later. */
static bool deferred(struct chwriter *w, struct chround *r, bool stopping, bool late)
{
	if (!r->full || stopping || late || chsend_outage(w->send) || chsend_spool_pending(w->send) ||
	    w->cm_built || chround_hold_small(r, w->o.batch_rows / 8) == 0)
		return false;
	int rc = chsend_round(w->send, r->secs, r->nsecs, w->o.attempts, false);
	chround_release_hold(r);
	if (rc != CHWRITER_INSERTED)
		return false; /* the rest goes the ordinary way, after the carry */
	if (!w->carry)
		w->carry_opened_ns = mono_ns();
	r->next = NULL;
	if (w->carry_tail)
		w->carry_tail->next = r;
	else
		w->carry = r;
	w->carry_tail = r;
	w->ncarry++;
	w->carry_rows += chround_pending_rows(r);
	if (carry_due(w, mono_ns()))
		flush_carry(w, false, false);
	return true;
}

static void process_round(struct chwriter *w, struct chround *r, bool stopping, bool late)
{
	int rc = chround_prepare(r, w->nt, w->o.parallel);
	if (rc < 0) {
		finish_round(w, r, rc);
		return;
	}
	if (deferred(w, r, stopping, late))
		return;
	/* carried sections are older than this round's: they go first */
	if (flush_carry(w, stopping, late) == -EAGAIN) {
		requeue(w, r);
		return;
	}
	rc = late && !chsend_has_spool(w->send) ? -ETIMEDOUT /* no spool, no server, no time left */
		: chsend_round(w->send, r->secs, r->nsecs, w->o.attempts, stopping);
	if (rc == -EAGAIN) {
		requeue(w, r); /* no spool: the round waits in memory, first in line */
		return;
	}
	finish_round(w, r, rc < 0 ? rc : chround_spooled(r) ? CHWRITER_SPOOLED : CHWRITER_INSERTED);
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
			struct chround *r = w->sealed;
			w->sealed = r->next;
			if (!w->sealed)
				w->sealed_tail = NULL;
			r->next = NULL;
			pthread_mutex_unlock(&w->mu);
			process_round(w, r, stopping, late);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		if (w->carry && (stopping || carry_due(w, now)) && (spool || due || late)) {
			pthread_mutex_unlock(&w->mu);
			flush_carry(w, stopping, late);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		if (pend && due && !late) {
			pthread_mutex_unlock(&w->mu);
			chsend_replay(w->send);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		if (stopping && !w->open && !w->sealed && !w->carry && (!pend || late))
			break;
		uint64_t until = UINT64_MAX;
		if (w->open)
			until = w->open->opened_ns + flush_ns;
		if (w->carry && w->carry_opened_ns + flush_ns < until)
			until = w->carry_opened_ns + flush_ns;
		if (w->carry && w->cm_built && next_try < until)
			until = next_try;
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
	chround_merge_release(&w->cm);
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

int chwriter_metrics(struct chwriter *w, const char *prefix, struct strbuf *sb)
{
	struct chwriter_stats st;
	const char *names[CHWRITER_MAX_TABLES];
	chwriter_stats(w, &st);
	for (uint32_t t = 0; t < w->nt; t++)
		names[t] = w->names[t];
	return chmetrics_render(&st, names, w->nt, prefix, sb);
}
