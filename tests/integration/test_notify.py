"""Keyspace notifications (notify-keyspace-events) on real lattice-server processes:

- every event class in one region, diffed against redis-server 7.0: the same seeded command
  stream runs on both, a subscriber to `__key*__:*` on each records the messages, and the two
  sequences must be equal (commands both support; Valkey 9's hash-field events are checked
  separately, since 7.0 has no HEXPIRE);
- expiry (`expired`, `hexpired`), `new` (n), classes switched off, CONFIG GET's canonical form;
- across regions: a subscriber in region b sees the events of a write made in region a (the
  region raises them itself as it applies the op: notifications are not sent between regions).

Every wait is a bounded poll; the seed is printed so a failure replays.
"""
import os
import random
import socket
import unittest

from differential import Differential, RespConnection
from harness import ServerProcess, start_regions, wait_until

SEED = int(os.environ.get("LATTICE_TEST_SEED", random.randrange(1 << 30)))
print(f"test_notify seed: {SEED} (replay with LATTICE_TEST_SEED={SEED})", flush=True)

END = "notify-end-marker"


class Subscriber:
    """A raw RESP2 connection subscribed to every keyspace and keyevent channel."""

    def __init__(self, port, pattern="__key*__:*"):
        self.conn = RespConnection(port)
        self.conn.sock.sendall(RespConnection.encode(["PSUBSCRIBE", pattern]))
        reply = self.conn.read_reply()
        assert reply[0] == b"psubscribe", reply

    def until_end(self, marker=END, timeout=10.0):
        """The (channel, data) messages up to the keyevent of SET `marker` (excluded)."""
        self.conn.sock.settimeout(timeout)
        messages = []
        while True:
            kind, _pattern, channel, data = self.conn.read_reply()
            assert kind == b"pmessage", kind
            if data == marker.encode() or channel.endswith(b":" + marker.encode()):
                if channel.startswith(b"__keyevent"):
                    return messages
                continue
            messages.append((channel.decode(), data.decode()))

    def close(self):
        self.conn.close()


def stream(rng, count):
    """A seeded stream of writes over a few keys of every type (and a few that change nothing)."""
    strings, hashes, sets, zsets, lists = (["%s%d" % (p, i) for i in range(3)]
                                           for p in ("s", "h", "set", "z", "l"))
    value = lambda: str(rng.randrange(5))  # noqa: E731
    makers = [
        lambda: ["SET", rng.choice(strings), value()],
        lambda: ["SET", rng.choice(strings), value(), "EX", "1000"],
        lambda: ["SETEX", rng.choice(strings), "1000", value()],
        lambda: ["SETNX", rng.choice(strings), value()],
        lambda: ["INCRBY", rng.choice(strings[:1]) + "n", str(rng.randrange(1, 5))],
        lambda: ["INCRBYFLOAT", "fl", "1.5"],
        lambda: ["APPEND", rng.choice(strings), "x"],
        lambda: ["MSET", rng.choice(strings), value(), rng.choice(strings), value()],
        lambda: ["GETDEL", rng.choice(strings)],
        lambda: ["DEL", rng.choice(strings + hashes + sets)],
        lambda: ["EXPIRE", rng.choice(strings + hashes), "1000"],
        lambda: ["PERSIST", rng.choice(strings)],
        lambda: ["HSET", rng.choice(hashes), "f" + value(), value()],
        lambda: ["HDEL", rng.choice(hashes), "f" + value()],
        lambda: ["HINCRBY", rng.choice(hashes), "n", "2"],
        lambda: ["SADD", rng.choice(sets), "m" + value()],
        lambda: ["SREM", rng.choice(sets), "m" + value()],
        lambda: ["SINTERSTORE", "dst", rng.choice(sets), rng.choice(sets)],
        lambda: ["SUNIONSTORE", "dst", rng.choice(sets), rng.choice(sets)],
        lambda: ["SMOVE", rng.choice(sets), rng.choice(sets), "m" + value()],
        lambda: ["ZADD", rng.choice(zsets), value(), "m" + value()],
        lambda: ["ZINCRBY", rng.choice(zsets), "1", "m" + value()],
        lambda: ["ZREM", rng.choice(zsets), "m" + value()],
        lambda: ["ZPOPMIN", rng.choice(zsets)],
        lambda: ["ZREMRANGEBYSCORE", rng.choice(zsets), "0", "1"],
        lambda: ["LPUSH", rng.choice(lists), value()],
        lambda: ["RPUSH", rng.choice(lists), value(), value()],
        lambda: ["LPOP", rng.choice(lists)],
        lambda: ["RPOP", rng.choice(lists)],
        lambda: ["LMOVE", rng.choice(lists), rng.choice(lists), "LEFT", "RIGHT"],
        lambda: ["RENAME", rng.choice(strings), "renamed"],
        lambda: ["COPY", rng.choice(strings), "copied", "REPLACE"],
    ]
    return [rng.choice(makers)() for _ in range(count)]


