"""Valkey 9 hash field expiration through redis-py's execute_command (redis-server 7.0 lacks the
family, so the expected replies are the reference's, §1): reply codes, parsing errors, hiding,
HLEN counting until reclaimed, and reclamation by the active cycle (INFO expired_fields)."""
import time
import unittest

import redis

from harness import ServerTestCase, wait_until

NUMFIELDS = "numfields should be greater than 0 and match the provided number of fields"


class HashFieldTtlTest(ServerTestCase):
    def setUp(self):
        self.r = self.server.client(decode_responses=True)
        self.r.delete("h", "g", "s")

    def x(self, *args):
        return self.r.execute_command(*args)

    def test_hexpire_reply_codes_and_conditions(self):
        self.r.hset("h", mapping={"f1": "a", "f2": "b"})
        self.assertEqual(self.x("HEXPIRE", "h", 100, "FIELDS", 2, "f1", "nofield"), [1, -2])
        self.assertEqual(self.x("HEXPIRE", "h", 50, "NX", "FIELDS", 2, "f1", "f2"), [0, 1])
        self.assertEqual(self.x("HEXPIRE", "h", 500, "XX", "FIELDS", 1, "f1"), [1])
        self.assertEqual(self.x("HEXPIRE", "h", 10, "GT", "FIELDS", 1, "f1"), [0])
        self.assertEqual(self.x("HEXPIRE", "h", 10, "LT", "FIELDS", 1, "f1"), [1])
        self.assertEqual(self.x("HEXPIRE", "h", 0, "GT", "FIELDS", 2, "f1", "nofield"), [0, -2])
        self.assertEqual(self.x("HPEXPIRE", "h", 0, "FIELDS", 1, "f1"), [2])
        self.assertEqual(self.x("HEXPIRE", "nokey", 10, "FIELDS", 1, "f"), [-2])
        now = int(time.time())
        self.assertEqual(self.x("HEXPIREAT", "h", now + 100, "FIELDS", 1, "f2"), [1])
        self.assertEqual(self.x("HEXPIRETIME", "h", "FIELDS", 1, "f2"), [now + 100])
        self.assertEqual(self.x("HPEXPIREAT", "h", (now + 200) * 1000, "FIELDS", 1, "f2"), [1])
        self.assertEqual(self.x("HPEXPIRETIME", "h", "FIELDS", 1, "f2"), [(now + 200) * 1000])
        ttl = self.x("HTTL", "h", "FIELDS", 1, "f2")[0]
        self.assertTrue(190 <= ttl <= 200, ttl)
        self.assertTrue(0 < self.x("HPTTL", "h", "FIELDS", 1, "f2")[0] <= 200000)
        self.assertEqual(self.x("HPERSIST", "h", "FIELDS", 2, "f2", "zz"), [1, -2])
        self.assertEqual(self.x("HTTL", "h", "FIELDS", 1, "f2"), [-1])
        self.assertEqual(self.x("HPEXPIREAT", "h", 1, "FIELDS", 1, "f2"), [2])
        self.assertEqual(self.r.exists("h"), 0)

    def test_errors(self):
        self.r.hset("h", "f", "v")
        cases = [
            (("HEXPIRE", "h", 10, "FIELDS", 0), "wrong number of arguments for 'hexpire'"),
            (("HEXPIRE", "h", 10, "FIELDS", 2, "f"), NUMFIELDS),
            (("HEXPIRE", "h", 10, "FIELDS", "x", "f"), "value is not an integer or out of range"),
            (("HEXPIRE", "h", -1, "FIELDS", 1, "f"), "invalid expire time in 'hexpire' command"),
            (("HEXPIRE", "h", 10, "FOO", "FIELDS", 1, "f"), "Unsupported option FOO"),
            (("HEXPIRE", "h", 10, "NX", "GT", "FIELDS", 1, "f"),
             "NX and XX, GT or LT options at the same time are not compatible"),
            (("HEXPIRE", "h", 10, "GT", "LT", "FIELDS", 1, "f"),
             "GT and LT options at the same time are not compatible"),
            (("HTTL", "h", "FIELDS", 2, "f"), "syntax error"),
            (("HPERSIST", "h", "FIELDS", 2, "f"), NUMFIELDS),
            (("HSETEX", "h", "FIELDS", 2, "f", "v"), NUMFIELDS),
            (("HSETEX", "h", "FNX", "FXX", "FIELDS", 1, "f", "v"), "syntax error"),
            (("HSETEX", "h", "EX", 10, "KEEPTTL", "FIELDS", 1, "f", "v"), "syntax error"),
            (("HSETEX", "h", "NX", "FIELDS", 1, "f", "v"), "syntax error"),
            (("HGETEX", "h", "EX", 10, "PERSIST", "FIELDS", 1, "f"), "syntax error"),
            (("HGETEX", "h", "FIELDS", 3, "f"), NUMFIELDS),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                with self.assertRaises(redis.ResponseError) as raised:
                    self.x(*args)
                self.assertIn(message, str(raised.exception))
        self.r.set("s", "x")
        with self.assertRaisesRegex(redis.ResponseError, "WRONGTYPE"):
            self.x("HTTL", "s", "FIELDS", 1, "f")

    def test_hsetex_and_hgetex(self):
        self.assertEqual(self.x("HSETEX", "h", "FXX", "FIELDS", 1, "a", "1"), 0)
        self.assertEqual(self.r.exists("h"), 0)
        self.assertEqual(self.x("HSETEX", "h", "FNX", "EX", 100, "FIELDS", 2, "a", "1", "b", "2"),
                         1)
        self.assertEqual(self.x("HTTL", "h", "FIELDS", 2, "a", "b"), [100, 100])
        self.assertEqual(self.x("HSETEX", "h", "KEEPTTL", "FIELDS", 1, "a", "9"), 1)
        self.assertEqual(self.x("HTTL", "h", "FIELDS", 1, "a"), [100])
        self.r.hset("h", "a", "10")  # setting a value clears the TTL
        self.assertEqual(self.x("HTTL", "h", "FIELDS", 1, "a"), [-1])
        self.assertEqual(self.x("HGETEX", "h", "PX", 5000, "FIELDS", 2, "a", "zz"), ["10", None])
        self.assertTrue(0 < self.x("HPTTL", "h", "FIELDS", 1, "a")[0] <= 5000)
        self.assertEqual(self.x("HGETEX", "h", "PERSIST", "FIELDS", 1, "a"), ["10"])
        self.assertEqual(self.x("HTTL", "h", "FIELDS", 1, "a"), [-1])
        self.assertEqual(self.x("HGETEX", "h", "EX", 0, "FIELDS", 1, "a"), ["10"])
        self.assertEqual(self.r.hexists("h", "a"), False)
        self.assertEqual(self.x("HSETEX", "h", "EX", 0, "FIELDS", 1, "b", "x"), 1)
        self.assertEqual(self.r.exists("h"), 0)

    def test_expired_fields_are_hidden_then_reclaimed(self):
        r = self.r
        r.hset("h", mapping={f"f{i}": "v" for i in range(30)})
        r.hset("g", "keep", "1")
        def expired_fields():
            return r.info("stats")["expired_fields"]
        before = expired_fields()
        self.x("HPEXPIRE", "h", 300, "FIELDS", 10, *[f"f{i}" for i in range(10)])
        self.assertTrue(0 < self.x("HPTTL", "h", "FIELDS", 1, "f0")[0] <= 300)
        wait_until(lambda: r.hget("h", "f0") is None, what="field f0 hidden")
        self.assertEqual(len(r.hgetall("h")), 20)
        self.assertFalse(r.hexists("h", "f5"))
        self.assertEqual(self.x("HTTL", "h", "FIELDS", 2, "f0", "f10"), [-2, -1])
        wait_until(lambda: expired_fields() >= before + 10, what="active reclaim of 10 fields")
        self.assertEqual(r.hlen("h"), 20)
        self.x("HPEXPIRE", "g", 50, "FIELDS", 1, "keep")
        wait_until(lambda: r.exists("g") == 0, what="hash g hidden and reclaimed")


if __name__ == "__main__":
    unittest.main()
