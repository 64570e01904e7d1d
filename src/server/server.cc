#include "server/server.h"

#include <cstdio>
#include <random>

#include "lattice/common/numbers.h"
#include "server/cluster_routing.h"
#include "server/monitor_feed.h"
#include "server/rdb_import.h"
#include "server/replica_of.h"
#include "server/scripting/script_engine.h"
#include "server/sync_replicas.h"
#include "spdlog/spdlog.h"
#include "store/replication.h"
#include "util/allocator.h"
#include "util/glob.h"

namespace lattice::server {

bool ScanArgs::Matches(std::string_view text) const {
  return match_all || GlobMatch(pattern, text);
}

Result<ScanArgs> ParseScanArgs(ArgList options, uint32_t accepted) {
  ScanArgs args;
  for (size_t i = 0; i < options.size(); ++i) {
    const std::string_view option = options[i];
    const bool has_value = i + 1 < options.size();
    if (EqualsIgnoreCase(option, "count") && has_value) {
      int64_t count = 0;
      if (!ParseInt64(options[++i], &count)) {
        return Unexpected(ErrorCode::kNotInteger);
      }
      if (count < 1) {
        return Unexpected(ErrorCode::kSyntax);
      }
      args.count = static_cast<size_t>(count);
    } else if (EqualsIgnoreCase(option, "match") && has_value) {
      args.pattern = options[++i];
      args.match_all = args.pattern == "*";
    } else if ((accepted & kScanType) && EqualsIgnoreCase(option, "type") && has_value) {
      const std::string_view name = options[++i];
      args.type_never = false;
      args.type.reset();
      for (crdt::ObjectType t :
           {crdt::ObjectType::kString, crdt::ObjectType::kHash, crdt::ObjectType::kSet,
            crdt::ObjectType::kZSet, crdt::ObjectType::kList, crdt::ObjectType::kStream}) {
        if (EqualsIgnoreCase(name, TypeName(t))) {
          args.type = t;
        }
      }
      if (!args.type && EqualsIgnoreCase(name, "stream")) {
        args.type_never = true;
      } else if (!args.type) {
        return Unexpected("ERR unknown type name '" + std::string(name) + "'");
      }
    } else if ((accepted & kScanNoValues) && EqualsIgnoreCase(option, "novalues")) {
      args.no_values = true;
    } else if ((accepted & kScanNoScores) && EqualsIgnoreCase(option, "noscores")) {
      args.no_scores = true;
    } else if ((accepted & kScanNameOtherFlags) && EqualsIgnoreCase(option, "novalues")) {
      return Unexpected(std::string("ERR NOVALUES option can only be used in HSCAN"));
    } else if ((accepted & kScanNameOtherFlags) && EqualsIgnoreCase(option, "noscores")) {
      return Unexpected(std::string("ERR NOSCORES option can only be used in ZSCAN"));
    } else {
      return Unexpected(ErrorCode::kSyntax);
    }
  }
  return args;
}

bool ParseScanCursor(std::string_view text, uint64_t* cursor) {
  int64_t small = 0;
  if (ParseInt64(text, &small)) {
    *cursor = static_cast<uint64_t>(small);
    return small >= 0;
  }
  size_t i = 0;
  while (i < text.size() && (text[i] == ' ' || (text[i] >= '\t' && text[i] <= '\r'))) {
    ++i;
  }
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    negative = text[i] == '-';
    ++i;
  }
  if (i == text.size()) {
    return false;  // no digits
  }
  uint64_t value = 0;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') {
      return false;
    }
    const uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (UINT64_MAX - digit) / 10) {
      return false;  // ERANGE
    }
    value = value * 10 + digit;
  }
  *cursor = negative ? 0 - value : value;
  return true;
}

namespace {

// 40 hex characters, as Valkey's run_id. Randomness is fine here: src/ is not simulated
// bit-for-bit, and run_id is informational.
// With a seed (the simulator), the id comes from the server's own seeded Rng instead.
std::string MakeRunId(Rng* seeded) {
  std::random_device device;
  std::string id;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 40; ++i) {
    id.push_back(kHex[(seeded != nullptr ? seeded->Next() : device()) & 15]);
  }
  return id;
}

}  // namespace

