"""Secrets (issue #10): tokens and ClickHouse passwords come only from files, and only from files
no one else can read or write (common/secretfile.c). Both daemons refuse, with exit code 2 and a
reason naming the file, a secret file that is group/world readable or writable, owned by another
user, or not a regular file; a secret given as a config value or a flag is refused with a pointer
to the *_file key, and the secret itself never reaches the log."""
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import msfleet  # noqa: E402
import mstest  # noqa: E402

COORD = os.path.join(mstest.BUILD, "coordinator", "micro_sentinel_coordinator")
SECRET = "s3cret-token-0123456789-do-not-log"


def slurp(path):
    with open(path) as f:
        return f.read()


def write(path, text, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, text.encode())
    os.close(fd)
    os.chmod(path, mode)
    return path


class SecretsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ms-h6-secrets-")

    def agent_args(self, *extra):
        return [mstest.AGENT, "--perf-mock", "--window-ms=200", f"--state-dir={self.tmp}/agent",
                "--metrics-port=0", "--control-port=0", *extra]

    def coord_args(self, *extra):
        return [COORD, f"--listen-url=tcp://127.0.0.1:{msfleet.free_port()}", f"--state-dir={self.tmp}/coord",
                "--metrics-port=0", "--grpc-port=0", *extra]

    def refused(self, argv, *needles):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2, f"{argv}: rc {p.returncode}\n{p.stderr}")
        for n in needles:
            self.assertIn(n, p.stderr)
        self.assertNotIn(SECRET, p.stderr + p.stdout, "the secret leaked into the output")
        return p.stderr

    def starts(self, argv, ready):
        log = os.path.join(self.tmp, "ok.log")
        with open(log, "w") as err:
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
            try:
                end = time.time() + 30
                while time.time() < end and p.poll() is None:
                    if ready in slurp(log):
                        break
                    time.sleep(0.05)
                self.assertIsNone(p.poll(), f"{argv} exited {p.returncode}:\n{slurp(log)}")
            finally:
                p.terminate()
                rc = p.wait(30)
        text = slurp(log)
        self.assertEqual(rc, 0, text)
        self.assertNotIn(SECRET, text)
        return text

    def test_shared_modes_refused(self):
        for mode in (0o644, 0o640, 0o604, 0o620, 0o602):
            tok = write(os.path.join(self.tmp, f"token{mode:o}"), SECRET + "\n", mode)
            pw = write(os.path.join(self.tmp, f"pw{mode:o}"), SECRET + "\n", mode)
            for argv in (self.agent_args(f"--token-file={tok}"), self.coord_args(f"--token-file={tok}")):
                self.refused(argv, "token_file", tok, "chmod 600")
            for argv in (self.agent_args("--clickhouse-endpoint=http://127.0.0.1:1", f"--clickhouse-password-file={pw}"),
                         self.coord_args(f"--clickhouse-password-file={pw}")):
                self.refused(argv, "clickhouse_password_file", "chmod 600")

    def test_foreign_owner_and_type_refused(self):
        mstest.require_root(self)
        tok = write(os.path.join(self.tmp, "foreign"), SECRET + "\n", 0o600)
        os.chown(tok, 65534, 65534)
        for argv in (self.agent_args(f"--token-file={tok}"), self.coord_args(f"--token-file={tok}")):
            self.refused(argv, "owned by another user")
        os.mkdir(os.path.join(self.tmp, "dir"), 0o700)
        for argv in (self.agent_args(f"--token-file={self.tmp}/dir"), self.coord_args(f"--token-file={self.tmp}/dir")):
            self.refused(argv, "not a regular file")
        os.mkfifo(os.path.join(self.tmp, "fifo"), 0o600)
        for argv in (self.agent_args(f"--token-file={self.tmp}/fifo"), self.coord_args(f"--token-file={self.tmp}/fifo")):
            self.refused(argv, "not a regular file")
        for argv in (self.agent_args(f"--token-file={self.tmp}/missing"), self.coord_args(f"--token-file={self.tmp}/missing")):
            self.refused(argv, "No such file")

    def test_secret_values_refused(self):
        for argv in (self.agent_args(f"--token={SECRET}"), self.coord_args(f"--token={SECRET}"),
                     self.coord_args(f"--clickhouse-password={SECRET}"),
                     self.agent_args(f"--clickhouse-password={SECRET}")):
            self.refused(argv, "secrets are never config values or flags")
        conf = write(os.path.join(self.tmp, "c.conf"), f"clickhouse_password={SECRET}\n", 0o600)
        self.refused(self.coord_args(f"--config={conf}"), "secrets are never config values or flags", "c.conf:1")
        conf = write(os.path.join(self.tmp, "a.conf"), f"token = {SECRET}\n", 0o600)
        self.refused(self.agent_args(f"--config={conf}"), "secrets are never config values or flags")

    def test_private_files_accepted(self):
        tok = write(os.path.join(self.tmp, "token"), SECRET + "\n", 0o600)
        # a Kubernetes secret volume: a symlink to a 0400 file
        real = write(os.path.join(self.tmp, "real"), SECRET + "\n", 0o400)
        link = os.path.join(self.tmp, "link")
        os.symlink(real, link)
        self.starts(self.coord_args(f"--token-file={tok}"), "COORD-READY")
        self.starts(self.coord_args(f"--token-file={link}"), "COORD-READY")
        self.starts(self.agent_args(f"--token-file={link}", "--control-port=" + str(msfleet.free_port())),
                    "AGENT-READY")


if __name__ == "__main__":
    mstest.main()
