/* micro_sentinel_coordinator: daemon root. init (config, dedup journal, window store,
 * registry, ingest listener, /metrics) → wait for a signal → shutdown (stop listening, finish
 * queued windows, close the stores). The only mutable globals of the coordinator live here:
 * the stop flag set by signal handlers and the reject log's rate limiter. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chsink.h"
#include "httpd_metrics.h"
#include "config.h"
#include "ctlplane.h"
#include "dedup.h"
#include "httpd.h"
#include "ingest.h"
#include "log.h"
#include "privdrop.h"
#include "registry.h"
#include "secretfile.h"
#include "status.h"
#include "winstore.h"

#define MS_VERSION "0.1.0"

static volatile sig_atomic_t stop_flag;
/* reject log rate limit: one line per reason per second, with the count suppressed since */
static _Atomic uint64_t reject_last_s[INGEST_R__N];
static _Atomic uint64_t reject_suppressed[INGEST_R__N];

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int load_config(int argc, char **argv, struct coord_config *cfg)
{
	struct conf_error err = { { 0 } };
	struct conf_args args;
	if (conf_defaults(&coord_config_schema, cfg, &err) < 0 ||
	    conf_parse_args(&coord_config_schema, cfg, argc, argv, &args, &err) < 0)
		goto bad;
	if (args.help) {
		conf_print_help(&coord_config_schema, stdout);
		exit(0);
	}
	if (args.version) {
		printf("micro_sentinel_coordinator %s\n", MS_VERSION);
		exit(0);
	}
	if (args.npositional) {
		snprintf(err.msg, sizeof(err.msg), "unexpected argument '%s' (flags are --key=value)", args.positional[0]);
		goto bad;
	}
	if (args.config_path && (conf_load_file(&coord_config_schema, cfg, args.config_path, &err) < 0 ||
				 conf_parse_args(&coord_config_schema, cfg, argc, argv, &args, &err) < 0))
		goto bad;
	if (coord_config_validate(cfg, &err) < 0)
		goto bad;
	return 0;
bad:
	ms_err("CONFIG-INVALID", "%s", err.msg);
	fprintf(stderr, "see --help for every key\n");
	return -EINVAL;
}

/* True when a listener below 1024 is to be bound (CAP_NET_BIND_SERVICE stays for it). */
static bool low_port(const struct coord_config *cfg)
{
	const char *c = strrchr(cfg->listen_url, ':');
	long nng_port = c && strncmp(cfg->listen_url, "ipc:", 4) && strncmp(cfg->listen_url, "inproc:", 7)
				? strtol(c + 1, NULL, 10) : 0;
	return (nng_port > 0 && nng_port < 1024) || (cfg->metrics_port && cfg->metrics_port < 1024) ||
	       (cfg->grpc_port && cfg->grpc_port < 1024);
}

/* The coordinator needs no capability: a root start is reduced to nothing (or only
 * CAP_NET_BIND_SERVICE) before any thread exists (privdrop.h). Returns 0 or a negative errno. */
static int drop_privileges(const struct coord_config *cfg)
{
	struct privdrop_env env;
	struct privdrop_result res;
	char kept[256];
	privdrop_read_env(&env);
	env.low_port = low_port(cfg);
	int r = privdrop_apply(privdrop_coordinator_keep(&env), env.last_cap, &res);
	if (r < 0) {
		ms_err("PRIVDROP-FAILED", "cannot drop capabilities: %s", strerror(-r));
		return r;
	}
	if (res.before)
		ms_info("PRIVDROP", "capabilities reduced to %s (from %d); no_new_privs set",
			privdrop_names(res.after, kept, sizeof(kept)), __builtin_popcountll(res.before));
	return 0;
}

