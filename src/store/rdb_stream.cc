#include "store/rdb_stream.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include "store/listpack.h"

namespace lattice::server {
namespace {

using crdt::StreamId;
using Fields = crdt::Stream::Fields;
using Entries = std::vector<std::pair<StreamId, Fields>>;

constexpr uint64_t kStringMax = uint64_t{512} << 20;
constexpr size_t kIdBytes = 16;
constexpr int64_t kFlagDeleted = 1;
constexpr int64_t kFlagSameFields = 2;
constexpr size_t kNodeEntriesMax = 100;  // stream-node-max-entries
constexpr size_t kNodeBytesMax = 4096;   // stream-node-max-bytes

// ---- Reading --------------------------------------------------------------------------------

StreamId IdFromBigEndian(std::string_view raw) {
  uint64_t ms = 0;
  uint64_t seq = 0;
  for (size_t i = 0; i < 8; ++i) ms = (ms << 8) | static_cast<uint8_t>(raw[i]);
  for (size_t i = 8; i < 16; ++i) seq = (seq << 8) | static_cast<uint8_t>(raw[i]);
  return {ms, seq};
}

bool ReadRawId(RdbReader& in, StreamId* id) {
  std::string_view raw;
  if (!in.Take(kIdBytes, &raw)) return false;
  *id = IdFromBigEndian(raw);
  return true;
}

bool ReadLengthId(RdbReader& in, StreamId* id) { return in.Length(&id->ms) && in.Length(&id->seq); }

bool ReadMs(RdbReader& in, int64_t* ms) {
  uint64_t raw = 0;
  if (!in.LittleEndian(8, &raw)) return false;
  *ms = static_cast<int64_t>(raw);
  return true;
}

// A listpack element that must be an integer (the stream's own numbers are written as such).
bool Integer(const std::string& text, int64_t* out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end && !text.empty();
}

// Walks one node's listpack elements: the master entry, then each entry.
class NodeReader {
 public:
  NodeReader(StreamId master, const std::vector<std::string>& items)
      : master_(master), items_(items) {}

  // Appends the node's live entries (IDs at least `*last`, which it advances) to *out.
  bool Read(StreamId* last, Entries* out) {
    int64_t live = 0;
    int64_t deleted = 0;
    int64_t fields = 0;
    if (!Int(&live) || !Int(&deleted) || !Int(&fields) || live < 0 || deleted < 0 || fields < 1 ||
        static_cast<uint64_t>(fields) > items_.size() - pos_) {
      return false;
    }
    for (int64_t i = 0; i < fields; ++i) master_fields_.push_back(items_[pos_++]);
    int64_t zero = -1;
    if (!Int(&zero) || zero != 0) return false;
    int64_t live_seen = 0;
    int64_t deleted_seen = 0;
    while (pos_ < items_.size()) {
      bool is_deleted = false;
      std::pair<StreamId, Fields> entry;
      if (!Entry(&entry, &is_deleted) || entry.first < *last || entry.first < master_) return false;
      *last = entry.first;
      if (is_deleted) {
        ++deleted_seen;
      } else {
        ++live_seen;
        out->push_back(std::move(entry));
      }
    }
    return live_seen == live && deleted_seen == deleted && live + deleted > 0;
  }

 private:
  bool Int(int64_t* out) { return pos_ < items_.size() && Integer(items_[pos_++], out); }

