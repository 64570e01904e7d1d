#pragma once
// Replicator is the sans-I/O replication protocol engine of one replica of a shard (one per
// process per shard). It consumes the plain message values of messages.h and link events, and
// produces messages through Transport, applies peers' ops through Applier and reports what
// happened through Observer. It never reads a clock, draws randomness or does I/O: time arrives
// as `now_ms` arguments, so the simulator and the tests run the very code the server runs.
//
// What it does (docs/replication.md has the full protocol and a sequence diagram):
// - Local ops (OnLocalOp) get deps = this replica's applied vector before them, are retained in
//   a log bounded in ops and in bytes (RetainedOps: their encodings in a byte ring, retained_ops.h)
//   and streamed in OpBatches to every connected peer, as the retained bytes (shell records,
//   messages.h), never decoded again.
// - Remote ops (OpBatch) are applied in causal order: an op is applied only once the applied
//   vector covers its deps and the origin's earlier sequence numbers; until then it waits in a
//   bounded buffer. Applied remote ops are retained too and relayed to peers that lack them.
// - Transport is best effort (loss, duplication, reordering): ops already covered are ignored,
//   unacknowledged ops are resent after a timeout, a dropped buffer asks for a resend via Ack.
// - Acks carry applied vectors; a retained op every peer acknowledged is dropped. A peer that
//   lacks an op that had to be dropped (the log is full: max_retained_ops or max_retained_bytes)
//   is stale and gets a snapshot
//   (Applier::TakeSnapshot), after which streaming resumes.
// - StableVector() is the causally stable vector that drives crdt::Key::Compact.
//
// Ownership: the Replicator borrows the Transport, Applier and Observer (they must outlive it)
// and owns its RetainedOps. Not thread-safe: the keyspace's event-loop thread owns it, and calls
// into Applier happen on that thread, from inside OnMessage.
//
// Invariants (LATTICE_ASSERT): local ops arrive with contiguous sequence numbers (a gap would
// stall every peer forever); retained ops never exceed max_retained_ops, nor max_retained_bytes
// unless one op alone does (the newest op is always kept), each times install_backlog_factor
// while a peer installs a snapshot and lacks the oldest; every retained op is covered by
// applied(). Peer input is never asserted on: a malformed message is reported and the
// link closed (Goodbye, then Transport::Close).

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/ids.h"
#include "lattice/crdt/causal.h"
#include "lattice/crdt/key.h"
#include "lattice/repl/messages.h"
#include "lattice/repl/retained_ops.h"

namespace lattice::repl {

// Delivers messages to peers, best effort: a message may be lost, duplicated or reordered.
// Implementations: the server's Asio transport (through the codec) and the tests' fake network.
class OpBatchWriter;  // op_codec.h (internal)

class Transport {
 public:
  virtual ~Transport() = default;
  virtual void Send(ReplicaId to, const Message& message) = 0;
  // The engine streams ops as encoded batches (their retained bytes, never decoded). A byte
  // transport frames them as they are (codec.h: AppendOpBatchFrame); this default decodes the
  // batch and calls Send with the OpBatch, for transports that carry Message values.
  virtual void SendOps(ReplicaId to, const EncodedOpBatch& batch);
  // Closes the link to `to` (after a refused Hello, a protocol error or a silent peer). The
  // engine has already marked the peer down; the owner reconnects later (with backoff) and
  // calls OnConnected again.
  virtual void Close(ReplicaId to) = 0;
  // Bytes queued for `to` and not yet written to its socket. The engine sends a snapshot's next
  // chunk only while this is below ReplicatorConfig::snapshot_queue_bytes, so a large snapshot
  // is paced by the link instead of piling up in its output buffer (and hitting its limit).
  virtual uint64_t QueuedBytes(ReplicaId /*to*/) const { return 0; }
};

// A snapshot being taken in slices (Applier::StartSnapshot): each Next is a bounded amount of
// work, and the engine calls it once per turn (Replicator::Flush, Tick), so the event loop
// serves clients between two chunks. The result is a consistent cut: the chunk marked last
// carries the shard DotContext that every chunk's keys, as the receiver joins them, agree with.
class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  // The next chunk of at most `keys_per_chunk` keys (snapshot_id is set by the engine). Called
  // until it returns the chunk with last = true; then never again.
  virtual SnapshotChunk Next(size_t keys_per_chunk) = 0;
};

