// Sets: add-wins and remove-wins against a reference model of the rule.
#include <catch2/catch.hpp>

#include "crdt/crdt_test_util.h"

namespace lattice::crdt::testing {
namespace {

TEST_CASE("SADD concurrent with SREM: add wins by default, remove wins under its rule",
          "[crdt][set]") {
  for (SetRule rule : {SetRule::kAddWins, SetRule::kRemoveWins}) {
    Policies p;
    p.set = rule;
    Node a(1), b(2);
    b.Apply(Ok(a.key.SAdd({"m", "keep"}, a.W(1, p), a.context)));
    auto rem = Ok(a.key.SRem({"m"}, a.W(5, p), a.context));
    auto add = Ok(b.key.SAdd({"m"}, b.W(4, p), b.context));
    a.Apply(add);
    b.Apply(rem);
    CHECK(a.key == b.key);
    CHECK(a.key.set().Contains("m") == (rule == SetRule::kAddWins));
    CHECK(a.key.set().Contains("keep"));
    // A later SADD that observed the remove brings the member back under either rule.
    b.Apply(Ok(a.key.SAdd({"m"}, a.W(9, p), a.context)));
    CHECK(b.key.set().Contains("m"));
  }
}

TEST_CASE("SREM removes only what it observed, one dot per member", "[crdt][set]") {
  Node a(1), b(2);
  auto add_a = Ok(a.key.SAdd({"m"}, a.W(1), a.context));
  auto add_b = Ok(b.key.SAdd({"m"}, b.W(1), b.context));
  a.Apply(add_b);
  CHECK(a.key.set().adds().at("m").size() == 2);        // concurrent adds met
  auto rem = Ok(b.key.SRem({"m"}, b.W(2), b.context));  // b saw only its own add
  a.Apply(rem);
  CHECK(a.key.set().Contains("m"));  // a's add was not observed by the SREM
  auto readd = Ok(a.key.SAdd({"m"}, a.W(3), a.context));
  CHECK(a.key.set().adds().at("m").size() == 1);  // a re-add supersedes what it saw
  b.Apply(add_a);
  b.Apply(readd);
  CHECK(a.key == b.key);
}

}  // namespace
}  // namespace lattice::crdt::testing
