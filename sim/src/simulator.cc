// RunSimulation: builds the world from the seed, schedules the workload and the faults, heals,
// waits for quiescence and runs the checkers (docs/simulation.md).

#include "lattice/sim/simulator.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "cluster/cluster.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"
#include "store/keyspace.h"
#include "workload.h"
#include "world.h"

namespace lattice::sim {
namespace {

constexpr int64_t kQuiescenceLimitMs = 90'000;
constexpr int64_t kQuiescenceStepMs = 250;

const std::pair<const char*, uint32_t> kFaultNames[] = {
    {"latency", kFaultLatency}, {"partition", kFaultPartition},
    {"loss", kFaultLoss},       {"duplicate", kFaultDuplicate},
    {"reorder", kFaultReorder}, {"clock", kFaultClock},
    {"crash", kFaultCrash},     {"disk", kFaultDisk}};

const std::pair<const char*, Mutation> kMutationNames[] = {
    {"apply-without-deps", Mutation::kApplyWithoutDeps},
    {"non-commutative-join", Mutation::kNonCommutativeJoin},
    {"drop-last-op-on-restart", Mutation::kDropLastOpOnRestart},
    {"hlc-no-tie-break", Mutation::kHlcNoTieBreak},
    {"compact-narrows-dots", Mutation::kCompactNarrowsDots},
    {"split-groups", Mutation::kSplitGroups}};

// Network, clock and disk conditions of this seed.
void DrawConditions(World& world, uint32_t faults) {
  Rng& rng = world.rng();
  if (faults & kFaultLoss) world.net.loss_per_mille = rng.Range(0, 100);
  if (faults & kFaultDuplicate) world.net.duplicate_per_mille = rng.Range(0, 60);
  world.net.reorder = (faults & kFaultReorder) != 0 && rng.Chance(1, 2);
  // Half the seeds run with synchronized clocks, where equal HLCs (the tie-break) are common.
  const bool skew = (faults & kFaultClock) != 0 && rng.Chance(1, 2);
  for (int i = 0; i < world.size(); ++i) {
    Region& region = world.region(i);
    region.clock.offset_ms = skew ? rng.Range(-3000, 3000) : 0;
    region.disk_latency_ms = (faults & kFaultDisk) != 0 ? rng.Range(0, 25) : 0;
  }
  world.max_retained_ops = rng.Chance(1, 3) ? rng.Range(15, 80) : 1'000'000;
  world.rewrite_min_bytes =
      rng.Chance(1, 2) ? static_cast<uint64_t>(rng.Range(1000, 20'000)) : uint64_t{64} << 20;
}

void SchedulePartitions(World& world, int64_t window_ms) {
  Rng& rng = world.rng();
  const int count = static_cast<int>(rng.Range(1, 2 + window_ms / 3000));
  for (int n = 0; n < count; ++n) {
    const int64_t at = rng.Range(0, window_ms);
    const int64_t heal = at + rng.Range(100, 5000);
    std::vector<std::pair<int, int>> cut;
    // Regions (within a shard) are cut: in every shard, and the cluster bus between them.
    const int regions = world.regions_per_shard();
    if (rng.Chance(1, 2)) {  // one link
      const int a = static_cast<int>(rng.Uniform(regions));
      const int b = (a + 1 + static_cast<int>(rng.Uniform(regions - 1))) % regions;
      cut.emplace_back(a, b);
    } else {  // a split of the regions into two sides
      const uint64_t side = rng.Next();
      for (int a = 0; a < regions; ++a) {
        for (int b = a + 1; b < regions; ++b) {
          if (((side >> a) & 1) != ((side >> b) & 1)) cut.emplace_back(a, b);
        }
      }
    }
    world.At(at, EventKind::kFault, 0, [&world, cut] {
      for (auto [a, b] : cut) world.SetRegionsPartitioned(a, b, true);
    });
    world.At(heal, EventKind::kFault, 0, [&world, cut] {
      for (auto [a, b] : cut) world.SetRegionsPartitioned(a, b, false);
    });
  }
}

void ScheduleRegionFaults(World& world, uint32_t faults, int64_t window_ms) {
  Rng& rng = world.rng();
  const int crashes = (faults & kFaultCrash) != 0 ? static_cast<int>(rng.Range(0, 3)) : 0;
  for (int n = 0; n < crashes; ++n) {
    const int r = static_cast<int>(rng.Uniform(world.size()));
    const int64_t at = rng.Range(0, window_ms);
    world.At(at, EventKind::kFault, r, [&world, r] {
      Region& region = world.region(r);
      // A power cut loses what was not fsynced; only appendfsync always promises to keep every
      // acknowledged write through one, so other regions get a process crash (kill -9).
      world.Crash(region, region.fsync == repl::FsyncPolicy::kAlways);
    });
    world.At(at + rng.Range(50, 3000), EventKind::kRestart, r, nullptr);
  }
  const int jumps = (faults & kFaultClock) != 0 ? static_cast<int>(rng.Range(0, 4)) : 0;
  for (int n = 0; n < jumps; ++n) {
    const int r = static_cast<int>(rng.Uniform(world.size()));
    const int64_t by = rng.Range(-10'000, 10'000);
    world.At(rng.Range(0, window_ms), EventKind::kFault, r, [&world, r, by] {
      world.region(r).clock.offset_ms += by;
      world.Trace(fmt::format("r{} clock jumps by {} ms", r, by));
    });
  }
  const int full = (faults & kFaultDisk) != 0 ? static_cast<int>(rng.Range(0, 2)) : 0;
  for (int n = 0; n < full; ++n) {
    const int r = static_cast<int>(rng.Uniform(world.size()));
    const int64_t at = rng.Range(0, window_ms);
    const int64_t until = at + rng.Range(50, 1500);
    world.At(at, EventKind::kFault, r, [&world, r, until] {
      world.region(r).disk_full_until_ms = until;
      world.Trace(fmt::format("r{} disk full until {} ms", r, until));
    });
  }
}

// Sharded runs: CLUSTER CREATE on node 0 at the start (every shard with its regions), as an
// operator would; gossip spreads it.
void CreateCluster(World& world) {
  std::vector<std::string> args{"CLUSTER", "CREATE"};
  for (int shard = 0; shard < world.shards(); ++shard) {
    args.push_back("SHARD");
    args.push_back(World::ShardName(shard));
    for (int r = 0; r < world.regions_per_shard(); ++r) {
      args.push_back(
          fmt::format("127.0.0.1:{}", World::PortOf(shard * world.regions_per_shard() + r)));
    }
  }
  world.At(0, EventKind::kClient, 0, [&world, args] {
    if (!world.region(0).up()) return;
    auto [reply, durable] = world.Execute(world.region(0), args);
    world.Trace(fmt::format("r0 CLUSTER CREATE -> {}", reply.substr(0, reply.find('\r'))));
  });
}

// Starts CLUSTER MIGRATESLOTS of some slots `node`'s shard owns (by its own view) to another
// shard; sometimes cancels it a little later.
void StartMigration(World& world, int node, uint64_t draw) {
  Region& source = world.region(node);
  if (!source.up()) return;
  const server::ClusterTopology& topology = source.node->cluster()->topology();
  const std::vector<server::SlotRange> owned =
      topology.RangesOf(World::ShardName(world.ShardOf(node)));
  if (owned.empty()) return;
  Rng rng(draw);  // its own stream: what this node sees must not shift the world's draws
  const server::SlotRange& range = owned[rng.Uniform(owned.size())];
  const int64_t width = rng.Range(1, 4096);
  const int64_t start = rng.Range(range.start, std::max<int64_t>(range.start, range.end - width));
  const int64_t end = std::min<int64_t>(range.end, start + width - 1);
  const int shard = (world.ShardOf(node) + 1 + static_cast<int>(rng.Uniform(world.shards() - 1))) %
                    world.shards();
  const int target = world.Peer(static_cast<int>(rng.Uniform(world.size())), shard);
  std::vector<std::string> args{
      "CLUSTER",           "MIGRATESLOTS", "SLOTSRANGE",           std::to_string(start),
      std::to_string(end), "NODE",         World::NodeIdOf(target)};
  auto [reply, durable] = world.Execute(source, args);
  world.Trace(fmt::format("r{} MIGRATESLOTS {}-{} to r{} (s{}) -> {}", node, start, end, target,
                          shard, reply.substr(0, reply.find('\r'))));
}

void ScheduleMigrations(World& world, int64_t window_ms) {
  Rng& rng = world.rng();
  const int count = static_cast<int>(rng.Range(1, 2 + window_ms / 3000));
  for (int n = 0; n < count; ++n) {
    const int node = static_cast<int>(rng.Uniform(world.size()));
    const int64_t at = rng.Range(300, window_ms);
    const uint64_t draw = rng.Next();
    world.At(at, EventKind::kClient, node,
             [&world, node, draw] { StartMigration(world, node, draw); });
    if (rng.Chance(1, 4)) {
      world.At(at + rng.Range(0, 1500), EventKind::kClient, node, [&world, node] {
        if (!world.region(node).up()) return;
        auto [reply, durable] =
            world.Execute(world.region(node), {"CLUSTER", "CANCELSLOTMIGRATIONS"});
        world.Trace(
            fmt::format("r{} CANCELSLOTMIGRATIONS -> {}", node, reply.substr(0, reply.find('\r'))));
      });
    }
  }
}

void ScheduleWorkload(World& world, Workload& workload, int ops, int64_t window_ms) {
  Rng& rng = world.rng();
  for (int n = 0; n < ops; ++n) {
    const int r = static_cast<int>(rng.Uniform(world.size()));
    const bool burst = rng.Chance(1, 10);
    const bool group = !burst && rng.Chance(1, 8);
    world.At(rng.Range(0, window_ms), EventKind::kClient, r, [&world, &workload, r, burst, group] {
      if (burst) {
        workload.ConflictBurst();
      } else if (group && world.region(r).up()) {
        workload.Group(world.region(r));
      } else if (world.region(r).up()) {
        workload.Step(world.region(r));
      }
    });
  }
}

// Everything heals: partitions, lossy links, full disks; crashed regions restart.
void Heal(World& world) {
  world.Trace("HEAL: partitions healed, no more loss or duplication, every region up");
  world.net.loss_per_mille = 0;
  world.net.duplicate_per_mille = 0;
  for (int a = 0; a < world.size(); ++a) {
    world.region(a).disk_full_until_ms = 0;
    if (!world.region(a).up()) world.Start(world.region(a));
    for (int b = a + 1; b < world.size(); ++b) {
      if (!world.SameShard(a, b)) continue;
      world.SetPartitioned(a, b, false);
      world.ScheduleConnect(a, b, 1);
    }
  }
  for (int a = 0; a < world.regions_per_shard(); ++a) {
    for (int b = a + 1; b < world.regions_per_shard(); ++b)
      world.SetRegionsPartitioned(a, b, false);
  }
}

// The slot owners as a node sees them, for comparing slot maps.
std::vector<std::string> SlotMap(const server::Cluster& cluster) {
  std::vector<std::string> owners;
  for (uint32_t slot = 0; slot < kSlotCount; ++slot) {
    owners.push_back(cluster.topology().owner(static_cast<uint16_t>(slot)).shard);
  }
  return owners;
}

// Sharded runs are quiet when no migration is running, no slot is paused or unconfirmed, and
// every node sees the same slot map.
std::string ClusterUnquiet(World& world) {
  const std::vector<std::string> reference = SlotMap(*world.region(0).node->cluster());
  for (int n = 0; n < world.size(); ++n) {
    const server::Cluster& cluster = *world.region(n).node->cluster();
    for (const server::MigrationJob& job : cluster.jobs()) {
      if (!job.terminal()) {
        return fmt::format("r{} migration {} is {}", n, job.name,
                           server::MigrationStateName(job.state));
      }
    }
    const auto& paused = cluster.paused();
    if (std::find(paused.begin(), paused.end(), true) != paused.end() ||
        cluster.any_unconfirmed()) {
      return fmt::format("r{} has paused or unconfirmed slots", n);
    }
    if (const std::vector<std::string> map = SlotMap(cluster); map != reference) {
      const size_t slot = static_cast<size_t>(
          std::mismatch(map.begin(), map.end(), reference.begin()).first - map.begin());
      return fmt::format("r{} sees another slot map than r0: slot {} is '{}' there, '{}' at r0", n,
                         slot, map[slot], reference[slot]);
    }
  }
  return "";
}

// Quiet: every region up with the same applied vector (over its shard's replicas), nothing
// buffered, nothing retained (every peer acknowledged everything), every link up.
std::string Unquiet(World& world) {
  for (int a = 0; a < world.size(); ++a) {
    Region& region = world.region(a);
    if (!region.up()) return fmt::format("r{} is down", a);
    const repl::Replicator& engine = region.replication().replicator();
    Region& first = world.region(world.ShardOf(a) * world.regions_per_shard());
    if (!first.up()) return fmt::format("r{} is down", first.index);
    // Entries of this shard's replicas: another shard's (dots a slot migration imported, which a
    // restart or a snapshot may put into an applied vector) are outside the stream, not judged.
    const crdt::VersionVector& theirs = first.replication().replicator().applied();
    const int base = world.ShardOf(a) * world.regions_per_shard();
    bool same = true;
    for (int n = base; n < base + world.regions_per_shard(); ++n) {
      same = same && engine.applied().Get(world.region(n).id) == theirs.Get(world.region(n).id);
    }
    if (!same) {
      return fmt::format("r{} applied {} but r{} applied {}", a, engine.applied().ToString(),
                         first.index, first.replication().replicator().applied().ToString());
    }
    const uint64_t retained = engine.retained_ops();
    if (engine.buffered_ops() != 0 || retained != 0) {
      return fmt::format("r{} still buffers {} and retains {} ops", a, engine.buffered_ops(),
                         engine.retained_ops());
    }
    for (int b = a + 1; b < world.size(); ++b) {
      if (world.SameShard(a, b) && !world.link(a, b).up) {
        return fmt::format("link r{}-r{} is down", a, b);
      }
    }
  }
  return world.sharded() ? ClusterUnquiet(world) : "";
}

// Every region's engine as CRDT.STATUS shows it, for a failure report.
std::string EngineStatus(World& world) {
  std::string text;
  for (int r = 0; r < world.size(); ++r) {
    Region& region = world.region(r);
    if (!region.up()) continue;
    const repl::ReplicatorStatus status = region.replication().Status(region.clock.NowMs());
    text += fmt::format("\n    r{} ({:x}) applied {} backlog {} buffered {}", r, region.id,
                        status.applied.ToString(), status.backlog_ops, status.buffered_ops);
    for (const repl::PeerStatus& peer : status.peers) {
      text += fmt::format("\n      peer {:x}: {} acked {} lag {} ops, {} resends, error '{}'",
                          peer.replica, repl::PeerStateName(peer.state), peer.acked.ToString(),
                          peer.lag_ops, peer.resends, peer.last_error);
    }
  }
  return text;
}

// `bytes` printable: other bytes as \xNN, at most 64 bytes from `from` (a bitmap is long).
std::string EscapedForReport(std::string_view bytes, size_t from = 0) {
  std::string out = from > 0 ? fmt::format("...@{} ", from) : "";
  for (size_t i = from; i < bytes.size() && i < from + 64; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    out += c >= 0x20 && c < 0x7f && c != '\\' ? std::string(1, static_cast<char>(c))
                                              : fmt::format("\\x{:02x}", c);
  }
  if (bytes.size() > from + 64) out += fmt::format("... ({} bytes)", bytes.size());
  return out;
}

std::string Render(const server::VisibleValue& v, size_t from = 0) {
  std::string text = fmt::format("type={}", static_cast<int>(v.type));
  if (!v.string.empty()) text += " string='" + EscapedForReport(v.string, from) + "'";
  for (const auto& e : v.hash) text += fmt::format(" {}={}@{}", e.field, e.value, e.ttl_at_ms);
  if (!v.set.empty()) text += fmt::format(" set={{{}}}", fmt::join(v.set, ","));
  for (const auto& [member, score] : v.zset) text += fmt::format(" {}:{}", member, score);
  if (v.expiry_ms.has_value()) text += fmt::format(" expiry={}", *v.expiry_ms);
  return text;
}

// Every region shows the same value for every key, read at the same instant (the hidden system
// db too: every region must end with the same policy table).
void CheckConvergence(World& world, int64_t at_ms, const std::vector<int>& nodes) {
  std::set<std::pair<int, std::string>> keys;
  for (int r : nodes) {
    server::Keyspace& keyspace = world.region(r).keyspace();
    for (int db = 0; db < keyspace.all_databases(); ++db) {
      keyspace.ForEach(db,
                       [&](const std::string& key, const crdt::Key&) { keys.emplace(db, key); });
    }
  }
  for (const auto& [db, key] : keys) {
    std::vector<server::VisibleValue> values;
    for (int r : nodes) {
      server::KeyRef found = world.region(r).keyspace().Find(db, key, at_ms);
      values.push_back(found == nullptr ? server::VisibleValue{}
                                        : server::ReadVisible(*found, at_ms));
    }
    for (size_t i = 1; i < values.size(); ++i) {
      if (values[i] != values[0]) {
        std::string details = fmt::format("db {} key '{}' differs:", db, key);
        const std::string& a = values[0].string;
        const std::string& b = values[i].string;
        size_t from = 0;  // around the first byte where the strings differ
        while (from < a.size() && from < b.size() && a[from] == b[from]) ++from;
        from = from > 16 ? from - 16 : 0;
        for (size_t j = 0; j < values.size(); ++j) {
          details += fmt::format("\n    r{}: {}", nodes[j], Render(values[j], from));
        }
        world.Fail("convergence", details);
        return;
      }
    }
  }
}

// A node holds keys only of slots its shard owns: a migration that failed or was cancelled left
// nothing at the target, and one that succeeded left nothing at the source.
void CheckSlotOwnership(World& world) {
  const server::ClusterTopology& topology = world.region(0).node->cluster()->topology();
  for (int n = 0; n < world.size(); ++n) {
    const std::string shard = World::ShardName(world.ShardOf(n));
    server::Keyspace& keyspace = world.region(n).keyspace();
    keyspace.ForEach(0, [&](const std::string& key, const crdt::Key&) {
      const std::string& owner = topology.owner(server::KeySlot(key)).shard;
      if (owner != shard) {
        world.Fail("slot ownership", fmt::format("r{} (shard {}) holds '{}' of slot {} owned by {}",
                                                 n, shard, key, server::KeySlot(key), owner));
      }
    });
  }
}

void Settle(World& world, Workload& workload, int64_t window_ms) {
  world.At(window_ms, EventKind::kFault, 0, [&world] { Heal(world); });
  if (!world.RunUntil(window_ms)) return;
  std::string why;
  for (int64_t t = window_ms; t <= window_ms + kQuiescenceLimitMs; t += kQuiescenceStepMs) {
    if (!world.RunUntil(t)) return;
    why = Unquiet(world);
    if (why.empty() && workload.held() != 0) {
      why = fmt::format("{} commands held by paused slots", workload.held());
    }
    if (why.empty()) break;
  }
  if (!why.empty()) {
    world.Fail("quiescence", fmt::format("not quiet {} ms after healing: {}{}", kQuiescenceLimitMs,
                                         why, EngineStatus(world)));
    return;
  }
  world.Trace("quiet: checking");
  for (int shard = 0; shard < world.shards() && !world.failure().has_value(); ++shard) {
    std::vector<int> nodes;
    for (int r = 0; r < world.regions_per_shard(); ++r) {
      nodes.push_back(shard * world.regions_per_shard() + r);
    }
    CheckConvergence(world, world.now_ms(), nodes);
  }
  if (world.failure().has_value()) return;
  if (!world.sharded()) {
    workload.Check(world.region(0), world.now_ms(), nullptr);
    return;
  }
  CheckSlotOwnership(world);
  // Every acknowledged write is read in its key's owning shard, in every region.
  const server::ClusterTopology& topology = world.region(0).node->cluster()->topology();
  for (int n = 0; n < world.size() && !world.failure().has_value(); ++n) {
    const std::string shard = World::ShardName(world.ShardOf(n));
    workload.Check(world.region(n), world.now_ms(), [&](const std::string& key) {
      return topology.owner(server::KeySlot(key)).shard == shard;
    });
  }
}

}  // namespace

std::optional<uint32_t> ParseFaults(const std::string& text, std::string* error) {
  if (text == "all") return kFaultAll;
  if (text == "none" || text.empty()) return 0;
  uint32_t faults = 0;
  std::stringstream stream(text);
  std::string word;
  while (std::getline(stream, word, ',')) {
    auto it = std::find_if(std::begin(kFaultNames), std::end(kFaultNames),
                           [&](const auto& entry) { return word == entry.first; });
    if (it == std::end(kFaultNames)) {
      *error = word;
      return std::nullopt;
    }
    faults |= it->second;
  }
  return faults;
}

std::string FaultsText(uint32_t faults) {
  std::vector<std::string> names;
  for (const auto& [name, bit] : kFaultNames) {
    if (faults & bit) names.emplace_back(name);
  }
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ","));
}

std::optional<Mutation> ParseMutation(const std::string& name) {
  for (const auto& [text, mutation] : kMutationNames) {
    if (name == text) return mutation;
  }
  return std::nullopt;
}

SimResult RunSimulation(const SimOptions& options) {
  // With --verbose, the nodes' own log (warnings and up) goes to stderr beside the trace.
  spdlog::set_level(options.verbose ? spdlog::level::warn : spdlog::level::off);
  Rng rng(options.seed);
  World world(options, rng);
  Workload workload(world);
  DrawConditions(world, options.faults);
  const int64_t window_ms = std::max<int64_t>(3000, int64_t{options.ops} * 25);
  for (int r = 0; r < world.size(); ++r) {
    world.Start(world.region(r));
    world.At(rng.Range(0, 49), EventKind::kTick, r, nullptr);
  }
  if (world.sharded()) CreateCluster(world);
  if (options.faults & kFaultPartition) SchedulePartitions(world, window_ms);
  ScheduleRegionFaults(world, options.faults, window_ms);
  ScheduleWorkload(world, workload, options.ops, window_ms);
  if (world.sharded()) ScheduleMigrations(world, window_ms);
  Settle(world, workload, window_ms);

  SimResult result;
  result.commands = workload.commands;
  result.acknowledged = workload.acknowledged;
  result.messages = world.messages;
  result.crashes = world.crashes;
  result.snapshots = world.snapshots;
  for (int r = 0; r < world.size(); ++r) {
    if (world.region(r).up()) result.purges += world.region(r).keyspace().stats().purged_keys;
  }
  result.sim_ms = world.now_ms();
  if (world.failure().has_value()) {
    result.ok = false;
    result.check = world.failure()->check;
    result.details = world.failure()->details;
  }
  if (!result.ok || options.verbose) {
    result.trace = world.TraceText(options.verbose ? SIZE_MAX : options.trace_lines);
  }
  return result;
}

std::string CurrentTrace(size_t lines) {
  return g_current_world != nullptr ? g_current_world->TraceText(lines) : "";
}

}  // namespace lattice::sim
