#include "resp/reply_decoder.h"

#include <algorithm>
#include <charconv>

// A strict recursive-descent decoder: every line must end in CRLF, lengths must be exact. It
// backs test assertions, so it prefers rejecting odd input to guessing. RESP3 attributes (`|`)
// are read and dropped, as clients do, and the reply they annotate is returned.

namespace lattice::server {
namespace {

constexpr int kMaxDepth = 256;  // nesting deeper than this is refused rather than recursed

class Decoder {
 public:
  explicit Decoder(std::string_view input) : input_(input) {}

  size_t position() const { return pos_; }

  Result<RespValue> Value(int depth) {
    if (depth > kMaxDepth) {
      return Unexpected("malformed reply: nesting deeper than " + std::to_string(kMaxDepth));
    }
    if (pos_ >= input_.size()) {
      return Incomplete();
    }
    const char prefix = input_[pos_++];
    auto line = Line();
    if (!line.ok()) {
      return Unexpected(line.error());
    }
    switch (prefix) {
      case '+':
        return Text(RespValue::Type::kSimpleString, *line);
      case '-':
        return Text(RespValue::Type::kError, *line);
      case '(':
        return Text(RespValue::Type::kBigNumber, *line);
      case ',':
        return Text(RespValue::Type::kDouble, *line);
      case ':':
        return IntegerValue(*line);
      case '#':
        return BoolValue(*line);
      case '_':
        return Null(*line);
      case '$':
      case '!':
      case '=':
        return Blob(prefix, *line);
      case '*':
      case '%':
      case '~':
      case '>':
        return Aggregate(prefix, *line, depth);
      case '|':
        return Attribute(*line, depth);
      default:
        return Unexpected(std::string("malformed reply: unknown type byte '") + prefix + "'");
    }
  }

 private:
  static Unexpected Incomplete() { return Unexpected("incomplete reply"); }

  // The rest of the current line, without its CRLF.
  Result<std::string_view> Line() {
    const size_t cr = input_.find('\r', pos_);
    if (cr == std::string_view::npos || cr + 1 >= input_.size()) {
      return Incomplete();
    }
    if (input_[cr + 1] != '\n') {
      return Unexpected("malformed reply: CR not followed by LF");
    }
    const std::string_view line = input_.substr(pos_, cr - pos_);
    pos_ = cr + 2;
    return line;
  }

  static Result<int64_t> Number(std::string_view text) {
    int64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
      return Unexpected("malformed reply: bad number '" + std::string(text) + "'");
    }
    return value;
  }

  static RespValue Text(RespValue::Type type, std::string_view text) {
    RespValue value;
    value.type = type;
    value.text = std::string(text);
    return value;
  }

  static Result<RespValue> IntegerValue(std::string_view line) {
    auto number = Number(line);
    if (!number.ok()) {
      return Unexpected(number.error());
    }
    RespValue value;
    value.type = RespValue::Type::kInteger;
    value.integer = *number;
    return value;
  }

  static Result<RespValue> BoolValue(std::string_view line) {
    if (line != "t" && line != "f") {
      return Unexpected("malformed reply: bad boolean '" + std::string(line) + "'");
    }
    RespValue value;
    value.type = RespValue::Type::kBool;
    value.integer = line == "t" ? 1 : 0;
    return value;
  }

  static Result<RespValue> Null(std::string_view line) {
    if (!line.empty()) {
      return Unexpected("malformed reply: null with a payload");
    }
    return RespValue{};
  }

  // `$`, `!` and `=`: a length line, the bytes, CRLF. `$-1` is the RESP2 null.
  Result<RespValue> Blob(char prefix, std::string_view line) {
    auto length = Number(line);
    if (!length.ok()) {
      return Unexpected(length.error());
    }
    RespValue value;
    if (prefix == '$' && *length == -1) {
      value.type = RespValue::Type::kNull;
      return value;
    }
    if (*length < 0) {
      return Unexpected("malformed reply: negative length");
    }
    const auto size = static_cast<uint64_t>(*length);
    if (size > input_.size() - pos_ || input_.size() - pos_ - size < 2) {
      return Incomplete();
    }
    std::string_view bytes = input_.substr(pos_, size);
    if (input_.substr(pos_ + size, 2) != "\r\n") {
      return Unexpected("malformed reply: bulk not followed by CRLF");
    }
    pos_ += size + 2;
    value.type = prefix == '$'   ? RespValue::Type::kBulk
                 : prefix == '!' ? RespValue::Type::kError
                                 : RespValue::Type::kVerbatim;
    if (prefix == '=') {
      if (bytes.size() < 4 || bytes[3] != ':') {
        return Unexpected("malformed reply: verbatim string without a format");
      }
      value.format = std::string(bytes.substr(0, 3));
      bytes.remove_prefix(4);
    }
    value.text = std::string(bytes);
    return value;
  }

