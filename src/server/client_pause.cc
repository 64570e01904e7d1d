#include "server/client_pause.h"

#include <algorithm>
#include <string>

#include "server/client_state.h"
#include "server/command.h"
#include "server/scripting/script_engine.h"
#include "util/ascii.h"

namespace lattice::server {
namespace {

constexpr uint32_t kPausedByWrite = kWrite | kMayReplicate;

// The command a queued transaction line runs (its subcommand for containers), or null.
const Command* Resolve(const CommandRegistry& registry, ArgList args) {
  const Command* command = registry.Find(args[0]);
  if (command == nullptr || !command->has_subcommands() || args.size() < 2) return command;
  std::string lower;
  const Command* sub = registry.FindSubcommand(*command, AsciiLower(args[1], lower));
  return sub != nullptr ? sub : command;
}

bool IsScriptCall(const Command& command, bool* function) {
  const std::string& name = command.full_name;
  *function = name == "fcall";
  return name == "eval" || name == "evalsha" || *function;
}

// A command that WRITE pauses hold: flagged write or may-replicate, except scripts and functions
// declaring no-writes.
bool Writes(const Command& command, ArgList args, ScriptEngine& scripting) {
  if ((command.spec.flags & kPausedByWrite) == 0) return false;
  bool function = false;
  if (IsScriptCall(command, &function)) return scripting.MayWrite(args, function);
  return true;
}

}  // namespace

void ClientPause::Pause(int64_t end_ms, bool all, int64_t now_ms) {
  if (end_ms_ != 0 && end_ms_ > now_ms) {
    end_ms_ = std::max(end_ms_, end_ms);
    all_ = all_ || all;
    return;
  }
  end_ms_ = end_ms;
  all_ = all;
}

bool ClientPause::Holds(const ClientState& client, const Command& command, ArgList args,
                        const CommandRegistry& registry, ScriptEngine& scripting) const {
  if (end_ms_ == 0 || client.primary_link) return false;
  if (all_) return true;
  if (command.full_name != "exec") return Writes(command, args, scripting);
  for (const std::vector<std::string>& queued : client.queued) {
    const std::vector<std::string_view> line(queued.begin(), queued.end());
    const Command* runs = Resolve(registry, line);
    if (runs != nullptr && Writes(*runs, line, scripting)) return true;
  }
  return false;
}

}  // namespace lattice::server
