"""Bad input on the fleet wire (issue "Fleet wire"): garbage, truncated and oversized messages,
unknown and unauthenticated agents, a seq that goes backwards, corrupt agent spool and corrupt
coordinator state. Each is rejected or repaired with a counter and a log line, and a real
agent streaming at the same time keeps being served. Also: the registry marks an agent that
stopped talking as stale."""
import glob
import os
import tempfile
import time
import unittest

import mstest
import msfleet

TOKEN = "fleet-test-token-0123456789"


def rejected(m, reason):
    return m.get(f'ms_coord_windows_rejected_total{{reason="{reason}"}}', 0)


class FleetBadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ms-fleet-bad-")
        cls.token_file = os.path.join(cls.tmp, "token")
        with open(cls.token_file, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(cls.token_file, 0o600)  # secrets must not be readable by others
        cls.coord = msfleet.Coordinator(extra=[f"--token-file={cls.token_file}", "--max-message-bytes=65536"]).start()
        cls.agent = msfleet.fleet_agent(cls.coord.url, "good-agent", f"--token-file={cls.token_file}",
                                        "--mock-rate=2000", "--uplink-max-message-bytes=65536").start()
        msfleet.wait_until(lambda: cls.coord.accepted(), 20, what="the good agent's first window")

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()
        cls.coord.stop()
        cls.coord.cleanup()

    def good_accepted(self):
        return len([1 for a, _, _ in self.coord.accepted() if a == "good-agent"])

    def test_1_hostile_requests(self):
        pb = msfleet.pb()
        before = self.coord.metrics()
        good0 = self.good_accepted()
        c = msfleet.RawReq(self.coord.port)
        a = c.ack(bytes((i * 37 + 11) & 0xFF for i in range(300)))
        self.assertEqual(a.status, pb.ACK_INVALID)
        req = msfleet.window("raw-1", 100, token=TOKEN)
        self.assertEqual(c.ack(req[: len(req) // 2]).status, pb.ACK_INVALID)          # truncated
        self.assertEqual(c.ack(b"\x00" * 100000).status, pb.ACK_INVALID)             # over 64 KiB
        self.assertEqual(c.ack(msfleet.hello("raw-1", token="wrong")).status, pb.ACK_UNAUTHENTICATED)
        self.assertEqual(c.ack(msfleet.window("raw-1", 100, token=TOKEN)).status, pb.ACK_UNKNOWN_AGENT)
        self.assertEqual(c.ack(msfleet.hello("raw-1", token=TOKEN, next_seq=100)).status, pb.ACK_OK)
        self.assertEqual(c.ack(msfleet.window("raw-1", 100, token=TOKEN)).status, pb.ACK_OK)
        self.assertEqual(c.ack(msfleet.window("raw-1", 100, token=TOKEN)).status, pb.ACK_DUPLICATE)
        a = c.ack(msfleet.hello("raw-1", token=TOKEN, next_seq=50))                    # seq went backwards
        self.assertEqual(a.status, pb.ACK_SEQ_REGRESSION)
        self.assertEqual(a.resume_seq, 101)
        bad = pb.Request()
        bad.ParseFromString(msfleet.window("raw-1", 101, token=TOKEN))
        bad.window.rows.flow_delta.extend([5, 0, 0])                                  # no such flow
        self.assertEqual(c.ack(bad.SerializeToString()).status, pb.ACK_INVALID)
        bad.protocol = 9
        self.assertEqual(c.ack(bad.SerializeToString()).status, pb.ACK_INVALID)
        c.close()
        # far over the limit: nng drops it and closes that connection, nothing else
        c = msfleet.RawReq(self.coord.port)
        with self.assertRaises((ConnectionError, OSError)):
            c.request(b"\x00" * (1 << 20))
        c.close()
        c = msfleet.RawReq(self.coord.port)
        self.assertEqual(c.ack(msfleet.window("raw-1", 101, token=TOKEN)).status, pb.ACK_OK)
        c.close()
        after = self.coord.metrics()
        for reason, n in (("decode", 2), ("oversize", 1), ("unauthenticated", 1), ("unknown_agent", 1),
                          ("seq_regression", 1), ("invalid", 1), ("protocol", 1)):
            self.assertEqual(rejected(after, reason) - rejected(before, reason), n, reason)
        self.assertEqual(after["ms_coord_windows_duplicate_total"] - before["ms_coord_windows_duplicate_total"], 1)
        log = self.coord.log()
        for reason in ("decode", "oversize", "unauthenticated", "unknown_agent", "seq_regression"):
            self.assertIn(f"COORD-REJECT reason={reason}", log)
        # the real agent was served all along
        msfleet.wait_until(lambda: self.good_accepted() > good0 + 3, 20, what="the good agent to keep going")
        self.assertEqual(msfleet.agent_metrics(self.agent)["ms_uplink_windows_dropped_total"], 0)
        self.assertEqual(self.coord.proc.poll(), None)

    def test_2_registry_stale(self):
        c = msfleet.RawReq(self.coord.port)
        self.assertEqual(c.ack(msfleet.hello("quiet-1", token=TOKEN, next_seq=1)).status, msfleet.pb().ACK_OK)
        c.close()
        states = lambda: {a["agent_id"]: a["state"] for a in self.coord.agents(token=TOKEN)}
        self.assertEqual(states()["quiet-1"], "live")
        msfleet.wait_until(lambda: states()["quiet-1"] == "stale", 10, what="quiet-1 to turn stale")
        self.assertEqual(states()["good-agent"], "live")
        m = self.coord.metrics()
        self.assertGreaterEqual(m['ms_coord_agents{state="stale"}'], 1)
        self.assertGreaterEqual(m['ms_coord_agents{state="live"}'], 1)

    def test_3_corrupt_agent_spool(self):
        tmp = tempfile.mkdtemp(prefix="ms-agent-corrupt-")
        away = f"tcp://127.0.0.1:{msfleet.free_port()}"
        a = msfleet.fleet_agent(away, "spooler", f"--token-file={self.token_file}", "--mock-rate=2000",
                                tmp=tmp).start()
        time.sleep(3)
        self.assertEqual(a.stop(), 0)
        produced = set(msfleet.produced(a))
        segs = sorted(glob.glob(os.path.join(tmp, "spool", "*.seg")))
        self.assertTrue(segs)
        with open(segs[-1], "r+b") as f:       # a flipped byte in the last record's payload
            f.seek(-20, os.SEEK_END)
            b = f.read(1)
            f.seek(-20, os.SEEK_END)
            f.write(bytes([b[0] ^ 0xFF]))
        with open(segs[-1], "ab") as f:        # and a torn tail
            f.write(b"MSP1\x10\x00")
        b = msfleet.fleet_agent(self.coord.url, "spooler", f"--token-file={self.token_file}", "--mock-rate=2000",
                                tmp=tmp).start()
        self.addCleanup(msfleet.agent_cleanup, b)
        try:
            msfleet.wait_until(lambda: msfleet.agent_metrics(b)["ms_uplink_spool_windows"] <= 2, 30,
                               what="the repaired spool to drain")
            m = msfleet.agent_metrics(b)
            self.assertGreaterEqual(m["ms_uplink_spool_corrupt_total"], 1)
            self.assertIn("SPOOL-REPAIRED", b.log())
        finally:
            b.stop()
        got = {s for ag, s, _ in self.coord.accepted() if ag == "spooler"}
        self.assertTrue(got & produced, "nothing of the repaired spool was delivered")
        self.assertLess(len(produced - got), len(produced) // 2 + 2)

    def test_4_corrupt_coordinator_state(self):
        self.coord.stop()
        with open(self.coord.accept_log, "a") as f:
            f.write('{"agent":"x","seq":\n{"agent":"torn')
        segs = sorted(glob.glob(os.path.join(self.coord.state, "windows", "*.seg")))
        self.assertTrue(segs)
        with open(segs[-1], "ab") as f:
            f.write(b"MSP1 garbage tail")
        self.coord.start()
        log = self.coord.log()
        self.assertIn("COORD-DEDUP-REPAIRED", log)
        self.assertIn("COORD-STORE-REPAIRED", log)
        m = self.coord.metrics()
        self.assertGreaterEqual(m["ms_coord_store_corrupt_total"], 1)
        n = self.good_accepted()
        msfleet.wait_until(lambda: self.good_accepted() > n + 2, 20, what="the good agent after the restart")


if __name__ == "__main__":
    mstest.main()
