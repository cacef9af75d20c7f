/* loop: see loop.h. */
#include "loop.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator.h"
#include "bqueue.h"
#include "consumer.h"
#include "control.h"
#include "events.h"
#include "pmu.h"
#include "samplelog.h"
#include "sampler.h"
#include "synth.h"
#include "window.h"

#define LOOP_TICK_MS 50
/* Address samples kept per window for the memory analyzers (64 bytes each: 4 MiB). Past it they
 * are counted (window addr_dropped) and still aggregated as usual. */
#define LOOP_ADDR_SAMPLES 65536u
#define LOOP_CMD_QUEUE 256
/* The closed-window queue is bounded by bytes, not only by its length: at 100k flows one window
 * holds ~15 MiB of rows and flows, and a worker that falls behind on a busy host used to let
 * the queue (and the RSS) grow by that much per window. While the windows waiting in the queue
 * hold LOOP_CLOSED_SOFT_BYTES or more, the loop keeps the open window open (it stretches:
 * samples keep being counted, the aggregator's bounded table absorbs them, end_ns - start_ns
 * says how long it ran), for at most LOOP_STRETCH_MAX window lengths. A window closed while
 * the queue holds LOOP_CLOSED_HARD_BYTES is dropped and counted (windows_dropped), as a full
 * queue always was. 8 MiB: one waiting window of 100k flows (~16 MB before the worker merges
 * its rows) is enough to stretch; windows of a few thousand flows never meet either bound. */
#define LOOP_CLOSED_SOFT_BYTES (8u << 20)
#define LOOP_CLOSED_HARD_BYTES (48u << 20)
#define LOOP_STRETCH_MAX 4

struct loop {
	struct loop_opts o;
	struct aggregator *agg;
	struct consumer *cons;
	struct synth *synth;
	struct bqueue *cmds;
	struct ms_runtime_cfg cfg;
	int mode;
	uint64_t seq;
	uint64_t win_start_ns;            /* CLOCK_REALTIME */
	uint64_t win_start_mono;
	uint64_t prev_bpf[MS_CNT__MAX];
	uint64_t prev_cpu[WINDOW_MAX_CPUS];
	int ncpu;
	uint64_t prev_lost, win_processed, synth_credit_ns, synth_last_mono;
	uint8_t ev_iclass[WINDOW_MAX_EVENTS];
	uint8_t ev_access[WINDOW_MAX_EVENTS]; /* enum events_access of each event slot */
	uint8_t ev_addr[WINDOW_MAX_EVENTS];   /* the slot delivers data addresses */
	uint32_t ev_gen;                      /* events_generation the two tables were read at */
	struct window_addr *addrs;            /* address samples of the open window */
	uint32_t naddrs;
	uint64_t addr_dropped;
	pthread_mutex_t stats_mu;         /* guards stats: written at window close, read by others */
	struct loop_stats stats;
	struct control *ctl;              /* mode controller, anomaly monitor, targets */
	struct control_snapshot snap;     /* scratch for on_ctl (too big for the stack) */
};

_Static_assert((int)LOOP_MODE_SENTINEL == (int)MODECTL_SENTINEL &&
		       (int)LOOP_MODE_DIAGNOSTIC == (int)MODECTL_DIAGNOSTIC && (int)LOOP_MODE_AUTO == (int)MODECTL_AUTO,
	       "loop and modectl modes share their numbers");

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Copies what the memory analyzers need of an address-carrying sample (64 bytes, no lookup). */
static void addr_keep(struct loop *l, const struct ms_sample *s, uint8_t iclass)
{
	if (l->naddrs >= LOOP_ADDR_SAMPLES) {
		l->addr_dropped++;
		return;
	}
	struct window_addr *a = &l->addrs[l->naddrs++];
	a->addr = s->addr;
	a->ip = s->ip;
	a->flow_id = s->flow_id;
	a->period = s->period;
	a->stack_id = (s->kstack_id < 0 && s->ustack_id < 0)
			      ? WINDOW_NO_STACK
			      : ((uint64_t)(uint32_t)s->ustack_id << 32 | (uint32_t)s->kstack_id);
	a->pid = s->pid;
	a->tid = s->tid;
	a->cpu = s->cpu;
	a->event = (uint16_t)s->event;
	a->access = l->ev_access[s->event];
	a->user_mode = s->user_mode;
	a->dir = s->flow_id ? s->flow.dir : MS_DIR_NONE;
	a->iclass = iclass;
}

