"""Shared fixtures of the MicroSentinel integration tests: paths to the built binaries, running
the agent for real, network namespaces joined by veth, and reading the agent's window log.
Everything here drives real components (the kernel, BPF, namespaces); nothing is mocked."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SRC = os.environ.get("MS_SRC", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("MS_BUILD", os.path.join(SRC, "build"))
AGENT = os.path.join(BUILD, "agent", "micro_sentinel_agent")
PY = "/usr/bin/python3"


def require_root(test):
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (BPF, perf events, network namespaces)")


def run(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


class Netns:
    """Two network namespaces A and B joined by a veth pair, with IPv4 and IPv6 addresses.
    A: 10.77.<n>.1 / fd77:<n>::1, B: 10.77.<n>.2 / fd77:<n>::2."""

    def __init__(self, tag, subnet=77):
        self.tag = tag
        self.a = f"msA{tag}"
        self.b = f"msB{tag}"
        self.va = f"msva{tag}"
        self.vb = f"msvb{tag}"
        self.n = subnet
        self.a4, self.b4 = f"10.{subnet}.0.1", f"10.{subnet}.0.2"
        self.a6, self.b6 = f"fd{subnet}::1", f"fd{subnet}::2"

    def __enter__(self):
        self.down()
        run(["ip", "netns", "add", self.a])
        run(["ip", "netns", "add", self.b])
        run(["ip", "link", "add", self.va, "type", "veth", "peer", "name", self.vb])
        run(["ip", "link", "set", self.va, "netns", self.a])
        run(["ip", "link", "set", self.vb, "netns", self.b])
        for ns, dev, a4, a6 in ((self.a, self.va, self.a4, self.a6), (self.b, self.vb, self.b4, self.b6)):
            run(["ip", "-n", ns, "addr", "add", f"{a4}/24", "dev", dev])
            run(["ip", "-n", ns, "addr", "add", f"{a6}/64", "dev", dev, "nodad"])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        return self

    def inode(self, ns):
        return os.stat(f"/run/netns/{ns}").st_ino

    def exec(self, ns, argv, **kw):
        return subprocess.Popen(["ip", "netns", "exec", ns] + argv, **kw)

    def down(self):
        for ns in (self.a, self.b):
            run(["ip", "netns", "del", ns], check=False)

    def __exit__(self, *exc):
        self.down()


class Agent:
    """The real agent binary with a temporary window log, stopped with SIGTERM."""

    def __init__(self, *args, tmp=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="ms-agent-")
        self.window_log = os.path.join(self.tmp, "windows.jsonl")
        self.stderr_path = os.path.join(self.tmp, "agent.log")
        self.args = [AGENT, f"--window-log={self.window_log}", f"--state-dir={self.tmp}",
                     "--metrics-port=0", "--control-port=0"] + list(args)
        self.proc = None

    def start(self, wait_ready=True, timeout=20):
        self.err = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.err, text=True)
        if wait_ready:
            self.wait_log("AGENT-READY", timeout)
        return self

    def log(self):
        with open(self.stderr_path) as f:
            return f.read()

    def wait_log(self, needle, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if needle in self.log():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited ({self.proc.returncode}) before '{needle}':\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"timeout waiting for '{needle}':\n{self.log()}")

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            raise AssertionError("agent did not stop within %ss after SIGTERM" % timeout)
        self.err.close()
        self.stdout = out
        return self.proc.returncode

    def windows(self):
        if not os.path.exists(self.window_log):
            return []
        with open(self.window_log) as f:
            return [json.loads(line) for line in f if line.strip()]


def bpf_progs():
    """Names of the BPF programs loaded in the kernel."""
    out = run(["bpftool", "-j", "prog", "show"]).stdout
    return [p.get("name", "") for p in json.loads(out or "[]")]


def bpf_links():
    out = run(["bpftool", "-j", "link", "show"], check=False).stdout
    try:
        return json.loads(out or "[]")
    except json.JSONDecodeError:
        return []


def main():
    unittest.main(verbosity=2)


def bpf_objects_of(pid):
    """(prog ids, link ids) held open by process pid, read from /proc/PID/fdinfo: exact even when
    other agents run on the same machine."""
    progs, links = set(), set()
    d = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        progs.add(int(line.split()[1]))
                    elif line.startswith("link_id:"):
                        links.add(int(line.split()[1]))
        except OSError:
            pass
    return progs, links


def bpf_prog_exists(prog_id):
    return run(["bpftool", "prog", "show", "id", str(prog_id)], check=False).returncode == 0


def bpf_link_exists(link_id):
    return run(["bpftool", "link", "show", "id", str(link_id)], check=False).returncode == 0
