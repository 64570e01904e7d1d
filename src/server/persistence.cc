#include "server/persistence.h"

#include <spdlog/spdlog.h>

#include <sstream>

#include "server/server.h"
#include "store/replication.h"

namespace lattice::server {
namespace {

// Valkey's CONFIG_BGSAVE_RETRY_DELAY: after a failed save, save points wait this long.
constexpr int64_t kRetryDelayMs = 5000;

}  // namespace

std::vector<std::pair<int64_t, int64_t>> ParseSavePoints(const std::string& text) {
  std::vector<std::pair<int64_t, int64_t>> points;
  std::istringstream in(text);
  int64_t seconds = 0;
  int64_t changes = 0;
  while (in >> seconds >> changes) points.emplace_back(seconds, changes);
  return points;
}

uint64_t Persistence::Changes() const {
  const KeyspaceStats& stats = server_.keyspace().stats();
  return stats.local_ops + stats.remote_ops;
}

void Persistence::Refresh() {
  const Replication* replication = server_.replication();
  if (replication == nullptr || replication->stats().snapshots_written == snapshots_seen_) {
    return;
  }
  snapshots_seen_ = replication->stats().snapshots_written;
  last_save_ms_ = replication->stats().last_snapshot_ms;
  changes_at_save_ = Changes();
}

Result<void> Persistence::Checkpoint(int64_t now_ms) {
  Replication* replication = server_.replication();
  if (replication == nullptr) {
    return Unexpected(ErrorCode::kInvalid, "no data dir: this node runs without persistence");
  }
  const uint64_t changes = Changes();
  Result<void> done = replication->Checkpoint(now_ms);
  if (!done.ok()) {
    spdlog::warn("Checkpoint failed: {}", done.error().message);
    last_failed_try_ms_ = now_ms;
    return done;
  }
  Refresh();
  changes_at_save_ = changes;
  return {};
}

Result<void> Persistence::Save(int64_t now_ms) {
  Result<void> done = Checkpoint(now_ms);
  last_bgsave_ok_ = done.ok();
  return done;
}

Persistence::Start Persistence::BackgroundSave(bool schedule) {
  if (server_.replication() == nullptr) return Start::kNotPossible;
  if (bgsave_pending_) return Start::kAlreadyInProgress;
  bgsave_pending_ = true;
  // A rewrite pending is the same checkpoint: the save is "scheduled" behind it, as Valkey.
  return rewrite_pending_ && schedule ? Start::kScheduled : Start::kStarted;
}

Persistence::Start Persistence::BackgroundRewrite() {
  if (server_.replication() == nullptr) return Start::kNotPossible;
  if (rewrite_pending_) return Start::kAlreadyInProgress;
  rewrite_pending_ = true;
  return bgsave_pending_ ? Start::kScheduled : Start::kStarted;
}

bool Persistence::CancelBackgroundSave() {
  const bool pending = bgsave_pending_;
  bgsave_pending_ = false;
  return pending;
}

bool Persistence::SavePointDue(int64_t now_ms) const {
  if (server_.replication() == nullptr) return false;
  if (!last_bgsave_ok_ && now_ms - last_failed_try_ms_ < kRetryDelayMs) return false;
  const uint64_t changes = Changes() - changes_at_save_;
  const int64_t since_ms = now_ms - (last_save_ms_ != 0 ? last_save_ms_ : server_.start_ms());
  for (const auto& [seconds, needed] : ParseSavePoints(server_.config().save())) {
    if (changes >= static_cast<uint64_t>(needed) && since_ms > seconds * 1000) return true;
  }
  return false;
}

void Persistence::Cron(int64_t now_ms) {
  Refresh();
  const bool save_point = !bgsave_pending_ && !rewrite_pending_ && SavePointDue(now_ms);
  if (!bgsave_pending_ && !rewrite_pending_ && !save_point) return;
  if (save_point) {
    spdlog::info("{} changes since the last save: saving", Changes() - changes_at_save_);
  }
  const int64_t start_ms = server_.clock().MonotonicUs() / 1000;
  const bool ok = Checkpoint(now_ms).ok();
  const int64_t took_s = (server_.clock().MonotonicUs() / 1000 - start_ms) / 1000;
  if (bgsave_pending_ || save_point) {
    last_bgsave_ok_ = ok;
    last_bgsave_time_s_ = took_s;
  }
  if (rewrite_pending_) {
    last_rewrite_ok_ = ok;
    last_rewrite_time_s_ = took_s;
    rewrites_ += ok ? 1 : 0;
  }
  bgsave_pending_ = false;
  rewrite_pending_ = false;
}

int64_t Persistence::last_save_s() const {
  return (last_save_ms_ != 0 ? last_save_ms_ : server_.start_ms()) / 1000;
}

uint64_t Persistence::changes_since_last_save() const { return Changes() - changes_at_save_; }

}  // namespace lattice::server