// A complete snapshot being joined in slices (Applier::StartInstall), one Step per turn. Until
// Done, the engine keeps the ops the snapshot covers from being applied (they would be joined
// again by the slices still to come) and waits with the ops that follow them.
class SnapshotInstall {
 public:
  virtual ~SnapshotInstall() = default;
  // A bounded slice of the work; true once everything is joined (the shard context included).
  virtual bool Step() = 0;
};

// The state the engine replicates: in the server, the Keyspace.
class Applier {
 public:
  virtual ~Applier() = default;
  // Applies a peer's op (Keyspace::ApplyRemote, which also passes op.hlc through the local
  // HlcClock: the policy gate for remote clocks). Called only in causal order, once per op.
  virtual void Apply(const OpRecord& op) = 0;
  // The whole state as chunks of at most `keys_per_chunk` keys; at least one chunk. The last
  // chunk has last = true and `context` = the shard DotContext the state covers. snapshot_id is
  // set by the engine. Taken synchronously, so state and context agree.
  virtual std::vector<SnapshotChunk> TakeSnapshot(size_t keys_per_chunk) = 0;
  // Joins a complete snapshot (chunks in order, the last one carrying the context): every key
  // of the snapshot, and every local key absent from it, is joined with Key::Join(theirs, mine,
  // context), then the shard context joins `context`.
  virtual void InstallSnapshot(const std::vector<SnapshotChunk>& chunks) = 0;
  // The sliced forms the engine uses. The defaults do the whole work in one call (TakeSnapshot
  // at the first Next, InstallSnapshot at the first Step), for appliers with small states.
  virtual std::unique_ptr<SnapshotSource> StartSnapshot(size_t keys_per_chunk);
  virtual std::unique_ptr<SnapshotInstall> StartInstall(std::vector<SnapshotChunk> chunks);
};

enum class EventKind {
  kPeerConnected,      // Hello exchanged
  kPeerDisconnected,   // link went down
  kPeerRefused,        // we refused the peer's Hello (detail: reason; Goodbye sent)
  kPeerGoodbye,        // the peer closed the link (detail: its reason)
  kProtocolError,      // malformed or unexpected peer input (detail); the link is closed
  kPeerTimeout,        // nothing heard for peer_timeout_ms; the link is closed
  kPeerStale,          // retained ops the peer lacks were dropped: it will get a snapshot
  kBufferOverflow,     // the causal buffer was full and was dropped; resend requested
  kSnapshotSent,       // detail: number of chunks
  kSnapshotInstalled,  // detail: the vector it covered
  kSnapshotSkipped,    // a complete snapshot the applied vector already covered (acknowledged)
  kLostOwnOps,         // a peer holds ops of this replica that it does not (lost local state)
};
std::string_view EventKindName(EventKind kind);

struct Event {
  EventKind kind;
  ReplicaId peer = kNoReplica;
  std::string detail;
};

// Receives the engine's events: the server logs them, tests and the simulator check them.
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void OnEvent(const Event& event) = 0;
};

