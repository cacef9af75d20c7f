/* opapi: see opapi.h. Replies that list agents are written one AgentInfo at a time (packed
 * and appended as field 1) so a list of the whole fleet never holds every registry entry
 * (~20 KiB each with its capability) at once. */
#include "opapi.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "correlator.h"
#include "evlog.h"
#include "fleet.pb-c.h"
#include "ingest.h"
#include "registry.h"
#include "watch.h"

#define MAX_HOSTS 1000
#define MAX_TARGETS 64
#define MAX_PMU_GROUPS 16
#define MAX_PMU_EVENTS 8
#define MAX_BUDGET 10000000ull      /* samples per second per CPU */
#define MAX_HARD_DROP_NS 1000000000ull

struct opapi {
	struct opapi_opts o;
	atomic_uint_fast64_t next_id;
};

/* One agent as both sources know it. */
struct view {
	char id[WIRE_ID_MAX];
	bool in_reg, in_watch;
	struct registry_agent ra;
	struct watch_agent wa;
};

static uint64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

__attribute__((format(printf, 3, 4))) static void fail(struct rpc_reply *rep, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rep->code = code;
	vsnprintf(rep->detail, sizeof(rep->detail), fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------- events */

int opapi_fleet_event(struct evlog *events, const char *kind, const char *group, const char *const *agents,
		      uint32_t nagents, const char *detail, uint64_t command_id)
{
	if (!events)
		return 0;
	Ms__V1__FleetEvent ev = MS__V1__FLEET_EVENT__INIT;
	ev.ts_ns = real_ns();
	ev.kind = (char *)kind;
	ev.group = (char *)(group ? group : "");
	ev.agents = (char **)agents;
	ev.n_agents = nagents;
	ev.detail = (char *)(detail ? detail : "");
	ev.command_id = command_id;
	size_t n = ms__v1__fleet_event__get_packed_size(&ev);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	ms__v1__fleet_event__pack(&ev, buf);
	int r = evlog_add(events, ev.ts_ns, buf, n);
	free(buf);
	return r;
}

void opapi_on_watch_event(void *arg, const char *kind, const char *agent_id, const char *detail, uint64_t command_id)
{
	const char *agents[1] = { agent_id };
	opapi_fleet_event(arg, kind, "", agents, 1, detail, command_id);
}

/* ---------------------------------------------------------------- agents */

static bool lookup(struct opapi *a, const char *id, struct view *v)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->id, sizeof(v->id), "%s", id);
	v->in_watch = a->o.watch && watch_get(a->o.watch, id, &v->wa) == 0;
	if (a->o.reg) {
		uint32_t n = registry_count(a->o.reg);
		for (uint32_t i = 0; i < n && !v->in_reg; i++) {
			if (registry_get(a->o.reg, i, mono_ms(), &v->ra) == 0 && strcmp(v->ra.hello.agent_id, id) == 0)
				v->in_reg = true;
		}
	}
	return v->in_reg || v->in_watch;
}

/* Calls fn for every agent once: watchers first, then registry-only agents. */
static int for_each(struct opapi *a, int (*fn)(void *ctx, struct view *v), void *ctx)
{
	struct view *v = malloc(sizeof(*v));
	if (!v)
		return -ENOMEM;
	int r = 0;
	uint32_t nw = a->o.watch ? watch_count(a->o.watch) : 0;
	for (uint32_t i = 0; i < nw && r == 0; i++) {
		memset(v, 0, sizeof(*v));
		if (watch_get_at(a->o.watch, i, &v->wa) < 0)
			break;
		v->in_watch = true;
		snprintf(v->id, sizeof(v->id), "%s", v->wa.agent_id);
		uint32_t nr = a->o.reg ? registry_count(a->o.reg) : 0;
		for (uint32_t k = 0; k < nr && !v->in_reg; k++)
			if (registry_get(a->o.reg, k, mono_ms(), &v->ra) == 0 && strcmp(v->ra.hello.agent_id, v->id) == 0)
				v->in_reg = true;
		r = fn(ctx, v);
	}
	uint32_t nr = a->o.reg ? registry_count(a->o.reg) : 0;
	for (uint32_t i = 0; i < nr && r == 0; i++) {
		memset(v, 0, sizeof(*v));
		if (registry_get(a->o.reg, i, mono_ms(), &v->ra) < 0)
			break;
		if (a->o.watch && watch_get(a->o.watch, v->ra.hello.agent_id, &v->wa) == 0)
			continue; /* listed above */
		v->in_reg = true;
		snprintf(v->id, sizeof(v->id), "%s", v->ra.hello.agent_id);
		r = fn(ctx, v);
	}
	free(v);
	return r;
}

