#pragma once
// Replication ties a node's keyspace to the replication engine (lattice::repl::Replicator) and
// to its durable op log (lattice::repl::OpLog), without any I/O of its own: bytes reach peers
// through a repl::Transport and the disk through a repl::Storage, both handed in. The network
// layer (src/net/peer_links.h) is the production Transport; tests and the simulator pass theirs.
//
// What it does:
// - Open() recovers the data dir: the last snapshot, then every op logged after it (own and
//   remote, in the order they were applied), a torn tail cut and reported. The keyspace resumes
//   its dots after the highest own one, so a restarted replica never reuses a sequence number.
// - Every op the engine applies, own (OnLocalOp: it observes the keyspace) or a peer's
//   (Applier::Apply), is appended to the log as the engine retains it, as the record the engine
//   encoded once: batches to every peer reuse the logged bytes.
// - EndOfBatch() is called by whoever ran commands or handled peer input, before it yields to the
//   event loop: the log is written (and synced under appendfsync always), and only then does the
//   engine flush its batches, so no peer and no client learns of an op that a crash could lose.
// - Tick() drives the engine's timers, everysec syncs, and log compaction: once the log grew by
//   auto-aof-rewrite-percentage of the last snapshot (and at least auto-aof-rewrite-min-size),
//   the whole state is written as a new snapshot and the log prefix it covers is removed.
// - Checkpoints run on this thread (Checkpoint), or, once set_child_processes() gave a way to
//   start children, in a forked child (CheckpointInBackground, the automatic compaction): the
//   child writes the snapshot of the state at the fork; Tick reaps it and only then truncates
//   the log. One child at a time; only one writer of the snapshot file at a time (Checkpoint ends
//   a running child first). docs/durability.md, "Checkpoints in a child process".
// - Applier: StartSnapshot streams the keyspace to a peer that is behind the retained ops, in
//   slices; StartInstall joins one received, in slices too (SlicedInstall in replication.cc:
//   the snapshot is logged first, then each hash slot is joined by a step or when something
//   first reaches it, docs/replication.md "Installing in slices").
//
// Not thread-safe: the event-loop thread that owns the Server owns this too.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/result.h"
#include "lattice/repl/codec.h"
#include "lattice/repl/op_log.h"
#include "lattice/repl/replicator.h"
#include "lattice/repl/storage.h"
#include "store/child_process.h"
#include "store/keyspace.h"

namespace lattice::server {

class Keyspace;

// How peers are dialed (CRDT.PEER): implemented by the network layer.
class PeerDirectory {
 public:
  struct Address {
    std::string address;             // "host:port" of the peer's replication port
    ReplicaId replica = kNoReplica;  // learned from its Hello; kNoReplica before
    std::string state;               // "connecting", "connected", "backoff", "refused"
    std::string last_error;
  };
  virtual ~PeerDirectory() = default;
  virtual Result<void> AddAddress(const std::string& address) = 0;
  // The replica behind the address (kNoReplica if never connected), or an error if unknown.
  virtual Result<ReplicaId> RemoveAddress(const std::string& address) = 0;
  virtual std::vector<Address> Addresses() const = 0;
  // Bytes this node sent to / received from `replica` over every link.
  virtual uint64_t BytesIn(ReplicaId replica) const = 0;
  virtual uint64_t BytesOut(ReplicaId replica) const = 0;
};

struct ReplicationOptions {
  std::string dir;  // the data dir, as error messages name it
  std::string shard_id = "default";
  std::string region;
  repl::FsyncPolicy fsync = repl::FsyncPolicy::kEverySec;
  int64_t rewrite_percentage = 100;        // auto-aof-rewrite-percentage (0 disables)
  uint64_t rewrite_min_bytes = 64 << 20;   // auto-aof-rewrite-min-size
  int64_t peer_timeout_ms = 60'000;        // repl-timeout
  size_t max_retained_ops = 1'000'000;     // crdt-backlog-ops: backlog before a peer is stale
  uint64_t max_retained_bytes = 64 << 20;  // crdt-backlog-size: the same bound in bytes
  bool cluster = false;  // cluster-enabled: imports may bring another shard's dots
};

struct ReplicationStats {
  uint64_t log_records = 0;  // appended since start
  uint64_t log_bytes = 0;    // payload bytes appended since start
  uint64_t log_bytes_since_snapshot = 0;
  uint64_t snapshots_written = 0;
  uint64_t last_snapshot_bytes = 0;
  int64_t last_snapshot_ms = 0;
  uint64_t recovered_records = 0;    // replayed by Open
  uint64_t recovered_keys = 0;       // loaded from the snapshot by Open
  std::string torn_tail;             // what Open cut, "" if nothing
  std::string last_event;            // the engine's last event (the simulator's trace polls it)
  uint64_t checkpoints_started = 0;  // in a child process
  uint64_t checkpoints_ended = 0;    // children reaped or killed, whatever their outcome
  bool last_checkpoint_ok = true;    // how the last child ended
  // Per origin region: the most its ops' HLC was ahead of this node's clock when applied (clock
  // skew; 0 when never ahead). The HLC absorbs skew; this shows how much there is.
  std::map<ReplicaId, int64_t> clock_ahead_ms;
  // Items (crdt::Key::MetadataItems, plus one a key) of the last slice of a snapshot taken or
  // installed (an export's chunk, an install's logging or joining step), and the most of any:
  // INFO crdt_slice_items_max. A slice stops past set_slice_items; one key is never split.
  uint64_t last_slice_items = 0;
  uint64_t max_slice_items = 0;
};

class Replication final : public repl::Applier, public repl::Observer, public KeyspaceObserver {
 public:
  // Recovers `storage` into `keyspace` and starts the engine, which then observes the keyspace's
  // local ops. `storage` and `transport`
  // must outlive the result. Known peers (the "peers" file) hold back compaction while down.
  static Result<std::unique_ptr<Replication>> Open(Keyspace& keyspace, repl::Storage& storage,
                                                   repl::Transport& transport,
                                                   ReplicationOptions options, int64_t now_ms);
  ~Replication() override;
  Replication(const Replication&) = delete;
  Replication& operator=(const Replication&) = delete;

