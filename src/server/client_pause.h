#pragma once
// ClientPause is CLIENT PAUSE's state: until `end_ms`, this region's clients may not run
// commands (mode ALL) or commands that write (mode WRITE: write commands, and those that may
// replicate: PUBLISH, PFCOUNT, EVAL/EVALSHA/FCALL of scripts without the no-writes flag, an EXEC
// of a transaction holding any of these). A held command waits in the blocking registry
// (Server::HoldPaused) and runs when the pause ends, in the order the clients were held. Ops
// applied from other regions are not paused: the pause holds this region's clients, as Valkey's
// holds its clients but not its replication. Owned by the Server; event-loop thread only.

#include <cstdint>
#include <string_view>

#include "resp/request_parser.h"

namespace lattice::server {

struct ClientState;
struct Command;
class CommandRegistry;
class ScriptEngine;

class ClientPause {
 public:
  // CLIENT PAUSE: a pause already running keeps its later end and its stricter mode (Valkey).
  void Pause(int64_t end_ms, bool all, int64_t now_ms);
  void Unpause() { end_ms_ = 0; }
  // True while a pause runs (an ended one is cleared by the Server's cron through Expired()).
  bool active() const { return end_ms_ != 0; }
  bool Expired(int64_t now_ms) const { return end_ms_ != 0 && now_ms >= end_ms_; }
  bool all() const { return all_; }
  int64_t end_ms() const { return end_ms_; }
  // Whether `command` (args: the whole command line) from `client` must wait for the pause.
  bool Holds(const ClientState& client, const Command& command, ArgList args,
             const CommandRegistry& registry, ScriptEngine& scripting) const;

 private:
  int64_t end_ms_ = 0;  // 0: not paused
  bool all_ = false;
};

}  // namespace lattice::server
