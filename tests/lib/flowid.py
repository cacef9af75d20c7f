"""Reference implementation of the MicroSentinel flow id (docs/FLOW_ID.md, bpf/ms_abi.h).

Outside tools can compute the id of a flow from its tuple with this function; the tests use it
to check the ids the BPF programs compute.
"""
import ipaddress
import struct

MASK = (1 << 64) - 1
SEED = 0x6D735F666C6F7721  # "ms_flow!"
DIR_RX, DIR_TX = 1, 2
PROTO = {"tcp": 6, "udp": 17}


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def addr16(a):
    ip = ipaddress.ip_address(a)
    if ip.version == 4:
        return b"\x00" * 10 + b"\xff\xff" + ip.packed, 4
    if ip.ipv4_mapped is not None:
        return ip.packed, 4
    return ip.packed, 6


def flow_id(proto, saddr, sport, daddr, dport, direction, netns):
    """proto: 'tcp'/'udp' or number; direction: 'rx'/'tx' or 1/2; netns: inode number."""
    if isinstance(proto, str):
        proto = PROTO[proto]
    if isinstance(direction, str):
        direction = {"rx": DIR_RX, "tx": DIR_TX}[direction]
    s, fam = addr16(saddr)
    d, _ = addr16(daddr)
    words = [
        (netns << 32) | (fam << 24) | (proto << 16) | (direction << 8),
        struct.unpack("<Q", s[:8])[0],
        struct.unpack("<Q", s[8:])[0],
        struct.unpack("<Q", d[:8])[0],
        struct.unpack("<Q", d[8:])[0],
        (sport << 16) | dport,
    ]
    h = SEED
    for w in words:
        h = mix64((h ^ w) & MASK)
    return h if h else 1


if __name__ == "__main__":
    # vectors used by the C unit test (agent/flowhash_test.c)
    print(hex(flow_id("tcp", "10.1.2.3", 40000, "10.4.5.6", 443, "rx", 4026531840)))
    print(hex(flow_id("udp", "fd00::1", 5353, "fd00::2", 53, "tx", 4026532000)))