static void labels_of(const struct view *v, const struct wire_label **ret, uint32_t *n)
{
	if (v->in_reg && v->ra.hello.nlabels) {
		*ret = v->ra.hello.labels;
		*n = v->ra.hello.nlabels;
	} else {
		*ret = v->wa.labels;
		*n = v->in_watch ? v->wa.nlabels : 0;
	}
}

/* Validates a selector; required: an empty one is an error (else it means all). */
static bool selector_valid(const Ms__V1__Selector *s, bool required, struct rpc_reply *rep)
{
	int kinds = (s && s->all) + (s && s->n_hosts > 0) + (s && s->n_labels > 0);
	if (kinds > 1 || (required && kinds == 0)) {
		fail(rep, RPC_INVALID_ARGUMENT, "selector: exactly one of all, hosts or labels%s", "");
		return false;
	}
	if (!s)
		return true;
	if (s->n_hosts > MAX_HOSTS) {
		fail(rep, RPC_INVALID_ARGUMENT, "selector.hosts: at most 1000%s", "");
		return false;
	}
	for (size_t i = 0; i < s->n_hosts; i++) {
		if (!wire_valid_agent_id(s->hosts[i])) {
			fail(rep, RPC_INVALID_ARGUMENT, "selector.hosts: invalid agent id '%.100s'", s->hosts[i]);
			return false;
		}
	}
	if (s->n_labels > WIRE_MAX_LABELS) {
		fail(rep, RPC_INVALID_ARGUMENT, "selector.labels: at most 32%s", "");
		return false;
	}
	for (size_t i = 0; i < s->n_labels; i++) {
		const Ms__V1__Label *l = s->labels[i];
		if (!l->key[0] || strlen(l->key) >= 64 || strlen(l->value) >= 128) {
			fail(rep, RPC_INVALID_ARGUMENT, "selector.labels: key 1..63 bytes, value up to 127 bytes%s", "");
			return false;
		}
	}
	return true;
}

static bool selector_match(const Ms__V1__Selector *s, const struct view *v)
{
	if (!s || s->all || (!s->n_hosts && !s->n_labels))
		return true;
	if (s->n_hosts) {
		for (size_t i = 0; i < s->n_hosts; i++)
			if (strcmp(s->hosts[i], v->id) == 0)
				return true;
		return false;
	}
	const struct wire_label *ls;
	uint32_t n;
	labels_of(v, &ls, &n);
	for (size_t i = 0; i < s->n_labels; i++) {
		bool hit = false;
		for (uint32_t k = 0; k < n && !hit; k++)
			hit = strcmp(ls[k].key, s->labels[i]->key) == 0 && strcmp(ls[k].value, s->labels[i]->value) == 0;
		if (!hit)
			return false;
	}
	return true;
}

