#pragma once
// Server is the pure core of a Lattice node: configuration, the command table, the index of
// connected clients, statistics, and command execution (lookup, arity, authentication,
// subcommands, statistics, then the family handler). It does no I/O: the network layer (src/net/)
// feeds it parsed commands and flushes the replies it writes into a ReplyBuilder; tests and the
// simulator call Execute() directly. Time comes from the injected Clock.
//
// Threading: one event-loop thread owns the Server and everything reachable from it; command
// execution takes no locks.

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "lattice/common/rng.h"
#include "resp/errors.h"
#include "resp/reply_builder.h"
#include "resp/request_parser.h"
#include "server/acl.h"
#include "server/blocking.h"
#include "server/client_pause.h"
#include "server/client_state.h"
#include "server/command.h"
#include "server/config.h"
#include "server/eviction.h"
#include "server/info_metrics.h"
#include "server/latency.h"
#include "server/monitor.h"
#include "server/notify.h"
#include "server/outbound.h"
#include "server/persistence.h"
#include "server/pubsub.h"
#include "server/slowlog.h"
#include "server/tracking.h"
#include "store/clock.h"
#include "store/keyspace.h"
#include "util/ascii.h"

namespace lattice::server {

struct ServerStats {
  uint64_t total_connections_received = 0;
  uint64_t rejected_connections = 0;
  uint64_t total_commands_processed = 0;
  uint64_t total_net_input_bytes = 0;
  uint64_t total_net_output_bytes = 0;
  uint64_t total_error_replies = 0;
  uint64_t client_query_buffer_limit_disconnections = 0;
  uint64_t client_output_buffer_limit_disconnections = 0;  // Pub/Sub subscribers cut off
  uint64_t protocol_error_disconnections = 0;
  uint64_t expired_keys = 0;
  uint64_t expired_fields = 0;
  uint64_t keyspace_hits = 0;
  uint64_t keyspace_misses = 0;
  std::map<std::string, uint64_t, std::less<>> errors;  // by error prefix ("ERR")
};

class Server;
class ScriptEngine;
class ReplicaOf;
class SyncReplicas;
class DatasetLoading;
class Replication;
class Cluster;
struct ReplicationOptions;
struct ClusterOptions;

// What a handler sees: the server, the calling client, where to write the reply, and the
// command being run. Handlers parse arguments, call logic that returns a result, and reply.
class CommandContext {
 public:
  CommandContext(Server& server, ClientState& client, ReplyBuilder& reply, const Command& command,
                 int64_t now_ms)
      : server(server), client(client), reply(reply), command(command), now_ms(now_ms) {}

  Keyspace& keyspace();
  int db() const { return client.db; }

  // The typed read lookup of every family (Keyspace::FindTyped: nullptr when missing, kWrongType
  // when `key` holds another type; kNone accepts any type), counting a keyspace hit or miss as
  // Valkey's lookupKeyRead does (a key of another type counts as a hit). Lookups made to write
  // the key (Valkey's lookupKeyWrite) use Peek, which counts nothing.
  Result<KeyRef> Read(std::string_view key, crdt::ObjectType type = crdt::ObjectType::kNone);
  // Read without touching the key's LRU/LFU word, as Valkey's LOOKUP_NOTOUCH lookups (EXISTS,
  // TYPE, TTL and the other expiry reads).
  Result<KeyRef> ReadNoTouch(std::string_view key);
  Result<KeyRef> Peek(std::string_view key, crdt::ObjectType type = crdt::ObjectType::kNone);
  // The write entry point (Keyspace::Write) on the client's db at this command's time.
  template <typename Mutate>
  Result<void> Write(std::string_view key, Mutate&& mutate) {
    return keyspace().Write(db(), key, now_ms, std::forward<Mutate>(mutate));
  }

  Server& server;
  ClientState& client;
  ReplyBuilder& reply;
  const Command& command;
  // The time of this command, read once: every key it touches is judged at the same instant.
  const int64_t now_ms;
};

class Server final : public KeyspaceObserver {
 public:
  // `replica` is this node's stable replica id (kept in its data dir by main). `rng_seed` seeds
  // rng() and the run id; without one they come from std::random_device. The simulator passes
  // one, so a Server draws no randomness of its own there.
  Server(Config config, const Clock& clock, ReplicaId replica = 1,
         std::optional<uint64_t> rng_seed = std::nullopt);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server() override;