/* Per-slot properties the hot path reads, refreshed when the events were rebuilt. */
static void load_event_tables(struct loop *l)
{
	memset(l->ev_access, 0, sizeof(l->ev_access));
	memset(l->ev_addr, 0, sizeof(l->ev_addr));
	if (!l->o.events)
		return;
	l->ev_gen = events_generation(l->o.events);
	for (int i = 0; i < events_count(l->o.events) && i < WINDOW_MAX_EVENTS; i++) {
		const struct events_spec *sp = &events_get(l->o.events, i)->spec;
		l->ev_access[i] = sp->access;
		l->ev_addr[i] = sp->sample_addr;
	}
}

/* Events follow the mode and the rotation plan; cheap when nothing changes. */
static void events_step(struct loop *l, uint64_t mono)
{
	if (!l->o.events)
		return;
	if (events_generation(l->o.events) != l->ev_gen)
		load_event_tables(l);
	if (l->o.sampler)
		events_tick(l->o.events, l->mode, mono);
}

static void sink(void *arg, const struct ms_sample *s)
{
	struct loop *l = arg;
	struct agg_sample as = {
		.s = s,
		.scale = 1.0,
		.object_id = 0,
		.numa_node = -1,
		.iclass = s->event < WINDOW_MAX_EVENTS ? l->ev_iclass[s->event] : 0,
	};
	if (control_accept(l->ctl, s)) {
		aggregator_add(l->agg, &as);
		if (s->addr && s->event < WINDOW_MAX_EVENTS && l->ev_addr[s->event])
			addr_keep(l, s, as.iclass);
	}
	l->win_processed++;
	if (l->o.sample_log)
		samplelog_write(l->o.sample_log, s);
}

static int apply_cfg(struct loop *l)
{
	uint64_t budget = l->mode == LOOP_MODE_DIAGNOSTIC ? l->o.diagnostic_budget : l->o.sentinel_budget;
	sampler_cfg_init(&l->cfg, budget, l->o.hard_drop_ns, l->o.flow_skid_ns, l->o.thread_flow_ns);
	l->cfg.flags = l->o.cfg_flags;
	l->cfg.thread_send_flow_ns = l->o.thread_send_flow_ns;
	l->cfg.filter_tgid = l->ctl ? control_filter_tgid(l->ctl) : l->o.filter_tgid;
	l->cfg.ringbuf_wakeup_bytes = l->o.ringbuf_wakeup_bytes;
	return l->o.sampler ? sampler_set_cfg(l->o.sampler, &l->cfg) : 0;
}

int loop_new(const struct loop_opts *opts, struct loop **ret)
{
	if (!opts->closed_out || (!opts->synth && !opts->sampler) || opts->window_ms == 0)
		return -EINVAL;
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->o = *opts;
	l->mode = opts->mode;
	l->seq = opts->first_seq ? opts->first_seq : 1;
	l->ncpu = libbpf_num_possible_cpus();
	if (l->ncpu < 0 || l->ncpu > WINDOW_MAX_CPUS)
		l->ncpu = l->ncpu < 0 ? 1 : WINDOW_MAX_CPUS;
	pthread_mutex_init(&l->stats_mu, NULL);
	int r = aggregator_new(opts->agg_max_rows, opts->agg_max_flows, &l->agg);
	if (r == 0)
		r = bqueue_new(LOOP_CMD_QUEUE, &l->cmds);
	if (r == 0 && opts->synth) {
		struct synth_opts so = {
			.nflows = opts->synth_flows ? opts->synth_flows : 64,
			.seed = opts->synth_seed,
			.nevents = opts->events ? (uint32_t)events_count(opts->events) : 1,
			.unattributed_pct = 10,
			.data_addr = opts->synth_data_addr,
		};
		r = synth_new(&so, &l->synth);
	}
	if (r == 0 && opts->sampler)
		r = consumer_new(sampler_ringbuf_fd(opts->sampler), sink, l, &l->cons);
	if (r == 0 && opts->events)
		for (int i = 0; i < events_count(opts->events) && i < WINDOW_MAX_EVENTS; i++)
			l->ev_iclass[i] = events_get(opts->events, i)->spec.iclass;
	if (r == 0 && !(l->addrs = malloc(LOOP_ADDR_SAMPLES * sizeof(*l->addrs))))
		r = -ENOMEM;
	if (r == 0)
		load_event_tables(l);
	if (r == 0) {
		struct control_opts co = {
			.start_mode = opts->mode_auto ? MODECTL_AUTO : opts->mode,
			.mode = { .sentinel_budget = opts->sentinel_budget, .diagnostic_budget = opts->diagnostic_budget,
				  .hold_ms = opts->mode_hold_ms, .shed_enter = opts->shed_enter,
				  .shed_exit = opts->shed_exit },
			.hard_drop_ns = opts->hard_drop_ns,
			.anomaly = opts->anomaly,
			.targets = opts->targets,
			.base_filter_tgid = opts->filter_tgid,
			.sampler = opts->sampler,
			.ncpu = (uint32_t)(l->ncpu < CONTROL_MAX_CPUS ? l->ncpu : CONTROL_MAX_CPUS),
		};
		r = control_new(&co, &l->ctl);
		if (r == 0)
			l->mode = control_mode(l->ctl);
	}
	if (r == 0)
		r = apply_cfg(l);
	if (r < 0) {
		if (!l->ctl)
			targets_free(opts->targets);
		loop_free(l);
		return r;
	}
	*ret = l;
	return 0;
}

