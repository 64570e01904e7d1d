"""CLIENT PAUSE / UNPAUSE, CLIENT REPLY, CLIENT NO-EVICT and LOLWUT on a real lattice-server
(docs/commands.md, "Connection and server commands"). What a paused client is held for follows
Valkey's rules (write and may-replicate commands under WRITE, everything under ALL); the error
replies and CLIENT REPLY's bytes on the wire are compared with Debian's redis-server."""
import socket
import threading
import time
import unittest

import redis

from differential import Differential, RespConnection
from harness import ServerTestCase, info_fields, wait_until


def blocked_clients(server):
    return int(info_fields(server, "clients")["blocked_clients"])


class HeldCommand:
    """Sends one command on its own connection from a thread; `reply` once it answered."""

    def __init__(self, server, *args):
        self.conn = RespConnection(server.port)
        self.reply = None
        self.answered = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(args,), daemon=True)
        self.thread.start()

    def _run(self, args):
        self.reply = self.conn.call(*args)
        self.answered.set()

    def result(self, timeout=10.0):
        if not self.answered.wait(timeout):
            raise AssertionError("the held command never answered")
        self.conn.close()
        return self.reply


class ClientPause(ServerTestCase):

    def setUp(self):
        self.admin = self.server.client()
        self.admin.execute_command("CLIENT", "UNPAUSE")

    def tearDown(self):
        self.admin.execute_command("CLIENT", "UNPAUSE")

    def hold(self, *args):
        """Starts `args` and waits until the server holds it (one more blocked client)."""
        before = blocked_clients(self.server)
        held = HeldCommand(self.server, *args)
        wait_until(lambda: blocked_clients(self.server) == before + 1, what=f"{args} held")
        self.assertFalse(held.answered.is_set())
        return held

    def test_write_pause_holds_writes_and_serves_reads(self):
        self.admin.set("pause:r", "v")
        self.assertTrue(self.admin.execute_command("CLIENT", "PAUSE", 60000, "WRITE"))
        fields = info_fields(self.server, "clients")
        self.assertEqual(fields["paused_reason"], "client_pause")
        self.assertEqual(fields["paused_actions"], "write")
        self.assertGreater(int(fields["paused_timeout_milliseconds"]), 50000)
        reader = self.server.client()
        self.assertEqual(reader.get("pause:r"), b"v")
        self.assertTrue(reader.ping())
        held = [self.hold("SET", "pause:w", "1"), self.hold("PUBLISH", "ch", "m"),
                self.hold("PFCOUNT", "pause:hll"), self.hold("EVAL", "return 1", "0")]
        # Read-only scripts and functions declared no-writes run.
        self.assertEqual(reader.eval("#!lua flags=no-writes\nreturn 7", 0), 7)
        self.assertEqual(reader.execute_command("EVAL_RO", "return 8", 0), 8)
        # A syntax error is answered at once, not held.
        with self.assertRaisesRegex(redis.ResponseError, "wrong number of arguments"):
            reader.execute_command("SET", "pause:w")
        self.assertIsNone(reader.get("pause:w"))
        # CLIENT UNBLOCK cannot end a pause's hold.
        self.assertEqual(self.admin.execute_command("CLIENT", "UNBLOCK",
                                                    self.client_id_of(held[0]), "ERROR"), 0)
        self.admin.execute_command("CLIENT", "UNPAUSE")
        self.assertEqual([h.result() for h in held], [("status", "OK"), 0, 0, 1])
        self.assertEqual(reader.get("pause:w"), b"1")
        self.assertEqual(info_fields(self.server, "clients")["paused_actions"], "none")

    def client_id_of(self, held):
        for line in self.admin.execute_command("CLIENT", "LIST").decode().splitlines():
            fields = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)
            if fields.get("cmd") == "set" and "b" in fields.get("flags", ""):
                return int(fields["id"])
        raise AssertionError("no held client in CLIENT LIST")

    def test_transactions_are_held_only_when_they_write(self):
        self.admin.set("pause:t", "x")
        writer = RespConnection(self.server.port)
        self.assertEqual(writer.call("MULTI"), ("status", "OK"))
        self.assertEqual(writer.call("SET", "pause:t", "y"), ("status", "QUEUED"))
        self.admin.execute_command("CLIENT", "PAUSE", 60000, "WRITE")
        reader = self.server.client()
        with reader.pipeline(transaction=True) as pipe:  # reads only: runs during the pause
            pipe.ping().get("pause:t")
            self.assertEqual(pipe.execute(), [True, b"x"])
        before = blocked_clients(self.server)
        writer.sock.sendall(RespConnection.encode(["EXEC"]))
        wait_until(lambda: blocked_clients(self.server) == before + 1, what="EXEC held")
        self.admin.execute_command("CLIENT", "UNPAUSE")
        self.assertEqual(writer.read_reply(), [("status", "OK")])
        writer.close()
        self.assertEqual(self.admin.get("pause:t"), b"y")

    def test_all_pause_holds_reads_until_it_ends(self):
        self.admin.set("pause:a", "v")
        started = time.monotonic()
        self.admin.execute_command("CLIENT", "PAUSE", 400, "ALL")
        held = HeldCommand(self.server, "GET", "pause:a")
        self.assertEqual(held.result(), b"v")
        # Nothing answers before the pause ran out (the cron ends it, within its 100 ms tick).
        self.assertGreaterEqual(time.monotonic() - started, 0.35)

    def test_a_later_pause_keeps_the_longer_end_and_the_stricter_mode(self):
        self.admin.execute_command("CLIENT", "PAUSE", 60000, "WRITE")
        self.admin.execute_command("CLIENT", "PAUSE", 10, "WRITE")
        fields = info_fields(self.server, "clients")
        self.assertGreater(int(fields["paused_timeout_milliseconds"]), 50000)
        self.admin.execute_command("CLIENT", "UNPAUSE")
        self.admin.execute_command("CLIENT", "PAUSE", 1000, "ALL")
        # Issued while ALL holds everything, the WRITE pause itself waits for the end.
        started = time.monotonic()
        self.assertTrue(self.admin.execute_command("CLIENT", "PAUSE", 10, "WRITE"))
        self.assertGreaterEqual(time.monotonic() - started, 0.5)
        wait_until(lambda: info_fields(self.server, "clients")["paused_actions"] == "none",
                   what="the 10 ms WRITE pause over")

    def test_expiry_waits_for_the_pause(self):
        self.admin.set("pause:e", "v", px=50)
        self.admin.execute_command("CLIENT", "PAUSE", 60000, "WRITE")
        before = int(info_fields(self.server, "stats")["expired_keys"])
        wait_until(lambda: self.admin.get("pause:e") is None, what="logically expired")
        # For half a second (five cron ticks) neither the read nor the active expiry deletes it.
        watch_until = time.monotonic() + 0.5
        while time.monotonic() < watch_until:
            self.assertEqual(int(info_fields(self.server, "stats")["expired_keys"]), before)
        self.admin.execute_command("CLIENT", "UNPAUSE")
        wait_until(lambda: int(info_fields(self.server, "stats")["expired_keys"]) > before,
                   what="expired after the pause")

    def test_no_evict_and_lolwut(self):
        conn = self.server.client()
        self.assertTrue(conn.execute_command("CLIENT", "NO-EVICT", "on"))
        self.assertIn("e", dict(f.split("=", 1) for f in
                                conn.execute_command("CLIENT", "INFO").decode().split())["flags"])
        self.assertTrue(conn.execute_command("CLIENT", "NO-EVICT", "off"))
        art = conn.execute_command("LOLWUT", "VERSION", "9")
        self.assertTrue(art.endswith(b"Valkey ver. 9.0.0\n"), art)


