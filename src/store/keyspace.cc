#include "store/keyspace.h"

#include <algorithm>
#include <array>
#include <limits>
#include <span>

#include "absl/container/flat_hash_set.h"
#include "lattice/common/assert.h"
#include "lattice/crdt/string_value.h"

namespace lattice::server {
namespace {

constexpr int kCursorHashBits = 50;
constexpr uint64_t kCursorHashMask = (uint64_t{1} << kCursorHashBits) - 1;

// The Db's indexes are keyed by std::string, whose heterogeneous lookup takes absl::string_view.
absl::string_view Abs(std::string_view s) { return absl::string_view(s.data(), s.size()); }

uint64_t CursorHash(std::string_view key) { return StableHash(key) >> (64 - kCursorHashBits); }

bool HasFieldTtl(const crdt::Key& key) {
  if (key.hash().empty()) {
    return false;  // (a key whose type is hash has fields)
  }
  for (const auto& [field, cell] : key.hash().fields()) {
    if (cell.ttl() != nullptr) {
      return true;
    }
  }
  return false;
}

bool DeltaHasFieldTtl(const crdt::KeyOp& op) { return HasFieldTtl(op.delta); }

}  // namespace

std::string_view TypeName(crdt::ObjectType type) {
  switch (type) {
    case crdt::ObjectType::kString:
      return "string";
    case crdt::ObjectType::kHash:
      return "hash";
    case crdt::ObjectType::kSet:
      return "set";
    case crdt::ObjectType::kZSet:
      return "zset";
    case crdt::ObjectType::kList:
      return "list";
    case crdt::ObjectType::kStream:
      return "stream";
    case crdt::ObjectType::kNone:
      break;
  }
  return "none";
}

uint64_t StableHash(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h = (h ^ c) * 0x100000001b3ULL;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

constexpr std::array<uint16_t, 256> MakeCrc16Table() {
  std::array<uint16_t, 256> table{};
  for (int i = 0; i < 256; ++i) {
    uint16_t crc = static_cast<uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
    table[i] = crc;
  }
  return table;
}

constexpr std::array<uint16_t, 256> kCrc16Table = MakeCrc16Table();

uint16_t KeySlot(std::string_view key) {
  // The hash tag: the bytes between the first '{' and the first '}' after it, if not empty.
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  // CRC16/XMODEM (polynomial 0x1021, init 0, no reflection, no final xor), one table lookup
  // per byte: the slot is computed on every key access, so the bitwise loop showed up at 20% of
  // a write-heavy profile.
  uint16_t crc = 0;
  for (unsigned char byte : key) {
    crc = static_cast<uint16_t>((crc << 8) ^ kCrc16Table[((crc >> 8) ^ byte) & 0xff]);
  }
  return crc & (kSlotCount - 1);
}

struct Keyspace::Db {
  // One table per slot, held inline (a lookup chases no pointer to a table header), allocated
  // when the db gets its first key: empty until then.
  std::vector<Table> slots;
  Table* at(size_t slot) { return slots.empty() ? nullptr : &slots[slot]; }
  const Table* at(size_t slot) const { return slots.empty() ? nullptr : &slots[slot]; }
  Table& Create(size_t slot) {
    if (slots.empty()) slots.resize(kSlotCount);
    return slots[slot];
  }
  uint64_t size = 0;  // table entries, including `hidden` ones
  // Entries that hold only CRDT metadata (e.g. the increments a DEL observed, kept until they
  // are causally stable): no visible type, so DBSIZE and INFO do not count them.
  absl::flat_hash_set<std::string> hidden;
  // Key-level expiry index: (at_ms, key), and each volatile key's current at_ms.
  absl::btree_set<std::pair<int64_t, std::string>> expiry_index;
  absl::flat_hash_map<std::string, int64_t> expiry_of;
  // Hashes that may hold fields with a TTL, visited round-robin by the active cycle.
  absl::btree_set<std::string> field_ttl_keys;
  std::string field_ttl_cursor;
};

Keyspace::Keyspace(ReplicaId replica, int databases) : dots_(replica), replicas_(replica) {
  LATTICE_ASSERT(replica != kNoReplica);
  LATTICE_ASSERT(databases > 0);
  for (int i = 0; i < databases + 1; ++i) {  // + the system db
    dbs_.push_back(std::make_unique<Db>());
  }
}

Keyspace::~Keyspace() = default;

Keyspace::Table* Keyspace::TableFor(int db, std::string_view key, bool create) {
  Db& d = *dbs_[db];
  const uint16_t slot = KeySlot(key);
  Reach(db, slot);
  return create ? &d.Create(slot) : d.at(slot);
}

const Keyspace::Table* Keyspace::TableFor(int db, std::string_view key) const {
  const uint16_t slot = KeySlot(key);
  Reach(db, slot);
  return dbs_[db]->at(slot);
}

void Keyspace::ReachAll(int db) const {
  if (joiner_ == nullptr && exporters_.empty()) {
    return;
  }
  for (uint32_t slot = 0; slot < kSlotCount; ++slot) {
    Reach(db, static_cast<uint16_t>(slot));
  }
}

const StoredKey* Keyspace::Stored(int db, std::string_view key) const {
  const Table* table = TableFor(db, key);
  if (table == nullptr) {
    return nullptr;
  }
  auto it = table->find(key);
  return it == table->end() ? nullptr : it->get();
}

KeyRef Keyspace::Find(int db, std::string_view key, int64_t now_ms) const {
  const StoredKey* stored = Stored(db, key);
  if (stored == nullptr) {
    return nullptr;
  }
  const KeyRef found = RefOf(*stored);
  if (found.TypeAt(now_ms) == crdt::ObjectType::kNone) {
    return nullptr;
  }
  return found;
}

Result<KeyRef> Keyspace::FindTyped(int db, std::string_view key, crdt::ObjectType type,
                                   int64_t now_ms) const {
  const StoredKey* stored = Stored(db, key);
  if (stored == nullptr) {
    return KeyRef(nullptr);
  }
  const KeyRef found = RefOf(*stored);
  const crdt::ObjectType held = found.TypeAt(now_ms);  // once: it weighs the key's parts
  if (held == crdt::ObjectType::kNone) {
    return KeyRef(nullptr);
  }
  if (type != crdt::ObjectType::kNone && held != type) {
    return Unexpected(ErrorCode::kWrongType);
  }
  return found;
}

crdt::ObjectType Keyspace::TypeOf(int db, std::string_view key, int64_t now_ms) const {
  const KeyRef found = Find(db, key, now_ms);
  return found == nullptr ? crdt::ObjectType::kNone : found->TypeAt(now_ms);
}

crdt::Writer Keyspace::BeginWrite(int64_t now_ms) {
  crdt::Writer writer;
  writer.dots = &dots_;
  writer.hlc = hlc_.Now(static_cast<uint64_t>(std::max<int64_t>(now_ms, 0)));
  writer.now_ms = now_ms;
  writer.policies = current_policies_;
  return writer;
}

crdt::Policies Keyspace::PoliciesFor(int db, std::string_view key) const {
  if (db == system_db()) {
    crdt::Policies system;
    system.hash_field = crdt::StringRule::kLww;  // policy entries are last-writer-wins
    return system;
  }
  return policy_table_.empty() ? policies_ : policy_table_.For(key);
}

namespace {
constexpr std::string_view kPolicyKey = "policies";
}  // namespace

void Keyspace::SystemChanged(int db) {
  if (db != system_db()) {
    return;
  }
  PolicyTable rebuilt;
  for (const PolicyEntry& entry : policy_table_.List()) {
    if (entry.from_config) (void)rebuilt.Set(entry, /*check_ties=*/false);
  }
  if (const KeyRef key = Find(system_db(), kPolicyKey, INT64_MAX / 2)) {
    for (const VisibleValue::HashEntry& field : ReadVisible(key, INT64_MAX / 2).hash) {
      const size_t colon = field.field.find(':');
      if (colon == std::string::npos) continue;
      PolicyEntry entry{field.field.substr(colon + 1), field.field.substr(0, colon), field.value};
      (void)rebuilt.Set(std::move(entry), /*check_ties=*/false);  // peers' entries as they are
    }
  }
  policy_table_ = std::move(rebuilt);
}

Result<void> Keyspace::SetPolicy(const std::string& pattern, const std::string& type,
                                 const std::string& rule, int64_t now_ms) {
  PolicyTable candidate = policy_table_;
  if (Result<void> valid = candidate.Set(PolicyEntry{pattern, type, rule}); !valid.ok()) {
    return valid;
  }
  const int db = system_db();
  return Write(db, kPolicyKey, now_ms,
               [&](crdt::Key& key, const crdt::Writer& w, crdt::DotContext& shard) {
                 return key.HSet(type + ":" + pattern, rule, /*keep_ttl=*/true, w, shard);
               });
}

bool Keyspace::DelPolicy(const std::string& pattern, const std::string& type, int64_t now_ms) {
  const int db = system_db();
  const KeyRef existing = Find(db, kPolicyKey, now_ms);
  const std::string field = type + ":" + pattern;
  if (existing == nullptr || !existing->hash().Get(field, now_ms)) {
    return false;
  }
  return Write(db, kPolicyKey, now_ms,
               [&](crdt::Key& key, const crdt::Writer& w, crdt::DotContext& shard) {
                 return key.HDel({field}, w, shard);
               })
      .ok();
}

void Keyspace::Ship(int db, std::string_view key, const crdt::KeyOp& op) {
  ++stats_.local_ops;
  for (KeyspaceObserver* observer : observers_) observer->OnLocalOp(db, key, op);
}

// Reclaims the key at `it` if it (or any of its hash fields) has expired at now_ms, shipping
// the observed-remove op. The entry may become empty; the caller decides whether to erase it.
void Keyspace::ReclaimIfExpired(int db, Table& table, Table::iterator it, int64_t now_ms) {
  if ((*it)->compact()) {
    return;  // no expiry, no fields
  }
  crdt::Key& value = (*it)->full();
  const bool key_expired = value.ExpiryMs().has_value() && *value.ExpiryMs() <= now_ms &&
                           value.Type() != crdt::ObjectType::kNone;
  // Only hashes in field_ttl_keys can hold field TTLs (every path that adds one indexes the
  // key): a write to any other key must not walk its fields.
  const bool field_ttls = !key_expired && dbs_[db]->field_ttl_keys.contains(Abs((*it)->name()));
  const size_t fields = field_ttls ? value.hash().ExpiredFields(now_ms).size() : 0;
  if (!key_expired && fields == 0) {
    return;
  }
  std::optional<crdt::KeyOp> op = value.Reclaim(BeginWrite(now_ms), context_);
  if (!op.has_value()) {
    return;
  }
  stats_.expired_keys += key_expired ? 1 : 0;
  stats_.expired_fields += fields;
  reclaiming_ = key_expired ? Reclaiming::kKey : Reclaiming::kFields;
  Ship(db, (*it)->name(), *op);
  reclaiming_ = Reclaiming::kNone;
  (void)table;
}

crdt::Key& Keyspace::Open(int db, std::string_view key, int64_t now_ms) {
  return (*OpenEntry(db, key, now_ms).it)->full();
}

crdt::Key& Keyspace::ToFull(Table::iterator it) {
  if ((*it)->compact()) {
    // Replacing the pointer keeps the element's hash: the name is the same.
    auto& slot = const_cast<StoredKeyPtr&>(*it);
    slot.reset(StoredKey::NewFull(slot->name(), ExpandCompact(*slot, replicas_)));
  }
  return (*it)->full();
}

void Keyspace::Settle(int db, Table& table, Table::iterator it) {
  if (EraseIfEmpty(db, table, it) || (*it)->compact() || db == system_db()) {
    return;
  }
  if (!(*it)->full().PlainString()) {
    const crdt::IncEntry* inc = LoneCounter((*it)->full());
    if (inc == nullptr) {
      SettleCollection(db, it);
    } else if (const std::optional<uint64_t> dot = replicas_.Pack(inc->dot)) {
      ReplaceWithCompact(db, it, StoredKey::NewCounter((*it)->name(), inc->total, *dot));
    }
    return;
  }
  const crdt::RegisterEntry<std::string>& head = *(*it)->full().string().Winner();
  const std::optional<uint64_t> dot = replicas_.Pack(head.dot);
  if (!dot.has_value() || head.value.size() >= 0x80000000u) {
    return;
  }
  ReplaceWithCompact(db, it, StoredKey::NewCompact((*it)->name(), head.value, head.hlc, *dot));
}

void Keyspace::ReplaceWithCompact(int db, Table::iterator it, StoredKey* compact) {
  StoredKeyPtr owned(compact);
  Db& d = *dbs_[db];
  if (!d.field_ttl_keys.empty()) {
    d.field_ttl_keys.erase(std::string((*it)->name()));
  }
  // Replacing the pointer keeps the element's hash: the name is the same.
  const_cast<StoredKeyPtr&>(*it) = std::move(owned);
}

void Keyspace::SettleCollection(int db, Table::iterator it) {
  const crdt::Key& key = (*it)->full();
  const crdt::KeyRest* rest = key.rest();
  if (rest == nullptr) {
    return;
  }
  const CompactLimits& limits = compact_limits(rest->has_hash()  ? crdt::ObjectType::kHash
                                               : rest->has_set() ? crdt::ObjectType::kSet
                                                                 : crdt::ObjectType::kZSet);
  if (!CompactCandidate(key, limits)) {
    return;  // O(1): large keys stop here
  }
  const std::optional<CompactCollection> compact = EncodeCompact(key, replicas_, limits);
  if (!compact.has_value()) {
    return;
  }
  ReplaceWithCompact(
      db, it,
      StoredKey::NewCollection((*it)->name(), compact->blob, compact->hlc, compact->packed_dot));
}

void Keyspace::set_compact_limits(crdt::ObjectType type, CompactLimits limits) {
  if (type == crdt::ObjectType::kHash) hash_limits_ = limits;
  if (type == crdt::ObjectType::kSet) set_limits_ = limits;
  if (type == crdt::ObjectType::kZSet) zset_limits_ = limits;
}

const CompactLimits& Keyspace::compact_limits(crdt::ObjectType type) const {
  return type == crdt::ObjectType::kHash  ? hash_limits_
         : type == crdt::ObjectType::kSet ? set_limits_
                                          : zset_limits_;
}

Keyspace::Entry Keyspace::OpenEntry(int db, std::string_view key, int64_t now_ms) {
  BeginChange();
  current_policies_ = PoliciesFor(db, key);
  Table* table = TableFor(db, key, /*create=*/true);
  auto it = table->find(key);
  if (it == table->end()) {
    it = table->emplace(StoredKey::NewFull(key, crdt::Key())).first;
    ++dbs_[db]->size;
    return {table, it};
  }
  ToFull(it);
  ReclaimIfExpired(db, *table, it, now_ms);
  return {table, it};
}

bool Keyspace::EraseIfEmpty(int db, Table& table, Table::iterator it) {
  Db& d = *dbs_[db];
  const StoredKey& stored = **it;
  if (stored.compact() || !stored.full().empty()) {
    if (!stored.compact() && stored.full().Type() == crdt::ObjectType::kNone) {
      d.hidden.emplace(std::string(stored.name()));
    } else if (!d.hidden.empty()) {
      d.hidden.erase(Abs(stored.name()));
    }
    return false;
  }
  if (!d.hidden.empty()) {
    d.hidden.erase(Abs(stored.name()));
  }
  Unindex(db, stored.name());
  table.erase(it);
  --dbs_[db]->size;
  return true;
}

void Keyspace::Reindex(int db, std::string_view key, const StoredKey& value) {
  Db& d = *dbs_[db];
  // A key that no longer exists (or has no expiry) is kept out of the index: -1 stands for
  // "no expiry" (GCC 12 misreports optional<int64_t> here as maybe-uninitialized).
  const int64_t at =
      value.compact() || value.full().empty() ? -1 : value.full().ExpiryMs().value_or(-1);
  if (at < 0 && d.expiry_of.empty()) {
    return;
  }
  auto old = d.expiry_of.find(Abs(key));
  if (old != d.expiry_of.end()) {
    if (at == old->second) {
      return;
    }
    d.expiry_index.erase({old->second, std::string(key)});
    d.expiry_of.erase(old);
  }
  if (at >= 0) {
    d.expiry_index.insert({at, std::string(key)});
    d.expiry_of.emplace(std::string(key), at);
  }
}

void Keyspace::Unindex(int db, std::string_view key) {
  Db& d = *dbs_[db];
  auto old = d.expiry_of.find(Abs(key));
  if (old != d.expiry_of.end()) {
    d.expiry_index.erase({old->second, std::string(key)});
    d.expiry_of.erase(old);
  }
  if (!d.field_ttl_keys.empty()) {
    d.field_ttl_keys.erase(std::string(key));
  }
}

void Keyspace::Commit(int db, std::string_view key, crdt::KeyOp op) {
  Table* table = TableFor(db, key, /*create=*/false);
  LATTICE_ASSERT_MSG(table != nullptr, "Commit without Open");
  auto it = table->find(key);
  LATTICE_ASSERT_MSG(it != table->end(), "Commit without Open");
  CommitEntry(db, key, {table, it}, std::move(op));
}

void Keyspace::CommitEntry(int db, std::string_view key, Entry entry, crdt::KeyOp op) {
  Ship(db, key, op);
  if (DeltaHasFieldTtl(op)) {
    dbs_[db]->field_ttl_keys.emplace(std::string((*entry.it)->name()));
  }
  Reindex(db, key, **entry.it);
  Settle(db, *entry.table, entry.it);
  SystemChanged(db);
}

void Keyspace::Close(int db, std::string_view key) {
  Table* table = TableFor(db, key, /*create=*/false);
  if (table == nullptr) {
    return;
  }
  auto it = table->find(key);
  if (it != table->end()) {
    CloseEntry(db, {table, it});
  }
}

void Keyspace::CloseEntry(int db, Entry entry) {
  Reindex(db, (*entry.it)->name(), **entry.it);
  Settle(db, *entry.table, entry.it);
}

bool Keyspace::Delete(int db, std::string_view key, int64_t now_ms) {
  BeginChange();
  current_policies_ = PoliciesFor(db, key);
  Table* table = TableFor(db, key, /*create=*/false);
  if (table == nullptr) {
    return false;
  }
  auto it = table->find(key);
  if (it == table->end()) {
    return false;
  }
  if ((*it)->compact_string()) {
    // In place: the op Key::Del gives on a plain string (an observed-remove of its one dot, plus
    // the op's own dot), and the entry goes.
    const crdt::Writer writer = BeginWrite(now_ms);
    crdt::KeyOp op;
    op.policies = writer.policies;
    op.hlc = writer.hlc;
    op.first_dot = dots_.Next();
    op.dot_count = 1;
    const crdt::Dot observed = replicas_.Unpack((*it)->packed_dot());
    op.context.Add(observed);
    op.context.Add(op.first_dot);
    context_.Add(observed);
    context_.Add(op.first_dot);
    table->erase(it);
    --dbs_[db]->size;
    Ship(db, key, op);
    return true;
  }
  const bool visible = ToFull(it).TypeAt(now_ms) != crdt::ObjectType::kNone;
  std::optional<crdt::KeyOp> op = (*it)->full().Del(BeginWrite(now_ms), context_);
  if (op.has_value()) {
    Ship(db, key, *op);
  }
  Reindex(db, key, **it);
  Settle(db, *table, it);
  return visible;
}

void Keyspace::SetString(int db, std::string_view key, std::string_view value, bool keep_ttl,
                         int64_t now_ms) {
  BeginChange();
  Table* table = TableFor(db, key, /*create=*/true);
  auto it = table->find(key);
  const bool exists = it != table->end();
  if (db == system_db() || (exists && !(*it)->compact_string()) || value.size() >= 0x80000000u) {
    (void)Write(db, key, now_ms, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
      return k.Set(std::string(value), keep_ttl, std::nullopt, w, c);
    });
    return;
  }
  // Key::Set on a missing or plain string (which has no TTL to keep): one new entry that
  // observes the old one's dot.
  current_policies_ = PoliciesFor(db, key);
  const crdt::Writer writer = BeginWrite(now_ms);
  const crdt::Dot dot = dots_.Next();
  const std::optional<uint64_t> packed = replicas_.Pack(dot);
  LATTICE_ASSERT_MSG(packed.has_value(), "this replica's sequence outgrew 48 bits");
  crdt::KeyOp op;
  op.policies = writer.policies;
  op.hlc = writer.hlc;
  op.first_dot = dot;
  op.dot_count = 1;
  if (exists) {
    const crdt::Dot observed = replicas_.Unpack((*it)->packed_dot());
    op.context.Add(observed);
    context_.Add(observed);
    if (!(*it)->AssignInPlace(value, writer.hlc, *packed)) {
      const_cast<StoredKeyPtr&>(*it).reset(StoredKey::NewCompact(key, value, writer.hlc, *packed));
    }
  } else {
    table->emplace(StoredKey::NewCompact(key, value, writer.hlc, *packed));
    ++dbs_[db]->size;
  }
  op.context.Add(dot);
  context_.Add(dot);
  op.delta = crdt::Key::OfString({std::string(value), writer.hlc, dot});
  Ship(db, key, op);
}

Result<void> Keyspace::IncrString(int db, std::string_view key, int64_t by, int64_t now_ms) {
  Result<std::optional<CounterIncrement>> fast = IncrCounter(db, key, by, now_ms);
  if (!fast.ok()) {
    return Unexpected(fast.error());
  }
  if (!fast->has_value()) {
    return Write(db, key, now_ms, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
      return k.IncrBy(by, w, c);
    });
  }
  if (!(*fast)->written) {
    return Unexpected(ErrorCode::kOverflow);
  }
  return {};
}

