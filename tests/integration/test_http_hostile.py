"""Hostile HTTP clients against the real agent's control API (httpd): request paths ending in or
made of broken %XX escapes (nng#1594 read past its buffer on these), overlong targets and headers,
too many header fields, slowloris heads, pipelined requests, HTTP/2 and TLS prefaces and random
garbage. Every one is answered with a JSON error or closed cleanly, and the agent keeps serving
(and stops with exit code 0)."""
import json
import os
import random
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentapi  # noqa: E402
import mstest  # noqa: E402

TOKEN = "ms-hostile-token-0123456789abcdef"


def read_responses(sock, count, timeout=10.0):
    """Reads up to `count` responses (status, headers, body); stops early at EOF or reset.
    Returns (responses, closed)."""
    sock.settimeout(timeout)
    buf, out, closed = b"", [], False
    end = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < end:
        while b"\r\n\r\n" in buf:
            head, rest = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            n = int(headers.get("content-length", "0"))
            if status in (100, 204) or len(rest) < n:
                if status == 100:
                    buf = rest
                    continue
                break
            out.append((status, headers, rest[:n]))
            buf = rest[n:]
            if len(out) == count:
                break
        if len(out) == count:
            break
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
        except socket.timeout:
            break
        if not chunk:
            closed = True
            break
        buf += chunk
    return out, closed


class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.agent = agentapi.ApiAgent("--perf-mock", "--mock-rate=500", "--window-ms=500", "--no-anomaly-enabled",
                                      token=TOKEN, tmp=None)
        tf = os.path.join(cls.agent.tmp, "token")
        with open(tf, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(tf, 0o600)
        cls.agent.args.append(f"--token-file={tf}")
        cls.agent.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.agent.stop()
        assert rc == 0, cls.agent.log()

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.agent.control_port), timeout=10)

    def exchange(self, data, count=1, timeout=10.0):
        s = self.connect()
        try:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused early; what came back is checked
            return read_responses(s, count, timeout)
        finally:
            s.close()

    def assert_alive(self):
        r = self.agent.api("GET", "/api/v1/status", timeout=10)
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(self.agent.proc.poll(), self.agent.log())

    def assert_json_error(self, resp, statuses):
        status, headers, body = resp
        self.assertIn(status, statuses, body)
        self.assertEqual(headers.get("content-type"), "application/json")
        doc = json.loads(body)
        self.assertIn("error", doc)
        self.assertTrue(doc.get("reason"))

    def test_percent_escapes_in_paths(self):
        auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
        for path in [b"/a%4", b"/%41%", b"/%", b"/%4", b"/api/v1/status%4", b"/api/v1/status%",
                     b"/api/v1/%zz", b"/%00", b"/a%2", b"/" + b"%41" * 200 + b"%4", b"/%%%%%%"]:
            resps, _ = self.exchange(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n")
            self.assertEqual(len(resps), 1, path)
            self.assert_json_error(resps[0], (400, 404))
            # the same at the very end of the received bytes, the head never completing
            s = self.connect()
            s.sendall(b"GET " + path)
            s.close()
        # a good escape at the end still works
        resps, _ = self.exchange(b"GET /api/v1/statu%73 HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n")
        self.assertEqual(resps[0][0], 200)
        self.assert_alive()

    def test_overlong(self):
        resps, closed = self.exchange(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assert_json_error(resps[0], (414,))
        self.assertEqual(resps[0][1].get("connection"), "close")
        resps, _ = self.exchange(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n")
        self.assert_json_error(resps[0], (431,))
        many = b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(100))
        resps, _ = self.exchange(b"GET /healthz HTTP/1.1\r\n" + many + b"\r\n")
        self.assert_json_error(resps[0], (431,))
        resps, _ = self.exchange(b"VERYLONGMETHODNAME /healthz HTTP/1.1\r\n\r\n")
        self.assert_json_error(resps[0], (501,))
        body = b"x" * (4 << 20)
        resps, _ = self.exchange(b"POST /api/v1/mode HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                 TOKEN.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        if resps:  # the reply may be lost to a reset once the server stops draining
            self.assert_json_error(resps[0], (413,))
        self.assert_alive()

    def test_pipelined(self):
        auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
        mode = b'{"mode":"sentinel"}'
        data = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /api/v1/mode HTTP/1.1\r\nHost: x\r\n" + auth +
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(mode) + mode +
                b"GET /nope HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
                b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n" + auth + b"Connection: close\r\n\r\n")
        resps, closed = self.exchange(data, count=4)
        self.assertEqual([r[0] for r in resps], [200, 200, 404, 200], resps)
        self.assertEqual(json.loads(resps[0][2])["status"], "ok")
        self.assertIn("mode", json.loads(resps[3][2]))
        # the same bytes one at a time
        s = self.connect()
        for i in range(len(data)):
            s.sendall(data[i:i + 1])
        resps, _ = read_responses(s, 4)
        s.close()
        self.assertEqual([r[0] for r in resps], [200, 200, 404, 200])

    def test_garbage(self):
        rnd = random.Random(7)
        cases = [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(rnd.randrange(256) for _ in range(64)),
                 b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                 b"\x00" * 100 + b"\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: x\r\n folded: y\r\n\r\n",
                 b"GET / HTTP/1.1\r\nBad Header: y\r\n\r\n",
                 b"POST /api/v1/mode HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
                 b"POST /api/v1/mode HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                 b"GET /healthz HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                 b"\r\n" * 50]
        for _ in range(20):
            cases.append(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 2000))) + b"\r\n\r\n")
        for data in cases:
            resps, closed = self.exchange(data, count=1, timeout=12)
            if resps:
                self.assert_json_error(resps[0], (400, 401, 404, 405, 408, 411, 414, 431, 501, 505))
            else:
                self.assertTrue(closed, data[:80])
        self.assert_alive()

    def test_slowloris(self):
        """Heads trickling one byte a second are cut off (408 or closed) by the head read
        timeout, while other clients are answered meanwhile."""
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"s" * 200
        socks = [self.connect() for _ in range(8)]
        cut = [False] * len(socks)
        end = time.monotonic() + 60
        i = 0
        while not all(cut) and time.monotonic() < end:
            for k, s in enumerate(socks):
                if cut[k]:
                    continue
                try:
                    s.sendall(head[i:i + 1] if i < len(head) else b"s")
                except (BrokenPipeError, ConnectionResetError):
                    cut[k] = True
                    continue
                s.setblocking(False)
                try:
                    data = s.recv(4096)
                    cut[k] = data == b"" or data.startswith(b"HTTP/1.1 408")
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    cut[k] = True
                s.setblocking(True)
            i += 1
            if i % 3 == 0:
                self.assert_alive()
            time.sleep(1.0)
        for s in socks:
            s.close()
        self.assertTrue(all(cut), "slowloris connections still open after 60 s")
        self.assert_alive()


if __name__ == "__main__":
    mstest.main()
