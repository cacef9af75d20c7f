/* pmu: see pmu.h. The JSON parser of pmu-config bodies is in pmu_json.c. */
#include "pmu.h"

#include <cpuid.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PMU_SYSFS "/sys/bus/event_source/devices"

/* ---- host ---- */

static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char *ok = fgets(buf, (int)len, f);
	fclose(f);
	if (!ok)
		return -EIO;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static int host_pmu_type(void *ctx, const char *name)
{
	(void)ctx;
	char path[160], buf[32];
	/* names come from API bodies: only [a-z0-9_] so they cannot leave the sysfs directory */
	if (!name[0] || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name) || strlen(name) > 64)
		return -EINVAL;
	snprintf(path, sizeof(path), PMU_SYSFS "/%s/type", name);
	int r = read_line(path, buf, sizeof(buf));
	if (r < 0)
		return r == -ENOENT ? -ENODEV : r;
	char *end;
	long t = strtol(buf, &end, 10);
	return (end == buf || t < 0 || t > INT32_MAX) ? -EINVAL : (int)t;
}

int pmu_host_probe(struct pmu_host *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->max_precise = -1;
	unsigned a = 0, b = 0, c = 0, d = 0;
	char vendor[13] = "";
	if (__get_cpuid(0, &a, &b, &c, &d)) {
		memcpy(vendor, &b, 4);
		memcpy(vendor + 4, &d, 4);
		memcpy(vendor + 8, &c, 4);
	}
	unsigned max_leaf = a;
	snprintf(ret->vendor, sizeof(ret->vendor), "%s",
		 !strcmp(vendor, "GenuineIntel") ? "intel" : !strcmp(vendor, "AuthenticAMD") ? "amd" : "other");
	if (__get_cpuid(1, &a, &b, &c, &d)) {
		uint32_t fam = (a >> 8) & 0xf, model = (a >> 4) & 0xf;
		if (fam == 0xf)
			fam += (a >> 20) & 0xff;
		if (fam == 6 || fam >= 0xf)
			model |= ((a >> 16) & 0xf) << 4;
		ret->family = fam;
		ret->model = model;
	}
	char buf[64];
	ret->cpu_pmu = access(PMU_SYSFS "/cpu", F_OK) == 0 || access(PMU_SYSFS "/cpu_core", F_OK) == 0;
	if (read_line(PMU_SYSFS "/cpu/caps/pmu_name", buf, sizeof(buf)) == 0 ||
	    read_line(PMU_SYSFS "/cpu_core/caps/pmu_name", buf, sizeof(buf)) == 0)
		snprintf(ret->pmu_name, sizeof(ret->pmu_name), "%.31s", buf);
	if (read_line(PMU_SYSFS "/cpu/caps/max_precise", buf, sizeof(buf)) == 0)
		ret->max_precise = atoi(buf);
	int t = host_pmu_type(NULL, "ibs_op");
	ret->ibs_op_type = t >= 0 ? t : -1;
	/* general-purpose counters: Intel architectural perfmon leaf 0xA, AMD PerfMonV2 leaf
	 * 0x80000022, else the AMD core-extension default (6) or the legacy 4 */
	if (!strcmp(ret->vendor, "intel") && max_leaf >= 0xa && __get_cpuid(0xa, &a, &b, &c, &d))
		ret->counters = (a >> 8) & 0xff;
	else if (!strcmp(ret->vendor, "amd")) {
		if (__get_cpuid(0x80000022, &a, &b, &c, &d) && (b & 0xf))
			ret->counters = b & 0xf;
		else
			ret->counters = ret->family >= 0x15 ? 6 : 4;
	}
	if (!ret->cpu_pmu)
		ret->counters = 0;
	return 0;
}

/* ---- defaults ---- */

