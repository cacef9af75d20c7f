"""ClickHouse away for 30 s in the middle of a 60 s run (issue 6, SPEC §10): the coordinator
keeps acking windows into its writer's on-disk spool while ClickHouse is stopped, then replays
the spool in order once the same server (same data directory and ports) is back. After the
spool drains the storage contract holds exactly as without the outage: Σ samples per host in
ms_flow_rollup (FINAL) == Σ samples in the agents' windows, every seq stored, every flow in
ms_flows, and no duplicate (host, seq, key)."""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import chrun  # noqa: E402
import clickhouse  # noqa: E402
import mstest  # noqa: E402
import test_clickhouse_e2e as e2e  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BEFORE_S, OUTAGE_S, AFTER_S = 15, 30, 15


class ClickHouseOutage(unittest.TestCase):
    def setUp(self):
        mstest.require_root(self)
        clickhouse.skip_unless_available()
        if not os.path.exists(chrun.COORD):
            raise unittest.SkipTest("coordinator not built")

    def test_outage_30s(self):
        ch = clickhouse.Server().start()
        try:
            coord = chrun.Coordinator(ch, e2e.DB).start()
            agents = []
            load = subprocess.Popen([mstest.PY, os.path.join(HERE, "burn.py"), "1",
                                     str(BEFORE_S + OUTAGE_S + AFTER_S)])
            try:
                real, synth = e2e.start_agents(coord)
                agents = [(real, "e2e-real"), (synth, "e2e-synth")]
                time.sleep(BEFORE_S)
                t_term = time.time()
                ch.stop()  # SIGTERM; the server finishes in-flight requests (measured: up to ~15 s)
                t0 = time.time()  # the process is gone: the outage counts from here
                t_stopped = t0 - t_term
                time.sleep(OUTAGE_S / 2)
                spooled_mid = coord.metric("ms_coord_ch_rows_spooled_total")
                outage = coord.metric("ms_coord_ch_outage")
                time.sleep(max(0, OUTAGE_S - (time.time() - t0)))
                ch.start()
                print(f"\nClickHouse away {time.time() - t0:.1f} s (its shutdown took {t_stopped:.1f} s); rows "
                      f"spooled by mid-outage: {spooled_mid:.0f}, outage gauge {outage:.0f}")
                self.assertGreater(spooled_mid, 0, "nothing went to the writer's spool during the outage")
                self.assertEqual(outage, 1)
                time.sleep(AFTER_S)
            finally:
                load.kill()
                load.wait()
                for a, _ in agents:
                    self.assertEqual(a.stop(), 0, a.log())
            try:
                e2e.verify(self, ch, coord, agents)
                self.assertEqual(coord.metric("ms_coord_ch_spool_records"), 0)
                replayed = coord.metric("ms_coord_ch_rows_replayed_total")
                failed = coord.metric("ms_coord_ch_rows_failed_total")
                print(f"rows replayed from the spool: {replayed:.0f}, failed: {failed:.0f}")
                self.assertGreater(replayed, 0)
                self.assertEqual(failed, 0)
            finally:
                self.assertEqual(coord.stop(), 0, coord.log())
        finally:
            ch.cleanup()


if __name__ == "__main__":
    mstest.main()
