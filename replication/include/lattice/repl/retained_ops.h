#pragma once
// The ops a Replicator retains for its peers, as their wire encoding (EncodeOp) in one byte ring
// with an index beside it: what a peer lacks is decided from the index (origin, dot range, HLC)
// and sent as the stored bytes, never decoded. A retained op costs its encoding plus one index
// entry (sizeof(RetainedOpRing::Entry)), instead of a decoded OpRecord and its heap.
//
// Positions: first() .. end() - 1, growing by one per Append for the life of the engine; ops are
// dropped from the front only, in the order they were appended (the engine's causal order).
//
// Ownership: the ring owns its chunks; At() views point into them and stay valid until that op
// is dropped. Not thread-safe (the engine's thread owns it).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string_view>
#include <vector>

#include "lattice/common/assert.h"
#include "lattice/common/ids.h"
#include "lattice/repl/messages.h"

namespace lattice::repl {

// What the engine knows of a retained op without decoding it.
struct RetainedOpView {
  ReplicaId origin = kNoReplica;
  uint64_t first_seq = 0;  // the dots it consumed: first_seq .. last_seq of origin
  uint64_t last_seq = 0;
  uint64_t hlc = 0;
  std::string_view wire;  // EncodeOp of the op
  // OpRecord::group_continues, as the engine hands the op to AppendEncoded (the server's log
  // writes a group as one record); At() does not say (false).
  bool group_continues = false;
};

// Where the engine keeps its retained ops. The default is RetainedOpRing; the server's wraps one
// and logs each op as it is appended (src/store/replication.cc).
class RetainedOps {
 public:
  virtual ~RetainedOps() = default;
  // Keeps an op: its record (op.wire: EncodeOp's bytes, copied) and its index fields.
  virtual void AppendEncoded(const RetainedOpView& op) = 0;
  // AppendEncoded of `op`'s encoding (op.wire when set, else EncodeOp(op)).
  void Append(const OpRecord& op);
  virtual RetainedOpView At(uint64_t position) const = 0;  // first() <= position < end()
  virtual void DropFront() = 0;                            // requires size() > 0
  virtual uint64_t first() const = 0;
  virtual uint64_t end() const = 0;
  // What the retained ops cost: their encodings plus their index entries. The backlog bound
  // (ReplicatorConfig::max_retained_bytes) applies to this.
  virtual uint64_t bytes() const = 0;
  uint64_t size() const { return end() - first(); }
};

// Encoded ops packed into chunks of chunk_bytes (an op larger than that gets a chunk of its
// own), each op contiguous so At() is a view. The chunk freed at the front is reused at the back,
// so a steady backlog allocates nothing: the chunks are a ring. Memory held is bytes() plus at
// most one partly filled chunk and the unused tail of each chunk (less than one op each).
class RetainedOpRing final : public RetainedOps {
 public:
  static constexpr size_t kDefaultChunkBytes = 64 << 10;
  // What an op costs beyond its encoding: the index entry.
  static constexpr size_t kEntryBytes = 48;

  explicit RetainedOpRing(size_t chunk_bytes = kDefaultChunkBytes);
  ~RetainedOpRing() override;

  void AppendEncoded(const RetainedOpView& op) override;
  // Inline: the engine reads every retained op once per peer per pass (the server's wrapper
  // calls it directly).
  RetainedOpView At(uint64_t position) const override {
    LATTICE_ASSERT(position >= first_ && position < end());
    const uint64_t index = head_ + (position - first_);
    const Entry& entry = blocks_[index >> kIndexShift][index & kIndexMask];
    return RetainedOpView{.origin = entry.origin,
                          .first_seq = entry.first_seq,
                          .last_seq = entry.first_seq + entry.dot_count - 1,
                          .hlc = entry.hlc,
                          .wire = std::string_view(entry.data, entry.length)};
  }
  void DropFront() override;
  uint64_t first() const override { return first_; }
  uint64_t end() const override { return first_ + count_; }
  uint64_t bytes() const override { return bytes_; }
  // Bytes allocated for chunks, the spare included (for tests and INFO).
  uint64_t allocated_bytes() const { return allocated_; }
  size_t chunks() const { return chunks_.size(); }

 private:
  struct Chunk {
    std::unique_ptr<char[]> data;
    size_t capacity = 0;
    size_t used = 0;
    size_t live = 0;  // ops in it not yet dropped
  };
  struct Entry {
    ReplicaId origin;
    uint64_t first_seq;
    uint64_t dot_count;
    uint64_t hlc;
    const char* data;  // in its chunk (chunk memory never moves)
    uint32_t length;
    uint32_t chunk;  // low 32 bits of its chunk's serial number (checked by DropFront)
  };
  static_assert(sizeof(Entry) == kEntryBytes);

  Chunk& BackChunkFor(size_t length);
  // The index's blocks: kIndexBlockEntries entries each (a power of two).
  static constexpr uint64_t kIndexShift = 10;
  static constexpr uint64_t kIndexBlockEntries = uint64_t{1} << kIndexShift;
  static constexpr uint64_t kIndexMask = kIndexBlockEntries - 1;

  size_t chunk_bytes_;
  std::deque<Chunk> chunks_;
  uint64_t first_chunk_ = 0;  // serial number of chunks_.front()
  Chunk spare_;               // the last chunk freed, reused before allocating
  // The index: count_ entries in blocks, from offset head_ of blocks_.front(). Growing adds a
  // block and never moves an entry: a ring that doubled copied its whole index into fresh
  // memory (3-6 MB at the storm test's backlog: one op of 10-26 ms, a fresh page costing 14 us
  // on the virtual machines measured). At() is a shift, a mask and two loads (a deque's
  // indexing cost a division and two loads, and At runs per op per peer).
  std::vector<std::unique_ptr<Entry[]>> blocks_;
  std::unique_ptr<Entry[]> spare_block_;  // the last block emptied, reused before allocating
  uint64_t head_ = 0;
  uint64_t count_ = 0;
  uint64_t first_ = 0;
  uint64_t bytes_ = 0;
  uint64_t allocated_ = 0;
};

}  // namespace lattice::repl
