#include "resp/reply_decoder.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "lattice/common/rng.h"
#include "resp/reply_builder.h"

namespace lattice::server {
namespace {

using Type = RespValue::Type;

std::string Render(std::string_view bytes) {
  size_t consumed = 0;
  auto value = DecodeReply(bytes, &consumed);
  if (!value.ok()) {
    return "decode failed: " + value.error().message;
  }
  CHECK(consumed == bytes.size());
  return value->ToString();
}

std::string ErrorOf(std::string_view bytes) {
  auto value = DecodeReply(bytes);
  REQUIRE_FALSE(value.ok());
  return value.error().message;
}

TEST_CASE("every RESP2 type decodes", "[resp][decoder]") {
  CHECK(Render("+OK\r\n") == "OK");
  CHECK(Render("-ERR x\r\n") == "(error) ERR x");
  CHECK(Render(":5\r\n") == "5");
  CHECK(Render(":-9223372036854775808\r\n") == "-9223372036854775808");
  CHECK(Render("$1\r\nv\r\n") == "\"v\"");
  CHECK(Render("$0\r\n\r\n") == "\"\"");
  CHECK(Render("$-1\r\n") == "(nil)");
  CHECK(Render("*-1\r\n") == "(nil-array)");
  CHECK(Render("*0\r\n") == "[]");
  CHECK(Render("*2\r\n$1\r\na\r\n:1\r\n") == "[\"a\", 1]");
  CHECK(Render("*2\r\n*1\r\n+x\r\n*0\r\n") == "[[x], []]");
  auto bulk = DecodeReply(std::string("$4\r\na\r\n\0\r\n", 10));
  REQUIRE(bulk.ok());
  CHECK(bulk->type == Type::kBulk);
  CHECK(bulk->text == std::string("a\r\n\0", 4));
}

TEST_CASE("every RESP3 type decodes", "[resp][decoder]") {
  CHECK(Render("_\r\n") == "(nil)");
  CHECK(Render(",1.5\r\n") == "(double) 1.5");
  CHECK(Render(",-inf\r\n") == "(double) -inf");
  CHECK(Render("#t\r\n") == "(true)");
  CHECK(Render("#f\r\n") == "(false)");
  CHECK(Render("(12345678901234567890\r\n") == "(big) 12345678901234567890");
  CHECK(Render("=8\r\ntxt:a\r\nb\r\n") == "(txt) a\r\nb");
  CHECK(Render("=7\r\nmkd:# h\r\n") == "(mkd) # h");
  CHECK(Render("!8\r\nERR a\r\nb\r\n") == "(error) ERR a\r\nb");
  CHECK(Render("%2\r\n+a\r\n:1\r\n+b\r\n%0\r\n") == "{a: 1, b: {}}");
  CHECK(Render("~2\r\n+a\r\n+b\r\n") == "~[a, b]");
  CHECK(Render(">2\r\n+message\r\n$1\r\nx\r\n") == ">[message, \"x\"]");
  // An attribute is read and dropped; the reply it annotates is what comes back.
  CHECK(Render("|1\r\n+key\r\n:1\r\n*1\r\n:2\r\n") == "[2]");
  auto value = DecodeReply("=8\r\ntxt:abcd\r\n");
  REQUIRE(value.ok());
  CHECK(value->type == Type::kVerbatim);
  CHECK(value->format == "txt");
  CHECK(value->text == "abcd");
  auto boolean = DecodeReply("#t\r\n");
  REQUIRE(boolean.ok());
  CHECK(boolean->type == Type::kBool);
  CHECK(boolean->integer == 1);
}

TEST_CASE("incomplete and malformed replies are errors", "[resp][decoder]") {
  for (const char* partial :
       {"", "+OK", "+OK\r", "$3\r\nab", "$3\r\nabc\r", "*2\r\n:1\r\n", "%1\r\n+a\r\n", ":12"}) {
    CAPTURE(partial);
    CHECK(ErrorOf(partial) == "incomplete reply");
  }
  CHECK(ErrorOf("?x\r\n") == "malformed reply: unknown type byte '?'");
  CHECK(ErrorOf(":1x\r\n") == "malformed reply: bad number '1x'");
  CHECK(ErrorOf("$3\r\nabcd\r\n") == "malformed reply: bulk not followed by CRLF");
  CHECK(ErrorOf("+a\rb\r\n") == "malformed reply: CR not followed by LF");
  CHECK(ErrorOf("#x\r\n") == "malformed reply: bad boolean 'x'");
  CHECK(ErrorOf("$-2\r\n") == "malformed reply: negative length");
  CHECK(ErrorOf("~-1\r\n") == "malformed reply: negative count");
  CHECK(ErrorOf("=2\r\nab\r\n") == "malformed reply: verbatim string without a format");
  std::string deep;
  for (int i = 0; i < 300; ++i) {
    deep += "*1\r\n";
  }
  CHECK(ErrorOf(deep + ":1\r\n") == "malformed reply: nesting deeper than 256");
  // A claimed huge count does not allocate: it just runs out of input.
  CHECK(ErrorOf("*2147483647\r\n:1\r\n") == "incomplete reply");
}

TEST_CASE("DecodeReplies splits a pipelined batch", "[resp][decoder]") {
  auto replies = DecodeReplies("+OK\r\n:1\r\n$-1\r\n*1\r\n$1\r\nx\r\n");
  REQUIRE(replies.ok());
  REQUIRE(replies->size() == 4);
  CHECK((*replies)[0].ToString() == "OK");
  CHECK((*replies)[3].ToString() == "[\"x\"]");
  CHECK(DecodeReplies("")->empty());
  CHECK_FALSE(DecodeReplies("+OK\r\n:1").ok());
}

bool Same(const RespValue& a, const RespValue& b) {
  if (a.type != b.type || a.text != b.text || a.integer != b.integer || a.format != b.format ||
      a.elements.size() != b.elements.size()) {
    return false;
  }
  for (size_t i = 0; i < a.elements.size(); ++i) {
    if (!Same(a.elements[i], b.elements[i])) {
      return false;
    }
  }
  return true;
}

RespValue Leaf(Type type, std::string text = "", int64_t integer = 0) {
  RespValue value;
  value.type = type;
  value.text = std::move(text);
  value.integer = integer;
  return value;
}

std::string RandomText(Rng& rng, bool allow_newlines) {
  std::string out(rng.Uniform(12), 'a');
  for (char& c : out) {
    c = static_cast<char>(allow_newlines && rng.Chance(1, 5) ? "\r\n\0"[rng.Uniform(3)]
                                                             : 'a' + rng.Uniform(26));
  }
  return out;
}

// A random reply tree, as a handler would describe it in RESP3 terms.
RespValue RandomReply(Rng& rng, int depth) {
  const uint64_t kind = rng.Uniform(depth > 3 ? 11 : 15);
  switch (kind) {
    case 0:
      return Leaf(Type::kSimpleString, RandomText(rng, false));
    case 1:
      return Leaf(Type::kError, "ERR " + RandomText(rng, false));
    case 2:
      return Leaf(Type::kInteger, "", rng.Range(INT64_MIN, INT64_MAX));
    case 3:
      return Leaf(Type::kBulk, RandomText(rng, true));
    case 4:
      return Leaf(Type::kNull);
    case 5:
      return Leaf(Type::kNullArray);
    case 6:
      return Leaf(Type::kDouble, FormatDouble((rng.NextDouble() - 0.5) * 1e6));
    case 7:
      return Leaf(Type::kBool, "", rng.Chance(1, 2) ? 1 : 0);
    case 8: {
      RespValue value = Leaf(Type::kVerbatim, RandomText(rng, true));
      value.format = rng.Chance(1, 2) ? "txt" : "mkd";
      return value;
    }
    case 9:
      return Leaf(Type::kBigNumber, std::to_string(rng.Next()) + std::to_string(rng.Next()));
    case 10:
      return Leaf(Type::kBulk, "");
    default: {
      const Type types[] = {Type::kArray, Type::kMap, Type::kSet, Type::kPush};
      RespValue value = Leaf(types[kind - 11]);
      const size_t count = rng.Uniform(4) * (value.type == Type::kMap ? 2 : 1);
      for (size_t i = 0; i < count; ++i) {
        value.elements.push_back(RandomReply(rng, depth + 1));
      }
      return value;
    }
  }
}

void Write(const RespValue& value, ReplyBuilder& builder) {
  switch (value.type) {
    case Type::kSimpleString:
      return builder.SimpleString(value.text);
    case Type::kError:
      return builder.Error(value.text);
    case Type::kInteger:
      return builder.Integer(value.integer);
    case Type::kBulk:
      return builder.Bulk(value.text);
    case Type::kNull:
      return builder.Null();
    case Type::kNullArray:
      return builder.NullArray();
    case Type::kDouble:
      return builder.Double(std::strtod(value.text.c_str(), nullptr));
    case Type::kBool:
      return builder.Bool(value.integer != 0);
    case Type::kVerbatim:
      return builder.Verbatim(value.text, value.format);
    case Type::kBigNumber:
      return builder.BigNumber(value.text);
    case Type::kArray:
      builder.Array(value.elements.size());
      break;
    case Type::kMap:
      builder.Map(value.elements.size() / 2);
      break;
    case Type::kSet:
      builder.Set(value.elements.size());
      break;
    case Type::kPush:
      builder.Push(value.elements.size());
      break;
  }
  for (const RespValue& element : value.elements) {
    Write(element, builder);
  }
}

// What a RESP3 client decodes for `value`: RESP3 has a single null.
RespValue AsResp3(const RespValue& value) {
  RespValue out = value;
  if (out.type == Type::kNullArray) {
    out.type = Type::kNull;
  }
  for (RespValue& element : out.elements) {
    element = AsResp3(element);
  }
  return out;
}

// What a RESP2 client decodes for `value`.
RespValue Downgraded(const RespValue& value) {
  RespValue out = value;
  switch (value.type) {
    case Type::kMap:
    case Type::kSet:
    case Type::kPush:
      out.type = Type::kArray;
      break;
    case Type::kDouble:
    case Type::kBigNumber:
      out.type = Type::kBulk;
      break;
    case Type::kVerbatim:
      out.type = Type::kBulk;
      out.format.clear();
      break;
    case Type::kBool:
      out.type = Type::kInteger;
      break;
    default:
      break;
  }
  for (RespValue& element : out.elements) {
    element = Downgraded(element);
  }
  return out;
}

TEST_CASE("builder output decodes back to the reply, in RESP3 and RESP2", "[resp][decoder]") {
  const uint64_t seed = GENERATE(take(50, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  std::vector<RespValue> replies;
  std::string resp2;
  std::string resp3;
  ReplyBuilder builder2(&resp2);
  ReplyBuilder builder3(&resp3);
  builder3.set_protocol(Protocol::kResp3);
  for (size_t i = 0, n = 1 + rng.Uniform(10); i < n; ++i) {
    replies.push_back(RandomReply(rng, 0));
    Write(replies.back(), builder2);
    Write(replies.back(), builder3);
  }
  auto decoded3 = DecodeReplies(resp3);
  auto decoded2 = DecodeReplies(resp2);
  REQUIRE(decoded3.ok());
  REQUIRE(decoded2.ok());
  REQUIRE(decoded3->size() == replies.size());
  REQUIRE(decoded2->size() == replies.size());
  for (size_t i = 0; i < replies.size(); ++i) {
    CAPTURE(i, replies[i].ToString());
    CHECK(Same((*decoded3)[i], AsResp3(replies[i])));
    CHECK(Same((*decoded2)[i], Downgraded(replies[i])));
  }
}

}  // namespace
}  // namespace lattice::server
