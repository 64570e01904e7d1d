#pragma once
// GlobMatch matches a text against a Valkey glob pattern, with the semantics of Valkey's
// stringmatchlen (util.c), used by KEYS, SCAN MATCH, CONFIG GET, PSUBSCRIBE and the like:
//   *        any sequence of bytes, including none
//   ?        any one byte
//   [abc]    one byte from the set; [^abc] one byte not in it; [a-z] a range (a reversed range
//            such as [z-a] is swapped, as Valkey does); \x inside a set is the literal x
//   \x       the literal x
// Everything else matches itself. With nocase, letters compare case-insensitively (ASCII).
//
// Quirks kept on purpose, because clients can observe them: an empty text matches only an
// empty pattern (so "*" does not match ""; Valkey's KEYS and SCAN short-circuit a lone "*"
// before calling the matcher, and callers here should do the same); an unterminated set such
// as "[abc" runs to the end of the pattern; in "[a-]" the '-' makes a range up to ']'.
//
// Cost: O(len(pattern) * len(text)) at worst, never exponential: the matcher remembers only the
// last '*' and retries from there (a later '*' makes earlier backtracking unnecessary), so
// patterns such as "a*a*a*a*a*b" are safe to accept from clients. Pure function, thread-safe.

#include <string_view>

namespace lattice::server {

bool GlobMatch(std::string_view pattern, std::string_view text, bool nocase = false);

}  // namespace lattice::server
