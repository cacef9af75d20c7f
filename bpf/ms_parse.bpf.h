/* ms_parse: packet and socket parsing into struct ms_flow_tuple, for the context hooks.
 * Every read goes through bpf_probe_read_kernel (the skb pointer of raw_tp/tracepoint hooks is
 * not BTF-typed), so one parser serves tp_btf, raw_tp, tracepoint and XDP.
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
		struct iphdr ip;
		if (bpf_probe_read_kernel(&ip, sizeof(ip), l3))
			return -1;
		if (ip.version != 4 || ip.ihl < 5)
			return -1;
		t->family = MS_FAMILY_V4;
		ms_v4_mapped(t->saddr, ip.saddr);
		ms_v4_mapped(t->daddr, ip.daddr);
		proto = ip.protocol;
		/* non-first fragments carry no L4 header */
		if (ms_bswap16(ip.frag_off) & 0x1fff)
			ports = 0;
		l4 = l3 + ip.ihl * 4;
	} else if (eth_be == ETH_P_IPV6_BE) {
		struct ipv6hdr ip6;
		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), l3))
			return -1;
		if (ip6.version != 6)
			return -1;
		t->family = MS_FAMILY_V6;
		__builtin_memcpy(t->saddr, &ip6.saddr, 16);
		__builtin_memcpy(t->daddr, &ip6.daddr, 16);
		proto = ip6.nexthdr;
		l4 = l3 + sizeof(ip6);
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
		__u16 p[2];
		if (bpf_probe_read_kernel(p, sizeof(p), l4))
			return -1;
		t->sport = ms_bswap16(p[0]);
		t->dport = ms_bswap16(p[1]);
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

/* Fills t from an skb at a hook. rx: data points at L3 (netif_receive_skb has pulled the
 * Ethernet header but not reset network_header); tx: use head + network_header. */
static __always_inline int ms_parse_skb(struct sk_buff *skb, int rx, struct ms_flow_tuple *t)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 eth = BPF_CORE_READ(skb, protocol);
	const void *l3;

	if (rx)
		l3 = BPF_CORE_READ(skb, data);
	else
		l3 = head + BPF_CORE_READ(skb, network_header);

	t->vlan = BPF_CORE_READ(skb, vlan_tci) & 0x0fff;
	if (eth == ETH_P_8021Q_BE || eth == ETH_P_8021AD_BE) {
		/* tag still in the payload: TCI, then the inner ethertype */
		__u16 tag[2];
		if (bpf_probe_read_kernel(tag, sizeof(tag), rx ? l3 : head + BPF_CORE_READ(skb, mac_header) + 14))
			return -1;
		t->vlan = ms_bswap16(tag[0]) & 0x0fff;
		eth = tag[1];
		if (rx)
			l3 += 4;
	}

	if (!rx && BPF_CORE_READ_BITFIELD_PROBED(skb, encapsulation)) {
		__u16 inh = BPF_CORE_READ(skb, inner_network_header);
		__u16 inproto = BPF_CORE_READ(skb, inner_protocol);
		if (inh && (inproto == ETH_P_IP_BE || inproto == ETH_P_IPV6_BE)) {
			if (ms_parse_l3(head + inh, inproto, t) == 0) {
				t->flags |= MS_FLOW_F_ENCAP;
				goto done;
			}
		}
	}
	if (ms_parse_l3(l3, eth, t))
		return -1;
done:
	t->ifindex = BPF_CORE_READ(skb, dev, ifindex);
	t->netns = BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
	return 0;
}

/* Fills t from a connected socket. recv: remote -> local (RX); send: local -> remote (TX).
 * Unconnected sockets (no remote port) return -1: their peer is only known per datagram. */
static __always_inline int ms_parse_sock(struct sock *sk, int recv, struct ms_flow_tuple *t)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 rport = ms_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__u8 local[16], remote[16];

	if (!rport)
		return -1;
	if (family == MS_AF_INET) {
		ms_v4_mapped(local, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
		ms_v4_mapped(remote, BPF_CORE_READ(sk, __sk_common.skc_daddr));
		t->family = MS_FAMILY_V4;
	} else if (family == MS_AF_INET6) {
		BPF_CORE_READ_INTO(&local, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&remote, sk, __sk_common.skc_v6_daddr);
		/* a dual-stack socket talking IPv4 has v4-mapped addresses: same flow as the wire */
		int mapped = remote[10] == 0xff && remote[11] == 0xff;
#pragma unroll
		for (int i = 0; i < 10; i++)
			mapped = mapped && remote[i] == 0;
		t->family = mapped ? MS_FAMILY_V4 : MS_FAMILY_V6;
	} else {
		return -1;
	}
	t->proto = (__u8)BPF_CORE_READ(sk, sk_protocol);
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
	t->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	return 0;
}

#endif
