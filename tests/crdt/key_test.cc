// The key envelope: DEL as observed-remove, type conflicts, key expiry and its rules, HLC.
#include <catch2/catch.hpp>
#include <cstdint>

#include "crdt/crdt_test_util.h"

namespace lattice::crdt::testing {
namespace {

TEST_CASE("DEL removes what it observed; a concurrent SADD survives", "[crdt][key]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.SAdd({"x", "y"}, a.W(1), a.context)));
  auto del = a.key.Del(a.W(5), a.context);
  REQUIRE(del);
  auto add = Ok(b.key.SAdd({"z"}, b.W(4), b.context));
  a.Apply(add);
  b.Apply(*del);
  CHECK(a.key.set().Members() == std::vector<std::string>{"z"});
  CHECK(a.key == b.key);
  CHECK(a.key.TypeAt(1000) == ObjectType::kSet);
}

TEST_CASE("increments that cancel to zero keep the counter alive, in one region or two",
          "[crdt][key]") {
  Node a(1);
  (void)Ok(a.key.IncrBy(1, a.W(1), a.context));
  (void)Ok(a.key.IncrBy(-1, a.W(2), a.context));
  CHECK(a.key.GetString(10) == std::optional<std::string>("0"));  // INCR; DECR leaves "0"
  // Two regions' first increments cancel exactly: the key exists with "0" in both.
  Node c(3), d(4);
  auto plus = Ok(c.key.IncrBy(5, c.W(1), c.context));
  auto minus = Ok(d.key.IncrBy(-5, d.W(1), d.context));
  c.Apply(minus);
  d.Apply(plus);
  CHECK(c.key == d.key);
  CHECK(c.key.GetString(10) == std::optional<std::string>("0"));
  // A DEL that observed them removes them: the key is gone.
  auto del = c.key.Del(c.W(2), c.context);
  REQUIRE(del);
  d.Apply(*del);
  CHECK(c.key.GetString(10) == std::nullopt);
  CHECK(d.key.GetString(10) == std::nullopt);
}

// Found by the hash differential test once every local op went through the replication engine:
// this replica's increment total overflowed after the dot was taken, leaving a gap in its
// sequence numbers. A refused command must take no dot and change nothing.
TEST_CASE("an increment refused for overflowing this replica's total takes no dot", "[crdt][key]") {
  constexpr int64_t kMin = INT64_MIN;
  Node a(1);
  (void)Ok(a.key.HSet("f", "121", false, a.W(1), a.context));
  (void)Ok(a.key.HIncrBy("f", kMin, a.W(2), a.context));  // 121 + MIN fits; the total is MIN
  const Key hash_before = a.key;
  const uint64_t hash_next = a.dots.next_seq();
  CHECK_FALSE(a.key.HIncrBy("f", -1, a.W(3), a.context));  // the value fits, the total not
  CHECK(a.dots.next_seq() == hash_next);
  CHECK(a.key == hash_before);

  Node b(2);
  (void)Ok(b.key.Set("121", false, std::nullopt, b.W(1), b.context));
  (void)Ok(b.key.IncrBy(kMin, b.W(2), b.context));
  const Key string_before = b.key;
  const uint64_t string_next = b.dots.next_seq();
  CHECK_FALSE(b.key.IncrBy(-1, b.W(3), b.context));
  CHECK(b.dots.next_seq() == string_next);
  CHECK(b.key == string_before);
}

TEST_CASE("type conflict: the creating op with the higher (hlc, replica) wins", "[crdt][key]") {
  Node a(1), b(2);
  auto s = Ok(a.key.Set("v", false, std::nullopt, a.W(10), a.context));
  auto h = Ok(b.key.SAdd({"m"}, b.W(20), b.context));
  a.Apply(h);
  b.Apply(s);
  CHECK(a.key.TypeAt(1000) == ObjectType::kSet);
  CHECK(b.key.TypeAt(1000) == ObjectType::kSet);
  CHECK(a.key.GetString(1000) == std::nullopt);
  // A later SET (it observed the set) re-creates the key as a string and removes the set.
  auto s2 = Ok(a.key.Set("w", false, std::nullopt, a.W(30), a.context));
  b.Apply(s2);
  CHECK(b.Get() == "w");
  CHECK(b.key.set().empty());
  CHECK(a.key == b.key);
  // WRONGTYPE locally.
  auto wrong = b.key.SAdd({"q"}, b.W(40), b.context);
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error().code == ErrorCode::kWrongType);
}

TEST_CASE("type conflict under fixed precedence: hash > zset > set > string, whatever the timing",
          "[crdt][key]") {
  Policies fixed;
  fixed.type = TypeRule::kFixedPrecedence;
  Node a(1), b(2), c(3);
  // The string is the newest write, the set the oldest: the hash wins all the same.
  auto s = Ok(a.key.Set("v", false, std::nullopt, a.W(30, fixed), a.context));
  auto h = Ok(b.key.HSet("f", "x", false, b.W(20, fixed), b.context));
  auto z = Ok(c.key.SAdd({"m"}, c.W(10, fixed), c.context));
  a.Apply(h);
  a.Apply(z);
  b.Apply(z);
  b.Apply(s);
  c.Apply(s);
  c.Apply(h);
  CHECK(a.key == b.key);
  CHECK(b.key == c.key);
  CHECK(a.key.TypeAt(1000) == ObjectType::kHash);
  // Under newest-creator-wins the same writes give the string.
  Node d(1), e(2);
  auto s2 = Ok(d.key.Set("v", false, std::nullopt, d.W(30), d.context));
  auto h2 = Ok(e.key.HSet("f", "x", false, e.W(20), e.context));
  d.Apply(h2);
  e.Apply(s2);
  CHECK(d.key.TypeAt(1000) == ObjectType::kString);
  CHECK(d.key == e.key);
  // A set made under fixed precedence beats a newer string SET.
  Node f(1), g(2);
  auto s3 = Ok(f.key.Set("v", false, std::nullopt, f.W(30, fixed), f.context));
  auto z3 = Ok(g.key.SAdd({"m"}, g.W(10, fixed), g.context));
  f.Apply(z3);
  g.Apply(s3);
  CHECK(f.key.TypeAt(1000) == ObjectType::kSet);
  CHECK(f.key == g.key);
}

TEST_CASE("key expiry: hidden at now_ms, LWW by default, longest under its rule",
          "[crdt][key][expiry]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.Set("v", false, std::nullopt, a.W(1), a.context)));
  auto e1 = Ok(a.key.Expire(5000, a.W(10), a.context));
  auto e2 = Ok(b.key.Expire(3000, b.W(11), b.context));
  a.Apply(e2);
  b.Apply(e1);
  CHECK(a.key.ExpiryMs() == 3000);  // later stamp wins
  CHECK(a.Get(2999) == "v");
  CHECK(a.Get(3000) == "(nil)");
  CHECK(a.key == b.key);

  Node c(3), d(4);
  Policies longest;
  longest.expiry = ExpiryRule::kLongest;
  d.Apply(Ok(c.key.Set("v", false, std::nullopt, c.W(1), c.context)));
  auto f1 = Ok(c.key.Expire(5000, c.W(10, longest), c.context));
  auto f2 = Ok(d.key.Expire(3000, d.W(11, longest), d.context));
  c.Apply(f2);
  d.Apply(f1);
  CHECK(c.key.ExpiryMs() == 5000);
  CHECK(d.key.ExpiryMs() == 5000);
  auto persist = Ok(c.key.Expire(0, c.W(12, longest), c.context));  // PERSIST
  d.Apply(persist);
  CHECK(d.key.ExpiryMs() == std::nullopt);

  // Shortest: the nearer of two concurrent expiries, and an expiry beats a concurrent PERSIST.
  Node g(5), h(6);
  Policies shortest;
  shortest.expiry = ExpiryRule::kShortest;
  h.Apply(Ok(g.key.Set("v", false, std::nullopt, g.W(1), g.context)));
  auto s1 = Ok(g.key.Expire(5000, g.W(10, shortest), g.context));
  auto s2 = Ok(h.key.Expire(3000, h.W(11, shortest), h.context));
  auto s3 = Ok(h.key.Expire(0, h.W(12, shortest), h.context));  // PERSIST, after s2 at h
  g.Apply(s2);
  g.Apply(s3);
  h.Apply(s1);
  CHECK(g.key == h.key);
  CHECK(g.key.ExpiryMs() == 5000);  // s3 replaced s2; s1 (concurrent) beats "no expiry"
  CHECK(h.key.ExpiryMs() == 5000);
}

TEST_CASE("an expired key is reclaimed by an observed-remove DEL; unseen writes survive",
          "[crdt][key][expiry]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.SAdd({"x"}, a.W(1), a.context)));
  b.Apply(Ok(a.key.Expire(2000, a.W(2), a.context)));
  auto add = Ok(b.key.SAdd({"y"}, b.W(3), b.context));  // concurrent with the reclaim
  auto reclaim = a.key.Reclaim(a.W(4, {}, 2000), a.context);
  REQUIRE(reclaim);
  CHECK(a.key.TypeAt(2000) == ObjectType::kNone);
  a.Apply(add);
  b.Apply(*reclaim);
  CHECK(a.key == b.key);
  CHECK(a.key.set().Members() == std::vector<std::string>{"y"});
  CHECK(a.key.ExpiryMs() == std::nullopt);
}

TEST_CASE("HLC is monotonic and refuses a remote too far ahead", "[crdt][hlc]") {
  HlcClock clock(/*max_drift_ms=*/1000);
  const uint64_t t1 = clock.Now(5000);
  const uint64_t t2 = clock.Now(5000);
  CHECK(t2 > t1);
  CHECK(HlcPhysicalMs(t2) == 5000);
  CHECK(clock.Now(4000) > t2);  // the wall clock stepped back: still increasing
  auto ok = clock.Update(MakeHlc(5900, 3), 5000);
  REQUIRE(ok);
  CHECK(*ok > MakeHlc(5900, 3));
  auto bad = clock.Update(MakeHlc(7000, 0), 5000);
  REQUIRE_FALSE(bad);
  CHECK(clock.drift_rejections() == 1);
  CHECK(clock.last() == *ok);  // not absorbed
}

TEST_CASE("dot contexts compact contiguous dots into the version vector", "[crdt][causal]") {
  DotContext context;
  context.Add(Dot{1, 2});
  context.Add(Dot{1, 3});
  CHECK(context.cloud().size() == 2);
  context.Add(Dot{1, 1});
  CHECK(context.cloud().empty());
  CHECK(context.vector().Get(1) == 3);
  CHECK(context.Contains(Dot{1, 2}));
  CHECK_FALSE(context.Contains(Dot{2, 1}));
}

}  // namespace
}  // namespace lattice::crdt::testing
