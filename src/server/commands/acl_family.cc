// The ACL command (SETUSER, DELUSER, GETUSER, LIST, USERS, WHOAMI, CAT, GENPASS, LOG, DRYRUN,
// LOAD, SAVE, HELP), the per-command permission check the Server runs before every command,
// the ACL LOG entries it writes, and loading users at startup (config `user` lines, aclfile).
// The users-and-rules model itself is pure, in acl.{h,cc}; this file does the ACL file I/O.

#include <random>

#include "server/acl.h"
#include "server/server.h"
#include "spdlog/spdlog.h"
#include "store/file_storage.h"

namespace lattice::server {

bool Server::CheckAcl(ClientState& client, const Command& command, ArgList args,
                      ReplyBuilder& reply) {
  const AclUser& user = acl_user(client);
  const uint32_t flags = command.spec.flags | (command.parent ? command.parent->spec.flags : 0);
  if (user.Unrestricted() && (user.all_channels || !(flags & kPubSub))) {
    return true;  // the common case: one flag test
  }
  const AclVerdict verdict = acl_.Check(user, command, args);
  if (verdict.denial == AclDenial::kNone) {
    return true;
  }
  LogAclDenial(client, verdict.denial,
               verdict.denial == AclDenial::kCommand ? command.full_name
                                                     : std::string(args[verdict.arg_index]),
               user.name);
  reply.Error("NOPERM " + AclDenialMessage(verdict, user, command, args, /*verbose=*/false));
  return false;
}

void Server::LogAclDenial(const ClientState& client, AclDenial reason, std::string object,
                          std::string username) {
  AclLogEntry entry;
  entry.reason = reason;
  entry.context = executing_multi_ || client.in_multi ? "multi" : "toplevel";
  entry.object = std::move(object);
  entry.username = std::move(username);
  entry.client_info = ClientInfoLine(*this, client);
  entry.created_ms = clock_.NowMs();
  acl_.Log(std::move(entry), static_cast<size_t>(config_.acllog_max_len()));
}

namespace {

Result<std::string> ReadFile(const std::string& path) {
  Result<FileStorage::FileAt> file = FileStorage::OpenFileAt(path);
  Result<std::string> text = file.ok() ? file->storage->ReadAll(file->name)
                                       : Result<std::string>(Unexpected(file.error()));
  if (!text.ok()) {
    // Valkey's wording names the path once and then strerror's text: the storage's message ends
    // with it ("open <path>: <reason>").
    const std::string& message = text.error().message;
    const size_t colon = message.rfind(": ");
    const std::string reason = colon == std::string::npos ? message : message.substr(colon + 2);
    return Unexpected("Error loading ACLs, opening file '" + path + "': " + reason);
  }
  return text;
}

// Through the storage seam (Valkey's ACLSaveToFile does the same dance): a temporary file beside
// `path`, synced, renamed over it, and the folder synced, so a crash leaves the old file or the
// new one, never half of one.
Result<void> WriteFileAtomically(const std::string& path, std::string_view text) {
  Result<FileStorage::FileAt> file = FileStorage::OpenFileAt(path);
  if (!file.ok()) return Unexpected("Saving ACL file for ACL SAVE: " + file.error().message);
  if (Result<void> written = file->storage->WriteAtomically(file->name, text); !written.ok()) {
    return Unexpected("Saving ACL file for ACL SAVE: " + written.error().message);
  }
  return {};
}

// A user that was deleted (or vanished in ACL LOAD) takes its connections with it; they are
// first moved to the default user, unauthenticated, so no command can run as the dead user.
void DisconnectClientsOf(Server& server, ClientState& me, const AclUser& user) {
  std::vector<ClientState*> victims;
  for (const auto& [id, client] : server.clients()) {
    if (client->acl_user == &user) victims.push_back(client);
  }
  if (me.acl_user == &user && std::find(victims.begin(), victims.end(), &me) == victims.end()) {
    victims.push_back(&me);  // a client the network layer did not register (tests)
  }
  for (ClientState* victim : victims) {
    victim->acl_user = nullptr;
    victim->user = "default";
    victim->authenticated = false;
    if (victim == &me) {
      me.close_after_reply = true;
      continue;
    }
    victim->killed = true;
    if (victim->close_hook) victim->close_hook();
  }
}

void CmdAclSetUser(CommandContext& ctx, ArgList args) {
  Result<void> set = ctx.server.acl().SetUser(args[2], args.subspan(3));
  if (!set.ok()) {
    ctx.reply.Error(set.error());
    return;
  }
  ctx.reply.Ok();
}

void CmdAclDelUser(CommandContext& ctx, ArgList args) {
  for (size_t i = 2; i < args.size(); ++i) {
    if (args[i] == "default") {
      ctx.reply.Error("ERR The 'default' user cannot be removed");
      return;
    }
  }
  const std::vector<std::string> removed = ctx.server.acl().DelUsers(
      args.subspan(2),
      [&ctx](const AclUser& user) { DisconnectClientsOf(ctx.server, ctx.client, user); });
  ctx.reply.Integer(static_cast<int64_t>(removed.size()));
}

void CmdAclGetUser(CommandContext& ctx, ArgList args) {
  const Acl& acl = ctx.server.acl();
  const AclUser* user = acl.Find(args[2]);
  if (user == nullptr) {
    ctx.reply.Null();
    return;
  }
  ReplyBuilder& reply = ctx.reply;
  reply.Map(6);
  reply.Bulk("flags");
  const std::vector<std::string_view> flags = AclFlagNames(*user);
  reply.Set(flags.size());
  for (std::string_view flag : flags) reply.Bulk(flag);
  reply.Bulk("passwords");
  reply.Array(user->passwords.size());
  for (const std::string& hash : user->passwords) reply.Bulk(hash);
  reply.Bulk("commands");
  reply.Bulk(acl.DescribeCommandRules(*user));
  reply.Bulk("keys");
  reply.Bulk(Acl::DescribeKeys(*user));
  reply.Bulk("channels");
  reply.Bulk(Acl::DescribeChannels(*user));
  reply.Bulk("selectors");
  reply.Array(0);
}

void CmdAclList(CommandContext& ctx, ArgList /*args*/) {
  const std::vector<const AclUser*> users = ctx.server.acl().Users();
  ctx.reply.Array(users.size());
  for (const AclUser* user : users) {
    ctx.reply.Bulk("user " + user->name + " " + ctx.server.acl().Describe(*user));
  }
}

void CmdAclUsers(CommandContext& ctx, ArgList /*args*/) {
  const std::vector<const AclUser*> users = ctx.server.acl().Users();
  ctx.reply.Array(users.size());
  for (const AclUser* user : users) ctx.reply.Bulk(user->name);
}

void CmdAclWhoAmI(CommandContext& ctx, ArgList /*args*/) {
  ctx.reply.Bulk(ctx.server.acl_user(ctx.client).name);
}

void CmdAclCat(CommandContext& ctx, ArgList args) {
  if (args.size() > 3) {
    ctx.reply.Error(errors::UnknownSubcommand(args[1], "acl"));
    return;
  }
  if (args.size() == 2) {
    const auto categories = AclCategories();
    ctx.reply.Array(categories.size());
    for (const auto& [name, bit] : categories) ctx.reply.Bulk(name);
    return;
  }
  const uint32_t category = AclCategoryByName(args[2]);
  if (category == 0) {
    ctx.reply.Error("ERR Unknown category '" + std::string(args[2].substr(0, 128)) + "'");
    return;
  }
  std::vector<std::string_view> names;
  for (const Command* command : ctx.server.registry().AllWithSubcommands()) {
    if (command->spec.acl & category) names.push_back(command->full_name);
  }
  ctx.reply.Array(names.size());
  for (std::string_view name : names) ctx.reply.Bulk(name);
}

void CmdAclGenPass(CommandContext& ctx, ArgList args) {
  constexpr int64_t kMaxBits = 4096;
  int64_t bits = 256;
  if (args.size() > 3) {
    ctx.reply.Error(errors::UnknownSubcommand(args[1], "acl"));
    return;
  }
  if (args.size() == 3 && !ParseInt64(args[2], &bits)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  if (bits <= 0 || bits > kMaxBits) {
    ctx.reply.Error(
        "ERR ACL GENPASS argument must be the number of bits for the output password, a positive "
        "number up to 4096");
    return;
  }
  // Passwords come from the OS's random source, never from the server's seeded Rng.
  std::random_device device;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string password(static_cast<size_t>((bits + 3) / 4), '0');
  for (char& c : password) c = kHex[device() & 15];
  ctx.reply.Bulk(password);
}

std::string_view ReasonName(AclDenial reason) {
  switch (reason) {
    case AclDenial::kCommand:
      return "command";
    case AclDenial::kKey:
      return "key";
    case AclDenial::kChannel:
      return "channel";
    case AclDenial::kAuth:
      return "auth";
    default:
      return "unknown";
  }
}

void CmdAclLog(CommandContext& ctx, ArgList args) {
  Acl& acl = ctx.server.acl();
  int64_t count = 10;
  if (args.size() > 3) {
    ctx.reply.Error(errors::UnknownSubcommand(args[1], "acl"));
    return;
  }
  if (args.size() == 3) {
    if (EqualsIgnoreCase(args[2], "reset")) {
      acl.ResetLog();
      ctx.reply.Ok();
      return;
    }
    if (!ParseInt64(args[2], &count)) {
      ctx.reply.Error(errors::kNotInteger);
      return;
    }
    count = std::max<int64_t>(count, 0);
  }
  const size_t shown = std::min(static_cast<size_t>(count), acl.log().size());
  ctx.reply.Array(shown);
  for (size_t i = 0; i < shown; ++i) {
    const AclLogEntry& entry = acl.log()[i];
    ReplyBuilder& reply = ctx.reply;
    reply.Map(10);
    reply.Bulk("count");
    reply.Integer(static_cast<int64_t>(entry.count));
    reply.Bulk("reason");
    reply.Bulk(ReasonName(entry.reason));
    reply.Bulk("context");
    reply.Bulk(entry.context);
    reply.Bulk("object");
    reply.Bulk(entry.object);
    reply.Bulk("username");
    reply.Bulk(entry.username);
    reply.Bulk("age-seconds");
    reply.Double(static_cast<double>(ctx.now_ms - entry.updated_ms) / 1000);
    reply.Bulk("client-info");
    reply.Bulk(entry.client_info);
    reply.Bulk("entry-id");
    reply.Integer(static_cast<int64_t>(entry.entry_id));
    reply.Bulk("timestamp-created");
    reply.Integer(entry.created_ms);
    reply.Bulk("timestamp-last-updated");
    reply.Integer(entry.updated_ms);
  }
}

void CmdAclDryRun(CommandContext& ctx, ArgList args) {
  const AclUser* user = ctx.server.acl().Find(args[2]);
  if (user == nullptr) {
    ctx.reply.Error("ERR User '" + std::string(args[2]) + "' not found");
    return;
  }
  const ArgList command_args = args.subspan(3);
  const Command* command = ctx.server.registry().Find(command_args[0]);
  if (command != nullptr && command->has_subcommands() && command_args.size() > 1) {
    command = ctx.server.registry().FindSubcommand(*command, command_args[1]);
  }
  if (command == nullptr) {
    ctx.reply.Error("ERR Command '" + std::string(command_args[0]) + "' not found");
    return;
  }
  if (!command->ArityOk(command_args.size())) {
    ctx.reply.Error(errors::WrongArity(command->full_name));
    return;
  }
  const AclVerdict verdict = ctx.server.acl().Check(*user, *command, command_args);
  if (verdict.denial != AclDenial::kNone) {
    ctx.reply.Bulk(AclDenialMessage(verdict, *user, *command, command_args, /*verbose=*/true));
    return;
  }
  ctx.reply.Ok();
}

constexpr std::string_view kNoAclFile =
    "ERR This instance is not configured to use an ACL file. You may want to specify users via "
    "the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a configuration "
    "file set) in order to store users in the configuration.";

void CmdAclLoad(CommandContext& ctx, ArgList /*args*/) {
  const std::string path = ctx.server.config().aclfile();
  if (path.empty()) {
    ctx.reply.Error(kNoAclFile);
    return;
  }
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) {
    ctx.reply.Error("ERR " + text.error().message);
    return;
  }
  Result<void> loaded = ctx.server.acl().Load(*text, path, [&ctx](const AclUser& user) {
    DisconnectClientsOf(ctx.server, ctx.client, user);
  });
  if (!loaded.ok()) {
    ctx.reply.Error(loaded.error());
    return;
  }
  ctx.reply.Ok();
}

void CmdAclSave(CommandContext& ctx, ArgList /*args*/) {
  const std::string path = ctx.server.config().aclfile();
  if (path.empty()) {
    ctx.reply.Error(kNoAclFile);
    return;
  }
  if (Result<void> saved = WriteFileAtomically(path, ctx.server.acl().Save()); !saved.ok()) {
    spdlog::warn("{}", saved.error().message);
    ctx.reply.Error(
        "ERR There was an error trying to save the ACLs. Please check the server logs for more "
        "information");
    return;
  }
  ctx.reply.Ok();
}

void CmdAclHelp(CommandContext& ctx, ArgList /*args*/) {
  ReplyHelp(ctx,
            {
                "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CAT [<category>]",
                "    List all commands that belong to <category>, or all command categories",
                "    when no category is specified.",
                "DELUSER <username> [<username> ...]",
                "    Delete a list of users.",
                "DRYRUN <username> <command> [<arg> ...]",
                "    Returns whether the user can execute the given command without executing the "
                "command.",
                "GETUSER <username>",
                "    Get the user's details.",
                "GENPASS [<bits>]",
                "    Generate a secure 256-bit user password. The optional `bits` argument can",
                "    be used to specify a different size.",
                "LIST",
                "    Show users details in config file format.",
                "LOAD",
                "    Reload users from the ACL file.",
                "LOG [<count> | RESET]",
                "    Show the ACL log entries.",
                "SAVE",
                "    Save the current config to the ACL file.",
                "SETUSER <username> <attribute> [<attribute> ...]",
                "    Create or modify a user with the specified attributes.",
                "USERS",
                "    List all the registered usernames.",
                "WHOAMI",
                "    Return the current connection username.",
                "HELP",
                "    Print this help.",
            });
}

}  // namespace

Result<void> LoadAclsAtStartup(Server& server) {
  const Config& config = server.config();
  const std::string path = config.aclfile();
  if (!path.empty() && !config.acl_users().empty()) {
    return Unexpected(std::string(
        "Configuring Lattice with users defined in the config file and at the same time setting "
        "an ACL file path is invalid. This setup is very likely to lead to configuration errors "
        "and security holes, please define either an ACL file or declare users directly in your "
        "config file, but not both."));
  }
  if (Result<void> users = server.acl().LoadConfigUsers(config.acl_users()); !users.ok()) {
    return Unexpected(users.error().message + ". Critical error while loading ACLs. Exiting.");
  }
  if (path.empty()) {
    return {};
  }
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return Unexpected("Aborting startup because of ACL errors: " + text.error().message);
  }
  Result<void> loaded = server.acl().Load(*text, path, [](const AclUser&) {});
  if (!loaded.ok()) {
    return Unexpected("Aborting startup because of ACL errors: " +
                      loaded.error().message.substr(4));  // without "ERR "
  }
  return {};
}

void RegisterAclFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kFlags = kNoScript | kLoading | kStale;
  constexpr uint32_t kAdminAcl = kAclAdmin | kAclSlow | kAclDangerous;
  auto admin = [&](std::string_view name, int arity, CommandHandler handler,
                   std::string_view summary) {
    return CommandSpec{.name = name, .arity = arity, .flags = kAdmin | kFlags, .acl = kAdminAcl,
                       .handler = handler, .group = "server", .summary = summary,
                       .since = "6.0.0"};
  };
  auto plain = [&](std::string_view name, int arity, CommandHandler handler,
                   std::string_view summary) {
    return CommandSpec{.name = name, .arity = arity, .flags = kFlags, .acl = kAclSlow,
                       .handler = handler, .group = "server", .summary = summary,
                       .since = "6.0.0"};
  };
  CommandSpec help = plain("help", 2, &CmdAclHelp,
                           "Returns helpful text about the different subcommands.");
  help.flags = kLoading | kStale;
  registry.Add({.name = "acl", .arity = -2, .acl = kAclSlow, .group = "server",
                .summary = "A container for Access List Control commands.", .since = "6.0.0",
                .subcommands = {
      plain("cat", -2, &CmdAclCat, "Lists the ACL categories, or the commands inside a category."),
      admin("deluser", -3, &CmdAclDelUser, "Deletes ACL users, and terminates their connections."),
      admin("dryrun", -4, &CmdAclDryRun, "Simulates the execution of a command by a user, without executing the command."),
      plain("genpass", -2, &CmdAclGenPass, "Generates a pseudorandom, secure password that can be used to identify ACL users."),
      admin("getuser", 3, &CmdAclGetUser, "Lists the ACL rules of a user."),
      admin("list", 2, &CmdAclList, "Dumps the effective rules in ACL file format."),
      admin("load", 2, &CmdAclLoad, "Reloads the rules from the configured ACL file."),
      admin("log", -2, &CmdAclLog, "Lists recent security events generated due to ACL rules."),
      admin("save", 2, &CmdAclSave, "Saves the effective ACL rules in the configured ACL file."),
      admin("setuser", -3, &CmdAclSetUser, "Creates and modifies an ACL user and its rules."),
      admin("users", 2, &CmdAclUsers, "Lists all ACL users."),
      plain("whoami", 2, &CmdAclWhoAmI, "Returns the authenticated username of the current connection."),
      help,
  }});
  // clang-format on
}

}  // namespace lattice::server
