// Hashes: HSET vs HDEL, field counters, field TTL vs HSET.
#include <catch2/catch.hpp>

#include "crdt/crdt_test_util.h"

namespace lattice::crdt::testing {
namespace {

TEST_CASE("HSET concurrent with HDEL of the field: add wins", "[crdt][hash]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.HSet("f", "1", false, a.W(1), a.context)));
  auto del = Ok(a.key.HDel({"f"}, a.W(5), a.context));
  auto set = Ok(b.key.HSet("f", "2", false, b.W(4), b.context));
  a.Apply(set);
  b.Apply(del);
  CHECK(a.key.hash().Get("f", 1000) == "2");
  CHECK(a.key == b.key);
}

TEST_CASE("HINCRBY from two regions adds up; HINCRBYFLOAT formats as Valkey", "[crdt][hash]") {
  Node a(1), b(2);
  auto x = Ok(a.key.HIncrBy("n", 5, a.W(1), a.context));
  auto y = Ok(b.key.HIncrBy("n", 6, b.W(1), b.context));
  a.Apply(y);
  b.Apply(x);
  CHECK(a.key.hash().Get("n", 1000) == "11");
  b.Apply(Ok(a.key.HIncrByFloat("n", 0.5L, a.W(2), a.context)));
  CHECK(b.key.hash().Get("n", 1000) == "11.5");
  auto bad = a.key.HIncrBy("n", 1, a.W(3), a.context);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == ErrorCode::kNotInteger);
}

TEST_CASE("field TTL: hidden at now_ms; HSET clears the TTL it saw, KEEPTTL and HINCRBY keep it",
          "[crdt][hash][expiry]") {
  Node a(1);
  Ok(a.key.HSet("f", "v", false, a.W(1), a.context));
  Ok(a.key.HSet("g", "v", false, a.W(1), a.context));
  Ok(a.key.HExpire("f", 2000, a.W(2), a.context));
  Ok(a.key.HExpire("g", 2000, a.W(2), a.context));
  CHECK(a.key.hash().Get("f", 1999) == "v");
  CHECK(a.key.hash().Get("f", 2000) == std::nullopt);
  Ok(a.key.HSet("f", "w", /*keep_ttl=*/true, a.W(3), a.context));
  CHECK(a.key.hash().FieldExpiry("f") == 2000);
  Ok(a.key.HSet("f", "w", /*keep_ttl=*/false, a.W(4), a.context));
  CHECK(a.key.hash().FieldExpiry("f") == std::nullopt);
  Ok(a.key.HIncrBy("n", 1, a.W(5), a.context));
  Ok(a.key.HExpire("n", 3000, a.W(6), a.context));
  Ok(a.key.HIncrBy("n", 1, a.W(7), a.context));
  CHECK(a.key.hash().FieldExpiry("n") == 3000);
}

TEST_CASE("field TTL concurrent with HSET: the write the reclaim did not see survives",
          "[crdt][hash][expiry]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.HSet("f", "old", false, a.W(1), a.context)));
  b.Apply(Ok(a.key.HSet("other", "x", false, a.W(1), a.context)));
  b.Apply(Ok(a.key.HExpire("f", 2000, a.W(2), a.context)));
  auto set = Ok(b.key.HSet("f", "new", false, b.W(3, {}, 1500), b.context));  // clears TTL
  auto reclaim = a.key.Reclaim(a.W(4, {}, 2000), a.context);
  REQUIRE(reclaim);
  a.Apply(set);
  b.Apply(*reclaim);
  CHECK(a.key == b.key);
  CHECK(a.key.hash().Get("f", 5000) == "new");
  CHECK(a.key.hash().FieldExpiry("f") == std::nullopt);
}

}  // namespace
}  // namespace lattice::crdt::testing
