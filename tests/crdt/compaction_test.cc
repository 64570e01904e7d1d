// Compaction by causal stability (docs/crdt.md, "Compaction"): nothing is dropped in place, and a
// garbage key is removed by an ordinary DEL op (Key::PurgeableBy). These histories are made of
// ops, as the regions exchange them: a state join would hide what a narrowed context loses.
#include <catch2/catch.hpp>

#include "crdt/crdt_test_util.h"
#include "lattice/common/mutation.h"

namespace lattice::crdt::testing {
namespace {

// Sets the injected mutation for one scope (the simulator's flag, read by Key::Compact).
class Injected {
 public:
  explicit Injected(Mutation mutation) { g_injected_mutation = mutation; }
  ~Injected() { g_injected_mutation = Mutation::kNone; }
  Injected(const Injected&) = delete;
  Injected& operator=(const Injected&) = delete;
};

VersionVector Covering(const Node& a, const Node& b) {
  VersionVector stable = a.context.vector();
  stable.Meet(b.context.vector());
  return stable;
}

// Two regions add the same member concurrently; once both adds are stable, A compacts, then
// deletes the key; B applies A's DEL. Returns the members B is left with (A has none).
std::vector<std::string> MembersAfterCompactThenDel() {
  Node a(1), b(2);
  const KeyOp add_a = Ok(a.key.SAdd({"m"}, a.W(1), a.context));
  const KeyOp add_b = Ok(b.key.SAdd({"m"}, b.W(2), b.context));
  a.Apply(add_b);
  b.Apply(add_a);
  a.key.Compact(Covering(a, b));
  const std::optional<KeyOp> del = a.key.Del(a.W(3), a.context);
  REQUIRE(del.has_value());
  b.Apply(*del);
  CHECK(a.key.set().Members().empty());
  return b.key.set().Members();
}

TEST_CASE("compaction narrows no dot: a DEL made after it removes what uncompacted regions hold",
          "[crdt][compaction]") {
  CHECK(MembersAfterCompactThenDel().empty());
  // The rule compaction had before (one dot kept per stable member) leaves B showing "m": the
  // divergence the simulator found (docs/simulation.md, bug 2), kept as its mutation.
  Injected narrows(Mutation::kCompactNarrowsDots);
  CHECK(MembersAfterCompactThenDel() == std::vector<std::string>{"m"});
}

TEST_CASE(
    "a deleted counter is garbage once its dots are stable, and its purge frees it everywhere",
    "[crdt][compaction]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.IncrBy(3, a.W(1), a.context)));
  a.Apply(Ok(b.key.IncrBy(4, b.W(2), b.context)));
  const std::optional<KeyOp> del = a.key.Del(a.W(3), a.context);
  REQUIRE(del.has_value());
  b.Apply(*del);
  // The DEL left a tombstone with the offsets it observed: hidden, but not empty.
  REQUIRE_FALSE(a.key.empty());
  CHECK(a.key.Type() == ObjectType::kNone);
  // Not before b acknowledged the DEL (its tombstone is not stable).
  VersionVector before_del = b.context.vector();
  before_del.Set(1, del->first_dot.seq - 1);
  CHECK_FALSE(a.key.PurgeableBy(before_del).has_value());
  const VersionVector stable = Covering(a, b);
  const std::optional<ReplicaId> owner = a.key.PurgeableBy(stable);
  REQUIRE(owner.has_value());
  CHECK(b.key.PurgeableBy(stable) == owner);  // both regions agree who purges
  CHECK(*owner == 1);                         // the DEL's dot is the greatest
  const std::optional<KeyOp> purge = a.key.Del(a.W(4), a.context);
  REQUIRE(purge.has_value());
  CHECK(a.key.empty());
  b.Apply(*purge);
  CHECK(b.key.empty());
  // The counter written again starts from nothing everywhere (no stale offset applies).
  b.Apply(Ok(a.key.IncrBy(1, a.W(5), a.context)));
  CHECK(a.Get() == "1");
  CHECK(b.Get() == "1");
}

TEST_CASE("an increment concurrent with the DEL keeps the key from being garbage",
          "[crdt][compaction]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.IncrBy(3, a.W(1), a.context)));
  const std::optional<KeyOp> del = a.key.Del(a.W(2), a.context);
  REQUIRE(del.has_value());
  const KeyOp inc = Ok(b.key.IncrBy(5, b.W(3), b.context));  // b has not seen the DEL
  a.Apply(inc);
  b.Apply(*del);
  CHECK(a.Get() == "5");
  CHECK(b.Get() == "5");
  CHECK_FALSE(a.key.PurgeableBy(Covering(a, b)).has_value());  // visible
  // A key that shows something, or has an expiry, is never garbage.
  Node c(3);
  Ok(c.key.SAdd({"x"}, c.W(1), c.context));
  CHECK_FALSE(c.key.PurgeableBy(c.context.vector()).has_value());
}

TEST_CASE("a purge concurrent with an increment on the old epoch converges", "[crdt][compaction]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.IncrBy(3, a.W(1), a.context)));
  const std::optional<KeyOp> del = a.key.Del(a.W(2), a.context);
  REQUIRE(del.has_value());
  b.Apply(*del);
  REQUIRE(a.key.PurgeableBy(Covering(a, b)) == ReplicaId{1});
  const std::optional<KeyOp> purge = a.key.Del(a.W(3), a.context);
  REQUIRE(purge.has_value());
  // b increments on the tombstone's epoch before the purge reaches it; a increments afresh.
  const KeyOp b_inc = Ok(b.key.IncrBy(2, b.W(4), b.context));
  const KeyOp a_inc = Ok(a.key.IncrBy(7, a.W(5), a.context));
  a.Apply(b_inc);
  b.Apply(*purge);
  b.Apply(a_inc);
  CHECK(a.Get() == "9");
  CHECK(b.Get() == "9");
}

}  // namespace
}  // namespace lattice::crdt::testing
