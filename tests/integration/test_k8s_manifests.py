"""deploy/k8s manifests: they parse as YAML (python3-yaml), every object is well formed, the
references inside them resolve (volumes, ConfigMaps, PVC, Service ports, probes), the agent's
capabilities are exactly those of the systemd unit, the coordinator has none and runs as non-root,
the ports in the pod specs are the ports in the embedded configs, and the embedded configs start
the real daemons, which then exchange windows."""
import os
import sys
import unittest

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import msdeploy  # noqa: E402
import mstest  # noqa: E402

K8S = os.path.join(mstest.SRC, "deploy", "k8s")
UNIT = os.path.join(mstest.SRC, "deploy", "systemd", "micro_sentinel_agent.service")
NAMESPACE = "micro-sentinel"


def load():
    objs = []
    for name in sorted(os.listdir(K8S)):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(K8S, name)) as f:
                objs += [(name, d) for d in yaml.safe_load_all(f) if d is not None]
    return objs


def find(objs, kind, name):
    hits = [d for _, d in objs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(hits) == 1, f"{kind}/{name}: {len(hits)} objects"
    return hits[0]


def unit_caps():
    with open(UNIT) as f:
        for line in f:
            if line.startswith("CapabilityBoundingSet="):
                return {c[len("CAP_"):] for c in line.split("=", 1)[1].split()}
    raise AssertionError("no CapabilityBoundingSet in the agent unit")


class Manifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.objs = load()

    def pod(self, kind, name):
        return find(self.objs, kind, name)["spec"]["template"]["spec"]

    def config(self, cm, key):
        return find(self.objs, "ConfigMap", cm)["data"][key]

    def test_well_formed(self):
        kinds = sorted(d["kind"] for _, d in self.objs)
        self.assertEqual(kinds, ["ConfigMap", "ConfigMap", "DaemonSet", "Deployment", "Namespace",
                                 "PersistentVolumeClaim", "Service"])
        for fname, d in self.objs:
            self.assertIn("apiVersion", d, fname)
            self.assertTrue(d["metadata"]["name"], fname)
            if d["kind"] != "Namespace":
                self.assertEqual(d["metadata"].get("namespace"), NAMESPACE, (fname, d["kind"]))
            if d["kind"] in ("DaemonSet", "Deployment"):
                sel = d["spec"]["selector"]["matchLabels"]
                labels = d["spec"]["template"]["metadata"]["labels"]
                self.assertLessEqual(sel.items(), labels.items(), fname)
                spec = d["spec"]["template"]["spec"]
                vols = {v["name"]: v for v in spec["volumes"]}
                for c in spec["containers"]:
                    self.assertTrue(c["command"][0].startswith("/usr/local/bin/"), c["command"])
                    for m in c["volumeMounts"]:
                        self.assertIn(m["name"], vols, (fname, m))
                    ports = {p["name"] for p in c.get("ports", [])}
                    for probe in ("livenessProbe", "readinessProbe"):
                        self.assertIn(c[probe]["httpGet"]["port"], ports, (fname, probe))
                for v in vols.values():
                    if "configMap" in v:
                        find(self.objs, "ConfigMap", v["configMap"]["name"])
                    if "persistentVolumeClaim" in v:
                        find(self.objs, "PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"])

    def test_agent_daemonset(self):
        spec = self.pod("DaemonSet", "micro-sentinel-agent")
        self.assertTrue(spec["hostPID"])
        self.assertTrue(spec["hostNetwork"])
        (c,) = spec["containers"]
        sc = c["securityContext"]
        self.assertFalse(sc["privileged"])
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertTrue(sc["readOnlyRootFilesystem"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertEqual(set(sc["capabilities"]["add"]), unit_caps())
        conf = msdeploy.conf_keys(self.config("micro-sentinel-agent", "agent.conf"))
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        vols = {v["name"]: v for v in spec["volumes"]}
        # the config file the command names is the ConfigMap's key
        cfg = [a for a in c["command"] if a.startswith("--config=")][0].split("=", 1)[1]
        cdir, cname = os.path.split(cfg)
        self.assertIn("configMap", vols[mounts[cdir]["name"]])
        self.assertEqual(cname, "agent.conf")
        # state_dir is a hostPath of the same path: seq and spool survive pod restarts
        st = mounts[conf["state_dir"]]
        self.assertEqual(vols[st["name"]]["hostPath"]["path"], conf["state_dir"])
        self.assertFalse(st.get("readOnly", False))
        # the node's /tmp, read-only, for JIT perf maps
        self.assertEqual(vols[mounts["/tmp"]["name"]]["hostPath"]["path"], "/tmp")
        self.assertTrue(mounts["/tmp"]["readOnly"])
        # the token file lives in the secret mount
        self.assertTrue(any(conf["token_file"].startswith(p + "/") and "secret" in vols[m["name"]]
                            for p, m in mounts.items()))
        self.assertEqual(c["ports"][0]["containerPort"], int(conf["metrics_port"]))
        self.assertEqual(conf["metrics_address"], "0.0.0.0")
        self.assertEqual(conf["control_address"], "127.0.0.1")

    def test_coordinator_deployment(self):
        dep = find(self.objs, "Deployment", "micro-sentinel-coordinator")
        self.assertEqual(dep["spec"]["replicas"], 1)
        self.assertEqual(dep["spec"]["strategy"]["type"], "Recreate")
        spec = dep["spec"]["template"]["spec"]
        self.assertTrue(spec["securityContext"]["runAsNonRoot"])
        self.assertNotEqual(spec["securityContext"]["runAsUser"], 0)
        (c,) = spec["containers"]
        sc = c["securityContext"]
        self.assertEqual(sc["capabilities"], {"drop": ["ALL"]})
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertTrue(sc["readOnlyRootFilesystem"])
        conf = msdeploy.conf_keys(self.config("micro-sentinel-coordinator", "coordinator.conf"))
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual(ports["nng"], int(conf["listen_url"].rsplit(":", 1)[1]))
        self.assertEqual(ports["grpc"], int(conf["grpc_port"]))
        self.assertEqual(ports["metrics"], int(conf["metrics_port"]))
        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        vols = {v["name"]: v for v in spec["volumes"]}
        self.assertIn("persistentVolumeClaim", vols[mounts[conf["state_dir"]]])
        svc = find(self.objs, "Service", "micro-sentinel-coordinator")
        for p in svc["spec"]["ports"]:
            self.assertIn(p["targetPort"], ports)
            self.assertEqual(p["port"], ports[p["targetPort"]])
        # the agents' coordinator_url names this Service and its nng port
        aconf = msdeploy.conf_keys(self.config("micro-sentinel-agent", "agent.conf"))
        self.assertEqual(aconf["coordinator_url"], f"tcp://micro-sentinel-coordinator.{NAMESPACE}.svc:{ports['nng']}")
        labels = dep["spec"]["template"]["metadata"]["labels"]
        self.assertLessEqual(svc["spec"]["selector"].items(), labels.items())

    def test_embedded_configs_run(self):
        msdeploy.run_pair(self, self.config("micro-sentinel-coordinator", "coordinator.conf"),
                          self.config("micro-sentinel-agent", "agent.conf"))


if __name__ == "__main__":
    mstest.main()
