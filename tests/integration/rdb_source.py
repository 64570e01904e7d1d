"""A Debian redis-server in a temporary dir on its own loopback port, as the source of RDB files
(SAVE) and, later, as a primary to replicate from; and a dataset of every type Lattice holds, in
every encoding redis-server 7.0 writes, with TTLs, in several dbs, and a stream with consumer
groups. Used by the --import-rdb and
REPLICAOF tests and by scripts/make-rdb-corpus (the rdb_file fuzz target's seeds).

Stopped by the PID we started; every wait is a bounded poll.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import redis

from harness import free_port, wait_until
from stream_data import groups_view

FUNCTION_LIBRARY = ("#!lua name=movein\n"
                    "redis.register_function('movein_echo', function(keys, args) return args[1] end)")


class RedisSource:
    def __init__(self, *args):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="lattice-rdb-source-")
        self.args = list(args)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}")
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        wait_until(up, what=f"redis-server on port {self.port}")
        return self

    def client(self, db=0):
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=30)

    def save(self):
        """SAVE, then the dump file's path."""
        self.client().save()
        return os.path.join(self.dir, "dump.rdb")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def fill(source, far_ttl_ms=3_600_000):
    """Keys of every type and encoding in dbs 0, 1 and 5, some with TTLs (far enough ahead to
    survive the test), a function library, and one stream with a consumer group (two entries
    pending for one consumer; fuzz/corpus/rdb_file/every-type.rdb was written from this, and
    tests/store/rdb_file_test.cc knows it)."""
    r = source.client()
    r.config_set("list-compress-depth", "1")  # inner quicklist nodes LZF-compressed
    r.config_set("list-max-listpack-size", "4")  # several quicklist nodes
    for db in (0, 1, 5):
        c = source.client(db)
        p = f"db{db}:"
        c.set(p + "s:raw", "hello world")
        c.set(p + "s:int", "12345")
        c.set(p + "s:neg", "-2000000000")
        c.set(p + "s:lzf", "a" * 200 + "b" * 200)
        c.set(p + "s:bin", bytes(range(256)))
        c.set(p + "s:ttl", "expiring", px=far_ttl_ms)
        c.rpush(p + "l:small", "a", "1", "-5", "bbb", "70000", "-2000000000", "123456789012")
        c.rpush(p + "l:nodes", *[f"element-{i}" * 3 for i in range(40)])
        c.rpush(p + "l:plain", "x" * 70000, "y")
        c.sadd(p + "set:int", 1, 2, 3, -7, 100000, 5000000000)
        c.sadd(p + "set:str", "a", "b", "c")
        c.sadd(p + "set:big", *[f"m{i}" for i in range(300)])
        c.zadd(p + "z:small", {"a": 1.5, "b": -2, "c": 1e100, "d": float("inf")})
        c.zadd(p + "z:big", {f"m{i}": i / 3 for i in range(300)})
        c.hset(p + "h:small", mapping={"f1": "v1", "f2": "22"})
        c.hset(p + "h:big", mapping={f"f{i}": "v" * i for i in range(300)})
        c.pexpire(p + "h:small", far_ttl_ms)
        c.pexpire(p + "z:big", far_ttl_ms)
    r.xadd("stream:1", {"a": "1"})
    r.xadd("stream:1", {"b": "2"})
    r.xgroup_create("stream:1", "group", id="0")
    r.xreadgroup("group", "consumer", {"stream:1": ">"})
    r.function_load(FUNCTION_LIBRARY)


def value_of(r, key):
    """(type, value) in a comparable form."""
    kind = r.type(key).decode()
    if kind == "string":
        return kind, r.get(key)
    if kind == "list":
        return kind, r.lrange(key, 0, -1)
    if kind == "set":
        return kind, sorted(r.smembers(key))
    if kind == "zset":
        return kind, r.zrange(key, 0, -1, withscores=True)
    if kind == "hash":
        return kind, sorted(r.hgetall(key).items())
    if kind == "stream":
        info = r.execute_command("XINFO", "STREAM", key)
        meta = dict(zip(info[::2], info[1::2]))
        return kind, (r.xrange(key), meta[b"last-generated-id"], meta[b"entries-added"],
                      meta[b"max-deleted-entry-id"], groups_view(r, key))
    return kind, None


def snapshot(r, types=("string", "list", "set", "zset", "hash", "stream")):
    """Every key of r's current db whose type Lattice holds: {key: (type, value, has_ttl)}."""
    out = {}
    for key in r.scan_iter(count=1000):
        kind, value = value_of(r, key)
        if kind in types:
            out[key] = (kind, value, r.pttl(key) > 0)
    return out


def watch_loading(test, server, total_bytes, keys, timeout=120):
    """Polls `server` (bounded in time) while it loads a dataset of `keys` keys from an RDB of
    `total_bytes`, until its DBSIZE reaches `keys`; returns how many polls saw -LOADING. While
    loading: a read gets Valkey's LOADING error, and INFO persistence shows loading:1 with
    Valkey's loading_* fields (checked the first time INFO answers while still loading)."""
    client = server.client()
    seen = 0
    info = None
    deadline = time.monotonic() + timeout
    while True:
        test.assertLess(time.monotonic(), deadline, f"{keys} keys not loaded in {timeout}s")
        try:
            if client.dbsize() == keys:
                break
        except redis.exceptions.BusyLoadingError as error:
            seen += 1
            test.assertEqual(str(error), "Valkey is loading the dataset in memory")
        if info is None:
            polled = client.info("persistence")
            if polled["loading"] == 1:
                info = polled
        time.sleep(0.005)
    test.assertIsNotNone(info, "INFO persistence never answered loading:1")
    if total_bytes is None:  # a replica's transfer: its size is the primary's business
        total_bytes = info["loading_total_bytes"]
    test.assertEqual(info["loading_total_bytes"], total_bytes)
    test.assertTrue(0 <= info["loading_loaded_bytes"] <= total_bytes)
    test.assertTrue(0 <= float(info["loading_loaded_perc"]) <= 100)
    test.assertGreaterEqual(info["loading_eta_seconds"], 0)
    test.assertGreater(info["loading_start_time"], 0)
    return seen
