// Snapshot installs on one node (docs/replication.md, "Snapshots", "Installing in slices"):
// - A kill -9 right after an install: the install is durable with the op log writes of its turns
//   (its keys and its beginning are logged as install records), not only once a checkpoint has
//   been written. A node with memory storage under appendfsync always installs a peer's
//   snapshot, the machine crashes (every unsynced byte is lost) before any checkpoint, and the
//   node restarted from the same storage holds the snapshot's keys, what its cut removed stays
//   removed, and its applied vector covers the cut.
// - An install in slices serves reads and writes between its steps with the joined answers, and
//   raises the applied vector only at its end.
// - A crash in the middle: before the beginning is logged the node recovers the state before the
//   install; after it, the whole install (and the writes made meanwhile).

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "linked_node.h"
#include "store/keyspace.h"
#include "store/replication.h"

namespace lattice::server::testing {
namespace {

class Restartable {
 public:
  Restartable() { Open(); }

  void Open() {
    node_.reset();
    node_ = OpenLinkedNode("appendfsync always\n", clock_, storage_, transport_);
  }

  // kill -9 and a power cut: what was not synced is lost.
  void CrashAndRestart() {
    node_.reset();
    storage_.Crash();
    Open();
  }

  int64_t now() const { return clock_.NowMs(); }
  // Ends turns until the install in progress is done; returns how many it took.
  int FinishInstall() {
    int turns = 0;
    while (replication().replicator().installing()) {
      REQUIRE(turns < 100'000);
      REQUIRE(node().EndOfBatch());
      ++turns;
    }
    return turns;
  }
  Node& node() { return *node_; }
  Replication& replication() { return *node_->replication(); }
  Keyspace& keyspace() { return node_->server().keyspace(); }
  std::string Get(const std::string& key) {
    const KeyRef found = keyspace().Find(0, key, now());
    return found ? ReadVisible(found, now()).string : std::string("(nil)");
  }

 private:
  FakeClock clock_;
  repl::MemoryStorage storage_;
  DropTransport transport_;
  std::unique_ptr<Node> node_;
};

// The far region's snapshot, `keys_per_chunk` keys a chunk, numbered `number`.
std::vector<repl::SnapshotChunk> SnapshotOf(Keyspace& far, size_t keys_per_chunk, uint64_t number) {
  std::vector<repl::SnapshotChunk> chunks(1);
  for (int db = 0; db < far.all_databases(); ++db) {
    far.ForEach(db, [&](const std::string& name, const crdt::Key& state) {
      if (chunks.back().keys.size() == keys_per_chunk) chunks.emplace_back();
      chunks.back().keys.push_back(repl::SnapshotKey{static_cast<uint32_t>(db), name, state});
    });
  }
  for (size_t i = 0; i < chunks.size(); ++i) {
    chunks[i].snapshot_id = (number << repl::kSnapshotChunkBits) | i;
  }
  chunks.back().context = far.context();
  chunks.back().last = true;
  return chunks;
}

// Far's state: 200 strings and a set, and "gone", which this node applied and far deleted since.
struct FarState {
  explicit FarState(Restartable& t) : far(kFar, 16) {
    far.AddObserver(&ops);
    far.SetString(0, "gone", "old", /*keep_ttl=*/false, t.now());
    auto& [db, name, op] = ops.ops.back();
    repl::OpBatch batch;
    batch.sender = kFar;
    batch.ops.push_back(
        repl::OpRecord{.db = static_cast<uint32_t>(db), .key = name, .op = op, .deps = {}});
    t.replication().OnMessage(kFar, batch, t.now());
    REQUIRE(t.node().EndOfBatch());
    REQUIRE(t.Get("gone") == "old");
    for (int i = 0; i < 200; ++i) {
      far.SetString(0, "k" + std::to_string(i), "v" + std::to_string(i), false, t.now());
    }
    REQUIRE(far.SAdd(0, "set", {"a", "b"}, t.now()).ok());
    REQUIRE(far.Delete(0, "gone", t.now()));
  }
  // Sends the snapshot in chunks of 16 keys to a node that installs 3 keys a step.
  void SendSliced(Restartable& t) {
    t.replication().set_install_keys_per_step(3);
    for (const repl::SnapshotChunk& chunk : SnapshotOf(far, 16, 9)) {
      t.replication().OnMessage(kFar, chunk, t.now());
    }
  }
  uint64_t cut() const { return far.context().vector().Get(kFar); }
  // Whether `t` holds far's strings k0 .. k<count - 1> as far wrote them.
  static bool HasStrings(Restartable& t, int count) {
    for (int i = 0; i < count; ++i) {
      if (t.Get("k" + std::to_string(i)) != "v" + std::to_string(i)) return false;
    }
    return true;
  }
  Keyspace far;
  OpCollector ops;
};

std::vector<std::string> Members(Keyspace& keyspace, const std::string& key, int64_t now_ms) {
  const KeyRef found = keyspace.Find(0, key, now_ms);
  return found ? ReadVisible(found, now_ms).set : std::vector<std::string>{};
}

TEST_CASE("snapshot: an install survives a crash right after it, before any checkpoint",
          "[snapshot][durability]") {
  Restartable t;
  FarState far(t);
  t.keyspace().SetString(0, "mine", "here", false, t.now());
  REQUIRE(t.node().EndOfBatch());
  for (const repl::SnapshotChunk& chunk : SnapshotOf(far.far, 1024, 7)) {
    t.replication().OnMessage(kFar, chunk, t.now());
  }
  REQUIRE(t.node().EndOfBatch());
  t.FinishInstall();
  REQUIRE(t.Get("k199") == "v199");
  REQUIRE(t.Get("gone") == "(nil)");
  const crdt::VersionVector cut = far.far.context().vector();
  REQUIRE(t.replication().replicator().applied().Get(kFar) == cut.Get(kFar));
  REQUIRE(t.replication().stats().snapshots_written == 0);  // no checkpoint: the log holds it

  t.CrashAndRestart();
  CHECK(t.replication().stats().snapshots_written == 0);
  CHECK(FarState::HasStrings(t, 200));
  CHECK(t.Get("gone") == "(nil)");
  CHECK(t.Get("mine") == "here");
  CHECK(t.replication().replicator().applied().Get(kFar) == cut.Get(kFar));
  CHECK(t.keyspace().context().vector().Get(kFar) == cut.Get(kFar));
}

TEST_CASE("snapshot: an install in slices serves reads and writes between its steps",
          "[snapshot][sliced]") {
  Restartable t;
  FarState far(t);
  const uint64_t cut = far.cut();
  far.SendSliced(t);
  // Past the logging of the keys (67 steps of 3) and the beginning: joining.
  for (int turn = 0; turn < 70; ++turn) REQUIRE(t.node().EndOfBatch());
  REQUIRE(t.replication().replicator().installing());
  // Between steps: every read and write meets the joined key, never the one from before.
  CHECK(t.replication().replicator().applied().Get(kFar) < cut);
  CHECK(t.Get("k150") == "v150");
  CHECK(t.Get("gone") == "(nil)");
  REQUIRE(t.keyspace().SAdd(0, "set", {"c"}, t.now()).ok());
  CHECK(Members(t.keyspace(), "set", t.now()) == std::vector<std::string>{"a", "b", "c"});
  t.keyspace().SetString(0, "k199", "mine", false, t.now());
  REQUIRE(t.node().EndOfBatch());
  CHECK(t.replication().replicator().installing());
  CHECK(t.replication().replicator().applied().Get(kFar) < cut);
  const int turns = t.FinishInstall();
  CHECK(turns > 10);  // in slices: 200 keys at 3 a step
  CHECK(t.replication().replicator().applied().Get(kFar) == cut);
  CHECK(FarState::HasStrings(t, 199));
  CHECK(t.Get("k199") == "mine");
  CHECK(t.Get("gone") == "(nil)");
  CHECK(Members(t.keyspace(), "set", t.now()) == std::vector<std::string>{"a", "b", "c"});
  CHECK(t.keyspace().Size(0) == 201);
}

TEST_CASE("snapshot: a crash before an install began recovers the state before it",
          "[snapshot][sliced][durability]") {
  Restartable t;
  FarState far(t);
  const uint64_t before = t.replication().replicator().applied().Get(kFar);
  far.SendSliced(t);
  for (int turn = 0; turn < 5; ++turn) REQUIRE(t.node().EndOfBatch());  // still logging keys
  t.keyspace().SetString(0, "mine", "here", false, t.now());
  REQUIRE(t.node().EndOfBatch());
  t.CrashAndRestart();
  CHECK(t.Get("gone") == "old");
  CHECK(t.Get("k0") == "(nil)");
  CHECK(t.Get("mine") == "here");
  CHECK(t.replication().replicator().applied().Get(kFar) == before);
}

TEST_CASE("snapshot: a crash in the middle of joining recovers the whole install",
          "[snapshot][sliced][durability]") {
  Restartable t;
  FarState far(t);
  const uint64_t cut = far.cut();
  far.SendSliced(t);
  // Past the logging (67 steps of 3 keys) and the beginning, some slots joined.
  for (int turn = 0; turn < 75; ++turn) REQUIRE(t.node().EndOfBatch());
  REQUIRE(t.replication().replicator().installing());
  REQUIRE(t.keyspace().SAdd(0, "set", {"c"}, t.now()).ok());
  REQUIRE(t.node().EndOfBatch());
  t.CrashAndRestart();
  CHECK_FALSE(t.replication().replicator().installing());
  CHECK(FarState::HasStrings(t, 200));
  CHECK(t.Get("gone") == "(nil)");
  CHECK(Members(t.keyspace(), "set", t.now()) == std::vector<std::string>{"a", "b", "c"});
  CHECK(t.replication().replicator().applied().Get(kFar) == cut);
  CHECK(t.keyspace().context().vector().Get(kFar) == cut);
}

}  // namespace
}  // namespace lattice::server::testing
