"""Sharded Pub/Sub in a 2-shard x 2-region cluster (test_cluster.py's Cluster): SSUBSCRIBE and
SPUBLISH are routed by the channel's slot (MOVED from the wrong shard, CROSSSLOT for channels of
two slots), and a message SPUBLISHed on one region of the owning shard reaches the shard
channel's subscribers in both of its regions. Every wait is a bounded poll.
"""
import unittest

import redis

from harness import wait_until
from test_cluster import Cluster, key_slot


def next_message(pubsub, timeout=15.0):
    return wait_until(lambda: pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05),
                      timeout=timeout, what="a shard message")


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
        for region in (0, 1):
            pubsub = c.node("A", region).client().pubsub()
            pubsub.ssubscribe(channel)
            wait_until(lambda p=pubsub: p.get_message(timeout=0.05) is not None,
                       what="the ssubscribe confirmation")
            subscribers.append(pubsub)
        publisher = c.node("A", 0).client()
        # A message published while the peer link is still settling may be lost (at most once):
        # publish until region 1 has one, then check an ordered run.
        def reached():
            publisher.execute_command("SPUBLISH", channel, "probe")
            return subscribers[1].get_message(ignore_subscribe_messages=True, timeout=0.05)
        wait_until(reached, timeout=15, what="a shard message in region 1")
        for pubsub in subscribers:
            while pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is not None:
                pass
        self.assertEqual(publisher.execute_command("SPUBLISH", channel, "hello"), 1)
        for pubsub in subscribers:
            message = next_message(pubsub)
            self.assertEqual(message["type"], "smessage")
            self.assertEqual(message["channel"], channel.encode())
            self.assertEqual(message["data"], b"hello")
        for pubsub in subscribers:
            pubsub.close()


if __name__ == "__main__":
    unittest.main()
