// Generic keyspace commands through the real Server (no socket). Values are created through the
// Keyspace API directly, so these tests do not depend on the other families' commands.

#include <algorithm>
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "server/server_test_util.h"

namespace lattice::server {
namespace {

using testing::TestServer;

Config DebugConfig() {
  Config config;
  const std::string_view args[] = {"--enable-debug-command", "yes"};
  REQUIRE(config.ApplyArgs(args).ok());
  return config;
}

template <typename Mutate>
void Write(TestServer& t, int db, const std::string& key, const Mutate& mutate) {
  Keyspace& ks = t.server().keyspace();
  const int64_t now = t.clock().NowMs();
  crdt::Key& value = ks.Open(db, key, now);
  Result<crdt::KeyOp> op = mutate(value, ks.BeginWrite(now), ks.context());
  REQUIRE(op.ok());
  ks.Commit(db, key, std::move(*op));
}

void PutString(TestServer& t, const std::string& key, const std::string& value, int db = 0) {
  Write(t, db, key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.Set(value, false, std::nullopt, w, c);
  });
}

void PutHash(TestServer& t, const std::string& key,
             const std::vector<std::pair<std::string, std::string>>& fields, int db = 0) {
  for (const auto& [field, value] : fields) {
    Write(t, db, key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
      return k.HSet(field, value, false, w, c);
    });
  }
}

void PutSet(TestServer& t, const std::string& key, const std::vector<std::string>& members,
            int db = 0) {
  Write(t, db, key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.SAdd(members, w, c);
  });
}

void PutZSet(TestServer& t, const std::string& key,
             const std::vector<std::pair<std::string, double>>& members, int db = 0) {
  for (const auto& [member, score] : members) {
    Write(t, db, key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
      return k.ZAdd(member, score, w, c);
    });
  }
}

void FieldTtl(TestServer& t, const std::string& key, const std::string& field, int64_t at_ms) {
  Write(t, 0, key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.HExpire(field, at_ms, w, c);
  });
}

std::string Visible(TestServer& t, const std::string& key, int db = 0) {
  KeyRef found = t.server().keyspace().Find(db, key, t.clock().NowMs());
  if (found == nullptr) {
    return "(none)";
  }
  const VisibleValue v = ReadVisible(*found, t.clock().NowMs());
  std::string out = std::to_string(static_cast<int>(v.type)) + ":" + v.string;
  for (const auto& e : v.hash) {
    out += "|" + e.field + "=" + e.value + "@" + std::to_string(e.ttl_at_ms);
  }
  for (const auto& m : v.set) {
    out += "|" + m;
  }
  for (const auto& [m, s] : v.zset) {
    out += "|" + m + "=" + std::to_string(s);
  }
  out += " ttl=" + std::to_string(v.expiry_ms.value_or(-1));
  return out;
}

std::string Now(TestServer& t, int64_t plus_ms = 0) {
  return std::to_string(t.clock().NowMs() + plus_ms);
}

TEST_CASE("DEL, UNLINK, EXISTS, TOUCH and TYPE", "[generic]") {
  TestServer t;
  PutString(t, "s", "v");
  PutHash(t, "h", {{"f", "v"}});
  PutSet(t, "set", {"a"});
  PutZSet(t, "z", {{"m", 1}});
  CHECK(t.Run({"type", "s"}) == "string");
  CHECK(t.Run({"type", "h"}) == "hash");
  CHECK(t.Run({"type", "set"}) == "set");
  CHECK(t.Run({"type", "z"}) == "zset");
  CHECK(t.Run({"type", "nokey"}) == "none");
  CHECK(t.Run({"exists", "s", "s", "nokey", "h"}) == "3");
  CHECK(t.Run({"touch", "s", "s", "nokey"}) == "2");
  CHECK(t.Run({"del", "s", "s", "nokey", "h"}) == "2");
  CHECK(t.Run({"unlink", "set", "z", "z"}) == "2");
  CHECK(t.Run({"exists", "s", "h", "set", "z"}) == "0");
  CHECK(t.Run({"del"}) == "(error) ERR wrong number of arguments for 'del' command");
  CHECK(t.Run({"type"}) == "(error) ERR wrong number of arguments for 'type' command");
  CHECK(t.server().DbSize(0) == 0);
}

