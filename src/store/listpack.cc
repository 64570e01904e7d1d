#include "store/listpack.h"

#include <charconv>
#include <utility>

namespace lattice::server {
namespace {

constexpr size_t kHeaderBytes = 6;  // total bytes (u32), count (u16)
constexpr uint64_t kUnknownCount = 65535;

size_t BacklenSize(size_t entry) {
  return entry <= 127 ? 1 : entry < 16383 ? 2 : entry < 2097151 ? 3 : entry < 268435455 ? 4 : 5;
}

// Whether `backlen` (most significant 7 bits first, later bytes with the top bit set) says
// `entry`: Valkey walks a listpack backwards by it, so a wrong one is a corrupt listpack.
bool BacklenMatches(std::string_view backlen, size_t entry) {
  uint64_t value = 0;
  for (size_t i = 0; i < backlen.size(); ++i) {
    const auto b = static_cast<uint8_t>(backlen[i]);
    if (((b & 128) != 0) != (i > 0)) return false;
    value = (value << 7) | (b & 127);
  }
  return value == entry;
}

// Whether `text` is an integer's one decimal spelling (what std::to_string gives back, so the
// element reads back as the same bytes): no sign but a leading '-', no leading zero, not "-0".
bool CanonicalInteger(std::string_view text, int64_t* value) {
  if (text.empty() || text.size() > 20 || text == "-0") return false;
  const size_t digits = text[0] == '-' ? 1 : 0;
  if (text.size() == digits || (text[digits] == '0' && text.size() > digits + 1)) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

void PutLittleEndian(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}

// One element at blob[pos]: its value into *out, its size (back length included) into *size.
bool Element(std::string_view blob, size_t pos, std::string* out, size_t* size) {
  const size_t left = blob.size() - pos;
  const auto b = static_cast<uint8_t>(blob[pos]);
  size_t header = 1;
  uint64_t text = 0;  // string length, when a string
  int int_bytes = 0;  // little-endian integer bytes after the header, when one
  if ((b & 0x80) == 0) {
    *out = std::to_string(b & 0x7f);
  } else if ((b & 0xc0) == 0x80) {
    text = b & 0x3f;
  } else if ((b & 0xe0) == 0xc0) {
    if (left < 2) return false;
    header = 2;
    *out = std::to_string(SignExtend(((b & 0x1fu) << 8) | static_cast<uint8_t>(blob[pos + 1]), 13));
  } else if ((b & 0xf0) == 0xe0) {
    if (left < 2) return false;
    header = 2;
    text = ((b & 0x0fu) << 8) | static_cast<uint8_t>(blob[pos + 1]);
  } else if (b == 0xf0) {
    if (left < 5) return false;
    header = 5;
    text = LoadLittleEndian(blob.substr(pos + 1, 4));
  } else if (b >= 0xf1 && b <= 0xf4) {
    int_bytes = b == 0xf1 ? 2 : b == 0xf2 ? 3 : b == 0xf3 ? 4 : 8;
  } else {
    return false;
  }
  const bool is_text = (b & 0xc0) == 0x80 || (b & 0xf0) == 0xe0 || b == 0xf0;
  const size_t body = is_text ? text : static_cast<size_t>(int_bytes);
  if (body > left - header) return false;
  if (is_text) {
    out->assign(blob.substr(pos + header, body));
  } else if (int_bytes != 0) {
    const uint64_t raw = LoadLittleEndian(blob.substr(pos + header, body));
    *out = std::to_string(SignExtend(raw, 8 * int_bytes));
  }
  const size_t entry = header + body;
  *size = entry + BacklenSize(entry);
  return *size <= left && BacklenMatches(blob.substr(pos + entry, *size - entry), entry);
}

}  // namespace

uint64_t LoadLittleEndian(std::string_view bytes) {
  uint64_t value = 0;
  for (size_t i = bytes.size(); i-- > 0;) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

int64_t SignExtend(uint64_t raw, int bits) {
  if (bits < 64 && (raw >> (bits - 1)) & 1) raw |= ~uint64_t{0} << bits;
  return static_cast<int64_t>(raw);
}

bool ParseListpack(std::string_view blob, std::vector<std::string>* out) {
  if (blob.size() < kHeaderBytes + 1 || LoadLittleEndian(blob.substr(0, 4)) != blob.size() ||
      static_cast<uint8_t>(blob.back()) != 0xff) {
    return false;
  }
  const uint64_t count = LoadLittleEndian(blob.substr(4, 2));
  const std::string_view entries = blob.substr(0, blob.size() - 1);
  const size_t first = out->size();
  for (size_t pos = kHeaderBytes; pos < entries.size();) {
    size_t size = 0;
    std::string value;
    if (!Element(entries, pos, &value, &size)) return false;
    out->push_back(std::move(value));
    pos += size;
  }
  return count == kUnknownCount || count == out->size() - first;
}

ListpackWriter::ListpackWriter() : body_(kHeaderBytes, '\0') {}

void ListpackWriter::Backlen(size_t entry_bytes) {
  const size_t n = BacklenSize(entry_bytes);
  // Most significant 7 bits first; every byte after the first has its top bit set.
  for (size_t i = n; i-- > 0;) {
    const auto bits = static_cast<uint8_t>((entry_bytes >> (7 * i)) & 127);
    body_.push_back(static_cast<char>(i + 1 == n ? bits : bits | 128));
  }
}

void ListpackWriter::AddString(std::string_view bytes) {
  if (int64_t value = 0; CanonicalInteger(bytes, &value)) {
    AddInteger(value);
    return;
  }
  const size_t start = body_.size();
  const size_t len = bytes.size();
  if (len < 64) {
    body_.push_back(static_cast<char>(0x80 | len));
  } else if (len < 4096) {
    body_.push_back(static_cast<char>(0xe0 | (len >> 8)));
    body_.push_back(static_cast<char>(len & 0xff));
  } else {
    body_.push_back(static_cast<char>(0xf0));
    PutLittleEndian(body_, len, 4);
  }
  body_.append(bytes);
  Backlen(body_.size() - start);
  ++count_;
}

void ListpackWriter::AddInteger(int64_t value) {
  const size_t start = body_.size();
  const auto raw = static_cast<uint64_t>(value);
  if (value >= 0 && value <= 127) {
    body_.push_back(static_cast<char>(value));
  } else if (value >= -4096 && value <= 4095) {
    const uint64_t v = raw & 0x1fff;
    body_.push_back(static_cast<char>(0xc0 | (v >> 8)));
    body_.push_back(static_cast<char>(v & 0xff));
  } else {
    const int bytes = value >= -32768 && value <= 32767          ? 2
                      : value >= -8388608 && value <= 8388607    ? 3
                      : value >= INT32_MIN && value <= INT32_MAX ? 4
                                                                 : 8;
    body_.push_back(static_cast<char>(bytes == 2   ? 0xf1
                                      : bytes == 3 ? 0xf2
                                      : bytes == 4 ? 0xf3
                                                   : 0xf4));
    PutLittleEndian(body_, raw, bytes);
  }
  Backlen(body_.size() - start);
  ++count_;
}

std::string ListpackWriter::Finish() && {
  body_.push_back(static_cast<char>(0xff));
  const uint64_t total = body_.size();
  const uint64_t count = count_ < kUnknownCount ? count_ : kUnknownCount;
  for (int i = 0; i < 4; ++i) body_[i] = static_cast<char>(total >> (8 * i));
  for (int i = 0; i < 2; ++i) body_[4 + i] = static_cast<char>(count >> (8 * i));
  return std::move(body_);
}

}  // namespace lattice::server
