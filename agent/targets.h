/* targets: which samples the operator wants — filters by flow (CIDR or address prefix on either
 * endpoint, port on either side, protocol, ifindex), by process (pid = tgid) and by cgroup v2
 * (a path resolved to cgroup ids, its own and its descendants', so processes that join later
 * match without re-reading anything per sample). It is not the BPF tgid filter (the loop hands a
 * lone pid to BPF, see targets_single_pid) and it does no I/O per sample.
 *
 * Semantics: entries of the same kind are alternatives (OR); different kinds must all hold (AND).
 * An empty set matches everything. Flow kinds never match an unattributed sample (flow 0).
 * Text form of one entry, used by the config key `targets`, the API and the status endpoint:
 *   flow:10.1.        dotted IPv4 prefix of whole octets (= 10.1.0.0/16)
 *   flow:10.0.0.0/8   IPv4 or IPv6 CIDR; a bare address is /32 or /128; "fd00:1:" is an IPv6
 *                     prefix of whole groups (= fd00:1::/32)
 *   port:443          proto:tcp (tcp, udp, icmp, icmpv6, sctp or 0..255)
 *   ifindex:2         ifindex:eth0 (resolved once, in the agent's network namespace)
 *   pid:1234          cgroup:/sys/fs/cgroup/system.slice/x.service (or relative to the root)
 * Thread-safety: a built set is immutable except targets_refresh and the match counters, which
 * belong to the sampling loop; build on any thread, then hand it over. */
#ifndef MS_TARGETS_H
#define MS_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ms_abi.h"

#define TARGETS_MAX 64              /* entries per set */
#define TARGETS_MAX_CGROUP_IDS 1024 /* resolved cgroup ids (all cgroup entries, subtrees included) */
#define TARGETS_TEXT_MAX 288        /* longest text form, NUL included */
#define TARGETS_DEFAULT_CGROUP_ROOT "/sys/fs/cgroup"

enum targets_kind {
	TARGETS_FLOW = 0,
	TARGETS_PORT,
	TARGETS_PROTO,
	TARGETS_IFINDEX,
	TARGETS_PID,
	TARGETS_CGROUP,
	TARGETS__NKINDS,
};

struct targets_entry {
	enum targets_kind kind;
	union {
		struct {
			uint8_t addr[16];   /* IPv4 as ::ffff:a.b.c.d, masked to plen */
			uint8_t plen;       /* 0..128 */
		} net;
		uint16_t port;
		uint8_t proto;
		uint32_t ifindex;
		uint32_t pid;
		char cgroup[256];           /* path relative to the cgroup root, without leading '/' */
	} u;
};

/* Parses "kind:value" (see above) into *ret. err (may be NULL) receives the reason.
 * Returns 0 or -EINVAL. Does no I/O except if_nametoindex for interface names. */
int targets_parse_spec(const char *spec, struct targets_entry *ret, char *err, size_t errlen);
/* Parses kind and value given apart (the API's {"type":..,"value":..}); value is text. */
int targets_parse(const char *kind, const char *value, struct targets_entry *ret, char *err, size_t errlen);
/* Parses a comma-separated list of specs (the `targets` key) into out[0..max); blanks around
 * items are ignored, empty items are errors. Returns the count or -EINVAL / -E2BIG with err. */
int targets_parse_list(const char *list, struct targets_entry *out, size_t max, char *err, size_t errlen);
/* Canonical text form ("flow:10.1.0.0/16"); returns the length or -ENOSPC. */
int targets_format(const struct targets_entry *e, char *buf, size_t len);
const char *targets_kind_name(enum targets_kind k);

struct targets;

/* Builds a set from n entries (n <= TARGETS_MAX; n == 0 is the match-everything set) and
 * resolves cgroup entries under cgroup_root (NULL: TARGETS_DEFAULT_CGROUP_ROOT). A cgroup that
 * does not exist is an error (-ENOENT with the path in err): a filter that can never match is
 * refused, not silently installed. -EINVAL, -E2BIG, -ENOMEM. */
int targets_new(const struct targets_entry *e, size_t n, const char *cgroup_root, struct targets **ret,
		char *err, size_t errlen);
struct targets *targets_free(struct targets *t);

/* Per sample, a few compares per entry. */
bool targets_match(const struct targets *t, const struct ms_sample *s);
bool targets_empty(const struct targets *t);
/* The tgid BPF can filter on (the set's only pid entry), else 0. When it is not 0, the user-space
 * check of pids is redundant but harmless. */
uint32_t targets_single_pid(const struct targets *t);
/* Re-resolves cgroup subtrees (new child cgroups). Cost: one directory walk per cgroup entry,
 * bounded by TARGETS_MAX_CGROUP_IDS; the loop calls it every few seconds. Returns the number of
 * ids or a negative errno (the previous ids are kept then). */
int targets_refresh(struct targets *t);

size_t targets_count(const struct targets *t);
const struct targets_entry *targets_get(const struct targets *t, size_t i);
size_t targets_cgroup_ids(const struct targets *t);

/* Resolves one cgroup v2 directory to its id (what bpf_get_current_cgroup_id returns for tasks
 * in it). -errno of the failure. */
int targets_cgroup_id(const char *path, uint64_t *ret_id);

#endif
