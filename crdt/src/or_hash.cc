#include "lattice/crdt/or_hash.h"

#include <algorithm>

#include "lattice/crdt/join_stats.h"
#include "lattice/crdt/or_set.h"  // JoinMapEntry

namespace lattice::crdt {

const HashField* OrHash::Find(const std::string& field) const {
  auto it = fields_.find(field);
  return it == fields_.end() ? nullptr : &it->second;
}

bool OrHash::AnyPresent() const {
  for (const auto& [name, field] : fields_) {
    if (field.value.Alive()) {
      return true;
    }
  }
  return false;
}

std::optional<std::string> OrHash::Get(const std::string& field, int64_t now_ms) const {
  const HashField* found = Find(field);
  if (found == nullptr || ExpiredAt(found->ttl.get(), now_ms)) {
    return std::nullopt;
  }
  return RenderString(found->value);
}

std::optional<int64_t> OrHash::FieldExpiry(const std::string& field) const {
  const HashField* found = Find(field);
  if (found == nullptr || found->ttl.get() == nullptr || !found->value.Alive()) {
    return std::nullopt;
  }
  return ExpiryAt(*found->ttl.get());
}

std::vector<std::pair<std::string, std::string>> OrHash::GetAll(int64_t now_ms) const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, field] : fields_) {
    if (ExpiredAt(field.ttl.get(), now_ms)) {
      continue;
    }
    if (auto value = RenderString(field.value)) {  // as Get, without a lookup per field
      out.emplace_back(name, std::move(*value));
    }
  }
  return out;
}

bool OrHash::AnyPresentAt(int64_t now_ms) const {
  for (const auto& [name, field] : fields_) {
    if (!ExpiredAt(field.ttl.get(), now_ms) && field.value.Alive()) {
      return true;  // usually the first field
    }
  }
  return false;
}

std::vector<std::string> OrHash::ExpiredFields(int64_t now_ms) const {
  std::vector<std::string> out;
  for (const auto& [name, field] : fields_) {
    if (field.value.Alive() && ExpiredAt(field.ttl.get(), now_ms)) {
      out.push_back(name);
    }
  }
  return out;
}

OrHash OrHash::SetDelta(const std::string& field, std::string value, bool keep_ttl,
                        WriteStamp& stamp, DotContext& context) const {
  static const HashField kEmpty{};
  const HashField* found = Find(field);
  const HashField& current = found != nullptr ? *found : kEmpty;
  OrHash delta;
  HashField& out = delta.fields_[field];
  out.value = current.value.AssignDelta(std::move(value), stamp, context);
  if (!keep_ttl && current.ttl.get() != nullptr) {
    current.ttl.get()->CollectDots(context);  // clears the TTL it observed
  }
  return delta;
}

Result<OrHash> OrHash::IncrementDelta(const std::string& field, int64_t by, long double float_by,
                                      bool is_float, StringRule rule, WriteStamp& stamp,
                                      DotContext& context) const {
  static const HashField kEmpty{};
  const HashField* found = Find(field);
  auto cell = crdt::IncrementDelta(found != nullptr ? found->value : kEmpty.value, by, float_by,
                                   is_float, rule, stamp, context);
  if (!cell.ok()) {
    return Unexpected(cell.error());
  }
  OrHash delta;
  delta.fields_[field].value = std::move(*cell);
  return delta;
}

OrHash OrHash::RemoveDelta(const std::string& field, WriteStamp& stamp, DotContext& context) const {
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
    delta.fields_[field].value = std::move(cell);
  }
  return delta;
}

OrHash OrHash::ExpireDelta(const std::string& field, int64_t at_ms, ExpiryRule rule,
                           WriteStamp& stamp, DotContext& context) const {
  static const ExpiryCell kEmpty{};
  const HashField* found = Find(field);
  const ExpiryCell* ttl = found != nullptr ? found->ttl.get() : nullptr;
  OrHash delta;
  delta.fields_[field].ttl.Mutable() =
      (ttl != nullptr ? *ttl : kEmpty).AssignDelta(ExpiryValue{at_ms, rule}, stamp, context);
  return delta;
}