  void set_peer_directory(PeerDirectory* directory) { directory_ = directory; }
  PeerDirectory* peer_directory() const { return directory_; }

  // The Hello a link sends first (before the engine knows which replica is at the other end).
  repl::Hello LinkHello() const;

  // Link events and peer messages, from the transport.
  void OnConnected(ReplicaId peer, int64_t now_ms);
  void OnDisconnected(ReplicaId peer, int64_t now_ms);
  void OnMessage(ReplicaId from, const repl::Message& message, int64_t now_ms);
  void OnMessage(ReplicaId from, repl::Message&& message, int64_t now_ms);
  void RemovePeer(ReplicaId peer);
  // A peer that left the shard (CLUSTER FORGET of its node): removed as RemovePeer does, and its
  // links refused until `until_ms` (Valkey's 60 s ban of a forgotten node), so that a node still
  // dialing with that identity is not admitted again before it resets.
  void Retire(ReplicaId peer, int64_t until_ms);
  bool Retired(ReplicaId peer, int64_t now_ms);
  // CLUSTER RESET of a region: forgets every key, the causal context, the peers and the op log
  // (an empty snapshot covers it), and takes `fresh` as this replica's id (the replica-id file
  // is replaced), without shipping an op: the node is then a new replica with an empty data
  // dir. Links to the old peers are closed. An error (the data dir could not be written) is
  // fatal, as a failed log write: EndOfBatch reports it.
  Result<void> Reincarnate(ReplicaId fresh, int64_t now_ms);

  // KeyspaceObserver: a local op goes to the engine (and is logged as it is retained). Every
  // change also reaches the snapshots being taken in slices (a key they already exported is
  // exported again before their cut).
  void OnLocalOp(int db, std::string_view key, const crdt::KeyOp& op) override;
  // Bracket the local ops of a script, an EXEC or a multi-key command: other regions apply them
  // all together or none (repl::Replicator::BeginGroup; docs/replication.md, "Groups"). Nests.
  void BeginGroup();
  void EndGroup();
  void OnKeyChanged(int db, std::string_view key) override;
  // Whether every op and state record so far is in the op log as a reply needs it: written to
  // the file (and synced under appendfsync always), none staged in an open group. Replies may
  // then leave before the end of the turn; they wait for it otherwise (log before reply).
  bool AllLogged() const;
  // A snapshot is being taken or installed in slices: the caller should end another turn soon.
  bool snapshot_work_pending() const { return replicator_->snapshot_work_pending(); }
  bool taking_snapshot_for(ReplicaId peer) const { return replicator_->taking_snapshot_for(peer); }
  // Makes what the last commands or messages did durable per appendfsync, then lets the engine
  // send. A failed log write or sync is fatal (as Valkey under appendfsync always): the error
  // is returned and the caller exits.
  Result<void> EndOfBatch();
  // Timers, every ~50 ms; the caller then ends the batch (Node::EndOfBatch reports failures).
  void Tick(int64_t now_ms);
  // Writes a snapshot of the whole state and truncates the log it covers, on this thread. A
  // background checkpoint still running is ended first: this snapshot is newer than its.
  Result<void> Checkpoint(int64_t now_ms);
  // The same checkpoint written by a child process (BGSAVE, BGREWRITEAOF, save points): the log
  // is synced, the child forked to write the state of this moment; a later Tick reaps it and
  // truncates the log it covers. An error if a child runs already or the fork failed. Without
  // child processes (the simulator, unit tests without them) this is Checkpoint.
  Result<void> CheckpointInBackground(int64_t now_ms);
  // Ends a running background checkpoint (SHUTDOWN, BGSAVE CANCEL): log and snapshot stay whole.
  void AbortBackgroundCheckpoint();
  bool checkpoint_in_progress() const { return background_.has_value(); }
  // The running child's id (its pid), 0 when none runs.
  int64_t checkpoint_child() const { return background_ ? background_->child : 0; }
  bool automatic_checkpoint_in_progress() const { return background_ && background_->automatic; }
  void set_child_processes(ChildProcesses* children) { children_ = children; }
  const ChildProcesses* child_processes() const { return children_; }
  // Clean shutdown: flushes and syncs the log.
  Result<void> Close();