/* Packs an AgentInfo for v into a malloc'd buffer. */
static int pack_info(const struct view *v, uint8_t **ret, size_t *ret_len)
{
	Ms__V1__AgentInfo ai = MS__V1__AGENT_INFO__INIT;
	Ms__V1__Capability cap = MS__V1__CAPABILITY__INIT;
	Ms__V1__Label lab[WIRE_MAX_LABELS], *labp[WIRE_MAX_LABELS];
	Ms__V1__EventCapability ev[WIRE_MAX_EVENTS], *evp[WIRE_MAX_EVENTS];
	const struct wire_label *ls;
	uint32_t nl;
	labels_of(v, &ls, &nl);
	for (uint32_t i = 0; i < nl; i++) {
		ms__v1__label__init(&lab[i]);
		lab[i].key = (char *)ls[i].key;
		lab[i].value = (char *)ls[i].value;
		labp[i] = &lab[i];
	}
	ai.agent_id = (char *)v->id;
	ai.labels = labp;
	ai.n_labels = nl;
	if (v->in_reg) {
		const struct wire_hello *h = &v->ra.hello;
		ai.host = (char *)h->host;
		ai.version = (char *)h->version;
		ai.control_endpoint = (char *)h->control_endpoint;
		for (uint32_t i = 0; i < h->nevents && i < WIRE_MAX_EVENTS; i++) {
			ms__v1__event_capability__init(&ev[i]);
			ev[i].name = (char *)h->events[i].name;
			ev[i].source = h->events[i].source ? MS__V1__EVENT_SOURCE__SOURCE_SW : MS__V1__EVENT_SOURCE__SOURCE_HW;
			ev[i].live = h->events[i].live;
			ev[i].reason = (char *)h->events[i].reason;
			evp[i] = &ev[i];
		}
		cap.events = evp;
		cap.n_events = h->nevents;
		cap.hook_tier = (char *)h->hook_tier;
		cap.synthetic = h->synthetic;
		cap.kernel = (char *)h->kernel;
		cap.ncpu = h->ncpu;
		ai.capability = &cap;
		ai.state = v->ra.state == REGISTRY_LIVE ? "live" : "stale";
		ai.mode = v->ra.mode ? MS__V1__MODE__MODE_DIAGNOSTIC : MS__V1__MODE__MODE_SENTINEL;
		ai.last_seq = v->ra.last_seq;
		ai.lag_ms = v->ra.lag_ms;
		ai.windows_accepted = v->ra.windows;
		ai.spool_windows = v->ra.spool_windows;
		uint64_t now = mono_ms();
		ai.last_seen_ns = real_ns() - (now > v->ra.last_seen_ms ? now - v->ra.last_seen_ms : 0) * 1000000u;
	} else {
		ai.host = (char *)v->wa.host;
		ai.version = (char *)v->wa.version;
		ai.state = v->wa.connected ? "live" : "stale";
		ai.last_seen_ns = v->wa.last_change_ns;
	}
	if (v->in_watch) {
		ai.watching = v->wa.connected;
		ai.pin = (Ms__V1__ModeRequest)v->wa.pin;
		ai.pin_expires_ns = v->wa.pin_expires_ns;
		if (!v->in_reg && v->wa.pin) /* no windows to tell the mode: the pin says it */
			ai.mode = v->wa.pin == MS__V1__MODE_REQUEST__MODE_REQUEST_DIAGNOSTIC ? MS__V1__MODE__MODE_DIAGNOSTIC
											 : MS__V1__MODE__MODE_SENTINEL;
	}
	size_t n = ms__v1__agent_info__get_packed_size(&ai);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	ms__v1__agent_info__pack(&ai, buf);
	*ret = buf;
	*ret_len = n;
	return 0;
}

struct listctx {
	const Ms__V1__Selector *sel;
	uint8_t *out;
	size_t len, cap;
};

static int list_one(void *c, struct view *v)
{
	struct listctx *l = c;
	if (!selector_match(l->sel, v))
		return 0;
	uint8_t *b;
	size_t n;
	if (pack_info(v, &b, &n) < 0)
		return -ENOMEM;
	if (l->len + n + 11 > l->cap) {
		size_t nc = (l->cap + n + 11) * 2;
		uint8_t *p = realloc(l->out, nc);
		if (!p) {
			free(b);
			return -ENOMEM;
		}
		l->out = p;
		l->cap = nc;
	}
	l->out[l->len++] = 0x0a;
	uint64_t x = n;
	do {
		l->out[l->len] = (uint8_t)(x & 0x7f);
		x >>= 7;
		if (x)
			l->out[l->len] |= 0x80;
		l->len++;
	} while (x);
	memcpy(l->out + l->len, b, n);
	l->len += n;
	free(b);
	return 0;
}

static void on_list_agents(void *arg, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	struct opapi *a = arg;
	Ms__V1__ListAgentsRequest *r = ms__v1__list_agents_request__unpack(NULL, len, req);
	if (!r) {
		fail(rep, RPC_INVALID_ARGUMENT, "ListAgentsRequest: not a valid protobuf message%s", "");
		return;
	}
	if (selector_valid(r->selector, false, rep)) {
		struct listctx l = { .sel = r->selector };
		if (for_each(a, list_one, &l) < 0) {
			free(l.out);
			fail(rep, RPC_RESOURCE_EXHAUSTED, "out of memory%s", "");
		} else {
			rep->buf = l.out;
			rep->len = l.len;
		}
	}
	ms__v1__list_agents_request__free_unpacked(r, NULL);
}

