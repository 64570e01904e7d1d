#include "lattice/crdt/string_value.h"

#include <cmath>
#include <limits>

#include "lattice/crdt/numeric.h"

namespace lattice::crdt {

std::optional<std::string> RenderString(const StringCell& cell) {
  if (!cell.Alive()) {
    return std::nullopt;
  }
  const std::string base = cell.Winner() != nullptr ? cell.Winner()->value : "0";
  const CounterSum sum = cell.Sum();
  if (!sum.unobserved) {
    return base;
  }
  if (!sum.any_float) {
    if (auto as_int = ParseInt64(base)) {
      return FormatInt128(static_cast<__int128>(*as_int) + sum.ints);
    }
  }
  auto as_float = ParseLongDouble(base);
  if (!as_float) {
    return base;  // A non-number SET wins over concurrent increments.
  }
  return FormatLongDouble(*as_float + static_cast<long double>(sum.ints) + sum.floats);
}

std::optional<Result<int64_t>> CounterInt(const StringCell& cell) {
  const StringCell::Entry* winner = cell.Winner();
  const CounterSum sum = cell.Sum();
  if (sum.any_float) {
    return std::nullopt;
  }
  int64_t base = 0;
  if (winner != nullptr) {
    const std::optional<int64_t> parsed = ParseInt64(winner->value);
    if (!parsed) {
      return std::nullopt;
    }
    base = *parsed;
  }
  if (!sum.unobserved) {
    return Result<int64_t>(base);  // the base itself, or a dead cell's "0"
  }
  const __int128 value = static_cast<__int128>(base) + sum.ints;
  if (value < std::numeric_limits<int64_t>::min() || value > std::numeric_limits<int64_t>::max()) {
    return Result<int64_t>(Unexpected(ErrorCode::kNotInteger));
  }
  return Result<int64_t>(static_cast<int64_t>(value));
}

Result<std::string> NextCounterValue(const std::optional<std::string>& current, int64_t by,
                                     long double float_by, bool is_float) {
  const std::string text = current.value_or("0");
  if (is_float) {
    auto value = ParseLongDouble(text);
    if (!value) {
      return Unexpected(ErrorCode::kNotFloat);
    }
    const long double sum = *value + float_by;
    if (std::isnan(sum) || std::isinf(sum)) {
      return Unexpected(ErrorCode::kNanOrInfinity);
    }
    return FormatLongDouble(sum);
  }
  auto value = ParseInt64(text);
  if (!value) {
    return Unexpected(ErrorCode::kNotInteger);
  }
  int64_t sum = 0;
  if (__builtin_add_overflow(*value, by, &sum)) {
    return Unexpected(ErrorCode::kOverflow);
  }
  return std::to_string(sum);
}

Result<StringCell> IncrementDelta(const StringCell& cell, int64_t by, long double float_by,
                                  bool is_float, StringRule rule, WriteStamp& stamp,
                                  DotContext& context) {
  auto next = NextCounterValue(RenderString(cell), by, float_by, is_float);
  if (!next.ok()) {
    return Unexpected(next.error());
  }
  if (rule == StringRule::kLww) {
    return cell.AssignDelta(std::move(*next), stamp, context);
  }
  return cell.IncrementDelta(is_float ? 0 : by, is_float ? float_by : 0, stamp, context);
}

}  // namespace lattice::crdt
