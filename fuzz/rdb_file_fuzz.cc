// Fuzz target: the RDB file reader (store/rdb_file.h) that --import-rdb and REPLICAOF run on a
// file or a primary's full resync. The whole input is one file. Checked: never crashes, never
// reads past its input, never allocates without bound; a file that reads hands on exactly the
// keys, skipped keys and streams' consumer groups its summary counts, and a second read, in steps
// of one record (how a large file loads in slices), gives the same keys, or for a file that does
// not read the same error; every key re-encodes (EncodeRdbValue, what the RDB writer and DUMP
// write) to bytes that read back as the same value, a stream's consumer groups included, and a
// stream's groups handed on are the ones in its value. Seeds include redis-server 7.0's streams
// (streams.rdb).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "store/rdb_file.h"
#include "store/rdb_value.h"

namespace {

using lattice::server::VisibleValue;

// How many groups `value` holds (its kGroup slots).
size_t GroupCount(const VisibleValue& value) {
  return static_cast<size_t>(std::count_if(
      value.stream_groups.begin(), value.stream_groups.end(),
      [](const auto& slot) { return slot.first.part == lattice::crdt::GroupPart::kGroup; }));
}

// decode(encode(x)) == x for one key as read (its key expiry is not part of the encoding).
void CheckReencodes(VisibleValue value) {
  value.expiry_ms.reset();
  const std::string bytes = lattice::server::EncodeRdbValue(value);
  const lattice::Result<VisibleValue> back = lattice::server::DecodeRdbValue(bytes);
  if (!back.ok() || !(*back == value)) std::abort();
}

class RdbFileRecorder final : public lattice::server::RdbFileSink {
 public:
  void Key(int db, std::string key, VisibleValue value) override {
    CheckReencodes(value);
    keys.push_back({db, std::move(key), std::move(value)});
  }
  void Skipped(int, std::string_view, std::string_view) override { ++skipped; }
  void StreamGroups(int, std::string_view, lattice::server::RdbStreamGroups groups) override {
    // Handed on only when there are some, and after the key whose value holds them.
    if (groups.empty() || keys.empty() || GroupCount(keys.back().value) != groups.size()) {
      std::abort();
    }
    group_keys += 1;
    groups_seen += groups.size();
  }
  void Function(std::string) override {}
  void Aux(std::string_view, std::string_view) override {}

  struct Entry {
    int db;
    std::string key;
    VisibleValue value;
    bool operator==(const Entry&) const = default;
  };
  std::vector<Entry> keys;
  uint64_t skipped = 0;
  uint64_t group_keys = 0;
  uint64_t groups_seen = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view file(reinterpret_cast<const char*>(data), size);
  RdbFileRecorder first;
  const auto summary = lattice::server::ReadRdbFile(file, first);
  RdbFileRecorder second;
  lattice::server::RdbFileReader stepped(file, second);
  lattice::Result<bool> step = false;
  for (size_t i = 0; i <= size && step.ok() && !*step; ++i) step = stepped.Step(1);
  if (step.ok() != summary.ok() || (step.ok() && !*step)) std::abort();
  if (!summary.ok()) {
    if (step.error().message != summary.error().message) std::abort();
    return 0;
  }
  uint64_t skipped = 0;
  for (const auto& [name, count] : summary->skipped) skipped += count;
  if (summary->keys != first.keys.size() || skipped != first.skipped ||
      summary->stream_group_keys != first.group_keys ||
      summary->stream_groups != first.groups_seen) {
    std::abort();
  }
  if (!(second.keys == first.keys) || stepped.summary().keys != summary->keys) std::abort();
  return 0;
}
