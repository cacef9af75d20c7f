/* micro_sentinel_agent: daemon root. init (config, BPF, events, exporters) → sampling loop on
 * this thread → shutdown (flush the open window, detach every program and link, close every fd).
 * The only mutable globals of the agent live here: the stop flag set by signal handlers. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/random.h>
#include <sys/utsname.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "analyze.h"
#include "stacks.h"
#include "anomaly.h"
#include "api.h"
#include "apireq.h"
#include "bqueue.h"
#include "chhttp.h"
#include "config.h"
#include "events.h"
#include "export.h"
#include "fleet.h"
#include "httpd.h"
#include "log.h"
#include "loop.h"
#include "selfmetrics.h"
#include "metrics.h"
#include "privdrop.h"
#include "samplelog.h"
#include "sampler.h"
#include "symbolizer.h"
#include "synth.h"
#include "targets.h"
#include "seqstore.h"
#include "standalone.h"
#include "spool.h"
#include "uplink.h"
#include "window.h"

#define MS_VERSION "0.1.0"
#define CLOSED_QUEUE_LEN 64
#define STACK_ENTRIES 8192 /* BPF stack-trace map entries (sampler) = ids stacks.c tracks */

static volatile sig_atomic_t stop_flag;

static void free_window_item(void *p)
{
	window_free(p);
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf is chatty at info/debug; its warnings explain load failures (verifier, BTF) */
	if (level == LIBBPF_DEBUG && ms_log_get_level() < MS_LOG_DEBUG)
		return 0;
	if (level == LIBBPF_INFO && ms_log_get_level() < MS_LOG_DEBUG)
		return 0;
	char buf[1024];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	ms_log(level == LIBBPF_WARN ? MS_LOG_WARN : MS_LOG_DEBUG, "LIBBPF", "%s", buf);
	return 0;
}

static int load_config(int argc, char **argv, struct agent_config *cfg)
{
	struct conf_error err = { { 0 } };
	struct conf_args args;
	agent_config_alias_args(argc, argv);
	if (conf_defaults(&agent_config_schema, cfg, &err) < 0 ||
	    conf_parse_args(&agent_config_schema, cfg, argc, argv, &args, &err) < 0)
		goto bad;
	if (args.help) {
		conf_print_help(&agent_config_schema, stdout);
		exit(0);
	}
	if (args.version) {
		printf("micro_sentinel_agent %s\n", MS_VERSION);
		exit(0);
	}
	if (args.npositional) {
		snprintf(err.msg, sizeof(err.msg), "unexpected argument '%s' (flags are --key=value)",
			 args.positional[0]);
		goto bad;
	}
	if (args.config_path) {
		if (conf_load_file(&agent_config_schema, cfg, args.config_path, &err) < 0)
			goto bad;
		if (conf_parse_args(&agent_config_schema, cfg, argc, argv, &args, &err) < 0)
			goto bad;
	}
	if (agent_config_validate(cfg, &err) < 0)
		goto bad;
	if (!cfg->agent_id[0] && gethostname(cfg->agent_id, sizeof(cfg->agent_id) - 1) < 0)
		snprintf(cfg->agent_id, sizeof(cfg->agent_id), "unknown");
	/* possible CPUs, not online ones: the ring serves every CPU that may come up */
	cfg->ringbuf_bytes = agent_config_ringbuf_bytes(cfg, sysconf(_SC_NPROCESSORS_CONF));
	return 0;
bad:
	ms_err("CONFIG-INVALID", "%s", err.msg);
	fprintf(stderr, "see --help for every key\n");
	return -EINVAL;
}

static void log_sampler_report(const struct sampler_report *rep)
{
	for (int t = 0; t < SAMPLER_TIER__N; t++)
		if (rep->tier_err[t])
			ms_warn("BPF-HOOK-FALLBACK", "%s context hooks unavailable (%s)%s",
				sampler_tier_name(t), strerror(-rep->tier_err[t]),
				t == rep->tier ? "" : ", trying the next flavour");
	ms_info("BPF-LOADED", "context hooks attached via %s; socket context %s; datagram context %s",
		sampler_tier_name(rep->tier), rep->sock_hooks ? "on" : "OFF (kernel lacks sock_*_length)",
		rep->skb_copy_hook ? "on" : "off");
	if (rep->xdp_err[0])
		ms_warn("BPF-XDP-ATTACH", "XDP context injector: %s", rep->xdp_err);
}

