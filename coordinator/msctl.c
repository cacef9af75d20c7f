/* msctl: command-line client of the coordinator's gRPC API (SPEC §7), and of ClickHouse for
 * `top` and `flame` (msctl_ch.h: read directly over its HTTP interface, the coordinator keeps
 * no history). Tables for people, --json (one JSON document per reply, one line per streamed
 * event) for scripts.
 *
 * Exit codes (stable; scripts rely on them):
 *   0 success            1 other failure (internal, unexpected status)
 *   2 usage error        3 the coordinator refused the request (INVALID_ARGUMENT)
 *   4 not found (unknown agent, no agent matches the selector; top/flame: no samples match,
 *     or the database has no MicroSentinel tables)
 *   5 authentication (missing or wrong token; ClickHouse refused the user or password)
 *   6 coordinator or ClickHouse unreachable, or no matching agent connected (UNAVAILABLE,
 *     DEADLINE_EXCEEDED) */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "fleet.pb-c.h"
#include "jsonw.h"
#include "msctl_ch.h"
#include "msctl_out.h"
#include "rpc.h"
#include "secretfile.h"
#include "wire.h"

#define MAX_SEL 64

enum { EX_OK = 0, EX_FAIL = 1, EX_USAGE = 2, EX_INVALID = 3, EX_NOTFOUND = 4, EX_AUTH = 5, EX_UNAVAIL = 6 };

static volatile sig_atomic_t stop_flag;

struct ctx {
	const char *coordinator;
	const char *token_file;
	const char *ca_file;
	const char *cert_file, *key_file; /* client certificate (mutual TLS) */
	bool json;
	uint32_t timeout_ms;
	struct rpc_client *cli;
	/* selector and common flags of the commands */
	bool all;
	char *hosts[MAX_SEL];
	size_t nhosts;
	Ms__V1__Label lab[MAX_SEL];
	Ms__V1__Label *labp[MAX_SEL];
	size_t nlabels;
	uint64_t ttl_ms;
	const char *reason;
	bool watch;
	uint64_t since_ns, limit;
	uint64_t b_sentinel, b_diagnostic, b_hard_drop;
	/* top / flame */
	const char *ch_url, *ch_db, *ch_user, *ch_password_file, *event;
	uint64_t since_s, flow_id;
	bool has_flow;
};

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int exit_for(int code)
{
	switch (code) {
	case RPC_OK:
		return EX_OK;
	case RPC_INVALID_ARGUMENT:
		return EX_INVALID;
	case RPC_NOT_FOUND:
		return EX_NOTFOUND;
	case RPC_UNAUTHENTICATED:
		return EX_AUTH;
	case RPC_UNAVAILABLE:
	case RPC_DEADLINE_EXCEEDED:
		return EX_UNAVAIL;
	default:
		return EX_FAIL;
	}
}

/* One unary call: pack req, call, unpack the reply with desc. Prints the failure. */
static int call(struct ctx *c, const char *method, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
		ProtobufCMessage **ret)
{
	size_t n = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return EX_FAIL;
	protobuf_c_message_pack(req, buf);
	char full[128];
	snprintf(full, sizeof(full), "/ms.v1.Coordinator/%s", method);
	uint8_t *out = NULL;
	size_t on = 0;
	struct rpc_status st = { 0 };
	int r = rpc_call(c->cli, full, buf, n, c->timeout_ms, &out, &on, &st);
	free(buf);
	if (r != 0) {
		fprintf(stderr, "msctl: %s: %s: %s\n", method, r < 0 ? strerror(-r) : rpc_code_name(r), st.detail);
		return r < 0 ? EX_FAIL : exit_for(r);
	}
	*ret = protobuf_c_message_unpack(desc, NULL, on, out ? out : (const uint8_t *)"");
	free(out);
	if (!*ret) {
		fprintf(stderr, "msctl: %s: undecodable reply\n", method);
		return EX_FAIL;
	}
	return EX_OK;
}

static Ms__V1__Selector *selector(struct ctx *c, Ms__V1__Selector *s)
{
	ms__v1__selector__init(s);
	s->all = c->all || (!c->nhosts && !c->nlabels);
	s->hosts = c->hosts;
	s->n_hosts = c->nhosts;
	s->labels = c->labp;
	s->n_labels = c->nlabels;
	return s;
}

