// The metadata budget (DESIGN: an LWW string key adds at most 24 bytes of CRDT metadata beyond
// its value; a set member at most one dot) and compaction keeping metadata O(elements + replicas).
#include <catch2/catch.hpp>

#include "crdt/crdt_test_util.h"

namespace lattice::crdt::testing {
namespace {

TEST_CASE("an LWW string write costs 24 bytes of metadata, a set member one dot",
          "[crdt][memory]") {
  // The write: value + HLC (8) + dot (16). Nothing else is allocated for a plain string.
  STATIC_REQUIRE(sizeof(RegisterEntry<std::string>) - sizeof(std::string) <= 24);
  STATIC_REQUIRE(sizeof(DotSet) == 16);
  // The inline string object: the write plus one null pointer to rare parts (concurrent writes,
  // counter state); the envelope adds one more null pointer (other types, expiry).
  STATIC_REQUIRE(sizeof(StringCell) == sizeof(RegisterEntry<std::string>) + 8);
  STATIC_REQUIRE(sizeof(Key) == sizeof(StringCell) + 8);
  Node a(1);
  Ok(a.key.Set("value", false, std::nullopt, a.W(1), a.context));
  Ok(a.key.Set("value2", false, std::nullopt, a.W(2), a.context));
  CHECK(a.key.string().rest() == nullptr);
  CHECK(a.key.MetadataItems() == 1);
  Node s(2);
  Ok(s.key.SAdd({"a", "b", "c"}, s.W(1), s.context));
  Ok(s.key.SAdd({"a"}, s.W(2), s.context));
  for (const auto& [member, dots] : s.key.set().adds()) {
    CHECK(dots.size() == 1);
  }
  CHECK(s.key.set().removes().empty());
}

TEST_CASE("a collection key boxes only the parts it uses", "[crdt][memory]") {
  // Seven pointers (hash, set, zset, list, expiry, stream, bitmap chunks), each null until its
  // part is written.
  STATIC_REQUIRE(sizeof(KeyRest) == 7 * sizeof(void*));
  Node s(1);
  Ok(s.key.SAdd({"a", "b"}, s.W(1), s.context));
  REQUIRE(s.key.rest() != nullptr);
  CHECK(s.key.rest()->has_set());
  CHECK_FALSE(s.key.rest()->has_hash());
  CHECK_FALSE(s.key.rest()->has_zset());
  CHECK(s.key.rest()->expiry().empty());
  // A DEL leaves nothing; the next type gets its own part.
  REQUIRE(s.key.Del(s.W(2), s.context).has_value());
  CHECK(s.key.rest() == nullptr);
  Ok(s.key.HSet("f", "v", false, s.W(3), s.context));
  REQUIRE(s.key.rest() != nullptr);
  CHECK(s.key.rest()->has_hash());
  CHECK_FALSE(s.key.rest()->has_set());
}

// What a client can see, to check that compaction changes no visible value.
std::string View(const Key& key, int64_t now_ms) {
  std::string out = std::to_string(static_cast<int>(key.TypeAt(now_ms))) + "|";
  out += key.GetString(now_ms).value_or("-") + "|";
  for (const auto& m : key.set().Members()) out += m + ",";
  for (const auto& [f, v] : key.hash().GetAll(now_ms)) out += f + "=" + v + ",";
  for (const auto& [score, m] : key.zset().index().Range(0, 100)) {
    out += m + ":" + std::to_string(score) + ",";
  }
  return out + "|" + std::to_string(key.ExpiryMs().value_or(-1));
}

TEST_CASE("purging garbage at a stable vector keeps metadata bounded over long histories",
          "[crdt][memory][compaction]") {
  size_t purges = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    World<KeyWorkload> world(seed, 3);
    size_t max_items = 0;
    auto sync = [&] {
      auto& r = world.replicas();
      for (size_t i = 0; i < r.size(); ++i) {
        for (size_t j = 0; j < r.size(); ++j) world.JoinState(i, j);
      }
    };
    for (int round = 0; round < 60; ++round) {
      world.Run(40);
      sync();
      auto& r = world.replicas();
      VersionVector stable = r[0].context.vector();
      for (const auto& replica : r) stable.Meet(replica.context.vector());
      const std::string before = View(r[0].key, world.now_ms());
      for (auto& replica : r) replica.key.Compact(stable);  // drops nothing
      for (size_t i = 0; i < r.size(); ++i) purges += world.PurgeIfGarbage(i, stable) ? 1 : 0;
      sync();
      REQUIRE(View(r[0].key, world.now_ms()) == before);
      REQUIRE(r[0].key == r[1].key);
      REQUIRE(r[1].key == r[2].key);
      max_items = std::max(max_items, r[0].key.MetadataItems());
    }
    // 3 names per type, 3 replicas, 40 steps between syncs: a history of 2,400 steps keeps what
    // its last writes left (concurrent entries stay until the next write observes them).
    CHECK(max_items <= 80);
  }
  CHECK(purges > 0);
}

TEST_CASE("a purge made by one replica keeps it converging with the others", "[crdt][compaction]") {
  for (uint64_t seed = 100; seed < 400; ++seed) {
    CAPTURE(seed);
    World<KeyWorkload> world(seed, 3);
    world.Run(30);
    auto& r = world.replicas();
    for (size_t i = 0; i < r.size(); ++i) {
      for (size_t j = 0; j < r.size(); ++j) world.JoinState(i, j);
    }
    VersionVector stable = r[0].context.vector();
    for (const auto& replica : r) stable.Meet(replica.context.vector());
    for (size_t i = 0; i < r.size(); ++i) (void)world.PurgeIfGarbage(i, stable);
    world.Run(30);  // the purge travels as an op, among later ones
    for (size_t i = 0; i < r.size(); ++i) {
      for (size_t j = 0; j < r.size(); ++j) world.JoinState(i, j);
    }
    REQUIRE(View(r[0].key, world.now_ms()) == View(r[1].key, world.now_ms()));
    REQUIRE(View(r[1].key, world.now_ms()) == View(r[2].key, world.now_ms()));
  }
}

}  // namespace
}  // namespace lattice::crdt::testing
