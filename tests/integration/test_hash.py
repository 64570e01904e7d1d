"""redis-py against a real lattice-server: every 7.0 hash command (RESP3 shapes: Catch2 tests)."""
import unittest

import redis

from differential import RespConnection
from harness import ServerTestCase


class HashCommandsTest(ServerTestCase):
    def setUp(self):
        self.r = self.server.client(decode_responses=True)
        self.r.delete("h", "s", "big")

    def test_set_get_and_friends(self):
        r = self.r
        self.assertEqual(r.hset("h", mapping={"a": "1", "b": "2"}), 2)
        self.assertEqual(r.hset("h", "a", "10"), 0)
        self.assertEqual(r.execute_command("HMSET", "h", "c", "3"), True)
        self.assertEqual(r.hsetnx("h", "a", "x"), 0)
        self.assertEqual(r.hsetnx("h", "d", "4"), 1)
        self.assertEqual(r.hget("h", "a"), "10")
        self.assertIsNone(r.hget("h", "zz"))
        self.assertEqual(r.hmget("h", ["a", "zz", "d"]), ["10", None, "4"])
        self.assertEqual(r.hgetall("h"), {"a": "10", "b": "2", "c": "3", "d": "4"})
        self.assertEqual(sorted(r.hkeys("h")), ["a", "b", "c", "d"])
        self.assertEqual(sorted(r.hvals("h")), ["10", "2", "3", "4"])
        self.assertEqual(r.hlen("h"), 4)
        self.assertTrue(r.hexists("h", "a"))
        self.assertFalse(r.hexists("h", "zz"))
        self.assertEqual(r.hstrlen("h", "a"), 2)
        self.assertEqual(r.hdel("h", "a", "b", "zz"), 2)
        self.assertEqual(r.hlen("h"), 2)
        self.assertEqual(r.hdel("h", "c", "d"), 2)
        self.assertEqual(r.exists("h"), 0)

    def test_increments_and_errors(self):
        r = self.r
        self.assertEqual(r.hincrby("h", "n", 5), 5)
        self.assertEqual(r.hincrby("h", "n", -8), -3)
        self.assertAlmostEqual(r.hincrbyfloat("h", "f", 1.5), 1.5)
        self.assertEqual(r.hget("h", "f"), "1.5")
        r.hset("h", "s", "abc")
        with self.assertRaisesRegex(redis.ResponseError, "hash value is not an integer"):
            r.hincrby("h", "s", 1)
        with self.assertRaisesRegex(redis.ResponseError, "hash value is not a float"):
            r.hincrbyfloat("h", "s", 1)
        r.hset("h", "m", "9223372036854775807")
        with self.assertRaisesRegex(redis.ResponseError, "increment or decrement would overflow"):
            r.hincrby("h", "m", 1)
        r.set("s", "x")
        with self.assertRaisesRegex(redis.ResponseError, "WRONGTYPE"):
            r.hget("s", "a")

    def test_hrandfield(self):
        r = self.r
        self.assertIsNone(r.hrandfield("h"))
        r.hset("h", mapping={"a": "1", "b": "2", "c": "3"})
        self.assertIn(r.hrandfield("h"), {"a", "b", "c"})
        self.assertEqual(sorted(r.hrandfield("h", 5)), ["a", "b", "c"])
        self.assertEqual(len(r.hrandfield("h", 2)), 2)
        self.assertEqual(len(r.hrandfield("h", -7)), 7)
        pairs = r.hrandfield("h", 3, withvalues=True)
        self.assertEqual(len(pairs), 6)
        self.assertEqual(dict(zip(pairs[0::2], pairs[1::2])), {"a": "1", "b": "2", "c": "3"})

    def test_hscan_small_and_large(self):
        r = self.r
        r.hset("h", mapping={"a": "1", "b": "2"})
        self.assertEqual(r.hscan("h", 0), (0, {"a": "1", "b": "2"}))
        self.assertEqual(r.hscan("h", 0, match="a*"), (0, {"a": "1"}))
        raw = RespConnection(self.server.port)  # redis-py would pair up a NOVALUES reply
        self.assertEqual(raw.call("HSCAN", "h", "0", "NOVALUES"), [b"0", [b"a", b"b"]])
        raw.close()
        mapping = {f"f{i}": str(i) for i in range(600)}
        r.hset("big", mapping=mapping)
        self.assertEqual(dict(r.hscan_iter("big", count=37)), mapping)
        with self.assertRaisesRegex(redis.ResponseError, "invalid cursor"):
            r.hscan("big", "x")


if __name__ == "__main__":
    unittest.main()
