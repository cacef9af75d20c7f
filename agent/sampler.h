/* sampler: loads the MicroSentinel BPF skeleton (compiled into the agent, never read from a
 * path), picks the context-injection tier by probing (tp_btf -> raw_tp -> tracepoint), attaches
 * the context hooks and optional XDP, and gives access to the runtime config map, the per-CPU
 * outcome counters and the sample ring buffer. It does not open perf events (events.c) nor
 * consume samples (consumer.c). It returns what happened in a report; the caller logs.
 * Thread-safety: owned by the sampling loop; sampler_read_counters may be called from the loop only. */
#ifndef MS_SAMPLER_H
#define MS_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

#include "ms_abi.h"

enum sampler_tier {
	SAMPLER_TIER_AUTO = -1,
	SAMPLER_TIER_TP_BTF = 0,
	SAMPLER_TIER_RAW_TP = 1,
	SAMPLER_TIER_TRACEPOINT = 2,
	SAMPLER_TIER__N = 3,
};

enum sampler_stacks {
	SAMPLER_STACKS_NONE = 0,
	SAMPLER_STACKS_KERNEL = 1,
	SAMPLER_STACKS_USER = 2,
	SAMPLER_STACKS_BOTH = 3,
};

struct sampler_opts {
	int tier;                     /* enum sampler_tier; AUTO probes */
	uint32_t ringbuf_bytes;       /* power of two, >= 4096 */
	int stacks;                   /* enum sampler_stacks (load-time: sizes the stack map) */
	uint32_t stack_entries;
	const char *xdp_interfaces;   /* comma list, "" = none */
	bool no_packet_hooks;         /* leave netif_receive_skb / net_dev_start_xmit unattached */
};

struct sampler_report {
	int tier;                          /* tier in use */
	int tier_err[SAMPLER_TIER__N];     /* negative errno of tiers that failed to load, 0 untried/ok */
	bool sock_hooks;                   /* per-thread socket context hooks present */
	bool skb_copy_hook;                /* per-datagram receive hook present */
	int xdp_attached;                  /* interfaces with XDP attached */
	char xdp_err[256];                 /* first XDP failure, "" if none */
};

struct sampler;
struct bpf_program;

int sampler_open(const struct sampler_opts *opts, struct sampler **ret, struct sampler_report *ret_report);
int sampler_set_cfg(struct sampler *s, const struct ms_runtime_cfg *cfg);
/* Sums the per-CPU counters into out[MS_CNT__MAX]. Optionally per-CPU emitted into
 * per_cpu_emitted[0..ncpu) (may be NULL). */
int sampler_read_counters(struct sampler *s, uint64_t *out, uint64_t *per_cpu_emitted, int ncpu);
struct bpf_program *sampler_pmu_prog(struct sampler *s);
int sampler_ringbuf_fd(struct sampler *s);
int sampler_stack_fd(struct sampler *s);
const char *sampler_tier_name(int tier);
/* Detaches every program and link, closes every fd (NULL-safe). */
void sampler_free(struct sampler *s);

/* Fills a runtime config from budget and windows (token cost precomputed). */
void sampler_cfg_init(struct ms_runtime_cfg *cfg, uint64_t budget_per_sec, uint64_t hard_drop_ns,
		      uint64_t flow_skid_ns, uint64_t thread_flow_ns);

#endif
