/* pmu: the PMU event groups of each sampling mode and everything decided about them before and
 * between attaching — full perf encodings (struct events_spec: type, config, config1, config2,
 * precise level, period or frequency, data address, access kind, interference class), the
 * built-in defaults per CPU vendor (Intel Skylake and later, AMD with IBS-op, generic and
 * software sets), the strict parser of /api/v1/pmu-config bodies and of the `events` key,
 * validation against the host (each event is opened once on one CPU, never attached, and every
 * refusal carries its reason), the rotation plan when groups need more hardware counters than the
 * host has, and the multiplexing scale math. It opens nothing that outlives a call and attaches
 * nothing (events.c does).
 * Thread-safety: no shared state; a config is a plain value any thread may read or copy. */
#ifndef MS_PMU_H
#define MS_PMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"

#define PMU_MODES 2              /* index: enum loop_mode (0 sentinel, 1 diagnostic) */
#define PMU_MAX_GROUPS 8         /* per mode */
#define PMU_MAX_GROUP_EVENTS 8
#define PMU_MAX_BODY (64u << 10) /* largest accepted pmu-config body */
#define PMU_DEFAULT_ROTATION_MS 100

struct pmu_group {
	char name[32];
	uint32_t nevents;
	struct events_spec ev[PMU_MAX_GROUP_EVENTS];
};

struct pmu_mode_cfg {
	uint32_t ngroups;
	struct pmu_group groups[PMU_MAX_GROUPS];
};

struct pmu_config {
	bool present[PMU_MODES];           /* the mode was given (parse); defaults set both */
	struct pmu_mode_cfg mode[PMU_MODES];
	uint32_t rotation_ms;              /* rotation slot when groups exceed the counters */
	char source[32];                   /* "intel-skylake+", "amd", "generic", "events-key", "api" */
};

/* What the host offers, from sysfs and cpuid (never from running a program). */
struct pmu_host {
	char vendor[16];        /* "intel", "amd", "other" */
	uint32_t family, model;
	bool cpu_pmu;           /* /sys/bus/event_source/devices/cpu (or cpu_core) exists */
	char pmu_name[32];      /* cpu/caps/pmu_name ("skylake", "icelake", ...), "" unknown */
	int32_t ibs_op_type;    /* perf type of the ibs_op PMU, -1 when absent */
	uint32_t counters;      /* general-purpose counters per logical CPU; 0 unknown */
	int32_t max_precise;    /* cpu/caps/max_precise, -1 unknown */
};

int pmu_host_probe(struct pmu_host *ret_host);

/* Built-in groups for the host: Intel Skylake and later get L3 miss, HITM
 * (mem_load_l3_hit_retired.xsnp_hitm), remote DRAM (mem_load_l3_miss_retired.remote_dram and
 * OFFCORE_RESPONSE with its config1), stores and branch misses; AMD gets cycles, branch and cache
 * misses plus IBS-op where the ibs_op PMU exists; anything else the generic hardware events.
 * Every set ends with page-faults (data addresses), and hardware events name their software
 * fallback (cpu-clock, page-faults). cpu_clock_hz and fault_period (0: 999, 64) set the software
 * events' rates. */
void pmu_defaults(const struct pmu_host *host, uint64_t cpu_clock_hz, uint64_t fault_period,
		  struct pmu_config *ret_cfg);

/* The `events` key: a comma list of catalogue names, each its own group in both modes.
 * -EINVAL with "unknown event 'x'" in reason. */
int pmu_config_from_names(const char *list, uint64_t cpu_clock_hz, uint64_t fault_period,
			  struct pmu_config *ret_cfg, char *reason, size_t reason_len);

/* A pmu-config body (JSON):
 *   {"sentinel":{"groups":[G...]}, "diagnostic":{"groups":[G...]}, "rotation_ms":N}
 * every member optional but at least one mode; G = {"name":"g","events":[E...]}; E = a catalogue
 * name, or {"name":..., "type":"hardware|software|raw|hw_cache|breakpoint|<sysfs PMU>|N",
 * "config":N|"0x..", "config1":.., "config2":.., "precise":0-3, "period":N | "freq":N,
 * "sample_addr":bool, "branch_stack":bool, "access":"none|load|store|hitm",
 * "class":"data_path|control_path|execution|topology|unknown", "fallback":"name"|""}.
 * An object whose name is in the catalogue starts from the catalogue entry; otherwise type,
 * config and period or freq are required. Unknown keys, wrong types and out-of-range values are
 * refused. Returns 0, or -EINVAL / -E2BIG with a one-line reason naming the field. Pure: does
 * not look at the host (dynamic PMU names are resolved by pmu_config_validate). */
