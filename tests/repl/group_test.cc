// Op groups (docs/replication.md, "Groups"): the local ops between BeginGroup and EndGroup (a
// script's, an EXEC's) travel marked, every op but the last with group_continues, and a
// receiver applies a group only whole: when its ops arrive split over frames, out of order, over
// a reconnect, with duplicates, nothing of it is applied before all of it is, and then all of it
// in one call.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "lattice/repl/codec.h"
#include "lattice/repl/replicator.h"
#include "repl/engine_test_util.h"

namespace lattice::repl {
namespace {

// Records the first seq of every op applied, and what was applied when each message ended.
class SeqApplier final : public Applier {
 public:
  void Apply(const OpRecord& op) override { seqs.push_back(op.op.first_dot.seq); }
  std::vector<SnapshotChunk> TakeSnapshot(size_t) override {
    SnapshotChunk chunk;
    chunk.last = true;
    return {chunk};
  }
  void InstallSnapshot(const std::vector<SnapshotChunk>&) override {}
  std::vector<uint64_t> seqs;
};

ReplicatorConfig GroupConfig(ReplicaId self, std::vector<ReplicaId> peers) {
  ReplicatorConfig config = EngineConfig(uint64_t{1} << 30);
  config.replica = self;
  config.peers = std::move(peers);
  config.max_batch_ops = 4;  // a group of more than 4 ops spans frames
  return config;
}

// The ops of every batch sent to `to`, in order, with their group marks.
std::vector<OpRecord> OpsSentTo(const RecordingTransport& transport, ReplicaId to) {
  std::vector<OpRecord> ops;
  for (const OpBatch& batch : transport.SentTo<OpBatch>(to)) {
    ops.insert(ops.end(), batch.ops.begin(), batch.ops.end());
  }
  return ops;
}

std::vector<bool> Marks(const std::vector<OpRecord>& ops) {
  std::vector<bool> marks;
  for (const OpRecord& op : ops) marks.push_back(op.group_continues);
  return marks;
}

// The origin kPeerA, one of its peers being this test's receiver (kSelf).
struct Sender {
  RecordingTransport transport;
  CountingApplier applier;
  Replicator engine{GroupConfig(kPeerA, {kSelf}), {}, transport, applier};
  OpMaker maker{kPeerA};

