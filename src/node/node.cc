#include "node/node.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lattice/common/assert.h"
#include "lattice/repl/op_log.h"
#include "server/acl.h"
#include "spdlog/spdlog.h"
#include "store/child_process.h"
#include "store/clock.h"

namespace lattice::server {
namespace {

// The cadences of the periodic work, as the event-loop timers ran it before the Node did.
constexpr int64_t kReplicationTickMs = 50;  // Replication::Tick: "every ~50 ms"
constexpr int64_t kClusterTickMs = 10;      // Cluster::Tick: "every ~10 ms"
// A step's replication work (BeginStep) after which received and buffered ops wait for the next
// turns and a peer link's step of frames ends, in monotonic time, which a loaded machine only
// makes end sooner (the thread's CPU clock costs a 1.7 us syscall a read here).
constexpr int64_t kStepBudgetUs = 2000;

Result<ReplicaId> ResolveReplica(const NodeOptions& options, repl::Storage* storage) {
  if (options.replica.has_value()) return *options.replica;
  if (storage == nullptr) return ReplicaId{1};
  Result<ReplicaId> loaded =
      repl::ReplicaIdentity::LoadOrCreate(*storage, options.fresh_replica_id);
  if (!loaded.ok()) {
    return Unexpected("Can't load the replica id in '" + options.config.dir() +
                      "': " + loaded.error().message);
  }
  return loaded;
}

}  // namespace

void ExitOnLogFailure(const Error& error, const Config& config) {
  spdlog::critical("Can't write to the op log in '{}': {}. Exiting...", config.dir(),
                   error.message);
  spdlog::default_logger()->flush();
  std::_Exit(1);
}

Result<std::unique_ptr<Node>> Node::Open(NodeOptions options, NodeSeams seams) {
  LATTICE_ASSERT((seams.storage == nullptr) == (seams.transport == nullptr));
  Result<ReplicaId> replica = ResolveReplica(options, seams.storage);
  if (!replica.ok()) return Unexpected(replica.error());
  options.replica = *replica;
  std::unique_ptr<Node> node(new Node(options, seams));
  if (Result<void> acls = LoadAclsAtStartup(*node->server_); !acls.ok()) {
    return Unexpected(acls.error());
  }
  if (seams.storage != nullptr) {
    if (Result<void> opened = node->OpenReplication(seams); !opened.ok()) {
      return Unexpected(opened.error());
    }
  }
  if (Result<void> policies = node->ApplyConfigPolicies(); !policies.ok()) {
    return Unexpected(policies.error());
  }
  if (node->server_->config().cluster_enabled()) {
    if (Result<void> loaded = node->OpenCluster(options, seams); !loaded.ok()) {
      return Unexpected(loaded.error());
    }
  }
  return node;
}

Node::Node(NodeOptions& options, const NodeSeams& seams)
    : clock_(seams.clock),
      on_log_failure_(std::move(options.on_log_failure)),
      server_(std::make_unique<Server>(std::move(options.config), clock_, *options.replica,
                                       options.rng_seed)) {
  // Each timer's first run is one period after the start, as the event-loop timers' were; the
  // replication tick runs at once (the peer links started it with the links).
  const int64_t now = MonotonicMs();
  replication_tick_.due_ms = now;
  cluster_tick_.due_ms = now + kClusterTickMs;
  cron_.due_ms = now + CronPeriodMs();
  server_->scripting().set_busy_end_hook([this] {
    std::vector<std::function<void()>> callbacks;
    callbacks.swap(after_busy_);
    for (std::function<void()>& callback : callbacks) callback();
  });
}

void Node::AfterBusy(std::function<void()> callback) {
  LATTICE_ASSERT(busy());
  after_busy_.push_back(std::move(callback));
}

Node::~Node() {
  server_->scripting().set_busy_end_hook(nullptr);
  // The observers of the keyspace go before the server that owns it.
  cluster_.reset();
  replication_.reset();
}

Result<void> Node::OpenReplication(const NodeSeams& seams) {
  auto opened = Replication::Open(server_->keyspace(), *seams.storage, *seams.transport,
                                  ReplicationOptionsOf(server_->config()), clock_.NowMs());
  if (!opened.ok()) return Unexpected(opened.error());
  replication_ = std::move(*opened);
  replication_->set_peer_directory(seams.peers);
  replication_->set_child_processes(seams.children);
  replication_->set_step_spent([this] { return StepSpent(); });
  server_->set_replication(replication_.get());
  return {};
}

// The crdt-policy lines of the config: (pattern, type, rule) triples, below the runtime entries.
Result<void> Node::ApplyConfigPolicies() {
  const std::vector<std::string> policies = server_->config().crdt_policies();
  for (size_t i = 0; i + 2 < policies.size(); i += 3) {
    PolicyEntry entry{policies[i], policies[i + 1], policies[i + 2], /*from_config=*/true};
    if (Result<void> set = server_->keyspace().policy_table().Set(entry); !set.ok()) {
      return Unexpected("crdt-policy " + policies[i] + " " + policies[i + 1] + " " +
                        policies[i + 2] + ": " + set.error().message);
    }
  }
  return {};
}

Result<void> Node::OpenCluster(const NodeOptions& options, const NodeSeams& seams) {
  const Config& config = server_->config();
  cluster_ = std::make_unique<Cluster>(server_->keyspace(), clock_, server_->rng(),
                                       ClusterOptionsOf(config));
  // nodes.conf lives in the data dir, written through the storage seam.
  repl::Storage* storage = options.persist_cluster_config ? seams.storage : nullptr;
  if (Result<void> loaded = cluster_->Load(storage, config.cluster_config_file(),
                                           options.fresh_node_id, clock_.NowMs());
      !loaded.ok()) {
    return Unexpected(loaded.error());
  }
  cluster_->set_replication(replication_.get());
  cluster_->set_bus(seams.bus);
  if (PeerDirectory* peers = replication_ != nullptr ? seams.peers : nullptr) {
    LinkShardPeers(*peers);
  }
  server_->set_cluster(cluster_.get());
  return {};
}

// The other regions of this node's shard, from the topology: linked without a --peer list.
// Addresses also given as --peer (AddAddress refuses them) are left to the configuration. A node
// that leaves the shard is unlinked and its replica removed from the engine, so it no longer
// holds back compaction; one that was FORGOTTEN is also refused while its node is banned.
void Node::LinkShardPeers(PeerDirectory& peers) {
  auto linked = std::make_shared<std::set<std::string>>();
  PeerDirectory* directory = &peers;
  Replication* replication = replication_.get();
  auto unlink = [directory, linked, replication](const std::string& address) -> ReplicaId {
    if (linked->erase(address) == 0) return kNoReplica;
    Result<ReplicaId> replica = directory->RemoveAddress(address);
    if (!replica.ok() || *replica == kNoReplica) return kNoReplica;
    spdlog::info("Unlinking {} (replica {}): no longer a region of this node's cluster shard",
                 address, ReplicaIdText(*replica));
    replication->RemovePeer(*replica);
    return *replica;
  };
  cluster_->set_shard_peers_hook(
      [directory, linked, unlink](const std::vector<std::string>& addresses) {
        for (const std::string& address : addresses) {
          if (!linked->contains(address) && directory->AddAddress(address).ok()) {
            spdlog::info("Linking to {}, a region of this node's cluster shard", address);
            linked->insert(address);
          }
        }
        for (const std::string& address : std::set<std::string>(*linked)) {
          if (std::find(addresses.begin(), addresses.end(), address) == addresses.end()) {
            (void)unlink(address);
          }
        }
      });
  cluster_->set_forget_hook([unlink, replication](const std::string& address, int64_t until_ms) {
    if (const ReplicaId replica = unlink(address); replica != kNoReplica) {
      replication->Retire(replica, until_ms);
    }
  });
}

int64_t Node::CronPeriodMs() const { return 1000 / std::max(1, server_->config().hz()); }

bool Node::StepSpent() const { return clock_.MonotonicUs() - step_start_us_ >= kStepBudgetUs; }

bool Node::Due(Timer& timer, int64_t now, int64_t period_ms) {
  if (now < timer.due_ms) return false;
  timer.due_ms = now + period_ms;
  return true;
}

int64_t Node::Tick() {
  const int64_t now = MonotonicMs();
  if (cluster_ != nullptr && Due(cluster_tick_, now, kClusterTickMs)) {
    cluster_->Tick(clock_.NowMs());
  }
  if (replication_ != nullptr && Due(replication_tick_, now, kReplicationTickMs)) {
    // Compaction, timers and snapshot slices: the latency monitor's "crdt-tick" event.
    const int64_t start_us = clock_.MonotonicUs();
    const int64_t start_cpu_us = ThreadCpuUs();
    const ChildProcesses* children = replication_->child_processes();
    const uint64_t forks = children != nullptr ? children->forks() : 0;
    BeginStep();
    replication_->Tick(clock_.NowMs());
    // A tick that started the automatic op log rewrite paid for its fork (page tables: 20-40 ms
    // of CPU for a process holding 1M elements here): Valkey's "fork" latency event, and
    // INFO's latest_fork_usec. Its own event, so "crdt-tick" is the replication work alone.
    const bool forked = children != nullptr && children->forks() != forks;
    server_->AddLatencySample(forked ? "fork" : "crdt-tick", clock_.MonotonicUs() - start_us);
    server_->AddStepCpu(forked ? "fork" : "crdt-tick", ThreadCpuUs() - start_cpu_us);
  }
  if (Due(cron_, now, CronPeriodMs())) server_->Cron();
  int64_t next = cron_.due_ms;
  if (replication_ != nullptr) next = std::min(next, replication_tick_.due_ms);
  if (cluster_ != nullptr) next = std::min(next, cluster_tick_.due_ms);
  return std::max<int64_t>(1, next - now);
}

void Node::set_end_of_turn_hook(std::function<void()> hook) {
  end_of_turn_hook_ = std::move(hook);
  clock_.set_caching(end_of_turn_hook_);
}

bool Node::EndOfBatch() {
  if (end_of_turn_hook_) {
    end_of_turn_hook_();
    return true;
  }
  return EndOfTurn();
}

// Log before send, for the migration stream as for the peer links: the turn's ops are written
// to the op log (synced per appendfsync) before any of them leaves for a migration target, so a
// crash can never leave a target shard holding an op its source lost and never acknowledged.
// The turn's cached wall-clock time is forgotten last, so nothing here reads a fresh one (which
// would ask for another end of turn).
bool Node::EndOfTurn() {
  // Blocked clients the turn's peer ops, acknowledgements or cluster changes woke are served
  // first: their pops are ops, logged below before their replies leave.
  // A WAITAOF asked for the log's sync: done first, so it is served in this turn.
  if (replication_ != nullptr) replication_->SyncIfRequested();
  server_->ServeBlocked();
  bool durable = true;
  if (replication_ != nullptr) {
    const int64_t start_us = clock_.MonotonicUs();
    const bool slicing = replication_->snapshot_work_pending();
    const int64_t start_cpu_us = slicing ? ThreadCpuUs() : 0;  // a syscall: only while slicing
    BeginStep();
    if (Result<void> done = replication_->EndOfBatch(); !done.ok()) {
      if (on_log_failure_) on_log_failure_(done.error(), server_->config());
      durable = false;
    }
    // The op log's write (synced too under appendfsync always): Valkey's AOF latency events; a
    // turn that also took or installed a slice of a snapshot is "crdt-snapshot-slice".
    const bool always = replication_->options().fsync == repl::FsyncPolicy::kAlways;
    server_->AddLatencySample(slicing  ? "crdt-snapshot-slice"
                              : always ? "aof-fsync-always"
                                       : "aof-write",
                              clock_.MonotonicUs() - start_us);
    if (slicing) server_->AddStepCpu("crdt-snapshot-slice", ThreadCpuUs() - start_cpu_us);
  }
  if (durable && cluster_ != nullptr) cluster_->Flush();
  server_->keyspace().ReleaseIterations();
  clock_.Forget();
  // A snapshot being taken or installed does one slice per turn: ask for the next turn now, so
  // it goes on at once, behind the sockets that are ready (served in between), not only at the
  // next timer tick.
  if (replication_ != nullptr && end_of_turn_hook_ && replication_->snapshot_work_pending()) {
    end_of_turn_hook_();
  }
  return durable;
}

Result<void> Node::Close() {
  if (replication_ == nullptr) return {};
  return replication_->Close();
}

}  // namespace lattice::server
