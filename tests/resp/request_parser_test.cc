#include "resp/request_parser.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/rng.h"
#include "util/allocator.h"

namespace lattice::server {
namespace {

using Args = std::vector<std::string>;

struct Outcome {
  std::vector<Args> commands;
  bool failed = false;
  std::string error;
  size_t pending = 0;

  bool operator==(const Outcome&) const = default;
};

// Feeds `chunks` in order, looping on kCommand like a connection does.
Outcome FeedChunks(const std::vector<std::string_view>& chunks, const RequestLimits& limits = {}) {
  RequestParser parser;
  parser.set_limits(limits);
  Outcome outcome;
  for (std::string_view rest : chunks) {
    while (true) {
      size_t consumed = 0;
      const auto status = parser.Parse(rest, &consumed);
      REQUIRE(consumed <= rest.size());
      rest.remove_prefix(consumed);
      if (status == RequestParser::Status::kCommand) {
        outcome.commands.emplace_back(parser.args().begin(), parser.args().end());
        continue;
      }
      if (status == RequestParser::Status::kError) {
        outcome.failed = true;
        outcome.error = parser.error();
        return outcome;
      }
      REQUIRE(rest.empty());  // kNeedMore uses all of the input
      break;
    }
  }
  outcome.pending = parser.pending_bytes();
  return outcome;
}

Outcome FeedAll(std::string_view bytes, const RequestLimits& limits = {}) {
  return FeedChunks({bytes}, limits);
}

Outcome FeedBytewise(std::string_view bytes, const RequestLimits& limits = {}) {
  std::vector<std::string_view> chunks;
  for (size_t i = 0; i < bytes.size(); ++i) {
    chunks.push_back(bytes.substr(i, 1));
  }
  return FeedChunks(chunks, limits);
}

// The outcome of `bytes` fed whole, byte by byte, and split in two at every point.
Outcome FeedEveryWay(std::string_view bytes, const RequestLimits& limits = {}) {
  const Outcome whole = FeedAll(bytes, limits);
  CHECK(FeedBytewise(bytes, limits) == whole);
  for (size_t cut = 1; cut < bytes.size(); ++cut) {
    CAPTURE(cut);
    CHECK(FeedChunks({bytes.substr(0, cut), bytes.substr(cut)}, limits) == whole);
  }
  return whole;
}

// The error a byte stream ends in, checked to be the same however it is split.
std::string ErrorOf(std::string_view bytes, const RequestLimits& limits = {}) {
  const Outcome outcome = FeedAll(bytes, limits);
  CHECK(FeedBytewise(bytes, limits) == outcome);
  CHECK(outcome.failed);
  return outcome.error;
}

std::string Multibulk(const Args& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& arg : args) {
    out += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
  }
  return out;
}

RequestLimits Unauthenticated() {
  RequestLimits limits;
  limits.authenticated = false;
  return limits;
}

TEST_CASE("multibulk commands parse", "[resp][parser]") {
  CHECK(FeedEveryWay("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").commands == std::vector<Args>{{"GET", "k"}});
  CHECK(FeedEveryWay("*1\r\n$0\r\n\r\n").commands == std::vector<Args>{{""}});
  // Bulk data is binary: CR, LF and NUL inside it are plain bytes.
  const std::string binary("a\r\n\0b", 5);
  CHECK(FeedEveryWay(Multibulk({"SET", "k", binary})).commands ==
        std::vector<Args>{{"SET", "k", binary}});
  CHECK(FeedEveryWay("*1\r\n$-0\r\n").error == "ERR Protocol error: invalid bulk length");
}

TEST_CASE("pipelined commands come back one per Parse call", "[resp][parser]") {
  const std::string bytes = Multibulk({"SET", "a", "1"}) + "PING\r\n" + Multibulk({"GET", "a"});
  RequestParser parser;
  std::string_view rest = bytes;
  size_t consumed = 0;
  REQUIRE(parser.Parse(rest, &consumed) == RequestParser::Status::kCommand);
  CHECK(parser.args().size() == 3);
  rest.remove_prefix(consumed);
  REQUIRE(parser.Parse(rest, &consumed) == RequestParser::Status::kCommand);
  CHECK(parser.args()[0] == "PING");
  rest.remove_prefix(consumed);
  REQUIRE(parser.Parse(rest, &consumed) == RequestParser::Status::kCommand);
  CHECK(parser.args()[1] == "a");
  rest.remove_prefix(consumed);
  CHECK(rest.empty());
  CHECK(parser.Parse(rest, &consumed) == RequestParser::Status::kNeedMore);
  CHECK(consumed == 0);
}

TEST_CASE("a whole command is read in place, a split one is copied", "[resp][parser]") {
  std::string buffer = Multibulk({"ECHO", "hello"});
  RequestParser parser;
  size_t consumed = 0;
  SECTION("whole: the arguments are views into the input") {
    REQUIRE(parser.Parse(buffer, &consumed) == RequestParser::Status::kCommand);
    CHECK(consumed == buffer.size());
    CHECK(parser.args()[1] == "hello");
    CHECK(parser.args()[1].data() == buffer.data() + buffer.find("hello"));
  }
  SECTION("split: the arguments survive the input") {
    const size_t half = buffer.size() / 2;
    std::string first = buffer.substr(0, half);
    std::string second = buffer.substr(half);
    REQUIRE(parser.Parse(first, &consumed) == RequestParser::Status::kNeedMore);
    first.assign(first.size(), 'X');
    REQUIRE(parser.Parse(second, &consumed) == RequestParser::Status::kCommand);
    second.assign(second.size(), 'X');
    CHECK(parser.args()[0] == "ECHO");
    CHECK(parser.args()[1] == "hello");
  }
}

TEST_CASE("the in-place path gives the incremental path's verdict", "[resp][parser]") {
  // Leading zeros, signs, long digit runs, a missing byte after CR, zero-length bulks: the same
  // outcome whole as one byte at a time.
  for (std::string_view input :
       {"*2\r\n$3\r\nGET\r\n$0\r\n\r\n", "*02\r\n$3\r\nGET\r\n$1\r\nk\r\n",
        "*2\r\n$03\r\nGET\r\n$1\r\nk\r\n", "*-1\r\n*1\r\n$4\r\nPING\r\n", "*1\r\n$-1\r\n",
        "*1\r\n$4\rxPINGxx", "*1\r\n$00000000000000000004\r\nPING\r\n",
        "*1\r\n$99999999999999999999\r\nPING\r\n", "*1\r\n$+4\r\nPING\r\n", "*1\r",
        "*1\r\n$4\r\nPIN"}) {
    CAPTURE(input);
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
    CHECK(FeedChunks({input}) == FeedChunks(bytes));
  }
}

TEST_CASE("counts <= 0 and empty inline lines are skipped", "[resp][parser]") {
  const Outcome outcome = FeedEveryWay("*0\r\n*-1\r\n*-100\r\n\r\n\n  \t\r\n\v\f\r\nPING\r\n");
  CHECK(outcome.commands == std::vector<Args>{{"PING"}});
  CHECK_FALSE(outcome.failed);
  CHECK(outcome.pending == 0);
}

TEST_CASE("inline commands split like sdssplitargs", "[resp][parser]") {
  const auto split = [](std::string_view line) {
    const Outcome outcome = FeedEveryWay(std::string(line) + "\r\n");
    REQUIRE_FALSE(outcome.failed);
    REQUIRE(outcome.commands.size() == 1);
    return outcome.commands[0];
  };
  CHECK(split("PING") == Args{"PING"});
  CHECK(split("  SET  k\tv  ") == Args{"SET", "k", "v"});
  CHECK(split("SET \"a b\" 'c d'") == Args{"SET", "a b", "c d"});
  CHECK(split(R"(ECHO "\x41\x4" "\n\r\t\b\a\\\"\q")") == Args{"ECHO", "Ax4", "\n\r\t\b\a\\\"q"});
  CHECK(split(R"(ECHO "\xfF\x00")") == Args{"ECHO", std::string("\xff\0", 2)});
  CHECK(split(R"(ECHO 'it\'s' 'a\x41\n')") == Args{"ECHO", "it's", R"(a\x41\n)"});
  CHECK(split("ECHO foo\"bar baz\"") == Args{"ECHO", "foobar baz"});
  CHECK(split("ECHO \"\" ''") == Args{"ECHO", "", ""});
  // \v and \f are skipped between arguments but do not end a bare one.
  CHECK(split("\v\fECHO a\vb") == Args{"ECHO", "a\vb"});
  CHECK(split("ECHO \"a\"\vb") == Args{"ECHO", "a", "b"});
  CHECK(split("ECHO a\rb") == Args{"ECHO", "a", "b"});
  CHECK(split("ECHO \xe9\xff") == Args{"ECHO", "\xe9\xff"});
  // A lone LF ends a line too, and only the CR right before it is dropped.
  CHECK(FeedEveryWay("GET k\nGET j\r\r\n").commands ==
        std::vector<Args>{{"GET", "k"}, {"GET", "j"}});
}