TEST_CASE("expired keys are invisible to every generic read", "[generic]") {
  TestServer t;
  PutString(t, "k", "v");
  CHECK(t.Run({"pexpire", "k", "100"}) == "1");
  t.clock().now_us += 200'000;
  CHECK(t.Run({"exists", "k"}) == "0");
  CHECK(t.Run({"type", "k"}) == "none");
  CHECK(t.Run({"ttl", "k"}) == "-2");
  CHECK(t.Run({"keys", "*"}) == "[]");
  CHECK(t.Run({"scan", "0"}) == "[\"0\", []]");
  CHECK(t.Run({"randomkey"}) == "(nil)");
  CHECK(t.Run({"del", "k"}) == "0");
}

TEST_CASE("RENAME and RENAMENX", "[generic]") {
  TestServer t;
  CHECK(t.Run({"rename", "a", "b"}) == "(error) ERR no such key");
  CHECK(t.Run({"renamenx", "a", "b"}) == "(error) ERR no such key");
  CHECK(t.Run({"rename", "a", "a"}) == "(error) ERR no such key");
  PutString(t, "a", "1");
  CHECK(t.Run({"rename", "a", "a"}) == "OK");
  CHECK(t.Run({"renamenx", "a", "a"}) == "0");
  CHECK(t.Run({"expire", "a", "100"}) == "1");
  CHECK(t.Run({"rename", "a", "b"}) == "OK");
  CHECK(t.Run({"exists", "a"}) == "0");
  CHECK(t.Run({"ttl", "b"}) == "100");
  CHECK(t.server().keyspace().Find(0, "b", t.clock().NowMs())->GetString(t.clock().NowMs()) == "1");
  PutHash(t, "h", {{"f", "v"}, {"g", "w"}});
  FieldTtl(t, "h", "g", t.clock().NowMs() + 5000);
  CHECK(t.Run({"renamenx", "h", "b"}) == "0");
  CHECK(t.Run({"rename", "h", "b"}) == "OK");  // overwrites the string
  CHECK(Visible(t, "b") == "2:|f=v@0|g=w@" + Now(t, 5000) + " ttl=-1");
  CHECK(t.Run({"renamenx", "b", "c"}) == "1");
  CHECK(t.Run({"type", "c"}) == "hash");
  CHECK(t.Run({"exists", "b", "h"}) == "0");
}

TEST_CASE("COPY with DB and REPLACE", "[generic]") {
  TestServer t;
  PutZSet(t, "z", {{"a", 1.5}, {"b", -2}});
  CHECK(t.Run({"pexpire", "z", "5000"}) == "1");
  CHECK(t.Run({"copy", "z", "z"}) == "(error) ERR source and destination objects are the same");
  CHECK(t.Run({"copy", "z", "z", "db", "0"}) ==
        "(error) ERR source and destination objects are the same");
  CHECK(t.Run({"copy", "nokey", "x"}) == "0");
  CHECK(t.Run({"copy", "z", "y"}) == "1");
  CHECK(Visible(t, "y") == Visible(t, "z"));
  CHECK(t.Run({"pttl", "y"}) == "5000");
  CHECK(t.Run({"copy", "z", "y"}) == "0");
  PutSet(t, "s", {"1", "2"});
  CHECK(t.Run({"copy", "s", "y", "replace"}) == "1");
  CHECK(t.Run({"type", "y"}) == "set");
  CHECK(t.Run({"ttl", "y"}) == "-1");
  CHECK(t.Run({"copy", "s", "s", "db", "3"}) == "1");
  CHECK(Visible(t, "s", 3) == Visible(t, "s", 0));
  CHECK(t.Run({"copy", "s", "s", "db", "3"}) == "0");
  CHECK(t.Run({"copy", "s", "s", "DB", "3", "REPLACE"}) == "1");
  CHECK(t.Run({"copy", "s", "t", "db", "16"}) == "(error) ERR DB index is out of range");
  CHECK(t.Run({"copy", "s", "t", "db", "-1"}) == "(error) ERR DB index is out of range");
  CHECK(t.Run({"copy", "s", "t", "db", "x"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"copy", "s", "t", "db", "99999999999"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"copy", "s", "t", "db"}) == "(error) ERR syntax error");
  CHECK(t.Run({"copy", "s", "t", "foo"}) == "(error) ERR syntax error");
  CHECK(t.Run({"copy", "s"}) == "(error) ERR wrong number of arguments for 'copy' command");
}

