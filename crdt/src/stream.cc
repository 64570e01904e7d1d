#include "lattice/crdt/stream.h"

#include <algorithm>

#include "lattice/common/assert.h"
#include "lattice/crdt/join_stats.h"

namespace lattice::crdt {

namespace {

// The dot-store rule for one entry: kept when both sides hold it, or one side does and the other
// side's context has not seen its dot.
void JoinEntry(Stream::Entries& mine, const DotContext& my_context, const Stream::Entries& theirs,
               const DotContext& their_context, const StreamEntryKey& key) {
  if (mine.contains(key)) {
    if (their_context.Contains(key.dot) && !theirs.contains(key)) {
      mine.Erase(key);
    }
    return;
  }
  if (my_context.Contains(key.dot)) return;
  auto b = theirs.find(key);
  if (b != theirs.end()) {
    mine.Insert(key, b->second);
  }
}

// The dot-store join of two entry stores: one merge walk finds what changes, then only that is
// removed and added (a join with a small delta recodes at most the blocks it touches).
void JoinEntries(Stream::Entries& mine, const DotContext& my_context, const Stream::Entries& theirs,
                 const DotContext& their_context) {
  std::vector<StreamEntryKey> erase;
  std::vector<std::pair<StreamEntryKey, Stream::Fields>> add;
  auto a = mine.begin();
  auto b = theirs.begin();
  while (a != mine.end() || b != theirs.end()) {
    if (b == theirs.end() || (a != mine.end() && a->first < b->first)) {
      if (their_context.Contains(a->first.dot)) erase.push_back(a->first);
      ++a;
    } else if (a == mine.end() || b->first < a->first) {
      if (!my_context.Contains(b->first.dot)) add.emplace_back(b->first, b->second.ToVector());
      ++b;
    } else {
      ++a;
      ++b;
    }
  }
  for (const StreamEntryKey& key : erase) mine.Erase(key);
  for (const auto& [key, fields] : add) mine.Insert(key, fields);
}

// The dot-store join of a whole map (entries or group items): an item stays when both sides hold
// it, or one side does and the other side's context has not seen its dot.
template <typename Map>
void JoinDotMap(Map& mine, const DotContext& my_context, const Map& theirs,
                const DotContext& their_context) {
  for (auto it = mine.begin(); it != mine.end();) {
    if (!theirs.contains(it->first) && their_context.Contains(it->first.dot)) {
      it = mine.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [key, value] : theirs) {
    if (!mine.contains(key) && !my_context.Contains(key.dot)) {
      mine.emplace(key, value);
    }
  }
}

// Folds one more concurrent item of a slot into its visible value.
void Resolve(GroupPart part, const GroupValue& item, Dot dot, Dot* winner, GroupValue* out) {
  switch (part) {
    case GroupPart::kGroup:
      out->last_id = std::max(out->last_id, item.last_id);
      out->entries_read = std::max(out->entries_read, item.entries_read);
      out->hlc = std::max(out->hlc, item.hlc);
      return;
    case GroupPart::kConsumer:
      out->seen_ms = std::max(out->seen_ms, item.seen_ms);
      out->active_ms = std::max(out->active_ms, item.active_ms);
      out->hlc = std::max(out->hlc, item.hlc);
      return;
    case GroupPart::kPending:
      if (std::pair(item.hlc, dot) > std::pair(out->hlc, *winner)) {
        *out = item;
        *winner = dot;
      }
      return;
  }
}

GroupItemKey SlotStart(const GroupSlot& slot) { return GroupItemKey{slot, Dot{}}; }

}  // namespace

StreamMeta Stream::Meta() const {
  StreamMeta out;
  for (const RegisterEntry<StreamMeta>& entry : meta_.Entries()) {
    out.last_id = std::max(out.last_id, entry.value.last_id);
    out.max_deleted = std::max(out.max_deleted, entry.value.max_deleted);
    out.entries_added = std::max(out.entries_added, entry.value.entries_added);
  }
  if (!entries_.empty()) {
    out.last_id = std::max(out.last_id, entries_.LastKey().id);
    out.entries_added = std::max<uint64_t>(out.entries_added, entries_.size());
  }
  return out;
}

std::optional<StreamId> Stream::FirstId() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.begin()->first.id;
}

std::optional<StreamId> Stream::LastId() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.LastKey().id;
}

Stream Stream::AddDelta(StreamId id, Fields fields, WriteStamp& stamp, DotContext& context) const {
  Stream delta;
  const Dot dot = stamp.dots->Next();
  delta.entries_.Insert(StreamEntryKey{id, dot}, fields);
  context.Add(dot);
  return delta;
}

Stream Stream::AppendLocal(StreamId id, const Fields& fields, WriteStamp& stamp,
                           DotContext& context) {
  LATTICE_ASSERT(entries_.empty() || entries_.LastKey().id < id);
  Stream delta;
  const StreamEntryKey key{id, stamp.dots->Next()};
  delta.entries_.Insert(key, fields);
  entries_.Insert(key, fields);
  context.Add(key.dot);
  return delta;
}

Stream Stream::MetaDelta(const StreamMeta& meta, WriteStamp& stamp, DotContext& context) const {
  Stream delta;
  delta.meta_ = meta_.AssignDelta(meta, stamp, context);
  return delta;
}