static void on_reject(void *arg, enum ingest_reason r, const char *agent, const char *peer, const char *detail)
{
	(void)arg;
	uint64_t now_s = mono_ms() / 1000;
	uint64_t last = atomic_load(&reject_last_s[r]);
	if (last == now_s || !atomic_compare_exchange_strong(&reject_last_s[r], &last, now_s)) {
		atomic_fetch_add(&reject_suppressed[r], 1);
		return;
	}
	uint64_t sup = atomic_exchange(&reject_suppressed[r], 0);
	ms_warn("COORD-REJECT", "reason=%s agent=%s peer=%s: %s (continuing; %" PRIu64 " similar suppressed)",
		ingest_reason_name(r), agent[0] ? agent : "-", peer[0] ? peer : "-", detail ? detail : "", sup);
}

/* The sink seen by ingest: the correlator gets each accepted window's signals, then the store
 * makes it durable. ctl is set once the control plane is up (windows before that are not
 * correlated) and stays valid until ingest is freed. */
struct tee {
	ingest_sink_fn sink;
	void *arg;
	struct ctlplane *_Atomic ctl;
};

static int tee_sink(void *arg, const struct wire_window *w, ingest_done_fn done, void *done_arg)
{
	struct tee *t = arg;
	ctlplane_window(atomic_load(&t->ctl), w);
	return t->sink(t->arg, w, done, done_arg);
}

static int open_state(const struct coord_config *cfg, struct dedup **dd, struct winstore **ws)
{
	if (mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST) {
		int r = -errno;
		ms_err("COORD-STATE", "cannot create state_dir %s: %s", cfg->state_dir, strerror(-r));
		return r;
	}
	char journal[512], snap[512], store[512];
	snprintf(journal, sizeof(journal), "%s/dedup.journal", cfg->state_dir);
	snprintf(snap, sizeof(snap), "%s/dedup.snapshot", cfg->state_dir);
	snprintf(store, sizeof(store), "%s/windows", cfg->state_dir);
	struct dedup_opts dopt = {
		.journal_path = cfg->accept_log[0] ? cfg->accept_log : journal,
		.snapshot_path = snap,
		.keep_journal = cfg->accept_log[0] != 0,
		.fsync = cfg->durability == COORD_DURABILITY_SYNC,
		.max_agents = (uint32_t)cfg->max_agents,
	};
	struct dedup_recovery rec;
	int r = dedup_open(&dopt, dd, &rec);
	if (r < 0) {
		ms_err("COORD-DEDUP", "cannot open the dedup journal %s: %s", dopt.journal_path, strerror(-r));
		return r;
	}
	ms_info("COORD-DEDUP", "dedup state: %" PRIu64 " agents, %" PRIu64 " accepts replayed", rec.agents,
		rec.accepts);
	if (rec.torn_bytes || rec.bad_lines)
		ms_warn("COORD-DEDUP-REPAIRED", "dedup journal: cut %" PRIu64 " torn bytes, skipped %" PRIu64
			" bad lines (continuing)", rec.torn_bytes, rec.bad_lines);
	if (cfg->clickhouse_endpoint[0])
		return 0; /* the ClickHouse writer's spool takes the window store's role */
	enum spool_fsync fs = cfg->durability == COORD_DURABILITY_SYNC ? SPOOL_FSYNC_APPEND
			      : cfg->durability == COORD_DURABILITY_ROLL ? SPOOL_FSYNC_ROLL : SPOOL_FSYNC_NONE;
	if ((r = winstore_open(store, cfg->spool_max_bytes, fs, ws)) < 0) {
		ms_err("COORD-STORE", "cannot open the window store %s: %s", store, strerror(-r));
		return r;
	}
	struct spool_stats ss;
	winstore_stats(*ws, &ss);
	if (ss.corrupt_truncations)
		ms_warn("COORD-STORE-REPAIRED", "window store: %" PRIu64 " segments cut at a corrupt record (%" PRIu64
			" bytes; continuing)", ss.corrupt_truncations, ss.corrupt_bytes);
	return 0;
}

/* status source: the metrics server's own counters (ms_coord_http_*, every refused request). */
static int http_metrics(void *arg, struct strbuf *sb)
{
	const struct httpd_metrics_server s = { "metrics", arg };
	return httpd_metrics_render("ms_coord", &s, 1, sb);
}

