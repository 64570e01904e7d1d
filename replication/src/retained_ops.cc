#include "lattice/repl/retained_ops.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "lattice/common/assert.h"
#include "lattice/repl/codec.h"

namespace lattice::repl {

RetainedOpRing::RetainedOpRing(size_t chunk_bytes) : chunk_bytes_(chunk_bytes) {
  LATTICE_ASSERT(chunk_bytes_ > 0 && chunk_bytes_ <= UINT32_MAX);
}

RetainedOpRing::~RetainedOpRing() = default;

// The chunk the next op of `length` bytes goes into: the back one if it fits there, else a new
// one (the spare when it is large enough, so a steady backlog cycles through the same memory).
RetainedOpRing::Chunk& RetainedOpRing::BackChunkFor(size_t length) {
  if (!chunks_.empty() && chunks_.back().capacity - chunks_.back().used >= length) {
    return chunks_.back();
  }
  Chunk chunk;
  if (spare_.data != nullptr && spare_.capacity >= length) {
    chunk = std::exchange(spare_, Chunk{});
  } else {
    chunk.capacity = std::max(chunk_bytes_, length);
    chunk.data = std::make_unique_for_overwrite<char[]>(chunk.capacity);
    allocated_ += chunk.capacity;
  }
  chunk.used = chunk.live = 0;
  chunks_.push_back(std::move(chunk));
  return chunks_.back();
}

void RetainedOps::Append(const OpRecord& op) {
  std::string encoded;
  const std::string_view wire =
      op.wire != nullptr ? std::string_view(*op.wire) : std::string_view(encoded = EncodeOp(op));
  AppendEncoded(RetainedOpView{.origin = op.op.first_dot.replica,
                               .first_seq = op.op.first_dot.seq,
                               .last_seq = op.op.first_dot.seq + op.op.dot_count - 1,
                               .hlc = op.op.hlc,
                               .wire = wire});
}

void RetainedOpRing::AppendEncoded(const RetainedOpView& op) {
  const std::string_view wire = op.wire;
  LATTICE_ASSERT_MSG(wire.size() <= UINT32_MAX, "an encoded op is limited to 4 GiB");
  LATTICE_ASSERT(op.last_seq >= op.first_seq);
  Chunk& chunk = BackChunkFor(wire.size());
  if (!wire.empty()) {
    std::memcpy(chunk.data.get() + chunk.used, wire.data(), wire.size());
  }
  const uint64_t index = head_ + count_;
  if ((index >> kIndexShift) == blocks_.size()) {
    blocks_.push_back(spare_block_ != nullptr
                          ? std::move(spare_block_)
                          : std::make_unique_for_overwrite<Entry[]>(kIndexBlockEntries));
  }
  blocks_[index >> kIndexShift][index & kIndexMask] =
      Entry{.origin = op.origin,
            .first_seq = op.first_seq,
            .dot_count = op.last_seq - op.first_seq + 1,
            .hlc = op.hlc,
            .data = chunk.data.get() + chunk.used,
            .length = static_cast<uint32_t>(wire.size()),
            .chunk = static_cast<uint32_t>(first_chunk_ + chunks_.size() - 1)};
  ++count_;
  chunk.used += wire.size();
  ++chunk.live;
  bytes_ += wire.size() + kEntryBytes;
}

void RetainedOpRing::DropFront() {
  LATTICE_ASSERT(count_ > 0);
  const Entry& entry = blocks_.front()[head_];
  LATTICE_ASSERT(entry.chunk == static_cast<uint32_t>(first_chunk_));
  bytes_ -= entry.length + kEntryBytes;
  Chunk& chunk = chunks_.front();
  ++head_;
  --count_;
  ++first_;
  // An emptied block goes (kept as the spare): a backlog that drained gives back the index a
  // burst grew, one block at a time.
  if (head_ == kIndexBlockEntries || count_ == 0) {
    spare_block_ = std::move(blocks_.front());
    blocks_.erase(blocks_.begin());
    head_ = 0;
  }
  if (--chunk.live > 0) {
    return;
  }
  // Its last op is gone: keep it as the spare if it is of the regular size (an oversized one,
  // made for one large op, is released rather than held for good).
  Chunk freed = std::move(chunk);
  chunks_.pop_front();
  ++first_chunk_;
  if (spare_.data == nullptr && freed.capacity == chunk_bytes_) {
    spare_ = std::move(freed);
    return;
  }
  allocated_ -= freed.capacity;  // released as `freed` goes out of scope
}

}  // namespace lattice::repl
