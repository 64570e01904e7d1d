#pragma once
// OrHash: the Valkey hash type as an observed-remove map (Almeida, Shoker, Baquero 2018, ORMap)
// from field to a StringCell (LWW value, or counter for HINCRBY/HINCRBYFLOAT) plus an optional
// per-field ExpiryCell. A field exists while its cell is alive.
//
// Merge rule: each field's cells join under the shard-wide contexts. HDEL removes the dots it
// observed, so HSET concurrent with HDEL: add wins. Concurrent HSETs: the later stamp wins.
// TTL: HSET / HSETNX / HSETEX without KEEPTTL clear the TTL they observed (Valkey 9);
// HINCRBY / HINCRBYFLOAT / HSETEX KEEPTTL keep it; HEXPIRE / HPERSIST write the attribute LWW.
// Reads take now_ms and hide fields whose expiry <= now_ms; reclaiming one is an ordinary
// observed-remove (RemoveDelta), so a write concurrent with the expiry survives everywhere.
//
// Storage: each field is one allocation (a FieldNode) in one of two forms, and the nodes sit in an
// absl::flat_hash_set of pointers looked up by name. A plain field (one live entry: no concurrent
// entries, no counter state, no TTL) is packed: a 32-byte header (both lengths, the entry's HLC
// and dot) followed by the name's and the value's bytes, nothing else. Any other field is full:
// the header's lengths, its HashField cells, then the name. Every write that leaves a field plain
// packs it again (Put, the plain-write paths, Join, Compact); FindMutable unpacks the field it
// returns. Readers see a node through its accessors (FieldNode::ttl, Alive, Winner, cells) and
// never depend on its form. Iteration follows the table, not the names: everything whose output
// must not depend on the table's layout (GetAll, the codec, operator==) sorts or compares as sets.
//
// Value type; not thread-safe. Invariant: no field is empty (no cells with dots).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "lattice/crdt/expiry.h"
#include "lattice/crdt/string_value.h"

namespace lattice::crdt {

struct HashField {
  StringCell value;
  Boxed<ExpiryCell> ttl;
  bool empty() const { return value.empty() && (ttl.get() == nullptr || ttl.get()->empty()); }
  bool operator==(const HashField&) const = default;
};

// A register entry read in place (the value's bytes belong to the node it came from).
struct EntryView {
  std::string_view value;
  uint64_t hlc = 0;
  Dot dot;
  RegisterEntry<std::string> ToEntry() const { return {std::string(value), hlc, dot}; }
};

// One field's allocation: a packed plain field, or a full HashField (see "Storage" above). A node
// is also what readers get for a field (Find, fields(), SortedFields()); `cells()` rebuilds the
// HashField when a caller needs the CRDT cells themselves (codecs, joins).
class FieldNode {
 public:
  // Packs when `field` is plain.
  static FieldNode* New(std::string_view name, HashField field);
  static FieldNode* NewPacked(std::string_view name, std::string_view value, uint64_t hlc, Dot dot);
  static FieldNode* Copy(const FieldNode& other);
  static void Delete(FieldNode* node);
  // The entry of a plain HashField (nullptr when it is not plain: what packing requires).
  static const RegisterEntry<std::string>* PlainOf(const HashField& field);

  std::string_view name() const { return {Bytes() + Header(), name_size_}; }
  bool packed() const { return value_size_ != kFull; }
  const HashField* full() const { return packed() ? nullptr : FullCells(); }
  HashField cells() const;                  // the field's cells (a copy)
  const ExpiryCell* ttl() const;            // nullptr when none (always for a packed field)
  bool Alive() const;                       // the value cell is alive (ignoring time)
  std::optional<EntryView> Winner() const;  // the value cell's winning entry
  // The only entry of a plain field (packed, or full but plain), else nullopt.
  std::optional<EntryView> Plain() const;
  void ForEachDot(absl::FunctionRef<void(Dot)> f) const;
  size_t MetadataItems() const;
  // The bytes this node asked the allocator for (a packed field: 32 + name + value).
  size_t AllocatedBytes() const { return Header() + name_size_ + (packed() ? value_size_ : 0); }