/* BPF is loaded and attached and the perf events are open: keep only what the running agent
 * still uses (privdrop.c says which and why). Here, before the first thread, so that every
 * thread runs reduced. Returns 0 or a negative errno (logged). */
static int drop_privileges(const struct agent_config *cfg)
{
	struct privdrop_env env;
	struct privdrop_result res;
	char kept[512];
	privdrop_read_env(&env);
	env.synthetic = cfg->perf_mock_mode;
	env.low_port = (cfg->metrics_port && cfg->metrics_port < 1024) || (cfg->control_port && cfg->control_port < 1024);
	int r = privdrop_apply(privdrop_agent_keep(&env), env.last_cap, &res);
	if (r < 0) {
		ms_err("PRIVDROP-FAILED", "cannot drop capabilities: %s", strerror(-r));
		return r;
	}
	if (res.before)
		ms_info("PRIVDROP", "capabilities reduced to %s (from %d); no_new_privs set",
			privdrop_names(res.after, kept, sizeof(kept)), __builtin_popcountll(res.before));
	return 0;
}

/* What the control plane last reported, to log its transitions once each (loop thread). */
struct ctl_log {
	struct metrics *met;
	bool seen;
	int mode, safety;
	bool anomaly;
};

static void on_ctl(void *arg, const struct control_snapshot *c)
{
	struct ctl_log *cl = arg;
	metrics_on_ctl(cl->met, c);
	static const char *const names[2] = { "sentinel", "diagnostic" };
	if (cl->seen && c->mc.mode != cl->mode)
		ms_info("MODE-CHANGE", "%s -> %s (%s%s%s)", names[cl->mode & 1], names[c->mc.mode & 1], c->mc.reason,
			c->mc.pinned ? ", pinned by " : "", c->mc.pinned ? c->mc.pin_source : "");
	if (cl->seen && c->mc.safety != cl->safety)
		ms_warn("LOAD-SHED", "load shedding %s (hottest CPU at %.2f x its budget)",
			c->mc.safety == MODECTL_SHED_HEAVY ? "on" : "off", c->mc.load);
	bool an = c->anomaly_enabled && c->anomaly.active;
	if (cl->seen && an != cl->anomaly)
		ms_info("ANOMALY", "%s", an ? "anomaly signal raised (see /api/v1/status)" : "anomaly signals cleared");
	cl->seen = true;
	cl->mode = c->mc.mode;
	cl->safety = c->mc.safety;
	cl->anomaly = an;
}

static void log_events(const struct events *ev)
{
	for (int i = 0; i < events_count(ev); i++) {
		const struct events_state *st = events_get(ev, i);
		if (st->live)
			ms_info("EVENT-LIVE", "%s (%s) live on %d CPUs", st->spec.name,
				st->source ? "sw" : "hw", st->ncpus_open);
		else
			ms_warn("EVENT-FALLBACK", "%s (%s): %s", st->spec.name, st->source ? "sw" : "hw", st->reason);
	}
}

static void on_uplink_event(void *arg, enum uplink_event ev, const char *detail)
{
	const char *url = arg;
	switch (ev) {
	case UPLINK_EV_CONNECTED:
		ms_info("UPLINK-CONNECTED", "connected to %s (%s); sending windows", url, detail);
		break;
	case UPLINK_EV_DISCONNECTED:
		ms_warn("UPLINK-RECONNECT", "lost %s (%s): windows wait in the spool, reconnecting with backoff", url, detail);
		break;
	case UPLINK_EV_REJECTED:
		ms_warn("UPLINK-REJECTED", "the coordinator refused a window for good (%s): dropped and counted", detail);
		break;
	case UPLINK_EV_UNAUTHENTICATED:
		ms_err("UPLINK-UNAUTHENTICATED", "the coordinator refused our credentials (%s): check token_file / "
		       "certificates; windows wait in the spool", detail);
		break;
	case UPLINK_EV_SEQ_REGRESSION:
		ms_err("UPLINK-SEQ-REGRESSION", "%s: the coordinator holds newer windows under this agent id (a "
		       "duplicate agent_id or a copied state_dir?); the seq store was advanced for the next start", detail);
		break;
	case UPLINK_EV_SPOOL_FULL:
		ms_warn("SPOOL-FULL", "uplink spool full (%s): windows dropped by the spool policy and counted", detail);
		break;
	case UPLINK_EV_OVERSIZE:
		ms_warn("UPLINK-OVERSIZE", "%s: dropped and counted", detail);
		break;
	case UPLINK_EV_SPOOL_ERROR:
		ms_err("SPOOL-ERROR", "uplink spool write failed (%s): window dropped and counted", detail);
		break;
	case UPLINK_EV_SPOOL_REPAIRED:
		ms_warn("SPOOL-REPAIRED", "uplink spool had corrupt records (%s; continuing)", detail);
		break;
	}
}

