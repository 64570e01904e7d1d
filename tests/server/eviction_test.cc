// The eviction pool, the LRU/LFU arithmetic, the sampling policies (server/eviction.h) on a
// keyspace with a fake memory gauge, and OBJECT IDLETIME/FREQ and -OOM through the server.
#include "server/eviction.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <string>

#include "server_test_util.h"
#include "store/keyspace.h"

namespace lattice::server {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;

TEST_CASE("EvictionPool keeps the best 16 candidates in order", "[eviction]") {
  EvictionPool pool;
  for (uint64_t score = 1; score <= 40; ++score) {
    // Scores arrive out of order: 1, 40, 2, 39, ...
    const uint64_t s = score % 2 == 1 ? (score + 1) / 2 : 41 - score / 2;
    pool.Offer(s, 0, "k" + std::to_string(s));
  }
  REQUIRE(pool.size() == EvictionPool::kSize);
  for (size_t i = 1; i < pool.size(); ++i) CHECK(pool.at(i - 1).score < pool.at(i).score);
  CHECK(pool.at(0).score == 25);  // the 16 best of 1..40
  // A candidate worse than every kept one is dropped; a better one replaces the worst.
  pool.Offer(3, 0, "worse");
  CHECK(pool.at(0).score == 25);
  pool.Offer(100, 1, "best");
  CHECK(pool.at(0).score == 26);
  std::optional<EvictionPool::Candidate> best = pool.TakeBest();
  REQUIRE(best.has_value());
  CHECK(best->key == "best");
  CHECK(best->db == 1);
  // A key offered again is kept once, with its new score.
  pool.Offer(30, 0, "k40");
  size_t copies = 0;
  for (size_t i = 0; i < pool.size(); ++i) copies += pool.at(i).key == "k40" ? 1 : 0;
  CHECK(copies == 1);
  CHECK(pool.TakeBest()->key == "k39");
}

TEST_CASE("LRU clock and idle time wrap as Valkey's", "[eviction]") {
  const uint32_t then = LruClock(kNow);
  CHECK(LruIdleMs(then, kNow) == 0);
  CHECK(LruIdleMs(then, kNow + 5'000) == 5'000);
  // A clock that wrapped past 2^24 seconds gives the elapsed time as Valkey computes it (its
  // wrap adds LRU_CLOCK_MAX - lru, one tick short of the true 4).
  CHECK(LruIdleMs(kLruClockMax - 1, (int64_t{kLruClockMax} + 3) * 1000) == 3'000);  // Valkey's sum
}

TEST_CASE("LFU counter: logarithmic increments and decay per period", "[eviction]") {
  // Log factor 0: every access increments (until 255).
  CHECK(LfuLogIncr(5, 0, 0.99) == 6);
  CHECK(LfuLogIncr(255, 0, 0.0) == 255);
  // Factor 10 at counter 15: p = 1 / (10 * 10 + 1).
  CHECK(LfuLogIncr(15, 10, 0.5) == 15);
  CHECK(LfuLogIncr(15, 10, 0.001) == 16);
  // Below the initial value the increment is certain.
  CHECK(LfuLogIncr(2, 10, 0.99) == 3);
  const uint32_t access = (LfuMinutes(kNow) << 8) | 20;
  CHECK(LfuDecayed(access, kNow, 1) == 20);
  CHECK(LfuDecayed(access, kNow + 3 * 60'000, 1) == 17);
  CHECK(LfuDecayed(access, kNow + 30 * 60'000, 2) == 5);
  CHECK(LfuDecayed(access, kNow + 300 * 60'000, 1) == 0);
  CHECK(LfuDecayed(access, kNow + 300 * 60'000, 0) == 20);  // decay off
}

TEST_CASE("Eviction policies parse and print", "[eviction]") {
  for (std::string_view name :
       {"noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru",
        "volatile-lfu", "volatile-random", "volatile-ttl"}) {
    const std::optional<EvictionPolicy> policy = ParseEvictionPolicy(name);
    REQUIRE(policy.has_value());
    CHECK(EvictionPolicyName(*policy) == name);
  }
  CHECK_FALSE(ParseEvictionPolicy("lru").has_value());
}

// A keyspace whose "memory" is 100 bytes per key: the evictor's gauge.
struct Fixture {
  Keyspace keyspace{1, 4};
  Rng rng{42};
  uint64_t per_key = 100;
  Evictor evictor{keyspace, rng,
                  Evictor::Gauge{.used = [this] { return Used(); }, .not_counted = {}}};
  int64_t now_ms = kNow;

  uint64_t Used() const {
    uint64_t keys = 0;
    for (int db = 0; db < keyspace.databases(); ++db) keys += keyspace.Size(db);
    return keys * per_key;
  }
  void Set(int db, const std::string& key, int64_t access_ms) {
    StoredKey::SetNewAccessStamp(evictor.NewKeyStamp(access_ms));
    keyspace.SetString(db, key, "v", false, now_ms);
  }
  void Configure(EvictionPolicy policy, uint64_t maxmemory, int samples = 5) {
    evictor.Configure({.maxmemory = maxmemory, .policy = policy, .samples = samples});
  }
  Evictor::Outcome Perform() {
    return evictor.Perform(now_ms, [] { return int64_t{0}; });
  }
};

TEST_CASE("allkeys-lru evicts the idlest keys first, across dbs", "[eviction]") {
  Fixture f;
  // 100 keys in two dbs; key i was last accessed i seconds after the start.
  for (int i = 0; i < 100; ++i) f.Set(i % 2, "k" + std::to_string(i), kNow + i * 1000);
  f.now_ms = kNow + 200'000;
  // Sampling every key (64 samples over 50 keys per db) makes the pool exact.
  f.Configure(EvictionPolicy::kAllKeysLru, 90 * f.per_key, 64);
  REQUIRE(f.Perform() == Evictor::Outcome::kOk);
  CHECK(f.evictor.evicted_keys() == 10);
  for (int i = 0; i < 100; ++i) {
    const bool present = f.keyspace.Find(i % 2, "k" + std::to_string(i), f.now_ms) != nullptr;
    CHECK(present == (i >= 10));
  }
}

TEST_CASE("allkeys-lru with 5 samples prefers idle keys", "[eviction]") {
  Fixture f;
  for (int i = 0; i < 1000; ++i) f.Set(0, "k" + std::to_string(i), kNow + i * 1000);
  f.now_ms = kNow + 2'000'000;
  f.Configure(EvictionPolicy::kAllKeysLru, 900 * f.per_key);
  REQUIRE(f.Perform() == Evictor::Outcome::kOk);
  REQUIRE(f.evictor.evicted_keys() == 100);
  // The evicted keys are mostly old ones: the mean age rank of evicted keys is well below
  // the middle (random choice would give about 500).
  int64_t rank_sum = 0;
  for (int i = 0; i < 1000; ++i) {
    if (f.keyspace.Find(0, "k" + std::to_string(i), f.now_ms) == nullptr) rank_sum += i;
  }
  CHECK(rank_sum / 100 < 300);
}

TEST_CASE("allkeys-lfu evicts the least frequently used", "[eviction]") {
  Fixture f;
  f.Configure(EvictionPolicy::kAllKeysLfu, 0);
  f.evictor.Configure({.maxmemory = 0, .policy = EvictionPolicy::kAllKeysLfu, .lfu_log_factor = 0});
  for (int i = 0; i < 40; ++i) {
    f.Set(0, "k" + std::to_string(i), f.now_ms);
    const KeyRef ref = f.keyspace.Find(0, "k" + std::to_string(i), f.now_ms);
    for (int touch = 0; touch < i; ++touch) f.evictor.Touch(*ref.stored(), f.now_ms);
    CHECK(f.evictor.Frequency(*ref.stored(), f.now_ms) == static_cast<uint32_t>(5 + i));
  }
  f.evictor.Configure({.maxmemory = 30 * f.per_key,
                       .policy = EvictionPolicy::kAllKeysLfu,
                       .samples = 64,
                       .lfu_log_factor = 0});
  REQUIRE(f.Perform() == Evictor::Outcome::kOk);
  for (int i = 0; i < 40; ++i) {
    CHECK((f.keyspace.Find(0, "k" + std::to_string(i), f.now_ms) != nullptr) == (i >= 10));
  }
}

TEST_CASE("volatile policies evict only keys with a TTL, and fail without any", "[eviction]") {
  for (EvictionPolicy policy : {EvictionPolicy::kVolatileLru, EvictionPolicy::kVolatileLfu,
                                EvictionPolicy::kVolatileRandom, EvictionPolicy::kVolatileTtl}) {
    Fixture f;
    for (int i = 0; i < 20; ++i) f.Set(0, "keep" + std::to_string(i), kNow);
    for (int i = 0; i < 20; ++i) {
      const std::string key = "ttl" + std::to_string(i);
      f.Set(0, key, kNow + i);
      REQUIRE(f.keyspace
                  .Write(0, key, f.now_ms,
                         [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
                           return k.Expire(f.now_ms + 10'000 + i * 1000, w, shard);
                         })
                  .ok());
    }
    f.Configure(policy, 30 * f.per_key);
    REQUIRE(f.Perform() == Evictor::Outcome::kOk);
    CHECK(f.evictor.evicted_keys() == 10);
    for (int i = 0; i < 20; ++i) {
      CHECK(f.keyspace.Find(0, "keep" + std::to_string(i), f.now_ms) != nullptr);
    }
    if (policy == EvictionPolicy::kVolatileTtl) {
      // volatile-ttl takes the nearest expiries first (each sample round sees most keys).
      CHECK(f.keyspace.Find(0, "ttl0", f.now_ms) == nullptr);
      CHECK(f.keyspace.Find(0, "ttl19", f.now_ms) != nullptr);
    }
    // Below the persistent keys' size nothing more can go: the evictor fails.
    f.Configure(policy, 5 * f.per_key);
    CHECK(f.Perform() == Evictor::Outcome::kFail);
    CHECK(f.evictor.out_of_memory());
    CHECK(f.keyspace.VolatileCount(0) == 0);
    CHECK(f.keyspace.Size(0) == 20);
  }
}

TEST_CASE("noeviction fails over the limit and evicts nothing", "[eviction]") {
  Fixture f;
  for (int i = 0; i < 10; ++i) f.Set(0, "k" + std::to_string(i), kNow);
  f.Configure(EvictionPolicy::kNoEviction, 5 * f.per_key);
  CHECK(f.Perform() == Evictor::Outcome::kFail);
  CHECK(f.keyspace.Size(0) == 10);
  f.Configure(EvictionPolicy::kNoEviction, 50 * f.per_key);
  CHECK(f.Perform() == Evictor::Outcome::kOk);
  CHECK_FALSE(f.evictor.out_of_memory());
}

TEST_CASE("an eviction is a replicated DEL and calls the evicted hook", "[eviction]") {
  Fixture f;
  testing::OpCollector ops;
  f.keyspace.AddObserver(&ops);
  std::map<std::string, int> notified;
  f.evictor.set_evicted_hook(
      [&](int db, std::string_view key) { notified[std::string(key)] = db; });
  for (int i = 0; i < 10; ++i) f.Set(2, "k" + std::to_string(i), kNow);
  Keyspace other(2, 4);
  ops.DeliverTo(other);
  CHECK(other.Size(2) == 10);
  f.Configure(EvictionPolicy::kAllKeysRandom, 7 * f.per_key);
  REQUIRE(f.Perform() == Evictor::Outcome::kOk);
  CHECK(notified.size() == 3);
  CHECK(ops.ops.size() == 3);
  ops.DeliverTo(other);
  CHECK(other.Size(2) == 7);
  for (const auto& [key, db] : notified) {
    CHECK(db == 2);
    CHECK(f.keyspace.Find(2, key, f.now_ms) == nullptr);
    CHECK(other.Find(2, key, f.now_ms) == nullptr);
  }
}

TEST_CASE("OBJECT IDLETIME and FREQ through the server", "[eviction]") {
  testing::TestServer t;
  CHECK(t.Run({"SET", "k", "v"}) == "OK");
  CHECK(t.Run({"OBJECT", "IDLETIME", "k"}) == "0");
  t.clock().now_us += 10'000'000;
  CHECK(t.Run({"OBJECT", "IDLETIME", "k"}) == "10");
  CHECK(t.Run({"GET", "k"}) == "\"v\"");
  CHECK(t.Run({"OBJECT", "IDLETIME", "k"}) == "0");
  CHECK(t.Run({"OBJECT", "FREQ", "k"}).starts_with("(error) ERR An LFU maxmemory policy"));
  CHECK(t.Run({"CONFIG", "SET", "maxmemory-policy", "allkeys-lfu", "lfu-log-factor", "0"}) == "OK");
  CHECK(t.Run({"SET", "f", "v"}) == "OK");
  CHECK(t.Run({"OBJECT", "FREQ", "f"}) == "5");
  CHECK(t.Run({"GET", "f"}) == "\"v\"");
  CHECK(t.Run({"APPEND", "f", "w"}) == "2");
  CHECK(t.Run({"OBJECT", "FREQ", "f"}) == "7");
  CHECK(t.Run({"OBJECT", "IDLETIME", "f"})
            .starts_with("(error) ERR An LFU maxmemory policy is selected, idle time not tracked"));
  CHECK(t.Run({"OBJECT", "FREQ", "missing"}) == "(nil)");
  CHECK(t.Run({"INFO", "memory"}).find("maxmemory_policy:allkeys-lfu") != std::string::npos);
}

}  // namespace
}  // namespace lattice::server