 private:
  friend class OrHash;
  static constexpr uint32_t kFull = UINT32_MAX;
  struct Packed {
    uint64_t hlc;
    Dot dot;
  };
  FieldNode(uint32_t name_size, uint32_t value_size)
      : name_size_(name_size), value_size_(value_size) {}
  static FieldNode* Allocate(std::string_view name, uint32_t value_size);
  static FieldNode* NewFull(std::string_view name, HashField field);
  size_t Header() const {
    return sizeof(FieldNode) + (packed() ? sizeof(Packed) : sizeof(HashField));
  }
  const char* Bytes() const { return reinterpret_cast<const char*>(this); }
  char* Bytes() { return reinterpret_cast<char*>(this); }
  const Packed* PackedCells() const { return reinterpret_cast<const Packed*>(this + 1); }
  Packed* PackedCells() { return reinterpret_cast<Packed*>(this + 1); }
  const HashField* FullCells() const { return reinterpret_cast<const HashField*>(this + 1); }
  HashField* FullCells() { return reinterpret_cast<HashField*>(this + 1); }
  std::string_view packed_value() const { return {Bytes() + Header() + name_size_, value_size_}; }
  char* packed_value_bytes() { return Bytes() + Header() + name_size_; }

  uint32_t name_size_;
  uint32_t value_size_;  // packed: the value's length; kFull: the full form
};

class OrHash {
  struct NodeHash {
    using is_transparent = void;
    size_t operator()(std::string_view name) const;
    size_t operator()(const FieldNode* node) const { return (*this)(node->name()); }
  };
  struct NodeEq {
    using is_transparent = void;
    static std::string_view Name(std::string_view name) { return name; }
    static std::string_view Name(const FieldNode* node) { return node->name(); }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Name(a) == Name(b);
    }
  };
  using Table = absl::flat_hash_set<FieldNode*, NodeHash, NodeEq>;

 public:
  // Iterates (name, node) pairs in table order.
  class FieldRange {
   public:
    class iterator {
     public:
      using value_type = std::pair<std::string_view, const FieldNode&>;
      explicit iterator(Table::const_iterator it) : it_(it) {}
      value_type operator*() const { return {(*it_)->name(), **it_}; }
      iterator& operator++() {
        ++it_;
        return *this;
      }
      bool operator==(const iterator& other) const { return it_ == other.it_; }
      bool operator!=(const iterator& other) const { return it_ != other.it_; }

     private:
      Table::const_iterator it_;
    };
    explicit FieldRange(const Table& table) : table_(&table) {}
    iterator begin() const { return iterator(table_->begin()); }
    iterator end() const { return iterator(table_->end()); }
    size_t size() const { return table_->size(); }

   private:
    const Table* table_;
  };

  OrHash() = default;
  OrHash(const OrHash& other);
  OrHash(OrHash&& other) noexcept : fields_(std::move(other.fields_)) { other.fields_.clear(); }
  OrHash& operator=(const OrHash& other);
  OrHash& operator=(OrHash&& other) noexcept;
  ~OrHash();

  bool empty() const { return fields_.empty(); }
  size_t size() const { return fields_.size(); }
  bool AnyPresent() const;                  // some field alive, ignoring time
  bool AnyPresentAt(int64_t now_ms) const;  // some field visible at now_ms (GetAll non-empty)
  std::optional<std::string> Get(std::string_view field, int64_t now_ms) const;
  bool Visible(std::string_view field, int64_t now_ms) const;  // Get would not be nullopt
  std::optional<int64_t> FieldExpiry(std::string_view field) const;
  std::vector<std::pair<std::string, std::string>> GetAll(int64_t now_ms) const;  // sorted
  std::vector<std::string> ExpiredFields(int64_t now_ms) const;                   // sorted
  FieldRange fields() const { return FieldRange(fields_); }
  // The fields sorted by name (what must not depend on the table's layout: encodings).
  std::vector<const FieldNode*> SortedFields() const;