TEST_CASE("unbalanced quotes are a protocol error", "[resp][parser]") {
  const std::string error = "ERR Protocol error: unbalanced quotes in request";
  CHECK(ErrorOf("SET \"abc\r\n") == error);
  CHECK(ErrorOf("SET 'abc\r\n") == error);
  CHECK(ErrorOf("ECHO \"a\"b\r\n") == error);
  CHECK(ErrorOf("ECHO 'a'b\r\n") == error);
  CHECK(ErrorOf("ECHO \"a\\\r\n") == error);
  CHECK(ErrorOf("set \"\"\"test-key\"\"\" test-value\r\nping\r\n") == error);
}

TEST_CASE("multibulk count errors", "[resp][parser]") {
  const std::string invalid = "ERR Protocol error: invalid multibulk length";
  for (const char* count : {"abc", "", "+1", "01", " 1", "1 ", "-0", "2147483648", "3000000000",
                            "99999999999999999999999", "9223372036854775808", "1x"}) {
    CAPTURE(count);
    CHECK(ErrorOf(std::string("*") + count + "\r\n") == invalid);
  }
  // INT_MAX itself is accepted, and then waits for arguments.
  const Outcome outcome = FeedEveryWay("*2147483647\r\n");
  CHECK_FALSE(outcome.failed);
  CHECK(outcome.commands.empty());
}

