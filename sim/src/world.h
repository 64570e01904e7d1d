#pragma once
// The simulated world of one run: regions (each the production Node -- Server + Replication --
// over a MemoryStorage, a skewed clock and a disk), the network between them, and the event queue
// that orders everything by simulated time. Internal to lattice_sim; see simulator.h for the
// contract.
//
// Ownership: World owns the regions and the queue. A region's Node is built on Start() and
// destroyed on a crash; its MemoryStorage lives for the whole run, which is what makes a restart
// recover what was durable. Single-threaded.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <tuple>
#include <vector>

#include "lattice/common/rng.h"
#include "lattice/repl/link_handshake.h"
#include "lattice/repl/memory_storage.h"
#include "lattice/repl/messages.h"
#include "lattice/repl/replicator.h"
#include "lattice/sim/simulator.h"
#include "node/node.h"
#include "server/server.h"
#include "store/replication.h"

namespace lattice::sim {

// A region's wall clock: simulated true time plus the region's skew (which jumps under faults).
class SimClock final : public server::Clock {
 public:
  explicit SimClock(const int64_t& true_ms) : true_ms_(true_ms) {}
  int64_t NowMs() const override { return true_ms_ + offset_ms; }
  int64_t NowUs() const override { return NowMs() * 1000; }
  int64_t MonotonicUs() const override { return true_ms_ * 1000; }
  int64_t offset_ms = 0;

 private:
  const int64_t& true_ms_;
};

class World;

// A node's cluster bus (sharded runs): each Send becomes an event of the world's queue, runs on
// the target node as a command of its bus client, and its reply comes back as another event.
class SimBus final : public server::ClusterBus {
 public:
  SimBus(World& world, int from) : world_(world), from_(from) {}
  void Send(const std::string& ip, int port, std::string_view channel,
            std::vector<std::string> args, ReplyHandler done) override;

 private:
  World& world_;
  const int from_;
};

// One region. It is the Transport of its Replication: Send only queues (as the production
// transport only queues bytes until the handler ends), and World releases the outbox after the
// batch is durable.
class Region final : public repl::Transport {
 public:
  Region(World& world, int index, ReplicaId id, repl::FsyncPolicy fsync);
  void Send(ReplicaId to, const repl::Message& message) override;
  void Close(ReplicaId to) override;

  bool up() const { return node != nullptr; }
  server::Server& server() { return node->server(); }
  server::Keyspace& keyspace() { return node->keyspace(); }
  server::Replication& replication() { return *node->replication(); }

  const int index;
  const ReplicaId id;
  const repl::FsyncPolicy fsync;
  SimClock clock;
  repl::MemoryStorage storage;
  std::unique_ptr<server::Node> node;
  std::unique_ptr<server::ClientState> client;
  std::unique_ptr<server::ClientState> bus_client;  // runs what other nodes send over the bus
  std::unique_ptr<SimBus> bus;                      // sharded runs only
  std::vector<std::pair<ReplicaId, repl::Message>> outbox;
  std::vector<ReplicaId> closes;  // links the engine asked to close in this batch
  int64_t busy_until_ms = 0;      // a slow fsync in progress: events wait until then
  int64_t disk_latency_ms = 0;    // per fsync, under the disk fault
  int64_t disk_full_until_ms = 0;
  uint64_t syncs_seen = 0;
  std::string last_event;   // Replication's last engine event, polled after each batch
  std::string log_failure;  // why the op log failed in this batch (the node's on_log_failure)
  uint64_t starts = 0;
};

enum class EventKind { kDeliver, kTick, kClient, kConnect, kRestart, kFault };

struct Event {
  int64_t at_ms = 0;
  uint64_t seq = 0;  // FIFO among events at the same time: the queue is a total order
  EventKind kind = EventKind::kTick;
  int region = 0;  // target (kDeliver: receiver)
  int peer = -1;   // kDeliver: sender; kConnect: the other end
  uint64_t epoch = 0;
  std::string bytes;             // kDeliver: frames
  std::function<void()> action;  // kFault and kClient
};

struct EventAfter {
  bool operator()(const Event& a, const Event& b) const {
    return a.at_ms != b.at_ms ? a.at_ms > b.at_ms : a.seq > b.seq;
  }
};

// A link between two regions. Direction 0 carries a -> b (a < b), direction 1 b -> a.
struct Link {
  bool partitioned = false;
  bool up = false;
  uint64_t epoch = 0;  // bumped when the link goes down: what was in flight is lost
  int64_t latency_ms = 1;
  int64_t jitter_ms = 0;
  bool hello_seen[2] = {false, false};  // the receiver of this direction admitted the sender
  // Per direction, its receiver's end of the production handshake (made by Connect).
  std::unique_ptr<repl::LinkHandshake> handshake[2];
  int64_t hello_arrival_ms[2] = {0, 0};
  int64_t last_arrival_ms[2] = {0, 0};
  bool connect_pending = false;
};

struct NetworkFaults {
  uint64_t loss_per_mille = 0;
  uint64_t duplicate_per_mille = 0;
  bool reorder = false;
};

// A failure found by a check, with the seed's trace printed by the caller.
struct Failure {
  std::string check;
  std::string details;
};

class World {
 public:
  World(const SimOptions& options, Rng& rng);
  ~World();

