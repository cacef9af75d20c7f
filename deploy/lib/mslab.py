"""mslab: runs a MicroSentinel fleet on one machine for the demo (deploy/demo.py) and the lab
(deploy/lab/lab.py): ClickHouse on loopback, the coordinator, agents in network namespaces (and
optionally one on this host), Prometheus, and load processes. It is not a test fixture and not an
installer: it uses what deploy/install-deps.sh installed and the binaries of a build tree.

Everything lives in one state directory, so a second shell can tear it down:
    STATE/lab.json        topology, ports, agents (written as it is built)
    STATE/pids/NAME.pid   "PID STARTTIME" of every process started (starttime from /proc/PID/stat,
                          so a recycled pid is never signalled)
    STATE/logs/NAME.log   stdout and stderr of each process
    STATE/ch, prom, ...   data directories

Network: a bridge <prefix>br with SUBNET.1/24 on this host; host i is network namespace
<prefix><i> (or a given name) with eth0 = SUBNET.(10+i)/24, its peer <prefix>v<i> enslaved to the
bridge, default route via SUBNET.1. Agents in namespaces share this kernel: each samples every
CPU (perf events and tracepoints are not per namespace); what makes them hosts is their network
identity, labels, endpoints and uplink. The coordinator listens on SUBNET.1, ClickHouse and
Prometheus on 127.0.0.1. Ports on this host are picked free at start.

Not thread-safe; one Lab object per state directory and process."""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

CH_BIN = shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"
CH_BASE_CONFIG = "/etc/clickhouse-server/config.xml"
PROM_BIN = shutil.which("prometheus") or "/usr/bin/prometheus"
DB = "microsentinel"

# stop order: load first (so agents see its end), agents before the coordinator (their last
# windows are acked), the coordinator before ClickHouse (its last batch is inserted)
STOP_RANK = (("load", 0), ("agent", 1), ("coordinator", 2), ("prometheus", 3), ("clickhouse", 4))


class LabError(Exception):
    pass


