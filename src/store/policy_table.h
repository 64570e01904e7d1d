#pragma once
// PolicyTable: which conflict rule applies to which keys. An entry binds a key glob and a data
// type to a rule; the rules in force for a key are, per type, the entry with the most specific
// matching pattern (most literal characters), else the built-in default. Every local write takes
// the rules in force for its key (crdt::Policies), and each op records them, so changing the
// table never rewrites history and every region still converges.
//
// Types and rules (the first is the default):
//   string  counter | lww             INCR on a string merges as a counter, or as LWW
//   hash    counter | lww             the same for HINCRBY on hash fields
//   set     add-wins | remove-wins    SADD concurrent with SREM of the same member
//   zset    add-wins | remove-wins    ZADD/ZINCRBY concurrent with ZREM of the same member
//   expiry  lww | longest | shortest  concurrent EXPIRE/PERSIST of one key or hash field
//   type    newest-creator-wins | fixed-precedence   a key written with different types
//           concurrently: the newest creator, or the type first in hash > zset > set > string
//
// Two entries of one type whose patterns are equally specific and either matches the other are
// refused at Set (a tie the lookup could not decide). Two layers: the config file's
// `crdt-policy` lines, and entries set at runtime (CRDT.POLICY SET, replicated between regions),
// which override a config entry of the same pattern and type. Value type; event-loop thread.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lattice/common/result.h"
#include "lattice/crdt/policy.h"

namespace lattice::server {

struct PolicyEntry {
  std::string pattern;
  std::string type;  // "string", "hash", "set", "zset", "expiry", "type"
  std::string rule;
  bool from_config = false;
};

// Why a key has the rule it has, for CRDT.POLICY GET.
struct PolicyChoice {
  std::string type;
  std::string rule;
  std::string pattern;  // "" when the default applies
};

class PolicyTable {
 public:
  // "" if `rule` is a valid rule of `type`, else what is wrong (kInvalid detail, no "ERR ").
  static std::string CheckRule(std::string_view type, std::string_view rule);
  static const std::vector<std::string_view>& Types();

  // Adds or replaces an entry. Refuses an invalid type/rule, and a tie (see the header comment)
  // unless `check_ties` is false (entries replicated from peers are taken as they are).
  Result<void> Set(PolicyEntry entry, bool check_ties = true);
  // Removes the entry of that pattern and type in the given layer; false if there was none.
  bool Del(std::string_view pattern, std::string_view type, bool from_config = false);
  // Every entry, by type then pattern (runtime entries hide config entries they override).
  std::vector<PolicyEntry> List() const;
  bool empty() const { return entries_.empty(); }

  // The rules in force for `key`; `why` (optional) gets one choice per type.
  crdt::Policies For(std::string_view key, std::vector<PolicyChoice>* why = nullptr) const;

 private:
  // (type, pattern) -> entry; a runtime entry and a config entry may share a key: runtime wins.
  std::map<std::pair<std::string, std::string>, PolicyEntry> entries_;
  std::map<std::pair<std::string, std::string>, PolicyEntry> config_entries_;
};

}  // namespace lattice::server
