"""msctl top flows|functions|lines and msctl flame against a real ClickHouse (18.16) filled by the
real chain: a synthetic agent (50 flows with tuples) and a sampling agent (cpu-clock, kernel and
user stacks, CPU load) send windows to a coordinator that writes ClickHouse. Once everything the
agents produced is stored, every figure msctl prints (tables and --json) is compared with direct
SQL on the same server (FINAL): per flow and per function sums, totals, shares, tuples, names,
the filters (--flow, --hosts, --event); flame's folded lines sum to the selection. Then the
failure paths: bad arguments exit 2 with a message, an unreachable server exits 6, a wrong
password 5, an unknown database 4, no matching samples 4 (JSON still printed), a password file
others can read is refused, `top lines` explains why it cannot (exit 1)."""
import ipaddress
import json
import os
import re
import socket
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
MSCTL = os.path.join(mstest.BUILD, "coordinator", "msctl")
DB = "ms_h2top"
RUN_S = 15
READER, READER_PW = "h2reader", "h2-secret-pw"


class MsctlTop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ch = None
        if os.geteuid() != 0 or not clickhouse.available() or not os.path.exists(MSCTL):
            return
        cls.ch = clickhouse.Server(users={READER: READER_PW}).start()
        cls.coord = None
        try:
            cls.grpc_port = clickhouse.free_ports(1)[0]
            cls.coord = chrun.Coordinator(cls.ch, DB, f"--grpc-port={cls.grpc_port}").start()
            cls.fill()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def fill(cls):
        synth = mstest.Agent(f"--coordinator-url={cls.coord.url}", "--agent-id=h2-synth", "--perf-mock",
                             "--mock-rate=20000", "--mock-flows=50", "--window-ms=500",
                             "--labels=role=h2synth,zone=a")
        real = mstest.Agent(f"--coordinator-url={cls.coord.url}", "--agent-id=h2-real", "--events=cpu-clock",
                            "--sample-freq=499", "--stacks=both", "--window-ms=500")
        agents = [(synth, "h2-synth"), (real, "h2-real")]
        load = None
        try:
            synth.start()
            real.start()
            load = subprocess.Popen([mstest.PY, os.path.join(HERE, "burn.py"), "1", str(RUN_S)])
            time.sleep(RUN_S)
        finally:
            if load:
                load.kill()
                load.wait()
            codes = [a.stop() if a.proc else None for a, _ in agents]
        assert codes == [0, 0], (codes, synth.log()[-2000:], real.log()[-2000:])
        expected = {h: chrun.agent_totals(a)[0] for a, h in agents}
        got = chrun.wait_stored(cls.ch, DB, expected)
        assert got == expected, (got, expected)
        cls.expected = expected

    @classmethod
    def tearDownClass(cls):
        if cls.ch:
            try:
                if cls.coord:
                    cls.coord.stop()
            finally:
                cls.ch.stop()
                cls.ch.cleanup()

    def setUp(self):
        mstest.require_root(self)
        clickhouse.skip_unless_available()
        if not os.path.exists(MSCTL):
            raise unittest.SkipTest("msctl not built")

    # ---------------------------------------------------------------- helpers

    def msctl(self, *args, url=None, db=DB):
        cmd = [MSCTL, f"--clickhouse={url or self.ch.endpoint}", f"--database={db}"] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def json_of(self, *args):
        rc, out, err = self.msctl(*args, "--json")
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def sql_sums(self, key, where="1"):
        rows = self.ch.rows(f"SELECT {key}, sum(samples) FROM {DB}.ms_flow_rollup FINAL WHERE {where} GROUP BY {key}")
        return {int(k): int(s) for k, s in rows}

    def total(self, where="1"):
        return int(self.ch.scalar(f"SELECT sum(samples) FROM {DB}.ms_flow_rollup FINAL WHERE {where}") or 0)

    # ---------------------------------------------------------------- figures

    def test_top_flows_json_matches_sql(self):
        doc = self.json_of("top", "flows", "--since=1h", "--limit=1000")
        sums = self.sql_sums("flow_id")
        self.assertEqual(doc["total_samples"], sum(self.expected.values()))
        self.assertEqual(doc["total_samples"], self.total())
        self.assertLessEqual(len(sums), 1000)
        self.assertEqual(doc["shown_samples"], doc["total_samples"])
        self.assertEqual({f["id"]: f["samples"] for f in doc["flows"]}, sums)
        samples = [f["samples"] for f in doc["flows"]]
        self.assertEqual(samples, sorted(samples, reverse=True))
        for f in doc["flows"]:
            self.assertEqual(f["id_hex"], "%016x" % f["id"])
            self.assertAlmostEqual(f["share"], f["samples"] / doc["total_samples"], places=9)
        with_tuple = [f for f in doc["flows"] if "saddr" in f]
        self.assertGreaterEqual(len(with_tuple), 50, "the synthetic agent's flows have tuples")
        for f in with_tuple[:10]:
            row = self.ch.rows(f"SELECT family, proto, hex(saddr), hex(daddr), sport, dport, toString(direction) "
                               f"FROM {DB}.ms_flows FINAL WHERE flow_id = {f['id']} AND has_tuple = 1 LIMIT 1")[0]
            fam, proto, sa, da, sport, dport, dirn = row
            addr = (lambda h: str(ipaddress.IPv6Address(bytes.fromhex(h)).ipv4_mapped
                                  or ipaddress.IPv6Address(bytes.fromhex(h))))
            self.assertEqual((f["family"], f["proto"], f["saddr"], f["daddr"], f["sport"], f["dport"], f["dir"]),
                             (int(fam), int(proto), addr(sa), addr(da), int(sport), int(dport), dirn))
            br = (lambda a: a) if int(fam) == 4 else (lambda a: f"[{a}]")
            self.assertIn(f"{br(addr(sa))}:{sport} -> {br(addr(da))}:{dport}", f["tuple"])
        print(f"\ntop flows: {len(doc['flows'])} flows, Σ {doc['total_samples']} samples = SQL")

    def test_top_flows_table(self):
        rc, out, err = self.msctl("top", "flows", "--since=1h", "--limit=5")
        self.assertEqual(rc, 0, err)
        lines = out.strip().splitlines()
        self.assertTrue(lines[0].startswith("FLOW"), out)
        rows = [ln.split(None, 3) for ln in lines[1:-1]]
        self.assertEqual(len(rows), 5)
        sums = self.sql_sums("flow_id")
        top5 = sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        self.assertEqual([(int(r[0], 16), int(r[1])) for r in rows], top5)
        total = self.total()
        for r in rows:
            self.assertAlmostEqual(float(r[2].rstrip("%")), 100.0 * int(r[1]) / total, delta=0.006)
        self.assertIn(f"total {total} samples", lines[-1])
        self.assertIn(f"5 rows shown hold {sum(s for _, s in top5)}", lines[-1])

    def test_top_functions_matches_sql(self):
        doc = self.json_of("top", "functions", "--since=1h", "--limit=1000")
        sums = self.sql_sums("func_id")
        self.assertEqual(doc["total_samples"], self.total())
        shown = {f["id"]: f["samples"] for f in doc["functions"]}
        self.assertEqual(len(shown), min(1000, len(sums)))
        self.assertEqual(shown, {i: sums[i] for i in shown})
        rest = [s for i, s in sums.items() if i not in shown]
        self.assertLessEqual(max(rest, default=0), min(shown.values()), "the shown rows are the top ones")
        self.assertEqual(doc["shown_samples"], sum(shown.values()))
        names = {int(i): (n, m) for i, n, m in self.ch.rows(
            f"SELECT func_id, any(name), any(module) FROM {DB}.ms_functions FINAL GROUP BY func_id")}
        for f in doc["functions"]:
            self.assertEqual((f["name"], f["module"]), names.get(f["id"], ("", "")))
        named = [f for f in doc["functions"] if f["name"] and f["name"] != "[unknown]"]
        self.assertTrue(named, "the sampling agent's functions have names")
        rc, out, err = self.msctl("top", "functions", "--since=1h", "--limit=3")
        self.assertEqual(rc, 0, err)
        lines = out.strip().splitlines()
        self.assertTrue(lines[0].lstrip().startswith("SAMPLES"), out)
        self.assertEqual([int(ln.split()[0]) for ln in lines[1:4]], [f["samples"] for f in doc["functions"][:3]])
        print(f"\ntop functions: {len(doc['functions'])} of {len(sums)} functions shown, e.g. "
              f"{named[0]['module']} {named[0]['name']}")

    def test_filters_flow_host_event(self):
        sums = self.sql_sums("flow_id", "flow_id != 0")
        flow = max(sums, key=sums.get)
        for spelling in ("%016x" % flow, "0x%x" % flow, str(flow)):
            doc = self.json_of("top", "functions", f"--flow={spelling}", "--since=1h", "--limit=1000")
            self.assertEqual(doc["total_samples"], sums[flow], spelling)
            self.assertEqual({f["id"]: f["samples"] for f in doc["functions"]},
                             self.sql_sums("func_id", f"flow_id = {flow}"))
        doc = self.json_of("top", "flows", "--flow=%016x" % flow, "--since=1h")
        self.assertEqual([(f["id"], f["samples"]) for f in doc["flows"]], [(flow, sums[flow])])
        doc = self.json_of("top", "flows", "--hosts=h2-synth", "--since=1h", "--limit=1000")
        self.assertEqual(doc["total_samples"], self.expected["h2-synth"])
        self.assertEqual(doc["total_samples"], self.total("host = 'h2-synth'"))
        doc = self.json_of("top", "flows", "--hosts=h2-synth,h2-real", "--since=1h")
        self.assertEqual(doc["total_samples"], sum(self.expected.values()))
        coord = f"--coordinator=127.0.0.1:{self.grpc_port}"  # --label: the registry picks the agents
        doc = self.json_of("top", "flows", coord, "--label=role=h2synth", "--label=zone=a", "--since=1h")
        self.assertEqual(doc["total_samples"], self.expected["h2-synth"])
        doc = self.json_of("flame", coord, "--label=zone=a", "--hosts=h2-synth,h2-real", "--since=1h")
        self.assertEqual(sum(s["samples"] for s in doc["stacks"]), self.expected["h2-synth"])
        for sel in (["--label=zone=b"], ["--label=ro'le=x"], ["--label=zone=a", "--hosts=h2-real"]):
            rc, out, err = self.msctl("top", "flows", coord, *sel, "--since=1h")
            self.assertEqual((rc, out), (4, ""), err)
            self.assertIn("0 agents match the selector", err)
        rc, out, err = self.msctl("top", "flows", f"--coordinator=127.0.0.1:{clickhouse.free_ports(1)[0]}",
                                  "--timeout-ms=2000", "--label=zone=a")
        self.assertEqual(rc, 6, err)
        doc = self.json_of("top", "functions", "--event=cpu-clock", "--since=1h")
        self.assertEqual(doc["total_samples"], self.total("event = 'cpu-clock'"))
        self.assertGreater(doc["total_samples"], 0)

    def test_flame_sums(self):
        sums = self.sql_sums("flow_id")
        for args, where in ((["--since=1h"], "1"),
                            (["--flow=%016x" % max(sums, key=sums.get), "--since=1h"],
                             f"flow_id = {max(sums, key=sums.get)}"),
                            (["--since=1h", "--hosts=h2-real"], "host = 'h2-real'")):
            rc, out, err = self.msctl("flame", *args)
            self.assertEqual(rc, 0, err)
            total, seen = 0, set()
            for ln in out.splitlines():
                m = re.fullmatch(r"([^;\n]+);([^;\n]+) (\d+)", ln)
                self.assertIsNotNone(m, f"not a folded line: {ln!r}")
                self.assertNotIn(ln.rsplit(" ", 1)[0], seen, "one line per stack")
                seen.add(ln.rsplit(" ", 1)[0])
                total += int(m.group(3))
            self.assertEqual(total, self.total(where), args)
            doc = self.json_of("flame", *args)
            self.assertEqual(sum(s["samples"] for s in doc["stacks"]), self.total(where))
            self.assertEqual(doc["total_samples"], self.total(where))
        print(f"\nflame: {len(seen)} folded lines for h2-real, e.g. {sorted(seen)[0]!r}")

    def test_top_lines_explains(self):
        rc, out, err = self.msctl("top", "lines")
        self.assertEqual(rc, 1)
        self.assertIn("source lines are not stored", err)
        self.assertEqual(out, "")

    # ---------------------------------------------------------------- failures

    def test_bad_input_is_usage(self):
        bad = [["top", "flows", "--since=5x"], ["top", "flows", "--since=0s"], ["top", "flows", "--since=10"],
               ["top", "flows", "--flow=zz"], ["top", "flows", "--flow=1 OR 1=1"],
               ["top", "flows", "--flow=18446744073709551616"], ["top", "flows", "--limit=5000"],
               ["top", "flows", "--event=a'b"], ["top", "flows", "--hosts=a b"], ["top", "bogus"], ["top"],
               ["flame", "extra"], ["top", "flows", "--label==b"]]
        for args in bad:
            rc, out, err = self.msctl(*args)
            self.assertEqual(rc, 2, f"{args}: {rc} {err}")
            self.assertTrue(err.startswith("msctl: "), f"{args}: {err!r}")
            self.assertEqual(out, "", args)
        rc, _, err = self.msctl("top", "flows", db="x;DROP TABLE y")
        self.assertEqual(rc, 2, err)
        self.assertIn("bad value for '--database", err)
        rc, _, err = self.msctl("top", "flows", url="ftp://127.0.0.1:1")
        self.assertEqual(rc, 2, err)
        rc, _, err = self.msctl("top", "flows", "--event=x' OR '1'='1")
        self.assertEqual(rc, 2, err)
        self.assertEqual(self.ch.scalar(f"SELECT count() FROM system.tables WHERE database = '{DB}' "
                                        "AND name = 'ms_flow_rollup'"), 1)

    def test_unreachable_auth_not_found_empty(self):
        port = clickhouse.free_ports(1)[0]
        rc, out, err = self.msctl("top", "flows", url=f"http://127.0.0.1:{port}")
        self.assertEqual(rc, 6, err)
        self.assertIn("Connection refused", err)
        with socket.socket() as silent:  # accepts the connection, never answers
            silent.bind(("127.0.0.1", 0))
            silent.listen(4)
            rc, out, err = self.msctl("top", "flows", "--timeout-ms=1000", url=f"http://127.0.0.1:{silent.getsockname()[1]}")
        self.assertEqual(rc, 6, err)
        self.assertIn("timed out", err)
        rc, _, err = self.msctl("top", "flows", db="nope_db")
        self.assertEqual(rc, 4, err)
        self.assertIn("database or table not found", err)
        rc, out, err = self.msctl("top", "flows", "--flow=0x1234")
        self.assertEqual((rc, out), (4, ""), err)
        self.assertIn("no samples match", err)
        rc, out, err = self.msctl("top", "functions", "--flow=0x1234", "--json")
        self.assertEqual(rc, 4, err)
        self.assertEqual(json.loads(out)["functions"], [])
        with tempfile.TemporaryDirectory() as d:
            pw = os.path.join(d, "pw")
            with open(pw, "w") as f:
                f.write(READER_PW + "\n")
            os.chmod(pw, 0o600)
            rc, out, err = self.msctl("top", "flows", f"--clickhouse-user={READER}", f"--clickhouse-password-file={pw}",
                                      "--since=1h")
            self.assertEqual(rc, 0, err)
            os.chmod(pw, 0o644)
            rc, out, err = self.msctl("top", "flows", f"--clickhouse-user={READER}", f"--clickhouse-password-file={pw}")
            self.assertEqual(rc, 2, err)
            self.assertIn("others may read or write it", err)
            os.chmod(pw, 0o600)
            with open(pw, "w") as f:
                f.write("wrong\n")
            rc, out, err = self.msctl("top", "flows", f"--clickhouse-user={READER}", f"--clickhouse-password-file={pw}")
            self.assertEqual(rc, 5, err)
            rc, out, err = self.msctl("top", "flows", f"--clickhouse-password-file={d}/missing")
            self.assertEqual(rc, 2, err)


if __name__ == "__main__":
    mstest.main()
