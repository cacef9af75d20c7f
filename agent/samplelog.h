/* samplelog: an optional, bounded per-sample log for the accuracy suite (tests/accuracy) and for
 * debugging attribution — every sample the loop processes, as a fixed 64-byte little-endian
 * record after a 16-byte file header. It is not an export path: closed windows carry the
 * aggregated data; this file exists because precision/recall need each sample's (cpu, tid, ts)
 * next to its attribution. Off by default (config key sample_log). Writes go through a 1 MiB
 * stdio buffer on the loop thread: ~20 ns per sample plus the disk, so it is for test runs.
 * Bounded by max_bytes; records past the bound are counted, not written.
 * Not thread-safe: written by the sampling loop only; opened and closed by the daemon root
 * while the loop is not running. */
#ifndef MS_SAMPLELOG_H
#define MS_SAMPLELOG_H

#include <stdint.h>

#include "ms_abi.h"

#define SAMPLELOG_MAGIC "MSSLOG1" /* 8 bytes with the NUL */
#define SAMPLELOG_VERSION 1

/* File header: magic[8], u32 record size, u32 version. */
struct samplelog_header {
	char magic[8];
	uint32_t rec_size;
	uint32_t version;
};

/* One record (docs/BENCHMARKS.md documents it for outside readers; tests/accuracy/samplelog.py
 * decodes it). ts_ns is bpf_ktime_get_ns(), i.e. CLOCK_MONOTONIC. */
struct samplelog_rec {
	uint64_t ts_ns;
	uint64_t flow_id;     /* 0 = unattributed */
	uint64_t ip;
	uint64_t addr;        /* data address (page faults, PEBS), else 0 */
	uint64_t ctx_age_ns;  /* age of the flow context used, 0 when unattributed */
	uint64_t period;
	uint32_t cpu;
	uint32_t pid;
	uint32_t tid;
	uint16_t event;       /* index into the agent's event table */
	uint8_t attr_rule;    /* enum ms_attr_rule */
	uint8_t user_mode;
};
_Static_assert(sizeof(struct samplelog_rec) == 64, "samplelog record is 64 bytes");
_Static_assert(sizeof(struct samplelog_header) == 16, "samplelog header is 16 bytes");

struct samplelog;

/* Creates (truncates) path and writes the header. max_bytes >= 4096 bounds the file.
 * -EINVAL for a bad bound, else the errno of fopen/fwrite. */
int samplelog_open(const char *path, uint64_t max_bytes, struct samplelog **ret);
/* Appends one record; past the bound (or after a write error) only counts it as dropped. */
void samplelog_write(struct samplelog *sl, const struct ms_sample *s);
uint64_t samplelog_written(const struct samplelog *sl);
uint64_t samplelog_dropped(const struct samplelog *sl);
/* Flushes and closes (NULL-safe); returns NULL. */
struct samplelog *samplelog_close(struct samplelog *sl);

#endif
