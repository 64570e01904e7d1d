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
// Storage: each field is one allocation (a FieldNode) holding its cells and, right behind them,
// its name; the nodes sit in an absl::flat_hash_set of pointers looked up by name. A plain field
// (one live write, no TTL, a value of up to 15 bytes) is that one allocation; a longer value adds
// its std::string's heap buffer, a TTL or concurrent entries their own boxes. Iteration follows
// the table, not the names: everything whose output must not depend on the table's layout
// (GetAll, the codec, operator==) sorts or compares as sets.
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

// One field's allocation: the cells and the name's length, then the name's bytes.
class FieldNode {
 public:
  static FieldNode* New(std::string_view name, HashField field);
  static FieldNode* Copy(const FieldNode& other);
  static void Delete(FieldNode* node);
  std::string_view name() const { return {NameBytes(), size_}; }
  HashField field;

 private:
  explicit FieldNode(HashField f, uint32_t size) : field(std::move(f)), size_(size) {}
  static size_t Bytes(size_t name_size);
  const char* NameBytes() const { return reinterpret_cast<const char*>(this + 1); }
  char* NameBytes() { return reinterpret_cast<char*>(this + 1); }
  uint32_t size_;
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
  // Iterates (name, cells) pairs in table order.
  class FieldRange {
   public:
    class iterator {
     public:
      using value_type = std::pair<std::string_view, const HashField&>;
      explicit iterator(Table::const_iterator it) : it_(it) {}
      value_type operator*() const { return {(*it_)->name(), (*it_)->field}; }
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

  // For Key's in-place writes: the field's cells (nullptr when absent), and a plain write that
  // replaces the field with `value` and no TTL (what joining a SetDelta that observed the whole
  // field leaves).
  const HashField* Find(std::string_view field) const;
  HashField* FindMutable(std::string_view field);  // stable until the field is erased
  bool Contains(std::string_view field) const { return fields_.contains(field); }
  void Put(std::string_view field, StringCell value);

  // Set equality: the same names with equal cells, whatever the tables' layouts.
  bool operator==(const OrHash& other) const;

 private:
  void Erase(Table::iterator it);
  void Clear();

  Table fields_;
};

}  // namespace lattice::crdt
