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
