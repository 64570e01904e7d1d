#pragma once
// INFO: renders the sections Valkey tools read (server, clients, memory, persistence, stats,
// replication, cpu, modules, errorstats, cluster, keyspace, commandstats), in Valkey's format:
// "# Section\r\nkey:value\r\n...", sections separated by a blank line. Pure apart from reading
// process figures (memory, CPU) from the OS.

#include <string>

#include "server/server.h"

namespace lattice::server {

// `sections` are the arguments after INFO (case-insensitive); empty means "default".
std::string BuildInfo(Server& server, ArgList sections);

inline constexpr std::string_view kLatticeVersion = "0.1.0";

}  // namespace lattice::server
