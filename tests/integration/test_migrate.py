"""MIGRATE from a real lattice-server to Debian's redis-server (Valkey's value copy: DUMP, then
RESTORE on the target, then DEL here unless COPY; docs/commands/generic.md), streams with their
consumer groups included. The target's replies and the error texts are compared with what
redis-server itself does as a MIGRATE source."""
import shutil
import socket
import subprocess
import tempfile
import unittest

import redis

from differential import Differential
from harness import ServerProcess, free_port, wait_until
from stream_data import groups_view, stream_view


class RedisTarget:
    """A redis-server on loopback to migrate into, stopped by its PID."""

    def __init__(self, *extra):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="lattice-migrate-")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def up():
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        wait_until(up, what="redis-server target")

    def client(self, **kwargs):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10, **kwargs)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class MigrateToRedis(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.lattice = ServerProcess().start()
        cls.target = RedisTarget()
        cls.locked = RedisTarget("--requirepass", "sesame")

    @classmethod
    def tearDownClass(cls):
        cls.lattice.cleanup()
        cls.target.stop()
        cls.locked.stop()

    def setUp(self):
        self.src = self.lattice.client()
        self.dst = self.target.client()
        self.src.flushall()
        self.dst.flushall()

    def migrate(self, *args, port=None):
        return self.src.execute_command("MIGRATE", "127.0.0.1", port or self.target.port, *args)

    def test_a_key_moves_with_its_ttl(self):
        self.src.set("m:s", "value", px=60000)
        self.assertEqual(self.migrate("m:s", 0, 5000), b"OK")
        self.assertIsNone(self.src.get("m:s"))
        self.assertEqual(self.dst.get("m:s"), b"value")
        self.assertTrue(0 < self.dst.pttl("m:s") <= 60000)

    def test_keys_of_every_type_copy_and_stay(self):
        self.src.hset("m:h", mapping={"f1": "a", "f2": "b"})
        self.src.sadd("m:set", "x", "y")
        self.src.zadd("m:z", {"p": 1.5, "q": 2})
        self.src.rpush("m:l", "1", "2", "3")
        self.src.set("m:n", 42)
        keys = ["m:h", "m:set", "m:z", "m:l", "m:n", "m:missing"]
        self.assertEqual(self.migrate("", 3, 5000, "COPY", "KEYS", *keys), b"OK")
        db3 = redis.Redis(host="127.0.0.1", port=self.target.port, db=3)
        self.assertEqual(db3.hgetall("m:h"), {b"f1": b"a", b"f2": b"b"})
        self.assertEqual(db3.smembers("m:set"), {b"x", b"y"})
        self.assertEqual(db3.zrange("m:z", 0, -1, withscores=True), [(b"p", 1.5), (b"q", 2.0)])
        self.assertEqual(db3.lrange("m:l", 0, -1), [b"1", b"2", b"3"])
        self.assertEqual(db3.get("m:n"), b"42")
        self.assertEqual(db3.exists("m:missing"), 0)
        self.assertEqual(self.src.exists(*keys[:5]), 5)  # COPY keeps them here

    def test_a_stream_moves_with_its_consumer_groups(self):
        for i in range(1, 6):
            self.src.xadd("m:x", {"n": i}, id=f"{i}-0")
        self.src.xgroup_create("m:x", "g", id="0")
        self.src.xreadgroup("g", "c1", {"m:x": ">"}, count=2)
        self.src.xreadgroup("g", "c2", {"m:x": ">"}, count=2)
        self.src.xack("m:x", "g", "3-0")
        self.src.xgroup_create("m:x", "h", id="$")
        want = groups_view(self.src, "m:x")
        want_stream = stream_view(self.src, "m:x")
        self.assertEqual(self.migrate("m:x", 0, 5000), b"OK")
        self.assertEqual(self.src.exists("m:x"), 0)
        self.assertEqual(groups_view(self.dst, "m:x"), want)
        self.assertEqual(stream_view(self.dst, "m:x"), want_stream)
        self.assertEqual(self.dst.xpending("m:x", "g")["pending"], 3)

        # A consumer with an active time of its own needs type 21, which redis-server 7.0
        # refuses: the error is the target's, and the key stays here.
        self.src.xadd("m:y", {"n": 1})
        self.src.xgroup_create("m:y", "g", id="0")
        self.src.execute_command("XGROUP", "CREATECONSUMER", "m:y", "g", "idle")
        with self.assertRaisesRegex(redis.ResponseError, "^Target instance replied with error: "
                                    "ERR DUMP payload version or checksum are wrong"):
            self.migrate("m:y", 0, 5000)
        self.assertEqual(self.src.exists("m:y"), 1)
        self.assertEqual(self.dst.exists("m:y"), 0)

    def test_an_existing_target_key_needs_replace(self):
        self.src.set("m:busy", "new")
        self.src.set("m:free", "moved")
        self.dst.set("m:busy", "old")
        with self.assertRaisesRegex(redis.ResponseError,
                                    "^Target instance replied with error: BUSYKEY"):
            self.migrate("", 0, 5000, "KEYS", "m:busy", "m:free")
        # The key the target refused stays; the one it took is gone from here (Valkey's rule).
        self.assertEqual(self.src.get("m:busy"), b"new")
        self.assertIsNone(self.src.get("m:free"))
        self.assertEqual(self.dst.get("m:free"), b"moved")
        self.assertEqual(self.migrate("m:busy", 0, 5000, "REPLACE"), b"OK")
        self.assertEqual(self.dst.get("m:busy"), b"new")

    def test_auth_and_nokey_and_unreachable(self):
        self.src.set("m:a", "1")
        with self.assertRaisesRegex(redis.ResponseError,
                                    "^Target instance replied with error: (WRONGPASS|NOAUTH)"):
            self.migrate("m:a", 0, 5000, "AUTH", "wrong", port=self.locked.port)
        self.assertEqual(self.migrate("m:a", 0, 5000, "AUTH2", "default", "sesame",
                                      port=self.locked.port), b"OK")
        self.assertEqual(self.locked.client(password="sesame").get("m:a"), b"1")
        self.assertEqual(self.migrate("m:a", 0, 5000), b"NOKEY")
        self.src.set("m:b", "2")
        closed = free_port()
        with self.assertRaisesRegex(redis.ResponseError, "error or timeout connecting to the client"):
            self.migrate("m:b", 0, 500, port=closed)
        self.assertEqual(self.src.get("m:b"), b"2")

    def test_other_clients_are_served_while_one_migrates(self):
        # The exchange runs beside the event loop: a second client's command is answered while
        # the first waits for a target that accepts and never replies.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        try:
            self.src.set("m:slow", "v")
            import threading
            outcome = {}

            def run():
                try:
                    self.lattice.client().execute_command(
                        "MIGRATE", "127.0.0.1", silent.getsockname()[1], "m:slow", 0, 1500)
                except redis.ResponseError as error:
                    outcome["error"] = str(error)
            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            wait_until(lambda: int(self.src.info("clients")["blocked_clients"]) == 1,
                       what="MIGRATE waiting")
            self.assertTrue(self.src.ping())
            thread.join(timeout=10)
            self.assertFalse(thread.is_alive())
            self.assertRegex(outcome.get("error", ""), "error or timeout reading from target instance")
            self.assertEqual(self.src.get("m:slow"), b"v")
        finally:
            silent.close()


class MigrateErrors(unittest.TestCase):

    def test_errors_as_redis_server(self):
        with Differential() as diff:
            diff.check([
                ["MIGRATE", "127.0.0.1", "1", "k", "0", "1000", "BOGUS"],
                ["MIGRATE", "127.0.0.1", "1", "k", "0", "1000", "KEYS", "a"],
                ["MIGRATE", "127.0.0.1", "1", "k", "0", "x"],
                ["MIGRATE", "127.0.0.1", "1", "k", "y", "1000"],
                ["MIGRATE", "127.0.0.1", "1", "k", "0", "1000", "AUTH"],
                ["MIGRATE", "127.0.0.1", "1", "k", "0", "1000", "AUTH2", "u"],
                ["MIGRATE", "127.0.0.1", "1", "nosuch", "0", "1000"],
                ["MIGRATE", "127.0.0.1", "1", "", "0", "1000", "KEYS", "nosuch1", "nosuch2"],
            ])


if __name__ == "__main__":
    unittest.main()