struct loop *loop_free(struct loop *l)
{
	if (!l)
		return NULL;
	consumer_free(l->cons);
	free(l->addrs);
	control_free(l->ctl);
	synth_free(l->synth);
	aggregator_free(l->agg);
	/* commands queued after the loop stopped: their senders still wait for done() */
	void *item;
	while (l->cmds && bqueue_pop(l->cmds, &item, 0) == 0) {
		struct loop_cmd *c = item;
		if (c->type == LOOP_CMD_SET_TARGETS)
			targets_free(c->u.targets);
		if (c->type == LOOP_CMD_SET_PMU)
			free(c->u.pmu);
		c->u.targets = NULL;
		snprintf(c->out.reason, sizeof(c->out.reason), "the agent is stopping");
		if (c->done)
			c->done(c, -ECANCELED);
	}
	bqueue_free(l->cmds, NULL);
	pthread_mutex_destroy(&l->stats_mu);
	free(l);
	return NULL;
}

int loop_submit(struct loop *l, struct loop_cmd *cmd)
{
	return bqueue_push(l->cmds, cmd);
}

void loop_get_stats(struct loop *l, struct loop_stats *ret)
{
	pthread_mutex_lock(&l->stats_mu);
	*ret = l->stats;
	pthread_mutex_unlock(&l->stats_mu);
}

/* The control snapshot plus the events in force (the loop owns them). */
static void snapshot(struct loop *l, uint64_t mono)
{
	control_snapshot(l->ctl, mono, now_ns(CLOCK_REALTIME), &l->snap);
	for (int i = 0; l->o.events && i < events_count(l->o.events) && l->snap.nev < CONTROL_MAX_EVENTS; i++) {
		const struct events_state *st = events_get(l->o.events, i);
		struct control_event *e = &l->snap.ev[l->snap.nev++];
		snprintf(e->name, sizeof(e->name), "%s", st->spec.name);
		snprintf(e->reason, sizeof(e->reason), "%s", st->reason);
		e->source = (uint8_t)st->source;
		e->live = st->live;
	}
}

static void publish(struct loop *l)
{
	if (!l->o.on_ctl)
		return;
	snapshot(l, now_ns(CLOCK_MONOTONIC));
	l->o.on_ctl(l->o.on_ctl_arg, &l->snap);
}

/* The loop's mode becomes m: new budget at once, the open window continues. */
static void set_mode(struct loop *l, int m)
{
	if (m == l->mode)
		return;
	l->mode = m;
	control_mode_switched(l->ctl);
}

static void close_window(struct loop *l, uint64_t end_real, bool bounded);

static int apply_pmu(struct loop *l, struct loop_cmd *c)
{
	if (!l->o.events || !l->o.sampler) {
		snprintf(c->out.reason, sizeof(c->out.reason), "the synthetic source has no PMU events");
		return -EOPNOTSUPP;
	}
	struct pmu_config *cfg = malloc(sizeof(*cfg));
	if (!cfg)
		return -ENOMEM;
	*cfg = *events_pmu_config(l->o.events);
	pmu_config_merge(cfg, c->u.pmu);
	/* slot indices change: the samples of the open window belong to the old numbering */
	uint64_t real = now_ns(CLOCK_REALTIME);
	close_window(l, real, false);
	l->win_start_mono = now_ns(CLOCK_MONOTONIC);
	l->win_start_ns = real;
	int r = events_reconfigure(l->o.events, cfg, sampler_pmu_prog(l->o.sampler));
	free(cfg);
	memset(l->ev_iclass, 0, sizeof(l->ev_iclass));
	for (int i = 0; i < events_count(l->o.events) && i < WINDOW_MAX_EVENTS; i++)
		l->ev_iclass[i] = events_get(l->o.events, i)->spec.iclass;
	c->out.live_events = events_live_count(l->o.events);
	if (r < 0)
		snprintf(c->out.reason, sizeof(c->out.reason), "no event of the new groups could be opened: %s",
			 strerror(-r));
	control_pmu_result(l->ctl, r);
	return r < 0 ? r : 0;
}

