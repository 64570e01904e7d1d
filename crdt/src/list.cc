#include "lattice/crdt/list.h"

#include <algorithm>
#include <iterator>
#include <limits>

#include "lattice/common/assert.h"
#include "lattice/common/byte_codec.h"

namespace lattice::crdt {
namespace {

using Wide = __int128;
constexpr Wide kBelowAll = Wide{std::numeric_limits<int64_t>::min()} - 1;
constexpr Wide kAboveAll = Wide{std::numeric_limits<int64_t>::max()} + 1;

constexpr uint8_t kFlagPrefix = 1;    // digits before the last follow
constexpr uint8_t kFlagValueDot = 2;  // the value was written by its own dot (LSET)

// What an element is coded against: the previous element of its chunk (zero at a chunk's start).
// Unsigned, so the deltas wrap instead of overflowing.
struct Previous {
  uint64_t n = 0;
  uint64_t seq = 0;
  uint64_t hlc = 0;
};

int64_t Delta(uint64_t value, uint64_t previous) { return static_cast<int64_t>(value - previous); }

}  // namespace

struct List::Element {
  ListPosition position;
  std::string_view value;
  uint64_t hlc = 0;
  Dot value_dot;

  Stamp stamp() const { return Stamp::Of(hlc, value_dot); }
};

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

// ---------------------------------------------------------------------------------------------
// Chunk coding.

uint64_t List::ReplicaIndex(ReplicaId replica) {
  if (replica == kNoReplica) {
    return 0;
  }
  auto found = std::find(replicas_.begin(), replicas_.end(), replica);
  if (found == replicas_.end()) {
    replicas_.push_back(replica);
    return replicas_.size();
  }
  return static_cast<uint64_t>(found - replicas_.begin()) + 1;
}

namespace {

// Decodes the elements of one chunk in order, calling f(element) until it returns false.
template <typename Element, typename F>
void ScanChunk(std::string_view bytes, const std::vector<ReplicaId>& replicas, F f) {
  ByteReader in(bytes);
  Previous previous;
  auto replica = [&](uint64_t ref) -> ReplicaId {
    LATTICE_ASSERT(ref <= replicas.size());
    return ref == 0 ? kNoReplica : replicas[ref - 1];
  };
  while (!in.done()) {
    const uint8_t flags = in.Byte();
    std::vector<ListDigit> prefix;
    if ((flags & kFlagPrefix) != 0) {
      const uint64_t count = in.Varint();
      LATTICE_ASSERT(in.ok() && count <= bytes.size());
      prefix.reserve(count);
      for (uint64_t i = 0; i < count; ++i) {
        const int64_t n = in.Zigzag();
        const ReplicaId r = replica(in.Varint());
        prefix.push_back(ListDigit{n, Dot{r, in.Varint()}});
      }
    }
    const uint64_t n = previous.n + static_cast<uint64_t>(in.Zigzag());
    const ReplicaId r = replica(in.Varint());
    const uint64_t seq = previous.seq + static_cast<uint64_t>(in.Zigzag());
    const uint64_t hlc = previous.hlc + static_cast<uint64_t>(in.Zigzag());
    const Dot id{r, seq};
    Dot value_dot = id;
    if ((flags & kFlagValueDot) != 0) {
      const ReplicaId vr = replica(in.Varint());
      value_dot = Dot{vr, in.Varint()};
    }
    const std::string_view value = in.Bytes();
    LATTICE_ASSERT(in.ok());
    previous = Previous{n, seq, hlc};
    if (!f(Element{ListPosition(std::move(prefix), ListDigit{static_cast<int64_t>(n), id}), value,
                   hlc, value_dot})) {
      return;
    }
  }
}

}  // namespace

void List::Decode(const Chunk& chunk, std::vector<Element>& out) const {
  out.reserve(out.size() + chunk.count);
  ScanChunk<Element>(chunk.bytes, replicas_, [&](Element element) {
    out.push_back(std::move(element));
    return true;
  });
}

std::vector<List::Element> List::Elements() const {
  std::vector<Element> out;
  out.reserve(size_);
  for (const Chunk& chunk : chunks_) {
    Decode(chunk, out);
  }
  return out;
}

void List::Splice(size_t at, size_t replace, const std::vector<Element>& elements) {
  // Code into new chunks first: the elements' values may point into the chunks replaced.
  std::vector<Chunk> coded;
  Previous previous;
  for (const Element& element : elements) {
    if (coded.empty() || coded.back().bytes.size() >= kChunkBytes) {
      coded.emplace_back();
      coded.back().first = element.position;
      previous = Previous{};
    }
    Chunk& chunk = coded.back();
    ByteWriter out(chunk.bytes);
    const ListPosition& position = element.position;
    const Dot id = position.id();
    const size_t prefix = position.depth() - 1;
    const uint8_t flags = static_cast<uint8_t>((prefix > 0 ? kFlagPrefix : 0) |
                                               (element.value_dot != id ? kFlagValueDot : 0));
    out.Byte(flags);
    if (prefix > 0) {
      out.Varint(prefix);
      for (size_t i = 0; i < prefix; ++i) {
        const ListDigit& digit = position.digit(i);
        out.Zigzag(digit.n);
        out.Varint(ReplicaIndex(digit.dot.replica));
        out.Varint(digit.dot.seq);
      }
    }
    const auto n = static_cast<uint64_t>(position.digit(prefix).n);
    out.Zigzag(Delta(n, previous.n));
    out.Varint(ReplicaIndex(id.replica));
    out.Zigzag(Delta(id.seq, previous.seq));
    out.Zigzag(Delta(element.hlc, previous.hlc));
    if ((flags & kFlagValueDot) != 0) {
      out.Varint(ReplicaIndex(element.value_dot.replica));
      out.Varint(element.value_dot.seq);
    }
    out.Bytes(element.value);
    previous = Previous{n, id.seq, element.hlc};
    chunk.last = position;
    chunk.last_hlc = element.hlc;
    ++chunk.count;
  }
  for (size_t i = at; i < at + replace; ++i) {
    size_ -= chunks_[i].count;
  }
  for (Chunk& chunk : coded) {
    chunk.bytes.shrink_to_fit();
    size_ += chunk.count;
  }
  chunks_.erase(chunks_.begin() + static_cast<ptrdiff_t>(at),
                chunks_.begin() + static_cast<ptrdiff_t>(at + replace));
  chunks_.insert(chunks_.begin() + static_cast<ptrdiff_t>(at),
                 std::make_move_iterator(coded.begin()), std::make_move_iterator(coded.end()));
}

void List::Append(const Element& element) {
  LATTICE_ASSERT(chunks_.empty() || chunks_.back().last < element.position);
  if (chunks_.empty() || chunks_.back().bytes.size() >= kChunkBytes ||
      element.position.depth() > 1 || element.value_dot != element.position.id()) {
    // A new chunk, or an unusual element: code it through Splice (with the last chunk, unless
    // that is full).
    if (!chunks_.empty() && chunks_.back().bytes.size() < kChunkBytes) {
      std::vector<Element> elements;
      Decode(chunks_.back(), elements);
      elements.push_back(element);
      Splice(chunks_.size() - 1, 1, elements);
    } else {
      Splice(chunks_.size(), 0, {element});
    }
    return;
  }
  // The common case: a one-digit element whose value is its insert's, coded against the chunk's
  // last element without decoding anything.
  Chunk& chunk = chunks_.back();
  const Dot id = element.position.id();
  const auto n = static_cast<uint64_t>(element.position.digit(0).n);
  const Previous previous{static_cast<uint64_t>(chunk.last.digit(chunk.last.depth() - 1).n),
                          chunk.last.id().seq, chunk.last_hlc};
  ByteWriter out(chunk.bytes);
  out.Byte(0);
  out.Zigzag(Delta(n, previous.n));
  out.Varint(ReplicaIndex(id.replica));
  out.Zigzag(Delta(id.seq, previous.seq));
  out.Zigzag(Delta(element.hlc, previous.hlc));
  out.Bytes(element.value);
  chunk.last = element.position;
  chunk.last_hlc = element.hlc;
  ++chunk.count;
  ++size_;
  if (chunk.bytes.size() >= kChunkBytes) {
    chunk.bytes.shrink_to_fit();  // full: give back what the string's doubling over-reserved
  }
}

size_t List::ChunkFor(const ListPosition& position) const {
  auto after =
      std::upper_bound(chunks_.begin(), chunks_.end(), position,
                       [](const ListPosition& p, const Chunk& chunk) { return p < chunk.first; });
  return after == chunks_.begin() ? 0 : static_cast<size_t>(after - chunks_.begin()) - 1;
}

std::pair<size_t, size_t> List::Locate(size_t index) const {
  LATTICE_ASSERT(index < size_);
  if (index < size_ / 2) {
    for (size_t c = 0;; ++c) {
      if (index < chunks_[c].count) {
        return {c, index};
      }
      index -= chunks_[c].count;
    }
  }
  size_t from_tail = size_ - 1 - index;
  for (size_t c = chunks_.size() - 1;; --c) {
    if (from_tail < chunks_[c].count) {
      return {c, chunks_[c].count - 1 - from_tail};
    }
    from_tail -= chunks_[c].count;
  }
}

size_t List::AllocatedBytes() const {
  size_t bytes = chunks_.capacity() * sizeof(Chunk) + replicas_.capacity() * sizeof(ReplicaId);
  for (const Chunk& chunk : chunks_) {
    bytes += chunk.bytes.capacity() + 1;
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Reads.

std::optional<std::string_view> List::At(size_t index) const {
  if (index >= size_) {
    return std::nullopt;
  }
  // Not a structured binding: clang 14 does not let a lambda capture one.
  const std::pair<size_t, size_t> located = Locate(index);
  const size_t offset = located.second;
  std::string_view found;
  size_t at = 0;
  ScanChunk<Element>(chunks_[located.first].bytes, replicas_, [&](const Element& element) {
    if (at++ < offset) {
      return true;
    }
    found = element.value;
    return false;
  });
  return found;
}

void List::Walk(ListEnd from_end, absl::FunctionRef<bool(size_t, std::string_view)> f) const {
  if (from_end == ListEnd::kHead) {
    size_t index = 0;
    bool more = true;
    for (size_t c = 0; c < chunks_.size() && more; ++c) {
      ScanChunk<Element>(chunks_[c].bytes, replicas_, [&](const Element& element) {
        more = f(index++, element.value);
        return more;
      });
    }
    return;
  }
  size_t index = size_;
  std::vector<Element> elements;
  for (size_t c = chunks_.size(); c-- > 0;) {
    elements.clear();
    Decode(chunks_[c], elements);
    for (auto it = elements.rbegin(); it != elements.rend(); ++it) {
      if (!f(--index, it->value)) {
        return;
      }
    }
  }
}

std::vector<std::string> List::Range(size_t start, size_t stop) const {
  std::vector<std::string> out;
  if (start > stop || start >= size_) {
    return out;
  }
  stop = std::min(stop, size_ - 1);
  out.reserve(stop - start + 1);
  auto [chunk, offset] = Locate(start);
  size_t index = start - offset;
  for (size_t c = chunk; c < chunks_.size() && index <= stop; ++c) {
    ScanChunk<Element>(chunks_[c].bytes, replicas_, [&](const Element& element) {
      if (index >= start && index <= stop) {
        out.emplace_back(element.value);
      }
      return ++index <= stop;
    });
  }
  return out;
}

void List::ForEachElement(absl::FunctionRef<void(const ListPosition&, const ListValue&)> f) const {
  for (const Chunk& chunk : chunks_) {
    ScanChunk<Element>(chunk.bytes, replicas_, [&](const Element& element) {
      f(element.position, ListValue{std::string(element.value), element.hlc, element.value_dot});
      return true;
    });
  }
}

bool operator==(const List& a, const List& b) {
  if (a.size_ != b.size_) {
    return false;
  }
  const auto x = a.Elements();
  const auto y = b.Elements();
  return std::equal(x.begin(), x.end(), y.begin(), y.end(),
                    [](const List::Element& p, const List::Element& q) {
                      return p.position == q.position && p.value == q.value && p.hlc == q.hlc &&
                             p.value_dot == q.value_dot;
                    });
}

// ---------------------------------------------------------------------------------------------
// Writes.

List List::PushDelta(ListEnd end, const std::vector<std::string>& values, WriteStamp& stamp,
                     DotContext& context) const {
  // The element each new one goes next to: the current end, then the previous new element.
  std::optional<ListPosition> neighbour;
  if (!chunks_.empty()) {
    neighbour = end == ListEnd::kHead ? chunks_.front().first : chunks_.back().last;
  }
  std::vector<Element> made;
  made.reserve(values.size());
  for (const std::string& value : values) {
    const Dot dot = stamp.dots->Next();
    const ListPosition* near = neighbour ? &*neighbour : nullptr;
    ListPosition position = end == ListEnd::kHead ? PositionBetween(nullptr, near, dot)
                                                  : PositionBetween(near, nullptr, dot);
    neighbour = position;
    made.push_back(Element{std::move(position), value, stamp.hlc, dot});
    context.Add(dot);
  }
  if (end == ListEnd::kHead) {
    std::reverse(made.begin(), made.end());  // the last pushed is the new head
  }
  List delta;
  for (const Element& element : made) {
    delta.Append(element);
  }
  return delta;
}

List List::InsertDelta(size_t index, bool before, std::string_view value, WriteStamp& stamp,
                       DotContext& context) const {
  const auto [chunk, offset] = Locate(index);
  std::vector<Element> elements;
  Decode(chunks_[chunk], elements);
  const ListPosition* left = nullptr;
  const ListPosition* right = nullptr;
  if (before) {
    right = &elements[offset].position;
    if (offset > 0) {
      left = &elements[offset - 1].position;
    } else if (chunk > 0) {
      left = &chunks_[chunk - 1].last;
    }
  } else {
    left = &elements[offset].position;
    if (offset + 1 < elements.size()) {
      right = &elements[offset + 1].position;
    } else if (chunk + 1 < chunks_.size()) {
      right = &chunks_[chunk + 1].first;
    }
  }
  const Dot dot = stamp.dots->Next();
  List delta;
  delta.Append(Element{PositionBetween(left, right, dot), value, stamp.hlc, dot});
  context.Add(dot);
  return delta;
}

List List::SetDelta(size_t index, std::string_view value, WriteStamp& stamp,
                    DotContext& context) const {
  const auto [chunk, offset] = Locate(index);
  std::vector<Element> elements;
  Decode(chunks_[chunk], elements);
  const Dot dot = stamp.dots->Next();
  List delta;
  delta.Append(Element{elements[offset].position, value, stamp.hlc, dot});
  context.Add(dot);
  return delta;
}

List List::RemoveDelta(const std::vector<size_t>& indexes, DotContext& context,
                       std::vector<ListPosition>* removed) const {
  size_t decoded = chunks_.size();  // the chunk `elements` holds
  std::vector<Element> elements;
  for (size_t index : indexes) {
    const auto [chunk, offset] = Locate(index);
    if (chunk != decoded) {
      elements.clear();
      Decode(chunks_[chunk], elements);
      decoded = chunk;
    }
    const Element& element = elements[offset];
    context.Add(element.position.id());
    context.Add(element.value_dot);
    if (removed != nullptr) {
      removed->push_back(element.position);
    }
  }
  return List{};
}

void List::CollectDots(DotContext& out) const {
  for (const Chunk& chunk : chunks_) {
    ScanChunk<Element>(chunk.bytes, replicas_, [&](const Element& element) {
      out.Add(element.position.id());
      out.Add(element.value_dot);
      return true;
    });
  }
}

void List::ScanDotsFromEnds(absl::FunctionRef<bool(const ListPosition&, Dot)> f) const {
  bool done = false;
  auto visit = [&](const Chunk& chunk) {
    ScanChunk<Element>(chunk.bytes, replicas_, [&](const Element& element) {
      done = f(element.position, element.position.id()) ||
             (element.value_dot != element.position.id() && f(element.position, element.value_dot));
      return !done;
    });
  };
  size_t head = 0;
  size_t tail = chunks_.size();
  while (head < tail && !done) {
    visit(chunks_[head++]);
    if (head < tail && !done) {
      visit(chunks_[--tail]);
    }
  }
}

void List::ForEachDotAt(const ListPosition& position, absl::FunctionRef<void(Dot)> f) const {
  if (chunks_.empty()) {
    return;
  }
  ScanChunk<Element>(chunks_[ChunkFor(position)].bytes, replicas_, [&](const Element& element) {
    if (element.position == position) {
      f(element.position.id());
      if (element.value_dot != element.position.id()) {
        f(element.value_dot);
      }
      return false;
    }
    return element.position < position;
  });
}

void List::Join(const List& other, const DotContext& mine, const DotContext& theirs) {
  // Held on both sides: the newer value. Held here only: kept unless theirs saw it (and so
  // removed it). Held there only: added unless this side saw it.
  const std::vector<Element> a = Elements();
  const std::vector<Element> b = other.Elements();
  std::vector<Element> out;
  out.reserve(a.size() + b.size());
  size_t i = 0;
  size_t j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].position < b[j].position)) {
      if (!theirs.Contains(a[i].position.id())) {
        out.push_back(a[i]);
      }
      ++i;
    } else if (i == a.size() || b[j].position < a[i].position) {
      if (!mine.Contains(b[j].position.id())) {
        out.push_back(b[j]);
      }
      ++j;
    } else {
      out.push_back(b[j].stamp() > a[i].stamp() ? b[j] : a[i]);
      ++i;
      ++j;
    }
  }
  Splice(0, chunks_.size(), out);
}

