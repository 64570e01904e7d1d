// StreamEntries (crdt/stream_entries.h) against a std::map model: random inserts (appends and
// earlier keys, several replicas, values large enough to split blocks), erases, lookups, forward
// and backward scans, copies and equality however the entries are blocked.

#include "lattice/crdt/stream_entries.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "lattice/common/rng.h"

namespace lattice::crdt {
namespace {

using EntriesModel = std::map<StreamEntryKey, std::vector<std::string>>;

void CheckSame(const StreamEntries& entries, const EntriesModel& model) {
  REQUIRE(entries.size() == model.size());
  auto it = entries.begin();
  for (const auto& [key, fields] : model) {
    REQUIRE(it != entries.end());
    CHECK(it->first == key);
    CHECK(it->second == fields);
    ++it;
  }
  CHECK(it == entries.end());
  if (!model.empty()) CHECK(entries.LastKey() == model.rbegin()->first);
}

StreamEntryKey RandomEntryKey(Rng& rng) {
  return StreamEntryKey{StreamId{rng.Uniform(400), rng.Uniform(3)},
                        Dot{1 + rng.Uniform(3), 1 + rng.Uniform(50)}};
}

std::vector<std::string> RandomEntryFields(Rng& rng) {
  static const std::vector<std::string> kNames = {"f", "name", "temperature", ""};
  std::vector<std::string> out;
  const uint64_t pairs = rng.Chance(1, 4) ? 1 + rng.Uniform(3) : 1;
  for (uint64_t i = 0; i < pairs; ++i) {
    out.push_back(kNames[rng.Uniform(kNames.size())]);
    out.push_back(std::string(rng.Chance(1, 20) ? 300 + rng.Uniform(3000) : rng.Uniform(20),
                              static_cast<char>('a' + rng.Uniform(26))));
  }
  return out;
}

TEST_CASE("stream entries match an ordered map", "[crdt][stream]") {
  const uint64_t seed = GENERATE(take(30, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  StreamEntries entries;
  EntriesModel model;
  StreamEntryKey appended{StreamId{1, 0}, Dot{1, 1}};
  for (int step = 0; step < 1500; ++step) {
    const uint64_t action = rng.Uniform(10);
    if (action < 5) {  // an append, as XADD makes
      appended.id.ms += rng.Uniform(2);
      appended.id.seq = rng.Uniform(2);
      appended.dot.seq += 2;
      const StreamEntryKey key{StreamId{appended.id.ms + 400, appended.id.seq}, appended.dot};
      const auto fields = RandomEntryFields(rng);
      CHECK(entries.Insert(key, fields) == model.emplace(key, fields).second);
    } else if (action < 7) {  // anywhere, as a peer's entry or a join
      const StreamEntryKey key = RandomEntryKey(rng);
      const auto fields = RandomEntryFields(rng);
      CHECK(entries.Insert(key, fields) == model.emplace(key, fields).second);
    } else if (action < 9 && !model.empty()) {  // erase a held entry (the front half as often)
      auto it = model.begin();
      std::advance(it, static_cast<long>(rng.Chance(1, 2) ? rng.Uniform(model.size())
                                                          : rng.Uniform(1 + model.size() / 8)));
      CHECK(entries.Erase(it->first));
      model.erase(it);
    } else {  // erase something maybe absent
      const StreamEntryKey key = RandomEntryKey(rng);
      CHECK(entries.Erase(key) == (model.erase(key) == 1));
    }
    if (step % 100 == 0) CheckSame(entries, model);
  }
  CheckSame(entries, model);
  for (int probe = 0; probe < 200; ++probe) {
    const StreamEntryKey key = RandomEntryKey(rng);
    auto lower = model.lower_bound(key);
    auto got = entries.lower_bound(key);
    CHECK((got == entries.end()) == (lower == model.end()));
    if (lower != model.end() && got != entries.end()) CHECK(got->first == lower->first);
    auto upper = model.upper_bound(key);
    auto got_upper = entries.upper_bound(key);
    CHECK((got_upper == entries.end()) == (upper == model.end()));
    if (upper != model.end() && got_upper != entries.end()) CHECK(got_upper->first == upper->first);
    CHECK(entries.contains(key) == model.contains(key));
    std::vector<StreamEntryKey> backward;
    entries.ScanBackward(key, [&](const StreamEntries::const_iterator& it) {
      backward.push_back(it->first);
      return backward.size() < 50;
    });
    std::vector<StreamEntryKey> expected;
    for (auto it = std::make_reverse_iterator(upper); it != model.rend() && expected.size() < 50;
         ++it) {
      expected.push_back(it->first);
    }
    CHECK(backward == expected);
  }
  // The same entries inserted in key order (other blocks) are equal; a copy is too.
  StreamEntries ordered;
  for (const auto& [key, fields] : model) REQUIRE(ordered.Insert(key, fields));
  CHECK(ordered == entries);
  const StreamEntries copy = entries;
  CHECK(copy == entries);
  CheckSame(copy, model);
  if (!model.empty()) {
    REQUIRE(ordered.Erase(model.begin()->first));
    CHECK_FALSE(ordered == entries);
  }
}

TEST_CASE("stream entries of one region cost their bytes", "[crdt][stream]") {
  // XADD * f <16 bytes> from one region: 21 coded bytes an entry, blocks of 128 entries.
  StreamEntries entries;
  const std::vector<std::string> fields = {"field", std::string(16, 'v')};
  for (uint64_t i = 0; i < 1000; ++i) {
    REQUIRE(entries.Insert(
        StreamEntryKey{StreamId{1700000000000 + i / 10, i % 10}, Dot{0x1234567890, 2 * i + 1}},
        fields));
  }
  CHECK(entries.BlockCount() == 8);
  CHECK(entries.AllocatedBytes() < 1000 * 26);
  // Deleting the front half in order drops whole blocks and keeps the rest readable.
  size_t erased = 0;
  for (uint64_t i = 0; i < 500; ++i) {
    erased += entries.Erase(
        StreamEntryKey{StreamId{1700000000000 + i / 10, i % 10}, Dot{0x1234567890, 2 * i + 1}});
  }
  CHECK(erased == 500);
  CHECK(entries.size() == 500);
  CHECK(entries.begin()->first.id == StreamId{1700000000050, 0});
  CHECK(entries.begin()->second == fields);
  CHECK(entries.AllocatedBytes() < 600 * 26);
}

}  // namespace
}  // namespace lattice::crdt
