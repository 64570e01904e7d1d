#pragma once
// maxmemory and eviction, as Valkey does them (docs/semantics.md, "Memory limits and eviction";
// docs/operations.md, "Memory limits").
//
// - Access tracking: every key's StoredKey holds a 24-bit access word (Valkey's robj->lru). Under
//   an LRU (or random, TTL, noeviction) policy it is the LRU clock of the last access, in seconds
//   modulo 2^24; under an LFU policy it is the minutes of the last decrement (16 bits) and a
//   logarithmic access counter (8 bits, starting at 5), incremented with probability
//   1 / ((counter - 5) * lfu-log-factor + 1) and decremented by one per lfu-decay-time minutes
//   of idleness. Local commands touch the keys they read or write; a peer's op does not (it is
//   no access here), except that a key it creates starts at the current stamp.
// - Enforcement: before each top-level command, when maxmemory is set and the memory counted
//   for eviction passes it, Perform deletes keys chosen by the policy until it is back under,
//   within maxmemory-eviction-tenacity's time budget (Valkey's: the server's cron goes on where
//   a command stopped). The LRU, LFU and TTL policies sample maxmemory-samples keys per db into
//   a pool of the 16 best candidates (EvictionPool) and evict the best; the random ones take a
//   random key, db after db. A policy that finds nothing to evict fails, and the server refuses
//   commands flagged denyoom with -OOM until memory is under the limit again.
// - Across regions: an eviction is Keyspace::Delete, an observed-remove DEL op, so every region
//   drops what the evicting region had seen of the key while a concurrent write elsewhere
//   survives; the regions converge as for any DEL.
// - Memory: used_memory is jemalloc's stats.allocated (refreshed by the server's cron) plus what
//   this thread allocated net since (util::ThreadNetAllocated: two loads, no lock). The ops
//   retained for peer regions are not counted (INFO's mem_not_counted_for_evict), as Valkey does
//   not count its replicas' output buffers: deleting keys cannot shrink them (each eviction adds
//   a DEL op), and crdt-backlog-size bounds them.
//
// Not thread-safe: the event-loop thread owns it. Time is a parameter; randomness comes from the
// server's seeded Rng.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "lattice/common/rng.h"
#include "store/stored_key.h"

namespace lattice::server {

class Keyspace;

enum class EvictionPolicy {
  kNoEviction,
  kAllKeysLru,
  kAllKeysLfu,
  kAllKeysRandom,
  kVolatileLru,
  kVolatileLfu,
  kVolatileRandom,
  kVolatileTtl,
};

// "allkeys-lru" etc. (nullopt for anything else); the name back.
std::optional<EvictionPolicy> ParseEvictionPolicy(std::string_view name);
std::string_view EvictionPolicyName(EvictionPolicy policy);
bool IsLfu(EvictionPolicy policy);
bool IsVolatile(EvictionPolicy policy);

struct EvictionSettings {
  uint64_t maxmemory = 0;  // bytes; 0: no limit
  EvictionPolicy policy = EvictionPolicy::kNoEviction;
  int samples = 5;    // maxmemory-samples
  int tenacity = 10;  // maxmemory-eviction-tenacity
  int lfu_log_factor = 10;
  int lfu_decay_time = 1;  // minutes per decrement; 0: never decays
};

// ---- the access word ------------------------------------------------------------------------
inline constexpr uint32_t kLruClockMax = (uint32_t{1} << 24) - 1;
inline constexpr int64_t kLruResolutionMs = 1000;
inline constexpr uint32_t kLfuInitVal = 5;

uint32_t LruClock(int64_t now_ms);
// Milliseconds since the LRU clock `lru` (Valkey's estimateObjectIdleTime; wraps after 194 days).
uint64_t LruIdleMs(uint32_t lru, int64_t now_ms);
uint32_t LfuMinutes(int64_t now_ms);  // 16 bits
// The LFU counter of `access` after the decay its idle minutes call for (Valkey's
// LFUDecrAndReturn): what OBJECT FREQ replies.
uint32_t LfuDecayed(uint32_t access, int64_t now_ms, int decay_time);
// One probabilistic increment (Valkey's LFULogIncr); `random01` uniform in [0, 1).
uint32_t LfuLogIncr(uint32_t counter, int log_factor, double random01);

// ---- the pool of candidates -----------------------------------------------------------------
// The best candidates seen so far, by score (higher is better: idle ms, 255 - LFU counter, or
// UINT64_MAX - expiry), at most kSize of them; a candidate worse than all kept ones is dropped
// when the pool is full. Valkey's EvictionPoolLRU.
class EvictionPool {
 public:
  static constexpr size_t kSize = 16;
  struct Candidate {
    uint64_t score = 0;
    int db = 0;
    std::string key;
  };

