#pragma once
// Stream: the Valkey stream type as a causal dot store of immutable entries (Almeida, Shoker,
// Baquero, "Delta state replicated data types", 2018), plus one register of stream metadata.
//
// - An entry is (ID, dot) -> its field/value pairs. The dot is that of the XADD that wrote it,
//   so an entry's identity is unique even when two regions write the same ID concurrently: both
//   entries stay, ordered by (ID, replica, seq), and every region lists them alike. IDs a region
//   generates never repeat its own, and regions generate IDs from their own clocks, so a
//   collision needs two regions to add at the same millisecond concurrently; in one region the
//   replies are exactly Valkey's (docs/semantics.md, "Streams").
// - XDEL, XTRIM and DEL are observed removes: the remove's context covers the dots of the
//   entries its writer saw, so an entry a concurrent XADD wrote survives. No tombstones.
// - The metadata (last generated ID, max deleted ID, entries added) is a Register<StreamMeta>:
//   every XADD/XDEL/XTRIM/XSETID writes it, observing what it saw; concurrent writes both stay and
//   the visible metadata is their element-wise maximum (and the last ID is at least the greatest
//   entry's), so an ID generated after a merge is above every ID either region generated.
//
// - Consumer groups are a second dot store beside the entries: items keyed by a slot (group,
//   part, consumer or entry ID) and a dot. A write of a slot removes the dots of that slot it
//   observed and adds one item (an optimistic multi-value register per slot); a remove (XACK,
//   DELCONSUMER, DESTROY) covers the observed dots only, so a concurrent write survives it. The
//   visible value of a slot with concurrent items: a group's last-delivered ID and entries-read
//   are their maximum, a consumer's seen/active times their maximum, and a pending entry's
//   owner, delivery time and count those of the item with the greatest (hlc, dot) - one owner in
//   every region. Every write that adds a consumer or pending item also rewrites its group's
//   kGroup slot, so a group concurrently destroyed comes back with what the write added, never
//   half (docs/semantics.md, "Consumer groups"). Times are the writer's, passed in.
//
// The stream exists while it holds an entry, a live metadata entry or a group item, as a Valkey
// stream exists while empty. Value type; not thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/functional/function_ref.h"
#include "lattice/crdt/causal.h"
#include "lattice/crdt/register.h"
#include "lattice/crdt/stream_entries.h"

namespace lattice::crdt {

struct StreamMeta {
  StreamId last_id;
  StreamId max_deleted;
  uint64_t entries_added = 0;
  bool operator==(const StreamMeta&) const = default;
};

using StreamMetaCell = Register<StreamMeta>;

// The three parts of a consumer group's state.
enum class GroupPart : uint8_t { kGroup = 0, kConsumer = 1, kPending = 2 };

// What a group item is about: the group, then the consumer's name (kConsumer) or the pending
// entry's ID (kPending); the other field is empty.
struct GroupSlot {
  std::string group;
  GroupPart part = GroupPart::kGroup;
  std::string consumer;
  StreamId id;
  auto operator<=>(const GroupSlot&) const = default;
};

struct GroupItemKey {
  GroupSlot slot;
  Dot dot;
  auto operator<=>(const GroupItemKey&) const = default;
};

// One written value of a slot; the fields of its part only are meaningful.
struct GroupValue {
  StreamId last_id;           // kGroup: last-delivered ID
  int64_t entries_read = -1;  // kGroup: -1 is Valkey's "invalid" (unknown)
  int64_t seen_ms = 0;        // kConsumer: seen-time; kPending: delivery time
  int64_t active_ms = -1;     // kConsumer: active-time (-1: never)
  std::string owner;          // kPending: the consumer it was delivered to
  uint64_t deliveries = 0;    // kPending: delivery count
  uint64_t hlc = 0;           // the writer's HLC: the order of concurrent pending items
  bool operator==(const GroupValue&) const = default;
};

using GroupItems = absl::btree_map<GroupItemKey, GroupValue>;

class Stream {
 public:
  // field, value, field, value, ...
  using Fields = std::vector<std::string>;
  // Packed in blocks (stream_entries.h); iterating yields (key, StreamFieldsView).
  using Entries = StreamEntries;

