// The stream RDB codec (store/rdb_stream.h through store/rdb_value.h): DUMP payloads that
// redis-server 7.0 wrote (fuzz/corpus/rdb_value/redis7_x_*, made by scripts/make-rdb-corpus
// --streams from tests/integration/stream_data.py's dataset: same-fields entries, integer
// values, deleted entries, an emptied stream, many nodes, negative seq deltas, groups with
// PELs), round trips with groups (types 19 and 21), the converters between in-memory groups
// (VisibleValue::stream_groups) and the RDB form, type 15 built by hand, and payloads refused:
// truncations, random mutations, and groups that contradict themselves.

#include "store/rdb_stream.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "lattice/common/rng.h"
#include "store/listpack.h"
#include "store/rdb_value.h"
#include "util/rdb.h"

namespace lattice::server {
namespace {

using crdt::ObjectType;
using crdt::StreamId;
using Fields = std::vector<std::string>;

// A fixture's DUMP payload (the file's first byte is the fuzz target's mode byte).
std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(LATTICE_TESTS_DIR) + "/../fuzz/corpus/rdb_value/redis7_x_" + name,
                   std::ios::binary);
  REQUIRE(in);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(bytes.size() > 1);
  return bytes.substr(1);
}

struct Decoded {
  VisibleValue value;
  RdbStreamGroups groups;
};

Decoded Decode(const std::string& payload) {
  Decoded out;
  Result<VisibleValue> value = DecodeDumpPayload(payload, false, &out.groups);
  REQUIRE(value.ok());
  out.value = *value;
  return out;
}

// The slots `groups` holds: one per group, consumer and pending entry.
size_t SlotCount(const RdbStreamGroups& groups) {
  size_t slots = 0;
  for (const RdbStreamGroup& group : groups) {
    slots += 1 + group.consumers.size() + group.pending.size();
  }
  return slots;
}

// Encode, decode, compare (entries, metadata and groups, in memory and in RDB form). Groups and
// consumers come back in name order (Valkey's radix trees'), whatever order the payload had.
void CheckRoundTrip(const Decoded& d) {
  const std::string payload = EncodeDumpPayload(d.value);
  const Decoded back = Decode(payload);
  CHECK(back.value == d.value);
  CHECK(back.value.stream_groups.size() == SlotCount(d.groups));  // nothing dropped
  CHECK(back.groups == RdbGroupsFromVisible(d.value.stream_groups));
}

// A stream's value with `groups` as given (not from its stream_groups): payloads that
// contradict themselves, which the encoder never writes.
std::string EncodeWithGroups(const VisibleValue& value, const RdbStreamGroups& groups) {
  std::string out(1, static_cast<char>(kRdbStreamListpacks2));
  PutRdbStream(out, value, groups, kRdbStreamListpacks2);
  return out;
}

std::vector<StreamId> Ids(const VisibleValue& v) {
  std::vector<StreamId> ids;
  for (const auto& [id, fields] : v.stream) ids.push_back(id);
  return ids;
}

