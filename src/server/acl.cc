#include "server/acl.h"

#include <algorithm>

#include "util/glob.h"
#include "util/sha256.h"

namespace lattice::server {
namespace {

constexpr std::string_view kEnoent = "Unknown command or category name in ACL";
constexpr std::string_view kEinval = "Syntax error";
constexpr std::string_view kEexist =
    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have "
    "any effect. Try 'resetkeys' to start with an empty list of patterns";
constexpr std::string_view kEisdir =
    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not "
    "have any effect. Try 'resetchannels' to start with an empty list of channels";
constexpr std::string_view kEnodev =
    "The password you are trying to remove from the user does not exist";
constexpr std::string_view kEbadmsg =
    "The password hash must be exactly 64 characters and contain only lowercase hexadecimal "
    "characters";
constexpr std::string_view kEalready =
    "Duplicate user found. A user can only be defined once in config files";

Unexpected Reason(std::string_view reason) { return Unexpected(std::string(reason)); }

bool HasSpaces(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || (c >= '\t' && c <= '\r') || c == '\0'; });
}

bool ValidHash(std::string_view hash) {
  return hash.size() == 64 && std::all_of(hash.begin(), hash.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string Lower(std::string_view text) {
  std::string out;
  AsciiLower(text, out);
  return out;
}

// Valkey's ACLSelectorRemoveCommandRule + append: each command or category appears once, and a
// whole-command rule also drops the earlier rules of its subcommands.
void UpdateCommandRules(std::vector<std::string>& rules, std::string_view body, bool allow) {
  const std::string lowered = Lower(body);
  std::erase_if(rules, [&](const std::string& rule) {
    const std::string_view existing = std::string_view(rule).substr(1);
    return existing == lowered ||
           (existing.size() > lowered.size() && existing.starts_with(lowered) &&
            existing[lowered.size()] == '|');
  });
  rules.push_back((allow ? "+" : "-") + lowered);
}

// Splits an ACL file line on single spaces, as Valkey's sdssplitlen (no quoting; repeated spaces
// give empty arguments, which are no-op rules).
std::vector<std::string_view> SplitSpaces(std::string_view line) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    const size_t end = line.find(' ', start);
    parts.push_back(line.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts;
}

std::string_view Trim(std::string_view text, std::string_view chars) {
  const size_t first = text.find_first_not_of(chars);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(chars) - first + 1);
}

}  // namespace

std::span<const std::pair<std::string_view, uint32_t>> AclCategories() {
  static const std::vector<std::pair<std::string_view, uint32_t>> categories = [] {
    std::vector<std::pair<std::string_view, uint32_t>> all;
    for (uint32_t bit = 1; bit != 0 && bit <= kAclScripting; bit <<= 1) {
      for (std::string_view name : AclCategoryNames(bit)) {
        all.emplace_back(name.substr(1), bit);  // without the '@'
      }
    }
    return all;
  }();
  return categories;
}

uint32_t AclCategoryByName(std::string_view name) {
  for (const auto& [category, bit] : AclCategories()) {
    if (EqualsIgnoreCase(category, name)) return bit;
  }
  return 0;
}

bool ValidAclName(std::string_view name) { return !HasSpaces(name); }

Acl::Acl(const CommandRegistry& registry) : registry_(registry) {
  auto user = std::make_unique<AclUser>(NewUser("default"));
  for (std::string_view rule : {"+@all", "~*", "&*", "on", "nopass"}) {
    LATTICE_ASSERT(ApplyRule(*user, rule).ok());
  }
  default_user_ = user.get();
  users_.emplace("default", std::move(user));
}

AclUser Acl::NewUser(std::string_view name) const {
  AclUser user;
  user.name = std::string(name);
  user.allowed.assign(words_, 0);
  return user;
}

void Acl::CopyRules(AclUser& to, const AclUser& from) {
  std::string name = std::move(to.name);
  to = from;
  to.name = std::move(name);
}

