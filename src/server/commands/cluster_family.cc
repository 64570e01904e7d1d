// Cluster commands: CLUSTER (INFO, MYID, MYSHARDID, SLOTS, SHARDS, NODES, KEYSLOT,
// COUNTKEYSINSLOT, GETKEYSINSLOT, ADDSLOTS[RANGE], DELSLOTS[RANGE], MEET, RESET, SAVECONFIG,
// REPLICATE, REPLICAS, SLAVES, FORGET, LINKS, COUNT-FAILURE-REPORTS, SET-CONFIG-EPOCH, BUMPEPOCH,
// FLUSHSLOTS, SETSLOT,
// CREATE, MIGRATESLOTS, GETSLOTMIGRATIONS, CANCELSLOTMIGRATIONS, and the internal SYNCSLOTS and
// LATTICE-GOSSIP), MIGRATE, ASKING, READONLY and READWRITE. Parsing and replies live here; the
// logic is in cluster.h / cluster_topology.h. Replies and errors follow Valkey 9.
//
// Views are per region: for a client of this node, the node of each shard in this node's region
// is that shard's primary and the shard's nodes in other regions are its replicas, so
// cluster-aware clients talk to their nearest region.

#include <algorithm>

#include "cluster/cluster.h"
#include "server/migrate.h"
#include "server/server.h"
#include "store/replication.h"

namespace lattice::server {
namespace {

constexpr std::string_view kDisabled = "ERR This instance has cluster support disabled";

Cluster* Need(CommandContext& ctx) {
  Cluster* cluster = ctx.server.cluster();
  if (cluster == nullptr) ctx.reply.Error(kDisabled);
  return cluster;
}

bool ParseSlot(std::string_view text, uint16_t* slot) {
  int64_t value = 0;
  if (!ParseInt64(text, &value) || value < 0 || value >= kSlotCount) return false;
  *slot = static_cast<uint16_t>(value);
  return true;
}

// The shard's nodes as this region shows them: the serving node first.
std::vector<const ClusterNode*> RegionOrder(const Cluster& cluster, const std::string& shard) {
  std::vector<const ClusterNode*> nodes = cluster.topology().NodesOf(shard);
  const ClusterNode* primary = cluster.Serving(shard);
  std::stable_partition(nodes.begin(), nodes.end(),
                        [&](const ClusterNode* node) { return node == primary; });
  return nodes;
}

void CmdClusterKeySlot(CommandContext& ctx, ArgList args) { ctx.reply.Integer(KeySlot(args[2])); }

void CmdClusterMyId(CommandContext& ctx, ArgList) {
  if (Cluster* cluster = Need(ctx)) ctx.reply.Bulk(cluster->myid());
}

void CmdClusterMyShardId(CommandContext& ctx, ArgList) {
  if (Cluster* cluster = Need(ctx)) ctx.reply.Bulk(cluster->myself().shard);
}

void CmdClusterInfo(CommandContext& ctx, ArgList) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  const ClusterTopology& topology = cluster->topology();
  const size_t assigned = topology.AssignedSlots();
  size_t size = 0;
  for (const std::string& shard : topology.Shards()) {
    if (!topology.RangesOf(shard).empty()) ++size;
  }
  const ClusterStats& stats = cluster->stats();
  std::string text;
  auto add = [&](std::string_view name, const std::string& value) {
    text += std::string(name) + ":" + value + "\r\n";
  };
  // Slots whose serving node (in this region's view) is PFAIL or FAIL: a shard with another
  // healthy node is served by it, so these count shards with no healthy node left.
  size_t pfail = 0, fail = 0;
  for (const std::string& shard : topology.Shards()) {
    const ClusterNode* node = cluster->Serving(shard);
    const NodeHealth* health = node == nullptr ? nullptr : cluster->HealthOf(node->id);
    if (health == nullptr || !health->pfail) continue;
    size_t slots = 0;
    for (const SlotRange& range : topology.RangesOf(shard)) slots += range.end - range.start + 1;
    (health->fail ? fail : pfail) += slots;
  }
  add("cluster_state", cluster->StateOk() ? "ok" : "fail");
  add("cluster_slots_assigned", std::to_string(assigned));
  add("cluster_slots_ok", std::to_string(assigned - pfail - fail));
  add("cluster_slots_pfail", std::to_string(pfail));
  add("cluster_slots_fail", std::to_string(fail));
  add("cluster_known_nodes", std::to_string(topology.nodes().size()));
  add("cluster_size", std::to_string(size));
  add("cluster_current_epoch", std::to_string(topology.current_epoch()));
  add("cluster_my_epoch", std::to_string(topology.ShardEpoch(cluster->myself().shard)));
  add("cluster_stats_messages_sent", std::to_string(stats.messages_sent));
  add("cluster_stats_messages_received", std::to_string(stats.messages_received));
  add("total_cluster_links_buffer_limit_exceeded", "0");
  add("lattice_last_migration_ms", std::to_string(stats.last_migration_ms));
  add("lattice_last_migration_keys", std::to_string(stats.last_migration_keys));
  add("lattice_last_migration_pause_ms", std::to_string(stats.last_migration_pause_ms));
  add("lattice_max_migration_pause_ms", std::to_string(stats.max_migration_pause_ms));
  add("lattice_catching_up", cluster->catching_up() ? "1" : "0");
  add("lattice_catch_up_ms", std::to_string(cluster->catch_up_ms()));
  add("lattice_catch_up_overdue", cluster->catch_up_overdue() ? "1" : "0");
  ctx.reply.Verbatim(text);
}

void ReplyNodeEntry(CommandContext& ctx, const ClusterNode& node) {
  ctx.reply.Array(4);
  ctx.reply.Bulk(node.ip);
  ctx.reply.Integer(node.port);
  ctx.reply.Bulk(node.id);
  ctx.reply.Map(0);
}

void CmdClusterSlots(CommandContext& ctx, ArgList) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  const ClusterTopology& topology = cluster->topology();
  std::vector<std::pair<SlotRange, std::vector<const ClusterNode*>>> entries;
  for (const std::string& shard : topology.Shards()) {
    std::vector<const ClusterNode*> nodes = RegionOrder(*cluster, shard);
    // Failed replicas are left out, as Valkey does (the primary stays, failed or not).
    std::erase_if(nodes, [&](const ClusterNode* node) {
      const NodeHealth* health = cluster->HealthOf(node->id);
      return node != nodes.front() && health != nullptr && health->fail;
    });
    if (nodes.empty()) continue;
    for (const SlotRange& range : topology.RangesOf(shard)) entries.emplace_back(range, nodes);
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first.start < b.first.start; });
  ctx.reply.Array(entries.size());
  for (const auto& [range, nodes] : entries) {
    ctx.reply.Array(2 + nodes.size());
    ctx.reply.Integer(range.start);
    ctx.reply.Integer(range.end);
    for (const ClusterNode* node : nodes) ReplyNodeEntry(ctx, *node);
  }
}

