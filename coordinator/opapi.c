/* opapi: the operator API's handlers. See opapi.h; the agent view is in opapi_view.c. */
#include "opapi.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "correlator.h"
#include "evlog.h"
#include "fleet.pb-c.h"
#include "ingest.h"
#include "opapi_int.h"

#define MAX_TARGETS 64
#define MAX_PMU_GROUPS 16
#define MAX_PMU_EVENTS 8
#define MAX_BUDGET 10000000ull      /* samples per second per CPU */
#define MAX_HARD_DROP_NS 1000000000ull

/* ---------------------------------------------------------------- events */

int opapi_fleet_event(struct evlog *events, const char *kind, const char *group, const char *const *agents,
		      uint32_t nagents, const char *detail, uint64_t command_id)
{
	if (!events)
		return 0;
	Ms__V1__FleetEvent ev = MS__V1__FLEET_EVENT__INIT;
	ev.ts_ns = opapi_real_ns();
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

static void on_list_agents(void *arg, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	struct opapi *a = arg;
	Ms__V1__ListAgentsRequest *r = ms__v1__list_agents_request__unpack(NULL, len, req);
	if (!r) {
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "ListAgentsRequest: not a valid protobuf message%s", "");
		return;
	}
	if (opapi_selector_valid(r->selector, false, rep)) {
		struct opapi_listctx l = { .sel = r->selector };
		if (opapi_for_each(a, opapi_list_one, &l) < 0) {
			free(l.out);
			opapi_fail(rep, RPC_RESOURCE_EXHAUSTED, "out of memory%s", "");
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
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "DescribeAgentRequest: not a valid protobuf message%s", "");
		return;
	}
	struct opapi_view *v = malloc(sizeof(*v));
	if (!wire_valid_agent_id(r->agent_id))
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "agent_id: 1..127 printable bytes without space, quote or backslash%s", "");
	else if (!v)
		opapi_fail(rep, RPC_RESOURCE_EXHAUSTED, "out of memory%s", "");
	else if (!opapi_lookup(a, r->agent_id, v))
		opapi_fail(rep, RPC_NOT_FOUND, "unknown agent '%.100s'", r->agent_id);
	else if (opapi_pack_info(v, &rep->buf, &rep->len) < 0)
		opapi_fail(rep, RPC_RESOURCE_EXHAUSTED, "out of memory%s", "");
	free(v);
	ms__v1__describe_agent_request__free_unpacked(r, NULL);
}

/* ---------------------------------------------------------------- commands */

struct pushctx {
	struct opapi *a;
	const Ms__V1__Selector *sel;
	const Ms__V1__Command *cmd;
	char **queued;               /* sent, then pending (kept for the agent's next Watch) */
	uint32_t nqueued, matched, npending;
	char missing[160], pending[160];
};

static int push_one(void *c, struct opapi_view *v)
{
	struct pushctx *p = c;
	if (!opapi_selector_match(p->sel, v))
		return 0;
	p->matched++;
	int r = watch_push(p->a->o.watch, v->id, p->cmd);
	if (r == WATCH_PENDED) {
		p->npending++;
		size_t l = strlen(p->pending);
		if (l + strlen(v->id) + 2 < sizeof(p->pending))
			snprintf(p->pending + l, sizeof(p->pending) - l, "%s%s", l ? "," : "", v->id);
	}
	if (r == 0 || r == WATCH_PENDED) {
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
	struct opapi_view *v = malloc(sizeof(*v));
	if (!v) {
		opapi_fail(rep, RPC_RESOURCE_EXHAUSTED, "out of memory%s", "");
		return;
	}
	for (size_t i = 0; sel->n_hosts && i < sel->n_hosts; i++) {
		if (!opapi_lookup(a, sel->hosts[i], v)) {
			free(v);
			opapi_fail(rep, RPC_NOT_FOUND, "unknown agent '%.100s'", sel->hosts[i]);
			return;
		}
	}
	free(v);
	struct pushctx p = { .a = a, .sel = sel, .cmd = cmd };
	int r = opapi_for_each(a, push_one, &p);
	if (r < 0) {
		opapi_fail(rep, RPC_RESOURCE_EXHAUSTED, "out of memory%s", "");
	} else if (!p.matched) {
		opapi_fail(rep, RPC_NOT_FOUND, "no agent matches the selector%s", "");
	} else if (!p.nqueued) {
		opapi_fail(rep, RPC_UNAVAILABLE, "no matching agent is connected (Watch): %s", p.missing);
	} else {
		char detail[800];
		/* reason goes last: it is free text (the ClickHouse row parses the fields before it) */
		snprintf(detail, sizeof(detail), "%s ttl_ms=%llu%s%s%s%s reason=%.200s", what, (unsigned long long)cmd->ttl_ms,
			 p.missing[0] ? " not_connected=" : "", p.missing, p.pending[0] ? " pending=" : "", p.pending,
			 cmd->reason);
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
			opapi_fail(rep, RPC_RESOURCE_EXHAUSTED, "out of memory%s", "");
	}
	for (uint32_t i = 0; i < p.nqueued; i++)
		free(p.queued[i]);
	free(p.queued);
}

static bool ttl_reason_valid(uint64_t ttl_ms, const char *reason, struct rpc_reply *rep)
{
	if (ttl_ms > OPAPI_MAX_TTL_MS) {
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "ttl_ms: at most 7 days%s", "");
		return false;
	}
	if (strlen(reason) > 256) {
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "reason: at most 256 bytes%s", "");
		return false;
	}
	return true;
}