static int cmd_agents(struct ctx *c, const char *id)
{
	ProtobufCMessage *m = NULL;
	int r;
	if (id) {
		Ms__V1__DescribeAgentRequest req = MS__V1__DESCRIBE_AGENT_REQUEST__INIT;
		req.agent_id = (char *)id;
		if ((r = call(c, "DescribeAgent", &req.base, &ms__v1__agent_info__descriptor, &m)) != EX_OK)
			return r;
	} else {
		Ms__V1__ListAgentsRequest req = MS__V1__LIST_AGENTS_REQUEST__INIT;
		Ms__V1__Selector s;
		req.selector = (c->nhosts || c->nlabels) ? selector(c, &s) : NULL;
		if ((r = call(c, "ListAgents", &req.base, &ms__v1__list_agents_reply__descriptor, &m)) != EX_OK)
			return r;
	}
	if (id)
		msctl_agents_out(c->json, (Ms__V1__AgentInfo **)&m, 1, false);
	else
		msctl_agents_out(c->json, ((Ms__V1__ListAgentsReply *)m)->agents, ((Ms__V1__ListAgentsReply *)m)->n_agents,
				 true);
	protobuf_c_message_free_unpacked(m, NULL);
	return EX_OK;
}

static int cmd_mode(struct ctx *c, const char *mode)
{
	Ms__V1__SetModeRequest req = MS__V1__SET_MODE_REQUEST__INIT;
	Ms__V1__Selector s;
	if (strcmp(mode, "sentinel") == 0)
		req.mode = MS__V1__MODE_REQUEST__MODE_REQUEST_SENTINEL;
	else if (strcmp(mode, "diagnostic") == 0)
		req.mode = MS__V1__MODE_REQUEST__MODE_REQUEST_DIAGNOSTIC;
	else if (strcmp(mode, "auto") == 0)
		req.mode = MS__V1__MODE_REQUEST__MODE_REQUEST_AUTO;
	else {
		fprintf(stderr, "msctl: mode '%s': expected sentinel, diagnostic or auto\n", mode);
		return EX_USAGE;
	}
	req.selector = selector(c, &s);
	req.ttl_ms = c->ttl_ms;
	req.reason = (char *)(c->reason ? c->reason : "msctl");
	ProtobufCMessage *m = NULL;
	int r = call(c, "SetMode", &req.base, &ms__v1__command_reply__descriptor, &m);
	return r != EX_OK ? r : msctl_command_reply_out(c->json, (Ms__V1__CommandReply *)m, "mode");
}

static int cmd_budget(struct ctx *c)
{
	Ms__V1__SetBudgetRequest req = MS__V1__SET_BUDGET_REQUEST__INIT;
	Ms__V1__Budgets b = MS__V1__BUDGETS__INIT;
	Ms__V1__Selector s;
	b.sentinel_samples_per_sec = c->b_sentinel;
	b.diagnostic_samples_per_sec = c->b_diagnostic;
	b.hard_drop_ns = c->b_hard_drop;
	req.budgets = &b;
	req.selector = selector(c, &s);
	req.ttl_ms = c->ttl_ms;
	req.reason = (char *)(c->reason ? c->reason : "msctl");
	ProtobufCMessage *m = NULL;
	int r = call(c, "SetBudget", &req.base, &ms__v1__command_reply__descriptor, &m);
	return r != EX_OK ? r : msctl_command_reply_out(c->json, (Ms__V1__CommandReply *)m, "budget");
}

static int cmd_targets(struct ctx *c, char **specs, size_t n)
{
	Ms__V1__SetTargetsRequest req = MS__V1__SET_TARGETS_REQUEST__INIT;
	Ms__V1__Target t[MAX_SEL], *tp[MAX_SEL];
	Ms__V1__Selector s;
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(specs[i], '=');
		if (!eq || eq == specs[i]) {
			fprintf(stderr, "msctl: target '%s': expected TYPE=VALUE\n", specs[i]);
			return EX_USAGE;
		}
		*eq = 0;
		ms__v1__target__init(&t[i]);
		t[i].type = specs[i];
		t[i].value = eq + 1;
		tp[i] = &t[i];
	}
	req.targets = tp;
	req.n_targets = n;
	req.selector = selector(c, &s);
	req.reason = (char *)(c->reason ? c->reason : "msctl");
	ProtobufCMessage *m = NULL;
	int r = call(c, "SetTargets", &req.base, &ms__v1__command_reply__descriptor, &m);
	return r != EX_OK ? r : msctl_command_reply_out(c->json, (Ms__V1__CommandReply *)m, "targets");
}

