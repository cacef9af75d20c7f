/* api: the agent's local HTTP control API (OPERATIONS_GUIDE §4.2, SPEC §4) on common/httpd —
 *   POST /api/v1/mode, /api/v1/token-bucket, /api/v1/targets, /api/v1/pmu-config (loop commands:
 *        the reply comes from the loop thread once the command was applied),
 *   POST /api/v1/symbols/jit, /api/v1/symbols/data (symbolizer registrations, answered at once),
 *   GET  /api/v1/status (mode, pin, budgets, events, uplink, counters, top flows and functions),
 *   GET  /healthz (public: 200 while the sampling loop reports, 503 when it stalls).
 * Every answer is JSON: {"status":"ok",...} or {"error":...,"reason":...}; 400 for a body that is
 * not what the endpoint takes, 413 for one too large, 503 when the loop's command queue is full;
 * httpd adds 401/404/405 and the per-request timeout. It is not the metrics endpoint and holds no
 * agent state of its own. Thread-safety: handlers run on nng's threads and never block them;
 * api_new/api_free on the main thread (free after httpd_free and after the loop stopped). */
#ifndef MS_API_H
#define MS_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct httpd;
struct loop;
struct loop_cmd;
struct metrics;
struct symbolizer;
struct pmu_probe_ops;

struct api_opts {
	struct loop *loop;             /* where commands go */
	/* test hook: replaces loop_submit(loop, cmd) when set */
	int (*submit)(void *arg, struct loop_cmd *cmd);
	void *submit_arg;
	struct metrics *metrics;       /* the status snapshot (required) */
	struct symbolizer *sym;        /* registrations; NULL: those endpoints answer 503 */
	const char *version;
	const char *cgroup_root;       /* NULL: the host's cgroup2 mount */
	bool pmu;                      /* real perf events (false with the synthetic source: 409) */
	const struct pmu_probe_ops *pmu_ops; /* validation; NULL: the host's perf_event_open */
	void *pmu_ctx;
	uint64_t stall_ms;             /* /healthz: loop silent this long = 503; 0: 10000 */
};

struct api;

int api_new(const struct api_opts *opts, struct api **ret);
/* Adds every route to h (the bearer token, if any, is httpd's). */
int api_register(struct api *a, struct httpd *h);
struct api *api_free(struct api *a);

/* True when every address host resolves to is a loopback address (127/8, ::1, ::ffff:127/104);
 * false for anything else, including names that do not resolve and wildcards (0.0.0.0, ::). */
bool api_is_loopback(const char *host);
/* Reads a bearer token file: the first line, surrounding blanks removed; 16..4095 printable
 * ASCII bytes without spaces. -ENOENT etc., -EINVAL (empty, too short, bad bytes), -E2BIG. */
int api_read_token(const char *path, char *buf, size_t size);

/* The GET /api/v1/status document of snapshot s at CLOCK_REALTIME now (ms); api_status.c. */
struct jsonw;
struct metrics_snapshot;
struct symbolizer_stats;
void api_write_status(struct jsonw *j, const struct metrics_snapshot *s, const struct symbolizer_stats *sym,
		      const char *version, uint64_t now);

#endif
