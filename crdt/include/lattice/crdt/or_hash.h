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
// Value type; not thread-safe. Invariant: no field is empty (no cells with dots).

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
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

class OrHash {
 public:
  bool empty() const { return fields_.empty(); }
  bool AnyPresent() const;                  // some field alive, ignoring time
  bool AnyPresentAt(int64_t now_ms) const;  // some field visible at now_ms (GetAll non-empty)
  std::optional<std::string> Get(const std::string& field, int64_t now_ms) const;
  std::optional<int64_t> FieldExpiry(const std::string& field) const;
  std::vector<std::pair<std::string, std::string>> GetAll(int64_t now_ms) const;  // sorted
  std::vector<std::string> ExpiredFields(int64_t now_ms) const;
  const absl::btree_map<std::string, HashField>& fields() const { return fields_; }

  OrHash SetDelta(const std::string& field, std::string value, bool keep_ttl, WriteStamp& stamp,
                  DotContext& context) const;
  Result<OrHash> IncrementDelta(const std::string& field, int64_t by, long double float_by,
                                bool is_float, StringRule rule, WriteStamp& stamp,
                                DotContext& context) const;
  OrHash RemoveDelta(const std::string& field, WriteStamp& stamp, DotContext& context) const;
  // at_ms == 0 writes "no expiry" (HPERSIST).
  OrHash ExpireDelta(const std::string& field, int64_t at_ms, ExpiryRule rule, WriteStamp& stamp,
                     DotContext& context) const;
  void CollectDots(DotContext& out) const;

  void Join(const OrHash& other, const DotContext& mine, const DotContext& theirs);
  // Join restricted to the fields in `names` (sorted, distinct); see OrSet::JoinSome.
  void JoinSome(const OrHash& other, const DotContext& mine, const DotContext& theirs,
                const std::vector<std::string>& names);
  void AppendNames(std::vector<std::string>& out) const;  // unsorted
  // Calls f for each dot `field` holds (value and TTL cells).
  void ForEachDotOf(const std::string& field, absl::FunctionRef<void(Dot)> f) const;
  // Calls f(field, dot) for every dot held, in field order, until f returns true.
  void ScanDots(absl::FunctionRef<bool(const std::string&, Dot)> f) const;
  void Compact(const VersionVector& stable);
  size_t MetadataItems() const;

  // For Key's in-place writes: the field's slot (nullptr when absent), and a plain write that
  // replaces the field with `value` and no TTL (what joining a SetDelta that observed the whole
  // field leaves).
  const HashField* Find(const std::string& field) const;
  void Put(const std::string& field, StringCell value);

  bool operator==(const OrHash&) const = default;

 private:
  absl::btree_map<std::string, HashField> fields_;
};

}  // namespace lattice::crdt
