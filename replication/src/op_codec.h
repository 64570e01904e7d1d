#pragma once
// The compact op encoding (op_codec.cc) as codec.cc uses it. Internal to lattice_repl.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lattice/common/result.h"
#include "lattice/repl/messages.h"

namespace lattice::repl {

// The body of an op (db, key, kind, policies, context, payload), as EncodeOp writes it.
void AppendOpBody(uint32_t db, std::string_view key, const crdt::KeyOp& op, std::string& out,
                  bool group_continues = false);
// Sets or clears the "more ops of this group follow" bit of the op record at `offset` in
// `records` (EncodeOp's bytes, as this replica wrote them: asserts they parse).
void SetGroupContinues(std::string& records, size_t offset, bool group_continues);
// The payload of Envelope.ops: ops' bodies as stored, behind headers coded against the batch.
void AppendOpBatch(const OpBatch& batch, std::string& out);
// Writes the ops of an OpBatch (AppendOpBatch's bytes after the leading count) from op records
// as stored (EncodeOp's bytes): each record's header is read and coded against the batch and the
// link, its body copied as it is, never decoded. Reused from batch to batch, it allocates nothing
// once its buffers have grown.
class OpBatchWriter {
 public:
  // Begins a batch from `sender` to a receiver that reported `receiver_has` on this connection
  // (read by reference until the next Start).
  void Start(ReplicaId sender, const crdt::VersionVector& receiver_has);
  // One op record (asserts it parses: records come from this replica's own retained ops).
  void Add(std::string_view record);
  uint64_t count() const { return count_; }
  std::string_view ops() const { return ops_; }
  // Whether the bytes are the same for any receiver: no op had a dep beyond its origin's implied
  // entry (only those are coded against receiver_has).
  bool receiver_free() const { return receiver_free_; }

 private:
  std::string ops_;
  std::vector<std::pair<ReplicaId, uint64_t>> deps_;  // of the record being added
  const crdt::VersionVector* receiver_has_ = nullptr;
  ReplicaId sender_ = kNoReplica;
  ReplicaId origin_ = kNoReplica;  // of the previous op
  uint64_t last_seq_ = 0;
  uint64_t hlc_ = 0;
  uint64_t count_ = 0;
  bool receiver_free_ = true;
};

// `sender`: the link's peer, the origin of ops that travel without one (kNoReplica: none may).
Result<OpBatch> DecodeOpBatch(std::string_view bytes, ReplicaId sender);

}  // namespace lattice::repl
