"""Python gRPC client of the coordinator's control plane (SPEC §5): messages generated from
proto/ with protoc --python_out at test time, calls made through grpcio's generic
unary_unary/unary_stream (no grpc_tools needed). Also a simulated agent: a Watch stream that
records the commands pushed to it and reports results."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import grpc

import mstest

_mods = None
COORD = os.path.join(mstest.BUILD, "coordinator", "micro_sentinel_coordinator")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, step=0.2, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timeout after {timeout}s waiting for {what}")


class Coordinator:
    """The coordinator with its nng listener and gRPC API on free loopback ports and a fixed state
    dir across restarts (start / kill9 / stop)."""

    def __init__(self, tmp=None, token_file=None, extra=(), scheme="tcp"):
        self.tmp = tmp or tempfile.mkdtemp(prefix="ms-coord-")
        os.makedirs(self.tmp, exist_ok=True)
        self.url = f"{scheme}://127.0.0.1:{free_port()}"
        self.grpc_port = free_port()
        self.target = f"127.0.0.1:{self.grpc_port}"
        self.args = [COORD, f"--listen-url={self.url}", f"--state-dir={os.path.join(self.tmp, 'state')}",
                     "--metrics-port=0", f"--grpc-port={self.grpc_port}", "--stale-after-ms=3000",
                     "--heartbeat-ms=1000"] + ([f"--token-file={token_file}"] if token_file else []) + list(extra)
        self.proc = None
        self.runs = 0

    def start(self, timeout=20):
        self.runs += 1
        self.log_path = os.path.join(self.tmp, f"coord.{self.runs}.log")
        self.err = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.err)
        end = time.time() + timeout
        while time.time() < end:
            text = self.log()
            if "COORD-READY" in text:
                assert "serving gRPC" in text, text
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"coordinator exited ({self.proc.returncode}):\n{text}")
            time.sleep(0.05)
        raise AssertionError("coordinator did not become ready:\n" + self.log())

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.err.close()

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout)
        self.err.close()
        return self.proc.returncode


def pb():
    """(ms_pb2, fleet_pb2), generated once per process."""
    global _mods
    if _mods is None:
        out = tempfile.mkdtemp(prefix="ms-pb2-")
        proto = os.path.join(mstest.SRC, "proto")
        subprocess.run(["protoc", f"--python_out={out}", f"-I{proto}", os.path.join(proto, "ms.proto"),
                        os.path.join(proto, "fleet.proto")], check=True)
        sys.path.insert(0, out)
        import ms_pb2  # noqa: E402
        import fleet_pb2  # noqa: E402
        _mods = (ms_pb2, fleet_pb2)
    return _mods


# method -> (request type, reply type, streaming)
def methods():
    _, f = pb()
    return {
        "ListAgents": (f.ListAgentsRequest, f.ListAgentsReply, False),
        "DescribeAgent": (f.DescribeAgentRequest, f.AgentInfo, False),
        "SetMode": (f.SetModeRequest, f.CommandReply, False),
        "SetBudget": (f.SetBudgetRequest, f.CommandReply, False),
        "SetTargets": (f.SetTargetsRequest, f.CommandReply, False),
        "SetPmuConfig": (f.SetPmuConfigRequest, f.CommandReply, False),
        "ListEvents": (f.ListEventsRequest, f.ListEventsReply, False),
        "WatchEvents": (f.WatchEventsRequest, f.FleetEvent, True),
        "ListAnomalies": (f.ListAnomaliesRequest, f.ListAnomaliesReply, False),
        "WatchAnomalies": (f.WatchAnomaliesRequest, f.FleetAnomaly, True),
        "GetFleetStatus": (f.FleetStatusRequest, f.FleetStatus, False),
    }


class Client:
    """Coordinator operator API: c.call("SetMode", req, timeout=5) or c.stream("WatchEvents", req)."""

    def __init__(self, target, token=None, root_cert=None, client_key=None, client_cert=None):
        if root_cert:
            self.ch = grpc.secure_channel(target, grpc.ssl_channel_credentials(
                root_certificates=root_cert, private_key=client_key, certificate_chain=client_cert))
        else:
            self.ch = grpc.insecure_channel(target)
        self.md = (("authorization", f"Bearer {token}"),) if token else ()
        self._stubs = {}
        for name, (req, rep, streaming) in methods().items():
            path = f"/ms.v1.Coordinator/{name}"
            mk = self.ch.unary_stream if streaming else self.ch.unary_unary
            self._stubs[name] = mk(path, request_serializer=req.SerializeToString,
                                   response_deserializer=rep.FromString)

    def call(self, name, req=None, timeout=5, metadata=None):
        if req is None:
            req = methods()[name][0]()
        return self._stubs[name](req, metadata=self.md if metadata is None else metadata, timeout=timeout)

    def stream(self, name, req=None, timeout=30, metadata=None):
        if req is None:
            req = methods()[name][0]()
        return self._stubs[name](req, metadata=self.md if metadata is None else metadata, timeout=timeout)

    def close(self):
        self.ch.close()


class SimAgent:
    """A simulated agent: keeps AgentControl.Watch open and records (time, Command) pairs;
    reports every command as applied (ok) unless fail_all."""

    def __init__(self, target, agent_id, labels=None, token=None, fail_all=False):
        _, f = pb()
        self.f = f
        self.agent_id = agent_id
        self.ch = grpc.insecure_channel(target)
        self.md = (("authorization", f"Bearer {token}"),) if token else ()
        self.watch = self.ch.unary_stream("/ms.v1.AgentControl/Watch", request_serializer=f.WatchRequest.SerializeToString,
                                          response_deserializer=f.Command.FromString)
        self.report = self.ch.unary_unary("/ms.v1.AgentControl/Report",
                                          request_serializer=f.CommandResult.SerializeToString,
                                          response_deserializer=f.ReportAck.FromString)
        req = f.WatchRequest(agent_id=agent_id, instance=1, host="sim")
        for k, v in (labels or {}).items():
            req.labels.add(key=k, value=v)
        self.commands = []
        self.cv = threading.Condition()
        self.fail_all = fail_all
        self.call = self.watch(req, metadata=self.md, timeout=600)
        self.error = None
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            for cmd in self.call:
                with self.cv:
                    self.commands.append((time.monotonic(), cmd))
                    self.cv.notify_all()
                self.report(self.f.CommandResult(agent_id=self.agent_id, command_id=cmd.id, ok=not self.fail_all,
                                                 error="refused" if self.fail_all else ""),
                            metadata=self.md, timeout=5)
        except grpc.RpcError as e:
            self.error = e

    def wait_commands(self, n, timeout=10):
        end = time.monotonic() + timeout
        with self.cv:
            while len(self.commands) < n:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.agent_id}: {len(self.commands)} commands, wanted {n}")
                self.cv.wait(left)
            return list(self.commands)

    def close(self):
        self.call.cancel()
        self.t.join(5)
        self.ch.close()


class EventLog:
    """WatchEvents in a thread: every fleet event the coordinator streams."""

    def __init__(self, api, req):
        self.events = []
        self.stream = api.stream("WatchEvents", req, timeout=300)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            for e in self.stream:
                self.events.append(e)
        except Exception:  # noqa: BLE001 - the stream ends with the coordinator
            pass

    def of(self, kind, group=None):
        return [e for e in self.events if e.kind == kind and (group is None or e.group == group)]

    def close(self):
        self.stream.cancel()
