#pragma once
// Test support for tests/store: a KeyspaceObserver that records every local op, and a
// keyspace's db 0 as a map of expanded keys (for comparing two keyspaces' states).

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "store/keyspace.h"

namespace lattice::server::testing {

class Collector final : public KeyspaceObserver {
 public:
  void OnLocalOp(int db, std::string_view key, const crdt::KeyOp& op) override {
    ops.emplace_back(db, std::string(key), op);
  }
  std::vector<std::tuple<int, std::string, crdt::KeyOp>> ops;
};

inline std::map<std::string, crdt::Key> StateOf(const Keyspace& ks) {
  std::map<std::string, crdt::Key> out;
  ks.ForEach(0, [&](const std::string& key, const crdt::Key& value) { out.emplace(key, value); });
  return out;
}

// Two keyspaces that ran the same history (one through in-place paths, one through the generic
// mutators) emitted the same ops and hold the same state, context, next dot and size.
inline void RequireSameKeyspaces(const Keyspace& fast, const Collector& fast_ops,
                                 const Keyspace& reference, const Collector& reference_ops) {
  REQUIRE(fast_ops.ops.size() == reference_ops.ops.size());
  for (size_t i = 0; i < fast_ops.ops.size(); ++i) {
    REQUIRE(std::get<1>(fast_ops.ops[i]) == std::get<1>(reference_ops.ops[i]));
    REQUIRE(std::get<2>(fast_ops.ops[i]) == std::get<2>(reference_ops.ops[i]));
  }
  REQUIRE(StateOf(fast) == StateOf(reference));
  REQUIRE(fast.context() == reference.context());
  REQUIRE(fast.next_seq() == reference.next_seq());
  REQUIRE(fast.Size(0) == reference.Size(0));
}

}  // namespace lattice::server::testing
