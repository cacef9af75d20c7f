/* Correlation end to end inside the control plane: four simulated agents (lb-1..lb-3 with
 * role=lb, db-1 with role=db) keep real Watch streams open over loopback; windows carrying the
 * same anomaly from two lb hosts make the correlator trigger — every lb agent receives a
 * diagnostic command with the TTL, db-1 nothing — and when the windows stop the group is sent
 * back (auto). Each decision is a fleet event; fleet status counts the trigger. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chrows.h"
#include "ctlplane.h"
#include "evlog.h"
#include "fleet.pb-c.h"
#include "rpc.h"
#include "wire.h"

struct sim {
	const char *id, *role;
	struct rpc_cstream *s;
};

static void open_watch(struct rpc_client *cli, struct sim *a)
{
	Ms__V1__Label l = MS__V1__LABEL__INIT, *lp = &l;
	l.key = "role";
	l.value = (char *)a->role;
	Ms__V1__WatchRequest wr = MS__V1__WATCH_REQUEST__INIT;
	wr.agent_id = (char *)a->id;
	wr.labels = &lp;
	wr.n_labels = 1;
	uint8_t buf[256];
	size_t n = ms__v1__watch_request__pack(&wr, buf);
	assert_int_equal(rpc_cstream_open(cli, "/ms.v1.AgentControl/Watch", buf, n, 0, &a->s), 0);
}

/* Next command on a's stream within wait_ms, or NULL. */
static Ms__V1__Command *next_cmd(struct sim *a, uint32_t wait_ms)
{
	uint8_t *b = NULL;
	size_t n = 0;
	if (rpc_cstream_next(a->s, wait_ms, &b, &n) != 1)
		return NULL;
	Ms__V1__Command *c = ms__v1__command__unpack(NULL, n, b);
	free(b);
	return c;
}

/* A window with a packet-drop signal on interface ifname (each host names its NIC differently). */
static void window_with_anomaly(struct ctlplane *cp, const char *agent, const char *ifname)
{
	struct wire_anomaly an = { .metric = "rx_drops", .kind = 1, .value = 50, .baseline = 1, .ts_ns = 1000 };
	snprintf(an.ifname, sizeof(an.ifname), "%s", ifname);
	struct wire_window w;
	memset(&w, 0, sizeof(w));
	snprintf(w.agent_id, sizeof(w.agent_id), "%s", agent);
	w.anomalies = &an;
	w.nanomalies = 1;
	ctlplane_window(cp, &w);
}

static size_t count_events(struct ctlplane *cp)
{
	return (size_t)evlog_total(ctlplane_events(cp));
}

