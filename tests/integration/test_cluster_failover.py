"""In-region high availability (docs/cluster.md, "Failure detection and in-region failover").

Two shards, each with two nodes in region a and one in region b, built the Valkey way (MEET,
ADDSLOTSRANGE, REPLICATE; every node of a shard is an active-active region of it). A redis-py
RedisCluster client in region a writes without pause; the node it writes to for shard 1 is
killed with SIGKILL. Failure detection marks it PFAIL after cluster-node-timeout (1000 ms here)
and FAIL once a majority of the nodes agree; region a's views then name the shard's other
region-a node as the slots' primary, and the client goes on writing through it. The test checks
that the client saw connection errors only, measures the gap from the kill to the next write
that succeeded for shard 1 (printed), and restarts the node. The restarted node catches up with
its shard before any view names it again: the test polls region a's view and, the moment it
moves back, finds on the restarted node itself every write acknowledged while it was down. Then
every node converges, and every acknowledged write is on all three nodes of its shard.

Every wait is a bounded poll; every process is one this test started, stopped by its handle.
"""
import copy
import logging
import signal
import threading
import time
import types
import unittest

from harness import ServerProcess, wait_until, wait_connected, wait_converged
from test_cluster import key_slot
from test_valkey_cluster_tools import cluster_info

NODE_TIMEOUT_MS = 1000
BULK_KEYS = 20000  # written to the killed node's shard while it is down
# redis-py logs every connection error it retries with a traceback; the test counts them itself.
logging.getLogger("redis.cluster").setLevel(logging.CRITICAL)


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def cmd(node, *args):
    return node.client().execute_command(*args)


def myid(node):
    return text(cmd(node, "CLUSTER", "MYID"))


def nodes_lines(node):
    return [line.split() for line in text(cmd(node, "CLUSTER", "NODES")).splitlines() if line]


def flags_of(node, node_id):
    for line in nodes_lines(node):
        if line[0] == node_id:
            return line[2].split(",")
    raise AssertionError(f"{node_id} not in CLUSTER NODES of port {node.port}")


def primary_port(node, slot):
    """The port CLUSTER SLOTS on `node` names first for `slot`."""
    for entry in cmd(node, "CLUSTER", "SLOTS"):
        if entry[0] <= slot <= entry[1]:
            return int(entry[2][1])
    raise AssertionError(f"slot {slot} not in CLUSTER SLOTS of port {node.port}")


def pairs(flat):
    """A RESP2 map (a flat array of names and values) as a dict with text names."""
    return {text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}


def shard_health(node, node_id):
    for shard in cmd(node, "CLUSTER", "SHARDS"):
        for entry in map(pairs, pairs(shard)["nodes"]):
            if text(entry["id"]) == node_id:
                return text(entry["health"])
    raise AssertionError(f"{node_id} not in CLUSTER SHARDS of port {node.port}")


def node_started(region):
    return ServerProcess("--cluster-enabled", "yes", "--region", region,
                         "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                         "--enable-debug-command", "yes").start()


class Writer:
    """A RedisCluster client that writes new keys in a loop on its own thread, recording every
    acknowledged write, the start and end time of each write to shard 1, and every error."""

    def __init__(self, startup):
        import redis.cluster
        from redis.cluster import ClusterNode, RedisCluster
        # redis-py 4.3 (Debian's) reloads its slot map after a connection error by dialing its
        # startup nodes again, and first deep-copies its connection arguments, which hold a
        # bound method of the client (and so its lock): "cannot pickle '_thread.lock' object",
        # and the client never recovers. A shallow copy is what later versions do.
        redis.cluster.copy = types.SimpleNamespace(deepcopy=copy.copy)
        self.client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in startup],
                                   socket_timeout=5)
        self.acknowledged = {}
        self.order = []      # acknowledged keys in order (appended by the writer thread only)
        self.shard1_ok = []  # (started, finished) of each acknowledged write to slots 0-8191
        self.errors = []     # (time, exception)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self):
        i = 0
        try:
            while not self.stop.is_set():
                key = f"f:{i}"
                started = time.monotonic()
                try:
                    self.client.set(key, str(i))
                    self.acknowledged[key] = str(i)
                    self.order.append(key)
                    if key_slot(key) < 8192:
                        self.shard1_ok.append((started, time.monotonic()))
                except Exception as error:  # counted and checked by the test
                    self.errors.append((time.monotonic(), error))
                i += 1
        finally:
            self.client.close()

    def wait_more(self, count, what):
        target = len(self.acknowledged) + count
        wait_until(lambda: len(self.acknowledged) >= target, timeout=30, interval=0.02, what=what)


