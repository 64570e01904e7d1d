#pragma once
// ASCII helpers for command names, option keywords and integer arguments.

#include <cstdint>
#include <string>
#include <string_view>

namespace lattice::server {

// Lower-cases ASCII into `out` (reused buffer) and returns a view of it.
std::string_view AsciiLower(std::string_view in, std::string& out);

// ASCII case-insensitive equality, for option keywords ("NX", "withscores", ...).
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Hash and equality that ignore ASCII case, for tables keyed by lower-case names (the command
// table) that are looked up with the client's spelling, without lower-casing a copy first.
struct CaseInsensitiveHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const;
};
struct CaseInsensitiveEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return EqualsIgnoreCase(a, b); }
};

// Parses a decimal int64 exactly as Valkey's string2ll (no spaces, no '+', no leading zeros).
bool ParseInt64(std::string_view text, int64_t* value);

// Parses a double as Valkey's getDoubleFromObject: strtod over the whole text, no leading
// space, no overflow to infinity or underflow to zero, no NaN ("inf" itself is accepted).
bool ParseDouble(std::string_view text, double* value);

}  // namespace lattice::server
