"""Blocking commands on real processes (server/blocking.h): BZPOPMIN/BZPOPMAX/BZMPOP woken by
another client's write and by a write in another region, first blocked first served, timeouts,
CLIENT UNBLOCK, MULTI, a client that disconnects while blocked, INFO and CLIENT LIST, redis-cli,
and the replies differentially against redis-server.

A blocked call runs in a thread; the test waits for the server to report the client blocked
(INFO blocked_clients, a bounded poll) before writing, and never sleeps to synchronise.
"""
import os
import random
import threading
import unittest

import redis

from differential import Differential, RespConnection
from harness import ServerProcess, ServerTestCase, info_fields, start_regions, wait_until


class Call(threading.Thread):
    """Runs fn(*args) in a thread and keeps its result or exception."""

    def __init__(self, fn, *args):
        super().__init__(daemon=True)
        self.fn, self.args = fn, args
        self.result, self.error = None, None
        self.start()

    def run(self):
        try:
            self.result = self.fn(*self.args)
        except Exception as error:  # noqa: BLE001 - reported by value()
            self.error = error

    def value(self, timeout=10.0):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("the blocked call did not return")
        if self.error is not None:
            raise self.error
        return self.result


def blocked_clients(server):
    return int(info_fields(server, "clients")["blocked_clients"])


def wait_blocked(server, count):
    wait_until(lambda: blocked_clients(server) == count, what=f"{count} blocked clients")


class Blocking(ServerTestCase):

    def setUp(self):
        self.r = self.server.client()
        self.r.flushall()

    def test_bzpopmin_woken_by_another_clients_zadd(self):
        waiter = self.server.client()
        call = Call(waiter.bzpopmin, ["bz:k1", "bz:k2"], 0)
        wait_blocked(self.server, 1)
        self.assertIn("b", [client["flags"] for client in self.r.client_list()])
        self.assertEqual(int(info_fields(self.server, "clients")["total_blocking_keys"]), 2)
        self.r.zadd("bz:k2", {"m": 1.5})
        self.assertEqual(call.value(), (b"bz:k2", b"m", 1.5))
        self.assertEqual(blocked_clients(self.server), 0)
        self.assertEqual(self.r.exists("bz:k2"), 0)

    def test_first_blocked_first_served(self):
        clients = [self.server.client() for _ in range(3)]
        calls = []
        for i, client in enumerate(clients):
            calls.append(Call(client.bzpopmax, "fifo", 0))
            wait_blocked(self.server, i + 1)
        self.r.zadd("fifo", {"a": 1, "b": 2})
        self.assertEqual(calls[0].value(), (b"fifo", b"b", 2.0))
        self.assertEqual(calls[1].value(), (b"fifo", b"a", 1.0))
        self.assertTrue(calls[2].is_alive())
        self.assertEqual(blocked_clients(self.server), 1)
        self.r.zadd("fifo", {"c": 3})
        self.assertEqual(calls[2].value(), (b"fifo", b"c", 3.0))

    def test_timeout_with_fractional_seconds(self):
        self.assertIsNone(self.r.bzpopmin("none", 0.05))
        self.assertIsNone(self.r.bzmpop(0.05, 1, ["none"], min=True))
        with self.assertRaisesRegex(redis.ResponseError, "timeout is negative"):
            self.r.bzpopmin("none", -1)
        with self.assertRaisesRegex(redis.ResponseError, "not a float or out of range"):
            self.r.bzpopmin("none", "x")

    def test_client_unblock(self):
        waiter = self.server.client()
        waiter_id = waiter.client_id()
        call = Call(waiter.bzpopmin, "unblock", 0)
        wait_blocked(self.server, 1)
        self.assertEqual(self.r.client_unblock(waiter_id), 1)
        self.assertIsNone(call.value())
        call = Call(waiter.bzmpop, 0, 1, ["unblock"], True)
        wait_blocked(self.server, 1)
        self.assertEqual(self.r.client_unblock(waiter_id, error=True), 1)
        with self.assertRaisesRegex(redis.ResponseError, "UNBLOCKED client unblocked"):
            call.value()
        self.assertEqual(self.r.client_unblock(waiter_id), 0)

    def test_multi_never_blocks(self):
        pipe = self.r.pipeline(transaction=True)
        pipe.bzpopmin("multi", 0)
        pipe.execute_command("BZMPOP", 0, 1, "multi", "MIN")
        self.assertEqual(pipe.execute(), [None, None])
        self.assertEqual(blocked_clients(self.server), 0)

    def test_commands_pipelined_after_a_blocked_one_wait_for_it(self):
        waiter = self.server.client()
        pipe = waiter.pipeline(transaction=False)
        pipe.bzpopmin("pipe", 0)
        pipe.zcard("pipe")
        call = Call(pipe.execute)
        wait_blocked(self.server, 1)
        self.r.zadd("pipe", {"a": 1, "b": 2})
        self.assertEqual(call.value(), [(b"pipe", b"a", 1.0), 1])

    def test_a_client_that_disconnects_while_blocked_is_cleaned_up(self):
        sock = self.server.raw()
        sock.sendall(b"*3\r\n$8\r\nBZPOPMIN\r\n$4\r\ngone\r\n$1\r\n0\r\n")
        wait_blocked(self.server, 1)
        sock.close()
        wait_blocked(self.server, 0)
        self.r.zadd("gone", {"a": 1})
        self.assertEqual(self.r.zcard("gone"), 1)  # nobody popped it

    def test_redis_cli(self):
        self.r.zadd("cli", {"x": 7})
        code, out = self.server.cli("BZPOPMIN", "cli", "1")
        self.assertEqual(code, 0)
        self.assertEqual(out.split(), ["cli", "x", "7"])
        code, out = self.server.cli("BZPOPMIN", "cli", "0.05")
        self.assertEqual(code, 0)
        self.assertIn(out.strip(), ("", "(nil)"))

    def test_resp3_replies(self):
        # redis-py 4.3 has no RESP3 parser: the raw bytes after HELLO 3, through RespConnection.
        self.r.zadd("r3", {"a": 1, "b": 2.5})
        conn = RespConnection(self.server.port)
        try:
            conn.sock.sendall(RespConnection.encode(["HELLO", "3"]))
            while not conn.buffer.endswith(b"$7\r\nmodules\r\n*0\r\n"):
                conn._fill()
            conn.buffer = b""
            conn.sock.sendall(RespConnection.encode(["BZPOPMIN", "r3", "0"]) +
                              RespConnection.encode(["ZMPOP", "1", "r3", "MAX"]) +
                              RespConnection.encode(["ZMPOP", "1", "r3", "MAX"]) +
                              RespConnection.encode(["BZPOPMIN", "r3", "0.01"]))
            expected = (b"*3\r\n$2\r\nr3\r\n$1\r\na\r\n,1\r\n"
                        b"*2\r\n$2\r\nr3\r\n*1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"
                        b"_\r\n_\r\n")
            while len(conn.buffer) < len(expected):
                conn._fill()
            self.assertEqual(bytes(conn.buffer), expected)
        finally:
            conn.close()


