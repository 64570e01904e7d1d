#pragma once
// INFO: renders the sections Valkey tools read (server, clients, memory, persistence, stats,
// replication, cpu, modules, errorstats, cluster, keyspace, commandstats), in Valkey's format:
// "# Section\r\nkey:value\r\n...", sections separated by a blank line. Pure apart from reading
// process figures (memory, CPU) from the OS.

#include <string>

#include "server/server.h"
#include "util/allocator.h"

namespace lattice::server {

// `sections` are the arguments after INFO (case-insensitive); empty means "default".
std::string BuildInfo(Server& server, ArgList sections);

// The memory figures INFO memory and MEMORY STATS both report (Valkey's names in comments):
// what the allocator holds, the peak and startup marks, and what Lattice counts as overhead
// (the memory at startup, the clients' pending query buffers, the op backlog kept for peers).
struct MemoryFigures {
  uint64_t used = 0;               // used_memory, total.allocated
  uint64_t rss = 0;                // used_memory_rss
  uint64_t peak = 0;               // used_memory_peak, peak.allocated
  uint64_t startup = 0;            // used_memory_startup, startup.allocated
  uint64_t client_buffers = 0;     // mem_clients_normal, clients.normal
  uint64_t backlog = 0;            // replication.backlog (the ops retained for peer regions)
  uint64_t overhead = 0;           // used_memory_overhead, overhead.total
  uint64_t dataset = 0;            // used_memory_dataset, dataset.bytes
  util::AllocatorStats allocator;  // allocator_*
};
MemoryFigures ReadMemoryFigures(Server& server);

inline constexpr std::string_view kLatticeVersion = "0.1.0";

}  // namespace lattice::server