static void on_describe(void *arg, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	struct opapi *a = arg;
	Ms__V1__DescribeAgentRequest *r = ms__v1__describe_agent_request__unpack(NULL, len, req);
	if (!r) {
		fail(rep, RPC_INVALID_ARGUMENT, "DescribeAgentRequest: not a valid protobuf message%s", "");
		return;
	}
	struct view *v = malloc(sizeof(*v));
	if (!wire_valid_agent_id(r->agent_id))
		fail(rep, RPC_INVALID_ARGUMENT, "agent_id: 1..127 printable bytes without space, quote or backslash%s", "");
	else if (!v)
		fail(rep, RPC_RESOURCE_EXHAUSTED, "out of memory%s", "");
	else if (!lookup(a, r->agent_id, v))
		fail(rep, RPC_NOT_FOUND, "unknown agent '%.100s'", r->agent_id);
	else if (pack_info(v, &rep->buf, &rep->len) < 0)
		fail(rep, RPC_RESOURCE_EXHAUSTED, "out of memory%s", "");
	free(v);
	ms__v1__describe_agent_request__free_unpacked(r, NULL);
}

/* ---------------------------------------------------------------- commands */

struct pushctx {
	struct opapi *a;
	const Ms__V1__Selector *sel;
	const Ms__V1__Command *cmd;
	char **queued;
	uint32_t nqueued, matched;
	char missing[160];
};

static int push_one(void *c, struct view *v)
{
	struct pushctx *p = c;
	if (!selector_match(p->sel, v))
		return 0;
	p->matched++;
	int r = watch_push(p->a->o.watch, v->id, p->cmd);
	if (r == 0) {
		char **q = realloc(p->queued, (p->nqueued + 1) * sizeof(*q));
		if (!q)
			return -ENOMEM;
		p->queued = q;
		if (!(q[p->nqueued] = strdup(v->id)))
			return -ENOMEM;
		p->nqueued++;
	} else {
		size_t l = strlen(p->missing);
		if (l + strlen(v->id) + 2 < sizeof(p->missing))
			snprintf(p->missing + l, sizeof(p->missing) - l, "%s%s", l ? "," : "", v->id);
	}
	return 0;
}

static const char *mode_name(int m)
{
	return m == 1 ? "sentinel" : m == 2 ? "diagnostic" : m == 3 ? "auto" : "?";
}

/* Resolves the selector, pushes, answers CommandReply and records the fleet event. */
static void issue(struct opapi *a, const Ms__V1__Selector *sel, Ms__V1__Command *cmd, const char *kind,
		  const char *what, struct rpc_reply *rep)
{
	cmd->id = opapi_next_id(a);
	struct view *v = malloc(sizeof(*v));
	if (!v) {
		fail(rep, RPC_RESOURCE_EXHAUSTED, "out of memory%s", "");
		return;
	}
	for (size_t i = 0; sel->n_hosts && i < sel->n_hosts; i++) {
		if (!lookup(a, sel->hosts[i], v)) {
			free(v);
			fail(rep, RPC_NOT_FOUND, "unknown agent '%.100s'", sel->hosts[i]);
			return;
		}
	}
	free(v);
	struct pushctx p = { .a = a, .sel = sel, .cmd = cmd };
	int r = for_each(a, push_one, &p);
	if (r < 0) {
		fail(rep, RPC_RESOURCE_EXHAUSTED, "out of memory%s", "");
	} else if (!p.matched) {
		fail(rep, RPC_NOT_FOUND, "no agent matches the selector%s", "");
	} else if (!p.nqueued) {
		fail(rep, RPC_UNAVAILABLE, "no matching agent is connected (Watch): %s", p.missing);
	} else {
		char detail[512];
		snprintf(detail, sizeof(detail), "%s ttl_ms=%llu reason=%.200s%s%s", what, (unsigned long long)cmd->ttl_ms,
			 cmd->reason, p.missing[0] ? " not_connected=" : "", p.missing);
		opapi_fleet_event(a->o.events, kind, "", (const char *const *)p.queued, p.nqueued, detail, cmd->id);
		Ms__V1__CommandReply cr = MS__V1__COMMAND_REPLY__INIT;
		cr.command_id = cmd->id;
		cr.agents = p.queued;
		cr.n_agents = p.nqueued;
		rep->len = ms__v1__command_reply__get_packed_size(&cr);
		rep->buf = malloc(rep->len ? rep->len : 1);
		if (rep->buf)
			ms__v1__command_reply__pack(&cr, rep->buf);
		else
			fail(rep, RPC_RESOURCE_EXHAUSTED, "out of memory%s", "");
	}
	for (uint32_t i = 0; i < p.nqueued; i++)
		free(p.queued[i]);
	free(p.queued);
}

