#include "util/rdb.h"

#include <array>

namespace lattice::server {
namespace {

constexpr size_t kFooter = 10;  // RDB version + CRC64
// LZF turns at most 3 input bytes into 264 output bytes: a claimed size beyond that ratio is a
// lie, refused before anything is reserved.
constexpr uint64_t kLzfRatioMax = 88;

std::array<uint64_t, 256> MakeCrcTable() {
  std::array<uint64_t, 256> table{};
  constexpr uint64_t kPoly = 0x95ac9329ac4bc9b5ULL;  // 0xad93d23594c935a9 bit-reversed
  for (uint64_t i = 0; i < 256; ++i) {
    uint64_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1) ? (crc >> 1) ^ kPoly : crc >> 1;
    table[i] = crc;
  }
  return table;
}

}  // namespace

uint64_t Crc64(uint64_t crc, std::string_view data) {
  static const std::array<uint64_t, 256> kTable = MakeCrcTable();
  for (const char c : data) crc = kTable[(crc ^ static_cast<uint8_t>(c)) & 0xff] ^ (crc >> 8);
  return crc;
}

// LZF: a control byte c < 32 copies the next c + 1 literal bytes; otherwise a back reference of
// length (c >> 5) + 2 (7 in the top bits: one more length byte is added) at distance
// ((c & 31) << 8) + next byte + 1 before the output's end.
bool LzfDecompress(std::string_view in, size_t size, std::string* out) {
  out->clear();
  if (size > (in.size() + 1) * kLzfRatioMax) return false;
  out->reserve(size);
  size_t i = 0;
  while (i < in.size()) {
    const uint8_t control = static_cast<uint8_t>(in[i++]);
    if (control < 32) {
      const size_t count = size_t{control} + 1;
      if (count > in.size() - i || count > size - out->size()) return false;
      out->append(in.substr(i, count));
      i += count;
      continue;
    }
    size_t length = control >> 5;
    if (length == 7) {
      if (i >= in.size()) return false;
      length += static_cast<uint8_t>(in[i++]);
    }
    length += 2;
    if (i >= in.size()) return false;
    const size_t distance = ((size_t{control} & 31) << 8) + static_cast<uint8_t>(in[i++]) + 1;
    if (distance > out->size() || length > size - out->size()) return false;
    const size_t from = out->size() - distance;
    for (size_t k = 0; k < length; ++k) out->push_back((*out)[from + k]);  // may overlap
  }
  return out->size() == size;
}

void RdbPutLength(std::string& out, uint64_t len) {
  if (len < 64) {
    out.push_back(static_cast<char>(len));
  } else if (len < 16384) {
    out.push_back(static_cast<char>(0x40 | (len >> 8)));
    out.push_back(static_cast<char>(len & 0xff));
  } else if (len <= UINT32_MAX) {
    out.push_back(static_cast<char>(0x80));
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(len >> shift));
  } else {
    out.push_back(static_cast<char>(0x81));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(len >> shift));
  }
}

void RdbPutString(std::string& out, std::string_view bytes) {
  RdbPutLength(out, bytes.size());
  out.append(bytes);
}

void RdbPutU16(std::string& out, uint16_t value) {
  out.push_back(static_cast<char>(value & 0xff));
  out.push_back(static_cast<char>(value >> 8));
}

std::string RdbSealPayload(std::string body, uint16_t version) {
  RdbPutU16(body, version);
  const uint64_t crc = Crc64(0, body);
  for (int i = 0; i < 8; ++i) body.push_back(static_cast<char>(crc >> (8 * i)));
  return body;
}

bool RdbVersionAccepted(uint16_t version, bool relaxed) {
  return relaxed || version <= 11 || version == 80;
}

Result<std::string_view> RdbOpenPayload(std::string_view payload, bool relaxed) {
  const auto wrong = [] {
    return Unexpected(ErrorCode::kInvalid, "DUMP payload version or checksum are wrong");
  };
  if (payload.size() < kFooter) return wrong();
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(payload[i]); };
  const size_t footer = payload.size() - kFooter;
  const auto version = static_cast<uint16_t>(byte(footer) | (byte(footer + 1) << 8));
  if (!RdbVersionAccepted(version, relaxed)) return wrong();
  uint64_t crc = 0;
  for (int i = 7; i >= 0; --i) crc = (crc << 8) | byte(footer + 2 + i);
  if (crc != Crc64(0, payload.substr(0, footer + 2))) return wrong();
  return payload.substr(0, footer);
}

bool RdbReader::Byte(uint8_t* out) {
  if (pos_ >= in_.size()) return false;
  *out = static_cast<uint8_t>(in_[pos_++]);
  return true;
}

bool RdbReader::Take(uint64_t len, std::string_view* out) {
  if (len > in_.size() - pos_) return false;
  *out = in_.substr(pos_, len);
  pos_ += len;
  return true;
}

bool RdbReader::BigEndian(int bytes, uint64_t* out) {
  *out = 0;
  for (int i = 0; i < bytes; ++i) {
    uint8_t b = 0;
    if (!Byte(&b)) return false;
    *out = (*out << 8) | b;
  }
  return true;
}

bool RdbReader::LittleEndian(int bytes, uint64_t* out) {
  std::string_view raw;
  if (!Take(bytes, &raw)) return false;
  *out = 0;
  for (int i = bytes - 1; i >= 0; --i) *out = (*out << 8) | static_cast<uint8_t>(raw[i]);
  return true;
}

bool RdbReader::Length(uint64_t* len, bool* encoded) {
  uint8_t first = 0;
  if (!Byte(&first)) return false;
  *encoded = false;
  switch (first >> 6) {
    case 0:
      *len = first & 0x3f;
      return true;
    case 1: {
      uint8_t second = 0;
      if (!Byte(&second)) return false;
      *len = (uint64_t{first & 0x3fu} << 8) | second;
      return true;
    }
    case 2:
      if (first == 0x80) return BigEndian(4, len);
      if (first == 0x81) return BigEndian(8, len);
      return false;
    default:
      *encoded = true;
      *len = first & 0x3f;
      return true;
  }
}

bool RdbReader::Length(uint64_t* len) {
  bool encoded = false;
  return Length(len, &encoded) && !encoded;
}

bool RdbReader::String(std::string* out, uint64_t size_max) {
  uint64_t len = 0;
  bool encoded = false;
  if (!Length(&len, &encoded)) return false;
  std::string_view bytes;
  if (!encoded) {
    if (len > size_max || !Take(len, &bytes)) return false;
    out->assign(bytes);
    return true;
  }
  if (len <= 2) {  // an integer of 1, 2 or 4 bytes, little-endian
    const int size = 1 << len;
    uint64_t raw = 0;
    if (!LittleEndian(size, &raw)) return false;
    const int64_t value = size == 1   ? static_cast<int8_t>(raw)
                          : size == 2 ? static_cast<int16_t>(raw)
                                      : static_cast<int32_t>(raw);
    *out = std::to_string(value);
    return true;
  }
  if (len != 3) return false;  // 3: LZF
  uint64_t compressed = 0;
  uint64_t size = 0;
  if (!Length(&compressed) || !Length(&size)) return false;
  if (size > size_max || !Take(compressed, &bytes)) return false;
  return LzfDecompress(bytes, size, out);
}

}  // namespace lattice::server