Result<std::optional<Keyspace::CounterIncrement>> Keyspace::IncrCounter(int db,
                                                                        std::string_view key,
                                                                        int64_t by,
                                                                        int64_t now_ms) {
  if (db == system_db()) {
    return std::optional<CounterIncrement>();
  }
  BeginChange();
  Table* table = TableFor(db, key, /*create=*/true);
  auto it = table->find(key);
  if (it != table->end() &&
      ((*it)->collection() || (!(*it)->compact() && !(*it)->full().PlainIncrementable(now_ms)))) {
    return std::optional<CounterIncrement>();  // a compact collection, or not a plain counter
  }
  current_policies_ = PoliciesFor(db, key);
  if ((it == table->end() ||
       ((*it)->counter() && replicas_.Unpack((*it)->packed_dot()).replica == dots_.replica())) &&
      current_policies_.string != crdt::StringRule::kLww) {
    return IncrCompactCounter(db, *table, it, key, by, now_ms);
  }
  if (it == table->end()) {
    it = table->emplace(StoredKey::NewFull(key, crdt::Key())).first;
    ++dbs_[db]->size;
  }
  crdt::Key& state = ToFull(it);
  std::optional<int64_t> expected;
  Result<crdt::KeyOp> op = state.IncrByInPlace(by, BeginWrite(now_ms), context_, &expected);
  CounterIncrement out;
  if (op.ok()) {
    Ship(db, key, *op);
    out.written = true;
    const std::optional<Result<int64_t>> now = crdt::CounterInt(state.string());
    out.rendered = now.has_value() ? now->ok() && **now == *expected
                                   : state.GetString(now_ms) == std::to_string(*expected);
  }
  Settle(db, *table, it);  // drops an entry a refused write created; a LWW result turns compact
  if (!expected.has_value()) {
    return Unexpected(op.error());  // Valkey's refusal, before any write
  }
  out.value = *expected;
  return std::optional<CounterIncrement>(out);
}

