/* events: see events.h. */
#include "events.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "ms_abi.h"
#include "pmu.h"

struct events_slot {
	struct events_state st;
	int nfds;
	int fds[EVENTS_MAX_CPUS];
	struct bpf_link *links[EVENTS_MAX_CPUS];
	/* scale accounting since the last events_take_scales */
	uint64_t wanted_ns;
	bool rotated;              /* wanted but disabled for part of the interval */
	uint64_t prev_enabled[EVENTS_MAX_CPUS], prev_running[EVENTS_MAX_CPUS];
};

struct events {
	struct events_opts opts;
	struct pmu_config pmu;     /* the groups the slots were built from */
	uint32_t counters;         /* hardware counters the rotation plan packs into (0 unknown) */
	struct pmu_plan plan[PMU_MODES];
	int n;
	struct events_slot *slots; /* n entries */
	uint32_t want, act;        /* slot masks in force */
	uint32_t gen;              /* bumped by events_reconfigure */
	uint64_t last_ns;          /* monotonic time of the last accounting, 0 = none yet */
};

/* The catalogue: generic hardware events the kernel maps per vendor, Intel raw encodings of
 * Skylake and later (event select | umask << 8; the PEBS ones carry data addresses and their
 * access kind), AMD IBS-op (type from sysfs), and the software events every Linux host has. */
static const struct events_spec catalogue[] = {
	{ .name = "cycles", .type = PERF_TYPE_HARDWARE, .config = PERF_COUNT_HW_CPU_CYCLES,
	  .freq = true, .period = 999, .fallback = "cpu-clock", .iclass = EVENTS_IC_EXECUTION },
	{ .name = "cache-misses", .type = PERF_TYPE_HARDWARE, .config = PERF_COUNT_HW_CACHE_MISSES,
	  .period = 10007, .fallback = "cpu-clock", .iclass = EVENTS_IC_DATA_PATH },
	{ .name = "branch-misses", .type = PERF_TYPE_HARDWARE, .config = PERF_COUNT_HW_BRANCH_MISSES,
	  .period = 10007, .fallback = "cpu-clock", .iclass = EVENTS_IC_CONTROL_PATH },
	/* mem_load_retired.l3_miss: event 0xd1 umask 0x20, precise, data address of the load */
	{ .name = "l3-miss", .type = PERF_TYPE_RAW, .config = 0x20d1, .period = 1009, .sample_addr = true,
	  .precise = 2, .fallback = "page-faults", .iclass = EVENTS_IC_DATA_PATH, .access = EVENTS_ACC_LOAD },
	/* mem_load_l3_hit_retired.xsnp_hitm: event 0xd2 umask 0x04: loads that found the line
	 * modified in another core (the false-sharing signal) */
	{ .name = "hitm", .type = PERF_TYPE_RAW, .config = 0x04d2, .period = 1009, .sample_addr = true,
	  .precise = 2, .fallback = "page-faults", .iclass = EVENTS_IC_TOPOLOGY, .access = EVENTS_ACC_HITM },
	/* mem_load_l3_miss_retired.remote_dram: event 0xd3 umask 0x02, precise, data address */
	{ .name = "remote-dram", .type = PERF_TYPE_RAW, .config = 0x02d3, .period = 1009, .sample_addr = true,
	  .precise = 2, .fallback = "page-faults", .iclass = EVENTS_IC_TOPOLOGY, .access = EVENTS_ACC_LOAD },
	/* OFFCORE_RESPONSE (event 0xb7 umask 0x01) with the response mask in config1 (MSR 0x1a6):
	 * all data reads, L3 miss, served by remote DRAM. Not precise, no data address. */
	{ .name = "offcore-remote-dram", .type = PERF_TYPE_RAW, .config = 0x01b7, .config1 = 0x63b800491ULL,
	  .period = 10007, .fallback = "cpu-clock", .iclass = EVENTS_IC_TOPOLOGY },
	/* mem_inst_retired.all_stores: event 0xd0 umask 0x82, precise, data address of the store */
	{ .name = "stores", .type = PERF_TYPE_RAW, .config = 0x82d0, .period = 10007, .sample_addr = true,
	  .precise = 2, .fallback = "page-faults", .iclass = EVENTS_IC_DATA_PATH, .access = EVENTS_ACC_STORE },
	/* AMD IBS op sampling: the ibs_op PMU's type is read from sysfs; the kernel reports the data
	 * address of sampled loads and stores (their kind is in the IBS registers, not decoded) */
	{ .name = "ibs-op", .pmu = "ibs_op", .type = UINT32_MAX, .config = 0, .period = 65536,
	  .sample_addr = true, .fallback = "page-faults", .iclass = EVENTS_IC_DATA_PATH },
	{ .name = "cpu-clock", .type = PERF_TYPE_SOFTWARE, .config = PERF_COUNT_SW_CPU_CLOCK,
	  .freq = true, .period = 999, .iclass = EVENTS_IC_EXECUTION },
	{ .name = "page-faults", .type = PERF_TYPE_SOFTWARE, .config = PERF_COUNT_SW_PAGE_FAULTS,
	  .period = 64, .sample_addr = true, .iclass = EVENTS_IC_DATA_PATH },
};
#define CATALOGUE_N (sizeof(catalogue) / sizeof(catalogue[0]))