TEST_CASE("MOVE", "[generic]") {
  TestServer t;
  PutString(t, "k", "v");
  CHECK(t.Run({"move", "k", "0"}) == "(error) ERR source and destination objects are the same");
  CHECK(t.Run({"move", "k", "16"}) == "(error) ERR DB index is out of range");
  CHECK(t.Run({"move", "k", "x"}) == "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"move", "nokey", "1"}) == "0");
  PutString(t, "k", "other", 1);
  CHECK(t.Run({"move", "k", "1"}) == "0");
  CHECK(t.Run({"expire", "k", "50"}) == "1");
  CHECK(t.Run({"move", "k", "2"}) == "1");
  CHECK(t.Run({"exists", "k"}) == "0");
  CHECK(Visible(t, "k", 2) == "1:v ttl=" + Now(t, 50'000));
}

TEST_CASE("RANDOMKEY and SWAPDB", "[generic]") {
  TestServer t;
  CHECK(t.Run({"randomkey"}) == "(nil)");
  PutString(t, "", "empty name");
  CHECK(t.Run({"randomkey"}) == "\"\"");
  PutString(t, "only", "x", 1);
  CHECK(t.Run({"swapdb", "0", "1"}) == "OK");
  CHECK(t.Run({"randomkey"}) == "\"only\"");
  CHECK(t.Run({"swapdb", "0", "16"}) == "(error) ERR DB index is out of range");
  CHECK(t.Run({"swapdb", "x", "1"}) == "(error) ERR invalid first DB index");
  CHECK(t.Run({"swapdb", "0", "1.5"}) == "(error) ERR invalid second DB index");
  CHECK(t.Run({"swapdb", "-1", "0"}) == "(error) ERR DB index is out of range");
  CHECK(t.Run({"swapdb", "3", "3"}) == "OK");
  std::set<std::string> seen;
  PutString(t, "a", "1");
  PutString(t, "b", "1");
  for (int i = 0; i < 200; ++i) {
    seen.insert(t.Run({"randomkey"}));
  }
  CHECK(seen == std::set<std::string>{"\"a\"", "\"b\"", "\"only\""});
}

TEST_CASE("KEYS", "[generic]") {
  TestServer t;
  PutString(t, "", "x");
  PutString(t, "hello", "x");
  PutString(t, "hallo", "x");
  PutString(t, "other", "x");
  auto sorted = [&](const std::string& pattern) {
    RespValue v = t.RunValue({"keys", pattern});
    std::vector<std::string> out;
    for (const auto& e : v.elements) {
      out.push_back(e.text);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  CHECK(sorted("*") == std::vector<std::string>{"", "hallo", "hello", "other"});
  CHECK(sorted("h?llo") == std::vector<std::string>{"hallo", "hello"});
  CHECK(sorted("h[a]*") == std::vector<std::string>{"hallo"});
  CHECK(sorted("**") == std::vector<std::string>{"hallo", "hello", "other"});
  CHECK(sorted("a*a*a*a*a*a*a*a*a*a*a*b").empty());
}

TEST_CASE("SCAN options and errors", "[generic]") {
  TestServer t;
  for (int i = 0; i < 50; ++i) {
    PutString(t, "key:" + std::to_string(i), "v");
  }
  PutHash(t, "hash", {{"f", "v"}});
  CHECK(t.Run({"scan", "x"}) == "(error) ERR invalid cursor");
  CHECK(t.Run({"scan", "-1"}) == "(error) ERR invalid cursor");
  CHECK(t.Run({"scan", "1.5"}) == "(error) ERR invalid cursor");
  CHECK(t.Run({"scan", "99999999999999999999999"}) == "(error) ERR invalid cursor");
  CHECK(t.Run({"scan", "0", "count", "0"}) == "(error) ERR syntax error");
  CHECK(t.Run({"scan", "0", "count", "-3"}) == "(error) ERR syntax error");
  CHECK(t.Run({"scan", "0", "count", "x"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"scan", "0", "count"}) == "(error) ERR syntax error");
  CHECK(t.Run({"scan", "0", "foo", "bar"}) == "(error) ERR syntax error");
  CHECK(t.Run({"scan", "0", "type", "bogus"}) == "(error) ERR unknown type name 'bogus'");
  CHECK(t.Run({"scan", "0", "type", "list", "count", "1000"}) == "[\"0\", []]");
  CHECK(t.Run({"scan", "0", "type", "HASH", "count", "1000"}) == "[\"0\", [\"hash\"]]");
  CHECK(t.Run({"scan", "0", "match", "key:1?", "type", "string", "count", "1000"}).size() > 0);
  // A full iteration with a small COUNT returns every key once (no concurrent changes here).
  std::multiset<std::string> seen;
  std::string cursor = "0";
  int calls = 0;
  do {
    RespValue reply = t.RunValue({"scan", cursor, "count", "7", "match", "key:*"});
    REQUIRE(reply.elements.size() == 2);
    cursor = reply.elements[0].text;
    for (const auto& key : reply.elements[1].elements) {
      seen.insert(key.text);
    }
    ++calls;
  } while (cursor != "0" && calls < 1000);
  CHECK(seen.size() == 50);
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 50);
  CHECK(calls > 1);
  // Cursors with leading spaces or a '+' follow strtoull, as Valkey's string2ull.
  CHECK(t.RunValue({"scan", "+0", "count", "1000"}).elements[1].elements.size() == 51);
  CHECK(t.RunValue({"scan", "18446744073709551615"}).elements[0].text == "0");
}

TEST_CASE("EXPIRE family options and errors", "[generic]") {
  TestServer t;
  CHECK(t.Run({"expire", "nokey", "10"}) == "0");
  PutString(t, "k", "v");
  CHECK(t.Run({"expire", "k", "10", "nx", "xx"}) ==
        "(error) ERR NX and XX, GT or LT options at the same time are not compatible");
  CHECK(t.Run({"expire", "k", "10", "nx", "gt"}) ==
        "(error) ERR NX and XX, GT or LT options at the same time are not compatible");
  CHECK(t.Run({"expire", "k", "10", "gt", "lt"}) ==
        "(error) ERR GT and LT options at the same time are not compatible");
  CHECK(t.Run({"expire", "k", "10", "foo"}) == "(error) ERR Unsupported option foo");
  CHECK(t.Run({"expire", "k", "ten"}) == "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"expire", "k", "ten", "bar"}) == "(error) ERR Unsupported option bar");
  CHECK(t.Run({"expire", "k", "9223372036854775807"}) ==
        "(error) ERR invalid expire time in 'expire' command");
  CHECK(t.Run({"pexpire", "k", "9223372036854775807"}) ==
        "(error) ERR invalid expire time in 'pexpire' command");
  CHECK(t.Run({"expireat", "k", "9223372036854776"}) ==
        "(error) ERR invalid expire time in 'expireat' command");
  CHECK(t.Run({"expireat", "k", "-9223372036854776"}) ==
        "(error) ERR invalid expire time in 'expireat' command");
  CHECK(t.Run({"pexpireat", "k", "9223372036854775807"}) == "1");  // far future is fine
  CHECK(t.Run({"pexpiretime", "k"}) == "9223372036854775807");
  CHECK(t.Run({"expiretime", "k"}) == "9223372036854776");
  CHECK(t.Run({"persist", "k"}) == "1");
  // NX / XX / GT / LT. No TTL counts as infinite.
  CHECK(t.Run({"expire", "k", "100", "xx"}) == "0");
  CHECK(t.Run({"expire", "k", "100", "gt"}) == "0");
  CHECK(t.Run({"expire", "k", "100", "lt"}) == "1");
  CHECK(t.Run({"expire", "k", "50", "nx"}) == "0");
  CHECK(t.Run({"expire", "k", "200", "XX", "GT"}) == "1");
  CHECK(t.Run({"expire", "k", "150", "gt"}) == "0");
  CHECK(t.Run({"expire", "k", "250", "lt"}) == "0");
  CHECK(t.Run({"expire", "k", "150", "lt"}) == "1");
  CHECK(t.Run({"ttl", "k"}) == "150");
  CHECK(t.Run({"expireat", "k", std::to_string(t.clock().NowMs() / 1000 + 1000)}) == "1");
  CHECK(t.Run({"pexpireat", "k", Now(t, 777)}) == "1");
  CHECK(t.Run({"pttl", "k"}) == "777");
  // A condition that fails keeps the key even with a past time; a past time deletes it.
  CHECK(t.Run({"expire", "k", "-1", "gt"}) == "0");
  CHECK(t.Run({"exists", "k"}) == "1");
  CHECK(t.Run({"expire", "k", "-1"}) == "1");
  CHECK(t.Run({"exists", "k"}) == "0");
  PutString(t, "k", "v");
  CHECK(t.Run({"pexpire", "k", "0"}) == "1");
  CHECK(t.Run({"exists", "k"}) == "0");
  PutString(t, "k", "v");
  CHECK(t.Run({"expireat", "k", "1"}) == "1");
  CHECK(t.Run({"exists", "k"}) == "0");
  CHECK(t.Run({"expire", "k"}) == "(error) ERR wrong number of arguments for 'expire' command");
}

TEST_CASE("TTL, PTTL, EXPIRETIME, PEXPIRETIME and PERSIST", "[generic]") {
  TestServer t;
  for (const char* cmd : {"ttl", "pttl", "expiretime", "pexpiretime"}) {
    CHECK(t.Run({cmd, "nokey"}) == "-2");
  }
  PutString(t, "k", "v");
  for (const char* cmd : {"ttl", "pttl", "expiretime", "pexpiretime"}) {
    CHECK(t.Run({cmd, "k"}) == "-1");
  }
  CHECK(t.Run({"persist", "k"}) == "0");
  CHECK(t.Run({"persist", "nokey"}) == "0");
  CHECK(t.Run({"pexpire", "k", "1499"}) == "1");
  CHECK(t.Run({"ttl", "k"}) == "1");  // (ms + 500) / 1000
  CHECK(t.Run({"pttl", "k"}) == "1499");
  CHECK(t.Run({"pexpiretime", "k"}) == Now(t, 1499));
  CHECK(t.Run({"expiretime", "k"}) == std::to_string((t.clock().NowMs() + 1499 + 500) / 1000));
  CHECK(t.Run({"pexpire", "k", "1500"}) == "1");
  CHECK(t.Run({"ttl", "k"}) == "2");
  t.clock().now_us += 1'000'000;
  CHECK(t.Run({"pttl", "k"}) == "500");
  CHECK(t.Run({"persist", "k"}) == "1");
  CHECK(t.Run({"ttl", "k"}) == "-1");
  t.clock().now_us += 10'000'000;
  CHECK(t.Run({"exists", "k"}) == "1");
}

TEST_CASE("OBJECT ENCODING follows Valkey's choices", "[generic]") {
  TestServer t;
  PutString(t, "int", "12345");
  PutString(t, "negint", "-9223372036854775808");
  PutString(t, "notint", "012");
  PutString(t, "short", std::string(44, 'x'));
  PutString(t, "long", std::string(45, 'x'));
  CHECK(t.Run({"object", "encoding", "int"}) == "\"int\"");
  CHECK(t.Run({"object", "encoding", "negint"}) == "\"int\"");
  CHECK(t.Run({"object", "encoding", "notint"}) == "\"embstr\"");
  CHECK(t.Run({"object", "encoding", "short"}) == "\"embstr\"");
  CHECK(t.Run({"object", "encoding", "long"}) == "\"raw\"");
  CHECK(t.Run({"object", "encoding", "nokey"}) == "(nil)");
  PutHash(t, "h", {{"f", "v"}});
  CHECK(t.Run({"object", "encoding", "h"}) == "\"listpack\"");
  PutHash(t, "hbig", {{"f", std::string(65, 'v')}});
  CHECK(t.Run({"object", "encoding", "hbig"}) == "\"hashtable\"");
  PutHash(t, "httl", {{"f", "v"}, {"g", "w"}});
  FieldTtl(t, "httl", "g", t.clock().NowMs() + 10'000);
  CHECK(t.Run({"object", "encoding", "httl"}) == "\"hashtable\"");
  std::vector<std::pair<std::string, std::string>> many;
  for (int i = 0; i < 513; ++i) {
    many.emplace_back("f" + std::to_string(i), "v");
  }
  PutHash(t, "hmany", many);
  CHECK(t.Run({"object", "encoding", "hmany"}) == "\"hashtable\"");
  PutSet(t, "ints", {"1", "2", "-3"});
  CHECK(t.Run({"object", "encoding", "ints"}) == "\"intset\"");
  PutSet(t, "mixed", {"1", "a"});
  CHECK(t.Run({"object", "encoding", "mixed"}) == "\"listpack\"");
  PutSet(t, "longm", {std::string(65, 'm')});
  CHECK(t.Run({"object", "encoding", "longm"}) == "\"hashtable\"");
  std::vector<std::string> members;
  for (int i = 0; i < 129; ++i) {
    members.push_back("m" + std::to_string(i));
  }
  PutSet(t, "manym", members);
  CHECK(t.Run({"object", "encoding", "manym"}) == "\"hashtable\"");
  PutZSet(t, "z", {{"a", 1}});
  CHECK(t.Run({"object", "encoding", "z"}) == "\"listpack\"");
  PutZSet(t, "zlong", {{std::string(65, 'a'), 1}});
  CHECK(t.Run({"object", "encoding", "zlong"}) == "\"skiplist\"");
  // The thresholds come from the configuration.
  CHECK(t.Run({"config", "set", "zset-max-listpack-entries", "0"}) == "OK");
  CHECK(t.Run({"object", "encoding", "z"}) == "\"skiplist\"");
}

TEST_CASE("OBJECT REFCOUNT, IDLETIME, FREQ and HELP", "[generic]") {
  TestServer t;
  PutString(t, "small", "42");
  PutString(t, "big", "100000");
  CHECK(t.Run({"object", "refcount", "small"}) == "2147483647");
  CHECK(t.Run({"object", "refcount", "big"}) == "1");
  CHECK(t.Run({"object", "refcount", "nokey"}) == "(nil)");
  CHECK(t.Run({"object", "idletime", "big"}) == "0");
  CHECK(t.Run({"object", "idletime", "nokey"}) == "(nil)");
  CHECK(t.Run({"object", "freq", "big"}).rfind("(error) ERR An LFU maxmemory policy is not", 0) ==
        0);
  CHECK(t.Run({"config", "set", "maxmemory-policy", "allkeys-lfu"}) == "OK");
  CHECK(t.Run({"object", "freq", "big"}) == "0");
  CHECK(t.Run({"object", "idletime", "big"})
            .rfind("(error) ERR An LFU maxmemory policy is selected, idle time not tracked", 0) ==
        0);
  CHECK(t.RunValue({"object", "help"}).elements.size() == 15);
  CHECK(t.Run({"object", "foo", "k"}) == "(error) ERR unknown subcommand 'foo'. Try OBJECT HELP.");
  CHECK(t.Run({"object"}) == "(error) ERR wrong number of arguments for 'object' command");
  CHECK(t.Run({"object", "encoding"}) ==
        "(error) ERR wrong number of arguments for 'object|encoding' command");
}

TEST_CASE("DEBUG is refused unless enable-debug-command allows it", "[generic]") {
  TestServer t;
  CHECK(t.Run({"debug", "digest"}).rfind("(error) ERR DEBUG command not allowed.", 0) == 0);
  CHECK(t.Run({"debug", "foo"}).rfind("(error) ERR DEBUG command not allowed.", 0) == 0);
  CHECK(t.Run({"debug"}) == "(error) ERR wrong number of arguments for 'debug' command");
  Config local;
  const std::string_view args[] = {"--enable-debug-command", "local"};
  REQUIRE(local.ApplyArgs(args).ok());
  TestServer l(std::move(local));
  CHECK(l.Run({"debug", "digest"}) == "0000000000000000000000000000000000000000");
  l.client().is_local = false;  // a peer that is not loopback
  CHECK(l.Run({"debug", "digest"}).rfind("(error) ERR DEBUG command not allowed.", 0) == 0);
}

TEST_CASE("DEBUG DIGEST matches Valkey's bytes for data without TTLs", "[generic]") {
  TestServer t(DebugConfig());
  CHECK(t.Run({"debug", "digest"}) == "0000000000000000000000000000000000000000");
  PutString(t, "a", "1");
  // Reference values from redis-server 7.0 (same algorithm as Valkey) on the same data.
  CHECK(t.Run({"debug", "digest"}) == "943d800368fb9c0e951138f1bc0e313ac769d91f");
  PutSet(t, "s", {"x", "y", "1"});
  PutHash(t, "h", {{"f", "v"}, {"g", "w"}});
  PutZSet(t, "z", {{"m", 1.5}, {"n", 2}});
  CHECK(t.Run({"debug", "digest"}) == "e2737e20417918c32d49528f56e0a066335d64c9");
  CHECK(t.Run({"debug", "digest-value", "a", "s", "h", "z", "nokey"}) ==
        "[b4fc66738120fba0b5aa500ab5c2bf89cea1c5da, 03ee76a1ebe8db27d61b3ea784011d5acc537675, "
        "d127864ed50239662bf61bafc9bda63c17da5b37, 908aeffe4e922542b456cb5c8f5b1961a763d7dd, "
        "0000000000000000000000000000000000000000]");
  CHECK(t.Run({"debug", "digest-value"}) == "[]");
  PutString(t, "k", "v", 1);
  CHECK(t.Run({"debug", "digest"}) == "962d2fd6a062bf41e09504732eafa726f255b35e");
  CHECK(t.Run({"debug", "nosuch"}) == "(error) ERR unknown subcommand 'nosuch'. Try DEBUG HELP.");
  CHECK(t.RunValue({"debug", "help"}).elements.size() == 7);
}

TEST_CASE("DEBUG DIGEST covers expiry times and ignores insertion order", "[generic]") {
  TestServer a(DebugConfig());
  TestServer b(DebugConfig());
  for (int i = 0; i < 30; ++i) {
    PutString(a, "k" + std::to_string(i), std::to_string(i));
    PutString(b, "k" + std::to_string(29 - i), std::to_string(29 - i));
  }
  CHECK(a.Run({"debug", "digest"}) == b.Run({"debug", "digest"}));
  const std::string at = Now(a, 60'000);
  CHECK(a.Run({"pexpireat", "k3", at}) == "1");
  const std::string with_ttl = a.Run({"debug", "digest"});
  CHECK(with_ttl != b.Run({"debug", "digest"}));
  CHECK(b.Run({"pexpireat", "k3", Now(b, 60'001)}) == "1");
  CHECK(with_ttl != b.Run({"debug", "digest"}));  // a different expiry time differs
  CHECK(b.Run({"pexpireat", "k3", at}) == "1");
  CHECK(with_ttl == b.Run({"debug", "digest"}));
  CHECK(a.Run({"del", "k5"}) == "1");
  CHECK(a.Run({"debug", "digest"}) != b.Run({"debug", "digest"}));
}

TEST_CASE("CLUSTER KEYSLOT", "[generic]") {
  TestServer t;
  CHECK(t.Run({"cluster", "keyslot", "somekey"}) == "11058");
  CHECK(t.Run({"cluster", "keyslot", "foo{hash_tag}"}) == "2515");
  CHECK(t.Run({"cluster", "keyslot", "bar{hash_tag}"}) == "2515");
  CHECK(t.Run({"cluster", "KEYSLOT", "123456789"}) == std::to_string(0x31C3));
  CHECK(t.Run({"cluster", "keyslot"}) ==
        "(error) ERR wrong number of arguments for 'cluster|keyslot' command");
  CHECK(t.Run({"cluster", "nosuch"}) ==
        "(error) ERR unknown subcommand 'nosuch'. Try CLUSTER HELP.");
}

TEST_CASE("generic commands are in the command table with Valkey's key specs", "[generic]") {
  TestServer t;
  CHECK(t.Run({"command", "getkeys", "rename", "a", "b"}) == "[\"a\", \"b\"]");
  CHECK(t.Run({"command", "getkeys", "del", "a", "b", "c"}) == "[\"a\", \"b\", \"c\"]");
  CHECK(t.Run({"command", "getkeys", "copy", "a", "b", "db", "1"}) == "[\"a\", \"b\"]");
  CHECK(t.Run({"command", "getkeys", "expire", "a", "10"}) == "[\"a\"]");
}

// Collects every op this replica originates, to replay on another replica.
using Sink = testing::OpCollector;

TEST_CASE("generic writes converge on a second replica", "[generic]") {
  TestServer a(DebugConfig());
  Config config_b = DebugConfig();
  TestServer b(std::move(config_b));
  Sink sink;
  a.server().keyspace().AddObserver(&sink);
  PutString(a, "s", "v");
  PutHash(a, "h", {{"f", "1"}, {"g", "2"}});
  FieldTtl(a, "h", "g", a.clock().NowMs() + 100'000);
  PutSet(a, "set", {"x", "y"});
  PutZSet(a, "z", {{"m", 3}});
  CHECK(a.Run({"expire", "s", "1000"}) == "1");
  CHECK(a.Run({"rename", "s", "s2"}) == "OK");
  CHECK(a.Run({"copy", "h", "h2"}) == "1");
  CHECK(a.Run({"copy", "set", "set", "db", "5"}) == "1");
  CHECK(a.Run({"move", "z", "2"}) == "1");
  CHECK(a.Run({"renamenx", "set", "set2"}) == "1");
  CHECK(a.Run({"persist", "s2"}) == "1");
  CHECK(a.Run({"pexpire", "h2", "5000"}) == "1");
  CHECK(a.Run({"expire", "h", "-1"}) == "1");
  CHECK(a.Run({"del", "set2"}) == "1");
  sink.DeliverTo(b.server().keyspace());
  CHECK(a.Run({"debug", "digest"}) != "0000000000000000000000000000000000000000");
  CHECK(a.Run({"debug", "digest"}) == b.Run({"debug", "digest"}));
  for (int db : {0, 2, 5}) {
    for (const char* key : {"s", "s2", "h", "h2", "set", "set2", "z"}) {
      CHECK(Visible(a, key, db) == Visible(b, key, db));
    }
  }
  CHECK(Visible(b, "h2") == "2:|f=1@0|g=2@" + Now(a, 100'000) + " ttl=" + Now(a, 5000));
}

}  // namespace
}  // namespace lattice::server
