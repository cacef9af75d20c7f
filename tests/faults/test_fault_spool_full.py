"""Fault (e), SPEC §10: the disk of the agents' spool fills up. Each agent's state directory
(seq file and spool) is a small tmpfs (1 MiB, below the configured --spool-max-bytes, so the
filesystem and not the spool bound is what runs out), the agents produce ~0.13 MB/s of windows
and the coordinator is away for 25 s. One agent runs the drop_oldest policy, the other
drop_newest. Checked: the agents keep running (no crash, clean exit), every drop is counted (in
/metrics and in the exit line), the policy decides which windows go (drop_oldest keeps the
newest windows of the outage, drop_newest the oldest), and end to end in ClickHouse
    emitted == stored + counted drops, per window, with no duplicate (host, seq)."""
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlab  # noqa: E402
import mstest  # noqa: E402

BEFORE_S, AWAY_S, AFTER_S = 8, 25, 10
TMPFS = "1m"
LOAD = ["--mock-flows=400", "--mock-rate=4000", "--window-ms=500", "--spool-max-bytes=2097152"]


class SpoolDiskFull(unittest.TestCase):
    def mount_tmpfs(self):
        d = tempfile.mkdtemp(prefix="ms-fault-tmpfs-")
        mstest.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS},mode=0700", "tmpfs", d])
        self.addCleanup(lambda: mstest.run(["umount", "-l", d], check=False))
        return d

    def test_spool_disk_full(self):
        lab = faultlab.Lab(self)
        coord = lab.coord.start()
        oldest = lab.agent(0, "flt-full-oldest", "mock", LOAD + ["--spool-policy=drop_oldest"],
                           state_dir=self.mount_tmpfs()).start()
        newest = lab.agent(1, "flt-full-newest", "mock", LOAD + ["--spool-policy=drop_newest"],
                           state_dir=self.mount_tmpfs()).start()
        agents = [oldest, newest]
        try:
            time.sleep(BEFORE_S)
            coord.stop()
            down_at = {a.host: max(a.windows()) for a in agents}
            # windows the coordinator stored whose ack died with it: re-sent later as duplicates,
            # unless the spool policy deletes them first (then counted as dropped, yet stored)
            acc = coord.accepted()
            acks_lost = {a.host: sum(1 for h, _, _ in acc if h == a.host) -
                         int(a.metrics()["ms_uplink_windows_acked_total"]) for a in agents}
            time.sleep(AWAY_S)
            mid = {a.host: a.metrics() for a in agents}
            df = {a.host: os.statvfs(a.state_dir) for a in agents}
            for a in agents:
                self.assertIsNone(a.a.proc.poll(), f"{a.host} died with a full disk:\n{a.log()[-3000:]}")
            print("\nwith the coordinator away (metrics): " + "; ".join(
                f"{h}: spool {m['ms_uplink_spool_windows']:.0f} windows / {m['ms_uplink_spool_bytes'] / 1024:.0f} KiB, "
                f"dropped {m['ms_uplink_windows_dropped_total']:.0f}, tmpfs free {df[h].f_bavail * df[h].f_frsize // 1024} KiB"
                for h, m in mid.items()))
            for h, m in mid.items():
                self.assertGreater(m["ms_uplink_windows_dropped_total"], 0, f"{h}: nothing dropped with a full disk")
            coord.start()
            time.sleep(AFTER_S)
            for a in agents:
                a.wait_drained(90)
            end_metrics = {a.host: a.metrics() for a in agents}
        finally:
            for a in agents:
                self.assertEqual(a.stop(), 0, a.log()[-4000:])
        final = {a.host: a.final_counts() for a in agents}
        for a in agents:
            self.assertEqual(final[a.host]["spooled"], 0)
            self.assertEqual(final[a.host]["dropped"], end_metrics[a.host]["ms_uplink_windows_dropped_total"],
                             "a drop in the exit line not in /metrics")
            self.assertIn("SPOOL-FULL", a.log())
        res = lab.conservation("spool disk full (tmpfs 1 MiB, coordinator away 25 s)",
                               dropped={h: f["dropped"] for h, f in final.items()}, acks_lost=acks_lost)
        print(f"acks lost when the coordinator stopped: {acks_lost}")
        for a in agents:
            em, st = a.windows(), lab.stored_windows(a.host)
            lost = sorted(set(em) - st)
            self.assertTrue(lost, f"{a.host}: nothing lost although drops were counted")
            print(f"{a.host}: emitted {len(em)}, stored {len(set(em) & st)}, dropped {final[a.host]['dropped']} "
                  f"(seqs {lost[0]}..{lost[-1]}), outage began after seq {down_at[a.host]}")
            if a is oldest:
                # the oldest unacked windows went (those of the outage's start, and any not yet
                # acked when the coordinator stopped); the newest were kept
                self.assertTrue(any(s > lost[-1] for s in st), "drop_oldest kept none of the newest windows")
            else:
                self.assertTrue(all(s > down_at[a.host] for s in lost), f"{a.host}: windows from before the outage lost")
                kept = [s for s in st if down_at[a.host] < s < lost[0]]
                self.assertTrue(kept, "drop_newest kept none of the outage's oldest windows")
        coord.sample_rss()
        self.assertEqual(coord.stop(), 0, coord.log()[-4000:])


if __name__ == "__main__":
    faultlab.main()
