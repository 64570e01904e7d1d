#include "resp/reply_builder.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "lattice/common/assert.h"
#include "resp/errors.h"

namespace lattice::server {
namespace {

constexpr std::string_view kCrlf = "\r\n";
// Longest FormatDouble text: "-" + 17 digits + "." + "e-308" fits easily.
constexpr size_t kDoubleBufferSize = 40;

bool HasCrOrLf(std::string_view text) {
  return std::memchr(text.data(), '\r', text.size()) != nullptr ||
         std::memchr(text.data(), '\n', text.size()) != nullptr;
}

// Appends `text` with CR and LF replaced by spaces, as Valkey does for error replies.
void AppendWithoutNewlines(std::string* out, std::string_view text) {
  if (!HasCrOrLf(text)) {
    out->append(text);
    return;
  }
  const size_t start = out->size();
  out->append(text);
  for (size_t i = start; i < out->size(); ++i) {
    if ((*out)[i] == '\r' || (*out)[i] == '\n') {
      (*out)[i] = ' ';
    }
  }
}

// Lays out the shortest digits of a finite, nonzero |value| (value = digits * 10^k) exactly as
// Valkey's fpconv_dtoa emit_digits does: a plain integer when the exponent is small enough, a
// plain decimal for moderate negative exponents, otherwise d.ddde[+-]x with no exponent padding.
size_t EmitDigits(std::string_view digits, int k, char* out) {
  const int ndigits = static_cast<int>(digits.size());
  const int exponent = std::abs(k + ndigits - 1);
  char* p = out;
  if (k >= 0 && exponent < ndigits + 7) {
    p = std::copy(digits.begin(), digits.end(), p);
    return static_cast<size_t>(std::fill_n(p, k, '0') - out);
  }
  if (k < 0 && (k > -7 || exponent < 4)) {
    const int offset = ndigits + k;
    if (offset <= 0) {
      *p++ = '0';
      *p++ = '.';
      p = std::fill_n(p, -offset, '0');
      p = std::copy(digits.begin(), digits.end(), p);
    } else {
      p = std::copy(digits.begin(), digits.begin() + offset, p);
      *p++ = '.';
      p = std::copy(digits.begin() + offset, digits.end(), p);
    }
    return static_cast<size_t>(p - out);
  }
  *p++ = digits[0];
  if (ndigits > 1) {
    *p++ = '.';
    p = std::copy(digits.begin() + 1, digits.end(), p);
  }
  *p++ = 'e';
  *p++ = k + ndigits - 1 < 0 ? '-' : '+';
  p = std::to_chars(p, p + 4, exponent).ptr;
  return static_cast<size_t>(p - out);
}

// Writes Valkey's d2string text for `value` into `out` (kDoubleBufferSize bytes) and returns its
// length. The digits come from std::to_chars (shortest round trip); Valkey's Grisu2 gives the
// same digits except in rare cases where it is not shortest, and both parse back to `value`.
size_t FormatDoubleTo(double value, char* out) {
  if (std::isnan(value)) {
    std::memcpy(out, "nan", 3);
    return 3;
  }
  if (std::isinf(value)) {
    std::memcpy(out, value < 0 ? "-inf" : "inf", value < 0 ? 4 : 3);
    return value < 0 ? 4 : 3;
  }
  if (value == 0) {
    std::memcpy(out, std::signbit(value) ? "-0" : "0", std::signbit(value) ? 2 : 1);
    return std::signbit(value) ? 2 : 1;
  }
  // Valkey's double2ll: integral values within +-LLONG_MAX/2 print as integers.
  constexpr double kIntegerLimit = static_cast<double>(LLONG_MAX / 2);
  if (value >= -kIntegerLimit && value <= kIntegerLimit) {
    const auto integer = static_cast<long long>(value);
    if (static_cast<double>(integer) == value) {
      return static_cast<size_t>(std::to_chars(out, out + kDoubleBufferSize, integer).ptr - out);
    }
  }
  // Scientific form gives the digits and the decimal exponent: "-d.ddde+XX".
  char scientific[kDoubleBufferSize];
  const char* end = std::to_chars(scientific, scientific + sizeof(scientific), value,
                                  std::chars_format::scientific)
                        .ptr;
  const char* p = scientific;
  char* o = out;
  if (*p == '-') {
    *o++ = *p++;
  }
  char digits[20];
  int ndigits = 0;
  for (; *p != 'e'; ++p) {
    if (*p != '.') {
      digits[ndigits++] = *p;
    }
  }
  int exponent = 0;
  std::from_chars(p + (p[1] == '+' ? 2 : 1), end, exponent);
  const int k = exponent - (ndigits - 1);
  return static_cast<size_t>(o - out) + EmitDigits(std::string_view(digits, ndigits), k, o);
}

}  // namespace

std::string FormatDouble(double value) {
  char buffer[kDoubleBufferSize];
  return std::string(buffer, FormatDoubleTo(value, buffer));
}

void ReplyBuilder::Header(char prefix, int64_t count) {
  char buffer[24];
  buffer[0] = prefix;
  char* end = std::to_chars(buffer + 1, buffer + sizeof(buffer) - 2, count).ptr;
  *end++ = '\r';
  *end++ = '\n';
  out_->append(buffer, static_cast<size_t>(end - buffer));
}

// Valkey does not check status replies; a CR or LF here would let reply text (which may echo
// client input) break the framing, so it is mapped to a space as for errors.
void ReplyBuilder::SimpleString(std::string_view text) {
  out_->push_back('+');
  AppendWithoutNewlines(out_, text);
  out_->append(kCrlf);
}

void ReplyBuilder::Error(std::string_view message) {
  // A message that already starts with '-' is not given a second one.
  if (!message.empty() && message[0] == '-') {
    message.remove_prefix(1);
  }
  out_->push_back('-');
  AppendWithoutNewlines(out_, message);
  out_->append(kCrlf);
  ++errors_written_;
}

void ReplyBuilder::Error(const lattice::Error& error) { Error(ErrorReply(error)); }

void ReplyBuilder::Integer(int64_t value) { Header(':', value); }

void ReplyBuilder::Bulk(std::string_view value) {
  Header('$', static_cast<int64_t>(value.size()));
  out_->append(value);
  out_->append(kCrlf);
}

void ReplyBuilder::Null() {
  out_->append(protocol_ == Protocol::kResp3 ? std::string_view("_\r\n") : "$-1\r\n");
}

void ReplyBuilder::NullArray() {
  out_->append(protocol_ == Protocol::kResp3 ? std::string_view("_\r\n") : "*-1\r\n");
}

void ReplyBuilder::Array(size_t count) { Header('*', static_cast<int64_t>(count)); }

void ReplyBuilder::Map(size_t pairs) {
  if (protocol_ == Protocol::kResp3) {
    Header('%', static_cast<int64_t>(pairs));
  } else {
    Header('*', static_cast<int64_t>(2 * pairs));
  }
}

void ReplyBuilder::Set(size_t count) {
  Header(protocol_ == Protocol::kResp3 ? '~' : '*', static_cast<int64_t>(count));
}

void ReplyBuilder::Push(size_t count) {
  Header(protocol_ == Protocol::kResp3 ? '>' : '*', static_cast<int64_t>(count));
}

void ReplyBuilder::Double(double value) {
  char buffer[kDoubleBufferSize];
  const std::string_view text(buffer, FormatDoubleTo(value, buffer));
  if (protocol_ == Protocol::kResp3) {
    out_->push_back(',');
    out_->append(text);
    out_->append(kCrlf);
  } else {
    Bulk(text);
  }
}

void ReplyBuilder::Bool(bool value) {
  if (protocol_ == Protocol::kResp3) {
    out_->append(value ? "#t\r\n" : "#f\r\n");
  } else {
    out_->append(value ? ":1\r\n" : ":0\r\n");
  }
}

void ReplyBuilder::Verbatim(std::string_view text, std::string_view format) {
  LATTICE_ASSERT_MSG(format.size() == 3, "a verbatim format is three characters");
  if (protocol_ != Protocol::kResp3) {
    Bulk(text);
    return;
  }
  Header('=', static_cast<int64_t>(text.size() + format.size() + 1));
  out_->append(format);
  out_->push_back(':');
  out_->append(text);
  out_->append(kCrlf);
}

void ReplyBuilder::BigNumber(std::string_view digits) {
  if (protocol_ != Protocol::kResp3) {
    Bulk(digits);
    return;
  }
  out_->push_back('(');
  out_->append(digits);
  out_->append(kCrlf);
}

}  // namespace lattice::server
