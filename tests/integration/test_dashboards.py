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

Lab data: a ClickHouse server, the real coordinator writing into it, two synthetic-source agents
streaming windows to the coordinator (flows, functions, windows tables). This VM has no PMU data
addresses and the agent's uplink does not carry detector findings yet (agent/uplink_enc.c encodes
rows and dictionaries only), so false-sharing and remote-DRAM rows come from windows sent to the
coordinator's ingest port with the findings a PMU host's agent would report (the same nng +
protobuf path, stored by the coordinator's ClickHouse sink). ms_fleet_events has no writer in the
coordinator yet (common/chrows.c chrows_fleet_event has no caller), so its rows are inserted with
SQL here; that is the one table not filled by the pipeline.

Prometheus: a real /usr/bin/prometheus scrapes the agents (job ms_agent) and the coordinator (job
ms_coordinator) every second; $job is expanded to its All value (.*) and $__rate_interval to 20s
(Grafana makes it at least 4 scrape intervals); every expression must succeed with a non-empty
result."""
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
import flowid  # noqa: E402
import msfleet  # noqa: E402
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
LAB_S = 12
PMU_HOST = "pmu-host"


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

def pmu_window(seq, start_ns):
    """A window as a PMU host's agent reports it: one flow, two functions, a data object, rollup
    rows, two contended lines and two remote-DRAM hotspots."""
    m = msfleet.pb()
    fid = flowid.flow_id("tcp", "10.9.0.1", 40000, "10.9.0.2", 6379, "rx", 4026531840)
    w = m.Window(agent_id=PMU_HOST, seq=seq, start_ns=start_ns, end_ns=start_ns + 1_000_000_000,
                 mode=m.MODE_DIAGNOSTIC, budget_per_cpu=2000)
    w.events.add(name="mem-loads", source=m.SOURCE_HW, cost_per_sample=1000.0)
    w.flows.add(flow_id=fid, saddr=bytes([10, 9, 0, 1]), daddr=bytes([10, 9, 0, 2]), sport=40000, dport=6379,
                family=4, proto=6, dir=1, ifindex=2, netns=4026531840)
    w.modules.append("/usr/bin/kvstore")
    w.funcs.add(func_id=0x51, name="counter_inc", module=0)
    w.funcs.add(func_id=0x52, name="stats_read", module=0)
    w.pids.append(7001)
    w.objects.add(object_id=0x77, name="g_stats", addr=0x5500_0000_1000, size=256)
    w.rows.count = 2
    w.rows.flow_delta.extend([1, 0])
    w.rows.func.extend([1, 2])
    w.rows.object.extend([1, 1])
    w.rows.samples.extend([30 + seq, 12])
    w.counters.emitted = 42 + seq
    w.false_sharing.add(line_addr=0x5500_0000_1000, object_id=0x77, offsets=[0, 8], pids=[7001], func_ids=[0x51, 0x52],
                        writers=2, readers=1, score=1500.0 + seq, true_sharing=False)
    w.false_sharing.add(line_addr=0x5500_0000_1040, object_id=0x77, offsets=[0], pids=[7001], func_ids=[0x51],
                        writers=2, readers=0, score=300.0, true_sharing=True)
    w.remote_dram.add(flow_id=fid, mem_node=1, cpu_node=0, object_id=0x77, samples=20 + seq, cost=20000.0)
    w.remote_dram.add(flow_id=fid, mem_node=0, cpu_node=1, object_id=0x77, samples=5, cost=5000.0)
    return m.Request(protocol=1, low_water=seq, window=w).SerializeToString()


def send_pmu_windows(coord, n):
    req = msfleet.RawReq(coord.port)
    try:
        ack = req.ack(msfleet.hello(PMU_HOST, next_seq=1))
        assert ack.status == msfleet.pb().ACK_OK, ack
        now = time.time_ns()
        for seq in range(1, n + 1):
            ack = req.ack(pmu_window(seq, now - (n - seq) * 1_000_000_000))
            assert ack.status == msfleet.pb().ACK_OK, ack
    finally:
        req.close()


def insert_fleet_events(ch):
    """No producer writes ms_fleet_events yet (see module doc): rows shaped as chrows_fleet_event
    writes them."""
    now = int(time.time())
    rows = [(now - 6, 1, "trigger", "rack=r1", ["lab-a", "lab-b"], "diagnostic", 60000,
             "anomaly on 2 of 2 hosts in rack=r1", '{"signals":2}'),
            (now - 3, 2, "mode_set", "", ["lab-a"], "diagnostic", 30000, "operator", '{"command":"c1"}'),
            (now - 1, 3, "clear", "rack=r1", ["lab-a", "lab-b"], "sentinel", 0, "ttl expired", "")]
    values = ",".join(
        f"(toDateTime({ts}), 'coord-1', {seq}, {ts * 1_000_000_000}, '{kind}', '{group}', "
        f"[{','.join(repr(h) for h in hosts)}], '{mode}', {ttl}, '{reason}', '{details}')"
        for ts, seq, kind, group, hosts, mode, ttl, reason, details in rows)
    ch.query(f"INSERT INTO {DB}.ms_fleet_events (ts, host, seq, ts_ns, kind, group_key, hosts, mode, ttl_ms, reason, "
             f"details) VALUES {values}")


class Prometheus:
    def __init__(self, jobs):
        self.tmp = tempfile.mkdtemp(prefix="ms-prom-")
        self.port = clickhouse.free_ports(1)[0]
        cfg = os.path.join(self.tmp, "prom.yml")
        lines = ["global: {scrape_interval: 1s, evaluation_interval: 1s}", "scrape_configs:"]
        for job, ports in jobs.items():
            targets = ", ".join(f"'127.0.0.1:{p}'" for p in ports)
            lines += [f"  - job_name: {job}", f"    static_configs: [{{targets: [{targets}]}}]"]
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
        cls.ch = clickhouse.Server().start()
        cls.cleanups.append(cls.ch.cleanup)
        cls.coord = chrun.Coordinator(cls.ch, DB).start()
        cls.cleanups.append(cls.coord.stop)
        cls.agents = []
        ports = clickhouse.free_ports(2)
        for name, port in zip(("lab-a", "lab-b"), ports):
            a = mstest.Agent(f"--coordinator-url={cls.coord.url}", f"--agent-id={name}", "--perf-mock",
                             "--mock-rate=4000", "--mock-flows=40", "--window-ms=1000", f"--metrics-port={port}")
            a.start()
            cls.agents.append(a)
            cls.cleanups.append(a.stop)
        cls.prom = None
        if os.path.exists(PROMETHEUS):
            cls.prom = Prometheus({"ms_agent": ports, "ms_coordinator": [cls.coord.metrics_port]})
            cls.cleanups.append(cls.prom.stop)
        send_pmu_windows(cls.coord, 3)
        insert_fleet_events(cls.ch)
        time.sleep(LAB_S)
        end = time.time() + 60
        while time.time() < end:
            hosts = {r[0] for r in cls.ch.rows(f"SELECT DISTINCT toString(host) FROM {DB}.ms_flow_rollup")}
            fs = cls.ch.scalar(f"SELECT count() FROM {DB}.ms_false_sharing")
            if {"lab-a", "lab-b", PMU_HOST} <= hosts and fs:
                break
            time.sleep(0.5)
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
