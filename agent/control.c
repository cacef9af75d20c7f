/* control: see control.h. */
#include "control.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"
#include "window.h"

#define SATURATED 0.8 /* share of the budget at which a CPU's bucket can run empty */
#define MAX_SIGNALS (ANOMALY_MAX_IFACES * 2 * ANOMALY__NIFKINDS + 1) /* every signal in force at once */

_Static_assert(ANOMALY_IFNAME <= sizeof(((struct window_anomaly *)0)->ifname), "interface names fit the window");

struct control {
	struct control_opts o;
	struct modectl *mc;
	struct anomaly *an;
	struct targets *t;
	uint64_t sentinel, diagnostic, hard_drop_ns;
	uint32_t filter_tgid;
	uint64_t filtered, accepted;
	/* demand measurement */
	bool started;
	uint64_t last_tick_ns, last_refresh_ns;
	bool mixed;
	uint64_t prev_bpf[MS_CNT__MAX];
	uint64_t prev_cpu[CONTROL_MAX_CPUS];
	uint64_t seen_cpu[CONTROL_MAX_CPUS];   /* synthetic: samples per CPU from the sink */
	uint64_t prev_seen[CONTROL_MAX_CPUS];
	double rate[CONTROL_MAX_CPUS];
	uint64_t pmu_reconfigs;
	int pmu_last_err;
	/* anomaly signals of the open window, handed over by control_take_anomalies */
	uint32_t npend;
	uint64_t pend_dropped, signals_dropped;
	struct window_anomaly pend[WINDOW_MAX_ANOMALIES];
	struct anomaly_signal sigs[MAX_SIGNALS]; /* scratch */
};

int control_new(const struct control_opts *opts, struct control **ret)
{
	if (opts->ncpu == 0 || opts->ncpu > CONTROL_MAX_CPUS)
		return -EINVAL;
	struct control *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->o = *opts;
	c->o.targets = NULL;
	c->o.anomaly = NULL;
	if (!c->o.tick_ms)
		c->o.tick_ms = CONTROL_DEFAULT_TICK_MS;
	c->sentinel = opts->mode.sentinel_budget;
	c->diagnostic = opts->mode.diagnostic_budget;
	c->hard_drop_ns = opts->hard_drop_ns;
	int r = modectl_new(&opts->mode, opts->start_mode, &c->mc);
	if (r == 0 && opts->anomaly)
		r = anomaly_new(opts->anomaly, &c->an);
	if (r < 0) {
		control_free(c);
		return r;
	}
	control_set_targets(c, opts->targets);
	*ret = c;
	return 0;
}

struct control *control_free(struct control *c)
{
	if (!c)
		return NULL;
	modectl_free(c->mc);
	anomaly_free(c->an);
	targets_free(c->t);
	free(c);
	return NULL;
}

bool control_accept(struct control *c, const struct ms_sample *s)
{
	if (!c->o.sampler && s->cpu < CONTROL_MAX_CPUS)
		c->seen_cpu[s->cpu]++;
	if (!c->t || targets_match(c->t, s)) {
		c->accepted++;
		return true;
	}
	c->filtered++;
	return false;
}

/* Offered samples/s per CPU since the last tick (see control.h for the estimate). */
static uint32_t demand(struct control *c, double dt, int mode)
{
	uint32_t n = c->o.ncpu;
	if (!c->o.sampler) {
		for (uint32_t i = 0; i < n; i++) {
			c->rate[i] = (double)(c->seen_cpu[i] - c->prev_seen[i]) / dt;
			c->prev_seen[i] = c->seen_cpu[i];
		}
		return n;
	}
	uint64_t bpf[MS_CNT__MAX], cpu[CONTROL_MAX_CPUS] = { 0 };
	if (sampler_read_counters(c->o.sampler, bpf, cpu, (int)n) < 0)
		return 0;
	double budget = (double)(mode == MODECTL_DIAGNOSTIC ? c->diagnostic : c->sentinel);
	uint64_t drops = bpf[MS_CNT_DROP_BUDGET] - c->prev_bpf[MS_CNT_DROP_BUDGET];
	uint32_t nsat = 0;
	for (uint32_t i = 0; i < n; i++) {
		c->rate[i] = (double)(cpu[i] - c->prev_cpu[i]) / dt;
		nsat += c->rate[i] >= SATURATED * budget;
	}
	for (uint32_t i = 0; i < n && drops; i++)
		if (!nsat || c->rate[i] >= SATURATED * budget)
			c->rate[i] += (double)drops / dt / (double)(nsat ? nsat : n);
	memcpy(c->prev_bpf, bpf, sizeof(bpf));
	memcpy(c->prev_cpu, cpu, n * sizeof(cpu[0]));
	return n;
}

