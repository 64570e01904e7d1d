// The compact op encoding of protocol 2 (docs/replication-wire.md, "Ops"): an op record
// (EncodeOp: the unit of the op log and the retained ring) is a header (origin, dots, HLC, deps)
// and a body (db, key, kind, policies, context, payload); an OpBatch carries each op's body as
// stored, behind a header coded against the batch and the link. Written and read directly, with
// no protobuf objects: only the general kind's delta is a protobuf wire::Key.

#include "op_codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codec_internal.h"
#include "lattice/common/byte_codec.h"
#include "lattice/repl/codec.h"

namespace lattice::repl {

namespace {

using crdt::Dot;

constexpr uint8_t kGroupLogFormat = 3;  // an op log record holding a group's op records
constexpr uint8_t kRecordFormat = 2;    // the first byte of an op record: protocol 2

// What the body's payload holds. The common writes have a kind of their own, whose dots and
// HLC are implied by the header; everything else is kGeneric (the delta as a wire::Key).
enum Kind : uint8_t {
  kGeneric = 0,
  kSet = 1,       // one string entry {value, op hlc, first dot}
  kIncr = 2,      // one integer increment {first dot, epoch, total}
  kHSet = 3,      // one hash field entry {value, op hlc, first dot}
  kSAdd = 4,      // set adds, one own dot per member
  kZAdd = 5,      // one score entry {score, op hlc, first dot}
  kListPush = 6,  // list elements {one-digit position, value, op hlc}, one own dot each
  kKindEnd = 7,
};
constexpr uint8_t kKindMask = 0x0F;
constexpr uint8_t kHasContext = 0x10;   // context dots besides the op's own follow
constexpr uint8_t kHasPolicies = 0x20;  // six policy bytes follow
// More ops of this op's group follow (protocol 4): a group (a script's or an EXEC's ops) is
// applied by a receiver only whole (docs/replication.md, "Groups").
constexpr uint8_t kGroupContinues = 0x40;

// Batch op header flags.
constexpr uint8_t kOriginSender = 0;    // the link's peer
constexpr uint8_t kOriginPrevious = 1;  // the previous op's origin
constexpr uint8_t kOriginExplicit = 2;  // fixed64 follows
constexpr uint8_t kOriginMask = 0x03;
constexpr uint8_t kSeqFollows = 0x04;   // same origin as the previous op, first = its last + 1
constexpr uint8_t kHlcExplicit = 0x08;  // fixed64 follows; else a zigzag delta to the previous
constexpr uint8_t kBatchFlagsMask = 0x0F;

// Replica references inside a body: the op's origin, or an explicit id.
constexpr uint8_t kRefOrigin = 0;
constexpr uint8_t kRefExplicit = 1;

// ---------------------------------------------------------------------------------------------
// Byte writer and reader: lattice/common/byte_codec.h's, with the replica references of a body.
class Out : public ByteWriter {
 public:
  using ByteWriter::ByteWriter;
  void Ref(ReplicaId replica, ReplicaId origin) {
    if (replica == origin) {
      Byte(kRefOrigin);
    } else {
      Byte(kRefExplicit);
      Fixed64(replica);
    }
  }
};

class In : public ByteReader {
 public:
  using ByteReader::ByteReader;
  ReplicaId Ref(ReplicaId origin) {
    const uint8_t tag = Byte();
    if (tag == kRefOrigin) return origin;
    if (tag != kRefExplicit) Fail();
    return Fixed64();
  }
};

// A batch header staged on the stack and appended in one piece: ByteWriter appends field by
// field, each append checking the string's capacity, and the batch writer runs per op per peer.
// Flushes early when a field might not fit (an op with many deps).
class StagedOut {
 public:
  explicit StagedOut(std::string& out) : out_(out) {}
  ~StagedOut() { Flush(); }
  StagedOut(const StagedOut&) = delete;
  StagedOut& operator=(const StagedOut&) = delete;
  void Byte(uint8_t value) {
    Room();
    bytes_[n_++] = static_cast<char>(value);
  }
  void Varint(uint64_t value) {
    Room();
    while (value >= 0x80) {
      bytes_[n_++] = static_cast<char>((value & 0x7F) | 0x80);
      value >>= 7;
    }
    bytes_[n_++] = static_cast<char>(value);
  }
  void Fixed64(uint64_t value) {
    Room();
    StoreFixed64(bytes_ + n_, value);
    n_ += 8;
  }
  void Flush() {
    out_.append(bytes_, n_);
    n_ = 0;
  }

