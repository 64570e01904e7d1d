// Fuzz target: the RDB value decoder RESTORE runs on a client's payload (store/rdb_value.h and
// the framing in util/rdb.h). The first byte picks:
//   0/1  DecodeDumpPayload(rest, relaxed = byte & 1): the footer, then the value;
//   2    DecodeRdbValue(rest): a value without footer (what an RDB file reader would hand it).
// Checked: never crashes, never reads past its input, never allocates without bound; a value
// that decodes re-encodes (EncodeDumpPayload) to a payload that decodes to the same value (less
// hash field TTLs, which a version 10 payload cannot carry) and, for a stream, the same consumer
// groups. Seeds include redis-server 7.0's stream payloads (redis7_x_*).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "store/rdb_value.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  using lattice::server::VisibleValue;
  lattice::server::RdbStreamGroups groups;
  lattice::Result<VisibleValue> value =
      data[0] < 2 ? lattice::server::DecodeDumpPayload(rest, (data[0] & 1) != 0, &groups)
                  : lattice::server::DecodeRdbValue(rest, &groups);
  if (!value.ok()) return 0;
  for (VisibleValue::HashEntry& entry : value->hash) entry.ttl_at_ms = 0;
  lattice::server::RdbStreamGroups groups_again;
  const lattice::Result<VisibleValue> again = lattice::server::DecodeDumpPayload(
      lattice::server::EncodeDumpPayload(*value, groups), false, &groups_again);
  if (!again.ok() || !(*again == *value) || !(groups_again == groups)) std::abort();
  return 0;
}