void CmdClusterShards(CommandContext& ctx, ArgList) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  const ClusterTopology& topology = cluster->topology();
  const std::vector<std::string> shards = topology.Shards();
  ctx.reply.Array(shards.size());
  for (const std::string& shard : shards) {
    const std::vector<const ClusterNode*> nodes = RegionOrder(*cluster, shard);
    const std::vector<SlotRange> ranges = topology.RangesOf(shard);
    ctx.reply.Map(2);
    ctx.reply.Bulk("slots");
    ctx.reply.Array(ranges.size() * 2);
    for (const SlotRange& range : ranges) {
      ctx.reply.Integer(range.start);
      ctx.reply.Integer(range.end);
    }
    ctx.reply.Bulk("nodes");
    ctx.reply.Array(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      const ClusterNode& node = *nodes[i];
      ctx.reply.Map(7);
      ctx.reply.Bulk("id");
      ctx.reply.Bulk(node.id);
      ctx.reply.Bulk("port");
      ctx.reply.Integer(node.port);
      ctx.reply.Bulk("ip");
      ctx.reply.Bulk(node.ip);
      ctx.reply.Bulk("endpoint");
      ctx.reply.Bulk(node.ip);
      ctx.reply.Bulk("role");
      ctx.reply.Bulk(i == 0 ? "master" : "replica");
      ctx.reply.Bulk("replication-offset");
      ctx.reply.Integer(0);
      const NodeHealth* health = cluster->HealthOf(node.id);
      ctx.reply.Bulk("health");
      ctx.reply.Bulk(health != nullptr && health->fail ? "failed" : "online");
    }
  }
}

// One line of CLUSTER NODES (and REPLICAS). The bus port after '@' is the client port: gossip
// and migration run there (CLUSTER LATTICE-GOSSIP, SYNCSLOTS).
// Flags "fail?" (PFAIL) and "fail" come from this node's failure detection; pong-recv is when it
// last heard from the node.
std::string NodeLine(const Cluster& cluster, const ClusterNode& node, int64_t now_ms) {
  const ClusterTopology& topology = cluster.topology();
  const ClusterNode* primary = cluster.Serving(node.shard);
  const bool is_primary = primary == &node;
  const NodeHealth* health = cluster.HealthOf(node.id);
  const bool pfail = health != nullptr && health->pfail;
  std::string flags = node.id == cluster.myid() ? "myself," : "";
  flags += is_primary ? "master" : "slave";
  if (pfail) flags += health->fail ? ",fail" : ",fail?";
  const int64_t pong = health != nullptr ? health->seen_ms : now_ms;
  std::string text = node.id + " " + node.ip + ":" + std::to_string(node.port) + "@" +
                     std::to_string(node.port) + " " + flags + " " +
                     (is_primary ? std::string("-") : primary->id) + " 0 " + std::to_string(pong) +
                     " " + std::to_string(topology.ShardEpoch(node.shard)) +
                     (pfail ? " disconnected" : " connected");
  if (is_primary) {
    for (const SlotRange& range : topology.RangesOf(node.shard)) {
      text += " " + SlotRangeShortText(range);
    }
    if (node.id == cluster.myid()) {
      for (const std::string& migrating : cluster.MigratingSlotsText()) text += " " + migrating;
    }
  }
  return text + "\n";
}

void CmdClusterNodes(CommandContext& ctx, ArgList) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  std::string text;
  for (const auto& [id, node] : cluster->topology().nodes()) {
    text += NodeLine(*cluster, node, ctx.now_ms);
  }
  ctx.reply.Verbatim(text);
}

void ReplyResult(CommandContext& ctx, const Result<void>& done) {
  if (done.ok()) {
    ctx.reply.Ok();
  } else {
    ctx.reply.Error(done.error());
  }
}

