// Tests of the pure cluster core: the slot function, the topology join, its text form, and the
// routing decision.

#include "cluster/cluster_topology.h"

#include <catch2/catch.hpp>

#include "store/keyspace.h"

namespace lattice::server {
namespace {

ClusterNode Node(char fill, std::string shard, std::string region, int port) {
  return ClusterNode{.id = std::string(40, fill),
                     .shard = std::move(shard),
                     .region = std::move(region),
                     .ip = "127.0.0.1",
                     .port = port,
                     .version = 1};
}

std::vector<uint16_t> Range(uint16_t start, uint16_t end) {
  std::vector<uint16_t> slots;
  for (uint32_t s = start; s <= end; ++s) slots.push_back(static_cast<uint16_t>(s));
  return slots;
}

ClusterTopology TwoShards() {
  ClusterTopology t;
  t.UpsertNode(Node('a', "A", "eu", 7001));
  t.UpsertNode(Node('b', "A", "us", 7002));
  t.UpsertNode(Node('c', "B", "eu", 7003));
  t.UpsertNode(Node('d', "B", "us", 7004));
  t.Assign(Range(0, 8191), "A");
  t.Assign(Range(8192, 16383), "B");
  return t;
}

}  // namespace

TEST_CASE("key slots are Valkey's", "[cluster]") {
  CHECK(KeySlot("123456789") == (0x31C3 & 16383));
  CHECK(KeySlot("somekey") == 11058);
  CHECK(KeySlot("foo{hash_tag}") == 2515);
  CHECK(KeySlot("bar{hash_tag}") == 2515);
  CHECK(KeySlot("foo{}{bar}") != KeySlot("bar"));  // empty tag: the whole key
  CHECK(KeySlot("foo{{bar}}zap") == KeySlot("{bar"));
}

TEST_CASE("topology merge: highest epoch per slot wins, in any order", "[cluster]") {
  ClusterTopology base = TwoShards();
  ClusterTopology x = base, y = base;
  x.Assign(Range(100, 199), "B");  // epoch 3
  y.Assign(Range(150, 249), "C");  // epoch 3 too: the tie goes to the greater shard id
  y.Assign(Range(300, 300), "B");  // epoch 4
  ClusterTopology xy = x, yx = y;
  CHECK(xy.Merge(y));
  CHECK(yx.Merge(x));
  CHECK(xy == yx);
  CHECK(xy.owner(120).shard == "B");
  CHECK(xy.owner(160).shard == "C");
  CHECK(xy.owner(300).shard == "B");
  CHECK(xy.current_epoch() == 4);
  ClusterTopology again = xy;
  CHECK_FALSE(again.Merge(xy));  // idempotent
}

TEST_CASE("node records: the higher version wins", "[cluster]") {
  ClusterTopology t = TwoShards();
  ClusterNode moved = Node('a', "A", "eu", 9001);
  CHECK_FALSE(t.UpsertNode(moved));  // same version: kept
  moved.version = 2;
  CHECK(t.UpsertNode(moved));
  CHECK(t.FindNode(std::string(40, 'a'))->port == 9001);
}

TEST_CASE("topology text round-trips and rejects garbage", "[cluster]") {
  ClusterTopology t = TwoShards();
  ClusterNode odd = Node('e', "shard with space", "", 7005);
  t.UpsertNode(odd);
  Result<ClusterTopology> back = ClusterTopology::Decode(t.Encode());
  REQUIRE(back.ok());
  CHECK(*back == t);
  CHECK_FALSE(ClusterTopology::Decode("").ok());
  CHECK_FALSE(ClusterTopology::Decode("lattice-cluster 2\n").ok());
  CHECK_FALSE(ClusterTopology::Decode("lattice-cluster 1\nslots 5 4 1 A\n").ok());
  CHECK_FALSE(ClusterTopology::Decode("lattice-cluster 1\nslots 0 16384 1 A\n").ok());
  CHECK_FALSE(ClusterTopology::Decode("lattice-cluster 1\nnode xyz A eu 1.2.3.4 1 1\n").ok());
  CHECK_FALSE(ClusterTopology::Decode("lattice-cluster 1\nepoch -1\n").ok());
  CHECK_FALSE(
      ClusterTopology::Decode("lattice-cluster 1\nnode " + std::string(40, 'a') + " A eu %4 1 1\n")
          .ok());
}

TEST_CASE("ranges and serving nodes per region", "[cluster]") {
  ClusterTopology t = TwoShards();
  REQUIRE(t.RangesOf("A") == std::vector<SlotRange>{{0, 8191}});
  CHECK(t.ServingNode("B", "us")->port == 7004);
  CHECK(t.ServingNode("B", "ap")->port == 7003);  // no node there: the smallest id
  CHECK(SlotRangesText(t.RangesOf("B")) == "8192-16383");
  CHECK(t.FullyCovered());
}

TEST_CASE("node records carry the replication port; the 7-field form still decodes", "[cluster]") {
  ClusterTopology t = TwoShards();
  ClusterNode with_repl = Node('e', "E", "", 7005);
  with_repl.repl_port = 17005;
  t.UpsertNode(with_repl);
  Result<ClusterTopology> back = ClusterTopology::Decode(t.Encode());
  REQUIRE(back.ok());
  CHECK(*back == t);
  CHECK(back->FindNode(std::string(40, 'e'))->repl_port == 17005);
  CHECK(back->FindNode(std::string(40, 'a'))->repl_port == 0);
  const std::string id(40, 'f');
  Result<ClusterTopology> old =
      ClusterTopology::Decode("lattice-cluster 1\nnode " + id + " F eu 10.0.0.1 7000 3\n");
  REQUIRE(old.ok());
  CHECK(old->FindNode(id)->repl_port == 0);
  CHECK_FALSE(
      ClusterTopology::Decode("lattice-cluster 1\nnode " + id + " F eu 1.2.3.4 1 1 70000\n").ok());
  CHECK_FALSE(
      ClusterTopology::Decode("lattice-cluster 1\nnode " + id + " F eu 1.2.3.4 1 1 x\n").ok());
}

TEST_CASE("a shard named after a node is served by that node first", "[cluster]") {
  ClusterTopology t;
  const std::string named(40, 'c');
  t.UpsertNode(Node('a', named, "", 7001));  // joined by CLUSTER REPLICATE, a smaller id
  t.UpsertNode(Node('c', named, "", 7003));  // the shard's own node
  t.UpsertNode(Node('b', named, "us", 7002));
  CHECK(t.ServingNode(named, "")->port == 7003);
  CHECK(t.ServingNode(named, "us")->port == 7002);  // its region first
  CHECK(t.ServingNode(named, "ap")->port == 7003);  // no node there: the named one
}

TEST_CASE("failed nodes are passed over, nearest region first", "[cluster]") {
  ClusterTopology t;
  t.UpsertNode(Node('a', "B", "eu", 7001));
  t.UpsertNode(Node('b', "B", "eu", 7002));
  t.UpsertNode(Node('c', "B", "us", 7003));
  t.UpsertNode(Node('d', "B", "ap", 7004));
  std::set<std::string, std::less<>> failed;
  const std::vector<std::string> order{"ap", "us"};
  const ServingPrefs prefs{.failed = &failed, .region_order = order};
  CHECK(t.ServingNode("B", "eu", prefs)->port == 7001);
  failed.insert(std::string(40, 'a'));
  CHECK(t.ServingNode("B", "eu", prefs)->port == 7002);  // the other node in the region
  failed.insert(std::string(40, 'b'));
  CHECK(t.ServingNode("B", "eu", prefs)->port == 7004);  // the first region of the order
  CHECK(t.ServingNode("B", "eu", {.failed = &failed})->port == 7003);  // no order: smallest id
  failed.insert(std::string(40, 'd'));
  CHECK(t.ServingNode("B", "eu", prefs)->port == 7003);
  failed.insert(std::string(40, 'c'));
  CHECK(t.ServingNode("B", "eu", prefs)->port == 7001);  // all failed: as if none were
  // MOVED follows the same choice.
  t.Assign(Range(0, 16383), "B");
  failed.erase(std::string(40, 'b'));
  const std::vector<uint16_t> slot{0};
  const Route route = RouteKeys(t, slot, {.my_shard = "A", .my_region = "eu", .serving = prefs});
  REQUIRE(route.kind == RouteKind::kMoved);
  CHECK(route.node->port == 7002);
}

TEST_CASE("nodes catching up come after every ready node, in any region", "[cluster]") {
  ClusterTopology t;
  t.UpsertNode(Node('a', "B", "eu", 7001));
  t.UpsertNode(Node('b', "B", "eu", 7002));
  t.UpsertNode(Node('c', "B", "us", 7003));
  std::set<std::string, std::less<>> failed, catching_up;
  const ServingPrefs prefs{.failed = &failed, .catching_up = &catching_up};
  catching_up.insert(std::string(40, 'a'));
  CHECK(t.ServingNode("B", "eu", prefs)->port == 7002);  // the region's other node
  catching_up.insert(std::string(40, 'b'));
  CHECK(t.ServingNode("B", "eu", prefs)->port == 7003);  // a ready node of another region
  failed.insert(std::string(40, 'c'));
  CHECK(t.ServingNode("B", "eu", prefs)->port == 7001);  // else a node catching up, nearest
  failed.insert(std::string(40, 'a'));
  CHECK(t.ServingNode("B", "eu", prefs)->port == 7002);  // ... not failed
  catching_up.clear();
  failed.clear();
  CHECK(t.ServingNode("B", "eu", prefs)->port == 7001);  // caught up: the preferred node again
}

TEST_CASE("forgetting a node and stamping a shard's epoch", "[cluster]") {
  ClusterTopology t = TwoShards();
  CHECK(t.RemoveNode(std::string(40, 'a')));
  CHECK_FALSE(t.RemoveNode(std::string(40, 'a')));
  CHECK(t.nodes().size() == 3);
  t.SetShardEpoch("A", 9);
  CHECK(t.ShardEpoch("A") == 9);
  CHECK(t.owner(0).epoch == 9);
  CHECK(t.owner(9000).epoch == 2);
  CHECK(t.current_epoch() == 9);
}

TEST_CASE("routing decisions", "[cluster]") {
  ClusterTopology t = TwoShards();
  std::array<bool, kSlotCount> paused{};
  RouteContext ctx{.my_shard = "A", .my_region = "us", .paused = &paused};
  const std::vector<uint16_t> none;
  CHECK(RouteKeys(t, none, ctx).kind == RouteKind::kLocal);
  const std::vector<uint16_t> mine{5, 5};
  CHECK(RouteKeys(t, mine, ctx).kind == RouteKind::kLocal);
  const std::vector<uint16_t> theirs{9000};
  Route moved = RouteKeys(t, theirs, ctx);
  REQUIRE(moved.kind == RouteKind::kMoved);
  CHECK(RouteError(moved) == "MOVED 9000 127.0.0.1:7004");  // B's node in region us
  const std::vector<uint16_t> cross{5, 9000};
  CHECK(RouteError(RouteKeys(t, cross, ctx)) ==
        "CROSSSLOT Keys in request don't hash to the same slot");
  paused[5] = true;
  CHECK(RouteKeys(t, mine, ctx).kind == RouteKind::kLocal);  // reads go on
  ctx.write = true;
  CHECK(RouteKeys(t, mine, ctx).kind == RouteKind::kPaused);
  ctx.importing = true;  // slot 9000 is being imported here
  ctx.asking = true;
  CHECK(RouteKeys(t, theirs, ctx).kind == RouteKind::kLocal);
  t.Assign(Range(9000, 9000), "");
  ctx.asking = false;
  ctx.importing = false;
  CHECK(RouteError(RouteKeys(t, theirs, ctx)) == "CLUSTERDOWN The cluster is down");
  ctx.require_full_coverage = false;
  CHECK(RouteError(RouteKeys(t, theirs, ctx)) == "CLUSTERDOWN Hash slot not served");
}

}  // namespace lattice::server
