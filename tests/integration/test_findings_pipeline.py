"""Detector findings end to end: agent analyzers → uplink encoder → coordinator → ClickHouse
(server started here). The agent's window log is the truth: for every window, the rows stored
under its (host, seq) in ms_data_objects (the objects its rows refer to, with their names),
ms_remote_dram (every NUMA hotspot: flow, object, memory and CPU node, samples, Σ period) and
ms_false_sharing (every contended line: address, object, score, sharing kind, functions) must be
exactly the window's findings (ms_data_objects, a dictionary keyed by (host, object id), must hold
every object the windows' rows referred to, with its name, under a seq that sent it).

Both ways into ClickHouse (through the coordinator, and standalone: the agent writes itself), each
with two sources:
  - synthetic (--perf-mock --mock-data-addr --events=hitm): samples on a cache line of eight
    per-thread counters (false sharing) and on a table spread over a modelled two-node host, so
    all three tables fill on a machine without a PMU; skipped when the agent lacks the option;
  - the real kernel: page-fault samples (PERF_SAMPLE_ADDR) of a target faulting in its .bss
    arrays give data objects and NUMA hotspots from move_pages (local on a one-node host)."""
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import chrun  # noqa: E402
import clickhouse  # noqa: E402
import mstest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "targets", "pfobjects.c")
DB = "ms_h8_findings"
LINE_ADDR = 0x7E0000000000  # synth.h: the line of per-thread counters (SYNTH_DATA_BASE)


