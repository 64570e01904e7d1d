"""Starts real lattice-server processes on loopback for integration tests.

Every wait is a bounded poll (wait_until); a test never sleeps to synchronise. Servers are
stopped by the PID we started, never by name.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVER = os.environ.get("LATTICE_SERVER", os.path.join(ROOT, "build", "bin", "lattice-server"))


def wait_until(predicate, timeout=10.0, interval=0.01, what="condition"):
    """Polls predicate until it returns a truthy value or the timeout passes."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # the server may not be up yet
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last error: {last_error}")


def free_port():
    """A loopback port that is free now, whose +10000 replication port is free too."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair found")


class ServerProcess:
    """One lattice-server on 127.0.0.1 with its own temporary data dir."""

    def __init__(self, *args, config_text=None, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="lattice-test-")
        self.log_path = os.path.join(self.dir, "server.log")
        self.args = list(args)
        self.config_path = None
        if config_text is not None:
            self.config_path = os.path.join(self.dir, "lattice.conf")
            with open(self.config_path, "w") as f:
                f.write(config_text)
        self.proc = None

    def command_line(self):
        line = [SERVER]
        if self.config_path:
            line.append(self.config_path)
        line += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir]
        # As Valkey's own test suite: tests may change protected configs and peers at runtime
        # (CRDT.PEER ADD); a test of the protection passes "--enable-protected-configs no".
        line += ["--enable-protected-configs", "yes"]
        return line + self.args

    def start(self, timeout=10.0):
        self.launch()
        wait_until(self._accepting, timeout=timeout, what=f"lattice-server on port {self.port}")
        return self

    def launch(self):
        """Starts the process without waiting for it to listen."""
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.command_line(), stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def _accepting(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited with {self.proc.returncode}: {self.read_log()}")
        # Its own log line first: a port picked free can be taken by another test's server
        # before this one binds it (this one then exits), and a connection alone would reach
        # that other server.
        if "Ready to accept connections" not in self.read_log():
            return False
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def client(self, **kwargs):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10, **kwargs)

    def cli(self, *args, input=None):
        """Runs redis-cli against this server; returns (exit code, stdout)."""
        done = subprocess.run(["redis-cli", "-p", str(self.port), *args], input=input,
                              capture_output=True, text=True, timeout=30)
        return done.returncode, done.stdout

    def raw(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stops the process we started; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self.log.close()
        code = self.proc.returncode
        self.proc = None
        return code

    def cleanup(self):
        self.stop()
        if not os.environ.get("LATTICE_KEEP_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)


def read_until_closed(sock, timeout=10.0):
    """Reads everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data  # closed while we still had unsent bytes: the kernel sends a reset
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"connection not closed within {timeout}s; got {data[:200]!r}")


def read_exactly(sock, size, timeout=10.0):
    """Reads exactly `size` bytes (bounded by timeout)."""
    sock.settimeout(timeout)
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise AssertionError(f"connection closed after {len(data)} of {size} bytes: {data!r}")
        data += chunk
    return data


def read_until(sock, marker, timeout=10.0):
    """Reads until `marker` has arrived (bounded by timeout); returns all bytes read."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        if time.monotonic() > deadline:
            raise AssertionError(f"{marker!r} not received within {timeout}s; got {data[:200]!r}")
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before {marker!r}; got {data!r}")
        data += chunk
    return data


class ServerTestCase(unittest.TestCase):
    """One lattice-server for the whole test class, started with `server_args`/`config_text`."""
    server_args = ()
    config_text = None

    @classmethod
    def setUpClass(cls):
        cls.server = ServerProcess(*cls.server_args, config_text=cls.config_text).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()


def start_regions(count, *args):
    """`count` lattice-servers of one shard, each peered with every other (full mesh), started
    and waited for until every region sees every other as connected. Returns the processes."""
    servers = [ServerProcess("--region", f"region-{i}", "--enable-debug-command", "yes", *args)
               for i in range(count)]
    for i, server in enumerate(servers):
        for j, other in enumerate(servers):
            if i != j:
                server.args += ["--peer", f"127.0.0.1:{other.port + 10000}"]
    for server in servers:
        server.start()
    for server in servers:
        wait_connected(server, count - 1)
    return servers


class RegionsTestCase(unittest.TestCase):
    """`region_count` regions of one shard (start_regions) for the whole test class."""
    region_count = 3

    @classmethod
    def setUpClass(cls):
        cls.regions = start_regions(cls.region_count)

    @classmethod
    def tearDownClass(cls):
        for server in cls.regions:
            if server.proc is not None and server.proc.poll() is None:
                server.proc.send_signal(signal.SIGCONT)  # a test may have left one stopped
            server.cleanup()


def run_writers(writer, argument_lists, timeout=60.0):
    """Runs writer(*args) for each args on its own thread, all at once, and fails unless every
    one finishes within `timeout` seconds (the concurrent writers of the region tests)."""
    import threading
    threads = [threading.Thread(target=writer, args=args) for args in argument_lists]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            raise AssertionError("writer did not finish")


def info_fields(server, section):
    """INFO <section> as a dict of strings (redis-cli, so it works whatever the RESP version)."""
    code, out = server.cli("info", section)
    if code != 0:
        raise AssertionError(f"INFO {section} failed: {out}")
    fields = {}
    for line in out.splitlines():
        if ":" in line and not line.startswith("#"):
            key, value = line.split(":", 1)
            fields[key] = value
    return fields


def connected_peers(server):
    return int(info_fields(server, "replication").get("crdt_connected_peers", "0"))


def wait_connected(server, peers, timeout=15.0):
    wait_until(lambda: connected_peers(server) >= peers, timeout=timeout,
               what=f"{peers} connected peers on port {server.port}")


def digest(server):
    code, out = server.cli("debug", "digest")
    if code != 0:
        raise AssertionError(f"DEBUG DIGEST failed: {out}")
    return out.strip()


def wait_converged(servers, timeout=30.0):
    """Polls until every server shows the same DEBUG DIGEST (and the same DBSIZE)."""
    def same():
        digests = {digest(server) for server in servers}
        sizes = {server.cli("dbsize")[1].strip() for server in servers}
        return len(digests) == 1 and len(sizes) == 1
    wait_until(same, timeout=timeout, interval=0.05, what="regions to converge")
    return digest(servers[0])
