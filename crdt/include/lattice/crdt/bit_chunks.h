#pragma once
// BitChunks: the chunks of a bitmap written beside its string's base value (docs/semantics.md,
// "Bitmaps"; docs/commands/bitmap.md, "Concurrency"). A string key's value is its string cell (the
// base: whole-value LWW, written by SET, APPEND, BITOP) plus, once a bitmap write (SETBIT,
// SETRANGE, BITFIELD SET/INCRBY) touched it, a map from chunk index to a last-writer-wins register
// (register.h: an observed-remove dot store of (bytes, HLC, dot) entries) of that kChunkBytes-byte
// chunk's bytes. A bitmap write ships only the chunks it changed, each entry holding the chunk's
// bytes as the writer saw them (cut at the string's end) and observing the entries of that chunk
// it replaces; a whole-value write observes every chunk it saw. So writes to different chunks
// both survive and writes to one chunk are LWW per chunk (Shapiro et al. 2011's LWW register
// under a map, as a hash's fields are).
//
// Read (Compose): the base's value (or nothing), with every chunk whose winning entry is newer
// than the base's winning write laid over it; the length is the greatest of the base's length
// and each shown chunk's end, bytes between them zero. A key no bitmap write touched has no
// chunks and stays a plain string. Value type; sorted by index; not thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lattice/crdt/register.h"

namespace lattice::crdt {

// Bytes of one chunk, and the chunks a key keeps beside a base before a bitmap write becomes a
// whole-value write that observes them all.
inline constexpr size_t kChunkBytes = 256;
inline constexpr size_t kChunksMax = 64;
// Chunk indexes end below this (a 4 GiB string): a write past it is a whole-value write, and a
// decoder refuses a chunk past it.
inline constexpr uint64_t kChunkIndexEnd = (uint64_t{1} << 32) / kChunkBytes;

class BitChunks {
 public:
  using Cell = Register<std::string>;
  using Item = std::pair<uint64_t, Cell>;

  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<Item>& items() const { return items_; }
  // The chunk's register (an empty one when the key has none there).
  const Cell& At(uint64_t index) const;
  bool Contains(uint64_t index) const;
  // Whether any chunk holds a live entry (the string exists through its chunks).
  bool AnyAlive() const;
  // The greatest stamp of a chunk's winning entry (Stamp{} when none).
  Stamp NewestStamp() const;

  // Delta of a chunk write: `index` takes `bytes`, observing that chunk's entries.
  BitChunks AssignDelta(uint64_t index, std::string bytes, WriteStamp& stamp,
                        DotContext& context) const;
  // The decoder's and tests' builder: `cell` becomes the register of chunk `index`.
  void Put(uint64_t index, Cell cell);

  void Join(const BitChunks& other, const DotContext& mine, const DotContext& theirs);
  template <typename F>
  void ForEachDot(F&& f) const {
    for (const Item& item : items_) item.second.ForEachDot(f);
  }
  void CollectDots(DotContext& out) const {
    ForEachDot([&](Dot dot) { out.Add(dot); });
  }
  size_t MetadataItems() const;

  // The value `base` (nullopt: no live base, `base_stamp` Stamp{}) with the newer chunks laid
  // over it; nullopt when neither shows anything.
  std::optional<std::string> Compose(std::optional<std::string> base, Stamp base_stamp) const;

  bool operator==(const BitChunks&) const = default;

 private:
  std::vector<Item> items_;  // sorted by index, no empty cells
};

}  // namespace lattice::crdt