static bool ttl_reason_valid(uint64_t ttl_ms, const char *reason, struct rpc_reply *rep)
{
	if (ttl_ms > OPAPI_MAX_TTL_MS) {
		fail(rep, RPC_INVALID_ARGUMENT, "ttl_ms: at most 7 days%s", "");
		return false;
	}
	if (strlen(reason) > 256) {
		fail(rep, RPC_INVALID_ARGUMENT, "reason: at most 256 bytes%s", "");
		return false;
	}
	return true;
}

static void on_set_mode(void *arg, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	Ms__V1__SetModeRequest *r = ms__v1__set_mode_request__unpack(NULL, len, req);
	if (!r) {
		fail(rep, RPC_INVALID_ARGUMENT, "SetModeRequest: not a valid protobuf message%s", "");
		return;
	}
	if (r->mode < MS__V1__MODE_REQUEST__MODE_REQUEST_SENTINEL || r->mode > MS__V1__MODE_REQUEST__MODE_REQUEST_AUTO)
		fail(rep, RPC_INVALID_ARGUMENT, "mode: sentinel, diagnostic or auto%s", "");
	else if (r->mode == MS__V1__MODE_REQUEST__MODE_REQUEST_AUTO && r->ttl_ms)
		fail(rep, RPC_INVALID_ARGUMENT, "ttl_ms: auto clears the pin and takes no TTL%s", "");
	else if (selector_valid(r->selector, true, rep) && ttl_reason_valid(r->ttl_ms, r->reason, rep)) {
		Ms__V1__Command c = MS__V1__COMMAND__INIT;
		c.ttl_ms = r->ttl_ms;
		c.reason = r->reason;
		c.body_case = MS__V1__COMMAND__BODY_MODE;
		c.mode = r->mode;
		char what[32];
		snprintf(what, sizeof(what), "mode=%s", mode_name(r->mode));
		issue(arg, r->selector, &c, "mode_set", what, rep);
	}
	ms__v1__set_mode_request__free_unpacked(r, NULL);
}

static void on_set_budget(void *arg, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	Ms__V1__SetBudgetRequest *r = ms__v1__set_budget_request__unpack(NULL, len, req);
	if (!r) {
		fail(rep, RPC_INVALID_ARGUMENT, "SetBudgetRequest: not a valid protobuf message%s", "");
		return;
	}
	const Ms__V1__Budgets *b = r->budgets;
	if (!b || (!b->sentinel_samples_per_sec && !b->diagnostic_samples_per_sec && !b->hard_drop_ns))
		fail(rep, RPC_INVALID_ARGUMENT, "budgets: set at least one of sentinel_samples_per_sec, "
						"diagnostic_samples_per_sec, hard_drop_ns%s", "");
	else if (b->sentinel_samples_per_sec > MAX_BUDGET || b->diagnostic_samples_per_sec > MAX_BUDGET)
		fail(rep, RPC_INVALID_ARGUMENT, "budgets: at most 10000000 samples/s per CPU%s", "");
	else if (b->hard_drop_ns > MAX_HARD_DROP_NS)
		fail(rep, RPC_INVALID_ARGUMENT, "budgets.hard_drop_ns: at most 1000000000%s", "");
	else if (selector_valid(r->selector, true, rep) && ttl_reason_valid(r->ttl_ms, r->reason, rep)) {
		Ms__V1__Command c = MS__V1__COMMAND__INIT;
		c.ttl_ms = r->ttl_ms;
		c.reason = r->reason;
		c.body_case = MS__V1__COMMAND__BODY_BUDGETS;
		c.budgets = r->budgets;
		char what[96];
		snprintf(what, sizeof(what), "budgets=%llu/%llu/%llu", (unsigned long long)b->sentinel_samples_per_sec,
			 (unsigned long long)b->diagnostic_samples_per_sec, (unsigned long long)b->hard_drop_ns);
		issue(arg, r->selector, &c, "budget_set", what, rep);
	}
	ms__v1__set_budget_request__free_unpacked(r, NULL);
}

