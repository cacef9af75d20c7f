// SPDX-License-Identifier: GPL-2.0
/* MicroSentinel BPF programs:
 *  - context injection: RX/TX packet hooks set a per-CPU packet context; socket hooks set a
 *    per-thread socket context in task-local storage (tp_btf, with raw_tp and classic
 *    tracepoint variants of the same bodies; the loader enables exactly one tier by probing),
 *    optional XDP;
 *  - ms_pmu_handler: the perf_event program run on every sampled event overflow: idle and
 *    tgid filter, per-CPU token bucket, flow lookup within validity windows, ring buffer.
 * Shared structs: ms_abi.h. GPL because the helpers used require it. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "ms_abi.h"
#include "ms_parse.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by the loader (ringbuf_bytes) */
} ms_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ms_runtime_cfg);
} ms_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MS_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} ms_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ms_tb_state);
} ms_tb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ms_flow_ctx);
} ms_pkt_ctx SEC(".maps");

/* Per-thread socket context in task-local storage: found through the task itself (no hash,
 * no LRU lock; it replaces an LRU hash keyed by tid whose update cost ~100 ns per socket
 * operation), created by the socket hooks, freed when the thread exits. Bounded by the
 * threads alive that used a socket since the agent loaded (80 bytes each plus the kernel's
 * per-element header). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ms_flow_ctx);
} ms_thread_ctx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384); /* resized by the loader (stack_entries) */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} ms_stacks SEC(".maps");

/* ifindex -> netns inode for XDP attachments (XDP cannot see the device's namespace). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} ms_xdp_netns SEC(".maps");

static __always_inline void ms_count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&ms_counters, &idx);
	if (c)
		*c += 1;
}

static __always_inline struct ms_runtime_cfg *ms_get_cfg(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&ms_cfg, &zero);
}

/* ---- context injection ---------------------------------------------------------------- */

/* skb is an MS_KPTR. */
static __always_inline __u16 ms_gso_segs(struct sk_buff *skb)
{
	struct skb_shared_info *si = MS_KPTR(struct skb_shared_info, skb->head + skb->end);
	__u16 segs = si->gso_segs;
	return segs ? segs : 1;
}

static __always_inline int ms_pkt_ctx_set(struct sk_buff *skb, int rx)
{
	__u32 zero = 0;
	struct ms_flow_ctx *c = bpf_map_lookup_elem(&ms_pkt_ctx, &zero);
	if (!c)
		return 0;
	struct ms_flow_tuple t = {};
	if (ms_parse_skb(skb, rx, &t)) {
		ms_count(MS_CNT_CTX_PARSE_FAIL);
		return 0;
	}
	t.dir = rx ? MS_DIR_RX : MS_DIR_TX;
	c->tuple = t;
	c->flow_id = ms_flow_hash(&t);
	c->gso_segs = ms_gso_segs(skb);
	c->src = rx ? MS_CTX_SRC_RX_PKT : MS_CTX_SRC_TX_PKT;
	c->ts_ns = bpf_ktime_get_ns();
	ms_count(rx ? MS_CNT_CTX_RX : MS_CNT_CTX_TX);
	return 0;
}

/* Updated in place, only ever by its own thread; the one concurrent reader is the sample
 * handler interrupting this thread on this CPU. flow_id is cleared first and set last (with
 * compiler barriers: one CPU sees its own stores in order), so the handler sees either no
 * context or a whole one, never a tuple of one flow with the id of another. */
static __always_inline void ms_thread_ctx_store(struct ms_flow_tuple *t, __u8 src)
{
	struct ms_flow_ctx *c = bpf_task_storage_get(&ms_thread_ctx, bpf_get_current_task_btf(), 0,
						     BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c)
		return;
	__u64 id = ms_flow_hash(t);
	c->flow_id = 0;
	asm volatile("" ::: "memory");
	c->tuple = *t;
	c->gso_segs = 1;
	c->src = src;
	c->ts_ns = bpf_ktime_get_ns();
	asm volatile("" ::: "memory");
	c->flow_id = id;
	ms_count(MS_CNT_CTX_SOCK);
}

static __always_inline int ms_sock_ctx_set(struct sock *sk, int ret, int recv)
{
	if (ret <= 0)
		return 0;
	struct ms_flow_tuple t = {};
	if (ms_parse_sock(sk, recv, &t))
		return 0;
	t.dir = recv ? MS_DIR_RX : MS_DIR_TX;
	ms_thread_ctx_store(&t, recv ? MS_CTX_SRC_SOCK_RECV : MS_CTX_SRC_SOCK_SEND);
	return 0;
}

