"""Fixtures of the deployment tests (systemd units, Kubernetes manifests): run the real agent and
coordinator with a shipped configuration file, overriding only what a test machine must change
(paths, ports, the coordinator address), and check that they come up and talk to each other."""
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

import mstest

COORD = os.path.join(mstest.BUILD, "coordinator", "micro_sentinel_coordinator")
TOKEN = "deploy-test-token-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def conf_keys(text):
    """{key: value} of a key=value config text (comments and blank lines skipped)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def value(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class Proc:
    """A daemon started with --config=<file written from text> plus overriding flags."""

    def __init__(self, binary, conf_text, overrides, ready, tmp):
        self.tmp = tmp
        self.conf = os.path.join(tmp, os.path.basename(binary) + ".conf")
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.log_path = os.path.join(tmp, os.path.basename(binary) + ".log")
        self.args = [binary, f"--config={self.conf}"] + list(overrides)
        self.ready = ready

    def start(self, timeout=30):
        self.err = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.err)
        end = time.time() + timeout
        while time.time() < end:
            if self.ready in self.log():
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.args[0]} exited ({self.proc.returncode}) with config "
                                     f"{self.conf}:\n{self.log()}")
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        self.err.close()
        raise AssertionError(f"{self.args[0]} not ready:\n{self.log()}")

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        rc = self.proc.wait(60)
        self.err.close()
        return rc


def token_file(tmp):
    path = os.path.join(tmp, "token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, (TOKEN + "\n").encode())
    os.close(fd)
    return path


def run_pair(test, coord_conf, agent_conf=None):
    """Starts the coordinator with coord_conf and (when given) a synthetic agent with agent_conf
    pointed at it, both with a shared token; asserts the agent's windows are acked and both stop
    cleanly. Returns the parsed coordinator config."""
    tmp = tempfile.mkdtemp(prefix="ms-deploy-")
    tok = token_file(tmp)
    nport, mport = free_port(), free_port()
    coord = Proc(COORD, coord_conf, [f"--listen-url=tcp://127.0.0.1:{nport}", f"--state-dir={tmp}/coord",
                                      f"--token-file={tok}", f"--metrics-port={mport}", "--metrics-address=127.0.0.1",
                                      "--grpc-port=0", "--grpc-address=127.0.0.1", "--clickhouse-endpoint=",
                                      "--clickhouse-password-file="], "COORD-READY", tmp).start()
    agent = None
    try:
        if agent_conf is not None:
            amport = free_port()
            agent = Proc(mstest.AGENT, agent_conf, [
                "--perf-mock", "--window-ms=300", f"--coordinator-url=tcp://127.0.0.1:{nport}", f"--token-file={tok}",
                f"--state-dir={tmp}/agent", f"--metrics-port={amport}", "--metrics-address=127.0.0.1",
                "--control-port=0", "--control-address=127.0.0.1", "--clickhouse-endpoint="], "AGENT-READY", tmp)
            try:
                agent.start()
            except BaseException:
                agent = None  # start() reaped it
                raise
            if "UPLINK-INIT" not in agent.log():
                # an agent build without the uplink: the config is valid, nothing to exchange
                return conf_keys(coord_conf)
            end = time.time() + 60
            acked = 0
            while time.time() < end and acked < 1:
                acked = value(scrape(amport), "ms_uplink_windows_acked_total") or 0
                time.sleep(0.2)
            test.assertGreaterEqual(acked, 1, "no window acked:\n" + agent.log() + coord.log())
            test.assertGreaterEqual(value(scrape(mport), "ms_coord_windows_accepted_total") or 0, 1)
    finally:
        if agent:
            test.assertEqual(agent.stop(), 0, agent.log())
        test.assertEqual(coord.stop(), 0, coord.log())
    return conf_keys(coord_conf)
