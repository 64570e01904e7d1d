"""HyperLogLogs replicated between three lattice-server regions on loopback.

Concurrent PFADDs on a dense HyperLogLog ship only the registers they raise (docs/commands/
hyperloglog.md, "Concurrency"): every region ends with the same bytes, exactly those of one key
that received every element in one region, and no conflict is recorded (DEL concurrent with a
raise: tests/crdt/hll_key_test.cc). Seeds are printed so a failure replays.
"""
import os
import random
import unittest

from harness import RegionsTestCase, run_writers, wait_converged

SEED = int(os.environ.get("LATTICE_TEST_SEED", random.randrange(1 << 30)))
print(f"test_hll_regions seed: {SEED} (replay with LATTICE_TEST_SEED={SEED})", flush=True)


class HllRegions(RegionsTestCase):

    def test_concurrent_pfadds_on_a_dense_value_read_as_the_union_everywhere(self):
        rng = random.Random(SEED)
        a = self.regions[0].client()
        base = [f"base:{i}" for i in range(2000)]
        a.pfadd("h", *base)
        a.execute_command("PFDEBUG", "TODENSE", "h")
        wait_converged(self.regions)
        conflicts_before = [len(s.client().execute_command("CRDT.CONFLICTS")) for s in self.regions]
        added = [[f"r{r}:{rng.randrange(1 << 40)}" for _ in range(300)]
                 for r in range(len(self.regions))]

        def writer(server, elements):
            pipe = server.client().pipeline(transaction=False)
            for element in elements:
                pipe.pfadd("h", element)
            pipe.execute()

        run_writers(writer, list(zip(self.regions, added)))
        wait_converged(self.regions)
        values = [s.client().get("h") for s in self.regions]
        self.assertEqual(values[0], values[1], f"seed={SEED}")
        self.assertEqual(values[0], values[2], f"seed={SEED}")
        self.assertEqual(len(values[0]), 12304, f"seed={SEED}")
        # The same elements added in one region, in one order: the same bytes.
        a.pfadd("expect", *base)
        a.execute_command("PFDEBUG", "TODENSE", "expect")
        for elements in added:
            a.pfadd("expect", *elements)
        self.assertEqual(a.get("expect"), values[0], f"seed={SEED}")
        counts = [s.client().pfcount("h") for s in self.regions]
        self.assertEqual(counts, [a.pfcount("expect")] * 3, f"seed={SEED}")
        conflicts_after = [len(s.client().execute_command("CRDT.CONFLICTS")) for s in self.regions]
        self.assertEqual(conflicts_before, conflicts_after, f"seed={SEED}: merges are not conflicts")


if __name__ == "__main__":
    unittest.main()