static void test_correlation_four_agents(void **state)
{
	(void)state;
	struct ctlplane_opts o = {
		.address = "127.0.0.1",
		.token = "tok",
		.tick_ms = 100,
		.corr = { .span_ms = 2000, .min_hosts = 2, .diag_ttl_ms = 30000, .clear_ms = 1500, .max_diag_fraction = 1 },
	};
	struct ctlplane *cp = NULL;
	assert_int_equal(ctlplane_new(&o, &cp), 0);
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%u", ctlplane_port(cp));
	struct rpc_client *cli = NULL;
	struct rpc_client_opts co = { .target = target, .token = "tok" };
	assert_int_equal(rpc_client_new(&co, &cli), 0);
	struct sim ag[4] = { { "lb-1", "lb", NULL }, { "lb-2", "lb", NULL }, { "lb-3", "lb", NULL }, { "db-1", "db", NULL } };
	for (int i = 0; i < 4; i++)
		open_watch(cli, &ag[i]);
	/* streams up (one agent_connected event each), then a few ticks to sync hosts */
	for (int i = 0; i < 500 && count_events(cp) < 4; i++)
		usleep(20000);
	assert_int_equal(count_events(cp), 4);
	usleep(500000);

	/* one host alone: nothing */
	window_with_anomaly(cp, "lb-1", "eth0");
	window_with_anomaly(cp, "lb-1", "eth0"); /* the same episode in its next window */
	assert_null(next_cmd(&ag[0], 400));
	/* a second host of the group within the span, the same anomaly on an interface of another
	 * name: the whole group goes to diagnostic */
	window_with_anomaly(cp, "lb-2", "ens5");
	window_with_anomaly(cp, "db-1", "eth0"); /* another group: not enough alone */
	for (int i = 0; i < 3; i++) {
		Ms__V1__Command *c = next_cmd(&ag[i], 10000);
		assert_non_null(c);
		assert_int_equal(c->body_case, MS__V1__COMMAND__BODY_MODE);
		assert_int_equal(c->mode, MS__V1__MODE_REQUEST__MODE_REQUEST_DIAGNOSTIC);
		assert_int_equal(c->ttl_ms, 30000);
		assert_non_null(strstr(c->reason, "anomaly:rx_drops:drop"));
		ms__v1__command__free_unpacked(c, NULL);
	}
	assert_null(next_cmd(&ag[3], 300));
	/* quiet: cleared, the group goes back (auto clears the pin) */
	for (int i = 0; i < 3; i++) {
		Ms__V1__Command *c = next_cmd(&ag[i], 15000);
		assert_non_null(c);
		assert_int_equal(c->mode, MS__V1__MODE_REQUEST__MODE_REQUEST_AUTO);
		ms__v1__command__free_unpacked(c, NULL);
	}
	assert_null(next_cmd(&ag[3], 300));
	/* events: agent_connected x4, trigger, clear */
	assert_true(count_events(cp) >= 6);
	/* one entry per episode, each host's interface kept */
	assert_int_equal(evlog_total(ctlplane_anomalies(cp)), 3);
	{
		Ms__V1__ListAnomaliesRequest lr = MS__V1__LIST_ANOMALIES_REQUEST__INIT;
		uint8_t lb[16], *lo = NULL;
		size_t ln = ms__v1__list_anomalies_request__pack(&lr, lb), lon = 0;
		assert_int_equal(rpc_call(cli, "/ms.v1.Coordinator/ListAnomalies", lb, ln, 2000, &lo, &lon, NULL), 0);
		Ms__V1__ListAnomaliesReply *la = ms__v1__list_anomalies_reply__unpack(NULL, lon, lo);
		assert_non_null(la);
		assert_int_equal(la->n_anomalies, 3);
		for (size_t i = 0; i < la->n_anomalies; i++) {
			const Ms__V1__FleetAnomaly *fa = la->anomalies[i];
			assert_non_null(fa->signal);
			assert_string_equal(fa->signal->ifname, strcmp(fa->agent_id, "lb-2") ? "eth0" : "ens5");
			assert_string_equal(fa->signal->metric, "rx_drops");
			assert_int_equal(fa->signal->kind, MS__V1__ANOMALY_KIND__ANOMALY_DROP);
		}
		ms__v1__list_anomalies_reply__free_unpacked(la, NULL);
		free(lo);
	}

	/* fleet status counts the trigger */
	Ms__V1__FleetStatusRequest fr = MS__V1__FLEET_STATUS_REQUEST__INIT;
	uint8_t buf[16], *out = NULL;
	size_t n = ms__v1__fleet_status_request__pack(&fr, buf), on = 0;
	assert_int_equal(rpc_call(cli, "/ms.v1.Coordinator/GetFleetStatus", buf, n, 2000, &out, &on, NULL), 0);
	Ms__V1__FleetStatus *st = ms__v1__fleet_status__unpack(NULL, on, out ? out : buf);
	assert_non_null(st);
	assert_int_equal(st->fleet_triggers, 1);
	assert_int_equal(st->agents_live, 4);
	ms__v1__fleet_status__free_unpacked(st, NULL);
	free(out);

	for (int i = 0; i < 4; i++)
		rpc_cstream_free(ag[i].s);
	rpc_client_free(cli);
	ctlplane_free(cp);
}

/* A store that remembers the kinds of the rows it was given (the ClickHouse stand-in). */
struct store {
	pthread_mutex_t mu;
	char kinds[64][32];
	uint32_t n;
	uint64_t ttl_of_mode_set;
	char mode_of_mode_set[16];
};

static int store_row(void *arg, const struct chrows_fleet_event *e)
{
	struct store *st = arg;
	pthread_mutex_lock(&st->mu);
	if (st->n < 64)
		snprintf(st->kinds[st->n++], sizeof(st->kinds[0]), "%s", e->kind);
	if (strcmp(e->kind, "mode_set") == 0 && !st->mode_of_mode_set[0]) {
		st->ttl_of_mode_set = e->ttl_ms;
		snprintf(st->mode_of_mode_set, sizeof(st->mode_of_mode_set), "%s", e->mode);
	}
	pthread_mutex_unlock(&st->mu);
	return 0;
}

