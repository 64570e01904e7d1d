#include "lattice/crdt/key.h"

#include <algorithm>
#include <set>

#include "key_write.h"
#include "lattice/crdt/hll.h"

namespace lattice::crdt {

namespace {

const KeyRest& EmptyRest() {
  static const KeyRest kEmpty{};
  return kEmpty;
}

bool AllStable(const DotContext& dots, const VersionVector& stable) {
  return dots.vector().LessOrEqual(stable) &&
         std::all_of(dots.cloud().begin(), dots.cloud().end(),
                     [&](Dot dot) { return stable.Contains(dot); });
}

Stamp CreatorStamp(const CreationCell& cell) {
  return cell.Winner() != nullptr ? cell.Winner()->stamp() : Stamp{};
}

bool MadeUnderFixedPrecedence(const CreationCell& cell) {
  return cell.Winner() != nullptr && (cell.Winner()->value & kFixedPrecedenceFlag) != 0;
}

// TypeRule::kFixedPrecedence: hash > zset > set > list > stream > string.
int Precedence(ObjectType type) {
  switch (type) {
    case ObjectType::kHash:
      return 6;
    case ObjectType::kZSet:
      return 5;
    case ObjectType::kSet:
      return 4;
    case ObjectType::kList:
      return 3;
    case ObjectType::kStream:
      return 2;
    case ObjectType::kString:
      return 1;
    default:
      return 0;
  }
}

}  // namespace

Result<void> KeyWrite::Prepare(ObjectType want, bool any_type) {
  const ObjectType current = key_.TypeAt(now_ms_);
  if (current != ObjectType::kNone && current != want && !any_type) {
    return Unexpected(ErrorCode::kWrongType);
  }
  if (current == ObjectType::kNone || current != want) {
    DotContext context;
    Key piece = key_.RemoveAllDelta(false, stamp_, context);
    if (!context.cloud().empty() || !context.vector().entries().empty()) {
      Step(std::move(piece), context);
    }
    if (want != ObjectType::kString) {
      DotContext create_context;
      Key created;
      KeyRest& rest = created.MutableRest();
      CreationCell& cell = want == ObjectType::kHash     ? rest.mutable_hash_created()
                           : want == ObjectType::kSet    ? rest.mutable_set_created()
                           : want == ObjectType::kList   ? rest.mutable_list_created()
                           : want == ObjectType::kStream ? rest.mutable_stream_created()
                                                         : rest.mutable_zset_created();
      const uint8_t flag =
          op_.policies.type == TypeRule::kFixedPrecedence ? kFixedPrecedenceFlag : 0;
      cell = CreationCell{}.AssignDelta(static_cast<uint8_t>(want) | flag, stamp_, create_context);
      Step(std::move(created), create_context);
    }
    return {};
  }
  // Same type: remove what this write observed of hidden objects of other types.
  const KeyRest& rest = key_.rest_.get() != nullptr ? *key_.rest_.get() : EmptyRest();
  DotContext context;
  Key piece;
  if (want != ObjectType::kString) {
    StringCell removed = key_.string_.RemoveDelta(stamp_, context);
    piece.string_ = std::move(removed);
    if (rest.has_chunks()) {
      BitChunks reset = rest.chunks().RemoveDelta(stamp_, context);
      if (!reset.empty()) piece.MutableRest().mutable_chunks() = std::move(reset);
    }
  }
  if (want != ObjectType::kHash) {
    rest.hash().CollectDots(context);
    rest.hash_created().CollectDots(context);
  }
  if (want != ObjectType::kSet) {
    rest.set().CollectDots(context);
    rest.set_created().CollectDots(context);
  }
  if (want != ObjectType::kZSet) {
    rest.zset().CollectDots(context);
    rest.zset_created().CollectDots(context);
  }
  if (want != ObjectType::kList) {
    rest.list().CollectDots(context);
    rest.list_created().CollectDots(context);
  }
  if (want != ObjectType::kStream) {
    rest.stream().CollectDots(context);
    rest.stream_created().CollectDots(context);
  }
  if (!context.cloud().empty() || !context.vector().entries().empty()) {
    Step(std::move(piece), context);
  }
  return {};
}

const OrHash& Key::hash() const { return (rest_.get() ? *rest_.get() : EmptyRest()).hash(); }
const OrSet& Key::set() const { return (rest_.get() ? *rest_.get() : EmptyRest()).set(); }
const SortedSet& Key::zset() const { return (rest_.get() ? *rest_.get() : EmptyRest()).zset(); }
const List& Key::list() const { return (rest_.get() ? *rest_.get() : EmptyRest()).list(); }
const Stream& Key::stream() const { return (rest_.get() ? *rest_.get() : EmptyRest()).stream(); }

void Key::NormalizeRest() {
  if (KeyRest* rest = rest_.get()) {
    rest->Normalize();
  }
  rest_.Normalize();
}

// The newest creator among the present incarnations wins, unless one of them was created under
// the fixed-precedence rule: then the present type of highest precedence wins. Both are functions
// of the state alone, so every replica decides alike.
ObjectType Key::Type() const {
  if (rest_.get() == nullptr) {  // only the string cell: what the general rule below gives
    return string_.Alive() ? ObjectType::kString : ObjectType::kNone;
  }
  const KeyRest& parts = *rest_.get();
  if (!string_.Alive() && !parts.has_chunks() &&
      parts.has_hash() + parts.has_set() + parts.has_zset() + parts.has_list() +
              parts.has_stream() <=
          1) {
    // The usual collection key: one part and no live string. That part decides, as the rule
    // below would with a single candidate, without weighing stamps.
    if (parts.has_set()) return parts.set().AnyPresent() ? ObjectType::kSet : ObjectType::kNone;
    if (parts.has_hash()) return parts.hash().AnyPresent() ? ObjectType::kHash : ObjectType::kNone;
    if (parts.has_zset()) return parts.zset().Size() > 0 ? ObjectType::kZSet : ObjectType::kNone;
    if (parts.has_list()) return parts.list().empty() ? ObjectType::kNone : ObjectType::kList;
    if (parts.has_stream()) {
      return parts.stream().empty() ? ObjectType::kNone : ObjectType::kStream;
    }
    return ObjectType::kNone;
  }
  if (parts.has_hash() + parts.has_set() + parts.has_zset() + parts.has_list() +
          parts.has_stream() ==
      0) {
    // A string with chunks (and nothing else typed): the only candidate, so no stamps to weigh.
    return string_.Alive() || parts.chunks().AnyAlive() ? ObjectType::kString : ObjectType::kNone;
  }
  std::pair<Stamp, ObjectType> best{Stamp{}, ObjectType::kNone};
  ObjectType highest = ObjectType::kNone;
  bool fixed = false;
  auto consider = [&](bool present, Stamp stamp, ObjectType type, bool fixed_rule) {
    if (!present) return;
    if (std::pair(stamp, type) > best) {
      best = {stamp, type};
    }
    if (Precedence(type) > Precedence(highest)) {
      highest = type;
    }
    fixed = fixed || fixed_rule;
  };
  // A string shows through its base or its bitmap chunks; its creator is the newest of them.
  const Stamp base_stamp = string_.Winner() ? string_.Winner()->stamp() : Stamp{};
  consider(string_.Alive() || parts.chunks().AnyAlive(),
           std::max(base_stamp, parts.chunks().NewestStamp()), ObjectType::kString, false);
  if (const KeyRest* rest = rest_.get()) {  // only the parts the key holds
    if (rest->has_hash()) {
      consider(rest->hash().AnyPresent(), CreatorStamp(rest->hash_created()), ObjectType::kHash,
               MadeUnderFixedPrecedence(rest->hash_created()));
    }
    if (rest->has_set()) {
      consider(rest->set().AnyPresent(), CreatorStamp(rest->set_created()), ObjectType::kSet,
               MadeUnderFixedPrecedence(rest->set_created()));
    }
    if (rest->has_zset()) {
      consider(rest->zset().Size() > 0, CreatorStamp(rest->zset_created()), ObjectType::kZSet,
               MadeUnderFixedPrecedence(rest->zset_created()));
    }
    if (rest->has_list()) {
      consider(!rest->list().empty(), CreatorStamp(rest->list_created()), ObjectType::kList,
               MadeUnderFixedPrecedence(rest->list_created()));
    }
    if (rest->has_stream()) {
      consider(!rest->stream().empty(), CreatorStamp(rest->stream_created()), ObjectType::kStream,
               MadeUnderFixedPrecedence(rest->stream_created()));
    }
  }
  return fixed ? highest : best.second;
}

std::optional<int64_t> Key::ExpiryMs() const {
  if (rest_.get() == nullptr) {
    return std::nullopt;
  }
  const std::optional<int64_t> at = ExpiryAt(rest_.get()->expiry());
  if (!at.has_value() || Type() == ObjectType::kNone) {
    return std::nullopt;  // an attribute left on a dead key is invisible
  }
  return at;
}

ObjectType Key::TypeAt(int64_t now_ms) const {
  const ObjectType type = Type();
  if (type == ObjectType::kNone ||
      (rest_.get() != nullptr && ExpiredAt(&rest_.get()->expiry(), now_ms))) {
    return ObjectType::kNone;
  }
  if (type == ObjectType::kHash && !hash().AnyPresentAt(now_ms)) {
    return ObjectType::kNone;
  }
  return type;
}

namespace {

// The string cell's value as GetString reads it before laying bitmap chunks over it: concurrent
// HyperLogLog writes kept side by side read as their register-wise max (hll.h), anything else
// as RenderString.
std::optional<std::string> RenderBase(const StringCell& cell) {
  if (const RegisterRest<std::string>* more = cell.rest();
      more != nullptr && !more->more.empty() && cell.Winner() != nullptr) {
    std::vector<std::string_view> values{cell.Winner()->value};
    for (const StringCell::Entry& entry : more->more) values.push_back(entry.value);
    if (std::optional<std::string> merged = hll::MergeValues(values)) {
      return merged;
    }
  }
  return RenderString(cell);
}

}  // namespace

std::optional<std::string> Key::GetString(int64_t now_ms) const {
  if (TypeAt(now_ms) != ObjectType::kString) {
    return std::nullopt;
  }
  return HasChunks() ? ComposeChunks(RenderBase(string_)) : RenderBase(string_);
}

std::optional<size_t> Key::ReadStringRange(size_t begin, size_t end, int64_t now_ms,
                                           std::string& scratch, std::string_view& out) const {
  if (TypeAt(now_ms) != ObjectType::kString) {
    return std::nullopt;
  }
  // The base: the winning entry's bytes in place when the cell holds it alone (RenderBase's
  // value then), else rendered.
  std::optional<std::string> rendered;
  std::optional<std::string_view> base;
  if (string_.rest() == nullptr) {
    if (string_.Winner() != nullptr) base = string_.Winner()->value;
  } else if ((rendered = RenderBase(string_))) {
    base = *rendered;
  }
  const BitChunks* chunks = HasChunks() ? &rest_.get()->chunks() : nullptr;
  const Stamp base_stamp =
      base && string_.Winner() != nullptr ? string_.Winner()->stamp() : Stamp{};
  const size_t size =
      chunks == nullptr
          ? base.value_or(std::string_view()).size()
          : chunks->ComposedSize(base ? std::optional(base->size()) : std::nullopt, base_stamp);
  end = std::min(end, size);
  if (begin >= end) {
    out = std::string_view();
    return size;
  }
  const uint64_t first = begin / kChunkBytes;
  const uint64_t last = (end - 1) / kChunkBytes;
  const std::string_view bytes = base.value_or(std::string_view());
  if (end <= bytes.size() && (chunks == nullptr || !chunks->AnyIn(first, last))) {
    out = bytes.substr(begin, end - begin);  // the base alone shows there
    if (rendered) {
      scratch.assign(out);
      out = scratch;
    }
    return size;
  }
  const size_t window_begin = static_cast<size_t>(first) * kChunkBytes;
  const size_t window_end = std::min(static_cast<size_t>(last + 1) * kChunkBytes, size);
  static const BitChunks kNoChunks{};
  (chunks != nullptr ? *chunks : kNoChunks)
      .ComposeRange(bytes, base_stamp, window_begin, window_end, scratch);
  out = std::string_view(scratch).substr(begin - window_begin, end - begin);
  return size;
}

std::optional<std::string> Key::ComposeChunks(std::optional<std::string> base) const {
  const Stamp base_stamp =
      base.has_value() && string_.Winner() != nullptr ? string_.Winner()->stamp() : Stamp{};
  return rest_.get()->chunks().Compose(std::move(base), base_stamp);
}

Key Key::RemoveAllDelta(bool keep_expiry, WriteStamp& stamp, DotContext& context) const {
  Key delta;
  delta.string_ = string_.RemoveDelta(stamp, context);
  if (const KeyRest* rest = rest_.get()) {
    KeyRest out;
    for (const FieldNode* node : rest->hash().SortedFields()) {  // dots in name order
      out.mutable_hash().Join(rest->hash().RemoveDelta(node->name(), stamp, context), DotContext{},
                              DotContext{});
    }
    rest->zset().ForEachMember([&](std::string_view member, const ScoreCell&) {
      out.mutable_zset().Join(
          rest->zset().RemoveDelta(std::string(member), SetRule::kAddWins, stamp, context),
          DotContext{}, DotContext{});
    });
    if (rest->has_chunks()) {
      BitChunks reset = rest->chunks().RemoveDelta(stamp, context);  // counters leave tombstones
      if (!reset.empty()) out.mutable_chunks() = std::move(reset);
    }
    out.Normalize();
    AddMapDots(rest->zset().removes(), context);  // DEL observes remove tokens too
    rest->set().CollectDots(context);
    rest->list().CollectDots(context);    // a list remove's delta holds nothing
    rest->stream().CollectDots(context);  // nor a stream remove's
    rest->stream_created().CollectDots(context);
    rest->hash_created().CollectDots(context);
    rest->set_created().CollectDots(context);
    rest->zset_created().CollectDots(context);
    rest->list_created().CollectDots(context);
    if (!keep_expiry) {
      rest->expiry().CollectDots(context);
    }
    if (!out.empty()) {
      delta.rest_.Mutable() = std::move(out);
    }
  }
  return delta;
}

void Key::Apply(const KeyOp& op, DotContext& shard) {
  JoinDelta(op.delta, shard, op.context, op.first_dot, op.dot_count);
  shard.Join(op.context);
}

void Key::Join(const Key& other, const DotContext& mine, const DotContext& theirs) {
  JoinStringCell(string_, other.string_, mine, theirs);
  if (rest_.get() == nullptr && other.rest_.get() == nullptr) {
    return;
  }
  KeyRest& a = rest_.Mutable();
  const KeyRest& b = other.rest_.get() != nullptr ? *other.rest_.get() : EmptyRest();
  if (a.has_hash() || b.has_hash()) a.mutable_hash().Join(b.hash(), mine, theirs);
  if (a.has_set() || b.has_set()) a.mutable_set().Join(b.set(), mine, theirs);
  if (a.has_zset() || b.has_zset()) a.mutable_zset().Join(b.zset(), mine, theirs);
  if (a.has_list() || b.has_list()) a.mutable_list().Join(b.list(), mine, theirs);
  if (a.has_stream() || b.has_stream()) a.mutable_stream().Join(b.stream(), mine, theirs);
  if (a.has_chunks() || b.has_chunks()) a.mutable_chunks().Join(b.chunks(), mine, theirs);
  JoinKeyCells(a, b, mine, theirs);
  NormalizeRest();
}

void Key::Compact(const VersionVector& stable) {
  // Compaction in place drops no dot and no offset (docs/crdt.md, "Compaction"): a dot dropped
  // here but held elsewhere is missing from the context of this region's next write or remove
  // (the regions diverge), a dropped tombstone changes the epoch this region's next increment
  // starts from, and offsets pruned here could be read again by an increment still in flight
  // to this region. What is garbage is removed by an op instead (Keyspace::CompactSome, PurgeOp
  // below), so every region removes the same dots. The rules below ran before; they are kept as
  // the mutation the simulator must catch.
  if (!MutationInjected(Mutation::kCompactNarrowsDots)) {
    return;
  }
  string_.Compact(stable);
  if (KeyRest* rest = rest_.get()) {
    if (rest->has_hash()) rest->mutable_hash().Compact(stable);
    if (rest->has_set()) rest->mutable_set().Compact(stable);
    if (rest->has_zset()) rest->mutable_zset().Compact(stable);
    // A creation event or expiry of an incarnation that no longer has contents is inert once
    // stable: every future op observes it.
    // (A list keeps no tombstones: nothing of its own to compact.)
    CreationCell* cells[] = {rest->has_hash() ? &rest->mutable_hash_created() : nullptr,
                             rest->has_set() ? &rest->mutable_set_created() : nullptr,
                             rest->has_zset() ? &rest->mutable_zset_created() : nullptr,
                             rest->has_list() ? &rest->mutable_list_created() : nullptr};
    const bool contents_empty[] = {rest->hash().empty(), rest->set().empty(), rest->zset().empty(),
                                   rest->list().empty()};
    for (size_t i = 0; i < 4; ++i) {
      CreationCell* cell = cells[i];
      if (cell == nullptr) continue;
      cell->Compact(stable);
      DotContext dots;
      cell->CollectDots(dots);
      if (contents_empty[i] && AllStable(dots, stable)) {
        *cell = CreationCell{};
      }
    }
    if (!rest->expiry().empty()) {
      rest->mutable_expiry().Compact(stable);
      if (rest->hash().empty() && rest->set().empty() && rest->zset().empty() &&
          rest->list().empty() && rest->stream().empty() && string_.empty()) {
        DotContext dots;
        rest->expiry().CollectDots(dots);
        if (AllStable(dots, stable)) {
          rest->mutable_expiry() = ExpiryCell{};
        }
      }
    }
    NormalizeRest();
  }
}

std::optional<ReplicaId> Key::PurgeableBy(const VersionVector& stable) const {
  if (empty() || Type() != ObjectType::kNone ||
      (rest_.get() != nullptr && !rest_.get()->expiry().empty())) {
    return std::nullopt;  // something visible, or a key-level expiry: not garbage
  }
  DotContext dots;
  CollectDots(dots);
  if (!AllStable(dots, stable)) {
    return std::nullopt;  // an op concurrent with one of its dots may still arrive
  }
  // Nothing live: a DEL of it leaves nothing behind (no increment needs a tombstone).
  DotSource scratch(kNoReplica);
  WriteStamp stamp{&scratch, 0};
  DotContext seen;
  if (!RemoveAllDelta(false, stamp, seen).empty()) {
    return std::nullopt;
  }
  // One region issues the purge: the writer of the greatest dot, by (seq, replica).
  Dot greatest;
  auto consider = [&](Dot dot) {
    if (std::pair(dot.seq, dot.replica) > std::pair(greatest.seq, greatest.replica)) {
      greatest = dot;
    }
  };
  for (const auto& [replica, seq] : dots.vector().entries()) consider(Dot{replica, seq});
  for (const Dot& dot : dots.cloud()) consider(dot);
  if (!greatest.valid()) {
    return std::nullopt;
  }
  return greatest.replica;
}

void Key::CollectDots(DotContext& out) const {
  string_.CollectDots(out);
  if (const KeyRest* rest = rest_.get()) {
    rest->hash().CollectDots(out);
    rest->set().CollectDots(out);
    rest->zset().CollectDots(out);
    rest->list().CollectDots(out);
    rest->stream().CollectDots(out);
    rest->stream_created().CollectDots(out);
    rest->hash_created().CollectDots(out);
    rest->set_created().CollectDots(out);
    rest->zset_created().CollectDots(out);
    rest->list_created().CollectDots(out);
    rest->expiry().CollectDots(out);
    rest->chunks().CollectDots(out);
  }
}

size_t Key::MetadataItems() const {
  size_t items = string_.MetadataItems();
  if (const KeyRest* rest = rest_.get()) {
    items += rest->hash().MetadataItems() + rest->set().MetadataItems() +
             rest->zset().MetadataItems() + rest->list().MetadataItems() +
             rest->hash_created().MetadataItems() + rest->set_created().MetadataItems() +
             rest->zset_created().MetadataItems() + rest->list_created().MetadataItems() +
             rest->stream().MetadataItems() + rest->stream_created().MetadataItems() +
             rest->expiry().MetadataItems() + rest->chunks().MetadataItems();
  }
  return items;
}

}  // namespace lattice::crdt
