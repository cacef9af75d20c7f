/* ctlplane: see ctlplane.h. The ticker runs the correlator once per tick_ms: it first syncs
 * host → group from the Watch table and the registry (labels may change when an agent
 * reconnects), then applies the decisions. Pushes go through watch_push like an operator's,
 * so a triggered agent that is not connected gets the command when its Watch comes back if
 * pending commands are on and the TTL is not over (else the next EXTEND reaches it). Fleet
 * events reach storage through a tap on the event log, so every producer (opapi, watch, the
 * correlator) is stored by one path. */
#include "ctlplane.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chrows.h"
#include "evlog.h"
#include "fleet.pb-c.h"
#include "opapi.h"
#include "registry.h"
#include "rpc.h"
#include "watch.h"

/* Fleet event kinds counted by name; anything else is "other". */
static const char *const kinds[] = {
	"trigger", "extend", "clear", "suppressed_rate", "suppressed_cap", "mode_set", "budget_set",
	"targets_set", "pmu_set", "agent_connected", "agent_disconnected", "command_failed",
	"command_delivered", "command_expired", "other",
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))
#define CTLPLANE_EPISODES 4096

struct ctlplane {
	struct evlog *events, *anomalies;
	struct watch *watch;
	struct opapi *api;
	struct rpc_server *srv;
	struct correlator *corr;
	struct registry *reg;
	char group_label[64];
	uint64_t diag_ttl_ms;
	uint32_t tick_ms;
	pthread_t thr;
	bool thr_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct watch_agent wa;       /* ticker scratch (large) */
	struct registry_agent ra;
	char coordinator[24];        /* id as 16 hex digits */
	ctlplane_store_fn store;
	void *store_arg;
	bool mode_signals;
	struct costdev *cost;        /* NULL: cost deviations are not signals */
	atomic_uint_fast64_t by_kind[NKINDS], seq, stored, store_failed;
	atomic_uint_fast64_t episodes[CTLPLANE_EPISODES]; /* anomaly episodes logged (new_episode) */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *group_in(const char *label, const struct wire_label *ls, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(ls[i].key, label) == 0)
			return ls[i].value;
	return "*";
}

/* Host → group for every agent we know (ticker thread only: uses the scratch entries). */
static void sync_hosts(struct ctlplane *c)
{
	uint32_t n = watch_count(c->watch);
	for (uint32_t i = 0; i < n; i++)
		if (watch_get_at(c->watch, i, &c->wa) == 0)
			correlator_host(c->corr, c->wa.agent_id, group_in(c->group_label, c->wa.labels, c->wa.nlabels));
	n = c->reg ? registry_count(c->reg) : 0;
	for (uint32_t i = 0; i < n; i++)
		if (registry_get(c->reg, i, mono_ms(), &c->ra) == 0 && c->ra.hello.nlabels)
			correlator_host(c->corr, c->ra.hello.agent_id,
					group_in(c->group_label, c->ra.hello.labels, c->ra.hello.nlabels));
}

static void apply(struct ctlplane *c, const struct correlator_decision *d)
{
	const char *kind = correlator_kind_name(d->kind);
	char detail[320];
	snprintf(detail, sizeof(detail), "key=%s agreeing=%u/%u", d->key, d->agreeing, d->group_hosts);
	uint64_t id = 0;
	char **names = calloc(d->nagents ? d->nagents : 1, sizeof(*names));
	uint32_t queued = 0, pending = 0;
	if (d->kind == CORRELATOR_TRIGGER || d->kind == CORRELATOR_EXTEND || d->kind == CORRELATOR_CLEAR) {
		Ms__V1__Command cmd = MS__V1__COMMAND__INIT;
		char reason[256];
		snprintf(reason, sizeof(reason), "fleet %s: %s in group %s", kind, d->key, d->group);
		id = opapi_next_id(c->api);
		cmd.id = id;
		cmd.reason = reason;
		cmd.body_case = MS__V1__COMMAND__BODY_MODE;
		cmd.mode = d->kind == CORRELATOR_CLEAR ? MS__V1__MODE_REQUEST__MODE_REQUEST_AUTO
						       : MS__V1__MODE_REQUEST__MODE_REQUEST_DIAGNOSTIC;
		cmd.ttl_ms = d->kind == CORRELATOR_CLEAR ? 0 : c->diag_ttl_ms;
		for (uint32_t i = 0; i < d->nagents; i++) {
			int r = watch_push(c->watch, d->agents[i], &cmd);
			pending += r == WATCH_PENDED;
			if ((r == 0 || r == WATCH_PENDED) && names)
				names[queued++] = (char *)d->agents[i];
		}
		size_t l = strlen(detail);
		snprintf(detail + l, sizeof(detail) - l, " pushed=%u/%u pending=%u ttl_ms=%" PRIu64, queued - pending,
			 d->nagents, pending, cmd.ttl_ms);
	} else {
		size_t l = strlen(detail);
		snprintf(detail + l, sizeof(detail) - l, " (%s)",
			 d->kind == CORRELATOR_SUPPRESSED_RATE ? "rate limit" : "cap on the fleet in diagnostic");
	}
	opapi_fleet_event(c->events, kind, d->group, (const char *const *)names, queued, detail, id);
	free(names);
}

