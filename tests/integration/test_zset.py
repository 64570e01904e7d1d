"""The sorted-set family through redis-py (Debian's python3-redis 4.3.4) against a real
lattice-server: every command at least once, in RESP2 and, where the shape differs, RESP3."""
import unittest

import socket

import redis

from differential import RespConnection
from harness import ServerTestCase


class ZSetTest(ServerTestCase):
    def setUp(self):
        self.r = redis.Redis(port=self.server.port, decode_responses=True)
        self.r.flushall()

    def tearDown(self):
        self.r.close()

    def raw(self, *args):
        conn = RespConnection(self.server.port)
        try:
            return conn.call(*args)
        finally:
            conn.close()

    def test_zadd_and_flags(self):
        r = self.r
        self.assertEqual(r.zadd("z", {"a": 1, "b": 2}), 2)
        self.assertEqual(r.zadd("z", {"a": 5, "c": 3}, ch=True), 2)
        self.assertEqual(r.zadd("z", {"a": 9}, nx=True), 0)
        self.assertEqual(r.zadd("z", {"a": 1}, gt=True, ch=True), 0)
        self.assertEqual(r.zadd("z", {"a": 1}, lt=True, ch=True), 1)
        self.assertEqual(r.zadd("z", {"x": 1}, xx=True), 0)
        self.assertEqual(r.zadd("z", {"a": 2}, incr=True), 3.0)
        self.assertIsNone(r.zadd("z", {"a": 2}, nx=True, incr=True))
        with self.assertRaisesRegex(redis.ResponseError, "not compatible"):
            r.execute_command("ZADD", "z", "NX", "XX", "1", "a")
        with self.assertRaisesRegex(redis.ResponseError, "not a valid float"):
            r.execute_command("ZADD", "z", "nan", "a")
        r.set("s", "v")
        with self.assertRaises(redis.ResponseError):
            r.zadd("s", {"a": 1})

    def test_zincrby_zscore_zmscore_zcard(self):
        r = self.r
        self.assertEqual(r.zincrby("z", 2.5, "a"), 2.5)
        self.assertEqual(r.zincrby("z", -1, "a"), 1.5)
        self.assertEqual(r.zscore("z", "a"), 1.5)
        self.assertIsNone(r.zscore("z", "nope"))
        self.assertEqual(r.zmscore("z", ["a", "nope"]), [1.5, None])
        self.assertEqual(r.zcard("z"), 1)
        r.zadd("z", {"inf": float("inf")})
        with self.assertRaisesRegex(redis.ResponseError, "NaN"):
            r.zincrby("z", float("-inf"), "inf")

    def test_ranges(self):
        r = self.r
        r.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4})
        self.assertEqual(r.zrange("z", 0, -1), ["a", "b", "c", "d"])
        self.assertEqual(r.zrange("z", 0, 1, withscores=True), [("a", 1.0), ("b", 2.0)])
        self.assertEqual(r.zrange("z", 0, 1, desc=True), ["d", "c"])
        self.assertEqual(r.zrange("z", "(1", 3, byscore=True), ["b", "c"])
        self.assertEqual(r.zrange("z", 4, 1, byscore=True, desc=True, offset=1, num=2), ["c", "b"])
        self.assertEqual(r.zrevrange("z", 0, 0, withscores=True), [("d", 4.0)])
        self.assertEqual(r.zrangebyscore("z", 2, "+inf", start=1, num=1), ["c"])
        self.assertEqual(r.zrevrangebyscore("z", "+inf", 3), ["d", "c"])
        r.zadd("l", {"a": 0, "b": 0, "c": 0})
        self.assertEqual(r.zrangebylex("l", "[b", "+"), ["b", "c"])
        self.assertEqual(r.zrevrangebylex("l", "+", "(a"), ["c", "b"])
        self.assertEqual(r.zrange("l", "-", "(c", bylex=True), ["a", "b"])
        self.assertEqual(r.zrangestore("dst", "z", 1, 2), 2)
        self.assertEqual(r.zrange("dst", 0, -1), ["b", "c"])
        with self.assertRaisesRegex(redis.ResponseError, "LIMIT is only supported"):
            r.execute_command("ZRANGE", "z", "0", "1", "LIMIT", "0", "1")
        with self.assertRaisesRegex(redis.ResponseError, "min or max is not a float"):
            r.zrangebyscore("z", "x", 1)
        with self.assertRaisesRegex(redis.ResponseError, "not valid string range item"):
            r.zrangebylex("l", "x", "+")

    def test_rank_count_lexcount(self):
        r = self.r
        r.zadd("z", {"a": 1, "b": 2, "c": 3})
        self.assertEqual(r.zrank("z", "b"), 1)
        self.assertEqual(r.zrevrank("z", "b"), 1)
        self.assertEqual(r.zrevrank("z", "a"), 2)
        self.assertIsNone(r.zrank("z", "x"))
        # redis-py 4.3 predates WITHSCORE: read the reply raw.
        self.assertEqual(self.raw("ZRANK", "z", "c", "WITHSCORE"), [2, b"3"])
        self.assertEqual(r.zcount("z", "(1", "+inf"), 2)
        r.zadd("l", {"a": 0, "b": 0, "c": 0})
        self.assertEqual(r.zlexcount("l", "[a", "(c"), 2)

    def test_pops_and_removals(self):
        r = self.r
        r.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6})
        self.assertEqual(r.zpopmin("z"), [("a", 1.0)])
        self.assertEqual(r.zpopmax("z", 2), [("f", 6.0), ("e", 5.0)])
        self.assertEqual(r.zrem("z", "b", "nope"), 1)
        self.assertEqual(r.zremrangebyrank("z", 0, 0), 1)
        self.assertEqual(r.zremrangebyscore("z", 4, 4), 1)
        self.assertEqual(r.zcard("z"), 0)
        self.assertEqual(r.exists("z"), 0)
        r.zadd("l", {"a": 0, "b": 0, "c": 0})
        self.assertEqual(r.zremrangebylex("l", "[a", "[b"), 2)
        self.assertEqual(r.zrange("l", 0, -1), ["c"])

    def test_set_operations(self):
        r = self.r
        r.zadd("a", {"x": 1, "y": 2})
        r.zadd("b", {"y": 10, "z": 20})
        r.sadd("s", "x")
        self.assertEqual(r.zunion(["a", "b"], withscores=True),
                         [("x", 1.0), ("y", 12.0), ("z", 20.0)])
        self.assertEqual(r.zinter(["a", "b"], aggregate="MAX", withscores=True), [("y", 10.0)])
        self.assertEqual(r.zdiff(["a", "b"]), ["x"])
        self.assertEqual(r.zinter(["a", "s"]), ["x"])
        self.assertEqual(r.zunionstore("u", {"a": 2, "b": 1}), 3)
        self.assertEqual(r.zrange("u", 0, -1, withscores=True),
                         [("x", 2.0), ("y", 14.0), ("z", 20.0)])
        self.assertEqual(r.zinterstore("i", ["a", "b"], aggregate="MIN"), 1)
        self.assertEqual(r.zscore("i", "y"), 2.0)
        self.assertEqual(r.zdiffstore("d", ["b", "a"]), 1)
        self.assertEqual(r.zintercard(2, ["a", "b"]), 1)
        self.assertEqual(r.zintercard(2, ["a", "b"], limit=1), 1)
        with self.assertRaisesRegex(redis.ResponseError, "at least 1 input key"):
            r.execute_command("ZUNION", "0", "a")

    def test_zrandmember_and_zscan(self):
        r = self.r
        self.assertIsNone(r.zrandmember("z"))
        members = {f"m{i}": i for i in range(200)}
        r.zadd("z", members)
        self.assertIn(r.zrandmember("z"), members)
        picked = r.zrandmember("z", 10)
        self.assertEqual(len(set(picked)), 10)
        self.assertEqual(len(r.zrandmember("z", -300)), 300)
        pairs = r.zrandmember("z", 3, withscores=True)
        self.assertEqual(len(pairs), 6)
        seen = dict(r.zscan_iter("z", count=17))
        self.assertEqual(seen, {k: float(v) for k, v in members.items()})
        self.assertEqual(sorted(m for m, _ in r.zscan_iter("z", match="m1?")),
                         sorted(f"m1{i}" for i in range(10)))
        r.zadd("small", {"a": 1, "b": 2})
        self.assertEqual(r.zscan("small", 0), (0, [("a", 1.0), ("b", 2.0)]))
        self.assertEqual(self.raw("ZSCAN", "small", "0", "NOSCORES"), [b"0", [b"a", b"b"]])

    def test_resp3_shapes(self):
        # redis-py 4.3 has no RESP3 parser: compare the raw bytes after HELLO 3.
        self.r.zadd("z", {"a": 1, "b": 2.5})
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as sock:
            buffer = bytearray()

            def read_until(done):
                while not done():
                    chunk = sock.recv(1 << 16)
                    self.assertTrue(chunk, "server closed the connection")
                    buffer.extend(chunk)

            def call(expected, *args):
                sock.sendall(RespConnection.encode(args))
                read_until(lambda: len(buffer) >= len(expected))
                got = bytes(buffer)
                buffer.clear()
                self.assertEqual(got, expected)

            sock.sendall(RespConnection.encode(["HELLO", "3"]))
            read_until(lambda: buffer.endswith(b"$7\r\nmodules\r\n*0\r\n"))
            buffer.clear()
            call(b",2.5\r\n", "ZSCORE", "z", "b")
            call(b"*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n",
                 "ZRANGE", "z", "0", "-1", "WITHSCORES")
            call(b"*2\r\n$1\r\na\r\n,1\r\n", "ZPOPMIN", "z")
            call(b"*1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n", "ZPOPMAX", "z", "1")


if __name__ == "__main__":
    unittest.main()
