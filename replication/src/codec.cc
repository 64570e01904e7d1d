#include "lattice/repl/codec.h"

#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "codec_internal.h"
#include "google/protobuf/arena.h"
#include "lattice/common/assert.h"
#include "lattice/repl/frame.h"
#include "lattice/repl/lattice.pb.h"
#include "op_codec.h"

namespace lattice::repl {

namespace {

using crdt::Dot;

using detail::kSeqMax;
// Register joins are quadratic in the items of one cell; a real cell holds O(replicas) of them.
constexpr int kCellItemsMax = 1024;

// ---------------------------------------------------------------------------------------------
// Encoding: crdt values -> wire messages. Empty parts are left unset (absent == empty).

void PutDot(Dot dot, wire::Dot* out) {
  out->set_replica(dot.replica);
  out->set_seq(dot.seq);
}

void PutVector(const crdt::VersionVector& vector, wire::VersionVector* out) {
  for (const auto& [replica, seq] : vector.entries()) {
    out->add_replica(replica);
    out->add_seq(seq);
  }
}

void PutContext(const crdt::DotContext& context, wire::DotContext* out) {
  if (!context.vector().entries().empty()) {
    PutVector(context.vector(), out->mutable_vector());
  }
  for (const Dot& dot : context.cloud()) {
    out->add_cloud_replica(dot.replica);
    out->add_cloud_seq(dot.seq);
  }
}

// Exact: "%La" prints every bit of the 64-bit mantissa in hex, and strtold reads it back.
std::string FloatText(long double value) {
  if (value == 0 && !std::signbit(value)) {
    return {};
  }
  char text[64];
  std::snprintf(text, sizeof(text), "%La", value);
  return text;
}

template <typename V>
void PutRest(const crdt::RegisterRest<V>& rest, wire::RegisterMeta* out) {
  for (const crdt::Tomb& tomb : rest.tombs) {
    wire::Tomb* t = out->add_tombs();
    t->set_hlc(tomb.hlc);
    PutDot(tomb.dot, t->mutable_dot());
  }
  for (const crdt::IncEntry& inc : rest.incs) {
    wire::IncEntry* i = out->add_incs();
    PutDot(inc.dot, i->mutable_dot());
    if (inc.epoch.valid()) {
      PutDot(inc.epoch, i->mutable_epoch());
    }
    i->set_total(inc.total);
    i->set_ftotal(FloatText(inc.ftotal));
  }
  for (const crdt::Observed& observed : rest.observed) {
    wire::Observed* o = out->add_observed();
    PutDot(observed.owner, o->mutable_owner());
    for (const crdt::Offset& offset : observed.offsets) {
      wire::Offset* f = o->add_offsets();
      f->set_replica(offset.replica);
      if (offset.epoch.valid()) {
        PutDot(offset.epoch, f->mutable_epoch());
      }
      f->set_seq(offset.seq);
      f->set_total(offset.total);
      f->set_ftotal(FloatText(offset.ftotal));
    }
  }
}

void PutEntry(const crdt::RegisterEntry<std::string>& entry, wire::StringEntry* out) {
  out->set_value(entry.value);
  out->set_hlc(entry.hlc);
  PutDot(entry.dot, out->mutable_dot());
}

void PutEntry(const crdt::RegisterEntry<double>& entry, wire::ScoreEntry* out) {
  out->set_value(entry.value);
  out->set_hlc(entry.hlc);
  PutDot(entry.dot, out->mutable_dot());
}

void PutEntry(const crdt::RegisterEntry<crdt::ExpiryValue>& entry, wire::ExpiryEntry* out) {
  out->set_at_ms(entry.value.at_ms);
  out->set_rule(static_cast<uint32_t>(entry.value.rule));
  out->set_hlc(entry.hlc);
  PutDot(entry.dot, out->mutable_dot());
}

void PutEntry(const crdt::RegisterEntry<uint8_t>& entry, wire::CreationEntry* out) {
  out->set_type(entry.value & ~crdt::kFixedPrecedenceFlag);
  if ((entry.value & crdt::kFixedPrecedenceFlag) != 0) {
    out->set_fixed_precedence(true);
  }
  out->set_hlc(entry.hlc);
  PutDot(entry.dot, out->mutable_dot());
}

// Entries in the register's own order (winner, then stamp descending), then the rest.
template <typename V, typename CellMessage>
void PutRegister(const crdt::Register<V>& cell, CellMessage* out) {
  for (const auto& entry : cell.Entries()) {
    PutEntry(entry, out->add_entries());
  }
  const crdt::RegisterRest<V>* rest = cell.rest();
  if (rest != nullptr && !(rest->tombs.empty() && rest->incs.empty() && rest->observed.empty())) {
    PutRest(*rest, out->mutable_meta());
  }
}

void PutDotSet(const std::string& name, const crdt::DotSet& dots, wire::SetMember* out) {
  out->set_name(name);
  for (const Dot& dot : dots.dots()) {
    out->add_replica(dot.replica);
    out->add_seq(dot.seq);
  }
}

void PutStream(const crdt::Stream& stream, wire::Key* out) {
  for (const auto& [key, fields] : stream.entries()) {
    wire::StreamEntry* e = out->add_stream();
    e->set_ms(key.id.ms);
    e->set_seq(key.id.seq);
    PutDot(key.dot, e->mutable_dot());
    for (std::string_view field : fields) {
      e->add_fields(field.data(), field.size());
    }
  }
  for (const auto& entry : stream.meta_cell().Entries()) {
    wire::StreamMetaEntry* m = out->add_stream_meta();
    m->set_last_ms(entry.value.last_id.ms);
    m->set_last_seq(entry.value.last_id.seq);
    m->set_max_deleted_ms(entry.value.max_deleted.ms);
    m->set_max_deleted_seq(entry.value.max_deleted.seq);
    m->set_entries_added(entry.value.entries_added);
    m->set_hlc(entry.hlc);
    PutDot(entry.dot, m->mutable_dot());
  }
  for (const auto& [key, value] : stream.group_items()) {
    wire::StreamGroupItem* g = out->add_stream_groups();
    g->set_group(key.slot.group);
    g->set_part(static_cast<uint32_t>(key.slot.part));
    g->set_consumer(key.slot.consumer);
    g->set_ms(key.slot.id.ms);
    g->set_seq(key.slot.id.seq);
    PutDot(key.dot, g->mutable_dot());
    g->set_last_ms(value.last_id.ms);
    g->set_last_seq(value.last_id.seq);
    g->set_entries_read(value.entries_read);
    g->set_seen_ms(value.seen_ms);
    g->set_active_ms(value.active_ms);
    g->set_owner(value.owner);
    g->set_deliveries(value.deliveries);
    g->set_hlc(value.hlc);
  }
}

// The key-level cells: creation events of the typed incarnations and the key expiry.
void PutKeyCells(const crdt::Key& key, wire::Key* out) {
  const crdt::KeyRest* rest = key.rest();
  if (rest == nullptr) {
    return;
  }
  if (!rest->hash_created().empty()) {
    PutRegister(rest->hash_created(), out->mutable_hash_created());
  }
  if (!rest->set_created().empty()) {
    PutRegister(rest->set_created(), out->mutable_set_created());
  }
  if (!rest->zset_created().empty()) {
    PutRegister(rest->zset_created(), out->mutable_zset_created());
  }
  if (!rest->list_created().empty()) {
    PutRegister(rest->list_created(), out->mutable_list_created());
  }
  if (!rest->stream_created().empty()) {
    PutRegister(rest->stream_created(), out->mutable_stream_created());
  }
  if (!rest->expiry().empty()) {
    PutRegister(rest->expiry(), out->mutable_expiry());
  }
}

void PutKey(const crdt::Key& key, wire::Key* out) {
  if (!key.string().empty()) {
    PutRegister(key.string(), out->mutable_string());
  }
  for (const crdt::FieldNode* node : key.hash().SortedFields()) {  // bytes not by table layout
    const crdt::HashField field = node->cells();
    wire::HashField* f = out->add_hash();
    f->set_name(std::string(node->name()));
    if (!field.value.empty()) {
      PutRegister(field.value, f->mutable_value());
    }
    if (field.ttl.get() != nullptr && !field.ttl.get()->empty()) {
      PutRegister(*field.ttl.get(), f->mutable_ttl());
    }
  }
  for (const auto& [name, dots] : key.set().adds()) {
    PutDotSet(name, dots, out->add_set_adds());
  }
  for (const auto& [name, dots] : key.set().removes()) {
    PutDotSet(name, dots, out->add_set_removes());
  }
  key.zset().ForEachMember([&](std::string_view name, const crdt::ScoreCell& cell) {
    wire::ZSetMember* m = out->add_zset();
    m->set_name(std::string(name));
    PutRegister(cell, m->mutable_score());
  });
  for (const auto& [name, dots] : key.zset().removes()) {
    PutDotSet(name, dots, out->add_zset_removes());
  }
  key.list().ForEachElement([&](const crdt::ListPosition& position, const crdt::ListValue& value) {
    wire::ListElement* e = out->add_list();
    for (size_t i = 0; i + 1 < position.depth(); ++i) {
      const crdt::ListDigit& digit = position.digit(i);
      e->add_prefix_n(digit.n);
      e->add_prefix_replica(digit.dot.replica);
      e->add_prefix_seq(digit.dot.seq);
    }
    e->set_n(position.digit(position.depth() - 1).n);
    PutDot(position.id(), e->mutable_id());
    e->set_value(value.value);
    e->set_hlc(value.hlc);
    if (value.dot != position.id()) {
      PutDot(value.dot, e->mutable_value_dot());
    }
  });
  PutStream(key.stream(), out);
  PutKeyCells(key, out);
  if (key.HasChunks()) {
    for (const auto& [index, cell] : key.rest()->chunks().items()) {
      wire::BitChunk* chunk = out->add_chunks();
      chunk->set_index(index);
      PutRegister(cell, chunk->mutable_cell());
    }
    for (const auto& [field, cell] : key.rest()->chunks().counters()) {
      wire::BitCounter* counter = out->add_counters();
      counter->set_offset(field.offset);
      counter->set_bits(field.bits);
      PutRegister(cell, counter->mutable_cell());
    }
  }
}

void PutMessage(const Hello& m, wire::Envelope* out) {
  wire::Hello* h = out->mutable_hello();
  h->set_shard_id(m.shard_id);
  h->set_replica(m.replica);
  h->set_region(m.region);
  h->set_protocol_version(m.protocol_version);
  PutVector(m.applied, h->mutable_applied());
  h->set_auth_nonce(m.auth_nonce);
  h->set_features(m.features);
}
void PutMessage(const Publish& m, wire::Envelope* out) {
  wire::Publish* p = out->mutable_publish();
  p->set_channel(m.channel);
  p->set_message(m.message);
  p->set_sharded(m.sharded);
}
void PutMessage(const LinkProof& m, wire::Envelope* out) {
  out->mutable_link_proof()->set_proof(m.proof);
}
void PutMessage(const Ack& m, wire::Envelope* out) {
  PutVector(m.applied, out->mutable_ack()->mutable_applied());
}
void PutMessage(const Heartbeat& m, wire::Envelope* out) {
  out->mutable_heartbeat()->set_sender_time_ms(m.sender_time_ms);
  PutVector(m.applied, out->mutable_heartbeat()->mutable_applied());
  for (ReplicaId replica : m.connected) {
    out->mutable_heartbeat()->add_connected(replica);
  }
}
void PutSnapshotKey(uint32_t db, std::string_view key, const crdt::Key& state,
                    wire::SnapshotChunk* chunk) {
  wire::SnapshotKey* k = chunk->add_keys();
  k->set_db(db);
  k->set_key(std::string(key));
  if (!state.empty()) {
    PutKey(state, k->mutable_state());
  }
}
void PutMessage(const SnapshotChunk& m, wire::Envelope* out) {
  wire::SnapshotChunk* chunk = out->mutable_snapshot_chunk();
  chunk->set_snapshot_id(m.snapshot_id);
  for (const SnapshotKey& key : m.keys) {
    PutSnapshotKey(key.db, key.key, key.state, chunk);
  }
  chunk->set_last(m.last);
  PutContext(m.context, chunk->mutable_context());
}
void PutMessage(const Goodbye& m, wire::Envelope* out) {
  out->mutable_goodbye()->set_reason(m.reason);
}

}  // namespace

namespace {

// ---------------------------------------------------------------------------------------------
// Decoding, step 1: structural checks of the wire values, before any crdt code runs on them.

Result<Dot> GetDot(ReplicaId replica, uint64_t seq) {
  if (replica == kNoReplica) {
    return Unexpected(ErrorCode::kCorrupt, "dot with replica 0");
  }
  if (seq == 0 || seq > kSeqMax) {
    return Unexpected(ErrorCode::kCorrupt, "dot with seq out of range");
  }
  return Dot{replica, seq};
}

Result<Dot> GetDot(const wire::Dot& dot) { return GetDot(dot.replica(), dot.seq()); }

// An optional dot (an epoch): absent is Dot{}.
template <typename M>
Result<Dot> GetEpoch(const M& message) {
  if (!message.has_epoch()) {
    return Dot{};
  }
  return GetDot(message.epoch());
}

Result<long double> GetFloat(const std::string& text) {
  if (text.empty()) {
    return 0.0L;
  }
  char* end = nullptr;
  const long double value = std::strtold(text.c_str(), &end);
  // Only the encoder's own rendering is accepted: exact, and the same bytes on re-export.
  if (end != text.c_str() + text.size() || std::isnan(value) || FloatText(value) != text) {
    return Unexpected(ErrorCode::kCorrupt, "float total is not canonical %La text");
  }
  return value;
}

Result<crdt::VersionVector> GetVector(const wire::VersionVector& in) {
  if (in.replica_size() != in.seq_size()) {
    return Unexpected(ErrorCode::kCorrupt, "version vector: replica and seq counts differ");
  }
  crdt::VersionVector out;
  for (int i = 0; i < in.replica_size(); ++i) {
    auto dot = GetDot(in.replica(i), in.seq(i));
    CODEC_RETURN_IF_ERROR(dot);
    if (i > 0 && in.replica(i) <= in.replica(i - 1)) {
      return Unexpected(ErrorCode::kCorrupt, "version vector not sorted by replica");
    }
    out.Set(dot->replica, dot->seq);
  }
  return out;
}

// Normalised: cloud dots that the vector covers or that extend it are folded in, as Add does.
Result<crdt::DotContext> GetContext(const wire::DotContext& in) {
  auto vector = GetVector(in.vector());
  CODEC_RETURN_IF_ERROR(vector);
  if (in.cloud_replica_size() != in.cloud_seq_size()) {
    return Unexpected(ErrorCode::kCorrupt, "dot context: cloud replica and seq counts differ");
  }
  crdt::DotContext out = crdt::DotContext::FromVector(std::move(*vector));
  for (int i = 0; i < in.cloud_replica_size(); ++i) {
    auto dot = GetDot(in.cloud_replica(i), in.cloud_seq(i));
    CODEC_RETURN_IF_ERROR(dot);
    out.Add(*dot);
  }
  return out;
}

// Walks a wire Key checking every dot, count and enum, and records the replicas it names (the
// builder takes its scratch dots from a replica that does not occur).
class KeyChecker {
 public:
  Result<void> Check(const wire::Key& key);
  const std::set<ReplicaId>& replicas() const { return replicas_; }

