// Fuzz target: the RESP request parser (src/resp/request_parser.h), the first code that reads a
// client's bytes, authenticated or not.
//
// Input: [flags][k][k fragment sizes][stream]. The flags choose authenticated or not and the
// limits (the defaults, and tiny ones so that short inputs reach every "too big" path). The
// stream is parsed twice: fed whole, and fed in fragments whose sizes cycle through the k sizes
// (one byte at a time when k = 0). Checked:
// - both feeds yield the same commands and end the same way (same error text, or waiting for
//   more with the same bytes pending): the parser's verdict does not depend on how TCP split
//   the bytes;
// - Parse consumes no more than it was given, all of it when it needs more, and stays failed
//   after an error;
// - every command respects the limits: before AUTH a multibulk has at most 10 arguments of at
//   most 16384 bytes (anything bigger must have come inline, within inline_max), and no
//   argument exceeds proto_max_bulk_len or inline_max;
// - after Reset(), the same parser parses the stream exactly as a fresh one did.
// Memory: libFuzzer's malloc limit catches storage reserved from a length the client claims.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input.h"
#include "resp/request_parser.h"

namespace lattice::fuzz {
namespace {

using server::RequestLimits;
using server::RequestParser;

constexpr uint64_t kLimitChoices[] = {512ULL << 20, 1ULL << 20, 16, 1};
constexpr uint64_t kInlineChoices[] = {64 * 1024, 16, 200, 3};
constexpr size_t kUnauthenticatedArgsMax = 10;
constexpr size_t kUnauthenticatedBulkMax = 16384;

struct Outcome {
  std::vector<std::vector<std::string>> commands;
  bool failed = false;
  std::string error;
  size_t pending_bytes = 0;
  bool operator==(const Outcome&) const = default;
};

void CheckLimits(std::span<const std::string_view> args, const RequestLimits& limits) {
  LATTICE_ASSERT_MSG(!args.empty(), "a command has a name");
  size_t total = 0;
  size_t longest = 0;
  for (std::string_view arg : args) {
    total += arg.size();
    longest = std::max(longest, arg.size());
  }
  const bool inline_sized = total <= limits.inline_max;
  LATTICE_ASSERT_MSG(longest <= limits.proto_max_bulk_len || inline_sized,
                     "an argument exceeds proto-max-bulk-len");
  if (!limits.authenticated) {
    const bool small = args.size() <= kUnauthenticatedArgsMax && longest <= kUnauthenticatedBulkMax;
    LATTICE_ASSERT_MSG(small || inline_sized, "an unauthenticated command exceeds its limits");
  }
}

// Parses everything `input` holds; false once the parser failed.
bool ParseAll(RequestParser& parser, std::string_view input, Outcome& outcome) {
  while (true) {
    size_t consumed = SIZE_MAX;
    const RequestParser::Status status = parser.Parse(input, &consumed);
    LATTICE_ASSERT_MSG(consumed <= input.size(), "consumed more than given");
    input.remove_prefix(consumed);
    switch (status) {
      case RequestParser::Status::kCommand: {
        CheckLimits(parser.args(), parser.limits());
        const auto args = parser.args();
        outcome.commands.emplace_back(args.begin(), args.end());
        break;
      }
      case RequestParser::Status::kNeedMore:
        LATTICE_ASSERT_MSG(input.empty(), "kNeedMore left input unread");
        return true;
      case RequestParser::Status::kError: {
        LATTICE_ASSERT_MSG(!parser.error().empty(), "an error has a text");
        outcome.failed = true;
        outcome.error = parser.error();
        size_t again = 0;
        LATTICE_ASSERT_MSG(parser.Parse("PING\r\n", &again) == RequestParser::Status::kError,
                           "a failed parser must stay failed");
        return false;
      }
    }
  }
}

Outcome Whole(RequestParser& parser, std::string_view stream) {
  Outcome outcome;
  ParseAll(parser, stream, outcome);
  outcome.pending_bytes = outcome.failed ? 0 : parser.pending_bytes();
  return outcome;
}

Outcome Fragmented(RequestParser& parser, std::string_view stream,
                   const std::vector<size_t>& sizes) {
  Outcome outcome;
  for (size_t i = 0; !stream.empty(); ++i) {
    const size_t size = sizes.empty() ? 1 : sizes[i % sizes.size()];
    const std::string piece(stream.substr(0, size));  // its own buffer, as a socket read is
    stream.remove_prefix(piece.size());
    if (!ParseAll(parser, piece, outcome)) {
      break;
    }
  }
  outcome.pending_bytes = outcome.failed ? 0 : parser.pending_bytes();
  return outcome;
}

void Run(FuzzInput& in) {
  const uint8_t flags = in.Byte();
  RequestLimits limits;
  limits.authenticated = (flags & 1) == 0;
  limits.inline_max = kInlineChoices[(flags >> 1) & 3];
  limits.proto_max_bulk_len = kLimitChoices[(flags >> 3) & 3];
  std::vector<size_t> sizes(in.Byte() % 8);
  for (size_t& s : sizes) {
    s = in.Byte() + 1;
  }
  const std::string_view stream = in.Rest();

  RequestParser whole_parser;
  whole_parser.set_limits(limits);
  const Outcome whole = Whole(whole_parser, stream);

  RequestParser fragment_parser;
  fragment_parser.set_limits(limits);
  const Outcome fragmented = Fragmented(fragment_parser, stream, sizes);
  LATTICE_ASSERT_MSG(whole == fragmented, "fragmentation changed the parse");

  whole_parser.Reset();
  LATTICE_ASSERT_MSG(Whole(whole_parser, stream) == whole, "Reset() left state behind");
}

}  // namespace
}  // namespace lattice::fuzz

LATTICE_FUZZ_TARGET(lattice::fuzz::Run)
