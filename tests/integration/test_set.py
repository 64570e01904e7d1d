"""The set family through redis-py against a real lattice-server: one test per command."""
import unittest

import redis

from harness import ServerTestCase, read_until

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


class SetTest(ServerTestCase):
    def setUp(self):
        self.r = self.server.client()
        self.r.flushall()
        self.r.set("str", "v")

    def tearDown(self):
        self.r.close()

    def assertError(self, text, func, *args, **kwargs):
        with self.assertRaises(redis.ResponseError) as raised:
            func(*args, **kwargs)
        self.assertEqual(str(raised.exception), text)

    def test_sadd(self):
        self.assertEqual(self.r.sadd("s", "a", "b", "a"), 2)
        self.assertEqual(self.r.sadd("s", "b", b"\x00\xff"), 1)
        self.assertEqual(self.r.smembers("s"), {b"a", b"b", b"\x00\xff"})
        self.assertEqual(self.r.type("s"), b"set")
        self.assertError(WRONGTYPE, self.r.sadd, "str", "a")

    def test_srem(self):
        self.r.sadd("s", "a", "b", "c")
        self.assertEqual(self.r.srem("s", "a", "x"), 1)
        self.assertEqual(self.r.srem("nokey", "a"), 0)
        self.assertEqual(self.r.srem("s", "b", "c"), 2)
        self.assertEqual(self.r.exists("s"), 0)
        self.assertError(WRONGTYPE, self.r.srem, "str", "a")

    def test_smembers(self):
        self.assertEqual(self.r.smembers("nokey"), set())
        self.r.sadd("s", *[str(i) for i in range(300)])
        self.assertEqual(self.r.smembers("s"), {str(i).encode() for i in range(300)})
        self.assertError(WRONGTYPE, self.r.smembers, "str")

    def test_smembers_resp3_is_a_set(self):
        self.r.sadd("s", "a")
        sock = self.server.raw()
        try:
            sock.sendall(b"HELLO 3\r\n*2\r\n$8\r\nSMEMBERS\r\n$1\r\ns\r\n")
            read_until(sock, b"~1\r\n$1\r\na\r\n")  # the RESP3 set type, or a timeout
        finally:
            sock.close()

    def test_sismember_smismember(self):
        self.r.sadd("s", "a", "b")
        self.assertTrue(self.r.sismember("s", "a"))
        self.assertFalse(self.r.sismember("s", "z"))
        self.assertFalse(self.r.sismember("nokey", "a"))
        self.assertEqual([bool(x) for x in self.r.smismember("s", ["a", "z", "b"])],
                         [True, False, True])
        self.assertEqual([bool(x) for x in self.r.smismember("nokey", ["a"])], [False])
        self.assertError(WRONGTYPE, self.r.sismember, "str", "a")
        self.assertError(WRONGTYPE, self.r.smismember, "str", ["a"])

    def test_scard(self):
        self.assertEqual(self.r.scard("nokey"), 0)
        self.r.sadd("s", "a", "b", "c")
        self.assertEqual(self.r.scard("s"), 3)
        self.assertError(WRONGTYPE, self.r.scard, "str")

    def test_spop(self):
        self.assertIsNone(self.r.spop("nokey"))
        self.assertEqual(self.r.spop("nokey", 2), [])
        members = {b"a", b"b", b"c", b"d"}
        self.r.sadd("s", *members)
        one = self.r.spop("s")
        self.assertIn(one, members)
        two = self.r.spop("s", 2)
        self.assertEqual(len(set(two)), 2)
        self.assertTrue(set(two) <= members - {one})
        self.assertEqual(self.r.scard("s"), 1)
        rest = self.r.spop("s", 5)
        self.assertEqual({one, *two, *rest}, members)
        self.assertEqual(self.r.exists("s"), 0)
        self.assertError("value is out of range, must be positive", self.r.spop, "s", -1)
        self.assertError(WRONGTYPE, self.r.spop, "str")

    def test_srandmember(self):
        self.assertIsNone(self.r.srandmember("nokey"))
        self.assertEqual(self.r.srandmember("nokey", 3), [])
        self.r.sadd("s", "a", "b", "c")
        self.assertIn(self.r.srandmember("s"), {b"a", b"b", b"c"})
        self.assertEqual(sorted(self.r.srandmember("s", 10)), [b"a", b"b", b"c"])
        two = self.r.srandmember("s", 2)
        self.assertEqual(len(set(two)), 2)
        repeats = self.r.srandmember("s", -20)
        self.assertEqual(len(repeats), 20)
        self.assertTrue(set(repeats) <= {b"a", b"b", b"c"})
        self.assertEqual(self.r.srandmember("s", 0), [])
        self.assertEqual(self.r.scard("s"), 3)
        self.assertError("value is not an integer or out of range", self.r.srandmember, "s",
                         "x")
        self.assertError(WRONGTYPE, self.r.srandmember, "str")

    def test_smove(self):
        self.r.sadd("src", "a", "b")
        self.assertTrue(self.r.smove("src", "dst", "a"))
        self.assertFalse(self.r.smove("src", "dst", "zz"))
        self.assertFalse(self.r.smove("nokey", "str", "a"))
        self.assertEqual(self.r.smembers("dst"), {b"a"})
        self.assertTrue(self.r.smove("src", "dst", "b"))
        self.assertEqual(self.r.exists("src"), 0)
        self.assertError(WRONGTYPE, self.r.smove, "dst", "str", "a")
        self.assertError(WRONGTYPE, self.r.smove, "str", "dst", "a")
        self.assertEqual(self.r.smembers("dst"), {b"a", b"b"})

    def test_sinter_sunion_sdiff(self):
        self.r.sadd("a", "1", "2", "3")
        self.r.sadd("b", "2", "3", "4")
        self.assertEqual(self.r.sinter(["a", "b"]), {b"2", b"3"})
        self.assertEqual(self.r.sinter(["a", "nokey"]), set())
        self.assertEqual(self.r.sunion(["a", "b", "nokey"]), {b"1", b"2", b"3", b"4"})
        self.assertEqual(self.r.sdiff(["a", "b"]), {b"1"})
        self.assertEqual(self.r.sdiff(["nokey", "a"]), set())
        for func in (self.r.sinter, self.r.sunion, self.r.sdiff):
            self.assertError(WRONGTYPE, func, ["nokey", "str"])

    def test_store_variants(self):
        self.r.sadd("a", "1", "2", "3")
        self.r.sadd("b", "2", "3", "4")
        self.assertEqual(self.r.sinterstore("d", ["a", "b"]), 2)
        self.assertEqual(self.r.smembers("d"), {b"2", b"3"})
        self.assertEqual(self.r.sunionstore("d", ["a", "b"]), 4)
        self.assertEqual(self.r.sdiffstore("d", ["a", "b"]), 1)
        self.assertEqual(self.r.smembers("d"), {b"1"})
        self.r.expire("str", 100)
        self.assertEqual(self.r.sunionstore("str", ["a"]), 3)  # any type is replaced
        self.assertEqual(self.r.ttl("str"), -1)
        self.assertEqual(self.r.sinterstore("d", ["a", "nokey"]), 0)
        self.assertEqual(self.r.exists("d"), 0)
        self.r.set("s2", "v")
        self.assertError(WRONGTYPE, self.r.sdiffstore, "d", ["a", "s2"])

    def test_sintercard(self):
        self.r.sadd("a", "1", "2", "3")
        self.r.sadd("b", "2", "3", "4")
        self.assertEqual(self.r.sintercard(2, ["a", "b"]), 2)
        self.assertEqual(self.r.sintercard(2, ["a", "b"], limit=1), 1)
        self.assertEqual(self.r.sintercard(2, ["a", "nokey"]), 0)
        self.assertError("numkeys should be greater than 0", self.r.execute_command,
                         "SINTERCARD", 0, "a")
        self.assertError("Number of keys can't be greater than number of args",
                         self.r.execute_command, "SINTERCARD", 3, "a")
        self.assertError("LIMIT can't be negative", self.r.execute_command, "SINTERCARD", 1,
                         "a", "LIMIT", -1)
        self.assertError("syntax error", self.r.execute_command, "SINTERCARD", 1, "a", "X", 1)
        self.assertError(WRONGTYPE, self.r.sintercard, 1, ["str"])

    def test_sscan(self):
        self.r.sadd("small", "apple", "avocado", "banana")
        cursor, members = self.r.sscan("small", 0)
        self.assertEqual(cursor, 0)
        self.assertEqual(set(members), {b"apple", b"avocado", b"banana"})
        self.assertEqual(set(self.r.sscan("small", 0, match="a*")[1]), {b"apple", b"avocado"})
        self.assertEqual(self.r.sscan("nokey", 0), (0, []))
        big = {f"m{i}".encode() for i in range(1000)}
        self.r.sadd("big", *big)
        self.assertEqual(set(self.r.sscan_iter("big", count=20)), big)
        self.assertEqual(set(self.r.sscan_iter("big", match="m99*")),
                         {b"m99", b"m990", b"m991", b"m992", b"m993", b"m994", b"m995",
                          b"m996", b"m997", b"m998", b"m999"})
        self.assertError("invalid cursor", self.r.sscan, "small", "x")
        self.assertError("syntax error", self.r.sscan, "small", 0, count=0)
        self.assertError(WRONGTYPE, self.r.sscan, "str", 0)


if __name__ == "__main__":
    unittest.main()
