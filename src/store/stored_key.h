#pragma once
// How the keyspace stores one key (docs/architecture.md, "Storage of keys"). Every key is one
// StoredKey allocation, and a slot's table holds only pointers to them. A StoredKey has one of
// four forms:
//
// - compact string: a plain single-writer string (one live SET entry, nothing concurrent, no
//   counter state, no expiry, no other type): a 20-byte header (HLC, packed dot, lengths)
//   followed by the key bytes and the value bytes.
//   (Every form's header also holds a 4-byte access word for LRU/LFU eviction: 24 bytes.) The dot
//   is packed as a 16-bit index into the keyspace's ReplicaIndex and a 48-bit sequence number.
// - compact collection: a small hash, set or sorted set whose elements are each one plain entry
//   (store/compact_collection.h): the header holds the creation entry's HLC and packed dot, and
//   the value bytes are the packed elements.
// - compact counter: a counter that one replica incremented and no write has set (the state
//   INCR leaves on a missing key: one increment chain with no base, no TTL): the header holds
//   the replica's int64 total and the packed dot of its latest increment; no value bytes. INCR
//   on it is one lookup and two stores (Keyspace::IncrCounter), and the key is one allocation.
// - full: the header holds a pointer to a crdt::Key, the generic CRDT state that every unusual
//   case (concurrent entries, counters, tombstones, expiry, collections) lives in.
//
// The keyspace converts between the two as writes change the state (ToFull before the generic
// mutators run, and back to compact when a key settles as a plain string or a small plain
// collection), so crdt::Key stays the
// reference for the semantics, and the compact form is only a smaller encoding of one of its
// states. KeyRef is the read handle commands get: it answers the common reads of either form and
// materialises a crdt::Key when a caller needs the whole state. Not thread-safe.

#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "lattice/common/ids.h"
#include "lattice/crdt/key.h"

namespace lattice::server {

struct CompactElement;

// The replicas whose dots compact keys hold, each named by a 16-bit index (this replica is 0).
class ReplicaIndex {
 public:
  static constexpr int kSeqBits = 48;
  static constexpr uint64_t kSeqMask = (uint64_t{1} << kSeqBits) - 1;

  explicit ReplicaIndex(ReplicaId own) { ids_.push_back(own); }
  // The packed form of `dot`, or nullopt when it cannot be packed (the sequence needs more than
  // 48 bits, or 65536 replicas are already indexed).
  std::optional<uint64_t> Pack(crdt::Dot dot);
  crdt::Dot Unpack(uint64_t packed) const {
    return crdt::Dot{ids_[packed >> kSeqBits], packed & kSeqMask};
  }

 private:
  std::vector<ReplicaId> ids_;
  absl::flat_hash_map<ReplicaId, uint16_t> index_;  // every id but ids_[0]
};

// Packed to 4-byte alignment: a 24-byte header (20 bytes of state and the 4-byte access word),
// so a 12-byte key with a 16-byte value is one 52-byte request (jemalloc's 64-byte class: its
// classes go 32, 48, 64, 80 on x86-64; without the access word it was exactly 48).
#pragma pack(push, 4)
class StoredKey {
 public:
  struct Deleter {
    void operator()(StoredKey* stored) const { Free(stored); }
  };

  static StoredKey* NewCompact(std::string_view name, std::string_view value, uint64_t hlc,
                               uint64_t packed_dot);
  static StoredKey* NewCollection(std::string_view name, std::string_view blob, uint64_t hlc,
                                  uint64_t packed_dot);
  static StoredKey* NewCounter(std::string_view name, int64_t total, uint64_t packed_dot);
  static StoredKey* NewFull(std::string_view name, crdt::Key key);
  static void Free(StoredKey* stored);

  std::string_view name() const { return {bytes(), name_len()}; }
  // Either compact form (not full).
  bool compact() const { return (lens_ & kFullFlag) == 0; }
  bool compact_string() const {
    return (lens_ & (kFullFlag | kCollectionFlag | kCounterFlag)) == 0;
  }
  bool collection() const { return (lens_ & kCollectionFlag) != 0; }
  bool counter() const { return (lens_ & kCounterFlag) != 0; }

