// Replicator: links, handshake, acks, heartbeats, timers and status. Causal delivery, the
// retained ops and snapshots are in replicator_delivery.cc.

#include "lattice/repl/replicator.h"

#include <algorithm>
#include <utility>

#include "lattice/common/assert.h"
#include "lattice/crdt/hlc.h"
#include "lattice/repl/codec.h"
#include "lattice/repl/link_handshake.h"
#include "op_codec.h"
#include "replicator_peer.h"

namespace lattice::repl {

std::string_view EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kPeerConnected:
      return "peer_connected";
    case EventKind::kPeerDisconnected:
      return "peer_disconnected";
    case EventKind::kPeerRefused:
      return "peer_refused";
    case EventKind::kPeerGoodbye:
      return "peer_goodbye";
    case EventKind::kProtocolError:
      return "protocol_error";
    case EventKind::kPeerTimeout:
      return "peer_timeout";
    case EventKind::kPeerStale:
      return "peer_stale";
    case EventKind::kBufferOverflow:
      return "buffer_overflow";
    case EventKind::kSnapshotSent:
      return "snapshot_sent";
    case EventKind::kSnapshotInstalled:
      return "snapshot_installed";
    case EventKind::kSnapshotSkipped:
      return "snapshot_skipped";
    case EventKind::kLostOwnOps:
      return "lost_own_ops";
  }
  return "unknown";
}

std::string_view PeerStateName(PeerState state) {
  switch (state) {
    case PeerState::kDown:
      return "down";
    case PeerState::kHandshaking:
      return "handshaking";
    case PeerState::kConnected:
      return "connected";
    case PeerState::kStale:
      return "stale";
  }
  return "unknown";
}

Replicator::Replicator(ReplicatorConfig config, crdt::VersionVector applied, Transport& transport,
                       Applier& applier, Observer* observer, std::unique_ptr<RetainedOps> retained)
    : config_(std::move(config)),
      transport_(transport),
      applier_(applier),
      observer_(observer),
      retained_(retained != nullptr ? std::move(retained) : std::make_unique<RetainedOpRing>()),
      writer_(std::make_unique<OpBatchWriter>()),
      applied_(std::move(applied)),
      floor_(applied_),
      own_sent_(applied_.Get(config_.replica)) {
  LATTICE_ASSERT(config_.replica != kNoReplica);
  LATTICE_ASSERT(config_.max_retained_ops > 0 && config_.max_batch_ops > 0);
  LATTICE_ASSERT(config_.max_inflight_ops > 0 && config_.max_buffered_ops > 0);
  LATTICE_ASSERT(retained_->size() == 0);
  for (ReplicaId peer : config_.peers) {
    AddPeer(peer);
  }
}

Replicator::~Replicator() = default;

void Transport::SendOps(ReplicaId to, const EncodedOpBatch& batch) {
  Result<Message> decoded = Decode(EncodeOpBatch(batch), batch.sender);
  LATTICE_ASSERT_MSG(decoded.ok(), "an encoded batch of retained ops does not decode");
  // Encoding it again gives the same bytes: the deps left out stay out, the origin is implied.
  std::get<OpBatch>(*decoded).sender = batch.sender;
  Send(to, *decoded);
}

Replicator::Peer* Replicator::FindPeer(ReplicaId replica) {
  auto it = peers_.find(replica);
  return it == peers_.end() ? nullptr : it->second.get();
}

void Replicator::AddPeer(ReplicaId peer) {
  LATTICE_ASSERT(peer != kNoReplica && peer != config_.replica);
  if (peers_.contains(peer)) {
    return;
  }
  auto state = std::make_unique<Peer>();
  state->id = peer;
  state->cursor = state->ack_position = retained_->first();
  peers_.emplace(peer, std::move(state));
}

void Replicator::RemovePeer(ReplicaId peer) {
  Peer* state = FindPeer(peer);
  if (state == nullptr) {
    return;
  }
  if (state->link != Link::kDown) {
    transport_.Close(peer);
  }
  peers_.erase(peer);
  DropAcknowledged();
}

void Replicator::Report(EventKind kind, ReplicaId peer, std::string detail) {
  if (observer_ != nullptr) {
    observer_->OnEvent(Event{kind, peer, std::move(detail)});
  }
}

