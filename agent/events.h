/* events: the sampling events of the agent — the catalogue of named encodings, opening the
 * events of both modes' PMU groups (pmu.h) on every online CPU, attaching the BPF handler with the
 * event identity as attach cookie, the explicit fallback from hardware events to software ones
 * (cpu-clock, page-faults with PERF_SAMPLE_ADDR) when the PMU cannot open them, and at run time
 * enabling exactly the current mode's events with the rotation plan's groups, accounting the
 * time each event was wanted, enabled and running for the multiplexing scale. It is not the BPF
 * loader (sampler.c) and decides no policy (pmu.c plans, the loop calls).
 * Thread-safety: owned by the sampling loop; the capability report is copied out by value. */
#ifndef MS_EVENTS_H
#define MS_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENTS_MAX 16
#define EVENTS_MAX_CPUS 1024

struct bpf_program;
struct bpf_link;
struct pmu_config;

enum events_source {
	EVENTS_SRC_HW = 0,
	EVENTS_SRC_SW = 1,
};

/* One event the agent wants to sample, with its full perf encoding. */
struct events_spec {
	char name[48];
	uint32_t type;       /* PERF_TYPE_* */
	uint64_t config, config1, config2;
	bool freq;           /* period is a frequency in Hz */
	uint64_t period;     /* sample_period or sample_freq */
	bool sample_addr;    /* PERF_SAMPLE_ADDR: the event delivers data addresses */
	int precise;         /* precise_ip 0..3 */
	bool branch_stack;   /* request LBR branch records */
	char fallback[48];   /* name of the software event used when this cannot be opened ("" = none) */
	uint8_t iclass;      /* interference class (see events_iclass_name) */
	uint8_t access;      /* enum events_access: what a sampled data address was accessed by */
	char pmu[16];        /* dynamic PMU name ("ibs_op") whose sysfs type fills `type`; "" = fixed */
};

/* Access kind of an event's data addresses (numbered like enum fs_access in falseshare.h). */
enum events_access {
	EVENTS_ACC_NONE = 0,  /* no address, or an address without kind (page faults, IBS) */
	EVENTS_ACC_LOAD = 1,
	EVENTS_ACC_STORE = 2,
	EVENTS_ACC_HITM = 3,  /* load that hit a line modified in another core */
};

/* State of one event after opening. */
struct events_state {
	struct events_spec spec;
	enum events_source source;
	bool live;           /* opened on at least one CPU and attached */
	int ncpus_open;
	int err;             /* negative errno of the first failure, 0 if none */
	char reason[160];    /* why it is not live, or what it replaced */
	uint8_t modes;       /* bit m: wanted in mode m (fallback slots: the modes of what they replace) */
	uint8_t group[2];    /* group index per mode, 0xff = not in that mode */
	int8_t fallback_slot; /* slot that replaced this one, -1 none */
	bool enabled;        /* enabled now (mode and rotation) */
	double scale;        /* multiplexing scale of the last window (1 when not multiplexed) */
};

struct events;

struct events_opts {
	uint64_t cpu_clock_freq;      /* Hz for cpu-clock */
	uint64_t page_fault_period;   /* every Nth page fault */
	int32_t target_pid;           /* -1: all processes (per CPU); otherwise that pid on all CPUs */
	const char *override;         /* "events" config key: comma list of names; NULL/"" = defaults */
	const struct pmu_config *pmu; /* groups per mode; NULL: from override, else the host defaults */
	uint32_t counters;            /* hardware counters for rotation; 0: the host's (cpuid) */
	uint64_t rotation_ms;         /* 0: the config's (PMU_DEFAULT_ROTATION_MS) */
};

/* Builds the event set (pmu config, override, or the host defaults) without opening anything.
 * Unknown names in override → -EINVAL with the name in ret_err. */
int events_new(const struct events_opts *opts, struct events **ret, char *ret_err, size_t errlen);

/* Opens every event on every online CPU and attaches prog with cookie
 * (index | MS_COOKIE_F_* flags). Events that cannot be opened fall back to their software
 * replacement (logged by the caller from the state). Returns the number of live events,
 * or a negative errno when nothing could be opened at all. */
int events_open_attach(struct events *ev, struct bpf_program *prog);

/* Detaches and closes everything (idempotent). */
void events_close(struct events *ev);

/* Run time, on the loop thread. Enables the events of `mode` that the rotation plan has active
 * at monotonic time now_ns and disables the others (ioctl per fd, only on change), accounting
 * wanted/active time. Cheap when nothing changes: call it on every loop tick. */
void events_tick(struct events *ev, int mode, uint64_t now_ns);
/* Ends the scale interval at now_ns: reads time_enabled/time_running of every fd and writes each
 * slot's pmu_scale into scales[0..n) (and the slot state); 1.0 for slots not multiplexed, 0 for
 * slots that did not run while wanted. Returns the number of slots written. */
int events_take_scales(struct events *ev, uint64_t now_ns, double *scales, int n);
/* Replaces the groups (e.g. /api/v1/pmu-config): closes every event, rebuilds the slots from cfg
 * and opens and attaches them to prog. The caller closes its window first (slot indices change).
 * Returns like events_open_attach. */
int events_reconfigure(struct events *ev, const struct pmu_config *cfg, struct bpf_program *prog);
/* Changes whenever events_reconfigure rebuilt the slots (cached per-slot tables go stale). */
uint32_t events_generation(const struct events *ev);
/* The groups in force (a copy of what events_new/events_reconfigure received or built). */
const struct pmu_config *events_pmu_config(const struct events *ev);
/* Number of rotation slots of mode (1 = no rotation). */
uint32_t events_rotation_slots(const struct events *ev, int mode);

/* The catalogue entry called name, or NULL. */
const struct events_spec *events_catalogue_find(const char *name);
/* Slot index of the event called name, or -1. */
int events_find(const struct events *ev, const char *name);

int events_count(const struct events *ev);
const struct events_state *events_get(const struct events *ev, int idx);
int events_live_count(const struct events *ev);
const char *events_iclass_name(uint8_t iclass);
void events_free(struct events *ev);

/* Online CPUs from /sys/devices/system/cpu/online into cpus[]; returns the count or -errno. */
int events_online_cpus(int *cpus, int max);
/* Parses a CPU list "0-3,5" (exposed for tests). */
int events_parse_cpulist(const char *s, int *cpus, int max);

/* Interference classes (OPERATIONS_GUIDE: data path, control path, execution resource,
 * topology). */
enum events_iclass {
	EVENTS_IC_UNKNOWN = 0,
	EVENTS_IC_DATA_PATH = 1,     /* cache misses, DRAM, page faults on data */
	EVENTS_IC_CONTROL_PATH = 2,  /* branch mispredicts */
	EVENTS_IC_EXECUTION = 3,     /* cycles, CPU time */
	EVENTS_IC_TOPOLOGY = 4,      /* remote NUMA, HITM (cross-core) */
};

#endif