// The node `id` names, or nullptr with "ERR Unknown node <id>" written.
const ClusterNode* NeedNode(CommandContext& ctx, const Cluster& cluster, std::string_view id) {
  const ClusterNode* node = cluster.topology().FindNode(id);
  if (node == nullptr) ctx.reply.Error("ERR Unknown node " + std::string(id.substr(0, 64)));
  return node;
}

// CLUSTER REPLICAS|SLAVES <id>: the other nodes of its shard (its other regions), as NODES lines.
void CmdClusterReplicas(CommandContext& ctx, ArgList args) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  const ClusterNode* node = NeedNode(ctx, *cluster, args[2]);
  if (node == nullptr) return;
  const ClusterTopology& topology = cluster->topology();
  if (cluster->Serving(node->shard) != node) {
    ctx.reply.Error("ERR The specified node is not a master");
    return;
  }
  std::vector<std::string> lines;
  for (const ClusterNode* other : topology.NodesOf(node->shard)) {
    if (other != node) lines.push_back(NodeLine(*cluster, *other, ctx.now_ms));
  }
  ctx.reply.Array(lines.size());
  for (const std::string& line : lines) ctx.reply.Bulk(line);
}

size_t KeyCount(CommandContext& ctx) {
  size_t keys = 0;
  for (int db = 0; db < ctx.keyspace().databases(); ++db) keys += ctx.keyspace().Size(db);
  return keys;
}

void CmdClusterReplicate(CommandContext& ctx, ArgList args) {
  if (Cluster* cluster = Need(ctx)) ReplyResult(ctx, cluster->Replicate(args[2], KeyCount(ctx)));
}

void CmdClusterForget(CommandContext& ctx, ArgList args) {
  if (Cluster* cluster = Need(ctx)) ReplyResult(ctx, cluster->Forget(args[2], ctx.now_ms));
}

void CmdClusterCountFailureReports(CommandContext& ctx, ArgList args) {
  Cluster* cluster = Need(ctx);
  if (cluster != nullptr && NeedNode(ctx, *cluster, args[2]) != nullptr) {
    ctx.reply.Integer(static_cast<int64_t>(cluster->FailureReports(args[2])));
  }
}

void CmdClusterSetConfigEpoch(CommandContext& ctx, ArgList args) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  int64_t epoch = 0;
  if (!ParseInt64(args[2], &epoch)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  ReplyResult(ctx, cluster->SetConfigEpoch(epoch));
}

void CmdClusterBumpEpoch(CommandContext& ctx, ArgList) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  const bool bumped = cluster->BumpEpoch();
  const ClusterTopology& topology = cluster->topology();
  const uint64_t epoch = topology.ShardEpoch(cluster->myself().shard);
  ctx.reply.SimpleString(std::string(bumped ? "BUMPED " : "STILL ") +
                         std::to_string(epoch != 0 ? epoch : topology.current_epoch()));
}

void CmdClusterFlushSlots(CommandContext& ctx, ArgList) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  if (KeyCount(ctx) != 0) {
    ctx.reply.Error("ERR DB must be empty to perform CLUSTER FLUSHSLOTS.");
    return;
  }
  cluster->FlushSlots();
  ctx.reply.Ok();
}

// Holds the client until the routing changes (a migration's handoff or failure), when the command
// runs again (Server::HoldPaused). Inside MULTI or a script nothing can wait: TRYAGAIN.
void HoldUntilRoutingChanges(CommandContext& ctx, ArgList args) {
  if (ctx.client.in_multi || !ctx.server.MayBlock()) {
    ctx.reply.Error("TRYAGAIN A slot migration of this node is in progress");
    return;
  }
  ctx.client.paused_command.assign(args.begin(), args.end());
}

// CLUSTER SETSLOT <slot> IMPORTING|MIGRATING|NODE <node-id> | STABLE. MIGRATING starts an atomic
// migration of the slot (its CRDT state); NODE waits for a migration of it on this node to end.
void CmdClusterSetSlot(CommandContext& ctx, ArgList args) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  uint16_t slot = 0;
  if (!ParseSlot(args[2], &slot)) {
    ctx.reply.Error("ERR Invalid or out of range slot");
    return;
  }
  const std::string_view action = args[3];
  if (EqualsIgnoreCase(action, "stable") && args.size() == 4) {
    cluster->SetSlotStable(slot);
    ctx.reply.Ok();
    return;
  }
  if (args.size() != 5) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  const std::string_view id = args[4];
  if (EqualsIgnoreCase(action, "importing")) {
    ReplyResult(ctx, cluster->SetSlotImporting(slot, id));
  } else if (EqualsIgnoreCase(action, "migrating")) {
    ReplyResult(ctx, cluster->SetSlotMigrating(slot, id, ctx.now_ms));
  } else if (EqualsIgnoreCase(action, "node")) {
    size_t keys = 0;
    for (int db = 0; db < ctx.keyspace().databases(); ++db) {
      keys += ctx.keyspace().CountKeysInSlot(db, slot);
    }
    Result<bool> done = cluster->SetSlotNode(slot, id, keys);
    if (!done.ok()) {
      ctx.reply.Error(done.error());
    } else if (*done) {
      ctx.reply.Ok();
    } else {
      HoldUntilRoutingChanges(ctx, args);
    }
  } else {
    ctx.reply.Error("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP");
  }
}

// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
// [AUTH2 username password] [KEYS key [key ...]]. Between Lattice shards a key moves with its
// slot's CRDT state, by the atomic migration CLUSTER SETSLOT MIGRATING started: MIGRATE waits
// for its handoff, then answers NOKEY (the keys are the target's). The bus authenticates with
// masterauth, so AUTH and AUTH2 are checked and unused there. To any other server (or with COPY,
// or another db) MIGRATE copies values as Valkey does (server/migrate.h).
void CmdMigrate(CommandContext& ctx, ArgList args) {
  Result<MigrateArgs> parsed = ParseMigrateArgs(args);
  if (!parsed.ok()) {
    ctx.reply.Error(parsed.error().message);
    return;
  }
  const MigrateArgs& migrate = *parsed;
  std::vector<uint16_t> slots;
  for (std::string_view key : migrate.keys) {
    if (ctx.keyspace().Find(ctx.db(), key, ctx.now_ms) != nullptr) slots.push_back(KeySlot(key));
  }
  if (slots.empty()) {
    ctx.reply.SimpleString("NOKEY");
    return;
  }
  Cluster* cluster = ctx.server.cluster();
  const ClusterNode* target = nullptr;
  if (cluster != nullptr) {
    for (const auto& [id, node] : cluster->topology().nodes()) {
      if (node.ip == migrate.host && node.port == migrate.port) target = &node;
    }
  }
  const bool moving = target != nullptr && target->shard != cluster->myself().shard &&
                      std::all_of(slots.begin(), slots.end(),
                                  [&](uint16_t slot) { return cluster->SlotMigrating(slot); });
  if (moving && !migrate.copy && migrate.db == ctx.db()) {
    HoldUntilRoutingChanges(ctx, args);  // the key moves with its slot's CRDT state
    return;
  }
  MigrateValues(ctx, args, migrate);  // any other server: Valkey's value copy (server/migrate.h)
}

// CLUSTER LINKS: the bus is one outgoing connection per known node (its client port), which
// also carries the replies; shown as Valkey's "to" links.
void CmdClusterLinks(CommandContext& ctx, ArgList) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  const ClusterTopology& topology = cluster->topology();
  ctx.reply.Array(topology.nodes().size() - 1);
  for (const auto& [id, node] : topology.nodes()) {
    if (id == cluster->myid()) continue;
    ctx.reply.Map(6);
    ctx.reply.Bulk("direction");
    ctx.reply.Bulk("to");
    ctx.reply.Bulk("node");
    ctx.reply.Bulk(id);
    ctx.reply.Bulk("create-time");
    ctx.reply.Integer(0);
    ctx.reply.Bulk("events");
    ctx.reply.Bulk("rw");
    ctx.reply.Bulk("send-buffer-allocated");
    ctx.reply.Integer(0);
    ctx.reply.Bulk("send-buffer-used");
    ctx.reply.Integer(0);
  }
}

void CmdClusterCountKeysInSlot(CommandContext& ctx, ArgList args) {
  if (Need(ctx) == nullptr) return;
  uint16_t slot = 0;
  if (!ParseSlot(args[2], &slot)) {
    ctx.reply.Error("ERR Invalid slot");
    return;
  }
  ctx.reply.Integer(static_cast<int64_t>(ctx.keyspace().CountKeysInSlot(ctx.db(), slot)));
}

void CmdClusterGetKeysInSlot(CommandContext& ctx, ArgList args) {
  if (Need(ctx) == nullptr) return;
  uint16_t slot = 0;
  int64_t count = 0;
  if (!ParseSlot(args[2], &slot) || !ParseInt64(args[3], &count) || count < 0) {
    ctx.reply.Error("ERR Invalid slot or number of keys");
    return;
  }
  const std::vector<std::string> keys =
      ctx.keyspace().KeysInSlot(ctx.db(), slot, static_cast<size_t>(count));
  ctx.reply.Array(keys.size());
  for (const std::string& key : keys) ctx.reply.Bulk(key);
}

// ADDSLOTS / DELSLOTS (single slots) and their RANGE forms (pairs).
void SlotsCommand(CommandContext& ctx, ArgList args, bool ranges, bool add) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  if (ranges && args.size() % 2 == 1) {
    ctx.reply.Error(errors::WrongArity(ctx.command.full_name));
    return;
  }
  std::vector<uint16_t> slots;
  for (size_t i = 2; i < args.size(); i += ranges ? 2 : 1) {
    uint16_t start = 0, end = 0;
    if (!ParseSlot(args[i], &start) || (ranges && !ParseSlot(args[i + 1], &end))) {
      ctx.reply.Error("ERR Invalid or out of range slot");
      return;
    }
    if (!ranges) end = start;
    if (start > end) {
      ctx.reply.Error("ERR start slot number " + std::to_string(start) +
                      " is greater than end slot number " + std::to_string(end));
      return;
    }
    for (uint32_t slot = start; slot <= end; ++slot) slots.push_back(static_cast<uint16_t>(slot));
  }
  ReplyResult(ctx, cluster->SetSlots(slots, add));
}

void CmdClusterAddSlots(CommandContext& ctx, ArgList args) { SlotsCommand(ctx, args, false, true); }
void CmdClusterAddSlotsRange(CommandContext& ctx, ArgList args) {
  SlotsCommand(ctx, args, true, true);
}
void CmdClusterDelSlots(CommandContext& ctx, ArgList args) {
  SlotsCommand(ctx, args, false, false);
}
void CmdClusterDelSlotsRange(CommandContext& ctx, ArgList args) {
  SlotsCommand(ctx, args, true, false);
}

