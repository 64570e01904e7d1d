#include "store/stored_key.h"

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>

#include "lattice/common/assert.h"
#include "store/compact_collection.h"

namespace lattice::server {

thread_local uint32_t StoredKey::new_access_stamp_ = 0;

std::optional<uint64_t> ReplicaIndex::Pack(crdt::Dot dot) {
  if (dot.seq > kSeqMask || !dot.valid()) {
    return std::nullopt;
  }
  uint64_t index = 0;
  if (dot.replica != ids_[0]) {
    auto it = index_.find(dot.replica);
    if (it == index_.end()) {
      if (ids_.size() > 0xffff) {
        return std::nullopt;
      }
      it = index_.emplace(dot.replica, static_cast<uint16_t>(ids_.size())).first;
      ids_.push_back(dot.replica);
    }
    index = it->second;
  }
  return (index << kSeqBits) | dot.seq;
}

void StoredKey::SetLengths(size_t name, size_t value, bool is_long) {
  const uint32_t full = lens_ & (kFullFlag | kCollectionFlag | kCounterFlag);
  if (!is_long) {
    lens_ = full | static_cast<uint32_t>(name) | (static_cast<uint32_t>(value) << kNameBits);
    return;
  }
  lens_ = full | kLongFlag;
  const uint32_t lengths[2] = {static_cast<uint32_t>(name), static_cast<uint32_t>(value)};
  std::memcpy(raw(), lengths, sizeof(lengths));
}

StoredKey* StoredKey::Allocate(std::string_view name, size_t value_size, bool full) {
  LATTICE_ASSERT(name.size() <= UINT32_MAX && value_size <= UINT32_MAX);
  const bool is_long = !FitsShort(name.size(), value_size);
  const size_t size =
      sizeof(StoredKey) + (is_long ? 2 * sizeof(uint32_t) : 0) + name.size() + value_size;
  void* memory = std::malloc(size);
  if (memory == nullptr) {
    throw std::bad_alloc();
  }
  auto* stored = new (memory) StoredKey();
  stored->lens_ = full ? kFullFlag : 0;
  stored->access_ = new_access_stamp_;
  stored->SetLengths(name.size(), value_size, is_long);
  if (!name.empty()) {
    std::memcpy(stored->bytes(), name.data(), name.size());
  }
  return stored;
}

StoredKey* StoredKey::NewCompact(std::string_view name, std::string_view value, uint64_t hlc,
                                 uint64_t packed_dot) {
  StoredKey* stored = Allocate(name, value.size(), /*full=*/false);
  stored->hlc_ = hlc;
  stored->dot_ = packed_dot;
  if (!value.empty()) {
    std::memcpy(stored->bytes() + name.size(), value.data(), value.size());
  }
  return stored;
}

StoredKey* StoredKey::NewCollection(std::string_view name, std::string_view blob, uint64_t hlc,
                                    uint64_t packed_dot) {
  StoredKey* stored = NewCompact(name, blob, hlc, packed_dot);
  stored->lens_ |= kCollectionFlag;
  return stored;
}

StoredKey* StoredKey::NewCounter(std::string_view name, int64_t total, uint64_t packed_dot) {
  StoredKey* stored = Allocate(name, 0, /*full=*/false);
  stored->lens_ |= kCounterFlag;
  stored->SetCounter(total, packed_dot);
  return stored;
}

StoredKey* StoredKey::NewFull(std::string_view name, crdt::Key key) {
  auto full = std::make_unique<crdt::Key>(std::move(key));
  StoredKey* stored = Allocate(name, 0, /*full=*/true);
  stored->full_ = full.release();
  return stored;
}

void StoredKey::Free(StoredKey* stored) {
  if (stored == nullptr) {
    return;
  }
  if (!stored->compact()) {
    delete stored->full_;
  }
  stored->~StoredKey();
  std::free(stored);
}

bool StoredKey::AssignInPlace(std::string_view value, uint64_t hlc, uint64_t packed_dot) {
  LATTICE_ASSERT(compact() && !counter());
  const uint32_t name = name_len();
  const bool is_long = long_lengths();
  // A long layout holds any length; a short one only short lengths.
  if ((!is_long && !FitsShort(name, value.size())) || value.size() > UINT32_MAX ||
      sizeof(StoredKey) + lengths_size() + name + value.size() > malloc_usable_size(this)) {
    return false;
  }
  hlc_ = hlc;
  dot_ = packed_dot;
  SetLengths(name, value.size(), is_long);
  if (!value.empty()) {
    std::memmove(bytes() + name, value.data(), value.size());
  }
  return true;
}

crdt::Key ExpandCompact(const StoredKey& stored, const ReplicaIndex& replicas) {
  if (stored.collection()) {
    return DecodeCompact(stored.value(), stored.hlc(), stored.packed_dot(), replicas);
  }
  if (stored.counter()) {
    return crdt::Key::OfCounter(
        crdt::IncEntry{replicas.Unpack(stored.packed_dot()), crdt::Dot{}, stored.counter_total()});
  }
  return crdt::Key::OfString(crdt::RegisterEntry<std::string>{
      std::string(stored.value()), stored.hlc(), replicas.Unpack(stored.packed_dot())});
}

const crdt::IncEntry* LoneCounter(const crdt::Key& key) {
  const crdt::StringCell& cell = key.string();
  const crdt::RegisterRest<std::string>* rest = cell.rest();
  if (key.rest() != nullptr || cell.Winner() != nullptr || rest == nullptr ||
      rest->incs.size() != 1 || !rest->more.empty() || !rest->tombs.empty() ||
      !rest->observed.empty()) {
    return nullptr;
  }
  const crdt::IncEntry& inc = rest->incs.front();
  // +0 exactly (a -0.0 float total would not survive the round trip).
  const bool no_float = inc.ftotal == 0 && !std::signbit(inc.ftotal);
  return !inc.epoch.valid() && no_float ? &inc : nullptr;
}

namespace {

const crdt::Key& EmptyKey() {
  static const crdt::Key kEmpty;
  return kEmpty;
}

}  // namespace

const crdt::Key& KeyRef::State() const {
  if (!stored_->compact()) {
    return stored_->full();
  }
  if (!stored_->collection()) {
    return EmptyKey();  // a string has no collection objects
  }
  LATTICE_ASSERT_MSG(scratch_ != nullptr, "a compact collection read without scratch");
  if (scratch_->last != stored_ || scratch_->keys.empty()) {
    scratch_->keys.push_back(ExpandCompact(*stored_, *replicas_));
    scratch_->last = stored_;
  }
  return scratch_->keys.back();
}

crdt::ObjectType KeyRef::Type() const {
  if (stored_->compact()) {
    return stored_->collection() ? CompactType(stored_->value()) : crdt::ObjectType::kString;
  }
  return stored_->full().Type();
}

crdt::ObjectType KeyRef::TypeAt(int64_t now_ms) const {
  return stored_->compact() ? Type() : stored_->full().TypeAt(now_ms);
}

std::optional<int64_t> KeyRef::ExpiryMs() const {
  return stored_->compact() ? std::nullopt : stored_->full().ExpiryMs();
}

std::optional<std::string> KeyRef::GetString(int64_t now_ms) const {
  if (stored_->counter()) {
    return std::to_string(stored_->counter_total());
  }
  if (stored_->compact()) {
    return stored_->collection() ? std::nullopt : std::optional(std::string(stored_->value()));
  }
  return stored_->full().GetString(now_ms);
}

std::optional<size_t> KeyRef::ReadStringRange(size_t begin, size_t end, int64_t now_ms,
                                              std::string& scratch, std::string_view& out) const {
  if (!stored_->compact()) {
    return stored_->full().ReadStringRange(begin, end, now_ms, scratch, out);
  }
  std::string_view value;
  if (stored_->counter()) {
    scratch = std::to_string(stored_->counter_total());
    value = scratch;
  } else if (stored_->collection()) {
    return std::nullopt;
  } else {
    value = stored_->value();
  }
  end = std::min(end, value.size());
  out = value.substr(std::min(begin, end), end - std::min(begin, end));
  return value.size();
}

const crdt::OrHash& KeyRef::hash() const { return State().hash(); }

const crdt::OrSet& KeyRef::set() const { return State().set(); }

const crdt::SortedSet& KeyRef::zset() const { return State().zset(); }

bool KeyRef::FindCompact(std::string_view name, CompactElement& out) const {
  CompactReader reader(stored_->value(), stored_->hlc(), stored_->packed_dot());
  while (reader.Next(out)) {
    if (out.name == name) return true;
  }
  return false;
}

size_t KeyRef::CompactCount() const {
  CompactReader reader(stored_->value(), stored_->hlc(), stored_->packed_dot());
  CompactElement element;
  size_t count = 0;
  while (reader.Next(element)) ++count;
  return count;
}

std::optional<std::string> KeyRef::HashGet(std::string_view field, int64_t now_ms) const {
  if (!stored_->collection()) {
    return hash().Get(std::string(field), now_ms);
  }
  CompactElement element;
  if (CompactType(stored_->value()) != crdt::ObjectType::kHash || !FindCompact(field, element)) {
    return std::nullopt;
  }
  return std::string(element.value);
}

size_t KeyRef::HashLen() const {
  if (stored_->collection()) {
    return CompactType(stored_->value()) == crdt::ObjectType::kHash ? CompactCount() : 0;
  }
  size_t count = 0;
  for (const auto& [name, field] : hash().fields()) {
    count += field.Alive() ? 1 : 0;
  }
  return count;
}

bool KeyRef::SetContains(std::string_view member) const {
  if (!stored_->collection()) {
    return set().Contains(member);
  }
  CompactElement element;
  return CompactType(stored_->value()) == crdt::ObjectType::kSet && FindCompact(member, element);
}

size_t KeyRef::SetSize() const {
  if (stored_->collection()) {
    return CompactType(stored_->value()) == crdt::ObjectType::kSet ? CompactCount() : 0;
  }
  return set().Size();
}

std::optional<double> KeyRef::ZScore(std::string_view member) const {
  if (!stored_->collection()) {
    return zset().Score(std::string(member));
  }
  CompactElement element;
  if (CompactType(stored_->value()) != crdt::ObjectType::kZSet || !FindCompact(member, element)) {
    return std::nullopt;
  }
  return element.score;
}

size_t KeyRef::ZSize() const {
  if (stored_->collection()) {
    return CompactType(stored_->value()) == crdt::ObjectType::kZSet ? CompactCount() : 0;
  }
  return zset().Size();
}

crdt::Key KeyRef::ToKey() const {
  return stored_->compact() ? ExpandCompact(*stored_, *replicas_) : stored_->full();
}

}  // namespace lattice::server
