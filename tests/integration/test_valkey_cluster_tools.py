"""Valkey's own cluster tooling against Lattice (docs/cluster.md, "Valkey's tooling").

Nodes are started with --cluster-enabled yes and no --shard-id or --peer: each is a shard of its
own (its shard id is its node id). CLUSTER MEET and ADDSLOTSRANGE then give two shards with MOVED
between them, as in Valkey; CLUSTER REPLICATE makes a node another region of a shard, which links
to the shard's other regions found from the gossiped topology, gets the shard's data and takes
writes. redis-cli --cluster create (Debian's redis-cli 7.0) builds shards of three regions with
--cluster-replicas 2, --cluster check passes, add-node adds a shard and a region, fix closes an
open slot and covers unassigned ones, del-node removes an empty shard, and del-node of a region
that holds its shard's data flushes it (Valkey's replica RESET): the shard's other regions forget
its replica and go on converging and taking writes, and the node added again with add-node
--cluster-slave joins as a new region and gets the shard's data. A shard's only node with keys
(a master) refuses CLUSTER RESET.
redis-cli --cluster reshard moves 1000 slots (LATTICE_RESHARD_SLOTS; 100 by default) (CLUSTER SETSLOT, MIGRATE: each slot by the atomic
migration, with its CRDT state) while a redis-py RedisCluster client writes: no acknowledged write
is lost and the client sees no error; the reshard time is printed.

Every wait is a bounded poll; every process is one this test started, stopped by its handle.
"""
import subprocess
import threading
import time
import os
import unittest

from harness import ServerProcess, wait_until, wait_converged
from test_cluster import key_slot

# Slots the reshard test moves: 1000 in the measured run (docs/cluster.md); fewer by default, so
# the file stays within ctest's 300 s on a loaded machine.
RESHARD_SLOTS = int(os.environ.get("LATTICE_RESHARD_SLOTS", "100"))


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def key_in(low, high, prefix="k"):
    """A key whose slot is in [low, high]."""
    for i in range(100000):
        key = f"{prefix}{i}"
        if low <= key_slot(key) <= high:
            return key
    raise AssertionError("no key found")


def node_started():
    return ServerProcess("--cluster-enabled", "yes", "--enable-debug-command", "yes").start()


def cmd(node, *args):
    return node.client().execute_command(*args)


def myid(node):
    return text(cmd(node, "CLUSTER", "MYID"))


def cluster_info(node):
    fields = {}
    for line in text(cmd(node, "CLUSTER", "INFO")).splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value
    return fields


def replication_info(node):
    """INFO replication as text (crdt_replica_id, one crdt_peerN:id=... line per peer)."""
    code, out = node.cli("info", "replication")
    if code != 0:
        raise AssertionError(f"INFO replication failed on port {node.port}: {out}")
    return out


def replica_id(node):
    for line in replication_info(node).splitlines():
        if line.startswith("crdt_replica_id:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no crdt_replica_id on port {node.port}")


def nodes_lines(node):
    return [line.split() for line in text(cmd(node, "CLUSTER", "NODES")).splitlines() if line]


def redis_cli(*args, timeout=120, input=None):
    done = subprocess.run(["redis-cli", *args], capture_output=True, text=True, timeout=timeout,
                          input=input)
    return done.returncode, done.stdout + done.stderr


def wait_known(nodes, count, timeout=20.0):
    wait_until(lambda: all(cluster_info(n)["cluster_known_nodes"] == str(count) for n in nodes),
               timeout=timeout, interval=0.05, what=f"every node to know {count} nodes")


def wait_state_ok(nodes, timeout=20.0):
    wait_until(lambda: all(cluster_info(n)["cluster_state"] == "ok" for n in nodes),
               timeout=timeout, interval=0.05, what="cluster_state:ok on every node")


class Nodes:
    def __init__(self):
        self.all = []

    def start(self, count):
        started = [node_started() for _ in range(count)]
        self.all += started
        return started

    def cleanup(self):
        for node in self.all:
            node.cleanup()


