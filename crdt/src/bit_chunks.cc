#include "lattice/crdt/bit_chunks.h"

#include <algorithm>

namespace lattice::crdt {

namespace {

template <typename Items, typename K>
auto BitItemLowerBound(Items& items, const K& key) {
  return std::lower_bound(items.begin(), items.end(), key,
                          [](const auto& item, const K& k) { return item.first < k; });
}

bool BitCellCovered(const Register<std::string>& cell, const DotContext& context) {
  bool covered = false;
  cell.ForEachDot([&](Dot dot) { covered = covered || context.Contains(dot); });
  return covered;
}

// Register::Join, by JoinSimple when the delta has one of its simple shapes (no allocation).
void JoinBitCell(Register<std::string>& cell, const Register<std::string>& other,
                 const DotContext& mine, const DotContext& theirs) {
  if (!cell.JoinSimple(other, mine, theirs)) cell.Join(other, mine, theirs);
}

// The join of two sorted maps of registers, in place. An item only `items` holds keeps its
// register unless `theirs` covers one of its dots (the join with an empty register would keep
// it whole); every item of `other` joins its counterpart (an empty one when new here).
template <typename K>
void JoinBitItems(std::vector<std::pair<K, Register<std::string>>>& items,
                  const std::vector<std::pair<K, Register<std::string>>>& other,
                  const DotContext& mine, const DotContext& theirs) {
  static const Register<std::string> kNoCell{};
  bool emptied = false;
  auto b = other.begin();
  for (auto& item : items) {
    while (b != other.end() && b->first < item.first) ++b;
    if (b != other.end() && b->first == item.first) continue;  // joined below
    if (BitCellCovered(item.second, theirs)) {
      item.second.Join(kNoCell, mine, theirs);
      emptied = emptied || item.second.empty();
    }
  }
  for (const auto& [key, cell] : other) {
    auto it = BitItemLowerBound(items, key);
    if (it == items.end() || it->first != key) {
      Register<std::string> joined;
      JoinBitCell(joined, cell, mine, theirs);
      if (!joined.empty()) items.emplace(it, key, std::move(joined));
      continue;
    }
    JoinBitCell(it->second, cell, mine, theirs);
    emptied = emptied || it->second.empty();
  }
  if (emptied) {
    std::erase_if(items, [](const auto& item) { return item.second.empty(); });
  }
}

template <typename K>
void PutBitItem(std::vector<std::pair<K, Register<std::string>>>& items, const K& key,
                Register<std::string> cell) {
  auto it = BitItemLowerBound(items, key);
  const bool present = it != items.end() && it->first == key;
  if (cell.empty()) {
    if (present) items.erase(it);
  } else if (present) {
    it->second = std::move(cell);
  } else {
    items.emplace(it, key, std::move(cell));
  }
}

uint64_t FieldMask(uint32_t bits) { return bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1; }

// Adds `delta` (mod 2^bits) to the field's bits of `value` (bit 0: the top bit of byte 0),
// growing the value with zero bytes to the field's end.
void AddToBitField(std::string& value, const BitField& field, uint64_t delta) {
  const size_t end = static_cast<size_t>((field.offset + field.bits - 1) / 8) + 1;
  if (value.size() < end) value.resize(end, '\0');
  auto bit_at = [&](uint64_t bit) {
    return (static_cast<uint8_t>(value[bit / 8]) >> (7 - bit % 8)) & 1U;
  };
  uint64_t current = 0;
  for (uint32_t i = 0; i < field.bits; ++i) current = (current << 1) | bit_at(field.offset + i);
  const uint64_t next = (current + delta) & FieldMask(field.bits);
  for (uint32_t i = 0; i < field.bits; ++i) {
    const uint64_t bit = field.offset + i;
    auto& byte = reinterpret_cast<uint8_t&>(value[bit / 8]);
    const auto mask = static_cast<uint8_t>(1U << (7 - bit % 8));
    const bool on = ((next >> (field.bits - 1 - i)) & 1) != 0;
    byte = on ? (byte | mask) : (byte & ~mask);
  }
}

}  // namespace

const BitChunks::Cell& BitChunks::At(uint64_t index) const {
  static const Cell kNoChunk{};
  auto it = BitItemLowerBound(items_, index);
  return it != items_.end() && it->first == index ? it->second : kNoChunk;
}

const BitChunks::Counter& BitChunks::CounterAt(const BitField& field) const {
  static const Counter kNoCounter{};
  auto it = BitItemLowerBound(counters_, field);
  return it != counters_.end() && it->first == field ? it->second : kNoCounter;
}

bool BitChunks::Contains(uint64_t index) const {
  auto it = BitItemLowerBound(items_, index);
  return it != items_.end() && it->first == index;
}

bool BitChunks::CounterFits(const BitField& field) const {
  if (!field.Valid()) return false;
  bool present = false;
  for (const CounterItem& item : counters_) {
    if (item.first == field) {
      present = true;
    } else if (item.first.Overlaps(field) && item.second.Alive()) {
      return false;
    }
  }
  return present || counters_.size() < kCountersMax;
}

bool BitChunks::AnyAlive() const {
  return std::any_of(items_.begin(), items_.end(),
                     [](const Item& item) { return item.second.Winner() != nullptr; }) ||
         std::any_of(counters_.begin(), counters_.end(),
                     [](const CounterItem& item) { return item.second.Alive(); });
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
  for (const CounterItem& item : counters_) {
    if (item.first.Chunk() != index) continue;
    Counter reset = item.second.RemoveDelta(stamp, context);
    if (!reset.empty()) delta.counters_.emplace_back(item.first, std::move(reset));
  }
  return delta;
}

bool BitChunks::PlainChunk(uint64_t index) const {
  if (At(index).rest() != nullptr) return false;
  return std::none_of(counters_.begin(), counters_.end(),
                      [&](const CounterItem& item) { return item.first.Chunk() == index; });
}

BitChunks::Cell BitChunks::AssignInPlace(uint64_t index, std::string_view bytes, WriteStamp& stamp,
                                         DotContext& context) {
  auto it = BitItemLowerBound(items_, index);
  const bool present = it != items_.end() && it->first == index;
  if (present) it->second.CollectDots(context);
  // AssignDelta of a register without offsets: one entry, nothing else.
  Cell delta = Cell::OfEntry(Cell::Entry{std::string(bytes), stamp.hlc, stamp.dots->Next()});
  context.Add(delta.Winner()->dot);
  if (present) {
    it->second = delta;  // a copy into the old entry's buffer
  } else {
    items_.emplace(it, index, delta);
  }
  return delta;
}

namespace {

// Whether joining `cell` into an empty register gives `cell` itself: one increment and nothing
// else, that `mine` has not seen (JoinSimple's increment case then inserts just it).
bool LoneNewIncrement(const Register<std::string>& cell, const DotContext& mine) {
  const RegisterRest<std::string>* rest = cell.rest();
  return cell.Winner() == nullptr && rest != nullptr && rest->incs.size() == 1 &&
         rest->more.empty() && rest->tombs.empty() && rest->observed.empty() &&
         !mine.Contains(rest->incs.front().dot);
}

}  // namespace

void BitChunks::JoinCounter(const BitField& field, Counter cell, const DotContext& mine,
                            const DotContext& theirs) {
  auto it = BitItemLowerBound(counters_, field);
  if (it == counters_.end() || it->first != field) {
    Counter joined;
    if (LoneNewIncrement(cell, mine)) {
      joined = std::move(cell);
    } else {
      JoinBitCell(joined, cell, mine, theirs);
    }
    if (!joined.empty()) counters_.emplace(it, field, std::move(joined));
    return;
  }
  JoinBitCell(it->second, cell, mine, theirs);
  if (it->second.empty()) counters_.erase(it);
}

BitChunks BitChunks::RemoveDelta(WriteStamp& stamp, DotContext& context) const {
  BitChunks delta;
  for (const Item& item : items_) item.second.CollectDots(context);
  for (const CounterItem& item : counters_) {
    Counter reset = item.second.RemoveDelta(stamp, context);
    if (!reset.empty()) delta.counters_.emplace_back(item.first, std::move(reset));
  }
  return delta;
}

BitChunks BitChunks::IncrementDelta(const BitField& field, uint64_t by, WriteStamp& stamp,
                                    DotContext& context) const {
  BitChunks delta;
  delta.counters_.emplace_back(field, IncrementCounter(field, by, stamp, context));
  return delta;
}

BitChunks::Counter BitChunks::IncrementCounter(const BitField& field, uint64_t by,
                                               WriteStamp& stamp, DotContext& context) const {
  const Counter& cell = CounterAt(field);
  IncEntry next{stamp.dots->Next(), cell.Epoch(), 0, 0};
  if (const RegisterRest<std::string>* rest = cell.rest()) {
    for (const IncEntry& inc : rest->incs) {
      if (inc.dot.replica == next.dot.replica && inc.epoch == next.epoch) {
        next.total = inc.total;
        context.Add(inc.dot);  // the new total supersedes the old one
      }
    }
  }
  // Totals wrap modulo 2^64, of which 2^bits is a divisor: the sums read stay exact mod 2^bits.
  next.total =
      static_cast<int64_t>(static_cast<uint64_t>(next.total) + (by & FieldMask(field.bits)));
  context.Add(next.dot);
  return Counter::OfIncrement(next);
}

void BitChunks::Put(uint64_t index, Cell cell) { PutBitItem(items_, index, std::move(cell)); }

void BitChunks::PutCounter(const BitField& field, Counter counter) {
  PutBitItem(counters_, field, std::move(counter));
}

void BitChunks::Join(const BitChunks& other, const DotContext& mine, const DotContext& theirs) {
  JoinBitItems(items_, other.items_, mine, theirs);
  JoinBitItems(counters_, other.counters_, mine, theirs);
}

size_t BitChunks::MetadataItems() const {
  size_t items = 0;
  for (const Item& item : items_) items += item.second.MetadataItems();
  for (const CounterItem& item : counters_) items += item.second.MetadataItems();
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
  for (const CounterItem& item : counters_) {
    const CounterSum sum = item.second.Sum();
    if (!sum.unobserved) continue;
    shown = true;
    AddToBitField(value, item.first, static_cast<uint64_t>(sum.ints));
  }
  if (!shown) return std::nullopt;
  return value;
}

size_t BitChunks::ComposedSize(std::optional<size_t> base_size, Stamp base_stamp) const {
  size_t size = base_size.value_or(0);
  for (const Item& item : items_) {
    const Cell::Entry* winner = item.second.Winner();
    if (winner == nullptr || winner->stamp() <= base_stamp) continue;
    size = std::max(size, static_cast<size_t>(item.first) * kChunkBytes + winner->value.size());
  }
  for (const CounterItem& item : counters_) {
    if (!item.second.Sum().unobserved) continue;
    const BitField& field = item.first;
    size = std::max(size, static_cast<size_t>((field.offset + field.bits - 1) / 8) + 1);
  }
  return size;
}

bool BitChunks::AnyIn(uint64_t first, uint64_t last) const {
  auto item = BitItemLowerBound(items_, first);
  if (item != items_.end() && item->first <= last) return true;
  return std::any_of(counters_.begin(), counters_.end(), [&](const CounterItem& counter) {
    return counter.first.Chunk() >= first && counter.first.Chunk() <= last;
  });
}

void BitChunks::ComposeRange(std::string_view base, Stamp base_stamp, size_t begin, size_t end,
                             std::string& out) const {
  out.assign(end - begin, '\0');
  if (base.size() > begin) {
    const size_t from_base = std::min(base.size(), end) - begin;
    out.replace(0, from_base, base.substr(begin, from_base));
  }
  const uint64_t first = begin / kChunkBytes;
  for (auto item = BitItemLowerBound(items_, first);
       item != items_.end() && static_cast<size_t>(item->first) * kChunkBytes < end; ++item) {
    const Cell::Entry* winner = item->second.Winner();
    if (winner == nullptr || winner->stamp() <= base_stamp) continue;
    const size_t at = static_cast<size_t>(item->first) * kChunkBytes - begin;
    const size_t length = std::min(winner->value.size(), out.size() - at);  // fits: see above
    out.replace(at, length, winner->value.data(), length);
  }
  for (const CounterItem& item : counters_) {  // in field order, as Compose applies them
    const BitField& field = item.first;
    if (field.Chunk() < first || static_cast<size_t>(field.Chunk()) * kChunkBytes >= end) continue;
    const CounterSum sum = item.second.Sum();
    if (!sum.unobserved) continue;
    const BitField shifted{field.offset - uint64_t{begin} * 8, field.bits};
    AddToBitField(out, shifted, static_cast<uint64_t>(sum.ints));
  }
}

}  // namespace lattice::crdt
