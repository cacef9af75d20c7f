/* events: the sampling events of the agent — which perf events exist on this host, opening them
 * on every online CPU, attaching the BPF handler with the event identity as attach cookie, and
 * the explicit fallback from hardware events to software ones (cpu-clock, page-faults with
 * PERF_SAMPLE_ADDR) when the PMU cannot open them. It is not the BPF loader (sampler.c) and
 * does not schedule rotation (later: PMU groups).
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
};

/* State of one event after opening. */
struct events_state {
	struct events_spec spec;
	enum events_source source;
	bool live;           /* opened on at least one CPU and attached */
	int ncpus_open;
	int err;             /* negative errno of the first failure, 0 if none */
	char reason[160];    /* why it is not live, or what it replaced */
};

struct events;

struct events_opts {
	uint64_t cpu_clock_freq;      /* Hz for cpu-clock */
	uint64_t page_fault_period;   /* every Nth page fault */
	int32_t target_pid;           /* -1: all processes (per CPU); otherwise that pid on all CPUs */
	const char *override;         /* "events" config key: comma list of names; NULL/"" = defaults */
};

/* Builds the event set (defaults or override) without opening anything. Unknown names in
 * override → -EINVAL with the name in ret_err. */
int events_new(const struct events_opts *opts, struct events **ret, char *ret_err, size_t errlen);

/* Opens every event on every online CPU and attaches prog with cookie
 * (index | MS_COOKIE_F_* flags). Events that cannot be opened fall back to their software
 * replacement (logged by the caller from the state). Returns the number of live events,
 * or a negative errno when nothing could be opened at all. */
int events_open_attach(struct events *ev, struct bpf_program *prog);

/* Detaches and closes everything (idempotent). */
void events_close(struct events *ev);

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