def agent_supports(flag):
    """The agent's --help lists flag."""
    r = subprocess.run([mstest.AGENT, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=30)
    return flag in r.stdout + r.stderr


def wait_stored(ch, host, windows, timeout=120):
    """Waits until every window and all of its findings are in ClickHouse (each table is its own
    insert, so ms_windows alone does not say the findings are there)."""
    seqs = {w["seq"] for w in windows}
    want = {"ms_remote_dram": sum(len(w["remote_dram"]) for w in windows),
            "ms_false_sharing": sum(len(w["false_sharing"]) for w in windows),
            "ms_data_objects": len({r[4] for w in windows for r in w["mem_rows"] if r[4]})}
    end = time.time() + timeout
    while True:
        got = {int(r[0]) for r in ch.rows(f"SELECT DISTINCT seq FROM {DB}.ms_windows FINAL WHERE host = '{host}'")}
        counts = {t: ch.scalar(f"SELECT count() FROM {DB}.{t} FINAL WHERE host = '{host}'") for t in want}
        if (seqs <= got and counts == want) or time.time() > end:
            return got
        time.sleep(0.5)


def by_seq(rows):
    out = {}
    for r in rows:
        out.setdefault(int(r[0]), []).append(tuple(r[1:]))
    return {k: sorted(v) for k, v in out.items()}


def check_findings(test, ch, host, windows):
    """Compares the three findings tables with the agent's window log, window by window.
    Returns (objects, hotspots, lines) stored."""
    seqs = {w["seq"] for w in windows}
    got = wait_stored(ch, host, windows)
    test.assertTrue(seqs <= got, f"{host}: windows not stored: {sorted(seqs - got)[:10]}")
    # ms_data_objects is a dictionary keyed by (host, object_id): the deduplicated read keeps one
    # row per object, under one of the seqs whose window sent it
    objs = {r[0]: (r[1], int(r[2])) for r in ch.rows(f"SELECT toString(object_id), name, seq FROM "
                                                     f"{DB}.ms_data_objects FINAL WHERE host = '{host}'")}
    rd = by_seq(ch.rows(f"SELECT seq, toString(flow_id), toString(object_id), mem_node, cpu_node, samples, cost "
                        f"FROM {DB}.ms_remote_dram FINAL WHERE host = '{host}'"))
    fs = by_seq(ch.rows(f"SELECT seq, toString(line_addr), toString(object_id), score, true_sharing, "
                        f"arrayStringConcat(arrayMap(x -> toString(x), func_ids), ','), "
                        f"arrayStringConcat(arrayMap(x -> toString(x), pids), ','), "
                        f"arrayStringConcat(arrayMap(x -> toString(x), offsets), ',') "
                        f"FROM {DB}.ms_false_sharing FINAL WHERE host = '{host}'"))
    test.assertTrue(set(rd) | set(fs) <= seqs, f"{host}: findings under seqs the agent never sent")
    want_obj = {}  # object id -> {seq whose rows refer to it: its name in that window}
    n_rd = n_fs = 0
    for w in windows:
        s = w["seq"]
        names = {o["id"]: (o["name"] or o["module"]) for o in w["objects"]}
        # the wire carries the objects the window's rows refer to
        for r in w["mem_rows"]:
            if r[4]:
                want_obj.setdefault(str(r[4]), {})[s] = names.get(r[4], "")
        want_rd = sorted((str(h["flow"]), str(h["object"]), h["mem_node"], h["cpu_node"], str(h["samples"]),
                          str(h["events"])) for h in w["remote_dram"])
        got_rd = [(f, o, int(m), int(c), n, str(int(float(cost)))) for f, o, m, c, n, cost in rd.get(s, [])]
        test.assertEqual(sorted(got_rd), want_rd, f"{host} seq {s}: ms_remote_dram")
        want_fs = []
        for line in w["false_sharing"]:
            written = sorted(line["written"])
            read_only = sorted(set(line["accessed"]) - set(written))
            want_fs.append((str(line["line"]), str(line["object"]), line["score"],
                            int(line["class"] in ("true", "mixed")), ",".join(str(f) for f in line["funcs"]),
                            str(line["pid"]), ",".join(str(o) for o in (written + read_only)[:16])))
        got_fs = [(a, o, float(sc), int(t), fu, p, off) for a, o, sc, t, fu, p, off in fs.get(s, [])]
        test.assertEqual(len(got_fs), len(want_fs), f"{host} seq {s}: ms_false_sharing rows")
        for g, e in zip(sorted(got_fs), sorted(want_fs)):
            test.assertEqual(g[:2] + g[3:], e[:2] + e[3:], f"{host} seq {s}: false-sharing line")
            test.assertAlmostEqual(g[2], e[2], delta=1e-6 * max(1.0, abs(e[2])))
        n_rd += len(want_rd)
        n_fs += len(want_fs)
    test.assertEqual(set(objs), set(want_obj), f"{host}: ms_data_objects ids")
    for oid, (name, seq) in objs.items():
        test.assertIn(seq, want_obj[oid], f"{host}: object {oid} stored under a seq that did not send it")
        test.assertEqual(name, want_obj[oid][seq], f"{host}: object {oid} name")
    return len(objs), n_rd, n_fs


@contextlib.contextmanager
def destination(test, ch, standalone):
    """Agent flags that deliver windows into ch: through a coordinator, or standalone (the agent
    writes ClickHouse itself, into the schema the coordinator creates)."""
    if standalone:
        r = mstest.run([chrun.COORD, "--init-schema", f"--clickhouse-endpoint={ch.endpoint}",
                        f"--clickhouse-database={DB}"], check=False)
        test.assertEqual(r.returncode, 0, r.stderr)
        yield [f"--clickhouse-endpoint={ch.endpoint}", f"--clickhouse-database={DB}", "--clickhouse-flush-ms=200"]
        return
    coord = chrun.Coordinator(ch, DB).start()
    try:
        yield [f"--coordinator-url={coord.url}"]
    finally:
        test.assertEqual(coord.stop(), 0, coord.log())


class FindingsPipeline(unittest.TestCase):
    def setUp(self):
        mstest.require_root(self)
        clickhouse.skip_unless_available()
        if not os.path.exists(chrun.COORD):
            raise unittest.SkipTest("coordinator not built")

    def synthetic(self, host, standalone):
        if not agent_supports("--mock-data-addr"):
            raise unittest.SkipTest("agent without mock_data_addr (synthetic data addresses not wired)")
        with clickhouse.Server() as ch, destination(self, ch, standalone) as dest:
            agent = mstest.Agent(*dest, f"--agent-id={host}", "--perf-mock", "--mock-data-addr", "--events=hitm",
                                 "--mock-rate=4000", "--mock-flows=20", "--window-ms=1000")
            agent.start()
            time.sleep(6)
            self.assertEqual(agent.stop(), 0, agent.log())
            windows = [w for w in agent.windows() if w["samples"]]
            self.assertGreaterEqual(len(windows), 3)
            # the analyzers found what the source put there
            lines = [l for w in windows for l in w["false_sharing"]]
            counters = [l for l in lines if l["line"] == LINE_ADDR]
            self.assertTrue(counters, "the counters line was never reported")
            self.assertTrue(all(l["class"] == "false" and len(l["written"]) == 8 for l in counters), counters[:2])
            # the table's lines belong to one thread each: HITM-contended, never shared
            others = {l["class"] for l in lines if l["line"] != LINE_ADDR}
            self.assertTrue(others <= {"contended"}, others)
            remote = [h for w in windows for h in w["remote_dram"] if h["mem_node"] != h["cpu_node"]]
            self.assertTrue(remote, "no remote hotspot on the two-node model")
            n_obj, n_rd, n_fs = check_findings(self, ch, host, windows)
            names = {r[0] for r in ch.rows(f"SELECT DISTINCT name FROM {DB}.ms_data_objects FINAL "
                                           f"WHERE host = '{host}'")}
            self.assertEqual(names, {"synth_thread_counters", "synth_table"})
            stored_remote = ch.scalar(f"SELECT count() FROM {DB}.ms_remote_dram FINAL WHERE host = '{host}' "
                                      f"AND mem_node != cpu_node")
            top = ch.rows(f"SELECT toString(line_addr), true_sharing, pids FROM {DB}.ms_false_sharing FINAL "
                          f"WHERE host = '{host}' ORDER BY score DESC LIMIT 1")
            print(f"\n  {len(windows)} windows: {n_obj} objects, {n_rd} hotspots ({stored_remote} remote), "
                  f"{n_fs} contended lines stored; hottest line {top}")
            self.assertEqual(int(top[0][0]), LINE_ADDR)
            self.assertEqual(int(top[0][1]), 0)
            self.assertGreater(n_fs, 0)
            self.assertGreater(stored_remote, 0)

    def page_faults(self, host, standalone):
        cc = shutil.which("gcc") or shutil.which("cc")
        if not cc:
            raise unittest.SkipTest("no C compiler to build the target program")
        tmp = tempfile.mkdtemp(prefix="ms-h8-pf-")
        exe = os.path.join(tmp, "pfobjects")
        mstest.run([cc, "-O1", "-g", "-fPIE", "-pie", "-o", exe, TARGET])
        with clickhouse.Server() as ch, destination(self, ch, standalone) as dest:
            agent = mstest.Agent(*dest, f"--agent-id={host}", "--events=page-faults", "--page-fault-period=4",
                                 "--sentinel-budget=200000", "--diagnostic-budget=200000", "--mode=sentinel",
                                 "--window-ms=500", tmp=tmp)
            agent.start(timeout=60)
            p = subprocess.Popen([exe, "4"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                p.stdout.readline()
                p.stdin.write("go\n")
                p.stdin.flush()
                self.assertTrue(p.stdout.readline().startswith("DONE"))
                time.sleep(1.5)  # the last windows are analysed while the process lives
                p.stdin.write("bye\n")
                p.stdin.flush()
                p.wait(timeout=30)
            finally:
                if p.poll() is None:
                    p.kill()
                p.stdin.close()
                p.stdout.close()
                rc = agent.stop()
            self.assertEqual(rc, 0, agent.log())
            windows = [w for w in agent.windows() if w["samples"]]
            n_obj, n_rd, n_fs = check_findings(self, ch, host, windows)
            names = {r[0] for r in ch.rows(f"SELECT DISTINCT name FROM {DB}.ms_data_objects FINAL "
                                           f"WHERE host = '{host}'")}
            print(f"\n  {len(windows)} windows: {n_obj} objects, {n_rd} hotspots, {n_fs} lines stored; "
                  f"objects include {sorted(n for n in names if n.startswith('pf_'))}")
            self.assertTrue({"pf_alpha", "pf_beta"} <= names, sorted(names)[:20])
            self.assertGreater(n_rd, 0, "no NUMA hotspot stored (move_pages never answered?)")
            self.assertEqual(n_fs, 0)  # page faults carry no access kind
        shutil.rmtree(tmp, ignore_errors=True)

    def test_synthetic_via_coordinator(self):
        self.synthetic("h8-synth", standalone=False)

    def test_synthetic_standalone(self):
        self.synthetic("h8-synth-solo", standalone=True)

    def test_page_faults_via_coordinator(self):
        self.page_faults("h8-pf", standalone=False)

    def test_page_faults_standalone(self):
        self.page_faults("h8-pf-solo", standalone=True)


if __name__ == "__main__":
    mstest.main()
