// Sorted sets: membership, score merge, and the order index against a sorted-vector model.
#include <algorithm>
#include <catch2/catch.hpp>
#include <set>

#include "crdt/crdt_test_util.h"

namespace lattice::crdt::testing {
namespace {

TEST_CASE("ZREM concurrent with ZINCRBY leaves the increment (6.1 - 4.1 = 2)", "[crdt][zset]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.ZAdd("m", 4.1, a.W(1), a.context)));
  auto rem = Ok(a.key.ZRem({"m"}, a.W(5), a.context));
  auto inc = Ok(b.key.ZIncrBy("m", 2.0, b.W(4), b.context));
  CHECK(b.key.zset().Score("m") == Approx(6.1));
  a.Apply(inc);
  b.Apply(rem);
  CHECK(a.key == b.key);
  REQUIRE(a.key.zset().Score("m"));
  CHECK(*a.key.zset().Score("m") == Approx(2.0));
}

TEST_CASE("concurrent ZADDs: later score; concurrent ZINCRBYs add up", "[crdt][zset]") {
  Node a(1), b(2);
  auto x = Ok(a.key.ZAdd("m", 1, a.W(1), a.context));
  auto y = Ok(b.key.ZAdd("m", 2, b.W(2), b.context));
  a.Apply(y);
  b.Apply(x);
  CHECK(a.key.zset().Score("m") == 2);
  auto i = Ok(a.key.ZIncrBy("m", 1.5, a.W(3), a.context));
  auto j = Ok(b.key.ZIncrBy("m", 2.5, b.W(3), b.context));
  a.Apply(j);
  b.Apply(i);
  CHECK(a.key.zset().Score("m") == 6);
  CHECK(a.key == b.key);
}

TEST_CASE("order index: rank, select and score bounds match a sorted vector", "[crdt][zset]") {
  Rng rng(42);
  OrderIndex index;
  std::vector<std::pair<double, std::string>> model;
  std::set<std::string> names;  // the index points at the members: they must stay put
  for (int step = 0; step < 4000; ++step) {
    const std::string& member = *names.insert("m" + std::to_string(rng.Uniform(300))).first;
    auto found =
        std::find_if(model.begin(), model.end(), [&](const auto& e) { return e.second == member; });
    if (found != model.end()) {
      index.Erase(found->first, member);
      model.erase(found);
    }
    if (rng.Chance(3, 4)) {
      const double score = static_cast<double>(rng.Range(-20, 20));
      index.Insert(score, &member);
      model.emplace_back(score, member);
    }
    std::sort(model.begin(), model.end());
    REQUIRE(index.size() == model.size());
    if (step % 50 == 0 && !model.empty()) {
      for (size_t r = 0; r < model.size(); ++r) {
        auto [score, name] = index.At(r);
        REQUIRE(score == model[r].first);
        REQUIRE(*name == model[r].second);
        REQUIRE(index.Rank(model[r].first, model[r].second) == r);
      }
      const double bound = static_cast<double>(rng.Range(-21, 21));
      const size_t below = static_cast<size_t>(std::count_if(
          model.begin(), model.end(), [&](const auto& e) { return e.first < bound; }));
      const size_t at_most = static_cast<size_t>(std::count_if(
          model.begin(), model.end(), [&](const auto& e) { return e.first <= bound; }));
      REQUIRE(index.CountBelow(bound, false) == below);
      REQUIRE(index.CountBelow(bound, true) == at_most);
      const auto range = index.Range(below, 5);
      for (size_t k = 0; k < range.size(); ++k) {
        REQUIRE(range[k] == model[below + k]);
      }
    }
  }
}

TEST_CASE("the sorted set's index follows merges", "[crdt][zset]") {
  World<ZSetWorkload> world(7, 3);
  world.Run(200);
  for (auto& replica : world.replicas()) {
    const SortedSet& zset = replica.key.zset();
    std::vector<std::pair<double, std::string>> model;
    for (const auto& [member, cell] : zset.members()) {
      if (auto score = zset.Score(member)) {
        model.emplace_back(*score, member);
      }
    }
    std::sort(model.begin(), model.end());
    REQUIRE(zset.index().Range(0, model.size()) == model);
  }
}

TEST_CASE("ZADD or ZINCRBY concurrent with ZREM: add wins by default, remove wins under its rule",
          "[crdt][zset]") {
  for (SetRule rule : {SetRule::kAddWins, SetRule::kRemoveWins}) {
    for (bool incr : {false, true}) {
      Policies p;
      p.zset = rule;
      Node a(1), b(2);
      b.Apply(Ok(a.key.ZAdd("m", 1.0, a.W(1, p), a.context)));
      b.Apply(Ok(a.key.ZAdd("keep", 2.0, a.W(2, p), a.context)));
      auto rem = Ok(a.key.ZRem({"m"}, a.W(5, p), a.context));
      auto add = incr ? Ok(b.key.ZIncrBy("m", 3.0, b.W(4, p), b.context))
                      : Ok(b.key.ZAdd("m", 7.0, b.W(4, p), b.context));
      a.Apply(add);
      b.Apply(rem);
      CHECK(a.key == b.key);
      CHECK(a.key.zset().Score("m").has_value() == (rule == SetRule::kAddWins));
      CHECK(b.key.zset().Score("keep") == 2.0);
      CHECK(a.key.zset().Size() == (rule == SetRule::kAddWins ? 2u : 1u));  // "m" and "keep"
      // A later ZADD that observed the token brings the member back under either rule, and its
      // delta carries the token's removal to the other region.
      b.Apply(Ok(a.key.ZAdd("m", 9.0, a.W(9, p), a.context)));
      CHECK(b.key.zset().Score("m") == 9.0);
      CHECK(a.key == b.key);
      CHECK(a.key.zset().removes().empty());
    }
  }
}

TEST_CASE("a ZREM under remove-wins leaves a token that DEL observes", "[crdt][zset]") {
  Policies p;
  p.zset = SetRule::kRemoveWins;
  Node a(1), b(2);
  b.Apply(Ok(a.key.ZAdd("m", 1.0, a.W(1, p), a.context)));
  b.Apply(Ok(a.key.ZAdd("n", 1.0, a.W(2, p), a.context)));
  b.Apply(Ok(a.key.ZRem({"m"}, a.W(3, p), a.context)));
  REQUIRE(b.key.zset().removes().size() == 1);
  a.Apply(Ok(b.key.Del(b.W(4, p), b.context)));
  CHECK(a.key.zset().empty());
  CHECK(a.key == b.key);
}

}  // namespace
}  // namespace lattice::crdt::testing
