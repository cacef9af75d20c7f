"""Agent spool (issue "Fleet wire"): with the coordinator away for 30 s the agent's spool grows;
when the coordinator comes back the spool is replayed in order and shrinks to zero, and every
window arrives exactly once. With a tiny spool the configured policy drops windows — the
oldest or the newest — and counts every drop."""
import collections
import re
import time
import unittest

import mstest
import msfleet


def seqs_of(acc, agent):
    return [s for a, s, _ in acc if a == agent]


class FleetSpool(unittest.TestCase):
    def test_outage_30s_replay_in_order(self):
        # one ingest worker: windows are accepted in the order they arrive, so the accept log
        # shows the order the agent replayed them in
        coord = msfleet.Coordinator(extra=["--ingest-workers=1"])  # not started: away
        self.addCleanup(coord.cleanup)
        agent = msfleet.fleet_agent(coord.url, "spool-a", "--uplink-timeout-ms=10000").start()
        self.addCleanup(msfleet.agent_cleanup, agent)
        try:
            depth = []
            for _ in range(6):
                time.sleep(5)
                depth.append(msfleet.agent_metrics(agent)["ms_uplink_spool_windows"])
            print(f"spool depth every 5 s while the coordinator is away: {depth}")
            self.assertTrue(all(b > a for a, b in zip(depth, depth[1:])), f"spool did not grow: {depth}")
            self.assertGreater(depth[-1], 100)
            backlog = set(msfleet.produced(agent))
            coord.start()
            t0 = time.time()
            msfleet.wait_until(lambda: msfleet.agent_metrics(agent)["ms_uplink_spool_windows"] <= 2, 60,
                               what="the spool to drain")
            print(f"drained {len(backlog)} windows in {time.time() - t0:.1f} s")
            m = msfleet.agent_metrics(agent)
            self.assertEqual(m["ms_uplink_windows_dropped_total"], 0)
            self.assertGreaterEqual(m["ms_uplink_windows_replayed_total"], 0)
            time.sleep(1)
        finally:
            self.assertEqual(agent.stop(), 0, agent.log())
        acc = coord.accepted()
        coord.stop()
        order = seqs_of(acc, "spool-a")
        # replay order: the backlog goes out oldest first, 8 requests in flight (uplink_contexts);
        # the coordinator's receive callbacks may swap windows that were in flight together,
        # nothing more: a window never overtakes one that is 8 or more older
        first = [s for s in order if s in backlog]
        rank = {s: i for i, s in enumerate(sorted(backlog))}
        swaps = sum(1 for a, b in zip(first, first[1:]) if b < a)
        late = [(a, b) for i, a in enumerate(first) for b in first[i + 1:] if rank[a] - rank[b] >= 8]
        print(f"backlog of {len(first)} windows replayed oldest first ({swaps} swaps of windows in flight together)")
        self.assertEqual(late, [], "backlog replayed out of order")
        prod = msfleet.produced(agent)
        self.assertEqual(collections.Counter(order), collections.Counter(prod.keys()))
        self.assertEqual(sum(s for a, _, s in acc if a == "spool-a"), sum(prod.values()))

    def test_tiny_spool_policies_drop_and_count(self):
        coord = msfleet.Coordinator().start()
        self.addCleanup(coord.cleanup)
        newest = msfleet.fleet_agent(coord.url, "tiny-newest", "--spool-max-bytes=262144",
                                     "--spool-policy=drop_newest").start()
        oldest = msfleet.fleet_agent(coord.url, "tiny-oldest", "--spool-max-bytes=262144",
                                     "--spool-policy=drop_oldest").start()
        agents = (newest, oldest)
        for a in agents:
            self.addCleanup(msfleet.agent_cleanup, a)
        try:
            time.sleep(2)
            coord.stop()
            acc0 = coord.accepted()
            down_at = {a.tmp: max(seqs_of(acc0, n)) for a, n in ((newest, "tiny-newest"), (oldest, "tiny-oldest"))}
            time.sleep(8)
            dropped = {a.tmp: msfleet.agent_metrics(a)["ms_uplink_windows_dropped_total"] for a in agents}
            self.assertTrue(all(d > 0 for d in dropped.values()), f"nothing dropped: {dropped}")
            coord.start()
            for a in agents:
                msfleet.wait_until(lambda: msfleet.agent_metrics(a)["ms_uplink_spool_windows"] <= 2, 60,
                                   what="the spool to drain")
            time.sleep(1)
        finally:
            for a in agents:
                self.assertEqual(a.stop(), 0, a.log())
        # the agent's own final count, logged at exit after its last window was handed over
        final = {a.tmp: {k: float(v) for k, v in re.findall(r"(\w+)=(\d+)", [l for l in a.log().splitlines()
                                                                         if "UPLINK-STOP" in l][-1])}
                 for a in agents}
        acc = coord.accepted()
        coord.stop()
        for a, name in ((newest, "tiny-newest"), (oldest, "tiny-oldest")):
            prod = msfleet.produced(a)
            got = seqs_of(acc, name)
            self.assertEqual(len(got), len(set(got)), "accepted twice")
            self.assertTrue(set(got) <= set(prod))
            lost = sorted(set(prod) - set(got))
            m = final[a.tmp]
            print(f"{name}: produced {len(prod)}, accepted {len(got)}, dropped {m['dropped']:.0f}"
                  f" (lost seqs {len(lost)}), left in the spool {m['spooled']:.0f}")
            self.assertEqual(m["spooled"], 0)
            self.assertEqual(len(lost), m["dropped"], "a drop that was not counted")
            self.assertTrue(lost, "the tiny spool should have dropped windows")
            after_outage = [s for s in lost if s > down_at[a.tmp]]
            self.assertEqual(lost, after_outage, "windows dropped from before the outage")
            if name == "tiny-newest":
                # the oldest windows of the outage were kept, the newest refused
                kept = [s for s in got if s > down_at[a.tmp] and s < lost[0]]
                self.assertTrue(kept, "drop_newest kept nothing from the outage's start")
            else:
                # the newest windows of the outage were kept, the oldest deleted
                self.assertTrue(any(s > lost[-1] for s in got), "drop_oldest kept nothing after its drops")
        logs = newest.log() + oldest.log()
        self.assertIn("SPOOL-FULL", logs)


if __name__ == "__main__":
    mstest.main()