static void add_event(struct pmu_group *g, const char *name, uint64_t clock_hz, uint64_t fault_period)
{
	const struct events_spec *s = events_catalogue_find(name);
	if (!s || g->nevents >= PMU_MAX_GROUP_EVENTS)
		return;
	struct events_spec *e = &g->ev[g->nevents++];
	*e = *s;
	if (e->type == PERF_TYPE_SOFTWARE && e->config == PERF_COUNT_SW_CPU_CLOCK)
		e->period = clock_hz ? clock_hz : 999;
	if (e->type == PERF_TYPE_SOFTWARE && e->config == PERF_COUNT_SW_PAGE_FAULTS)
		e->period = fault_period ? fault_period : 64;
}

/* Adds a group "name" of the comma list evs to mode m. */
static void add_group(struct pmu_config *c, int m, const char *name, const char *evs, uint64_t hz, uint64_t fp)
{
	struct pmu_mode_cfg *mc = &c->mode[m];
	if (mc->ngroups >= PMU_MAX_GROUPS)
		return;
	struct pmu_group *g = &mc->groups[mc->ngroups++];
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", name);
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", evs);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		add_event(g, t, hz, fp);
}

static bool intel_skylake_or_later(const struct pmu_host *h)
{
	/* pmu_name names the core PMU generation; the model list covers hosts without caps */
	static const char *const old[] = { "core2", "nehalem", "westmere", "sandybridge", "ivybridge",
					   "haswell", "broadwell", NULL };
	if (h->pmu_name[0]) {
		for (int i = 0; old[i]; i++)
			if (!strcmp(h->pmu_name, old[i]))
				return false;
		return true;
	}
	return h->family == 6 && h->model >= 0x4e && h->model != 0x4f && h->model != 0x56;
}

void pmu_defaults(const struct pmu_host *host, uint64_t hz, uint64_t fp, struct pmu_config *c)
{
	memset(c, 0, sizeof(*c));
	c->present[0] = c->present[1] = true;
	c->rotation_ms = PMU_DEFAULT_ROTATION_MS;
	if (host->cpu_pmu && !strcmp(host->vendor, "intel") && intel_skylake_or_later(host)) {
		snprintf(c->source, sizeof(c->source), "intel-skylake+");
		add_group(c, 0, "core", "cycles,branch-misses", hz, fp);
		add_group(c, 0, "mem", "l3-miss", hz, fp);
		add_group(c, 1, "core", "cycles,branch-misses", hz, fp);
		add_group(c, 1, "mem", "l3-miss,hitm", hz, fp);
		add_group(c, 1, "numa", "remote-dram,offcore-remote-dram", hz, fp);
		add_group(c, 1, "stores", "stores", hz, fp);
	} else if (host->cpu_pmu && !strcmp(host->vendor, "amd")) {
		snprintf(c->source, sizeof(c->source), "amd");
		for (int m = 0; m < PMU_MODES; m++)
			add_group(c, m, "core", "cycles,branch-misses,cache-misses", hz, fp);
		if (host->ibs_op_type >= 0)
			add_group(c, 1, "ibs", "ibs-op", hz, fp);
	} else {
		/* no (known) hardware PMU: the generic events still show, visibly falling back */
		snprintf(c->source, sizeof(c->source), "generic");
		for (int m = 0; m < PMU_MODES; m++)
			add_group(c, m, "core", "cycles,cache-misses,branch-misses", hz, fp);
	}
	for (int m = 0; m < PMU_MODES; m++)
		add_group(c, m, "sw", "page-faults", hz, fp);
}

int pmu_config_from_names(const char *list, uint64_t hz, uint64_t fp, struct pmu_config *c, char *reason,
			  size_t rlen)
{
	memset(c, 0, sizeof(*c));
	c->present[0] = c->present[1] = true;
	c->rotation_ms = PMU_DEFAULT_ROTATION_MS;
	snprintf(c->source, sizeof(c->source), "events-key");
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", list);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		size_t l = strlen(t);
		while (l && t[l - 1] == ' ')
			t[--l] = 0;
		if (!events_catalogue_find(t)) {
			snprintf(reason, rlen, "unknown event '%s'", t);
			return -EINVAL;
		}
		for (int m = 0; m < PMU_MODES; m++) {
			bool dup = false;
			for (uint32_t g = 0; g < c->mode[m].ngroups; g++)
				dup |= !strcmp(c->mode[m].groups[g].ev[0].name, t);
			if (dup)
				continue;
			if (c->mode[m].ngroups >= PMU_MAX_GROUPS) {
				snprintf(reason, rlen, "more than %d events", PMU_MAX_GROUPS);
				return -E2BIG;
			}
			add_group(c, m, t, t, hz, fp);
		}
	}
	if (!c->mode[0].ngroups) {
		snprintf(reason, rlen, "no events selected");
		return -EINVAL;
	}
	return 0;
}

