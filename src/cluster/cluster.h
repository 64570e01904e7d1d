#pragma once
// Cluster is a node's cluster-mode state and logic: its identity (a 40-hex node id kept in
// --dir/nodes.conf), its view of the topology (cluster_topology.h), the routing of commands, the
// gossip that makes every node converge on one slot map, and atomic slot migration. It does no
// I/O of its own: messages to other nodes go through a ClusterBus (src/net/cluster_bus.h in
// production), and time comes in as arguments, so tests drive it with a fake bus and clock.
//
// Gossip: every second, and at once after a change, the node sends its whole view to every node
// it knows and every address it was asked to MEET (CLUSTER LATTICE-GOSSIP <topology text>);
// the receiver joins it into its own (ClusterTopology::Merge) and replies with its view, which
// the sender joins too. Merge is a join, so any delivery order converges.
//
// Slot migration (Valkey 9's CLUSTER MIGRATESLOTS; docs/cluster.md): the node that receives the
// command exports to every node of the target shard over the bus (CLUSTER SYNCSLOTS ...):
//   ESTABLISH -> snapshot chunks of the slots' CRDT state, interleaved with every op applied here
//   to those slots (own ops and ops of the other regions of this shard, in applied order: a
//   causal order) -> PAUSE writes to the slots on every node of this shard, each replying with
//   its last own sequence number -> wait until this node has applied those (drained) ->
//   DRAINED to the targets -> FINISH: the targets adopt a topology where they own the slots at a
//   new epoch -> once every target acknowledged it, this node adopts it and gossips it; every
//   source node then unpauses (writes get MOVED), and drops its keys of those slots.
// Join makes duplicates between snapshot and stream harmless. Any failure before FINISH leaves
// the source owning the slots: its nodes unpause and the targets drop what they imported. When
// the outcome is unknown (FINISH unanswered, or another source node's pause timed out), the
// slots are "unconfirmed": writes get TRYAGAIN until every node of the target shard answers a
// gossip sent once none of them can take FINISH any more (docs/cluster.md, "Failure").
//
// Failure detection (Valkey's PFAIL/FAIL; docs/cluster.md, "Failure detection"): a node that
// neither answered this node's gossip nor sent any for cluster-node-timeout is PFAIL here. Each
// gossip carries the sender's PFAIL and FAIL nodes (its failure reports). A PFAIL node becomes
// FAIL once a majority of the nodes of slot-owning shards (every region is a primary here)
// reports it, this node included, or once a node reports it FAIL; it is cleared as soon as it
// answers again. A region's clients are served by another node of a shard whose node is FAIL
// (ClusterTopology::ServingNode).
//
// Catch-up (docs/cluster.md, "The return"): after a start, or a REPLICATE, a node of a shard with
// other nodes is catching up until its replication links to them are up and it has applied
// what each of them had applied when its link came up (their Hello). Meanwhile its gossip says
// so ("syncing" in its failure reports, which gossip replies carry too), and every node's views
// pass it over while its shard has another healthy node, so clients move back to it only once it
// holds what they wrote elsewhere. One that takes longer than a bound is logged and shown in
// CLUSTER INFO (lattice_catch_up_overdue).
//
// Event-loop thread only.

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/cluster_topology.h"
#include "lattice/common/result.h"
#include "lattice/common/rng.h"
#include "lattice/repl/messages.h"
#include "lattice/repl/storage.h"
#include "resp/reply_builder.h"
#include "resp/reply_decoder.h"
#include "resp/request_parser.h"
#include "store/clock.h"
#include "store/keyspace.h"

