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
// chunks and stays a plain string.
//
// Field counters (BITFIELD INCRBY with OVERFLOW WRAP): a map from a field (bit offset, width;
// the field inside one chunk) to a PN-counter register (register.h: one cumulative increment
// chain per replica and epoch, holding no entries). An increment ships only its chain's new
// total, so concurrent increments of one field all count, modulo 2^width as WRAP does (wrapping
// addition commutes). A chunk write observes (resets) the counters of its chunk, a whole-value
// write or DEL every counter, each by a tombstone recording the totals it saw (the register's
// remove), so an increment it did not see still counts over whatever the bits show, as INCR
// over a concurrent SET. Read: after the chunks, each counter with unobserved increments adds
// their sum (mod 2^width) to its field's bits, growing the value to the field's end; counters
// apply in (offset, width) order. Value type; sorted by index and field; not thread-safe.

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
// Field counters a key keeps: an increment of a new field past this is a chunk write instead.
inline constexpr size_t kCountersMax = 64;

// A BITFIELD field merged as a counter: `bits` (1..64) bits from bit `offset`, within one chunk.
struct BitField {
  uint64_t offset = 0;
  uint32_t bits = 0;
  uint64_t Chunk() const { return offset / (kChunkBytes * 8); }
  // The field lies in one chunk below kChunkIndexEnd, with a width of 1..64.
  bool Valid() const {
    return bits >= 1 && bits <= 64 && Chunk() < kChunkIndexEnd &&
           (offset + bits - 1) / (kChunkBytes * 8) == Chunk();
  }
  bool Overlaps(const BitField& other) const {
    return offset < other.offset + other.bits && other.offset < offset + bits;
  }
  auto operator<=>(const BitField&) const = default;
};

class BitChunks {
 public:
  using Cell = Register<std::string>;
  using Item = std::pair<uint64_t, Cell>;
  // A field counter's register: increments and the tombstones of the writes that reset them.
  using Counter = Register<std::string>;
  using CounterItem = std::pair<BitField, Counter>;

  bool empty() const { return items_.empty() && counters_.empty(); }
  // Chunks (not counters).
  size_t size() const { return items_.size(); }
  const std::vector<Item>& items() const { return items_; }
  const std::vector<CounterItem>& counters() const { return counters_; }
  const Counter& CounterAt(const BitField& field) const;
  // Whether an increment of `field` may merge as a counter here: a valid field, no counter of
  // another field overlapping it with live increments (their order would then matter), and room
  // for it among kCountersMax.
  bool CounterFits(const BitField& field) const;
  // The chunk's register (an empty one when the key has none there).
  const Cell& At(uint64_t index) const;
  bool Contains(uint64_t index) const;
  // Whether any chunk holds a live entry or any counter unobserved increments (the string
  // exists through them).
  bool AnyAlive() const;
  // The greatest stamp of a chunk's winning entry (Stamp{} when none).
  Stamp NewestStamp() const;

  // Delta of a chunk write: `index` takes `bytes`, observing that chunk's entries and resetting
  // the counters of its fields (the bytes hold what they added).
  BitChunks AssignDelta(uint64_t index, std::string bytes, WriteStamp& stamp,
                        DotContext& context) const;
  // The chunk write in place (Key::WriteBitmapWindow's fast path), for a chunk that PlainChunk:
  // its register holds at most one entry and nothing else, and no counter lies in the chunk.
  // AssignInPlace returns AssignDelta's delta for it and makes it the chunk's register, which
  // is what joining that delta gives (its context covers the chunk's dots and the new one only),
  // reusing the register's buffer.
  bool PlainChunk(uint64_t index) const;
  Cell AssignInPlace(uint64_t index, std::string_view bytes, WriteStamp& stamp,
                     DotContext& context);
  // Join(delta) for a delta holding only the counter `cell` of `field`, whose context `theirs`
  // covers no dot of another chunk or counter here (an increment's: IncrementDelta): only that
  // counter changes, so only it is joined, as Join does it.
  void JoinCounter(const BitField& field, Counter cell, const DotContext& mine,
                   const DotContext& theirs);
  // IncrementDelta's one counter register (the delta holds it under `field`).
  Counter IncrementCounter(const BitField& field, uint64_t by, WriteStamp& stamp,
                           DotContext& context) const;
  // Delta of a whole-value write or DEL: observes every chunk and resets every counter.
  BitChunks RemoveDelta(WriteStamp& stamp, DotContext& context) const;
  // Delta of a WRAP increment of `field` by `by` (two's complement; only by mod 2^bits counts):
  // this replica's chain on the counter's epoch gets the new total (wrapping mod 2^64).
  BitChunks IncrementDelta(const BitField& field, uint64_t by, WriteStamp& stamp,
                           DotContext& context) const;
  // The decoder's and tests' builders: `cell` becomes the register of chunk `index`, `counter`
  // the counter of `field`.
  void Put(uint64_t index, Cell cell);
  void PutCounter(const BitField& field, Counter counter);

  // Joins index by index and field by field, in place: an item only this side holds is joined
  // (with an empty one) only when `theirs` covers one of its dots, so a delta naming one chunk
  // rebuilds that chunk alone. The same result as joining every item.
  void Join(const BitChunks& other, const DotContext& mine, const DotContext& theirs);
  template <typename F>
  void ForEachDot(F&& f) const {
    for (const Item& item : items_) item.second.ForEachDot(f);
    for (const CounterItem& item : counters_) item.second.ForEachDot(f);
  }
  void CollectDots(DotContext& out) const {
    ForEachDot([&](Dot dot) { out.Add(dot); });
  }
  size_t MetadataItems() const;

  // The value `base` (nullopt: no live base, `base_stamp` Stamp{}) with the newer chunks laid
  // over it, then the live counters added; nullopt when none of them shows anything.
  std::optional<std::string> Compose(std::optional<std::string> base, Stamp base_stamp) const;
  // Compose's length without composing: `base_size` (nullopt: no base), and the end of each
  // chunk shown over it and of each counter's field with unobserved increments.
  size_t ComposedSize(std::optional<size_t> base_size, Stamp base_stamp) const;
  // Whether a chunk or a counter lies in chunks [first, last] (if not, the base alone shows).
  bool AnyIn(uint64_t first, uint64_t last) const;
  // Compose's bytes [begin, end) into `out`, reading only the chunks and counters there: `begin`
  // a multiple of kChunkBytes and `end` one too or ComposedSize (a counter's field lies in one
  // chunk, so those of the range's chunks are all inside it). `base` is the whole base ("" when
  // none), bytes past its end are zero.
  void ComposeRange(std::string_view base, Stamp base_stamp, size_t begin, size_t end,
                    std::string& out) const;

  bool operator==(const BitChunks&) const = default;

 private:
  std::vector<Item> items_;            // sorted by index, no empty cells
  std::vector<CounterItem> counters_;  // sorted by field, no empty registers
};

}  // namespace lattice::crdt
