"""Fleet push over gRPC with real agents (SPEC §4 fleet control client, §7 msctl): three agents
(synthetic source, so no root or PMU needed) with labels keep a Watch stream to a live
coordinator; `msctl mode diagnostic --label role=lb --ttl 30s` switches exactly the matching
agents (their local status shows the pin, source "coordinator"), the others stay in auto, and the
pinned ones return to auto by themselves when the TTL ends. Then the coordinator goes away: the
agents keep sampling (windows keep closing) and rejoin when it comes back (a new push reaches them).
msctl's tables, --json and exit codes are checked along the way."""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import agentapi  # noqa: E402
import msgrpc  # noqa: E402
import mstest  # noqa: E402

MSCTL = os.path.join(mstest.BUILD, "coordinator", "msctl")
TOKEN = "push-test-token-0123456789"
TTL_S = 30


def msctl(target, tokfile, *args, check=None):
    p = subprocess.run([MSCTL, f"--coordinator={target}", f"--token-file={tokfile}", *args], capture_output=True,
                       text=True, timeout=30)
    if check is not None:
        assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
    return p


def pin_of(agent):
    s = agent.status()
    return s["mode"], (s["pin"] or {}).get("mode"), (s["pin"] or {}).get("source")


def main():
    tmp = tempfile.mkdtemp(prefix="ms-push-")
    tok = os.path.join(tmp, "token")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(tok, 0o600)  # secrets must not be readable by others
    coord = msgrpc.Coordinator(tmp=os.path.join(tmp, "coord"), token_file=tok).start()
    target = coord.target
    labels = {"lb-1": "role=lb,az=a", "lb-2": "role=lb,az=b", "db-1": "role=db,az=a"}
    agents = {}
    try:
        for name, lab in labels.items():
            a = agentapi.ApiAgent("--perf-mock", f"--agent-id={name}", f"--labels={lab}",
                                  f"--coordinator-grpc={target}", f"--token-file={tok}", "--window-ms=200",
                                  "--mock-rate=20000", "--mode=auto", token=TOKEN,
                                  tmp=tempfile.mkdtemp(prefix=f"ms-push-{name}-"))
            agents[name] = a.start()
        msgrpc.wait_until(lambda: sum(a["watching"] for a in json.loads(msctl(target, tok, "--json", "agents",
                                                                                       check=0).stdout)["agents"]) == 3,
                           20, what="3 agents watching")
        out = msctl(target, tok, "agents", check=0).stdout
        assert "lb-1" in out and "role=lb" in out and "AGENT" in out, out
        for a in agents.values():
            assert pin_of(a)[1] is None, a.status()

        # exit codes
        assert msctl(target, tok, "mode", "turbo").returncode == 2
        assert msctl(target, tok, "bogus").returncode == 2
        assert msctl(target, tok, "mode", "diagnostic", "--label=role=nothing").returncode == 4
        assert msctl(target, tok, "agent", "ghost").returncode == 4
        assert msctl(target, tok, "mode", "diagnostic", "--ttl=8000h").returncode == 3
        bad = os.path.join(tmp, "bad-token")
        with open(bad, "w") as f:
            f.write("nope\n")
        # a token file others can read is refused before it is used (usage error), like the daemons do
        assert msctl(target, bad, "agents").returncode == 2
        os.chmod(bad, 0o600)
        assert msctl(target, bad, "agents").returncode == 5  # wrong token: UNAUTHENTICATED
        assert msctl(f"127.0.0.1:{msgrpc.free_port()}", tok, "--timeout-ms=2000", "agents").returncode == 6

        t0 = time.monotonic()
        p = msctl(target, tok, "--json", "mode", "diagnostic", "--label", "role=lb", f"--ttl={TTL_S}s",
                  "--reason=test push", check=0)
        r = json.loads(p.stdout)
        assert sorted(r["agents"]) == ["lb-1", "lb-2"], r
        for name in ("lb-1", "lb-2"):
            agents[name].wait(lambda s: s["mode"] == "diagnostic" and s["pin"] and s["pin"]["source"] == "coordinator",
                              10, f"{name} pinned diagnostic by the coordinator")
        took = time.monotonic() - t0
        assert pin_of(agents["db-1"])[1] is None, agents["db-1"].status()
        exp = agents["lb-1"].status()["pin"]["expires_in_s"]
        assert 20 < exp <= TTL_S, exp
        print(f"msctl mode diagnostic --label role=lb --ttl {TTL_S}s: lb-1, lb-2 pinned within {took:.2f} s; db-1 untouched")
        info = json.loads(msctl(target, tok, "--json", "agent", "lb-1", check=0).stdout)
        assert info["pin"] == "diagnostic" and info["labels"]["role"] == "lb", info
        ev = msctl(target, tok, "events", check=0).stdout
        assert "mode_set" in ev and "reason=test push" in ev, ev

        # the TTL ends on the agents themselves
        for name in ("lb-1", "lb-2"):
            agents[name].wait(lambda s: s["pin"] is None, TTL_S + 15, f"{name} back to auto after the TTL")
        print(f"TTL ended: lb-1, lb-2 back to auto after {time.monotonic() - t0:.1f} s")

        # coordinator away: agents keep sampling; back: they rejoin and take pushes again
        coord.kill9()
        before = {n: a.status()["counters"]["windows"] for n, a in agents.items()}
        time.sleep(3)
        for n, a in agents.items():
            w = a.status()["counters"]["windows"]
            assert w >= before[n] + 5, (n, before[n], w)
        assert msctl(target, tok, "--timeout-ms=2000", "agents").returncode == 6
        coord.start()
        msgrpc.wait_until(lambda: msctl(target, tok, "--json", "agents").returncode == 0 and
                           sum(a["state"] == "live" and a["watching"] for a in json.loads(msctl(target, tok, "--json", "agents").stdout)
                               ["agents"]) == 3, 30, what="agents rejoined")
        msctl(target, tok, "mode", "sentinel", "--hosts=db-1", "--ttl=0", check=0)
        agents["db-1"].wait(lambda s: s["pin"] and s["pin"]["mode"] == "sentinel", 10, "db-1 pinned after rejoin")
        msctl(target, tok, "mode", "auto", "--hosts=db-1", check=0)
        agents["db-1"].wait(lambda s: s["pin"] is None, 10, "db-1 back to auto")
        print("coordinator down: agents kept sampling; back: agents rejoined and took a push")
        for n, a in agents.items():
            assert a.stop() == 0, (n, a.log())
        print("PASS")
    finally:
        for a in agents.values():
            if a.proc and a.proc.poll() is None:
                a.stop()
        if coord.proc and coord.proc.poll() is None:
            coord.stop()


if __name__ == "__main__":
    main()
