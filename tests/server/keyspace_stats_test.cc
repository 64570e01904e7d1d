// keyspace_hits / keyspace_misses as Valkey counts them: every read command's key lookup
// (lookupKeyRead) counts a hit or a miss, a key of another type included; write commands look
// keys up with lookupKeyWrite, which counts nothing. The expected deltas are what redis-server
// 7.0 reports for the same commands (tests/integration/test_diff_keyspace_stats.py checks the
// totals against a live one).

#include <catch2/catch.hpp>

#include "server/server.h"
#include "server/server_test_util.h"

namespace lattice::server {
namespace {

using testing::TestServer;

TEST_CASE("hash, zset and set reads count hits as Valkey does", "[stats]") {
  TestServer t;
  for (const std::vector<std::string>& command :
       std::vector<std::vector<std::string>>{{"hset", "h", "f", "v"},
                                             {"hget", "h", "f"},
                                             {"zadd", "z", "1", "m"},
                                             {"zscore", "z", "m"},
                                             {"sadd", "s", "a"},
                                             {"sismember", "s", "a"}}) {
    (void)t.Run(command);
  }
  CHECK(t.server().stats().keyspace_hits == 3);
  CHECK(t.server().stats().keyspace_misses == 0);
}

struct Step {
  std::vector<std::string> command;
  uint64_t hits;    // the hits this command adds in redis-server
  uint64_t misses;  // and the misses
};

TEST_CASE("each command adds the hits and misses redis-server adds", "[stats]") {
  const std::vector<Step> steps = {
      {{"hset", "h", "f", "v"}, 0, 0},
      {{"hget", "h", "f"}, 1, 0},
      {{"hget", "h", "nof"}, 1, 0},
      {{"hget", "nokey", "f"}, 0, 1},
      {{"zadd", "z", "1", "m"}, 0, 0},
      {{"zscore", "z", "m"}, 1, 0},
      {{"zscore", "nokey", "m"}, 0, 1},
      {{"sadd", "s", "a"}, 0, 0},
      {{"sismember", "s", "a"}, 1, 0},
      {{"sismember", "nokey", "a"}, 0, 1},
      {{"get", "nokey"}, 0, 1},
      {{"set", "k", "v"}, 0, 0},
      {{"get", "k"}, 1, 0},
      {{"get", "h"}, 1, 0},  // WRONGTYPE: the lookup found the key
      {{"exists", "k", "nokey", "h"}, 2, 1},
      {{"type", "k"}, 1, 0},
      {{"ttl", "nokey"}, 0, 1},
      {{"hgetall", "h"}, 1, 0},
      {{"zrange", "z", "0", "-1"}, 1, 0},
      {{"zcard", "z"}, 1, 0},
      {{"hlen", "h"}, 1, 0},
      {{"incr", "cnt"}, 0, 0},
      {{"zincrby", "z", "1", "m"}, 0, 0},
      {{"expire", "k", "100"}, 0, 0},
      {{"persist", "k"}, 0, 0},
      {{"hincrby", "h", "n", "1"}, 0, 0},
      {{"srem", "s", "zz"}, 0, 0},
      {{"zrem", "z", "zz"}, 0, 0},
      {{"hdel", "h", "zz"}, 0, 0},
      {{"append", "k", "x"}, 0, 0},
      {{"mget", "k", "nokey"}, 1, 1},
      {{"zunionstore", "dz", "2", "z", "nokey"}, 1, 1},
      {{"zrangestore", "dst", "z", "0", "-1"}, 1, 0},
      {{"strlen", "k"}, 1, 0},
      {{"hexists", "h", "f"}, 1, 0},
      {{"zrank", "z", "m"}, 1, 0},
      {{"hscan", "h", "0"}, 1, 0},
      {{"zscan", "z", "0"}, 1, 0},
      {{"sscan", "s", "0"}, 1, 0},
      {{"smembers", "s"}, 1, 0},
      {{"touch", "k", "nokey"}, 1, 1},
      {{"object", "encoding", "k"}, 1, 0},
      {{"copy", "k", "k2"}, 1, 0},
      {{"rename", "k2", "k3"}, 0, 0},
  };
  TestServer t;
  const ServerStats& stats = t.server().stats();
  for (const Step& step : steps) {
    const uint64_t hits = stats.keyspace_hits;
    const uint64_t misses = stats.keyspace_misses;
    (void)t.Run(step.command);
    INFO(step.command[0] << " " << step.command[1]);
    CHECK(stats.keyspace_hits - hits == step.hits);
    CHECK(stats.keyspace_misses - misses == step.misses);
  }
  CHECK(stats.keyspace_hits == 26);
  CHECK(stats.keyspace_misses == 9);
}

}  // namespace
}  // namespace lattice::server