// Peer input we cannot accept: say why (Goodbye), report it, close the link.
void Replicator::Fail(Peer& peer, EventKind kind, const std::string& reason) {
  peer.last_error = reason;
  transport_.Send(peer.id, Goodbye{reason});
  Report(kind, peer.id, reason);
  MarkDown(peer);
  transport_.Close(peer.id);
}

// Forgets everything tied to the current connection; what the peer acknowledged stays.
void Replicator::MarkDown(Peer& peer) {
  const bool was_connected = peer.link == Link::kConnected;
  peer.link = Link::kDown;
  peer.reported = {};
  peer.direct.reset();
  peer.snapshot_in_flight = false;
  peer.snapshot_source.reset();  // a snapshot being taken for it starts over when it returns
  peer.incoming_number.reset();
  Discard(peer.incoming_chunks);
  peer.incoming_count.reset();
  if (was_connected) {
    AnnounceLinks();
  }
}

// The peers this replica has a live link to, sorted (Heartbeat::connected).
std::vector<ReplicaId> Replicator::Connected() const {
  std::vector<ReplicaId> out;
  for (const auto& [id, peer] : peers_) {
    if (peer->link == Link::kConnected) {
      out.push_back(id);
    }
  }
  return out;
}

void Replicator::SendHeartbeat(Peer& peer) {
  transport_.Send(peer.id, Heartbeat{now_ms_, applied_, Connected()});
  peer.heartbeat_sent_ms = now_ms_;
}

// A link came up or went down: every connected peer learns at once which origins this replica
// now gets directly (they relay the others to it).
void Replicator::AnnounceLinks() {
  for (auto& [id, peer] : peers_) {
    if (peer->link == Link::kConnected) {
      SendHeartbeat(*peer);
    }
  }
}

// A peer's Heartbeat said which origins it gets directly. Ops of an origin it no longer reaches
// were skipped for it: rewind, so they are relayed now.
void Replicator::OnDirectLinks(Peer& peer, const std::vector<ReplicaId>& connected) {
  const bool lost = peer.direct.has_value() &&
                    std::any_of(peer.direct->begin(), peer.direct->end(), [&](ReplicaId origin) {
                      return !std::binary_search(connected.begin(), connected.end(), origin);
                    });
  peer.direct = connected;
  if (lost) {
    peer.cursor = peer.ack_position;
  }
}

void Replicator::OnConnected(ReplicaId peer, int64_t now_ms) {
  now_ms_ = now_ms;
  AddPeer(peer);
  Peer& state = *FindPeer(peer);
  MarkDown(state);  // a second OnConnected is a new connection
  state.link = Link::kHandshaking;
  state.last_heard_ms = now_ms;
  SendHello(state);
}

void Replicator::OnDisconnected(ReplicaId peer, int64_t now_ms) {
  now_ms_ = now_ms;
  Peer* state = FindPeer(peer);
  if (state == nullptr || state->link == Link::kDown) {
    return;
  }
  MarkDown(*state);
  Report(EventKind::kPeerDisconnected, peer, "");
}

void Replicator::SendHello(Peer& peer) {
  transport_.Send(peer.id, Hello{.shard_id = config_.shard_id,
                                 .replica = config_.replica,
                                 .region = config_.region,
                                 .protocol_version = kProtocolVersion,
                                 .applied = applied_});
  peer.hello_sent_ms = now_ms_;
  peer.ack_sent = applied_;  // the Hello reports it as an Ack does
}

void Replicator::SendAck(Peer& peer) {
  transport_.Send(peer.id, Ack{applied_});
  peer.ack_sent = applied_;
  peer.ack_sent_ms = now_ms_;
}

void Replicator::OnMessage(ReplicaId from, const Message& message, int64_t now_ms) {
  OnMessage(from, Message(message), now_ms);  // the engine keeps (buffers, retains) ops
}

