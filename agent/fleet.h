/* fleet: the agent's fleet-control client — one thread that keeps AgentControl.Watch open to
 * the coordinator's gRPC API (reconnecting with exponential backoff while it is away), hands
 * every pushed Command to an apply callback (the same code path as the local API: the caller
 * turns it into a loop command) and reports the result with AgentControl.Report. It applies
 * nothing itself and never blocks the sampling loop: while the coordinator is away the agent
 * keeps its local control and its own mode controller.
 * Thread-safety: fleet_new/fleet_free from one thread; fleet_get_stats from any; apply runs
 * on the fleet thread and may block (up to a few seconds). */
#ifndef MS_FLEET_H
#define MS_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct Ms__V1__Command;

/* Applies one command; returns 0 or a negative errno with a reason in err. */
typedef int (*fleet_apply_fn)(void *arg, const struct Ms__V1__Command *cmd, char *err, size_t errlen);

struct fleet_opts {
	const char *target;          /* "host:port" of the coordinator's gRPC API */
	const char *token;           /* NULL/"": none */
	const char *tls_ca_file;     /* set: TLS */
	const char *tls_cert_file, *tls_key_file; /* client certificate (mutual TLS) */
	const char *agent_id, *host, *version;
	const struct wire_label *labels;
	uint32_t nlabels;
	uint64_t instance;
	uint32_t backoff_min_ms;     /* 0: 100 */
	uint32_t backoff_max_ms;     /* 0: 5000 */
	fleet_apply_fn apply;
	void *apply_arg;
};

struct fleet_stats {
	bool connected;
	uint64_t connects;           /* Watch streams that opened */
	uint64_t disconnects;
	uint64_t commands;           /* received */
	uint64_t applied, failed;    /* by the apply callback's answer */
	uint64_t bad;                /* undecodable commands */
	uint64_t reports_failed;     /* Report calls that did not reach the coordinator */
	int last_code;               /* gRPC status that ended the last stream */
	char last_detail[256];
};

struct fleet;
struct loop;

/* The apply callback of the daemon (fleet_apply.c): the command becomes the loop command the
 * local API would queue (mode pins with its TTL on behalf of "coordinator", auto clears the pin;
 * budgets; targets), and the fleet thread waits up to timeout_ms for the loop's answer. PMU
 * groups by name are refused (-EOPNOTSUPP) until the coordinator sends full encodings. */
struct fleet_loop_ctx {
	struct loop *loop;
	const char *cgroup_root;     /* NULL: the host's cgroup2 mount */
	uint32_t timeout_ms;         /* 0: 2000 */
};
int fleet_apply_loop(void *ctx, const struct Ms__V1__Command *cmd, char *err, size_t errlen);

int fleet_new(const struct fleet_opts *o, struct fleet **ret);
void fleet_get_stats(struct fleet *f, struct fleet_stats *ret);
/* Cancels the stream, joins the thread. NULL-safe; returns NULL. */
struct fleet *fleet_free(struct fleet *f);

#endif
