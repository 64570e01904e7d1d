#pragma once
// List: the Valkey list type as a replicated sequence. Every element has a unique identity (the
// dot of the write that inserted it) and an immutable position from a dense total order, as in
// Logoot (Weiss, Urso, Molli, "Logoot: a scalable optimistic replication algorithm for
// collaborative editing on P2P networks", 2009): a position is a path of digits (an integer and
// the dot that chose it), compared lexicographically with a prefix before its extensions, and the
// last digit's dot is the element's own, so no two elements share a position. A new position is
// chosen strictly between its neighbours when it is written, so the order of every element
// stays the same in every region no matter which elements were removed meanwhile: removal needs
// no tombstone (unlike RGA) and the list is a causal dot store in the sense of Almeida, Shoker
// and Baquero, "Delta state replicated data types" (2018).
//
// Merge rules:
// - Insert (LPUSH, RPUSH, LINSERT): the element exists while its identity dot is held. Two
//   regions pushing concurrently at the same end both keep their elements; positions that tie
//   on the integer order by dot, so every region interleaves them identically.
// - Remove (LPOP, RPOP, LREM, LTRIM, DEL) is observed-remove: the delta covers the identity dots
//   of the elements the writer saw, so an element a concurrent write inserted survives. Two
//   regions popping concurrently may each return the same element (at-least-once).
// - LSET writes a new value with a fresh dot: last-writer-wins by Stamp (HLC, replica, seq)
//   against concurrent LSETs of the same element; a concurrent remove of the element wins (the
//   element's identity was removed).
//
// Value type; not thread-safe. Invariants: a position's last digit holds the element's identity;
// positions are strictly increasing along the list.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "lattice/crdt/boxed.h"
#include "lattice/crdt/causal.h"

namespace lattice::crdt {

// One step of a position path.
struct ListDigit {
  int64_t n = 0;
  Dot dot;
  auto operator<=>(const ListDigit&) const = default;
};

// A position: the digits before the last (usually none, kept out of line) and the last digit,
// whose dot is the element's identity.
class ListPosition {
 public:
  ListPosition() = default;
  explicit ListPosition(ListDigit last) : last_(last) {}
  ListPosition(std::vector<ListDigit> prefix, ListDigit last);

  Dot id() const { return last_.dot; }
  size_t depth() const { return 1 + prefix_size(); }
  // Digit i of the path (0 <= i < depth()).
  const ListDigit& digit(size_t i) const { return i < prefix_size() ? (*prefix_.get())[i] : last_; }

  friend std::strong_ordering operator<=>(const ListPosition& a, const ListPosition& b);
  friend bool operator==(const ListPosition& a, const ListPosition& b) {
    return (a <=> b) == std::strong_ordering::equal;
  }

 private:
  size_t prefix_size() const { return prefix_.get() != nullptr ? prefix_.get()->size() : 0; }

  ListDigit last_;
  Boxed<std::vector<ListDigit>> prefix_;  // null when the path has one digit
};

// The position strictly between `left` and `right` (nullptr: the list's ends) for a new element
// with identity `dot`. Requires left < right when both are given.
ListPosition PositionBetween(const ListPosition* left, const ListPosition* right, Dot dot);

// An element's value and the stamp of the write that set it (the insert, or the latest LSET).
struct ListValue {
  std::string value;
  uint64_t hlc = 0;
  Dot dot;  // the write that set the value (the identity for an element never LSET)
  bool operator==(const ListValue&) const = default;
};

enum class ListEnd : uint8_t { kHead, kTail };

// The size of one node of Valkey's quicklist (list-max-listpack-size): a list that would pass
// it is a quicklist, else a listpack.
struct ListpackLimits {
  size_t bytes = 8192;
  size_t count = SIZE_MAX;
  // Valkey's quicklistNodeLimit: a count when fill >= 0 (0 counts as 1; the 8 KB safety limit
  // stays), else a size of 4 KB << (-fill - 1), at most 64 KB.
  static ListpackLimits OfFill(int64_t fill) {
    if (fill >= 0) {
      return ListpackLimits{.bytes = 8192, .count = fill == 0 ? 1 : static_cast<size_t>(fill)};
    }
    const int64_t level = fill < -5 ? 4 : -fill - 1;
    return ListpackLimits{.bytes = size_t{4096} << level, .count = SIZE_MAX};
  }
};

// The bytes Valkey's listpack codes `element` in: an integer-looking element as an integer, any
// other as a string, then the entry's back length.
size_t ListpackEntryBytes(std::string_view element);

// Storage: the elements in position order, in chunks of at most kChunkBytes of coded elements
// (as Valkey's quicklist holds listpacks; a list of one chunk is its listpack). Inside a chunk
// every element is coded against the one before it (the first against zero): one varint holding
// the replica (an index into the list's replica table) and five flags, the last digit's integer
// and the identity's sequence as zigzag deltas unless they are the previous element's + 1, the
// HLC as a zigzag delta unless it equals the previous one's, the value's length and bytes, and a
// back length (the element's size as a varint read backwards, as a listpack entry's; a chunk's
// first element has none: it starts at 0). Digits before the last and a value written by LSET
// (its own dot) follow a flag. Consecutive RPUSHes from one region cost 3 bytes besides the value
// (LPUSHes 4: their sequences descend), as a listpack entry costs 2.
//
// The deltas are invertible, so the list keeps the integers of its last element and reads the
// last element, and the one before it, through the back lengths in O(1); the first element of a
// chunk is coded against zero and read at once. So a push or pop at either end codes one or two
// elements and moves the chunk's bytes, never decodes a chunk; only a write in the middle decodes
// and recodes its chunk. Chunk buffers are allocated to the allocator's size classes.
class List {
 public:
  static constexpr size_t kChunkBytes = 2048;

