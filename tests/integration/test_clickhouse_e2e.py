"""Central ClickHouse ingest, end to end (issue 6): two agents — one sampling the real kernel
(cpu-clock, with CPU load), one synthetic — send windows to the coordinator for 60 s, which
batches them into a ClickHouse server started here. Afterwards, read deduplicated (FINAL):
  - Σ samples in ms_flow_rollup per host == Σ samples in that agent's windows (its window log),
    Σ emitted in ms_windows == Σ emitted the agent counted, and every window seq is stored;
  - every flow id used by a rollup row has a row in ms_flows;
  - no (host, seq, key) appears twice.
It also reports the physical copies a merge has not collapsed yet (informational)."""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import chrun  # noqa: E402
import clickhouse  # noqa: E402
import mstest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_S = 60
DB = "ms_e2e"


def start_agents(coord):
    real = mstest.Agent(f"--coordinator-url={coord.url}", "--agent-id=e2e-real", "--events=cpu-clock",
                        "--sample-freq=499", "--window-ms=1000")
    synth = mstest.Agent(f"--coordinator-url={coord.url}", "--agent-id=e2e-synth", "--perf-mock",
                         "--mock-rate=20000", "--mock-flows=200", "--window-ms=1000")
    real.start()
    synth.start()
    return real, synth


def verify(test, ch, coord, agents):
    expected, emitted, seqs = {}, {}, {}
    for a, host in agents:
        expected[host], emitted[host], seqs[host] = chrun.agent_totals(a)
        test.assertGreater(expected[host], 0, f"{host} produced no samples")
    got = chrun.wait_stored(ch, DB, expected)
    print(f"\nΣ samples per host: agents {expected}, ClickHouse (FINAL) {got}")
    test.assertEqual(got, expected)
    for host in expected:
        stored_seqs = {int(r[0]) for r in ch.rows(f"SELECT DISTINCT seq FROM {DB}.ms_windows FINAL "
                                                  f"WHERE host = '{host}'")}
        test.assertEqual(stored_seqs, seqs[host], f"{host}: window seqs lost or invented")
        st_emitted = ch.scalar(f"SELECT sum(emitted) FROM {DB}.ms_windows FINAL WHERE host = '{host}'")
        test.assertEqual(st_emitted, emitted[host], f"{host}: Σ emitted")
        print(f"{host}: {len(seqs[host])} windows, Σ samples {expected[host]}, Σ emitted {emitted[host]}")
    missing = chrun.missing_flows(ch, DB)
    test.assertEqual(missing, set(), "flow ids in ms_flow_rollup without a row in ms_flows")
    dups = chrun.duplicates(ch, DB)
    print("duplicates (deduplicated read, physical copies awaiting merge):", dups)
    for table, (dup, _raw) in dups.items():
        test.assertEqual(dup, 0, f"{table}: duplicate (host, seq, key) in the deduplicated read")
    inserted = coord.metric("ms_coord_ch_rows_inserted_total")
    test.assertGreater(inserted, 0)
    return expected


class ClickHouseEndToEnd(unittest.TestCase):
    def setUp(self):
        mstest.require_root(self)
        clickhouse.skip_unless_available()
        if not os.path.exists(chrun.COORD):
            raise unittest.SkipTest("coordinator not built")

    def test_two_agents_60s(self):
        with clickhouse.Server() as ch:
            coord = chrun.Coordinator(ch, DB).start()
            agents = []
            load = None
            try:
                real, synth = start_agents(coord)
                agents = [(real, "e2e-real"), (synth, "e2e-synth")]
                load = subprocess.Popen([mstest.PY, os.path.join(HERE, "burn.py"), "1", str(RUN_S)])
                time.sleep(RUN_S)
            finally:
                if load:
                    load.kill()
                    load.wait()
                for a, _ in agents:
                    self.assertEqual(a.stop(), 0, a.log())
            try:
                verify(self, ch, coord, agents)
                # every agent's Hello is on record in ms_agents (one row per Hello)
                hellos = {r[0]: r[1:] for r in ch.rows(
                    f"SELECT host, count(), max(synthetic), max(ncpu), any(hook_tier), any(version) "
                    f"FROM {DB}.ms_agents GROUP BY host")}
                print("ms_agents:", hellos)
                self.assertEqual(set(hellos), {"e2e-real", "e2e-synth"})
                self.assertEqual(hellos["e2e-synth"][1], "1")
                self.assertEqual(hellos["e2e-real"][1], "0")
                self.assertEqual(int(hellos["e2e-real"][2]), os.cpu_count())
                self.assertTrue(hellos["e2e-real"][4], "the agent version is stored")
                self.assertEqual(coord.metric("ms_coord_hellos_unstored_total"), 0)
                tables = ch.rows(f"SELECT version FROM {DB}.ms_schema_migrations FINAL ORDER BY version")
                self.assertEqual([t[0] for t in tables], ["1", "2"])
            finally:
                self.assertEqual(coord.stop(), 0, coord.log())


if __name__ == "__main__":
    mstest.main()
