/* msctl_out: see msctl_out.h. */
#include "msctl_out.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ms_abi.h"
#include "wire.h"

void msctl_usage(FILE *f)
{
	fprintf(f,
		"usage: msctl [--coordinator=HOST:PORT] [--token-file=F] [--tls-ca-file=F [--tls-cert-file=F --tls-key-file=F]]\n"
		"             [--timeout-ms=N] [--json] COMMAND\n"
		"commands:\n"
		"  status                                  fleet status\n"
		"  agents [SELECTOR]                       list agents\n"
		"  agent ID                                describe one agent\n"
		"  mode sentinel|diagnostic|auto [SELECTOR] [--ttl=DUR] [--reason=TEXT]\n"
		"  budget [--sentinel=N] [--diagnostic=N] [--hard-drop-ns=N] [SELECTOR] [--ttl=DUR] [--reason=TEXT]\n"
		"  targets [TYPE=VALUE ...] [SELECTOR] [--reason=TEXT]   (TYPE: flow pid cgroup port proto ifindex;\n"
		"                                          none = sample everything)\n"
		"  events [--watch] [--since-ns=N] [--limit=N]\n"
		"  anomalies [--watch] [--since-ns=N] [--limit=N]\n"
		"  top flows|functions|lines [--since=DUR] [--limit=N] [--flow=ID] [--event=NAME] [SELECTOR]\n"
		"  flame [--flow=ID] [--since=DUR] [--event=NAME] [SELECTOR]   folded stacks for flamegraph tools\n"
		"      top/flame read ClickHouse: [--clickhouse=URL] [--database=DB] [--clickhouse-user=U]\n"
		"      [--clickhouse-password-file=F]; --since: 30s, 10m, 2h, 1d (default 10m); ID: hex (0x..., or\n"
		"      16 digits as printed) or decimal\n"
		"SELECTOR: --all (default) | --hosts=ID[,ID...] | --label=K=V (repeatable: all must match)\n"
		"DUR: digits with ms, s, m or h (bare digits: ms); 0 = until cleared\n"
		"exit codes: 0 ok, 1 failure, 2 usage, 3 invalid request, 4 not found (top/flame: no samples),\n"
		"            5 authentication, 6 coordinator or ClickHouse unreachable, or no matching agent connected\n");
}

int msctl_command_reply_out(bool json, Ms__V1__CommandReply *r, const char *what)
{
	if (json) {
		struct jsonw *j;
		if (jsonw_new(1u << 20, &j) == 0) {
			jsonw_begin_object(j);
			jsonw_key(j, "command_id"); jsonw_u64(j, r->command_id);
			jsonw_key(j, "agents");
			jsonw_begin_array(j);
			for (size_t i = 0; i < r->n_agents; i++)
				jsonw_string(j, r->agents[i]);
			jsonw_end_array(j);
			jsonw_end_object(j);
			msctl_json_print(j);
		}
	} else {
		printf("%s: command %" PRIu64 " queued for %zu agent(s):", what, r->command_id, r->n_agents);
		for (size_t i = 0; i < r->n_agents; i++)
			printf(" %s", r->agents[i]);
		printf("\n");
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

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

void msctl_agents_out(bool json, Ms__V1__AgentInfo *const *a, size_t n, bool list)
{
	struct jsonw *j = NULL;
	if (json && jsonw_new(16u << 20, &j) == 0) {
		if (list) {
			jsonw_begin_object(j);
			jsonw_key(j, "agents");
			jsonw_begin_array(j);
		}
		for (size_t i = 0; i < n; i++)
			msctl_agent_json(j, a[i]);
		if (list) {
			jsonw_end_array(j);
			jsonw_end_object(j);
		}
		msctl_json_print(j);
	} else if (!json) {
		printf("%-24s %-6s %-10s %-10s %-20s %-10s %s\n", "AGENT", "STATE", "MODE", "PIN", "PIN EXPIRES", "LAST SEQ",
		       "LABELS");
		for (size_t i = 0; i < n; i++)
			msctl_agent_row(a[i]);
	}
}

void msctl_status_out(bool json, const Ms__V1__FleetStatus *s)
{
	const char *k[] = { "agents_live", "agents_stale", "agents_diagnostic", "windows_accepted", "windows_duplicate",
			    "windows_rejected", "fleet_triggers" };
	uint64_t v[] = { s->agents_live, s->agents_stale, s->agents_diagnostic, s->windows_accepted,
			 s->windows_duplicate, s->windows_rejected, s->fleet_triggers };
	struct jsonw *j = NULL;
	if (json && jsonw_new(4096, &j) == 0)
		jsonw_begin_object(j);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (j) {
			jsonw_key(j, k[i]);
			jsonw_u64(j, v[i]);
		} else if (!json) {
			printf("%-20s %" PRIu64 "\n", k[i], v[i]);
		}
	}
	if (j) {
		jsonw_end_object(j);
		msctl_json_print(j);
	}
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


void msctl_fmt_flow(const struct msctl_ch_flow *f, char *out, size_t cap)
{
	if (!f->flow_id) {
		snprintf(out, cap, "(unattributed)");
		return;
	}
	if (!f->has_tuple) {
		snprintf(out, cap, "(no tuple)");
		return;
	}
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	bool v4 = f->family == MS_FAMILY_V4;
	inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? f->saddr + 12 : f->saddr, s, sizeof(s));
	inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? f->daddr + 12 : f->daddr, d, sizeof(d));
	const char *proto = f->proto == 6 ? "tcp" : f->proto == 17 ? "udp" : "ip";
	const char *dir = strcmp(f->dir, "none") ? f->dir : "-";
	if (v4)
		snprintf(out, cap, "%s %s:%u -> %s:%u %s", proto, s, f->sport, d, f->dport, dir);
	else
		snprintf(out, cap, "%s [%s]:%u -> [%s]:%u %s", proto, s, f->sport, d, f->dport, dir);
}

