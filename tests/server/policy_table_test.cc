// PolicyTable: rule validation, most specific pattern wins, ties refused, config and runtime
// layers, and that a key's writes carry the rules in force for it.
#include "store/policy_table.h"

#include <catch2/catch.hpp>

#include "server/server_test_util.h"

namespace lattice::server {
namespace {

TEST_CASE("policy: rules are validated per type", "[policy]") {
  CHECK(PolicyTable::CheckRule("string", "lww").empty());
  CHECK(PolicyTable::CheckRule("expiry", "shortest").empty());
  CHECK(PolicyTable::CheckRule("set", "remove-wins").empty());
  CHECK(PolicyTable::CheckRule("list", "lww").starts_with("unknown policy type 'list'"));
  CHECK(PolicyTable::CheckRule("string", "max") ==
        "unknown rule 'max' for string, expected counter | lww");
  CHECK(PolicyTable::CheckRule("zset", "remove-wins").empty());
  CHECK(PolicyTable::CheckRule("type", "fixed-precedence").empty());
  CHECK(PolicyTable::CheckRule("type", "oldest") ==
        "unknown rule 'oldest' for type, expected newest-creator-wins | fixed-precedence");
}

TEST_CASE("policy: zset and type rules reach the write's policies", "[policy]") {
  PolicyTable table;
  REQUIRE(table.Set({"board:*", "zset", "remove-wins"}).ok());
  REQUIRE(table.Set({"doc:*", "type", "fixed-precedence"}).ok());
  CHECK(table.For("board:1").zset == crdt::SetRule::kRemoveWins);
  CHECK(table.For("board:1").set == crdt::SetRule::kAddWins);
  CHECK(table.For("doc:1").type == crdt::TypeRule::kFixedPrecedence);
  CHECK(table.For("other").zset == crdt::SetRule::kAddWins);
  CHECK(table.For("other").type == crdt::TypeRule::kNewestCreator);
}

TEST_CASE("policy: the most specific matching pattern decides, per type", "[policy]") {
  PolicyTable table;
  REQUIRE(table.Set({"*", "string", "lww"}).ok());
  REQUIRE(table.Set({"counter:*", "string", "counter"}).ok());
  REQUIRE(table.Set({"session:*", "expiry", "longest"}).ok());
  CHECK(table.For("name").string == crdt::StringRule::kLww);
  CHECK(table.For("counter:1").string == crdt::StringRule::kCounter);
  CHECK(table.For("session:9").expiry == crdt::ExpiryRule::kLongest);
  CHECK(table.For("session:9").string == crdt::StringRule::kLww);
  CHECK(table.For("other").expiry == crdt::ExpiryRule::kLww);  // the default
  std::vector<PolicyChoice> why;
  (void)table.For("counter:1", &why);
  REQUIRE(why.size() == PolicyTable::Types().size());
  CHECK(why[0].type == "string");
  CHECK(why[0].rule == "counter");
  CHECK(why[0].pattern == "counter:*");
  CHECK(why[2].type == "set");
  CHECK(why[2].pattern.empty());  // default
}

TEST_CASE("policy: overlapping patterns of equal specificity are refused", "[policy]") {
  PolicyTable table;
  REQUIRE(table.Set({"user:*", "string", "lww"}).ok());
  auto tie = table.Set({"user:?", "string", "counter"});
  REQUIRE_FALSE(tie.ok());
  CHECK(tie.error().message.find("ties with 'user:*'") != std::string::npos);
  CHECK(table.Set({"user:?", "expiry", "longest"}).ok());  // another type: no tie
  CHECK(table.Set({"cart:*", "string", "counter"}).ok());  // disjoint: no tie
  CHECK(table.Set({"user:*", "string", "counter"}).ok());  // same pattern: replaces
  CHECK(table.For("user:1").string == crdt::StringRule::kCounter);
  CHECK(table.Del("user:*", "string"));
  CHECK_FALSE(table.Del("user:*", "string"));
  CHECK(table.For("user:1").string == crdt::StringRule::kCounter);  // default again
}

TEST_CASE("policy: runtime entries override config entries of the same pattern", "[policy]") {
  PolicyTable table;
  REQUIRE(table.Set({"k*", "set", "remove-wins", /*from_config=*/true}).ok());
  CHECK(table.For("key").set == crdt::SetRule::kRemoveWins);
  REQUIRE(table.Set({"k*", "set", "add-wins"}).ok());
  CHECK(table.For("key").set == crdt::SetRule::kAddWins);
  const auto listed = table.List();
  REQUIRE(listed.size() == 1);
  CHECK_FALSE(listed[0].from_config);
  CHECK(table.Del("k*", "set"));
  CHECK(table.For("key").set == crdt::SetRule::kRemoveWins);
}

TEST_CASE("policy: CRDT.POLICY replicates and each op carries its key's rules", "[policy]") {
  testing::Region a(1), b(2);
  CHECK(a.Run({"crdt.policy", "set", "lww:*", "string", "lww"}) == "OK");
  CHECK(a.Run({"crdt.policy", "set", "lww:*", "list", "lww"}) ==
        "(error) ERR unknown policy type 'list', expected string, hash, set, zset, expiry or type");
  a.sink.DeliverTo(b.keyspace());
  CHECK(b.keyspace().policy_table().For("lww:1").string == crdt::StringRule::kLww);
  // Concurrent INCRBYs: summed on a counter key, last writer wins on an lww key.
  for (const char* key : {"lww:1", "plain"}) {
    CHECK(a.Run({"incrby", key, "5"}) == "5");
    CHECK(b.Run({"incrby", key, "7"}) == "7");
  }
  a.sink.DeliverTo(b.keyspace());
  b.sink.DeliverTo(a.keyspace());
  CHECK(a.Run({"get", "plain"}) == "\"12\"");
  CHECK(b.Run({"get", "plain"}) == "\"12\"");
  const std::string lww = a.Run({"get", "lww:1"});
  CHECK((lww == "\"5\"" || lww == "\"7\""));
  CHECK(b.Run({"get", "lww:1"}) == lww);
  // Deleting the entry is replicated too; the ops already made keep their rule.
  CHECK(b.Run({"crdt.policy", "del", "lww:*", "string"}) == "1");
  CHECK(b.Run({"crdt.policy", "del", "lww:*", "string"}) == "0");
  b.sink.DeliverTo(a.keyspace());
  CHECK(a.keyspace().policy_table().empty());
  CHECK(a.Run({"get", "lww:1"}) == lww);
}

}  // namespace
}  // namespace lattice::server

