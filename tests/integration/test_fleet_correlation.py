"""Fleet correlation end to end with real agents (SPEC section 6, issue 7): a real ClickHouse, a
coordinator writing to it, four real agents (synthetic samples; their anomaly monitor watches
real veth traffic) labelled role=lb (lb-1, lb-2) and role=db (db-1, db-2). Each agent watches the
root end of its own veth pair; a UDP sender pushes ~1 MB/s through it to a sink in a network
namespace. The lb senders are halved: both lb agents' anomaly monitors raise a TX throughput drop
on their own veth (h9fa1, h9fa2: different names) and their windows carry it (Window.anomalies);
the coordinator's correlator keys it "anomaly:tx_bytes:drop" (no interface name, so the hosts
agree; correlator_mode_signals off: the real signals alone) and raises exactly one fleet trigger
for group lb (none for db), pins both lb agents to diagnostic (their local status shows the
coordinator's pin, the db agents stay in sentinel), and the trigger is on a WatchEvents stream,
in ms_fleet_events and on /metrics; both lb agents' signals are rows of ms_anomalies (with their
interface names) and entries of ListAnomalies. The lb traffic comes back: the trigger clears,
the group is sent back (auto) and the agents return to sentinel.
Then pending commands: a pin pushed to a stopped agent is queued (not failed) and reaches the
agent when it starts again. A standalone agent (no coordinator) writes its own signals to
ms_anomalies."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentapi  # noqa: E402
import clickhouse  # noqa: E402
import msfleet  # noqa: E402
import msgrpc  # noqa: E402
import mstest  # noqa: E402

TOKEN = "h1-correlation-token-0123456789"
DB = "h9fleet"
PORT = 39479
RATE = 1000  # packets/s of 1000 bytes
AGENTS = [("lb-1", "lb", 1), ("lb-2", "lb", 2), ("db-1", "db", 3), ("db-2", "db", 4)]

SENDER = r"""
import os, signal, socket, sys, time
os.nice(-10)  # a starved sender would look like a traffic drop to its agent (2 shared vCPUs)
rate = float(sys.argv[2])
state = {"rate": rate}
signal.signal(signal.SIGUSR1, lambda *a: state.update(rate=rate / 2))
signal.signal(signal.SIGHUP, lambda *a: state.update(rate=rate))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"x" * 1000
credit, last = 0.0, time.monotonic()
print("READY", flush=True)
while True:
    time.sleep(0.005)
    now = time.monotonic()
    credit = min(credit + (now - last) * state["rate"], state["rate"] * 0.2 + 1)
    last = now
    while credit >= 1:
        try:
            s.sendto(payload, (sys.argv[1], %d))
        except OSError:
            pass
        credit -= 1
""" % PORT

SINK = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", %d))
while True:
    s.recv(2048)
""" % PORT


def sh(*cmd, check=True):
    return mstest.run(list(cmd), check=check)


def names(i):
    return f"h9fc{i}", f"h9fa{i}", f"h9fb{i}", f"10.79.{i}.1", f"10.79.{i}.2"


