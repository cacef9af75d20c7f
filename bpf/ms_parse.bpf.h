/* ms_parse: packet and socket parsing into struct ms_flow_tuple, for the context hooks.
 * Kernel objects (sk_buff, sock, net_device, skb_shared_info) are read with plain loads through
 * BTF pointers: the callers pass pointers typed by MS_KPTR (bpf_rdonly_cast, which the verifier
 * inlines to nothing), so every field read is one instruction that the verifier turns into a
 * fault-safe load, the same in the tp_btf, raw_tp and tracepoint tiers. Before, each field was a
 * bpf_probe_read_kernel helper call (~25 ns each on this VM, a dozen per packet). Packet bytes
 * (IP headers, ports) are read the same way (a bad address reads as zeros, which fails the
 * version check); only the rare ones (VLAN tag in the payload, IPv6 extension headers, VXLAN)
 * still use bpf_probe_read_kernel. One parser serves all tiers and XDP.
 * Handled: IPv4 (options via IHL, fragments: ports 0 unless first fragment), IPv6 with up to
 * MS_V6_EXT_MAX extension headers, 802.1Q/802.1ad tags, one level of encapsulation (IPIP,
 * IPv6-in-IP, VXLAN on UDP 4789, and the skb's inner headers when skb->encapsulation is set).
 * Anything else is a parse failure: no context is set (never a random flow id). */
#ifndef MS_PARSE_BPF_H
#define MS_PARSE_BPF_H

#define ETH_P_IP_BE 0x0008     /* htons(0x0800) */
#define ETH_P_IPV6_BE 0xdd86   /* htons(0x86DD) */
#define ETH_P_8021Q_BE 0x0081  /* htons(0x8100) */
#define ETH_P_8021AD_BE 0xa888 /* htons(0x88A8) */
#define MS_AF_INET 2
#define MS_AF_INET6 10
#define MS_IPPROTO_TCP 6
#define MS_IPPROTO_UDP 17
#define MS_IPPROTO_SCTP 132
#define MS_IPPROTO_UDPLITE 136
#define MS_IPPROTO_IPIP 4
#define MS_IPPROTO_IPV6 41
#define MS_VXLAN_PORT 4789
#define MS_V6_EXT_MAX 4

/* Read-only kernel pointer of a BTF type, from any address (also raw_tp/tracepoint arguments,
 * which are plain integers): loads through it are fault-safe and cost no helper call. Needs
 * the bpf_rdonly_cast kfunc (Linux 6.2, common to all program types). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define MS_KPTR(type, p) ((type *)bpf_rdonly_cast((const void *)(p), bpf_core_type_id_kernel(type)))

static __always_inline __u16 ms_bswap16(__u16 v)
{
	return (__u16)((v >> 8) | (v << 8));
}

static __always_inline void ms_v4_mapped(__u8 dst[16], __u32 addr_be)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr_be, 4);
}

static __always_inline int ms_has_ports(__u8 proto)
{
	return proto == MS_IPPROTO_TCP || proto == MS_IPPROTO_UDP || proto == MS_IPPROTO_SCTP ||
	       proto == MS_IPPROTO_UDPLITE;
}

/* Parses one IP header at l3 (ethertype eth_be). Returns 0 when the tuple is complete,
 * 1 when an encapsulated inner packet was found (*inner / *inner_eth set), < 0 on failure. */
