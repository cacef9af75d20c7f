/* ms_abi: the structs and constants shared by the BPF programs (ms.bpf.c) and user space.
 * Only fixed-width fields with explicit padding; user space asserts every size (abi_check.c).
 * Any change here is an ABI change between the skeleton and the agent built with it (they
 * always ship together: the skeleton is compiled into the agent). */
#ifndef MS_ABI_H
#define MS_ABI_H

#ifdef __BPF__
/* vmlinux.h provides __u8.. */
#else
#include <linux/types.h>
#endif

/* Direction of the traffic a context came from. */
enum ms_dir {
	MS_DIR_NONE = 0,
	MS_DIR_RX = 1,
	MS_DIR_TX = 2,
};

/* Which rule attributed a sample to its flow (fed to the accuracy suite). */
enum ms_attr_rule {
	MS_ATTR_NONE = 0,   /* unattributed: flow_id 0 */
	MS_ATTR_THREAD = 1, /* per-thread socket context within thread_flow_ns */
	MS_ATTR_PACKET = 2, /* per-CPU packet context within flow_skid_ns */
};

/* Which hook produced a context. */
enum ms_ctx_src {
	MS_CTX_SRC_RX_PKT = 1,
	MS_CTX_SRC_TX_PKT = 2,
	MS_CTX_SRC_SOCK_RECV = 3,
	MS_CTX_SRC_SOCK_SEND = 4,
	MS_CTX_SRC_XDP = 5,
	MS_CTX_SRC_SKB_COPY = 6,
};

/* Per-CPU outcome counters (index into the ms_counters per-CPU array). */
enum ms_counter {
	MS_CNT_EMITTED = 0,      /* sample written to the ring buffer */
	MS_CNT_DROP_BUDGET,      /* token bucket empty */
	MS_CNT_DROP_GAP,         /* closer than hard_drop_ns to the previous emitted sample */
	MS_CNT_DROP_RINGFULL,    /* ring buffer reserve failed */
	MS_CNT_UNATTRIBUTED,     /* emitted with flow_id 0 (subset of EMITTED) */
	MS_CNT_ATTR_THREAD,      /* emitted, attributed by thread context (subset of EMITTED) */
	MS_CNT_ATTR_PACKET,      /* emitted, attributed by packet context (subset of EMITTED) */
	MS_CNT_IDLE,             /* sample in the idle task: not emitted, costs no budget */
	MS_CNT_FILTERED,         /* sample outside the tgid filter: not emitted */
	MS_CNT_CTX_RX,           /* RX packets that set a context */
	MS_CNT_CTX_TX,           /* TX packets that set a context */
	MS_CNT_CTX_SOCK,         /* socket operations that set a thread context */
	MS_CNT_CTX_PARSE_FAIL,   /* packets not parsed as IP (non-IP, truncated): no context set */
	MS_CNT_STACK_FAIL,       /* stack id requested but bpf_get_stackid failed */
	MS_CNT__MAX,
};

#define MS_FAMILY_V4 4
#define MS_FAMILY_V6 6

/* A flow as seen on the wire in one direction: src -> dst of the packet. RX contexts and
 * socket receives use (remote -> local); TX contexts and socket sends use (local -> remote),
 * so packet and socket hooks of one flow produce the same key. IPv4 addresses are stored as
 * IPv4-mapped IPv6 (::ffff:a.b.c.d). Ports are in host byte order. */
struct ms_flow_tuple {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 family;    /* MS_FAMILY_V4 / MS_FAMILY_V6 */
	__u8 proto;     /* IPPROTO_TCP, IPPROTO_UDP, ... */
	__u8 dir;       /* enum ms_dir */
	__u8 flags;     /* MS_FLOW_F_* */
	__u32 ifindex;  /* attribute, not identity (socket hooks do not see it): 0 = unknown */
	__u32 netns;    /* network namespace inode */
	__u16 vlan;     /* attribute: 802.1Q VLAN id of the packet, 0 = none */
	__u16 _pad0;
	__u32 _pad1;
};

#define MS_FLOW_F_ENCAP 0x01 /* tuple is the inner header of an encapsulated packet */

/* flow_id: a stable 64-bit hash over the identity fields of the tuple:
 *   w0 = netns << 32 | family << 24 | proto << 16 | dir << 8
 *   w1, w2 = saddr as two little-endian u64 (bytes 0..7, 8..15)
 *   w3, w4 = daddr likewise
 *   w5 = sport << 16 | dport
 *   h = MS_FLOW_SEED; for w in w0..w5: h = ms_mix64(h ^ w)
 *   flow_id = h, or 1 if h == 0 (0 means "unattributed")
 * with ms_mix64 the splitmix64 finaliser (docs/FLOW_ID.md has a Python reference). */
#define MS_FLOW_SEED 0x6d735f666c6f7721ULL /* "ms_flow!" */

