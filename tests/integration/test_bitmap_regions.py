"""Bitmaps replicated between three lattice-server regions on loopback (docs/commands/bitmap.md,
"Concurrency"; docs/semantics.md, "Bitmaps").

With the a-b link cut (CRDT.PEER REMOVE both ways) and then region c stopped (SIGSTOP, by our PID),
regions a and b write the same keys, so their writes are concurrent; then the link comes back, c
resumes, and all three must converge to:
- SETBITs on different bits in different 256-byte chunks: every bit set everywhere;
- SET in a, then (later) SETBIT in b: the SET's value with b's chunk laid over it; SETBIT in b,
  then (later) SET in a: the SET's value alone;
- DEL in a concurrent with SETBIT in b: b's chunk over zero bytes;
- BITFIELD OVERFLOW WRAP INCRBY of one field in a and in b: both increments count (modulo the
  field's width), also over a concurrent SETBIT or SAT increment of that chunk (chunk writes).
DUMP/RESTORE of the merged bitmap gives the composed string. Seeds are printed.
"""
import os
import random
import signal
import time
import unittest

from harness import RegionsTestCase, connected_peers, wait_converged, wait_until

SEED = int(os.environ.get("LATTICE_TEST_SEED", random.randrange(1 << 30)))
print(f"test_bitmap_regions seed: {SEED} (replay with LATTICE_TEST_SEED={SEED})", flush=True)

CHUNK_BITS = 256 * 8


def bit_of(value, bit):
    byte = bit // 8
    return byte < len(value) and (value[byte] >> (7 - bit % 8)) & 1 == 1


