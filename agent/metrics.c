/* metrics: see metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "events.h"
#include "httpd.h"
#include "ms_abi.h"
#include "window.h"

#define METRICS_MAX_BYTES (4u << 20)

struct ev_info {
	char name[48];
	char reason[160];
	uint8_t source;
	bool live;
};

struct metrics {
	pthread_mutex_t mu;
	char agent_id[128];
	char tier[32];
	bool synthetic;
	int nev;
	struct ev_info ev[EVENTS_MAX * 2];
	int mode;
	uint64_t sentinel_budget, diagnostic_budget;
	uint64_t bpf[MS_CNT__MAX];
	uint64_t processed, lost, windows, degraded, agg_dropped;
	double samples_per_sec;
	uint64_t last_window_samples;
};

int metrics_new(const char *agent_id, struct metrics **ret)
{
	struct metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->mu, NULL);
	snprintf(m->agent_id, sizeof(m->agent_id), "%s", agent_id);
	*ret = m;
	return 0;
}

struct metrics *metrics_free(struct metrics *m)
{
	if (!m)
		return NULL;
	pthread_mutex_destroy(&m->mu);
	free(m);
	return NULL;
}

void metrics_set_capability(struct metrics *m, const struct events *ev, const char *tier, bool synthetic)
{
	pthread_mutex_lock(&m->mu);
	snprintf(m->tier, sizeof(m->tier), "%s", tier);
	m->synthetic = synthetic;
	m->nev = 0;
	for (int i = 0; ev && i < events_count(ev) && m->nev < (int)(sizeof(m->ev) / sizeof(m->ev[0])); i++) {
		const struct events_state *st = events_get(ev, i);
		struct ev_info *e = &m->ev[m->nev++];
		snprintf(e->name, sizeof(e->name), "%s", st->spec.name);
		snprintf(e->reason, sizeof(e->reason), "%s", st->reason);
		e->source = (uint8_t)st->source;
		e->live = st->live;
	}
	pthread_mutex_unlock(&m->mu);
}

void metrics_set_mode(struct metrics *m, int mode, uint64_t sentinel_budget, uint64_t diagnostic_budget)
{
	pthread_mutex_lock(&m->mu);
	m->mode = mode;
	m->sentinel_budget = sentinel_budget;
	m->diagnostic_budget = diagnostic_budget;
	pthread_mutex_unlock(&m->mu);
}

void metrics_on_window(struct metrics *m, const struct window *w)
{
	pthread_mutex_lock(&m->mu);
	for (int i = 0; i < MS_CNT__MAX; i++)
		m->bpf[i] += w->c.bpf[i];
	m->processed += w->c.processed;
	m->lost += w->c.lost;
	m->degraded += w->c.agg_degraded;
	m->agg_dropped += w->c.agg_dropped;
	m->windows++;
	m->mode = w->mode;
	m->last_window_samples = window_samples(w);
	uint64_t dur = w->end_ns > w->start_ns ? w->end_ns - w->start_ns : 0;
	m->samples_per_sec = dur ? (double)w->c.bpf[MS_CNT_EMITTED] * 1e9 / (double)dur : 0.0;
	pthread_mutex_unlock(&m->mu);
}

static void head(struct strbuf *sb, const char *name, const char *type, const char *help)
{
	strbuf_appendf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	unsigned long size = 0, res = 0;
	if (f) {
		if (fscanf(f, "%lu %lu", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

int metrics_render(struct metrics *m, struct strbuf *sb)
{
	pthread_mutex_lock(&m->mu);
	head(sb, "ms_agent_mode", "gauge", "Current sampling mode (0 sentinel, 1 diagnostic).");
	strbuf_appendf(sb, "ms_agent_mode %d\n", m->mode);
	head(sb, "ms_samples_per_sec", "gauge", "Samples emitted per second over the last window (all CPUs).");
	strbuf_appendf(sb, "ms_samples_per_sec %.3f\n", m->samples_per_sec);
	head(sb, "ms_samples_total", "counter", "Samples by outcome: emitted, or dropped by budget, gap, ring full, lost in validation.");
	strbuf_appendf(sb, "ms_samples_total{outcome=\"emitted\"} %" PRIu64 "\n", m->bpf[MS_CNT_EMITTED]);
	strbuf_appendf(sb, "ms_samples_total{outcome=\"budget\"} %" PRIu64 "\n", m->bpf[MS_CNT_DROP_BUDGET]);
	strbuf_appendf(sb, "ms_samples_total{outcome=\"gap\"} %" PRIu64 "\n", m->bpf[MS_CNT_DROP_GAP]);
	strbuf_appendf(sb, "ms_samples_total{outcome=\"ringfull\"} %" PRIu64 "\n", m->bpf[MS_CNT_DROP_RINGFULL]);
	strbuf_appendf(sb, "ms_samples_total{outcome=\"lost\"} %" PRIu64 "\n", m->lost);
	head(sb, "ms_unattributed_samples_total", "counter", "Emitted samples without a fresh flow context (flow 0).");
	strbuf_appendf(sb, "ms_unattributed_samples_total %" PRIu64 "\n", m->bpf[MS_CNT_UNATTRIBUTED]);
	head(sb, "ms_attributed_samples_total", "counter", "Emitted samples attributed to a flow, by rule.");
	strbuf_appendf(sb, "ms_attributed_samples_total{rule=\"thread\"} %" PRIu64 "\n", m->bpf[MS_CNT_ATTR_THREAD]);
	strbuf_appendf(sb, "ms_attributed_samples_total{rule=\"packet\"} %" PRIu64 "\n", m->bpf[MS_CNT_ATTR_PACKET]);
	head(sb, "ms_samples_processed_total", "counter", "Samples through the user-space pipeline (synthetic ones included).");
	strbuf_appendf(sb, "ms_samples_processed_total %" PRIu64 "\n", m->processed);
	head(sb, "ms_idle_samples_total", "counter", "Samples taken in the idle task (not emitted, no budget used).");
	strbuf_appendf(sb, "ms_idle_samples_total %" PRIu64 "\n", m->bpf[MS_CNT_IDLE]);
	head(sb, "ms_context_updates_total", "counter", "Flow context updates by hook kind.");
	strbuf_appendf(sb, "ms_context_updates_total{hook=\"rx\"} %" PRIu64 "\n", m->bpf[MS_CNT_CTX_RX]);
	strbuf_appendf(sb, "ms_context_updates_total{hook=\"tx\"} %" PRIu64 "\n", m->bpf[MS_CNT_CTX_TX]);
	strbuf_appendf(sb, "ms_context_updates_total{hook=\"sock\"} %" PRIu64 "\n", m->bpf[MS_CNT_CTX_SOCK]);
	head(sb, "ms_context_parse_failures_total", "counter", "Packets that could not be parsed as IP (no context set).");
	strbuf_appendf(sb, "ms_context_parse_failures_total %" PRIu64 "\n", m->bpf[MS_CNT_CTX_PARSE_FAIL]);
	head(sb, "ms_aggregation_degraded_total", "counter", "Samples aggregated under a coarser key because the window table was full.");
	strbuf_appendf(sb, "ms_aggregation_degraded_total %" PRIu64 "\n", m->degraded);
	head(sb, "ms_aggregation_dropped_total", "counter", "Samples dropped because even the coarse window table was full.");
	strbuf_appendf(sb, "ms_aggregation_dropped_total %" PRIu64 "\n", m->agg_dropped);
	head(sb, "ms_windows_closed_total", "counter", "Aggregation windows closed.");
	strbuf_appendf(sb, "ms_windows_closed_total %" PRIu64 "\n", m->windows);
	head(sb, "ms_events_live", "gauge", "Sampling events: 1 if live, 0 if not (see the status endpoint for the reason).");
	for (int i = 0; i < m->nev; i++) {
		strbuf_appendf(sb, "ms_events_live{event=\"");
		strbuf_append_label_value(sb, m->ev[i].name);
		strbuf_appendf(sb, "\",source=\"%s\"} %d\n", m->ev[i].source ? "sw" : "hw", m->ev[i].live ? 1 : 0);
	}
	head(sb, "ms_bpf_hook_tier", "gauge", "Context-injection hook flavour in use (1 for the active one).");
	strbuf_appendf(sb, "ms_bpf_hook_tier{tier=\"");
	strbuf_append_label_value(sb, m->synthetic ? "synthetic" : m->tier);
	strbuf_appendf(sb, "\"} 1\n");
	head(sb, "ms_budget_samples_per_sec", "gauge", "Per-CPU sample budget by mode.");
	strbuf_appendf(sb, "ms_budget_samples_per_sec{mode=\"sentinel\"} %" PRIu64 "\n", m->sentinel_budget);
	strbuf_appendf(sb, "ms_budget_samples_per_sec{mode=\"diagnostic\"} %" PRIu64 "\n", m->diagnostic_budget);
	pthread_mutex_unlock(&m->mu);

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
		     (double)ru.ru_stime.tv_usec / 1e6;
	head(sb, "ms_agent_cpu_seconds_total", "counter", "CPU time used by the agent process.");
	strbuf_appendf(sb, "ms_agent_cpu_seconds_total %.6f\n", cpu);
	head(sb, "ms_agent_rss_bytes", "gauge", "Resident set size of the agent process.");
	strbuf_appendf(sb, "ms_agent_rss_bytes %" PRIu64 "\n", rss_bytes());
	return strbuf_error(sb);
}

static void on_metrics(void *arg, struct httpd_call *call)
{
	struct metrics *m = arg;
	struct strbuf sb;
	strbuf_init(&sb, METRICS_MAX_BYTES);
	if (metrics_render(m, &sb) < 0) {
		httpd_call_reply_error(call, 500, "metrics exposition exceeded its size bound");
	} else {
		httpd_call_reply(call, 200, "text/plain; version=0.0.4; charset=utf-8", sb.buf, sb.len);
	}
	strbuf_release(&sb);
}

int metrics_register(struct metrics *m, struct httpd *h)
{
	return httpd_route(h, "GET", "/metrics", HTTPD_PUBLIC, on_metrics, m);
}
