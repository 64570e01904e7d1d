#pragma once
// DotSet: the set of dots that keep one element alive in an observed-remove dot store (ORSWOT,
// Bieniusa et al. 2012). It is exactly 16 bytes: one dot inline (the common case: one add), or a
// pointer to a sorted heap array when concurrent adds of the same element left several dots.
// Encoding: replica == 0 && seq == 0 is empty; replica == 0 && seq != 0 holds the heap pointer.
// Not thread-safe. Invariant: the dots are distinct and sorted.
//
// JoinDots is the one dot-store rule every type uses: keep a dot present on both sides, or on
// one side when the other side's context has not seen it (so a remove deletes exactly what its
// author observed and a concurrent add survives).

#include <cstdint>
#include <span>
#include <vector>

#include "lattice/crdt/causal.h"

namespace lattice::crdt {

class DotSet {
 public:
  DotSet() = default;
  explicit DotSet(Dot dot) : dot_(dot) {}
  DotSet(const DotSet& other) { Assign(other.dots()); }
  DotSet(DotSet&& other) noexcept : dot_(other.dot_) { other.dot_ = Dot{}; }
  DotSet& operator=(const DotSet& other);
  DotSet& operator=(DotSet&& other) noexcept;
  ~DotSet() { Clear(); }

  bool empty() const { return dot_.replica == kNoReplica && dot_.seq == 0; }
  std::span<const Dot> dots() const;
  size_t size() const { return dots().size(); }
  bool Contains(Dot dot) const;
  void Insert(Dot dot);
  void Clear();
  // Assigns from sorted distinct dots.
  void Assign(std::span<const Dot> dots);
  Dot Max() const { return empty() ? Dot{} : dots().back(); }

  friend bool operator==(const DotSet& a, const DotSet& b) {
    const auto x = a.dots();
    const auto y = b.dots();
    return std::equal(x.begin(), x.end(), y.begin(), y.end());
  }

 private:
  bool heap() const { return dot_.replica == kNoReplica && dot_.seq != 0; }
  std::vector<Dot>* vec() const { return reinterpret_cast<std::vector<Dot>*>(dot_.seq); }

  Dot dot_;
};

static_assert(sizeof(DotSet) == 16, "a set member must cost one dot of metadata");

// The dot-store join of two dot sets, given the causal contexts of the two sides.
DotSet JoinDots(const DotSet& mine, const DotContext& my_context, const DotSet& theirs,
                const DotContext& their_context);

}  // namespace lattice::crdt
