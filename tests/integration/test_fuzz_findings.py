"""Bugs the fuzz targets found (docs/security.md, "Fuzzing and limits"), each checked on a real
lattice-server. The inputs that found them are replayed by ctest from tests/fuzz/regressions/.
"""
import os
import subprocess
import unittest

from harness import ServerProcess


class SwapDbSurvivesRestartTest(unittest.TestCase):
    """SWAPDB is not in the op log, which names databases by number: a restart used to replay the
    writes made before it into the unswapped databases, undoing the swap and mixing them with the
    writes made after it (found by the `commands` target's log replay check)."""

    def test_swapdb_then_restart_keeps_the_swap(self):
        server = ServerProcess("--appendfsync", "always")
        try:
            server.start()
            db0, db1 = server.client(db=0), server.client(db=1)
            db0.set("was-in-0", "a")
            db1.set("was-in-1", "b")
            self.assertTrue(db0.swapdb(0, 1))
            db0.set("written-after", "c")
            expected = ([b"was-in-1", b"written-after"], [b"was-in-0"])
            self.assertEqual(expected, (sorted(db0.keys()), sorted(db1.keys())))
            server.stop()
            server.start()
            db0, db1 = server.client(db=0), server.client(db=1)
            self.assertEqual(expected, (sorted(db0.keys()), sorted(db1.keys())))
            self.assertEqual(b"b", db0.get("was-in-1"))
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()


class PeersFileNamingThisReplicaTest(unittest.TestCase):
    """A peers file that names the replica itself (copied from another node's data dir) used to
    trip an assertion in the replication engine at startup (found by the `recovery` target):
    now it is refused with an error naming the line, like any other damaged line."""

    def test_refused_with_an_error_not_an_abort(self):
        server = ServerProcess()
        try:
            server.start()
            server.stop()
            with open(os.path.join(server.dir, "replica-id")) as f:
                own_id = f.read().split()[1]
            with open(os.path.join(server.dir, "peers"), "w") as f:
                f.write(own_id + "\n")
            done = subprocess.run(server.command_line(), capture_output=True, text=True,
                                  timeout=30)
            self.assertEqual(1, done.returncode, done.stdout + done.stderr)
            self.assertIn(f"Bad line in the peers file: '{own_id}' is this replica's own id",
                          done.stdout + done.stderr)
        finally:
            server.cleanup()
