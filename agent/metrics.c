/* metrics: see metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "httpd.h"
#include "loop.h"
#include "ms_abi.h"
#include "standalone.h"
#include "uplink.h"
#include "window.h"

#define METRICS_MAX_BYTES (4u << 20)
#define FAMILY_MAX_BYTES (256u << 10)

struct family {
	char name[64];
	struct strbuf text;           /* HELP, TYPE and every series, pre-rendered */
};

struct metrics {
	pthread_mutex_t mu;
	char agent_id[128];
	char tier[32];
	bool synthetic;
	int nev;
	struct metrics_event ev[METRICS_MAX_EVENTS];
	int mode;
	uint64_t sentinel_budget, diagnostic_budget;
	uint64_t bpf[MS_CNT__MAX];
	uint64_t processed, lost, windows, degraded, agg_dropped;
	double samples_per_sec;
	uint64_t last_window_samples;
	uint64_t start_real_ms;
	uint32_t top_k;
	bool guide_names;
	struct wintop *top;           /* last window's; NULL before the first */
	struct control_snapshot *ctl; /* NULL before the loop's first report */
	struct uplink *up;
	struct standalone *solo;
	double encode_sum;
	uint64_t encode_count;
	uint32_t nfam;
	struct family fam[METRICS_MAX_FAMILIES];
	uint32_t nsrc;
	struct { int (*render)(void *arg, struct strbuf *sb); void *arg; } src[METRICS_MAX_SOURCES];
};

int metrics_new(const char *agent_id, struct metrics **ret)
{
	struct metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->mu, NULL);
	snprintf(m->agent_id, sizeof(m->agent_id), "%s", agent_id);
	m->top_k = 20;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	m->start_real_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	*ret = m;
	return 0;
}

