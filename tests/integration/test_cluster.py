"""Cluster mode on real processes: 2 shards x 2 regions on loopback.

Each shard's two regions replicate with each other (--shard-id, --peer); the cluster is created
with CLUSTER CREATE and converges by gossip. Cluster clients (redis-py's RedisCluster, redis-cli
-c) read and write across all slots; slot migration moves a range with keys of every type while
RedisCluster clients write to it in both regions; a cancelled migration and a target killed
mid-migration leave the source owning everything; keys being imported are hidden on the target
until the handoff, and a migration retried after a cancel moves every key.

LATTICE_MIGRATION_KEYS sets the migration test's key count (default 20,000; docs/cluster.md
reports a run with 100,000).
"""
import os
import subprocess
import threading
import time
import unittest

from harness import ServerProcess, wait_until, wait_connected, digest

MIGRATION_KEYS = int(os.environ.get("LATTICE_MIGRATION_KEYS", "20000"))


def crc16(data):
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key):
    raw = key.encode()
    start = raw.find(b"{")
    if start >= 0:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1:end]
    return crc16(raw) & 16383


def text(value):
    return value.decode() if isinstance(value, bytes) else value


class Cluster:
    """Shards "A" and "B", each with a node in regions r0 and r1."""

    def __init__(self):
        self.shards = {}
        for shard in ("A", "B"):
            self.shards[shard] = [
                ServerProcess("--cluster-enabled", "yes", "--shard-id", shard, "--region", f"r{r}",
                              "--enable-debug-command", "yes")
                for r in range(2)]
        for nodes in self.shards.values():
            for node in nodes:
                for other in nodes:
                    if other is not node:
                        node.args += ["--peer", f"127.0.0.1:{other.port + 10000}"]

    def nodes(self):
        return self.shards["A"] + self.shards["B"]

    def start(self):
        for node in self.nodes():
            node.start()
        for node in self.nodes():
            wait_connected(node, 1)
        args = []
        for shard, nodes in self.shards.items():
            args += ["SHARD", shard] + [f"127.0.0.1:{n.port}" for n in nodes]
        self.node("A", 0).client().execute_command("CLUSTER", "CREATE", *args)
        self.wait_agreed()
        return self

    def node(self, shard, region):
        return self.shards[shard][region]

    def node_id(self, node):
        return text(node.client().execute_command("CLUSTER", "MYID"))

    def slots_view(self, node):
        """CLUSTER SLOTS as [(start, end, {node ids})]: the same on every node (the order of
        the nodes in a range is per region)."""
        view = node.client().execute_command("CLUSTER", "SLOTS")
        return sorted((r[0], r[1], frozenset(text(n[2]) for n in r[2:])) for r in view)

    def wait_agreed(self, timeout=15.0):
        def agreed():
            views = set()
            for node in self.nodes():
                info = text(node.client().execute_command("CLUSTER", "INFO"))
                if "cluster_state:ok" not in info or "cluster_known_nodes:4" not in info:
                    return False
                views.add(tuple(self.slots_view(node)))
            return len(views) == 1
        wait_until(agreed, timeout=timeout, interval=0.05, what="every node to agree on the slots")

    def owner_of(self, node, slot):
        for start, end, ids in self.slots_view(node):
            if start <= slot <= end:
                return ids
        return None

    def cleanup(self):
        for node in self.nodes():
            node.cleanup()


def migrations(node):
    """CLUSTER GETSLOTMIGRATIONS as a list of dicts of strings."""
    jobs = []
    for entry in node.client().execute_command("CLUSTER", "GETSLOTMIGRATIONS"):
        if isinstance(entry, dict):
            items = entry.items()
        else:
            items = zip(entry[0::2], entry[1::2])
        jobs.append({text(k): text(v) if isinstance(v, bytes) else v for k, v in items})
    return jobs


def wait_job(node, operation, states, timeout=120.0):
    def done():
        for job in migrations(node):
            if job["operation"] == operation and job["state"] in states:
                return job
        return None
    return wait_until(done, timeout=timeout, interval=0.02,
                      what=f"{operation} migration in {states} on {node.port}")


