#pragma once
// StreamEntries: a stream's entries, (ID, dot) -> field/value pairs, in (ID, dot) order, packed
// in blocks as Valkey packs a stream's entries in listpacks (Stream in stream.h holds the merge
// rules; this is only its storage).
//
// A block is one buffer of at most kBlockBytes of coded entries (and at most kBlockEntries),
// each coded against the one before it in the block (the first against zero): a flag byte, the
// ID's milliseconds as a delta (none when equal) and its sequence (a delta when the milliseconds
// are equal, else whole), the dot's replica as an index into the container's replica table
// (none when it is the previous entry's) and its sequence as a zigzag delta, then the fields: a
// count and length-prefixed names and values, or, when the names are the block's first entry's
// (its master entry, flag kSameFields), the values alone. An XADD * of one 5-byte field and a
// 16-byte value from one region costs 21 bytes; a block's header is amortised over its entries.
//
// A removed entry is flagged deleted in place (entries are immutable; a block whose live entries
// fall under half of its coded ones is recoded without them, and a block with none is dropped);
// a block never ends with a deleted entry, so the last entry is known in O(1) and an append codes
// one entry against it. An insert before the last entry (an entry from another region with an
// earlier ID) recodes its block. Lookups binary-search the blocks and scan one.
//
// Iterators yield pair<StreamEntryKey, StreamFieldsView> (views into the blocks) and are
// invalidated by any change. Value type; not thread-safe.

#include <compare>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "lattice/crdt/causal.h"

namespace lattice::crdt {

struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;
  auto operator<=>(const StreamId&) const = default;
  static constexpr StreamId Max() { return StreamId{UINT64_MAX, UINT64_MAX}; }
};

// An entry's identity: its ID, then the dot of the XADD that wrote it (the tie-break of two
// regions' entries with one ID).
struct StreamEntryKey {
  StreamId id;
  Dot dot;
  auto operator<=>(const StreamEntryKey&) const = default;
};

// An entry's field/value pairs as stored: field, value, field, value... as string_views into
// the block (valid until the entries change).
class StreamFieldsView {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using pointer = const std::string_view*;
    using reference = std::string_view;

    iterator() = default;
    std::string_view operator*() const { return current_; }
    iterator& operator++();
    iterator operator++(int) {
      iterator before = *this;
      ++*this;
      return before;
    }
    bool operator==(const iterator& other) const { return index_ == other.index_; }

   private:
    friend class StreamFieldsView;
    void Read();

    const char* own_ = nullptr;     // the next coded string of this entry
    const char* master_ = nullptr;  // the next coded string of the master (kSameFields)
    size_t index_ = 0;
    size_t count_ = 0;
    std::string_view current_;
  };

  StreamFieldsView() = default;
  // `own`: this entry's coded strings (values only when `master` is given: names from there,
  // where name and value alternate).
  StreamFieldsView(const char* own, const char* master, size_t count)
      : own_(own), master_(master), count_(count) {}

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  iterator begin() const;
  iterator end() const {
    iterator it;
    it.index_ = count_;
    return it;
  }
  std::vector<std::string> ToVector() const;
  operator std::vector<std::string>() const { return ToVector(); }  // NOLINT: a decoded copy

  friend bool operator==(const StreamFieldsView& a, const StreamFieldsView& b);
  friend bool operator==(const StreamFieldsView& a, const std::vector<std::string>& b);

 private:
  const char* own_ = nullptr;
  const char* master_ = nullptr;
  size_t count_ = 0;
};

class StreamEntries {
 public:
  static constexpr size_t kBlockBytes = 4096;
  static constexpr size_t kBlockEntries = 128;

  using value_type = std::pair<StreamEntryKey, StreamFieldsView>;
  using Fields = std::vector<std::string>;

  // The integers an entry is coded against (the previous coded entry's; zero at a block's start).
  struct Base {
    StreamId id;
    uint64_t replica = 0;  // index into the replica table
    uint64_t seq = 0;      // the dot's sequence
  };

  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = StreamEntries::value_type;
    using difference_type = std::ptrdiff_t;
    using pointer = const value_type*;
    using reference = const value_type&;

    const_iterator() = default;
    const value_type& operator*() const { return current_; }
    const value_type* operator->() const { return &current_; }
    const_iterator& operator++();
    bool operator==(const const_iterator& other) const {
      return block_ == other.block_ && at_ == other.at_;
    }

   private:
    friend class StreamEntries;
    // Decodes coded entries from next_ on until a live one (or moves to the next block).
    void SeekLive();