static int cmd_events(struct ctx *c, bool anomalies)
{
	if (c->watch) {
		Ms__V1__WatchEventsRequest req = MS__V1__WATCH_EVENTS_REQUEST__INIT;
		req.since_ns = c->since_ns;
		uint8_t buf[32];
		size_t n = ms__v1__watch_events_request__pack(&req, buf);
		struct rpc_cstream *s = NULL;
		if (rpc_cstream_open(c->cli, anomalies ? "/ms.v1.Coordinator/WatchAnomalies" : "/ms.v1.Coordinator/WatchEvents",
				     buf, n, 0, &s) < 0)
			return EX_FAIL;
		int rc = EX_OK;
		while (!stop_flag) {
			uint8_t *m = NULL;
			size_t len = 0;
			int r = rpc_cstream_next(s, 200, &m, &len);
			if (r == -ETIMEDOUT)
				continue;
			if (r <= 0) {
				struct rpc_status st;
				rpc_cstream_status(s, &st);
				fprintf(stderr, "msctl: watch ended: %s: %s\n", rpc_code_name(st.code), st.detail);
				rc = exit_for(st.code) ? exit_for(st.code) : EX_FAIL;
				break;
			}
			if (anomalies) {
				Ms__V1__FleetAnomaly *a = ms__v1__fleet_anomaly__unpack(NULL, len, m);
				if (a) {
					msctl_anomaly_out(c->json, a);
					ms__v1__fleet_anomaly__free_unpacked(a, NULL);
				}
			} else {
				Ms__V1__FleetEvent *e = ms__v1__fleet_event__unpack(NULL, len, m);
				if (e) {
					msctl_event_out(c->json, e);
					ms__v1__fleet_event__free_unpacked(e, NULL);
				}
			}
			free(m);
		}
		rpc_cstream_free(s);
		return stop_flag ? EX_OK : rc;
	}
	Ms__V1__ListEventsRequest req = MS__V1__LIST_EVENTS_REQUEST__INIT;
	req.since_ns = c->since_ns;
	req.limit = (uint32_t)c->limit;
	ProtobufCMessage *m = NULL;
	int r = call(c, anomalies ? "ListAnomalies" : "ListEvents", &req.base,
		     anomalies ? &ms__v1__list_anomalies_reply__descriptor : &ms__v1__list_events_reply__descriptor, &m);
	if (r != EX_OK)
		return r;
	if (anomalies) {
		Ms__V1__ListAnomaliesReply *l = (Ms__V1__ListAnomaliesReply *)m;
		for (size_t i = 0; i < l->n_anomalies; i++)
			msctl_anomaly_out(c->json, l->anomalies[i]);
	} else {
		Ms__V1__ListEventsReply *l = (Ms__V1__ListEventsReply *)m;
		for (size_t i = 0; i < l->n_events; i++)
			msctl_event_out(c->json, l->events[i]);
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return EX_OK;
}

static int cmd_status(struct ctx *c)
{
	Ms__V1__FleetStatusRequest req = MS__V1__FLEET_STATUS_REQUEST__INIT;
	ProtobufCMessage *m = NULL;
	int r = call(c, "GetFleetStatus", &req.base, &ms__v1__fleet_status__descriptor, &m);
	if (r != EX_OK)
		return r;
	msctl_status_out(c->json, (Ms__V1__FleetStatus *)m);
	protobuf_c_message_free_unpacked(m, NULL);
	return EX_OK;
}

/* Opens the gRPC client of c (token, TLS files); EX_OK or EX_USAGE, told once. */
static int connect_coordinator(struct ctx *c)
{
	char token[300] = "";
	int r;
	/* the daemons' rule: a token others can read is refused, not used */
	if (c->token_file && (r = secretfile_read(c->token_file, token, sizeof(token))) < 0) {
		fprintf(stderr, "msctl: token file %s: %s\n", c->token_file, secretfile_strerror(r));
		return EX_USAGE;
	}
	if ((c->cert_file || c->key_file) && (!c->cert_file || !c->key_file || !c->ca_file)) {
		fprintf(stderr, "msctl: --tls-cert-file and --tls-key-file go together, with --tls-ca-file\n");
		return EX_USAGE;
	}
	struct rpc_client_opts co = { .target = c->coordinator, .token = token, .tls_ca_file = c->ca_file,
				      .tls_cert_file = c->cert_file, .tls_key_file = c->key_file };
	r = rpc_client_new(&co, &c->cli);
	explicit_bzero(token, sizeof(token)); /* the client keeps its own copy */
	if (r < 0) {
		fprintf(stderr, "msctl: coordinator %s: %s\n", c->coordinator, strerror(-r));
		return EX_USAGE;
	}
	return EX_OK;
}

/* --label for top/flame: the coordinator's registry says which agents carry the labels (as for
 * the other commands; ClickHouse has no fleet labels), their ids (and --hosts: only those also
 * listed) go to the query. */
static int label_hosts(struct ctx *c, ProtobufCMessage **m, char ***ret_ids, size_t *ret_n)
{
	Ms__V1__ListAgentsRequest req = MS__V1__LIST_AGENTS_REQUEST__INIT;
	Ms__V1__Selector s;
	req.selector = selector(c, &s);
	s.n_hosts = 0; /* the coordinator takes labels or hosts, not both: --hosts filters below */
	int r = connect_coordinator(c);
	if (r != EX_OK || (r = call(c, "ListAgents", &req.base, &ms__v1__list_agents_reply__descriptor, m)) != EX_OK)
		return r;
	Ms__V1__ListAgentsReply *l = (Ms__V1__ListAgentsReply *)*m;
	size_t n = 0;
	if (!(*ret_ids = calloc(l->n_agents + 1, sizeof(char *))))
		return EX_FAIL;
	for (size_t i = 0; i < l->n_agents; i++) {
		bool listed = !c->nhosts;
		for (size_t k = 0; k < c->nhosts && !listed; k++)
			listed = !strcmp(c->hosts[k], l->agents[i]->agent_id);
		if (listed)
			(*ret_ids)[n++] = l->agents[i]->agent_id;
	}
	*ret_n = n;
	if (!n || n > MSCTL_CH_MAX_HOSTS) {
		fprintf(stderr, "msctl: %zu agents match the selector (1..%u)\n", n, MSCTL_CH_MAX_HOSTS);
		return n ? EX_USAGE : EX_NOTFOUND;
	}
	return EX_OK;
}

/* top / flame: one ClickHouse query (msctl_ch), its failure told once with its exit code. */
static int cmd_ch(struct ctx *c, char **pos, size_t npos)
{
	struct msctl_ch_query q = { .database = c->ch_db, .since_s = c->since_s, .has_flow = c->has_flow,
				    .flow_id = c->flow_id, .event = c->event, .hosts = c->hosts, .nhosts = c->nhosts,
				    .limit = c->limit ? (uint32_t)c->limit : 20 };
	if (!strcmp(pos[0], "flame") && npos == 1) {
		q.kind = MSCTL_CH_FLAME;
	} else if (npos == 2 && (!strcmp(pos[1], "flows") || !strcmp(pos[1], "functions"))) {
		q.kind = pos[1][1] == 'l' ? MSCTL_CH_FLOWS : MSCTL_CH_FUNCTIONS;
	} else if (npos == 2 && !strcmp(pos[1], "lines")) {
		fprintf(stderr, "msctl: top lines: source lines are not stored: ms_flow_rollup sums samples per "
				"function (func_id), and nothing writes code addresses (ms_raw_samples) yet; use top functions\n");
		return EX_FAIL;
	} else {
		fprintf(stderr, "msctl: expected top flows|functions|lines or flame\n");
		return EX_USAGE;
	}
	if (msctl_ch_check(&q) < 0) {
		fprintf(stderr, "msctl: %s: --limit is 1..%u, --hosts takes agent ids\n", pos[0], MSCTL_CH_MAX_LIMIT);
		return EX_USAGE;
	}
	struct chhttp *h = NULL;
	struct msctl_ch_result *res = NULL;
	ProtobufCMessage *agents = NULL;
	char **ids = NULL;
	uint32_t tmo = c->timeout_ms ? c->timeout_ms : 60000; /* a FINAL read of a long --since takes a while */
	int rc = c->nlabels ? label_hosts(c, &agents, &ids, &q.nhosts) : EX_OK;
	q.hosts = ids ? ids : q.hosts;
	int r = rc == EX_OK ? msctl_ch_open(c->ch_url, c->ch_user, c->ch_password_file, tmo, &h) : 0;
	if (r < 0) {
		fprintf(stderr, "msctl: ClickHouse %s: %s%s\n", c->ch_password_file ? c->ch_password_file : c->ch_url,
			r == -EPERM ? "others may read or write it (chmod 600)" : strerror(-r),
			r == -EINVAL ? " (--clickhouse=http://HOST:PORT)" : "");
		rc = EX_USAGE;
	} else if (rc == EX_OK && (r = msctl_ch_run(h, &q, tmo, &res)) < 0) {
		struct chhttp_error e;
		chhttp_last_error(h, &e);
		fprintf(stderr, "msctl: ClickHouse %s: %s%s%s\n", c->ch_url, msctl_ch_strerror(r), e.msg[0] ? ": " : "",
			e.msg);
		rc = e.transport ? EX_UNAVAIL : r == -EACCES ? EX_AUTH : r == -ENOENT ? EX_NOTFOUND
		   : r == -EINVAL ? EX_USAGE : EX_FAIL;
	} else if (rc == EX_OK && (res->n || c->json) && msctl_ch_out(c->json, res) < 0) {
		fprintf(stderr, "msctl: %s: answer too large to print as JSON\n", pos[0]);
		rc = EX_FAIL;
	} else if (rc == EX_OK && !res->n) {
		fprintf(stderr, "msctl: %s%s%s: no samples match\n", pos[0], npos > 1 ? " " : "", npos > 1 ? pos[1] : "");
		rc = EX_NOTFOUND;
	}
	msctl_ch_result_free(res);
	chhttp_free(h);
	free(ids);
	if (agents)
		protobuf_c_message_free_unpacked(agents, NULL);
	rpc_client_free(c->cli);
	return rc;
}

/* --name=value or --name value; returns the value or NULL when arg is not --name. */
static const char *flag(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);
	const char *a = argv[*i];
	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] == 0 && *i + 1 < argc)
		return argv[++*i];
	return NULL;
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int main(int argc, char **argv)
{
	struct ctx c = { .coordinator = "127.0.0.1:9301", .limit = 0, .since_s = 600,
			 .ch_url = "http://127.0.0.1:8123", .ch_db = "microsentinel" };
	char *pos[MAX_SEL];
	size_t npos = 0;
	const char *v;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		uint64_t x;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			msctl_usage(stdout);
			return EX_OK;
		} else if (strcmp(a, "--json") == 0) {
			c.json = true;
		} else if (strcmp(a, "--all") == 0) {
			c.all = true;
		} else if (strcmp(a, "--watch") == 0) {
			c.watch = true;
		} else if ((v = flag(argc, argv, &i, "--coordinator"))) {
			c.coordinator = v;
		} else if ((v = flag(argc, argv, &i, "--token-file"))) {
			c.token_file = v;
		} else if ((v = flag(argc, argv, &i, "--tls-ca-file"))) {
			c.ca_file = v;
		} else if ((v = flag(argc, argv, &i, "--tls-cert-file"))) {
			c.cert_file = v;
		} else if ((v = flag(argc, argv, &i, "--tls-key-file"))) {
			c.key_file = v;
		} else if ((v = flag(argc, argv, &i, "--timeout-ms"))) {
			if (parse_u64(v, &x) < 0 || !x || x > 600000)
				goto bad_value;
			c.timeout_ms = (uint32_t)x;
		} else if ((v = flag(argc, argv, &i, "--ttl"))) {
			if (conf_parse_duration_ms(v, &c.ttl_ms) < 0)
				goto bad_value;
		} else if ((v = flag(argc, argv, &i, "--reason"))) {
			c.reason = v;
		} else if ((v = flag(argc, argv, &i, "--since-ns"))) {
			if (parse_u64(v, &c.since_ns) < 0)
				goto bad_value;
		} else if ((v = flag(argc, argv, &i, "--since"))) {
			if (msctl_ch_parse_since(v, &c.since_s) < 0)
				goto bad_value;
		} else if ((v = flag(argc, argv, &i, "--flow"))) {
			if (msctl_ch_parse_flow(v, &c.flow_id) < 0)
				goto bad_value;
			c.has_flow = true;
		} else if ((v = flag(argc, argv, &i, "--event"))) {
			if (!msctl_ch_valid_name((c.event = v), false))
				goto bad_value;
		} else if ((v = flag(argc, argv, &i, "--clickhouse"))) {
			c.ch_url = v;
		} else if ((v = flag(argc, argv, &i, "--database"))) {
			if (!msctl_ch_valid_name((c.ch_db = v), true))
				goto bad_value;
		} else if ((v = flag(argc, argv, &i, "--clickhouse-user"))) {
			c.ch_user = v;
		} else if ((v = flag(argc, argv, &i, "--clickhouse-password-file"))) {
			c.ch_password_file = v;
		} else if ((v = flag(argc, argv, &i, "--limit"))) {
			if (parse_u64(v, &c.limit) < 0 || c.limit > 0xffffffffu)
				goto bad_value;
		} else if ((v = flag(argc, argv, &i, "--sentinel"))) {
			if (parse_u64(v, &c.b_sentinel) < 0)
				goto bad_value;
		} else if ((v = flag(argc, argv, &i, "--diagnostic"))) {
			if (parse_u64(v, &c.b_diagnostic) < 0)
				goto bad_value;
		} else if ((v = flag(argc, argv, &i, "--hard-drop-ns"))) {
			if (parse_u64(v, &c.b_hard_drop) < 0)
				goto bad_value;
		} else if ((v = flag(argc, argv, &i, "--hosts"))) {
			char *save = NULL; /* split in place: argv lives until exit, nothing to free */
			for (char *t = strtok_r((char *)v, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (c.nhosts == MAX_SEL) {
					fprintf(stderr, "msctl: --hosts: at most %d ids\n", MAX_SEL);
					return EX_USAGE;
				}
				c.hosts[c.nhosts++] = t;
			}
		} else if ((v = flag(argc, argv, &i, "--label"))) {
			char *eq = strchr(v, '=');
			if (!eq || eq == v || c.nlabels == MAX_SEL)
				goto bad_value;
			*eq = 0; /* key and value in place in argv */
			ms__v1__label__init(&c.lab[c.nlabels]);
			c.lab[c.nlabels].key = (char *)v;
			c.lab[c.nlabels].value = eq + 1;
			c.labp[c.nlabels] = &c.lab[c.nlabels];
			c.nlabels++;
		} else if (a[0] == '-' && a[1] == '-') {
			fprintf(stderr, "msctl: unknown flag '%s'\n", a);
			msctl_usage(stderr);
			return EX_USAGE;
		} else if (npos < MAX_SEL) {
			pos[npos++] = argv[i];
		}
		continue;
bad_value:
		fprintf(stderr, "msctl: bad value for '%s'\n", a);
		return EX_USAGE;
	}
	if (!npos) {
		msctl_usage(stderr);
		return EX_USAGE;
	}
	const char *cmd = pos[0];
	if (!strcmp(cmd, "top") || !strcmp(cmd, "flame"))
		return cmd_ch(&c, pos, npos);
	c.timeout_ms = c.timeout_ms ? c.timeout_ms : 5000;
	bool known = !strcmp(cmd, "status") || !strcmp(cmd, "agents") || !strcmp(cmd, "agent") || !strcmp(cmd, "mode") ||
		     !strcmp(cmd, "budget") || !strcmp(cmd, "targets") || !strcmp(cmd, "events") ||
		     !strcmp(cmd, "anomalies");
	if (!known) {
		fprintf(stderr, "msctl: unknown command '%s'\n", cmd);
		msctl_usage(stderr);
		return EX_USAGE;
	}
	if ((!strcmp(cmd, "agent") || !strcmp(cmd, "mode")) && npos != 2) {
		fprintf(stderr, "msctl: %s needs one argument\n", cmd);
		return EX_USAGE;
	}
	int r = connect_coordinator(&c);
	if (r != EX_OK)
		return r;
	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int rc;
	if (!strcmp(cmd, "status"))
		rc = cmd_status(&c);
	else if (!strcmp(cmd, "agents"))
		rc = cmd_agents(&c, NULL);
	else if (!strcmp(cmd, "agent"))
		rc = cmd_agents(&c, pos[1]);
	else if (!strcmp(cmd, "mode"))
		rc = cmd_mode(&c, pos[1]);
	else if (!strcmp(cmd, "budget"))
		rc = cmd_budget(&c);
	else if (!strcmp(cmd, "targets"))
		rc = cmd_targets(&c, pos + 1, npos - 1);
	else
		rc = cmd_events(&c, !strcmp(cmd, "anomalies"));
	rpc_client_free(c.cli);
	return rc;
}