namespace lattice::server {

class Replication;

// How a node reaches other nodes: commands over their client port, one ordered connection per
// (address, channel). Implemented in src/net/cluster_bus.h.
class ClusterBus {
 public:
  using ReplyHandler = std::function<void(Result<RespValue> reply)>;
  virtual ~ClusterBus() = default;
  // Sends `args` as one command; `done` receives the reply, or an error if the link failed
  // (every command queued on a failed link gets the error, in order).
  virtual void Send(const std::string& ip, int port, std::string_view channel,
                    std::vector<std::string> args, ReplyHandler done) = 0;
};

// A migration's state, on the export side: connecting -> snapshotting -> replicating ->
// waiting-to-pause -> failover-paused -> waiting-to-finish -> failover-granted -> success; on the
// import side: receiving-snapshot -> failover-requested -> failover-granted -> success, or
// cleaning-up -> failed. Any export may end failed or cancelled.
enum class MigrationState {
  kConnecting,
  kSnapshotting,
  kReplicating,
  kWaitingToPause,
  kFailoverPaused,
  kWaitingToFinish,
  kFailoverGranted,
  kReceivingSnapshot,
  kFailoverRequested,
  kCleaningUp,
  kSuccess,
  kFailed,
  kCancelled,
};

// The name CLUSTER GETSLOTMIGRATIONS shows ("waiting-to-pause").
std::string_view MigrationStateName(MigrationState state);

struct MigrationJob {
  std::string name;  // 40 hex
  bool export_side = true;
  std::vector<SlotRange> ranges;
  std::vector<uint16_t> slots;
  std::string source_node;
  std::string target_node;
  std::string peer_shard;  // export: the target shard; import: the source shard
  MigrationState state = MigrationState::kConnecting;
  std::string message;
  int64_t create_ms = 0;
  int64_t update_ms = 0;
  int64_t ack_ms = 0;
  // Export progress.
  std::vector<std::string> targets;  // node ids of the target shard
  size_t outstanding = 0;            // commands in flight to targets
  size_t waiting = 0;                // replies a step still waits for
  size_t snapshot_outstanding = 0;   // snapshot chunks not yet acknowledged
  size_t snapshot_db = 0;
  size_t snapshot_slot = 0;            // index into `slots`
  std::vector<std::string> op_buffer;  // encoded ops not yet sent
  // Keys of the slots that changed here without an op (a replication snapshot installed from
  // another region of this shard): sent again whole, ahead of any later op (SendChangedKeys).
  std::vector<std::pair<int, std::string>> changed_keys;
  std::map<ReplicaId, uint64_t> drain_until;  // per source node: its last seq at PAUSE
  int64_t pause_start_us = 0;
  int64_t drained_us = 0;  // import: when DRAINED arrived (monotonic)
  // Import failed after DRAINED: the source may have handed the slots to this shard's other
  // nodes. The keys stay (hidden) until that is known: this shard owns the slots (success), or
  // every other node of it answered a gossip sent once no node can take FINISH any more, the
  // round `undecided_round`, without giving them (then they are dropped).
  int64_t undecided_until_us = 0;  // monotonic: when no node can take FINISH any more
  uint64_t undecided_round = 0;
  std::vector<std::string> undecided_heard;  // node ids of this shard that answered since
  uint64_t keys_sent = 0;
  uint64_t ops_sent = 0;
  std::string finish_topology;  // the topology FINISH sends
  bool terminal() const {
    return state == MigrationState::kSuccess || state == MigrationState::kFailed ||
           state == MigrationState::kCancelled;
  }
};

// "SLOTSRANGE s e [s e ...]" from args[first], checked, with Valkey's error texts. Without
// `next`, the ranges run to the end of args; with it, they stop at a NODE argument (CLUSTER
// MIGRATESLOTS), whose index (or args.size()) goes to *next.
Result<std::vector<SlotRange>> ParseSlotRanges(ArgList args, size_t first, size_t* next = nullptr);

// A LATTICE-GOSSIP reply: the replier's view (topology text), then its failure reports from their
// "from <id>" line on (empty when there are none).
std::pair<std::string_view, std::string_view> SplitGossipReply(std::string_view reply);

struct ClusterStats {
  uint64_t messages_sent = 0;  // every command sent over the bus
  uint64_t messages_received = 0;
  int64_t last_migration_ms = 0;
  int64_t last_migration_pause_ms = 0;
  int64_t max_migration_pause_ms = 0;
  uint64_t last_migration_keys = 0;
};

// What the cluster reads of the node's configuration. The server refreshes it when CONFIG SET
// changes one of these (Cluster::set_options).
struct ClusterOptions {
  bool enabled = false;                // cluster-enabled
  bool require_full_coverage = true;   // cluster-require-full-coverage
  bool allow_reads_when_down = false;  // cluster-allow-reads-when-down
  std::string shard_id = "default";
  // No --shard-id in cluster mode: the node is a shard of its own, named by its node id (as
  // Valkey's shard id), until CLUSTER REPLICATE makes it a region of another node's shard. The
  // shard it is in is then kept in nodes.conf.
  bool implicit_shard = false;
  int repl_port = 0;  // replication port, gossiped: the shard's other regions link to it
  std::string region;
  std::string announce_ip;  // cluster-announce-ip ("" : from bind)
  std::vector<std::string> bind;
  int port = 0;
  int announce_port = 0;                  // cluster-announce-port (0: port)
  int64_t repl_timeout_s = 60;            // a migration step waits this long at most
  int64_t node_timeout_ms = 15'000;       // cluster-node-timeout: silence before PFAIL
  std::vector<std::string> region_order;  // cluster-region-order: the nearest regions first
};

// One other node as this node's failure detection sees it.
struct NodeHealth {
  int64_t seen_ms = 0;       // its last gossip or gossip reply here (or when it became known)
  bool pfail = false;        // silent for cluster-node-timeout
  bool fail = false;         // PFAIL here and reported by a majority (or reported FAIL)
  bool catching_up = false;  // its latest failure reports said it is catching up
  // Nodes whose latest gossip listed it as PFAIL or FAIL: reporter id -> (when, said FAIL).
  std::map<std::string, std::pair<int64_t, bool>, std::less<>> reports;
};

class Cluster : public KeyspaceObserver {
 public:
  using SlotFlags = std::array<bool, kSlotCount>;

  // Observes `keyspace` (the ops of exported slots stream to the migration's targets) until
  // destroyed. `clock` and `rng` (names of migrations) must outlive the cluster.
  Cluster(Keyspace& keyspace, const Clock& clock, Rng& rng, ClusterOptions options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  void set_bus(ClusterBus* bus) { bus_ = bus; }
  // Called (never inline in a command's routing) when a paused slot is served again or a slot
  // leaves this shard: the server then retries held writes and redirects blocked clients.
  void set_routing_hook(std::function<void()> hook) { routing_hook_ = std::move(hook); }
  // Called at a tick after this node's shard or its nodes changed (and after Load) with the
  // replication addresses ("ip:port") of the shard's other nodes: the network layer links to
  // them, so a cluster needs no --peer list.
  void set_shard_peers_hook(std::function<void(const std::vector<std::string>&)> hook) {
    shard_peers_hook_ = std::move(hook);
    shard_peers_due_ = true;
  }
  // Called when CLUSTER FORGET drops a node of this node's shard, with its replication address
  // ("ip:port"): the network layer unlinks it and the engine retires its replica (it no longer
  // holds back compaction, and is not admitted again while the node is banned).
  void set_forget_hook(std::function<void(const std::string&, int64_t until_ms)> hook) {
    forget_hook_ = std::move(hook);
  }
  // The node's replication, when it has one: a finished import is checkpointed through it.
  void set_replication(Replication* replication) { replication_ = replication; }
  const ClusterOptions& options() const { return options_; }
  const Keyspace& keyspace() const { return keyspace_; }
  void set_options(ClusterOptions options) { options_ = std::move(options); }
  // Loads the file `name` (nodes.conf) of `storage` (the data dir) or creates it with `fresh_id`;
  // refreshes this node's record from the configuration (address, shard, region). Then drops
  // keys of slots this shard does not own (left by an interrupted import or a finished export).
  // Every change is persisted there atomically and durably (Storage::WriteAtomically). Without
  // a storage (tests) nothing is persisted. `storage` must outlive the cluster.
  Result<void> Load(repl::Storage* storage, const std::string& name, const std::string& fresh_id,
                    int64_t now_ms);

  const std::string& myid() const { return myid_; }
  const ClusterNode& myself() const;
  const ClusterTopology& topology() const { return topology_; }
  const ClusterStats& stats() const { return stats_; }

  // PUBLISH in cluster mode reaches every shard, as Valkey broadcasts it over its cluster bus
  // (docs/semantics.md, "Pub/Sub across shards"): the message goes once to one node of every
  // other shard (its node in this region, else its node with the smallest id; with
  // `region_local`, only a node in this region), as CLUSTER LATTICE-PUBLISH on the bus channel
  // "pubsub", and that node delivers it and sends it on to its shard's other regions. One bus
  // connection per node keeps each node's publish order. Fire and forget: nothing is retried.
  void PublishToShards(std::string_view channel, std::string_view message, bool region_local);
  bool StateOk() const;

  // What routing (server/cluster_routing.h) reads: the slots whose writes are held for a
  // migration handoff, and whether any slot's handoff is unconfirmed.
  const SlotFlags& paused() const { return paused_; }
  bool any_unconfirmed() const { return any_unconfirmed_; }

  // Topology commands. Errors are Valkey's texts.
  // ADDSLOTS (`add`: the slots must be unassigned; they go to this shard) or DELSLOTS (they must
  // be assigned; they are unassigned).
  Result<void> SetSlots(const std::vector<uint16_t>& slots, bool add);
  void Meet(const std::string& ip, int port);
  // CLUSTER RESET: forgets every other node and every slot assignment, claiming nothing about
  // other shards' slots (docs/cluster.md); the node becomes a shard of its own again (without
  // --shard-id). `hard` also gives it a new node id. The caller checked that it holds no keys.
  void Reset(bool hard, int64_t now_ms);
  // CLUSTER CREATE: gives the slots to `shards` in equal ranges (in the order given) and meets
  // `addresses`.
  void Create(const std::vector<std::string>& shards,
              const std::vector<std::pair<std::string, int>>& addresses);
  // Valkey's node commands, mapped onto shards of regions (docs/cluster.md). REPLICATE makes this
  // node another region of `id`'s shard; this node must hold no keys (`keys`) and its shard no
  // slots.
  Result<void> Replicate(std::string_view id, size_t keys);
  // Forgets `id` and ignores it in gossip for 60 s.
  Result<void> Forget(std::string_view id, int64_t now_ms);
  Result<void> SetConfigEpoch(int64_t epoch);
  // True: bumped (BUMPED), false: STILL; the epoch is then this shard's.
  bool BumpEpoch();
  // Unassigns every slot of this node's shard (for every region of it).
  void FlushSlots();
  // Valkey's classic resharding (CLUSTER SETSLOT, MIGRATE; docs/cluster.md), carried by the
  // atomic migration: MIGRATING starts a MIGRATESLOTS job of the slot to the target's shard.
  // IMPORTING and MIGRATING also mark the slot for CLUSTER NODES ("[slot-<-id]", "[slot->-id]").
  Result<void> SetSlotImporting(uint16_t slot, std::string_view source_id);
  Result<void> SetSlotMigrating(uint16_t slot, std::string_view target_id, int64_t now_ms);
  void SetSlotStable(uint16_t slot);
  // SETSLOT <slot> NODE <id>. Ok(false): a migration of the slot runs on this node; the caller
  // holds the client and asks again when the routing changes. `keys`: this node's keys in it.
  Result<bool> SetSlotNode(uint16_t slot, std::string_view id, size_t keys);
  // Whether a migration job of this node (export or import) covers `slot` and is not over.
  bool SlotMigrating(uint16_t slot) const;
  // A peer's gossip: joins it, takes in the sender's failure reports (`health`, empty from a
  // sender without them) and returns this node's view. `meet`: the sender was asked to MEET this
  // node (CLUSTER MEET), which lifts a FORGET ban of the sender, as Valkey's MEET packet does.
  Result<std::string> OnGossip(std::string_view text, std::string_view health, bool meet,
                               int64_t now_ms);

  // Failure detection. Health of another node (nullptr for this node or an unknown one).
  const NodeHealth* HealthOf(std::string_view id) const;
  // Reports about `id` still valid (within 2 x cluster-node-timeout).
  size_t FailureReports(std::string_view id) const;
  // The node that serves `shard` for this node's region, failed nodes passed over.
  const ClusterNode* Serving(std::string_view shard) const;
  ServingPrefs serving_prefs() const { return {&failed_, options_.region_order, &catching_up_}; }
  // This node's catch-up with its shard (see above): whether it runs, how long it ran or has
  // been running, and whether it passed its bound.
  bool catching_up() const { return catch_up_.running; }
  int64_t catch_up_ms() const;
  bool catch_up_overdue() const { return catch_up_.overdue; }

  // Migration commands (Valkey 9).
  Result<void> MigrateSlots(std::vector<std::pair<std::vector<SlotRange>, std::string>> jobs,
                            int64_t now_ms);
  Result<void> CancelMigrations(int64_t now_ms);
  const std::deque<MigrationJob>& jobs() const { return jobs_; }  // newest first
  // CLUSTER SYNCSLOTS <args...> from a source or a peer; writes the reply.
  void OnSyncSlots(ArgList args, ReplyBuilder& reply, int64_t now_ms);
  // Slots whose handoff is not confirmed (writes get TRYAGAIN).
  const SlotFlags& unconfirmed() const { return unconfirmed_; }
  // Slots of a migration on this node: "[n->-id]" / "[n-<-id]" in CLUSTER NODES.
  std::vector<std::string> MigratingSlotsText() const;

  // KeyspaceObserver: every op applied here (own and remote) passes through, for the migration
  // stream.
  void OnLocalOp(int db, std::string_view key, const crdt::KeyOp& op) override;
  void OnRemoteOp(int db, std::string_view key, const crdt::KeyOp& op) override;
  // A key a peer's snapshot brought in (Replication::InstallSnapshot) or an import joined.
  void OnKeyChanged(int db, std::string_view key) override;

  // Gossip, migration steps and timeouts; called every ~10 ms.
  void Tick(int64_t now_ms);
  // Sends buffered migration ops (after a batch of commands, before the loop yields).
  void Flush();

 private:
  void Persist();
  Result<void> ReadMeets(const std::string& text, size_t* at);
  // Adds an address to gossip to until a node there is known. Returns whether it was new.
  bool AddMeet(const std::string& ip, int port);
  Result<std::optional<std::string>> ReadStored();
  // `was_mine`: the slots this shard owned before the change.
  void Changed(const SlotFlags& was_mine, int64_t now_ms);
  void Gossip(int64_t now_ms);
  void SendGossip(const std::string& ip, int port, const std::string& view,
                  const std::string& health, bool meet);
  int64_t NodeTimeoutMs() const;
  // The failure reports gossip (and its replies) carry: "from <id>", a "pfail <id>" or "fail <id>"
  // line per node this node considers so, and "syncing <id>" while this node catches up.
  std::string HealthText() const;
  Result<void> OnHealth(std::string_view text, int64_t now_ms);
  void Seen(std::string_view id, int64_t now_ms);
  // PFAIL and FAIL from silence and reports; called every tick.
  void DetectFailures(int64_t now_ms);
  bool IsVoter(std::string_view id, const std::set<std::string>& owning) const;
  void StartCatchUp(int64_t now_ms);
  void StepCatchUp(int64_t now_ms);
  bool CaughtUpWithPeers();
  void RefreshCatchingUp();  // catching_up_ from health_ and this node's own catch-up
  void Adopt(const ClusterTopology& other, int64_t now_ms);
  // Bumps this node's own record after a change of it (REPLICATE) and acts on it.
  void UpdateMyself(ClusterNode me);
  void CallShardPeersHook();
  void DropSlotKeys(uint16_t slot);
  // A peer region's op or snapshot key in a slot another shard owns (by this node's view) and
  // this node does not import: the engine counts it applied, the keyspace forgets it again (as
  // Load does on a restart), or the key would stay here only. Such keys come late: an op made
  // before the handoff pause (and streamed to the target) that reaches a region of the source
  // shard after it dropped the slot, or a key of another node's import (a peer's snapshot holds
  // its hidden slots) whose import here never started or failed. Unassigned slots are kept: a
  // node that has not heard of CLUSTER CREATE or ADDSLOTS yet must not drop its peers' writes.
  void DropIfForeign(int db, std::string_view key);
  SlotFlags OwnedBy(std::string_view shard) const;  // the slots `shard` owns
  // Every command to another node goes through here (it counts messages_sent).
  void Send(const std::string& ip, int port, std::string_view channel,
            std::vector<std::string> args, ClusterBus::ReplyHandler done);

  MigrationJob* FindJob(std::string_view name, bool export_side);
  void StepExport(MigrationJob& job, int64_t now_ms);
  void SendToTargets(MigrationJob& job, std::vector<std::string> args, bool count_wait);
  void SendSnapshotChunk(MigrationJob& job);
  void SendOps(MigrationJob& job);
  void SendChangedKeys(MigrationJob& job);
  void SendPending(MigrationJob& job);
  void StartPause(MigrationJob& job, int64_t now_ms);
  void Finish(MigrationJob& job, int64_t now_ms);
  void FailExport(MigrationJob& job, MigrationState state, const std::string& why, int64_t now_ms);
  void FailImport(MigrationJob& job, const std::string& why, int64_t now_ms);
  void DropImport(MigrationJob& job, int64_t now_ms);
  void KeepLeftovers(int64_t now_ms);  // Load: keys in slots not owned, kept undecided
  void StepUndecided(MigrationJob& job, const ClusterNode* answered, uint64_t round,
                     int64_t now_ms);
  void SetState(MigrationJob& job, MigrationState state, int64_t now_ms);
  void Pause(const std::vector<uint16_t>& slots, const std::string& target_shard, int64_t until_ms);
  void MarkUnconfirmed(const std::vector<uint16_t>& slots);
  void Confirm(const std::string& ip, int port, uint64_t round);
  void AskUnconfirmed();
  void Unpause(const std::vector<uint16_t>& slots);
  void RoutingChanged() {
    if (routing_hook_) routing_hook_();
  }
  void SetImporting(uint16_t slot, bool importing);
  void TrimJobs();
  std::string NewName();
  void SyncEstablish(ArgList args, ReplyBuilder& reply, int64_t now_ms);
  void SyncData(MigrationJob& job, std::string_view kind, ArgList blobs, ReplyBuilder& reply,
                int64_t now_ms);

  void StreamOp(const repl::OpRecord& op);

  Keyspace& keyspace_;
  const Clock& clock_;
  Rng& rng_;
  ClusterOptions options_;
  Replication* replication_ = nullptr;
  ClusterBus* bus_ = nullptr;
  repl::Storage* storage_ = nullptr;
  std::string file_name_;
  std::string myid_;
  ClusterTopology topology_;
  // Addresses to gossip to until known; in nodes.conf, so that a restart goes on meeting them.
  std::vector<std::pair<std::string, int>> meet_;
  bool dirty_ = false;  // gossip at the next tick
  int64_t last_gossip_ms_ = 0;
  std::map<std::string, bool> gossip_inflight_;  // by "ip:port"
  ClusterStats stats_;
  std::deque<MigrationJob> jobs_;
  size_t active_exports_ = 0;  // export jobs not terminal
  SlotFlags exporting_{};      // slots whose ops are streamed to a migration target
  // Slots being imported are the keyspace's hidden slots (Keyspace::slot_hidden).
  SlotFlags paused_{};
  std::array<int64_t, kSlotCount> paused_until_ms_{};
  bool any_paused_ = false;
  std::function<void()> routing_hook_;
  bool checkpoint_due_ = false;  // an import finished: snapshot the state at the next tick
  std::array<int64_t, kSlotCount> pause_start_us_{};  // monotonic, when this node paused it
  // Slots whose handoff pause ended without a known outcome: writes get TRYAGAIN until every
  // node of pause_target_ (the shard they were being handed to) has answered a gossip asked
  // once none of them can take FINISH any more (unconfirmed_round_: 0 until then). A target
  // that took the slots ends it sooner: its view moves the slot away (Adopt).
  SlotFlags unconfirmed_{};
  std::array<uint64_t, kSlotCount> unconfirmed_round_{};
  std::map<uint16_t, std::vector<std::string>> unconfirmed_heard_;  // node ids that answered
  std::vector<std::string> pause_target_ = std::vector<std::string>(kSlotCount);
  bool any_unconfirmed_ = false;
  uint64_t gossip_round_ = 0;  // gossip rounds sent
  std::function<void(const std::vector<std::string>&)> shard_peers_hook_;
  std::function<void(const std::string&, int64_t)> forget_hook_;
  bool shard_peers_due_ = false;
  std::map<std::string, int64_t, std::less<>> forgotten_;  // node id -> ignored until (ms)
  std::map<uint16_t, std::string> importing_from_;  // SETSLOT IMPORTING marks: source node id
  std::map<uint16_t, std::string> migrating_to_;    // SETSLOT MIGRATING marks: target node id
  std::map<std::string, NodeHealth, std::less<>> health_;  // every other known node, by id
  std::set<std::string, std::less<>> failed_;              // ids of the FAIL nodes
  std::set<std::string, std::less<>> catching_up_;  // ids of the nodes catching up (this one too)
  struct CatchUp {
    bool running = false;
    bool overdue = false;  // running for longer than its bound (logged once)
    int64_t start_ms = 0;
    int64_t took_ms = 0;  // the last one's length, once it ended
    // Per linked peer replica: what it had applied when this node first saw its link up.
    std::map<ReplicaId, crdt::VersionVector> targets;
  } catch_up_;
  int64_t now_ms_ = 0;
};

}  // namespace lattice::server