/* The persisted window seq (seqstore.h). Without a usable state_dir the wall clock alone
 * keeps seqs increasing across restarts; with a coordinator the store is required. */
static int open_seqs(const struct agent_config *cfg, struct seqstore **ret, uint64_t *ret_first)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	*ret_first = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	if (!cfg->state_dir[0])
		return 0;
	bool repaired = false;
	int r = seqstore_open(cfg->state_dir, ret, &repaired);
	if (r < 0) {
		if (cfg->coordinator_url[0]) {
			ms_err("STATE-DIR", "cannot keep the window seq in %s: %s", cfg->state_dir, strerror(-r));
			return r;
		}
		ms_warn("STATE-DIR", "cannot keep the window seq in %s (%s): seqs follow the clock (continuing)",
			cfg->state_dir, strerror(-r));
		return 0;
	}
	if (repaired)
		ms_warn("SEQ-REPAIRED", "%s/seq was unreadable: replaced; seqs restart from the clock (continuing)",
			cfg->state_dir);
	*ret_first = seqstore_first(*ret);
	return 0;
}

/* The agent's identity and capability as a Hello (uplink, and the standalone ms_agents row).
 * Returns 0 or -EINVAL (logged) / -ENOMEM; *ret is calloc'd. */
static int make_hello(const struct agent_config *cfg, const struct events *ev, struct wire_hello **ret)
{
	struct wire_hello *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	int r = -EINVAL;
	if (!wire_valid_agent_id(cfg->agent_id)) {
		ms_err("CONFIG-INVALID", "agent_id '%s': 1..127 printable characters without spaces or quotes",
		       cfg->agent_id);
		goto out;
	}
	if (wire_parse_labels(cfg->labels, h) < 0) {
		ms_err("CONFIG-INVALID", "labels '%s': expected k=v,k=v (at most %d)", cfg->labels, WIRE_MAX_LABELS);
		goto out;
	}
	snprintf(h->agent_id, sizeof(h->agent_id), "%s", cfg->agent_id);
	if (gethostname(h->host, sizeof(h->host) - 1) < 0)
		h->host[0] = 0;
	snprintf(h->version, sizeof(h->version), "%s", MS_VERSION);
	if (cfg->control_port)
		snprintf(h->control_endpoint, sizeof(h->control_endpoint), "%.100s:%u", cfg->control_address,
			 cfg->control_port);
	for (int i = 0; ev && i < events_count(ev) && h->nevents < WIRE_MAX_EVENTS; i++) {
		const struct events_state *st = events_get(ev, i);
		struct wire_event_cap *c = &h->events[h->nevents++];
		snprintf(c->name, sizeof(c->name), "%s", st->spec.name);
		snprintf(c->reason, sizeof(c->reason), "%s", st->reason);
		c->source = st->source ? 1 : 0;
		c->live = st->live;
	}
	h->synthetic = cfg->perf_mock_mode;
	snprintf(h->hook_tier, sizeof(h->hook_tier), "%s", cfg->perf_mock_mode ? "synthetic" : "bpf");
	struct utsname un;
	if (uname(&un) == 0)
		snprintf(h->kernel, sizeof(h->kernel), "%.63s", un.release);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	h->ncpu = ncpu > 0 ? (uint32_t)ncpu : 0;
	h->window_ms = (uint32_t)cfg->window_ms;
	if (getrandom(&h->instance, sizeof(h->instance), 0) != sizeof(h->instance))
		h->instance = (uint64_t)time(NULL);
	*ret = h;
	return 0;
out:
	free(h);
	return r;
}

