#pragma once
// RequestParser turns the bytes a client sends into commands. It is incremental: bytes may arrive
// in any fragmentation (one byte at a time included), and the parser keeps what it has of a
// partial command between calls. It accepts multibulk requests (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
// and inline requests (`GET k\r\n`, with Valkey's quoting rules). Limits and error texts are
// exactly Valkey's (see shared/reference/valkey-compat.md §4.7); a protocol error is final: the
// caller replies with error() and closes the connection.
//
// Ownership: a command wholly inside the input given to Parse() (the common case) is returned as
// views into that input, nothing copied; the parts of a command split across calls are copied
// into the parser's own reusable storage. So the views returned by args() stay valid until the
// next call to Parse() or Reset(), and as long as the input bytes of the call that returned them.
// Memory held is bounded by the limits: a header line is at most 64 KB, an argument at most
// proto_max_bulk_len, and argument storage is never reserved from a count the client claims, only
// grown as bytes arrive. Not thread-safe; one parser per connection.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lattice::server {

// The arguments of one command, as views into the request buffer.
using ArgList = std::span<const std::string_view>;

struct RequestLimits {
  uint64_t proto_max_bulk_len = 512ULL * 1024 * 1024;
  // Longest inline request, and longest `*n` / `$n` header line, before a protocol error.
  uint64_t inline_max = 64 * 1024;
  // Before AUTH succeeds (when a password is required), Valkey caps a multibulk at 10 arguments
  // and a bulk at 16384 bytes.
  bool authenticated = true;
};

// Splits one line into arguments exactly as Valkey's sdssplitargs (the splitter Valkey uses for
// inline commands and for config files): blanks separate arguments; "double quotes" take \n \r
// \t \b \a \\ \" and \xHH escapes; 'single quotes' take \' only; a quote may open mid-argument
// and a closing quote must be followed by a blank or the end. nullopt on unbalanced quotes.
std::optional<std::vector<std::string>> SplitArgs(std::string_view line);

// Appends `args` to `out` as one RESP request (an array of bulk strings): what a client sends.
void AppendRequest(std::string& out, ArgList args);
void AppendRequest(std::string& out, std::initializer_list<std::string_view> args);

class RequestParser {
 public:
  enum class Status {
    kCommand,   // a whole command is ready in args()
    kNeedMore,  // all of `input` was used; feed more bytes
    kError,     // protocol error: reply error() and close the connection
  };

  RequestParser() = default;

  void set_limits(const RequestLimits& limits) { limits_ = limits; }
  const RequestLimits& limits() const { return limits_; }

  // Parses from `input`. Sets *consumed to the number of bytes of `input` that were used (the
  // caller drops them from its buffer). Returns kCommand as soon as one command is complete, so
  // the caller loops until kNeedMore to run every pipelined command. Empty inline lines and
  // multibulk counts <= 0 are skipped, as Valkey does. After kError the parser stays failed.
  Status Parse(std::string_view input, size_t* consumed);

  // The arguments of the command that the last kCommand returned. argv[0] is the command name.
  std::span<const std::string_view> args() const { return {views_.data(), views_.size()}; }

  // The error reply for kError, without the leading '-' or trailing CRLF, e.g.
  // "ERR Protocol error: invalid bulk length".
  const std::string& error() const { return error_; }

  // Bytes of a partial command held inside the parser (argument bytes and any partial header
  // line). The connection adds this to its own buffer to enforce client-query-buffer-limit.
  size_t pending_bytes() const;

  // Forgets any partial command and any protocol error (used by RESET-like paths and tests).
  void Reset();

 private:
  enum class State {
    kStart,               // between commands
    kMultibulkCount,      // reading the `*<n>` line
    kMultibulkArgHeader,  // reading a `$<len>` line
    kBulkData,            // reading bulk bytes, then the two bytes after them
    kInline,              // reading an inline line up to '\n'
    kFailed,
  };
  // What one parsing step produced. kSkipped: an empty inline line or a count <= 0 was consumed.
  enum class Step { kCommand, kNeedMore, kSkipped, kError };
  enum class LineStatus { kDone, kNeedMore, kTooBig };

  bool ParseWhole(std::string_view input, size_t* pos);
  bool WholeHeader(std::string_view input, char prefix, size_t* at, int64_t* value);
  Step ParseInline(std::string_view input, size_t* pos);
  Step ParseHiddenInline(std::string_view input, size_t* pos);
  Step ParseMultibulk(std::string_view input, size_t* pos);
  Step ParseMultibulkCount(std::string_view input, size_t* pos);
  Step ParseArgHeader(std::string_view input, size_t* pos);
  Step ParseBulkData(std::string_view input, size_t* pos);
  LineStatus TakeHeaderLine(std::string_view input, size_t* pos, std::string_view* line);
  bool SplitInline(std::string_view line);
  Step Fail(std::string message);
  void BeginCommand();
  std::string& NextArgSlot();
  void AppendToArg(std::string* arg, std::string_view bytes, size_t total_len);
  void TrackCapacity(size_t capacity_before, const std::string& arg);
  void ReleaseLargeStorage();
  void FinishCommand();

  RequestLimits limits_;
  State state_ = State::kStart;
  std::string line_;  // a partial header or inline line not yet terminated
  // A header line's '\r' was the last byte seen; the one byte after it is still to be skipped.
  bool header_cr_seen_ = false;
  // Bytes of an inline request whose newline is hidden by a NUL (see ParseHiddenInline).
  size_t hidden_inline_bytes_ = 0;
  int64_t multibulk_remaining_ = 0;
  int64_t bulk_len_ = 0;            // declared length of the current bulk
  int64_t bulk_remaining_ = 0;      // bytes of the current bulk still expected
  int bulk_trailer_remaining_ = 0;  // bytes after the bulk data still to skip (Valkey: 2)
  // Argument storage, reused across commands so steady-state parsing does not allocate.
  std::vector<std::string> storage_;
  size_t storage_capacity_ = 0;  // sum of storage_[i].capacity(), to bound what is retained
  size_t arg_count_ = 0;
  size_t pending_arg_bytes_ = 0;  // argument bytes of the command being parsed
  std::vector<std::string_view> views_;
  std::string error_;
};

}  // namespace lattice::server
