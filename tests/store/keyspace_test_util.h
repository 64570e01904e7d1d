#pragma once
// Test support for tests/store: a KeyspaceObserver that records every local op, and a
// keyspace's db 0 as a map of expanded keys (for comparing two keyspaces' states).

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

}  // namespace lattice::server::testing
