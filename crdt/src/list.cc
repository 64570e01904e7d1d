#include "lattice/crdt/list.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>

#include "lattice/common/assert.h"
#include "lattice/common/byte_codec.h"
#include "lattice/common/numbers.h"
#include "packed_bytes.h"

namespace lattice::crdt {
namespace {

using Wide = __int128;
constexpr Wide kBelowAll = Wide{std::numeric_limits<int64_t>::min()} - 1;
constexpr Wide kAboveAll = Wide{std::numeric_limits<int64_t>::max()} + 1;

// The flags in the low bits of an element's first varint (the replica index above them).
constexpr uint64_t kFlagPrefix = 1;    // digits before the last follow
constexpr uint64_t kFlagValueDot = 2;  // the value was written by its own dot (LSET)
constexpr uint64_t kFlagNextSeq = 4;   // the identity's sequence is the previous one's + 1
constexpr uint64_t kFlagSameHlc = 8;   // the HLC is the previous element's
constexpr uint64_t kFlagNextN = 16;    // the last digit's integer is the previous one's + 1
constexpr int kFlagBits = 5;

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
// Chunk buffers.

List::Chunk& List::Chunk::operator=(const Chunk& other) {
  if (this != &other) {
    data.reset();
    size = 0;
    capacity = 0;
    Append(other.bytes());
    count = other.count;
    listpack = other.listpack;
  }
  return *this;
}

void List::Chunk::Reallocate(size_t new_capacity) {
  auto grown = std::make_unique_for_overwrite<char[]>(new_capacity);
  if (size > 0) {
    std::memcpy(grown.get(), data.get(), size);
  }
  data = std::move(grown);
  capacity = static_cast<uint32_t>(new_capacity);
}

void List::Chunk::Append(std::string_view more) {
  const size_t needed = size + more.size();
  if (needed > capacity) {
    Reallocate(packed::Grown(needed, capacity, kChunkBytes));
  }
  std::memcpy(data.get() + size, more.data(), more.size());
  size = static_cast<uint32_t>(needed);
}

void List::Chunk::ReplaceFront(size_t length, std::string_view with) {
  LATTICE_ASSERT(length <= size);
  const size_t new_size = size - length + with.size();
  if (new_size > capacity) {
    Reallocate(packed::Grown(new_size, capacity, kChunkBytes));
  }
  std::memmove(data.get() + with.size(), data.get() + length, size - length);
  std::memcpy(data.get(), with.data(), with.size());
  size = static_cast<uint32_t>(new_size);
  if (capacity > 64 && size_t{size} * 2 < capacity) {
    Reallocate(packed::SizeClass(size));  // shrunk by pops: give the space back
  }
}

void List::Chunk::Truncate(size_t new_size) {
  LATTICE_ASSERT(new_size <= size);
  size = static_cast<uint32_t>(new_size);
  if (capacity > 64 && size_t{size} * 2 < capacity) {
    Reallocate(packed::SizeClass(size));
  }
}

// ---------------------------------------------------------------------------------------------
// Element coding.

namespace {

size_t BackLengthSize(size_t length) {
  size_t n = 1;
  while (length >= 0x80) {
    length >>= 7;
    ++n;
  }
  return n;
}

// One coded element as read: its fields before they are added to the previous element's.
struct Parsed {
  uint64_t flags = 0;
  uint64_t ref = 0;  // the identity's replica index
  std::vector<ListDigit> prefix;
  uint64_t dn = 0;
  uint64_t dseq = 0;
  uint64_t dhlc = 0;
  Dot value_dot;  // when kFlagValueDot
  std::string_view value;
  size_t end = 0;  // past the back length
};

ReplicaId ReplicaAt(const absl::InlinedVector<ReplicaId, 1>& replicas, uint64_t ref) {
  LATTICE_ASSERT(ref <= replicas.size());
  return ref == 0 ? kNoReplica : replicas[ref - 1];
}

// The element coded at `pos` (the chunk was coded by this list: asserted, not checked).
template <typename Replicas>
Parsed ParseAt(std::string_view bytes, size_t pos, const Replicas& replicas) {
  packed::CodedReader in(bytes, pos);
  Parsed p;
  const uint64_t head = in.Varint();
  p.flags = head & ((1U << kFlagBits) - 1);
  p.ref = head >> kFlagBits;
  if ((p.flags & kFlagPrefix) != 0) {
    const uint64_t count = in.Varint();
    LATTICE_ASSERT(count <= bytes.size());
    p.prefix.reserve(count);
    for (uint64_t i = 0; i < count; ++i) {
      const int64_t n = in.Zigzag();
      const ReplicaId r = ReplicaAt(replicas, in.Varint());
      p.prefix.push_back(ListDigit{n, Dot{r, in.Varint()}});
    }
  }
  p.dn = (p.flags & kFlagNextN) != 0 ? 1 : static_cast<uint64_t>(in.Zigzag());
  p.dseq = (p.flags & kFlagNextSeq) != 0 ? 1 : static_cast<uint64_t>(in.Zigzag());
  p.dhlc = (p.flags & kFlagSameHlc) != 0 ? 0 : static_cast<uint64_t>(in.Zigzag());
  if ((p.flags & kFlagValueDot) != 0) {
    const ReplicaId r = ReplicaAt(replicas, in.Varint());
    p.value_dot = Dot{r, in.Varint()};
  }
  p.value = in.Bytes();
  // The back length codes the element's size before it; a chunk's first element has none.
  const size_t length = in.pos();
  p.end = pos + length + (pos == 0 ? 0 : BackLengthSize(length));
  LATTICE_ASSERT(p.end <= bytes.size());
  return p;
}

// Where the element that ends at `end` starts, from its back length.
size_t StartBefore(std::string_view bytes, size_t end) {
  size_t length = 0;
  size_t at = end;
  int shift = 0;
  for (;;) {
    LATTICE_ASSERT(at > 0);
    const auto byte = static_cast<uint8_t>(bytes[--at]);
    length |= size_t{byte & 0x7Fu} << shift;
    shift += 7;
    if ((byte & 0x80) == 0) {
      break;
    }
  }
  LATTICE_ASSERT(length <= at);
  return at - length;
}

void PutBackLength(size_t length, std::string& out) {
  char groups[10];
  size_t n = 0;
  do {
    groups[n++] = static_cast<char>(length & 0x7F);
    length >>= 7;
  } while (length != 0);
  // Written most significant group first; every byte after the first has the high bit set.
  char bytes[10];
  for (size_t i = 0; i < n; ++i) {
    bytes[i] = static_cast<char>(groups[n - 1 - i] | (i > 0 ? 0x80 : 0));
  }
  out.append(bytes, n);
}

// Writes `value` as a varint at `at` (which has room for 10 bytes) and moves past it.
void PutVarint(char*& at, uint64_t value) {
  while (value >= 0x80) {
    *at++ = static_cast<char>((value & 0x7F) | 0x80);
    value >>= 7;
  }
  *at++ = static_cast<char>(value);
}

}  // namespace

namespace {

// The integers of a parsed element coded against `previous`, and the inverse: the previous
// element's integers from the element's own.
template <typename Base>
Base Apply(const Parsed& p, const Base& previous) {
  return Base{previous.n + p.dn, previous.seq + p.dseq, previous.hlc + p.dhlc};
}
template <typename Base>
Base Unapply(const Parsed& p, const Base& own) {
  return Base{own.n - p.dn, own.seq - p.dseq, own.hlc - p.dhlc};
}

}  // namespace

namespace {

// The element a parsed one is, given its integers.
template <typename Element, typename Base, typename Replicas>
Element Materialize(Parsed&& p, const Base& own, const Replicas& replicas) {
  const Dot id{ReplicaAt(replicas, p.ref), own.seq};
  return Element{ListPosition(std::move(p.prefix), ListDigit{static_cast<int64_t>(own.n), id}),
                 p.value, own.hlc, (p.flags & kFlagValueDot) != 0 ? p.value_dot : id};
}

// Decodes the elements of one chunk in order, calling f(element) until it returns false.
template <typename Element, typename Base, typename Replicas, typename F>
void ScanChunk(std::string_view bytes, const Replicas& replicas, F f) {
  Base base;
  for (size_t pos = 0; pos < bytes.size();) {
    Parsed p = ParseAt(bytes, pos, replicas);
    pos = p.end;
    base = Apply(p, base);
    if (!f(Materialize<Element>(std::move(p), base, replicas))) {
      return;
    }
  }
}

}  // namespace

#define LATTICE_SCAN(bytes, f) ScanChunk<Element, Base>((bytes), replicas_, (f))

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

void List::Code(const Element& element, const Base& previous, std::string& out, bool first) {
  const size_t start = out.size();
  const ListPosition& position = element.position;
  const Dot id = position.id();
  const size_t prefix = position.depth() - 1;
  const auto n = static_cast<uint64_t>(position.digit(prefix).n);
  const uint64_t flags =
      (prefix > 0 ? kFlagPrefix : 0) | (element.value_dot != id ? kFlagValueDot : 0) |
      (id.seq == previous.seq + 1 ? kFlagNextSeq : 0) |
      (element.hlc == previous.hlc ? kFlagSameHlc : 0) | (n == previous.n + 1 ? kFlagNextN : 0);
  // The fields go to a buffer first (at most 7 varints), then to `out` in one append.
  char fields[70];
  char* at = fields;
  PutVarint(at, (ReplicaIndex(id.replica) << kFlagBits) | flags);
  if (prefix > 0) {
    out.append(fields, static_cast<size_t>(at - fields));
    at = fields;
    ByteWriter w(out);
    w.Varint(prefix);
    for (size_t i = 0; i < prefix; ++i) {
      const ListDigit& digit = position.digit(i);
      w.Zigzag(digit.n);
      w.Varint(ReplicaIndex(digit.dot.replica));
      w.Varint(digit.dot.seq);
    }
  }
  if ((flags & kFlagNextN) == 0) {
    PutVarint(at, ZigzagEncode(Delta(n, previous.n)));
  }
  if ((flags & kFlagNextSeq) == 0) {
    PutVarint(at, ZigzagEncode(Delta(id.seq, previous.seq)));
  }
  if ((flags & kFlagSameHlc) == 0) {
    PutVarint(at, ZigzagEncode(Delta(element.hlc, previous.hlc)));
  }
  if ((flags & kFlagValueDot) != 0) {
    PutVarint(at, ReplicaIndex(element.value_dot.replica));
    PutVarint(at, element.value_dot.seq);
  }
  PutVarint(at, element.value.size());
  out.append(fields, static_cast<size_t>(at - fields));
  out.append(element.value);
  if (!first) {
    PutBackLength(out.size() - start, out);
  }
}

namespace {

// The integers an element is coded with.
template <typename Base, typename Element>
Base IntsOf(const Element& element) {
  return Base{static_cast<uint64_t>(element.position.digit(element.position.depth() - 1).n),
              element.position.id().seq, element.hlc};
}

// Scratch for coding one or two elements (kept between calls: no allocation per push or pop).
std::string& Scratch() {
  thread_local std::string scratch;
  scratch.clear();
  return scratch;
}

}  // namespace

void List::Decode(const Chunk& chunk, std::vector<Element>& out) const {
  out.reserve(out.size() + chunk.count);
  LATTICE_SCAN(chunk.bytes(), [&](Element element) {
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

void List::ResetTail() {
  tail_ = Base{};
  if (!chunks_.empty()) {
    LATTICE_SCAN(chunks_.back().bytes(), [&](const Element& element) {
      tail_ = IntsOf<Base>(element);
      return true;
    });
  }
}

void List::Splice(size_t at, size_t replace, const std::vector<Element>& elements) {
  // Code into new chunks first: the elements' values may point into the chunks replaced.
  const bool at_end = at + replace == chunks_.size();
  std::vector<Chunk> coded;
  std::string bytes;
  Base previous;
  auto close = [&] {
    coded.back().Append(bytes);
    bytes.clear();
  };
  for (const Element& element : elements) {
    const size_t before = bytes.size();
    if (!coded.empty()) {
      Code(element, previous, bytes);
    }
    if (coded.empty() || bytes.size() > kChunkBytes) {
      bytes.resize(before);
      if (!coded.empty()) {
        close();
      }
      coded.emplace_back();
      Code(element, Base{}, bytes, /*first=*/true);
    }
    ++coded.back().count;
    coded.back().listpack += static_cast<uint32_t>(ListpackEntryBytes(element.value));
    previous = IntsOf<Base>(element);
  }
  if (!coded.empty()) {
    close();
  }
  for (size_t i = at; i < at + replace; ++i) {
    size_ -= chunks_[i].count;
  }
  for (const Chunk& chunk : coded) {
    size_ += chunk.count;
  }
  chunks_.erase(chunks_.begin() + static_cast<ptrdiff_t>(at),
                chunks_.begin() + static_cast<ptrdiff_t>(at + replace));
  chunks_.insert(chunks_.begin() + static_cast<ptrdiff_t>(at),
                 std::make_move_iterator(coded.begin()), std::make_move_iterator(coded.end()));
  if (at_end) {
    if (!elements.empty()) {
      tail_ = previous;
    } else {
      ResetTail();
    }
  }
}

void List::PushBack(const Element& element) {
  std::string& bytes = Scratch();
  bool fresh = chunks_.empty();
  if (!fresh) {
    Code(element, tail_, bytes);
    fresh = chunks_.back().size + bytes.size() > kChunkBytes;
  }
  if (fresh) {
    bytes.clear();
    Code(element, Base{}, bytes, /*first=*/true);
    chunks_.emplace_back();
  }
  chunks_.back().Append(bytes);
  ++chunks_.back().count;
  chunks_.back().listpack += static_cast<uint32_t>(ListpackEntryBytes(element.value));
  ++size_;
  tail_ = IntsOf<Base>(element);
}

void List::PushFront(const Element& element) {
  if (chunks_.empty()) {
    PushBack(element);
    return;
  }
  size_t first_end = 0;
  const Element first = FrontElement(&first_end);
  PushFrontOf(element, first, first_end);
}

List::Element List::FrontElement(size_t* end) const {
  Parsed p = ParseAt(chunks_.front().bytes(), 0, replicas_);
  *end = p.end;
  const Base own = Apply(p, Base{});
  return Materialize<Element>(std::move(p), own, replicas_);
}

size_t List::PushFrontOf(const Element& element, const Element& first, size_t first_end) {
  std::string& bytes = Scratch();
  Code(element, Base{}, bytes, /*first=*/true);
  const size_t coded = bytes.size();
  // The old first element, coded against zero, is recoded against the new one.
  Code(first, IntsOf<Base>(element), bytes);
  Chunk& chunk = chunks_.front();
  const auto listpack = static_cast<uint32_t>(ListpackEntryBytes(element.value));
  if (chunk.size - first_end + bytes.size() > kChunkBytes) {
    Chunk fresh;  // the first chunk is full: a new one in front
    fresh.Append(std::string_view(bytes).substr(0, coded));
    fresh.count = 1;
    fresh.listpack = listpack;
    chunks_.insert(chunks_.begin(), std::move(fresh));
  } else {
    chunk.ReplaceFront(first_end, bytes);
    ++chunk.count;
    chunk.listpack += listpack;
  }
  ++size_;
  return coded;
}

namespace {

// Adds the dots of a parsed element whose integers are `own` to `covered`, if given.
template <typename Base, typename Replicas>
void CoverParsed(const Parsed& p, const Base& own, const Replicas& replicas, DotContext* covered) {
  if (covered != nullptr) {
    const Dot id{ReplicaAt(replicas, p.ref), own.seq};
    covered->Add(id);
    covered->Add((p.flags & kFlagValueDot) != 0 ? p.value_dot : id);
  }
}

}  // namespace

void List::PopFront(DotContext* covered) {
  LATTICE_ASSERT(size_ > 0);
  Chunk& chunk = chunks_.front();
  const Parsed first = ParseAt(chunk.bytes(), 0, replicas_);
  const Base first_own = Apply(first, Base{});
  CoverParsed(first, first_own, replicas_, covered);
  chunk.listpack -= static_cast<uint32_t>(ListpackEntryBytes(first.value));
  --size_;
  if (chunk.count == 1) {
    chunks_.erase(chunks_.begin());
    if (chunks_.empty()) {
      tail_ = Base{};
    }
    return;
  }
  // The second element is recoded against zero in place of the first two.
  Parsed second = ParseAt(chunk.bytes(), first.end, replicas_);
  const size_t second_end = second.end;
  const Base own = Apply(second, first_own);
  std::string& bytes = Scratch();
  Code(Materialize<Element>(std::move(second), own, replicas_), Base{}, bytes, /*first=*/true);
  chunk.ReplaceFront(second_end, bytes);
  --chunk.count;
}

void List::PopBack(DotContext* covered) {
  LATTICE_ASSERT(size_ > 0);
  Chunk& chunk = chunks_.back();
  const size_t start = chunk.count == 1 ? 0 : StartBefore(chunk.bytes(), chunk.size);
  const Parsed last = ParseAt(chunk.bytes(), start, replicas_);
  CoverParsed(last, tail_, replicas_, covered);
  chunk.listpack -= static_cast<uint32_t>(ListpackEntryBytes(last.value));
  --size_;
  if (chunk.count == 1) {
    chunks_.pop_back();
    ResetTail();
    return;
  }
  tail_ = Unapply(last, tail_);
  chunk.Truncate(start);
  --chunk.count;
}

List::Element List::FirstOf(size_t c) const {
  const std::string_view bytes = chunks_[c].bytes();
  Parsed p = ParseAt(bytes, 0, replicas_);
  const Base own = Apply(p, Base{});
  return Materialize<Element>(std::move(p), own, replicas_);
}

List::Element List::LastOf(size_t c) const {
  if (c + 1 == chunks_.size()) {
    const std::string_view bytes = chunks_[c].bytes();
    const size_t start = chunks_[c].count == 1 ? 0 : StartBefore(bytes, bytes.size());
    Parsed p = ParseAt(bytes, start, replicas_);
    return Materialize<Element>(std::move(p), tail_, replicas_);
  }
  std::optional<Element> last;
  LATTICE_SCAN(chunks_[c].bytes(), [&](Element element) {
    last = std::move(element);
    return true;
  });
  return std::move(*last);
}

List::Element List::First() const { return FirstOf(0); }
List::Element List::Last() const { return LastOf(chunks_.size() - 1); }

size_t List::ChunkFor(const ListPosition& position) const {
  // The last chunk whose first element is not after `position` (binary search).
  size_t low = 0;
  size_t high = chunks_.size();
  while (high - low > 1) {
    const size_t mid = low + (high - low) / 2;
    if (position < FirstOf(mid).position) {
      high = mid;
    } else {
      low = mid;
    }
  }
  return low;
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
  size_t bytes = (chunks_.capacity() > 1 ? chunks_.capacity() * sizeof(Chunk) : 0) +
                 (replicas_.capacity() > 1 ? replicas_.capacity() * sizeof(ReplicaId) : 0);
  for (const Chunk& chunk : chunks_) {
    bytes += chunk.capacity;
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Reads.

std::optional<std::string_view> List::At(size_t index) const {
  if (index >= size_) {
    return std::nullopt;
  }
  if (index == 0) {
    return First().value;
  }
  if (index + 1 == size_) {
    return Last().value;
  }
  // Not a structured binding: clang 14 does not let a lambda capture one.
  const std::pair<size_t, size_t> located = Locate(index);
  const size_t offset = located.second;
  std::string_view found;
  size_t at = 0;
  LATTICE_SCAN(chunks_[located.first].bytes(), [&](const Element& element) {
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
      LATTICE_SCAN(chunks_[c].bytes(), [&](const Element& element) {
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
  if (start == stop && (start == 0 || start + 1 == size_)) {
    out.emplace_back(start == 0 ? First().value : Last().value);
    return out;
  }
  auto [chunk, offset] = Locate(start);
  size_t index = start - offset;
  for (size_t c = chunk; c < chunks_.size() && index <= stop; ++c) {
    LATTICE_SCAN(chunks_[c].bytes(), [&](const Element& element) {
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
    LATTICE_SCAN(chunk.bytes(), [&](const Element& element) {
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
    neighbour = end == ListEnd::kHead ? First().position : Last().position;
  }
  List delta;
  for (const std::string& value : values) {
    const Dot dot = stamp.dots->Next();
    const ListPosition* near = neighbour ? &*neighbour : nullptr;
    ListPosition position = end == ListEnd::kHead ? PositionBetween(nullptr, near, dot)
                                                  : PositionBetween(near, nullptr, dot);
    const Element element{position, value, stamp.hlc, dot};
    end == ListEnd::kHead ? delta.PushFront(element) : delta.PushBack(element);
    neighbour = std::move(position);
    context.Add(dot);
  }
  return delta;
}

List List::InsertDelta(size_t index, bool before, std::string_view value, WriteStamp& stamp,
                       DotContext& context) const {
  const auto [chunk, offset] = Locate(index);
  std::vector<Element> elements;
  Decode(chunks_[chunk], elements);
  std::optional<Element> beside;  // the neighbour in the next or previous chunk
  const ListPosition* left = nullptr;
  const ListPosition* right = nullptr;
  if (before) {
    right = &elements[offset].position;
    if (offset > 0) {
      left = &elements[offset - 1].position;
    } else if (chunk > 0) {
      beside = LastOf(chunk - 1);
      left = &beside->position;
    }
  } else {
    left = &elements[offset].position;
    if (offset + 1 < elements.size()) {
      right = &elements[offset + 1].position;
    } else if (chunk + 1 < chunks_.size()) {
      beside = FirstOf(chunk + 1);
      right = &beside->position;
    }
  }
  const Dot dot = stamp.dots->Next();
  List delta;
  delta.PushBack(Element{PositionBetween(left, right, dot), value, stamp.hlc, dot});
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
  delta.PushBack(Element{elements[offset].position, value, stamp.hlc, dot});
  context.Add(dot);
  return delta;
}

List List::RemoveDelta(const std::vector<size_t>& indexes, DotContext& context,
                       std::vector<ListPosition>* removed) const {
  size_t decoded = chunks_.size();  // the chunk `elements` holds
  std::vector<Element> elements;
  auto remove = [&](const Element& element) {
    context.Add(element.position.id());
    context.Add(element.value_dot);
    if (removed != nullptr) {
      removed->push_back(element.position);
    }
  };
  for (size_t index : indexes) {
    if (index == 0 || index + 1 == size_) {
      remove(index == 0 ? First() : Last());  // the ends: no decode
      continue;
    }
    const auto [chunk, offset] = Locate(index);
    if (chunk != decoded) {
      elements.clear();
      Decode(chunks_[chunk], elements);
      decoded = chunk;
    }
    remove(elements[offset]);
  }
  return List{};
}

List List::PushLocal(ListEnd end, const std::vector<std::string>& values, WriteStamp& stamp,
                     DotContext& context) {
  // The element each new one goes next to: the current end, then the previous new element.
  // For the head, first_end is the coded length of the first element of the first chunk.
  std::optional<Element> neighbour;
  size_t first_end = 0;
  if (!chunks_.empty()) {
    neighbour = end == ListEnd::kHead ? FrontElement(&first_end) : Last();
  }
  List delta;
  for (const std::string& value : values) {
    const Dot dot = stamp.dots->Next();
    const ListPosition* near = neighbour ? &neighbour->position : nullptr;
    Element element{end == ListEnd::kHead ? PositionBetween(nullptr, near, dot)
                                          : PositionBetween(near, nullptr, dot),
                    value, stamp.hlc, dot};
    if (end == ListEnd::kTail) {
      delta.PushBack(element);
      PushBack(element);
    } else {
      delta.PushFront(element);
      if (neighbour) {
        first_end = PushFrontOf(element, *neighbour, first_end);
      } else {
        PushBack(element);
        first_end = chunks_.front().size;
      }
    }
    context.Add(dot);
    neighbour = std::move(element);
  }
  return delta;
}

void List::RemoveLocal(const std::vector<size_t>& indexes, DotContext& context) {
  if (indexes.empty()) {
    return;
  }
  const size_t k = indexes.size();
  LATTICE_ASSERT(indexes.back() < size_);
  if (indexes.back() == k - 1) {  // sorted and distinct: exactly the first k
    for (size_t i = 0; i < k; ++i) {
      PopFront(&context);
    }
  } else if (indexes.front() == size_ - k) {  // exactly the last k
    for (size_t i = 0; i < k; ++i) {
      PopBack(&context);
    }
  } else {
    std::vector<ListPosition> removed;
    RemoveDelta(indexes, context, &removed);
    JoinDelta(List{}, context, context, removed);
  }
}

void List::CollectDots(DotContext& out) const {
  for (const Chunk& chunk : chunks_) {
    LATTICE_SCAN(chunk.bytes(), [&](const Element& element) {
      out.Add(element.position.id());
      out.Add(element.value_dot);
      return true;
    });
  }
}

void List::ScanDotsFromEnds(absl::FunctionRef<bool(const ListPosition&, Dot)> f) const {
  if (chunks_.empty()) {
    return;
  }
  auto visit = [&](const Element& element) {
    return f(element.position, element.position.id()) ||
           (element.value_dot != element.position.id() && f(element.position, element.value_dot));
  };
  // The end elements first, in O(1): what a remote pop removed.
  if (visit(First()) || (size_ > 1 && visit(Last()))) {
    return;
  }
  bool done = false;
  auto scan = [&](size_t c) {
    const bool first_chunk = c == 0;
    const bool last_chunk = c + 1 == chunks_.size();
    size_t at = 0;
    LATTICE_SCAN(chunks_[c].bytes(), [&](const Element& element) {
      const bool end = (first_chunk && at == 0) || (last_chunk && at + 1 == chunks_[c].count);
      ++at;
      done = !end && visit(element);
      return !done;
    });
  };
  size_t head = 0;
  size_t tail = chunks_.size();
  while (head < tail && !done) {
    scan(head++);
    if (head < tail && !done) {
      scan(--tail);
    }
  }
}

void List::ForEachDotAt(const ListPosition& position, absl::FunctionRef<void(Dot)> f) const {
  if (chunks_.empty()) {
    return;
  }
  auto take = [&](const Element& element) {
    f(element.position.id());
    if (element.value_dot != element.position.id()) {
      f(element.value_dot);
    }
  };
  if (const Element last = Last(); last.position == position) {
    take(last);  // a pop at the tail: no scan
    return;
  }
  LATTICE_SCAN(chunks_[ChunkFor(position)].bytes(), [&](const Element& element) {
    if (element.position == position) {
      take(element);
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

// Removes the element at `position` if the list holds it: O(1) at the ends.
void List::RemoveAt(const ListPosition& position) {
  if (chunks_.empty()) {
    return;
  }
  if (First().position == position) {
    PopFront();
    return;
  }
  if (Last().position == position) {
    PopBack();
    return;
  }
  const size_t chunk = ChunkFor(position);
  std::vector<Element> elements;
  Decode(chunks_[chunk], elements);
  auto found = std::find_if(elements.begin(), elements.end(),
                            [&](const Element& e) { return e.position == position; });
  if (found != elements.end()) {
    elements.erase(found);
    Splice(chunk, 1, elements);
  }
}

// Joins one element of a delta: O(1) when it goes before or after every element.
void List::JoinElement(const Element& element, const DotContext& mine) {
  if (chunks_.empty() || Last().position < element.position) {
    if (!mine.Contains(element.position.id())) {
      PushBack(element);
    }
    return;
  }
  if (element.position < First().position) {
    if (!mine.Contains(element.position.id())) {
      PushFront(element);
    }
    return;
  }
  const size_t chunk = ChunkFor(element.position);
  std::vector<Element> elements;
  Decode(chunks_[chunk], elements);
  auto at =
      std::lower_bound(elements.begin(), elements.end(), element.position,
                       [](const Element& e, const ListPosition& p) { return e.position < p; });
  if (at != elements.end() && at->position == element.position) {
    if (element.stamp() <= at->stamp()) {
      return;
    }
    *at = element;
  } else if (mine.Contains(element.position.id())) {
    return;
  } else {
    elements.insert(at, element);
  }
  Splice(chunk, 1, elements);
}

void List::JoinDelta(const List& delta, const DotContext& mine, const DotContext& theirs,
                     const std::vector<ListPosition>& removed) {
  auto in_delta = [&delta](const ListPosition& position) {
    if (delta.chunks_.empty()) {
      return false;
    }
    bool found = false;
    ScanChunk<Element, Base>(delta.chunks_[delta.ChunkFor(position)].bytes(), delta.replicas_,
                             [&](const Element& element) {
                               found = element.position == position;
                               return !found && element.position < position;
                             });
    return found;
  };
  // Ascending positions, taken from the tail when they end there (RPOP of several): each is
  // then the last element when its turn comes, an O(1) removal.
  const bool from_tail =
      removed.size() > 1 && !chunks_.empty() && Last().position == removed.back();
  for (size_t i = 0; i < removed.size(); ++i) {
    const ListPosition& position = removed[from_tail ? removed.size() - 1 - i : i];
    if (theirs.Contains(position.id()) && !in_delta(position)) {
      RemoveAt(position);
    }
  }
  for (const Chunk& chunk : delta.chunks_) {
    ScanChunk<Element, Base>(chunk.bytes(), delta.replicas_, [&](const Element& element) {
      JoinElement(element, mine);
      return true;
    });
  }
}

size_t ListpackEntryBytes(std::string_view element) {
  size_t bytes = 0;
  const std::optional<int64_t> integer =
      element.size() <= 20 ? ParseInt64Strict(element) : std::nullopt;
  if (integer.has_value()) {
    const int64_t n = *integer;
    bytes = n >= 0 && n <= 127                 ? 1
            : n >= -4096 && n <= 4095          ? 2
            : n >= INT16_MIN && n <= INT16_MAX ? 3
            : n >= -(1 << 23) && n < (1 << 23) ? 4
            : n >= INT32_MIN && n <= INT32_MAX ? 5
                                               : 9;
  } else {
    bytes = element.size() + (element.size() < 64 ? 1 : element.size() < 4096 ? 2 : 5);
  }
  return bytes + (bytes < 128 ? 1 : bytes < 16384 ? 2 : bytes < 2097152 ? 3 : 5);
}

size_t List::ListpackBytes() const {
  size_t bytes = 7;  // header and terminator
  for (const Chunk& chunk : chunks_) {
    bytes += chunk.listpack;
  }
  return bytes;
}

bool List::Passes(size_t count_limit, size_t bytes_limit) const {
  // Every listpack entry takes at least 2 bytes: a bound before the chunks are summed.
  return size_ > count_limit || 7 + 2 * size_ > bytes_limit || ListpackBytes() > bytes_limit;
}

void List::SettleEncoding(const ListpackLimits& limits) {
  if (quicklist_ == 0) {
    quicklist_ = Passes(limits.count, limits.bytes) ? 1 : 0;
    return;
  }
  // Back to a listpack within half the limits. A count limit (Valkey: a size limit of
  // SIZE_MAX, with its 8 KB safety limit only on growth) halves the count alone.
  const bool by_count = limits.count != SIZE_MAX;
  if (!Passes(limits.count / 2, by_count ? SIZE_MAX : limits.bytes / 2)) {
    quicklist_ = 0;
  }
}

bool List::Quicklist(const ListpackLimits& limits) const {
  return quicklist_ != 0 || Passes(limits.count, limits.bytes);
}

bool List::AppendForDecode(const ListPosition& position, const ListValue& value) {
  if (!chunks_.empty() && !(Last().position < position)) {
    return false;
  }
  PushBack(Element{position, value.value, value.hlc, value.dot});
  return true;
}

#undef LATTICE_SCAN

}  // namespace lattice::crdt