void Acl::SetAll(AclUser& user, bool allow) const {
  user.allowed.assign(words_, allow ? ~uint64_t{0} : 0);
  user.all_commands = allow;
  user.future_commands = allow;
  user.command_rules.clear();
}

void Acl::SetCommand(AclUser& user, const Command& command, bool allow) const {
  auto set_bit = [&](uint32_t id) {
    LATTICE_ASSERT_MSG(id < kAclMaxCommands, "more commands than ACL bitmaps hold");
    const uint64_t bit = uint64_t{1} << (id % 64);
    if (allow) {
      user.allowed[id / 64] |= bit;
    } else {
      user.allowed[id / 64] &= ~bit;
      user.all_commands = false;
    }
  };
  set_bit(command.acl_id);
  for (const auto& [name, sub] : command.subcommands) {
    set_bit(sub->acl_id);
  }
}

void Acl::SetCategory(AclUser& user, uint32_t category, bool allow) const {
  for (const Command* command : registry_.All()) {
    if (command->spec.acl & category) SetCommand(user, *command, allow);
    for (const auto& [name, sub] : command->subcommands) {
      if (sub->spec.acl & category) SetCommand(user, *sub, allow);
    }
  }
}

Result<void> Acl::ApplyCommandRule(AclUser& user, std::string_view rule) const {
  const bool allow = rule[0] == '+';
  const std::string_view body = rule.substr(1);
  if (body.starts_with('@')) {
    const uint32_t category = AclCategoryByName(body.substr(1));
    if (category == 0) return Reason(kEnoent);
    UpdateCommandRules(user.command_rules, body, allow);
    SetCategory(user, category, allow);
    return {};
  }
  const size_t bar = body.find('|');
  const Command* command = registry_.Find(body.substr(0, bar));
  if (command == nullptr) return Reason(kEnoent);
  if (bar != std::string_view::npos) {
    const std::string_view sub_name = body.substr(bar + 1);
    if (allow && sub_name.empty()) return Reason(kEinval);
    // Valkey's "+select|0" first-argument rules are deprecated there and not supported here.
    const Command* sub = command->has_subcommands() && sub_name.find('|') == std::string_view::npos
                             ? registry_.FindSubcommand(*command, sub_name)
                             : nullptr;
    if (sub == nullptr) return Reason(kEnoent);
    command = sub;
  }
  SetCommand(user, *command, allow);
  UpdateCommandRules(user.command_rules, command->full_name, allow);
  return {};
}

