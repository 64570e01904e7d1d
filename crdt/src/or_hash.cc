#include "lattice/crdt/or_hash.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "lattice/common/assert.h"
#include "lattice/crdt/join_stats.h"

namespace lattice::crdt {

FieldNode* FieldNode::Allocate(std::string_view name, uint32_t value_size) {
  LATTICE_ASSERT(name.size() <= UINT32_MAX);
  const bool packed = value_size != kFull;
  const size_t bytes = sizeof(FieldNode) + (packed ? sizeof(Packed) : sizeof(HashField)) +
                       name.size() + (packed ? value_size : 0);
  auto* node =
      new (::operator new(bytes)) FieldNode(static_cast<uint32_t>(name.size()), value_size);
  if (!name.empty()) {
    std::memcpy(node->Bytes() + node->Header(), name.data(), name.size());
  }
  return node;
}

FieldNode* FieldNode::NewFull(std::string_view name, HashField field) {
  FieldNode* node = Allocate(name, kFull);
  new (node->FullCells()) HashField(std::move(field));
  return node;
}

FieldNode* FieldNode::NewPacked(std::string_view name, std::string_view value, uint64_t hlc,
                                Dot dot) {
  LATTICE_ASSERT(value.size() < kFull);
  FieldNode* node = Allocate(name, static_cast<uint32_t>(value.size()));
  new (node->PackedCells()) Packed{hlc, dot};
  if (!value.empty()) {
    std::memcpy(node->packed_value_bytes(), value.data(), value.size());
  }
  return node;
}

const RegisterEntry<std::string>* FieldNode::PlainOf(const HashField& field) {
  const RegisterEntry<std::string>* entry = field.value.Winner();
  const bool plain = entry != nullptr && field.value.rest() == nullptr &&
                     (field.ttl.get() == nullptr || field.ttl.get()->empty()) &&
                     entry->value.size() < kFull;
  return plain ? entry : nullptr;
}

FieldNode* FieldNode::New(std::string_view name, HashField field) {
  if (const RegisterEntry<std::string>* entry = PlainOf(field)) {
    return NewPacked(name, entry->value, entry->hlc, entry->dot);
  }
  return NewFull(name, std::move(field));
}

FieldNode* FieldNode::Copy(const FieldNode& other) {
  if (other.packed()) {
    return NewPacked(other.name(), other.packed_value(), other.PackedCells()->hlc,
                     other.PackedCells()->dot);
  }
  return New(other.name(), *other.FullCells());
}

void FieldNode::Delete(FieldNode* node) {
  if (!node->packed()) {
    node->FullCells()->~HashField();
  }
  ::operator delete(static_cast<void*>(node));  // unsized: clang 14 has no sized delete by default
}

HashField FieldNode::cells() const {
  if (!packed()) {
    return *FullCells();
  }
  return HashField{
      StringCell::OfEntry({std::string(packed_value()), PackedCells()->hlc, PackedCells()->dot}),
      {}};
}

const ExpiryCell* FieldNode::ttl() const { return packed() ? nullptr : FullCells()->ttl.get(); }

bool FieldNode::Alive() const { return packed() || FullCells()->value.Alive(); }

std::optional<EntryView> FieldNode::Winner() const {
  if (packed()) {
    return EntryView{packed_value(), PackedCells()->hlc, PackedCells()->dot};
  }
  if (const RegisterEntry<std::string>* entry = FullCells()->value.Winner()) {
    return EntryView{entry->value, entry->hlc, entry->dot};
  }
  return std::nullopt;
}

std::optional<EntryView> FieldNode::Plain() const {
  if (packed()) {
    return Winner();
  }
  if (const RegisterEntry<std::string>* entry = PlainOf(*FullCells())) {
    return EntryView{entry->value, entry->hlc, entry->dot};
  }
  return std::nullopt;
}

void FieldNode::ForEachDot(absl::FunctionRef<void(Dot)> f) const {
  if (packed()) {
    f(PackedCells()->dot);
    return;
  }
  FullCells()->value.ForEachDot(f);
  if (const ExpiryCell* expiry = FullCells()->ttl.get()) {
    expiry->ForEachDot(f);
  }
}

size_t FieldNode::MetadataItems() const {
  if (packed()) {
    return 1;
  }
  const ExpiryCell* expiry = FullCells()->ttl.get();
  return FullCells()->value.MetadataItems() + (expiry != nullptr ? expiry->MetadataItems() : 0);
}

namespace {

const HashField kEmptyField{};

// Two nodes hold equal cells, whatever their forms.
bool SameCells(const FieldNode& a, const FieldNode& b) {
  if (a.packed() && b.packed()) {
    const EntryView x = *a.Winner();
    const EntryView y = *b.Winner();
    return x.value == y.value && x.hlc == y.hlc && x.dot == y.dot;
  }
  if (!a.packed() && !b.packed()) {
    return *a.full() == *b.full();
  }
  return a.cells() == b.cells();
}

// The cells of `node` (kEmptyField when absent), rebuilt into `scratch` when it is packed.
const HashField& CellsOf(const FieldNode* node, HashField& scratch) {
  if (node == nullptr) {
    return kEmptyField;
  }
  if (const HashField* full = node->full()) {
    return *full;
  }
  scratch = node->cells();
  return scratch;
}

}  // namespace

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

void OrHash::Swap(Table::iterator it, FieldNode* node) {
  FieldNode* old = *it;
  // The slot keeps a node of the same name, so its hash and place stay right.
  const_cast<FieldNode*&>(*it) = node;
  FieldNode::Delete(old);
}

void OrHash::Settle(Table::iterator it, HashField field) {
  if (field.empty()) {
    Erase(it);
    return;
  }
  Swap(it, FieldNode::New((*it)->name(), std::move(field)));
}

const FieldNode* OrHash::Find(std::string_view field) const {
  auto it = fields_.find(field);
  return it == fields_.end() ? nullptr : *it;
}

HashField* OrHash::FindMutable(std::string_view field) {
  auto it = fields_.find(field);
  if (it == fields_.end()) {
    return nullptr;
  }
  if ((*it)->packed()) {
    Swap(it, FieldNode::NewFull((*it)->name(), (*it)->cells()));
  }
  return (*it)->FullCells();
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
    const FieldNode* theirs = other.Find(node->name());
    if (theirs == nullptr || !SameCells(*node, *theirs)) {
      return false;
    }
  }
  return true;
}

bool OrHash::AnyPresent() const {
  for (const FieldNode* node : fields_) {
    if (node->Alive()) {
      return true;
    }
  }
  return false;
}

std::optional<std::string> OrHash::Get(std::string_view field, int64_t now_ms) const {
  const FieldNode* found = Find(field);
  if (found == nullptr || ExpiredAt(found->ttl(), now_ms)) {
    return std::nullopt;
  }
  if (found->packed()) {
    return std::string(found->packed_value());
  }
  return RenderString(found->FullCells()->value);
}

bool OrHash::Visible(std::string_view field, int64_t now_ms) const {
  const FieldNode* found = Find(field);
  return found != nullptr && !ExpiredAt(found->ttl(), now_ms) && found->Alive();
}

std::optional<int64_t> OrHash::FieldExpiry(std::string_view field) const {
  const FieldNode* found = Find(field);
  if (found == nullptr || found->ttl() == nullptr || !found->Alive()) {
    return std::nullopt;
  }
  return ExpiryAt(*found->ttl());
}

std::vector<std::pair<std::string, std::string>> OrHash::GetAll(int64_t now_ms) const {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(fields_.size());
  for (const FieldNode* node : SortedFields()) {
    if (ExpiredAt(node->ttl(), now_ms)) {
      continue;
    }
    if (node->packed()) {
      out.emplace_back(node->name(), node->packed_value());
    } else if (auto value = RenderString(node->FullCells()->value)) {  // as Get, one lookup less
      out.emplace_back(node->name(), std::move(*value));
    }
  }
  return out;
}

