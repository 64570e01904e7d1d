#include "lattice/crdt/list.h"

#include <iterator>
#include <limits>

#include "lattice/common/assert.h"

namespace lattice::crdt {
namespace {

using Wide = __int128;
constexpr Wide kBelowAll = Wide{std::numeric_limits<int64_t>::min()} - 1;
constexpr Wide kAboveAll = Wide{std::numeric_limits<int64_t>::max()} + 1;

Stamp StampOf(const ListValue& value) { return Stamp::Of(value.hlc, value.dot); }

}  // namespace

ListPosition::ListPosition(std::vector<ListDigit> prefix, ListDigit last) : last_(last) {
  if (!prefix.empty()) {
    prefix_.Mutable() = std::move(prefix);
  }
}

std::strong_ordering operator<=>(const ListPosition& a, const ListPosition& b) {
  const size_t common = std::min(a.depth(), b.depth());
  for (size_t i = 0; i < common; ++i) {
    if (const auto order = a.digit(i) <=> b.digit(i); order != std::strong_ordering::equal) {
      return order;
    }
  }
  return a.depth() <=> b.depth();  // a prefix orders before its extensions
}

ListPosition PositionBetween(const ListPosition* left, const ListPosition* right, Dot dot) {
  LATTICE_ASSERT(left == nullptr || right == nullptr || *left < *right);
  // The path is built digit by digit; while it equals left's (right's) prefix it is bounded by
  // left's (right's) next digit, and once it differs it is already on the right side of it.
  std::vector<ListDigit> path;
  bool bounded_left = left != nullptr;
  bool bounded_right = right != nullptr;
  for (size_t i = 0;; ++i) {
    if (bounded_left && i == left->depth()) {
      bounded_left = false;  // the path is all of left: any extension is greater
    }
    LATTICE_ASSERT(!bounded_right || i < right->depth());
    const Wide low = bounded_left ? Wide{left->digit(i).n} : kBelowAll;
    const Wide high = bounded_right ? Wide{right->digit(i).n} : kAboveAll;
    if (high - low >= 2) {
      Wide n = 0;
      if (bounded_left && bounded_right) {
        n = low + (high - low) / 2;
      } else if (bounded_left) {
        n = low + 1;  // RPUSH: one past the tail
      } else if (bounded_right) {
        n = high - 1;  // LPUSH: one before the head
      }
      return ListPosition(std::move(path), ListDigit{static_cast<int64_t>(n), dot});
    }
    // No integer fits between the bounds at this depth: take a digit that keeps the path
    // between them and go one deeper.
    ListDigit step;
    if (bounded_left) {
      step = left->digit(i);
    } else {
      // Only right bounds us and its digit is the smallest integer: a digit with the same
      // integer and no dot orders before it (every written digit has a dot).
      step = ListDigit{right->digit(i).n, Dot{}};
    }
    if (bounded_right && step != right->digit(i)) {
      bounded_right = false;  // step < right's digit: the path is already below right
    }
    path.push_back(step);
  }
}

const std::string* List::At(size_t index) const {
  if (index >= elements_.size()) {
    return nullptr;
  }
  return &IteratorAt(index)->second.value;
}

List::Map::const_iterator List::IteratorAt(size_t index) const {
  LATTICE_ASSERT(index < elements_.size());
  if (index <= elements_.size() / 2) {
    return std::next(elements_.begin(), static_cast<ptrdiff_t>(index));
  }
  return std::prev(elements_.end(), static_cast<ptrdiff_t>(elements_.size() - index));
}

void List::Walk(ListEnd from_end, absl::FunctionRef<bool(size_t, const std::string&)> f) const {
  if (from_end == ListEnd::kHead) {
    size_t index = 0;
    for (const auto& [position, value] : elements_) {
      if (!f(index++, value.value)) {
        return;
      }
    }
    return;
  }
  size_t index = elements_.size();
  for (auto it = elements_.rbegin(); it != elements_.rend(); ++it) {
    if (!f(--index, it->second.value)) {
      return;
    }
  }
}

std::vector<std::string> List::Range(size_t start, size_t stop) const {
  std::vector<std::string> out;
  if (start > stop || start >= elements_.size()) {
    return out;
  }
  stop = std::min(stop, elements_.size() - 1);
  out.reserve(stop - start + 1);
  auto it = IteratorAt(start);
  for (size_t i = start; i <= stop; ++i, ++it) {
    out.push_back(it->second.value);
  }
  return out;
}

List List::PushDelta(ListEnd end, const std::vector<std::string>& values, WriteStamp& stamp,
                     DotContext& context) const {
  List delta;
  // The element each new one goes next to: the current end, then the previous new element.
  std::optional<ListPosition> neighbour;
  if (!elements_.empty()) {
    neighbour = end == ListEnd::kHead ? elements_.begin()->first : elements_.rbegin()->first;
  }
  for (const std::string& value : values) {
    const Dot dot = stamp.dots->Next();
    const ListPosition* near = neighbour ? &*neighbour : nullptr;
    ListPosition position = end == ListEnd::kHead ? PositionBetween(nullptr, near, dot)
                                                  : PositionBetween(near, nullptr, dot);
    neighbour = position;
    delta.elements_.emplace(std::move(position), ListValue{value, stamp.hlc, dot});
    context.Add(dot);
  }
  return delta;
}

List List::InsertDelta(size_t index, bool before, std::string value, WriteStamp& stamp,
                       DotContext& context) const {
  auto pivot = IteratorAt(index);
  const ListPosition* left = nullptr;
  const ListPosition* right = nullptr;
  if (before) {
    right = &pivot->first;
    if (pivot != elements_.begin()) {
      left = &std::prev(pivot)->first;
    }
  } else {
    left = &pivot->first;
    if (auto next = std::next(pivot); next != elements_.end()) {
      right = &next->first;
    }
  }
  const Dot dot = stamp.dots->Next();
  List delta;
  delta.elements_.emplace(PositionBetween(left, right, dot),
                          ListValue{std::move(value), stamp.hlc, dot});
  context.Add(dot);
  return delta;
}

List List::SetDelta(size_t index, std::string value, WriteStamp& stamp, DotContext& context) const {
  auto element = IteratorAt(index);
  const Dot dot = stamp.dots->Next();
  List delta;
  delta.elements_.emplace(element->first, ListValue{std::move(value), stamp.hlc, dot});
  context.Add(dot);
  return delta;
}

List List::RemoveDelta(const std::vector<size_t>& indexes, DotContext& context) const {
  auto it = elements_.begin();
  size_t at = 0;
  for (size_t index : indexes) {
    LATTICE_ASSERT(index >= at && index < elements_.size());
    std::advance(it, static_cast<ptrdiff_t>(index - at));
    at = index;
    context.Add(it->first.id());
    context.Add(it->second.dot);
  }
  return List{};
}

void List::CollectDots(DotContext& out) const {
  for (const auto& [position, value] : elements_) {
    out.Add(position.id());
    out.Add(value.dot);
  }
}

void List::Join(const List& other, const DotContext& mine, const DotContext& theirs) {
  // Held on both sides: the newer value. Held here only: kept unless theirs saw it (and so
  // removed it). Held there only: added unless this side saw it.
  for (auto it = elements_.begin(); it != elements_.end();) {
    auto found = other.elements_.find(it->first);
    if (found == other.elements_.end()) {
      it = theirs.Contains(it->first.id()) ? elements_.erase(it) : std::next(it);
      continue;
    }
    if (StampOf(found->second) > StampOf(it->second)) {
      it->second = found->second;
    }
    ++it;
  }
  for (const auto& [position, value] : other.elements_) {
    if (!mine.Contains(position.id())) {
      elements_.emplace(position, value);
    }
  }
}

void List::ForEachElement(absl::FunctionRef<void(const ListPosition&, const ListValue&)> f) const {
  for (const auto& [position, value] : elements_) {
    f(position, value);
  }
}

void List::PutForDecode(ListPosition position, ListValue value) {
  elements_.insert_or_assign(std::move(position), std::move(value));
}

}  // namespace lattice::crdt
