#pragma once
// Persistence is what SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE, the `save` points and INFO
// persistence see of Lattice's durable state. Lattice has no RDB file and no AOF of its own: the
// op log is always on, and a snapshot of the whole state (Replication::Checkpoint) compacts it.
// So an RDB save and an AOF rewrite are the same act here, a checkpoint: the snapshot is written
// and the log prefix it covers removed (docs/durability.md).
//
// SAVE checkpoints at once, on the event loop (Valkey's SAVE blocks too). BGSAVE and
// BGREWRITEAOF reply first; the next cron tick starts the checkpoint in a child process
// (Replication::CheckpointInBackground: a fork, the child writes the state of the fork's moment)
// and a later one sees it end. One child at a time: a request made while one runs waits for it
// (BGSAVE SCHEDULE, BGREWRITEAOF) or is refused (BGSAVE, as Valkey). `save <seconds> <changes>`
// points start the same checkpoint when that many changes (ops applied, local or from peers)
// happened in that many seconds.
//
// Owned by the Server; not thread-safe (the event-loop thread).

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "lattice/common/result.h"

namespace lattice::server {

class Server;

class Persistence {
 public:
  // kBusy: another child runs (BGSAVE without SCHEDULE is refused).
  enum class Start { kStarted, kScheduled, kAlreadyInProgress, kBusy, kNotPossible };

  explicit Persistence(Server& server) : server_(server) {}

  // SAVE: the checkpoint, now (a child running for a rewrite is ended: this one covers more).
  Result<void> Save(int64_t now_ms);
  // BGSAVE [SCHEDULE] and BGREWRITEAOF: a checkpoint at the next Cron.
  Start BackgroundSave(bool schedule);
  Start BackgroundRewrite();
  bool CancelBackgroundSave();  // BGSAVE CANCEL: false when none was pending or running
  // Sees a child end, starts what BGSAVE/BGREWRITEAOF asked for, and the save points (hz times a
  // second).
  void Cron(int64_t now_ms);

  // Takes note of a checkpoint made elsewhere (automatic compaction, a snapshot installed from a
  // peer); INFO and LASTSAVE call it first.
  void Refresh();
  // INFO persistence and LASTSAVE.
  int64_t last_save_s() const;
  uint64_t changes_since_last_save() const;
  bool bgsave_in_progress() const { return bgsave_pending_ || running_bgsave_; }
  bool rewrite_in_progress() const;  // requested, or a child writing (BGREWRITEAOF, automatic)
  bool rewrite_scheduled() const { return rewrite_pending_; }
  // How long the running child has been writing, -1 when none runs.
  int64_t current_bgsave_time_s() const { return running_bgsave_ ? RunningS() : -1; }
  int64_t current_rewrite_time_s() const { return running_rewrite_ ? RunningS() : -1; }
  bool last_bgsave_ok() const { return last_bgsave_ok_; }
  bool last_rewrite_ok() const { return last_rewrite_ok_; }
  int64_t last_bgsave_time_s() const { return last_bgsave_time_s_; }
  int64_t last_rewrite_time_s() const { return last_rewrite_time_s_; }
  uint64_t rewrites() const { return rewrites_; }

 private:
  uint64_t Changes() const;  // ops applied since start, local and remote
  Result<void> Checkpoint(int64_t now_ms);
  bool SavePointDue(int64_t now_ms) const;
  void StartChild(int64_t now_ms, bool bgsave, bool rewrite);
  void Finish(bool ok, int64_t now_ms);  // the checkpoint StartChild began ended
  int64_t MonotonicMs() const;
  int64_t RunningS() const { return (MonotonicMs() - started_ms_) / 1000; }

  Server& server_;
  bool bgsave_pending_ = false;
  bool rewrite_pending_ = false;
  bool running_bgsave_ = false;  // a checkpoint StartChild began runs for BGSAVE or a save point
  bool running_rewrite_ = false;
  int64_t started_ms_ = 0;         // monotonic, when it began
  uint64_t changes_at_start_ = 0;  // what it covers
  uint64_t ended_at_start_ = 0;    // Replication's checkpoints_ended then
  bool last_bgsave_ok_ = true;
  bool last_rewrite_ok_ = true;
  int64_t last_bgsave_time_s_ = -1;
  int64_t last_rewrite_time_s_ = -1;
  int64_t last_failed_try_ms_ = 0;
  uint64_t rewrites_ = 0;
  uint64_t changes_at_save_ = 0;
  uint64_t snapshots_seen_ = 0;
  int64_t last_save_ms_ = 0;  // 0: the start time
};

// The `save` config as (seconds, changes) pairs; invalid or empty text gives none.
std::vector<std::pair<int64_t, int64_t>> ParseSavePoints(const std::string& text);

}  // namespace lattice::server
