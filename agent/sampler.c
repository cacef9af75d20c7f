/* sampler: see sampler.h. */
#include "sampler.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ms.skel.h"

#define SAMPLER_MAX_XDP 16

struct sampler {
	struct ms_bpf *skel;
	int tier;
	int ncpus_possible;
	int xdp_ifindex[SAMPLER_MAX_XDP];
	struct bpf_link *xdp_links[SAMPLER_MAX_XDP];
	int nxdp;
};

/* Programs of one context hook in the three tiers. */
struct hook_progs {
	const char *btf_name; /* tracepoint name, to probe btf_trace_<name> */
	struct bpf_program *p[SAMPLER_TIER__N];
};

const char *sampler_tier_name(int tier)
{
	switch (tier) {
	case SAMPLER_TIER_TP_BTF: return "tp_btf";
	case SAMPLER_TIER_RAW_TP: return "raw_tp";
	case SAMPLER_TIER_TRACEPOINT: return "tracepoint";
	default: return "none";
	}
}

void sampler_cfg_init(struct ms_runtime_cfg *cfg, uint64_t budget_per_sec, uint64_t hard_drop_ns,
		      uint64_t flow_skid_ns, uint64_t thread_flow_ns)
{
	uint32_t wake = cfg->ringbuf_wakeup_bytes;
	uint32_t flags = cfg->flags;
	uint32_t tgid = cfg->filter_tgid;
	memset(cfg, 0, sizeof(*cfg));
	cfg->budget_per_sec = budget_per_sec;
	cfg->token_cost_ns = budget_per_sec ? 1000000000ULL / budget_per_sec : 0;
	if (budget_per_sec && !cfg->token_cost_ns)
		cfg->token_cost_ns = 1;
	cfg->hard_drop_ns = hard_drop_ns;
	cfg->flow_skid_ns = flow_skid_ns;
	cfg->thread_flow_ns = thread_flow_ns;
	cfg->ringbuf_wakeup_bytes = wake;
	cfg->flags = flags;
	cfg->filter_tgid = tgid;
}

#define NHOOKS 5

static void hooks_of(struct ms_bpf *k, struct hook_progs h[NHOOKS])
{
	h[0] = (struct hook_progs){ "netif_receive_skb", { k->progs.ms_rx_btf, k->progs.ms_rx_raw, k->progs.ms_rx_tp } };
	h[1] = (struct hook_progs){ "net_dev_start_xmit", { k->progs.ms_tx_btf, k->progs.ms_tx_raw, k->progs.ms_tx_tp } };
	h[2] = (struct hook_progs){ "sock_recv_length", { k->progs.ms_sock_recv_btf, k->progs.ms_sock_recv_raw, k->progs.ms_sock_recv_tp } };
	h[3] = (struct hook_progs){ "sock_send_length", { k->progs.ms_sock_send_btf, k->progs.ms_sock_send_raw, k->progs.ms_sock_send_tp } };
	h[4] = (struct hook_progs){ "skb_copy_datagram_iovec", { k->progs.ms_skb_copy_btf, k->progs.ms_skb_copy_raw, k->progs.ms_skb_copy_tp } };
}

/* A kernel has the tracepoint when its BTF has the btf_trace_<name> typedef. */
static bool kernel_has_tp(const struct btf *vmlinux, const char *name)
{
	char t[96];
	if (!vmlinux)
		return true; /* cannot tell: let the load decide */
	snprintf(t, sizeof(t), "btf_trace_%s", name);
	return btf__find_by_name_kind(vmlinux, t, BTF_KIND_TYPEDEF) > 0;
}

/* Classic tracepoints need tracefs; mount it when missing (STACK.md §5). */
static int ensure_tracefs(void)
{
	struct stat st;
	if (stat("/sys/kernel/tracing/events", &st) == 0 || stat("/sys/kernel/debug/tracing/events", &st) == 0)
		return 0;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) < 0)
		return -errno;
	return 0;
}

static int try_tier(const struct sampler_opts *opts, int tier, struct btf *vmlinux,
		    struct sampler *s, struct sampler_report *rep)
{
	struct ms_bpf *k = ms_bpf__open();
	if (!k)
		return errno ? -errno : -EINVAL;
	struct hook_progs h[NHOOKS];
	hooks_of(k, h);
	bool present[NHOOKS];
	for (int i = 0; i < NHOOKS; i++) {
		present[i] = kernel_has_tp(vmlinux, h[i].btf_name);
		bool packet = i < 2; /* h[0], h[1]: the per-packet hooks */
		for (int t = 0; t < SAMPLER_TIER__N; t++)
			bpf_program__set_autoload(h[i].p[t], t == tier && present[i] && !(packet && opts->no_packet_hooks));
	}
	if (!present[0] || !present[1]) {
		ms_bpf__destroy(k);
		return -ENOENT; /* no packet hooks at all on this kernel */
	}
	bpf_program__set_autoload(k->progs.ms_ctx_inject_xdp, opts->xdp_interfaces && opts->xdp_interfaces[0]);
	bpf_map__set_max_entries(k->maps.ms_events, opts->ringbuf_bytes);
	bpf_map__set_max_entries(k->maps.ms_stacks,
				 opts->stacks ? (opts->stack_entries ? opts->stack_entries : 4096) : 1);
	if (tier == SAMPLER_TIER_TRACEPOINT) {
		int r = ensure_tracefs();
		if (r < 0) {
			ms_bpf__destroy(k);
			return r;
		}
	}
	int r = ms_bpf__load(k);
	if (r) {
		ms_bpf__destroy(k);
		return r < 0 ? r : -EINVAL;
	}
	r = ms_bpf__attach(k);
	if (r) {
		ms_bpf__destroy(k);
		return r < 0 ? r : -EINVAL;
	}
	s->skel = k;
	s->tier = tier;
	rep->tier = tier;
	rep->sock_hooks = present[2] && present[3];
	rep->skb_copy_hook = present[4];
	return 0;
}

