/* api: the status document (SPEC §13: mode, pin, budgets, events, uplink, counters, top), written
 * from a metrics snapshot. See api.h. */
#include "api.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "events.h"
#include "jsonw.h"
#include "loop.h"
#include "metrics.h"
#include "symbolizer.h"
#include "window.h"

static void kv_u64(struct jsonw *j, const char *k, uint64_t v)
{
	jsonw_key(j, k);
	jsonw_u64(j, v);
}

static void kv_str(struct jsonw *j, const char *k, const char *v)
{
	jsonw_key(j, k);
	jsonw_string(j, v);
}

static void kv_bool(struct jsonw *j, const char *k, bool v)
{
	jsonw_key(j, k);
	jsonw_bool(j, v);
}

static void kv_double(struct jsonw *j, const char *k, double v)
{
	jsonw_key(j, k);
	jsonw_double(j, v);
}

static const char *mode_name(int m)
{
	return m == LOOP_MODE_DIAGNOSTIC ? "diagnostic" : "sentinel";
}

static void write_mode(struct jsonw *j, const struct metrics_snapshot *s, uint64_t now)
{
	const struct control_snapshot *c = &s->ctl;
	kv_str(j, "mode", mode_name(s->have_ctl ? c->mc.mode : s->mode));
	kv_str(j, "mode_reason", s->have_ctl && c->mc.reason ? c->mc.reason : "start");
	jsonw_key(j, "pin");
	if (!s->have_ctl || !c->mc.pinned) {
		jsonw_null(j);
	} else {
		jsonw_begin_object(j);
		kv_str(j, "mode", mode_name(c->mc.pin_mode));
		kv_str(j, "source", c->mc.pin_source);
		jsonw_key(j, "expires");
		if (c->pin_expires_real_ms)
			jsonw_u64(j, c->pin_expires_real_ms);
		else
			jsonw_null(j);
		jsonw_key(j, "expires_in_s");
		if (c->pin_expires_real_ms)
			jsonw_double(j, c->pin_expires_real_ms > now ? (double)(c->pin_expires_real_ms - now) / 1000.0 : 0.0);
		else
			jsonw_null(j);
		jsonw_end_object(j);
	}
	kv_str(j, "safety", s->have_ctl && c->mc.safety == MODECTL_SHED_HEAVY ? "shed_heavy" : "normal");
	kv_bool(j, "throttled", s->have_ctl && c->mc.safety == MODECTL_SHED_HEAVY);
	kv_double(j, "load", s->have_ctl ? c->mc.load : 0.0);
	kv_u64(j, "hot_cpu", s->have_ctl ? c->mc.hot_cpu : 0);
	kv_u64(j, "transitions", s->have_ctl ? c->mc.transitions : 0);
	jsonw_key(j, "budgets");
	jsonw_begin_object(j);
	kv_u64(j, "sentinel_samples_per_sec", s->have_ctl ? c->sentinel_budget : s->sentinel_budget);
	kv_u64(j, "diagnostic_samples_per_sec", s->have_ctl ? c->diagnostic_budget : s->diagnostic_budget);
	kv_u64(j, "hard_drop_ns", s->have_ctl ? c->hard_drop_ns : 0);
	jsonw_end_object(j);
}

static void write_events(struct jsonw *j, const struct metrics_snapshot *s)
{
	int live = 0, hw = 0, sw = 0;
	jsonw_key(j, "events");
	jsonw_begin_array(j);
	for (int i = 0; i < s->nev; i++) {
		const struct metrics_event *e = &s->ev[i];
		live += e->live;
		hw += e->live && e->source == 0;
		sw += e->live && e->source == 1;
		jsonw_begin_object(j);
		kv_str(j, "name", e->name);
		kv_str(j, "source", e->source ? "sw" : "hw");
		kv_bool(j, "live", e->live);
		if (e->reason[0])
			kv_str(j, "reason", e->reason);
		jsonw_end_object(j);
	}
	if (s->synthetic) {
		jsonw_begin_object(j);
		kv_str(j, "name", "synthetic");
		kv_str(j, "source", "sw");
		kv_bool(j, "live", true);
		kv_str(j, "reason", "synthetic source (--perf-mock): no perf events are opened");
		jsonw_end_object(j);
	}
	jsonw_end_array(j);
	jsonw_key(j, "capability");
	jsonw_begin_object(j);
	kv_bool(j, "synthetic", s->synthetic);
	kv_str(j, "hook_tier", s->synthetic ? "synthetic" : s->tier);
	kv_u64(j, "live_events", (uint64_t)(s->synthetic ? 1 : live));
	kv_u64(j, "hardware_events", (uint64_t)hw);
	kv_u64(j, "software_events", (uint64_t)(s->synthetic ? 1 : sw));
	jsonw_end_object(j);
}