// "ip:port" -> (ip, port); the port must be 1..65535.
std::optional<std::pair<std::string, int>> ParseAddress(std::string_view text) {
  const size_t colon = text.rfind(':');
  int64_t port = 0;
  if (colon == std::string_view::npos || colon == 0 || !ParseInt64(text.substr(colon + 1), &port) ||
      port < 1 || port > 65535) {
    return std::nullopt;
  }
  return std::make_pair(std::string(text.substr(0, colon)), static_cast<int>(port));
}

void CmdClusterMeet(CommandContext& ctx, ArgList args) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  int64_t port = 0;
  if (!ParseInt64(args[3], &port) || port < 1 || port > 65535) {
    ctx.reply.Error("ERR Invalid base port specified: " + std::string(args[3].substr(0, 64)));
    return;
  }
  // The bus port is checked, then unused: the cluster bus runs on the client port.
  int64_t bus_port = 0;
  if (args.size() == 5 && (!ParseInt64(args[4], &bus_port) || bus_port < 0 || bus_port > 65535)) {
    ctx.reply.Error("ERR Invalid bus port specified: " + std::string(args[4].substr(0, 64)));
    return;
  }
  if (args.size() > 5 || args[2].empty()) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  cluster->Meet(std::string(args[2]), static_cast<int>(port));
  ctx.reply.Ok();
}

// Why a RESET may not drop this node's keys, or "". Only a region of a shard with other nodes
// (Valkey's replica) may, and only once every write it made reached another region: a shard's
// only node is its master, whose keys would be lost for good.
std::string ResetRefusal(CommandContext& ctx, const Cluster& cluster) {
  Replication* replication = ctx.server.replication();
  if (cluster.topology().NodesOf(cluster.myself().shard).size() < 2 || replication == nullptr) {
    return "ERR CLUSTER RESET can't be called with master nodes containing keys";
  }
  for (const MigrationJob& job : cluster.jobs()) {
    if (!job.terminal()) return "ERR CLUSTER RESET can't be called during a slot migration";
  }
  const uint64_t own = ctx.keyspace().next_seq() - 1;
  if (own > 0 && replication->RegionsHaving(own) == 0) {
    return "ERR CLUSTER RESET can't drop this region's keys: its latest writes have not reached "
           "another region of its shard yet";
  }
  return "";
}

void CmdClusterReset(CommandContext& ctx, ArgList args) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  if (args.size() == 3 && !EqualsIgnoreCase(args[2], "hard") &&
      !EqualsIgnoreCase(args[2], "soft")) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  bool keys = false;
  for (int db = 0; db < ctx.keyspace().databases(); ++db) {
    keys = keys || ctx.keyspace().Size(db) > 0;
  }
  if (keys) {
    if (std::string refusal = ResetRefusal(ctx, *cluster); !refusal.empty()) {
      ctx.reply.Error(refusal);
      return;
    }
  }
  cluster->Reset(args.size() == 3 && EqualsIgnoreCase(args[2], "hard"), ctx.now_ms);
  if (keys) {
    // A region of a shard with others is Valkey's replica, whose RESET flushes its data: it
    // forgets its keys, context and peers and becomes a new replica (docs/cluster.md).
    ReplicaId fresh = kNoReplica;
    while (fresh == kNoReplica || fresh == ctx.keyspace().replica()) {
      fresh = ctx.server.rng().Next();
    }
    const Result<void> done = ctx.server.replication()->Reincarnate(fresh, ctx.now_ms);
    ctx.server.KeysDropped();
    if (!done.ok()) {
      ctx.reply.Error("ERR CLUSTER RESET could not write the data dir: " + done.error().message);
      return;
    }
  }
  ctx.reply.Ok();
}

void CmdClusterSaveConfig(CommandContext& ctx, ArgList) {
  if (Need(ctx) != nullptr) ctx.reply.Ok();  // every change is saved as it happens
}

// CLUSTER CREATE SHARD <id> <ip:port> [<ip:port> ...] [SHARD <id> ...]: the slots are split in
// equal ranges between the shards, in the order given, and every address is met.
void CmdClusterCreate(CommandContext& ctx, ArgList args) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  std::vector<std::string> shards;
  std::vector<std::pair<std::string, int>> addresses;
  for (size_t i = 2; i < args.size(); ++i) {
    if (EqualsIgnoreCase(args[i], "shard") && i + 1 < args.size()) {
      const std::string shard(args[++i]);
      if (shard.empty() || std::find(shards.begin(), shards.end(), shard) != shards.end()) {
        ctx.reply.Error("ERR Invalid or repeated shard id: '" + shard.substr(0, 64) + "'");
        return;
      }
      shards.push_back(shard);
    } else if (!shards.empty()) {
      std::optional<std::pair<std::string, int>> address = ParseAddress(args[i]);
      if (!address) {
        ctx.reply.Error("ERR Invalid node address specified: " +
                        std::string(args[i].substr(0, 64)));
        return;
      }
      addresses.push_back(*address);
    } else {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
  }
  if (shards.empty()) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  if (cluster->topology().AssignedSlots() > 0) {
    ctx.reply.Error("ERR Slots are already assigned: CLUSTER RESET first");
    return;
  }
  cluster->Create(shards, addresses);
  ctx.reply.Ok();
}