static void attach_xdp(struct sampler *s, const char *list, struct sampler_report *rep)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", list);
	char *save = NULL;
	for (char *name = strtok_r(buf, ",", &save); name && s->nxdp < SAMPLER_MAX_XDP;
	     name = strtok_r(NULL, ",", &save)) {
		unsigned idx = if_nametoindex(name);
		if (!idx) {
			if (!rep->xdp_err[0])
				snprintf(rep->xdp_err, sizeof(rep->xdp_err), "%s: no such interface", name);
			continue;
		}
		struct bpf_link *l = bpf_program__attach_xdp(s->skel->progs.ms_ctx_inject_xdp, (int)idx);
		if (!l) {
			if (!rep->xdp_err[0])
				snprintf(rep->xdp_err, sizeof(rep->xdp_err), "%s: %s", name, strerror(errno));
			continue;
		}
		/* the interface lives in our network namespace */
		struct stat st;
		if (stat("/proc/self/ns/net", &st) == 0) {
			uint32_t ns = (uint32_t)st.st_ino;
			bpf_map_update_elem(bpf_map__fd(s->skel->maps.ms_xdp_netns), &idx, &ns, BPF_ANY);
		}
		s->xdp_ifindex[s->nxdp] = (int)idx;
		s->xdp_links[s->nxdp++] = l;
		rep->xdp_attached++;
	}
}

int sampler_open(const struct sampler_opts *opts, struct sampler **ret, struct sampler_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->tier = -1;
	struct sampler *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ncpus_possible = libbpf_num_possible_cpus();
	if (s->ncpus_possible <= 0) {
		free(s);
		return -EINVAL;
	}
	struct btf *vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux) {
		int e = -errno;
		free(s);
		return e ? e : -ENOENT; /* no kernel BTF: CO-RE cannot work */
	}
	int first = opts->tier == SAMPLER_TIER_AUTO ? 0 : opts->tier;
	int last = opts->tier == SAMPLER_TIER_AUTO ? SAMPLER_TIER__N - 1 : opts->tier;
	int r = -ENOENT;
	for (int t = first; t <= last; t++) {
		r = try_tier(opts, t, vmlinux, s, rep);
		if (r == 0)
			break;
		rep->tier_err[t] = r;
	}
	btf__free(vmlinux);
	if (r < 0) {
		free(s);
		return r;
	}
	if (opts->xdp_interfaces && opts->xdp_interfaces[0])
		attach_xdp(s, opts->xdp_interfaces, rep);
	*ret = s;
	return 0;
}

int sampler_set_cfg(struct sampler *s, const struct ms_runtime_cfg *cfg)
{
	uint32_t zero = 0;
	if (bpf_map_update_elem(bpf_map__fd(s->skel->maps.ms_cfg), &zero, cfg, BPF_ANY) < 0)
		return -errno;
	return 0;
}

int sampler_read_counters(struct sampler *s, uint64_t *out, uint64_t *per_cpu_emitted, int ncpu)
{
	int n = s->ncpus_possible;
	uint64_t vals[n];
	int fd = bpf_map__fd(s->skel->maps.ms_counters);
	for (uint32_t i = 0; i < MS_CNT__MAX; i++) {
		if (bpf_map_lookup_elem(fd, &i, vals) < 0)
			return -errno;
		uint64_t sum = 0;
		for (int c = 0; c < n; c++)
			sum += vals[c];
		out[i] = sum;
		if (i == MS_CNT_EMITTED && per_cpu_emitted)
			for (int c = 0; c < ncpu && c < n; c++)
				per_cpu_emitted[c] = vals[c];
	}
	return 0;
}

struct bpf_program *sampler_pmu_prog(struct sampler *s)
{
	return s->skel->progs.ms_pmu_handler;
}

int sampler_ringbuf_fd(struct sampler *s)
{
	return bpf_map__fd(s->skel->maps.ms_events);
}

int sampler_stack_fd(struct sampler *s)
{
	return bpf_map__fd(s->skel->maps.ms_stacks);
}

void sampler_free(struct sampler *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nxdp; i++)
		bpf_link__destroy(s->xdp_links[i]);
	ms_bpf__destroy(s->skel);
	free(s);
}