Server::Server(Config config, const Clock& clock, ReplicaId replica,
               std::optional<uint64_t> rng_seed)
    : config_(std::move(config)),
      clock_(clock),
      keyspace_(replica, config_.databases()),
      rng_(rng_seed.has_value()
               ? *rng_seed
               : std::random_device()() ^ (static_cast<uint64_t>(clock.NowUs()) << 1)),
      metrics_(util::AllocatedBytes()),
      run_id_(MakeRunId(rng_seed.has_value() ? &rng_ : nullptr)),
      start_ms_(clock.NowMs()),
      acl_(registry_) {
  RegisterConnectionFamily(registry_);
  RegisterServerFamily(registry_);
  RegisterStringFamily(registry_);
  RegisterGenericFamily(registry_);
  RegisterHashFamily(registry_);
  RegisterSetFamily(registry_);
  RegisterZSetFamily(registry_);
  RegisterGeoFamily(registry_);
  RegisterSortFamily(registry_);
  RegisterListFamily(registry_);
  RegisterHllFamily(registry_);
  RegisterBitmapFamily(registry_);
  RegisterStreamFamily(registry_);
  RegisterStreamGroupFamily(registry_);
  RegisterTransactionFamily(registry_);
  RegisterCrdtFamily(registry_);
  RegisterClusterFamily(registry_);
  RegisterAclFamily(registry_);
  RegisterScriptingFamily(registry_);
  RegisterObservabilityFamily(registry_);
  RegisterPubSubFamily(registry_);
  RegisterPersistenceFamily(registry_);
  RegisterMonitorFamily(registry_);
  RegisterReplicationFamily(registry_);
  scripting_ = std::make_unique<ScriptEngine>(*this);
  replica_of_ = std::make_unique<ReplicaOf>(*this);
  loading_ = std::make_unique<DatasetLoading>(*this);
  sync_replicas_ = std::make_unique<SyncReplicas>(*this);
  ConfigureEviction();
  keyspace_.AddObserver(this);
  if (!config_.requirepass().empty()) acl_.SetDefaultPassword(config_.requirepass());
  // CONFIG SET applies at once (the node's own hook, if it installs one, calls this too).
  config_.set_on_change([this](std::string_view name) { ApplyConfig(name); });
  ApplyConfig("crdt-conflicts-max-len");
  ApplyConfig("crdt-conflicts-log-rate");
  ApplyConfig("hash-max-listpack-entries");  // and the other compact-collection limits
  ApplyConfig("slowlog-max-len");            // and the other observability settings
  ApplyConfig("jemalloc-bg-thread");
  ApplyConfig("notify-keyspace-events");
  ApplyConfig("tracking-table-max-keys");
}

Server::~Server() = default;

ReplicationOptions ReplicationOptionsOf(const Config& config) {
  ReplicationOptions options;
  options.dir = config.dir();
  options.shard_id = config.shard_id();
  options.region = config.region();
  options.fsync =
      repl::ParseFsyncPolicy(config.appendfsync()).value_or(repl::FsyncPolicy::kEverySec);
  options.rewrite_percentage = config.auto_aof_rewrite_percentage();
  options.rewrite_min_bytes = config.auto_aof_rewrite_min_size();
  options.peer_timeout_ms = config.repl_timeout() * 1000;
  options.max_retained_ops = static_cast<size_t>(config.crdt_backlog_ops());
  options.max_retained_bytes = static_cast<uint64_t>(config.crdt_backlog_size());
  options.cluster = config.cluster_enabled();
  return options;
}

namespace {

// cluster-region-order: region names, nearest first, separated by spaces or commas.
std::vector<std::string> RegionOrder(std::string_view text) {
  std::vector<std::string> regions;
  std::string name;
  for (char c : std::string(text) + " ") {
    if (c != ' ' && c != ',') {
      name += c;
    } else if (!name.empty()) {
      regions.push_back(std::move(name));
      name.clear();
    }
  }
  return regions;
}

}  // namespace

