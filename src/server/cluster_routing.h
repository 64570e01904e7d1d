#pragma once
// Cluster routing of one command: which slots its keys hash to (from the command table's key
// specs, and for EXEC from every queued command), and whether this node runs it, redirects it
// (MOVED, ASK), refuses it (CROSSSLOT, CLUSTERDOWN, TRYAGAIN) or holds the client because the
// slot is paused for a migration handoff. The slot logic itself is the cluster layer's
// (RouteKeys in cluster/cluster_topology.h); this is where it meets commands and clients.

#include "cluster/cluster.h"
#include "resp/reply_builder.h"
#include "server/client_state.h"
#include "server/command.h"

namespace lattice::server {

class CommandRegistry;

// True: run the command. False: the reply was written (a redirect or error), or the client was
// held because the slot is paused for a migration handoff (client.paused_command is set; the
// network layer retries). `inside_exec`: a command of a transaction EXEC runs, routed already
// with the whole transaction; it only ends an ASKING.
bool RouteCommand(const Cluster& cluster, const CommandRegistry& registry, ClientState& client,
                  const Command& command, ArgList args, ReplyBuilder& reply,
                  bool inside_exec = false);

}  // namespace lattice::server
