#pragma once
// Node is one Lattice replica assembled from its configuration and the seams to the world
// outside: the Server (keyspace, commands), its Replication (engine + op log) when it has a
// Storage, and its Cluster when cluster-enabled is yes. It is the one place that wires them
// together; lattice-server (src/main.cc), the simulator, the fuzz targets and the tests all
// build a Node, and differ only in the seams they hand in:
// - a Clock, a repl::Storage (FileStorage in production, MemoryStorage elsewhere; none: no
//   replication, as unit tests of commands run) and a repl::Transport (the peer links);
// - optionally a ClusterBus (cluster gossip and migration) and a PeerDirectory (CRDT.PEER);
// - the randomness a Node would otherwise draw: a fresh replica id for a data dir's first start,
//   a fresh cluster node id, and an rng seed.
//
// Periodic work and batches: Tick() runs whatever is due (Server::Cron at hz, Replication::Tick
// every 50 ms, Cluster::Tick every 10 ms) and says when to call it next; EndOfBatch() is called
// by whoever ran commands or handled input, before it yields. Neither does I/O of its own.
//
// Turns: production's event loop (net/loop_turn.h) installs an end-of-turn hook. Then
// EndOfBatch() only asks for the end of the turn (the hook posts one handler per turn, which
// calls EndOfTurn() once for every batch of the turn), and the wall clock the Server and Cluster
// read is cached for the turn (node/turn_clock.h). Without a hook (the simulator, fuzz targets,
// tests) EndOfBatch() ends the turn at once and every clock read reads the seam's clock.
//
// Ownership: the Node owns the Server, Replication and Cluster; the seams must outlive it.
// Not thread-safe: the event-loop thread (or the simulator) owns the Node.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/cluster.h"
#include "lattice/common/result.h"
#include "lattice/repl/replicator.h"
#include "lattice/repl/storage.h"
#include "node/turn_clock.h"
#include "server/config.h"
#include "server/scripting/script_engine.h"
#include "server/server.h"
#include "store/clock.h"
#include "store/replication.h"

namespace lattice::server {

// The outside world a Node reaches through; each must outlive the Node.
struct NodeSeams {
  const Clock& clock;
  // The data dir. Null: the node has no Replication (a keyspace without log or peers).
  repl::Storage* storage = nullptr;
  repl::Transport* transport = nullptr;  // the peer links; required with `storage`
  PeerDirectory* peers = nullptr;        // how CRDT.PEER dials; null: not supported
  ClusterBus* bus = nullptr;             // cluster mode's messages; null: none sent
  ChildProcesses* children = nullptr;    // background checkpoints; null: on the event loop
};

// The production policy for a failed op log write (as Valkey under appendfsync always): logged,
// then the process exits at once.
void ExitOnLogFailure(const Error& error, const Config& config);

struct NodeOptions {
  Config config;
  // The replica id. Unset: the one kept in the storage, which a first start creates with
  // `fresh_replica_id` (without storage: 1).
  std::optional<ReplicaId> replica;
  ReplicaId fresh_replica_id = kNoReplica;
  // Seeds the server's rng() and run id; unset: std::random_device.
  std::optional<uint64_t> rng_seed;
  // Cluster mode: this node's id unless nodes.conf names one.
  std::string fresh_node_id;
  // Cluster mode: keep the topology in <dir>/<cluster-config-file>; false: in memory only.
  bool persist_cluster_config = true;
  // Called when EndOfBatch finds the op log failed. The default exits the process; the
  // simulator records the failure and treats the false EndOfBatch returns as a crash.
  std::function<void(const Error& error, const Config& config)> on_log_failure = ExitOnLogFailure;
};

class Node {
 public:
  // Builds the replica: the replica id, the Server, its ACLs (aclfile or config users), the
  // Replication recovered from storage, the crdt-policy entries of the config, the Cluster
  // loaded from nodes.conf. An error says what failed, ready for the operator.
  static Result<std::unique_ptr<Node>> Open(NodeOptions options, NodeSeams seams);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  Server& server() { return *server_; }
  const Server& server() const { return *server_; }
  Keyspace& keyspace() { return server_->keyspace(); }
  const Clock& clock() const { return clock_; }
  ReplicaId replica() const { return server_->keyspace().replica(); }
  // Null when the node has no storage.
  Replication* replication() { return replication_.get(); }
  const Replication* replication() const { return replication_.get(); }
  // Null unless cluster-enabled.
  Cluster* cluster() { return cluster_.get(); }
  const Cluster* cluster() const { return cluster_.get(); }