 private:
  Result<void> CheckDot(const wire::Dot& dot) {
    auto got = GetDot(dot);
    CODEC_RETURN_IF_ERROR(got);
    replicas_.insert(got->replica);
    return {};
  }
  Result<void> CheckMeta(const wire::RegisterMeta& meta, bool score);
  template <typename Cell>
  Result<void> CheckCell(const Cell& cell, bool score);
  template <typename Cell, typename EntryCheck>
  Result<void> CheckEntriesOnly(const Cell& cell, const char* kind, EntryCheck check_entry);
  Result<void> CheckExpiry(const wire::ExpiryCell& cell);
  Result<void> CheckCreation(const wire::CreationCell& cell, crdt::ObjectType type);
  Result<void> CheckMembers(const google::protobuf::RepeatedPtrField<wire::SetMember>& members);
  Result<void> CheckList(const google::protobuf::RepeatedPtrField<wire::ListElement>& elements);
  Result<void> CheckStream(const wire::Key& key);
  Result<void> CheckChunks(const wire::Key& key);

  std::set<ReplicaId> replicas_;
};

Result<void> KeyChecker::CheckMeta(const wire::RegisterMeta& meta, bool score) {
  for (const wire::Tomb& tomb : meta.tombs()) {
    CODEC_RETURN_IF_ERROR(CheckDot(tomb.dot()));
  }
  for (const wire::IncEntry& inc : meta.incs()) {
    CODEC_RETURN_IF_ERROR(CheckDot(inc.dot()));
    CODEC_RETURN_IF_ERROR(GetEpoch(inc));
    CODEC_RETURN_IF_ERROR(GetFloat(inc.ftotal()));
    if (score && inc.total() != 0) {
      return Unexpected(ErrorCode::kCorrupt, "score increment with an integer total");
    }
  }
  for (const wire::Observed& observed : meta.observed()) {
    CODEC_RETURN_IF_ERROR(CheckDot(observed.owner()));
    if (observed.offsets().empty()) {
      return Unexpected(ErrorCode::kCorrupt, "observed offsets list is empty");
    }
    for (const wire::Offset& offset : observed.offsets()) {
      auto dot = GetDot(offset.replica(), offset.seq());
      CODEC_RETURN_IF_ERROR(dot);
      replicas_.insert(dot->replica);
      CODEC_RETURN_IF_ERROR(GetEpoch(offset));
      CODEC_RETURN_IF_ERROR(GetFloat(offset.ftotal()));
      if (score && offset.total() != 0) {
        return Unexpected(ErrorCode::kCorrupt, "score offset with an integer total");
      }
    }
  }
  return {};
}

template <typename Cell>
Result<void> KeyChecker::CheckCell(const Cell& cell, bool score) {
  int items = cell.entries_size() + cell.meta().tombs_size() + cell.meta().incs_size();
  for (const wire::Observed& observed : cell.meta().observed()) {
    items += observed.offsets_size();
  }
  if (items > kCellItemsMax) {
    return Unexpected(ErrorCode::kCorrupt, "register cell with too many items");
  }
  for (const auto& entry : cell.entries()) {
    CODEC_RETURN_IF_ERROR(CheckDot(entry.dot()));
    if constexpr (std::is_same_v<Cell, wire::ScoreCell>) {
      if (std::isnan(entry.value())) {
        return Unexpected(ErrorCode::kCorrupt, "NaN score");
      }
    }
  }
  return CheckMeta(cell.meta(), score);
}

// Expiry and creation cells only ever hold entries (no counter, so no tombstones or offsets).
template <typename Cell, typename EntryCheck>
Result<void> KeyChecker::CheckEntriesOnly(const Cell& cell, const char* kind,
                                          EntryCheck check_entry) {
  if (cell.has_meta() || cell.entries_size() > kCellItemsMax) {
    return Unexpected(ErrorCode::kCorrupt,
                      std::string(kind) + " cell with counter metadata or too many entries");
  }
  for (const auto& entry : cell.entries()) {
    CODEC_RETURN_IF_ERROR(CheckDot(entry.dot()));
    CODEC_RETURN_IF_ERROR(check_entry(entry));
  }
  return {};
}

Result<void> KeyChecker::CheckExpiry(const wire::ExpiryCell& cell) {
  return CheckEntriesOnly(cell, "expiry", [](const wire::ExpiryEntry& entry) -> Result<void> {
    if (entry.rule() > 2) {
      return Unexpected(ErrorCode::kCorrupt, "expiry rule out of range");
    }
    return {};
  });
}

// A creation event records the type of the incarnation it created: the type of its cell.
Result<void> KeyChecker::CheckCreation(const wire::CreationCell& cell, crdt::ObjectType type) {
  return CheckEntriesOnly(cell, "creation", [&](const wire::CreationEntry& entry) -> Result<void> {
    if (entry.type() != static_cast<uint32_t>(type)) {
      return Unexpected(ErrorCode::kCorrupt, "creation entry type does not match its cell");
    }
    return {};
  });
}

Result<void> KeyChecker::CheckMembers(
    const google::protobuf::RepeatedPtrField<wire::SetMember>& members) {
  for (const wire::SetMember& member : members) {
    if (member.replica_size() != member.seq_size()) {
      return Unexpected(ErrorCode::kCorrupt, "set member: replica and seq counts differ");
    }
    if (member.replica_size() == 0 || member.replica_size() > kCellItemsMax) {
      return Unexpected(ErrorCode::kCorrupt, "set member with no dots or too many");
    }
    for (int i = 0; i < member.replica_size(); ++i) {
      auto dot = GetDot(member.replica(i), member.seq(i));
      CODEC_RETURN_IF_ERROR(dot);
      replicas_.insert(dot->replica);
    }
  }
  return {};
}

// Every dot valid (a prefix digit's may be absent: replica 0 and seq 0), prefix arrays of one
// length and bounded, identities distinct. The order is checked when the list is rebuilt.
Result<void> KeyChecker::CheckList(
    const google::protobuf::RepeatedPtrField<wire::ListElement>& elements) {
  std::set<Dot> ids;
  for (const wire::ListElement& element : elements) {
    const int depth = element.prefix_n_size();
    if (element.prefix_replica_size() != depth || element.prefix_seq_size() != depth) {
      return Unexpected(ErrorCode::kCorrupt, "list element: prefix array lengths differ");
    }
    if (depth > kCellItemsMax) {
      return Unexpected(ErrorCode::kCorrupt, "list element position too deep");
    }
    for (int i = 0; i < depth; ++i) {
      if (element.prefix_replica(i) == kNoReplica && element.prefix_seq(i) == 0) {
        continue;
      }
      auto dot = GetDot(element.prefix_replica(i), element.prefix_seq(i));
      CODEC_RETURN_IF_ERROR(dot);
      replicas_.insert(dot->replica);
    }
    auto id = GetDot(element.id());
    CODEC_RETURN_IF_ERROR(id);
    replicas_.insert(id->replica);
    if (!ids.insert(*id).second) {
      return Unexpected(ErrorCode::kCorrupt, "list element identity repeated");
    }
    if (element.has_value_dot()) {
      CODEC_RETURN_IF_ERROR(CheckDot(element.value_dot()));
    }
  }
  return {};
}

// Every dot valid, every entry one field/value pair or more, the metadata cell bounded. The
// order is checked when the stream is rebuilt.
Result<void> KeyChecker::CheckStream(const wire::Key& key) {
  for (const wire::StreamEntry& entry : key.stream()) {
    CODEC_RETURN_IF_ERROR(CheckDot(entry.dot()));
    if (entry.fields_size() == 0 || entry.fields_size() % 2 != 0) {
      return Unexpected(ErrorCode::kCorrupt, "stream entry without field/value pairs");
    }
  }
  if (key.stream_meta_size() > kCellItemsMax) {
    return Unexpected(ErrorCode::kCorrupt, "stream metadata cell with too many entries");
  }
  for (const wire::StreamMetaEntry& entry : key.stream_meta()) {
    CODEC_RETURN_IF_ERROR(CheckDot(entry.dot()));
  }
  for (const wire::StreamGroupItem& item : key.stream_groups()) {
    CODEC_RETURN_IF_ERROR(CheckDot(item.dot()));
    if (item.part() > static_cast<uint32_t>(crdt::GroupPart::kPending)) {
      return Unexpected(ErrorCode::kCorrupt, "stream group item of an unknown part");
    }
  }
  return CheckCreation(key.stream_created(), crdt::ObjectType::kStream);
}

// Chunk cells hold entries only, each at most one chunk's bytes, at an index below the end; the
// order and distinctness of indexes are checked when the key is rebuilt.
Result<void> KeyChecker::CheckChunks(const wire::Key& key) {
  for (const wire::BitChunk& chunk : key.chunks()) {
    if (chunk.index() >= crdt::kChunkIndexEnd) {
      return Unexpected(ErrorCode::kCorrupt, "bitmap chunk index out of range");
    }
    CODEC_RETURN_IF_ERROR(CheckEntriesOnly(
        chunk.cell(), "bitmap chunk", [](const wire::StringEntry& entry) -> Result<void> {
          if (entry.value().size() > crdt::kChunkBytes) {
            return Unexpected(ErrorCode::kCorrupt, "bitmap chunk too long");
          }
          return {};
        }));
  }
  // Counter cells: a valid field, no entries (a counter is never assigned), no float totals.
  for (const wire::BitCounter& counter : key.counters()) {
    if (counter.bits() == 0 || counter.bits() > 64 ||
        !crdt::BitField{counter.offset(), counter.bits()}.Valid()) {
      return Unexpected(ErrorCode::kCorrupt, "bitmap counter field out of range");
    }
    if (counter.cell().entries_size() != 0) {
      return Unexpected(ErrorCode::kCorrupt, "bitmap counter with entries");
    }
    CODEC_RETURN_IF_ERROR(CheckCell(counter.cell(), /*score=*/false));
  }
  return {};
}

Result<void> KeyChecker::Check(const wire::Key& key) {
  CODEC_RETURN_IF_ERROR(CheckCell(key.string(), /*score=*/false));
  for (const wire::HashField& field : key.hash()) {
    CODEC_RETURN_IF_ERROR(CheckCell(field.value(), /*score=*/false));
    CODEC_RETURN_IF_ERROR(CheckExpiry(field.ttl()));
  }
  CODEC_RETURN_IF_ERROR(CheckMembers(key.set_adds()));
  CODEC_RETURN_IF_ERROR(CheckMembers(key.set_removes()));
  for (const wire::ZSetMember& member : key.zset()) {
    CODEC_RETURN_IF_ERROR(CheckCell(member.score(), /*score=*/true));
  }
  CODEC_RETURN_IF_ERROR(CheckMembers(key.zset_removes()));
  CODEC_RETURN_IF_ERROR(CheckCreation(key.hash_created(), crdt::ObjectType::kHash));
  CODEC_RETURN_IF_ERROR(CheckCreation(key.set_created(), crdt::ObjectType::kSet));
  CODEC_RETURN_IF_ERROR(CheckCreation(key.zset_created(), crdt::ObjectType::kZSet));
  CODEC_RETURN_IF_ERROR(CheckList(key.list()));
  CODEC_RETURN_IF_ERROR(CheckCreation(key.list_created(), crdt::ObjectType::kList));
  CODEC_RETURN_IF_ERROR(CheckStream(key));
  CODEC_RETURN_IF_ERROR(CheckChunks(key));
  return CheckExpiry(key.expiry());
}

}  // namespace

namespace {

// ---------------------------------------------------------------------------------------------
// Decoding, step 2: rebuilding crdt state. The crdt types keep their internals private, so each
// item of a register (entry, tombstone, increment chain, creation event, expiry entry) and each
// set dot is recreated by the Key mutator that makes it, on a scratch key prepared so that the
// mutator's delta is exactly that item; the pieces are then joined with empty contexts (a union).
// Scratch dots come from a replica the state does not name, so they never reach the result
// (step 3 verifies it).

enum class SlotKind { kString, kHashValue, kScore };
// The scratch keys a piece is written on: empty, or holding one hash field, member or set member.
enum class BaseKind { kNone, kHash, kScore, kSet };

// Where a register lives in a Key: the string cell, a hash field's value, or a member's score.
struct Slot {
  SlotKind kind;
  std::string name;  // the field or member
};

struct Value {
  const std::string* text = nullptr;  // string and hash-field cells
  double score = 0;                   // score cells
};

const std::string kZeroText = "0";

Value ValueOf(const wire::StringEntry& entry) { return Value{&entry.value(), 0}; }
Value ValueOf(const wire::ScoreEntry& entry) { return Value{nullptr, entry.value()}; }

// One increment chain to recreate: `dot` is its latest increment, `epoch` the entry it counts on.
struct IncSpec {
  Dot dot;
  Dot epoch;
  int64_t total = 0;
  long double ftotal = 0;
};

class KeyBuilder {
 public:
  // `batched`: a set's added members are rebuilt a run of consecutive dots at a time (one SADD
  // of the run's names), not one scratch write per dot (AddSetRuns).
  explicit KeyBuilder(ReplicaId scratch_replica, bool batched = false)
      : scratch_replica_(scratch_replica), batched_(batched) {}