static bool target_type_valid(const char *t)
{
	static const char *const types[] = { "flow", "pid", "cgroup", "port", "proto", "ifindex" };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(t, types[i]) == 0)
			return true;
	return false;
}

static void on_set_targets(void *arg, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	Ms__V1__SetTargetsRequest *r = ms__v1__set_targets_request__unpack(NULL, len, req);
	if (!r) {
		fail(rep, RPC_INVALID_ARGUMENT, "SetTargetsRequest: not a valid protobuf message%s", "");
		return;
	}
	bool ok = r->n_targets <= MAX_TARGETS;
	if (!ok)
		fail(rep, RPC_INVALID_ARGUMENT, "targets: at most 64%s", "");
	for (size_t i = 0; ok && i < r->n_targets; i++) {
		if (!target_type_valid(r->targets[i]->type)) {
			fail(rep, RPC_INVALID_ARGUMENT, "targets.type '%.40s': flow, pid, cgroup, port, proto or ifindex",
			     r->targets[i]->type);
			ok = false;
		} else if (!r->targets[i]->value[0] || strlen(r->targets[i]->value) > 255) {
			fail(rep, RPC_INVALID_ARGUMENT, "targets.value: 1..255 bytes%s", "");
			ok = false;
		}
	}
	if (ok && selector_valid(r->selector, true, rep) && ttl_reason_valid(0, r->reason, rep)) {
		Ms__V1__TargetList tl = MS__V1__TARGET_LIST__INIT;
		tl.targets = r->targets;
		tl.n_targets = r->n_targets;
		Ms__V1__Command c = MS__V1__COMMAND__INIT;
		c.reason = r->reason;
		c.body_case = MS__V1__COMMAND__BODY_TARGETS;
		c.targets = &tl;
		char what[32];
		snprintf(what, sizeof(what), "targets=%zu", r->n_targets);
		issue(arg, r->selector, &c, "targets_set", what, rep);
	}
	ms__v1__set_targets_request__free_unpacked(r, NULL);
}

static bool groups_valid(Ms__V1__PmuGroup **g, size_t n, struct rpc_reply *rep)
{
	if (n > MAX_PMU_GROUPS) {
		fail(rep, RPC_INVALID_ARGUMENT, "pmu: at most 16 groups per mode%s", "");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (!g[i]->n_events || g[i]->n_events > MAX_PMU_EVENTS) {
			fail(rep, RPC_INVALID_ARGUMENT, "pmu: 1..8 events per group%s", "");
			return false;
		}
		for (size_t k = 0; k < g[i]->n_events; k++) {
			if (!g[i]->events[k][0] || strlen(g[i]->events[k]) > 63) {
				fail(rep, RPC_INVALID_ARGUMENT, "pmu: event names 1..63 bytes%s", "");
				return false;
			}
		}
	}
	return true;
}

static void on_set_pmu(void *arg, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	Ms__V1__SetPmuConfigRequest *r = ms__v1__set_pmu_config_request__unpack(NULL, len, req);
	if (!r) {
		fail(rep, RPC_INVALID_ARGUMENT, "SetPmuConfigRequest: not a valid protobuf message%s", "");
		return;
	}
	if (!r->pmu || (!r->pmu->n_sentinel && !r->pmu->n_diagnostic))
		fail(rep, RPC_INVALID_ARGUMENT, "pmu: give groups for sentinel, diagnostic or both%s", "");
	else if (groups_valid(r->pmu->sentinel, r->pmu->n_sentinel, rep) &&
		 groups_valid(r->pmu->diagnostic, r->pmu->n_diagnostic, rep) && selector_valid(r->selector, true, rep) &&
		 ttl_reason_valid(0, r->reason, rep)) {
		Ms__V1__Command c = MS__V1__COMMAND__INIT;
		c.reason = r->reason;
		c.body_case = MS__V1__COMMAND__BODY_PMU;
		c.pmu = r->pmu;
		char what[64];
		snprintf(what, sizeof(what), "pmu=%zu/%zu groups", r->pmu->n_sentinel, r->pmu->n_diagnostic);
		issue(arg, r->selector, &c, "pmu_set", what, rep);
	}
	ms__v1__set_pmu_config_request__free_unpacked(r, NULL);
}

