#pragma once
// FuzzNode is one Lattice node without sockets, as the simulator runs it: a server::Node (the
// Server and its Replication) over a Storage the fuzz target owns, a fake clock, and a transport
// that drops what would be sent (or one the caller passes). It lets a target feed a peer's
// messages or a damaged data dir to the very code the server runs, then check the state by
// running commands (DEBUG DIGEST) or by restarting a second node on the same storage.
// Not thread-safe; the storage must outlive the node.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lattice/common/assert.h"
#include "lattice/repl/storage.h"
#include "node/node.h"
#include "resp/reply_builder.h"
#include "server/client_state.h"
#include "server/server.h"
#include "spdlog/spdlog.h"
#include "store/replication.h"

namespace lattice::fuzz {

inline constexpr ReplicaId kSelf = 1;
inline constexpr ReplicaId kPeer = 2;
inline constexpr char kShard[] = "fuzz";

class FuzzClock final : public server::Clock {
 public:
  int64_t NowMs() const override { return now_us / 1000; }
  int64_t NowUs() const override { return now_us; }
  int64_t MonotonicUs() const override { return now_us; }
  int64_t now_us = 1'700'000'000'000'000;
};

// Drops what the engine sends: a target sees its effects through the node's state.
class NullTransport final : public repl::Transport {
 public:
  void Send(ReplicaId, const repl::Message&) override {}
  void Close(ReplicaId) override {}
};

// Who a FuzzNode is: kSelf by default; fuzz/make_seeds.cc runs a kPeer whose sends it records.
struct FuzzIdentity {
  ReplicaId replica = kSelf;
  const char* region = "self";
  uint64_t rng_seed = 1;
};

class FuzzNode {
 public:
  // Opens the node over `storage`: recovery runs here. ok() says whether it succeeded. What the
  // engine sends goes to `transport` (dropped without one).
  FuzzNode(repl::Storage& storage, FuzzClock& clock, FuzzIdentity identity = {},
           repl::Transport* transport = nullptr) {
    static const bool quiet = [] {
      spdlog::set_level(spdlog::level::off);  // recovery warnings would flood the fuzzer
      return true;
    }();
    (void)quiet;
    server::Config config;
    // Two databases (plus the system one): a full scan (DEBUG DIGEST, a snapshot) walks 16384
    // slots per database, which would otherwise dominate every run.
    const Result<void> loaded =
        config.LoadText(std::string("enable-debug-command yes\ndatabases 2\nshard-id ") + kShard +
                            "\nregion " + identity.region + "\n",
                        "fuzz");
    LATTICE_ASSERT_MSG(loaded.ok(), "the fuzz node's config loads");
    Result<std::unique_ptr<server::Node>> opened = server::Node::Open(
        server::NodeOptions{.config = std::move(config),
                            .replica = identity.replica,
                            .rng_seed = identity.rng_seed,
                            .on_log_failure = nullptr},
        server::NodeSeams{.clock = clock,
                          .storage = &storage,
                          .transport = transport != nullptr ? transport : &null_transport_});
    if (!opened.ok()) {
      return;
    }
    node_ = std::move(*opened);
    for (server::ClientState* client : {&admin_, &client_}) {
      client->id = server().NextClientId();
      server().RegisterClient(client);
    }
  }

  ~FuzzNode() {
    if (node_ != nullptr) {
      server().UnregisterClient(&client_);
      server().UnregisterClient(&admin_);
    }
  }

  FuzzNode(const FuzzNode&) = delete;
  FuzzNode& operator=(const FuzzNode&) = delete;

  bool ok() const { return node_ != nullptr; }
  server::Server& server() { return node_->server(); }
  server::Replication& replication() { return *node_->replication(); }
  // A local client for the fuzz input's own commands (authenticated, registered with the
  // server). Run() uses another one, so a MULTI or a SELECT of the input never affects checks.
  server::ClientState& client() { return client_; }

  // Runs one command as the harness's own authenticated local client; returns the RESP reply.
  std::string Run(const std::vector<std::string>& args) {
    std::vector<std::string_view> views(args.begin(), args.end());
    std::string out;
    server::ReplyBuilder reply(&out);
    server().Execute(admin_, views, reply);
    return out;
  }

  std::string Digest() { return Run({"DEBUG", "DIGEST"}); }

  // What the server does after each batch of commands or peer input: the log is written, then
  // the engine sends. A failed log write is fatal in the server; MemoryStorage never fails here.
  void EndOfBatch() {
    LATTICE_ASSERT_MSG(node_->EndOfBatch(), "writing the op log to memory cannot fail");
  }

 private:
  NullTransport null_transport_;
  std::unique_ptr<server::Node> node_;
  server::ClientState admin_;
  server::ClientState client_;
};

// The engine applies ops only through the keyspace, and hears of every local op: between steps
// both must agree on what is applied. While a snapshot is installed in slices the keyspace's
// context already covers the snapshot's cut, and the applied vector rises to it at the end.
inline void CheckEngineMatchesKeyspace(FuzzNode& node) {
  const repl::Replicator& replicator = node.replication().replicator();
  crdt::VersionVector applied = replicator.applied();
  applied.Join(replicator.install_cut());
  LATTICE_ASSERT_MSG(applied == node.server().keyspace().context().vector(),
                     "the engine's applied vector is not the keyspace's");
}

// Asserts that `recovered` holds what `live` holds: the same dataset (DEBUG DIGEST) and the same
// applied vector. `how` names the recovery in the failure message.
inline void CheckSameState(FuzzNode& recovered, FuzzNode& live, const char* how) {
  LATTICE_ASSERT_MSG(recovered.ok(), how);
  LATTICE_ASSERT_MSG(recovered.Digest() == live.Digest(), how);
  LATTICE_ASSERT_MSG(recovered.server().keyspace().context().vector() ==
                         live.server().keyspace().context().vector(),
                     how);
}

}  // namespace lattice::fuzz