  // `*`, `%`, `~`, `>`: a count line, then the elements (two per map entry). `*-1` is the RESP2
  // null array.
  Result<RespValue> Aggregate(char prefix, std::string_view line, int depth) {
    auto count = Number(line);
    if (!count.ok()) {
      return Unexpected(count.error());
    }
    RespValue value;
    if (prefix == '*' && *count == -1) {
      value.type = RespValue::Type::kNullArray;
      return value;
    }
    if (*count < 0) {
      return Unexpected("malformed reply: negative count");
    }
    value.type = prefix == '*'   ? RespValue::Type::kArray
                 : prefix == '%' ? RespValue::Type::kMap
                 : prefix == '~' ? RespValue::Type::kSet
                                 : RespValue::Type::kPush;
    const uint64_t elements = static_cast<uint64_t>(*count) * (prefix == '%' ? 2 : 1);
    // Each element takes at least three bytes, so this never reserves from a bogus count.
    value.elements.reserve(std::min<uint64_t>(elements, (input_.size() - pos_) / 3));
    for (uint64_t i = 0; i < elements; ++i) {
      auto element = Value(depth + 1);
      if (!element.ok()) {
        return element;
      }
      value.elements.push_back(std::move(*element));
    }
    return value;
  }

  Result<RespValue> Attribute(std::string_view line, int depth) {
    auto pairs = Number(line);
    if (!pairs.ok()) {
      return Unexpected(pairs.error());
    }
    if (*pairs < 0) {
      return Unexpected("malformed reply: negative count");
    }
    for (int64_t i = 0; i < 2 * *pairs; ++i) {
      auto skipped = Value(depth + 1);
      if (!skipped.ok()) {
        return skipped;
      }
    }
    return Value(depth);
  }

  std::string_view input_;
  size_t pos_ = 0;
};

void AppendJoined(const std::vector<RespValue>& elements, std::string* out) {
  for (size_t i = 0; i < elements.size(); ++i) {
    if (i > 0) {
      out->append(", ");
    }
    out->append(elements[i].ToString());
  }
}

}  // namespace

std::string RespValue::ToString() const {
  switch (type) {
    case Type::kSimpleString:
      return text;
    case Type::kError:
      return "(error) " + text;
    case Type::kInteger:
      return std::to_string(integer);
    case Type::kBulk:
      return "\"" + text + "\"";
    case Type::kNull:
      return "(nil)";
    case Type::kNullArray:
      return "(nil-array)";
    case Type::kDouble:
      return "(double) " + text;
    case Type::kBool:
      return integer != 0 ? "(true)" : "(false)";
    case Type::kVerbatim:
      return "(" + format + ") " + text;
    case Type::kBigNumber:
      return "(big) " + text;
    case Type::kMap: {
      std::string out = "{";
      for (size_t i = 0; i + 1 < elements.size(); i += 2) {
        out.append(i > 0 ? ", " : "");
        out.append(elements[i].ToString()).append(": ").append(elements[i + 1].ToString());
      }
      return out + "}";
    }
    case Type::kArray:
    case Type::kSet:
    case Type::kPush: {
      std::string out = type == Type::kArray ? "[" : type == Type::kSet ? "~[" : ">[";
      AppendJoined(elements, &out);
      return out + "]";
    }
  }
  return "(unknown)";
}

Result<RespValue> DecodeReply(std::string_view input, size_t* consumed) {
  Decoder decoder(input);
  auto value = decoder.Value(0);
  if (value.ok() && consumed != nullptr) {
    *consumed = decoder.position();
  }
  return value;
}

Result<std::vector<RespValue>> DecodeReplies(std::string_view input) {
  std::vector<RespValue> replies;
  while (!input.empty()) {
    size_t consumed = 0;
    auto reply = DecodeReply(input, &consumed);
    if (!reply.ok()) {
      return Unexpected(reply.error());
    }
    replies.push_back(std::move(*reply));
    input.remove_prefix(consumed);
  }
  return replies;
}

}  // namespace lattice::server
