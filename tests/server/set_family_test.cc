// Tests of the set family through the real command table (no socket): every command, option and
// error, RESP2 and RESP3 reply shapes, the SSCAN cursor guarantee, and convergence of replicas
// fed each other's ops (including concurrent SADD/SREM/SPOP).

#include <algorithm>
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "server/server_test_util.h"

namespace lattice::server {
namespace {

using testing::FakeClock;
using testing::TestServer;

constexpr char kWrongType[] =
    "(error) WRONGTYPE Operation against a key holding the wrong kind of value";

// A string key, written through the keyspace so that these tests need no other family.
void PutString(TestServer& t, const std::string& key, const std::string& value) {
  Keyspace& ks = t.server().keyspace();
  const int64_t now = t.clock().NowMs();
  crdt::Key& k = ks.Open(0, key, now);
  Result<crdt::KeyOp> op = k.Set(value, false, std::nullopt, ks.BeginWrite(now), ks.context());
  REQUIRE(op.ok());
  ks.Commit(0, key, std::move(*op));
}

void PutExpiry(TestServer& t, const std::string& key, int64_t at_ms) {
  Keyspace& ks = t.server().keyspace();
  const int64_t now = t.clock().NowMs();
  crdt::Key& k = ks.Open(0, key, now);
  Result<crdt::KeyOp> op = k.Expire(at_ms, ks.BeginWrite(now), ks.context());
  REQUIRE(op.ok());
  ks.Commit(0, key, std::move(*op));
}

bool Exists(TestServer& t, const std::string& key) {
  return t.server().keyspace().Find(0, key, t.clock().NowMs()) != nullptr;
}

// The elements of an array/set reply, sorted (sets have no defined order).
std::vector<std::string> Sorted(const RespValue& value) {
  std::vector<std::string> out;
  for (const RespValue& element : value.elements) {
    out.push_back(element.text);
  }
  std::sort(out.begin(), out.end());
  return out;
}

using Strings = std::vector<std::string>;

TEST_CASE("SADD and SREM count what changed and manage the key", "[set]") {
  TestServer t;
  CHECK(t.Run({"sadd", "s", "a", "b", "a"}) == "2");
  CHECK(t.Run({"sadd", "s", "b", "c"}) == "1");
  CHECK(t.Run({"smembers", "s"}) == "[\"a\", \"b\", \"c\"]");
  CHECK(t.Run({"srem", "s", "a", "x", "a"}) == "1");
  CHECK(t.Run({"srem", "nokey", "a"}) == "0");
  CHECK(t.Run({"srem", "s", "x"}) == "0");
  CHECK(t.Run({"srem", "s", "b", "c"}) == "2");
  CHECK_FALSE(Exists(t, "s"));  // the last member removed deletes the key
  CHECK(t.Run({"sadd", "s"}) == "(error) ERR wrong number of arguments for 'sadd' command");
  CHECK(t.Run({"srem", "s"}) == "(error) ERR wrong number of arguments for 'srem' command");
  PutString(t, "str", "v");
  CHECK(t.Run({"sadd", "str", "a"}) == kWrongType);
  CHECK(t.Run({"srem", "str", "a"}) == kWrongType);
  CHECK(t.Run({"sadd", "s", ""}) == "1");  // the empty member is a member
  CHECK(t.Run({"sismember", "s", ""}) == "1");
}

TEST_CASE("membership reads: SMEMBERS, SISMEMBER, SMISMEMBER, SCARD", "[set]") {
  TestServer t;
  PutString(t, "str", "v");
  CHECK(t.Run({"smembers", "nokey"}) == "[]");
  CHECK(t.Run({"scard", "nokey"}) == "0");
  CHECK(t.Run({"sismember", "nokey", "a"}) == "0");
  CHECK(t.Run({"smismember", "nokey", "a", "b"}) == "[0, 0]");
  CHECK(t.Run({"sadd", "s", "x", "y"}) == "2");
  CHECK(t.Run({"scard", "s"}) == "2");
  CHECK(t.Run({"sismember", "s", "x"}) == "1");
  CHECK(t.Run({"sismember", "s", "z"}) == "0");
  CHECK(t.Run({"smismember", "s", "z", "x", "x"}) == "[0, 1, 1]");
  for (const char* command : {"smembers", "scard"}) {
    CHECK(t.Run({command, "str"}) == kWrongType);
  }
  CHECK(t.Run({"sismember", "str", "a"}) == kWrongType);
  CHECK(t.Run({"smismember", "str", "a"}) == kWrongType);
  CHECK(t.Run({"sismember", "s"}) ==
        "(error) ERR wrong number of arguments for 'sismember' command");
  CHECK(t.Run({"smismember", "s"}) ==
        "(error) ERR wrong number of arguments for 'smismember' command");

  t.client().protocol = Protocol::kResp3;
  CHECK(t.Run({"smembers", "s"}) == "~[\"x\", \"y\"]");
  CHECK(t.Run({"smembers", "nokey"}) == "~[]");
  CHECK(t.Run({"smismember", "s", "x"}) == "[1]");
}

TEST_CASE("reads count keyspace hits and misses, writes do not", "[set]") {
  TestServer t;
  const ServerStats& stats = t.server().stats();
  CHECK(t.Run({"sadd", "s", "a"}) == "1");
  CHECK(t.Run({"srem", "nokey", "a"}) == "0");
  CHECK(t.Run({"spop", "nokey"}) == "(nil)");
  CHECK(stats.keyspace_hits == 0);
  CHECK(stats.keyspace_misses == 0);
  CHECK(t.Run({"scard", "s"}) == "1");
  CHECK(t.Run({"sismember", "nokey", "a"}) == "0");
  CHECK(t.Run({"sunion", "s", "nokey"}) == "[\"a\"]");
  CHECK(stats.keyspace_hits == 2);
  CHECK(stats.keyspace_misses == 2);
}

TEST_CASE("an expired set is hidden and replaced by a write", "[set]") {
  TestServer t;
  CHECK(t.Run({"sadd", "s", "a", "b"}) == "2");
  PutExpiry(t, "s", t.clock().NowMs() + 1000);
  CHECK(t.Run({"scard", "s"}) == "2");
  t.clock().now_us += 1'000'000;
  CHECK(t.Run({"scard", "s"}) == "0");
  CHECK(t.Run({"smembers", "s"}) == "[]");
  CHECK(t.Run({"spop", "s"}) == "(nil)");
  CHECK(t.Run({"sadd", "s", "c"}) == "1");
  CHECK(t.Run({"smembers", "s"}) == "[\"c\"]");
}

TEST_CASE("SPOP removes random members", "[set]") {
  TestServer t;
  PutString(t, "str", "v");
  CHECK(t.Run({"spop", "nokey"}) == "(nil)");
  CHECK(t.Run({"spop", "nokey", "3"}) == "[]");
  CHECK(t.Run({"spop", "s", "-1"}) == "(error) ERR value is out of range, must be positive");
  CHECK(t.Run({"spop", "s", "abc"}) == "(error) ERR value is out of range, must be positive");
  CHECK(t.Run({"spop", "str", "abc"}) == "(error) ERR value is out of range, must be positive");
  CHECK(t.Run({"spop", "s", "1", "2"}) == "(error) ERR syntax error");
  CHECK(t.Run({"spop", "str"}) == kWrongType);
  CHECK(t.Run({"spop", "str", "0"}) == kWrongType);

  CHECK(t.Run({"sadd", "s", "a", "b", "c", "d", "e"}) == "5");
  CHECK(t.Run({"spop", "s", "0"}) == "[]");
  const RespValue one = t.RunValue({"spop", "s"});
  REQUIRE(one.type == RespValue::Type::kBulk);
  CHECK(t.Run({"sismember", "s", one.text}) == "0");
  const RespValue two = t.RunValue({"spop", "s", "2"});
  REQUIRE(two.elements.size() == 2);
  CHECK(two.elements[0].text != two.elements[1].text);
  CHECK(t.Run({"scard", "s"}) == "2");
  std::set<std::string> seen{one.text, two.elements[0].text, two.elements[1].text};
  const RespValue rest = t.RunValue({"spop", "s", "10"});  // count >= size: all, key deleted
  REQUIRE(rest.elements.size() == 2);
  for (const RespValue& member : rest.elements) {
    seen.insert(member.text);
  }
  CHECK(seen == std::set<std::string>{"a", "b", "c", "d", "e"});
  CHECK_FALSE(Exists(t, "s"));
  CHECK(t.Run({"sadd", "s", "only"}) == "1");
  CHECK(t.Run({"spop", "s"}) == "\"only\"");
  CHECK_FALSE(Exists(t, "s"));
  CHECK(t.Run({"sadd", "s", "a"}) == "1");
  CHECK(t.Run({"spop", "s", "9223372036854775807"}) == "[\"a\"]");

  t.client().protocol = Protocol::kResp3;
  CHECK(t.Run({"sadd", "s", "a"}) == "1");
  CHECK(t.Run({"spop", "s", "1"}) == "~[\"a\"]");
  CHECK(t.Run({"spop", "nokey", "1"}) == "~[]");
  CHECK(t.Run({"spop", "nokey"}) == "(nil)");
}

TEST_CASE("SRANDMEMBER reply shapes, counts and errors", "[set]") {
  TestServer t;
  PutString(t, "str", "v");
  CHECK(t.Run({"srandmember", "nokey"}) == "(nil)");
  CHECK(t.Run({"srandmember", "nokey", "5"}) == "[]");
  CHECK(t.Run({"srandmember", "nokey", "-5"}) == "[]");
  CHECK(t.Run({"srandmember", "s", "abc"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"srandmember", "s", "9223372036854775808"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"srandmember", "s", "-9223372036854775808"}) ==
        "(error) ERR value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807");
  CHECK(t.Run({"srandmember", "s", "1", "2"}) == "(error) ERR syntax error");
  CHECK(t.Run({"srandmember", "str"}) == kWrongType);
  CHECK(t.Run({"srandmember", "str", "0"}) == kWrongType);

  CHECK(t.Run({"sadd", "s", "a", "b", "c"}) == "3");
  const RespValue one = t.RunValue({"srandmember", "s"});
  REQUIRE(one.type == RespValue::Type::kBulk);
  CHECK(t.Run({"sismember", "s", one.text}) == "1");
  CHECK(t.Run({"srandmember", "s", "0"}) == "[]");
  CHECK(Sorted(t.RunValue({"srandmember", "s", "3"})) == Strings{"a", "b", "c"});
  CHECK(Sorted(t.RunValue({"srandmember", "s", "100"})) == Strings{"a", "b", "c"});
  const Strings two = Sorted(t.RunValue({"srandmember", "s", "2"}));
  REQUIRE(two.size() == 2);
  CHECK(two[0] != two[1]);
  const RespValue repeats = t.RunValue({"srandmember", "s", "-50"});
  REQUIRE(repeats.elements.size() == 50);
  std::set<std::string> distinct;
  for (const RespValue& member : repeats.elements) {
    distinct.insert(member.text);
  }
  CHECK(distinct.size() == 3);  // 50 draws from 3 members hit all of them (p ~ 1 - 3e-9)
  CHECK(t.Run({"srandmember", "s", "-9223372036854775807"}) ==
        "(error) ERR value is out of range");  // a reply Lattice refuses to build
  CHECK(t.Run({"scard", "s"}) == "3");         // reads only

  t.client().protocol = Protocol::kResp3;
  CHECK(t.RunValue({"srandmember", "s", "2"}).type == RespValue::Type::kArray);
  CHECK(t.Run({"srandmember", "nokey"}) == "(nil)");
}

TEST_CASE("SMOVE moves one member and checks both types first", "[set]") {
  TestServer t;
  PutString(t, "str", "v");
  CHECK(t.Run({"smove", "nokey", "str", "a"}) == "0");  // a missing source wins over WRONGTYPE
  CHECK(t.Run({"smove", "nokey", "nokey", "a"}) == "0");
  CHECK(t.Run({"sadd", "src", "a", "b"}) == "2");
  CHECK(t.Run({"smove", "str", "src", "a"}) == kWrongType);
  CHECK(t.Run({"smove", "src", "str", "a"}) == kWrongType);
  CHECK(t.Run({"smembers", "src"}) == "[\"a\", \"b\"]");  // nothing half-applied
  CHECK(t.Run({"smove", "src", "src", "a"}) == "1");
  CHECK(t.Run({"smove", "src", "src", "z"}) == "0");
  CHECK(t.Run({"smove", "src", "dst", "z"}) == "0");
  CHECK_FALSE(Exists(t, "dst"));
  CHECK(t.Run({"smove", "src", "dst", "a"}) == "1");
  CHECK(t.Run({"smembers", "dst"}) == "[\"a\"]");
  CHECK(t.Run({"sadd", "dst", "b"}) == "1");
  CHECK(t.Run({"smove", "src", "dst", "b"}) == "1");  // already in the destination
  CHECK_FALSE(Exists(t, "src"));
  CHECK(t.Run({"smembers", "dst"}) == "[\"a\", \"b\"]");
  CHECK(t.Run({"smove", "src", "dst"}) ==
        "(error) ERR wrong number of arguments for 'smove' command");
}

TEST_CASE("SINTER, SUNION, SDIFF", "[set]") {
  TestServer t;
  PutString(t, "str", "v");
  CHECK(t.Run({"sadd", "a", "1", "2", "3", "4"}) == "4");
  CHECK(t.Run({"sadd", "b", "2", "3", "5"}) == "3");
  CHECK(t.Run({"sadd", "c", "3", "6"}) == "2");
  CHECK(t.Run({"sinter", "a", "b"}) == "[\"2\", \"3\"]");
  CHECK(t.Run({"sinter", "a", "b", "c"}) == "[\"3\"]");
  CHECK(t.Run({"sinter", "a"}) == "[\"1\", \"2\", \"3\", \"4\"]");
  CHECK(t.Run({"sinter", "a", "nokey"}) == "[]");
  CHECK(t.Run({"sunion", "a", "b", "nokey"}) == "[\"1\", \"2\", \"3\", \"4\", \"5\"]");
  CHECK(t.Run({"sunion", "nokey"}) == "[]");
  CHECK(t.Run({"sdiff", "a", "b"}) == "[\"1\", \"4\"]");
  CHECK(t.Run({"sdiff", "a", "b", "c", "nokey"}) == "[\"1\", \"4\"]");
  CHECK(t.Run({"sdiff", "a", "a"}) == "[]");
  CHECK(t.Run({"sdiff", "nokey", "a"}) == "[]");
  for (const char* command : {"sinter", "sunion", "sdiff"}) {
    CAPTURE(command);
    CHECK(t.Run({command, "a", "str"}) == kWrongType);
    CHECK(t.Run({command, "nokey", "str"}) == kWrongType);  // every key is checked
    CHECK(t.Run({command, "str"}) == kWrongType);
  }
  t.client().protocol = Protocol::kResp3;
  CHECK(t.Run({"sinter", "a", "c"}) == "~[\"3\"]");
  CHECK(t.Run({"sunion", "c"}) == "~[\"3\", \"6\"]");
  CHECK(t.Run({"sdiff", "c", "a"}) == "~[\"6\"]");
  CHECK(t.Run({"sinter", "nokey"}) == "~[]");
}

TEST_CASE("the STORE variants replace the destination", "[set]") {
  TestServer t;
  CHECK(t.Run({"sadd", "a", "1", "2", "3"}) == "3");
  CHECK(t.Run({"sadd", "b", "2", "3", "4"}) == "3");
  CHECK(t.Run({"sinterstore", "d", "a", "b"}) == "2");
  CHECK(t.Run({"smembers", "d"}) == "[\"2\", \"3\"]");
  CHECK(t.Run({"sunionstore", "d", "a", "b"}) == "4");
  CHECK(t.Run({"smembers", "d"}) == "[\"1\", \"2\", \"3\", \"4\"]");
  CHECK(t.Run({"sdiffstore", "d", "a", "b"}) == "1");
  CHECK(t.Run({"smembers", "d"}) == "[\"1\"]");
  CHECK(t.Run({"sdiffstore", "a", "a", "b"}) == "1");  // the destination is also a source
  CHECK(t.Run({"smembers", "a"}) == "[\"1\"]");
  // Any type is overwritten, and the old TTL goes with it.
  PutString(t, "str", "v");
  PutExpiry(t, "str", t.clock().NowMs() + 60'000);
  CHECK(t.Run({"sunionstore", "str", "b"}) == "3");
  CHECK(t.Run({"smembers", "str"}) == "[\"2\", \"3\", \"4\"]");
  CHECK_FALSE(t.server().keyspace().Find(0, "str", t.clock().NowMs())->ExpiryMs().has_value());
  // An empty result deletes the destination.
  CHECK(t.Run({"sinterstore", "d", "a", "nokey"}) == "0");
  CHECK_FALSE(Exists(t, "d"));
  CHECK(t.Run({"sadd", "d", "x"}) == "1");
  CHECK(t.Run({"sdiffstore", "d", "b", "b"}) == "0");
  CHECK_FALSE(Exists(t, "d"));
  CHECK(t.Run({"sunionstore", "d", "nokey"}) == "0");
  // A source of the wrong type refuses the command and leaves the destination alone.
  PutString(t, "s2", "v");
  CHECK(t.Run({"sadd", "d", "keep"}) == "1");
  for (const char* command : {"sinterstore", "sunionstore", "sdiffstore"}) {
    CAPTURE(command);
    CHECK(t.Run({command, "d", "b", "s2"}) == kWrongType);
    CHECK(t.Run({command, "d", "nokey", "s2"}) == kWrongType);
    CHECK(t.Run({"smembers", "d"}) == "[\"keep\"]");
    CHECK(t.Run({command, "d"}) ==
          "(error) ERR wrong number of arguments for '" + std::string(command) + "' command");
  }
  t.client().protocol = Protocol::kResp3;
  CHECK(t.Run({"sunionstore", "d", "b"}) == "3");
}

TEST_CASE("SINTERCARD counts with an optional LIMIT", "[set]") {
  TestServer t;
  PutString(t, "str", "v");
  CHECK(t.Run({"sadd", "a", "1", "2", "3", "4"}) == "4");
  CHECK(t.Run({"sadd", "b", "2", "3", "4", "5"}) == "4");
  CHECK(t.Run({"sintercard", "2", "a", "b"}) == "3");
  CHECK(t.Run({"sintercard", "1", "a"}) == "4");
  CHECK(t.Run({"sintercard", "2", "a", "b", "LIMIT", "2"}) == "2");
  CHECK(t.Run({"sintercard", "2", "a", "b", "limit", "0"}) == "3");  // 0: no limit
  CHECK(t.Run({"sintercard", "2", "a", "b", "limit", "100"}) == "3");
  CHECK(t.Run({"sintercard", "2", "a", "b", "limit", "1", "limit", "5"}) == "3");
  CHECK(t.Run({"sintercard", "2", "a", "nokey"}) == "0");
  CHECK(t.Run({"sintercard", "1", "nokey", "limit", "0"}) == "0");
  const std::string numkeys = "(error) ERR numkeys should be greater than 0";
  CHECK(t.Run({"sintercard", "0", "a"}) == numkeys);
  CHECK(t.Run({"sintercard", "-1", "a"}) == numkeys);
  CHECK(t.Run({"sintercard", "abc", "a"}) == numkeys);
  CHECK(t.Run({"sintercard", "3", "a", "b"}) ==
        "(error) ERR Number of keys can't be greater than number of args");
  CHECK(t.Run({"sintercard", "9223372036854775807", "a"}) ==
        "(error) ERR Number of keys can't be greater than number of args");
  CHECK(t.Run({"sintercard", "1", "a", "limit"}) == "(error) ERR syntax error");
  CHECK(t.Run({"sintercard", "1", "a", "foo", "1"}) == "(error) ERR syntax error");
  CHECK(t.Run({"sintercard", "1", "a", "limit", "-1"}) == "(error) ERR LIMIT can't be negative");
  CHECK(t.Run({"sintercard", "1", "a", "limit", "x"}) == "(error) ERR LIMIT can't be negative");
  CHECK(t.Run({"sintercard", "1", "str"}) == kWrongType);
  CHECK(t.Run({"sintercard", "2", "nokey", "str"}) == kWrongType);
  CHECK(t.Run({"sintercard", "1"}) ==
        "(error) ERR wrong number of arguments for 'sintercard' command");
}

TEST_CASE("SSCAN arguments and errors", "[set]") {
  TestServer t;
  PutString(t, "str", "v");
  CHECK(t.Run({"sadd", "s", "apple", "avocado", "banana"}) == "3");
  CHECK(t.Run({"sscan", "s", "0"}) == "[\"0\", [\"apple\", \"avocado\", \"banana\"]]");
  CHECK(t.Run({"sscan", "s", "0", "match", "a*"}) == "[\"0\", [\"apple\", \"avocado\"]]");
  CHECK(t.Run({"sscan", "s", "0", "MATCH", "x*", "COUNT", "1"}) == "[\"0\", []]");
  CHECK(t.Run({"sscan", "s", "0", "match", "x*", "match", "b*"}) == "[\"0\", [\"banana\"]]");
  for (const char* cursor : {"+0", "00", "-0", " 0", "\t7", "+18446744073709551615"}) {
    CAPTURE(cursor);  // string2ull: strtoull's grammar once string2ll refuses
    CHECK(t.Run({"sscan", "s", cursor}).find("banana") != std::string::npos);
  }
  CHECK(t.Run({"sscan", "nokey", "0"}) == "[\"0\", []]");
  CHECK(t.Run({"sscan", "nokey", "0", "count", "0"}) == "[\"0\", []]");  // options unchecked
  const std::string invalid = "(error) ERR invalid cursor";
  for (const char* cursor :
       {"abc", "", " ", "1 ", "-", "+", "-1", "-5", "18446744073709551616", "1.5", "0x10"}) {
    CAPTURE(cursor);
    CHECK(t.Run({"sscan", "s", cursor}) == invalid);
    CHECK(t.Run({"sscan", "str", cursor}) == invalid);  // the cursor is parsed first
  }
  CHECK(t.Run({"sscan", "s", "18446744073709551615"}).find("\"0\"") != std::string::npos);
  CHECK(t.Run({"sscan", "s", "-05"}).find("\"0\"") != std::string::npos);  // wraps, as in C
  CHECK(t.Run({"sscan", "str", "0"}) == kWrongType);
  CHECK(t.Run({"sscan", "s", "0", "count", "0"}) == "(error) ERR syntax error");
  CHECK(t.Run({"sscan", "s", "0", "count", "-1"}) == "(error) ERR syntax error");
  CHECK(t.Run({"sscan", "s", "0", "count", "abc"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"sscan", "s", "0", "count"}) == "(error) ERR syntax error");
  CHECK(t.Run({"sscan", "s", "0", "match"}) == "(error) ERR syntax error");
  CHECK(t.Run({"sscan", "s", "0", "type", "string"}) == "(error) ERR syntax error");
  CHECK(t.Run({"sscan", "s", "0", "novalues"}) ==
        "(error) ERR NOVALUES option can only be used in HSCAN");
  CHECK(t.Run({"sscan", "s", "0", "NOSCORES", "count", "5"}) ==
        "(error) ERR NOSCORES option can only be used in ZSCAN");
  CHECK(t.Run({"sscan", "s", "0", "count", "x", "novalues"}) ==
        "(error) ERR value is not an integer or out of range");  // the first bad option wins
  CHECK(t.Run({"sscan", "s", "0", "bogus", "novalues"}) == "(error) ERR syntax error");
  CHECK(t.Run({"sscan", "s"}) == "(error) ERR wrong number of arguments for 'sscan' command");
}

// Scans `key` from cursor 0 to 0, calling `between` after each call; returns what was seen.
template <typename Between>
std::set<std::string> FullScan(TestServer& t, const std::string& key, const std::string& count,
                               Between between, int* calls) {
  std::set<std::string> seen;
  std::string cursor = "0";
  *calls = 0;
  do {
    const RespValue page = t.RunValue({"sscan", key, cursor, "count", count});
    REQUIRE(page.elements.size() == 2);
    cursor = page.elements[0].text;
    for (const RespValue& member : page.elements[1].elements) {
      seen.insert(member.text);
    }
    between();
    REQUIRE(++*calls < 100'000);
  } while (cursor != "0");
  return seen;
}

TEST_CASE("SSCAN of a large set returns every member that stays, in several calls", "[set]") {
  TestServer t;
  std::vector<std::string> add{"sadd", "big"};
  for (int i = 0; i < 2000; ++i) {
    add.push_back("m" + std::to_string(i));
  }
  CHECK(t.Run(add) == "2000");
  int calls = 0;
  std::set<std::string> seen = FullScan(
      t, "big", "10", [] {}, &calls);
  CHECK(seen.size() == 2000);
  CHECK(calls > 1);
  CHECK(calls <= 40);  // a batch is at least size/32 members whatever COUNT says

  // Members added and removed during the scan may or may not show; the ones that stay must.
  int step = 0;
  seen = FullScan(
      t, "big", "50",
      [&] {
        ++step;
        CHECK(t.Run({"sadd", "big", "new" + std::to_string(step)}) == "1");
        CHECK(t.Run({"srem", "big", "m" + std::to_string(1999 - step)}) == "1");
      },
      &calls);
  for (int i = 0; i < 2000 - step - 1; ++i) {
    CAPTURE(i);
    CHECK(seen.count("m" + std::to_string(i)) == 1);
  }
  // MATCH filters a page after it is chosen.
  seen = FullScan(
      t, "big", "1000", [] {}, &calls);
  const RespValue filtered = t.RunValue({"sscan", "big", "0", "match", "m1?", "count", "5000"});
  CHECK(filtered.elements[0].text == "0");
  CHECK(Sorted(filtered.elements[1]) ==
        Strings{"m10", "m11", "m12", "m13", "m14", "m15", "m16", "m17", "m18", "m19"});
  CHECK(t.Run({"sscan", "big", "18446744073709551615"}) == "[\"0\", []]");
}

// Collects every op this replica originates, to replay on another replica.
using Sink = testing::OpCollector;
using Replica = testing::Region;

TEST_CASE("set writes converge on a second replica", "[set]") {
  const uint64_t seed = GENERATE(take(20, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  Replica a(1);
  Replica b(2);
  const std::vector<std::string> keys{"k0", "k1", "k2", "k3"};
  auto key = [&] { return keys[rng.Uniform(keys.size())]; };
  auto member = [&] { return "m" + std::to_string(rng.Uniform(8)); };
  for (int i = 0; i < 300; ++i) {
    switch (rng.Uniform(8)) {
      case 0:
        a.Run({"sadd", key(), member(), member()});
        break;
      case 1:
        a.Run({"srem", key(), member(), member()});
        break;
      case 2:
        a.Run({"spop", key(), std::to_string(rng.Uniform(4))});
        break;
      case 3:
        a.Run({"smove", key(), key(), member()});
        break;
      case 4:
        a.Run({"sinterstore", key(), key(), key()});
        break;
      case 5:
        a.Run({"sunionstore", key(), key(), key()});
        break;
      case 6:
        a.Run({"sdiffstore", key(), key(), key()});
        break;
      default:
        a.Run({"spop", key()});
        break;
    }
  }
  a.sink.DeliverTo(b.keyspace());
  for (const std::string& k : keys) {
    CAPTURE(k);
    CHECK(a.Run({"smembers", k}) == b.Run({"smembers", k}));
    CHECK(a.Run({"scard", k}) == b.Run({"scard", k}));
  }
}

TEST_CASE("concurrent set writes in two regions converge", "[set]") {
  Replica a(1);
  Replica b(2);
  CHECK(a.Run({"sadd", "s", "m", "n", "p"}) == "3");
  a.sink.DeliverTo(b.keyspace());
  // A removes m and pops everything else; B concurrently re-adds m and adds q.
  CHECK(a.Run({"srem", "s", "m"}) == "1");
  CHECK(a.Run({"spop", "s", "10"}) == "[\"n\", \"p\"]");
  CHECK(b.Run({"sadd", "s", "m", "q"}) == "1");
  CHECK(b.Run({"smove", "s", "t", "n"}) == "1");
  a.sink.DeliverTo(b.keyspace());
  b.sink.DeliverTo(a.keyspace());
  // Add wins: B's re-add of m survives A's SREM; q was never seen by A.
  CHECK(a.Run({"smembers", "s"}) == "[\"m\", \"q\"]");
  CHECK(b.Run({"smembers", "s"}) == "[\"m\", \"q\"]");
  CHECK(a.Run({"smembers", "t"}) == "[\"n\"]");
  CHECK(b.Run({"smembers", "t"}) == "[\"n\"]");
  // A STORE concurrent with an SADD to its destination: the unseen add survives the replace.
  CHECK(a.Run({"sunionstore", "t", "s"}) == "2");
  CHECK(b.Run({"sadd", "t", "z"}) == "1");
  a.sink.DeliverTo(b.keyspace());
  b.sink.DeliverTo(a.keyspace());
  CHECK(a.Run({"smembers", "t"}) == "[\"m\", \"q\", \"z\"]");
  CHECK(b.Run({"smembers", "t"}) == "[\"m\", \"q\", \"z\"]");
}

TEST_CASE("set commands are registered as Valkey describes them", "[set]") {
  TestServer t;
  const CommandRegistry& registry = t.server().registry();
  const Command* sintercard = registry.Find("SINTERCARD");
  REQUIRE(sintercard != nullptr);
  CHECK((sintercard->spec.flags & kMovableKeys) != 0);
  const Command* sinterstore = registry.Find("sinterstore");
  REQUIRE(sinterstore != nullptr);
  CHECK(sinterstore->spec.keys.last == -1);
  for (const char* name : {"sadd", "srem", "smembers", "sismember", "smismember", "scard", "spop",
                           "srandmember", "smove", "sinter", "sunion", "sdiff", "sinterstore",
                           "sunionstore", "sdiffstore", "sintercard", "sscan"}) {
    CAPTURE(name);
    const Command* command = registry.Find(name);
    REQUIRE(command != nullptr);
    CHECK(command->spec.group == "set");
    CHECK((command->spec.acl & kAclSet) != 0);
  }
}

}  // namespace
}  // namespace lattice::server
