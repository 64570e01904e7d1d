"""INFO as dashboards and redis_exporter read it: every field redis-server 7.0 reports in INFO
everything is reported by Lattice too (the few that describe Valkey-only machinery are listed
below with the reason), the instantaneous rates move under load, the memory peak holds, and
config_file names the file loaded."""
import os
import subprocess
import unittest

from differential import Differential
from harness import ServerProcess, wait_until

# Fields of redis-server 7.0 that describe machinery Lattice does not have and that no
# dashboard needs from an active-active region: I/O threads, Valkey's primary/replica
# replication stream (Lattice's regions report crdt_* fields instead), and a few internal ones.
NOT_APPLICABLE = {
    "io_threads_active", "io_threaded_reads_processed", "io_threaded_writes_processed",
    "total_reads_processed", "total_writes_processed", "reply_buffer_shrinks",
    "reply_buffer_expands", "master_replid", "master_replid2", "second_repl_offset",
    "repl_backlog_active", "repl_backlog_size", "repl_backlog_first_byte_offset",
    "repl_backlog_histlen", "master_failover_state", "instantaneous_input_repl_kbps",
    "instantaneous_output_repl_kbps", "mem_replication_backlog", "mem_total_replication_buffers",
    "mem_aof_buffer", "mem_cluster_links", "cluster_connections", "expire_cycle_cpu_milliseconds",
}


def fields(port):
    """INFO everything as redis-cli prints it: {field: value}."""
    text = subprocess.run(["redis-cli", "-p", str(port), "info", "everything"],
                          capture_output=True, text=True, timeout=30, check=True).stdout
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line:
            name, _, value = line.partition(":")
            out[name] = value
    return out


def comparable(names):
    return {n for n in names if not n.startswith(("cmdstat_", "errorstat_", "db",
                                                   "latency_percentiles_usec_"))}


class InfoFieldsTest(unittest.TestCase):
    def test_every_redis_field_is_reported(self):
        with Differential() as diff:
            redis_fields = comparable(fields(diff.oracle_port))
            lattice_fields = comparable(fields(diff.lattice.port))
        self.assertGreater(len(redis_fields), 150)
        missing = sorted(redis_fields - lattice_fields - NOT_APPLICABLE)
        self.assertEqual(missing, [])

    def test_rates_peak_and_config_file(self):
        server = ServerProcess(config_text="hz 10\n").start()
        self.addCleanup(server.stop)
        client = server.client()
        info = fields(server.port)
        self.assertEqual(info["config_file"], os.path.realpath(server.config_path))
        self.assertEqual(info["executable"], os.path.realpath(os.environ.get(
            "LATTICE_SERVER", info["executable"])))
        # Load in the background (redis-benchmark, bounded), and watch the rate rise.
        bench = subprocess.Popen(["redis-benchmark", "-p", str(server.port), "-n", "2000000",
                                  "-t", "set", "-P", "16", "-q"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (bench.poll() is None and bench.kill(), bench.wait()))
        wait_until(lambda: int(fields(server.port)["instantaneous_ops_per_sec"]) > 1000, timeout=30,
                   what="instantaneous_ops_per_sec above 1000 under redis-benchmark")
        wait_until(lambda: float(fields(server.port)["instantaneous_input_kbps"]) > 10, timeout=30,
                   what="instantaneous_input_kbps under load")
        info = fields(server.port)
        self.assertGreaterEqual(int(info["used_memory_peak"]), int(info["used_memory"]))
        self.assertGreater(int(info["total_system_memory"]), 0)
        self.assertLessEqual(int(info["used_memory_startup"]), int(info["used_memory_peak"]))
        self.assertEqual(int(info["used_memory_overhead"]) + int(info["used_memory_dataset"]),
                         int(info["used_memory"]))
        client.execute_command("WATCH", "watched")
        self.assertEqual(fields(server.port)["watching_clients"], "1")
        self.assertEqual(fields(server.port)["total_watched_keys"], "1")


if __name__ == "__main__":
    unittest.main()
