#pragma once
// OrderIndex: an order-statistic skip list (Pugh 1990, with Valkey's zskiplist span counts) over
// (score, member) pairs ordered as Valkey orders a sorted set: by score, then by member bytes.
// Rank, select-by-rank and lower bounds by score or by (score, member) are O(log n) expected.
// Node heights come from a hash of the member, not from a random generator, so the structure
// (and its cost) is the same on every replica and in every run.
//
// The index does not copy member strings: a node points at the member name its owner stores (a
// PackedName inside the SortedSet's member node), which must stay put and alive until the node is
// erased. A node is one
// allocation (score, member pointer, its levels inline); the head grows with the tallest node.
//
// Owns its nodes; movable, not copyable (the owner rebuilds it). Not thread-safe. Invariant: no
// two nodes hold the same member; scores are not NaN.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lattice::crdt {

// A member name as its owner stores it: a 32-bit length followed by the bytes, in the same
// allocation (so a name costs 4 bytes of header, not a 32-byte std::string).
struct PackedName {
  uint32_t size = 0;
  // The bytes start right after the length.
  std::string_view view() const { return {reinterpret_cast<const char*>(this + 1), size}; }
};
static_assert(sizeof(PackedName) == 4);

class OrderIndex {
 public:
  OrderIndex() = default;
  ~OrderIndex();
  OrderIndex(const OrderIndex&) = delete;
  OrderIndex& operator=(const OrderIndex&) = delete;
  OrderIndex(OrderIndex&& other) noexcept;
  OrderIndex& operator=(OrderIndex&& other) noexcept;

  // `member` must outlive the node (until Erase or Clear).
  void Insert(double score, const PackedName* member);
  void Erase(double score, std::string_view member);
  void Clear();
  size_t size() const { return size_; }

  // Number of nodes ordered before (score, member).
  size_t Rank(double score, std::string_view member) const;
  // Number of nodes with score < score (or <= when inclusive).
  size_t CountBelow(double score, bool inclusive) const;
  // The node at 0-based rank (< size()).
  std::pair<double, std::string_view> At(size_t rank) const;
  // Walks `count` nodes from rank `first` in order.
  std::vector<std::pair<double, std::string>> Range(size_t first, size_t count) const;

 private:
  struct Node;
  static constexpr int kMaxLevel = 32;
  static int LevelFor(std::string_view member);
  void GrowHead(int level);

  Node* head_ = nullptr;  // null until the first Insert; its height is head_height_
  int head_height_ = 0;
  int level_ = 1;
  size_t size_ = 0;
};

}  // namespace lattice::crdt
