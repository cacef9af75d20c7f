/* api: see api.h. */
#include "api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apireq.h"
#include "httpd.h"
#include "jsonw.h"
#include "loop.h"
#include "metrics.h"
#include "pmu.h"
#include "symbolizer.h"
#include "targets.h"

#define REPLY_MAX (4u << 20)

struct api {
	struct api_opts o;
	char version[32];
	char cgroup_root[256];
	struct pmu_host host;
};

/* A command in flight: the loop calls done with &p->cmd, which is the first member. */
struct pending {
	struct loop_cmd cmd;
	struct httpd_call *call;
	struct api *a;
};

int api_new(const struct api_opts *opts, struct api **ret)
{
	if (!opts->metrics || (!opts->loop && !opts->submit))
		return -EINVAL;
	struct api *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->o = *opts;
	snprintf(a->version, sizeof(a->version), "%s", opts->version ? opts->version : "");
	snprintf(a->cgroup_root, sizeof(a->cgroup_root), "%s", opts->cgroup_root ? opts->cgroup_root : "");
	a->o.version = a->version;
	a->o.cgroup_root = a->cgroup_root[0] ? a->cgroup_root : NULL;
	if (!a->o.stall_ms)
		a->o.stall_ms = METRICS_DEFAULT_STALL_MS;
	if (opts->pmu)
		pmu_host_probe(&a->host);
	*ret = a;
	return 0;
}

struct api *api_free(struct api *a)
{
	free(a);
	return NULL;
}

static uint64_t real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void reply_writer(struct httpd_call *call, struct jsonw *j)
{
	const char *buf;
	size_t len;
	if (jsonw_newline(j) < 0 || jsonw_result(j, &buf, &len) < 0)
		httpd_call_reply_error(call, 500, "reply exceeded its size bound");
	else
		httpd_call_reply(call, 200, "application/json", buf, len);
}

static const char *mode_name(int m)
{
	return m == LOOP_MODE_DIAGNOSTIC ? "diagnostic" : m == LOOP_MODE_SENTINEL ? "sentinel" : "auto";
}

static void write_pin(struct jsonw *j, bool pinned, int mode, const char *source, uint64_t expires_ms, uint64_t now)
{
	jsonw_key(j, "pin");
	if (!pinned) {
		jsonw_null(j);
		return;
	}
	jsonw_begin_object(j);
	jsonw_key(j, "mode");
	jsonw_string(j, mode_name(mode));
	jsonw_key(j, "source");
	jsonw_string(j, source);
	jsonw_key(j, "expires");
	if (expires_ms)
		jsonw_u64(j, expires_ms);
	else
		jsonw_null(j);
	jsonw_key(j, "expires_in_s");
	if (expires_ms)
		jsonw_double(j, expires_ms > now ? (double)(expires_ms - now) / 1000.0 : 0.0);
	else
		jsonw_null(j);
	jsonw_end_object(j);
}

static void write_budgets(struct jsonw *j, uint64_t s, uint64_t d, uint64_t h)
{
	jsonw_key(j, "budgets");
	jsonw_begin_object(j);
	jsonw_key(j, "sentinel_samples_per_sec");
	jsonw_u64(j, s);
	jsonw_key(j, "diagnostic_samples_per_sec");
	jsonw_u64(j, d);
	jsonw_key(j, "hard_drop_ns");
	jsonw_u64(j, h);
	jsonw_end_object(j);
}

/* ---- commands -------------------------------------------------------------------------- */

static void on_done(struct loop_cmd *cmd, int result)
{
	struct pending *p = (struct pending *)cmd;
	const struct loop_cmd_out *o = &cmd->out;
	if (result < 0) {
		httpd_call_reply_error(p->call, result == -EOPNOTSUPP ? 409 : result == -ENOMEM ? 500 : 400,
				       o->reason[0] ? o->reason : strerror(-result));
		free(p);
		return;
	}
	struct jsonw *j;
	if (jsonw_new(64 << 10, &j) < 0) {
		httpd_call_reply_error(p->call, 500, "out of memory");
		free(p);
		return;
	}
	jsonw_begin_object(j);
	jsonw_key(j, "status");
	jsonw_string(j, "ok");
	jsonw_key(j, "mode");
	jsonw_string(j, mode_name(o->mode));
	write_pin(j, o->pinned, o->pin_mode, o->pin_source, o->pin_expires_ms, real_ms());
	write_budgets(j, o->sentinel, o->diagnostic, o->hard_drop_ns);
	jsonw_key(j, "targets");
	jsonw_u64(j, o->ntargets);
	jsonw_key(j, "bpf_pid_filter");
	jsonw_u64(j, o->filter_tgid);
	if (cmd->type == LOOP_CMD_SET_PMU) {
		jsonw_key(j, "live_events");
		jsonw_i64(j, o->live_events);
	}
	jsonw_end_object(j);
	reply_writer(p->call, j);
	jsonw_free(j);
	free(p);
}

