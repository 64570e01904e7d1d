// The sorted-set family through TestServer (no sockets): every command, option and error, RESP3
// shapes, and convergence of two replicas fed the same ops.

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "server/server_test_util.h"

namespace lattice::server {
namespace {

using testing::TestServer;

// Writes a string or a set directly through the keyspace, so these tests do not depend on the
// string and set families.
void PutString(TestServer& t, const std::string& key, const std::string& value) {
  Keyspace& ks = t.server().keyspace();
  const int64_t now = t.clock().NowMs();
  crdt::Key& k = ks.Open(0, key, now);
  auto op = k.Set(value, false, std::nullopt, ks.BeginWrite(now), ks.context());
  REQUIRE(op.ok());
  ks.Commit(0, key, std::move(*op));
}

void PutSet(TestServer& t, const std::string& key, const std::vector<std::string>& members) {
  Keyspace& ks = t.server().keyspace();
  const int64_t now = t.clock().NowMs();
  crdt::Key& k = ks.Open(0, key, now);
  auto op = k.SAdd(members, ks.BeginWrite(now), ks.context());
  REQUIRE(op.ok());
  ks.Commit(0, key, std::move(*op));
}

void Resp3(TestServer& t) { t.client().protocol = Protocol::kResp3; }

TEST_CASE("zadd: add, update, flags and their errors", "[zset]") {
  TestServer t;
  CHECK(t.Run({"zadd", "z", "1", "a", "2", "b"}) == "2");
  CHECK(t.Run({"zadd", "z", "1", "a", "3", "c"}) == "1");
  CHECK(t.Run({"zadd", "z", "ch", "5", "a", "3", "c", "4", "d"}) == "2");
  CHECK(t.Run({"zadd", "z", "nx", "9", "a", "9", "e"}) == "1");
  CHECK(t.Run({"zscore", "z", "a"}) == "\"5\"");
  CHECK(t.Run({"zadd", "z", "xx", "ch", "7", "a", "9", "f"}) == "1");
  CHECK(t.Run({"zscore", "z", "f"}) == "(nil)");
  CHECK(t.Run({"zadd", "z", "gt", "ch", "1", "a", "8", "b"}) == "1");
  CHECK(t.Run({"zscore", "z", "a"}) == "\"7\"");
  CHECK(t.Run({"zadd", "z", "lt", "ch", "1", "a", "9", "b"}) == "1");
  CHECK(t.Run({"zscore", "z", "b"}) == "\"8\"");
  CHECK(t.Run({"zadd", "z", "GT", "XX", "CH", "100", "a", "1", "zz"}) == "1");
  CHECK(t.Run({"zadd", "nokey", "xx", "1", "a"}) == "0");
  CHECK(t.Run({"zcard", "nokey"}) == "0");
  // Duplicates in one command: the later pair sees the earlier one.
  CHECK(t.Run({"zadd", "d", "1", "x", "2", "x"}) == "1");
  CHECK(t.Run({"zscore", "d", "x"}) == "\"2\"");
  CHECK(t.Run({"zadd", "z", "inf", "i", "-inf", "j", "+inf", "k"}) == "3");
  CHECK(t.Run({"zscore", "z", "j"}) == "\"-inf\"");

  CHECK(t.Run({"zadd", "z", "nx", "xx", "1", "a"}) ==
        "(error) ERR XX and NX options at the same time are not compatible");
  CHECK(t.Run({"zadd", "z", "gt", "lt", "1", "a"}) ==
        "(error) ERR GT, LT, and/or NX options at the same time are not compatible");
  CHECK(t.Run({"zadd", "z", "nx", "gt", "1", "a"}) ==
        "(error) ERR GT, LT, and/or NX options at the same time are not compatible");
  CHECK(t.Run({"zadd", "z", "incr", "1", "a", "2", "b"}) ==
        "(error) ERR INCR option supports a single increment-element pair");
  CHECK(t.Run({"zadd", "z", "1", "a", "2"}) == "(error) ERR syntax error");
  CHECK(t.Run({"zadd", "z", "nx", "1"}) == "(error) ERR syntax error");
  CHECK(t.Run({"zadd", "z", "nan", "a"}) == "(error) ERR value is not a valid float");
  CHECK(t.Run({"zadd", "z", "1e400", "a"}) == "(error) ERR value is not a valid float");
  CHECK(t.Run({"zadd", "z", " 1", "a"}) == "(error) ERR value is not a valid float");
  CHECK(t.Run({"zadd", "z", "1x", "a"}) == "(error) ERR value is not a valid float");
  CHECK(t.Run({"zadd", "z", "", "a"}) == "(error) ERR value is not a valid float");
  CHECK(t.Run({"zadd", "z", "1"}) == "(error) ERR wrong number of arguments for 'zadd' command");
  PutString(t, "s", "v");
  CHECK(t.Run({"zadd", "s", "1", "a"}) ==
        "(error) WRONGTYPE Operation against a key holding the wrong kind of value");
  // A bad score later in the command changes nothing.
  CHECK(t.Run({"zadd", "fresh", "1", "a", "x", "b"}) == "(error) ERR value is not a valid float");
  CHECK(t.Run({"zcard", "fresh"}) == "0");
}

TEST_CASE("zadd incr and zincrby: increments, aborted INCR, NaN", "[zset]") {
  TestServer t;
  CHECK(t.Run({"zadd", "z", "incr", "2.5", "a"}) == "\"2.5\"");
  CHECK(t.Run({"zadd", "z", "incr", "1", "a"}) == "\"3.5\"");
  CHECK(t.Run({"zadd", "z", "nx", "incr", "1", "a"}) == "(nil)");
  CHECK(t.Run({"zadd", "z", "xx", "incr", "1", "b"}) == "(nil)");
  CHECK(t.Run({"zadd", "z", "gt", "incr", "-1", "a"}) == "(nil)");
  CHECK(t.Run({"zadd", "z", "lt", "incr", "-1", "a"}) == "\"2.5\"");
  CHECK(t.Run({"zincrby", "z", "10", "b"}) == "\"10\"");
  CHECK(t.Run({"zincrby", "z", "-0.5", "b"}) == "\"9.5\"");
  CHECK(t.Run({"zincrby", "z", "inf", "c"}) == "\"inf\"");
  CHECK(t.Run({"zincrby", "z", "-inf", "c"}) ==
        "(error) ERR resulting score is not a number (NaN)");
  CHECK(t.Run({"zadd", "z", "incr", "-inf", "c"}) ==
        "(error) ERR resulting score is not a number (NaN)");
  CHECK(t.Run({"zscore", "z", "c"}) == "\"inf\"");
  CHECK(t.Run({"zincrby", "z", "abc", "c"}) == "(error) ERR value is not a valid float");
  // A member made only of increments stays when they sum to 0.
  CHECK(t.Run({"zincrby", "only", "2", "m"}) == "\"2\"");
  CHECK(t.Run({"zincrby", "only", "-2", "m"}) == "\"0\"");
  CHECK(t.Run({"zrange", "only", "0", "-1", "withscores"}) == "[\"m\", \"0\"]");
  CHECK(t.Run({"zincrby", "z", "1"}) ==
        "(error) ERR wrong number of arguments for 'zincrby' command");
  Resp3(t);
  CHECK(t.Run({"zincrby", "z", "1", "b"}) == "(double) 10.5");
  CHECK(t.Run({"zadd", "z", "nx", "incr", "1", "a"}) == "(nil)");
}

TEST_CASE("zscore, zmscore, zcard and RESP3 doubles", "[zset]") {
  TestServer t;
  CHECK(t.Run({"zscore", "z", "a"}) == "(nil)");
  CHECK(t.Run({"zmscore", "z", "a", "b"}) == "[(nil), (nil)]");
  CHECK(t.Run({"zcard", "z"}) == "0");
  t.Run({"zadd", "z", "1.5", "a", "0.1", "b"});
  CHECK(t.Run({"zscore", "z", "b"}) == "\"0.1\"");
  CHECK(t.Run({"zmscore", "z", "a", "x", "b"}) == "[\"1.5\", (nil), \"0.1\"]");
  CHECK(t.Run({"zcard", "z"}) == "2");
  PutString(t, "s", "v");
  const std::string wrongtype =
      "(error) WRONGTYPE Operation against a key holding the wrong kind of value";
  CHECK(t.Run({"zscore", "s", "a"}) == wrongtype);
  CHECK(t.Run({"zmscore", "s", "a"}) == wrongtype);
  CHECK(t.Run({"zcard", "s"}) == wrongtype);
  Resp3(t);
  CHECK(t.Run({"zscore", "z", "a"}) == "(double) 1.5");
  CHECK(t.Run({"zmscore", "z", "a", "x"}) == "[(double) 1.5, (nil)]");
}

TEST_CASE("zrange by rank, score and lex, with REV, LIMIT and WITHSCORES", "[zset]") {
  TestServer t;
  t.Run({"zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"});
  CHECK(t.Run({"zrange", "z", "0", "-1"}) == "[\"a\", \"b\", \"c\", \"d\", \"e\"]");
  CHECK(t.Run({"zrange", "z", "1", "2", "withscores"}) == "[\"b\", \"2\", \"c\", \"3\"]");
  CHECK(t.Run({"zrange", "z", "-2", "100"}) == "[\"d\", \"e\"]");
  CHECK(t.Run({"zrange", "z", "3", "1"}) == "[]");
  CHECK(t.Run({"zrange", "z", "0", "1", "rev"}) == "[\"e\", \"d\"]");
  CHECK(t.Run({"zrevrange", "z", "0", "1", "withscores"}) == "[\"e\", \"5\", \"d\", \"4\"]");
  CHECK(t.Run({"zrange", "z", "(1", "3", "byscore"}) == "[\"b\", \"c\"]");
  CHECK(t.Run({"zrange", "z", "3", "(1", "byscore", "rev"}) == "[\"c\", \"b\"]");
  CHECK(t.Run({"zrange", "z", "-inf", "+inf", "byscore", "limit", "1", "2"}) == "[\"b\", \"c\"]");
  CHECK(t.Run({"zrange", "z", "+inf", "-inf", "byscore", "rev", "limit", "1", "-1"}) ==
        "[\"d\", \"c\", \"b\", \"a\"]");
  CHECK(t.Run({"zrange", "z", "-inf", "+inf", "byscore", "limit", "-1", "2"}) == "[]");
  CHECK(t.Run({"zrange", "z", "-inf", "+inf", "byscore", "limit", "9", "2"}) == "[]");
  CHECK(t.Run({"zrange", "z", "-inf", "+inf", "byscore", "limit", "0", "0"}) == "[]");
  CHECK(t.Run({"zrangebyscore", "z", "2", "4", "withscores", "limit", "1", "1"}) ==
        "[\"c\", \"3\"]");
  CHECK(t.Run({"zrevrangebyscore", "z", "4", "2"}) == "[\"d\", \"c\", \"b\"]");
  CHECK(t.Run({"zrangebyscore", "z", "(2", "(2"}) == "[]");
  CHECK(t.Run({"zrangebyscore", "z", "5", "1"}) == "[]");
  CHECK(t.Run({"zrangebyscore", "z", " 4", "1e400"}) == "[\"d\", \"e\"]");

  t.Run({"zadd", "l", "0", "a", "0", "b", "0", "c", "0", "d"});
  CHECK(t.Run({"zrange", "l", "[b", "(d", "bylex"}) == "[\"b\", \"c\"]");
  CHECK(t.Run({"zrange", "l", "+", "-", "bylex", "rev", "limit", "1", "2"}) == "[\"c\", \"b\"]");
  CHECK(t.Run({"zrangebylex", "l", "-", "+"}) == "[\"a\", \"b\", \"c\", \"d\"]");
  CHECK(t.Run({"zrangebylex", "l", "(a", "[c", "limit", "1", "5"}) == "[\"c\"]");
  CHECK(t.Run({"zrevrangebylex", "l", "[c", "-"}) == "[\"c\", \"b\", \"a\"]");
  CHECK(t.Run({"zrangebylex", "l", "+", "-"}) == "[]");
  CHECK(t.Run({"zrangebylex", "l", "[b", "(b"}) == "[]");
  CHECK(t.Run({"zrange", "nokey", "0", "-1"}) == "[]");

  CHECK(t.Run({"zrange", "z", "0", "1", "limit", "0", "1"}) ==
        "(error) ERR syntax error, LIMIT is only supported in combination with either BYSCORE "
        "or BYLEX");
  CHECK(t.Run({"zrange", "l", "-", "+", "bylex", "withscores"}) ==
        "(error) ERR syntax error, WITHSCORES not supported in combination with BYLEX");
  CHECK(t.Run({"zrange", "z", "a", "1", "byscore"}) == "(error) ERR min or max is not a float");
  CHECK(t.Run({"zrange", "z", "nan", "1", "byscore"}) == "(error) ERR min or max is not a float");
  CHECK(t.Run({"zrange", "z", "a", "b", "bylex"}) ==
        "(error) ERR min or max not valid string range item");
  CHECK(t.Run({"zrangebylex", "z", "+x", "-"}) ==
        "(error) ERR min or max not valid string range item");
  CHECK(t.Run({"zrange", "z", "x", "1"}) == "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"zrange", "z", "0", "1", "bogus"}) == "(error) ERR syntax error");
  CHECK(t.Run({"zrange", "z", "0", "1", "byscore", "bylex"}) == "(error) ERR syntax error");
  CHECK(t.Run({"zrangebyscore", "z", "0", "1", "limit", "x", "1"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"zrangebyscore", "z", "0", "1", "limit", "1"}) == "(error) ERR syntax error");
  CHECK(t.Run({"zrevrange", "z", "0", "1", "rev"}) == "(error) ERR syntax error");
  PutString(t, "s", "v");
  CHECK(t.Run({"zrange", "s", "0", "1"}) ==
        "(error) WRONGTYPE Operation against a key holding the wrong kind of value");

  Resp3(t);
  CHECK(t.Run({"zrange", "z", "0", "1", "withscores"}) ==
        "[[\"a\", (double) 1], [\"b\", (double) 2]]");
  CHECK(t.Run({"zrange", "z", "0", "1"}) == "[\"a\", \"b\"]");
}

TEST_CASE("zrangestore stores a range and replaces the destination", "[zset]") {
  TestServer t;
  t.Run({"zadd", "z", "1", "a", "2", "b", "3", "c"});
  PutString(t, "dst", "old");
  CHECK(t.Run({"zrangestore", "dst", "z", "1", "-1"}) == "2");
  CHECK(t.Run({"zrange", "dst", "0", "-1", "withscores"}) == "[\"b\", \"2\", \"c\", \"3\"]");
  CHECK(t.Run({"zrangestore", "dst", "z", "+inf", "2", "byscore", "rev", "limit", "0", "1"}) ==
        "1");
  CHECK(t.Run({"zrange", "dst", "0", "-1"}) == "[\"c\"]");
  CHECK(t.Run({"zrangestore", "dst", "nokey", "0", "-1"}) == "0");
  CHECK(t.Run({"zcard", "dst"}) == "0");
  CHECK(t.Run({"zrangestore", "dst", "z", "0", "-1", "withscores"}) == "(error) ERR syntax error");
}

TEST_CASE("zrank and zrevrank with WITHSCORE", "[zset]") {
  TestServer t;
  t.Run({"zadd", "z", "1", "a", "2", "b", "3", "c"});
  CHECK(t.Run({"zrank", "z", "a"}) == "0");
  CHECK(t.Run({"zrevrank", "z", "a"}) == "2");
  CHECK(t.Run({"zrank", "z", "c", "withscore"}) == "[2, \"3\"]");
  CHECK(t.Run({"zrevrank", "z", "c", "WITHSCORE"}) == "[0, \"3\"]");
  CHECK(t.Run({"zrank", "z", "x"}) == "(nil)");
  CHECK(t.Run({"zrank", "z", "x", "withscore"}) == "(nil-array)");
  CHECK(t.Run({"zrank", "nokey", "x", "withscore"}) == "(nil-array)");
  CHECK(t.Run({"zrank", "z", "a", "bogus"}) == "(error) ERR syntax error");
  CHECK(t.Run({"zrank", "z", "a", "withscore", "x"}) ==
        "(error) ERR wrong number of arguments for 'zrank' command");
  Resp3(t);
  CHECK(t.Run({"zrank", "z", "b", "withscore"}) == "[1, (double) 2]");
}

TEST_CASE("zcount and zlexcount use the index", "[zset]") {
  TestServer t;
  t.Run({"zadd", "z", "1", "a", "2", "b", "2", "c", "3", "d"});
  CHECK(t.Run({"zcount", "z", "2", "2"}) == "2");
  CHECK(t.Run({"zcount", "z", "(1", "+inf"}) == "3");
  CHECK(t.Run({"zcount", "z", "-inf", "(2"}) == "1");
  CHECK(t.Run({"zcount", "nokey", "0", "1"}) == "0");
  CHECK(t.Run({"zcount", "z", "x", "1"}) == "(error) ERR min or max is not a float");
  t.Run({"zadd", "l", "0", "a", "0", "b", "0", "c"});
  CHECK(t.Run({"zlexcount", "l", "-", "+"}) == "3");
  CHECK(t.Run({"zlexcount", "l", "(a", "[b"}) == "1");
  CHECK(t.Run({"zlexcount", "l", "a", "+"}) ==
        "(error) ERR min or max not valid string range item");
}

TEST_CASE("zpopmin and zpopmax with and without count", "[zset]") {
  TestServer t;
  t.Run({"zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d"});
  CHECK(t.Run({"zpopmin", "z"}) == "[\"a\", \"1\"]");
  CHECK(t.Run({"zpopmax", "z", "2"}) == "[\"d\", \"4\", \"c\", \"3\"]");
  CHECK(t.Run({"zpopmin", "z", "0"}) == "[]");
  CHECK(t.Run({"zpopmin", "z", "-1"}) == "(error) ERR value is out of range, must be positive");
  CHECK(t.Run({"zpopmin", "z", "x"}) == "(error) ERR value is out of range, must be positive");
  CHECK(t.Run({"zpopmin", "z", "1", "2"}) == "(error) ERR syntax error");
  CHECK(t.Run({"zpopmin", "z", "10"}) == "[\"b\", \"2\"]");
  CHECK(t.Run({"zcard", "z"}) == "0");
  CHECK(t.Run({"zpopmin", "z"}) == "[]");
  t.Run({"zadd", "z", "1", "a", "2", "b"});
  Resp3(t);
  CHECK(t.Run({"zpopmin", "z"}) == "[\"a\", (double) 1]");
  CHECK(t.Run({"zpopmax", "z", "1"}) == "[[\"b\", (double) 2]]");
}

TEST_CASE("zrem and zremrangeby rank, score and lex", "[zset]") {
  TestServer t;
  t.Run({"zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"});
  CHECK(t.Run({"zrem", "z", "a", "a", "x"}) == "1");
  CHECK(t.Run({"zrem", "nokey", "a"}) == "0");
  CHECK(t.Run({"zremrangebyrank", "z", "0", "0"}) == "1");
  CHECK(t.Run({"zrange", "z", "0", "-1"}) == "[\"c\", \"d\", \"e\"]");
  CHECK(t.Run({"zremrangebyrank", "z", "5", "10"}) == "0");
  CHECK(t.Run({"zremrangebyrank", "z", "x", "1"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"zremrangebyscore", "z", "(3", "4"}) == "1");
  CHECK(t.Run({"zremrangebyscore", "z", "x", "4"}) == "(error) ERR min or max is not a float");
  t.Run({"zadd", "l", "0", "a", "0", "b", "0", "c"});
  CHECK(t.Run({"zremrangebylex", "l", "[a", "(c"}) == "2");
  CHECK(t.Run({"zremrangebylex", "l", "a", "(c"}) ==
        "(error) ERR min or max not valid string range item");
  CHECK(t.Run({"zremrangebyrank", "l", "0", "-1"}) == "1");
  CHECK(t.Run({"zcard", "l"}) == "0");
  PutString(t, "s", "v");
  CHECK(t.Run({"zrem", "s", "a"}) ==
        "(error) WRONGTYPE Operation against a key holding the wrong kind of value");
}

TEST_CASE("zunion, zinter, zdiff, their STORE forms and zintercard", "[zset]") {
  TestServer t;
  t.Run({"zadd", "a", "1", "x", "2", "y", "3", "z"});
  t.Run({"zadd", "b", "10", "y", "20", "z", "30", "w"});
  PutSet(t, "s", {"x", "w"});
  CHECK(t.Run({"zunion", "2", "a", "b", "withscores"}) ==
        "[\"x\", \"1\", \"y\", \"12\", \"z\", \"23\", \"w\", \"30\"]");
  CHECK(t.Run({"zunion", "2", "a", "b", "weights", "2", "1", "aggregate", "max", "withscores"}) ==
        "[\"x\", \"2\", \"y\", \"10\", \"z\", \"20\", \"w\", \"30\"]");
  CHECK(t.Run({"zinter", "2", "a", "b", "aggregate", "min", "withscores"}) ==
        "[\"y\", \"2\", \"z\", \"3\"]");
  CHECK(t.Run({"zinter", "2", "a", "s", "withscores"}) == "[\"x\", \"2\"]");
  CHECK(t.Run({"zdiff", "2", "a", "b", "withscores"}) == "[\"x\", \"1\"]");
  CHECK(t.Run({"zdiff", "2", "a", "a"}) == "[]");
  CHECK(t.Run({"zunion", "2", "a", "nokey"}) == "[\"x\", \"y\", \"z\"]");
  CHECK(t.Run({"zinter", "2", "a", "nokey"}) == "[]");
  CHECK(t.Run({"zintercard", "2", "a", "b"}) == "2");
  CHECK(t.Run({"zintercard", "2", "a", "b", "limit", "1"}) == "1");
  CHECK(t.Run({"zunionstore", "d", "2", "a", "b"}) == "4");
  CHECK(t.Run({"zrange", "d", "0", "-1", "withscores"}) ==
        "[\"x\", \"1\", \"y\", \"12\", \"z\", \"23\", \"w\", \"30\"]");
  CHECK(t.Run({"zinterstore", "d", "2", "a", "b", "weights", "1", "0.5"}) == "2");
  CHECK(t.Run({"zrange", "d", "0", "-1", "withscores"}) == "[\"y\", \"7\", \"z\", \"13\"]");
  CHECK(t.Run({"zdiffstore", "d", "2", "b", "a"}) == "1");
  CHECK(t.Run({"zrange", "d", "0", "-1"}) == "[\"w\"]");
  CHECK(t.Run({"zinterstore", "d", "2", "a", "nokey"}) == "0");
  CHECK(t.Run({"zcard", "d"}) == "0");
  // inf * 0 is 0 and inf + -inf is 0, as in Valkey.
  t.Run({"zadd", "i", "inf", "m"});
  t.Run({"zadd", "j", "-inf", "m"});
  CHECK(t.Run({"zunion", "2", "i", "j", "withscores"}) == "[\"m\", \"0\"]");
  CHECK(t.Run({"zunion", "1", "i", "weights", "0", "withscores"}) == "[\"m\", \"0\"]");

  CHECK(t.Run({"zunion", "0", "a"}) ==
        "(error) ERR at least 1 input key is needed for 'zunion' command");
  CHECK(t.Run({"zunionstore", "d", "0", "a"}) ==
        "(error) ERR at least 1 input key is needed for 'zunionstore' command");
  CHECK(t.Run({"zunion", "x", "a"}) == "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"zunion", "3", "a", "b"}) == "(error) ERR syntax error");
  CHECK(t.Run({"zunion", "2", "a", "b", "weights", "1", "x"}) ==
        "(error) ERR weight value is not a float");
  CHECK(t.Run({"zunion", "2", "a", "b", "weights", "1"}) == "(error) ERR syntax error");
  CHECK(t.Run({"zunion", "2", "a", "b", "aggregate", "avg"}) == "(error) ERR syntax error");
  CHECK(t.Run({"zdiff", "2", "a", "b", "weights", "1", "1"}) == "(error) ERR syntax error");
  CHECK(t.Run({"zunionstore", "d", "2", "a", "b", "withscores"}) == "(error) ERR syntax error");
  CHECK(t.Run({"zintercard", "2", "a", "b", "limit", "-1"}) ==
        "(error) ERR LIMIT can't be negative");
  CHECK(t.Run({"zintercard", "2", "a", "b", "withscores"}) == "(error) ERR syntax error");
  PutString(t, "str", "v");
  CHECK(t.Run({"zunion", "2", "a", "str", "weights", "x"}) ==
        "(error) WRONGTYPE Operation against a key holding the wrong kind of value");
  Resp3(t);
  CHECK(t.Run({"zinter", "2", "a", "b", "withscores"}) ==
        "[[\"y\", (double) 12], [\"z\", (double) 23]]");
}

TEST_CASE("zrandmember: single, counts, repeats and errors", "[zset]") {
  TestServer t;
  CHECK(t.Run({"zrandmember", "z"}) == "(nil)");
  CHECK(t.Run({"zrandmember", "z", "3"}) == "[]");
  t.Run({"zadd", "z", "1", "a", "2", "b", "3", "c"});
  const std::string one = t.Run({"zrandmember", "z"});
  CHECK((one == "\"a\"" || one == "\"b\"" || one == "\"c\""));
  CHECK(t.Run({"zrandmember", "z", "5", "withscores"}) ==
        "[\"a\", \"1\", \"b\", \"2\", \"c\", \"3\"]");
  CHECK(t.RunValue({"zrandmember", "z", "-7"}).elements.size() == 7);
  CHECK(t.RunValue({"zrandmember", "z", "2"}).elements.size() == 2);
  const RespValue two = t.RunValue({"zrandmember", "z", "2"});
  CHECK(two.elements[0].text != two.elements[1].text);
  CHECK(t.Run({"zrandmember", "z", "0"}) == "[]");
  CHECK(t.Run({"zrandmember", "z", "x"}) == "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"zrandmember", "z", "1", "bogus"}) == "(error) ERR syntax error");
  CHECK(t.Run({"zrandmember", "z", "-9223372036854775808"}) ==
        "(error) ERR value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807");
  CHECK(t.Run({"zrandmember", "z", "9223372036854775807", "withscores"}) ==
        "(error) ERR value is out of range");
  CHECK(t.Run({"zrandmember", "z", "-9223372036854775807"}) == "(error) ERR value is out of range");
  CHECK(t.Run({"zrandmember", "z", "9223372036854775807"}) == "[\"a\", \"b\", \"c\"]");
  Resp3(t);
  CHECK(t.Run({"zrandmember", "z", "3", "withscores"}) ==
        "[[\"a\", (double) 1], [\"b\", (double) 2], [\"c\", (double) 3]]");
}

TEST_CASE("zscan: small sets whole, large sets by cursor, options and errors", "[zset]") {
  TestServer t;
  CHECK(t.Run({"zscan", "z", "0"}) == "[\"0\", []]");
  t.Run({"zadd", "z", "1", "a", "2", "b", "3", "ab"});
  CHECK(t.Run({"zscan", "z", "0"}) == "[\"0\", [\"a\", \"1\", \"b\", \"2\", \"ab\", \"3\"]]");
  CHECK(t.Run({"zscan", "z", "0", "match", "a*", "count", "1"}) ==
        "[\"0\", [\"a\", \"1\", \"ab\", \"3\"]]");
  CHECK(t.Run({"zscan", "z", "0", "noscores"}) == "[\"0\", [\"a\", \"b\", \"ab\"]]");
  CHECK(t.Run({"zscan", "z", "x"}) == "(error) ERR invalid cursor");
  CHECK(t.Run({"zscan", "z", "-1"}) == "(error) ERR invalid cursor");
  CHECK(t.Run({"zscan", "z", "0", "count", "0"}) == "(error) ERR syntax error");
  CHECK(t.Run({"zscan", "z", "0", "count", "x"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Run({"zscan", "z", "0", "type", "zset"}) == "(error) ERR syntax error");

  std::vector<std::string> add = {"zadd", "big"};
  for (int i = 0; i < 300; ++i) {
    add.push_back(std::to_string(i));
    add.push_back("m" + std::to_string(i));
  }
  t.Run(add);
  std::set<std::string> seen;
  std::string cursor = "0";
  int calls = 0;
  do {
    const RespValue reply = t.RunValue({"zscan", "big", cursor, "count", "20"});
    REQUIRE(reply.elements.size() == 2);
    cursor = reply.elements[0].text;
    for (size_t i = 0; i < reply.elements[1].elements.size(); i += 2) {
      seen.insert(reply.elements[1].elements[i].text);
    }
    // Changes during the scan: members present throughout must still be seen.
    if (calls == 3) {
      t.Run({"zadd", "big", "1", "new1", "2", "new2"});
      t.Run({"zrem", "big", "m299"});
    }
    ++calls;
  } while (cursor != "0" && calls < 1000);
  CHECK(calls > 5);
  for (int i = 0; i < 299; ++i) {
    CHECK(seen.count("m" + std::to_string(i)) == 1);
  }
}

// Collects every op this replica originates, to replay them on another replica.
using Sink = testing::OpCollector;
using Replica = testing::Region;

TEST_CASE("zset writes converge on a replica fed the same ops", "[zset]") {
  TestServer a;
  TestServer b;
  Sink sink;
  a.server().keyspace().AddObserver(&sink);
  a.Run({"zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d"});
  a.Run({"zincrby", "z", "5", "a"});
  a.Run({"zadd", "z", "gt", "ch", "10", "b", "0", "c"});
  a.Run({"zrem", "z", "d"});
  a.Run({"zpopmin", "z"});
  a.Run({"zadd", "y", "1", "x", "2", "c"});
  a.Run({"zunionstore", "u", "2", "z", "y", "weights", "2", "3"});
  a.Run({"zrangestore", "r", "u", "0", "1"});
  a.Run({"zremrangebyscore", "u", "-inf", "(5"});
  sink.DeliverTo(b.server().keyspace());
  for (const std::string key : {"z", "y", "u", "r"}) {
    CAPTURE(key);
    CHECK(a.Run({"zrange", key, "0", "-1", "withscores"}) ==
          b.Run({"zrange", key, "0", "-1", "withscores"}));
  }
  CHECK(b.Run({"zrange", "u", "0", "-1", "withscores"}) ==
        "[\"c\", \"6\", \"a\", \"12\", \"b\", \"20\"]");
}

TEST_CASE("concurrent zset writes from two regions converge", "[zset]") {
  Replica a(1);
  Replica b(2);
  Sink to_b;
  Sink to_a;
  a.keyspace().AddObserver(&to_b);
  b.keyspace().AddObserver(&to_a);
  a.Run({"zadd", "z", "1", "m", "1", "n", "1", "o"});
  to_b.DeliverTo(b.keyspace());
  // Concurrent: increments add up; ZREM does not remove a member re-added concurrently.
  a.Run({"zincrby", "z", "2", "m"});
  b.Run({"zincrby", "z", "3", "m"});
  a.Run({"zrem", "z", "n"});
  b.Run({"zadd", "z", "7", "n"});
  a.Run({"zadd", "z", "5", "p"});
  b.Run({"zpopmin", "z"});  // pops o
  to_b.DeliverTo(b.keyspace());
  to_a.DeliverTo(a.keyspace());
  CHECK(a.Run({"zscore", "z", "m"}) == "\"6\"");
  CHECK(a.Run({"zrange", "z", "0", "-1", "withscores"}) ==
        b.Run({"zrange", "z", "0", "-1", "withscores"}));
  CHECK(a.Run({"zscore", "z", "n"}) == "\"7\"");
  CHECK(a.Run({"zscore", "z", "o"}) == "(nil)");
}

}  // namespace
}  // namespace lattice::server
