#include "store/compact_collection.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace lattice::server {
namespace {

constexpr uint8_t kNextDot = 1;
constexpr uint8_t kSameHlc = 2;

uint64_t ZigZag(uint64_t delta) {
  const auto s = static_cast<int64_t>(delta);
  return (static_cast<uint64_t>(s) << 1) ^ static_cast<uint64_t>(s >> 63);
}

uint64_t UnZigZag(uint64_t z) { return (z >> 1) ^ (~(z & 1) + 1); }

size_t ElementCount(const crdt::KeyRest& rest) {
  if (rest.has_hash()) return rest.hash().fields().size();
  if (rest.has_set()) return rest.set().adds().size();
  return rest.zset().MemberCount();
}

template <typename V>
const crdt::RegisterEntry<V>* PlainEntry(const crdt::Register<V>& cell) {
  return cell.rest() == nullptr ? cell.Winner() : nullptr;
}

}  // namespace

uint64_t CompactReader::Varint() {
  if (pos_ < blob_.size() && static_cast<uint8_t>(blob_[pos_]) < 0x80) {
    return static_cast<uint8_t>(blob_[pos_++]);  // the common case: one byte
  }
  uint64_t value = 0;
  for (int shift = 0; pos_ < blob_.size(); shift += 7) {
    const auto byte = static_cast<uint8_t>(blob_[pos_++]);
    value |= uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80u) == 0) break;
  }
  return value;
}

bool CompactReader::Next(CompactElement& out, size_t* start) {
  if (pos_ >= blob_.size()) {
    return false;
  }
  if (start != nullptr) *start = pos_;
  const auto flags = static_cast<uint8_t>(blob_[pos_++]);
  if ((flags & kNextDot) != 0) {
    ++dot_;
  } else {
    const uint64_t index = Varint();
    dot_ = (index << ReplicaIndex::kSeqBits) | Varint();
  }
  if (type_ != crdt::ObjectType::kSet && (flags & kSameHlc) == 0) {
    hlc_ += UnZigZag(Varint());
  }
  out.hlc = hlc_;
  out.packed_dot = dot_;
  size_t length = Varint();
  out.name = blob_.substr(pos_, length);
  pos_ += length;
  if (type_ == crdt::ObjectType::kHash) {
    length = Varint();
    out.value = blob_.substr(pos_, length);
    pos_ += length;
  } else if (type_ == crdt::ObjectType::kZSet) {
    std::memcpy(&out.score, blob_.data() + pos_, sizeof(out.score));
    pos_ += sizeof(out.score);
  }
  return true;
}