void List::JoinDelta(const List& delta, const DotContext& mine, const DotContext& theirs,
                     const std::vector<ListPosition>& removed) {
  std::vector<Element> elements;
  auto in_delta = [&delta](const ListPosition& position) {
    if (delta.chunks_.empty()) {
      return false;
    }
    bool found = false;
    ScanChunk<Element>(delta.chunks_[delta.ChunkFor(position)].bytes, delta.replicas_,
                       [&](const Element& element) {
                         found = element.position == position;
                         return !found && element.position < position;
                       });
    return found;
  };
  for (const ListPosition& position : removed) {
    if (chunks_.empty() || !theirs.Contains(position.id()) || in_delta(position)) {
      continue;
    }
    const size_t chunk = ChunkFor(position);
    elements.clear();
    Decode(chunks_[chunk], elements);
    auto found = std::find_if(elements.begin(), elements.end(),
                              [&](const Element& e) { return e.position == position; });
    if (found != elements.end()) {
      elements.erase(found);
      Splice(chunk, 1, elements);
    }
  }
  for (const Element& element : delta.Elements()) {
    if (chunks_.empty() || chunks_.back().last < element.position) {
      if (!mine.Contains(element.position.id())) {
        Append(element);
      }
      continue;
    }
    const size_t chunk = ChunkFor(element.position);
    // A full chunk takes a new element at either of its ends into a chunk of its own beside it,
    // so repeated LPUSHes fill new chunks instead of splitting one element off a full chunk each.
    if (chunks_[chunk].bytes.size() >= kChunkBytes && !mine.Contains(element.position.id()) &&
        (element.position < chunks_[chunk].first || chunks_[chunk].last < element.position)) {
      Splice(element.position < chunks_[chunk].first ? chunk : chunk + 1, 0, {element});
      continue;
    }
    elements.clear();
    Decode(chunks_[chunk], elements);
    auto at =
        std::lower_bound(elements.begin(), elements.end(), element.position,
                         [](const Element& e, const ListPosition& p) { return e.position < p; });
    if (at != elements.end() && at->position == element.position) {
      if (element.stamp() <= at->stamp()) {
        continue;
      }
      *at = element;
    } else if (mine.Contains(element.position.id())) {
      continue;
    } else {
      elements.insert(at, element);
    }
    Splice(chunk, 1, elements);
  }
}

bool List::AppendForDecode(const ListPosition& position, const ListValue& value) {
  if (!chunks_.empty() && !(chunks_.back().last < position)) {
    return false;
  }
  Append(Element{position, value.value, value.hlc, value.dot});
  return true;
}

}  // namespace lattice::crdt
