/* privdrop: least privilege for the daemons. It computes the capability set a daemon still needs
 * once its start-up work (BPF load, attach, perf events) is done, and reduces the process to it:
 * PR_SET_NO_NEW_PRIVS, every other capability out of the bounding set, the ambient and
 * inheritable sets cleared, permitted = effective = the kept set, and SECBIT_NOROOT locked so
 * uid 0 regains nothing through execve. It is not a sandbox (no seccomp, no uid change) and
 * uses raw capget/capset/prctl (no libcap).
 * Thread-safety: capset(2) changes the calling thread only, so privdrop_apply refuses (-EBUSY) to
 * run while the process has more than one thread; threads started afterwards inherit the
 * reduced sets. The mask functions are pure. */
#ifndef MS_PRIVDROP_H
#define MS_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bit c of a mask is capability number c (CAP_* of <linux/capability.h>; all fit in 64 bits). */
#define PRIVDROP_BIT(c) (UINT64_C(1) << (c))

/* What the kernel offers and what the daemon will still do after the drop. */
struct privdrop_env {
	int last_cap;        /* /proc/sys/kernel/cap_last_cap (CAP_BPF = 39 needs >= 39) */
	int perf_paranoid;   /* /proc/sys/kernel/perf_event_paranoid */
	bool synthetic;      /* agent without BPF or perf events (perf_mock_mode) */
	bool low_port;       /* a listener below 1024 is still to be bound */
};

/* Reads last_cap and perf_paranoid from /proc (defaults when unreadable: 40 and 2). The two bool
 * fields are left to the caller. Returns 0. */
int privdrop_read_env(struct privdrop_env *env);

/* The agent's runtime capability set (reasons in privdrop.c and docs/OPERATIONS.md). */
uint64_t privdrop_agent_keep(const struct privdrop_env *env);
/* The coordinator's: nothing, except CAP_NET_BIND_SERVICE for a listener below 1024. */
uint64_t privdrop_coordinator_keep(const struct privdrop_env *env);
/* Every capability 0..last_cap. */
uint64_t privdrop_all(int last_cap);

struct privdrop_result {
	uint64_t before;     /* effective set before */
	uint64_t after;      /* effective (= permitted) set after */
	uint64_t bounding;   /* bounding set after */
	bool had_setpcap;    /* the bounding set and securebits could be changed */
};

/* Reduces the process to keep (see above). Capabilities in keep that the process does not hold
 * stay absent. Without CAP_SETPCAP (not root, or already bounded by the service manager) the
 * bounding set is left as it is. Returns 0, -EBUSY (more than one thread) or a negative errno of
 * the failing prctl/capset; ret (may be NULL) is written on success. */
int privdrop_apply(uint64_t keep, int last_cap, struct privdrop_result *ret);

/* Formats a mask as "cap_bpf,cap_perfmon" (or "none") into buf. Returns buf. */
const char *privdrop_names(uint64_t mask, char *buf, size_t len);

#endif