class MeetAndReplicate(unittest.TestCase):
    """The flow an operator types: MEET, ADDSLOTSRANGE, REPLICATE."""

    def setUp(self):
        self.nodes = Nodes()

    def tearDown(self):
        self.nodes.cleanup()

    def test_meet_addslots_gives_two_shards_and_replicate_adds_regions(self):
        a, b = self.nodes.start(2)
        id_a, id_b = myid(a), myid(b)
        # A node without --shard-id is a shard of its own, named by its node id.
        self.assertEqual(text(cmd(a, "CLUSTER", "MYSHARDID")), id_a)
        self.assertEqual(cmd(a, "CLUSTER", "ADDSLOTSRANGE", "0", "8191"), b"OK")
        self.assertEqual(cmd(b, "CLUSTER", "ADDSLOTSRANGE", "8192", "16383"), b"OK")
        self.assertEqual(cmd(a, "CLUSTER", "MEET", "127.0.0.1", str(b.port)), b"OK")
        wait_known([a, b], 2)
        wait_state_ok([a, b])
        self.assertEqual(cluster_info(a)["cluster_size"], "2")

        # Both are masters of their half, and the bus port shown is the port gossip uses.
        for line in nodes_lines(a):
            self.assertIn("master", line[2])
            address, cport = line[1].split("@")
            self.assertEqual(address.split(":")[1], cport)
        key_b = key_in(8192, 16383)
        with self.assertRaises(Exception) as moved:
            cmd(a, "SET", key_b, "x")
        self.assertIn(f"MOVED {key_slot(key_b)} 127.0.0.1:{b.port}", str(moved.exception))
        key_a = key_in(0, 8191)
        with self.assertRaises(Exception) as moved_back:
            cmd(b, "GET", key_a)
        self.assertIn(f"MOVED {key_slot(key_a)} 127.0.0.1:{a.port}", str(moved_back.exception))

        # Data in shard A before it gets more regions.
        before = {key_in(0, 8191, f"pre{i}-"): str(i) for i in range(50)}
        for key, value in before.items():
            cmd(a, "SET", key, value)

        # REPLICATE's refusals, as Valkey words them.
        c, d = self.nodes.start(2)
        for node in (c, d):
            self.assertEqual(cmd(node, "CLUSTER", "MEET", "127.0.0.1", str(a.port)), b"OK")
        wait_known([a, b, c, d], 4)
        with self.assertRaisesRegex(Exception, "Can't replicate myself"):
            cmd(c, "CLUSTER", "REPLICATE", myid(c))
        with self.assertRaisesRegex(Exception, "Unknown node"):
            cmd(c, "CLUSTER", "REPLICATE", "0" * 40)
        with self.assertRaisesRegex(Exception, "must be empty and without assigned slots"):
            cmd(b, "CLUSTER", "REPLICATE", id_a)

        # C and D become regions of A's shard: they link by themselves (no --peer), get the
        # shard's data, and take writes.
        for node in (c, d):
            self.assertEqual(cmd(node, "CLUSTER", "REPLICATE", id_a), b"OK")
            self.assertEqual(text(cmd(node, "CLUSTER", "MYSHARDID")), id_a)
        wait_until(lambda: len(cmd(b, "CLUSTER", "REPLICAS", id_a)) == 2, timeout=20,
                   interval=0.05, what="B to see A's shard with two more regions")
        replicas = {line.split()[0] for line in map(text, cmd(b, "CLUSTER", "REPLICAS", id_a))}
        self.assertEqual(replicas, {myid(c), myid(d)})
        self.assertEqual(cluster_info(b)["cluster_size"], "2")
        for node, name in ((a, "a"), (c, "c"), (d, "d")):
            for i in range(30):
                cmd(node, "SET", key_in(0, 8191, f"{name}{i}-"), name)
        wait_converged([a, c, d], timeout=60)
        for key, value in before.items():
            self.assertEqual(text(cmd(d, "GET", key)), value)
        self.assertEqual(cmd(c, "DBSIZE"), 50 + 90)
        # A restart keeps the shard (nodes.conf) and relinks from the topology.
        c.stop()
        cmd(a, "SET", key_in(0, 8191, "while-down-"), "1")
        c.start()
        self.assertEqual(text(cmd(c, "CLUSTER", "MYSHARDID")), id_a)
        cmd(c, "SET", key_in(0, 8191, "after-restart-"), "1")
        wait_converged([a, c, d], timeout=60)
        self.assertEqual(cmd(d, "DBSIZE"), 50 + 90 + 2)
        # The new regions redirect the other shard's keys, and B redirects to A's shard.
        with self.assertRaisesRegex(Exception, f"MOVED {key_slot(key_b)} 127.0.0.1:{b.port}"):
            cmd(d, "GET", key_b)

        # The other node commands.
        self.assertEqual(cmd(a, "CLUSTER", "COUNT-FAILURE-REPORTS", id_b), 0)
        links = cmd(a, "CLUSTER", "LINKS")
        self.assertEqual(len(links), 3)
        with self.assertRaisesRegex(Exception, "only when the node does not know any other"):
            cmd(a, "CLUSTER", "SET-CONFIG-EPOCH", "5")
        epoch = int(cluster_info(a)["cluster_current_epoch"])
        bumped = text(cmd(b, "CLUSTER", "BUMPEPOCH"))
        self.assertTrue(bumped.startswith(("BUMPED", "STILL")), bumped)
        self.assertGreaterEqual(int(cluster_info(b)["cluster_current_epoch"]), epoch)
        with self.assertRaisesRegex(Exception, "DB must be empty"):
            cmd(a, "CLUSTER", "FLUSHSLOTS")
        with self.assertRaisesRegex(Exception, "can't forget myself"):
            cmd(a, "CLUSTER", "FORGET", id_a)
        # B is its shard's only node: a master, whose keys a RESET would lose for good.
        cmd(b, "SET", key_b, "kept")
        with self.assertRaisesRegex(Exception, "^CLUSTER RESET can't be called with master nodes "
                                               "containing keys$"):
            cmd(b, "CLUSTER", "RESET")
        self.assertEqual(text(cmd(b, "GET", key_b)), "kept")

    def test_forget_and_set_config_epoch(self):
        a, b = self.nodes.start(2)
        id_b = myid(b)
        self.assertEqual(cmd(a, "CLUSTER", "ADDSLOTSRANGE", "0", "16383"), b"OK")
        self.assertEqual(cmd(a, "CLUSTER", "SET-CONFIG-EPOCH", "7"), b"OK")
        self.assertEqual(cluster_info(a)["cluster_my_epoch"], "7")
        with self.assertRaisesRegex(Exception, "Invalid config epoch"):
            cmd(a, "CLUSTER", "SET-CONFIG-EPOCH", "-1")
        cmd(b, "CLUSTER", "MEET", "127.0.0.1", str(a.port))
        wait_known([a, b], 2)
        # FORGET holds for 60 s although B goes on gossiping.
        self.assertEqual(cmd(a, "CLUSTER", "FORGET", id_b), b"OK")
        self.assertEqual(cluster_info(a)["cluster_known_nodes"], "1")
        with self.assertRaisesRegex(Exception, "Unknown node"):
            cmd(a, "CLUSTER", "FORGET", id_b)
        # Two gossip periods (1 s each) of B reach A: A still does not know B.
        gossip = int(cluster_info(a)["cluster_stats_messages_received"])
        wait_until(lambda: int(cluster_info(a)["cluster_stats_messages_received"]) >= gossip + 2,
                   timeout=10, interval=0.05, what="B's gossip to reach A")
        self.assertEqual(cluster_info(a)["cluster_known_nodes"], "1")
        # FLUSHSLOTS on an empty node unassigns its shard's slots.
        self.assertEqual(cmd(a, "CLUSTER", "FLUSHSLOTS"), b"OK")
        self.assertEqual(cluster_info(a)["cluster_slots_assigned"], "0")


