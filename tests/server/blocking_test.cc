// The blocked-client registry (server/blocking.h) and the commands on it: ZMPOP, BZPOPMIN,
// BZPOPMAX, BZMPOP, CLIENT UNBLOCK, INFO blocked_clients. A blocked client's reply goes into the
// ReplyBuilder it blocked with, so each test client here keeps one, as a connection does.

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "server_test_util.h"

namespace lattice::server::testing {
namespace {

// A TestServer whose clients keep their reply buffers across commands (a blocked client is
// answered later) and count their wake-ups (the network layer's wake_hook).
class BlockingServer : public TestServer {
 public:
  explicit BlockingServer(ReplicaId replica = 1, Config config = Config())
      : TestServer(std::move(config), replica) {
    Attach(0);
    server().keyspace().AddObserver(&sink);
  }

  size_t Connect() {
    const size_t index = AddClient();
    Attach(index);
    return index;
  }

  // Sends one command; returns its reply, or "" when the client blocked.
  std::string Send(std::vector<std::string> args, size_t index = 0) {
    std::vector<std::string_view> views(args.begin(), args.end());
    server().Execute(client(index), views, sessions_[index]->reply);
    return Take(index);
  }

  // The replies written for client `index` since the last look ("" when none), one per line.
  std::string Take(size_t index) {
    std::string& out = sessions_[index]->out;
    std::string text;
    while (!out.empty()) {
      size_t consumed = 0;
      Result<RespValue> value = DecodeReply(out, &consumed);
      REQUIRE(value.ok());
      text += (text.empty() ? "" : "\n") + value->ToString();
      out.erase(0, consumed);
    }
    return text;
  }

  bool Blocked(size_t index) { return server().blocking().IsBlocked(&client(index)); }
  int wakes(size_t index) { return sessions_[index]->wakes; }
  void Disconnect(size_t index) { server().UnregisterClient(&client(index)); }
  void Advance(int64_t ms) {
    clock().now_us += ms * 1000;
    server().blocking().ExpireDue(clock().NowMs());
  }

  OpCollector sink;