class BitmapRegions(RegionsTestCase):

    def address(self, server):
        return f"127.0.0.1:{server.port + 10000}"

    def partitioned(self, writes):
        """Runs writes(a, b) with c stopped and the a-b link cut, then heals and converges."""
        a, b, c = self.regions
        ca, cb = a.client(), b.client()
        ca.execute_command("CRDT.PEER", "REMOVE", self.address(b))
        cb.execute_command("CRDT.PEER", "REMOVE", self.address(a))
        wait_until(lambda: connected_peers(a) == 1 and connected_peers(b) == 1,
                   what="a and b to keep only their links to c")
        os.kill(c.proc.pid, signal.SIGSTOP)  # c relays nothing written from here on
        try:
            writes(ca, cb)
            ca.execute_command("CRDT.PEER", "ADD", self.address(b))
            cb.execute_command("CRDT.PEER", "ADD", self.address(a))
        finally:
            os.kill(c.proc.pid, signal.SIGCONT)
        wait_converged(self.regions)

    def later_than(self, moment):
        """Polls (bounded) until the wall clock is 5 ms past `moment`: a write made after this
        has a greater HLC than one made at `moment` in another region that it has not heard of."""
        wait_until(lambda: time.time() > moment + 0.005, timeout=1.0, what="the clock to move")

    def test_concurrent_setbits_in_different_chunks_all_survive(self):
        rng = random.Random(SEED)
        a = self.regions[0].client()
        a.set("bm", b"\x00" * 4096)
        wait_converged(self.regions)
        # a writes chunks 0, 2, ..., 10 (and 13-14), b chunks 3, 5, ..., 11 (and 1): never one
        # chunk from both.
        bits_a = [2 * rng.randrange(6) * CHUNK_BITS + rng.randrange(CHUNK_BITS) for _ in range(5)]
        bits_b = [(2 * rng.randrange(1, 6) + 1) * CHUNK_BITS + rng.randrange(CHUNK_BITS)
                  for _ in range(5)]
        grow_a, grow_b = 8 * 6000 + 1, 8 * 9000 + 2  # past the end, concurrently: the longer

        def writes(ca, cb):
            for bit in bits_a + [grow_a]:
                ca.setbit("bm", bit, 1)
            for bit in bits_b + [grow_b]:
                cb.setbit("bm", bit, 1)
            cb.execute_command("BITFIELD", "bm", "SET", "u8", 8 * 300, 77)  # chunk 1
            ca.setrange("bm", 256 * 14 - 2, b"edge")  # chunks 13 and 14

        self.partitioned(writes)
        values = [s.client().get("bm") for s in self.regions]
        self.assertEqual(values[0], values[1], f"seed={SEED}")
        self.assertEqual(values[0], values[2], f"seed={SEED}")
        value = values[0]
        self.assertEqual(len(value), 9001, f"seed={SEED}")
        for bit in bits_a + bits_b + [grow_a, grow_b]:
            self.assertTrue(bit_of(value, bit), f"seed={SEED}: bit {bit} lost")
        self.assertEqual(value[300], 77, f"seed={SEED}")
        self.assertEqual(value[256 * 14 - 2:256 * 14 + 2], b"edge", f"seed={SEED}")
        expected_count = len(set(bits_a + bits_b + [grow_a, grow_b])) + bin(77).count("1")
        expected_count += sum(bin(byte).count("1") for byte in b"edge")
        self.assertEqual(self.regions[2].client().bitcount("bm"), expected_count, f"seed={SEED}")
        # DUMP/RESTORE gives the composed string.
        payload = self.regions[1].client().dump("bm")
        self.regions[2].client().restore("bm:copy", 0, payload)
        self.assertEqual(self.regions[2].client().get("bm:copy"), value)

    def test_set_concurrent_with_setbit_the_later_wins_per_chunk(self):
        a = self.regions[0].client()
        a.set("later-bit", b"x" * 600)
        a.set("later-set", b"x" * 600)
        a.set("del", b"x" * 700)
        wait_converged(self.regions)

        def writes(ca, cb):
            ca.set("later-bit", "hello")
            self.later_than(time.time())
            cb.setbit("later-bit", 8 * 512, 1)  # chunk 2, after the SET
            cb.setbit("later-set", 8 * 512, 1)
            self.later_than(time.time())
            ca.set("later-set", "hello")
            ca.delete("del")
            cb.setbit("del", 8 * 520, 1)

        self.partitioned(writes)
        for server in self.regions:
            c = server.client()
            self.assertEqual(c.get("later-bit"), b"hello" + b"\x00" * 507 + bytes([ord("x") | 0x80])
                             + b"x" * 87)
            self.assertEqual(c.get("later-set"), b"hello")
            self.assertEqual(c.get("del"), b"\x00" * 512 + b"x" * 8 + bytes([ord("x") | 0x80])
                             + b"x" * 179)

    def test_concurrent_wrap_incrbys_of_one_field_all_count(self):
        rng = random.Random(SEED + 1)
        a = self.regions[0].client()
        a.set("ctr", b"\x00" * 300)
        a.execute_command("BITFIELD", "ctr", "SET", "u8", 0, 250)
        wait_converged(self.regions)
        by_a = [rng.randrange(-300, 300) for _ in range(3)]
        by_b = [rng.randrange(-300, 300) for _ in range(3)]
        # The replies are what one region sees: its own increments over the shared 250.
        replies = {}

        def writes(ca, cb):
            for by in by_a:
                replies["a"] = ca.execute_command("BITFIELD", "ctr", "OVERFLOW", "WRAP", "INCRBY",
                                                  "u8", 0, by, "INCRBY", "i16", "#10", by)
            for by in by_b:
                replies["b"] = cb.execute_command("BITFIELD", "ctr", "INCRBY", "u8", 0, by,
                                                  "INCRBY", "i16", "#10", by)
            cb.setbit("ctr", 8 * 100 + 3, 1)  # the same chunk: the counters count over it
            cb.execute_command("BITFIELD", "ctr", "INCRBY", "u16", 8 * 290, 7)  # another chunk
            ca.execute_command("BITFIELD", "ctr", "OVERFLOW", "SAT", "INCRBY", "u8", 8 * 290, 1)

        self.partitioned(writes)
        self.assertEqual(replies["a"], [(250 + sum(by_a)) % 256, sum(by_a)], f"seed={SEED}")
        self.assertEqual(replies["b"][0], (250 + sum(by_b)) % 256, f"seed={SEED}")
        total = sum(by_a) + sum(by_b)
        signed = (total + (1 << 15)) % (1 << 16) - (1 << 15)
        for server in self.regions:
            c = server.client()
            got = c.execute_command("BITFIELD_RO", "ctr", "GET", "u8", 0, "GET", "i16", "#10")
            self.assertEqual(got, [(250 + total) % 256, signed], f"seed={SEED}")
            self.assertTrue(bit_of(c.get("ctr"), 8 * 100 + 3), f"seed={SEED}")
            self.assertEqual(len(c.get("ctr")), 300, f"seed={SEED}")
        # a's SAT increment is a chunk write of chunk 1 (LWW per chunk); b's WRAP counter there,
        # which a had not seen, adds over it: u16 0x0100 + 7.
        values = [s.client().get("ctr") for s in self.regions]
        self.assertEqual(values[0], values[1], f"seed={SEED}")
        self.assertEqual(values[0], values[2], f"seed={SEED}")
        self.assertEqual(values[0][290:292], b"\x01\x07", f"seed={SEED}")


if __name__ == "__main__":
    unittest.main()
