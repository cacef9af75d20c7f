"""The fault suite's lab (SPEC §10, issue 10): real agents, each in its own network namespace
joined to the host by a veth pair (so a link can be cut), streaming to the real coordinator on
the host, which writes into a real ClickHouse server (tests/lib/clickhouse.py). Afterwards the
storage contract is checked window by window in ClickHouse (read deduplicated, FINAL, as
docs/STORAGE.md prescribes) against the windows the agents logged as they closed them:

    emitted (window log) == stored (ms_flow_rollup FINAL, per seq) + windows the agent counted
    as dropped; no (host, seq) stored twice.

Everything reuses the shared fixtures (mstest.Agent, chrun.Coordinator, clickhouse.Server,
msfleet's Prometheus parsing); only what a fault needs is added here: the namespace/veth pair,
restarts that keep the log, the peak RSS of every process (VmHWM) and the result line."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import chrun  # noqa: E402
import clickhouse  # noqa: E402
import msfleet  # noqa: E402
import mstest  # noqa: E402

SUBNET = 213          # 10.213.<i>.0/24 per agent namespace
METRICS_PORT = 9105   # inside each namespace: its own port space
DB = "ms_faults"


def vm_hwm_kib(pid):
    """Peak resident set (VmHWM, KiB) of a live process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run(cmd, check=True):
    return mstest.run(cmd, check=check)


class AgentNs:
    """Namespace msflt<i> holding one end of a veth pair (msfp<i>, 10.213.<i>.2); the other end
    (msfv<i>, 10.213.<i>.1) stays on the host, where the coordinator listens. cut() downs the
    host end: every packet between the agent and the coordinator is lost until restore()."""

    def __init__(self, i):
        self.ns = f"msflt{i}"
        self.host_if, self.ns_if = f"msfv{i}", f"msfp{i}"
        self.host_ip, self.ns_ip = f"10.{SUBNET}.{i}.1", f"10.{SUBNET}.{i}.2"

    def up(self):
        self.down()
        run(["ip", "netns", "add", self.ns])
        run(["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if])
        run(["ip", "link", "set", self.ns_if, "netns", self.ns])
        run(["ip", "addr", "add", f"{self.host_ip}/24", "dev", self.host_if])
        run(["ip", "link", "set", self.host_if, "up"])
        run(["ip", "-n", self.ns, "addr", "add", f"{self.ns_ip}/24", "dev", self.ns_if])
        run(["ip", "-n", self.ns, "link", "set", self.ns_if, "up"])
        run(["ip", "-n", self.ns, "link", "set", "lo", "up"])
        return self

    def cut(self):
        run(["ip", "link", "set", self.host_if, "down"])

    def restore(self):
        run(["ip", "link", "set", self.host_if, "up"])

    def down(self):
        run(["ip", "netns", "del", self.ns], check=False)
        run(["ip", "link", "del", self.host_if], check=False)


class Coordinator(chrun.Coordinator):
    """chrun's coordinator listening on every address (the agents' veths) with a token, its
    accept log kept, and restartable after SIGKILL on the same state and port. Records the peak
    RSS of every run."""

    def __init__(self, ch, token_file, *extra):
        super().__init__(ch, DB, "--grpc-port=0", f"--token-file={token_file}", "--heartbeat-ms=1000",
                         "--stale-after-ms=5000", *extra)
        self.args.append(f"--listen-url=tcp://0.0.0.0:{self.port}")  # the last flag wins
        self.accept_log = os.path.join(self.tmp, "accept.jsonl")
        self.args.append(f"--accept-log={self.accept_log}")
        self.token_file = token_file
        self.runs = 0
        self.peak_kib = 0

    def url_for(self, ns):
        return f"tcp://{ns.host_ip}:{self.port}"

    def start(self, timeout=30):
        before = self.log().count("COORD-READY") if os.path.exists(self.log_path) else 0
        self.runs += 1
        self.err = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.args, stdout=self.err, stderr=self.err)
        end = time.time() + timeout
        while time.time() < end:
            if self.log().count("COORD-READY") > before:
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"coordinator exited ({self.proc.returncode}):\n{self.log()[-4000:]}")
            time.sleep(0.05)
        raise AssertionError("coordinator not ready:\n" + self.log()[-4000:])

    def sample_rss(self):
        if self.proc and self.proc.poll() is None:
            self.peak_kib = max(self.peak_kib, vm_hwm_kib(self.proc.pid) or 0)

    def kill9(self):
        self.sample_rss()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.err.close()

    def stop(self, timeout=60):
        self.sample_rss()
        return super().stop(timeout)

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def accepted(self):
        """[(agent, seq, samples)] of the accept log (msfleet's reader)."""
        return msfleet.Coordinator.accepted(self)

    def drained(self):
        """The writer holds nothing: no spooled batch, no pending rows."""
        m = msfleet.parse_metrics(self.metrics())
        return (sum(v for k, v in m.items() if k.startswith("ms_coord_ch_spool_records")) == 0 and
                sum(v for k, v in m.items() if k.startswith("ms_coord_ch_pending_rows")) == 0)