// Key::IncrByInPlace on a missing key or on a compact counter of this replica (the state it
// leaves there: one increment chain with no base), straight on the stored total: the same state
// and op. The op observes the chain's previous dot and takes one new dot.
Result<std::optional<Keyspace::CounterIncrement>> Keyspace::IncrCompactCounter(
    int db, Table& table, Table::iterator it, std::string_view key, int64_t by, int64_t now_ms) {
  const bool exists = it != table.end();
  const crdt::Writer writer = BeginWrite(now_ms);  // ticks the HLC even when refused, as Write
  int64_t next = 0;
  if (__builtin_add_overflow(exists ? (*it)->counter_total() : 0, by, &next)) {
    return Unexpected(ErrorCode::kOverflow);
  }
  crdt::KeyOp op;
  op.policies = writer.policies;
  op.hlc = writer.hlc;
  op.first_dot = dots_.Next();
  op.dot_count = 1;
  const std::optional<uint64_t> packed = replicas_.Pack(op.first_dot);
  LATTICE_ASSERT_MSG(packed.has_value(), "this replica's sequence outgrew 48 bits");
  if (exists) {
    const crdt::Dot observed = replicas_.Unpack((*it)->packed_dot());
    op.context.Add(observed);
    context_.Add(observed);
    const_cast<StoredKey&>(**it).SetCounter(next, *packed);
  } else {
    table.emplace(StoredKey::NewCounter(key, next, *packed));
    ++dbs_[db]->size;
  }
  op.context.Add(op.first_dot);
  context_.Add(op.first_dot);
  op.delta = crdt::Key::OfCounter(crdt::IncEntry{op.first_dot, crdt::Dot{}, next});
  Ship(db, key, op);
  return std::optional<CounterIncrement>(
      CounterIncrement{.value = next, .written = true, .rendered = true});
}

std::optional<Keyspace::Entry> Keyspace::FindEntry(int db, std::string_view key) {
  if (db == system_db()) {
    return std::nullopt;
  }
  Table* table = TableFor(db, key, /*create=*/false);
  if (table == nullptr) {
    return std::nullopt;
  }
  auto it = table->find(key);
  if (it == table->end()) {
    return std::nullopt;
  }
  return Entry{table, it};
}

std::optional<Keyspace::Entry> Keyspace::FindCompact(int db, std::string_view key,
                                                     crdt::ObjectType type) {
  std::optional<Entry> entry = FindEntry(db, key);
  if (!entry || !(*entry->it)->collection() || CompactType((*entry->it)->value()) != type) {
    return std::nullopt;
  }
  return entry;
}

