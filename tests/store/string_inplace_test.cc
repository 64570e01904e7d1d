// The in-place string writes (Keyspace::SetString, IncrString / IncrCounter, Delete of a compact
// key) against the generic delta-join mutators they replace: random histories, with a peer's
// concurrent writes (SET, INCRBY, INCRBYFLOAT) applied in between, run through both on two
// keyspaces of the same replica; after every step both must hold identical state (every key, the
// shard context, the next dot) and must have shipped identical ops. Also: the compact form converts
// back and forth as writes change the state, and the KeyRef reads agree with the full state.
// Counters get their own mix (INCRBY-heavy, with SET, DEL, EXPIRE, INCRBYFLOAT, peer increments
// and metadata compaction), which keeps keys moving in and out of the compact counter form.

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "lattice/common/rng.h"
#include "lattice/crdt/string_value.h"
#include "store/keyspace.h"
#include "store/keyspace_test_util.h"

namespace lattice::server {
namespace {

constexpr int64_t kStart = 1'700'000'000'000;

using testing::Collector;
using testing::RequireSameKeyspaces;

// Generic reference writes: the crdt::Key mutators through Keyspace::Write.
Result<void> GenericSet(Keyspace& ks, const std::string& key, const std::string& value,
                        bool keep_ttl, int64_t now) {
  return ks.Write(0, key, now, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.Set(value, keep_ttl, std::nullopt, w, c);
  });
}

Result<void> GenericIncr(Keyspace& ks, const std::string& key, int64_t by, int64_t now) {
  return ks.Write(0, key, now, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.IncrBy(by, w, c);
  });
}

void GenericDel(Keyspace& ks, const std::string& key, int64_t now) {
  (void)ks.Write(
      0, key, now,
      [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) -> Result<crdt::KeyOp> {
        std::optional<crdt::KeyOp> op = k.Del(w, c);
        if (!op.has_value()) return Unexpected(ErrorCode::kNoSuchKey);
        return std::move(*op);
      });
}

Result<void> Expire(Keyspace& ks, const std::string& key, int64_t at, int64_t now) {
  return ks.Write(0, key, now, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.Expire(at, w, c);
  });
}

// Keyspace::IncrCounter against the generic IncrBy and what OpIncrement derives from it: the
// value is Valkey's parse-add-print of what the key read before, `written` says whether the
// generic write succeeded, `rendered` whether the key now reads as the value. A key it does not
// take (nullopt) is left untouched, and the generic write runs on both.
void CheckIncrCounter(Keyspace& fast, Keyspace& reference, const std::string& key, int64_t by,
                      int64_t now) {
  const KeyRef before = reference.Find(0, key, now);
  const std::optional<std::string> current =
      before == nullptr ? std::nullopt : before->GetString(now);
  const Result<std::optional<Keyspace::CounterIncrement>> a = fast.IncrCounter(0, key, by, now);
  const Result<void> b = GenericIncr(reference, key, by, now);
  if (!a.ok()) {
    REQUIRE(!b.ok());
    REQUIRE(a.error().code == b.error().code);
    return;
  }
  if (!a->has_value()) {
    const Result<void> again = GenericIncr(fast, key, by, now);
    REQUIRE(again.ok() == b.ok());
    return;
  }
  const Keyspace::CounterIncrement& done = **a;
  const Result<std::string> expected = crdt::NextCounterValue(current, by, 0, false);
  REQUIRE(expected.ok());
  CHECK(*expected == std::to_string(done.value));
  REQUIRE(done.written == b.ok());
  if (!b.ok()) REQUIRE(b.error().code == ErrorCode::kOverflow);
  const KeyRef after = reference.Find(0, key, now);
  const bool reads = after != nullptr && after->GetString(now) == *expected;
  CHECK(done.rendered == (done.written && reads));
}

// Step kinds of a history: the first RunHistory mix, or the counter-heavy one.
enum class Mix { kStrings, kCounters };

Result<void> IncrByFloat(Keyspace& ks, const std::string& key, long double by, int64_t now) {
  return ks.Write(0, key, now, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.IncrByFloat(by, w, c);
  });
}

