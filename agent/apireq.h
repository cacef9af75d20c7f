/* apireq: strict parsers of the local control API's request bodies (OPERATIONS_GUIDE §4.2, §8)
 * into plain values — mode, token bucket, targets, JIT/data symbol registrations. JSON is parsed
 * by json.h (exact 64-bit integers, depth and size limits); every body is an object or array of
 * known shape, unknown fields and wrong types are refused with a reason naming the field. It does
 * not talk HTTP nor touch agent state (api.c does). PMU configs are parsed by pmu.h.
 * Thread-safety: pure; reentrant. */
#ifndef MS_APIREQ_H
#define MS_APIREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "targets.h"

#define APIREQ_MAX_BODY (1u << 20)     /* the API's body bound (larger: 413) */
#define APIREQ_MAX_DEPTH 16
#define APIREQ_MAX_REGIONS 4096
#define APIREQ_MAX_TTL_S 31536000ull   /* one year */
#define APIREQ_MAX_BUDGET 10000000ull  /* as the config keys */
#define APIREQ_MAX_HARD_DROP_NS 1000000000ull

/* Filled on failure: the HTTP status to answer (400 or 413) and why. */
struct apireq_err {
	int status;
	char reason[256];
};

/* {"mode":"sentinel|diagnostic|auto", "ttl_s":N}  (ttl_s optional, 0 = until cleared) */
struct apireq_mode {
	int mode;            /* 0 sentinel, 1 diagnostic, 2 auto */
	uint64_t ttl_ms;
};
int apireq_mode(const char *body, size_t len, struct apireq_mode *ret, struct apireq_err *err);

/* {"sentinel_samples_per_sec":N, "diagnostic_samples_per_sec":N, "hard_drop_ns":N}, at least one */
struct apireq_budgets {
	uint32_t set;        /* LOOP_BUDGET_* bits of the fields given */
	uint64_t sentinel, diagnostic, hard_drop_ns;
};
int apireq_budgets(const char *body, size_t len, struct apireq_budgets *ret, struct apireq_err *err);

/* {"targets":[T...]} or [T...] or a single T, where T = {"type":"flow|port|proto|ifindex|pid|cgroup",
 * "value":...}; flow and cgroup values are strings, port and pid integers, proto and ifindex
 * either. An empty list clears the targets. Returns the count (<= max) or -EINVAL/-E2BIG. */
int apireq_targets(const char *body, size_t len, struct targets_entry *out, size_t max, struct apireq_err *err);

/* {"pid":N, "regions":[R...]} or {"pid":N, R's fields}, R = {"start":A, "size":A, "name":"f"
 * [, "module":"m" (code only)]}; A = integer or "0x..." hex string. */
struct apireq_region {
	uint64_t start, size;
	char name[128];
	char module[128];    /* "" = default */
};
int apireq_regions(const char *body, size_t len, bool code, uint32_t *ret_pid, struct apireq_region *out,
		   size_t max, struct apireq_err *err);

#endif