int pmu_config_parse(const char *buf, size_t len, struct pmu_config *ret_cfg, char *reason, size_t reason_len);

/* Replaces dst's modes by src's present ones (an API call may set one mode only). */
void pmu_config_merge(struct pmu_config *dst, const struct pmu_config *src);

/* How validation tries an encoding. */
struct pmu_probe_ops {
	/* Opens spec on one CPU, disabled and not attached, and closes it: 0 or negative errno. */
	int (*try_open)(void *ctx, const struct events_spec *spec);
	/* perf type of a dynamic PMU (/sys/bus/event_source/devices/<name>/type): >= 0 or -errno. */
	int (*pmu_type)(void *ctx, const char *name);
};

extern const struct pmu_probe_ops pmu_host_probe_ops;

/* Checks cfg against the host and fills in dynamic PMU types: each event must open (or name a
 * fallback that opens), precise levels within the host's maximum, every group within the host's
 * counters, at most EVENTS_MAX distinct events over both modes. ops NULL: the host's. Returns 0,
 * or -EINVAL / -EOPNOTSUPP / -E2BIG / -EPERM with a reason like
 *   "sentinel group 'mem' event 'l3-miss': perf_event_open: No such file or directory (this
 *    host's PMU does not count this event)". */
int pmu_config_validate(struct pmu_config *cfg, const struct pmu_host *host, const struct pmu_probe_ops *ops,
			void *ctx, char *reason, size_t reason_len);

/* Interference class of an encoding the catalogue does not name: generic hardware and cache
 * events and the software events by meaning, known Intel raw codes by event select, IBS as data
 * path; anything else EVENTS_IC_UNKNOWN (reported as "unknown", never guessed). */
uint8_t pmu_classify(const struct events_spec *spec);

/* Why perf_event_open failed, in operator's words ("this host's PMU does not count this event"). */
const char *pmu_errno_reason(int err);

/* Rotation plan of one mode. Groups are given as masks of event slot indices (bit i = events
 * slot i): hw[g] the slots that need a hardware counter, sw[g] those that do not. Software
 * events run in every slot; hardware groups are packed first-fit, largest first, into slots of
 * at most counters events (a group larger than that gets a slot of its own and the kernel
 * multiplexes inside it). counters 0 = unknown: one slot, the kernel multiplexes. */
struct pmu_plan {
	uint32_t nslots;                    /* >= 1 */
	uint32_t always;                    /* slots active in every rotation slot */
	uint32_t slot[PMU_MAX_GROUPS];      /* hardware slots per rotation slot */
	uint32_t wanted;                    /* every slot of the mode */
};

int pmu_plan_build(const uint32_t *hw, const uint32_t *sw, uint32_t ngroups, uint32_t counters,
		   struct pmu_plan *ret_plan);
/* Active slot mask at monotonic time now_ns: rotation slot (now / rotation) mod nslots. */
uint32_t pmu_plan_active(const struct pmu_plan *p, uint64_t now_ns, uint64_t rotation_ns);

/* One event over one window. wanted_ns: wall time its group belonged to the current mode;
 * nfds: the per-CPU file descriptors it is open on; enabled_ns / running_ns: the kernel's
 * time_enabled / time_running deltas summed over those fds (time_enabled only advances while the
 * agent has the event enabled, so it measures the rotation exactly, ioctl latency included). */
struct pmu_times {
	uint64_t wanted_ns;
	uint32_t nfds;
	bool rotated;       /* the agent disabled it for part of the wanted time */
	uint64_t enabled_ns, running_ns;
};

/* scale = (wanted x nfds / enabled) x (enabled / running): the agent's rotation (only when it
 * rotated the event out: otherwise exactly 1, not a ratio of two clocks) times the kernel's
 * multiplexing, i.e. the factor by which samples x period under-count the events of the wanted
 * time. 0 when the event never ran (no estimate; it has no samples either). */
double pmu_scale(const struct pmu_times *t);

#endif
