"""DUMP and RESTORE in Valkey's payload format, against Debian's redis-server 7.0.

Every type in every encoding redis-server 7.0 writes (strings raw, integer and LZF-compressed;
lists as quicklists of listpacks, compressed nodes and plain nodes; sets as intsets and hash
tables; sorted sets and hashes as listpacks and as skiplists / hash tables) is DUMPed on
redis-server and RESTOREd on Lattice, then DUMPed on Lattice and RESTOREd on redis-server, and
the values compared each way. Also: RESTORE's errors against redis-server's (BUSYKEY, TTL,
IDLETIME/FREQ, checksum, version), TTL and ABSTTL, MIGRATE from redis-server into Lattice,
redis-py's dump/restore, and a RESTORE replicating to another region as ordinary ops.
Streams (tests/integration/stream_data.py: same-fields and deleted entries, many nodes, an
emptied stream, negative seq deltas, consumer groups) both ways with XRANGE, XLEN and XINFO
STREAM compared, and for groups XINFO STREAM FULL's groups and XPENDING; streams written on
Lattice (XADD, XDEL, XTRIM, XSETID) and groups written on Lattice (XGROUP, XREADGROUP, XACK,
XCLAIM) load into redis-server equal; a consumer with an active time of its own (type 21) is
refused by redis-server 7.0 and restored by Lattice.
"""
import time
import unittest

import redis

from differential import Differential
from harness import start_regions, wait_converged, wait_until
from rdb_source import value_of
from stream_data import fill_streams, groups_view, stream_view


def fill_oracle(r):
    """Keys of every type and encoding redis-server 7.0 writes; returns their names."""
    r.config_set("list-compress-depth", "1")  # inner quicklist nodes LZF-compressed
    r.config_set("list-max-listpack-size", "4")  # several quicklist nodes
    r.set("s:raw", "hello world")
    r.set("s:int", "12345")
    r.set("s:neg", "-2000000000")
    r.set("s:lzf", "a" * 200 + "b" * 200)
    r.set("s:bin", bytes(range(256)))
    r.rpush("l:small", "a", "1", "-5", "bbb", "70000", "-2000000000", "123456789012")
    r.rpush("l:nodes", *[f"element-{i}" * 3 for i in range(40)])
    r.rpush("l:plain", "x" * 70000, "y")  # a large element: a plain node
    r.sadd("set:int", 1, 2, 3, -7, 100000, 5000000000)
    r.sadd("set:str", "a", "b", "c")
    r.sadd("set:big", *[f"m{i}" for i in range(300)])
    r.zadd("z:small", {"a": 1.5, "b": -2, "c": 1e100, "d": float("inf")})
    r.zadd("z:big", {f"m{i}": i / 3 for i in range(300)})
    r.hset("h:small", mapping={"f1": "v1", "f2": "22"})
    r.hset("h:big", mapping={f"f{i}": "v" * i for i in range(300)})
    return sorted(k.decode() for k in r.keys("*"))


class DumpRestoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.diff = Differential().__enter__()
        cls.oracle = redis.Redis(port=cls.diff.oracle_port)
        cls.lattice = cls.diff.lattice.client()

    @classmethod
    def tearDownClass(cls):
        cls.diff.__exit__(None, None, None)

    def setUp(self):
        self.oracle.flushall()
        self.lattice.flushall()

    def test_round_trip_every_type_and_encoding(self):
        keys = fill_oracle(self.oracle)
        encodings = {self.oracle.object("encoding", k).decode() for k in keys}
        self.assertTrue({"int", "raw", "embstr", "quicklist", "intset", "hashtable", "listpack",
                         "skiplist"} <= encodings, encodings)
        for key in keys:
            with self.subTest(key=key, encoding=self.oracle.object("encoding", key)):
                payload = self.oracle.dump(key)
                self.assertTrue(self.lattice.restore(key, 0, payload))
                self.assertEqual(value_of(self.lattice, key), value_of(self.oracle, key))
                back = self.lattice.dump(key)
                self.assertTrue(self.oracle.restore(key + ":back", 0, back))
                self.assertEqual(value_of(self.oracle, key + ":back"), value_of(self.oracle, key))
        self.assertIsNone(self.lattice.dump("missing"))

    def test_streams_round_trip_both_ways(self):
        keys = fill_streams(self.oracle)
        for key in keys:
            with self.subTest(key=key):
                payload = self.oracle.dump(key)
                self.assertTrue(self.lattice.restore(key, 0, payload))
                self.assertEqual(stream_view(self.lattice, key), stream_view(self.oracle, key))
                self.assertEqual(groups_view(self.lattice, key), groups_view(self.oracle, key))
                self.assertTrue(self.lattice.restore(key + ":self", 0, self.lattice.dump(key)))
                self.assertEqual(stream_view(self.lattice, key + ":self"),
                                 stream_view(self.lattice, key))
                self.assertEqual(groups_view(self.lattice, key + ":self"),
                                 groups_view(self.lattice, key))
                self.assertTrue(self.oracle.restore(key + ":back", 0, self.lattice.dump(key)))
                back = stream_view(self.oracle, key + ":back")
                self.assertEqual(back, stream_view(self.oracle, key))
                self.assertEqual(self.oracle.xrevrange(key + ":back"), self.oracle.xrevrange(key))
                self.assertEqual(groups_view(self.oracle, key + ":back"),
                                 groups_view(self.oracle, key))
        groups = groups_view(self.lattice, "x:groups")
        self.assertEqual([g[b"name"] for g in groups], [b"g1", b"g2", b"g3"])
        self.assertEqual(groups[0][b"pel-count"], 2)

    def test_streams_written_on_lattice_load_into_redis_server(self):
        self.diff.check([
            ("XADD", "w", "1-1", "a", "1", "b", "2"),
            ("XADD", "w", "1-2", "a", "3", "b", "4"),
            ("XADD", "w", "2-0", "c", "5"),
            ("XADD", "w", "3-0", "a", "6", "b", "7"),
            ("XDEL", "w", "1-2"),
            ("XSETID", "emptied", "0-1"),  # an error on both: no such key
            ("XADD", "emptied", "5-5", "f", "v"),
            ("XDEL", "emptied", "5-5"),
            ("XSETID", "emptied", "9-9", "ENTRIESADDED", "40", "MAXDELETEDID", "6-0"),
        ])
        for i in range(300):
            self.lattice.xadd("big", {"f": i, "g": "x" * (i % 50)}, maxlen=250,
                              approximate=False)
        for key in ("w", "big", "emptied"):
            with self.subTest(key=key):
                self.assertTrue(self.oracle.restore(key + ":l", 0, self.lattice.dump(key)))
                self.assertEqual(stream_view(self.oracle, key + ":l"),
                                 stream_view(self.lattice, key))
                self.assertEqual(self.oracle.xrevrange(key + ":l", count=7),
                                 self.lattice.xrevrange(key, count=7))

    def test_groups_written_on_lattice_load_into_redis_server(self):
        r = self.lattice
        for i in range(1, 7):
            r.xadd("gs", {"n": str(i)}, id=f"{i}-0")
        r.xgroup_create("gs", "readers", id="0")
        r.xreadgroup("readers", "alice", {"gs": ">"}, count=3)
        r.xreadgroup("readers", "bob", {"gs": ">"}, count=2)
        r.xack("gs", "readers", "2-0")
        r.xclaim("gs", "readers", "bob", 0, ["1-0"])
        r.xdel("gs", "3-0")  # a pending entry deleted from the stream stays pending
        r.xgroup_create("gs", "late", id="4-0")
        r.xreadgroup("late", "carol", {"gs": ">"})
        want = groups_view(r, "gs")
        self.assertEqual([g[b"pel-count"] for g in want], [2, 4])
        self.assertEqual(want[1][b"pending"][0][1], b"bob")  # 1-0, claimed by bob
        payload = r.dump("gs")
        self.assertEqual(payload[0], 19)  # every consumer's active time is its seen time
        self.assertTrue(self.oracle.restore("gs", 0, payload))
        self.assertEqual(groups_view(self.oracle, "gs"), want)
        self.assertEqual(stream_view(self.oracle, "gs"), stream_view(r, "gs"))
        self.assertEqual(self.oracle.xreadgroup("readers", "dave", {"gs": ">"}),
                         r.xreadgroup("readers", "dave", {"gs": ">"}))

        # A consumer created without reading has an active time of its own (-1): type 21 in an
        # RDB 11 payload, which redis-server 7.0 refuses and Lattice (as Valkey) restores.
        r.execute_command("XGROUP", "CREATECONSUMER", "gs", "late", "idle")
        payload = r.dump("gs")
        self.assertEqual(payload[0], 21)
        self.assertEqual(int.from_bytes(payload[-10:-8], "little"), 11)
        with self.assertRaisesRegex(redis.ResponseError, "DUMP payload version or checksum"):
            self.oracle.restore("gs21", 0, payload)
        self.assertTrue(r.restore("gs21", 0, payload))
        self.assertEqual(groups_view(r, "gs21"), groups_view(r, "gs"))
        consumers = r.xinfo_consumers("gs21", "late")
        self.assertEqual([c["inactive"] for c in consumers if c["name"] == b"idle"], [-1])

    def test_errors_match_redis_server(self):
        self.oracle.set("src", "value")
        good = self.oracle.dump("src")
        bad_crc = good[:-1] + bytes([good[-1] ^ 1])
        bad_version = good[:-10] + b"\x63\x00" + good[-8:]  # version 99, checksum unchanged
        self.diff.check([
            ("SET", "busy", "x"),
            ("RESTORE", "busy", "0", good),
            ("RESTORE", "new", "-1", good),
            ("RESTORE", "new", "abc", good),
            ("RESTORE", "new", "0", bad_crc),
            ("RESTORE", "new", "0", bad_version),
            ("RESTORE", "new", "0", b"short"),
            ("RESTORE", "new", "0", good, "IDLETIME", "-1"),
            ("RESTORE", "new", "0", good, "FREQ", "256"),
            ("RESTORE", "new", "0", good, "IDLETIME", "1", "FREQ", "1"),
            ("RESTORE", "new", "0", good, "BOGUS"),
            ("RESTORE", "new", "0", good, "REPLACE", "IDLETIME", "5"),
            ("GET", "new"),
            ("RESTORE", "busy", "0", good, "REPLACE", "FREQ", "7"),
            ("GET", "busy"),
            ("RESTORE", "gone", "1000", good, "ABSTTL"),  # long past: not created
            ("EXISTS", "gone"),
            ("RESTORE", "busy", "1000", good, "ABSTTL", "REPLACE"),  # past: deletes busy
            ("EXISTS", "busy"),
            ("DUMP", "nothing"),
        ])

    def test_ttl(self):
        self.oracle.set("src", "value")
        payload = self.oracle.dump("src")
        self.lattice.restore("t1", 50_000, payload)
        self.assertTrue(40_000 < self.lattice.pttl("t1") <= 50_000)
        at = int(time.time() * 1000) + 100_000
        self.lattice.restore("t2", at, payload, absttl=True)
        self.assertEqual(self.lattice.pexpiretime("t2"), at)

    def test_migrate_from_redis_server(self):
        fill_oracle(self.oracle)
        port = self.diff.lattice.port
        self.assertEqual(self.oracle.migrate("127.0.0.1", port, "h:big", 0, 5000), b"OK")
        self.assertEqual(self.lattice.hlen("h:big"), 300)
        self.assertFalse(self.oracle.exists("h:big"))
        names = ["l:nodes", "set:int", "z:small", "s:lzf"]
        self.assertEqual(self.oracle.migrate("127.0.0.1", port, names, 0, 5000, copy=True),
                         b"OK")
        for key in names:
            self.assertEqual(value_of(self.lattice, key), value_of(self.oracle, key))
        # REPLACE over an existing key; without it the target's BUSYKEY comes back.
        with self.assertRaises(redis.ResponseError) as busy:
            self.oracle.migrate("127.0.0.1", port, "l:nodes", 0, 5000, copy=True)
        self.assertIn("BUSYKEY", str(busy.exception))
        self.assertEqual(
            self.oracle.migrate("127.0.0.1", port, "l:nodes", 0, 5000, copy=True, replace=True),
            b"OK")

    def test_redis_py_dump_restore_on_lattice(self):
        self.lattice.zadd("z", {"a": 1, "b": 2})
        payload = self.lattice.dump("z")
        self.assertTrue(self.lattice.restore("z2", 0, payload))
        self.assertEqual(self.lattice.zrange("z2", 0, -1, withscores=True),
                         [(b"a", 1.0), (b"b", 2.0)])
        with self.assertRaises(redis.ResponseError):
            self.lattice.restore("z2", 0, payload)
        self.assertTrue(self.lattice.restore("z2", 0, payload, replace=True))

    def test_idletime_and_freq_are_applied_as_redis_server_does(self):
        for server in (self.oracle, self.lattice):
            try:
                self.check_idletime_and_freq(server)
            finally:
                server.config_set("maxmemory-policy", "noeviction")

    def check_idletime_and_freq(self, server):
        server.set("src", "v")
        payload = server.dump("src")
        server.config_set("maxmemory-policy", "allkeys-lru")
        self.assertTrue(server.restore("idle", 0, payload, idletime=1000))
        # FREQ is ignored under an LRU policy, IDLETIME under an LFU one.
        self.assertTrue(server.restore("lru-freq", 0, payload, frequency=100))
        server.config_set("maxmemory-policy", "allkeys-lfu")
        self.assertTrue(server.restore("freq", 0, payload, frequency=100))
        self.assertTrue(server.restore("lfu-idle", 0, payload, idletime=1000))
        self.assertEqual(server.object("freq", "freq"), 100, server)
        self.assertEqual(server.object("freq", "lfu-idle"), 5, server)  # LFU_INIT_VAL
        server.config_set("maxmemory-policy", "noeviction")
        self.assertGreaterEqual(server.object("idletime", "idle"), 1000, server)
        self.assertLessEqual(server.object("idletime", "idle"), 1002, server)
        self.assertLessEqual(server.object("idletime", "lru-freq"), 2, server)


class RestoreReplicatesTest(unittest.TestCase):
    def test_restore_reaches_every_region(self):
        servers = start_regions(2)
        try:
            a, b = (s.client() for s in servers)
            a.rpush("src", "x", "y", "z")
            payload = a.dump("src")
            self.assertTrue(b.restore("copy", 0, payload))
            wait_until(lambda: a.exists("copy"), what="RESTORE replicated")
            self.assertEqual(a.lrange("copy", 0, -1), [b"x", b"y", b"z"])
            wait_converged(servers)
        finally:
            for s in servers:
                s.cleanup()


if __name__ == "__main__":
    unittest.main()
