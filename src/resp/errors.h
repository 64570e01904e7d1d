#pragma once
// Valkey's error texts that several layers share (the command families, cluster routing and
// slot migration), from one place, so every reply matches Valkey's wording; and ErrorReply, the
// one place where an Error's code becomes reply text.
//
// Why here and not in server/: the layers below the server report codes (crdt/, replication/,
// store/, cluster/ never phrase a client reply), but the cluster layer writes replies of its own
// (the slot-migration RPCs answer through a ReplyBuilder). The RESP layer is below both, knows
// the reply format, and is where ReplyBuilder::Error(const lattice::Error&) can use it.

#include <string>
#include <string_view>

#include "lattice/common/result.h"
#include "resp/request_parser.h"

namespace lattice::server {

// Valkey's error texts that many families share, from one place.
namespace errors {
inline constexpr std::string_view kSyntax = "ERR syntax error";
inline constexpr std::string_view kNotInteger = "ERR value is not an integer or out of range";
inline constexpr std::string_view kNoAuth = "NOAUTH Authentication required.";
inline constexpr std::string_view kOom = "OOM command not allowed when used memory > 'maxmemory'.";
inline constexpr std::string_view kWrongType =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
inline constexpr std::string_view kNotFloat = "ERR value is not a valid float";
inline constexpr std::string_view kOverflow = "ERR increment or decrement would overflow";
inline constexpr std::string_view kInvalidCursor = "ERR invalid cursor";
inline constexpr std::string_view kWrongPass =
    "WRONGPASS invalid username-password pair or user is disabled.";
std::string WrongArity(std::string_view full_name);
std::string UnknownCommand(ArgList args);
std::string UnknownSubcommand(std::string_view subcommand, std::string_view container);
}  // namespace errors

// Valkey's reply text for `error`, prefix included: the shared text of its code (kWrongType ->
// "WRONGTYPE Operation against ..."), "ERR " + message for codes whose message says what went
// wrong (kInvalid, kIo, kCorrupt), and the message itself for kOther (errors the server phrased).
std::string ErrorReply(const Error& error);

}  // namespace lattice::server
