// Checkpoints written by a child process (docs/durability.md, "Checkpoints in a child process"),
// driven deterministically: a node on MemoryStorage whose children run in this process
// (InlineChildProcesses: the work runs at Start, on the state of that moment, as a fork's child
// would see it) or die without a result. The log is truncated only after the child succeeded,
// ops applied while it runs survive a crash, a failed child changes nothing and is reported, one
// child runs at a time, and a synchronous checkpoint ends a running child first. Also here, on
// the same node: a region's reincarnation (CLUSTER RESET), which ends with a checkpoint.

#include <algorithm>
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "lattice/repl/memory_storage.h"
#include "node/node.h"
#include "server/server_test_util.h"
#include "store/child_process.h"
#include "store/replication.h"

namespace lattice::server::testing {
namespace {

constexpr ReplicaId kHere = 1;

class DropTransport final : public repl::Transport {
 public:
  void Send(ReplicaId, const repl::Message&) override {}
  void Close(ReplicaId) override {}
};

// Children that die (as one killed with SIGKILL) without writing anything.
class DyingChildProcesses final : public ChildProcesses {
 public:
  Result<int64_t> Start(Work) override { return ++forks_; }
  std::optional<Result<std::string>> Poll(int64_t) override {
    return Result<std::string>(Unexpected(ErrorCode::kIo, "the child was killed by signal 9"));
  }
  void Kill(int64_t) override {}
};

class CheckpointNode {
 public:
  explicit CheckpointNode(ChildProcesses* children) : children_(children) { Open(); }

  void Open() {
    node_.reset();
    Config config;
    REQUIRE(
        config.LoadText("shard-id s\nregion here\nappendfsync always\nsave \"\"\n", "test").ok());
    Result<std::unique_ptr<Node>> opened =
        Node::Open(NodeOptions{.config = std::move(config), .replica = kHere, .rng_seed = 1},
                   NodeSeams{.clock = clock_,
                             .storage = &storage_,
                             .transport = &transport_,
                             .children = children_});
    REQUIRE(opened.ok());
    node_ = std::move(*opened);
  }
  // kill -9 and a restart: what was synced comes back.
  void CrashAndRestart() {
    node_.reset();
    storage_.Crash();
    Open();
  }

  void Set(const std::string& prefix, int count) {
    for (int i = 0; i < count; ++i) {
      keyspace().SetString(0, prefix + std::to_string(i), "v", /*keep_ttl=*/false, now_ms());
    }
    REQUIRE(node_->EndOfBatch());
  }
  void Tick() {
    clock_.now_us += 100'000;
    replication().Tick(now_ms());
    node_->server().persistence().Cron(now_ms());
  }
  int64_t now_ms() const { return clock_.NowMs(); }
  Replication& replication() { return *node_->replication(); }
  Persistence& persistence() { return node_->server().persistence(); }
  Keyspace& keyspace() { return node_->server().keyspace(); }
  repl::MemoryStorage& storage() { return storage_; }
  bool HasSnapshot() { return storage_.ReadAll("snapshot").ok(); }
  size_t Segments() {
    const std::vector<std::string> names = storage_.List().value();
    return static_cast<size_t>(std::count_if(
        names.begin(), names.end(), [](const std::string& n) { return n.starts_with("oplog-"); }));
  }

