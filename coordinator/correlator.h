/* correlator: fleet triggers from per-host signals. Each signal is (host, key) — an anomaly
 * ("anomaly:<metric>:<kind>", e.g. "anomaly:tx_bytes:drop": no interface name, so hosts whose
 * interfaces are named differently agree) or a cost deviation ("cost:<flow or service>:<function>:
 * <event>") — and hosts belong to groups (a label's value). When at least min_hosts hosts of one
 * group (and, if min_fraction > 0, that share of the group) signalled the same key within
 * span_ms, it decides TRIGGER: the group goes to diagnostic for diag_ttl_ms; while the signals
 * go on it decides EXTEND before the TTL runs out; when no host signalled the key for clear_ms
 * it decides CLEAR (back to sentinel). Triggers of a group are rate limited (min_interval_ms) and
 * capped: no trigger may put more than max_diag_fraction of the fleet in diagnostic
 * (SUPPRESSED_RATE / SUPPRESSED_CAP, each said once per episode). It only decides: pushing
 * commands and recording events is the caller's (ctlplane.c). Bounded: max_hosts hosts,
 * max_keys (group, key) entries, CORRELATOR_MAX_HOSTS_PER_KEY hosts tracked per key.
 * Thread-safety: one mutex; every call may come from any thread. */
#ifndef MS_CORRELATOR_H
#define MS_CORRELATOR_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define CORRELATOR_GROUP_MAX 64
#define CORRELATOR_KEY_MAX 160
#define CORRELATOR_MAX_HOSTS_PER_KEY 1024

struct correlator_opts {
	uint64_t span_ms;            /* 0: 30000 */
	uint32_t min_hosts;          /* 0: 2 */
	double min_fraction;         /* 0: count only */
	uint64_t diag_ttl_ms;        /* 0: 60000 */
	uint64_t clear_ms;           /* 0: 2 * span_ms */
	uint64_t min_interval_ms;    /* 0: 60000 */
	double max_diag_fraction;    /* 0: 0.5 */
	uint32_t max_hosts;          /* 0: 10000 */
	uint32_t max_keys;           /* 0: 4096 */
};

enum correlator_kind {
	CORRELATOR_TRIGGER = 1,
	CORRELATOR_EXTEND = 2,
	CORRELATOR_CLEAR = 3,
	CORRELATOR_SUPPRESSED_RATE = 4,
	CORRELATOR_SUPPRESSED_CAP = 5,
};

struct correlator_decision {
	enum correlator_kind kind;
	char group[CORRELATOR_GROUP_MAX];
	char key[CORRELATOR_KEY_MAX];
	uint32_t agreeing;           /* hosts that signalled within the span */
	uint32_t group_hosts;
	uint32_t nagents;            /* the group's hosts (the command's targets) */
	char (*agents)[WIRE_ID_MAX]; /* malloc'd; correlator_decisions_free */
};

struct correlator_stats {
	uint64_t signals, unknown_host, key_drops, triggers, extends, clears, suppressed;
	uint64_t suppressed_rate, suppressed_cap;
	uint32_t hosts, keys, hosts_in_diagnostic;
	uint32_t groups_in_diagnostic;   /* groups with a trigger not yet cleared */
};

struct correlator;

int correlator_new(const struct correlator_opts *o, struct correlator **ret);
struct correlator *correlator_free(struct correlator *c);
/* Registers a host or moves it to another group. -ENOSPC when max_hosts are known. */
int correlator_host(struct correlator *c, const char *agent_id, const char *group);
/* One signal of a known host at now_ms. -ENOENT (unknown host), -ENOSPC (max_keys: counted). */
int correlator_signal(struct correlator *c, const char *agent_id, const char *key, uint64_t now_ms);
/* Decisions due at now_ms (malloc'd array in *ret, count in *ret_n; both NULL/0 when none). */
int correlator_tick(struct correlator *c, uint64_t now_ms, struct correlator_decision **ret, size_t *ret_n);
void correlator_decisions_free(struct correlator_decision *d, size_t n);
void correlator_get_stats(struct correlator *c, uint64_t now_ms, struct correlator_stats *ret);
const char *correlator_kind_name(enum correlator_kind k);

#endif