static int start_uplink(const struct agent_config *cfg, const char *token, const struct events *ev,
			struct seqstore *seqs, struct uplink **ret)
{
	struct wire_hello *h;
	int r = make_hello(cfg, ev, &h);
	if (r < 0)
		return r;
	char spool_dir[512];
	snprintf(spool_dir, sizeof(spool_dir), "%s/spool", cfg->state_dir);
	struct uplink_opts uo = {
		.url = cfg->coordinator_url,
		.token = token,
		.spool_dir = spool_dir,
		.spool_max_bytes = cfg->spool_max_bytes,
		.spool_policy = cfg->spool_policy,
		.contexts = (uint32_t)cfg->uplink_contexts,
		.timeout_ms = (uint32_t)cfg->uplink_timeout_ms,
		.heartbeat_ms = (uint32_t)cfg->uplink_heartbeat_ms,
		.max_message_bytes = cfg->uplink_max_message_bytes,
		.tls = {
			.ca_file = cfg->coordinator_ca_file[0] ? cfg->coordinator_ca_file : NULL,
			.cert_file = cfg->coordinator_cert_file[0] ? cfg->coordinator_cert_file : NULL,
			.key_file = cfg->coordinator_key_file[0] ? cfg->coordinator_key_file : NULL,
		},
		.hello = h,
		.seqs = seqs,
		.on_event = on_uplink_event,
		.event_arg = (void *)cfg->coordinator_url,
	};
	r = uplink_new(&uo, ret);
	if (r < 0)
		ms_err("UPLINK-INIT", "cannot start the uplink to %s (spool %s): %s%s", cfg->coordinator_url, spool_dir,
		       strerror(-r), r == -EINVAL ? " (tls+tcp:// needs coordinator_ca_file)" : "");
	else
		ms_info("UPLINK-INIT", "uplink to %s, spool %s (%s, %" PRIu64 " bytes)", cfg->coordinator_url, spool_dir,
			cfg->spool_policy == SPOOL_DROP_NEWEST ? "drop_newest" : "drop_oldest", cfg->spool_max_bytes);
	free(h);
	return r;
}

/* Standalone mode (clickhouse_endpoint, no coordinator_url): the agent writes ClickHouse itself
 * with the coordinator's row mapping and writer (agent/standalone.c). */
static int start_standalone(const struct agent_config *cfg, const struct events *ev, struct standalone **ret)
{
	char pw[256] = "", spool_dir[512] = "";
	struct wire_hello *h;
	int r;
	if (cfg->clickhouse_password_file[0] &&
	    (r = chhttp_read_password_file(cfg->clickhouse_password_file, pw, sizeof(pw))) < 0) {
		ms_err("CONFIG-INVALID", "clickhouse_password_file %s: %s%s", cfg->clickhouse_password_file, strerror(-r),
		       r == -EPERM ? " (it must not be readable or writable by others: chmod 600)" : "");
		return r;
	}
	if ((r = make_hello(cfg, ev, &h)) < 0)
		return r;
	if (cfg->state_dir[0])
		snprintf(spool_dir, sizeof(spool_dir), "%s/chspool", cfg->state_dir);
	struct standalone_opts so = {
		.agent_id = cfg->agent_id,
		.endpoint = cfg->clickhouse_endpoint,
		.user = cfg->clickhouse_user,
		.password = pw,
		.database = cfg->clickhouse_database,
		.rollup_table = cfg->clickhouse_table,
		.raw_table = cfg->clickhouse_raw_table,
		.flush_ms = (uint32_t)cfg->clickhouse_flush_ms,
		.batch_rows = (uint32_t)cfg->clickhouse_batch_rows,
		.spool_dir = spool_dir,
		.spool_max_bytes = cfg->spool_max_bytes,
		.hello = h,
	};
	r = standalone_new(&so, ret);
	explicit_bzero(pw, sizeof(pw));
	free(h);
	if (r < 0)
		ms_err("CLICKHOUSE-INIT", "cannot start the standalone ClickHouse writer for %s (spool %s): %s",
		       cfg->clickhouse_endpoint, spool_dir[0] ? spool_dir : "none", strerror(-r));
	else
		ms_info("CLICKHOUSE-INIT", "standalone mode: writing windows to %s database %s (spool %s)",
			cfg->clickhouse_endpoint, cfg->clickhouse_database, spool_dir[0] ? spool_dir : "none");
	return r;
}

