#pragma once
// Replicator's per-peer state, shared by replicator.cc (links, messages, timers) and
// replicator_delivery.cc (causal delivery, retained ops, snapshots). Internal to lattice_repl.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lattice/repl/replicator.h"

namespace lattice::repl {

enum class Link { kDown, kHandshaking, kConnected };

struct Replicator::Peer {
  ReplicaId id = kNoReplica;
  std::string region;
  Link link = Link::kDown;
  // Retained ops it lacks were dropped: it needs a snapshot. Cleared once its vector covers
  // floor_ again.
  bool stale = false;

  // Everything it reported (Hello, Ack, Heartbeat), joined: drives log compaction and status.
  crdt::VersionVector acked;
  // acked, reset by each Hello (it may have restarted), plus what its ops and our snapshots
  // imply it holds: ops it covers are not sent to it.
  crdt::VersionVector known;
  // What it reported applied on this connection (its Hello, then Acks and Heartbeats): deps it
  // covers are left out of the ops sent to it. Reset when the link goes down.
  crdt::VersionVector reported;
  // The peers it has a live link to, from its last Heartbeat (nullopt before one on this
  // connection): ops of those origins reach it directly, so they are not relayed to it.
  std::optional<std::vector<ReplicaId>> direct;
  // Retained ops before this position are sent even when `direct` says the peer gets them from
  // their origin: they were in flight when a resend rewind happened, so that copy did not come.
  uint64_t relay_before = 0;
  // Acks usable for StableVector: `stable_basis` joins acks whose sender's own ops we had all
  // applied; `stable_pending` the others, until we have (see Replicator::StableVector).
  crdt::VersionVector stable_basis;
  crdt::VersionVector stable_pending;

  // Streaming: every retained op before `cursor` was sent (or is Delivered); every op before
  // `ack_position` is Delivered. Ops in between are in flight.
  uint64_t cursor = 0;
  uint64_t ack_position = 0;
  int64_t last_progress_ms = 0;  // when in-flight ops last got acknowledged (or started)
  int64_t last_rewind_ms = 0;

  int64_t last_heard_ms = 0;
  int64_t hello_sent_ms = 0;
  int64_t heartbeat_sent_ms = 0;
  int64_t ack_sent_ms = 0;
  // The vector of the last Hello or Ack we sent it (Heartbeats are left out). Repeating it in an
  // Ack is how we ask for a resend (OverflowBuffer): a normal Ack is always newer.
  crdt::VersionVector ack_sent;
  // The vector of its Hello and Acks on this connection, joined (Heartbeats left out, as on
  // its side): an Ack no newer than that is a resend request. Comparing with `known` instead
  // made an ordinary Ack look like one whenever a Heartbeat, or the deps of ops the peer sent,
  // had raised `known` first, and each such Ack rewound the whole window (docs/replication.md).
  crdt::VersionVector last_ack;

  bool Delivered(const RetainedOpView& op) const;  // defined below, after Covers

  // Outgoing snapshot: being taken (`snapshot_source`, chunks sent as they are taken), then in
  // flight until the peer's acknowledgements settle it.
  std::unique_ptr<SnapshotSource> snapshot_source;
  uint64_t snapshot_number = 0;
  uint64_t snapshot_chunk = 0;  // the next chunk's index
  uint64_t snapshot_keys = 0;   // keys sent so far in this snapshot (its size)
  bool snapshot_in_flight = false;
  crdt::VersionVector snapshot_covers;
  int64_t snapshot_sent_ms = 0;
  int64_t acked_grew_ms = 0;        // when `acked` last grew: progress that delays a resend
  uint64_t snapshot_resends = 0;    // snapshots sent since the peer last made progress
  uint64_t snapshot_last_keys = 0;  // size of the last snapshot sent (for the backoff)

  // Incoming snapshot being assembled (per connection).
  std::optional<uint64_t> incoming_number;
  std::map<uint64_t, SnapshotChunk> incoming_chunks;  // by chunk index
  std::optional<uint64_t> incoming_count;
  // The number of the last snapshot from this peer that was installed or found covered: its
  // chunks, resent, are only acknowledged. Kept across connections.
  std::optional<uint64_t> settled_number;

  uint64_t ops_sent = 0;
  uint64_t ops_received = 0;
  uint64_t snapshots_sent = 0;
  uint64_t resends = 0;
  std::string last_error;
};

// The last sequence number an op consumed.
inline uint64_t LastSeq(const OpRecord& op) { return op.op.first_dot.seq + op.op.dot_count - 1; }
inline ReplicaId Origin(const OpRecord& op) { return op.op.first_dot.replica; }
inline bool Covers(const crdt::VersionVector& vector, const OpRecord& op) {
  return vector.Get(Origin(op)) >= LastSeq(op);
}
inline bool Covers(const crdt::VersionVector& vector, const RetainedOpView& op) {
  return vector.Get(op.origin) >= op.last_seq;
}
// Whether `peer` has `op` or will get it without streaming: it acknowledged or otherwise showed
// it (`known`), or a snapshot in flight to it covers it. A snapshot's coverage is kept apart from
// `known` until the peer acknowledges it: a lost snapshot must not hide ops from the stream.
inline bool Replicator::Peer::Delivered(const RetainedOpView& op) const {
  return Covers(known, op) || (snapshot_in_flight && Covers(snapshot_covers, op));
}

// Peer::Delivered over a scan of retained ops in order (the peer's vectors do not change during
// it): `known` is looked up once per run of ops of one origin, not once per op.
class Replicator::DeliveredScan {
 public:
  explicit DeliveredScan(const Peer& peer) : peer_(peer) {}
  bool operator()(const RetainedOpView& op) {
    if (op.origin != origin_) {
      origin_ = op.origin;
      known_ = peer_.known.Get(origin_);
    }
    return op.last_seq <= known_ || (peer_.snapshot_in_flight && Covers(peer_.snapshot_covers, op));
  }

 private:
  const Peer& peer_;
  ReplicaId origin_ = kNoReplica;
  uint64_t known_ = 0;
};

}  // namespace lattice::repl
