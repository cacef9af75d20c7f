/* chmetrics: see chmetrics.h. */
#include "chmetrics.h"

#include <inttypes.h>

int chmetrics_render(const struct chwriter_stats *st, const char *const *tables, uint32_t ntables,
		     const char *p, struct strbuf *sb)
{
	static const char *const names[5] = { "queued", "inserted", "spooled", "replayed", "failed" };
	static const char *const help[5] = { "submitted to the writer", "inserted into ClickHouse",
					     "written to the on-disk spool while ClickHouse failed",
					     "inserted from the spool", "dropped (data rejected, or spool full)" };
	for (int k = 0; k < 5; k++) {
		strbuf_appendf(sb, "# HELP %s_rows_%s_total Rows %s.\n# TYPE %s_rows_%s_total counter\n", p, names[k],
			       help[k], p, names[k]);
		for (uint32_t t = 0; t < ntables; t++) {
			const struct chwriter_table_stats *ts = &st->t[t];
			uint64_t v[5] = { ts->rows_queued, ts->rows_inserted, ts->rows_spooled, ts->rows_replayed,
					  ts->rows_failed };
			strbuf_appendf(sb, "%s_rows_%s_total{table=\"%s\"} %" PRIu64 "\n", p, names[k], tables[t], v[k]);
		}
	}
	strbuf_appendf(sb, "# HELP %s_inserts_total INSERT requests by result.\n# TYPE %s_inserts_total counter\n", p, p);
	for (uint32_t t = 0; t < ntables; t++)
		strbuf_appendf(sb, "%s_inserts_total{table=\"%s\",result=\"ok\"} %" PRIu64 "\n"
			       "%s_inserts_total{table=\"%s\",result=\"error\"} %" PRIu64 "\n",
			       p, tables[t], st->t[t].inserts_ok, p, tables[t], st->t[t].inserts_failed);
	strbuf_appendf(sb, "# HELP %s_insert_duration_seconds Duration of successful INSERT requests.\n"
		       "# TYPE %s_insert_duration_seconds histogram\n", p, p);
	for (int b = 0; b < CHWRITER_LAT_BUCKETS - 1; b++)
		strbuf_appendf(sb, "%s_insert_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", p,
			       chwriter_lat_bounds[b], st->lat_buckets[b]);
	strbuf_appendf(sb, "%s_insert_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
		       "%s_insert_duration_seconds_sum %.6f\n%s_insert_duration_seconds_count %" PRIu64 "\n",
		       p, st->lat_count, p, (double)st->lat_sum_ns / 1e9, p, st->lat_count);
	strbuf_appendf(sb, "# HELP %s_spool_bytes Bytes in the writer's on-disk spool.\n# TYPE %s_spool_bytes gauge\n"
		       "%s_spool_bytes %" PRIu64 "\n", p, p, p, st->spool_bytes);
	strbuf_appendf(sb, "# HELP %s_spool_records Batches waiting in the spool.\n# TYPE %s_spool_records gauge\n"
		       "%s_spool_records %" PRIu64 "\n", p, p, p, st->spool_records);
	strbuf_appendf(sb, "# HELP %s_spool_dropped_total Spool records refused, deleted or unreadable.\n"
		       "# TYPE %s_spool_dropped_total counter\n%s_spool_dropped_total %" PRIu64 "\n", p, p, p,
		       st->spool_dropped);
	strbuf_appendf(sb, "# HELP %s_pending_rows Rows held in memory, not yet durable.\n# TYPE %s_pending_rows gauge\n"
		       "%s_pending_rows %" PRIu64 "\n", p, p, p, st->pending_rows);
	strbuf_appendf(sb, "# HELP %s_units_rejected_total Submissions refused at the memory bound.\n"
		       "# TYPE %s_units_rejected_total counter\n%s_units_rejected_total %" PRIu64 "\n", p, p, p,
		       st->units_rejected);
	strbuf_appendf(sb, "# HELP %s_up 1 when the last INSERT succeeded.\n# TYPE %s_up gauge\n%s_up %d\n", p, p, p,
		       st->up ? 1 : 0);
	strbuf_appendf(sb, "# HELP %s_outage 1 while batches go to the spool.\n# TYPE %s_outage gauge\n%s_outage %d\n",
		       p, p, p, st->outage ? 1 : 0);
	return strbuf_error(sb);
}