  // Runs the periodic work that is due by the clock's monotonic time; returns how many ms until
  // the next is due. The caller ends the batch afterwards (as after any other input).
  int64_t Tick();
  // After a batch of commands or peer input, before yielding. Without an end-of-turn hook, the
  // same as EndOfTurn(); with one, asks for the end of the turn and returns true.
  bool EndOfBatch();
  // Makes every batch since the last call durable per appendfsync (the op log written and
  // synced), then sends the buffered migration ops and lets replication send. False if the op
  // log failed: on_log_failure ran, and nothing of the batch may be acknowledged.
  bool EndOfTurn();
  // Starts a step of replication work: the engine holds what is left of its received ops and
  // of its buffered ones for the next turns once kStepBudgetUs of the clock's monotonic time has
  // passed since (Replicator::set_step_spent), and a peer link ends its step of frames. The peer
  // links call it for each step of frames; Tick and EndOfTurn for theirs.
  void BeginStep() { step_start_us_ = clock_.MonotonicUs(); }
  // Whether the step BeginStep started has used its budget: the engine's word, and the end of
  // a peer link's step of frames.
  bool StepSpent() const;
  // The event loop's end-of-turn request (see Turns above); null: none (EndOfBatch ends the
  // turn itself). The hook must post the end of the turn, never call EndOfTurn() inline.
  void set_end_of_turn_hook(std::function<void()> hook);
  // Clean shutdown: flushes and syncs the op log.
  Result<void> Close();

  // The busy period: a Lua script has run past busy-reply-threshold, and the event loop serves
  // clients from the script's hook (net/busy_period.h) until the script ends. Meanwhile nothing
  // that runs commands or applies ops may run (the script holds the command path): the end of
  // the turn, Tick, peer and cluster bus input wait for it to end (AfterBusy).
  bool busy() const { return server_->scripting().timed_out(); }
  // Whether replies may leave before the end of the turn: every op so far is logged as
  // appendfsync asks (Replication::AllLogged; always, without replication).
  bool AllLogged() const { return replication_ == nullptr || replication_->AllLogged(); }
  // Calls `callback` when the busy period ends (from inside the command that ran the script, so
  // the callback must only post work). Only while busy().
  void AfterBusy(std::function<void()> callback);

 private:
  struct Timer {
    int64_t due_ms = 0;  // monotonic
  };

  Node(NodeOptions& options, const NodeSeams& seams);
  Result<void> OpenReplication(const NodeSeams& seams);
  Result<void> ApplyConfigPolicies();
  Result<void> OpenCluster(const NodeOptions& options, const NodeSeams& seams);
  void LinkShardPeers(PeerDirectory& peers);
  int64_t MonotonicMs() const { return clock_.MonotonicUs() / 1000; }
  int64_t CronPeriodMs() const;
  // Whether `timer` is due at `now`; if so it is rearmed `period_ms` later.
  static bool Due(Timer& timer, int64_t now, int64_t period_ms);

  TurnClock clock_;            // over the seam's clock; what the Server and Cluster read
  int64_t step_start_us_ = 0;  // BeginStep
  std::function<void(const Error&, const Config&)> on_log_failure_;
  std::function<void()> end_of_turn_hook_;
  std::vector<std::function<void()>> after_busy_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Replication> replication_;  // after server_: it observes the keyspace
  std::unique_ptr<Cluster> cluster_;          // likewise
  Timer cron_;
  Timer replication_tick_;
  Timer cluster_tick_;
};

}  // namespace lattice::server