// CLUSTER MIGRATESLOTS SLOTSRANGE s e [s e ...] NODE <id> [SLOTSRANGE ... NODE <id> ...]
void CmdClusterMigrateSlots(CommandContext& ctx, ArgList args) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  std::vector<std::pair<std::vector<SlotRange>, std::string>> jobs;
  size_t i = 2;
  while (i < args.size()) {
    Result<std::vector<SlotRange>> ranges = ParseSlotRanges(args, i, &i);
    if (!ranges.ok()) {
      ctx.reply.Error(ranges.error());
      return;
    }
    if (i + 1 >= args.size()) {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
    jobs.emplace_back(std::move(*ranges), std::string(args[i + 1]));
    i += 2;
  }
  ReplyResult(ctx, cluster->MigrateSlots(std::move(jobs), ctx.now_ms));
}

void CmdClusterGetSlotMigrations(CommandContext& ctx, ArgList) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  ctx.reply.Array(cluster->jobs().size());
  for (const MigrationJob& job : cluster->jobs()) {
    ctx.reply.Map(11);
    auto field = [&](std::string_view name, std::string_view value) {
      ctx.reply.Bulk(name);
      ctx.reply.Bulk(value);
    };
    auto number = [&](std::string_view name, int64_t value) {
      ctx.reply.Bulk(name);
      ctx.reply.Integer(value);
    };
    field("name", job.name);
    field("operation", job.export_side ? "EXPORT" : "IMPORT");
    field("slot_ranges", SlotRangesText(job.ranges));
    field("target_node", job.target_node);
    field("source_node", job.source_node);
    number("create_time", job.create_ms / 1000);
    number("last_update_time", job.update_ms / 1000);
    number("last_ack_time", job.ack_ms / 1000);
    field("state", MigrationStateName(job.state));
    field("message", job.message);
    number("cow_size", 0);
  }
}

void CmdClusterCancelSlotMigrations(CommandContext& ctx, ArgList) {
  if (Cluster* cluster = Need(ctx)) ReplyResult(ctx, cluster->CancelMigrations(ctx.now_ms));
}

void CmdClusterSyncSlots(CommandContext& ctx, ArgList args) {
  if (Cluster* cluster = Need(ctx)) cluster->OnSyncSlots(args, ctx.reply, ctx.now_ms);
}

void CmdClusterGossip(CommandContext& ctx, ArgList args) {
  Cluster* cluster = Need(ctx);
  if (cluster == nullptr) return;
  if (args.size() > 5) {
    ctx.reply.Error(errors::WrongArity(ctx.command.full_name));
    return;
  }
  if (args.size() == 5 && !EqualsIgnoreCase(args[4], "meet")) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  Result<std::string> mine = cluster->OnGossip(
      args[2], args.size() > 3 ? args[3] : std::string_view(), args.size() == 5, ctx.now_ms);
  if (mine.ok()) {
    ctx.reply.Bulk(*mine);
  } else {
    ctx.reply.Error(mine.error());
  }
}

// A PUBLISH made on another shard (Cluster::PublishToShards): delivered here and to this
// shard's other regions, never sent on to other shards.
void CmdClusterPublish(CommandContext& ctx, ArgList args) {
  if (Need(ctx) == nullptr) return;
  ctx.reply.Integer(ctx.server.PublishInShard(args[2], args[3], /*sharded=*/false));
}

void CmdClusterHelp(CommandContext& ctx, ArgList) {
  ReplyHelp(ctx,
            {"CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
             "ADDSLOTS <slot> [<slot> ...]",
             "ADDSLOTSRANGE <start slot> <end slot> [<start> <end> ...]",
             "DELSLOTS <slot> [<slot> ...]",
             "DELSLOTSRANGE <start slot> <end slot> [<start> <end> ...]",
             "COUNTKEYSINSLOT <slot>",
             "GETKEYSINSLOT <slot> <count>",
             "INFO",
             "KEYSLOT <key>",
             "MEET <ip> <port> [<bus-port>]",
             "MYID",
             "MYSHARDID",
             "NODES",
             "REPLICATE <node-id>",
             "    Make this node another region of <node-id>'s shard (Lattice: all regions write).",
             "REPLICAS <node-id>",
             "SLAVES <node-id>",
             "FORGET <node-id>",
             "LINKS",
             "COUNT-FAILURE-REPORTS <node-id>",
             "SET-CONFIG-EPOCH <epoch>",
             "BUMPEPOCH",
             "FLUSHSLOTS",
             "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
             "    MIGRATING starts an atomic migration of the slot (Lattice).",
             "RESET [HARD|SOFT]",
             "SAVECONFIG",
             "SHARDS",
             "SLOTS",
             "CREATE SHARD <id> <ip:port> [<ip:port> ...] [SHARD <id> ...]",
             "    (Lattice) Split the slots between the shards and meet every node.",
             "MIGRATESLOTS SLOTSRANGE <start> <end> [<start> <end> ...] NODE <node-id> [...]",
             "GETSLOTMIGRATIONS",
             "CANCELSLOTMIGRATIONS",
             "HELP"});
}

void CmdAsking(CommandContext& ctx, ArgList) {
  if (Need(ctx) == nullptr) return;
  ctx.client.asking = true;
  ctx.reply.Ok();
}

