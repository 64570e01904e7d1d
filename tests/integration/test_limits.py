"""Valkey's input limits (shared/reference/valkey-compat.md 4.7), on a real lattice-server with
requirepass set, side by side with Debian's redis-server as the oracle where the two promise the
same thing: every hostile input gets Valkey's error (or, for the query buffer, a silent close),
and the server keeps serving the clients that did nothing wrong.

Each case checks both servers: the exact bytes the hostile client receives before the server
closes its connection, then a bystander connection opened before the attack still works, and
so does a fresh one.
"""
import socket
import unittest

from differential import Differential
from harness import read_exactly, read_until_closed

PASSWORD = "limits-pass"
KB = 1024
MB = 1024 * 1024


def command(*args):
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        arg = arg.encode() if isinstance(arg, str) else arg
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def bulk_reply(value):
    return b"$%d\r\n%s\r\n" % (len(value), value)


def error(text):
    return b"-ERR Protocol error: " + text + b"\r\n"


NOAUTH = b"-NOAUTH Authentication required.\r\n"


class LimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.diff = Differential("--requirepass", PASSWORD).__enter__()
        cls.diff.a.call("CONFIG", "SET", "requirepass", PASSWORD)  # the oracle's own connection
        cls.servers = {"lattice": cls.diff.lattice.port, "oracle": cls.diff.oracle_port}

    @classmethod
    def tearDownClass(cls):
        cls.diff.__exit__(None, None, None)

    # ---- helpers ---------------------------------------------------------------------------

    def connect(self, port, authenticated):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if authenticated:
            sock.sendall(command("AUTH", PASSWORD))
            self.assertEqual(b"+OK\r\n", read_exactly(sock, 5))
        return sock

    def refused(self, port, payload, authenticated=False):
        """Sends `payload`; returns every byte received until the server closes."""
        with self.connect(port, authenticated) as sock:
            try:
                sock.sendall(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed while we were still sending: what follows is what it sent
            return read_until_closed(sock)

    def assert_serving(self, name, bystander):
        """The bystander (connected before the attack) and a new client both get answers."""
        bystander.sendall(command("SET", "bystander", name) + command("GET", "bystander"))
        self.assertEqual(b"+OK\r\n" + bulk_reply(name.encode()),
                         read_exactly(bystander, 5 + len(bulk_reply(name.encode()))), name)
        with self.connect(self.servers[name], authenticated=True) as fresh:
            fresh.sendall(command("PING"))
            self.assertEqual(b"+PONG\r\n", read_exactly(fresh, 7), name)

    def check_refused(self, payload, expected, authenticated=False, servers=None):
        """Both servers answer `payload` with exactly `expected`, close, and keep serving."""
        for name in servers or self.servers:
            port = self.servers[name]
            with self.connect(port, authenticated=True) as bystander:
                got = self.refused(port, payload, authenticated)
                self.assertEqual(expected, got, f"{name}: {payload[:40]!r}")
                self.assert_serving(name, bystander)

    def check_accepted(self, payload, expected, authenticated):
        """Both servers answer `payload` with `expected` and keep the connection open."""
        for name, port in self.servers.items():
            with self.connect(port, authenticated) as sock:
                sock.sendall(payload)
                self.assertEqual(expected, read_exactly(sock, len(expected)), name)
                sock.sendall(b"PING\r\n")  # still open (NOAUTH or PONG: an answer)
                self.assertIn(read_exactly(sock, 7), (b"+PONG\r\n", NOAUTH[:7]), name)

    def config_set(self, name, value):
        for port in self.servers.values():
            with self.connect(port, authenticated=True) as sock:
                sock.sendall(command("CONFIG", "SET", name, value))
                self.assertEqual(b"+OK\r\n", read_exactly(sock, 5))

    # ---- before AUTH -----------------------------------------------------------------------

    def test_unauthenticated_multibulk_over_10_arguments(self):
        self.check_refused(b"*11\r\n", error(b"unauthenticated multibulk length"))
        ten = command("SADD", "k", *[str(i) for i in range(8)])  # arity is checked before AUTH
        self.check_accepted(ten, NOAUTH, authenticated=False)

    def test_unauthenticated_bulk_over_16384_bytes(self):
        self.check_refused(b"*1\r\n$16385\r\n", error(b"unauthenticated bulk length"))
        self.check_refused(b"*2\r\n$4\r\nECHO\r\n$16385\r\n" + b"x" * 100,
                           error(b"unauthenticated bulk length"))
        self.check_accepted(command("ECHO", b"x" * 16384), NOAUTH, authenticated=False)

    def test_authenticated_clients_have_no_such_limits(self):
        members = [str(i) for i in range(9)]
        self.check_accepted(command("SADD", "eleven-args", *members), b":9\r\n",
                            authenticated=True)
        big = b"y" * 16385
        self.check_accepted(command("ECHO", big), bulk_reply(big), authenticated=True)

    # ---- bulk and multibulk lengths --------------------------------------------------------

    def test_bulk_over_proto_max_bulk_len(self):
        self.check_refused(b"*2\r\n$4\r\nECHO\r\n$536870913\r\n", error(b"invalid bulk length"),
                           authenticated=True)
        self.config_set("proto-max-bulk-len", "1mb")
        try:
            self.check_refused(b"*2\r\n$4\r\nECHO\r\n$1048577\r\n", error(b"invalid bulk length"),
                               authenticated=True)
            exact = b"z" * MB
            self.check_accepted(command("ECHO", exact), bulk_reply(exact), authenticated=True)
        finally:
            self.config_set("proto-max-bulk-len", "512mb")

    def test_bulk_length_negative_or_overflowing(self):
        for header in (b"$-1", b"$99999999999999999999", b"$12x"):
            self.check_refused(b"*1\r\n" + header + b"\r\n", error(b"invalid bulk length"),
                               authenticated=True)

    def test_multibulk_length_overflow(self):
        for header in (b"*2147483648", b"*99999999999999999999", b"*1x"):
            self.check_refused(header + b"\r\n", error(b"invalid multibulk length"),
                               authenticated=True)

    def test_multibulk_count_at_int_max_does_not_allocate_and_negative_counts_are_ignored(self):
        self.check_accepted(b"*-1\r\n*0\r\n" + command("PING"), b"+PONG\r\n",
                            authenticated=True)
        # A count of INT_MAX is accepted; the server waits for arguments that never come, and
        # reserves nothing for them (the bystander check runs while this client hangs on).
        for name, port in self.servers.items():
            with self.connect(port, True) as hanging, self.connect(port, True) as bystander:
                hanging.sendall(b"*2147483647\r\n$4\r\nECHO\r\n")
                self.assert_serving(name, bystander)

    # ---- line lengths (64 KB) --------------------------------------------------------------

    def test_inline_request_over_64kb(self):
        self.check_refused(b"A" * (64 * KB + 100), error(b"too big inline request"))
        line = b"ECHO " + b"i" * (60 * KB)
        self.check_accepted(line + b"\r\n", bulk_reply(b"i" * (60 * KB)), authenticated=True)

    def test_header_lines_over_64kb(self):
        self.check_refused(b"*" + b"1" * (64 * KB + 100), error(b"too big mbulk count string"),
                           authenticated=True)
        self.check_refused(b"*1\r\n$" + b"1" * (64 * KB + 100),
                           error(b"too big bulk count string"), authenticated=True)

    # ---- client-query-buffer-limit ---------------------------------------------------------

    def test_query_buffer_over_1mb_closes_without_reply(self):
        self.config_set("client-query-buffer-limit", "1mb")
        try:
            # 1.5 MB of a 2 MB argument: both servers close the connection and send nothing.
            payload = b"*2\r\n$4\r\nECHO\r\n$2000000\r\n" + b"q" * (MB + MB // 2)
            self.check_refused(payload, b"", authenticated=True)
        finally:
            self.config_set("client-query-buffer-limit", "1gb")

    def test_query_buffer_limit_boundary(self):
        # Lattice counts the argument bytes of the command being read ("ECHO" + its argument):
        # 1 MB exactly is allowed, 1 MB + 1 closes the client and is counted in INFO.
        self.config_set("client-query-buffer-limit", "1mb")
        port = self.servers["lattice"]
        try:
            at_limit = b"a" * (MB - 4)
            with self.connect(port, True) as sock:
                sock.sendall(b"*2\r\n$4\r\nECHO\r\n$%d\r\n" % len(at_limit) + at_limit)
                sock.sendall(b"\r\n")
                expected = bulk_reply(at_limit)
                self.assertEqual(expected, read_exactly(sock, len(expected)))
            before = self.stat("client_query_buffer_limit_disconnections")
            self.check_refused(b"*2\r\n$4\r\nECHO\r\n$2000000\r\n" + b"b" * (MB - 3), b"",
                               authenticated=True, servers=["lattice"])
            self.assertEqual(before + 1, self.stat("client_query_buffer_limit_disconnections"))
        finally:
            self.config_set("client-query-buffer-limit", "1gb")

    def stat(self, field):
        with self.connect(self.servers["lattice"], True) as sock:
            sock.sendall(command("INFO", "stats"))
            header = b""
            while not header.endswith(b"\r\n"):
                header += read_exactly(sock, 1)
            body = read_exactly(sock, int(header[1:-2]) + 2).decode()
        for line in body.splitlines():
            if line.startswith(field + ":"):
                return int(line.split(":", 1)[1])
        raise AssertionError(f"{field} not in INFO stats")


if __name__ == "__main__":
    unittest.main()
