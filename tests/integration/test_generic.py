"""Generic keyspace commands against a real lattice-server, through redis-py."""
import time
import unittest

import redis

from harness import ServerProcess, ServerTestCase, wait_until


class GenericCommandsTest(ServerTestCase):
    server_args = ("--enable-debug-command", "yes")

    def setUp(self):
        self.r = self.server.client(decode_responses=True)
        self.r.flushall()

    def tearDown(self):
        self.r.close()

    def test_del_unlink_exists_touch_type(self):
        r = self.r
        r.set("s", "v")
        r.hset("h", "f", "v")
        r.sadd("set", "a")
        r.zadd("z", {"m": 1})
        self.assertEqual([r.type(k) for k in ("s", "h", "set", "z", "nokey")],
                         ["string", "hash", "set", "zset", "none"])
        self.assertEqual(r.exists("s", "s", "nokey"), 2)
        self.assertEqual(r.touch("s", "h", "nokey"), 2)
        self.assertEqual(r.delete("s", "nokey"), 1)
        self.assertEqual(r.unlink("h", "set", "z"), 3)
        self.assertEqual(r.dbsize(), 0)

    def test_rename_renamenx(self):
        r = self.r
        with self.assertRaisesRegex(redis.ResponseError, "no such key"):
            r.rename("a", "b")
        r.set("a", "1", ex=100)
        self.assertTrue(r.rename("a", "b"))
        self.assertEqual(r.get("b"), "1")
        self.assertGreater(r.ttl("b"), 90)
        r.set("c", "2")
        self.assertFalse(r.renamenx("b", "c"))
        self.assertTrue(r.renamenx("b", "d"))
        self.assertEqual(r.keys("*").__len__(), 2)

    def test_copy_and_move(self):
        r = self.r
        r.sadd("s", "a", "b")
        self.assertTrue(r.copy("s", "t"))
        self.assertFalse(r.copy("s", "t"))
        r.set("u", "x")
        self.assertTrue(r.copy("u", "t", replace=True))
        self.assertEqual(r.get("t"), "x")
        self.assertTrue(r.copy("s", "s", destination_db=2))
        other = self.server.client(db=2, decode_responses=True)
        self.assertEqual(other.smembers("s"), {"a", "b"})
        with self.assertRaisesRegex(redis.ResponseError, "source and destination"):
            r.copy("s", "s")
        self.assertTrue(r.move("u", 3))
        self.assertFalse(r.exists("u"))
        self.assertFalse(r.move("nokey", 3))
        with self.assertRaisesRegex(redis.ResponseError, "DB index is out of range"):
            r.move("s", 99)
        other.close()

    def test_randomkey_swapdb(self):
        r = self.r
        self.assertIsNone(r.randomkey())
        r.set("only", "1")
        self.assertEqual(r.randomkey(), "only")
        self.assertTrue(r.swapdb(0, 1))
        self.assertIsNone(r.randomkey())
        self.assertTrue(r.swapdb(1, 0))
        self.assertEqual(r.randomkey(), "only")

    def test_scan_and_keys(self):
        r = self.r
        for i in range(300):
            r.set(f"key:{i}", i)
        r.hset("hash", "f", "v")
        self.assertEqual(sorted(r.scan_iter(match="key:*", count=17)),
                         sorted(f"key:{i}" for i in range(300)))
        self.assertEqual(list(r.scan_iter(_type="hash")), ["hash"])
        self.assertEqual(len(r.keys("key:1*")), 111)
        with self.assertRaisesRegex(redis.ResponseError, "invalid cursor"):
            r.execute_command("SCAN", "abc")
        with self.assertRaisesRegex(redis.ResponseError, "syntax error"):
            r.execute_command("SCAN", "0", "COUNT", "0")

    def test_expire_family(self):
        r = self.r
        r.set("k", "v")
        self.assertTrue(r.expire("k", 100))
        self.assertEqual(r.ttl("k"), 100)
        self.assertFalse(r.expire("k", 50, gt=True))
        self.assertTrue(r.expire("k", 50, lt=True))
        self.assertFalse(r.expire("k", 70, nx=True))
        self.assertTrue(r.pexpire("k", 70000, xx=True))
        self.assertGreater(r.pttl("k"), 60000)
        at = int(time.time()) + 1000
        self.assertTrue(r.expireat("k", at))
        self.assertEqual(r.expiretime("k"), at)
        self.assertTrue(r.pexpireat("k", at * 1000 + 5))
        self.assertEqual(r.pexpiretime("k"), at * 1000 + 5)
        self.assertTrue(r.persist("k"))
        self.assertEqual(r.ttl("k"), -1)
        self.assertEqual(r.ttl("nokey"), -2)
        with self.assertRaisesRegex(redis.ResponseError, "NX and XX, GT or LT"):
            r.execute_command("EXPIRE", "k", "10", "NX", "XX")
        with self.assertRaisesRegex(redis.ResponseError, "invalid expire time in 'expire'"):
            r.execute_command("EXPIRE", "k", "9223372036854775807")
        self.assertTrue(r.expire("k", -1))
        self.assertFalse(r.exists("k"))

    def test_object(self):
        r = self.r
        r.set("i", 123)
        r.set("e", "abc")
        r.set("raw", "x" * 100)
        r.sadd("ints", 1, 2, 3)
        r.zadd("z", {"m": 1})
        r.hset("h", "f", "v")
        self.assertEqual([r.object("encoding", k) for k in ("i", "e", "raw", "ints", "z", "h")],
                         ["int", "embstr", "raw", "intset", "listpack", "listpack"])
        self.assertIsNone(r.object("encoding", "nokey"))
        self.assertEqual(r.object("refcount", "raw"), 1)
        self.assertEqual(r.object("idletime", "raw"), 0)
        code, out = self.server.cli("OBJECT", "HELP")  # redis-py's OBJECT callback needs a key
        self.assertEqual(code, 0)
        self.assertIn("ENCODING <key>", out)

    def test_debug_digest_and_keyslot(self):
        r = self.r
        self.assertEqual(r.execute_command("DEBUG", "DIGEST"), "0" * 40)
        r.set("a", "1")
        self.assertEqual(r.execute_command("DEBUG", "DIGEST"),
                         "943d800368fb9c0e951138f1bc0e313ac769d91f")
        digest = r.execute_command("DEBUG", "DIGEST-VALUE", "a", "nokey")
        self.assertEqual(digest, ["b4fc66738120fba0b5aa500ab5c2bf89cea1c5da", "0" * 40])
        self.assertEqual(r.execute_command("CLUSTER", "KEYSLOT", "somekey"), 11058)
        self.assertEqual(r.cluster("keyslot", "foo{hash_tag}"), 2515)

    def test_active_expiry_counts_in_info(self):
        """Server::Cron reclaims keys nobody reads: expired_keys rises without any access."""
        r = self.r
        before = r.info("stats")["expired_keys"]
        for i in range(20):
            r.set(f"short:{i}", "v", px=30)
        r.set("long", "v", ex=1000)
        wait_until(lambda: r.info("stats")["expired_keys"] >= before + 20, timeout=10,
                   what="active expiry of 20 keys")
        # Reclaimed, not just hidden: DBSIZE counts entries, including expired ones not reclaimed.
        wait_until(lambda: r.dbsize() == 1, timeout=10, what="DBSIZE back to 1")
        self.assertEqual(r.keys("*"), ["long"])


class DebugProtectionTest(unittest.TestCase):
    def test_debug_refused_by_default(self):
        server = ServerProcess().start()
        try:
            r = server.client()
            with self.assertRaisesRegex(redis.ResponseError, "DEBUG command not allowed"):
                r.execute_command("DEBUG", "DIGEST")
            r.close()
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
