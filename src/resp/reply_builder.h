#pragma once
// ReplyBuilder serialises replies as RESP2 or RESP3 into a caller-owned output buffer. Command
// handlers speak in RESP3 terms (map, set, double, boolean, verbatim, null) and the builder
// downgrades them for RESP2 clients exactly as Valkey does: a map becomes a flat array of 2n
// elements, a set or push an array, a double a bulk string, a boolean the integer 1 or 0, a
// verbatim string a bulk string without its format prefix, and null `$-1` (or `*-1` for
// NullArray). The builder has no socket: the connection flushes the buffer once per batch of
// pipelined commands, and tests decode it with DecodeReply (resp/reply_decoder.h).
// Not thread-safe; one per connection.

#include <cstdint>
#include <string>
#include <string_view>

#include "lattice/common/result.h"

namespace lattice::server {

enum class Protocol : uint8_t { kResp2 = 2, kResp3 = 3 };

class ReplyBuilder {
 public:
  explicit ReplyBuilder(std::string* out) : out_(out) {}

  Protocol protocol() const { return protocol_; }
  void set_protocol(Protocol protocol) { protocol_ = protocol; }
  std::string* buffer() { return out_; }

  void SimpleString(std::string_view text);  // "+text": text may not hold CR or LF
  void Ok() { SimpleString("OK"); }
  // "-message". The message carries its own prefix ("ERR ...", "WRONGTYPE ..."). CR and LF in
  // the message are replaced by spaces so that an error can never break the framing.
  void Error(std::string_view message);
  // "-" + Valkey's text for `error` (ErrorReply in resp/errors.h).
  void Error(const lattice::Error& error);
  void Integer(int64_t value);
  void Bulk(std::string_view value);
  void Null();       // RESP2 "$-1", RESP3 "_"
  void NullArray();  // RESP2 "*-1", RESP3 "_"
  void Array(size_t count);
  void Map(size_t pairs);   // RESP3 "%n"; RESP2 "*2n"
  void Set(size_t count);   // RESP3 "~n"; RESP2 "*n"
  void Push(size_t count);  // RESP3 ">n"; RESP2 "*n"
  // RESP3 ",<shortest round-trip repr>" (",inf", ",-inf", ",nan"); RESP2 the same text as bulk.
  void Double(double value);
  void Bool(bool value);  // RESP3 "#t"/"#f"; RESP2 ":1"/":0"
  // RESP3 "=<len>\r\n<format>:<text>"; RESP2 a bulk string of text. format is 3 characters.
  void Verbatim(std::string_view text, std::string_view format = "txt");
  void BigNumber(std::string_view digits);  // RESP3 "(digits"; RESP2 bulk

  // Number of errors written since construction (for INFO errorstats bookkeeping by callers).
  uint64_t errors_written() const { return errors_written_; }

 private:
  void Header(char prefix, int64_t count);

  std::string* out_;
  Protocol protocol_ = Protocol::kResp2;
  uint64_t errors_written_ = 0;
};

// The shortest decimal text that parses back to exactly `value`, as Valkey prints doubles
// ("1.5", "3", "1e+300", "inf", "-inf", "nan").
std::string FormatDouble(double value);

}  // namespace lattice::server
