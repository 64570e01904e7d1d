"""SLOWLOG, LATENCY, MEMORY, INFO latencystats and the CLIENT LIST fields on a real
lattice-server, driven by redis-py and redis-cli, with reply shapes compared to redis-server."""
import os
import re
import pty
import select
import subprocess
import time
import unittest

from differential import Differential
from harness import ServerProcess, wait_until

# A Lua loop slow enough to pass a 1 ms latency threshold on any machine (tens of ms here).
BUSY_SCRIPT = "local i = 0 while i < 3000000 do i = i + 1 end return i"


def shape(value):
    """A reply with its scalars replaced by their type names: what differential shape checks
    compare when the values themselves (times, durations, sizes) legitimately differ."""
    if isinstance(value, list):
        return [shape(v) for v in value]
    if isinstance(value, tuple):
        return value[0]  # an error
    return type(value).__name__


class ObservabilityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ServerProcess().start()
        cls.client = cls.server.client()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        self.client.config_set("slowlog-log-slower-than", 10000)
        self.client.config_set("slowlog-max-len", 128)
        self.client.config_set("latency-monitor-threshold", 0)
        self.client.slowlog_reset()
        self.client.execute_command("LATENCY", "RESET")

    def test_slowlog_records_with_valkey_truncation(self):
        c = self.client
        c.client_setname("observer")
        c.config_set("slowlog-log-slower-than", 0)
        args = []
        for i in range(20):  # MSET with 41 arguments: trimmed to 32
            args += [f"key{i}", "v" * 200 if i == 0 else f"value{i}"]
        c.execute_command("MSET", *args)
        entries = c.slowlog_get(10)
        mset = next(e for e in entries if e["command"].startswith(b"MSET"))
        words = mset["command"].split(b" ")
        self.assertEqual(words[0], b"MSET")
        self.assertEqual(words[1], b"key0")
        self.assertEqual(words[2], b"v" * 128 + b"...")  # "... (72 more bytes)" split by spaces
        self.assertIn(b"(72 more bytes)", mset["command"])
        self.assertTrue(mset["command"].endswith(b"... (10 more arguments)"))
        self.assertGreaterEqual(mset["duration"], 0)
        self.assertLessEqual(abs(mset["start_time"] - time.time()), 60)
        # The raw entry: six fields, the client's address and name last.
        raw = c.execute_command("SLOWLOG", "GET", "-1")
        mset_raw = next(e for e in raw if e[3][0] == b"MSET")
        self.assertEqual(len(mset_raw), 6)
        self.assertEqual(len(mset_raw[3]), 32)
        self.assertRegex(mset_raw[4].decode(), r"^127\.0\.0\.1:\d+$")
        self.assertEqual(mset_raw[5], b"observer")
        # max-len trims, RESET empties, -1 disables.
        c.config_set("slowlog-max-len", 3)
        for _ in range(10):
            c.ping()
        self.assertEqual(c.slowlog_len(), 3)
        self.assertTrue(c.slowlog_reset())
        self.assertLessEqual(c.slowlog_len(), 1)  # the RESET itself may be the one entry
        c.config_set("slowlog-log-slower-than", -1)
        c.slowlog_reset()
        c.ping()
        self.assertEqual(c.slowlog_len(), 0)

    def test_latency_monitor_records_a_slow_command(self):
        c = self.client
        c.config_set("latency-monitor-threshold", 1)
        c.eval(BUSY_SCRIPT, 0)
        latest = c.execute_command("LATENCY", "LATEST")
        events = {e[0]: e for e in latest}
        self.assertIn(b"command", events)
        name, when, last_ms, max_ms, sum_ms, count = events[b"command"]
        self.assertGreaterEqual(last_ms, 1)
        self.assertGreaterEqual(max_ms, last_ms)
        self.assertGreaterEqual(count, 1)
        self.assertLessEqual(abs(when - time.time()), 60)
        history = c.execute_command("LATENCY", "HISTORY", "command")
        self.assertGreaterEqual(len(history), 1)
        self.assertEqual(len(history[-1]), 2)
        graph = c.execute_command("LATENCY", "GRAPH", "command")
        self.assertIn(b"command - high", graph)
        doctor = c.execute_command("LATENCY", "DOCTOR")
        self.assertIn(b"1. command:", doctor)
        self.assertEqual(c.execute_command("LATENCY", "RESET", "command"), 1)
        # Only "command" is gone: at this 1 ms threshold the server's own timer work (the
        # crdt-tick event) may be recorded too, and RESET of one event leaves the others.
        latest = [event[0] for event in c.execute_command("LATENCY", "LATEST")]
        self.assertNotIn(b"command", latest)

    def test_latency_histogram_and_latencystats(self):
        c = self.client
        for i in range(50):
            c.set(f"h{i}", i)
        histogram = c.execute_command("LATENCY", "HISTOGRAM", "set")
        self.assertEqual(histogram[0], b"set")
        fields = histogram[1]
        self.assertEqual(fields[0], b"calls")
        self.assertGreaterEqual(fields[1], 50)
        self.assertEqual(fields[2], b"histogram_usec")
        buckets = fields[3]
        self.assertEqual(len(buckets) % 2, 0)
        self.assertEqual(buckets[-1], fields[1])  # cumulative: the last bucket counts all
        info = c.info("latencystats")
        self.assertIn("latency_percentiles_usec_set", info)
        self.assertEqual(set(info["latency_percentiles_usec_set"]), {"p50", "p99", "p99.9"})
        c.config_set("latency-tracking-info-percentiles", "50 99.99")
        info = c.info("latencystats")
        self.assertEqual(set(info["latency_percentiles_usec_set"]), {"p50", "p99.99"})
        c.config_set("latency-tracking-info-percentiles", "50 99 99.9")

    def test_redis_cli_latency_history(self):
        # On a terminal redis-cli prints each range as it ends (to a pipe it buffers until
        # exit): give it a pseudo-terminal and read until the first range is complete.
        master, slave = pty.openpty()
        cli = subprocess.Popen(["redis-cli", "-p", str(self.server.port), "--latency-history",
                                "-i", "1"], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
        os.close(slave)
        output = b""
        try:
            deadline = time.monotonic() + 20
            while b"seconds range" not in output and time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.5)
                if ready:
                    output += os.read(master, 4096)
        finally:
            cli.kill()
            cli.wait(timeout=10)
            os.close(master)
        self.assertRegex(output.decode(errors="replace"),
                         r"min: \d+, max: \d+, avg: [\d.]+ \(\d+ samples\) -- [\d.]+ seconds range")

    def test_memory_usage_grows_with_the_value(self):
        c = self.client
        c.set("small", "x" * 10)
        c.set("large", "x" * 10000)
        small = c.memory_usage("small")
        large = c.memory_usage("large", samples=0)
        self.assertGreater(small, 10)
        self.assertGreater(large, small + 9000)
        self.assertIsNone(c.memory_usage("missing"))
        c.hset("hash", mapping={f"f{i}": "v" * 10 for i in range(1000)})
        self.assertGreater(c.memory_usage("hash"), 1000 * 12)
        stats = c.memory_stats()
        for name in ("peak.allocated", "total.allocated", "startup.allocated", "overhead.total",
                     "keys.count", "dataset.bytes", "fragmentation", "allocator.allocated"):
            self.assertIn(name, stats)
        self.assertGreater(stats["total.allocated"], 0)
        self.assertTrue(c.memory_purge())
        self.assertIn(b"jemalloc", c.execute_command("MEMORY", "MALLOC-STATS"))
        self.assertTrue(c.execute_command("MEMORY", "DOCTOR"))

    def test_jemalloc_bg_thread_runs_the_purge_thread(self):
        # Valkey's jemalloc-bg-thread (default yes): jemalloc's background thread purges dirty
        # pages, so the event loop never does it inline. Its stats report the running threads.
        c = self.client

        def threads():
            stats = c.execute_command("MEMORY", "MALLOC-STATS").decode()
            match = re.search(r"Background threads: (\d+)", stats)
            self.assertIsNotNone(match, stats[:500])
            return int(match.group(1))
        self.assertEqual(c.config_get("jemalloc-bg-thread"), {"jemalloc-bg-thread": "yes"})
        self.assertEqual(threads(), 1)
        try:
            self.assertTrue(c.config_set("jemalloc-bg-thread", "no"))
            self.assertEqual(threads(), 0)
        finally:
            c.config_set("jemalloc-bg-thread", "yes")
        self.assertEqual(threads(), 1)

    def test_redis_cli_memkeys(self):
        c = self.client
        c.set("memkeys-big", "y" * 5000)
        code, out = self.server.cli("--memkeys")
        self.assertEqual(code, 0, out)
        self.assertIn("memkeys-big", out)
        self.assertRegex(out, r"Biggest\s+string found")

    def test_client_list_fields(self):
        c = self.client
        other = self.server.client()
        other.client_setname("counted")
        other.execute_command("WATCH", "w1", "w2")
        for _ in range(5):
            other.ping()
        line = next(l for l in c.execute_command("CLIENT", "LIST").decode().splitlines()
                    if "name=counted" in l)
        fields = dict(item.split("=", 1) for item in line.split(" "))
        self.assertEqual(fields["watch"], "2")
        self.assertGreaterEqual(int(fields["tot-cmds"]), 7)  # SETNAME, WATCH, 5 PINGs
        self.assertGreater(int(fields["tot-net-in"]), 0)
        self.assertGreater(int(fields["tot-net-out"]), 0)
        self.assertGreater(int(fields["tot-mem"]), 0)
        self.assertEqual(fields["multi"], "-1")
        for name in ("qbuf", "argv-mem", "multi-mem"):
            self.assertIn(name, fields)
        info = c.info("clients")
        self.assertGreaterEqual(info["watching_clients"], 1)
        other.close()

    def test_avg_ttl(self):
        c = self.client
        for i in range(10):
            c.set(f"ttl{i}", i, ex=1000)
        keyspace = c.info("keyspace")["db0"]
        self.assertGreater(keyspace["avg_ttl"], 900_000)
        self.assertLessEqual(keyspace["avg_ttl"], 1_000_000)


