"""Grafana dashboards (backend/grafana/*.json, issue 8): importable structure, every ClickHouse
query run against a real ClickHouse holding lab data, every PromQL expression evaluated by a real
Prometheus scraping real agents and the coordinator.

Structure (no servers): each file parses; has uid, title, schemaVersion, __inputs declaring the
data sources its panels use; panels have unique ids, a grid position inside 24 columns, a data
source and targets; ClickHouse targets name a table and time column of backend/clickhouse_schema.sql;
every metric a PromQL expression reads is in backend/prometheus_metrics.yaml (or is Prometheus's
own `up`).

Queries: the ClickHouse targets are written for the Altinity plugin
(vertamedia-clickhouse-datasource). expand_altinity() below reproduces what that plugin does to a
query before sending it (its SqlQuery.replace, DATETIME time column, no date column, round 0):
Grafana's template variables first ($host as a quoted, comma-joined list since it is multi-value,
$flow as is, $__from/$__to in ms), then the plugin's macros in the plugin's order:
  $timeSeries  -> (intDiv(toUInt32($dateTimeCol), $interval) * $interval) * 1000
  $timeFilter  -> $dateTimeCol >= toDateTime($from) AND $dateTimeCol <= toDateTime($to)
  $table       -> database.table of the target
  $from/$to    -> the range in whole seconds; $dateTimeCol -> the target's column; $interval ->
                  the panel interval in seconds (ceil(seconds x intervalFactor))
and the plugin's " FORMAT JSON". Macros the test does not implement ($columns, $rate, $perSecond,
...) are refused, so a dashboard cannot silently use one. Each query must succeed and return rows.

Lab data, all of it from the real pipeline: a ClickHouse server; the real coordinator writing
into it, with a bearer token (file mode 0600) and its gRPC fleet API; three synthetic-source
agents streaming windows over the nng uplink and keeping a gRPC Watch stream: lab-a and lab-b
(flows, functions, windows tables) and lab-mem (--mock-data-addr --events=hitm: the synthetic
source's data addresses on a contended cache line and on a table over a modelled two-node host, so
its windows carry false-sharing lines, remote-DRAM hotspots and data objects). ms_fleet_events is
filled by the coordinator itself: the agents' Watch connects (agent_connected) and a real operator
command, `msctl mode diagnostic --hosts=lab-a --ttl=30s --reason=dashboards-test` (mode_set).

Prometheus: a real /usr/bin/prometheus scrapes the agents (job ms_agent) and the coordinator (job
ms_coordinator) every second with the bearer token; $job is expanded to its All value (.*) and
$__rate_interval to 20s (Grafana makes it at least 4 scrape intervals); every expression must
succeed with a non-empty result."""
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import chrun  # noqa: E402
import clickhouse  # noqa: E402
import mstest  # noqa: E402

GRAFANA = os.path.join(mstest.SRC, "backend", "grafana")
SCHEMA = os.path.join(mstest.SRC, "backend", "clickhouse_schema.sql")
CATALOGUE = os.path.join(mstest.SRC, "backend", "prometheus_metrics.yaml")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
CH_PLUGIN = "vertamedia-clickhouse-datasource"
DB = "microsentinel"
PANEL_TYPES = {"timeseries", "table", "heatmap", "flamegraph", "stat", "bargauge", "gauge", "text", "row"}
RATE_INTERVAL = "20s"
PANEL_INTERVAL = "1s"
LAB_S = 8
MEM_HOST = "lab-mem"
HOSTS = ("lab-a", "lab-b", MEM_HOST)
MSCTL = os.path.join(mstest.BUILD, "coordinator", "msctl")
TOKEN = "h10-dashboards-token-0123456789"
REASON = "dashboards-test"


def load_dashboards():
    out = {}
    for name in sorted(os.listdir(GRAFANA)):
        if name.endswith(".json"):
            with open(os.path.join(GRAFANA, name)) as f:
                out[name] = json.load(f)
    return out


def all_panels(d):
    for p in d.get("panels", []):
        yield p
        for q in p.get("panels", []):  # collapsed rows carry their panels
            yield q


