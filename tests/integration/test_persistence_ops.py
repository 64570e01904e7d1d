"""Persistence operations on real processes: SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE and INFO
persistence; `save` points; CONFIG REWRITE (comments kept, CONFIG SET and CRDT.PEER ADD survive
a restart); MONITOR (redis-cli monitor, the line format, redacted AUTH, ops from other regions);
CLIENT LIST omem/obl/oll; seeding a region from a copy of another's data dir with
--reset-replica-id.
"""
import os
import shutil
import socket
import subprocess
import time
import unittest

import redis

from harness import (ServerProcess, connected_peers, free_port, info_fields, read_until,
                     start_regions, wait_connected, wait_converged, wait_until)


class SaveCommandsTest(unittest.TestCase):
    def setUp(self):
        self.server = ServerProcess("--save", "").start()
        self.r = self.server.client()

    def tearDown(self):
        self.server.cleanup()

    def test_save_bgsave_bgrewriteaof_lastsave(self):
        for i in range(100):
            self.r.set(f"k{i}", i)
        fields = info_fields(self.server, "persistence")
        self.assertEqual(fields["rdb_changes_since_last_save"], "100")
        saves = int(fields["rdb_saves"])
        self.assertEqual(self.server.cli("save"), (0, "OK\n"))
        fields = info_fields(self.server, "persistence")
        self.assertEqual(fields["rdb_changes_since_last_save"], "0")
        self.assertEqual(int(fields["rdb_saves"]), saves + 1)
        self.assertLessEqual(abs(self.r.lastsave().timestamp() - time.time()), 5)
        self.assertTrue(os.path.exists(os.path.join(self.server.dir, "snapshot")))

        self.r.set("after", "1")
        self.assertEqual(self.server.cli("bgsave"), (0, "Background saving started\n"))
        wait_until(lambda: info_fields(self.server, "persistence")["rdb_bgsave_in_progress"] == "0",
                   what="BGSAVE to finish")
        fields = info_fields(self.server, "persistence")
        self.assertEqual(fields["rdb_last_bgsave_status"], "ok")
        self.assertEqual(fields["rdb_changes_since_last_save"], "0")
        self.assertEqual(int(fields["rdb_saves"]), saves + 2)
        self.assertEqual(self.server.cli("bgsave", "now")[1].strip(), "ERR syntax error")
        self.assertEqual(self.server.cli("bgrewriteaof"),
                         (0, "Background append only file rewriting started\n"))
        wait_until(lambda: info_fields(self.server, "persistence")["aof_rewrites"] == "1",
                   what="BGREWRITEAOF to finish")
        self.assertEqual(info_fields(self.server, "persistence")["aof_last_bgrewrite_status"], "ok")

        # What was saved comes back after kill -9.
        self.server.stop(signal_kill())
        self.server.start()
        r = self.server.client()
        self.assertEqual(r.dbsize(), 101)
        self.assertEqual(info_fields(self.server, "persistence")["rdb_changes_since_last_save"],
                         "0")

    def test_bgsave_twice_and_schedule(self):
        # Every request arrives in one read, before the cron runs the first.
        sock = self.server.raw()
        sock.sendall(b"*1\r\n$6\r\nBGSAVE\r\n*1\r\n$6\r\nBGSAVE\r\n"
                     b"*2\r\n$6\r\nBGSAVE\r\n$6\r\nCANCEL\r\n*1\r\n$12\r\nBGREWRITEAOF\r\n"
                     b"*2\r\n$6\r\nBGSAVE\r\n$8\r\nSCHEDULE\r\n")
        replies = read_until(sock, b"scheduled\r\n").decode().split("\r\n")
        self.assertEqual(replies[:5], [
            "+Background saving started",
            "-ERR Background save already in progress",
            "+Background saving cancelled",
            "+Background append only file rewriting started",
            "+Background saving scheduled"])
        sock.close()


def signal_kill():
    import signal
    return signal.SIGKILL


class SavePointsTest(unittest.TestCase):
    def test_save_point_checkpoints(self):
        server = ServerProcess("--save", "1 5", "--hz", "50").start()
        try:
            r = server.client()
            self.assertEqual(r.config_get("save"), {"save": "1 5"})
            for i in range(3):
                r.set(f"k{i}", i)
            saves = int(info_fields(server, "persistence")["rdb_saves"])
            for i in range(3, 10):
                r.set(f"k{i}", i)
            wait_until(lambda: int(info_fields(server, "persistence")["rdb_saves"]) > saves,
                       timeout=10, what="the save point to trigger a checkpoint")
            self.assertEqual(info_fields(server, "persistence")["rdb_changes_since_last_save"],
                             "0")
        finally:
            server.cleanup()


