"""Fault (c), SPEC §10: the veth link of one agent (the BPF one) is cut for 20 s (its host end
set down) and restored, while a second agent in another namespace keeps streaming. During the
cut nothing of the cut agent reaches ClickHouse while the other agent's windows keep arriving;
after the link is back the cut agent's spool is replayed. Afterwards every window of both
agents is in ClickHouse once with its samples, none lost, no duplicate (host, seq)."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlab  # noqa: E402

BEFORE_S, CUT_S, AFTER_S = 15, 20, 15


class LinkCut(unittest.TestCase):
    def test_veth_cut_20s(self):
        lab = faultlab.Lab(self)
        coord = lab.coord.start()
        cut, other = lab.agent(0, "flt-cut-bpf", "bpf").start(), lab.agent(1, "flt-cut-mock").start()
        agents = [cut, other]
        try:
            time.sleep(BEFORE_S)
            before = cut.metrics()
            lab.nss[0].cut()
            t0 = time.time()
            time.sleep(5)  # what was in flight at the cut has settled
            c1, o1 = len(lab.stored_windows(cut.host)), len(lab.stored_windows(other.host))
            time.sleep(max(0, CUT_S - (time.time() - t0)))
            c2, o2 = len(lab.stored_windows(cut.host)), len(lab.stored_windows(other.host))
            lab.nss[0].restore()
            waiting = cut.metrics()["ms_uplink_spool_windows"]  # the agent's /metrics is behind the link too
            print(f"\nlink cut {time.time() - t0:.1f} s: windows stored of the cut agent {c1} -> {c2}, "
                  f"of the other {o1} -> {o2}; the cut agent's spool at the restore: {waiting:.0f} windows")
            self.assertGreaterEqual(waiting, CUT_S // 2, "the cut agent's windows did not wait in its spool")
            self.assertEqual(c2, c1, "windows crossed a cut link")
            self.assertGreater(o2, o1, "the other agent stalled")
            time.sleep(AFTER_S)
            for a in agents:
                a.wait_drained()
            after = cut.metrics()
        finally:
            for a in agents:
                self.assertEqual(a.stop(), 0, a.log()[-4000:])
        res = lab.conservation("veth link cut 20 s")
        resent = after["ms_uplink_windows_replayed_total"] - before["ms_uplink_windows_replayed_total"]
        print(f"cut agent: windows re-sent after a timeout during the cut: {resent:.0f}, "
              f"dropped {after['ms_uplink_windows_dropped_total']:.0f}")
        self.assertEqual(after["ms_uplink_windows_dropped_total"], 0)
        coord.sample_rss()
        self.assertEqual(coord.stop(), 0, coord.log()[-4000:])
        self.assertEqual(res["windows_lost"], 0)


if __name__ == "__main__":
    faultlab.main()
