#include "lattice/crdt/or_hash.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "lattice/common/assert.h"
#include "lattice/crdt/join_stats.h"

namespace lattice::crdt {

size_t FieldNode::Bytes(size_t name_size) { return sizeof(FieldNode) + name_size; }

FieldNode* FieldNode::New(std::string_view name, HashField field) {
  LATTICE_ASSERT(name.size() <= UINT32_MAX);
  void* memory = ::operator new(Bytes(name.size()));
  auto* node = new (memory) FieldNode(std::move(field), static_cast<uint32_t>(name.size()));
  if (!name.empty()) {
    std::memcpy(node->NameBytes(), name.data(), name.size());
  }
  return node;
}

FieldNode* FieldNode::Copy(const FieldNode& other) { return New(other.name(), other.field); }

void FieldNode::Delete(FieldNode* node) {
  node->~FieldNode();
  ::operator delete(static_cast<void*>(node));  // unsized: clang 14 has no sized delete by default
}

size_t OrHash::NodeHash::operator()(std::string_view name) const {
  return absl::Hash<std::string_view>{}(name);
}

OrHash::OrHash(const OrHash& other) {
  fields_.reserve(other.fields_.size());
  for (const FieldNode* node : other.fields_) {
    fields_.insert(FieldNode::Copy(*node));
  }
}

OrHash& OrHash::operator=(const OrHash& other) {
  if (this != &other) {
    OrHash copy(other);
    *this = std::move(copy);
  }
  return *this;
}

OrHash& OrHash::operator=(OrHash&& other) noexcept {
  if (this != &other) {
    Clear();
    fields_ = std::move(other.fields_);
    other.fields_.clear();
  }
  return *this;
}

OrHash::~OrHash() { Clear(); }

void OrHash::Clear() {
  for (FieldNode* node : fields_) {
    FieldNode::Delete(node);
  }
  fields_.clear();
}

void OrHash::Erase(Table::iterator it) {
  FieldNode* node = *it;
  fields_.erase(it);
  FieldNode::Delete(node);
}

const HashField* OrHash::Find(std::string_view field) const {
  auto it = fields_.find(field);
  return it == fields_.end() ? nullptr : &(*it)->field;
}

HashField* OrHash::FindMutable(std::string_view field) {
  auto it = fields_.find(field);
  return it == fields_.end() ? nullptr : &(*it)->field;
}

std::vector<const FieldNode*> OrHash::SortedFields() const {
  std::vector<const FieldNode*> out(fields_.begin(), fields_.end());
  std::sort(out.begin(), out.end(),
            [](const FieldNode* a, const FieldNode* b) { return a->name() < b->name(); });
  return out;
}

bool OrHash::operator==(const OrHash& other) const {
  if (fields_.size() != other.fields_.size()) {
    return false;
  }
  for (const FieldNode* node : fields_) {
    const HashField* theirs = other.Find(node->name());
    if (theirs == nullptr || !(*theirs == node->field)) {
      return false;
    }
  }
  return true;
}

bool OrHash::AnyPresent() const {
  for (const FieldNode* node : fields_) {
    if (node->field.value.Alive()) {
      return true;
    }
  }
  return false;
}

std::optional<std::string> OrHash::Get(std::string_view field, int64_t now_ms) const {
  const HashField* found = Find(field);
  if (found == nullptr || ExpiredAt(found->ttl.get(), now_ms)) {
    return std::nullopt;
  }
  return RenderString(found->value);
}

bool OrHash::Visible(std::string_view field, int64_t now_ms) const {
  const HashField* found = Find(field);
  return found != nullptr && !ExpiredAt(found->ttl.get(), now_ms) && found->value.Alive();
}

std::optional<int64_t> OrHash::FieldExpiry(std::string_view field) const {
  const HashField* found = Find(field);
  if (found == nullptr || found->ttl.get() == nullptr || !found->value.Alive()) {
    return std::nullopt;
  }
  return ExpiryAt(*found->ttl.get());
}

std::vector<std::pair<std::string, std::string>> OrHash::GetAll(int64_t now_ms) const {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(fields_.size());
  for (const FieldNode* node : SortedFields()) {
    if (ExpiredAt(node->field.ttl.get(), now_ms)) {
      continue;
    }
    if (auto value = RenderString(node->field.value)) {  // as Get, without a lookup per field
      out.emplace_back(node->name(), std::move(*value));
    }
  }
  return out;
}

bool OrHash::AnyPresentAt(int64_t now_ms) const {
  for (const FieldNode* node : fields_) {
    if (!ExpiredAt(node->field.ttl.get(), now_ms) && node->field.value.Alive()) {
      return true;  // usually the first field
    }
  }
  return false;
}

std::vector<std::string> OrHash::ExpiredFields(int64_t now_ms) const {
  std::vector<std::string> out;
  for (const FieldNode* node : fields_) {
    if (node->field.value.Alive() && ExpiredAt(node->field.ttl.get(), now_ms)) {
      out.emplace_back(node->name());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

const HashField kEmptyField{};

}  // namespace

OrHash OrHash::SetDelta(std::string_view field, std::string value, bool keep_ttl, WriteStamp& stamp,
                        DotContext& context) const {
  const HashField* found = Find(field);
  const HashField& current = found != nullptr ? *found : kEmptyField;
  HashField out;
  out.value = current.value.AssignDelta(std::move(value), stamp, context);
  if (!keep_ttl && current.ttl.get() != nullptr) {
    current.ttl.get()->CollectDots(context);  // clears the TTL it observed
  }
  OrHash delta;
  delta.fields_.insert(FieldNode::New(field, std::move(out)));
  return delta;
}

Result<OrHash> OrHash::IncrementDelta(std::string_view field, int64_t by, long double float_by,
                                      bool is_float, StringRule rule, WriteStamp& stamp,
                                      DotContext& context) const {
  const HashField* found = Find(field);
  auto cell = crdt::IncrementDelta(found != nullptr ? found->value : kEmptyField.value, by,
                                   float_by, is_float, rule, stamp, context);
  if (!cell.ok()) {
    return Unexpected(cell.error());
  }
  OrHash delta;
  delta.fields_.insert(FieldNode::New(field, HashField{std::move(*cell), {}}));
  return delta;
}

OrHash OrHash::RemoveDelta(std::string_view field, WriteStamp& stamp, DotContext& context) const {
  OrHash delta;
  const HashField* found = Find(field);
  if (found == nullptr) {
    return delta;
  }
  StringCell cell = found->value.RemoveDelta(stamp, context);
  if (found->ttl.get() != nullptr) {
    found->ttl.get()->CollectDots(context);
  }
  if (!cell.empty()) {
    delta.fields_.insert(FieldNode::New(field, HashField{std::move(cell), {}}));
  }
  return delta;
}

OrHash OrHash::ExpireDelta(std::string_view field, int64_t at_ms, ExpiryRule rule,
                           WriteStamp& stamp, DotContext& context) const {
  static const ExpiryCell kEmpty{};
  const HashField* found = Find(field);
  const ExpiryCell* ttl = found != nullptr ? found->ttl.get() : nullptr;
  HashField out;
  out.ttl.Mutable() =
      (ttl != nullptr ? *ttl : kEmpty).AssignDelta(ExpiryValue{at_ms, rule}, stamp, context);
  OrHash delta;
  delta.fields_.insert(FieldNode::New(field, std::move(out)));
  return delta;
}

void OrHash::CollectDots(DotContext& out) const {
  for (const FieldNode* node : fields_) {
    node->field.value.CollectDots(out);
    if (node->field.ttl.get() != nullptr) {
      node->field.ttl.get()->CollectDots(out);
    }
  }
}

namespace {

void JoinField(HashField& mine, const HashField& theirs, const DotContext& my_context,
               const DotContext& their_context) {
  mine.value.Join(theirs.value, my_context, their_context);
  if (mine.ttl.get() != nullptr || theirs.ttl.get() != nullptr) {
    static const ExpiryCell kEmpty{};
    mine.ttl.Mutable().Join(theirs.ttl.get() != nullptr ? *theirs.ttl.get() : kEmpty, my_context,
                            their_context);
    mine.ttl.Normalize();
  }
}

}  // namespace

void OrHash::Join(const OrHash& other, const DotContext& mine, const DotContext& theirs) {
  ThreadJoinStats().elements += fields_.size() + other.fields_.size();
  for (auto it = fields_.begin(); it != fields_.end();) {
    FieldNode* node = *it;
    const HashField* found = other.Find(node->name());
    JoinField(node->field, found != nullptr ? *found : kEmptyField, mine, theirs);
    if (node->field.empty()) {
      fields_.erase(it++);  // erasing keeps the other iterators valid
      FieldNode::Delete(node);
    } else {
      ++it;
    }
  }
  for (const FieldNode* node : other.fields_) {
    if (!fields_.contains(node->name())) {
      HashField joined;
      JoinField(joined, node->field, mine, theirs);
      if (!joined.empty()) {
        fields_.insert(FieldNode::New(node->name(), std::move(joined)));
      }
    }
  }
}

void OrHash::JoinSome(const OrHash& other, const DotContext& mine, const DotContext& theirs,
                      const std::vector<std::string>& names) {
  ThreadJoinStats().elements += names.size();
  for (const std::string& name : names) {
    const HashField* found = other.Find(name);
    if (auto it = fields_.find(std::string_view(name)); it != fields_.end()) {
      JoinField((*it)->field, found != nullptr ? *found : kEmptyField, mine, theirs);
      if ((*it)->field.empty()) {
        Erase(it);
      }
    } else if (found != nullptr) {
      HashField joined;
      JoinField(joined, *found, mine, theirs);
      if (!joined.empty()) {
        fields_.insert(FieldNode::New(name, std::move(joined)));
      }
    }
  }
}

void OrHash::AppendNames(std::vector<std::string>& out) const {
  for (const FieldNode* node : fields_) {
    out.emplace_back(node->name());
  }
}

void OrHash::ForEachDotOf(std::string_view field, absl::FunctionRef<void(Dot)> f) const {
  if (const HashField* found = Find(field)) {
    found->value.ForEachDot(f);
    if (found->ttl.get() != nullptr) {
      found->ttl.get()->ForEachDot(f);
    }
  }
}

void OrHash::ScanDots(absl::FunctionRef<bool(const std::string&, Dot)> f) const {
  ScannedCount scanned;
  for (const FieldNode* node : fields_) {
    ++scanned.count;
    const std::string name(node->name());
    bool stop = false;
    auto visit = [&](Dot dot) { stop = stop || f(name, dot); };
    node->field.value.ForEachDot(visit);
    if (node->field.ttl.get() != nullptr) {
      node->field.ttl.get()->ForEachDot(visit);
    }
    if (stop) {
      return;
    }
  }
}

void OrHash::Compact(const VersionVector& stable) {
  for (auto it = fields_.begin(); it != fields_.end();) {
    FieldNode* node = *it;
    HashField& field = node->field;
    field.value.Compact(stable);
    if (ExpiryCell* ttl = field.ttl.get()) {
      ttl->Compact(stable);
      // A TTL left without a value (HEXPIRE concurrent with HDEL) is inert once stable.
      DotContext dots;
      ttl->CollectDots(dots);
      const bool stable_ttl = dots.vector().LessOrEqual(stable) &&
                              std::all_of(dots.cloud().begin(), dots.cloud().end(),
                                          [&](Dot dot) { return stable.Contains(dot); });
      if (field.value.empty() && stable_ttl) {
        field.ttl.Reset();
      }
      field.ttl.Normalize();
    }
    if (field.empty()) {
      fields_.erase(it++);
      FieldNode::Delete(node);
    } else {
      ++it;
    }
  }
}

void OrHash::Put(std::string_view field, StringCell value) {
  if (HashField* slot = FindMutable(field)) {
    slot->value = std::move(value);
    slot->ttl.Reset();
    return;
  }
  fields_.insert(FieldNode::New(field, HashField{std::move(value), {}}));
}

size_t OrHash::MetadataItems() const {
  size_t items = 0;
  for (const FieldNode* node : fields_) {
    items += node->field.value.MetadataItems();
    if (node->field.ttl.get() != nullptr) {
      items += node->field.ttl.get()->MetadataItems();
    }
  }
  return items;
}

}  // namespace lattice::crdt
