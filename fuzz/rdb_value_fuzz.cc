// Fuzz target: the RDB value decoder RESTORE runs on a client's payload (store/rdb_value.h and
// the framing in util/rdb.h), and the consumer-group encoder DUMP runs on a stream's in-memory
// groups (store/rdb_stream.h). The first byte picks:
//   0/1  DecodeDumpPayload(rest, relaxed = byte & 1): the footer, then the value;
//   2    DecodeRdbValue(rest): a value without footer (what an RDB file reader would hand it);
//   3    in-memory groups built from `rest` (any slots: unknown groups, owners that are not
//        consumers, repeated slots), encoded with a one-entry stream.
// Checked: never crashes, never reads past its input, never allocates without bound; a value
// that decodes re-encodes (EncodeDumpPayload) to a payload that decodes to the same value (less
// hash field TTLs, which a version 10 payload cannot carry), a stream's consumer groups included
// (decode(encode(x)) == x), none dropped in the conversion to memory and back; any
// in-memory groups encode to a payload that decodes, and re-encode to the same bytes.
// Seeds include redis-server 7.0's stream payloads (redis7_x_*).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "store/rdb_value.h"

namespace {

using lattice::server::RdbStreamGroups;
using lattice::server::VisibleValue;

// The slots `groups` holds: one per group, consumer and pending entry.
size_t SlotCount(const RdbStreamGroups& groups) {
  size_t slots = 0;
  for (const auto& group : groups) slots += 1 + group.consumers.size() + group.pending.size();
  return slots;
}

// Mode 3: each 4 bytes of `rest` is one slot: part, group, consumer or owner, ID and number.
VisibleValue GroupsFromBytes(std::string_view rest) {
  VisibleValue value{.type = lattice::crdt::ObjectType::kStream};
  value.stream.push_back({{1, 0}, {"f", "v"}});
  value.stream_meta.last_id = {1, 0};
  value.stream_meta.entries_added = 1;
  for (size_t i = 0; i + 4 <= rest.size(); i += 4) {
    const auto byte = [&](size_t k) { return uint64_t{static_cast<uint8_t>(rest[i + k])}; };
    lattice::crdt::GroupSlot slot{std::string(1, static_cast<char>('a' + byte(1) % 3))};
    lattice::crdt::GroupValue v;
    const std::string name(1, static_cast<char>('p' + byte(2) % 4));
    slot.part = static_cast<lattice::crdt::GroupPart>(byte(0) % 3);
    if (slot.part == lattice::crdt::GroupPart::kConsumer) slot.consumer = name;
    if (slot.part == lattice::crdt::GroupPart::kPending) slot.id = {byte(3) % 8, 0};
    v.owner = name;
    v.last_id = {byte(3), 1};
    v.entries_read = static_cast<int64_t>(byte(3)) - 1;
    v.seen_ms = static_cast<int64_t>(byte(3)) * 1000;
    v.active_ms = byte(0) >= 128 ? v.seen_ms : -1;
    v.deliveries = byte(2);
    value.stream_groups.emplace_back(std::move(slot), std::move(v));
  }
  return value;
}

void CheckGroupEncoding(std::string_view rest) {
  const VisibleValue value = GroupsFromBytes(rest);
  const std::string payload = lattice::server::EncodeDumpPayload(value);
  const lattice::Result<VisibleValue> back = lattice::server::DecodeDumpPayload(payload, false);
  if (!back.ok() || lattice::server::EncodeDumpPayload(*back) != payload) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] == 3) {
    CheckGroupEncoding(rest.substr(0, 4096));
    return 0;
  }
  RdbStreamGroups groups;
  lattice::Result<VisibleValue> value =
      data[0] < 2 ? lattice::server::DecodeDumpPayload(rest, (data[0] & 1) != 0, &groups)
                  : lattice::server::DecodeRdbValue(rest, &groups);
  if (!value.ok()) return 0;
  for (VisibleValue::HashEntry& entry : value->hash) entry.ttl_at_ms = 0;
  RdbStreamGroups groups_again;
  const lattice::Result<VisibleValue> again = lattice::server::DecodeDumpPayload(
      lattice::server::EncodeDumpPayload(*value), false, &groups_again);
  if (!again.ok() || !(*again == *value) || value->stream_groups.size() != SlotCount(groups) ||
      !(groups_again == lattice::server::RdbGroupsFromVisible(value->stream_groups))) {
    std::abort();
  }
  return 0;
}
