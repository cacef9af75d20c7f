/* ch_bench: sustained rows/s of the coordinator's ClickHouse path — decoded windows (struct
 * wire_window, as ingest hands them over) → chrows (RowBinary rows of every table) → chwriter
 * (batches, keep-alive HTTP) → ClickHouse — against a server that already has the schema
 * (tests/bench/ch_bench.py starts one and loads it). Each window has rows_per_window rollup
 * rows over 64 flows and 32 functions; a distinct seq per window, as real agents send.
 * Prints one line of key=value figures (rows/s counts every row inserted, all tables; rollup
 * rows/s the ms_flow_rollup rows alone) and exits non-zero if any row failed.
 * Usage: ch_bench ENDPOINT DATABASE [total_rows=5000000] [rows_per_window=10000]
 *        [batch_rows=100000] [producers=1] [parallel=1] */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chrows.h"
#include "chwriter.h"
#include "wire.h"

struct prod {
	struct chwriter *w;
	const struct wire_window *tmpl;
	uint64_t first_seq, nwindows;
	uint64_t retries;
	int err;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *produce(void *arg)
{
	struct prod *p = arg;
	struct wire_window w = *p->tmpl; /* shares the template's arrays, read-only */
	for (uint64_t i = 0; i < p->nwindows; i++) {
		struct chwriter_unit *u;
		if ((p->err = chwriter_unit_take(p->w, &u)) < 0)
			return NULL;
		w.seq = p->first_seq + i;
		w.start_ns = p->tmpl->start_ns + w.seq * 1000000000ull;
		w.end_ns = w.start_ns + 1000000000ull;
		if ((p->err = chrows_window(u, &w)) < 0)
			return NULL;
		int r;
		while ((r = chwriter_submit(p->w, &u, NULL, NULL)) == -EAGAIN) {
			p->retries++;
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
		if (r < 0) {
			p->err = r;
			chwriter_unit_free(u);
			return NULL;
		}
	}
	return NULL;
}

static struct wire_window *make_window(uint32_t nrows)
{
	struct wire_window *w;
	if (wire_window_new(nrows, 64, 32, 4, &w) < 0)
		return NULL;
	snprintf(w->agent_id, sizeof(w->agent_id), "bench-host");
	w->start_ns = (uint64_t)time(NULL) * 1000000000ull - 86400ull * 1000000000ull;
	w->nevents = 2;
	snprintf(w->events[0].name, sizeof(w->events[0].name), "cpu-clock");
	snprintf(w->events[1].name, sizeof(w->events[1].name), "page-faults");
	w->ncpu = 4;
	for (uint32_t i = 0; i < 64; i++) {
		w->flows[i].flow_id = 0x9e3779b97f4a7c15ull * (i + 1);
		w->flows[i].has_tuple = true;
		w->flows[i].tuple.family = MS_FAMILY_V4;
		w->flows[i].tuple.proto = 6;
		w->flows[i].tuple.sport = (uint16_t)(40000 + i);
		w->flows[i].tuple.dport = 443;
		w->flows[i].tuple.dir = MS_DIR_RX;
	}
	for (uint32_t i = 0; i < 32; i++) {
		w->funcs[i].func_id = 1000 + i;
		snprintf(w->funcs[i].name, sizeof(w->funcs[i].name), "bench_function_%u", i);
		snprintf(w->funcs[i].module, sizeof(w->funcs[i].module), "/usr/bin/bench");
	}
	w->nflows = 64;
	w->nfuncs = 32;
	w->nrows = nrows;
	for (uint32_t i = 0; i < nrows; i++) {
		struct wire_row *r = &w->rows[i];
		r->flow_id = w->flows[i % 64].flow_id;
		r->func_id = w->funcs[(i / 64) % 32].func_id;
		r->stack_id = WIRE_NO_STACK;
		r->pid = 1000 + i % 7;
		r->event = (uint16_t)(i & 1);
		r->numa_node = -1;
		r->dir = MS_DIR_RX;
		r->samples = 1 + i % 5;
		r->norm_cost = (double)(r->samples * 10000);
	}
	return w;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s ENDPOINT DATABASE [total_rows] [rows_per_window] [batch_rows] [producers] "
			"[parallel]\n",
			argv[0]);
		return 2;
	}
	uint64_t total = argc > 3 ? strtoull(argv[3], NULL, 10) : 5000000ull;
	uint32_t per = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 10) : 10000;
	uint32_t batch = argc > 5 ? (uint32_t)strtoul(argv[5], NULL, 10) : 100000;
	uint32_t nprod = argc > 6 ? (uint32_t)strtoul(argv[6], NULL, 10) : 1;
	uint32_t parallel = argc > 7 ? (uint32_t)strtoul(argv[7], NULL, 10) : 1;
	if (per == 0 || nprod == 0 || nprod > 16)
		return 2;
	struct wire_window *tmpl = make_window(per);
	if (!tmpl)
		return 1;
	struct chwriter_opts o = {
		.endpoint = argv[1],
		.database = argv[2],
		.tables = chrows_tables,
		.ntables = CHROWS__N,
		.batch_rows = batch,
		.flush_ms = 500,
		.parallel = parallel,
	};
	struct chwriter *w;
	int r = chwriter_new(&o, &w);
	if (r < 0) {
		fprintf(stderr, "chwriter_new: %s\n", strerror(-r));
		return 1;
	}
	uint64_t nwin = (total + per - 1) / per;
	struct prod p[16];
	pthread_t th[16];
	double t0 = now_s();
	for (uint32_t i = 0; i < nprod; i++) {
		p[i] = (struct prod){ .w = w, .tmpl = tmpl, .first_seq = 1 + i * (nwin / nprod + 1),
				      .nwindows = nwin / nprod + (i < nwin % nprod) };
		pthread_create(&th[i], NULL, produce, &p[i]);
	}
	uint64_t retries = 0;
	int err = 0;
	for (uint32_t i = 0; i < nprod; i++) {
		pthread_join(th[i], NULL);
		retries += p[i].retries;
		err = err ? err : p[i].err;
	}
	double t_submit = now_s() - t0;
	r = chwriter_flush(w, 600000);
	double dt = now_s() - t0;
	struct chwriter_stats st;
	chwriter_stats(w, &st);
	uint64_t rows = 0, failed = 0, inserts = 0;
	for (int t = 0; t < CHROWS__N; t++) {
		rows += st.t[t].rows_inserted;
		failed += st.t[t].rows_failed + st.t[t].rows_spooled;
		inserts += st.t[t].inserts_ok;
	}
	printf("parallel=%u batch_rows=%u rows=%" PRIu64 " rollup_rows=%" PRIu64 " windows=%" PRIu64 " seconds=%.3f rows_per_s=%.0f "
	       "rollup_rows_per_s=%.0f submit_s=%.3f inserts=%" PRIu64 " mean_insert_ms=%.1f max_insert_ms=%.1f "
	       "bytes_per_rollup_row=%.1f backpressure_waits=%" PRIu64 " failed=%" PRIu64 " last_error=\"%s\"\n",
	       parallel, batch, rows, st.t[CHROWS_ROLLUP].rows_inserted, nwin, dt, (double)rows / dt,
	       (double)st.t[CHROWS_ROLLUP].rows_inserted / dt, t_submit, inserts,
	       st.lat_count ? (double)st.lat_sum_ns / (double)st.lat_count / 1e6 : 0.0, (double)st.lat_max_ns / 1e6,
	       rows ? (double)st.bytes_sent / (double)rows : 0.0, retries, failed, st.last_error);
	chwriter_free(w);
	wire_window_free(tmpl);
	return (r < 0 || err || failed || st.t[CHROWS_ROLLUP].rows_inserted < total) ? 1 : 0;
}