void Replicator::OnMessage(ReplicaId from, Message&& message, int64_t now_ms) {
  now_ms_ = std::max(now_ms_, now_ms);
  Peer* peer = FindPeer(from);
  if (peer == nullptr) {
    Report(EventKind::kProtocolError, from, "message from a replica that is not a peer");
    return;
  }
  if (peer->link == Link::kDown) {
    return;  // late delivery from a closed connection
  }
  peer->last_heard_ms = now_ms_;
  if (const auto* hello = std::get_if<Hello>(&message)) {
    OnHello(*peer, *hello);
    return;
  }
  if (const auto* goodbye = std::get_if<Goodbye>(&message)) {
    peer->last_error = goodbye->reason;
    Report(EventKind::kPeerGoodbye, from, goodbye->reason);
    MarkDown(*peer);
    return;
  }
  if (peer->link != Link::kConnected) {
    return;  // overtook the peer's Hello; it will be resent
  }
  if (auto* batch = std::get_if<OpBatch>(&message)) {
    OnOpBatch(*peer, std::move(*batch));
  } else if (const auto* ack = std::get_if<Ack>(&message)) {
    OnAck(*peer, ack->applied, /*is_ack=*/true);
  } else if (const auto* heartbeat = std::get_if<Heartbeat>(&message)) {
    OnDirectLinks(*peer, heartbeat->connected);
    OnAck(*peer, heartbeat->applied, /*is_ack=*/false);
  } else if (auto* chunk = std::get_if<SnapshotChunk>(&message)) {
    OnSnapshotChunk(*peer, std::move(*chunk));
  }
}

std::string Replicator::RefusalOf(const Hello& hello) const {
  return HelloRefusal(config_.shard_id, config_.replica, hello);
}

void Replicator::OnHello(Peer& peer, const Hello& hello) {
  if (std::string refusal = RefusalOf(hello); !refusal.empty()) {
    Fail(peer, EventKind::kPeerRefused, refusal);
    return;
  }
  peer.region = hello.region;
  // A Hello may report our ops up to what we issued, not only what we sent: a region seeded from
  // a copy of our data (docs/operations.md) holds them without our having sent them, and from
  // then on they count as sent. Acks and Heartbeats stay bounded by what was sent.
  if (const uint64_t claimed = hello.applied.Get(config_.replica);
      claimed > own_sent_ && claimed <= applied_.Get(config_.replica)) {
    own_sent_ = claimed;
  }
  if (std::string error = CheckReport(peer, hello.applied); !error.empty()) {
    Fail(peer, EventKind::kProtocolError, error);
    return;
  }
  if (hello.replica != peer.id) {
    Fail(peer, EventKind::kPeerRefused,
         "replica id mismatch: link is to " + std::to_string(peer.id) + ", Hello says " +
             std::to_string(hello.replica));
    return;
  }
  // A second Hello on a live link means ours was lost: answer it, at most once per timeout so
  // that duplicated Hellos cannot ping-pong.
  if (peer.link == Link::kConnected && now_ms_ - peer.hello_sent_ms >= config_.resend_timeout_ms) {
    SendHello(peer);
  }
  if (peer.link == Link::kHandshaking) {
    peer.link = Link::kConnected;
    Report(EventKind::kPeerConnected, peer.id, hello.region);
    AnnounceLinks();  // this peer too: its first Heartbeat on the connection
  }
  // Resume from the peer's vector: it may have restarted and lost ops, so `known` restarts here.
  peer.known = hello.applied;
  peer.reported = hello.applied;
  peer.last_ack = hello.applied;
  peer.cursor = peer.ack_position = retained_->first();
  peer.last_progress_ms = now_ms_;
  OnAck(peer, hello.applied, /*is_ack=*/false);
  if (!floor_.LessOrEqual(hello.applied)) {
    MarkStale(peer);
    SendSnapshot(peer);
  }
  Pump(peer, /*partial=*/true);
}