  // ---- regions --------------------------------------------------------------------------
  // Regions are nodes: node i is region i % R of shard i / R (one shard: as before).
  Region& region(int i) { return *regions_[static_cast<size_t>(i)]; }
  int size() const { return static_cast<int>(regions_.size()); }
  int regions_per_shard() const { return options_.regions; }
  int shards() const { return options_.shards; }
  bool sharded() const { return options_.shards > 1; }
  int ShardOf(int node) const { return node / options_.regions; }
  bool SameShard(int a, int b) const { return ShardOf(a) == ShardOf(b); }
  static std::string ShardName(int shard) { return "s" + std::to_string(shard); }
  static int PortOf(int node) { return 7000 + node; }
  static std::string NodeIdOf(int node);
  // The node of `shard` in the same region as `node`.
  int Peer(int node, int shard) const { return shard * options_.regions + node % options_.regions; }
  void Start(Region& region);                  // builds the Node from storage
  void Crash(Region& region, bool power_cut);  // power cut: unsynced bytes are lost
  // Runs one command on the region as its client; returns the raw RESP reply and whether the
  // batch became durable (acknowledged).
  std::pair<std::string, bool> Execute(Region& region, const std::vector<std::string>& args);
  // Ends a batch: the op log per appendfsync, then the outbox leaves. False if the log failed
  // (the region exits, as production does).
  bool EndOfBatch(Region& region);

  // ---- network --------------------------------------------------------------------------
  Link& link(int a, int b);
  // The index of the region whose replica id is `id`, or -1.
  int RegionIndexOf(ReplicaId id) const;
  void SetPartitioned(int a, int b, bool partitioned);
  // Cuts (or heals) regions a and b (indices within a shard) in every shard, and the cluster bus
  // between nodes of those regions. One shard: SetPartitioned.
  void SetRegionsPartitioned(int a, int b, bool partitioned);
  // Sharded runs: carries a bus command from node `from` to the node on `port`.
  void BusSend(int from, int port, std::string_view channel, std::vector<std::string> args,
               server::ClusterBus::ReplyHandler done);
  void LinkDown(int a, int b);
  void ScheduleConnect(int a, int b, int64_t delay_ms);
  NetworkFaults net;

  // ---- events ---------------------------------------------------------------------------
  // A reference: region clocks read simulated time through it.
  const int64_t& now_ms() const { return now_ms_; }
  void Schedule(Event event);
  void At(int64_t at_ms, EventKind kind, int region, std::function<void()> action);
  // Runs events until `until_ms` (or a failure). Returns false on a failure.
  bool RunUntil(int64_t until_ms);

  // ---- failures and trace ---------------------------------------------------------------
  void Fail(std::string check, std::string details);
  const std::optional<Failure>& failure() const { return failure_; }
  void Trace(std::string line);
  std::string TraceText(size_t lines) const;

  Rng& rng() { return rng_; }
  const SimOptions& options() const { return options_; }
  // Run after every batch of a region (with CheckRegion's invariants): the workload's checks of
  // what a region may show at any time (op groups: all of a group or none of it).
  std::function<void(Region&)> batch_check;
  uint64_t messages = 0;
  uint64_t crashes = 0;
  uint64_t snapshots = 0;
  int64_t max_retained_ops = 1'000'000;
  uint64_t rewrite_min_bytes = 64 << 20;

 private:
  // A bus connection: (from, to, channel). A failure breaks it, and what was sent on it before
  // fails too, in order, as on the production bus.
  using BusConnection = std::tuple<int, int, std::string>;
  void BusDeliver(int from, uint64_t start, const BusConnection& connection, uint64_t epoch,
                  const std::vector<std::string>& args, server::ClusterBus::ReplyHandler done);
  void BusReply(int from, uint64_t start, int64_t latency_ms, Result<server::RespValue> reply,
                server::ClusterBus::ReplyHandler done);
  int64_t BusLatency(int from, int to);
  void Dispatch(Event& event);
  void Deliver(Region& to, int from, uint64_t epoch, const std::string& bytes);
  void OnTick(Region& region);
  void Connect(int a, int b);
  void SendChunk(int from, int to, std::string bytes, bool hello, int64_t leave_ms);
  repl::LinkOptions HandshakeOptions(Region& region, bool dialed, const std::string& binding);
  void Release(Region& region);
  void CheckRegion(Region& region);
  bool ShardCausal(Region& region);
  void WatchKey(Region& region);
  void WatchOps(Region& to, int from, const repl::Message& message);

  const SimOptions& options_;
  Rng& rng_;
  int64_t now_ms_ = 0;
  uint64_t next_seq_ = 0;
  std::vector<std::unique_ptr<Region>> regions_;
  std::map<std::pair<int, int>, Link> links_;
  std::priority_queue<Event, std::vector<Event>, EventAfter> queue_;
  std::deque<std::string> trace_;
  std::optional<Failure> failure_;
  std::map<int, std::string> watched_;
  std::map<std::pair<int, int>, bool> region_cut_;  // by region indices (a < b)
  std::map<BusConnection, uint64_t> bus_epoch_;
  std::map<std::pair<int, int>, int64_t> bus_latency_;  // --watch: last state shown per region
  // Odd seeds run with a shard secret, so links prove it as production does. Nonces and the
  // stand-in TLS channel binding come from their own stream: runs without a secret draw
  // exactly what they drew before the handshake was simulated.
  std::string shard_secret_;
  Rng handshake_rng_;
};

// The one world being run, for the abort handler's trace (nullptr between runs).
extern World* g_current_world;

}  // namespace lattice::sim