static void run_cmd(struct loop *l, struct loop_cmd *c)
{
	int r = 0;
	uint64_t mono = now_ns(CLOCK_MONOTONIC);
	memset(&c->out, 0, sizeof(c->out));
	switch (c->type) {
	case LOOP_CMD_SET_MODE:
		r = control_pin(l->ctl, c->u.mode, c->ttl_ms, c->source[0] ? c->source : "api", mono,
				c->out.reason, sizeof(c->out.reason));
		if (r >= 0)
			set_mode(l, r);
		break;
	case LOOP_CMD_SET_BUDGETS: {
		uint32_t set = c->u.budgets.set ? c->u.budgets.set : 7u;
		uint64_t s = set & LOOP_BUDGET_SENTINEL ? c->u.budgets.sentinel : l->o.sentinel_budget;
		uint64_t d = set & LOOP_BUDGET_DIAGNOSTIC ? c->u.budgets.diagnostic : l->o.diagnostic_budget;
		uint64_t h = set & LOOP_BUDGET_HARD_DROP ? c->u.budgets.hard_drop_ns : l->o.hard_drop_ns;
		r = control_set_budgets(l->ctl, s, d, h, c->out.reason, sizeof(c->out.reason));
		if (r >= 0) {
			l->o.sentinel_budget = s;
			l->o.diagnostic_budget = d;
			l->o.hard_drop_ns = h;
		}
		break;
	}
	case LOOP_CMD_SET_VALIDITY:
		l->o.flow_skid_ns = c->u.validity.flow_skid_ns;
		l->o.thread_flow_ns = c->u.validity.thread_flow_ns;
		break;
	case LOOP_CMD_SET_FILTER:
		l->o.filter_tgid = c->u.filter_tgid;
		break;
	case LOOP_CMD_SET_TARGETS:
		control_set_targets(l->ctl, c->u.targets);
		c->u.targets = NULL;
		break;
	case LOOP_CMD_SET_PMU:
		r = apply_pmu(l, c);
		free(c->u.pmu);
		c->u.pmu = NULL;
		break;
	default:
		r = -EOPNOTSUPP;
	}
	if (r >= 0)
		r = apply_cfg(l);
	else if (!c->out.reason[0])
		snprintf(c->out.reason, sizeof(c->out.reason), "%s", strerror(-r));
	snapshot(l, mono);
	struct modectl_status st = l->snap.mc;
	c->out.mode = l->mode;
	c->out.pinned = st.pinned;
	c->out.pin_mode = st.pin_mode;
	c->out.pin_expires_ms = l->snap.pin_expires_real_ms;
	snprintf(c->out.pin_source, sizeof(c->out.pin_source), "%s", st.pin_source);
	c->out.sentinel = l->o.sentinel_budget;
	c->out.diagnostic = l->o.diagnostic_budget;
	c->out.hard_drop_ns = l->o.hard_drop_ns;
	c->out.ntargets = l->snap.ntargets;
	c->out.filter_tgid = l->snap.filter_tgid;
	if (l->o.on_ctl)
		l->o.on_ctl(l->o.on_ctl_arg, &l->snap);
	if (c->done)
		c->done(c, r < 0 ? r : 0);
}

/* The control plane's turn, every loop iteration (it decides itself what is due). */
static void control_step(struct loop *l)
{
	bool ticked;
	int m = control_tick(l->ctl, now_ns(CLOCK_MONOTONIC), now_ns(CLOCK_REALTIME), l->mode, &ticked);
	if (m != l->mode) {
		set_mode(l, m);
		apply_cfg(l);
	}
	if (ticked)
		publish(l);
}

static void drain_cmds(struct loop *l)
{
	void *item;
	while (bqueue_pop(l->cmds, &item, 0) == 0)
		run_cmd(l, item);
}

/* Hands the window its address samples (an exact-size copy; the loop keeps its buffer) and
 * applies each event's multiplexing scale of the window to its rows' norm_cost. */
