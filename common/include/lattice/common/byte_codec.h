#pragma once
// Little-endian byte writing and bounds-checked reading with LEB128 varints and zigzag signed
// varints: the primitives of the compact encodings (in-memory element runs, wire bodies).
// ByteReader never reads past its input: a failed read marks it failed (ok() false), returns
// zero or an empty view, and every later read fails too, so a decoder checks ok() once per step.

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace lattice {

inline uint64_t ZigzagEncode(int64_t value) {
  return (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
}
inline int64_t ZigzagDecode(uint64_t raw) {
  return static_cast<int64_t>((raw >> 1) ^ (~(raw & 1) + 1));
}

// Little-endian 64-bit values, one load or store on a little-endian host.
inline void StoreFixed64(char* out, uint64_t value) {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(out, &value, 8);
  } else {
    for (int i = 0; i < 8; ++i) {
      out[i] = static_cast<char>(value >> (8 * i));
    }
  }
}
inline uint64_t LoadFixed64(const char* in) {
  uint64_t value = 0;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&value, in, 8);
  } else {
    for (int i = 0; i < 8; ++i) {
      value |= uint64_t{static_cast<uint8_t>(in[i])} << (8 * i);
    }
  }
  return value;
}

class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}
  void Byte(uint8_t value) { out_.push_back(static_cast<char>(value)); }
  void Varint(uint64_t value) {
    char bytes[10];  // one append: push_back per byte checks the capacity each time
    size_t n = 0;
    while (value >= 0x80) {
      bytes[n++] = static_cast<char>((value & 0x7F) | 0x80);
      value >>= 7;
    }
    bytes[n++] = static_cast<char>(value);
    out_.append(bytes, n);
  }
  void Zigzag(int64_t value) { Varint(ZigzagEncode(value)); }
  void Fixed64(uint64_t value) {
    char bytes[8];
    StoreFixed64(bytes, value);
    out_.append(bytes, 8);
  }
  // A varint length, then the bytes.
  void Bytes(std::string_view bytes) {
    Varint(bytes.size());
    out_.append(bytes);
  }

 private:
  std::string& out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ == in_.size(); }
  size_t pos() const { return pos_; }
  std::string_view Slice(size_t from) const { return in_.substr(from, pos_ - from); }
  uint8_t Byte() {
    if (!Need(1)) return 0;
    return static_cast<uint8_t>(in_[pos_++]);
  }
  uint64_t Varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!Need(1)) return 0;
      const auto byte = static_cast<uint8_t>(in_[pos_++]);
      if (shift == 63 && byte > 1) break;
      value |= uint64_t{byte & 0x7Fu} << shift;
      if ((byte & 0x80) == 0) return value;
    }
    ok_ = false;
    return 0;
  }
  int64_t Zigzag() { return ZigzagDecode(Varint()); }
  uint64_t Fixed64() {
    if (!Need(8)) return 0;
    const uint64_t value = LoadFixed64(in_.data() + pos_);
    pos_ += 8;
    return value;
  }
  std::string_view Bytes() {
    const uint64_t size = Varint();
    if (!Need(size)) return {};
    const std::string_view out = in_.substr(pos_, size);
    pos_ += size;
    return out;
  }
  void Fail() { ok_ = false; }

 private:
  bool Need(uint64_t n) {
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return false;
    }
    return true;
  }

  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace lattice