class Agent:
    """The real agent binary (mstest.Agent) run inside ns. kind 'bpf' samples the real kernel
    (cpu-clock, BPF context hooks), 'mock' is the deterministic synthetic source. Its window
    log survives restarts (appended), its stderr of each run is kept."""

    def __init__(self, ns, coord, host, kind="mock", extra=(), state_dir=None):
        self.ns, self.coord, self.host, self.kind = ns, coord, host, kind
        self.tmp = tempfile.mkdtemp(prefix=f"ms-fault-{host}-")
        self.state_dir = state_dir or self.tmp
        src = (["--events=cpu-clock", "--sample-freq=499", "--window-ms=1000"] if kind == "bpf" else
               ["--perf-mock", "--mock-rate=10000", "--mock-flows=200", "--window-ms=500"])
        self.extra = src + [f"--coordinator-url={coord.url_for(ns)}", f"--agent-id={host}",
                            f"--token-file={coord.token_file}", "--uplink-timeout-ms=10000",
                            "--uplink-heartbeat-ms=500", f"--metrics-address={ns.ns_ip}",
                            f"--metrics-port={METRICS_PORT}", f"--state-dir={self.state_dir}"] + list(extra)
        self.runs = 0
        self.peak_kib = 0
        self.a = None

    @property
    def window_log(self):
        return os.path.join(self.tmp, "windows.jsonl")

    @property
    def pid(self):
        return self.a.proc.pid

    def start(self, timeout=30):
        if self.a and os.path.exists(self.a.stderr_path):
            os.rename(self.a.stderr_path, os.path.join(self.tmp, f"agent.{self.runs}.log"))
        self.runs += 1
        self.a = mstest.Agent(*self.extra, tmp=self.tmp)
        self.a.args = ["ip", "netns", "exec", self.ns.ns] + self.a.args  # ip execs: same pid
        self.a.start(timeout=timeout)
        return self

    def log(self):
        return self.a.log()

    def all_logs(self):
        text = ""
        for i in range(1, self.runs):
            with open(os.path.join(self.tmp, f"agent.{i}.log")) as f:
                text += f.read()
        return text + self.log()

    def sample_rss(self):
        if self.a and self.a.proc.poll() is None:
            self.peak_kib = max(self.peak_kib, vm_hwm_kib(self.pid) or 0)

    def metrics(self):
        with urllib.request.urlopen(f"http://{self.ns.ns_ip}:{METRICS_PORT}/metrics", timeout=5) as r:
            return msfleet.parse_metrics(r.read().decode())

    def wait_drained(self, timeout=60):
        msfleet.wait_until(lambda: self.metrics().get("ms_uplink_spool_windows", 1) <= 0, timeout,
                           what=f"{self.host}: spool to drain")

    def kill9(self):
        self.sample_rss()
        self.a.proc.send_signal(signal.SIGKILL)
        self.a.proc.wait(10)
        self.a.proc.stdout.close()
        self.a.err.close()

    def stop(self):
        self.sample_rss()
        return self.a.stop()

    def cleanup(self):
        if self.a:
            msfleet.agent_cleanup(self.a)

    def final_counts(self):
        """The counters of the last UPLINK-STOP line (sent, acked, replayed, dropped, spooled)."""
        lines = [l for l in self.log().splitlines() if "UPLINK-STOP" in l]
        if not lines:
            return {}
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}

    def windows(self):
        """{seq: samples} of every window the agent closed (all runs). A torn last line (an
        agent killed while writing it) is skipped: that window was never handed to the uplink."""
        out = {}
        if not os.path.exists(self.window_log):
            return out
        with open(self.window_log) as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                try:
                    w = json.loads(line)
                except ValueError:
                    continue
                out[w["seq"]] = w["samples"]
        return out


