#include "server/cluster_routing.h"

#include <optional>
#include <string>
#include <vector>

namespace lattice::server {

bool RouteCommand(const Cluster& cluster, const CommandRegistry& registry, ClientState& client,
                  const Command& command, ArgList args, ReplyBuilder& reply, bool inside_exec) {
  const bool asking = client.asking;
  client.asking = false;
  if (inside_exec) return true;
  std::vector<uint16_t> slots;
  bool write = (command.spec.flags & kWrite) != 0;
  auto add_keys = [&](const Command& cmd, ArgList cmd_args) {
    std::optional<std::vector<size_t>> positions = KeyPositions(cmd, cmd_args);
    if (!positions.has_value()) return;
    for (size_t position : *positions) slots.push_back(KeySlot(cmd_args[position]));
  };
  if (command.full_name == "exec") {
    std::vector<std::string_view> views;
    for (const std::vector<std::string>& queued : client.queued) {
      const Command* cmd = registry.Find(queued[0]);
      if (cmd != nullptr && cmd->has_subcommands() && queued.size() > 1) {
        cmd = registry.FindSubcommand(*cmd, queued[1]);
      }
      if (cmd == nullptr) continue;
      write = write || (cmd->spec.flags & kWrite) != 0;
      views.assign(queued.begin(), queued.end());
      add_keys(*cmd, views);
    }
  } else {
    add_keys(command, args);
  }
  if (slots.empty()) return true;
  const ClusterOptions& config = cluster.options();
  const ClusterNode& me = cluster.myself();
  const RouteContext context{
      .my_shard = me.shard,
      .my_region = me.region,
      .write = write,
      .asking = asking,
      .require_full_coverage = config.require_full_coverage,
      .allow_reads_when_down = config.allow_reads_when_down,
      .paused = client.in_multi && command.full_name != "exec" ? nullptr : &cluster.paused(),
      // RouteKeys judges the first key's slot (any other slot is CROSSSLOT).
      .importing = cluster.keyspace().slot_hidden(slots.front()),
      .serving = cluster.serving_prefs(),
  };
  const lattice::server::Route route = RouteKeys(cluster.topology(), slots, context);
  if (route.kind == RouteKind::kLocal && write && cluster.any_unconfirmed()) {
    for (uint16_t slot : slots) {
      if (cluster.unconfirmed()[slot]) {
        reply.Error("TRYAGAIN Slot " + std::to_string(slot) +
                    " may have moved: its migration handoff is not confirmed yet");
        return false;
      }
    }
  }
  if (route.kind == RouteKind::kLocal) return true;
  if (route.kind == RouteKind::kPaused) {
    client.paused_command.assign(args.begin(), args.end());
    return false;
  }
  reply.Error(RouteError(route));
  return false;
}

}  // namespace lattice::server