  Config& config() { return config_; }
  const Config& config() const { return config_; }
  const Clock& clock() const { return clock_; }
  Keyspace& keyspace() { return keyspace_; }
  const Keyspace& keyspace() const { return keyspace_; }
  // Randomness for commands that pick (RANDOMKEY, SPOP, SRANDMEMBER, HRANDFIELD...).
  Rng& rng() { return rng_; }
  const CommandRegistry& registry() const { return registry_; }
  // Lua scripting (server/scripting/script_engine.h): EVAL, SCRIPT, the script cache.
  ScriptEngine& scripting() { return *scripting_; }
  const ScriptEngine& scripting() const { return *scripting_; }
  ServerStats& stats() { return stats_; }
  InfoMetrics& metrics() { return metrics_; }
  // SLOWLOG and LATENCY (server/slowlog.h, server/latency.h), fed by ObserveCommand.
  SlowLog& slowlog() { return slowlog_; }
  LatencyMonitor& latency() { return latency_; }
  // SAVE, BGSAVE, BGREWRITEAOF, save points and INFO persistence (server/persistence.h).
  Persistence& persistence() { return persistence_; }
  // MONITOR (server/monitor.h): fed every command run and every op applied from a peer.
  Monitors& monitors() { return monitors_; }
  // Records a latency event sample (LATENCY) when `latency_us` reaches
  // latency-monitor-threshold; other layers' events (the op log's writes) come through here.
  void AddLatencySample(std::string_view event, int64_t latency_us);
  // The most CPU time (µs, the event-loop thread's CPU clock) one step of a replication event
  // took (the latency monitor's "crdt-tick", "crdt-snapshot-slice", "crdt-peer-batch"): INFO
  // crdt_step_cpu_max_us, kept since start. Wall time on a loaded machine is several times it.
  void AddStepCpu(std::string_view event, int64_t cpu_us);
  const std::map<std::string, int64_t, std::less<>>& step_cpu_max_us() const {
    return step_cpu_max_us_;
  }
  // Keys some client WATCHes (INFO total_watched_keys).
  size_t watched_keys() const { return watchers_.size(); }
  void ResetStats();  // CONFIG RESETSTAT
  // maxmemory and eviction (server/eviction.h); OutOfMemory: the last check found memory over
  // the limit with nothing to evict (denyoom commands get -OOM).
  Evictor& evictor() { return *evictor_; }
  // REPLICAOF: following a Valkey/Redis primary (server/replica_of.h).
  ReplicaOf& replica_of() { return *replica_of_; }
  const ReplicaOf& replica_of() const { return *replica_of_; }
  // The dataset load in progress (--import-rdb, a replica's full resync: server/rdb_import.h).
  // While it is active, commands without the loading flag are refused with -LOADING.
  DatasetLoading& loading() { return *loading_; }
  const DatasetLoading& loading() const { return *loading_; }
  // SYNC/PSYNC served: Valkey replicas of this region, redis-cli --rdb (server/sync_replicas.h).
  SyncReplicas& sync_replicas() { return *sync_replicas_; }
  const SyncReplicas& sync_replicas() const { return *sync_replicas_; }
  bool OutOfMemory() const { return evictor_->out_of_memory(); }
  // The `evicted` keyspace event of one evicted key (a hook for keyspace notifications).
  void NotifyEvicted(int db, std::string_view key);
  // Applies a configuration value that takes effect at once (the network layer calls it after
  // CONFIG SET changes `name`; the constructor applies them all).
  void ApplyConfig(std::string_view name);
  const std::string& run_id() const { return run_id_; }
  int64_t start_ms() const { return start_ms_; }

  // Runs one command for `client`, writing exactly one reply into `reply` (none when the
  // client blocked: blocking().IsBlocked(), or a write was held: client.paused_command). After a
  // top-level command, serves the blocked clients its writes woke (Valkey's order).
  void Execute(ClientState& client, ArgList args, ReplyBuilder& reply);