bool Keyspace::WriteCompact(int db, std::string_view key, Entry entry, crdt::ObjectType type,
                            const std::vector<CompactElement>& edits, int64_t now_ms,
                            size_t* added) {
  const StoredKey& stored = **entry.it;
  const CompactLimits& limits = compact_limits(type);
  CompactEdit edit_blob(stored.value(), stored.hlc(), stored.packed_dot());
  std::vector<CompactElement>& elements = edit_blob.elements();
  auto find = [&](std::string_view name) { return edit_blob.Find(name); };
  size_t count = elements.size();
  for (size_t i = 0; i < edits.size(); ++i) {
    const CompactElement& edit = edits[i];
    if (edit.name.size() > limits.max_value || edit.value.size() > limits.max_value) {
      return false;
    }
    const bool earlier = std::any_of(edits.begin(), edits.begin() + static_cast<ptrdiff_t>(i),
                                     [&](const CompactElement& e) { return e.name == edit.name; });
    count += !earlier && find(edit.name) == elements.end() ? 1 : 0;
  }
  if (count > std::min(limits.max_entries, CompactLimits::kMaxCompactEntries)) {
    return false;
  }
  if (added != nullptr) *added = count - elements.size();
  // What the mutators' in-place paths do (crdt/src/key_write.cc): each element observes the
  // entry it replaces and takes a new dot; the delta holds the new elements.
  current_policies_ = PoliciesFor(db, key);
  const crdt::Writer writer = BeginWrite(now_ms);
  crdt::KeyOp op;
  op.policies = writer.policies;
  op.hlc = writer.hlc;
  op.first_dot = crdt::Dot{dots_.replica(), dots_.next_seq()};
  crdt::OrHash hash;
  crdt::OrSet set;
  crdt::SortedSet zset;
  for (const CompactElement& edit : edits) {
    if (auto found = find(edit.name); found != elements.end()) {
      const crdt::Dot observed = replicas_.Unpack(found->packed_dot);
      context_.Add(observed);
      op.context.Add(observed);
      edit_blob.Remove(found);
    }
    const crdt::Dot dot = dots_.Next();
    const std::optional<uint64_t> packed = replicas_.Pack(dot);
    LATTICE_ASSERT_MSG(packed.has_value(), "this replica's sequence outgrew 48 bits");
    context_.Add(dot);
    op.context.Add(dot);
    CompactElement added = edit;
    added.hlc = writer.hlc;
    added.packed_dot = *packed;
    edit_blob.Append(added);
    const std::string name(edit.name);
    if (type == crdt::ObjectType::kHash) {
      hash.Put(name, crdt::StringCell::OfEntry({std::string(edit.value), writer.hlc, dot}));
    } else if (type == crdt::ObjectType::kSet) {
      set.Put(name, dot);
    } else {
      zset.Put(name, crdt::ScoreCell::OfEntry({edit.score, writer.hlc, dot}));
    }
  }
  op.dot_count = dots_.next_seq() - op.first_dot.seq;
  op.delta = type == crdt::ObjectType::kHash  ? crdt::Key::OfHash({}, std::move(hash))
             : type == crdt::ObjectType::kSet ? crdt::Key::OfSet({}, std::move(set))
                                              : crdt::Key::OfZSet({}, std::move(zset));
  // The replaced elements move to the end.
  const std::string blob = edit_blob.Blob();
  auto& slot = const_cast<StoredKeyPtr&>(*entry.it);
  if (!slot->AssignInPlace(blob, slot->hlc(), slot->packed_dot())) {
    slot.reset(StoredKey::NewCollection(key, blob, slot->hlc(), slot->packed_dot()));
  }
  CommitEntry(db, key, entry, std::move(op));
  return true;
}

Result<void> Keyspace::HSetMany(int db, std::string_view key,
                                std::vector<std::pair<std::string, std::string>> pairs,
                                bool keep_ttl, int64_t now_ms) {
  BeginChange();
  if (auto entry = FindCompact(db, key, crdt::ObjectType::kHash); entry && !pairs.empty()) {
    std::vector<CompactElement> edits;
    edits.reserve(pairs.size());
    for (const auto& [field, value] : pairs) edits.push_back({.name = field, .value = value});
    if (WriteCompact(db, key, *entry, crdt::ObjectType::kHash, edits, now_ms)) {
      return {};
    }
  }
  return Write(db, key, now_ms, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.HSetMany(std::move(pairs), keep_ttl, w, c);
  });
}

namespace {

// SADD's members as compact edits, distinct and sorted, as Key::SAdd takes them.
std::vector<CompactElement> SortedEdits(const std::vector<std::string>& members) {
  std::vector<CompactElement> edits;
  edits.reserve(members.size());
  for (const std::string& member : members) edits.push_back({.name = member});
  std::sort(edits.begin(), edits.end(),
            [](const CompactElement& a, const CompactElement& b) { return a.name < b.name; });
  edits.erase(std::unique(edits.begin(), edits.end(),
                          [](const CompactElement& a, const CompactElement& b) {
                            return a.name == b.name;
                          }),
              edits.end());
  return edits;
}

}  // namespace

Result<size_t> Keyspace::SAdd(int db, std::string_view key, const std::vector<std::string>& members,
                              int64_t now_ms) {
  BeginChange();
  size_t added = 0;
  if (std::optional<Entry> entry = FindEntry(db, key); entry && (*entry->it)->compact()) {
    // A compact key is live (no expiry): a compact set is edited in place, any other type is
    // refused here (Write would expand it only to refuse).
    const StoredKey& stored = **entry->it;
    if (!stored.collection() || CompactType(stored.value()) != crdt::ObjectType::kSet) {
      (void)BeginWrite(now_ms);  // ticks the HLC as the refused Write would
      return Unexpected(ErrorCode::kWrongType);
    }
    if (!members.empty() && WriteCompact(db, key, *entry, crdt::ObjectType::kSet,
                                         SortedEdits(members), now_ms, &added)) {
      return added;
    }
  }
  Result<void> written =
      Write(db, key, now_ms, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
        return k.SAdd(members, w, c, &added);
      });
  if (!written.ok()) {
    return Unexpected(written.error());
  }
  return added;
}

Result<void> Keyspace::ZAddMany(int db, std::string_view key,
                                const std::vector<std::pair<std::string, double>>& pairs,
                                int64_t now_ms) {
  BeginChange();
  if (auto entry = FindCompact(db, key, crdt::ObjectType::kZSet); entry && !pairs.empty()) {
    std::vector<CompactElement> edits;
    edits.reserve(pairs.size());
    for (const auto& [member, score] : pairs) edits.push_back({.name = member, .score = score});
    if (WriteCompact(db, key, *entry, crdt::ObjectType::kZSet, edits, now_ms)) {
      return {};
    }
  }
  return Write(db, key, now_ms, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.ZAddMany(pairs, w, c);
  });
}

VisibleValue ReadVisible(const KeyRef& key, int64_t now_ms) {
  if (const crdt::Key* full = key.full()) {
    return ReadVisible(*full, now_ms);
  }
  if (!key.CompactValue().has_value()) {
    return ReadVisible(key.ToKey(), now_ms);  // a compact collection
  }
  VisibleValue out;
  out.type = crdt::ObjectType::kString;
  out.string = std::string(*key.CompactValue());
  return out;
}

VisibleValue ReadVisible(const crdt::Key& key, int64_t now_ms) {
  VisibleValue out;
  out.type = key.TypeAt(now_ms);
  switch (out.type) {
    case crdt::ObjectType::kNone:
      return out;
    case crdt::ObjectType::kString:
      out.string = key.GetString(now_ms).value_or("");
      break;
    case crdt::ObjectType::kHash:
      for (auto& [field, value] : key.hash().GetAll(now_ms)) {
        const int64_t ttl = key.hash().FieldExpiry(field).value_or(0);
        out.hash.push_back({field, std::move(value), ttl});
      }
      break;
    case crdt::ObjectType::kSet:
      out.set = key.set().Members();
      break;
    case crdt::ObjectType::kZSet:
      for (auto& [score, member] : key.zset().index().Range(0, key.zset().Size())) {
        out.zset.emplace_back(std::move(member), score);
      }
      break;
    case crdt::ObjectType::kList:
      if (!key.list().empty()) {
        out.list = key.list().Range(0, key.list().Size() - 1);
      }
      break;
    case crdt::ObjectType::kStream:
      for (const auto& [entry, fields] : key.stream().entries()) {
        out.stream.emplace_back(entry.id, fields.ToVector());
      }
      out.stream_meta = key.stream().Meta();
      for (const std::string& group : key.stream().GroupNames()) {
        for (crdt::GroupPart part :
             {crdt::GroupPart::kGroup, crdt::GroupPart::kConsumer, crdt::GroupPart::kPending}) {
          key.stream().ForEachSlot(group, part, [&](const auto& slot, crdt::GroupValue value) {
            value.hlc = 0;
            out.stream_groups.emplace_back(slot, std::move(value));
          });
        }
      }
      break;
  }
  out.expiry_ms = key.ExpiryMs();
  return out;
}

