"""Runs the real coordinator against a test ClickHouse server (clickhouse.py) and checks what
landed in ClickHouse against what the agents counted (their window logs): the storage
contract of docs/STORAGE.md, read deduplicated (FINAL)."""
import os
import signal
import subprocess
import tempfile
import time
import urllib.request

import clickhouse
import mstest

COORD = os.path.join(mstest.BUILD, "coordinator", "micro_sentinel_coordinator")


class Coordinator:
    """micro_sentinel_coordinator on free loopback ports, writing into ch.database."""

    def __init__(self, ch, database, *args, tmp=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="ms-coord-")
        self.port, self.metrics_port = clickhouse.free_ports(2)
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.log_path = os.path.join(self.tmp, "coordinator.log")
        self.args = [COORD, f"--listen-url={self.url}", f"--state-dir={self.tmp}/state",
                     f"--metrics-port={self.metrics_port}", f"--clickhouse-endpoint={ch.endpoint}",
                     f"--clickhouse-database={database}", "--clickhouse-flush-ms=300"] + list(args)
        self.proc = None

    def start(self, timeout=30):
        self.err = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.args, stdout=self.err, stderr=self.err)
        end = time.time() + timeout
        while time.time() < end:
            if "COORD-READY" in self.log():
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"coordinator exited ({self.proc.returncode}):\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError("coordinator not ready:\n" + self.log())

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def metric(self, name):
        """Sum of every sample of a metric family (all label sets)."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("coordinator did not stop within %ss:\n%s" % (timeout, self.log()))
        self.err.close()
        return self.proc.returncode


def agent_totals(agent):
    """(Σ samples, Σ emitted, set of seqs) over an agent's window log."""
    ws = agent.windows()
    return (sum(w["samples"] for w in ws), sum(w["counters"]["emitted"] for w in ws), {w["seq"] for w in ws})


def stored_samples(ch, db, host):
    return int(ch.query(f"SELECT sum(samples) FROM {db}.ms_flow_rollup FINAL WHERE host = '{host}'") or 0)


def wait_stored(ch, db, expected, timeout=120):
    """Waits until Σ samples per host in ClickHouse reaches expected {host: samples}."""
    end = time.time() + timeout
    got = {}
    while time.time() < end:
        got = {h: stored_samples(ch, db, h) for h in expected}
        if got == expected:
            return got
        time.sleep(0.5)
    return got


def duplicates(ch, db):
    """Rows sharing (host, seq, key) in the deduplicated read of every window-keyed table, and the
    physical copies still waiting for a merge (informational)."""
    out = {}
    for table, key in (("ms_flow_rollup", "row"), ("ms_windows", "0"), ("ms_flows", "flow_id"),
                       ("ms_functions", "func_id")):
        dup = ch.scalar(f"SELECT count() FROM (SELECT host, seq, {key} AS k, count() AS c FROM {db}.{table} FINAL "
                        f"GROUP BY host, seq, k HAVING c > 1)")
        raw = ch.scalar(f"SELECT count() FROM {db}.{table}")
        final = ch.scalar(f"SELECT count() FROM {db}.{table} FINAL")
        out[table] = (dup, raw - final)
    return out


def missing_flows(ch, db):
    """(host, flow_id) pairs used by rollup rows (flow 0 = unattributed excluded) without a row in
    ms_flows."""
    used = set(ch.rows(f"SELECT DISTINCT host, toString(flow_id) FROM {db}.ms_flow_rollup FINAL WHERE flow_id != 0"))
    known = set(ch.rows(f"SELECT DISTINCT host, toString(flow_id) FROM {db}.ms_flows FINAL"))
    return used - known
