// Observability commands: SLOWLOG, LATENCY and MEMORY (docs/commands/observability.md), and the
// per-command hook that feeds them (Server::ObserveCommand: latency tracking, the slow log, the
// latency monitor).

#include <algorithm>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "server/info.h"
#include "server/server.h"
#include "util/allocator.h"

namespace lattice::server {

void Server::ApplyObservabilityConfig() {
  slowlog_threshold_us_ = config_.slowlog_log_slower_than();
  slowlog_.set_max_len(static_cast<size_t>(config_.slowlog_max_len()));
  latency_threshold_ms_ = config_.latency_monitor_threshold();
  latency_tracking_ = config_.latency_tracking();
}

void Server::AddLatencySample(std::string_view event, int64_t latency_us) {
  if (latency_threshold_ms_ > 0 && latency_us / 1000 >= latency_threshold_ms_) {
    latency_.Add(event, clock_.NowMs() / 1000, static_cast<uint64_t>(latency_us / 1000));
  }
}

void Server::AddStepCpu(std::string_view event, int64_t cpu_us) {
  auto it = step_cpu_max_us_.find(event);
  if (it == step_cpu_max_us_.end()) {
    step_cpu_max_us_.emplace(std::string(event), cpu_us);
  } else if (cpu_us > it->second) {
    it->second = cpu_us;
  }
}

uint64_t RedactedArgs(const Command& command, ArgList args) {
  const std::string& name = command.full_name;
  uint64_t mask = 0;
  if (name == "auth") {
    for (size_t i = 1; i < args.size() && i < 64; ++i) mask |= uint64_t{1} << i;
  } else if (name == "hello") {
    for (size_t i = 2; i + 2 < args.size() && i < 62; ++i) {
      if (EqualsIgnoreCase(args[i], "auth")) mask |= (uint64_t{3} << (i + 1));
    }
  } else if (name == "config|set") {
    for (size_t i = 2; i + 1 < args.size() && i + 1 < 64; i += 2) {
      for (std::string_view secret :
           {"requirepass", "masterauth", "primaryauth", "tls-key-file-pass",
            "tls-client-key-file-pass", "crdt-shard-secret"}) {
        if (EqualsIgnoreCase(args[i], secret)) mask |= uint64_t{1} << (i + 1);
      }
    }
  }
  return mask;
}

namespace {

// The slow log entry and latency event of a command that was slow or ran with the monitor on.
[[gnu::noinline]] void ObserveSlowCommand(Server& server, bool log_slow, const ClientState& client,
                                          const Command& command, ArgList args,
                                          int64_t duration_us) {
  const uint32_t flags =
      command.spec.flags | (command.parent != nullptr ? command.parent->spec.flags : 0);
  if (log_slow && !(flags & kSkipSlowlog) && server.slowlog().max_len() > 0) {
    server.slowlog().Add({.time_s = server.clock().NowUs() / 1'000'000,
                          .duration_us = duration_us,
                          .argv = SlowLogArgv(args, RedactedArgs(command, args)),
                          .peer = client.addr,
                          .name = client.name});
  }
  server.AddLatencySample((flags & kFast) ? "fast-command" : "command", duration_us);
}

}  // namespace

// The common case (nothing slow, the monitor off) costs the histogram and two compares; the rest
// is out of line so that this one stays small.
void Server::ObserveCommand(const ClientState& client, const Command& command, ArgList args,
                            int64_t duration_us) {
  if (latency_tracking_) {
    command.stats.latency.Record(static_cast<uint64_t>(duration_us) * 1000);
  }
  const bool log_slow = slowlog_threshold_us_ >= 0 && duration_us >= slowlog_threshold_us_;
  if (log_slow || latency_threshold_ms_ > 0) [[unlikely]] {
    ObserveSlowCommand(*this, log_slow, client, command, args, duration_us);
  }
  if (!monitors_.empty()) [[unlikely]] {
    FeedMonitors(client, command, args);
  }
}

namespace {

// ---- SLOWLOG ---------------------------------------------------------------------------------

void CmdSlowlogGet(CommandContext& ctx, ArgList args) {
  int64_t count = 10;
  if (args.size() == 3 && (!ParseInt64(args[2], &count) || count < -1)) {
    ctx.reply.Error("ERR count should be greater than or equal to -1");
    return;
  }
  if (args.size() > 3) {
    ctx.reply.Error(errors::WrongArity("slowlog|get"));
    return;
  }
  const auto& entries = ctx.server.slowlog().entries();
  const size_t shown =
      count < 0 ? entries.size() : std::min(entries.size(), static_cast<size_t>(count));
  ctx.reply.Array(shown);
  for (size_t i = 0; i < shown; ++i) {
    const SlowLogEntry& entry = entries[i];
    ctx.reply.Array(6);
    ctx.reply.Integer(static_cast<int64_t>(entry.id));
    ctx.reply.Integer(entry.time_s);
    ctx.reply.Integer(entry.duration_us);
    ctx.reply.Array(entry.argv.size());
    for (const std::string& arg : entry.argv) ctx.reply.Bulk(arg);
    ctx.reply.Bulk(entry.peer);
    ctx.reply.Bulk(entry.name);
  }
}

void CmdSlowlogLen(CommandContext& ctx, ArgList /*args*/) {
  ctx.reply.Integer(static_cast<int64_t>(ctx.server.slowlog().size()));
}

void CmdSlowlogReset(CommandContext& ctx, ArgList /*args*/) {
  ctx.server.slowlog().Reset();
  ctx.reply.Ok();
}

void CmdSlowlogHelp(CommandContext& ctx, ArgList /*args*/) {
  ReplyHelp(ctx,
            {"SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", "GET [<count>]",
             "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
             "    Entries are made of:",
             "    id, timestamp, time in microseconds, arguments array, client IP and port,",
             "    client name", "LEN", "    Return the length of the slowlog.", "RESET",
             "    Reset the slowlog.", "HELP", "    Print this help."});
}

// ---- LATENCY ---------------------------------------------------------------------------------

int64_t NowSeconds(const CommandContext& ctx) { return ctx.now_ms / 1000; }

void CmdLatencyLatest(CommandContext& ctx, ArgList /*args*/) {
  const auto& events = ctx.server.latency().events();
  ctx.reply.Array(events.size());
  for (const auto& [event, series] : events) {
    ctx.reply.Array(6);
    ctx.reply.Bulk(event);
    ctx.reply.Integer(series.latest().time_s);
    ctx.reply.Integer(static_cast<int64_t>(series.latest().latency_ms));
    ctx.reply.Integer(static_cast<int64_t>(series.max_ms));
    ctx.reply.Integer(static_cast<int64_t>(series.sum_ms));
    ctx.reply.Integer(static_cast<int64_t>(series.count));
  }
}

void CmdLatencyHistory(CommandContext& ctx, ArgList args) {
  const LatencyMonitor::Series* series = ctx.server.latency().Find(args[2]);
  const std::vector<LatencySample> samples =
      series == nullptr ? std::vector<LatencySample>{} : series->History();
  ctx.reply.Array(samples.size());
  for (const LatencySample& sample : samples) {
    ctx.reply.Array(2);
    ctx.reply.Integer(sample.time_s);
    ctx.reply.Integer(static_cast<int64_t>(sample.latency_ms));
  }
}

void CmdLatencyReset(CommandContext& ctx, ArgList args) {
  LatencyMonitor& monitor = ctx.server.latency();
  size_t resets = 0;
  if (args.size() == 2) {
    resets = monitor.ResetAll();
  } else {
    for (size_t i = 2; i < args.size(); ++i) resets += monitor.Reset(args[i]);
  }
  ctx.reply.Integer(static_cast<int64_t>(resets));
}

void CmdLatencyGraph(CommandContext& ctx, ArgList args) {
  const auto& events = ctx.server.latency().events();
  auto it = events.find(args[2]);
  if (it == events.end()) {
    ctx.reply.Error(fmt::format("ERR No samples available for event '{}'", args[2]));
    return;
  }
  ctx.reply.Verbatim(LatencyGraph(it->first, it->second, NowSeconds(ctx)));
}

void CmdLatencyDoctor(CommandContext& ctx, ArgList /*args*/) {
  const Config& config = ctx.server.config();
  ctx.reply.Verbatim(LatencyDoctor(ctx.server.latency(), NowSeconds(ctx),
                                   config.latency_monitor_threshold(),
                                   config.slowlog_log_slower_than(), config.slowlog_max_len()));
}

void ReplyHistogram(ReplyBuilder& reply, const Command& command) {
  const LatencyHistogram& histogram = command.stats.latency;
  reply.Bulk(command.full_name);
  reply.Map(2);
  reply.Bulk("calls");
  reply.Integer(static_cast<int64_t>(histogram.total()));
  reply.Bulk("histogram_usec");
  std::vector<std::pair<uint64_t, uint64_t>> buckets;
  histogram.ForEachBucket(
      [&](uint64_t usec, uint64_t cumulative) { buckets.emplace_back(usec, cumulative); });
  reply.Map(buckets.size());
  for (const auto& [usec, cumulative] : buckets) {
    reply.Integer(static_cast<int64_t>(usec));
    reply.Integer(static_cast<int64_t>(cumulative));
  }
}

// The commands LATENCY HISTOGRAM reports: those named (a container adds its subcommands; an
// unknown name is skipped), or all; only those with samples.
std::vector<const Command*> HistogramCommands(const CommandRegistry& registry, ArgList names) {
  std::vector<const Command*> out;
  auto add = [&](const Command* command) {
    if (command->stats.latency.total() > 0) out.push_back(command);
  };
  if (names.empty()) {
    for (const Command* command : registry.AllWithSubcommands()) add(command);
    return out;
  }
  for (std::string_view name : names) {
    const size_t bar = name.find('|');
    const Command* command = registry.Find(name.substr(0, bar));
    if (command != nullptr && bar != std::string_view::npos) {
      command = registry.FindSubcommand(*command, name.substr(bar + 1));
    }
    if (command == nullptr) continue;
    add(command);
    if (bar == std::string_view::npos) {
      for (const auto& [sub_name, sub] : command->subcommands) add(sub.get());
    }
  }
  return out;
}

void CmdLatencyHistogram(CommandContext& ctx, ArgList args) {
  const std::vector<const Command*> commands =
      HistogramCommands(ctx.server.registry(), args.subspan(2));
  ctx.reply.Map(commands.size());
  for (const Command* command : commands) ReplyHistogram(ctx.reply, *command);
}

void CmdLatencyHelp(CommandContext& ctx, ArgList /*args*/) {
  ReplyHelp(ctx,
            {"LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", "DOCTOR",
             "    Return a human readable latency analysis report.", "GRAPH <event>",
             "    Return an ASCII latency graph for the <event> class.", "HISTORY <event>",
             "    Return time-latency samples for the <event> class.", "LATEST",
             "    Return the latest latency samples for all events.", "RESET [<event> ...]",
             "    Reset latency data of one or more <event> classes.",
             "    (default: reset all data for all event classes)", "HISTOGRAM [COMMAND ...]",
             "    Return a cumulative distribution of latencies in the format of a histogram for "
             "the specified command names.",
             "    If no commands are specified then all histograms are replied.", "HELP",
             "    Print this help."});
}

// ---- MEMORY ----------------------------------------------------------------------------------

// MEMORY USAGE: the bytes the key's allocations occupy (their usable sizes, i.e. jemalloc's size
// classes): its table slot, its StoredKey (header, name and a compact value), and, for the full
// CRDT form, everything a copy of its crdt::Key allocates. Lattice measures the whole state, so
// SAMPLES is accepted and checked but changes nothing.
constexpr uint64_t kTableSlotBytes = sizeof(void*) + 1;  // a pointer and a control byte

uint64_t KeyUsageBytes(const KeyRef& key) {
  uint64_t bytes = kTableSlotBytes + util::UsableSize(key.stored());
  if (const crdt::Key* full = key.full()) {
    const uint64_t before = util::ThreadAllocatedBytes();
    auto copy = std::make_unique<crdt::Key>(*full);
    bytes += util::ThreadAllocatedBytes() - before;
  }
  return bytes;
}

void CmdMemoryUsage(CommandContext& ctx, ArgList args) {
  for (size_t i = 3; i < args.size(); i += 2) {
    if (!EqualsIgnoreCase(args[i], "samples") || i + 1 >= args.size()) {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
    int64_t samples = 0;
    if (!ParseInt64(args[i + 1], &samples)) {
      ctx.reply.Error(errors::kNotInteger);
      return;
    }
    if (samples < 0) {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
  }
  const Result<KeyRef> key = ctx.Peek(args[2]);
  if (!key.ok() || *key == nullptr) {
    ctx.reply.Null();
    return;
  }
  ctx.reply.Integer(static_cast<int64_t>(KeyUsageBytes(*key)));
}

double Ratio(uint64_t a, uint64_t b) {
  return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
}

int64_t Minus(uint64_t a, uint64_t b) { return static_cast<int64_t>(a) - static_cast<int64_t>(b); }

// Valkey's MEMORY STATS keys, from the figures INFO memory shows (info.h: MemoryFigures). The
// structures Lattice does not have (replica buffers, cluster links, AOF buffer) are 0.
void CmdMemoryStats(CommandContext& ctx, ArgList /*args*/) {
  Server& server = ctx.server;
  const MemoryFigures m = ReadMemoryFigures(server);
  const util::AllocatorStats& heap = m.allocator;
  uint64_t keys = 0;
  std::vector<int> dbs;
  for (int db = 0; db < server.config().databases(); ++db) {
    keys += server.DbSize(db);
    if (server.DbSize(db) > 0) dbs.push_back(db);
  }
  ReplyBuilder& r = ctx.reply;
  r.Map(28 + dbs.size());
  auto integer = [&](std::string_view name, int64_t value) {
    r.Bulk(name);
    r.Integer(value);
  };
  auto real = [&](std::string_view name, double value) {
    r.Bulk(name);
    r.Double(value);
  };
  integer("peak.allocated", static_cast<int64_t>(m.peak));
  integer("total.allocated", static_cast<int64_t>(m.used));
  integer("startup.allocated", static_cast<int64_t>(m.startup));
  integer("replication.backlog", static_cast<int64_t>(m.backlog));
  integer("clients.slaves", 0);
  integer("clients.normal", static_cast<int64_t>(m.client_buffers));
  integer("cluster.links", 0);
  integer("aof.buffer", 0);
  integer("lua.caches", 0);
  integer("functions.caches", 0);
  for (int db : dbs) {
    r.Bulk(fmt::format("db.{}", db));
    r.Map(2);
    integer("overhead.hashtable.main", static_cast<int64_t>(server.DbSize(db) * kTableSlotBytes));
    integer("overhead.hashtable.expires", 0);
  }
  integer("overhead.total", static_cast<int64_t>(m.overhead));
  integer("keys.count", static_cast<int64_t>(keys));
  integer("keys.bytes-per-key", keys == 0 ? 0 : static_cast<int64_t>(m.dataset / keys));
  integer("dataset.bytes", static_cast<int64_t>(m.dataset));
  real("dataset.percentage", 100.0 * Ratio(m.dataset, m.used - std::min(m.used, m.startup)));
  real("peak.percentage", 100.0 * Ratio(m.used, m.peak));
  integer("allocator.allocated", static_cast<int64_t>(heap.allocated));
  integer("allocator.active", static_cast<int64_t>(heap.active));
  integer("allocator.resident", static_cast<int64_t>(heap.resident));
  integer("allocator.muzzy", 0);
  real("allocator-fragmentation.ratio", Ratio(heap.active, heap.allocated));
  integer("allocator-fragmentation.bytes", Minus(heap.active, heap.allocated));
  real("allocator.rss-ratio", Ratio(heap.resident, heap.active));
  integer("allocator.rss-bytes", Minus(heap.resident, heap.active));
  real("rss-overhead.ratio", Ratio(m.rss, heap.resident));
  integer("rss-overhead.bytes", Minus(m.rss, heap.resident));
  real("fragmentation", Ratio(m.rss, m.used));
  integer("fragmentation.bytes", Minus(m.rss, m.used));
  r.Bulk("allocator.name");
  r.Bulk(util::AllocatorName());
}

// MEMORY DOCTOR: the checks Valkey's makes that apply here.
std::string MemoryDoctorReport(Server& server) {
  const MemoryFigures m = ReadMemoryFigures(server);
  constexpr uint64_t kSmall = 5 * 1024 * 1024;
  if (m.used < kSmall) {
    return "Hi Sam, this instance is empty or is using very little memory, my issues detector "
           "can't be used in these conditions. Please, leave for your mission on Earth and fill "
           "it with some data. The new Sam and I will be back to our programming as soon as I "
           "finished rebooting.\n";
  }
  std::string issues;
  if (m.peak > m.used + m.used / 2) {
    issues += fmt::format(
        " * Peak memory: In the past this instance used more than 150% the memory that is "
        "currently using ({} bytes now, {} at peak). The allocator is normally not able to "
        "release memory after a peak, so you can expect to see a big fragmentation ratio.\n\n",
        m.used, m.peak);
  }
  if (Ratio(m.allocator.active, m.allocator.allocated) > 1.1) {
    issues += fmt::format(
        " * High allocator fragmentation: This instance has an allocator external "
        "fragmentation greater than 1.1 ({:.2f}). MEMORY PURGE may return some of it.\n\n",
        Ratio(m.allocator.active, m.allocator.allocated));
  }
  if (Ratio(m.rss, m.used) > 1.4) {
    issues += fmt::format(
        " * High total RSS: This instance has a memory fragmentation and RSS overhead greater "
        "than 1.4 ({:.2f}).\n\n",
        Ratio(m.rss, m.used));
  }
  if (m.client_buffers > m.used / 5) {
    issues +=
        " * Big client buffers: The clients' pending query buffers use more than 20% of the "
        "memory. Check CLIENT LIST (qbuf=) for clients sending large requests.\n\n";
  }
  if (issues.empty()) {
    return "Hi Sam, I can't find any memory issue in your instance. I can only account for what "
           "occurs on this base.\n";
  }
  return "Sam, I detected a few issues in this Lattice instance memory implants:\n\n" + issues +
         "I'm here to keep you safe, Sam. I want to help you.\n";
}

void CmdMemoryDoctor(CommandContext& ctx, ArgList /*args*/) {
  ctx.reply.Verbatim(MemoryDoctorReport(ctx.server));
}

void CmdMemoryMallocStats(CommandContext& ctx, ArgList /*args*/) {
  ctx.reply.Verbatim(util::AllocatorReport());
}

void CmdMemoryPurge(CommandContext& ctx, ArgList /*args*/) {
  if (util::PurgeAllocator()) {
    ctx.reply.Ok();
  } else {
    ctx.reply.Error("ERR Error purging dirty pages");
  }
}

void CmdMemoryHelp(CommandContext& ctx, ArgList /*args*/) {
  ReplyHelp(ctx, {"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", "DOCTOR",
                  "    Return memory problems reports.", "MALLOC-STATS",
                  "    Return internal statistics report from the memory allocator.", "PURGE",
                  "    Attempt to purge dirty pages for reclamation by the allocator.", "STATS",
                  "    Return information about the memory usage of the server.",
                  "USAGE <key> [SAMPLES <count>]",
                  "    Return memory in bytes used by <key> and its value. Nested values are",
                  "    sampled up to <count> times (default: 5, 0 means sample all).", "HELP",
                  "    Print this help."});
}

}  // namespace

void RegisterObservabilityFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kAdminAcl = kAclAdmin | kAclSlow | kAclDangerous;
  constexpr uint32_t kAdminFlags = kAdmin | kLoading | kStale;
  registry.Add({.name = "slowlog", .arity = -2, .acl = kAclSlow, .group = "server", .summary = "A container for slow log commands.", .since = "2.2.12",
                .subcommands = {
      {.name = "get", .arity = -2, .flags = kAdminFlags, .acl = kAdminAcl, .handler = &CmdSlowlogGet, .group = "server", .summary = "Returns the slow log's entries.", .since = "2.2.12", .complexity = "O(N) where N is the number of entries returned"},
      {.name = "len", .arity = 2, .flags = kAdminFlags, .acl = kAdminAcl, .handler = &CmdSlowlogLen, .group = "server", .summary = "Returns the number of entries in the slow log.", .since = "2.2.12", .complexity = "O(1)"},
      {.name = "reset", .arity = 2, .flags = kAdminFlags, .acl = kAdminAcl, .handler = &CmdSlowlogReset, .group = "server", .summary = "Clears all entries from the slow log.", .since = "2.2.12", .complexity = "O(N) where N is the number of entries in the slowlog"},
      {.name = "help", .arity = 2, .flags = kLoading | kStale, .acl = kAclSlow, .handler = &CmdSlowlogHelp, .group = "server", .summary = "Show helpful text about the different subcommands", .since = "6.2.0", .complexity = "O(1)"},
  }});
  registry.Add({.name = "latency", .arity = -2, .acl = kAclSlow, .group = "server", .summary = "A container for latency diagnostics commands.", .since = "2.8.13",
                .subcommands = {
      {.name = "latest", .arity = 2, .flags = kAdminFlags | kNoScript, .acl = kAdminAcl, .handler = &CmdLatencyLatest, .group = "server", .summary = "Returns the latest latency samples for all events.", .since = "2.8.13", .complexity = "O(1)"},
      {.name = "history", .arity = 3, .flags = kAdminFlags | kNoScript, .acl = kAdminAcl, .handler = &CmdLatencyHistory, .group = "server", .summary = "Returns timestamp-latency samples for an event.", .since = "2.8.13", .complexity = "O(1)"},
      {.name = "reset", .arity = -2, .flags = kAdminFlags | kNoScript, .acl = kAdminAcl, .handler = &CmdLatencyReset, .group = "server", .summary = "Resets the latency data for one or more events.", .since = "2.8.13", .complexity = "O(1)"},
      {.name = "graph", .arity = 3, .flags = kAdminFlags | kNoScript, .acl = kAdminAcl, .handler = &CmdLatencyGraph, .group = "server", .summary = "Returns a latency graph for an event.", .since = "2.8.13", .complexity = "O(1)"},
      {.name = "doctor", .arity = 2, .flags = kAdminFlags | kNoScript, .acl = kAdminAcl, .handler = &CmdLatencyDoctor, .group = "server", .summary = "Returns a human-readable latency analysis report.", .since = "2.8.13", .complexity = "O(1)"},
      {.name = "histogram", .arity = -2, .flags = kAdminFlags | kNoScript, .acl = kAdminAcl, .handler = &CmdLatencyHistogram, .group = "server", .summary = "Returns the cumulative distribution of latencies of a subset or all commands.", .since = "7.0.0", .complexity = "O(N) where N is the number of commands with latency information being retrieved."},
      {.name = "help", .arity = 2, .flags = kLoading | kStale, .acl = kAclSlow, .handler = &CmdLatencyHelp, .group = "server", .summary = "Returns helpful text about the different subcommands.", .since = "2.8.13", .complexity = "O(1)"},
  }});
  registry.Add({.name = "memory", .arity = -2, .acl = kAclSlow, .group = "server", .summary = "A container for memory diagnostics commands.", .since = "4.0.0",
                .subcommands = {
      {.name = "usage", .arity = -3, .flags = kReadOnly, .keys = {2, 2, 1}, .acl = kAclRead | kAclSlow, .handler = &CmdMemoryUsage, .group = "server", .summary = "Estimates the memory usage of a key.", .since = "4.0.0", .complexity = "O(N) where N is the number of samples."},
      {.name = "stats", .arity = 2, .flags = kReadOnly, .acl = kAclSlow, .handler = &CmdMemoryStats, .group = "server", .summary = "Returns details about memory usage.", .since = "4.0.0", .complexity = "O(1)"},
      {.name = "doctor", .arity = 2, .acl = kAclSlow, .handler = &CmdMemoryDoctor, .group = "server", .summary = "Outputs a memory problems report.", .since = "4.0.0", .complexity = "O(1)"},
      {.name = "malloc-stats", .arity = 2, .flags = kReadOnly, .acl = kAclSlow, .handler = &CmdMemoryMallocStats, .group = "server", .summary = "Returns the allocator statistics.", .since = "4.0.0", .complexity = "Depends on how much memory is allocated, could be slow"},
      {.name = "purge", .arity = 2, .acl = kAclSlow, .handler = &CmdMemoryPurge, .group = "server", .summary = "Asks the allocator to release memory.", .since = "4.0.0", .complexity = "Depends on how much memory is allocated, could be slow"},
      {.name = "help", .arity = 2, .flags = kLoading | kStale, .acl = kAclSlow, .handler = &CmdMemoryHelp, .group = "server", .summary = "Returns helpful text about the different subcommands.", .since = "4.0.0", .complexity = "O(1)"},
  }});
  // clang-format on
}

}  // namespace lattice::server