/* skb_copy_datagram_iovec runs in the reading thread with the received skb: the only place
 * an unconnected (UDP) socket's peer is known per datagram. Headers are set at this point.
 * TCP skbs are skipped (two loads): TCP sockets are connected, and sock_recv_length sets the
 * same flow for the same thread when the read returns, so parsing every copied TCP segment
 * (several per read) bought nothing. skb is an MS_KPTR. */
static __always_inline int ms_skb_copy_ctx_set(struct sk_buff *skb)
{
	struct sock *sk = skb->sk;
	if (sk && sk->sk_protocol == MS_IPPROTO_TCP)
		return 0;
	struct ms_flow_tuple t = {};
	unsigned char *head = skb->head;
	__u16 nh = skb->network_header;
	__u16 eth = skb->protocol;
	if (nh == (__u16)~0U || ms_parse_l3(head + nh, eth, &t))
		return 0;
	t.dir = MS_DIR_RX;
	t.ifindex = skb->skb_iif;
	t.netns = bpf_get_current_task_btf()->nsproxy->net_ns->ns.inum;
	ms_thread_ctx_store(&t, MS_CTX_SRC_SKB_COPY);
	return 0;
}

/* The hooks' pointer arguments as read-only BTF pointers (raw_tp and tracepoint pass plain
 * integers; for tp_btf the cast costs nothing either). */
#define MS_SKB(p) MS_KPTR(struct sk_buff, p)
#define MS_SK(p) MS_KPTR(struct sock, p)

/* Tier 1: BTF-typed tracepoints. */
SEC("tp_btf/netif_receive_skb")
int BPF_PROG(ms_rx_btf, struct sk_buff *skb) { return ms_pkt_ctx_set(MS_SKB(skb), 1); }
SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(ms_tx_btf, struct sk_buff *skb) { return ms_pkt_ctx_set(MS_SKB(skb), 0); }
SEC("tp_btf/sock_recv_length")
int BPF_PROG(ms_sock_recv_btf, struct sock *sk, int ret, int flags) { return ms_sock_ctx_set(MS_SK(sk), ret, 1); }
SEC("tp_btf/sock_send_length")
int BPF_PROG(ms_sock_send_btf, struct sock *sk, int ret, int flags) { return ms_sock_ctx_set(MS_SK(sk), ret, 0); }
SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(ms_skb_copy_btf, struct sk_buff *skb, int len) { return ms_skb_copy_ctx_set(MS_SKB(skb)); }

/* Tier 2: raw tracepoints (same arguments, untyped). */
SEC("raw_tp/netif_receive_skb")
int BPF_PROG(ms_rx_raw, struct sk_buff *skb) { return ms_pkt_ctx_set(MS_SKB(skb), 1); }
SEC("raw_tp/net_dev_start_xmit")
int BPF_PROG(ms_tx_raw, struct sk_buff *skb) { return ms_pkt_ctx_set(MS_SKB(skb), 0); }
SEC("raw_tp/sock_recv_length")
int BPF_PROG(ms_sock_recv_raw, struct sock *sk, int ret, int flags) { return ms_sock_ctx_set(MS_SK(sk), ret, 1); }
SEC("raw_tp/sock_send_length")
int BPF_PROG(ms_sock_send_raw, struct sock *sk, int ret, int flags) { return ms_sock_ctx_set(MS_SK(sk), ret, 0); }
SEC("raw_tp/skb_copy_datagram_iovec")
int BPF_PROG(ms_skb_copy_raw, struct sk_buff *skb, int len) { return ms_skb_copy_ctx_set(MS_SKB(skb)); }

/* Tier 3: classic tracepoints (need tracefs). */
SEC("tracepoint/net/netif_receive_skb")
int ms_rx_tp(struct trace_event_raw_net_dev_template *ctx)
{
	return ms_pkt_ctx_set(MS_SKB((struct sk_buff *)ctx->skbaddr), 1);
}
SEC("tracepoint/net/net_dev_start_xmit")
int ms_tx_tp(struct trace_event_raw_net_dev_start_xmit *ctx)
{
	return ms_pkt_ctx_set(MS_SKB((struct sk_buff *)ctx->skbaddr), 0);
}
SEC("tracepoint/sock/sock_recv_length")
int ms_sock_recv_tp(struct trace_event_raw_sock_msg_length *ctx)
{
	return ms_sock_ctx_set(MS_SK((struct sock *)ctx->sk), ctx->ret, 1);
}
SEC("tracepoint/sock/sock_send_length")
int ms_sock_send_tp(struct trace_event_raw_sock_msg_length *ctx)
{
	return ms_sock_ctx_set(MS_SK((struct sock *)ctx->sk), ctx->ret, 0);
}
SEC("tracepoint/skb/skb_copy_datagram_iovec")
int ms_skb_copy_tp(struct trace_event_raw_skb_copy_datagram_iovec *ctx)
{
	return ms_skb_copy_ctx_set(MS_SKB((struct sk_buff *)ctx->skbaddr));
}

