"""Differential testing: the same commands to lattice-server and to Debian's redis-server (the
oracle, 7.0), replies compared as raw RESP2 values.

Usage in a test:
    with Differential() as diff:
        diff.check(commands, seed=seed)           # raises with the seed and first difference
        diff.check([["SMEMBERS", "s"]], unordered=True)

A command is a list of str/bytes. Replies are parsed into Python values (bytes, int, None,
lists, ResponseError-like ("error", text) tuples) so that a comparison can ignore order where
Valkey itself does not promise one (SMEMBERS, HGETALL, KEYS...).
"""
import socket
import subprocess
import tempfile
import shutil

from harness import ServerProcess, free_port, wait_until


class RespConnection:
    """A minimal RESP2 client over a raw socket: exact replies, no client-side parsing rules."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def close(self):
        self.sock.close()

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            if isinstance(arg, str):
                arg = arg.encode()
            elif isinstance(arg, int):
                arg = str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
        return b"".join(out)

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def _line(self):
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _exact(self, size):
        while len(self.buffer) < size + 2:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size + 2:]
        return data

    def read_reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return ("status", rest.decode())
        if kind == b"-":
            return ("error", rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self._exact(size)
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self.read_reply() for _ in range(count)]
        raise AssertionError(f"unexpected RESP2 reply line {line!r}")

    def call(self, *args):
        self.sock.sendall(self.encode(args))
        return self.read_reply()

    def pipeline(self, commands):
        self.sock.sendall(b"".join(self.encode(c) for c in commands))
        return [self.read_reply() for _ in commands]


def canonical(value):
    """Sorts nested lists so that replies with no defined order compare equal."""
    if isinstance(value, list):
        items = [canonical(v) for v in value]
        return sorted(items, key=repr)
    return value


class Differential:
    """Runs an oracle redis-server and a lattice-server side by side on loopback."""

    def __init__(self, *lattice_args):
        self.lattice = ServerProcess(*lattice_args)
        self.oracle_port = free_port()
        self.oracle_dir = tempfile.mkdtemp(prefix="lattice-oracle-")
        self.oracle = None

    def __enter__(self):
        self.lattice.start()
        self.oracle = subprocess.Popen(
            ["redis-server", "--port", str(self.oracle_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.oracle_dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def oracle_up():
            with socket.create_connection(("127.0.0.1", self.oracle_port), timeout=1):
                return True
        wait_until(oracle_up, what="redis-server oracle")
        self.a = RespConnection(self.oracle_port)
        self.b = RespConnection(self.lattice.port)
        return self

    def __exit__(self, *exc):
        for conn in (getattr(self, "a", None), getattr(self, "b", None)):
            if conn:
                conn.close()
        if self.oracle and self.oracle.poll() is None:
            self.oracle.terminate()
            self.oracle.wait(timeout=10)
        shutil.rmtree(self.oracle_dir, ignore_errors=True)
        self.lattice.cleanup()

    def check(self, commands, seed=None, unordered=False, normalize=None, batch=500):
        """Sends `commands` (pipelined in batches) to both servers and compares every reply.

        `unordered`: True, or a set of upper-case command names whose replies are compared as
        multisets. `normalize(command, reply)` may rewrite a reply before comparison (for a
        documented difference). Raises AssertionError naming the seed, the index and command of
        the first difference, and both replies.
        """
        for start in range(0, len(commands), batch):
            chunk = commands[start:start + batch]
            expected = self.a.pipeline(chunk)
            actual = self.b.pipeline(chunk)
            for offset, (command, want, got) in enumerate(zip(chunk, expected, actual)):
                name = str(command[0]).upper()
                if unordered is True or (unordered and name in unordered):
                    want, got = canonical(want), canonical(got)
                if normalize:
                    want, got = normalize(command, want), normalize(command, got)
                if want != got:
                    raise AssertionError(
                        f"seed={seed} command #{start + offset}: {command!r}\n"
                        f"  redis-server: {want!r}\n  lattice:      {got!r}")
