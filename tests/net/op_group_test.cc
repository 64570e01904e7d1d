// A command's ops reach another region as one group (docs/replication.md, "Groups"): two real
// Nodes (memory storage, a transport the test routes by hand). A script, an EXEC and a RENAME in
// region a write many keys; region b, fed a's frames one at a time, shows none of the writes or
// all of them, never a part. A crash that tears the op log's last write inside a group loses the
// whole group at recovery, never part of it (that write was never acknowledged).

#include <algorithm>
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../server/server_test_util.h"
#include "lattice/common/rng.h"
#include "lattice/repl/memory_storage.h"
#include "node/node.h"
#include "store/keyspace.h"
#include "store/replication.h"

namespace lattice::server::testing {
namespace {

constexpr ReplicaId kA = 0xA;
constexpr ReplicaId kB = 0xB;

class Captured final : public repl::Transport {
 public:
  void Send(ReplicaId to, const repl::Message& message) override { sent.emplace_back(to, message); }
  void Close(ReplicaId) override {}
  std::vector<std::pair<ReplicaId, repl::Message>> sent;
};

struct Region {
  Region(ReplicaId id, const FakeClock& clock, const std::string& fsync = "always")
      : id(id), clock(clock), fsync(fsync) {
    Open();
  }
  void Open() {
    Config config;
    REQUIRE(
        config
            .LoadText("shard-id s\nregion r" + std::to_string(id) + "\nappendfsync " + fsync + "\n",
                      "test")
            .ok());
    node.reset();
    Result<std::unique_ptr<Node>> opened =
        Node::Open(NodeOptions{.config = std::move(config), .replica = id, .rng_seed = 1},
                   NodeSeams{.clock = clock, .storage = &storage, .transport = &transport});
    REQUIRE(opened.ok());
    node = std::move(*opened);
    client = std::make_unique<ClientState>();
    client->id = node->server().NextClientId();
    client->authenticated = true;
    node->server().RegisterClient(client.get());
  }
  std::string Run(std::vector<std::string> args) {
    std::vector<std::string_view> views(args.begin(), args.end());
    std::string out;
    ReplyBuilder reply(&out);
    node->server().Execute(*client, views, reply);
    REQUIRE(node->EndOfBatch());
    return out;
  }
  std::string Get(const std::string& key) {
    const int64_t now = clock.NowMs();
    const KeyRef found = node->server().keyspace().Find(0, key, now);
    return found ? ReadVisible(found, now).string : std::string("(nil)");
  }
  ~Region() {
    if (node && client) node->server().UnregisterClient(client.get());
  }