/* ---- ClickHouse (coordinator/chsink.c); without clickhouse_endpoint the window store is the sink */

static void chsink_options(const struct coord_config *cfg, char *spool, size_t len, struct chsink_opts *ret)
{
	snprintf(spool, len, "%s/chspool", cfg->state_dir);
	*ret = (struct chsink_opts){
		.endpoint = cfg->clickhouse_endpoint,
		.user = cfg->clickhouse_user,
		.password_file = cfg->clickhouse_password_file,
		.database = cfg->clickhouse_database,
		.flush_ms = (uint32_t)cfg->clickhouse_flush_ms,
		.batch_rows = (uint32_t)cfg->clickhouse_batch_rows,
		.spool_dir = spool,
		.spool_max_bytes = cfg->spool_max_bytes,
	};
}

static void log_schema(const struct coord_config *cfg, struct chsink *sink)
{
	struct chsink_schema_state st;
	chsink_schema(sink, &st);
	char feats[64];
	schema_features_string(&st.report.f, feats, sizeof(feats));
	if (st.migrated)
		ms_info("SCHEMA-MIGRATED", "ClickHouse %s (%s) database %s: schema from version %" PRIu32 " to %" PRIu32
			" (%" PRIu32 " applied)", st.report.f.version, feats, cfg->clickhouse_database,
			st.report.from_version, st.report.to_version, st.report.applied);
	else
		ms_warn("SCHEMA-PENDING", "cannot migrate the ClickHouse schema at %s: %s%s%s; windows are spooled, "
			"retrying every 10 s", cfg->clickhouse_endpoint, strerror(-st.last_error),
			st.report.failed_sql[0] ? " at: " : "", st.report.failed_sql);
}

static int init_schema(const struct coord_config *cfg)
{
	char spool[512], err[512] = "";
	struct chsink_opts o;
	struct schema_report rep;
	chsink_options(cfg, spool, sizeof(spool), &o);
	if (!cfg->clickhouse_endpoint[0]) {
		ms_err("CONFIG-INVALID", "init_schema needs clickhouse_endpoint");
		return 2;
	}
	int r = chsink_init_schema(&o, &rep, err, sizeof(err));
	if (r < 0) {
		ms_err("SCHEMA-FAILED", "%s", err);
		return 1;
	}
	char feats[64];
	schema_features_string(&rep.f, feats, sizeof(feats));
	ms_info("SCHEMA-MIGRATED", "ClickHouse %s (%s) database %s: schema from version %" PRIu32 " to %" PRIu32
		" (%" PRIu32 " applied)", rep.f.version, feats, cfg->clickhouse_database, rep.from_version,
		rep.to_version, rep.applied);
	return 0;
}

