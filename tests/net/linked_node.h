#pragma once
// The node-level tests' harness: one Node over memory storage and a transport that drops what
// it sends, with the region kFar linked to it (connected, its Hello received), so a test feeds
// kFar's messages straight to the node's Replication.

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <utility>

#include "../server/server_test_util.h"
#include "lattice/repl/memory_storage.h"
#include "node/node.h"
#include "store/replication.h"

namespace lattice::server::testing {

inline constexpr ReplicaId kHere = 1;
inline constexpr ReplicaId kFar = 2;

class DropTransport final : public repl::Transport {
 public:
  void Send(ReplicaId, const repl::Message&) override {}
  void Close(ReplicaId) override {}
};

// Opens replica kHere of shard "s" in region "here" with `config_text` added, and links kFar.
inline std::unique_ptr<Node> OpenLinkedNode(const std::string& config_text, FakeClock& clock,
                                            repl::Storage& storage, repl::Transport& transport) {
  Config config;
  REQUIRE(config.LoadText("shard-id s\nregion here\n" + config_text, "test").ok());
  Result<std::unique_ptr<Node>> opened =
      Node::Open(NodeOptions{.config = std::move(config), .replica = kHere, .rng_seed = 1},
                 NodeSeams{.clock = clock, .storage = &storage, .transport = &transport});
  REQUIRE(opened.ok());
  std::unique_ptr<Node> node = std::move(*opened);
  repl::Hello hello;
  hello.shard_id = "s";
  hello.replica = kFar;
  hello.region = "far";
  node->replication()->OnConnected(kFar, clock.NowMs());
  node->replication()->OnMessage(kFar, hello, clock.NowMs());
  return node;
}

}  // namespace lattice::server::testing
