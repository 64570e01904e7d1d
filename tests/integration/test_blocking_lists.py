"""Blocking list commands on real processes: BLPOP, BRPOP, BLMPOP, BLMOVE and BRPOPLPUSH woken
by another client's push and by a push in another region, the reliable-queue pattern across
regions, timeouts, MULTI, WRONGTYPE, and the replies differentially against redis-server.

A blocked call runs in a thread; the test waits for the server to report the client blocked
(INFO blocked_clients, a bounded poll) before writing, and never sleeps to synchronise.
"""
import os
import random
import unittest

from differential import Differential
from harness import ServerTestCase, start_regions, wait_until
from test_blocking import Call, blocked_clients, wait_blocked


class ListBlocking(ServerTestCase):

    def setUp(self):
        self.r = self.server.client()
        self.r.flushall()

    def test_blpop_woken_by_another_clients_rpush(self):
        waiter = self.server.client()
        call = Call(waiter.blpop, ["q1", "q2"], 0)
        wait_blocked(self.server, 1)
        self.r.rpush("q2", "a", "b")
        self.assertEqual(call.value(), (b"q2", b"a"))
        self.assertEqual(self.r.lrange("q2", 0, -1), [b"b"])
        self.assertEqual(blocked_clients(self.server), 0)

    def test_brpop_serves_waiters_in_order(self):
        clients = [self.server.client() for _ in range(3)]
        calls = []
        for i, client in enumerate(clients):
            calls.append(Call(client.brpop, "fifo", 0))
            wait_blocked(self.server, i + 1)
        self.r.rpush("fifo", "a", "b")
        self.assertEqual(calls[0].value(), (b"fifo", b"b"))
        self.assertEqual(calls[1].value(), (b"fifo", b"a"))
        self.assertTrue(calls[2].is_alive())
        self.r.lpush("fifo", "c")
        self.assertEqual(calls[2].value(), (b"fifo", b"c"))
        self.assertEqual(self.r.exists("fifo"), 0)

    def test_blmpop_with_count(self):
        waiter = self.server.client()
        call = Call(waiter.execute_command, "BLMPOP", "0", "2", "m1", "m2", "RIGHT", "COUNT", "2")
        wait_blocked(self.server, 1)
        self.r.rpush("m2", "x", "y", "z")
        self.assertEqual(call.value(), [b"m2", [b"z", b"y"]])
        self.assertEqual(self.r.lrange("m2", 0, -1), [b"x"])

    def test_blmove_and_brpoplpush(self):
        waiter = self.server.client()
        call = Call(waiter.blmove, "src", "dst", 0, "LEFT", "RIGHT")
        wait_blocked(self.server, 1)
        self.r.rpush("src", "job")
        self.assertEqual(call.value(), b"job")
        self.assertEqual(self.r.lrange("dst", 0, -1), [b"job"])
        self.assertEqual(self.r.exists("src"), 0)
        call = Call(waiter.brpoplpush, "src", "dst", 0)
        wait_blocked(self.server, 1)
        self.r.rpush("src", "j2")
        self.assertEqual(call.value(), b"j2")
        self.assertEqual(self.r.lrange("dst", 0, -1), [b"j2", b"job"])

    def test_timeouts_reply_null(self):
        self.assertIsNone(self.r.blpop("none", 0.05))
        self.assertIsNone(self.r.brpoplpush("none", "dst", 0.05))
        self.assertIsNone(self.r.blmove("none", "dst", 0.05, "LEFT", "LEFT"))
        self.assertIsNone(self.r.execute_command("BLMPOP", "0.05", "1", "none", "LEFT"))
        self.assertEqual(self.r.exists("dst"), 0)

    def test_wrongtype_and_multi(self):
        self.r.set("str", "v")
        with self.assertRaisesRegex(Exception, "WRONGTYPE"):
            self.r.blpop(["str", "none"], 0)
        with self.assertRaisesRegex(Exception, "WRONGTYPE"):
            self.r.blmove("str", "dst", 0, "LEFT", "LEFT")
        pipe = self.r.pipeline(transaction=True)
        pipe.blpop("none", 0)
        pipe.brpoplpush("none", "dst", 0)
        self.assertEqual(pipe.execute(), [None, None])

    def test_a_push_to_another_type_does_not_wake(self):
        waiter = self.server.client()
        call = Call(waiter.blpop, "k", 0.5)
        wait_blocked(self.server, 1)
        self.r.sadd("k", "m")  # a set: the list waiter keeps waiting, then times out
        self.assertIsNone(call.value())


