/* msctl_out: see msctl_out.h. */
#include "msctl_out.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void msctl_json_print(struct jsonw *j)
{
	const char *b;
	size_t n;
	if (jsonw_result(j, &b, &n) == 0)
		printf("%.*s\n", (int)n, b);
	jsonw_free(j);
}

const char *msctl_mode_req_name(int m)
{
	return m == 1 ? "sentinel" : m == 2 ? "diagnostic" : m == 3 ? "auto" : "-";
}

void msctl_fmt_time(uint64_t ns, char *out, size_t cap)
{
	if (!ns) {
		snprintf(out, cap, "-");
		return;
	}
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void msctl_agent_json(struct jsonw *j, const Ms__V1__AgentInfo *a)
{
	jsonw_begin_object(j);
	jsonw_key(j, "agent_id"); jsonw_string(j, a->agent_id);
	jsonw_key(j, "host"); jsonw_string(j, a->host);
	jsonw_key(j, "state"); jsonw_string(j, a->state);
	jsonw_key(j, "watching"); jsonw_bool(j, a->watching);
	jsonw_key(j, "mode"); jsonw_string(j, a->mode == MS__V1__MODE__MODE_DIAGNOSTIC ? "diagnostic" : "sentinel");
	jsonw_key(j, "pin"); jsonw_string(j, a->pin ? msctl_mode_req_name(a->pin) : "");
	jsonw_key(j, "pin_expires_ns"); jsonw_u64(j, a->pin_expires_ns);
	jsonw_key(j, "labels");
	jsonw_begin_object(j);
	for (size_t i = 0; i < a->n_labels; i++) {
		jsonw_key(j, a->labels[i]->key);
		jsonw_string(j, a->labels[i]->value);
	}
	jsonw_end_object(j);
	jsonw_key(j, "version"); jsonw_string(j, a->version);
	jsonw_key(j, "last_seq"); jsonw_u64(j, a->last_seq);
	jsonw_key(j, "lag_ms"); jsonw_u64(j, a->lag_ms);
	jsonw_key(j, "windows_accepted"); jsonw_u64(j, a->windows_accepted);
	jsonw_key(j, "spool_windows"); jsonw_u64(j, a->spool_windows);
	jsonw_key(j, "last_seen_ns"); jsonw_u64(j, a->last_seen_ns);
	jsonw_key(j, "control_endpoint"); jsonw_string(j, a->control_endpoint);
	if (a->capability) {
		jsonw_key(j, "events");
		jsonw_begin_array(j);
		for (size_t i = 0; i < a->capability->n_events; i++) {
			const Ms__V1__EventCapability *e = a->capability->events[i];
			jsonw_begin_object(j);
			jsonw_key(j, "name"); jsonw_string(j, e->name);
			jsonw_key(j, "source"); jsonw_string(j, e->source == MS__V1__EVENT_SOURCE__SOURCE_SW ? "sw" : "hw");
			jsonw_key(j, "live"); jsonw_bool(j, e->live);
			jsonw_end_object(j);
		}
		jsonw_end_array(j);
	}
	jsonw_end_object(j);
}

void msctl_agent_row(const Ms__V1__AgentInfo *a)
{
	char labels[256] = "", exp[32];
	for (size_t i = 0; i < a->n_labels; i++) {
		size_t l = strlen(labels);
		snprintf(labels + l, sizeof(labels) - l, "%s%s=%s", l ? "," : "", a->labels[i]->key, a->labels[i]->value);
	}
	msctl_fmt_time(a->pin_expires_ns, exp, sizeof(exp));
	printf("%-24s %-6s %-10s %-10s %-20s %-10" PRIu64 " %s\n", a->agent_id, a->state,
	       a->mode == MS__V1__MODE__MODE_DIAGNOSTIC ? "diagnostic" : "sentinel", a->pin ? msctl_mode_req_name(a->pin) : "-",
	       a->pin && a->pin_expires_ns ? exp : "-", a->last_seq, labels[0] ? labels : "-");
}

void msctl_event_out(bool json, const Ms__V1__FleetEvent *e)
{
	if (json) {
		struct jsonw *j;
		if (jsonw_new(1u << 20, &j) < 0)
			return;
		jsonw_begin_object(j);
		jsonw_key(j, "ts_ns"); jsonw_u64(j, e->ts_ns);
		jsonw_key(j, "kind"); jsonw_string(j, e->kind);
		jsonw_key(j, "group"); jsonw_string(j, e->group);
		jsonw_key(j, "agents");
		jsonw_begin_array(j);
		for (size_t i = 0; i < e->n_agents; i++)
			jsonw_string(j, e->agents[i]);
		jsonw_end_array(j);
		jsonw_key(j, "detail"); jsonw_string(j, e->detail);
		jsonw_key(j, "command_id"); jsonw_u64(j, e->command_id);
		jsonw_end_object(j);
		msctl_json_print(j);
	} else {
		char ts[32];
		msctl_fmt_time(e->ts_ns, ts, sizeof(ts));
		printf("%s %-18s %-10s", ts, e->kind, e->group[0] ? e->group : "-");
		for (size_t i = 0; i < e->n_agents; i++)
			printf("%s%s", i ? "," : " ", e->agents[i]);
		printf(" %s\n", e->detail);
	}
	fflush(stdout);
}

void msctl_anomaly_out(bool json, const Ms__V1__FleetAnomaly *a)
{
	if (json) {
		struct jsonw *j;
		if (jsonw_new(1u << 20, &j) < 0)
			return;
		jsonw_begin_object(j);
		jsonw_key(j, "agent_id"); jsonw_string(j, a->agent_id);
		jsonw_end_object(j);
		msctl_json_print(j);
	} else {
		printf("%s\n", a->agent_id);
	}
	fflush(stdout);
}

