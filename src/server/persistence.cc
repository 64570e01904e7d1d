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
  if (running_rewrite_) Finish(done.ok(), now_ms);  // Checkpoint ended its child
  return done;
}

Persistence::Start Persistence::BackgroundSave(bool schedule) {
  const Replication* replication = server_.replication();
  if (replication == nullptr) return Start::kNotPossible;
  if (bgsave_in_progress()) return Start::kAlreadyInProgress;
  if (replication->checkpoint_in_progress()) {
    if (!schedule) return Start::kBusy;
    bgsave_pending_ = true;
    return Start::kScheduled;
  }
  bgsave_pending_ = true;
  // A rewrite pending is the same checkpoint: the save is "scheduled" behind it, as Valkey.
  return rewrite_pending_ && schedule ? Start::kScheduled : Start::kStarted;
}

Persistence::Start Persistence::BackgroundRewrite() {
  const Replication* replication = server_.replication();
  if (replication == nullptr) return Start::kNotPossible;
  if (rewrite_in_progress()) return Start::kAlreadyInProgress;
  rewrite_pending_ = true;
  return bgsave_pending_ || replication->checkpoint_in_progress() ? Start::kScheduled
                                                                  : Start::kStarted;
}

bool Persistence::rewrite_in_progress() const {
  const Replication* replication = server_.replication();
  return rewrite_pending_ || running_rewrite_ ||
         (replication != nullptr && replication->automatic_checkpoint_in_progress());
}

bool Persistence::CancelBackgroundSave() {
  const bool pending = bgsave_pending_ || running_bgsave_;
  bgsave_pending_ = false;
  if (running_bgsave_) {
    server_.replication()->AbortBackgroundCheckpoint();
    Finish(false, server_.clock().NowMs());
  }
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
  const Replication* replication = server_.replication();
  if (replication == nullptr) return;
  if ((running_bgsave_ || running_rewrite_) &&
      replication->stats().checkpoints_ended != ended_at_start_) {
    Finish(replication->stats().last_checkpoint_ok, now_ms);
  }
  if (replication->checkpoint_in_progress()) return;  // one child at a time
  // A snapshot install in progress: a checkpoint waits for its end (docs/replication.md).
  if (replication->replicator().installing()) return;
  const bool save_point = !bgsave_pending_ && !rewrite_pending_ && SavePointDue(now_ms);
  if (!bgsave_pending_ && !rewrite_pending_ && !save_point) return;
  if (save_point) {
    spdlog::info("{} changes since the last save: saving", Changes() - changes_at_save_);
  }
  StartChild(now_ms, bgsave_pending_ || save_point, rewrite_pending_);
}

// Without child processes (the simulator) the checkpoint is written here and ends at once.
void Persistence::StartChild(int64_t now_ms, bool bgsave, bool rewrite) {
  Replication* replication = server_.replication();
  running_bgsave_ = bgsave;
  running_rewrite_ = rewrite;
  bgsave_pending_ = false;
  rewrite_pending_ = false;
  started_ms_ = MonotonicMs();
  changes_at_start_ = Changes();
  ended_at_start_ = replication->stats().checkpoints_ended;
  Result<void> started = replication->CheckpointInBackground(now_ms);
  if (!started.ok()) {
    spdlog::warn("Checkpoint failed: {}", started.error().message);
    Finish(false, now_ms);
  } else if (!replication->checkpoint_in_progress()) {
    Finish(true, now_ms);
  }
}

void Persistence::Finish(bool ok, int64_t now_ms) {
  const int64_t took_s = RunningS();
  if (ok) {
    Refresh();
    changes_at_save_ = changes_at_start_;  // ops applied after the fork are not in the snapshot
  } else {
    last_failed_try_ms_ = now_ms;
  }
  if (running_bgsave_) {
    last_bgsave_ok_ = ok;
    last_bgsave_time_s_ = took_s;
  }
  if (running_rewrite_) {
    last_rewrite_ok_ = ok;
    last_rewrite_time_s_ = took_s;
    rewrites_ += ok ? 1 : 0;
  }
  running_bgsave_ = false;
  running_rewrite_ = false;
}

int64_t Persistence::MonotonicMs() const { return server_.clock().MonotonicUs() / 1000; }

int64_t Persistence::last_save_s() const {
  return (last_save_ms_ != 0 ? last_save_ms_ : server_.start_ms()) / 1000;
}

uint64_t Persistence::changes_since_last_save() const { return Changes() - changes_at_save_; }

}  // namespace lattice::server
