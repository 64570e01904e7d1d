"""Pub/Sub on real lattice-server processes: one region (subscribed mode, patterns, RESP3 pushes,
the output-buffer limit of a slow subscriber) and three regions of one shard (a message published
in one region reaches the subscribers of the others, in publish order). Every wait is a bounded
poll. Seeds are printed so a failure replays.
"""
import os
import random
import socket
import unittest

import redis

from harness import RegionsTestCase, ServerProcess, info_fields, read_until, wait_until

SEED = int(os.environ.get("LATTICE_TEST_SEED", random.randrange(1 << 30)))
print(f"test_pubsub seed: {SEED} (replay with LATTICE_TEST_SEED={SEED})", flush=True)


def next_message(pubsub, timeout=10.0):
    """The next message (not a subscribe confirmation) of a redis-py PubSub, within timeout."""
    return wait_until(lambda: pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05),
                      timeout=timeout, what="a Pub/Sub message")


def wait_links_deliver(publisher, subscribers, timeout=10.0):
    """Publishes on channel "probe" (which every subscriber also subscribed to) until each of
    them has received one: a message published while a peer link is still being set up or
    replaced after start-up may be lost (at most once, docs/semantics.md). Bounded."""
    pending = list(subscribers)

    def delivered():
        publisher.publish("probe", "probe")
        for pubsub in list(pending):
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            while message is not None:
                if message["channel"] == b"probe":
                    pending.remove(pubsub)
                    break
                message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
        return not pending

    wait_until(delivered, timeout=timeout, what="a probe message in every region")


def next_data(pubsub, timeout=10.0):
    """The data of the next message that is not a probe."""
    while True:
        message = next_message(pubsub, timeout)
        if message["channel"] != b"probe":
            return message


def subscribed(client, channel, count):
    """Whether `channel` has `count` subscribers on the server `client` talks to."""
    return dict(client.pubsub_numsub(channel)).get(channel.encode(), 0) == count


class LocalPubSubTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ServerProcess().start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_channels_and_patterns(self):
        client = self.server.client()
        pubsub = client.pubsub()
        pubsub.subscribe("news")
        pubsub.psubscribe("n*")
        wait_until(lambda: subscribed(client, "news", 1), what="the subscription")
        self.assertEqual(client.publish("news", "hello"), 2)
        got = [next_message(pubsub), next_message(pubsub)]
        self.assertEqual(got[0]["type"], "message")
        self.assertEqual(got[0]["data"], b"hello")
        self.assertEqual(got[1]["type"], "pmessage")
        self.assertEqual(got[1]["pattern"], b"n*")
        self.assertEqual(client.pubsub_numpat(), 1)
        self.assertIn(b"news", client.pubsub_channels())
        fields = info_fields(self.server, "stats")
        self.assertEqual(fields["pubsub_channels"], "1")
        self.assertEqual(fields["pubsub_patterns"], "1")
        pubsub.close()
        wait_until(lambda: client.pubsub_numpat() == 0, what="the subscriber to be gone")

    def test_subscribed_mode_rules_resp2(self):
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as sock:
            sock.sendall(b"SUBSCRIBE a\r\nGET k\r\nPING\r\n")
            data = read_until(sock, b"pong\r\n$0\r\n\r\n")
        self.assertTrue(data.startswith(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"))
        self.assertIn(b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                      b"PING / QUIT / RESET are allowed in this context\r\n", data)

    def test_resp3_push(self):
        client = self.server.client()
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as sock:
            sock.sendall(b"HELLO 3\r\nSUBSCRIBE chan\r\n")
            read_until(sock, b"subscribe\r\n$4\r\nchan\r\n:1\r\n")
            self.assertEqual(client.publish("chan", "pushed"), 1)
            data = read_until(sock, b"pushed\r\n")
        self.assertTrue(data.endswith(b">3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$6\r\npushed\r\n"))

    def test_slow_subscriber_is_cut_and_server_stays_up(self):
        client = self.server.client()
        client.config_set("client-output-buffer-limit", "pubsub 1mb 256kb 60")
        before = int(info_fields(self.server, "stats")["client_output_buffer_limit_disconnections"])
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", self.server.port))
        slow.sendall(b"SUBSCRIBE slow\r\n")  # and never read again
        wait_until(lambda: subscribed(client, "slow", 1), what="the slow subscriber")
        payload = "x" * 65536
        def cut():
            client.publish("slow", payload)
            return not subscribed(client, "slow", 1)
        wait_until(cut, timeout=30, interval=0, what="the slow subscriber to be cut")
        after = int(info_fields(self.server, "stats")["client_output_buffer_limit_disconnections"])
        self.assertEqual(after, before + 1)
        self.assertTrue(client.ping())
        slow.close()
        client.config_set("client-output-buffer-limit", "pubsub 32mb 8mb 60")


class CrossRegionPubSubTest(RegionsTestCase):

    def test_message_reaches_every_region_in_order(self):
        a, b, c = (server.client() for server in self.regions)
        subscribers = []
        for client in (b, c):
            pubsub = client.pubsub()
            pubsub.subscribe("events", "probe")
            wait_until(lambda: subscribed(client, "events", 1), what="a subscription")
            subscribers.append(pubsub)
        wait_links_deliver(a, subscribers)
        rng = random.Random(SEED)
        messages = [f"m{i}-{rng.randrange(1 << 20)}" for i in range(50)]
        for message in messages:
            self.assertEqual(a.publish("events", message), 0)  # local receivers only
        for pubsub in subscribers:
            got = [next_data(pubsub)["data"].decode() for _ in messages]
            self.assertEqual(got, messages)
            pubsub.close()

    def test_patterns_and_region_local(self):
        a, b = self.regions[0].client(), self.regions[1].client()
        pubsub = b.pubsub()
        pubsub.psubscribe("room:*")
        pubsub.subscribe("probe")
        wait_until(lambda: b.pubsub_numpat() == 1, what="the pattern subscription")
        wait_until(lambda: subscribed(b, "probe", 1), what="the probe subscription")
        wait_links_deliver(a, [pubsub])
        a.config_set("crdt-pubsub-region-local", "yes")
        a.publish("room:1", "stays")
        a.config_set("crdt-pubsub-region-local", "no")
        a.publish("room:1", "travels")
        message = next_data(pubsub)
        self.assertEqual(message["type"], "pmessage")
        self.assertEqual(message["data"], b"travels")  # "stays" never left region a
        pubsub.close()


if __name__ == "__main__":
    unittest.main()