 private:
  FakeClock clock_;
  repl::MemoryStorage storage_;
  DropTransport transport_;
  ChildProcesses* children_;
  std::unique_ptr<Node> node_;
};

TEST_CASE("background checkpoint: the state at the start, the log cut once the child ended",
          "[persistence]") {
  InlineChildProcesses children;
  children.set_hold(true);
  CheckpointNode t(&children);
  t.Set("before", 100);
  REQUIRE(t.replication().CheckpointInBackground(t.now_ms()).ok());
  CHECK(t.replication().checkpoint_in_progress());
  CHECK(t.replication().CheckpointInBackground(t.now_ms()).error().message ==
        "a background checkpoint is already running");
  t.Set("after", 50);  // applied while the child writes
  t.Tick();
  CHECK(t.replication().checkpoint_in_progress());
  CHECK(t.replication().stats().snapshots_written == 0);
  children.set_hold(false);
  t.Tick();
  CHECK_FALSE(t.replication().checkpoint_in_progress());
  CHECK(t.replication().stats().snapshots_written == 1);
  CHECK(t.replication().stats().last_checkpoint_ok);
  CHECK(t.replication().stats().log_bytes_since_snapshot > 0);  // the 50 after the fork
  t.CrashAndRestart();
  CHECK(t.keyspace().Size(0) == 150);
  CHECK(t.replication().stats().recovered_keys == 100);    // from the snapshot
  CHECK(t.replication().stats().recovered_records == 50);  // replayed after it
}

TEST_CASE("background checkpoint: a child that dies leaves the log whole and reports err",
          "[persistence]") {
  DyingChildProcesses children;
  CheckpointNode t(&children);
  t.Set("k", 200);
  const size_t segments = t.Segments();
  REQUIRE(t.persistence().BackgroundSave(/*schedule=*/false) == Persistence::Start::kStarted);
  t.Tick();  // starts the child
  t.Tick();  // reaps it
  t.Tick();  // Persistence sees it ended
  CHECK_FALSE(t.persistence().bgsave_in_progress());
  CHECK_FALSE(t.persistence().last_bgsave_ok());
  CHECK_FALSE(t.replication().stats().last_checkpoint_ok);
  CHECK(t.replication().stats().snapshots_written == 0);
  CHECK_FALSE(t.HasSnapshot());
  CHECK(t.Segments() == segments);
  t.CrashAndRestart();
  CHECK(t.keyspace().Size(0) == 200);
}

TEST_CASE("background checkpoint: one child at a time; BGSAVE SCHEDULE waits for it",
          "[persistence]") {
  InlineChildProcesses children;
  children.set_hold(true);
  CheckpointNode t(&children);
  t.Set("k", 10);
  REQUIRE(t.persistence().BackgroundRewrite() == Persistence::Start::kStarted);
  t.Tick();
  REQUIRE(t.replication().checkpoint_in_progress());
  CHECK(t.persistence().rewrite_in_progress());
  CHECK(t.persistence().BackgroundRewrite() == Persistence::Start::kAlreadyInProgress);
  CHECK(t.persistence().BackgroundSave(/*schedule=*/false) == Persistence::Start::kBusy);
  CHECK(t.persistence().BackgroundSave(/*schedule=*/true) == Persistence::Start::kScheduled);
  CHECK(children.forks() == 1);
  children.set_hold(false);
  t.Tick();  // the rewrite ends; the scheduled save starts (and, inline, ends at the next)
  t.Tick();
  t.Tick();
  CHECK(children.forks() == 2);
  CHECK(t.persistence().rewrites() == 1);
  CHECK(t.persistence().last_bgsave_ok());
  CHECK_FALSE(t.persistence().bgsave_in_progress());
  CHECK(t.replication().stats().snapshots_written == 2);
}

TEST_CASE("background checkpoint: SAVE and other synchronous checkpoints end a running child",
          "[persistence]") {
  InlineChildProcesses children;
  children.set_hold(true);
  CheckpointNode t(&children);
  t.Set("k", 10);
  REQUIRE(t.replication().CheckpointInBackground(t.now_ms()).ok());
  t.Set("more", 10);
  REQUIRE(t.replication().Checkpoint(t.now_ms()).ok());
  CHECK_FALSE(t.replication().checkpoint_in_progress());
  CHECK(t.replication().stats().checkpoints_ended == 1);
  CHECK(t.replication().stats().snapshots_written == 1);
  t.CrashAndRestart();
  CHECK(t.keyspace().Size(0) == 20);
  CHECK(t.replication().stats().recovered_records == 0);  // all in the sync snapshot
}

TEST_CASE("background checkpoint: without child processes BGSAVE writes at the next cron",
          "[persistence]") {
  CheckpointNode t(nullptr);
  t.Set("k", 10);
  REQUIRE(t.persistence().BackgroundSave(/*schedule=*/false) == Persistence::Start::kStarted);
  t.Tick();
  CHECK_FALSE(t.persistence().bgsave_in_progress());
  CHECK(t.persistence().last_bgsave_ok());
  CHECK(t.replication().stats().snapshots_written == 1);
  CHECK(t.persistence().changes_since_last_save() == 0);
}

// CLUSTER RESET of a region (docs/cluster.md): the node forgets its keys, its causal context,
// its peers and its op log, and becomes a new replica; a crash after it finds exactly that.
TEST_CASE("reincarnate: a region forgets its data and peers and takes a fresh replica id",
          "[persistence][cluster]") {
  constexpr ReplicaId kFirst = 0x11, kPeer = 0x22, kFresh = 0x33;
  FakeClock clock;
  repl::MemoryStorage storage;
  DropTransport transport;
  auto open = [&] {
    Config config;
    REQUIRE(
        config.LoadText("shard-id s\nregion here\nappendfsync always\nsave \"\"\n", "test").ok());
    Result<std::unique_ptr<Node>> opened = Node::Open(
        NodeOptions{.config = std::move(config), .fresh_replica_id = kFirst, .rng_seed = 1},
        NodeSeams{.clock = clock, .storage = &storage, .transport = &transport});
    REQUIRE(opened.ok());
    return std::move(*opened);
  };
  std::unique_ptr<Node> node = open();
  REQUIRE(node->replica() == kFirst);
  const int64_t now = clock.NowMs();
  for (int i = 0; i < 10; ++i) {
    node->keyspace().SetString(0, "k" + std::to_string(i), "v", /*keep_ttl=*/false, now);
  }
  node->replication()->OnConnected(kPeer, now);  // a known peer, kept in the peers file
  REQUIRE(node->EndOfBatch());

  node->replication()->BeginGroup();  // as CLUSTER RESET runs, inside its command's group
  REQUIRE(node->replication()->Reincarnate(kFresh, now).ok());
  node->replication()->EndGroup();  // closes the group on the new engine
  CHECK(node->replica() == kFresh);
  CHECK(node->keyspace().Size(0) == 0);
  CHECK(node->keyspace().context().vector().entries().empty());
  CHECK(node->replication()->Status(now).peers.empty());
  CHECK(node->replication()->LinkHello().replica == kFresh);
  node->keyspace().SetString(0, "after", "v", /*keep_ttl=*/false, now);  // the new id's first dot
  CHECK(node->keyspace().context().vector().Get(kFresh) == 1);
  REQUIRE(node->EndOfBatch());

  node.reset();
  storage.Crash();
  node = open();
  CHECK(node->replica() == kFresh);
  CHECK(node->keyspace().Size(0) == 1);
  CHECK(node->keyspace().context().vector().Get(kFirst) == 0);
  CHECK(node->replication()->Status(now).peers.empty());
}

}  // namespace
}  // namespace lattice::server::testing