/* Optional XDP context injection (xdp_interfaces). Always passes the packet. */
SEC("xdp")
int ms_ctx_inject_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 zero = 0;
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	struct ms_flow_ctx *c = bpf_map_lookup_elem(&ms_pkt_ctx, &zero);
	if (!c)
		return XDP_PASS;
	struct ms_flow_tuple t = {};
	__u16 proto = eth->h_proto;
	const void *l3 = eth + 1;
	if (proto == ETH_P_8021Q_BE || proto == ETH_P_8021AD_BE) {
		struct { __u16 tci, proto; } *v = (void *)(eth + 1);
		if ((void *)(v + 1) > data_end)
			return XDP_PASS;
		t.vlan = ms_bswap16(v->tci) & 0x0fff;
		proto = v->proto;
		l3 = v + 1;
	}
	if (ms_parse_l3(l3, proto, &t)) {
		ms_count(MS_CNT_CTX_PARSE_FAIL);
		return XDP_PASS;
	}
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 *ns = bpf_map_lookup_elem(&ms_xdp_netns, &ifindex);
	t.ifindex = ifindex;
	t.netns = ns ? *ns : 0;
	t.dir = MS_DIR_RX;
	c->tuple = t;
	c->flow_id = ms_flow_hash(&t);
	c->gso_segs = 1;
	c->src = MS_CTX_SRC_XDP;
	c->ts_ns = bpf_ktime_get_ns();
	ms_count(MS_CNT_CTX_RX);
	return XDP_PASS;
}

/* ---- sampling ------------------------------------------------------------------------- */

/* Token bucket in nanoseconds of credit: each emitted sample costs 1e9/budget ns, credit grows
 * with elapsed time and is capped at one second (burst = budget samples). The hard gap bounds
 * the instantaneous rate whatever the credit. Returns the counter index of the drop, or -1. */
static __always_inline int ms_tb_take(struct ms_runtime_cfg *cfg, __u64 now)
{
	__u32 zero = 0;
	struct ms_tb_state *tb = bpf_map_lookup_elem(&ms_tb, &zero);
	if (!tb)
		return MS_CNT_DROP_BUDGET;
	if (cfg->hard_drop_ns && tb->last_emit_ns && now - tb->last_emit_ns < cfg->hard_drop_ns)
		return MS_CNT_DROP_GAP;
	if (cfg->token_cost_ns) {
		__u64 credit = tb->credit_ns;
		if (tb->last_refill_ns)
			credit += now - tb->last_refill_ns;
		else
			credit = cfg->token_cost_ns; /* first sample on this CPU: one token */
		if (credit > 1000000000ULL)
			credit = 1000000000ULL;
		tb->last_refill_ns = now;
		if (credit < cfg->token_cost_ns) {
			tb->credit_ns = credit;
			return MS_CNT_DROP_BUDGET;
		}
		tb->credit_ns = credit - cfg->token_cost_ns;
	}
	tb->last_emit_ns = now;
	return -1;
}

static __always_inline void ms_fill_flow(struct ms_sample *s, struct ms_runtime_cfg *cfg,
					 __u32 tid, __u64 now)
{
	struct ms_flow_ctx *c = bpf_task_storage_get(&ms_thread_ctx, bpf_get_current_task_btf(), 0, 0);
	/* a send usually ends a request: work after it (housekeeping, other jobs) is not the
	 * flow's, so a context set by a send expires sooner */
	__u64 valid = cfg->thread_flow_ns;
	if (c && c->src == MS_CTX_SRC_SOCK_SEND && cfg->thread_send_flow_ns &&
	    cfg->thread_send_flow_ns < valid)
		valid = cfg->thread_send_flow_ns;
	if (c && c->flow_id && now >= c->ts_ns && now - c->ts_ns <= valid) {
		s->flow_id = c->flow_id;
		s->flow = c->tuple;
		s->gso_segs = c->gso_segs;
		s->ctx_age_ns = now - c->ts_ns;
		s->attr_rule = MS_ATTR_THREAD;
		ms_count(MS_CNT_ATTR_THREAD);
		return;
	}
	__u32 zero = 0;
	c = bpf_map_lookup_elem(&ms_pkt_ctx, &zero);
	if (c && c->flow_id && now >= c->ts_ns && now - c->ts_ns <= cfg->flow_skid_ns) {
		s->flow_id = c->flow_id;
		s->flow = c->tuple;
		s->gso_segs = c->gso_segs;
		s->ctx_age_ns = now - c->ts_ns;
		s->attr_rule = MS_ATTR_PACKET;
		ms_count(MS_CNT_ATTR_PACKET);
		return;
	}
	s->flow_id = 0;
	s->gso_segs = 1;
	s->attr_rule = MS_ATTR_NONE;
	ms_count(MS_CNT_UNATTRIBUTED);
}

