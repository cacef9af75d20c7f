/* pipeline_bench: throughput of the agent's user-space pipeline on one core, by stage.
 *
 *   pipeline_bench [--samples=N] [--flows=F] [--window=W] [--ring=R] [--rows=M]
 *
 * The synthetic source first fills an in-memory "ring" of R sample records exactly as the BPF
 * handler writes them (not timed: it stands for the kernel). The timed pipeline then reads N
 * records from that ring and runs the code the daemon runs: consumer_validate (size and header
 * checks, copy) → aggregator_add (the loop's sink) → every W samples aggregator_close (loop
 * thread) → export_symbolize, the protobuf Window encode (wire_encode_window: what the uplink
 * sends) and export_window_json (the window log) on the export worker. Stage times:
 *   validate    a separate pass of consumer_validate alone over the same records;
 *   aggregate   per-sample time of the full pass minus validate, close and the per-window stages;
 *   close, symbolize, encode_wire, encode_json   timed around each per-window call, amortised.
 * wire_bytes_per_row = encoded Window bytes / rows after symbolization (SPEC §9: <= 16). The
 * window → wire_window copy is this file's until the agent's uplink exports its own. 
 * "loop" = validate + aggregate + close (the sampling thread's share; SPEC §9 target 5M/s);
 * "single_core" = loop + symbolize + wire encode, every stage the uplink needs, on one core (the
 * optional JSON window log is shown apart). Pin with taskset for a one-core figure. Times are
 * this thread's CPU time (CLOCK_THREAD_CPUTIME_ID); wall_seconds is printed beside them.
 * Prints one JSON line. Exit 1 only if samples were lost (Σ window samples != N). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator.h"
#include "consumer.h"
#include "export.h"
#include "symbolizer.h"
#include "synth.h"
#include "window.h"
#include "wire.h"

/* Thread CPU time, not wall time: on a shared machine the wall clock also counts the time other
 * processes held this core. (Cache pollution by them still shows.) */
static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* window (agent) → wire_window (codec input): field-by-field copy, rows already symbolized. */
static int to_wire(const struct window *w, struct wire_window **ret)
{
	struct wire_window *ww;
	int r = wire_window_new(w->nrows, w->nflows, w->nfuncs, w->ncpu, &ww);
	if (r < 0)
		return r;
	snprintf(ww->agent_id, sizeof(ww->agent_id), "bench");
	ww->seq = w->seq;
	ww->start_ns = w->start_ns;
	ww->end_ns = w->end_ns;
	ww->mode = w->mode;
	ww->budget_per_cpu = w->budget_per_cpu;
	memcpy(ww->c.bpf, w->c.bpf, sizeof(ww->c.bpf));
	ww->c.processed = w->c.processed;
	ww->c.lost = w->c.lost;
	ww->c.agg_degraded = w->c.agg_degraded;
	ww->c.agg_dropped = w->c.agg_dropped;
	ww->c.flows_overflow = w->c.flows_overflow;
	ww->nevents = 1;
	snprintf(ww->events[0].name, sizeof(ww->events[0].name), "synthetic");
	ww->events[0].source = 1;
	for (uint32_t i = 0; i < w->nrows; i++) {
		const struct window_row *a = &w->rows[i];
		ww->rows[i] = (struct wire_row){ .flow_id = a->flow_id, .func_id = a->func_id,
			.stack_id = a->stack_id, .object_id = a->object_id, .samples = a->samples,
			.norm_cost = a->norm_cost, .pid = a->pid, .event = 0, .numa_node = a->numa_node,
			.dir = a->dir, .iclass = a->iclass, .user_mode = a->user_mode };
	}
	for (uint32_t i = 0; i < w->nflows; i++) {
		ww->flows[i].flow_id = w->flows[i].flow_id;
		ww->flows[i].has_tuple = true;
		ww->flows[i].tuple = w->flows[i].tuple;
	}
	for (uint32_t i = 0; i < w->nfuncs; i++) {
		ww->funcs[i].func_id = w->funcs[i].func_id;
		snprintf(ww->funcs[i].name, sizeof(ww->funcs[i].name), "%s", w->funcs[i].name);
		snprintf(ww->funcs[i].module, sizeof(ww->funcs[i].module), "%s", w->funcs[i].module);
	}
	ww->nrows = w->nrows;
	ww->nflows = w->nflows;
	ww->nfuncs = w->nfuncs;
	*ret = ww;
	return 0;
}

static uint64_t opt(int argc, char **argv, const char *name, uint64_t def)
{
	size_t n = strlen(name);
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=')
			return strtoull(argv[i] + n + 1, NULL, 10);
	return def;
}

