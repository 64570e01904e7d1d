// The local mutators of Key: each checks the type, builds its delta in steps and returns the op.
#include "key_write.h"

#include <algorithm>
#include <functional>
#include <optional>

#include "lattice/common/assert.h"
#include "lattice/crdt/key.h"
#include "lattice/crdt/numeric.h"

namespace lattice::crdt {

const KeyRest& KeyWrite::rest() const {
  static const KeyRest kEmpty{};
  return key_.rest_.get() != nullptr ? *key_.rest_.get() : kEmpty;
}

namespace {

// The items sorted and without repeats, to iterate: the items themselves when they already are
// (one element, or a sorted list), else a sorted copy without repeats. Returned as a prvalue
// and never moved, so `items_` can point at `copy_`.
class Distinct {
 public:
  explicit Distinct(const std::vector<std::string>& items) : items_(&items) {
    if (std::adjacent_find(items.begin(), items.end(), std::greater_equal<>()) != items.end()) {
      copy_ = items;
      std::sort(copy_.begin(), copy_.end());
      copy_.erase(std::unique(copy_.begin(), copy_.end()), copy_.end());
      items_ = &copy_;
    }
  }
  Distinct(const Distinct&) = delete;
  Distinct& operator=(const Distinct&) = delete;
  auto begin() const { return items_->begin(); }
  auto end() const { return items_->end(); }

 private:
  const std::vector<std::string>* items_;
  std::vector<std::string> copy_;
};

thread_local bool generic_writes = false;

// In-place local writes. Each applies where the generic path (Prepare, then one Step per
// element) would only replace whole plain elements: the key holds a visible object of `type`
// and nothing else (no string cell, no part of another type), so Prepare steps nothing, and
// each element it writes holds nothing its delta does not observe (a set member: anything; a
// hash field: a value without concurrent entries, counters or TTL; a zset member: a score cell
// without concurrent entries or counters, and no token). Joining such a step's delta replaces
// the element by the delta's, changes nothing else, and adds exactly the observed dots and the
// new one to the shard's and the op's contexts: that is what these paths do directly. The
// property tests in tests/crdt/in_place_write_test.cc hold them to the generic path.
class InPlace {
 public:
  // Nullopt when the key does not qualify (see above), the write names no element (the
  // generic path gives such an op an identity dot) or generic writes are forced.
  static std::optional<InPlace> Begin(Key& key, ObjectType type, size_t elements,
                                      const Writer& writer, DotContext& shard) {
    const KeyRest* rest = key.rest();
    if (generic_writes || elements == 0 || rest == nullptr || !key.string().empty() ||
        rest->has_hash() != (type == ObjectType::kHash) ||
        rest->has_set() != (type == ObjectType::kSet) ||
        rest->has_zset() != (type == ObjectType::kZSet) ||
        rest->has_list() != (type == ObjectType::kList) ||
        rest->has_stream() != (type == ObjectType::kStream) || rest->has_chunks() ||
        key.TypeAt(writer.now_ms) != type) {
      return std::nullopt;
    }
    return InPlace(key, writer, shard);
  }

  KeyRest& rest() { return KeyWrite::RestOf(key_); }
  KeyRest& delta() { return KeyWrite::RestOf(op_.delta); }
  WriteStamp& stamp() { return stamp_; }
  // Records a dot the write observed or took, in the shard's and the op's contexts.
  void Cover(Dot dot) {
    shard_.Add(dot);
    op_.context.Add(dot);
  }
  DotContext& shard() { return shard_; }
  DotContext& op_context() { return op_.context; }
  KeyOp Finish() {
    op_.dot_count = stamp_.dots->next_seq() - op_.first_dot.seq;
    return std::move(op_);
  }

 private:
  InPlace(Key& key, const Writer& writer, DotContext& shard)
      : key_(key), shard_(shard), stamp_{writer.dots, writer.hlc} {
    op_.policies = writer.policies;
    op_.hlc = writer.hlc;
    op_.first_dot = Dot{writer.dots->replica(), writer.dots->next_seq()};
  }