  repl::ReplicatorStatus Status(int64_t now_ms) const { return replicator_->Status(now_ms); }
  std::string PeerRegion(ReplicaId peer) const { return replicator_->PeerRegion(peer); }
  // How many peer regions acknowledged this replica's op `seq` (CRDT.WAIT, WAIT).
  int64_t RegionsHaving(uint64_t seq) const;
  // This replica's ops up to this seq are synced to the op log (WAITAOF's local count).
  uint64_t LocalSyncedSeq() const { return synced_seq_; }
  // Asks for a sync of the log before this turn's blocked clients are served, whatever
  // appendfsync says (a WAITAOF waits on it); the acks hook then runs.
  void RequestSync() { sync_requested_ = true; }
  // The sync RequestSync asked for, if any: the node calls it before serving blocked clients.
  void SyncIfRequested();
  // Called after every peer message, whose acknowledgements may have advanced (the server wakes
  // the clients blocked in CRDT.WAIT).
  void set_acks_hook(std::function<void()> hook) { acks_hook_ = std::move(hook); }
  // Pub/Sub across regions (docs/semantics.md): Publish sends a message once to every peer
  // whose link is up and whose Hello announced repl::kFeaturePubSub (nothing is logged, retried
  // or relayed); a Publish from a peer goes to the hook (the server's local delivery).
  void Publish(const repl::Publish& message);
  void set_pubsub_hook(std::function<void(const repl::Publish&)> hook) {
    pubsub_hook_ = std::move(hook);
  }
  const ReplicationOptions& options() const { return options_; }
  const ReplicationStats& stats() const { return stats_; }
  const repl::Replicator& replicator() const { return *replicator_; }

  // repl::Applier
  void Apply(const repl::OpRecord& op) override;
  std::vector<repl::SnapshotChunk> TakeSnapshot(size_t keys_per_chunk) override;
  void InstallSnapshot(const std::vector<repl::SnapshotChunk>& chunks) override;
  // Taken and installed in slices (docs/replication.md, "Snapshots in slices", "Installing in
  // slices").
  std::unique_ptr<repl::SnapshotSource> StartSnapshot(size_t keys_per_chunk) override;
  std::unique_ptr<repl::SnapshotInstall> StartInstall(
      std::vector<repl::SnapshotChunk> chunks) override;
  // Keys an install joins (or logs) per step, about: the simulator makes it small, so its
  // installs take many steps interleaved with clients and peers.
  void set_install_keys_per_step(size_t keys) {
    install_keys_per_step_ = std::max<size_t>(1, keys);
  }
  // Items a slice (an export's chunk, an install's step) takes before it stops, about (1,024):
  // a slice ends after the key or slot that reached it. Tests make it small.
  void set_slice_items(size_t items) { slice_items_ = std::max<size_t>(1, items); }
  // Buffered ops applied per turn at most (repl::ReplicatorConfig::max_drain_ops): the
  // simulator makes it small too.
  void set_max_drain_ops(size_t ops) {
    max_drain_ops_ = std::max<size_t>(1, ops);
    replicator_->set_max_drain_ops(max_drain_ops_);
  }
  // Whether the owner's current step has used its time (repl::Replicator::set_step_spent).
  void set_step_spent(std::function<bool()> spent) {
    step_spent_ = std::move(spent);
    replicator_->set_step_spent(step_spent_);
  }
  // repl::Observer
  void OnEvent(const repl::Event& event) override;

