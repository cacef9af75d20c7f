"""Fault (d), SPEC §4/§10: the BPF agent is SIGKILLed and restarted on the same state directory.
To give its spool something to replay, its veth link is cut for 8 s before the kill (the
windows of those seconds wait in the spool, unacked). Checked:
  - every BPF program and link the old instance held is gone from the kernel once it is dead,
    and none of them is among the new instance's (prog/link ids from /proc/PID/fdinfo,
    existence from bpftool);
  - the new instance's seqs continue above the old one's (persisted seq, SPEC §4);
  - the old instance's spooled windows are replayed by the new one;
  - end to end in ClickHouse: every window either instance closed is stored once with its
    samples (at most the single window the old instance closed at the instant of the kill, not
    yet in its spool, may be missing), no duplicate (host, seq)."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlab  # noqa: E402
import msfleet  # noqa: E402
import mstest  # noqa: E402

BEFORE_S, CUT_S, AFTER_S = 12, 8, 20


class AgentKill(unittest.TestCase):
    def test_sigkill_agent_restart_same_state(self):
        lab = faultlab.Lab(self)
        coord = lab.coord.start()
        bpf, other = lab.agent(0, "flt-akill-bpf", "bpf").start(), lab.agent(1, "flt-akill-mock").start()
        agents = [bpf, other]
        try:
            time.sleep(BEFORE_S)
            lab.nss[0].cut()
            time.sleep(CUT_S)
            progs, links = mstest.bpf_objects_of(bpf.pid)
            self.assertTrue(progs, "the BPF agent holds no BPF program")
            stored_at_kill = lab.stored_windows(bpf.host)
            bpf.kill9()
            old = bpf.windows()
            backlog = sorted(set(old) - stored_at_kill)
            lab.nss[0].restore()
            msfleet.wait_until(lambda: not any(mstest.bpf_prog_exists(p) for p in progs) and
                               not any(mstest.bpf_link_exists(l) for l in links), 15,
                               what="the killed agent's BPF programs and links to go")
            bpf.start()
            new_progs, new_links = mstest.bpf_objects_of(bpf.pid)
            self.assertTrue(new_progs)
            left = sorted(p for p in progs if mstest.bpf_prog_exists(p))
            self.assertEqual(left, [], "BPF programs of the old instance remain")
            self.assertEqual(progs & new_progs, set())
            self.assertEqual(links & new_links, set())
            print(f"\nold instance: {len(progs)} progs {sorted(progs)}, {len(links)} links; new instance: "
                  f"{len(new_progs)} progs {sorted(new_progs)}; backlog of {len(backlog)} windows unstored at the kill")
            self.assertGreaterEqual(len(backlog), CUT_S // 2, "nothing waited in the spool")
            time.sleep(AFTER_S)
            for a in agents:
                a.wait_drained()
            m = bpf.metrics()
        finally:
            for a in agents:
                self.assertEqual(a.stop(), 0, a.log()[-4000:])
        new = sorted(set(bpf.windows()) - set(old))
        self.assertTrue(new)
        print(f"seqs: old instance {min(old)}..{max(old)} ({len(old)}), new instance {new[0]}..{new[-1]} ({len(new)}); "
              f"new instance replayed/re-sent {m['ms_uplink_windows_replayed_total']:.0f}")
        self.assertGreater(new[0], max(old), "seq did not continue above the old instance's")
        self.assertEqual(m["ms_uplink_windows_dropped_total"], 0)
        self.assertGreater(m["ms_uplink_windows_replayed_total"], 0, "the spool was not replayed")
        res = lab.conservation("agent SIGKILL + restart", allow_lost={bpf.host: {max(old)}})
        stored = lab.stored_windows(bpf.host)
        replayed = [s for s in backlog if s in stored]
        print(f"backlog windows of the old instance stored by the new one: {len(replayed)}/{len(backlog)}")
        self.assertGreaterEqual(len(replayed), len(backlog) - 1)
        self.assertLessEqual(res["windows_lost"], 1)
        coord.sample_rss()
        self.assertEqual(coord.stop(), 0, coord.log()[-4000:])


if __name__ == "__main__":
    faultlab.main()
