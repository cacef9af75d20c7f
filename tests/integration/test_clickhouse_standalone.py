"""Agent standalone mode (issue 6, the operations guide's single-host behaviour): with
clickhouse_endpoint set and no coordinator, a synthetic agent inserts its windows into the same
tables with the same writer. The schema comes from the coordinator's --init-schema. Afterwards
Σ samples in ms_flow_rollup (FINAL) equals Σ samples of the agent's windows, every window seq
is stored, flows resolve, and the rows are keyed like the coordinator's (no duplicates)."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import chrun  # noqa: E402
import clickhouse  # noqa: E402
import mstest  # noqa: E402

DB = "ms_standalone"


class ClickHouseStandalone(unittest.TestCase):
    def setUp(self):
        clickhouse.skip_unless_available()
        if not os.path.exists(chrun.COORD):
            raise unittest.SkipTest("coordinator not built (needed for --init-schema)")

    def test_synthetic_agent_writes_directly(self):
        with clickhouse.Server() as ch:
            r = mstest.run([chrun.COORD, "--init-schema", f"--clickhouse-endpoint={ch.endpoint}",
                            f"--clickhouse-database={DB}"], check=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            agent = mstest.Agent("--perf-mock", "--mock-rate=20000", "--mock-flows=100", "--window-ms=500",
                                 "--agent-id=standalone-1", f"--clickhouse-endpoint={ch.endpoint}",
                                 f"--clickhouse-database={DB}", "--clickhouse-flush-ms=200")
            agent.start()
            time.sleep(8)
            self.assertEqual(agent.stop(), 0, agent.log())
            samples, _emitted, seqs = chrun.agent_totals(agent)
            self.assertGreater(samples, 0)
            got = chrun.wait_stored(ch, DB, {"standalone-1": samples}, timeout=30)
            self.assertEqual(got, {"standalone-1": samples})
            stored = {int(r[0]) for r in ch.rows(f"SELECT DISTINCT seq FROM {DB}.ms_windows FINAL")}
            self.assertEqual(stored, seqs)
            self.assertEqual(chrun.missing_flows(ch, DB), set())
            for table, (dup, _raw) in chrun.duplicates(ch, DB).items():
                self.assertEqual(dup, 0, table)
            agents = ch.rows(f"SELECT host FROM {DB}.ms_agents FINAL")
            self.assertEqual(agents, [("standalone-1",)])


if __name__ == "__main__":
    mstest.main()
