/* opapi: the coordinator's operator API (ms.v1.Coordinator over rpc.h): list and describe
 * agents, set mode / budgets / targets / PMU groups on a selector (all, host list, label
 * match) with TTL and reason, list and watch fleet events and anomalies, fleet status. Every
 * request is validated (INVALID_ARGUMENT with the field and the rule). Commands go out through
 * watch.h to the agents' Watch streams; each accepted command is a fleet event. The agent set is
 * the union of the registry (agents that said Hello over nng) and the agents that watch.
 * It does not authenticate (rpc.h checks the token) and keeps no state but a command counter.
 * Thread-safety: handlers run on the rpc CQ thread; opapi_fleet_event from any thread. */
#ifndef MS_OPAPI_H
#define MS_OPAPI_H

#include <stdint.h>

#include "rpc.h"

struct registry;
struct watch;
struct evlog;
struct ingest;
struct correlator;

#define OPAPI_NMETHODS 11
#define OPAPI_MAX_TTL_MS (7ull * 24 * 3600 * 1000)

struct opapi_opts {
	struct registry *reg;        /* may be NULL (tests) */
	struct watch *watch;
	struct evlog *events;        /* FleetEvent log */
	struct evlog *anomalies;     /* FleetAnomaly log */
	struct ingest *ingest;       /* for fleet status; may be NULL */
	struct correlator *corr;     /* for fleet status (triggers); may be NULL */
};

struct opapi;

int opapi_new(const struct opapi_opts *o, struct opapi **ret);
struct opapi *opapi_free(struct opapi *a);
/* Fills OPAPI_NMETHODS methods to register. */
void opapi_methods(struct opapi *a, struct rpc_method out[OPAPI_NMETHODS]);

/* A new command id (unique across restarts; shared with the correlator's commands). */
uint64_t opapi_next_id(struct opapi *a);

/* Records a fleet event (ms.v1.FleetEvent) in the events log and streams it to watchers. */
int opapi_fleet_event(struct evlog *events, const char *kind, const char *group, const char *const *agents,
		      uint32_t nagents, const char *detail, uint64_t command_id);
/* watch_event_fn adapter: arg is the events evlog. */
void opapi_on_watch_event(void *arg, const char *kind, const char *agent_id, const char *detail,
			  uint64_t command_id);

#endif
