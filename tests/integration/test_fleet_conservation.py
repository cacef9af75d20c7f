"""Conservation under faults (issue "Fleet wire"): two synthetic agents stream windows to the
coordinator for 60 s while the coordinator is SIGKILLed three times and restarted on the same
state. Afterwards the (agent, seq) windows the coordinator accepted are exactly the windows the
agents produced — none missing, none twice — and the sample sums match."""
import collections
import random
import time
import unittest

import mstest
import msfleet

STREAM_S = 60


class FleetConservation(unittest.TestCase):
    def test_sigkill_coordinator_three_times(self):
        rnd = random.Random(5)
        coord = msfleet.Coordinator().start()
        self.addCleanup(coord.cleanup)
        agents = [msfleet.fleet_agent(coord.url, f"cons-{i}").start() for i in range(2)]
        for a in agents:
            self.addCleanup(msfleet.agent_cleanup, a)
        t0 = time.time()
        try:
            # kill at ~12 s, ~27 s, ~42 s, down 1..3 s each; the last restart leaves >10 s of calm
            for at in (12, 27, 42):
                time.sleep(max(0.0, t0 + at + rnd.uniform(-2, 2) - time.time()))
                coord.kill9()
                time.sleep(rnd.uniform(1.0, 3.0))
                coord.start()
            time.sleep(max(0.0, t0 + STREAM_S - time.time()))
            # the coordinator is up: let every spool drain before stopping the agents
            for a in agents:
                msfleet.wait_until(lambda: msfleet.agent_metrics(a).get("ms_uplink_spool_windows", 1) <= 2, 30,
                                   what=f"{a.tmp}: spool to drain")
            am = [msfleet.agent_metrics(a) for a in agents]
        finally:
            for a in agents:
                self.assertEqual(a.stop(), 0, a.log())
        produced = {}
        for i, a in enumerate(agents):
            for seq, samples in msfleet.produced(a).items():
                produced[(f"cons-{i}", seq)] = samples
        want = set(produced)
        try:
            msfleet.wait_until(lambda: want <= {(x[0], x[1]) for x in coord.accepted()}, 30,
                               what="every produced window to be accepted")
        except AssertionError:
            pass  # reported precisely below
        cm = coord.metrics()
        coord.stop()
        acc = coord.accepted()
        counts = collections.Counter((a, s) for a, s, _ in acc)
        twice = [k for k, n in counts.items() if n > 1]
        got = set(counts)
        missing = sorted(want - got)
        extra = sorted(got - want)
        print(f"produced {len(want)} windows ({sum(produced.values())} samples), accepted {len(acc)}; "
              f"coordinator runs {coord.runs}; duplicates acked {cm.get('ms_coord_windows_duplicate_total')}; "
              f"agent re-sends {[m.get('ms_uplink_windows_replayed_total') for m in am]}; wire bytes per rollup row "
              f"(last coordinator run) {cm['ms_coord_received_bytes_total'] / max(1, cm['ms_coord_rows_accepted_total']):.2f}")
        self.assertGreater(len(want), 2 * 100, "the agents produced too few windows to mean anything")
        self.assertEqual(twice, [], "windows accepted twice")
        self.assertEqual(missing, [], "windows produced but never accepted")
        self.assertEqual(extra, [], "windows accepted but never produced")
        self.assertEqual(sum(s for _, _, s in acc), sum(produced.values()), "sample sums differ")
        for a, s, n in acc:
            self.assertEqual(n, produced[(a, s)], f"samples of {a}/{s}")
        for m in am:
            self.assertEqual(m.get("ms_uplink_windows_dropped_total"), 0)
        self.assertEqual(coord.all_logs().count("COORD-READY"), 4)


if __name__ == "__main__":
    mstest.main()