  bool Entry(std::pair<StreamId, Fields>* entry, bool* is_deleted) {
    int64_t flags = 0;
    int64_t ms_diff = 0;
    int64_t seq_diff = 0;
    if (!Int(&flags) || !Int(&ms_diff) || !Int(&seq_diff) || flags < 0 || flags > 3) return false;
    *is_deleted = (flags & kFlagDeleted) != 0;
    const bool same = (flags & kFlagSameFields) != 0;
    // Wrapping arithmetic, as the writer's differences of unsigned IDs.
    entry->first = {master_.ms + static_cast<uint64_t>(ms_diff),
                    master_.seq + static_cast<uint64_t>(seq_diff)};
    int64_t fields = static_cast<int64_t>(master_fields_.size());
    if (!same && (!Int(&fields) || fields < 1)) return false;
    const uint64_t values = same ? fields : 2 * static_cast<uint64_t>(fields);
    if (values > items_.size() - pos_) return false;
    for (int64_t i = 0; i < fields; ++i) {
      if (same) entry->second.push_back(master_fields_[i]);
      if (!same) entry->second.push_back(items_[pos_++]);
      entry->second.push_back(items_[pos_++]);
    }
    int64_t elements = 0;
    return Int(&elements) && elements == (same ? fields + 3 : 2 * fields + 4);
  }

  StreamId master_;
  const std::vector<std::string>& items_;
  size_t pos_ = 0;
  std::vector<std::string> master_fields_;
};

bool ReadNodes(RdbReader& in, Entries* out) {
  uint64_t nodes = 0;
  if (!in.Length(&nodes) || nodes > in.remaining()) return false;
  StreamId last;
  for (uint64_t i = 0; i < nodes; ++i) {
    std::string key;
    std::string blob;
    std::vector<std::string> items;
    if (!in.String(&key, kIdBytes) || key.size() != kIdBytes || !in.String(&blob, kStringMax) ||
        !ParseListpack(blob, &items)) {
      return false;
    }
    const StreamId master = IdFromBigEndian(key);
    if (i > 0 && !(last < master)) return false;  // node keys are unique and in order
    if (!NodeReader(master, items).Read(&last, out)) return false;
  }
  return true;
}

bool ReadMeta(RdbReader& in, uint8_t rdb_type, uint64_t entries, crdt::StreamMeta* meta) {
  uint64_t length = 0;
  if (!in.Length(&length) || length != entries || !ReadLengthId(in, &meta->last_id)) return false;
  if (rdb_type == kRdbStreamListpacks) {
    meta->entries_added = length;
    return true;
  }
  StreamId first;  // recomputed from the entries
  return ReadLengthId(in, &first) && ReadLengthId(in, &meta->max_deleted) &&
         in.Length(&meta->entries_added);
}

bool ReadPel(RdbReader& in, std::vector<RdbStreamNack>* pel) {
  uint64_t count = 0;
  if (!in.Length(&count) || count > in.remaining() / (kIdBytes + 9)) return false;
  pel->reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    RdbStreamNack nack;
    if (!ReadRawId(in, &nack.id) || !ReadMs(in, &nack.delivery_ms) ||
        !in.Length(&nack.delivery_count)) {
      return false;
    }
    if (!pel->empty() && !(pel->back().id < nack.id)) return false;
    pel->push_back(nack);
  }
  return true;
}

// A consumer's pending IDs: each in the group's PEL and owned by no other consumer.
bool ReadConsumerPel(RdbReader& in, const std::vector<RdbStreamNack>& pel, std::vector<bool>& owned,
                     std::vector<StreamId>* out) {
  uint64_t count = 0;
  if (!in.Length(&count) || count > in.remaining() / kIdBytes) return false;
  for (uint64_t i = 0; i < count; ++i) {
    StreamId id;
    if (!ReadRawId(in, &id)) return false;
    const auto it = std::lower_bound(pel.begin(), pel.end(), id,
                                     [](const RdbStreamNack& n, StreamId v) { return n.id < v; });
    if (it == pel.end() || it->id != id || owned[it - pel.begin()]) return false;
    owned[it - pel.begin()] = true;
    out->push_back(id);
  }
  std::sort(out->begin(), out->end());
  return true;
}

bool ReadConsumers(RdbReader& in, uint8_t rdb_type, RdbStreamGroup* group) {
  uint64_t count = 0;
  if (!in.Length(&count) || count > in.remaining()) return false;
  std::vector<bool> owned(group->pending.size(), false);
  std::set<std::string> names;
  for (uint64_t i = 0; i < count; ++i) {
    RdbStreamConsumer consumer;
    if (!in.String(&consumer.name, kStringMax) || !ReadMs(in, &consumer.seen_ms)) return false;
    consumer.active_ms = consumer.seen_ms;
    if (rdb_type == kRdbStreamListpacks3 && !ReadMs(in, &consumer.active_ms)) return false;
    if (!names.insert(consumer.name).second ||
        !ReadConsumerPel(in, group->pending, owned, &consumer.pending)) {
      return false;
    }
    group->consumers.push_back(std::move(consumer));
  }
  return std::all_of(owned.begin(), owned.end(), [](bool b) { return b; });
}

bool ReadGroups(RdbReader& in, uint8_t rdb_type, RdbStreamGroups* groups) {
  uint64_t count = 0;
  if (!in.Length(&count) || count > in.remaining()) return false;
  std::set<std::string> names;
  for (uint64_t i = 0; i < count; ++i) {
    RdbStreamGroup group;
    if (!in.String(&group.name, kStringMax) || !ReadLengthId(in, &group.last_id)) return false;
    if (rdb_type != kRdbStreamListpacks) {
      uint64_t entries_read = 0;
      if (!in.Length(&entries_read)) return false;
      group.entries_read = entries_read > INT64_MAX ? -1 : static_cast<int64_t>(entries_read);
    }
    if (!names.insert(group.name).second || !ReadPel(in, &group.pending) ||
        !ReadConsumers(in, rdb_type, &group)) {
      return false;
    }
    groups->push_back(std::move(group));
  }
  return true;
}

// ---- Writing --------------------------------------------------------------------------------

void PutBigEndianId(std::string& out, StreamId id) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(id.ms >> (8 * i)));
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(id.seq >> (8 * i)));
}