 private:
  struct Session {
    std::string out;
    ReplyBuilder reply{&out};
    int wakes = 0;
  };
  void Attach(size_t index) {
    auto session = std::make_unique<Session>();
    Session* raw = session.get();
    client(index).wake_hook = [raw] { ++raw->wakes; };
    sessions_[index] = std::move(session);
  }
  std::map<size_t, std::unique_ptr<Session>> sessions_;
};

}  // namespace

TEST_CASE("zmpop pops from the first non-empty sorted set", "[blocking][zset]") {
  BlockingServer t;
  t.Send({"zadd", "b", "1", "x", "2", "y", "3", "z"});
  CHECK(t.Send({"zmpop", "2", "a", "b", "min"}) == "[\"b\", [[\"x\", \"1\"]]]");
  CHECK(t.Send({"zmpop", "2", "a", "b", "max", "count", "5"}) ==
        "[\"b\", [[\"z\", \"3\"], [\"y\", \"2\"]]]");
  CHECK(t.Send({"exists", "b"}) == "0");
  CHECK(t.Send({"zmpop", "1", "b", "min"}) == "(nil-array)");
  t.Send({"hello", "3"});
  t.Send({"zadd", "b", "1.5", "x"});
  CHECK(t.Send({"zmpop", "1", "b", "min"}) == "[\"b\", [[\"x\", (double) 1.5]]]");
  CHECK(t.Send({"zmpop", "1", "b", "min"}) == "(nil)");
}

TEST_CASE("zmpop and bzmpop report Valkey's errors in Valkey's order", "[blocking][zset]") {
  BlockingServer t;
  t.Send({"set", "s", "v"});
  CHECK(t.Send({"zmpop", "0", "a", "min"}) == "(error) ERR numkeys should be greater than 0");
  CHECK(t.Send({"zmpop", "x", "a", "min"}) == "(error) ERR numkeys should be greater than 0");
  CHECK(t.Send({"zmpop", "2", "a", "min"}) == "(error) ERR syntax error");
  CHECK(t.Send({"zmpop", "1", "a", "mid"}) == "(error) ERR syntax error");
  CHECK(t.Send({"zmpop", "1", "a", "min", "count"}) == "(error) ERR syntax error");
  CHECK(t.Send({"zmpop", "1", "a", "min", "count", "0"}) ==
        "(error) ERR count should be greater than 0");
  CHECK(t.Send({"zmpop", "1", "a", "min", "count", "1", "count", "2"}) ==
        "(error) ERR syntax error");
  CHECK(t.Send({"zmpop", "2", "s", "a", "min"}) ==
        "(error) WRONGTYPE Operation against a key holding the wrong kind of value");
  CHECK(t.Send({"bzmpop", "x", "1", "a", "min"}) ==
        "(error) ERR timeout is not a float or out of range");
  CHECK(t.Send({"bzmpop", "1", "0", "a", "min"}) ==
        "(error) ERR numkeys should be greater than 0");  // numkeys before the timeout
  CHECK(t.Send({"bzmpop", "-1", "1", "a", "min"}) == "(error) ERR timeout is negative");
  CHECK(t.Send({"bzpopmin", "a", "inf"}) == "(error) ERR timeout is out of range");
  CHECK(t.Send({"bzpopmin", "a", "nan"}) == "(error) ERR timeout is not a float or out of range");
  CHECK(t.Send({"bzpopmin", "a", "1e300"}) == "(error) ERR timeout is out of range");
  CHECK(t.Send({"bzpopmin", "s", "0"}) ==
        "(error) WRONGTYPE Operation against a key holding the wrong kind of value");
  CHECK_FALSE(t.Blocked(0));
  CHECK(t.Send({"bzpopmin", "a", "-0.0001"}).empty());  // rounds up to 0: no timeout
  CHECK(t.Blocked(0));
}

TEST_CASE("bzpopmin replies at once when a key has members", "[blocking][zset]") {
  BlockingServer t;
  t.Send({"zadd", "z", "1", "a", "2", "b"});
  CHECK(t.Send({"bzpopmin", "none", "z", "1"}) == "[\"z\", \"a\", \"1\"]");
  CHECK(t.Send({"bzpopmax", "z", "1"}) == "[\"z\", \"b\", \"2\"]");
  t.Send({"zadd", "z", "1", "a", "2", "b", "3", "c"});
  CHECK(t.Send({"bzmpop", "1", "1", "z", "max", "count", "2"}) ==
        "[\"z\", [[\"c\", \"3\"], [\"b\", \"2\"]]]");
}

TEST_CASE("a blocked client is woken by another client's write", "[blocking][zset]") {
  BlockingServer t;
  const size_t writer = t.Connect();
  CHECK(t.Send({"bzpopmin", "z", "0"}).empty());
  CHECK(t.Blocked(0));
  CHECK(t.Send({"info", "clients"}, writer).find("blocked_clients:1") != std::string::npos);
  CHECK(t.Send({"client", "list"}, writer).find("flags=b") != std::string::npos);
  CHECK(t.Send({"set", "other", "v"}, writer) == "OK");
  CHECK(t.wakes(0) == 0);
  CHECK(t.Send({"zadd", "z", "1", "a", "2", "b"}, writer) == "2");
  CHECK(t.Take(0) == "[\"z\", \"a\", \"1\"]");
  CHECK(t.wakes(0) == 1);
  CHECK_FALSE(t.Blocked(0));
  CHECK(t.Send({"zrange", "z", "0", "-1"}, writer) == "[\"b\"]");
  CHECK(t.Send({"info", "clients"}, writer).find("blocked_clients:0") != std::string::npos);
}

TEST_CASE("blocked clients are served first blocked, first served", "[blocking][zset]") {
  BlockingServer t;
  const size_t second = t.Connect();
  const size_t third = t.Connect();
  const size_t writer = t.Connect();
  CHECK(t.Send({"bzpopmin", "z", "0"}).empty());
  CHECK(t.Send({"bzmpop", "0", "2", "y", "z", "max", "count", "1"}, second).empty());
  CHECK(t.Send({"bzpopmax", "z", "0"}, third).empty());
  CHECK(t.Send({"zadd", "z", "1", "a", "2", "b"}, writer) == "2");
  CHECK(t.Take(0) == "[\"z\", \"a\", \"1\"]");
  CHECK(t.Take(second) == "[\"z\", [[\"b\", \"2\"]]]");
  CHECK(t.Take(third).empty());
  CHECK(t.Blocked(third));
  CHECK(t.Send({"zadd", "z", "3", "c"}, writer) == "1");
  CHECK(t.Take(third) == "[\"z\", \"c\", \"3\"]");
}

TEST_CASE("a key of another type does not wake a zset waiter", "[blocking][zset]") {
  BlockingServer t;
  const size_t writer = t.Connect();
  CHECK(t.Send({"bzpopmin", "z", "0"}).empty());
  t.Send({"set", "z", "v"}, writer);
  t.Send({"del", "z"}, writer);
  CHECK(t.Blocked(0));
  t.Send({"zadd", "z", "1", "a"}, writer);
  CHECK(t.Take(0) == "[\"z\", \"a\", \"1\"]");
}

TEST_CASE("timeouts are fractional seconds; 0 waits forever", "[blocking][zset]") {
  BlockingServer t;
  const size_t forever = t.Connect();
  const size_t observer = t.Connect();
  CHECK(t.Send({"bzpopmin", "z", "0.25"}).empty());
  t.Send({"hello", "3"}, forever);
  CHECK(t.Send({"bzpopmin", "z", "0"}, forever).empty());
  CHECK(t.Send({"info", "clients"}, observer).find("clients_in_timeout_table:1") !=
        std::string::npos);
  t.Advance(249);
  CHECK(t.Blocked(0));
  t.Advance(1);
  CHECK_FALSE(t.Blocked(0));
  CHECK(t.Take(0) == "(nil-array)");
  CHECK(t.wakes(0) == 1);
  t.Advance(1'000'000'000);
  CHECK(t.Blocked(forever));
  CHECK(t.Send({"client", "unblock", std::to_string(t.client(forever).id)}, observer) == "1");
  CHECK(t.Take(forever) == "(nil)");  // RESP3's null
}

TEST_CASE("client unblock ends a wait with its timeout reply or an error", "[blocking]") {
  BlockingServer t;
  const size_t other = t.Connect();
  const std::string id = std::to_string(t.client(0).id);
  CHECK(t.Send({"client", "unblock", id}, other) == "0");  // not blocked
  CHECK(t.Send({"client", "unblock", id, "maybe"}, other) ==
        "(error) ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
  CHECK(t.Send({"client", "unblock", "x"}, other) ==
        "(error) ERR value is not an integer or out of range");
  CHECK(t.Send({"bzmpop", "0", "1", "z", "min"}).empty());
  CHECK(t.Send({"client", "unblock", id, "error"}, other) == "1");
  CHECK(t.Take(0) == "(error) UNBLOCKED client unblocked via CLIENT UNBLOCK");
  CHECK(t.Send({"bzpopmax", "z", "0"}).empty());
  CHECK(t.Send({"client", "unblock", id, "TIMEOUT"}, other) == "1");
  CHECK(t.Take(0) == "(nil-array)");
  CHECK(t.Send({"client", "unblock", "999"}, other) == "0");
}

TEST_CASE("a client that disconnects while blocked is forgotten", "[blocking][zset]") {
  BlockingServer t;
  const size_t gone = t.Connect();
  const size_t writer = t.Connect();
  CHECK(t.Send({"bzpopmin", "z", "0"}, gone).empty());
  CHECK(t.Send({"bzpopmin", "z", "5"}).empty());
  t.Disconnect(gone);
  CHECK(t.server().blocking().size() == 1);
  t.Send({"zadd", "z", "1", "a", "2", "b"}, writer);
  CHECK(t.Take(0) == "[\"z\", \"a\", \"1\"]");  // the first waiter left: the second is served
  CHECK(t.Send({"zcard", "z"}, writer) == "1");
  CHECK(t.server().blocking().size() == 0);
  CHECK(t.server().blocking().blocking_keys() == 0);
}

TEST_CASE("inside MULTI and scripts a blocking command never blocks", "[blocking][zset]") {
  BlockingServer t;
  t.Send({"multi"});
  t.Send({"bzpopmin", "z", "0"});
  t.Send({"bzmpop", "0", "1", "z", "min"});
  CHECK(t.Send({"exec"}) == "[(nil-array), (nil-array)]");
  CHECK(t.Send({"eval", "return redis.call('bzpopmin', KEYS[1], 0)", "1", "z"}) == "(nil)");
  CHECK_FALSE(t.Blocked(0));
}

TEST_CASE("waiters are served after the EXEC or script that wrote", "[blocking][zset]") {
  BlockingServer t;
  const size_t writer = t.Connect();
  CHECK(t.Send({"bzpopmin", "z", "0"}).empty());
  t.Send({"multi"}, writer);
  t.Send({"zadd", "z", "1", "a"}, writer);
  t.Send({"zcard", "z"}, writer);
  CHECK(t.Send({"exec"}, writer) == "[1, 1]");  // not popped inside EXEC
  CHECK(t.Take(0) == "[\"z\", \"a\", \"1\"]");
  CHECK(t.Send({"bzpopmin", "z", "0"}).empty());
  CHECK(t.Send({"eval", "redis.call('zadd', KEYS[1], 2, 'b') return redis.call('zcard', KEYS[1])",
                "1", "z"},
               writer) == "1");
  CHECK(t.Take(0) == "[\"z\", \"b\", \"2\"]");
}

TEST_CASE("an op applied from another region wakes a waiter", "[blocking][zset]") {
  BlockingServer a(1);
  BlockingServer b(2);
  CHECK(b.Send({"bzpopmin", "z", "0"}).empty());
  CHECK(a.Send({"zadd", "z", "1", "m"}) == "1");
  a.sink.DeliverTo(b.server().keyspace());
  CHECK(b.Take(0).empty());  // served at the end of the turn that applied it
  b.node().EndOfTurn();
  CHECK(b.Take(0) == "[\"z\", \"m\", \"1\"]");
  CHECK(b.Send({"exists", "z"}) == "0");
  b.sink.DeliverTo(a.server().keyspace());  // the pop reaches region a
  CHECK(a.Send({"exists", "z"}) == "0");
}

TEST_CASE("a served pop wakes the next waiter only when members remain", "[blocking][zset]") {
  BlockingServer t;
  std::vector<size_t> waiters;
  for (int i = 0; i < 5; ++i) {
    waiters.push_back(t.Connect());
    CHECK(t.Send({"bzpopmin", "z", "0"}, waiters.back()).empty());
  }
  t.Send({"zadd", "z", "1", "a", "2", "b", "3", "c"});
  CHECK(t.Take(waiters[0]) == "[\"z\", \"a\", \"1\"]");
  CHECK(t.Take(waiters[1]) == "[\"z\", \"b\", \"2\"]");
  CHECK(t.Take(waiters[2]) == "[\"z\", \"c\", \"3\"]");
  CHECK(t.Blocked(waiters[3]));
  CHECK(t.Blocked(waiters[4]));
  CHECK(t.server().blocking().size() == 2);
}

TEST_CASE("cluster mode: a waiter whose slot leaves this node is redirected", "[blocking]") {
  Config config;
  const std::string_view args[] = {"--cluster-enabled", "yes", "--port", "7001"};
  REQUIRE(config.ApplyArgs(args).ok());
  BlockingServer t(1, std::move(config));
  const size_t admin = t.Connect();
  const std::string slot = std::to_string(KeySlot("job"));
  REQUIRE(t.Send({"cluster", "addslots", slot}, admin) == "OK");
  REQUIRE(t.Send({"config", "set", "cluster-require-full-coverage", "no"}, admin) == "OK");
  CHECK(t.Send({"bzpopmin", "job", "0"}).empty());
  CHECK(t.Blocked(0));
  CHECK(t.Send({"cluster", "delslots", slot}, admin) == "OK");
  CHECK(t.Take(0) == "(error) CLUSTERDOWN Hash slot not served");
  CHECK_FALSE(t.Blocked(0));
}

}  // namespace lattice::server::testing
