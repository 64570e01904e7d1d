#include "server/info.h"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "fmt/format.h"
#include "server/rdb_import.h"
#include "server/replica_of.h"
#include "server/scripting/script_engine.h"
#include "server/sync_replicas.h"
#include "store/replication.h"
#include "util/allocator.h"

namespace lattice::server {
namespace {

using Lines = std::string;

void Add(Lines& out, std::string_view key, std::string_view value) {
  out.append(key).append(":").append(value).append("\r\n");
}
void Add(Lines& out, std::string_view key, uint64_t value) { Add(out, key, std::to_string(value)); }
void AddSigned(Lines& out, std::string_view key, int64_t value) {
  Add(out, key, std::to_string(value));
}

std::string HumanBytes(uint64_t bytes) {
  const double value = static_cast<double>(bytes);
  if (bytes < 1024) return fmt::format("{}B", bytes);
  if (bytes < 1024ULL * 1024) return fmt::format("{:.2f}K", value / 1024);
  if (bytes < 1024ULL * 1024 * 1024) return fmt::format("{:.2f}M", value / (1024.0 * 1024));
  return fmt::format("{:.2f}G", value / (1024.0 * 1024 * 1024));
}

std::string ExecutablePath() {
  std::error_code error;
  const auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? "" : path.string();
}

uint64_t TotalSystemMemory() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0 ? static_cast<uint64_t>(pages) * page_size : 0;
}

std::string Percent(uint64_t part, uint64_t whole) {
  return fmt::format(
      "{:.2f}%", whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

uint64_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

void ServerSection(Server& server, Lines& out) {
  const Config& config = server.config();
  struct utsname name {};
  uname(&name);
  const int64_t now_us = server.clock().NowUs();
  const int64_t uptime_s = (now_us / 1000 - server.start_ms()) / 1000;
  Add(out, "redis_version", "7.2.4");
  Add(out, "server_name", "valkey");
  Add(out, "valkey_version", kValkeyVersion);
  Add(out, "lattice_version", kLatticeVersion);
  Add(out, "redis_git_sha1", "00000000");
  Add(out, "redis_mode", config.cluster_enabled() ? "cluster" : "standalone");
  Add(out, "server_mode", config.cluster_enabled() ? "cluster" : "standalone");
  Add(out, "os", fmt::format("{} {} {}", name.sysname, name.release, name.machine));
  Add(out, "arch_bits", "64");
  Add(out, "multiplexing_api", "epoll");
  Add(out, "gcc_version", fmt::format("{}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__));
  AddSigned(out, "process_id", getpid());
  Add(out, "run_id", server.run_id());
  AddSigned(out, "tcp_port", config.port());
  AddSigned(out, "server_time_usec", now_us);
  AddSigned(out, "uptime_in_seconds", uptime_s);
  AddSigned(out, "uptime_in_days", uptime_s / 86400);
  AddSigned(out, "hz", config.hz());
  AddSigned(out, "configured_hz", config.hz());
  // Valkey's LRU clock: seconds, 24 bits.
  AddSigned(out, "lru_clock", (now_us / 1'000'000) & ((int64_t{1} << 24) - 1));
  Add(out, "executable", ExecutablePath());
  Add(out, "config_file", config.config_file());
  Add(out, "monotonic_clock", "POSIX clock_gettime");
  Add(out, "atomicvar_api", "c11-builtin");
  Add(out, "process_supervised", "no");
  Add(out, "redis_build_id", "0");
  Add(out, "redis_git_dirty", "0");
}

void ClientsSection(Server& server, Lines& out) {
  Add(out, "connected_clients", server.clients().size());
  AddSigned(out, "maxclients", server.config().maxclients());
  Add(out, "blocked_clients", server.blocking().size());
  Add(out, "tracking_clients", "0");
  Add(out, "pubsub_clients", server.pubsub().clients());
  size_t watching = 0;
  size_t max_query_buffer = 0;
  for (const auto& [id, client] : server.clients()) {
    watching += client->watched.empty() ? 0 : 1;
    max_query_buffer = std::max(max_query_buffer, client->query_buffer_bytes);
  }
  Add(out, "watching_clients", watching);
  Add(out, "clients_in_timeout_table", server.blocking().with_timeout());
  Add(out, "total_watched_keys", server.watched_keys());
  Add(out, "total_blocking_keys", server.blocking().blocking_keys());
  Add(out, "total_blocking_keys_on_nokey", "0");
  Add(out, "client_recent_max_input_buffer", max_query_buffer);
  Add(out, "client_recent_max_output_buffer", "0");
  const ClientPause& pause = server.client_pause();  // Valkey 8's fields
  Add(out, "paused_reason", pause.active() ? "client_pause" : "none");
  Add(out, "paused_actions", !pause.active() ? "none" : pause.all() ? "all" : "write");
  const int64_t now_ms = server.clock().NowMs();
  const int64_t left_ms = pause.active() ? std::max<int64_t>(0, pause.end_ms() - now_ms) : 0;
  AddSigned(out, "paused_timeout_milliseconds", left_ms);
}

std::string Ratio(uint64_t numerator, uint64_t denominator) {
  return fmt::format(
      "{:.2f}",
      denominator == 0 ? 0.0 : static_cast<double>(numerator) / static_cast<double>(denominator));
}

int64_t Difference(uint64_t a, uint64_t b) {
  return static_cast<int64_t>(a) - static_cast<int64_t>(b);
}

}  // namespace

MemoryFigures ReadMemoryFigures(Server& server) {
  MemoryFigures m;
  m.allocator = util::ReadAllocatorStats();
  m.used = m.allocator.allocated;
  m.rss = RssBytes();
  m.peak = server.metrics().ObserveMemory(m.used);
  m.startup = server.metrics().startup();
  for (const auto& [id, client] : server.clients()) m.client_buffers += client->query_buffer_bytes;
  if (const Replication* replication = server.replication()) {
    m.backlog = replication->replicator().retained_bytes();  // Status walks the retained ops
  }
  m.overhead = std::min(m.used, m.startup + m.client_buffers + m.backlog);
  m.dataset = m.used - m.overhead;
  return m;
}

namespace {

// Valkey's memory fields, from the allocator's statistics (util/allocator.h): used_memory is
// what the program holds; the ratios show what the allocator (active/allocated: fragmentation
// inside its pages; resident/active) and the rest of the process (rss/resident) add on top.
void MemorySection(Server& server, Lines& out) {
  const MemoryFigures m = ReadMemoryFigures(server);
  const util::AllocatorStats& heap = m.allocator;
  const uint64_t used = m.used;
  const uint64_t rss = m.rss;
  Add(out, "used_memory", used);
  Add(out, "used_memory_human", HumanBytes(used));
  Add(out, "used_memory_rss", rss);
  Add(out, "used_memory_rss_human", HumanBytes(rss));
  Add(out, "used_memory_peak", m.peak);
  Add(out, "used_memory_peak_human", HumanBytes(m.peak));
  Add(out, "used_memory_peak_perc", Percent(used, m.peak));
  // Overhead as far as Lattice tells it apart: the memory at startup (before any data was
  // loaded), the clients' pending query buffers and the ops kept for peer regions; the dataset
  // is the rest.
  Add(out, "used_memory_overhead", m.overhead);
  Add(out, "used_memory_startup", m.startup);
  Add(out, "used_memory_dataset", m.dataset);
  Add(out, "used_memory_dataset_perc", Percent(m.dataset, used - std::min(used, m.startup)));
  const uint64_t system = TotalSystemMemory();
  Add(out, "total_system_memory", system);
  Add(out, "total_system_memory_human", HumanBytes(system));
  Add(out, "mem_clients_normal", m.client_buffers);
  Add(out, "mem_clients_slaves", "0");
  Add(out, "mem_not_counted_for_evict", server.evictor().NotCounted());
  Add(out, "lazyfree_pending_objects", "0");
  Add(out, "lazyfreed_objects", "0");
  Add(out, "active_defrag_running", "0");
  Add(out, "maxmemory", server.config().maxmemory());
  Add(out, "maxmemory_human", HumanBytes(server.config().maxmemory()));
  Add(out, "maxmemory_policy", EvictionPolicyName(server.evictor().settings().policy));
  Add(out, "allocator_allocated", heap.allocated);
  Add(out, "allocator_active", heap.active);
  Add(out, "allocator_resident", heap.resident);
  Add(out, "allocator_mapped", heap.mapped);
  Add(out, "allocator_retained", heap.retained);
  Add(out, "allocator_frag_ratio", Ratio(heap.active, heap.allocated));
  AddSigned(out, "allocator_frag_bytes", Difference(heap.active, heap.allocated));
  Add(out, "allocator_rss_ratio", Ratio(heap.resident, heap.active));
  AddSigned(out, "allocator_rss_bytes", Difference(heap.resident, heap.active));
  Add(out, "rss_overhead_ratio", Ratio(rss, heap.resident));
  AddSigned(out, "rss_overhead_bytes", Difference(rss, heap.resident));
  Add(out, "mem_fragmentation_ratio", Ratio(rss, used));
  AddSigned(out, "mem_fragmentation_bytes", Difference(rss, used));
  Add(out, "mem_allocator", util::AllocatorName());
  for (const auto& [name, value] : server.scripting().InfoFields()) Add(out, name, value);
}

// The op log stands where Valkey's AOF does: every applied op, synced per appendfsync.
void PersistenceSection(Server& server, Lines& out) {
  const Replication* replication = server.replication();
  Persistence& persistence = server.persistence();
  persistence.Refresh();
  const auto status = [](bool ok) { return ok ? "ok" : "err"; };
  Add(out, "loading", server.loading().active() ? "1" : "0");
  Add(out, "async_loading", "0");
  Add(out, "rdb_changes_since_last_save", persistence.changes_since_last_save());
  Add(out, "rdb_bgsave_in_progress", persistence.bgsave_in_progress() ? "1" : "0");
  Add(out, "aof_enabled", replication != nullptr ? "1" : "0");
  Add(out, "aof_rewrite_in_progress", persistence.rewrite_in_progress() ? "1" : "0");
  for (const auto& [name, value] : server.loading().InfoFields()) Add(out, name, value);
  if (replication == nullptr) {
    return;
  }
  const ReplicationStats& stats = replication->stats();
  Add(out, "aof_last_write_status", "ok");  // a failed write exits, as under appendfsync always
  // A snapshot stands where an RDB save does (the op log is compacted into it).
  AddSigned(out, "rdb_last_save_time", persistence.last_save_s());
  Add(out, "rdb_last_bgsave_status", status(persistence.last_bgsave_ok()));
  AddSigned(out, "rdb_last_bgsave_time_sec", persistence.last_bgsave_time_s());
  AddSigned(out, "rdb_current_bgsave_time_sec", persistence.current_bgsave_time_s());
  Add(out, "rdb_saves", stats.snapshots_written);
  Add(out, "rdb_last_cow_size", "0");
  Add(out, "rdb_last_load_keys_expired", "0");
  Add(out, "rdb_last_load_keys_loaded", stats.recovered_keys);
  Add(out, "aof_rewrite_scheduled", persistence.rewrite_scheduled() ? "1" : "0");
  Add(out, "aof_rewrites", persistence.rewrites());
  for (const char* field :
       {"aof_rewrites_consecutive_failures", "aof_last_cow_size", "module_fork_in_progress",
        "module_fork_last_cow_size", "current_cow_peak", "current_cow_size", "current_cow_size_age",
        "current_fork_perc", "current_save_keys_processed", "current_save_keys_total"}) {
    Add(out, field, "0");
  }
  AddSigned(out, "aof_last_rewrite_time_sec", persistence.last_rewrite_time_s());
  AddSigned(out, "aof_current_rewrite_time_sec", persistence.current_rewrite_time_s());
  Add(out, "aof_last_bgrewrite_status", status(persistence.last_rewrite_ok()));
  Add(out, "crdt_appendfsync", repl::FsyncPolicyName(replication->options().fsync));
  Add(out, "crdt_log_records", stats.log_records);
  Add(out, "crdt_log_bytes", stats.log_bytes);
  Add(out, "crdt_log_bytes_since_snapshot", stats.log_bytes_since_snapshot);
  Add(out, "crdt_snapshots_written", stats.snapshots_written);
  Add(out, "crdt_last_snapshot_bytes", stats.last_snapshot_bytes);
  // The child writing a checkpoint (0: none), for operators and tests that watch it.
  AddSigned(out, "crdt_checkpoint_child_pid", replication->checkpoint_child());
  Add(out, "crdt_recovered_keys", stats.recovered_keys);
  Add(out, "crdt_recovered_records", stats.recovered_records);
  Add(out, "crdt_torn_tail", stats.torn_tail.empty() ? "none" : stats.torn_tail);
}

void StatsSection(Server& server, Lines& out) {
  const ServerStats& stats = server.stats();
  const InfoMetrics& metrics = server.metrics();
  auto kbps = [&](InfoMetrics::Metric metric) {
    return fmt::format("{:.2f}", metrics.PerSecond(metric) / 1024);
  };
  Add(out, "total_connections_received", stats.total_connections_received);
  Add(out, "total_commands_processed", stats.total_commands_processed);
  Add(out, "instantaneous_ops_per_sec",
      static_cast<uint64_t>(metrics.PerSecond(InfoMetrics::kCommands) + 0.5));
  Add(out, "total_net_input_bytes", stats.total_net_input_bytes);
  Add(out, "total_net_output_bytes", stats.total_net_output_bytes);
  Add(out, "instantaneous_input_kbps", kbps(InfoMetrics::kNetInputBytes));
  Add(out, "instantaneous_output_kbps", kbps(InfoMetrics::kNetOutputBytes));
  uint64_t repl_in = 0;
  uint64_t repl_out = 0;
  if (const Replication* replication = server.replication()) {
    if (const PeerDirectory* directory = replication->peer_directory()) {
      for (const auto& [peer, acked] : replication->replicator().PeerAcks()) {
        repl_in += directory->BytesIn(peer);
        repl_out += directory->BytesOut(peer);
      }
    }
  }
  Add(out, "total_net_repl_input_bytes", repl_in);
  Add(out, "total_net_repl_output_bytes", repl_out);
  Add(out, "rejected_connections", stats.rejected_connections);
  Add(out, "expired_keys", stats.expired_keys);
  Add(out, "expired_fields", stats.expired_fields);
  Add(out, "expired_stale_perc", "0.00");
  Add(out, "expired_time_cap_reached_count", "0");
  Add(out, "evicted_keys", server.evictor().evicted_keys());
  Add(out, "evicted_clients", "0");
  Add(out, "total_eviction_exceeded_time", "0");
  Add(out, "current_eviction_exceeded_time", "0");
  Add(out, "keyspace_hits", stats.keyspace_hits);
  Add(out, "keyspace_misses", stats.keyspace_misses);
  Add(out, "total_error_replies", stats.total_error_replies);
  Add(out, "client_query_buffer_limit_disconnections",
      stats.client_query_buffer_limit_disconnections);
  Add(out, "client_output_buffer_limit_disconnections",
      stats.client_output_buffer_limit_disconnections);
  Add(out, "pubsub_channels", server.pubsub().Count(PubSub::kChannel));
  Add(out, "pubsub_patterns", server.pubsub().Count(PubSub::kPattern));
  Add(out, "pubsubshard_channels", server.pubsub().Count(PubSub::kShard));
  // The checkpoint children (docs/durability.md); 0 without a data dir.
  const Replication* replication = server.replication();
  const ChildProcesses* children =
      replication != nullptr ? replication->child_processes() : nullptr;
  AddSigned(out, "latest_fork_usec", children != nullptr ? children->latest_fork_us() : 0);
  Add(out, "total_forks", children != nullptr ? children->forks() : 0);
  // Features Lattice does not have yet, so truly zero: tracking, defrag.
  for (const char* zero :
       {"migrate_cached_sockets", "slave_expires_tracked_keys", "active_defrag_hits",
        "active_defrag_misses", "active_defrag_key_hits", "active_defrag_key_misses",
        "total_active_defrag_time", "current_active_defrag_time", "tracking_total_keys",
        "tracking_total_items", "tracking_total_prefixes", "unexpected_error_replies",
        "dump_payload_sanitizations", "sync_full", "sync_partial_ok", "sync_partial_err"}) {
    Add(out, zero, "0");
  }
}

// Valkey's fields first (every region is a primary: clients may write anywhere), then Lattice's:
// this replica, its vectors, and one line per peer region.
// A region following an outside primary (REPLICAOF) shows Valkey's replica fields, its offsets
// those of the primary's stream.
void ReplicaOfFields(Server& server, Lines& out) {
  const ReplicaOf& replica = server.replica_of();
  const int64_t now_ms = server.clock().NowMs();
  Add(out, "role", "slave");
  Add(out, "master_host", replica.host());
  Add(out, "master_port", std::to_string(replica.port()));
  Add(out, "master_link_status", replica.link_up() ? "up" : "down");
  AddSigned(out, "master_last_io_seconds_ago",
            replica.last_io_ms() == 0 ? -1 : (now_ms - replica.last_io_ms()) / 1000);
  Add(out, "master_sync_in_progress", replica.state() == ReplicaOf::State::kTransfer ? "1" : "0");
  AddSigned(out, "slave_read_repl_offset", replica.offset());
  AddSigned(out, "slave_repl_offset", replica.offset());
  Add(out, "slave_priority", "100");
  Add(out, "slave_read_only", replica.refuses_writes() ? "1" : "0");
  Add(out, "replica_announced", "1");
  Add(out, "connected_slaves", "0");
  Add(out, "master_failover_state", "no-failover");
  Add(out, "master_replid", replica.replid());
  AddSigned(out, "master_repl_offset", replica.offset());
  Add(out, "replica_of_full_syncs", replica.full_syncs());
  Add(out, "replica_of_partial_syncs", replica.partial_syncs());
  Add(out, "replica_of_commands_applied", replica.commands_applied());
  Add(out, "replica_of_commands_refused", replica.commands_refused());
}

// The Valkey replicas of this region (SYNC/PSYNC served, server/sync_replicas.h).
void SyncReplicaFields(Server& server, Lines& out) {
  const SyncReplicas& replicas = server.sync_replicas();
  Add(out, "connected_slaves", std::to_string(replicas.online()));
  size_t index = 0;
  for (const auto& r : replicas.replicas()) {
    if (r->state != SyncReplicas::State::kOnline) continue;
    const int64_t lag_s = (server.clock().NowMs() - r->ack_ms) / 1000;
    Add(out, "slave" + std::to_string(index++),
        fmt::format("ip={},port={},state=online,offset={},lag={}", r->ip, r->listening_port,
                    r->ack_offset, lag_s));
  }
  if (!replicas.replid().empty()) {
    Add(out, "master_replid", replicas.replid());
    Add(out, "sync_full_syncs", std::to_string(replicas.full_syncs()));
    Add(out, "sync_partial_syncs", std::to_string(replicas.partial_syncs()));
  }
}

void ReplicationSection(Server& server, Lines& out) {
  const bool following = server.replica_of().following();
  if (following) {
    ReplicaOfFields(server, out);
  } else {
    Add(out, "role", "master");
    SyncReplicaFields(server, out);
  }
  const Replication* replication = server.replication();
  if (replication == nullptr) {
    if (!following) AddSigned(out, "master_repl_offset", server.sync_replicas().offset());
    return;
  }
  const repl::ReplicatorStatus status = replication->Status(server.clock().NowMs());
  const PeerDirectory* directory = replication->peer_directory();
  if (!following && !server.sync_replicas().replid().empty()) {
    AddSigned(out, "master_repl_offset", server.sync_replicas().offset());  // the SYNC stream's
  } else if (!following) {
    Add(out, "master_repl_offset", status.applied.Get(status.replica));
  }
  Add(out, "crdt_replica_id", ReplicaIdText(status.replica));
  Add(out, "crdt_region", status.region);
  Add(out, "crdt_shard_id", replication->options().shard_id);
  Add(out, "crdt_applied", VectorText(status.applied));
  Add(out, "crdt_stable", VectorText(status.stable));
  Add(out, "crdt_backlog_ops", status.backlog_ops);
  Add(out, "crdt_backlog_bytes", status.backlog_bytes);
  Add(out, "crdt_purged_keys", server.keyspace().stats().purged_keys);  // docs/crdt.md
  Add(out, "crdt_buffered_ops", status.buffered_ops);
  std::string step_cpu;  // "crdt-tick=812,crdt-snapshot-slice=2304" (µs; docs/replication.md)
  for (const auto& [event, us] : server.step_cpu_max_us()) {
    step_cpu += (step_cpu.empty() ? "" : ",") + event + "=" + std::to_string(us);
  }
  Add(out, "crdt_step_cpu_max_us", step_cpu);
  Add(out, "crdt_slice_items_max", replication->stats().max_slice_items);
  size_t connected = 0;
  for (const repl::PeerStatus& peer : status.peers) {
    connected += peer.state == repl::PeerState::kConnected ? 1 : 0;
  }
  Add(out, "crdt_peers", status.peers.size());
  Add(out, "crdt_connected_peers", connected);
  for (size_t i = 0; i < status.peers.size(); ++i) {
    const repl::PeerStatus& peer = status.peers[i];
    const std::string& error = peer.last_error;
    Add(out, fmt::format("crdt_peer{}", i),
        fmt::format("id={},region={},state={},lag_ops={},lag_ms={},bytes_in={},bytes_out={},"
                    "ops_sent={},ops_received={},snapshots_sent={},stale={},last_error={}",
                    ReplicaIdText(peer.replica), peer.region, repl::PeerStateName(peer.state),
                    peer.lag_ops, peer.lag_ms, directory ? directory->BytesIn(peer.replica) : 0,
                    directory ? directory->BytesOut(peer.replica) : 0, peer.ops_sent,
                    peer.ops_received, peer.snapshots_sent,
                    peer.state == repl::PeerState::kStale ? 1 : 0, error.empty() ? "none" : error));
  }
}

// Lattice's own: conflicts the merge rules decided, by type and rule; ops applied and buffered.
void CrdtSection(Server& server, Lines& out) {
  const ConflictLog& conflicts = server.keyspace().conflicts();
  const KeyspaceStats& stats = server.keyspace().stats();
  Add(out, "crdt_conflicts", conflicts.total());
  for (const auto& [kind, count] : conflicts.counts()) {
    std::string name = kind;
    for (char& c : name) {
      if (c == '/' || c == '-') c = '_';
    }
    Add(out, "crdt_conflicts_" + name, count);
  }
  Add(out, "crdt_local_ops", stats.local_ops);
  Add(out, "crdt_remote_ops", stats.remote_ops);
  if (const Replication* replication = server.replication()) {
    const repl::ReplicatorStatus status = replication->Status(server.clock().NowMs());
    Add(out, "crdt_buffered_ops", status.buffered_ops);
    std::string step_cpu;  // "crdt-tick=812,crdt-snapshot-slice=2304" (µs; docs/replication.md)
    for (const auto& [event, us] : server.step_cpu_max_us()) {
      step_cpu += (step_cpu.empty() ? "" : ",") + event + "=" + std::to_string(us);
    }
    Add(out, "crdt_step_cpu_max_us", step_cpu);
    Add(out, "crdt_slice_items_max", replication->stats().max_slice_items);
    Add(out, "crdt_duplicate_ops", status.duplicate_ops);
    for (const auto& [origin, ahead_ms] : replication->stats().clock_ahead_ms) {
      Add(out, "crdt_clock_ahead_ms_" + ReplicaIdText(origin), std::to_string(ahead_ms));
    }
    // Remote stamps too far ahead of our wall clock for the HLC to follow (docs/replication.md).
    Add(out, "crdt_clock_max_drift_ms", server.keyspace().hlc().max_drift_ms());
    Add(out, "crdt_clock_drift_rejections", server.keyspace().hlc().drift_rejections());
  }
}

void CpuSection(Server& /*server*/, Lines& out) {
  struct rusage self {};
  getrusage(RUSAGE_SELF, &self);
  auto seconds = [](const timeval& tv) {
    return fmt::format("{}.{:06}", tv.tv_sec, static_cast<int64_t>(tv.tv_usec));
  };
  Add(out, "used_cpu_sys", seconds(self.ru_stime));
  Add(out, "used_cpu_user", seconds(self.ru_utime));
  struct rusage children {};
  getrusage(RUSAGE_CHILDREN, &children);
  Add(out, "used_cpu_sys_children", seconds(children.ru_stime));
  Add(out, "used_cpu_user_children", seconds(children.ru_utime));
  struct rusage thread {};
  getrusage(RUSAGE_THREAD, &thread);  // INFO runs on the event-loop (main) thread
  Add(out, "used_cpu_sys_main_thread", seconds(thread.ru_stime));
  Add(out, "used_cpu_user_main_thread", seconds(thread.ru_utime));
}

void ErrorStatsSection(Server& server, Lines& out) {
  for (const auto& [prefix, count] : server.stats().errors) {
    Add(out, "errorstat_" + prefix, fmt::format("count={}", count));
  }
}

void ClusterSection(Server& server, Lines& out) {
  Add(out, "cluster_enabled", server.config().cluster_enabled() ? "1" : "0");
}

void KeyspaceSection(Server& server, Lines& out) {
  constexpr size_t kTtlSamples = 1000;
  for (int db = 0; db < server.config().databases(); ++db) {
    const uint64_t keys = server.DbSize(db);
    if (keys > 0) {
      Add(out, fmt::format("db{}", db),
          fmt::format("keys={},expires={},avg_ttl={},keys_with_volatile_items={}", keys,
                      server.keyspace().VolatileCount(db),
                      server.keyspace().SampleAverageTtlMs(db, server.clock().NowMs(), kTtlSamples),
                      server.keyspace().FieldTtlKeyCount(db)));
    }
  }
}

void CommandStatsSection(Server& server, Lines& out) {
  for (const Command* command : server.registry().AllWithSubcommands()) {
    const CommandStats& stats = command->stats;
    if (stats.calls == 0 && stats.rejected_calls == 0 && stats.failed_calls == 0) {
      continue;
    }
    const double per_call =
        stats.calls == 0 ? 0.0 : static_cast<double>(stats.usec) / static_cast<double>(stats.calls);
    Add(out, "cmdstat_" + command->full_name,
        fmt::format("calls={},usec={},usec_per_call={:.2f},rejected_calls={},failed_calls={}",
                    stats.calls, stats.usec, per_call, stats.rejected_calls, stats.failed_calls));
  }
}

// Valkey's latencystats: each command's latency-tracking-info-percentiles, in microseconds.
void LatencyStatsSection(Server& server, Lines& out) {
  const std::vector<double> percentiles = server.config().latency_tracking_info_percentiles();
  for (const Command* command : server.registry().AllWithSubcommands()) {
    const LatencyHistogram& histogram = command->stats.latency;
    if (histogram.total() == 0) continue;
    std::string value;
    for (double percentile : percentiles) {
      if (!value.empty()) value += ',';
      value += fmt::format("p{}={:.3f}", percentile,
                           static_cast<double>(histogram.ValueAtPercentile(percentile)) / 1000.0);
    }
    Add(out, "latency_percentiles_usec_" + command->full_name, value);
  }
}

struct Section {
  std::string_view name;
  std::string_view title;
  void (*render)(Server&, Lines&);
  bool in_default;
};

constexpr Section kSections[] = {
    {"server", "Server", &ServerSection, true},
    {"clients", "Clients", &ClientsSection, true},
    {"memory", "Memory", &MemorySection, true},
    {"persistence", "Persistence", &PersistenceSection, true},
    {"stats", "Stats", &StatsSection, true},
    {"replication", "Replication", &ReplicationSection, true},
    {"cpu", "CPU", &CpuSection, true},
    {"crdt", "CRDT", &CrdtSection, true},
    {"modules", "Modules", nullptr, true},
    {"errorstats", "Errorstats", &ErrorStatsSection, true},
    {"cluster", "Cluster", &ClusterSection, true},
    {"keyspace", "Keyspace", &KeyspaceSection, true},
    {"commandstats", "Commandstats", &CommandStatsSection, false},
    {"latencystats", "Latencystats", &LatencyStatsSection, false},
};

std::set<std::string> Requested(ArgList sections) {
  std::set<std::string> wanted;
  std::string lowered;
  for (std::string_view section : sections) {
    const std::string name(AsciiLower(section, lowered));
    if (name == "default") {
      for (const Section& s : kSections) {
        if (s.in_default) wanted.insert(std::string(s.name));
      }
    } else if (name == "all" || name == "everything") {
      for (const Section& s : kSections) wanted.insert(std::string(s.name));
    } else {
      wanted.insert(name);
    }
  }
  return wanted;
}

}  // namespace

std::string BuildInfo(Server& server, ArgList sections) {
  static constexpr std::string_view kDefault[] = {"default"};
  const std::set<std::string> wanted = Requested(sections.empty() ? ArgList(kDefault) : sections);
  std::string out;
  for (const Section& section : kSections) {
    if (!wanted.contains(std::string(section.name))) {
      continue;
    }
    if (!out.empty()) {
      out += "\r\n";
    }
    out.append("# ").append(section.title).append("\r\n");
    if (section.render != nullptr) {
      section.render(server, out);
    }
  }
  return out;
}

}  // namespace lattice::server