const struct events_spec *events_catalogue_find(const char *name)
{
	for (size_t i = 0; i < CATALOGUE_N; i++)
		if (strcmp(catalogue[i].name, name) == 0)
			return &catalogue[i];
	return NULL;
}

int events_find(const struct events *ev, const char *name)
{
	for (int i = 0; i < ev->n; i++)
		if (strcmp(ev->slots[i].st.spec.name, name) == 0)
			return i;
	return -1;
}

const char *events_iclass_name(uint8_t iclass)
{
	switch (iclass) {
	case EVENTS_IC_DATA_PATH: return "data_path";
	case EVENTS_IC_CONTROL_PATH: return "control_path";
	case EVENTS_IC_EXECUTION: return "execution";
	case EVENTS_IC_TOPOLOGY: return "topology";
	default: return "unknown";
	}
}

/* Slot of spec (by name), added when new. Returns its index or -E2BIG. Software rates come from
 * the options only for catalogue-rate events; an explicit encoding keeps its own period. */
static int add_spec(struct events *ev, const struct events_spec *spec)
{
	int have = events_find(ev, spec->name);
	if (have >= 0)
		return have;
	if (ev->n >= EVENTS_MAX)
		return -E2BIG;
	struct events_slot *s = &ev->slots[ev->n];
	memset(s, 0, sizeof(*s));
	s->st.spec = *spec;
	s->st.group[0] = s->st.group[1] = 0xff;
	s->st.fallback_slot = -1;
	s->st.scale = 1.0;
	s->st.source = spec->type == PERF_TYPE_SOFTWARE ? EVENTS_SRC_SW : EVENTS_SRC_HW;
	return ev->n++;
}

/* Rebuilds the slots from cfg: the union of both modes' events by name, with their modes and
 * group per mode. */
static int build_slots(struct events *ev, const struct pmu_config *cfg, char *ret_err, size_t errlen)
{
	ev->pmu = *cfg;
	if (!ev->pmu.rotation_ms)
		ev->pmu.rotation_ms = PMU_DEFAULT_ROTATION_MS;
	ev->n = 0;
	for (int m = 0; m < PMU_MODES; m++)
		for (uint32_t g = 0; g < cfg->mode[m].ngroups; g++)
			for (uint32_t i = 0; i < cfg->mode[m].groups[g].nevents; i++) {
				int k = add_spec(ev, &cfg->mode[m].groups[g].ev[i]);
				if (k < 0) {
					snprintf(ret_err, errlen, "more than %d distinct events", EVENTS_MAX);
					return k;
				}
				ev->slots[k].st.modes |= (uint8_t)(1u << m);
				ev->slots[k].st.group[m] = (uint8_t)g;
			}
	if (ev->n == 0) {
		snprintf(ret_err, errlen, "no events selected");
		return -EINVAL;
	}
	return 0;
}

