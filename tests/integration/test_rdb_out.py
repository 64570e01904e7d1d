"""The way out of Lattice (issue #23): SYNC and PSYNC served, on real processes.

- `redis-cli --rdb FILE` from region a of a three-region shard, with writes made in all three
  regions: Debian's redis-server (a temporary dir, its own port) loads the file with every key
  of every db equal to what the region shows, TTLs and streams (entries, metadata and consumer
  groups with pending entries) included.
- A redis-server started with `replicaof 127.0.0.1 <region a>` follows the region (+FULLRESYNC,
  the RDB, then the stream) while writes go to regions a and b; it ends equal, db by db; ROLE and
  INFO replication on region a list it; a link killed on the replica resumes with +CONTINUE.
- The region's data dir keeps no temporary sync file afterwards.
- Hash field TTLs (#21): DUMP of such a hash is a version 80 payload that RESTORE takes back
  with the same field TTLs (and redis-server 7.0 refuses, as it refuses Valkey 9's); redis-cli
  --rdb of a region holding one is a VALKEY080 file that --import-rdb loads back equal.

Every wait is a bounded poll; processes are stopped by the PID we started.
"""
import os
import shutil
import subprocess
import unittest

from harness import ServerProcess, info_fields, start_regions, wait_converged, wait_until
from rdb_source import RedisSource, snapshot

DBS = (0, 1, 5)
FAR_TTL_MS = 3_600_000


def fill(servers, prefix):
    """Keys of every type Lattice holds, some with TTLs, in three dbs, written round-robin into
    the regions (so the region read from holds keys that came from its peers)."""
    for db in DBS:
        for i, server in enumerate(servers):
            c = server.client(db=db)
            p = f"{prefix}:db{db}:r{i}:"
            c.set(p + "s", "hello world")
            c.set(p + "s:int", "12345")
            c.set(p + "s:bin", bytes(range(256)))
            c.set(p + "s:big", "x" * 100_000)
            c.set(p + "bm", "y" * 1000)  # a base with bitmap chunks over it and past its end
            c.setbit(p + "bm", 8 * 600 + 1, 1)
            c.setbit(p + "bm", 8 * 5000 + 7, 1)
            c.setbit(p + "bm:chunks", 8 * 3000, 1)  # chunks only, no base
            c.set(p + "s:ttl", "expiring", px=FAR_TTL_MS)
            c.rpush(p + "l", "a", "1", "-5", "bbb", *[f"e{j}" for j in range(200)])
            c.sadd(p + "set:int", 1, 2, 3, -7, 100000, 5000000000)
            c.sadd(p + "set:str", *[f"m{j}" for j in range(300)])
            c.zadd(p + "z", {"a": 1.5, "b": -2, "c": 1e100, "d": float("inf")})
            c.zadd(p + "z:big", {f"m{j}": j / 3 for j in range(300)})
            c.hset(p + "h", mapping={"f1": "v1", "f2": "22"})
            c.hset(p + "h:big", mapping={f"f{j}": "v" * j for j in range(300)})
            c.pexpire(p + "h", FAR_TTL_MS)
            c.pexpire(p + "z:big", FAR_TTL_MS)
            for j in range(150):  # two nodes, same-fields and other-fields entries
                c.xadd(p + "x", {"f": j} if j % 5 else {"g": j, "h": "v" * j})
            c.xadd(p + "x:ids", {"a": 1}, id="7-5")
            c.xadd(p + "x:ids", {"a": 2}, id="8-0")
            c.xdel(p + "x:ids", "7-5")
            c.xgroup_create(p + "x", "g1", id="0")  # consumer groups, with pending entries
            c.xreadgroup("g1", "c1", {p + "x": ">"}, count=5)
            c.xreadgroup("g1", "c2", {p + "x": ">"}, count=3)
            c.xack(p + "x", "g1", c.xrange(p + "x", count=2)[1][0])
            c.xgroup_create(p + "x", "g2", id="$")
            c.xadd(p + "x:ttl", {"a": 1})
            c.pexpire(p + "x:ttl", FAR_TTL_MS)


