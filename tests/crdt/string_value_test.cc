// String keys: LWW register, PN-counter view, Valkey's number formats and errors, both rules.
#include <catch2/catch.hpp>

#include "crdt/crdt_test_util.h"
#include "lattice/crdt/numeric.h"

namespace lattice::crdt::testing {
namespace {

TEST_CASE("concurrent SETs: the later (hlc, replica) wins everywhere", "[crdt][string]") {
  Node a(1), b(2);
  auto x = Ok(a.key.Set("from-a", false, std::nullopt, a.W(10), a.context));
  auto y = Ok(b.key.Set("from-b", false, std::nullopt, b.W(20), b.context));
  a.Apply(y);
  b.Apply(x);
  CHECK(a.Get() == "from-b");
  CHECK(b.Get() == "from-b");
  // A tie on HLC is broken by replica id.
  Node c(3), d(4);
  auto p = Ok(c.key.Set("c", false, std::nullopt, c.W(5), c.context));
  auto q = Ok(d.key.Set("d", false, std::nullopt, d.W(5), d.context));
  c.Apply(q);
  d.Apply(p);
  CHECK(c.Get() == "d");
  CHECK(d.Get() == "d");
}

TEST_CASE("concurrent increments all add up, exactly", "[crdt][string][counter]") {
  Node a(1), b(2);
  std::vector<KeyOp> from_a, from_b;
  for (int i = 0; i < 100; ++i) {
    from_a.push_back(Ok(a.key.IncrBy(3, a.W(10 + i), a.context)));
    from_b.push_back(Ok(b.key.IncrBy(-1, b.W(10 + i), b.context)));
  }
  for (const auto& op : from_b) a.Apply(op);
  for (const auto& op : from_a) b.Apply(op);
  CHECK(a.Get() == "200");
  CHECK(b.Get() == "200");
  CHECK(a.key == b.key);
}

TEST_CASE("SET concurrent with INCR: the SET's value plus the unobserved increments",
          "[crdt][string][counter]") {
  Node a(1), b(2);
  auto base = Ok(a.key.IncrBy(5, a.W(1), a.context));
  b.Apply(base);
  auto set = Ok(a.key.Set("100", false, std::nullopt, a.W(10), a.context));  // saw the +5
  auto inc = Ok(b.key.IncrBy(7, b.W(11), b.context));                        // did not see SET
  a.Apply(inc);
  b.Apply(set);
  CHECK(a.Get() == "107");
  CHECK(b.Get() == "107");
  // Under the LWW rule an INCR is a read-modify-write SET: the later write wins.
  Node c(3), d(4);
  Policies lww;
  lww.string = StringRule::kLww;
  auto start = Ok(c.key.Set("5", false, std::nullopt, c.W(1, lww), c.context));
  d.Apply(start);
  auto set2 = Ok(c.key.Set("100", false, std::nullopt, c.W(10, lww), c.context));
  auto inc2 = Ok(d.key.IncrBy(7, d.W(11, lww), d.context));
  c.Apply(inc2);
  d.Apply(set2);
  CHECK(c.Get() == "12");
  CHECK(d.Get() == "12");
}

TEST_CASE("DEL concurrent with INCR keeps only the unobserved increment", "[crdt][string]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.IncrBy(10, a.W(1), a.context)));
  auto del = a.key.Del(a.W(5), a.context);
  REQUIRE(del);
  auto inc = Ok(b.key.IncrBy(2, b.W(6), b.context));
  a.Apply(inc);
  b.Apply(*del);
  CHECK(a.Get() == "2");
  CHECK(b.Get() == "2");
}

TEST_CASE("integer overflow and type errors use Valkey's wording", "[crdt][string]") {
  Node a(1);
  Ok(a.key.Set("9223372036854775806", false, std::nullopt, a.W(1), a.context));
  Ok(a.key.IncrBy(1, a.W(2), a.context));
  auto over = a.key.IncrBy(1, a.W(3), a.context);
  REQUIRE_FALSE(over);
  CHECK(over.error().code == ErrorCode::kOverflow);
  CHECK(a.Get() == "9223372036854775807");
  Ok(a.key.Set("abc", false, std::nullopt, a.W(4), a.context));
  auto not_int = a.key.IncrBy(1, a.W(5), a.context);
  REQUIRE_FALSE(not_int);
  CHECK(not_int.error().code == ErrorCode::kNotInteger);
  auto not_float = a.key.IncrByFloat(1.5L, a.W(6), a.context);
  REQUIRE_FALSE(not_float);
  CHECK(not_float.error().code == ErrorCode::kNotFloat);
  Ok(a.key.Set("1.1e4932", false, std::nullopt, a.W(7), a.context));
  auto inf = a.key.IncrByFloat(1.1e4932L, a.W(8), a.context);
  REQUIRE_FALSE(inf);
  CHECK(inf.error().code == ErrorCode::kNanOrInfinity);
}

TEST_CASE("a merged sum beyond int64 is exact and deterministic", "[crdt][string]") {
  Node a(1), b(2);
  auto x = Ok(a.key.IncrBy(INT64_MAX, a.W(1), a.context));
  auto y = Ok(b.key.IncrBy(INT64_MAX, b.W(1), b.context));
  a.Apply(y);
  b.Apply(x);
  CHECK(a.Get() == "18446744073709551614");
  CHECK(b.Get() == a.Get());
  auto more = a.key.IncrBy(1, a.W(2), a.context);
  REQUIRE_FALSE(more);
  CHECK(more.error().code == ErrorCode::kNotInteger);
}

TEST_CASE("INCRBYFLOAT renders as Valkey's ld2string human mode", "[crdt][string]") {
  CHECK(FormatLongDouble(10.5L) == "10.5");
  CHECK(FormatLongDouble(5000.0L) == "5000");
  CHECK(FormatLongDouble(-0.0L) == "0");
  CHECK(FormatLongDouble(1e20L) == "100000000000000000000");
  CHECK(ParseInt64("01") == std::nullopt);
  CHECK(ParseInt64("-9223372036854775808") == INT64_MIN);
  CHECK(ParseLongDouble(" 1") == std::nullopt);
  Node a(1), b(2);
  Ok(a.key.Set("10.5", false, std::nullopt, a.W(1), a.context));
  b.Apply(Ok(b.key.Set("10.5", false, std::nullopt, b.W(0), b.context)));
  auto x = Ok(a.key.IncrByFloat(0.1L, a.W(2), a.context));
  CHECK(a.Get() == "10.6");
  auto y = Ok(b.key.IncrByFloat(0.25L, b.W(2), b.context));
  a.Apply(y);
  b.Apply(x);
  CHECK(a.Get() == b.Get());
  CHECK(a.Get() == "10.85");
}

}  // namespace
}  // namespace lattice::crdt::testing