void RunHistory(uint64_t seed, crdt::StringRule rule, Mix mix = Mix::kStrings) {
  INFO("seed " << seed << " rule " << static_cast<int>(rule) << " mix " << static_cast<int>(mix));
  Rng rng(seed);
  Keyspace fast(7, 1);
  Keyspace reference(7, 1);
  Keyspace peer(9, 1);
  crdt::Policies policies;
  policies.string = rule;
  for (Keyspace* ks : {&fast, &reference, &peer}) ks->set_policies(policies);
  Collector fast_ops, reference_ops, peer_ops;
  fast.AddObserver(&fast_ops);
  reference.AddObserver(&reference_ops);
  peer.AddObserver(&peer_ops);
  const std::vector<std::string> keys = {"a", "b", "c", "{a}x"};
  const std::vector<std::string> values = {
      "", "1", "-7", "x", "9223372036854775807", "a longer value that does not fit a small block"};
  int64_t now = kStart;
  size_t delivered_to_peer = 0;
  for (int step = 0; step < 300; ++step) {
    now += static_cast<int64_t>(rng.Uniform(3));
    const std::string& key = keys[rng.Uniform(keys.size())];
    uint64_t what = rng.Uniform(10);
    if (mix == Mix::kCounters) {
      // Mostly INCRBY (3, 4); the rest as the strings mix, plus INCRBYFLOAT (10) and metadata
      // compaction (11).
      const uint64_t roll = rng.Uniform(20);
      what = roll < 8 ? 3 + roll % 2 : roll < 18 ? rng.Uniform(10) : 10 + roll % 2;
    }
    INFO("step " << step << " op " << what << " key " << key);
    if (what <= 2) {
      const std::string& value = values[rng.Uniform(values.size())];
      const bool keep_ttl = rng.Uniform(4) == 0;
      fast.SetString(0, key, value, keep_ttl, now);
      REQUIRE(GenericSet(reference, key, value, keep_ttl, now).ok());
    } else if (what <= 4) {
      const int64_t by = rng.Uniform(8) == 0 ? INT64_MAX : static_cast<int64_t>(rng.Uniform(7)) - 3;
      if (rng.Uniform(2) == 0) {
        const Result<void> a = fast.IncrString(0, key, by, now);
        const Result<void> b = GenericIncr(reference, key, by, now);
        REQUIRE(a.ok() == b.ok());
        if (!a.ok()) REQUIRE(a.error().code == b.error().code);
      } else {
        CheckIncrCounter(fast, reference, key, by, now);
      }
    } else if (what == 5) {
      const bool a = fast.Delete(0, key, now);
      const bool b = reference.Find(0, key, now) != nullptr;
      if (b) {
        GenericDel(reference, key, now);
      } else {
        (void)reference.Delete(0, key, now);  // hidden or missing: only full forms, one path
      }
      REQUIRE(a == b);
    } else if (what == 6) {
      // A TTL (sometimes already past): keys leave the compact form, and come back on SET.
      const int64_t at = now + static_cast<int64_t>(rng.Uniform(5));
      REQUIRE(Expire(fast, key, at, now).ok() == Expire(reference, key, at, now).ok());
    } else if (what == 7) {
      // The peer writes concurrently.
      const std::string& value = values[rng.Uniform(values.size())];
      const uint64_t kind = rng.Uniform(3);
      if (kind == 0) {
        peer.SetString(0, key, value, false, now);
      } else if (kind == 1) {
        // A float increment: the value is no longer an integer sum (CounterInt's text path).
        (void)peer.Write(0, key, now,
                         [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
                           return k.IncrByFloat(0.5, w, c);
                         });
      } else {
        (void)peer.IncrString(0, key, static_cast<int64_t>(rng.Uniform(5)), now);
      }
    } else if (what == 10) {
      const long double by = rng.Uniform(2) == 0 ? 0.5L : -1.0L;
      const Result<void> a = IncrByFloat(fast, key, by, now);
      const Result<void> b = IncrByFloat(reference, key, by, now);
      REQUIRE(a.ok() == b.ok());
    } else if (what == 11) {
      // Compaction with what both replicas have seen taken as stable.
      crdt::VersionVector stable = fast.context().vector();
      stable.Set(9, std::min(stable.Get(9), peer.context().vector().Get(9)));
      stable.Set(7, std::min(stable.Get(7), peer.context().vector().Get(7)));
      (void)fast.CompactSome(stable, 1'000'000);
      (void)reference.CompactSome(stable, 1'000'000);
    } else if (what == 8) {
      // The peer's ops reach us (both keyspaces alike).
      for (const auto& [db, name, op] : peer_ops.ops) {
        fast.ApplyRemote(db, name, op);
        reference.ApplyRemote(db, name, op);
      }
      peer_ops.ops.clear();
    } else {
      // Ours reach the peer, so its next writes observe ours.
      for (; delivered_to_peer < reference_ops.ops.size(); ++delivered_to_peer) {
        const auto& [db, name, op] = reference_ops.ops[delivered_to_peer];
        peer.ApplyRemote(db, name, op);
      }
    }
    RequireSameKeyspaces(fast, fast_ops, reference, reference_ops);
    for (const std::string& name : keys) {
      const KeyRef a = fast.Find(0, name, now);
      const KeyRef b = reference.Find(0, name, now);
      REQUIRE((a == nullptr) == (b == nullptr));
      if (a != nullptr) {
        const crdt::Key whole = a->ToKey();
        CHECK(a->TypeAt(now) == whole.TypeAt(now));
        CHECK(a->GetString(now) == whole.GetString(now));
        CHECK(a->ExpiryMs() == whole.ExpiryMs());
        CHECK(ReadVisible(a, now) == ReadVisible(whole, now));
      }
    }
  }
}

