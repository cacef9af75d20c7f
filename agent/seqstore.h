/* seqstore: the agent's persisted window sequence number (SPEC §4: a per-agent seq that keeps
 * increasing across restarts). The file STATE_DIR/seq holds a limit L with the promise "every
 * seq this agent used is below L". A start takes first = max(L, wall clock in µs) and
 * advances L in steps of SEQSTORE_SLACK ahead of the windows as they pass, each step written
 * to a temporary file, fsync'd and renamed over the old one (never torn). The wall clock
 * term makes the seq keep increasing even when the state directory was lost: windows are
 * produced far slower than one per µs, so a fresh start is always above the last run's seqs
 * (unless the clock was stepped back by more than the run's age; the persisted limit covers
 * that case). It is not the spool, and it does not number anything itself: the sampling loop
 * assigns seqs from seqstore_first(). Thread-safety: seqstore_advance takes a lock. */
#ifndef MS_SEQSTORE_H
#define MS_SEQSTORE_H

#include <stdbool.h>
#include <stdint.h>

#define SEQSTORE_SLACK 4096u

struct seqstore;

/* Opens (creating dir, mode 0700, and the file) and persists the new limit first + SLACK.
 * *ret_repaired (may be NULL) says the file was unreadable or corrupt and was replaced.
 * Returns 0 or -errno of a failed directory/file operation. */
int seqstore_open(const char *dir, struct seqstore **ret, bool *ret_repaired);
struct seqstore *seqstore_free(struct seqstore *s);

/* The first seq of this run. */
uint64_t seqstore_first(const struct seqstore *s);
/* Notes that seq is in use: when it comes within SLACK / 2 of the limit, persists
 * seq + SLACK. Returns 0, or -errno if that write failed (the old limit stays; the clock
 * still protects a restart). Cost: a synced write every SLACK / 2 windows. */
int seqstore_advance(struct seqstore *s, uint64_t seq);
/* The persisted limit (for tests). */
uint64_t seqstore_limit(struct seqstore *s);

#endif