Result<void> Acl::ApplyRule(AclUser& user, std::string_view rule) const {
  if (rule.empty()) return {};
  auto is = [rule](std::string_view word) { return EqualsIgnoreCase(rule, word); };
  if (is("on") || is("off")) {
    user.enabled = is("on");
  } else if (is("skip-sanitize-payload") || is("sanitize-payload")) {
    user.sanitize_payload = is("sanitize-payload");
  } else if (is("nopass") || is("resetpass")) {
    user.nopass = is("nopass");
    user.passwords.clear();
  } else if (rule[0] == '>' || rule[0] == '#') {
    std::string hash = rule[0] == '>' ? Sha256Hex(rule.substr(1)) : std::string(rule.substr(1));
    if (!ValidHash(hash)) return Reason(kEbadmsg);
    if (std::find(user.passwords.begin(), user.passwords.end(), hash) == user.passwords.end()) {
      user.passwords.push_back(std::move(hash));
    }
    user.nopass = false;
  } else if (rule[0] == '<' || rule[0] == '!') {
    const std::string hash =
        rule[0] == '<' ? Sha256Hex(rule.substr(1)) : std::string(rule.substr(1));
    if (rule[0] == '!' && !ValidHash(hash)) return Reason(kEbadmsg);
    if (std::erase(user.passwords, hash) == 0) return Reason(kEnodev);
  } else if (rule[0] == '(' && rule.back() == ')') {
    return Reason("Selectors are not supported by Lattice");
  } else if (is("clearselectors")) {
    // no selectors to clear
  } else if (is("reset")) {
    for (std::string_view step :
         {"resetpass", "resetkeys", "resetchannels", "off", "sanitize-payload", "-@all"}) {
      LATTICE_ASSERT(ApplyRule(user, step).ok());
    }
  } else if (is("allkeys") || is("~*") || is("resetkeys")) {
    user.all_keys = !is("resetkeys");
    user.keys.clear();
  } else if (is("allchannels") || is("&*") || is("resetchannels")) {
    user.all_channels = !is("resetchannels");
    user.channels.clear();
  } else if (is("allcommands") || is("+@all") || is("nocommands") || is("-@all")) {
    SetAll(user, is("allcommands") || is("+@all"));
  } else if (rule[0] == '~' || rule[0] == '%') {
    if (user.all_keys) return Reason(kEexist);
    uint8_t permissions = kKeyReadWrite;
    size_t offset = 1;
    if (rule[0] == '%') {
      permissions = 0;
      bool ok = false;
      for (; offset < rule.size(); ++offset) {
        const char c = static_cast<char>(rule[offset] & ~0x20);  // upper case
        if (c == 'R' && !(permissions & kKeyRead)) {
          permissions |= kKeyRead;
        } else if (c == 'W' && !(permissions & kKeyWrite)) {
          permissions |= kKeyWrite;
        } else {
          ok = rule[offset] == '~';
          ++offset;
          break;
        }
      }
      if (permissions == 0 || !ok) return Reason(kEinval);
    }
    const std::string_view pattern = rule.substr(std::min(offset, rule.size()));
    if (HasSpaces(pattern)) return Reason(kEinval);
    auto same = std::find_if(user.keys.begin(), user.keys.end(),
                             [&](const KeyPattern& key) { return key.pattern == pattern; });
    if (same == user.keys.end()) {
      user.keys.push_back({std::string(pattern), permissions});
    } else {
      same->permissions |= permissions;
    }
  } else if (rule[0] == '&') {
    if (user.all_channels) return Reason(kEisdir);
    const std::string_view pattern = rule.substr(1);
    if (HasSpaces(pattern)) return Reason(kEinval);
    if (std::find(user.channels.begin(), user.channels.end(), pattern) == user.channels.end()) {
      user.channels.emplace_back(pattern);
    }
  } else if ((rule[0] == '+' || rule[0] == '-') && rule.size() > 1) {
    return ApplyCommandRule(user, rule);
  } else {
    return Reason(kEinval);
  }
  return {};
}

Result<void> Acl::SetUser(std::string_view name, std::span<const std::string_view> rules) {
  if (!ValidAclName(name)) {
    return Unexpected("ERR Usernames can't contain spaces or null characters");
  }
  auto it = users_.find(name);
  AclUser staged = it != users_.end() ? *it->second : NewUser(name);
  for (std::string_view rule : rules) {
    if (Result<void> applied = ApplyRule(staged, rule); !applied.ok()) {
      return Unexpected("ERR Error in ACL SETUSER modifier '" + std::string(rule) +
                        "': " + applied.error().message);
    }
  }
  if (it != users_.end()) {
    CopyRules(*it->second, staged);
  } else {
    users_.emplace(std::string(name), std::make_unique<AclUser>(std::move(staged)));
  }
  return {};
}

std::vector<std::string> Acl::DelUsers(std::span<const std::string_view> names,
                                       const std::function<void(const AclUser&)>& on_remove) {
  std::vector<std::string> removed;
  for (std::string_view name : names) {
    auto it = users_.find(name);
    if (it == users_.end() || it->second.get() == default_user_) continue;
    on_remove(*it->second);
    removed.push_back(it->first);
    users_.erase(it);
  }
  return removed;
}

const AclUser* Acl::Find(std::string_view name) const {
  auto it = users_.find(name);
  return it == users_.end() ? nullptr : it->second.get();
}

std::vector<const AclUser*> Acl::Users() const {
  std::vector<const AclUser*> all;
  for (const auto& [name, user] : users_) all.push_back(user.get());
  return all;
}

