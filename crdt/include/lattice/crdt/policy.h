#pragma once
// Conflict-resolution rules. A rule is an input of the mutators and is recorded in every op (and
// in the metadata it writes), so changing the configured policy never rewrites history: the
// merge itself is one lattice, and a rule only decides what a local write puts into it.
// Defaults are DESIGN.md's table. Plain values; thread-safe.

#include <cstdint>

namespace lattice::crdt {

enum class SetRule : uint8_t { kAddWins = 0, kRemoveWins = 1 };
enum class StringRule : uint8_t { kCounter = 0, kLww = 1 };  // also used for hash fields
enum class ExpiryRule : uint8_t { kLww = 0, kLongest = 1, kShortest = 2 };
// Type conflicts (a key written with different types concurrently): the newest creator wins, or
// a fixed precedence decides (hash > zset > set > string), whatever the timing.
enum class TypeRule : uint8_t { kNewestCreator = 0, kFixedPrecedence = 1 };

struct Policies {
  SetRule set = SetRule::kAddWins;
  SetRule zset = SetRule::kAddWins;  // sorted-set membership
  StringRule string = StringRule::kCounter;
  StringRule hash_field = StringRule::kCounter;
  ExpiryRule expiry = ExpiryRule::kLww;
  TypeRule type = TypeRule::kNewestCreator;
  bool operator==(const Policies&) const = default;
};

}  // namespace lattice::crdt