def keys_in_slots(node, start, end):
    pipe = node.client().pipeline(transaction=False)
    for slot in range(start, end + 1):
        pipe.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)
    return sum(pipe.execute())


class ClusterTopologyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster()
        try:
            cls.cluster.start()
        except Exception:
            cls.cluster.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def test_every_node_reports_the_slots_with_its_region_first(self):
        c = self.cluster
        for node in c.nodes():
            view = node.client().execute_command("CLUSTER", "SLOTS")
            self.assertEqual(sorted((r[0], r[1]) for r in view), [(0, 8191), (8192, 16383)])
            for entry in view:
                primary_port = entry[2][1]
                region = c.nodes().index(node) % 2
                shard = "A" if entry[0] == 0 else "B"
                self.assertEqual(primary_port, c.node(shard, region).port,
                                 "the primary shown is the shard's node in the client's region")
        nodes_text = text(c.node("A", 1).client().execute_command("CLUSTER", "NODES"))
        self.assertEqual(len(nodes_text.strip().splitlines()), 4)
        self.assertIn("myself,master", nodes_text)
        shards = c.node("B", 0).client().execute_command("CLUSTER", "SHARDS")
        self.assertEqual(len(shards), 2)

    def test_redirects_and_errors(self):
        import redis
        c = self.cluster
        a0 = c.node("A", 0).client()
        key_b = next(f"k{i}" for i in range(1000) if key_slot(f"k{i}") >= 8192)
        with self.assertRaises(redis.exceptions.ResponseError) as caught:
            a0.set(key_b, "x")
        self.assertEqual(str(caught.exception),
                         f"MOVED {key_slot(key_b)} 127.0.0.1:{c.node('B', 0).port}")
        a1 = c.node("A", 1).client()
        with self.assertRaises(redis.exceptions.ResponseError) as caught:
            a1.get(key_b)
        self.assertEqual(str(caught.exception),
                         f"MOVED {key_slot(key_b)} 127.0.0.1:{c.node('B', 1).port}")
        with self.assertRaises(redis.exceptions.ResponseError) as caught:
            a0.mset({"a{1}": 1, "a{2}": 2})
        self.assertIn("CROSSSLOT", str(caught.exception))
        self.assertEqual(a0.execute_command("CLUSTER", "KEYSLOT", "somekey"), 11058)
        with self.assertRaises(redis.exceptions.ResponseError) as caught:
            a0.execute_command("CLUSTER", "COUNTKEYSINSLOT", 16384)
        self.assertEqual(str(caught.exception), "Invalid slot")
        with self.assertRaises(redis.exceptions.ResponseError) as caught:
            a0.execute_command("CLUSTER", "ADDSLOTS", 5)
        self.assertEqual(str(caught.exception), "Slot 5 is already busy")
        self.assertTrue(a0.execute_command("READONLY"))
        self.assertTrue(a0.execute_command("READWRITE"))
        with self.assertRaises(redis.exceptions.ResponseError) as caught:
            a0.execute_command("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", 9000, 9001,
                               "NODE", c.node_id(c.node("A", 0)))
        self.assertEqual(str(caught.exception), "Target node can not be this node.")
        with self.assertRaises(redis.exceptions.ResponseError) as caught:
            a0.execute_command("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", 9000, 9001,
                               "NODE", c.node_id(c.node("B", 0)))
        self.assertEqual(str(caught.exception), "Slots are not served by this node.")
        with self.assertRaises(redis.exceptions.ResponseError) as caught:
            a0.execute_command("CLUSTER", "CANCELSLOTMIGRATIONS")
        self.assertEqual(str(caught.exception), "No migrations ongoing")

    def test_cluster_clients_read_and_write_every_slot(self):
        from redis.cluster import RedisCluster
        c = self.cluster
        for region in (0, 1):
            rc = RedisCluster(host="127.0.0.1", port=c.node("A", region).port)
            pipe_keys = [f"rw:{region}:{i}" for i in range(3000)]
            for key in pipe_keys:
                rc.set(key, key)
            self.assertTrue(all(rc.get(key) == key.encode() for key in pipe_keys))
            rc.close()
        slots_a = sum(1 for i in range(3000) if key_slot(f"rw:0:{i}") < 8192)
        wait_until(lambda: keys_in_slots(c.node("A", 1), 0, 8191) >= slots_a * 2,
                   timeout=20, what="region r1 of shard A to hold both regions' keys")
        code, out = c.node("B", 1).cli("-c", "set", "cli{x}", "hello")
        self.assertEqual((code, out.strip()), (0, "OK"))
        code, out = c.node("A", 0).cli("-c", "get", "cli{x}")
        self.assertEqual((code, out.strip()), (0, "hello"))

    def test_persisted_topology_survives_restart(self):
        c = self.cluster
        node = c.node("B", 1)
        before = c.slots_view(node)
        my_id = c.node_id(node)
        node.stop()
        node.start()
        self.assertEqual(c.node_id(node), my_id)
        self.assertEqual(c.slots_view(node), before)
        # A restarted node is kept out of redirects until it caught up; then every node sends
        # its region's clients to its own region's node of each shard again (the other tests
        # expect that steady state).
        def every_region_served_by_its_own_node():
            for viewer in c.nodes():
                region = c.nodes().index(viewer) % 2
                for entry in viewer.client().execute_command("CLUSTER", "SLOTS"):
                    shard = "A" if entry[0] == 0 else "B"
                    if entry[2][1] != c.node(shard, region).port:
                        return False
            return True
        wait_until(every_region_served_by_its_own_node, timeout=30, interval=0.05,
                   what="the restarted node to serve its region again")