int main(int argc, char **argv)
{
	struct coord_config cfg;
	if (load_config(argc, argv, &cfg) < 0)
		return 2;
	ms_log_set_level((enum ms_log_level)ms_log_parse_level(cfg.log_level));
	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int rc = 1, r;
	struct dedup *dd = NULL;
	struct winstore *ws = NULL;
	struct chsink *sink = NULL;
	struct registry *reg = NULL;
	struct ingest *ing = NULL;
	struct status *stat = NULL;
	struct httpd *http = NULL;
	struct ctlplane *ctl = NULL;
	char token[WIRE_TOKEN_MAX] = "";
	struct tee tee = { 0 };
	uint64_t cid = 0;
	if (getrandom(&cid, sizeof(cid), 0) != sizeof(cid))
		cid = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;

	if (drop_privileges(&cfg) < 0)
		return 1;
	if (cfg.init_schema)
		return init_schema(&cfg);
	if (cfg.token_file[0] && (r = secretfile_read(cfg.token_file, token, sizeof(token))) < 0) {
		ms_err("CONFIG-INVALID", "token_file %s: %s", cfg.token_file, secretfile_strerror(r));
		return 2;
	}
	if (open_state(&cfg, &dd, &ws) < 0)
		goto out;
	if (cfg.clickhouse_endpoint[0]) {
		char spool[512], err[512] = "";
		struct chsink_opts cho;
		chsink_options(&cfg, spool, sizeof(spool), &cho);
		if ((r = chsink_open(&cho, &sink, err, sizeof(err))) < 0) {
			ms_err("CLICKHOUSE-INIT", "%s", err);
			rc = r == -EPERM || r == -ENOENT || r == -EINVAL ? 2 : 1;
			goto out;
		}
		log_schema(&cfg, sink);
	}
	if ((r = registry_new((uint32_t)cfg.max_agents, (uint32_t)cfg.stale_after_ms, &reg)) < 0) {
		ms_err("COORD-INIT", "out of memory");
		goto out;
	}
	tee.sink = sink ? chsink_window : winstore_sink;
	tee.arg = sink ? (void *)sink : (void *)ws;
	struct ingest_opts io = {
		.bus = {
			.url = cfg.listen_url,
			.contexts = (uint32_t)cfg.ingest_contexts,
			.tls = {
				.cert_file = cfg.tls_cert_file[0] ? cfg.tls_cert_file : NULL,
				.key_file = cfg.tls_key_file[0] ? cfg.tls_key_file : NULL,
				.ca_file = cfg.tls_ca_file[0] ? cfg.tls_ca_file : NULL,
			},
		},
		.max_message_bytes = cfg.max_message_bytes,
		.workers = (uint32_t)cfg.ingest_workers,
		.token = token,
		.require_client_cert = cfg.tls_ca_file[0] != 0,
		.heartbeat_ms = (uint32_t)cfg.heartbeat_ms,
		.coordinator_id = cid,
		.reg = reg,
		.dedup = dd,
		.sink = tee_sink,
		.sink_arg = &tee,
		.on_reject = on_reject,
		.on_hello = sink ? chsink_hello : NULL,
		.hello_arg = sink,
	};
	if ((r = ingest_new(&io, &ing)) < 0) {
		ms_err("COORD-LISTEN", "cannot listen on %s: %s", cfg.listen_url, strerror(-r));
		goto out;
	}
	if (!token[0] && !cfg.tls_ca_file[0])
		ms_warn("COORD-NO-AUTH", "no token_file and no tls_ca_file: any agent that can reach %s is accepted",
			cfg.listen_url);
	struct status_opts so = { .ingest = ing, .reg = reg, .store = ws, .coordinator_id = cid, .version = MS_VERSION };
	if ((r = status_new(&so, &stat)) < 0 || (sink && (r = status_add_source(stat, chsink_metrics, sink)) < 0))
		goto out;
	if (cfg.metrics_port) {
		struct httpd_opts ho = { .max_body_bytes = 4096, .bearer_token = token[0] ? token : NULL };
		r = httpd_new(cfg.metrics_address, cfg.metrics_port, &ho, &http);
		if (r == 0)
			r = status_register(stat, http);
		if (r == 0)
			r = status_add_source(stat, http_metrics, http);
		if (r < 0) {
			ms_err("METRICS-LISTEN", "cannot serve /metrics on %s:%u: %s", cfg.metrics_address, cfg.metrics_port,
			       strerror(-r));
			goto out;
		}
		ms_info("METRICS-LISTEN", "serving /metrics on %s:%u", cfg.metrics_address, httpd_port(http));
	}
	if (cfg.grpc_port) {
		/* the control plane is optional: without it agents keep their local control */
		struct ctlplane_opts cpo = {
			.address = cfg.grpc_address, .port = cfg.grpc_port, .token = token,
			.tls_cert_file = cfg.tls_cert_file[0] ? cfg.tls_cert_file : NULL,
			.tls_key_file = cfg.tls_key_file[0] ? cfg.tls_key_file : NULL,
			.tls_ca_file = cfg.tls_ca_file[0] ? cfg.tls_ca_file : NULL,
			.max_agents = (uint32_t)cfg.max_agents, .reg = reg, .ingest = ing,
			.group_label = cfg.correlator_group_label,
			.corr = {
				.span_ms = cfg.correlator_span_ms,
				.min_hosts = (uint32_t)cfg.correlator_min_hosts,
				.min_fraction = cfg.correlator_min_fraction,
				.diag_ttl_ms = cfg.correlator_diag_ttl_ms,
				.clear_ms = cfg.correlator_clear_ms,
				.min_interval_ms = cfg.correlator_min_interval_ms,
				.max_diag_fraction = cfg.correlator_max_diag_fraction,
				.max_hosts = (uint32_t)cfg.max_agents,
			},
			.coordinator_id = cid, .store_event = sink ? chsink_fleet_event : NULL, .store_arg = sink,
			.pending_ms = cfg.command_pending_ms, .mode_signals = cfg.correlator_mode_signals,
			.cost_signals = cfg.correlator_cost_signals,
			.cost = { .ratio = cfg.correlator_cost_ratio, .min_share = cfg.correlator_cost_min_share },
		};
		if ((r = ctlplane_new(&cpo, &ctl)) < 0)
			ms_err("GRPC-LISTEN", "cannot serve gRPC on %s:%u: %s (continuing without the control plane)",
			       cfg.grpc_address, cfg.grpc_port, strerror(-r));
		else
			ms_info("GRPC-LISTEN", "serving gRPC on %s:%u", cfg.grpc_address, ctlplane_port(ctl));
		if (ctl && status_add_source(stat, ctlplane_metrics, ctl) < 0) /* ctl is freed after the httpd */
			ms_warn("METRICS-SOURCE", "no room for the fleet metrics on /metrics (continuing without them)");
		atomic_store(&tee.ctl, ctl);
	}
	char port[32] = "";
	if (ingest_port(ing))
		snprintf(port, sizeof(port), " (port %u)", ingest_port(ing));
	ms_info("COORD-READY", "micro_sentinel_coordinator %s id=%016" PRIx64 " listening on %s%s", MS_VERSION, cid,
		cfg.listen_url, port);

	uint64_t end = cfg.duration_ms ? mono_ms() + cfg.duration_ms : 0;
	while (!stop_flag && (!end || mono_ms() < end)) {
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
		uint32_t dropped = 0;
		if (sink && chsink_tick(sink, time(NULL), &dropped) > 0) {
			if (dropped)
				ms_info("RETENTION", "dropped %" PRIu32 " expired ClickHouse partitions", dropped);
			else
				log_schema(&cfg, sink);
		}
	}
	rc = 0;
out:
	ctlplane_stop(ctl); /* first: its handlers read the registry and ingest */
	httpd_free(http);
	struct ingest_stats st = { 0 };
	if (ing)
		ingest_stats(ing, &st);
	ingest_free(ing); /* stops listening, answers what is queued, waits for the store */
	ctlplane_free(ctl); /* after ingest: its workers fed the correlator */
	uint64_t rejected = 0;
	for (int i = 0; i < INGEST_R__N; i++)
		rejected += st.rejected[i];
	ms_info("COORD-STOP", "accepted=%" PRIu64 " duplicate=%" PRIu64 " rejected=%" PRIu64 " samples=%" PRIu64,
		st.accepted, st.duplicate, rejected, st.samples);
	status_free(stat);
	if (sink) {
		/* the writer drains: inserts what it can within 10 s, the rest stays in its spool */
		struct chwriter_stats cs;
		uint64_t ins = 0, spooled = 0, failed = 0;
		chsink_drain(sink, 10000);
		chsink_stats(sink, &cs);
		for (int t = 0; t < CHWRITER_MAX_TABLES; t++) {
			ins += cs.t[t].rows_inserted;
			spooled += cs.t[t].rows_spooled;
			failed += cs.t[t].rows_failed;
		}
		ms_info("CLICKHOUSE-STOP", "rows inserted=%" PRIu64 " spooled=%" PRIu64 " failed=%" PRIu64
			"; %" PRIu64 " batches left in the spool for the next start", ins, spooled, failed,
			cs.spool_records);
		chsink_free(sink);
	}
	winstore_free(ws);
	dedup_free(dd);
	registry_free(reg);
	return rc;
}