def schema_tables():
    """{table: {column, ...}} from the schema file (CREATE TABLE and ALTER ... ADD COLUMN)."""
    with open(SCHEMA) as f:
        text = f.read()
    tables = {}
    for m in re.finditer(r"CREATE TABLE IF NOT EXISTS \w+\.(\w+)\s*\((.*?)\n\)", text, re.S):
        tables[m.group(1)] = {line.split()[0] for line in m.group(2).splitlines() if line.strip()}
    for m in re.finditer(r"ALTER TABLE \w+\.(\w+) ADD COLUMN (\w+)", text):
        tables[m.group(1)].add(m.group(2))
    return tables


def catalogue():
    import yaml
    with open(CATALOGUE) as f:
        c = yaml.safe_load(f)
    return {m["name"]: m for side in ("agent", "coordinator") for m in c[side]}


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or",
                "unless", "inf", "nan"}


def promql_metrics(expr):
    """Metric names an expression reads: identifiers that are not functions, keywords, label
    matchers, grouping labels or durations."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or m.group(0).lower() in PROMQL_WORDS:
            continue
        names.add(m.group(0))
    return names


def metric_known(name, cat):
    if name == "up" or name in cat:
        return True
    for suffix, types in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                          ("_count", ("histogram", "summary"))):
        if name.endswith(suffix) and cat.get(name[:-len(suffix)], {}).get("type") in types:
            return True
    return False


# ------------------------------------------------------------------ Grafana + Altinity expansion

def grafana_replace(text, variables):
    """Grafana's templateSrv.replace: $name, ${name}, ${name:raw}, [[name]] of the known variables
    (values already formatted the way the data source formats them); unknown names stay."""
    def sub(m):
        name = m.group(1) or m.group(2) or m.group(4)
        return variables[name] if name in variables else m.group(0)
    return re.sub(r"\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]", sub, text)


def altinity_var_value(values, multi_or_all):
    """The plugin's interpolateQueryExpr: single-value variables as they are, multi-value or
    include-all ones each quoted (unless every option is a number) and joined with ','."""
    if not multi_or_all:
        return values[0]
    if all(re.fullmatch(r"[+-]?\d+(\.\d+)?", v) for v in values):
        return ",".join(values)
    return ",".join("'" + re.sub(r"([\\'])", r"\\\1", v) + "'" for v in values)


def convert_interval(interval, factor):
    m = re.search(r"(\d+)(ms|s|m|h|d|w|M|y)", interval or "")
    if not m:
        return 0
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000, "y": 31536000, "ms": 0.001}[m.group(2)]
    return math.ceil(int(m.group(1)) * unit * factor)


UNSUPPORTED_MACROS = ("$columns(", "$rateColumns(", "$rate(", "$perSecond(", "$perSecondColumns(", "$increase(",
                      "$delta(", "$unescape(", "$conditionalTest(", "$adhoc", "$naturalTimeSeries", "$timeSeriesMs",
                      "$timeFilterMs", "$__timeFilter")


def ident(name):
    return name if re.fullmatch(r"[a-zA-Z][0-9a-zA-Z_]+", name) or re.search(r"\(.*\)", name) else f'"{name}"'


def expand_altinity(target, from_ms, to_ms, variables):
    """The query the Altinity plugin sends for target over [from_ms, to_ms] (see module doc)."""
    q = grafana_replace(target["query"].strip(), variables)
    for macro in UNSUPPORTED_MACROS:
        if macro in q:
            raise AssertionError(f"macro {macro} is not expanded by this test: {q}")
    if target.get("dateTimeType", "DATETIME") != "DATETIME":
        raise AssertionError("only DATETIME time columns are expanded")
    interval = convert_interval(target.get("interval") or PANEL_INTERVAL, target.get("intervalFactor") or 1)
    time_filter = "$dateTimeCol >= toDateTime($from) AND $dateTimeCol <= toDateTime($to)"
    if target.get("dateColDataType"):
        time_filter = "$dateCol >= toDate($from) AND $dateCol <= toDate($to) AND " + time_filter
    table = target["table"] if re.fullmatch(r"[a-zA-Z][0-9a-zA-Z_]+", target["table"]) else f"`{target['table']}`"
    if target.get("database"):
        table = target["database"] + "." + table
    if convert_interval(target.get("round", ""), 1):
        raise AssertionError("rounded ranges are not expanded")
    frm, to = from_ms // 1000, to_ms // 1000
    for pattern, value in ((r"\$timeSeries\b", "(intDiv(toUInt32($dateTimeCol), $interval) * $interval) * 1000"),
                           (r"\$timeFilter\b", time_filter), (r"\$table\b", table), (r"\$from\b", str(frm)),
                           (r"\$to\b", str(to)), (r"\$dateCol\b", ident(target.get("dateColDataType", ""))),
                           (r"\$dateTimeCol\b", ident(target["dateTimeColDataType"])),
                           (r"\$interval\b", str(interval)), (r"\$__interval_ms\b", str(interval * 1000))):
        q = re.sub(pattern, lambda _m, v=value: v, q)
    return q


# ------------------------------------------------------------------ structure

class DashboardStructure(unittest.TestCase):
    def test_importable(self):
        boards = load_dashboards()
        self.assertGreaterEqual(len(boards), 4, "expected the flows, memory, fleet and health dashboards")
        tables = schema_tables()
        cat = catalogue()
        uids, titles = set(), set()
        for name, d in boards.items():
            with self.subTest(dashboard=name):
                self.assertIsInstance(d.get("uid"), str)
                self.assertTrue(0 < len(d["uid"]) <= 40 and re.fullmatch(r"[A-Za-z0-9_-]+", d["uid"]))
                self.assertNotIn(d["uid"], uids)
                uids.add(d["uid"])
                self.assertTrue(d.get("title"))
                self.assertNotIn(d["title"], titles)
                titles.add(d["title"])
                self.assertIsInstance(d.get("schemaVersion"), int)
                self.assertGreaterEqual(d["schemaVersion"], 30)
                self.assertIsNone(d.get("id"), "an exported dashboard has id null")
                inputs = {f"${{{i['name']}}}": i["pluginId"] for i in d.get("__inputs", [])}
                required = {r["id"] for r in d.get("__requires", [])}
                panels = list(all_panels(d))
                self.assertTrue(panels)
                ids = [p["id"] for p in panels]
                self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
                for v in d.get("templating", {}).get("list", []):
                    if v.get("type") == "query":
                        self.assertIn(v["datasource"]["uid"], inputs, v["name"])
                for p in panels:
                    self.assertIn(p["type"], PANEL_TYPES)
                    self.assertIn(p["type"], required | {"row", "text"}, f"{p['title']}: panel type not in __requires")
                    g = p["gridPos"]
                    self.assertTrue(g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"])
                    if p["type"] == "row":
                        continue
                    ds = p["datasource"]
                    self.assertEqual(inputs.get(ds["uid"]), ds["type"], f"{p['title']}: data source not in __inputs")
                    self.assertIn(ds["type"], required)
                    self.assertTrue(p["targets"], p["title"])
                    refs = [t["refId"] for t in p["targets"]]
                    self.assertEqual(len(refs), len(set(refs)))
                    for t in p["targets"]:
                        self.assertEqual(t["datasource"], ds)
                        if ds["type"] == CH_PLUGIN:
                            self.assertEqual(t["database"], DB)
                            self.assertIn(t["table"], tables, p["title"])
                            self.assertIn(t["dateTimeColDataType"], tables[t["table"]], p["title"])
                            self.assertIn(t["format"], ("time_series", "table", "flamegraph"))
                            self.assertIn("$timeFilter", t["query"], f"{p['title']}: ignores the time range")
                        else:
                            self.assertEqual(ds["type"], "prometheus")
                            names = promql_metrics(t["expr"])
                            self.assertTrue(names, f"{p['title']}: no metric found in {t['expr']}")
                            for m in names:
                                self.assertTrue(metric_known(m, cat), f"{p['title']}: {m} not in the catalogue")

    def test_expansion(self):
        """The expansion itself on a known query (the plugin's output for these settings)."""
        t = {"query": "SELECT $timeSeries AS t, count() FROM $table WHERE $timeFilter AND host IN ($host) GROUP BY t",
             "database": DB, "table": "ms_windows", "dateTimeColDataType": "ts", "dateColDataType": "",
             "dateTimeType": "DATETIME", "intervalFactor": 2, "round": "0s"}
        q = expand_altinity(t, 1700000000999, 1700000600000, {"host": altinity_var_value(["a", "b'c"], True)})
        self.assertEqual(q, "SELECT (intDiv(toUInt32(ts), 2) * 2) * 1000 AS t, count() FROM microsentinel.ms_windows "
                            "WHERE ts >= toDateTime(1700000000) AND ts <= toDateTime(1700000600) "
                            "AND host IN ('a','b\\'c') GROUP BY t")
        with self.assertRaises(AssertionError):
            expand_altinity(dict(t, query="$columns(host h, count() c) FROM $table"), 0, 1000, {})
        self.assertEqual(promql_metrics('histogram_quantile(0.99, sum by (le) (rate(x_bucket{job=~"$j"}[5m])))'),
                         {"x_bucket"})


# ------------------------------------------------------------------ lab

def msctl(target, tokfile, *args):
    return subprocess.run([MSCTL, f"--coordinator={target}", f"--token-file={tokfile}", "--timeout-ms=10000", *args],
                          capture_output=True, text=True, timeout=60)


def wait_for(what, fn, timeout):
    end = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


class Prometheus:
    def __init__(self, jobs, token=None):
        self.tmp = tempfile.mkdtemp(prefix="ms-prom-")
        self.port = clickhouse.free_ports(1)[0]
        cfg = os.path.join(self.tmp, "prom.yml")
        lines = ["global: {scrape_interval: 1s, evaluation_interval: 1s}", "scrape_configs:"]
        for job, ports in jobs.items():
            targets = ", ".join(f"'127.0.0.1:{p}'" for p in ports)
            lines += [f"  - job_name: {job}", f"    static_configs: [{{targets: [{targets}]}}]"]
            if token:  # the agents' and coordinator's /metrics ask for the bearer token
                lines += [f"    authorization: {{credentials: '{token}'}}"]
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(os.path.join(self.tmp, "prom.log"), "w")
        self.proc = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={self.tmp}/data",
                                      f"--web.listen-address=127.0.0.1:{self.port}"], stdout=self.log, stderr=self.log)
        self.ntargets = sum(len(p) for p in jobs.values())

    def get(self, path, **params):
        url = f"http://127.0.0.1:{self.port}{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read().decode() or "null") if path.startswith("/api") else r.read()

    def wait_up(self, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            try:
                act = self.get("/api/v1/targets")["data"]["activeTargets"]
                if len(act) == self.ntargets and all(t["health"] == "up" for t in act):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError("Prometheus targets not all up")

    def query(self, expr):
        try:
            return self.get("/api/v1/query", query=expr)
        except urllib.error.HTTPError as e:
            return json.loads(e.read().decode())

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class DashboardQueries(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        clickhouse.skip_unless_available()
        if not os.path.exists(chrun.COORD) or not os.path.exists(mstest.AGENT):
            raise unittest.SkipTest("coordinator or agent not built")
        cls.cleanups = []
        try:
            cls._start()
        except BaseException:
            cls._stop()
            raise

    @classmethod
    def _start(cls):
        cls.t0_ms = int(time.time() * 1000) - 120_000
        cls.tmp = tempfile.mkdtemp(prefix="ms-h10-dash-")
        cls.cleanups.append(lambda: shutil.rmtree(cls.tmp, ignore_errors=True))
        cls.tok = os.path.join(cls.tmp, "token")
        fd = os.open(cls.tok, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(cls.tok, 0o600)
        os.makedirs(os.path.join(cls.tmp, "coord"))
        cls.ch = clickhouse.Server().start()
        cls.cleanups.append(cls.ch.cleanup)
        grpc_port = clickhouse.free_ports(1)[0]
        cls.target = f"127.0.0.1:{grpc_port}"
        cls.coord = chrun.Coordinator(cls.ch, DB, f"--grpc-port={grpc_port}", f"--token-file={cls.tok}",
                                      tmp=os.path.join(cls.tmp, "coord")).start()
        cls.cleanups.append(cls.coord.stop)
        cls.agents = {}
        ports = clickhouse.free_ports(len(HOSTS))
        common = [f"--coordinator-url={cls.coord.url}", f"--coordinator-grpc={cls.target}", f"--token-file={cls.tok}",
                  "--perf-mock", "--window-ms=1000", "--mode=auto"]
        for name, port in zip(HOSTS, ports):
            extra = (["--mock-data-addr", "--events=hitm", "--mock-rate=4000", "--mock-flows=20"] if name == MEM_HOST
                     else ["--mock-rate=4000", "--mock-flows=40"])
            a = mstest.Agent(*common, *extra, f"--agent-id={name}", f"--metrics-port={port}")
            a.start()
            cls.agents[name] = a
            cls.cleanups.append(a.stop)
        cls.prom = None
        if os.path.exists(PROMETHEUS):
            cls.prom = Prometheus({"ms_agent": ports, "ms_coordinator": [cls.coord.metrics_port]}, token=TOKEN)
            cls.cleanups.append(cls.prom.stop)

        def watching():
            r = msctl(cls.target, cls.tok, "--json", "agents")
            return r.returncode == 0 and sum(a["watching"] for a in json.loads(r.stdout)["agents"]) == len(HOSTS)
        wait_for("every agent on a Watch stream", watching, 60)
        # a real operator command: the coordinator stores it (mode_set) next to the connects
        cls.push = msctl(cls.target, cls.tok, "--json", "mode", "diagnostic", "--hosts=lab-a", "--ttl=30s",
                         f"--reason={REASON}")
        assert cls.push.returncode == 0, (cls.push.returncode, cls.push.stdout, cls.push.stderr)
        time.sleep(LAB_S)

        def stored():
            hosts = {r[0] for r in cls.ch.rows(f"SELECT DISTINCT toString(host) FROM {DB}.ms_flow_rollup")}
            kinds = {r[0] for r in cls.ch.rows(f"SELECT DISTINCT toString(kind) FROM {DB}.ms_fleet_events")}
            fs = cls.ch.scalar(f"SELECT count() FROM {DB}.ms_false_sharing")
            rd = cls.ch.scalar(f"SELECT count() FROM {DB}.ms_remote_dram WHERE mem_node != cpu_node")
            obj = cls.ch.scalar(f"SELECT count() FROM {DB}.ms_data_objects")
            return set(HOSTS) <= hosts and {"agent_connected", "mode_set"} <= kinds and fs and rd and obj
        try:
            wait_for("lab data in every table", stored, 60)
        except AssertionError:
            pass  # test_lab_data says which table is missing what
        cls.to_ms = int(time.time() * 1000) + 60_000

    @classmethod
    def _stop(cls):
        for fn in reversed(cls.cleanups):
            try:
                fn()
            except Exception as e:  # keep stopping the rest
                print("cleanup:", e)

    @classmethod
    def tearDownClass(cls):
        cls._stop()

    def run_json(self, sql):
        return json.loads(self.ch.query(sql + " FORMAT JSON"))

    def ch_variables(self, d):
        """Resolves the dashboard's ClickHouse query variables the way Grafana does on load: All for
        include-all variables, the first option for single-value ones."""
        values = {"__from": str(self.t0_ms), "__to": str(self.to_ms), "__interval": PANEL_INTERVAL,
                  "__interval_ms": str(convert_interval(PANEL_INTERVAL, 1) * 1000)}
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") != "query" or v["datasource"]["type"] != CH_PLUGIN:
                continue
            sql = grafana_replace(v["query"], values)
            self.assertNotIn("$", sql, f"variable {v['name']}: unexpanded {sql}")
            res = self.run_json(sql)
            self.assertTrue(res["data"], f"variable {v['name']} has no options: {sql}")
            names = [c["name"] for c in res["meta"]]
            if "__value" in names:
                self.assertEqual(sorted(names), ["__text", "__value"], v["name"])
                opts = [str(r["__value"]) for r in res["data"]]
            else:
                self.assertEqual(len(names), 1, v["name"])
                opts = [str(r[names[0]]) for r in res["data"]]
            multi = v.get("multi") or v.get("includeAll")
            values[v["name"]] = altinity_var_value(opts if v.get("includeAll") else opts[:1], multi)
        return values

    def test_lab_data(self):
        """Every table the dashboards read was filled by the pipeline, not by the test."""
        q = lambda sql: {tuple(r) for r in self.ch.rows(sql)}  # noqa: E731
        hosts = {h for (h,) in q(f"SELECT DISTINCT toString(host) FROM {DB}.ms_flow_rollup")}
        self.assertTrue(set(HOSTS) <= hosts, hosts)
        for table, where in (("ms_false_sharing", ""), ("ms_remote_dram", " WHERE mem_node != cpu_node"),
                             ("ms_data_objects", "")):
            self.assertEqual(q(f"SELECT DISTINCT toString(host) FROM {DB}.{table}{where}"), {(MEM_HOST,)}, table)
        push = json.loads(self.push.stdout)
        self.assertEqual(sorted(push["agents"]), ["lab-a"], push)
        ev = q(f"SELECT toString(kind), arrayStringConcat(hosts, ','), toString(mode), reason, toString(host) "
               f"FROM {DB}.ms_fleet_events FINAL")
        self.assertIn(("mode_set", "lab-a", "diagnostic", REASON), {e[:4] for e in ev}, ev)
        connected = {e[1] for e in ev if e[0] == "agent_connected"}
        self.assertTrue(set(HOSTS) <= connected, ev)
        print("ms_fleet_events:", sorted(ev))

    def test_clickhouse_queries(self):
        boards = load_dashboards()
        ran = 0
        for name, d in boards.items():
            variables = self.ch_variables(d)
            for p in all_panels(d):
                for t in p.get("targets", []):
                    if t.get("datasource", {}).get("type") != CH_PLUGIN:
                        continue
                    with self.subTest(dashboard=name, panel=p["title"], ref=t["refId"]):
                        sql = expand_altinity(t, self.t0_ms, self.to_ms, variables)
                        self.assertNotIn("$", sql, f"unexpanded macro or variable: {sql}")
                        try:
                            res = self.run_json(sql)
                        except clickhouse.QueryError as e:
                            self.fail(f"{e}\n{sql}")
                        self.assertTrue(res["data"], f"no rows:\n{sql}")
                        self.check_format(t["format"], res, sql)
                        ran += 1
                        print(f"{name}: {p['title']}: {len(res['data'])} rows")
        self.assertGreater(ran, 0)

    def check_format(self, fmt, res, sql):
        cols = [c["name"] for c in res["meta"]]
        if fmt == "time_series":
            self.assertEqual(cols[0], "t", "time series: the first column is the time in ms")
            for r in res["data"]:
                self.assertTrue(self.t0_ms - 1000 <= int(r["t"]) <= self.to_ms, sql)
        elif fmt == "flamegraph":
            self.assertEqual(cols, ["label", "level", "value", "self"])
            prev = 0
            for r in res["data"]:
                self.assertLessEqual(int(r["level"]), prev + 1, "flame rows must be depth-first")
                prev = int(r["level"])
            self.assertEqual(int(res["data"][0]["level"]), 1)

    def test_promql(self):
        if not self.prom:
            self.skipTest("prometheus not installed")
        self.prom.wait_up()
        variables = {"job": ".*", "__rate_interval": RATE_INTERVAL, "__interval": PANEL_INTERVAL}
        exprs = []
        for name, d in load_dashboards().items():
            for p in all_panels(d):
                for t in p.get("targets", []):
                    if t.get("datasource", {}).get("type") == "prometheus":
                        exprs.append((name, p["title"], grafana_replace(t["expr"], variables)))
        self.assertTrue(exprs)
        end = time.time() + 60
        for name, title, expr in exprs:
            with self.subTest(dashboard=name, panel=title, expr=expr):
                self.assertNotIn("$", expr)
                while True:
                    r = self.prom.query(expr)
                    self.assertEqual(r["status"], "success", r)
                    if r["data"]["result"] or time.time() > end:
                        break
                    time.sleep(1)
                self.assertTrue(r["data"]["result"], f"empty result: {expr}")
                print(f"{name}: {title}: {expr} -> {len(r['data']['result'])} series")


if __name__ == "__main__":
    mstest.main()