class RedisCliCluster(unittest.TestCase):
    """redis-cli --cluster create / check / add-node, unchanged."""

    def setUp(self):
        self.nodes = Nodes()
        self.removed = []  # nodes del-node took out of the cluster

    def tearDown(self):
        self.nodes.cleanup()

    def shards(self, via):
        """{shard id: [nodes]} from each node's own CLUSTER MYSHARDID (removed nodes left out)."""
        out = {}
        for node in self.nodes.all:
            if node not in self.removed:
                out.setdefault(text(cmd(node, "CLUSTER", "MYSHARDID")), []).append(node)
        return out

    def check(self, entry):
        code, out = redis_cli("--cluster", "check", f"127.0.0.1:{entry.port}")
        self.assertEqual(code, 0, out)
        self.assertIn("[OK] All nodes agree about slots configuration.", out)
        self.assertIn("[OK] All 16384 slots covered.", out)
        self.assertNotIn("[ERR]", out)
        return out

    def write_and_converge(self, count):
        import redis
        client = redis.RedisCluster(host="127.0.0.1", port=self.nodes.all[0].port,
                                    socket_timeout=10)
        try:
            written = {f"w{count}:{i}": str(i) for i in range(count)}
            for key, value in written.items():
                client.set(key, value)
        finally:
            client.close()
        shards = self.shards(self.nodes.all[0])
        total = 0
        for members in shards.values():
            if len(members) > 1:
                wait_converged(members, timeout=60)
            total += int(cmd(members[0], "DBSIZE"))
        self.assertGreaterEqual(total, count)
        def serves(node, key):
            try:
                return int(cmd(node, "EXISTS", key)) == 1
            except Exception as error:
                if "MOVED" in str(error):
                    return False
                raise
        for key, value in written.items():
            owner = [m for m in shards.values() if serves(m[0], key)]
            self.assertEqual(len(owner), 1, key)
            for member in owner[0]:
                self.assertEqual(text(cmd(member, "GET", key)), value)

    def test_create_with_two_replicas_check_and_add_node(self):
        # redis-cli refuses fewer than 3 masters: 9 nodes give 3 shards of 3 regions.
        nodes = self.nodes.start(9)
        code, out = redis_cli("--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes],
                              "--cluster-replicas", "2", "--cluster-yes")
        self.assertEqual(code, 0, out)
        self.assertIn("[OK] All 16384 slots covered.", out)
        wait_until(lambda: sorted(len(m) for m in self.shards(nodes[0]).values()) == [3, 3, 3],
                   timeout=30, interval=0.1, what="3 shards of 3 regions")
        wait_state_ok(nodes)
        wait_until(lambda: self.check(nodes[0]), timeout=30, interval=0.5,
                   what="redis-cli --cluster check to pass")
        self.write_and_converge(300)

        # add-node: a new (empty) shard, then a new region of one shard.
        new_shard, new_region = self.nodes.start(2)
        code, out = redis_cli("--cluster", "add-node", f"127.0.0.1:{new_shard.port}",
                              f"127.0.0.1:{nodes[0].port}")
        self.assertEqual(code, 0, out)
        wait_known(self.nodes.all[:10], 10)
        self.assertEqual(text(cmd(new_shard, "CLUSTER", "MYSHARDID")), myid(new_shard))
        code, out = redis_cli("--cluster", "add-node", f"127.0.0.1:{new_region.port}",
                              f"127.0.0.1:{nodes[0].port}", "--cluster-slave",
                              "--cluster-master-id", myid(nodes[0]))
        self.assertEqual(code, 0, out)
        wait_known(self.nodes.all, 11)
        wait_until(lambda: text(cmd(new_region, "CLUSTER", "MYSHARDID")) ==
                   text(cmd(nodes[0], "CLUSTER", "MYSHARDID")), timeout=30, interval=0.1,
                   what="the added region to join the shard")
        wait_until(lambda: self.check(nodes[0]), timeout=30, interval=0.5,
                   what="redis-cli --cluster check to pass after add-node")
        self.write_and_converge(200)
        # del-node before fix: fix gives uncovered slots to a random primary, which may be the
        # empty shard (del-node then refuses it as not empty, as it should).
        self.del_node(nodes[0], new_shard)
        self.fix_open_and_uncovered_slots(nodes[0])
        self.del_and_add_data_region(nodes[0], new_region)

    def fix_open_and_uncovered_slots(self, entry):
        """--cluster fix closes a slot an interrupted reshard left open (an IMPORTING mark with
        no migration behind it) and covers unassigned slots."""
        def owner_of(slot):
            for line in nodes_lines(entry):
                if "master" in line[2] and any(
                        int(s.split("-")[0]) <= slot <= int(s.split("-")[-1])
                        for s in line[8:] if not s.startswith("[")):
                    return line[0]
            raise AssertionError(f"no owner of slot {slot}")
        empty_slots = [s for s in range(0, 2000) if int(cmd(entry, "CLUSTER", "COUNTKEYSINSLOT",
                                                            str(s))) == 0][:4]
        open_slot, uncovered = empty_slots[0], empty_slots[1:]
        # The importing side: a primary of another shard than the slot's owner.
        owner = owner_of(open_slot)
        empty = next(n for n in self.nodes.all if n not in self.removed and myid(n) != owner and
                     text(cmd(n, "CLUSTER", "MYSHARDID")) == myid(n))
        self.assertEqual(cmd(empty, "CLUSTER", "SETSLOT", str(open_slot), "IMPORTING",
                             owner_of(open_slot)), b"OK")
        self.assertIn(f"[{open_slot}-<-", text(cmd(empty, "CLUSTER", "NODES")))
        self.assertEqual(cmd(entry, "CLUSTER", "DELSLOTS", *map(str, uncovered)), b"OK")
        wait_until(lambda: all(cluster_info(n)["cluster_slots_assigned"] == str(16384 - 3)
                               for n in self.nodes.all if n not in self.removed),
                   timeout=20, interval=0.05,
                   what="the deleted slots to be unassigned everywhere")
        code, out = redis_cli("--cluster", "check", f"127.0.0.1:{entry.port}")
        self.assertIn("[ERR] Not all 16384 slots are covered by nodes.", out)
        self.assertIn(f"[WARNING] The following slots are open: {open_slot}", out)
        # redis-cli asks before covering slots even with --cluster-yes: answered on stdin.
        code, out = redis_cli("--cluster", "fix", f"127.0.0.1:{entry.port}", "--cluster-yes",
                              input="yes\n" * 3)
        self.assertEqual(code, 0, out)
        self.assertIn(">>> Covering slot", out)
        wait_until(lambda: self.check(entry), timeout=30, interval=0.5,
                   what="redis-cli --cluster check to pass after fix")
        self.assertNotIn("[", text(cmd(empty, "CLUSTER", "NODES")))

    def del_and_add_data_region(self, entry, region):
        """del-node of a region holding its shard's data: RESET flushes it and gives it a new
        replica id; its shard's other regions forget its old one and go on; add-node
        --cluster-slave then makes it a new region, which gets the shard's data."""
        shard_id = text(cmd(entry, "CLUSTER", "MYSHARDID"))
        members = [n for n in self.shards(entry)[shard_id] if n is not region]
        self.assertEqual(len(members), 3)
        own = {key: key for key in self.keys_of(region, "own", 20)}
        for key, value in own.items():  # the region's own writes: on the others before RESET
            cmd(region, "SET", key, value)
        wait_converged(members + [region], timeout=60)
        old_replica = replica_id(region)
        region_id = myid(region)
        code, out = redis_cli("--cluster", "del-node", f"127.0.0.1:{entry.port}", region_id)
        self.assertEqual(code, 0, out)
        self.removed.append(region)
        self.assertEqual(cmd(region, "DBSIZE"), 0)
        self.assertEqual(cluster_info(region)["cluster_known_nodes"], "1")
        self.assertEqual(text(cmd(region, "CLUSTER", "MYSHARDID")), region_id)
        new_replica = replica_id(region)
        self.assertNotEqual(new_replica, old_replica)
        self.assertIn("crdt_peers:0", replication_info(region))
        # The others forgot the old replica (no peer holds back compaction for it) and go on.
        for member in members:
            self.assertNotIn(f"id={old_replica}", replication_info(member))
        for i, member in enumerate(members):
            for key in self.keys_of(member, f"after-del{i}-", 5):
                cmd(member, "SET", key, "1")
        wait_converged(members, timeout=60)
        for key, value in own.items():
            for member in members:
                self.assertEqual(text(cmd(member, "GET", key)), value)
        self.write_and_converge(100)
        # Added again as a region of the same shard: a new replica, which gets the data.
        code, out = redis_cli("--cluster", "add-node", f"127.0.0.1:{region.port}",
                              f"127.0.0.1:{entry.port}", "--cluster-slave",
                              "--cluster-master-id", myid(entry))
        self.assertEqual(code, 0, out)
        self.removed.remove(region)
        wait_until(lambda: text(cmd(region, "CLUSTER", "MYSHARDID")) == shard_id, timeout=30,
                   interval=0.1, what="the re-added region to join the shard")
        wait_converged(members + [region], timeout=60)
        self.assertEqual(cmd(region, "DBSIZE"), cmd(entry, "DBSIZE"))
        for key, value in own.items():
            self.assertEqual(text(cmd(region, "GET", key)), value)
        self.assertEqual(replica_id(region), new_replica)
        for member in members:
            self.assertNotIn(f"id={old_replica}", replication_info(member))

    @staticmethod
    def keys_of(node, prefix, count):
        """`count` keys whose slots `node`'s shard owns (it answers them without MOVED)."""
        keys = []
        for i in range(100000):
            key = f"{prefix}{i}"
            try:
                cmd(node, "EXISTS", key)
            except Exception as error:
                if "MOVED" in str(error):
                    continue
                raise
            keys.append(key)
            if len(keys) == count:
                return keys
        raise AssertionError(f"fewer than {count} keys of port {node.port}'s shard")

    def del_node(self, entry, empty):
        """--cluster del-node of an empty shard: FORGET on every other node, then CLUSTER RESET
        SOFT on it, which claims none of the cluster's slots."""
        empty_id = myid(empty)
        others = [n for n in self.nodes.all if n is not empty]
        code, out = redis_cli("--cluster", "del-node", f"127.0.0.1:{entry.port}", empty_id)
        self.assertEqual(code, 0, out)
        self.removed.append(empty)
        self.assertEqual(cluster_info(empty)["cluster_known_nodes"], "1")
        self.assertEqual(cluster_info(empty)["cluster_slots_assigned"], "0")
        self.assertEqual(text(cmd(empty, "CLUSTER", "MYSHARDID")), empty_id)
        wait_known(others, len(others))
        # Gossip rounds pass and the others keep every slot (the reset node claims none of them).
        sent = int(cluster_info(entry)["cluster_stats_messages_sent"])
        wait_until(lambda: int(cluster_info(entry)["cluster_stats_messages_sent"]) >= sent + 20,
                   timeout=20, interval=0.1, what="more gossip rounds")
        for node in others:
            self.assertEqual(cluster_info(node)["cluster_slots_assigned"], "16384")
            self.assertEqual(cluster_info(node)["cluster_known_nodes"], str(len(others)))
        wait_until(lambda: self.check(entry), timeout=30, interval=0.5,
                   what="redis-cli --cluster check to pass after del-node")


    def test_reshard_under_writes(self):
        import redis
        nodes = self.nodes.start(6)
        code, out = redis_cli("--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes],
                              "--cluster-replicas", "1", "--cluster-yes")
        self.assertEqual(code, 0, out)
        wait_state_ok(nodes)
        wait_until(lambda: self.check(nodes[0]), timeout=30, interval=0.5,
                   what="redis-cli --cluster check to pass")
        masters = {}
        for line in nodes_lines(nodes[0]):
            if "master" in line[2] and len(line) > 8:
                masters[int(line[8].split("-")[0])] = line[0]
        source, target = masters[0], masters[max(masters)]

        acknowledged = {}
        errors = []
        stop = threading.Event()

        def writer():
            client = redis.RedisCluster(host="127.0.0.1", port=nodes[0].port, socket_timeout=20)
            i = 0
            try:
                while not stop.is_set():
                    key = f"r:{i}"
                    try:
                        client.set(key, str(i))
                        acknowledged[key] = str(i)
                    except Exception as error:  # any error a client sees fails the test
                        errors.append(f"{key}: {error!r}")
                    i += 1
            finally:
                client.close()

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            wait_until(lambda: len(acknowledged) > 200, timeout=30, what="the writer to start")
            began = time.monotonic()
            code, out = redis_cli("--cluster", "reshard", f"127.0.0.1:{nodes[0].port}",
                                  "--cluster-from", source, "--cluster-to", target,
                                  "--cluster-slots", str(RESHARD_SLOTS), "--cluster-yes", timeout=900)
            took = time.monotonic() - began
            self.assertEqual(code, 0, out[-3000:])
            print(f"\nreshard of {RESHARD_SLOTS} slots under writes: {took:.1f} s, "
                  f"{len(acknowledged)} writes acknowledged so far", flush=True)
            wait_until(lambda: len(acknowledged) > 200 + 500, timeout=30,
                       what="more writes after the reshard")
        finally:
            stop.set()
            thread.join(timeout=60)
        self.assertEqual(errors, [])
        wait_until(lambda: self.check(nodes[0]), timeout=30, interval=0.5,
                   what="redis-cli --cluster check to pass after the reshard")
        def slot_count(node_id):
            count = 0
            for line in nodes_lines(nodes[0]):
                if line[0] != node_id:
                    continue
                for spec in line[8:]:
                    low, _, high = spec.partition("-")
                    count += int(high or low) - int(low) + 1
            return count
        self.assertEqual(slot_count(target), 5461 + RESHARD_SLOTS)
        self.assertEqual(slot_count(source), 5461 - RESHARD_SLOTS)
        # rebalance moves slots back the same way (a threshold below the imbalance).
        code, out = redis_cli("--cluster", "rebalance", f"127.0.0.1:{nodes[0].port}",
                              "--cluster-threshold", "1", timeout=900)
        self.assertEqual(code, 0, out[-3000:])
        wait_until(lambda: self.check(nodes[0]), timeout=30, interval=0.5,
                   what="redis-cli --cluster check to pass after the rebalance")
        counts = [slot_count(node_id) for node_id in masters.values()]
        self.assertLessEqual(max(counts) - min(counts), RESHARD_SLOTS // 2, counts)
        self.assertEqual(cluster_info(nodes[0])["cluster_slots_assigned"], "16384")
        reader = redis.RedisCluster(host="127.0.0.1", port=nodes[0].port, socket_timeout=20)
        try:
            keys = list(acknowledged)
            for start in range(0, len(keys), 500):
                batch = keys[start:start + 500]
                values = reader.mget_nonatomic(batch)
                for key, value in zip(batch, values):
                    self.assertEqual(text(value), acknowledged[key], key)
        finally:
            reader.close()
        for members in self.shards(nodes[0]).values():
            wait_converged(members, timeout=60)


if __name__ == "__main__":
    unittest.main()
