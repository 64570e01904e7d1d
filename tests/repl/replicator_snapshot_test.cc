// Snapshots in the engine (lattice/repl/replicator.h): no storms. A snapshot the receiver's
// applied vector covers is acknowledged and not installed, and marks no one stale; a resend of
// an unchanged state carries the same number; resends wait for a backoff scaled to the
// snapshot's size; chunks are paced by what the link holds; an install in slices keeps the ops
// its cut covers out and makes local ops depend on the cut; a sender keeps, beyond its backlog
// bound, the ops a peer installing its snapshot lacks, and does not resend its window meanwhile;
// the ops an install's end releases are applied a bounded number per turn; a step that has used
// its time budget still moves every kind of snapshot work, a piece a turn.
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lattice/repl/replicator.h"
#include "repl/engine_test_util.h"

namespace lattice::repl {
namespace {

crdt::VersionVector Has(ReplicaId replica, uint64_t seq) {
  crdt::VersionVector vector;
  vector.Set(replica, seq);
  return vector;
}

// An applier with `keys` keys, whose installs take `steps` Steps each.
class SlicedApplier final : public Applier {
 public:
  void Apply(const OpRecord& op) override { applied.push_back(op.op.first_dot); }
  std::vector<SnapshotChunk> TakeSnapshot(size_t keys_per_chunk) override {
    ++taken;
    std::vector<SnapshotChunk> chunks(1);
    for (size_t i = 0; i < keys; ++i) {
      if (chunks.back().keys.size() >= keys_per_chunk) chunks.emplace_back();
      chunks.back().keys.push_back(SnapshotKey{0, "k" + std::to_string(i), crdt::Key{}});
    }
    chunks.back().last = true;
    chunks.back().context = context;
    return chunks;
  }
  void InstallSnapshot(const std::vector<SnapshotChunk>&) override { ++installed; }
  std::unique_ptr<SnapshotInstall> StartInstall(std::vector<SnapshotChunk>) override {
    struct Steps final : SnapshotInstall {
      SlicedApplier* owner;
      int left;
      bool Step() override {
        if (--left > 0) return false;
        ++owner->installed;
        return true;
      }
    };
    auto install = std::make_unique<Steps>();
    install->owner = this;
    install->left = steps;
    return install;
  }
  size_t keys = 3;
  int steps = 1;
  crdt::DotContext context;
  int taken = 0;
  int installed = 0;
  std::vector<crdt::Dot> applied;
};

// A snapshot taken chunk by chunk, from chunks made beforehand.
struct ChunkSource final : SnapshotSource {
  std::vector<SnapshotChunk> chunks;
  size_t next = 0;
  SnapshotChunk Next(size_t) override { return chunks[next++]; }
};

// The chunks of one snapshot of `keys` keys (context = covers), numbered `number`.
std::vector<SnapshotChunk> Snapshot(const crdt::VersionVector& covers, uint64_t number,
                                    size_t chunks = 2) {
  std::vector<SnapshotChunk> out(chunks);
  for (size_t i = 0; i < chunks; ++i) {
    out[i].snapshot_id = (number << kSnapshotChunkBits) | i;
    out[i].keys.push_back(SnapshotKey{0, "k" + std::to_string(i), crdt::Key{}});
  }
  out.back().last = true;
  for (const auto& [replica, seq] : covers.entries()) {
    for (uint64_t s = 1; s <= seq; ++s) out.back().context.Add(crdt::Dot{replica, s});
  }
  return out;
}

ReplicatorConfig SnapshotConfig() {
  ReplicatorConfig config = EngineConfig(uint64_t{1} << 30);
  config.resend_timeout_ms = 500;
  config.heartbeat_interval_ms = 1'000'000;  // no periodic Heartbeat hides the one we look for
  return config;
}

TEST_CASE(
    "snapshot: one the applied vector covers is acknowledged, not installed, and marks "
    "no one stale",
    "[repl][snapshot]") {
  RecordingTransport transport;
  SlicedApplier applier;
  RecordingObserver observer;
  // Applied A:10 (from a snapshot or the log): the floor is A:10, and B, down, acked nothing.
  Replicator engine(SnapshotConfig(), Has(kPeerA, 10), transport, applier, &observer);
  Connect(engine, kPeerA, 1, Has(kPeerA, 10));
  transport.sent.clear();
  for (const SnapshotChunk& chunk : Snapshot(Has(kPeerA, 10), 7)) {
    engine.OnMessage(kPeerA, chunk, 2);
  }
  CHECK(applier.installed == 0);
  CHECK(observer.Count(EventKind::kSnapshotSkipped, kPeerA) == 1);
  CHECK(observer.Count(EventKind::kSnapshotInstalled, kPeerA) == 0);
  CHECK(observer.Count(EventKind::kPeerStale, kPeerB) == 0);
  // Acknowledged: a Heartbeat with the applied vector (a repeated Ack would read as a resend
  // request).
  const std::vector<Heartbeat> beats = transport.SentTo<Heartbeat>(kPeerA);
  REQUIRE(!beats.empty());
  CHECK(beats.back().applied == Has(kPeerA, 10));

  SECTION("its resend is recognised by its number and only acknowledged") {
    transport.sent.clear();
    std::vector<SnapshotChunk> again = Snapshot(Has(kPeerA, 10), 7);
    engine.OnMessage(kPeerA, again[0], 3);
    engine.OnMessage(kPeerA, again[1], 3);
    CHECK(applier.installed == 0);
    CHECK(observer.Count(EventKind::kSnapshotSkipped, kPeerA) == 2);
    CHECK(transport.SentTo<Heartbeat>(kPeerA).size() == 1);
  }
}

TEST_CASE("snapshot: one that raises the applied vector is installed", "[repl][snapshot]") {
  RecordingTransport transport;
  SlicedApplier applier;
  RecordingObserver observer;
  Replicator engine(SnapshotConfig(), Has(kPeerA, 10), transport, applier, &observer);
  Connect(engine, kPeerA, 1, Has(kPeerA, 12));
  for (const SnapshotChunk& chunk : Snapshot(Has(kPeerA, 12), 9)) {
    engine.OnMessage(kPeerA, chunk, 2);
  }
  CHECK(applier.installed == 1);
  CHECK(engine.applied() == Has(kPeerA, 12));
  CHECK(observer.Count(EventKind::kSnapshotInstalled, kPeerA) == 1);
}

// An engine that applied B:5 (its floor), with A connected and lacking everything: A is stale
// and is sent a snapshot of `keys` keys.
struct Sender {
  explicit Sender(size_t keys, ReplicatorConfig config = SnapshotConfig()) {
    applier.keys = keys;
    applier.context.Add(crdt::Dot{kPeerB, 5});
    engine = std::make_unique<Replicator>(config, Has(kPeerB, 5), transport, applier, &observer);
    Connect(*engine, kPeerA, 0);
  }
  std::vector<uint64_t> Numbers() const {
    std::vector<uint64_t> numbers;
    for (const SnapshotChunk& chunk : transport.SentTo<SnapshotChunk>(kPeerA)) {
      if (chunk.last) numbers.push_back(chunk.snapshot_id >> kSnapshotChunkBits);
    }
    return numbers;
  }
  RecordingTransport transport;
  SlicedApplier applier;
  RecordingObserver observer;
  std::unique_ptr<Replicator> engine;
};

TEST_CASE("snapshot: a resend of an unchanged state has the same number", "[repl][snapshot]") {
  Sender sender(3);
  REQUIRE(sender.Numbers().size() == 1);
  for (int64_t now = 0; now <= 60'000 && sender.Numbers().size() < 2; now += 50) {
    sender.engine->Tick(now);
  }
  const std::vector<uint64_t> numbers = sender.Numbers();
  REQUIRE(numbers.size() == 2);
  CHECK(numbers[0] == numbers[1]);
}

TEST_CASE("snapshot: resends wait for a backoff scaled to the snapshot's size, and for progress",
          "[repl][snapshot]") {
  ReplicatorConfig config = SnapshotConfig();
  config.snapshot_keys_per_ms = 1;
  config.snapshot_chunks_per_flush = 1'000'000;
  Sender sender(10'000, config);  // 10,000 keys at 1 key/ms: 10 s to install, plus 4 * 500 ms
  REQUIRE(sender.Numbers().size() == 1);
  int64_t now = 0;
  for (; now < 11'900; now += 50) sender.engine->Tick(now);
  CHECK(sender.Numbers().size() == 1);  // a fixed 2 s resend would have sent 5 more by now
  SECTION("no progress: resent once the backoff passed, then after twice as long") {
    for (; now <= 12'100; now += 50) sender.engine->Tick(now);
    CHECK(sender.Numbers().size() == 2);
    for (; now < 12'000 + 23'900; now += 50) sender.engine->Tick(now);
    CHECK(sender.Numbers().size() == 2);
    for (; now <= 12'000 + 24'200; now += 50) sender.engine->Tick(now);
    CHECK(sender.Numbers().size() == 3);
  }
  SECTION("progress (its acknowledged vector grows) postpones the resend") {
    Heartbeat beat;
    beat.applied = Has(kPeerA, 1);
    sender.engine->OnMessage(kPeerA, beat, now);
    const int64_t progressed = now;
    for (; now < progressed + 11'900; now += 50) sender.engine->Tick(now);
    CHECK(sender.Numbers().size() == 1);
  }
  SECTION("the peer's acknowledgement of the cut settles it: no resend") {
    Heartbeat beat;
    beat.applied = Has(kPeerB, 5);
    sender.engine->OnMessage(kPeerA, beat, now);
    for (; now < 120'000; now += 50) sender.engine->Tick(now);
    CHECK(sender.Numbers().size() == 1);
  }
}

TEST_CASE("snapshot: chunks are paced by the bytes the link holds", "[repl][snapshot]") {
  ReplicatorConfig config = SnapshotConfig();
  config.snapshot_keys_per_chunk = 10;
  RecordingTransport transport;
  transport.queued = config.snapshot_queue_bytes;  // the link is full
  SlicedApplier applier;
  applier.keys = 100;
  applier.context.Add(crdt::Dot{kPeerB, 5});
  // Whole snapshots (TakeSnapshot) go at once; a sliced source is paced.
  struct PacedApplier final : Applier {
    SlicedApplier* inner;
    void Apply(const OpRecord& op) override { inner->Apply(op); }
    std::vector<SnapshotChunk> TakeSnapshot(size_t n) override { return inner->TakeSnapshot(n); }
    void InstallSnapshot(const std::vector<SnapshotChunk>& c) override {
      inner->InstallSnapshot(c);
    }
    std::unique_ptr<SnapshotSource> StartSnapshot(size_t n) override {
      auto source = std::make_unique<ChunkSource>();
      source->chunks = inner->TakeSnapshot(n);
      return source;
    }
  } paced;
  paced.inner = &applier;
  Replicator engine(config, Has(kPeerB, 5), transport, paced);
  Connect(engine, kPeerA, 0);
  CHECK(transport.SentTo<SnapshotChunk>(kPeerA).empty());
  // Taken for A, but not pending work while A's link is full: no turn is asked for it (the
  // server spun its event loop on such turns); the write that makes room asks instead.
  CHECK(engine.taking_snapshot_for(kPeerA));
  CHECK_FALSE(engine.snapshot_work_pending());
  transport.queued = 0;
  CHECK(engine.snapshot_work_pending());
  engine.StepSnapshots();
  CHECK(transport.SentTo<SnapshotChunk>(kPeerA).size() == 1);  // one chunk per step
  for (int i = 0; i < 20 && engine.snapshot_work_pending(); ++i) engine.StepSnapshots();
  const std::vector<SnapshotChunk> chunks = transport.SentTo<SnapshotChunk>(kPeerA);
  REQUIRE(chunks.size() == 10);
  CHECK(chunks.back().last);
  CHECK(!engine.snapshot_work_pending());
}

TEST_CASE("snapshot: an install in slices holds back the ops its cut covers", "[repl][snapshot]") {
  RecordingTransport transport;
  SlicedApplier applier;
  applier.steps = 3;
  Replicator engine(SnapshotConfig(), {}, transport, applier);
  Connect(engine, kPeerA, 1, Has(kPeerA, 4));
  Connect(engine, kPeerB, 1);
  for (const SnapshotChunk& chunk : Snapshot(Has(kPeerA, 2), 1)) {
    engine.OnMessage(kPeerA, chunk, 2);
  }
  REQUIRE(engine.installing());
  CHECK(engine.applied().Get(kPeerA) == 0);
  // A:1 and A:2 (covered by the cut) arrive from B, A:3 from A: none is applied yet.
  OpMaker a(kPeerA);
  OpBatch from_b{.ops = {Record(a.Set(), "k", {}), Record(a.Set(), "k", Has(kPeerA, 1))},
                 .sender = kPeerB};
  engine.OnMessage(kPeerB, from_b, 3);
  OpBatch from_a{.ops = {Record(a.Set(), "k", Has(kPeerA, 2))}, .sender = kPeerA};
  engine.OnMessage(kPeerA, from_a, 3);
  CHECK(applier.applied.empty());
  // A local op made now depends on the cut (it may have read keys already joined).
  OpMaker self;
  engine.OnLocalOp(0, "mine", self.Set());
  engine.Flush();
  REQUIRE(!transport.SentTo<OpBatch>(kPeerB).empty());
  const OpBatch mine = transport.SentTo<OpBatch>(kPeerB).back();
  REQUIRE(mine.ops.size() == 1);
  CHECK(mine.ops[0].deps.Get(kPeerA) == 2);
  engine.StepSnapshots();
  engine.StepSnapshots();
  CHECK(!engine.installing());
  CHECK(engine.applied().Get(kPeerA) == 3);
  REQUIRE(applier.applied.size() == 1);  // only A:3: A:1 and A:2 came with the snapshot
  CHECK(applier.applied[0] == crdt::Dot{kPeerA, 3});
}

TEST_CASE("snapshot: the sender keeps the ops an installing peer lacks, within a larger bound",
          "[repl][snapshot]") {
  ReplicatorConfig config = SnapshotConfig();
  config.max_retained_ops = 10;
  config.install_backlog_factor = 4;
  config.max_inflight_ops = 5;  // the peer acknowledges nothing while it installs
  Sender sender(3, config);
  REQUIRE(sender.Numbers().size() == 1);  // A is installing it (in flight)
  Replicator& engine = *sender.engine;
  OpMaker self;
  for (int i = 0; i < 30; ++i) engine.OnLocalOp(0, "k", self.Set());
  engine.Flush();
  // 30 ops past the cut, over the bound of 10: kept for A, which has only 5 of them.
  CHECK(engine.retained_ops() == 30);
  // Its window is not resent while it installs (it holds the ops, and acks them at the end).
  for (int64_t now = 0; now < 1500; now += 50) engine.Tick(now);
  auto status_of_a = [&](int64_t now) {
    for (const PeerStatus& peer : engine.Status(now).peers) {
      if (peer.replica == kPeerA) return peer;
    }
    FAIL("no status for A");
    return PeerStatus{};
  };
  CHECK(status_of_a(1500).resends == 0);

  SECTION("the install's end acknowledges the cut and what arrived: no snapshot again") {
    Ack ack;
    ack.applied = Has(kPeerB, 5);
    ack.applied.Set(kSelf, 5);
    engine.OnMessage(kPeerA, ack, 1500);
    CHECK(status_of_a(1500).state == PeerState::kConnected);  // no longer stale
    for (int64_t now = 1500; now < 20'000; now += 50) engine.Tick(now);
    CHECK(sender.Numbers().size() == 1);
    std::vector<uint64_t> seqs;
    for (const OpBatch& batch : sender.transport.SentTo<OpBatch>(kPeerA)) {
      for (const OpRecord& op : batch.ops) seqs.push_back(op.op.first_dot.seq);
    }
    REQUIRE(seqs.size() >= 10);
    seqs.resize(10);
    CHECK(seqs == SeqRange(1, 10));  // the window goes on from the log, after the snapshot
  }
  SECTION("beyond the larger bound the oldest go, and the peer will need a snapshot again") {
    for (int i = 0; i < 20; ++i) engine.OnLocalOp(0, "k", self.Set());
    CHECK(engine.retained_ops() == 40);
    Ack ack;
    ack.applied = Has(kPeerB, 5);
    ack.applied.Set(kSelf, 5);
    engine.OnMessage(kPeerA, ack, 1500);
    for (int64_t now = 1500; now < 60'000 && sender.Numbers().size() < 2; now += 50) {
      engine.Tick(now);
    }
    CHECK(sender.Numbers().size() == 2);
  }
}

TEST_CASE("snapshot: the ops an install's end releases are applied a bounded number a turn",
          "[repl][snapshot]") {
  ReplicatorConfig config = SnapshotConfig();
  config.max_drain_ops = 4;
  RecordingTransport transport;
  SlicedApplier applier;
  applier.steps = 2;
  Replicator engine(config, {}, transport, applier);
  Connect(engine, kPeerA, 1, Has(kPeerA, 2));
  for (const SnapshotChunk& chunk : Snapshot(Has(kPeerA, 2), 1)) {
    engine.OnMessage(kPeerA, chunk, 2);
  }
  REQUIRE(engine.installing());
  OpMaker a(kPeerA);
  a.Set();
  a.Set();  // A:1 and A:2: the cut's
  OpBatch batch{.sender = kPeerA};
  for (uint64_t seq = 3; seq <= 20; ++seq) {
    batch.ops.push_back(Record(a.Set(), "k", Has(kPeerA, seq - 1)));
  }
  engine.OnMessage(kPeerA, batch, 3);
  CHECK(applier.applied.empty());  // held until the install ends
  engine.StepSnapshots();
  REQUIRE_FALSE(engine.installing());
  CHECK(applier.applied.size() == 4);
  CHECK(engine.snapshot_work_pending());  // the node ends another turn soon
  size_t before = applier.applied.size();
  for (int turn = 0; turn < 10 && engine.snapshot_work_pending(); ++turn) {
    engine.StepSnapshots();
    CHECK(applier.applied.size() - before <= 4);
    before = applier.applied.size();
  }
  CHECK_FALSE(engine.snapshot_work_pending());
  CHECK(applier.applied.size() == 18);
  CHECK(engine.applied().Get(kPeerA) == 20);
  for (size_t i = 0; i < applier.applied.size(); ++i) {
    CHECK(applier.applied[i] == crdt::Dot{kPeerA, 3 + i});  // in order
  }
}

TEST_CASE("a spent step holds the ops it receives for the next turns, in order",
          "[repl][snapshot]") {
  RecordingTransport transport;
  SlicedApplier applier;
  Replicator engine(SnapshotConfig(), {}, transport, applier);
  bool spent = false;
  engine.set_step_spent([&spent] { return spent; });
  Connect(engine, kPeerA, 1, {});
  OpMaker a(kPeerA);
  auto batch_of = [&](uint64_t first, uint64_t last) {
    OpBatch batch{.sender = kPeerA};
    for (uint64_t seq = first; seq <= last; ++seq) {
      batch.ops.push_back(Record(a.Set(), "k", Has(kPeerA, seq - 1)));
    }
    return batch;
  };
  engine.OnMessage(kPeerA, batch_of(1, 5), 2);
  CHECK(applier.applied.size() == 5);  // within the step's time: applied as they come
  CHECK_FALSE(engine.snapshot_work_pending());

  spent = true;
  engine.StepSnapshots();  // a new turn
  engine.OnMessage(kPeerA, batch_of(6, 15), 3);
  CHECK(applier.applied.size() == 6);  // one op a turn at least, the rest held
  CHECK(engine.buffered_ops() == 9);
  CHECK(engine.snapshot_work_pending());  // the node ends another turn soon
  engine.StepSnapshots();
  CHECK(applier.applied.size() == 7);
  spent = false;
  engine.StepSnapshots();
  CHECK(applier.applied.size() == 15);
  CHECK(engine.buffered_ops() == 0);
  CHECK_FALSE(engine.snapshot_work_pending());
  CHECK(engine.applied().Get(kPeerA) == 15);
  for (size_t i = 0; i < applier.applied.size(); ++i) {
    CHECK(applier.applied[i] == crdt::Dot{kPeerA, 1 + i});  // in order
  }
}

TEST_CASE("a spent step still moves every kind of snapshot work, one piece a turn",
          "[repl][snapshot]") {
  constexpr ReplicaId kPeerC = 44;
  ReplicatorConfig config = SnapshotConfig();
  config.peers.push_back(kPeerC);
  config.snapshot_keys_per_chunk = 1;
  config.snapshot_chunks_per_flush = 2;  // the second only while the step's budget lasts
  RecordingTransport transport;
  // Takes snapshots of 4 keys chunk by chunk; installs in 3 steps, counted.
  struct Steps final : SnapshotInstall {
    int* steps;
    int left = 3;
    bool Step() override {
      ++*steps;
      return --left == 0;
    }
  };
  struct Paced final : Applier {
    SlicedApplier inner;
    int install_steps = 0;
    void Apply(const OpRecord& op) override { inner.Apply(op); }
    std::vector<SnapshotChunk> TakeSnapshot(size_t n) override { return inner.TakeSnapshot(n); }
    void InstallSnapshot(const std::vector<SnapshotChunk>& c) override { inner.InstallSnapshot(c); }
    std::unique_ptr<SnapshotSource> StartSnapshot(size_t n) override {
      auto source = std::make_unique<ChunkSource>();
      source->chunks = inner.TakeSnapshot(n);
      return source;
    }
    std::unique_ptr<SnapshotInstall> StartInstall(std::vector<SnapshotChunk>) override {
      auto install = std::make_unique<Steps>();
      install->steps = &install_steps;
      return install;
    }
  } applier;
  applier.inner.keys = 4;
  applier.inner.context.Add(crdt::Dot{kPeerB, 5});
  Replicator engine(config, Has(kPeerB, 5), transport, applier);
  bool spent = true;  // every step has used its budget from its start
  engine.set_step_spent([&spent] { return spent; });
  // A lacks B:5 and needs a snapshot; B sends one that raises the applied vector.
  Connect(engine, kPeerA, 1);
  Connect(engine, kPeerB, 1, Has(kPeerB, 7));
  for (const SnapshotChunk& chunk : Snapshot(Has(kPeerB, 7), 3)) {
    engine.OnMessage(kPeerB, chunk, 2);
  }
  // Neither began in the step that asked for it: the first chunk and the first slice wait for
  // a turn.
  REQUIRE(engine.taking_snapshot_for(kPeerA));
  REQUIRE(engine.installing());
  CHECK(transport.SentTo<SnapshotChunk>(kPeerA).empty());
  CHECK(applier.install_steps == 0);
  // Each turn does one piece (a chunk or a slice), whichever kind goes first; both finish.
  size_t done = 0;
  for (int turn = 0; turn < 20 && engine.snapshot_work_pending(); ++turn) {
    engine.StepSnapshots();
    const size_t now =
        transport.SentTo<SnapshotChunk>(kPeerA).size() + static_cast<size_t>(applier.install_steps);
    CHECK(now == done + 1);
    done = now;
  }
  CHECK(transport.SentTo<SnapshotChunk>(kPeerA).size() == 4);
  CHECK(applier.install_steps == 3);
  CHECK_FALSE(engine.installing());
  CHECK(engine.applied().Get(kPeerB) == 7);

  SECTION("with budget left a turn does all of it, two pieces of each kind") {
    spent = false;
    Connect(engine, kPeerC, 10);  // C lacks B:7: a snapshot of 4 chunks, two of them now
    CHECK(transport.SentTo<SnapshotChunk>(kPeerC).size() == 2);
    engine.StepSnapshots();
    REQUIRE(transport.SentTo<SnapshotChunk>(kPeerC).size() == 4);
    CHECK(transport.SentTo<SnapshotChunk>(kPeerC).back().last);
  }
}

}  // namespace
}  // namespace lattice::repl
