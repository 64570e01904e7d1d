// Slot migration's state machine on real Servers without sockets: each node is a TestServer
// with a Cluster, and a FakeBus carries the CLUSTER commands between them, delivering, holding
// or failing each one as the test decides. Time is the nodes' FakeClocks, moved by hand.
//
// Covered: the states of a successful export and import and what each side keeps; imported keys
// hidden from DBSIZE/KEYS/SCAN/RANDOMKEY until the handoff; cancel, a failed link, a silent
// target (repl-timeout) and a pause that outlasts its limit, each leaving the source owning its
// keys and the target holding none. Also the routing of a transaction (MULTI/EXEC).

#include <catch2/catch.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/cluster.h"
#include "server/server_test_util.h"

namespace lattice::server {
namespace {

using testing::TestServer;

struct Message {
  std::string ip;
  int port = 0;
  std::vector<std::string> args;
  ClusterBus::ReplyHandler done;
  int from = 0;  // the sending node's port
};

class FakeBus final : public ClusterBus {
 public:
  void Send(const std::string& ip, int port, std::string_view /*channel*/,
            std::vector<std::string> args, ReplyHandler done) override {
    queue.push_back({ip, port, std::move(args), std::move(done)});
  }
  std::deque<Message> queue;
};

// One node's view of the shared FakeBus: its messages carry the sender's port.
class NodeBus final : public ClusterBus {
 public:
  NodeBus(FakeBus& shared, int from) : shared_(shared), from_(from) {}
  void Send(const std::string& ip, int port, std::string_view /*channel*/,
            std::vector<std::string> args, ReplyHandler done) override {
    shared_.queue.push_back({ip, port, std::move(args), std::move(done), from_});
  }

 private:
  FakeBus& shared_;
  int from_;
};

// What the bus does with one message.
enum class Fate { kDeliver, kHold, kFail, kLoseReply };

// One node of the test cluster: a TestServer whose Node runs in cluster mode on `bus`.
struct TestNode {
  TestNode(const std::string& shard, int port, FakeBus& shared, const std::string& region = "r0")
      : bus(std::make_unique<NodeBus>(shared, port)) {
    Config config;
    const std::string port_text = std::to_string(port);
    const std::string_view args[] = {"--cluster-enabled", "yes", "--port",   port_text,
                                     "--shard-id",        shard, "--region", region};
    REQUIRE(config.ApplyArgs(args).ok());
    server =
        std::make_unique<TestServer>(std::move(config), static_cast<ReplicaId>(port),
                                     std::string(40, static_cast<char>('a' + port % 6)), bus.get());
    cluster = server->node().cluster();
    this->port = port;
  }
  std::string Run(std::vector<std::string> args) { return server->Run(std::move(args)); }
  RespValue RunValue(std::vector<std::string> args) { return server->RunValue(std::move(args)); }
  Keyspace& keyspace() { return server->server().keyspace(); }

  std::unique_ptr<NodeBus> bus;  // outlives the server
  std::unique_ptr<TestServer> server;
  Cluster* cluster = nullptr;
  int port = 0;
};

// Shard A (port 7001) and shard B (port 7002), one region each; A owns slots 0-8191. With
// `second_region`, shard A also has a node in region r1 (port 7003). The regions of a shard do
// not replicate here: the tests write to the coordinator only.
class Net {
 public:
  explicit Net(bool second_region = false, bool second_target = false)
      : a("A", 7001, bus), b("B", 7002, bus) {
    std::vector<std::string> create{"CLUSTER", "CREATE", "SHARD", "A", "127.0.0.1:7001"};
    if (second_region) {
      a1 = std::make_unique<TestNode>("A", 7003, bus, "r1");
      create.push_back("127.0.0.1:7003");
    }
    for (const char* arg : {"SHARD", "B", "127.0.0.1:7002"}) create.push_back(arg);
    if (second_target) {
      b1 = std::make_unique<TestNode>("B", 7004, bus, "r1");
      create.push_back("127.0.0.1:7004");
    }
    REQUIRE(a.Run(create) == "OK");
    for (int i = 0; i < 20 && !Agreed(); ++i) Step();
    REQUIRE(Agreed());
  }

  std::vector<TestNode*> Nodes() {
    std::vector<TestNode*> nodes{&a, &b};
    if (a1 != nullptr) nodes.push_back(a1.get());
    if (b1 != nullptr) nodes.push_back(b1.get());
    return nodes;
  }

  bool Agreed() {
    for (TestNode* node : Nodes()) {
      if (node->cluster->topology().Encode() != a.cluster->topology().Encode()) return false;
    }
    return a.cluster->topology().FindNode(b.cluster->myid()) != nullptr;
  }

  TestNode& ByPort(int port) {
    for (TestNode* node : Nodes()) {
      if (node->port == port) return *node;
    }
    FAIL("no node on port " << port);
    return a;
  }

  // Delivers what is queued (and what that sends in turn), at most `max` messages; `fate`
  // decides per message. Held messages stay queued, in order.
  void Pump(const std::function<Fate(const Message&)>& fate = nullptr, size_t max = 10'000) {
    std::deque<Message> held;
    for (size_t n = 0; n < max && !bus.queue.empty(); ++n) {
      Message message = std::move(bus.queue.front());
      bus.queue.pop_front();
      const Fate f = fate ? fate(message) : Fate::kDeliver;
      if (f == Fate::kHold) {
        held.push_back(std::move(message));
        continue;
      }
      if (f == Fate::kFail) {
        message.done(Unexpected(std::string("cluster bus link failed: test")));
        continue;
      }
      RespValue reply = ByPort(message.port).RunValue(message.args);
      if (f == Fate::kLoseReply) {
        message.done(Unexpected(std::string("cluster bus link failed: test")));
        continue;
      }
      message.done(std::move(reply));
    }
    for (Message& message : held) bus.queue.push_front(std::move(message));
  }

