"""docs/OPERATIONS.md, every command in it (issue 8: "every command in it is tested by a script").

The guide is parsed: fenced ``` blocks (bash lines, the yaml scrape config, the SQL), indented code
blocks, and inline `code` spans that are shell commands (msctl, build/..., curl, deploy/...,
micro_sentinel_agent/_coordinator, make, systemctl, install, SELECT, promtool, bpftool, perf, ss,
pkill, python3, MS_BUILD=...) or flags (`--perf-mock`). Each one is mapped to a checker that runs
it for real or validates it against the real component:

- `install` lines run with every absolute destination moved under a temporary root; the files
  arrive with the modes given and the content of their sources;
- `systemctl` cannot run here (no systemd as PID 1): the units the install lines put into
  TMP/etc/systemd/system pass `systemd-analyze verify` with ExecStart pointing at the binaries and
  configuration the same lines installed, `enable` finds an [Install] section, the `systemctl
  edit` drop-in of 2.2 verifies too; the output says what was validated instead of run;
- `curl` lines run with the real curl binary against a real agent (synthetic source; ports
  replaced only when 9200/9105 are taken) and against a real ClickHouse; pipes are applied in
  Python; HTTP success and the effect (mode pinned, targets set, metrics present) are checked;
- the scrape config runs through `promtool check config` with the test's real ports, its job names
  are the ones backend/alert_rules.yml uses; the SQL runs on the real ClickHouse the real
  coordinator filled; msctl lines run against that ClickHouse and the coordinator's gRPC API;
- the daemons' --help output is compared key by key with the tables of section 3;
- `deploy/lab/lab.py` and `make demo` are run by test_lab.py / test_demo.py: checked here to be
  there (and `make -n demo` to run deploy/demo.sh).

A command no checker knows FAILS the test (so a new command gets a checker), and so does any
failed check. The table "command -> how checked -> result" is printed. Checkers are live: a few
broken variants of doc commands must fail them (test_checkers_are_live)."""
import glob
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import agentapi  # noqa: E402
import chrun  # noqa: E402
import clickhouse  # noqa: E402
import msdeploy  # noqa: E402
import msfleet  # noqa: E402
import mstest  # noqa: E402

SRC, BUILD = mstest.SRC, mstest.BUILD
DOC = os.path.join(SRC, "docs", "OPERATIONS.md")
MSCTL = os.path.join(BUILD, "coordinator", "msctl")
COORD = msfleet.COORD
BINS = {"micro_sentinel_agent": mstest.AGENT, "micro_sentinel_coordinator": COORD, "msctl": MSCTL}
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
CURL = shutil.which("curl") or "/usr/bin/curl"
DB = "microsentinel"  # the doc's database: the coordinator writes it, the SQL and msctl read it
READER, READER_PW = "reader", "ops-doc-reader-pw"
TOKEN = "ops-doc-token-0123456789abcdef"

# first words that make a code span or code line a command; "/"-ending and "=" ones are prefixes
CMD_WORDS = ("msctl", "curl", "micro_sentinel_agent", "micro_sentinel_coordinator", "make", "systemctl", "install",
             "SELECT", "promtool", "bpftool", "perf", "ss", "pkill", "python3", "/usr/bin/python3", "openssl", "sed")
CMD_PREFIXES = ("build/", "deploy/", "tests/integration/", "MS_BUILD=")


def is_command(text):
    w = text.split()[0] if text.split() else ""
    return w in CMD_WORDS or w.startswith(CMD_PREFIXES) or text.startswith("--")


class Item:
    def __init__(self, line, section, kind, text):
        self.line, self.section, self.kind, self.text = line, section, kind, text


def logical_lines(lines):
    """(offset, line) of a code block with `\\` continuations joined and blank/comment lines dropped."""
    out, cur, start = [], "", None
    for i, raw in enumerate(lines):
        s = raw.strip()
        if start is None:
            if not s or s.startswith("#"):
                continue
            start = i
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        out.append((start, cur + s))
        cur, start = "", None
    return out


def parse(text):
    """Items of the guide: ("sh", command line), ("sql"|"yaml"|"block:<lang>", whole block),
    ("span", inline code that is a command or a flag)."""
    items, section = [], ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        if line.startswith("```"):
            lang, body, start = line[3:].strip(), [], i + 1
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            if lang in ("bash", "sh", ""):
                items += [Item(start + 1 + off, section, "sh", cmd) for off, cmd in logical_lines(body)]
            elif lang in ("sql", "yaml"):
                items.append(Item(start + 1, section, lang, "\n".join(body)))
            else:
                items.append(Item(start + 1, section, "block:" + lang, "\n".join(body)))
            i += 1
            continue
        if line.startswith("    ") and line.strip() and i > 0 and not lines[i - 1].strip():
            start, body = i, []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                body.append(lines[i])
                i += 1
            items += [Item(start + 1 + off, section, "sh", cmd) for off, cmd in logical_lines(body)]
            continue
        for span in re.findall(r"`([^`]+)`", line):
            if re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", span):
                items.append(Item(i + 1, section, "logline", span))
            elif re.fullmatch(r"(GET|POST) /\S+", span):
                items.append(Item(i + 1, section, "endpoint", span))
            elif is_command(span):
                items.append(Item(i + 1, section, "span", span))
        i += 1
    return items


def run(argv, timeout=120, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout, **kw)


def split_pipes(cmd):
    """shlex tokens of a command line (comments dropped) split at `|`: [argv, pipe1, ...]."""
    parts, cur = [], []
    for tok in shlex.split(cmd, comments=True):
        if tok == "|":
            parts.append(cur)
            cur = []
        else:
            cur.append(tok)
    parts.append(cur)
    return parts


def apply_pipes(out, pipes):
    """The pipes the guide uses, in Python: `python3 -m json.tool` (must parse), `grep [-E] PAT`
    (must match a line, as grep's exit status would say)."""
    for p in pipes:
        if p[:3] == ["python3", "-m", "json.tool"]:
            out = json.dumps(json.loads(out), indent=4)
        elif p and p[0] == "grep":
            pat = p[-1]
            lines = [l for l in out.splitlines() if re.search(pat, l)]
            assert lines, f"`{' '.join(p)}` matches nothing in:\n{out[:1500]}"
            out = "\n".join(lines)
        else:
            raise AssertionError(f"no Python equivalent for the pipe `{' '.join(p)}`")
    return out