void Keyspace::WriteVisible(int db, std::string_view key, const VisibleValue& value,
                            int64_t now_ms) {
  (void)Delete(db, key, now_ms);
  using crdt::Key;
  using crdt::Writer;
  switch (value.type) {
    case crdt::ObjectType::kNone:
      return;
    case crdt::ObjectType::kString:
      // SET carries the expiry in the same op, as Valkey propagates SET ... PXAT.
      (void)Write(db, key, now_ms, [&](Key& k, const Writer& w, crdt::DotContext&) {
        return k.Set(value.string, false, value.expiry_ms, w, context_);
      });
      return;
    case crdt::ObjectType::kHash:
      for (const auto& entry : value.hash) {
        (void)Write(db, key, now_ms, [&](Key& k, const Writer& w, crdt::DotContext&) {
          return k.HSet(entry.field, entry.value, false, w, context_);
        });
      }
      for (const auto& entry : value.hash) {
        if (entry.ttl_at_ms != 0) {
          (void)Write(db, key, now_ms, [&](Key& k, const Writer& w, crdt::DotContext&) {
            return k.HExpire(entry.field, entry.ttl_at_ms, w, context_);
          });
        }
      }
      break;
    case crdt::ObjectType::kSet:
      (void)Write(db, key, now_ms, [&](Key& k, const Writer& w, crdt::DotContext&) {
        return k.SAdd(value.set, w, context_);
      });
      break;
    case crdt::ObjectType::kZSet:
      // Not a structured binding: clang 14 cannot capture those.
      for (const auto& entry : value.zset) {
        (void)Write(db, key, now_ms, [&](Key& k, const Writer& w, crdt::DotContext&) {
          return k.ZAdd(entry.first, entry.second, w, context_);
        });
      }
      break;
    case crdt::ObjectType::kList:
      (void)Write(db, key, now_ms, [&](Key& k, const Writer& w, crdt::DotContext&) {
        return k.LEdit({}, crdt::ListEnd::kTail, value.list, w, context_);
      });
      break;
    case crdt::ObjectType::kStream:
      (void)Write(db, key, now_ms, [&](Key& k, const Writer& w, crdt::DotContext&) {
        Key::StreamEdit edit{.adds = value.stream,
                             .meta = value.stream_meta,
                             .create = true,
                             .group_write = value.stream_groups};
        return k.XEdit(std::move(edit), w, context_);
      });
      break;
  }
  if (value.expiry_ms.has_value()) {
    (void)Write(db, key, now_ms, [&](Key& k, const Writer& w, crdt::DotContext&) {
      return k.Expire(*value.expiry_ms, w, context_);
    });
  }
}

void Keyspace::ApplyRemote(int db, std::string_view key, const crdt::KeyOp& op) {
  BeginChange();
  ++stats_.remote_ops;
  (void)hlc_.Update(op.hlc, hlc_.wall_ms());  // bounded by the wall clock, not by last()
  Table* table = TableFor(db, key, /*create=*/true);
  auto it = table->find(key);
  if (it == table->end()) {
    if (ApplyToMissing(db, *table, key, op)) {
      ++stats_.remote_in_place;
      for (KeyspaceObserver* observer : observers_) observer->OnRemoteOp(db, key, op);
      return;
    }
    it = table->emplace(StoredKey::NewFull(key, crdt::Key())).first;
    ++dbs_[db]->size;
  }
  if (ApplyDirect(db, *table, it, op)) {
    ++stats_.remote_in_place;
    for (KeyspaceObserver* observer : observers_) observer->OnRemoteOp(db, key, op);
    return;
  }
  const ConflictLog::Remote remote = ConflictLog::Remote::Of(op);
  const bool judged = db != system_db();  // policy entries are not conflicts an operator reads
  crdt::Key& state = ToFull(it);
  const ConflictLog::Before before =
      judged ? ConflictLog::Capture(state.empty() ? nullptr : &state, remote)
             : ConflictLog::Before{};
  const bool was_visible = state.Type() != crdt::ObjectType::kNone;
  state.Apply(op, context_);
  if (judged) {
    conflicts_.Record(db, key, before, remote, state, crdt::HlcPhysicalMs(hlc_.last()));
  }
  if (DeltaHasFieldTtl(op)) {
    dbs_[db]->field_ttl_keys.emplace(std::string(key));
  }
  // A remove that changed nothing visible (a peer's purge of garbage, docs/crdt.md
  // "Compaction") raises no event and wakes no one.
  const bool unseen = !was_visible && op.delta.empty() && state.Type() == crdt::ObjectType::kNone;
  Reindex(db, key, **it);
  Settle(db, *table, it);
  SystemChanged(db);
  if (unseen) {
    return;
  }
  for (KeyspaceObserver* observer : observers_) observer->OnRemoteOp(db, key, op);
}

namespace {

bool OwnDot(const crdt::KeyOp& op, crdt::Dot dot) {
  return dot.replica == op.first_dot.replica && dot.seq >= op.first_dot.seq &&
         dot.seq - op.first_dot.seq < op.dot_count;
}

// Whether the op's context is exactly its own dots and `observed` (distinct dots, none of them
// the op's own): then the join removes what holds `observed` and nothing else.
bool ContextIsOwnAnd(const crdt::KeyOp& op, std::span<const crdt::Dot> observed) {
  uint64_t size = op.context.cloud().size();
  for (const auto& [replica, seq] : op.context.vector().entries()) size += seq;
  if (size != op.dot_count + observed.size()) {
    return false;
  }
  for (uint64_t i = 0; i < op.dot_count; ++i) {
    if (!op.context.Contains({op.first_dot.replica, op.first_dot.seq + i})) return false;
  }
  return std::all_of(observed.begin(), observed.end(),
                     [&](crdt::Dot dot) { return !OwnDot(op, dot) && op.context.Contains(dot); });
}

}  // namespace

// The direct apply paths (docs/replication.md, "Applying an op"). Each gives the state and
// context ApplyRemote's join would, and records no conflict: the op observed every dot of what
// it replaces, so no local write was concurrent with it. The system db and ops under non-default
// policies take the join.
bool Keyspace::DirectAllowed(int db, const crdt::KeyOp& op) const {
  return direct_apply_ && db != system_db() && op.policies == crdt::Policies{};
}

// A missing key and a SET or a counter increment: the join leaves the delta's one entry (the
// shard has not seen its dot), which Settle would store compact: stored compact at once.
bool Keyspace::ApplyToMissing(int db, Table& table, std::string_view key, const crdt::KeyOp& op) {
  if (!DirectAllowed(db, op) || op.dot_count != 1) {
    return false;
  }
  StoredKey* created = nullptr;
  if (op.delta.PlainString()) {
    const crdt::RegisterEntry<std::string>& head = *op.delta.string().Winner();
    const std::optional<uint64_t> packed = replicas_.Pack(head.dot);
    if (!packed.has_value() || head.value.size() >= 0x80000000u || context_.Contains(head.dot)) {
      return false;
    }
    created = StoredKey::NewCompact(key, head.value, head.hlc, *packed);
  } else if (const crdt::IncEntry* inc = LoneCounter(op.delta)) {
    const std::optional<uint64_t> packed = replicas_.Pack(inc->dot);
    if (!packed.has_value() || context_.Contains(inc->dot)) {
      return false;
    }
    created = StoredKey::NewCounter(key, inc->total, *packed);
  } else {
    return false;
  }
  table.emplace(created);
  ++dbs_[db]->size;
  context_.Join(op.context);
  return true;
}

// A SET that observed a compact string's one entry is assigned in place, an increment that
// observed a compact counter's latest increment (the same replica's chain) is stored in place, a
// plain add or replace of elements in a compact collection rewrites its blob, and a full key
// takes Key::ApplyInPlace.
bool Keyspace::ApplyDirect(int db, Table& table, Table::iterator it, const crdt::KeyOp& op) {
  if (!DirectAllowed(db, op)) {
    return false;
  }
  auto& slot = const_cast<StoredKeyPtr&>(*it);
  if (slot->collection()) {
    return ApplyCompactCollection(it, op);
  }
  if (slot->counter()) {
    const crdt::IncEntry* inc = LoneCounter(op.delta);
    if (inc == nullptr || op.dot_count != 1 || inc->dot != op.first_dot) {
      return false;
    }
    const crdt::Dot observed[] = {replicas_.Unpack(slot->packed_dot())};
    const std::optional<uint64_t> packed = replicas_.Pack(inc->dot);
    if (!packed.has_value() || observed[0].replica != inc->dot.replica ||
        context_.Contains(inc->dot) || !ContextIsOwnAnd(op, observed)) {
      return false;
    }
    slot->SetCounter(inc->total, *packed);
    context_.Join(op.context);
    return true;
  }
  if (slot->compact_string()) {
    if (!op.delta.PlainString() || op.dot_count != 1) {
      return false;
    }
    const crdt::RegisterEntry<std::string>& head = *op.delta.string().Winner();
    const std::optional<uint64_t> packed = replicas_.Pack(head.dot);
    if (!packed.has_value() || head.value.size() >= 0x80000000u || context_.Contains(head.dot) ||
        !op.context.Contains(replicas_.Unpack(slot->packed_dot()))) {
      return false;
    }
    if (!slot->AssignInPlace(head.value, head.hlc, *packed)) {
      slot.reset(StoredKey::NewCompact(slot->name(), head.value, head.hlc, *packed));
    }
    context_.Join(op.context);
    return true;
  }
  crdt::Key& state = slot->full();
  if (!state.ApplyInPlace(op, context_)) {
    return false;
  }
  if (op.delta.rest() != nullptr && state.rest()->expiry().empty()) {
    // Plain elements added to (or replacing others in) a collection without an expiry: the key
    // holds a live element, so it is not empty and has a type, and it has no expiry to index.
    // What Settle would do then: leave the hidden keys, maybe turn compact.
    Db& d = *dbs_[db];
    if (!d.hidden.empty()) {
      d.hidden.erase(Abs(slot->name()));
    }
    SettleCollection(db, it);
    return true;
  }
  Reindex(db, slot->name(), *slot);
  Settle(db, table, it);
  return true;
}