static void attach_memory_samples(struct loop *l, struct window *w)
{
	for (int i = 0; i < WINDOW_MAX_EVENTS; i++)
		w->event_scale[i] = 1.0;
	if (l->o.events && l->o.sampler) {
		double sc[WINDOW_MAX_EVENTS];
		int n = events_take_scales(l->o.events, now_ns(CLOCK_MONOTONIC), sc, WINDOW_MAX_EVENTS);
		for (int i = 0; i < n; i++)
			w->event_scale[i] = sc[i];
		for (uint32_t i = 0; i < w->nrows; i++) {
			double f = w->rows[i].event < n ? sc[w->rows[i].event] : 1.0;
			if (f > 0)
				w->rows[i].norm_cost *= f;
		}
	}
	w->c.addr_dropped = l->addr_dropped;
	l->addr_dropped = 0;
	if (l->naddrs) {
		w->addrs = malloc((size_t)l->naddrs * sizeof(*w->addrs));
		if (w->addrs) {
			memcpy(w->addrs, l->addrs, (size_t)l->naddrs * sizeof(*w->addrs));
			w->naddrs = l->naddrs;
		} else {
			w->c.addr_dropped += l->naddrs;
		}
	}
	l->naddrs = 0;
}

/* Bytes of the closed windows the consumer has not taken yet (0 without a byte count). */
static uint64_t closed_backlog(const struct loop *l)
{
	return l->o.closed_bytes ? __atomic_load_n(l->o.closed_bytes, __ATOMIC_RELAXED) : 0;
}

/* bounded: a regular close, subject to LOOP_CLOSED_HARD_BYTES; the forced closes (event
 * renumbering, the final flush, which the worker drains before it stops) are only subject to
 * the queue's length. */
static void close_window(struct loop *l, uint64_t end_real, bool bounded)
{
	struct window *w = aggregator_close(l->agg);
	if (!w)
		return; /* out of memory: rows stay in the table, retried next close */
	attach_memory_samples(l, w);
	control_take_anomalies(l->ctl, w);
	uint64_t bpf[MS_CNT__MAX] = { 0 };
	uint64_t cpu[WINDOW_MAX_CPUS] = { 0 };
	if (l->o.sampler) {
		sampler_read_counters(l->o.sampler, bpf, cpu, l->ncpu);
		w->ncpu = (uint32_t)l->ncpu;
		for (int i = 0; i < l->ncpu; i++)
			w->cpu_emitted[i] = cpu[i] - l->prev_cpu[i];
		memcpy(l->prev_cpu, cpu, sizeof(cpu));
	}
	else
		bpf[MS_CNT_EMITTED] = l->prev_bpf[MS_CNT_EMITTED] + l->win_processed;
	for (int i = 0; i < MS_CNT__MAX; i++)
		w->c.bpf[i] = bpf[i] - l->prev_bpf[i];
	uint64_t lost = l->cons ? consumer_lost(l->cons) : 0;
	w->c.lost = lost - l->prev_lost;
	w->c.processed = l->win_processed;
	w->seq = l->seq++;
	w->start_ns = l->win_start_ns;
	w->end_ns = end_real;
	w->mode = (uint8_t)l->mode;
	w->budget_per_cpu = l->cfg.budget_per_sec;
	if (l->o.events) {
		int n = events_count(l->o.events);
		w->nevents = (uint32_t)(n < WINDOW_MAX_EVENTS ? n : WINDOW_MAX_EVENTS);
		for (uint32_t i = 0; i < w->nevents; i++) {
			const struct events_state *st = events_get(l->o.events, (int)i);
			snprintf(w->event_names[i], sizeof(w->event_names[i]), "%s", st->spec.name);
			w->event_sources[i] = (uint8_t)st->source;
		}
	} else {
		w->nevents = 1;
		strcpy(w->event_names[0], "synthetic");
		w->event_sources[0] = 1;
	}

	pthread_mutex_lock(&l->stats_mu);
	l->stats.windows_closed++;
	l->stats.samples_processed += l->win_processed;
	l->stats.lost = lost;
	l->stats.filtered = control_filtered(l->ctl);
	memcpy(l->stats.bpf, bpf, sizeof(bpf));
	pthread_mutex_unlock(&l->stats_mu);

	memcpy(l->prev_bpf, bpf, sizeof(bpf));
	l->prev_lost = lost;
	l->win_processed = 0;
	size_t bytes = window_bytes(w);
	if ((bounded && closed_backlog(l) >= LOOP_CLOSED_HARD_BYTES) || bqueue_push(l->o.closed_out, w) < 0) {
		window_free(w);
		pthread_mutex_lock(&l->stats_mu);
		l->stats.windows_dropped++;
		pthread_mutex_unlock(&l->stats_mu);
	} else if (l->o.closed_bytes) {
		__atomic_add_fetch(l->o.closed_bytes, (uint64_t)bytes, __ATOMIC_RELAXED);
	}
}

