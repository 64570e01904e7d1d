#pragma once
// Tracking is server-assisted client-side caching (CLIENT TRACKING), as Valkey's tracking.c:
// - Default mode: after a read-only command of a tracking client, the keys it read are
//   remembered in a table (key name -> client ids; tracking-table-max-keys bounds it: over the
//   limit, keys are dropped with an invalidation). When a remembered key changes, each of its
//   clients gets one invalidation and the key is forgotten. OPTIN remembers only after CLIENT
//   CACHING YES, OPTOUT skips after CLIENT CACHING NO.
// - BCAST: no table; every change to a key with one of the client's prefixes (every key without
//   a prefix) is sent.
// - A change is any op on the key: a local write, an op applied from another region, an expiry
//   reclaim, a snapshot install (the Server's KeyspaceObserver calls KeyChanged). FLUSHDB and
//   FLUSHALL send one null invalidation to every tracking client (Flushed).
// - Delivery: a RESP3 push ["invalidate", [keys]] on the client itself, or with REDIRECT on the
//   target: a push when it speaks RESP3, else a message on `__redis__:invalidate` when it is in
//   Pub/Sub mode (RESP2). NOLOOP skips the changes the client made itself. Invalidations for the
//   client running the current command follow its reply (Server::PushTo).
//
// Ownership: the Server owns one Tracking; it names clients by id, so a closed client leaves
// ids behind that are skipped and dropped lazily. Event-loop thread only.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "lattice/common/result.h"
#include "resp/request_parser.h"
#include "server/command.h"

namespace lattice::server {

class Server;
struct ClientState;

class Tracking {
 public:
  explicit Tracking(Server& server) : server_(server) {}

  // Clients with tracking on (the Server's observer tests this before calling KeyChanged).
  bool active() const { return clients_ > 0; }
  size_t keys() const { return table_.size(); }
  size_t clients() const { return clients_; }

  // CLIENT TRACKING ON|OFF [options]: Valkey's checks and replies (an error text, or OK).
  Result<void> Configure(ClientState& client, ArgList args);
  // Tracking off (CLIENT TRACKING OFF, RESET, disconnection).
  void Disable(ClientState& client);

  // After `command` ran for `client` (top level, or inside EXEC): remembers the keys a read-only
  // command read; a top-level command other than CLIENT CACHING ends CACHING's scope.
  void AfterCommand(ClientState& client, const Command& command, ArgList args, bool top_level);
  // `key` changed; `writer` made the change (null: a peer, the cluster, the timer).
  void KeyChanged(std::string_view key, const ClientState* writer);
  // FLUSHDB / FLUSHALL: a null invalidation to every tracking client; the table empties.
  void Flushed();

 private:
  // Sends ["invalidate", keys] (null keys: the flush form) for `client`, to it or its redirect.
  void Send(ClientState& client, const std::vector<std::string_view>* keys);
  void Remember(ClientState& client, std::string_view key);
  void Bound();

  Server& server_;
  size_t clients_ = 0;
  absl::flat_hash_map<std::string, std::vector<uint64_t>> table_;
  std::vector<uint64_t> bcast_;  // clients in BCAST mode
};

// CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO, for the CLIENT container
// (commands/connection_family.cc).
std::vector<CommandSpec> TrackingSubcommands();

}  // namespace lattice::server
