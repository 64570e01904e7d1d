// The RDB file writer (store/rdb_writer.h): a keyspace of every type, with key TTLs, in several
// dbs, written and read back through the reader (store/rdb_file.h) equal; the AUX fields; hash
// field TTLs switch the file to VALKEY080 and survive; expired keys and the system db are not
// written; DUMP payloads of hashes with field TTLs carry version 80 and round-trip; streams
// carry their consumer groups, in a REDIS0011 file when a consumer's active time needs type 21. The
// differential test (redis-server loads the file) is tests/integration/test_rdb_out.py.

#include "store/rdb_writer.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <string>

#include "store/rdb_file.h"
#include "store/rdb_value.h"

namespace lattice::server {
namespace {

using crdt::ObjectType;

constexpr int64_t kNow = 1'700'000'000'000;

class Recorder final : public RdbFileSink {
 public:
  void Key(int db, std::string key, VisibleValue value) override {
    keys[{db, std::move(key)}] = std::move(value);
  }
  void Skipped(int, std::string_view, std::string_view) override { ++skipped; }
  void Function(std::string) override {}
  void Aux(std::string_view name, std::string_view value) override {
    aux[std::string(name)] = std::string(value);
  }
  std::map<std::pair<int, std::string>, VisibleValue> keys;
  std::map<std::string, std::string> aux;
  int skipped = 0;
};

VisibleValue Str(std::string s, std::optional<int64_t> expiry = std::nullopt) {
  VisibleValue v;
  v.type = ObjectType::kString;
  v.string = std::move(s);
  v.expiry_ms = expiry;
  return v;
}

std::map<std::pair<int, std::string>, VisibleValue> Dataset() {
  std::map<std::pair<int, std::string>, VisibleValue> want;
  want[{0, "s"}] = Str("hello");
  want[{0, "s:ttl"}] = Str("soon", kNow + 60'000);
  want[{0, "s:bin"}] = Str(std::string("\0\xff\r\n", 4));
  want[{0, "s:big"}] = Str(std::string(100'000, 'x'));  // spans chunks
  VisibleValue list;
  list.type = ObjectType::kList;
  list.list = {"a", "1", "", "a"};
  want[{1, "l"}] = list;
  VisibleValue set;
  set.type = ObjectType::kSet;
  set.set = {"1", "2", "x"};
  set.expiry_ms = kNow + 3'600'000;
  want[{1, "set"}] = set;
  VisibleValue zset;
  zset.type = ObjectType::kZSet;
  zset.zset = {{"b", -2.5}, {"a", 1}, {"c", HUGE_VAL}};
  want[{5, "z"}] = zset;
  VisibleValue hash;
  hash.type = ObjectType::kHash;
  hash.hash = {{"f1", "v1", 0}, {"f2", "", 0}};
  want[{5, "h"}] = hash;
  for (int i = 0; i < 2000; ++i) want[{2, "k" + std::to_string(i)}] = Str(std::to_string(i));
  return want;
}

struct Written {
  std::string bytes;
  RdbWriteSummary summary;
};

Written Write(const Keyspace& ks, const RdbWriteOptions& options = {}) {
  Written out;
  Result<RdbWriteSummary> summary = WriteRdb(ks, kNow, options, [&](std::string_view chunk) {
    CHECK(chunk.size() <= 200'000);
    out.bytes.append(chunk);
    return true;
  });
  REQUIRE(summary.ok());
  out.summary = *summary;
  CHECK(out.summary.bytes == out.bytes.size());
  return out;
}

Recorder Read(const std::string& bytes) {
  Recorder recorder;
  Result<RdbFileSummary> read = ReadRdbFile(bytes, recorder);
  INFO((read.ok() ? "" : read.error().message));
  REQUIRE(read.ok());
  CHECK(read->checksummed);
  return recorder;
}

TEST_CASE("rdb writer: every type and TTL round-trips through the reader") {
  Keyspace ks(1, 16);
  const auto want = Dataset();
  for (const auto& [where, value] : want) ks.WriteVisible(where.first, where.second, value, kNow);
  RdbWriteOptions options;
  options.ctime_s = 1'700'000'000;
  options.repl_id = std::string(40, 'a');
  options.repl_offset = 12345;
  const Written written = Write(ks, options);
  CHECK(written.bytes.starts_with("REDIS0010"));
  CHECK(written.summary.version == 10);
  CHECK(written.summary.keys == want.size());
  const Recorder back = Read(written.bytes);
  CHECK(back.keys == want);
  CHECK(back.aux.at("repl-id") == options.repl_id);
  CHECK(back.aux.at("repl-offset") == "12345");
  CHECK(back.aux.at("ctime") == "1700000000");
  CHECK(back.aux.at("redis-ver") == "7.2.4");
}

TEST_CASE("rdb writer: an empty keyspace is a header, AUX fields, EOF and the checksum") {
  Keyspace ks(1, 16);
  const Written written = Write(ks);
  CHECK(written.summary.keys == 0);
  CHECK(Read(written.bytes).keys.empty());
}

TEST_CASE("rdb writer: expired keys are not written") {
  Keyspace ks(1, 16);
  ks.WriteVisible(0, "gone", Str("x", kNow + 10), kNow);
  ks.WriteVisible(0, "kept", Str("y"), kNow);
  Written out;
  Result<RdbWriteSummary> summary = WriteRdb(ks, kNow + 20, {}, [&](std::string_view chunk) {
    out.bytes.append(chunk);
    return true;
  });
  REQUIRE(summary.ok());
  const Recorder back = Read(out.bytes);
  CHECK(back.keys.size() == 1);
  CHECK(back.keys.count({0, "kept"}) == 1);
}

TEST_CASE("rdb writer: a failing output stops the write with an error") {
  Keyspace ks(1, 16);
  for (int i = 0; i < 3000; ++i) ks.WriteVisible(0, "k" + std::to_string(i), Str("v"), kNow);
  int calls = 0;
  Result<RdbWriteSummary> summary = WriteRdb(ks, kNow, {}, [&](std::string_view) {
    ++calls;
    return false;
  });
  CHECK(!summary.ok());
  CHECK(calls == 1);
}

TEST_CASE("rdb writer: hash field TTLs make a VALKEY080 file and survive the round trip") {
  Keyspace ks(1, 16);
  VisibleValue hash;
  hash.type = ObjectType::kHash;
  hash.hash = {{"a", "1", kNow + 5'000}, {"b", "2", 0}};
  ks.WriteVisible(0, "h", hash, kNow);
  ks.WriteVisible(0, "s", Str("x"), kNow);
  const Written written = Write(ks);
  CHECK(written.bytes.starts_with("VALKEY080"));
  CHECK(written.summary.version == 80);
  const Recorder back = Read(written.bytes);
  REQUIRE(back.keys.count({0, "h"}) == 1);
  CHECK(back.keys.at({0, "h"}) == hash);
}

// A stream of two entries with one group: c1 holds 1-0 pending, c2 nothing; c2's active time is
// `c2_active_ms`.
VisibleValue StreamWithGroup(int64_t c2_active_ms) {
  using crdt::GroupPart;
  using crdt::GroupSlot;
  using crdt::GroupValue;
  VisibleValue v{.type = ObjectType::kStream};
  v.stream = {{{1, 0}, {"f", "a"}}, {{2, 0}, {"f", "b"}}};
  v.stream_meta = {{2, 0}, {0, 0}, 2};
  v.stream_groups = {
      {GroupSlot{"g"}, GroupValue{.last_id = {1, 0}, .entries_read = 1}},
      {GroupSlot{"g", GroupPart::kConsumer, "c1", {}},
       GroupValue{.seen_ms = kNow - 500, .active_ms = kNow - 500}},
      {GroupSlot{"g", GroupPart::kConsumer, "c2", {}},
       GroupValue{.seen_ms = kNow - 100, .active_ms = c2_active_ms}},
      {GroupSlot{"g", GroupPart::kPending, "", {1, 0}},
       GroupValue{.seen_ms = kNow - 500, .owner = "c1", .deliveries = 2}},
  };
  return v;
}

TEST_CASE("rdb writer: streams carry their consumer groups; an active time makes REDIS0011") {
  for (const int64_t c2_active_ms : {kNow - 100, int64_t{-1}}) {
    CAPTURE(c2_active_ms);
    Keyspace ks(1, 16);
    const VisibleValue stream = StreamWithGroup(c2_active_ms);
    ks.WriteVisible(0, "x", stream, kNow);
    ks.WriteVisible(0, "s", Str("x"), kNow);
    const Written written = Write(ks);
    const bool type21 = c2_active_ms != kNow - 100;
    CHECK(written.bytes.starts_with(type21 ? "REDIS0011" : "REDIS0010"));
    CHECK(written.summary.version == (type21 ? 11 : 10));
    const Recorder back = Read(written.bytes);
    REQUIRE(back.keys.count({0, "x"}) == 1);
    CHECK(back.keys.at({0, "x"}) == stream);
    CHECK(back.keys.at({0, "x"}) == ReadVisible(ks.Find(0, "x", kNow), kNow));
  }
}

TEST_CASE("dump payload: a hash with field TTLs is type 22 in a version 80 payload") {
  VisibleValue hash;
  hash.type = ObjectType::kHash;
  hash.hash = {{"a", "1", kNow + 5'000}, {"b", "2", 0}};
  const std::string payload = EncodeDumpPayload(hash);
  CHECK(static_cast<uint8_t>(payload[0]) == 22);
  CHECK(static_cast<uint8_t>(payload[payload.size() - 10]) == 80);
  Result<VisibleValue> back = DecodeDumpPayload(payload, false);
  REQUIRE(back.ok());
  CHECK(*back == hash);
  // Without field TTLs: type 4 in a version 10 payload, as before.
  hash.hash[0].ttl_at_ms = 0;
  const std::string plain = EncodeDumpPayload(hash);
  CHECK(static_cast<uint8_t>(plain[0]) == 4);
  CHECK(static_cast<uint8_t>(plain[plain.size() - 10]) == 10);
}

TEST_CASE("rdb writer: WriteRdbFile writes a file the reader loads") {
  Keyspace ks(1, 16);
  ks.WriteVisible(3, "k", Str("v"), kNow);
  const std::string path = "/tmp/lattice-rdb-writer-test-" + std::to_string(::getpid()) + ".rdb";
  Result<RdbWriteSummary> summary = WriteRdbFile(ks, kNow, {}, path);
  REQUIRE(summary.ok());
  std::string bytes;
  {
    FILE* f = std::fopen(path.c_str(), "rb");
    REQUIRE(f != nullptr);
    char chunk[4096];
    for (size_t n; (n = std::fread(chunk, 1, sizeof chunk, f)) > 0;) bytes.append(chunk, n);
    std::fclose(f);
  }
  std::remove(path.c_str());
  CHECK(Read(bytes).keys.size() == 1);
  CHECK(!WriteRdbFile(ks, kNow, {}, "/nonexistent-dir/x.rdb").ok());
}

}  // namespace
}  // namespace lattice::server
