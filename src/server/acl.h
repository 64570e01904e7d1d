#pragma once
// Acl is the users-and-permissions model of a node, Valkey's ACL: named users, each on or off,
// with SHA-256 password hashes (or nopass), the commands it may run (a bitmap over the command
// table, built from +cmd/-cmd/+@category rules), the key patterns it may read and write, and
// the Pub/Sub channel patterns (kept and shown; Lattice has no Pub/Sub commands). It also keeps
// the ACL LOG. Rules and their texts are Valkey's (acl.c): ACL SETUSER rules, ACL LIST's
// description, the ACL file format and the error wording.
//
// Pure: no I/O, no clock (times come in), no client sockets. The command family
// (acl_family.cc) reads and writes the ACL file and replies; the Server consults Check() on
// every command. Hot path: a user with every command and every key (the default user, an admin)
// costs one flag test; others cost a bitmap test and, for commands with keys, a glob per key
// and pattern.
//
// Ownership: Acl owns its users; a user keeps its address for its whole life (SETUSER updates
// it in place, ACL LOAD updates surviving users in place), so a ClientState may point at one.
// DelUser and Load report the users they destroyed so the caller can disconnect their clients
// first. Not thread-safe: the event-loop thread owns it.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/result.h"
#include "server/command.h"

namespace lattice::server {

class Server;

// Access a key pattern grants: %R~ read, %W~ write, ~ both.
enum KeyPermission : uint8_t {
  kKeyRead = 1U << 0,
  kKeyWrite = 1U << 1,
  kKeyReadWrite = kKeyRead | kKeyWrite,
};

struct KeyPattern {
  std::string pattern;
  uint8_t permissions = kKeyReadWrite;
};

// Command bitmaps have room for this many commands and subcommands (Valkey's
// USER_COMMAND_BITS_COUNT), so an Acl can exist before the command table is complete.
inline constexpr uint32_t kAclMaxCommands = 1024;

struct AclUser {
  std::string name;
  bool enabled = false;
  bool nopass = false;
  bool sanitize_payload = true;        // shown as Valkey shows it; Lattice has no RESTORE payloads
  std::vector<std::string> passwords;  // lowercase hex SHA-256, in the order added
  // Command permissions: one bit per Command::acl_id. `all_commands` holds while no bit was
  // cleared since +@all; `future_commands` records that the rules start from +@all (ACL LIST
  // shows "+@all ..." rather than "-@all ..."). `command_rules` are the +/- rules after that
  // base, each command or category once, in order: replaying them rebuilds the bitmap.
  std::vector<uint64_t> allowed;
  bool all_commands = false;
  bool future_commands = false;
  std::vector<std::string> command_rules;
  bool all_keys = false;
  std::vector<KeyPattern> keys;
  bool all_channels = false;
  std::vector<std::string> channels;

  // True when nothing needs checking beyond the user being logged in (the common admin case).
  bool Unrestricted() const { return all_commands && all_keys; }
  bool Allows(const Command& command) const {
    const uint32_t id = command.acl_id;
    return all_commands || (id / 64 < allowed.size() && (allowed[id / 64] >> (id % 64)) & 1);
  }
};

enum class AclDenial { kNone, kCommand, kKey, kChannel, kAuth };

struct AclVerdict {
  AclDenial denial = AclDenial::kNone;
  size_t arg_index = 0;  // the key that was refused (kKey)
};

struct AclLogEntry {
  uint64_t count = 1;
  AclDenial reason = AclDenial::kCommand;
  std::string context;  // toplevel | multi
  std::string object;   // command full name, key, or "AUTH"
  std::string username;
  std::string client_info;
  uint64_t entry_id = 0;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

class Acl {
 public:
  // The registry must outlive the Acl; command and category rules are resolved against it when
  // applied. Starts with only the default user: on, nopass, ~* &* +@all.
  explicit Acl(const CommandRegistry& registry);

  // ACL SETUSER name rules...: all rules or none are applied. The error is the reply text,
  // e.g. "ERR Error in ACL SETUSER modifier 'foo': Syntax error".
  Result<void> SetUser(std::string_view name, std::span<const std::string_view> rules);
  // ACL DELUSER: the names removed. `on_remove` runs before each user is destroyed (the caller
  // moves that user's clients off it). The default user is never removed (the caller refuses).
  std::vector<std::string> DelUsers(std::span<const std::string_view> names,
                                    const std::function<void(const AclUser&)>& on_remove);
  const AclUser* Find(std::string_view name) const;
  const AclUser& default_user() const { return *default_user_; }
  // Every user, sorted by name (ACL LIST, ACL USERS, the ACL file).
  std::vector<const AclUser*> Users() const;

  // AUTH / HELLO AUTH: the user when it exists, is on, and accepts the password.
  const AclUser* Authenticate(std::string_view name, std::string_view password) const;
  // requirepass: the default user gets exactly this password ("" = nopass).
  void SetDefaultPassword(std::string_view password);