TEST_CASE("bulk header errors", "[resp][parser]") {
  const std::string invalid = "ERR Protocol error: invalid bulk length";
  for (const char* len :
       {"-1", "-10", "abc", "", "+3", "03", "536870913", "2000000000", "99999999999999999999"}) {
    CAPTURE(len);
    CHECK(ErrorOf(std::string("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$") + len + "\r\n") == invalid);
  }
  CHECK_FALSE(FeedAll("*1\r\n$536870912\r\n").failed);  // exactly the limit
  RequestLimits limits;
  limits.proto_max_bulk_len = 10;
  CHECK(ErrorOf("*1\r\n$11\r\n", limits) == invalid);
  CHECK(FeedEveryWay("*1\r\n$10\r\n0123456789\r\n", limits).commands ==
        std::vector<Args>{{"0123456789"}});
}

TEST_CASE("an element that is not a bulk is refused", "[resp][parser]") {
  CHECK(ErrorOf("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n") ==
        "ERR Protocol error: expected '$', got 'f'");
  CHECK(ErrorOf("*1\r\nfoo\r\n") == "ERR Protocol error: expected '$', got 'f'");
  CHECK(ErrorOf("*1\r\n:1\r\n") == "ERR Protocol error: expected '$', got ':'");
  // The CR itself where '$' should be: Valkey turns it into a space in the reply.
  CHECK(ErrorOf("*1\r\n\r\n") == "ERR Protocol error: expected '$', got ' '");
  // Valkey formats the byte with %c into a C string, so a NUL cuts the message short.
  CHECK(ErrorOf(std::string("*1\r\n\0\r\n", 7)) == "ERR Protocol error: expected '$', got '");
  // The prefix is judged only once its line is complete.
  CHECK_FALSE(FeedAll("*1\r\nX").failed);
  CHECK_FALSE(FeedAll("*1\r\nX\r").failed);
}

TEST_CASE("unauthenticated clients have tighter limits", "[resp][parser]") {
  const RequestLimits limits = Unauthenticated();
  CHECK(ErrorOf("*11\r\n", limits) == "ERR Protocol error: unauthenticated multibulk length");
  CHECK(ErrorOf("*1\r\n$16385\r\n", limits) == "ERR Protocol error: unauthenticated bulk length");
  CHECK(ErrorOf("*2147483648\r\n", limits) == "ERR Protocol error: invalid multibulk length");
  CHECK(ErrorOf("*1\r\n$-1\r\n", limits) == "ERR Protocol error: invalid bulk length");
  CHECK_FALSE(FeedAll("*-20\r\n", limits).failed);
  const Args ten(10, "a");
  CHECK(FeedAll(Multibulk(ten), limits).commands == std::vector<Args>{ten});
  const Args big = {"AUTH", std::string(16384, 'p')};
  CHECK(FeedAll(Multibulk(big), limits).commands == std::vector<Args>{big});
  // Once authenticated the same requests are fine.
  CHECK(FeedAll(Multibulk(Args(11, "a"))).commands.size() == 1);
}

