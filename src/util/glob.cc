#include "util/glob.h"

#include <cstddef>
#include <utility>

namespace lattice::server {
namespace {

// ASCII lowering, independent of the locale (Valkey runs in the C locale).
int Lower(int c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }

bool SameByte(char a, char b, bool nocase) {
  const int x = static_cast<unsigned char>(a);
  const int y = static_cast<unsigned char>(b);
  return nocase ? Lower(x) == Lower(y) : x == y;
}

// One step of the pattern that consumes exactly one byte of text: where it ends and whether it
// accepted the byte.
struct Step {
  bool matched;
  size_t next;  // index in the pattern just after this step
};

// A set "[...]" starting at pattern[open] == '['. Mirrors Valkey's loop exactly, including the
// way it reads ranges and an unterminated set. Ranges compare bytes as signed char, as Valkey's
// `int c = string[0]` does.
Step MatchSet(std::string_view pattern, size_t open, char byte, bool nocase) {
  size_t p = open + 1;
  const bool negate = p < pattern.size() && pattern[p] == '^';
  if (negate) {
    ++p;
  }
  bool matched = false;
  while (true) {
    const size_t left = pattern.size() - p;
    if (left == 0) {
      break;  // unterminated: the set runs to the end of the pattern
    }
    if (pattern[p] == '\\' && left >= 2) {
      ++p;
      matched = matched || pattern[p] == byte;  // Valkey compares escapes case-sensitively
    } else if (pattern[p] == ']') {
      ++p;
      break;
    } else if (left >= 3 && pattern[p + 1] == '-') {
      int start = static_cast<signed char>(pattern[p]);
      int end = static_cast<signed char>(pattern[p + 2]);
      int c = static_cast<signed char>(byte);
      if (start > end) {
        std::swap(start, end);
      }
      if (nocase) {
        start = Lower(start);
        end = Lower(end);
        c = Lower(c);
      }
      p += 2;
      matched = matched || (c >= start && c <= end);
    } else {
      matched = matched || SameByte(pattern[p], byte, nocase);
    }
    ++p;
  }
  return {negate ? !matched : matched, p};
}

// The non-star step at pattern[p] against one byte of text.
Step MatchOne(std::string_view pattern, size_t p, char byte, bool nocase) {
  switch (pattern[p]) {
    case '?':
      return {true, p + 1};
    case '[':
      return MatchSet(pattern, p, byte, nocase);
    case '\\':
      if (p + 1 < pattern.size()) {
        return {SameByte(pattern[p + 1], byte, nocase), p + 2};
      }
      return {SameByte('\\', byte, nocase), p + 1};
    default:
      return {SameByte(pattern[p], byte, nocase), p + 1};
  }
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text, bool nocase) {
  if (text.empty()) {
    return pattern.empty();  // Valkey's loop never runs on an empty text
  }
  constexpr size_t kNoStar = static_cast<size_t>(-1);
  size_t p = 0;
  size_t t = 0;
  size_t star_p = kNoStar;  // pattern index just after the last '*' seen
  size_t star_t = 0;        // text index where that '*' currently stops matching
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      while (p < pattern.size() && pattern[p] == '*') {
        ++p;
      }
      star_p = p;
      star_t = t;
      continue;
    }
    if (p < pattern.size()) {
      const Step step = MatchOne(pattern, p, text[t], nocase);
      if (step.matched) {
        p = step.next;
        ++t;
        continue;
      }
    }
    if (star_p == kNoStar) {
      return false;
    }
    // Let the last '*' swallow one more byte and retry the rest of the pattern from there.
    ++star_t;
    t = star_t;
    p = star_p;
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

}  // namespace lattice::server