// An applied vector reported by the peer (Ack, Heartbeat or Hello). An Ack no newer than its
// previous Ack (or Hello) on this connection is a resend request (the peer dropped its buffer,
// OverflowBuffer): rewind. Any other Ack is newer, since a peer acknowledges only what changed.
void Replicator::OnAck(Peer& peer, const crdt::VersionVector& applied, bool is_ack) {
  if (std::string error = CheckReport(peer, applied); !error.empty()) {
    Fail(peer, EventKind::kProtocolError, error);  // nothing of it counts (CRDT.WAIT, compaction)
    return;
  }
  const bool resend_request = is_ack && applied.LessOrEqual(peer.last_ack);
  if (is_ack) {
    peer.last_ack.Join(applied);
  }
  const crdt::VersionVector before = peer.known;
  if (!applied.LessOrEqual(peer.acked)) {
    peer.acked_grew_ms = now_ms_;  // progress: a snapshot resend waits longer
    peer.snapshot_resends = 0;
  }
  peer.acked.Join(applied);
  peer.known.Join(applied);
  peer.reported.Join(applied);
  if (applied.Get(peer.id) <= applied_.Get(peer.id)) {
    peer.stable_basis.Join(applied);
  } else {
    peer.stable_pending.Join(applied);
  }
  if (peer.stale && floor_.LessOrEqual(applied)) {
    peer.stale = false;
    if (peer.snapshot_in_flight) {
      // The snapshot's fate is settled by what the peer acknowledges: if it was lost, the ops
      // it covered and the peer still lacks are streamed again from the first one it lacks.
      peer.snapshot_in_flight = false;
      const uint64_t was = peer.ack_position;
      peer.ack_position = retained_->first();
      AdvanceAckPosition(peer);
      if (peer.ack_position < was) {
        peer.relay_before = std::max(peer.relay_before, peer.cursor);
        peer.cursor = peer.ack_position;
      }
    }
  }
  AdvanceAckPosition(peer);
  const bool progress = !(peer.known == before);
  if (progress) {
    peer.last_progress_ms = now_ms_;
  } else if (resend_request && peer.cursor > peer.ack_position &&
             now_ms_ - peer.last_rewind_ms >= config_.ack_interval_ms) {
    peer.relay_before = std::max(peer.relay_before, peer.cursor);
    peer.cursor = peer.ack_position;
    peer.last_rewind_ms = now_ms_;
    ++peer.resends;
  }
  if (progress) {
    DropAcknowledged();
  }
  Pump(peer, /*partial=*/true);
}

// What a peer may report applied. Of this replica's own ops, nothing beyond the last one handed
// to the transport: an op reaches a peer only from us or through a relay of what we sent. (A
// region that lost ops it had sent, a power cut under appendfsync everysec, is refused here too:
// reusing those seqs would make the regions diverge.) Of its own ops and a third region's, the
// peer may be ahead of us (its own link to that origin), so nothing is refused; a claim beyond
// what we hold counts for nothing, since compaction (DropAcknowledged, StableVector) meets the
// peers' vectors with applied_.
std::string Replicator::CheckReport(const Peer& peer, const crdt::VersionVector& applied) const {
  const uint64_t claimed = applied.Get(config_.replica);
  if (claimed <= own_sent_) {
    return "";
  }
  return "peer (region '" + peer.region + "') reports our op " + std::to_string(claimed) +
         " applied, but we sent ops up to " + std::to_string(own_sent_) + " only (issued " +
         std::to_string(applied_.Get(config_.replica)) +
         "): a forged acknowledgement, or this region lost ops it had sent";
}

void Replicator::Tick(int64_t now_ms) {
  now_ms_ = std::max(now_ms_, now_ms);
  for (auto& [id, peer] : peers_) {
    TickPeer(*peer);
  }
  StepSnapshots();
  DropAcknowledged();
  ForgetDroppedBatches();
  Flush();
}