void pmu_config_merge(struct pmu_config *dst, const struct pmu_config *src)
{
	for (int m = 0; m < PMU_MODES; m++)
		if (src->present[m]) {
			dst->mode[m] = src->mode[m];
			dst->present[m] = true;
		}
	if (src->rotation_ms)
		dst->rotation_ms = src->rotation_ms;
	snprintf(dst->source, sizeof(dst->source), "%s", src->source);
}

/* ---- validation ---- */

static int host_try_open(void *ctx, const struct events_spec *s)
{
	(void)ctx;
	struct perf_event_attr a;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = s->type;
	a.config = s->config;
	a.config1 = s->config1;
	a.config2 = s->config2;
	a.freq = s->freq;
	if (s->freq)
		a.sample_freq = s->period;
	else
		a.sample_period = s->period;
	a.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME;
	if (s->sample_addr)
		a.sample_type |= PERF_SAMPLE_ADDR;
	if (s->branch_stack) {
		a.sample_type |= PERF_SAMPLE_BRANCH_STACK;
		a.branch_sample_type = PERF_SAMPLE_BRANCH_ANY;
	}
	a.precise_ip = (unsigned)s->precise & 3;
	a.disabled = 1;
	int cpus[1];
	int n = events_online_cpus(cpus, 1);
	int fd = (int)syscall(__NR_perf_event_open, &a, -1, n == 1 ? cpus[0] : 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

const struct pmu_probe_ops pmu_host_probe_ops = {
	.try_open = host_try_open,
	.pmu_type = host_pmu_type,
};

const char *pmu_errno_reason(int err)
{
	switch (err < 0 ? -err : err) {
	case ENOENT: return "this host's PMU does not count this event";
	case ENODEV: return "no such PMU on this host";
	case EOPNOTSUPP: return "this PMU cannot sample it with these options (precise level, data address or branch stack)";
	case EINVAL: return "invalid encoding for this PMU (type, config, config1/config2, precise level or period)";
	case EACCES:
	case EPERM: return "not permitted (needs root or CAP_PERFMON, or a lower perf_event_paranoid)";
	case EBUSY: return "the PMU is held exclusively by another user";
	case E2BIG: return "the kernel rejects this perf_event_attr";
	case EMFILE:
	case ENFILE: return "out of file descriptors";
	default: return "perf_event_open failed";
	}
}

static const char *const mode_names[PMU_MODES] = { "sentinel", "diagnostic" };

static int validate_event(struct events_spec *e, const struct pmu_host *host, const struct pmu_probe_ops *ops,
			  void *ctx, char *why, size_t wlen)
{
	if (e->pmu[0]) {
		int t = ops->pmu_type(ctx, e->pmu);
		if (t < 0) {
			snprintf(why, wlen, "PMU '%s': %s", e->pmu, strerror(-t));
			return t == -ENOENT || t == -ENODEV ? -EOPNOTSUPP : t;
		}
		e->type = (uint32_t)t;
	}
	if (e->precise > 0 && host->max_precise >= 0 && e->precise > host->max_precise) {
		snprintf(why, wlen, "precise level %d exceeds this host's maximum %d", e->precise, host->max_precise);
		return -EOPNOTSUPP;
	}
	int r = ops->try_open(ctx, e);
	if (r == 0)
		return 0;
	if (e->fallback[0]) {
		const struct events_spec *fb = events_catalogue_find(e->fallback);
		if (fb && ops->try_open(ctx, fb) == 0)
			return 0; /* events.c falls back to it, visibly */
	}
	snprintf(why, wlen, "perf_event_open: %s (%s)", strerror(-r), pmu_errno_reason(r));
	return r == -EACCES || r == -EPERM ? -EPERM : -EOPNOTSUPP;
}

int pmu_config_validate(struct pmu_config *cfg, const struct pmu_host *host, const struct pmu_probe_ops *ops,
			void *ctx, char *reason, size_t rlen)
{
	if (!ops)
		ops = &pmu_host_probe_ops;
	char names[EVENTS_MAX * 2][48];
	int ndistinct = 0;
	for (int m = 0; m < PMU_MODES; m++) {
		const struct pmu_mode_cfg *mc = &cfg->mode[m];
		for (uint32_t g = 0; g < mc->ngroups; g++) {
			struct pmu_group *gr = &cfg->mode[m].groups[g];
			uint32_t hw = 0;
			for (uint32_t i = 0; i < gr->nevents; i++) {
				struct events_spec *e = &gr->ev[i];
				char why[200];
				int r = validate_event(e, host, ops, ctx, why, sizeof(why));
				if (r < 0) {
					snprintf(reason, rlen, "%s group '%s' event '%s': %s", mode_names[m], gr->name, e->name, why);
					return r;
				}
				hw += e->type != PERF_TYPE_SOFTWARE && e->type != PERF_TYPE_TRACEPOINT;
				bool seen = false;
				for (int k = 0; k < ndistinct; k++)
					seen |= !strcmp(names[k], e->name);
				if (!seen && ndistinct < EVENTS_MAX * 2)
					snprintf(names[ndistinct++], sizeof(names[0]), "%s", e->name);
			}
			if (host->counters && hw > host->counters) {
				snprintf(reason, rlen, "%s group '%s' needs %u hardware counters but this host has %u "
					 "(split it into smaller groups; groups rotate)", mode_names[m], gr->name, hw,
					 host->counters);
				return -E2BIG;
			}
		}
	}
	/* fallbacks may add software events: keep room for cpu-clock and page-faults */
	if (ndistinct > EVENTS_MAX - 2) {
		snprintf(reason, rlen, "%d distinct events over both modes; at most %d", ndistinct, EVENTS_MAX - 2);
		return -E2BIG;
	}
	return 0;
}

/* ---- classes ---- */

uint8_t pmu_classify(const struct events_spec *s)
{
	switch (s->type) {
	case PERF_TYPE_SOFTWARE:
		switch (s->config) {
		case PERF_COUNT_SW_CPU_CLOCK:
		case PERF_COUNT_SW_TASK_CLOCK:
		case PERF_COUNT_SW_CONTEXT_SWITCHES:
		case PERF_COUNT_SW_CPU_MIGRATIONS: return EVENTS_IC_EXECUTION;
		case PERF_COUNT_SW_PAGE_FAULTS:
		case PERF_COUNT_SW_PAGE_FAULTS_MIN:
		case PERF_COUNT_SW_PAGE_FAULTS_MAJ: return EVENTS_IC_DATA_PATH;
		default: return EVENTS_IC_UNKNOWN;
		}
	case PERF_TYPE_HARDWARE:
		switch (s->config) {
		case PERF_COUNT_HW_CPU_CYCLES:
		case PERF_COUNT_HW_INSTRUCTIONS:
		case PERF_COUNT_HW_REF_CPU_CYCLES:
		case PERF_COUNT_HW_STALLED_CYCLES_BACKEND:
		case PERF_COUNT_HW_STALLED_CYCLES_FRONTEND: return EVENTS_IC_EXECUTION;
		case PERF_COUNT_HW_CACHE_REFERENCES:
		case PERF_COUNT_HW_CACHE_MISSES: return EVENTS_IC_DATA_PATH;
		case PERF_COUNT_HW_BRANCH_INSTRUCTIONS:
		case PERF_COUNT_HW_BRANCH_MISSES: return EVENTS_IC_CONTROL_PATH;
		default: return EVENTS_IC_UNKNOWN;
		}
	case PERF_TYPE_HW_CACHE:
		/* config = id | op << 8 | result << 16; PERF_COUNT_HW_CACHE_NODE is NUMA traffic,
		 * BPU is the branch predictor, the rest are caches and TLBs */
		switch (s->config & 0xff) {
		case PERF_COUNT_HW_CACHE_NODE: return EVENTS_IC_TOPOLOGY;
		case PERF_COUNT_HW_CACHE_BPU: return EVENTS_IC_CONTROL_PATH;
		default: return (s->config & 0xff) < PERF_COUNT_HW_CACHE_MAX ? EVENTS_IC_DATA_PATH : EVENTS_IC_UNKNOWN;
		}
	case PERF_TYPE_RAW:
		/* Intel event selects (low byte) with a settled meaning since Skylake */
		switch (s->config & 0xff) {
		case 0x3c: case 0xc0: case 0xa3: return EVENTS_IC_EXECUTION;   /* cycles, instructions, stalls */
		case 0xc4: case 0xc5: case 0xe6: return EVENTS_IC_CONTROL_PATH; /* branches, mispredicts, baclears */
		case 0xd0: case 0xd1: case 0xcd: case 0x51: return EVENTS_IC_DATA_PATH; /* mem inst, loads, latency, L1D */
		case 0xd2: case 0xd3: case 0xb7: case 0xbb: return EVENTS_IC_TOPOLOGY; /* snoops/HITM, remote, offcore */
		default: return EVENTS_IC_UNKNOWN;
		}
	default:
		return s->pmu[0] && !strncmp(s->pmu, "ibs", 3) ? EVENTS_IC_DATA_PATH : EVENTS_IC_UNKNOWN;
	}
}

/* ---- rotation ---- */

int pmu_plan_build(const uint32_t *hw, const uint32_t *sw, uint32_t ngroups, uint32_t counters, struct pmu_plan *p)
{
	if (ngroups > PMU_MAX_GROUPS)
		return -E2BIG;
	memset(p, 0, sizeof(*p));
	p->nslots = 1;
	uint32_t order[PMU_MAX_GROUPS], used[PMU_MAX_GROUPS] = { 0 }, n = 0;
	for (uint32_t g = 0; g < ngroups; g++) {
		p->always |= sw[g];
		p->wanted |= hw[g] | sw[g];
		if (hw[g])
			order[n++] = g;
	}
	/* largest group first (stable on ties: lower index first) */
	for (uint32_t i = 1; i < n; i++)
		for (uint32_t j = i; j > 0 && __builtin_popcount(hw[order[j]]) > __builtin_popcount(hw[order[j - 1]]); j--) {
			uint32_t t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	if (!counters) {
		for (uint32_t i = 0; i < n; i++)
			p->slot[0] |= hw[order[i]];
		return 0;
	}
	p->nslots = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t need = (uint32_t)__builtin_popcount(hw[order[i]]), s;
		for (s = 0; s < p->nslots; s++)
			if (used[s] + need <= counters)
				break;
		if (s == p->nslots)
			p->nslots++;
		p->slot[s] |= hw[order[i]];
		used[s] += need;
	}
	if (!p->nslots)
		p->nslots = 1;
	return 0;
}

uint32_t pmu_plan_active(const struct pmu_plan *p, uint64_t now_ns, uint64_t rotation_ns)
{
	if (p->nslots <= 1 || !rotation_ns)
		return p->always | p->slot[0];
	return p->always | p->slot[(now_ns / rotation_ns) % p->nslots];
}

double pmu_scale(const struct pmu_times *t)
{
	if (!t->running_ns || !t->enabled_ns || !t->nfds || !t->wanted_ns)
		return 0.0;
	double rot = t->rotated ? (double)t->wanted_ns * (double)t->nfds / (double)t->enabled_ns : 1.0;
	double mux = (double)t->enabled_ns / (double)t->running_ns;
	return rot * mux;
}