void PutMs(std::string& out, int64_t ms) {
  const auto raw = static_cast<uint64_t>(ms);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(raw >> (8 * i)));
}

void PutLengthId(std::string& out, StreamId id) {
  RdbPutLength(out, id.ms);
  RdbPutLength(out, id.seq);
}

bool SameFields(const Fields& master, const Fields& entry) {
  if (master.size() != entry.size()) return false;
  for (size_t i = 0; i < entry.size(); i += 2) {
    if (master[i] != entry[i]) return false;
  }
  return true;
}

// One node's listpack: entries[begin, end), the first one's fields as the master fields.
std::string NodeListpack(const Entries& entries, size_t begin, size_t end) {
  const StreamId master = entries[begin].first;
  const Fields& master_fields = entries[begin].second;
  ListpackWriter lp;
  lp.AddInteger(static_cast<int64_t>(end - begin));
  lp.AddInteger(0);
  lp.AddInteger(static_cast<int64_t>(master_fields.size() / 2));
  for (size_t i = 0; i < master_fields.size(); i += 2) lp.AddString(master_fields[i]);
  lp.AddInteger(0);
  for (size_t e = begin; e < end; ++e) {
    const auto& [id, fields] = entries[e];
    const bool same = SameFields(master_fields, fields);
    const auto count = static_cast<int64_t>(fields.size() / 2);
    lp.AddInteger(same ? kFlagSameFields : 0);
    lp.AddInteger(static_cast<int64_t>(id.ms - master.ms));
    lp.AddInteger(static_cast<int64_t>(id.seq - master.seq));
    if (!same) lp.AddInteger(count);
    for (size_t i = 0; i < fields.size(); i += 2) {
      if (!same) lp.AddString(fields[i]);
      lp.AddString(fields[i + 1]);
    }
    lp.AddInteger(same ? count + 3 : 2 * count + 4);
  }
  return std::move(lp).Finish();
}

size_t EntryBytes(const Fields& fields) {
  size_t bytes = 8;  // flags, ID differences, counts
  for (const std::string& f : fields) bytes += f.size() + 2;
  return bytes;
}