def churn(server, prefix, rounds):
    """Writes of every kind (overwrites, deletes, TTLs, collection edits) in three dbs."""
    for n in range(rounds):
        for db in DBS:
            c = server.client(db=db)
            p = f"{prefix}:db{db}:"
            c.set(p + f"s{n % 7}", f"v{n}")
            c.incr(p + "counter")
            c.rpush(p + "l", n)
            if n % 3 == 0:
                c.lpop(p + "l")
            c.sadd(p + "set", n % 11)
            c.srem(p + "set", (n + 5) % 11)
            c.zincrby(p + "z", 1.5, f"m{n % 5}")
            c.hset(p + "h", f"f{n % 9}", n)
            c.hdel(p + "h", f"f{(n + 4) % 9}")
            c.set(p + f"t{n % 4}", n, px=FAR_TTL_MS)
            c.delete(p + f"s{(n + 3) % 7}")
            c.expire(p + "counter", 100_000)
            c.xadd(p + "x", {"n": n})
            if n == 0:
                c.xgroup_create(p + "x", "cg", id="0")
            c.xreadgroup("cg", f"w{n % 2}", {p + "x": ">"}, count=2)  # delivers the new entry
            if n % 4 == 0:
                c.xtrim(p + "x", maxlen=10)
            if n % 5 == 0:
                c.execute_command("XSETID", p + "x", f"{10**13 + n}-0", "ENTRIESADDED", 10**6 + n,
                                  "MAXDELETEDID", "1-0")


def snapshots(client_for_db):
    return {db: snapshot(client_for_db(db)) for db in DBS}