int events_new(const struct events_opts *opts, struct events **ret, char *ret_err, size_t errlen)
{
	struct events *ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	ev->opts = *opts;
	if (!ev->opts.cpu_clock_freq)
		ev->opts.cpu_clock_freq = 999;
	if (!ev->opts.page_fault_period)
		ev->opts.page_fault_period = 64;
	ev->slots = calloc(EVENTS_MAX, sizeof(*ev->slots));
	struct pmu_config *cfg = malloc(sizeof(*cfg));
	int r = ev->slots && cfg ? 0 : -ENOMEM;
	struct pmu_host host;
	pmu_host_probe(&host);
	ev->counters = opts->counters ? opts->counters : host.counters;
	if (r == 0 && opts->pmu)
		*cfg = *opts->pmu;
	else if (r == 0 && opts->override && opts->override[0])
		r = pmu_config_from_names(opts->override, ev->opts.cpu_clock_freq, ev->opts.page_fault_period, cfg,
					  ret_err, errlen);
	else if (r == 0)
		pmu_defaults(&host, ev->opts.cpu_clock_freq, ev->opts.page_fault_period, cfg);
	if (r == 0 && opts->rotation_ms)
		cfg->rotation_ms = (uint32_t)opts->rotation_ms;
	if (r == 0)
		r = build_slots(ev, cfg, ret_err, errlen);
	free(cfg);
	if (r < 0) {
		events_free(ev);
		return r;
	}
	*ret = ev;
	return 0;
}

int events_parse_cpulist(const char *s, int *cpus, int max)
{
	int n = 0;
	const char *p = s;
	while (*p && *p != '\n') {
		char *end;
		long a = strtol(p, &end, 10);
		if (end == p || a < 0)
			return -EINVAL;
		long b = a;
		p = end;
		if (*p == '-') {
			p++;
			b = strtol(p, &end, 10);
			if (end == p || b < a)
				return -EINVAL;
			p = end;
		}
		for (long c = a; c <= b; c++) {
			if (n >= max)
				return -E2BIG;
			cpus[n++] = (int)c;
		}
		if (*p == ',')
			p++;
		else if (*p && *p != '\n')
			return -EINVAL;
	}
	return n;
}

int events_online_cpus(int *cpus, int max)
{
	FILE *f = fopen("/sys/devices/system/cpu/online", "r");
	if (!f)
		return -errno;
	char buf[4096];
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	return events_parse_cpulist(buf, cpus, max);
}

