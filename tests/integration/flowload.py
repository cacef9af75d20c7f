"""A request/response workload with known 5-tuples whose endpoints burn CPU while serving.

  flowload.py server PROTO ADDR PORT [--connected] [--burn-ms 2] [--post-ms 0.5] [--linger-s 2]
  flowload.py client PROTO ADDR PORT SPORT [--burn-ms 1] [--duration-s 4]

The server serves one client; after the client is gone it keeps burning CPU in the same thread
for --linger-s seconds with no network activity (samples then must be unattributed). It prints
READY when listening and DONE <t_last_request_ns> <t_end_ns> when it exits."""
import argparse
import socket
import sys
import time


def burn(ms):
    end = time.perf_counter() + ms / 1000.0
    x = 0
    while time.perf_counter() < end:
        for i in range(200):
            x += i * i
    return x


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def server(a):
    fam = family(a.addr)
    typ = socket.SOCK_STREAM if a.proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam, typ)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.addr, a.port))
    last = time.time_ns()
    if a.proto == "tcp":
        s.listen(1)
        print("READY", flush=True)
        c, _ = s.accept()
        while True:
            d = c.recv(64)
            if not d:
                last = time.time_ns()  # the peer's FIN is the flow's last packet
                break
            last = time.time_ns()
            burn(a.burn_ms)
            c.sendall(d)
            burn(a.post_ms)
        c.close()
    else:
        print("READY", flush=True)
        s.settimeout(a.idle_s)
        peer_connected = False
        while True:
            try:
                d, peer = s.recvfrom(64)
            except socket.timeout:
                break
            except ConnectionRefusedError:
                continue  # ICMP unreachable for an answer the client was not there to take
            if d == b"BYE":
                last = time.time_ns()  # the flow's last datagram: its context is fresh now
                break
            last = time.time_ns()
            if a.connected and not peer_connected:
                s.connect(peer)
                peer_connected = True
            burn(a.burn_ms)
            if peer_connected:
                s.send(d)
            else:
                s.sendto(d, peer)
            burn(a.post_ms)
    s.close()
    burn(a.linger_s * 1000)
    print("DONE", last, time.time_ns(), flush=True)


def client(a):
    fam = family(a.addr)
    typ = socket.SOCK_STREAM if a.proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam, typ)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", a.sport))
    for _ in range(100):
        try:
            s.connect((a.addr, a.port))
            break
        except OSError:
            time.sleep(0.05)
    s.settimeout(2)
    end = time.time() + a.duration_s
    n = 0
    while time.time() < end:
        s.send(b"x" * 32)
        burn(a.burn_ms)
        try:
            s.recv(64)
        except socket.timeout:
            continue
        except ConnectionRefusedError:  # UDP: the server was not bound yet
            time.sleep(0.05)
            continue
        burn(a.burn_ms)
        n += 1
    if a.proto == "udp":
        s.send(b"BYE")
    s.close()
    print("DONE", n, time.time_ns(), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("proto", choices=["tcp", "udp"])
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("sport", type=int, nargs="?", default=0)
    p.add_argument("--burn-ms", type=float, default=2.0)
    p.add_argument("--post-ms", type=float, default=0.5)
    p.add_argument("--linger-s", type=float, default=2.0)
    p.add_argument("--duration-s", type=float, default=4.0)
    p.add_argument("--idle-s", type=float, default=10.0)
    p.add_argument("--connected", action="store_true")
    a = p.parse_args()
    (server if a.role == "server" else client)(a)


if __name__ == "__main__":
    main()
