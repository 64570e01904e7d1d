// Tests of the string family through the real command table (no socket): every command, option
// and error, expiry moved by the fake clock, and convergence of replicas fed the same ops.

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "server/server_test_util.h"

namespace lattice::server {
namespace {

using testing::FakeClock;
using testing::TestServer;

// A non-string key, written through the keyspace so that these tests need no other family.
void PutSet(TestServer& t, const std::string& key, std::vector<std::string> members) {
  Keyspace& ks = t.server().keyspace();
  const int64_t now = t.clock().NowMs();
  crdt::Key& k = ks.Open(0, key, now);
  Result<crdt::KeyOp> op = k.SAdd(members, ks.BeginWrite(now), ks.context());
  REQUIRE(op.ok());
  ks.Commit(0, key, std::move(*op));
}

std::string Pttl(TestServer& t, const std::string& key) {
  KeyRef k = t.server().keyspace().Find(0, key, t.clock().NowMs());
  if (k == nullptr) {
    return "-2";
  }
  auto at = k->ExpiryMs();
  return at ? std::to_string(*at - t.clock().NowMs()) : "-1";
}

void Advance(TestServer& t, int64_t ms) { t.clock().now_us += ms * 1000; }

TEST_CASE("GET and SET", "[string]") {
  TestServer t;
  CHECK(t.Run({"get", "k"}) == "(nil)");
  CHECK(t.Run({"set", "k", "v"}) == "OK");
  CHECK(t.Run({"get", "k"}) == "\"v\"");
  CHECK(t.Run({"set", "k", ""}) == "OK");
  CHECK(t.Run({"get", "k"}) == "\"\"");
  CHECK(t.Run({"set", "bin", std::string("a\0b", 3)}) == "OK");
  CHECK(t.RunValue({"get", "bin"}).text == std::string("a\0b", 3));
  PutSet(t, "s", {"x"});
  CHECK(t.Run({"get", "s"}) ==
        "(error) WRONGTYPE Operation against a key holding the wrong kind "
        "of value");
  CHECK(t.Run({"set", "s", "now-a-string"}) == "OK");  // SET ignores the old type
  CHECK(t.Run({"get", "s"}) == "\"now-a-string\"");
  CHECK(t.Run({"get"}) == "(error) ERR wrong number of arguments for 'get' command");
  CHECK(t.Run({"set", "k"}) == "(error) ERR wrong number of arguments for 'set' command");
}

TEST_CASE("SET NX, XX and GET", "[string]") {
  TestServer t;
  CHECK(t.Run({"set", "k", "1", "xx"}) == "(nil)");
  CHECK(t.Run({"get", "k"}) == "(nil)");
  CHECK(t.Run({"set", "k", "1", "nx"}) == "OK");
  CHECK(t.Run({"set", "k", "2", "NX"}) == "(nil)");
  CHECK(t.Run({"set", "k", "3", "Xx"}) == "OK");
  CHECK(t.Run({"get", "k"}) == "\"3\"");
  CHECK(t.Run({"set", "k", "4", "get"}) == "\"3\"");
  CHECK(t.Run({"set", "new", "4", "get"}) == "(nil)");
  CHECK(t.Run({"get", "new"}) == "\"4\"");
  CHECK(t.Run({"set", "k", "5", "nx", "get"}) == "\"4\"");  // not set, old value returned
  CHECK(t.Run({"get", "k"}) == "\"4\"");
  CHECK(t.Run({"set", "missing", "5", "xx", "get"}) == "(nil)");
  CHECK(t.Run({"get", "missing"}) == "(nil)");
  CHECK(t.Run({"set", "k", "6", "nx", "nx"}) == "(nil)");  // a repeated option is accepted
  PutSet(t, "s", {"x"});
  CHECK(t.Run({"set", "s", "v", "get"}) ==
        "(error) WRONGTYPE Operation against a key holding the wrong kind of value");
  CHECK(t.Run({"set", "s", "v", "nx"}) == "(nil)");  // NX sees a key of any type
  CHECK(t.Run({"set", "s", "v", "xx"}) == "OK");
}

TEST_CASE("SET option conflicts and bad times", "[string]") {
  TestServer t;
  const std::string syntax = "(error) ERR syntax error";
  const std::string invalid = "(error) ERR invalid expire time in 'set' command";
  CHECK(t.Run({"set", "k", "v", "nx", "xx"}) == syntax);
  CHECK(t.Run({"set", "k", "v", "xx", "nx"}) == syntax);
  CHECK(t.Run({"set", "k", "v", "ex", "10", "px", "10"}) == syntax);
  CHECK(t.Run({"set", "k", "v", "keepttl", "ex", "10"}) == syntax);
  CHECK(t.Run({"set", "k", "v", "pxat", "10", "keepttl"}) == syntax);
  CHECK(t.Run({"set", "k", "v", "ex"}) == syntax);
  CHECK(t.Run({"set", "k", "v", "persist"}) == syntax);
  CHECK(t.Run({"set", "k", "v", "bogus"}) == syntax);
  CHECK(t.Run({"set", "k", "v", "ifeq"}) == syntax);
  CHECK(t.Run({"set", "k", "v", "ifeq", "a", "nx"}) == syntax);
  CHECK(t.Run({"set", "k", "v", "xx", "ifeq", "a"}) == syntax);
  CHECK(t.Run({"set", "k", "v", "ex", "abc"}) ==
        "(error) ERR value is not an integer or out of "
        "range");
  CHECK(t.Run({"set", "k", "v", "ex", "0"}) == invalid);
  CHECK(t.Run({"set", "k", "v", "px", "-5"}) == invalid);
  CHECK(t.Run({"set", "k", "v", "exat", "0"}) == invalid);
  CHECK(t.Run({"set", "k", "v", "ex", "9223372036854776"}) == invalid);  // *1000 overflows
  CHECK(t.Run({"set", "k", "v", "ex", "9223372036854775"}) == invalid);  // +now overflows
  CHECK(t.Run({"set", "k", "v", "px", "9223372036854775807"}) == invalid);
  CHECK(t.Run({"set", "k", "v", "pxat", "9223372036854775807"}) == "OK");
  CHECK(t.Run({"set", "k", "v", "ex", "10", "ex", "20"}) == "OK");  // the last one wins
  CHECK(Pttl(t, "k") == "20000");
  CHECK(t.Run({"setex", "k", "0", "v"}) == "(error) ERR invalid expire time in 'setex' command");
  CHECK(t.Run({"psetex", "k", "-1", "v"}) == "(error) ERR invalid expire time in 'psetex' command");
  // The time is checked before GET looks at the type.
  PutSet(t, "s", {"x"});
  CHECK(t.Run({"set", "s", "v", "get", "ex", "0"}) == invalid);
}

TEST_CASE("SET expiry options, KEEPTTL and expiry by the clock", "[string]") {
  TestServer t;
  const int64_t now = t.clock().NowMs();
  CHECK(t.Run({"set", "k", "v", "ex", "10"}) == "OK");
  CHECK(Pttl(t, "k") == "10000");
  CHECK(t.Run({"set", "k", "v", "px", "1500"}) == "OK");
  CHECK(Pttl(t, "k") == "1500");
  CHECK(t.Run({"set", "k", "v", "exat", std::to_string(now / 1000 + 100)}) == "OK");
  CHECK(Pttl(t, "k") == std::to_string((now / 1000 + 100) * 1000 - now));
  CHECK(t.Run({"set", "k", "v", "pxat", std::to_string(now + 777)}) == "OK");
  CHECK(Pttl(t, "k") == "777");
  CHECK(t.Run({"set", "k", "w", "keepttl"}) == "OK");
  CHECK(Pttl(t, "k") == "777");
  CHECK(t.Run({"set", "k", "x"}) == "OK");  // a plain SET clears the TTL
  CHECK(Pttl(t, "k") == "-1");
  CHECK(t.Run({"set", "k", "v", "px", "100"}) == "OK");
  Advance(t, 99);
  CHECK(t.Run({"get", "k"}) == "\"v\"");
  Advance(t, 1);
  CHECK(t.Run({"get", "k"}) == "(nil)");
  CHECK(t.Run({"set", "k", "v", "xx"}) == "(nil)");  // an expired key does not exist
  CHECK(t.Run({"set", "k", "v", "keepttl"}) == "OK");
  CHECK(Pttl(t, "k") == "-1");
  // A time already past deletes the key and stores nothing.
  CHECK(t.Run({"set", "k", "v", "pxat", "1"}) == "OK");
  CHECK(t.Run({"get", "k"}) == "(nil)");
  CHECK(t.server().keyspace().Size(0) == 0);
  CHECK(t.Run({"set", "k", "v", "exat", "1", "get"}) == "(nil)");
}

TEST_CASE("SET IFEQ", "[string]") {
  TestServer t;
  CHECK(t.Run({"set", "k", "v", "ifeq", "v"}) == "(nil)");  // missing key: not set
  CHECK(t.Run({"get", "k"}) == "(nil)");
  CHECK(t.Run({"set", "k", "a"}) == "OK");
  CHECK(t.Run({"set", "k", "b", "ifeq", "x"}) == "(nil)");
  CHECK(t.Run({"get", "k"}) == "\"a\"");
  CHECK(t.Run({"set", "k", "b", "IFEQ", "a"}) == "OK");
  CHECK(t.Run({"get", "k"}) == "\"b\"");
  CHECK(t.Run({"set", "k", "c", "ifeq", "b", "get"}) == "\"b\"");
  CHECK(t.Run({"set", "k", "d", "ifeq", "b", "get"}) == "\"c\"");  // not equal: old value only
  CHECK(t.Run({"get", "k"}) == "\"c\"");
  CHECK(t.Run({"set", "k", "e", "ifeq", "c", "px", "500"}) == "OK");
  CHECK(Pttl(t, "k") == "500");
  PutSet(t, "s", {"x"});
  const std::string wrongtype =
      "(error) WRONGTYPE Operation against a key holding the wrong kind of value";
  CHECK(t.Run({"set", "s", "v", "ifeq", "x"}) == wrongtype);
  CHECK(t.Run({"set", "s", "v", "ifeq", "x", "get"}) == wrongtype);
}

TEST_CASE("SETNX, SETEX, PSETEX", "[string]") {
  TestServer t;
  CHECK(t.Run({"setnx", "k", "1"}) == "1");
  CHECK(t.Run({"setnx", "k", "2"}) == "0");
  CHECK(t.Run({"get", "k"}) == "\"1\"");
  PutSet(t, "s", {"x"});
  CHECK(t.Run({"setnx", "s", "2"}) == "0");
  CHECK(t.Run({"setex", "k", "10", "v"}) == "OK");
  CHECK(t.Run({"get", "k"}) == "\"v\"");
  CHECK(Pttl(t, "k") == "10000");
  CHECK(t.Run({"psetex", "k", "250", "w"}) == "OK");
  CHECK(Pttl(t, "k") == "250");
  CHECK(t.Run({"setex", "k", "x", "v"}) == "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"setex", "s", "10", "v"}) == "OK");  // overwrites any type
  CHECK(t.Run({"get", "s"}) == "\"v\"");
  Advance(t, 10'000);
  CHECK(t.Run({"get", "s"}) == "(nil)");
  CHECK(t.Run({"setex", "k", "1"}) == "(error) ERR wrong number of arguments for 'setex' command");
}

TEST_CASE("GETSET and GETDEL", "[string]") {
  TestServer t;
  CHECK(t.Run({"getset", "k", "1"}) == "(nil)");
  CHECK(t.Run({"getset", "k", "2"}) == "\"1\"");
  CHECK(t.Run({"get", "k"}) == "\"2\"");
  CHECK(t.Run({"set", "k", "3", "ex", "100"}) == "OK");
  CHECK(t.Run({"getset", "k", "4"}) == "\"3\"");
  CHECK(Pttl(t, "k") == "-1");  // GETSET clears the TTL
  PutSet(t, "s", {"x"});
  const std::string wrongtype =
      "(error) WRONGTYPE Operation against a key holding the wrong kind of value";
  CHECK(t.Run({"getset", "s", "v"}) == wrongtype);
  CHECK(t.Run({"getdel", "s"}) == wrongtype);
  CHECK(t.server().keyspace().Find(0, "s", t.clock().NowMs()) != nullptr);
  CHECK(t.Run({"getdel", "k"}) == "\"4\"");
  CHECK(t.Run({"getdel", "k"}) == "(nil)");
  CHECK(t.Run({"get", "k"}) == "(nil)");
}

TEST_CASE("GETEX", "[string]") {
  TestServer t;
  const int64_t now = t.clock().NowMs();
  CHECK(t.Run({"getex", "k"}) == "(nil)");
  CHECK(t.Run({"getex", "k", "ex", "0"}) == "(nil)");  // 9.0 looks the key up first
  CHECK(t.Run({"set", "k", "v"}) == "OK");
  CHECK(t.Run({"getex", "k"}) == "\"v\"");
  CHECK(Pttl(t, "k") == "-1");
  CHECK(t.Run({"getex", "k", "ex", "10"}) == "\"v\"");
  CHECK(Pttl(t, "k") == "10000");
  CHECK(t.Run({"getex", "k", "px", "300"}) == "\"v\"");
  CHECK(Pttl(t, "k") == "300");
  CHECK(t.Run({"getex", "k", "exat", std::to_string(now / 1000 + 50)}) == "\"v\"");
  CHECK(Pttl(t, "k") == std::to_string((now / 1000 + 50) * 1000 - now));
  CHECK(t.Run({"getex", "k", "pxat", std::to_string(now + 42)}) == "\"v\"");
  CHECK(Pttl(t, "k") == "42");
  CHECK(t.Run({"getex", "k", "persist"}) == "\"v\"");
  CHECK(Pttl(t, "k") == "-1");
  CHECK(t.Run({"getex", "k", "persist"}) == "\"v\"");
  CHECK(t.Run({"getex", "k", "ex", "0"}) == "(error) ERR invalid expire time in 'getex' command");
  CHECK(t.Run({"getex", "k", "px", "x"}) == "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"getex", "k", "persist", "ex", "1"}) == "(error) ERR syntax error");
  CHECK(t.Run({"getex", "k", "ex", "1", "px", "1"}) == "(error) ERR syntax error");
  CHECK(t.Run({"getex", "k", "keepttl"}) == "(error) ERR syntax error");
  CHECK(t.Run({"getex", "k", "nx"}) == "(error) ERR syntax error");
  CHECK(t.Run({"getex", "k", "get"}) == "(error) ERR syntax error");
  CHECK(t.Run({"getex", "missing", "bogus"}) == "(error) ERR syntax error");
  CHECK(t.Run({"getex", "k", "pxat", "1"}) == "\"v\"");  // a past time deletes the key
  CHECK(t.Run({"get", "k"}) == "(nil)");
  CHECK(t.server().keyspace().Size(0) == 0);
  PutSet(t, "s", {"x"});
  CHECK(t.Run({"getex", "s", "ex", "0"}) ==
        "(error) WRONGTYPE Operation against a key holding the wrong kind of value");
  CHECK(t.Run({"set", "k", "v"}) == "OK");
  CHECK(t.Run({"getex", "k", "px", "10"}) == "\"v\"");
  Advance(t, 10);
  CHECK(t.Run({"getex", "k"}) == "(nil)");
}

TEST_CASE("MGET, MSET, MSETNX", "[string]") {
  TestServer t;
  CHECK(t.Run({"mset", "a", "1", "b", "2"}) == "OK");
  PutSet(t, "s", {"x"});
  CHECK(t.Run({"mget", "a", "b", "s", "nope", "a"}) == "[\"1\", \"2\", (nil), (nil), \"1\"]");
  CHECK(t.Run({"mset", "a"}) == "(error) ERR wrong number of arguments for 'mset' command");
  CHECK(t.Run({"mset", "a", "1", "b"}) ==
        "(error) ERR wrong number of arguments for 'mset' "
        "command");
  CHECK(t.Run({"msetnx", "a", "1", "c"}) ==
        "(error) ERR wrong number of arguments for 'msetnx' command");
  CHECK(t.Run({"mset", "a", "x", "a", "y"}) == "OK");  // the last value wins
  CHECK(t.Run({"get", "a"}) == "\"y\"");
  CHECK(t.Run({"set", "t", "v", "ex", "100"}) == "OK");
  CHECK(t.Run({"mset", "t", "w"}) == "OK");
  CHECK(Pttl(t, "t") == "-1");
  CHECK(t.Run({"mset", "s", "str"}) == "OK");  // overwrites any type
  CHECK(t.Run({"get", "s"}) == "\"str\"");
  CHECK(t.Run({"msetnx", "c", "3", "a", "9"}) == "0");
  CHECK(t.Run({"get", "c"}) == "(nil)");
  CHECK(t.Run({"msetnx", "c", "3", "d", "4"}) == "1");
  CHECK(t.Run({"mget", "c", "d"}) == "[\"3\", \"4\"]");
  CHECK(t.Run({"msetnx", "e", "1", "e", "2"}) == "1");
  CHECK(t.Run({"get", "e"}) == "\"2\"");
}

TEST_CASE("APPEND and STRLEN", "[string]") {
  TestServer t;
  CHECK(t.Run({"strlen", "k"}) == "0");
  CHECK(t.Run({"append", "k", "ab"}) == "2");
  CHECK(t.Run({"append", "k", "cd"}) == "4");
  CHECK(t.Run({"get", "k"}) == "\"abcd\"");
  CHECK(t.Run({"strlen", "k"}) == "4");
  CHECK(t.Run({"append", "k", ""}) == "4");
  CHECK(t.Run({"set", "n", "12"}) == "OK");
  CHECK(t.Run({"append", "n", "3"}) == "3");
  CHECK(t.Run({"incr", "n"}) == "124");
  CHECK(t.Run({"set", "k", "x", "px", "1000"}) == "OK");
  CHECK(t.Run({"append", "k", "y"}) == "2");
  CHECK(Pttl(t, "k") == "1000");  // APPEND keeps the TTL
  PutSet(t, "s", {"x"});
  const std::string wrongtype =
      "(error) WRONGTYPE Operation against a key holding the wrong kind of value";
  CHECK(t.Run({"append", "s", "x"}) == wrongtype);
  CHECK(t.Run({"strlen", "s"}) == wrongtype);
  REQUIRE(t.Run({"config", "set", "proto-max-bulk-len", "1mb"}) == "OK");
  CHECK(t.Run({"set", "big", std::string(1024 * 1024 - 1, 'a')}) == "OK");
  CHECK(t.Run({"append", "big", "b"}) == "1048576");
  CHECK(t.Run({"append", "big", "c"}) ==
        "(error) ERR string exceeds maximum allowed size (proto-max-bulk-len)");
  CHECK(t.Run({"strlen", "big"}) == "1048576");
}

TEST_CASE("SETRANGE", "[string]") {
  TestServer t;
  CHECK(t.Run({"setrange", "k", "0", ""}) == "0");
  CHECK(t.Run({"get", "k"}) == "(nil)");  // nothing is created for an empty patch
  CHECK(t.Run({"setrange", "k", "3", "ab"}) == "5");
  CHECK(t.RunValue({"get", "k"}).text == std::string("\0\0\0ab", 5));
  CHECK(t.Run({"setrange", "k", "1", "XYZW"}) == "5");
  CHECK(t.RunValue({"get", "k"}).text == std::string("\0XYZW", 5));
  CHECK(t.Run({"setrange", "k", "100", ""}) == "5");
  CHECK(t.Run({"setrange", "k", "-1", "x"}) == "(error) ERR offset is out of range");
  CHECK(t.Run({"setrange", "k", "x", "x"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"setrange", "k", "536870911", "x"}) == "536870912");  // the 512 MB maximum
  CHECK(t.Run({"strlen", "k"}) == "536870912");
  CHECK(t.Run({"setrange", "k", "536870912", "x"}) ==
        "(error) ERR string exceeds maximum allowed size (proto-max-bulk-len)");
  CHECK(t.Run({"setrange", "k", "9223372036854775807", "xx"}) ==
        "(error) ERR string exceeds maximum allowed size (proto-max-bulk-len)");
  CHECK(t.Run({"set", "k", "hello", "ex", "5"}) == "OK");
  CHECK(t.Run({"setrange", "k", "0", "J"}) == "5");
  CHECK(t.Run({"get", "k"}) == "\"Jello\"");
  CHECK(Pttl(t, "k") == "5000");  // SETRANGE keeps the TTL
  PutSet(t, "s", {"x"});
  CHECK(t.Run({"setrange", "s", "0", "x"}) ==
        "(error) WRONGTYPE Operation against a key holding the wrong kind of value");
  CHECK(t.Run({"setrange", "s", "0", ""}) ==
        "(error) WRONGTYPE Operation against a key holding the wrong kind of value");
}

TEST_CASE("GETRANGE", "[string]") {
  TestServer t;
  CHECK(t.Run({"getrange", "k", "0", "-1"}) == "\"\"");
  CHECK(t.Run({"set", "k", "Hello World"}) == "OK");
  CHECK(t.Run({"getrange", "k", "0", "4"}) == "\"Hello\"");
  CHECK(t.Run({"getrange", "k", "-5", "-1"}) == "\"World\"");
  CHECK(t.Run({"getrange", "k", "0", "-1"}) == "\"Hello World\"");
  CHECK(t.Run({"getrange", "k", "-100", "2"}) == "\"Hel\"");
  CHECK(t.Run({"getrange", "k", "5", "1000"}) == "\" World\"");
  CHECK(t.Run({"getrange", "k", "-1", "-5"}) == "\"\"");
  CHECK(t.Run({"getrange", "k", "4", "2"}) == "\"\"");
  CHECK(t.Run({"getrange", "k", "20", "30"}) == "\"\"");
  CHECK(t.Run({"getrange", "k", "-9223372036854775808", "9223372036854775807"}) ==
        "\"Hello World\"");
  CHECK(t.Run({"getrange", "k", "0", "-100"}) == "\"H\"");  // end clamps to 0
  CHECK(t.Run({"getrange", "k", "a", "1"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"set", "e", ""}) == "OK");
  CHECK(t.Run({"getrange", "e", "0", "-1"}) == "\"\"");
  CHECK(t.Run({"set", "n", "12345"}) == "OK");
  CHECK(t.Run({"getrange", "n", "1", "2"}) == "\"23\"");
  PutSet(t, "s", {"x"});
  CHECK(t.Run({"getrange", "s", "0", "1"}) ==
        "(error) WRONGTYPE Operation against a key holding the wrong kind of value");
}

TEST_CASE("INCR, DECR, INCRBY, DECRBY", "[string]") {
  TestServer t;
  CHECK(t.Run({"incr", "n"}) == "1");
  CHECK(t.Run({"incrby", "n", "10"}) == "11");
  CHECK(t.Run({"decr", "n"}) == "10");
  CHECK(t.Run({"decrby", "n", "15"}) == "-5");
  CHECK(t.Run({"get", "n"}) == "\"-5\"");
  CHECK(t.Run({"decr", "m"}) == "-1");
  const std::string not_int = "(error) ERR value is not an integer or out of range";
  CHECK(t.Run({"incrby", "n", "x"}) == not_int);
  CHECK(t.Run({"incrby", "n", "1.5"}) == not_int);
  CHECK(t.Run({"incrby", "n", " 1"}) == not_int);
  CHECK(t.Run({"incrby", "n", "9223372036854775808"}) == not_int);
  CHECK(t.Run({"set", "s", "abc"}) == "OK");
  CHECK(t.Run({"incr", "s"}) == not_int);
  CHECK(t.Run({"set", "s", "007"}) == "OK");
  CHECK(t.Run({"incr", "s"}) == not_int);
  CHECK(t.Run({"set", "s", "9223372036854775807"}) == "OK");
  CHECK(t.Run({"incr", "s"}) == "(error) ERR increment or decrement would overflow");
  CHECK(t.Run({"set", "s", "-9223372036854775808"}) == "OK");
  CHECK(t.Run({"decr", "s"}) == "(error) ERR increment or decrement would overflow");
  CHECK(t.Run({"get", "s"}) == "\"-9223372036854775808\"");
  CHECK(t.Run({"decrby", "s", "-9223372036854775808"}) == "(error) ERR decrement would overflow");
  CHECK(t.Run({"incrby", "s", "-9223372036854775808"}) ==
        "(error) ERR increment or decrement would overflow");
  CHECK(t.Run({"set", "t", "5", "ex", "100"}) == "OK");
  CHECK(t.Run({"incr", "t"}) == "6");
  CHECK(Pttl(t, "t") == "100000");  // INCR keeps the TTL
  PutSet(t, "set", {"x"});
  const std::string wrongtype =
      "(error) WRONGTYPE Operation against a key holding the wrong kind of value";
  CHECK(t.Run({"incr", "set"}) == wrongtype);
  CHECK(t.Run({"decrby", "set", "1"}) == wrongtype);
  CHECK(t.Run({"incrby", "set", "x"}) == not_int);  // the increment is parsed first
}

TEST_CASE("INCRBYFLOAT", "[string]") {
  TestServer t;
  CHECK(t.Run({"incrbyfloat", "f", "1.5"}) == "\"1.5\"");
  CHECK(t.Run({"incrbyfloat", "f", "0.1"}) == "\"1.6\"");
  CHECK(t.Run({"incrbyfloat", "f", "-1.6"}) == "\"0\"");
  CHECK(t.Run({"incrbyfloat", "f", "5.0e3"}) == "\"5000\"");
  CHECK(t.Run({"set", "i", "10"}) == "OK");
  CHECK(t.Run({"incrbyfloat", "i", "0.5"}) == "\"10.5\"");
  CHECK(t.Run({"incrbyfloat", "i", "-10.5"}) == "\"0\"");
  const std::string not_float = "(error) ERR value is not a valid float";
  CHECK(t.Run({"incrbyfloat", "i", "abc"}) == not_float);
  CHECK(t.Run({"incrbyfloat", "i", "nan"}) == not_float);
  CHECK(t.Run({"incrbyfloat", "i", ""}) == not_float);
  CHECK(t.Run({"incrbyfloat", "i", " 1"}) == not_float);
  CHECK(t.Run({"set", "s", "abc"}) == "OK");
  CHECK(t.Run({"incrbyfloat", "s", "1"}) == not_float);
  CHECK(t.Run({"incrbyfloat", "i", "inf"}) ==
        "(error) ERR increment would produce NaN or Infinity");
  CHECK(t.Run({"set", "big", "1e4932"}) == "OK");
  CHECK(t.Run({"incrbyfloat", "big", "1e4932"}) ==
        "(error) ERR increment would produce NaN or Infinity");
  CHECK(t.Run({"set", "t", "1", "px", "900"}) == "OK");
  CHECK(t.Run({"incrbyfloat", "t", "1"}) == "\"2\"");
  CHECK(Pttl(t, "t") == "900");
  PutSet(t, "set", {"x"});
  const std::string wrongtype =
      "(error) WRONGTYPE Operation against a key holding the wrong kind of value";
  CHECK(t.Run({"incrbyfloat", "set", "1"}) == wrongtype);
  CHECK(t.Run({"incrbyfloat", "set", "x"}) == wrongtype);  // the type is checked first
}

TEST_CASE("counters print what Valkey prints in the corners of the crdt counter", "[string]") {
  TestServer t;
  // A counter back at zero with no SET under it still exists.
  CHECK(t.Run({"incr", "z"}) == "1");
  CHECK(t.Run({"decr", "z"}) == "0");
  CHECK(t.Run({"get", "z"}) == "\"0\"");
  CHECK(t.Run({"incrby", "z2", "0"}) == "0");
  CHECK(t.Run({"get", "z2"}) == "\"0\"");
  CHECK(t.Run({"incrbyfloat", "z3", "0"}) == "\"0\"");
  CHECK(t.Run({"get", "z3"}) == "\"0\"");
  // A zero float increment still rewrites a non-canonical number, as Valkey does.
  for (const auto& [base, shown] : std::vector<std::pair<std::string, std::string>>{
           {"+1", "1"}, {"1e3", "1000"}, {"0x10", "16"}, {"-0", "0"}, {"2.50", "2.5"}}) {
    CAPTURE(base);
    CHECK(t.Run({"set", "f", base}) == "OK");
    CHECK(t.Run({"incrbyfloat", "f", "0"}) == "\"" + shown + "\"");
    CHECK(t.Run({"get", "f"}) == "\"" + shown + "\"");
  }
  // This replica's running total would leave int64 although the value does not.
  CHECK(t.Run({"set", "n", "-10"}) == "OK");
  CHECK(t.Run({"incr", "n"}) == "-9");
  CHECK(t.Run({"incrby", "n", "9223372036854775807"}) == "9223372036854775798");
  CHECK(t.Run({"get", "n"}) == "\"9223372036854775798\"");
  CHECK(t.Run({"incrby", "n", "9"}) == "9223372036854775807");
  CHECK(t.Run({"incr", "n"}) == "(error) ERR increment or decrement would overflow");
  CHECK(t.Run({"set", "m", "-875"}) == "OK");
  CHECK(t.Run({"incrby", "m", "9223372036854775807"}) == "9223372036854774932");
  CHECK(t.Run({"incr", "m"}) == "9223372036854774933");
  // Large floats round as Valkey's parse-add-print does, step by step.
  CHECK(t.Run({"set", "big", "-9223372036854775810"}) == "OK");
  CHECK(t.Run({"incrbyfloat", "big", "-9.0"}) == "\"-9223372036854775819\"");
  CHECK(t.Run({"incrbyfloat", "big", "0.5"}) == "\"-9223372036854775818\"");
}

TEST_CASE("string commands are in the command table with Valkey's key specs", "[string]") {
  TestServer t;
  CHECK(t.Run({"command", "getkeys", "mset", "a", "1", "b", "2"}) == "[\"a\", \"b\"]");
  CHECK(t.Run({"command", "getkeys", "mget", "a", "b", "c"}) == "[\"a\", \"b\", \"c\"]");
  CHECK(t.Run({"command", "getkeys", "set", "k", "v", "ex", "1"}) == "[\"k\"]");
  const std::vector<std::pair<std::string, int64_t>> arities = {
      {"get", 2},     {"set", -3},   {"setnx", 3},  {"setex", 4},    {"psetex", 4},
      {"getset", 3},  {"getdel", 2}, {"getex", -2}, {"mget", -2},    {"mset", -3},
      {"msetnx", -3}, {"append", 3}, {"strlen", 2}, {"setrange", 4}, {"getrange", 4},
      {"incr", 2},    {"decr", 2},   {"incrby", 3}, {"decrby", 3},   {"incrbyfloat", 3}};
  for (const auto& [name, arity] : arities) {
    const Command* command = t.server().registry().Find(name);
    REQUIRE(command != nullptr);
    CHECK(command->spec.arity == arity);
    CHECK(command->spec.group == "string");
  }
}

// ---- replication -----------------------------------------------------------------------------

// Collects every op this replica originates, to replay on another replica.
using Sink = testing::OpCollector;
using Replica = testing::Region;

TEST_CASE("string writes converge on a second replica", "[string]") {
  TestServer a;
  TestServer b;
  Sink sink;
  a.server().keyspace().AddObserver(&sink);
  PutSet(a, "typed", {"x"});
  const std::vector<std::vector<std::string>> writes = {{"set", "a", "1"},
                                                        {"set", "b", "v", "ex", "100"},
                                                        {"setnx", "c", "x"},
                                                        {"setex", "d", "10", "y"},
                                                        {"psetex", "e", "500", "z"},
                                                        {"getset", "a", "2"},
                                                        {"mset", "f", "1", "g", "2"},
                                                        {"msetnx", "h", "1", "i", "2"},
                                                        {"append", "b", "w"},
                                                        {"setrange", "c", "3", "Q"},
                                                        {"incr", "a"},
                                                        {"decrby", "f", "7"},
                                                        {"incrbyfloat", "g", "0.25"},
                                                        {"getex", "d", "persist"},
                                                        {"getex", "e", "px", "99"},
                                                        {"getdel", "h"},
                                                        {"set", "typed", "now-string"},
                                                        {"set", "i", "n", "keepttl"},
                                                        {"set", "c", "q", "ifeq", "nope"},
                                                        {"set", "j", "v", "pxat", "1"}};
  for (const auto& write : writes) {
    CAPTURE(write);
    CHECK(a.Run(write).rfind("(error)", 0) == std::string::npos);
  }
  sink.DeliverTo(b.server().keyspace());
  for (const char* key : {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "typed"}) {
    CAPTURE(key);
    CHECK(a.Run({"get", key}) == b.Run({"get", key}));
    CHECK(Pttl(a, key) == Pttl(b, key));
  }
  CHECK(b.Run({"get", "a"}) == "\"3\"");
  CHECK(b.Run({"get", "g"}) == "\"2.25\"");
  CHECK(Pttl(b, "e") == "99");
}

TEST_CASE("concurrent INCRs from two regions add up; a concurrent SET is LWW", "[string]") {
  Replica a(1);
  Replica b(2);
  CHECK(a.Run({"set", "n", "10"}) == "OK");
  a.sink.DeliverTo(b.keyspace());
  CHECK(a.Run({"incrby", "n", "5"}) == "15");
  CHECK(b.Run({"incrby", "n", "3"}) == "13");
  CHECK(b.Run({"incrbyfloat", "f", "1.5"}) == "\"1.5\"");
  CHECK(a.Run({"incrbyfloat", "f", "2"}) == "\"2\"");
  a.sink.DeliverTo(b.keyspace());
  b.sink.DeliverTo(a.keyspace());
  CHECK(a.Run({"get", "n"}) == "\"18\"");
  CHECK(b.Run({"get", "n"}) == "\"18\"");
  CHECK(a.Run({"get", "f"}) == b.Run({"get", "f"}));
  CHECK(a.Run({"get", "f"}) == "\"3.5\"");
  // APPEND from both sides: each is a whole-value SET, so one region's write wins everywhere.
  CHECK(a.Run({"append", "s", "A"}) == "1");
  CHECK(b.Run({"append", "s", "B"}) == "1");
  a.sink.DeliverTo(b.keyspace());
  b.sink.DeliverTo(a.keyspace());
  CHECK(a.Run({"get", "s"}) == b.Run({"get", "s"}));
  // GETDEL in one region does not remove a write the other made concurrently.
  CHECK(a.Run({"getdel", "n"}) == "\"18\"");
  CHECK(b.Run({"set", "n", "fresh"}) == "OK");
  a.sink.DeliverTo(b.keyspace());
  b.sink.DeliverTo(a.keyspace());
  CHECK(a.Run({"get", "n"}) == "\"fresh\"");
  CHECK(b.Run({"get", "n"}) == "\"fresh\"");
}

}  // namespace
}  // namespace lattice::server
