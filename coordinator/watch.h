/* watch: the agent-facing side of the control plane — the AgentControl.Watch streams agents
 * keep open (one per agent id; a newer stream replaces the older) and AgentControl.Report, the
 * results agents send back. Pushes are commands packed once and queued on the agent's stream
 * (rpc.h: bounded, sent from the caller's thread). It remembers, per agent that ever watched
 * (bounded by max_agents), its labels, connection state, the last mode pin pushed and the last
 * result. It does not choose agents (opapi.c resolves selectors) and does not retry: an agent
 * that is not connected is not sent the command, and the caller reports that.
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
};

/* Fleet events watch raises: kind "agent_connected", "agent_disconnected", "command_failed". */
typedef void (*watch_event_fn)(void *arg, const char *kind, const char *agent_id, const char *detail,
			       uint64_t command_id);

struct watch;

int watch_new(uint32_t max_agents, watch_event_fn on_event, void *arg, struct watch **ret);
/* Call after the rpc server is gone (its close callbacks have run). NULL-safe; returns NULL. */
struct watch *watch_free(struct watch *w);
/* The two methods to register with the rpc server. */
void watch_methods(struct watch *w, struct rpc_method out[2]);

/* Packs cmd and queues it on the agent's stream. -ENOENT (not connected), -ENOSPC (its queue
 * is full), -ENOMEM. A mode command records the pin. */
int watch_push(struct watch *w, const char *agent_id, const struct Ms__V1__Command *cmd);
/* Copy of one agent's entry; -ENOENT. */
int watch_get(struct watch *w, const char *agent_id, struct watch_agent *ret);
/* Number of entries; watch_get_at copies entry i (registration order). */
uint32_t watch_count(struct watch *w);
int watch_get_at(struct watch *w, uint32_t i, struct watch_agent *ret);

#endif
