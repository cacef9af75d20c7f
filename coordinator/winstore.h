/* winstore: the coordinator's durable store of accepted windows until the ClickHouse writer
 * takes them over: each window, re-encoded as a protobuf Window (wire.h), is appended to a
 * bounded spool (spool.h) in state_dir/windows. It is the ingest sink (ingest.h) of a
 * coordinator without ClickHouse; with ClickHouse the writer's own spool plays this role and
 * this store is not used. When the spool is full it refuses the window (-ENOSPC): the agent is
 * told to retry and keeps the window in its own spool, so nothing acked is ever dropped here.
 * Thread-safety: winstore_sink from any thread (the spool locks). */
#ifndef MS_WINSTORE_H
#define MS_WINSTORE_H

#include <stdint.h>

#include "ingest.h"
#include "spool.h"

struct winstore;

int winstore_open(const char *dir, uint64_t max_bytes, enum spool_fsync fsync, struct winstore **ret);
struct winstore *winstore_free(struct winstore *s);

/* ingest_sink_fn: encodes and appends w, then calls done(done_arg, 0) before returning, or
 * returns the negative errno (-ENOSPC full, -EMSGSIZE, I/O errors) without calling done. */
int winstore_sink(void *arg, const struct wire_window *w, ingest_done_fn done, void *done_arg);

void winstore_stats(struct winstore *s, struct spool_stats *ret);

#endif