class ClusterMigrationTest(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster().start()

    def tearDown(self):
        self.cluster.cleanup()

    def load(self, node, start, end, count):
        """`count` keys of every type in slots start..end of shard A, through `node`."""
        keys = []
        i = 0
        while len(keys) < count:
            key = f"m:{i}"
            i += 1
            if start <= key_slot(key) <= end:
                keys.append(key)
        pipe = node.client().pipeline(transaction=False)
        for n, key in enumerate(keys):
            kind = n % 5
            if kind == 0:
                pipe.set(key, f"v{n}")
            elif kind == 1:
                pipe.hset(key, mapping={"f1": n, "f2": "x"})
            elif kind == 2:
                pipe.sadd(key, "a", "b", n)
            elif kind == 3:
                pipe.zadd(key, {"a": 1, "b": n})
            else:
                pipe.incrby(key, n)
            if n % 2000 == 1999:
                pipe.execute()
        pipe.execute()
        return keys

    def test_migration_under_writes_in_both_regions(self):
        from redis.cluster import RedisCluster
        c = self.cluster
        a0, a1, b0, b1 = c.node("A", 0), c.node("A", 1), c.node("B", 0), c.node("B", 1)
        first, last = 0, 4095
        keys = self.load(a0, first, last, MIGRATION_KEYS)
        wait_until(lambda: a1.client().dbsize() == a0.client().dbsize(), timeout=60,
                   what="region r1 to receive the loaded keys")
        stop = threading.Event()
        acked = [dict(), dict()]     # per writer: key -> last acknowledged value
        increments = [0, 0]          # per writer: acknowledged INCRs of the shared counter
        errors = []
        slowest = [0.0, 0.0]         # per writer: the longest write (s), the handoff pause included
        counter = next(f"ctr:{i}" for i in range(1000) if first <= key_slot(f"ctr:{i}") <= last)
        write_keys = [f"w:{{{i}}}" for i in range(5000)
                      if first <= key_slot(f"w:{{{i}}}") <= last][:200]  # tagged: ":n" keeps the slot

        def writer(index, port):
            try:
                rc = RedisCluster(host="127.0.0.1", port=port)
                n = 0
                while not stop.is_set() and n < 1_000_000:
                    key = f"{write_keys[n % len(write_keys)]}:{index}"
                    began = time.monotonic()
                    rc.set(key, n)
                    slowest[index] = max(slowest[index], time.monotonic() - began)
                    acked[index][key] = str(n)
                    began = time.monotonic()
                    rc.incr(counter)
                    slowest[index] = max(slowest[index], time.monotonic() - began)
                    increments[index] += 1
                    n += 1
                rc.close()
            except Exception as error:  # any error a client sees fails the test
                errors.append(repr(error))

        threads = [threading.Thread(target=writer, args=(0, a0.port)),
                   threading.Thread(target=writer, args=(1, a1.port))]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: increments[0] > 50 and increments[1] > 50, timeout=30,
                       what="writers to start")
            started = time.monotonic()
            a0.client().execute_command("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", first, last,
                                        "NODE", c.node_id(b0))
            job = wait_job(a0, "EXPORT", ("success", "failed", "cancelled"))
            elapsed = time.monotonic() - started
            self.assertEqual(job["state"], "success", job)
            done_at = increments[:]
            wait_until(lambda: increments[0] > done_at[0] + 50 and increments[1] > done_at[1] + 50,
                       timeout=30, what="writes to go on after the handoff")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        self.assertEqual(errors, [])
        info = text(a0.client().execute_command("CLUSTER", "INFO"))
        print(f"\nmigrated {len(keys)} keys in {elapsed:.2f} s; longest client write "
              f"{max(slowest) * 1000:.0f} ms; "
              + " ".join(line for line in info.split() if line.startswith("lattice_")))
        c.wait_agreed()
        self.assertEqual(c.owner_of(a0, first), frozenset({c.node_id(b0), c.node_id(b1)}))
        for target in (b0, b1):
            wait_job(target, "IMPORT", ("success",))
        # Every acknowledged write is in the target shard, in both regions.
        wait_until(lambda: digest(b0) == digest(b1), timeout=60, what="shard B to converge")
        expected_counter = sum(increments)
        for target in (b0, b1):
            client = target.client()
            self.assertEqual(int(client.get(counter)), expected_counter)
            for index in (0, 1):
                pipe = client.pipeline(transaction=False)
                for key in acked[index]:
                    pipe.get(key)
                values = [text(v) for v in pipe.execute()]
                self.assertEqual(values, list(acked[index].values()))
            self.assertEqual(keys_in_slots(target, first, last),
                             len(keys) + len(acked[0]) + len(acked[1]) + 1)
            sample = keys[:50] + keys[-50:]
            types = {text(client.type(key)) for key in sample}
            self.assertEqual(types, {"string", "hash", "set", "zset"})
        # The source no longer has them.
        for source in (a0, a1):
            wait_until(lambda: keys_in_slots(source, first, last) == 0, timeout=30,
                       what=f"source {source.port} to drop the migrated keys")

    def test_cancel_leaves_the_source_owning(self):
        c = self.cluster
        a0, b0, b1 = c.node("A", 0), c.node("B", 0), c.node("B", 1)
        keys = self.load(a0, 100, 199, 3000)
        pipe = a0.client().pipeline(transaction=False)
        pipe.execute_command("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", 100, 199,
                             "NODE", c.node_id(b1))
        pipe.execute_command("CLUSTER", "CANCELSLOTMIGRATIONS")
        self.assertEqual(pipe.execute(), [b"OK", b"OK"])
        job = wait_job(a0, "EXPORT", ("success", "failed", "cancelled"))
        self.assertEqual(job["state"], "cancelled")
        def imports(target):
            return [j for j in migrations(target) if j["operation"] == "IMPORT"]
        for target in (b0, b1):
            # The target got the migration (ESTABLISH) and its import ended.
            wait_until(lambda: imports(target) and all(j["state"] in ("failed", "success")
                                                       for j in imports(target)),
                       timeout=30, what="the import to start and end")
            self.assertTrue(all(j["state"] == "failed" for j in migrations(target)))
            self.assertEqual(keys_in_slots(target, 100, 199), 0)
        self.assertEqual(c.owner_of(b0, 150), frozenset({c.node_id(a0), c.node_id(c.node("A", 1))}))
        self.assertEqual(keys_in_slots(a0, 100, 199), len(keys))
        self.assertEqual(a0.client().set(keys[0], "after"), True)

    def test_importing_keys_hidden_and_retry_after_cancel(self):
        """With the source's other region stopped (SIGSTOP, by our PID), the export cannot get
        past its write pause: the targets hold every key, hidden until a handoff that does not
        come. Cancelled, then retried, the migration moves every key."""
        import signal
        c = self.cluster
        a0, a1, b0, b1 = c.node("A", 0), c.node("A", 1), c.node("B", 0), c.node("B", 1)
        keys = self.load(a0, 500, 599, 3000)
        b0.client().set("own", "x")  # slot 11260: shard B's own
        wait_until(lambda: a1.client().dbsize() == a0.client().dbsize(), timeout=30,
                   what="region r1 to receive the loaded keys")
        os.kill(a1.proc.pid, signal.SIGSTOP)
        try:
            a0.client().execute_command("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", 500, 599,
                                        "NODE", c.node_id(b0))
            wait_job(a0, "EXPORT", ("waiting-to-pause",), timeout=30)
            for target in (b0, b1):
                wait_until(lambda: keys_in_slots(target, 500, 599) == len(keys), timeout=30,
                           what="the target to hold the snapshot")
            client = b0.client()
            self.assertEqual(client.dbsize(), 1)
            self.assertEqual(client.keys("*"), [b"own"])
            self.assertEqual(client.scan(0, count=10000), (0, [b"own"]))
            self.assertEqual(client.randomkey(), b"own")
            self.assertEqual(client.info("keyspace")["db0"]["keys"], 1)
            self.assertEqual(a0.client().execute_command("CLUSTER", "CANCELSLOTMIGRATIONS"),
                             b"OK")
            for target in (b0, b1):
                wait_job(target, "IMPORT", ("failed",), timeout=30)
                self.assertEqual(keys_in_slots(target, 500, 599), 0)
        finally:
            os.kill(a1.proc.pid, signal.SIGCONT)
        self.assertEqual(a0.client().set(keys[0], "after"), True)
        wait_until(lambda: a1.client().get(keys[0]) == b"after", timeout=30,
                   what="region r1 to take writes again")
        a0.client().execute_command("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", 500, 599,
                                    "NODE", c.node_id(b0))
        wait_until(lambda: migrations(a0)[0]["state"] in ("success", "failed", "cancelled"),
                   timeout=60, what="the retried migration to end")
        self.assertEqual(migrations(a0)[0]["state"], "success", migrations(a0)[0])
        for target in (b0, b1):
            wait_job(target, "IMPORT", ("success",))
            self.assertEqual(keys_in_slots(target, 500, 599), len(keys))
            self.assertEqual(target.client().dbsize(), len(keys) + 1)
            self.assertEqual(target.client().get(keys[0]), b"after")

    def test_target_killed_mid_migration(self):
        c = self.cluster
        a0, a1, b0, b1 = c.node("A", 0), c.node("A", 1), c.node("B", 0), c.node("B", 1)
        keys = self.load(a0, 200, 399, 5000)
        a0.client().execute_command("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", 200, 399,
                                    "NODE", c.node_id(b0))
        b0.proc.kill()  # SIGKILL, by the PID we started
        b0.proc.wait(timeout=10)
        b0.stop()
        job = wait_job(a0, "EXPORT", ("success", "failed", "cancelled"))
        self.assertEqual(job["state"], "failed")
        self.assertTrue(job["message"])
        self.assertEqual(keys_in_slots(a0, 200, 399), len(keys))
        self.assertEqual(a0.client().set(keys[1], "after"), True)
        wait_until(lambda: a1.client().get(keys[1]) == b"after", timeout=10,
                   what="the source shard to take writes in both regions")
        self.assertEqual(keys_in_slots(b1, 200, 399), 0)
        b0.start()
        c.wait_agreed()
        self.assertEqual(keys_in_slots(b0, 200, 399), 0)
        self.assertEqual(c.owner_of(b0, 300), frozenset({c.node_id(a0), c.node_id(a1)}))


if __name__ == "__main__":
    unittest.main()
