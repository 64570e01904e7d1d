#pragma once
// An expiry attribute (of a key or of a hash field): a Register of absolute expiry times in ms,
// so concurrent EXPIREs resolve by the register's rule and an observed-remove (DEL, HDEL, or a
// SET that clears the TTL) deletes exactly the expiry writes it saw. at_ms == 0 is an explicit
// "no expiry" (PERSIST). The rule of the winning write decides: kLww shows the write with the
// greatest stamp; kLongest shows the longest of the concurrent writes ("no expiry" is infinite).
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

// Under the longest rule the view reads every concurrent entry: compaction keeps the longest.
template <>
struct ViewKeeps<ExpiryValue> {
  static Dot Extra(const std::vector<RegisterEntry<ExpiryValue>>& entries) {
    if (entries.empty() || entries.front().value.rule != ExpiryRule::kLongest) {
      return Dot{};
    }
    const RegisterEntry<ExpiryValue>* longest = &entries.front();
    for (const auto& entry : entries) {
      if (longest->value.at_ms != 0 && (entry.value.at_ms == 0 ||
                                        entry.value.at_ms > longest->value.at_ms)) {
        longest = &entry;
      }
    }
    return longest->dot;
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
  if (winner->value.rule == ExpiryRule::kLongest) {
    for (const auto& entry : cell.Entries()) {
      if (entry.value.at_ms == 0 || at_ms == 0) {
        at_ms = 0;
      } else {
        at_ms = std::max(at_ms, entry.value.at_ms);
      }
    }
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
