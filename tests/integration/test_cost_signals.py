"""Cost deviations as fleet signals, end to end (SPEC section 6, coordinator/costdev.c): four real
agents sample (cpu-clock, BPF) one process each — the same C binary (targets/costshift.c) that
burns its CPU in cost_steady() — labelled role=lb (lb-1, lb-2) and role=db (db-1, db-2); the
coordinator runs with correlator_cost_signals on and its anomaly/mode signals off. After the
hosts' baselines are warm, the two lb processes move their time into cost_regressed() (SIGUSR1:
a deploy with a new hot path). Each lb agent's windows then show a function no earlier window
had, the coordinator's cost-deviation detector raises "cost:<function id>:cpu-clock" for both,
and — the function id being the same for the same binary on every host — the correlator raises
exactly one fleet trigger, for group lb, keyed by cost_regressed's id (as named in the agents'
own windows); the lb agents are pinned to diagnostic while the db group stays quiet."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentapi  # noqa: E402
import msgrpc  # noqa: E402
import mstest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "cost-signals-token-0123456789abc"
AGENTS = [("lb-1", "lb"), ("lb-2", "lb"), ("db-1", "db"), ("db-2", "db")]
WINDOW_MS = 500


def build_target(tmp):
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise unittest.SkipTest("no C compiler to build the target program")
    exe = os.path.join(tmp, "costshift")
    mstest.run([cc, "-O1", "-g", "-fno-omit-frame-pointer", "-o", exe, os.path.join(HERE, "targets", "costshift.c")])
    return exe


class CostSignals(unittest.TestCase):
    def setUp(self):
        mstest.require_root(self)

    def test_new_hot_function_on_two_lb_hosts(self):
        tmp = tempfile.mkdtemp(prefix="ms-cost-")
        exe = build_target(tmp)
        tok = os.path.join(tmp, "token")
        with open(tok, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(tok, 0o600)
        _, fl = msgrpc.pb()
        coord = msgrpc.Coordinator(tmp=os.path.join(tmp, "coord"), token_file=tok, extra=(
            "--correlator-cost-signals=true", "--correlator-mode-signals=false", "--correlator-span-ms=3000",
            "--correlator-min-hosts=2", "--correlator-clear-ms=6000", "--correlator-diag-ttl-ms=20000",
            "--correlator-max-diag-fraction=1"))
        coord.start()
        api = msgrpc.Client(coord.target, token=TOKEN)
        procs, agents, evlog = {}, {}, None
        try:
            for name, _ in AGENTS:
                p = subprocess.Popen([exe], stdout=subprocess.PIPE, text=True)
                line = p.stdout.readline().split()
                self.assertEqual(line[0], "READY", line)
                procs[name] = p
            for name, role in AGENTS:
                d = os.path.join(tmp, name)
                os.makedirs(d)
                agents[name] = agentapi.ApiAgent(
                    "--events=cpu-clock", "--sample-freq=999", f"--target-pid={procs[name].pid}",
                    "--sentinel-budget=100000", "--diagnostic-budget=100000", f"--window-ms={WINDOW_MS}",
                    f"--agent-id={name}", f"--labels=role={role}", f"--coordinator-url={coord.url}",
                    f"--coordinator-grpc={coord.target}", f"--token-file={tok}", "--mode=auto",
                    "--no-anomaly-enabled", "--uplink-heartbeat-ms=500", token=TOKEN, tmp=d).start()
            evlog = msgrpc.EventLog(api, fl.WatchEventsRequest())
            msgrpc.wait_until(lambda: sum(a.watching for a in api.call("ListAgents").agents) == 4, 30,
                              what="4 agents watching")
            # warm baselines (10 windows per host) and then some: a steady fleet raises nothing
            time.sleep(14 * WINDOW_MS / 1000.0)
            self.assertEqual(evlog.of("trigger"), [], "no trigger while every process burns cost_steady")

            t0 = time.monotonic()
            for name in ("lb-1", "lb-2"):
                procs[name].send_signal(signal.SIGUSR1)
            msgrpc.wait_until(lambda: evlog.of("trigger", "lb"), 30, what="a fleet trigger for group lb")
            took = time.monotonic() - t0
            trig = evlog.of("trigger", "lb")[0]
            print(f"  lb processes moved to cost_regressed -> fleet trigger for role=lb after {took:.1f} s: "
                  f"{trig.detail}")
            self.assertEqual(sorted(trig.agents), ["lb-1", "lb-2"], trig)
            for name in ("lb-1", "lb-2"):  # the group went to diagnostic: each lb agent says so itself
                agents[name].wait(lambda s: s["mode"] == "diagnostic" and s["pin"] and
                                  s["pin"]["source"] == "coordinator", 10, f"{name} pinned by the coordinator")
            for name in ("db-1", "db-2"):
                self.assertFalse(agents[name].status()["pin"], f"{name} was not pinned")
            time.sleep(4)  # the db group had every chance to trigger too
            self.assertEqual(evlog.of("trigger", "db"), [], "the db group did not change")
            self.assertEqual(len(evlog.of("trigger")), 1, [e.detail for e in evlog.of("trigger")])
        finally:
            if evlog:
                evlog.close()
            for a in agents.values():
                a.stop()
            for p in procs.values():
                p.kill()
                p.wait()
                p.stdout.close()
            coord.stop()

        # the key names cost_regressed by the id the agents' own symbolizers gave it
        ids = set()
        for name in ("lb-1", "lb-2"):
            ids |= {f["id"] for w in agents[name].windows() for f in w["funcs"] if f["name"] == "cost_regressed"}
        self.assertEqual(len(ids), 1, f"one function id for one binary on both hosts: {ids}")
        key = f"cost:{ids.pop():016x}:cpu-clock"
        self.assertIn(f"key={key}", trig.detail)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    mstest.main()