const AclUser* Acl::Authenticate(std::string_view name, std::string_view password) const {
  const AclUser* user = Find(name);
  if (user == nullptr || !user->enabled) return nullptr;
  if (user->nopass) return user;
  const std::string hash = Sha256Hex(password);
  bool match = false;
  for (const std::string& candidate : user->passwords) {
    // Compares every byte of every hash: the time taken says nothing about the password.
    uint8_t diff = 0;
    for (size_t i = 0; i < hash.size(); ++i) diff |= static_cast<uint8_t>(hash[i] ^ candidate[i]);
    match = match || diff == 0;
  }
  return match ? user : nullptr;
}

void Acl::SetDefaultPassword(std::string_view password) {
  LATTICE_ASSERT(ApplyRule(*default_user_, "resetpass").ok());
  const std::string rule = password.empty() ? "nopass" : ">" + std::string(password);
  LATTICE_ASSERT(ApplyRule(*default_user_, rule).ok());
}

namespace {

// Valkey's channel permissions: PUBLISH, SPUBLISH, SUBSCRIBE and SSUBSCRIBE name channels that a
// `&pattern` of the user must match; PSUBSCRIBE names patterns that must equal one of them.
AclVerdict CheckChannels(const AclUser& user, const Command& command, ArgList args) {
  const std::string& name = command.full_name;
  const bool literal = name == "psubscribe";
  size_t first = 1, last = 0;
  if (name == "publish" || name == "spublish") {
    last = 1;
  } else if (literal || name == "subscribe" || name == "ssubscribe") {
    last = args.size() - 1;
  }
  for (size_t i = first; i <= last && i < args.size(); ++i) {
    const bool allowed =
        std::any_of(user.channels.begin(), user.channels.end(), [&](const std::string& pattern) {
          return literal ? pattern == args[i] : GlobMatch(pattern, args[i]);
        });
    if (!allowed) return {AclDenial::kChannel, i};
  }
  return {};
}

}  // namespace

AclVerdict Acl::Check(const AclUser& user, const Command& command, ArgList args) const {
  const Command& top = command.parent != nullptr ? *command.parent : command;
  const bool no_auth = ((top.spec.flags | command.spec.flags) & kNoAuth) != 0;
  if (!no_auth && !user.Allows(command)) {
    return {AclDenial::kCommand, 0};
  }
  if (!user.all_channels) {
    if (const AclVerdict verdict = CheckChannels(user, command, args);
        verdict.denial != AclDenial::kNone) {
      return verdict;
    }
  }
  if (user.all_keys || ((top.spec.flags | command.spec.flags) & kPubSub)) {
    return {};  // the "keys" of SSUBSCRIBE and SPUBLISH are channels, for routing only
  }
  // One permission per command (Lattice's key specs carry no per-key access flags): a write
  // command needs write access to every key it names, any other command read access.
  const uint8_t needed = ((top.spec.flags | command.spec.flags) & kWrite) ? kKeyWrite : kKeyRead;
  const std::optional<std::vector<size_t>> positions = KeyPositions(command, args);
  for (size_t position : positions.value_or(std::vector<size_t>{})) {
    const bool allowed = std::any_of(user.keys.begin(), user.keys.end(), [&](const KeyPattern& k) {
      return (k.permissions & needed) == needed && GlobMatch(k.pattern, args[position]);
    });
    if (!allowed) return {AclDenial::kKey, position};
  }
  return {};
}

std::string Acl::DescribeCommandRules(const AclUser& user) const {
  std::string rules = user.future_commands ? "+@all" : "-@all";
  for (const std::string& rule : user.command_rules) {
    rules += ' ';
    rules += rule;
  }
  return rules;
}

std::string Acl::DescribeKeys(const AclUser& user) {
  if (user.all_keys) return "~*";
  std::string keys;
  for (const KeyPattern& key : user.keys) {
    if (!keys.empty()) keys += ' ';
    keys += key.permissions == kKeyReadWrite ? "~" : key.permissions == kKeyRead ? "%R~" : "%W~";
    keys += key.pattern;
  }
  return keys;
}

