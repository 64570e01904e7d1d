// nodes.conf goes through the storage seam: written atomically on every change, read back on
// Load, refused when it is not a Lattice nodes.conf, and kept across a simulated crash.

#include <catch2/catch.hpp>

#include "cluster/cluster.h"
#include "lattice/repl/memory_storage.h"

namespace lattice::server {
namespace {

class FixedClock final : public Clock {
 public:
  int64_t NowMs() const override { return 1'000'000; }
  int64_t NowUs() const override { return NowMs() * 1000; }
  int64_t MonotonicUs() const override { return NowUs(); }
};

struct Fixture {
  Keyspace keyspace{/*replica=*/7, /*databases=*/16};
  FixedClock clock;
  Rng rng{42};
  ClusterOptions options{.enabled = true, .shard_id = "s1", .region = "r1", .port = 7001};
};

const std::string kId(40, 'a');

TEST_CASE("nodes.conf is written through the storage and read back", "[cluster]") {
  repl::MemoryStorage storage;
  Fixture f;
  {
    Cluster cluster(f.keyspace, f.clock, f.rng, f.options);
    REQUIRE(cluster.Load(&storage, "nodes.conf", kId, 0).ok());
    REQUIRE(cluster.SetSlots({1, 2, 3}, /*add=*/true).ok());
  }
  Result<std::string> text = storage.ReadAll("nodes.conf");
  REQUIRE(text.ok());
  CHECK(text->starts_with("myself " + kId + "\n"));
  storage.Crash();  // WriteAtomically is durable when it returns
  Cluster again(f.keyspace, f.clock, f.rng, f.options);
  REQUIRE(again.Load(&storage, "nodes.conf", std::string(40, 'b'), 0).ok());
  CHECK(again.myid() == kId);
  CHECK(again.topology().owner(2).shard == "s1");
  CHECK(again.topology().owner(4).shard != "s1");
}

// Simulator seed 44 (--shards 2): the node that ran CLUSTER CREATE lost power before its gossip
// reached one address; the addresses to meet lived only in memory, so nobody ever met that node
// and it never learned the slot map. They are kept in nodes.conf until a node there is known.
TEST_CASE("nodes.conf keeps the addresses still to meet across a restart", "[cluster]") {
  repl::MemoryStorage storage;
  Fixture f;
  {
    Cluster cluster(f.keyspace, f.clock, f.rng, f.options);
    REQUIRE(cluster.Load(&storage, "nodes.conf", kId, 0).ok());
    cluster.Meet("127.0.0.1", 7009);
  }
  storage.Crash();
  Cluster again(f.keyspace, f.clock, f.rng, f.options);
  REQUIRE(again.Load(&storage, "nodes.conf", kId, 0).ok());
  REQUIRE(again.SetSlots({1}, /*add=*/true).ok());  // persists again, from what Load read
  Result<std::string> text = storage.ReadAll("nodes.conf");
  REQUIRE(text.ok());
  CHECK(text->starts_with("myself " + kId + "\nmeet 127.0.0.1 7009\n"));
  CHECK(again.topology().owner(1).shard == "s1");
  // A node at the address is known (its gossip reached us): nothing is left to meet.
  ClusterTopology view = again.topology();
  view.UpsertNode(ClusterNode{.id = std::string(40, 'c'),
                              .shard = "s2",
                              .region = "r1",
                              .ip = "127.0.0.1",
                              .port = 7009,
                              .version = 1});
  REQUIRE(again.OnGossip(view.Encode(), "", false, 0).ok());
  text = storage.ReadAll("nodes.conf");
  REQUIRE(text.ok());
  CHECK(text->find("meet ") == std::string::npos);

  REQUIRE(storage.WriteAtomically("nodes.conf", "myself " + kId + "\nmeet 127.0.0.1 x\n").ok());
  Cluster bad(f.keyspace, f.clock, f.rng, f.options);
  Result<void> loaded = bad.Load(&storage, "nodes.conf", kId, 0);
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().message.find("bad meet line") != std::string::npos);
}

TEST_CASE("a nodes.conf that is not Lattice's is refused", "[cluster]") {
  repl::MemoryStorage storage;
  REQUIRE(storage.WriteAtomically("nodes.conf", "garbage\n").ok());
  Fixture f;
  Cluster cluster(f.keyspace, f.clock, f.rng, f.options);
  Result<void> loaded = cluster.Load(&storage, "nodes.conf", kId, 0);
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().message.find("is not a Lattice nodes.conf") != std::string::npos);
}

TEST_CASE("cluster-config-file must name a file inside dir", "[cluster]") {
  repl::MemoryStorage storage;
  Fixture f;
  Cluster cluster(f.keyspace, f.clock, f.rng, f.options);
  CHECK_FALSE(cluster.Load(&storage, "../nodes.conf", kId, 0).ok());
}

}  // namespace
}  // namespace lattice::server
