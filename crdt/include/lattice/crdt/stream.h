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
// The stream exists while it holds an entry or a live metadata entry, as a Valkey stream
// exists while empty. Value type; not thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/functional/function_ref.h"
#include "lattice/crdt/causal.h"
#include "lattice/crdt/register.h"

namespace lattice::crdt {

struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;
  auto operator<=>(const StreamId&) const = default;
  static constexpr StreamId Max() { return StreamId{UINT64_MAX, UINT64_MAX}; }
};

// An entry's identity: its ID, then the dot of the XADD that wrote it (the tie-break of two
// regions' entries with one ID).
struct StreamEntryKey {
  StreamId id;
  Dot dot;
  auto operator<=>(const StreamEntryKey&) const = default;
};

struct StreamMeta {
  StreamId last_id;
  StreamId max_deleted;
  uint64_t entries_added = 0;
  bool operator==(const StreamMeta&) const = default;
};

using StreamMetaCell = Register<StreamMeta>;

class Stream {
 public:
  // field, value, field, value, ...
  using Fields = std::vector<std::string>;
  using Entries = absl::btree_map<StreamEntryKey, Fields>;

  bool empty() const { return entries_.empty() && meta_.empty(); }
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
  // The remove of `keys` (entries this stream holds) is its context alone.
  void RemoveDelta(const std::vector<StreamEntryKey>& keys, DotContext& context) const;
  void CollectDots(DotContext& out) const;

  void Join(const Stream& other, const DotContext& mine, const DotContext& theirs);
  // Join restricted to the entries `other` holds and the entries in `touched` (and the metadata):
  // the same result as Join when `theirs` covers no dot of another entry of *this.
  void JoinSome(const Stream& other, const DotContext& mine, const DotContext& theirs,
                const std::vector<StreamEntryKey>& touched);
  // Calls f(key) for every entry, in ID order, until f returns true.
  void ScanEntries(absl::FunctionRef<bool(const StreamEntryKey&)> f) const;
  size_t MetadataItems() const { return entries_.size() + meta_.MetadataItems(); }

  // Decoding (the codec and the RDB reader): entries in key order; metadata entries joined.
  bool AppendForDecode(StreamEntryKey key, Fields fields);
  void JoinMetaForDecode(const RegisterEntry<StreamMeta>& entry);

  bool operator==(const Stream&) const = default;

 private:
  Entries entries_;
  StreamMetaCell meta_;
};

}  // namespace lattice::crdt
