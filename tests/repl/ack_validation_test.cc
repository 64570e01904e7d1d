// What a peer may acknowledge (docs/replication.md, "What a peer may acknowledge"): of this
// replica's ops, nothing beyond the last one handed to the transport, in an Ack, a Heartbeat, a
// Hello or a snapshot's coverage. A violation closes the link with a Goodbye and a protocol
// error, and nothing of it is counted (acked: CRDT.WAIT, compaction). Claims about the peer's
// own ops and a third region's are not refused (it may be ahead of us there).

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "engine_test_util.h"

namespace lattice::repl {
namespace {

constexpr uint64_t kForged = uint64_t{1} << 61;

crdt::VersionVector Vector(std::initializer_list<std::pair<ReplicaId, uint64_t>> entries) {
  crdt::VersionVector out;
  for (const auto& [replica, seq] : entries) out.Set(replica, seq);
  return out;
}

struct Engine {
  RecordingTransport transport;
  CountingApplier applier;
  RecordingObserver observer;
  Replicator rep{EngineConfig(1 << 20), {}, transport, applier, &observer};
  OpMaker ops;

  // n local ops; sent to the connected peers when `flush`.
  void Local(int n, bool flush) {
    for (int i = 0; i < n; ++i) rep.OnLocalOp(0, "key:00000001", ops.Set());
    if (flush) rep.Flush();
  }
  // What the peer acknowledged of our ops, as Status says and as PeerAcks (CRDT.WAIT's
  // accessor, which does not walk the retained ops) says: both must agree.
  uint64_t Acked(ReplicaId peer) const {
    const std::vector<PeerStatus> peers = rep.Status(0).peers;
    const std::vector<std::pair<ReplicaId, crdt::VersionVector>> acks = rep.PeerAcks();
    REQUIRE(acks.size() == peers.size());
    for (size_t i = 0; i < peers.size(); ++i) {
      CHECK(acks[i].first == peers[i].replica);
      CHECK(acks[i].second == peers[i].acked);
    }
    for (const PeerStatus& status : peers) {
      if (status.replica == peer) return status.acked.Get(kSelf);
    }
    return 0;
  }
  bool Dropped(ReplicaId peer, const std::string& what) const {
    const std::vector<Goodbye> goodbyes = transport.SentTo<Goodbye>(peer);
    return observer.Count(EventKind::kProtocolError, peer) == 1 && goodbyes.size() == 1 &&
           goodbyes[0].reason.find(what) != std::string::npos;
  }
};

TEST_CASE("acks: an Ack of our ops beyond what we sent drops the link and counts nothing",
          "[repl][acks]") {
  Engine e;
  Connect(e.rep, kPeerA, 1000);
  e.Local(3, /*flush=*/true);
  e.rep.OnMessage(kPeerA, Ack{Vector({{kSelf, 2}})}, 1001);
  CHECK(e.Acked(kPeerA) == 2);  // an honest Ack counts
  e.rep.OnMessage(kPeerA, Ack{Vector({{kSelf, kForged}})}, 1002);
  CHECK(e.Dropped(kPeerA, "reports our op " + std::to_string(kForged)));
  CHECK(e.Acked(kPeerA) == 2);
  CHECK(e.rep.Status(1003).peers[0].state == PeerState::kDown);
}

TEST_CASE("acks: ops issued but not yet sent cannot be acknowledged", "[repl][acks]") {
  Engine e;
  Connect(e.rep, kPeerA, 1000);
  e.Local(3, /*flush=*/true);
  e.Local(2, /*flush=*/false);  // seqs 4 and 5: not a full batch, still unsent
  e.rep.OnMessage(kPeerA, Ack{Vector({{kSelf, 4}})}, 1001);
  CHECK(e.Dropped(kPeerA, "we sent ops up to 3 only"));
  CHECK(e.Acked(kPeerA) == 0);
}

TEST_CASE("acks: a Heartbeat's vector is checked as an Ack's", "[repl][acks]") {
  Engine e;
  Connect(e.rep, kPeerA, 1000);
  e.Local(1, /*flush=*/true);
  e.rep.OnMessage(kPeerA, Heartbeat{1000, Vector({{kSelf, kForged}}), {}}, 1001);
  CHECK(e.Dropped(kPeerA, "reports our op"));
  CHECK(e.Acked(kPeerA) == 0);
}

TEST_CASE("acks: a Hello's vector is checked before anything of it is used", "[repl][acks]") {
  Engine e;
  e.Local(2, /*flush=*/false);
  Connect(e.rep, kPeerA, 1000, Vector({{kSelf, 3}}));
  CHECK(e.Dropped(kPeerA, "reports our op 3"));
  CHECK(e.Acked(kPeerA) == 0);
}

TEST_CASE("acks: a Hello may hold our issued ops unsent (a region seeded from a copy of ours)",
          "[repl][acks]") {
  Engine e;
  e.Local(2, /*flush=*/false);  // issued, never sent: a copy of the data dir carried them
  Connect(e.rep, kPeerA, 1000, Vector({{kSelf, 2}}));
  CHECK(e.observer.Count(EventKind::kProtocolError, kPeerA) == 0);
  CHECK(e.Acked(kPeerA) == 2);
  // Later reports are bounded by that claim and what was sent after it, as any peer's.
  e.rep.OnMessage(kPeerA, Ack{Vector({{kSelf, 3}})}, 1001);
  CHECK(e.Dropped(kPeerA, "reports our op 3"));
}

TEST_CASE("acks: ops recovered at start may have been sent before the restart", "[repl][acks]") {
  RecordingTransport transport;
  CountingApplier applier;
  RecordingObserver observer;
  Replicator rep(EngineConfig(1 << 20), Vector({{kSelf, 2}}), transport, applier, &observer);
  Connect(rep, kPeerB, 1000, Vector({{kSelf, 2}}));
  CHECK(observer.Count(EventKind::kProtocolError, kPeerB) == 0);
  CHECK(rep.Status(1001).peers[1].acked.Get(kSelf) == 2);
  rep.OnMessage(kPeerB, Ack{Vector({{kSelf, 3}})}, 1002);
  CHECK(observer.Count(EventKind::kProtocolError, kPeerB) == 1);
}

TEST_CASE("acks: a snapshot covering our ops beyond what we sent is refused, not installed",
          "[repl][acks]") {
  Engine e;
  Connect(e.rep, kPeerA, 1000);
  SnapshotChunk chunk;
  chunk.last = true;
  chunk.snapshot_id = uint64_t{1} << kSnapshotChunkBits;
  chunk.context.Add(crdt::Dot{kSelf, 1});
  e.rep.OnMessage(kPeerA, chunk, 1001);
  CHECK(e.Dropped(kPeerA, "snapshot: "));
  CHECK(e.Acked(kPeerA) == 0);
}

TEST_CASE("acks: claims about the peer's own ops and a third region's are not refused",
          "[repl][acks]") {
  Engine e;
  Connect(e.rep, kPeerA, 1000);
  e.Local(1, /*flush=*/true);
  // It may be ahead of us on its own ops and on ops it got over its own link to kPeerB.
  e.rep.OnMessage(kPeerA, Ack{Vector({{kSelf, 1}, {kPeerA, 50}, {kPeerB, 70}})}, 1001);
  CHECK(e.observer.Count(EventKind::kProtocolError, kPeerA) == 0);
  CHECK(e.Acked(kPeerA) == 1);
  // Compaction meets those claims with what we applied: the stable vector holds none of them.
  const ReplicatorStatus status = e.rep.Status(1002);
  CHECK(status.stable.Get(kPeerA) == 0);
  CHECK(status.stable.Get(kPeerB) == 0);
}

}  // namespace
}  // namespace lattice::repl
