#pragma once
// DecodeReply parses RESP2/RESP3 reply bytes back into a tree. It exists for tests (which call a
// command through a ReplyBuilder and compare the decoded reply) and for tools; the server never
// decodes its own replies. Pure and thread-compatible.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/result.h"

namespace lattice::server {

struct RespValue {
  enum class Type {
    kSimpleString,
    kError,
    kInteger,
    kBulk,
    kNull,
    kNullArray,
    kArray,
    kMap,
    kSet,
    kPush,
    kDouble,
    kBool,
    kVerbatim,
    kBigNumber,
  };
  Type type = Type::kNull;
  std::string text;     // simple string, error, bulk, verbatim (without format), big number, double
  int64_t integer = 0;  // integer; bool as 0/1
  std::vector<RespValue> elements;  // arrays, sets, pushes; maps as key, value, key, value...
  std::string format;               // verbatim only: the three-character format ("txt", "mkd")

  // A compact rendering used in test assertions:
  //   simple "OK", error "(error) ERR x", integer "5", bulk "\"v\"", null "(nil)", null array
  //   "(nil-array)", array "[a, b]", map "{k: v, ...}", set "~[a, b]", push ">[a]", double
  //   "(double) 1.5", bool "(true)"/"(false)", verbatim "(txt) text" (its format in the
  //   parentheses), big number "(big) 123".
  std::string ToString() const;
};

// Decodes exactly one reply from the front of `input`. On success *consumed (if given) is the
// number of bytes used. An incomplete or malformed input is an error ("incomplete reply" or
// "malformed reply: ..."). A blob error `!` decodes as kError, and a RESP3 attribute `|` is
// read and dropped, returning the reply it annotates.
Result<RespValue> DecodeReply(std::string_view input, size_t* consumed = nullptr);

// Decodes every reply in `input` (a pipelined batch).
Result<std::vector<RespValue>> DecodeReplies(std::string_view input);

}  // namespace lattice::server