/* Queues p's command; on failure answers and frees everything the loop did not take. */
static void submit(struct api *a, struct pending *p)
{
	p->a = a;
	p->cmd.done = on_done;
	int r = a->o.submit ? a->o.submit(a->o.submit_arg, &p->cmd) : loop_submit(a->o.loop, &p->cmd);
	if (r == 0)
		return;
	httpd_call_reply_error(p->call, 503, "the sampling loop's command queue is full; retry");
	if (p->cmd.type == LOOP_CMD_SET_TARGETS)
		targets_free(p->cmd.u.targets);
	if (p->cmd.type == LOOP_CMD_SET_PMU)
		free(p->cmd.u.pmu);
	free(p);
}

static struct pending *pending_new(struct httpd_call *call, enum loop_cmd_type type)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (!p) {
		httpd_call_reply_error(call, 500, "out of memory");
		return NULL;
	}
	p->call = call;
	p->cmd.type = type;
	snprintf(p->cmd.source, sizeof(p->cmd.source), "api");
	return p;
}

static void on_mode(void *arg, struct httpd_call *call)
{
	size_t len;
	const char *body = httpd_call_body(call, &len);
	struct apireq_mode m;
	struct apireq_err err;
	if (apireq_mode(body, len, &m, &err) < 0) {
		httpd_call_reply_error(call, err.status, err.reason);
		return;
	}
	struct pending *p = pending_new(call, LOOP_CMD_SET_MODE);
	if (!p)
		return;
	p->cmd.u.mode = m.mode;
	p->cmd.ttl_ms = m.ttl_ms;
	submit(arg, p);
}

static void on_budgets(void *arg, struct httpd_call *call)
{
	size_t len;
	const char *body = httpd_call_body(call, &len);
	struct apireq_budgets b;
	struct apireq_err err;
	if (apireq_budgets(body, len, &b, &err) < 0) {
		httpd_call_reply_error(call, err.status, err.reason);
		return;
	}
	struct pending *p = pending_new(call, LOOP_CMD_SET_BUDGETS);
	if (!p)
		return;
	p->cmd.u.budgets.sentinel = b.sentinel;
	p->cmd.u.budgets.diagnostic = b.diagnostic;
	p->cmd.u.budgets.hard_drop_ns = b.hard_drop_ns;
	p->cmd.u.budgets.set = b.set;
	submit(arg, p);
}

static void on_targets(void *arg, struct httpd_call *call)
{
	struct api *a = arg;
	size_t len;
	const char *body = httpd_call_body(call, &len);
	struct apireq_err err;
	struct targets_entry *e = malloc(TARGETS_MAX * sizeof(*e));
	if (!e) {
		httpd_call_reply_error(call, 500, "out of memory");
		return;
	}
	int n = apireq_targets(body, len, e, TARGETS_MAX, &err);
	struct targets *t = NULL;
	char why[256];
	int r = n < 0 ? n : targets_new(e, (size_t)n, a->o.cgroup_root, &t, why, sizeof(why));
	free(e);
	if (n < 0) {
		httpd_call_reply_error(call, err.status, err.reason);
		return;
	}
	if (r < 0) {
		httpd_call_reply_error(call, r == -ENOMEM ? 500 : 400, why);
		return;
	}
	struct pending *p = pending_new(call, LOOP_CMD_SET_TARGETS);
	if (!p) {
		targets_free(t);
		return;
	}
	p->cmd.u.targets = t;
	submit(a, p);
}

static void on_pmu(void *arg, struct httpd_call *call)
{
	struct api *a = arg;
	if (!a->o.pmu) {
		httpd_call_reply_error(call, 409, "the agent runs the synthetic source (--perf-mock): no PMU events");
		return;
	}
	size_t len;
	const char *body = httpd_call_body(call, &len);
	char why[256] = "";
	struct pmu_config *cfg = malloc(sizeof(*cfg));
	if (!cfg) {
		httpd_call_reply_error(call, 500, "out of memory");
		return;
	}
	int r = pmu_config_parse(body, len, cfg, why, sizeof(why));
	if (r == 0)
		r = pmu_config_validate(cfg, &a->host, a->o.pmu_ops, a->o.pmu_ctx, why, sizeof(why));
	if (r < 0) {
		free(cfg);
		httpd_call_reply_error(call, r == -E2BIG && len > PMU_MAX_BODY ? 413 : r == -ENOMEM ? 500 : 400,
				       why[0] ? why : strerror(-r));
		return;
	}
	struct pending *p = pending_new(call, LOOP_CMD_SET_PMU);
	if (!p) {
		free(cfg);
		return;
	}
	p->cmd.u.pmu = cfg;
	submit(a, p);
}