TEST_CASE("header and inline lines are capped at inline_max", "[resp][parser]") {
  const size_t max = RequestLimits{}.inline_max;
  CHECK(ErrorOf("*" + std::string(max, '1')) == "ERR Protocol error: too big mbulk count string");
  // A line of exactly inline_max bytes is judged on its value.
  CHECK(ErrorOf("*" + std::string(max - 1, '1') + "\r\n") ==
        "ERR Protocol error: invalid multibulk length");
  CHECK(ErrorOf("*1\r\n$" + std::string(max, '1')) ==
        "ERR Protocol error: too big bulk count string");
  // The cap applies before the element prefix is checked.
  CHECK(ErrorOf("*1\r\n" + std::string(70000, 'X')) ==
        "ERR Protocol error: too big bulk count string");
  // An over-long line is too big even when its terminator is already here.
  CHECK(ErrorOf("*" + std::string(max, '1') + "\r\n") ==
        "ERR Protocol error: too big mbulk count string");
  CHECK(ErrorOf(std::string(max + 1, 'a')) == "ERR Protocol error: too big inline request");
  CHECK(ErrorOf(std::string(max, 'a') + "\r\n") == "ERR Protocol error: too big inline request");
  CHECK(FeedAll(std::string(max - 1, 'a') + "\r\n").commands.size() == 1);
  CHECK(FeedAll(std::string(max, 'a') + "\n").commands.size() == 1);
  RequestLimits small;
  small.inline_max = 8;
  CHECK(ErrorOf("PING PING\n", small) == "ERR Protocol error: too big inline request");
  CHECK(FeedEveryWay("PING PIN\n", small).commands == std::vector<Args>{{"PING", "PIN"}});
}

TEST_CASE("a NUL before an inline newline hides it, as with Valkey's strchr", "[resp][parser]") {
  const std::string head("PING\0\r\n", 7);
  const Outcome waiting = FeedAll(head + "PING\r\n");
  CHECK_FALSE(waiting.failed);
  CHECK(waiting.commands.empty());
  CHECK(ErrorOf(head + std::string(70000, 'a')) == "ERR Protocol error: too big inline request");
  // After the newline a NUL belongs to the next line.
  CHECK(FeedAll(std::string("PING\r\n\0", 7)).commands.size() == 1);
}

TEST_CASE("bytes after CR and after bulk data are skipped unchecked, like Valkey",
          "[resp][parser]") {
  CHECK(FeedEveryWay("*1\rX$4\rYPING\r\n").commands == std::vector<Args>{{"PING"}});
  CHECK(FeedEveryWay("*1\r\n$3\r\nfooXY*1\r\n$4\r\nPING\r\n").commands ==
        std::vector<Args>{{"foo"}, {"PING"}});
}

TEST_CASE("a protocol error is final", "[resp][parser]") {
  RequestParser parser;
  size_t consumed = 0;
  REQUIRE(parser.Parse("*x\r\n", &consumed) == RequestParser::Status::kError);
  CHECK(parser.Parse("PING\r\n", &consumed) == RequestParser::Status::kError);
  CHECK(parser.error() == "ERR Protocol error: invalid multibulk length");
  parser.Reset();
  CHECK(parser.Parse("PING\r\n", &consumed) == RequestParser::Status::kCommand);
}

TEST_CASE("pending_bytes counts the partial command", "[resp][parser]") {
  RequestParser parser;
  size_t consumed = 0;
  CHECK(parser.Parse("*2\r\n$3\r\nGET\r\n$5\r\nab", &consumed) == RequestParser::Status::kNeedMore);
  CHECK(parser.pending_bytes() == 5);
  CHECK(parser.Parse("cde\r\n*1\r\n$1", &consumed) == RequestParser::Status::kCommand);
  CHECK(parser.pending_bytes() == 0);
  CHECK(parser.Parse("*1\r\n$1", &consumed) == RequestParser::Status::kNeedMore);
  CHECK(parser.pending_bytes() == 2);  // "$1" of a header line
  CHECK(parser.Parse("\r\nx\r\nGET k", &consumed) == RequestParser::Status::kCommand);
  CHECK(parser.Parse("GET k", &consumed) == RequestParser::Status::kNeedMore);
  CHECK(parser.pending_bytes() == 5);
  parser.Reset();
  CHECK(parser.pending_bytes() == 0);
}

// Bytes the process holds, as INFO memory's used_memory reports them (jemalloc's statistics in
// release builds, glibc's mallinfo2 otherwise).
size_t HeapInUse() { return lattice::util::AllocatedBytes(); }