std::string Acl::DescribeChannels(const AclUser& user) {
  if (user.all_channels) return "&*";
  std::string channels;
  for (const std::string& channel : user.channels) {
    if (!channels.empty()) channels += ' ';
    channels += "&" + channel;
  }
  return channels;
}

std::vector<std::string_view> AclFlagNames(const AclUser& user) {
  std::vector<std::string_view> flags;
  flags.push_back(user.enabled ? "on" : "off");
  if (user.nopass) flags.push_back("nopass");
  flags.push_back(user.sanitize_payload ? "sanitize-payload" : "skip-sanitize-payload");
  return flags;
}

std::string Acl::Describe(const AclUser& user) const {
  std::string text;
  for (std::string_view flag : AclFlagNames(user)) {
    text += std::string(flag) + " ";
  }
  for (const std::string& hash : user.passwords) {
    text += "#" + hash + " ";
  }
  const std::string keys = DescribeKeys(user);
  if (!keys.empty()) text += keys + " ";
  if (!user.all_channels) text += "resetchannels ";
  const std::string channels = DescribeChannels(user);
  if (!channels.empty()) text += channels + " ";
  return text + DescribeCommandRules(user);
}

std::string Acl::Save() const {
  std::string text;
  for (const AclUser* user : Users()) {
    text += "user " + user->name + " " + Describe(*user) + "\n";
  }
  return text;
}

Result<void> Acl::Load(std::string_view text, std::string_view source,
                       const std::function<void(const AclUser&)>& on_remove) {
  std::map<std::string, AclUser, std::less<>> loaded;
  std::string errors;
  size_t line_number = 0;
  for (size_t start = 0; start <= text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = Trim(text.substr(start, end - start), " \t\r\n");
    start = end + 1;
    ++line_number;
    if (line.empty()) continue;
    const std::string where = std::string(source) + ":" + std::to_string(line_number);
    const std::vector<std::string_view> argv = SplitSpaces(line);
    if (argv[0] != "user" || argv.size() < 2) {
      errors += where + " should start with user keyword followed by the username. ";
      continue;
    }
    if (!ValidAclName(argv[1])) {
      errors +=
          "'" + where + ": username '" + std::string(argv[1]) + "' contains invalid characters. ";
      continue;
    }
    if (loaded.contains(argv[1])) {
      errors += "WARNING: Duplicate user '" + std::string(argv[1]) + "' found on line " +
                std::to_string(line_number) + ". ";
      continue;
    }
    AclUser user = NewUser(argv[1]);
    bool syntax_error = false;
    for (size_t j = 2; j < argv.size(); ++j) {
      const std::string_view rule = Trim(argv[j], "\t\r\n");
      Result<void> applied = ApplyRule(user, rule);
      if (applied.ok()) continue;
      if (applied.error().message == kEnoent) {
        errors += where + ": Error in applying operation '" + std::string(rule) +
                  "': " + applied.error().message + ". ";
      } else if (!syntax_error) {
        errors += where + ": " + applied.error().message + ". ";
        syntax_error = true;
      }
    }
    loaded.emplace(user.name, std::move(user));
  }
  if (!errors.empty()) {
    return Unexpected("ERR " + errors +
                      "WARNING: ACL errors detected, no change to the previously active ACL rules "
                      "was performed");
  }
  if (!loaded.contains("default")) {
    AclUser fresh = NewUser("default");
    for (std::string_view rule : {"+@all", "~*", "&*", "on", "nopass"}) {
      LATTICE_ASSERT(ApplyRule(fresh, rule).ok());
    }
    loaded.emplace("default", std::move(fresh));
  }
  // Survivors are updated in place (clients point at them); the rest are removed.
  for (auto it = users_.begin(); it != users_.end();) {
    auto replacement = loaded.find(it->first);
    if (replacement != loaded.end()) {
      CopyRules(*it->second, replacement->second);
      loaded.erase(replacement);
      ++it;
    } else {
      on_remove(*it->second);
      it = users_.erase(it);
    }
  }
  for (auto& [name, user] : loaded) {
    users_.emplace(name, std::make_unique<AclUser>(std::move(user)));
  }
  return {};
}

