#pragma once
// The command table. Each command is described once, as data (Valkey's lesson): name, arity,
// flags, key positions, ACL categories, docs and handler. That one description drives dispatch,
// arity errors, key extraction (COMMAND GETKEYS, cluster routing), COMMAND INFO/DOCS/LIST and
// commandstats. Families register their commands with `registry.Add({...})` from a
// Register<Type>Family function at the bottom of their .cc file (Dragonfly's shape).
//
// The registry is built once at startup and read-only afterwards; lookups are case-insensitive.
// Not thread-safe for mutation; concurrent reads are fine.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "resp/request_parser.h"
#include "server/latency.h"
#include "util/ascii.h"

namespace lattice::server {

// The Valkey version whose behaviour Lattice follows (HELLO, INFO, LOLWUT).
inline constexpr std::string_view kValkeyVersion = "9.0.0";

class CommandContext;

struct CommandStats {
  uint64_t calls = 0;
  uint64_t usec = 0;
  uint64_t rejected_calls = 0;  // refused before running: arity, auth, unknown subcommand
  uint64_t failed_calls = 0;    // ran and replied with an error
  LatencyHistogram latency;     // durations of the calls (latency-tracking)
};

using CommandHandler = void (*)(CommandContext& ctx, ArgList args);

// Command flags, as Valkey names them in COMMAND INFO.
enum CommandFlag : uint32_t {
  kWrite = 1U << 0,
  kReadOnly = 1U << 1,
  kDenyOom = 1U << 2,
  kAdmin = 1U << 3,
  kPubSub = 1U << 4,
  kNoScript = 1U << 5,
  kBlocking = 1U << 6,
  kLoading = 1U << 7,
  kStale = 1U << 8,
  kSkipMonitor = 1U << 9,
  kSkipSlowlog = 1U << 10,
  kFast = 1U << 11,
  kNoAuth = 1U << 12,
  kMayReplicate = 1U << 13,
  kNoMulti = 1U << 14,
  kMovableKeys = 1U << 15,
  kAllowBusy = 1U << 16,
};

// ACL categories, as Valkey names them ("@keyspace" ...).
enum AclCategory : uint32_t {
  kAclKeyspace = 1U << 0,
  kAclRead = 1U << 1,
  kAclWrite = 1U << 2,
  kAclSet = 1U << 3,
  kAclSortedSet = 1U << 4,
  kAclList = 1U << 5,
  kAclHash = 1U << 6,
  kAclString = 1U << 7,
  kAclBitmap = 1U << 8,
  kAclHyperLogLog = 1U << 9,
  kAclGeo = 1U << 10,
  kAclStream = 1U << 11,
  kAclPubSub = 1U << 12,
  kAclAdmin = 1U << 13,
  kAclFast = 1U << 14,
  kAclSlow = 1U << 15,
  kAclBlocking = 1U << 16,
  kAclDangerous = 1U << 17,
  kAclConnection = 1U << 18,
  kAclTransaction = 1U << 19,
  kAclScripting = 1U << 20,
};

// Keys are at argv[first], argv[first+step], ... up to argv[last]; last < 0 counts from the end
// (-1 is the last argument). first == 0 means the command takes no such keys.
// numkeys_index > 0 adds Valkey's "keynum" spec: argv[numkeys_index] holds a count N and the N
// arguments after it are keys (ZUNION 2 a b, ZUNIONSTORE dest 2 a b, SINTERCARD 2 a b).
struct KeySpec {
  int first = 0;
  int last = 0;
  int step = 0;
  int numkeys_index = 0;
  // XREAD/XREADGROUP: the keys are the first half of the arguments after STREAMS.
  bool streams_keyword = false;
};

struct CommandSpec {
  std::string_view name;  // lower case, e.g. "get" or, for a subcommand, "setname"
  int arity = 0;          // > 0 exact argc; < 0 at least -arity
  uint32_t flags = 0;
  KeySpec keys;
  uint32_t acl = 0;
  CommandHandler handler = nullptr;
  std::string_view group;  // "string", "server", "connection", "generic", ...
  std::string_view summary;
  std::string_view since;
  std::string_view complexity;
  std::vector<CommandSpec> subcommands;
};

// A registered command, with its subcommands and the names used in replies and statistics.
struct Command {
  CommandSpec spec;
  std::string full_name;  // "get", or "client|setname" for a subcommand
  const Command* parent = nullptr;
  uint32_t acl_id = 0;  // this command's bit in ACL users' command bitmaps (server/acl.h)
  absl::flat_hash_map<std::string, std::unique_ptr<Command>, CaseInsensitiveHash, CaseInsensitiveEq>
      subcommands;
  // Statistics live beside the command so the hot path does no map lookup; the table is
  // otherwise immutable after startup.
  mutable CommandStats stats;

  bool ArityOk(size_t argc) const {
    const int arity = spec.arity;
    return arity >= 0 ? argc == static_cast<size_t>(arity) : argc >= static_cast<size_t>(-arity);
  }
  bool has_subcommands() const { return !subcommands.empty(); }
};

class CommandRegistry {
 public:
  void Add(CommandSpec spec);

  // Case-insensitive lookups; nullptr when unknown.
  const Command* Find(std::string_view name) const;
  const Command* FindSubcommand(const Command& parent, std::string_view name) const;

  // Every top-level command, sorted by name (deterministic COMMAND output).
  std::vector<const Command*> All() const;
  // Every command and subcommand, sorted by full name (for INFO commandstats, RESETSTAT).
  std::vector<const Command*> AllWithSubcommands() const;
  size_t size() const { return commands_.size(); }

 private:
  // Keyed by lower-case name, looked up in any case without a copy.
  absl::flat_hash_map<std::string, std::unique_ptr<Command>, CaseInsensitiveHash, CaseInsensitiveEq>
      commands_;
  uint32_t next_acl_id_ = 0;
};

// Positions of the keys of `args` per the command's key spec (for COMMAND GETKEYS and routing),
// or nullopt when a numkeys count is not a positive integer that fits the arguments.
std::optional<std::vector<size_t>> KeyPositions(const Command& command, ArgList args);

// Flag and category names, for COMMAND INFO.
std::vector<std::string_view> FlagNames(uint32_t flags);
std::vector<std::string_view> AclCategoryNames(uint32_t acl);

}  // namespace lattice::server
