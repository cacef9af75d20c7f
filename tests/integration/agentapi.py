"""Helpers of the control-API, metrics and mode/anomaly integration tests: an agent with its
control API and /metrics on free loopback ports, a small HTTP client that reports status, headers
and JSON, and polling of the status endpoint."""
import http.client
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import mstest  # noqa: E402


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def request(port, method, path, body=None, headers=None, timeout=10, host="127.0.0.1"):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        data = body.encode() if isinstance(body, str) else body
        h = dict(headers or {})
        if data is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        return Reply(r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace"))
    finally:
        c.close()


class ApiAgent(mstest.Agent):
    """The agent with the control API on a free port (or `control_port`) and /metrics likewise."""

    def __init__(self, *args, control_port=None, metrics_port=None, prefix=None, token=None, **kw):
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}
        self.control_port = control_port or free_port()
        self.metrics_port = metrics_port or free_port()
        super().__init__(f"--control-port={self.control_port}", f"--metrics-port={self.metrics_port}", *args, **kw)
        if prefix:
            self.args = list(prefix) + self.args

    def start(self, wait_ready=True, timeout=30):
        super().start(wait_ready, timeout)
        if wait_ready:
            self.wait_log("CONTROL-LISTEN", timeout)
            self.wait(lambda s: s["counters"]["windows"] >= 1, timeout, "a first window")
        return self

    def api(self, method, path, body=None, headers=None, **kw):
        """headers None: the agent's token (if any); a dict: exactly those headers."""
        return request(self.control_port, method, path, body, headers=self.auth if headers is None else headers, **kw)

    def status(self):
        r = self.api("GET", "/api/v1/status")
        assert r.status == 200, r
        return r.json()

    def metrics(self):
        r = request(self.metrics_port, "GET", "/metrics")
        assert r.status == 200, r
        return r.body

    def metric(self, name, labels=None):
        """Value of the first sample of `name` whose labels include `labels`, or None."""
        for line in self.metrics().splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            head, _, value = line.rpartition(" ")
            if head != name and not head.startswith(name + "{"):
                continue
            if labels and not all(f'{k}="{v}"' in head for k, v in labels.items()):
                continue
            return float(value)
        return None

    def wait(self, cond, timeout=20, what="condition"):
        end = time.time() + timeout
        last = None
        while time.time() < end:
            try:
                last = self.status()
                if cond(last):
                    return last
            except (OSError, AssertionError, KeyError, ValueError):
                pass
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited ({self.proc.returncode}):\n{self.log()}")
            time.sleep(0.1)
        raise AssertionError(f"timeout waiting for {what}; last status: {json.dumps(last)[:2000]}")


def curl(cmd, timeout=20):
    """Runs a shell command line (a guide example) and returns its stdout."""
    r = subprocess.run(["bash", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr
