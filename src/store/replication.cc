#include "store/replication.h"

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "fmt/format.h"
#include "lattice/crdt/hlc.h"
#include "lattice/repl/codec.h"
#include "lattice/repl/frame.h"
#include "spdlog/spdlog.h"

namespace lattice::server {
namespace {

constexpr char kPeersFile[] = "peers";
constexpr size_t kSnapshotKeysPerChunk = 1024;
// Chunks taken per peer, and install slices, per turn at most: the second only while the step's
// budget lasts (Replicator::StepSnapshots), so a fast turn moves as much as one slice of 256
// items did and a slow one half of it.
constexpr size_t kSnapshotChunksPerTurn = 2;
// Keys Tick visits for compaction (about 20 ticks a second: 20k keys a second).
constexpr size_t kCompactKeysPerTick = 1024;
// And the items those keys hold (compacting a set costs its members: 1,024 sets of a hundred
// members are 100k items). After an install every key is expanded and is stored compact again
// here, about 4 µs an item: 4,096 made a tick of 15-23 ms of CPU at 1M elements.
constexpr size_t kCompactItemsPerTick = 1024;
// The temporary file of the snapshot's WriteAtomically ("<name>.tmp", storage.h).
constexpr char kSnapshotTemp[] = "snapshot.tmp";

repl::ReplicatorConfig EngineConfig(const ReplicationOptions& options, ReplicaId replica,
                                    uint32_t databases, std::vector<ReplicaId> peers) {
  repl::ReplicatorConfig config;
  config.shard_id = options.shard_id;
  config.replica = replica;
  config.region = options.region;
  config.peers = std::move(peers);
  config.databases = databases;
  config.max_retained_ops = options.max_retained_ops;
  config.max_retained_bytes = options.max_retained_bytes;
  config.peer_timeout_ms = options.peer_timeout_ms;
  config.snapshot_keys_per_chunk = kSnapshotKeysPerChunk;
  config.snapshot_chunks_per_flush = kSnapshotChunksPerTurn;
  config.foreign_dots = options.cluster;
  return config;
}

// The engine's retained ops, logging each one as it is retained: every op the engine applies,
// own or remote, passes here once, in the order applied, as its encoded record. The ring keeps
// those bytes: the batches to every peer (and relays) are the bytes written to the log. The ops
// of a group (retained back to back by the engine) are logged as one group record, so a write
// torn inside it loses all of it at recovery, as a torn record is lost.
class LoggedRetainedOps final : public repl::RetainedOps {
 public:
  explicit LoggedRetainedOps(std::function<void(std::string_view)> log) : log_(std::move(log)) {}
  void AppendEncoded(const repl::RetainedOpView& op) override {
    if (op.group_continues || !group_.empty()) {
      repl::AppendToGroupLogRecord(op.wire, group_);
      if (!op.group_continues) {
        log_(group_);
        group_.clear();
      }
    } else {
      log_(op.wire);
    }
    ops_.AppendEncoded(op);
  }
  repl::RetainedOpView At(uint64_t position) const override { return ops_.At(position); }
  void DropFront() override { ops_.DropFront(); }
  uint64_t first() const override { return ops_.first(); }
  uint64_t end() const override { return ops_.end(); }
  uint64_t bytes() const override { return ops_.bytes(); }

 private:
  std::function<void(std::string_view)> log_;
  repl::RetainedOpRing ops_;
  std::string group_;  // the group record being built
};

// The first byte of an op log record that is not an op (an op record's is its format, 2): the
// state of a key changed without an op, or an install's context (Replication::LogState).
constexpr char kStateRecordTag = '\x5A';
// The first byte of an install's record (Replication::LogInstall), and what its snapshot_id says.
constexpr char kInstallRecordTag = '\x5B';
constexpr uint64_t kInstallFirstKeys = 1;
constexpr uint64_t kInstallKeys = 2;

}  // namespace

std::string ReplicaIdText(ReplicaId replica) { return fmt::format("{:016x}", replica); }

std::string VectorText(const crdt::VersionVector& vector) {
  std::string text;
  for (const auto& [replica, seq] : vector.entries()) {
    if (!text.empty()) text += ',';
    text += ReplicaIdText(replica) + ":" + std::to_string(seq);
  }
  return text;
}

Replication::Replication(Keyspace& keyspace, repl::Storage& storage, repl::Transport& transport,
                         ReplicationOptions options)
    : keyspace_(keyspace),
      storage_(storage),
      transport_(transport),
      options_(std::move(options)),
      log_(storage, repl::OpLogOptions{}) {}

Replication::~Replication() {
  AbortBackgroundCheckpoint();
  keyspace_.RemoveObserver(this);
}

Result<std::unique_ptr<Replication>> Replication::Open(Keyspace& keyspace, repl::Storage& storage,
                                                       repl::Transport& transport,
                                                       ReplicationOptions options, int64_t now_ms) {
  std::unique_ptr<Replication> replication(
      new Replication(keyspace, storage, transport, std::move(options)));
  if (Result<void> recovered = replication->Recover(now_ms); !recovered.ok()) {
    return Unexpected(recovered.error());
  }
  return replication;
}

Result<void> Replication::Recover(int64_t now_ms) {
  now_ms_ = now_ms;
  keyspace_.hlc().SetWall(static_cast<uint64_t>(std::max<int64_t>(now_ms, 0)));
  Keyspace& keyspace = keyspace_;
  Result<std::optional<repl::Snapshot>> snapshot = log_.ReadSnapshot();
  if (!snapshot.ok()) {
    return Unexpected("Bad snapshot in '" + options_.dir + "': " + snapshot.error().message);
  }
  uint64_t covers_index = 0;
  if (snapshot->has_value()) {
    covers_index = (*snapshot)->covers_index;
    stats_.last_snapshot_bytes = (*snapshot)->bytes.size();
    if (Result<void> loaded = LoadSnapshot((*snapshot)->bytes); !loaded.ok()) {
      return Unexpected("Bad snapshot in '" + options_.dir + "': " + loaded.error().message);
    }
  }
  Result<repl::Recovery> recovery = log_.Recover();
  if (!recovery.ok()) {
    return Unexpected("Bad op log in '" + options_.dir + "': " + recovery.error().message);
  }
  if (recovery->torn_tail.has_value()) {
    const repl::TornTail& torn = *recovery->torn_tail;
    stats_.torn_tail = fmt::format("{} at offset {}: {} bytes cut ({})", torn.segment, torn.offset,
                                   torn.bytes_cut, torn.reason);
    spdlog::warn("Op log had a torn tail (a crash during a write): {}", stats_.torn_tail);
  }
  uint64_t index = recovery->first_index;
  std::vector<repl::SnapshotChunk> install;  // an install's keys logged before its beginning
  for (const std::string& payload : recovery->payloads) {
    const uint64_t this_index = index++;
    if (this_index <= covers_index) {
      continue;
    }
    if (!payload.empty() && payload[0] == kInstallRecordTag) {
      if (Result<void> joined = RecoverInstall(payload.substr(1), install); !joined.ok()) {
        return Unexpected(
            fmt::format("Bad op log record {}: {}", this_index, joined.error().message));
      }
      ++stats_.recovered_records;
      stats_.log_bytes_since_snapshot += payload.size();
      continue;
    }
    if (!payload.empty() && payload[0] == kStateRecordTag) {
      if (Result<void> joined = RecoverState(payload.substr(1)); !joined.ok()) {
        return Unexpected(
            fmt::format("Bad op log record {}: {}", this_index, joined.error().message));
      }
      ++stats_.recovered_records;
      stats_.log_bytes_since_snapshot += payload.size();
      continue;
    }
    Result<std::vector<std::string_view>> records = repl::OpsOfLogRecord(payload);
    if (!records.ok()) {
      return Unexpected(
          fmt::format("Bad op log record {}: {}", this_index, records.error().message));
    }
    for (std::string_view record : *records) {  // one op, or a group's
      Result<repl::OpRecord> op = repl::DecodeOp(record);
      if (!op.ok()) {
        return Unexpected(fmt::format("Bad op log record {}: {}", this_index, op.error().message));
      }
      if (op->db >= static_cast<uint32_t>(keyspace.all_databases())) {
        return Unexpected(fmt::format("Op log record {} is for db {}, but databases is {}",
                                      this_index, op->db, keyspace.databases()));
      }
      keyspace.ApplyRemote(static_cast<int>(op->db), op->key, op->op);
    }
    ++stats_.recovered_records;
    stats_.log_bytes_since_snapshot += payload.size();
  }
  keyspace.ResumeDots();
  if (Result<void> peers = LoadPeers(); !peers.ok()) {
    return peers;
  }
  StartEngine();
  keyspace.AddObserver(this);
  if (stats_.recovered_keys > 0 || stats_.recovered_records > 0) {
    spdlog::info("Loaded {} keys from the snapshot and replayed {} op log records; applied {}",
                 stats_.recovered_keys, stats_.recovered_records,
                 keyspace.context().vector().ToString());
  }
  return {};
}

void Replication::StartEngine() {
  replicator_ = std::make_unique<repl::Replicator>(
      EngineConfig(options_, keyspace_.replica(), static_cast<uint32_t>(keyspace_.all_databases()),
                   known_peers_),
      keyspace_.context().vector(), transport_, *this, this,
      std::make_unique<LoggedRetainedOps>([this](std::string_view record) { Append(record); }));
  replicator_->set_max_drain_ops(max_drain_ops_);
  replicator_->set_step_spent(step_spent_);
}

// The order on disk makes a crash anywhere safe: before the replica-id file is replaced nothing
// changed there (the node restarts as it was); after it and before the empty snapshot, the node
// restarts under its new id with its old state, whose ops are then another replica's, as they
// are at its peers; after the snapshot, it restarts empty.
Result<void> Replication::Reincarnate(ReplicaId fresh, int64_t now_ms) {
  LATTICE_ASSERT(fresh != kNoReplica && fresh != keyspace_.replica());
  now_ms_ = now_ms;
  AbortBackgroundCheckpoint();
  // The links were admitted with the old identity's Hello; the dialers reconnect with the new.
  for (const auto& [peer, acked] : replicator_->PeerAcks()) {
    transport_.Close(peer);
  }
  // The command that asked for this runs inside a group (BeginGroup .. EndGroup) of the old
  // engine, which staged no op (the caller checked that every write here reached a peer): the
  // new engine takes the group over, so the command's EndGroup closes it there.
  int open_groups = 0;
  for (; replicator_->in_group(); ++open_groups) replicator_->EndGroup();
  replicator_.reset();  // its snapshots being taken or installed go with it
  const ReplicaId old = keyspace_.replica();
  keyspace_.Reincarnate(fresh);
  known_peers_.clear();
  pubsub_peers_.clear();
  retired_.clear();
  drift_logged_ms_.clear();
  synced_seq_ = 0;
  StartEngine();
  for (int i = 0; i < open_groups; ++i) replicator_->BeginGroup();
  if (Result<void> stored = repl::ReplicaIdentity::Replace(storage_, fresh); !stored.ok()) {
    Fail(stored.error());
    return stored;
  }
  SavePeers();
  if (Result<void> written = Checkpoint(now_ms); !written.ok()) {
    Fail(written.error());
    return written;
  }
  spdlog::warn("This region forgot its data and its shard's peers: replica {} is now replica {}",
               ReplicaIdText(old), ReplicaIdText(fresh));
  return {};
}

void Replication::Retire(ReplicaId peer, int64_t until_ms) {
  retired_[peer] = until_ms;
  RemovePeer(peer);
}

bool Replication::Retired(ReplicaId peer, int64_t now_ms) {
  std::erase_if(retired_, [&](const auto& entry) { return entry.second <= now_ms; });
  return retired_.contains(peer);
}

// A snapshot file is a sequence of frames, each an encoded SnapshotChunk; the last one carries
// the shard context. Keys load into an empty keyspace, so joining them needs no context.
Result<void> Replication::LoadSnapshot(const std::string& bytes) {
  Keyspace& keyspace = keyspace_;
  repl::FrameReader reader;
  reader.Feed(bytes);
  const crdt::DotContext none;
  bool last = false;
  for (;;) {
    const repl::FrameReader::Status status = reader.Next();
    if (status == repl::FrameReader::Status::kError) {
      return Unexpected(reader.error());
    }
    if (status == repl::FrameReader::Status::kNeedMore) {
      break;
    }
    Result<repl::Message> message = repl::Decode(reader.payload());
    if (!message.ok()) {
      return Unexpected(message.error());
    }
    auto* chunk = std::get_if<repl::SnapshotChunk>(&*message);
    if (chunk == nullptr || last) {
      return Unexpected("unexpected message in snapshot");
    }
    for (const repl::SnapshotKey& key : chunk->keys) {
      if (key.db >= static_cast<uint32_t>(keyspace.all_databases())) {
        return Unexpected(
            fmt::format("key for db {}, but databases is {}", key.db, keyspace.databases()));
      }
      keyspace.JoinState(static_cast<int>(key.db), key.key, key.state, none);
      ++stats_.recovered_keys;
    }
    if (chunk->last) {
      keyspace.context().Join(chunk->context);
      last = true;
    }
  }
  if (!last || reader.buffered_bytes() != 0) {
    return Unexpected("snapshot is incomplete");
  }
  return {};
}

Result<void> Replication::LoadPeers() {
  Result<std::vector<std::string>> names = storage_.List();
  if (!names.ok()) {
    return Unexpected(names.error());
  }
  if (!std::binary_search(names->begin(), names->end(), std::string(kPeersFile))) {
    return {};
  }
  Result<std::string> text = storage_.ReadAll(kPeersFile);
  if (!text.ok()) {
    return Unexpected(text.error());
  }
  size_t start = 0;
  while (start < text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    const std::string line = text->substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    char* parse_end = nullptr;
    const ReplicaId id = std::strtoull(line.c_str(), &parse_end, 16);
    if (parse_end != line.c_str() + line.size() || id == kNoReplica || line.size() > 16) {
      return Unexpected("Bad line in the peers file: '" + line + "'");
    }
    // Never written by this node (a peer's Hello with our own id is refused): a peers file
    // copied from another node's data dir. The engine would assert on it.
    if (id == keyspace_.replica()) {
      return Unexpected("Bad line in the peers file: '" + line + "' is this replica's own id");
    }
    known_peers_.push_back(id);
  }
  return {};
}

void Replication::SavePeers() {
  std::string text;
  for (ReplicaId id : known_peers_) {
    text += ReplicaIdText(id) + "\n";
  }
  if (Result<void> saved = storage_.WriteAtomically(kPeersFile, text); !saved.ok()) {
    spdlog::warn("Could not save the peers file: {}", saved.error().message);
  }
}

repl::Hello Replication::LinkHello() const {
  repl::Hello hello;
  hello.shard_id = options_.shard_id;
  hello.replica = keyspace_.replica();
  hello.region = options_.region;
  hello.applied = replicator_->applied();
  hello.features = repl::kFeaturePubSub;
  return hello;
}

void Replication::OnConnected(ReplicaId peer, int64_t now_ms) {
  now_ms_ = now_ms;
  if (std::find(known_peers_.begin(), known_peers_.end(), peer) == known_peers_.end()) {
    known_peers_.push_back(peer);
    SavePeers();
  }
  replicator_->OnConnected(peer, now_ms);
}

void Replication::OnDisconnected(ReplicaId peer, int64_t now_ms) {
  now_ms_ = now_ms;
  std::erase(pubsub_peers_, peer);
  replicator_->OnDisconnected(peer, now_ms);
}

void Replication::OnMessage(ReplicaId from, const repl::Message& message, int64_t now_ms) {
  OnMessage(from, repl::Message(message), now_ms);
}

void Replication::Publish(const repl::Publish& message) {
  for (ReplicaId peer : pubsub_peers_) transport_.Send(peer, message);
}

void Replication::OnMessage(ReplicaId from, repl::Message&& message, int64_t now_ms) {
  now_ms_ = now_ms;
  if (const auto* publish = std::get_if<repl::Publish>(&message)) {
    if (pubsub_hook_) pubsub_hook_(*publish);
    return;
  }
  // The link's Hello (the transport's, on admission) carries the features; the engine's own
  // Hellos on a live link do not, so only a disconnection forgets them.
  const auto* hello = std::get_if<repl::Hello>(&message);
  if (hello != nullptr && (hello->features & repl::kFeaturePubSub) &&
      std::find(pubsub_peers_.begin(), pubsub_peers_.end(), from) == pubsub_peers_.end()) {
    pubsub_peers_.push_back(from);
  }
  replicator_->OnMessage(from, std::move(message), now_ms);
  // Acknowledgements may have advanced: whoever waits on them (CRDT.WAIT) looks again.
  if (acks_hook_) acks_hook_();
}

int64_t Replication::RegionsHaving(uint64_t seq) const {
  const ReplicaId self = keyspace_.replica();
  int64_t regions = 0;
  for (const auto& [peer, acked] : replicator_->PeerAcks()) {
    regions += acked.Get(self) >= seq ? 1 : 0;
  }
  return regions;
}

void Replication::RemovePeer(ReplicaId peer) {
  std::erase(known_peers_, peer);
  SavePeers();
  replicator_->RemovePeer(peer);
}

void Replication::Append(std::string_view payload) {
  if (failed_.has_value()) {
    return;
  }
  if (Result<uint64_t> appended = log_.Append(payload); !appended.ok()) {
    Fail(appended.error());
    return;
  }
  ++stats_.log_records;
  stats_.log_bytes += payload.size();
  stats_.log_bytes_since_snapshot += payload.size();
}

void Replication::Fail(const Error& error) {
  if (!failed_.has_value()) {
    failed_ = error;
  }
}

void Replication::OnLocalOp(int db, std::string_view key, const crdt::KeyOp& op) {
  replicator_->OnLocalOp(static_cast<uint32_t>(db), key, op);  // logged as it is retained
}

void Replication::BeginGroup() { replicator_->BeginGroup(); }

void Replication::EndGroup() { replicator_->EndGroup(); }

void Replication::OnKeyChanged(int db, std::string_view key) {
  if (!joining_install_) LogState(db, key);  // an install's keys are logged before it begins
}

// A key changed without an op (a snapshot install joined it, a slot migration imported it): the
// op log cannot replay that change, so it logs the key's state as it now is, in a state record
// (kStateRecordTag, then a SnapshotChunk of that one key). It is written with the ops of the
// turn, before any reply or acknowledgement leaves, so a kill -9 right after an install or an
// import loses none of it, without a checkpoint first. A key now gone is logged empty.
void Replication::LogState(int db, std::string_view key) {
  const crdt::DotContext none;
  const crdt::Key gone;
  std::string record(1, kStateRecordTag);
  auto log = [&](const crdt::Key& state) {
    const repl::SnapshotKeyRef ref{static_cast<uint32_t>(db), key, &state};
    record += repl::EncodeSnapshotChunk(0, {&ref, 1}, none, /*last=*/false);
  };
  if (!keyspace_.VisitState(db, key, log)) {
    log(gone);
  }
  Append(record);
  state_logged_ = true;
}

// The shard context an install joined (after its keys): a state record with no key.
void Replication::LogContext(const crdt::DotContext& context) {
  std::string record(1, kStateRecordTag);
  record += repl::EncodeSnapshotChunk(0, {}, context, /*last=*/true);
  Append(record);
  state_logged_ = true;
}

// Replays a state record. The log before it gave each key as it was before the change that
// logged it, and that change joined into the key (nothing made it smaller but what the joined
// context removed): joined over the key's own dots, under a context of its dots and the logged
// state's, the key becomes the logged state exactly (its dots the state lacks are removed, the
// rest is a join with something at least as large). The dots join the shard context, as the
// change's did, and so does the record's context (an install's cut).
Result<void> Replication::RecoverState(std::string_view bytes) {
  Keyspace& keyspace = keyspace_;
  Result<repl::Message> message = repl::Decode(bytes);
  if (!message.ok()) {
    return Unexpected(message.error());
  }
  auto* chunk = std::get_if<repl::SnapshotChunk>(&*message);
  if (chunk == nullptr) {
    return Unexpected("a state record that is not a snapshot chunk");
  }
  for (const repl::SnapshotKey& key : chunk->keys) {
    if (key.db >= static_cast<uint32_t>(keyspace.all_databases())) {
      return Unexpected(
          fmt::format("key for db {}, but databases is {}", key.db, keyspace.databases()));
    }
    const int db = static_cast<int>(key.db);
    crdt::DotContext dots;
    keyspace.VisitState(db, key.key, [&](const crdt::Key& held) { held.CollectDots(dots); });
    key.state.CollectDots(dots);
    keyspace.JoinImported(db, key.key, key.state, dots);
    keyspace.context().Join(dots);
  }
  keyspace.context().Join(chunk->context);
  return {};
}

void Replication::Apply(const repl::OpRecord& op) {
  const ReplicaId origin = op.op.first_dot.replica;
  const int64_t ahead = static_cast<int64_t>(crdt::HlcPhysicalMs(op.op.hlc)) - now_ms_;
  int64_t& most = stats_.clock_ahead_ms[origin];
  most = std::max(most, ahead);
  crdt::HlcClock& hlc = keyspace_.hlc();
  hlc.SetWall(static_cast<uint64_t>(std::max<int64_t>(now_ms_, 0)));
  const uint64_t refused = hlc.drift_rejections();
  keyspace_.ApplyRemote(static_cast<int>(op.db), op.key, op.op);  // observers see it
  if (hlc.drift_rejections() != refused) {
    ClockTooFarAhead(origin, ahead);
  }
}

// An op stamped more than the HLC's max drift ahead of our wall clock is applied (every region
// applies it, or they diverge) but our clock does not follow it (docs/replication.md, "Clock
// skew"). Logged at most once a minute per origin.
void Replication::ClockTooFarAhead(ReplicaId origin, int64_t ahead_ms) {
  constexpr int64_t kLogEveryMs = 60'000;
  auto [it, first] = drift_logged_ms_.try_emplace(origin, now_ms_);
  if (!first && now_ms_ - it->second < kLogEveryMs) {
    return;
  }
  it->second = now_ms_;
  const std::string region = replicator_->PeerRegion(origin);
  spdlog::warn(
      "Clock skew: an op of replica {} (region '{}') is stamped {} ms ahead of this region's "
      "clock, more than the {} ms the HLC follows: applied, but this region's clock does not "
      "follow it (crdt_clock_drift_rejections counts them). Check NTP in that region.",
      ReplicaIdText(origin), region, ahead_ms, keyspace_.hlc().max_drift_ms());
}

Result<void> Replication::EndOfBatch() {
  // A slice of the snapshots being taken or installed, before the log write: ops an install
  // releases are logged by this very write, before they are relayed or acknowledged.
  replicator_->StepSnapshots();
  if (!failed_.has_value()) {
    // State records are synced with their turn whatever appendfsync says: no peer would send
    // an install's or an import's keys again (everysec may lose the last second of ops, which
    // the peers hold and stream again).
    const repl::FsyncPolicy policy = state_logged_ && options_.fsync != repl::FsyncPolicy::kNo
                                         ? repl::FsyncPolicy::kAlways
                                         : options_.fsync;
    state_logged_ = false;
    if (Result<void> flushed = log_.Flush(policy); !flushed.ok()) {
      Fail(flushed.error());
    }
  }
  if (failed_.has_value()) {
    return Unexpected(*failed_);
  }
  NoteSynced();
  replicator_->Flush();
  return {};
}

bool Replication::AllLogged() const {
  if (failed_.has_value() || state_logged_ || replicator_->in_group()) return false;
  return options_.fsync == repl::FsyncPolicy::kAlways ? !log_.has_unsynced() : !log_.has_buffered();
}

bool Replication::NoteSynced() {
  const uint64_t logged = keyspace_.next_seq() - 1;
  if (failed_.has_value() || log_.has_unsynced() || logged == synced_seq_) return false;
  synced_seq_ = logged;
  return true;
}

void Replication::SyncIfRequested() {
  if (!sync_requested_ || failed_.has_value()) return;
  sync_requested_ = false;
  if (Result<void> synced = log_.Sync(); !synced.ok()) {
    Fail(synced.error());
    return;
  }
  if (NoteSynced() && acks_hook_) acks_hook_();
}

void Replication::Tick(int64_t now_ms) {
  now_ms_ = now_ms;
  log_.ReleaseIdleBuffer();  // the last turn wrote it: a burst's capacity is not kept
  replicator_->Tick(now_ms);
  // Metadata compaction, paced: a bounded number of keys per tick. Garbage keys whose dots are
  // all causally stable are freed by a DEL op (docs/crdt.md, "Compaction"), shipped and logged
  // like any local op of this batch.
  if (!failed_.has_value()) {
    keyspace_.CompactSome(replicator_->StableVector(), kCompactKeysPerTick, now_ms,
                          kCompactItemsPerTick);
  }
  if (!failed_.has_value() && options_.fsync == repl::FsyncPolicy::kEverySec) {
    if (Result<bool> synced = log_.MaybeSync(now_ms); !synced.ok()) {
      Fail(synced.error());
    } else if (*synced && NoteSynced() && acks_hook_) {
      acks_hook_();  // a WAITAOF may wait on it
    }
  }
  ReapCheckpoint(now_ms);
  MaybeRewrite(now_ms);
}

// The automatic op log rewrite: once the log grew by rewrite_percentage of the last snapshot.
void Replication::MaybeRewrite(int64_t now_ms) {
  const uint64_t grown = stats_.log_bytes_since_snapshot;
  const bool rewrite = options_.rewrite_percentage > 0 && grown >= options_.rewrite_min_bytes &&
                       grown * 100 >= stats_.last_snapshot_bytes *
                                          static_cast<uint64_t>(options_.rewrite_percentage);
  // Not while an install runs: its records must stay in the log until it ends (LogInstall).
  if (failed_.has_value() || !rewrite || background_.has_value() || now_ms < rewrite_retry_ms_ ||
      replicator_->installing()) {
    return;
  }
  if (children_ == nullptr) {
    if (Result<void> written = Checkpoint(now_ms); !written.ok()) {
      Fail(written.error());
    }
    return;
  }
  if (Result<void> started = StartCheckpoint(/*automatic=*/true); !started.ok()) {
    CheckpointFailed(started.error(), now_ms);
  }
}

std::string Replication::EncodeSnapshot() {
  // Encoded from the keys where they are (as TakeSnapshot's chunks, without copying them).
  std::string bytes;
  Keyspace& keyspace = keyspace_;
  std::vector<repl::SnapshotKeyRef> chunk;
  const crdt::DotContext none;
  for (int db = 0; db < keyspace.all_databases(); ++db) {
    keyspace.ForEach(db, [&](const std::string& name, const crdt::Key& state) {
      if (chunk.size() >= kSnapshotKeysPerChunk) {
        repl::AppendFrame(repl::EncodeSnapshotChunk(0, chunk, none, /*last=*/false), bytes);
        chunk.clear();
      }
      chunk.push_back({static_cast<uint32_t>(db), name, &state});
    });
  }
  repl::AppendFrame(repl::EncodeSnapshotChunk(0, chunk, keyspace.context(), /*last=*/true), bytes);
  return bytes;
}

Result<void> Replication::Checkpoint(int64_t now_ms) {
  AbortBackgroundCheckpoint();     // one writer of the snapshot file at a time
  replicator_->CompleteInstall();  // the snapshot file holds the whole state: no pending slot
  // Every record the snapshot covers must be durable first: after a crash the log restarts
  // numbering after the last durable record, and records numbered below covers_index would be
  // skipped on the next recovery.
  if (Result<void> synced = log_.Sync(); !synced.ok()) {
    return synced;
  }
  const uint64_t covers_index = log_.next_index() - 1;
  const std::string bytes = EncodeSnapshot();
  if (Result<void> written = log_.WriteSnapshot(bytes, covers_index); !written.ok()) {
    return written;
  }
  if (Result<void> truncated = log_.TruncatePrefix(covers_index + 1); !truncated.ok()) {
    return truncated;
  }
  stats_.log_bytes_since_snapshot = 0;
  CheckpointWritten(bytes.size(), covers_index, now_ms);
  return {};
}

Result<void> Replication::CheckpointInBackground(int64_t now_ms) {
  if (children_ == nullptr) {
    return Checkpoint(now_ms);
  }
  return StartCheckpoint(/*automatic=*/false);
}

// The child writes the snapshot file itself (WriteAtomically: "snapshot.tmp", fsync, rename),
// touching neither the op log's segments nor anything else the parent writes. That is safe
// because the parent never writes a snapshot while a child runs (Checkpoint kills and reaps it
// first), and truncates the log only once the child reported success: a child that dies
// anywhere leaves either the old snapshot or its own, both covering records that are durable
// and still in the log.
Result<void> Replication::StartCheckpoint(bool automatic) {
  if (background_.has_value()) {
    return Unexpected(ErrorCode::kInvalid, "a background checkpoint is already running");
  }
  if (replicator_->installing()) {  // the shard context covers a cut not all joined yet
    return Unexpected(ErrorCode::kInvalid, "a snapshot install is in progress");
  }
  if (Result<void> synced = log_.Sync(); !synced.ok()) {  // covers_index durable before the fork
    return synced;
  }
  const uint64_t covers_index = log_.next_index() - 1;
  Result<int64_t> child = children_->Start([this, covers_index]() -> Result<std::string> {
    const std::string bytes = EncodeSnapshot();
    if (Result<void> written = log_.WriteSnapshot(bytes, covers_index); !written.ok()) {
      return Unexpected(written.error());
    }
    return std::to_string(bytes.size());
  });
  if (!child.ok()) {
    return Unexpected(child.error());
  }
  background_ = BackgroundCheckpoint{*child, covers_index, stats_.log_bytes, automatic};
  ++stats_.checkpoints_started;
  spdlog::info("Background checkpoint started by child {} (op log records up to {})", *child,
               covers_index);
  return {};
}

void Replication::ReapCheckpoint(int64_t now_ms) {
  if (!background_.has_value()) {
    return;
  }
  std::optional<Result<std::string>> ended = children_->Poll(background_->child);
  if (!ended.has_value()) {
    return;
  }
  const BackgroundCheckpoint done = *background_;
  background_.reset();
  ++stats_.checkpoints_ended;
  if (!ended->ok()) {
    CheckpointFailed(ended->error(), now_ms);
    return;
  }
  // The snapshot covering done.covers_index is in place: the records it covers may go.
  if (Result<void> truncated = log_.TruncatePrefix(done.covers_index + 1); !truncated.ok()) {
    CheckpointFailed(truncated.error(), now_ms);
    return;
  }
  stats_.last_checkpoint_ok = true;
  stats_.log_bytes_since_snapshot = stats_.log_bytes - done.log_bytes;
  CheckpointWritten(std::strtoull(ended->value().c_str(), nullptr, 10), done.covers_index, now_ms);
}

void Replication::CheckpointWritten(uint64_t bytes, uint64_t covers_index, int64_t now_ms) {
  ++stats_.snapshots_written;
  stats_.last_snapshot_bytes = bytes;
  stats_.last_snapshot_ms = now_ms;
  spdlog::info("Snapshot written: {} bytes covering op log records up to {}", bytes, covers_index);
}

// A failed background checkpoint changes nothing on disk that matters (the log is whole): it is
// reported, and the automatic rewrite waits before it tries again, as Valkey's save points.
void Replication::CheckpointFailed(const Error& error, int64_t now_ms) {
  constexpr int64_t kRetryDelayMs = 5000;
  stats_.last_checkpoint_ok = false;
  rewrite_retry_ms_ = now_ms + kRetryDelayMs;
  (void)storage_.Remove(kSnapshotTemp);  // what a child killed mid-write left, if anything
  spdlog::warn("Background checkpoint failed: {}", error.message);
}

void Replication::AbortBackgroundCheckpoint() {
  if (!background_.has_value()) {
    return;
  }
  children_->Kill(background_->child);
  spdlog::info("Background checkpoint child {} killed", background_->child);
  background_.reset();
  ++stats_.checkpoints_ended;
  stats_.last_checkpoint_ok = false;
  (void)storage_.Remove(kSnapshotTemp);
}

Result<void> Replication::Close() {
  AbortBackgroundCheckpoint();
  if (failed_.has_value()) {
    return Unexpected(*failed_);
  }
  return log_.Sync();
}

// A snapshot taken in slices, copy on write: its cut is the shard context when it begins, and
// every key goes as it was then. One pass exports the slots in order, about keys_per_chunk keys
// and slice_items items a chunk; a slot that anything is about to change (or read) before the
// pass got there is copied first (Keyspace::Reach calls BeforeReach: local writes, peers' ops,
// expiry, compaction, an install's joining), and its copy goes out ahead of the pass's next
// slots. Each slot is copied once, so the export ends after one pass whatever the write rate
// (it used to export changed keys again and send what was left in one unbounded last chunk:
// 150,870 items, 250 ms, under the storm test's writes), and every step is bounded. The ops
// made after the cut follow the snapshot on the link (retained for it: InstallNeeds). An
// export does not begin while this region installs a snapshot (Replicator::SendSnapshot
// waits): a slot an install has not joined yet would not be as the cut says.
class Replication::SlicedSnapshot final : public repl::SnapshotSource, public SlotExporter {
 public:
  explicit SlicedSnapshot(Replication& owner)
      : owner_(owner),
        cut_(owner.keyspace_.context()),
        copied_(static_cast<size_t>(owner.keyspace_.all_databases()) * kSlotCount, false) {
    owner_.keyspace_.add_slot_exporter(this);
  }
  ~SlicedSnapshot() override { owner_.keyspace_.remove_slot_exporter(this); }
  SlicedSnapshot(const SlicedSnapshot&) = delete;
  SlicedSnapshot& operator=(const SlicedSnapshot&) = delete;

  void BeforeReach(int db, uint16_t slot) override {
    const uint64_t index = static_cast<uint64_t>(db) * kSlotCount + slot;
    if (!copied_[index]) {
      copied_[index] = true;
      Copy(db, slot);
    }
  }

  repl::SnapshotChunk Next(size_t keys_per_chunk) override {
    repl::SnapshotChunk chunk;
    // A chunk is bounded by its keys and by their items (elements and their metadata): copying
    // and encoding 1,024 sets of a hundred members held the event loop for 1.3 s at load 18.
    // A slot is copied whole (once), its keys sent over as many chunks as the bound makes: a
    // slot of several sets of a hundred members made chunks of 1,000-1,250 items at 1M, past a
    // bound of 128 or 256, and a chunk of about 1,200 items cost its receiver 9-10 ms to decode.
    size_t items = 0;
    auto room = [&] { return chunk.keys.size() < keys_per_chunk && items < owner_.slice_items_; };
    while (room()) {
      if (!pending_.empty()) {
        items += Items(pending_.front());
        chunk.keys.push_back(std::move(pending_.front()));
        pending_.pop_front();
        continue;
      }
      if (position_ == copied_.size()) {
        break;
      }
      if (!copied_[position_]) {
        copied_[position_] = true;
        const int db = static_cast<int>(position_ / kSlotCount);
        Copy(db, static_cast<uint16_t>(position_ % kSlotCount));
      }
      ++position_;
    }
    if (position_ == copied_.size() && pending_.empty()) {
      chunk.last = true;
      chunk.context = cut_;
    }
    owner_.NoteSlice(items);
    return chunk;
  }

 private:
  static size_t Items(const repl::SnapshotKey& key) { return 1 + key.state.MetadataItems(); }

  // Queues the slot's keys as they stand (not reached: an install that began after this export
  // must not join the slot before it is copied).
  void Copy(int db, uint16_t slot) {
    owner_.keyspace_.CopySlot(db, slot, [&](const std::string& name, crdt::Key state) {
      pending_.push_back({static_cast<uint32_t>(db), name, std::move(state)});
    });
  }

  Replication& owner_;
  const crdt::DotContext cut_;
  std::vector<bool> copied_;  // per db * kSlotCount + slot
  uint64_t position_ = 0;     // of the pass
  // Keys copied and not sent yet: slots copied ahead of the pass (reached first), and the rest
  // of the slot the pass copied last.
  std::deque<repl::SnapshotKey> pending_;
};

void Replication::NoteSlice(uint64_t items) {
  stats_.last_slice_items = items;
  stats_.max_slice_items = std::max(stats_.max_slice_items, items);
}

std::unique_ptr<repl::SnapshotSource> Replication::StartSnapshot(size_t) {
  return std::make_unique<SlicedSnapshot>(*this);
}

std::vector<repl::SnapshotChunk> Replication::TakeSnapshot(size_t keys_per_chunk) {
  std::vector<repl::SnapshotChunk> chunks;
  SlicedSnapshot snapshot(*this);
  do {
    chunks.push_back(snapshot.Next(keys_per_chunk));
  } while (!chunks.back().last);
  return chunks;
}

// A complete snapshot joined in slices (docs/replication.md, "Installing in slices"):
// 1. Logging: the snapshot's keys are appended to the op log as install records, a bounded
//    number per step, and indexed by hash slot. Nothing has changed yet: a crash here recovers
//    the state before the install (the records without a beginning are dropped).
// 2. The beginning: a record with the cut (synced with its turn). The shard context joins the
//    cut, and every slot is pending. Recovery joins the logged keys whole at this record.
// 3. Joining, slot after slot, a bounded number of keys per step; and a pending slot that
//    anything reaches first (a read, a write, a peer's op, a listing: Keyspace::Reach) is joined
//    at once. A slot is joined whole: the last copy of each snapshot key (a sliced snapshot sends
//    a key again when it changed after its first export), then every local key the snapshot
//    lacks with nothing (what the cut observed of it was removed there), each with
//    Key::Join(theirs, mine, cut) where mine's context is the shard context before the cut.
// Why that is the install done at once at the beginning: no op, local or a peer's, ever meets a
// key of a pending slot, so each key's join is of the state it had at the beginning, with the
// context of the beginning; joins of different keys commute with each other and with ops on
// other keys. The shard context covers the cut from the beginning, so a local write's observed
// dots (Keyspace joins them into the shard context) never make it claim part of an op, and a
// snapshot taken for another peer meanwhile agrees with it (ForEachInSlot reaches each slot).
// The engine applies no op the cut covers and no op depending on it until the last step
// (Replicator::FinishInstall raises the applied vector then).
class Replication::SlicedInstall final : public repl::SnapshotInstall, public SlotJoiner {
 public:
  // Slots a step visits at most (an empty slot costs a look at two tables).
  static constexpr uint64_t kSlotsPerStep = kSlotCount;

  SlicedInstall(Replication& owner, std::vector<repl::SnapshotChunk> chunks, size_t keys_per_step)
      : owner_(owner),
        chunks_(std::move(chunks)),
        cut_(chunks_.back().context),
        keys_per_step_(keys_per_step),
        db_keys_(static_cast<size_t>(owner.keyspace_.all_databases())) {}
  ~SlicedInstall() override {
    if (owner_.keyspace_.slot_joiner() == this) owner_.keyspace_.set_slot_joiner(nullptr);
  }
  SlicedInstall(const SlicedInstall&) = delete;
  SlicedInstall& operator=(const SlicedInstall&) = delete;

  bool Step() override {
    if (!begun_) {
      LogSome();
      if (chunk_ < chunks_.size()) {
        return false;
      }
      Begin();
      return false;
    }
    return JoinSome();
  }

  bool Reach(int db, uint16_t slot) override {
    const uint64_t index = static_cast<uint64_t>(db) * kSlotCount + slot;
    if (!pending_[index]) {
      return false;
    }
    JoinSlot(db, slot);
    return true;
  }

 private:
  // 1. The next keys, in the order sent, as one install record; indexed by slot.
  void LogSome() {
    std::vector<repl::SnapshotKeyRef> refs;
    size_t items = 0;  // bounded too, as a sliced export's chunk is
    while (refs.size() < keys_per_step_ && items < owner_.slice_items_ && chunk_ < chunks_.size()) {
      std::vector<repl::SnapshotKey>& keys = chunks_[chunk_].keys;
      if (key_ == keys.size()) {
        ++chunk_;
        key_ = 0;
        continue;
      }
      repl::SnapshotKey& key = keys[key_++];
      items += 1 + key.state.MetadataItems();
      refs.push_back({key.db, key.key, &key.state});
      by_slot_[static_cast<uint64_t>(key.db) * kSlotCount + KeySlot(key.key)].push_back(&key);
      ++db_keys_[key.db];
    }
    if (!refs.empty()) {
      owner_.LogInstall(logged_ ? kInstallKeys : kInstallFirstKeys, refs, {}, false);
      logged_ = true;
    }
    owner_.NoteSlice(items);
  }

  // 2.
  void Begin() {
    Keyspace& keyspace = owner_.keyspace_;
    owner_.LogInstall(logged_ ? kInstallKeys : kInstallFirstKeys, {}, cut_, /*begins=*/true);
    before_ = keyspace.context();
    keyspace.context().Join(cut_);
    pending_.assign(static_cast<size_t>(keyspace.all_databases()) * kSlotCount, true);
    keyspace.set_slot_joiner(this);
    begun_ = true;
  }

  // 3. Slots in order: true once every one is joined.
  bool JoinSome() {
    Keyspace& keyspace = owner_.keyspace_;
    const uint64_t end = pending_.size();
    // Bounded by keys and by their items (elements and their metadata, the snapshot's copy and
    // the local key each), as the logging phase is: a key of a hundred members costs a hundred.
    size_t keys = 0;
    size_t items = 0;
    uint64_t slots = 0;
    while (keys < keys_per_step_ && items < owner_.slice_items_ && slots < kSlotsPerStep &&
           position_ < end) {
      const int db = static_cast<int>(position_ / kSlotCount);
      if (position_ % kSlotCount == 0 && db_keys_[db] == 0 && !keyspace.HasEntries(db)) {
        position_ += kSlotCount;  // nothing to join there now; a key made later reaches its slot
        ++slots;
        continue;
      }
      if (pending_[position_]) {
        const JoinedCount joined = JoinSlot(db, static_cast<uint16_t>(position_ % kSlotCount));
        keys += joined.keys;
        items += joined.items;
      }
      ++position_;
      ++slots;
    }
    owner_.NoteSlice(items);
    if (position_ < end) {
      return false;
    }
    keyspace.set_slot_joiner(nullptr);
    return true;
  }

  struct JoinedCount {
    size_t keys = 0;
    size_t items = 0;  // Key::MetadataItems of both sides, plus one a key
  };

  // One slot, whole: returns what it joined.
  JoinedCount JoinSlot(int db, uint16_t slot) {
    Keyspace& keyspace = owner_.keyspace_;
    const uint64_t index = static_cast<uint64_t>(db) * kSlotCount + slot;
    pending_[index] = false;
    keyspace.BeforeChange(db, slot);  // a snapshot being taken copies the slot first
    JoinedCount count;
    std::vector<std::string> local;
    keyspace.ForEachInSlot(db, slot, [&](const std::string& name, const crdt::Key& state) {
      local.push_back(name);
      count.items += 1 + state.MetadataItems();
    });
    std::set<std::string_view> joined;
    owner_.joining_install_ = true;
    auto theirs = by_slot_.find(index);
    if (theirs != by_slot_.end()) {
      for (auto it = theirs->second.rbegin(); it != theirs->second.rend(); ++it) {
        repl::SnapshotKey& key = **it;  // the last copy sent comes first
        if (joined.insert(key.key).second) {
          count.items += 1 + key.state.MetadataItems();
          keyspace.JoinInstalled(db, key.key, key.state, before_, cut_);
          keyspace.NotifyKeyChanged(db, key.key);
        }
        key.state = crdt::Key{};  // joined or superseded: free it now
      }
    }
    const crdt::Key nothing;
    for (const std::string& name : local) {
      if (!joined.contains(name)) {
        keyspace.JoinInstalled(db, name, nothing, before_, cut_);
        keyspace.NotifyKeyChanged(db, name);
      }
    }
    owner_.joining_install_ = false;
    count.keys = joined.size() + local.size();
    if (theirs != by_slot_.end()) {
      by_slot_.erase(theirs);
    }
    return count;
  }

