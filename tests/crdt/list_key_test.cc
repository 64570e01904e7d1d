// Lists as a key type: the merge rules of docs/semantics.md ("Lists") between two replicas, type
// conflicts with the other collections, and the delta join of remote removes (which finds the
// removed elements by scanning from both ends) against the full join.
#include <catch2/catch.hpp>

#include "crdt/crdt_test_util.h"
#include "lattice/crdt/join_stats.h"

namespace lattice::crdt::testing {
namespace {

std::vector<std::string> All(const Key& key) {
  if (key.TypeAt(1000) != ObjectType::kList) return {};
  return key.list().Range(0, key.list().Size() - 1);
}

using V = std::vector<std::string>;

TEST_CASE("list key: concurrent pushes keep every element in one order", "[crdt][list]") {
  Node a(1), b(2);
  const KeyOp base = Ok(a.key.LEdit({}, ListEnd::kTail, {"x"}, a.W(1), a.context));
  b.Apply(base);
  const KeyOp pa = Ok(a.key.LEdit({}, ListEnd::kTail, {"a1", "a2"}, a.W(2), a.context));
  const KeyOp pb = Ok(b.key.LEdit({}, ListEnd::kTail, {"b1", "b2"}, b.W(2), b.context));
  const KeyOp ha = Ok(a.key.LEdit({}, ListEnd::kHead, {"h"}, a.W(3), a.context));
  a.Apply(pb);
  b.Apply(pa);
  b.Apply(ha);
  CHECK(All(a.key) == All(b.key));
  CHECK(All(a.key).size() == 6);
  CHECK(All(a.key).front() == "h");
  CHECK(a.key == b.key);
}

TEST_CASE("list key: observed-remove pops, LSET against a remove, LINSERT", "[crdt][list]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.LEdit({}, ListEnd::kTail, {"j1", "j2", "j3"}, a.W(1), a.context)));
  SECTION("concurrent pops of the head both return j1; it is removed once") {
    const KeyOp pa = Ok(a.key.LEdit({0}, ListEnd::kHead, {}, a.W(2), a.context));
    const KeyOp pb = Ok(b.key.LEdit({0}, ListEnd::kHead, {}, b.W(2), b.context));
    a.Apply(pb);
    b.Apply(pa);
    CHECK(All(a.key) == V{"j2", "j3"});
    CHECK(a.key == b.key);
  }
  SECTION("DEL against a concurrent push keeps the push") {
    auto del = a.key.Del(a.W(2), a.context);
    REQUIRE(del);
    const KeyOp push = Ok(b.key.LEdit({}, ListEnd::kTail, {"late"}, b.W(2), b.context));
    a.Apply(push);
    b.Apply(*del);
    CHECK(All(a.key) == V{"late"});
    CHECK(a.key == b.key);
  }
  SECTION("LSET loses to a concurrent remove of the element; LWW between LSETs") {
    const KeyOp set = Ok(a.key.LSet(1, "new", a.W(5), a.context));
    const KeyOp set_b = Ok(b.key.LSet(2, "b3", b.W(6), b.context));
    const KeyOp rem = Ok(b.key.LEdit({1}, ListEnd::kHead, {}, b.W(7), b.context));
    a.Apply(set_b);
    a.Apply(rem);
    b.Apply(set);
    CHECK(All(a.key) == V{"j1", "b3"});
    CHECK(a.key == b.key);
  }
  SECTION("LINSERT next to a pivot removed concurrently stays in its place") {
    const KeyOp ins = Ok(a.key.LInsert(1, true, "before-j2", a.W(5), a.context));
    const KeyOp rem = Ok(b.key.LEdit({1}, ListEnd::kHead, {}, b.W(5), b.context));
    a.Apply(rem);
    b.Apply(ins);
    CHECK(All(a.key) == V{"j1", "before-j2", "j3"});
    CHECK(a.key == b.key);
  }
}

TEST_CASE("list key: type conflicts with a set resolve like the other collections",
          "[crdt][list]") {
  Node a(1), b(2);
  const KeyOp list = Ok(a.key.LEdit({}, ListEnd::kTail, {"e"}, a.W(1), a.context));
  const KeyOp set = Ok(b.key.SAdd({"m"}, b.W(2), b.context));
  CHECK_FALSE(b.key.LEdit({}, ListEnd::kTail, {"e"}, b.W(3), b.context).ok());  // WRONGTYPE
  a.Apply(set);
  b.Apply(list);
  CHECK(a.key == b.key);
  CHECK(a.key.Type() == ObjectType::kSet);  // the newer creator; the list is hidden
  CHECK_FALSE(a.key.LEdit({}, ListEnd::kHead, {"f"}, a.W(4), a.context).ok());
  // Under fixed precedence a list outranks a string whatever the timing.
  Node c(3), d(4);
  Policies fixed;
  fixed.type = TypeRule::kFixedPrecedence;
  const KeyOp l = Ok(c.key.LEdit({}, ListEnd::kTail, {"e"}, c.W(1, fixed), c.context));
  const KeyOp s = Ok(d.key.Set("v", false, std::nullopt, d.W(9), d.context));
  c.Apply(s);
  d.Apply(l);
  CHECK(c.key == d.key);
  CHECK(c.key.Type() == ObjectType::kList);
}

TEST_CASE("list key: a remote remove's delta join equals the full join", "[crdt][list]") {
  // Long lists (many chunks), removes at both ends and in the middle.
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    CAPTURE(seed);
    Rng rng(seed);
    Node a(1), b(2);
    std::vector<std::string> values;
    for (int i = 0; i < 600; ++i) values.push_back("value-" + std::to_string(i));
    b.Apply(Ok(a.key.LEdit({}, ListEnd::kTail, values, a.W(1), a.context)));
    for (int step = 0; step < 20; ++step) {
      const size_t size = a.key.list().Size();
      std::vector<size_t> indexes;
      const uint64_t kind = rng.Uniform(3);
      if (kind == 0) indexes = {0};
      if (kind == 1) indexes = {size - 1};
      if (kind == 2) indexes = {static_cast<size_t>(rng.Uniform(size))};
      const KeyOp op = Ok(a.key.LEdit(indexes, ListEnd::kHead, {}, a.W(2 + step), a.context));
      Key full = b.key;
      full.Join(op.delta, b.context, op.context);
      const uint64_t scans = ThreadJoinStats().scans;
      b.Apply(op);
      CHECK(ThreadJoinStats().scans == scans + 1);
      REQUIRE(b.key == full);
      REQUIRE(b.key == a.key);
    }
  }
}

}  // namespace
}  // namespace lattice::crdt::testing
