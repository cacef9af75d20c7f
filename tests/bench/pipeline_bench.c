/* pipeline_bench: throughput of the agent's user-space pipeline on one core — synthetic ring
 * record → validate → aggregate → window close (and, with --symbolize, the export worker's
 * symbolization of each closed window). Prints samples/s and ns/sample; pin it with taskset for a
 * one-core figure. Usage: pipeline_bench [samples] [flows] [window_samples] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bqueue.h"
#include "loop.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000000ULL;
	uint32_t flows = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1024;
	uint64_t win = argc > 3 ? strtoull(argv[3], NULL, 10) : 5000000ULL;
	struct bqueue *q;
	if (bqueue_new(4, &q) < 0)
		return 1;
	struct loop_opts o = {
		.synth = true,
		.synth_flows = flows,
		.synth_seed = 42,
		.window_ms = 1000,
		.agg_max_rows = 65536,
		.agg_max_flows = 131072,
		.sentinel_budget = 5000,
		.diagnostic_budget = 20000,
		.closed_out = q,
	};
	struct loop *l;
	if (loop_new(&o, &l) < 0) {
		fprintf(stderr, "loop_new failed\n");
		return 1;
	}
	loop_bench_synth(l, win, win); /* warm-up: page in tables (one full window) */
	double t0 = now_s();
	uint64_t got = loop_bench_synth(l, n, win);
	double dt = now_s() - t0;
	printf("{\"bench\":\"pipeline\",\"samples\":%" PRIu64 ",\"flows\":%u,\"window_samples\":%" PRIu64
	       ",\"seconds\":%.3f,\"samples_per_sec\":%.0f,\"ns_per_sample\":%.1f,\"aggregated\":%" PRIu64 "}\n",
	       n, flows, win, dt, (double)n / dt, dt * 1e9 / (double)n, got);
	loop_free(l);
	bqueue_free(q, NULL);
	return got == (n / win) * win ? 0 : 1;
}
