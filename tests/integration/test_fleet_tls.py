"""Fleet wire over tls+tcp:// with mutual TLS (issue "Fleet wire": authentication of agents by
shared token or mTLS). A throwaway CA signs the coordinator's and one agent's certificates
(openssl, run by the test only). The agent with a signed certificate is accepted; an agent
without a client certificate and one that trusts another CA never get a window through, and
keep their windows in their spools."""
import os
import subprocess
import tempfile
import time
import unittest

import mstest
import msfleet


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(d):
    """ca.pem, server.{pem,key} for 127.0.0.1, client.{pem,key}, other-ca.pem."""
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                "-days", "2", "-subj", f"/CN=ms-test-{ca}", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:127.0.0.1,DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={'127.0.0.1' if name == 'server' else 'agent-tls'}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)


class FleetTls(unittest.TestCase):
    def test_mutual_tls(self):
        d = tempfile.mkdtemp(prefix="ms-pki-")
        make_pki(d)
        p = lambda n: os.path.join(d, n)
        port = msfleet.free_port()
        coord = msfleet.Coordinator(listen_url=f"tls+tcp://127.0.0.1:{port}",
                                    extra=[f"--tls-cert-file={p('server.pem')}", f"--tls-key-file={p('server.key')}",
                                           f"--tls-ca-file={p('ca.pem')}"]).start()
        self.addCleanup(coord.cleanup)
        ok = msfleet.fleet_agent(coord.url, "tls-ok", f"--coordinator-ca-file={p('ca.pem')}",
                                 f"--coordinator-cert-file={p('client.pem')}",
                                 f"--coordinator-key-file={p('client.key')}", "--mock-rate=2000").start()
        nocert = msfleet.fleet_agent(coord.url, "tls-nocert", f"--coordinator-ca-file={p('ca.pem')}",
                                     "--mock-rate=2000").start()
        wrongca = msfleet.fleet_agent(coord.url, "tls-wrongca", f"--coordinator-ca-file={p('other-ca.pem')}",
                                      f"--coordinator-cert-file={p('client.pem')}",
                                      f"--coordinator-key-file={p('client.key')}", "--mock-rate=2000").start()
        for a in (ok, nocert, wrongca):
            self.addCleanup(msfleet.agent_cleanup, a)
        try:
            msfleet.wait_until(lambda: len([1 for a, _, _ in coord.accepted() if a == "tls-ok"]) >= 10, 30,
                               what="windows over mutual TLS")
            time.sleep(2)
            m_ok = msfleet.agent_metrics(ok)
            m_no = msfleet.agent_metrics(nocert)
            m_wr = msfleet.agent_metrics(wrongca)
        finally:
            for a in (ok, nocert, wrongca):
                a.stop()
        acc = coord.accepted()
        coord.stop()
        self.assertEqual(m_ok["ms_uplink_connected"], 1)
        for m in (m_no, m_wr):
            self.assertEqual(m["ms_uplink_connected"], 0)
            self.assertEqual(m["ms_uplink_windows_acked_total"], 0)
            self.assertGreater(m["ms_uplink_spool_windows"], 0)
        agents = {a for a, _, _ in acc}
        self.assertEqual(agents, {"tls-ok"})


if __name__ == "__main__":
    mstest.main()