TEST_CASE("In-place string writes equal the generic mutators on random histories",
          "[keyspace][strings]") {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    RunHistory(seed, seed % 2 == 0 ? crdt::StringRule::kCounter : crdt::StringRule::kLww);
  }
}

TEST_CASE("In-place counter increments equal the generic mutators on counter-heavy histories",
          "[keyspace][strings]") {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    RunHistory(seed, seed % 4 == 0 ? crdt::StringRule::kLww : crdt::StringRule::kCounter,
               Mix::kCounters);
  }
}

TEST_CASE("A counter of one replica is stored compact and converts as writes change it",
          "[keyspace][strings]") {
  Keyspace ks(7, 1);
  Keyspace peer(9, 1);
  Collector ops, peer_ops;
  ks.AddObserver(&ops);
  peer.AddObserver(&peer_ops);
  auto compact = [&](std::string_view key) { return ks.Find(0, key, kStart)->full() == nullptr; };
  // INCR on a missing key: the compact counter, one op whose delta is the lone chain.
  REQUIRE(ks.IncrString(0, "n", 5, kStart).ok());
  CHECK(compact("n"));
  CHECK(ks.Find(0, "n", kStart)->GetString(kStart) == "5");
  CHECK(ks.Find(0, "n", kStart)->CompactValue() == std::nullopt);  // no text stored
  REQUIRE(ks.IncrString(0, "n", -7, kStart).ok());
  CHECK(compact("n"));
  CHECK(ks.Find(0, "n", kStart)->GetString(kStart) == "-2");
  CHECK(ks.Find(0, "n", kStart)->TypeAt(kStart) == crdt::ObjectType::kString);
  REQUIRE(ops.ops.size() == 2);
  const crdt::KeyOp& last = std::get<2>(ops.ops.back());
  CHECK(last.delta.GetString(kStart) == "-2");
  CHECK(last.context.Contains(std::get<2>(ops.ops.front()).first_dot));  // observes the last
  // An overflowing total is refused and leaves the counter as it was.
  REQUIRE(ks.IncrString(0, "m", INT64_MAX, kStart).ok());
  CHECK(ks.IncrString(0, "m", 1, kStart).error().code == ErrorCode::kOverflow);
  CHECK(ks.Find(0, "m", kStart)->GetString(kStart) == std::to_string(INT64_MAX));
  // A peer's counter arrives compact too (another replica's chain); our INCR on it makes two
  // chains: the full form.
  REQUIRE(peer.IncrString(0, "p", 3, kStart).ok());
  for (const auto& [db, name, op] : peer_ops.ops) ks.ApplyRemote(db, name, op);
  CHECK(compact("p"));
  REQUIRE(ks.IncrString(0, "p", 1, kStart).ok());
  CHECK(!compact("p"));
  CHECK(ks.Find(0, "p", kStart)->GetString(kStart) == "4");
  // A TTL needs the full form; SET makes a compact string; INCR then keeps the base in full.
  REQUIRE(Expire(ks, "n", kStart + 1000, kStart).ok());
  CHECK(!compact("n"));
  ks.SetString(0, "n", "10", false, kStart);
  REQUIRE(ks.IncrString(0, "n", 1, kStart).ok());
  CHECK(ks.Find(0, "n", kStart)->GetString(kStart) == "11");
  // DEL leaves the chain's offsets as hidden metadata: no visible key, not counted.
  CHECK(ks.Delete(0, "m", kStart));
  CHECK(ks.Find(0, "m", kStart) == nullptr);
  CHECK(ks.Size(0) == 2);
  // Iteration hands out the expanded state.
  size_t counters = 0;
  ks.ForEach(0, [&](const std::string& key, const crdt::Key& value) {
    counters += (key == "p" || key == "n") && value.GetString(kStart).has_value() ? 1 : 0;
  });
  CHECK(counters == 2);
}

