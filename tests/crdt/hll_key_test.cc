// HyperLogLog values on the string register: concurrent PFADD-style writes (read, add, SET the
// new bytes keeping the TTL) are kept side by side and read as their register-wise max, so every
// region converges to the exact union; the law test runs the same writes beside DEL and SET.
#include <catch2/catch.hpp>

#include "crdt/crdt_test_util.h"
#include "lattice/crdt/hll.h"

namespace lattice::crdt::testing {
namespace {

constexpr size_t kSparseMax = 3000;

// PFADD of `elements` as hll_family does it: the read value (a new sparse HLL when absent) plus
// the elements, written back with KEEPTTL. Nullopt when the key holds a non-HLL string.
std::optional<KeyOp> PfAdd(Key& key, const std::vector<std::string>& elements, const Writer& w,
                           DotContext& ctx) {
  std::string value = key.GetString(w.now_ms).value_or(hll::NewSparse());
  if (!hll::Valid(value)) return std::nullopt;
  for (const std::string& e : elements) hll::Add(value, e, kSparseMax);
  return Take(key.Set(std::move(value), true, std::nullopt, w, ctx));
}

struct HllWorkload {
  static std::optional<KeyOp> Write(Rng& rng, Key& key, const Writer& w, DotContext& ctx) {
    switch (rng.Uniform(6)) {
      case 0:
        return Take(key.Del(w, ctx));
      case 1:
        return Take(key.Set(Pick(rng, kValues), false, std::nullopt, w, ctx));
      default: {
        std::vector<std::string> elements;
        const uint64_t n = rng.Uniform(40);
        for (uint64_t i = 0; i < n; ++i)
          elements.push_back("e" + std::to_string(rng.Uniform(5000)));
        return PfAdd(key, elements, w, ctx);
      }
    }
  }
};

hll::Registers RegistersOf(std::string_view value) {
  hll::Registers regs{};
  REQUIRE(hll::Valid(value));
  REQUIRE(hll::MaxInto(regs, value));
  return regs;
}

TEST_CASE("hll: random concurrent PFADD/DEL/SET histories converge, read values agree",
          "[crdt][laws][hll]") {
  for (uint64_t i = 0; i < 2000; ++i) {
    const uint64_t seed = 0x411000ULL + i * 7919;
    CAPTURE(seed);
    World<HllWorkload> world(seed, 3);
    world.Run(24);
    const auto a = world.State(0);
    const auto b = world.State(1);
    const auto c = world.State(2);
    REQUIRE(Joined(a, b) == Joined(b, a));
    REQUIRE(Joined(Joined(a, b), c) == Joined(a, Joined(b, c)));
    REQUIRE(Joined(a, a) == a);
    Rng order_rng(seed ^ 0xabcdef);
    const auto first = world.ApplyAllInRandomOrder(order_rng);
    const auto second = world.ApplyAllInRandomOrder(order_rng);
    REQUIRE(first == second);
    const auto all = Joined(Joined(a, b), c);
    REQUIRE(first == all);
    // The read view is a function of the state: every region shows the same bytes.
    REQUIRE(first.first.GetString(world.now_ms()) == all.first.GetString(world.now_ms()));
  }
}

TEST_CASE("hll: concurrent PFADDs in three regions read as the exact union", "[crdt][hll]") {
  Node n1(1), n2(2), n3(3);
  std::vector<std::string> all;
  std::vector<KeyOp> ops;
  Node* nodes[] = {&n1, &n2, &n3};
  for (int r = 0; r < 3; ++r) {
    std::vector<std::string> mine;
    // Region 3 adds enough to go dense; the others stay sparse.
    const int count = r == 2 ? 3000 : 200;
    for (int i = 0; i < count; ++i)
      mine.push_back("r" + std::to_string(r) + ":" + std::to_string(i));
    all.insert(all.end(), mine.begin(), mine.end());
    auto op = PfAdd(nodes[r]->key, mine, nodes[r]->W(100 + r), nodes[r]->context);
    REQUIRE(op);
    ops.push_back(*op);
  }
  std::string expected = hll::NewSparse();
  for (const std::string& e : all) hll::Add(expected, e, kSparseMax);
  for (int r = 0; r < 3; ++r) {
    for (int o = 0; o < 3; ++o) {
      if (o != r) nodes[r]->Apply(ops[o]);
    }
  }
  const std::string seen = n1.Get();
  REQUIRE(n2.Get() == seen);
  REQUIRE(n3.Get() == seen);
  REQUIRE(RegistersOf(seen) == RegistersOf(expected));
  REQUIRE(hll::Count(seen) == hll::Count(expected));
  // The newest write (region 3's, dense) is the base of the merge: the merged value is dense.
  REQUIRE(seen.size() == hll::kDenseSize);
  // A later PFADD observes all three and collapses them into one value with the same registers.
  auto next = PfAdd(n1.key, {}, n1.W(200), n1.context);
  REQUIRE(next);
  n2.Apply(*next);
  REQUIRE(n1.key.string().rest() == nullptr);
  REQUIRE(RegistersOf(n2.Get()) == RegistersOf(expected));
}

TEST_CASE("hll: a SET of a plain string concurrent with PFADD: the newer write shows",
          "[crdt][hll]") {
  Node n1(1), n2(2);
  auto add = PfAdd(n1.key, {"a", "b"}, n1.W(100), n1.context);
  auto set = n2.key.Set("plain", false, std::nullopt, n2.W(200), n2.context);
  REQUIRE(add);
  REQUIRE(set);
  n1.Apply(*set);
  n2.Apply(*add);
  REQUIRE(n1.Get() == "plain");
  REQUIRE(n2.Get() == "plain");
}

TEST_CASE("hll: Valkey's byte format basics", "[crdt][hll]") {
  const std::string empty = hll::NewSparse();
  REQUIRE(empty.size() == 18);
  REQUIRE(empty.substr(0, 4) == "HYLL");
  REQUIRE(hll::CachedCount(empty) == 0u);
  std::string v = empty;
  REQUIRE(hll::Add(v, "hello", kSparseMax) == 1);
  REQUIRE(hll::Add(v, "hello", kSparseMax) == 0);
  REQUIRE_FALSE(hll::CachedCount(v).has_value());
  REQUIRE(hll::Count(v) == 1u);
  std::string dense = v;
  REQUIRE(hll::ToDense(dense));
  REQUIRE(dense.size() == hll::kDenseSize);
  REQUIRE(RegistersOf(dense) == RegistersOf(v));
  REQUIRE(hll::SelfTest().empty());
  REQUIRE_FALSE(hll::Valid("HYLL"));
  REQUIRE_FALSE(hll::Valid(std::string("HYLL\0", 5) + std::string(11, '\0')));  // dense, short
}

}  // namespace
}  // namespace lattice::crdt::testing
