#include "server/tracking.h"

#include <algorithm>

#include "resp/errors.h"
#include "server/server.h"
#include "util/ascii.h"

namespace lattice::server {
namespace {

constexpr std::string_view kSwitchBcast =
    "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then "
    "re-enabling it with a different mode.";
constexpr std::string_view kSwitchOpt =
    "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then "
    "re-enabling it with a different mode.";

struct Options {
  bool bcast = false;
  bool optin = false;
  bool optout = false;
  bool noloop = false;
  uint64_t redirect = 0;
  std::vector<std::string> prefixes;
};

bool Overlap(std::string_view a, std::string_view b) {
  return a.starts_with(b) || b.starts_with(a);
}

// Valkey's checkPrefixCollisionsOrReply: no prefix may be a prefix of another of the client's.
Result<void> CheckPrefixes(const ClientState& client, const std::vector<std::string>& prefixes) {
  for (size_t i = 0; i < prefixes.size(); ++i) {
    for (const std::string& existing : client.tracking.prefixes) {
      if (Overlap(prefixes[i], existing)) {
        return Unexpected("ERR Prefix '" + prefixes[i] + "' overlaps with an existing prefix '" +
                          existing + "'. Prefixes for a single client must not overlap.");
      }
    }
    for (size_t j = i + 1; j < prefixes.size(); ++j) {
      if (Overlap(prefixes[i], prefixes[j])) {
        return Unexpected("ERR Prefix '" + prefixes[i] +
                          "' overlaps with another provided prefix '" + prefixes[j] +
                          "'. Prefixes for a single client must not overlap.");
      }
    }
  }
  return {};
}

}  // namespace

Result<void> Tracking::Configure(ClientState& client, ArgList args) {
  Options options;
  for (size_t i = 3; i < args.size(); ++i) {
    const std::string_view option = args[i];
    const bool more = i + 1 < args.size();
    if (EqualsIgnoreCase(option, "redirect") && more) {
      if (options.redirect != 0) {
        return Unexpected(std::string("ERR A client can only redirect to a single other client"));
      }
      int64_t id = 0;
      if (!ParseInt64(args[++i], &id)) return Unexpected(ErrorCode::kNotInteger);
      if (id <= 0 || server_.FindClient(static_cast<uint64_t>(id)) == nullptr) {
        return Unexpected(std::string("ERR The client ID you want redirect to does not exist"));
      }
      options.redirect = static_cast<uint64_t>(id);
    } else if (EqualsIgnoreCase(option, "bcast")) {
      options.bcast = true;
    } else if (EqualsIgnoreCase(option, "optin")) {
      options.optin = true;
    } else if (EqualsIgnoreCase(option, "optout")) {
      options.optout = true;
    } else if (EqualsIgnoreCase(option, "noloop")) {
      options.noloop = true;
    } else if (EqualsIgnoreCase(option, "prefix") && more) {
      options.prefixes.emplace_back(args[++i]);
    } else {
      return Unexpected(ErrorCode::kSyntax);
    }
  }
  if (EqualsIgnoreCase(args[2], "off")) {
    Disable(client);
    return {};
  }
  if (!EqualsIgnoreCase(args[2], "on")) return Unexpected(ErrorCode::kSyntax);
  ClientState::Tracking& state = client.tracking;
  if (!options.bcast && !options.prefixes.empty()) {
    return Unexpected(std::string("ERR PREFIX option requires BCAST mode to be enabled"));
  }
  if (state.on && state.bcast != options.bcast) return Unexpected(std::string(kSwitchBcast));
  if (options.bcast && (options.optin || options.optout)) {
    return Unexpected(std::string("ERR OPTIN and OPTOUT are not compatible with BCAST"));
  }
  if (options.optin && options.optout) {
    return Unexpected(std::string("ERR You can't specify both OPTIN mode and OPTOUT mode"));
  }
  if ((options.optin && state.optout) || (options.optout && state.optin)) {
    return Unexpected(std::string(kSwitchOpt));
  }
  if (options.bcast) {
    if (Result<void> checked = CheckPrefixes(client, options.prefixes); !checked.ok()) {
      return checked;
    }
  }
  // Valkey's enableTracking: the mode flags accumulate, prefixes are added.
  if (!state.on) {
    ++clients_;
    if (options.bcast) bcast_.push_back(client.id);
  }
  state.on = true;
  state.broken_redirect = false;
  state.redirect = options.redirect;
  state.bcast = state.bcast || options.bcast;
  state.optin = state.optin || options.optin;
  state.optout = state.optout || options.optout;
  state.noloop = state.noloop || options.noloop;
  for (std::string& prefix : options.prefixes) state.prefixes.push_back(std::move(prefix));
  return {};
}

void Tracking::Disable(ClientState& client) {
  if (!client.tracking.on) return;
  --clients_;
  if (client.tracking.bcast) std::erase(bcast_, client.id);
  client.tracking = ClientState::Tracking{};
}

void Tracking::AfterCommand(ClientState& client, const Command& command, ArgList args,
                            bool top_level) {
  ClientState::Tracking& state = client.tracking;
  if (!state.on) return;
  const bool caching = state.caching;
  if (top_level && !client.in_multi && command.full_name != "client|caching") {
    state.caching = false;
  }
  if (state.bcast || !(command.spec.flags & kReadOnly)) return;
  if ((state.optin && !caching) || (state.optout && caching)) return;
  const std::optional<std::vector<size_t>> keys = KeyPositions(command, args);
  if (!keys.has_value() || keys->empty()) return;
  for (size_t position : *keys) Remember(client, args[position]);
  Bound();
}

void Tracking::Remember(ClientState& client, std::string_view key) {
  std::vector<uint64_t>& ids = table_[absl::string_view(key.data(), key.size())];
  if (std::find(ids.begin(), ids.end(), client.id) == ids.end()) ids.push_back(client.id);
}

// Valkey's trackingLimitUsedSlots: over tracking-table-max-keys, keys leave the table with an
// invalidation to their clients (the table is unordered: which keys go is arbitrary).
void Tracking::Bound() {
  const size_t max_keys = server_.tracking_table_max_keys();
  while (max_keys != 0 && table_.size() > max_keys) {
    auto it = table_.begin();
    const std::string key = it->first;
    const std::vector<uint64_t> ids = std::move(it->second);
    table_.erase(it);
    const std::vector<std::string_view> keys{key};
    for (uint64_t id : ids) {
      ClientState* client = server_.FindClient(id);
      if (client != nullptr && client->tracking.on && !client->tracking.bcast) Send(*client, &keys);
    }
  }
}

void Tracking::KeyChanged(std::string_view key, const ClientState* writer) {
  const std::vector<std::string_view> keys{key};
  for (uint64_t id : bcast_) {
    ClientState* client = server_.FindClient(id);
    if (client == nullptr || (client->tracking.noloop && client == writer)) continue;
    const std::vector<std::string>& prefixes = client->tracking.prefixes;
    const bool match = prefixes.empty() || std::any_of(prefixes.begin(), prefixes.end(),
                                                       [&](const std::string& prefix) {
                                                         return key.starts_with(prefix);
                                                       });
    if (match) Send(*client, &keys);
  }
  if (table_.empty()) return;
  auto it = table_.find(absl::string_view(key.data(), key.size()));
  if (it == table_.end()) return;
  const std::vector<uint64_t> ids = std::move(it->second);
  table_.erase(it);
  for (uint64_t id : ids) {
    ClientState* client = server_.FindClient(id);
    if (client == nullptr || !client->tracking.on || client->tracking.bcast) continue;
    if (client->tracking.noloop && client == writer) continue;
    Send(*client, &keys);
  }
}

void Tracking::Flushed() {
  table_.clear();
  if (clients_ == 0) return;
  for (const auto& [id, client] : server_.clients()) {
    if (client->tracking.on) Send(*client, nullptr);
  }
}

void Tracking::Send(ClientState& client, const std::vector<std::string_view>* keys) {
  ClientState* target = &client;
  if (client.tracking.redirect != 0) {
    target = server_.FindClient(client.tracking.redirect);
    if (target == nullptr) {
      client.tracking.broken_redirect = true;
      if (client.protocol == Protocol::kResp3) {
        std::string bytes;
        ReplyBuilder reply(&bytes);
        reply.set_protocol(Protocol::kResp3);
        reply.Push(2);
        reply.Bulk("tracking-redir-broken");
        reply.Integer(static_cast<int64_t>(client.tracking.redirect));
        server_.PushTo(client, bytes);
      }
      return;
    }
  }
  const bool resp3 = target->protocol == Protocol::kResp3;
  // RESP2 has no pushes: only a redirect target in Pub/Sub mode can take the message form.
  if (!resp3 && (client.tracking.redirect == 0 || !target->subscribed())) return;
  std::string bytes;
  ReplyBuilder reply(&bytes);
  reply.set_protocol(target->protocol);
  if (resp3) {
    reply.Push(2);
    reply.Bulk("invalidate");
  } else {
    reply.Push(3);
    reply.Bulk("message");
    reply.Bulk("__redis__:invalidate");
  }
  if (keys == nullptr) {
    reply.Null();
  } else {
    reply.Array(keys->size());
    for (std::string_view key : *keys) reply.Bulk(key);
  }
  server_.PushTo(*target, bytes);
}

}  // namespace lattice::server