  // Compact forms only (a collection's value is its packed elements; the HLC and dot are its
  // creation entry's).
  std::string_view value() const { return {bytes() + name_len(), value_len()}; }
  uint64_t hlc() const { return hlc_; }
  uint64_t packed_dot() const { return dot_; }
  // Overwrites the value (a collection: its packed elements), HLC and dot in place if the new
  // value fits the allocation.
  bool AssignInPlace(std::string_view value, uint64_t hlc, uint64_t packed_dot);

  // Compact counter only: the replica's total (the HLC field holds it; the dot is the latest
  // increment's), and an increment in place.
  int64_t counter_total() const { return static_cast<int64_t>(hlc_); }
  void SetCounter(int64_t total, uint64_t packed_dot) {
    hlc_ = static_cast<uint64_t>(total);
    dot_ = packed_dot;
  }

  // Full form only.
  crdt::Key& full() { return *full_; }
  const crdt::Key& full() const { return *full_; }

  // The access word of every form (Valkey's 24-bit robj->lru): the LRU clock of the last access,
  // or under an LFU policy the minutes of the last decrement (16 bits) and the logarithmic
  // counter (8 bits). The server reads and updates it (server/eviction.h); it is no part of the
  // CRDT state, so a read may update it through a const handle. A new allocation (a new key, or
  // the keyspace re-encoding one) starts at the stamp the server set last (SetNewAccessStamp).
  uint32_t access() const { return access_; }
  void set_access(uint32_t access) const { access_ = access; }
  static void SetNewAccessStamp(uint32_t stamp) { new_access_stamp_ = stamp; }
  static uint32_t new_access_stamp() { return new_access_stamp_; }

 private:
  // lens_: bit 31 marks the full form, bit 29 the compact collection, bit 28 the compact
  // counter. Short lengths (name < 4096 and value < 64 KiB, the common case) sit in bits 0-27:
  // name in bits 0-11, value in bits 12-27. Otherwise bit 30 is set and both lengths are two
  // uint32 at the start of the bytes, before the name.
  static constexpr uint32_t kFullFlag = 0x80000000u;
  static constexpr uint32_t kLongFlag = 0x40000000u;
  static constexpr uint32_t kCollectionFlag = 0x20000000u;
  static constexpr uint32_t kCounterFlag = 0x10000000u;
  static constexpr int kNameBits = 12;
  static constexpr uint32_t kNameMax = (1u << kNameBits) - 1;
  static constexpr uint32_t kValueMax = (1u << 16) - 1;
  static bool FitsShort(size_t name, size_t value) {
    return name <= kNameMax && value <= kValueMax;
  }

  StoredKey() = default;
  ~StoredKey() = default;
  bool long_lengths() const { return (lens_ & kLongFlag) != 0; }
  size_t lengths_size() const { return long_lengths() ? 2 * sizeof(uint32_t) : 0; }
  char* raw() { return reinterpret_cast<char*>(this + 1); }
  const char* raw() const { return reinterpret_cast<const char*>(this + 1); }
  char* bytes() { return raw() + lengths_size(); }
  const char* bytes() const { return raw() + lengths_size(); }
  uint32_t LongLength(int i) const {
    uint32_t length;
    std::memcpy(&length, raw() + i * sizeof(uint32_t), sizeof(length));
    return length;
  }
  uint32_t name_len() const { return long_lengths() ? LongLength(0) : lens_ & kNameMax; }
  uint32_t value_len() const {
    return long_lengths() ? LongLength(1) : (lens_ >> kNameBits) & kValueMax;
  }
  // Sets both lengths in the layout `is_long` says (which the allocation was made for).
  void SetLengths(size_t name, size_t value, bool is_long);
  static StoredKey* Allocate(std::string_view name, size_t value_size, bool full);

  union {
    uint64_t hlc_;
    crdt::Key* full_;
  };
  uint64_t dot_ = 0;
  uint32_t lens_ = 0;
  mutable uint32_t access_ = 0;
  static thread_local uint32_t new_access_stamp_;
};
#pragma pack(pop)
static_assert(sizeof(StoredKey) == 24);

using StoredKeyPtr = std::unique_ptr<StoredKey, StoredKey::Deleter>;

// Hash and equality of table entries by key name, with string_view lookup.
struct StoredKeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view name) const { return absl::Hash<std::string_view>{}(name); }
  size_t operator()(const StoredKeyPtr& stored) const { return (*this)(stored->name()); }
};
struct StoredKeyEq {
  using is_transparent = void;
  static std::string_view NameOf(std::string_view name) { return name; }
  static std::string_view NameOf(const StoredKeyPtr& stored) { return stored->name(); }
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return NameOf(a) == NameOf(b);
  }
};