  Result<void> AddKey(const wire::Key& key);
  crdt::Key Finish();

  // The pieces of the common writes (detail:: below): a scratch key of the slot's type, an
  // entry written on it, an increment chain, one set add dot.
  crdt::Key Base(const Slot& slot);
  crdt::Key BaseHolding(BaseKind kind, const std::string& other);
  Result<crdt::Key> Assign(crdt::Key& base, const Slot& slot, Value value, uint64_t hlc, Dot dot);
  Result<crdt::Key> IncPiece(const Slot& slot, const IncSpec& inc);
  // An SADD of `name` taking `dot`, on a copy of `base` (a set holding one other member).
  void AddSetMember(const crdt::Key& base, const std::string& name, Dot dot);

 private:
  template <typename Fn>
  Result<crdt::Key> Write(crdt::Key& base, Dot dot, uint64_t hlc, crdt::Policies policies,
                          Fn mutate);
  Dot Scratch() {
    const Dot dot{scratch_replica_, scratch_seq_};
    scratch_seq_ += 4;  // a mutator may take two dots (creation + element)
    return dot;
  }
  Result<crdt::Key> Increment(crdt::Key& base, const Slot& slot, int64_t by, long double float_by,
                              bool is_float, Dot dot);
  Result<crdt::Key> Remove(crdt::Key& base, const Slot& slot, uint64_t hlc, Dot dot);
  Result<crdt::Key> WithOffsets(const Slot& slot, const wire::Observed* observed);
  Result<crdt::Key> BareTomb(const Slot& slot, uint64_t hlc, Dot dot);
  template <typename Cell>
  Result<void> AddCell(const Slot& slot, const Cell& cell);
  Result<void> AddExpiry(const Slot& slot, const wire::ExpiryCell& cell);
  Result<void> AddCreation(crdt::ObjectType type, const wire::CreationCell& cell);
  enum class MemberDots { kSetAdd, kSetToken, kZSetToken };
  Result<void> AddMembers(const google::protobuf::RepeatedPtrField<wire::SetMember>& members,
                          MemberDots kind);
  Result<void> AddMemberDot(const std::string& member, Dot dot, MemberDots kind);
  Result<void> AddSetRuns(const google::protobuf::RepeatedPtrField<wire::SetMember>& members);
  Result<void> AddList(const google::protobuf::RepeatedPtrField<wire::ListElement>& elements);
  Result<void> AddStream(const wire::Key& key);
  void AddChunks(const wire::Key& key);
  Result<void> AddCounter(const wire::BitCounter& counter);

