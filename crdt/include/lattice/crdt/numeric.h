#pragma once
// Number parsing and formatting with Valkey's exact rules, so a counter merged from several
// regions prints the digits Valkey would print: string2ll (strict decimal int64), string2ld
// (strtold over the whole string, no leading space, no NaN) and ld2string in LD_STR_HUMAN mode
// ("%.17Lf", trailing zeros and a bare point trimmed, "-0" as "0"), which is what INCRBYFLOAT
// and HINCRBYFLOAT reply. Pure functions; thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lattice::crdt {

std::optional<int64_t> ParseInt64(std::string_view text);
std::optional<long double> ParseLongDouble(std::string_view text);
std::string FormatLongDouble(long double value);
std::string FormatInt128(__int128 value);

}  // namespace lattice::crdt