class NotifyDifferentialTest(unittest.TestCase):
    def test_event_stream_matches_redis(self):
        rng = random.Random(SEED)
        commands = stream(rng, 400)
        with Differential() as diff:
            subscribers = []
            for conn in (diff.a, diff.b):
                self.assertEqual(conn.call("CONFIG", "SET", "notify-keyspace-events", "KEA"),
                                 ("status", "OK"))
            subscribers = [Subscriber(diff.oracle_port), Subscriber(diff.lattice.port)]
            try:
                replies = []
                for conn in (diff.a, diff.b):
                    replies.append(conn.pipeline(commands + [["SET", END, "1"]]))
                got = [s.until_end() for s in subscribers]
            finally:
                for s in subscribers:
                    s.close()
        for i, (want, have) in enumerate(zip(got[0], got[1])):
            if want != have:
                self.fail(f"seed={SEED} message #{i}: redis-server {want} lattice {have}; "
                          f"redis-server around it: {got[0][max(0, i - 4):i + 4]}\n"
                          f"lattice around it: {got[1][max(0, i - 4):i + 4]}")
        self.assertEqual(len(got[0]), len(got[1]), f"seed={SEED}")
        self.assertGreater(len(got[0]), 100)


class NotifyLocalTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ServerProcess("--notify-keyspace-events", "KEA").start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        self.client = self.server.client()
        self.client.config_set("notify-keyspace-events", "KEA")
        self.sub = Subscriber(self.server.port)

    def tearDown(self):
        self.sub.close()

    def events(self):
        self.client.set(END, "1")
        return self.sub.until_end()

    def test_config_value_is_canonical(self):
        self.client.config_set("notify-keyspace-events", "EKg$lshzxetd")
        self.assertEqual(self.client.config_get("notify-keyspace-events"),
                         {"notify-keyspace-events": "AKE"})
        with self.assertRaises(Exception):
            self.client.config_set("notify-keyspace-events", "Q")

    def test_expired_event_from_active_expiry(self):
        self.client.set("short", "v", px=30)
        got = wait_until(lambda: [m for m in self.events() if "expired" in m[0] + m[1]] or None,
                         what="an expired event")
        self.assertEqual(got, [("__keyspace@0__:short", "expired"),
                               ("__keyevent@0__:expired", "short")])

    def test_hash_field_events(self):
        self.client.hset("fields", mapping={"a": "1", "b": "2"})
        self.client.execute_command("HPEXPIRE", "fields", "30", "FIELDS", "1", "a")
        self.client.execute_command("HPEXPIRE", "fields", "100000", "FIELDS", "1", "b")
        self.client.execute_command("HPERSIST", "fields", "FIELDS", "1", "b")
        got = self.events()
        self.assertIn(("__keyevent@0__:hset", "fields"), got)
        self.assertIn(("__keyevent@0__:hexpire", "fields"), got)
        self.assertIn(("__keyevent@0__:hpersist", "fields"), got)
        seen = wait_until(lambda: [m for m in self.events() if "hexpired" in m[0] + m[1]] or None,
                          what="a hexpired event")
        self.assertEqual(seen, [("__keyspace@0__:fields", "hexpired"),
                                ("__keyevent@0__:hexpired", "fields")])

    def test_new_class_and_classes_off(self):
        self.client.config_set("notify-keyspace-events", "En$")
        self.client.set("fresh", "1")
        self.client.set("fresh", "2")
        self.client.sadd("not-notified", "m")  # class s is off: `new` only
        got = self.events()
        # SET of the marker raises `new` first, which ends the read.
        self.assertEqual(got, [("__keyevent@0__:new", "fresh"), ("__keyevent@0__:set", "fresh"),
                               ("__keyevent@0__:set", "fresh"),
                               ("__keyevent@0__:new", "not-notified")])

    def test_eviction_raises_evicted_not_del(self):
        """maxmemory eviction: `evicted` for each key it removes, and no `del` for its delete."""
        self.client.config_set("notify-keyspace-events", "Eeg$")  # $: the end marker's SET
        try:
            self.client.config_set("maxmemory-policy", "allkeys-random")
            self.client.config_set("maxmemory", str(4 << 20))
            pipe = self.client.pipeline(transaction=False)
            for i in range(8000):
                pipe.set("evict:%d" % i, "v" * 1000)
            pipe.execute()
        finally:
            self.client.config_set("maxmemory", "0")
            self.client.config_set("maxmemory-policy", "noeviction")
        evicted = int(self.client.info("stats")["evicted_keys"])
        self.assertGreater(evicted, 0)
        got = self.events()
        keys = [key for channel, key in got if channel == "__keyevent@0__:evicted"]
        self.assertEqual(len(keys), evicted)
        self.assertTrue(all(key.startswith("evict:") for key in keys), keys[:5])
        self.assertNotIn("__keyevent@0__:del", {channel for channel, _ in got})
        self.client.flushall()

    def test_flushall_raises_no_event(self):
        self.client.set("x", "1")
        self.client.flushall()
        got = self.events()
        self.assertEqual(got, [("__keyspace@0__:x", "set"), ("__keyevent@0__:set", "x")])

    def test_multi_events_follow_the_reply(self):
        """A RESP3 client subscribed to its own keys: the events of EXEC come after its reply."""
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        conn = RespConnection.__new__(RespConnection)
        conn.sock, conn.buffer = sock, b""
        sock.sendall(RespConnection.encode(["HELLO", "3"]))
        wait_until(lambda: b"proto" in sock.recv(4096), what="HELLO 3")
        sock.sendall(RespConnection.encode(["SUBSCRIBE", "__keyevent@0__:set"]) +
                     RespConnection.encode(["MULTI"]) + RespConnection.encode(["SET", "m", "1"]) +
                     RespConnection.encode(["EXEC"]))
        data = b""
        while data.count(b"__keyevent@0__:set") < 2:
            chunk = sock.recv(4096)
            self.assertTrue(chunk)
            data += chunk
        sock.close()
        self.assertLess(data.index(b"*1\r\n+OK"), data.rindex(b"__keyevent@0__:set"))


class NotifyAcrossRegionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.regions = start_regions(2, "--notify-keyspace-events", "KEA")

    @classmethod
    def tearDownClass(cls):
        for server in cls.regions:
            server.cleanup()

    def test_subscriber_in_b_sees_write_in_a(self):
        a, b = self.regions
        sub = Subscriber(b.port)
        try:
            client = a.client()
            client.set("crossing", "1")
            client.hset("crossing-h", "f", "v")
            client.sadd("crossing-s", "m")
            client.zadd("crossing-z", {"m": 1})
            client.expire("crossing", 1000)
            client.delete("crossing-s")
            client.set(END, "1")
            got = sub.until_end(timeout=20)
        finally:
            sub.close()
        self.assertEqual(got, [
            ("__keyspace@0__:crossing", "set"), ("__keyevent@0__:set", "crossing"),
            ("__keyspace@0__:crossing-h", "hset"), ("__keyevent@0__:hset", "crossing-h"),
            ("__keyspace@0__:crossing-s", "sadd"), ("__keyevent@0__:sadd", "crossing-s"),
            ("__keyspace@0__:crossing-z", "zadd"), ("__keyevent@0__:zadd", "crossing-z"),
            ("__keyspace@0__:crossing", "expire"), ("__keyevent@0__:expire", "crossing"),
            ("__keyspace@0__:crossing-s", "del"), ("__keyevent@0__:del", "crossing-s"),
        ])


if __name__ == "__main__":
    unittest.main()
