"""lattice-server --import-rdb FILE: Debian's redis-server (a temporary dir, its own port) is
filled with every type Lattice holds in every encoding, with TTLs, in three dbs, plus a stream
with consumer groups (loaded with their pending entries and consumers, and compared through
XINFO STREAM FULL and XPENDING) and a function library, and SAVEd; region a of a three-region shard imports the file, and every
key reaches regions b and c as ordinary replicated writes (bounded polls). A corrupt file and a
non-empty region are refused, nothing loaded. A file of 100,000 keys loads in slices while the
region serves: a client polling it sees -LOADING (and INFO persistence's loading fields), then
the data.
"""
import os
import unittest

import redis

from harness import (ServerProcess, info_fields, start_regions, wait_connected, wait_converged,
                     wait_until)
from rdb_source import RedisSource, fill, snapshot, watch_loading

POPULATED = 100_000


class ImportRdb(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.source = RedisSource().start()
        fill(cls.source)
        cls.expected = {db: snapshot(cls.source.client(db)) for db in (0, 1, 5)}
        cls.rdb = cls.source.save()

    @classmethod
    def tearDownClass(cls):
        cls.source.cleanup()

    def test_import_into_region_a_reaches_b_and_c(self):
        servers = start_regions(3)
        try:
            a = servers[0]
            a.stop()
            a.args += ["--import-rdb", self.rdb]
            a.start()
            log = wait_until(lambda: "Function libraries:" in a.read_log() and a.read_log(),
                             timeout=30, what="the import's summary in the log")
            self.assertIn("Loaded 49 keys (hash=6 list=9 set=9 stream=1 string=18 zset=6)", log)
            self.assertIn("Stream consumer groups: 1 in 1 stream keys", log)
            self.assertNotIn("Skipped:", log)
            self.assertIn("Function libraries: 1 loaded, 0 refused", log)
            wait_connected(a, 2)
            wait_converged(servers, timeout=60)
            for server in servers:
                for db, keys in self.expected.items():
                    self.assertEqual(snapshot(server.client(db=db)), keys,
                                     f"db {db} on port {server.port}")
                wait_until(lambda: server.client().fcall("movein_echo", 0, "hi") == b"hi",
                           what=f"function library on port {server.port}")
        finally:
            for s in servers:
                s.cleanup()

    def test_a_non_empty_region_refuses(self):
        server = ServerProcess().start()
        try:
            server.client().set("already", "here")
            server.stop()
            server.args += ["--import-rdb", self.rdb]
            with self.assertRaises(AssertionError):
                server.start(timeout=5)
            self.assertIn("the region is not empty", server.read_log())
        finally:
            server.cleanup()

    def test_a_corrupt_file_is_refused_with_the_offset_and_nothing_loaded(self):
        with open(self.rdb, "rb") as f:
            data = bytearray(f.read())
        data[len(data) // 2] ^= 0x40
        server = ServerProcess()
        corrupt = os.path.join(server.dir, "corrupt.rdb")
        with open(corrupt, "wb") as f:
            f.write(data)
        try:
            server.args += ["--import-rdb", corrupt]
            # The region listens while it checks the file, then exits with status 1.
            server.launch()
            wait_until(lambda: server.proc.poll() is not None, timeout=30,
                       what="the region to exit after refusing the file")
            self.assertEqual(server.proc.returncode, 1)
            self.assertRegex(server.read_log(), r"refused: Bad RDB file at byte offset \d+: ")
            server.stop()
            server.args = []
            server.start()
            self.assertEqual(server.client().dbsize(), 0)
            self.assertEqual(server.client().function_list(), [])
        finally:
            server.cleanup()


class ImportWhileServing(unittest.TestCase):
    def test_a_large_file_loads_in_slices_while_clients_see_loading(self):
        source = RedisSource("--enable-debug-command", "yes").start()
        server = ServerProcess()
        try:
            source.client().execute_command("DEBUG", "POPULATE", POPULATED, "key", 16)
            rdb = source.save()
            server.args += ["--import-rdb", rdb]
            server.start()
            seen = watch_loading(self, server, os.path.getsize(rdb), POPULATED)
            self.assertGreaterEqual(seen, 1)
            log = server.read_log()
            self.assertIn(f"Loaded {POPULATED} keys (string={POPULATED})", log)
            c = server.client()
            self.assertEqual(c.get("key:99999"), source.client().get("key:99999"))
            self.assertEqual(info_fields(server, "persistence")["loading"], "0")
            self.assertNotIn("loading_total_bytes", info_fields(server, "persistence"))
        finally:
            server.cleanup()
            source.cleanup()


if __name__ == "__main__":
    unittest.main()