CONFIG = """# Lattice test config: this comment must survive CONFIG REWRITE
maxmemory-policy noeviction

# a second comment
hz 10
save 900 1
save 300 10
"""


class ConfigRewriteTest(unittest.TestCase):
    def test_without_config_file(self):
        server = ServerProcess().start()
        try:
            with self.assertRaises(redis.ResponseError) as error:
                server.client().config_rewrite()
            self.assertEqual(str(error.exception), "The server is running without a config file")
        finally:
            server.cleanup()

    def test_rewrite_keeps_comments_and_survives_restart(self):
        other = free_port()
        server = ServerProcess(config_text=CONFIG).start()
        try:
            r = server.client()
            r.config_set("maxmemory-policy", "allkeys-lru")
            r.config_set("timeout", "77")
            r.config_set("save", "60 1000")
            r.execute_command("CRDT.PEER", "ADD", f"127.0.0.1:{other}")
            self.assertTrue(r.config_rewrite())
            with open(server.config_path) as f:
                text = f.read()
            self.assertIn("# Lattice test config: this comment must survive CONFIG REWRITE", text)
            self.assertIn("# a second comment", text)
            lines = text.splitlines()
            self.assertEqual(lines[1], "maxmemory-policy allkeys-lru")  # rewritten in place
            self.assertIn("hz 10", lines)
            self.assertEqual([l for l in lines if l.startswith("save")], ["save 60 1000"])
            self.assertIn("# Generated by CONFIG REWRITE", lines)
            self.assertIn("timeout 77", lines)
            self.assertIn(f"peer 127.0.0.1:{other}", lines)
            self.assertTrue(r.config_rewrite())  # idempotent
            with open(server.config_path) as f:
                self.assertEqual(f.read(), text)

            server.stop()
            server.start()
            r = server.client()
            self.assertEqual(r.config_get("maxmemory-policy")["maxmemory-policy"], "allkeys-lru")
            self.assertEqual(r.config_get("timeout")["timeout"], "77")
            self.assertEqual(r.config_get("save")["save"], "60 1000")
            peers = r.execute_command("CRDT.PEER", "LIST")
            self.assertIn(f"127.0.0.1:{other}", str(peers))
        finally:
            server.cleanup()


def monitor_lines(sock, count, timeout=10.0):
    data = read_until(sock, b"\r\n", timeout)
    while data.count(b"\r\n") < count:
        data += read_until(sock, b"\r\n", timeout)
    return data.decode().split("\r\n")[:count]


class MonitorTest(unittest.TestCase):
    def test_monitor_format_and_redaction(self):
        server = ServerProcess("--requirepass", "sekret").start()
        try:
            mon = server.raw()
            mon.sendall(b"*2\r\n$4\r\nAUTH\r\n$6\r\nsekret\r\n*1\r\n$7\r\nMONITOR\r\n")
            self.assertEqual(read_until(mon, b"+OK\r\n+OK\r\n"), b"+OK\r\n+OK\r\n")
            r = server.client(password="sekret")
            r.set("k", 'a "quoted"\nvalue')
            r.execute_command("CONFIG", "GET", "hz")  # admin: not shown
            r.get("k")
            lines = read_until(mon, b'"k"\r\n').decode().split("\r\n")[:-1]
            head = r'^\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] '
            self.assertRegex(lines[0], head + r'"(?i:auth)" "\(redacted\)"$')
            self.assertRegex(lines[-2], head + r'"(?i:set)" "k" "a \\"quoted\\"\\nvalue"$')
            self.assertRegex(lines[-1], head + r'"(?i:get)" "k"$')
            self.assertNotIn("sekret", "".join(lines))
            self.assertNotIn("hz", "".join(lines).lower())
            # A script's line comes first, then those of the commands it called, from "lua".
            r.eval("redis.call('set', 'e', '1') return 1", 0)
            lines = read_until(mon, b'"e" "1"\r\n').decode().split("\r\n")[:-1]
            self.assertRegex(lines[-2], head + r'"(?i:eval)" "redis.call\(\'set\', \'e\', \'1\'\) return 1" "0"$')
            self.assertRegex(lines[-1], r'^\+\d+\.\d{6} \[0 lua\] "set" "e" "1"$')
            code, out = server.cli("-a", "sekret", "--no-auth-warning", "client", "list")
            self.assertIn("flags=", out)
        finally:
            server.cleanup()

    def test_redis_cli_monitor(self):
        server = ServerProcess().start()
        try:
            proc = subprocess.Popen(["redis-cli", "-p", str(server.port), "monitor"],
                                    stdout=subprocess.PIPE, text=True)
            try:
                r = server.client()
                wait_until(lambda: "monitor" in str(r.client_list()), what="redis-cli to monitor")
                r.set("mk", "mv")
                line = proc.stdout.readline()
                while '"mk"' not in line:
                    line = proc.stdout.readline()
                self.assertRegex(line, r'^\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "(?i:set)" "mk" "mv"')
            finally:
                proc.terminate()
                proc.wait(timeout=10)
        finally:
            server.cleanup()

    def test_ops_from_other_regions_are_marked(self):
        servers = start_regions(2)
        try:
            mon = servers[0].raw()
            mon.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
            read_until(mon, b"+OK\r\n")
            servers[1].client().hset("remote-key", "f", "v")
            lines = monitor_lines(mon, 1)
            self.assertRegex(lines[0],
                             r'^\+\d+\.\d{6} \[0 region:region-1\] "crdt.apply" "remote-key" "hash"$')
        finally:
            for s in servers:
                s.cleanup()


