"""Leaks at start/stop (issue #10): the coordinator (nng ingest, gRPC control plane, /metrics)
and the agent (synthetic source, control API, /metrics, uplink to that coordinator, gRPC fleet
control) run under valgrind --leak-check=full, exchange windows and take an API call, and stop
on SIGTERM with zero "definitely lost" blocks. Allocations that gRPC, nng, libcurl and glibc keep
for the process's lifetime are suppressed by tests/valgrind.supp (each entry says why); nothing
allocated by our code is suppressed. A build with MS_SANITIZE=ON cannot run under valgrind: then
the same scenario runs with LeakSanitizer on instead."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import agentapi  # noqa: E402
import msfleet  # noqa: E402
import mstest  # noqa: E402

COORD = os.path.join(mstest.BUILD, "coordinator", "micro_sentinel_coordinator")
SUPP = os.path.join(mstest.SRC, "tests", "valgrind.supp")
TOKEN = "leak-check-token-0123456789abcdef"


def sanitized():
    try:
        with open(os.path.join(mstest.BUILD, "CMakeCache.txt")) as f:
            return "MS_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


class Daemon:
    def __init__(self, argv, log, ready, tool_log):
        self.log_path, self.ready, self.tool_log = log, ready, tool_log
        env = dict(os.environ)
        if sanitized():
            env["ASAN_OPTIONS"] = f"detect_leaks=1:halt_on_error=1:log_path={tool_log}"
            self.argv = argv
        else:
            self.argv = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite",
                         "--errors-for-leak-kinds=definite", "--error-exitcode=99", f"--suppressions={SUPP}",
                         "--num-callers=30", "--trace-children=no", f"--log-file={tool_log}"] + argv
        self.err = open(log, "w")
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=self.err, env=env)

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_ready(self, timeout=180):
        end = time.time() + timeout
        while time.time() < end:
            if self.ready in self.text():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.argv[-1]} exited {self.proc.returncode}:\n{self.text()}")
            time.sleep(0.2)
        raise AssertionError("not ready:\n" + self.text())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            rc = self.proc.wait(180)
        finally:
            self.err.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def tool_report(path):
    """The tool's log; LeakSanitizer appends .PID to log_path."""
    text = ""
    d, base = os.path.split(path)
    for name in sorted(os.listdir(d)):
        if name.startswith(base):
            with open(os.path.join(d, name)) as f:
                text += f.read()
    return text


class LeakTest(unittest.TestCase):
    def setUp(self):
        if not sanitized() and not shutil.which("valgrind"):
            raise unittest.SkipTest("needs valgrind (or an MS_SANITIZE=ON build)")
        self.tmp = tempfile.mkdtemp(prefix="ms-h6-leaks-")
        fd = os.open(os.path.join(self.tmp, "token"), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, (TOKEN + "\n").encode())
        os.close(fd)

    def check_clean(self, name, rc, report, log):
        self.assertEqual(rc, 0, f"{name}: exit {rc}\n{report[-6000:]}\n{log[-3000:]}")
        if sanitized():
            self.assertNotIn("ERROR: LeakSanitizer", report, report[-6000:])
            self.assertNotIn("ERROR: AddressSanitizer", report, report[-6000:])
        else:
            m = re.search(r"definitely lost: ([\d,]+) bytes in ([\d,]+) blocks", report)
            if m:
                self.assertEqual(m.group(2), "0", f"{name}: {m.group(0)}\n{report[-8000:]}")
            self.assertIn("ERROR SUMMARY: 0 errors", report, f"{name}:\n{report[-8000:]}")

    def test_coordinator_and_agent_start_stop(self):
        tok = os.path.join(self.tmp, "token")
        nport, mport, gport = msfleet.free_port(), msfleet.free_port(), msfleet.free_port()
        coord = Daemon([COORD, f"--listen-url=tcp://127.0.0.1:{nport}", f"--state-dir={self.tmp}/coord",
                        f"--token-file={tok}", f"--metrics-port={mport}", f"--grpc-port={gport}",
                        "--heartbeat-ms=500"], os.path.join(self.tmp, "coord.log"), "COORD-READY",
                       os.path.join(self.tmp, "coord.tool"))
        agent = None
        try:
            coord.wait_ready()
            cport, amport = msfleet.free_port(), msfleet.free_port()
            agent = Daemon([mstest.AGENT, "--perf-mock", "--agent-id=leak-agent", "--window-ms=300", "--mock-rate=2000",
                            f"--coordinator-url=tcp://127.0.0.1:{nport}", f"--coordinator-grpc=127.0.0.1:{gport}",
                            f"--token-file={tok}", f"--state-dir={self.tmp}/agent", f"--control-port={cport}",
                            f"--metrics-port={amport}"], os.path.join(self.tmp, "agent.log"), "AGENT-READY",
                           os.path.join(self.tmp, "agent.tool"))
            agent.wait_ready()
            auth = {"Authorization": f"Bearer {TOKEN}"}
            msfleet.wait_until(lambda: "UPLINK-CONNECTED" in agent.text(), 120, what="uplink connected")
            end = time.time() + 120
            while time.time() < end:
                m = msfleet.parse_metrics(msfleet.http_get(mport, "/metrics"))
                if m.get("ms_coord_windows_accepted_total", 0) >= 2:
                    break
                time.sleep(0.5)
            r = agentapi.request(cport, "POST", "/api/v1/mode", '{"mode":"diagnostic","ttl_s":60}', headers=auth,
                                 timeout=60)
            self.assertEqual(r.status, 200, r)
            r = agentapi.request(cport, "GET", "/api/v1/status", headers=auth, timeout=60)
            self.assertEqual(r.status, 200, r)
            r = agentapi.request(amport, "GET", "/metrics", timeout=60)
            self.assertEqual(r.status, 200, r)
            arc = agent.stop()
            self.check_clean("agent", arc, tool_report(os.path.join(self.tmp, "agent.tool")), agent.text())
            agent = None
            crc = coord.stop()
            self.check_clean("coordinator", crc, tool_report(os.path.join(self.tmp, "coord.tool")), coord.text())
        finally:
            if agent:
                agent.kill()
            coord.kill()


if __name__ == "__main__":
    mstest.main()