class AcrossRegions(unittest.TestCase):
    """A consumer blocked in region b is woken by a ZADD in region a."""

    def test_woken_by_a_write_in_another_region(self):
        regions = start_regions(3)
        try:
            consumer = regions[1].client()
            call = Call(consumer.bzpopmin, "jobs", 0)
            wait_blocked(regions[1], 1)
            regions[0].client().zadd("jobs", {"job-1": 1})
            self.assertEqual(call.value(timeout=20), (b"jobs", b"job-1", 1.0))
            # The pop travels back: the key is gone in every region.
            for region in regions:
                wait_until(lambda region=region: region.client().exists("jobs") == 0,
                           what="the pop to reach every region")
        finally:
            for region in regions:
                region.cleanup()


class DifferentialReplies(unittest.TestCase):
    """ZMPOP, BZPOPMIN/BZPOPMAX and BZMPOP (never blocking: keys with members, or MULTI) against
    redis-server, on a seeded stream."""

    def test_seeded_stream(self):
        seed = int(os.environ.get("LATTICE_SEED", random.randrange(1 << 30)))
        print(f"test_blocking differential seed={seed}")
        rng = random.Random(seed)
        keys = ["z0", "z1", "str", "missing"]
        commands = [["SET", "str", "v"]]
        for _ in range(400):
            kind = rng.randrange(6)
            if kind < 2:
                key = rng.choice(keys[:2])
                commands.append(["ZADD", key] + [str(rng.choice([1, 2, 2.5, -3, 7]))
                                                 if i % 2 == 0 else rng.choice("abcdef")
                                                 for i in range(2 * rng.randrange(1, 4))])
                continue
            chosen = rng.sample(keys, rng.randrange(1, 4))
            where = rng.choice(["MIN", "MAX", "min", "mid"])
            count = rng.choice([[], [], ["COUNT", str(rng.choice([1, 2, 5, 0, -1]))],
                                ["COUNT", "x"], ["COUNT"]])
            numkeys = str(len(chosen)) if rng.random() < 0.9 else rng.choice(["0", "9", "x"])
            if kind == 2:
                commands.append(["ZMPOP", numkeys] + chosen + [where] + count)
            elif kind == 3:
                # Blocking forms only where they cannot block: inside MULTI.
                timeout = rng.choice(["0", "0.01", "-1", "x"])
                commands += [["MULTI"], ["BZMPOP", timeout, numkeys] + chosen + [where] + count,
                             ["BZPOPMIN"] + chosen + [timeout], ["EXEC"]]
            else:
                present = [k for k in chosen if k != "missing"] or ["z0"]
                commands += [["ZADD", present[-1], "1", "q"],
                             [rng.choice(["BZPOPMIN", "BZPOPMAX"])] + chosen + ["1"]]
        with Differential() as diff:
            diff.check(commands, seed=seed)


if __name__ == "__main__":
    unittest.main()