 private:
  static constexpr size_t kMaxField = 10;  // a varint's most bytes
  void Room() {
    if (sizeof(bytes_) - n_ < kMaxField) Flush();
  }
  std::string& out_;
  char bytes_[128];
  size_t n_ = 0;
};

// CODEC_RETURN_IF_ERROR for a Result held in a variable: checked where it is, not copied (a
// copy of a decoded delta or context costs as much as building it).
#define OP_RETURN_IF_ERROR(result)         \
  do {                                     \
    if (!(result).ok()) {                  \
      return Unexpected((result).error()); \
    }                                      \
  } while (0)

Unexpected Corrupt(std::string_view what) {
  return Unexpected(ErrorCode::kCorrupt, std::string(what));
}

// ---------------------------------------------------------------------------------------------
// The kind of a delta: a common write's shape, or kGeneric.

bool SingleEntry(const crdt::StringCell& cell, const crdt::KeyOp& op) {
  const auto* winner = cell.Winner();
  return winner != nullptr && cell.rest() == nullptr && winner->dot == op.first_dot &&
         winner->hlc == op.hlc;
}

bool SingleEntry(const crdt::ScoreCell& cell, const crdt::KeyOp& op) {
  const auto* winner = cell.Winner();
  return winner != nullptr && cell.rest() == nullptr && winner->dot == op.first_dot &&
         winner->hlc == op.hlc && !std::isnan(winner->value);
}

bool SingleIncrement(const crdt::StringCell& cell, const crdt::KeyOp& op) {
  const auto* rest = cell.rest();
  if (cell.Winner() != nullptr || rest == nullptr || rest->incs.size() != 1 ||
      !rest->more.empty() || !rest->tombs.empty() || !rest->observed.empty()) {
    return false;
  }
  const crdt::IncEntry& inc = rest->incs.front();
  return inc.dot == op.first_dot && inc.ftotal == 0 && !std::signbit(inc.ftotal) &&
         inc.epoch != op.first_dot;
}

// The key's objects besides the string cell: which one alone holds something.
// LPUSH/RPUSH on an existing list: elements only, each a one-digit position whose dot is one of
// the op's own, its value never LSET, its HLC the op's; as many elements as the op has dots.
bool ListPushShape(const crdt::KeyRest& rest, const crdt::KeyOp& op) {
  if (!rest.list_created().empty() || !rest.hash_created().empty() || !rest.set_created().empty() ||
      !rest.zset_created().empty() || !rest.expiry().empty() || rest.has_hash() || rest.has_set() ||
      rest.has_zset() || rest.list().Size() != op.dot_count) {
    return false;
  }
  bool plain = true;
  rest.list().ForEachElement([&](const crdt::ListPosition& position, const crdt::ListValue& value) {
    const Dot id = position.id();
    plain = plain && position.depth() == 1 && value.dot == id && value.hlc == op.hlc &&
            id.replica == op.first_dot.replica && id.seq >= op.first_dot.seq &&
            id.seq - op.first_dot.seq < op.dot_count;
  });
  return plain;
}

Kind RestKind(const crdt::KeyRest& rest, const crdt::KeyOp& op) {
  if (rest.has_stream() || rest.has_chunks()) {
    return kGeneric;  // stream writes and bitmap chunks travel as a general delta
  }
  if (rest.has_list()) {
    return ListPushShape(rest, op) ? kListPush : kGeneric;
  }
  if (!rest.hash_created().empty() || !rest.set_created().empty() || !rest.zset_created().empty() ||
      !rest.expiry().empty() || rest.has_list()) {
    return kGeneric;
  }
  const int objects =
      (rest.hash().empty() ? 0 : 1) + (rest.set().empty() ? 0 : 1) + (rest.zset().empty() ? 0 : 1);
  if (objects != 1 || op.dot_count != 1) {
    if (objects == 1 && !rest.set().empty() && rest.set().removes().empty() &&
        rest.set().adds().size() == op.dot_count) {
      const uint64_t last = op.first_dot.seq + op.dot_count - 1;
      for (const auto& [name, dots] : rest.set().adds()) {
        if (dots.size() != 1 || dots.dots()[0].replica != op.first_dot.replica ||
            dots.dots()[0].seq < op.first_dot.seq || dots.dots()[0].seq > last) {
          return kGeneric;
        }
      }
      return kSAdd;
    }
    return kGeneric;
  }
  if (rest.hash().fields().size() == 1) {
    const auto entry = (*rest.hash().fields().begin()).second.Plain();
    return entry && entry->dot == op.first_dot && entry->hlc == op.hlc ? kHSet : kGeneric;
  }
  if (rest.zset().MemberCount() == 1 && rest.zset().removes().empty()) {
    bool single = false;
    rest.zset().ForEachMember(
        [&](std::string_view, const crdt::ScoreCell& cell) { single = SingleEntry(cell, op); });
    return single ? kZAdd : kGeneric;
  }
  if (!rest.set().empty() && rest.set().removes().empty() && rest.set().adds().size() == 1) {
    const auto dots = rest.set().adds().begin()->second.dots();
    return dots.size() == 1 && dots[0] == op.first_dot ? kSAdd : kGeneric;
  }
  return kGeneric;
}

Kind KindOf(const crdt::KeyOp& op) {
  const crdt::Key& delta = op.delta;
  if (delta.rest() != nullptr) {
    return delta.string().empty() ? RestKind(*delta.rest(), op) : kGeneric;
  }
  if (op.dot_count != 1) {
    return kGeneric;
  }
  if (SingleEntry(delta.string(), op)) {
    return kSet;
  }
  return SingleIncrement(delta.string(), op) ? kIncr : kGeneric;
}

// ---------------------------------------------------------------------------------------------
// Body encoding.

bool OwnDot(const crdt::KeyOp& op, Dot dot) {
  return dot.replica == op.first_dot.replica && dot.seq >= op.first_dot.seq &&
         dot.seq - op.first_dot.seq < op.dot_count;
}

// The context without the op's own dots (implied: every op's context covers them).
bool HasContextExtras(const crdt::KeyOp& op) {
  if (!op.context.vector().entries().empty()) {
    return true;
  }
  return std::any_of(op.context.cloud().begin(), op.context.cloud().end(),
                     [&](Dot dot) { return !OwnDot(op, dot); });
}

void PutContextExtras(const crdt::KeyOp& op, Out& out) {
  const ReplicaId origin = op.first_dot.replica;
  out.Varint(op.context.vector().entries().size());
  for (const auto& [replica, seq] : op.context.vector().entries()) {
    out.Ref(replica, origin);
    out.Varint(seq);
  }
  size_t extra = 0;
  for (const Dot& dot : op.context.cloud()) {
    extra += OwnDot(op, dot) ? 0 : 1;
  }
  out.Varint(extra);
  for (const Dot& dot : op.context.cloud()) {
    if (!OwnDot(op, dot)) {
      out.Ref(dot.replica, origin);
      out.Varint(dot.seq);
    }
  }
}

void PutPolicies(const crdt::Policies& p, Out& out) {
  out.Byte(static_cast<uint8_t>(p.set));
  out.Byte(static_cast<uint8_t>(p.zset));
  out.Byte(static_cast<uint8_t>(p.string));
  out.Byte(static_cast<uint8_t>(p.hash_field));
  out.Byte(static_cast<uint8_t>(p.expiry));
  out.Byte(static_cast<uint8_t>(p.type));
}

void PutSetAdds(const crdt::KeyOp& op, Out& out) {
  const auto& adds = op.delta.rest()->set().adds();
  std::vector<std::pair<std::string_view, uint64_t>> members;
  members.reserve(adds.size());
  for (const auto& [name, dots] : adds) {
    members.emplace_back(name, dots.dots()[0].seq - op.first_dot.seq);
  }
  std::sort(members.begin(), members.end());  // canonical whatever the map's order
  out.Varint(members.size());
  for (const auto& [name, index] : members) {
    out.Bytes(name);
    out.Varint(index);
  }
}

// The elements in position order: zz integer (a delta to the previous element's), dot index,
// value.
void PutListPush(const crdt::KeyOp& op, Out& out) {
  const crdt::List& list = op.delta.rest()->list();
  out.Varint(list.Size());
  int64_t previous = 0;
  list.ForEachElement([&](const crdt::ListPosition& position, const crdt::ListValue& value) {
    const int64_t n = position.digit(0).n;
    out.Zigzag(static_cast<int64_t>(static_cast<uint64_t>(n) - static_cast<uint64_t>(previous)));
    out.Varint(position.id().seq - op.first_dot.seq);
    out.Bytes(value.value);
    previous = n;
  });
}

void PutPayload(Kind kind, const crdt::KeyOp& op, Out& out) {
  const crdt::Key& delta = op.delta;
  switch (kind) {
    case kSet:
      out.Bytes(delta.string().Winner()->value);
      return;
    case kIncr: {
      const crdt::IncEntry& inc = delta.string().rest()->incs.front();
      if (!inc.epoch.valid()) {
        out.Byte(2);
      } else {
        out.Ref(inc.epoch.replica, op.first_dot.replica);
        out.Varint(inc.epoch.seq);
      }
      out.Zigzag(inc.total);
      return;
    }
    case kHSet: {
      const auto& [name, field] = *delta.rest()->hash().fields().begin();
      out.Bytes(name);
      out.Bytes(field.Winner()->value);
      return;
    }
    case kSAdd:
      PutSetAdds(op, out);
      return;
    case kListPush:
      PutListPush(op, out);
      return;
    case kZAdd: {
      delta.rest()->zset().ForEachMember([&](std::string_view name, const crdt::ScoreCell& cell) {
        out.Bytes(name);
        uint64_t bits = 0;
        std::memcpy(&bits, &cell.Winner()->value, sizeof(bits));
        out.Fixed64(bits);
      });
      return;
    }
    default:
      out.Bytes(delta.empty() ? std::string() : detail::EncodeKeyState(delta));
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Body decoding.

struct Header {
  ReplicaId origin = kNoReplica;
  uint64_t first_seq = 0;
  uint64_t dot_count = 0;
  uint64_t hlc = 0;
};

Result<crdt::Policies> GetPolicies(In& in) {
  uint8_t raw[6];
  for (uint8_t& byte : raw) {
    byte = in.Byte();
  }
  if (!in.ok() || raw[0] > 1 || raw[1] > 1 || raw[2] > 1 || raw[3] > 1 || raw[4] > 2 ||
      raw[5] > 1) {
    return Corrupt("policy value out of range");
  }
  crdt::Policies p;
  p.set = static_cast<crdt::SetRule>(raw[0]);
  p.zset = static_cast<crdt::SetRule>(raw[1]);
  p.string = static_cast<crdt::StringRule>(raw[2]);
  p.hash_field = static_cast<crdt::StringRule>(raw[3]);
  p.expiry = static_cast<crdt::ExpiryRule>(raw[4]);
  p.type = static_cast<crdt::TypeRule>(raw[5]);
  return p;
}

// The context: the extras (a vector sorted by replica, then cloud dots), then the own dots.
Result<crdt::DotContext> GetContext(In& in, bool extras, const Header& h) {
  crdt::VersionVector vector;
  crdt::DotContext context;
  if (extras) {
    const uint64_t entries = in.Varint();
    ReplicaId previous = kNoReplica;
    for (uint64_t i = 0; i < entries && in.ok(); ++i) {
      const ReplicaId replica = in.Ref(h.origin);
      auto dot = detail::CheckedDot(replica, in.Varint());
      if (!in.ok() || !dot.ok() || (i > 0 && replica <= previous)) {
        return Corrupt("op context vector malformed or not sorted by replica");
      }
      vector.Set(dot->replica, dot->seq);
      previous = replica;
    }
    context = crdt::DotContext::FromVector(std::move(vector));
    const uint64_t cloud = in.Varint();
    for (uint64_t i = 0; i < cloud && in.ok(); ++i) {
      const ReplicaId replica = in.Ref(h.origin);
      auto dot = detail::CheckedDot(replica, in.Varint());
      if (!in.ok() || !dot.ok()) {
        return Corrupt("op context dot malformed");
      }
      context.Add(*dot);
    }
  }
  for (uint64_t i = 0; i < h.dot_count; ++i) {
    context.Add(Dot{h.origin, h.first_seq + i});
  }
  return context;
}

Result<std::string> GetText(In& in) {
  const std::string_view text = in.Bytes();
  if (!in.ok()) {
    return Corrupt("op truncated");
  }
  return std::string(text);
}

Result<crdt::Key> GetIncrement(In& in, const Header& h, Dot first) {
  Dot epoch;
  const uint8_t tag = in.Byte();
  if (tag == kRefOrigin || tag == kRefExplicit) {
    const ReplicaId replica = tag == kRefOrigin ? h.origin : in.Fixed64();
    auto dot = detail::CheckedDot(replica, in.Varint());
    if (!dot.ok() || *dot == first) {
      return Corrupt("increment epoch is not a valid dot");
    }
    epoch = *dot;
  } else if (tag != 2) {
    return Corrupt("increment epoch tag out of range");
  }
  const int64_t total = in.Zigzag();
  if (!in.ok()) {
    return Corrupt("op truncated");
  }
  // One increment with checked dots is canonical as it stands: built directly, it equals what
  // IncrementDelta's mutator run gives (tests/store/peer_apply_test.cc compares them).
  return crdt::Key::OfStringCell(
      crdt::StringCell::OfIncrement(crdt::IncEntry{first, epoch, total, 0}));
}

Result<crdt::Key> GetSetAdds(In& in, const Header& h) {
  const uint64_t count = in.Varint();
  if (!in.ok() || count != h.dot_count) {
    return Corrupt("set adds: member count is not the op's dot count");
  }
  // Members sorted and distinct, each with one own dot: built directly (as the local SADD builds
  // its delta), the set equals what SetAddsDelta's mutator run gives.
  crdt::OrSet set;
  std::vector<bool> used(count, false);
  std::string previous;
  for (uint64_t i = 0; i < count; ++i) {
    const std::string_view name = in.Bytes();
    const uint64_t index = in.Varint();
    if (!in.ok() || index >= count || used[index] || (i > 0 && name <= previous)) {
      return Corrupt("set adds: members not sorted and distinct, or dots not the op's own");
    }
    used[index] = true;
    previous.assign(name);
    set.Put(previous, Dot{h.origin, h.first_seq + index});
  }
  return crdt::Key::OfSet({}, std::move(set));
}

Result<crdt::Key> GetListPush(In& in, const Header& h) {
  const uint64_t count = in.Varint();
  if (!in.ok() || count != h.dot_count) {
    return Corrupt("list push: element count is not the op's dot count");
  }
  // One-digit elements in position order, each with one own dot: added as state transfer adds
  // them, the list equals the mutator's delta (elements compare, not their chunking).
  crdt::List list;
  std::vector<bool> used(count, false);
  uint64_t n = 0;
  for (uint64_t i = 0; i < count; ++i) {
    n += static_cast<uint64_t>(in.Zigzag());
    const uint64_t index = in.Varint();
    const std::string_view value = in.Bytes();
    if (!in.ok() || index >= count || used[index]) {
      return Corrupt("list push: truncated, or dots not the op's own");
    }
    used[index] = true;
    const Dot id{h.origin, h.first_seq + index};
    if (!list.AppendForDecode(crdt::ListPosition(crdt::ListDigit{static_cast<int64_t>(n), id}),
                              crdt::ListValue{std::string(value), h.hlc, id})) {
      return Corrupt("list push: elements not in position order");
    }
  }
  return crdt::Key::OfList({}, std::move(list));
}

Result<crdt::Key> GetPayload(Kind kind, In& in, const Header& h) {
  const Dot first{h.origin, h.first_seq};
  switch (kind) {
    case kSet: {
      // One entry with a checked dot is canonical as it stands: built directly (as the local
      // in-place SET builds its delta), it equals what StringEntryDelta's mutator run gives.
      auto value = GetText(in);
      OP_RETURN_IF_ERROR(value);
      return crdt::Key::OfString({std::move(*value), h.hlc, first});
    }
    case kIncr:
      return GetIncrement(in, h, first);
    case kHSet: {
      // One plain field entry, built directly as the kSet entry is.
      const std::string_view field = in.Bytes();
      auto value = GetText(in);
      OP_RETURN_IF_ERROR(value);
      crdt::OrHash hash;
      hash.Put(field, crdt::StringCell::OfEntry({std::move(*value), h.hlc, first}));
      return crdt::Key::OfHash({}, std::move(hash));
    }
    case kSAdd:
      return GetSetAdds(in, h);
    case kListPush:
      return GetListPush(in, h);
    case kZAdd: {
      auto member = GetText(in);
      const uint64_t bits = in.Fixed64();
      double score = 0;
      std::memcpy(&score, &bits, sizeof(score));
      if (!in.ok() || std::isnan(score)) {
        return Corrupt("score truncated or NaN");
      }
      crdt::SortedSet zset;
      zset.Put(*member, crdt::ScoreCell::OfEntry({score, h.hlc, first}));
      return crdt::Key::OfZSet({}, std::move(zset));
    }
    default: {
      const std::string_view state = in.Bytes();
      if (!in.ok()) {
        return Corrupt("op truncated");
      }
      return state.empty() ? crdt::Key{} : detail::DecodeKeyState(state);
    }
  }
}

// The own dots are implied, so their count is bounded by what a body can name: each of an op's
// dots is held by its delta, which costs at least a byte per dot.
Result<void> CheckHeader(const Header& h, size_t body_bytes) {
  if (!detail::CheckedDot(h.origin, h.first_seq).ok()) {
    return Corrupt("op without a valid first dot");
  }
  if (h.dot_count == 0 || h.dot_count > 4 * body_bytes + 16 ||
      h.dot_count > detail::kSeqMax - h.first_seq) {
    return Corrupt("op dot_count out of range");
  }
  return {};
}

Result<void> GetBody(In& in, const Header& h, size_t body_bytes, OpRecord& out) {
  CODEC_RETURN_IF_ERROR(CheckHeader(h, body_bytes));
  const uint64_t db = in.Varint();
  auto key = GetText(in);
  OP_RETURN_IF_ERROR(key);
  const uint8_t tag = in.Byte();
  const auto kind = static_cast<Kind>(tag & kKindMask);
  if (!in.ok() || db > UINT32_MAX || kind >= kKindEnd ||
      (tag & ~(kKindMask | kHasContext | kHasPolicies | kGroupContinues)) != 0) {
    return Corrupt("op body header malformed");
  }
  out.group_continues = (tag & kGroupContinues) != 0;
  if (kind != kGeneric && kind != kSAdd && kind != kListPush && h.dot_count != 1) {
    return Corrupt("op kind takes one dot");
  }
  crdt::KeyOp& op = out.op;
  if ((tag & kHasPolicies) != 0) {
    auto policies = GetPolicies(in);
    OP_RETURN_IF_ERROR(policies);
    op.policies = *policies;
  }
  auto context = GetContext(in, (tag & kHasContext) != 0, h);
  OP_RETURN_IF_ERROR(context);
  auto delta = GetPayload(kind, in, h);
  OP_RETURN_IF_ERROR(delta);
  out.db = static_cast<uint32_t>(db);
  out.key = std::move(*key);
  op.delta = std::move(*delta);
  op.context = std::move(*context);
  op.hlc = h.hlc;
  op.first_dot = Dot{h.origin, h.first_seq};
  op.dot_count = h.dot_count;
  if (kind == kGeneric) {
    CODEC_RETURN_IF_ERROR(detail::CheckOpDots(op));
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Op records.

void PutDeps(const crdt::VersionVector& deps, Out& out) {
  out.Varint(deps.entries().size());
  for (const auto& [replica, seq] : deps.entries()) {
    out.Fixed64(replica);
    out.Varint(seq);
  }
}

Result<crdt::VersionVector> GetDeps(In& in) {
  crdt::VersionVector deps;
  const uint64_t entries = in.Varint();
  ReplicaId previous = kNoReplica;
  for (uint64_t i = 0; i < entries && in.ok(); ++i) {
    const ReplicaId replica = in.Fixed64();
    auto dot = detail::CheckedDot(replica, in.Varint());
    if (!in.ok() || !dot.ok() || (i > 0 && replica <= previous)) {
      return Corrupt("deps malformed or not sorted by replica");
    }
    deps.Set(replica, dot->seq);
    previous = replica;
  }
  if (!in.ok()) {
    return Corrupt("op truncated");
  }
  return deps;
}

// An op record's parts, pointing into its bytes.
struct RecordView {
  Header header;
  crdt::VersionVector deps;
  std::string_view body;
};

Result<RecordView> ParseRecord(std::string_view bytes) {
  In in(bytes);
  if (in.Byte() != kRecordFormat || !in.ok()) {
    return Corrupt("op record of another format (an op log written before protocol 2?)");
  }
  RecordView view;
  view.header.origin = in.Fixed64();
  view.header.first_seq = in.Varint();
  view.header.dot_count = in.Varint();
  view.header.hlc = in.Fixed64();
  auto deps = GetDeps(in);
  OP_RETURN_IF_ERROR(deps);
  view.deps = std::move(*deps);
  view.body = bytes.substr(in.pos());
  return view;
}

void PutHeader(const crdt::KeyOp& op, const crdt::VersionVector& deps, Out& out) {
  out.Byte(kRecordFormat);
  out.Fixed64(op.first_dot.replica);
  out.Varint(op.first_dot.seq);
  out.Varint(op.dot_count);
  out.Fixed64(op.hlc);
  PutDeps(deps, out);
}

Result<void> DecodeBody(std::string_view body, const Header& h, OpRecord& out) {
  In in(body);
  CODEC_RETURN_IF_ERROR(GetBody(in, h, body.size(), out));
  if (!in.done()) {
    return Corrupt("trailing bytes after an op");
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Batches.

struct BatchState {
  ReplicaId origin = kNoReplica;
  uint64_t last_seq = 0;
  uint64_t hlc = 0;
  bool first = true;
};

Result<Header> GetBatchHeader(In& in, ReplicaId sender, BatchState& state) {
  const uint8_t flags = in.Byte();
  if ((flags & ~kBatchFlagsMask) != 0 || (flags & kOriginMask) > kOriginExplicit ||
      (state.first && (flags & kHlcExplicit) == 0) ||
      ((flags & kSeqFollows) != 0 && (flags & kOriginMask) != kOriginPrevious)) {
    return Corrupt("batch op flags malformed");
  }
  Header h;
  switch (flags & kOriginMask) {
    case kOriginSender:
      h.origin = sender;
      break;
    case kOriginPrevious:
      h.origin = state.origin;
      break;
    default:
      h.origin = in.Fixed64();
  }
  h.first_seq = (flags & kSeqFollows) != 0 ? state.last_seq + 1 : in.Varint();
  h.dot_count = in.Varint();
  h.hlc =
      (flags & kHlcExplicit) != 0 ? in.Fixed64() : state.hlc + static_cast<uint64_t>(in.Zigzag());
  if (!in.ok()) {
    return Corrupt("op batch truncated");
  }
  if (h.origin == kNoReplica) {
    return Corrupt("op of the sender on a link whose sender is unknown");
  }
  return h;
}

}  // namespace

std::string EncodeOp(const OpRecord& op) {
  if (op.wire != nullptr) {
    return *op.wire;
  }
  std::string out;
  out.reserve(64 + op.key.size() + op.body.size());
  AppendOpRecord(op, out);
  return out;
}

void AppendOpRecord(const OpRecord& op, std::string& out) {
  if (op.wire != nullptr) {
    out.append(*op.wire);
  } else if (!op.body.empty()) {
    Out o(out);
    PutHeader(op.op, op.deps, o);
    out.append(op.body);
  } else {
    AppendOpRecord(op.db, op.key, op.op, op.deps, out, op.group_continues);
  }
}

void AppendOpRecord(uint32_t db, std::string_view key, const crdt::KeyOp& op,
                    const crdt::VersionVector& deps, std::string& out, bool group_continues) {
  Out o(out);
  PutHeader(op, deps, o);
  AppendOpBody(db, key, op, out, group_continues);
}

// The body's tag byte follows the header, the db and the key: found by reading past them.
void SetGroupContinues(std::string& records, size_t offset, bool group_continues) {
  In in(std::string_view(records).substr(offset));
  const bool format = in.Byte() == kRecordFormat;
  in.Fixed64();
  in.Varint();
  in.Varint();
  in.Fixed64();
  const uint64_t entries = in.Varint();
  for (uint64_t i = 0; i < entries && in.ok(); ++i) {
    in.Fixed64();
    in.Varint();
  }
  in.Varint();
  const uint64_t key_bytes = in.Varint();
  LATTICE_ASSERT_MSG(format && in.ok() && key_bytes < records.size() - offset - in.pos(),
                     "an op record being grouped does not parse");
  char& tag = records[offset + in.pos() + key_bytes];
  tag = static_cast<char>(group_continues ? (tag | kGroupContinues) : (tag & ~kGroupContinues));
}

const std::string& CacheWire(OpRecord& op) {
  if (op.wire == nullptr) {
    op.wire = std::make_shared<const std::string>(EncodeOp(op));
  }
  return *op.wire;
}

void AppendToGroupLogRecord(std::string_view record, std::string& group) {
  if (group.empty()) {
    group.push_back(static_cast<char>(kGroupLogFormat));
  }
  Out o(group);
  o.Bytes(record);
}

Result<std::vector<std::string_view>> OpsOfLogRecord(std::string_view payload) {
  if (payload.empty() || static_cast<uint8_t>(payload[0]) != kGroupLogFormat) {
    return std::vector<std::string_view>{payload};
  }
  In in(payload.substr(1));
  std::vector<std::string_view> records;
  while (!in.done()) {
    const std::string_view record = in.Bytes();
    if (!in.ok()) {
      return Corrupt("group log record truncated");
    }
    records.push_back(record);
  }
  return records;
}

Result<OpRecord> DecodeOp(std::string_view bytes) {
  auto view = ParseRecord(bytes);
  OP_RETURN_IF_ERROR(view);
  OpRecord out;
  CODEC_RETURN_IF_ERROR(DecodeBody(view->body, view->header, out));
  out.deps = std::move(view->deps);
  return out;
}

void AppendOpBody(uint32_t db, std::string_view key, const crdt::KeyOp& op, std::string& out,
                  bool group_continues) {
  Out o(out);
  const Kind kind = KindOf(op);
  const bool extras = HasContextExtras(op);
  const bool policies = !(op.policies == crdt::Policies{});
  o.Varint(db);
  o.Bytes(key);
  o.Byte(kind | (extras ? kHasContext : 0) | (policies ? kHasPolicies : 0) |
         (group_continues ? kGroupContinues : 0));
  if (policies) {
    PutPolicies(op.policies, o);
  }
  if (extras) {
    PutContextExtras(op, o);
  }
  PutPayload(kind, op, o);
}

void AppendOpBatch(const OpBatch& batch, std::string& out) {
  OpBatchWriter writer;
  writer.Start(batch.sender, batch.receiver_has);
  std::string scratch;
  for (const OpRecord& op : batch.ops) {
    if (op.wire == nullptr) {
      scratch = EncodeOp(op);
    }
    writer.Add(op.wire != nullptr ? std::string_view(*op.wire) : std::string_view(scratch));
  }
  Out(out).Varint(writer.count());
  out.append(writer.ops());
}

void OpBatchWriter::Start(ReplicaId sender, const crdt::VersionVector& receiver_has) {
  ops_.clear();
  sender_ = sender;
  receiver_has_ = &receiver_has;
  count_ = 0;
  receiver_free_ = true;
}

// The record's header is read (its body is copied as it is) and coded against the previous op
// of the batch and the link.
void OpBatchWriter::Add(std::string_view record) {
  In in(record);
  const bool format = in.Byte() == kRecordFormat;
  Header h;
  h.origin = in.Fixed64();
  h.first_seq = in.Varint();
  h.dot_count = in.Varint();
  h.hlc = in.Fixed64();
  const uint64_t entries = in.Varint();
  deps_.clear();
  for (uint64_t i = 0; i < entries && in.ok(); ++i) {
    const ReplicaId replica = in.Fixed64();
    deps_.emplace_back(replica, in.Varint());
  }
  LATTICE_ASSERT_MSG(format && in.ok(), "a retained op record does not parse");
  StagedOut out(ops_);
  uint8_t flags = kOriginExplicit;
  if (count_ > 0 && h.origin == origin_) {
    flags = kOriginPrevious;
    if (h.first_seq == last_seq_ + 1) {
      flags |= kSeqFollows;
    }
  } else if (h.origin == sender_) {
    flags = kOriginSender;
  }
  if (count_ == 0) {
    flags |= kHlcExplicit;
  }
  out.Byte(flags);
  if ((flags & kOriginMask) == kOriginExplicit) {
    out.Fixed64(h.origin);
  }
  if ((flags & kSeqFollows) == 0) {
    out.Varint(h.first_seq);
  }
  out.Varint(h.dot_count);
  if ((flags & kHlcExplicit) != 0) {
    out.Fixed64(h.hlc);
  } else {
    out.Varint(ZigzagEncode(static_cast<int64_t>(h.hlc - hlc_)));
  }
  // Deps: the origin's entry is implied (first_seq - 1), and entries the receiver reported
  // applied on this connection are left out (it fills them in from its own applied vector).
  size_t sent = 0;
  for (auto& [replica, seq] : deps_) {
    const bool implied = replica == h.origin && seq + 1 == h.first_seq;
    receiver_free_ = receiver_free_ && implied;
    if (implied || seq <= receiver_has_->Get(replica)) {
      replica = kNoReplica;  // not sent
    } else {
      ++sent;
    }
  }
  out.Varint(sent);
  for (const auto& [replica, seq] : deps_) {
    if (replica != kNoReplica) {
      out.Fixed64(replica);
      out.Varint(seq);
    }
  }
  out.Flush();
  ops_.append(record.substr(in.pos()));
  origin_ = h.origin;
  last_seq_ = h.first_seq + h.dot_count - 1;
  hlc_ = h.hlc;
  ++count_;
}

Result<OpBatch> DecodeOpBatch(std::string_view bytes, ReplicaId sender) {
  In in(bytes);
  const uint64_t count = in.Varint();
  if (!in.ok() || count > bytes.size()) {
    return Corrupt("op batch count out of range");
  }
  OpBatch batch;
  batch.ops.reserve(std::min<uint64_t>(count, 1024));
  BatchState state;
  for (uint64_t i = 0; i < count; ++i) {
    auto header = GetBatchHeader(in, sender, state);
    OP_RETURN_IF_ERROR(header);
    auto deps = GetDeps(in);
    OP_RETURN_IF_ERROR(deps);
    if (deps->Get(header->origin) == 0 && header->first_seq > 1) {
      deps->Set(header->origin, header->first_seq - 1);
    }
    OpRecord& op = batch.ops.emplace_back();
    const size_t start = in.pos();
    CODEC_RETURN_IF_ERROR(GetBody(in, *header, bytes.size() - start, op));
    op.body = std::string(in.Slice(start));
    op.deps = std::move(*deps);
    state =
        BatchState{header->origin, header->first_seq + header->dot_count - 1, header->hlc, false};
  }
  if (!in.done()) {
    return Corrupt("trailing bytes after an op batch");
  }
  return batch;
}

}  // namespace lattice::repl