    const StreamEntries* owner_ = nullptr;
    size_t block_ = 0;
    size_t at_ = 0;    // the offset of the current entry in its block
    size_t next_ = 0;  // the offset after it
    Base base_;        // the current entry's integers (the next one is coded against them)
    value_type current_;
  };
  using iterator = const_iterator;

  StreamEntries() = default;
  StreamEntries(const StreamEntries&) = default;
  StreamEntries(StreamEntries&&) noexcept = default;
  StreamEntries& operator=(const StreamEntries&) = default;
  StreamEntries& operator=(StreamEntries&&) noexcept = default;

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  const_iterator begin() const;
  const_iterator end() const;
  // The first entry not before / after `key`.
  const_iterator lower_bound(const StreamEntryKey& key) const;
  const_iterator upper_bound(const StreamEntryKey& key) const;
  const_iterator find(const StreamEntryKey& key) const;
  bool contains(const StreamEntryKey& key) const { return find(key) != end(); }
  // The last entry's key (not empty), in O(1).
  StreamEntryKey LastKey() const { return KeyOf(blocks_.back().last); }
  // Calls f(entry) for the entries with key <= `upper`, from the last of them backwards, until
  // f returns false.
  void ScanBackward(const StreamEntryKey& upper,
                    absl::FunctionRef<bool(const const_iterator&)> f) const;

  // Adds an entry (false, and nothing changes, when `key` is held). After the last entry this
  // codes one entry; before it, its block is recoded.
  bool Insert(const StreamEntryKey& key, const Fields& fields) { return InsertOf(key, fields); }
  bool Insert(const StreamEntryKey& key, const StreamFieldsView& fields) {
    return InsertOf(key, fields);
  }
  // Removes the entry (false when not held).
  bool Erase(const StreamEntryKey& key);

  // Bytes held by the blocks (their buffers, headers and the replica table), for the tests.
  size_t AllocatedBytes() const;
  size_t BlockCount() const { return blocks_.size(); }

  // Equal entries, however they are blocked.
  friend bool operator==(const StreamEntries& a, const StreamEntries& b);

 private:
  struct Block {
    Block() = default;
    Block(const Block& other) { *this = other; }
    Block& operator=(const Block& other);
    Block(Block&&) noexcept = default;
    Block& operator=(Block&&) noexcept = default;

    std::string_view bytes() const { return {data.get(), size}; }
    void Append(std::string_view more);
    void Reallocate(size_t new_capacity);

    // Sizes are 64-bit: one entry may pass 4 GiB when the client's query buffer limit allows.
    std::unique_ptr<char[]> data;
    size_t size = 0;
    size_t capacity = 0;
    size_t master_count = 0;  // the master (first) entry's strings
    uint32_t master_at = 0;   // where they start
    uint32_t count = 0;       // coded entries (at most kBlockEntries)
    uint32_t live = 0;        // not deleted
    Base last;                // the last coded entry's integers (it is never deleted)
  };
  // One coded entry as read.
  struct Coded {
    uint8_t flags = 0;
    Base base;
    StreamFieldsView fields;
    size_t end = 0;  // the offset after it
  };
  struct Decoded {
    StreamEntryKey key;
    Fields fields;
  };

  // The entry coded at `at` in block `b`, against `previous`.
  Coded Read(size_t b, size_t at, const Base& previous) const;
  StreamEntryKey KeyOf(const Base& base) const;
  Base BaseOf(const StreamEntryKey& key) const;  // the key is in the replica table
  uint64_t ReplicaIndex(ReplicaId replica);
  // Codes the entry `base` (with `fields`) against `previous` at the end of `out`; `same`: only
  // the values, the names being the block master's.
  // (F: Fields or StreamFieldsView.)
  template <typename F>
  static void Code(const Base& base, const F& fields, const Base& previous, bool same,
                   std::string& out);
  template <typename F>
  static bool SameAsMaster(const Block& block, const F& fields);
  // Appends the entry after the last one of `blocks` (a new block when the last is full).
  template <typename F>
  void AppendTo(std::vector<Block>& blocks, const StreamEntryKey& key, const F& fields);
  template <typename F>
  bool InsertOf(const StreamEntryKey& key, const F& fields);
  // The live entries of block `b`, decoded.
  std::vector<Decoded> DecodeBlock(size_t b) const;
  // Codes `entries` into blocks in place of block `b` (none when empty).
  void Splice(size_t b, const std::vector<Decoded>& entries);
  // The first block whose last key is >= key (> key when `after`; blocks_.size() when none).
  size_t BlockFor(const StreamEntryKey& key, bool after) const;
  // An iterator at block `b`'s first live entry.
  const_iterator BlockBegin(size_t b) const;

  std::vector<Block> blocks_;
  absl::InlinedVector<ReplicaId, 2> replicas_;
  size_t size_ = 0;
};

}  // namespace lattice::crdt
