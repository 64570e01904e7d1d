#pragma once
// The compact op encoding (op_codec.cc) as codec.cc uses it. Internal to lattice_repl.

#include <string>
#include <string_view>

#include "lattice/common/result.h"
#include "lattice/repl/messages.h"

namespace lattice::repl {

// The body of an op (db, key, kind, policies, context, payload), as EncodeOp writes it.
void AppendOpBody(const OpRecord& op, std::string& out);
// The payload of Envelope.ops: ops' bodies as stored, behind headers coded against the batch.
void AppendOpBatch(const OpBatch& batch, std::string& out);
// `sender`: the link's peer, the origin of ops that travel without one (kNoReplica: none may).
Result<OpBatch> DecodeOpBatch(std::string_view bytes, ReplicaId sender);

}  // namespace lattice::repl
