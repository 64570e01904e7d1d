"""REPLICAOF: region a of a three-region Lattice shard follows Debian's redis-server as its
primary while a writer keeps writing to the primary: the full resync (RDB of every type, TTLs,
three dbs, a stream with its consumer groups, a function library), the live command stream
applied as local writes, READONLY for clients' writes, ROLE and INFO replication, a link killed on the primary
(CLIENT KILL TYPE replica) resumed with a partial resync (+CONTINUE), then REPLICAOF NO ONE:
every key equals the primary's last state in all three regions. Seeds are printed. A full resync
of 100,000 keys loads in slices: a client polling the region sees -LOADING and INFO's loading
fields, then the data and the writes the primary took meanwhile.
"""
import os
import random
import threading
import unittest

import redis

from harness import ServerProcess, info_fields, start_regions, wait_converged, wait_until
from rdb_source import RedisSource, fill, snapshot, watch_loading

SEED = int(os.environ.get("LATTICE_TEST_SEED", random.randrange(1 << 30)))
print(f"test_replicaof seed: {SEED} (replay with LATTICE_TEST_SEED={SEED})", flush=True)

DBS = (0, 1, 5)


def write_some(client, rng, count):
    """`count` random writes of every type Lattice holds (long TTLs: none expires in the test)."""
    pipe = client.pipeline(transaction=False)
    for _ in range(count):
        k = f"w:{rng.randrange(50)}"
        op = rng.randrange(9)
        if op == 0:
            pipe.set("s" + k, rng.randrange(1000))
        elif op == 1:
            pipe.incrby("n" + k, rng.randrange(1, 5))
        elif op == 2:
            pipe.hset("h" + k, f"f{rng.randrange(5)}", rng.randrange(100))
        elif op == 3:
            pipe.rpush("l" + k, rng.randrange(100))
        elif op == 4:
            pipe.sadd("set" + k, rng.randrange(20))
        elif op == 5:
            pipe.zadd("z" + k, {f"m{rng.randrange(10)}": rng.randrange(100)})
        elif op == 6:
            pipe.delete("s" + k)
        elif op == 7:
            pipe.set("s" + k, "ttl", ex=3600)
        else:
            pipe.pexpire("h" + k, 3_600_000)
    pipe.execute()