static int perf_open(const struct events_spec *spec, int pid, int cpu)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = spec->type;
	a.config = spec->config;
	a.config1 = spec->config1;
	a.config2 = spec->config2;
	a.freq = spec->freq;
	if (spec->freq)
		a.sample_freq = spec->period;
	else
		a.sample_period = spec->period;
	a.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME;
	if (spec->sample_addr)
		a.sample_type |= PERF_SAMPLE_ADDR;
	if (spec->branch_stack) {
		a.sample_type |= PERF_SAMPLE_BRANCH_STACK;
		a.branch_sample_type = PERF_SAMPLE_BRANCH_ANY;
	}
	a.precise_ip = (unsigned)spec->precise & 3;
	a.disabled = 1;
	/* time_enabled/time_running give the kernel's multiplexing share (events_take_scales) */
	a.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
	int fd = (int)syscall(__NR_perf_event_open, &a, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void slot_close(struct events_slot *s)
{
	for (int i = 0; i < s->nfds; i++) {
		if (s->links[i])
			bpf_link__destroy(s->links[i]);
		if (s->fds[i] >= 0)
			close(s->fds[i]);
		s->links[i] = NULL;
		s->fds[i] = -1;
	}
	s->nfds = 0;
	s->st.live = false;
	s->st.ncpus_open = 0;
}

/* Opens one slot on all CPUs and attaches. Returns CPUs attached or negative errno. */
static int slot_open(struct events *ev, int idx, struct bpf_program *prog, const int *cpus, int ncpus)
{
	struct events_slot *s = &ev->slots[idx];
	uint64_t cookie = (uint64_t)idx & MS_COOKIE_EVENT_MASK;
	if (s->st.spec.sample_addr)
		cookie |= MS_COOKIE_F_ADDR;
	if (s->st.spec.branch_stack)
		cookie |= MS_COOKIE_F_LBR;
	int first_err = 0, ok = 0;
	s->nfds = 0;
	if (s->st.spec.pmu[0]) {
		int t = pmu_host_probe_ops.pmu_type(NULL, s->st.spec.pmu);
		if (t < 0) {
			s->st.err = t;
			return t;
		}
		s->st.spec.type = (uint32_t)t;
	}
	for (int i = 0; i < ncpus && i < EVENTS_MAX_CPUS; i++) {
		int fd = perf_open(&s->st.spec, ev->opts.target_pid >= 0 ? ev->opts.target_pid : -1, cpus[i]);
		if (fd < 0) {
			if (fd == -ENODEV) {
				/* CPU went offline between listing and opening: skip it */
				ms_warn("EVENT-CPU-OFFLINE", "event %s: cpu %d is offline, skipped",
					s->st.spec.name, cpus[i]);
				continue;
			}
			if (!first_err)
				first_err = fd;
			continue;
		}
		LIBBPF_OPTS(bpf_perf_event_opts, po, .bpf_cookie = cookie);
		struct bpf_link *l = bpf_program__attach_perf_event_opts(prog, fd, &po);
		if (!l) {
			int e = -errno;
			close(fd);
			if (!first_err)
				first_err = e ? e : -EINVAL;
			continue;
		}
		s->fds[s->nfds] = fd;
		s->links[s->nfds] = l;
		s->prev_enabled[s->nfds] = s->prev_running[s->nfds] = 0;
		s->nfds++;
		ok++;
	}
	s->st.ncpus_open = ok;
	s->st.live = ok > 0;
	s->st.err = ok ? 0 : first_err;
	return ok ? ok : (first_err ? first_err : -ENODEV);
}

/* Per mode: each group's live hardware slots (need a counter) and software slots (its own
 * software events and the replacements of its members that fell back). */
static void build_plans(struct events *ev)
{
	for (int m = 0; m < PMU_MODES; m++) {
		uint32_t hw[PMU_MAX_GROUPS] = { 0 }, sw[PMU_MAX_GROUPS] = { 0 };
		uint32_t ng = ev->pmu.mode[m].ngroups;
		for (int i = 0; i < ev->n; i++) {
			const struct events_state *st = &ev->slots[i].st;
			if (st->group[m] == 0xff || st->group[m] >= ng)
				continue;
			int live = st->live ? i : st->fallback_slot;
			if (live < 0 || !ev->slots[live].st.live)
				continue;
			if (ev->slots[live].st.source == EVENTS_SRC_HW)
				hw[st->group[m]] |= 1u << live;
			else
				sw[st->group[m]] |= 1u << live;
		}
		pmu_plan_build(hw, sw, ng, ev->counters, &ev->plan[m]);
	}
	/* attaching enabled every live event: that is the state until the first tick */
	ev->act = ev->want = 0;
	for (int i = 0; i < ev->n; i++)
		if (ev->slots[i].st.live) {
			ev->act |= 1u << i;
			ev->slots[i].st.enabled = true;
		}
	ev->want = ev->act;
	ev->last_ns = 0;
}

int events_open_attach(struct events *ev, struct bpf_program *prog)
{
	int cpus[EVENTS_MAX_CPUS];
	int ncpus = events_online_cpus(cpus, EVENTS_MAX_CPUS);
	if (ncpus <= 0)
		return ncpus < 0 ? ncpus : -ENODEV;
	/* An explicit pid still needs one fd per CPU for a per-CPU token bucket to make sense. */
	int nslots = ev->n;
	for (int i = 0; i < nslots; i++) {
		struct events_slot *s = &ev->slots[i];
		int r = slot_open(ev, i, prog, cpus, ncpus);
		if (r > 0)
			continue;
		const char *fb = s->st.spec.fallback;
		if (!fb[0]) {
			snprintf(s->st.reason, sizeof(s->st.reason), "cannot open: %s", strerror(-r));
			continue;
		}
		/* Explicit fallback: the replacement event is added (once) and this one says why. */
		int have = events_find(ev, fb);
		if (have < 0) {
			const struct events_spec *fs = events_catalogue_find(fb);
			if (!fs || (have = add_spec(ev, fs)) < 0) {
				snprintf(s->st.reason, sizeof(s->st.reason), "cannot open: %s; fallback %s unavailable",
					 strerror(-r), fb);
				continue;
			}
			struct events_slot *f = &ev->slots[have];
			if (f->st.spec.config == PERF_COUNT_SW_CPU_CLOCK)
				f->st.spec.period = ev->opts.cpu_clock_freq;
			if (f->st.spec.config == PERF_COUNT_SW_PAGE_FAULTS)
				f->st.spec.period = ev->opts.page_fault_period;
			int fr = slot_open(ev, have, prog, cpus, ncpus);
			if (fr <= 0)
				snprintf(ev->slots[have].st.reason, sizeof(ev->slots[have].st.reason),
					 "cannot open: %s", strerror(-fr));
		}
		/* the replacement runs in the modes of what it replaces */
		ev->slots[have].st.modes |= s->st.modes;
		s->st.fallback_slot = (int8_t)have;
		snprintf(s->st.reason, sizeof(s->st.reason), "cannot open: %s (%s); fell back to %s",
			 strerror(-r), pmu_errno_reason(r), fb);
	}
	/* Fallback events opened after the loop above were added past nslots. */
	for (int i = nslots; i < ev->n; i++)
		if (!ev->slots[i].st.live && !ev->slots[i].st.reason[0]) {
			int r = slot_open(ev, i, prog, cpus, ncpus);
			if (r <= 0)
				snprintf(ev->slots[i].st.reason, sizeof(ev->slots[i].st.reason),
					 "cannot open: %s", strerror(-r));
		}
	build_plans(ev);
	int live = events_live_count(ev);
	return live > 0 ? live : -ENODEV;
}

void events_close(struct events *ev)
{
	if (!ev)
		return;
	for (int i = 0; i < ev->n; i++)
		slot_close(&ev->slots[i]);
}

/* Wanted time up to now under the mask in force (the enabled time is the kernel's). */
static void account(struct events *ev, uint64_t now_ns)
{
	if (ev->last_ns && now_ns > ev->last_ns) {
		uint64_t dt = now_ns - ev->last_ns;
		for (int i = 0; i < ev->n; i++) {
			if (ev->want & (1u << i))
				ev->slots[i].wanted_ns += dt;
			if ((ev->want & ~ev->act) & (1u << i))
				ev->slots[i].rotated = true;
		}
	}
	ev->last_ns = now_ns;
}

static void slot_enable(struct events_slot *s, bool on)
{
	for (int i = 0; i < s->nfds; i++)
		ioctl(s->fds[i], on ? PERF_EVENT_IOC_ENABLE : PERF_EVENT_IOC_DISABLE, 0);
	s->st.enabled = on;
}

void events_tick(struct events *ev, int mode, uint64_t now_ns)
{
	if (mode < 0 || mode >= PMU_MODES)
		return;
	account(ev, now_ns);
	const struct pmu_plan *p = &ev->plan[mode];
	uint32_t want = p->wanted;
	uint32_t act = pmu_plan_active(p, now_ns, (uint64_t)ev->pmu.rotation_ms * 1000000ULL) & want;
	if (act != ev->act)
		for (int i = 0; i < ev->n; i++)
			if (((act ^ ev->act) >> i) & 1)
				slot_enable(&ev->slots[i], (act >> i) & 1);
	ev->want = want;
	ev->act = act;
}

int events_take_scales(struct events *ev, uint64_t now_ns, double *scales, int n)
{
	account(ev, now_ns);
	int out = 0;
	for (int i = 0; i < ev->n; i++) {
		struct events_slot *s = &ev->slots[i];
		struct pmu_times t = { .wanted_ns = s->wanted_ns, .nfds = (uint32_t)s->nfds, .rotated = s->rotated };
		for (int k = 0; k < s->nfds; k++) {
			uint64_t v[3]; /* value, time_enabled, time_running (read_format) */
			if (read(s->fds[k], v, sizeof(v)) != (ssize_t)sizeof(v))
				continue;
			t.enabled_ns += v[1] - s->prev_enabled[k];
			t.running_ns += v[2] - s->prev_running[k];
			s->prev_enabled[k] = v[1];
			s->prev_running[k] = v[2];
		}
		/* not wanted in the interval, or software events that never leave their counter:
		 * nothing to correct */
		s->st.scale = !t.wanted_ns || !s->nfds ? 1.0 : pmu_scale(&t);
		s->wanted_ns = 0;
		s->rotated = (ev->want & ~ev->act) & (1u << i); /* still out: the next interval starts rotated */
		if (out < n)
			scales[out++] = s->st.scale;
	}
	return out;
}

int events_reconfigure(struct events *ev, const struct pmu_config *cfg, struct bpf_program *prog)
{
	char err[128];
	/* refuse before closing anything: a config that cannot be built keeps the old events */
	char names[PMU_MODES * PMU_MAX_GROUPS * PMU_MAX_GROUP_EVENTS][48];
	int nd = 0;
	for (int m = 0; m < PMU_MODES; m++)
		for (uint32_t g = 0; g < cfg->mode[m].ngroups && g < PMU_MAX_GROUPS; g++)
			for (uint32_t i = 0; i < cfg->mode[m].groups[g].nevents && i < PMU_MAX_GROUP_EVENTS; i++) {
				const char *nm = cfg->mode[m].groups[g].ev[i].name;
				int k = 0;
				while (k < nd && strcmp(names[k], nm))
					k++;
				if (k == nd)
					snprintf(names[nd++], sizeof(names[0]), "%s", nm);
			}
	if (nd == 0 || nd > EVENTS_MAX)
		return nd ? -E2BIG : -EINVAL;
	events_close(ev);
	ev->gen++;
	int r = build_slots(ev, cfg, err, sizeof(err));
	if (r < 0)
		return r;
	return events_open_attach(ev, prog);
}

uint32_t events_generation(const struct events *ev)
{
	return ev->gen;
}

const struct pmu_config *events_pmu_config(const struct events *ev)
{
	return &ev->pmu;
}

uint32_t events_rotation_slots(const struct events *ev, int mode)
{
	return mode >= 0 && mode < PMU_MODES ? ev->plan[mode].nslots : 0;
}

int events_count(const struct events *ev)
{
	return ev->n;
}

const struct events_state *events_get(const struct events *ev, int idx)
{
	return (idx >= 0 && idx < ev->n) ? &ev->slots[idx].st : NULL;
}

int events_live_count(const struct events *ev)
{
	int n = 0;
	for (int i = 0; i < ev->n; i++)
		n += ev->slots[i].st.live;
	return n;
}

void events_free(struct events *ev)
{
	if (!ev)
		return;
	events_close(ev);
	free(ev->slots);
	free(ev);
}