class ObservabilityDifferentialTest(unittest.TestCase):
    def test_reply_shapes_match_redis(self):
        with Differential() as diff:
            diff.check([
                ["SET", "k", "v"],
                ["SLOWLOG", "RESET"],
                ["SLOWLOG", "LEN"],
                ["SLOWLOG", "GET", "-2"],
                ["SLOWLOG", "GET", "x"],
                ["MEMORY", "USAGE", "missing"],
                ["MEMORY", "USAGE", "k", "SAMPLES", "x"],
                ["MEMORY", "USAGE", "k", "SAMPLES", "-1"],
                ["MEMORY", "USAGE", "k", "FOO"],
                ["MEMORY", "PURGE"],
                ["LATENCY", "LATEST"],
                ["LATENCY", "HISTORY", "nosuch"],
                ["LATENCY", "RESET", "nosuch"],
                ["LATENCY", "GRAPH", "nosuch"],
                ["LATENCY", "HISTOGRAM", "nosuchcommand"],
                ["COMMAND", "GETKEYS", "SET", "a", "b"],
            ])
            # Shapes where the values differ (times, durations, sizes).
            for command in (["CONFIG", "SET", "slowlog-log-slower-than", "0"], ["SET", "k", "w"],
                            ["CONFIG", "SET", "slowlog-log-slower-than", "10000"]):
                diff.a.call(*command)
                diff.b.call(*command)
            want = diff.a.call("SLOWLOG", "GET", "1")
            got = diff.b.call("SLOWLOG", "GET", "1")
            self.assertEqual(shape(got), shape(want))
            self.assertEqual(got[0][3], want[0][3])  # the same argv
            self.assertEqual(shape(diff.b.call("MEMORY", "USAGE", "k")),
                             shape(diff.a.call("MEMORY", "USAGE", "k")))
            # The histogram's buckets are the ones its commands' durations fell in: how many
            # depends on the machine's timing (two SETs can fall in one bucket or two), so the
            # bucket list is compared as pairs of integers, its length not.
            want = shape(diff.a.call("LATENCY", "HISTOGRAM", "set"))
            got = shape(diff.b.call("LATENCY", "HISTOGRAM", "set"))
            self.assertEqual([len(got), len(got[1])], [len(want), len(want[1])], got)
            self.assertEqual(got[:1] + [got[1][:3]], want[:1] + [want[1][:3]])
            for buckets in (got[1][3], want[1][3]):
                self.assertTrue(buckets and len(buckets) % 2 == 0, got)
                self.assertEqual(set(buckets), {"int"}, got)
            want = diff.a.call("COMMAND", "GETKEYSANDFLAGS", "SET", "a", "b")
            got = diff.b.call("COMMAND", "GETKEYSANDFLAGS", "SET", "a", "b")
            # The same keys, each with status-string flags (Valkey's are finer: OW, update...).
            self.assertEqual([k for k, _ in got], [k for k, _ in want])
            self.assertTrue(all(flag[0] == "status" for flag in want[0][1]))
            self.assertEqual(got[0][1], [("status", "RW")])
            want = set(diff.a.call("COMMAND", "LIST", "FILTERBY", "PATTERN", "latency*"))
            got = set(diff.b.call("COMMAND", "LIST", "FILTERBY", "PATTERN", "latency*"))
            self.assertEqual(got, want)

    def test_memory_usage_is_within_a_sane_factor_of_redis(self):
        with Differential() as diff:
            for command in (["SET", "s", "x" * 1000],
                            ["HSET", "h", *sum(([f"f{i}", f"v{i}"] for i in range(200)), [])],
                            ["SADD", "set", *[f"m{i}" for i in range(200)]]):
                diff.a.call(*command)
                diff.b.call(*command)
            # Each hash field and set member carries its CRDT dot: collections are several
            # times redis-server's listpacks (docs/commands/observability.md gives the figures).
            for key, factor in (("s", 2), ("h", 12), ("set", 12)):
                redis_bytes = diff.a.call("MEMORY", "USAGE", key, "SAMPLES", "0")
                lattice_bytes = diff.b.call("MEMORY", "USAGE", key, "SAMPLES", "0")
                print(f"MEMORY USAGE {key}: redis-server {redis_bytes}, lattice {lattice_bytes}")
                self.assertLess(lattice_bytes, redis_bytes * factor, key)
                self.assertGreater(lattice_bytes, redis_bytes / factor, key)


if __name__ == "__main__":
    unittest.main()
