#pragma once
// OpLog is the durable, append-only log of a replica: every op it applies (its own and its
// peers') is appended here before it is acknowledged, and on restart the log is replayed over the
// last snapshot. Records are opaque payloads (the replication codec supplies encoded OpRecords);
// each gets a record index, 1, 2, 3, ... for the life of the data dir.
//
// On disk (through the Storage seam, so the simulator runs this very code on MemoryStorage):
// - records framed as [4-byte LE length][4-byte LE CRC32C][payload], the CRC covering the length
//   bytes and the payload (so a zero-filled tail never passes as an empty record);
// - in segment files "oplog-<index of the segment's first record, 20 digits>.seg", rolled over at
//   about OpLogOptions::segment_bytes_max; a segment is synced before the next one is created,
//   so only the last segment can ever have a torn tail;
// - a snapshot file "snapshot" written atomically, and a "replica-id" file (ReplicaIdentity).
//
// Writing is two-step, as Valkey's AOF: Append() frames a record into a memory buffer and
// returns its index; Flush(policy) writes the buffer to the active segment and, under
// FsyncPolicy::kAlways, syncs it before returning. Under kEverySec the owner calls
// MaybeSync(now_ms) about every 100 ms with the current time: no clock is read in replication/.
// A record is durable once a Flush(kAlways), Sync() or syncing MaybeSync that followed its
// Append returned ok.
//
// Recover() reads every segment in order. A torn or corrupt tail of the last segment (a short
// length, a short payload, a bad checksum: what a crash leaves) is cut off and reported in
// Recovery::torn_tail for the server to log; corruption in any earlier segment, or a missing
// segment, is an error: those bytes were synced, so it is damage, not a crash.
//
// The last records appended may also be kept in a memory ring (OpLogOptions::ring_bytes_max) for
// Read(); Read() falls back to the segments. The server keeps none (the default): peers are
// served from the engine's retained-op ring (retained_ops.h), which holds the same bytes, and
// a second copy cost a heap string per op (about 94 bytes per SET, up to 16 MiB of payload).
//
// After a failed write or sync the log refuses every further write with that error (a failed
// fsync may have dropped pages, so retrying could report durable what is not); restarting and
// recovering is the way out. Owned by one thread (the disk thread); not thread-safe.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/ids.h"
#include "lattice/common/result.h"
#include "lattice/repl/storage.h"

namespace lattice::repl {

// Records, the snapshot and the replica id file are checksummed with CRC32C from
// lattice/repl/crc32c.h (the same function as the replication frames).

// Valkey's appendfsync.
enum class FsyncPolicy {
  kAlways,    // Flush syncs: a record acknowledged after Flush is durable
  kEverySec,  // MaybeSync(now_ms) syncs at most once a second: a crash loses about 1 s
  kNo,        // never synced by the log (the OS writes back when it likes), except at rollover
};

// Parses "always" | "everysec" | "no" (case-insensitive); nullopt for anything else.
std::optional<FsyncPolicy> ParseFsyncPolicy(std::string_view text);
std::string_view FsyncPolicyName(FsyncPolicy policy);

struct OpLogOptions {
  uint64_t segment_bytes_max = 64ull << 20;  // rollover threshold (a bigger record gets its own)
  uint64_t ring_bytes_max = 0;               // payload bytes kept in memory for Read (0: none)
};

// What Recover() cut from the end of the log.
struct TornTail {
  std::string segment;  // file name
  uint64_t offset = 0;  // where the valid records end in that segment: the new file size
  uint64_t bytes_cut = 0;
  std::string reason;  // "short length", "short payload" or "bad checksum"
};

struct Recovery {
  uint64_t first_index = 1;           // index of payloads[0] (older ones were compacted)
  std::vector<std::string> payloads;  // every record still in the log, in order
  std::optional<TornTail> torn_tail;  // set when the tail was cut
};

struct Snapshot {
  std::string bytes;
  uint64_t covers_index = 0;  // the snapshot includes the effect of records 1..covers_index
};

class OpLog {
 public:
  // `storage` must outlive the log.
  OpLog(Storage& storage, OpLogOptions options);
  ~OpLog();
  OpLog(const OpLog&) = delete;
  OpLog& operator=(const OpLog&) = delete;

  // Reads the log (see the header comment) and opens it for appending. Called once, before any
  // Append, Flush, Read or TruncatePrefix. An empty storage is an empty log starting at index 1.
  Result<Recovery> Recover();

