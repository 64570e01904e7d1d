"""A command's writes reach other regions as one group (docs/replication.md, "Groups"): three
lattice-server regions on loopback (one shard, full mesh). A script in region a sets 200 keys to
one 200-byte value, again and again (about 50 KB of ops: several frames and several reads at the
receiver, as the old one-op-at-a-time delivery showed); a reader polling region b (and c) with
MGET never sees a mix of two scripts' values. The same for MULTI/EXEC, and for a RENAME (never both names, never neither).
Each round ends with a bounded wait for the last value; the seed is printed so a failure replays.
"""
import os
import random
import threading
import unittest

from harness import RegionsTestCase, wait_until

SEED = int(os.environ.get("LATTICE_TEST_SEED", random.randrange(1 << 30)))
print(f"test_op_groups seed: {SEED} (replay with LATTICE_TEST_SEED={SEED})", flush=True)

KEYS = [f"group:{{t}}:{i}" for i in range(200)]
SCRIPT = "for i, k in ipairs(KEYS) do redis.call('SET', k, ARGV[1]) end return #KEYS"


class OpGroups(RegionsTestCase):

    def watch(self, write, rounds):
        """Runs `write(value)` in region a `rounds` times (values w0, w1, ...) while a reader in
        every other region polls MGET of the keys; returns what the readers saw that was mixed
        and how many reads they made."""
        rng = random.Random(SEED)
        stop = threading.Event()
        mixed = []
        reads = [0]

        def reader(server):
            client = server.client()
            while not stop.is_set():
                values = client.mget(KEYS)
                reads[0] += 1
                if len(set(values)) != 1:  # kept short: each value's round prefix
                    mixed.append(sorted({(v or b"(nil)").split(b"-x")[0] for v in values}))
                    return

        threads = [threading.Thread(target=reader, args=(server,)) for server in self.regions[1:]]
        for thread in threads:
            thread.start()
        try:
            for n in range(rounds):
                write(f"w{n}-{rng.randrange(1 << 20)}-" + "x" * 200)
        finally:
            last = self.regions[0].client().get(KEYS[0])
            for server in self.regions[1:]:
                client = server.client()
                wait_until(lambda: client.mget(KEYS) == [last] * len(KEYS), timeout=30,
                           what="the last write in every region")
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        return mixed, reads[0]

    def test_a_script_is_seen_whole_or_not_at_all(self):
        a = self.regions[0].client()
        sha = a.script_load(SCRIPT)
        mixed, reads = self.watch(lambda value: a.evalsha(sha, len(KEYS), *KEYS, value), 200)
        self.assertEqual(mixed, [], f"seed {SEED}: a region showed part of a script")
        self.assertGreater(reads, 0)

    def test_an_exec_is_seen_whole_or_not_at_all(self):
        a = self.regions[0].client()

        def transaction(value):
            pipe = a.pipeline(transaction=True)
            for key in KEYS:
                pipe.set(key, value)
            pipe.execute()
        mixed, reads = self.watch(transaction, 200)
        self.assertEqual(mixed, [], f"seed {SEED}: a region showed part of an EXEC")
        self.assertGreater(reads, 0)

    def test_a_rename_is_seen_whole(self):
        a = self.regions[0].client()
        b = self.regions[1].client()
        for n in range(100):
            source, target = f"ren:{{r}}:{n}", f"ren:{{r}}:{n}:new"
            a.set(source, "v")
            wait_until(lambda: b.get(source) == b"v", what="the source in region b")
            a.rename(source, target)
            for _ in range(200_000):  # bounded: a few seconds of reads
                old, new = b.mget(source, target)
                self.assertEqual(old is None, new == b"v",
                                 f"seed {SEED}: region b shows half a RENAME: {old} {new}")
                if new == b"v":
                    break
            else:
                self.fail("the RENAME did not reach region b")

if __name__ == "__main__":
    unittest.main()
