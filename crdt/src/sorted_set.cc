#include "lattice/crdt/sorted_set.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <new>

#include "lattice/common/assert.h"
#include "lattice/crdt/join_stats.h"
#include "lattice/crdt/or_set.h"  // JoinDotMaps, JoinMapEntry, AddMapDots

namespace lattice::crdt {

ZMember* ZMember::Make(std::string_view name, ScoreCell cell) {
  LATTICE_ASSERT(name.size() <= UINT32_MAX);
  // The name's bytes start right after the PackedName, which follows the cell (every ABI lays
  // the members out in order; checked below), so they may use the struct's tail padding.
  constexpr size_t kHeader = sizeof(ScoreCell) + sizeof(PackedName);
  void* raw = ::operator new(std::max(sizeof(ZMember), kHeader + name.size()));
  ZMember* member =
      new (raw) ZMember{std::move(cell), PackedName{static_cast<uint32_t>(name.size())}};
  char* bytes = reinterpret_cast<char*>(&member->name + 1);
  LATTICE_ASSERT(bytes == static_cast<char*>(raw) + kHeader);
  if (!name.empty()) {
    std::memcpy(bytes, name.data(), name.size());
  }
  return member;
}

void ZMember::Free(ZMember* member) {
  member->~ZMember();
  ::operator delete(member);
}

SortedSet::SortedSet(const SortedSet& other) : removes_(other.removes_) {
  members_.reserve(other.members_.size());
  for (const ZMember* m : other.members_) {
    members_.insert(ZMember::Make(m->view(), m->cell));
  }
  Reindex();
}

SortedSet::SortedSet(SortedSet&& other) noexcept
    : members_(std::exchange(other.members_, Members{})),
      removes_(std::move(other.removes_)),
      index_(std::move(other.index_)) {}

SortedSet& SortedSet::operator=(const SortedSet& other) {
  if (this != &other) {
    SortedSet copy(other);
    *this = std::move(copy);
  }
  return *this;
}

SortedSet& SortedSet::operator=(SortedSet&& other) noexcept {
  if (this != &other) {
    FreeAll();
    members_ = std::exchange(other.members_, Members{});
    removes_ = std::move(other.removes_);
    index_ = std::move(other.index_);
  }
  return *this;
}

SortedSet::~SortedSet() { FreeAll(); }

void SortedSet::FreeAll() {
  index_.Clear();  // before the names it points at go
  for (ZMember* m : members_) {
    ZMember::Free(m);
  }
  members_.clear();
}

bool operator==(const SortedSet& a, const SortedSet& b) {
  if (a.members_.size() != b.members_.size() || a.removes_ != b.removes_) {
    return false;
  }
  for (const ZMember* m : a.members_) {
    const ZMember* other = b.FindMember(m->view());
    if (other == nullptr || !(other->cell == m->cell)) {
      return false;
    }
  }
  return true;
}

ZMember* SortedSet::FindMember(std::string_view member) const {
  auto it = members_.find(member);
  return it == members_.end() ? nullptr : *it;
}

const ScoreCell* SortedSet::Find(std::string_view member) const {
  const ZMember* m = FindMember(member);
  return m == nullptr ? nullptr : &m->cell;
}

ZMember* SortedSet::Emplace(std::string_view member, ScoreCell cell) {
  ZMember* m = ZMember::Make(member, std::move(cell));
  const bool inserted = members_.insert(m).second;
  LATTICE_ASSERT(inserted);
  return m;
}

void SortedSet::ForEachMember(absl::FunctionRef<void(std::string_view, const ScoreCell&)> f) const {
  if (members_.size() <= 1) {  // an op's delta: nothing to sort
    for (const ZMember* m : members_) {
      f(m->view(), m->cell);
    }
    return;
  }
  std::vector<const ZMember*> sorted(members_.begin(), members_.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const ZMember* a, const ZMember* b) { return a->view() < b->view(); });
  for (const ZMember* m : sorted) {
    f(m->view(), m->cell);
  }
}

std::optional<double> SortedSet::ScoreOf(const ZMember& member) const {
  const ScoreCell& cell = member.cell;
  if (!cell.Alive() || (!removes_.empty() && removes_.contains(absl::string_view(
                                                 member.view().data(), member.view().size())))) {
    return std::nullopt;
  }
  const CounterSum sum = cell.Sum();
  const long double base = cell.Winner() != nullptr ? cell.Winner()->value : 0.0;
  const double score = static_cast<double>(base + static_cast<long double>(sum.ints) + sum.floats);
  return std::isnan(score) ? 0.0 : score;
}

std::optional<double> SortedSet::Score(const std::string& member) const {
  const ZMember* m = FindMember(member);
  return m == nullptr ? std::nullopt : ScoreOf(*m);
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
  for (const ZMember* m : members_) {
    if (auto score = ScoreOf(*m)) {
      index_.Insert(*score, &m->name);
    }
  }
}

void SortedSet::Settle(ZMember* member, std::optional<double> old) {
  const std::optional<double> now = ScoreOf(*member);
  if (old != now) {
    if (old) {
      index_.Erase(*old, member->view());
    }
    if (now) {
      index_.Insert(*now, &member->name);
    }
  }
  if (member->cell.empty()) {
    members_.erase(member);  // not alive, so not indexed
    ZMember::Free(member);
  }
}