TEST_CASE("redis-server 7.0's stream payloads decode", "[rdb][stream]") {
  const Decoded small = Decode(Fixture("small"));
  CHECK(small.value.type == ObjectType::kStream);
  CHECK(Ids(small.value) == std::vector<StreamId>{{1, 1}, {1, 2}, {2, 0}});
  CHECK(small.value.stream[1].second == Fields{"a", "3", "b", "4"});  // same fields as the master
  CHECK(small.value.stream[2].second == Fields{"c", "5"});
  CHECK(small.value.stream_meta == crdt::StreamMeta{{2, 0}, {0, 0}, 3});
  CHECK(small.groups.empty());

  const Decoded ints = Decode(Fixture("ints"));
  CHECK(ints.value.stream[0].second == Fields{"f", "7", "g", "-5", "h", "4000", "i", "70000", "j",
                                              "-2000000000", "k", "123456789012", "l", "12abc"});

  const Decoded deleted = Decode(Fixture("deleted"));  // 1, 4, 5 and 10 deleted
  CHECK(Ids(deleted.value) ==
        std::vector<StreamId>{{2, 0}, {3, 0}, {6, 0}, {7, 0}, {8, 0}, {9, 0}});
  CHECK(deleted.value.stream[0].second == Fields{"n", "2"});
  CHECK(deleted.value.stream_meta == crdt::StreamMeta{{10, 0}, {10, 0}, 10});

  const Decoded empty = Decode(Fixture("empty"));
  CHECK(empty.value.type == ObjectType::kStream);
  CHECK(empty.value.stream.empty());
  CHECK(empty.value.stream_meta == crdt::StreamMeta{{3, 3}, {3, 3}, 1});

  const Decoded nodes = Decode(Fixture("nodes"));
  REQUIRE(nodes.value.stream.size() == 260);
  CHECK(nodes.value.stream[249].first == StreamId{1249, 0});
  CHECK(nodes.value.stream[249].second == Fields{"field", "value-249", "n", "249"});
  CHECK(nodes.value.stream[259].second == Fields{"big", std::string(2000, 'j')});

  const Decoded seq = Decode(Fixture("seq"));  // 8-0 after the master 7-5: seq delta -5
  CHECK(Ids(seq.value) == std::vector<StreamId>{{7, 5}, {8, 0}, {8, 1}});
}

TEST_CASE("consumer groups decode with their PELs and consumers", "[rdb][stream]") {
  const Decoded d = Decode(Fixture("groups"));
  CHECK(d.value.stream.size() == 4);
  REQUIRE(d.groups.size() == 3);
  const RdbStreamGroup& g1 = d.groups[0];
  CHECK(g1.name == "g1");
  CHECK(g1.last_id == StreamId{3, 0});
  CHECK(g1.entries_read == 3);
  REQUIRE(g1.pending.size() == 2);  // 1-0 was acked
  CHECK(g1.pending[0].id == StreamId{2, 0});
  CHECK(g1.pending[0].delivery_count == 1);
  CHECK(g1.pending[0].delivery_ms > 1'600'000'000'000);
  REQUIRE(g1.consumers.size() == 2);
  CHECK(g1.consumers[0].name == "c1");
  CHECK(g1.consumers[0].pending == std::vector<StreamId>{{2, 0}});
  CHECK(g1.consumers[0].active_ms == g1.consumers[0].seen_ms);  // type 19: no active time
  CHECK(g1.consumers[1].pending == std::vector<StreamId>{{3, 0}});
  CHECK(d.groups[1].name == "g2");
  CHECK(d.groups[1].last_id == StreamId{2, 0});
  REQUIRE(d.groups[1].consumers.size() == 1);
  CHECK(d.groups[1].consumers[0].name == "idle");
  CHECK(d.groups[1].consumers[0].pending.empty());
  CHECK(d.groups[2].last_id == StreamId{4, 0});
  CHECK(d.groups[2].consumers.empty());
}

TEST_CASE("decoded groups are in the value as in-memory slots", "[rdb][stream]") {
  const Decoded d = Decode(Fixture("groups"));
  const VisibleGroups& slots = d.value.stream_groups;
  // g1: its group slot, consumers c1 and c2, pending 2-0 and 3-0; g2: one consumer; g3 alone.
  REQUIRE(slots.size() == 8);
  CHECK(slots[0].first == crdt::GroupSlot{"g1"});
  CHECK(slots[0].second.last_id == StreamId{3, 0});
  CHECK(slots[0].second.entries_read == 3);
  CHECK(slots[1].first.part == crdt::GroupPart::kConsumer);
  CHECK(slots[1].first.consumer == "c1");
  CHECK(slots[1].second.seen_ms == d.groups[0].consumers[0].seen_ms);
  CHECK(slots[3].first == crdt::GroupSlot{"g1", crdt::GroupPart::kPending, "", {2, 0}});
  CHECK(slots[3].second.owner == "c1");
  CHECK(slots[3].second.seen_ms == d.groups[0].pending[0].delivery_ms);
  CHECK(slots[3].second.deliveries == 1);
  CHECK(slots[4].second.owner == "c2");
  CHECK(slots[5].first == crdt::GroupSlot{"g2"});
  CHECK(slots[6].first.consumer == "idle");
  CHECK(slots[7].first == crdt::GroupSlot{"g3"});
  CHECK(RdbGroupsFromVisible(slots) == d.groups);
}

