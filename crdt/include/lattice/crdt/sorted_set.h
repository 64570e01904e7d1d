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
// Representation (docs/crdt.md, "Sorted sets in memory"): each member is one allocation, a
// ZMember holding its score cell and its name bytes (a 4-byte length, no std::string header);
// a flat hash table of ZMember pointers finds a member by name (ZSCORE, ZADD, ZREM, joins), and
// an OrderIndex (skip list with spans) over the visible (score, member) pairs gives O(log n) rank
// and range by rank, score or lex. The index points at the name inside the ZMember, so the bytes
// are stored once. The table's layout never shows: equality is set equality, and ForEachMember
// walks the members in byte order for every deterministic encoding.
// Value type (copies rebuild the index; moves keep it); not thread-safe.
// Invariant: the index holds exactly the alive members with their current scores; no member in
// the table has an empty cell.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/hash/hash.h"
#include "lattice/crdt/dot_set.h"
#include "lattice/crdt/order_index.h"
#include "lattice/crdt/policy.h"
#include "lattice/crdt/register.h"

namespace lattice::crdt {

using ScoreCell = Register<double>;

// One member of a SortedSet: its score cell and its name, the name's bytes following the
// PackedName in the same allocation (Make/Free).
struct ZMember {
  ScoreCell cell;
  PackedName name;  // last: the bytes follow it

  std::string_view view() const { return name.view(); }
  static ZMember* Make(std::string_view name, ScoreCell cell);
  static void Free(ZMember* member);
};

class SortedSet {
 public:
  SortedSet() = default;
  SortedSet(const SortedSet& other);
  SortedSet(SortedSet&& other) noexcept;
  SortedSet& operator=(const SortedSet& other);
  SortedSet& operator=(SortedSet&& other) noexcept;
  ~SortedSet();

  bool empty() const { return members_.empty() && removes_.empty(); }
  size_t Size() const { return index_.size(); }
  std::optional<double> Score(const std::string& member) const;
  std::optional<size_t> Rank(const std::string& member) const;
  const OrderIndex& index() const { return index_; }
  // The score cell `member` holds (alive or not), or null.
  const ScoreCell* Find(std::string_view member) const;
  // Number of score cells held (visible or not).
  size_t MemberCount() const { return members_.size(); }
  // Calls f(member, cell) for every score cell held, in member byte order (O(n log n)).
  void ForEachMember(absl::FunctionRef<void(std::string_view, const ScoreCell&)> f) const;

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
  // Calls f(member, dot) for every dot held, in no set order, until f returns true.
  void ScanDots(absl::FunctionRef<bool(std::string_view, Dot)> f) const;
  void Compact(const VersionVector& stable);
  size_t MetadataItems() const;

  // For Key's in-place writes: replaces (or adds) `member`'s score cell, keeping the index.
  void Put(const std::string& member, ScoreCell cell);

  // Set equality: the same members with equal cells, and equal tokens.
  friend bool operator==(const SortedSet& a, const SortedSet& b);

 private:
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view name) const { return absl::Hash<std::string_view>{}(name); }
    size_t operator()(const ZMember* m) const { return (*this)(m->view()); }
  };
  struct NameEq {
    using is_transparent = void;
    static std::string_view Of(std::string_view name) { return name; }
    static std::string_view Of(const ZMember* m) { return m->view(); }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Of(a) == Of(b);
    }
  };
  using Members = absl::flat_hash_set<ZMember*, NameHash, NameEq>;

  ZMember* FindMember(std::string_view member) const;
  // Adds a member not held yet; the index is the caller's to update.
  ZMember* Emplace(std::string_view member, ScoreCell cell);
  void FreeAll();
  std::optional<double> ScoreOf(const ZMember& member) const;
  void CollectTokens(const std::string& member, DotContext& out) const;
  void Reindex();
  // Brings the index in line with `member` after its cell or token changed, given what the
  // index held for it before (`old`); erases and frees the member when its cell became empty.
  void Settle(ZMember* member, std::optional<double> old);

  Members members_;                               // owns the ZMembers
  absl::btree_map<std::string, DotSet> removes_;  // remove-wins tokens
  OrderIndex index_;
};

}  // namespace lattice::crdt