// The full state a compact key (any compact form) stands for.
crdt::Key ExpandCompact(const StoredKey& stored, const ReplicaIndex& replicas);
// The increments of `key` if it is exactly a compact counter's state: a string cell holding one
// integer increment chain with no base entry, epoch, tombstone or offsets, and nothing else.
const crdt::IncEntry* LoneCounter(const crdt::Key& key);

// Where KeyRef materialises a compact collection for a read that needs the crdt object (owned by
// the keyspace, emptied at the end of every event-loop turn: Keyspace::ReleaseIterations).
struct ExpandScratch {
  std::deque<crdt::Key> keys;
  const StoredKey* last = nullptr;  // the stored key keys.back() expands, while still current
  void Clear() {
    keys.clear();
    last = nullptr;
  }
};

// A read handle on one stored key (or none): pointer-like, so `ref->TypeAt(now)`, `ref ==
// nullptr` and `*ref` read as they did on a const crdt::Key*. Valid until the keyspace changes.
class KeyRef {
 public:
  KeyRef() = default;
  KeyRef(std::nullptr_t) {}  // NOLINT: reads as a null pointer
  KeyRef(const StoredKey* stored, const ReplicaIndex* replicas, ExpandScratch* scratch = nullptr)
      : stored_(stored), replicas_(replicas), scratch_(scratch) {}

  explicit operator bool() const { return stored_ != nullptr; }
  friend bool operator==(const KeyRef& ref, std::nullptr_t) { return ref.stored_ == nullptr; }
  friend bool operator==(const KeyRef& a, const KeyRef& b) { return a.stored_ == b.stored_; }
  const KeyRef* operator->() const { return this; }
  const KeyRef& operator*() const { return *this; }

  crdt::ObjectType Type() const;
  crdt::ObjectType TypeAt(int64_t now_ms) const;
  std::optional<int64_t> ExpiryMs() const;
  std::optional<std::string> GetString(int64_t now_ms) const;
  // The value of a compact string without a copy (nullopt otherwise: use GetString).
  std::optional<std::string_view> CompactValue() const {
    if (stored_->compact_string()) return stored_->value();
    return std::nullopt;
  }
  // crdt::Key::ReadStringRange for every form (a compact string is a view of its value).
  std::optional<size_t> ReadStringRange(size_t begin, size_t end, int64_t now_ms,
                                        std::string& scratch, std::string_view& out) const;
  // The collection objects. A compact collection is materialised into the keyspace's scratch
  // (valid until the end of the event-loop turn), so the common reads below skip them.
  const crdt::OrHash& hash() const;
  const crdt::OrSet& set() const;
  const crdt::SortedSet& zset() const;
  // Common collection reads, answered from a compact collection's packed elements directly
  // (the same answers as hash().Get, set().Contains/Size, zset().Score/Size).
  std::optional<std::string> HashGet(std::string_view field, int64_t now_ms) const;
  size_t HashLen() const;  // fields alive, ignoring TTLs (Valkey's HLEN)
  bool SetContains(std::string_view member) const;
  size_t SetSize() const;
  std::optional<double> ZScore(std::string_view member) const;
  size_t ZSize() const;
  // The generic state: nullptr for a compact key (ToKey materialises it).
  const crdt::Key* full() const { return stored_->compact() ? nullptr : &stored_->full(); }
  crdt::Key ToKey() const;
  // The stored allocation itself (MEMORY USAGE measures it).
  const StoredKey* stored() const { return stored_; }

 private:
  // The full state, materialised into the scratch for a compact collection.
  const crdt::Key& State() const;
  // The packed element named `name` of a compact collection (false if none).
  bool FindCompact(std::string_view name, CompactElement& out) const;
  size_t CompactCount() const;

  const StoredKey* stored_ = nullptr;
  const ReplicaIndex* replicas_ = nullptr;
  ExpandScratch* scratch_ = nullptr;
};

}  // namespace lattice::server