  // Blocking commands (server/blocking.h). MayBlock: false inside EXEC and scripts, where a
  // blocking command behaves as its non-blocking form (Valkey's CLIENT_DENY_BLOCKING).
  BlockedClients& blocking() { return blocking_; }
  const BlockedClients& blocking() const { return blocking_; }
  bool MayBlock() const;
  // Serves blocked clients whose keys or channels are ready (no-op inside a command or script):
  // after each top-level command, and at the end of each event-loop turn (Node::EndOfTurn) for
  // what peers, the cluster and the timer woke.
  void ServeBlocked();
  // A write held for a migration handoff pause (client.paused_command set): the client waits in
  // the registry until the slot is served again (the command then runs, here or to -MOVED) or
  // 30 s pass (-TRYAGAIN). The network layer calls it; the simulator holds writes itself.
  void HoldPaused(ClientState& client, ReplyBuilder& reply);
  // CLIENT PAUSE (server/client_pause.h). UnpauseClients ends it (CLIENT UNPAUSE, or the cron
  // once it ran out) and wakes the held clients.
  ClientPause& client_pause() { return client_pause_; }
  const ClientPause& client_pause() const { return client_pause_; }
  void UnpauseClients();
  // How commands reach other servers (MIGRATE; server/outbound.h): installed by the network
  // layer; null in the simulator and unit tests.
  Outbound* outbound() const { return outbound_; }
  void set_outbound(Outbound* outbound) { outbound_ = outbound; }

  // Connections. The network layer owns each ClientState and registers it for its lifetime.
  uint64_t NextClientId() { return next_client_id_++; }
  void RegisterClient(ClientState* client);
  void UnregisterClient(ClientState* client);
  const std::map<uint64_t, ClientState*>& clients() const { return clients_; }
  ClientState* FindClient(uint64_t id) const;
  // A new client starts authenticated only when the default user is on and needs no password.
  bool auth_required() const { return !acl_.default_user().nopass || !acl_.default_user().enabled; }
  // Users and permissions (server/acl.h); acl_user() is the client's user (default when unset).
  Acl& acl() { return acl_; }
  const AclUser& acl_user(const ClientState& client) const {
    return client.acl_user != nullptr ? *client.acl_user : acl_.default_user();
  }
  // Adds an ACL LOG entry for a refusal (or a failed AUTH) of `client`.
  void LogAclDenial(const ClientState& client, AclDenial reason, std::string object,
                    std::string username);
  RequestLimits LimitsFor(const ClientState& client) const;

  // SHUTDOWN: the network layer installs the hook that stops the event loop.
  void set_shutdown_hook(std::function<void()> hook) { shutdown_hook_ = std::move(hook); }
  void RequestShutdown();

  uint64_t DbSize(int db) const;
  void FlushDb(int db);
  void FlushAll();

  // Periodic work (hz times a second): active expiry with bounded work per tick.
  void Cron();

  // Transactions. WATCH registers the client on keys; every op on a key (local, reclaim, or
  // applied from a peer) makes its watchers' EXEC fail.
  void Watch(ClientState& client, int db, std::string_view key);
  // Every key went without an op (CLUSTER RESET of a region, Replication::Reincarnate): every
  // WATCH fails and tracking clients are told to flush, as after FLUSHALL.
  void KeysDropped();
  void Unwatch(ClientState& client);
  void TouchKey(int db, std::string_view key);
  // Runs the queued commands of `client` (EXEC), replying with one array.
  void ExecQueued(ClientState& client, ReplyBuilder& reply);

  // KeyspaceObserver: every op and changed key invalidates the WATCHes on it.
  void OnLocalOp(int db, std::string_view key, const crdt::KeyOp& op) override;
  void OnRemoteOp(int db, std::string_view key, const crdt::KeyOp& op) override;
  void OnKeyChanged(int db, std::string_view key) override {
    TouchKey(db, key);
    blocking_.OnKey(db, key);
    if (tracking_.active() && !flushing_) tracking_.KeyChanged(key, current_client_);
  }

