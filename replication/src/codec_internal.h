#pragma once
// Shared by codec.cc (protobuf messages, key state) and op_codec.cc (the compact op encoding).
// Internal to lattice_repl.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lattice/common/result.h"
#include "lattice/crdt/key.h"

// Returns the error of a Result-returning expression from the enclosing function (both codecs).
#define CODEC_RETURN_IF_ERROR(expr)            \
  do {                                         \
    auto codec_status = (expr);                \
    if (!codec_status.ok()) {                  \
      return Unexpected(codec_status.error()); \
    }                                          \
  } while (false)

namespace lattice::repl::detail {

// Sequence numbers count one replica's writes: 2^62 is unreachable, and the bound keeps every
// seq + small constant and first_dot.seq + dot_count free of overflow.
inline constexpr uint64_t kSeqMax = uint64_t{1} << 62;

// A dot with replica != 0 and 1 <= seq <= kSeqMax, or an error.
Result<crdt::Dot> CheckedDot(ReplicaId replica, uint64_t seq);

// A whole crdt::Key as the protobuf wire::Key bytes, and back through the checked rebuild
// (docs/replication-wire.md, "Validation"): the general form of an op's delta.
std::string EncodeKeyState(const crdt::Key& key);
Result<crdt::Key> DecodeKeyState(std::string_view bytes);

// The deltas of the common writes, rebuilt by the mutator that makes each (canonical by
// construction: no re-export is needed). Every dot must be valid (CheckedDot).
crdt::Key StringEntryDelta(const std::string& value, uint64_t hlc, crdt::Dot dot);
crdt::Key IncrementDelta(crdt::Dot dot, crdt::Dot epoch, int64_t total);
crdt::Key HashEntryDelta(const std::string& field, const std::string& value, uint64_t hlc,
                         crdt::Dot dot);
// Members sorted by name and distinct, each with its one add dot.
crdt::Key SetAddsDelta(const std::vector<std::pair<std::string, crdt::Dot>>& members);
crdt::Key ScoreEntryDelta(const std::string& member, double score, uint64_t hlc, crdt::Dot dot);

// An op's delta holds only its own dots and its context covers them (codec.cc).
Result<void> CheckOpDots(const crdt::KeyOp& op);

}  // namespace lattice::repl::detail
