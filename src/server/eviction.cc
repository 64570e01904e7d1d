#include "server/eviction.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lattice/common/numbers.h"
#include "resp/errors.h"
#include "server/scripting/script_engine.h"
#include "server/server.h"
#include "store/keyspace.h"
#include "store/replication.h"
#include "util/allocator.h"
#include "util/ascii.h"

namespace lattice::server {

namespace {

struct PolicyName {
  EvictionPolicy policy;
  std::string_view name;
};
constexpr PolicyName kPolicyNames[] = {
    {EvictionPolicy::kNoEviction, "noeviction"},
    {EvictionPolicy::kAllKeysLru, "allkeys-lru"},
    {EvictionPolicy::kAllKeysLfu, "allkeys-lfu"},
    {EvictionPolicy::kAllKeysRandom, "allkeys-random"},
    {EvictionPolicy::kVolatileLru, "volatile-lru"},
    {EvictionPolicy::kVolatileLfu, "volatile-lfu"},
    {EvictionPolicy::kVolatileRandom, "volatile-random"},
    {EvictionPolicy::kVolatileTtl, "volatile-ttl"},
};

constexpr uint32_t kLfuMinutesMax = 0xffff;

bool IsRandom(EvictionPolicy policy) {
  return policy == EvictionPolicy::kAllKeysRandom || policy == EvictionPolicy::kVolatileRandom;
}

}  // namespace

std::optional<EvictionPolicy> ParseEvictionPolicy(std::string_view name) {
  for (const PolicyName& entry : kPolicyNames) {
    if (entry.name == name) return entry.policy;
  }
  return std::nullopt;
}

std::string_view EvictionPolicyName(EvictionPolicy policy) {
  for (const PolicyName& entry : kPolicyNames) {
    if (entry.policy == policy) return entry.name;
  }
  return "noeviction";
}

bool IsLfu(EvictionPolicy policy) {
  return policy == EvictionPolicy::kAllKeysLfu || policy == EvictionPolicy::kVolatileLfu;
}

bool IsVolatile(EvictionPolicy policy) {
  return policy == EvictionPolicy::kVolatileLru || policy == EvictionPolicy::kVolatileLfu ||
         policy == EvictionPolicy::kVolatileRandom || policy == EvictionPolicy::kVolatileTtl;
}

uint32_t LruClock(int64_t now_ms) {
  return static_cast<uint32_t>(static_cast<uint64_t>(now_ms) / kLruResolutionMs) & kLruClockMax;
}

uint64_t LruIdleMs(uint32_t lru, int64_t now_ms) {
  const uint32_t clock = LruClock(now_ms);
  lru &= kLruClockMax;
  const uint64_t ticks = clock >= lru ? clock - lru : clock + (kLruClockMax - lru);
  return ticks * kLruResolutionMs;
}

uint32_t LfuMinutes(int64_t now_ms) {
  return static_cast<uint32_t>(static_cast<uint64_t>(now_ms) / 60'000) & kLfuMinutesMax;
}

uint32_t LfuDecayed(uint32_t access, int64_t now_ms, int decay_time) {
  const uint32_t last = (access >> 8) & kLfuMinutesMax;
  const uint32_t counter = access & 0xff;
  if (decay_time <= 0) return counter;
  const uint32_t now = LfuMinutes(now_ms);
  const uint32_t elapsed = now >= last ? now - last : kLfuMinutesMax - last + now;
  const uint32_t periods = elapsed / static_cast<uint32_t>(decay_time);
  return periods > counter ? 0 : counter - periods;
}

uint32_t LfuLogIncr(uint32_t counter, int log_factor, double random01) {
  if (counter >= 255) return 255;
  const double base = counter > kLfuInitVal ? counter - kLfuInitVal : 0;
  const double p = 1.0 / (base * std::max(log_factor, 0) + 1);
  return random01 < p ? counter + 1 : counter;
}

// ---- EvictionPool ---------------------------------------------------------------------------

void EvictionPool::Offer(uint64_t score, int db, std::string_view key) {
  for (size_t i = 0; i < size_; ++i) {
    if (entries_[i].db == db && entries_[i].key == key) {
      // Already kept (sampled again): take the new score and restore the order.
      Candidate moved = std::move(entries_[i]);
      std::move(entries_.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                entries_.begin() + static_cast<std::ptrdiff_t>(size_),
                entries_.begin() + static_cast<std::ptrdiff_t>(i));
      --size_;
      moved.score = score;
      Offer(moved.score, moved.db, moved.key);
      return;
    }
  }
  // The first kept candidate with a score not below this one: insert before it.
  size_t at = 0;
  while (at < size_ && entries_[at].score < score) ++at;
  if (size_ == kSize) {
    if (at == 0) return;  // worse than every kept one
    // Drop the worst (index 0) to make room below `at`.
    std::move(entries_.begin() + 1, entries_.begin() + static_cast<std::ptrdiff_t>(at),
              entries_.begin());
    --at;
  } else {
    std::move_backward(entries_.begin() + static_cast<std::ptrdiff_t>(at),
                       entries_.begin() + static_cast<std::ptrdiff_t>(size_),
                       entries_.begin() + static_cast<std::ptrdiff_t>(size_) + 1);
    ++size_;
  }
  entries_[at].score = score;
  entries_[at].db = db;
  entries_[at].key.assign(key);
}

std::optional<EvictionPool::Candidate> EvictionPool::TakeBest() {
  if (size_ == 0) return std::nullopt;
  --size_;
  return std::move(entries_[size_]);
}

// ---- Evictor --------------------------------------------------------------------------------

Evictor::Evictor(Keyspace& keyspace, Rng& rng, Gauge gauge)
    : keyspace_(keyspace), rng_(rng), gauge_(std::move(gauge)) {}

void Evictor::Configure(const EvictionSettings& settings) {
  if (settings.policy != settings_.policy) pool_.Clear();
  settings_ = settings;
  settings_.samples = std::clamp(settings_.samples, 1, 64);
  if (settings_.maxmemory == 0) out_of_memory_ = false;
}

uint32_t Evictor::NewKeyStamp(int64_t now_ms) const {
  return lfu() ? (LfuMinutes(now_ms) << 8) | kLfuInitVal : LruClock(now_ms);
}

void Evictor::Touch(const StoredKey& stored, int64_t now_ms) {
  if (!lfu()) {
    stored.set_access(LruClock(now_ms));
    return;
  }
  uint32_t counter = LfuDecayed(stored.access(), now_ms, settings_.lfu_decay_time);
  const double random01 =
      static_cast<double>(rng_.Uniform(uint64_t{1} << 53)) / static_cast<double>(uint64_t{1} << 53);
  counter = LfuLogIncr(counter, settings_.lfu_log_factor, random01);
  stored.set_access((LfuMinutes(now_ms) << 8) | counter);
}

uint64_t Evictor::CountedMemory() const {
  const uint64_t used = gauge_.used ? gauge_.used() : 0;
  return used - std::min(used, NotCounted());
}

uint64_t Evictor::TimeLimitUs() const {
  // Valkey's evictionTimeLimitUs: 50 us per step up to 10 (the default, 500 us), then growing
  // 15% per step, and no limit at 100.
  const int tenacity = std::clamp(settings_.tenacity, 0, 100);
  if (tenacity <= 10) return 50 * static_cast<uint64_t>(tenacity);
  if (tenacity < 100) return static_cast<uint64_t>(500.0 * std::pow(1.15, tenacity - 10.0));
  return std::numeric_limits<uint64_t>::max();
}

uint64_t Evictor::Score(const KeyRef& ref, int64_t now_ms) const {
  switch (settings_.policy) {
    case EvictionPolicy::kAllKeysLfu:
    case EvictionPolicy::kVolatileLfu:
      return 255 - Frequency(*ref.stored(), now_ms);
    case EvictionPolicy::kVolatileTtl: {
      const std::optional<int64_t> at = ref.ExpiryMs();
      return at ? std::numeric_limits<uint64_t>::max() -
                      static_cast<uint64_t>(std::max<int64_t>(*at, 0))
                : 0;
    }
    default:
      return IdleMs(*ref.stored(), now_ms);
  }
}

void Evictor::Populate(int db, int64_t now_ms) {
  keyspace_.SampleKeys(
      db, IsVolatile(settings_.policy), static_cast<size_t>(settings_.samples), now_ms, rng_,
      [&](std::string_view key, KeyRef ref) { pool_.Offer(Score(ref, now_ms), db, key); });
}

std::optional<EvictionPool::Candidate> Evictor::PickVictim(int64_t now_ms) {
  const int dbs = keyspace_.databases();
  const bool volatile_only = IsVolatile(settings_.policy);
  const auto has_keys = [&](int db) {
    return volatile_only ? keyspace_.VolatileCount(db) > 0 : keyspace_.Size(db) > 0;
  };
  if (IsRandom(settings_.policy)) {
    for (int tried = 0; tried < dbs; ++tried) {
      const int db = next_db_;
      next_db_ = (next_db_ + 1) % dbs;
      if (!has_keys(db)) continue;
      std::optional<EvictionPool::Candidate> chosen;
      keyspace_.SampleKeys(db, volatile_only, 1, now_ms, rng_,
                           [&](std::string_view key, KeyRef /*ref*/) {
                             chosen = EvictionPool::Candidate{0, db, std::string(key)};
                           });
      if (chosen) return chosen;
    }
    return std::nullopt;
  }
  // The sampling policies: a few rounds of sampling every db, taking the best candidate that
  // still exists (a kept candidate may have been deleted or rewritten since).
  for (int round = 0; round < 8; ++round) {
    bool any = false;
    for (int db = 0; db < dbs; ++db) {
      if (!has_keys(db)) continue;
      any = true;
      Populate(db, now_ms);
    }
    if (!any) return std::nullopt;
    while (std::optional<EvictionPool::Candidate> best = pool_.TakeBest()) {
      const KeyRef ref = keyspace_.Find(best->db, best->key, now_ms);
      if (ref == nullptr) continue;  // a ghost
      if (volatile_only && !ref.ExpiryMs().has_value()) continue;
      return best;
    }
  }
  return std::nullopt;
}

Evictor::Outcome Evictor::Perform(int64_t now_ms, const std::function<int64_t()>& monotonic_us) {
  out_of_memory_ = false;
  if (settings_.maxmemory == 0) return Outcome::kOk;
  const uint64_t counted = CountedMemory();
  if (counted <= settings_.maxmemory) return Outcome::kOk;
  if (settings_.policy == EvictionPolicy::kNoEviction) {
    out_of_memory_ = true;
    return Outcome::kFail;
  }
  const uint64_t to_free = counted - settings_.maxmemory;
  const uint64_t limit_us = TimeLimitUs();
  const int64_t start_us = monotonic_us();
  uint64_t freed = 0;
  uint64_t evicted = 0;
  while (freed < to_free) {
    std::optional<EvictionPool::Candidate> victim = PickVictim(now_ms);
    if (!victim) {
      out_of_memory_ = true;
      return Outcome::kFail;
    }
    const uint64_t before = gauge_.used();
    // Told first, so the delete op that follows raises `evicted` and not `del`.
    if (evicted_hook_) evicted_hook_(victim->db, victim->key);
    keyspace_.Delete(victim->db, victim->key, now_ms);
    const uint64_t after = gauge_.used();
    freed += before > after ? before - after : 0;
    ++evicted_keys_;
    ++evicted;
    if (evicted % 16 == 0 &&
        freed<to_free&& static_cast<uint64_t>(monotonic_us() - start_us)> limit_us) {
      return Outcome::kRunning;
    }
  }
  return Outcome::kOk;
}

// ---- UsedMemoryEstimate ---------------------------------------------------------------------

void UsedMemoryEstimate::Refresh(uint64_t allocated) {
  base_ = allocated;
  thread_base_ = util::ThreadNetAllocated();
  read_ = true;
}

uint64_t UsedMemoryEstimate::Now() const {
  if (!read_) return util::AllocatedBytes();
  const int64_t grown = util::ThreadNetAllocated() - thread_base_;
  return grown < 0 && static_cast<uint64_t>(-grown) > base_ ? 0
                                                            : base_ + static_cast<uint64_t>(grown);
}

// ---- the server's side ----------------------------------------------------------------------

void Server::ConfigureEviction() {
  if (evictor_ == nullptr) {
    Evictor::Gauge gauge;
    gauge.used = [this] { return used_memory_.Now(); };
    gauge.not_counted = [this]() -> uint64_t {
      return replication_ != nullptr ? replication_->replicator().retained_bytes() : 0;
    };
    evictor_ = std::make_unique<Evictor>(keyspace_, rng_, std::move(gauge));
    evictor_->set_evicted_hook([this](int db, std::string_view key) { NotifyEvicted(db, key); });
    used_memory_.Refresh(util::AllocatedBytes());
  }
  EvictionSettings settings;
  settings.maxmemory = config_.maxmemory();
  settings.policy =
      ParseEvictionPolicy(config_.maxmemory_policy()).value_or(EvictionPolicy::kNoEviction);
  const std::string_view names[] = {"maxmemory-samples", "maxmemory-eviction-tenacity",
                                    "lfu-log-factor", "lfu-decay-time"};
  for (const auto& [name, text] : config_.Get(names)) {
    const std::optional<int64_t> number = ParseInt64Strict(text);
    if (!number.has_value()) continue;
    const int value = static_cast<int>(std::clamp<int64_t>(*number, 0, INT32_MAX));
    if (name == "maxmemory-samples") settings.samples = value;
    if (name == "maxmemory-eviction-tenacity") settings.tenacity = value;
    if (name == "lfu-log-factor") settings.lfu_log_factor = value;
    if (name == "lfu-decay-time") settings.lfu_decay_time = value;
  }
  evictor_->Configure(settings);
}

void Server::NotifyEvicted(int db, std::string_view key) { notifier_.Evicted(db, key); }

bool Server::AdmitUnderMaxmemory(const Command& command, ReplyBuilder& reply) {
  const int64_t now_ms = clock_.NowMs();
  StoredKey::SetNewAccessStamp(evictor_->NewKeyStamp(now_ms));
  if (evictor_->settings().maxmemory == 0) return true;
  const Command& top = command.parent != nullptr ? *command.parent : command;
  const bool denyoom = ((top.spec.flags | command.spec.flags) & kDenyOom) != 0;
  if (scripting_->running()) {
    // A command of a script (Valkey's scriptVerifyOOM): refused when memory was over the limit
    // as the script started, the script has not written yet and did not declare allow-oom.
    const ScriptEngine::Run* run = scripting_->run();
    if (!denyoom || !evictor_->out_of_memory() || run->wrote || run->allow_oom) return true;
    reply.Error(errors::kOom);
    return false;
  }
  if (executing_multi_ || execute_depth_ > 1) return true;  // checked when queued
  const Evictor::Outcome outcome =
      evictor_->Perform(now_ms, [this] { return clock_.MonotonicUs(); });
  if (outcome != Evictor::Outcome::kFail || !denyoom) return true;
  reply.Error(errors::kOom);
  return false;
}

}  // namespace lattice::server
