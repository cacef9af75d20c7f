/* synth: the deterministic synthetic sample source (--perf-mock). It produces struct ms_sample
 * records exactly as the BPF handler would (valid headers, flow tuples and ids computed with the
 * documented flow hash, code addresses inside a synthetic code region) so tests and benchmarks
 * drive the same consumer → aggregator → window path as real sampling. Same seed, same stream.
 * With data_addr, every sample also carries a data address, as a PEBS/IBS event would: 1 in 4 on
 * one cache line of per-thread counters (each of the 8 threads writes its own 8 bytes: false
 * sharing), the rest spread over a 64-page table whose lines each belong to one thread; synth_numa_ops is the matching two-node
 * topology (CPU c on node c % 2, page p on node p % 2) and synth_data_object names the two
 * objects for registration. The stream of everything else is the same with or without it.
 * Not thread-safe: one owner (synth_numa_ops is stateless). */
#ifndef MS_SYNTH_H
#define MS_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "ms_abi.h"

#define SYNTH_NFUNCS 32
#define SYNTH_FUNC_SIZE 256
#define SYNTH_CODE_BASE 0x7f0000000000ULL
#define SYNTH_DATA_BASE 0x7e0000000000ULL
#define SYNTH_PID 4242
#define SYNTH_NETNS 4026531840u

struct synth_opts {
	uint32_t nflows;        /* distinct flows, >= 1 */
	uint64_t seed;
	uint32_t nevents;       /* event indices 0..nevents-1, >= 1 */
	uint32_t unattributed_pct; /* share of samples with flow 0 */
	bool data_addr;         /* samples carry data addresses (see above) */
};

#define SYNTH_NOBJECTS 2
#define SYNTH_LINE_THREADS 8        /* threads of SYNTH_PID, each with its counter on the line */

struct synth_object {
	uint64_t start, size;
	const char *name;
};

/* Data object i (< SYNTH_NOBJECTS) of SYNTH_PID: 0 the shared line, 1 the table. -EINVAL past. */
int synth_data_object(uint32_t i, struct synth_object *ret_obj);

struct numa_ops;
/* Two-node model of the synthetic host (ctx unused): pages of SYNTH_PID's objects only. */
extern const struct numa_ops synth_numa_ops;

struct synth;

int synth_new(const struct synth_opts *opts, struct synth **ret);
/* Writes the next sample of the stream into *out. */
void synth_next(struct synth *s, struct ms_sample *out);
/* The tuple of flow index i (for tests). */
void synth_flow_tuple(uint32_t i, struct ms_flow_tuple *t);
/* Name of synthetic function i: "synth_func_NN". */
void synth_func_name(uint32_t i, char *buf, unsigned len);
uint64_t synth_count(const struct synth *s);
struct synth *synth_free(struct synth *s);

#endif