int main(int argc, char **argv)
{
	struct agent_config cfg;
	if (load_config(argc, argv, &cfg) < 0)
		return 2;
	ms_log_set_level((enum ms_log_level)ms_log_parse_level(cfg.log_level));
	libbpf_set_print(libbpf_log);

	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR and the loop sees the flag */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int rc = 1;
	struct sampler *smp = NULL;
	struct events *ev = NULL;
	struct bqueue *closed = NULL;
	struct symbolizer *sym = NULL;
	struct analyze *ana = NULL;
	struct stacks *stk = NULL;
	struct metrics *met = NULL;
	struct httpd *http = NULL;
	struct export *exp = NULL;
	struct loop *loop = NULL;
	struct selfmetrics *selfm = NULL;
	struct samplelog *slog = NULL;
	struct seqstore *seqs = NULL;
	struct uplink *up = NULL;
	struct standalone *solo = NULL;
	uint64_t first_seq = 1;
	uint64_t closed_bytes = 0; /* bytes of the windows in `closed` (loop adds, exporter subtracts) */
	struct httpd *ctl_http = NULL;
	struct api *api = NULL;
	struct targets *tgt = NULL;
	struct fleet *fleet = NULL;
	struct fleet_loop_ctx fctx = { 0 };
	char errbuf[256] = "";
	char token[4096] = "";
	int r;

	if (cfg.token_file[0] && (r = api_read_token(cfg.token_file, token, sizeof(token))) < 0) {
		ms_err("CONFIG-INVALID", "token_file %s: %s", cfg.token_file,
		       r == -EINVAL ? "needs one line of 16..4095 printable characters" : strerror(-r));
		return 2;
	}
	if (cfg.control_port && !token[0] && !api_is_loopback(cfg.control_address)) {
		ms_err("CONFIG-INVALID", "control_address %s is not loopback: refusing to serve the control API "
		       "without a token_file", cfg.control_address);
		return 2;
	}
	{
		struct targets_entry *te = malloc(TARGETS_MAX * sizeof(*te));
		int n = te ? targets_parse_list(cfg.targets, te, TARGETS_MAX, errbuf, sizeof(errbuf)) : -ENOMEM;
		r = n < 0 ? n : targets_new(te, (size_t)n, NULL, &tgt, errbuf, sizeof(errbuf));
		free(te);
		if (r < 0) {
			ms_err("CONFIG-INVALID", "targets: %s", errbuf[0] ? errbuf : strerror(-r));
			return 2;
		}
	}

	ms_info("AGENT-START", "micro_sentinel_agent %s id=%s mode=%s window=%" PRIu64 "ms source=%s",
		MS_VERSION, cfg.agent_id,
		cfg.mode == AGENT_MODE_DIAGNOSTIC ? "diagnostic" : cfg.mode == AGENT_MODE_SENTINEL ? "sentinel" : "auto",
		cfg.window_ms, cfg.perf_mock_mode ? "synthetic" : "bpf");

	struct events_opts eo = {
		.cpu_clock_freq = (uint64_t)cfg.sample_freq,
		.page_fault_period = (uint64_t)cfg.page_fault_period,
		.target_pid = cfg.target_pid ? (int32_t)cfg.target_pid : -1,
		.override = cfg.events,
	};
	if ((r = events_new(&eo, &ev, errbuf, sizeof(errbuf))) < 0) {
		ms_err("CONFIG-INVALID", "events: %s", errbuf);
		rc = 2;
		goto out;
	}

	if (!cfg.perf_mock_mode) {
		struct sampler_report rep;
		struct sampler_opts so = {
			.tier = cfg.bpf_hook_tier,
			.ringbuf_bytes = (uint32_t)cfg.ringbuf_bytes,
			.stacks = cfg.stacks,
			.stack_entries = STACK_ENTRIES,
			.xdp_interfaces = cfg.xdp_interfaces,
			.no_packet_hooks = !cfg.packet_context,
		};
		r = sampler_open(&so, &smp, &rep);
		if (r < 0) {
			log_sampler_report(&rep);
			if (r == -ENOENT)
				ms_err("BPF-NO-BTF", "cannot load BPF programs: kernel BTF or tracepoints missing (%s)",
				       strerror(-r));
			else
				ms_err("BPF-LOAD-FAILED", "cannot load BPF programs: %s (root or CAP_BPF+CAP_PERFMON needed)",
				       strerror(-r));
			goto out;
		}
		log_sampler_report(&rep);
		r = events_open_attach(ev, sampler_pmu_prog(smp));
		log_events(ev);
		if (r < 0) {
			ms_err("EVENTS-NONE", "no sampling event could be opened: refusing to run with zero live events");
			goto out;
		}
	}

	if (drop_privileges(&cfg) < 0)
		goto out;

	if ((r = bqueue_new(CLOSED_QUEUE_LEN, &closed)) < 0 || (r = metrics_new(cfg.agent_id, &met)) < 0) {
		ms_err("AGENT-INIT", "out of memory");
		goto out;
	}
	metrics_set_capability(met, cfg.perf_mock_mode ? NULL : ev, smp ? "bpf" : "synthetic", cfg.perf_mock_mode);
	metrics_set_options(met, (uint32_t)cfg.metrics_top_k, cfg.metrics_guide_names);
	int mode = cfg.mode == AGENT_MODE_DIAGNOSTIC ? LOOP_MODE_DIAGNOSTIC : LOOP_MODE_SENTINEL;
	metrics_set_mode(met, mode, (uint64_t)cfg.sentinel_budget, (uint64_t)cfg.diagnostic_budget);

	struct symbolizer_opts syo = { 0 };
	if ((r = symbolizer_new(&syo, &sym)) < 0) {
		ms_err("SYMBOLIZER-INIT", "cannot start the symbolizer: %s", strerror(-r));
		goto out;
	}
	if (cfg.perf_mock_mode)
		for (uint32_t i = 0; i < SYNTH_NFUNCS; i++) {
			char name[64];
			synth_func_name(i, name, sizeof(name));
			symbolizer_register_region(sym, SYNTH_PID, SYNTH_CODE_BASE + (uint64_t)i * SYNTH_FUNC_SIZE,
						   SYNTH_FUNC_SIZE, name, "[synthetic]");
		}
	struct synth_object sobj;
	for (uint32_t i = 0; cfg.perf_mock_mode && cfg.mock_data_addr && synth_data_object(i, &sobj) == 0; i++)
		symbolizer_register_data(sym, SYNTH_PID, sobj.start, sobj.size, sobj.name);

	if (cfg.metrics_port) {
		struct httpd_opts ho = { .max_body_bytes = 1 << 20 };
		r = httpd_new(cfg.metrics_address, cfg.metrics_port, &ho, &http);
		if (r == 0)
			r = metrics_register(met, http);
		if (r == 0 && (r = selfmetrics_new(&selfm)) == 0 && (r = metrics_add_source(met, selfmetrics_render, selfm)) == 0)
			selfmetrics_set_http(selfm, 0, http);
		if (r < 0) {
			ms_err("METRICS-LISTEN", "cannot serve /metrics on %s:%u: %s", cfg.metrics_address,
			       cfg.metrics_port, strerror(-r));
			goto out;
		}
		ms_info("METRICS-LISTEN", "serving /metrics on %s:%u", cfg.metrics_address, httpd_port(http));
	}

	/* synthetic data addresses live on the synthetic two-node host, not in the pages of this one */
	struct analyze_opts ao = { .sym = sym, .no_exit_sweep = cfg.perf_mock_mode,
				   .numa_ops = cfg.perf_mock_mode && cfg.mock_data_addr ? &synth_numa_ops : NULL };
	if ((r = analyze_new(&ao, &ana)) < 0) {
		ms_err("ANALYZE-INIT", "cannot start the memory analyzers: %s", strerror(-r));
		goto out;
	}
	if (smp && cfg.stacks != SAMPLER_STACKS_NONE) {
		struct stacks_opts sto = { .ctx = (void *)(intptr_t)sampler_stack_fd(smp), .sym = sym,
					   .map_entries = STACK_ENTRIES };
		if ((r = stacks_new(&sto, &stk)) < 0) {
			ms_err("STACKS-INIT", "cannot start stack resolution: %s", strerror(-r));
			goto out;
		}
	}
	if (open_seqs(&cfg, &seqs, &first_seq) < 0)
		goto out;
	if (cfg.coordinator_url[0] && start_uplink(&cfg, token, cfg.perf_mock_mode ? NULL : ev, seqs, &up) < 0)
		goto out;
	if (!cfg.coordinator_url[0] && cfg.clickhouse_endpoint[0] &&
	    start_standalone(&cfg, cfg.perf_mock_mode ? NULL : ev, &solo) < 0)
		goto out;
	metrics_set_uplink(met, up);
	metrics_set_standalone(met, solo);
	struct export_opts xo = {
		.forward = up ? uplink_forward : solo ? standalone_forward : NULL,
		.forward_arg = up ? (void *)up : (void *)solo,
		.in = closed,
		.sym = sym,
		.analyze = ana,
		.stacks = stk,
		.metrics = met,
		.window_log = cfg.window_log,
		.summary = cfg.summary,
		.agent_id = cfg.agent_id,
		.closed_bytes = &closed_bytes,
	};
	if ((r = export_start(&xo, &exp)) < 0) {
		ms_err("EXPORT-INIT", "cannot start the window exporter: %s", strerror(-r));
		goto out;
	}

	if (cfg.sample_log[0] && (r = samplelog_open(cfg.sample_log, cfg.sample_log_max_bytes, &slog)) < 0) {
		ms_err("SAMPLE-LOG-OPEN", "cannot open the sample log %s: %s", cfg.sample_log, strerror(-r));
		goto out;
	}

	struct anomaly_opts ano = {
		.interfaces = cfg.anomaly_interfaces,
		.interval_ms = cfg.anomaly_interval_ms,
		.latency_file = cfg.anomaly_latency_file,
		.drop_ratio = cfg.anomaly_drop_ratio,
		.spike_ratio = cfg.anomaly_spike_ratio,
		.latency_ratio = cfg.anomaly_latency_ratio,
		.min_bytes_per_sec = (double)cfg.anomaly_min_bytes_per_sec,
	};
	struct ctl_log ctl_log = { .met = met };
	struct loop_opts lo = {
		.sampler = smp,
		.events = ev,
		.synth = cfg.perf_mock_mode,
		.synth_flows = (uint32_t)cfg.mock_flows,
		.synth_seed = cfg.mock_seed,
		.synth_rate = (uint64_t)cfg.mock_rate,
		.synth_period_ms = (uint32_t)cfg.mock_period_ms,
		.synth_data_addr = cfg.mock_data_addr,
		.window_ms = cfg.window_ms,
		.agg_max_rows = (uint32_t)cfg.agg_max_rows,
		.agg_max_flows = (uint32_t)cfg.agg_max_flows,
		.sentinel_budget = (uint64_t)cfg.sentinel_budget,
		.diagnostic_budget = (uint64_t)cfg.diagnostic_budget,
		.hard_drop_ns = cfg.hard_drop_ns,
		.flow_skid_ns = cfg.flow_skid_ns,
		.thread_flow_ns = cfg.thread_flow_ns,
		.thread_send_flow_ns = (uint32_t)cfg.thread_send_flow_ns,
		.cfg_flags = (cfg.stacks & SAMPLER_STACKS_KERNEL ? MS_CFG_F_KSTACK : 0) |
			     (cfg.stacks & SAMPLER_STACKS_USER ? MS_CFG_F_USTACK : 0),
		.filter_tgid = (uint32_t)cfg.target_pid,
		.ringbuf_wakeup_bytes = (uint32_t)(cfg.ringbuf_bytes / 4),
		.mode = mode,
		.first_seq = first_seq,
		.duration_ms = cfg.duration_ms,
		.closed_out = closed,
		.closed_bytes = &closed_bytes,
		.sample_log = slog,
		.mode_auto = cfg.mode == AGENT_MODE_AUTO,
		.mode_hold_ms = cfg.mode_hold_ms,
		.shed_enter = cfg.shed_enter_ratio,
		.shed_exit = cfg.shed_exit_ratio,
		.anomaly = cfg.anomaly_enabled ? &ano : NULL,
		.targets = tgt,
		.on_ctl = on_ctl,
		.on_ctl_arg = &ctl_log,
	};
	tgt = NULL; /* loop_new takes it */
	if ((r = loop_new(&lo, &loop)) < 0) {
		ms_err("LOOP-INIT", "cannot start the sampling loop: %s", strerror(-r));
		goto out;
	}
	selfmetrics_set_loop(selfm, loop);
	if (cfg.control_port) {
		struct api_opts apo = {
			.loop = loop,
			.metrics = met,
			.sym = sym,
			.version = MS_VERSION,
			.pmu = !cfg.perf_mock_mode,
		};
		struct httpd_opts cho = {
			.max_body_bytes = APIREQ_MAX_BODY,
			.bearer_token = token[0] ? token : NULL,
			.reply_timeout_ms = (uint32_t)cfg.control_timeout_ms,
		};
		r = api_new(&apo, &api);
		if (r == 0)
			r = httpd_new(cfg.control_address, cfg.control_port, &cho, &ctl_http);
		if (r == 0)
			r = api_register(api, ctl_http);
		if (r == 0)
			selfmetrics_set_http(selfm, 1, ctl_http);
		if (r < 0) {
			ms_err("CONTROL-LISTEN", "cannot serve the control API on %s:%u: %s", cfg.control_address,
			       cfg.control_port, strerror(-r));
			goto out;
		}
		ms_info("CONTROL-LISTEN", "control API on %s:%u (%s)", cfg.control_address, httpd_port(ctl_http),
			token[0] ? "bearer token required" : "loopback, no token");
	}
	if (cfg.coordinator_grpc[0]) {
		/* fleet control: pushed commands take the local API's path into the loop */
		struct wire_hello *fh = calloc(1, sizeof(*fh)); /* for its parsed labels */
		char host[128] = "";
		fctx = (struct fleet_loop_ctx){ .loop = loop };
		r = fh ? wire_parse_labels(cfg.labels, fh) : -ENOMEM;
		if (r == 0) {
			if (gethostname(host, sizeof(host) - 1) < 0)
				host[0] = 0;
			struct fleet_opts fo = { .target = cfg.coordinator_grpc, .token = token, .agent_id = cfg.agent_id,
						 .host = host, .version = MS_VERSION, .labels = fh->labels,
						 .nlabels = fh->nlabels, .instance = (uint64_t)getpid(),
						 .apply = fleet_apply_loop, .apply_arg = &fctx,
						 /* the coordinator serves gRPC with its nng certificate */
						 .tls_ca_file = cfg.coordinator_ca_file[0] ? cfg.coordinator_ca_file : NULL,
						 .tls_cert_file = cfg.coordinator_cert_file[0] ? cfg.coordinator_cert_file : NULL,
						 .tls_key_file = cfg.coordinator_key_file[0] ? cfg.coordinator_key_file : NULL };
			r = fleet_new(&fo, &fleet);
		}
		free(fh);
		if (r < 0) {
			ms_err("FLEET-INIT", "cannot start fleet control to %s: %s", cfg.coordinator_grpc, strerror(-r));
			goto out;
		}
		ms_info("FLEET-INIT", "fleet control: Watch stream to %s", cfg.coordinator_grpc);
	}
	ms_info("AGENT-READY", "sampling (%d live events)", cfg.perf_mock_mode ? 1 : events_live_count(ev));

	r = loop_run(loop, &stop_flag);
	if (r < 0) {
		ms_err("LOOP-FAILED", "sampling loop stopped: %s", strerror(-r));
		goto out;
	}
	rc = 0;
out:
	/* detach first so nothing samples while the rest shuts down */
	events_close(ev);
	sampler_free(smp);
	smp = NULL;
	if (exp) {
		export_stop(exp);
		struct loop_stats ls = { 0 };
		if (loop)
			loop_get_stats(loop, &ls);
		ms_info("AGENT-STOP", "windows=%" PRIu64 " processed=%" PRIu64 " emitted=%" PRIu64
			" budget_drops=%" PRIu64 " unattributed=%" PRIu64 " lost=%" PRIu64 " windows_stretched=%" PRIu64
			" windows_dropped=%" PRIu64,
			ls.windows_closed, ls.samples_processed, ls.bpf[MS_CNT_EMITTED],
			ls.bpf[MS_CNT_DROP_BUDGET], ls.bpf[MS_CNT_UNATTRIBUTED], ls.lost, ls.windows_stretched,
			ls.windows_dropped);
		if (cfg.summary)
			export_print_summary(exp, stdout, 10);
	}
	export_free(exp);
	selfmetrics_clear(selfm); /* /metrics stops looking at what is freed below */
	/* the control API and fleet control first: commands they still queue are cancelled by loop_free */
	fleet_free(fleet);
	httpd_free(ctl_http);
	loop_free(loop);
	api_free(api);
	targets_free(tgt);
	if (slog && samplelog_dropped(slog))
		ms_warn("SAMPLE-LOG-FULL", "sample log: %" PRIu64 " samples written, %" PRIu64 " not written (bound %" PRIu64
			" bytes or write error)", samplelog_written(slog), samplelog_dropped(slog), cfg.sample_log_max_bytes);
	samplelog_close(slog);
	httpd_free(http);
	selfmetrics_free(selfm);
	/* after every reader of its stats is gone; the exporter has handed it every window */
	if (met) {
		metrics_set_uplink(met, NULL);
		metrics_set_standalone(met, NULL);
	}
	if (up) {
		struct uplink_stats us;
		uint64_t left = uplink_drain(up, 2000);
		uplink_stats(up, &us);
		ms_info("UPLINK-STOP", "sent=%" PRIu64 " acked=%" PRIu64 " replayed=%" PRIu64 " dropped=%" PRIu64
			" spooled=%" PRIu64 "%s", us.sent, us.acked, us.replayed, us.dropped, left,
			left ? " (kept in the spool for the next start)" : "");
	}
	uplink_free(up, 0);
	standalone_free(solo); /* inserts what it can within 10 s; the rest stays in its spool */
	seqstore_free(seqs);
	bqueue_free(closed, free_window_item);
	analyze_free(ana);
	stacks_free(stk);
	symbolizer_free(sym);
	metrics_free(met);
	events_free(ev);
	return rc;
}
