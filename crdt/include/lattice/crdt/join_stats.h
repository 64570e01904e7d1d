#pragma once
// JoinStats: counters of the work done by Key::JoinDelta, the O(delta) join of an op or a write
// step into a key (see docs/crdt.md, "Applying a delta in O(delta)"). Tests read them to prove
// that a write costs O(delta), not O(collection): they count collection elements joined or
// scanned, never time. `force_full` makes JoinDelta take the full Join, so a test can compare
// both paths on the same history. Thread-local: each thread that joins (the keyspace thread, a
// test) sees its own counters. Plain counters: no clock, no I/O.

#include <cstdint>

namespace lattice::crdt {

struct JoinStats {
  uint64_t delta_joins = 0;  // JoinDelta calls that joined only the touched elements
  uint64_t full_joins = 0;   // JoinDelta calls that fell back to the full Join
  uint64_t scans = 0;        // delta joins that scanned the key for the holder of a dot
  uint64_t elements = 0;     // collection elements joined, on either path
  uint64_t scanned = 0;      // collection elements visited by those scans
  bool force_full = false;   // tests: always take the full Join
};

inline JoinStats& ThreadJoinStats() {
  thread_local JoinStats stats;
  return stats;
}

// Counts the elements one scan visits, and adds them to `scanned` once, when the scan ends.
struct ScannedCount {
  uint64_t count = 0;
  ScannedCount() = default;
  ScannedCount(const ScannedCount&) = delete;
  ScannedCount& operator=(const ScannedCount&) = delete;
  ~ScannedCount() { ThreadJoinStats().scanned += count; }
};

}  // namespace lattice::crdt