// Node boundaries: a node ends at kNodeEntriesMax entries or about kNodeBytesMax bytes, but
// never between two entries with one ID (node keys are unique, and a later node's entries are
// above every earlier node's).
std::vector<size_t> NodeStarts(const Entries& entries) {
  std::vector<size_t> starts;
  size_t bytes = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const bool full =
        !starts.empty() && (i - starts.back() >= kNodeEntriesMax || bytes >= kNodeBytesMax);
    if (starts.empty() || (full && entries[i - 1].first < entries[i].first)) {
      starts.push_back(i);
      bytes = 0;
    }
    bytes += EntryBytes(entries[i].second);
  }
  return starts;
}

void PutNodes(std::string& out, const Entries& entries) {
  const std::vector<size_t> starts = NodeStarts(entries);
  RdbPutLength(out, starts.size());
  for (size_t n = 0; n < starts.size(); ++n) {
    const size_t end = n + 1 < starts.size() ? starts[n + 1] : entries.size();
    std::string key;
    PutBigEndianId(key, entries[starts[n]].first);
    RdbPutString(out, key);
    RdbPutString(out, NodeListpack(entries, starts[n], end));
  }
}

void PutGroup(std::string& out, const RdbStreamGroup& group, uint8_t rdb_type) {
  RdbPutString(out, group.name);
  PutLengthId(out, group.last_id);
  RdbPutLength(out, static_cast<uint64_t>(group.entries_read));  // -1 as Valkey writes it
  RdbPutLength(out, group.pending.size());
  for (const RdbStreamNack& nack : group.pending) {
    PutBigEndianId(out, nack.id);
    PutMs(out, nack.delivery_ms);
    RdbPutLength(out, nack.delivery_count);
  }
  RdbPutLength(out, group.consumers.size());
  for (const RdbStreamConsumer& consumer : group.consumers) {
    RdbPutString(out, consumer.name);
    PutMs(out, consumer.seen_ms);
    if (rdb_type == kRdbStreamListpacks3) PutMs(out, consumer.active_ms);
    RdbPutLength(out, consumer.pending.size());
    for (const StreamId& id : consumer.pending) PutBigEndianId(out, id);
  }
}

// ---- Converting groups ----------------------------------------------------------------------

using crdt::GroupPart;
using crdt::GroupSlot;
using crdt::GroupValue;

// One group being assembled from in-memory slots: consumers by name and pending entries by ID
// (Valkey's radix trees' order), each pending entry with its owner.
struct RdbGroupBuild {
  RdbStreamGroup group;
  std::map<std::string, RdbStreamConsumer> consumers;
  std::map<StreamId, std::pair<RdbStreamNack, std::string>> pending;
};

// Hands each pending entry to its owner (one made for an owner that is not a consumer).
void AssignRdbPending(RdbGroupBuild& build) {
  std::set<std::string> made;
  for (const auto& [id, item] : build.pending) {
    const auto& [nack, owner] = item;
    auto [it, added] = build.consumers.try_emplace(owner);
    RdbStreamConsumer& consumer = it->second;
    if (added) {
      made.insert(owner);
      consumer.name = owner;
      consumer.seen_ms = consumer.active_ms = nack.delivery_ms;
    } else if (made.contains(owner)) {
      consumer.seen_ms = consumer.active_ms = std::max(consumer.seen_ms, nack.delivery_ms);
    }
    consumer.pending.push_back(id);
    build.group.pending.push_back(nack);
  }
  for (auto& [name, consumer] : build.consumers) build.group.consumers.push_back(consumer);
}

}  // namespace