void Stream::RemoveDelta(const std::vector<StreamEntryKey>& keys, DotContext& context) const {
  for (const StreamEntryKey& key : keys) {
    context.Add(key.dot);
  }
}

void Stream::CollectDots(DotContext& out) const {
  for (const auto& [key, fields] : entries_) {
    out.Add(key.dot);
  }
  meta_.CollectDots(out);
  for (const auto& [key, value] : groups_) {
    out.Add(key.dot);
  }
}

void Stream::Join(const Stream& other, const DotContext& mine, const DotContext& theirs) {
  ThreadJoinStats().elements += entries_.size() + other.entries_.size();
  JoinEntries(entries_, mine, other.entries_, theirs);
  meta_.Join(other.meta_, mine, theirs);
  JoinGroups(other, mine, theirs);
}

void Stream::JoinGroups(const Stream& other, const DotContext& mine, const DotContext& theirs) {
  if (groups_.empty() && other.groups_.empty()) return;
  ThreadJoinStats().elements += groups_.size() + other.groups_.size();
  JoinDotMap(groups_, mine, other.groups_, theirs);
}

void Stream::JoinSome(const Stream& other, const DotContext& mine, const DotContext& theirs,
                      const std::vector<StreamEntryKey>& touched) {
  ThreadJoinStats().elements += touched.size() + other.entries_.size();
  for (const StreamEntryKey& key : touched) {
    JoinEntry(entries_, mine, other.entries_, theirs, key);
  }
  for (const auto& [key, fields] : other.entries_) {
    JoinEntry(entries_, mine, other.entries_, theirs, key);
  }
  meta_.Join(other.meta_, mine, theirs);
  JoinGroups(other, mine, theirs);  // group state joins whole (docs/semantics.md)
}

void Stream::ScanEntries(absl::FunctionRef<bool(const StreamEntryKey&)> f) const {
  ScannedCount scanned;
  for (const auto& [key, fields] : entries_) {
    ++scanned.count;
    if (f(key)) {
      return;
    }
  }
}

bool Stream::AppendForDecode(StreamEntryKey key, Fields fields) {
  if (!entries_.empty() && !(entries_.LastKey() < key)) {
    return false;
  }
  return entries_.Insert(key, fields);
}

void Stream::JoinMetaForDecode(const RegisterEntry<StreamMeta>& entry) {
  const DotContext none;
  meta_.Join(StreamMetaCell::OfEntry(entry), none, none);
}

// ---- consumer groups ----

std::optional<GroupValue> Stream::FindSlot(const GroupSlot& slot) const {
  std::optional<GroupValue> out;
  Dot winner;
  for (auto it = groups_.lower_bound(SlotStart(slot));
       it != groups_.end() && it->first.slot == slot; ++it) {
    if (!out) {
      out = it->second;
      winner = it->first.dot;
    } else {
      Resolve(slot.part, it->second, it->first.dot, &winner, &*out);
    }
  }
  return out;
}

std::vector<std::string> Stream::GroupNames() const {
  std::vector<std::string> out;
  for (const auto& [key, value] : groups_) {
    if (key.slot.part == GroupPart::kGroup && (out.empty() || out.back() != key.slot.group)) {
      out.push_back(key.slot.group);
    }
  }
  return out;
}

void Stream::ForEachSlot(std::string_view group, GroupPart part,
                         absl::FunctionRef<void(const GroupSlot&, const GroupValue&)> f) const {
  auto it = groups_.lower_bound(SlotStart(GroupSlot{std::string(group), part, "", StreamId{}}));
  while (it != groups_.end() && it->first.slot.group == group && it->first.slot.part == part) {
    const GroupSlot& slot = it->first.slot;
    GroupValue value = it->second;
    Dot winner = it->first.dot;
    for (++it; it != groups_.end() && it->first.slot == slot; ++it) {
      Resolve(part, it->second, it->first.dot, &winner, &value);
    }
    f(slot, value);
  }
}

Stream Stream::WriteSlotDelta(const GroupSlot& slot, GroupValue value, WriteStamp& stamp,
                              DotContext& context) const {
  RemoveSlotDelta(slot, context);
  Stream delta;
  const Dot dot = stamp.dots->Next();
  value.hlc = stamp.hlc;
  delta.groups_.emplace(GroupItemKey{slot, dot}, std::move(value));
  context.Add(dot);
  return delta;
}

void Stream::RemoveSlotDelta(const GroupSlot& slot, DotContext& context) const {
  for (auto it = groups_.lower_bound(SlotStart(slot));
       it != groups_.end() && it->first.slot == slot; ++it) {
    context.Add(it->first.dot);
  }
}

void Stream::DestroyGroupDelta(std::string_view group, DotContext& context) const {
  auto it = groups_.lower_bound(SlotStart(GroupSlot{std::string(group)}));
  for (; it != groups_.end() && it->first.slot.group == group; ++it) {
    context.Add(it->first.dot);
  }
}

bool Stream::AppendGroupForDecode(GroupItemKey key, GroupValue value) {
  if (!groups_.empty() && !(groups_.rbegin()->first < key)) {
    return false;
  }
  groups_.emplace_hint(groups_.end(), std::move(key), std::move(value));
  return true;
}

}  // namespace lattice::crdt
