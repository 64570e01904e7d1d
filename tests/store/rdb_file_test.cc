// The RDB file reader (store/rdb_file.h): files built by hand for what Debian's redis-server 7.0
// cannot write (Valkey 9's magic and hash field TTLs, module values, old versions without a
// checksum, the opcodes of every version), the corpus file redis-server wrote
// (fuzz/corpus/rdb_file/every-type.rdb, scripts/make-rdb-corpus), and corrupt files refused with
// the byte offset.

#include "store/rdb_file.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "util/rdb.h"

namespace lattice::server {
namespace {

using crdt::ObjectType;

struct Recorded {
  std::map<std::pair<int, std::string>, VisibleValue> keys;
  std::vector<std::string> skipped;  // "db:key:type"
  std::map<std::pair<int, std::string>, RdbStreamGroups> groups;
  std::vector<std::string> functions;
  std::map<std::string, std::string> aux;
};

class Recorder final : public RdbFileSink {
 public:
  void Key(int db, std::string key, VisibleValue value) override {
    out.keys[{db, std::move(key)}] = std::move(value);
  }
  void StreamGroups(int db, std::string_view key, RdbStreamGroups groups) override {
    out.groups[{db, std::string(key)}] = std::move(groups);
  }
  void Skipped(int db, std::string_view key, std::string_view type) override {
    out.skipped.push_back(std::to_string(db) + ":" + std::string(key) + ":" + std::string(type));
  }
  void Function(std::string code) override { out.functions.push_back(std::move(code)); }
  void Aux(std::string_view name, std::string_view value) override {
    out.aux[std::string(name)] = std::string(value);
  }
  Recorded out;
};

void PutLittleEndian(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}

// The EOF opcode and the CRC-64 of everything before the checksum.
std::string Seal(std::string body) {
  body.push_back(static_cast<char>(0xff));
  PutLittleEndian(body, Crc64(0, body), 8);
  return body;
}

std::string Aux(std::string_view name, std::string_view value) {
  std::string out(1, static_cast<char>(0xfa));
  RdbPutString(out, name);
  RdbPutString(out, value);
  return out;
}

std::string StringKey(std::string_view key, std::string_view value) {
  std::string out(1, '\0');
  RdbPutString(out, key);
  RdbPutString(out, value);
  return out;
}

// A module id: the 9-character name (6 bits a character, from the top) and a version.
uint64_t ModuleId(std::string_view name, uint64_t version) {
  static constexpr std::string_view kCharset =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  uint64_t id = 0;
  for (const char c : name) id = (id << 6) | kCharset.find(c);
  return (id << 10) | version;
}

Result<Recorded> Read(std::string_view bytes) {
  Recorder recorder;
  Result<RdbFileSummary> summary = ReadRdbFile(bytes, recorder);
  if (!summary.ok()) return Unexpected(summary.error());
  return std::move(recorder.out);
}

std::string ErrorOf(std::string_view bytes) {
  Recorder recorder;
  Result<RdbFileSummary> summary = ReadRdbFile(bytes, recorder);
  REQUIRE_FALSE(summary.ok());
  CHECK(summary.error().code == ErrorCode::kCorrupt);
  return summary.error().message;
}

// A Valkey 9 file: VALKEY080, aux fields, a function library, every key-level opcode.
std::string ValkeyFile() {
  std::string f = "VALKEY080";
  f += Aux("valkey-ver", "9.0.0");
  f += Aux("redis-ver", "7.2.4");
  f.push_back(static_cast<char>(0xf5));  // FUNCTION2
  RdbPutString(f, "#!lua name=lib\nredis.register_function('f', function() return 1 end)");
  f.push_back(static_cast<char>(0xfe));  // SELECTDB 2
  RdbPutLength(f, 2);
  f.push_back(static_cast<char>(0xfb));  // RESIZEDB
  RdbPutLength(f, 3);
  RdbPutLength(f, 1);
  f.push_back(static_cast<char>(0xf4));  // SLOT_INFO
  RdbPutLength(f, 100);
  RdbPutLength(f, 3);
  RdbPutLength(f, 1);
  f.push_back(static_cast<char>(0xfc));  // EXPIRETIME_MS
  PutLittleEndian(f, 1'900'000'000'000, 8);
  f.push_back(static_cast<char>(0xf8));  // IDLE
  RdbPutLength(f, 1000);
  f += StringKey("s", "v");
  f.push_back(static_cast<char>(0xf9));  // FREQ
  f.push_back(5);
  f.push_back(22);  // a hash with field TTLs: count, then field, value, expiry ms (-1: none)
  RdbPutString(f, "h");
  RdbPutLength(f, 2);
  RdbPutString(f, "a");
  RdbPutString(f, "1");
  PutLittleEndian(f, 1'800'000'000'000, 8);
  RdbPutString(f, "b");
  RdbPutString(f, "2");
  PutLittleEndian(f, ~uint64_t{0}, 8);
  f.push_back(7);  // a module value: id, then elements up to EOF (0)
  RdbPutString(f, "m");
  RdbPutLength(f, ModuleId("ReJSON-RL", 3));
  for (uint64_t opcode : {2, 1}) {  // UINT 7, SINT 9
    RdbPutLength(f, opcode);
    RdbPutLength(f, opcode == 2 ? 7 : 9);
  }
  RdbPutLength(f, 3);  // FLOAT
  PutLittleEndian(f, 0, 4);
  RdbPutLength(f, 4);  // DOUBLE
  PutLittleEndian(f, 0, 8);
  RdbPutLength(f, 5);  // STRING
  RdbPutString(f, "{\"a\":1}");
  RdbPutLength(f, 0);
  f.push_back(21);  // an empty stream (listpacks 3): no nodes, no groups
  RdbPutString(f, "x");
  RdbPutLength(f, 0);
  for (int i = 0; i < 8; ++i) RdbPutLength(f, 0);  // length, ids, entries added
  RdbPutLength(f, 0);                              // groups
  f.push_back(static_cast<char>(0xfe));            // SELECTDB 0
  RdbPutLength(f, 0);
  f.push_back(static_cast<char>(0xfd));  // EXPIRETIME (seconds)
  PutLittleEndian(f, 2'000'000'000, 4);
  f += StringKey("old", "x");
  return Seal(f);
}

TEST_CASE("a Valkey 9 file: magic, opcodes, hash field TTLs, functions, streams, skipped types") {
  const std::string file = ValkeyFile();
  Recorder recorder;
  Result<RdbFileSummary> summary = ReadRdbFile(file, recorder);
  REQUIRE(summary.ok());
  CHECK(summary->version == 80);
  CHECK(summary->valkey_magic);
  CHECK(summary->checksummed);
  CHECK(summary->keys == 4);
  CHECK(summary->functions == 1);
  CHECK(summary->skipped == std::map<std::string, uint64_t>{{"module:ReJSON-RL", 1}});
  CHECK(summary->stream_group_keys == 0);
  const Recorded& out = recorder.out;
  CHECK(out.aux.at("valkey-ver") == "9.0.0");
  REQUIRE(out.functions.size() == 1);
  CHECK(out.functions[0].starts_with("#!lua name=lib"));
  const VisibleValue& s = out.keys.at({2, "s"});
  CHECK(s.type == ObjectType::kString);
  CHECK(s.string == "v");
  CHECK(s.expiry_ms == 1'900'000'000'000);
  const VisibleValue& h = out.keys.at({2, "h"});
  REQUIRE(h.hash.size() == 2);
  CHECK(h.hash[0].ttl_at_ms == 1'800'000'000'000);
  CHECK(h.hash[1].ttl_at_ms == 0);
  CHECK_FALSE(h.expiry_ms.has_value());  // the expiry belonged to the key before it
  CHECK(out.keys.at({0, "old"}).expiry_ms == int64_t{2'000'000'000} * 1000);
  CHECK(out.skipped == std::vector<std::string>{"2:m:module:ReJSON-RL"});
  const VisibleValue& x = out.keys.at({2, "x"});
  CHECK(x.type == ObjectType::kStream);
  CHECK(x.stream.empty());
  CHECK(out.groups.empty());
}

TEST_CASE("old versions: no checksum before version 5, a zero checksum is not checked") {
  std::string v4 = "REDIS0004" + StringKey("k", "v");
  v4.push_back(static_cast<char>(0xff));
  Result<Recorded> old = Read(v4);
  REQUIRE(old.ok());
  CHECK(old->keys.at({0, "k"}).string == "v");
  CHECK(ErrorOf(v4 + "x").find("bytes after the end-of-file marker") != std::string::npos);

  std::string unchecked = "REDIS0009" + StringKey("k", "v");
  unchecked.push_back(static_cast<char>(0xff));
  PutLittleEndian(unchecked, 0, 8);
  RdbCountingSink counting;
  Result<RdbFileSummary> summary = ReadRdbFile(unchecked, counting);
  REQUIRE(summary.ok());
  CHECK_FALSE(summary->checksummed);
}

TEST_CASE("corrupt files are refused with the offset where reading failed") {
  const std::string good = ValkeyFile();
  SECTION("checksum") {
    std::string bad = good;
    bad.back() ^= 1;
    CHECK(ErrorOf(bad) ==
          "Bad RDB file at byte offset " + std::to_string(good.size()) + ": checksum mismatch");
  }
  SECTION("a flipped byte inside is caught (by the value or the checksum)") {
    for (size_t i = 9; i < good.size() - 9; i += 7) {
      std::string bad = good;
      bad[i] ^= 0x5a;
      Recorder recorder;
      CHECK_FALSE(ReadRdbFile(bad, recorder).ok());
    }
  }
  SECTION("every truncation") {
    for (size_t size = 0; size < good.size(); ++size) {
      Recorder recorder;
      CHECK_FALSE(ReadRdbFile(good.substr(0, size), recorder).ok());
    }
  }
  SECTION("trailing bytes") { CHECK(ErrorOf(good + "x").ends_with("bytes after the checksum")); }
  SECTION("magic, version, unknown type") {
    CHECK(ErrorOf("RODIS0009").ends_with("no REDIS or VALKEY magic)"));
    CHECK(ErrorOf(Seal("REDIS0013")).ends_with("unsupported RDB version"));
    CHECK(ErrorOf(Seal("VALKEY012")).ends_with("unsupported RDB version"));
    std::string unknown = "REDIS0011";
    unknown.push_back(8);
    RdbPutString(unknown, "k");
    CHECK(ErrorOf(Seal(unknown)) == "Bad RDB file at byte offset 12: unknown value type 8");
  }
  SECTION("a value that does not decode") {
    std::string file = "REDIS0011";
    file.push_back(2);  // a set claiming 5 members, holding 1
    RdbPutString(file, "k");
    RdbPutLength(file, 5);
    RdbPutString(file, "a");
    CHECK(ErrorOf(Seal(file)).find(": bad value") != std::string::npos);
  }
}

TEST_CASE("the file redis-server 7.0 wrote: every type and encoding, three dbs") {
  std::ifstream in(std::string(LATTICE_TESTS_DIR) + "/../fuzz/corpus/rdb_file/every-type.rdb",
                   std::ios::binary);
  REQUIRE(in);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Recorder recorder;
  Result<RdbFileSummary> summary = ReadRdbFile(bytes, recorder);
  REQUIRE(summary.ok());
  CHECK(summary->version == 10);
  CHECK(summary->checksummed);
  CHECK(summary->keys == 3 * 16 + 1);
  CHECK(summary->skipped.empty());
  CHECK(summary->stream_group_keys == 1);  // stream:1, with one group
  CHECK(summary->stream_groups == 1);
  CHECK(summary->functions == 1);
  const Recorded& out = recorder.out;
  for (int db : {0, 1, 5}) {
    const std::string p = "db" + std::to_string(db) + ":";
    CHECK(out.keys.at({db, p + "s:lzf"}).string == std::string(200, 'a') + std::string(200, 'b'));
    CHECK(out.keys.at({db, p + "s:ttl"}).expiry_ms.has_value());
    CHECK(out.keys.at({db, p + "l:nodes"}).list.size() == 40);
    CHECK(out.keys.at({db, p + "l:plain"}).list.front() == std::string(70000, 'x'));
    CHECK(out.keys.at({db, p + "set:big"}).set.size() == 300);
    CHECK(out.keys.at({db, p + "z:big"}).zset.size() == 300);
    CHECK(out.keys.at({db, p + "h:big"}).hash.size() == 300);
    CHECK(out.keys.at({db, p + "h:small"}).expiry_ms.has_value());
  }
  const VisibleValue& stream = out.keys.at({0, "stream:1"});
  CHECK(stream.type == ObjectType::kStream);
  REQUIRE(stream.stream.size() == 2);
  CHECK(stream.stream[0].second == std::vector<std::string>{"a", "1"});
  REQUIRE(out.groups.at({0, "stream:1"}).size() == 1);
  CHECK(out.groups.at({0, "stream:1"})[0].name == "group");
  CHECK(out.groups.at({0, "stream:1"})[0].pending.size() == 2);
  CHECK(out.aux.at("redis-ver").starts_with("7."));

  // In steps of one record (how a large file loads in slices): the same keys, in order, and
  // the position only moves forward until the end.
  Recorder stepped;
  RdbFileReader reader(bytes, stepped);
  size_t steps = 0;
  size_t position = 0;
  for (;;) {
    Result<bool> done = reader.Step(1);
    REQUIRE(done.ok());
    CHECK(reader.position() > position);
    position = reader.position();
    ++steps;
    if (*done) break;
    REQUIRE(steps < bytes.size());
  }
  CHECK(position == bytes.size());
  CHECK(steps > summary->keys);  // keys and opcodes
  CHECK(reader.summary().keys == summary->keys);
  CHECK(stepped.out.keys == out.keys);
  CHECK(stepped.out.functions == out.functions);
}

TEST_CASE("a corrupt file read in steps fails at the same offset as read whole") {
  std::string file = ValkeyFile();
  file[file.size() - 12] ^= 0x20;
  const std::string whole = ErrorOf(file);
  Recorder recorder;
  RdbFileReader reader(file, recorder);
  Result<bool> step = false;
  for (size_t i = 0; i < file.size() && step.ok() && !*step; ++i) step = reader.Step(1);
  REQUIRE_FALSE(step.ok());
  CHECK(step.error().message == whole);
}

}  // namespace
}  // namespace lattice::server