  bool empty() const { return entries_.empty() && meta_.empty() && groups_.empty(); }
  size_t Size() const { return entries_.size(); }
  const Entries& entries() const { return entries_; }
  const StreamMetaCell& meta_cell() const { return meta_; }
  // The visible metadata: the element-wise maximum of the live metadata entries, with last_id at
  // least the greatest entry's ID.
  StreamMeta Meta() const;
  std::optional<StreamId> FirstId() const;
  std::optional<StreamId> LastId() const;

  // Delta builders: *this is not modified; `context` receives the dots the delta covers.
  Stream AddDelta(StreamId id, Fields fields, WriteStamp& stamp, DotContext& context) const;
  Stream MetaDelta(const StreamMeta& meta, WriteStamp& stamp, DotContext& context) const;
  // XADD in place (Key::XEdit): adds the entry, whose ID must be above every entry's, to *this
  // with a fresh dot and returns the delta AddDelta would (appending codes one entry).
  Stream AppendLocal(StreamId id, const Fields& fields, WriteStamp& stamp, DotContext& context);
  // The metadata cell replaced outright (Key::XEdit's in-place write, which observed it).
  void set_meta_cell(StreamMetaCell cell) { meta_ = std::move(cell); }
  // The remove of `keys` (entries this stream holds) is its context alone.
  void RemoveDelta(const std::vector<StreamEntryKey>& keys, DotContext& context) const;
  void CollectDots(DotContext& out) const;

  void Join(const Stream& other, const DotContext& mine, const DotContext& theirs);
  // Join restricted to the entries `other` holds and the entries in `touched` (and the metadata):
  // the same result as Join when `theirs` covers no dot of another entry of *this.
  void JoinSome(const Stream& other, const DotContext& mine, const DotContext& theirs,
                const std::vector<StreamEntryKey>& touched);
  // Calls f(dot) for every group item (what a delta join must account for).
  void ForEachGroupDot(absl::FunctionRef<void(Dot)> f) const {
    for (const auto& [key, value] : groups_) f(key.dot);
  }
  // Calls f(key) for every entry, in ID order, until f returns true.
  void ScanEntries(absl::FunctionRef<bool(const StreamEntryKey&)> f) const;
  size_t MetadataItems() const { return entries_.size() + meta_.MetadataItems() + groups_.size(); }

  // ---- consumer groups (the rule in the header comment) ----
  // Every item as stored, concurrent values of a slot included (the codec's and an encoder's
  // view; ordered by slot, then dot).
  const GroupItems& group_items() const { return groups_; }
  // The visible value of a slot (concurrent items resolved), or nullopt when it has none.
  std::optional<GroupValue> FindSlot(const GroupSlot& slot) const;
  // The groups that exist (a live kGroup slot), in name order.
  std::vector<std::string> GroupNames() const;
  // Calls f(slot, visible value) for each slot of `part` in `group`, in slot order.
  void ForEachSlot(std::string_view group, GroupPart part,
                   absl::FunctionRef<void(const GroupSlot&, const GroupValue&)> f) const;
  // Delta builders, as above: a write replaces the slot's observed items with `value`; a remove
  // covers the slot's items (RemoveSlotDelta) or every item of the group (DestroyGroupDelta).
  Stream WriteSlotDelta(const GroupSlot& slot, GroupValue value, WriteStamp& stamp,
                        DotContext& context) const;
  void RemoveSlotDelta(const GroupSlot& slot, DotContext& context) const;
  void DestroyGroupDelta(std::string_view group, DotContext& context) const;
  // Decoding: items in key order (false: out of order).
  bool AppendGroupForDecode(GroupItemKey key, GroupValue value);

  // Decoding (the codec and the RDB reader): entries in key order; metadata entries joined.
  bool AppendForDecode(StreamEntryKey key, Fields fields);
  void JoinMetaForDecode(const RegisterEntry<StreamMeta>& entry);

  bool operator==(const Stream&) const = default;

 private:
  void JoinGroups(const Stream& other, const DotContext& mine, const DotContext& theirs);

  Entries entries_;
  StreamMetaCell meta_;
  GroupItems groups_;
};

}  // namespace lattice::crdt
