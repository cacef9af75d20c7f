"""Agent lifecycle on the real kernel: after SIGTERM (and SIGINT) no program or link of the agent
remains loaded, the exit code is 0 and the open window was flushed; bad configuration and bad
flags fail fast with a clear message and a non-zero code."""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import mstest  # noqa: E402

class LifecycleTest(unittest.TestCase):
    def setUp(self):
        mstest.require_root(self)

    def check_stop(self, sig):
        agent = mstest.Agent("--window-ms=60000", "--sample-freq=500")
        agent.start()
        progs, links = mstest.bpf_objects_of(agent.proc.pid)
        names = [n for n in mstest.bpf_progs()]
        self.assertIn("ms_pmu_handler", names)
        self.assertGreaterEqual(len(progs), 5, "pmu handler and RX/TX/socket hooks expected")
        self.assertGreaterEqual(len(links), 4, "one link per hook and per perf event expected")
        self.assertTrue(all(mstest.bpf_prog_exists(p) for p in progs))
        time.sleep(1.0)
        agent.proc.send_signal(sig)
        rc = agent.stop()
        self.assertEqual(rc, 0, agent.log())
        left = [p for p in progs if mstest.bpf_prog_exists(p)] + [l for l in links if mstest.bpf_link_exists(l)]
        self.assertEqual(left, [], "BPF programs or links left behind after stop")
        ws = agent.windows()
        # window_ms is 60 s: the only window is the one flushed at stop
        self.assertEqual(len(ws), 1, agent.log())
        self.assertGreater(ws[0]["counters"]["emitted"] + ws[0]["counters"]["idle"], 0)
        self.assertEqual(ws[0]["counters"]["emitted"], ws[0]["counters"]["processed"])
        self.assertIn("AGENT-STOP", agent.log())

    def test_sigterm(self):
        import signal
        self.check_stop(signal.SIGTERM)

    def test_sigint(self):
        import signal
        self.check_stop(signal.SIGINT)

    def test_bad_config(self):
        tmp = __import__("tempfile").mkdtemp()
        conf = os.path.join(tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write("# comment\nsentinel_budget=5000\nmetrics_port=70000\n")
        r = subprocess.run([mstest.AGENT, f"--config={conf}"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("CONFIG-INVALID", r.stderr)
        self.assertIn(":3:", r.stderr)
        self.assertIn("metrics_port", r.stderr)
        r = subprocess.run([mstest.AGENT, "--no-such-flag=1"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        r = subprocess.run([mstest.AGENT, "--events=cpu-clock,nonsense"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("nonsense", r.stderr)

    def test_help_lists_every_key(self):
        r = subprocess.run([mstest.AGENT, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0)
        for key in ("sentinel-budget", "diagnostic-budget", "hard-drop-ns", "flow-skid-ns", "thread-flow-ns",
                    "window-ms", "events", "coordinator-url", "metrics-port", "control-port", "perf-mock-mode"):
            self.assertIn(key, r.stdout)

    def test_synthetic_mode_needs_no_bpf(self):
        agent = mstest.Agent("--perf-mock", "--mock-rate=50000", "--window-ms=200", "--duration-ms=1500")
        agent.start()
        rc = agent.proc.wait(timeout=20)
        agent.stop()
        self.assertEqual(rc, 0, agent.log())
        ws = agent.windows()
        self.assertGreaterEqual(len(ws), 5)
        total = sum(w["samples"] for w in ws)
        self.assertGreater(total, 40000)
        names = {f["name"] for w in ws for f in w["funcs"]}
        self.assertTrue(any(n.startswith("synth_func_") for n in names), names)


if __name__ == "__main__":
    mstest.main()