  Sender() { Connect(engine, kSelf, 1); }
  // A group of `n` SETs on n keys, flushed: its batches are in transport.
  void Group(int n) {
    engine.BeginGroup();
    for (int i = 0; i < n; ++i) {
      engine.OnLocalOp(0, "k" + std::to_string(i), maker.Set());
    }
    engine.EndGroup();
    engine.Flush();
  }
  void Single() {
    engine.OnLocalOp(0, "single", maker.Set());
    engine.Flush();
  }
};

struct Receiver {
  RecordingTransport transport;
  SeqApplier applier;
  Replicator engine{GroupConfig(kSelf, {kPeerA}), {}, transport, applier};
  Receiver() { Connect(engine, kPeerA, 1); }
  void Deliver(const std::vector<OpBatch>& batches, int64_t now_ms = 10) {
    for (const OpBatch& batch : batches) engine.OnMessage(kPeerA, Message(batch), now_ms);
  }
};

TEST_CASE("groups: every op of a group but the last is marked, on the wire and in the record",
          "[repl][group]") {
  Sender origin;
  origin.Single();
  origin.Group(10);
  origin.Group(1);  // a group of one op is an ordinary op
  origin.Single();
  const std::vector<OpRecord> ops = OpsSentTo(origin.transport, kSelf);
  REQUIRE(ops.size() == 13);
  std::vector<bool> expected(13, false);
  for (int i = 1; i < 10; ++i) expected[static_cast<size_t>(i)] = true;
  CHECK(Marks(ops) == expected);
  CHECK(origin.transport.SentTo<OpBatch>(kSelf).size() >= 3);  // the group spans frames
  for (const OpRecord& op : ops) {
    // The op record (the log's, the ring's) keeps the mark, and so does a relay of the body.
    Result<OpRecord> decoded = DecodeOp(EncodeOp(op));
    REQUIRE(decoded.ok());
    CHECK(decoded->group_continues == op.group_continues);
    OpRecord relayed = op;
    relayed.wire = nullptr;
    CHECK(DecodeOp(EncodeOp(relayed))->group_continues == op.group_continues);
    relayed.body.clear();
    CHECK(DecodeOp(EncodeOp(relayed))->group_continues == op.group_continues);
  }
}

TEST_CASE("groups: nested brackets make one group; a long group goes as several", "[repl][group]") {
  RecordingTransport transport;
  CountingApplier applier;
  ReplicatorConfig config = GroupConfig(kPeerA, {kSelf});
  config.max_group_ops = 4;
  Replicator engine(config, {}, transport, applier);
  Connect(engine, kSelf, 1);
  OpMaker maker(kPeerA);
  engine.BeginGroup();
  engine.OnLocalOp(0, "a", maker.Set());
  engine.BeginGroup();
  engine.OnLocalOp(0, "b", maker.Set());
  engine.EndGroup();
  engine.Flush();
  CHECK(OpsSentTo(transport, kSelf).empty());  // staged until the outermost EndGroup
  engine.OnLocalOp(0, "c", maker.Set());
  engine.EndGroup();
  engine.Flush();
  CHECK(Marks(OpsSentTo(transport, kSelf)) == std::vector<bool>{true, true, false});
  transport.sent.clear();
  engine.BeginGroup();
  for (int i = 0; i < 10; ++i) engine.OnLocalOp(0, "k", maker.Set());
  engine.EndGroup();
  engine.Flush();
  CHECK(Marks(OpsSentTo(transport, kSelf)) ==
        std::vector<bool>{true, true, true, false, true, true, true, false, true, false});
}

TEST_CASE("groups: a group split over frames is applied only once all of it is here",
          "[repl][group]") {
  Sender origin;
  origin.Single();
  origin.Group(10);
  origin.Single();
  const std::vector<OpBatch> batches = origin.transport.SentTo<OpBatch>(kSelf);
  REQUIRE(batches.size() >= 4);
  SECTION("in order") {
    Receiver receiver;
    std::vector<size_t> applied_after;
    for (const OpBatch& batch : batches) {
      receiver.Deliver({batch});
      applied_after.push_back(receiver.applier.seqs.size());
    }
    // Never part of the group (seqs 2..11): 1, then 1, ..., then all 11 or 12 at once.
    for (size_t count : applied_after) {
      CHECK((count <= 1 || count >= 11));
    }
    CHECK(receiver.applier.seqs == SeqRange(1, 12));
  }
  SECTION("in reverse order, each frame twice") {
    Receiver receiver;
    for (auto it = batches.rbegin(); it != batches.rend(); ++it) {
      receiver.Deliver({*it, *it});
      const size_t count = receiver.applier.seqs.size();
      CHECK((count == 0 || count == 12));
    }
    CHECK(receiver.applier.seqs == SeqRange(1, 12));
    CHECK(receiver.engine.buffered_ops() == 0);
  }
  SECTION("the group's last op missing: nothing of the group is applied") {
    Receiver receiver;
    std::vector<OpBatch> partial = batches;
    partial.back().ops.clear();
    partial[partial.size() - 2].ops.pop_back();
    receiver.Deliver(partial);
    CHECK(receiver.applier.seqs == SeqRange(1, 1));
    CHECK(receiver.engine.applied().Get(kPeerA) == 1);
    // An Ack covers whole groups only: the origin resumes at the group's start.
    receiver.engine.Tick(100);
    const std::vector<Ack> acks = receiver.transport.SentTo<Ack>(kPeerA);
    REQUIRE(!acks.empty());
    CHECK(acks.back().applied.Get(kPeerA) == 1);
  }
}

TEST_CASE("groups: over a reconnect the origin resends from the group's start, applied whole",
          "[repl][group]") {
  Sender origin;
  Receiver receiver;
  origin.Group(10);
  std::vector<OpBatch> batches = origin.transport.SentTo<OpBatch>(kSelf);
  REQUIRE(batches.size() >= 3);
  receiver.Deliver({batches[0], batches[1]});  // the rest is lost with the link
  CHECK(receiver.applier.seqs.empty());
  receiver.engine.Tick(50);
  for (const Ack& ack : receiver.transport.SentTo<Ack>(kPeerA)) {
    origin.engine.OnMessage(kSelf, ack, 50);
  }
  // The link drops and comes back: Hellos both ways; the origin streams what the receiver lacks.
  origin.engine.OnDisconnected(kSelf, 60);
  receiver.engine.OnDisconnected(kPeerA, 60);
  origin.transport.sent.clear();
  origin.engine.OnConnected(kSelf, 70);
  receiver.engine.OnConnected(kPeerA, 70);
  const std::vector<Hello> hellos = receiver.transport.SentTo<Hello>(kPeerA);
  REQUIRE(!hellos.empty());
  CHECK(hellos.back().applied.Get(kPeerA) == 0);
  origin.engine.OnMessage(kSelf, hellos.back(), 70);
  origin.engine.Flush();
  batches = origin.transport.SentTo<OpBatch>(kSelf);
  REQUIRE(!batches.empty());
  CHECK(batches.front().ops.front().op.first_dot.seq == 1);
  receiver.engine.OnMessage(kPeerA, origin.transport.SentTo<Hello>(kSelf).back(), 80);
  for (const OpBatch& batch : batches) {
    CHECK(receiver.applier.seqs.empty());
    receiver.Deliver({batch}, 80);
  }
  CHECK(receiver.applier.seqs == SeqRange(1, 10));
  CHECK(receiver.engine.buffered_ops() == 0);
}

TEST_CASE("groups: a group waits for another origin's op it depends on, then applies whole",
          "[repl][group]") {
  // kPeerB's op reached kPeerA before kPeerA's group: the group depends on it.
  RecordingTransport transport;
  CountingApplier applier;
  Replicator origin(GroupConfig(kPeerA, {kSelf, kPeerB}), {}, transport, applier);
  Connect(origin, kSelf, 1);
  Connect(origin, kPeerB, 1);
  OpMaker b(kPeerB);
  const OpRecord b_op = Record(b.Set(), "from-b");
  origin.OnMessage(kPeerB, Message(OpBatch{.ops = {b_op}, .sender = kPeerB}), 2);
  OpMaker a(kPeerA);
  origin.BeginGroup();
  for (int i = 0; i < 6; ++i) origin.OnLocalOp(0, "k" + std::to_string(i), a.Set());
  origin.EndGroup();
  origin.Flush();
  std::vector<OpBatch> batches = transport.SentTo<OpBatch>(kSelf);
  // Not the relayed op of B: the receiver gets that one from B.
  std::vector<OpBatch> own;
  for (OpBatch batch : batches) {
    std::erase_if(batch.ops, [](const OpRecord& op) { return op.op.first_dot.replica == kPeerB; });
    if (!batch.ops.empty()) own.push_back(batch);
  }
  RecordingTransport receiver_transport;
  SeqApplier receiver_applier;
  Replicator receiver(GroupConfig(kSelf, {kPeerA, kPeerB}), {}, receiver_transport,
                      receiver_applier);
  Connect(receiver, kPeerA, 1);
  Connect(receiver, kPeerB, 1);
  for (const OpBatch& batch : own) receiver.OnMessage(kPeerA, Message(batch), 10);
  CHECK(receiver_applier.seqs.empty());
  CHECK(receiver.buffered_ops() == 6);
  receiver.OnMessage(kPeerB, Message(OpBatch{.ops = {b_op}, .sender = kPeerB}), 11);
  CHECK(receiver_applier.seqs == std::vector<uint64_t>{1, 1, 2, 3, 4, 5, 6});
}

TEST_CASE("groups: the op log's group record holds the group's op records", "[repl][group]") {
  Sender origin;
  origin.Group(3);
  const std::vector<OpRecord> ops = OpsSentTo(origin.transport, kSelf);
  REQUIRE(ops.size() == 3);
  std::string group;
  for (const OpRecord& op : ops) AppendToGroupLogRecord(EncodeOp(op), group);
  Result<std::vector<std::string_view>> records = OpsOfLogRecord(group);
  REQUIRE(records.ok());
  REQUIRE(records->size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK((*records)[i] == EncodeOp(ops[i]));
  }
  const std::string single = EncodeOp(ops[2]);
  CHECK(*OpsOfLogRecord(single) == std::vector<std::string_view>{single});
  // Every truncation of a group record is refused or yields whole records only.
  for (size_t cut = 1; cut < group.size(); ++cut) {
    const std::string truncated = group.substr(0, cut);  // the views point into it
    Result<std::vector<std::string_view>> part = OpsOfLogRecord(truncated);
    if (part.ok()) {
      CAPTURE(cut, group.size(), part->size());
      for (std::string_view record : *part) CHECK(DecodeOp(record).ok());
    }
  }
}

}  // namespace
}  // namespace lattice::repl