namespace lattice::server {
namespace {

void CmdClientTracking(CommandContext& ctx, ArgList args) {
  Result<void> done = ctx.server.tracking().Configure(ctx.client, args);
  if (!done.ok()) {
    ctx.reply.Error(done.error());
    return;
  }
  ctx.reply.Ok();
}

void CmdClientCaching(CommandContext& ctx, ArgList args) {
  ClientState::Tracking& state = ctx.client.tracking;
  if (!state.on) {
    ctx.reply.Error(
        "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or "
        "OPTOUT mode enabled");
    return;
  }
  if (EqualsIgnoreCase(args[2], "yes")) {
    if (!state.optin) {
      ctx.reply.Error(
          "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
      return;
    }
  } else if (EqualsIgnoreCase(args[2], "no")) {
    if (!state.optout) {
      ctx.reply.Error(
          "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
      return;
    }
  } else {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  state.caching = true;
  ctx.reply.Ok();
}

void CmdClientGetRedir(CommandContext& ctx, ArgList /*args*/) {
  const ClientState::Tracking& state = ctx.client.tracking;
  ctx.reply.Integer(state.on ? static_cast<int64_t>(state.redirect) : -1);
}

void CmdClientTrackingInfo(CommandContext& ctx, ArgList /*args*/) {
  const ClientState::Tracking& state = ctx.client.tracking;
  std::vector<std::string_view> flags;
  if (!state.on) {
    flags.push_back("off");
  } else {
    flags.push_back("on");
    if (state.bcast) flags.push_back("bcast");
    if (state.optin) flags.push_back("optin");
    if (state.optout) flags.push_back("optout");
    if (state.caching) flags.push_back(state.optin ? "caching-yes" : "caching-no");
    if (state.noloop) flags.push_back("noloop");
    if (state.broken_redirect) flags.push_back("broken_redirect");
  }
  ctx.reply.Map(3);
  ctx.reply.Bulk("flags");
  ctx.reply.Set(flags.size());
  for (std::string_view flag : flags) ctx.reply.Bulk(flag);
  ctx.reply.Bulk("redirect");
  ctx.reply.Integer(state.on ? static_cast<int64_t>(state.redirect) : -1);
  ctx.reply.Bulk("prefixes");
  ctx.reply.Array(state.prefixes.size());
  for (const std::string& prefix : state.prefixes) ctx.reply.Bulk(prefix);
}

}  // namespace

std::vector<CommandSpec> TrackingSubcommands() {
  // clang-format off
  constexpr uint32_t kFlags = kNoScript | kLoading | kStale;
  constexpr uint32_t kAcl = kAclConnection | kAclSlow;
  return {
      {.name = "tracking", .arity = -3, .flags = kFlags, .acl = kAcl, .handler = &CmdClientTracking, .group = "connection", .summary = "Controls server-assisted client-side caching for the connection.", .since = "6.0.0"},
      {.name = "caching", .arity = 3, .flags = kFlags, .acl = kAcl, .handler = &CmdClientCaching, .group = "connection", .summary = "Instructs the server whether to track the keys in the next request.", .since = "6.0.0"},
      {.name = "getredir", .arity = 2, .flags = kFlags, .acl = kAcl, .handler = &CmdClientGetRedir, .group = "connection", .summary = "Returns the client ID to which the connection's tracking notifications are redirected.", .since = "6.0.0"},
      {.name = "trackinginfo", .arity = 2, .flags = kFlags, .acl = kAcl, .handler = &CmdClientTrackingInfo, .group = "connection", .summary = "Returns information about server-assisted client-side caching for the connection.", .since = "6.2.0"},
  };
  // clang-format on
}

}  // namespace lattice::server
