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
// rank and range by rank, score or lex. A member's bytes are stored once: the index points at
// the key of its std::map node (node-based, so the key never moves while the member exists).
// Value type (copies rebuild the index; moves keep it); not thread-safe.
// Invariant: the index holds exactly the alive members with their current scores.

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/functional/function_ref.h"
#include "lattice/crdt/dot_set.h"
#include "lattice/crdt/order_index.h"
#include "lattice/crdt/policy.h"
#include "lattice/crdt/register.h"

namespace lattice::crdt {

using ScoreCell = Register<double>;

class SortedSet {
 public:
  using Members = std::map<std::string, ScoreCell, std::less<>>;

  SortedSet() = default;
  SortedSet(const SortedSet& other) : members_(other.members_), removes_(other.removes_) {
    Reindex();
  }
  SortedSet(SortedSet&&) noexcept = default;
  SortedSet& operator=(const SortedSet& other);
  SortedSet& operator=(SortedSet&&) noexcept = default;

  bool empty() const { return members_.empty() && removes_.empty(); }
  size_t Size() const { return index_.size(); }
  std::optional<double> Score(const std::string& member) const;
  std::optional<size_t> Rank(const std::string& member) const;
  const OrderIndex& index() const { return index_; }
  const Members& members() const { return members_; }

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
  // Join restricted to the members in `names` (sorted, distinct); see OrSet::JoinSome. Keeps
  // the order index in sync for those members only: O(|names| log n).
  void JoinSome(const SortedSet& other, const DotContext& mine, const DotContext& theirs,
                const std::vector<std::string>& names);
  void AppendNames(std::vector<std::string>& out) const;  // score cells and tokens, unsorted
  // Calls f for each dot `member` holds (score cell and tokens).
  void ForEachDotOf(const std::string& member, absl::FunctionRef<void(Dot)> f) const;
  // Calls f(member, dot) for every dot held, in member order, until f returns true.
  void ScanDots(absl::FunctionRef<bool(const std::string&, Dot)> f) const;
  void Compact(const VersionVector& stable);
  size_t MetadataItems() const;

  // For Key's in-place writes: replaces (or adds) `member`'s score cell, keeping the index.
  void Put(const std::string& member, ScoreCell cell);

  friend bool operator==(const SortedSet& a, const SortedSet& b) {
    return a.members_ == b.members_ && a.removes_ == b.removes_;
  }

 private:
  std::optional<double> ScoreOf(const std::string& member, const ScoreCell& cell) const;
  void CollectTokens(const std::string& member, DotContext& out) const;
  void Reindex();
  // Brings the index in line with the member at `it` after its cell or token changed, given
  // what the index held for it before (`old`); erases the entry when it became empty.
  void Settle(Members::iterator it, std::optional<double> old);

  Members members_;
  absl::btree_map<std::string, DotSet> removes_;  // remove-wins tokens
  OrderIndex index_;
};

}  // namespace lattice::crdt
