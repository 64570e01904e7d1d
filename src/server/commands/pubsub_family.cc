// Pub/Sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH and PUBSUB. The registry
// is server/pubsub.h; a published message also goes to the shard's other regions unless
// crdt-pubsub-region-local is set (Server::Publish, docs/semantics.md "Pub/Sub across regions").
// The subscribed-mode rules of RESP2 are Server::Execute's.

#include <string>

#include "server/pubsub.h"
#include "server/server.h"

namespace lattice::server {
namespace {

// One [kind, name, count] confirmation per name; the count is the client's channels plus
// patterns, or its shard channels for the sharded commands (Valkey's replies).
void Confirm(CommandContext& ctx, std::string_view kind, const std::string_view* name,
             bool sharded) {
  const size_t* counts = ctx.client.subscriptions;
  const size_t count =
      sharded ? counts[PubSub::kShard] : counts[PubSub::kChannel] + counts[PubSub::kPattern];
  ctx.reply.Push(3);
  ctx.reply.Bulk(kind);
  if (name != nullptr) {
    ctx.reply.Bulk(*name);
  } else {
    ctx.reply.Null();
  }
  ctx.reply.Integer(static_cast<int64_t>(count));
}

void Subscribe(CommandContext& ctx, ArgList args, PubSub::Kind kind, std::string_view confirm) {
  for (size_t i = 1; i < args.size(); ++i) {
    ctx.server.pubsub().Subscribe(ctx.client, kind, args[i]);
    Confirm(ctx, confirm, &args[i], kind == PubSub::kShard);
  }
}

void Unsubscribe(CommandContext& ctx, ArgList args, PubSub::Kind kind, std::string_view confirm) {
  PubSub& pubsub = ctx.server.pubsub();
  const bool sharded = kind == PubSub::kShard;
  if (args.size() > 1) {
    for (size_t i = 1; i < args.size(); ++i) {
      pubsub.Unsubscribe(ctx.client, kind, args[i]);
      Confirm(ctx, confirm, &args[i], sharded);
    }
    return;
  }
  const std::vector<std::string> names = pubsub.Subscriptions(ctx.client, kind);
  for (const std::string& name : names) {
    pubsub.Unsubscribe(ctx.client, kind, name);
    const std::string_view view = name;
    Confirm(ctx, confirm, &view, sharded);
  }
  if (names.empty()) Confirm(ctx, confirm, nullptr, sharded);
}

void CmdSubscribe(CommandContext& ctx, ArgList args) {
  Subscribe(ctx, args, PubSub::kChannel, "subscribe");
}
void CmdPSubscribe(CommandContext& ctx, ArgList args) {
  Subscribe(ctx, args, PubSub::kPattern, "psubscribe");
}
void CmdSSubscribe(CommandContext& ctx, ArgList args) {
  Subscribe(ctx, args, PubSub::kShard, "ssubscribe");
}
void CmdUnsubscribe(CommandContext& ctx, ArgList args) {
  Unsubscribe(ctx, args, PubSub::kChannel, "unsubscribe");
}
void CmdPUnsubscribe(CommandContext& ctx, ArgList args) {
  Unsubscribe(ctx, args, PubSub::kPattern, "punsubscribe");
}
void CmdSUnsubscribe(CommandContext& ctx, ArgList args) {
  Unsubscribe(ctx, args, PubSub::kShard, "sunsubscribe");
}

void CmdPublish(CommandContext& ctx, ArgList args) {
  ctx.reply.Integer(ctx.server.Publish(args[1], args[2], /*sharded=*/false));
}
void CmdSPublish(CommandContext& ctx, ArgList args) {
  ctx.reply.Integer(ctx.server.Publish(args[1], args[2], /*sharded=*/true));
}

void ReplyNames(CommandContext& ctx, ArgList args, PubSub::Kind kind) {
  const bool all = args.size() < 3;
  const std::vector<std::string> names = ctx.server.pubsub().Active(kind, all ? "" : args[2], all);
  ctx.reply.Array(names.size());
  for (const std::string& name : names) ctx.reply.Bulk(name);
}

void ReplyCounts(CommandContext& ctx, ArgList args, PubSub::Kind kind) {
  ctx.reply.Array(2 * (args.size() - 2));
  for (size_t i = 2; i < args.size(); ++i) {
    ctx.reply.Bulk(args[i]);
    ctx.reply.Integer(ctx.server.pubsub().Subscribers(kind, args[i]));
  }
}

void CmdPubSubChannels(CommandContext& ctx, ArgList args) {
  ReplyNames(ctx, args, PubSub::kChannel);
}
void CmdPubSubShardChannels(CommandContext& ctx, ArgList args) {
  ReplyNames(ctx, args, PubSub::kShard);
}
void CmdPubSubNumSub(CommandContext& ctx, ArgList args) {
  ReplyCounts(ctx, args, PubSub::kChannel);
}
void CmdPubSubShardNumSub(CommandContext& ctx, ArgList args) {
  ReplyCounts(ctx, args, PubSub::kShard);
}
void CmdPubSubNumPat(CommandContext& ctx, ArgList /*args*/) {
  ctx.reply.Integer(static_cast<int64_t>(ctx.server.pubsub().Count(PubSub::kPattern)));
}

void CmdPubSubHelp(CommandContext& ctx, ArgList /*args*/) {
  ReplyHelp(ctx,
            {
                "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> "
                "(default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
                "HELP",
                "    Print this help.",
            });
}

}  // namespace

void RegisterPubSubFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kSub = kPubSub | kNoScript | kLoading | kStale;
  constexpr uint32_t kAcl = kAclPubSub | kAclSlow;
  registry.Add({.name = "subscribe", .arity = -2, .flags = kSub, .acl = kAcl, .handler = &CmdSubscribe, .group = "pubsub", .summary = "Listens for messages published to channels.", .since = "2.0.0"});
  registry.Add({.name = "psubscribe", .arity = -2, .flags = kSub, .acl = kAcl, .handler = &CmdPSubscribe, .group = "pubsub", .summary = "Listens for messages published to channels that match one or more patterns.", .since = "2.0.0"});
  registry.Add({.name = "unsubscribe", .arity = -1, .flags = kSub, .acl = kAcl, .handler = &CmdUnsubscribe, .group = "pubsub", .summary = "Stops listening to messages posted to channels.", .since = "2.0.0"});
  registry.Add({.name = "punsubscribe", .arity = -1, .flags = kSub, .acl = kAcl, .handler = &CmdPUnsubscribe, .group = "pubsub", .summary = "Stops listening to messages published to channels that match one or more patterns.", .since = "2.0.0"});
  registry.Add({.name = "ssubscribe", .arity = -2, .flags = kSub, .keys = {.first = 1, .last = -1, .step = 1}, .acl = kAcl, .handler = &CmdSSubscribe, .group = "pubsub", .summary = "Listens for messages published to shard channels.", .since = "7.0.0"});
  registry.Add({.name = "sunsubscribe", .arity = -1, .flags = kSub, .keys = {.first = 1, .last = -1, .step = 1}, .acl = kAcl, .handler = &CmdSUnsubscribe, .group = "pubsub", .summary = "Stops listening to messages posted to shard channels.", .since = "7.0.0"});
  registry.Add({.name = "publish", .arity = 3, .flags = kPubSub | kLoading | kStale | kFast | kMayReplicate, .acl = kAclPubSub | kAclFast, .handler = &CmdPublish, .group = "pubsub", .summary = "Posts a message to a channel.", .since = "2.0.0"});
  registry.Add({.name = "spublish", .arity = 3, .flags = kPubSub | kLoading | kStale | kFast | kMayReplicate, .keys = {.first = 1, .last = 1, .step = 1}, .acl = kAclPubSub | kAclFast, .handler = &CmdSPublish, .group = "pubsub", .summary = "Post a message to a shard channel", .since = "7.0.0"});
  constexpr uint32_t kInfo = kPubSub | kLoading | kStale;
  registry.Add({.name = "pubsub", .arity = -2, .acl = kAclSlow, .group = "pubsub",
                .summary = "A container for Pub/Sub commands.", .since = "2.8.0",
                .subcommands = {
      {.name = "channels", .arity = -2, .flags = kInfo, .acl = kAcl, .handler = &CmdPubSubChannels, .group = "pubsub", .summary = "Returns the active channels.", .since = "2.8.0"},
      {.name = "numpat", .arity = 2, .flags = kInfo, .acl = kAcl, .handler = &CmdPubSubNumPat, .group = "pubsub", .summary = "Returns a count of unique pattern subscriptions.", .since = "2.8.0"},
      {.name = "numsub", .arity = -2, .flags = kInfo, .acl = kAcl, .handler = &CmdPubSubNumSub, .group = "pubsub", .summary = "Returns a count of subscribers to channels.", .since = "2.8.0"},
      {.name = "shardchannels", .arity = -2, .flags = kInfo, .acl = kAcl, .handler = &CmdPubSubShardChannels, .group = "pubsub", .summary = "Returns the active shard channels.", .since = "7.0.0"},
      {.name = "shardnumsub", .arity = -2, .flags = kInfo, .acl = kAcl, .handler = &CmdPubSubShardNumSub, .group = "pubsub", .summary = "Returns the count of subscribers of shard channels.", .since = "7.0.0"},
      {.name = "help", .arity = 2, .flags = kLoading | kStale, .acl = kAclSlow, .handler = &CmdPubSubHelp, .group = "pubsub", .summary = "Returns helpful text about the different subcommands.", .since = "6.2.0"},
  }});
  // clang-format on
}

}  // namespace lattice::server
