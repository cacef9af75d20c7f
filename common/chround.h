/* chround: the layout of a ClickHouse writer round — the units gathered for one batch, laid
 * out as INSERT sections (one per table, a big table cut into `parallel` parts at unit
 * boundaries), and the merge of the sections a writer deferred from several rounds into one
 * section per table. Pure data handling for chwriter's thread: no I/O, no locks.
 *
 * Why deferral: every INSERT makes a part (a directory of files) in every table it touches.
 * Under load a round is sealed by size many times a second, and the small per-window tables
 * (ms_windows, ms_flows, ...) would get a tiny part each time: measured on 2 cores, those parts
 * cost ~30 % of the server's CPU per rollup row. The writer therefore inserts only the big
 * sections of size-sealed rounds at once and holds the small ones back ("carry") until the
 * flush age, then inserts them merged; the units are done when both are in. */
#ifndef MS_CHROUND_H
#define MS_CHROUND_H

#include <stdbool.h>
#include <stdint.h>

#include "chbatch.h"
#include "chsend.h"
#include "chwriter.h"

struct chround {
	struct chwriter_unit *head, *tail;
	uint32_t nunits;
	uint64_t rows[CHWRITER_MAX_TABLES];
	uint64_t bytes, nrows;
	uint64_t opened_ns;
	bool full;                  /* sealed by size (rows or bytes), not by age */
	/* laid out by chround_prepare; kept across retries (no spool) */
	struct chsend_section secs[CHBATCH_MAX_SECTIONS];
	struct chhttp_chunk *chunks;
	uint32_t nsecs;
	struct chround *next;
};

/* Lays r out as sections over its units' buffers (once; later calls do nothing): one per table
 * with rows, or up to `parallel` for a table over CHWRITER_SPLIT_BYTES, at most
 * CHBATCH_MAX_SECTIONS in all. -ENOMEM. */
int chround_prepare(struct chround *r, uint32_t ntables, uint32_t parallel);
/* Puts every not yet done section with fewer than big_rows rows (and under
 * CHWRITER_SPLIT_BYTES) on hold. Returns how many, or 0 when there is nothing to defer (no
 * small section, or no big one to insert now). */
uint32_t chround_hold_small(struct chround *r, uint64_t big_rows);
void chround_release_hold(struct chround *r);
/* True when some section of r went to the spool. */
bool chround_spooled(const struct chround *r);
/* Rows in sections of r that are not done yet. */
uint64_t chround_pending_rows(const struct chround *r);

/* The not yet done sections of a list of rounds, one section per table. */
struct chround_merge {
	struct chsend_section secs[CHWRITER_MAX_TABLES];
	uint32_t nsecs;
	struct chhttp_chunk *chunks;
};

/* Builds m over the list (oldest first). -ENOMEM. */
int chround_merge(const struct chround *list, uint32_t ntables, struct chround_merge *m);
bool chround_merge_spooled(const struct chround_merge *m);
void chround_merge_release(struct chround_merge *m);

#endif
