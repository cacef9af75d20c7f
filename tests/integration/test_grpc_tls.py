"""The coordinator's gRPC API over TLS and mutual TLS (SPEC §5), from the Python grpcio client
and msctl: with tls_cert_file/tls_key_file the port speaks TLS only (a plaintext client gets
UNAVAILABLE); with tls_ca_file a client must also present a certificate that CA signed. The bearer
token is still required over TLS. Certificates are made with openssl for the test."""
import os
import subprocess
import sys
import tempfile

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import agentapi  # noqa: E402
import msgrpc  # noqa: E402
import mstest  # noqa: E402

TOKEN = "tls-test-token-0123456789"
MSCTL = os.path.join(mstest.BUILD, "coordinator", "msctl")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=ms-test-ca", cwd=d)
    for name, san in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"), ("client", "subjectAltName=DNS:client")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=d)
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(san + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    # a second CA whose client certificate the coordinator must refuse
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out", "rogue.pem", "-days",
            "2", "-subj", "/CN=rogue", cwd=d)


def read(d, n):
    with open(os.path.join(d, n), "rb") as f:
        return f.read()


def status_code(client):
    try:
        client.call("GetFleetStatus", timeout=5)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def main():
    d = tempfile.mkdtemp(prefix="ms-grpc-tls-")
    make_pki(d)
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(tok, 0o600)  # secrets must not be readable by others
    tls = [f"--tls-cert-file={d}/server.pem", f"--tls-key-file={d}/server.key"]

    c = msgrpc.Coordinator(tmp=os.path.join(d, "c1"), token_file=tok, extra=tls, scheme="tls+tcp").start()
    try:
        ca = read(d, "ca.pem")
        assert status_code(msgrpc.Client(c.target, TOKEN, root_cert=ca)) == grpc.StatusCode.OK
        assert status_code(msgrpc.Client(c.target, None, root_cert=ca)) == grpc.StatusCode.UNAUTHENTICATED
        assert status_code(msgrpc.Client(c.target, TOKEN)) == grpc.StatusCode.UNAVAILABLE  # plaintext
        assert status_code(msgrpc.Client(c.target, TOKEN, root_cert=read(d, "rogue.pem"))) == \
            grpc.StatusCode.UNAVAILABLE  # server not trusted
        p = subprocess.run([MSCTL, f"--coordinator={c.target}", f"--token-file={tok}", f"--tls-ca-file={d}/ca.pem",
                            "status"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and "agents_live" in p.stdout, (p.returncode, p.stdout, p.stderr)
        p = subprocess.run([MSCTL, f"--coordinator={c.target}", f"--token-file={tok}", "--timeout-ms=3000", "status"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 6, (p.returncode, p.stderr)
        print("TLS: trusted client ok, no token UNAUTHENTICATED, plaintext and untrusted server UNAVAILABLE; msctl ok")
    finally:
        c.stop()

    c = msgrpc.Coordinator(tmp=os.path.join(d, "c2"), token_file=tok, extra=tls + [f"--tls-ca-file={d}/ca.pem"],
                           scheme="tls+tcp").start()
    try:
        ca = read(d, "ca.pem")
        good = msgrpc.Client(c.target, TOKEN, root_cert=ca, client_key=read(d, "client.key"),
                             client_cert=read(d, "client.pem"))
        assert status_code(good) == grpc.StatusCode.OK
        assert status_code(msgrpc.Client(c.target, TOKEN, root_cert=ca)) == grpc.StatusCode.UNAVAILABLE  # no cert
        rogue = msgrpc.Client(c.target, TOKEN, root_cert=ca, client_key=read(d, "rogue.key"),
                              client_cert=read(d, "rogue.pem"))
        assert status_code(rogue) == grpc.StatusCode.UNAVAILABLE
        base = [MSCTL, f"--coordinator={c.target}", f"--token-file={tok}", f"--tls-ca-file={d}/ca.pem",
                "--timeout-ms=5000"]
        p = subprocess.run(base + [f"--tls-cert-file={d}/client.pem", f"--tls-key-file={d}/client.key", "status"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, (p.returncode, p.stderr)
        p = subprocess.run(base + ["status"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 6, (p.returncode, p.stderr)
        print("mutual TLS: client certificate of the CA ok; none or another CA's refused (Python and msctl)")
        # a real agent watching over mutual TLS (its coordinator_* TLS files) takes a push
        ag = agentapi.ApiAgent("--perf-mock", "--agent-id=tls-agent", "--labels=role=tls", f"--token-file={tok}",
                               f"--coordinator-url={c.url}", f"--coordinator-grpc=localhost:{c.grpc_port}",
                               f"--coordinator-ca-file={d}/ca.pem", f"--coordinator-cert-file={d}/client.pem",
                               f"--coordinator-key-file={d}/client.key", "--window-ms=200", token=TOKEN,
                               tmp=tempfile.mkdtemp(prefix="ms-tls-agent-"))
        ag.start()
        try:
            _, f = msgrpc.pb()
            msgrpc.wait_until(lambda: any(a.watching for a in good.call("ListAgents").agents), 20,
                              what="agent watching over mTLS")
            good.call("SetMode", f.SetModeRequest(selector=f.Selector(hosts=["tls-agent"]), mode=2, ttl_ms=60000))
            ag.wait(lambda st: st["pin"] and st["pin"]["source"] == "coordinator", 10, "pin over mTLS")
            assert ag.stop() == 0
            print("agent: Watch over mutual TLS, push applied")
        finally:
            if ag.proc and ag.proc.poll() is None:
                ag.stop()
    finally:
        c.stop()
    print("PASS")


if __name__ == "__main__":
    main()
