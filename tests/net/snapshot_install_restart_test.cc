// A kill -9 right after a snapshot install (docs/replication.md, "Snapshots"): the install is
// durable with the op log write of its turn (each joined key and the cut's context are logged as
// state records), not only once a checkpoint has been written. A node with memory storage under
// appendfsync always installs a peer's snapshot, the machine crashes (every unsynced byte is
// lost) before any checkpoint, and the node restarted from the same storage holds the snapshot's
// keys, what its cut removed stays removed, and its applied vector covers the cut.

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

TEST_CASE("snapshot: an install survives a crash right after it, before any checkpoint",
          "[snapshot][durability]") {
  Restartable t;
  // The far region's state: two keys, and a third it set and deleted after this node saw it.
  Keyspace far(kFar, 16);
  OpCollector far_ops;
  far.AddObserver(&far_ops);
  far.SetString(0, "gone", "old", /*keep_ttl=*/false, t.now());
  {
    auto& [db, name, op] = far_ops.ops.back();
    repl::OpBatch batch;
    batch.sender = kFar;
    batch.ops.push_back(
        repl::OpRecord{.db = static_cast<uint32_t>(db), .key = name, .op = op, .deps = {}});
    t.replication().OnMessage(kFar, batch, t.now());
    REQUIRE(t.node().EndOfBatch());
  }
  REQUIRE(t.Get("gone") == "old");
  for (int i = 0; i < 50; ++i) {
    far.SetString(0, "k" + std::to_string(i), "v" + std::to_string(i), false, t.now());
  }
  REQUIRE(far.Delete(0, "gone", t.now()));
  t.keyspace().SetString(0, "mine", "here", false, t.now());
  REQUIRE(t.node().EndOfBatch());

  repl::SnapshotChunk chunk;
  chunk.snapshot_id = uint64_t{7} << repl::kSnapshotChunkBits;
  far.ForEach(0, [&](const std::string& name, const crdt::Key& state) {
    chunk.keys.push_back(repl::SnapshotKey{0, name, state});
  });
  chunk.context = far.context();
  chunk.last = true;
  t.replication().OnMessage(kFar, chunk, t.now());
  REQUIRE(t.node().EndOfBatch());
  REQUIRE(t.Get("k49") == "v49");
  REQUIRE(t.Get("gone") == "(nil)");
  const crdt::VersionVector cut = far.context().vector();
  REQUIRE(t.replication().replicator().applied().Get(kFar) == cut.Get(kFar));
  REQUIRE(t.replication().stats().snapshots_written == 0);  // no checkpoint: the log holds it

  t.CrashAndRestart();
  CHECK(t.replication().stats().snapshots_written == 0);
  for (int i = 0; i < 50; ++i) {
    CHECK(t.Get("k" + std::to_string(i)) == "v" + std::to_string(i));
  }
  CHECK(t.Get("gone") == "(nil)");
  CHECK(t.Get("mine") == "here");
  CHECK(t.replication().replicator().applied().Get(kFar) == cut.Get(kFar));
  CHECK(t.keyspace().context().vector().Get(kFar) == cut.Get(kFar));
}

}  // namespace
}  // namespace lattice::server::testing