void Replicator::TickPeer(Peer& peer) {
  if (peer.link == Link::kDown) {
    return;
  }
  if (config_.peer_timeout_ms > 0 && now_ms_ - peer.last_heard_ms >= config_.peer_timeout_ms) {
    peer.last_error = "no message for " + std::to_string(now_ms_ - peer.last_heard_ms) + " ms";
    Report(EventKind::kPeerTimeout, peer.id, peer.last_error);
    MarkDown(peer);
    transport_.Close(peer.id);
    return;
  }
  if (peer.link == Link::kHandshaking) {
    if (now_ms_ - peer.hello_sent_ms >= config_.resend_timeout_ms) {
      SendHello(peer);
    }
    return;
  }
  if (now_ms_ - peer.heartbeat_sent_ms >= config_.heartbeat_interval_ms) {
    SendHeartbeat(peer);
  }
  if (!(peer.ack_sent == applied_) && now_ms_ - peer.ack_sent_ms >= config_.ack_interval_ms) {
    SendAck(peer);
  }
  AdvanceAckPosition(peer);
  if (peer.cursor > peer.ack_position && transport_.QueuedBytes(peer.id) > 0) {
    // What was sent has not all left this process (the link's output buffer): the peer is slow,
    // not losing ops. Resending on top of it only grows that buffer (at 1M elements a resend of
    // the window every 500 ms queued 256 MiB and cut the link), so the timer starts again.
    peer.last_progress_ms = now_ms_;
  }
  if (peer.snapshot_in_flight) {
    // The peer is installing our snapshot: it holds the ops sent since (its buffer) and
    // acknowledges them only at the install's end. Resending the window every timeout would
    // only make both sides decode it again; a lost snapshot is sent again (below), and a resend
    // request (an Ack) still rewinds.
    peer.last_progress_ms = now_ms_;
  }
  if (peer.cursor > peer.ack_position &&
      now_ms_ - peer.last_progress_ms >= config_.resend_timeout_ms) {
    // Lost ops: resend what it has not acknowledged, relays it was expected to get from their
    // origin included (that copy did not come either, or two relayers' windows could each wait
    // for the other's origin forever).
    peer.relay_before = std::max(peer.relay_before, peer.cursor);
    peer.cursor = peer.ack_position;
    peer.last_progress_ms = peer.last_rewind_ms = now_ms_;
    ++peer.resends;
  }
  // A snapshot in flight is sent again only when the peer has not acknowledged it, nor made any
  // other progress, for longer than installing one of its size takes (SnapshotResendAfterMs).
  if (peer.stale && peer.snapshot_source == nullptr &&
      (!peer.snapshot_in_flight || now_ms_ - std::max(peer.snapshot_sent_ms, peer.acked_grew_ms) >=
                                       SnapshotResendAfterMs(peer))) {
    SendSnapshot(peer);
  }
}

crdt::VersionVector Replicator::StableVector() const {
  crdt::VersionVector stable = applied_;
  for (const auto& [id, peer] : peers_) {
    crdt::VersionVector usable = peer->stable_basis;
    if (peer->stable_pending.Get(id) <= applied_.Get(id)) {
      usable.Join(peer->stable_pending);
    }
    stable.Meet(usable);
  }
  return stable;
}

std::string Replicator::PeerRegion(ReplicaId id) const {
  auto it = peers_.find(id);
  return it == peers_.end() ? std::string() : it->second->region;
}

std::vector<std::pair<ReplicaId, crdt::VersionVector>> Replicator::ConnectedAcks() const {
  std::vector<std::pair<ReplicaId, crdt::VersionVector>> out;
  for (const auto& [id, peer] : peers_) {
    if (peer->link == Link::kConnected) out.emplace_back(id, peer->acked);
  }
  return out;
}

std::vector<std::pair<ReplicaId, crdt::VersionVector>> Replicator::PeerAcks() const {
  std::vector<std::pair<ReplicaId, crdt::VersionVector>> out;
  out.reserve(peers_.size());
  for (const auto& [id, peer] : peers_) {
    out.emplace_back(id, peer->acked);
  }
  return out;
}

ReplicatorStatus Replicator::Status(int64_t now_ms) const {
  ReplicatorStatus status{.replica = config_.replica,
                          .region = config_.region,
                          .applied = applied_,
                          .stable = StableVector(),
                          .backlog_ops = retained_->size(),
                          .backlog_bytes = retained_->bytes(),
                          .buffered_ops = buffered_.size(),
                          .duplicate_ops = duplicate_ops_,
                          .peers = {}};
  for (const auto& [id, peer] : peers_) {
    PeerStatus& out = status.peers.emplace_back();
    out.replica = id;
    out.region = peer->region;
    out.state = peer->stale                        ? PeerState::kStale
                : peer->link == Link::kConnected   ? PeerState::kConnected
                : peer->link == Link::kHandshaking ? PeerState::kHandshaking
                                                   : PeerState::kDown;
    out.acked = peer->acked;
    for (uint64_t p = retained_->first(); p < retained_->end(); ++p) {
      const RetainedOpView op = retained_->At(p);
      if (Covers(peer->acked, op)) {
        continue;
      }
      if (out.lag_ops++ == 0) {
        out.lag_ms =
            std::max<int64_t>(0, now_ms - static_cast<int64_t>(crdt::HlcPhysicalMs(op.hlc)));
      }
    }
    out.ops_sent = peer->ops_sent;
    out.ops_received = peer->ops_received;
    out.snapshots_sent = peer->snapshots_sent;
    out.resends = peer->resends;
    out.last_error = peer->last_error;
  }
  return status;
}

}  // namespace lattice::repl
