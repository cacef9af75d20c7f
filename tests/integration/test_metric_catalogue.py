"""backend/prometheus_metrics.yaml against the real daemons, both ways: a real agent (synthetic
source, uplink to a real coordinator, guide names and a latency file so that its optional families
show up) and a real coordinator (local window store; then again writing a real ClickHouse when one
is installed). Every exported family must be in the catalogue with the same type and label names;
every non-optional family must be exported; every optional family must appear in the mode its
`when:` names (only `contention` needs PMU hardware and is not forced here)."""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import clickhouse  # noqa: E402
import mstest  # noqa: E402

CATALOGUE = os.path.join(mstest.SRC, "backend", "prometheus_metrics.yaml")
COORD = os.path.join(mstest.BUILD, "coordinator", "micro_sentinel_coordinator")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
WHEN = {"guide_names", "latency_file", "contention", "analyzed_window", "local_store", "clickhouse", "standalone"}
NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def families(text):
    """{name: {"type", "help", "labels"}} of a Prometheus text exposition; sample lines are folded
    into their family (histogram/summary suffixes included), `le`/`quantile` are not labels."""
    fam = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            parts = line.split(" ", 3)
            fam.setdefault(parts[2], {"labels": set()})["help"] = parts[3] if len(parts) > 3 else ""
        elif line.startswith("# TYPE "):
            _, _, n, t = line.split(" ")
            fam.setdefault(n, {"labels": set()})["type"] = t
        elif line and not line.startswith("#"):
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? \S+$", line)
            assert m, f"unparsable sample line {line!r}"
            n = m.group(1)
            base = n if n in fam else re.sub(r"_(sum|count|bucket)$", "", n)
            assert base in fam, f"sample {line!r} has no # TYPE"
            labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or ""))
            fam[base]["labels"] |= labels - {"le", "quantile"}
    return fam


def load_catalogue():
    with open(CATALOGUE) as f:
        return yaml.safe_load(f)


def compare(test, component, exported, modes):
    """exported ⊆ catalogue (same type, labels) and catalogue ∩ modes ⊆ exported."""
    cat = {e["name"]: e for e in load_catalogue()[component]}
    for name, f in sorted(exported.items()):
        test.assertTrue(name in cat, f"{component} exports {name} ({f.get('type')}: {f.get('help')!r}) but "
                      f"backend/prometheus_metrics.yaml does not list it: add it there")
        e = cat[name]
        test.assertEqual(f.get("type"), e["type"], f"{name}: exported type vs catalogue")
        # a family with no series this scrape has no labels to compare
        if f["labels"]:
            test.assertEqual(sorted(f["labels"]), sorted(e["labels"]), f"{name}: exported labels vs catalogue")
        test.assertTrue(f.get("help"), f"{name} exported without # HELP")
    # a group published together: all of it or none of it
    group = [n for n, e in cat.items() if e.get("when") == "analyzed_window"]
    present = [n for n in group if n in exported]
    test.assertIn(len(present), (0, len(group)), f"{component}: only {present} of the analyzed_window group {group}")
    for name, e in sorted(cat.items()):
        if e.get("status") == "planned":
            continue
        if not e.get("optional") or e.get("when") in modes:
            test.assertTrue(name in exported, f"backend/prometheus_metrics.yaml lists {name} "
                          f"({'when ' + e['when'] if e.get('when') else 'always'}) but the {component} "
                          f"does not export it (modes of this run: {sorted(modes)})")


def wait(pred, timeout, what):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = pred()
            if last:
                return last
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timeout waiting for {what} (last: {last!r})")


def value(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class Coordinator:
    def __init__(self, *extra):
        self.tmp = tempfile.mkdtemp(prefix="ms-cat-coord-")
        self.port, self.metrics_port, self.grpc_port = free_port(), free_port(), free_port()
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.log_path = os.path.join(self.tmp, "coord.log")
        self.args = [COORD, f"--listen-url={self.url}", f"--state-dir={self.tmp}/state",
                     f"--metrics-port={self.metrics_port}", f"--grpc-port={self.grpc_port}"] + list(extra)

    def start(self):
        self.err = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.err)
        try:
            wait(lambda: "COORD-READY" in self.log() or self.proc.poll() is not None, 30, "COORD-READY")
        except AssertionError:
            self.proc.kill()
            self.proc.wait()
            raise
        assert self.proc.poll() is None, "coordinator exited:\n" + self.log()
        return self

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        rc = self.proc.wait(60)
        self.err.close()
        return rc