class ReplicaOf(unittest.TestCase):
    def setUp(self):
        # A backlog the writer's 20,000 writes cannot overflow, so the PSYNC after the killed
        # link continues (+CONTINUE) even when the redial is slow on a loaded machine (with the
        # 1 MB default it could fall back to a second full resync).
        self.source = RedisSource("--repl-backlog-size", "64mb").start()
        fill(self.source)
        self.servers = start_regions(3)
        self.a = self.servers[0]

    def tearDown(self):
        for s in self.servers:
            s.cleanup()
        self.source.cleanup()

    def replica_info(self):
        return info_fields(self.a, "replication")

    def test_follow_a_live_primary_then_cut_over(self):
        rng = random.Random(SEED)
        primary = self.source.client()
        stop = threading.Event()
        written = [0]

        def writer():
            c = self.source.client(db=1)
            wrng = random.Random(SEED + 1)
            while not stop.is_set() and written[0] < 20000:
                write_some(c, wrng, 50)
                written[0] += 50

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            a = self.a.client()
            self.assertTrue(a.execute_command("REPLICAOF", "127.0.0.1", str(self.source.port)))
            wait_until(lambda: self.replica_info()["master_link_status"] == "up", timeout=30,
                       what="the link to the primary")
            info = self.replica_info()
            self.assertEqual(info["role"], "slave")
            self.assertEqual(info["master_port"], str(self.source.port))
            self.assertEqual(int(info["replica_of_full_syncs"]), 1)
            role = a.execute_command("ROLE")
            self.assertEqual(role[0], b"slave")
            self.assertEqual(role[3], b"connected")
            # redis-py turns the READONLY prefix into ReadOnlyError; redis-cli shows it whole.
            with self.assertRaises(redis.exceptions.ReadOnlyError):
                a.set("mine", "x")
            self.assertEqual(self.a.cli("set", "mine", "x")[1].strip(),
                             "READONLY You can't write against a read only replica.")
            write_some(primary, rng, 200)  # db 0 too, while the other writer writes db 1
            wait_until(lambda: written[0] >= 1000, timeout=30, what="the writer's first writes")

            # Kill the link on the primary: the region resumes with PSYNC (+CONTINUE).
            primary.execute_command("CLIENT", "KILL", "TYPE", "replica")
            wait_until(lambda: int(self.replica_info()["replica_of_partial_syncs"]) >= 1,
                       timeout=30, what="a partial resync")
            wait_until(lambda: self.replica_info()["master_link_status"] == "up", timeout=30,
                       what="the link back up")
            self.assertEqual(int(self.replica_info()["replica_of_full_syncs"]), 1)
            self.assertGreaterEqual(int(primary.info("stats")["sync_partial_ok"]), 1)
            write_some(primary, rng, 200)
        finally:
            stop.set()
            thread.join(timeout=60)

        def caught_up():
            want = int(primary.info("replication")["master_repl_offset"])
            return int(self.replica_info()["slave_repl_offset"]) == want
        wait_until(caught_up, timeout=60, what="the region to reach the primary's offset")
        expected = {db: snapshot(self.source.client(db)) for db in DBS}
        for db in DBS:
            self.assertEqual(snapshot(self.a.client(db=db)), expected[db], f"db {db} on a")
        self.assertEqual(int(self.replica_info()["replica_of_commands_refused"]), 0)

        # Cut over: the region keeps everything, takes writes, and the shard converges on it.
        self.assertTrue(a.execute_command("REPLICAOF", "NO", "ONE"))
        self.assertEqual(self.replica_info()["role"], "master")
        a.set("mine", "x")
        wait_converged(self.servers, timeout=60)
        for server in self.servers:
            for db in DBS:
                got = snapshot(server.client(db=db))
                if db == 0:
                    self.assertEqual(got.pop(b"mine"), ("string", b"x", False))
                self.assertEqual(got, expected[db], f"db {db} on port {server.port}")
            self.assertEqual(server.client().fcall("movein_echo", 0, "hi"), b"hi")

    def test_replicaof_errors_and_no_one_when_not_following(self):
        a = self.a.client()
        self.assertTrue(a.execute_command("REPLICAOF", "NO", "ONE"))
        with self.assertRaisesRegex(redis.ResponseError, "Invalid master port"):
            a.execute_command("REPLICAOF", "127.0.0.1", "notaport")
        self.assertEqual(a.execute_command("ROLE")[0], b"master")

    def test_replicaof_in_the_config_file_follows_at_startup(self):
        region = ServerProcess(config_text=f"replicaof 127.0.0.1 {self.source.port}\n")
        self.servers.append(region)
        region.start()
        want = snapshot(self.source.client(0))
        wait_until(lambda: snapshot(region.client()) == want, timeout=60, interval=0.1,
                   what="the configured replica loaded the primary's data")
        role = region.client().execute_command("ROLE")
        self.assertEqual(role[0], b"slave")
        self.assertEqual(role[2], self.source.port)
        self.source.client().set("after-start", "1")
        wait_until(lambda: region.client().get("after-start") == b"1", timeout=30,
                   what="the stream applied")
        # A stream written on the primary arrives as XADD/XDEL with the primary's IDs.
        primary = self.source.client()
        primary.xadd("live:x", {"f": "1"}, id="5-1")
        primary.xadd("live:x", {"f": "2"})
        primary.xdel("live:x", "5-1")
        wait_until(lambda: snapshot(region.client()) == snapshot(primary), timeout=30,
                   what="the primary's stream writes applied")


class FullResyncWhileServing(unittest.TestCase):
    def test_the_rdb_loads_in_slices_while_clients_see_loading(self):
        keys = 100_000
        source = RedisSource("--enable-debug-command", "yes").start()
        region = ServerProcess()
        try:
            primary = source.client()
            primary.execute_command("DEBUG", "POPULATE", keys, "key", 16)
            region.start()
            region.client().set("before", "gone after the full resync")
            self.assertTrue(region.client().execute_command(
                "REPLICAOF", "127.0.0.1", str(source.port)))
            primary.set("during", "the transfer")  # in the RDB or the stream, either way kept
            seen = watch_loading(self, region, None, keys + 1)
            self.assertGreaterEqual(seen, 1)
            wait_until(lambda: info_fields(region, "replication")["master_link_status"] == "up",
                       timeout=30, what="the link up after the load")
            c = region.client()
            self.assertEqual(c.get("during"), b"the transfer")
            self.assertIsNone(c.get("before"))
            self.assertEqual(c.get("key:77777"), primary.get("key:77777"))
            primary.set("after", "the load")
            wait_until(lambda: c.get("after") == b"the load", timeout=30,
                       what="the stream applied after the load")
        finally:
            region.cleanup()
            source.cleanup()


if __name__ == "__main__":
    unittest.main()
