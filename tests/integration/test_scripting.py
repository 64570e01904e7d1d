"""Lua scripting against real lattice-server processes: what client libraries do with it (redis-py's
Lock and register_script, redis-cli --eval), a script's writes replicating to other regions as
ordinary ops, and a differential run of EVAL against Debian's redis-server 7.0 for every reply
type and the common errors.
"""
import hashlib
import os
import subprocess
import tempfile
import threading
import unittest

import redis

from differential import Differential
from harness import ServerTestCase, start_regions, wait_until


class ClientLibraries(ServerTestCase):
    def setUp(self):
        self.r = self.server.client()
        self.r.flushall()

    def test_redis_py_lock_acquire_extend_release(self):
        lock = self.r.lock("resource", timeout=30)
        self.assertTrue(lock.acquire(blocking=False))
        self.assertTrue(lock.owned())
        other = self.r.lock("resource", timeout=30)
        self.assertFalse(other.acquire(blocking=False))
        self.assertTrue(lock.extend(10))
        self.assertGreater(self.r.pttl("resource"), 30000)
        self.assertTrue(lock.reacquire())
        lock.release()
        self.assertIsNone(self.r.get("resource"))
        with self.assertRaises(redis.exceptions.LockError):
            other.release()  # not held: the release script refuses it
        with self.r.lock("resource", timeout=5, blocking_timeout=5):
            self.assertIsNotNone(self.r.get("resource"))

    def test_lock_is_exclusive_between_threads(self):
        counter = {"value": 0, "max": 0, "inside": 0}

        def worker():
            for _ in range(20):
                with redis.Redis(port=self.server.port).lock("mutex", timeout=10,
                                                              blocking_timeout=10):
                    counter["inside"] += 1
                    counter["max"] = max(counter["max"], counter["inside"])
                    counter["value"] += 1
                    counter["inside"] -= 1

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        self.assertEqual(counter["value"], 80)
        self.assertEqual(counter["max"], 1)

    def test_register_script_uses_evalsha_then_falls_back(self):
        add = self.r.register_script(
            "return redis.call('incrby', KEYS[1], ARGV[1])")
        self.assertEqual(add(keys=["n"], args=[5]), 5)
        self.r.script_flush()
        self.assertEqual(add(keys=["n"], args=[2]), 7)  # NOSCRIPT, then EVAL
        self.assertEqual(self.r.script_exists(add.sha), [True])

    def test_redis_cli_eval(self):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write("redis.call('set', KEYS[1], ARGV[1])\nreturn redis.call('get', KEYS[1])\n")
        try:
            done = subprocess.run(["redis-cli", "-p", str(self.server.port), "--eval", f.name,
                                   "k", ",", "hello"], capture_output=True, text=True, timeout=30)
        finally:
            os.unlink(f.name)
        self.assertEqual(done.stdout.strip(), "hello")

    def test_script_kill_without_script(self):
        with self.assertRaises(redis.exceptions.ResponseError) as raised:
            self.r.script_kill()
        self.assertIn("NOTBUSY", str(raised.exception))


class Replication(unittest.TestCase):
    def test_script_writes_reach_every_region(self):
        servers = start_regions(3)
        try:
            a = servers[0].client()
            script = ("redis.call('set', KEYS[1], ARGV[1]) "
                      "redis.call('hset', KEYS[2], 'f', ARGV[1]) "
                      "redis.call('sadd', KEYS[3], ARGV[1]) "
                      "return redis.call('incr', 'counter')")
            self.assertEqual(a.eval(script, 3, "s", "h", "set", "v"), 1)
            for server in servers[1:]:
                c = server.client()
                wait_until(lambda: c.get("counter") == b"1", what="the script's writes")
                self.assertEqual(c.get("s"), b"v")
                self.assertEqual(c.hget("h", "f"), b"v")
                self.assertEqual(c.smembers("set"), {b"v"})
                # The script itself is not replicated: only its effects are.
                self.assertEqual(c.script_exists(hashlib.sha1(script.encode()).hexdigest()), [False])
        finally:
            for server in servers:
                server.cleanup()


