#pragma once
// Helpers of the packed element runs (List's chunks, StreamEntries' blocks): buffer capacities
// in the allocator's size classes, and a reader of varints the container coded itself. Internal
// to lattice_crdt.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lattice/common/assert.h"
#include "lattice/common/byte_codec.h"

namespace lattice::crdt::packed {

// The size class the allocator (jemalloc) gives a request of `n` bytes: multiples of 16 up to
// 128, then four classes per doubling. Allocating to it wastes nothing the allocator would not.
inline size_t SizeClass(size_t n) {
  if (n <= 128) {
    return std::max<size_t>(16, (n + 15) & ~size_t{15});
  }
  const size_t step = std::bit_floor(n - 1) / 4;
  return (n + step - 1) / step * step;
}

// The capacity for `needed` bytes in a buffer of `capacity`: the class of `needed` while that is
// small (a small run's one buffer stays the class of its bytes, as a listpack is allocated to
// its size), then a quarter more (amortised O(1) appends with the classes' 25% spacing), but
// never past a full run's size for a run that fits one.
inline size_t Grown(size_t needed, size_t capacity, size_t full) {
  if (needed <= 512) {
    return SizeClass(needed);
  }
  size_t grown = std::max(needed, capacity + capacity / 4);
  if (needed <= full) {
    grown = std::min(grown, full);
  }
  return SizeClass(grown);
}

// Reads the varints of a run the container coded. The bytes are trusted (asserted, not
// checked): one bound check per varint instead of ByteReader's per byte, since decoding is most
// of what a read costs. Untrusted bytes go through ByteReader (the codecs).
class CodedReader {
 public:
  CodedReader(std::string_view bytes, size_t pos)
      : at_(bytes.data() + pos), begin_(at_), end_(bytes.data() + bytes.size()) {}
  uint64_t Varint() {
    LATTICE_ASSERT(at_ < end_);
    uint64_t value = static_cast<uint8_t>(*at_++);
    if (value < 0x80) {
      return value;
    }
    value &= 0x7F;
    for (int shift = 7;; shift += 7) {
      LATTICE_ASSERT(at_ < end_ && shift < 64);
      const auto byte = static_cast<uint8_t>(*at_++);
      value |= uint64_t{byte & 0x7Fu} << shift;
      if (byte < 0x80) {
        return value;
      }
    }
  }
  int64_t Zigzag() { return ZigzagDecode(Varint()); }
  uint8_t Byte() {
    LATTICE_ASSERT(at_ < end_);
    return static_cast<uint8_t>(*at_++);
  }
  std::string_view Bytes() {
    const uint64_t size = Varint();
    LATTICE_ASSERT(size <= static_cast<uint64_t>(end_ - at_));
    const std::string_view out(at_, size);
    at_ += size;
    return out;
  }
  // The bytes read so far.
  size_t pos() const { return static_cast<size_t>(at_ - begin_); }

 private:
  const char* at_;
  const char* begin_;
  const char* end_;
};

}  // namespace lattice::crdt::packed
