/* fleet: pushed commands onto the sampling loop. See fleet.h. The loop answers through done()
 * on its own thread; the fleet thread waits on a condition variable. If the wait times out (a
 * loop stopped or stuck) the waiter leaves and done() frees the record when it finally runs. */
#include "fleet.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet.pb-c.h"
#include "loop.h"
#include "targets.h"

struct waiter {
	struct loop_cmd cmd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done, abandoned;
	int result;
};

static void waiter_free(struct waiter *w)
{
	if (w->cmd.type == LOOP_CMD_SET_TARGETS)
		targets_free(w->cmd.u.targets);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

static void on_done(struct loop_cmd *cmd, int result)
{
	struct waiter *w = (struct waiter *)cmd; /* cmd is the first member */
	pthread_mutex_lock(&w->mu);
	w->done = true;
	w->result = result;
	bool gone = w->abandoned;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (gone)
		waiter_free(w);
}

static int build(struct fleet_loop_ctx *x, const Ms__V1__Command *c, struct loop_cmd *cmd, char *err, size_t len)
{
	switch (c->body_case) {
	case MS__V1__COMMAND__BODY_MODE:
		cmd->type = LOOP_CMD_SET_MODE;
		switch (c->mode) {
		case MS__V1__MODE_REQUEST__MODE_REQUEST_SENTINEL:
			cmd->u.mode = LOOP_MODE_SENTINEL;
			break;
		case MS__V1__MODE_REQUEST__MODE_REQUEST_DIAGNOSTIC:
			cmd->u.mode = LOOP_MODE_DIAGNOSTIC;
			break;
		case MS__V1__MODE_REQUEST__MODE_REQUEST_AUTO:
			cmd->u.mode = LOOP_MODE_AUTO;
			break;
		default:
			snprintf(err, len, "mode %d: expected sentinel, diagnostic or auto", (int)c->mode);
			return -EINVAL;
		}
		cmd->ttl_ms = cmd->u.mode == LOOP_MODE_AUTO ? 0 : c->ttl_ms;
		return 0;
	case MS__V1__COMMAND__BODY_BUDGETS: {
		const Ms__V1__Budgets *b = c->budgets;
		cmd->type = LOOP_CMD_SET_BUDGETS;
		cmd->u.budgets.sentinel = b->sentinel_samples_per_sec;
		cmd->u.budgets.diagnostic = b->diagnostic_samples_per_sec;
		cmd->u.budgets.hard_drop_ns = b->hard_drop_ns;
		cmd->u.budgets.set = (b->sentinel_samples_per_sec ? LOOP_BUDGET_SENTINEL : 0) |
				     (b->diagnostic_samples_per_sec ? LOOP_BUDGET_DIAGNOSTIC : 0) |
				     (b->hard_drop_ns ? LOOP_BUDGET_HARD_DROP : 0);
		if (!cmd->u.budgets.set) {
			snprintf(err, len, "budgets: nothing to set");
			return -EINVAL;
		}
		return 0;
	}
	case MS__V1__COMMAND__BODY_TARGETS: {
		const Ms__V1__TargetList *tl = c->targets;
		if (tl->n_targets > TARGETS_MAX) {
			snprintf(err, len, "targets: at most %d", TARGETS_MAX);
			return -E2BIG;
		}
		struct targets_entry *e = calloc(tl->n_targets ? tl->n_targets : 1, sizeof(*e));
		if (!e)
			return -ENOMEM;
		int r = 0;
		for (size_t i = 0; i < tl->n_targets && r == 0; i++)
			r = targets_parse(tl->targets[i]->type, tl->targets[i]->value, &e[i], err, len);
		struct targets *t = NULL;
		if (r == 0)
			r = targets_new(e, tl->n_targets, x->cgroup_root, &t, err, len);
		free(e);
		if (r < 0)
			return r;
		cmd->type = LOOP_CMD_SET_TARGETS;
		cmd->u.targets = t;
		return 0;
	}
	case MS__V1__COMMAND__BODY_PMU:
		snprintf(err, len, "PMU groups by name from the coordinator are not applied by this agent version; "
				   "use the local API (/api/v1/pmu) with full encodings");
		return -EOPNOTSUPP;
	default:
		snprintf(err, len, "empty command");
		return -EINVAL;
	}
}

int fleet_apply_loop(void *ctx, const Ms__V1__Command *c, char *err, size_t errlen)
{
	struct fleet_loop_ctx *x = ctx;
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	snprintf(w->cmd.source, sizeof(w->cmd.source), "coordinator");
	int r = build(x, c, &w->cmd, err, errlen);
	if (r < 0) {
		waiter_free(w);
		return r;
	}
	w->cmd.done = on_done;
	if ((r = loop_submit(x->loop, &w->cmd)) < 0) {
		snprintf(err, errlen, "the sampling loop's command queue is full");
		waiter_free(w);
		return r;
	}
	uint32_t ms = x->timeout_ms ? x->timeout_ms : 2000;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (!w->done && pthread_cond_timedwait(&w->cv, &w->mu, &ts) != ETIMEDOUT)
		;
	bool done = w->done;
	if (!done)
		w->abandoned = true;
	r = w->result;
	if (done && r < 0)
		snprintf(err, errlen, "%s", w->cmd.out.reason[0] ? w->cmd.out.reason : strerror(-r));
	pthread_mutex_unlock(&w->mu);
	if (!done) {
		snprintf(err, errlen, "the sampling loop did not answer within %u ms", ms);
		return -ETIMEDOUT;
	}
	waiter_free(w);
	return r;
}
