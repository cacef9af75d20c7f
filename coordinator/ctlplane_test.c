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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static void window_with_anomaly(struct ctlplane *cp, const char *agent)
{
	struct wire_anomaly an = { .ifname = "eth0", .metric = "rx_drops", .kind = 1, .value = 50, .baseline = 1 };
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
	window_with_anomaly(cp, "lb-1");
	assert_null(next_cmd(&ag[0], 400));
	/* a second host of the group within the span: the whole group goes to diagnostic */
	window_with_anomaly(cp, "lb-2");
	window_with_anomaly(cp, "db-1"); /* another group: not enough alone */
	for (int i = 0; i < 3; i++) {
		Ms__V1__Command *c = next_cmd(&ag[i], 10000);
		assert_non_null(c);
		assert_int_equal(c->body_case, MS__V1__COMMAND__BODY_MODE);
		assert_int_equal(c->mode, MS__V1__MODE_REQUEST__MODE_REQUEST_DIAGNOSTIC);
		assert_int_equal(c->ttl_ms, 30000);
		assert_non_null(strstr(c->reason, "anomaly:eth0:rx_drops:1"));
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
	assert_int_equal(evlog_total(ctlplane_anomalies(cp)), 3);

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_correlation_four_agents),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