  ReplicaId id;
  const FakeClock& clock;
  std::string fsync;
  repl::MemoryStorage storage;
  Captured transport;
  std::unique_ptr<Node> node;
  std::unique_ptr<ClientState> client;
};

// Delivers what `from` sent to `to`, one message at a time; `each` runs after every message.
template <typename Each>
void Route(Region& from, Region& to, Each each) {
  std::vector<std::pair<ReplicaId, repl::Message>> sent = std::move(from.transport.sent);
  from.transport.sent.clear();
  for (auto& [peer, message] : sent) {
    if (peer != to.id) continue;
    to.node->replication()->OnMessage(from.id, std::move(message), to.clock.NowMs());
    REQUIRE(to.node->EndOfBatch());
    each();
  }
}

void Link(Region& a, Region& b) {
  a.node->replication()->OnConnected(b.id, a.clock.NowMs());
  b.node->replication()->OnConnected(a.id, b.clock.NowMs());
  Route(a, b, [] {});
  Route(b, a, [] {});
}

// The values of keys k0..k<n-1> at `region`: all equal (one value) or not.
std::vector<std::string> Values(Region& region, int n) {
  std::vector<std::string> values;
  for (int i = 0; i < n; ++i) values.push_back(region.Get("k" + std::to_string(i)));
  return values;
}
bool AllEqual(const std::vector<std::string>& values) {
  return std::all_of(values.begin(), values.end(),
                     [&](const std::string& v) { return v == values.front(); });
}

TEST_CASE("op groups: a script's, an EXEC's and a RENAME's writes reach a region all at once",
          "[group]") {
  constexpr int kKeys = 300;  // three frames of the engine's 128-op batches
  FakeClock clock;
  Region a(kA, clock);
  Region b(kB, clock);
  Link(a, b);
  std::vector<std::string> script = {
      "EVAL", "for i = 0, tonumber(ARGV[2]) - 1 do redis.call('SET', 'k' .. i, ARGV[1]) end", "0",
      "", std::to_string(kKeys)};
  int frames = 0;
  auto check = [&] {
    ++frames;
    const std::vector<std::string> values = Values(b, kKeys);
    INFO("frame " << frames << ": k0=" << values.front() << " k" << kKeys - 1 << "="
                  << values.back());
    REQUIRE(AllEqual(values));
  };
  for (const std::string value : {"one", "two"}) {
    script[3] = value;
    a.Run(script);
    frames = 0;
    Route(a, b, check);
    CHECK(frames >= 3);
    CHECK(b.Get("k0") == value);
  }
  a.Run({"MULTI"});
  for (int i = 0; i < kKeys; ++i) a.Run({"SET", "k" + std::to_string(i), "three"});
  a.Run({"EXEC"});
  Route(a, b, check);
  CHECK(b.Get("k" + std::to_string(kKeys - 1)) == "three");
  // RENAME is two ops (DEL of the source, SET of the target): b never shows both or neither.
  a.Run({"SET", "src", "x"});
  Route(a, b, [] {});
  a.Run({"RENAME", "src", "dst"});
  Route(a, b, [&] { CHECK((b.Get("src") == "(nil)") == (b.Get("dst") == "x")); });
  CHECK(b.Get("dst") == "x");
}

TEST_CASE("op groups: a write torn inside a group loses the whole group at recovery", "[group]") {
  constexpr int kKeys = 40;
  bool saw_all = false;
  bool saw_none = false;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    CAPTURE(seed);
    FakeClock clock;
    Region a(kA, clock, "no");
    a.Run({"SET", "k0", "old"});
    REQUIRE(a.node->replication()->Close().ok());  // durable: the crash keeps it
    a.Run({"EVAL", "for i = 0, 39 do redis.call('SET', 'k' .. i, 'new') end", "0"});
    // A large record after the group: a tear lands in the group (about a third of the unsynced
    // bytes) or after it.
    a.Run({"SET", "pad", std::string(4000, 'p')});
    Rng rng(seed);
    a.node.reset();  // (before the crash: nothing more is written)
    a.storage.CrashTorn(rng);
    a.Open();
    const std::vector<std::string> values = Values(a, kKeys);
    if (AllEqual(values)) {
      CHECK(values.front() == "new");
      saw_all = true;
    } else {
      // None of the script: k0 as before it, the rest missing.
      CHECK(values.front() == "old");
      for (int i = 1; i < kKeys; ++i) CHECK(values[static_cast<size_t>(i)] == "(nil)");
      saw_none = true;
    }
    // The keyspace resumes its dots after what it kept: a new write is accepted.
    CHECK(a.Run({"SET", "after", "1"}) == "+OK\r\n");
  }
  CHECK(saw_all);
  CHECK(saw_none);
}

// A client's replies may leave before the end of the turn only while every op is logged as
// appendfsync asks (Node::AllLogged; net/client_listener.cc then writes a batch of reads at
// once): never while an op of the turn is in the log's buffer or staged in an open group.
TEST_CASE("replies wait for the end of the turn only while an op is not logged", "[group][turn]") {
  FakeClock clock;
  const std::string fsync = GENERATE(as<std::string>(), "everysec", "always");
  CAPTURE(fsync);
  Region a(kA, clock, fsync);
  auto execute = [&](std::vector<std::string> args) {  // without ending the turn
    std::vector<std::string_view> views(args.begin(), args.end());
    std::string out;
    ReplyBuilder reply(&out);
    a.node->server().Execute(*a.client, views, reply);
    return out;
  };
  CHECK(a.node->AllLogged());
  CHECK(execute({"SET", "k", "v"}) == "+OK\r\n");
  CHECK_FALSE(a.node->AllLogged());  // the SET's op is in the log's buffer
  CHECK(execute({"GET", "k"}) == "$1\r\nv\r\n");
  CHECK_FALSE(a.node->AllLogged());  // a read of the same turn waits for it too
  REQUIRE(a.node->EndOfTurn());
  CHECK(a.node->AllLogged());
  CHECK(execute({"GET", "k"}) == "$1\r\nv\r\n");
  CHECK(a.node->AllLogged());           // a read logs nothing: its reply may leave at once
  a.node->replication()->BeginGroup();  // a script or an EXEC still running
  CHECK(execute({"SET", "k", "w"}) == "+OK\r\n");
  CHECK_FALSE(a.node->AllLogged());  // staged in the group: the log's buffer is still empty
  a.node->replication()->EndGroup();
  CHECK_FALSE(a.node->AllLogged());
  REQUIRE(a.node->EndOfTurn());
  CHECK(a.node->AllLogged());
}

}  // namespace
}  // namespace lattice::server::testing
