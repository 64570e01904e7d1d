"""The string family through redis-py against a real lattice-server: one test per command."""
import unittest

import redis

from harness import ServerTestCase, wait_until

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


class StringTest(ServerTestCase):
    def setUp(self):
        self.r = self.server.client()
        self.r.flushall()

    def tearDown(self):
        self.r.close()

    def assertError(self, text, func, *args, **kwargs):
        with self.assertRaises(redis.ResponseError) as raised:
            func(*args, **kwargs)
        # redis-py drops the "ERR " prefix of generic errors and keeps the others.
        self.assertEqual(str(raised.exception), text.removeprefix("ERR "))

    def make_set(self, key):
        self.r.execute_command("SADD", key, "x")

    def test_get_set(self):
        self.assertIsNone(self.r.get("k"))
        self.assertTrue(self.r.set("k", b"v\x00\xff"))
        self.assertEqual(self.r.get("k"), b"v\x00\xff")
        self.make_set("s")
        self.assertError(WRONGTYPE, self.r.get, "s")
        self.assertTrue(self.r.set("s", "v"))
        self.assertEqual(self.r.get("s"), b"v")

    def test_set_options(self):
        self.assertIsNone(self.r.set("k", "1", xx=True))
        self.assertTrue(self.r.set("k", "1", nx=True))
        self.assertIsNone(self.r.set("k", "2", nx=True))
        self.assertEqual(self.r.set("k", "3", get=True), b"1")
        self.assertTrue(self.r.set("k", "4", ex=100))
        self.assertTrue(90 <= self.r.ttl("k") <= 100)
        self.assertTrue(self.r.set("k", "5", keepttl=True))
        self.assertTrue(90 <= self.r.ttl("k") <= 100)
        self.assertTrue(self.r.set("k", "6", px=100000))
        self.assertTrue(self.r.set("k", "7", exat=2000000000))
        self.assertEqual(self.r.expiretime("k"), 2000000000)
        self.assertTrue(self.r.set("k", "8", pxat=2000000000123))
        self.assertEqual(self.r.pexpiretime("k"), 2000000000123)
        self.assertTrue(self.r.set("k", "9"))
        self.assertEqual(self.r.ttl("k"), -1)
        self.assertError("ERR invalid expire time in 'set' command", self.r.set, "k", "v", ex=0)
        self.assertError("ERR invalid expire time in 'set' command",
                         self.r.execute_command, "SET", "k", "v", "PX", "-1")
        self.assertError("ERR syntax error", self.r.execute_command, "SET", "k", "v", "NX", "XX")
        self.assertError("ERR syntax error",
                         self.r.execute_command, "SET", "k", "v", "EX", "1", "KEEPTTL")

    def test_set_expires(self):
        self.assertTrue(self.r.set("k", "v", px=50))
        wait_until(lambda: self.r.get("k") is None, timeout=5, what="k to expire")
        self.assertEqual(self.r.exists("k"), 0)

    def test_set_ifeq(self):
        self.assertIsNone(self.r.execute_command("SET", "k", "v", "IFEQ", "x"))
        self.r.set("k", "a")
        self.assertIsNone(self.r.execute_command("SET", "k", "b", "IFEQ", "x"))
        self.assertTrue(self.r.execute_command("SET", "k", "b", "IFEQ", "a"))
        self.assertEqual(self.r.get("k"), b"b")
        self.make_set("s")
        self.assertError(WRONGTYPE, self.r.execute_command, "SET", "s", "v", "IFEQ", "x")

    def test_setnx_setex_psetex(self):
        self.assertTrue(self.r.setnx("k", "1"))
        self.assertFalse(self.r.setnx("k", "2"))
        self.assertTrue(self.r.setex("e", 100, "v"))
        self.assertTrue(90 <= self.r.ttl("e") <= 100)
        self.assertTrue(self.r.psetex("p", 100000, "v"))
        self.assertTrue(90000 <= self.r.pttl("p") <= 100000)
        self.assertError("ERR invalid expire time in 'setex' command", self.r.setex, "e", 0, "v")
        self.assertError("ERR invalid expire time in 'psetex' command",
                         self.r.psetex, "e", -5, "v")
        self.assertTrue(self.r.psetex("short", 30, "v"))
        wait_until(lambda: self.r.get("short") is None, timeout=5, what="short to expire")

    def test_getset_getdel(self):
        self.assertIsNone(self.r.getset("k", "1"))
        self.r.expire("k", 100)
        self.assertEqual(self.r.getset("k", "2"), b"1")
        self.assertEqual(self.r.ttl("k"), -1)
        self.assertEqual(self.r.getdel("k"), b"2")
        self.assertIsNone(self.r.getdel("k"))
        self.make_set("s")
        self.assertError(WRONGTYPE, self.r.getset, "s", "v")
        self.assertError(WRONGTYPE, self.r.getdel, "s")

    def test_getex(self):
        self.assertIsNone(self.r.getex("k", ex=10))
        self.r.set("k", "v")
        self.assertEqual(self.r.getex("k", ex=100), b"v")
        self.assertTrue(90 <= self.r.ttl("k") <= 100)
        self.assertEqual(self.r.getex("k", persist=True), b"v")
        self.assertEqual(self.r.ttl("k"), -1)
        self.assertEqual(self.r.getex("k", exat=2000000000), b"v")
        self.assertEqual(self.r.expiretime("k"), 2000000000)
        self.assertEqual(self.r.getex("k", pxat=1), b"v")
        self.assertIsNone(self.r.get("k"))
        self.r.set("k", "v")
        self.assertEqual(self.r.getex("k", px=40), b"v")
        wait_until(lambda: self.r.get("k") is None, timeout=5, what="k to expire")
        self.r.set("k", "v")
        self.assertError("ERR invalid expire time in 'getex' command", self.r.getex, "k", ex=0)
        self.assertError("ERR syntax error", self.r.execute_command, "GETEX", "k", "PERSIST",
                         "EX", "1")

    def test_mget_mset_msetnx(self):
        self.assertTrue(self.r.mset({"a": "1", "b": "2"}))
        self.make_set("s")
        self.assertEqual(self.r.mget("a", "b", "s", "nope"), [b"1", b"2", None, None])
        self.assertFalse(self.r.msetnx({"c": "3", "a": "x"}))
        self.assertIsNone(self.r.get("c"))
        self.assertTrue(self.r.msetnx({"c": "3", "d": "4"}))
        self.assertEqual(self.r.mget(["c", "d"]), [b"3", b"4"])
        self.assertError("ERR wrong number of arguments for 'mset' command",
                         self.r.execute_command, "MSET", "a", "1", "b")

    def test_append_strlen(self):
        self.assertEqual(self.r.strlen("k"), 0)
        self.assertEqual(self.r.append("k", "ab"), 2)
        self.r.expire("k", 100)
        self.assertEqual(self.r.append("k", "cd"), 4)
        self.assertTrue(90 <= self.r.ttl("k") <= 100)
        self.assertEqual(self.r.get("k"), b"abcd")
        self.assertEqual(self.r.strlen("k"), 4)
        self.make_set("s")
        self.assertError(WRONGTYPE, self.r.append, "s", "x")
        self.assertError(WRONGTYPE, self.r.strlen, "s")

    def test_setrange_getrange(self):
        self.assertEqual(self.r.setrange("k", 0, ""), 0)
        self.assertEqual(self.r.exists("k"), 0)
        self.assertEqual(self.r.setrange("k", 2, "xy"), 4)
        self.assertEqual(self.r.get("k"), b"\x00\x00xy")
        self.r.set("k", "Hello World")
        self.assertEqual(self.r.setrange("k", 6, "Redis"), 11)
        self.assertEqual(self.r.get("k"), b"Hello Redis")
        self.assertEqual(self.r.getrange("k", 0, 4), b"Hello")
        self.assertEqual(self.r.getrange("k", -5, -1), b"Redis")
        self.assertEqual(self.r.getrange("k", 5, 1), b"")
        self.assertEqual(self.r.getrange("missing", 0, -1), b"")
        self.assertError("ERR offset is out of range", self.r.setrange, "k", -1, "x")
        self.assertError("ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                         self.r.setrange, "k", 512 * 1024 * 1024, "x")
        self.make_set("s")
        self.assertError(WRONGTYPE, self.r.setrange, "s", 0, "x")
        self.assertError(WRONGTYPE, self.r.getrange, "s", 0, 1)

    def test_incr_decr(self):
        self.assertEqual(self.r.incr("n"), 1)
        self.assertEqual(self.r.incrby("n", 10), 11)
        self.assertEqual(self.r.decr("n"), 10)
        self.assertEqual(self.r.decrby("n", 10), 0)
        self.assertEqual(self.r.get("n"), b"0")  # a counter at zero still exists
        self.r.set("n", "9223372036854775807")
        self.assertError("ERR increment or decrement would overflow", self.r.incr, "n")
        self.r.set("n", "abc")
        self.assertError("ERR value is not an integer or out of range", self.r.incr, "n")
        self.assertError("ERR decrement would overflow",
                         self.r.decrby, "n", -9223372036854775808)
        self.r.set("t", "1", ex=100)
        self.assertEqual(self.r.incr("t"), 2)
        self.assertTrue(90 <= self.r.ttl("t") <= 100)
        self.make_set("s")
        self.assertError(WRONGTYPE, self.r.incr, "s")

    def test_incrbyfloat(self):
        self.assertEqual(self.r.incrbyfloat("f", 1.5), 1.5)
        self.assertEqual(self.r.incrbyfloat("f", "0.1"), 1.6)
        self.assertEqual(self.r.incrbyfloat("f", "-1.6"), 0)
        self.assertEqual(self.r.get("f"), b"0")
        self.r.set("f", "10")
        self.assertEqual(self.r.incrbyfloat("f", "5.0e3"), 5010)
        self.assertError("ERR value is not a valid float",
                         self.r.execute_command, "INCRBYFLOAT", "f", "abc")
        self.assertError("ERR increment would produce NaN or Infinity",
                         self.r.execute_command, "INCRBYFLOAT", "f", "inf")
        self.make_set("s")
        self.assertError(WRONGTYPE, self.r.incrbyfloat, "s", 1)

    def test_resp3_null(self):
        conn = self.server.raw()
        try:
            # HELLO's map is long; the PING after GET tells us where the replies end.
            conn.sendall(b"HELLO 3\r\nGET nokey\r\nPING\r\n")
            data = b""
            while b"+PONG\r\n" not in data:
                chunk = conn.recv(65536)
                self.assertTrue(chunk)
                data += chunk
        finally:
            conn.close()
        self.assertTrue(data.endswith(b"_\r\n+PONG\r\n"))

if __name__ == "__main__":
    unittest.main()
