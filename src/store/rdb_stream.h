#pragma once
// A stream in Valkey's RDB encoding (types 15, 19 and 21: what Redis 5 to 6.2, Redis 7.0, and
// Redis 7.2 / Valkey 7.2 to 9 write), read and written for store/rdb_value.h, so DUMP, RESTORE,
// the RDB file reader and writer and the replica stream share one stream codec. A stream is:
// - its nodes: a count, then per node its master ID (16 bytes, ms then seq, big-endian) and a
//   listpack (store/listpack.h) holding the master entry (live count, deleted count, the master
//   field names, 0) and then each entry: flags (1 deleted, 2 same fields as the master), the ID
//   as ms and seq differences from the master ID, the field count and field/value pairs (or the
//   values alone, with same fields), and the entry's element count;
// - its metadata: length, last ID, and (19, 21) first ID, max deleted ID, entries added;
// - its consumer groups: name, last delivered ID, (19, 21) entries read, the pending entries list
//   (ID, delivery time in ms, delivery count), and the consumers (name, seen time, (21) active
//   time, the IDs of their pending entries).
// The in-memory groups (VisibleValue::stream_groups: one resolved value per slot) and this form
// convert both ways (RdbGroupsFromVisible, VisibleGroupsFromRdb): ReadRdbStream fills both, and
// PutRdbStream writes the value's own groups, so DUMP, RESTORE, MIGRATE, the file writer and
// reader carry a stream's groups whole.
// Reading checks every count against the payload and the structure against itself (element
// counts, IDs in order, each consumer's pending entry in its group's list and owned once, no
// duplicate group or consumer names); a deleted entry is dropped. Writing puts at most 100
// entries (or about 4 KB) in a node, as Valkey's stream-node-max-entries/-bytes defaults.
// Pure functions; thread-safe.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "store/keyspace.h"
#include "util/rdb.h"

namespace lattice::server {

enum RdbStreamType : uint8_t {
  kRdbStreamListpacks = 15,   // Redis 5 to 6.2
  kRdbStreamListpacks2 = 19,  // Redis 7.0 (RDB 10): + first ID, max deleted ID, entries added/read
  kRdbStreamListpacks3 = 21,  // Redis 7.2, Valkey (RDB 11+): + each consumer's active time
};

// An entry of a consumer group's pending entries list (PEL).
struct RdbStreamNack {
  crdt::StreamId id;
  int64_t delivery_ms = 0;
  uint64_t delivery_count = 0;
  bool operator==(const RdbStreamNack&) const = default;
};

struct RdbStreamConsumer {
  std::string name;
  int64_t seen_ms = 0;
  int64_t active_ms = 0;                // read as seen_ms from types 15 and 19 (Valkey's rule)
  std::vector<crdt::StreamId> pending;  // its entries of the group's PEL, in ID order
  bool operator==(const RdbStreamConsumer&) const = default;
};

struct RdbStreamGroup {
  std::string name;
  crdt::StreamId last_id;
  int64_t entries_read = -1;           // -1: not known (type 15, or Valkey's invalid value)
  std::vector<RdbStreamNack> pending;  // in ID order; every one owned by one consumer
  std::vector<RdbStreamConsumer> consumers;
  bool operator==(const RdbStreamGroup&) const = default;
};

using RdbStreamGroups = std::vector<RdbStreamGroup>;
using VisibleGroups = std::vector<std::pair<crdt::GroupSlot, crdt::GroupValue>>;

// The RDB form of in-memory groups: groups, consumers and pending entries in name and ID order
// (as Valkey's radix trees write them); slots of a group that does not exist (no kGroup slot) are
// left out. A pending entry whose owner is not a consumer of the group (two regions' concurrent
// DELCONSUMER and delivery can leave one) gets that consumer, seen and active at the entry's
// latest delivery time, since the RDB form has no entry without a consumer.
RdbStreamGroups RdbGroupsFromVisible(const VisibleGroups& slots);
// The in-memory form of groups read from RDB: per group (in name order) its kGroup slot, its
// consumers, then its pending entries, each pending entry owned by the consumer that lists it
// (an entry no consumer lists is left out; the reader refuses such a payload).
VisibleGroups VisibleGroupsFromRdb(const RdbStreamGroups& groups);

// Reads a stream of `rdb_type` (15, 19 or 21) at `in`'s position: its live entries and metadata
// into value->stream and value->stream_meta (type 15: no max deleted ID, entries added = length),
// its groups into *groups and value->stream_groups. False when malformed.
bool ReadRdbStream(RdbReader& in, uint8_t rdb_type, VisibleValue* value, RdbStreamGroups* groups);

// The type a stream is written as: 21 when some consumer's active time differs from its seen time
// (only RDB 11 and later read it), else 19, which redis-server 7.0 and every later version read.
uint8_t RdbStreamTypeFor(const RdbStreamGroups& groups);

// Appends value->stream, its metadata and `groups` (RdbGroupsFromVisible of its stream_groups) as
// `rdb_type` (19 or 21), without the type byte. Entries with equal IDs (two regions' concurrent
// XADDs, docs/semantics.md "Streams") stay adjacent in one node.
void PutRdbStream(std::string& out, const VisibleValue& value, const RdbStreamGroups& groups,
                  uint8_t rdb_type);

}  // namespace lattice::server
