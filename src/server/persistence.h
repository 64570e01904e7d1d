#pragma once
// Persistence is what SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE, the `save` points and INFO
// persistence see of Lattice's durable state. Lattice has no RDB file and no AOF of its own: the
// op log is always on, and a snapshot of the whole state (Replication::Checkpoint) compacts it.
// So an RDB save and an AOF rewrite are the same act here, a checkpoint: the snapshot is written
// and the log prefix it covers removed (docs/durability.md).
//
// SAVE checkpoints at once. BGSAVE and BGREWRITEAOF reply first and checkpoint at the next cron
// tick, so the reply does not wait for the disk; the checkpoint itself still runs on the event
// loop (a pause proportional to the state, as Replication's automatic compaction) until
// snapshots are taken in chunks. `save <seconds> <changes>` points schedule the same checkpoint
// when that many changes (ops applied, local or from peers) happened in that many seconds.
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
  enum class Start { kStarted, kScheduled, kAlreadyInProgress, kNotPossible };

  explicit Persistence(Server& server) : server_(server) {}

  // SAVE: the checkpoint, now.
  Result<void> Save(int64_t now_ms);
  // BGSAVE [SCHEDULE] and BGREWRITEAOF: a checkpoint at the next Cron.
  Start BackgroundSave(bool schedule);
  Start BackgroundRewrite();
  bool CancelBackgroundSave();  // BGSAVE CANCEL: false when none was pending
  // Runs what BGSAVE/BGREWRITEAOF asked for, and the save points (hz times a second).
  void Cron(int64_t now_ms);

  // Takes note of a checkpoint made elsewhere (automatic compaction, a snapshot installed from a
  // peer); INFO and LASTSAVE call it first.
  void Refresh();
  // INFO persistence and LASTSAVE.
  int64_t last_save_s() const;
  uint64_t changes_since_last_save() const;
  bool bgsave_in_progress() const { return bgsave_pending_; }
  bool rewrite_in_progress() const { return rewrite_pending_; }
  bool last_bgsave_ok() const { return last_bgsave_ok_; }
  bool last_rewrite_ok() const { return last_rewrite_ok_; }
  int64_t last_bgsave_time_s() const { return last_bgsave_time_s_; }
  int64_t last_rewrite_time_s() const { return last_rewrite_time_s_; }
  uint64_t rewrites() const { return rewrites_; }

 private:
  uint64_t Changes() const;  // ops applied since start, local and remote
  Result<void> Checkpoint(int64_t now_ms);
  bool SavePointDue(int64_t now_ms) const;

  Server& server_;
  bool bgsave_pending_ = false;
  bool rewrite_pending_ = false;
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
