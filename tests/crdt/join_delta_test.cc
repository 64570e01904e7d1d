// Key::JoinDelta (the O(delta) apply of an op or of a write step) against the full Join: the same
// state for random histories of every collection type under random policies, and a cost that
// does not grow with the collection (counted in elements joined, not in time).
#include <catch2/catch.hpp>

#include "crdt/crdt_test_util.h"
#include "lattice/crdt/join_stats.h"

namespace lattice::crdt::testing {
namespace {

// A wider domain than kNames, so most elements of a key are not named by a given op.
const std::vector<std::string> kWide = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};

std::vector<std::string> SomeNames(Rng& rng) {
  std::vector<std::string> out;
  const uint64_t count = 1 + rng.Uniform(3);
  for (uint64_t i = 0; i < count; ++i) out.push_back(Pick(rng, kWide));
  return out;
}

struct WideSet {
  static std::optional<KeyOp> Write(Rng& rng, Key& key, const Writer& w, DotContext& ctx) {
    switch (rng.Uniform(8)) {
      case 0:
      case 1:
      case 2:
      case 3:
        return Take(key.SAdd(SomeNames(rng), w, ctx));
      case 4:
      case 5:
      case 6:
        return Take(key.SRem(SomeNames(rng), w, ctx));
      default:
        return rng.Chance(1, 4) ? Take(key.Del(w, ctx)) : Take(key.SAdd({"a"}, w, ctx));
    }
  }
};

struct WideHash {
  static std::optional<KeyOp> Write(Rng& rng, Key& key, const Writer& w, DotContext& ctx) {
    const std::string field = Pick(rng, kWide);
    switch (rng.Uniform(9)) {
      case 0:
      case 1:
        return Take(key.HSet(field, Pick(rng, kValues), rng.Chance(1, 4), w, ctx));
      case 2:
        return Take(key.HIncrBy(field, rng.Range(-3, 3), w, ctx));
      case 3:
        return Take(key.HIncrByFloat(field, 0.5L, w, ctx));
      case 4:
      case 5:
        return Take(key.HDel(SomeNames(rng), w, ctx));
      case 6:
        return Take(key.HExpire(field, rng.Chance(1, 4) ? 0 : w.now_ms + rng.Range(1, 20), w, ctx));
      case 7:
        return Take(key.Reclaim(w, ctx));
      default:
        return rng.Chance(1, 4) ? Take(key.Del(w, ctx)) : Take(key.HSet(field, "v", false, w, ctx));
    }
  }
};

struct WideZSet {
  static std::optional<KeyOp> Write(Rng& rng, Key& key, const Writer& w, DotContext& ctx) {
    const std::string member = Pick(rng, kWide);
    switch (rng.Uniform(8)) {
      case 0:
      case 1:
        return Take(key.ZAdd(member, static_cast<double>(rng.Range(-3, 3)), w, ctx));
      case 2:
      case 3:
        return Take(key.ZIncrBy(member, 0.5 * static_cast<double>(rng.Range(-3, 3)), w, ctx));
      case 4:
      case 5:
      case 6:
        return Take(key.ZRem(SomeNames(rng), w, ctx));
      default:
        return rng.Chance(1, 4) ? Take(key.Del(w, ctx)) : Take(key.ZAdd(member, 1, w, ctx));
    }
  }
};

// Every type on one key, with type conflicts, expiry and DEL.
struct WideKey {
  static std::optional<KeyOp> Write(Rng& rng, Key& key, const Writer& w, DotContext& ctx) {
    switch (rng.Uniform(5)) {
      case 0:
        return WideSet::Write(rng, key, w, ctx);
      case 1:
        return WideHash::Write(rng, key, w, ctx);
      case 2:
        return WideZSet::Write(rng, key, w, ctx);
      case 3:
        return KeyWorkload::Write(rng, key, w, ctx);
      default:
        return StringWorkload::Write(rng, key, w, ctx);
    }
  }
};

struct ForceFull {
  explicit ForceFull(bool on) { ThreadJoinStats().force_full = on; }
  ~ForceFull() { ThreadJoinStats().force_full = false; }
};

TEMPLATE_TEST_CASE("JoinDelta gives exactly the state of the full Join", "[crdt][delta]", WideSet,
                   WideHash, WideZSet, WideKey, SetWorkload, HashWorkload, ZSetWorkload,
                   StreamWorkload, BitmapWorkload, KeyWorkload) {
  ThreadJoinStats() = JoinStats{};
  for (uint64_t i = 0; i < 1500; ++i) {
    const uint64_t seed = 0xde17a000ULL + i * 104729;
    CAPTURE(seed);
    // The same seeded history with the fast path (local steps and remote applies) and without.
    World<TestType> fast(seed, 3);
    fast.Run(40);
    World<TestType> full(seed, 3);
    {
      const JoinStats counted = ThreadJoinStats();  // count the fast path only
      ForceFull force(true);
      full.Run(40);
      ThreadJoinStats() = counted;
    }
    REQUIRE(fast.log().size() == full.log().size());
    for (size_t op = 0; op < fast.log().size(); ++op) {
      REQUIRE(fast.log()[op].op == full.log()[op].op);
    }
    for (size_t r = 0; r < 3; ++r) {
      REQUIRE(fast.State(r) == full.State(r));
    }
    // Every op of the history joined into every replica's state, causally ready or not.
    for (size_t r = 0; r < 3; ++r) {
      for (const Recorded& rec : fast.log()) {
        auto [key, context] = fast.State(r);
        Key by_join = key;
        by_join.Join(rec.op.delta, context, rec.op.context);
        Key by_delta = key;
        by_delta.JoinDelta(rec.op.delta, context, rec.op.context, rec.op.first_dot,
                           rec.op.dot_count);
        REQUIRE(by_delta == by_join);
        // The order index of a sorted set is rebuilt by copies; compare what it answers too.
        REQUIRE(by_delta.zset().index().Range(0, 100) == by_join.zset().index().Range(0, 100));
      }
    }
  }
  // The comparison exercised the fast path, its scan and its fallback.
  const JoinStats& stats = ThreadJoinStats();
  CHECK(stats.delta_joins > 10 * stats.full_joins);
  CHECK(stats.scans > 0);
}

// A key with n elements of one type, built by local writes at `a` and applied at `b`.
struct Pair {
  Node a{1};
  Node b{2};
  uint64_t hlc = 1;
  void Ship(const KeyOp& op) { b.Apply(op); }
};

enum class Kind { kSet, kHash, kZSet };

KeyOp Add(Node& node, Kind kind, const std::string& name, uint64_t hlc) {
  switch (kind) {
    case Kind::kSet:
      return Ok(node.key.SAdd({name}, node.W(hlc), node.context));
    case Kind::kHash:
      return Ok(node.key.HSet(name, "value", false, node.W(hlc), node.context));
    default:
      return Ok(node.key.ZAdd(name, 1.5, node.W(hlc), node.context));
  }
}

KeyOp Remove(Node& node, Kind kind, const std::string& name, uint64_t hlc) {
  switch (kind) {
    case Kind::kSet:
      return Ok(node.key.SRem({name}, node.W(hlc), node.context));
    case Kind::kHash:
      return Ok(node.key.HDel({name}, node.W(hlc), node.context));
    default:
      return Ok(node.key.ZRem({name}, node.W(hlc), node.context));
  }
}

TEST_CASE("a write to a big collection joins O(1) elements, locally and remotely",
          "[crdt][delta]") {
  constexpr int kElements = 20'000;
  for (Kind kind : {Kind::kSet, Kind::kHash, Kind::kZSet}) {
    CAPTURE(static_cast<int>(kind));
    Pair pair;
    for (int i = 0; i < kElements; ++i) {
      pair.Ship(Add(pair.a, kind, "member:" + std::to_string(i), pair.hlc++));
    }
    REQUIRE(pair.a.key == pair.b.key);
    JoinStats& stats = ThreadJoinStats();
    auto measure = [&](auto write) {
      stats = JoinStats{};
      write();
      return stats;
    };
    // Local writes: a new element, an existing one, a remove.
    KeyOp add_new, add_old, remove;
    JoinStats s = measure([&] { add_new = Add(pair.a, kind, "fresh", pair.hlc++); });
    CHECK(s.full_joins == 0);
    CHECK(s.scans == 0);
    CHECK(s.elements <= 4);  // the element, in the key and in the op's delta
    s = measure([&] { add_old = Add(pair.a, kind, "member:7", pair.hlc++); });
    CHECK(s.full_joins == 0);
    CHECK(s.scans == 0);
    CHECK(s.elements <= 4);
    s = measure([&] { remove = Remove(pair.a, kind, "member:9", pair.hlc++); });
    CHECK(s.full_joins == 0);
    CHECK(s.scans == 0);
    CHECK(s.elements <= 4);
    // The same ops applied remotely: an add names its element in the delta, so no scan.
    s = measure([&] { pair.Ship(add_new); });
    CHECK((s.full_joins == 0 && s.scans == 0 && s.elements <= 2));
    s = measure([&] { pair.Ship(add_old); });
    CHECK((s.full_joins == 0 && s.scans == 0 && s.elements <= 2));
    // A remote remove names its element only through its context: one read-only scan finds the
    // holder, then one element is joined.
    s = measure([&] { pair.Ship(remove); });
    CHECK(s.full_joins == 0);
    CHECK(s.elements <= 2);
    CHECK(s.scanned <= kElements + 2);
    CHECK(pair.a.key == pair.b.key);
    // DEL legitimately touches everything.
    pair.Ship(*pair.a.key.Del(pair.a.W(pair.hlc++), pair.a.context));
    CHECK(pair.a.key == pair.b.key);
    CHECK(pair.b.key.TypeAt(1000) == ObjectType::kNone);
  }
}

TEST_CASE("a context too large to enumerate takes the full Join", "[crdt][delta]") {
  Node a(1);
  for (int i = 0; i < 50; ++i) {
    Ok(a.key.SAdd({"m" + std::to_string(i)}, a.W(static_cast<uint64_t>(i + 1)), a.context));
  }
  VersionVector covers;
  covers.Set(1, 30);       // the first 30 adds
  covers.Set(7, 100'000);  // and a long run of another replica's dots
  const DotContext theirs = DotContext::FromVector(covers);
  Key by_join = a.key;
  by_join.Join(Key{}, a.context, theirs);
  ThreadJoinStats() = JoinStats{};
  Key by_delta = a.key;
  by_delta.JoinDelta(Key{}, a.context, theirs, Dot{7, 100'001}, 1);
  CHECK(ThreadJoinStats().full_joins == 1);
  CHECK(by_delta == by_join);
  CHECK(by_delta.set().Members().size() < 50);  // the covered adds are gone
}

}  // namespace
}  // namespace lattice::crdt::testing