class Lab:
    """ClickHouse + coordinator + n agent namespaces; cleaned up in reverse by the test."""

    def __init__(self, test, n_ns=2, coord_extra=()):
        mstest.require_root(test)
        clickhouse.skip_unless_available()
        if not os.path.exists(chrun.COORD) or not os.path.exists(mstest.AGENT):
            import unittest
            raise unittest.SkipTest("agent or coordinator not built")
        self.test = test
        self.nss = []
        for i in range(n_ns):
            ns = AgentNs(i).up()
            test.addCleanup(ns.down)
            self.nss.append(ns)
        self.ch = clickhouse.Server().start()
        test.addCleanup(self.ch.cleanup)
        tok_dir = tempfile.mkdtemp(prefix="ms-fault-tok-")
        self.token_file = os.path.join(tok_dir, "token")
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"fault-suite-token-0123456789abcdef\n")
        os.close(fd)
        self.coord = Coordinator(self.ch, self.token_file, *coord_extra)
        test.addCleanup(self.coord.cleanup)
        self.agents = []

    def agent(self, i, host, kind="mock", extra=(), state_dir=None):
        a = Agent(self.nss[i], self.coord, host, kind, extra, state_dir)
        self.test.addCleanup(a.cleanup)
        self.agents.append(a)
        return a

    def stored(self, host):
        """{seq: Σ samples} of host in ms_flow_rollup, deduplicated."""
        rows = self.ch.rows(f"SELECT seq, sum(samples) FROM {DB}.ms_flow_rollup FINAL WHERE host = '{host}' "
                            "GROUP BY seq")
        return {int(s): int(n) for s, n in rows}

    def stored_windows(self, host):
        return {int(r[0]) for r in self.ch.rows(f"SELECT seq FROM {DB}.ms_windows FINAL WHERE host = '{host}'")}

    def duplicate_windows(self):
        """(host, seq) pairs with more than one ms_windows row in the deduplicated read, and the
        physical copies still awaiting a merge (resends inserted twice; informational)."""
        dup = self.ch.scalar(f"SELECT count() FROM (SELECT host, seq, count() AS c FROM {DB}.ms_windows FINAL "
                             "GROUP BY host, seq HAVING c > 1)")
        other = chrun.duplicates(self.ch, DB)
        dup += sum(d for d, _ in other.values())
        copies = sum(c for _, c in other.values())
        return dup, copies

    def wait_stored(self, expect, timeout=120):
        """Waits until every agent's stored {seq: samples} equals expect[host] (lossless faults),
        or, when expect is None for a host, until the coordinator's writer is drained and the
        stored windows stop changing for 3 s. Returns {host: stored}."""
        end = time.time() + timeout
        got, last, calm = {}, None, 0
        while time.time() < end:
            got = {a.host: self.stored(a.host) for a in self.agents}
            if all(expect.get(h) is not None and got[h] == expect[h] for h in got):
                return got
            if got == last and self.coord.drained():
                calm += 1
                if calm >= 6 and all(expect.get(h) is None for h in got):
                    return got
                if calm >= 20:  # 10 s without change: what is missing will not come
                    return got
            else:
                calm = 0
            last = got
            time.sleep(0.5)
        return got

    def conservation(self, name, dropped=None, allow_lost=None, acks_lost=None):
        """Checks emitted == stored + dropped for every agent, per window, and no duplicates;
        prints and returns the result line. dropped: {host: counted drops} (default 0);
        allow_lost: {host: set of seqs allowed missing without a counted drop} (a window closed
        by an agent at the moment it was SIGKILLed); acks_lost: {host: n} windows the
        coordinator stored but whose ack the agent never got (delivery is at-least-once: such a
        window, deleted by the spool policy before its re-send, counts as dropped yet is
        stored), so up to n counted drops may be windows that are stored."""
        t = self.test
        self.coord.sample_rss()
        dropped = dropped or {}
        allow_lost = allow_lost or {}
        acks_lost = acks_lost or {}
        emitted = {a.host: a.windows() for a in self.agents}
        # a window without samples has no rollup rows: only ms_windows shows it
        expect = {h: ({s: n for s, n in w.items() if n} if not dropped.get(h) and not allow_lost.get(h) else None)
                  for h, w in emitted.items()}
        stored = self.wait_stored(expect)
        res = {"fault": name, "windows_emitted": 0, "windows_stored": 0, "windows_lost": 0,
               "dropped_counted": 0, "duplicates": 0, "physical_copies": 0, "samples_emitted": 0,
               "samples_stored": 0}
        for a in self.agents:
            h = a.host
            em, st = emitted[h], stored[h]
            t.assertGreater(len(em), 10, f"{h}: too few windows to mean anything")
            win = self.stored_windows(h)
            t.assertTrue(set(st) <= win, f"{h}: rollup rows of a window without ms_windows")
            t.assertEqual(win - set(em), set(), f"{h}: windows stored but never emitted")
            for s, n in st.items():
                t.assertEqual(n, em[s], f"{h}: samples of window {s}")
            t.assertEqual({s for s in win if em[s]} - set(st), set(), f"{h}: windows stored without their rows")
            lost = set(em) - win
            res["windows_emitted"] += len(em)
            res["windows_stored"] += len(win)
            res["samples_emitted"] += sum(em.values())
            res["samples_stored"] += sum(st.values())
            res["dropped_counted"] += dropped.get(h, 0)
            unexplained = lost - allow_lost.get(h, set())
            over = dropped.get(h, 0) - len(unexplained)  # counted as dropped, yet stored
            res["windows_lost"] += max(0, len(lost) - dropped.get(h, 0))
            res["dropped_but_stored"] = res.get("dropped_but_stored", 0) + max(0, over)
            t.assertTrue(0 <= over <= acks_lost.get(h, 0),
                         f"{h}: {len(unexplained)} windows missing, {dropped.get(h, 0)} drops counted "
                         f"({acks_lost.get(h, 0)} acks lost): {sorted(unexplained)[:20]}")
        dup, copies = self.duplicate_windows()
        res["duplicates"], res["physical_copies"] = dup, copies
        res["agent_peak_rss_kib"] = max(a.peak_kib for a in self.agents)
        res["coord_peak_rss_kib"] = self.coord.peak_kib
        res["agent_rss_kib"] = ",".join(f"{a.host}:{a.peak_kib}" for a in self.agents)
        line = "FAULT-RESULT " + " ".join(f"{k}={v}" for k, v in res.items())
        print("\n" + line)
        print(f"| {name} | {res['windows_emitted']} | {res['windows_stored']} | {res['dropped_counted']} | "
              f"{res['windows_lost']} | {dup} | {res['agent_peak_rss_kib'] / 1024:.1f} MiB | "
              f"{res['coord_peak_rss_kib'] / 1024:.1f} MiB |")
        out = os.environ.get("MS_FAULT_RESULTS")
        if out:
            with open(out, "a") as f:
                f.write(line + "\n")
        t.assertEqual(dup, 0, "duplicate (host, seq) in the deduplicated read")
        return res


def main():
    mstest.main()
