"""Streams replicated between three lattice-server regions on loopback (one shard, full mesh).

Concurrent XADDs from every region (auto and explicit IDs) keep every entry and converge to one
order; XDEL/XTRIM are observed removes; XREAD BLOCK in one region is woken by an XADD made in
another. Consumer groups: a group created in one region appears in the others, a delivery in one
is pending in all, XACK and XCLAIM in one region act in all, XREADGROUP BLOCK is woken by a
remote XADD and ended (NOGROUP) by a remote DESTROY; a stream RESTOREd with its groups reaches
every region, and RESTORE REPLACE of it in one region while another reads and acknowledges the
group converges with the payload's pending entries kept. Seeds are printed so a failure replays.
"""
import os
import random
import threading
import unittest

from harness import RegionsTestCase, run_writers, wait_converged, wait_until
from stream_data import groups_view

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

    def blocked_clients(self, index):
        info = self.regions[index].cli("info", "clients")[1]
        return int(info.split("blocked_clients:")[1].split()[0])

    def test_consumer_groups_replicate_acks_and_claims_across_regions(self):
        a, b, c = (server.client() for server in self.regions)
        for i in range(1, 5):
            a.xadd("cg", {"n": str(i)}, id=f"{i}-0")
        a.xgroup_create("cg", "workers", id="0")
        wait_until(lambda: len(c.xinfo_groups("cg")) == 1, what="the group in region 3")
        wait_until(lambda: c.xlen("cg") == 4, what="the entries in region 3")
        # Region 1 delivers two entries; region 2 and 3 see them pending, owned by alice.
        got = a.xreadgroup("workers", "alice", {"cg": ">"}, count=2)
        self.assertEqual([e for e, _ in got[0][1]], [b"1-0", b"2-0"])
        wait_until(lambda: b.xpending("cg", "workers")["pending"] == 2, what="the PEL in region 2")
        self.assertEqual(b.xpending("cg", "workers")["consumers"],
                         [{"name": b"alice", "pending": 2}])
        # Region 2 does not deliver them again: its group moved past them.
        got = b.xreadgroup("workers", "bob", {"cg": ">"}, count=1)
        self.assertEqual([e for e, _ in got[0][1]], [b"3-0"])
        # XACK in region 2 removes alice's pending entry in region 1.
        self.assertEqual(b.xack("cg", "workers", "1-0"), 1)
        def pending_in_a():
            rows = a.xpending_range("cg", "workers", "-", "+", 10)
            return [(r["message_id"], r["consumer"]) for r in rows]

        wait_until(lambda: pending_in_a() == [(b"2-0", b"alice"), (b"3-0", b"bob")],
                   what="the XACK and bob's delivery in region 1")
        # Region 3 claims alice's entry (JUSTID: the delivery count stays); every region shows
        # carol as its one owner.
        claimed = c.xclaim("cg", "workers", "carol", 0, ["2-0"], justid=True)
        self.assertEqual(claimed, [b"2-0"])
        wait_converged(self.regions)
        for client in (a, b, c):
            rows = client.xpending_range("cg", "workers", "-", "+", 10)
            self.assertEqual([(r["message_id"], r["consumer"], r["times_delivered"])
                              for r in rows], [(b"2-0", b"carol", 1), (b"3-0", b"bob", 1)])
            group = client.xinfo_groups("cg")[0]
            self.assertEqual((group["last-delivered-id"], group["consumers"], group["pending"]),
                             (b"3-0", 3, 2))
        # DESTROY in region 3 removes the group everywhere.
        self.assertEqual(c.xgroup_destroy("cg", "workers"), 1)
        wait_until(lambda: a.xinfo_groups("cg") == [] and b.xinfo_groups("cg") == [],
                   what="the DESTROY in regions 1 and 2")

    def test_a_restored_stream_brings_its_groups_and_merges_with_concurrent_reads(self):
        a, b, c = (server.client() for server in self.regions)
        for i in range(1, 31):
            a.xadd("rg", {"n": str(i)}, id=f"{i}-0")
        a.xgroup_create("rg", "g", id="0")
        a.xreadgroup("g", "c1", {"rg": ">"}, count=3)
        payload = a.dump("rg")
        self.assertTrue(b.restore("rg:copy", 0, payload))
        wait_until(lambda: all(groups_view(r, "rg:copy") == groups_view(a, "rg") for r in (a, c)),
                   what="the restored groups in regions 1 and 3")

        # Region 1 RESTOREs the payload over the copy (REPLACE) while region 2 reads new entries
        # from the group and acknowledges them: every region ends with one state, the group
        # still there, and the payload's pending entries (which region 2 never reads) pending
        # for c1 everywhere.
        rng = random.Random(SEED)

        def writer(index, client, seed):
            local = random.Random(seed)
            for _ in range(15):
                if index == 0:
                    client.restore("rg:copy", 0, payload, replace=True)
                else:
                    got = client.xreadgroup("g", "c2", {"rg:copy": ">"}, count=2)
                    ids = [entry for entry, _ in got[0][1]] if got else []
                    if ids and local.random() < 0.5:
                        client.xack("rg:copy", "g", *ids)
        run_writers(writer, [(0, a, rng.randrange(1 << 30)), (1, b, rng.randrange(1 << 30))])
        wait_converged(self.regions)
        views = [groups_view(r, "rg:copy") for r in (a, b, c)]
        self.assertEqual(views[0], views[1])
        self.assertEqual(views[0], views[2])
        self.assertEqual([g[b"name"] for g in views[0]], [b"g"])
        pending = {row[0]: row[1] for row in views[0][0][b"pending"]}
        for entry in (b"1-0", b"2-0", b"3-0"):
            self.assertEqual(pending.get(entry), b"c1")
        self.assertTrue(set(pending.values()) <= {b"c1", b"c2"}, pending)

    def test_xreadgroup_block_is_woken_by_another_region_and_ends_on_destroy(self):
        a, b = self.regions[0].client(), self.regions[1].client()
        a.xgroup_create("bw", "g", id="$", mkstream=True)
        wait_until(lambda: len(b.xinfo_groups("bw")) == 1, what="the group in region 2")
        result = {}

        def reader(name):
            try:
                result[name] = b.xreadgroup("g", "bob", {"bw": ">"}, block=20000)
            except Exception as error:  # the reply of a destroyed group
                result[name] = error

        thread = threading.Thread(target=reader, args=("woken",))
        thread.start()
        wait_until(lambda: self.blocked_clients(1) == 1, what="the reader to block")
        a.xadd("bw", {"k": "new"}, id="5-0")
        thread.join(timeout=15)
        self.assertFalse(thread.is_alive(), "XREADGROUP BLOCK was not woken by the remote XADD")
        self.assertEqual(result["woken"], [[b"bw", [(b"5-0", {b"k": b"new"})]]])
        wait_until(lambda: a.xpending("bw", "g")["pending"] == 1, what="the delivery in region 1")
        # A group destroyed in region 1 ends a wait in region 2 with NOGROUP.
        thread = threading.Thread(target=reader, args=("destroyed",))
        thread.start()
        wait_until(lambda: self.blocked_clients(1) == 1, what="the reader to block again")
        self.assertEqual(a.xgroup_destroy("bw", "g"), 1)
        thread.join(timeout=15)
        self.assertFalse(thread.is_alive(), "XREADGROUP BLOCK was not ended by the DESTROY")
        self.assertIn("NOGROUP", str(result["destroyed"]))


if __name__ == "__main__":
    unittest.main()
