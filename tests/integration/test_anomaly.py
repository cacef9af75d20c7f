"""Anomaly monitor with real traffic over a veth pair (one end in the agent's namespace, one in a
test namespace): a halving of the throughput and a full stop are each detected within
3 x anomaly_interval_ms (measured between the change and the signal's own timestamp), they
escalate the automatic mode to diagnostic, the gauges are current before any signal fires, the
latency file's spike is detected too; and an idle host (a fresh namespace) stays in sentinel."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentapi  # noqa: E402
import mstest  # noqa: E402

INTERVAL_MS = 500
NS = "msBan"
VA, VB = "msvan0", "msvbn0"
A4, B4 = "10.93.0.1", "10.93.0.2"
PORT = 39393

SENDER = r"""
import os, signal, socket, sys, time
rate = float(sys.argv[2])
state = {"rate": rate}
signal.signal(signal.SIGUSR1, lambda *a: state.update(rate=state["rate"] / 2))
signal.signal(signal.SIGUSR2, lambda *a: state.update(rate=0.0))
signal.signal(signal.SIGHUP, lambda *a: state.update(rate=rate))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"x" * 1000
credit, last = 0.0, time.monotonic()
print("READY", flush=True)
while True:
    time.sleep(0.005)
    now = time.monotonic()
    credit = min(credit + (now - last) * state["rate"], state["rate"] * 0.2 + 1)
    last = now
    while credit >= 1:
        try:
            s.sendto(payload, (sys.argv[1], %d))
        except OSError:
            pass
        credit -= 1
""" % PORT

SINK = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", %d))
while True:
    s.recv(2048)
""" % PORT


def sh(*cmd, check=True):
    return mstest.run(list(cmd), check=check)


class Topology:
    def __enter__(self):
        self.down()
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "add", VA, "type", "veth", "peer", "name", VB)
        sh("ip", "link", "set", VB, "netns", NS)
        sh("ip", "addr", "add", f"{A4}/24", "dev", VA)
        sh("ip", "link", "set", VA, "up")
        sh("ip", "-n", NS, "addr", "add", f"{B4}/24", "dev", VB)
        sh("ip", "-n", NS, "link", "set", VB, "up")
        sh("ip", "-n", NS, "link", "set", "lo", "up")
        return self

    def down(self):
        sh("ip", "link", "del", VA, check=False)
        sh("ip", "netns", "del", NS, check=False)

    def __exit__(self, *exc):
        self.down()