  // Keeps the candidate if it is among the kSize best (a key already kept is updated).
  void Offer(uint64_t score, int db, std::string_view key);
  // Removes and returns the best candidate (nullopt when empty).
  std::optional<Candidate> TakeBest();
  size_t size() const { return size_; }
  void Clear() { size_ = 0; }
  // Kept candidates, worst first (tests).
  const Candidate& at(size_t i) const { return entries_[i]; }

 private:
  std::array<Candidate, kSize> entries_;  // [0, size_): ascending score
  size_t size_ = 0;
};

// used_memory between two full reads of the allocator: the last stats.allocated plus what this
// thread allocated net since (util::ThreadNetAllocated). Valkey keeps a counter of its own.
class UsedMemoryEstimate {
 public:
  void Refresh(uint64_t allocated);  // after a full read (the server's cron)
  uint64_t Now() const;

 private:
  uint64_t base_ = 0;
  int64_t thread_base_ = 0;
  bool read_ = false;
};

// ---- enforcement ----------------------------------------------------------------------------
class Evictor {
 public:
  // Memory figures: `used` is the current used_memory estimate, `not_counted` what eviction
  // leaves aside (mem_not_counted_for_evict). Tests pass their own.
  struct Gauge {
    std::function<uint64_t()> used;
    std::function<uint64_t()> not_counted;
  };
  // Called once per evicted key, after its DEL was written: the `evicted` keyspace event.
  using EvictedHook = std::function<void(int db, std::string_view key)>;

  Evictor(Keyspace& keyspace, Rng& rng, Gauge gauge);

  void Configure(const EvictionSettings& settings);
  const EvictionSettings& settings() const { return settings_; }
  bool lfu() const { return IsLfu(settings_.policy); }
  void set_evicted_hook(EvictedHook hook) { evicted_hook_ = std::move(hook); }

  // The access word a new key gets, and one access to `stored` (LRU: the clock; LFU: decay and
  // a probabilistic increment). Setting the stamp costs nothing per key: StoredKey stamps new
  // allocations with it.
  uint32_t NewKeyStamp(int64_t now_ms) const;
  void Touch(const StoredKey& stored, int64_t now_ms);
  uint64_t IdleMs(const StoredKey& stored, int64_t now_ms) const {
    return LruIdleMs(stored.access(), now_ms);
  }
  uint32_t Frequency(const StoredKey& stored, int64_t now_ms) const {
    return LfuDecayed(stored.access(), now_ms, settings_.lfu_decay_time);
  }

  enum class Outcome {
    kOk,       // under the limit (or no limit)
    kRunning,  // evicted up to the time budget and still over: the cron goes on
    kFail,     // over the limit and nothing (more) to evict, or noeviction
  };
  // Valkey's performEvictions. `monotonic_us` measures the time budget.
  Outcome Perform(int64_t now_ms, const std::function<int64_t()>& monotonic_us);
  // Whether the last Perform failed (Valkey's pre_command_oom_state): denyoom commands are refused.
  bool out_of_memory() const { return out_of_memory_; }
  // Memory counted against maxmemory now: used - not_counted.
  uint64_t CountedMemory() const;
  uint64_t NotCounted() const { return gauge_.not_counted ? gauge_.not_counted() : 0; }

  uint64_t evicted_keys() const { return evicted_keys_; }
  void ResetStats() { evicted_keys_ = 0; }
  // How long Perform may run per call (Valkey's evictionTimeLimitUs); UINT64_MAX: no limit.
  uint64_t TimeLimitUs() const;

  // The next key the policy would evict (best of the pool after sampling every db), or nullopt.
  // Perform's choice; public for tests.
  std::optional<EvictionPool::Candidate> PickVictim(int64_t now_ms);

 private:
  // Fills the pool with samples of `db` scored for the policy.
  void Populate(int db, int64_t now_ms);
  uint64_t Score(const KeyRef& ref, int64_t now_ms) const;

  Keyspace& keyspace_;
  Rng& rng_;
  Gauge gauge_;
  EvictionSettings settings_;
  EvictionPool pool_;
  EvictedHook evicted_hook_;
  int next_db_ = 0;  // the random policies' db, round-robin
  uint64_t evicted_keys_ = 0;
  bool out_of_memory_ = false;
};

}  // namespace lattice::server