void OrHash::CollectDots(DotContext& out) const {
  for (const auto& [name, field] : fields_) {
    field.value.CollectDots(out);
    if (field.ttl.get() != nullptr) {
      field.ttl.get()->CollectDots(out);
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
  static const HashField kEmpty{};
  ThreadJoinStats().elements += fields_.size() + other.fields_.size();
  for (auto it = fields_.begin(); it != fields_.end();) {
    const HashField* found = other.Find(it->first);
    JoinField(it->second, found != nullptr ? *found : kEmpty, mine, theirs);
    it = it->second.empty() ? fields_.erase(it) : std::next(it);
  }
  for (const auto& [name, field] : other.fields_) {
    if (!fields_.contains(name)) {
      HashField joined;
      JoinField(joined, field, mine, theirs);
      if (!joined.empty()) {
        fields_.emplace(name, std::move(joined));
      }
    }
  }
}

void OrHash::JoinSome(const OrHash& other, const DotContext& mine, const DotContext& theirs,
                      const std::vector<std::string>& names) {
  ThreadJoinStats().elements += names.size();
  auto join = [&](HashField& field, const HashField& theirs_field) {
    JoinField(field, theirs_field, mine, theirs);
  };
  for (const std::string& name : names) {
    JoinMapEntry(fields_, other.fields_, name, join);
  }
}

void OrHash::AppendNames(std::vector<std::string>& out) const {
  for (const auto& [name, field] : fields_) {
    out.push_back(name);
  }
}

void OrHash::ForEachDotOf(const std::string& field, absl::FunctionRef<void(Dot)> f) const {
  if (const HashField* found = Find(field)) {
    found->value.ForEachDot(f);
    if (found->ttl.get() != nullptr) {
      found->ttl.get()->ForEachDot(f);
    }
  }
}

void OrHash::ScanDots(absl::FunctionRef<bool(const std::string&, Dot)> f) const {
  ScannedCount scanned;
  for (const auto& entry : fields_) {  // not a structured binding: clang 14 cannot capture one
    const std::string& name = entry.first;
    const auto& field = entry.second;
    ++scanned.count;
    bool stop = false;
    auto visit = [&](Dot dot) { stop = stop || f(name, dot); };
    field.value.ForEachDot(visit);
    if (field.ttl.get() != nullptr) {
      field.ttl.get()->ForEachDot(visit);
    }
    if (stop) {
      return;
    }
  }
}

void OrHash::Compact(const VersionVector& stable) {
  for (auto it = fields_.begin(); it != fields_.end();) {
    it->second.value.Compact(stable);
    if (ExpiryCell* ttl = it->second.ttl.get()) {
      ttl->Compact(stable);
      // A TTL left without a value (HEXPIRE concurrent with HDEL) is inert once stable.
      DotContext dots;
      ttl->CollectDots(dots);
      const bool stable_ttl = dots.vector().LessOrEqual(stable) &&
                              std::all_of(dots.cloud().begin(), dots.cloud().end(),
                                          [&](Dot dot) { return stable.Contains(dot); });
      if (it->second.value.empty() && stable_ttl) {
        it->second.ttl.Reset();
      }
      it->second.ttl.Normalize();
    }
    it = it->second.empty() ? fields_.erase(it) : std::next(it);
  }
}

void OrHash::Put(const std::string& field, StringCell value) {
  HashField& slot = fields_[field];
  slot.value = std::move(value);
  slot.ttl.Reset();
}

size_t OrHash::MetadataItems() const {
  size_t items = 0;
  for (const auto& [name, field] : fields_) {
    items += field.value.MetadataItems();
    if (field.ttl.get() != nullptr) {
      items += field.ttl.get()->MetadataItems();
    }
  }
  return items;
}

}  // namespace lattice::crdt
