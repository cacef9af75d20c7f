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

struct events_slot {
	struct events_state st;
	int nfds;
	int fds[EVENTS_MAX_CPUS];
	struct bpf_link *links[EVENTS_MAX_CPUS];
};

struct events {
	struct events_opts opts;
	int n;
	struct events_slot *slots; /* n entries */
};

/* The catalogue: generic hardware events the kernel maps per vendor, Intel raw encodings that
 * need model checks (issue: PMU groups), and the software events every Linux host has. */
static const struct events_spec catalogue[] = {
	{ .name = "cycles", .type = PERF_TYPE_HARDWARE, .config = PERF_COUNT_HW_CPU_CYCLES,
	  .freq = true, .period = 999, .fallback = "cpu-clock", .iclass = EVENTS_IC_EXECUTION },
	{ .name = "cache-misses", .type = PERF_TYPE_HARDWARE, .config = PERF_COUNT_HW_CACHE_MISSES,
	  .period = 10007, .fallback = "cpu-clock", .iclass = EVENTS_IC_DATA_PATH },
	{ .name = "branch-misses", .type = PERF_TYPE_HARDWARE, .config = PERF_COUNT_HW_BRANCH_MISSES,
	  .period = 10007, .fallback = "cpu-clock", .iclass = EVENTS_IC_CONTROL_PATH },
	/* mem_load_retired.l3_miss (Skylake+): event 0xd1 umask 0x20, precise, data address */
	{ .name = "l3-miss", .type = PERF_TYPE_RAW, .config = 0x20d1, .period = 1009,
	  .sample_addr = true, .precise = 2, .fallback = "page-faults", .iclass = EVENTS_IC_DATA_PATH },
	/* mem_load_l3_hit_retired.xsnp_hitm: event 0xd2 umask 0x04 */
	{ .name = "hitm", .type = PERF_TYPE_RAW, .config = 0x04d2, .period = 1009,
	  .sample_addr = true, .precise = 2, .fallback = "page-faults", .iclass = EVENTS_IC_TOPOLOGY },
	{ .name = "cpu-clock", .type = PERF_TYPE_SOFTWARE, .config = PERF_COUNT_SW_CPU_CLOCK,
	  .freq = true, .period = 999, .iclass = EVENTS_IC_EXECUTION },
	{ .name = "page-faults", .type = PERF_TYPE_SOFTWARE, .config = PERF_COUNT_SW_PAGE_FAULTS,
	  .period = 64, .sample_addr = true, .iclass = EVENTS_IC_DATA_PATH },
};
#define CATALOGUE_N (sizeof(catalogue) / sizeof(catalogue[0]))

static const char *const default_set[] = { "cycles", "cache-misses", "branch-misses", "page-faults" };

static const struct events_spec *catalogue_find(const char *name)
{
	for (size_t i = 0; i < CATALOGUE_N; i++)
		if (strcmp(catalogue[i].name, name) == 0)
			return &catalogue[i];
	return NULL;
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

static int add_spec(struct events *ev, const struct events_spec *spec)
{
	for (int i = 0; i < ev->n; i++)
		if (strcmp(ev->slots[i].st.spec.name, spec->name) == 0)
			return 0; /* already present */
	if (ev->n >= EVENTS_MAX)
		return -E2BIG;
	struct events_slot *s = &ev->slots[ev->n++];
	memset(s, 0, sizeof(*s));
	s->st.spec = *spec;
	if (spec->type == PERF_TYPE_SOFTWARE) {
		s->st.source = EVENTS_SRC_SW;
		if (spec->config == PERF_COUNT_SW_CPU_CLOCK)
			s->st.spec.period = ev->opts.cpu_clock_freq;
		if (spec->config == PERF_COUNT_SW_PAGE_FAULTS)
			s->st.spec.period = ev->opts.page_fault_period;
	} else {
		s->st.source = EVENTS_SRC_HW;
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
	if (!ev->slots) {
		free(ev);
		return -ENOMEM;
	}
	int r = 0;
	if (opts->override && opts->override[0]) {
		char buf[512];
		snprintf(buf, sizeof(buf), "%s", opts->override);
		char *save = NULL;
		for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			while (*tok == ' ')
				tok++;
			const struct events_spec *spec = catalogue_find(tok);
			if (!spec) {
				snprintf(ret_err, errlen, "unknown event '%s'", tok);
				r = -EINVAL;
				break;
			}
			if ((r = add_spec(ev, spec)) < 0)
				break;
		}
	} else {
		for (size_t i = 0; i < sizeof(default_set) / sizeof(default_set[0]); i++)
			if ((r = add_spec(ev, catalogue_find(default_set[i]))) < 0)
				break;
	}
	if (r < 0 || ev->n == 0) {
		if (r == 0) {
			snprintf(ret_err, errlen, "no events selected");
			r = -EINVAL;
		}
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
		s->nfds++;
		ok++;
	}
	s->st.ncpus_open = ok;
	s->st.live = ok > 0;
	s->st.err = ok ? 0 : first_err;
	return ok ? ok : (first_err ? first_err : -ENODEV);
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
		int have = -1;
		for (int j = 0; j < ev->n; j++)
			if (strcmp(ev->slots[j].st.spec.name, fb) == 0)
				have = j;
		if (have < 0) {
			const struct events_spec *fs = catalogue_find(fb);
			if (!fs || add_spec(ev, fs) < 0) {
				snprintf(s->st.reason, sizeof(s->st.reason), "cannot open: %s; fallback %s unavailable",
					 strerror(-r), fb);
				continue;
			}
			have = ev->n - 1;
			int fr = slot_open(ev, have, prog, cpus, ncpus);
			if (fr <= 0)
				snprintf(ev->slots[have].st.reason, sizeof(ev->slots[have].st.reason),
					 "cannot open: %s", strerror(-fr));
		}
		snprintf(s->st.reason, sizeof(s->st.reason), "cannot open: %s; fell back to %s",
			 strerror(-r), fb);
	}
	/* Fallback events opened after the loop above were added past nslots. */
	for (int i = nslots; i < ev->n; i++)
		if (!ev->slots[i].st.live && !ev->slots[i].st.reason[0]) {
			int r = slot_open(ev, i, prog, cpus, ncpus);
			if (r <= 0)
				snprintf(ev->slots[i].st.reason, sizeof(ev->slots[i].st.reason),
					 "cannot open: %s", strerror(-r));
		}
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
