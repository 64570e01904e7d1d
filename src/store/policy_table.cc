#include "store/policy_table.h"

#include <algorithm>

#include "util/glob.h"

namespace lattice::server {
namespace {

struct RuleSpec {
  std::string_view type;
  std::vector<std::string_view> rules;  // the first is the default
};

const std::vector<RuleSpec>& Specs() {
  static const std::vector<RuleSpec> kSpecs = {
      {"string", {"counter", "lww"}},
      {"hash", {"counter", "lww"}},
      {"set", {"add-wins", "remove-wins"}},
      {"zset", {"add-wins", "remove-wins"}},
      {"expiry", {"lww", "longest", "shortest"}},
      {"type", {"newest-creator-wins", "fixed-precedence"}},
  };
  return kSpecs;
}

const RuleSpec* SpecOf(std::string_view type) {
  for (const RuleSpec& spec : Specs()) {
    if (spec.type == type) return &spec;
  }
  return nullptr;
}

// Literal characters of a glob: the more, the more specific.
size_t Specificity(std::string_view pattern) {
  size_t literal = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      ++literal;
      ++i;
    } else if (c == '[') {
      const size_t close = pattern.find(']', i + 1);
      if (close == std::string_view::npos) {
        ++literal;
      } else {
        i = close;  // a class matches one character: as specific as '?'
      }
    } else if (c != '*' && c != '?') {
      ++literal;
    }
  }
  return literal;
}

void Apply(std::string_view type, std::string_view rule, crdt::Policies& policies) {
  if (type == "string") {
    policies.string = rule == "lww" ? crdt::StringRule::kLww : crdt::StringRule::kCounter;
  } else if (type == "hash") {
    policies.hash_field = rule == "lww" ? crdt::StringRule::kLww : crdt::StringRule::kCounter;
  } else if (type == "set") {
    policies.set = rule == "remove-wins" ? crdt::SetRule::kRemoveWins : crdt::SetRule::kAddWins;
  } else if (type == "zset") {
    policies.zset = rule == "remove-wins" ? crdt::SetRule::kRemoveWins : crdt::SetRule::kAddWins;
  } else if (type == "type") {
    policies.type = rule == "fixed-precedence" ? crdt::TypeRule::kFixedPrecedence
                                               : crdt::TypeRule::kNewestCreator;
  } else if (type == "expiry") {
    policies.expiry = rule == "longest"    ? crdt::ExpiryRule::kLongest
                      : rule == "shortest" ? crdt::ExpiryRule::kShortest
                                           : crdt::ExpiryRule::kLww;
  }
}

}  // namespace

const std::vector<std::string_view>& PolicyTable::Types() {
  static const std::vector<std::string_view> kTypes = [] {
    std::vector<std::string_view> types;
    for (const RuleSpec& spec : Specs()) types.push_back(spec.type);
    return types;
  }();
  return kTypes;
}

std::string PolicyTable::CheckRule(std::string_view type, std::string_view rule) {
  const RuleSpec* spec = SpecOf(type);
  if (spec == nullptr) {
    return "unknown policy type '" + std::string(type) +
           "', expected string, hash, set, zset, expiry or type";
  }
  if (std::find(spec->rules.begin(), spec->rules.end(), rule) != spec->rules.end()) {
    return "";
  }
  std::string expected;
  for (std::string_view known : spec->rules) {
    expected += (expected.empty() ? "" : " | ") + std::string(known);
  }
  return "unknown rule '" + std::string(rule) + "' for " + std::string(type) + ", expected " +
         expected;
}

Result<void> PolicyTable::Set(PolicyEntry entry, bool check_ties) {
  if (std::string error = CheckRule(entry.type, entry.rule); !error.empty()) {
    return Unexpected(ErrorCode::kInvalid, std::move(error));
  }
  if (entry.pattern.empty()) {
    return Unexpected(ErrorCode::kInvalid, "the pattern must not be empty");
  }
  const size_t specificity = Specificity(entry.pattern);
  for (const PolicyEntry& other : check_ties ? List() : std::vector<PolicyEntry>()) {
    if (other.type != entry.type || other.pattern == entry.pattern ||
        Specificity(other.pattern) != specificity) {
      continue;
    }
    if (GlobMatch(other.pattern, entry.pattern) || GlobMatch(entry.pattern, other.pattern)) {
      return Unexpected(ErrorCode::kInvalid,
                        "pattern '" + entry.pattern + "' ties with '" + other.pattern + "' for " +
                            entry.type +
                            ": equally specific patterns that overlap; make one more specific");
    }
  }
  auto& layer = entry.from_config ? config_entries_ : entries_;
  std::pair<std::string, std::string> key(entry.type, entry.pattern);
  layer[std::move(key)] = std::move(entry);
  return {};
}

bool PolicyTable::Del(std::string_view pattern, std::string_view type, bool from_config) {
  auto& layer = from_config ? config_entries_ : entries_;
  return layer.erase({std::string(type), std::string(pattern)}) > 0;
}

std::vector<PolicyEntry> PolicyTable::List() const {
  std::map<std::pair<std::string, std::string>, PolicyEntry> merged = config_entries_;
  for (const auto& [key, entry] : entries_) {
    merged[key] = entry;
  }
  std::vector<PolicyEntry> out;
  out.reserve(merged.size());
  for (auto& [key, entry] : merged) {
    out.push_back(std::move(entry));
  }
  return out;
}

crdt::Policies PolicyTable::For(std::string_view key, std::vector<PolicyChoice>* why) const {
  crdt::Policies policies;
  if (entries_.empty() && config_entries_.empty() && why == nullptr) {
    return policies;
  }
  for (const RuleSpec& spec : Specs()) {
    const PolicyEntry* best = nullptr;
    size_t best_specificity = 0;
    for (const auto* layer : {&entries_, &config_entries_}) {
      for (auto it = layer->lower_bound({std::string(spec.type), std::string()});
           it != layer->end() && it->first.first == spec.type; ++it) {
        const PolicyEntry& entry = it->second;
        if (layer == &config_entries_ && entries_.contains(it->first)) continue;  // overridden
        if (!GlobMatch(entry.pattern, key)) continue;
        const size_t specificity = Specificity(entry.pattern);
        // Ties (possible only between patterns that do not match each other's text) go to the
        // smaller pattern, so every region decides alike.
        if (best == nullptr || specificity > best_specificity ||
            (specificity == best_specificity && entry.pattern < best->pattern)) {
          best = &entry;
          best_specificity = specificity;
        }
      }
    }
    const std::string_view rule = best != nullptr ? std::string_view(best->rule) : spec.rules[0];
    Apply(spec.type, rule, policies);
    if (why != nullptr) {
      why->push_back(PolicyChoice{std::string(spec.type), std::string(rule),
                                  best != nullptr ? best->pattern : std::string()});
    }
  }
  return policies;
}

}  // namespace lattice::server
