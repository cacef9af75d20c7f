/* chsend: the delivery engine behind chwriter. It inserts a round's table sections into
 * ClickHouse with bounded retries, writes what cannot be inserted to the on-disk spool (one
 * chbatch record per round), replays the spool oldest first, and keeps the outage state and
 * the exponential backoff. It is not a batcher (chwriter gathers rounds) and has no thread:
 * the writer thread is its one owner. chsend_stats may be called from any thread (the
 * counters have their own lock). Retry and drop policy: see chwriter.h. */
#ifndef MS_CHSEND_H
#define MS_CHSEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chhttp.h"
#include "chwriter.h"

struct chsend_opts {
	const char *endpoint, *user, *password;
	const char *database;               /* validated identifier */
	const struct chwriter_table *tables; /* validated by the caller */
	uint32_t ntables;
	const char *spool_dir;              /* NULL/"" = none */
	uint64_t spool_max_bytes;
	bool spool_drop_oldest;
	uint32_t timeout_ms, retry_min_ms, retry_max_ms, poison_attempts;
	uint32_t parallel;                  /* concurrent INSERTs, 1..CHHTTP_MAX_PARALLEL */
};

/* One table's rows of a round, or a part of them (a big table may be split into several
 * sections, inserted concurrently, up to `parallel` at a time). done, spooled and poison are updated by chsend_round, so a round that
 * is tried again (no spool) does not re-insert sections that already went in. */
struct chsend_section {
	uint32_t table;                     /* index into opts.tables */
	uint64_t rows;
	const struct chhttp_chunk *chunks;
	size_t nchunks;
	bool done;                          /* inserted, dropped as poison, or spooled */
	bool spooled;                       /* done by going to the spool */
	bool hold;                          /* skipped by this call: neither inserted nor spooled */
	uint32_t poison;
};

struct chsend;

int chsend_new(const struct chsend_opts *opts, struct chsend **ret);
struct chsend *chsend_free(struct chsend *s);

/* Delivers one round (at most CHBATCH_MAX_SECTIONS sections, oldest round first). When the spool holds
 * older records, or during an outage before the next retry is due (or when stopping), the round
 * goes straight to the spool to keep the order; otherwise it is inserted with `attempts`
 * tries, then spooled. Sections already done or on hold are skipped. Returns
 * CHWRITER_INSERTED (every other section inserted or dropped), CHWRITER_SPOOLED (they are in
 * the spool), -EAGAIN (no spool: keep the round and offer it again once chsend_next_try_ns has
 * passed) or the spool's -errno (-ENOSPC when full: those sections are not durable). */
int chsend_round(struct chsend *s, struct chsend_section *secs, uint32_t n, uint32_t attempts, bool stopping);
/* One attempt at the oldest spool record's remaining sections; acks it when all are in. */
void chsend_replay(struct chsend *s);
/* Records waiting in the spool (0 without a spool). */
uint64_t chsend_spool_pending(struct chsend *s);
bool chsend_has_spool(const struct chsend *s);
/* True while ClickHouse is failing (rounds go to the spool, or wait without one). */
bool chsend_outage(const struct chsend *s);
/* CLOCK_MONOTONIC ns before which no insert should be tried (0 = now). */
uint64_t chsend_next_try_ns(const struct chsend *s);

/* Fills the delivery fields of *into: per-table inserted/spooled/replayed/failed and insert
 * counts, bytes_sent, latency, spool_*, outage, up, last_error. Other fields are untouched. */
void chsend_stats(struct chsend *s, struct chwriter_stats *into);

#endif