/* The value of "name=" in a detail line (up to the next space), or "" . */
static void detail_field(const char *detail, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	out[0] = 0;
	for (const char *p = detail; (p = strstr(p, name)) != NULL; p += nl) {
		if ((p != detail && p[-1] != ' ') || p[nl] != '=')
			continue;
		p += nl + 1;
		size_t n = strcspn(p, " ");
		snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
		return;
	}
}

/* evlog tap: counts every fleet event by kind and stores it as an ms_fleet_events row. The
 * message is unpacked again (a few microseconds; events are rare) so every producer — opapi,
 * watch, the correlator — is stored through one path. */
static void on_event(void *arg, uint64_t ts_ns, const uint8_t *msg, size_t len)
{
	struct ctlplane *c = arg;
	Ms__V1__FleetEvent *ev = ms__v1__fleet_event__unpack(NULL, len, msg);
	if (!ev)
		return;
	size_t k = 0;
	while (k < NKINDS - 1 && strcmp(kinds[k], ev->kind) != 0)
		k++;
	atomic_fetch_add(&c->by_kind[k], 1);
	if (c->store) {
		char mode[32], ttl[24], reason[256] = "";
		detail_field(ev->detail, "mode", mode, sizeof(mode));
		if (!strcmp(ev->kind, "trigger") || !strcmp(ev->kind, "extend"))
			snprintf(mode, sizeof(mode), "diagnostic");
		else if (!strcmp(ev->kind, "clear"))
			snprintf(mode, sizeof(mode), "auto");
		detail_field(ev->detail, "ttl_ms", ttl, sizeof(ttl));
		const char *rs = strstr(ev->detail, "reason=");
		if (rs) /* operator commands: free text, last */
			snprintf(reason, sizeof(reason), "%s", rs + 7);
		else
			detail_field(ev->detail, "key", reason, sizeof(reason));
		struct chrows_fleet_event row = {
			.ts_ns = ts_ns,
			.coordinator = c->coordinator,
			.seq = atomic_fetch_add(&c->seq, 1) + 1,
			.kind = ev->kind,
			.group_key = ev->group,
			.hosts = (const char *const *)ev->agents,
			.nhosts = (uint32_t)ev->n_agents,
			.mode = mode,
			.ttl_ms = strtoull(ttl, NULL, 10),
			.reason = reason,
			.details = ev->detail,
		};
		if (c->store(c->store_arg, &row) == 0)
			atomic_fetch_add(&c->stored, 1);
		else
			atomic_fetch_add(&c->store_failed, 1);
	}
	ms__v1__fleet_event__free_unpacked(ev, NULL);
}

