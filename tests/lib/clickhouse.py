"""A throwaway ClickHouse server for tests: started on free loopback ports with a fresh temporary
data directory, stopped (SIGTERM, then SIGKILL) and removed afterwards. Never reuses data between
runs and never relies on TRUNCATE (STACK.md §3: truncated parts come back after a restart).

    with clickhouse.Server() as ch:
        ch.query("SELECT version()")            # -> "18.16.1"
        ch.stop(); ch.start()                   # same data directory, same ports (outage tests)

Queries go over the HTTP interface with urllib, so the fixture needs nothing but the server
binary. A test calls skip_unless_available() to skip visibly on machines without ClickHouse."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

SERVER_BIN = shutil.which("clickhouse-server") or "/usr/bin/clickhouse-server"
BASE_CONFIG = "/etc/clickhouse-server/config.xml"


def available():
    return os.path.exists(SERVER_BIN) and os.path.exists(BASE_CONFIG)


def skip_unless_available():
    if not available():
        raise unittest.SkipTest(f"ClickHouse not installed ({SERVER_BIN}, {BASE_CONFIG})")


def free_ports(n):
    """n distinct free TCP ports on loopback (bound together so they differ)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


class QueryError(Exception):
    pass


class Server:
    """One clickhouse-server process with its own data directory and ports."""

    def __init__(self, start_timeout=60, users=None):
        """users: optional {name: password} added to the default (password-less) user."""
        self.dir = tempfile.mkdtemp(prefix="ms-ch-")
        self.users = dict(users or {})
        self.http_port, self.tcp_port, self.inter_port = free_ports(3)
        self.start_timeout = start_timeout
        self.proc = None
        self.stdout = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.http_port}"

    def start(self):
        for d in ("data", "tmp", "user_files", "format_schemas"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        users_xml = self._write_users()
        args = [SERVER_BIN, f"--config-file={BASE_CONFIG}", "--",
                f"--path={self.dir}/data/", f"--tmp_path={self.dir}/tmp/",
                f"--user_files_path={self.dir}/user_files/",
                f"--format_schema_path={self.dir}/format_schemas/",
                f"--logger.log={self.dir}/server.log", f"--logger.errorlog={self.dir}/err.log",
                "--listen_host=127.0.0.1",
                f"--http_port={self.http_port}", f"--tcp_port={self.tcp_port}",
                f"--interserver_http_port={self.inter_port}", f"--users_config={users_xml}"]
        self.stdout = open(os.path.join(self.dir, "stdout.log"), "a")
        self.proc = subprocess.Popen(args, stdout=self.stdout, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        end = time.time() + self.start_timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"clickhouse-server exited ({self.proc.returncode}):\n" + self.log_tail())
            if self.ping():
                return self
            time.sleep(0.1)
        self.stop()
        raise AssertionError("clickhouse-server did not answer /ping:\n" + self.log_tail())

    def _write_users(self):
        """A users.xml: the password-less default user (the tests' own queries) plus self.users,
        each allowed from loopback only."""
        def user(name, password):
            return (f"<{name}><password>{password}</password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>"
                    f"<profile>default</profile><quota>default</quota></{name}>")
        body = user("default", "") + "".join(user(n, p) for n, p in self.users.items())
        path = os.path.join(self.dir, "users.xml")
        with open(path, "w") as f:
            f.write("<?xml version=\"1.0\"?><yandex><profiles><default><max_memory_usage>10000000000"
                    "</max_memory_usage></default></profiles><users>" + body + "</users>"
                    "<quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>"
                    "<result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>"
                    "</interval></default></quotas></yandex>\n")
        return path

    def ping(self):
        try:
            with urllib.request.urlopen(self.endpoint + "/ping", timeout=1) as r:
                return r.read().startswith(b"Ok")
        except (OSError, urllib.error.URLError):
            return False

    def log_tail(self, n=4000):
        out = ""
        for name in ("stdout.log", "err.log"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    out += f"--- {name}\n" + f.read()[-n:]
        return out

    def stop(self, timeout=30):
        """SIGTERM and wait (the server exits in ~3 s); SIGKILL if it does not."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.stdout:
            self.stdout.close()
            self.stdout = None
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def query(self, sql, data=None, settings=None, timeout=60, user=None, password=None):
        """Runs sql over HTTP; returns the response body as text (stripped). data (bytes) is sent
        as the body after the query (INSERT ... FORMAT X). Raises QueryError with the server's
        message."""
        params = {"query": sql}
        params.update(settings or {})
        url = self.endpoint + "/?" + urllib.parse.urlencode(params)
        req = urllib.request.Request(url, data=data if data is not None else b"", method="POST")
        if user is not None:
            import base64
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            req.add_header("Authorization", "Basic " + token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.read().decode().strip()
        except urllib.error.HTTPError as e:
            raise QueryError(e.read().decode(errors="replace").strip()) from None

    def rows(self, sql, **kw):
        """Runs sql and returns a list of tuples of strings (TabSeparated)."""
        out = self.query(sql + " FORMAT TabSeparated", **kw)
        return [tuple(line.split("\t")) for line in out.splitlines() if line]

    def run_script(self, text, database_settings=None):
        """Runs a clickhouse-client style script (statements ending with ';', '--' comments) one
        statement at a time. SET lines become settings of the following statements (HTTP has no
        session here)."""
        settings = dict(database_settings or {})
        stmts, cur = [], []
        for line in text.splitlines():
            if line.startswith("--"):
                continue
            cur.append(line)
            if line.rstrip().endswith(";"):
                stmts.append("\n".join(cur).strip().rstrip(";"))
                cur = []
        for st in stmts:
            if not st:
                continue
            if st.upper().startswith("SET "):
                k, v = st[4:].split("=", 1)
                settings[k.strip()] = v.strip()
                continue
            self.query(st, settings=settings)

    def scalar(self, sql, **kw):
        out = self.query(sql, **kw)
        return int(out) if out.lstrip("-").isdigit() else out