ClusterOptions ClusterOptionsOf(const Config& config) {
  return ClusterOptions{
      .enabled = config.cluster_enabled(),
      .require_full_coverage = config.cluster_require_full_coverage(),
      .allow_reads_when_down = config.cluster_allow_reads_when_down(),
      .shard_id = config.shard_id(),
      .implicit_shard = config.shard_id() == "default",  // no --shard-id
      .repl_port = config.replication_port(),
      .region = config.region(),
      .announce_ip = config.cluster_announce_ip(),
      .bind = config.bind(),
      .port = config.port(),
      .announce_port = config.cluster_announce_port(),
      .repl_timeout_s = config.repl_timeout(),
      .node_timeout_ms = config.cluster_node_timeout(),
      .region_order = RegionOrder(config.ValueOf("cluster-region-order")),
  };
}

void Server::ApplyConfig(std::string_view name) {
  if (cluster_ != nullptr && (name.starts_with("cluster-") || name == "repl-timeout")) {
    cluster_->set_options(ClusterOptionsOf(config_));
  }
  if (name == "crdt-conflicts-max-len") {
    keyspace_.conflicts().set_capacity(static_cast<size_t>(config_.crdt_conflicts_max_len()));
  } else if (name == "crdt-conflicts-log-rate") {
    keyspace_.conflicts().set_log_rate(config_.crdt_conflicts_log_rate());
  } else if (name.starts_with("maxmemory") || name.starts_with("lfu-")) {
    ConfigureEviction();
  } else if (name.starts_with("slowlog-") || name.starts_with("commandlog-") ||
             name.starts_with("latency-")) {
    ApplyObservabilityConfig();
  } else if (name == "jemalloc-bg-thread") {
    util::SetAllocatorBackgroundThread(config_.ValueOf(name) == "yes");
  } else if (name == "notify-keyspace-events") {
    notifier_.set_flags(ParseNotifyFlags(config_.notify_keyspace_events()));
  } else if (name == "tracking-table-max-keys") {
    tracking_table_max_keys_ =
        static_cast<size_t>(ParseInt64Strict(config_.ValueOf(name)).value_or(0));
  } else if (name.find("-max-listpack-") != std::string_view::npos) {
    list_limits_ = crdt::ListpackLimits::OfFill(
        ParseInt64Strict(config_.ValueOf("list-max-listpack-size")).value_or(-2));
    // When small collections are stored compact (docs/architecture.md, "Storage of keys").
    for (const auto& [type, prefix] :
         {std::pair{crdt::ObjectType::kHash, "hash"}, std::pair{crdt::ObjectType::kSet, "set"},
          std::pair{crdt::ObjectType::kZSet, "zset"}}) {
      const std::string entries = std::string(prefix) + "-max-listpack-entries";
      const std::string value = std::string(prefix) + "-max-listpack-value";
      const std::string_view names[] = {entries, value};
      CompactLimits limits;
      for (const auto& [directive, text] : config_.Get(names)) {
        const std::optional<int64_t> number = ParseInt64Strict(text);
        if (!number.has_value() || *number < 0) continue;
        (directive == entries ? limits.max_entries : limits.max_value) =
            static_cast<size_t>(*number);
      }
      keyspace_.set_compact_limits(type, limits);
    }
  }
}

Keyspace& CommandContext::keyspace() { return server.keyspace(); }

namespace {

Result<KeyRef> CountedLookup(CommandContext& ctx, std::string_view key, crdt::ObjectType type) {
  Result<KeyRef> found = ctx.keyspace().FindTyped(ctx.db(), key, type, ctx.now_ms);
  const bool missing = found.ok() && *found == nullptr;  // a wrong type is a hit
  ++(missing ? ctx.server.stats().keyspace_misses : ctx.server.stats().keyspace_hits);
  return found;
}

}  // namespace

Result<KeyRef> CommandContext::Read(std::string_view key, crdt::ObjectType type) {
  Result<KeyRef> found = CountedLookup(*this, key, type);
  if (found.ok() && *found != nullptr) server.evictor().Touch(*(*found).stored(), now_ms);
  return found;
}

Result<KeyRef> CommandContext::ReadNoTouch(std::string_view key) {
  return CountedLookup(*this, key, crdt::ObjectType::kNone);
}

Result<KeyRef> CommandContext::Peek(std::string_view key, crdt::ObjectType type) {
  return keyspace().FindTyped(db(), key, type, now_ms);
}

void Server::RegisterClient(ClientState* client) {
  clients_[client->id] = client;
  ++stats_.total_connections_received;
}

void Server::UnregisterClient(ClientState* client) {
  Unwatch(*client);
  blocking_.Remove(client);
  pubsub_.UnsubscribeAll(*client);
  monitors_.Remove(client);
  sync_replicas_->Remove(client);
  tracking_.Disable(*client);
  clients_.erase(client->id);
}

void Server::Watch(ClientState& client, int db, std::string_view key) {
  for (const ClientState::WatchedKey& watched : client.watched) {
    if (watched.db == db && watched.key == key) {
      return;
    }
  }
  const bool existed = keyspace_.Find(db, key, clock_.NowMs()) != nullptr;
  client.watched.push_back({db, std::string(key), existed});
  watchers_[{db, std::string(key)}].push_back(&client);
}

void Server::Unwatch(ClientState& client) {
  for (const ClientState::WatchedKey& watched : client.watched) {
    auto it = watchers_.find(std::make_pair(watched.db, watched.key));
    if (it == watchers_.end()) continue;
    std::erase(it->second, &client);
    if (it->second.empty()) watchers_.erase(it);
  }
  client.watched.clear();
  client.watch_dirty = false;
}

void Server::TouchKey(int db, std::string_view key) {
  if (watchers_.empty()) {
    return;  // the common case costs one branch
  }
  auto it = watchers_.find(std::make_pair(db, std::string(key)));
  if (it != watchers_.end()) {
    for (ClientState* client : it->second) client->watch_dirty = true;
  }
}

int64_t Server::Publish(std::string_view channel, std::string_view message, bool sharded) {
  const int64_t receivers = PublishInShard(channel, message, sharded);
  if (!sharded && cluster_ != nullptr && cluster_->options().enabled) {
    cluster_->PublishToShards(channel, message, config_.crdt_pubsub_region_local());
  }
  return receivers;
}

int64_t Server::PublishInShard(std::string_view channel, std::string_view message, bool sharded) {
  const int64_t receivers = pubsub_.Publish(channel, message, sharded);
  if (replication_ != nullptr && !config_.crdt_pubsub_region_local()) {
    replication_->Publish(repl::Publish{std::string(channel), std::string(message), sharded});
  }
  return receivers;
}

// A RESP2 client with subscriptions may only run (P|S)(UN)SUBSCRIBE, PING, QUIT and RESET
// (Valkey's processCommand; RESP3 clients run anything).
bool Server::RefuseInSubscribedMode(ClientState& client, const Command& command,
                                    ReplyBuilder& reply) {
  if (!client.subscribed() || client.protocol != Protocol::kResp2) return false;
  const std::string& name = command.full_name;
  if (name == "ping" || name == "quit" || name == "reset" || name.ends_with("subscribe")) {
    return false;
  }
  reply.Error("ERR Can't execute '" + name +
              "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in "
              "this context");
  return true;
}

void Server::set_replication(Replication* replication) {
  replication_ = replication;
  if (replication_ == nullptr) return;
  replication_->set_pubsub_hook([this](const repl::Publish& publish) {
    pubsub_.Publish(publish.channel, publish.message, publish.sharded);
  });
  replication_->set_acks_hook([this] { blocking_.Wake(BlockChannel::kAcks); });
}

void Server::set_cluster(Cluster* cluster) {
  cluster_ = cluster;
  if (cluster_ == nullptr) return;
  cluster_->set_routing_hook([this] {
    blocking_.Wake(BlockChannel::kUnpause);
    blocking_.WakeAllKeys();
  });
}

bool Server::MayBlock() const { return !executing_multi_ && !scripting_->running(); }

void Server::ServeBlocked() {
  if (execute_depth_ > 0 || scripting_->running()) return;
  if (sync_replicas_->active()) sync_replicas_->Flush();  // peers' ops, as commands
  // Served commands write as a command does (a BLMOVE's pop and push): one group of ops.
  if (replication_ != nullptr) replication_->BeginGroup();
  blocking_.ServeReady();
  if (replication_ != nullptr) replication_->EndGroup();
}