/* ---------------------------------------------------------------- status */

struct countctx {
	uint32_t live, stale, diag;
};

static int count_one(void *c, struct view *v)
{
	struct countctx *k = c;
	bool live = v->in_reg ? v->ra.state == REGISTRY_LIVE : v->wa.connected;
	if (live)
		k->live++;
	else
		k->stale++;
	if ((v->in_reg && v->ra.mode) || (!v->in_reg && v->wa.pin == MS__V1__MODE_REQUEST__MODE_REQUEST_DIAGNOSTIC))
		k->diag++;
	return 0;
}

static void on_status(void *arg, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	struct opapi *a = arg;
	Ms__V1__FleetStatusRequest *r = ms__v1__fleet_status_request__unpack(NULL, len, req);
	if (!r) {
		fail(rep, RPC_INVALID_ARGUMENT, "FleetStatusRequest: not a valid protobuf message%s", "");
		return;
	}
	ms__v1__fleet_status_request__free_unpacked(r, NULL);
	struct countctx k = { 0 };
	for_each(a, count_one, &k);
	Ms__V1__FleetStatus st = MS__V1__FLEET_STATUS__INIT;
	st.agents_live = k.live;
	st.agents_stale = k.stale;
	st.agents_diagnostic = k.diag;
	if (a->o.ingest) {
		struct ingest_stats is;
		ingest_stats(a->o.ingest, &is);
		st.windows_accepted = is.accepted;
		st.windows_duplicate = is.duplicate;
		for (int i = 0; i < INGEST_R__N; i++)
			st.windows_rejected += is.rejected[i];
	}
	if (a->o.corr) {
		struct correlator_stats cs;
		correlator_get_stats(a->o.corr, mono_ms(), &cs);
		st.fleet_triggers = cs.triggers;
	}
	rep->len = ms__v1__fleet_status__get_packed_size(&st);
	rep->buf = malloc(rep->len ? rep->len : 1);
	if (rep->buf)
		ms__v1__fleet_status__pack(&st, rep->buf);
	else
		fail(rep, RPC_RESOURCE_EXHAUSTED, "out of memory%s", "");
}

/* ---------------------------------------------------------------- lifecycle */

int opapi_new(const struct opapi_opts *o, struct opapi **ret)
{
	if (!o || !o->watch || !o->events || !o->anomalies)
		return -EINVAL;
	struct opapi *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->o = *o;
	/* ids unique across restarts: start from the wall clock in ms, shifted to leave room */
	atomic_init(&a->next_id, (real_ns() / 1000000u) << 12);
	*ret = a;
	return 0;
}

uint64_t opapi_next_id(struct opapi *a)
{
	return atomic_fetch_add(&a->next_id, 1);
}

struct opapi *opapi_free(struct opapi *a)
{
	free(a);
	return NULL;
}

void opapi_methods(struct opapi *a, struct rpc_method out[OPAPI_NMETHODS])
{
	out[0] = (struct rpc_method){ .name = "/ms.v1.Coordinator/ListAgents", .unary = on_list_agents, .arg = a };
	out[1] = (struct rpc_method){ .name = "/ms.v1.Coordinator/DescribeAgent", .unary = on_describe, .arg = a };
	out[2] = (struct rpc_method){ .name = "/ms.v1.Coordinator/SetMode", .unary = on_set_mode, .arg = a };
	out[3] = (struct rpc_method){ .name = "/ms.v1.Coordinator/SetBudget", .unary = on_set_budget, .arg = a };
	out[4] = (struct rpc_method){ .name = "/ms.v1.Coordinator/SetTargets", .unary = on_set_targets, .arg = a };
	out[5] = (struct rpc_method){ .name = "/ms.v1.Coordinator/SetPmuConfig", .unary = on_set_pmu, .arg = a };
	out[6] = (struct rpc_method){ .name = "/ms.v1.Coordinator/GetFleetStatus", .unary = on_status, .arg = a };
	evlog_methods(a->o.events, "/ms.v1.Coordinator/ListEvents", "/ms.v1.Coordinator/WatchEvents", &out[7]);
	evlog_methods(a->o.anomalies, "/ms.v1.Coordinator/ListAnomalies", "/ms.v1.Coordinator/WatchAnomalies", &out[9]);
}
