#pragma once
// SortedSet: the Valkey sorted set as an add-wins observed-remove map from member to a score
// cell (Almeida, Shoker, Baquero 2018, ORMap; membership as in Bieniusa et al. 2012). The score
// cell is a Register<double>: ZADD writes an LWW base (concurrent ZADDs: the later stamp wins),
// ZINCRBY adds to the incrementing replica's total (concurrent ZINCRBYs add up), and a write
// records the totals it observed, so score = base + the increments it did not observe.
//
// Merge rule: ZREM removes exactly the dots it observed (add wins over a concurrent ZADD; a
// concurrent ZINCRBY survives as itself: 6.1 - 4.1 = 2.0, as Redis Enterprise documents). A
// merged score that is NaN (+inf and -inf increments met) is stored as 0. Under the remove-wins
// rule a ZREM also writes a remove token (a dot) for the member, as OrSet does: a member is
// visible only while its score cell is alive and it has no token, so a concurrent ZADD or
// ZINCRBY loses; a later ZADD/ZINCRBY that observed the token clears it.
//
// An OrderIndex (skip list with spans) mirrors the visible (score, member) pairs for O(log n)
// rank and range by rank, score or lex. Value type (copies rebuild the index); not thread-safe.
// Invariant: the index holds exactly the alive members with their current scores.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "lattice/crdt/dot_set.h"
#include "lattice/crdt/order_index.h"
#include "lattice/crdt/policy.h"
#include "lattice/crdt/register.h"

namespace lattice::crdt {

using ScoreCell = Register<double>;

class SortedSet {
 public:
  SortedSet() = default;
  SortedSet(const SortedSet& other) : members_(other.members_), removes_(other.removes_) {
    Reindex();
  }
  SortedSet& operator=(const SortedSet& other);

  bool empty() const { return members_.empty() && removes_.empty(); }
  size_t Size() const { return index_.size(); }
  std::optional<double> Score(const std::string& member) const;
  std::optional<size_t> Rank(const std::string& member) const;
  const OrderIndex& index() const { return index_; }
  const absl::btree_map<std::string, ScoreCell>& members() const { return members_; }

  SortedSet AddDelta(const std::string& member, double score, WriteStamp& stamp,
                     DotContext& context) const;
  Result<SortedSet> IncrementDelta(const std::string& member, double by, WriteStamp& stamp,
                                   DotContext& context) const;
  SortedSet RemoveDelta(const std::string& member, SetRule rule, WriteStamp& stamp,
                        DotContext& context) const;
  // Remove tokens (remove-wins rule); empty under add-wins.
  const absl::btree_map<std::string, DotSet>& removes() const { return removes_; }
  void CollectDots(DotContext& out) const;

  void Join(const SortedSet& other, const DotContext& mine, const DotContext& theirs);
  void Compact(const VersionVector& stable);
  size_t MetadataItems() const;

  friend bool operator==(const SortedSet& a, const SortedSet& b) {
    return a.members_ == b.members_ && a.removes_ == b.removes_;
  }

 private:
  std::optional<double> ScoreOf(const std::string& member, const ScoreCell& cell) const;
  void CollectTokens(const std::string& member, DotContext& out) const;
  void Reindex();
  void Refresh(const std::string& member);

  absl::btree_map<std::string, ScoreCell> members_;
  absl::btree_map<std::string, DotSet> removes_;  // remove-wins tokens
  absl::btree_map<std::string, double> indexed_;  // what the index holds for each member
  OrderIndex index_;
};

}  // namespace lattice::crdt
