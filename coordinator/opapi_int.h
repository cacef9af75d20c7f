/* opapi_int: what opapi.c (handlers) and opapi_view.c (the agent view: registry + watch
 * table, selectors, AgentInfo) share; not part of the opapi API. Thread-safety: as opapi.h. */
#ifndef MS_OPAPI_INT_H
#define MS_OPAPI_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet.pb-c.h"
#include "opapi.h"
#include "registry.h"
#include "rpc.h"
#include "watch.h"

#define OPAPI_MAX_HOSTS 1000 /* agent ids in one selector */

struct opapi {
	struct opapi_opts o;
	atomic_uint_fast64_t next_id;
};

/* One agent as both sources know it. */
struct opapi_view {
	char id[WIRE_ID_MAX];
	bool in_reg, in_watch;
	struct registry_agent ra;
	struct watch_agent wa;
};

struct opapi_listctx {
	const Ms__V1__Selector *sel;
	uint8_t *out;
	size_t len, cap;
};

__attribute__((format(printf, 3, 4))) void opapi_fail(struct rpc_reply *rep, int code, const char *fmt, ...);
uint64_t opapi_real_ns(void);
uint64_t opapi_mono_ms(void);
/* The agent id's entries in both sources; false if neither knows it. */
bool opapi_lookup(struct opapi *a, const char *id, struct opapi_view *v);
/* Calls fn for every agent once (watchers first, then registry-only agents); stops at fn < 0. */
int opapi_for_each(struct opapi *a, int (*fn)(void *ctx, struct opapi_view *v), void *ctx);
/* Validates a selector; required: an empty one is an error (else it means all). */
bool opapi_selector_valid(const Ms__V1__Selector *s, bool required, struct rpc_reply *rep);
bool opapi_selector_match(const Ms__V1__Selector *s, const struct opapi_view *v);
/* Packs an AgentInfo for v into a malloc'd buffer. */
int opapi_pack_info(const struct opapi_view *v, uint8_t **ret, size_t *ret_len);
/* opapi_for_each callback: appends v's AgentInfo as field 1 when it matches ctx->sel. */
int opapi_list_one(void *ctx, struct opapi_view *v);

#endif
