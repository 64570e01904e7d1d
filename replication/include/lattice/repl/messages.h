#pragma once
// The messages replicas of one shard exchange, as plain C++ values. The wire codec
// (lattice/repl/codec.h) turns them into protobuf frames (replication/proto/) and back; the
// protocol engine (lattice/repl/replicator.h) consumes and produces them without any I/O. Value
// types; thread-compatible.
//
// Causality: every op names its origin replica and the dots it consumed (KeyOp::first_dot,
// dot_count: seq first_dot.seq .. first_dot.seq + dot_count - 1 of the origin), and `deps`, the
// origin's applied version vector when it made the op. A receiver applies an op only once its own
// applied vector covers `deps` (and the origin's earlier seqs), buffering it otherwise.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "lattice/common/ids.h"
#include "lattice/crdt/causal.h"
#include "lattice/crdt/key.h"

namespace lattice::repl {

// 2: compact op encoding (docs/replication-wire.md), Heartbeat.connected. 3: the list push op
// kind. 4: op groups (OpRecord::group_continues). A peer speaking another version is refused in
// the Hello.
inline constexpr uint32_t kProtocolVersion = 4;

// One op as shipped: where it applies (db, key), what it is, and what it depended on.
struct OpRecord {
  uint32_t db = 0;
  std::string key;
  crdt::KeyOp op;            // op.first_dot.replica is the origin
  crdt::VersionVector deps;  // the origin's applied vector when the op was made
  // More ops of this op's group follow: the ops of one script, EXEC or multi-key command, made
  // back to back by the origin (consecutive seqs), which a receiver applies only all together
  // (docs/replication.md, "Groups"). The last op of a group, and every op alone, has it false.
  bool group_continues = false;
  // Optional cache of EncodeOp(*this), set once the record is final (the server sets it when it
  // logs an op) and shared by copies: the op log, every peer's batches and relays then reuse one
  // encoding. Not part of the value; whoever changes a field after setting it must reset it.
  // The engine sends retained ops as shells: `wire` set, and of the rest only op.first_dot,
  // op.dot_count and op.hlc (retained ops are kept encoded, retained_ops.h). Encode, EncodeOp and
  // the frames built from them are the same bytes as for the full record; a transport that hands
  // messages over without encoding them must decode shells first (DecodeOp(*wire)).
  std::shared_ptr<const std::string> wire;
  // Set by the decoder of an OpBatch: the op's body (db, key, delta, context, policies) exactly
  // as it arrived. EncodeOp then adds only the header (origin, dots, HLC, deps), so a peer logs
  // and relays the bytes it received instead of encoding the op again. Not part of the value;
  // reset it when changing db, key or op.
  std::string body;
  bool operator==(const OpRecord& other) const {
    return db == other.db && key == other.key && op == other.op && deps == other.deps &&
           group_continues == other.group_continues;
  }
};

// What applying the op costs, about: its delta's elements and their metadata, plus one. The
// unit of the engine's and the peer links' per-turn bounds (Replicator::Drain,
// ReplicatorConfig::max_drain_items), as of snapshot slices'.
inline size_t OpItems(const OpRecord& op) { return 1 + op.op.delta.MetadataItems(); }

// Optional features a replica announces in its Hello (Hello::features, a bit set). Additive: a
// peer that does not announce one is never sent its messages, so a feature needs no new
// protocol version.
inline constexpr uint32_t kFeaturePubSub = 1U << 0;  // accepts Publish

// First message on a link, both directions. A receiver refuses a peer whose shard id differs,
// whose protocol version it does not speak, or whose replica id equals its own.
struct Hello {
  std::string shard_id;
  ReplicaId replica = kNoReplica;
  std::string region;
  uint32_t protocol_version = kProtocolVersion;
  crdt::VersionVector applied;  // what the sender has applied: the peer resumes from here
  // Set by the transport on a link's first Hello when a shard secret is configured: the nonce
  // the peer's LinkProof must cover. Empty otherwise; the engine ignores it.
  std::string auth_nonce;
  uint32_t features = 0;  // kFeature* bits
  bool operator==(const Hello&) const = default;
};

// The transport's proof that the sender knows the shard secret, sent once after the peer's
// Hello (src/net/tls.h says how it is computed). Never reaches the engine before the link is
// accepted; the engine ignores one that arrives later.
struct LinkProof {
  std::string proof;
  bool operator==(const LinkProof&) const = default;
};

// Ops in causal order for the receiver (each origin's ops in sequence order).
// Sender-side hints, not on the wire: `sender` is the sending replica (ops of its own travel
// without their origin id; Decode gets it from the link), and `receiver_has` what the receiver
// reported applied on this connection (deps it covers are left out: the receiver fills them in
// from its own applied vector, Replicator::OnOpBatch).
struct OpBatch {
  std::vector<OpRecord> ops;
  ReplicaId sender = kNoReplica;
  crdt::VersionVector receiver_has;
  bool operator==(const OpBatch& other) const { return ops == other.ops; }
};

// An OpBatch already encoded: how the engine streams retained ops (their stored bytes, never
// decoded). `ops` is the batch's `count` ops in the compact encoding, coded against `sender` and
// the receiver (docs/replication-wire.md, "Batch"): Envelope.ops without its leading count.
// codec.h frames it (AppendOpBatchFrame) or encodes it as an Envelope (EncodeOpBatch). A view:
// valid during the Transport call that receives it.
struct EncodedOpBatch {
  ReplicaId sender = kNoReplica;
  uint64_t count = 0;
  std::string_view ops;
};

// The receiver's applied vector: the sender may drop ops it covers once every peer acked them.
struct Ack {
  crdt::VersionVector applied;
  bool operator==(const Ack&) const = default;
};

struct Heartbeat {
  int64_t sender_time_ms = 0;
  crdt::VersionVector applied;
  // The peers the sender has a live link to (sorted): ops of those origins reach it directly,
  // so nobody relays them to it (docs/replication.md, "Relays").
  std::vector<ReplicaId> connected;
  bool operator==(const Heartbeat&) const = default;
};

// A state snapshot, for a peer behind the retained log: chunks of keys, then the vector the
// snapshot covers. The receiver joins each key with Key::Join and then its context.
struct SnapshotKey {
  uint32_t db = 0;
  std::string key;
  crdt::Key state;
  bool operator==(const SnapshotKey&) const = default;
};
struct SnapshotChunk {
  uint64_t snapshot_id = 0;
  std::vector<SnapshotKey> keys;
  bool last = false;
  crdt::DotContext context;  // set on the last chunk: everything the snapshot covers
  bool operator==(const SnapshotChunk&) const = default;
};

// A peer closes a link with a reason (wrong shard, bad frame, ...), logged by the other side.
struct Goodbye {
  std::string reason;
  bool operator==(const Goodbye&) const = default;
};

// A Pub/Sub message published in the sender's region, for the receiver's local subscribers
// (docs/semantics.md, "Pub/Sub across regions"). Sent only to peers whose Hello announced
// kFeaturePubSub, on the live link, once: never logged, retried or relayed. The engine ignores
// it; server::Replication hands it to the server.
struct Publish {
  std::string channel;
  std::string message;
  bool sharded = false;  // SPUBLISH
  bool operator==(const Publish&) const = default;
};

using Message =
    std::variant<Hello, OpBatch, Ack, Heartbeat, SnapshotChunk, Goodbye, LinkProof, Publish>;

}  // namespace lattice::repl
