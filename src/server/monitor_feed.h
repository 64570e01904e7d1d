#pragma once
// The MONITOR feed of a command about to run (server/monitor.h): Server::ExecuteOne calls it
// before the handler, for the commands Valkey shows before they run (scripts: EVAL, FCALL and
// their variants, so their line precedes those of the commands they call). Defined in
// commands/monitor_family.cc beside Server::FeedMonitors (the feed after a command ran).

#include "resp/request_parser.h"

namespace lattice::server {

class Server;
struct ClientState;
struct Command;

void FeedMonitorsBeforeRun(Server& server, const ClientState& client, const Command& command,
                           ArgList args);

}  // namespace lattice::server