static void write_counters(struct jsonw *j, const struct metrics_snapshot *s)
{
	jsonw_key(j, "uplink");
	jsonw_begin_object(j);
	kv_bool(j, "configured", s->have_uplink);
	kv_bool(j, "connected", s->uplink_connected);
	kv_u64(j, "spool_windows", s->uplink_spool_windows);
	kv_u64(j, "spool_bytes", s->uplink_spool_bytes);
	kv_u64(j, "sent", s->uplink_sent);
	kv_u64(j, "acked", s->uplink_acked);
	kv_u64(j, "replayed", s->uplink_replayed);
	kv_u64(j, "dropped", s->uplink_dropped);
	jsonw_end_object(j);
	jsonw_key(j, "counters");
	jsonw_begin_object(j);
	kv_u64(j, "emitted", s->bpf[MS_CNT_EMITTED]);
	kv_u64(j, "budget", s->bpf[MS_CNT_DROP_BUDGET]);
	kv_u64(j, "gap", s->bpf[MS_CNT_DROP_GAP]);
	kv_u64(j, "ringfull", s->bpf[MS_CNT_DROP_RINGFULL]);
	kv_u64(j, "lost", s->lost);
	kv_u64(j, "unattributed", s->bpf[MS_CNT_UNATTRIBUTED]);
	kv_u64(j, "idle", s->bpf[MS_CNT_IDLE]);
	kv_u64(j, "processed", s->processed);
	kv_u64(j, "filtered", s->have_ctl ? s->ctl.filtered : 0);
	kv_u64(j, "windows", s->windows);
	kv_u64(j, "agg_degraded", s->degraded);
	kv_u64(j, "agg_dropped", s->agg_dropped);
	jsonw_end_object(j);
	kv_double(j, "samples_per_second", s->samples_per_sec);
}

static void write_targets(struct jsonw *j, const struct control_snapshot *c)
{
	jsonw_key(j, "targets");
	jsonw_begin_object(j);
	jsonw_key(j, "list");
	jsonw_begin_array(j);
	for (uint32_t i = 0; i < c->ntargets; i++)
		jsonw_string(j, c->targets[i]);
	jsonw_end_array(j);
	kv_u64(j, "bpf_pid_filter", c->filter_tgid);
	kv_u64(j, "cgroup_ids", c->cgroup_ids);
	kv_u64(j, "filtered", c->filtered);
	kv_u64(j, "accepted", c->accepted);
	jsonw_end_object(j);
	jsonw_key(j, "pmu");
	jsonw_begin_object(j);
	kv_u64(j, "reconfigurations", c->pmu_reconfigs);
	jsonw_key(j, "last_error");
	if (c->pmu_last_err < 0)
		jsonw_string(j, strerror(-c->pmu_last_err));
	else
		jsonw_null(j);
	jsonw_end_object(j);
}

static void write_dir(struct jsonw *j, const struct anomaly_iface_view *f, int d)
{
	jsonw_key(j, d ? "tx" : "rx");
	jsonw_begin_object(j);
	kv_double(j, "bytes_per_second", f->bytes_per_sec[d]);
	kv_double(j, "baseline_bytes_per_second", f->baseline_bytes_per_sec[d]);
	kv_double(j, "packets_per_second", f->packets_per_sec[d]);
	kv_double(j, "drops_per_second", f->drops_per_sec[d]);
	jsonw_end_object(j);
}

static void write_anomaly(struct jsonw *j, const struct control_snapshot *c)
{
	const struct anomaly_view *a = &c->anomaly;
	jsonw_key(j, "anomaly");
	jsonw_begin_object(j);
	kv_bool(j, "enabled", c->anomaly_enabled);
	kv_bool(j, "active", c->anomaly_enabled && a->active);
	kv_u64(j, "interval_ms", a->interval_ms);
	kv_u64(j, "evaluations", a->evaluations);
	kv_u64(j, "read_errors", a->read_errors);
	jsonw_key(j, "signals");
	jsonw_begin_array(j);
	for (uint32_t i = 0; c->anomaly_enabled && i < a->n; i++)
		for (int d = 0; d < 2; d++)
			for (int k = 0; k < ANOMALY__NIFKINDS; k++)
				if (a->ifs[i].active >> (d * ANOMALY__NIFKINDS + k) & 1) {
					jsonw_begin_object(j);
					kv_str(j, "kind", anomaly_kind_name(k));
					kv_str(j, "interface", a->ifs[i].name);
					kv_str(j, "direction", d ? "tx" : "rx");
					kv_u64(j, "since_ms", a->ifs[i].since_ms[d][k]);
					jsonw_end_object(j);
				}
	if (c->anomaly_enabled && a->latency_active) {
		jsonw_begin_object(j);
		kv_str(j, "kind", "latency");
		kv_u64(j, "since_ms", a->latency_since_ms);
		jsonw_end_object(j);
	}
	jsonw_end_array(j);
	jsonw_key(j, "interfaces");
	jsonw_begin_array(j);
	for (uint32_t i = 0; c->anomaly_enabled && i < a->n; i++) {
		jsonw_begin_object(j);
		kv_str(j, "name", a->ifs[i].name);
		kv_bool(j, "present", a->ifs[i].present);
		kv_bool(j, "warm", a->ifs[i].warm);
		write_dir(j, &a->ifs[i], 0);
		write_dir(j, &a->ifs[i], 1);
		jsonw_end_object(j);
	}
	jsonw_end_array(j);
	jsonw_key(j, "latency");
	jsonw_begin_object(j);
	kv_bool(j, "configured", a->latency_configured);
	kv_bool(j, "valid", a->latency_valid);
	kv_double(j, "us", a->latency_us);
	kv_double(j, "baseline_us", a->latency_baseline_us);
	jsonw_end_object(j);
	jsonw_key(j, "signals_total");
	jsonw_begin_object(j);
	for (int k = 0; k < ANOMALY__NKINDS; k++)
		kv_u64(j, anomaly_kind_name(k), a->fired[k]);
	jsonw_end_object(j);
	jsonw_end_object(j);
}

