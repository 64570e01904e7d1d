// HyperLogLog values on the string register: concurrent PFADD-style writes (read, add, SET the
// new bytes keeping the TTL) are kept side by side and read as their register-wise max, so every
// region converges to the exact union; the law test runs the same writes beside DEL and SET.
#include "lattice/crdt/hll_key.h"

#include <catch2/catch.hpp>

#include "crdt/crdt_test_util.h"
#include "lattice/crdt/hll.h"

namespace lattice::crdt::testing {
namespace {

constexpr size_t kSparseMax = 3000;

// The whole-value PFADD: the read value (a new sparse HLL when absent) plus the elements, written
// back with KEEPTTL. Nullopt when the key holds a non-HLL string.
std::optional<KeyOp> PfAddWhole(Key& key, const std::vector<std::string>& elements, const Writer& w,
                                DotContext& ctx) {
  std::string value = key.GetString(w.now_ms).value_or(hll::NewSparse());
  if (!hll::Valid(value)) return std::nullopt;
  for (const std::string& e : elements) hll::Add(value, e, kSparseMax);
  return Take(key.Set(std::move(value), true, std::nullopt, w, ctx));
}

// PFADD of `elements` as hll_family does it: on a dense HyperLogLog an op of the raised registers
// only (or nothing when none rises), else the whole-value write.
std::optional<KeyOp> PfAdd(Key& key, const std::vector<std::string>& elements, const Writer& w,
                           DotContext& ctx) {
  if (std::optional<hll::Entries> entries = hll::RaiseEntries(key, w.now_ms)) {
    const std::vector<std::string_view> views(elements.begin(), elements.end());
    hll::AddPlan plan = hll::PlanAdd(*entries, views);
    if (plan.kind == hll::AddPlan::Kind::kUnchanged) return std::nullopt;
    if (plan.kind == hll::AddPlan::Kind::kRaise) {
      return hll::AddBeside(key, std::move(plan.raise), w, ctx);
    }
  }
  return PfAddWhole(key, elements, w, ctx);
}

// PFDEBUG TODENSE: the value converted to dense, written whole.
std::optional<KeyOp> ToDense(Key& key, const Writer& w, DotContext& ctx) {
  std::optional<std::string> value = key.GetString(w.now_ms);
  if (!value || !hll::Valid(*value) || !hll::ToDense(*value)) return std::nullopt;
  return Take(key.Set(std::move(*value), true, std::nullopt, w, ctx));
}

struct HllWorkload {
  static std::optional<KeyOp> Write(Rng& rng, Key& key, const Writer& w, DotContext& ctx) {
    switch (rng.Uniform(8)) {
      case 0:
        return Take(key.Del(w, ctx));
      case 1:
        return Take(key.Set(Pick(rng, kValues), false, std::nullopt, w, ctx));
      case 2:
        return ToDense(key, w, ctx);  // later PFADDs ship raise entries
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
  auto next = PfAddWhole(n1.key, {}, n1.W(200), n1.context);
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

// What redis-server holds after the same adds, one at a time, from `start`.
std::string Sequential(std::string value, const std::vector<std::string>& elements) {
  for (const std::string& e : elements) REQUIRE(hll::Add(value, e, kSparseMax) >= 0);
  return value;
}

std::string DenseOf(const std::vector<std::string>& elements) {
  std::string value = Sequential(hll::NewSparse(), elements);
  REQUIRE(hll::ToDense(value));
  return value;
}

TEST_CASE("hll: a PFADD on a dense value ships only its raised registers and reads as Valkey's",
          "[crdt][hll]") {
  const uint64_t seed = 0x24b17ULL;
  CAPTURE(seed);
  Rng rng(seed);
  Node n1(1), n2(2);
  std::string expected = DenseOf({"a", "b", "c"});
  REQUIRE(n1.key.Set(expected, false, std::nullopt, n1.W(10), n1.context).ok());
  n2.key = n1.key;
  n2.context = n1.context;
  size_t raises = 0;
  size_t wholes = 0;
  for (uint64_t i = 0; i < 400; ++i) {
    std::vector<std::string> elements;
    for (uint64_t n = rng.Uniform(4); n > 0; --n) elements.push_back(std::to_string(rng.Next()));
    expected = Sequential(expected, elements);
    std::optional<KeyOp> op = PfAdd(n1.key, elements, n1.W(20 + i), n1.context);
    if (op) {
      const std::string& shipped = op->delta.string().Winner()->value;
      (shipped.size() < 64 ? raises : wholes) += 1;
      REQUIRE((shipped.size() < 64 || shipped.size() == hll::kDenseSize));
      n2.Apply(*op);
    }
    // Byte for byte what sequential adds give (the cache bytes and stale bit included).
    REQUIRE(n1.Get() == expected);
    REQUIRE(n2.Get() == expected);
    REQUIRE(n1.key.string().Entries().size() <= hll::kMaxBeside + 1);
  }
  CHECK(raises > 200);
  CHECK(wholes >= raises / (hll::kMaxBeside + 1));
}

TEST_CASE("hll: DEL concurrent with a raise keeps the raised registers only", "[crdt][hll]") {
  Node n1(1), n2(2);
  const std::string base = DenseOf({"a", "b", "c", "d"});
  const KeyOp set = Ok(Take(n1.key.Set(base, false, std::nullopt, n1.W(10), n1.context)));
  n2.Apply(set);
  const std::optional<KeyOp> del = n2.key.Del(n2.W(20), n2.context);
  REQUIRE(del);
  // Find an element that raises a register of `base`.
  std::string element;
  for (int i = 0; element.empty(); ++i) {
    std::string probe = base;
    if (hll::Add(probe, "x" + std::to_string(i), kSparseMax) == 1)
      element = "x" + std::to_string(i);
    REQUIRE(i < 1000);
  }
  std::optional<KeyOp> raise = PfAdd(n1.key, {element}, n1.W(30), n1.context);
  REQUIRE(raise);
  REQUIRE(raise->delta.string().Winner()->value.size() < 64);
  n1.Apply(*del);
  n2.Apply(*raise);
  REQUIRE(n1.Get() == n2.Get());
  REQUIRE(hll::Valid(n1.Get()));
  REQUIRE(hll::Count(n1.Get()) == 1u);  // the DEL removed a b c d; the concurrent add survives
}

TEST_CASE("hll: concurrent raises in two regions read as the union", "[crdt][hll]") {
  Node n1(1), n2(2);
  std::vector<std::string> all = {"a", "b"};
  const KeyOp set = Ok(Take(n1.key.Set(DenseOf(all), false, std::nullopt, n1.W(10), n1.context)));
  n2.Apply(set);
  std::vector<KeyOp> from1, from2;
  for (int i = 0; i < 50; ++i) {
    const std::string e1 = "one:" + std::to_string(i);
    const std::string e2 = "two:" + std::to_string(i);
    all.push_back(e1);
    all.push_back(e2);
    if (auto op = PfAdd(n1.key, {e1}, n1.W(20 + i), n1.context)) from1.push_back(*op);
    if (auto op = PfAdd(n2.key, {e2}, n2.W(20 + i), n2.context)) from2.push_back(*op);
  }
  for (const KeyOp& op : from2) n1.Apply(op);
  for (const KeyOp& op : from1) n2.Apply(op);
  const std::string seen = n1.Get();
  REQUIRE(n2.Get() == seen);
  REQUIRE(RegistersOf(seen) == RegistersOf(DenseOf(all)));
  REQUIRE(seen.size() == hll::kDenseSize);
}

}  // namespace
TEST_CASE("hll: a raise joined in place leaves the state and the op of the full join",
          "[crdt][hll][inplace]") {
  const uint64_t seed = 0x5e1dULL;
  CAPTURE(seed);
  Rng rng(seed);
  // n1 writes in place (Register::JoinSimple beside the others), twin the same writes through
  // the full join; n2 writes concurrently, and both take its ops, so the raises land beside
  // entries of two replicas, some newer than theirs.
  Node n1(1), twin(1), n2(2);
  const KeyOp set =
      Ok(Take(n1.key.Set(DenseOf({"a", "b"}), false, std::nullopt, n1.W(10), n1.context)));
  twin.key = n1.key;
  twin.context = n1.context;
  twin.dots = n1.dots;
  n2.Apply(set);
  size_t raises = 0;
  for (uint64_t i = 0; i < 300; ++i) {
    const std::vector<std::string> elements = {std::to_string(rng.Next())};
    const uint64_t hlc = 20 + i;
    std::optional<KeyOp> fast = PfAdd(n1.key, elements, n1.W(hlc), n1.context);
    SetGenericWritesForTesting(true);
    std::optional<KeyOp> generic = PfAdd(twin.key, elements, twin.W(hlc), twin.context);
    SetGenericWritesForTesting(false);
    REQUIRE(fast.has_value() == generic.has_value());
    if (fast) {
      REQUIRE(*fast == *generic);
      raises += fast->delta.string().Winner()->value.size() < 64 ? 1 : 0;
      n2.Apply(*fast);
    }
    if (rng.Chance(1, 3)) {
      const std::vector<std::string> theirs = {"n2:" + std::to_string(rng.Next())};
      if (std::optional<KeyOp> op = PfAdd(n2.key, theirs, n2.W(hlc + rng.Uniform(3)), n2.context)) {
        n1.Apply(*op);
        twin.Apply(*op);
      }
    }
    REQUIRE(n1.key == twin.key);
    REQUIRE(n1.context == twin.context);
    REQUIRE(n1.Get() == n2.Get());
  }
  CHECK(raises > 100);
}

}  // namespace lattice::crdt::testing