/* A name for a terminal: control bytes (escape sequences) become '?'. */
static const char *printable(const char *s, char *buf, size_t cap)
{
	size_t i = 0;
	for (; s[i] && i + 1 < cap; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	buf[i] = 0;
	return buf;
}

static double share(uint64_t s, uint64_t total)
{
	return total ? (double)s / (double)total : 0.0;
}

static void flow_json(struct jsonw *j, const struct msctl_ch_flow *f, uint64_t total)
{
	char hex[24], tuple[160], sa[INET6_ADDRSTRLEN] = "", da[INET6_ADDRSTRLEN] = "";
	snprintf(hex, sizeof(hex), "%016" PRIx64, f->flow_id);
	msctl_fmt_flow(f, tuple, sizeof(tuple));
	jsonw_begin_object(j);
	jsonw_key(j, "id"); jsonw_u64(j, f->flow_id);
	jsonw_key(j, "id_hex"); jsonw_string(j, hex);
	jsonw_key(j, "samples"); jsonw_u64(j, f->samples);
	jsonw_key(j, "share"); jsonw_double(j, share(f->samples, total));
	jsonw_key(j, "tuple"); jsonw_string(j, tuple);
	if (f->has_tuple) {
		bool v4 = f->family == MS_FAMILY_V4;
		inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? f->saddr + 12 : f->saddr, sa, sizeof(sa));
		inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? f->daddr + 12 : f->daddr, da, sizeof(da));
		jsonw_key(j, "family"); jsonw_u64(j, f->family);
		jsonw_key(j, "proto"); jsonw_u64(j, f->proto);
		jsonw_key(j, "saddr"); jsonw_string(j, sa);
		jsonw_key(j, "sport"); jsonw_u64(j, f->sport);
		jsonw_key(j, "daddr"); jsonw_string(j, da);
		jsonw_key(j, "dport"); jsonw_u64(j, f->dport);
		jsonw_key(j, "dir"); jsonw_string(j, f->dir);
		jsonw_key(j, "ifindex"); jsonw_u64(j, f->ifindex);
		jsonw_key(j, "netns"); jsonw_u64(j, f->netns);
	}
	jsonw_end_object(j);
}

static void func_json(struct jsonw *j, const struct msctl_ch_func *f, uint64_t total)
{
	char hex[24];
	snprintf(hex, sizeof(hex), "%016" PRIx64, f->func_id);
	jsonw_begin_object(j);
	jsonw_key(j, "id"); jsonw_u64(j, f->func_id);
	jsonw_key(j, "id_hex"); jsonw_string(j, hex);
	jsonw_key(j, "name"); jsonw_string(j, f->name);
	jsonw_key(j, "module"); jsonw_string(j, f->module);
	jsonw_key(j, "samples"); jsonw_u64(j, f->samples);
	jsonw_key(j, "share"); jsonw_double(j, share(f->samples, total));
	jsonw_end_object(j);
}

