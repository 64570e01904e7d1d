"""Pub/Sub in a 2-shard x 2-region cluster (test_cluster.py's Cluster): SSUBSCRIBE and
SPUBLISH are routed by the channel's slot (MOVED from the wrong shard, CROSSSLOT for channels of
two slots), and a message SPUBLISHed on one region of the owning shard reaches the shard
channel's subscribers in both of its regions; a PUBLISH on any node reaches the subscribers of
all four nodes, once each and in publish order, and SPUBLISH stays in its shard. Every wait is a
bounded poll.
"""
import socket
import unittest

import redis

from differential import RespConnection
from harness import wait_until
from test_cluster import Cluster, key_slot


class ShardedPubSubTest(unittest.TestCase):
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

    def test_moved_and_crossslot(self):
        c = self.cluster
        channel_b = next(f"ch{i}" for i in range(1000) if key_slot(f"ch{i}") >= 8192)
        a0 = c.node("A", 0).client()
        with self.assertRaises(redis.exceptions.ResponseError) as caught:
            a0.execute_command("SPUBLISH", channel_b, "x")
        self.assertEqual(str(caught.exception),
                         f"MOVED {key_slot(channel_b)} 127.0.0.1:{c.node('B', 0).port}")
        with self.assertRaises(redis.exceptions.ResponseError) as caught:
            a0.execute_command("SSUBSCRIBE", channel_b)
        self.assertIn("MOVED", str(caught.exception))
        with self.assertRaises(redis.exceptions.ResponseError) as caught:
            a0.execute_command("SSUBSCRIBE", "x{1}", "x{2}")
        self.assertIn("CROSSSLOT", str(caught.exception))

    def test_spublish_reaches_both_regions_of_the_shard(self):
        c = self.cluster
        channel = next(f"sc{i}" for i in range(1000) if key_slot(f"sc{i}") < 8192)
        subscribers = []
        for region in (0, 1):  # raw sockets: Debian's redis-py has no SSUBSCRIBE
            conn = RespConnection(c.node("A", region).port)
            conn.sock.sendall(RespConnection.encode(["SSUBSCRIBE", channel]))
            self.assertEqual(conn.read_reply(), [b"ssubscribe", channel.encode(), 1])
            subscribers.append(conn)
        publisher = c.node("A", 0).client()
        # A message published while the peer link is still settling may be lost (at most once):
        # publish probes until region 1 has one, then check one message in both regions.
        subscribers[1].sock.settimeout(0.1)

        def reached():
            publisher.execute_command("SPUBLISH", channel, "probe")
            try:
                return subscribers[1].read_reply()
            except socket.timeout:
                return None
        wait_until(reached, timeout=15, what="a shard message in region 1")
        self.assertEqual(publisher.execute_command("SPUBLISH", channel, "hello"), 1)
        for conn in subscribers:
            conn.sock.settimeout(10)
            message = conn.read_reply()
            while message[2] == b"probe":
                message = conn.read_reply()
            self.assertEqual(message, [b"smessage", channel.encode(), b"hello"])
            conn.close()

    def test_publish_reaches_every_shard_and_region_once_in_order(self):
        c = self.cluster
        nodes = [c.node(shard, region) for shard in ("A", "B") for region in (0, 1)]
        subscribers = []
        for node in nodes:
            conn = RespConnection(node.port)
            conn.sock.sendall(RespConnection.encode(["SUBSCRIBE", "news"]))
            self.assertEqual(conn.read_reply(), [b"subscribe", b"news", 1])
            conn.sock.settimeout(0.05)
            subscribers.append(conn)
        publisher = c.node("A", 0).client()
        # Links and bus connections may still be settling (at most once: a message published
        # before may be lost): publish probes until every node has one, then drain the probes.
        reached = [False] * len(nodes)

        def all_reached():
            publisher.execute_command("PUBLISH", "news", "probe")
            for i, conn in enumerate(subscribers):
                try:
                    while True:
                        if conn.read_reply()[2] == b"probe":
                            reached[i] = True
                except socket.timeout:
                    pass
            return all(reached)
        wait_until(all_reached, timeout=20, what="a probe on every node")
        for conn in subscribers:
            try:
                while True:
                    conn.read_reply()
            except socket.timeout:
                pass
        sent = [f"m{i}" for i in range(50)]
        for message in sent:
            self.assertEqual(publisher.execute_command("PUBLISH", "news", message), 1)
        for node, conn in zip(nodes, subscribers):
            conn.sock.settimeout(10)
            got = [conn.read_reply() for _ in sent]
            self.assertEqual(got, [[b"message", b"news", m.encode()] for m in sent],
                             f"node on port {node.port}")
            conn.sock.settimeout(0.3)  # nothing more: each message once
            with self.assertRaises(socket.timeout):
                conn.read_reply()
        # SPUBLISH stays within the channel's shard: a plain subscriber of the same name in
        # shard B hears nothing of a shard message published in shard A.
        channel = next(f"news{i}" for i in range(1000) if key_slot(f"news{i}") < 8192)
        listener = RespConnection(c.node("B", 0).port)
        listener.sock.sendall(RespConnection.encode(["SUBSCRIBE", channel]))
        self.assertEqual(listener.read_reply(), [b"subscribe", channel.encode(), 1])
        publisher.execute_command("SPUBLISH", channel, "shard-only")
        publisher.execute_command("PUBLISH", channel, "everyone")
        listener.sock.settimeout(10)
        self.assertEqual(listener.read_reply(), [b"message", channel.encode(), b"everyone"])
        listener.close()
        for conn in subscribers:
            conn.close()


if __name__ == "__main__":
    unittest.main()