// A plain add or replace of elements in a compact collection of their type (HSET, SADD, ZADD,
// each element with one own dot, each element it replaces observed): the join would drop the
// replaced elements and keep the delta's (the shard has seen none of its dots), and Settle
// would store the result compact if it fits the limits. Rewritten in place instead.
bool Keyspace::ApplyCompactCollection(Table::iterator it, const crdt::KeyOp& op) {
  auto& slot = const_cast<StoredKeyPtr&>(*it);
  const crdt::ObjectType type = CompactType(slot->value());
  const crdt::KeyRest* d = op.delta.rest();
  if (d == nullptr || !op.delta.string().empty() || !d->expiry().empty() || d->has_list() ||
      d->has_stream() || d->has_hash() != (type == crdt::ObjectType::kHash) ||
      d->has_set() != (type == crdt::ObjectType::kSet) ||
      d->has_zset() != (type == crdt::ObjectType::kZSet) || !d->hash_created().empty() ||
      !d->set_created().empty() || !d->zset_created().empty() || !d->set().removes().empty() ||
      !d->zset().removes().empty() || op.dot_count > CompactLimits::kMaxCompactEntries) {
    return false;
  }
  const CompactLimits& limits = compact_limits(type);
  CompactEdit edit(slot->value(), slot->hlc(), slot->packed_dot());
  std::vector<crdt::Dot> observed;
  std::vector<uint64_t> own;  // the delta's dots, as offsets from the op's first dot
  auto put = [&](std::string_view name, CompactElement element, crdt::Dot dot) {
    const std::optional<uint64_t> packed = replicas_.Pack(dot);
    if (!packed.has_value() || !OwnDot(op, dot) || context_.Contains(dot) ||
        name.size() > limits.max_value || element.value.size() > limits.max_value) {
      return false;
    }
    if (auto found = edit.Find(name); found != edit.elements().end()) {
      observed.push_back(replicas_.Unpack(found->packed_dot));
      edit.Remove(found);
    }
    own.push_back(dot.seq - op.first_dot.seq);
    element.name = name;
    element.packed_dot = *packed;
    edit.Append(element);
    return true;
  };
  bool plain = true;
  if (type == crdt::ObjectType::kHash) {
    for (const auto& [name, field] : d->hash().fields()) {
      const std::optional<crdt::EntryView> entry = field.Plain();
      plain = plain && field.ttl() == nullptr && entry.has_value() &&
              put(name, {.value = entry->value, .hlc = entry->hlc}, entry->dot);
      if (!plain) break;
    }
  } else if (type == crdt::ObjectType::kSet) {
    for (const auto& [name, dots] : d->set().adds()) {
      plain = plain && dots.size() == 1 && put(name, {}, dots.dots()[0]);
      if (!plain) break;
    }
  } else {
    d->zset().ForEachMember([&](std::string_view name, const crdt::ScoreCell& cell) {
      const crdt::RegisterEntry<double>* entry = cell.rest() == nullptr ? cell.Winner() : nullptr;
      plain = plain && entry != nullptr &&
              put(name, {.score = entry->value, .hlc = entry->hlc}, entry->dot);
    });
  }
  // Every own dot held by exactly one element (nothing else in the delta holds one), the result
  // within the limits, and the context exactly the own dots and the replaced elements' dots.
  std::sort(own.begin(), own.end());
  for (size_t i = 0; plain && i < own.size(); ++i) plain = own[i] == i;
  if (!plain || own.size() != op.dot_count ||
      edit.elements().size() > std::min(limits.max_entries, CompactLimits::kMaxCompactEntries) ||
      !ContextIsOwnAnd(op, observed)) {
    return false;
  }
  const std::string blob = edit.Blob();
  if (!slot->AssignInPlace(blob, slot->hlc(), slot->packed_dot())) {
    slot.reset(StoredKey::NewCollection(slot->name(), blob, slot->hlc(), slot->packed_dot()));
  }
  context_.Join(op.context);
  return true;
}

void Keyspace::JoinState(int db, std::string_view key, const crdt::Key& theirs,
                         const crdt::DotContext& theirs_context) {
  BeginChange();
  JoinWith(db, key, theirs, &context_, theirs_context, /*record_conflicts=*/true);
}

void Keyspace::JoinImported(int db, std::string_view key, const crdt::Key& theirs,
                            const crdt::DotContext& theirs_context) {
  BeginChange();
  JoinWith(db, key, theirs, nullptr, theirs_context, /*record_conflicts=*/false);
}

void Keyspace::JoinInstalled(int db, std::string_view key, const crdt::Key& theirs,
                             const crdt::DotContext& mine_context,
                             const crdt::DotContext& theirs_context) {
  reads_.last = nullptr;  // what iterations handed out stays: only this key changes
  JoinWith(db, key, theirs, &mine_context, theirs_context, /*record_conflicts=*/true);
}

void Keyspace::JoinWith(int db, std::string_view key, const crdt::Key& theirs,
                        const crdt::DotContext* mine_context,
                        const crdt::DotContext& theirs_context, bool record_conflicts) {
  Table* table = TableFor(db, key, /*create=*/true);
  auto it = table->find(key);
  if (it == table->end()) {
    if (theirs.empty()) {
      return;
    }
    it = table->emplace(StoredKey::NewFull(key, crdt::Key())).first;
    ++dbs_[db]->size;
  }
  crdt::Key& state = ToFull(it);
  std::optional<ConflictLog::Remote> remote;
  ConflictLog::Before before;
  if (record_conflicts && db != system_db() && !state.empty() && !theirs.empty()) {
    remote.emplace(ConflictLog::Remote::OfState(theirs, theirs_context));
    before = ConflictLog::Capture(&state, *remote);
  }
  if (mine_context == nullptr) {
    crdt::DotContext seen;
    state.CollectDots(seen);
    state.Join(theirs, seen, theirs_context);
  } else {
    state.Join(theirs, *mine_context, theirs_context);
  }
  if (remote.has_value()) {
    conflicts_.Record(db, key, before, *remote, state, crdt::HlcPhysicalMs(hlc_.last()));
  }
  if (HasFieldTtl(state)) {
    dbs_[db]->field_ttl_keys.emplace(std::string(key));
  }
  Reindex(db, key, **it);
  Settle(db, *table, it);
  SystemChanged(db);
}

namespace {

// Erasing never shrinks an absl table: one under a third full is rebuilt to fit (an empty one
// frees its array). Per-slot tables are small, so the bound has no constant slack.
template <typename T>
void ShrinkIfSparse(T& table) {
  if (table.capacity() > 3 * table.size() + 2) {
    table.rehash(0);
  }
}

// A slot's table is rebuilt whenever a smaller capacity holds its keys (absl's capacities are
// 2^k - 1, filled to 7/8): a churn doubles the tables of the slots it crossed, and across 16,384
// slots a table left at 15 where 7 would do is most of what a churn left behind (a table of 5-7
// keys in 160 bytes instead of 80). A slot's table is small, so the rebuild is cheap; it runs
// only when compaction visits the slot.
void ShrinkSlotTable(absl::flat_hash_set<StoredKeyPtr, StoredKeyHash, StoredKeyEq>& table) {
  size_t fits = 1;
  while (fits - fits / 8 < table.size()) {
    fits = fits * 2 + 1;
  }
  if (table.capacity() > fits) {
    table.rehash(0);
  }
}

}  // namespace