static int ch_json(const struct msctl_ch_result *r)
{
	struct jsonw *j;
	int e = jsonw_new(64u << 20, &j);
	if (e < 0)
		return e;
	jsonw_begin_object(j);
	jsonw_key(j, "since_s"); jsonw_u64(j, r->since_s);
	jsonw_key(j, "total_samples"); jsonw_u64(j, r->total);
	jsonw_key(j, "shown_samples"); jsonw_u64(j, r->shown);
	jsonw_key(j, r->kind == MSCTL_CH_FLOWS ? "flows" : r->kind == MSCTL_CH_FUNCTIONS ? "functions" : "stacks");
	jsonw_begin_array(j);
	char folded[2 * WIRE_NAME_MAX + 8];
	for (size_t i = 0; i < r->n; i++) {
		if (r->kind == MSCTL_CH_FLOWS) {
			flow_json(j, &r->flows[i], r->total);
		} else if (r->kind == MSCTL_CH_FUNCTIONS) {
			func_json(j, &r->funcs[i], r->total);
		} else {
			msctl_ch_folded(&r->funcs[i], folded, sizeof(folded));
			jsonw_begin_object(j);
			jsonw_key(j, "stack"); jsonw_string(j, folded);
			jsonw_key(j, "samples"); jsonw_u64(j, r->funcs[i].samples);
			jsonw_end_object(j);
		}
	}
	if (r->kind == MSCTL_CH_FLAME && r->total > r->shown) {
		jsonw_begin_object(j);
		jsonw_key(j, "stack"); jsonw_string(j, "[other]");
		jsonw_key(j, "samples"); jsonw_u64(j, r->total - r->shown);
		jsonw_end_object(j);
	}
	jsonw_end_array(j);
	jsonw_end_object(j);
	if ((e = jsonw_error(j)) < 0) {
		jsonw_free(j);
		return e;
	}
	msctl_json_print(j);
	return 0;
}

int msctl_ch_out(bool json, const struct msctl_ch_result *r)
{
	if (json)
		return ch_json(r);
	char a[2 * WIRE_NAME_MAX + 8], b[WIRE_NAME_MAX + 8];
	if (r->kind == MSCTL_CH_FLAME) {
		/* folded stacks: the text flamegraph.pl / inferno / speedscope read */
		for (size_t i = 0; i < r->n; i++) {
			msctl_ch_folded(&r->funcs[i], a, sizeof(a));
			printf("%s %" PRIu64 "\n", a, r->funcs[i].samples);
		}
		if (r->total > r->shown)
			printf("[other] %" PRIu64 "\n", r->total - r->shown);
		return 0;
	}
	if (r->kind == MSCTL_CH_FLOWS) {
		printf("%-16s %12s %7s  %s\n", "FLOW", "SAMPLES", "SHARE", "TUPLE");
		for (size_t i = 0; i < r->n; i++) {
			const struct msctl_ch_flow *f = &r->flows[i];
			msctl_fmt_flow(f, a, sizeof(a));
			printf("%016" PRIx64 " %12" PRIu64 " %6.2f%%  %s\n", f->flow_id, f->samples,
			       100.0 * share(f->samples, r->total), a);
		}
	} else {
		printf("%12s %7s  %-40s %s\n", "SAMPLES", "SHARE", "FUNCTION", "MODULE");
		for (size_t i = 0; i < r->n; i++) {
			const struct msctl_ch_func *f = &r->funcs[i];
			char id[24];
			snprintf(id, sizeof(id), "0x%016" PRIx64, f->func_id);
			printf("%12" PRIu64 " %6.2f%%  %-40s %s\n", f->samples, 100.0 * share(f->samples, r->total),
			       f->name[0] ? printable(f->name, a, sizeof(a)) : id,
			       f->module[0] ? printable(f->module, b, sizeof(b)) : "-");
		}
	}
	printf("total %" PRIu64 " samples in windows of the last %" PRIu64 " s; %zu rows shown hold %" PRIu64 "\n",
	       r->total, r->since_s, r->n, r->shown);
	return 0;
}