class InRegionFailover(unittest.TestCase):
    def setUp(self):
        self.nodes = []

    def tearDown(self):
        for node in self.nodes:
            node.cleanup()

    def start(self, region):
        node = node_started(region)
        self.nodes.append(node)
        return node

    def test_kill_the_serving_node_and_writes_go_on_in_the_region(self):
        import redis
        p1, q1, r1 = self.start("a"), self.start("a"), self.start("b")  # shard 1
        p2, q2, r2 = self.start("a"), self.start("a"), self.start("b")  # shard 2
        everyone = [p1, q1, r1, p2, q2, r2]
        self.assertEqual(cmd(p1, "CLUSTER", "ADDSLOTSRANGE", "0", "8191"), b"OK")
        self.assertEqual(cmd(p2, "CLUSTER", "ADDSLOTSRANGE", "8192", "16383"), b"OK")
        for node in everyone[1:]:
            cmd(node, "CLUSTER", "MEET", "127.0.0.1", str(p1.port))
        wait_until(lambda: all(len(nodes_lines(n)) == 6 for n in everyone), timeout=20,
                   interval=0.05, what="every node to know 6 nodes")
        for node, primary in ((q1, p1), (r1, p1), (q2, p2), (r2, p2)):
            self.assertEqual(cmd(node, "CLUSTER", "REPLICATE", myid(primary)), b"OK")
        for node in everyone:
            wait_connected(node, 2, timeout=30)
        wait_until(lambda: all(primary_port(n, 0) == p1.port for n in (p2, q2, q1)), timeout=20,
                   interval=0.05, what="region a to be served by p1 for shard 1")
        self.assertEqual(primary_port(r2, 0), r1.port)  # region b has its own node
        id_p1 = myid(p1)

        writer = Writer([p1, q1, p2, q2])
        writer.thread.start()
        try:
            writer.wait_more(300, "the writer to start")
            p1.stop(signal.SIGKILL)
            killed = time.monotonic()
            acknowledged_at_kill = len(writer.order)

            # PFAIL, then FAIL by a majority; region a's views move shard 1 to q1.
            wait_until(lambda: "fail" in flags_of(p2, id_p1), timeout=10, interval=0.02,
                       what="p1 to be marked FAIL")
            failed_after = time.monotonic() - killed
            self.assertEqual(primary_port(p2, 0), q1.port)  # p2's FAIL and its view move together
            # Each node marks p1 FAIL on its own (a tick or a gossip apart): q1's and q2's views
            # move when theirs does, not necessarily by the time p2's did.
            wait_until(lambda: primary_port(q1, 0) == q1.port and primary_port(q2, 0) == q1.port,
                       timeout=10, interval=0.02, what="region a's other views to move to q1")
            switched_after = time.monotonic() - killed
            self.assertEqual(primary_port(r2, 0), r1.port)
            self.assertEqual(shard_health(p2, id_p1), "failed")
            self.assertIn("slave", flags_of(p2, id_p1))
            self.assertGreaterEqual(int(cmd(p2, "CLUSTER", "COUNT-FAILURE-REPORTS", id_p1)), 1)
            try:
                wait_until(lambda: any(start > killed for start, _ in writer.shard1_ok),
                           timeout=20, interval=0.02, what="a write to shard 1 after the kill")
            except AssertionError:
                print([(round(t - killed, 2), repr(e)) for t, e in writer.errors[:20]], flush=True)
                raise
            gap = min(end for start, end in writer.shard1_ok if start > killed) - killed
            writer.wait_more(300, "writes through q1")
            errors_before_restart = list(writer.errors)
            # A bulk of writes to shard 1 while p1 is down, so that its catch-up takes a while
            # after it answers gossip again (the window in which a view must not name it).
            bulk = {}
            for i in range(100000):
                if len(bulk) == BULK_KEYS:
                    break
                if key_slot(f"bulk:{i}") < 8192:
                    bulk[f"bulk:{i}"] = str(i)
            pipe = q1.client().pipeline(transaction=False)
            for key, value in bulk.items():
                pipe.set(key, value)
            self.assertTrue(all(pipe.execute()))

            # p1 comes back: it recovers its op log, FAIL is cleared as soon as it answers, and
            # it catches up with its shard's other regions; only then does region a's view move
            # back to it, so the moment it does, p1 holds every write made while it was down.
            written_while_down = [k for k in writer.order[acknowledged_at_kill:]
                                  if key_slot(k) < 8192]
            self.assertGreaterEqual(len(written_while_down), 50)
            written_while_down += list(bulk)
            writer.acknowledged.update(bulk)
            p1.start(timeout=30)
            wait_until(lambda: "fail" not in flags_of(p2, id_p1) and
                       "fail?" not in flags_of(p2, id_p1), timeout=30, interval=0.02,
                       what="p1's FAIL to be cleared")
            wait_until(lambda: primary_port(p2, 0) == p1.port, timeout=30, interval=0.01,
                       what="region a's view to move back to p1")
            pipe = p1.client().pipeline(transaction=False)
            for key in written_while_down:
                pipe.get(key)
            missing = [k for k, v in zip(written_while_down, pipe.execute())
                       if text(v) != writer.acknowledged[k]]
            self.assertEqual(missing, [], "served again before it caught up")
            self.assertEqual(cluster_info(p1)["lattice_catching_up"], "0")
            print(f"\np1 caught up in {cluster_info(p1)['lattice_catch_up_ms']} ms "
                  f"({len(written_while_down)} writes to its shard while it was down)", flush=True)
            writer.wait_more(300, "writes after p1's return")
        finally:
            writer.stop.set()
            writer.thread.join(timeout=30)
        self.assertFalse(writer.thread.is_alive())
        print(f"\nkill -9 of the serving node: FAIL seen after {failed_after:.2f} s, next "
              f"acknowledged write to its shard {gap:.2f} s after the kill; "
              f"{len(errors_before_restart)} client errors, {len(writer.acknowledged)} writes "
              f"acknowledged", flush=True)
        # Only connection errors, and only while the node was being detected.
        for when, error in writer.errors:
            self.assertIsInstance(error, (redis.exceptions.ConnectionError,
                                          redis.exceptions.TimeoutError), repr(error))
            self.assertGreaterEqual(when, killed)
            self.assertLessEqual(when, killed + switched_after + 5)
        self.assertLess(gap, 10)

        # No acknowledged write is lost: each is on all three nodes of its shard.
        wait_converged([p1, q1, r1], timeout=60)
        wait_converged([p2, q2, r2], timeout=60)
        for shard, low, high in (([p1, q1, r1], 0, 8191), ([p2, q2, r2], 8192, 16383)):
            keys = [k for k in writer.acknowledged if low <= key_slot(k) <= high]
            for node in shard:
                pipe = node.client().pipeline(transaction=False)
                for key in keys:
                    pipe.get(key)
                values = pipe.execute()
                for key, value in zip(keys, values):
                    self.assertEqual(text(value), writer.acknowledged[key],
                                     f"{key} on port {node.port}")


if __name__ == "__main__":
    unittest.main()