static uint32_t stored(struct store *st, const char *kind)
{
	uint32_t n = 0;
	pthread_mutex_lock(&st->mu);
	for (uint32_t i = 0; i < st->n; i++)
		n += strcmp(st->kinds[i], kind) == 0;
	pthread_mutex_unlock(&st->mu);
	return n;
}

static void wait_stored(struct store *st, const char *kind, uint32_t n)
{
	for (int i = 0; i < 500 && stored(st, kind) < n; i++)
		usleep(20000);
	assert_int_equal(stored(st, kind), n);
}

/* SetMode / SetBudget on one host; returns the reply's agent count or -code. */
static int set_mode(struct rpc_client *cli, const char *host, int mode, uint64_t ttl_ms)
{
	char *hosts[1] = { (char *)host };
	Ms__V1__Selector sel = MS__V1__SELECTOR__INIT;
	sel.hosts = hosts;
	sel.n_hosts = 1;
	Ms__V1__SetModeRequest r = MS__V1__SET_MODE_REQUEST__INIT;
	r.selector = &sel;
	r.mode = mode;
	r.ttl_ms = ttl_ms;
	r.reason = "unit";
	uint8_t buf[256], *out = NULL;
	size_t n = ms__v1__set_mode_request__pack(&r, buf), on = 0;
	struct rpc_status st;
	int rc = rpc_call(cli, "/ms.v1.Coordinator/SetMode", buf, n, 2000, &out, &on, &st);
	if (rc != 0)
		return -rc;
	Ms__V1__CommandReply *cr = ms__v1__command_reply__unpack(NULL, on, out);
	assert_non_null(cr);
	int agents = (int)cr->n_agents;
	ms__v1__command_reply__free_unpacked(cr, NULL);
	free(out);
	return agents;
}

static int set_budget(struct rpc_client *cli, const char *host, uint64_t sentinel)
{
	char *hosts[1] = { (char *)host };
	Ms__V1__Selector sel = MS__V1__SELECTOR__INIT;
	sel.hosts = hosts;
	sel.n_hosts = 1;
	Ms__V1__Budgets b = MS__V1__BUDGETS__INIT;
	b.sentinel_samples_per_sec = sentinel;
	Ms__V1__SetBudgetRequest r = MS__V1__SET_BUDGET_REQUEST__INIT;
	r.selector = &sel;
	r.budgets = &b;
	uint8_t buf[256], *out = NULL;
	size_t n = ms__v1__set_budget_request__pack(&r, buf), on = 0;
	int rc = rpc_call(cli, "/ms.v1.Coordinator/SetBudget", buf, n, 2000, &out, &on, NULL);
	free(out);
	return rc;
}

static void close_watch(struct ctlplane *cp, struct store *st, struct sim *a, uint32_t nth)
{
	rpc_cstream_cancel(a->s);
	a->s = rpc_cstream_free(a->s);
	wait_stored(st, "agent_disconnected", nth);
	(void)cp;
}

/* Commands for an agent that is not connected: the latest of each kind is kept and sent when its
 * Watch comes back (the TTL shortened by the time it waited; a newer mode replaces an older one);
 * one whose TTL ran out is dropped with command_expired. Every fleet event also reaches the
 * store as a row, and the metrics count the outcomes. */