TEST_CASE("A plain string is stored compact and converts as writes change it",
          "[keyspace][strings]") {
  Keyspace ks(7, 1);
  ks.SetString(0, "k", "value", false, kStart);
  KeyRef ref = ks.Find(0, "k", kStart);
  REQUIRE(ref != nullptr);
  CHECK(ref->full() == nullptr);  // compact
  CHECK(ref->CompactValue() == std::optional<std::string_view>("value"));
  // A TTL needs the full form; SET without KEEPTTL clears it, and the key is compact again.
  REQUIRE(Expire(ks, "k", kStart + 1000, kStart).ok());
  ref = ks.Find(0, "k", kStart);
  REQUIRE(ref != nullptr);
  CHECK(ref->full() != nullptr);
  CHECK(ks.VolatileCount(0) == 1);
  ks.SetString(0, "k", "again", false, kStart);
  ref = ks.Find(0, "k", kStart);
  CHECK(ref->full() == nullptr);
  CHECK(ks.VolatileCount(0) == 0);
  // A counter on a missing key is a compact counter (the test below).
  REQUIRE(ks.IncrString(0, "n", 5, kStart).ok());
  ref = ks.Find(0, "n", kStart);
  CHECK(ref->full() == nullptr);
  CHECK(ref->GetString(kStart) == "5");
  // DEL of a compact key removes it at once.
  CHECK(ks.Delete(0, "k", kStart));
  CHECK(ks.Find(0, "k", kStart) == nullptr);
  CHECK(ks.Size(0) == 1);
}

TEST_CASE("Compact keys keep names and values of every length across the short/long layouts",
          "[keyspace][strings]") {
  // Short layout: name < 4096 and value < 64 KiB; anything longer stores both lengths apart.
  const std::string long_name(5000, 'n');
  const std::vector<size_t> sizes = {
      0, 1, 16, 4095, 4096, (size_t{1} << 16) - 1, size_t{1} << 16, 300'000, 17};
  for (const std::string& name : {std::string("k"), std::string(4095, 'm'), long_name}) {
    Keyspace ks(7, 1);
    for (size_t size : sizes) {  // each write grows, shrinks or keeps the allocation
      const std::string value(size, static_cast<char>('a' + size % 26));
      ks.SetString(0, name, value, false, kStart);
      const KeyRef ref = ks.Find(0, name, kStart);
      REQUIRE(ref != nullptr);
      CHECK(ref->full() == nullptr);
      CHECK(ref->CompactValue() == std::optional<std::string_view>(value));
      CHECK(ks.Find(0, name, kStart)->GetString(kStart) == value);
    }
    CHECK(ks.Size(0) == 1);
    CHECK(ks.Delete(0, name, kStart));
    CHECK(ks.Size(0) == 0);
  }
}

TEST_CASE("What iterations expanded is released by a write or ReleaseIterations",
          "[keyspace][strings]") {
  Keyspace ks(7, 1);
  for (int i = 0; i < 10; ++i) ks.SetString(0, "k" + std::to_string(i), "v", false, kStart);
  CHECK(ks.held_iterations() == 0);
  size_t seen = 0;
  ks.ForEach(0, [&](const std::string&, const crdt::Key& value) {
    seen += value.GetString(kStart) == "v" ? 1 : 0;
  });
  CHECK(seen == 10);
  CHECK(ks.held_iterations() == 20);  // each name, and each compact key expanded
  ks.ReleaseIterations();
  CHECK(ks.held_iterations() == 0);
  (void)ks.Scan(0, 0, 100, [](const std::string&, const crdt::Key&) {});
  CHECK(ks.held_iterations() > 0);
  ks.SetString(0, "k0", "w", false, kStart);
  CHECK(ks.held_iterations() == 0);
}

}  // namespace
}  // namespace lattice::server