  Replication& owner_;
  std::vector<repl::SnapshotChunk> chunks_;
  const crdt::DotContext cut_;
  const size_t keys_per_step_;
  // 1.
  size_t chunk_ = 0;
  size_t key_ = 0;
  bool logged_ = false;
  absl::flat_hash_map<uint64_t, std::vector<repl::SnapshotKey*>> by_slot_;  // db * slots + slot
  std::vector<uint64_t> db_keys_;                                           // snapshot keys per db
  // 2. and 3.
  bool begun_ = false;
  crdt::DotContext before_;  // the shard context at the beginning, before the cut
  std::vector<bool> pending_;
  uint64_t position_ = 0;  // db * kSlotCount + slot of the next slot to join
};

std::unique_ptr<repl::SnapshotInstall> Replication::StartInstall(
    std::vector<repl::SnapshotChunk> chunks) {
  return std::make_unique<SlicedInstall>(*this, std::move(chunks), install_keys_per_step_);
}

// An install record: kInstallRecordTag, then a SnapshotChunk whose snapshot_id tells what it is
// (the first keys of an install, more keys, or, with last set, the beginning and its cut).
void Replication::LogInstall(uint64_t kind, std::span<const repl::SnapshotKeyRef> keys,
                             const crdt::DotContext& cut, bool begins) {
  std::string record(1, kInstallRecordTag);
  record += repl::EncodeSnapshotChunk(kind, keys, cut, begins);
  Append(record);
  state_logged_ = state_logged_ || begins;  // synced with its turn: see EndOfBatch
}

Result<void> Replication::RecoverInstall(std::string_view bytes,
                                         std::vector<repl::SnapshotChunk>& keys) {
  Result<repl::Message> message = repl::Decode(bytes);
  if (!message.ok()) {
    return Unexpected(message.error());
  }
  auto* chunk = std::get_if<repl::SnapshotChunk>(&*message);
  if (chunk == nullptr || chunk->snapshot_id > kInstallKeys) {
    return Unexpected("an install record that is not one");
  }
  for (const repl::SnapshotKey& key : chunk->keys) {
    if (key.db >= static_cast<uint32_t>(keyspace_.all_databases())) {
      return Unexpected(
          fmt::format("key for db {}, but databases is {}", key.db, keyspace_.databases()));
    }
  }
  if (chunk->snapshot_id == kInstallFirstKeys) {
    keys.clear();  // an install whose beginning was never logged changed nothing
  }
  const bool begins = chunk->last;
  const crdt::DotContext cut = chunk->context;
  keys.push_back(std::move(*chunk));
  if (begins) {
    JoinWhole(keys, cut, /*notify=*/false);
    keys.clear();
  }
  return {};
}

void Replication::JoinWhole(std::vector<repl::SnapshotChunk>& chunks, const crdt::DotContext& cut,
                            bool notify) {
  Keyspace& keyspace = keyspace_;
  std::vector<std::set<std::string>> joined(static_cast<size_t>(keyspace.all_databases()));
  for (auto chunk = chunks.rbegin(); chunk != chunks.rend(); ++chunk) {
    for (auto key = chunk->keys.rbegin(); key != chunk->keys.rend(); ++key) {
      const int db = static_cast<int>(key->db);  // checked by the engine or RecoverInstall
      if (joined[key->db].insert(key->key).second) {
        keyspace.JoinState(db, key->key, key->state, cut);
        if (notify) keyspace.NotifyKeyChanged(db, key->key);
      }
    }
  }
  const crdt::Key nothing;
  for (int db = 0; db < keyspace.all_databases(); ++db) {
    std::vector<std::string> absent;
    keyspace.ForEach(db, [&](const std::string& name, const crdt::Key&) {
      if (!joined[db].contains(name)) absent.push_back(name);
    });
    for (const std::string& name : absent) {
      keyspace.JoinState(db, name, nothing, cut);
      if (notify) keyspace.NotifyKeyChanged(db, name);
    }
  }
  keyspace.context().Join(cut);
}

// The Applier's install at once (tests): each key logged as a state record, then the cut.
void Replication::InstallSnapshot(const std::vector<repl::SnapshotChunk>& chunks) {
  std::vector<repl::SnapshotChunk> copy = chunks;
  const crdt::DotContext cut = copy.back().context;
  JoinWhole(copy, cut, /*notify=*/true);
  LogContext(cut);
}

void Replication::OnEvent(const repl::Event& event) {
  std::string peer = "-";
  if (event.peer != kNoReplica) {
    peer = ReplicaIdText(event.peer);
    const std::string region =
        replicator_ != nullptr ? replicator_->PeerRegion(event.peer) : std::string();
    if (!region.empty()) {
      peer += fmt::format(" (region '{}')", region);  // operators read names
    }
  }
  stats_.last_event = fmt::format("{} {} {}", repl::EventKindName(event.kind), peer, event.detail);
  switch (event.kind) {
    case repl::EventKind::kPeerConnected:
    case repl::EventKind::kSnapshotSent:
    case repl::EventKind::kSnapshotInstalled:
      spdlog::info("Replication: {} peer {} {}", repl::EventKindName(event.kind), peer,
                   event.detail);
      break;
    default:
      spdlog::warn("Replication: {} peer {} {}", repl::EventKindName(event.kind), peer,
                   event.detail);
      break;
  }
}

}  // namespace lattice::server