struct ReplicatorConfig {
  std::string shard_id;
  ReplicaId replica = kNoReplica;
  std::string region;
  std::vector<ReplicaId> peers;       // known peers: they hold back log compaction even when down
  uint32_t databases = 16;            // ops and snapshot keys for db >= databases are refused
  size_t max_retained_ops = 100'000;  // backlog bound in ops
  // Backlog bound in bytes (RetainedOps::bytes: encodings plus index): what a lagging or dead
  // peer can cost this replica at most before it is moved to a snapshot.
  uint64_t max_retained_bytes = uint64_t{64} << 20;
  // While a peer installs a snapshot this replica sent it, the ops it lacks past the snapshot's
  // cut are kept beyond the two bounds above, up to this many times them: an install that is
  // progressing does not fall behind the floor and start over (docs/replication.md, "Retained
  // for an install").
  uint64_t install_backlog_factor = 4;
  int64_t heartbeat_interval_ms = 1000;
  int64_t ack_interval_ms = 20;     // minimum gap between two Acks to one peer
  int64_t resend_timeout_ms = 500;  // unacknowledged ops, Hello and snapshots are resent after
  int64_t peer_timeout_ms = 0;      // close a link silent this long; 0 = the transport decides
  // 128: at 64 (to shorten a receiver's step while an export copies slots) the peers fell behind
  // the backlog bound under scripts/bench's churn load and needed snapshots.
  size_t max_batch_ops = 128;
  // And the bytes of a batch's ops (one op larger than this is a batch of its own): a receiver
  // decodes a batch whole, and 128 SADDs of a hundred members each took it 40-80 ms of CPU in one
  // read; at 16 KiB (about 35 of them) one batch took 11.5 ms under the storm test's load.
  size_t max_batch_bytes = 8 * 1024;
  size_t max_inflight_ops = 4096;    // per peer, sent beyond its acknowledged position
  size_t max_buffered_ops = 65'536;  // ops waiting for their deps, all peers together
  // Buffered ops applied per turn at most, about (Drain): the rest go on in the next turns
  // (StepSnapshots). An install's end releases every op held during it (thousands at 1M); 1,024
  // of them cost 28 ms of CPU in one turn there (128 released while an install joins the slots
  // they touch, 5-12 ms; 32 a turn, tried, let the peers fall behind under the churn benchmark).
  size_t max_drain_ops = 128;
  // And the items of those ops (OpItems: elements and their metadata; one op or group always
  // goes): under a checkpoint's copy-on-write an op of a hundred set members cost about 1 ms,
  // and 128 of them 10 ms in one turn. Ops of one or two items (counters, SET, SADD of one) stay
  // 128 a turn.
  size_t max_drain_items = 512;
  size_t snapshot_keys_per_chunk = 256;
  // A group of local ops longer than this is sent as several groups of at most this many ops
  // (a receiver holds a group's ops until its last arrives, so a group must fit in a peer's
  // window and buffer). Clamped to max_inflight_ops.
  size_t max_group_ops = 1024;
  // A snapshot's next chunk waits while the link holds this many bytes not yet written.
  uint64_t snapshot_queue_bytes = uint64_t{4} << 20;
  // Chunks taken per peer per Flush (once per event-loop turn) and install slices per Flush.
  size_t snapshot_chunks_per_flush = 1;
  // A snapshot that the peer did not acknowledge is sent again after
  // 4 * resend_timeout_ms + keys / snapshot_keys_per_ms (the time a large install takes),
  // doubled for every resend without progress (at most 16 times), counted from the last time
  // its acknowledged vector grew.
  uint64_t snapshot_keys_per_ms = 20;
  // Another shard's dots may reach applied vectors (slot migrations import state): a dep entry of
  // a replica that is neither this one nor a peer is then not waited for (DepsApplied).
  bool foreign_dots = false;
};

enum class PeerState { kDown, kHandshaking, kConnected, kStale };
std::string_view PeerStateName(PeerState state);

struct PeerStatus {
  ReplicaId replica = kNoReplica;
  std::string region;  // from its Hello ("" before the first)
  PeerState state = PeerState::kDown;
  crdt::VersionVector acked;
  uint64_t lag_ops = 0;       // retained ops it has not acknowledged
  int64_t lag_ms = 0;         // now - HLC physical time of the oldest of those (0 if none)
  uint64_t ops_sent = 0;      // including resends and relays
  uint64_t ops_received = 0;  // including duplicates
  uint64_t snapshots_sent = 0;
  uint64_t resends = 0;  // rewinds after a timeout or a resend request
  std::string last_error;
};

struct ReplicatorStatus {
  ReplicaId replica = kNoReplica;
  std::string region;
  crdt::VersionVector applied;
  crdt::VersionVector stable;
  uint64_t backlog_ops = 0;    // retained ops
  uint64_t backlog_bytes = 0;  // what they cost (RetainedOps::bytes)
  uint64_t buffered_ops = 0;   // remote ops waiting for their deps
  uint64_t duplicate_ops = 0;
  std::vector<PeerStatus> peers;  // sorted by replica id
};

class Replicator {
 public:
  // `applied`: what the state behind `applier` already covers (the keyspace context's vector
  // after loading). Ops at or below it are not retained: a peer lacking them gets a snapshot.
  // `retained` defaults to RetainedOpRing.
  Replicator(ReplicatorConfig config, crdt::VersionVector applied, Transport& transport,
             Applier& applier, Observer* observer = nullptr,
             std::unique_ptr<RetainedOps> retained = nullptr);
  ~Replicator();
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // Link events from the owner. OnConnected of an unknown replica adds it as a peer (the server
  // learns a peer's id from its Hello); it sends our Hello.
  void OnConnected(ReplicaId peer, int64_t now_ms);
  void OnDisconnected(ReplicaId peer, int64_t now_ms);
  void AddPeer(ReplicaId peer);
  void RemovePeer(ReplicaId peer);  // stops holding back compaction for it

