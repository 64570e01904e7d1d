// The engine's stream to a slow peer (lattice/repl/replicator.h): each op is sent once unless
// the peer really lost it. A peer that acknowledges slowly, and whose Heartbeats or relayed ops
// tell this replica what it holds before its Acks do, is not sent its in-flight ops again; an
// Ack that repeats the peer's previous one is the resend request of a peer that dropped its
// buffer, and is honoured; a silent peer still gets the resend after resend_timeout_ms, but not
// while the ops sent are still queued on the link (the peer is slow, not losing them).
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "lattice/repl/replicator.h"
#include "repl/engine_test_util.h"

namespace lattice::repl {
namespace {

constexpr int kOps = 100;

ReplicatorConfig StreamConfig() {
  ReplicatorConfig config = EngineConfig(uint64_t{1} << 30);
  config.ack_interval_ms = 20;
  config.resend_timeout_ms = 500;
  config.heartbeat_interval_ms = 1000;
  return config;
}

crdt::VersionVector Has(ReplicaId replica, uint64_t seq) {
  crdt::VersionVector vector;
  vector.Set(replica, seq);
  return vector;
}

// An engine with peer A connected (B stays down) that streamed kOps ops of its own to A.
struct Streamed {
  RecordingTransport transport;
  CountingApplier applier;
  Replicator engine{StreamConfig(), {}, transport, applier};
  OpMaker maker;

  Streamed() {
    Connect(engine, kPeerA, 1);
    for (int i = 0; i < kOps; ++i) {
      engine.OnLocalOp(0, "key:" + std::to_string(i % 10), maker.Set());
    }
    engine.Flush();
    REQUIRE(transport.ops_sent[kPeerA] == kOps);
  }
  uint64_t Resends() { return engine.Status(0).peers.front().resends; }
};

TEST_CASE("stream: a Heartbeat before a slow peer's Ack does not make the Ack a resend request",
          "[repl][stream]") {
  Streamed s;
  // The peer applied 40 of the 100 ops in flight: its Heartbeat says so, then its Ack (both go
  // out at the same Tick on its side). The Ack is news to nobody, but it is no resend request.
  s.engine.OnMessage(kPeerA, Heartbeat{100, Has(kSelf, 40), {}}, 100);
  s.engine.OnMessage(kPeerA, Ack{Has(kSelf, 40)}, 100);
  s.engine.Flush();
  CHECK(s.transport.ops_sent[kPeerA] == kOps);
  CHECK(s.Resends() == 0);
  // Each later Ack is newer than the one before: none resends anything.
  for (uint64_t seq = 50; seq <= kOps; seq += 10) {
    const int64_t now = 100 + static_cast<int64_t>(seq);
    s.engine.OnMessage(kPeerA, Heartbeat{now, Has(kSelf, seq), {}}, now);
    s.engine.OnMessage(kPeerA, Ack{Has(kSelf, seq)}, now);
    s.engine.Tick(now);
  }
  CHECK(s.transport.ops_sent[kPeerA] == kOps);
  CHECK(s.Resends() == 0);
}

TEST_CASE("stream: ops the slow peer relays do not make its Ack a resend request",
          "[repl][stream]") {
  Streamed s;
  // The peer sends an op of its own whose deps show it applied 60 of ours; then its Ack of 60.
  OpMaker theirs(kPeerA);
  OpBatch batch{.ops = {Record(theirs.Set(), "their-key", Has(kSelf, 60))}, .sender = kPeerA};
  s.engine.OnMessage(kPeerA, Message(batch), 100);
  CHECK(s.applier.applied == 1);
  crdt::VersionVector acked = Has(kSelf, 60);
  acked.Set(kPeerA, 1);
  s.engine.OnMessage(kPeerA, Ack{acked}, 100);
  s.engine.Flush();
  CHECK(s.transport.ops_sent[kPeerA] == kOps);
  CHECK(s.Resends() == 0);
}

TEST_CASE("stream: an Ack that repeats the previous one asks for the in-flight ops again",
          "[repl][stream]") {
  Streamed s;
  s.engine.OnMessage(kPeerA, Ack{Has(kSelf, 70)}, 100);
  s.engine.Flush();
  CHECK(s.transport.ops_sent[kPeerA] == kOps);
  // The peer dropped its buffer: it repeats its last Ack. The 30 ops after it are sent again.
  s.engine.OnMessage(kPeerA, Ack{Has(kSelf, 70)}, 150);
  s.engine.Flush();
  CHECK(s.transport.ops_sent[kPeerA] == kOps + 30);
  CHECK(s.Resends() == 1);
  // An Ack no newer than its Hello, before any Ack, asks the same.
  Streamed fresh;
  fresh.engine.OnMessage(kPeerA, Ack{{}}, 100);
  fresh.engine.Flush();
  CHECK(fresh.transport.ops_sent[kPeerA] == 2 * kOps);
  CHECK(fresh.Resends() == 1);
}

TEST_CASE("stream: a peer that acknowledges nothing gets the resend after the timeout",
          "[repl][stream]") {
  Streamed s;
  s.engine.Tick(400);
  CHECK(s.transport.ops_sent[kPeerA] == kOps);
  s.engine.Tick(501);  // resend_timeout_ms after the first op went out (at 1)
  CHECK(s.transport.ops_sent[kPeerA] == 2 * kOps);
  CHECK(s.Resends() == 1);
}

TEST_CASE("stream: no resend while what was sent is still queued on the link", "[repl][stream]") {
  // A slow peer, not a lossy one: resending on top of a full output buffer only grows it (at 1M
  // elements, a window every 500 ms queued 256 MiB and the link was cut).
  Streamed s;
  s.transport.queued = 1;
  s.engine.Tick(501);
  s.engine.Tick(1200);
  CHECK(s.transport.ops_sent[kPeerA] == kOps);
  CHECK(s.Resends() == 0);
  s.transport.queued = 0;  // drained: the timer runs from the last Tick that saw bytes queued
  s.engine.Tick(1600);
  CHECK(s.Resends() == 0);
  s.engine.Tick(1700);
  CHECK(s.transport.ops_sent[kPeerA] == 2 * kOps);
  CHECK(s.Resends() == 1);
}

TEST_CASE("stream: a receiver whose buffer overflows repeats its previous Ack", "[repl][stream]") {
  RecordingTransport transport;
  CountingApplier applier;
  ReplicatorConfig config = StreamConfig();
  config.max_buffered_ops = 8;
  Replicator engine(config, {}, transport, applier);
  Connect(engine, kPeerA, 1);
  OpMaker theirs(kPeerA);
  // Their op 1 arrives and is acknowledged; op 2 is lost, so ops 3.. wait for it until the
  // buffer overflows.
  crdt::VersionVector deps;
  auto next = [&] {
    OpRecord record = Record(theirs.Set(), "k", deps);
    deps.Set(kPeerA, record.op.first_dot.seq);
    return record;
  };
  engine.OnMessage(kPeerA, Message(OpBatch{.ops = {next()}, .sender = kPeerA}), 10);
  engine.Tick(30);
  const std::vector<Ack> acks = transport.SentTo<Ack>(kPeerA);
  REQUIRE(acks.size() == 1);
  CHECK(acks.back().applied == Has(kPeerA, 1));
  next();  // lost
  OpBatch rest{.ops = {}, .sender = kPeerA};
  for (int i = 0; i < 9; ++i) {
    rest.ops.push_back(next());
  }
  engine.OnMessage(kPeerA, Message(rest), 40);
  CHECK(applier.applied == 1);
  CHECK(engine.buffered_ops() == 0);  // dropped when full
  const std::vector<Ack> after = transport.SentTo<Ack>(kPeerA);
  REQUIRE(after.size() == 2);
  CHECK(after.back().applied == acks.back().applied);  // what the sender takes as a request
}

}  // namespace
}  // namespace lattice::repl

