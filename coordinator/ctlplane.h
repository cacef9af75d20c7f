/* ctlplane: the coordinator's control plane assembled — the gRPC server (rpc.h) carrying the
 * operator API (opapi.h), the agents' Watch/Report (watch.h), the fleet event and anomaly logs
 * (evlog.h) and the correlator (correlator.h) with its ticker thread, which groups agents by a
 * label, turns decisions into mode pushes (diagnostic with a TTL; auto when cleared) and records
 * each as a fleet event. ctlplane_window feeds it every accepted window's anomaly signals (and,
 * with mode_signals, "the agent's own controller put it in diagnostic"). Every fleet event —
 * decisions, operator commands, agent (dis)connects, pending command outcomes — is counted by
 * kind and, when a store is given (ClickHouse), handed to it as an ms_fleet_events row.
 * Thread-safety: new/stop/free from one thread; ctlplane_window and ctlplane_metrics from any. */
#ifndef MS_CTLPLANE_H
#define MS_CTLPLANE_H

#include <stdbool.h>
#include <stdint.h>

#include "correlator.h"
#include "costdev.h"
#include "strbuf.h"

struct registry;
struct ingest;
struct watch;
struct evlog;
struct wire_window;
struct chrows_fleet_event;

/* Makes one fleet event durable (e.g. chsink_fleet_event); 0 or a negative errno (counted). */
typedef int (*ctlplane_store_fn)(void *arg, const struct chrows_fleet_event *e);

/* The correlator key of mode_signals. */
#define CTLPLANE_MODE_KEY "mode:diagnostic"

#define CTLPLANE_EVENTS 10000   /* fleet events kept in memory */
#define CTLPLANE_ANOMALIES 10000

struct ctlplane_opts {
	const char *address;
	uint16_t port;               /* 0 = ephemeral */
	const char *token;           /* NULL/"": none */
	const char *tls_cert_file, *tls_key_file, *tls_ca_file;
	uint32_t max_agents;
	struct registry *reg;
	struct ingest *ingest;
	struct correlator_opts corr;
	const char *group_label;     /* NULL/"": "role" */
	uint32_t tick_ms;            /* correlator tick; 0: 1000 */
	uint64_t coordinator_id;     /* the host column of stored events */
	ctlplane_store_fn store_event; /* NULL: fleet events live only in memory */
	void *store_arg;
	uint64_t pending_ms;         /* keep commands for agents not connected this long; 0: off */
	/* A window in diagnostic from an agent the coordinator has not pinned is a signal
	 * (CTLPLANE_MODE_KEY): the agent's own controller escalated, e.g. on a local anomaly. */
	bool mode_signals;
	/* Cost deviations (costdev.h) of each window are signals "cost:<func id>:<event>". */
	bool cost_signals;
	struct costdev_opts cost;
};

struct ctlplane;

/* -EADDRINUSE, -ENOENT (TLS files), -ENOMEM, -EINVAL. */
int ctlplane_new(const struct ctlplane_opts *o, struct ctlplane **ret);
uint16_t ctlplane_port(const struct ctlplane *c);
struct watch *ctlplane_watch(struct ctlplane *c);
struct evlog *ctlplane_events(struct ctlplane *c);
struct evlog *ctlplane_anomalies(struct ctlplane *c);
/* An accepted window: each anomaly signal is a correlator signal (host, "anomaly:<metric>:<kind>")
 * — every window, while it is in force — and goes to the anomaly log once per episode (agent,
 * interface, metric, kind, fire time). */
void ctlplane_window(struct ctlplane *c, const struct wire_window *w);
/* status source: ms_coord_fleet_* (triggers, events by kind, groups and hosts in diagnostic,
 * suppressions, signals, stored events, pending commands). arg is the ctlplane. */
int ctlplane_metrics(void *arg, struct strbuf *sb);
/* Ends every stream (agents see UNAVAILABLE and reconnect elsewhere or later) and stops the
 * ticker; no handler runs after it. NULL-safe. */
void ctlplane_stop(struct ctlplane *c);
/* Stops (if not yet) and frees. NULL-safe; returns NULL. */
struct ctlplane *ctlplane_free(struct ctlplane *c);

#endif
