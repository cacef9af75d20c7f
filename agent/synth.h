/* synth: the deterministic synthetic sample source (--perf-mock). It produces struct ms_sample
 * records exactly as the BPF handler would (valid headers, flow tuples and ids computed with the
 * documented flow hash, code addresses inside a synthetic code region) so tests and benchmarks
 * drive the same consumer → aggregator → window path as real sampling. Same seed, same stream.
 * Not thread-safe: one owner. */
#ifndef MS_SYNTH_H
#define MS_SYNTH_H

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
};

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