static __always_inline int ms_parse_ip(const void *l3, __u16 eth_be, struct ms_flow_tuple *t,
				       const void **inner, __u16 *inner_eth)
{
	const void *l4;
	__u8 proto;
	int ports = 1;

	if (eth_be == ETH_P_IP_BE) {
		struct iphdr *ip = MS_KPTR(struct iphdr, l3);
		__u32 ihl = BPF_CORE_READ_BITFIELD(ip, ihl);
		if (BPF_CORE_READ_BITFIELD(ip, version) != 4 || ihl < 5)
			return -1;
		t->family = MS_FAMILY_V4;
		ms_v4_mapped(t->saddr, ip->saddr);
		ms_v4_mapped(t->daddr, ip->daddr);
		proto = ip->protocol;
		/* non-first fragments carry no L4 header */
		if (ms_bswap16(ip->frag_off) & 0x1fff)
			ports = 0;
		l4 = l3 + ihl * 4;
	} else if (eth_be == ETH_P_IPV6_BE) {
		struct ipv6hdr *ip6 = MS_KPTR(struct ipv6hdr, l3);
		if (BPF_CORE_READ_BITFIELD(ip6, version) != 6)
			return -1;
		t->family = MS_FAMILY_V6;
		__u32 a[8];
#pragma unroll
		for (int i = 0; i < 4; i++) {
			a[i] = ip6->saddr.in6_u.u6_addr32[i];
			a[4 + i] = ip6->daddr.in6_u.u6_addr32[i];
		}
		__builtin_memcpy(t->saddr, a, 16);
		__builtin_memcpy(t->daddr, a + 4, 16);
		proto = ip6->nexthdr;
		l4 = l3 + sizeof(struct ipv6hdr);
#pragma unroll
		for (int i = 0; i < MS_V6_EXT_MAX; i++) {
			__u8 hdr[2];
			if (proto != 0 && proto != 43 && proto != 60 && proto != 44 && proto != 51)
				break;
			if (bpf_probe_read_kernel(hdr, sizeof(hdr), l4))
				return -1;
			if (proto == 44) {            /* fragment: fixed 8 bytes */
				__u16 off;
				if (bpf_probe_read_kernel(&off, sizeof(off), l4 + 2))
					return -1;
				if (ms_bswap16(off) & 0xfff8)
					ports = 0;
				l4 += 8;
			} else if (proto == 51) {     /* AH: (len + 2) * 4 */
				l4 += ((__u32)hdr[1] + 2) * 4;
			} else {                      /* hop-by-hop, routing, dest opts */
				l4 += ((__u32)hdr[1] + 1) * 8;
			}
			proto = hdr[0];
		}
	} else {
		return -1;
	}

	t->proto = proto;
	if (proto == MS_IPPROTO_IPIP || proto == MS_IPPROTO_IPV6) {
		*inner = l4;
		*inner_eth = proto == MS_IPPROTO_IPIP ? ETH_P_IP_BE : ETH_P_IPV6_BE;
		return 1;
	}
	if (ports && ms_has_ports(proto)) {
		/* TCP, UDP, SCTP and UDP-Lite all start with the two ports */
		struct udphdr *uh = MS_KPTR(struct udphdr, l4);
		t->sport = ms_bswap16(uh->source);
		t->dport = ms_bswap16(uh->dest);
		if (proto == MS_IPPROTO_UDP && t->dport == MS_VXLAN_PORT) {
			/* UDP 8 + VXLAN 8, then the inner Ethernet header */
			__u16 eth;
			if (bpf_probe_read_kernel(&eth, sizeof(eth), l4 + 16 + 12))
				return 0;
			if (eth == ETH_P_IP_BE || eth == ETH_P_IPV6_BE) {
				*inner = l4 + 16 + 14;
				*inner_eth = eth;
				return 1;
			}
		}
	}
	return 0;
}

/* Parses l3 with at most one level of encapsulation. 0 on success. */
static __always_inline int ms_parse_l3(const void *l3, __u16 eth_be, struct ms_flow_tuple *t)
{
	const void *inner = 0;
	__u16 inner_eth = 0;
	int r = ms_parse_ip(l3, eth_be, t, &inner, &inner_eth);
	if (r <= 0)
		return r;
	struct ms_flow_tuple outer = *t;
	r = ms_parse_ip(inner, inner_eth, t, &inner, &inner_eth);
	if (r < 0) {
		*t = outer;  /* keep the outer flow rather than nothing */
		return 0;
	}
	/* deeper nesting: the first inner level is the flow */
	t->flags |= MS_FLOW_F_ENCAP;
	return 0;
}

