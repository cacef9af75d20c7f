/* modectl: see modectl.h. */
#include "modectl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEVER UINT64_MAX

struct modectl {
	struct modectl_opts o;
	int mode;
	int safety;
	bool pinned;
	int pin_mode;
	uint64_t pin_expires_ms;
	char pin_source[32];
	/* load average of the mode it was measured in; restarts on every switch */
	bool load_valid;
	int load_mode;
	double load;
	uint32_t hot_cpu;
	/* start of the current over/under-threshold run, NEVER when not in one */
	uint64_t above_since, below_since;
	uint64_t quiet_since;        /* anomaly input false since; NEVER while active */
	bool anomaly;
	bool changed;                /* at least one transition happened */
	uint64_t last_change_ms;
	uint64_t transitions, shed_entries;
	const char *reason;
};

const char *modectl_mode_name(int mode)
{
	switch (mode) {
	case MODECTL_SENTINEL: return "sentinel";
	case MODECTL_DIAGNOSTIC: return "diagnostic";
	case MODECTL_AUTO: return "auto";
	default: return "unknown";
	}
}

static bool budgets_ok(uint64_t s, uint64_t d)
{
	return s > 0 && d >= s;
}

int modectl_new(const struct modectl_opts *opts, int start_mode, struct modectl **ret)
{
	struct modectl_opts o = *opts;
	if (!o.hold_ms)
		o.hold_ms = MODECTL_DEFAULT_HOLD_MS;
	if (o.shed_enter == 0)
		o.shed_enter = MODECTL_DEFAULT_SHED_ENTER;
	if (o.shed_exit == 0)
		o.shed_exit = MODECTL_DEFAULT_SHED_EXIT;
	if (!o.avg_ms)
		o.avg_ms = MODECTL_DEFAULT_AVG_MS;
	if (!budgets_ok(o.sentinel_budget, o.diagnostic_budget) || !isfinite(o.shed_enter) ||
	    !isfinite(o.shed_exit) || o.shed_exit <= 0 || o.shed_exit >= o.shed_enter ||
	    (start_mode != MODECTL_SENTINEL && start_mode != MODECTL_DIAGNOSTIC && start_mode != MODECTL_AUTO))
		return -EINVAL;
	struct modectl *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->o = o;
	m->above_since = m->below_since = NEVER;
	m->quiet_since = 0; /* quiet since the beginning of time */
	m->reason = "start";
	m->mode = MODECTL_SENTINEL;
	if (start_mode != MODECTL_AUTO) {
		m->mode = start_mode;
		m->pinned = true;
		m->pin_mode = start_mode;
		snprintf(m->pin_source, sizeof(m->pin_source), "config");
		m->reason = "pin";
	}
	*ret = m;
	return 0;
}

struct modectl *modectl_free(struct modectl *m)
{
	free(m);
	return NULL;
}

static uint64_t budget_of(const struct modectl *m, int mode)
{
	return mode == MODECTL_DIAGNOSTIC ? m->o.diagnostic_budget : m->o.sentinel_budget;
}

static void switch_to(struct modectl *m, int mode, uint64_t now, const char *why)
{
	if (mode == m->mode) {
		m->reason = why;
		return;
	}
	m->mode = mode;
	m->reason = why;
	m->transitions++;
	m->changed = true;
	m->last_change_ms = now;
	/* the next rates are measured against the other budget: start the average afresh */
	m->load_valid = false;
}

/* The mode the automatic rules want now, ignoring the hold time. */
static int auto_target(const struct modectl *m, uint64_t now, const char **why)
{
	if (m->safety == MODECTL_SHED_HEAVY) {
		*why = "shed";
		return MODECTL_SENTINEL;
	}
	if (m->anomaly) {
		*why = "anomaly";
		return MODECTL_DIAGNOSTIC;
	}
	if (m->mode == MODECTL_DIAGNOSTIC && m->quiet_since != NEVER && now - m->quiet_since < m->o.hold_ms) {
		*why = m->reason;
		return MODECTL_DIAGNOSTIC; /* anomaly gone, but not for long enough yet */
	}
	*why = "quiet";
	return MODECTL_SENTINEL;
}

static void update_load(struct modectl *m, const struct modectl_input *in)
{
	if (in->mixed || in->ncpu == 0) {
		m->load_valid = false;
		return;
	}
	double budget = (double)budget_of(m, in->mode);
	double inst = 0;
	uint32_t hot = 0;
	for (uint32_t c = 0; c < in->ncpu; c++) {
		double r = in->cpu_rate[c];
		if (!isfinite(r) || r < 0)
			r = 0;
		if (r / budget > inst) {
			inst = r / budget;
			hot = c;
		}
	}
	if (!m->load_valid || m->load_mode != in->mode) {
		m->load = inst;
		m->load_valid = true;
		m->load_mode = in->mode;
	} else {
		/* first-order average with time constant avg_ms, exact for any interval length */
		double alpha = 1.0 - exp(-(double)in->interval_ms / (double)m->o.avg_ms);
		m->load += alpha * (inst - m->load);
	}
	m->hot_cpu = hot;
}