void Server::HoldPaused(ClientState& client, ReplyBuilder& reply) {
  constexpr int64_t kHoldMaxMs = 30'000;
  std::vector<std::string> held = std::move(client.paused_command);
  client.paused_command.clear();
  // CLIENT PAUSE holds until it ends (the cron ends it on time); a slot pause gives up at 30 s.
  const bool client_pause = std::exchange(client.held_by_client_pause, false);
  const Command* command = registry_.Find(held[0]);
  LATTICE_ASSERT(command != nullptr);
  CommandContext ctx(*this, client, reply, *command, clock_.NowMs());
  BlockRequest request{.channel = BlockChannel::kUnpause,
                       .deadline_ms = client_pause ? 0 : ctx.now_ms + kHoldMaxMs,
                       .unblockable = false};
  request.serve = [this, held](CommandContext& served) {
    std::string* out = served.reply.buffer();
    const size_t start = out->size();
    const std::vector<std::string_view> views(held.begin(), held.end());
    Execute(served.client, views, served.reply);
    if (!served.client.paused_command.empty()) {
      served.client.paused_command.clear();  // still paused: keep waiting
      served.client.held_by_client_pause = false;
      return false;
    }
    return out->size() > start;  // nothing written: it blocked (its new wait replaced this one)
  };
  request.timed_out = [](CommandContext& served) {
    served.reply.Error("TRYAGAIN Slot paused for a migration handoff");
  };
  const std::vector<std::string_view> views(held.begin(), held.end());
  blocking_.Block(ctx, views, std::move(request));
}

void Server::UnpauseClients() {
  client_pause_.Unpause();
  blocking_.Wake(BlockChannel::kUnpause);
}

void Server::OnLocalOp(int db, std::string_view key, const crdt::KeyOp& op) {
  TouchKey(db, key);
  if (execute_depth_ > 0) {  // a command's write is an access (LRU/LFU), but not a creation
    const StoredKey* written = keyspace_.Stored(db, key);
    if (written != nullptr && written->access() != StoredKey::new_access_stamp()) {
      evictor_->Touch(*written, clock_.NowMs());
    }
  }
  blocking_.OnKey(db, key);
  if (flushing_) return;
  if (notifier_.enabled()) notifier_.OnLocal(db, key, op, keyspace_, clock_.NowMs());
  if (tracking_.active()) tracking_.KeyChanged(key, current_client_);
}

void Server::OnRemoteOp(int db, std::string_view key, const crdt::KeyOp& op) {
  if (!monitors_.empty()) [[unlikely]] {
    FeedMonitorsRemoteOp(db, key, op);
  }
  TouchKey(db, key);
  blocking_.OnKey(db, key);
  if (notifier_.enabled()) notifier_.OnRemote(db, key, op, keyspace_, clock_.NowMs());
  if (tracking_.active()) tracking_.KeyChanged(key, nullptr);
}

void Server::PushTo(ClientState& target, std::string_view bytes) {
  if (&target == current_client_) {
    held_.append(bytes);
  } else if (target.push_hook) {
    target.push_hook(bytes);
  }
}

void ReplyHelp(CommandContext& ctx, std::initializer_list<std::string_view> lines) {
  ctx.reply.Array(lines.size());
  for (std::string_view line : lines) {
    ctx.reply.SimpleString(line);
  }
}

ClientState* Server::FindClient(uint64_t id) const {
  auto it = clients_.find(id);
  return it == clients_.end() ? nullptr : it->second;
}

RequestLimits Server::LimitsFor(const ClientState& client) const {
  RequestLimits limits;
  limits.proto_max_bulk_len = config_.proto_max_bulk_len();
  limits.authenticated = client.authenticated;
  return limits;
}

void Server::RequestShutdown() {
  spdlog::warn("User requested shutdown...");
  if (shutdown_hook_) {
    shutdown_hook_();
  }
}

void Server::ResetStats() {
  const uint64_t connections = stats_.total_connections_received;
  stats_ = ServerStats{};
  stats_.total_connections_received = connections;
  evictor_->ResetStats();
  for (const Command* command : registry_.AllWithSubcommands()) {
    command->stats = CommandStats{};
  }
}