def exchange(port, commands):
    """Sends `commands` in one write, ending with PING, and returns every byte received up to
    its +PONG: what CLIENT REPLY let through."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"".join(RespConnection.encode(c) for c in commands + [["PING"]]))
        received = b""
        deadline = time.monotonic() + 10
        while not received.endswith(b"+PONG\r\n"):
            if time.monotonic() > deadline:
                raise AssertionError(f"no PONG after {received!r}")
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise AssertionError(f"closed after {received!r}")
            received += chunk
        return received


class ClientReplyAndErrors(unittest.TestCase):

    def test_against_redis_server(self):
        with Differential() as diff:
            sequences = [
                [["CLIENT", "REPLY", "OFF"], ["SET", "r:a", "1"], ["GET", "r:a"],
                 ["CLIENT", "REPLY", "ON"], ["GET", "r:a"]],
                [["CLIENT", "REPLY", "SKIP"], ["SET", "r:b", "2"], ["GET", "r:b"]],
                [["CLIENT", "REPLY", "OFF"], ["CLIENT", "REPLY", "SKIP"], ["INCR", "r:c"],
                 ["CLIENT", "REPLY", "ON"], ["INCR", "r:c"]],
                [["CLIENT", "REPLY", "SKIP"], ["GET", "nosuch", "extra"], ["ECHO", "x"]],
            ]
            for commands in sequences:
                self.assertEqual(exchange(diff.lattice.port, commands),
                                 exchange(diff.oracle_port, commands), commands)
            diff.check([
                ["CLIENT", "PAUSE", "abc"], ["CLIENT", "PAUSE", "-1"],
                ["CLIENT", "PAUSE", "10", "FOO"], ["CLIENT", "PAUSE", "x", "FOO"],
                ["CLIENT", "PAUSE", "10", "WRITE", "extra"], ["CLIENT", "PAUSE"],
                ["CLIENT", "PAUSE", "0"], ["CLIENT", "UNPAUSE", "x"], ["CLIENT", "UNPAUSE"],
                ["CLIENT", "REPLY", "MAYBE"], ["CLIENT", "REPLY"], ["CLIENT", "REPLY", "ON"],
                ["CLIENT", "NO-EVICT", "maybe"], ["CLIENT", "NO-EVICT", "ON"],
                ["CLIENT", "NO-EVICT", "off"], ["LOLWUT", "VERSION", "x"],
            ])


if __name__ == "__main__":
    unittest.main()
