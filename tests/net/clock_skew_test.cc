// A peer whose clock runs far ahead (docs/replication.md, "Clock skew"): a node with its
// Replication (memory storage, a transport that drops what it sends) receives ops a region with
// a bad clock stamped 1 hour, 1 day, or a little further each time ahead of the wall clock. The
// ops are applied (every region applies them, or they diverge), the node's HLC never follows
// them beyond max drift of its wall clock, each refusal is counted (INFO crdt), and a write made
// here after the op arrived wins over it whatever the stamps.

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "lattice/crdt/hlc.h"
#include "linked_node.h"
#include "store/keyspace.h"
#include "store/replication.h"

namespace lattice::server::testing {
namespace {

constexpr int64_t kSecond = 1000;
constexpr int64_t kHour = 3600 * kSecond;

// The node under test, linked to kFar.
class SkewedPeer {
 public:
  SkewedPeer() : far_(kFar, 16) {
    far_.AddObserver(&far_ops_);
    node_ = OpenLinkedNode("", clock_, storage_, transport_);
  }

  int64_t wall_ms() const { return clock_.NowMs(); }
  Replication& replication() { return *node_->replication(); }
  Keyspace& keyspace() { return node_->server().keyspace(); }
  uint64_t clock_ms() { return crdt::HlcPhysicalMs(keyspace().hlc().last()); }

  // kFar sets `key` with its clock at wall + ahead_ms; the op reaches this node.
  void FarSet(const std::string& key, const std::string& value, int64_t ahead_ms) {
    far_.SetString(0, key, value, /*keep_ttl=*/false, wall_ms() + ahead_ms);
    auto& [db, name, op] = far_ops_.ops.back();
    repl::OpBatch batch;
    batch.sender = kFar;
    batch.ops.push_back(
        repl::OpRecord{.db = static_cast<uint32_t>(db), .key = name, .op = op, .deps = deps_});
    deps_.Set(kFar, op.first_dot.seq + op.dot_count - 1);
    replication().OnMessage(kFar, batch, wall_ms());
    REQUIRE(node_->EndOfBatch());
  }

  // A local SET at the wall clock, as a client's command makes it.
  void LocalSet(const std::string& key, const std::string& value) {
    keyspace().SetString(0, key, value, /*keep_ttl=*/false, wall_ms());
    REQUIRE(node_->EndOfBatch());
  }

  std::string Get(const std::string& key) {
    const KeyRef found = keyspace().Find(0, key, wall_ms());
    return found ? ReadVisible(found, wall_ms()).string : std::string("(nil)");
  }

 private:
  FakeClock clock_;
  repl::MemoryStorage storage_;
  DropTransport transport_;
  std::unique_ptr<Node> node_;
  Keyspace far_;
  OpCollector far_ops_;
  crdt::VersionVector deps_;
};

TEST_CASE("clock skew: an op 1 hour or 1 day ahead is applied, the clock does not follow it",
          "[clock]") {
  for (const int64_t ahead : {kHour, 24 * kHour}) {
    CAPTURE(ahead);
    SkewedPeer t;
    const uint64_t drift = t.keyspace().hlc().max_drift_ms();
    t.LocalSet("k", "before");
    t.FarSet("k", "far", ahead);
    CHECK(t.Get("k") == "far");  // applied: it is concurrent with nothing and later
    CHECK(t.clock_ms() <= static_cast<uint64_t>(t.wall_ms()) + drift);
    CHECK(t.keyspace().hlc().drift_rejections() == 1);
    CHECK(t.replication().stats().clock_ahead_ms.at(kFar) >= ahead);
    // A write made here after the op arrived observed it: it wins whatever the stamps.
    t.LocalSet("k", "after");
    CHECK(t.Get("k") == "after");
  }
}

TEST_CASE("clock skew: ops each a little further ahead do not ratchet the clock forward",
          "[clock]") {
  SkewedPeer t;
  const int64_t drift = static_cast<int64_t>(t.keyspace().hlc().max_drift_ms());
  t.LocalSet("k", "start");
  // Each op is within max drift of the previous one (of the clock's last timestamp, had it
  // followed), never of the wall clock after the first.
  for (int i = 1; i <= 20; ++i) {
    t.FarSet("k" + std::to_string(i), "v", i * (drift * 5 / 6));
  }
  CHECK(t.clock_ms() <= static_cast<uint64_t>(t.wall_ms() + drift));
  CHECK(t.keyspace().hlc().drift_rejections() == 19);
  CHECK(t.Get("k20") == "v");
}

TEST_CASE("clock skew: an op within max drift ahead is followed", "[clock]") {
  SkewedPeer t;
  t.LocalSet("k", "start");
  t.FarSet("k", "far", 10 * kSecond);
  CHECK(t.clock_ms() >= static_cast<uint64_t>(t.wall_ms() + 10 * kSecond));
  CHECK(t.keyspace().hlc().drift_rejections() == 0);
  t.LocalSet("other", "x");  // stamped after the observed op
  CHECK(t.clock_ms() >= static_cast<uint64_t>(t.wall_ms() + 10 * kSecond));
}

}  // namespace
}  // namespace lattice::server::testing