  // A write this replica made (Replication observes the keyspace's local ops). op.first_dot must be
  // this replica's next sequence number. Full batches are sent at once; Flush() or Tick() sends the
  // rest.
  void OnLocalOp(uint32_t db, std::string_view key, const crdt::KeyOp& op);
  // Brackets local ops that every peer must apply together or not at all (a script, an EXEC, a
  // multi-key command): between BeginGroup and the matching EndGroup, OnLocalOp stages ops, and
  // EndGroup retains them as one group (every op but the last marked group_continues), which a
  // receiver applies back to back once all of it is there (docs/replication.md, "Groups").
  // Nests; only the outermost pair counts. Nothing but OnLocalOp may run while a group is open
  // (the event loop runs the script in one go).
  void BeginGroup() { ++group_depth_; }
  bool in_group() const { return group_depth_ > 0; }
  void EndGroup();
  void OnMessage(ReplicaId from, const Message& message, int64_t now_ms);
  // The same, taking the message's ops without copying them.
  void OnMessage(ReplicaId from, Message&& message, int64_t now_ms);
  // Why a Hello must be refused (another shard, another protocol version, this replica's own id
  // or none), or "" if it may be accepted: HelloRefusal (link_handshake.h) for this replica.
  // OnMessage applies it; a transport's LinkHandshake checks the same before admitting a peer,
  // so a stranger never becomes a known peer.
  std::string RefusalOf(const Hello& hello) const;
  // Heartbeats, acks, resends, snapshots for stale peers, log compaction; then Flush. Bounded
  // work per peer (one window of ops), except a snapshot when one is due.
  void Tick(int64_t now_ms);
  // Sends pending ops (partial batches too) to connected peers, within their windows. The
  // server calls it once per event-loop iteration, so a pipeline of writes ships as one batch.
  void Flush();

  const crdt::VersionVector& applied() const { return applied_; }
  // Pointwise minimum of applied() and every known peer's acknowledged vector, counting a
  // peer's ack only once this replica has applied every op that peer had made when it sent it
  // (else an op of that peer concurrent with a "stable" one could still arrive).
  crdt::VersionVector StableVector() const;
  ReplicatorStatus Status(int64_t now_ms) const;
  // The region a peer named in its Hello ("" when unknown): Status's, without walking the
  // retained ops (at 80,000 retained that walk cost milliseconds for every event logged).
  std::string PeerRegion(ReplicaId peer) const;
  // The peers whose link is up (their Hello arrived) with what each acknowledged: Status without
  // its per-peer lag, which walks the retained ops.
  std::vector<std::pair<ReplicaId, crdt::VersionVector>> ConnectedAcks() const;
  // Every known peer, linked or not, with what it acknowledged: Status's peers and their acked
  // vectors without the lag (CRDT.WAIT asks on every turn while a client waits; at 20,000
  // retained ops Status walked 40,000 of them for two peers each time).
  std::vector<std::pair<ReplicaId, crdt::VersionVector>> PeerAcks() const;
  uint64_t retained_ops() const { return retained_->size(); }
  uint64_t retained_bytes() const { return retained_->bytes(); }
  uint64_t buffered_ops() const { return buffered_.size(); }
  // A snapshot is being taken for a peer whose link has room for its next chunk, or one is
  // installed, or buffered ops wait to be applied (Drain stopped at max_drain_ops): Flush has
  // more slices to do, so the owner should end another turn soon (the server posts one; the
  // simulator ticks). A snapshot whose link is full is not pending: ending turn after turn for
  // it only spun the event loop (at 1M elements 80% of the sender's CPU went to empty turns);
  // the owner asks again when that link's queue is written (taking_snapshot_for).
  bool snapshot_work_pending() const;
  // A snapshot is being taken for the peer (its next chunk waits for room on the link).
  bool taking_snapshot_for(ReplicaId peer) const;
  // One slice of that work: the next max_drain_ops buffered ops, the next chunk of each
  // snapshot being taken (while its link has room) and a step of the install, each kind first
  // in its turn and the others while the step's budget lasts (set_step_spent). Tick calls it;
  // the server calls it once per turn before the op log is written (ops an install releases
  // are logged before they are relayed).
  void StepSnapshots();
  // The simulator makes it small, so ops are often applied over several turns.
  void set_max_drain_ops(size_t ops) { config_.max_drain_ops = std::max<size_t>(1, ops); }
  // The owner's word that its current step (a read of peer frames, a turn's end) has used its
  // time: a received op then waits in the buffer, and Drain stops after at least one op of the
  // turn; the rest go on in the next turns (drain_pending_). The engine reads no clock: the
  // server passes its monotonic clock against a step budget, the simulator its seam's clock
  // (whose time does not pass within a step). Under a checkpoint's copy-on-write one small op
  // cost 0.3-3 ms, so no count of ops bounds a step's time (docs/replication.md).
  void set_step_spent(std::function<bool()> spent) { step_spent_ = std::move(spent); }
  bool installing() const { return installing_ != nullptr; }
  // The cut of the install in progress (empty when none): the state's context may cover it
  // before applied() does (docs/replication.md, "Installing in slices").
  const crdt::VersionVector& install_cut() const { return install_cut_; }
  // Runs the install in progress to its end now (a checkpoint on this thread needs the whole
  // state): every remaining slice, then what ending an install does.
  void CompleteInstall();