struct metrics *metrics_free(struct metrics *m)
{
	if (!m)
		return NULL;
	pthread_mutex_destroy(&m->mu);
	free(m->top);
	free(m->ctl);
	for (uint32_t i = 0; i < m->nfam; i++)
		strbuf_release(&m->fam[i].text);
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
		struct metrics_event *e = &m->ev[m->nev++];
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
	/* the top-K views are computed outside the lock: render never waits for them */
	uint32_t k = __atomic_load_n(&m->top_k, __ATOMIC_RELAXED);
	struct wintop *top = malloc(sizeof(*top));
	if (top && wintop_compute(w, k, top) < 0) {
		free(top);
		top = NULL;
	}
	pthread_mutex_lock(&m->mu);
	if (top) {
		free(m->top);
		m->top = top;
	}
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

static void label(struct strbuf *sb, const char *name, const char *value, bool first)
{
	strbuf_appendf(sb, "%s%s=\"", first ? "" : ",", name);
	strbuf_append_label_value(sb, value);
	strbuf_append(sb, "\"", 1);
}

static const char *const dir_names[2] = { "rx", "tx" };

/* Mode controller, targets and anomaly monitor: every gauge on every scrape, fired or not. */
static void metrics_render_ctl(struct strbuf *sb, const struct control_snapshot *c)
{
	head(sb, "ms_sampling_throttled", "gauge", "1 while load shedding (ShedHeavy) is active.");
	strbuf_appendf(sb, "ms_sampling_throttled %d\n", c->mc.safety == MODECTL_SHED_HEAVY);
	head(sb, "ms_sampling_load_ratio", "gauge",
	     "Hottest CPU's sampling demand over the per-CPU budget of the mode it was measured in (averaged).");
	strbuf_appendf(sb, "ms_sampling_load_ratio %.4f\n", c->mc.load);
	head(sb, "ms_mode_pinned", "gauge", "1 while the mode is pinned by the API, the coordinator or the config.");
	strbuf_appendf(sb, "ms_mode_pinned %d\n", c->mc.pinned);
	head(sb, "ms_mode_transitions_total", "counter", "Sentinel/diagnostic switches since start.");
	strbuf_appendf(sb, "ms_mode_transitions_total %" PRIu64 "\n", c->mc.transitions);
	head(sb, "ms_sampling_shed_total", "counter", "Times load shedding (ShedHeavy) was entered.");
	strbuf_appendf(sb, "ms_sampling_shed_total %" PRIu64 "\n", c->mc.shed_entries);
	head(sb, "ms_targets", "gauge", "Target filters in force (0 = every sample is kept).");
	strbuf_appendf(sb, "ms_targets %u\n", c->ntargets);
	head(sb, "ms_target_filtered_samples_total", "counter", "Samples dropped in user space because no target matched.");
	strbuf_appendf(sb, "ms_target_filtered_samples_total %" PRIu64 "\n", c->filtered);
	head(sb, "ms_anomaly_signals_dropped_total", "counter",
	     "Anomaly signals not attached to a window because its signal list was full.");
	strbuf_appendf(sb, "ms_anomaly_signals_dropped_total %" PRIu64 "\n", c->anomaly_signals_dropped);
	if (!c->anomaly_enabled)
		return;
	const struct anomaly_view *a = &c->anomaly;
	static const struct { const char *name, *help; } g[4] = {
		{ "ms_anomaly_bytes_per_second", "Interface throughput over the last anomaly interval." },
		{ "ms_anomaly_baseline_bytes_per_second", "EWMA baseline of the interface throughput." },
		{ "ms_anomaly_packets_per_second", "Interface packet rate over the last anomaly interval." },
		{ "ms_anomaly_drops_per_second", "Interface packet drops per second over the last anomaly interval." },
	};
	for (int k = 0; k < 4; k++) {
		head(sb, g[k].name, "gauge", g[k].help);
		for (uint32_t i = 0; i < a->n; i++)
			for (int d = 0; d < 2; d++) {
				const struct anomaly_iface_view *f = &a->ifs[i];
				double v = k == 0 ? f->bytes_per_sec[d] : k == 1 ? f->baseline_bytes_per_sec[d] :
					   k == 2 ? f->packets_per_sec[d] : f->drops_per_sec[d];
				strbuf_appendf(sb, "%s{", g[k].name);
				label(sb, "interface", f->name, true);
				label(sb, "direction", dir_names[d], false);
				strbuf_appendf(sb, "} %.3f\n", v);
			}
	}
	head(sb, "ms_anomaly_active", "gauge", "1 while the anomaly signal (stop, drop, spike, packet_drops) is raised.");
	for (uint32_t i = 0; i < a->n; i++)
		for (int d = 0; d < 2; d++)
			for (int k = 0; k < ANOMALY__NIFKINDS; k++) {
				strbuf_appendf(sb, "ms_anomaly_active{");
				label(sb, "interface", a->ifs[i].name, true);
				label(sb, "direction", dir_names[d], false);
				label(sb, "kind", anomaly_kind_name(k), false);
				strbuf_appendf(sb, "} %d\n", (a->ifs[i].active >> (d * ANOMALY__NIFKINDS + k)) & 1);
			}
	head(sb, "ms_anomaly_signals_total", "counter", "Anomaly signals raised since start, by kind.");
	for (int k = 0; k < ANOMALY__NKINDS; k++)
		strbuf_appendf(sb, "ms_anomaly_signals_total{kind=\"%s\"} %" PRIu64 "\n", anomaly_kind_name(k), a->fired[k]);
	if (a->latency_configured) {
		head(sb, "ms_anomaly_latency_spike", "gauge", "1 while the latency signal is raised.");
		strbuf_appendf(sb, "ms_anomaly_latency_spike %d\n", a->latency_active);
		if (a->latency_valid) {
			head(sb, "ms_anomaly_latency_seconds", "gauge", "Latest value of the latency file.");
			strbuf_appendf(sb, "ms_anomaly_latency_seconds %.9f\n", a->latency_us / 1e6);
			head(sb, "ms_anomaly_latency_baseline_seconds", "gauge", "EWMA baseline of the latency file.");
			strbuf_appendf(sb, "ms_anomaly_latency_baseline_seconds %.9f\n", a->latency_baseline_us / 1e6);
		}
	}
}

/* The per-flow series: the last window's top K only, so a flow that leaves the top K leaves the
 * exposition (bounded cardinality). */
static void metrics_render_top(struct strbuf *sb, const struct wintop *t)
{
	if (!t->nrows)
		return;
	head(sb, "ms_flow_micromiss_rate", "gauge",
	     "Estimated events per second (samples x period x multiplexing scale / GSO segments) of the last "
	     "window's top (flow, function, event) triples.");
	for (uint32_t i = 0; i < t->nrows; i++) {
		const struct wintop_row *r = &t->rows[i];
		char id[24], tuple[160];
		snprintf(id, sizeof(id), "%016" PRIx64, r->flow_id);
		window_format_tuple(&r->t, tuple, sizeof(tuple));
		strbuf_appendf(sb, "ms_flow_micromiss_rate{");
		label(sb, "flow", id, true);
		label(sb, "tuple", tuple, false);
		label(sb, "function", r->func, false);
		label(sb, "event", r->event_name, false);
		label(sb, "class", events_iclass_name(r->iclass), false);
		strbuf_appendf(sb, "} %.3f\n", r->per_sec);
	}
}

static void metrics_render_uplink(struct strbuf *sb, struct uplink *u, double enc_sum, uint64_t enc_n)
{
	struct uplink_stats st;
	memset(&st, 0, sizeof(st));
	if (u)
		uplink_stats(u, &st);
	head(sb, "ms_uplink_connected", "gauge", "1 while connected to the coordinator (0 standalone).");
	strbuf_appendf(sb, "ms_uplink_connected %d\n", st.connected);
	head(sb, "ms_uplink_windows_sent_total", "counter", "Window requests sent to the coordinator (re-sends included).");
	strbuf_appendf(sb, "ms_uplink_windows_sent_total %" PRIu64 "\n", st.sent);
	head(sb, "ms_uplink_windows_acked_total", "counter", "Windows the coordinator acknowledged.");
	strbuf_appendf(sb, "ms_uplink_windows_acked_total %" PRIu64 "\n", st.acked);
	head(sb, "ms_uplink_windows_replayed_total", "counter", "Acked windows that needed a re-send or came from the spool.");
	strbuf_appendf(sb, "ms_uplink_windows_replayed_total %" PRIu64 "\n", st.replayed);
	head(sb, "ms_uplink_windows_dropped_total", "counter", "Windows given up (spool policy, oversize, refused, spool errors).");
	strbuf_appendf(sb, "ms_uplink_windows_dropped_total %" PRIu64 "\n", st.dropped);
	head(sb, "ms_uplink_spool_windows", "gauge", "Windows waiting in the on-disk spool.");
	strbuf_appendf(sb, "ms_uplink_spool_windows %" PRIu64 "\n", st.spool_windows);
	head(sb, "ms_uplink_spool_bytes", "gauge", "Bytes of the on-disk spool.");
	strbuf_appendf(sb, "ms_uplink_spool_bytes %" PRIu64 "\n", st.spool_bytes);
	head(sb, "ms_uplink_spool_corrupt_total", "counter", "Spool segments cut at a corrupt record when the agent started.");
	strbuf_appendf(sb, "ms_uplink_spool_corrupt_total %" PRIu64 "\n", st.spool_corrupt);
	head(sb, "ms_window_encode_seconds", "summary", "Time to encode and hand over each closed window (export worker).");
	strbuf_appendf(sb, "ms_window_encode_seconds_sum %.9f\nms_window_encode_seconds_count %" PRIu64 "\n", enc_sum, enc_n);
}

int metrics_render(struct metrics *m, struct strbuf *sb)
{
	pthread_mutex_lock(&m->mu);
	head(sb, "ms_agent_mode", "gauge", "Current sampling mode (0 sentinel, 1 diagnostic).");
	strbuf_appendf(sb, "ms_agent_mode %d\n", m->ctl ? m->ctl->mc.mode : m->mode);
	head(sb, "ms_samples_per_second", "gauge", "Samples emitted per second over the last window (all CPUs).");
	strbuf_appendf(sb, "ms_samples_per_second %.3f\n", m->samples_per_sec);
	if (m->guide_names) {
		head(sb, "ms_samples_per_sec", "gauge", "Same as ms_samples_per_second (the operations guide's name).");
		strbuf_appendf(sb, "ms_samples_per_sec %.3f\n", m->samples_per_sec);
	}
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
	head(sb, "ms_budget_samples_per_second", "gauge", "Per-CPU sample budget by mode.");
	strbuf_appendf(sb, "ms_budget_samples_per_second{mode=\"sentinel\"} %" PRIu64 "\n",
		       m->ctl ? m->ctl->sentinel_budget : m->sentinel_budget);
	strbuf_appendf(sb, "ms_budget_samples_per_second{mode=\"diagnostic\"} %" PRIu64 "\n",
		       m->ctl ? m->ctl->diagnostic_budget : m->diagnostic_budget);
	if (m->ctl)
		metrics_render_ctl(sb, m->ctl);
	if (m->top)
		metrics_render_top(sb, m->top);
	metrics_render_uplink(sb, m->up, m->encode_sum, m->encode_count);
	if (m->solo)
		standalone_metrics(m->solo, sb);
	for (uint32_t i = 0; i < m->nfam; i++)
		if (m->fam[i].text.len) /* an empty family has no buffer at all */
			strbuf_append(sb, m->fam[i].text.buf, m->fam[i].text.len);
	uint32_t nsrc = m->nsrc;
	pthread_mutex_unlock(&m->mu);
	/* outside the lock: sources take their owners' locks (loop, httpd); the list only grows,
	 * and entries below nsrc never change */
	for (uint32_t i = 0; i < nsrc; i++)
		m->src[i].render(m->src[i].arg, sb);

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

void metrics_set_options(struct metrics *m, uint32_t top_k, bool guide_names)
{
	pthread_mutex_lock(&m->mu);
	__atomic_store_n(&m->top_k, top_k >= 1 && top_k <= WINTOP_MAX ? top_k : 20, __ATOMIC_RELAXED);
	m->guide_names = guide_names;
	pthread_mutex_unlock(&m->mu);
}

void metrics_on_ctl(struct metrics *m, const struct control_snapshot *c)
{
	pthread_mutex_lock(&m->mu);
	if (!m->ctl)
		m->ctl = malloc(sizeof(*m->ctl));
	if (m->ctl)
		*m->ctl = *c;
	/* the loop's view of the events is current (PMU reconfigurations, fallbacks) */
	if (c->nev > 0) {
		m->nev = 0;
		for (int i = 0; i < c->nev && i < METRICS_MAX_EVENTS; i++) {
			struct metrics_event *e = &m->ev[m->nev++];
			memcpy(e->name, c->ev[i].name, sizeof(e->name));
			memcpy(e->reason, c->ev[i].reason, sizeof(e->reason));
			e->source = c->ev[i].source;
			e->live = c->ev[i].live;
		}
	}
	pthread_mutex_unlock(&m->mu);
}

int metrics_add_source(struct metrics *m, int (*render)(void *arg, struct strbuf *sb), void *arg)
{
	if (!m || !render)
		return -EINVAL;
	pthread_mutex_lock(&m->mu);
	int r = m->nsrc < METRICS_MAX_SOURCES ? 0 : -ENOSPC;
	if (r == 0) {
		m->src[m->nsrc].render = render;
		m->src[m->nsrc].arg = arg;
		m->nsrc++;
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

void metrics_set_uplink(struct metrics *m, struct uplink *u)
{
	pthread_mutex_lock(&m->mu);
	m->up = u;
	pthread_mutex_unlock(&m->mu);
}

void metrics_set_standalone(struct metrics *m, struct standalone *s)
{
	pthread_mutex_lock(&m->mu);
	m->solo = s;
	pthread_mutex_unlock(&m->mu);
}

void metrics_observe_encode(struct metrics *m, double seconds)
{
	pthread_mutex_lock(&m->mu);
	m->encode_sum += seconds;
	m->encode_count++;
	pthread_mutex_unlock(&m->mu);
}

static bool name_ok(const char *s)
{
	if (!s || !((*s >= 'a' && *s <= 'z') || *s == '_') || strlen(s) >= 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

int metrics_publish_family(struct metrics *m, const char *name, const char *help, const struct metrics_series *s,
			   size_t n)
{
	if (!name_ok(name) || !help || strchr(help, '\n') || strncmp(name, "ms_", 3) != 0)
		return -EINVAL;
	if (n > METRICS_FAMILY_MAX_SERIES)
		return -E2BIG;
	struct strbuf sb;
	strbuf_init(&sb, FAMILY_MAX_BYTES);
	if (n)
		head(&sb, name, "gauge", help);
	for (size_t i = 0; i < n; i++) {
		if (s[i].nlabels > METRICS_MAX_LABELS) {
			strbuf_release(&sb);
			return -EINVAL;
		}
		strbuf_appendf(&sb, "%s", name);
		for (uint32_t j = 0; j < s[i].nlabels; j++) {
			if (!name_ok(s[i].labels[j][0]) || !s[i].labels[j][1]) {
				strbuf_release(&sb);
				return -EINVAL;
			}
			strbuf_append(&sb, j ? "," : "{", 1);
			label(&sb, s[i].labels[j][0], s[i].labels[j][1], true);
		}
		strbuf_appendf(&sb, "%s %.6g\n", s[i].nlabels ? "}" : "", s[i].value);
	}
	int r = strbuf_error(&sb);
	if (r < 0) {
		strbuf_release(&sb);
		return r;
	}
	pthread_mutex_lock(&m->mu);
	uint32_t i;
	for (i = 0; i < m->nfam && strcmp(m->fam[i].name, name) != 0; i++)
		;
	if (i == m->nfam) {
		if (m->nfam >= METRICS_MAX_FAMILIES) {
			pthread_mutex_unlock(&m->mu);
			strbuf_release(&sb);
			return -ENOSPC;
		}
		m->nfam++;
		snprintf(m->fam[i].name, sizeof(m->fam[i].name), "%s", name);
	} else {
		strbuf_release(&m->fam[i].text);
	}
	m->fam[i].text = sb;
	pthread_mutex_unlock(&m->mu);
	return 0;
}

void metrics_snapshot(struct metrics *m, struct metrics_snapshot *r)
{
	memset(r, 0, sizeof(*r));
	struct uplink *up;
	pthread_mutex_lock(&m->mu);
	snprintf(r->agent_id, sizeof(r->agent_id), "%s", m->agent_id);
	snprintf(r->tier, sizeof(r->tier), "%s", m->tier);
	r->synthetic = m->synthetic;
	r->start_real_ms = m->start_real_ms;
	r->nev = m->nev;
	memcpy(r->ev, m->ev, sizeof(r->ev));
	r->mode = m->mode;
	r->sentinel_budget = m->sentinel_budget;
	r->diagnostic_budget = m->diagnostic_budget;
	memcpy(r->bpf, m->bpf, sizeof(r->bpf));
	r->processed = m->processed;
	r->lost = m->lost;
	r->windows = m->windows;
	r->degraded = m->degraded;
	r->agg_dropped = m->agg_dropped;
	r->samples_per_sec = m->samples_per_sec;
	if ((r->have_ctl = m->ctl != NULL))
		r->ctl = *m->ctl;
	if ((r->have_top = m->top != NULL))
		r->top = *m->top;
	up = m->up;
	pthread_mutex_unlock(&m->mu);
	if (up) {
		struct uplink_stats st;
		uplink_stats(up, &st);
		r->have_uplink = true;
		r->uplink_connected = st.connected;
		r->uplink_sent = st.sent;
		r->uplink_acked = st.acked;
		r->uplink_dropped = st.dropped;
		r->uplink_replayed = st.replayed;
		r->uplink_spool_windows = st.spool_windows;
		r->uplink_spool_bytes = st.spool_bytes;
	}
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

int metrics_health(struct metrics *m, uint64_t stall_ms, char *body, size_t cap)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	pthread_mutex_lock(&m->mu);
	bool have = m->ctl != NULL;
	uint64_t at = have ? m->ctl->real_ms : 0;
	int mode = have ? m->ctl->mc.mode : 0;
	pthread_mutex_unlock(&m->mu);
	uint64_t age = have && now > at ? now - at : 0;
	bool ok = have && age < (stall_ms ? stall_ms : METRICS_DEFAULT_STALL_MS);
	const char *name = mode == LOOP_MODE_DIAGNOSTIC ? "diagnostic" : mode == LOOP_MODE_SENTINEL ? "sentinel" : "auto";
	if (ok)
		snprintf(body, cap, "{\"status\":\"ok\",\"mode\":\"%s\"}\n", name);
	else
		snprintf(body, cap, "{\"error\":\"Service Unavailable\",\"reason\":\"%s\"}\n",
			 have ? "the sampling loop has not reported for too long" : "the sampling loop has not started");
	return ok ? 200 : 503;
}

static void on_healthz(void *arg, struct httpd_call *call)
{
	char body[160];
	int status = metrics_health(arg, 0, body, sizeof(body));
	httpd_call_reply(call, status, "application/json", body, strlen(body));
}

int metrics_register(struct metrics *m, struct httpd *h)
{
	int r = httpd_route(h, "GET", "/metrics", HTTPD_PUBLIC, on_metrics, m);
	return r < 0 ? r : httpd_route(h, "GET", "/healthz", HTTPD_PUBLIC, on_healthz, m);
}
