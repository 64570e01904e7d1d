#include "lattice/crdt/sorted_set.h"

#include <cmath>

#include "lattice/crdt/join_stats.h"
#include "lattice/crdt/or_set.h"  // JoinDotMaps, JoinMapEntry, AddMapDots

namespace lattice::crdt {

SortedSet& SortedSet::operator=(const SortedSet& other) {
  if (this != &other) {
    index_.Clear();  // before the members it points at go
    members_ = other.members_;
    removes_ = other.removes_;
    Reindex();
  }
  return *this;
}

std::optional<double> SortedSet::ScoreOf(const std::string& member, const ScoreCell& cell) const {
  if (!cell.Alive() || (!removes_.empty() && removes_.contains(member))) {
    return std::nullopt;
  }
  const CounterSum sum = cell.Sum();
  const long double base = cell.Winner() != nullptr ? cell.Winner()->value : 0.0;
  const double score = static_cast<double>(base + static_cast<long double>(sum.ints) + sum.floats);
  return std::isnan(score) ? 0.0 : score;
}

std::optional<double> SortedSet::Score(const std::string& member) const {
  auto it = members_.find(member);
  return it == members_.end() ? std::nullopt : ScoreOf(it->first, it->second);
}

std::optional<size_t> SortedSet::Rank(const std::string& member) const {
  const std::optional<double> score = Score(member);
  if (!score) {
    return std::nullopt;
  }
  return index_.Rank(*score, member);
}

void SortedSet::Reindex() {
  index_.Clear();
  for (const auto& [member, cell] : members_) {
    if (auto score = ScoreOf(member, cell)) {
      index_.Insert(*score, &member);
    }
  }
}

void SortedSet::Settle(Members::iterator it, std::optional<double> old) {
  const std::optional<double> now = ScoreOf(it->first, it->second);
  if (old != now) {
    if (old) {
      index_.Erase(*old, it->first);
    }
    if (now) {
      index_.Insert(*now, &it->first);
    }
  }
  if (it->second.empty()) {
    members_.erase(it);  // not alive, so not indexed
  }
}

SortedSet SortedSet::AddDelta(const std::string& member, double score, WriteStamp& stamp,
                              DotContext& context) const {
  static const ScoreCell kEmpty{};
  auto it = members_.find(member);
  SortedSet delta;
  CollectTokens(member, context);  // the add supersedes the remove tokens it observed
  delta.members_[member] =
      (it != members_.end() ? it->second : kEmpty).AssignDelta(score, stamp, context);
  delta.Reindex();
  return delta;
}

Result<SortedSet> SortedSet::IncrementDelta(const std::string& member, double by, WriteStamp& stamp,
                                            DotContext& context) const {
  static const ScoreCell kEmpty{};
  const double next = Score(member).value_or(0.0) + by;
  if (std::isnan(next)) {
    return Unexpected(ErrorCode::kNanScore);
  }
  auto it = members_.find(member);
  auto cell = (it != members_.end() ? it->second : kEmpty).IncrementDelta(0, by, stamp, context);
  if (!cell.ok()) {
    return Unexpected(cell.error());
  }
  SortedSet delta;
  CollectTokens(member, context);
  delta.members_[member] = std::move(*cell);
  delta.Reindex();
  return delta;
}

SortedSet SortedSet::RemoveDelta(const std::string& member, SetRule rule, WriteStamp& stamp,
                                 DotContext& context) const {
  SortedSet delta;
  CollectTokens(member, context);
  auto it = members_.find(member);
  if (it != members_.end()) {
    ScoreCell cell = it->second.RemoveDelta(stamp, context);
    if (!cell.empty()) {
      delta.members_[member] = std::move(cell);
    }
  }
  if (rule == SetRule::kRemoveWins) {
    const Dot dot = stamp.dots->Next();
    delta.removes_[member] = DotSet(dot);
    context.Add(dot);
  }
  delta.Reindex();
  return delta;
}

void SortedSet::CollectTokens(const std::string& member, DotContext& out) const {
  AddMapDots(removes_, member, out);
}

void SortedSet::CollectDots(DotContext& out) const {
  for (const auto& [member, cell] : members_) {
    cell.CollectDots(out);
  }
  AddMapDots(removes_, out);
}

void SortedSet::Join(const SortedSet& other, const DotContext& mine, const DotContext& theirs) {
  static const ScoreCell kEmpty{};
  ThreadJoinStats().elements += members_.size() + other.members_.size();
  index_.Clear();  // rebuilt below: a full join may change any member
  for (auto it = members_.begin(); it != members_.end();) {
    auto found = other.members_.find(it->first);
    it->second.Join(found != other.members_.end() ? found->second : kEmpty, mine, theirs);
    it = it->second.empty() ? members_.erase(it) : std::next(it);
  }
  for (const auto& [member, cell] : other.members_) {
    if (!members_.contains(member)) {
      ScoreCell joined;
      joined.Join(cell, mine, theirs);
      if (!joined.empty()) {
        members_.emplace(member, std::move(joined));
      }
    }
  }
  if (!removes_.empty() || !other.removes_.empty()) {
    JoinDotMaps(removes_, mine, other.removes_, theirs);
  }
  Reindex();
}

void SortedSet::JoinSome(const SortedSet& other, const DotContext& mine, const DotContext& theirs,
                         const std::vector<std::string>& names) {
  static const ScoreCell kEmpty{};
  ThreadJoinStats().elements += names.size();
  const bool tokens = !removes_.empty() || !other.removes_.empty();
  for (const std::string& member : names) {
    auto it = members_.find(member);
    const std::optional<double> old =
        it != members_.end() ? ScoreOf(it->first, it->second) : std::nullopt;
    auto found = other.members_.find(member);
    if (it != members_.end()) {
      it->second.Join(found != other.members_.end() ? found->second : kEmpty, mine, theirs);
    } else if (found != other.members_.end()) {
      ScoreCell joined;
      joined.Join(found->second, mine, theirs);
      if (!joined.empty()) {
        it = members_.emplace(member, std::move(joined)).first;
      }
    }
    if (tokens) {
      JoinDotMapEntry(removes_, mine, other.removes_, theirs, member);
    }
    if (it != members_.end()) {
      Settle(it, old);
    }
  }
}

void SortedSet::AppendNames(std::vector<std::string>& out) const {
  for (const auto& [member, cell] : members_) {
    out.push_back(member);
  }
  for (const auto& [member, dots] : removes_) {
    out.push_back(member);
  }
}

void SortedSet::ForEachDotOf(const std::string& member, absl::FunctionRef<void(Dot)> f) const {
  if (auto it = members_.find(member); it != members_.end()) {
    it->second.ForEachDot(f);
  }
  if (auto it = removes_.find(member); it != removes_.end()) {
    for (const Dot& dot : it->second.dots()) {
      f(dot);
    }
  }
}

void SortedSet::ScanDots(absl::FunctionRef<bool(const std::string&, Dot)> f) const {
  ScannedCount scanned;
  for (const auto& entry : members_) {  // not a structured binding: clang 14 cannot capture one
    const std::string& member = entry.first;
    ++scanned.count;
    bool stop = false;
    entry.second.ForEachDot([&](Dot dot) { stop = stop || f(member, dot); });
    if (stop) {
      return;
    }
  }
  for (const auto& [member, dots] : removes_) {
    ++scanned.count;
    for (const Dot& dot : dots.dots()) {
      if (f(member, dot)) {
        return;
      }
    }
  }
}

void SortedSet::Compact(const VersionVector& stable) {
  for (auto it = members_.begin(); it != members_.end();) {
    const std::optional<double> old = ScoreOf(it->first, it->second);
    it->second.Compact(stable);
    auto next = std::next(it);
    Settle(it, old);
    it = next;
  }
}

void SortedSet::Put(const std::string& member, ScoreCell cell) {
  auto it = members_.find(member);
  if (it == members_.end()) {
    Settle(members_.emplace(member, std::move(cell)).first, std::nullopt);
    return;
  }
  const std::optional<double> old = ScoreOf(it->first, it->second);
  it->second = std::move(cell);
  Settle(it, old);
}

size_t SortedSet::MetadataItems() const {
  size_t items = 0;
  for (const auto& [member, cell] : members_) {
    items += cell.MetadataItems();
  }
  for (const auto& [member, dots] : removes_) {
    items += dots.size();
  }
  return items;
}

}  // namespace lattice::crdt