 private:
  Replication(Keyspace& keyspace, repl::Storage& storage, repl::Transport& transport,
              ReplicationOptions options);
  Result<void> Recover(int64_t now_ms);
  Result<void> LoadSnapshot(const std::string& bytes);
  Result<void> LoadPeers();
  void StartEngine();  // the Replicator, over the keyspace's state and the known peers
  void SavePeers();
  void Append(std::string_view record);  // an op record (repl::EncodeOp's bytes) to the op log
  void ClockTooFarAhead(ReplicaId origin, int64_t ahead_ms);
  void Fail(const Error& error);
  // Checkpoints: the snapshot file's content (the keys as SnapshotChunk frames, the context in the
  // last), what the child runs, and the parent's side of a background one.
  std::string EncodeSnapshot();
  void MaybeRewrite(int64_t now_ms);
  Result<void> StartCheckpoint(bool automatic);
  void ReapCheckpoint(int64_t now_ms);
  void CheckpointWritten(uint64_t bytes, uint64_t covers_index, int64_t now_ms);
  void CheckpointFailed(const Error& error, int64_t now_ms);

  struct BackgroundCheckpoint {
    int64_t child = 0;
    uint64_t covers_index = 0;
    uint64_t log_bytes = 0;  // stats_.log_bytes at the fork
    bool automatic = false;  // the rewrite trigger started it (not BGSAVE and co.)
  };

  class SlicedSnapshot;
  class SlicedInstall;
  void LogState(int db, std::string_view key);
  void LogContext(const crdt::DotContext& context);
  Result<void> RecoverState(std::string_view bytes);
  // An install's records (LogInstall): the snapshot's keys, then the record that begins it with
  // the cut. Recovery joins the logged keys whole where the beginning is; keys whose beginning
  // was never logged are dropped (the install had changed nothing yet).
  void LogInstall(uint64_t kind, std::span<const repl::SnapshotKeyRef> keys,
                  const crdt::DotContext& cut, bool begins);
  Result<void> RecoverInstall(std::string_view bytes, std::vector<repl::SnapshotChunk>& keys);
  // Joins a whole snapshot (keys and the cut) at once, under the shard context as it is, then
  // joins the cut into it: recovery, and InstallSnapshot.
  void JoinWhole(std::vector<repl::SnapshotChunk>& chunks, const crdt::DotContext& cut,
                 bool notify);

  Keyspace& keyspace_;
  repl::Storage& storage_;
  repl::Transport& transport_;
  ReplicationOptions options_;
  bool state_logged_ = false;     // a state record since the last log write
  bool joining_install_ = false;  // an install joins keys: no state record for them
  size_t install_keys_per_step_ = 128;
  // 4,096 cost 10-14 ms of CPU a slice (export or decode), 1,024 up to 11 ms at 1M (expanding
  // compact keys, then encoding them: 3-8 µs an item), 512 up to 15 ms under the storm test's
  // load, 256 up to 6.7 ms to encode and 9-10 ms to decode (one chunk received) there: 128, two
  // slices a turn while the step's budget lasts (kSnapshotChunksPerTurn). An export's chunk
  // passes it by up to one key, an install's joining step by up to one slot (joined whole).
  size_t slice_items_ = 128;
  void NoteSlice(uint64_t items);  // stats_.last_slice_items, max_slice_items
  size_t max_drain_ops_ = repl::ReplicatorConfig{}.max_drain_ops;
  std::function<bool()> step_spent_;  // set_step_spent
  repl::OpLog log_;
  std::unique_ptr<repl::Replicator> replicator_;
  PeerDirectory* directory_ = nullptr;
  std::vector<ReplicaId> known_peers_;
  std::map<ReplicaId, int64_t> retired_;  // Retire: refused until (ms)
  std::function<void()> acks_hook_;
  // Notes that every op logged so far is synced, if it is; true when LocalSyncedSeq advanced.
  bool NoteSynced();
  uint64_t synced_seq_ = 0;  // LocalSyncedSeq
  bool sync_requested_ = false;
  std::function<void(const repl::Publish&)> pubsub_hook_;
  std::vector<ReplicaId> pubsub_peers_;  // linked peers that accept Publish
  std::optional<Error> failed_;          // a log write failed: EndOfBatch reports it
  int64_t now_ms_ = 0;
  std::map<ReplicaId, int64_t> drift_logged_ms_;  // when ClockTooFarAhead last logged, per origin
  ReplicationStats stats_;
  ChildProcesses* children_ = nullptr;  // null: checkpoints on this thread
  std::optional<BackgroundCheckpoint> background_;
  int64_t rewrite_retry_ms_ = 0;  // after a failed automatic checkpoint, the next waits till then
};

// The text of a replica id as shown to operators (16 hex digits).
std::string ReplicaIdText(ReplicaId replica);
// A version vector as shown to operators: "<replica hex>:<seq>,..." ("" when empty).
std::string VectorText(const crdt::VersionVector& vector);

}  // namespace lattice::server
