"""Server processes for the benchmarks: lattice-server and redis-server on loopback, optionally
pinned to CPUs with taskset, each in its own temporary directory, stopped by the PID we started.
Also the delaying proxy as a child process (delay_proxy.py) and small INFO/redis-cli helpers."""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import ServerProcess, free_port, wait_until  # noqa: E402

PYTHON = "/usr/bin/python3"  # Debian's, which has python3-redis
# Pinned processes (servers and redis-benchmark) run at a slightly raised priority so that other
# work on this shared machine disturbs the comparison less (as root; otherwise nice only warns).
PRIORITY = ["nice", "-n", "-5"] if os.geteuid() == 0 else []


class Server(ServerProcess):
    """One server process (the integration harness's, with another command line). `kind` is
    "lattice" or "redis"; `args` are extra command-line arguments; `cpus` pins it."""

    def __init__(self, kind, binary, args=(), cpus=None, port=None, label=None):
        super().__init__(*args, port=port)
        self.kind = kind
        self.binary = binary
        self.cpus = cpus
        self.label = label or f"{kind}:{self.port}"

    def command_line(self):
        base = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir]
        if self.kind == "redis":
            base += ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                     "--protected-mode", "no", "--daemonize", "no"]
        else:
            # As redis-server: no save points (both rely on their log; Lattice honours `save`
            # with a snapshot on the event loop, which would land in some rounds only).
            base += ["--save", ""]
        pin = PRIORITY + ["taskset", "-c", self.cpus] if self.cpus is not None else []
        return pin + base + self.args

    def start(self, timeout=15.0):
        super().start(timeout)
        wait_until(lambda: self.client().ping(), timeout=timeout, what=f"{self.label} PING")
        return self

    def info(self, section):
        client = self.client()
        client.response_callbacks.pop("INFO", None)  # the raw text: parse_info reads it
        return parse_info(client.execute_command("INFO", section))

    def rss_bytes(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0


def parse_info(raw):
    text = raw.decode() if isinstance(raw, bytes) else raw
    fields = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return fields


def peer_fields(server):
    """Per-peer fields of a Lattice region's INFO replication, as a list of dicts."""
    info = server.info("replication")
    peers = []
    for key, value in sorted(info.items()):
        if key.startswith("crdt_peer") and key[len("crdt_peer"):].isdigit():
            peers.append(dict(item.split("=", 1) for item in value.split(",")))
    return peers


def wait_caught_up(servers, timeout):
    """Bounded wait until every Lattice region reports lag_ops=0 to every peer; returns whether
    it happened in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(int(peer.get("lag_ops", "1")) == 0 and peer.get("state") == "connected"
               for server in servers for peer in peer_fields(server)):
            return True
        time.sleep(0.05)
    return False


def start_lattice_regions(binary, count, cpus, ports=None, peer_address=None, extra=()):
    """`count` Lattice regions of one shard, full mesh, named a, b, c, ... peer_address(i, j)
    gives the address region i dials to reach region j (default: j's replication port).
    cpus[i] pins region i (None: not pinned)."""
    ports = ports or [free_port() for _ in range(count)]
    names = [chr(ord("a") + i) for i in range(count)]
    servers = []
    for i in range(count):
        args = ["--region", names[i], *extra]
        for j in range(count):
            if i != j:
                address = peer_address(i, j) if peer_address else f"127.0.0.1:{ports[j] + 10000}"
                args += ["--peer", address]
        servers.append(Server("lattice", binary, args, cpus=cpus[i], port=ports[i],
                              label=f"lattice region {names[i]}"))
    try:
        for server in servers:
            server.start()
    except BaseException:
        for server in servers:
            server.cleanup()
        raise
    return servers


class ProxyProcess:
    """delay_proxy.py as a child process, driven through its stdin/stdout line protocol."""

    def __init__(self, routes, delay_ms, jitter_ms, seed=1):
        command = [PYTHON, os.path.join(HERE, "delay_proxy.py"), "--delay-ms", str(delay_ms),
                   "--jitter-ms", str(jitter_ms), "--seed", str(seed)]
        for name, listen_port, target_port in routes:
            command += ["--route", f"{name}:{listen_port}:{target_port}"]
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        ready = self.proc.stdout.readline()
        if "ready" not in ready:
            raise RuntimeError(f"delay proxy did not start: {ready!r}")

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.command("quit")
                self.proc.wait(timeout=5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=5)


def free_listen_port():
    """A free loopback port (for proxy routes: no replication port pair needed)."""
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
