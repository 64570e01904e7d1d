#pragma once
// OrSet: the Valkey set type as an observed-remove set without tombstones (ORSWOT; Bieniusa et
// al. 2012, "An optimized conflict-free replicated set"; delta form from Almeida, Shoker, Baquero
// 2018). Each member holds the dots of the adds that keep it alive (one dot unless concurrent
// adds met) and the replica's shard-wide DotContext says what was seen; so a member costs one dot
// (16 bytes) of metadata.
//
// Merge rule: a dot present on one side survives iff the other side's context has not seen it.
// SREM removes exactly the add dots it observed, so under the add-wins rule a concurrent SADD
// wins. Under the remove-wins rule an SREM also writes a remove token (a dot) for the member, and
// a member is visible only while it has add dots and no remove tokens, so a concurrent SREM wins;
// a later SADD that observed the token clears it. The rule is recorded in the delta's content.
//
// Value type; not thread-safe. Invariant: no member maps to an empty DotSet.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/functional/function_ref.h"
#include "lattice/crdt/dot_set.h"
#include "lattice/crdt/policy.h"

namespace lattice::crdt {

class OrSet {
 public:
  bool empty() const { return adds_.empty() && removes_.empty(); }
  bool Contains(std::string_view member) const;
  size_t Size() const;                       // O(n): walks the members
  bool AnyPresent() const;                   // whether Size() > 0, usually O(1)
  std::vector<std::string> Members() const;  // sorted by bytes
  const absl::btree_map<std::string, DotSet>& adds() const { return adds_; }
  const absl::btree_map<std::string, DotSet>& removes() const { return removes_; }

  // Delta builders: *this is not modified; `context` receives the dots the delta covers.
  OrSet AddDelta(const std::string& member, WriteStamp& stamp, DotContext& context) const;
  OrSet RemoveDelta(const std::string& member, SetRule rule, WriteStamp& stamp,
                    DotContext& context) const;
  void CollectDots(DotContext& out) const;

  void Join(const OrSet& other, const DotContext& mine, const DotContext& theirs);
  // Join restricted to the members in `names` (sorted, distinct): the same result as Join when
  // `other` holds no other member and `theirs` covers no dot of any other member of *this
  // (Key::JoinDelta checks both). O(|names| log n).
  void JoinSome(const OrSet& other, const DotContext& mine, const DotContext& theirs,
                const std::vector<std::string>& names);
  // Appends the members this state holds anything of (adds or tokens), unsorted.
  void AppendNames(std::vector<std::string>& out) const;
  // Calls f for each dot `member` holds (adds and tokens).
  void ForEachDotOf(const std::string& member, absl::FunctionRef<void(Dot)> f) const;
  // Calls f(member, dot) for every dot held, in member order, until f returns true.
  void ScanDots(absl::FunctionRef<bool(const std::string&, Dot)> f) const;
  void Compact(const VersionVector& stable);
  size_t MetadataItems() const;

  // For Key's in-place writes: `member` held by exactly `dot` and no token (what joining an
  // AddDelta that observed the whole member leaves).
  void Put(const std::string& member, Dot dot);
  // Put in one lookup for the in-place SADD: calls observe(d) for every dot `member` holds
  // (adds, then tokens), then puts the dot next() returns, and returns it. `*was_present`
  // (if given) says whether `member` was in the set (Contains) before.
  Dot PutObserving(const std::string& member, absl::FunctionRef<void(Dot)> observe,
                   absl::FunctionRef<Dot()> next, bool* was_present = nullptr);

  bool operator==(const OrSet&) const = default;

 private:
  void CollectMemberDots(const std::string& member, DotContext& out) const;

  absl::btree_map<std::string, DotSet> adds_;
  absl::btree_map<std::string, DotSet> removes_;  // remove-wins tokens; empty under add-wins
};

// Joins two maps of DotSets under the dot-store rule, erasing members left with no dots.
void JoinDotMaps(absl::btree_map<std::string, DotSet>& mine, const DotContext& my_context,
                 const absl::btree_map<std::string, DotSet>& theirs,
                 const DotContext& their_context);
// The same rule for one member only.
void JoinDotMapEntry(absl::btree_map<std::string, DotSet>& mine, const DotContext& my_context,
                     const absl::btree_map<std::string, DotSet>& theirs,
                     const DotContext& their_context, const std::string& member);
// Adds every dot of every member of `map` to `out`.
void AddMapDots(const absl::btree_map<std::string, DotSet>& map, DotContext& out);
// Adds the dots `member` holds in `map` (none if it holds none) to `out`.
void AddMapDots(const absl::btree_map<std::string, DotSet>& map, const std::string& member,
                DotContext& out);

// Joins the element `name` of two maps of elements: join(element, other) joins `other` into
// `element` (an empty V where `theirs` lacks `name`); an element left empty is erased, and one
// only `theirs` holds is added if the join leaves anything of it.
template <typename V, typename Join>
void JoinMapEntry(absl::btree_map<std::string, V>& mine,
                  const absl::btree_map<std::string, V>& theirs, const std::string& name,
                  Join join) {
  static const V kEmpty{};
  auto other = theirs.find(name);
  if (auto it = mine.find(name); it != mine.end()) {
    join(it->second, other != theirs.end() ? other->second : kEmpty);
    if (it->second.empty()) {
      mine.erase(it);
    }
  } else if (other != theirs.end()) {
    V joined;
    join(joined, other->second);
    if (!joined.empty()) {
      mine.emplace(name, std::move(joined));
    }
  }
}

}  // namespace lattice::crdt
