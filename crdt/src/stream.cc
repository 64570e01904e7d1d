#include "lattice/crdt/stream.h"

#include <algorithm>

#include "lattice/crdt/join_stats.h"

namespace lattice::crdt {

namespace {

// The dot-store rule for one entry: kept when both sides hold it, or one side does and the other
// side's context has not seen its dot.
void JoinEntry(Stream::Entries& mine, const DotContext& my_context, const Stream::Entries& theirs,
               const DotContext& their_context, const StreamEntryKey& key) {
  auto a = mine.find(key);
  auto b = theirs.find(key);
  if (a != mine.end()) {
    if (b == theirs.end() && their_context.Contains(key.dot)) {
      mine.erase(a);
    }
  } else if (b != theirs.end() && !my_context.Contains(key.dot)) {
    mine.emplace(key, b->second);
  }
}

}  // namespace

StreamMeta Stream::Meta() const {
  StreamMeta out;
  for (const RegisterEntry<StreamMeta>& entry : meta_.Entries()) {
    out.last_id = std::max(out.last_id, entry.value.last_id);
    out.max_deleted = std::max(out.max_deleted, entry.value.max_deleted);
    out.entries_added = std::max(out.entries_added, entry.value.entries_added);
  }
  if (!entries_.empty()) {
    out.last_id = std::max(out.last_id, entries_.rbegin()->first.id);
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
  return entries_.rbegin()->first.id;
}

Stream Stream::AddDelta(StreamId id, Fields fields, WriteStamp& stamp, DotContext& context) const {
  Stream delta;
  const Dot dot = stamp.dots->Next();
  delta.entries_.emplace(StreamEntryKey{id, dot}, std::move(fields));
  context.Add(dot);
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
}

void Stream::Join(const Stream& other, const DotContext& mine, const DotContext& theirs) {
  ThreadJoinStats().elements += entries_.size() + other.entries_.size();
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (!other.entries_.contains(it->first) && theirs.Contains(it->first.dot)) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [key, fields] : other.entries_) {
    if (!entries_.contains(key) && !mine.Contains(key.dot)) {
      entries_.emplace(key, fields);
    }
  }
  meta_.Join(other.meta_, mine, theirs);
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
  if (!entries_.empty() && !(entries_.rbegin()->first < key)) {
    return false;
  }
  entries_.emplace_hint(entries_.end(), key, std::move(fields));
  return true;
}

void Stream::JoinMetaForDecode(const RegisterEntry<StreamMeta>& entry) {
  const DotContext none;
  meta_.Join(StreamMetaCell::OfEntry(entry), none, none);
}

}  // namespace lattice::crdt
