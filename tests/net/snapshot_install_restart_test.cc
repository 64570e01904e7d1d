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
// - Every step of an install, logging and joining, is bounded by items, not keys: a key of
//   10,000 members is a step of its own, and many sets of 20 members take many steps. So is an
//   export's chunk: a slot's keys spread over as many chunks as the bound makes.

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
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
  // Every step has used its time, as under load: one slice a turn (two while time is left).
  t.replication().set_step_spent([] { return true; });
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
  t.replication().set_step_spent([] { return true; });  // one slice a turn
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

TEST_CASE("snapshot: every install step is bounded by items, a big key a step of its own",
          "[snapshot][sliced]") {
  constexpr uint64_t kBound = 1000;
  Restartable t;
  Keyspace far(kFar, 16);
  std::vector<std::string> big;
  for (int m = 0; m < 10'000; ++m) big.push_back("m" + std::to_string(m));
  REQUIRE(far.SAdd(0, "big", big, t.now()).ok());
  std::vector<std::string> small;
  for (int m = 0; m < 20; ++m) small.push_back("m" + std::to_string(m));
  for (int s = 0; s < 100; ++s) {
    REQUIRE(far.SAdd(0, "set:" + std::to_string(s), small, t.now()).ok());
  }
  // The items of the largest small key (both sides of a join count: the local copy is empty).
  uint64_t small_items = 0;
  uint64_t small_total = 0;  // the items of every key but the big one
  uint64_t big_items = 0;
  far.ForEach(0, [&](const std::string& name, const crdt::Key& state) {
    if (name == "big") {
      big_items = 1 + state.MetadataItems();
      return;
    }
    small_total += 1 + state.MetadataItems();
    small_items = std::max<uint64_t>(small_items, 1 + state.MetadataItems());
  });
  REQUIRE(small_items > 20);
  t.replication().set_slice_items(kBound);
  t.replication().set_install_keys_per_step(1000);      // items decide, not keys
  t.replication().set_step_spent([] { return true; });  // one slice a turn, each one seen
  std::vector<uint64_t> steps;
  for (const repl::SnapshotChunk& chunk : SnapshotOf(far, 16, 5)) {
    t.replication().OnMessage(kFar, chunk, t.now());
  }
  steps.push_back(t.replication().stats().last_slice_items);
  for (int turn = 0; turn < 1000 && t.replication().replicator().installing(); ++turn) {
    REQUIRE(t.node().EndOfBatch());
    steps.push_back(t.replication().stats().last_slice_items);
  }
  REQUIRE_FALSE(t.replication().replicator().installing());
  // Each step stops past the bound: at most one small key (or slot) beyond it, but for the
  // steps that took the big key, once while logging and once while joining, which hold it and
  // less than the bound besides.
  REQUIRE(big_items > 10'000);
  int big_steps = 0;
  for (uint64_t items : steps) {
    INFO("step items " << items);
    if (items >= big_items) {
      ++big_steps;
      CHECK(items < big_items + kBound);
    } else {
      CHECK(items < kBound + small_items);
    }
  }
  CHECK(big_steps == 2);
  // Logged and joined in slices: the small keys alone take more than one step each time.
  REQUIRE(small_total > 2 * kBound);
  CHECK(steps.size() >= 2 * (small_total / (kBound + small_items)));
  CHECK(t.replication().stats().max_slice_items < big_items + kBound);
  CHECK(Members(t.keyspace(), "big", t.now()).size() == 10'000);
  CHECK(Members(t.keyspace(), "set:99", t.now()).size() == 20);
  CHECK(t.keyspace().Size(0) == 101);
}

TEST_CASE("snapshot: an export's chunk is bounded by items, a slot's keys spread over chunks",
          "[snapshot][sliced]") {
  constexpr uint64_t kBound = 50;
  Restartable t;
  std::vector<std::string> members;
  for (int m = 0; m < 20; ++m) members.push_back("m" + std::to_string(m));
  // Ten sets in one slot (one hash tag), and a few strings elsewhere.
  for (int s = 0; s < 10; ++s) {
    REQUIRE(t.keyspace().SAdd(0, "{slot}:" + std::to_string(s), members, t.now()).ok());
  }
  for (int k = 0; k < 5; ++k) {
    t.keyspace().SetString(0, "k" + std::to_string(k), "v", false, t.now());
  }
  REQUIRE(t.node().EndOfBatch());
  t.replication().set_slice_items(kBound);
  const std::vector<repl::SnapshotChunk> chunks = t.replication().TakeSnapshot(1024);
  REQUIRE(!chunks.empty());
  CHECK(chunks.back().last);
  std::map<std::string, int> seen;
  uint64_t largest_key = 0;
  size_t chunks_with_the_slot = 0;
  for (const repl::SnapshotChunk& chunk : chunks) {
    uint64_t items = 0;
    bool has_slot = false;
    for (const repl::SnapshotKey& key : chunk.keys) {
      ++seen[key.key];
      items += 1 + key.state.MetadataItems();
      largest_key = std::max<uint64_t>(largest_key, 1 + key.state.MetadataItems());
      has_slot = has_slot || key.key.rfind("{slot}", 0) == 0;
    }
    INFO("chunk items " << items);
    CHECK(items < kBound + largest_key);  // past the bound by one key at most
    if (has_slot) ++chunks_with_the_slot;
  }
  REQUIRE(largest_key > 20);
  CHECK(chunks_with_the_slot >= 10 * 20 / (kBound + largest_key));  // the slot over several
  CHECK(chunks_with_the_slot > 1);
  CHECK(seen.size() == 15);  // every key once
  for (const auto& [name, count] : seen) {
    INFO(name);
    CHECK(count == 1);
  }
}

}  // namespace
}  // namespace lattice::server::testing