static void test_pending_commands(void **state)
{
	(void)state;
	struct store st = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct ctlplane_opts o = {
		.address = "127.0.0.1",
		.token = "tok",
		.tick_ms = 100,
		.pending_ms = 60000,
		.store_event = store_row,
		.store_arg = &st,
		.coordinator_id = 0xabc,
	};
	struct ctlplane *cp = NULL;
	assert_int_equal(ctlplane_new(&o, &cp), 0);
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%u", ctlplane_port(cp));
	struct rpc_client *cli = NULL;
	struct rpc_client_opts co = { .target = target, .token = "tok" };
	assert_int_equal(rpc_client_new(&co, &cli), 0);
	struct sim a = { "lb-1", "lb", NULL };
	open_watch(cli, &a);
	wait_stored(&st, "agent_connected", 1);
	close_watch(cp, &st, &a, 1);

	/* away: kept, reported as queued for the agent */
	assert_int_equal(set_mode(cli, "lb-1", MS__V1__MODE_REQUEST__MODE_REQUEST_SENTINEL, 0), 1);
	assert_int_equal(set_mode(cli, "lb-1", MS__V1__MODE_REQUEST__MODE_REQUEST_DIAGNOSTIC, 30000), 1);
	assert_int_equal(set_budget(cli, "lb-1", 500), 0);
	wait_stored(&st, "mode_set", 2);
	assert_int_equal(st.ttl_of_mode_set, 0); /* the first: sentinel without TTL */
	assert_string_equal(st.mode_of_mode_set, "sentinel");
	usleep(300000);

	/* back: the diagnostic pin (not the sentinel it replaced) and the budgets, in order */
	open_watch(cli, &a);
	Ms__V1__Command *c = next_cmd(&a, 10000);
	assert_non_null(c);
	assert_int_equal(c->body_case, MS__V1__COMMAND__BODY_MODE);
	assert_int_equal(c->mode, MS__V1__MODE_REQUEST__MODE_REQUEST_DIAGNOSTIC);
	assert_true(c->ttl_ms > 20000 && c->ttl_ms < 30000);
	ms__v1__command__free_unpacked(c, NULL);
	c = next_cmd(&a, 10000);
	assert_non_null(c);
	assert_int_equal(c->body_case, MS__V1__COMMAND__BODY_BUDGETS);
	ms__v1__command__free_unpacked(c, NULL);
	assert_null(next_cmd(&a, 300));
	wait_stored(&st, "command_delivered", 2);
	/* connected: sent at once, nothing kept */
	assert_int_equal(set_mode(cli, "lb-1", MS__V1__MODE_REQUEST__MODE_REQUEST_AUTO, 0), 1);
	c = next_cmd(&a, 10000);
	assert_non_null(c);
	ms__v1__command__free_unpacked(c, NULL);

	/* a TTL that runs out while the agent is away: dropped, not delivered */
	close_watch(cp, &st, &a, 2);
	assert_int_equal(set_mode(cli, "lb-1", MS__V1__MODE_REQUEST__MODE_REQUEST_DIAGNOSTIC, 300), 1);
	wait_stored(&st, "command_expired", 1);
	open_watch(cli, &a);
	wait_stored(&st, "agent_connected", 3);
	assert_null(next_cmd(&a, 500));
	assert_int_equal(stored(&st, "command_delivered"), 2);
	/* unknown agents are still refused */
	assert_int_equal(set_mode(cli, "ghost", MS__V1__MODE_REQUEST__MODE_REQUEST_DIAGNOSTIC, 0), -RPC_NOT_FOUND);

	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	assert_int_equal(ctlplane_metrics(cp, &sb), 0);
	assert_int_equal(strbuf_error(&sb), 0);
	assert_non_null(strstr(sb.buf, "ms_coord_fleet_pending_commands_total{outcome=\"kept\"} 4\n"));
	assert_non_null(strstr(sb.buf, "ms_coord_fleet_pending_commands_total{outcome=\"delivered\"} 2\n"));
	assert_non_null(strstr(sb.buf, "ms_coord_fleet_pending_commands_total{outcome=\"expired\"} 1\n"));
	assert_non_null(strstr(sb.buf, "ms_coord_fleet_commands_pending 0\n"));
	assert_non_null(strstr(sb.buf, "ms_coord_fleet_events_total{kind=\"mode_set\"} 4\n"));
	assert_non_null(strstr(sb.buf, "ms_coord_fleet_events_store_failed_total 0\n"));
	assert_non_null(strstr(sb.buf, "ms_coord_fleet_triggers_total 0\n"));
	strbuf_release(&sb);
	/* every event reached the store */
	assert_int_equal(evlog_total(ctlplane_events(cp)), st.n);

	rpc_cstream_free(a.s);
	rpc_client_free(cli);
	ctlplane_free(cp);
}

