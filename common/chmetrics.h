/* chmetrics: the Prometheus text of a ClickHouse writer's counters (struct chwriter_stats),
 * under a prefix chosen by the daemon (ms_coord_ch in the coordinator, ms_ch in a standalone
 * agent). It renders a snapshot and keeps no state. Thread-safety: stateless. */
#ifndef MS_CHMETRICS_H
#define MS_CHMETRICS_H

#include <stdint.h>

#include "chwriter.h"
#include "strbuf.h"

/* Appends <prefix>_rows_{queued,inserted,spooled,replayed,failed}_total{table},
 * <prefix>_inserts_total{table,result}, <prefix>_insert_duration_seconds (histogram),
 * <prefix>_spool_bytes, _spool_records, _spool_dropped_total, _pending_rows,
 * _units_rejected_total, _up and _outage, each with HELP and TYPE. tables[i] names table i.
 * Returns the strbuf's error (0 or -ENOSPC). */
int chmetrics_render(const struct chwriter_stats *st, const char *const *tables, uint32_t ntables,
		     const char *prefix, struct strbuf *sb);

#endif