size_t Keyspace::CompactSome(const crdt::VersionVector& stable, size_t max_keys, int64_t now_ms,
                             size_t max_items) {
  if (!exporters_.empty() || joiner_ != nullptr) {
    // A snapshot is being taken or installed: reaching a slot it has not copied (or joined)
    // would copy (or join) it now, and a tick's pass reaches thousands (70 ms of CPU at 1M
    // elements for the copies, 20-42 ms for the joins). Compaction waits the few seconds an
    // export or an install takes.
    return 0;
  }
  BeginChange();
  size_t visited = 0;
  size_t items = 0;
  std::vector<std::string> emptied;
  std::vector<std::string> purged;
  // Empty slots cost a step too: a pass over a sparse keyspace is spread over calls.
  const size_t max_steps = max_keys * 4 + 64;
  for (size_t step = 0; step < std::min(dbs_.size() * kSlotCount, max_steps) && visited < max_keys;
       ++step) {
    if (items >= max_items) {
      break;
    }
    const int db = static_cast<int>(compact_db_);
    if (dbs_[compact_db_]->slots.empty()) {
      compact_slot_ = 0;  // a db that never had a key: skip it whole
      compact_db_ = (compact_db_ + 1) % dbs_.size();
      continue;
    }
    const bool importing = hidden_slots_[compact_slot_];  // not ours yet: no purge there
    Reach(db, static_cast<uint16_t>(compact_slot_));
    Table* table = dbs_[compact_db_]->at(compact_slot_);
    if (++compact_slot_ == kSlotCount) {
      compact_slot_ = 0;
      compact_db_ = (compact_db_ + 1) % dbs_.size();
    }
    if (table == nullptr) {
      continue;
    }
    emptied.clear();
    purged.clear();
    for (const StoredKeyPtr& stored : *table) {
      ++visited;
      ++items;
      if (stored->compact()) {
        continue;  // one entry: nothing to compact
      }
      crdt::Key& key = stored->full();
      items += key.MetadataItems();
      key.Compact(stable);  // drops nothing unless the simulator injects its old rules
      if (db != system_db() && !importing && key.PurgeableBy(stable) == replica()) {
        purged.emplace_back(stored->name());
      } else if (key.Type() == crdt::ObjectType::kNone || key.PlainString() ||
                 (key.rest() != nullptr && key.rest()->expiry().empty() &&
                  CompactCandidate(key, compact_limits(key.Type())))) {
        // Maybe nothing is left, or a compact string or collection.
        emptied.emplace_back(stored->name());
      }
    }
    for (const std::string& name : emptied) {
      auto it = table->find(name);
      Settle(db, *table, it);
    }
    for (const std::string& name : purged) {
      Purge(db, *table, table->find(name), now_ms);
    }
    ShrinkSlotTable(*table);  // a churn's garbage left its capacity behind (SCAN is hash-ordered)
  }
  Db& current = *dbs_[compact_db_];
  ShrinkIfSparse(current.hidden);
  ShrinkIfSparse(current.expiry_of);
  return visited;
}

// Ships the DEL that removes a purgeable key's dots (Key::PurgeableBy) and frees the entry;
// every region frees it on applying the op. No keyspace event: nothing visible changed.
void Keyspace::Purge(int db, Table& table, Table::iterator it, int64_t now_ms) {
  std::optional<crdt::KeyOp> op = (*it)->full().Del(BeginWrite(now_ms), context_);
  if (op.has_value()) {
    ++stats_.purged_keys;
    reclaiming_ = Reclaiming::kPurge;
    Ship(db, (*it)->name(), *op);
    reclaiming_ = Reclaiming::kNone;
  }
  Reindex(db, (*it)->name(), **it);
  Settle(db, table, it);
}

void Keyspace::ResumeDots() {
  dots_ = crdt::DotSource(dots_.replica(), context_.vector().Get(dots_.replica()) + 1);
}

bool Keyspace::VisitState(int db, std::string_view key,
                          const std::function<void(const crdt::Key& value)>& visit) const {
  const Table* table = TableFor(db, key);
  if (table == nullptr) {
    return false;
  }
  auto it = table->find(key);
  if (it == table->end()) {
    return false;
  }
  const StoredKey& stored = **it;
  visit(stored.compact() ? expanded_.emplace_back(ExpandCompact(stored, replicas_))
                         : stored.full());
  return true;
}

void Keyspace::ForEachInSlot(
    int db, uint16_t slot,
    const std::function<void(const std::string& key, const crdt::Key& value)>& visit) const {
  Reach(db, slot);
  if (const Table* table = dbs_[db]->at(slot); table != nullptr) {
    VisitTable(*table, visit);
  }
}

void Keyspace::CopySlot(
    int db, uint16_t slot,
    const std::function<void(const std::string& key, crdt::Key value)>& visit) const {
  const Table* table = dbs_[db]->at(slot);
  if (table == nullptr) {
    return;
  }
  for (const StoredKeyPtr& stored : *table) {
    const std::string name(stored->name());
    visit(name, stored->compact() ? ExpandCompact(*stored, replicas_) : stored->full());
  }
}

void Keyspace::VisitTable(
    const Table& table,
    const std::function<void(const std::string&, const crdt::Key&)>& visit) const {
  for (const StoredKeyPtr& stored : table) {
    const std::string& name = visited_names_.emplace_back(stored->name());
    if (stored->compact()) {
      visit(name, expanded_.emplace_back(ExpandCompact(*stored, replicas_)));
    } else {
      visit(name, stored->full());
    }
  }
}

size_t Keyspace::DropSlot(int db, uint16_t slot) {
  Reach(db, slot);
  BeginChange();
  Db& d = *dbs_[db];
  Table* held = d.at(slot);
  if (held == nullptr || held->empty()) {
    return 0;
  }
  auto table = std::make_unique<Table>();
  table->swap(*held);
  for (const StoredKeyPtr& stored : *table) {
    if (!stored->compact()) {
      d.hidden.erase(Abs(stored->name()));
      Unindex(db, stored->name());
    }
  }
  const size_t dropped = table->size();
  d.size -= dropped;
  dropped_pending_ += dropped;
  dropped_.push_back(std::move(table));
  return dropped;
}

size_t Keyspace::FreeDropped(size_t max_keys) {
  BeginChange();
  size_t freed = 0;
  while (!dropped_.empty() && freed < max_keys) {
    Table& table = *dropped_.back();
    if (table.size() <= max_keys - freed) {
      freed += table.size();
      dropped_.pop_back();
      continue;
    }
    // A large table: a bounded part now (one pass from begin(), which scans for the first
    // entry), the rest on later calls.
    for (auto it = table.begin(); it != table.end() && freed < max_keys; ++freed) {
      table.erase(it++);
    }
  }
  dropped_pending_ -= std::min(dropped_pending_, freed);
  return freed;
}

void Keyspace::Reincarnate(ReplicaId replica) {
  LATTICE_ASSERT(replica != kNoReplica);
  LATTICE_ASSERT(joiner_ == nullptr);
  BeginChange();
  for (int db = 0; db < all_databases(); ++db) {
    for (uint32_t slot = 0; slot < kSlotCount; ++slot) DropSlot(db, static_cast<uint16_t>(slot));
    dbs_[db] = std::make_unique<Db>();
  }
  context_ = crdt::DotContext();
  dots_ = crdt::DotSource(replica);
  replicas_ = ReplicaIndex(replica);
  std::fill(hidden_slots_.begin(), hidden_slots_.end(), false);
  hidden_slot_count_ = 0;
  compact_db_ = compact_slot_ = 0;
  SystemChanged(system_db());  // the policy table keeps the config's entries only
}

void Keyspace::FlushDb(int db, int64_t now_ms) {
  ReachAll(db);  // every key the install brings is removed too
  std::vector<std::string> keys;
  keys.reserve(dbs_[db]->size);
  ForEach(db, [&](const std::string& key, const crdt::Key&) { keys.push_back(key); });
  for (const std::string& key : keys) {
    (void)Delete(db, key, now_ms);
  }
}

void Keyspace::FlushAll(int64_t now_ms) {
  for (int db = 0; db < databases(); ++db) {
    FlushDb(db, now_ms);
  }
}

void Keyspace::SwapDb(int a, int b) {
  ReachAll(a);  // an install's pending slots are per db number
  ReachAll(b);
  BeginChange();
  std::swap(dbs_[a], dbs_[b]);
}

void Keyspace::SetSlotHidden(uint16_t slot, bool hidden) {
  if (hidden_slots_[slot] != hidden) {
    hidden_slots_[slot] = hidden;
    hidden_slot_count_ = hidden ? hidden_slot_count_ + 1 : hidden_slot_count_ - 1;
  }
}

uint64_t Keyspace::Size(int db) const {
  const Db& d = *dbs_[db];
  uint64_t size = d.size - d.hidden.size();
  if (hidden_slot_count_ == 0) {
    return size;
  }
  // Entries of hidden slots that are not metadata-only (`hidden`) are not counted.
  for (uint32_t slot = 0; slot < kSlotCount; ++slot) {
    if (hidden_slots_[slot] && d.at(slot) != nullptr) size -= d.at(slot)->size();
  }
  for (const std::string& key : d.hidden) {
    if (hidden_slots_[KeySlot(key)]) ++size;
  }
  return size;
}

bool Keyspace::HasEntries(int db) const { return dbs_[db]->size > 0; }

uint64_t Keyspace::VolatileCount(int db) const { return dbs_[db]->expiry_of.size(); }

int64_t Keyspace::SampleAverageTtlMs(int db, int64_t now_ms, size_t samples) const {
  int64_t sum = 0;
  size_t seen = 0;
  for (auto it = dbs_[db]->expiry_of.begin(); it != dbs_[db]->expiry_of.end() && seen < samples;
       ++it, ++seen) {
    sum += std::max<int64_t>(0, it->second - now_ms);
  }
  return seen == 0 ? 0 : sum / static_cast<int64_t>(seen);
}

uint64_t Keyspace::FieldTtlKeyCount(int db) const { return dbs_[db]->field_ttl_keys.size(); }

