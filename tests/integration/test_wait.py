"""WAIT and WAITAOF on real lattice-server processes: the other regions of the shard stand for
Valkey's replicas (docs/commands/server.md). Three regions of one shard on loopback; a region
stopped with SIGSTOP stands for one that cannot acknowledge. The error replies are compared with
Debian's redis-server (7.0, which has WAIT but not WAITAOF)."""
import signal
import time
import unittest

import redis

from differential import Differential
from harness import RegionsTestCase, ServerProcess, wait_until


class WaitAcrossRegions(RegionsTestCase):

    def test_wait_counts_regions_that_applied_the_write(self):
        a = self.regions[0].client()
        a.set("wait:k", "v1")
        self.assertEqual(a.execute_command("WAIT", 2, 5000), 2)
        # After WAIT 2, a read in any region sees the write.
        for server in self.regions[1:]:
            self.assertEqual(server.client().get("wait:k"), b"v1")
        # Asking for more regions than exist waits out the timeout and says how many have it.
        started = time.monotonic()
        self.assertEqual(a.execute_command("WAIT", 3, 200), 2)
        self.assertGreaterEqual(time.monotonic() - started, 0.19)

    def test_wait_times_out_while_a_region_cannot_acknowledge(self):
        a = self.regions[0].client()
        stopped = self.regions[2]
        stopped.proc.send_signal(signal.SIGSTOP)
        try:
            a.set("wait:stopped", "x")
            started = time.monotonic()
            self.assertEqual(a.execute_command("WAIT", 2, 300), 1)
            self.assertGreaterEqual(time.monotonic() - started, 0.29)
            self.assertEqual(a.execute_command("WAIT", 1, 5000), 1)
        finally:
            stopped.proc.send_signal(signal.SIGCONT)
        # Once it runs again it catches up and acknowledges: a blocked WAIT is woken by the ack.
        self.assertEqual(a.execute_command("WAIT", 2, 10000), 2)

    def test_waitaof_reports_the_local_sync_and_the_regions(self):
        a = self.regions[0].client()
        a.incr("waitaof:n")
        # numlocal 1: the op log is synced before the reply (appendfsync everysec would
        # otherwise take up to a second; the sync is asked for at once).
        started = time.monotonic()
        self.assertEqual(a.execute_command("WAITAOF", 1, 2, 5000), [1, 2])
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertEqual(a.execute_command("WAITAOF", 1, 0, 0), [1, 2])
        stopped = self.regions[1]
        stopped.proc.send_signal(signal.SIGSTOP)
        try:
            a.incr("waitaof:n")
            self.assertEqual(a.execute_command("WAITAOF", 1, 2, 300), [1, 1])
        finally:
            stopped.proc.send_signal(signal.SIGCONT)
        self.assertEqual(a.execute_command("WAITAOF", 0, 2, 10000), [1, 2])

    def test_waitaof_under_appendfsync_always_and_no(self):
        a = self.regions[0].client()
        for policy in ("always", "no", "everysec"):
            a.config_set("appendfsync", policy)
            a.set(f"waitaof:{policy}", "v")
            self.assertEqual(a.execute_command("WAITAOF", 1, 2, 5000), [1, 2], policy)

    def test_no_blocking_inside_multi(self):
        a = self.regions[0].client()
        stopped = self.regions[2]
        stopped.proc.send_signal(signal.SIGSTOP)
        try:
            pipe = a.pipeline(transaction=True)
            pipe.set("wait:multi", "v")
            pipe.execute_command("WAIT", 2, 0)  # 0 would wait forever outside MULTI
            pipe.execute_command("WAITAOF", 0, 2, 0)
            started = time.monotonic()
            replies = pipe.execute()
            # Neither blocks. As in Valkey, a write queued in the same transaction is not yet
            # the client's last write when they run (it is propagated after the EXEC).
            self.assertLess(time.monotonic() - started, 2.0)
            self.assertLessEqual(replies[1], 2)
            self.assertEqual(replies[2][0], 1)
            a.set("wait:multi", "w")
            pipe = a.pipeline(transaction=True)
            pipe.execute_command("WAIT", 2, 0)
            self.assertLessEqual(pipe.execute()[0], 1)  # the stopped region cannot have it
        finally:
            stopped.proc.send_signal(signal.SIGCONT)

    def test_blocked_wait_then_pipelined_command(self):
        """Commands pipelined after a blocked WAIT run after it, in order."""
        a = self.regions[0].client()
        pipe = a.pipeline(transaction=False)
        pipe.set("wait:pipe", "1")
        pipe.execute_command("WAIT", 3, 150)
        pipe.get("wait:pipe")
        self.assertEqual(pipe.execute(), [True, 2, b"1"])

    def test_client_unblock_ends_a_wait(self):
        a = self.regions[0].client()
        a.set("wait:unblock", "v")
        waiter = self.regions[0].client()
        waiter_id = waiter.client_id()
        result = {}

        import threading
        thread = threading.Thread(
            target=lambda: result.setdefault("reply", waiter.execute_command("WAIT", 5, 0)))
        thread.start()
        wait_until(lambda: any(c["id"] == str(waiter_id) and "wait" in c.get("cmd", "")
                               for c in a.client_list()), timeout=5, what="WAIT blocked")
        self.assertEqual(a.client_unblock(waiter_id), True)
        thread.join(timeout=5)
        self.assertFalse(thread.is_alive())
        self.assertEqual(result["reply"], 2)


class WaitErrors(unittest.TestCase):
    def test_errors_match_redis_server(self):
        commands = [
            ["WAIT", "1", "x"],
            ["WAIT", "x", "10"],
            ["WAIT", "x", "y"],
            ["WAIT", "0", "-1"],
            ["WAIT", "0", "0"],
            ["WAIT", "1", "20"],
            ["WAIT", "-5", "0"],
            ["WAIT", "1"],
        ]
        with Differential() as diff:
            diff.check(commands, seed=0)

    def test_timeout_out_of_range(self):
        """Valkey 9 refuses a deadline past the clock's range (redis-server 7.0 blocks forever)."""
        server = ServerProcess().start()
        try:
            with self.assertRaises(redis.ResponseError) as caught:
                server.client().execute_command("WAIT", 1, 9223372036854775807)
            self.assertIn("timeout is out of range", str(caught.exception))
        finally:
            server.cleanup()

    def test_waitaof_errors(self):
        server = ServerProcess().start()
        try:
            c = server.client()
            for args, error in [
                ((-1, 0, 0), "value is out of range, must be positive"),
                ((0, -1, 0), "value is out of range, must be positive"),
                (("x", 0, 0), "value is not an integer or out of range"),
                ((0, 0, -1), "timeout is negative"),
                ((0, 0, "x"), "timeout is not an integer or out of range"),
            ]:
                with self.assertRaises(redis.ResponseError) as caught:
                    c.execute_command("WAITAOF", *args)
                self.assertIn(error, str(caught.exception), args)
            # Standalone: no regions; the local sync is counted.
            c.set("k", "v")
            self.assertEqual(c.execute_command("WAITAOF", 1, 0, 0), [1, 0])
            self.assertEqual(c.execute_command("WAITAOF", 0, 1, 50), [1, 0])
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