TEST_CASE("in-memory groups convert to RDB whole, in Valkey's order", "[rdb][stream]") {
  using crdt::GroupPart;
  using crdt::GroupSlot;
  using crdt::GroupValue;
  const VisibleGroups slots = {
      {GroupSlot{"zeta"}, GroupValue{.last_id = {9, 0}, .entries_read = -1}},
      {GroupSlot{"alpha", GroupPart::kPending, "", {5, 0}},
       GroupValue{.seen_ms = 700, .owner = "bob", .deliveries = 2}},
      {GroupSlot{"alpha", GroupPart::kPending, "", {4, 0}},
       GroupValue{.seen_ms = 900, .owner = "gone", .deliveries = 1}},
      {GroupSlot{"alpha", GroupPart::kPending, "", {6, 0}},
       GroupValue{.seen_ms = 800, .owner = "gone", .deliveries = 3}},
      {GroupSlot{"alpha", GroupPart::kConsumer, "bob", {}},
       GroupValue{.seen_ms = 1000, .active_ms = -1}},
      {GroupSlot{"alpha"}, GroupValue{.last_id = {6, 0}, .entries_read = 3}},
      {GroupSlot{"orphan", GroupPart::kConsumer, "x", {}}, GroupValue{.seen_ms = 1}},
  };
  const RdbStreamGroups groups = RdbGroupsFromVisible(slots);
  REQUIRE(groups.size() == 2);  // "orphan" has no group slot: not a group
  const RdbStreamGroup& alpha = groups[0];
  CHECK(alpha.name == "alpha");
  CHECK(alpha.last_id == StreamId{6, 0});
  CHECK(alpha.entries_read == 3);
  CHECK(alpha.pending ==
        std::vector<RdbStreamNack>{{{4, 0}, 900, 1}, {{5, 0}, 700, 2}, {{6, 0}, 800, 3}});
  REQUIRE(alpha.consumers.size() == 2);
  CHECK(alpha.consumers[0] == RdbStreamConsumer{"bob", 1000, -1, {{5, 0}}});
  // "gone" owns entries but is no consumer: made one, seen and active at its latest delivery.
  CHECK(alpha.consumers[1] == RdbStreamConsumer{"gone", 900, 900, {{4, 0}, {6, 0}}});
  CHECK(groups[1] == RdbStreamGroup{.name = "zeta", .last_id = {9, 0}, .entries_read = -1});
  CHECK(RdbStreamTypeFor(groups) == kRdbStreamListpacks3);  // bob's active time is -1

  VisibleValue value{.type = ObjectType::kStream, .stream_groups = slots};
  value.stream.push_back({{4, 0}, {"f", "v"}});
  value.stream_meta = {{9, 0}, {0, 0}, 1};
  const Decoded back = Decode(EncodeDumpPayload(value));
  CHECK(back.groups == groups);
  CHECK(back.value.stream_groups == VisibleGroupsFromRdb(groups));
  CHECK(RdbGroupsFromVisible(back.value.stream_groups) == groups);
}

TEST_CASE("every fixture round-trips through Lattice's encoder", "[rdb][stream]") {
  for (const char* name : {"small", "ints", "deleted", "empty", "nodes", "seq", "groups"}) {
    CAPTURE(name);
    const Decoded d = Decode(Fixture(name));
    CheckRoundTrip(d);
    CHECK(Decode(EncodeDumpPayload(d.value)).groups == d.groups);  // written in name order
    // redis-server 7.0's consumers have no active time of their own: type 19, RDB 10.
    const std::string payload = EncodeDumpPayload(d.value);
    CHECK(payload[0] == static_cast<char>(kRdbStreamListpacks2));
    CHECK(payload.substr(payload.size() - 10, 2) == std::string("\x0a\x00", 2));
  }
}

