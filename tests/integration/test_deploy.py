"""The files in deploy/, tested as far as this machine allows (no image registry, no Kubernetes):
the example lattice.conf loads into a real server; the systemd unit passes `systemd-analyze
verify` where systemd is present; the Dockerfile's build stage runs only scripts CI runs, and its
runtime stage installs Debian packages that exist and cover every library the server links; and
each Kubernetes region, started as its manifest says (the Dockerfile's entrypoint plus the
StatefulSet's args, peers on loopback), serves authenticated clients and replicates to the
others."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

from harness import ROOT, SERVER, ServerProcess, free_port, wait_until

DEPLOY = os.path.join(ROOT, "deploy")


def read(name):
    with open(os.path.join(DEPLOY, name)) as f:
        return f.read()


def dockerfile_stages():
    """[(base image, [instructions as (keyword, argument)])] of deploy/Dockerfile."""
    text = re.sub(r"\\\n\s*", " ", read("Dockerfile"))
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, argument = line.partition(" ")
        if keyword == "FROM":
            stages.append((argument.split()[0], []))
        else:
            stages[-1][1].append((keyword, argument.strip()))
    return stages


class DeployTest(unittest.TestCase):
    def test_example_config_loads(self):
        # Valkey checks `dir` as it reads it, so the example's /var/lib/lattice is swapped for
        # "." (the server is then given its own --dir); every other line loads as written.
        text = re.sub(r"(?m)^dir .*$", "dir .", read("lattice.conf"))
        server = ServerProcess(config_text=text)
        server.args = ["--replication-port", str(server.port + 10000)]
        server.start()
        self.addCleanup(server.stop)
        client = server.client()
        self.assertTrue(client.ping())
        self.assertEqual(client.config_get("region"), {"region": "eu-west"})
        self.assertEqual(client.config_get("shard-id"), {"shard-id": "orders"})
        self.assertEqual(client.config_get("peer")["peer"],
                         "lattice-us-east.example.internal:16379 "
                         "lattice-ap-south.example.internal:16379")

    def test_systemd_unit_verifies(self):
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.skipTest("systemd-analyze is not installed here")
        unit = read("lattice.service")
        self.assertIn("ExecStart=/usr/local/bin/lattice-server /etc/lattice/lattice.conf", unit)
        # verify checks that ExecStart's binary exists: point it at the one just built.
        directory = tempfile.mkdtemp(prefix="lattice-unit-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "lattice.service")
        with open(path, "w") as f:
            f.write(unit.replace("/usr/local/bin/lattice-server", SERVER))
        done = subprocess.run([analyze, "verify", path], capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertNotIn("lattice.service", done.stderr, done.stderr)

    def test_dockerfile_builds_with_the_ci_scripts_and_ships_every_library(self):
        stages = dockerfile_stages()
        self.assertEqual([image for image, _ in stages], ["debian:12", "debian:12"])
        build_runs = [arg for keyword, arg in stages[0][1] if keyword == "RUN"]
        self.assertEqual(build_runs, ["scripts/build"])  # what scripts/test (CI) runs first
        runtime_run = " ".join(arg for keyword, arg in stages[1][1] if keyword == "RUN")
        install = re.search(r"apt-get install -y --no-install-recommends ([^&]+)", runtime_run)
        self.assertIsNotNone(install, runtime_run)
        packages = set(install.group(1).split())
        shown = subprocess.run(["apt-cache", "show", *sorted(packages)], capture_output=True,
                               text=True, timeout=120)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertEqual(set(re.findall(r"(?m)^Package: (\S+)$", shown.stdout)), packages)
        # Every shared library the server links comes from a listed package or from Debian's
        # base image (C and C++ runtimes, zlib). dpkg knows a file by the path its package
        # ships, /lib or /usr/lib (usrmerge), so both are asked, in one dpkg call.
        base = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}
        ldd = subprocess.run(["ldd", SERVER], capture_output=True, text=True, timeout=30).stdout
        libraries = {}
        for path in re.findall(r"=> (/\S+)", ldd):
            real = os.path.realpath(path)
            libraries[path] = {path, real, real.removeprefix("/usr"), "/usr" + real}
        asked = sorted(set().union(*libraries.values()))
        owned = subprocess.run(["dpkg", "-S", *asked], capture_output=True, text=True,
                               timeout=120).stdout
        owner_of = {}
        for line in owned.splitlines():
            package, _, file = line.partition(": ")
            owner_of[file] = package.split(":")[0]
        self.assertTrue(libraries)
        for path, candidates in libraries.items():
            owners = {owner_of[c] for c in candidates if c in owner_of}
            self.assertTrue(owners, f"no package owns {path}")
            self.assertTrue(owners & (packages | base), f"{path} ({owners}) is not installed")
        entrypoint = json.loads(dict(stages[1][1])["ENTRYPOINT"])
        self.assertEqual(entrypoint[0], "/usr/local/bin/lattice-server")

    def test_kubernetes_regions_start_as_their_manifests_say_and_replicate(self):
        with open(os.path.join(DEPLOY, "kubernetes", "lattice.yaml")) as f:
            documents = list(yaml.safe_load_all(f))
        secret = next(d for d in documents if d["kind"] == "Secret")["stringData"]
        headless = {d["metadata"]["name"] for d in documents
                    if d["kind"] == "Service" and d["spec"].get("clusterIP") == "None"}
        sets = [d for d in documents if d["kind"] == "StatefulSet"]
        self.assertEqual(len(sets), 3)
        entrypoint = json.loads(dict(dockerfile_stages()[1][1])["ENTRYPOINT"])[1:]
        names = [s["metadata"]["name"] for s in sets]
        ports = {name: free_port() for name in names}
        servers = []
        for statefulset in sets:
            name = statefulset["metadata"]["name"]
            self.assertIn(statefulset["spec"]["serviceName"], headless)
            container = statefulset["spec"]["template"]["spec"]["containers"][0]
            args = [a.replace("$(REQUIREPASS)", secret["requirepass"])
                     .replace("$(SHARD_SECRET)", secret["shard-secret"])
                    for a in container["args"]]
            # The peers are the other regions' pods, by their headless Service's DNS name.
            peers = [args[i + 1] for i, a in enumerate(args) if a == "--peer"]
            self.assertEqual(sorted(peers),
                             sorted(f"{other}-0.{other}:16379" for other in names if other != name))
            for i, a in enumerate(args):
                if a == "--peer":
                    other = args[i + 1].split("-0.")[0]
                    args[i + 1] = f"127.0.0.1:{ports[other] + 10000}"
            server = ServerProcess(port=ports[name])
            # The image's entrypoint with this test's data dir, on loopback only.
            image = [server.dir if previous == "--dir" else
                     "127.0.0.1" if previous == "--bind" else a
                     for previous, a in zip([None] + entrypoint, entrypoint)]
            server.args = [*image, *args, "--replication-port", str(ports[name] + 10000)]
            server.start()
            self.addCleanup(server.stop)
            servers.append(server)
        clients = [s.client(password=secret["requirepass"]) for s in servers]
        self.assertTrue(all(c.ping() for c in clients))
        clients[0].set("from-a", "1")
        wait_until(lambda: all(c.get("from-a") == b"1" for c in clients), timeout=30,
                   what="the write in region a in every region")


if __name__ == "__main__":
    unittest.main()
