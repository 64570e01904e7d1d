// The hash family through TestServer (no sockets): every command, option and error, field TTL
// semantics from the Valkey 9 reference (§1), reclamation by the active cycle, and convergence
// of a second replica fed the ops this one shipped.

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "server/server_test_util.h"

namespace lattice::server {
namespace {

using testing::TestServer;

constexpr int64_t kNowMs = 1'700'000'000'000;  // FakeClock's start

std::string Ms(int64_t ms) { return std::to_string(ms); }

TEST_CASE("hash: HSET, HMSET, HSETNX, HGET, HMGET, HLEN, HEXISTS, HSTRLEN", "[hash]") {
  TestServer t;
  CHECK(t.Run({"hset", "h", "a", "1", "b", "2"}) == "2");
  CHECK(t.Run({"hset", "h", "a", "10", "c", "3"}) == "1");
  CHECK(t.Run({"hset", "h", "d", "1", "d", "2"}) == "1");  // repeats count once
  CHECK(t.Run({"hget", "h", "d"}) == "\"2\"");
  CHECK(t.Run({"hset", "h", "a"}) == "(error) ERR wrong number of arguments for 'hset' command");
  CHECK(t.Run({"hmset", "h", "a", "1", "x"}) ==
        "(error) ERR wrong number of arguments for 'hmset' command");
  CHECK(t.Run({"hmset", "h", "e", "5"}) == "OK");
  CHECK(t.Run({"hget", "h", "a"}) == "\"10\"");
  CHECK(t.Run({"hget", "h", "zz"}) == "(nil)");
  CHECK(t.Run({"hget", "nokey", "a"}) == "(nil)");
  CHECK(t.Run({"hmget", "h", "a", "zz", "b"}) == "[\"10\", (nil), \"2\"]");
  CHECK(t.Run({"hmget", "nokey", "a"}) == "[(nil)]");
  CHECK(t.Run({"hlen", "h"}) == "5");
  CHECK(t.Run({"hlen", "nokey"}) == "0");
  CHECK(t.Run({"hexists", "h", "a"}) == "1");
  CHECK(t.Run({"hexists", "h", "zz"}) == "0");
  CHECK(t.Run({"hexists", "nokey", "a"}) == "0");
  CHECK(t.Run({"hstrlen", "h", "a"}) == "2");
  CHECK(t.Run({"hstrlen", "h", "zz"}) == "0");
  CHECK(t.Run({"hsetnx", "h", "a", "x"}) == "0");
  CHECK(t.Run({"hsetnx", "h", "new", "x"}) == "1");
  CHECK(t.Run({"hget", "h", "new"}) == "\"x\"");
  CHECK(t.Run({"hsetnx", "fresh", "f", "v"}) == "1");
  CHECK(t.Run({"hget", "h"}) == "(error) ERR wrong number of arguments for 'hget' command");
}

TEST_CASE("hash: HGETALL, HKEYS, HVALS, HDEL and the key going away", "[hash]") {
  TestServer t;
  CHECK(t.Run({"hgetall", "h"}) == "[]");
  CHECK(t.Run({"hkeys", "h"}) == "[]");
  CHECK(t.Run({"hset", "h", "b", "2", "a", "1"}) == "2");
  CHECK(t.Run({"hgetall", "h"}) == "[\"a\", \"1\", \"b\", \"2\"]");
  CHECK(t.Run({"hkeys", "h"}) == "[\"a\", \"b\"]");
  CHECK(t.Run({"hvals", "h"}) == "[\"1\", \"2\"]");
  CHECK(t.Run({"hdel", "h", "a", "a", "zz"}) == "1");
  CHECK(t.Run({"hdel", "nokey", "a"}) == "0");
  CHECK(t.Run({"hdel", "h", "b"}) == "1");
  CHECK(t.Run({"exists", "h"}) == "0");
  CHECK(t.server().DbSize(0) == 0);
  t.client().protocol = Protocol::kResp3;
  CHECK(t.Run({"hset", "h", "a", "1"}) == "1");
  const RespValue map = t.RunValue({"hgetall", "h"});
  CHECK(map.ToString().find("a") != std::string::npos);
}

TEST_CASE("hash: WRONGTYPE on every command, nothing half-applied", "[hash]") {
  TestServer t;
  CHECK(t.Run({"set", "s", "x"}) == "OK");
  const std::string wrong =
      "(error) WRONGTYPE Operation against a key holding the wrong kind of value";
  const std::vector<std::vector<std::string>> commands = {
      {"hset", "s", "a", "1"},
      {"hsetnx", "s", "a", "1"},
      {"hmset", "s", "a", "1"},
      {"hget", "s", "a"},
      {"hmget", "s", "a"},
      {"hgetall", "s"},
      {"hkeys", "s"},
      {"hvals", "s"},
      {"hlen", "s"},
      {"hexists", "s", "a"},
      {"hdel", "s", "a"},
      {"hincrby", "s", "a", "1"},
      {"hincrbyfloat", "s", "a", "1"},
      {"hstrlen", "s", "a"},
      {"hrandfield", "s"},
      {"hrandfield", "s", "2"},
      {"hscan", "s", "0"},
      {"hsetex", "s", "EX", "10", "FIELDS", "1", "a", "1"},
      {"hgetex", "s", "FIELDS", "1", "a"},
      {"hexpire", "s", "10", "FIELDS", "1", "a"},
      {"hpexpire", "s", "10", "FIELDS", "1", "a"},
      {"hexpireat", "s", "10", "FIELDS", "1", "a"},
      {"hpexpireat", "s", "10", "FIELDS", "1", "a"},
      {"httl", "s", "FIELDS", "1", "a"},
      {"hpttl", "s", "FIELDS", "1", "a"},
      {"hexpiretime", "s", "FIELDS", "1", "a"},
      {"hpexpiretime", "s", "FIELDS", "1", "a"},
      {"hpersist", "s", "FIELDS", "1", "a"}};
  for (const auto& command : commands) {
    CAPTURE(command[0]);
    CHECK(t.Run(command) == wrong);
  }
  CHECK(t.Run({"get", "s"}) == "\"x\"");
}

TEST_CASE("hash: HINCRBY and HINCRBYFLOAT with Valkey's errors", "[hash]") {
  TestServer t;
  CHECK(t.Run({"hincrby", "h", "n", "5"}) == "5");
  CHECK(t.Run({"hincrby", "h", "n", "-7"}) == "-2");
  CHECK(t.Run({"hincrby", "h", "z", "0"}) == "0");
  CHECK(t.Run({"hget", "h", "z"}) == "\"0\"");
  CHECK(t.Run({"hincrby", "h", "n", "2"}) == "0");
  CHECK(t.Run({"hexists", "h", "n"}) == "1");  // a counter back at zero still exists
  CHECK(t.Run({"hincrby", "h", "n", "x"}) == "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"hset", "h", "s", "abc", "big", "9223372036854775807"}) == "2");
  CHECK(t.Run({"hincrby", "h", "s", "1"}) == "(error) ERR hash value is not an integer");
  CHECK(t.Run({"hincrby", "h", "big", "1"}) == "(error) ERR increment or decrement would overflow");
  CHECK(t.Run({"hincrby", "h", "n", "-9223372036854775808"}) == "-9223372036854775808");
  CHECK(t.Run({"hincrby", "h", "n", "-1"}) == "(error) ERR increment or decrement would overflow");
  CHECK(t.Run({"hincrby", "h", "big", "-9223372036854775807"}) == "0");
  CHECK(t.Run({"hincrbyfloat", "h", "f", "1.5"}) == "\"1.5\"");
  CHECK(t.Run({"hincrbyfloat", "h", "f", "0.25"}) == "\"1.75\"");
  CHECK(t.Run({"hincrbyfloat", "h", "f", "abc"}) == "(error) ERR value is not a valid float");
  CHECK(t.Run({"hincrbyfloat", "h", "s", "1"}) == "(error) ERR hash value is not a float");
  CHECK(t.Run({"hincrbyfloat", "h", "f", "inf"}) == "(error) ERR value is NaN or Infinity");
  CHECK(t.Run({"hset", "h", "huge", "1e308"}) == "1");
  CHECK(t.Run({"hincrbyfloat", "h", "huge", "1e308"}).size() > 300);  // long double: no inf
  CHECK(t.Run({"hincrbyfloat", "h", "n2", "5.0e3"}) == "\"5000\"");
}

TEST_CASE("hash: HRANDFIELD counts, repeats, WITHVALUES, errors", "[hash]") {
  TestServer t;
  CHECK(t.Run({"hrandfield", "h"}) == "(nil)");
  CHECK(t.Run({"hrandfield", "h", "3"}) == "[]");
  CHECK(t.Run({"hset", "h", "a", "1", "b", "2", "c", "3"}) == "3");
  const std::set<std::string> fields = {"\"a\"", "\"b\"", "\"c\""};
  CHECK(fields.count(t.Run({"hrandfield", "h"})) == 1);
  CHECK(t.Run({"hrandfield", "h", "0"}) == "[]");
  CHECK(t.RunValue({"hrandfield", "h", "2"}).elements.size() == 2);
  CHECK(t.RunValue({"hrandfield", "h", "10"}).elements.size() == 3);
  CHECK(t.RunValue({"hrandfield", "h", "-10"}).elements.size() == 10);
  CHECK(t.RunValue({"hrandfield", "h", "2", "withvalues"}).elements.size() == 4);
  CHECK(t.RunValue({"hrandfield", "h", "-5", "WITHVALUES"}).elements.size() == 10);
  RespValue unique = t.RunValue({"hrandfield", "h", "3"});
  std::set<std::string> seen;
  for (const RespValue& v : unique.elements) {
    seen.insert(v.ToString());
  }
  CHECK(seen == fields);
  CHECK(t.Run({"hrandfield", "h", "x"}) == "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"hrandfield", "h", "1", "bogus"}) == "(error) ERR syntax error");
  CHECK(t.Run({"hrandfield", "h", "1", "withvalues", "x"}) == "(error) ERR syntax error");
  CHECK(t.Run({"hrandfield", "h", "-9223372036854775808"}) ==
        "(error) ERR value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807");
  CHECK(t.Run({"hrandfield", "h", "4611686018427387904", "withvalues"}) ==
        "(error) ERR value is out of range");
  CHECK(t.Run({"hrandfield", "h", "-4611686018427387903"}) == "(error) ERR value is out of range");
  t.client().protocol = Protocol::kResp3;
  RespValue nested = t.RunValue({"hrandfield", "h", "2", "withvalues"});
  REQUIRE(nested.elements.size() == 2);
  CHECK(nested.elements[0].elements.size() == 2);
}

TEST_CASE("hash: HSCAN small hashes at once, large ones by cursor with the SCAN guarantee",
          "[hash]") {
  TestServer t;
  CHECK(t.Run({"hscan", "nokey", "0"}) == "[\"0\", []]");
  CHECK(t.Run({"hscan", "nokey", "0", "bogus"}) == "[\"0\", []]");  // options read after lookup
  CHECK(t.Run({"hscan", "h", "x"}) == "(error) ERR invalid cursor");
  CHECK(t.Run({"hscan", "h", "-1"}) == "(error) ERR invalid cursor");
  CHECK(t.Run({"hset", "h", "a", "1", "b", "2"}) == "2");
  CHECK(t.Run({"hscan", "h", "0"}) == "[\"0\", [\"a\", \"1\", \"b\", \"2\"]]");
  CHECK(t.Run({"hscan", "h", "0", "NOVALUES"}) == "[\"0\", [\"a\", \"b\"]]");
  CHECK(t.Run({"hscan", "h", "0", "MATCH", "b*"}) == "[\"0\", [\"b\", \"2\"]]");
  CHECK(t.Run({"hscan", "h", "0", "COUNT", "0"}) == "(error) ERR syntax error");
  CHECK(t.Run({"hscan", "h", "0", "COUNT", "x"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"hscan", "h", "0", "COUNT"}) == "(error) ERR syntax error");
  CHECK(t.Run({"hscan", "h", "0", "TYPE", "hash"}) == "(error) ERR syntax error");

  // 1000 fields: a hashtable in Valkey, scanned in steps. Fields deleted and added during the
  // scan may or may not appear; the ones present throughout must all appear.
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(t.Run({"hset", "big", "f" + std::to_string(i), "v"}) == "1");
  }
  std::set<std::string> seen;
  std::string cursor = "0";
  int calls = 0;
  do {
    RespValue reply = t.RunValue({"hscan", "big", cursor, "COUNT", "50", "NOVALUES"});
    REQUIRE(reply.elements.size() == 2);
    cursor = reply.elements[0].text;
    for (const RespValue& field : reply.elements[1].elements) {
      seen.insert(field.text);
    }
    if (calls == 3) {
      for (int i = 1000; i < 1500; ++i) {  // growth mid-scan
        REQUIRE(t.Run({"hset", "big", "f" + std::to_string(i), "v"}) == "1");
      }
      CHECK(t.Run({"hdel", "big", "f0", "f1"}) == "2");
    }
    ++calls;
  } while (cursor != "0" && calls < 1000);
  CHECK(cursor == "0");
  CHECK(calls > 10);
  for (int i = 2; i < 1000; ++i) {
    CHECK(seen.count("f" + std::to_string(i)) == 1);
  }
}

TEST_CASE("hash TTL: HEXPIRE family reply codes, conditions and parsing", "[hash]") {
  TestServer t;
  CHECK(t.Run({"hset", "h", "f1", "a", "f2", "b", "f3", "c"}) == "3");
  CHECK(t.Run({"hexpire", "h", "100", "FIELDS", "2", "f1", "nofield"}) == "[1, -2]");
  CHECK(t.Run({"hexpire", "nokey", "100", "FIELDS", "1", "f1"}) == "[-2]");
  CHECK(t.Run({"hpttl", "h", "FIELDS", "2", "f1", "f2"}) == "[100000, -1]");
  CHECK(t.Run({"hexpire", "h", "50", "NX", "FIELDS", "2", "f1", "f2"}) == "[0, 1]");
  CHECK(t.Run({"hexpire", "h", "200", "XX", "FIELDS", "2", "f1", "f3"}) == "[1, 0]");
  CHECK(t.Run({"hexpire", "h", "100", "GT", "FIELDS", "2", "f1", "f3"}) == "[0, 0]");
  CHECK(t.Run({"hexpire", "h", "300", "GT", "FIELDS", "1", "f1"}) == "[1]");
  CHECK(t.Run({"hexpire", "h", "400", "LT", "FIELDS", "2", "f1", "f3"}) == "[0, 1]");
  CHECK(t.Run({"hexpire", "h", "10", "LT", "FIELDS", "1", "f3"}) == "[1]");
  CHECK(t.Run({"hexpire", "h", "10", "XX", "GT", "FIELDS", "1", "f3"}) == "[0]");
  // The condition is checked before the past-time delete.
  CHECK(t.Run({"hset", "g", "f1", "x"}) == "1");
  CHECK(t.Run({"hexpire", "g", "0", "GT", "FIELDS", "2", "f1", "nofield"}) == "[0, -2]");
  CHECK(t.Run({"hget", "g", "f1"}) == "\"x\"");
  CHECK(t.Run({"hexpire", "g", "0", "FIELDS", "1", "f1"}) == "[2]");
  CHECK(t.Run({"exists", "g"}) == "0");  // the last field went, so did the key
  CHECK(t.server().DbSize(0) == 1);
  CHECK(t.Run({"hset", "g", "a", "1", "b", "2"}) == "2");
  CHECK(t.Run({"hpexpireat", "g", "0", "FIELDS", "1", "a"}) == "[2]");
  CHECK(t.Run({"hexpireat", "g", Ms(kNowMs / 1000 + 60), "FIELDS", "1", "b"}) == "[1]");
  CHECK(t.Run({"hpexpireat", "g", Ms(kNowMs + 5000), "FIELDS", "1", "b"}) == "[1]");
  CHECK(t.Run({"hpexpire", "g", "1500", "FIELDS", "1", "b"}) == "[1]");
  CHECK(t.Run({"hpexpiretime", "g", "FIELDS", "1", "b"}) == "[" + Ms(kNowMs + 1500) + "]");
  CHECK(t.Run({"hexpiretime", "g", "FIELDS", "1", "b"}) ==
        "[" + Ms((kNowMs + 1500 + 500) / 1000) + "]");
  CHECK(t.Run({"httl", "g", "FIELDS", "1", "b"}) == "[2]");  // (1500 + 500) / 1000

  const std::string numfields =
      "(error) ERR numfields should be greater than 0 and match the provided number of fields";
  CHECK(t.Run({"hexpire", "h", "10", "FIELDS", "0"}) ==
        "(error) ERR wrong number of arguments for 'hexpire' command");
  CHECK(t.Run({"hexpire", "h", "10", "FIELDS", "0", "f1"}) == numfields);
  CHECK(t.Run({"hexpire", "h", "10", "FIELDS", "2", "f1"}) == numfields);
  CHECK(t.Run({"hexpire", "h", "10", "FIELDX", "1", "f1"}) == numfields);
  CHECK(t.Run({"hexpire", "h", "10", "FIELDS", "x", "f1"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"hexpire", "h", "x", "FIELDS", "1", "f1"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"hexpire", "h", "-1", "FIELDS", "1", "f1"}) ==
        "(error) ERR invalid expire time in 'hexpire' command");
  CHECK(t.Run({"hpexpireat", "h", "-1", "FIELDS", "1", "f1"}) ==
        "(error) ERR invalid expire time in 'hpexpireat' command");
  CHECK(t.Run({"hexpire", "h", "9223372036854775", "FIELDS", "1", "f1"}) ==
        "(error) ERR invalid expire time in 'hexpire' command");
  CHECK(t.Run({"hexpire", "h", "10", "BOGUS", "FIELDS", "1", "f1"}) ==
        "(error) ERR Unsupported option BOGUS");
  CHECK(t.Run({"hexpire", "h", "10", "NX", "XX", "FIELDS", "1", "f1"}) ==
        "(error) ERR NX and XX, GT or LT options at the same time are not compatible");
  CHECK(t.Run({"hexpire", "h", "10", "GT", "LT", "FIELDS", "1", "f1"}) ==
        "(error) ERR GT and LT options at the same time are not compatible");
}

TEST_CASE("hash TTL: HTTL family and HPERSIST", "[hash]") {
  TestServer t;
  CHECK(t.Run({"hset", "h", "a", "1", "b", "2"}) == "2");
  CHECK(t.Run({"httl", "h", "FIELDS", "3", "a", "b", "zz"}) == "[-1, -1, -2]");
  CHECK(t.Run({"httl", "nokey", "FIELDS", "1", "a"}) == "[-2]");
  CHECK(t.Run({"hpersist", "h", "FIELDS", "2", "a", "zz"}) == "[-1, -2]");
  CHECK(t.Run({"hpexpire", "h", "2000", "FIELDS", "1", "a"}) == "[1]");
  CHECK(t.Run({"hpersist", "h", "FIELDS", "2", "a", "b"}) == "[1, -1]");
  CHECK(t.Run({"httl", "h", "FIELDS", "1", "a"}) == "[-1]");
  CHECK(t.Run({"httl", "h", "FIELDS", "2", "a"}) == "(error) ERR syntax error");
  CHECK(t.Run({"httl", "h", "FIELDS", "0", "a"}) == "(error) ERR syntax error");
  CHECK(t.Run({"httl", "h", "NOTFIELDS", "1", "a"}) == "[-1]");  // argv[2] is not checked
  CHECK(t.Run({"httl", "h", "FIELDS", "x", "a"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"hpersist", "h", "FIELDS", "2", "a"}) ==
        "(error) ERR numfields should be greater than 0 and match the provided number of fields");
  CHECK(t.Run({"httl", "h", "FIELDS", "1"}) ==
        "(error) ERR wrong number of arguments for 'httl' command");
}

TEST_CASE("hash TTL: HSETEX options, FNX/FXX, KEEPTTL, past times, errors", "[hash]") {
  TestServer t;
  CHECK(t.Run({"hsetex", "h", "FXX", "FIELDS", "1", "a", "1"}) == "0");
  CHECK(t.Run({"exists", "h"}) == "0");  // FXX on a missing key creates nothing
  CHECK(t.Run({"hsetex", "h", "FNX", "EX", "100", "FIELDS", "2", "a", "1", "b", "2"}) == "1");
  CHECK(t.Run({"httl", "h", "FIELDS", "2", "a", "b"}) == "[100, 100]");
  CHECK(t.Run({"hsetex", "h", "FNX", "FIELDS", "2", "a", "9", "c", "3"}) == "0");
  CHECK(t.Run({"hget", "h", "c"}) == "(nil)");  // nothing changed
  CHECK(t.Run({"hsetex", "h", "FXX", "KEEPTTL", "FIELDS", "1", "a", "5"}) == "1");
  CHECK(t.Run({"hget", "h", "a"}) == "\"5\"");
  CHECK(t.Run({"httl", "h", "FIELDS", "1", "a"}) == "[100]");
  CHECK(t.Run({"hsetex", "h", "FIELDS", "1", "a", "6"}) == "1");  // a plain set clears the TTL
  CHECK(t.Run({"httl", "h", "FIELDS", "1", "a"}) == "[-1]");
  CHECK(t.Run({"hsetex", "h", "PX", "1500", "FIELDS", "1", "a", "7"}) == "1");
  CHECK(t.Run({"hpttl", "h", "FIELDS", "1", "a"}) == "[1500]");
  CHECK(t.Run({"hsetex", "h", "PXAT", Ms(kNowMs + 9000), "FIELDS", "1", "a", "8"}) == "1");
  CHECK(t.Run({"hpexpiretime", "h", "FIELDS", "1", "a"}) == "[" + Ms(kNowMs + 9000) + "]");
  CHECK(t.Run({"hsetex", "h", "EXAT", Ms(kNowMs / 1000 + 20), "FIELDS", "1", "a", "8"}) == "1");
  CHECK(t.Run({"hexpiretime", "h", "FIELDS", "1", "a"}) == "[" + Ms(kNowMs / 1000 + 20) + "]");
  CHECK(t.Run({"hset", "h", "a", "x"}) == "0");  // HSET clears the TTL too
  CHECK(t.Run({"httl", "h", "FIELDS", "1", "a"}) == "[-1]");
  CHECK(t.Run({"hexpire", "h", "100", "FIELDS", "1", "a"}) == "[1]");
  CHECK(t.Run({"hincrby", "h", "n", "1"}) == "1");
  CHECK(t.Run({"hexpire", "h", "100", "FIELDS", "1", "n"}) == "[1]");
  CHECK(t.Run({"hincrby", "h", "n", "1"}) == "2");  // HINCRBY keeps the TTL
  CHECK(t.Run({"httl", "h", "FIELDS", "1", "n"}) == "[100]");
  CHECK(t.Run({"hincrbyfloat", "h", "n", "0.5"}) == "\"2.5\"");
  CHECK(t.Run({"httl", "h", "FIELDS", "1", "n"}) == "[100]");
  // EX 0 is accepted and deletes the fields.
  CHECK(t.Run({"hsetex", "h", "EX", "0", "FIELDS", "2", "a", "1", "zz", "2"}) == "1");
  CHECK(t.Run({"hexists", "h", "a"}) == "0");
  CHECK(t.Run({"hexists", "h", "zz"}) == "0");
  CHECK(t.Run({"hsetex", "gone", "PXAT", "1", "FIELDS", "1", "a", "1"}) == "1");
  CHECK(t.Run({"exists", "gone"}) == "0");

  const std::string numfields =
      "(error) ERR numfields should be greater than 0 and match the provided number of fields";
  CHECK(t.Run({"hsetex", "h", "FIELDS", "1", "a"}) ==
        "(error) ERR wrong number of arguments for 'hsetex' command");
  CHECK(t.Run({"hsetex", "h", "FIELDS", "2", "a", "1"}) == numfields);
  CHECK(t.Run({"hsetex", "h", "FIELDS", "1", "a", "1", "b"}) == numfields);
  CHECK(t.Run({"hsetex", "h", "FIELDS", "0", "a", "1"}) == numfields);
  CHECK(t.Run({"hsetex", "h", "FIELDS", "-1", "a", "1"}) == numfields);
  CHECK(t.Run({"hsetex", "h", "EX", "10", "a", "1"}) == numfields);  // no FIELDS
  CHECK(t.Run({"hsetex", "h", "FIELDS", "x", "a", "1"}) ==
        "(error) ERR value is not an integer or out of range");
  for (const std::vector<std::string>& options :
       std::vector<std::vector<std::string>>{{"FNX", "FXX"},
                                             {"EX", "10", "PX", "10"},
                                             {"EX", "10", "KEEPTTL"},
                                             {"KEEPTTL", "PX", "10"},
                                             {"NX"},
                                             {"XX"},
                                             {"PERSIST"},
                                             {"EX"},
                                             {"BOGUS"}}) {
    std::vector<std::string> command = {"hsetex", "h"};
    command.insert(command.end(), options.begin(), options.end());
    command.insert(command.end(), {"FIELDS", "1", "a", "1"});
    CAPTURE(options);
    CHECK(t.Run(command) == "(error) ERR syntax error");
  }
  CHECK(t.Run({"hsetex", "h", "EX", "-1", "FIELDS", "1", "a", "1"}) ==
        "(error) ERR invalid expire time in 'hsetex' command");
  CHECK(t.Run({"hsetex", "h", "EX", "x", "FIELDS", "1", "a", "1"}) ==
        "(error) ERR value is not an integer or out of range");
}

TEST_CASE("hash TTL: HGETEX reads before it changes, PERSIST, past times, errors", "[hash]") {
  TestServer t;
  CHECK(t.Run({"hgetex", "nokey", "EX", "10", "FIELDS", "2", "a", "b"}) == "[(nil), (nil)]");
  CHECK(t.Run({"exists", "nokey"}) == "0");
  CHECK(t.Run({"hset", "h", "a", "1", "b", "2", "c", "3"}) == "3");
  CHECK(t.Run({"hgetex", "h", "FIELDS", "2", "a", "zz"}) == "[\"1\", (nil)]");
  CHECK(t.Run({"hgetex", "h", "EX", "100", "FIELDS", "2", "a", "zz"}) == "[\"1\", (nil)]");
  CHECK(t.Run({"httl", "h", "FIELDS", "2", "a", "zz"}) == "[100, -2]");
  CHECK(t.Run({"hgetex", "h", "PX", "500", "FIELDS", "1", "b"}) == "[\"2\"]");
  CHECK(t.Run({"hpttl", "h", "FIELDS", "1", "b"}) == "[500]");
  CHECK(t.Run({"hgetex", "h", "PERSIST", "FIELDS", "2", "a", "c"}) == "[\"1\", \"3\"]");
  CHECK(t.Run({"httl", "h", "FIELDS", "2", "a", "c"}) == "[-1, -1]");
  CHECK(t.Run({"hgetex", "h", "PXAT", Ms(kNowMs - 1), "FIELDS", "1", "b"}) == "[\"2\"]");
  CHECK(t.Run({"hexists", "h", "b"}) == "0");
  CHECK(t.Run({"hgetex", "h", "EXAT", "1", "FIELDS", "2", "a", "c"}) == "[\"1\", \"3\"]");
  CHECK(t.Run({"exists", "h"}) == "0");

  const std::string numfields =
      "(error) ERR numfields should be greater than 0 and match the provided number of fields";
  CHECK(t.Run({"hgetex", "h", "FIELDS", "2", "a"}) == numfields);
  CHECK(t.Run({"hgetex", "h", "FIELDS", "0", "a"}) == numfields);
  CHECK(t.Run({"hgetex", "h", "EX", "10", "a"}) == numfields);
  CHECK(t.Run({"hgetex", "h", "EX", "10", "PERSIST", "FIELDS", "1", "a"}) ==
        "(error) ERR syntax error");
  CHECK(t.Run({"hgetex", "h", "KEEPTTL", "FIELDS", "1", "a"}) == "(error) ERR syntax error");
  CHECK(t.Run({"hgetex", "h", "FNX", "FIELDS", "1", "a"}) == "(error) ERR syntax error");
  CHECK(t.Run({"hgetex", "h", "EX", "-5", "FIELDS", "1", "a"}) ==
        "(error) ERR invalid expire time in 'hgetex' command");
}

TEST_CASE("hash TTL: expired fields hidden from reads, HLEN counts them, cron reclaims", "[hash]") {
  TestServer t;
  for (int i = 0; i < 30; ++i) {
    REQUIRE(t.Run({"hset", "h", "f" + std::to_string(i), "v"}) == "1");
  }
  for (int i = 0; i < 10; ++i) {
    REQUIRE(t.Run({"hpexpire", "h", "100", "FIELDS", "1", "f" + std::to_string(i)}) == "[1]");
  }
  t.clock().now_us += 200'000;
  CHECK(t.Run({"hlen", "h"}) == "30");
  CHECK(t.Run({"httl", "h", "FIELDS", "2", "f0", "f10"}) == "[-2, -1]");
  CHECK(t.Run({"hget", "h", "f0"}) == "(nil)");
  CHECK(t.Run({"hexists", "h", "f0"}) == "0");
  CHECK(t.Run({"hstrlen", "h", "f0"}) == "0");
  CHECK(t.Run({"hmget", "h", "f0", "f10"}) == "[(nil), \"v\"]");
  CHECK(t.RunValue({"hkeys", "h"}).elements.size() == 20);
  CHECK(t.RunValue({"hvals", "h"}).elements.size() == 20);
  CHECK(t.RunValue({"hgetall", "h"}).elements.size() == 40);
  CHECK(t.RunValue({"hrandfield", "h", "-100"}).elements.size() == 100);
  for (const RespValue& field : t.RunValue({"hrandfield", "h", "100"}).elements) {
    CHECK(field.text.size() == 3);  // f10..f29 only
  }
  CHECK(t.RunValue({"hscan", "h", "0", "COUNT", "1000"}).elements[1].elements.size() == 40);
  CHECK(t.Run({"hexpire", "h", "10", "FIELDS", "1", "f0"}) == "[-2]");
  CHECK(t.Run({"hpersist", "h", "FIELDS", "1", "f0"}) == "[-2]");
  const uint64_t before = t.server().keyspace().stats().expired_fields;
  t.server().Cron();
  CHECK(t.server().keyspace().stats().expired_fields == before + 10);
  CHECK(t.server().stats().expired_fields == before + 10);
  CHECK(t.Run({"hlen", "h"}) == "20");

  // A write reclaims first; overwriting an expired field counts as an insert.
  CHECK(t.Run({"hpexpire", "h", "100", "FIELDS", "1", "f10"}) == "[1]");
  t.clock().now_us += 200'000;
  CHECK(t.Run({"hset", "h", "f10", "new"}) == "1");
  CHECK(t.Run({"httl", "h", "FIELDS", "1", "f10"}) == "[-1]");

  // When every field expired, the key is gone for readers, and the cycle deletes it.
  CHECK(t.Run({"hset", "k", "a", "1"}) == "1");
  CHECK(t.Run({"hpexpire", "k", "100", "FIELDS", "1", "a"}) == "[1]");
  t.clock().now_us += 200'000;
  CHECK(t.Run({"exists", "k"}) == "0");
  t.server().Cron();
  CHECK(t.Run({"hlen", "k"}) == "0");
}

using Sink = testing::OpCollector;
using Region = testing::Region;

TEST_CASE("hash: a replica fed the shipped ops reads the same", "[hash]") {
  TestServer a;
  TestServer b;
  Sink sink;
  a.server().keyspace().AddObserver(&sink);
  const std::vector<std::vector<std::string>> writes = {
      {"hset", "h", "a", "1", "b", "2", "c", "3"},
      {"hincrby", "h", "n", "5"},
      {"hincrby", "h", "n", "-9"},
      {"hincrbyfloat", "h", "x", "1.25"},
      {"hsetnx", "h", "d", "4"},
      {"hdel", "h", "b"},
      {"hexpire", "h", "100", "FIELDS", "2", "a", "c"},
      {"hpersist", "h", "FIELDS", "1", "c"},
      {"hsetex", "h", "PX", "5000", "FIELDS", "2", "e", "5", "f", "6"},
      {"hsetex", "h", "KEEPTTL", "FIELDS", "1", "e", "55"},
      {"hgetex", "h", "EX", "50", "FIELDS", "1", "d"},
      {"hexpire", "h", "0", "FIELDS", "1", "f"},
      {"hset", "g", "only", "1"},
      {"hdel", "g", "only"},
      {"hset", "t", "a", "1"},
      {"hpexpire", "t", "10", "FIELDS", "1", "a"},
  };
  for (const auto& write : writes) {
    CAPTURE(write);
    CHECK(a.Run(write).find("error") == std::string::npos);
  }
  a.clock().now_us += 50'000;
  a.server().Cron();  // reclaims t.a: an HDEL op shipped like any other
  b.clock().now_us = a.clock().now_us;
  sink.DeliverTo(b.server().keyspace());
  for (const std::string key : {"h", "g", "t"}) {
    CAPTURE(key);
    CHECK(a.Run({"hgetall", key}) == b.Run({"hgetall", key}));
    CHECK(a.Run({"hlen", key}) == b.Run({"hlen", key}));
    CHECK(a.Run({"hpttl", key, "FIELDS", "6", "a", "c", "d", "e", "n", "x"}) ==
          b.Run({"hpttl", key, "FIELDS", "6", "a", "c", "d", "e", "n", "x"}));
  }
  CHECK(b.Run({"hget", "h", "e"}) == "\"55\"");
  CHECK(b.Run({"hget", "h", "n"}) == "\"-4\"");
  CHECK(b.Run({"exists", "g"}) == "0");
  CHECK(b.server().keyspace().Size(0) == a.server().keyspace().Size(0));
}

TEST_CASE("hash: concurrent HINCRBY in two regions adds up; HSET vs HDEL: add wins", "[hash]") {
  Region a(1);
  Region b(2);
  Sink to_b;
  Sink to_a;
  a.server().keyspace().AddObserver(&to_b);
  b.server().keyspace().AddObserver(&to_a);
  CHECK(a.Run({"hset", "h", "f", "x", "n", "10"}) == "2");
  to_b.DeliverTo(b.server().keyspace());
  CHECK(a.Run({"hincrby", "h", "n", "1"}) == "11");
  CHECK(b.Run({"hincrby", "h", "n", "2"}) == "12");
  CHECK(a.Run({"hdel", "h", "f"}) == "1");
  CHECK(b.Run({"hset", "h", "f", "y"}) == "0");
  to_b.DeliverTo(b.server().keyspace());
  to_a.DeliverTo(a.server().keyspace());
  CHECK(a.Run({"hget", "h", "n"}) == "\"13\"");
  CHECK(a.Run({"hgetall", "h"}) == b.Run({"hgetall", "h"}));
  CHECK(a.Run({"hget", "h", "f"}) == "\"y\"");
}

}  // namespace
}  // namespace lattice::server