bool OrHash::AnyPresentAt(int64_t now_ms) const {
  for (const FieldNode* node : fields_) {
    if (!ExpiredAt(node->ttl(), now_ms) && node->Alive()) {
      return true;  // usually the first field
    }
  }
  return false;
}

std::vector<std::string> OrHash::ExpiredFields(int64_t now_ms) const {
  std::vector<std::string> out;
  for (const FieldNode* node : fields_) {
    if (node->Alive() && ExpiredAt(node->ttl(), now_ms)) {
      out.emplace_back(node->name());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

OrHash OrHash::SetDelta(std::string_view field, std::string value, bool keep_ttl, WriteStamp& stamp,
                        DotContext& context) const {
  HashField scratch;
  const HashField& current = CellsOf(Find(field), scratch);
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
  HashField scratch;
  auto cell = crdt::IncrementDelta(CellsOf(Find(field), scratch).value, by, float_by, is_float,
                                   rule, stamp, context);
  if (!cell.ok()) {
    return Unexpected(cell.error());
  }
  OrHash delta;
  delta.fields_.insert(FieldNode::New(field, HashField{std::move(*cell), {}}));
  return delta;
}

OrHash OrHash::RemoveDelta(std::string_view field, WriteStamp& stamp, DotContext& context) const {
  OrHash delta;
  const FieldNode* node = Find(field);
  if (node == nullptr) {
    return delta;
  }
  HashField scratch;
  const HashField& found = CellsOf(node, scratch);
  StringCell cell = found.value.RemoveDelta(stamp, context);
  if (found.ttl.get() != nullptr) {
    found.ttl.get()->CollectDots(context);
  }
  if (!cell.empty()) {
    delta.fields_.insert(FieldNode::New(field, HashField{std::move(cell), {}}));
  }
  return delta;
}

OrHash OrHash::ExpireDelta(std::string_view field, int64_t at_ms, ExpiryRule rule,
                           WriteStamp& stamp, DotContext& context) const {
  static const ExpiryCell kEmpty{};
  const FieldNode* found = Find(field);
  const ExpiryCell* ttl = found != nullptr ? found->ttl() : nullptr;
  HashField out;
  out.ttl.Mutable() =
      (ttl != nullptr ? *ttl : kEmpty).AssignDelta(ExpiryValue{at_ms, rule}, stamp, context);
  OrHash delta;
  delta.fields_.insert(FieldNode::New(field, std::move(out)));
  return delta;
}

void OrHash::CollectDots(DotContext& out) const {
  for (const FieldNode* node : fields_) {
    node->ForEachDot([&](Dot dot) { out.Add(dot); });
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

void OrHash::JoinNode(Table::iterator it, const FieldNode* theirs, const DotContext& mine,
                      const DotContext& their_context) {
  FieldNode* node = *it;
  if (node->packed() && (theirs == nullptr || (theirs->packed() && SameCells(*node, *theirs)))) {
    // One entry against none (or the same one): it stays unless the other side saw its dot.
    if (theirs == nullptr && their_context.Contains(node->PackedCells()->dot)) {
      Erase(it);
    }
    return;
  }
  HashField scratch;
  const HashField& other = CellsOf(theirs, scratch);
  if (node->packed()) {
    HashField joined = node->cells();
    JoinField(joined, other, mine, their_context);
    Settle(it, std::move(joined));
    return;
  }
  JoinField(*node->FullCells(), other, mine, their_context);
  if (node->FullCells()->empty()) {
    Erase(it);
  } else if (FieldNode::PlainOf(*node->FullCells()) != nullptr) {
    Swap(it, FieldNode::New(node->name(), std::move(*node->FullCells())));  // packs it again
  }
}

void OrHash::InsertJoined(std::string_view name, const FieldNode& theirs, const DotContext& mine,
                          const DotContext& their_context) {
  HashField joined;
  HashField scratch;
  JoinField(joined, CellsOf(&theirs, scratch), mine, their_context);
  if (!joined.empty()) {
    fields_.insert(FieldNode::New(name, std::move(joined)));
  }
}

void OrHash::Join(const OrHash& other, const DotContext& mine, const DotContext& theirs) {
  ThreadJoinStats().elements += fields_.size() + other.fields_.size();
  for (auto it = fields_.begin(); it != fields_.end();) {
    auto here = it++;  // erasing keeps the other iterators valid
    JoinNode(here, other.Find((*here)->name()), mine, theirs);
  }
  for (const FieldNode* node : other.fields_) {
    if (!fields_.contains(node->name())) {
      InsertJoined(node->name(), *node, mine, theirs);
    }
  }
}

void OrHash::JoinSome(const OrHash& other, const DotContext& mine, const DotContext& theirs,
                      const std::vector<std::string>& names) {
  ThreadJoinStats().elements += names.size();
  for (const std::string& name : names) {
    const FieldNode* found = other.Find(name);
    if (auto it = fields_.find(std::string_view(name)); it != fields_.end()) {
      JoinNode(it, found, mine, theirs);
    } else if (found != nullptr) {
      InsertJoined(name, *found, mine, theirs);
    }
  }
}

void OrHash::AppendNames(std::vector<std::string>& out) const {
  for (const FieldNode* node : fields_) {
    out.emplace_back(node->name());
  }
}

void OrHash::ForEachDotOf(std::string_view field, absl::FunctionRef<void(Dot)> f) const {
  if (const FieldNode* found = Find(field)) {
    found->ForEachDot(f);
  }
}

void OrHash::ScanDots(absl::FunctionRef<bool(const std::string&, Dot)> f) const {
  ScannedCount scanned;
  for (const FieldNode* node : fields_) {
    ++scanned.count;
    const std::string name(node->name());
    bool stop = false;
    node->ForEachDot([&](Dot dot) { stop = stop || f(name, dot); });
    if (stop) {
      return;
    }
  }
}

void OrHash::Compact(const VersionVector& stable) {
  for (auto it = fields_.begin(); it != fields_.end();) {
    auto here = it++;
    FieldNode* node = *here;
    if (node->packed()) {
      continue;  // one live entry: nothing compaction could drop
    }
    HashField& field = *node->FullCells();
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
      Erase(here);
    } else if (FieldNode::PlainOf(field) != nullptr) {
      Swap(here, FieldNode::New(node->name(), std::move(field)));  // packs it again
    }
  }
}

void OrHash::Put(std::string_view field, StringCell value) {
  HashField cells{std::move(value), {}};
  if (auto it = fields_.find(field); it != fields_.end()) {
    Settle(it, std::move(cells));
    return;
  }
  fields_.insert(FieldNode::New(field, std::move(cells)));
}

void OrHash::PutPlain(std::string_view field, std::string_view value, uint64_t hlc, Dot dot) {
  PutPlainAt(fields_.find(field), field, value, hlc, dot);
}

void OrHash::PutPlainAt(Table::iterator it, std::string_view field, std::string_view value,
                        uint64_t hlc, Dot dot) {
  if (it == fields_.end()) {
    fields_.insert(FieldNode::NewPacked(field, value, hlc, dot));
  } else if (FieldNode* node = *it; node->packed() && node->value_size_ == value.size()) {
    *node->PackedCells() = FieldNode::Packed{hlc, dot};  // the same size: in place
    if (!value.empty()) {
      std::memmove(node->packed_value_bytes(), value.data(), value.size());
    }
  } else {
    Swap(it, FieldNode::NewPacked(field, value, hlc, dot));
  }
}

Dot OrHash::AssignPlain(std::string_view field, std::string_view value, uint64_t hlc,
                        absl::FunctionRef<void(Dot)> observe, absl::FunctionRef<Dot()> next) {
  auto it = fields_.find(field);
  if (it != fields_.end()) {
    (*it)->ForEachDot(observe);
  }
  const Dot dot = next();
  PutPlainAt(it, field, value, hlc, dot);
  return dot;
}

size_t OrHash::MetadataItems() const {
  size_t items = 0;
  for (const FieldNode* node : fields_) {
    items += node->MetadataItems();
  }
  return items;
}

}  // namespace lattice::crdt