namespace lattice::server {
namespace {

TEST_CASE("conflicts: concurrent assignments and types are logged, merges are not",
          "[policy][conflicts]") {
  testing::Region a(1), b(2);
  CHECK(a.Run({"set", "s", "from-a"}) == "OK");
  CHECK(b.Run({"set", "s", "from-b"}) == "OK");  // concurrent with a's SET
  CHECK(a.Run({"hset", "h", "f", "1", "g", "1"}) == "2");
  CHECK(b.Run({"hset", "h", "f", "2"}) == "1");  // field f concurrent
  CHECK(a.Run({"set", "t", "string"}) == "OK");
  CHECK(b.Run({"sadd", "t", "member"}) == "1");  // type conflict
  CHECK(a.Run({"incr", "c"}) == "1");
  CHECK(b.Run({"incr", "c"}) == "1");  // counter: merged, no conflict
  b.sink.DeliverTo(a.keyspace());
  const ConflictLog& log = a.keyspace().conflicts();
  CHECK(log.total() == 3);
  CHECK(log.counts().at("string/lww") == 1);
  CHECK(log.counts().at("hash/lww") == 1);
  CHECK(log.counts().at("type/newest-creator-wins") == 1);
  const std::vector<Conflict> recent = log.Recent(10);
  REQUIRE(recent.size() == 3);
  const Conflict& string = recent[2];  // oldest last
  CHECK(string.key == "s");
  CHECK(string.type == "string");
  // The later HLC wins (b wrote after a on the shared fake clock? either way, consistently):
  const std::string shown = a.Run({"get", "s"});
  CHECK(shown == "\"" + string.winner_value + "\"");
  CHECK((string.loser_value == "from-a" || string.loser_value == "from-b"));
  CHECK(string.loser_value != string.winner_value);
  CHECK(recent[1].field == "f");
  CHECK(a.Run({"crdt.conflicts", "count", "1"}).find("newest-creator-wins") != std::string::npos);
  // A write that saw the other is a plain overwrite.
  a.sink.DeliverTo(b.keyspace());
  CHECK(a.Run({"set", "s", "again"}) == "OK");
  a.sink.DeliverTo(b.keyspace());
  CHECK(b.keyspace().conflicts().counts().at("string/lww") == 1);  // only the first
  CHECK(a.Run({"crdt.conflicts", "reset"}) == "OK");
  CHECK(a.keyspace().conflicts().total() == 0);
  CHECK(a.Run({"crdt.conflicts", "count", "x"}) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(a.Run({"crdt.conflicts", "bogus"}) == "(error) ERR syntax error");
}

TEST_CASE("conflicts: a snapshot join is judged like an op, and an overlap counts once",
          "[policy][conflicts]") {
  testing::Region a(1), b(2);
  CHECK(a.Run({"set", "s", "from-a"}) == "OK");
  CHECK(b.Run({"set", "s", "from-b"}) == "OK");  // concurrent
  CHECK(a.Run({"sadd", "rw", "m"}) == "1");
  // b's whole state arrives as a snapshot would: the key state and b's context.
  KeyRef theirs_ref = b.keyspace().Find(0, "s", 0);
  REQUIRE(theirs_ref != nullptr);
  const crdt::Key theirs = theirs_ref->ToKey();  // a Remote keeps a pointer to the state
  const crdt::Key mine_before = a.keyspace().Find(0, "s", 0)->ToKey();
  a.keyspace().JoinState(0, "s", theirs, b.keyspace().context());
  const ConflictLog& log = a.keyspace().conflicts();
  CHECK(log.counts().at("string/lww") == 1);
  REQUIRE(log.Recent(1).size() == 1);
  CHECK(log.Recent(1)[0].loser_value != log.Recent(1)[0].winner_value);
  // The op stream overlapping the snapshot: the op finds its write already in, no new conflict.
  b.sink.DeliverTo(a.keyspace());
  CHECK(log.total() == 1);
  // The same decision judged twice (from the same local state) is counted once.
  const ConflictLog::Remote op = ConflictLog::Remote::OfState(theirs, b.keyspace().context());
  ConflictLog twice;
  KeyRef after = a.keyspace().Find(0, "s", 0);
  for (int i = 0; i < 2; ++i) {
    twice.Record(0, "s", ConflictLog::Capture(&mine_before, op), op, after->ToKey(), 1000 + i);
  }
  CHECK(twice.total() == 1);
  CHECK(twice.Recent(10).size() == 1);
}

}  // namespace
}  // namespace lattice::server
