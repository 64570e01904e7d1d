#pragma once
// TestServer runs commands through a real Node (src/node/node.h) without a socket or storage:
// each Run() executes one command for a client and decodes its reply, so tests read like
//   CHECK(t.Run({"PING"}) == "PONG");
// Time comes from a FakeClock that tests move by hand. The node has no Replication (no storage);
// it has a Cluster when the config enables cluster mode, its messages on the bus given.

#include <catch2/catch.hpp>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "node/node.h"
#include "resp/reply_decoder.h"
#include "server/server.h"

namespace lattice::server::testing {

class FakeClock final : public Clock {
 public:
  int64_t NowMs() const override { return now_us / 1000; }
  int64_t NowUs() const override { return now_us; }
  int64_t MonotonicUs() const override { return now_us; }
  int64_t now_us = 1'700'000'000'000'000;
};

// Collects the ops a replica originates so a test can deliver them to another replica: the
// network of a two-region test, without sockets.
class OpCollector final : public KeyspaceObserver {
 public:
  void OnLocalOp(int db, std::string_view key, const crdt::KeyOp& op) override {
    ops.emplace_back(db, std::string(key), op);
  }
  void DeliverTo(Keyspace& other) {
    for (const auto& [db, key, op] : ops) {
      other.ApplyRemote(db, key, op);
    }
    ops.clear();
  }
  std::vector<std::tuple<int, std::string, crdt::KeyOp>> ops;
};

class TestServer {
 public:
  // `replica` is the replica id: two TestServers with different ids are two regions. In cluster
  // mode, `node_id` names the node and `bus` carries its messages.
  explicit TestServer(Config config = Config(), ReplicaId replica = 1, std::string node_id = "",
                      ClusterBus* bus = nullptr) {
    Result<std::unique_ptr<Node>> node = Node::Open(NodeOptions{.config = std::move(config),
                                                                .replica = replica,
                                                                .fresh_node_id = std::move(node_id),
                                                                .persist_cluster_config = false},
                                                    NodeSeams{.clock = clock_, .bus = bus});
    REQUIRE(node.ok());
    node_ = std::move(*node);
    AddClient();
  }

  // Adds another client (index returned); client 0 exists from the start.
  size_t AddClient() {
    auto client = std::make_unique<ClientState>();
    client->id = server().NextClientId();
    client->addr = "127.0.0.1:" + std::to_string(40000 + client->id);
    client->laddr = "127.0.0.1:6379";
    client->authenticated = !server().auth_required();
    client->created_ms = client->last_interaction_ms = clock_.NowMs();
    server().RegisterClient(client.get());
    clients_.push_back(std::move(client));
    return clients_.size() - 1;
  }

  // Runs one command as client `index` and returns the decoded reply rendered by
  // RespValue::ToString ("OK", "(error) ERR ...", "\"bulk\"", "[a, b]", ...).
  std::string Run(std::vector<std::string> args, size_t index = 0) {
    return RunValue(std::move(args), index).ToString();
  }

  RespValue RunValue(std::vector<std::string> args, size_t index = 0) {
    std::vector<std::string_view> views(args.begin(), args.end());
    std::string out;
    ReplyBuilder reply(&out);
    ClientState& client = *clients_[index];
    reply.set_protocol(client.protocol);
    server().Execute(client, views, reply);
    Result<RespValue> decoded = DecodeReply(out);
    REQUIRE(decoded.ok());  // the server wrote a reply that decodes
    return std::move(decoded).value();
  }

  Server& server() { return node_->server(); }
  Node& node() { return *node_; }
  ClientState& client(size_t index = 0) { return *clients_[index]; }
  FakeClock& clock() { return clock_; }

 private:
  FakeClock clock_;
  std::unique_ptr<Node> node_;
  std::vector<std::unique_ptr<ClientState>> clients_;
};

// One region of a multi-region test: a TestServer with its own replica id whose local ops are
// collected in `sink`, to be delivered to other regions with sink.DeliverTo(other.keyspace()).
class Region : public TestServer {
 public:
  explicit Region(ReplicaId replica) : TestServer(Config(), replica) {
    server().keyspace().AddObserver(&sink);
  }
  Keyspace& keyspace() { return server().keyspace(); }

  OpCollector sink;
};

}  // namespace lattice::server::testing