 private:
  struct Peer;
  class DeliveredScan;  // replicator_peer.h

  // A snapshot is being taken for the peer over a connected link.
  static bool TakingSnapshot(const Peer& peer);
  // Every chunk of the snapshot being assembled from the peer has come.
  static bool Assembled(const Peer& peer);
  // Hands chunks to discarded_ (freed a few a turn by StepSnapshots).
  void Discard(std::map<uint64_t, SnapshotChunk>& chunks);

  Peer* FindPeer(ReplicaId replica);
  void Report(EventKind kind, ReplicaId peer, std::string detail);
  void Fail(Peer& peer, EventKind kind, const std::string& reason);
  void MarkDown(Peer& peer);
  void SendHello(Peer& peer);
  void SendAck(Peer& peer);
  void SendHeartbeat(Peer& peer);
  std::vector<ReplicaId> Connected() const;
  void AnnounceLinks();
  void OnDirectLinks(Peer& peer, const std::vector<ReplicaId>& connected);

  void OnHello(Peer& peer, const Hello& hello);
  void OnOpBatch(Peer& peer, OpBatch&& batch);
  void OnAck(Peer& peer, const crdt::VersionVector& applied, bool is_ack);
  void OnSnapshotChunk(Peer& peer, SnapshotChunk&& chunk);  // kept without a copy
  void InstallSnapshot(Peer& peer);
  bool PumpSnapshots(bool worked);  // every peer taking one, within the step's budget
  size_t PumpSnapshot(Peer& peer);
  void FinishInstall();
  uint64_t SnapshotNumber() const;
  int64_t SnapshotResendAfterMs(const Peer& peer) const;

  std::string CheckOp(const OpRecord& op) const;
  // Why a vector the peer reports applied (Hello, Ack, Heartbeat, a snapshot's coverage) cannot
  // be true, or "" (docs/replication.md, "What a peer may acknowledge").
  std::string CheckReport(const Peer& peer, const crdt::VersionVector& applied) const;
  void Receive(OpRecord op);
  bool Deliverable(const OpRecord& op) const;
  // Whether the op's deps other than its origin's are applied (the origin's entry is checked by
  // CheckOp and by the op's place in its group).
  bool OtherDepsApplied(const OpRecord& op) const;
  // Applies the buffered op at `it`, the next of its origin, with the rest of its group when it
  // starts one: only when the whole group is buffered and every op of it deliverable after the
  // ones before it. Returns whether anything was applied.
  // The items it applied (OpItems, the group's together), or 0 when it is not deliverable yet.
  size_t DeliverBuffered(std::map<crdt::Dot, OpRecord>::iterator it);
  void RetainGroup();  // the staged group (OnLocalOp between BeginGroup and EndGroup)
  void PumpFullBatches();
  // Whether every dep of the op is applied (a foreign replica's entry is not waited for in a
  // cluster: see DepsApplied), and whether one entry is.
  bool DepsApplied(const OpRecord& op) const;
  bool DepApplied(ReplicaId replica, uint64_t seq) const;
  const crdt::VersionVector& LocalDeps();
  void FillDeps(OpRecord& op) const;
  void ApplyAndRetain(OpRecord op);
  void Drain();
  void OverflowBuffer();

