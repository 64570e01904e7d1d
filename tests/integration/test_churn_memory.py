"""Deleted and expired counters are freed (issue #17, part 1): three real regions take a churn of
fresh names (INCR + PEXPIRE shared by every region, SET + DEL, SADD + SREM, HINCRBY + DEL,
ZINCRBY + ZREM), then go quiet. Every deleted or expired counter must be purged, DBSIZE comes back
to the baseline, the regions agree, and used_memory comes back within 10% of the start (the
issue's target), the in-memory op ring (crdt_backlog_bytes, bounded by crdt-backlog-size)
excluded by name and printed; what is kept beyond the start is also under RESIDUE_PER_KEY bytes
per churned key. What used to stay (about 2.5 MB of a 10 MB start) was memory grown for the
burst and never given back: the peer links' output buffers, the op log's write buffer, the
engine's shared batches, and per-slot tables left at twice the capacity their keys need.
"""
import unittest

from churn_load import backlog_bytes, beyond_ring, churn, preload, used_memory, wait_back
from harness import info_fields, start_regions, wait_converged, wait_until

BASELINE_KEYS = 20_000
WINDOWS = 3
PER_WINDOW = 2_000
RESIDUE_PER_KEY = 150
TARGET = 0.10  # used_memory after quiescence within 10% of the start


class ChurnMemoryTest(unittest.TestCase):
    def setUp(self):
        self.regions = start_regions(3)

    def tearDown(self):
        for region in self.regions:
            region.cleanup()

    def test_used_memory_returns_after_churn(self):
        clients = [region.client() for region in self.regions]
        preload(clients, BASELINE_KEYS)
        wait_converged(self.regions, timeout=60)
        start = [used_memory(r) for r in self.regions]
        churn(clients, WINDOWS, PER_WINDOW, ttl_ms=100)
        after = [used_memory(r) for r in self.regions]
        ring = [backlog_bytes(r) for r in self.regions]
        took, end = wait_back(self.regions, start, TARGET, timeout=90, measure=beyond_ring)
        ring_end = [backlog_bytes(r) for r in self.regions]
        report = (f"start {start}, after churn {after}, op ring after churn {ring}, "
                  f"after quiescence (op ring excluded) {end} ({took} s), op ring then {ring_end}, "
                  f"ratio {[round(e / s0, 3) for e, s0 in zip(end, start)]}")
        print(report, flush=True)
        self.assertIsNotNone(took, "used_memory (op ring excluded) not back within 10%: " + report)
        churned = WINDOWS * PER_WINDOW * (1 + 4 * len(self.regions))
        for s0, e in zip(start, end):
            self.assertLess((e - s0) / churned, RESIDUE_PER_KEY, report)
        for client in clients:
            wait_until(lambda c=client: c.dbsize() == 3 * BASELINE_KEYS, timeout=30,
                       what="DBSIZE back to the baseline")
        purged = sum(int(info_fields(r, "replication").get("crdt_purged_keys", "0"))
                     for r in self.regions)
        # Every counter that was deleted or expired was purged by exactly one region.
        self.assertGreaterEqual(purged, WINDOWS * PER_WINDOW * (1 + 3 * 2))
        wait_converged(self.regions, timeout=60)


if __name__ == "__main__":
    unittest.main()
