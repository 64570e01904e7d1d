#pragma once
// The wire codec: Message (lattice/repl/messages.h) <-> bytes of one lattice.repl.wire.Envelope
// (replication/proto/lattice.proto; an OpBatch's ops in the compact op encoding of op_codec.cc).
// Frames (frame.h) carry the bytes.
//
// Decode never crashes or asserts, whatever the input: malformed protobuf, an empty oneof, enum
// values out of range, dots with replica 0 or seq 0, parallel arrays of different lengths, an op
// whose dots do not match first_dot/dot_count, and CRDT state the crdt types could not hold all
// return an Error, and the caller closes the link (a peer's bad frame never reaches the state).
// CRDT state is rebuilt only through lattice_crdt's public mutators and join, then exported again
// and compared with what arrived, so whatever is accepted is exactly representable (rules in
// docs/replication-wire.md).
//
// Every part of a Key and a KeyOp round-trips exactly (Decode(Encode(x)) == x), its creation
// cells and key expiry included, long double counter totals bit for bit.
//
// Pure functions; thread-safe. No I/O, no clock.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/result.h"
#include "lattice/repl/messages.h"

namespace lattice::repl {

// An OpBatch travels in the compact op encoding (docs/replication-wire.md, "Ops") as field 8 of
// the Envelope; every other message is protobuf. `sender` is the link's peer: the origin of the
// batch's ops that carry none (OpBatch::sender on the sending side); kNoReplica when unknown,
// and then such an op is refused.
std::string Encode(const Message& message);
Result<Message> Decode(std::string_view bytes, ReplicaId sender = kNoReplica);

// One op alone (an op record: header and body in the compact encoding): the unit of the op log,
// the retained ring and slot migration. Returns op.wire when it is set (see OpRecord::wire), and
// reuses op.body (the bytes an op arrived in) when that is set.
std::string EncodeOp(const OpRecord& op);
// EncodeOp(op) appended to `out`.
void AppendOpRecord(const OpRecord& op, std::string& out);
// EncodeOp of an op given by its parts, appended to `out` (the engine encodes its own ops so,
// without copying them into an OpRecord first).
void AppendOpRecord(uint32_t db, std::string_view key, const crdt::KeyOp& op,
                    const crdt::VersionVector& deps, std::string& out,
                    bool group_continues = false);
// The op log's record of a group (OpRecord::group_continues): its op records in one log record,
// so a write torn inside a group loses the whole group, never part of it. A group record is
// byte 3, then per op a varint length and its op record. Appends `record` to the group record
// being built in `group` (empty: a new one).
void AppendToGroupLogRecord(std::string_view record, std::string& group);
// The op records of one op log record: itself (an op record), or the ops of a group record.
Result<std::vector<std::string_view>> OpsOfLogRecord(std::string_view payload);
// The Envelope of an encoded batch: Encode of the OpBatch it holds, byte for byte.
std::string EncodeOpBatch(const EncodedOpBatch& batch);
// AppendFrame(EncodeOpBatch(batch), out), without the intermediate copy.
void AppendOpBatchFrame(const EncodedOpBatch& batch, std::string& out);
// Sets op.wire to EncodeOp(op) if unset, and returns it.
const std::string& CacheWire(OpRecord& op);
Result<OpRecord> DecodeOp(std::string_view bytes);

// A key of a snapshot chunk by reference: its state stays where it is held.
struct SnapshotKeyRef {
  uint32_t db = 0;
  std::string_view key;
  const crdt::Key* state = nullptr;
};
// Encode(SnapshotChunk{snapshot_id, keys, context, last}), byte for byte, without copying the
// keys' state into a SnapshotChunk first (checkpoints and slot migration snapshots).
std::string EncodeSnapshotChunk(uint64_t snapshot_id, std::span<const SnapshotKeyRef> keys,
                                const crdt::DotContext& context, bool last);

}  // namespace lattice::repl