  // Keeps an op (view.wire: its record) for the peers that lack it, within both bounds.
  void Retain(const RetainedOpView& op);
  void DropFront();
  // Whether the retained ops exceed the backlog bounds times `factor`.
  bool OverBacklog(uint64_t factor) const;
  // Whether a peer installing a snapshot this replica sent lacks `op` (past the snapshot's cut).
  bool InstallNeeds(const RetainedOpView& op) const;
  void DropFrontOp(const RetainedOpView& op);
  void DropAcknowledged();
  void MarkStale(Peer& peer);
  void SendSnapshot(Peer& peer);
  void AdvanceAckPosition(Peer& peer);
  void Pump(Peer& peer, bool partial);
  // A batch of our own ops as coded for one peer, which another peer at the same position can
  // be sent unchanged (Pump): positions [from, to) of the retained ops.
  struct SharedBatch {
    uint64_t from = 0;
    uint64_t to = 0;
    uint64_t first_seq = 0;  // of its first op
    uint64_t count = 0;
    std::string ops;
  };
  static constexpr size_t kSharedBatches = 64;
  const SharedBatch* SharedBatchFor(const Peer& peer) const;
  void ShareBatch(uint64_t from, uint64_t to, uint64_t first_seq, const OpBatchWriter& batch);
  // Forgets the shared batches that start before the oldest retained op: no cursor goes there
  // again, and a quiet replica keeps none of a burst's batches.
  void ForgetDroppedBatches();
  bool Relayed(const Peer& peer, ReplicaId origin) const;
  void TickPeer(Peer& peer);

  ReplicatorConfig config_;
  Transport& transport_;
  Applier& applier_;
  Observer* observer_;
  std::unique_ptr<RetainedOps> retained_;
  std::string record_;                     // the op record being retained (reused)
  std::unique_ptr<OpBatchWriter> writer_;  // the batch being streamed to a peer (reused)
  std::deque<SharedBatch> shared_;         // the last batches other peers may be sent as well
  crdt::VersionVector applied_;
  // Per origin, the highest seq this replica no longer retains (dropped, or covered by the
  // starting state or an installed snapshot): a peer whose vector is not >= floor_ needs a
  // snapshot.
  crdt::VersionVector floor_;
  std::map<crdt::Dot, OpRecord> buffered_;  // by first dot
  std::map<ReplicaId, std::unique_ptr<Peer>> peers_;
  int64_t now_ms_ = 0;
  // The snapshot being installed in slices, from `install_from_`, covering `install_cut_`.
  std::unique_ptr<SnapshotInstall> installing_;
  // Chunks of snapshots no longer wanted (superseded, covered already), freed a few a turn:
  // freeing a whole snapshot of 1M elements at once held the event loop 390-430 ms.
  std::deque<SnapshotChunk> discarded_;
  ReplicaId install_from_ = kNoReplica;
  crdt::VersionVector install_cut_;
  crdt::VersionVector deps_;      // a local op's deps: applied_, and install_cut_ while installing
  bool drain_pending_ = false;    // Drain stopped at max_drain_ops: StepSnapshots goes on
  size_t drained_this_turn_ = 0;  // buffered ops Drain applied since StepSnapshots last ran
  size_t drained_items_this_turn_ = 0;  // and their OpItems
  size_t snapshot_turns_ = 0;           // StepSnapshots: which kind of its work goes first
  size_t pump_turns_ = 0;               // PumpSnapshots: which peer goes first
  std::function<bool()> step_spent_;    // set_step_spent
  bool StepSpent() const { return step_spent_ && step_spent_(); }
  // Origins of the ops peers sent (relays included): replicas of this shard, whose dep entries
  // are always waited for, peers or not (DepApplied).
  std::set<ReplicaId> origins_;
  uint64_t duplicate_ops_ = 0;
  // The highest seq of this replica's own ops handed to the transport (in a batch or covered
  // by a snapshot), or recovered at start (sent before a restart, perhaps): no peer can hold
  // more of ours, directly or through relays.
  uint64_t own_sent_ = 0;
  // A group of local ops being staged: their records, marked group_continues, and where each
  // starts (BeginGroup, EndGroup).
  struct StagedOp {
    size_t offset = 0;
    uint64_t first_seq = 0;
    uint64_t last_seq = 0;
    uint64_t hlc = 0;
  };
  int group_depth_ = 0;
  std::string group_records_;
  std::vector<StagedOp> group_ops_;
};

// snapshot_id layout (the message has no chunk index, and chunks may be lost or reordered):
// the snapshot's number in the high bits, the chunk's index in the low kSnapshotChunkBits. The
// receiver installs a snapshot once it holds indexes 0 .. index of the chunk marked last. The
// number is the sum of the sender's applied vector when it started the snapshot (truncated to
// the bits there are): it grows with every op the sender applies, and a resend of a state that
// did not change has the same number, which the receiver recognises as the snapshot it already
// has (installed or skipped) and only acknowledges.
inline constexpr int kSnapshotChunkBits = 20;

}  // namespace lattice::repl