SortedSet SortedSet::AddDelta(const std::string& member, double score, WriteStamp& stamp,
                              DotContext& context) const {
  static const ScoreCell kEmpty{};
  const ScoreCell* found = Find(member);
  SortedSet delta;
  CollectTokens(member, context);  // the add supersedes the remove tokens it observed
  delta.Put(member, (found != nullptr ? *found : kEmpty).AssignDelta(score, stamp, context));
  return delta;
}

Result<SortedSet> SortedSet::IncrementDelta(const std::string& member, double by, WriteStamp& stamp,
                                            DotContext& context) const {
  static const ScoreCell kEmpty{};
  const double next = Score(member).value_or(0.0) + by;
  if (std::isnan(next)) {
    return Unexpected(ErrorCode::kNanScore);
  }
  const ScoreCell* found = Find(member);
  auto cell = (found != nullptr ? *found : kEmpty).IncrementDelta(0, by, stamp, context);
  if (!cell.ok()) {
    return Unexpected(cell.error());
  }
  SortedSet delta;
  CollectTokens(member, context);
  delta.Put(member, std::move(*cell));
  return delta;
}

SortedSet SortedSet::RemoveDelta(const std::string& member, SetRule rule, WriteStamp& stamp,
                                 DotContext& context) const {
  SortedSet delta;
  CollectTokens(member, context);
  if (const ScoreCell* found = Find(member)) {
    ScoreCell cell = found->RemoveDelta(stamp, context);
    if (!cell.empty()) {
      delta.Emplace(member, std::move(cell));
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
  for (const ZMember* m : members_) {
    m->cell.CollectDots(out);
  }
  AddMapDots(removes_, out);
}

void SortedSet::Join(const SortedSet& other, const DotContext& mine, const DotContext& theirs) {
  static const ScoreCell kEmpty{};
  ThreadJoinStats().elements += members_.size() + other.members_.size();
  index_.Clear();  // rebuilt below: a full join may change any member
  std::vector<ZMember*> emptied;
  for (ZMember* m : members_) {
    const ZMember* found = other.FindMember(m->view());
    m->cell.Join(found != nullptr ? found->cell : kEmpty, mine, theirs);
    if (m->cell.empty()) {
      emptied.push_back(m);
    }
  }
  for (ZMember* m : emptied) {
    members_.erase(m);
    ZMember::Free(m);
  }
  for (const ZMember* theirs_member : other.members_) {
    if (FindMember(theirs_member->view()) == nullptr) {
      ScoreCell joined;
      joined.Join(theirs_member->cell, mine, theirs);
      if (!joined.empty()) {
        Emplace(theirs_member->view(), std::move(joined));
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
    ZMember* m = FindMember(member);
    const std::optional<double> old = m != nullptr ? ScoreOf(*m) : std::nullopt;
    const ZMember* found = other.FindMember(member);
    if (m != nullptr) {
      m->cell.Join(found != nullptr ? found->cell : kEmpty, mine, theirs);
    } else if (found != nullptr) {
      ScoreCell joined;
      joined.Join(found->cell, mine, theirs);
      if (!joined.empty()) {
        m = Emplace(member, std::move(joined));
      }
    }
    if (tokens) {
      JoinDotMapEntry(removes_, mine, other.removes_, theirs, member);
    }
    if (m != nullptr) {
      Settle(m, old);
    }
  }
}

void SortedSet::AppendNames(std::vector<std::string>& out) const {
  for (const ZMember* m : members_) {
    out.emplace_back(m->view());
  }
  for (const auto& [member, dots] : removes_) {
    out.push_back(member);
  }
}

void SortedSet::ForEachDotOf(const std::string& member, absl::FunctionRef<void(Dot)> f) const {
  if (const ZMember* m = FindMember(member)) {
    m->cell.ForEachDot(f);
  }
  if (auto it = removes_.find(member); it != removes_.end()) {
    for (const Dot& dot : it->second.dots()) {
      f(dot);
    }
  }
}

void SortedSet::ScanDots(absl::FunctionRef<bool(std::string_view, Dot)> f) const {
  ScannedCount scanned;
  for (const ZMember* m : members_) {
    ++scanned.count;
    bool stop = false;
    m->cell.ForEachDot([&](Dot dot) { stop = stop || f(m->view(), dot); });
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
  std::vector<ZMember*> all(members_.begin(), members_.end());  // Settle may erase
  for (ZMember* m : all) {
    const std::optional<double> old = ScoreOf(*m);
    m->cell.Compact(stable);
    Settle(m, old);
  }
}

void SortedSet::Put(const std::string& member, ScoreCell cell) {
  ZMember* m = FindMember(member);
  if (m == nullptr) {
    Settle(Emplace(member, std::move(cell)), std::nullopt);
    return;
  }
  const std::optional<double> old = ScoreOf(*m);
  m->cell = std::move(cell);
  Settle(m, old);
}

size_t SortedSet::MetadataItems() const {
  size_t items = 0;
  for (const ZMember* m : members_) {
    items += m->cell.MetadataItems();
  }
  for (const auto& [member, dots] : removes_) {
    items += dots.size();
  }
  return items;
}

}  // namespace lattice::crdt