static inline __u64 ms_mix64(__u64 z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline __u64 ms_le64(const __u8 *b)
{
	return (__u64)b[0] | (__u64)b[1] << 8 | (__u64)b[2] << 16 | (__u64)b[3] << 24 |
	       (__u64)b[4] << 32 | (__u64)b[5] << 40 | (__u64)b[6] << 48 | (__u64)b[7] << 56;
}

static inline __u64 ms_flow_hash(const struct ms_flow_tuple *t)
{
	__u64 h = MS_FLOW_SEED;
	h = ms_mix64(h ^ ((__u64)t->netns << 32 | (__u64)t->family << 24 |
			  (__u64)t->proto << 16 | (__u64)t->dir << 8));
	h = ms_mix64(h ^ ms_le64(t->saddr));
	h = ms_mix64(h ^ ms_le64(t->saddr + 8));
	h = ms_mix64(h ^ ms_le64(t->daddr));
	h = ms_mix64(h ^ ms_le64(t->daddr + 8));
	h = ms_mix64(h ^ ((__u64)t->sport << 16 | (__u64)t->dport));
	return h ? h : 1;
}

/* Per-thread socket context (LRU hash keyed by tid) and per-CPU packet context. */
struct ms_flow_ctx {
	__u64 ts_ns;       /* bpf_ktime_get_ns() when set */
	__u64 flow_id;
	struct ms_flow_tuple tuple;
	__u16 gso_segs;    /* >= 1 */
	__u8 src;          /* enum ms_ctx_src */
	__u8 _pad0;
	__u32 _pad1;
};

/* Attach cookie of a perf event (bpf_get_attach_cookie): identity of the event. */
#define MS_COOKIE_EVENT_MASK 0xffffULL     /* index into the agent's event table */
#define MS_COOKIE_F_ADDR (1ULL << 16)      /* the event samples PERF_SAMPLE_ADDR */
#define MS_COOKIE_F_LBR (1ULL << 17)       /* the event samples branch stacks */

/* Runtime configuration (array map, one entry), written by user space at any time: budgets,
 * validity windows and filters take effect on the next sample without reloading. */
struct ms_runtime_cfg {
	__u64 budget_per_sec;   /* per CPU; 0 = unlimited */
	__u64 token_cost_ns;    /* 1e9 / budget_per_sec, precomputed (0 = unlimited) */
	__u64 hard_drop_ns;     /* minimum gap between emitted samples on one CPU */
	__u64 flow_skid_ns;     /* validity of per-CPU packet context */
	__u64 thread_flow_ns;   /* validity of per-thread socket context */
	__u32 filter_tgid;      /* 0 = all processes */
	__u32 flags;            /* MS_CFG_F_* */
	__u32 ringbuf_wakeup_bytes; /* force a wake-up once this much data is pending */
	__u32 thread_send_flow_ns;  /* validity of a thread context set by a send (the end of a
				     * request): 0 or >= thread_flow_ns = thread_flow_ns */
};

#define MS_CFG_F_KSTACK 0x01   /* record kernel stack ids */
#define MS_CFG_F_USTACK 0x02   /* record user stack ids */
#define MS_CFG_F_LBR 0x04      /* append branch records when the event has them */
#define MS_CFG_F_KEEP_IDLE 0x08 /* emit idle-task samples too */

/* Per-CPU token bucket state. */
struct ms_tb_state {
	__u64 credit_ns;        /* accumulated credit, capped at 1 s (burst = budget) */
	__u64 last_refill_ns;
	__u64 last_emit_ns;
};

#define MS_SAMPLE_MAGIC 0x4d53u /* "MS" */
#define MS_SAMPLE_VERSION 1
#define MS_LBR_MAX 32

/* One sample in the ring buffer. Fixed header; when lbr_nr > 0, lbr_nr struct ms_branch
 * follow. User space validates the record length against lbr_nr before reading. */
struct ms_sample {
	__u16 magic;
	__u8 version;
	__u8 attr_rule;   /* enum ms_attr_rule */
	__u16 lbr_nr;
	__u16 gso_segs;
	__u32 cpu;
	__u32 pid;        /* tgid */
	__u32 tid;
	__u32 event;      /* event index from the cookie */
	__u64 ts_ns;
	__u64 ip;
	__u64 addr;       /* data address when the event provides one, else 0 */
	__u64 period;
	__u64 cgroup_id;
	__u64 flow_id;    /* 0 = unattributed */
	__u64 ctx_age_ns; /* age of the context used (0 when unattributed) */
	__s32 kstack_id;  /* < 0: none */
	__s32 ustack_id;
	__u8 user_mode;   /* 1 if ip is a user-space address */
	__u8 _pad0[7];
	struct ms_flow_tuple flow; /* valid when flow_id != 0 */
};

struct ms_branch {
	__u64 from;
	__u64 to;
	__u64 flags;
};

#endif
