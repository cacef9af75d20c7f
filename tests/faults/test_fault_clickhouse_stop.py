"""Fault (b), SPEC §10: ClickHouse stopped for 30 s in the middle of a run of the namespace lab
(one BPF agent and one synthetic agent, each in its own network namespace over veth, streaming
to the coordinator on the host). The coordinator keeps acking into its writer's spool and
replays it once the same server is back; the agents never notice. Afterwards every window is in
ClickHouse once with its samples, none lost, no duplicate (host, seq).
(tests/integration/test_clickhouse_outage.py is the same outage with agents on loopback; this one
runs it end to end through the lab and checks per window.)"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlab  # noqa: E402

BEFORE_S, OUTAGE_S, AFTER_S = 10, 30, 10


class ClickHouseStop(unittest.TestCase):
    def test_clickhouse_stopped_30s(self):
        lab = faultlab.Lab(self)
        coord = lab.coord.start()
        agents = [lab.agent(0, "flt-ch-bpf", "bpf").start(), lab.agent(1, "flt-ch-mock").start()]
        try:
            time.sleep(BEFORE_S)
            lab.ch.stop()
            t0 = time.time()  # the server process is gone
            time.sleep(OUTAGE_S / 2)
            spooled_mid = coord.metric("ms_coord_ch_rows_spooled_total")
            outage = coord.metric("ms_coord_ch_outage")
            acked_mid = {a.host: a.metrics().get("ms_uplink_windows_acked_total") for a in agents}
            time.sleep(max(0, OUTAGE_S - (time.time() - t0)))
            acked_end = {a.host: a.metrics().get("ms_uplink_windows_acked_total") for a in agents}
            lab.ch.start()
            print(f"\nClickHouse away {time.time() - t0:.1f} s; rows spooled by the coordinator by mid-outage "
                  f"{spooled_mid:.0f}; agents' acks kept coming: {acked_mid} -> {acked_end}")
            self.assertEqual(outage, 1)
            self.assertGreater(spooled_mid, 0)
            for h in acked_mid:
                self.assertGreater(acked_end[h], acked_mid[h], f"{h}: not acked while ClickHouse was away")
            time.sleep(AFTER_S)
            for a in agents:
                a.wait_drained()
        finally:
            for a in agents:
                self.assertEqual(a.stop(), 0, a.log()[-4000:])
        res = lab.conservation("ClickHouse stopped 30 s")
        coord.sample_rss()
        replayed = coord.metric("ms_coord_ch_rows_replayed_total")
        failed = coord.metric("ms_coord_ch_rows_failed_total")
        print(f"rows replayed from the coordinator's spool: {replayed:.0f}, failed: {failed:.0f}")
        self.assertGreater(replayed, 0)
        self.assertEqual(failed, 0)
        self.assertEqual(coord.stop(), 0, coord.log()[-4000:])
        self.assertEqual(res["windows_lost"], 0)


if __name__ == "__main__":
    faultlab.main()