class ClientListOutputTest(unittest.TestCase):
    def test_omem_counts_pending_replies(self):
        server = ServerProcess().start()
        try:
            r = server.client()
            r.set("big", "x" * (1 << 20))
            slow = server.raw()
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.sendall(b"*2\r\n$6\r\nCLIENT\r\n$5\r\nSETNAME\r\n" +
                         b"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$4\r\nslow\r\n" +
                         b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 64)

            def slow_line():
                for line in r.execute_command("CLIENT", "LIST").decode().splitlines():
                    if " name=slow " in line:
                        fields = dict(kv.split("=", 1) for kv in line.split(" ") if "=" in kv)
                        if int(fields["omem"]) > 0:
                            return fields
                return None
            fields = wait_until(slow_line, what="the unread replies to show in omem")
            self.assertEqual(int(fields["obl"]), 16384)
            self.assertGreater(int(fields["oll"]), 0)
            self.assertGreater(int(fields["tot-mem"]), int(fields["omem"]))
            slow.close()
        finally:
            server.cleanup()


class SeedRegionTest(unittest.TestCase):
    def test_copied_dir_with_reset_replica_id(self):
        a = ServerProcess("--region", "a").start()
        b = None
        try:
            ra = a.client()
            for i in range(50):
                ra.set(f"k{i}", i)
            ra.execute_command("BGSAVE")
            wait_until(lambda: info_fields(a, "persistence")["rdb_bgsave_in_progress"] == "0",
                       what="BGSAVE")
            b = ServerProcess("--region", "b", "--reset-replica-id", "--peer",
                              f"127.0.0.1:{a.port + 10000}")
            shutil.rmtree(b.dir)
            shutil.copytree(a.dir, b.dir, ignore=shutil.ignore_patterns("server.log"))
            b.start()
            self.assertIn("replica id reset", b.read_log().lower())
            rb = b.client()
            id_a = info_fields(a, "replication")["crdt_replica_id"]
            self.assertNotEqual(info_fields(b, "replication")["crdt_replica_id"], id_a)
            self.assertEqual(rb.dbsize(), 50)
            ra.execute_command("CRDT.PEER", "ADD", f"127.0.0.1:{b.port + 10000}")
            wait_connected(a, 1)
            wait_connected(b, 1)
            rb.set("from-b", "1")
            ra.set("from-a", "1")
            wait_converged([a, b])
            self.assertEqual(ra.get("from-b"), b"1")
            # Without the option, a copy keeps the id, and a link to its origin is refused.
            b.stop()
            b.args.remove("--reset-replica-id")
            c = ServerProcess("--region", "c", "--peer", f"127.0.0.1:{a.port + 10000}")
            shutil.rmtree(c.dir)
            shutil.copytree(a.dir, c.dir, ignore=shutil.ignore_patterns("server.log"))
            c.start()
            try:
                wait_until(lambda: "own replica id" in c.read_log() + a.read_log(),
                           what="the copy's link to be refused")
            finally:
                c.cleanup()
        finally:
            a.cleanup()
            if b is not None:
                b.cleanup()


if __name__ == "__main__":
    unittest.main()