class AcrossRegions(unittest.TestCase):
    """A consumer blocked in region b is woken by a push in region a; the RPOPLPUSH reliable
    queue keeps every job across regions."""

    def test_woken_by_a_push_in_another_region(self):
        regions = start_regions(3)
        try:
            consumer = regions[1].client()
            call = Call(consumer.blpop, "jobs", 0)
            wait_blocked(regions[1], 1)
            regions[0].client().rpush("jobs", "job-1")
            self.assertEqual(call.value(timeout=20), (b"jobs", b"job-1"))
            for region in regions:
                wait_until(lambda region=region: region.client().exists("jobs") == 0,
                           what="the pop to reach every region")
        finally:
            for region in regions:
                region.cleanup()

    def test_reliable_queue(self):
        regions = start_regions(3)
        try:
            consumer = regions[2].client()
            producer = regions[0].client()
            done = []
            for i in range(5):
                call = Call(consumer.brpoplpush, "queue", "processing", 0)
                wait_until(lambda: blocked_clients(regions[2]) == 1 or not call.is_alive(),
                           what="the consumer to block or take a job")
                producer.lpush("queue", f"job-{i}")
                job = call.value(timeout=20)
                done.append(job)
                consumer.lrem("processing", 1, job)
            self.assertEqual(done, [f"job-{i}".encode() for i in range(5)])
            for region in regions:
                wait_until(lambda region=region: region.client().exists("queue", "processing")
                           == 0, what="queue and processing list empty in every region")
        finally:
            for region in regions:
                region.cleanup()


class DifferentialReplies(unittest.TestCase):
    """The blocking list commands where they cannot block (a key with elements, or MULTI)
    against redis-server, on a seeded stream."""

    def test_seeded_stream(self):
        seed = int(os.environ.get("LATTICE_SEED", random.randrange(1 << 30)))
        print(f"test_blocking_lists differential seed={seed}")
        rng = random.Random(seed)
        keys = ["l0", "l1", "str", "missing"]
        commands = [["SET", "str", "v"]]
        for _ in range(400):
            kind = rng.randrange(6)
            if kind < 2:
                commands.append([rng.choice(["LPUSH", "RPUSH"]), rng.choice(keys[:2])]
                                + [rng.choice("abcdef") for _ in range(rng.randrange(1, 4))])
                continue
            chosen = rng.sample(keys, rng.randrange(1, 4))
            timeout = rng.choice(["0", "0.01", "-1", "x", "1"])
            where = rng.choice(["LEFT", "RIGHT", "left", "mid"])
            count = rng.choice([[], [], ["COUNT", str(rng.choice([1, 2, 5, 0, -1]))],
                                ["COUNT", "x"], ["COUNT"]])
            numkeys = str(len(chosen)) if rng.random() < 0.9 else rng.choice(["0", "9", "x"])
            if kind == 2:
                commands += [["MULTI"], ["BLMPOP", timeout, numkeys] + chosen + [where] + count,
                             [rng.choice(["BLPOP", "BRPOP"])] + chosen + [timeout],
                             ["BLMOVE", chosen[0], "l1", where, rng.choice(["LEFT", "RIGHT"]),
                              timeout],
                             ["BRPOPLPUSH", chosen[0], "l0", timeout], ["EXEC"]]
            else:
                # The pushed key is among the popped ones, so the pop never waits.
                present = [k for k in chosen if k != "missing"] or ["l0"]
                popped = chosen if present[-1] in chosen else chosen + [present[-1]]
                commands += [["RPUSH", present[-1], "q"],
                             [rng.choice(["BLPOP", "BRPOP"])] + popped + ["1"]]
        with Differential() as diff:
            diff.check(commands, seed=seed)


if __name__ == "__main__":
    unittest.main()