uint64_t Server::DbSize(int db) const { return keyspace_.Size(db); }
// Valkey raises no keyspace event per key for a flush and sends tracking clients one null
// invalidation; the per-key DEL ops are shipped to peers as usual (where they raise `del`).
void Server::FlushDb(int db) {
  flushing_ = true;
  keyspace_.FlushDb(db, clock_.NowMs());
  flushing_ = false;
  tracking_.Flushed();
}
void Server::KeysDropped() {
  for (auto& [key, clients] : watchers_) {
    for (ClientState* client : clients) client->watch_dirty = true;
  }
  tracking_.Flushed();
}

void Server::FlushAll() {
  flushing_ = true;
  keyspace_.FlushAll(clock_.NowMs());
  flushing_ = false;
  tracking_.Flushed();
}

void Server::Cron() {
  // Valkey's active expire cycle visits 20 keys per loop and loops while it keeps finding
  // expired ones; a fixed budget per tick keeps the event loop responsive.
  constexpr size_t kExpireKeysPerTick = 200;
  if (client_pause_.Expired(clock_.NowMs())) UnpauseClients();
  // A client pause keeps the dataset still: no active expiry and no eviction (Valkey).
  const bool paused = client_pause_.active();
  const int64_t expire_start_us = clock_.MonotonicUs();
  if (!paused) keyspace_.ActiveExpireCycle(clock_.NowMs(), kExpireKeysPerTick);
  AddLatencySample("expire-cycle", clock_.MonotonicUs() - expire_start_us);
  stats_.expired_keys = keyspace_.stats().expired_keys;
  stats_.expired_fields = keyspace_.stats().expired_fields;
  metrics_.Sample(clock_.NowMs(), {stats_.total_commands_processed, stats_.total_net_input_bytes,
                                   stats_.total_net_output_bytes});
  const uint64_t allocated = util::AllocatedBytes();
  used_memory_.Refresh(allocated);
  StoredKey::SetNewAccessStamp(evictor_->NewKeyStamp(clock_.NowMs()));  // for peers' new keys
  metrics_.ObserveMemory(allocated);
  if (evictor_->settings().maxmemory != 0 &&
      !paused) {  // goes on where a command's time budget stopped
    evictor_->Perform(clock_.NowMs(), [this] { return clock_.MonotonicUs(); });
  }
  blocking_.ExpireDue(clock_.NowMs());  // the network layer's timers come first; a backstop
  persistence_.Cron(clock_.NowMs());
  replica_of_->Tick(clock_.NowMs());
  if (sync_replicas_->active()) sync_replicas_->Cron(clock_.NowMs());
}

void Server::RecordError(std::string_view reply_bytes) {
  ++stats_.total_error_replies;
  std::string_view text = reply_bytes.substr(1);
  const size_t end = text.find_first_of(" \r");
  ++stats_.errors[std::string(text.substr(0, end))];
}

const Command* Server::ResolveSubcommand(const Command& command, ArgList args,
                                         ReplyBuilder& reply) {
  if (args.size() < 2) {
    if (command.spec.handler != nullptr) {
      return &command;  // a container that also runs bare (COMMAND)
    }
    reply.Error(errors::WrongArity(command.full_name));
    return nullptr;
  }
  const Command* sub = registry_.FindSubcommand(command, args[1]);
  if (sub == nullptr) {
    reply.Error(errors::UnknownSubcommand(args[1], command.full_name));
    return nullptr;
  }
  return sub;
}

bool Server::CheckBeforeRun(ClientState& client, const Command& command, ArgList args,
                            ReplyBuilder& reply) {
  // Valkey's order: lookup, then arity, then authentication.
  if (!command.ArityOk(args.size())) {
    reply.Error(errors::WrongArity(command.full_name));
    return false;
  }
  const Command& top = command.parent != nullptr ? *command.parent : command;
  if (!client.authenticated && !(top.spec.flags & kNoAuth)) {
    reply.Error(errors::kNoAuth);
    return false;
  }
  return CheckAcl(client, command, args, reply);
}

// Commands that act on the transaction itself run at once inside MULTI; the rest are queued.
static bool RunsInsideMulti(const Command& command) {
  const std::string& name = command.full_name;
  return name == "exec" || name == "discard" || name == "multi" || name == "watch" ||
         name == "quit" || name == "reset";
}

