/* watch: the agent-facing side of the control plane — the AgentControl.Watch streams agents
 * keep open (one per agent id; a newer stream replaces the older) and AgentControl.Report, the
 * results agents send back. Pushes are commands packed once and queued on the agent's stream
 * (rpc.h: bounded, sent from the caller's thread). It remembers, per agent that ever watched
 * (bounded by max_agents), its labels, connection state, the last mode pin pushed and the last
 * result. It does not choose agents (opapi.c resolves selectors) and does not retry. An agent
 * that is not connected is not sent the command; with pending commands on (watch_set_pending)
 * the latest command of each kind (mode, budgets, targets, PMU) is kept for it instead and sent
 * when its Watch comes back, with what is left of its TTL (a command without a TTL is kept for
 * the pending time); a newer command of the kind replaces it, an expired one is dropped with a
 * "command_expired" event. Bounded: WATCH_PENDING_KINDS per agent, WATCH_PENDING_MAX_BYTES in all.
 * Thread-safety: one mutex; callbacks (on_event) run without it held. */
#ifndef MS_WATCH_H
#define MS_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "rpc.h"
#include "wire.h"

struct Ms__V1__Command;

#define WATCH_METHOD_WATCH "/ms.v1.AgentControl/Watch"
#define WATCH_METHOD_REPORT "/ms.v1.AgentControl/Report"
#define WATCH_PENDED 1                          /* watch_push: kept for the agent's next Watch */
#define WATCH_PENDING_KINDS 4                   /* mode, budgets, targets, PMU */
#define WATCH_PENDING_MAX_BYTES (16u << 20)     /* packed pending commands, all agents */

struct watch_agent {
	char agent_id[WIRE_ID_MAX];
	char host[128];
	char version[32];
	char peer[96];
	uint32_t nlabels;
	struct wire_label labels[WIRE_MAX_LABELS];
	bool connected;
	uint64_t instance;
	uint64_t connects;
	uint64_t last_change_ns;     /* CLOCK_REALTIME of the last connect/disconnect */
	int pin;                     /* ModeRequest of the last mode pushed (0 none, 3 auto) */
	uint64_t pin_expires_ns;     /* CLOCK_REALTIME; 0 = until cleared */
	uint64_t last_cmd_id;
	bool last_ok;
	char last_error[128];
	uint64_t results;
	uint32_t npending;           /* commands kept for its next Watch */
};

struct watch_stats {
	uint64_t pending, pending_bytes;   /* now */
	uint64_t pended, delivered, expired, refused; /* refused: over WATCH_PENDING_MAX_BYTES */
};

/* Fleet events watch raises: kind "agent_connected", "agent_disconnected", "command_failed",
 * "command_delivered" and "command_expired" (pending commands). */
typedef void (*watch_event_fn)(void *arg, const char *kind, const char *agent_id, const char *detail,
			       uint64_t command_id);

struct watch;

int watch_new(uint32_t max_agents, watch_event_fn on_event, void *arg, struct watch **ret);
/* Call after the rpc server is gone (its close callbacks have run). NULL-safe; returns NULL. */
struct watch *watch_free(struct watch *w);
/* The two methods to register with the rpc server. */
void watch_methods(struct watch *w, struct rpc_method out[2]);

/* Keeps commands for agents that are not connected up to max_ms (0: off, the default: such a
 * push fails with -ENOENT). Call before the streams start. */
void watch_set_pending(struct watch *w, uint64_t max_ms);
/* Packs cmd and queues it on the agent's stream: 0. WATCH_PENDED when the agent is known but not
 * connected and pending commands are on. -ENOENT (unknown, or not connected with pending off),
 * -ENOSPC (its queue is full, or the pending bound), -ENOMEM. A mode command records the pin
 * (a pending one when it is delivered). */
int watch_push(struct watch *w, const char *agent_id, const struct Ms__V1__Command *cmd);
/* Drops pending commands whose time is over (a "command_expired" event each). Cost: O(agents). */
void watch_sweep(struct watch *w);
void watch_get_stats(struct watch *w, struct watch_stats *ret);
/* Copy of one agent's entry; -ENOENT. */
int watch_get(struct watch *w, const char *agent_id, struct watch_agent *ret);
/* A window of the agent in mode (0 sentinel, 1 diagnostic) arrived: true when it is in
 * diagnostic on its own — no pin of ours in force, and it has been back in sentinel since the
 * last pin of ours ended (windows closed under the pin and the agent's mode hold after it are
 * not its own doing). Unknown agents: true for diagnostic. */
bool watch_own_diagnostic(struct watch *w, const char *agent_id, int mode);
/* Number of entries; watch_get_at copies entry i (registration order). */
uint32_t watch_count(struct watch *w);
int watch_get_at(struct watch *w, uint32_t i, struct watch_agent *ret);

#endif