TEST_CASE("a consumer's active time is kept as type 21 in an RDB 11 payload", "[rdb][stream]") {
  Decoded d = Decode(Fixture("groups"));
  d.groups[0].consumers[0].active_ms = d.groups[0].consumers[0].seen_ms - 5000;
  d.value.stream_groups = VisibleGroupsFromRdb(d.groups);
  const std::string payload = EncodeDumpPayload(d.value);
  CHECK(payload[0] == static_cast<char>(kRdbStreamListpacks3));
  CHECK(payload.substr(payload.size() - 10, 2) == std::string("\x0b\x00", 2));
  CheckRoundTrip(d);
}

TEST_CASE("entries with one ID (two regions' concurrent XADDs) round-trip", "[rdb][stream]") {
  VisibleValue v{.type = ObjectType::kStream};
  for (uint64_t i = 0; i < 350; ++i) {
    v.stream.push_back({{i / 150, 0}, {"f" + std::to_string(i % 2), std::to_string(i)}});
  }
  v.stream_meta = {{2, 0}, {0, 0}, 350};
  CheckRoundTrip(Decoded{v, {}});
}

std::string Type15Node(const std::string& listpack, uint64_t length);

// Type 15 (Redis 5 to 6.2), built by hand: one node with a deleted and a same-fields entry.
std::string Type15(uint64_t length = 2) {
  ListpackWriter lp;
  for (int64_t n : {2, 1, 1}) lp.AddInteger(n);  // live, deleted, master field count
  lp.AddString("k");
  lp.AddInteger(0);
  const auto entry = [&lp](int64_t flags, int64_t ms, const char* value) {
    lp.AddInteger(flags);
    lp.AddInteger(ms);
    lp.AddInteger(0);
    lp.AddString(value);
    lp.AddInteger(4);
  };
  entry(2, 0, "first");
  entry(3, 1, "gone");
  entry(2, 2, "third");
  return Type15Node(std::move(lp).Finish(), length);
}

// A type 15 stream of one node (master ID 5-0) holding `listpack`, with one group.
std::string Type15Node(const std::string& listpack, uint64_t length) {
  std::string out(1, static_cast<char>(kRdbStreamListpacks));
  RdbPutLength(out, 1);
  RdbPutString(out, std::string("\0\0\0\0\0\0\0\x05\0\0\0\0\0\0\0\0", 16));
  RdbPutString(out, listpack);
  for (uint64_t n : {length, uint64_t{9}, uint64_t{0}}) RdbPutLength(out, n);  // length, last ID
  RdbPutLength(out, 1);  // a group: name, last ID, no entries read
  RdbPutString(out, "g");
  for (uint64_t n : {5, 0, 0, 0}) RdbPutLength(out, n);  // last ID, empty PEL, no consumers
  return out;
}

TEST_CASE("type 15 decodes: entries added is the length, no max deleted ID", "[rdb][stream]") {
  RdbStreamGroups groups;
  Result<VisibleValue> v = DecodeRdbValue(Type15(), &groups);
  REQUIRE(v.ok());
  CHECK(Ids(*v) == std::vector<StreamId>{{5, 0}, {7, 0}});
  CHECK(v->stream[1].second == Fields{"k", "third"});
  CHECK(v->stream_meta == crdt::StreamMeta{{9, 0}, {0, 0}, 2});
  REQUIRE(groups.size() == 1);
  CHECK(groups[0].entries_read == -1);
  CheckRoundTrip(Decoded{*v, groups});
}

