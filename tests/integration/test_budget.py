"""Token bucket: with cpu-clock sampling far above the budget on busy CPUs, the samples the BPF
handler emits per CPU per second stay within the budget (+5 %), and every drop is counted."""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import mstest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BUDGET = 400


class BudgetTest(unittest.TestCase):
    def setUp(self):
        mstest.require_root(self)

    def test_budget_holds_per_cpu(self):
        ncpu = os.cpu_count()
        agent = mstest.Agent("--sample-freq=4000", f"--sentinel-budget={BUDGET}",
                             f"--diagnostic-budget={BUDGET * 10}", "--mode=sentinel", "--window-ms=1000",
                             "--events=cpu-clock")
        agent.start()
        load = subprocess.Popen([mstest.PY, os.path.join(HERE, "burn.py"), str(ncpu), "9"])
        try:
            load.wait(timeout=60)
        finally:
            if load.poll() is None:
                load.kill()
            rc = agent.stop()
        self.assertEqual(rc, 0, agent.log())
        ws = agent.windows()
        # skip the first two windows (start-up burst) and the partial last one; keep 5 s
        steady = [w for w in ws[2:-1]][:5]
        self.assertEqual(len(steady), 5, f"expected 5 steady windows, got {len(ws)} in all")
        secs = sum(w["end_ns"] - w["start_ns"] for w in steady) / 1e9
        per_cpu = [sum(w["emitted_per_cpu"][c] for w in steady) for c in range(ncpu)]
        drops = sum(w["counters"]["budget"] for w in steady)
        emitted = sum(w["counters"]["emitted"] for w in steady)
        print(f"  {secs:.2f}s: emitted per CPU {per_cpu} (budget {BUDGET}/s/CPU), budget drops {drops}")
        for c, n in enumerate(per_cpu):
            self.assertLessEqual(n / secs, BUDGET * 1.05, f"cpu {c} over budget")
            self.assertGreater(n / secs, BUDGET * 0.5, f"cpu {c}: the load should saturate the budget")
        self.assertEqual(emitted, sum(per_cpu))
        self.assertGreater(drops, 0, "sampling above budget must count budget drops")
        # the metrics view of the same counters agrees with the windows
        self.assertEqual(sum(w["counters"]["emitted"] for w in ws), sum(sum(w["emitted_per_cpu"]) for w in ws))

    def test_hard_gap(self):
        agent = mstest.Agent("--sample-freq=4000", "--sentinel-budget=100000", "--diagnostic-budget=100000",
                             "--hard-drop-ns=2000000", "--mode=sentinel", "--window-ms=1000", "--events=cpu-clock")
        agent.start()
        load = subprocess.Popen([mstest.PY, os.path.join(HERE, "burn.py"), str(os.cpu_count()), "4"])
        try:
            load.wait(timeout=60)
        finally:
            rc = agent.stop()
        self.assertEqual(rc, 0)
        ws = agent.windows()[1:-1]
        secs = sum(w["end_ns"] - w["start_ns"] for w in ws) / 1e9
        gap = sum(w["counters"]["gap"] for w in ws)
        for c in range(os.cpu_count()):
            n = sum(w["emitted_per_cpu"][c] for w in ws)
            # at most one sample per 2 ms per CPU
            self.assertLessEqual(n / secs, 500 * 1.05)
        self.assertGreater(gap, 0)


if __name__ == "__main__":
    mstest.main()
