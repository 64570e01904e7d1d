#pragma once
// Valkey's listpack, the packed array its RDB files and DUMP payloads carry for small hashes,
// sets, sorted sets, quicklist nodes and stream nodes: read (ParseListpack) and written
// (ListpackWriter). A listpack is its total size (u32 LE), its element count (u16 LE, 65535 when
// not known), the elements, and 0xff. Each element is an encoding byte, its data and a back
// length (the element's size in 1 to 5 bytes, read from the end, so Valkey walks it both ways):
// - integers: 7-bit unsigned (0xxxxxxx), 13-bit (110xxxxx + 1 byte), 16, 24, 32 or 64-bit
//   little-endian after 0xf1, 0xf2, 0xf3, 0xf4;
// - strings: 6-bit length (10xxxxxx), 12-bit (1110xxxx + 1 byte), 32-bit LE (0xf0 + 4 bytes).
// The reader checks every size against the bytes given; integers are handed on as decimal
// text. Pure functions; thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lattice::server {

// Appends the elements of `blob` to *out; false when malformed (the element count, when known,
// must match).
bool ParseListpack(std::string_view blob, std::vector<std::string>* out);

// Builds a listpack element by element.
class ListpackWriter {
 public:
  ListpackWriter();
  // Stored as an integer when `bytes` is one's canonical decimal text (as Valkey's lpAppend
  // does), which reads back as the same bytes.
  void AddString(std::string_view bytes);
  void AddInteger(int64_t value);
  size_t bytes() const { return body_.size() + 1; }  // with the terminator
  size_t count() const { return count_; }
  // The finished listpack (header patched, terminator added); the writer is spent.
  std::string Finish() &&;

 private:
  void Backlen(size_t entry_bytes);

  std::string body_;
  size_t count_ = 0;
};

// Little-endian helpers the RDB codecs share.
uint64_t LoadLittleEndian(std::string_view bytes);
// Sign-extends the low `bits` of `raw`.
int64_t SignExtend(uint64_t raw, int bits);

}  // namespace lattice::server
