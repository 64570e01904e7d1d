#pragma once
// An expiry attribute (of a key or of a hash field): a Register of absolute expiry times in ms,
// so concurrent EXPIREs resolve by the register's rule and an observed-remove (DEL, HDEL, or a
// SET that clears the TTL) deletes exactly the expiry writes it saw. at_ms == 0 is an explicit
// "no expiry" (PERSIST). The rule of the winning write decides: kLww shows the write with the
// greatest stamp; kLongest shows the longest of the concurrent writes ("no expiry" is infinite);
// kShortest the shortest (an expiry beats "no expiry").
// Expiry is absolute time, so every replica hides the same thing once its clock passes it.

#include <cstdint>
#include <optional>

#include "lattice/crdt/policy.h"
#include "lattice/crdt/register.h"

namespace lattice::crdt {

struct ExpiryValue {
  int64_t at_ms = 0;  // 0: no expiry
  ExpiryRule rule = ExpiryRule::kLww;
  bool operator==(const ExpiryValue&) const = default;
};

// Whether expiry `a` outlasts `b` (0, no expiry, outlasts everything).
inline bool Outlasts(int64_t a, int64_t b) { return b != 0 && (a == 0 || a > b); }

// The entry the winner's rule shows among concurrent ones: the longest or the shortest.
inline const RegisterEntry<ExpiryValue>* RuleChoice(
    const std::vector<RegisterEntry<ExpiryValue>>& entries) {
  const ExpiryRule rule = entries.front().value.rule;
  const RegisterEntry<ExpiryValue>* chosen = &entries.front();
  for (const auto& entry : entries) {
    if (rule == ExpiryRule::kLongest ? Outlasts(entry.value.at_ms, chosen->value.at_ms)
                                     : Outlasts(chosen->value.at_ms, entry.value.at_ms)) {
      chosen = &entry;
    }
  }
  return chosen;
}

// Under the longest and shortest rules the view reads every concurrent entry: compaction keeps
// the one the rule shows.
template <>
struct ViewKeeps<ExpiryValue> {
  static Dot Extra(const std::vector<RegisterEntry<ExpiryValue>>& entries) {
    if (entries.empty() || entries.front().value.rule == ExpiryRule::kLww) {
      return Dot{};
    }
    return RuleChoice(entries)->dot;
  }
};

using ExpiryCell = Register<ExpiryValue>;

// The effective absolute expiry, or nullopt for none.
inline std::optional<int64_t> ExpiryAt(const ExpiryCell& cell) {
  const auto* winner = cell.Winner();
  if (winner == nullptr) {
    return std::nullopt;
  }
  int64_t at_ms = winner->value.at_ms;
  if (winner->value.rule != ExpiryRule::kLww) {
    at_ms = RuleChoice(cell.Entries())->value.at_ms;
  }
  return at_ms == 0 ? std::nullopt : std::optional<int64_t>(at_ms);
}

inline bool ExpiredAt(const ExpiryCell* cell, int64_t now_ms) {
  if (cell == nullptr) {
    return false;
  }
  auto at = ExpiryAt(*cell);
  return at.has_value() && *at <= now_ms;
}

}  // namespace lattice::crdt
