#pragma once
// MONITOR: the clients that asked to see every command the server runs, and the lines they get,
// in Valkey's format:
//   +<unix seconds>.<microseconds> [<db> <client addr>] "<arg>" "<arg>" ...
// (`lua` for the address of a command a script ran; arguments escaped as Valkey's sdscatrepr).
// Lattice adds the ops applied from other regions, which Valkey has no counterpart for, marked
// with the origin region in place of an address:
//   +<time> [<db> region:<name>] "crdt.apply" "<key>" "<type of the delta>"
// Which commands are shown follows Valkey: not admin commands and not those flagged
// skip-monitor; AUTH's and HELLO's secrets (and secret CONFIG SET values) read "(redacted)".
//
// The registry holds non-owning pointers; the Server removes a client when it unregisters.
// Lines go out through the client's push hook (the network layer's outbox). Not thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "resp/request_parser.h"

namespace lattice::server {

struct ClientState;

class Monitors {
 public:
  bool empty() const { return clients_.empty(); }
  size_t size() const { return clients_.size(); }
  // false when the client has no push hook (an in-process client cannot monitor).
  bool Add(ClientState* client);
  void Remove(const ClientState* client);
  // One command: `origin` is "<db> <addr>"; `redacted` a bit per argument to hide.
  void FeedCommand(int64_t now_us, std::string_view origin, ArgList args, uint64_t redacted);
  void FeedLine(const std::string& line);

 private:
  std::vector<ClientState*> clients_;
};

// The line's head: "+<seconds>.<microseconds> [<origin>]".
std::string MonitorHead(int64_t now_us, std::string_view origin);
// Appends ` "<escaped arg>"` as Valkey's sdscatrepr does.
void AppendMonitorArg(std::string& line, std::string_view arg);

}  // namespace lattice::server
