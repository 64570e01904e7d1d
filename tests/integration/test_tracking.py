"""CLIENT TRACKING (server-assisted client-side caching) on real lattice-server processes:

- a RESP3 tracking client in region b is invalidated by a write made in region a (raw socket),
  and a RESP2 client with REDIRECT receives it on `__redis__:invalidate` (redis-py);
- BCAST with PREFIX, OPTIN/OPTOUT with CLIENT CACHING, NOLOOP, FLUSHALL's null invalidation,
  expiry, tracking-table-max-keys, and Valkey's errors and replies, diffed against redis-server
  7.0 where it has them (CLIENT TRACKINGINFO, GETREDIR, the option errors).

Every wait is a bounded poll.
"""
import socket
import unittest

from differential import Differential, RespConnection
from harness import ServerProcess, start_regions, wait_until


class Resp3(RespConnection):
    """A raw RESP3 connection that keeps push messages apart from replies (the socket and line
    plumbing are RespConnection's)."""

    def __init__(self, port):
        super().__init__(port)
        self.pushes = []
        self.call("HELLO", "3")

    def _value(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"-"):
            return (kind.decode(), rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"_":
            return None
        if kind == b"$":
            size = int(rest)
            return self._exact(size)
        if kind in (b"*", b"~", b">"):
            items = [self._value() for _ in range(int(rest))]
            return ("push", items) if kind == b">" else items
        if kind == b"%":
            return {self._value(): self._value() for _ in range(int(rest))}
        raise AssertionError(f"unexpected RESP3 line {line!r}")

    def _next(self):
        """The next reply; pushes met on the way are kept."""
        while True:
            value = self._value()
            if isinstance(value, tuple) and value[0] == "push":
                self.pushes.append(value[1])
                continue
            return value

    def call(self, *args):
        self.sock.sendall(RespConnection.encode(args))
        return self._next()

    def wait_push(self, timeout=10.0):
        """The next push message (bounded)."""
        def got():
            if self.pushes:
                return self.pushes.pop(0)
            self.sock.settimeout(0.05)
            try:
                value = self._value()
            except socket.timeout:
                return None
            finally:
                self.sock.settimeout(10)
            assert isinstance(value, tuple) and value[0] == "push", value
            return value[1]
        return wait_until(got, timeout=timeout, what="a push message")

    def no_push(self):
        """True when no push arrives before a PING's reply (ordering on one connection)."""
        self.call("PING")
        return not self.pushes


class TrackingAcrossRegionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.regions = start_regions(2)

    @classmethod
    def tearDownClass(cls):
        for server in cls.regions:
            server.cleanup()

    def test_resp3_client_in_b_invalidated_by_write_in_a(self):
        a, b = self.regions
        a.client().set("cached", "1")
        wait_until(lambda: b.client().get("cached") == b"1", what="the key in region b")
        reader = Resp3(b.port)
        try:
            self.assertEqual(reader.call("CLIENT", "TRACKING", "ON"), ("+", "OK"))
            self.assertEqual(reader.call("GET", "cached"), b"1")
            a.client().set("cached", "2")
            self.assertEqual(reader.wait_push(timeout=20), [b"invalidate", [b"cached"]])
            # Forgotten once invalidated: another write sends nothing until it is read again.
            a.client().set("cached", "3")
            wait_until(lambda: b.client().get("cached") == b"3", what="the second write in b")
            self.assertTrue(reader.no_push())
        finally:
            reader.close()

    def test_resp2_redirect_in_b_invalidated_by_write_in_a(self):
        a, b = self.regions
        a.client().set("redirected", "1")
        wait_until(lambda: b.client().get("redirected") == b"1", what="the key in region b")
        listener = b.client().pubsub()
        listener.subscribe("__redis__:invalidate")
        wait_until(lambda: listener.get_message(timeout=0.05) is not None, what="subscribed")
        # The listener's id: the one client of region b subscribed to a channel.
        target = [line for line in b.client().client_list() if line.get("sub") == "1"]
        self.assertTrue(target)
        reader = b.client(single_connection_client=True)
        reader.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", target[-1]["id"])
        self.assertEqual(reader.execute_command("CLIENT", "GETREDIR"), int(target[-1]["id"]))
        self.assertEqual(reader.get("redirected"), b"1")
        a.client().set("redirected", "2")
        message = wait_until(lambda: listener.get_message(timeout=0.05), timeout=20,
                             what="an invalidation message")
        self.assertEqual(message["channel"], b"__redis__:invalidate")
        self.assertEqual(message["data"], [b"redirected"])
        listener.close()


class TrackingLocalTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ServerProcess().start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        self.client = self.server.client()
        self.reader = Resp3(self.server.port)

    def tearDown(self):
        self.reader.close()

    def test_bcast_with_prefix(self):
        r = self.reader
        self.assertEqual(r.call("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:",
                                "PREFIX", "cfg:"), ("+", "OK"))
        self.client.set("user:1", "x")
        self.assertEqual(r.wait_push(), [b"invalidate", [b"user:1"]])
        self.client.set("other", "x")
        self.client.hset("cfg:a", "f", "v")
        self.assertEqual(r.wait_push(), [b"invalidate", [b"cfg:a"]])
        self.assertTrue(r.no_push())
        info = r.call("CLIENT", "TRACKINGINFO")
        self.assertEqual(info[b"flags"], [b"on", b"bcast"])
        self.assertEqual(sorted(info[b"prefixes"]), [b"cfg:", b"user:"])
        self.assertEqual(r.call("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:x")[0], "-")

    def test_optin_optout_noloop(self):
        r = self.reader
        self.client.set("in1", "1")
        self.client.set("in2", "1")
        r.call("CLIENT", "TRACKING", "ON", "OPTIN")
        r.call("GET", "in1")  # not remembered: no CACHING YES
        self.assertEqual(r.call("CLIENT", "CACHING", "YES"), ("+", "OK"))
        r.call("GET", "in2")
        self.client.set("in1", "2")
        self.client.set("in2", "2")
        self.assertEqual(r.wait_push(), [b"invalidate", [b"in2"]])
        self.assertTrue(r.no_push())
        r.call("CLIENT", "TRACKING", "OFF")
        r.call("CLIENT", "TRACKING", "ON", "OPTOUT", "NOLOOP")
        r.call("CLIENT", "CACHING", "NO")
        r.call("GET", "in1")  # skipped
        r.call("GET", "in2")
        r.call("SET", "in2", "3")  # its own write: NOLOOP
        self.client.set("in1", "3")
        self.assertTrue(r.no_push())
        r.call("GET", "in2")
        self.client.set("in2", "4")
        self.assertEqual(r.wait_push(), [b"invalidate", [b"in2"]])

    def test_flush_and_expiry(self):
        r = self.reader
        r.call("CLIENT", "TRACKING", "ON")
        self.client.set("gone", "1", px=50)
        r.call("GET", "gone")
        self.assertEqual(r.wait_push(), [b"invalidate", [b"gone"]])
        self.client.set("flushed", "1")
        r.call("GET", "flushed")
        self.client.flushall()
        self.assertEqual(r.wait_push(), [b"invalidate", None])

    def test_own_write_invalidation_follows_reply(self):
        r = self.reader
        r.call("CLIENT", "TRACKING", "ON")
        r.call("GET", "mine")
        self.assertEqual(r.call("SET", "mine", "1"), ("+", "OK"))
        self.assertEqual(r.wait_push(), [b"invalidate", [b"mine"]])

    def test_table_is_bounded(self):
        r = self.reader
        self.client.config_set("tracking-table-max-keys", "2")
        try:
            r.call("CLIENT", "TRACKING", "ON")
            for key in ("t1", "t2", "t3"):
                r.call("GET", key)
            self.assertEqual(len(r.wait_push()[1]), 1)  # one key left the table
        finally:
            self.client.config_set("tracking-table-max-keys", "1000000")


class TrackingDifferentialTest(unittest.TestCase):
    def test_replies_and_errors_match_redis(self):
        commands = [
            ["CLIENT", "GETREDIR"],
            ["CLIENT", "TRACKINGINFO"],
            ["CLIENT", "CACHING", "YES"],
            ["CLIENT", "TRACKING", "ON", "PREFIX", "a"],
            ["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"],
            ["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"],
            ["CLIENT", "TRACKING", "ON", "REDIRECT", "999999"],
            ["CLIENT", "TRACKING", "ON", "REDIRECT", "x"],
            ["CLIENT", "TRACKING", "ON", "BOGUS"],
            ["CLIENT", "TRACKING", "MAYBE"],
            ["CLIENT", "TRACKING", "ON", "OPTIN"],
            ["CLIENT", "GETREDIR"],
            ["CLIENT", "TRACKINGINFO"],
            ["CLIENT", "CACHING", "NO"],
            ["CLIENT", "CACHING", "YES"],
            ["CLIENT", "TRACKINGINFO"],
            ["CLIENT", "CACHING", "MAYBE"],
            ["CLIENT", "TRACKING", "ON", "OPTOUT"],
            ["CLIENT", "TRACKING", "ON", "BCAST"],
            ["CLIENT", "TRACKING", "OFF"],
            ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab", "PREFIX", "a"],
            ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab", "NOLOOP"],
            ["CLIENT", "TRACKINGINFO"],
            ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "abc"],
            ["CLIENT", "TRACKING", "OFF"],
            ["CLIENT", "TRACKINGINFO"],
            ["CLIENT", "GETREDIR"],
        ]
        with Differential() as diff:
            diff.check(commands)


if __name__ == "__main__":
    unittest.main()