/* Notes the signals in force in the open window's list after an evaluation at real_ms (or, with
 * real_ms 0, as the new window's first entries): one entry per episode (interface, metric, kind,
 * fire time), value and baseline updated. A signal that finds the list full is counted once: when
 * it fires (its fire time is this evaluation) or when a new window starts without room for it.
 * Cost: O(signals in force x list), twice a second at the default interval. */
static void note_signals(struct control *c, uint64_t real_ms)
{
	static const uint32_t kinds[ANOMALY__NKINDS] = {
		[ANOMALY_STOP] = WINDOW_ANOMALY_STOP, [ANOMALY_DROP] = WINDOW_ANOMALY_DROP,
		[ANOMALY_SPIKE] = WINDOW_ANOMALY_SPIKE, [ANOMALY_PACKET_DROPS] = WINDOW_ANOMALY_DROP,
		[ANOMALY_LATENCY] = WINDOW_ANOMALY_LATENCY,
	};
	size_t n = anomaly_signals(c->an, c->sigs, MAX_SIGNALS);
	for (size_t i = 0; i < n && i < MAX_SIGNALS; i++) {
		const struct anomaly_signal *s = &c->sigs[i];
		struct window_anomaly x = { .kind = kinds[s->kind], .value = s->value, .baseline = s->baseline,
					    .ts_ns = s->since_ms * 1000000ULL };
		memcpy(x.ifname, s->ifname, sizeof(s->ifname));
		if (s->kind == ANOMALY_LATENCY)
			strcpy(x.metric, "latency_us");
		else
			snprintf(x.metric, sizeof(x.metric), "%s_%s", s->dir == ANOMALY_TX ? "tx" : "rx",
				 s->kind == ANOMALY_PACKET_DROPS ? "drops" : "bytes");
		uint32_t j;
		for (j = 0; j < c->npend; j++) {
			struct window_anomaly *p = &c->pend[j];
			if (p->kind == x.kind && p->ts_ns == x.ts_ns && !strcmp(p->metric, x.metric) &&
			    !strcmp(p->ifname, x.ifname)) {
				p->value = x.value;
				p->baseline = x.baseline;
				break;
			}
		}
		if (j < c->npend)
			continue;
		if (c->npend < WINDOW_MAX_ANOMALIES) {
			x.ifindex = x.ifname[0] ? if_nametoindex(x.ifname) : 0;
			c->pend[c->npend++] = x;
		} else if (real_ms == 0 || s->since_ms == real_ms) {
			c->pend_dropped++;
		}
	}
}

void control_take_anomalies(struct control *c, struct window *w)
{
	w->c.anomalies_dropped = c->pend_dropped;
	if (c->npend) {
		w->anomalies = malloc(c->npend * sizeof(*w->anomalies));
		if (w->anomalies) {
			memcpy(w->anomalies, c->pend, c->npend * sizeof(*w->anomalies));
			w->nanomalies = c->npend;
		} else {
			w->c.anomalies_dropped += c->npend;
		}
	}
	c->signals_dropped += w->c.anomalies_dropped;
	c->npend = 0;
	c->pend_dropped = 0;
	/* what is still in force belongs to the next window too */
	if (c->an)
		note_signals(c, 0);
}

