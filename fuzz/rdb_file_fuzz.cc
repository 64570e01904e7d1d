// Fuzz target: the RDB file reader (store/rdb_file.h) that --import-rdb and REPLICAOF run on a
// file or a primary's full resync. The whole input is one file. Checked: never crashes, never
// reads past its input, never allocates without bound; a file that reads hands on exactly the
// keys, skipped keys and streams' consumer groups its summary counts, and a second read, in steps
// of one record (how a large file loads in slices), gives the same keys, or for a file that does
// not read the same error. Seeds include redis-server 7.0's streams (streams.rdb).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "store/rdb_file.h"

namespace {

using lattice::server::VisibleValue;

class Recorder final : public lattice::server::RdbFileSink {
 public:
  void Key(int db, std::string key, VisibleValue value) override {
    keys.push_back({db, std::move(key), std::move(value)});
  }
  void Skipped(int, std::string_view, std::string_view) override { ++skipped; }
  void StreamGroups(int, std::string_view, lattice::server::RdbStreamGroups groups) override {
    if (groups.empty()) std::abort();  // handed on only when there are some
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
  Recorder first;
  const auto summary = lattice::server::ReadRdbFile(file, first);
  Recorder second;
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