class AnomalyTraffic(unittest.TestCase):
    def setUp(self):
        mstest.require_root(self)

    def signal_since(self, s, kind, direction="tx"):
        for sig in s["anomaly"]["signals"]:
            if sig["kind"] == kind and sig.get("interface") == VA and sig.get("direction") == direction:
                return sig["since_ms"] / 1000.0
        return None

    def test_halving_and_stop(self):
        tmp = tempfile.mkdtemp(prefix="ms-anomaly-")
        lat = os.path.join(tmp, "latency_us")
        with open(lat, "w") as f:
            f.write("1000\n")
        with Topology():
            sink = subprocess.Popen(["ip", "netns", "exec", NS, mstest.PY, "-c", SINK])
            sender = subprocess.Popen([mstest.PY, "-c", SENDER, B4, "4000"], stdout=subprocess.PIPE, text=True)
            agent = agentapi.ApiAgent("--perf-mock", "--mock-rate=2000", "--window-ms=500",
                                      f"--anomaly-interfaces={VA}", f"--anomaly-interval-ms={INTERVAL_MS}",
                                      f"--anomaly-latency-file={lat}", "--mode-hold-ms=1000")
            try:
                self.assertEqual(sender.stdout.readline().strip(), "READY")
                agent.start()
                budget = 3 * INTERVAL_MS / 1000.0
                # warm-up: the gauges are current although nothing fires
                s = agent.wait(lambda s: s["anomaly"]["interfaces"] and s["anomaly"]["interfaces"][0]["warm"] and
                               s["anomaly"]["interfaces"][0]["tx"]["baseline_bytes_per_second"] > 3.5e6, 30,
                               "a warm baseline near 4 MB/s")
                # steady: nothing raised (a sender starved by a loaded machine may cause a blip: wait it out)
                time.sleep(2)
                s = agent.wait(lambda s: not s["anomaly"]["signals"] and s["mode"] == "sentinel", 30, "a quiet steady state")
                tx = agent.metric("ms_anomaly_bytes_per_second", {"interface": VA, "direction": "tx"})
                self.assertGreater(tx, 2.5e6)
                self.assertLess(tx, 5e6)
                self.assertEqual(agent.metric("ms_anomaly_active", {"interface": VA, "direction": "tx",
                                                                    "kind": "drop"}), 0)

                # halving
                t_change = time.time()
                sender.send_signal(signal.SIGUSR1)
                s = agent.wait(lambda s: self.signal_since(s, "drop") is not None, 10, "the drop signal")
                took = self.signal_since(s, "drop") - t_change
                print(f"  halving detected after {took:.3f}s (bound {budget:.1f}s)")
                self.assertLessEqual(took, budget)
                self.assertGreaterEqual(took, 0)
                s = agent.wait(lambda s: s["mode"] == "diagnostic", 5, "escalation to diagnostic")
                self.assertEqual(s["mode_reason"], "anomaly")
                self.assertEqual(agent.metric("ms_anomaly_active", {"interface": VA, "direction": "tx", "kind": "drop"}), 1)
                # full rate again: the signal clears
                sender.send_signal(signal.SIGHUP)
                agent.wait(lambda s: not s["anomaly"]["signals"], 10, "the signal to clear")
                time.sleep(2)

                # full stop
                t_change = time.time()
                sender.send_signal(signal.SIGUSR2)
                s = agent.wait(lambda s: self.signal_since(s, "stop") is not None, 10, "the stop signal")
                took = self.signal_since(s, "stop") - t_change
                print(f"  stop detected after {took:.3f}s (bound {budget:.1f}s)")
                self.assertLessEqual(took, budget)
                # a stop stays an anomaly while it lasts
                time.sleep(3)
                s = agent.status()
                self.assertIsNotNone(self.signal_since(s, "stop"))
                self.assertEqual(s["mode"], "diagnostic")
                self.assertGreaterEqual(agent.metric("ms_anomaly_signals_total", {"kind": "stop"}), 1)

                # latency file spike
                t_change = time.time()
                with open(lat + ".tmp", "w") as f:
                    f.write("5000\n")
                os.rename(lat + ".tmp", lat)
                s = agent.wait(lambda s: any(x["kind"] == "latency" for x in s["anomaly"]["signals"]), 10,
                               "the latency signal")
                since = [x for x in s["anomaly"]["signals"] if x["kind"] == "latency"][0]["since_ms"] / 1000.0
                self.assertLessEqual(since - t_change, budget)
                self.assertEqual(agent.metric("ms_anomaly_latency_spike"), 1)
            finally:
                for p in (sender, sink):
                    p.kill()
                    p.wait()
                sender.stdout.close()
                rc = agent.stop() if agent.proc else 0
            self.assertEqual(rc, 0, agent.log())
            self.assertIn("MODE-CHANGE", agent.log())


class IdleHost(unittest.TestCase):
    """A fresh namespace is an idle host: only lo and an unused veth, every interface watched."""

    def setUp(self):
        mstest.require_root(self)

    def test_idle_stays_sentinel(self):
        ns, va, vb = "msIdle", "msvidl0", "msvidl1"
        sh("ip", "netns", "del", ns, check=False)
        sh("ip", "netns", "add", ns)
        try:
            sh("ip", "-n", ns, "link", "add", va, "type", "veth", "peer", "name", vb)
            for d in (va, vb, "lo"):
                sh("ip", "-n", ns, "link", "set", d, "up")
            agent = mstest.Agent("--perf-mock", "--mock-rate=2000", "--window-ms=1000", "--anomaly-interval-ms=500",
                                 "--duration-ms=15000")
            agent.args = ["ip", "netns", "exec", ns] + agent.args
            agent.start()
            rc = agent.proc.wait(timeout=60)
            agent.stop()
            self.assertEqual(rc, 0, agent.log())
            ws = agent.windows()
            self.assertGreaterEqual(len(ws), 12)
            self.assertEqual({w["mode"] for w in ws}, {"sentinel"}, agent.log())
            self.assertNotIn("ANOMALY", agent.log())
            self.assertNotIn("MODE-CHANGE", agent.log())
        finally:
            sh("ip", "netns", "del", ns, check=False)


if __name__ == "__main__":
    mstest.main()