int control_tick(struct control *c, uint64_t mono_ns, uint64_t real_ns, int cur_mode, bool *ret_ticked)
{
	uint64_t mono_ms = mono_ns / 1000000ULL;
	*ret_ticked = false;
	if (c->an && anomaly_tick(c->an, mono_ms, real_ns / 1000000ULL) == 1)
		note_signals(c, real_ns / 1000000ULL);
	if (c->t && mono_ns - c->last_refresh_ns >= CONTROL_TARGETS_REFRESH_MS * 1000000ULL) {
		targets_refresh(c->t);
		c->last_refresh_ns = mono_ns;
	}
	if (!c->started) {
		/* the first call only sets the counters' origin */
		c->started = true;
		c->last_tick_ns = mono_ns;
		demand(c, 1.0, cur_mode);
		c->mixed = false;
		return modectl_mode(c->mc);
	}
	if (mono_ns - c->last_tick_ns < c->o.tick_ms * 1000000ULL)
		return modectl_mode(c->mc);
	double dt = (double)(mono_ns - c->last_tick_ns) / 1e9;
	struct modectl_input in = {
		.now_ms = mono_ms,
		.interval_ms = (mono_ns - c->last_tick_ns) / 1000000ULL,
		.mode = cur_mode,
		.mixed = c->mixed,
		.cpu_rate = c->rate,
		.anomaly = c->an && anomaly_active(c->an),
	};
	in.ncpu = demand(c, dt, cur_mode);
	c->last_tick_ns = mono_ns;
	c->mixed = false;
	*ret_ticked = true;
	int m = modectl_tick(c->mc, &in);
	return m < 0 ? cur_mode : m;
}

void control_mode_switched(struct control *c)
{
	c->mixed = true;
}

int control_pin(struct control *c, int mode, uint64_t ttl_ms, const char *source, uint64_t mono_ns, char *reason,
		size_t rlen)
{
	int r = modectl_pin(c->mc, mode, ttl_ms, source, mono_ns / 1000000ULL);
	if (r < 0 && reason)
		snprintf(reason, rlen, "mode must be sentinel, diagnostic or auto, ttl within range");
	return r;
}

int control_set_budgets(struct control *c, uint64_t sentinel, uint64_t diagnostic, uint64_t hard_drop_ns,
			char *reason, size_t rlen)
{
	if (modectl_set_budgets(c->mc, sentinel, diagnostic) < 0) {
		if (reason)
			snprintf(reason, rlen, "diagnostic budget (%llu) must be >= sentinel budget (%llu) > 0",
				 (unsigned long long)diagnostic, (unsigned long long)sentinel);
		return -EINVAL;
	}
	c->sentinel = sentinel;
	c->diagnostic = diagnostic;
	c->hard_drop_ns = hard_drop_ns;
	return modectl_mode(c->mc);
}

int control_set_targets(struct control *c, struct targets *t)
{
	targets_free(c->t);
	c->t = targets_empty(t) ? targets_free(t) : t;
	uint32_t pid = targets_single_pid(c->t);
	c->filter_tgid = pid ? pid : c->o.base_filter_tgid;
	return (int)c->filter_tgid;
}

void control_pmu_result(struct control *c, int err)
{
	c->pmu_last_err = err;
	if (err >= 0)
		c->pmu_reconfigs++;
}

int control_mode(const struct control *c)
{
	return modectl_mode(c->mc);
}

uint32_t control_filter_tgid(const struct control *c)
{
	return c->filter_tgid;
}

uint64_t control_filtered(const struct control *c)
{
	return c->filtered;
}

void control_snapshot(const struct control *c, uint64_t mono_ns, uint64_t real_ns, struct control_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->real_ms = real_ns / 1000000ULL;
	s->mono_ms = mono_ns / 1000000ULL;
	modectl_status(c->mc, &s->mc);
	if (s->mc.pinned && s->mc.pin_expires_ms)
		s->pin_expires_real_ms = s->real_ms + (s->mc.pin_expires_ms > s->mono_ms ? s->mc.pin_expires_ms - s->mono_ms : 0);
	s->sentinel_budget = c->sentinel;
	s->diagnostic_budget = c->diagnostic;
	s->hard_drop_ns = c->hard_drop_ns;
	s->filter_tgid = c->filter_tgid;
	s->ntargets = (uint32_t)targets_count(c->t);
	for (uint32_t i = 0; i < s->ntargets; i++)
		targets_format(targets_get(c->t, i), s->targets[i], sizeof(s->targets[i]));
	s->cgroup_ids = targets_cgroup_ids(c->t);
	s->filtered = c->filtered;
	s->accepted = c->accepted;
	s->anomaly_enabled = c->an != NULL;
	if (c->an)
		anomaly_view(c->an, &s->anomaly);
	s->anomaly_signals_dropped = c->signals_dropped;
	s->pmu_reconfigs = c->pmu_reconfigs;
	s->pmu_last_err = c->pmu_last_err;
}
