#pragma once
// Integer parsing with Valkey's exact rules (util.c string2ll), shared by every layer that reads
// numbers a client or a config file wrote: the RESP parser's length headers, config values,
// command arguments and counter values. Pure; thread-safe.

#include <cstdint>
#include <optional>
#include <string_view>

namespace lattice {

// string2ll: "0", or an optional '-' then a nonzero digit then digits, within int64 range.
// No '+', no spaces, no leading zeros, no "-0".
inline std::optional<int64_t> ParseInt64Strict(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  if (text == "0") {
    return 0;
  }
  size_t i = 0;
  const bool negative = text[0] == '-';
  if (negative) {
    ++i;
  }
  if (i >= text.size() || text[i] < '1' || text[i] > '9') {
    return std::nullopt;
  }
  uint64_t magnitude = 0;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') {
      return std::nullopt;
    }
    const uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (magnitude > (UINT64_MAX - digit) / 10) {
      return std::nullopt;
    }
    magnitude = magnitude * 10 + digit;
  }
  if (negative) {
    if (magnitude > static_cast<uint64_t>(INT64_MAX) + 1) {
      return std::nullopt;
    }
    return static_cast<int64_t>(0 - magnitude);  // two's complement: also right for INT64_MIN
  }
  if (magnitude > static_cast<uint64_t>(INT64_MAX)) {
    return std::nullopt;
  }
  return static_cast<int64_t>(magnitude);
}

}  // namespace lattice