  // Replication (src/store/replication.h), when the node runs with a data dir; may be null. The
  // Node (src/node/node.h) sets both; the command families read them.
  void set_replication(Replication* replication);
  Replication* replication() const { return replication_; }
  // Pub/Sub (server/pubsub.h). Publish delivers to the local subscribers and returns their
  // count (PUBLISH's reply); unless crdt-pubsub-region-local is set it also sends the message to
  // the shard's other regions through Replication, whose messages from peers set_replication
  // routes to the local subscribers (docs/semantics.md, "Pub/Sub across regions").
  PubSub& pubsub() { return pubsub_; }
  const PubSub& pubsub() const { return pubsub_; }
  int64_t Publish(std::string_view channel, std::string_view message, bool sharded);
  // What Publish does but the other shards: a PUBLISH in cluster mode also goes to one node of
  // every other shard (Cluster::PublishToShards), which delivers it with this (CLUSTER
  // LATTICE-PUBLISH): its local subscribers and its shard's other regions.
  int64_t PublishInShard(std::string_view channel, std::string_view message, bool sharded);
  // Keyspace notifications (server/notify.h); eviction raises `evicted` with
  // notifier().Evicted(db, key) before it deletes the key.
  Notifier& notifier() { return notifier_; }
  // CLIENT TRACKING (server/tracking.h).
  Tracking& tracking() { return tracking_; }
  size_t tracking_table_max_keys() const { return tracking_table_max_keys_; }
  // list-max-listpack-size, for the lists' OBJECT ENCODING state (crdt::List::SettleEncoding).
  const crdt::ListpackLimits& list_limits() const { return list_limits_; }
  // Queues pushed bytes for `target`: after the reply when it runs the current command, else at
  // once through its push hook.
  void PushTo(ClientState& target, std::string_view bytes);
  // Cluster mode (src/cluster/cluster.h), when --cluster-enabled yes; may be null. Routes every
  // command before it runs.
  // The cluster's routing changes (a pause ends, a slot moves) wake held writes and keyed waiters.
  void set_cluster(Cluster* cluster);
  Cluster* cluster() const { return cluster_; }

 private:
  bool CheckBeforeRun(ClientState& client, const Command& command, ArgList args,
                      ReplyBuilder& reply);
  bool RefuseInSubscribedMode(ClientState& client, const Command& command, ReplyBuilder& reply);
  bool CheckAcl(ClientState& client, const Command& command, ArgList args, ReplyBuilder& reply);
  void ExecuteOne(ClientState& client, ArgList args, ReplyBuilder& reply);
  void Queue(ClientState& client, const Command& command, ArgList args, ReplyBuilder& reply);
  const Command* ResolveSubcommand(const Command& command, ArgList args, ReplyBuilder& reply);
  void RecordError(std::string_view reply_bytes);
  // After a command ran for `duration_us`: latency tracking, the slow log, the latency monitor
  // (commands/observability_family.cc).
  void ApplyObservabilityConfig();
  void ObserveCommand(const ClientState& client, const Command& command, ArgList args,
                      int64_t duration_us);
  // MONITOR lines (commands/monitor_family.cc): a command run, an op applied from a peer.
  void FeedMonitors(const ClientState& client, const Command& command, ArgList args);
  void FeedMonitorsRemoteOp(int db, std::string_view key, const crdt::KeyOp& op);