class Topology:
    """Per agent: netns h9fc<i> holding a UDP sink behind veth h9fa<i> (root) / h9fb<i> (netns)."""

    def __enter__(self):
        self.down()
        for _, _, i in AGENTS:
            ns, va, vb, a4, b4 = names(i)
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
            sh("ip", "link", "set", vb, "netns", ns)
            sh("ip", "addr", "add", f"{a4}/24", "dev", va)
            sh("ip", "link", "set", va, "up")
            sh("ip", "-n", ns, "addr", "add", f"{b4}/24", "dev", vb)
            sh("ip", "-n", ns, "link", "set", vb, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        return self

    def down(self):
        for _, _, i in AGENTS:
            ns, va, _, _, _ = names(i)
            sh("ip", "link", "del", va, check=False)
            sh("ip", "netns", "del", ns, check=False)

    def __exit__(self, *exc):
        self.down()


class FleetCorrelation(unittest.TestCase):
    def setUp(self):
        mstest.require_root(self)
        clickhouse.skip_unless_available()

    def start_agent(self, name, role, i, tok, coord, tmp):
        _, va, _, _, _ = names(i)
        os.makedirs(tmp, exist_ok=True)
        a = agentapi.ApiAgent("--perf-mock", "--mock-rate=500", "--window-ms=200", f"--agent-id={name}",
                              f"--labels=role={role}", f"--coordinator-url={coord.url}",
                              f"--coordinator-grpc={coord.target}", f"--token-file={tok}", "--mode=auto",
                              f"--anomaly-interfaces={va}", "--anomaly-interval-ms=500", "--mode-hold-ms=1000",
                              "--uplink-heartbeat-ms=500", token=TOKEN, tmp=tmp)
        return a.start()

    def test_lb_group_trigger_and_pending_pin(self):
        tmp = tempfile.mkdtemp(prefix="ms-h1-corr-")
        tok = os.path.join(tmp, "token")
        with open(tok, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(tok, 0o600)
        _, fl = msgrpc.pb()
        procs, agents = [], {}
        with clickhouse.Server() as ch, Topology():
            mport = msgrpc.free_port()
            coord = msgrpc.Coordinator(tmp=os.path.join(tmp, "coord"), token_file=tok, extra=(
                f"--metrics-port={mport}", f"--clickhouse-endpoint={ch.endpoint}", f"--clickhouse-database={DB}", "--clickhouse-flush-ms=200",
                "--correlator-mode-signals=false", "--correlator-span-ms=3000", "--correlator-min-hosts=2",
                "--correlator-clear-ms=6000", "--correlator-diag-ttl-ms=20000", "--correlator-max-diag-fraction=1",
                "--command-pending-ms=60000"))
            coord.start()
            api = msgrpc.Client(coord.target, token=TOKEN)
            evlog = None
            try:
                senders = {}
                for name, _, i in AGENTS:
                    ns, _, _, _, b4 = names(i)
                    procs.append(subprocess.Popen(["ip", "netns", "exec", ns, mstest.PY, "-c", SINK]))
                    s = subprocess.Popen([mstest.PY, "-c", SENDER, b4, str(RATE)], stdout=subprocess.PIPE, text=True)
                    procs.append(s)
                    self.assertEqual(s.stdout.readline().strip(), "READY")
                    senders[name] = s
                for name, role, i in AGENTS:
                    agents[name] = self.start_agent(name, role, i, tok, coord, os.path.join(tmp, name))
                evlog = msgrpc.EventLog(api, fl.WatchEventsRequest())
                msgrpc.wait_until(lambda: sum(a.watching for a in api.call("ListAgents").agents) == 4, 30,
                                  what="4 agents watching")
                # warm baselines, then a quiet fleet: everyone in sentinel, no trigger
                for name, a in agents.items():
                    a.wait(lambda s: s["anomaly"]["interfaces"] and s["anomaly"]["interfaces"][0]["warm"] and
                           s["anomaly"]["interfaces"][0]["tx"]["baseline_bytes_per_second"] > 5e5, 30,
                           f"{name}: a warm baseline")
                for name, a in agents.items():
                    a.wait(lambda s: not s["anomaly"]["signals"] and s["mode"] == "sentinel", 30, f"{name}: quiet")
                time.sleep(2)
                self.assertEqual(evlog.of("trigger"), [], "no trigger on a quiet fleet")

                # the anomaly: lb traffic halved
                t0 = time.monotonic()
                for name in ("lb-1", "lb-2"):
                    senders[name].send_signal(signal.SIGUSR1)
                msgrpc.wait_until(lambda: evlog.of("trigger", "lb"), 30, what="a fleet trigger for group lb")
                took = time.monotonic() - t0
                trig = evlog.of("trigger", "lb")[0]
                self.assertEqual(sorted(trig.agents), ["lb-1", "lb-2"], trig)
                self.assertIn("key=anomaly:tx_bytes:drop", trig.detail)
                print(f"  lb traffic halved -> fleet trigger for role=lb after {took:.1f} s: {trig.detail}")

                # the signals themselves: rows of ms_anomalies (each lb agent, its own veth) and
                # entries of the fleet anomaly log
                def lb_anomalies():
                    return ch.rows(f"SELECT host, ifname, kind, metric, count(), uniqExact(ts_ns), "
                                   f"round(min(value) / any(baseline), 2) FROM {DB}.ms_anomalies FINAL "
                                   "WHERE host LIKE 'lb-%' AND metric = 'tx_bytes' AND kind = 'drop' "
                                   "GROUP BY host, ifname, kind, metric ORDER BY host")
                msgrpc.wait_until(lambda: len(lb_anomalies()) == 2, 20, what="the lb agents' signals in ms_anomalies")
                rows = lb_anomalies()
                self.assertEqual([r[:4] for r in rows], [("lb-1", names(1)[1], "drop", "tx_bytes"),
                                                         ("lb-2", names(2)[1], "drop", "tx_bytes")], rows)
                for r in rows:
                    self.assertLess(float(r[6]), 0.6, r)  # under drop_ratio x baseline
                print(f"  ms_anomalies (host, ifname, kind, metric, windows, episodes, min value/baseline): {rows}")
                la = api.call("ListAnomalies", fl.ListAnomaliesRequest()).anomalies
                lb_log = sorted((a.agent_id, a.signal.ifname) for a in la
                                if a.signal.metric == "tx_bytes" and a.signal.kind == 1)
                self.assertIn(("lb-1", names(1)[1]), lb_log)
                self.assertIn(("lb-2", names(2)[1]), lb_log)
                # one log entry per episode, not one per window
                self.assertLessEqual(len(lb_log), sum(int(r[5]) for r in rows) + 2, la)
                for name in ("lb-1", "lb-2"):
                    s = agents[name].wait(lambda s: s["mode"] == "diagnostic" and s["pin"] and
                                          s["pin"]["source"] == "coordinator", 10,
                                          f"{name} pinned to diagnostic by the coordinator")
                    self.assertEqual(s["pin"]["mode"], "diagnostic")
                for name in ("db-1", "db-2"):
                    s = agents[name].status()
                    self.assertIsNone(s["pin"], s)
                    self.assertEqual(s["mode"], "sentinel", s)

                # the anomaly ends: the trigger clears and the group goes back to sentinel
                for name in ("lb-1", "lb-2"):
                    senders[name].send_signal(signal.SIGHUP)
                t1 = time.monotonic()
                msgrpc.wait_until(lambda: evlog.of("clear", "lb"), 40, what="the trigger for lb to clear")
                print(f"  traffic back -> clear after {time.monotonic() - t1:.1f} s")
                for name in ("lb-1", "lb-2"):
                    agents[name].wait(lambda s: s["pin"] is None and s["mode"] == "sentinel", 20,
                                      f"{name} back to sentinel")
                self.assertEqual(len(evlog.of("trigger")), 1, [(e.kind, e.group) for e in evlog.events])
                self.assertEqual(evlog.of("trigger", "db"), [])
                # windows closed under the pin and the agents' mode hold after it were not signals
                self.assertEqual([e.kind for e in evlog.events if e.kind.startswith("suppressed")], [])
                self.assertEqual(api.call("GetFleetStatus").fleet_triggers, 1)

                # /metrics
                m = msfleet.parse_metrics(msfleet.http_get(mport, "/metrics", token=TOKEN))
                self.assertEqual(m["ms_coord_fleet_triggers_total"], 1)
                self.assertEqual(m["ms_coord_fleet_clears_total"], 1)
                self.assertEqual(m['ms_coord_fleet_events_total{kind="trigger"}'], 1)
                self.assertEqual(m["ms_coord_fleet_groups_diagnostic"], 0)
                self.assertEqual(m["ms_coord_fleet_events_store_failed_total"], 0)

                # pending: a pin pushed to a stopped agent is queued and delivered when it is back
                self.assertEqual(agents["db-2"].stop(), 0, agents["db-2"].log())
                msgrpc.wait_until(lambda: not [a for a in api.call("ListAgents").agents
                                               if a.agent_id == "db-2"][0].watching, 15, what="db-2 disconnected")
                r = api.call("SetMode", fl.SetModeRequest(selector=fl.Selector(hosts=["db-2"]), mode=2,
                                                          ttl_ms=60000, reason="pending pin"))
                self.assertEqual(list(r.agents), ["db-2"])
                ev = [e for e in evlog.of("mode_set") if e.command_id == r.command_id]
                msgrpc.wait_until(lambda: [e for e in evlog.of("mode_set") if e.command_id == r.command_id], 10,
                                  what="the mode_set event")
                ev = [e for e in evlog.of("mode_set") if e.command_id == r.command_id][0]
                self.assertIn("pending=db-2", ev.detail)
                time.sleep(1)
                agents["db-2"] = self.start_agent("db-2", "db", 4, tok, coord, os.path.join(tmp, "db-2"))
                s = agents["db-2"].wait(lambda s: s["pin"] and s["pin"]["source"] == "coordinator", 20,
                                        "db-2 pinned after its restart")
                self.assertEqual(s["pin"]["mode"], "diagnostic")
                self.assertGreater(s["pin"]["expires_in_s"], 30)
                msgrpc.wait_until(lambda: [e for e in evlog.of("command_delivered") if e.command_id == r.command_id],
                                  10, what="command_delivered event")
                print("  pin pushed to a stopped agent: queued, delivered at its restart")
                self.assertIsNone(agents["db-1"].status()["pin"])

                # ClickHouse: the decisions and the commands are rows of ms_fleet_events
                def ch_rows():
                    return ch.rows(f"SELECT kind, group_key, arraySort(hosts), mode, ttl_ms FROM {DB}.ms_fleet_events "
                                   "FINAL WHERE kind IN ('trigger', 'clear', 'mode_set', 'command_delivered') "
                                   "ORDER BY ts_ns")
                msgrpc.wait_until(lambda: len(ch_rows()) >= 4, 20, what="fleet events in ClickHouse")
                rows = ch_rows()
                self.assertEqual([x for x in rows if x[0] == "trigger"],
                                 [("trigger", "lb", "['lb-1','lb-2']", "diagnostic", "20000")], rows)
                self.assertEqual([x[:3] for x in rows if x[0] == "clear"], [("clear", "lb", "['lb-1','lb-2']")], rows)
                self.assertIn(("mode_set", "", "['db-2']", "diagnostic", "60000"), rows)
                self.assertEqual(len([x for x in rows if x[0] == "command_delivered"]), 1, rows)
                total = ch.scalar(f"SELECT count() FROM {DB}.ms_fleet_events FINAL")
                print(f"  ms_fleet_events: {total} rows; streamed: {', '.join(e.kind + (':' + e.group if e.group else '') for e in evlog.events)}")
            finally:
                if evlog:
                    evlog.close()
                for a in agents.values():
                    if a.proc and a.proc.poll() is None:
                        a.stop()
                for p in procs:
                    p.kill()
                    p.wait()
                    if p.stdout:
                        p.stdout.close()
                api.close()
                if coord.proc and coord.proc.poll() is None:
                    self.assertEqual(coord.stop(), 0, coord.log())


    def test_events_survive_clickhouse_outage(self):
        """Fleet events raised while ClickHouse is down go to the writer's spool and reach
        ms_fleet_events when it is back: none lost, none refused."""
        tmp = tempfile.mkdtemp(prefix="ms-h1-corr-out-")
        tok = os.path.join(tmp, "token")
        with open(tok, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(tok, 0o600)
        ms, fl = msgrpc.pb()
        ch = clickhouse.Server().start()
        sims = []
        coord = None
        try:
            mport = msgrpc.free_port()
            coord = msgrpc.Coordinator(tmp=os.path.join(tmp, "coord"), token_file=tok, extra=(
                f"--metrics-port={mport}", f"--clickhouse-endpoint={ch.endpoint}", f"--clickhouse-database={DB}",
                "--clickhouse-flush-ms=200")).start()
            api = msgrpc.Client(coord.target, token=TOKEN)
            sims = [msgrpc.SimAgent(coord.target, f"sim-{i}", {"role": "x"}, TOKEN) for i in (1, 2)]
            msgrpc.wait_until(lambda: len(api.call("ListAgents").agents) == 2, 10, what="2 simulated agents")

            def kinds():
                return ch.rows(f"SELECT kind, reason FROM {DB}.ms_fleet_events FINAL ORDER BY ts_ns")
            msgrpc.wait_until(lambda: len(kinds()) == 2, 20, what="agent_connected rows")

            def metric(name):
                return msfleet.parse_metrics(msfleet.http_get(mport, "/metrics", token=TOKEN)).get(name, 0)
            ch.stop()
            for k in range(5):
                api.call("SetMode", fl.SetModeRequest(selector=fl.Selector(labels=[ms.Label(key="role", value="x")]),
                                                      mode=2, ttl_ms=60000, reason=f"outage-{k}"))
            for s in sims:
                s.wait_commands(5)
            spooled = 'ms_coord_ch_rows_spooled_total{table="ms_fleet_events"}'
            msgrpc.wait_until(lambda: metric(spooled) >= 5, 30, what="fleet events spooled while ClickHouse is down")
            print(f"  ClickHouse down: {int(metric(spooled))} fleet event rows spooled")
            ch.start()
            msgrpc.wait_until(lambda: ch.ping() and len([r for r in kinds() if r[0] == "mode_set"]) == 5, 60,
                              what="the spooled events in ClickHouse")
            self.assertEqual(sorted(r[1] for r in kinds() if r[0] == "mode_set"), [f"outage-{k}" for k in range(5)])
            self.assertEqual(metric("ms_coord_fleet_events_store_failed_total"), 0)
            self.assertEqual(metric("ms_coord_fleet_events_stored_total"), len(kinds()))
            self.assertEqual(metric('ms_coord_ch_rows_failed_total{table="ms_fleet_events"}'), 0)
            print(f"  ClickHouse back: all {len(kinds())} fleet events in ms_fleet_events")
            api.close()
        finally:
            for s in sims:
                s.close()
            if coord and coord.proc and coord.proc.poll() is None:
                self.assertEqual(coord.stop(), 0, coord.log())
            ch.cleanup()


    def test_standalone_anomalies(self):
        """A standalone agent (no coordinator: it writes to ClickHouse itself) puts its anomaly
        signals in ms_anomalies through the same encoder: its veth's traffic stops -> a TX stop
        with the interface name, value <= 5 % of the baseline (stray ARP/ND packets stay), in every
        window of the episode."""
        tmp = tempfile.mkdtemp(prefix="ms-h9-solo-")
        tok = os.path.join(tmp, "token")
        with open(tok, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(tok, 0o600)
        procs, agent = [], None
        with clickhouse.Server() as ch, Topology():
            r = mstest.run([msgrpc.COORD, "--init-schema", f"--clickhouse-endpoint={ch.endpoint}",
                            "--clickhouse-database=h9solo"], check=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            try:
                ns, va, _, _, b4 = names(1)
                procs.append(subprocess.Popen(["ip", "netns", "exec", ns, mstest.PY, "-c", SINK]))
                sender = subprocess.Popen([mstest.PY, "-c", SENDER, b4, str(RATE)], stdout=subprocess.PIPE, text=True)
                procs.append(sender)
                self.assertEqual(sender.stdout.readline().strip(), "READY")
                os.makedirs(os.path.join(tmp, "solo"))
                agent = agentapi.ApiAgent("--perf-mock", "--mock-rate=500", "--window-ms=200", "--agent-id=solo-1",
                                          f"--clickhouse-endpoint={ch.endpoint}", "--clickhouse-database=h9solo",
                                          "--clickhouse-flush-ms=200", f"--token-file={tok}",
                                          f"--anomaly-interfaces={va}", "--anomaly-interval-ms=500", token=TOKEN,
                                          tmp=os.path.join(tmp, "solo")).start()
                agent.wait(lambda s: s["anomaly"]["interfaces"] and s["anomaly"]["interfaces"][0]["warm"] and
                           s["anomaly"]["interfaces"][0]["tx"]["baseline_bytes_per_second"] > 5e5, 30, "a warm baseline")
                agent.wait(lambda s: not s["anomaly"]["signals"], 30, "quiet")
                sender.send_signal(signal.SIGSTOP)
                agent.wait(lambda s: s["anomaly"]["signals"], 15, "a signal")
                time.sleep(1.5)
                sender.send_signal(signal.SIGCONT)

                def rows():
                    return ch.rows("SELECT host, ifname, kind, metric, count(), uniqExact(ts_ns), max(value / baseline), "
                                   "min(baseline) > 5e5 FROM h9solo.ms_anomalies FINAL WHERE kind = 'stop' "
                                   "GROUP BY host, ifname, kind, metric")
                msgrpc.wait_until(lambda: rows() and int(rows()[0][4]) >= 3, 20, what="the stop in ms_anomalies")
                got = rows()
                self.assertEqual([x[:4] for x in got], [("solo-1", va, "stop", "tx_bytes")], got)
                self.assertEqual(got[0][5], "1", got)  # one episode, in several windows
                self.assertLessEqual(float(got[0][6]), 0.05, got)
                self.assertEqual(got[0][7], "1", got)
                print(f"  standalone: traffic stopped -> ms_anomalies (host, ifname, kind, metric, windows, "
                      f"episodes, max value/baseline, baseline > 5e5): {got}")
            finally:
                if agent and agent.proc and agent.proc.poll() is None:
                    self.assertEqual(agent.stop(), 0, agent.log())
                for p in procs:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                    p.wait()
                    if p.stdout:
                        p.stdout.close()


if __name__ == "__main__":
    mstest.main()