# Reply types and errors that Valkey 9 and Redis 7.0 agree on (see docs/commands/scripting.md
# for the texts Valkey changed, which Lattice follows and the oracle does not).
DIFFERENTIAL = [
    ["SET", "s", "abc"],
    ["HSET", "h", "f", "v"],
    ["EVAL", "return 'x'", "0"],
    ["EVAL", "return 3.99", "0"],
    ["EVAL", "return -7", "0"],
    ["EVAL", "return true", "0"],
    ["EVAL", "return false", "0"],
    ["EVAL", "return nil", "0"],
    ["EVAL", "return {1, 2, {3, 'x'}, nil, 4}", "0"],
    ["EVAL", "return {ok='fine'}", "0"],
    ["EVAL", "return {err='bad thing'}", "0"],
    ["EVAL", "return redis.status_reply('st')", "0"],
    ["EVAL", "return redis.error_reply('MY err')", "0"],
    ["EVAL", "return {double=1.5}", "0"],
    ["EVAL", "return redis.call('get', 's')", "0"],
    ["EVAL", "return redis.call('get', 'missing')", "0"],
    ["EVAL", "return redis.call('hgetall', 'h')", "0"],
    ["EVAL", "return redis.call('set', KEYS[1], ARGV[1])", "1", "k", "v"],
    ["EVAL", "return {KEYS[1], ARGV[1], ARGV[2]}", "1", "a", "b", "c"],
    ["EVAL", "return redis.call('incr', 's')", "0"],
    ["EVAL", "return redis.pcall('incr', 's')", "0"],
    ["EVAL", "return {pcall(redis.call, 'incr', 's')}", "0"],
    ["EVAL", "return redis.call('nosuch')", "0"],
    ["EVAL", "return redis.call('get')", "0"],
    ["EVAL", "return redis.call('multi')", "0"],
    ["EVAL", "error('boom')", "0"],
    ["EVAL", "error({err='MY boom'})", "0"],
    ["EVAL", "x = 1", "0"],
    ["EVAL", "return undefined_global", "0"],
    ["EVAL", "return 1 +", "0"],
    ["EVAL", "return 1", "2", "a"],
    ["EVAL", "return 1", "-1"],
    ["EVAL", "return 1", "x"],
    ["EVAL", "return 1"],
    ["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"],
    ["SCRIPT", "LOAD", "return 'loaded'"],
    ["EVALSHA", "b534286061d4b9e4026607613b95c06c06015ae8", "0"],
    ["SCRIPT", "EXISTS", "b534286061d4b9e4026607613b95c06c06015ae8", "ffff"],
    ["SCRIPT", "KILL"],
    ["EVAL_RO", "return redis.call('get', 's')", "0"],
    ["EVAL_RO", "return redis.call('set', 's', 'x')", "0"],
    ["EVAL", "#!lua flags=no-writes\nreturn redis.call('get', 's')", "0"],
    ["EVAL_RO", "#!lua\nreturn 1", "0"],
    ["EVAL", "return cjson.encode({1, 2, 'three'})", "0"],
    ["EVAL", "return cjson.decode('{\"a\":[1,2]}')['a'][2]", "0"],
    ["EVAL", "return bit.band(12, 10)", "0"],
    ["EVAL", "return redis.sha1hex('abc')", "0"],
    ["EVAL", "return loadstring('return 5')()", "0"],
    ["EVAL", "return string.format('%d-%s', 3, 'x')", "0"],
    ["EVAL", "return table.concat({'a', 'b'}, ',')", "0"],
    ["EVAL", "return tonumber('0x10')", "0"],
    ["SCRIPT", "FLUSH"],
    ["SCRIPT", "EXISTS", "b534286061d4b9e4026607613b95c06c06015ae8"],
    ["GET", "k"],
]


class DifferentialEval(unittest.TestCase):
    def test_eval_replies_match_the_oracle(self):
        with Differential() as diff:
            diff.check(DIFFERENTIAL)


if __name__ == "__main__":
    unittest.main()
