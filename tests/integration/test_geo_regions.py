"""Geo sets and SORT ... STORE replicated between three lattice-server regions on loopback.

Concurrent GEOADDs of the same members from every region converge: every region ends with the
same position per member, one of the positions written (the later stamp's), and every search
replies the same everywhere. SORT ... STORE in one region reaches the others as a list. Seeds
are printed so a failure replays.
"""
import os
import random
import unittest

from harness import RegionsTestCase, run_writers, wait_converged, wait_until

SEED = int(os.environ.get("LATTICE_TEST_SEED", random.randrange(1 << 30)))
print(f"test_geo_regions seed: {SEED} (replay with LATTICE_TEST_SEED={SEED})", flush=True)


class GeoRegions(RegionsTestCase):

    def test_concurrent_geoadds_of_one_member_converge_to_one_written_position(self):
        rng = random.Random(SEED)
        seeds = [rng.randrange(1 << 30) for _ in self.regions]
        written = [dict() for _ in self.regions]  # member -> (lon, lat) per region

        def writer(index, server, seed):
            local = random.Random(seed)
            pipe = server.client().pipeline(transaction=False)
            for i in range(400):
                member = f"m{local.randrange(60)}"
                lon = round(2.0 + local.uniform(-0.5, 0.5), 6)
                lat = round(48.0 + local.uniform(-0.5, 0.5), 6)
                pipe.geoadd("places", [lon, lat, member])
                written[index].setdefault(member, []).append((lon, lat))
            pipe.execute()

        run_writers(writer, [(i, server, seed)
                             for i, (server, seed) in enumerate(zip(self.regions, seeds))])
        wait_converged(self.regions)
        clients = [server.client() for server in self.regions]
        sets = [c.zrange("places", 0, -1, withscores=True) for c in clients]
        self.assertEqual(sets[0], sets[1], f"seed={SEED}")
        self.assertEqual(sets[0], sets[2], f"seed={SEED}")
        members = {m for w in written for m in w}
        self.assertEqual({m.decode() for m, _ in sets[0]}, members, f"seed={SEED}")
        # Each member's position is one that some region wrote (cells are ~0.6 m wide).
        for member in members:
            lon, lat = (float(x) for x in clients[0].geopos("places", member)[0])
            candidates = [p for w in written for p in w.get(member, [])]
            self.assertTrue(any(abs(lon - a) < 1e-5 and abs(lat - b) < 1e-5
                                for a, b in candidates), f"seed={SEED}: {member} moved")
        searches = [c.geosearch("places", longitude=2, latitude=48, radius=30, unit="km",
                                withdist=True, withcoord=True) for c in clients]
        self.assertEqual(searches[0], searches[1], f"seed={SEED}")
        self.assertEqual(searches[0], searches[2], f"seed={SEED}")

    def test_geosearchstore_and_sort_store_replicate(self):
        a, b, c = (server.client() for server in self.regions)
        a.geoadd("pts", [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"])
        stored = a.geosearchstore("near", "pts", longitude=15, latitude=37, radius=200,
                                  unit="km", sort="ASC", storedist=True)
        self.assertEqual(stored, 2)
        a.rpush("nums", "3", "1", "2")
        self.assertEqual(a.execute_command("SORT", "nums", "DESC", "STORE", "sorted"), 3)
        wait_until(lambda: c.lrange("sorted", 0, -1) == [b"3", b"2", b"1"] and
                   b.zrange("near", 0, -1) == [b"Catania", b"Palermo"],
                   what="the stored results to replicate")
        self.assertEqual(b.geodist("pts", "Palermo", "Catania", "km"), 166.2742)


if __name__ == "__main__":
    unittest.main()