static void addr_text(const uint8_t *a, uint8_t family, char *buf, size_t len)
{
	if (family == MS_FAMILY_V4)
		inet_ntop(AF_INET, a + 12, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, a, buf, (socklen_t)len);
}

static void write_top(struct jsonw *j, const struct metrics_snapshot *s)
{
	const struct wintop *t = &s->top;
	jsonw_key(j, "top");
	jsonw_begin_object(j);
	kv_u64(j, "window_seq", s->have_top ? t->seq : 0);
	kv_u64(j, "samples", s->have_top ? t->samples : 0);
	kv_u64(j, "unattributed", s->have_top ? t->unattributed : 0);
	jsonw_key(j, "flows");
	jsonw_begin_array(j);
	for (uint32_t i = 0; s->have_top && i < t->nflows; i++) {
		const struct wintop_flow *f = &t->flows[i];
		char hex[24], tuple[160], sa[64], da[64];
		snprintf(hex, sizeof(hex), "%016" PRIx64, f->id);
		window_format_tuple(&f->t, tuple, sizeof(tuple));
		addr_text(f->t.saddr, f->t.family, sa, sizeof(sa));
		addr_text(f->t.daddr, f->t.family, da, sizeof(da));
		jsonw_begin_object(j);
		kv_u64(j, "id", f->id);
		kv_str(j, "id_hex", hex);
		kv_u64(j, "samples", f->samples);
		kv_str(j, "tuple", tuple);
		kv_u64(j, "proto", f->t.proto);
		kv_str(j, "saddr", sa);
		kv_u64(j, "sport", f->t.sport);
		kv_str(j, "daddr", da);
		kv_u64(j, "dport", f->t.dport);
		kv_str(j, "dir", f->t.dir == MS_DIR_RX ? "rx" : f->t.dir == MS_DIR_TX ? "tx" : "none");
		kv_u64(j, "ifindex", f->t.ifindex);
		jsonw_end_object(j);
	}
	jsonw_end_array(j);
	jsonw_key(j, "functions");
	jsonw_begin_array(j);
	for (uint32_t i = 0; s->have_top && i < t->nfuncs; i++) {
		jsonw_begin_object(j);
		kv_u64(j, "id", t->funcs[i].id);
		kv_str(j, "name", t->funcs[i].name);
		kv_str(j, "module", t->funcs[i].module);
		kv_u64(j, "samples", t->funcs[i].samples);
		jsonw_end_object(j);
	}
	jsonw_end_array(j);
	jsonw_end_object(j);
}

void api_write_status(struct jsonw *j, const struct metrics_snapshot *s, const struct symbolizer_stats *sym,
		      const char *version, uint64_t now)
{
	static const struct control_snapshot empty;
	jsonw_begin_object(j);
	kv_str(j, "agent_id", s->agent_id);
	kv_str(j, "version", version ? version : "");
	kv_double(j, "uptime_s", now > s->start_real_ms ? (double)(now - s->start_real_ms) / 1000.0 : 0.0);
	write_mode(j, s, now);
	write_events(j, s);
	write_counters(j, s);
	write_targets(j, s->have_ctl ? &s->ctl : &empty);
	write_anomaly(j, s->have_ctl ? &s->ctl : &empty);
	write_top(j, s);
	if (sym) {
		jsonw_key(j, "symbols");
		jsonw_begin_object(j);
		kv_u64(j, "registered_regions", sym->regions);
		kv_u64(j, "region_drops", sym->region_drops);
		kv_u64(j, "lookups", sym->lookups);
		kv_u64(j, "resolved", sym->resolved);
		jsonw_end_object(j);
	}
	jsonw_end_object(j);
}