namespace lattice::repl {
namespace {

// The ops of kSelf that `batches` carry, by first seq, decoded.
std::vector<uint64_t> SeqsSent(const std::vector<std::string>& batches) {
  std::vector<uint64_t> seqs;
  for (const std::string& bytes : batches) {
    Result<Message> decoded = Decode(bytes, kSelf);
    REQUIRE(decoded.ok());
    for (const OpRecord& op : std::get<OpBatch>(*decoded).ops) {
      seqs.push_back(op.op.first_dot.seq);
    }
  }
  return seqs;
}

TEST_CASE("stream: peers at the same position are sent the same bytes, coded once",
          "[repl][stream]") {
  RecordingTransport transport;
  CountingApplier applier;
  Replicator engine(StreamConfig(), {}, transport, applier);
  Connect(engine, kPeerA, 1);
  Connect(engine, kPeerB, 1);
  OpMaker maker;
  for (int i = 0; i < kOps; ++i) {
    engine.OnLocalOp(0, "key:" + std::to_string(i % 10), maker.Set());
  }
  engine.Flush();
  CHECK(transport.batches[kPeerA] == transport.batches[kPeerB]);
  CHECK(SeqsSent(transport.batches[kPeerB]) == SeqRange(1, kOps));
  // B falls behind and asks for a resend: from 30 its batches start where none of A's did (they
  // are coded for B), from 32 where A's did (B is sent those). Either way B gets each op it
  // lacks once, and A nothing.
  engine.OnMessage(kPeerA, Ack{Has(kSelf, kOps)}, 50);
  for (uint64_t acked : {30, 32}) {
    CAPTURE(acked);
    engine.OnMessage(kPeerB, Ack{Has(kSelf, acked)}, 10 * static_cast<int64_t>(acked));
    transport.batches.clear();
    engine.OnMessage(kPeerB, Ack{Has(kSelf, acked)}, 10 * static_cast<int64_t>(acked) + 5);
    CHECK(transport.batches[kPeerA].empty());
    CHECK(SeqsSent(transport.batches[kPeerB]) == SeqRange(acked + 1, kOps));
  }
  // New ops go to both again, the same bytes.
  transport.batches.clear();
  for (int i = 0; i < 20; ++i) {
    engine.OnLocalOp(0, "key:" + std::to_string(i), maker.Set());
  }
  engine.Flush();
  CHECK(transport.batches[kPeerA] == transport.batches[kPeerB]);
  CHECK(SeqsSent(transport.batches[kPeerA]) == SeqRange(kOps + 1, kOps + 20));
}

}  // namespace
}  // namespace lattice::repl
