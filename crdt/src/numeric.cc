#include "lattice/crdt/numeric.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "lattice/common/numbers.h"

namespace lattice::crdt {

std::optional<int64_t> ParseInt64(std::string_view text) { return ParseInt64Strict(text); }

std::optional<long double> ParseLongDouble(std::string_view text) {
  if (text.empty() || text.size() >= 5 * 1024 ||
      std::isspace(static_cast<unsigned char>(text[0]))) {
    return std::nullopt;
  }
  const std::string buffer(text);
  char* end = nullptr;
  errno = 0;
  const long double value = std::strtold(buffer.c_str(), &end);
  if (end != buffer.c_str() + buffer.size() || std::isnan(value) ||
      (errno == ERANGE && (std::isinf(value) || value == 0))) {
    return std::nullopt;
  }
  return value;
}

std::string FormatLongDouble(long double value) {
  if (std::isinf(value)) {
    return value > 0 ? "inf" : "-inf";
  }
  char buffer[5 * 1024];
  int length = std::snprintf(buffer, sizeof(buffer), "%.17Lf", value);
  if (length <= 0 || static_cast<size_t>(length) >= sizeof(buffer)) {
    return "0";
  }
  std::string out(buffer, static_cast<size_t>(length));
  if (out.find('.') != std::string::npos) {
    while (out.back() == '0') {
      out.pop_back();
    }
    if (out.back() == '.') {
      out.pop_back();
    }
  }
  return out == "-0" ? "0" : out;
}

std::string FormatInt128(__int128 value) {
  if (value == 0) {
    return "0";
  }
  const bool negative = value < 0;
  unsigned __int128 magnitude = negative ? static_cast<unsigned __int128>(-(value + 1)) + 1
                                         : static_cast<unsigned __int128>(value);
  std::string digits;
  while (magnitude != 0) {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(magnitude % 10)));
    magnitude /= 10;
  }
  return negative ? "-" + digits : digits;
}

}  // namespace lattice::crdt