  // Every queued message fails, as when the links break (handlers see an error).
  void FailQueued() {
    Pump([](const Message&) { return Fate::kFail; });
  }

  // One round: both nodes tick at the same time, then the bus delivers.
  void Step(int64_t advance_ms = 10, const std::function<Fate(const Message&)>& fate = nullptr) {
    for (TestNode* node : Nodes()) {
      node->server->clock().now_us += advance_ms * 1000;
      node->server->node().Tick();
      node->server->node().EndOfBatch();
    }
    Pump(fate);
  }

  // Steps until `done` holds, at most `max_steps` times.
  bool StepUntil(const std::function<bool()>& done, int max_steps = 500,
                 const std::function<Fate(const Message&)>& fate = nullptr) {
    for (int i = 0; i < max_steps; ++i) {
      if (done()) return true;
      Step(10, fate);
    }
    return done();
  }

  FakeBus bus;
  TestNode a;
  TestNode b;
  std::unique_ptr<TestNode> a1;
  std::unique_ptr<TestNode> b1;  // shard B's node in region r1 (second_target)
};

bool IsCommand(const Message& message, std::string_view sub) {
  return message.args.size() > 2 && message.args[1] == "SYNCSLOTS" && message.args[2] == sub;
}

// A bus policy: `fate` for SYNCSLOTS `sub`, every other message delivered.
std::function<Fate(const Message&)> Only(std::string sub, Fate fate) {
  return [sub, fate](const Message& m) { return IsCommand(m, sub) ? fate : Fate::kDeliver; };
}

const MigrationJob* Job(const TestNode& node, bool export_side) {
  for (const MigrationJob& job : node.cluster->jobs()) {
    if (job.export_side == export_side) return &job;
  }
  return nullptr;
}

std::string StateOf(const TestNode& node, bool export_side) {
  const MigrationJob* job = Job(node, export_side);
  return job == nullptr ? "" : std::string(MigrationStateName(job->state));
}

// `n` keys of every kind in slots 0..99 (owned by A), written on `node`.
std::vector<std::string> Load(TestNode& node, int n) {
  std::vector<std::string> keys;
  for (int i = 0; static_cast<int>(keys.size()) < n; ++i) {
    const std::string key = "k:" + std::to_string(i);
    if (KeySlot(key) > 99) continue;
    switch (keys.size() % 4) {
      case 0:
        REQUIRE(node.Run({"SET", key, "v"}) == "OK");
        break;
      case 1:
        REQUIRE(node.Run({"HSET", key, "f", "v"}) == "1");
        break;
      case 2:
        REQUIRE(node.Run({"SADD", key, "m"}) == "1");
        break;
      default:
        REQUIRE(node.Run({"INCRBY", key, "5"}) == "5");
        break;
    }
    keys.push_back(key);
  }
  return keys;
}

uint64_t KeysIn(TestNode& node, uint16_t first, uint16_t last) {
  uint64_t n = 0;
  for (uint32_t slot = first; slot <= last; ++slot) {
    n += node.keyspace().CountKeysInSlot(0, static_cast<uint16_t>(slot));
  }
  return n;
}

std::string Migrate(Net& net) {
  return net.a.Run(
      {"CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "0", "99", "NODE", net.b.cluster->myid()});
}

// Loads `n` keys into A's slots 0-99 and starts their migration to B.
std::vector<std::string> LoadAndMigrate(Net& net, int n) {
  std::vector<std::string> keys = Load(net.a, n);
  REQUIRE(Migrate(net) == "OK");
  return keys;
}

TEST_CASE("Migration: states, handoff, and what each side keeps", "[cluster][migration]") {
  Net net;
  const std::vector<std::string> keys = LoadAndMigrate(net, 300);
  CHECK(StateOf(net.a, true) == "connecting");
  // The export walks its states in order; FINISH is held to look at the moment before handoff.
  std::vector<std::string> seen{"connecting"};
  const auto hold_finish = Only("FINISH", Fate::kHold);
  REQUIRE(net.StepUntil(
      [&] {
        const std::string state = StateOf(net.a, true);
        if (state != seen.back()) seen.push_back(state);
        return state == "failover-granted";
      },
      500, hold_finish));
  const std::vector<std::string> expected{
      "connecting",      "snapshotting",      "replicating",     "waiting-to-pause",
      "failover-paused", "waiting-to-finish", "failover-granted"};
  // Some states may pass within one step; the order never changes.
  size_t at = 0;
  for (const std::string& state : seen) {
    while (at < expected.size() && expected[at] != state) ++at;
    CHECK(at < expected.size());
  }
  CHECK(StateOf(net.b, false) == "failover-requested");

  // Before the handoff: the target holds every key but lists none (Valkey hides importing
  // slots), and redirects them to the source; the source still serves them, writes paused.
  CHECK(KeysIn(net.b, 0, 99) == keys.size());
  CHECK(net.b.Run({"DBSIZE"}) == "0");
  CHECK(net.b.Run({"KEYS", "*"}) == "[]");
  CHECK(net.b.Run({"SCAN", "0", "COUNT", "1000"}) == "[\"0\", []]");
  CHECK(net.b.Run({"RANDOMKEY"}) == "(nil)");
  CHECK(net.b.Run({"INFO", "keyspace"}).find("db0:keys=") == std::string::npos);
  CHECK(net.b.Run({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(KeySlot(keys[0]))}) != "0");
  CHECK(net.b.Run({"GET", keys[0]}).starts_with("(error) MOVED"));
  CHECK(net.a.Run({"GET", keys[0]}) == "\"v\"");
  CHECK(net.a.Run({"DBSIZE"}) == std::to_string(keys.size()));

  // Handoff.
  REQUIRE(net.StepUntil([&] { return StateOf(net.a, true) == "success"; }));
  CHECK(StateOf(net.b, false) == "success");
  CHECK(net.b.Run({"DBSIZE"}) == std::to_string(keys.size()));
  CHECK(net.b.Run({"GET", keys[0]}) == "\"v\"");
  CHECK(net.b.Run({"GET", keys[3]}) == "\"5\"");
  CHECK(net.b.Run({"INFO", "keyspace"}).find("db0:keys=" + std::to_string(keys.size())) !=
        std::string::npos);
  CHECK(net.b.Run({"KEYS", "*"}).find(keys[0]) != std::string::npos);
  CHECK(net.a.Run({"GET", keys[0]}).starts_with("(error) MOVED"));
  // The source dropped the keys; their memory goes a bounded part per tick.
  CHECK(KeysIn(net.a, 0, 99) == 0);
  CHECK(net.a.Run({"DBSIZE"}) == "0");
  REQUIRE(net.StepUntil([&] { return net.a.keyspace().dropped_pending() == 0; }));
  CHECK(net.a.cluster->stats().last_migration_keys == keys.size());
}

TEST_CASE("Migration: writes during the export reach the target", "[cluster][migration]") {
  Net net;
  const std::vector<std::string> keys = LoadAndMigrate(net, 50);
  net.Step();
  // Written while the snapshot is on its way: streamed as ops.
  CHECK(net.a.Run({"SET", keys[0], "changed"}) == "OK");
  CHECK(net.a.Run({"DEL", keys[1]}) == "1");
  CHECK(net.a.Run({"INCRBY", keys[3], "10"}) == "15");
  REQUIRE(net.StepUntil([&] { return StateOf(net.a, true) == "success"; }));
  CHECK(net.b.Run({"GET", keys[0]}) == "\"changed\"");
  CHECK(net.b.Run({"EXISTS", keys[1]}) == "0");
  CHECK(net.b.Run({"GET", keys[3]}) == "\"15\"");
  CHECK(net.b.Run({"DBSIZE"}) == "49");
}

// After a failed or cancelled export: the source owns and serves every key, the target holds
// none, and nothing stays hidden or paused.
void CheckSourceKeeps(Net& net, const std::vector<std::string>& keys) {
  CHECK(KeysIn(net.a, 0, 99) == keys.size());
  CHECK(net.a.Run({"SET", keys[0], "after"}) == "OK");
  CHECK(KeysIn(net.b, 0, 99) == 0);
  CHECK(net.b.Run({"GET", keys[0]}).starts_with("(error) MOVED"));
  CHECK(net.a.cluster->topology().owner(50).shard == "A");
  CHECK(net.b.cluster->topology().owner(50).shard == "A");
  CHECK(net.a.Run({"CLUSTER", "CANCELSLOTMIGRATIONS"}) == "(error) ERR No migrations ongoing");
}

TEST_CASE("Migration: cancel mid-snapshot", "[cluster][migration]") {
  Net net;
  const std::vector<std::string> keys = LoadAndMigrate(net, 5000);  // more than one chunk
  net.Step();
  net.Step();
  REQUIRE(StateOf(net.a, true) == "snapshotting");
  CHECK(KeysIn(net.b, 0, 99) > 0);
  CHECK(net.a.Run({"CLUSTER", "CANCELSLOTMIGRATIONS"}) == "OK");
  CHECK(StateOf(net.a, true) == "cancelled");
  net.Step();  // the target hears ABORT
  CHECK(StateOf(net.b, false) == "failed");
  CheckSourceKeeps(net, keys);
}

TEST_CASE("Migration: a retry after a cancel moves every key", "[cluster][migration]") {
  Net net;
  const std::vector<std::string> keys = LoadAndMigrate(net, 5000);
  net.Step();
  net.Step();
  REQUIRE(KeysIn(net.b, 0, 99) > 0);  // some chunks arrived, then the target dropped them
  REQUIRE(net.a.Run({"CLUSTER", "CANCELSLOTMIGRATIONS"}) == "OK");
  net.Step();
  REQUIRE(KeysIn(net.b, 0, 99) == 0);
  REQUIRE(Migrate(net) == "OK");
  REQUIRE(net.StepUntil([&] { return StateOf(net.a, true) == "success"; }));
  CHECK(KeysIn(net.b, 0, 99) == keys.size());
  CHECK(net.b.Run({"DBSIZE"}) == std::to_string(keys.size()));
}

TEST_CASE("Migration: a failed link to the target", "[cluster][migration]") {
  Net net;
  const std::vector<std::string> keys = LoadAndMigrate(net, 100);
  const auto fail_drained = Only("DRAINED", Fate::kFail);
  REQUIRE(net.StepUntil([&] { return Job(net.a, true)->terminal(); }, 500, fail_drained));
  CHECK(StateOf(net.a, true) == "failed");
  CHECK(Job(net.a, true)->message.find("failed on DRAINED") != std::string::npos);
  // The source was paused: it is not any more.
  CHECK(net.a.Run({"SET", keys[1], "x"}) == "OK");
  net.Step();
  CHECK(StateOf(net.b, false) == "failed");
  CheckSourceKeeps(net, keys);
}

TEST_CASE("Migration: ESTABLISH refused", "[cluster][migration]") {
  Net net;
  const std::vector<std::string> keys = Load(net.a, 10);
  // The target already imports the slots (a stale job of another source would do the same).
  REQUIRE(Migrate(net) == "OK");
  net.Pump([](const Message&) { return Fate::kDeliver; }, 1);  // ESTABLISH only
  REQUIRE(net.a.Run({"CLUSTER", "CANCELSLOTMIGRATIONS"}) == "OK");
  net.FailQueued();  // ABORT lost: the target still imports
  REQUIRE(StateOf(net.b, false) == "receiving-snapshot");
  REQUIRE(Migrate(net) == "OK");
  REQUIRE(net.StepUntil([&] { return Job(net.a, true)->terminal(); }));
  CHECK(StateOf(net.a, true) == "failed");
  CHECK(Job(net.a, true)->message ==
        "Received error during handshake to target: ERR Slot is already being imported on the "
        "target by a different migration");
}

TEST_CASE("Migration: a silent target times out (repl-timeout)", "[cluster][migration]") {
  Net net;
  const std::vector<std::string> keys = Load(net.a, 100);
  REQUIRE(net.a.Run({"CONFIG", "SET", "repl-timeout", "2"}) == "OK");
  REQUIRE(net.b.Run({"CONFIG", "SET", "repl-timeout", "2"}) == "OK");
  REQUIRE(Migrate(net) == "OK");
  net.Step();
  REQUIRE(StateOf(net.b, false) == "receiving-snapshot");
  // From now on nothing is delivered either way.
  auto hold_all = [](const Message&) { return Fate::kHold; };
  for (int i = 0; i < 19; ++i) net.Step(100, hold_all);
  CHECK_FALSE(Job(net.a, true)->terminal());
  for (int i = 0; i < 3; ++i) net.Step(100, hold_all);
  CHECK(StateOf(net.a, true) == "failed");
  CHECK(Job(net.a, true)->message == "Timed out waiting for the target");
  CHECK(StateOf(net.b, false) == "failed");
  CHECK(Job(net.b, false)->message == "Timed out waiting for the source");
  net.FailQueued();
  CheckSourceKeeps(net, keys);
}

TEST_CASE("Migration: the write pause ends after 10 s without a handoff", "[cluster][migration]") {
  Net net;
  const std::vector<std::string> keys = LoadAndMigrate(net, 100);
  const auto hold_drained = Only("DRAINED", Fate::kHold);
  REQUIRE(net.StepUntil([&] { return StateOf(net.a, true) == "waiting-to-finish"; }, 500,
                        hold_drained));
  // Writes to the slots are held (the client is parked with its command), others go on.
  ClientState& client = net.a.server->client();
  const std::string_view set[] = {"SET", keys[0], "held"};
  std::string out;
  ReplyBuilder reply(&out);
  net.a.server->server().Execute(client, set, reply);
  CHECK(out.empty());  // no reply yet: the network layer retries the command
  CHECK_FALSE(client.paused_command.empty());
  client.paused_command.clear();
  CHECK(net.a.Run({"SET", "bar", "x"}) == "OK");  // slot 5061: A's, not migrating
  for (int i = 0; i < 99; ++i) net.Step(100, hold_drained);
  CHECK(StateOf(net.a, true) == "waiting-to-finish");
  net.Step(200, hold_drained);
  CHECK(StateOf(net.a, true) == "failed");
  CHECK(Job(net.a, true)->message == "Timed out before streaming completed");
  net.FailQueued();
  net.Step();
  CheckSourceKeeps(net, keys);
}

// The known risk of an active-active source: a source node that misses the handoff. Its pause
// times out, and it must not resume writes to slots the target may own.
TEST_CASE("Migration: a source region that misses the handoff refuses writes until confirmed",
          "[cluster][migration]") {
  Net net(/*second_region=*/true);
  TestNode& a1 = *net.a1;
  const std::vector<std::string> keys = LoadAndMigrate(net, 20);
  // Everything reaches a1 until it is paused; after that, nothing reaches it or leaves it.
  bool cut = false;
  auto cut_a1 = [&](const Message& m) {
    if (IsCommand(m, "PAUSE") && m.port == 7003) {
      cut = true;
      return Fate::kDeliver;
    }
    return cut && (m.port == 7003 || m.args[1] == "LATTICE-GOSSIP") ? Fate::kHold : Fate::kDeliver;
  };
  REQUIRE(net.StepUntil([&] { return StateOf(net.a, true) == "success"; }, 500, cut_a1));
  CHECK(net.b.cluster->topology().owner(5).shard == "B");
  CHECK(a1.cluster->topology().owner(5).shard == "A");  // a1 has not heard
  // Held while paused (no reply yet), then refused once the pause timed out.
  std::string out;
  ReplyBuilder reply(&out);
  const std::string_view set[] = {"SET", keys[0], "lost?"};
  a1.server->server().Execute(a1.server->client(), set, reply);
  CHECK(out.empty());
  a1.server->client().paused_command.clear();
  for (int i = 0; i < 101; ++i) net.Step(100, cut_a1);
  CHECK(a1.cluster->unconfirmed()[KeySlot(keys[0])]);
  CHECK(a1.Run({"SET", keys[0], "lost?"}).starts_with("(error) TRYAGAIN"));
  CHECK(a1.Run({"GET", keys[0]}) == "(nil)");  // reads go on (a1 never had the key)
  CHECK(a1.Run({"SET", "bar", "x"}) == "OK");  // other slots go on
  // a1 hears the target shard: the slots moved; writes get MOVED.
  net.FailQueued();
  REQUIRE(net.StepUntil([&] { return a1.cluster->topology().owner(5).shard == "B"; }));
  CHECK_FALSE(a1.cluster->unconfirmed()[KeySlot(keys[0])]);
  CHECK(a1.Run({"SET", keys[0], "x"}).starts_with("(error) MOVED"));
  CHECK(net.b.Run({"GET", keys[0]}) == "\"v\"");
}

TEST_CASE("Migration: FINISH granted but unanswered leaves the source unconfirmed",
          "[cluster][migration]") {
  SECTION("the target took the slots: the source learns it and redirects") {
    Net net;
    const std::vector<std::string> keys = LoadAndMigrate(net, 20);
    auto lose_finish = [&](const Message& m) {
      if (IsCommand(m, "FINISH")) return Fate::kLoseReply;
      return m.args[1] == "LATTICE-GOSSIP" ? Fate::kHold : Fate::kDeliver;
    };
    REQUIRE(net.StepUntil([&] { return Job(net.a, true)->terminal(); }, 500, lose_finish));
    CHECK(StateOf(net.a, true) == "failed");
    CHECK(Job(net.a, true)->message.starts_with("Unpaused before migration completed"));
    CHECK(StateOf(net.b, false) == "success");
    CHECK(net.a.Run({"SET", keys[0], "x"}).starts_with("(error) TRYAGAIN"));
    net.FailQueued();
    REQUIRE(net.StepUntil([&] { return net.a.cluster->topology().owner(5).shard == "B"; }));
    CHECK(net.a.Run({"SET", keys[0], "x"}).starts_with("(error) MOVED"));
  }
  SECTION("the target never got FINISH: confirmed, the source writes again") {
    Net net;
    const std::vector<std::string> keys = LoadAndMigrate(net, 20);
    REQUIRE(net.StepUntil([&] { return Job(net.a, true)->terminal(); }, 500,
                          Only("FINISH", Fate::kFail)));
    CHECK(StateOf(net.a, true) == "failed");
    CHECK(net.a.Run({"SET", keys[0], "x"}).starts_with("(error) TRYAGAIN"));
    // The ABORT that followed came after DRAINED: the target keeps the keys until no node of
    // its shard can have taken FINISH (it is the only one), then drops them.
    net.Step();
    CHECK(StateOf(net.b, false) == "cleaning-up");
    // Writes resume once no target can take FINISH any more (15 s after the pause began) and
    // every target node has answered.
    REQUIRE(net.StepUntil([&] { return net.a.Run({"SET", keys[0], "x"}) == "OK"; }, 2000));
    REQUIRE(net.StepUntil([&] { return StateOf(net.b, false) == "failed"; }, 3000));
    CheckSourceKeeps(net, keys);
  }
}

// Found by reading Cluster::Confirm: the source's FINISH reached b, which took the slots, but the
// reply was lost, and b is cut off afterwards; the FINISH to b1 is delayed until after the
// source's ABORT. b1 never took the slots and says so when asked. One target's answer is not
// enough: writes accepted on it would be dropped once b's epoch reaches the source. The source
// waits until no target can take FINISH any more (its pause began 10 s + 5 s ago) and then for
// an answer from every node of the target shard.
TEST_CASE("Migration: an unconfirmed source waits for every target node's answer",
          "[cluster][migration]") {
  Net net(/*second_region=*/false, /*second_target=*/true);
  const std::vector<std::string> keys = LoadAndMigrate(net, 20);
  bool b_cut = false;
  auto policy = [&](const Message& m) {
    if (IsCommand(m, "FINISH") && m.port == 7002) {
      b_cut = true;
      return Fate::kLoseReply;  // b takes the slots; the source never hears
    }
    if (IsCommand(m, "FINISH") && m.port == 7004) return Fate::kHold;  // delayed
    if (b_cut && (m.port == 7002 || m.from == 7002)) return Fate::kHold;
    return Fate::kDeliver;
  };
  REQUIRE(net.StepUntil([&] { return Job(net.a, true)->terminal(); }, 500, policy));
  CHECK(StateOf(net.b, false) == "success");
  CHECK(net.a.Run({"SET", keys[0], "x"}).starts_with("(error) TRYAGAIN"));
  // Twenty seconds of gossip with b1, which answers that the source still owns the slots.
  for (int i = 0; i < 200; ++i) {
    net.Step(100, policy);
    INFO("step " << i);
    REQUIRE(net.a.cluster->topology().owner(5).shard == "A");
    REQUIRE(net.a.Run({"SET", keys[0], "x"}).starts_with("(error) TRYAGAIN"));
  }
  // b is heard again: the slots moved, and nothing was accepted meanwhile.
  net.FailQueued();
  REQUIRE(net.StepUntil([&] { return net.a.cluster->topology().owner(5).shard == "B"; }));
  CHECK(net.a.Run({"SET", keys[0], "x"}).starts_with("(error) MOVED"));
  CHECK(net.b.Run({"GET", keys[0]}) == "\"v\"");
}

TEST_CASE("Migration: a target refuses a FINISH that comes long after DRAINED",
          "[cluster][migration]") {
  Net net;
  const std::vector<std::string> keys = LoadAndMigrate(net, 20);
  REQUIRE(net.StepUntil([&] { return StateOf(net.a, true) == "failover-granted"; }, 500,
                        Only("FINISH", Fate::kHold)));
  net.b.server->clock().now_us += 6'000'000;  // the FINISH was 6 s on its way
  REQUIRE(net.StepUntil([&] { return Job(net.a, true)->terminal(); }));
  CHECK(Job(net.b, false)->message == "FINISH came too late after DRAINED");
  // Writes resume once no target can take FINISH any more (15 s after the pause began) and
  // every target node has answered.
  REQUIRE(net.StepUntil([&] { return net.a.Run({"SET", keys[0], "x"}) == "OK"; }, 2000));
  REQUIRE(net.StepUntil([&] { return StateOf(net.b, false) == "failed"; }, 3000));
  CheckSourceKeeps(net, keys);
}

// Every op a keyspace makes, as its Replication would ship it to the shard's other regions.
class OpCapture final : public KeyspaceObserver {
 public:
  explicit OpCapture(Keyspace& keyspace) : keyspace_(keyspace) { keyspace_.AddObserver(this); }
  ~OpCapture() override { keyspace_.RemoveObserver(this); }
  void OnLocalOp(int db, std::string_view key, const crdt::KeyOp& op) override {
    ops.push_back(
        repl::OpRecord{.db = static_cast<uint32_t>(db), .key = std::string(key), .op = op});
  }
  std::vector<repl::OpRecord> ops;

 private:
  Keyspace& keyspace_;
};

// Simulator seeds 23 and 41 (--shards 2). 23: a source region's write made before the handoff
// pause was streamed to the target, but reached another region of the source shard only after
// that region had dropped the slot (a partition between them). Applied there, the key came back
// in a shard that no longer owns it, and stayed: the regions of the source shard diverged. 41: a
// target region's snapshot carried its import in progress (hidden slots) to a peer region whose
// own import never started; the import failed, and the peer kept the keys. A peer's op or
// snapshot key in a slot another shard owns, not imported here, is applied, then dropped again;
// other slots are untouched.
TEST_CASE("Migration: a peer's op or snapshot key in another shard's slot is dropped",
          "[cluster][migration]") {
  Net net(/*second_region=*/true);
  TestNode& a1 = *net.a1;
  OpCapture capture(net.a.keyspace());
  const std::vector<std::string> keys = LoadAndMigrate(net, 20);
  REQUIRE(net.StepUntil([&] { return StateOf(net.a, true) == "success"; }));
  REQUIRE(net.StepUntil([&] { return a1.cluster->topology().owner(5).shard == "B"; }));
  CHECK(net.a.Run({"SET", "bar", "x"}) == "OK");  // slot 5061: still A's
  const std::vector<repl::OpRecord> late = std::move(capture.ops);
  REQUIRE(late.size() == keys.size() + 1);
  for (const repl::OpRecord& op : late) {  // as Replication::Apply does
    a1.keyspace().ApplyRemote(static_cast<int>(op.db), op.key, op.op);
  }
  CHECK(KeysIn(a1, 0, 99) == 0);
  CHECK(a1.Run({"GET", "bar"}) == "\"x\"");
  // A snapshot from a peer that still held the key (as Replication::InstallSnapshot joins it).
  const int64_t now_ms = net.b.server->clock().now_us / 1000;
  const KeyRef state = net.b.keyspace().Find(0, keys[0], now_ms);
  REQUIRE(state != nullptr);
  const crdt::Key copy = state.ToKey();
  a1.keyspace().JoinState(0, keys[0], copy, net.b.keyspace().context());
  a1.keyspace().NotifyKeyChanged(0, keys[0]);
  CHECK(KeysIn(a1, 0, 99) == 0);
  CHECK(a1.Run({"GET", keys[0]}).starts_with("(error) MOVED"));
  CHECK(net.b.Run({"GET", keys[0]}) == "\"v\"");
}

// Simulator seed 14 (--shards 2 --regions 2): a source region installed a replication snapshot
// from the shard's other region in the middle of an export. The snapshot brought that region's
// writes into keys being exported, but not as ops, so the stream never carried them, and the
// handoff's drain check (which reads this node's context) passed: the target took the slots
// without them, and acknowledged writes were lost. Here r1 (a1) increments one key and deletes
// another; the coordinator installs r1's snapshot once its pause waits for r1's ops, as
// Replication::InstallSnapshot joins it.
TEST_CASE("Migration: keys a replication snapshot changes during the export reach the target",
          "[cluster][migration]") {
  Net net(/*second_region=*/true);
  TestNode& a1 = *net.a1;
  const std::vector<std::string> keys = Load(net.a, 20);
  // r1 holds what the coordinator holds (as replication would give it), then writes.
  const int64_t now_ms = net.a.server->clock().now_us / 1000;
  for (const std::string& key : keys) {
    a1.keyspace().JoinState(0, key, net.a.keyspace().Find(0, key, now_ms).ToKey(),
                            net.a.keyspace().context());
  }
  a1.keyspace().context().Join(net.a.keyspace().context());
  REQUIRE(a1.Run({"INCRBY", keys[3], "7"}) == "12");
  REQUIRE(a1.Run({"DEL", keys[2]}) == "1");
  REQUIRE(net.a.Run({"SET", "bar", "x"}) == "OK");  // slot 5061: not migrated
  const crdt::Dot bar{net.a.keyspace().replica(), net.a.keyspace().next_seq() - 1};
  REQUIRE(Migrate(net) == "OK");
  // The pause waits until the coordinator has r1's ops, which only the snapshot brings.
  REQUIRE(net.StepUntil([&] { return StateOf(net.a, true) == "failover-paused"; }));
  net.Step();
  CHECK(StateOf(net.a, true) == "failover-paused");
  Keyspace& ks = net.a.keyspace();
  const crdt::DotContext& theirs = a1.keyspace().context();
  for (const std::string& key : keys) {
    const KeyRef state = a1.keyspace().Find(0, key, now_ms);
    ks.JoinState(0, key, state == nullptr ? crdt::Key() : state.ToKey(), theirs);
    ks.NotifyKeyChanged(0, key);
  }
  ks.context().Join(theirs);
  CHECK(net.a.Run({"GET", keys[3]}) == "\"12\"");
  REQUIRE(net.StepUntil([&] { return StateOf(net.a, true) == "success"; }));
  CHECK(StateOf(net.b, false) == "success");
  CHECK(net.b.Run({"GET", keys[3]}) == "\"12\"");
  CHECK(net.b.Run({"EXISTS", keys[2]}) == "0");
  CHECK(net.b.Run({"DBSIZE"}) == std::to_string(keys.size() - 1));
  // Of the source's context, only the dots of the migrated keys joined the target's.
  CHECK(net.a.keyspace().context().Contains(bar));
  CHECK(!net.b.keyspace().context().Contains(bar));
}

// Simulator seed 12 (--shards 2, three regions): the source's FINISH reached two of the target
// shard's nodes but not the third (r1), and the source, not knowing, sent ABORT to all. r1
// dropped what it had imported; the others took the slots, and when r1 learned by gossip that
// its shard owned them it held none of their keys, for good (its context covered their dots).
// A target that fails after DRAINED now keeps the keys until it knows: here it learns that b
// took the slots. In the second part no FINISH went out at all, and b drops them once b1 has
// answered a gossip sent after no node could take FINISH any more.
TEST_CASE("Migration: a target that fails after DRAINED keeps the keys until the outcome is known",
          "[cluster][migration]") {
  const auto is_to = [](const Message& m, std::string_view sub, int port) {
    return IsCommand(m, sub) && m.port == port;
  };
  SECTION("another target took FINISH") {
    Net net(/*second_region=*/false, /*second_target=*/true);
    TestNode& b1 = *net.b1;
    const std::vector<std::string> keys = LoadAndMigrate(net, 20);
    // FINISH to b1 fails; gossip is held meanwhile, so b1 hears of the handoff only afterwards.
    bool aborted = false;
    REQUIRE(net.StepUntil([&] { return aborted && StateOf(b1, false) == "cleaning-up"; }, 500,
                          [&](const Message& m) {
                            if (is_to(m, "FINISH", 7004)) return Fate::kFail;
                            if (IsCommand(m, "ABORT")) aborted = true;
                            if (m.args[1] == "LATTICE-GOSSIP") return Fate::kHold;
                            return Fate::kDeliver;
                          }));
    CHECK(StateOf(net.b, false) == "success");
    CHECK(KeysIn(b1, 0, 99) == keys.size());  // kept, hidden
    CHECK(b1.Run({"DBSIZE"}) == "0");
    REQUIRE(net.StepUntil([&] { return StateOf(b1, false) == "success"; }));
    CHECK(b1.Run({"DBSIZE"}) == std::to_string(keys.size()));
    CHECK(b1.Run({"GET", keys[0]}) == "\"v\"");
  }
  SECTION("no FINISH went out") {
    Net net(/*second_region=*/false, /*second_target=*/true);
    const std::vector<std::string> keys = LoadAndMigrate(net, 20);
    // b1's reply to DRAINED is lost: the source fails before FINISH; b got DRAINED.
    REQUIRE(net.StepUntil([&] { return StateOf(net.a, true) == "failed"; }, 500,
                          [&](const Message& m) {
                            return is_to(m, "DRAINED", 7004) ? Fate::kLoseReply : Fate::kDeliver;
                          }));
    REQUIRE(net.StepUntil([&] { return StateOf(net.b, false) == "cleaning-up"; }));
    CHECK(KeysIn(net.b, 0, 99) == keys.size());
    REQUIRE(net.StepUntil([&] { return StateOf(net.b, false) == "failed"; }, 3000));
    CHECK(KeysIn(net.b, 0, 99) == 0);
    CHECK(KeysIn(*net.b1, 0, 99) == 0);
    CheckSourceKeeps(net, keys);
  }
}

// EXEC is routed with every queued command; the commands it then runs are not routed again,
// but an ASKING among them still ends at the next command.
TEST_CASE("Cluster: a transaction is routed as a whole", "[cluster]") {
  Net net;
  // "bar" hashes to slot 5061 (A's), "foo" to slot 12182 (B's).
  CHECK(net.a.Run({"MULTI"}) == "OK");
  CHECK(net.a.Run({"SET", "bar", "1"}) == "QUEUED");
  CHECK(net.a.Run({"INCR", "bar"}) == "QUEUED");
  CHECK(net.a.Run({"EXEC"}) == "[OK, 2]");
  CHECK(net.a.Run({"MULTI"}) == "OK");
  CHECK(net.a.Run({"ASKING"}) == "QUEUED");
  CHECK(net.a.Run({"GET", "bar"}) == "QUEUED");
  CHECK(net.a.Run({"EXEC"}) == "[OK, \"2\"]");
  CHECK_FALSE(net.a.server->client().asking);  // the GET after it took it
  CHECK(net.a.Run({"MULTI"}) == "OK");
  CHECK(net.a.Run({"SET", "foo", "1"}).starts_with("(error) MOVED 12182 "));
  CHECK(net.a.Run({"EXEC"}).starts_with("(error) EXECABORT"));
}

// Failure detection: a node that neither answers nor gossips for cluster-node-timeout is PFAIL
// ("fail?"), FAIL once a majority of the slot-owning shards' nodes report it ("fail"), and its
// region's clients are sent to the shard's other node meanwhile; it is cleared when it answers.
TEST_CASE("Cluster: a silent node is marked FAIL and passed over until it answers", "[cluster]") {
  Net net(/*second_region=*/true, /*second_target=*/true);  // r0: 7001 (A), 7002 (B)
  for (TestNode* node : net.Nodes()) {
    REQUIRE(node->Run({"CONFIG", "SET", "cluster-node-timeout", "1000"}) == "OK");
  }
  const std::string b_id = net.b.cluster->myid();
  auto b_health = [&] { return net.a.cluster->HealthOf(b_id); };
  CHECK(net.a.Run({"GET", "foo"}) == "(error) MOVED 12182 127.0.0.1:7002");  // B's slot
  auto silent = [](const Message& m) {
    return m.port == 7002 || m.from == 7002 ? Fate::kFail : Fate::kDeliver;
  };
  REQUIRE(net.StepUntil([&] { return b_health()->pfail; }, 200, silent));
  CHECK_FALSE(b_health()->fail);  // the reports of the others are still on their way
  CHECK(net.a.Run({"CLUSTER", "NODES"}).find(b_id + " 127.0.0.1:7002@7002 master,fail? ") !=
        std::string::npos);
  CHECK(net.a.Run({"GET", "foo"}) == "(error) MOVED 12182 127.0.0.1:7002");
  REQUIRE(net.StepUntil([&] { return b_health()->fail; }, 50, silent));
  // Three of the four nodes (all of which are in slot-owning shards) agree: B's slots are served
  // in region r0 by B's other node.
  CHECK(net.a.Run({"GET", "foo"}) == "(error) MOVED 12182 127.0.0.1:7004");
  CHECK(net.a.Run({"CLUSTER", "NODES"}).find(b_id + " 127.0.0.1:7002@7002 slave,fail ") !=
        std::string::npos);
  CHECK(net.a.RunValue({"CLUSTER", "COUNT-FAILURE-REPORTS", b_id}).integer >= 2);
  CHECK(net.a1->cluster->HealthOf(b_id)->fail);
  // b answers again: FAIL is cleared at once and region r0 goes back to it.
  REQUIRE(net.StepUntil([&] { return !b_health()->pfail; }, 200));
  CHECK_FALSE(b_health()->fail);
  CHECK(net.a.Run({"GET", "foo"}) == "(error) MOVED 12182 127.0.0.1:7002");
  REQUIRE(net.StepUntil([&] { return !net.a1->cluster->HealthOf(b_id)->pfail; }, 200));
}

// CLUSTER RESET used to unassign every slot at a fresh epoch: the reset node's view then won
// the join everywhere, and the first gossip it exchanged emptied the whole cluster's slot map.
TEST_CASE("Cluster: a reset node claims none of the other shards' slots", "[cluster]") {
  Net net;  // A (7001) owns 0-8191, B (7002) 8192-16383
  const std::string old_id = net.b.cluster->myid();
  CHECK(net.b.Run({"CLUSTER", "RESET", "SOFT"}) == "OK");
  CHECK(net.b.cluster->myid() == old_id);
  CHECK(net.b.cluster->topology().nodes().size() == 1);
  CHECK(net.b.cluster->topology().AssignedSlots() == 0);
  // A still knows B's old id and gossips to its address: B, which knows no one since its
  // RESET, ignores what A says (as Valkey ignores an unknown sender) but answers with its view.
  for (int i = 0; i < 40; ++i) net.Step();
  CHECK(net.b.cluster->topology().nodes().size() == 1);
  CHECK(net.a.cluster->topology().owner(8192).shard.empty());  // B's reset reached A
  // Met again, B joins; the gossip it exchanges then empties no slot of another shard.
  CHECK(net.b.Run({"CLUSTER", "MEET", "127.0.0.1", "7001"}) == "OK");
  REQUIRE(net.StepUntil(
      [&] { return net.b.cluster->topology().FindNode(net.a.cluster->myid()) != nullptr; }));
  for (int i = 0; i < 20; ++i) net.Step();
  for (TestNode* node : net.Nodes()) {
    CHECK(node->cluster->topology().owner(0).shard == "A");
    CHECK(node->cluster->topology().owner(8191).shard == "A");
    // B was its shard's only node: its own slots are unassigned, everywhere.
    CHECK(node->cluster->topology().owner(8192).shard.empty());
  }
  CHECK(net.b.Run({"CLUSTER", "RESET", "HARD"}) == "OK");
  CHECK(net.b.cluster->myid() != old_id);  // HARD: a new node id
  CHECK(net.b.cluster->topology().nodes().size() == 1);
  CHECK(net.b.cluster->topology().owner(0).shard.empty());
}

}  // namespace
}  // namespace lattice::server
