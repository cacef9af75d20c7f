/* registry: the agents this coordinator knows — identity and labels from their Hello,
 * capability, last accepted window (seq, lag), last contact, the spool depth and mode they
 * report — and their health: an agent not heard from for stale_after_ms is "stale", not
 * forgotten. It lives in memory: after a coordinator restart agents are asked to say Hello
 * again (ACK_UNKNOWN_AGENT), which rebuilds it within one round trip. It is not the dedup
 * table (dedup.h) and does not authenticate. Bounded: at most max_agents entries.
 * Thread-safety: every call takes one mutex; readers get copies. */
#ifndef MS_REGISTRY_H
#define MS_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

#define REGISTRY_DEFAULT_MAX_AGENTS 10000u /* ~20 KiB each (the Hello with its capability) */

enum registry_state {
	REGISTRY_LIVE = 0,
	REGISTRY_STALE = 1,
};

/* A copy of one agent's entry. */
struct registry_agent {
	struct wire_hello hello;      /* as last announced */
	uint64_t registered_ms;       /* CLOCK_MONOTONIC ms of the first Hello this run */
	uint64_t last_seen_ms;        /* last request of any kind */
	uint64_t last_seq;            /* highest seq accepted this run */
	uint64_t last_window_end_ns;  /* CLOCK_REALTIME end of that window */
	uint64_t lag_ms;              /* receive time - window end, for the last accepted window */
	uint64_t windows;             /* accepted this run */
	uint64_t duplicates;
	uint64_t spool_windows;       /* as last reported */
	uint8_t mode;                 /* of the last window or heartbeat */
	enum registry_state state;
};

struct registry;

int registry_new(uint32_t max_agents, uint32_t stale_after_ms, struct registry **ret);
struct registry *registry_free(struct registry *r);

/* Registers or refreshes an agent. -ENOSPC when the registry is full. */
int registry_hello(struct registry *r, const struct wire_hello *h, uint64_t now_ms);
/* True if the agent said Hello since this coordinator started. */
bool registry_known(struct registry *r, const char *agent_id);
/* Marks contact (any request). Returns -ENOENT for an unknown agent. */
int registry_touch(struct registry *r, const char *agent_id, uint64_t now_ms, uint64_t spool_windows, int mode);
/* Records an accepted (or duplicate) window; now_ns is CLOCK_REALTIME for the lag. */
int registry_window(struct registry *r, const struct wire_window *w, bool duplicate, uint64_t now_ms, uint64_t now_ns);

/* Agents per state, as of now_ms. */
void registry_counts(struct registry *r, uint64_t now_ms, uint32_t *ret_live, uint32_t *ret_stale);
/* Copies entry i (0..count-1, registration order) with its state as of now_ms; -ENOENT past
 * the end. */
int registry_get(struct registry *r, uint32_t i, uint64_t now_ms, struct registry_agent *ret);
uint32_t registry_count(struct registry *r);

#endif