  List() = default;
  List(const List&) = default;
  List(List&&) noexcept = default;
  List& operator=(const List&) = default;
  List& operator=(List&&) noexcept = default;

  bool empty() const { return size_ == 0; }
  size_t Size() const { return size_; }
  // The value at `index` from the head (0-based), or nullopt past the end; valid until the list
  // changes.
  std::optional<std::string_view> At(size_t index) const;
  // Calls f(index, value) for each element starting at `from_end` (index counted from the head
  // either way: ascending from kHead, descending from kTail) until f returns false.
  void Walk(ListEnd from_end, absl::FunctionRef<bool(size_t, std::string_view)> f) const;
  // The values of indexes [start, stop] (inclusive; stop is clamped to the last index).
  std::vector<std::string> Range(size_t start, size_t stop) const;

  // Delta builders: *this is not modified; `context` receives the dots the delta covers, and
  // `stamp` hands out one dot per element written.
  // LPUSH (kHead: each value becomes the new head in turn) / RPUSH (kTail).
  List PushDelta(ListEnd end, const std::vector<std::string>& values, WriteStamp& stamp,
                 DotContext& context) const;
  // LINSERT: `value` before (or after) the element at `index` (which must exist).
  List InsertDelta(size_t index, bool before, std::string_view value, WriteStamp& stamp,
                   DotContext& context) const;
  // LSET of the element at `index` (which must exist).
  List SetDelta(size_t index, std::string_view value, WriteStamp& stamp, DotContext& context) const;
  // Removes the elements at `indexes` (sorted ascending, distinct, all < Size()): LPOP, RPOP,
  // LREM, LTRIM. The delta holds nothing; its context covers what the removed elements held, and
  // `removed` (when given) receives their positions: the hint JoinDelta needs.
  List RemoveDelta(const std::vector<size_t>& indexes, DotContext& context,
                   std::vector<ListPosition>* removed = nullptr) const;
  // PushDelta and RemoveDelta applied to *this for the key's own writes (Key::LEdit): the same
  // state as joining their deltas (JoinDelta), but each end element is decoded once. PushLocal
  // returns the delta PushDelta returns; RemoveLocal adds the removed elements' dots to `context`.
  List PushLocal(ListEnd end, const std::vector<std::string>& values, WriteStamp& stamp,
                 DotContext& context);
  void RemoveLocal(const std::vector<size_t>& indexes, DotContext& context);
  // Every dot the list holds (identities and value writes): what DEL observed.
  void CollectDots(DotContext& out) const;
  // Calls f(position, dot) for every dot the list holds (each element's identity, then its value
  // dot when LSET gave it one), visiting chunks alternately from the head and from the tail
  // inwards, until f returns true (done). A remote pop's dots are found in O(chunk).
  void ScanDotsFromEnds(absl::FunctionRef<bool(const ListPosition&, Dot)> f) const;
  // Calls f(dot) for the dots of the element at `position`, if the list holds it.
  void ForEachDotAt(const ListPosition& position, absl::FunctionRef<void(Dot)> f) const;

  // The join of two states given both sides' contexts: O(size of both).
  void Join(const List& other, const DotContext& mine, const DotContext& theirs);
  // The same result as Join(delta, mine, theirs) when every dot `theirs` covers that *this holds
  // belongs to an element of `delta` or to an element at one of `removed`'s positions (what
  // RemoveDelta reported): O((|delta| + |removed|) x chunk) instead of O(size).
  void JoinDelta(const List& delta, const DotContext& mine, const DotContext& theirs,
                 const std::vector<ListPosition>& removed);
  size_t MetadataItems() const { return size_; }
  // Bytes held by the elements' chunks (their allocations and headers), for the memory tests.
  size_t AllocatedBytes() const;