RdbStreamGroups RdbGroupsFromVisible(const VisibleGroups& slots) {
  std::map<std::string, RdbGroupBuild> builds;
  for (const auto& [slot, value] : slots) {
    if (slot.part != GroupPart::kGroup) continue;
    RdbStreamGroup& group = builds[slot.group].group;
    group.name = slot.group;
    group.last_id = value.last_id;
    group.entries_read = value.entries_read;
  }
  for (const auto& [slot, value] : slots) {
    auto it = builds.find(slot.group);
    if (it == builds.end() || slot.part == GroupPart::kGroup) continue;
    if (slot.part == GroupPart::kConsumer) {
      it->second.consumers[slot.consumer] =
          RdbStreamConsumer{slot.consumer, value.seen_ms, value.active_ms, {}};
    } else {
      it->second.pending[slot.id] = {RdbStreamNack{slot.id, value.seen_ms, value.deliveries},
                                     value.owner};
    }
  }
  RdbStreamGroups out;
  for (auto& [name, build] : builds) {
    AssignRdbPending(build);
    out.push_back(std::move(build.group));
  }
  return out;
}

VisibleGroups VisibleGroupsFromRdb(const RdbStreamGroups& groups) {
  std::vector<const RdbStreamGroup*> sorted;
  for (const RdbStreamGroup& group : groups) sorted.push_back(&group);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  VisibleGroups out;
  for (const RdbStreamGroup* group : sorted) {
    out.emplace_back(GroupSlot{group->name},
                     GroupValue{.last_id = group->last_id, .entries_read = group->entries_read});
    std::map<StreamId, std::string> owners;
    std::vector<const RdbStreamConsumer*> consumers;
    for (const RdbStreamConsumer& consumer : group->consumers) consumers.push_back(&consumer);
    std::sort(consumers.begin(), consumers.end(),
              [](auto* a, auto* b) { return a->name < b->name; });
    for (const RdbStreamConsumer* consumer : consumers) {
      out.emplace_back(GroupSlot{group->name, GroupPart::kConsumer, consumer->name, StreamId{}},
                       GroupValue{.seen_ms = consumer->seen_ms, .active_ms = consumer->active_ms});
      for (const StreamId& id : consumer->pending) owners.emplace(id, consumer->name);
    }
    for (const RdbStreamNack& nack : group->pending) {
      const auto owner = owners.find(nack.id);
      if (owner == owners.end()) continue;
      out.emplace_back(GroupSlot{group->name, GroupPart::kPending, "", nack.id},
                       GroupValue{.seen_ms = nack.delivery_ms,
                                  .owner = owner->second,
                                  .deliveries = nack.delivery_count});
    }
  }
  return out;
}

bool ReadRdbStream(RdbReader& in, uint8_t rdb_type, VisibleValue* value, RdbStreamGroups* groups) {
  if (rdb_type != kRdbStreamListpacks && rdb_type != kRdbStreamListpacks2 &&
      rdb_type != kRdbStreamListpacks3) {
    return false;
  }
  value->type = crdt::ObjectType::kStream;
  if (!ReadNodes(in, &value->stream) ||
      !ReadMeta(in, rdb_type, value->stream.size(), &value->stream_meta) ||
      !ReadGroups(in, rdb_type, groups)) {
    return false;
  }
  value->stream_groups = VisibleGroupsFromRdb(*groups);
  return true;
}

uint8_t RdbStreamTypeFor(const RdbStreamGroups& groups) {
  for (const RdbStreamGroup& group : groups) {
    for (const RdbStreamConsumer& consumer : group.consumers) {
      if (consumer.active_ms != consumer.seen_ms) return kRdbStreamListpacks3;
    }
  }
  return kRdbStreamListpacks2;
}

void PutRdbStream(std::string& out, const VisibleValue& value, const RdbStreamGroups& groups,
                  uint8_t rdb_type) {
  const Entries& entries = value.stream;
  PutNodes(out, entries);
  RdbPutLength(out, entries.size());
  PutLengthId(out, value.stream_meta.last_id);
  PutLengthId(out, entries.empty() ? StreamId{} : entries.front().first);
  PutLengthId(out, value.stream_meta.max_deleted);
  RdbPutLength(out, value.stream_meta.entries_added);
  RdbPutLength(out, groups.size());
  for (const RdbStreamGroup& group : groups) PutGroup(out, group, rdb_type);
}

}  // namespace lattice::server