void Server::Queue(ClientState& client, const Command& command, ArgList args, ReplyBuilder& reply) {
  const Command& top = command.parent != nullptr ? *command.parent : command;
  if ((top.spec.flags & kNoMulti) || (command.spec.flags & kNoMulti)) {
    client.multi_dirty = true;
    reply.Error("ERR Command not allowed inside a transaction");
    return;
  }
  client.queued.emplace_back(args.begin(), args.end());
  reply.SimpleString("QUEUED");
}

void Server::ExecQueued(ClientState& client, ReplyBuilder& reply) {
  std::vector<std::vector<std::string>> queued = std::move(client.queued);
  client.queued.clear();
  client.in_multi = false;
  reply.Array(queued.size());
  std::vector<std::string_view> views;
  executing_multi_ = true;
  for (const std::vector<std::string>& command : queued) {
    views.assign(command.begin(), command.end());
    Execute(client, views, reply);
  }
  executing_multi_ = false;
}

// Valkey refuses a command without the loading flag while the dataset loads, and EXEC when a
// queued command lacks it (the transaction is then discarded, as for any refused EXEC).
bool Server::RefuseWhileLoading(ClientState& client, const Command& command, ReplyBuilder& reply) {
  constexpr std::string_view kLoadingError = "LOADING Valkey is loading the dataset in memory";
  bool refused = !(command.spec.flags & kLoading);
  if (command.full_name == "exec" && client.in_multi) {
    for (const std::vector<std::string>& queued : client.queued) {
      const Command* inner = registry_.Find(queued[0]);
      if (inner != nullptr && inner->has_subcommands() && queued.size() > 1) {
        inner = registry_.FindSubcommand(*inner, queued[1]);
      }
      refused = refused || inner == nullptr || !(inner->spec.flags & kLoading);
    }
    if (refused) {
      client.in_multi = false;
      client.queued.clear();
      Unwatch(client);
      reply.Error("EXECABORT Transaction discarded because of: " + std::string(kLoadingError));
      return true;
    }
  }
  if (!refused) return false;
  client.multi_dirty = client.multi_dirty || client.in_multi;
  reply.Error(kLoadingError);
  return true;
}

void Server::Execute(ClientState& client, ArgList args, ReplyBuilder& reply) {
  const bool top = execute_depth_ == 0;
  if (top) {
    current_client_ = &client;
    notifier_.Hold(&client, &held_);
  }
  const size_t reply_start = reply.buffer()->size();
  ++execute_depth_;
  // A command's ops (every write of an EXEC or a script, both keys of a RENAME...) reach the
  // other regions as one group, applied there all together (docs/replication.md, "Groups").
  if (top && replication_ != nullptr) replication_->BeginGroup();
  ExecuteOne(client, args, reply);
  if (top && replication_ != nullptr) replication_->EndGroup();
  --execute_depth_;
  if (top) {
    if (client.reply_off || client.reply_skip) reply.buffer()->resize(reply_start);
    client.reply_skip = std::exchange(client.reply_skip_next, false);  // CLIENT REPLY SKIP
    current_client_ = nullptr;
    notifier_.Hold(nullptr, nullptr);
    if (!held_.empty()) {
      std::string held;
      held.swap(held_);
      if (client.push_hook) client.push_hook(held);
    }
  }
  if (execute_depth_ == 0 && blocking_.has_ready()) ServeBlocked();
  if (execute_depth_ == 0 && sync_replicas_->active()) sync_replicas_->Flush();
}

