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
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
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

class List {
 public:
  bool empty() const { return elements_.empty(); }
  size_t Size() const { return elements_.size(); }
  // The value at `index` from the head (0-based), or nullptr past the end. O(index).
  const std::string* At(size_t index) const;
  // Calls f(index, value) for each element starting at `from_end` (index counted from the head
  // either way: ascending from kHead, descending from kTail) until f returns false.
  void Walk(ListEnd from_end, absl::FunctionRef<bool(size_t, const std::string&)> f) const;
  // The values of indexes [start, stop] (inclusive, already clamped by the caller).
  std::vector<std::string> Range(size_t start, size_t stop) const;

  // Delta builders: *this is not modified; `context` receives the dots the delta covers, and
  // `stamp` hands out one dot per element written.
  // LPUSH (kHead: each value becomes the new head in turn) / RPUSH (kTail).
  List PushDelta(ListEnd end, const std::vector<std::string>& values, WriteStamp& stamp,
                 DotContext& context) const;
  // LINSERT: `value` before (or after) the element at `index` (which must exist).
  List InsertDelta(size_t index, bool before, std::string value, WriteStamp& stamp,
                   DotContext& context) const;
  // LSET of the element at `index` (which must exist).
  List SetDelta(size_t index, std::string value, WriteStamp& stamp, DotContext& context) const;
  // Removes the elements at `indexes` (sorted ascending, distinct, all < Size()): LPOP, RPOP,
  // LREM, LTRIM. The delta holds nothing; its context covers what the removed elements held.
  List RemoveDelta(const std::vector<size_t>& indexes, DotContext& context) const;
  // Every dot the list holds (identities and value writes): what DEL observed.
  void CollectDots(DotContext& out) const;

  void Join(const List& other, const DotContext& mine, const DotContext& theirs);
  size_t MetadataItems() const { return elements_.size(); }

  // Read-only access to the elements in order (state transfer and tests).
  void ForEachElement(absl::FunctionRef<void(const ListPosition&, const ListValue&)> f) const;
  // Adds an element as state transfer decodes it (no join: the caller builds a fresh state).
  void PutForDecode(ListPosition position, ListValue value);

  bool operator==(const List&) const = default;

 private:
  using Map = absl::btree_map<ListPosition, ListValue>;
  Map::const_iterator IteratorAt(size_t index) const;

  Map elements_;
};

}  // namespace lattice::crdt