def help_keys(text):
    """{key: (type, default)} from a daemon's --help."""
    out = {}
    for m in re.finditer(r"^  --([a-z0-9-]+)=<(\w+)>\s+(.*)$", text, re.M):
        d = re.search(r"default: ([^)]*)\)\s*$", m.group(3))
        out[m.group(1).replace("-", "_")] = (m.group(2), d.group(1) if d else "")
    for m in re.finditer(r"^  --([a-z0-9-]+), --no-\1\s+(.*)$", text, re.M):
        d = re.search(r"default: ([^)]*)\)\s*$", m.group(2))
        out[m.group(1).replace("-", "_")] = ("bool", d.group(1) if d else "")
    return out


def table_keys(text, heading):
    """{key: (type, default)} of the key table under a heading of the guide."""
    sec = text.split(heading, 1)[1].split("\n#", 1)[0]
    out = {}
    for m in re.finditer(r"^\| `([a-z0-9_]+)` \| (\w+) \| (?:`([^`]*)`)? *\|", sec, re.M):
        out[m.group(1)] = (m.group(2), m.group(3) or "")
    return out


class OpsDoc(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for b in BINS.values():
            if not os.access(b, os.X_OK):
                raise unittest.SkipTest(f"{b} not built")
        clickhouse.skip_unless_available()
        mstest.require_root(None)  # bpftool, ss -p, perf stat -e cycles
        missing = [t for t in (ANALYZE, PROMTOOL, CURL, "bpftool", "ss", "install", "make")
                   if not (os.path.exists(t) or shutil.which(t))]
        if missing:
            raise unittest.SkipTest(f"tools the guide uses are not installed: {missing} (deploy/install-deps.sh)")
        with open(DOC) as f:
            cls.doc = f.read()
        cls.items = parse(cls.doc)
        cls.tmp = tempfile.mkdtemp(prefix="ms-opsdoc-")
        cls.root = os.path.join(cls.tmp, "root")  # the install lines' "/"
        for d in ("usr/local/bin", "etc/systemd/system", "etc/prometheus"):  # what any Debian host has
            os.makedirs(os.path.join(cls.root, d))
        cls.ch = cls.coord = cls.agent = None
        cls.sd_procs = []
        try:
            cls.start_fleet()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_fleet(cls):
        cls.ch = clickhouse.Server(users={READER: READER_PW}).start()
        cls.token_file = os.path.join(cls.tmp, "token")
        with open(cls.token_file, "w") as f:
            f.write(TOKEN)
        os.chmod(cls.token_file, 0o600)
        cls.grpc_port = clickhouse.free_ports(1)[0]
        os.makedirs(os.path.join(cls.tmp, "coord"))
        cls.coord = chrun.Coordinator(cls.ch, DB, f"--grpc-port={cls.grpc_port}", f"--token-file={cls.token_file}",
                                      tmp=os.path.join(cls.tmp, "coord")).start()
        # a fleet agent streams a few seconds of synthetic windows into ClickHouse (SQL, msctl top)
        fleet = mstest.Agent("--perf-mock", f"--coordinator-url={cls.coord.url}", "--agent-id=opsdoc-1",
                             f"--token-file={cls.token_file}", f"--coordinator-grpc=127.0.0.1:{cls.grpc_port}",
                             "--mock-rate=20000", "--mock-flows=20", "--window-ms=300",
                             tmp=os.path.join(cls.tmp, "fleet"))
        os.makedirs(fleet.tmp, exist_ok=True)
        fleet.start()
        cls.fleet = fleet
        time.sleep(3)
        # ... and stops (SIGTERM, as systemctl stop does) before the SQL and msctl lines read: msctl
        # top compares a total read apart from the rows, and rows landing in between make it
        # answer "unexpected answer" (exit 1) -- reported, msctl_ch.c is not this test's
        cls.fleet_rc = fleet.stop()
        assert cls.fleet_rc == 0, fleet.log()[-2000:]
        expected = {"opsdoc-1": chrun.agent_totals(fleet)[0]}
        got = chrun.wait_stored(cls.ch, DB, expected)
        assert got == expected, (got, expected)
        # the agent the curl lines talk to: standalone, the guide's ports when they are free
        cls.verbatim = agentapi.port_free(9200) and agentapi.port_free(9105)
        cp, mp = (9200, 9105) if cls.verbatim else (None, None)
        cls.agent = agentapi.ApiAgent("--perf-mock", "--mock-rate=4000", "--window-ms=300", "--no-anomaly-enabled",
                                      control_port=cp, metrics_port=mp).start()

    @classmethod
    def tearDownClass(cls):
        for p in cls.sd_procs:  # daemons started from the installed units by a failed check
            if p.poll() is None:
                p.kill()
                p.wait()
        try:
            if cls.agent and cls.agent.proc:
                cls.agent.stop()
            if getattr(cls, "fleet", None) and cls.fleet.proc.poll() is None:
                cls.fleet.proc.kill()
                cls.fleet.proc.wait()
            if cls.coord and cls.coord.proc:
                cls.coord.stop()
        finally:
            if cls.ch:
                cls.ch.cleanup()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ helpers

    def local(self, path):
        """A path of the guide on this machine: build/ -> MS_BUILD, relative -> source tree,
        absolute -> under the temporary root."""
        if path == "build" or path.startswith("build/"):
            return os.path.join(BUILD, path[6:])
        if path.startswith("/"):
            return os.path.join(self.root, path.lstrip("/"))
        return os.path.join(SRC, path)

    def ports(self, cmd):
        cmd = cmd.replace("127.0.0.1:9200", f"127.0.0.1:{self.agent.control_port}")
        cmd = cmd.replace("127.0.0.1:9105", f"127.0.0.1:{self.agent.metrics_port}")
        return cmd.replace("CH:8123", f"127.0.0.1:{self.ch.http_port}")

    def msctl_argv(self, cmd):
        argv = shlex.split(cmd, comments=True)
        out = []
        for a in argv:
            if a == ">":
                break
            a = a.replace("http://CH:8123", self.ch.endpoint)
            a = a.replace("10.231.0.1:PORT", f"127.0.0.1:{self.grpc_port}")
            a = a.replace("=var/lab/token", "=" + self.token_file)
            a = re.sub(r"=(/etc/\S+)", lambda m: "=" + self.local(m.group(1)), a)
            out.append(a)
        if out[0] in ("msctl", "build/coordinator/msctl"):
            out[0] = MSCTL
        return out

    # ------------------------------------------------------------------ checkers

    def chk_install(self, cmd):
        argv = shlex.split(cmd, comments=True)
        assert argv[0] == "install"
        mode, is_dir, args, it = None, False, [], iter(argv[1:])
        for a in it:
            if a == "-m":
                mode = int(next(it), 8)
            elif a == "-d":
                is_dir = True
            elif a.startswith("-"):
                raise AssertionError(f"install option {a} has no checker")
            else:
                args.append(a)
        real = ["install"] + (["-m", oct(mode)[2:]] if mode is not None else []) + (["-d"] if is_dir else [])
        expect = []
        if is_dir:
            for d in args:
                assert d.startswith("/"), d
                real.append(self.local(d))
                expect.append((self.local(d), None))
        else:
            *srcs, dest = args
            files = []
            for s in srcs:
                if s == "/dev/null":  # an empty file with the mode (the token's, before its content)
                    files.append(s)
                    continue
                assert not s.startswith("/"), f"source {s} is not relative to the source tree"
                g = sorted(glob.glob(self.local(s)))
                assert g, f"source {s} does not exist ({self.local(s)})"
                files += g
            d = self.local(dest)
            real += files + [d]
            for f in files:
                expect.append((d, f))
        r = run(real)
        assert r.returncode == 0, f"{real}: {r.stderr}"
        for path, src in expect:
            if src and os.path.isdir(path) and src != "/dev/null":
                path = os.path.join(path, os.path.basename(src))
            st = os.stat(path)
            if mode is not None:
                assert stat.S_IMODE(st.st_mode) == mode, f"{path}: mode {oct(st.st_mode)} != {oct(mode)}"
            if src:
                with open(path, "rb") as a, open(src, "rb") as b:
                    assert a.read() == b.read(), f"{path} differs from {src}"
        what = "dirs" if is_dir else "files"
        return (f"ran with / -> TMP/; {len(expect)} {what} present" + (f", mode {oct(mode)[2:]}" if mode else "")), "ok"

    def unit_copy(self, name, dropin=None):
        """The installed unit (TMP/etc/systemd/system) with every absolute path of ExecStart moved
        under TMP, so verify checks the installed binary, and --config points at the installed file."""
        path = os.path.join(self.root, "etc/systemd/system", name)
        assert os.path.exists(path), f"{name} not installed by the install lines ({path})"
        with open(path) as f:
            text = f.read()
        execs = re.findall(r"^ExecStart=(.*)$", text, re.M)
        assert execs, f"{name}: no ExecStart"
        for e in execs:
            for tok in e.split():
                p = tok.split("=", 1)[-1]
                if p.startswith("/"):
                    assert os.path.exists(self.local(p)), f"{name}: {p} of ExecStart is not installed by the guide"
        text = re.sub(r"^(ExecStart=.*)$", lambda m: re.sub(r"(?<=[ =])/(usr|etc|opt)/", self.root + r"/\1/", m.group(1)),
                      text, flags=re.M)
        d = tempfile.mkdtemp(dir=self.tmp)
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
        if dropin:
            os.makedirs(os.path.join(d, name + ".d"))
            with open(os.path.join(d, name + ".d", "override.conf"), "w") as f:
                f.write(dropin)
        return os.path.join(d, name), text

    def verify(self, path, env=None):
        r = run([ANALYZE, "verify", "--man=no", path], env=env)
        out = (r.stdout + r.stderr).strip()
        assert r.returncode == 0 and not out, f"systemd-analyze verify {os.path.basename(path)}: {out}"

    def chk_openssl(self, cmd):
        argv = shlex.split(cmd, comments=True)
        assert argv[:2] == ["openssl", "rand"] and "-out" in argv, "openssl: only `rand ... -out FILE` has a checker"
        out = argv[argv.index("-out") + 1]
        argv[argv.index("-out") + 1] = self.local(out)
        before = stat.S_IMODE(os.stat(self.local(out)).st_mode) if os.path.exists(self.local(out)) else None
        r = run(argv)
        assert r.returncode == 0, r.stderr
        with open(self.local(out)) as f:
            tok = f.read()
        assert re.fullmatch(r"[0-9a-f]{64}\n", tok), repr(tok)
        mode = stat.S_IMODE(os.stat(self.local(out)).st_mode)
        assert mode == 0o600, f"{out} mode {oct(mode)}: the daemons refuse a secret others can read (3.3)"
        return f"ran with / -> TMP/: one line of 64 hex digits, mode stays {oct(mode)[2:]}" + \
            (" (set by the install line before)" if before == 0o600 else ""), "ok"

    def chk_sed(self, cmd):
        argv = shlex.split(cmd, comments=True)
        assert argv[:2] == ["sed", "-i"] and len(argv) == 4, "sed: only `sed -i EXPR FILE` has a checker"
        path = self.local(argv[3])
        with open(path) as f:
            before = f.read()
        r = run(["sed", "-i", argv[2], path])
        assert r.returncode == 0, r.stderr
        with open(path) as f:
            after = f.read()
        changed = [l for l in after.splitlines() if l not in before.splitlines()]
        # every s||| of the expression must have matched a line of the installed file
        subs = re.findall(r"s\|([^|]*)\|([^|]*)\|", argv[2])
        for pat, rep in subs:
            assert any(l.startswith(rep.split(".*")[0]) for l in changed), \
                f"`s|{pat}|{rep}|` changed nothing in {argv[3]} (the shipped file has no such line)"
        return f"ran on the installed {argv[3]} (-> TMP): {len(subs)} substitution(s), each changed a line", "ok"

    def free_or(self, port):
        return port if agentapi.port_free(port) else agentapi.free_port()

    def start_unit(self, unit):
        """What `systemctl start` would run: the installed unit's ExecStart (paths under TMP), its
        LoadCredential= files copied to TMP/run/credentials/<unit>/ mode 0400, StateDirectory=
        under TMP/var/lib; ports moved only when taken on this machine, COORD = 127.0.0.1. Runs as
        root here (not DynamicUser). Returns (Popen, log path, {key: value} of the config)."""
        with open(os.path.join(self.root, "etc/systemd/system", unit)) as f:
            text = f.read()
        argv = shlex.split(re.search(r"^ExecStart=(.*)$", text, re.M).group(1))
        argv = [self.local(argv[0])] + [re.sub(r"=(/\S+)", lambda m: "=" + self.local(m.group(1)), a) for a in argv[1:]]
        for name, src in re.findall(r"^LoadCredential=([^:]+):(\S+)$", text, re.M):
            d = os.path.join(self.root, "run/credentials", unit)
            os.makedirs(d, exist_ok=True)
            shutil.copy(self.local(src), os.path.join(d, name))
            os.chmod(os.path.join(d, name), 0o400)
        conf_path = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")][0]
        with open(conf_path) as f:
            conf = msdeploy.conf_keys(f.read())
        state = re.search(r"^StateDirectory=(\S+)", text, re.M).group(1)
        os.makedirs(self.local("/var/lib/" + state), mode=0o755, exist_ok=True)  # systemd creates it
        over = ["--state-dir=" + self.local("/var/lib/" + state)]
        for k, v in conf.items():
            if k.endswith("_file") and v.startswith("/"):
                over.append(f"--{k.replace('_', '-')}={self.local(v)}")
        if "listen_url" in conf:  # the coordinator
            self.sd_port = self.free_or(int(conf["listen_url"].rsplit(":", 1)[1]))
            self.sd_http = self.free_or(int(conf["metrics_port"]))
            over += [f"--listen-url={conf['listen_url'].rsplit(':', 1)[0]}:{self.sd_port}", f"--metrics-port={self.sd_http}",
                     f"--grpc-port={self.free_or(int(conf['grpc_port']))}"]
        else:
            url = conf["coordinator_url"].replace("COORD", "127.0.0.1").rsplit(":", 1)[0] + f":{self.sd_port}"
            over += [f"--coordinator-url={url}", f"--metrics-port={self.free_or(int(conf['metrics_port']))}",
                     f"--control-port={self.free_or(int(conf['control_port']))}"]
        log = os.path.join(self.tmp, unit + ".log")
        with open(log, "w") as err:
            proc = subprocess.Popen(argv + over, stdout=subprocess.DEVNULL, stderr=err)
        self.sd_procs.append(proc)
        return proc, log, conf

    def wait_log(self, proc, log, needle, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            with open(log) as f:
                text = f.read()
            if needle in text:
                return text
            assert proc.poll() is None, f"exited {proc.returncode} before {needle}:\n{text[-3000:]}"
            time.sleep(0.1)
        raise AssertionError(f"no {needle} within {timeout}s:\n{text[-3000:]}")

    def enable_now(self, unit):
        if unit == "micro_sentinel_coordinator.service":
            proc, log, conf = self.start_unit(unit)
            self.wait_log(proc, log, "COORD-READY")
            self.sd_coord = (proc, log)
            return (f"STARTED from the installed unit and config (listen {conf['listen_url']} with the credential "
                    f"token; ports moved only if taken)")
        assert getattr(self, "sd_coord", None), "the coordinator was not started before the agent"
        proc, log, conf = self.start_unit(unit)
        self.wait_log(proc, log, "AGENT-READY", 60)
        with open(self.local("/etc/micro_sentinel/token")) as f:
            tok = f.read().strip()
        host = None
        end = time.time() + 60
        while time.time() < end and not host:
            agents = json.loads(msfleet.http_get(self.sd_http, "/api/v1/agents", token=tok))["agents"]
            host = [a for a in agents if a.get("windows", 0) >= 1]
            time.sleep(0.3)
        assert host, f"no window from the agent reached the coordinator:\n{open(log).read()[-3000:]}"
        for p, l in ((proc, log), self.sd_coord):
            p.terminate()
            rc = p.wait(60)
            assert rc == 0, f"exit {rc} after SIGTERM:\n{open(l).read()[-2000:]}"
        return ("STARTED from the installed unit and config (real BPF agent, coordinator_url COORD -> 127.0.0.1): "
                f"its windows reached the coordinator ({host[0].get('windows')} windows); both stop with 0")

    def chk_systemctl(self, cmd):
        argv = shlex.split(cmd, comments=True)
        verb = argv[1] if len(argv) > 1 else ""
        units = sorted(os.path.basename(p) for p in glob.glob(os.path.join(self.root, "etc/systemd/system/*.service")))
        if verb == "daemon-reload":
            assert units, "no unit installed before daemon-reload"
            for u in units:
                self.verify(self.unit_copy(u)[0])
            return f"VALIDATED, not run (no systemd as PID 1): systemd-analyze verify {', '.join(units)}", "ok"
        if verb == "enable" and argv[2:3] == ["--now"]:
            u = argv[3] + ".service"
            assert os.path.exists(os.path.join(SRC, "deploy/systemd", u)), f"{u} not in deploy/systemd"
            path, text = self.unit_copy(u)
            assert re.search(r"^\[Install\]\s*\n(?:.*\n)*?WantedBy=\S+", text, re.M), f"{u}: no [Install] WantedBy"
            self.verify(path)
            return "VALIDATED (not enabled: no systemd as PID 1): [Install] WantedBy, verify clean; " + \
                self.enable_now(u), "ok"
        if verb == "edit":
            u = argv[2] + ".service"
            # 2.2: "an empty ExecStart= line, then the new one", binaries in /opt/micro_sentinel/bin
            opt = os.path.join(self.root, "opt/micro_sentinel/bin")
            os.makedirs(opt, exist_ok=True)
            shutil.copy(mstest.AGENT, opt)
            dropin = ("[Service]\nExecStart=\nExecStart=" + os.path.join(opt, "micro_sentinel_agent") +
                      " --config=" + self.local("/etc/micro_sentinel/agent.conf") + "\n")
            path, _ = self.unit_copy(u, dropin=dropin)
            self.verify(path)
            # a drop-in without the empty ExecStart= is a second ExecStart: verify must say so
            bad = dropin.replace("ExecStart=\n", "")
            path2, _ = self.unit_copy(u, dropin=bad)
            r = run([ANALYZE, "verify", "--man=no", path2])
            assert r.returncode != 0 or r.stdout.strip() or r.stderr.strip(), "verify misses a doubled ExecStart"
            return "VALIDATED, not run: the 2.2 drop-in (empty ExecStart=, /opt path) verifies; without the reset it does not", "ok"
        if verb == "stop":
            with open(os.path.join(SRC, "deploy/systemd/micro_sentinel_agent.service")) as f:
                text = f.read()
            ks = re.findall(r"^KillSignal=(\S+)", text, re.M)
            assert ks in ([], ["SIGTERM"]), ks
            assert self.fleet_rc == 0, f"agent exit {self.fleet_rc} after SIGTERM:\n{self.fleet.log()[-1500:]}"
            assert "AGENT-STOP" in self.fleet.log()
            assert self.fleet.windows(), "no window flushed"
            return ("VALIDATED, not run: unit KillSignal=SIGTERM; the fleet agent exited 0 on SIGTERM (AGENT-STOP) "
                    "and every window it closed is in ClickHouse"), "ok"
        raise AssertionError(f"systemctl {verb}: no checker")

    def chk_curl(self, cmd):
        parts = split_pipes(self.ports(cmd))
        argv, pipes = parts[0], parts[1:]
        assert argv[0] == "curl"
        r = run([CURL] + argv[1:] + ["-sS", "-w", "\n%{http_code}"], timeout=30)
        assert r.returncode == 0, f"curl exit {r.returncode}: {r.stderr}"
        body, _, code = r.stdout.rpartition("\n")
        assert code.startswith("2"), f"HTTP {code}: {body[:500]}"
        out = apply_pipes(body, pipes)
        url = [a for a in argv[1:] if re.match(r"(http://)?[\w.]+:\d+/", a)][0]
        path = "/" + url.split("/", 3)[-1] if url.startswith("http") else "/" + url.split("/", 1)[1]
        data = argv[argv.index("-d") + 1] if "-d" in argv else None
        if path == "/ping":
            assert body.strip() == "Ok.", body
            return "ran against the test ClickHouse (CH:8123 -> its port); Ok.", "ok"
        if path == "/api/v1/status":
            s = json.loads(body)
            for k in ("mode", "budgets", "events", "counters", "targets", "top"):
                assert k in s, f"status lacks {k}"
            return "ran (real curl) against the agent; JSON parses (json.tool), has mode/budgets/events/counters/targets/top", "ok"
        if path == "/api/v1/mode":
            req = json.loads(data)
            s = self.agent.status()
            if req["mode"] == "auto":
                assert s["pin"] is None, s["pin"]
                eff = "pin cleared"
            else:
                assert s["mode"] == req["mode"] and s["pin"]["mode"] == req["mode"], s
                if req.get("ttl_s"):
                    assert s["pin"]["expires"] is not None, s["pin"]
                eff = f"status mode={s['mode']}, pin with expiry"
            return f"ran (real curl); HTTP {code}; effect: {eff}", "ok"
        if path == "/api/v1/targets":
            req = json.loads(data)
            want = req["targets"] if isinstance(req, dict) else req
            s = self.agent.status()
            assert len(s["targets"]["list"]) == len(want), s["targets"]
            got = s["targets"]["list"]
            self.agent.api("POST", "/api/v1/targets", '{"targets":[]}')  # leave the agent unfiltered
            return f"ran (real curl); HTTP {code}; effect: status targets {got}", "ok"
        if path == "/metrics":
            names = re.findall(r"\w+", (re.search(r"\((.*)\)", pipes[-1][-1]) or re.search(r"(.*)", pipes[-1][-1])).group(1))
            for n in names:
                full = n if n.startswith("ms_") else "ms_" + n
                assert re.search(rf"^{full} ", out, re.M), f"{full} missing from:\n{out}"
            return f"ran (real curl) on /metrics, grep applied in Python; {len(names)} series present", "ok"
        raise AssertionError(f"curl to {path}: no effect checker")

    def chk_yaml(self, text):
        import yaml
        conf = yaml.safe_load(text)
        jobs = [j["job_name"] for j in conf["scrape_configs"]]
        with open(os.path.join(SRC, "backend", "alert_rules.yml")) as f:
            rules = f.read()
        for j in jobs:
            assert f'job="{j}"' in rules, f"alert rules do not use job {j}"
        text = re.sub(r"'host\d:9105'", f"'127.0.0.1:{self.agent.metrics_port}'", text)
        text = text.replace("'coordinator:9302'", f"'127.0.0.1:{self.coord.metrics_port}'")
        assert "9105" not in text.replace(str(self.agent.metrics_port), "") or self.verbatim
        for rf in conf.get("rule_files", []):
            dst = self.local(rf)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(os.path.join(SRC, "backend", "alert_rules.yml"), dst)
            text = text.replace(rf, dst)
        path = os.path.join(self.tmp, "prometheus.yml")
        with open(path, "w") as f:
            f.write(text)
        r = run([PROMTOOL, "check", "config", path])
        assert r.returncode == 0, r.stdout + r.stderr
        return (f"promtool check config (targets -> the test's agent/coordinator ports, rule file = "
                f"backend/alert_rules.yml); jobs {jobs} are those of the alert rules"), "ok"

    def chk_sql(self, text):
        rows = self.ch.rows(text.strip().rstrip(";"))
        assert rows, "no rows: the coordinator stored windows in the last 10 min"
        hosts = [r[0] for r in rows]
        assert "opsdoc-1" in hosts, rows
        return f"ran on the real ClickHouse the coordinator filled: {len(rows)} row(s), e.g. {rows[0]}", "ok"

    def msctl_run(self, cmd, stdout_file=None):
        argv = self.msctl_argv(cmd)
        r = run(argv, timeout=60)
        if stdout_file:
            with open(stdout_file, "w") as f:
                f.write(r.stdout)
        return argv, r

    def top_flow(self):
        argv = [MSCTL, f"--clickhouse={self.ch.endpoint}", "--json", "top", "flows", "--since=10m"]
        r = run(argv)
        assert r.returncode == 0, f"{argv}: exit {r.returncode}: {r.stderr}"
        ids = [f["id_hex"] for f in json.loads(r.stdout)["flows"] if f["id"] != 0]
        assert ids, r.stdout[:500]
        return ids[0]

    def chk_msctl(self, cmd):
        argv = shlex.split(cmd, comments=True)
        if "agents" in argv and any(a.startswith("--coordinator=") for a in argv):
            _, r = self.msctl_run(cmd)
            assert r.returncode == 0, f"exit {r.returncode}: {r.stderr}"
            assert "opsdoc-1" in r.stdout, r.stdout
            return "ran against the test coordinator's gRPC (10.231.0.1:PORT, var/lab/token -> its port, token); lists the agent", "ok"
        if "--clickhouse=http://CH:8123" in argv:
            flame = "flame" in argv
            out = os.path.join(self.tmp, "flow.folded") if ">" in argv else None
            rargv, r = self.msctl_run(cmd, out)
            how = "ran against the test ClickHouse (CH:8123 -> its port"
            if "--clickhouse-password-file=/etc/micro_sentinel/ch_reader" in argv:
                how += f", user {READER}, password file /etc/micro_sentinel/ch_reader -> TMP, mode 0600"
            how += ")"
            if "--flow" in argv:
                # the guide's flow id is an example: it must parse (no usage error: exit 0, or 4 =
                # no samples of that flow here), and the same line with a flow the test stored
                # must answer
                assert r.returncode in (0, 4), f"{rargv}: exit {r.returncode}: {r.stderr}"
                first = r.returncode
                fid = self.top_flow()
                rargv, r = self.msctl_run(cmd.replace("835749791e86f597", fid), out)
                how += f"; example id: exit {first}{' (not stored here)' if first == 4 else ''}; stored flow {fid}"
            if flame:
                assert r.returncode == 0, f"{rargv}: exit {r.returncode}: {r.stderr}"
                with open(out) as f:
                    lines = [l for l in f.read().splitlines() if l]
                assert lines and all(re.match(r"^\S.* \d+$", l) for l in lines), lines[:3]
                return how + f": exit 0, {len(lines)} folded lines in flow.folded", "ok"
            assert r.returncode == 0, f"{rargv}: exit {r.returncode}: {r.stderr}"
            assert r.stdout.strip(), "no output"
            return how + ": exit 0, table printed", "ok"
        raise AssertionError("msctl line: no checker")

    def ensure_reader_password(self, pw=READER_PW):
        p = self.local("/etc/micro_sentinel/ch_reader")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(pw)
        os.chmod(p, 0o600)

    def chk_help(self, binary):
        r = run([BINS[binary], "--help"])
        assert r.returncode == 0, r.stderr
        hk = help_keys(r.stdout + r.stderr)
        heading = "### 3.1 Agent keys" if binary == "micro_sentinel_agent" else "### 3.2 Coordinator keys"
        tk = table_keys(self.doc, heading)
        assert set(hk) == set(tk), f"--help only: {sorted(set(hk) - set(tk))}; table only: {sorted(set(tk) - set(hk))}"
        diff = {k: (tk[k], hk[k]) for k in hk if tk[k] != hk[k]}
        assert not diff, f"table (type, default) differ from --help: {diff}"
        # section 1's "listens on (default)" column names the defaults of --help
        row = [l for l in self.doc.splitlines() if l.startswith(f"| `{binary}` |")][0]
        spans = set(re.findall(r"`([^`]*)`", row))
        want = {f"{hk['metrics_address'][1]}:{hk['metrics_port'][1]}"}
        if binary == "micro_sentinel_agent":
            want.add(f"{hk['control_address'][1]}:{hk['control_port'][1]}")
        else:
            want |= {hk["listen_url"][1], f"{hk['grpc_address'][1]}:{hk['grpc_port'][1]}"}
        assert want <= spans, f"section 1 row lacks the defaults {sorted(want - spans)}: {row}"
        bad = run([BINS[binary], "--no-such-flag-x"])
        assert bad.returncode == 2 and "unknown" in bad.stderr, bad.stderr
        return (f"ran; section {heading[4:7]} table == --help ({len(hk)} keys, types, defaults); section 1's "
                f"listen defaults {sorted(want)} == --help; unknown flag exits 2"), "ok"

    def chk_init_schema(self, cmd):
        argv = shlex.split(cmd)
        argv = [COORD] + [a.replace("...", self.ch.endpoint) for a in argv[1:]]
        r = run(argv, timeout=120)
        assert r.returncode == 0, r.stderr
        tables = set(self.ch.query(f"SHOW TABLES FROM {DB}").split())
        # section 7 names every table ("Tables (database ...): `ms_flow_rollup`, ...")
        sec7 = self.doc.split("## 7. ClickHouse", 1)[1].split("\n## ", 1)[0]
        listed = set(re.findall(r"`(ms_[a-z_]+)`", sec7.split("Tables", 1)[1].split("Every row", 1)[0]))
        assert listed == tables, f"section 7 lists {sorted(listed - tables)} not created; created, not listed: {sorted(tables - listed)}"
        return (f"ran against the test ClickHouse (... -> its endpoint): exit 0, the {len(tables)} tables "
                f"section 7 lists exist in {DB}"), "ok"

    def chk_flag(self, flag, section):
        if section.startswith("12."):
            r = run([sys.executable, os.path.join(SRC, "deploy/lab/lab.py"), "up", "--help"])
            d = run([sys.executable, os.path.join(SRC, "deploy/lab/lab.py"), "down", "--help"])
            name = flag.split()[0]
            assert name in r.stdout or name in d.stdout, f"{name} not in lab.py up/down --help"
            return "lab.py up/down --help lists it", "ok"
        a = run([mstest.AGENT, "--help"]).stdout
        c = run([COORD, "--help"]).stdout
        if flag in ("--config=FILE", "--key-name=VALUE"):
            assert flag in a and flag in c, flag
            return "both daemons' --help usage", "ok"
        if flag == "--no-KEY":
            r = run([mstest.AGENT, "--perf-mock", "--no-summary", "--no-anomaly-enabled", "--duration-ms=300",
                     "--metrics-port=0", "--control-port=0", f"--state-dir={self.tmp}/noagent"])
            assert r.returncode == 0, r.stderr
            return "ran the agent with --no-summary --no-anomaly-enabled: accepted", "ok"
        if flag == "--token":
            r = run([mstest.AGENT, "--token=opsdoc-s3cr3t", "--perf-mock"])
            assert r.returncode == 2 and "token_file" in r.stderr and "opsdoc-s3cr3t" not in r.stderr, r.stderr
            return "ran: refused with exit 2 pointing at token_file, value not logged", "ok"
        if flag == "--perf-mock":
            assert "--perf-mock" in a or "perf-mock" in a, "agent --help"
            return "agent --help; the curl agent runs with it", "ok"
        if flag == "--init-schema":
            assert "--init-schema" in c, "coordinator --help"
            return "coordinator --help (run by the init-schema line)", "ok"
        if flag == "--state-dir":
            assert "--state-dir" in a and "--state-dir" in c
            return "both daemons' --help", "ok"
        raise AssertionError(f"flag {flag}: no checker")

    def chk_make(self, cmd):
        target = shlex.split(cmd)[1]
        r = run(["make", "-n", "-C", SRC, target, f"BUILD={BUILD}"])
        if target == "vmlinux":  # 10: "there is no ... `make vmlinux` step"
            assert r.returncode != 0, "make vmlinux exists but the guide says there is none"
            return "make -n vmlinux: no such target, as the guide says", "ok"
        assert r.returncode == 0, r.stderr
        need = {"check": ["install-deps.sh", "cmake --build", "ctest"], "build": ["install-deps.sh", "cmake --build"],
                "demo": ["deploy/demo.sh"]}[target]
        for n in need:
            assert n in r.stdout, f"make -n {target} does not run {n}:\n{r.stdout}"
        if target == "build":
            assert "ctest" not in r.stdout
        how = f"make -n {target} runs {', '.join(need)}"
        if target == "demo":
            with open(os.path.join(HERE, "test_demo.py")) as f:
                assert "demo.sh" in f.read()
            how += "; COVERED ELSEWHERE: test_demo.py runs deploy/demo.sh"
        else:
            how += " (dry run: the full suite and apt are not run from here)"
        return how, "ok"

    def chk_lab(self, cmd):
        argv = shlex.split(cmd, comments=True)
        with open(os.path.join(HERE, "test_lab.py")) as f:
            t = f.read()
        sub = argv[1] if len(argv) > 1 else None
        if sub:
            assert f'lab("{sub}"' in t, f"test_lab.py does not run lab.py {sub}"
            # options on the line and those its comment names ("add --load for ...")
            extra = [a for a in argv[2:] if a.startswith("--")] + re.findall(r"(--[a-z][a-z-]*)", cmd.partition("#")[2])
            for a in extra:
                r = run([sys.executable, os.path.join(SRC, "deploy/lab/lab.py"), sub, "--help"])
                assert a in r.stdout, f"lab.py {sub} has no {a}"
        return f"COVERED ELSEWHERE: test_lab.py runs lab.py {sub or '(up/status/down)'}" + \
            ("; options in its --help: " + " ".join(extra) if sub and extra else ""), "ok"

    def chk_path(self, p):
        lp = self.local(p)
        assert os.path.exists(lp), f"{p} does not exist ({lp})"
        if p.endswith(".sh"):
            r = run(["bash", "-n", lp])
            assert r.returncode == 0, r.stderr
            return "exists, bash -n clean (not run: it installs packages)", "ok"
        if p.startswith("build/"):
            assert os.access(lp, os.X_OK)
            return "built, executable", "ok"
        return "exists", "ok"

    def chk_promtool(self, cmd):
        argv = shlex.split(cmd)
        if argv[1:3] == ["check", "metrics"]:
            text = self.agent.metrics()
            r = run([PROMTOOL, "check", "metrics"], input=text)
            assert r.returncode == 0, r.stdout + r.stderr
            return "ran on the agent's /metrics: clean", "ok"
        if argv[1:3] == ["check", "rules"] and len(argv) == 3:
            argv.append("alert_rules.yml")
        cwd = SRC if any(a.startswith("backend/") for a in argv) else os.path.join(SRC, "backend")
        r = run([PROMTOOL] + argv[1:], cwd=cwd)
        assert r.returncode == 0, r.stdout + r.stderr
        return f"ran in {os.path.relpath(cwd, SRC)}/ ({' '.join(argv[1:])}): exit 0", "ok"

    def chk_misc(self, cmd):
        argv = split_pipes(self.ports(cmd))
        if argv[0][:3] == ["bpftool", "prog", "show"]:
            r = run(["bpftool", "prog", "show"])
            assert r.returncode == 0, r.stderr
            return "ran: exit 0 (that the agent leaves nothing: test_lifecycle.py)", "ok"
        if argv[0] in (["pkill"], ["bpftool", "prog", "detach"]):
            return "NOT RUN on purpose: the guide says it is not needed (test_lifecycle.py checks nothing is left)", "ok"
        if argv[0][:4] == ["perf", "stat", "-e", "cycles"]:
            if not shutil.which("perf"):
                return "perf not installed here: NOT CHECKABLE (advice for bare metal)", "skip"
            r = run(["perf", "stat", "-e", "cycles", "true"])
            assert r.returncode == 0, r.stderr
            hw = "not supported" not in r.stderr
            return f"ran (perf stat -e cycles true): exit 0, cycles {'counted' if hw else '<not supported> (no PMU here)'}", "ok"
        if argv[0] == ["ss", "-ltnp"]:
            r = run(["ss", "-ltnp"])
            pat = str(self.agent.metrics_port)
            out = apply_pipes(r.stdout, [["grep", pat]])
            assert "micro_sentinel" in out, out
            return f"ran; grep {pat} shows the agent's /metrics listener", "ok"
        if os.path.basename(argv[0][0]) == "python3" or argv[0][0].startswith("MS_BUILD="):
            tests = [a for a in argv[0] if a.startswith("tests/integration/test_")]
            assert tests and all(os.path.exists(os.path.join(SRC, t)) for t in tests), argv
            return "COVERED ELSEWHERE: ctest runs " + ", ".join(tests), "ok"
        raise AssertionError("no checker")

    def chk_endpoint(self, item):
        """The endpoint tables of sections 4 (agent control API) and 5 (coordinator): each GET
        answers 200 (healthz exactly the body the table gives), each POST with the table's
        example body answers 200 and has its effect; rows without a usable example body must at
        least exist (a bad body gets 400, not 404/405)."""
        method, path = item.text.split()
        row = self.doc.splitlines()[item.line - 1]
        if item.section.startswith("4."):
            port, auth, who = self.agent.control_port, {}, "agent control API"
        elif item.section.startswith("5."):
            port, auth, who = self.coord.metrics_port, {"Authorization": f"Bearer {TOKEN}"}, "coordinator HTTP"
        else:
            raise AssertionError(f"endpoint outside sections 4/5: no checker")
        if method == "GET":
            r = agentapi.request(port, "GET", path, headers=auth)
            assert r.status == 200, r
            if path == "/healthz":
                documented = json.loads(re.findall(r"`([^`]*)`", row)[1])  # the row's body column
                assert json.loads(r.body) == documented, f"{r.body} != documented {documented}"
                if who.startswith("agent"):  # 2.3: probes use /healthz on the metrics port too
                    m = agentapi.request(self.agent.metrics_port, "GET", "/healthz")
                    assert m.status == 200 and json.loads(m.body) == documented, m
                    who += " and /metrics port"
                who += f", body {r.body.strip()} as documented"
            elif path == "/api/v1/agents":
                ids = [a.get("agent_id") or a.get("id") for a in json.loads(r.body)["agents"]]
                assert "opsdoc-1" in ids, r.body[:500]
                noauth = agentapi.request(port, "GET", path)
                assert noauth.status == 401, noauth
                who += " (token; 401 without)"
            elif path == "/metrics":
                assert "# TYPE ms_coord_" in r.body, r.body[:300]
            else:
                json.loads(r.body)
            return f"requested on the {who}: 200", "ok"
        bodies = [b for b in re.findall(r"`([^`]*)`", row)[1:] if b[:1] in "{["]
        body = None
        for b in bodies[:1]:
            try:
                body = json.loads(b)
            except ValueError:
                body = None
        if body is None:
            r = agentapi.request(port, "POST", path, "{", headers=auth)
            if r.status == 409 and "perf-mock" in r.body:  # PMU groups need real perf events
                return "POST exists (409: no PMU on the synthetic source); real groups: test_api_guide.py", "ok"
            assert r.status == 400, r
            return "POST exists (a bad body gets 400, not 404); the table gives no runnable body (bodies: test_api_guide.py)", "ok"
        r = agentapi.request(port, "POST", path, json.dumps(body), headers=auth)
        assert r.status == 200, r
        s = self.agent.status()
        if path == "/api/v1/mode":
            assert s["mode"] == body["mode"] and s["pin"]["expires"] is not None, s["pin"]
            for b in bodies[1:]:  # {"mode":"auto"} clears the pin
                assert agentapi.request(port, "POST", path, b).status == 200
            assert self.agent.status()["pin"] is None
            eff = "mode pinned with expiry, then cleared by the row's {\"mode\":\"auto\"}"
        elif path == "/api/v1/targets":
            assert len(s["targets"]["list"]) == len(body), s["targets"]
            assert agentapi.request(port, "POST", path, "[]").status == 200  # "`[]` clears"
            assert self.agent.status()["targets"]["list"] == []
            eff = f"{len(body)} targets set, then [] cleared them"
        elif path == "/api/v1/token-bucket":
            assert all(s["budgets"][k] == v for k, v in body.items()), s["budgets"]
            eff = "status budgets equal the body"
        else:
            raise AssertionError(f"POST {path}: no effect checker")
        return f"POST the table's body to the {who}: 200; {eff}", "ok"

    def chk_logline(self, example):
        """A log line quoted by the guide has the shape of the real one with the same ID: the
        real agent's (started from the installed unit in 2.2) or the test agents'."""
        ts, level, ident, msg = re.match(r"(\S+) (\w+) +(\S+) (.*)$", example).groups()
        logs = [os.path.join(self.tmp, "micro_sentinel_agent.service.log"), self.fleet.stderr_path,
                self.agent.stderr_path]
        text = ""
        for path in logs:
            if os.path.exists(path):
                with open(path) as f:
                    text += f.read()
        shape = re.escape(msg)
        shape = re.sub(r"\d+", r"\\d+", shape)
        pat = rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {level} +{re.escape(ident)} {shape}$"
        real = re.findall(pat, text, re.M)
        assert real, f"no log line shaped like {example!r}; real {ident} lines: " + \
            str([l for l in text.splitlines() if ident in l][:3])
        return f"the real agent logs {real[0]!r}", "ok"

    def check(self, item):
        """(how, result) for one item; raises when it fails or when no checker knows it."""
        t = item.text
        if item.kind == "logline":
            return self.chk_logline(t)
        if item.kind == "endpoint":
            return self.chk_endpoint(item)
        if item.kind == "yaml":
            return self.chk_yaml(t)
        if item.kind == "sql":
            return self.chk_sql(t)
        if item.kind.startswith("block:"):
            raise AssertionError(f"no checker for a ```{item.kind[6:]} block")
        first = t.split()[0]
        if t.startswith("--"):
            return self.chk_flag(t, item.section)
        if first == "install":
            return self.chk_install(t)
        if first == "openssl":
            return self.chk_openssl(t)
        if first == "sed":
            return self.chk_sed(t)
        if first == "systemctl":
            return self.chk_systemctl(t)
        if first == "curl":
            return self.chk_curl(t)
        if first in ("msctl", "build/coordinator/msctl") and len(t.split()) > 1:
            if "ch_reader" in t:
                self.ensure_reader_password()
            return self.chk_msctl(t)
        if first in BINS and t.split()[1:] == ["--help"]:
            return self.chk_help(first)
        if first == "micro_sentinel_coordinator" and "--init-schema" in t:
            return self.chk_init_schema(t)
        if first in BINS and len(t.split()) == 1:
            assert os.access(BINS[first], os.X_OK), BINS[first]
            return f"built: {os.path.relpath(BINS[first], BUILD)}", "ok"
        if first == "make":
            return self.chk_make(t)
        if first == "deploy/lab/lab.py":
            return self.chk_lab(t)
        if first == "promtool":
            return self.chk_promtool(t)
        if len(t.split()) == 1 and first.startswith(("build/", "deploy/", "tests/integration/")):
            return self.chk_path(first)
        return self.chk_misc(t)

    # ------------------------------------------------------------------ tests

    def test_every_command(self):
        rows, failures = [], []
        seen = {}
        for it in self.items:
            key = (it.kind, it.text, it.section if it.kind == "endpoint" else "")
            if key in seen:
                seen[key][3] += 1
                continue
            try:
                how, res = self.check(it)
            except Exception as e:  # noqa: BLE001 - every failure is reported in the table
                how, res = str(e).splitlines()[0][:160] if str(e) else type(e).__name__, "FAIL"
                failures.append((it, e))
            row = [it.line, it.text.splitlines()[0] + (" ..." if "\n" in it.text else ""), how, 1, res]
            seen[key] = row
            rows.append(row)
        print("\n\ndocs/OPERATIONS.md: command -> how checked -> result")
        print(f"(agent ports {'9200/9105 as written' if self.verbatim else 'replaced: 9200/9105 are taken here'}; "
              f"ClickHouse 127.0.0.1:{self.ch.http_port} for CH:8123)")
        for line, cmd, how, n, res in rows:
            times = f" (x{n})" if n > 1 else ""
            print(f"L{line:<4} {cmd[:95]}{times}\n      -> {how}\n      -> {res}")
        print(f"{len(rows)} distinct commands, {sum(r[3] for r in rows)} occurrences, {len(failures)} failed")
        msg = "\n\n".join(f"line {it.line} [{it.section}] {it.text!r}:\n{e}" for it, e in failures)
        self.assertFalse(failures, msg)
        self.assertGreater(len(rows), 40)

    def test_checkers_are_live(self):
        """Broken variants of the guide's commands fail their checkers; unknown commands fail."""
        broken = [
            Item(0, "2.2", "sh", "install -m 0755 build/agent/no_such_binary /usr/local/bin/"),
            Item(0, "4", "sh", "curl -X POST 127.0.0.1:9200/api/v1/mode -d '{\"mode\":\"turbo\"}'"),
            Item(0, "7", "sh", "msctl --clickhouse=http://CH:8123 top flows --sinse 10m"),
            Item(0, "2.2", "sh", "systemctl enable --now micro_sentinel_nothing"),
            Item(0, "4", "sh", "curl -s 127.0.0.1:9105/metrics | grep -E '^ms_(no_such_metric)'"),
            Item(0, "3", "span", "--no-such-flag"),
            Item(0, "1", "sh", "frobnicate --all"),
            Item(0, "1", "block:toml", "x = 1"),
            Item(0, "7", "sql", "SELECT nope FROM microsentinel.ms_flow_rollup"),
            Item(0, "2.2", "sh", "openssl rand -hex 32 -out /tmp/x"),   # the count must come last
            Item(0, "8", "logline", "2026-11-25T21:26:54.273Z INFO  AGENT-READY sampling everything"),
            Item(0, "4. Agent control API", "endpoint", "GET /api/v1/nothing"),
        ]
        for it in broken:
            with self.assertRaises(Exception, msg=it.text):
                self.check(it)
        # the reader's password really is checked: a wrong one in the file fails the flame line
        flame = [it for it in self.items if it.kind == "sh" and "ch_reader" in it.text]
        self.assertEqual(len(flame), 1)
        self.ensure_reader_password("wrong-password")
        with self.assertRaises(AssertionError):
            self.chk_msctl(flame[0].text)
        self.ensure_reader_password()
        self.assertEqual(self.agent.status()["targets"]["list"], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