Result<void> Acl::LoadConfigUsers(const std::vector<std::vector<std::string>>& lines) {
  std::vector<std::string_view> seen;
  for (const std::vector<std::string>& line : lines) {
    LATTICE_ASSERT(!line.empty());
    const std::string& name = line[0];
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
      return Unexpected("Error loading ACL user '" + name + "': " + std::string(kEalready));
    }
    seen.push_back(name);
    if (!ValidAclName(name)) return Unexpected(std::string("Spaces not allowed in ACL usernames"));
    auto it = users_.find(name);
    AclUser* user = nullptr;
    if (it == users_.end()) {
      user = users_.emplace(name, std::make_unique<AclUser>(NewUser(name))).first->second.get();
    } else {
      user = it->second.get();  // the default user: its line starts from reset
      LATTICE_ASSERT(ApplyRule(*user, "reset").ok());
    }
    for (size_t j = 1; j < line.size(); ++j) {
      if (Result<void> applied = ApplyRule(*user, line[j]); !applied.ok()) {
        return Unexpected("Error loading ACL rule '" + line[j] + "' for the user named '" + name +
                          "': " + applied.error().message);
      }
    }
  }
  return {};
}

void Acl::Log(AclLogEntry entry, size_t max_len) {
  constexpr int64_t kGroupingMs = 60'000;
  constexpr size_t kScan = 10;
  for (size_t i = 0; i < log_.size() && i < kScan; ++i) {
    AclLogEntry& past = log_[i];
    if (past.reason == entry.reason && past.context == entry.context &&
        std::abs(past.updated_ms - entry.created_ms) <= kGroupingMs &&
        past.object == entry.object && past.username == entry.username) {
      AclLogEntry merged = std::move(past);
      log_.erase(log_.begin() + static_cast<std::ptrdiff_t>(i));
      merged.client_info = std::move(entry.client_info);
      merged.updated_ms = entry.created_ms;
      ++merged.count;
      log_.push_front(std::move(merged));
      return;
    }
  }
  entry.entry_id = next_entry_id_++;
  entry.updated_ms = entry.created_ms;
  log_.push_front(std::move(entry));
  while (log_.size() > max_len) log_.pop_back();
}

std::string AclDenialMessage(const AclVerdict& verdict, const AclUser& user, const Command& command,
                             ArgList args, bool verbose) {
  switch (verdict.denial) {
    case AclDenial::kCommand:
      return "User " + user.name + " has no permissions to run the '" + command.full_name +
             "' command";
    case AclDenial::kKey:
      return verbose ? "User " + user.name + " has no permissions to access the '" +
                           std::string(args[verdict.arg_index]) + "' key"
                     : "No permissions to access a key";
    case AclDenial::kChannel:
      return verbose ? "User " + user.name + " has no permissions to access the '" +
                           std::string(args[verdict.arg_index]) + "' channel"
                     : "No permissions to access a channel";
    default:
      return "";
  }
}

bool ProtectedActionAllowed(std::string_view setting, bool client_is_local) {
  return setting == "yes" || (setting == "local" && client_is_local);
}

std::string ProtectedActionError(std::string_view what, std::string_view option) {
  return "ERR " + std::string(what) + " command not allowed. If the " + std::string(option) +
         " option is set to \"local\", you can run it from a local connection, otherwise you "
         "need to set this option in the configuration file, and then restart the server.";
}

bool DeniedByProtectedMode(bool protected_mode, const AclUser& default_user, bool client_is_local) {
  return protected_mode && default_user.nopass && !client_is_local;
}

bool IsLoopbackAddress(std::string_view ip) {
  if (ip.starts_with("::ffff:") || ip.starts_with("::FFFF:")) {
    ip.remove_prefix(7);  // an IPv4-mapped IPv6 address
  }
  return ip.starts_with("127.") || ip == "::1";
}

}  // namespace lattice::server