  // Frames `payload` into the write buffer and returns its index. Writes to storage only when
  // the active segment is full (the buffer is written out, the segment synced, a new one opened).
  Result<uint64_t> Append(std::string_view payload);

  // Writes the buffer to the active segment; under kAlways also syncs it.
  Result<void> Flush(FsyncPolicy policy);

  // For kEverySec: writes the buffer, and syncs when there are unsynced bytes and at least
  // 1000 ms passed since the last sync made here (or none was). Returns true if it synced.
  Result<bool> MaybeSync(int64_t now_ms);

  // Writes the buffer and syncs, whatever the policy (shutdown, BGREWRITEAOF-like points).
  Result<void> Sync();

  // Up to `count_max` records from index `from` on (first_index() <= from <= next_index()),
  // stopping once `bytes_max` payload bytes are reached (at least one record if any exists).
  // Served from the memory ring when it still holds `from`, else from the segments.
  Result<std::vector<std::string>> Read(uint64_t from, size_t count_max,
                                        size_t bytes_max = SIZE_MAX);

  // Compaction after a snapshot covering records below `index`: removes every segment whose
  // records are all below `index`. The active segment is never removed, so records just below
  // `index` may remain: first_index() says what is left. index <= next_index().
  Result<void> TruncatePrefix(uint64_t index);

  // Replaces the snapshot atomically and durably (a crash leaves the old one or the new one).
  // Independent of Recover: may be called at any time.
  Result<void> WriteSnapshot(std::string_view bytes, uint64_t covers_index);

  // The snapshot, nullopt if none was ever written, an error if it is damaged.
  Result<std::optional<Snapshot>> ReadSnapshot();

  uint64_t first_index() const;  // lowest index still in the log
  uint64_t next_index() const { return next_index_; }
  size_t segment_count() const { return segments_.size(); }
  bool has_unsynced() const { return !buffer_.empty() || unsynced_; }
  // Records appended since the last write to the file.
  bool has_buffered() const { return !buffer_.empty(); }
  // Frees what a burst grew the write buffer to, when nothing is buffered (the owner's timer
  // calls it: a quiet log keeps no burst's buffer).
  void ReleaseIdleBuffer();

 private:
  struct Segment {
    uint64_t first_index = 0;
    std::string name;
  };

  Result<void> CheckUsable() const;
  Result<void> Fail(const Error& error);
  Result<void> WriteBuffer();
  Result<void> SyncActive();
  Result<void> RollOver();
  Result<void> OpenActive(const std::string& name);
  Result<void> RecoverSegment(size_t position, std::string_view bytes, Recovery& recovery,
                              uint64_t& next);
  void PushRing(std::string_view payload);
  Result<std::vector<std::string>> ReadFromSegments(uint64_t from, size_t count_max,
                                                    size_t bytes_max);

  Storage& storage_;
  const OpLogOptions options_;
  bool recovered_ = false;
  std::optional<Error> failed_;  // sticky, see the header comment

  std::vector<Segment> segments_;  // in index order; the last one is active
  std::unique_ptr<AppendFile> active_;
  uint64_t active_bytes_ = 0;  // written to the active segment plus buffered
  std::string buffer_;         // framed records not yet written
  bool unsynced_ = false;      // bytes written to the active segment since its last sync
  std::optional<int64_t> last_sync_ms_;
  uint64_t next_index_ = 1;

  std::deque<std::string> ring_;  // payloads of records ring_first_index_, ...
  uint64_t ring_first_index_ = 1;
  uint64_t ring_bytes_ = 0;
};

// The replica's stable identity, kept in the "replica-id" file of a data dir: created on first
// start from an id the caller drew at random (replication/ draws no randomness), read back on
// every later start. Stored atomically as one line of text with a CRC32C, so a damaged file is
// an error rather than a silently different replica.
class ReplicaIdentity {
 public:
  // The id stored in `storage`, writing `fresh_id` (!= kNoReplica) there first if none is.
  static Result<ReplicaId> LoadOrCreate(Storage& storage, ReplicaId fresh_id);

  // The id stored in `storage`, nullopt if none is.
  static Result<std::optional<ReplicaId>> Load(Storage& storage);

  // Stores `fresh_id` (!= kNoReplica) in place of whatever id is stored: a replica that forgets
  // its data and its place in the shard (CLUSTER RESET of a region) becomes a new replica.
  static Result<void> Replace(Storage& storage, ReplicaId fresh_id);
};

}  // namespace lattice::repl
