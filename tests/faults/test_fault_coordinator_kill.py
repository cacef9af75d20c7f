"""Fault (a), SPEC §10: the coordinator is SIGKILLed three times during a 60 s run and restarted
on the same state each time, while two agents in their own network namespaces (one sampling the
real kernel with BPF, one synthetic) stream to it over veth and it writes into ClickHouse.
Afterwards every window the agents closed is in ClickHouse exactly once with its samples
(ms_flow_rollup FINAL, per seq), none lost, no duplicate (host, seq)."""
import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlab  # noqa: E402

RUN_S = 60


class CoordinatorKill(unittest.TestCase):
    def test_sigkill_coordinator_three_times(self):
        lab = faultlab.Lab(self)
        rnd = random.Random(10)
        coord = lab.coord.start()
        agents = [lab.agent(0, "flt-kill-bpf", "bpf").start(), lab.agent(1, "flt-kill-mock").start()]
        t0 = time.time()
        try:
            for at in (12, 27, 42):
                time.sleep(max(0.0, t0 + at + rnd.uniform(-2, 2) - time.time()))
                coord.kill9()
                time.sleep(rnd.uniform(1.0, 3.0))
                coord.start()
            time.sleep(max(0.0, t0 + RUN_S - time.time()))
            for a in agents:
                a.wait_drained()
            am = {a.host: a.metrics() for a in agents}
        finally:
            for a in agents:
                self.assertEqual(a.stop(), 0, a.log()[-4000:])
        res = lab.conservation("coordinator SIGKILL x3")
        self.assertEqual(coord.log().count("COORD-READY"), 4)
        coord.sample_rss()
        self.assertTrue(coord.drained())
        self.assertEqual(coord.stop(), 0, coord.log()[-4000:])
        for h, m in am.items():
            self.assertEqual(m.get("ms_uplink_windows_dropped_total"), 0, h)
        print(f"agent re-sends after the kills: "
              f"{ {h: m.get('ms_uplink_windows_replayed_total') for h, m in am.items()} }")
        self.assertEqual(res["windows_lost"], 0)


if __name__ == "__main__":
    faultlab.main()