uint64_t Keyspace::CountKeysInSlot(int db, uint16_t slot) const {
  Reach(db, slot);
  const Table* table = dbs_[db]->at(slot);
  return table == nullptr ? 0 : table->size();
}

std::vector<std::string> Keyspace::KeysInSlot(int db, uint16_t slot, size_t count) const {
  std::vector<std::string> keys;
  Reach(db, slot);
  const Table* table = dbs_[db]->at(slot);
  if (table == nullptr) {
    return keys;
  }
  for (const StoredKeyPtr& stored : *table) {
    if (keys.size() >= count) {
      break;
    }
    keys.emplace_back(stored->name());
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

uint64_t Keyspace::Scan(
    int db, uint64_t cursor, size_t count,
    const std::function<void(const std::string&, const crdt::Key&)>& visit) const {
  const Db& d = *dbs_[db];
  uint64_t slot = cursor >> kCursorHashBits;
  uint64_t threshold = cursor & kCursorHashMask;
  size_t visited = 0;
  std::vector<std::pair<uint64_t, const StoredKey*>> batch;
  for (; slot < kSlotCount; ++slot, threshold = 0) {
    Reach(db, static_cast<uint16_t>(slot));
    const Table* table = d.at(slot);
    if (table == nullptr || hidden_slots_[slot]) {
      continue;
    }
    batch.clear();
    for (const StoredKeyPtr& entry : *table) {
      const uint64_t h = CursorHash(entry->name());
      if (h >= threshold) {
        batch.emplace_back(h, entry.get());
      }
    }
    std::sort(batch.begin(), batch.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (size_t i = 0; i < batch.size(); ++i) {
      // Stop only between two different hash values, so a hash group is never split.
      if (visited >= count && batch[i].first != batch[i - 1].first) {
        return (slot << kCursorHashBits) | batch[i].first;
      }
      const StoredKey& stored = *batch[i].second;
      const std::string& name = visited_names_.emplace_back(stored.name());
      if (stored.compact()) {
        visit(name, expanded_.emplace_back(ExpandCompact(stored, replicas_)));
      } else {
        visit(name, stored.full());
      }
      ++visited;
    }
    if (visited >= count) {
      return slot + 1 < kSlotCount ? (slot + 1) << kCursorHashBits : 0;
    }
  }
  return 0;
}

void Keyspace::ForEach(
    int db, const std::function<void(const std::string&, const crdt::Key&)>& visit) const {
  for (const Table& table : dbs_[db]->slots) {
    if (!table.empty()) {
      VisitTable(table, visit);
    }
  }
}

void Keyspace::ForEachListed(
    int db, const std::function<void(const std::string&, const crdt::Key&)>& visit) const {
  ReachAll(db);  // KEYS answers with every key an install brings
  const Db& d = *dbs_[db];
  for (uint32_t slot = 0; slot < kSlotCount; ++slot) {
    if (d.at(slot) != nullptr && !hidden_slots_[slot]) {
      VisitTable(*d.at(slot), visit);
    }
  }
}

std::string Keyspace::RandomKey(int db, int64_t now_ms, Rng& rng) const {
  const Db& d = *dbs_[db];
  if (Size(db) == 0) {
    return "";
  }
  for (int attempt = 0; attempt < 100; ++attempt) {
    uint64_t slot = rng.Uniform(kSlotCount);
    for (uint64_t step = 0; step < kSlotCount; ++step, slot = (slot + 1) % kSlotCount) {
      const Table* table = d.at(slot);
      if (table == nullptr || table->empty() || hidden_slots_[slot]) {
        continue;
      }
      auto it = table->begin();
      std::advance(it, static_cast<std::ptrdiff_t>(rng.Uniform(table->size())));
      if (RefOf(**it).TypeAt(now_ms) != crdt::ObjectType::kNone) {
        return std::string((*it)->name());
      }
      break;
    }
  }
  return "";  // only expired keys left
}

void Keyspace::SampleKeys(
    int db, bool volatile_only, size_t count, int64_t now_ms, Rng& rng,
    const std::function<void(std::string_view key, KeyRef ref)>& visit) const {
  const Db& d = *dbs_[db];
  if (count == 0 || d.size == 0) return;
  const auto offer = [&](const StoredKey& stored) {
    const KeyRef ref = RefOf(stored);
    if (ref.TypeAt(now_ms) == crdt::ObjectType::kNone) return;
    visit(stored.name(), ref);
    --count;
  };
  if (volatile_only) {
    // A random expiry time between the first and the last, then the keys that follow it.
    if (d.expiry_index.empty()) return;
    const int64_t first = d.expiry_index.begin()->first;
    const int64_t last = d.expiry_index.rbegin()->first;
    const auto span = static_cast<uint64_t>(last - first) + 1;
    auto it = d.expiry_index.lower_bound({first + static_cast<int64_t>(rng.Uniform(span)), ""});
    for (size_t seen = 0; seen < d.expiry_index.size() && count > 0; ++seen, ++it) {
      if (it == d.expiry_index.end()) it = d.expiry_index.begin();
      const Table* table = d.at(KeySlot(it->second));  // no Reach: it may change the index
      if (table == nullptr) continue;
      if (auto found = table->find(it->second); found != table->end()) offer(**found);
    }
    return;
  }
  // A random slot and position; the visit goes on through the following slots, once around
  // (the first slot's entries before the position come last).
  const uint64_t first_slot = rng.Uniform(kSlotCount);
  size_t head = 0;  // entries of the first slot left for the end
  for (uint64_t step = 0; step <= kSlotCount && count > 0; ++step) {
    const uint64_t slot = (first_slot + step) % kSlotCount;
    const Table* table = d.at(slot);
    if (table == nullptr || table->empty() || hidden_slots_[slot]) continue;
    auto it = table->begin();
    size_t limit = table->size();
    if (step == 0) {
      head = static_cast<size_t>(rng.Uniform(table->size()));
      std::advance(it, static_cast<std::ptrdiff_t>(head));
    } else if (step == kSlotCount) {
      limit = head;
    }
    for (size_t i = 0; it != table->end() && i < limit && count > 0; ++it, ++i) offer(**it);
  }
}

size_t Keyspace::ActiveExpireCycle(int64_t now_ms, size_t max_keys) {
  BeginChange();
  size_t visited = 0;
  for (int db = 0; db < databases() && visited < max_keys; ++db) {
    Db& d = *dbs_[db];
    while (visited < max_keys && !d.expiry_index.empty() &&
           d.expiry_index.begin()->first <= now_ms) {
      const std::string key = d.expiry_index.begin()->second;
      ++visited;
      if (Reach(db, KeySlot(key))) {
        continue;  // an install joined the slot, which may have changed the index: look again
      }
      Table* table = TableFor(db, key, /*create=*/false);
      auto it = table->find(key);
      ReclaimIfExpired(db, *table, it, now_ms);
      Reindex(db, key, **it);
      if (d.expiry_of.contains(key) && d.expiry_of[key] <= now_ms) {
        // The expiry did not go away (a concurrent write kept it): drop it from the index so
        // the cycle makes progress; the key stays hidden and will be reclaimed on write.
        d.expiry_index.erase({d.expiry_of[key], key});
        d.expiry_of.erase(key);
      }
      Settle(db, *table, it);
    }
    // Hashes with field TTLs, round-robin from where the last cycle stopped.
    auto next = d.field_ttl_keys.upper_bound(d.field_ttl_cursor);
    while (visited < max_keys && !d.field_ttl_keys.empty()) {
      if (next == d.field_ttl_keys.end()) {
        d.field_ttl_cursor.clear();
        break;
      }
      const std::string key = *next;
      ++visited;
      if (Reach(db, KeySlot(key))) {
        next = d.field_ttl_keys.upper_bound(d.field_ttl_cursor);  // the join may have changed it
        continue;
      }
      d.field_ttl_cursor = key;
      Table* table = TableFor(db, key, /*create=*/false);
      auto it = table == nullptr ? Table::iterator() : table->find(key);
      if (table == nullptr || it == table->end()) {
        next = d.field_ttl_keys.erase(d.field_ttl_keys.find(key));
        continue;
      }
      ReclaimIfExpired(db, *table, it, now_ms);
      bool has_ttl = false;
      for (const auto& [field, cell] : RefOf(**it).hash().fields()) {
        has_ttl = has_ttl || cell.ttl() != nullptr;
      }
      Reindex(db, key, **it);
      Settle(db, *table, it);  // may erase the key, and unindex it from field_ttl_keys
      auto indexed = d.field_ttl_keys.find(key);
      if (indexed == d.field_ttl_keys.end()) {
        next = d.field_ttl_keys.upper_bound(key);
      } else {
        next = has_ttl ? std::next(indexed) : d.field_ttl_keys.erase(indexed);
      }
    }
  }
  return visited;
}

int64_t Keyspace::NextExpiryMs() const {
  int64_t next = std::numeric_limits<int64_t>::max();
  for (const auto& d : dbs_) {
    if (!d->expiry_index.empty()) {
      next = std::min(next, d->expiry_index.begin()->first);
    }
  }
  return next;
}

}  // namespace lattice::server