static void on_symbols(struct api *a, struct httpd_call *call, bool code)
{
	if (!a->o.sym) {
		httpd_call_reply_error(call, 503, "no symbolizer");
		return;
	}
	size_t len;
	const char *body = httpd_call_body(call, &len);
	struct apireq_err err;
	struct apireq_region *r = malloc(APIREQ_MAX_REGIONS * sizeof(*r));
	if (!r) {
		httpd_call_reply_error(call, 500, "out of memory");
		return;
	}
	uint32_t pid;
	int n = apireq_regions(body, len, code, &pid, r, APIREQ_MAX_REGIONS, &err);
	if (n < 0) {
		free(r);
		httpd_call_reply_error(call, err.status, err.reason);
		return;
	}
	int done = 0, rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		rc = code ? symbolizer_register_region(a->o.sym, pid, r[i].start, r[i].size, r[i].name,
						       r[i].module[0] ? r[i].module : NULL)
			  : symbolizer_register_data(a->o.sym, pid, r[i].start, r[i].size, r[i].name);
		done += rc == 0;
	}
	free(r);
	if (rc < 0) {
		char why[160];
		snprintf(why, sizeof(why), "registered %d of %d regions: %s", done, n,
			 rc == -ENOSPC ? "the region table is full" : strerror(-rc));
		httpd_call_reply_error(call, rc == -ENOSPC ? 503 : 400, why);
		return;
	}
	char ok[96];
	int l = snprintf(ok, sizeof(ok), "{\"status\":\"ok\",\"registered\":%d,\"pid\":%u}\n", done, pid);
	httpd_call_reply(call, 200, "application/json", ok, (size_t)l);
}

static void on_jit(void *arg, struct httpd_call *call)
{
	on_symbols(arg, call, true);
}

static void on_data(void *arg, struct httpd_call *call)
{
	on_symbols(arg, call, false);
}

/* ---- status ---------------------------------------------------------------------------- */

static void on_status(void *arg, struct httpd_call *call)
{
	struct api *a = arg;
	struct metrics_snapshot *s = malloc(sizeof(*s));
	struct jsonw *j = NULL;
	if (!s || jsonw_new(REPLY_MAX, &j) < 0) {
		free(s);
		httpd_call_reply_error(call, 500, "out of memory");
		return;
	}
	metrics_snapshot(a->o.metrics, s);
	struct symbolizer_stats ss;
	if (a->o.sym)
		symbolizer_stats(a->o.sym, &ss);
	api_write_status(j, s, a->o.sym ? &ss : NULL, a->version, real_ms());
	reply_writer(call, j);
	jsonw_free(j);
	free(s);
}

static void on_healthz(void *arg, struct httpd_call *call)
{
	struct api *a = arg;
	char body[160];
	int status = metrics_health(a->o.metrics, a->o.stall_ms, body, sizeof(body));
	httpd_call_reply(call, status, "application/json", body, strlen(body));
}

int api_register(struct api *a, struct httpd *h)
{
	static const struct {
		const char *method, *path;
		httpd_handler_fn fn;
		unsigned flags;
	} routes[] = {
		{ "POST", "/api/v1/mode", on_mode, 0 },
		{ "POST", "/api/v1/token-bucket", on_budgets, 0 },
		{ "POST", "/api/v1/targets", on_targets, 0 },
		{ "POST", "/api/v1/pmu-config", on_pmu, 0 },
		{ "POST", "/api/v1/symbols/jit", on_jit, 0 },
		{ "POST", "/api/v1/symbols/data", on_data, 0 },
		{ "GET", "/api/v1/status", on_status, 0 },
		{ "GET", "/healthz", on_healthz, HTTPD_PUBLIC },
	};
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		int r = httpd_route(h, routes[i].method, routes[i].path, routes[i].flags, routes[i].fn, a);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- start-up helpers ---------------------------------------------------------------- */

static bool addr_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}

bool api_is_loopback(const char *host)
{
	char h[256];
	size_t n = strlen(host);
	if (n >= sizeof(h) || n == 0)
		return false;
	/* "[::1]" as the config allows it */
	if (host[0] == '[' && host[n - 1] == ']') {
		memcpy(h, host + 1, n - 2);
		h[n - 2] = 0;
	} else {
		memcpy(h, host, n + 1);
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
	if (getaddrinfo(h, NULL, &hints, &ai) != 0 || !ai)
		return false;
	bool all = true;
	for (struct addrinfo *p = ai; p; p = p->ai_next)
		all = all && addr_loopback(p->ai_addr);
	freeaddrinfo(ai);
	return all;
}

int api_read_token(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char tmp[4097];
	ssize_t n = read(fd, tmp, sizeof(tmp));
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	if ((size_t)n == sizeof(tmp))
		return -E2BIG;
	size_t b = 0, len = (size_t)n;
	while (b < len && (tmp[b] == ' ' || tmp[b] == '\t'))
		b++;
	size_t end = b;
	while (end < len && tmp[end] != '\n' && tmp[end] != '\r')
		end++;
	while (end > b && (tmp[end - 1] == ' ' || tmp[end - 1] == '\t'))
		end--;
	if (end - b < 16 || end - b >= size)
		return end - b >= size ? -E2BIG : -EINVAL;
	for (size_t i = b; i < end; i++)
		if (tmp[i] <= ' ' || tmp[i] > '~')
			return -EINVAL;
	memcpy(buf, tmp + b, end - b);
	buf[end - b] = 0;
	return 0;
}