void CmdReadOnly(CommandContext& ctx, ArgList) {
  if (Need(ctx) == nullptr) return;
  ctx.client.readonly = true;
  ctx.reply.Ok();
}

void CmdReadWrite(CommandContext& ctx, ArgList) {
  if (Need(ctx) == nullptr) return;
  ctx.client.readonly = false;
  ctx.reply.Ok();
}

}  // namespace

void RegisterClusterFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kAdm = kAdmin | kStale | kNoScript;
  constexpr uint32_t kAdmAcl = kAclAdmin | kAclSlow | kAclDangerous;
  constexpr uint32_t kInfo = kLoading | kStale;
  constexpr std::string_view kG = "cluster";
  registry.Add({.name = "cluster", .arity = -2, .acl = kAclSlow, .group = kG, .summary = "A container for Redis Cluster commands.", .since = "3.0.0", .complexity = "Depends on subcommand.", .subcommands = {
      {.name = "keyslot", .arity = 3, .flags = kStale, .acl = kAclSlow, .handler = &CmdClusterKeySlot, .group = kG, .summary = "Returns the hash slot for a key.", .since = "3.0.0", .complexity = "O(N) where N is the number of bytes in the key"},
      {.name = "myid", .arity = 2, .flags = kInfo, .acl = kAclSlow, .handler = &CmdClusterMyId, .group = kG, .summary = "Returns the ID of a node.", .since = "3.0.0", .complexity = "O(1)"},
      {.name = "myshardid", .arity = 2, .flags = kInfo, .acl = kAclSlow, .handler = &CmdClusterMyShardId, .group = kG, .summary = "Returns the shard ID of a node.", .since = "7.2.0", .complexity = "O(1)"},
      {.name = "info", .arity = 2, .flags = kInfo, .acl = kAclSlow, .handler = &CmdClusterInfo, .group = kG, .summary = "Returns information about the state of a node.", .since = "3.0.0", .complexity = "O(1)"},
      {.name = "slots", .arity = 2, .flags = kInfo, .acl = kAclSlow, .handler = &CmdClusterSlots, .group = kG, .summary = "Returns the mapping of cluster slots to nodes.", .since = "3.0.0", .complexity = "O(N) where N is the total number of Cluster nodes"},
      {.name = "shards", .arity = 2, .flags = kInfo, .acl = kAclSlow, .handler = &CmdClusterShards, .group = kG, .summary = "Returns the mapping of cluster slots to shards.", .since = "7.0.0", .complexity = "O(N) where N is the total number of cluster nodes"},
      {.name = "nodes", .arity = 2, .flags = kInfo, .acl = kAclSlow, .handler = &CmdClusterNodes, .group = kG, .summary = "Returns the cluster configuration for a node.", .since = "3.0.0", .complexity = "O(N) where N is the total number of Cluster nodes"},
      {.name = "countkeysinslot", .arity = 3, .flags = kStale, .acl = kAclSlow, .handler = &CmdClusterCountKeysInSlot, .group = kG, .summary = "Returns the number of keys in a hash slot.", .since = "3.0.0", .complexity = "O(1)"},
      {.name = "getkeysinslot", .arity = 4, .flags = kStale, .acl = kAclSlow, .handler = &CmdClusterGetKeysInSlot, .group = kG, .summary = "Returns the key names in a hash slot.", .since = "3.0.0", .complexity = "O(N) where N is the number of requested keys"},
      {.name = "addslots", .arity = -3, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterAddSlots, .group = kG, .summary = "Assigns new hash slots to a node.", .since = "3.0.0", .complexity = "O(N) where N is the total number of hash slot arguments"},
      {.name = "addslotsrange", .arity = -4, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterAddSlotsRange, .group = kG, .summary = "Assigns new hash slot ranges to a node.", .since = "7.0.0", .complexity = "O(N) where N is the total number of the slots between the start slot and end slot arguments."},
      {.name = "delslots", .arity = -3, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterDelSlots, .group = kG, .summary = "Sets hash slots as unbound for a node.", .since = "3.0.0", .complexity = "O(N) where N is the total number of hash slot arguments"},
      {.name = "delslotsrange", .arity = -4, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterDelSlotsRange, .group = kG, .summary = "Sets hash slot ranges as unbound for a node.", .since = "7.0.0", .complexity = "O(N) where N is the total number of the slots between the start slot and end slot arguments."},
      {.name = "meet", .arity = -4, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterMeet, .group = kG, .summary = "Forces a node to handshake with another node.", .since = "3.0.0", .complexity = "O(1)"},
      {.name = "replicate", .arity = 3, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterReplicate, .group = kG, .summary = "Configure a node as replica of a master node.", .since = "3.0.0", .complexity = "O(1)"},
      {.name = "replicas", .arity = 3, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterReplicas, .group = kG, .summary = "Lists the replica nodes of a master node.", .since = "5.0.0", .complexity = "O(N) where N is the number of replicas."},
      {.name = "slaves", .arity = 3, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterReplicas, .group = kG, .summary = "Lists the replica nodes of a master node.", .since = "3.0.0", .complexity = "O(N) where N is the number of replicas."},
      {.name = "forget", .arity = 3, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterForget, .group = kG, .summary = "Removes a node from the nodes table.", .since = "3.0.0", .complexity = "O(1)"},
      {.name = "links", .arity = 2, .flags = kStale, .acl = kAclSlow, .handler = &CmdClusterLinks, .group = kG, .summary = "Returns a list of all TCP links to and from peer nodes.", .since = "7.0.0", .complexity = "O(N) where N is the total number of Cluster nodes"},
      {.name = "count-failure-reports", .arity = 3, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterCountFailureReports, .group = kG, .summary = "Returns the number of active failure reports active for a node.", .since = "3.0.0", .complexity = "O(N) where N is the number of failure reports"},
      {.name = "set-config-epoch", .arity = 3, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterSetConfigEpoch, .group = kG, .summary = "Sets the configuration epoch for a new node.", .since = "3.0.0", .complexity = "O(1)"},
      {.name = "bumpepoch", .arity = 2, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterBumpEpoch, .group = kG, .summary = "Advances the cluster config epoch.", .since = "3.0.0", .complexity = "O(1)"},
      {.name = "flushslots", .arity = 2, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterFlushSlots, .group = kG, .summary = "Deletes all slots information from a node.", .since = "3.0.0", .complexity = "O(1)"},
      {.name = "setslot", .arity = -4, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterSetSlot, .group = kG, .summary = "Binds a hash slot to a node.", .since = "3.0.0", .complexity = "O(1)"},
      {.name = "reset", .arity = -2, .flags = kAdm | kNoScript, .acl = kAdmAcl, .handler = &CmdClusterReset, .group = kG, .summary = "Resets a node.", .since = "3.0.0", .complexity = "O(N) where N is the number of known nodes."},
      {.name = "saveconfig", .arity = 2, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterSaveConfig, .group = kG, .summary = "Forces a node to save the cluster configuration to disk.", .since = "3.0.0", .complexity = "O(1)"},
      {.name = "create", .arity = -5, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterCreate, .group = kG, .summary = "Creates a cluster from a list of shards (Lattice).", .since = "1.0.0", .complexity = "O(N) where N is the number of nodes"},
      {.name = "migrateslots", .arity = -4, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterMigrateSlots, .group = kG, .summary = "Migrates slot ranges to another shard atomically.", .since = "9.0.0", .complexity = "O(N) where N is the number of slots"},
      {.name = "getslotmigrations", .arity = 2, .flags = kAdm | kLoading, .acl = kAdmAcl, .handler = &CmdClusterGetSlotMigrations, .group = kG, .summary = "Returns the active and recent slot migrations.", .since = "9.0.0", .complexity = "O(N) where N is the number of migrations"},
      {.name = "cancelslotmigrations", .arity = 2, .flags = kAdm, .acl = kAdmAcl, .handler = &CmdClusterCancelSlotMigrations, .group = kG, .summary = "Cancels the active slot migrations of this node.", .since = "9.0.0", .complexity = "O(N) where N is the number of migrations"},
      {.name = "syncslots", .arity = -3, .flags = kAdm | kNoMulti, .acl = kAdmAcl, .handler = &CmdClusterSyncSlots, .group = kG, .summary = "An internal command used in slot migration.", .since = "9.0.0", .complexity = "O(N)"},
      {.name = "lattice-gossip", .arity = -3, .flags = kAdm | kNoMulti, .acl = kAdmAcl, .handler = &CmdClusterGossip, .group = kG, .summary = "An internal command: one node's view of the cluster topology (Lattice).", .since = "1.0.0", .complexity = "O(N) where N is the number of nodes"},
      {.name = "lattice-publish", .arity = 4, .flags = kAdm | kNoMulti | kLoading | kStale, .acl = kAdmAcl, .handler = &CmdClusterPublish, .group = kG, .summary = "An internal command: a PUBLISH made on another shard (Lattice).", .since = "1.0.0", .complexity = "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client)."},
      {.name = "help", .arity = 2, .flags = kLoading | kStale, .acl = kAclSlow, .handler = &CmdClusterHelp, .group = kG, .summary = "Returns helpful text about the different subcommands.", .since = "5.0.0", .complexity = "O(1)"},
  }});
  registry.Add({.name = "migrate", .arity = -6, .flags = kWrite, .acl = kAclKeyspace | kAclWrite | kAclSlow | kAclDangerous, .handler = &CmdMigrate, .group = "generic", .summary = "Atomically transfers a key from one instance to another.", .since = "2.6.0", .complexity = "This command actually executes a DUMP+DEL in the source instance, and a RESTORE in the target instance. See the pages of these commands for time complexity. Also an O(N) data transfer between the two instances is performed."});
  registry.Add({.name = "asking", .arity = 1, .flags = kFast, .acl = kAclConnection | kAclFast, .handler = &CmdAsking, .group = kG, .summary = "Signals that a cluster client is following an -ASK redirect.", .since = "3.0.0", .complexity = "O(1)"});
  registry.Add({.name = "readonly", .arity = 1, .flags = kFast | kLoading | kStale, .acl = kAclConnection | kAclFast, .handler = &CmdReadOnly, .group = kG, .summary = "Enables read-only queries for a connection to a Valkey Cluster replica node.", .since = "3.0.0", .complexity = "O(1)"});
  registry.Add({.name = "readwrite", .arity = 1, .flags = kFast | kLoading | kStale, .acl = kAclConnection | kAclFast, .handler = &CmdReadWrite, .group = kG, .summary = "Enables read-write queries for a connection to a Valkey Cluster replica node.", .since = "3.0.0", .complexity = "O(1)"});
  // clang-format on
}

}  // namespace lattice::server