class Catalogue(unittest.TestCase):
    def test_catalogue_well_formed(self):
        cat = load_catalogue()
        self.assertEqual(cat.get("version"), 1)
        for comp in ("agent", "coordinator"):
            names = [e["name"] for e in cat[comp]]
            self.assertEqual(len(names), len(set(names)), f"{comp}: duplicate names")
            for e in cat[comp]:
                self.assertTrue(NAME.match(e["name"]) and e["name"].startswith("ms_"), e)
                self.assertIn(e["type"], TYPES, e)
                self.assertIsInstance(e["labels"], list, e)
                self.assertTrue(isinstance(e.get("help"), str) and e["help"].strip(), e)
                self.assertLessEqual(set(e) - {"name", "type", "labels", "help", "optional", "when", "status"},
                                     set(), e)
                if e.get("optional") and e.get("status") != "planned":
                    self.assertIn(e.get("when"), WHEN, e)
                if e["type"] == "counter":
                    self.assertTrue(e["name"].endswith("_total"), e)
        # SPEC section 13 names that alerts and dashboards rely on are all in the catalogue
        every = {e["name"] for c in ("agent", "coordinator") for e in cat[c]}
        for n in ("ms_samples_total", "ms_unattributed_samples_total", "ms_samples_processed_total",
                  "ms_windows_closed_total", "ms_events_live", "ms_uplink_windows_sent_total",
                  "ms_uplink_windows_acked_total", "ms_uplink_windows_dropped_total", "ms_uplink_spool_windows",
                  "ms_uplink_connected", "ms_coord_windows_accepted_total", "ms_coord_windows_duplicate_total",
                  "ms_coord_windows_rejected_total", "ms_coord_agents", "ms_coord_ch_rows_inserted_total",
                  "ms_coord_ch_spool_bytes", "ms_coord_fleet_triggers_total", "ms_agent_mode",
                  "ms_sampling_throttled", "ms_flow_micromiss_rate"):
            self.assertIn(n, every)

    def test_agent_and_coordinator_local_store(self):
        coord = Coordinator().start()
        tmp = tempfile.mkdtemp(prefix="ms-cat-agent-")
        latency = os.path.join(tmp, "latency_us")
        with open(latency, "w") as f:
            f.write("250\n")
        mport = free_port()
        agent = mstest.Agent("--perf-mock", "--mock-rate=20000", "--window-ms=300", f"--coordinator-url={coord.url}",
                             "--agent-id=catalogue-test", "--metrics-guide-names", f"--anomaly-latency-file={latency}",
                             "--anomaly-interval-ms=100", f"--metrics-port={mport}",
                             tmp=tmp)
        try:
            agent.start(timeout=30)
        except BaseException:
            if agent.proc:
                agent.proc.kill()
                agent.proc.wait()
            coord.stop()
            raise
        try:
            # an agent build without the uplink (no UPLINK-INIT) exports its families all the same
            uplink = "UPLINK-INIT" in agent.log()

            def ready():
                t = scrape(mport)
                return (value(t, "ms_windows_closed_total") or 0) >= 3 and (
                    not uplink or (value(t, "ms_uplink_windows_acked_total") or 0) >= 1) and (
                    "ms_anomaly_latency_seconds " in t) and t
            text = wait(ready, 60, "three windows, an acked window and a latency reading")
            compare(self, "agent", families(text), {"guide_names", "latency_file"})
            ctext = wait(lambda: (not uplink or (value(scrape(coord.metrics_port), "ms_coord_windows_accepted_total")
                                                 or 0) >= 1) and scrape(coord.metrics_port), 30, "an accepted window")
            compare(self, "coordinator", families(ctext), {"local_store"})
        finally:
            self.assertEqual(agent.stop(), 0, agent.log())
            self.assertEqual(coord.stop(), 0, coord.log())

    def test_coordinator_clickhouse(self):
        clickhouse.skip_unless_available()
        with clickhouse.Server() as ch:
            coord = Coordinator(f"--clickhouse-endpoint={ch.endpoint}", "--clickhouse-database=ms_catalogue",
                                "--clickhouse-flush-ms=200").start()
            try:
                text = wait(lambda: (value(scrape(coord.metrics_port), "ms_coord_ch_schema_version") or 0) >= 1
                            and scrape(coord.metrics_port), 60, "the schema migrated")
                compare(self, "coordinator", families(text), {"clickhouse"})
            finally:
                self.assertEqual(coord.stop(), 0, coord.log())

    def test_agent_standalone(self):
        """An agent writing to ClickHouse itself serves its writer's ms_ch_* families, and
        /healthz on the metrics port (a probe needs no control port)."""
        clickhouse.skip_unless_available()
        with clickhouse.Server() as ch:
            r = mstest.run([COORD, "--init-schema", f"--clickhouse-endpoint={ch.endpoint}",
                            "--clickhouse-database=ms_cat_solo"], check=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            mport = free_port()
            agent = mstest.Agent("--perf-mock", "--mock-rate=20000", "--window-ms=300", "--agent-id=catalogue-solo",
                                 f"--clickhouse-endpoint={ch.endpoint}", "--clickhouse-database=ms_cat_solo",
                                 "--clickhouse-flush-ms=200", f"--metrics-port={mport}", "--control-port=0")
            agent.start(timeout=30)
            try:
                text = wait(lambda: (value(scrape(mport), 'ms_ch_windows_total{result="durable"}') or 0) >= 2
                            and scrape(mport), 60, "two durable windows")
                compare(self, "agent", families(text), {"standalone"})
                with urllib.request.urlopen(f"http://127.0.0.1:{mport}/healthz", timeout=5) as resp:
                    self.assertEqual(resp.status, 200)
                    self.assertEqual(json.loads(resp.read())["status"], "ok")
            finally:
                self.assertEqual(agent.stop(), 0, agent.log())


if __name__ == "__main__":
    mstest.main()