void Server::ExecuteOne(ClientState& client, ArgList args, ReplyBuilder& reply) {
  std::string* out = reply.buffer();
  const size_t reply_start = out->size();
  const Command* command = registry_.Find(args[0]);
  if (command == nullptr) {
    reply.Error(errors::UnknownCommand(args));
    client.multi_dirty = client.multi_dirty || client.in_multi;
    RecordError(std::string_view(*out).substr(reply_start));
    return;
  }
  if (command->has_subcommands()) {
    command = ResolveSubcommand(*command, args, reply);
  }
  if (command != nullptr && scripting_->RefuseWhileBusy(client, *command, args, reply)) {
    client.multi_dirty = client.multi_dirty || client.in_multi;  // Valkey's flagTransaction
    RecordError(std::string_view(*out).substr(reply_start));
    return;
  }
  if (command == nullptr || !CheckBeforeRun(client, *command, args, reply)) {
    if (command != nullptr) {
      ++command->stats.rejected_calls;
    }
    client.multi_dirty = client.multi_dirty || client.in_multi;
    RecordError(std::string_view(*out).substr(reply_start));
    return;
  }
  if (cluster_ != nullptr &&
      !RouteCommand(*cluster_, registry_, client, *command, args, reply, executing_multi_)) {
    if (out->size() > reply_start) {  // redirected (not held for a handoff pause)
      if (command->full_name == "exec") {
        client.in_multi = false;  // Valkey discards the transaction
        client.queued.clear();
        Unwatch(client);
      }
      client.multi_dirty = client.multi_dirty || client.in_multi;
      RecordError(std::string_view(*out).substr(reply_start));
    }
    return;
  }
  if ((command->spec.flags & kWrite) && !client.primary_link && replica_of_->refuses_writes()) {
    reply.Error("READONLY You can't write against a read only replica.");
    ++command->stats.rejected_calls;
    client.multi_dirty = client.multi_dirty || client.in_multi;
    RecordError(std::string_view(*out).substr(reply_start));
    return;
  }
  if (RefuseInSubscribedMode(client, *command, reply)) {
    ++command->stats.rejected_calls;
    RecordError(std::string_view(*out).substr(reply_start));
    return;
  }
  if (loading_->active() && RefuseWhileLoading(client, *command, reply)) {
    ++command->stats.rejected_calls;
    RecordError(std::string_view(*out).substr(reply_start));
    return;
  }
  // Over maxmemory, MULTI queues nothing (Valkey: queuing may grow without bound).
  if (!AdmitUnderMaxmemory(*command, reply) ||
      (client.in_multi && !RunsInsideMulti(*command) && OutOfMemory() &&
       (reply.Error(errors::kOom), true))) {
    ++command->stats.rejected_calls;
    client.multi_dirty = client.multi_dirty || client.in_multi;
    RecordError(std::string_view(*out).substr(reply_start));
    return;
  }
  if (client_pause_.active() && execute_depth_ == 1 &&
      client_pause_.Holds(client, *command, args, registry_, *scripting_)) {
    client.paused_command.assign(args.begin(), args.end());  // the network layer holds it
    client.held_by_client_pause = true;
    client.last_command = command->full_name;  // CLIENT LIST shows what it waits to run
    return;
  }
  if (client.in_multi && !RunsInsideMulti(*command)) {
    Queue(client, *command, args, reply);
    if ((*out)[reply_start] == '-') RecordError(std::string_view(*out).substr(reply_start));
    return;
  }
  client.last_command = command->full_name;
  const int64_t start_us = clock_.MonotonicUs();
  CommandContext ctx(*this, client, reply, *command, clock_.NowMs());
  if (!monitors_.empty()) [[unlikely]] {
    FeedMonitorsBeforeRun(*this, client, *command, args);
  }
  const bool notify = notifier_.enabled();  // keyspace notifications (server/notify.h)
  if (notify) notifier_.BeginCommand(*command, args, client.db, keyspace_, ctx.now_ms);
  command->spec.handler(ctx, args);
  if (notify) notifier_.EndCommand(*command, args, client.db, keyspace_, ctx.now_ms);
  if (client.tracking.on) tracking_.AfterCommand(client, *command, args, execute_depth_ == 1);
  CommandStats& cmd_stats = command->stats;
  ++cmd_stats.calls;
  const int64_t duration_us = clock_.MonotonicUs() - start_us;
  cmd_stats.usec += static_cast<uint64_t>(duration_us);
  ObserveCommand(client, *command, args, duration_us);
  ++stats_.total_commands_processed;
  ++client.commands_processed;
  if (out->size() > reply_start && (*out)[reply_start] == '-') {
    ++cmd_stats.failed_calls;
    RecordError(std::string_view(*out).substr(reply_start));
  }
}

}  // namespace lattice::server
