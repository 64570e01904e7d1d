#include "lattice/crdt/bit_chunks.h"

#include <algorithm>

namespace lattice::crdt {

namespace {

template <typename Items>
auto ChunkLowerBound(Items& items, uint64_t index) {
  return std::lower_bound(items.begin(), items.end(), index,
                          [](const BitChunks::Item& item, uint64_t i) { return item.first < i; });
}

}  // namespace

const BitChunks::Cell& BitChunks::At(uint64_t index) const {
  static const Cell kNoChunk{};
  auto it = ChunkLowerBound(items_, index);
  return it != items_.end() && it->first == index ? it->second : kNoChunk;
}

bool BitChunks::Contains(uint64_t index) const {
  auto it = ChunkLowerBound(items_, index);
  return it != items_.end() && it->first == index;
}

bool BitChunks::AnyAlive() const {
  return std::any_of(items_.begin(), items_.end(),
                     [](const Item& item) { return item.second.Winner() != nullptr; });
}

Stamp BitChunks::NewestStamp() const {
  Stamp newest;
  for (const Item& item : items_) {
    if (const Cell::Entry* winner = item.second.Winner()) {
      newest = std::max(newest, winner->stamp());
    }
  }
  return newest;
}

BitChunks BitChunks::AssignDelta(uint64_t index, std::string bytes, WriteStamp& stamp,
                                 DotContext& context) const {
  BitChunks delta;
  delta.items_.emplace_back(index, At(index).AssignDelta(std::move(bytes), stamp, context));
  return delta;
}

void BitChunks::Put(uint64_t index, Cell cell) {
  auto it = ChunkLowerBound(items_, index);
  if (it != items_.end() && it->first == index) {
    it->second = std::move(cell);
  } else {
    items_.emplace(it, index, std::move(cell));
  }
  if (At(index).empty()) {
    items_.erase(ChunkLowerBound(items_, index));
  }
}

// Each index's registers join; an index on one side only joins with an empty register (which
// drops the entries the other side's context observed).
void BitChunks::Join(const BitChunks& other, const DotContext& mine, const DotContext& theirs) {
  static const Cell kNoChunk{};
  std::vector<Item> out;
  out.reserve(items_.size() + other.items_.size());
  auto a = items_.begin();
  auto b = other.items_.begin();
  while (a != items_.end() || b != other.items_.end()) {
    const bool take_a = b == other.items_.end() || (a != items_.end() && a->first <= b->first);
    const bool take_b = a == items_.end() || (b != other.items_.end() && b->first <= a->first);
    Item item{take_a ? a->first : b->first, take_a ? std::move(a->second) : Cell{}};
    item.second.Join(take_b ? b->second : kNoChunk, mine, theirs);
    if (!item.second.empty()) out.push_back(std::move(item));
    if (take_a) ++a;
    if (take_b) ++b;
  }
  items_ = std::move(out);
}

size_t BitChunks::MetadataItems() const {
  size_t items = 0;
  for (const Item& item : items_) items += item.second.MetadataItems();
  return items;
}

std::optional<std::string> BitChunks::Compose(std::optional<std::string> base,
                                              Stamp base_stamp) const {
  bool shown = base.has_value();
  std::string value = base ? std::move(*base) : std::string();
  for (const Item& item : items_) {
    const Cell::Entry* winner = item.second.Winner();
    if (winner == nullptr || winner->stamp() <= base_stamp) continue;
    shown = true;
    const size_t at = static_cast<size_t>(item.first) * kChunkBytes;
    if (value.size() < at + winner->value.size()) value.resize(at + winner->value.size(), '\0');
    value.replace(at, winner->value.size(), winner->value);
  }
  if (!shown) return std::nullopt;
  return value;
}

}  // namespace lattice::crdt
