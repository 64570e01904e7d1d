// Sorted sets: membership, score merge, and the order index against a sorted-vector model.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <set>

#include "crdt/crdt_test_util.h"

namespace lattice::crdt::testing {
namespace {

// `name` laid out as the index expects it (a length, then the bytes), kept alive in `store`.
const PackedName* Pack(std::map<std::string, std::vector<uint32_t>>& store,
                       const std::string& name) {
  auto [it, inserted] = store.try_emplace(name);
  if (inserted) {
    it->second.assign(1 + (name.size() + 3) / 4, 0);
    it->second[0] = static_cast<uint32_t>(name.size());
    std::memcpy(&it->second[1], name.data(), name.size());
  }
  return reinterpret_cast<const PackedName*>(it->second.data());
}

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
  std::map<std::string, std::vector<uint32_t>> names;  // the index points at them
  for (int step = 0; step < 4000; ++step) {
    const std::string member = "m" + std::to_string(rng.Uniform(300));
    auto found =
        std::find_if(model.begin(), model.end(), [&](const auto& e) { return e.second == member; });
    if (found != model.end()) {
      index.Erase(found->first, member);
      model.erase(found);
    }
    if (rng.Chance(3, 4)) {
      const double score = static_cast<double>(rng.Range(-20, 20));
      index.Insert(score, Pack(names, member));
      model.emplace_back(score, member);
    }
    std::sort(model.begin(), model.end());
    REQUIRE(index.size() == model.size());
    if (step % 50 == 0 && !model.empty()) {
      for (size_t r = 0; r < model.size(); ++r) {
        auto [score, name] = index.At(r);
        REQUIRE(score == model[r].first);
        REQUIRE(name == model[r].second);
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
    zset.ForEachMember([&](std::string_view member, const ScoreCell&) {
      if (auto score = zset.Score(std::string(member))) {
        model.emplace_back(*score, std::string(member));
      }
    });
    std::sort(model.begin(), model.end());
    REQUIRE(zset.index().Range(0, model.size()) == model);
  }
}

TEST_CASE("sorted set equality and member order do not depend on the hash table's layout",
          "[crdt][zset]") {
  // The same members written in two orders (and one copy) leave tables of different histories;
  // they compare equal, walk in byte order and encode alike.
  Rng rng(7);
  std::vector<std::string> names;
  for (int i = 0; i < 200; ++i) {
    names.push_back("member:" + std::to_string(rng.Uniform(1000000)) + std::string(i % 40, 'x'));
  }
  Node a(1), b(1);
  for (size_t i = 0; i < names.size(); ++i) {
    Ok(a.key.ZAdd(names[i], static_cast<double>(i % 7), a.W(1), a.context));
  }
  for (size_t i = names.size(); i-- > 0;) {  // reverse order: another table history
    Ok(b.key.ZAdd(names[i], static_cast<double>(i % 7), b.W(1), b.context));
  }
  const SortedSet& x = a.key.zset();
  const SortedSet& y = b.key.zset();
  REQUIRE(x.Size() == y.Size());
  std::vector<std::string> xs, ys;
  x.ForEachMember([&](std::string_view m, const ScoreCell&) { xs.emplace_back(m); });
  y.ForEachMember([&](std::string_view m, const ScoreCell&) { ys.emplace_back(m); });
  CHECK(std::is_sorted(xs.begin(), xs.end()));
  CHECK(xs == ys);
  CHECK(x.index().Range(0, x.Size()) == y.index().Range(0, y.Size()));
  SortedSet copy = x;
  CHECK(copy == x);
  CHECK_FALSE(copy == y);  // the same members, written with other dots
  CHECK(copy.index().Range(0, copy.Size()) == x.index().Range(0, x.Size()));
  for (const std::string& name : names) {
    REQUIRE(copy.Find(name) != nullptr);
    CHECK(*copy.Find(name) == *x.Find(name));
    CHECK(copy.Score(name) == x.Score(name));
  }
  CHECK(copy.Find("absent") == nullptr);
  SortedSet moved = std::move(copy);
  CHECK(moved.Size() == x.Size());
  // Removing a member keeps the table, the index and equality in step.
  Ok(a.key.ZRem({names[3]}, a.W(2), a.context));
  CHECK_FALSE(a.key.zset().Score(names[3]));
  CHECK(a.key.zset().Size() + 1 == y.Size());
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
