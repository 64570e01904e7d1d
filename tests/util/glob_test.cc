// Tests of GlobMatch against Valkey's documented examples and against a reference matcher: a
// direct port of Valkey's recursive stringmatchlen (exponential, fine for short inputs).

#include "util/glob.h"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>

#include "lattice/common/rng.h"

namespace lattice::server {
namespace {

int Lower(int c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }

bool Same(char a, char b, bool nocase) {
  const int x = static_cast<unsigned char>(a);
  const int y = static_cast<unsigned char>(b);
  return nocase ? Lower(x) == Lower(y) : x == y;
}

// Valkey's stringmatchlen_impl, transcribed with indexes instead of pointers.
bool ReferenceMatch(std::string_view pattern, std::string_view text, bool nocase) {
  size_t p = 0;
  size_t t = 0;
  while (p < pattern.size() && t < text.size()) {
    switch (pattern[p]) {
      case '*': {
        while (p + 1 < pattern.size() && pattern[p + 1] == '*') {
          ++p;
        }
        if (p + 1 == pattern.size()) {
          return true;
        }
        for (size_t k = t; k < text.size(); ++k) {
          if (ReferenceMatch(pattern.substr(p + 1), text.substr(k), nocase)) {
            return true;
          }
        }
        return false;
      }
      case '?':
        ++t;
        break;
      case '[': {
        ++p;
        const bool negate = p < pattern.size() && pattern[p] == '^';
        if (negate) {
          ++p;
        }
        bool match = false;
        while (true) {
          const size_t left = pattern.size() - p;
          if (left >= 2 && pattern[p] == '\\') {
            ++p;
            match = match || pattern[p] == text[t];
          } else if (left >= 1 && pattern[p] == ']') {
            break;
          } else if (left == 0) {
            --p;
            break;
          } else if (left >= 3 && pattern[p + 1] == '-') {
            int start = static_cast<signed char>(pattern[p]);
            int end = static_cast<signed char>(pattern[p + 2]);
            int c = static_cast<signed char>(text[t]);
            if (start > end) {
              std::swap(start, end);
            }
            if (nocase) {
              start = Lower(start);
              end = Lower(end);
              c = Lower(c);
            }
            p += 2;
            match = match || (c >= start && c <= end);
          } else {
            match = match || Same(pattern[p], text[t], nocase);
          }
          ++p;
        }
        if (negate) {
          match = !match;
        }
        if (!match) {
          return false;
        }
        ++t;
        break;
      }
      case '\\':
        if (pattern.size() - p >= 2) {
          ++p;
        }
        [[fallthrough]];
      default:
        if (!Same(pattern[p], text[t], nocase)) {
          return false;
        }
        ++t;
        break;
    }
    ++p;
    if (t == text.size()) {
      while (p < pattern.size() && pattern[p] == '*') {
        ++p;
      }
      break;
    }
  }
  return p == pattern.size() && t == text.size();
}

std::string RandomString(Rng& rng, std::string_view alphabet, size_t length_max) {
  std::string text;
  const size_t length = rng.Uniform(length_max + 1);
  for (size_t i = 0; i < length; ++i) {
    text += alphabet[rng.Uniform(alphabet.size())];
  }
  return text;
}

TEST_CASE("glob: Valkey's documented examples", "[glob]") {
  CHECK(GlobMatch("h?llo", "hello"));
  CHECK(GlobMatch("h?llo", "hallo"));
  CHECK(GlobMatch("h?llo", "hxllo"));
  CHECK_FALSE(GlobMatch("h?llo", "hllo"));
  CHECK(GlobMatch("h*llo", "hllo"));
  CHECK(GlobMatch("h*llo", "heeeello"));
  CHECK(GlobMatch("h[ae]llo", "hello"));
  CHECK(GlobMatch("h[ae]llo", "hallo"));
  CHECK_FALSE(GlobMatch("h[ae]llo", "hillo"));
  CHECK(GlobMatch("h[^e]llo", "hallo"));
  CHECK(GlobMatch("h[^e]llo", "hbllo"));
  CHECK_FALSE(GlobMatch("h[^e]llo", "hello"));
  CHECK(GlobMatch("h[a-b]llo", "hallo"));
  CHECK(GlobMatch("h[a-b]llo", "hbllo"));
  CHECK_FALSE(GlobMatch("h[a-b]llo", "hcllo"));
  CHECK(GlobMatch("h\\*llo", "h*llo"));
  CHECK_FALSE(GlobMatch("h\\*llo", "hello"));
  CHECK(GlobMatch("[\\]]", "]"));
}

TEST_CASE("glob: stars, ranges, case and Valkey's quirks", "[glob]") {
  CHECK(GlobMatch("*", "anything"));
  CHECK(GlobMatch("***", "x"));
  CHECK(GlobMatch("a*", "a"));
  CHECK(GlobMatch("*max-*-entries*", "hash-max-listpack-entries"));
  CHECK_FALSE(GlobMatch("*max-*-entries", "hash-max-listpack-value"));
  CHECK(GlobMatch("[z-a]", "m"));  // reversed range, swapped as Valkey does
  CHECK_FALSE(GlobMatch("[z-a]", "A"));
  CHECK(GlobMatch("[z-a]", "M", /*nocase=*/true));
  CHECK(GlobMatch("PORT", "port", /*nocase=*/true));
  CHECK_FALSE(GlobMatch("PORT", "port"));
  CHECK(GlobMatch("[abc", "b"));  // an unterminated set runs to the end of the pattern
  CHECK_FALSE(GlobMatch("[", "["));
  CHECK(GlobMatch("[^", "x"));
  CHECK(GlobMatch("a\\", "a\\"));  // a trailing backslash is literal
  CHECK(GlobMatch("", ""));
  CHECK_FALSE(GlobMatch("*", ""));  // Valkey's matcher never matches an empty text
  CHECK_FALSE(GlobMatch("", "a"));
}

TEST_CASE("glob: pathological patterns finish (no exponential backtracking)", "[glob]") {
  const std::string text(100000, 'a');
  CHECK_FALSE(GlobMatch("a*a*a*a*a*a*a*a*a*a*a*a*b", text));
  CHECK(GlobMatch("*a*a*a*a*a*a*a*a*a*a*a*a", text));
  CHECK_FALSE(GlobMatch("*?*?*?*?*?*?*?*?*?*?*b", text));
  CHECK(GlobMatch("[a-a]*[a]*a", text));
}

TEST_CASE("glob: agrees with Valkey's recursive matcher on random inputs", "[glob]") {
  const uint64_t seed = GENERATE(take(20, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  for (int i = 0; i < 2000; ++i) {
    const std::string pattern = RandomString(rng, "abAB*?[]^-\\*?", 9);
    const std::string text = RandomString(rng, "abAB-]^\\\xe9", 9);
    const bool nocase = rng.Chance(1, 2);
    CAPTURE(pattern, text, nocase);
    REQUIRE(GlobMatch(pattern, text, nocase) == ReferenceMatch(pattern, text, nocase));
  }
}

}  // namespace
}  // namespace lattice::server