static void update_safety(struct modectl *m, uint64_t now)
{
	if (!m->load_valid)
		return;
	if (m->load >= m->o.shed_enter) {
		m->below_since = NEVER;
		if (m->above_since == NEVER)
			m->above_since = now;
		if (m->safety == MODECTL_NORMAL && now - m->above_since >= m->o.hold_ms) {
			m->safety = MODECTL_SHED_HEAVY;
			m->shed_entries++;
		}
	} else if (m->load <= m->o.shed_exit) {
		m->above_since = NEVER;
		if (m->below_since == NEVER)
			m->below_since = now;
		if (m->safety == MODECTL_SHED_HEAVY && now - m->below_since >= m->o.hold_ms)
			m->safety = MODECTL_NORMAL;
	} else {
		/* between the thresholds: keep the level, restart both runs */
		m->above_since = m->below_since = NEVER;
	}
}

static void expire_pin(struct modectl *m, uint64_t now)
{
	if (m->pinned && m->pin_expires_ms && now >= m->pin_expires_ms) {
		m->pinned = false;
		const char *why;
		int t = auto_target(m, now, &why);
		switch_to(m, t, now, t == m->mode ? "pin-expired" : why);
	}
}

int modectl_tick(struct modectl *m, const struct modectl_input *in)
{
	if (!in || in->interval_ms == 0 || in->ncpu > MODECTL_MAX_CPUS || (in->ncpu && !in->cpu_rate) ||
	    (in->mode != MODECTL_SENTINEL && in->mode != MODECTL_DIAGNOSTIC))
		return -EINVAL;
	uint64_t now = in->now_ms;
	update_load(m, in);
	update_safety(m, now);
	if (in->anomaly)
		m->quiet_since = NEVER;
	else if (m->quiet_since == NEVER)
		m->quiet_since = now;
	m->anomaly = in->anomaly;
	expire_pin(m, now);
	if (m->pinned) {
		switch_to(m, m->pin_mode, now, "pin");
		return m->mode;
	}
	const char *why;
	int t = auto_target(m, now, &why);
	if (t != m->mode && m->changed && now - m->last_change_ms < m->o.hold_ms)
		return m->mode; /* minimum hold time since the last transition */
	switch_to(m, t, now, why);
	return m->mode;
}

int modectl_pin(struct modectl *m, int mode, uint64_t ttl_ms, const char *source, uint64_t now_ms)
{
	if (mode == MODECTL_AUTO) {
		if (m->pinned) {
			m->pinned = false;
			const char *why;
			int t = auto_target(m, now_ms, &why);
			switch_to(m, t, now_ms, t == m->mode ? "unpinned" : why);
		}
		return m->mode;
	}
	if (mode != MODECTL_SENTINEL && mode != MODECTL_DIAGNOSTIC)
		return -EINVAL;
	if (ttl_ms && now_ms + ttl_ms < now_ms)
		return -EINVAL;
	m->pinned = true;
	m->pin_mode = mode;
	m->pin_expires_ms = ttl_ms ? now_ms + ttl_ms : 0;
	snprintf(m->pin_source, sizeof(m->pin_source), "%s", source && source[0] ? source : "api");
	switch_to(m, mode, now_ms, "pin");
	return m->mode;
}

int modectl_set_budgets(struct modectl *m, uint64_t sentinel_budget, uint64_t diagnostic_budget)
{
	if (!budgets_ok(sentinel_budget, diagnostic_budget))
		return -EINVAL;
	m->o.sentinel_budget = sentinel_budget;
	m->o.diagnostic_budget = diagnostic_budget;
	m->load_valid = false;
	m->safety = MODECTL_NORMAL;
	m->above_since = m->below_since = NEVER;
	return 0;
}

int modectl_mode(const struct modectl *m)
{
	return m->mode;
}

void modectl_status(const struct modectl *m, struct modectl_status *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->mode = m->mode;
	ret->safety = m->safety;
	ret->pinned = m->pinned;
	ret->pin_mode = m->pin_mode;
	ret->pin_expires_ms = m->pinned ? m->pin_expires_ms : 0;
	snprintf(ret->pin_source, sizeof(ret->pin_source), "%s", m->pinned ? m->pin_source : "");
	ret->load = m->load; /* the last average, also across a restart */
	ret->hot_cpu = m->hot_cpu;
	ret->anomaly = m->anomaly;
	ret->transitions = m->transitions;
	ret->shed_entries = m->shed_entries;
	ret->since_ms = m->last_change_ms;
	ret->reason = m->reason;
}
