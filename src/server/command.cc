#include "server/command.h"

#include <algorithm>
#include <utility>

#include "lattice/common/assert.h"
#include "util/ascii.h"

namespace lattice::server {

void CommandRegistry::Add(CommandSpec spec) {
  auto command = std::make_unique<Command>();
  std::string name(spec.name);
  LATTICE_ASSERT_MSG(!commands_.contains(name), "command registered twice");
  command->full_name = name;
  command->acl_id = next_acl_id_++;
  for (CommandSpec& sub_spec : spec.subcommands) {
    auto sub = std::make_unique<Command>();
    sub->full_name = name + "|" + std::string(sub_spec.name);
    sub->parent = command.get();
    sub->acl_id = next_acl_id_++;
    std::string sub_name(sub_spec.name);
    sub->spec = std::move(sub_spec);
    command->subcommands.emplace(std::move(sub_name), std::move(sub));
  }
  spec.subcommands.clear();
  command->spec = std::move(spec);
  commands_.emplace(std::move(name), std::move(command));
}

const Command* CommandRegistry::Find(std::string_view name) const {
  auto it = commands_.find(name);
  return it == commands_.end() ? nullptr : it->second.get();
}

const Command* CommandRegistry::FindSubcommand(const Command& parent, std::string_view name) const {
  auto it = parent.subcommands.find(name);
  return it == parent.subcommands.end() ? nullptr : it->second.get();
}

std::vector<const Command*> CommandRegistry::All() const {
  std::vector<const Command*> all;
  all.reserve(commands_.size());
  for (const auto& [name, command] : commands_) {
    all.push_back(command.get());
  }
  std::sort(all.begin(), all.end(),
            [](const Command* a, const Command* b) { return a->full_name < b->full_name; });
  return all;
}

std::vector<const Command*> CommandRegistry::AllWithSubcommands() const {
  std::vector<const Command*> all;
  for (const auto& [name, command] : commands_) {
    all.push_back(command.get());
    for (const auto& [sub_name, sub] : command->subcommands) {
      all.push_back(sub.get());
    }
  }
  std::sort(all.begin(), all.end(),
            [](const Command* a, const Command* b) { return a->full_name < b->full_name; });
  return all;
}

std::optional<std::vector<size_t>> KeyPositions(const Command& command, ArgList args) {
  std::vector<size_t> positions;
  const KeySpec& keys = command.spec.keys;
  const int64_t argc = static_cast<int64_t>(args.size());
  if (keys.first > 0 && keys.step > 0 && keys.first < argc) {
    int64_t last = keys.last >= 0 ? keys.last : argc + keys.last;
    last = std::min(last, argc - 1);
    for (int64_t i = keys.first; i <= last; i += keys.step) {
      positions.push_back(static_cast<size_t>(i));
    }
  }
  if (keys.streams_keyword) {
    // Valkey's xreadGetKeys: options before STREAMS, then keys and as many IDs.
    int64_t streams = 0;
    for (int64_t i = 1; i < argc; ++i) {
      const std::string_view arg = args[static_cast<size_t>(i)];
      if (EqualsIgnoreCase(arg, "block") || EqualsIgnoreCase(arg, "count")) {
        ++i;
      } else if (EqualsIgnoreCase(arg, "group")) {
        i += 2;
      } else if (EqualsIgnoreCase(arg, "noack")) {
      } else {
        if (EqualsIgnoreCase(arg, "streams")) streams = i;
        break;
      }
    }
    const int64_t num = argc - streams - 1;
    if (streams == 0 || num == 0 || num % 2 != 0) {
      return std::nullopt;
    }
    for (int64_t i = 1; i <= num / 2; ++i) {
      positions.push_back(static_cast<size_t>(streams + i));
    }
  }
  if (keys.numkeys_index > 0) {
    if (keys.numkeys_index >= argc) {
      return std::nullopt;
    }
    const std::string_view count_text = args[static_cast<size_t>(keys.numkeys_index)];
    int64_t count = 0;
    for (char c : count_text) {
      if (c < '0' || c > '9' || count > argc) {
        return std::nullopt;
      }
      count = count * 10 + (c - '0');
    }
    if (count_text.empty() || count <= 0 || keys.numkeys_index + count >= argc) {
      return std::nullopt;
    }
    for (int64_t i = 1; i <= count; ++i) {
      positions.push_back(static_cast<size_t>(keys.numkeys_index + i));
    }
  }
  return positions;
}

std::vector<std::string_view> FlagNames(uint32_t flags) {
  static constexpr std::pair<uint32_t, std::string_view> kNames[] = {
      {kWrite, "write"},
      {kReadOnly, "readonly"},
      {kDenyOom, "denyoom"},
      {kAdmin, "admin"},
      {kPubSub, "pubsub"},
      {kNoScript, "noscript"},
      {kBlocking, "blocking"},
      {kLoading, "loading"},
      {kStale, "stale"},
      {kSkipMonitor, "skip_monitor"},
      {kSkipSlowlog, "skip_slowlog"},
      {kFast, "fast"},
      {kNoAuth, "no_auth"},
      {kMayReplicate, "may_replicate"},
      {kNoMulti, "no_multi"},
      {kMovableKeys, "movablekeys"},
      {kAllowBusy, "allow_busy"},
  };
  std::vector<std::string_view> names;
  for (const auto& [bit, name] : kNames) {
    if (flags & bit) {
      names.push_back(name);
    }
  }
  return names;
}

std::vector<std::string_view> AclCategoryNames(uint32_t acl) {
  static constexpr std::pair<uint32_t, std::string_view> kNames[] = {
      {kAclKeyspace, "@keyspace"},
      {kAclRead, "@read"},
      {kAclWrite, "@write"},
      {kAclSet, "@set"},
      {kAclSortedSet, "@sortedset"},
      {kAclList, "@list"},
      {kAclHash, "@hash"},
      {kAclString, "@string"},
      {kAclBitmap, "@bitmap"},
      {kAclHyperLogLog, "@hyperloglog"},
      {kAclGeo, "@geo"},
      {kAclStream, "@stream"},
      {kAclPubSub, "@pubsub"},
      {kAclAdmin, "@admin"},
      {kAclFast, "@fast"},
      {kAclSlow, "@slow"},
      {kAclBlocking, "@blocking"},
      {kAclDangerous, "@dangerous"},
      {kAclConnection, "@connection"},
      {kAclTransaction, "@transaction"},
      {kAclScripting, "@scripting"},
  };
  std::vector<std::string_view> names;
  for (const auto& [bit, name] : kNames) {
    if (acl & bit) {
      names.push_back(name);
    }
  }
  return names;
}

}  // namespace lattice::server
