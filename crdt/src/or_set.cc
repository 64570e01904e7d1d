#include "lattice/crdt/or_set.h"

#include <algorithm>

#include "lattice/crdt/join_stats.h"

namespace lattice::crdt {

bool OrSet::Contains(std::string_view member) const {
  // absl's btree over std::string looks up an absl::string_view (Debian's absl has its own
  // string_view type) without building a string.
  const absl::string_view key(member.data(), member.size());
  return adds_.contains(key) && (removes_.empty() || !removes_.contains(key));
}

size_t OrSet::Size() const {
  size_t size = 0;
  for (const auto& [member, dots] : adds_) {
    size += removes_.contains(member) ? 0 : 1;
  }
  return size;
}

bool OrSet::AnyPresent() const {
  if (removes_.empty()) {
    return !adds_.empty();  // add-wins sets keep no remove tokens
  }
  for (const auto& [member, dots] : adds_) {
    if (!removes_.contains(member)) {
      return true;  // the first member not removed: usually the first one
    }
  }
  return false;
}

std::vector<std::string> OrSet::Members() const {
  std::vector<std::string> out;
  for (const auto& [member, dots] : adds_) {
    if (!removes_.contains(member)) {
      out.push_back(member);
    }
  }
  return out;
}

void OrSet::CollectMemberDots(const std::string& member, DotContext& out) const {
  AddMapDots(adds_, member, out);
  AddMapDots(removes_, member, out);
}

void OrSet::CollectDots(DotContext& out) const {
  AddMapDots(adds_, out);
  AddMapDots(removes_, out);
}

OrSet OrSet::AddDelta(const std::string& member, WriteStamp& stamp, DotContext& context) const {
  CollectMemberDots(member, context);  // the new add supersedes every dot it observed
  OrSet delta;
  const Dot dot = stamp.dots->Next();
  delta.adds_[member] = DotSet(dot);
  context.Add(dot);
  return delta;
}

OrSet OrSet::RemoveDelta(const std::string& member, SetRule rule, WriteStamp& stamp,
                         DotContext& context) const {
  CollectMemberDots(member, context);
  OrSet delta;
  if (rule == SetRule::kRemoveWins) {
    const Dot dot = stamp.dots->Next();
    delta.removes_[member] = DotSet(dot);
    context.Add(dot);
  }
  return delta;
}

void JoinDotMaps(absl::btree_map<std::string, DotSet>& mine, const DotContext& my_context,
                 const absl::btree_map<std::string, DotSet>& theirs,
                 const DotContext& their_context) {
  static const DotSet kEmpty;
  ThreadJoinStats().elements += mine.size() + theirs.size();
  for (auto it = mine.begin(); it != mine.end();) {
    auto other = theirs.find(it->first);
    it->second = JoinDots(it->second, my_context, other != theirs.end() ? other->second : kEmpty,
                          their_context);
    it = it->second.empty() ? mine.erase(it) : std::next(it);
  }
  for (const auto& [member, dots] : theirs) {
    if (!mine.contains(member)) {
      DotSet joined = JoinDots(kEmpty, my_context, dots, their_context);
      if (!joined.empty()) {
        mine.emplace(member, std::move(joined));
      }
    }
  }
}

void JoinDotMapEntry(absl::btree_map<std::string, DotSet>& mine, const DotContext& my_context,
                     const absl::btree_map<std::string, DotSet>& theirs,
                     const DotContext& their_context, const std::string& member) {
  JoinMapEntry(mine, theirs, member, [&](DotSet& dots, const DotSet& other) {
    dots = JoinDots(dots, my_context, other, their_context);
  });
}

void AddMapDots(const absl::btree_map<std::string, DotSet>& map, DotContext& out) {
  for (const auto& [member, dots] : map) {
    for (const Dot& dot : dots.dots()) {
      out.Add(dot);
    }
  }
}

void AddMapDots(const absl::btree_map<std::string, DotSet>& map, const std::string& member,
                DotContext& out) {
  if (auto it = map.find(member); it != map.end()) {
    for (const Dot& dot : it->second.dots()) {
      out.Add(dot);
    }
  }
}

void OrSet::Join(const OrSet& other, const DotContext& mine, const DotContext& theirs) {
  JoinDotMaps(adds_, mine, other.adds_, theirs);
  JoinDotMaps(removes_, mine, other.removes_, theirs);
}

void OrSet::JoinSome(const OrSet& other, const DotContext& mine, const DotContext& theirs,
                     const std::vector<std::string>& names) {
  ThreadJoinStats().elements += names.size();
  for (const std::string& member : names) {
    JoinDotMapEntry(adds_, mine, other.adds_, theirs, member);
    if (!removes_.empty() || !other.removes_.empty()) {
      JoinDotMapEntry(removes_, mine, other.removes_, theirs, member);
    }
  }
}

void OrSet::AppendNames(std::vector<std::string>& out) const {
  for (const auto* map : {&adds_, &removes_}) {
    for (const auto& [member, dots] : *map) {
      out.push_back(member);
    }
  }
}

void OrSet::ForEachDotOf(const std::string& member, absl::FunctionRef<void(Dot)> f) const {
  for (const auto* map : {&adds_, &removes_}) {
    if (auto it = map->find(member); it != map->end()) {
      for (const Dot& dot : it->second.dots()) {
        f(dot);
      }
    }
  }
}

void OrSet::ScanDots(absl::FunctionRef<bool(const std::string&, Dot)> f) const {
  ScannedCount scanned;
  for (const auto* map : {&adds_, &removes_}) {
    for (const auto& [member, dots] : *map) {
      ++scanned.count;
      for (const Dot& dot : dots.dots()) {
        if (f(member, dot)) {
          return;
        }
      }
    }
  }
}

void OrSet::Compact(const VersionVector& stable) {
  auto all_stable = [&](const DotSet& dots) {
    return std::all_of(dots.dots().begin(), dots.dots().end(),
                       [&](Dot dot) { return stable.Contains(dot); });
  };
  // Every future op observes stable dots: a member whose dots are all stable is decided for
  // good, so a removed one can go entirely and a live one needs only one dot.
  for (auto it = removes_.begin(); it != removes_.end();) {
    auto add = adds_.find(it->first);
    const bool add_stable = add == adds_.end() || all_stable(add->second);
    if (all_stable(it->second) && add_stable) {
      if (add != adds_.end()) {
        adds_.erase(add);
      }
      it = removes_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [member, dots] : adds_) {
    if (dots.size() > 1 && all_stable(dots)) {
      dots = DotSet(dots.Max());
    }
  }
}

void OrSet::Put(const std::string& member, Dot dot) {
  adds_.insert_or_assign(member, DotSet(dot));
  if (!removes_.empty()) {
    removes_.erase(member);
  }
}

Dot OrSet::PutObserving(const std::string& member, absl::FunctionRef<void(Dot)> observe,
                        absl::FunctionRef<Dot()> next, bool* was_present) {
  auto [it, inserted] = adds_.try_emplace(member);
  for (const Dot& dot : it->second.dots()) {
    observe(dot);
  }
  if (was_present != nullptr) *was_present = !inserted;
  if (!removes_.empty()) {
    if (auto token = removes_.find(member); token != removes_.end()) {
      if (was_present != nullptr) *was_present = false;  // a token hides it (Contains)
      for (const Dot& dot : token->second.dots()) {
        observe(dot);
      }
      removes_.erase(token);
    }
  }
  const Dot dot = next();
  it->second = DotSet(dot);
  return dot;
}

size_t OrSet::MetadataItems() const {
  size_t items = 0;
  for (const auto* map : {&adds_, &removes_}) {
    for (const auto& [member, dots] : *map) {
      items += dots.size();
    }
  }
  return items;
}

}  // namespace lattice::crdt