  ReplicaId scratch_replica_;
  bool batched_;
  uint64_t scratch_seq_ = 1;
  std::vector<crdt::Key> pieces_;
};

// Runs one local write on `base` whose dots start at `dot`, and returns its delta.
template <typename Fn>
Result<crdt::Key> KeyBuilder::Write(crdt::Key& base, Dot dot, uint64_t hlc, crdt::Policies policies,
                                    Fn mutate) {
  crdt::DotSource dots(dot.replica, dot.seq);
  crdt::DotContext shard;
  const crdt::Writer writer{&dots, hlc, /*now_ms=*/0, policies};
  Result<crdt::KeyOp> op = mutate(base, writer, shard);
  if (!op.ok()) {
    return Unexpected(ErrorCode::kCorrupt, "state cannot be rebuilt: " + op.error().message);
  }
  return std::move(op->delta);
}

// A scratch key of the slot's type, holding one element other than the slot's own.
crdt::Key KeyBuilder::Base(const Slot& slot) {
  const BaseKind kind = slot.kind == SlotKind::kHashValue ? BaseKind::kHash
                        : slot.kind == SlotKind::kScore   ? BaseKind::kScore
                                                          : BaseKind::kNone;
  return BaseHolding(kind, slot.name + "~");
}

// A scratch key of `kind` holding the one element `other` (a set: an SADD of it).
crdt::Key KeyBuilder::BaseHolding(BaseKind kind, const std::string& other) {
  crdt::Key base;
  if (kind == BaseKind::kSet) {
    (void)Write(base, Scratch(), 0, {}, [&](crdt::Key& k, const crdt::Writer& w, auto& s) {
      return k.SAdd({other}, w, s);
    });
  } else if (kind == BaseKind::kHash) {
    (void)Write(base, Scratch(), 0, {}, [&](crdt::Key& k, const crdt::Writer& w, auto& s) {
      return k.HSet(other, kZeroText, /*keep_ttl=*/true, w, s);
    });
  } else if (kind == BaseKind::kScore) {
    (void)Write(base, Scratch(), 0, {}, [&](crdt::Key& k, const crdt::Writer& w, auto& s) {
      return k.ZAdd(other, 0.0, w, s);
    });
  }
  return base;
}

Result<crdt::Key> KeyBuilder::Assign(crdt::Key& base, const Slot& slot, Value value, uint64_t hlc,
                                     Dot dot) {
  return Write(base, dot, hlc, {},
               [&](crdt::Key& k, const crdt::Writer& w, auto& s) -> Result<crdt::KeyOp> {
                 switch (slot.kind) {
                   case SlotKind::kString:
                     return k.Set(*value.text, /*keep_ttl=*/true, std::nullopt, w, s);
                   case SlotKind::kHashValue:
                     return k.HSet(slot.name, *value.text, /*keep_ttl=*/true, w, s);
                   case SlotKind::kScore:
                     return k.ZAdd(slot.name, value.score, w, s);
                 }
                 return Unexpected(ErrorCode::kCorrupt, "unknown slot");
               });
}

Result<crdt::Key> KeyBuilder::Increment(crdt::Key& base, const Slot& slot, int64_t by,
                                        long double float_by, bool is_float, Dot dot) {
  return Write(base, dot, 0, {},
               [&](crdt::Key& k, const crdt::Writer& w, auto& s) -> Result<crdt::KeyOp> {
                 switch (slot.kind) {
                   case SlotKind::kString:
                     return is_float ? k.IncrByFloat(float_by, w, s) : k.IncrBy(by, w, s);
                   case SlotKind::kHashValue:
                     return is_float ? k.HIncrByFloat(slot.name, float_by, w, s)
                                     : k.HIncrBy(slot.name, by, w, s);
                   case SlotKind::kScore:
                     return k.ZIncrBy(slot.name, static_cast<double>(float_by), w, s);
                 }
                 return Unexpected(ErrorCode::kCorrupt, "unknown slot");
               });
}

Result<crdt::Key> KeyBuilder::Remove(crdt::Key& base, const Slot& slot, uint64_t hlc, Dot dot) {
  return Write(base, dot, hlc, {},
               [&](crdt::Key& k, const crdt::Writer& w, auto& s) -> Result<crdt::KeyOp> {
                 switch (slot.kind) {
                   case SlotKind::kString: {
                     auto op = k.Del(w, s);
                     if (!op) {
                       return Unexpected(ErrorCode::kCorrupt, "nothing to remove");
                     }
                     return std::move(*op);
                   }
                   case SlotKind::kHashValue:
                     return k.HDel({slot.name}, w, s);
                   case SlotKind::kScore:
                     return k.ZRem({slot.name}, w, s);
                 }
                 return Unexpected(ErrorCode::kCorrupt, "unknown slot");
               });
}

// An increment entry {dot, epoch, total, ftotal}: an entry at the epoch (so the increments count
// on it), then at most two increments by the same replica, the last one taking `dot`.
Result<crdt::Key> KeyBuilder::IncPiece(const Slot& slot, const IncSpec& inc) {
  crdt::Key base = Base(slot);
  if (inc.epoch.valid()) {
    CODEC_RETURN_IF_ERROR(Assign(base, slot, Value{&kZeroText, 0}, 0, inc.epoch));
  }
  Dot step{inc.dot.replica, inc.dot.seq + 1};  // neither the epoch nor `dot`
  if (step == inc.epoch) {
    step.seq += 1;
  }
  if (slot.kind == SlotKind::kScore) {
    // ZINCRBY takes doubles: a long double total is their exact sum high + low.
    const double high = static_cast<double>(inc.ftotal);
    const double low = static_cast<double>(inc.ftotal - high);
    if (!std::isfinite(inc.ftotal) || low == 0) {
      return Increment(base, slot, 0, high, true, inc.dot);
    }
    if (static_cast<long double>(high) + low != inc.ftotal) {
      return Unexpected(ErrorCode::kCorrupt, "score total is not a sum of two doubles");
    }
    CODEC_RETURN_IF_ERROR(Increment(base, slot, 0, high, true, step));
    return Increment(base, slot, 0, low, true, inc.dot);
  }
  if (inc.total != 0 && inc.ftotal != 0) {
    CODEC_RETURN_IF_ERROR(Increment(base, slot, inc.total, 0, false, step));
    return Increment(base, slot, 0, inc.ftotal, true, inc.dot);
  }
  if (inc.ftotal != 0) {
    return Increment(base, slot, 0, inc.ftotal, true, inc.dot);
  }
  return Increment(base, slot, inc.total, 0, false, inc.dot);
}

// A scratch key whose slot holds the increments an entry or tombstone observed: the mutator
// records them as its offsets.
Result<crdt::Key> KeyBuilder::WithOffsets(const Slot& slot, const wire::Observed* observed) {
  crdt::Key base = Base(slot);
  if (observed == nullptr) {
    return base;
  }
  const crdt::DotContext none;
  for (const wire::Offset& offset : observed->offsets()) {
    auto dot = GetDot(offset.replica(), offset.seq());
    auto epoch = GetEpoch(offset);
    auto ftotal = GetFloat(offset.ftotal());
    if (!dot.ok() || !epoch.ok() || !ftotal.ok()) {
      return Unexpected(ErrorCode::kCorrupt, "bad offset");
    }
    auto piece = IncPiece(slot, IncSpec{*dot, *epoch, offset.total(), *ftotal});
    CODEC_RETURN_IF_ERROR(piece);
    base.Join(*piece, none, none);
  }
  return base;
}

// A tombstone whose offsets were compacted away. A remove always records offsets, so: remove a
// scratch increment, then compact with the tombstone stable (its offsets for a chain that no
// longer exists go) while an unstable scratch entry keeps the tombstone, then drop that entry.
Result<crdt::Key> KeyBuilder::BareTomb(const Slot& slot, uint64_t hlc, Dot dot) {
  const crdt::DotContext none;
  crdt::Key base = Base(slot);
  auto chain = IncPiece(slot, IncSpec{Scratch(), Dot{}, 0, 0});
  CODEC_RETURN_IF_ERROR(chain);
  base.Join(*chain, none, none);
  auto piece = Remove(base, slot, hlc, dot);
  CODEC_RETURN_IF_ERROR(piece);
  const Dot keeper = Scratch();
  crdt::Key keeper_base = Base(slot);
  auto keep = Assign(keeper_base, slot, Value{&kZeroText, 0}, 0, keeper);
  CODEC_RETURN_IF_ERROR(keep);
  piece->Join(*keep, none, none);
  crdt::VersionVector stable;
  stable.Set(dot.replica, dot.seq);
  piece->Compact(stable);
  crdt::DotContext drop;
  drop.Add(keeper);
  piece->Join(crdt::Key{}, none, drop);
  return piece;
}

template <typename Cell>
Result<void> KeyBuilder::AddCell(const Slot& slot, const Cell& cell) {
  auto observed_of = [&](const wire::Dot& owner) -> const wire::Observed* {
    for (const wire::Observed& o : cell.meta().observed()) {
      if (o.owner().replica() == owner.replica() && o.owner().seq() == owner.seq()) {
        return &o;
      }
    }
    return nullptr;
  };
  for (const auto& entry : cell.entries()) {
    auto base = WithOffsets(slot, observed_of(entry.dot()));
    CODEC_RETURN_IF_ERROR(base);
    const Dot dot{entry.dot().replica(), entry.dot().seq()};
    auto piece = Assign(*base, slot, ValueOf(entry), entry.hlc(), dot);
    CODEC_RETURN_IF_ERROR(piece);
    pieces_.push_back(std::move(*piece));
  }
  for (const wire::Tomb& tomb : cell.meta().tombs()) {
    const Dot dot{tomb.dot().replica(), tomb.dot().seq()};
    const wire::Observed* observed = observed_of(tomb.dot());
    Result<crdt::Key> piece = crdt::Key{};
    if (observed != nullptr) {
      auto base = WithOffsets(slot, observed);
      CODEC_RETURN_IF_ERROR(base);
      piece = Remove(*base, slot, tomb.hlc(), dot);
    } else {
      piece = BareTomb(slot, tomb.hlc(), dot);
    }
    CODEC_RETURN_IF_ERROR(piece);
    pieces_.push_back(std::move(*piece));
  }
  for (const wire::IncEntry& inc : cell.meta().incs()) {
    auto epoch = GetEpoch(inc);
    auto ftotal = GetFloat(inc.ftotal());
    if (!epoch.ok() || !ftotal.ok()) {
      return Unexpected(ErrorCode::kCorrupt, "bad increment entry");
    }
    const Dot dot{inc.dot().replica(), inc.dot().seq()};
    auto piece = IncPiece(slot, IncSpec{dot, *epoch, inc.total(), *ftotal});
    CODEC_RETURN_IF_ERROR(piece);
    pieces_.push_back(std::move(*piece));
  }
  return {};
}

// Expiry entries: EXPIRE of a scratch string (the string slot: key expiry), or HEXPIRE of a
// scratch field (a hash-value slot: that field's TTL). Their delta is the expiry entry alone.
Result<void> KeyBuilder::AddExpiry(const Slot& slot, const wire::ExpiryCell& cell) {
  for (const wire::ExpiryEntry& entry : cell.entries()) {
    crdt::Key base = Base(slot);
    CODEC_RETURN_IF_ERROR(Assign(base, slot, Value{&kZeroText, 0}, 0, Scratch()));
    crdt::Policies policies;
    policies.expiry = static_cast<crdt::ExpiryRule>(entry.rule());
    const Dot dot{entry.dot().replica(), entry.dot().seq()};
    auto piece =
        Write(base, dot, entry.hlc(), policies, [&](crdt::Key& k, const crdt::Writer& w, auto& s) {
          return slot.kind == SlotKind::kString ? k.Expire(entry.at_ms(), w, s)
                                                : k.HExpire(slot.name, entry.at_ms(), w, s);
        });
    CODEC_RETURN_IF_ERROR(piece);
    pieces_.push_back(std::move(*piece));
  }
  return {};
}

// Creation events: the first HSET/SADD/ZADD of an empty key takes `dot` for the creation entry
// and the next dot for its element, which is then dropped (joined with a context that has seen
// it and a state that does not hold it), leaving the creation entry alone.
Result<void> KeyBuilder::AddCreation(crdt::ObjectType type, const wire::CreationCell& cell) {
  const crdt::DotContext none;
  const std::string element;
  for (const wire::CreationEntry& entry : cell.entries()) {
    const Dot dot{entry.dot().replica(), entry.dot().seq()};
    crdt::Key base;
    crdt::Policies policies;
    if (entry.fixed_precedence()) {
      policies.type = crdt::TypeRule::kFixedPrecedence;
    }
    auto piece = Write(
        base, dot, entry.hlc(), policies,
        [&](crdt::Key& k, const crdt::Writer& w, auto& s) -> Result<crdt::KeyOp> {
          switch (type) {
            case crdt::ObjectType::kHash:
              return k.HSet(element, kZeroText, /*keep_ttl=*/true, w, s);
            case crdt::ObjectType::kSet:
              return k.SAdd({element}, w, s);
            case crdt::ObjectType::kList:
              return k.LEdit({}, crdt::ListEnd::kHead, {element}, w, s);
            case crdt::ObjectType::kStream: {
              crdt::Key::StreamEdit edit;
              edit.adds.emplace_back(crdt::StreamId{0, 1}, crdt::Stream::Fields{element, element});
              return k.XEdit(std::move(edit), w, s);
            }
            default:
              return k.ZAdd(element, 0.0, w, s);
          }
        });
    CODEC_RETURN_IF_ERROR(piece);
    crdt::DotContext drop;
    drop.Add(Dot{dot.replica, dot.seq + 1});
    piece->Join(crdt::Key{}, none, drop);
    pieces_.push_back(std::move(*piece));
  }
  return {};
}

// The list's elements as one piece (List takes decoded elements directly, in position order).
Result<void> KeyBuilder::AddList(
    const google::protobuf::RepeatedPtrField<wire::ListElement>& elements) {
  if (elements.empty()) {
    return {};
  }
  crdt::List list;
  for (const wire::ListElement& element : elements) {
    std::vector<crdt::ListDigit> prefix;
    prefix.reserve(static_cast<size_t>(element.prefix_n_size()));
    for (int i = 0; i < element.prefix_n_size(); ++i) {
      prefix.push_back(crdt::ListDigit{element.prefix_n(i),
                                       Dot{element.prefix_replica(i), element.prefix_seq(i)}});
    }
    const Dot id{element.id().replica(), element.id().seq()};
    const Dot value_dot = element.has_value_dot()
                              ? Dot{element.value_dot().replica(), element.value_dot().seq()}
                              : id;
    if (!list.AppendForDecode(
            crdt::ListPosition(std::move(prefix), crdt::ListDigit{element.n(), id}),
            crdt::ListValue{element.value(), element.hlc(), value_dot})) {
      return Unexpected(ErrorCode::kCorrupt, "list elements not in position order");
    }
  }
  pieces_.push_back(crdt::Key::OfList(crdt::CreationCell{}, std::move(list)));
  return {};
}

// The stream's entries and metadata entries as one piece (taken directly, entries in order).
Result<void> KeyBuilder::AddStream(const wire::Key& key) {
  if (key.stream().empty() && key.stream_meta().empty() && key.stream_groups().empty()) {
    return {};
  }
  crdt::Stream stream;
  for (const wire::StreamEntry& entry : key.stream()) {
    crdt::StreamEntryKey at{crdt::StreamId{entry.ms(), entry.seq()},
                            Dot{entry.dot().replica(), entry.dot().seq()}};
    if (!stream.AppendForDecode(
            at, crdt::Stream::Fields(entry.fields().begin(), entry.fields().end()))) {
      return Unexpected(ErrorCode::kCorrupt, "stream entries not in (ID, dot) order");
    }
  }
  for (const wire::StreamMetaEntry& entry : key.stream_meta()) {
    crdt::StreamMeta meta{crdt::StreamId{entry.last_ms(), entry.last_seq()},
                          crdt::StreamId{entry.max_deleted_ms(), entry.max_deleted_seq()},
                          entry.entries_added()};
    stream.JoinMetaForDecode(crdt::RegisterEntry<crdt::StreamMeta>{
        meta, entry.hlc(), Dot{entry.dot().replica(), entry.dot().seq()}});
  }
  for (const wire::StreamGroupItem& item : key.stream_groups()) {
    crdt::GroupItemKey at{crdt::GroupSlot{item.group(), static_cast<crdt::GroupPart>(item.part()),
                                          item.consumer(), crdt::StreamId{item.ms(), item.seq()}},
                          Dot{item.dot().replica(), item.dot().seq()}};
    crdt::GroupValue value{crdt::StreamId{item.last_ms(), item.last_seq()},
                           item.entries_read(),
                           item.seen_ms(),
                           item.active_ms(),
                           item.owner(),
                           item.deliveries(),
                           item.hlc()};
    if (!stream.AppendGroupForDecode(std::move(at), std::move(value))) {
      return Unexpected(ErrorCode::kCorrupt, "stream group items not in (slot, dot) order");
    }
  }
  pieces_.push_back(crdt::Key::OfStream(crdt::CreationCell{}, std::move(stream)));
  return {};
}

// Each chunk entry as a piece of its own (a register holding that entry alone): their union is
// the chunk's register.
void KeyBuilder::AddChunks(const wire::Key& key) {
  for (const wire::BitChunk& chunk : key.chunks()) {
    for (const wire::StringEntry& entry : chunk.cell().entries()) {
      pieces_.push_back(crdt::Key::OfChunk(
          chunk.index(),
          crdt::BitChunks::Cell::OfEntry(
              {entry.value(), entry.hlc(), Dot{entry.dot().replica(), entry.dot().seq()}})));
    }
  }
}

namespace {

// A counter's offsets, each (replica, epoch) chain once and with an integer total only.
Result<std::vector<crdt::Offset>> GetCounterOffsets(const wire::Observed& observed) {
  std::vector<crdt::Offset> offsets;
  for (const wire::Offset& offset : observed.offsets()) {
    auto epoch = GetEpoch(offset);
    CODEC_RETURN_IF_ERROR(epoch);
    if (!offset.ftotal().empty()) {
      return Unexpected(ErrorCode::kCorrupt, "bitmap counter offset with a float total");
    }
    for (const crdt::Offset& seen : offsets) {
      if (seen.replica == offset.replica() && seen.epoch == *epoch) {
        return Unexpected(ErrorCode::kCorrupt, "bitmap counter offset repeated");
      }
    }
    offsets.push_back(crdt::Offset{offset.replica(), *epoch, offset.seq(), offset.total(), 0});
  }
  return offsets;
}

}  // namespace

// A field counter as one piece, built directly (it holds no entries for a mutator to replay):
// its dots distinct, one chain per (replica, epoch), integer totals only. Whatever else the
// register would not hold as sent (order, an owner missing) fails the canonical comparison.
Result<void> KeyBuilder::AddCounter(const wire::BitCounter& counter) {
  const wire::RegisterMeta& meta = counter.cell().meta();
  std::vector<crdt::Tomb> tombs;
  std::vector<crdt::IncEntry> incs;
  std::set<Dot> dots;
  for (const wire::Tomb& tomb : meta.tombs()) {
    const Dot dot{tomb.dot().replica(), tomb.dot().seq()};
    if (!dots.insert(dot).second) return Unexpected(ErrorCode::kCorrupt, "counter dot repeated");
    tombs.push_back(crdt::Tomb{tomb.hlc(), dot});
  }
  for (const wire::IncEntry& inc : meta.incs()) {
    auto epoch = GetEpoch(inc);
    CODEC_RETURN_IF_ERROR(epoch);
    const Dot dot{inc.dot().replica(), inc.dot().seq()};
    if (!inc.ftotal().empty() || !dots.insert(dot).second) {
      return Unexpected(ErrorCode::kCorrupt, "counter increment repeated or not an integer");
    }
    for (const crdt::IncEntry& seen : incs) {
      if (seen.dot.replica == dot.replica && seen.epoch == *epoch) {
        return Unexpected(ErrorCode::kCorrupt, "counter chain repeated");
      }
    }
    incs.push_back(crdt::IncEntry{dot, *epoch, inc.total(), 0});
  }
  std::vector<crdt::Observed> observed;
  for (const wire::Observed& o : meta.observed()) {
    auto offsets = GetCounterOffsets(o);
    CODEC_RETURN_IF_ERROR(offsets);
    observed.push_back(
        crdt::Observed{Dot{o.owner().replica(), o.owner().seq()}, std::move(*offsets)});
  }
  pieces_.push_back(crdt::Key::OfBitCounter(
      crdt::BitField{counter.offset(), counter.bits()},
      crdt::BitChunks::Counter::OfMeta(std::move(tombs), std::move(incs), std::move(observed))));
  return {};
}

// Member dots, one piece per dot:
// - kSetAdd: an SADD of the member on a set key (an add dot);
// - kSetToken: an SREM under remove-wins of a member the scratch key holds (a remove token);
// - kZSetToken: a ZREM under remove-wins of a member the scratch key holds (a remove token).
Result<void> KeyBuilder::AddMembers(
    const google::protobuf::RepeatedPtrField<wire::SetMember>& members, MemberDots kind) {
  if (batched_ && kind == MemberDots::kSetAdd) {
    return AddSetRuns(members);
  }
  for (const wire::SetMember& member : members) {
    for (int i = 0; i < member.replica_size(); ++i) {
      const Dot dot{member.replica(i), member.seq(i)};
      CODEC_RETURN_IF_ERROR(AddMemberDot(member.name(), dot, kind));
    }
  }
  return {};
}

Result<void> KeyBuilder::AddMemberDot(const std::string& member, Dot dot, MemberDots kind) {
  crdt::Policies policies;
  if (kind == MemberDots::kZSetToken) {
    policies.zset = crdt::SetRule::kRemoveWins;
  } else {
    policies.set = crdt::SetRule::kRemoveWins;
  }
  const std::vector<std::string> name{member};
  const std::vector<std::string> seed{kind == MemberDots::kSetAdd ? member + "~" : member};
  crdt::Key base;
  (void)Write(base, Scratch(), 0, {}, [&](crdt::Key& k, const crdt::Writer& w, auto& s) {
    return kind == MemberDots::kZSetToken ? k.ZAdd(member, 0.0, w, s) : k.SAdd(seed, w, s);
  });
  auto piece = Write(base, dot, 0, policies, [&](crdt::Key& k, const crdt::Writer& w, auto& s) {
    if (kind == MemberDots::kSetAdd) return k.SAdd(name, w, s);
    if (kind == MemberDots::kSetToken) return k.SRem(name, w, s);
    return k.ZRem(name, w, s);
  });
  CODEC_RETURN_IF_ERROR(piece);
  pieces_.push_back(std::move(*piece));
  return {};
}

// A set's added members by runs: the (dot, name) pairs in dot order, cut where the replica
// changes, a seq is skipped or a name repeats; each run is one SADD of its names, in dot order,
// whose dots start at the run's first (an SADD takes one dot per new member, in argument order),
// on a scratch set holding a name of none of them. What it rebuilds is checked as every key is
// (GetKey exports it and compares); a key it cannot rebuild exactly is rebuilt dot by dot.
Result<void> KeyBuilder::AddSetRuns(
    const google::protobuf::RepeatedPtrField<wire::SetMember>& members) {
  std::vector<std::pair<Dot, const std::string*>> dots;
  size_t longest = 0;
  for (const wire::SetMember& member : members) {
    for (int i = 0; i < member.replica_size(); ++i) {
      dots.emplace_back(Dot{member.replica(i), member.seq(i)}, &member.name());
    }
    longest = std::max(longest, member.name().size());
  }
  if (dots.empty()) {
    return {};
  }
  std::sort(dots.begin(), dots.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  // Longer than every member: the scratch set's own member is none of them.
  const std::string seed(longest + 1, '~');
  crdt::Policies policies;
  policies.set = crdt::SetRule::kRemoveWins;
  std::vector<std::string> names;
  std::set<std::string_view> in_run;
  size_t begin = 0;
  for (size_t i = 0; i <= dots.size(); ++i) {
    const bool cut =
        i == dots.size() || (i > begin && (dots[i].first.replica != dots[i - 1].first.replica ||
                                           dots[i].first.seq != dots[i - 1].first.seq + 1 ||
                                           in_run.contains(*dots[i].second)));
    if (!cut) {
      in_run.insert(*dots[i].second);
      continue;
    }
    names.clear();
    for (size_t j = begin; j < i; ++j) names.push_back(*dots[j].second);
    crdt::Key base;
    (void)Write(base, Scratch(), 0, {}, [&](crdt::Key& k, const crdt::Writer& w, auto& sh) {
      return k.SAdd({seed}, w, sh);
    });
    auto piece =
        Write(base, dots[begin].first, 0, policies,
              [&](crdt::Key& k, const crdt::Writer& w, auto& sh) { return k.SAdd(names, w, sh); });
    CODEC_RETURN_IF_ERROR(piece);
    pieces_.push_back(std::move(*piece));
    if (i == dots.size()) {
      break;
    }
    begin = i;
    in_run.clear();
    in_run.insert(*dots[i].second);
  }
  return {};
}

void KeyBuilder::AddSetMember(const crdt::Key& base, const std::string& name, Dot dot) {
  crdt::Policies policies;
  policies.set = crdt::SetRule::kRemoveWins;
  crdt::Key scratch = base;
  auto piece = Write(scratch, dot, 0, policies, [&](crdt::Key& k, const crdt::Writer& w, auto& s) {
    return k.SAdd({name}, w, s);
  });
  LATTICE_ASSERT_MSG(piece.ok(), "a set add dot could not be rebuilt");
  pieces_.push_back(std::move(*piece));
}

Result<void> KeyBuilder::AddKey(const wire::Key& key) {
  if (key.has_string()) {
    CODEC_RETURN_IF_ERROR(AddCell(Slot{SlotKind::kString, {}}, key.string()));
  }
  for (const wire::HashField& field : key.hash()) {
    if (field.has_value()) {
      CODEC_RETURN_IF_ERROR(AddCell(Slot{SlotKind::kHashValue, field.name()}, field.value()));
    }
    CODEC_RETURN_IF_ERROR(AddExpiry(Slot{SlotKind::kHashValue, field.name()}, field.ttl()));
  }
  CODEC_RETURN_IF_ERROR(AddMembers(key.set_adds(), MemberDots::kSetAdd));
  CODEC_RETURN_IF_ERROR(AddMembers(key.set_removes(), MemberDots::kSetToken));
  for (const wire::ZSetMember& member : key.zset()) {
    CODEC_RETURN_IF_ERROR(AddCell(Slot{SlotKind::kScore, member.name()}, member.score()));
  }
  CODEC_RETURN_IF_ERROR(AddMembers(key.zset_removes(), MemberDots::kZSetToken));
  CODEC_RETURN_IF_ERROR(AddCreation(crdt::ObjectType::kHash, key.hash_created()));
  CODEC_RETURN_IF_ERROR(AddCreation(crdt::ObjectType::kSet, key.set_created()));
  CODEC_RETURN_IF_ERROR(AddCreation(crdt::ObjectType::kZSet, key.zset_created()));
  CODEC_RETURN_IF_ERROR(AddList(key.list()));
  CODEC_RETURN_IF_ERROR(AddCreation(crdt::ObjectType::kList, key.list_created()));
  CODEC_RETURN_IF_ERROR(AddStream(key));
  CODEC_RETURN_IF_ERROR(AddCreation(crdt::ObjectType::kStream, key.stream_created()));
  AddChunks(key);
  for (const wire::BitCounter& counter : key.counters()) {
    CODEC_RETURN_IF_ERROR(AddCounter(counter));
  }
  return AddExpiry(Slot{SlotKind::kString, {}}, key.expiry());
}

// Joins the pieces pairwise (a balanced tree): joins walk whole maps, so a linear fold of n set
// members would be quadratic.
crdt::Key KeyBuilder::Finish() {
  if (pieces_.empty()) {
    return crdt::Key{};
  }
  const crdt::DotContext none;
  while (pieces_.size() > 1) {
    std::vector<crdt::Key> next;
    for (size_t i = 0; i + 1 < pieces_.size(); i += 2) {
      pieces_[i].Join(pieces_[i + 1], none, none);
      next.push_back(std::move(pieces_[i]));
    }
    if (pieces_.size() % 2 == 1) {
      next.push_back(std::move(pieces_.back()));
    }
    pieces_ = std::move(next);
  }
  return std::move(pieces_.front());
}

// Step 3: export what was rebuilt and compare. Anything the crdt could not hold exactly (an
// unsorted list, a duplicate dot, an offset list without its owner...) differs, and is refused.
Result<crdt::Key> GetKey(const wire::Key& in) {
  KeyChecker checker;
  CODEC_RETURN_IF_ERROR(checker.Check(in));
  ReplicaId scratch = 1;
  while (checker.replicas().contains(scratch)) {
    ++scratch;
  }
  // Batched first (a set's members by runs of dots); a key that does not come out exactly so is
  // rebuilt dot by dot, and refused if that does not match either.
  const std::string expected = in.SerializeAsString();
  for (const bool batched : {true, false}) {
    KeyBuilder builder(scratch, batched);
    if (Result<void> added = builder.AddKey(in); !added.ok()) {
      if (batched) continue;
      return Unexpected(added.error());
    }
    crdt::Key key = builder.Finish();
    wire::Key again;
    PutKey(key, &again);
    if (again.SerializeAsString() == expected) {
      return key;
    }
  }
  return Unexpected(ErrorCode::kCorrupt, "key state is not canonical or not representable");
}

}  // namespace

namespace {

// The dots an op's delta wrote: every dot it holds, except that an LSET's element is named by its
// position and identity (the dot of the insert, an earlier op), and only its value dot is new.
void CollectWrittenDots(const crdt::Key& delta, crdt::DotContext& out) {
  const crdt::KeyRest* rest = delta.rest();
  if (rest == nullptr || !rest->has_list()) {
    delta.CollectDots(out);
    return;
  }
  delta.string().CollectDots(out);
  rest->hash().CollectDots(out);
  rest->set().CollectDots(out);
  rest->zset().CollectDots(out);
  rest->hash_created().CollectDots(out);
  rest->set_created().CollectDots(out);
  rest->zset_created().CollectDots(out);
  rest->list_created().CollectDots(out);
  rest->stream().CollectDots(out);
  rest->stream_created().CollectDots(out);
  rest->expiry().CollectDots(out);
  rest->chunks().CollectDots(out);
  rest->list().ForEachElement(
      [&](const crdt::ListPosition&, const crdt::ListValue& value) { out.Add(value.dot); });
}

// An op's delta holds only what the op wrote (its own dots), and its context covers them all.
Result<void> CheckOwnDots(const crdt::KeyOp& op) {
  const Dot first = op.first_dot;
  const uint64_t last = first.seq + op.dot_count - 1;
  auto in_range = [&](ReplicaId replica, uint64_t seq) {
    return replica == first.replica && seq >= first.seq && seq <= last;
  };
  crdt::DotContext written;
  CollectWrittenDots(op.delta, written);
  for (const auto& [replica, seq] : written.vector().entries()) {
    if (!in_range(replica, 1) || !in_range(replica, seq)) {
      return Unexpected(ErrorCode::kCorrupt, "op delta holds a dot outside first_dot/dot_count");
    }
  }
  for (const Dot& dot : written.cloud()) {
    if (!in_range(dot.replica, dot.seq)) {
      return Unexpected(ErrorCode::kCorrupt, "op delta holds a dot outside first_dot/dot_count");
    }
  }
  // Bounded: every step past the vector must hit a cloud dot, or the check fails there.
  for (uint64_t seq = std::max(first.seq, op.context.vector().Get(first.replica) + 1); seq <= last;
       ++seq) {
    if (!op.context.Contains(Dot{first.replica, seq})) {
      return Unexpected(ErrorCode::kCorrupt, "op context does not cover the op's dots");
    }
  }
  return {};
}

Result<Message> GetHello(const wire::Hello& in) {
  if (in.replica() == kNoReplica) {
    return Unexpected(ErrorCode::kCorrupt, "hello with replica 0");
  }
  auto applied = GetVector(in.applied());
  CODEC_RETURN_IF_ERROR(applied);
  return Message(Hello{in.shard_id(), in.replica(), in.region(), in.protocol_version(),
                       std::move(*applied), in.auth_nonce(), in.features()});
}

Result<Message> GetSnapshotChunk(const wire::SnapshotChunk& in) {
  SnapshotChunk out;
  out.snapshot_id = in.snapshot_id();
  out.last = in.last();
  for (const wire::SnapshotKey& key : in.keys()) {
    auto state = GetKey(key.state());
    CODEC_RETURN_IF_ERROR(state);
    out.keys.push_back(SnapshotKey{key.db(), key.key(), std::move(*state)});
  }
  auto context = GetContext(in.context());
  CODEC_RETURN_IF_ERROR(context);
  out.context = std::move(*context);
  return Message(std::move(out));
}

Result<Message> GetVectorMessage(const wire::Envelope& in) {
  const bool ack = in.body_case() == wire::Envelope::kAck;
  auto applied = GetVector(ack ? in.ack().applied() : in.heartbeat().applied());
  CODEC_RETURN_IF_ERROR(applied);
  if (ack) {
    return Message(Ack{std::move(*applied)});
  }
  std::vector<ReplicaId> connected(in.heartbeat().connected().begin(),
                                   in.heartbeat().connected().end());
  for (size_t i = 0; i < connected.size(); ++i) {
    if (connected[i] == kNoReplica || (i > 0 && connected[i] <= connected[i - 1])) {
      return Unexpected(ErrorCode::kCorrupt, "heartbeat: connected replicas not sorted or 0");
    }
  }
  return Message(
      Heartbeat{in.heartbeat().sender_time_ms(), std::move(*applied), std::move(connected)});
}

Result<Message> GetMessage(const wire::Envelope& in, ReplicaId sender) {
  switch (in.body_case()) {
    case wire::Envelope::kHello:
      return GetHello(in.hello());
    case wire::Envelope::kOps: {
      auto batch = DecodeOpBatch(in.ops(), sender);
      CODEC_RETURN_IF_ERROR(batch);
      return Message(std::move(*batch));
    }
    case wire::Envelope::kAck:
    case wire::Envelope::kHeartbeat:
      return GetVectorMessage(in);
    case wire::Envelope::kSnapshotChunk:
      return GetSnapshotChunk(in.snapshot_chunk());
    case wire::Envelope::kGoodbye:
      return Message(Goodbye{in.goodbye().reason()});
    case wire::Envelope::kLinkProof:
      return Message(LinkProof{in.link_proof().proof()});
    case wire::Envelope::kPublish:
      return Message(
          Publish{in.publish().channel(), in.publish().message(), in.publish().sharded()});
    case wire::Envelope::BODY_NOT_SET:
      break;
  }
  return Unexpected(ErrorCode::kCorrupt, "envelope without a known message");
}

}  // namespace

namespace {

google::protobuf::ArenaOptions ArenaOptions() {
  google::protobuf::ArenaOptions options;
  options.start_block_size = 4096;
  options.max_block_size = 1 << 20;
  return options;
}

void AppendVarint(uint64_t value, std::string& out) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

// A length-delimited field (wire type 2) of `field`, small field numbers only.
void AppendLengthDelimited(int field, std::string_view bytes, std::string& out) {
  out.push_back(static_cast<char>((field << 3) | 2));
  AppendVarint(bytes.size(), out);
  out.append(bytes);
}

// Envelope{ops: <compact batch>}, written directly (a length-delimited field 8).
std::string EncodeOpBatch(const OpBatch& batch) {
  std::string inner;
  AppendOpBatch(batch, inner);
  std::string out;
  out.reserve(inner.size() + 8);
  AppendLengthDelimited(wire::Envelope::kOpsFieldNumber, inner, out);
  return out;
}

// What precedes an encoded batch's ops in its Envelope: the field 8 tag and length, the count.
std::string EnvelopeHead(const EncodedOpBatch& batch) {
  std::string count;
  AppendVarint(batch.count, count);
  std::string head(1, static_cast<char>((wire::Envelope::kOpsFieldNumber << 3) | 2));
  AppendVarint(count.size() + batch.ops.size(), head);
  head += count;
  return head;
}

// The payload of an Envelope that is only field 8 (how EncodeOpBatch writes one), or nullopt.
std::optional<std::string_view> OpsPayload(std::string_view bytes) {
  constexpr char kTag = (wire::Envelope::kOpsFieldNumber << 3) | 2;
  if (bytes.empty() || bytes[0] != kTag) {
    return std::nullopt;
  }
  uint64_t size = 0;
  size_t pos = 1;
  for (int shift = 0; shift < 35 && pos < bytes.size(); shift += 7) {
    const auto byte = static_cast<uint8_t>(bytes[pos++]);
    size |= uint64_t{byte & 0x7Fu} << shift;
    if ((byte & 0x80) == 0) {
      if (size != bytes.size() - pos) {
        return std::nullopt;
      }
      return bytes.substr(pos);
    }
  }
  return std::nullopt;
}

}  // namespace

std::string Encode(const Message& message) {
  if (const auto* batch = std::get_if<OpBatch>(&message)) {
    return EncodeOpBatch(*batch);
  }
  // On an arena: a snapshot chunk is thousands of small messages, and allocating and freeing
  // each from the heap was most of the cost of encoding one (slot migration, checkpoints).
  google::protobuf::Arena arena(ArenaOptions());
  auto* envelope = google::protobuf::Arena::CreateMessage<wire::Envelope>(&arena);
  std::visit(
      [&](const auto& m) {
        if constexpr (!std::is_same_v<std::decay_t<decltype(m)>, OpBatch>) {
          PutMessage(m, envelope);
        }
      },
      message);
  return envelope->SerializeAsString();
}

std::string EncodeOpBatch(const EncodedOpBatch& batch) {
  std::string out = EnvelopeHead(batch);
  out.append(batch.ops);
  return out;
}

void AppendOpBatchFrame(const EncodedOpBatch& batch, std::string& out) {
  AppendFrame(EnvelopeHead(batch), batch.ops, out);
}

std::string EncodeSnapshotChunk(uint64_t snapshot_id, std::span<const SnapshotKeyRef> keys,
                                const crdt::DotContext& context, bool last) {
  google::protobuf::Arena arena(ArenaOptions());
  auto* envelope = google::protobuf::Arena::CreateMessage<wire::Envelope>(&arena);
  wire::SnapshotChunk* chunk = envelope->mutable_snapshot_chunk();
  chunk->set_snapshot_id(snapshot_id);
  for (const SnapshotKeyRef& key : keys) {
    PutSnapshotKey(key.db, key.key, *key.state, chunk);
  }
  chunk->set_last(last);
  PutContext(context, chunk->mutable_context());
  return envelope->SerializeAsString();
}

Result<Message> Decode(std::string_view bytes, ReplicaId sender) {
  if (std::optional<std::string_view> ops = OpsPayload(bytes)) {
    auto batch = DecodeOpBatch(*ops, sender);
    CODEC_RETURN_IF_ERROR(batch);
    return Message(std::move(*batch));
  }
  google::protobuf::Arena arena(ArenaOptions());
  auto* envelope = google::protobuf::Arena::CreateMessage<wire::Envelope>(&arena);
  if (bytes.size() > INT_MAX ||
      !envelope->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Unexpected(ErrorCode::kCorrupt, "malformed protobuf");
  }
  return GetMessage(*envelope, sender);
}

namespace detail {

Result<crdt::Dot> CheckedDot(ReplicaId replica, uint64_t seq) { return GetDot(replica, seq); }

std::string EncodeKeyState(const crdt::Key& key) {
  wire::Key message;
  PutKey(key, &message);
  return message.SerializeAsString();
}

Result<crdt::Key> DecodeKeyState(std::string_view bytes) {
  google::protobuf::Arena arena(ArenaOptions());
  auto* key = google::protobuf::Arena::CreateMessage<wire::Key>(&arena);
  if (bytes.size() > INT_MAX ||
      !key->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Unexpected(ErrorCode::kCorrupt, "malformed protobuf key state");
  }
  return GetKey(*key);
}

Result<void> CheckOpDots(const crdt::KeyOp& op) { return CheckOwnDots(op); }

namespace {

// A scratch replica that none of the given dots names.
ReplicaId ScratchAvoiding(ReplicaId a, ReplicaId b = kNoReplica) {
  ReplicaId scratch = 1;
  while (scratch == a || scratch == b) {
    ++scratch;
  }
  return scratch;
}

crdt::Key Checked(Result<crdt::Key> piece) {
  LATTICE_ASSERT_MSG(piece.ok(), "a common write's delta could not be rebuilt");
  return std::move(*piece);
}

}  // namespace

crdt::Key StringEntryDelta(const std::string& value, uint64_t hlc, crdt::Dot dot) {
  KeyBuilder builder(ScratchAvoiding(dot.replica));
  crdt::Key base;
  return Checked(builder.Assign(base, Slot{SlotKind::kString, {}}, Value{&value, 0}, hlc, dot));
}

crdt::Key IncrementDelta(crdt::Dot dot, crdt::Dot epoch, int64_t total) {
  KeyBuilder builder(ScratchAvoiding(dot.replica, epoch.replica));
  return Checked(builder.IncPiece(Slot{SlotKind::kString, {}}, IncSpec{dot, epoch, total, 0}));
}

// Scratch keys of one type holding one element, made once per thread and copied for each op
// (a copy costs less than the mutator that makes one). The element is one of two names, whichever
// differs from the op's, and the scratch replica is not the op's origin.
const crdt::Key& CachedBase(BaseKind kind, ReplicaId scratch, const std::string& avoid) {
  static const std::string kNames[2] = {std::string(1, '\x01'), std::string(1, '\x02')};
  const int name = avoid == kNames[0] ? 1 : 0;
  thread_local std::map<std::tuple<BaseKind, ReplicaId, int>, crdt::Key> cache;
  auto [it, made] = cache.try_emplace({kind, scratch, name});
  if (made) {
    it->second = KeyBuilder(scratch).BaseHolding(kind, kNames[name]);
  }
  return it->second;
}

crdt::Key HashEntryDelta(const std::string& field, const std::string& value, uint64_t hlc,
                         crdt::Dot dot) {
  const ReplicaId scratch = ScratchAvoiding(dot.replica);
  KeyBuilder builder(scratch);
  const Slot slot{SlotKind::kHashValue, field};
  crdt::Key base = CachedBase(BaseKind::kHash, scratch, field);
  return Checked(builder.Assign(base, slot, Value{&value, 0}, hlc, dot));
}

crdt::Key SetAddsDelta(const std::vector<std::pair<std::string, crdt::Dot>>& members) {
  const ReplicaId scratch =
      ScratchAvoiding(members.empty() ? kNoReplica : members[0].second.replica);
  KeyBuilder builder(scratch);
  for (const auto& [name, dot] : members) {
    builder.AddSetMember(CachedBase(BaseKind::kSet, scratch, name), name, dot);
  }
  return builder.Finish();
}

crdt::Key ScoreEntryDelta(const std::string& member, double score, uint64_t hlc, crdt::Dot dot) {
  const ReplicaId scratch = ScratchAvoiding(dot.replica);
  KeyBuilder builder(scratch);
  const Slot slot{SlotKind::kScore, member};
  crdt::Key base = CachedBase(BaseKind::kScore, scratch, member);
  return Checked(builder.Assign(base, slot, Value{nullptr, score}, hlc, dot));
}

}  // namespace detail

}  // namespace lattice::repl