static __always_inline void ms_fill_sample(struct ms_sample *s, struct bpf_perf_event_data *ctx,
					   struct ms_runtime_cfg *cfg, __u64 cookie,
					   __u64 pid_tgid, __u64 now)
{
	s->magic = MS_SAMPLE_MAGIC;
	s->version = MS_SAMPLE_VERSION;
	s->lbr_nr = 0;
	s->cpu = bpf_get_smp_processor_id();
	s->pid = pid_tgid >> 32;
	s->tid = (__u32)pid_tgid;
	s->event = cookie & MS_COOKIE_EVENT_MASK;
	s->ts_ns = now;
	s->ip = PT_REGS_IP(&ctx->regs);
	s->addr = (cookie & MS_COOKIE_F_ADDR) ? ctx->addr : 0;
	s->period = ctx->sample_period;
	s->cgroup_id = bpf_get_current_cgroup_id();
	/* user-mode IPs are below the kernel half of the address space on x86-64 */
	s->user_mode = s->ip < 0x800000000000ULL;
	__builtin_memset(s->_pad0, 0, sizeof(s->_pad0));
	s->kstack_id = -1;
	s->ustack_id = -1;
	if (cfg->flags & MS_CFG_F_KSTACK) {
		long id = bpf_get_stackid(ctx, &ms_stacks, 0);
		if (id < 0 && !s->user_mode)
			ms_count(MS_CNT_STACK_FAIL);
		s->kstack_id = id;
	}
	if (cfg->flags & MS_CFG_F_USTACK) {
		long id = bpf_get_stackid(ctx, &ms_stacks, BPF_F_USER_STACK);
		if (id < 0 && s->user_mode)
			ms_count(MS_CNT_STACK_FAIL);
		s->ustack_id = id;
	}
	s->ctx_age_ns = 0;
	__builtin_memset(&s->flow, 0, sizeof(s->flow));
	ms_fill_flow(s, cfg, s->tid, now);
}

struct ms_sample_lbr {
	struct ms_sample s;
	struct ms_branch br[MS_LBR_MAX];
};

SEC("perf_event")
int ms_pmu_handler(struct bpf_perf_event_data *ctx)
{
	struct ms_runtime_cfg *cfg = ms_get_cfg();
	if (!cfg)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if ((__u32)pid_tgid == 0 && !(cfg->flags & MS_CFG_F_KEEP_IDLE)) {
		ms_count(MS_CNT_IDLE);
		return 0;
	}
	if (cfg->filter_tgid && (pid_tgid >> 32) != cfg->filter_tgid) {
		ms_count(MS_CNT_FILTERED);
		return 0;
	}
	__u64 now = bpf_ktime_get_ns();
	int drop = ms_tb_take(cfg, now);
	if (drop >= 0) {
		ms_count(drop);
		return 0;
	}
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 flags = BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_query(&ms_events, BPF_RB_AVAIL_DATA) >= cfg->ringbuf_wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;

	if ((cookie & MS_COOKIE_F_LBR) && (cfg->flags & MS_CFG_F_LBR)) {
		struct ms_sample_lbr *r = bpf_ringbuf_reserve(&ms_events, sizeof(*r), 0);
		if (!r) {
			ms_count(MS_CNT_DROP_RINGFULL);
			return 0;
		}
		ms_fill_sample(&r->s, ctx, cfg, cookie, pid_tgid, now);
		long n = bpf_read_branch_records(ctx, r->br, sizeof(r->br), 0);
		r->s.lbr_nr = n > 0 ? (__u16)(n / sizeof(struct ms_branch)) : 0;
		bpf_ringbuf_submit(r, flags);
	} else {
		struct ms_sample *s = bpf_ringbuf_reserve(&ms_events, sizeof(*s), 0);
		if (!s) {
			ms_count(MS_CNT_DROP_RINGFULL);
			return 0;
		}
		ms_fill_sample(s, ctx, cfg, cookie, pid_tgid, now);
		bpf_ringbuf_submit(s, flags);
	}
	ms_count(MS_CNT_EMITTED);
	return 0;
}