/* mode_signals: windows in diagnostic from two unpinned hosts of a group trigger it; once the
 * coordinator has pinned them their diagnostic windows are not signals, nor after the pin
 * until the agent was back in sentinel. */
static void test_mode_signals(void **state)
{
	(void)state;
	struct ctlplane_opts o = {
		.address = "127.0.0.1",
		.token = "tok",
		.tick_ms = 100,
		.mode_signals = true,
		.corr = { .span_ms = 2000, .min_hosts = 2, .diag_ttl_ms = 30000, .clear_ms = 1500, .max_diag_fraction = 1 },
	};
	struct ctlplane *cp = NULL;
	assert_int_equal(ctlplane_new(&o, &cp), 0);
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%u", ctlplane_port(cp));
	struct rpc_client *cli = NULL;
	struct rpc_client_opts co = { .target = target, .token = "tok" };
	assert_int_equal(rpc_client_new(&co, &cli), 0);
	struct sim ag[3] = { { "lb-1", "lb", NULL }, { "lb-2", "lb", NULL }, { "db-1", "db", NULL } };
	for (int i = 0; i < 3; i++)
		open_watch(cli, &ag[i]);
	for (int i = 0; i < 500 && count_events(cp) < 3; i++)
		usleep(20000);
	usleep(500000);
	struct wire_window w;
	memset(&w, 0, sizeof(w));
	w.mode = 1;
	snprintf(w.agent_id, sizeof(w.agent_id), "db-1");
	ctlplane_window(cp, &w);
	snprintf(w.agent_id, sizeof(w.agent_id), "lb-1");
	ctlplane_window(cp, &w);
	assert_null(next_cmd(&ag[0], 400));
	snprintf(w.agent_id, sizeof(w.agent_id), "lb-2");
	ctlplane_window(cp, &w);
	for (int i = 0; i < 2; i++) {
		Ms__V1__Command *c = next_cmd(&ag[i], 10000);
		assert_non_null(c);
		assert_int_equal(c->mode, MS__V1__MODE_REQUEST__MODE_REQUEST_DIAGNOSTIC);
		assert_non_null(strstr(c->reason, CTLPLANE_MODE_KEY));
		ms__v1__command__free_unpacked(c, NULL);
	}
	assert_null(next_cmd(&ag[2], 300));
	/* pinned now: their diagnostic windows are ours, not signals; the trigger clears */
	for (int k = 0; k < 5; k++) {
		for (int i = 0; i < 2; i++) {
			snprintf(w.agent_id, sizeof(w.agent_id), "%s", ag[i].id);
			ctlplane_window(cp, &w);
		}
		usleep(100000);
	}
	for (int i = 0; i < 2; i++) {
		Ms__V1__Command *c = next_cmd(&ag[i], 15000);
		assert_non_null(c);
		assert_int_equal(c->mode, MS__V1__MODE_REQUEST__MODE_REQUEST_AUTO);
		ms__v1__command__free_unpacked(c, NULL);
	}
	/* after the pin: diagnostic windows (closed under it, or the agent's mode hold) are not
	 * signals until the agent was back in sentinel */
	for (int i = 0; i < 2; i++) {
		snprintf(w.agent_id, sizeof(w.agent_id), "%s", ag[i].id);
		ctlplane_window(cp, &w);
	}
	snprintf(w.agent_id, sizeof(w.agent_id), "lb-1");
	w.mode = 0;
	ctlplane_window(cp, &w);
	w.mode = 1;
	ctlplane_window(cp, &w); /* its own again: a signal */
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	assert_int_equal(ctlplane_metrics(cp, &sb), 0);
	assert_non_null(strstr(sb.buf, "ms_coord_fleet_triggers_total 1\n"));
	assert_non_null(strstr(sb.buf, "ms_coord_fleet_clears_total 1\n"));
	assert_non_null(strstr(sb.buf, "ms_coord_fleet_signals_total 4\n"));
	assert_non_null(strstr(sb.buf, "ms_coord_fleet_groups_diagnostic 0\n"));
	strbuf_release(&sb);
	for (int i = 0; i < 3; i++)
		rpc_cstream_free(ag[i].s);
	rpc_client_free(cli);
	ctlplane_free(cp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_correlation_four_agents),
		cmocka_unit_test(test_pending_commands),
		cmocka_unit_test(test_mode_signals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