/* Generates the synthetic samples due since the last call (rate-limited) or one batch. */
static void synth_tick(struct loop *l, uint64_t mono)
{
	uint64_t n;
	if (l->o.synth_rate == 0) {
		n = 65536;
	} else {
		if (!l->synth_last_mono)
			l->synth_last_mono = mono;
		l->synth_credit_ns += mono - l->synth_last_mono;
		l->synth_last_mono = mono;
		n = l->synth_credit_ns * l->o.synth_rate / 1000000000ULL;
		l->synth_credit_ns -= n * 1000000000ULL / l->o.synth_rate;
	}
	struct ms_sample s, v;
	for (uint64_t i = 0; i < n; i++) {
		synth_next(l->synth, &s);
		if (consumer_validate(&s, sizeof(s), &v) == 0)
			sink(l, &v);
	}
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int loop_run(struct loop *l, volatile sig_atomic_t *stop)
{
	uint64_t start_mono = now_ns(CLOCK_MONOTONIC);
	l->win_start_mono = start_mono;
	l->win_start_ns = now_ns(CLOCK_REALTIME);
	uint64_t win_ns = l->o.window_ms * 1000000ULL;
	int err = 0;
	bool stretching = false; /* the open window is past its length, waiting for the consumer */
	control_step(l);
	publish(l);
	events_step(l, start_mono);
	while (!*stop) {
		uint64_t mono = now_ns(CLOCK_MONOTONIC);
		if (l->o.duration_ms && mono - start_mono >= l->o.duration_ms * 1000000ULL)
			break;
		uint64_t until_close = l->win_start_mono + win_ns > mono ? l->win_start_mono + win_ns - mono : 0;
		int tick = (int)(until_close / 1000000ULL);
		if (tick > LOOP_TICK_MS)
			tick = LOOP_TICK_MS;
		if (l->cons) {
			int r = consumer_poll(l->cons, tick);
			if (r < 0) {
				err = r;
				break;
			}
		} else {
			synth_tick(l, mono);
			if (l->o.synth_rate || l->o.synth_period_ms)
				sleep_ms(l->o.synth_period_ms ? (uint64_t)l->o.synth_period_ms
							       : (uint64_t)(tick ? tick : 1));
		}
		drain_cmds(l);
		control_step(l);
		mono = now_ns(CLOCK_MONOTONIC);
		events_step(l, mono);
		if (mono - l->win_start_mono >= win_ns && closed_backlog(l) >= LOOP_CLOSED_SOFT_BYTES &&
		    mono - l->win_start_mono < LOOP_STRETCH_MAX * win_ns) {
			if (!stretching) {
				stretching = true;
				pthread_mutex_lock(&l->stats_mu);
				l->stats.windows_stretched++;
				pthread_mutex_unlock(&l->stats_mu);
			}
		} else if (mono - l->win_start_mono >= win_ns) {
			stretching = false;
			uint64_t real = now_ns(CLOCK_REALTIME);
			close_window(l, real, true);
			l->win_start_mono = mono;
			l->win_start_ns = real;
		}
	}
	/* flush: stop sampling first so the counters cannot move, then what the ring still holds
	 * belongs to the open window (emitted == processed for the run) */
	if (l->o.events)
		events_close(l->o.events);
	if (l->cons)
		consumer_drain(l->cons);
	drain_cmds(l);
	close_window(l, now_ns(CLOCK_REALTIME), false);
	return err;
}

uint64_t loop_bench_synth(struct loop *l, uint64_t n, uint64_t window_n)
{
	struct ms_sample s, v;
	uint64_t total = 0;
	for (uint64_t i = 0; i < n; i++) {
		synth_next(l->synth, &s);
		if (consumer_validate(&s, sizeof(s), &v) == 0)
			sink(l, &v);
		if (window_n && (i + 1) % window_n == 0) {
			struct window *w = aggregator_close(l->agg);
			if (w) {
				total += window_samples(w);
				window_free(w);
			}
			l->win_processed = 0;
		}
	}
	return total;
}
