/* status: see status.h. */
#include "status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "ingest.h"
#include "jsonw.h"
#include "registry.h"
#include "winstore.h"

#define PAGE_MAX (4u << 20)

struct source {
	int (*render)(void *arg, struct strbuf *sb);
	void *arg;
};

struct status {
	struct status_opts o;
	struct source src[STATUS_MAX_SOURCES];
	atomic_uint nsrc;            /* published after the slot is written: renders may run */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int status_new(const struct status_opts *opts, struct status **ret)
{
	if (!opts || !opts->ingest || !opts->reg)
		return -EINVAL;
	struct status *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *opts;
	*ret = s;
	return 0;
}

struct status *status_free(struct status *s)
{
	free(s);
	return NULL;
}

int status_add_source(struct status *s, int (*render)(void *arg, struct strbuf *sb), void *arg)
{
	unsigned n = atomic_load(&s->nsrc);
	if (n == STATUS_MAX_SOURCES)
		return -ENOSPC;
	s->src[n] = (struct source){ render, arg };
	atomic_store(&s->nsrc, n + 1);
	return 0;
}

static void head(struct strbuf *sb, const char *name, const char *type, const char *help)
{
	strbuf_appendf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int status_render_metrics(struct status *s, struct strbuf *sb)
{
	struct ingest_stats st;
	ingest_stats(s->o.ingest, &st);
	head(sb, "ms_coord_windows_accepted_total", "counter", "Windows accepted (durable, acked).");
	strbuf_appendf(sb, "ms_coord_windows_accepted_total %" PRIu64 "\n", st.accepted);
	head(sb, "ms_coord_windows_duplicate_total", "counter", "Windows received again after acceptance (acked, not stored).");
	strbuf_appendf(sb, "ms_coord_windows_duplicate_total %" PRIu64 "\n", st.duplicate);
	head(sb, "ms_coord_windows_rejected_total", "counter", "Requests not accepted, by reason.");
	for (int r = 0; r < INGEST_R__N; r++)
		strbuf_appendf(sb, "ms_coord_windows_rejected_total{reason=\"%s\"} %" PRIu64 "\n", ingest_reason_name(r),
			       st.rejected[r]);
	uint32_t live, stale;
	registry_counts(s->o.reg, mono_ms(), &live, &stale);
	head(sb, "ms_coord_agents", "gauge", "Registered agents by state.");
	strbuf_appendf(sb, "ms_coord_agents{state=\"live\"} %u\nms_coord_agents{state=\"stale\"} %u\n", live, stale);
	head(sb, "ms_coord_hellos_total", "counter", "Agent Hellos received.");
	strbuf_appendf(sb, "ms_coord_hellos_total %" PRIu64 "\n", st.hellos);
	head(sb, "ms_coord_hellos_unstored_total", "counter", "Agent Hellos not stored as ms_agents rows (writer full).");
	strbuf_appendf(sb, "ms_coord_hellos_unstored_total %" PRIu64 "\n", st.hellos_unstored);
	head(sb, "ms_coord_heartbeats_total", "counter", "Agent heartbeats received.");
	strbuf_appendf(sb, "ms_coord_heartbeats_total %" PRIu64 "\n", st.heartbeats);
	head(sb, "ms_coord_samples_accepted_total", "counter", "Samples in accepted windows.");
	strbuf_appendf(sb, "ms_coord_samples_accepted_total %" PRIu64 "\n", st.samples);
	head(sb, "ms_coord_rows_accepted_total", "counter", "Rollup rows in accepted windows.");
	strbuf_appendf(sb, "ms_coord_rows_accepted_total %" PRIu64 "\n", st.rows);
	head(sb, "ms_coord_received_bytes_total", "counter", "Request bytes received from agents.");
	strbuf_appendf(sb, "ms_coord_received_bytes_total %" PRIu64 "\n", st.bytes);
	head(sb, "ms_coord_ingest_queue", "gauge", "Requests waiting for an ingest worker.");
	strbuf_appendf(sb, "ms_coord_ingest_queue %u\n", st.queued);
	if (s->o.store) {
		struct spool_stats ss;
		winstore_stats(s->o.store, &ss);
		head(sb, "ms_coord_store_windows", "gauge", "Windows in the coordinator's local window store.");
		strbuf_appendf(sb, "ms_coord_store_windows %" PRIu64 "\n", ss.records);
		head(sb, "ms_coord_store_bytes", "gauge", "Bytes of the local window store.");
		strbuf_appendf(sb, "ms_coord_store_bytes %" PRIu64 "\n", ss.bytes);
		head(sb, "ms_coord_store_corrupt_total", "counter", "Store segments cut at a corrupt record (at open).");
		strbuf_appendf(sb, "ms_coord_store_corrupt_total %" PRIu64 "\n", ss.corrupt_truncations);
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	head(sb, "ms_coord_cpu_seconds_total", "counter", "CPU time used by the coordinator.");
	strbuf_appendf(sb, "ms_coord_cpu_seconds_total %.6f\n",
		       (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
			       (double)ru.ru_stime.tv_usec / 1e6);
	for (uint32_t i = 0, n = atomic_load(&s->nsrc); i < n; i++)
		s->src[i].render(s->src[i].arg, sb);
	return strbuf_error(sb);
}

static void on_metrics(void *arg, struct httpd_call *call)
{
	struct strbuf sb;
	strbuf_init(&sb, PAGE_MAX);
	if (status_render_metrics(arg, &sb) < 0)
		httpd_call_reply_error(call, 500, "metrics exposition exceeded its size bound");
	else
		httpd_call_reply(call, 200, "text/plain; version=0.0.4; charset=utf-8", sb.buf, sb.len);
	strbuf_release(&sb);
}

static void on_healthz(void *arg, struct httpd_call *call)
{
	static const char ok[] = "{\"status\":\"ok\"}\n";
	httpd_call_reply(call, 200, NULL, ok, sizeof(ok) - 1);
}

static void on_agents(void *arg, struct httpd_call *call)
{
	struct status *s = arg;
	struct jsonw *j;
	if (jsonw_new(PAGE_MAX, &j) < 0) {
		httpd_call_reply_error(call, 503, "out of memory");
		return;
	}
	uint64_t now = mono_ms();
	struct registry_agent *a = malloc(sizeof(*a));
	jsonw_begin_object(j);
	jsonw_key(j, "agents");
	jsonw_begin_array(j);
	for (uint32_t i = 0; a && registry_get(s->o.reg, i, now, a) == 0; i++) {
		jsonw_begin_object(j);
		jsonw_key(j, "agent_id");
		jsonw_string(j, a->hello.agent_id);
		jsonw_key(j, "host");
		jsonw_string(j, a->hello.host);
		jsonw_key(j, "version");
		jsonw_string(j, a->hello.version);
		jsonw_key(j, "state");
		jsonw_string(j, a->state == REGISTRY_LIVE ? "live" : "stale");
		jsonw_key(j, "labels");
		jsonw_begin_object(j);
		for (uint32_t k = 0; k < a->hello.nlabels; k++) {
			jsonw_key(j, a->hello.labels[k].key);
			jsonw_string(j, a->hello.labels[k].value);
		}
		jsonw_end_object(j);
		jsonw_key(j, "last_seq");
		jsonw_u64(j, a->last_seq);
		jsonw_key(j, "lag_ms");
		jsonw_u64(j, a->lag_ms);
		jsonw_key(j, "last_seen_ms_ago");
		jsonw_u64(j, now - a->last_seen_ms);
		jsonw_key(j, "windows");
		jsonw_u64(j, a->windows);
		jsonw_key(j, "duplicates");
		jsonw_u64(j, a->duplicates);
		jsonw_key(j, "spool_windows");
		jsonw_u64(j, a->spool_windows);
		jsonw_key(j, "mode");
		jsonw_string(j, a->mode ? "diagnostic" : "sentinel");
		jsonw_key(j, "hook_tier");
		jsonw_string(j, a->hello.hook_tier);
		jsonw_key(j, "events");
		jsonw_begin_array(j);
		for (uint32_t k = 0; k < a->hello.nevents; k++) {
			jsonw_begin_object(j);
			jsonw_key(j, "name");
			jsonw_string(j, a->hello.events[k].name);
			jsonw_key(j, "source");
			jsonw_string(j, a->hello.events[k].source ? "sw" : "hw");
			jsonw_key(j, "live");
			jsonw_bool(j, a->hello.events[k].live);
			jsonw_end_object(j);
		}
		jsonw_end_array(j);
		jsonw_end_object(j);
	}
	free(a);
	jsonw_end_array(j);
	jsonw_end_object(j);
	jsonw_newline(j);
	const char *buf;
	size_t len;
	if (jsonw_result(j, &buf, &len) == 0)
		httpd_call_reply(call, 200, NULL, buf, len);
	else
		httpd_call_reply_error(call, 500, "agent list exceeded its size bound");
	jsonw_free(j);
}

int status_register(struct status *s, struct httpd *h)
{
	int r = httpd_route(h, "GET", "/metrics", HTTPD_PUBLIC, on_metrics, s);
	if (r == 0)
		r = httpd_route(h, "GET", "/healthz", HTTPD_PUBLIC, on_healthz, s);
	if (r == 0)
		r = httpd_route(h, "GET", "/api/v1/agents", 0, on_agents, s);
	return r;
}
