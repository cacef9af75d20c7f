"""Mode controller in a running agent (the 60-simulated-second cases are unit.modectl_test):
a demand at 1.05 x the sentinel budget does not flap; a pinned mode survives load changes until
its TTL, then the controller decides again; a pin without TTL stays until "auto" clears it; a
mode fixed in the config is a pin "auto" can clear; shedding shows as ms_sampling_throttled."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentapi  # noqa: E402
import mstest  # noqa: E402


class ModeController(unittest.TestCase):
    def agent(self, *args):
        a = agentapi.ApiAgent("--perf-mock", "--window-ms=500", "--no-anomaly-enabled", "--mode-hold-ms=1000", *args)
        a.start()
        self.addCleanup(lambda: self.assertEqual(a.stop(), 0, a.log()))
        return a

    def test_near_budget_does_not_flap(self):
        # the synthetic source spreads samples over 2 CPUs: 10500/s = 5250/s/CPU = 1.05 x 5000
        a = self.agent("--mock-rate=10500", "--sentinel-budget=5000", "--diagnostic-budget=20000")
        t0 = a.metric("ms_mode_transitions_total")
        modes = set()
        end = time.time() + 15
        while time.time() < end:
            s = a.status()
            modes.add(s["mode"])
            time.sleep(0.25)
        s = a.status()
        self.assertGreater(s["load"], 0.9)
        self.assertLess(s["load"], 1.3)
        self.assertLessEqual(a.metric("ms_mode_transitions_total") - t0, 1)
        self.assertEqual(modes, {"sentinel"})
        self.assertFalse(s["throttled"])

    def test_pin_survives_load_until_ttl(self):
        a = self.agent("--mock-rate=4000")
        self.assertEqual(a.status()["mode"], "sentinel")
        t0 = time.time()
        r = a.api("POST", "/api/v1/mode", '{"mode":"diagnostic","ttl_s":8}')
        self.assertEqual(r.status, 200, r)
        pin = r.json()["pin"]
        self.assertEqual(pin["source"], "api")
        self.assertAlmostEqual(pin["expires"] / 1000.0, t0 + 8, delta=2)
        # load change: budgets cut to a tenth of the demand -> shedding, but the pin holds
        r = a.api("POST", "/api/v1/token-bucket", '{"sentinel_samples_per_sec":200,"diagnostic_samples_per_sec":200}')
        self.assertEqual(r.status, 200, r)
        s = a.wait(lambda s: s["throttled"], 15, "shedding")
        self.assertEqual(s["mode"], "diagnostic")
        self.assertEqual(a.metric("ms_sampling_throttled"), 1)
        # and back to a light load: still pinned
        self.assertEqual(a.api("POST", "/api/v1/token-bucket",
                               '{"sentinel_samples_per_sec":50000,"diagnostic_samples_per_sec":50000}').status, 200)
        s = a.status()
        self.assertEqual(s["mode"], "diagnostic")
        self.assertIsNotNone(s["pin"])
        self.assertLess(time.time() - t0, 8, "the test was too slow to observe the pin before its TTL")
        # after the TTL the controller decides: no anomaly, no reason to stay in diagnostic
        s = a.wait(lambda s: s["pin"] is None, 15, "pin expiry")
        self.assertGreaterEqual(time.time() - t0, 7.5)
        s = a.wait(lambda s: s["mode"] == "sentinel", 5, "sentinel after the TTL")
        self.assertEqual(a.metric("ms_mode_pinned"), 0)

    def test_pin_until_cleared_then_auto(self):
        a = self.agent("--mock-rate=4000")
        r = a.api("POST", "/api/v1/mode", '{"mode":"diagnostic","ttl_s":0}')
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json()["pin"]["expires"])
        time.sleep(4)
        s = a.status()
        self.assertEqual(s["mode"], "diagnostic")
        self.assertIsNone(s["pin"]["expires"])
        r = a.api("POST", "/api/v1/mode", '{"mode":"auto"}')
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json()["pin"])
        self.assertEqual(r.json()["mode"], "sentinel")
        s = a.status()
        self.assertIsNone(s["pin"])
        self.assertEqual(s["mode"], "sentinel")

    def test_config_mode_is_a_pin(self):
        a = self.agent("--mock-rate=4000", "--mode=diagnostic")
        s = a.status()
        self.assertEqual(s["mode"], "diagnostic")
        self.assertEqual(s["pin"]["source"], "config")
        self.assertEqual(a.api("POST", "/api/v1/mode", '{"mode":"auto"}').status, 200)
        self.assertEqual(a.status()["mode"], "sentinel")


if __name__ == "__main__":
    mstest.main()
