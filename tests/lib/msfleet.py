"""Fixtures of the fleet-wire integration tests: the real coordinator binary (started, SIGKILLed,
restarted on the same state), synthetic agents pointed at it, Prometheus text parsing, the
coordinator's accept log (its dedup journal kept whole), and a minimal nng REQ client written
from the SP wire format so tests can send arbitrary bytes (garbage, oversize, forged windows)."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

import mstest

COORD = os.path.join(mstest.BUILD, "coordinator", "micro_sentinel_coordinator")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def parse_metrics(text):
    """{'name{labels}': value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        k, v = line.rsplit(" ", 1)
        out[k] = float(v)
    return out


def http_get(port, path, timeout=5, token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode()


def metrics_port_from_log(text):
    m = re.findall(r"serving /metrics on \S*:(\d+)$", text, re.M)
    return int(m[-1]) if m else None


class Coordinator:
    """The coordinator with a fixed state dir, accept log and listen URL across restarts."""

    def __init__(self, tmp=None, listen_url=None, extra=()):
        self.tmp = tmp or tempfile.mkdtemp(prefix="ms-coord-")
        self.port = free_port()
        self.http_port = free_port()
        self.url = listen_url or f"tcp://127.0.0.1:{self.port}"
        self.accept_log = os.path.join(self.tmp, "accept.jsonl")
        self.state = os.path.join(self.tmp, "state")
        self.extra = list(extra)
        self.proc = None
        self.runs = 0
        self.metrics_port = None

    def start(self, timeout=20):
        self.runs += 1
        self.log_path = os.path.join(self.tmp, f"coord.{self.runs}.log")
        self.err = open(self.log_path, "w")
        args = [COORD, f"--listen-url={self.url}", f"--state-dir={self.state}",
                f"--accept-log={self.accept_log}", f"--metrics-port={self.http_port}", "--stale-after-ms=3000",
                "--heartbeat-ms=1000"] + self.extra
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.err)
        end = time.time() + timeout
        while time.time() < end:
            text = self.log()
            if "COORD-READY" in text:
                self.metrics_port = metrics_port_from_log(text)
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"coordinator exited ({self.proc.returncode}):\n{text}")
            time.sleep(0.05)
        raise AssertionError("coordinator did not become ready:\n" + self.log())

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def all_logs(self):
        text = ""
        for i in range(1, self.runs + 1):
            with open(os.path.join(self.tmp, f"coord.{i}.log")) as f:
                text += f.read()
        return text

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.err.close()

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout)
        self.err.close()
        return self.proc.returncode

    def cleanup(self):
        """For addCleanup: kills a coordinator a failed test left running."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def metrics(self):
        return parse_metrics(http_get(self.metrics_port, "/metrics"))

    def agents(self, token=None):
        return json.loads(http_get(self.metrics_port, "/api/v1/agents", token=token))["agents"]

    def accepted(self):
        """[(agent, seq, samples)] in journal order (windows only)."""
        out = []
        if not os.path.exists(self.accept_log):
            return out
        with open(self.accept_log) as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                try:
                    d = json.loads(line)
                except ValueError:
                    continue  # skipped by the coordinator too (counted as a bad line)
                if "seq" in d:
                    out.append((d["agent"], d["seq"], d["samples"]))
        return out


def agent_cleanup(agent):
    """For addCleanup: kills an agent a failed test left running."""
    if agent.proc and agent.proc.poll() is None:
        agent.proc.kill()
        agent.proc.wait(10)


def fleet_agent(coord_url, agent_id, *extra, window_ms=200, rate=20000, tmp=None):
    """A synthetic agent (no BPF, no root needed) streaming to coord_url."""
    return mstest.Agent("--perf-mock", f"--coordinator-url={coord_url}", f"--agent-id={agent_id}",
                        f"--window-ms={window_ms}", f"--mock-rate={rate}", "--uplink-timeout-ms=2000",
                        "--uplink-heartbeat-ms=500", f"--metrics-port={free_port()}", *extra, tmp=tmp)


def agent_metrics(agent):
    port = metrics_port_from_log(agent.log())
    return parse_metrics(http_get(port, "/metrics"))


def produced(agent):
    """{seq: samples} from the agent's window log."""
    return {w["seq"]: w["samples"] for w in agent.windows()}


def wait_until(pred, timeout, step=0.2, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timeout after {timeout}s waiting for {what}")


# ----------------------------------------------------------------- protobuf + raw SP client

_pb = None


def pb():
    """The ms.proto Python module, generated with protoc into a temporary directory."""
    global _pb
    if _pb is None:
        d = tempfile.mkdtemp(prefix="ms-pb-")
        subprocess.run(["protoc", f"--python_out={d}", f"-I{mstest.SRC}/proto",
                        f"{mstest.SRC}/proto/ms.proto"], check=True)
        sys.path.insert(0, d)
        import ms_pb2
        _pb = ms_pb2
    return _pb


class RawReq:
    """nng REQ over TCP from the SP wire format: an 8-byte handshake (0, 'S', 'P', 0, protocol
    u16 BE, 0, 0; REQ = 0x30, REP = 0x31), then messages as u64 BE length + body, where a
    request body starts with a 4-byte request id (top bit set) that the reply echoes."""

    def __init__(self, port, timeout=5):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
        peer = self._read(8)
        if peer[:4] != b"\x00SP\x00" or struct.unpack(">H", peer[4:6])[0] != 0x31:
            raise AssertionError(f"not an nng REP peer: {peer!r}")
        self.id = 0x80000001

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            c = self.s.recv(n - len(buf))
            if not c:
                raise ConnectionError("closed")
            buf += c
        return buf

    def request(self, body):
        """Sends body, returns the reply body (bytes) or raises on close/timeout."""
        self.id += 1
        msg = struct.pack(">I", self.id | 0x80000000) + body
        self.s.sendall(struct.pack(">Q", len(msg)) + msg)
        while True:
            n = struct.unpack(">Q", self._read(8))[0]
            data = self._read(n)
            rid = struct.unpack(">I", data[:4])[0]
            if rid == (self.id | 0x80000000):
                return data[4:]

    def ack(self, body):
        a = pb().Ack()
        a.ParseFromString(self.request(body))
        return a

    def close(self):
        self.s.close()


def hello(agent_id, token="", next_seq=1, low_water=0):
    m = pb()
    return m.Request(protocol=1, token=token, low_water=low_water,
                     hello=m.Hello(agent_id=agent_id, host="test", version="test", next_seq=next_seq)).SerializeToString()


def window(agent_id, seq, token="", samples=(1, 2, 3), low_water=None):
    m = pb()
    w = m.Window(agent_id=agent_id, seq=seq, start_ns=1, end_ns=2)
    w.rows.count = len(samples)
    w.rows.samples.extend(samples)
    return m.Request(protocol=1, token=token, low_water=seq if low_water is None else low_water,
                     window=w).SerializeToString()
