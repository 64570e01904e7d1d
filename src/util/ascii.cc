#include "util/ascii.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "lattice/common/numbers.h"

namespace lattice::server {

std::string_view AsciiLower(std::string_view in, std::string& out) {
  out.resize(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    out[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = (a[i] >= 'A' && a[i] <= 'Z') ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    const char y = (b[i] >= 'A' && b[i] <= 'Z') ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
    if (x != y) {
      return false;
    }
  }
  return true;
}

// FNV-1a over the lower-cased bytes: command names are short, so a byte loop beats a copy.
size_t CaseInsensitiveHash::operator()(std::string_view text) const {
  uint64_t hash = 14695981039346656037ULL;
  for (const char c : text) {
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    hash = (hash ^ static_cast<unsigned char>(lower)) * 1099511628211ULL;
  }
  return static_cast<size_t>(hash);
}

bool ParseInt64(std::string_view text, int64_t* value) {
  const std::optional<int64_t> parsed = ParseInt64Strict(text);
  if (parsed.has_value()) {
    *value = *parsed;
  }
  return parsed.has_value();
}

bool ParseDouble(std::string_view text, double* value) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) {
    return false;
  }
  // strtod needs a terminated string: a short argument (every coordinate) is copied to the
  // stack, so the common case allocates nothing.
  char small[64];
  std::string large;
  const char* start = small;
  if (text.size() < sizeof(small)) {
    text.copy(small, text.size());
    small[text.size()] = '\0';
  } else {
    large.assign(text);
    start = large.c_str();
  }
  errno = 0;
  char* end = nullptr;
  const double parsed = std::strtod(start, &end);
  if (static_cast<size_t>(end - start) != text.size() || std::isnan(parsed)) {
    return false;
  }
  if (errno == ERANGE &&
      (parsed == HUGE_VAL || parsed == -HUGE_VAL || std::fpclassify(parsed) == FP_ZERO)) {
    return false;
  }
  *value = parsed;
  return true;
}

}  // namespace lattice::server