TEST_CASE("memory follows received bytes, not claimed lengths", "[resp][parser]") {
  if (HeapInUse() == 0) {
    WARN("the allocator reports no statistics (a sanitizer build?); skipped");
    return;
  }
  RequestParser parser;
  size_t consumed = 0;
  const size_t before = HeapInUse();
  CHECK(parser.Parse("*2147483647\r\n$536870912\r\n", &consumed) ==
        RequestParser::Status::kNeedMore);
  CHECK(parser.Parse(std::string(1000, 'x'), &consumed) == RequestParser::Status::kNeedMore);
  CHECK(parser.pending_bytes() == 1000);
  CHECK(HeapInUse() < before + 64 * 1024);

  // A huge argument that did arrive (in two reads, so it was copied) is released once the next
  // command starts.
  RequestParser big;
  const std::string huge = Multibulk({"SET", "k", std::string(8 << 20, 'v')});
  const std::string_view halves[] = {std::string_view(huge).substr(0, huge.size() / 2),
                                     std::string_view(huge).substr(huge.size() / 2)};
  REQUIRE(big.Parse(halves[0], &consumed) == RequestParser::Status::kNeedMore);
  REQUIRE(big.Parse(halves[1], &consumed) == RequestParser::Status::kCommand);
  const size_t with_huge = HeapInUse();
  REQUIRE(big.Parse("PING\r\n", &consumed) == RequestParser::Status::kCommand);
  CHECK(HeapInUse() + (8u << 20) <= with_huge);
}

// A random pipeline of multibulk, inline and skipped requests, with the commands it must give.
struct Pipeline {
  std::string bytes;
  std::vector<Args> commands;
};

std::string RandomBytes(Rng& rng, size_t max_len) {
  std::string out(rng.Uniform(max_len + 1), '\0');
  for (char& c : out) {
    c = rng.Chance(1, 4) ? "\r\n\0 \"'$*"[rng.Uniform(8)] : static_cast<char>(rng.Uniform(256));
  }
  return out;
}

// Quotes `arg` for an inline request: printable bytes as is, the rest as \xHH.
std::string QuoteInline(const std::string& arg) {
  std::string out = "\"";
  for (const char c : arg) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte >= 0x20 && byte < 0x7f) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    }
  }
  return out + "\"";
}

void AppendRandomRequest(Rng& rng, Pipeline* pipeline) {
  switch (rng.Uniform(5)) {
    case 0:
      pipeline->bytes += rng.Chance(1, 2) ? "*0\r\n" : "\r\n";
      return;
    case 1: {
      Args args;
      std::string line = rng.Chance(1, 2) ? " " : "";
      for (size_t i = 0, n = 1 + rng.Uniform(4); i < n; ++i) {
        args.push_back(RandomBytes(rng, 12));
        line += QuoteInline(args.back()) + (rng.Chance(1, 2) ? " " : "\t");
      }
      pipeline->bytes += line + (rng.Chance(1, 2) ? "\r\n" : "\n");
      pipeline->commands.push_back(args);
      return;
    }
    default: {
      Args args;
      for (size_t i = 0, n = 1 + rng.Uniform(5); i < n; ++i) {
        args.push_back(RandomBytes(rng, rng.Chance(1, 20) ? 300 : 20));
      }
      pipeline->bytes += Multibulk(args);
      pipeline->commands.push_back(args);
    }
  }
}

TEST_CASE("a random pipeline parses the same under any fragmentation", "[resp][parser]") {
  const uint64_t seed = GENERATE(take(30, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);  // a failure prints the seed that replays it
  Rng rng(seed);
  Pipeline pipeline;
  for (size_t i = 0, n = 1 + rng.Uniform(12); i < n; ++i) {
    AppendRandomRequest(rng, &pipeline);
  }
  const Outcome whole = FeedAll(pipeline.bytes);
  REQUIRE_FALSE(whole.failed);
  CHECK(whole.commands == pipeline.commands);
  CHECK(whole.pending == 0);
  CHECK(FeedBytewise(pipeline.bytes) == whole);
  for (size_t cut = 1; cut < pipeline.bytes.size(); ++cut) {
    CAPTURE(cut);
    const std::string_view bytes = pipeline.bytes;
    REQUIRE(FeedChunks({bytes.substr(0, cut), bytes.substr(cut)}) == whole);
  }
  std::vector<std::string_view> chunks;
  for (size_t at = 0; at < pipeline.bytes.size();) {
    const size_t len = 1 + rng.Uniform(64);
    chunks.push_back(std::string_view(pipeline.bytes).substr(at, len));
    at += len;
  }
  CHECK(FeedChunks(chunks) == whole);
}

}  // namespace
}  // namespace lattice::server