  // Read-only access to the elements in order (state transfer and tests).
  void ForEachElement(absl::FunctionRef<void(const ListPosition&, const ListValue&)> f) const;
  // Adds an element as state transfer decodes it, in position order (each position greater
  // than the last one added; returns false otherwise and adds nothing).
  bool AppendForDecode(const ListPosition& position, const ListValue& value);

  // OBJECT ENCODING, as Valkey converts (docs/commands/list.md): SettleEncoding, called after
  // each local write, turns the list into a quicklist once it passes `limits` and back into a
  // listpack only once it is within half of them, so a list oscillating around a limit converts
  // once, not on every write. Quicklist() is that state, or a list past `limits` (written by a
  // peer since). Not part of the CRDT state: not compared, encoded or replicated.
  void SettleEncoding(const ListpackLimits& limits);
  bool Quicklist(const ListpackLimits& limits) const;
  // The bytes of one listpack holding every element (ListpackEntryBytes, plus header).
  size_t ListpackBytes() const;

  // Equal elements (positions, values and stamps), however they are chunked.
  friend bool operator==(const List& a, const List& b);

 private:
  struct Element;  // one decoded element (list.cc)
  // The integers an element is coded against: the previous element's (zero at a chunk's start).
  // Unsigned, so the deltas wrap instead of overflowing.
  struct Base {
    uint64_t n = 0;
    uint64_t seq = 0;
    uint64_t hlc = 0;
  };
  // A run of coded elements in a buffer allocated to a size class.
  struct Chunk {
    Chunk() = default;
    Chunk(const Chunk& other) { *this = other; }
    Chunk& operator=(const Chunk& other);
    Chunk(Chunk&&) noexcept = default;
    Chunk& operator=(Chunk&&) noexcept = default;

    std::string_view bytes() const { return {data.get(), size}; }
    void Append(std::string_view more);
    // Replaces bytes [0, length) by `with`.
    void ReplaceFront(size_t length, std::string_view with);
    void Truncate(size_t new_size);

    std::unique_ptr<char[]> data;
    uint32_t size = 0;
    uint32_t capacity = 0;
    uint32_t count = 0;
    uint32_t listpack = 0;  // the elements' ListpackEntryBytes (OBJECT ENCODING)

   private:
    void Reallocate(size_t capacity);
  };

  // Codes `element` against `previous` at the end of `out`: with its back length, unless it is
  // its chunk's first element (`first`; `previous` is then zero), which needs none.
  void Code(const Element& element, const Base& previous, std::string& out, bool first = false);
  void Decode(const Chunk& chunk, std::vector<Element>& out) const;
  // Codes `elements` (in order) into chunks and puts them in place of chunks_[at, at + replace).
  void Splice(size_t at, size_t replace, const std::vector<Element>& elements);
  // Adds one element before every element / after every element.
  void PushFront(const Element& element);
  void PushBack(const Element& element);
  // The first element and the length of its coding (the list is not empty).
  Element FrontElement(size_t* end) const;
  // PushFront when the first element is known: `first`, coded in [0, first_end) of the first
  // chunk. Returns the coded length of the new first element.
  size_t PushFrontOf(const Element& element, const Element& first, size_t first_end);
  // Removes the first / the last element (the list is not empty); `covered` (when given)
  // receives its dots.
  void PopFront(DotContext* covered = nullptr);
  void PopBack(DotContext* covered = nullptr);
  // The first / last element (the list is not empty), in O(1).
  Element First() const;
  Element Last() const;
  // The first element of chunk `c`, and its last (O(1) for the last chunk, else a decode).
  Element FirstOf(size_t c) const;
  Element LastOf(size_t c) const;
  // Removes the element at `position`, if held (O(1) at the ends).
  void RemoveAt(const ListPosition& position);
  // Joins one element of a delta (O(1) before or after every element).
  void JoinElement(const Element& element, const DotContext& mine);
  // The chunk that holds (or would hold) `position`.
  size_t ChunkFor(const ListPosition& position) const;
  // (chunk, offset in it) of the element at `index` (< Size()).
  std::pair<size_t, size_t> Locate(size_t index) const;
  std::vector<Element> Elements() const;
  uint64_t ReplicaIndex(ReplicaId replica);
  // Whether the list passes a quicklist node's count or listpack bytes limit.
  bool Passes(size_t count_limit, size_t bytes_limit) const;
  // Sets tail_ from the last chunk (a decode of it).
  void ResetTail();

  absl::InlinedVector<Chunk, 1> chunks_;
  absl::InlinedVector<ReplicaId, 1> replicas_;  // the replicas named by the chunks, by index
  size_t size_ : 63 = 0;
  size_t quicklist_ : 1 = 0;  // OBJECT ENCODING's state (SettleEncoding)
  Base tail_;                 // the last element's integers
};

}  // namespace lattice::crdt