class RdbOut(unittest.TestCase):
    def setUp(self):
        self.servers = start_regions(3)
        self.cleanups = [s.cleanup for s in self.servers]

    def tearDown(self):
        for cleanup in reversed(self.cleanups):
            cleanup()

    def redis(self, *args):
        source = RedisSource(*args)
        self.cleanups.append(source.cleanup)
        return source

    def test_redis_cli_rdb_from_a_region_loads_into_redis_server(self):
        a = self.servers[0]
        fill(self.servers, "fill")
        wait_converged(self.servers, timeout=60)
        want = snapshots(lambda db: a.client(db=db))
        self.assertGreater(sum(len(v) for v in want.values()), 100)

        target = self.redis()
        os.makedirs(target.dir, exist_ok=True)
        path = os.path.join(target.dir, "dump.rdb")
        done = subprocess.run(["redis-cli", "-p", str(a.port), "--rdb", path],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        with open(path, "rb") as f:
            self.assertEqual(f.read(9), b"REDIS0010")
        target.start()
        got = snapshots(lambda db: target.client(db))
        for db in DBS:
            self.assertEqual(got[db], want[db], f"db {db}")
        # The data dir keeps no temporary sync file.
        wait_until(lambda: not [n for n in os.listdir(a.dir) if n.startswith("temp-sync-")],
                   what="the sync file removed")

    def test_a_redis_replica_follows_a_region_written_in_two_regions(self):
        a, b = self.servers[0], self.servers[1]
        fill(self.servers, "before")
        wait_converged(self.servers, timeout=60)

        replica = self.redis("--replicaof", "127.0.0.1", str(a.port))
        replica.start()
        wait_until(lambda: replica.client().info("replication").get("master_link_status") == "up",
                   timeout=30, what="the redis replica's link up")
        churn(a, "a", 60)
        churn(b, "b", 60)
        wait_converged(self.servers, timeout=60)

        def equal():
            return snapshots(lambda db: replica.client(db)) == snapshots(lambda db: a.client(db=db))
        wait_until(equal, timeout=60, interval=0.2, what="the redis replica equal to region a")
        for db in DBS:  # and region a equals b (converged), so the replica has b's writes too
            self.assertEqual(snapshot(replica.client(db)), snapshot(b.client(db=db)))

        fields = info_fields(a, "replication")
        self.assertEqual(fields["role"], "master")
        self.assertEqual(fields["connected_slaves"], "1")
        self.assertIn(f"port={replica.port},state=online", fields["slave0"])
        role = a.client().execute_command("ROLE")
        self.assertEqual(role[0], b"master")
        self.assertEqual(len(role[2]), 1)
        self.assertEqual(role[2][0][1], str(replica.port).encode())
        # The replica acknowledges the stream up to the region's offset.
        wait_until(lambda: int(info_fields(a, "replication")["master_repl_offset"]) ==
                   int(replica.client().info("replication")["master_repl_offset"]),
                   timeout=30, what="the replica's offset at the region's")

        # A dropped link resumes with +CONTINUE from the region's backlog.
        self.assertEqual(fields["sync_partial_syncs"], "0")
        replica.client().execute_command("CLIENT", "KILL", "TYPE", "master")
        a.client(db=5).set("after-the-drop", "1")
        wait_until(lambda: info_fields(a, "replication").get("sync_partial_syncs") == "1",
                   timeout=30, what="the replica's partial resync")
        wait_until(lambda: replica.client(5).get("after-the-drop") == b"1", timeout=30,
                   what="the write after the drop")
        self.assertEqual(info_fields(a, "replication")["sync_full_syncs"], "1")

        # A deleted key and a FLUSHDB reach the replica too.
        a.client(db=1).flushdb()
        wait_until(lambda: replica.client(1).dbsize() == 0, timeout=30, what="FLUSHDB replicated")

    def test_hash_field_ttls_survive_dump_restore_and_the_rdb_file(self):
        a = self.servers[0]
        r = a.client()
        r.hset("h", mapping={"a": "1", "b": "2", "c": "3"})
        r.execute_command("HPEXPIREAT", "h", 1_900_000_000_000, "FIELDS", 1, "a")
        r.execute_command("HPEXPIREAT", "h", 1_900_000_123_456, "FIELDS", 1, "c")
        r.set("plain", "x", px=FAR_TTL_MS)
        want_ttls = r.execute_command("HPEXPIRETIME", "h", "FIELDS", 3, "a", "b", "c")
        self.assertEqual(want_ttls, [1_900_000_000_000, -1, 1_900_000_123_456])

        payload = r.dump("h")
        self.assertEqual(payload[0], 22)  # Valkey 9's hash with field TTLs
        self.assertEqual(int.from_bytes(payload[-10:-8], "little"), 80)
        r.restore("copy", 0, payload)
        self.assertEqual(r.hgetall("copy"), r.hgetall("h"))
        self.assertEqual(r.execute_command("HPEXPIRETIME", "copy", "FIELDS", 3, "a", "b", "c"),
                         want_ttls)
        plain = r.dump("plain")
        self.assertEqual(int.from_bytes(plain[-10:-8], "little"), 10)
        target = self.redis()
        target.start()
        with self.assertRaises(Exception) as refused:
            target.client().restore("h", 0, payload)
        self.assertIn("DUMP payload version or checksum are wrong", str(refused.exception))

        path = os.path.join(a.dir, "backup.rdb")
        done = subprocess.run(["redis-cli", "-p", str(a.port), "--rdb", path],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        with open(path, "rb") as f:
            self.assertEqual(f.read(9), b"VALKEY080")
        fresh = ServerProcess("--import-rdb", path)
        self.cleanups.append(fresh.cleanup)
        fresh.start()
        f = fresh.client()
        for key in ("h", "copy"):
            self.assertEqual(f.hgetall(key), r.hgetall(key))
            self.assertEqual(f.execute_command("HPEXPIRETIME", key, "FIELDS", 3, "a", "b", "c"),
                             want_ttls)
        self.assertEqual(f.get("plain"), b"x")
        self.assertGreater(f.pttl("plain"), 0)


if __name__ == "__main__":
    unittest.main()