  Config config_;
  const Clock& clock_;
  CommandRegistry registry_;
  Keyspace keyspace_;
  Rng rng_;
  ServerStats stats_;
  InfoMetrics metrics_;
  SlowLog slowlog_;
  LatencyMonitor latency_;
  Persistence persistence_{*this};
  Monitors monitors_;
  // The observability settings, read per command, cached by ApplyConfig.
  int64_t slowlog_threshold_us_ = 10000;
  int64_t latency_threshold_ms_ = 0;
  bool latency_tracking_ = true;
  std::map<std::string, int64_t, std::less<>> step_cpu_max_us_;  // AddStepCpu
  std::string run_id_;
  int64_t start_ms_ = 0;
  uint64_t next_client_id_ = 1;
  std::map<uint64_t, ClientState*> clients_;
  // (db, key) -> clients watching it.
  std::map<std::pair<int, std::string>, std::vector<ClientState*>, std::less<>> watchers_;
  std::function<void()> shutdown_hook_;
  Replication* replication_ = nullptr;
  BlockedClients blocking_{*this};
  int execute_depth_ = 0;  // Execute calls in progress (EXEC and scripts nest them)
  Acl acl_;
  PubSub pubsub_;
  Notifier notifier_{pubsub_};
  Tracking tracking_{*this};
  size_t tracking_table_max_keys_ = 1000000;
  crdt::ListpackLimits list_limits_;
  ClientState* current_client_ = nullptr;  // the client of the top-level command running
  std::string held_;                       // pushes for it, sent after its reply
  bool flushing_ = false;                  // FLUSHDB/FLUSHALL: one null invalidation, no events
  bool executing_multi_ = false;           // inside EXEC: ACL LOG context "multi"
  Cluster* cluster_ = nullptr;
  ClientPause client_pause_;
  Outbound* outbound_ = nullptr;
  std::unique_ptr<ScriptEngine> scripting_;
  // Eviction (eviction.cc): used memory between allocator reads, the evictor, and the check
  // before each command (false: it replied -OOM).
  UsedMemoryEstimate used_memory_;
  std::unique_ptr<Evictor> evictor_;
  std::unique_ptr<ReplicaOf> replica_of_;
  std::unique_ptr<SyncReplicas> sync_replicas_;
  std::unique_ptr<DatasetLoading> loading_;
  bool RefuseWhileLoading(ClientState& client, const Command& command, ReplyBuilder& reply);
  bool AdmitUnderMaxmemory(const Command& command, ReplyBuilder& reply);
  void ConfigureEviction();
};

// Registration functions of the command families (one per file, at its bottom).
void RegisterConnectionFamily(CommandRegistry& registry);
void RegisterServerFamily(CommandRegistry& registry);
void RegisterStringFamily(CommandRegistry& registry);
void RegisterGenericFamily(CommandRegistry& registry);
void RegisterHashFamily(CommandRegistry& registry);
void RegisterSetFamily(CommandRegistry& registry);
void RegisterListFamily(CommandRegistry& registry);
void RegisterHllFamily(CommandRegistry& registry);
void RegisterBitmapFamily(CommandRegistry& registry);
// The bitmap write of SETBIT, BITFIELD and SETRANGE (bitmap_family.cc): `window` holds the key's
// new bytes from `window_begin` (a chunk boundary) over the chunks of [first_byte, end_byte), the
// bytes the command changed (empty: it only grew the string to `size`), cut at `size`, the new
// length; the op carries only the chunks of those bytes (crdt::Key::WriteBitmapWindow).
void StoreBitmapBytes(CommandContext& ctx, std::string_view key, std::string_view window,
                      size_t window_begin, size_t size, size_t first_byte, size_t end_byte);
// What a bitmap command reads of `entry` (a string, or nullptr) to touch bytes [first_byte,
// end_byte): the value's length before (0 when missing) and after a write (at least
// `grow_to`), and the window StoreBitmapBytes takes: the composed bytes of those bytes' chunks,
// grown with zeros to the new length and cut there.
struct BitmapWindow {
  std::string bytes;
  size_t begin = 0;  // first_byte's chunk boundary
  size_t old_size = 0;
  size_t size = 0;
};
BitmapWindow ReadBitmapWindow(KeyRef entry, size_t first_byte, size_t end_byte, size_t grow_to,
                              int64_t now_ms);
void RegisterStreamFamily(CommandRegistry& registry);
void RegisterStreamGroupFamily(CommandRegistry& registry);

// The list pops as functions, for the blocking commands to call when a key they wait on gets
// data (commands/list_family.cc). ListPop pops up to `count` elements of `key` at `end` as one
// op and returns them in pop order; nullopt when the key is missing (a list is never empty),
// WRONGTYPE when it holds another type. ListMove is LMOVE: one element from `source`'s `from`
// end to `destination`'s `to` end (one op when they are the same key, else a pop and a push);
// nullopt when the source is missing; WRONGTYPE (nothing moved) when either key holds another
// type.
Result<std::optional<std::vector<std::string>>> ListPop(CommandContext& ctx, std::string_view key,
                                                        crdt::ListEnd end, size_t count);
Result<std::optional<std::string>> ListMove(CommandContext& ctx, std::string_view source,
                                            std::string_view destination, crdt::ListEnd from,
                                            crdt::ListEnd to);
void RegisterZSetFamily(CommandRegistry& registry);
// Sorted-set writes for the geo commands (commands/zset_family.cc): ZAddScores is ZADD [NX|XX]
// [CH] of parsed (score, member) pairs, replying as ZADD does (WRONGTYPE included);
// ZStoreScores replaces `destination` with the pairs (deletes it when they are empty).
void ZAddScores(CommandContext& ctx, std::string_view key, bool nx, bool xx, bool ch,
                const std::vector<std::pair<double, std::string>>& pairs);
void ZStoreScores(CommandContext& ctx, std::string_view destination,
                  const std::vector<std::pair<double, std::string>>& items);
void RegisterGeoFamily(CommandRegistry& registry);
void RegisterSortFamily(CommandRegistry& registry);
void RegisterTransactionFamily(CommandRegistry& registry);
void RegisterCrdtFamily(CommandRegistry& registry);
void RegisterAclFamily(CommandRegistry& registry);
void RegisterClusterFamily(CommandRegistry& registry);
void RegisterScriptingFamily(CommandRegistry& registry);
void RegisterObservabilityFamily(CommandRegistry& registry);
void RegisterPubSubFamily(CommandRegistry& registry);
void RegisterPersistenceFamily(CommandRegistry& registry);
void RegisterMonitorFamily(CommandRegistry& registry);
void RegisterReplicationFamily(CommandRegistry& registry);

// What the lower layers read of the configuration: replication (store/replication.h) and the
// cluster (cluster/cluster.h) take options, not the Config.
ReplicationOptions ReplicationOptionsOf(const Config& config);
ClusterOptions ClusterOptionsOf(const Config& config);

// The arguments Valkey shows as "(redacted)" in the slow log and MONITOR, a bit per argument:
// AUTH's, HELLO's AUTH pair, and the values of secret directives in CONFIG SET.
uint64_t RedactedArgs(const Command& command, ArgList args);

// One CLIENT INFO / CLIENT LIST line (also the client-info of ACL LOG entries).
std::string ClientInfoLine(const Server& server, const ClientState& client);

// A HELP subcommand's reply: one simple string per line.
void ReplyHelp(CommandContext& ctx, std::initializer_list<std::string_view> lines);

// Parses a SCAN/HSCAN/SSCAN/ZSCAN cursor as Valkey 9's string2ull: a non-negative string2ll, or
// else strtoull's grammar over the whole text (leading blanks, an optional sign with "-n"
// wrapping modulo 2^64, digits). Empty text, trailing bytes and overflow are invalid.
bool ParseScanCursor(std::string_view text, uint64_t* cursor);

// The options after a SCAN/HSCAN/SSCAN/ZSCAN cursor: COUNT n (n >= 1) and MATCH pattern in any
// order, later ones overriding, plus the options in `accepted`. Errors are Valkey's: a bad
// COUNT, an unknown type name, anything else a syntax error (SSCAN names HSCAN's and ZSCAN's
// flags, with kScanNameOtherFlags).
enum ScanOption : uint32_t {
  kScanType = 1U << 0,            // SCAN: TYPE name
  kScanNoValues = 1U << 1,        // HSCAN: NOVALUES
  kScanNoScores = 1U << 2,        // ZSCAN: NOSCORES
  kScanNameOtherFlags = 1U << 3,  // SSCAN: "ERR NOVALUES option can only be used in HSCAN"...
};
struct ScanArgs {
  size_t count = 10;
  std::string_view pattern;
  bool match_all = true;  // no MATCH, or MATCH *
  bool no_values = false;
  bool no_scores = false;
  std::optional<crdt::ObjectType> type;  // TYPE of a stored type; nullopt: any type
  bool type_never = false;  // TYPE of a type Lattice does not store (list, stream): no match
  bool Matches(std::string_view text) const;
};
Result<ScanArgs> ParseScanArgs(ArgList options, uint32_t accepted);

}  // namespace lattice::server