  Key& key_;
  DotContext& shard_;
  WriteStamp stamp_;
  KeyOp op_;
};

// A register the in-place paths may replace outright: one plain entry or none.
template <typename V>
bool Plain(const Register<V>& cell) {
  return cell.rest() == nullptr;
}

// The new cell of a plain element: the observed entry's dot and the new one covered.
template <typename V>
Register<V> Reassign(InPlace& write, const Register<V>& current, V value) {
  current.ForEachDot([&](Dot dot) { write.shard().Add(dot); });
  Register<V> cell = current.AssignDelta(std::move(value), write.stamp(), write.op_context());
  write.shard().Add(cell.Winner()->dot);
  return cell;
}

// A step that only changes the key-level expiry.
void StepExpiry(KeyWrite& write, int64_t at_ms, ExpiryRule rule) {
  DotContext context;
  Key piece;
  KeyWrite::RestOf(piece).mutable_expiry() =
      write.rest().expiry().AssignDelta(ExpiryValue{at_ms, rule}, write.stamp(), context);
  write.Step(std::move(piece), context);
}

void StepClearExpiry(KeyWrite& write) {
  DotContext context;
  write.rest().expiry().CollectDots(context);
  if (!context.vector().entries().empty() || !context.cloud().empty()) {
    write.Step(Key{}, context);
  }
}

}  // namespace

Result<KeyOp> Key::Set(std::string value, bool keep_ttl, std::optional<int64_t> expire_at_ms,
                       const Writer& writer, DotContext& shard) {
  KeyWrite write(*this, writer, shard);
  const bool keep = keep_ttl && TypeAt(writer.now_ms) != ObjectType::kNone;
  if (TypeAt(writer.now_ms) != ObjectType::kString) {
    DotContext context;
    Key piece = RemoveAllDelta(keep, write.stamp(), context);
    write.Step(std::move(piece), context);
  }
  DotContext context;
  Key piece;
  piece.string_ = string_.AssignDelta(std::move(value), write.stamp(), context);
  if (HasChunks()) {
    // A whole-value write observes every chunk and resets every field counter.
    BitChunks reset = rest_.get()->chunks().RemoveDelta(write.stamp(), context);
    if (!reset.empty()) piece.MutableRest().mutable_chunks() = std::move(reset);
  }
  write.Step(std::move(piece), context);
  if (!keep) {
    StepClearExpiry(write);
  }
  if (expire_at_ms) {
    StepExpiry(write, *expire_at_ms, writer.policies.expiry);
  }
  return write.Finish();
}

namespace {

// Runs a delta builder on a copy of the writer's dot source and a scratch context, so that a
// refusal only the builder can see (a replica's increment total would overflow, a NaN score) is
// returned before KeyWrite takes a dot or steps the key: a refused command changes nothing and
// leaves no gap in this replica's sequence numbers.
template <typename Fn>
Result<void> Probe(const Writer& writer, Fn build) {
  DotSource dots(writer.dots->replica(), writer.dots->next_seq());
  WriteStamp stamp{&dots, writer.hlc};
  DotContext context;
  if (auto check = build(stamp, context); !check.ok()) {
    return Unexpected(check.error());
  }
  return {};
}

Result<KeyOp> Increment(Key& key, int64_t by, long double float_by, bool is_float,
                        const Writer& writer, DotContext& shard) {
  const ObjectType type = key.TypeAt(writer.now_ms);
  if (type != ObjectType::kNone && type != ObjectType::kString) {
    return Unexpected(ErrorCode::kWrongType);
  }
  // Validate before any step: a refused command changes nothing.
  const auto current = type == ObjectType::kNone ? std::nullopt : RenderString(key.string());
  if (key.HasChunks()) {
    // The value read is the base with chunks laid over it, which no counter can add to: the
    // increment is a read-modify-write SET of the whole new value (keeping the TTL).
    auto next = NextCounterValue(key.GetString(writer.now_ms), by, float_by, is_float);
    if (!next.ok()) {
      return Unexpected(next.error());
    }
    return key.Set(std::move(*next), /*keep_ttl=*/true, std::nullopt, writer, shard);
  }
  if (auto next = NextCounterValue(current, by, float_by, is_float); !next.ok()) {
    return Unexpected(next.error());
  }
  if (auto probe = Probe(writer,
                         [&](WriteStamp& stamp, DotContext& context) {
                           return IncrementDelta(key.string(), by, float_by, is_float,
                                                 writer.policies.string, stamp, context);
                         });
      !probe.ok()) {
    return Unexpected(probe.error());
  }
  KeyWrite write(key, writer, shard);
  if (auto ready = write.Prepare(ObjectType::kString); !ready.ok()) {
    return Unexpected(ready.error());
  }
  DotContext context;
  auto cell = IncrementDelta(key.string(), by, float_by, is_float, writer.policies.string,
                             write.stamp(), context);
  if (!cell.ok()) {
    return Unexpected(cell.error());
  }
  Key piece;
  KeyWrite::StringOf(piece) = std::move(*cell);
  write.Step(std::move(piece), context);
  return write.Finish();
}

}  // namespace

Result<KeyOp> Key::IncrBy(int64_t by, const Writer& writer, DotContext& shard) {
  return Increment(*this, by, 0, false, writer, shard);
}

namespace {

// The integer INCRBY `by` gives from `cell` (absent: 0), or Valkey's error: from the cell's
// numbers when CounterInt knows them, else by parsing the rendered text.
Result<int64_t> NextCounterInt(const StringCell& cell, int64_t by) {
  std::optional<Result<int64_t>> current = CounterInt(cell);
  if (!current.has_value()) {
    Result<std::string> next = NextCounterValue(RenderString(cell), by, 0, false);
    if (!next.ok()) {
      return Unexpected(next.error());
    }
    return *ParseInt64(*next);  // NextCounterValue prints an int64
  }
  if (!current->ok()) {
    return Unexpected(current->error());
  }
  int64_t next = 0;
  if (__builtin_add_overflow(**current, by, &next)) {
    return Unexpected(ErrorCode::kOverflow);
  }
  return next;
}

// shard.Join(op_context) for a local op's context: every dot it holds but `fresh` is one the
// key held, so the shard (which covers the key's dots) already has it, and `fresh` extends this
// replica's prefix. Falls back to the join if that does not hold.
void JoinLocalContext(DotContext& shard, const DotContext& op_context, Dot fresh) {
  if (!op_context.Contains(fresh)) {
    shard.Join(op_context);
    return;
  }
  for (const auto& [replica, seq] : op_context.vector().entries()) {
    const uint64_t have = shard.vector().Get(replica);
    const bool fresh_extends = replica == fresh.replica && seq == fresh.seq && have + 1 >= seq;
    if (have < seq && !fresh_extends) {
      shard.Join(op_context);
      return;
    }
  }
  for (const Dot& dot : op_context.cloud()) {
    if (dot != fresh && !shard.Contains(dot)) {
      shard.Join(op_context);
      return;
    }
  }
  shard.Add(fresh);
}

}  // namespace

Result<KeyOp> Key::IncrByInPlace(int64_t by, const Writer& writer, DotContext& shard,
                                 std::optional<int64_t>* expected) {
  LATTICE_ASSERT(PlainIncrementable(writer.now_ms));
  Result<int64_t> next = NextCounterInt(string_, by);
  if (!next.ok()) {
    return Unexpected(next.error());
  }
  if (expected != nullptr) {
    *expected = *next;
  }
  KeyOp op;
  op.policies = writer.policies;
  op.hlc = writer.hlc;
  op.first_dot = Dot{writer.dots->replica(), writer.dots->next_seq()};
  WriteStamp stamp{writer.dots, writer.hlc};
  if (writer.policies.string == StringRule::kLww) {
    // A read-modify-write SET: the new entry observes every dot of the cell, so the join of its
    // delta leaves the delta alone.
    op.delta.string_ = string_.AssignDelta(std::to_string(*next), stamp, op.context);
    string_ = op.delta.string_;
  } else {
    Result<StringCell> delta = string_.IncrementInPlace(by, 0, stamp, op.context);
    if (!delta.ok()) {
      return Unexpected(delta.error());
    }
    op.delta.string_ = std::move(*delta);
  }
  JoinLocalContext(shard, op.context, op.first_dot);
  op.dot_count = 1;
  return op;
}

Result<KeyOp> Key::IncrByFloat(long double by, const Writer& writer, DotContext& shard) {
  return Increment(*this, 0, by, true, writer, shard);
}

namespace {

const BitChunks& ChunksOf(const Key& key) {
  static const BitChunks kNoChunks{};
  return key.HasChunks() ? key.rest()->chunks() : kNoChunks;
}

// Whether a bitmap write may skip KeyWrite: the key is a live string with no collection part, so
// Prepare steps nothing and a step's context covers only dots of what its delta replaces.
bool BitmapWriteInPlace(const Key& key, int64_t now_ms) {
  const KeyRest* rest = key.rest();
  return !GenericWritesForced() && key.TypeAt(now_ms) == ObjectType::kString &&
         (rest == nullptr || !(rest->has_hash() || rest->has_set() || rest->has_zset() ||
                               rest->has_list() || rest->has_stream()));
}

KeyOp BeginBitmapOp(const Writer& writer) {
  KeyOp op;
  op.policies = writer.policies;
  op.hlc = writer.hlc;
  op.first_dot = Dot{writer.dots->replica(), writer.dots->next_seq()};
  return op;
}

// Whether a bitmap write of chunks [first, last] is a whole-value write: it would leave more than
// kChunksMax chunks, or reach past kChunkIndexEnd.
bool BitmapWriteIsWhole(const Key& key, uint64_t first, uint64_t last) {
  if (last >= kChunkIndexEnd) return true;
  const BitChunks& chunks = ChunksOf(key);
  size_t count = chunks.size();
  for (uint64_t index = first; index <= last && count <= kChunksMax; ++index) {
    count += chunks.Contains(index) ? 0 : 1;
  }
  return count > kChunksMax;
}

// The chunk write of chunks [first, last]: each chunk's entry is its bytes in `window` (the new
// value's bytes from chunk `first` on, cut at the value's end).
Result<KeyOp> WriteBitmapChunks(Key& key, std::string_view window, uint64_t first, uint64_t last,
                                const Writer& writer, DotContext& shard) {
  KeyWrite write(key, writer, shard);
  if (auto ready = write.Prepare(ObjectType::kString); !ready.ok()) {
    return Unexpected(ready.error());
  }
  for (uint64_t index = first; index <= last; ++index) {
    const size_t at = static_cast<size_t>(index - first) * kChunkBytes;
    DotContext context;
    Key piece;
    KeyWrite::RestOf(piece).mutable_chunks() = ChunksOf(key).AssignDelta(
        index, std::string(window.substr(at, kChunkBytes)), write.stamp(), context);
    write.Step(std::move(piece), context, TouchedNames{});
  }
  return write.Finish();
}

// WriteBitmapChunks in place, when the generic path's steps would only replace the written
// chunks' registers: the key is a live string with no collection part (Prepare steps nothing) and
// each chunk written PlainChunk (its AssignDelta observes everything it holds and resets no
// counter), so each step's join replaces that chunk's register by the delta's, changes nothing
// else (the context covers that chunk's dots and the new dot only: the string cell, the other
// chunks, the counters and the expiry stay) and adds exactly those dots to the shard's and the
// op's contexts. Nullopt, with nothing changed, when the key does not qualify.
// tests/crdt/bitmap_window_test.cc holds it to the generic path (state, contexts, op).
std::optional<KeyOp> WriteBitmapChunksInPlace(Key& key, std::string_view window, uint64_t first,
                                              uint64_t last, const Writer& writer,
                                              DotContext& shard) {
  if (!BitmapWriteInPlace(key, writer.now_ms)) {
    return std::nullopt;
  }
  for (uint64_t index = first; index <= last; ++index) {
    if (!ChunksOf(key).PlainChunk(index)) return std::nullopt;
  }
  KeyOp op = BeginBitmapOp(writer);
  WriteStamp stamp{writer.dots, writer.hlc};
  BitChunks& chunks = KeyWrite::RestOf(key).mutable_chunks();
  BitChunks& delta = KeyWrite::RestOf(op.delta).mutable_chunks();
  for (uint64_t index = first; index <= last; ++index) {
    const size_t at = static_cast<size_t>(index - first) * kChunkBytes;
    BitChunks::Cell cell =
        chunks.AssignInPlace(index, window.substr(at, kChunkBytes), stamp, op.context);
    delta.Put(index, std::move(cell));
  }
  shard.Join(op.context);
  op.dot_count = writer.dots->next_seq() - op.first_dot.seq;
  return op;
}

}  // namespace

Result<KeyOp> Key::WriteBitmap(std::string value, size_t first_byte, size_t end_byte,
                               const Writer& writer, DotContext& shard) {
  LATTICE_ASSERT(first_byte < end_byte && end_byte <= value.size());
  const ObjectType type = TypeAt(writer.now_ms);
  if (type != ObjectType::kNone && type != ObjectType::kString) {
    return Unexpected(ErrorCode::kWrongType);
  }
  const uint64_t first = first_byte / kChunkBytes;
  const uint64_t last = (end_byte - 1) / kChunkBytes;
  if (BitmapWriteIsWhole(*this, first, last)) {
    return Set(std::move(value), /*keep_ttl=*/true, std::nullopt, writer, shard);
  }
  const std::string_view window = std::string_view(value).substr(first * kChunkBytes);
  return WriteBitmapChunks(*this, window, first, last, writer, shard);
}

Result<KeyOp> Key::WriteBitmapWindow(std::string_view window, size_t window_begin, size_t size,
                                     size_t first_byte, size_t end_byte, const Writer& writer,
                                     DotContext& shard) {
  const uint64_t first = first_byte / kChunkBytes;
  const uint64_t last = (end_byte - 1) / kChunkBytes;
  LATTICE_ASSERT(first_byte < end_byte && end_byte <= size && window_begin == first * kChunkBytes &&
                 window_begin + window.size() ==
                     std::min(static_cast<size_t>(last + 1) * kChunkBytes, size));
  const ObjectType type = TypeAt(writer.now_ms);
  if (type != ObjectType::kNone && type != ObjectType::kString) {
    return Unexpected(ErrorCode::kWrongType);
  }
  if (BitmapWriteIsWhole(*this, first, last)) {
    // The whole new value: the current one grown to `size`, with the window laid over it.
    std::string value = GetString(writer.now_ms).value_or(std::string());
    value.resize(size, '\0');
    value.replace(window_begin, window.size(), window);
    return Set(std::move(value), /*keep_ttl=*/true, std::nullopt, writer, shard);
  }
  if (std::optional<KeyOp> op =
          WriteBitmapChunksInPlace(*this, window, first, last, writer, shard)) {
    return std::move(*op);
  }
  return WriteBitmapChunks(*this, window, first, last, writer, shard);
}

namespace {

// IncrBitFields in place: each increment's step joins into the key and the op exactly its one
// counter (its context covers that counter's chain and the new dot only), which
// BitChunks::JoinCounter does without the generic step's walk of every chunk and counter. The op's
// context stands for each step's: what it holds besides the step's dots are dots of the other
// fields this BITFIELD incremented, which no dot of this counter is. In the op's delta the
// step's counter replaces the field's (the previous step's total of the same chain, if any).
KeyOp IncrBitFieldsInPlace(Key& key, const std::vector<std::pair<BitField, uint64_t>>& increments,
                           const Writer& writer, DotContext& shard) {
  KeyOp op = BeginBitmapOp(writer);
  WriteStamp stamp{writer.dots, writer.hlc};
  BitChunks& chunks = KeyWrite::RestOf(key).mutable_chunks();
  BitChunks& delta = KeyWrite::RestOf(op.delta).mutable_chunks();
  for (const auto& [field, by] : increments) {
    LATTICE_ASSERT(field.Valid());
    BitChunks::Counter cell = chunks.IncrementCounter(field, by, stamp, op.context);
    chunks.JoinCounter(field, cell, shard, op.context);
    shard.Add(cell.rest()->incs.front().dot);  // the new total's; the shard has the old one's
    delta.PutCounter(field, std::move(cell));
  }
  op.dot_count = writer.dots->next_seq() - op.first_dot.seq;
  return op;
}

}  // namespace

Result<KeyOp> Key::IncrBitFields(const std::vector<std::pair<BitField, uint64_t>>& increments,
                                 const Writer& writer, DotContext& shard) {
  const ObjectType type = TypeAt(writer.now_ms);
  if (type != ObjectType::kNone && type != ObjectType::kString) {
    return Unexpected(ErrorCode::kWrongType);
  }
  if (!increments.empty() && BitmapWriteInPlace(*this, writer.now_ms)) {
    return IncrBitFieldsInPlace(*this, increments, writer, shard);
  }
  KeyWrite write(*this, writer, shard);
  if (auto ready = write.Prepare(ObjectType::kString); !ready.ok()) {
    return Unexpected(ready.error());
  }
  for (const auto& [field, by] : increments) {
    LATTICE_ASSERT(field.Valid());
    DotContext context;
    Key piece;
    piece.MutableRest().mutable_chunks() =
        ChunksOf(*this).IncrementDelta(field, by, write.stamp(), context);
    write.Step(std::move(piece), context, TouchedNames{});
  }
  return write.Finish();
}

std::optional<KeyOp> Key::Del(const Writer& writer, DotContext& shard) {
  if (empty()) {
    return std::nullopt;
  }
  KeyWrite write(*this, writer, shard);
  DotContext context;
  Key piece = RemoveAllDelta(false, write.stamp(), context);
  write.Step(std::move(piece), context);
  return write.Finish();
}

Result<KeyOp> Key::Expire(int64_t at_ms, const Writer& writer, DotContext& shard) {
  if (TypeAt(writer.now_ms) == ObjectType::kNone) {
    return Unexpected(ErrorCode::kNoSuchKey);
  }
  KeyWrite write(*this, writer, shard);
  StepExpiry(write, at_ms, writer.policies.expiry);
  return write.Finish();
}

void SetGenericWritesForTesting(bool generic) { generic_writes = generic; }
bool GenericWritesForced() { return generic_writes; }

Result<KeyOp> Key::SAdd(const std::vector<std::string>& members, const Writer& writer,
                        DotContext& shard, size_t* added) {
  size_t new_members = 0;
  if (auto in_place = InPlace::Begin(*this, ObjectType::kSet, members.size(), writer, shard)) {
    OrSet& set = in_place->rest().mutable_set();
    OrSet& out = in_place->delta().mutable_set();
    for (const std::string& member : Distinct(members)) {
      bool was_present = false;
      const Dot dot = set.PutObserving(
          member, [&](Dot old) { in_place->Cover(old); },
          [&] { return in_place->stamp().dots->Next(); }, &was_present);
      new_members += was_present ? 0 : 1;
      in_place->Cover(dot);
      out.Put(member, dot);
    }
    if (added != nullptr) *added = new_members;
    return in_place->Finish();
  }
  const bool visible = TypeAt(writer.now_ms) == ObjectType::kSet;
  KeyWrite write(*this, writer, shard);
  if (auto ready = write.Prepare(ObjectType::kSet); !ready.ok()) {
    return Unexpected(ready.error());
  }
  for (const std::string& member : Distinct(members)) {
    new_members += visible && set().Contains(member) ? 0 : 1;
    DotContext context;
    Key piece;
    piece.MutableRest().mutable_set() = set().AddDelta(member, write.stamp(), context);
    write.Step(std::move(piece), context, TouchedNames{.set = {member}});
  }
  if (added != nullptr) *added = new_members;
  return write.Finish();
}

Result<KeyOp> Key::SRem(const std::vector<std::string>& members, const Writer& writer,
                        DotContext& shard) {
  const ObjectType type = TypeAt(writer.now_ms);
  if (type != ObjectType::kNone && type != ObjectType::kSet) {
    return Unexpected(ErrorCode::kWrongType);
  }
  KeyWrite write(*this, writer, shard);
  for (const std::string& member : Distinct(members)) {
    if (type == ObjectType::kNone || !set().Contains(member)) {
      continue;
    }
    DotContext context;
    Key piece;
    piece.MutableRest().mutable_set() =
        set().RemoveDelta(member, writer.policies.set, write.stamp(), context);
    write.Step(std::move(piece), context, TouchedNames{.set = {member}});
  }
  return write.Finish();
}

Result<KeyOp> Key::HSet(const std::string& field, std::string value, bool keep_ttl,
                        const Writer& writer, DotContext& shard) {
  std::vector<std::pair<std::string, std::string>> pairs;
  pairs.emplace_back(field, std::move(value));
  return HSetMany(std::move(pairs), keep_ttl, writer, shard);
}

Result<KeyOp> Key::HSetMany(std::vector<std::pair<std::string, std::string>> pairs, bool keep_ttl,
                            const Writer& writer, DotContext& shard) {
  auto in_place = InPlace::Begin(*this, ObjectType::kHash, pairs.size(), writer, shard);
  if (in_place && std::all_of(pairs.begin(), pairs.end(), [&](const auto& pair) {
        const FieldNode* found = hash().Find(pair.first);
        return found == nullptr || found->Plain().has_value();
      })) {
    // What Reassign does to a plain field (no TTL to clear), on the packed node directly.
    OrHash& fields = in_place->rest().mutable_hash();
    OrHash& out = in_place->delta().mutable_hash();
    const uint64_t hlc = in_place->stamp().hlc;
    for (auto& [field, value] : pairs) {
      const Dot dot = fields.AssignPlain(
          field, value, hlc, [&](Dot observed) { in_place->Cover(observed); },
          [&] {
            const Dot next = in_place->stamp().dots->Next();
            in_place->Cover(next);
            return next;
          });
      out.PutPlain(field, value, hlc, dot);
    }
    return in_place->Finish();
  }
  KeyWrite write(*this, writer, shard);
  if (auto ready = write.Prepare(ObjectType::kHash); !ready.ok()) {
    return Unexpected(ready.error());
  }
  for (auto& [field, value] : pairs) {
    DotContext context;
    Key piece;
    piece.MutableRest().mutable_hash() =
        hash().SetDelta(field, std::move(value), keep_ttl, write.stamp(), context);
    write.Step(std::move(piece), context, TouchedNames{.hash = {field}});
  }
  return write.Finish();
}

Result<KeyOp> Key::HDel(const std::vector<std::string>& fields, const Writer& writer,
                        DotContext& shard) {
  const ObjectType type = TypeAt(writer.now_ms);
  if (type != ObjectType::kNone && type != ObjectType::kHash) {
    return Unexpected(ErrorCode::kWrongType);
  }
  KeyWrite write(*this, writer, shard);
  for (const std::string& field : Distinct(fields)) {
    if (type == ObjectType::kNone || !hash().Contains(field)) {
      continue;
    }
    DotContext context;
    Key piece;
    piece.MutableRest().mutable_hash() = hash().RemoveDelta(field, write.stamp(), context);
    write.Step(std::move(piece), context, TouchedNames{.hash = {field}});
  }
  return write.Finish();
}

namespace {

Result<KeyOp> HashIncrement(Key& key, const std::string& field, int64_t by, long double float_by,
                            bool is_float, const Writer& writer, DotContext& shard) {
  const ObjectType type = key.TypeAt(writer.now_ms);
  if (type != ObjectType::kNone && type != ObjectType::kHash) {
    return Unexpected(ErrorCode::kWrongType);
  }
  const auto current =
      type == ObjectType::kNone ? std::nullopt : key.hash().Get(field, writer.now_ms);
  if (auto next = NextCounterValue(current, by, float_by, is_float); !next.ok()) {
    return Unexpected(next.error());
  }
  if (auto in_place = InPlace::Begin(key, ObjectType::kHash, 1, writer, shard)) {
    // In place when the field is absent, or alive without a TTL: then the generic path steps
    // nothing but the increment (no reclaim), and joining its delta gives what is built here.
    const StringRule rule = writer.policies.hash_field;
    OrHash& fields = in_place->rest().mutable_hash();
    const FieldNode* found = fields.Find(field);
    if (found == nullptr || (found->ttl() == nullptr && found->Alive())) {
      const bool absent = found == nullptr;
      Result<StringCell> delta =
          !absent && rule == StringRule::kCounter
              ? fields.FindMutable(field)->value.IncrementInPlace(
                    is_float ? 0 : by, is_float ? float_by : 0, in_place->stamp(),
                    in_place->op_context())
              : crdt::IncrementDelta(absent ? HashField{}.value : found->cells().value, by,
                                     float_by, is_float, rule, in_place->stamp(),
                                     in_place->op_context());
      if (!delta.ok()) {
        return Unexpected(delta.error());  // refused before taking a dot
      }
      if (absent) {
        fields.Put(field, *delta);
      } else if (rule == StringRule::kLww) {
        fields.Put(field, *delta);  // a read-modify-write SET observed every dot of the cell
      }
      in_place->shard().Join(in_place->op_context());
      in_place->delta().mutable_hash().Put(field, std::move(*delta));
      return in_place->Finish();
    }
  }
  if (auto probe = Probe(writer,
                         [&](WriteStamp& stamp, DotContext& context) {
                           return key.hash().IncrementDelta(field, by, float_by, is_float,
                                                            writer.policies.hash_field, stamp,
                                                            context);
                         });
      !probe.ok()) {
    return Unexpected(probe.error());
  }
  KeyWrite write(key, writer, shard);
  if (auto ready = write.Prepare(ObjectType::kHash); !ready.ok()) {
    return Unexpected(ready.error());
  }
  if (key.hash().Contains(field) && !key.hash().Get(field, writer.now_ms)) {
    DotContext context;  // an expired field counts as absent: reclaim it first
    Key piece;
    KeyWrite::RestOf(piece).mutable_hash() = key.hash().RemoveDelta(field, write.stamp(), context);
    write.Step(std::move(piece), context, TouchedNames{.hash = {field}});
  }
  DotContext context;
  auto delta = key.hash().IncrementDelta(field, by, float_by, is_float, writer.policies.hash_field,
                                         write.stamp(), context);
  if (!delta.ok()) {
    return Unexpected(delta.error());
  }
  Key piece;
  KeyWrite::RestOf(piece).mutable_hash() = std::move(*delta);
  write.Step(std::move(piece), context, TouchedNames{.hash = {field}});
  return write.Finish();
}

}  // namespace

Result<KeyOp> Key::HIncrBy(const std::string& field, int64_t by, const Writer& writer,
                           DotContext& shard) {
  return HashIncrement(*this, field, by, 0, false, writer, shard);
}

Result<KeyOp> Key::HIncrByFloat(const std::string& field, long double by, const Writer& writer,
                                DotContext& shard) {
  return HashIncrement(*this, field, 0, by, true, writer, shard);
}

Result<KeyOp> Key::HExpire(const std::string& field, int64_t at_ms, const Writer& writer,
                           DotContext& shard) {
  if (TypeAt(writer.now_ms) != ObjectType::kHash) {
    return Unexpected(TypeAt(writer.now_ms) == ObjectType::kNone ? ErrorCode::kNoSuchKey
                                                                 : ErrorCode::kWrongType);
  }
  if (!hash().Get(field, writer.now_ms)) {
    return Unexpected(ErrorCode::kNoSuchField);
  }
  KeyWrite write(*this, writer, shard);
  DotContext context;
  Key piece;
  piece.MutableRest().mutable_hash() =
      hash().ExpireDelta(field, at_ms, writer.policies.expiry, write.stamp(), context);
  write.Step(std::move(piece), context, TouchedNames{.hash = {field}});
  return write.Finish();
}

Result<KeyOp> Key::ZAdd(const std::string& member, double score, const Writer& writer,
                        DotContext& shard) {
  return ZAddMany({{member, score}}, writer, shard);
}

Result<KeyOp> Key::ZAddMany(const std::vector<std::pair<std::string, double>>& pairs,
                            const Writer& writer, DotContext& shard) {
  auto in_place = InPlace::Begin(*this, ObjectType::kZSet, pairs.size(), writer, shard);
  if (in_place && std::all_of(pairs.begin(), pairs.end(), [&](const auto& pair) {
        const ScoreCell* found = zset().Find(pair.first);
        return (found == nullptr || Plain(*found)) && !zset().removes().contains(pair.first);
      })) {
    SortedSet& zset = in_place->rest().mutable_zset();
    SortedSet& out = in_place->delta().mutable_zset();
    for (const auto& [member, score] : pairs) {
      static const ScoreCell kNone{};
      const ScoreCell* found = zset.Find(member);
      ScoreCell cell = Reassign(*in_place, found != nullptr ? *found : kNone, score);
      zset.Put(member, cell);
      out.Put(member, std::move(cell));
    }
    return in_place->Finish();
  }
  KeyWrite write(*this, writer, shard);
  if (auto ready = write.Prepare(ObjectType::kZSet); !ready.ok()) {
    return Unexpected(ready.error());
  }
  for (const auto& [member, score] : pairs) {
    DotContext context;
    Key piece;
    piece.MutableRest().mutable_zset() = zset().AddDelta(member, score, write.stamp(), context);
    write.Step(std::move(piece), context, TouchedNames{.zset = {member}});
  }
  return write.Finish();
}

Result<KeyOp> Key::ZIncrBy(const std::string& member, double by, const Writer& writer,
                           DotContext& shard) {
  if (const ObjectType type = TypeAt(writer.now_ms);
      type != ObjectType::kNone && type != ObjectType::kZSet) {
    return Unexpected(ErrorCode::kWrongType);
  }
  if (auto probe = Probe(writer,
                         [&](WriteStamp& stamp, DotContext& context) {
                           return zset().IncrementDelta(member, by, stamp, context);  // NaN
                         });
      !probe.ok()) {
    return Unexpected(probe.error());
  }
  KeyWrite write(*this, writer, shard);
  if (auto ready = write.Prepare(ObjectType::kZSet); !ready.ok()) {
    return Unexpected(ready.error());
  }
  DotContext context;
  auto delta = zset().IncrementDelta(member, by, write.stamp(), context);
  Key piece;
  piece.MutableRest().mutable_zset() = std::move(*delta);
  write.Step(std::move(piece), context, TouchedNames{.zset = {member}});
  return write.Finish();
}

Result<KeyOp> Key::ZRem(const std::vector<std::string>& members, const Writer& writer,
                        DotContext& shard) {
  const ObjectType type = TypeAt(writer.now_ms);
  if (type != ObjectType::kNone && type != ObjectType::kZSet) {
    return Unexpected(ErrorCode::kWrongType);
  }
  KeyWrite write(*this, writer, shard);
  for (const std::string& member : Distinct(members)) {
    if (type == ObjectType::kNone || !zset().Score(member)) {
      continue;
    }
    DotContext context;
    Key piece;
    piece.MutableRest().mutable_zset() =
        zset().RemoveDelta(member, writer.policies.zset, write.stamp(), context);
    write.Step(std::move(piece), context, TouchedNames{.zset = {member}});
  }
  return write.Finish();
}

namespace {

// The list writes' common start: the type check (a write that needs the elements needs a list),
// then Prepare.
Result<void> PrepareList(KeyWrite& write, bool needs_list) {
  const ObjectType type = write.key().TypeAt(write.now_ms());
  if (type != ObjectType::kNone && type != ObjectType::kList) {
    return Unexpected(ErrorCode::kWrongType);
  }
  if (needs_list && type == ObjectType::kNone) {
    return Unexpected(ErrorCode::kNoSuchKey);
  }
  return write.Prepare(ObjectType::kList);
}

}  // namespace

Result<KeyOp> Key::LEdit(const std::vector<size_t>& remove, ListEnd end,
                         const std::vector<std::string>& push, const Writer& writer,
                         DotContext& shard) {
  // In place on a key that holds a visible list and nothing else: a remove's delta is its
  // context (the removed elements' dots, which only they hold) and a push's elements carry
  // fresh dots, so joining either changes the list alone, as List::JoinDelta does.
  auto in_place =
      InPlace::Begin(*this, ObjectType::kList, remove.size() + push.size(), writer, shard);
  if (in_place) {
    List& list = in_place->rest().mutable_list();
    if (!remove.empty()) {
      LATTICE_ASSERT(remove.back() < list.Size());
      DotContext covered;
      list.RemoveLocal(remove, covered);  // O(1) each at the ends
      in_place->shard().Join(covered);
      in_place->op_context().Join(covered);
    }
    if (!push.empty()) {
      DotContext covered;
      List delta = list.PushLocal(end, push, in_place->stamp(), covered);
      in_place->shard().Join(covered);
      in_place->op_context().Join(covered);
      in_place->delta().mutable_list() = std::move(delta);
    } else {
      in_place->Cover(in_place->stamp().dots->Next());  // a pure remove's identity (Finish)
    }
    return in_place->Finish();
  }
  KeyWrite write(*this, writer, shard);
  if (auto ready = PrepareList(write, !remove.empty()); !ready.ok()) {
    return Unexpected(ready.error());
  }
  if (!remove.empty()) {
    LATTICE_ASSERT(remove.back() < list().Size());
    DotContext context;
    std::vector<ListPosition> removed;
    list().RemoveDelta(remove, context, &removed);  // the delta holds nothing
    write.Step(Key{}, context, TouchedNames{.list = std::move(removed)});
  }
  if (!push.empty()) {
    DotContext context;
    Key piece;
    piece.MutableRest().mutable_list() = list().PushDelta(end, push, write.stamp(), context);
    write.Step(std::move(piece), context, TouchedNames{});
  }
  return write.Finish();
}

Result<KeyOp> Key::LInsert(size_t index, bool before, std::string_view value, const Writer& writer,
                           DotContext& shard) {
  KeyWrite write(*this, writer, shard);
  if (auto ready = PrepareList(write, true); !ready.ok()) {
    return Unexpected(ready.error());
  }
  LATTICE_ASSERT(index < list().Size());
  DotContext context;
  Key piece;
  piece.MutableRest().mutable_list() =
      list().InsertDelta(index, before, value, write.stamp(), context);
  write.Step(std::move(piece), context, TouchedNames{});
  return write.Finish();
}

Result<KeyOp> Key::LSet(size_t index, std::string_view value, const Writer& writer,
                        DotContext& shard) {
  KeyWrite write(*this, writer, shard);
  if (auto ready = PrepareList(write, true); !ready.ok()) {
    return Unexpected(ready.error());
  }
  LATTICE_ASSERT(index < list().Size());
  DotContext context;
  Key piece;
  piece.MutableRest().mutable_list() = list().SetDelta(index, value, write.stamp(), context);
  write.Step(std::move(piece), context, TouchedNames{});
  return write.Finish();
}

namespace {

// XADD in place: one entry above every entry's ID and the metadata, no trim and no group change,
// on a key holding a visible stream and nothing else whose metadata cell is one plain entry.
// The entry's delta carries a fresh dot and the metadata's observes the one entry it replaces,
// so joining them appends the entry and replaces the cell: what this does directly.
std::optional<KeyOp> XAddInPlace(Key& key, Key::StreamEdit& edit, const Writer& writer,
                                 DotContext& shard) {
  if (edit.adds.size() != 1 || !edit.remove.empty() || !edit.meta.has_value() ||
      !edit.group_destroy.empty() || !edit.group_remove.empty() || !edit.group_write.empty()) {
    return std::nullopt;
  }
  const KeyRest* rest = key.rest();
  if (rest == nullptr || !rest->has_stream() || !Plain(rest->stream().meta_cell())) {
    return std::nullopt;
  }
  const auto& [id, fields] = edit.adds.front();
  const Stream::Entries& entries = rest->stream().entries();
  if (!entries.empty() && !(entries.LastKey().id < id)) return std::nullopt;
  auto in_place = InPlace::Begin(key, ObjectType::kStream, 1, writer, shard);
  if (!in_place) return std::nullopt;
  Stream& stream = in_place->rest().mutable_stream();
  Stream delta = stream.AppendLocal(id, fields, in_place->stamp(), in_place->op_context());
  in_place->shard().Add(delta.entries().LastKey().dot);  // the one dot AppendLocal took
  StreamMetaCell cell = Reassign(*in_place, stream.meta_cell(), *edit.meta);
  stream.set_meta_cell(cell);
  delta.set_meta_cell(std::move(cell));
  in_place->delta().mutable_stream() = std::move(delta);
  return in_place->Finish();
}

}  // namespace

Result<KeyOp> Key::XEdit(StreamEdit edit, const Writer& writer, DotContext& shard) {
  if (std::optional<KeyOp> op = XAddInPlace(*this, edit, writer, shard)) return std::move(*op);
  const ObjectType type = TypeAt(writer.now_ms);
  if (type != ObjectType::kNone && type != ObjectType::kStream) {
    return Unexpected(ErrorCode::kWrongType);
  }
  const bool creates = edit.create || !edit.adds.empty();
  if (!creates && type == ObjectType::kNone) {
    return Unexpected(ErrorCode::kNoSuchKey);
  }
  KeyWrite write(*this, writer, shard);
  if (auto ready = write.Prepare(ObjectType::kStream); !ready.ok()) {
    return Unexpected(ready.error());
  }
  if (!edit.remove.empty()) {
    DotContext context;
    stream().RemoveDelta(edit.remove, context);  // the delta holds nothing
    write.Step(Key{}, context, TouchedNames{.stream = std::move(edit.remove)});
  }
  for (auto& [id, fields] : edit.adds) {
    DotContext context;
    Key piece;
    piece.MutableRest().mutable_stream() =
        stream().AddDelta(id, std::move(fields), write.stamp(), context);
    write.Step(std::move(piece), context, TouchedNames{});
  }
  if (edit.meta.has_value()) {
    DotContext context;
    Key piece;
    piece.MutableRest().mutable_stream() = stream().MetaDelta(*edit.meta, write.stamp(), context);
    write.Step(std::move(piece), context, TouchedNames{});
  }
  XEditGroups(write, edit);
  return write.Finish();
}

// The consumer-group part of XEdit: removes first, then writes (each sees the steps before it).
void Key::XEditGroups(KeyWrite& write, StreamEdit& edit) {
  if (!edit.group_destroy.empty() || !edit.group_remove.empty()) {
    DotContext context;
    for (const std::string& group : edit.group_destroy) stream().DestroyGroupDelta(group, context);
    for (const GroupSlot& slot : edit.group_remove) stream().RemoveSlotDelta(slot, context);
    write.Step(Key{}, context, TouchedNames{});  // the delta holds nothing
  }
  for (auto& [slot, value] : edit.group_write) {
    DotContext context;
    Key piece;
    piece.MutableRest().mutable_stream() =
        stream().WriteSlotDelta(slot, std::move(value), write.stamp(), context);
    write.Step(std::move(piece), context, TouchedNames{});
  }
}

std::optional<KeyOp> Key::Reclaim(const Writer& writer, DotContext& shard) {
  if (rest_.get() == nullptr) {
    return std::nullopt;
  }
  if (ExpiredAt(&rest_.get()->expiry(), writer.now_ms) && Type() != ObjectType::kNone) {
    return Del(writer, shard);
  }
  const auto expired = hash().ExpiredFields(writer.now_ms);
  if (expired.empty()) {
    return std::nullopt;
  }
  KeyWrite write(*this, writer, shard);
  for (const std::string& field : expired) {
    DotContext context;
    Key piece;
    piece.MutableRest().mutable_hash() = hash().RemoveDelta(field, write.stamp(), context);
    write.Step(std::move(piece), context, TouchedNames{.hash = {field}});
  }
  return write.Finish();
}

}  // namespace lattice::crdt