/* Fills t from an skb (an MS_KPTR) at a hook. rx: data points at L3 (netif_receive_skb has
 * pulled the Ethernet header but not reset network_header); tx: use head + network_header. */
static __always_inline int ms_parse_skb(struct sk_buff *skb, int rx, struct ms_flow_tuple *t)
{
	unsigned char *head = skb->head;
	__u16 eth = skb->protocol;
	const void *l3;

	if (rx)
		l3 = skb->data;
	else
		l3 = head + skb->network_header;

	t->vlan = skb->vlan_tci & 0x0fff;
	if (eth == ETH_P_8021Q_BE || eth == ETH_P_8021AD_BE) {
		/* tag still in the payload: TCI, then the inner ethertype */
		__u16 tag[2];
		if (bpf_probe_read_kernel(tag, sizeof(tag), rx ? l3 : head + skb->mac_header + 14))
			return -1;
		t->vlan = ms_bswap16(tag[0]) & 0x0fff;
		eth = tag[1];
		if (rx)
			l3 += 4;
	}

	if (!rx && BPF_CORE_READ_BITFIELD(skb, encapsulation)) {
		__u16 inh = skb->inner_network_header;
		__u16 inproto = skb->inner_protocol;
		if (inh && (inproto == ETH_P_IP_BE || inproto == ETH_P_IPV6_BE)) {
			if (ms_parse_l3(head + inh, inproto, t) == 0) {
				t->flags |= MS_FLOW_F_ENCAP;
				goto done;
			}
		}
	}
	if (ms_parse_l3(l3, eth, t))
		return -1;
done:;
	struct net_device *dev = skb->dev;
	if (dev) {
		t->ifindex = dev->ifindex;
		t->netns = dev->nd_net.net->ns.inum;
	}
	return 0;
}

/* Fills t from a connected socket (an MS_KPTR). recv: remote -> local (RX); send: local ->
 * remote (TX). Unconnected sockets (no remote port) return -1: their peer is only known per
 * datagram. */
static __always_inline int ms_parse_sock(struct sock *sk, int recv, struct ms_flow_tuple *t)
{
	struct sock_common *skc = &sk->__sk_common;
	__u16 rport = ms_bswap16(skc->skc_dport);
	__u16 lport = skc->skc_num;
	__u16 family = skc->skc_family;
	__u32 local[4], remote[4];

	if (!rport)
		return -1;
	if (family == MS_AF_INET) {
		ms_v4_mapped((__u8 *)local, skc->skc_rcv_saddr);
		ms_v4_mapped((__u8 *)remote, skc->skc_daddr);
		t->family = MS_FAMILY_V4;
	} else if (family == MS_AF_INET6) {
#pragma unroll
		for (int i = 0; i < 4; i++) {
			local[i] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[i];
			remote[i] = skc->skc_v6_daddr.in6_u.u6_addr32[i];
		}
		/* a dual-stack socket talking IPv4 has v4-mapped addresses: same flow as the wire */
		int mapped = remote[0] == 0 && remote[1] == 0 && remote[2] == 0xffff0000u;
		t->family = mapped ? MS_FAMILY_V4 : MS_FAMILY_V6;
	} else {
		return -1;
	}
	t->proto = (__u8)sk->sk_protocol;
	if (recv) {
		__builtin_memcpy(t->saddr, remote, 16);
		__builtin_memcpy(t->daddr, local, 16);
		t->sport = rport;
		t->dport = lport;
	} else {
		__builtin_memcpy(t->saddr, local, 16);
		__builtin_memcpy(t->daddr, remote, 16);
		t->sport = lport;
		t->dport = rport;
	}
	t->netns = skc->skc_net.net->ns.inum;
	return 0;
}

#endif
