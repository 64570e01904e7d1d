// The one generic law test (riak_dt / Baquero style) over every CRDT type, each exercised through
// the key envelope with a workload of that type's commands, and over the envelope itself.
#include <catch2/catch.hpp>

#include "crdt/crdt_test_util.h"

namespace lattice::crdt::testing {
namespace {

constexpr int kSeedsPerType = 10000;  // 10,000 random worlds per type, 5 law checks each

TEMPLATE_TEST_CASE("join is a semilattice and ops equal state joins", "[crdt][laws]",
                   StringWorkload, HashWorkload, SetWorkload, ZSetWorkload, ListWorkload,
                   StreamWorkload, BitmapWorkload, KeyWorkload) {
  for (uint64_t i = 0; i < kSeedsPerType; ++i) {
    const uint64_t seed = 0x5eed0000ULL + i * 7919;
    CAPTURE(seed);  // a failure prints the seed that replays it
    World<TestType> world(seed, 3);
    world.Run(24);
    const auto a = world.State(0);
    const auto b = world.State(1);
    const auto c = world.State(2);
    // Commutative, associative, idempotent.
    REQUIRE(Joined(a, b) == Joined(b, a));
    REQUIRE(Joined(Joined(a, b), c) == Joined(a, Joined(b, c)));
    REQUIRE(Joined(a, a) == a);
    // Any causal order of the same ops gives the same state, and that state is the join of
    // the replicas' states (each replica's state is the join of the ops it applied).
    Rng order_rng(seed ^ 0xabcdef);
    const auto first = world.ApplyAllInRandomOrder(order_rng);
    const auto second = world.ApplyAllInRandomOrder(order_rng);
    REQUIRE(first == second);
    REQUIRE(first == Joined(Joined(a, b), c));
  }
}

}  // namespace
}  // namespace lattice::crdt::testing
