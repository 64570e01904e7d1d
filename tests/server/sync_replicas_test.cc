// SYNC and PSYNC served (server/sync_replicas.h), in process with the child run inline: the
// +FULLRESYNC line, the RDB bulk read back by the RDB reader, the stream of changed keys (local
// writes and ops applied from another region) as commands, REPLCONF, ROLE and INFO. The real
// processes (redis-cli --rdb, a redis-server replica) are tests/integration/test_rdb_out.py.

#include "server/sync_replicas.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "server/server_test_util.h"
#include "store/rdb_file.h"
#include "store/rdb_value.h"

namespace lattice::server {
namespace {

using testing::Region;
using testing::TestServer;

// Runs a command that may reply nothing; returns the reply bytes.
std::string RunRaw(TestServer& t, std::vector<std::string> args, size_t index) {
  std::vector<std::string_view> views(args.begin(), args.end());
  std::string out;
  ReplyBuilder reply(&out);
  t.server().Execute(t.client(index), views, reply);
  return out;
}

class Keys final : public RdbFileSink {
 public:
  void Key(int db, std::string key, VisibleValue value) override {
    keys[{db, key}] = std::move(value);
  }
  void Skipped(int, std::string_view, std::string_view) override {}
  void Function(std::string) override {}
  void Aux(std::string_view name, std::string_view value) override {
    aux[std::string(name)] = std::string(value);
  }
  std::map<std::pair<int, std::string>, VisibleValue> keys;
  std::map<std::string, std::string> aux;
};

// Splits "+FULLRESYNC ...\r\n$<n>\r\n<n bytes>" off the front of `pushed`: the RDB's keys.
Keys TakeRdb(std::string& pushed, bool psync, const std::string& replid) {
  if (psync) {
    const std::string line = "+FULLRESYNC " + replid + " 0\r\n";
    REQUIRE(pushed.starts_with(line));
    pushed.erase(0, line.size());
  }
  REQUIRE(pushed.starts_with("$"));
  const size_t eol = pushed.find("\r\n");
  const size_t size = std::stoul(pushed.substr(1, eol - 1));
  REQUIRE(pushed.size() >= eol + 2 + size);
  const std::string rdb = pushed.substr(eol + 2, size);
  pushed.erase(0, eol + 2 + size);
  Keys keys;
  Result<RdbFileSummary> read = ReadRdbFile(rdb, keys);
  REQUIRE(read.ok());
  CHECK(keys.aux.at("repl-id") == replid);
  return keys;
}

std::string Command(std::initializer_list<std::string_view> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (std::string_view arg : args) {
    out += "$" + std::to_string(arg.size()) + "\r\n" + std::string(arg) + "\r\n";
  }
  return out;
}

TEST_CASE("psync: +FULLRESYNC, the RDB of the moment, then changed keys as commands",
          "[server][sync]") {
  Region a(1);
  Region b(2);
  const size_t replica = a.AddClient();
  std::string pushed;
  a.client(replica).push_hook = [&](std::string_view bytes) { pushed.append(bytes); };
  a.server().sync_replicas().set_children(std::make_unique<InlineChildProcesses>());
  a.Run({"SET", "before", "1"});
  a.Run({"SELECT", "3"});
  a.Run({"RPUSH", "list", "x", "y"});
  a.Run({"SELECT", "0"});
  a.Run({"XADD", "x", "5-1", "f", "v"});

  CHECK(RunRaw(a, {"REPLCONF", "listening-port", "6390"}, replica) == "+OK\r\n");
  CHECK(RunRaw(a, {"REPLCONF", "capa", "eof", "capa", "psync2"}, replica) == "+OK\r\n");
  CHECK(RunRaw(a, {"PSYNC", "?", "-1"}, replica).empty());
  const std::string replid = a.server().run_id();
  const Keys rdb = TakeRdb(pushed, true, replid);
  CHECK(rdb.keys.size() == 3);
  CHECK(rdb.keys.at({0, "before"}).string == "1");
  CHECK(rdb.keys.at({3, "list"}).list == std::vector<std::string>{"x", "y"});
  REQUIRE(rdb.keys.at({0, "x"}).stream.size() == 1);
  CHECK(rdb.keys.at({0, "x"}).stream[0].second == std::vector<std::string>{"f", "v"});
  CHECK(pushed.empty());

  a.Run({"SET", "k", "v", "PXAT", "1800000000000"});
  CHECK(pushed == Command({"SELECT", "0"}) + Command({"SET", "k", "v", "PXAT", "1800000000000"}));
  pushed.clear();
  a.Run({"DEL", "before"});
  CHECK(pushed == Command({"DEL", "before"}));
  pushed.clear();
  // A stream: its whole state as a RESTORE of its DUMP payload.
  a.Run({"XADD", "x", "6-0", "g", "w"});
  const std::string head = "*6\r\n$7\r\nRESTORE\r\n$1\r\nx\r\n$1\r\n0\r\n$";
  REQUIRE(pushed.starts_with(head));
  const size_t eol = pushed.find("\r\n", head.size());
  const size_t size = std::stoul(pushed.substr(head.size(), eol - head.size()));
  Result<VisibleValue> restored = DecodeDumpPayload(pushed.substr(eol + 2, size), false);
  REQUIRE(restored.ok());
  REQUIRE(restored->stream.size() == 2);
  CHECK(restored->stream[1].first == crdt::StreamId{6, 0});
  CHECK(restored->stream[1].second == std::vector<std::string>{"g", "w"});
  pushed.clear();

  // An op applied from region b: the key's state, at the end of the turn (ServeBlocked).
  b.Run({"SADD", "s", "m"});
  b.sink.DeliverTo(a.keyspace());
  a.server().ServeBlocked();
  REQUIRE(pushed.starts_with("*6\r\n$7\r\nRESTORE\r\n$1\r\ns\r\n$1\r\n0\r\n"));
  CHECK(pushed.ends_with(Command({"REPLACE", "ABSTTL"}).substr(4)));
  const int64_t offset = a.server().sync_replicas().offset();
  CHECK(offset > 0);
  pushed.clear();

  // REPLCONF ACK: no reply; ROLE lists the replica.
  CHECK(RunRaw(a, {"REPLCONF", "ACK", std::to_string(offset)}, replica).empty());
  CHECK(a.Run({"ROLE"}) == "[\"master\", " + std::to_string(offset) +
                               ", [[\"127.0.0.1\", \"6390\", \"" + std::to_string(offset) +
                               "\"]]]");

  // The client closes: no replica left.
  a.server().UnregisterClient(&a.client(replica));
  CHECK(a.server().sync_replicas().replicas().empty());
  CHECK(a.server().sync_replicas().active());  // the backlog goes on for an hour
  CHECK(a.Run({"ROLE"}) == "[\"master\", " + std::to_string(offset) + ", []]");
}

TEST_CASE("psync continues from the backlog when the id is the stream's", "[server][sync]") {
  TestServer t;
  t.server().sync_replicas().set_children(std::make_unique<InlineChildProcesses>());
  std::vector<std::string> pushed(4);
  std::vector<size_t> clients;
  for (size_t i = 0; i < pushed.size(); ++i) {
    clients.push_back(t.AddClient());
    t.client(clients[i]).push_hook = [&pushed, i](std::string_view bytes) {
      pushed[i].append(bytes);
    };
  }
  const std::string replid = t.server().run_id();
  CHECK(RunRaw(t, {"PSYNC", "?", "-1"}, clients[0]).empty());
  (void)TakeRdb(pushed[0], true, replid);
  t.Run({"SET", "a", "1"});
  const int64_t after_a = t.server().sync_replicas().offset();
  t.Run({"SET", "b", "2"});
  CHECK(pushed[0] ==
        Command({"SELECT", "0"}) + Command({"SET", "a", "1"}) + Command({"SET", "b", "2"}));

  // Had everything up to after_a: gets the rest.
  CHECK(RunRaw(t, {"PSYNC", replid, std::to_string(after_a + 1)}, clients[1]).empty());
  CHECK(pushed[1] == "+CONTINUE " + replid + "\r\n" + Command({"SET", "b", "2"}));
  CHECK(t.server().sync_replicas().partial_syncs() == 1);
  t.Run({"SET", "c", "3"});
  CHECK(pushed[1].ends_with(Command({"SET", "c", "3"})));

  // Another id, or an offset beyond the stream: a full resync.
  CHECK(RunRaw(t, {"PSYNC", std::string(40, '0'), "1"}, clients[2]).empty());
  CHECK(pushed[2].starts_with("+FULLRESYNC " + replid + " "));
  const int64_t beyond = t.server().sync_replicas().offset() + 2;
  CHECK(RunRaw(t, {"PSYNC", replid, std::to_string(beyond)}, clients[3]).empty());
  CHECK(pushed[3].starts_with("+FULLRESYNC " + replid + " "));
  CHECK(t.server().sync_replicas().partial_syncs() == 1);
}

TEST_CASE("sync with rdb-only: the file and nothing after it", "[server][sync]") {
  TestServer t;
  const size_t cli = t.AddClient();
  std::string pushed;
  t.client(cli).push_hook = [&](std::string_view bytes) { pushed.append(bytes); };
  t.server().sync_replicas().set_children(std::make_unique<InlineChildProcesses>());
  t.Run({"HSET", "h", "f", "v"});
  CHECK(RunRaw(t, {"REPLCONF", "rdb-only", "1"}, cli) == "+OK\r\n");
  CHECK(RunRaw(t, {"SYNC"}, cli).empty());
  const Keys rdb = TakeRdb(pushed, false, t.server().run_id());
  CHECK(rdb.keys.at({0, "h"}).hash.size() == 1);
  t.Run({"SET", "after", "1"});
  CHECK(pushed.empty());
  CHECK(t.server().sync_replicas().offset() == 0);  // a backup alone starts no stream
  CHECK(t.Run({"ROLE"}) ==
        "[\"master\", " + std::to_string(t.server().sync_replicas().offset()) + ", []]");
}

TEST_CASE("replconf: bad options are refused", "[server][sync]") {
  TestServer t;
  CHECK(t.Run({"REPLCONF", "listening-port"}) == "(error) ERR syntax error");
  CHECK(t.Run({"REPLCONF", "listening-port", "70000"}) == "(error) ERR value is out of range");
  CHECK(t.Run({"REPLCONF", "nosuch", "1"}) == "(error) ERR Unrecognized REPLCONF option: nosuch");
  CHECK(t.Run({"SYNC"}) == "(error) ERR SYNC needs a connection that can receive pushed bytes");
}

}  // namespace
}  // namespace lattice::server
