#pragma once
// Test-only fault injection: known bugs that the simulator must be able to find (its mutation
// check, docs/simulation.md). Production code reads the flag at a few marked places; it is kNone
// unless the simulator (`lattice-sim --mutation NAME`) or a test sets it, and nothing else ever
// writes it. A simulator that never fails proves nothing: each mutation is a bug it must catch.
// Not thread-safe: set it once, before any work starts.

#include <string_view>

namespace lattice {

enum class Mutation {
  kNone,
  kApplyWithoutDeps,     // replication applies a peer's op without waiting for its deps
  kNonCommutativeJoin,   // Key::Join keeps its own key expiry instead of joining the other's
  kDropLastOpOnRestart,  // op log recovery forgets the last record
  kHlcNoTieBreak,        // last-writer-wins compares HLCs without the replica tie-break
  kCompactNarrowsDots,   // compaction drops dots a later write or remove must still name
  kSplitGroups,          // replication applies a group's ops as they come, not all together
};

inline Mutation g_injected_mutation = Mutation::kNone;

inline bool MutationInjected(Mutation mutation) { return g_injected_mutation == mutation; }

}  // namespace lattice