  OrHash SetDelta(std::string_view field, std::string value, bool keep_ttl, WriteStamp& stamp,
                  DotContext& context) const;
  Result<OrHash> IncrementDelta(std::string_view field, int64_t by, long double float_by,
                                bool is_float, StringRule rule, WriteStamp& stamp,
                                DotContext& context) const;
  OrHash RemoveDelta(std::string_view field, WriteStamp& stamp, DotContext& context) const;
  // at_ms == 0 writes "no expiry" (HPERSIST).
  OrHash ExpireDelta(std::string_view field, int64_t at_ms, ExpiryRule rule, WriteStamp& stamp,
                     DotContext& context) const;
  void CollectDots(DotContext& out) const;

  void Join(const OrHash& other, const DotContext& mine, const DotContext& theirs);
  // Join restricted to the fields in `names` (sorted, distinct); see OrSet::JoinSome.
  void JoinSome(const OrHash& other, const DotContext& mine, const DotContext& theirs,
                const std::vector<std::string>& names);
  void AppendNames(std::vector<std::string>& out) const;  // unsorted
  // Calls f for each dot `field` holds (value and TTL cells).
  void ForEachDotOf(std::string_view field, absl::FunctionRef<void(Dot)> f) const;
  // Calls f(field, dot) for every dot held, in table order, until f returns true.
  void ScanDots(absl::FunctionRef<bool(const std::string&, Dot)> f) const;
  void Compact(const VersionVector& stable);
  size_t MetadataItems() const;

  // The field's node (nullptr when absent); valid until the field is next written.
  const FieldNode* Find(std::string_view field) const;
  // The field's cells for an in-place change (nullptr when absent). The field is unpacked into
  // the full form; the pointer is stable until the field is erased or Put, Join or Compact
  // writes it (which pack it again when it is plain).
  HashField* FindMutable(std::string_view field);
  bool Contains(std::string_view field) const { return fields_.contains(field); }
  // For Key's in-place writes: a plain write that replaces the field with `value` and no TTL
  // (what joining a SetDelta that observed the whole field leaves).
  void Put(std::string_view field, StringCell value);
  // Put of the one entry (value, hlc, dot), without building a StringCell.
  void PutPlain(std::string_view field, std::string_view value, uint64_t hlc, Dot dot);
  // The in-place HSET of an absent or plain field in one lookup: calls observe(d) for every dot
  // the field holds, then makes it the one entry (value, hlc, next()) and returns that dot.
  Dot AssignPlain(std::string_view field, std::string_view value, uint64_t hlc,
                  absl::FunctionRef<void(Dot)> observe, absl::FunctionRef<Dot()> next);

  // Set equality: the same names with equal cells, whatever the tables' layouts.
  bool operator==(const OrHash& other) const;

 private:
  void Erase(Table::iterator it);
  // Stores `field` as the node at `it` (packed when plain), or erases the node when it is empty.
  void Settle(Table::iterator it, HashField field);
  static void Swap(Table::iterator it, FieldNode* node);  // replaces the node at `it`
  // Joins the other side's node for the field at `it` (nullptr: absent there) into it.
  void JoinNode(Table::iterator it, const FieldNode* theirs, const DotContext& mine,
                const DotContext& their_context);
  // Inserts what joining the other side's node into an absent field leaves.
  void InsertJoined(std::string_view name, const FieldNode& theirs, const DotContext& mine,
                    const DotContext& their_context);
  // PutPlain at the field's slot (end(): absent).
  void PutPlainAt(Table::iterator it, std::string_view field, std::string_view value, uint64_t hlc,
                  Dot dot);
  void Clear();

  Table fields_;
};

}  // namespace lattice::crdt
