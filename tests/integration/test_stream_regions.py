"""Streams replicated between three lattice-server regions on loopback (one shard, full mesh).

Concurrent XADDs from every region (auto and explicit IDs) keep every entry and converge to one
order; XDEL/XTRIM are observed removes; XREAD BLOCK in one region is woken by an XADD made in
another. Seeds are printed so a failure replays.
"""
import os
import random
import threading
import unittest

from harness import RegionsTestCase, run_writers, wait_converged, wait_until

SEED = int(os.environ.get("LATTICE_TEST_SEED", random.randrange(1 << 30)))
print(f"test_stream_regions seed: {SEED} (replay with LATTICE_TEST_SEED={SEED})", flush=True)


class StreamRegions(RegionsTestCase):

    def ranges(self, key):
        return [server.client().xrange(key, "-", "+") for server in self.regions]

    def test_concurrent_xadds_converge_keeping_every_entry_in_id_order(self):
        rng = random.Random(SEED)
        seeds = [rng.randrange(1 << 30) for _ in self.regions]
        written = [[] for _ in self.regions]

        def writer(index, server, seed):
            local = random.Random(seed)
            client = server.client()
            pipe = client.pipeline(transaction=False)
            for i in range(300):
                value = f"r{index}-{i}"
                if local.random() < 0.8:
                    pipe.xadd("st", {"v": value})
                else:
                    # Explicit IDs far above the clock: regions may pick the same one.
                    pipe.xadd("st", {"v": value}, id=f"{10**15 + i}-*")
                written[index].append(value.encode())
            replies = pipe.execute(raise_on_error=False)
            # An explicit ID below this region's last one is refused, as in Valkey.
            for value, reply in zip(list(written[index]), replies):
                if isinstance(reply, Exception):
                    written[index].remove(value)

        run_writers(writer, [(i, server, seed)
                             for i, (server, seed) in enumerate(zip(self.regions, seeds))])
        wait_converged(self.regions)
        ranges = self.ranges("st")
        self.assertEqual(ranges[0], ranges[1], f"seed={SEED}")
        self.assertEqual(ranges[0], ranges[2], f"seed={SEED}")
        values = sorted(fields[b"v"] for _, fields in ranges[0])
        expected = sorted(v for vs in written for v in vs)
        self.assertEqual(values, expected, f"seed={SEED}: an entry was lost")
        ids = [tuple(map(int, entry_id.split(b"-"))) for entry_id, _ in ranges[0]]
        self.assertEqual(ids, sorted(ids), f"seed={SEED}: not in ID order")
        # Each region's own entries keep their order.
        for index, vs in enumerate(written):
            mine = [f[b"v"] for _, f in ranges[0] if f[b"v"].startswith(f"r{index}-".encode())]
            self.assertEqual(sorted(mine), sorted(vs))
        lengths = {server.client().xlen("st") for server in self.regions}
        self.assertEqual(lengths, {len(expected)})

    def test_xdel_and_xtrim_replicate_and_spare_concurrent_entries(self):
        a, b, c = (server.client() for server in self.regions)
        for i in range(1, 6):
            a.xadd("dt", {"n": str(i)}, id=f"{i}-0")
        wait_until(lambda: b.xlen("dt") == 5 and c.xlen("dt") == 5, what="the entries")
        self.assertEqual(b.xdel("dt", "2-0", "9-9"), 1)
        wait_until(lambda: c.xlen("dt") == 4, what="the XDEL to reach region 2")
        self.assertEqual(c.xtrim("dt", maxlen=3, approximate=False), 1)  # 1-0
        wait_converged(self.regions)
        for client in (a, b, c):
            self.assertEqual([e for e, _ in client.xrange("dt", "-", "+")],
                             [b"3-0", b"4-0", b"5-0"])
            self.assertEqual(client.type("dt"), b"stream")
        info = a.xinfo_stream("dt")
        self.assertEqual(info["last-generated-id"], b"5-0")
        self.assertEqual(info["max-deleted-entry-id"], b"2-0")

    def test_xread_block_is_woken_by_another_region(self):
        a, b = self.regions[0].client(), self.regions[1].client()
        a.xadd("wake", {"k": "old"}, id="1-0")
        wait_until(lambda: b.xlen("wake") == 1, what="the first entry")
        result = {}

        def reader():
            result["reply"] = b.xread({"wake": "$"}, block=20000)

        thread = threading.Thread(target=reader)
        thread.start()
        wait_until(lambda: int(self.regions[1].cli("info", "clients")[1].split(
            "blocked_clients:")[1].split()[0]) == 1, what="the reader to block")
        a.xadd("wake", {"k": "new"}, id="2-0")
        thread.join(timeout=15)
        self.assertFalse(thread.is_alive(), "XREAD BLOCK was not woken by the remote XADD")
        self.assertEqual(result["reply"], [[b"wake", [(b"2-0", {b"k": b"new"})]]])


if __name__ == "__main__":
    unittest.main()