def run(cmd, check=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and p.returncode:
        raise LabError(f"{' '.join(cmd)}: {p.stderr.strip()}")
    return p


def free_ports(n):
    """n distinct TCP ports free on every address of this host (bound together so they differ)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def http(url, data=None, timeout=5, token=None):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode()


def proc_stat(pid):
    """(state letter, starttime) of pid from /proc/PID/stat, or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[0], fields[19]


def wait_for(pred, timeout, what, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise LabError(f"timeout after {timeout:.0f}s waiting for {what}")


class Procs:
    """Processes of a state directory, each in its own session (so a terminal's Ctrl-C reaches
    only the driver, which then stops them in order)."""

    def __init__(self, state_dir):
        self.dir = state_dir
        self.pid_dir = os.path.join(state_dir, "pids")
        self.log_dir = os.path.join(state_dir, "logs")
        self.children = {}  # name -> Popen, for processes this object started (reaped on stop)

    def log_path(self, name):
        return os.path.join(self.log_dir, name + ".log")

    def spawn(self, name, argv, netns=None, cwd=None):
        """Starts argv (in network namespace netns: nsenter switches only the network namespace
        and execs, so the pid is the program's and /sys, tracefs and bpffs stay the host's)."""
        os.makedirs(self.pid_dir, exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)
        if netns:
            argv = ["nsenter", f"--net=/run/netns/{netns}", "--"] + list(argv)
        with open(self.log_path(name), "ab") as log:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, cwd=cwd)
        self.children[name] = p
        st = proc_stat(p.pid)
        with open(os.path.join(self.pid_dir, name + ".pid"), "w") as f:
            f.write(f"{p.pid} {st[1] if st else 0}\n")
        return p

    def names(self):
        names = set(self.children)
        if os.path.isdir(self.pid_dir):
            names |= {n[:-4] for n in os.listdir(self.pid_dir) if n.endswith(".pid")}
        return sorted(names)

    def pid(self, name):
        """The pid of name if that very process is still running, else None."""
        try:
            with open(os.path.join(self.pid_dir, name + ".pid")) as f:
                pid, start = f.read().split()
        except (OSError, ValueError):
            return None
        st = proc_stat(int(pid))
        if st is None or st[0] in ("Z", "X") or st[1] != start:
            return None
        return int(pid)

    def log(self, name):
        try:
            with open(self.log_path(name), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, name, needle, timeout):
        def ready():
            if needle in self.log(name):
                return True
            if self.pid(name) is None:
                raise LabError(f"{name} exited before '{needle}':\n{self.log(name)[-3000:]}")
            return False
        wait_for(ready, timeout, f"{name}: {needle}")

    def _gone(self, name, pid):
        p = self.children.get(name)
        if p is not None:
            return p.poll() is not None
        st = proc_stat(pid)
        return st is None or st[0] in ("Z", "X")

    def stop(self, name, timeout=30):
        """SIGTERM, wait, then SIGKILL to the process group. Returns the exit code when this
        object started it, else None."""
        pid = self.pid(name)
        if pid is None and name in self.children and self.children[name].poll() is None:
            pid = self.children[name].pid  # started, pid file not written yet
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
                wait_for(lambda: self._gone(name, pid), timeout, f"{name} to exit", step=0.05)
            except LabError:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                wait_for(lambda: self._gone(name, pid), 10, f"{name} to die")
            except ProcessLookupError:
                pass
        rc = None
        p = self.children.pop(name, None)
        if p is not None:
            rc = p.wait()
        try:
            os.unlink(os.path.join(self.pid_dir, name + ".pid"))
        except FileNotFoundError:
            pass
        return rc

    def stop_all(self, timeout=30):
        """Stops every process in STOP_RANK order; returns {name: exit code or None}."""
        def rank(n):
            return next((r for p, r in STOP_RANK if n.startswith(p)), 5)
        return {n: self.stop(n, timeout) for n in sorted(self.names(), key=rank)}


class Lab:
    """A fleet on this machine, described by STATE/lab.json."""

    def __init__(self, state_dir, build=None, prefix="mslab", subnet="10.231.0", src=None):
        self.dir = os.path.abspath(state_dir)
        self.procs = Procs(self.dir)
        self.path = os.path.join(self.dir, "lab.json")
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.s = json.load(f)
        else:
            src = src or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
            build = build or os.path.join(src, "build")
            self.s = {"prefix": prefix, "subnet": subnet, "bridge": prefix + "br", "src": src,
                      "build": os.path.abspath(build), "netns": [], "links": [], "hosts": [], "agents": [],
                      "ports": {}}

    # ------------------------------------------------------------------ state and binaries
    def save(self):
        os.makedirs(self.dir, exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.s, f, indent=1)
        os.replace(tmp, self.path)

    def bin(self, *rel):
        return os.path.join(self.s["build"], *rel)

    @property
    def agent_bin(self):
        return self.bin("agent", "micro_sentinel_agent")

    @property
    def coord_bin(self):
        return self.bin("coordinator", "micro_sentinel_coordinator")

    @property
    def msctl_bin(self):
        return self.bin("coordinator", "msctl")

    @property
    def gw(self):
        return self.s["subnet"] + ".1"

    @property
    def token(self):
        with open(os.path.join(self.dir, "token")) as f:
            return f.read().strip()

    def check_binaries(self):
        for b in (self.agent_bin, self.coord_bin, self.msctl_bin):
            if not os.access(b, os.X_OK):
                raise LabError(f"{b} not built (make build, or pass the build directory)")
        if not os.path.exists(CH_BIN):
            raise LabError(f"{CH_BIN} missing: run deploy/install-deps.sh")

    # ------------------------------------------------------------------ network
    def net_up(self, hosts):
        """hosts: [(netns name, {label: value})]. Creates the bridge and one namespace per host."""
        br = self.s["bridge"]
        run(["ip", "link", "add", br, "type", "bridge"])
        self.s["links"].append(br)
        self.save()
        run(["ip", "addr", "add", self.gw + "/24", "dev", br])
        run(["ip", "link", "set", br, "up"])
        for i, (ns, labels) in enumerate(hosts, 1):
            veth, peer = f"{self.s['prefix']}v{i}", f"{self.s['prefix']}p{i}"
            ip = f"{self.s['subnet']}.{10 + i}"
            run(["ip", "netns", "add", ns])
            self.s["netns"].append(ns)
            run(["ip", "link", "add", veth, "type", "veth", "peer", "name", peer])
            self.s["links"].append(veth)
            self.save()
            run(["ip", "link", "set", peer, "netns", ns])
            run(["ip", "-n", ns, "link", "set", peer, "name", "eth0"])
            run(["ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "route", "add", "default", "via", self.gw])
            run(["ip", "link", "set", veth, "master", br])
            run(["ip", "link", "set", veth, "up"])
            self.s["hosts"].append({"netns": ns, "ip": ip, "labels": labels})
            self.save()

    def planned_names(self, hosts):
        """(namespaces, links) net_up(hosts) would create."""
        p = self.s["prefix"]
        return [ns for ns, _ in hosts], [self.s["bridge"]] + [f"{p}v{i}" for i in range(1, len(hosts) + 1)]

    def existing(self, hosts):
        """Those of planned_names(hosts) that exist already (left by a run whose state is lost)."""
        nss, links = self.planned_names(hosts)
        return ([ns for ns in nss if os.path.exists(f"/run/netns/{ns}")]
                + [ln for ln in links if run(["ip", "link", "show", ln], check=False).returncode == 0])

    def remove_stale(self, hosts):
        """Removes what existing(hosts) names: processes still in those namespaces (SIGTERM, then
        SIGKILL), the namespaces, the links. Returns the names removed."""
        found = self.existing(hosts)
        nss, _ = self.planned_names(hosts)
        for ns in (n for n in found if n in nss):
            pids = [int(x) for x in run(["ip", "netns", "pids", ns], check=False).stdout.split()]
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for pid in pids:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
                try:
                    wait_for(lambda: all(proc_stat(p) is None or proc_stat(p)[0] in "ZX" for p in pids), 20,
                             f"processes in {ns}")
                    break
                except LabError:
                    continue
            run(["ip", "netns", "del", ns], check=False)
        for ln in (n for n in found if n not in nss):
            run(["ip", "link", "del", ln], check=False)
        return found

    def net_down(self):
        """Deletes the namespaces and links of lab.json; returns what could not be removed."""
        left = []
        for ns in self.s["netns"]:
            if os.path.exists(f"/run/netns/{ns}"):
                run(["ip", "netns", "del", ns], check=False)
        for link in reversed(self.s["links"]):
            if run(["ip", "link", "show", link], check=False).returncode == 0:
                run(["ip", "link", "del", link], check=False)
        for ns in self.s["netns"]:
            if os.path.exists(f"/run/netns/{ns}"):
                left.append("netns " + ns)
        for link in self.s["links"]:
            if run(["ip", "link", "show", link], check=False).returncode == 0:
                left.append("link " + link)
        return left

    # ------------------------------------------------------------------ ClickHouse
    def start_clickhouse(self, timeout=90):
        d = os.path.join(self.dir, "ch")
        for sub in ("data", "tmp", "user_files", "format_schemas"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        users = os.path.join(d, "users.xml")
        with open(users, "w") as f:
            # the password-less default user, reachable from loopback only
            f.write("<?xml version=\"1.0\"?><yandex><profiles><default><max_memory_usage>4000000000"
                    "</max_memory_usage></default></profiles><users><default><password></password>"
                    "<networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile>"
                    "<quota>default</quota></default></users><quotas><default><interval>"
                    "<duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0"
                    "</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>"
                    "</interval></default></quotas></yandex>\n")
        http_port, tcp_port, inter_port = free_ports(3)
        self.s["ports"].update(ch_http=http_port, ch_tcp=tcp_port)
        self.save()
        self.procs.spawn("clickhouse", [
            CH_BIN, f"--config-file={CH_BASE_CONFIG}", "--", f"--path={d}/data/", f"--tmp_path={d}/tmp/",
            f"--user_files_path={d}/user_files/", f"--format_schema_path={d}/format_schemas/",
            f"--logger.log={d}/server.log", f"--logger.errorlog={d}/err.log", "--listen_host=127.0.0.1",
            f"--http_port={http_port}", f"--tcp_port={tcp_port}", f"--interserver_http_port={inter_port}",
            f"--users_config={users}"])

        def ping():
            if self.procs.pid("clickhouse") is None:
                raise LabError("clickhouse-server exited:\n" + self.procs.log("clickhouse")[-3000:])
            try:
                return http(self.ch_endpoint + "/ping", timeout=1).startswith("Ok")
            except OSError:
                return False
        wait_for(ping, timeout, "ClickHouse /ping")

    @property
    def ch_endpoint(self):
        return f"http://127.0.0.1:{self.s['ports']['ch_http']}"

    def ch_rows(self, sql, timeout=30):
        """Runs sql over HTTP; rows as lists of strings (TabSeparated)."""
        url = self.ch_endpoint + "/?" + urllib.parse.urlencode({"query": sql + " FORMAT TabSeparated"})
        try:
            out = http(url, data=b"", timeout=timeout)
        except urllib.error.HTTPError as e:
            raise LabError("ClickHouse: " + e.read().decode(errors="replace").strip()[:500]) from None
        return [line.split("\t") for line in out.splitlines() if line]

    # ------------------------------------------------------------------ coordinator
    def start_coordinator(self, *extra, timeout=90):
        with open(os.path.join(self.dir, "token"), "w", opener=lambda p, fl: os.open(p, fl, 0o600)) as f:
            f.write(secrets.token_hex(24) + "\n")
        nng, grpc, metrics = free_ports(3)
        self.s["ports"].update(nng=nng, grpc=grpc, coord_metrics=metrics)
        self.save()
        self.procs.spawn("coordinator", [
            self.coord_bin, f"--listen-url={self.coord_url}", f"--grpc-address={self.gw}", f"--grpc-port={grpc}",
            f"--metrics-address={self.gw}", f"--metrics-port={metrics}", f"--state-dir={self.dir}/coordinator",
            f"--token-file={self.dir}/token", f"--clickhouse-endpoint={self.ch_endpoint}",
            f"--clickhouse-database={DB}", "--clickhouse-flush-ms=500", "--heartbeat-ms=1000",
            "--stale-after-ms=5000"] + list(extra))
        self.procs.wait_log("coordinator", "COORD-READY", timeout)

    @property
    def coord_url(self):
        return f"tcp://{self.gw}:{self.s['ports']['nng']}"

    @property
    def grpc(self):
        return f"{self.gw}:{self.s['ports']['grpc']}"

    def coord_metrics_url(self):
        return f"http://{self.gw}:{self.s['ports']['coord_metrics']}/metrics"

    def msctl(self, *args, timeout=20):
        p = subprocess.run([self.msctl_bin, f"--coordinator={self.grpc}", f"--token-file={self.dir}/token"]
                           + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        return p.returncode, p.stdout + p.stderr

    def coord_agents(self):
        url = f"http://{self.gw}:{self.s['ports']['coord_metrics']}/api/v1/agents"
        return json.loads(http(url, token=self.token))["agents"]

    # ------------------------------------------------------------------ agents
    def start_agent(self, agent_id, labels, netns=None, ip=None, extra=(), timeout=60):
        """An agent in netns (metrics and control on ip:9105/9200 there) or, without netns, on
        this host (loopback, free ports). labels: {k: v}."""
        if netns:
            maddr, mport, cport = ip, 9105, 9200
        else:
            maddr, (mport, cport) = "127.0.0.1", free_ports(2)
        name = "agent-" + agent_id
        state = os.path.join(self.dir, "agents", agent_id)
        os.makedirs(state, exist_ok=True)
        lab = ",".join(f"{k}={v}" for k, v in labels.items())
        self.procs.spawn(name, [
            self.agent_bin, f"--agent-id={agent_id}", f"--labels={lab}", f"--coordinator-url={self.coord_url}",
            f"--coordinator-grpc={self.grpc}", f"--token-file={self.dir}/token", f"--state-dir={state}",
            f"--metrics-address={maddr}", f"--metrics-port={mport}", f"--control-address={maddr}",
            f"--control-port={cport}", "--uplink-heartbeat-ms=1000"] + list(extra), netns=netns)
        self.s["agents"].append({"id": agent_id, "netns": netns, "labels": labels, "metrics": f"{maddr}:{mport}",
                                 "control": f"{maddr}:{cport}", "proc": name})
        self.save()
        self.procs.wait_log(name, "AGENT-READY", timeout)

    # ------------------------------------------------------------------ Prometheus
    def start_prometheus(self, timeout=60):
        d = os.path.join(self.dir, "prom")
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        (port,) = free_ports(1)
        self.s["ports"]["prometheus"] = port
        self.save()
        lines = ["global:", "  scrape_interval: 2s", "  scrape_timeout: 1s", "  evaluation_interval: 2s"]
        rules = os.path.join(self.s["src"], "backend", "alert_rules.yml")
        promtool = shutil.which("promtool")
        # the shipped alert rules, when they check (a broken rule file would stop Prometheus)
        if os.path.exists(rules) and promtool and run([promtool, "check", "rules", rules], check=False).returncode == 0:
            lines += ["rule_files:", f"  - {json.dumps(rules)}"]
        lines += ["scrape_configs:", "  - job_name: ms_agent", "    static_configs:"]
        for a in self.s["agents"]:
            lines.append(f"      - targets: [{json.dumps(a['metrics'])}]")
            lab = dict(a["labels"], agent=a["id"])
            lines.append("        labels: {" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in lab.items()) + "}")
        lines += ["  - job_name: ms_coordinator", "    static_configs:",
                  f"      - targets: [\"{self.gw}:{self.s['ports']['coord_metrics']}\"]"]
        conf = os.path.join(d, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.procs.spawn("prometheus", [
            PROM_BIN, f"--config.file={conf}", f"--storage.tsdb.path={d}/data",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1d"], cwd=d)

        def ready():
            if self.procs.pid("prometheus") is None:
                raise LabError("prometheus exited:\n" + self.procs.log("prometheus")[-3000:])
            try:
                http(f"http://127.0.0.1:{port}/-/ready", timeout=1)
                return True
            except OSError:
                return False
        wait_for(ready, timeout, "Prometheus /-/ready")

    def prom_query(self, expr):
        """[(labels, value)] of an instant query."""
        url = f"http://127.0.0.1:{self.s['ports']['prometheus']}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        d = json.loads(http(url))
        return [(r["metric"], float(r["value"][1])) for r in d["data"]["result"]]

    # ------------------------------------------------------------------ teardown
    def down(self, keep=False):
        """Stops every process, removes namespaces and links, and (unless keep) the state
        directory. Returns what was left behind (empty when clean)."""
        self.procs.stop_all()
        left = [f"process {n}" for n in self.procs.names() if self.procs.pid(n)]
        left += self.net_down()
        if not left and not keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        return left