int main(int argc, char **argv)
{
	uint64_t n = opt(argc, argv, "--samples", 20000000);
	uint32_t flows = (uint32_t)opt(argc, argv, "--flows", 1024);
	uint64_t win = opt(argc, argv, "--window", 5000000);
	uint64_t ring_n = opt(argc, argv, "--ring", 1 << 20);
	uint32_t max_rows = (uint32_t)opt(argc, argv, "--rows", 65536);
	if (ring_n > n)
		ring_n = n;
	if (!n || !win || !ring_n || !flows)
		return 2;

	struct synth *syn;
	struct synth_opts so = { .nflows = flows, .seed = 42, .nevents = 1, .unattributed_pct = 10 };
	struct ms_sample *ring = calloc(ring_n, sizeof(*ring));
	if (!ring || synth_new(&so, &syn) < 0)
		return 1;
	for (uint64_t i = 0; i < ring_n; i++)
		synth_next(syn, &ring[i]);
	synth_free(syn);

	struct symbolizer *sym;
	struct symbolizer_opts syo = { 0 };
	if (symbolizer_new(&syo, &sym) < 0)
		return 1;
	for (uint32_t i = 0; i < SYNTH_NFUNCS; i++) {
		char name[64];
		synth_func_name(i, name, sizeof(name));
		symbolizer_register_region(sym, SYNTH_PID, SYNTH_CODE_BASE + (uint64_t)i * SYNTH_FUNC_SIZE,
					   SYNTH_FUNC_SIZE, name, "[synthetic]");
	}
	struct aggregator *agg;
	if (aggregator_new(max_rows, 131072, &agg) < 0)
		return 1;

	/* warm-up: one window through everything (page in the table and the caches) */
	struct ms_sample v;
	for (uint64_t i = 0; i < win && i < n; i++) {
		if (consumer_validate(&ring[i % ring_n], sizeof(*ring), &v) == 0) {
			struct agg_sample as = { .s = &v, .scale = 1.0, .numa_node = -1 };
			aggregator_add(agg, &as);
		}
	}
	window_free(aggregator_close(agg));

	/* stage: validate alone */
	uint64_t t0 = now_ns(), ok = 0;
	for (uint64_t i = 0; i < n; i++)
		ok += consumer_validate(&ring[i % ring_n], sizeof(*ring), &v) == 0;
	uint64_t t_validate = now_ns() - t0;

	/* full pipeline */
	uint64_t w0 = wall_ns();
	uint64_t t_close = 0, t_sym = 0, t_enc = 0, t_wire = 0, got = 0, rows = 0, windows = 0, json_bytes = 0;
	uint64_t wire_bytes = 0;
	int wire_err = 0;
	uint64_t rows_max = 0, degraded = 0;
	t0 = now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if (consumer_validate(&ring[i % ring_n], sizeof(*ring), &v) == 0) {
			struct agg_sample as = { .s = &v, .scale = 1.0, .numa_node = -1 };
			aggregator_add(agg, &as);
		}
		if ((i + 1) % win == 0 || i + 1 == n) {
			uint64_t a = now_ns();
			struct window *w = aggregator_close(agg);
			uint64_t b = now_ns();
			if (!w)
				return 1;
			got += window_samples(w);
			rows_max = w->nrows > rows_max ? w->nrows : rows_max;
			degraded += w->c.agg_degraded;
			w->seq = ++windows;
			export_symbolize(sym, w);
			uint64_t b2 = now_ns();
			struct wire_window *ww = NULL;
			uint8_t *buf = NULL;
			size_t blen = 0;
			int wr = to_wire(w, &ww);
			if (wr == 0)
				wr = wire_encode_window(ww, &buf, &blen);
			if (wr < 0)
				wire_err = wr;
			wire_bytes += blen;
			free(buf);
			wire_window_free(ww);
			uint64_t c = now_ns();
			t_wire += c - b2;
			char *js;
			size_t jl;
			if (export_window_json(w, "bench", &js, &jl) == 0) {
				json_bytes += jl;
				free(js);
			}
			uint64_t d = now_ns();
			rows += w->nrows;
			t_close += b - a;
			t_sym += b2 - b;
			t_enc += d - c;
			window_free(w);
		}
	}
	uint64_t t_total = now_ns() - t0;
	double wall = (double)(wall_ns() - w0) / 1e9;
	uint64_t t_agg = t_total - t_close - t_sym - t_enc - t_wire;
	t_agg = t_agg > t_validate ? t_agg - t_validate : 0;
	double loop_ns = (double)(t_validate + t_agg + t_close) / (double)n;
	double all_ns = (double)(t_validate + t_agg + t_close + t_sym + t_wire) / (double)n;

	printf("{\"bench\":\"pipeline\",\"samples\":%" PRIu64 ",\"flows\":%u,\"window_samples\":%" PRIu64
	       ",\"ring_records\":%" PRIu64 ",\"windows\":%" PRIu64 ",\"rows_per_window_max\":%" PRIu64
	       ",\"rows_after_symbolize\":%" PRIu64 ",\"degraded\":%" PRIu64 ",\"json_bytes_per_row\":%.1f,\"wire_bytes_per_row\":%.2f,\"wire_error\":%d"
	       ",\"ns_per_sample\":{\"validate\":%.1f,\"aggregate\":%.1f,\"close\":%.2f,\"symbolize\":%.2f"
	       ",\"encode_wire\":%.2f,\"encode_json\":%.2f,\"loop\":%.1f,\"single_core\":%.1f}"
	       ",\"cpu_seconds\":%.3f,\"wall_seconds\":%.3f,\"samples_per_sec\":{\"loop\":%.0f,\"single_core\":%.0f},\"aggregated\":%" PRIu64 "}\n",
	       n, flows, win, ring_n, windows, rows_max, rows, degraded,
	       rows ? (double)json_bytes / (double)rows : 0.0, rows ? (double)wire_bytes / (double)rows : 0.0,
	       wire_err,
	       (double)t_validate / (double)n, (double)t_agg / (double)n, (double)t_close / (double)n,
	       (double)t_sym / (double)n, (double)t_wire / (double)n, (double)t_enc / (double)n, loop_ns, all_ns,
	       (double)t_total / 1e9, wall, 1e9 / loop_ns, 1e9 / all_ns, got);
	aggregator_free(agg);
	symbolizer_free(sym);
	free(ring);
	return got == ok ? 0 : 1;
}