TEST_CASE("malformed stream payloads are refused, never half-read", "[rdb][stream]") {
  const Decoded good = Decode(Fixture("groups"));
  const auto refused = [&](const RdbStreamGroups& groups) {
    RdbStreamGroups out{RdbStreamGroup{.name = "stale"}};
    CHECK_FALSE(DecodeRdbValue(EncodeWithGroups(good.value, groups), &out).ok());
    CHECK(out.empty());
  };
  SECTION("a consumer's entry missing from its group's PEL") {
    RdbStreamGroups g = good.groups;
    g[0].consumers[0].pending = {{4, 0}};
    refused(g);
  }
  SECTION("a PEL entry no consumer owns, or two own") {
    RdbStreamGroups g = good.groups;
    g[0].consumers[1].pending.clear();
    refused(g);
    g[0].consumers[1].pending = {{2, 0}};
    refused(g);
  }
  SECTION("duplicate group or consumer names, PEL out of order") {
    RdbStreamGroups g = good.groups;
    g[1].name = "g1";
    refused(g);
    g = good.groups;
    g[0].consumers[1].name = "c1";
    refused(g);
    g = good.groups;
    std::swap(g[0].pending[0], g[0].pending[1]);
    refused(g);
  }
  SECTION("a length that disagrees with the entries") {
    CHECK(DecodeRdbValue(Type15(2)).ok());
    CHECK_FALSE(DecodeRdbValue(Type15(3)).ok());
    CHECK_FALSE(DecodeRdbValue(Type15(1)).ok());
  }
  SECTION("a node whose counts claim more elements than it holds") {
    for (int64_t fields : {1, 2, 5}) {
      ListpackWriter lp;
      for (int64_t n : {int64_t{1}, int64_t{0}, fields}) lp.AddInteger(n);
      lp.AddString("a");
      lp.AddInteger(0);
      CHECK_FALSE(DecodeRdbValue(Type15Node(std::move(lp).Finish(), 1)).ok());
    }
  }
  SECTION("every truncation of a payload with nodes and groups") {
    const std::string body = EncodeRdbValue(good.value);
    for (size_t size = 0; size < body.size(); ++size) {
      CHECK_FALSE(DecodeRdbValue(body.substr(0, size)).ok());
    }
    CHECK_FALSE(DecodeRdbValue(body + "x").ok());
  }
}

TEST_CASE("random mutations of stream payloads never crash the decoder", "[rdb][stream]") {
  const uint64_t seed = GENERATE(take(3, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  for (const char* name : {"groups", "deleted", "seq"}) {
    const Decoded d = Decode(Fixture(name));
    const std::string good = EncodeRdbValue(d.value);
    for (int i = 0; i < 2000; ++i) {
      std::string mutated = good;
      mutated[rng.Uniform(mutated.size())] = static_cast<char>(rng.Uniform(256));
      RdbStreamGroups groups;
      Result<VisibleValue> v = DecodeRdbValue(mutated, &groups);
      if (v.ok()) CheckRoundTrip(Decoded{*v, groups});  // what decodes re-encodes faithfully
    }
  }
}

TEST_CASE("listpack writer: every integer width and string length reads back", "[rdb]") {
  ListpackWriter lp;
  const std::vector<int64_t> ints = {0,        127,       128,       -1,        4095,
                                     -4096,    4096,      -32768,    32767,     8388607,
                                     -8388608, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
  for (int64_t n : ints) lp.AddInteger(n);
  for (size_t len : {0, 63, 64, 4095, 4096, 20000}) lp.AddString(std::string(len, 'q'));
  const std::vector<std::string> texts = {
      "12", "-7", "007", "-0", "+5", "1e3", "99999999999999999999", "-9223372036854775808"};
  for (const std::string& text : texts) lp.AddString(text);
  const size_t bytes = lp.bytes();
  std::vector<std::string> out;
  const std::string blob = std::move(lp).Finish();
  CHECK(blob.size() == bytes);
  REQUIRE(ParseListpack(blob, &out));
  REQUIRE(out.size() == ints.size() + 6 + texts.size());
  for (size_t i = 0; i < ints.size(); ++i) CHECK(out[i] == std::to_string(ints[i]));
  CHECK(out[ints.size() + 5].size() == 20000);
  CHECK(std::vector<std::string>(out.end() - texts.size(), out.end()) == texts);
  CHECK(blob.find("12") == std::string::npos);  // canonical integers are stored as integers
  CHECK(blob.find("007") != std::string::npos);
}

}  // namespace
}  // namespace lattice::server
