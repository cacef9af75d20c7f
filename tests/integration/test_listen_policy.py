"""Control surfaces beyond loopback need authentication (issue #10). The coordinator refuses to
start (exit 2, CONFIG-INVALID naming the key) when its nng listener or gRPC API binds beyond
loopback without token_file (or tls_ca_file: mutual TLS), or its HTTP port (which serves the
agent list) without token_file; its default listen_url is loopback. The agent refuses a
non-loopback control API without a token; its /metrics is read-only and public by design
(Prometheus scrapes it), so it may listen anywhere. With a token everything starts and the
protected routes answer 401 without it."""
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import agentapi  # noqa: E402
import msfleet  # noqa: E402
import mstest  # noqa: E402

COORD = os.path.join(mstest.BUILD, "coordinator", "micro_sentinel_coordinator")
TOKEN = "listen-policy-token-0123456789abcdef"


def slurp(path):
    with open(path) as f:
        return f.read()


def status_of(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


class ListenPolicyTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ms-h6-listen-")
        fd = os.open(os.path.join(self.tmp, "token"), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, (TOKEN + "\n").encode())
        os.close(fd)
        self.tok = os.path.join(self.tmp, "token")

    def coord(self, *extra, nport=None):
        nport = nport or msfleet.free_port()
        return [COORD, f"--listen-url=tcp://127.0.0.1:{nport}", f"--state-dir={self.tmp}/coord",
                "--metrics-port=0", "--grpc-port=0", *extra]

    def refused(self, argv, *needles):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2, f"{argv}: rc {p.returncode}\n{p.stderr}")
        self.assertIn("CONFIG-INVALID", p.stderr)
        for n in needles:
            self.assertIn(n, p.stderr)
        return p.stderr

    def test_coordinator_refuses_open_surfaces(self):
        p = msfleet.free_port()
        for url in (f"tcp://0.0.0.0:{p}", f"tcp://[::]:{p}", f"tcp://:{p}", f"tls+tcp://0.0.0.0:{p}"):
            extra = [f"--tls-cert-file={self.tmp}/c.pem", f"--tls-key-file={self.tmp}/c.key"] if "tls" in url else []
            self.refused(self.coord(f"--listen-url={url}", *extra), "listen_url", "is not loopback",
                         "token_file or tls_ca_file")
        self.refused(self.coord("--grpc-address=0.0.0.0", f"--grpc-port={msfleet.free_port()}"),
                     "grpc_address 0.0.0.0 is not loopback")
        self.refused(self.coord("--metrics-address=::", f"--metrics-port={msfleet.free_port()}"),
                     "metrics_address :: is not loopback")
        # a port of 0 is no surface at all
        self.refused(self.coord("--grpc-address=0.0.0.0", "--grpc-port=0", "--metrics-address=0.0.0.0",
                                f"--metrics-port={msfleet.free_port()}"), "metrics_address")

    def test_coordinator_default_listen_url_is_loopback(self):
        p = subprocess.run([COORD, "--help"], capture_output=True, text=True, timeout=30)
        self.assertIn("tcp://127.0.0.1:9300", p.stdout)

    def test_coordinator_with_token_listens_anywhere(self):
        nport, mport, gport = msfleet.free_port(), msfleet.free_port(), msfleet.free_port()
        log = os.path.join(self.tmp, "coord.log")
        args = [COORD, f"--listen-url=tcp://0.0.0.0:{nport}", f"--state-dir={self.tmp}/coord", f"--token-file={self.tok}",
                "--metrics-address=0.0.0.0", f"--metrics-port={mport}", "--grpc-address=0.0.0.0",
                f"--grpc-port={gport}"]
        with open(log, "w") as err:
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        try:
            end = time.time() + 30
            while time.time() < end and "COORD-READY" not in slurp(log):
                self.assertIsNone(proc.poll(), slurp(log))
                time.sleep(0.05)
            self.assertIn("COORD-READY", slurp(log))
            self.assertEqual(status_of(f"http://127.0.0.1:{mport}/metrics"), 200)
            self.assertEqual(status_of(f"http://127.0.0.1:{mport}/api/v1/agents"), 401)
            self.assertEqual(status_of(f"http://127.0.0.1:{mport}/api/v1/agents", TOKEN), 200)
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(30), 0, slurp(log))

    def test_agent_control_api(self):
        argv = [mstest.AGENT, "--perf-mock", f"--state-dir={self.tmp}/a", "--metrics-port=0",
                f"--control-port={msfleet.free_port()}", "--control-address=0.0.0.0"]
        self.refused(argv, "control_address 0.0.0.0 is not loopback")
        # with a token: it listens beyond loopback and wants the token; /metrics is public anywhere
        agent = agentapi.ApiAgent("--perf-mock", "--window-ms=200", "--control-address=0.0.0.0",
                                  "--metrics-address=0.0.0.0", f"--token-file={self.tok}", token=TOKEN)
        agent.start()
        try:
            self.assertEqual(agent.api("GET", "/api/v1/status", headers={}).status, 401)
            self.assertEqual(agent.api("GET", "/api/v1/status").status, 200)
            self.assertEqual(status_of(f"http://127.0.0.1:{agent.metrics_port}/metrics"), 200)
        finally:
            self.assertEqual(agent.stop(), 0, agent.log())
        # /metrics beyond loopback without any token: allowed (read-only, scraped by Prometheus)
        agent = agentapi.ApiAgent("--perf-mock", "--window-ms=200", "--metrics-address=0.0.0.0")
        agent.start()
        try:
            self.assertEqual(status_of(f"http://127.0.0.1:{agent.metrics_port}/metrics"), 200)
        finally:
            self.assertEqual(agent.stop(), 0, agent.log())


if __name__ == "__main__":
    mstest.main()