  // Whether `user` may run `command` (already resolved to its subcommand) with `args`.
  AclVerdict Check(const AclUser& user, const Command& command, ArgList args) const;

  // "user <name> <rules>" as in ACL LIST and the ACL file; the rules part alone for GETUSER.
  std::string Describe(const AclUser& user) const;
  std::string DescribeCommandRules(const AclUser& user) const;
  static std::string DescribeKeys(const AclUser& user);
  static std::string DescribeChannels(const AclUser& user);

  // Replaces every user from the text of an ACL file (`user <name> <rules>` lines), all or
  // nothing; the error is the reply text of ACL LOAD. Users that survive keep their address;
  // `on_remove` runs before each user that is gone is destroyed. `source` names the file in
  // errors. Without a default user in the text, the default user is reset to its initial rules.
  Result<void> Load(std::string_view text, std::string_view source,
                    const std::function<void(const AclUser&)>& on_remove);
  // The ACL file text for the current users.
  std::string Save() const;

  // `user` lines of the config file, applied at startup (before any aclfile). The error names
  // the rule, as Valkey's log line does.
  Result<void> LoadConfigUsers(const std::vector<std::vector<std::string>>& lines);

  // ACL LOG.
  void Log(AclLogEntry entry, size_t max_len);
  const std::deque<AclLogEntry>& log() const { return log_; }
  void ResetLog() { log_.clear(); }

 private:
  Result<void> ApplyRule(AclUser& user, std::string_view rule) const;
  Result<void> ApplyCommandRule(AclUser& user, std::string_view rule) const;
  void SetAll(AclUser& user, bool allow) const;
  void SetCommand(AclUser& user, const Command& command, bool allow) const;
  void SetCategory(AclUser& user, uint32_t category, bool allow) const;
  AclUser NewUser(std::string_view name) const;
  static void CopyRules(AclUser& to, const AclUser& from);

  const CommandRegistry& registry_;
  static constexpr size_t words_ = kAclMaxCommands / 64;  // bitmap words per user
  std::map<std::string, std::unique_ptr<AclUser>, std::less<>> users_;
  AclUser* default_user_ = nullptr;
  std::deque<AclLogEntry> log_;
  uint64_t next_entry_id_ = 0;
};

// A user's flags as ACL GETUSER and ACL LIST show them: on|off, nopass, sanitize-payload.
std::vector<std::string_view> AclFlagNames(const AclUser& user);

// Valkey's category names without '@' (ACL CAT) and the bit of one (0 when unknown).
std::span<const std::pair<std::string_view, uint32_t>> AclCategories();
uint32_t AclCategoryByName(std::string_view name);

// The reply text for a refused command, as processCommand writes it (NOPERM ...); `verbose` is
// ACL DRYRUN's form that names the key.
std::string AclDenialMessage(const AclVerdict& verdict, const AclUser& user, const Command& command,
                             ArgList args, bool verbose);

// A username may not contain spaces or NUL (Valkey's ACLStringHasSpaces).
bool ValidAclName(std::string_view name);

// Protected actions (enable-protected-configs, enable-debug-command): "yes" allows, "local"
// allows loopback clients, "no" refuses.
bool ProtectedActionAllowed(std::string_view setting, bool client_is_local);
// "ERR <what> command not allowed. If the <option> option is set to "local", ..."
std::string ProtectedActionError(std::string_view what, std::string_view option);

// Protected mode: with protected-mode yes and a default user without a password, only loopback
// clients are served; the others get this error and are closed.
inline constexpr std::string_view kProtectedModeDenied =
    "-DENIED Running in protected mode because protected mode is enabled and no password is set "
    "for the default user. In this mode connections are only accepted from the loopback "
    "interface. If you want to connect from external computers, you may adopt one of the "
    "following solutions: 1) Just disable protected mode sending the command 'CONFIG SET "
    "protected-mode no' from the loopback interface by connecting from the same host the server "
    "is running, however MAKE SURE it's not publicly accessible from internet if you do so. Use "
    "CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the "
    "protected mode by editing the configuration file, and setting the protected mode option to "
    "'no', and then restarting the server. 3) If you started the server manually just for "
    "testing, restart it with the '--protected-mode no' option. 4) Set up an authentication "
    "password for the default user. NOTE: You only need to do one of the above things in order "
    "for the server to start accepting connections from the outside.\r\n";
bool DeniedByProtectedMode(bool protected_mode, const AclUser& default_user, bool client_is_local);

// At startup, after the Server is built: the config file's `user` lines, then the aclfile if
// one is set (both at once is refused, as Valkey does). The error is the message to log before
// exiting.
Result<void> LoadAclsAtStartup(Server& server);

// Whether a peer address (as text: "127.0.0.1", "::1", "::ffff:127.0.0.1") is loopback.
bool IsLoopbackAddress(std::string_view ip);

}  // namespace lattice::server