static void head(struct strbuf *sb, const char *name, const char *type, const char *help)
{
	strbuf_appendf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(struct strbuf *sb, const char *name, const char *help, uint64_t v)
{
	head(sb, name, "counter", help);
	strbuf_appendf(sb, "%s %" PRIu64 "\n", name, v);
}

int ctlplane_metrics(void *arg, struct strbuf *sb)
{
	struct ctlplane *c = arg;
	struct correlator_stats cs;
	correlator_get_stats(c->corr, mono_ms(), &cs);
	struct watch_stats ws;
	watch_get_stats(c->watch, &ws);
	counter(sb, "ms_coord_fleet_triggers_total", "Fleet triggers raised by the correlator.", cs.triggers);
	counter(sb, "ms_coord_fleet_extends_total", "Fleet triggers extended while their signals went on.", cs.extends);
	counter(sb, "ms_coord_fleet_clears_total", "Fleet triggers cleared (group sent back to automatic mode).", cs.clears);
	head(sb, "ms_coord_fleet_suppressed_total", "counter", "Fleet triggers suppressed, by reason (rate limit, cap on the fleet in diagnostic).");
	strbuf_appendf(sb, "ms_coord_fleet_suppressed_total{reason=\"rate\"} %" PRIu64 "\n", cs.suppressed_rate);
	strbuf_appendf(sb, "ms_coord_fleet_suppressed_total{reason=\"cap\"} %" PRIu64 "\n", cs.suppressed_cap);
	head(sb, "ms_coord_fleet_groups_diagnostic", "gauge", "Groups with a fleet trigger not yet cleared.");
	strbuf_appendf(sb, "ms_coord_fleet_groups_diagnostic %" PRIu32 "\n", cs.groups_in_diagnostic);
	head(sb, "ms_coord_fleet_hosts_diagnostic", "gauge", "Agents the correlator holds in diagnostic (trigger TTL not over).");
	strbuf_appendf(sb, "ms_coord_fleet_hosts_diagnostic %" PRIu32 "\n", cs.hosts_in_diagnostic);
	counter(sb, "ms_coord_fleet_signals_total", "Per-host signals given to the correlator (anomalies, mode escalations).", cs.signals);
	head(sb, "ms_coord_fleet_signals_dropped_total", "counter", "Signals the correlator could not use, by reason.");
	strbuf_appendf(sb, "ms_coord_fleet_signals_dropped_total{reason=\"unknown_host\"} %" PRIu64 "\n", cs.unknown_host);
	strbuf_appendf(sb, "ms_coord_fleet_signals_dropped_total{reason=\"key_limit\"} %" PRIu64 "\n", cs.key_drops);
	struct costdev_stats cds = { 0 };
	if (c->cost)
		costdev_stats(c->cost, &cds);
	counter(sb, "ms_coord_fleet_cost_deviations_total",
		"(function, event) cost shares of a window far above that host's baseline (signals, when correlator_cost_signals is on).",
		cds.deviations);
	head(sb, "ms_coord_fleet_events_total", "counter", "Fleet events recorded, by kind.");
	for (size_t k = 0; k < NKINDS; k++)
		strbuf_appendf(sb, "ms_coord_fleet_events_total{kind=\"%s\"} %" PRIu64 "\n", kinds[k],
			       (uint64_t)atomic_load(&c->by_kind[k]));
	counter(sb, "ms_coord_fleet_events_stored_total", "Fleet events handed to ClickHouse (ms_fleet_events; inserted or spooled).",
		atomic_load(&c->stored));
	counter(sb, "ms_coord_fleet_events_store_failed_total", "Fleet events ClickHouse storage refused (writer at its memory bound).",
		atomic_load(&c->store_failed));
	counter(sb, "ms_coord_fleet_event_watch_drops_total", "Fleet events a WatchEvents client missed (its queue was full).",
		evlog_watch_drops(c->events));
	head(sb, "ms_coord_fleet_commands_pending", "gauge", "Commands kept for agents that are not connected.");
	strbuf_appendf(sb, "ms_coord_fleet_commands_pending %" PRIu64 "\n", ws.pending);
	head(sb, "ms_coord_fleet_pending_commands_total", "counter", "Commands for agents that were not connected, by outcome.");
	const char *out[] = { "kept", "delivered", "expired", "refused" };
	uint64_t v[] = { ws.pended, ws.delivered, ws.expired, ws.refused };
	for (int i = 0; i < 4; i++)
		strbuf_appendf(sb, "ms_coord_fleet_pending_commands_total{outcome=\"%s\"} %" PRIu64 "\n", out[i], v[i]);
	return 0;
}

static void *ticker(void *arg)
{
	struct ctlplane *c = arg;
	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += c->tick_ms / 1000;
		ts.tv_nsec += (long)(c->tick_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		if (c->stop)
			break;
		pthread_mutex_unlock(&c->mu);
		sync_hosts(c);
		watch_sweep(c->watch);
		struct correlator_decision *d = NULL;
		size_t n = 0;
		if (correlator_tick(c->corr, mono_ms(), &d, &n) == 0) {
			for (size_t i = 0; i < n; i++)
				apply(c, &d[i]);
			correlator_decisions_free(d, n);
		}
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* An agent repeats a signal in every window it is in force in, with the time it fired: the
 * anomaly log takes each (agent, interface, metric, kind, fire time) once. A direct-mapped table
 * of episode hashes, lock-free: a collision or a race logs an episode twice, never loses one
 * that was not seen. Cost: one FNV-1a hash per signal. */
static bool new_episode(struct ctlplane *c, const char *agent, const struct wire_anomaly *a)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *parts[3] = { agent, a->ifname, a->metric };
	for (int p = 0; p < 3; p++)
		for (const char *q = parts[p]; ; q++) {
			h = (h ^ (uint8_t)*q) * 0x100000001b3ULL;
			if (!*q)
				break;
		}
	uint64_t tail[2] = { a->kind, a->ts_ns };
	for (int k = 0; k < 2; k++)
		for (int b = 0; b < 8; b++)
			h = (h ^ ((tail[k] >> (8 * b)) & 0xff)) * 0x100000001b3ULL;
	h |= 1; /* 0 marks an empty slot */
	return atomic_exchange(&c->episodes[h % CTLPLANE_EPISODES], h) != h;
}

struct cost_emit {
	struct ctlplane *c;
	const char *agent;
	uint64_t now;
};

static void on_cost_deviation(void *arg, const char *key)
{
	struct cost_emit *e = arg;
	correlator_signal(e->c->corr, e->agent, key, e->now);
}

void ctlplane_window(struct ctlplane *c, const struct wire_window *w)
{
	if (!c)
		return;
	uint64_t now = mono_ms();
	if (c->cost) {
		struct cost_emit e = { c, w->agent_id, now };
		costdev_window(c->cost, w, on_cost_deviation, &e);
	}
	/* a pin of ours (or an operator's push) explains diagnostic: only the agent's own escalation
	 * counts, and after a pin ends only once the agent was back in sentinel */
	if (c->mode_signals && watch_own_diagnostic(c->watch, w->agent_id, w->mode))
		correlator_signal(c->corr, w->agent_id, CTLPLANE_MODE_KEY, now);
	for (uint32_t i = 0; i < w->nanomalies; i++) {
		const struct wire_anomaly *a = &w->anomalies[i];
		/* hosts of a group must agree on the key although their interfaces are named
		 * differently (eth0, ens5, bond0): the key is metric and kind; the ifname stays in
		 * the anomaly log entry (and in ms_anomalies) */
		static const char *const akinds[] = { "unspecified", "drop", "spike", "stop", "latency" };
		char key[CORRELATOR_KEY_MAX];
		if (a->kind < sizeof(akinds) / sizeof(akinds[0]))
			snprintf(key, sizeof(key), "anomaly:%.31s:%s", a->metric, akinds[a->kind]);
		else
			snprintf(key, sizeof(key), "anomaly:%.31s:%u", a->metric, a->kind);
		/* a host the ticker has not synced yet counts from its next window on */
		correlator_signal(c->corr, w->agent_id, key, now);
		if (!new_episode(c, w->agent_id, a))
			continue;
		Ms__V1__AnomalySignal sig = MS__V1__ANOMALY_SIGNAL__INIT;
		sig.ifname = (char *)a->ifname;
		sig.ifindex = a->ifindex;
		sig.kind = (Ms__V1__AnomalyKind)a->kind;
		sig.metric = (char *)a->metric;
		sig.value = a->value;
		sig.baseline = a->baseline;
		sig.ts_ns = a->ts_ns;
		Ms__V1__FleetAnomaly fa = MS__V1__FLEET_ANOMALY__INIT;
		fa.agent_id = (char *)w->agent_id;
		fa.signal = &sig;
		uint8_t buf[512];
		size_t n = ms__v1__fleet_anomaly__get_packed_size(&fa);
		if (n <= sizeof(buf)) {
			ms__v1__fleet_anomaly__pack(&fa, buf);
			evlog_add(c->anomalies, a->ts_ns, buf, n);
		}
	}
}

int ctlplane_new(const struct ctlplane_opts *o, struct ctlplane **ret)
{
	struct ctlplane *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->reg = o->reg;
	snprintf(c->group_label, sizeof(c->group_label), "%s", o->group_label && o->group_label[0] ? o->group_label : "role");
	c->tick_ms = o->tick_ms ? o->tick_ms : 1000;
	c->diag_ttl_ms = o->corr.diag_ttl_ms ? o->corr.diag_ttl_ms : 60000;
	snprintf(c->coordinator, sizeof(c->coordinator), "%016" PRIx64, o->coordinator_id);
	c->store = o->store_event;
	c->store_arg = o->store_arg;
	c->mode_signals = o->mode_signals;
	int r;
	if ((o->cost_signals && (r = costdev_new(&o->cost, &c->cost)) < 0) ||
	    (r = evlog_new(CTLPLANE_EVENTS, &c->events)) < 0 || (r = evlog_new(CTLPLANE_ANOMALIES, &c->anomalies)) < 0 ||
	    (r = watch_new(o->max_agents ? o->max_agents : 10000, opapi_on_watch_event, c->events, &c->watch)) < 0 ||
	    (r = correlator_new(&o->corr, &c->corr)) < 0)
		goto fail;
	evlog_set_tap(c->events, on_event, c);
	watch_set_pending(c->watch, o->pending_ms);
	struct opapi_opts ao = { .reg = o->reg, .watch = c->watch, .events = c->events, .anomalies = c->anomalies,
				 .ingest = o->ingest, .corr = c->corr };
	if ((r = opapi_new(&ao, &c->api)) < 0)
		goto fail;
	struct rpc_method m[OPAPI_NMETHODS + 2];
	opapi_methods(c->api, m);
	watch_methods(c->watch, &m[OPAPI_NMETHODS]);
	struct rpc_server_opts so = {
		.address = o->address,
		.port = o->port,
		.token = o->token,
		.tls_cert_file = o->tls_cert_file,
		.tls_key_file = o->tls_key_file,
		.tls_ca_file = o->tls_ca_file,
		.methods = m,
		.nmethods = OPAPI_NMETHODS + 2,
	};
	if ((r = rpc_server_new(&so, &c->srv)) < 0)
		goto fail;
	if (pthread_create(&c->thr, NULL, ticker, c) != 0) {
		r = -EAGAIN;
		goto fail;
	}
	c->thr_started = true;
	*ret = c;
	return 0;
fail:
	ctlplane_free(c);
	return r;
}

uint16_t ctlplane_port(const struct ctlplane *c)
{
	return rpc_server_port(c->srv);
}

struct watch *ctlplane_watch(struct ctlplane *c)
{
	return c->watch;
}

struct evlog *ctlplane_events(struct ctlplane *c)
{
	return c->events;
}

struct evlog *ctlplane_anomalies(struct ctlplane *c)
{
	return c->anomalies;
}

void ctlplane_stop(struct ctlplane *c)
{
	if (!c)
		return;
	if (c->thr_started) {
		pthread_mutex_lock(&c->mu);
		c->stop = true;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->thr, NULL);
		c->thr_started = false;
	}
	c->srv = rpc_server_free(c->srv); /* its callbacks use everything below */
}

struct ctlplane *ctlplane_free(struct ctlplane *c)
{
	if (!c)
		return NULL;
	ctlplane_stop(c);
	opapi_free(c->api);
	watch_free(c->watch);
	correlator_free(c->corr);
	costdev_free(c->cost);
	evlog_free(c->events);
	evlog_free(c->anomalies);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
	return NULL;
}
