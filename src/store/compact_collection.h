#pragma once
// The packed contents of a compact stored collection (docs/architecture.md, "Storage of keys"):
// a small hash, set or sorted set whose crdt::Key state is one creation entry plus elements that
// each hold one plain live entry. The StoredKey header keeps the creation entry's HLC and packed
// dot; the blob after the key name holds:
//
//   byte 0: the creation entry's value (the ObjectType, plus crdt::kFixedPrecedenceFlag)
//   then per element:
//     flags    bit 0: the dot is the previous dot + 1 (same replica), bit 1: the HLC is the
//              previous element's (hashes and zsets; a set member has no HLC). "Previous" is
//              the creation entry for the first element.
//     [dot]    unless bit 0: varint replica index, varint sequence
//     [hlc]    unless bit 1 (hashes and zsets only): varint zigzag(hlc - previous hlc)
//     varint name length, name bytes
//     hash: varint value length, value bytes; zset: the score, 8 bytes (IEEE 754, little end.)
//
// Elements are in no particular order (a conversion writes them by dot, an in-place write
// appends); readers scan. Not thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/crdt/key.h"
#include "store/stored_key.h"

namespace lattice::server {

// When a collection may be compact: at most `max_entries` elements (capped at
// kMaxCompactEntries), each name and value at most `max_value` bytes (Valkey's
// *-max-listpack-entries / *-max-listpack-value).
struct CompactLimits {
  static constexpr size_t kMaxCompactEntries = 128;
  size_t max_entries = kMaxCompactEntries;
  size_t max_value = 64;
};

struct CompactElement {
  std::string_view name;
  std::string_view value;  // hash: the field's value
  double score = 0;        // zset: the member's score
  uint64_t hlc = 0;        // hash and zset
  uint64_t packed_dot = 0;
};

inline crdt::ObjectType CompactType(std::string_view blob) {
  return static_cast<crdt::ObjectType>(static_cast<uint8_t>(blob[0]) & ~crdt::kFixedPrecedenceFlag);
}

// Walks the elements of a blob (which the keyspace wrote: not a parser of foreign bytes).
class CompactReader {
 public:
  CompactReader(std::string_view blob, uint64_t created_hlc, uint64_t created_dot)
      : blob_(blob), type_(CompactType(blob)), pos_(1), hlc_(created_hlc), dot_(created_dot) {}
  crdt::ObjectType type() const { return type_; }
  // The next element, or false at the end. `start` (if given) receives its offset in the blob.
  bool Next(CompactElement& out, size_t* start = nullptr);
  // The state the reader is in after the element it returned last (what an append continues).
  uint64_t last_hlc() const { return hlc_; }
  uint64_t last_dot() const { return dot_; }

 private:
  uint64_t Varint();
  std::string_view blob_;
  crdt::ObjectType type_;
  size_t pos_;
  uint64_t hlc_;
  uint64_t dot_;
};

// Appends elements to a blob, delta-coded against the element before.
class CompactWriter {
 public:
  CompactWriter(std::string& blob, crdt::ObjectType type, uint64_t previous_hlc,
                uint64_t previous_dot)
      : blob_(blob), type_(type), hlc_(previous_hlc), dot_(previous_dot) {}
  void Add(const CompactElement& element);

 private:
  void Varint(uint64_t value);
  std::string& blob_;
  crdt::ObjectType type_;
  uint64_t hlc_;
  uint64_t dot_;
};

// An edit of one compact collection in place (Keyspace::WriteCompact, a local write, and
// Keyspace::ApplyCompactCollection, a peer's op): its elements read out, some removed (Remove)
// and new ones appended (Append), then the new blob (Blob): the elements before the first one
// removed keep their bytes, the rest are re-encoded (each is delta-coded against the one before).
class CompactEdit {
 public:
  CompactEdit(std::string_view blob, uint64_t created_hlc, uint64_t created_dot);
  std::vector<CompactElement>& elements() { return elements_; }
  // The element named `name`, or elements().end().
  std::vector<CompactElement>::iterator Find(std::string_view name);
  void Remove(std::vector<CompactElement>::iterator element);
  void Append(const CompactElement& element) { elements_.push_back(element); }
  std::string Blob() const;

 private:
  std::string_view blob_;
  crdt::ObjectType type_;
  uint64_t created_hlc_;
  uint64_t created_dot_;
  std::vector<CompactElement> elements_;
  std::vector<size_t> starts_;  // each element's offset in the blob, then the blob's end
  size_t kept_;                 // elements before the first one removed keep their bytes
};

// A collection in compact form: the creation entry's HLC and packed dot, and the blob.
struct CompactCollection {
  uint64_t hlc = 0;
  uint64_t packed_dot = 0;
  std::string blob;
};

// Whether `key` may be compact judging by its element count alone (O(1)): the cheap filter
// before EncodeCompact walks it.
bool CompactCandidate(const crdt::Key& key, const CompactLimits& limits);
// The compact form of `key`, or nullopt when its state is not exactly one creation entry and
// plain single-dot elements within `limits` (or a dot cannot be packed).
std::optional<CompactCollection> EncodeCompact(const crdt::Key& key, ReplicaIndex& replicas,
                                               const CompactLimits& limits);
// The state a compact collection stands for.
crdt::Key DecodeCompact(std::string_view blob, uint64_t hlc, uint64_t packed_dot,
                        const ReplicaIndex& replicas);

}  // namespace lattice::server