void CompactWriter::Varint(uint64_t value) {
  while (value >= 0x80) {
    blob_.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  blob_.push_back(static_cast<char>(value));
}

void CompactWriter::Add(const CompactElement& element) {
  const bool next =
      (dot_ & ReplicaIndex::kSeqMask) != ReplicaIndex::kSeqMask && element.packed_dot == dot_ + 1;
  const bool timed = type_ != crdt::ObjectType::kSet;
  const bool same_hlc = !timed || element.hlc == hlc_;
  blob_.push_back(static_cast<char>((next ? kNextDot : 0) | (same_hlc ? kSameHlc : 0)));
  if (!next) {
    Varint(element.packed_dot >> ReplicaIndex::kSeqBits);
    Varint(element.packed_dot & ReplicaIndex::kSeqMask);
  }
  if (!same_hlc) {
    Varint(ZigZag(element.hlc - hlc_));
  }
  dot_ = element.packed_dot;
  if (timed) hlc_ = element.hlc;
  Varint(element.name.size());
  blob_.append(element.name);
  if (type_ == crdt::ObjectType::kHash) {
    Varint(element.value.size());
    blob_.append(element.value);
  } else if (type_ == crdt::ObjectType::kZSet) {
    char score[sizeof(double)];
    std::memcpy(score, &element.score, sizeof(score));
    blob_.append(score, sizeof(score));
  }
}

CompactEdit::CompactEdit(std::string_view blob, uint64_t created_hlc, uint64_t created_dot)
    : blob_(blob), type_(CompactType(blob)), created_hlc_(created_hlc), created_dot_(created_dot) {
  elements_.reserve(CompactLimits::kMaxCompactEntries);
  starts_.reserve(CompactLimits::kMaxCompactEntries + 1);
  CompactReader reader(blob, created_hlc, created_dot);
  for (CompactElement element; reader.Next(element, &starts_.emplace_back());) {
    elements_.push_back(element);
  }
  starts_.back() = blob.size();  // the end, where appends go
  kept_ = elements_.size();
}

std::vector<CompactElement>::iterator CompactEdit::Find(std::string_view name) {
  return std::find_if(elements_.begin(), elements_.end(),
                      [&](const CompactElement& e) { return e.name == name; });
}

void CompactEdit::Remove(std::vector<CompactElement>::iterator element) {
  kept_ = std::min(kept_, static_cast<size_t>(element - elements_.begin()));
  elements_.erase(element);
}

std::string CompactEdit::Blob() const {
  std::string blob;
  blob.reserve(blob_.size() + (elements_.size() - kept_) * 24);
  blob.append(blob_.substr(0, starts_[kept_]));
  const bool first = kept_ == 0;
  CompactWriter out(blob, type_, first ? created_hlc_ : elements_[kept_ - 1].hlc,
                    first ? created_dot_ : elements_[kept_ - 1].packed_dot);
  for (size_t i = kept_; i < elements_.size(); ++i) out.Add(elements_[i]);
  return blob;
}

bool CompactCandidate(const crdt::Key& key, const CompactLimits& limits) {
  const crdt::KeyRest* rest = key.rest();
  if (rest == nullptr || !key.string().empty() || rest->has_list() || rest->has_stream() ||
      rest->has_chunks() ||  // never compact
      int{rest->has_hash()} + int{rest->has_set()} + int{rest->has_zset()} != 1) {
    return false;
  }
  const size_t count = ElementCount(*rest);
  return count > 0 && count <= std::min(limits.max_entries, CompactLimits::kMaxCompactEntries);
}

std::optional<CompactCollection> EncodeCompact(const crdt::Key& key, ReplicaIndex& replicas,
                                               const CompactLimits& limits) {
  if (!CompactCandidate(key, limits)) {
    return std::nullopt;
  }
  const crdt::KeyRest& rest = *key.rest();
  if (!rest.expiry().empty()) {
    return std::nullopt;
  }
  const crdt::ObjectType type = rest.has_hash()  ? crdt::ObjectType::kHash
                                : rest.has_set() ? crdt::ObjectType::kSet
                                                 : crdt::ObjectType::kZSet;
  const crdt::CreationCell& created = type == crdt::ObjectType::kHash  ? rest.hash_created()
                                      : type == crdt::ObjectType::kSet ? rest.set_created()
                                                                       : rest.zset_created();
  const crdt::RegisterEntry<uint8_t>* creation = PlainEntry(created);
  if (creation == nullptr ||
      (creation->value & ~crdt::kFixedPrecedenceFlag) != static_cast<uint8_t>(type)) {
    return std::nullopt;
  }
  const std::optional<uint64_t> created_dot = replicas.Pack(creation->dot);
  if (!created_dot.has_value()) {
    return std::nullopt;
  }
  std::vector<CompactElement> elements;
  elements.reserve(ElementCount(rest));
  // Adds one element of `name` holding `dot`; false when it cannot be compact.
  auto add = [&](std::string_view name, crdt::Dot dot, CompactElement element) {
    const std::optional<uint64_t> packed = replicas.Pack(dot);
    if (!packed.has_value() || name.size() > limits.max_value ||
        element.value.size() > limits.max_value) {
      return false;
    }
    element.name = name;
    element.packed_dot = *packed;
    elements.push_back(element);
    return true;
  };
  switch (type) {
    case crdt::ObjectType::kHash:
      for (const auto& [field, cell] : rest.hash().fields()) {
        const auto entry = cell.Plain();  // its bytes stay in the node
        if (!entry.has_value() ||
            !add(field, entry->dot, {.value = entry->value, .hlc = entry->hlc})) {
          return std::nullopt;
        }
      }
      break;
    case crdt::ObjectType::kSet:
      if (!rest.set().removes().empty()) return std::nullopt;
      for (const auto& [member, dots] : rest.set().adds()) {
        if (dots.size() != 1 || !add(member, dots.dots()[0], {})) return std::nullopt;
      }
      break;
    default:
      if (!rest.zset().removes().empty()) return std::nullopt;
      {
        bool representable = true;
        rest.zset().ForEachMember([&](std::string_view member, const crdt::ScoreCell& cell) {
          const auto* entry = PlainEntry(cell);
          representable = representable && entry != nullptr &&
                          add(member, entry->dot, {.score = entry->value, .hlc = entry->hlc});
        });
        if (!representable) return std::nullopt;
      }
      break;
  }
  // By dot, so a multi-element write's consecutive dots each take one flag byte.
  std::sort(elements.begin(), elements.end(), [](const CompactElement& a, const CompactElement& b) {
    return a.packed_dot < b.packed_dot;
  });
  CompactCollection out{creation->hlc, *created_dot, {}};
  out.blob.push_back(static_cast<char>(creation->value));
  CompactWriter writer(out.blob, type, creation->hlc, *created_dot);
  for (const CompactElement& element : elements) writer.Add(element);
  return out;
}

crdt::Key DecodeCompact(std::string_view blob, uint64_t hlc, uint64_t packed_dot,
                        const ReplicaIndex& replicas) {
  crdt::CreationCell created = crdt::CreationCell::OfEntry(
      {static_cast<uint8_t>(blob[0]), hlc, replicas.Unpack(packed_dot)});
  CompactReader reader(blob, hlc, packed_dot);
  CompactElement element;
  switch (reader.type()) {
    case crdt::ObjectType::kHash: {
      crdt::OrHash hash;
      while (reader.Next(element)) {
        hash.Put(std::string(element.name),
                 crdt::StringCell::OfEntry({std::string(element.value), element.hlc,
                                            replicas.Unpack(element.packed_dot)}));
      }
      return crdt::Key::OfHash(std::move(created), std::move(hash));
    }
    case crdt::ObjectType::kSet: {
      crdt::OrSet set;
      while (reader.Next(element)) {
        set.Put(std::string(element.name), replicas.Unpack(element.packed_dot));
      }
      return crdt::Key::OfSet(std::move(created), std::move(set));
    }
    default: {
      crdt::SortedSet zset;
      while (reader.Next(element)) {
        zset.Put(std::string(element.name),
                 crdt::ScoreCell::OfEntry(
                     {element.score, element.hlc, replicas.Unpack(element.packed_dot)}));
      }
      return crdt::Key::OfZSet(std::move(created), std::move(zset));
    }
  }
}

}  // namespace lattice::server
