"""deploy/systemd units: `systemd-analyze verify` accepts both with their ExecStart pointed at the
binaries just built (a copy with /usr/local/bin rewritten, since verify checks that the binary
exists) and reports nothing, while a misspelled directive or a missing binary is reported (the
check is live); `systemd-analyze security --offline` rates both OK; the hardening the units
promise is really in them; and the shipped coordinator.conf (and agent/agent.conf) start the real
daemons, which then exchange windows."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import msdeploy  # noqa: E402
import mstest  # noqa: E402

ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
UNITS = os.path.join(mstest.SRC, "deploy", "systemd")
AGENT_UNIT = "micro_sentinel_agent.service"
COORD_UNIT = "micro_sentinel_coordinator.service"
BINARIES = {AGENT_UNIT: mstest.AGENT, COORD_UNIT: msdeploy.COORD}
AGENT_CAPS = {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_RESOURCE", "CAP_SYS_PTRACE",
              "CAP_DAC_READ_SEARCH", "CAP_SYSLOG"}


def unit_settings(path):
    """{(section, key): [values]} of a unit file (keys may repeat)."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, _, v = line.partition("=")
            out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def one(settings, key, section="Service"):
    v = settings.get((section, key))
    assert v and len(v) == 1, f"{key}: {v}"
    return v[0]


def verify(path):
    r = subprocess.run([ANALYZE, "verify", "--man=no", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    return r.returncode, r.stdout.strip()


class Units(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(ANALYZE):
            raise unittest.SkipTest("systemd-analyze not installed (package systemd, deploy/install-deps.sh)")
        cls.tmp = tempfile.mkdtemp(prefix="ms-units-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def installed_copy(self, unit, transform=None):
        """The unit with /usr/local/bin/<binary> rewritten to the built binary."""
        with open(os.path.join(UNITS, unit)) as f:
            text = f.read()
        binary = BINARIES[unit]
        self.assertTrue(os.access(binary, os.X_OK), binary)
        self.assertIn("/usr/local/bin/" + os.path.basename(binary), text)
        text = text.replace("/usr/local/bin/" + os.path.basename(binary), binary)
        if transform:
            text = transform(text)
        d = tempfile.mkdtemp(dir=self.tmp)
        path = os.path.join(d, unit)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_verify_clean(self):
        for unit in (AGENT_UNIT, COORD_UNIT):
            rc, out = verify(self.installed_copy(unit))
            self.assertEqual(rc, 0, out)
            # warnings (unknown keys, bad values) do not change the exit code: none may mention us
            ours = [line for line in out.splitlines() if unit in line or "micro_sentinel" in line]
            self.assertEqual(ours, [], out)

    def test_verify_is_live(self):
        # a misspelled hardening directive is reported ...
        rc, out = verify(self.installed_copy(AGENT_UNIT, lambda t: t.replace("NoNewPrivileges=", "NoNewPrivilege=")))
        self.assertIn("Unknown key", out)
        self.assertIn(AGENT_UNIT, out)
        # ... and so is an ExecStart binary that does not exist
        missing = os.path.join(self.tmp, "no-such-dir", "micro_sentinel_coordinator")
        rc, out = verify(self.installed_copy(COORD_UNIT, lambda t: t.replace(msdeploy.COORD, missing)))
        self.assertNotEqual(rc, 0, out)
        self.assertIn("not executable", out)

    def test_security_exposure(self):
        for unit, limit in ((AGENT_UNIT, 5.0), (COORD_UNIT, 2.0)):
            r = subprocess.run([ANALYZE, "security", "--offline=yes", "--no-pager", self.installed_copy(unit)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", r.stdout)
            self.assertTrue(m, r.stdout[-2000:])
            self.assertLessEqual(float(m.group(1)), limit, f"{unit} exposure {m.group(1)} {m.group(2)}")
            self.assertEqual(m.group(2), "OK", r.stdout[-2000:])

    def test_agent_hardening(self):
        s = unit_settings(os.path.join(UNITS, AGENT_UNIT))
        self.assertEqual(set(one(s, "CapabilityBoundingSet").split()), AGENT_CAPS)
        self.assertEqual(one(s, "NoNewPrivileges"), "yes")
        self.assertEqual(one(s, "ProtectSystem"), "strict")
        # state_dir of agent.conf (the persisted seq and the spool) is the unit's StateDirectory
        self.assertEqual(one(s, "StateDirectory"), "micro_sentinel")
        # /tmp/perf-PID.map of JIT runtimes is read from the host's /tmp: never a private /tmp
        self.assertEqual(one(s, "PrivateTmp"), "no")
        self.assertIn("/tmp", one(s, "ReadOnlyPaths").split())
        # ProtectKernelLogs would take CAP_SYSLOG away (kallsyms addresses)
        self.assertNotIn(("Service", "ProtectKernelLogs"), s)
        self.assertEqual(one(s, "LimitMEMLOCK"), "infinity")
        self.assertEqual(one(s, "ExecStart"),
                         "/usr/local/bin/micro_sentinel_agent --config=/etc/micro_sentinel/agent.conf")
        self.assertEqual(one(s, "KillSignal"), "SIGTERM")

    def test_coordinator_hardening(self):
        s = unit_settings(os.path.join(UNITS, COORD_UNIT))
        self.assertEqual(one(s, "CapabilityBoundingSet"), "")
        self.assertEqual(one(s, "AmbientCapabilities"), "")
        self.assertEqual(one(s, "DynamicUser"), "yes")
        self.assertEqual(one(s, "NoNewPrivileges"), "yes")
        self.assertEqual(one(s, "ProtectSystem"), "strict")
        self.assertEqual(one(s, "PrivateTmp"), "yes")
        self.assertEqual(one(s, "StateDirectory"), "micro_sentinel_coordinator")
        self.assertEqual(one(s, "ExecStart"), "/usr/local/bin/micro_sentinel_coordinator "
                         "--config=/etc/micro_sentinel/coordinator.conf")
        # the coordinator's default state_dir and the shipped config both use the StateDirectory
        with open(os.path.join(UNITS, "coordinator.conf")) as f:
            conf = msdeploy.conf_keys(f.read())
        self.assertEqual(conf["state_dir"], "/var/lib/micro_sentinel_coordinator")
        out = subprocess.run([msdeploy.COORD, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, timeout=30).stdout
        self.assertIn("default: /var/lib/micro_sentinel_coordinator", out)

    def test_shipped_configs_run(self):
        with open(os.path.join(UNITS, "coordinator.conf")) as f:
            coord_conf = f.read()
        agent_conf_path = os.path.join(mstest.SRC, "agent", "agent.conf")
        agent_conf = None
        if os.path.exists(agent_conf_path):
            with open(agent_conf_path) as f:
                agent_conf = f.read()
            self.assertEqual(msdeploy.conf_keys(agent_conf).get("state_dir"), "/var/lib/micro_sentinel")
        msdeploy.run_pair(self, coord_conf, agent_conf)


if __name__ == "__main__":
    mstest.main()
