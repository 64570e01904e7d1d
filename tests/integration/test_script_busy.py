"""A script past busy-reply-threshold on a real server: the node keeps serving its other clients
with BUSY, SCRIPT KILL / FUNCTION KILL end a script that did not write, a writing script is
UNKILLABLE and SHUTDOWN NOSAVE ends the process without the rest of the script. The replies and
texts are Valkey's (checked against redis-server 7.0, which words them with "Redis")."""
import threading
import time
import unittest

import redis

from harness import ServerProcess, start_regions, wait_until

THRESHOLD_MS = 100
BUSY = ("BUSY Valkey is busy running a script. You can only call SCRIPT KILL or SHUTDOWN "
        "NOSAVE.")
BUSY_FUNCTION = ("BUSY Valkey is busy running a script. You can only call FUNCTION KILL or "
                 "SHUTDOWN NOSAVE.")
SPIN = "local i = 0 while true do i = i + 1 end"


def error_of(client, *args):
    """The error text a command gets, or None when it succeeds."""
    try:
        client.execute_command(*args)
    except redis.exceptions.ResponseError as error:
        return str(error)
    return None


class Background:
    """Runs one command on its own connection in a thread; keeps its reply or error."""

    def __init__(self, server, *args):
        self.client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=60)
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._run, args=args, daemon=True)
        self.thread.start()

    def _run(self, *args):
        try:
            self.result = self.client.execute_command(*args)
        except Exception as error:  # the reply we assert on
            self.error = error

    def join(self, timeout=30):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("the background command did not end")


def wait_busy(client, expected=BUSY, timeout=10.0):
    """Polls PING until it gets BUSY; returns the seconds it took."""
    start = time.monotonic()
    wait_until(lambda: error_of(client, "PING") == expected, timeout=timeout,
               what="BUSY from another client")
    return time.monotonic() - start


class BusyScript(unittest.TestCase):
    def setUp(self):
        self.server = ServerProcess("--busy-reply-threshold", str(THRESHOLD_MS)).start()

    def tearDown(self):
        self.server.cleanup()

    def test_other_clients_get_busy_and_script_kill_ends_it(self):
        c = self.server.client()
        c.set("before", "1")
        started = time.monotonic()
        run = Background(self.server, "EVAL", SPIN, "0")
        # BUSY once the threshold passed, within a bounded time (the poll runs every 100,000
        # VM instructions).
        wait_busy(c)
        self.assertLess(time.monotonic() - started, 5.0)
        self.assertIsNone(run.error)  # still running
        # PING, INFO, GET, CLIENT ID: BUSY, as Valkey's. A connection opened now is served too.
        late = self.server.client()
        for command in (("INFO", "server"), ("GET", "before"), ("CLIENT", "ID"), ("EVAL", "1", "0"),
                        ("SHUTDOWN",), ("FUNCTION", "KILL")):
            self.assertEqual(error_of(late, *command), BUSY, command)
        # allow-busy: AUTH and HELLO answer; MULTI queues, and EXEC discards the transaction.
        self.assertIn("without any password configured", error_of(late, "AUTH", "x"))
        hello = late.execute_command("HELLO", "2")
        self.assertEqual(dict(zip(hello[::2], hello[1::2]))[b"proto"], 2)
        tx = self.server.client()
        self.assertEqual(tx.execute_command("MULTI"), b"OK")
        self.assertEqual(error_of(tx, "SET", "x", "1"), BUSY)
        self.assertEqual(error_of(tx, "EXEC"), "Transaction discarded because of: " + BUSY)
        # SCRIPT KILL ends it; the script's caller gets Valkey's error.
        self.assertEqual(late.execute_command("SCRIPT", "KILL"), b"OK")
        run.join()
        self.assertIsInstance(run.error, redis.exceptions.ResponseError)
        self.assertTrue(str(run.error).startswith(
            "Script killed by user with SCRIPT KILL... script: "), str(run.error))
        # The node serves normally after.
        self.assertEqual(c.ping(), True)
        self.assertEqual(c.get("before"), b"1")
        self.assertEqual(error_of(tx, "EXEC"), "EXEC without MULTI")
        self.assertEqual(c.set("after", "2"), True)
        self.assertEqual(late.get("after"), b"2")
        self.assertIn("Slow script detected", self.server.read_log())

    def test_function_is_stopped_by_function_kill(self):
        c = self.server.client()
        c.function_load("#!lua name=spin\nredis.register_function('spin', function() "
                        + SPIN + " end)")
        run = Background(self.server, "FCALL", "spin", "0")
        wait_busy(c, BUSY_FUNCTION)
        self.assertEqual(error_of(c, "SCRIPT", "KILL"), BUSY_FUNCTION)
        self.assertEqual(c.execute_command("FUNCTION", "KILL"), b"OK")
        run.join()
        self.assertIn("Script killed by user", str(run.error))
        self.assertEqual(c.ping(), True)

    def test_writing_script_is_unkillable_and_shutdown_nosave_exits(self):
        c = self.server.client()
        run = Background(self.server, "EVAL", "redis.call('set', 'half', 'x') " + SPIN, "0")
        wait_busy(c)
        self.assertTrue(error_of(c, "SCRIPT", "KILL").startswith(
            "UNKILLABLE Sorry the script already executed write commands"))
        self.assertEqual(error_of(c, "SHUTDOWN"), BUSY)
        self.assertEqual(error_of(c, "SHUTDOWN", "SAVE"), BUSY)
        with self.assertRaises(redis.exceptions.ConnectionError):
            c.execute_command("SHUTDOWN", "NOSAVE")
        self.assertEqual(self.server.proc.wait(timeout=10), 0)
        run.join()
        self.assertIsInstance(run.error, redis.exceptions.ConnectionError)
        # The script never ended: none of its writes was logged, so a restart does not have it.
        self.server.stop()
        self.server.start()
        self.assertIsNone(self.server.client().get("half"))


class BusyWithPeers(unittest.TestCase):
    def test_no_peer_op_interleaves_with_a_running_script(self):
        servers = start_regions(2, "--busy-reply-threshold", str(THRESHOLD_MS))
        try:
            a, b = servers[0].client(), servers[1].client()
            a.set("k", "old")
            wait_until(lambda: b.get("k") == b"old", what="k in region b")
            # Reads k for 1.5 s of CPU time: a peer op applied meanwhile would show.
            script = ("local before = redis.call('get', KEYS[1]) local start = os.clock() "
                      "while os.clock() - start < 1.5 do "
                      "if redis.call('get', KEYS[1]) ~= before then return 'interleaved' end end "
                      "return 'isolated'")
            run = Background(servers[0], "EVAL", script, "1", "k")
            wait_busy(a)
            b.set("k", "new")  # reaches region a's socket while the script runs
            run.join(timeout=120)
            self.assertIsNone(run.error)
            self.assertEqual(run.result, b"isolated")
            wait_until(lambda: a.get("k") == b"new", what="b's write applied after the script")
        finally:
            for server in servers:
                server.cleanup()


if __name__ == "__main__":
    unittest.main()