static void on_set_mode(void *arg, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	Ms__V1__SetModeRequest *r = ms__v1__set_mode_request__unpack(NULL, len, req);
	if (!r) {
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "SetModeRequest: not a valid protobuf message%s", "");
		return;
	}
	if (r->mode < MS__V1__MODE_REQUEST__MODE_REQUEST_SENTINEL || r->mode > MS__V1__MODE_REQUEST__MODE_REQUEST_AUTO)
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "mode: sentinel, diagnostic or auto%s", "");
	else if (r->mode == MS__V1__MODE_REQUEST__MODE_REQUEST_AUTO && r->ttl_ms)
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "ttl_ms: auto clears the pin and takes no TTL%s", "");
	else if (opapi_selector_valid(r->selector, true, rep) && ttl_reason_valid(r->ttl_ms, r->reason, rep)) {
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
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "SetBudgetRequest: not a valid protobuf message%s", "");
		return;
	}
	const Ms__V1__Budgets *b = r->budgets;
	if (!b || (!b->sentinel_samples_per_sec && !b->diagnostic_samples_per_sec && !b->hard_drop_ns))
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "budgets: set at least one of sentinel_samples_per_sec, "
						"diagnostic_samples_per_sec, hard_drop_ns%s", "");
	else if (b->sentinel_samples_per_sec > MAX_BUDGET || b->diagnostic_samples_per_sec > MAX_BUDGET)
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "budgets: at most 10000000 samples/s per CPU%s", "");
	else if (b->hard_drop_ns > MAX_HARD_DROP_NS)
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "budgets.hard_drop_ns: at most 1000000000%s", "");
	else if (opapi_selector_valid(r->selector, true, rep) && ttl_reason_valid(r->ttl_ms, r->reason, rep)) {
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
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "SetTargetsRequest: not a valid protobuf message%s", "");
		return;
	}
	bool ok = r->n_targets <= MAX_TARGETS;
	if (!ok)
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "targets: at most 64%s", "");
	for (size_t i = 0; ok && i < r->n_targets; i++) {
		if (!target_type_valid(r->targets[i]->type)) {
			opapi_fail(rep, RPC_INVALID_ARGUMENT, "targets.type '%.40s': flow, pid, cgroup, port, proto or ifindex",
			     r->targets[i]->type);
			ok = false;
		} else if (!r->targets[i]->value[0] || strlen(r->targets[i]->value) > 255) {
			opapi_fail(rep, RPC_INVALID_ARGUMENT, "targets.value: 1..255 bytes%s", "");
			ok = false;
		}
	}
	if (ok && opapi_selector_valid(r->selector, true, rep) && ttl_reason_valid(0, r->reason, rep)) {
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
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "pmu: at most 16 groups per mode%s", "");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (!g[i]->n_events || g[i]->n_events > MAX_PMU_EVENTS) {
			opapi_fail(rep, RPC_INVALID_ARGUMENT, "pmu: 1..8 events per group%s", "");
			return false;
		}
		for (size_t k = 0; k < g[i]->n_events; k++) {
			if (!g[i]->events[k][0] || strlen(g[i]->events[k]) > 63) {
				opapi_fail(rep, RPC_INVALID_ARGUMENT, "pmu: event names 1..63 bytes%s", "");
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
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "SetPmuConfigRequest: not a valid protobuf message%s", "");
		return;
	}
	if (!r->pmu || (!r->pmu->n_sentinel && !r->pmu->n_diagnostic))
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "pmu: give groups for sentinel, diagnostic or both%s", "");
	else if (groups_valid(r->pmu->sentinel, r->pmu->n_sentinel, rep) &&
		 groups_valid(r->pmu->diagnostic, r->pmu->n_diagnostic, rep) && opapi_selector_valid(r->selector, true, rep) &&
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

static int count_one(void *c, struct opapi_view *v)
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
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "FleetStatusRequest: not a valid protobuf message%s", "");
		return;
	}
	ms__v1__fleet_status_request__free_unpacked(r, NULL);
	struct countctx k = { 0 };
	opapi_for_each(a, count_one, &k);
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
		correlator_get_stats(a->o.corr, opapi_mono_ms(), &cs);
		st.fleet_triggers = cs.triggers;
	}
	rep->len = ms__v1__fleet_status__get_packed_size(&st);
	rep->buf = malloc(rep->len ? rep->len : 1);
	if (rep->buf)
		ms__v1__fleet_status__pack(&st, rep->buf);
	else
		opapi_fail(rep, RPC_RESOURCE_EXHAUSTED, "out of memory%s", "");
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
	atomic_init(&a->next_id, (opapi_real_ns() / 1000000u) << 12);
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
