#pragma once
// Test support for tests/crdt: a tiny deterministic world of replicas that write, exchange ops in
// causal order and join states, driven by one lattice::Rng seed. Workloads pick the commands of
// one CRDT type (or all of them, for the key envelope) over small domains so conflicts are common.

#include <optional>
#include <string>
#include <vector>

#include "lattice/common/rng.h"
#include "lattice/crdt/hlc.h"
#include "lattice/crdt/key.h"

namespace lattice::crdt::testing {

struct Replica {
  Key key;
  DotContext context;
  DotSource dots;
  HlcClock clock{1'000'000};
  std::vector<bool> applied;  // by op index
};

struct Recorded {
  KeyOp op;
  std::vector<bool> deps;  // ops applied at the origin before this one
};

// (key, context) joined: what a snapshot transfer does.
inline std::pair<Key, DotContext> Joined(const std::pair<Key, DotContext>& a,
                                         const std::pair<Key, DotContext>& b) {
  std::pair<Key, DotContext> out = a;
  out.first.Join(b.first, a.second, b.second);
  out.second.Join(b.second);
  return out;
}

inline std::string Pick(Rng& rng, const std::vector<std::string>& from) {
  return from[rng.Uniform(from.size())];
}

inline Policies RandomPolicies(Rng& rng) {
  Policies p;
  p.set = rng.Chance(1, 3) ? SetRule::kRemoveWins : SetRule::kAddWins;
  p.string = rng.Chance(1, 3) ? StringRule::kLww : StringRule::kCounter;
  p.hash_field = rng.Chance(1, 3) ? StringRule::kLww : StringRule::kCounter;
  p.expiry = static_cast<ExpiryRule>(rng.Uniform(3));  // lww, longest, shortest
  p.zset = rng.Chance(1, 3) ? SetRule::kRemoveWins : SetRule::kAddWins;
  p.type = rng.Chance(1, 3) ? TypeRule::kFixedPrecedence : TypeRule::kNewestCreator;
  return p;
}

inline const std::vector<std::string> kNames = {"a", "b", "c"};
inline const std::vector<std::string> kValues = {"1", "7", "-3", "x", "2.5"};

template <typename R>
std::optional<KeyOp> Take(R result) {
  if (!result) {
    return std::nullopt;
  }
  return std::move(*result);
}

struct StringWorkload {
  static std::optional<KeyOp> Write(Rng& rng, Key& key, const Writer& w, DotContext& ctx) {
    switch (rng.Uniform(5)) {
      case 0:
        return Take(key.Set(Pick(rng, kValues), false, std::nullopt, w, ctx));
      case 1:
        return Take(key.IncrBy(rng.Range(-5, 5), w, ctx));
      case 2:
        return Take(key.IncrByFloat(0.25L * static_cast<long double>(rng.Range(-4, 4)), w, ctx));
      case 3:
        return Take(key.Del(w, ctx));
      default:
        return Take(key.IncrBy(1, w, ctx));
    }
  }
};

struct SetWorkload {
  static std::optional<KeyOp> Write(Rng& rng, Key& key, const Writer& w, DotContext& ctx) {
    switch (rng.Uniform(4)) {
      case 0:
      case 1:
        return Take(key.SAdd({Pick(rng, kNames), Pick(rng, kNames)}, w, ctx));
      case 2:
        return Take(key.SRem({Pick(rng, kNames)}, w, ctx));
      default:
        return Take(key.Del(w, ctx));
    }
  }
};

struct HashWorkload {
  static std::optional<KeyOp> Write(Rng& rng, Key& key, const Writer& w, DotContext& ctx) {
    const std::string field = Pick(rng, kNames);
    switch (rng.Uniform(6)) {
      case 0:
        return Take(key.HSet(field, Pick(rng, kValues), rng.Chance(1, 4), w, ctx));
      case 1:
        return Take(key.HIncrBy(field, rng.Range(-3, 3), w, ctx));
      case 2:
        return Take(key.HIncrByFloat(field, 0.5L, w, ctx));
      case 3:
        return Take(key.HDel({field}, w, ctx));
      case 4:
        return Take(key.HExpire(field, rng.Chance(1, 4) ? 0 : w.now_ms + rng.Range(1, 20), w, ctx));
      default:
        return Take(key.Reclaim(w, ctx));
    }
  }
};

struct ZSetWorkload {
  static std::optional<KeyOp> Write(Rng& rng, Key& key, const Writer& w, DotContext& ctx) {
    const std::string member = Pick(rng, kNames);
    switch (rng.Uniform(4)) {
      case 0:
        return Take(key.ZAdd(member, static_cast<double>(rng.Range(-3, 3)), w, ctx));
      case 1:
        return Take(key.ZIncrBy(member, 0.5 * static_cast<double>(rng.Range(-3, 3)), w, ctx));
      case 2:
        return Take(key.ZRem({member}, w, ctx));
      default:
        return Take(key.Del(w, ctx));
    }
  }
};

struct ListWorkload {
  static std::optional<KeyOp> Write(Rng& rng, Key& key, const Writer& w, DotContext& ctx) {
    const size_t size = key.TypeAt(w.now_ms) == ObjectType::kList ? key.list().Size() : 0;
    const ListEnd end = rng.Chance(1, 2) ? ListEnd::kHead : ListEnd::kTail;
    switch (rng.Uniform(7)) {
      case 0:
      case 1:
        return Take(key.LEdit({}, end, {Pick(rng, kValues), Pick(rng, kValues)}, w, ctx));
      case 2:  // LPOP/RPOP, LREM, LTRIM: some elements observed and removed
        if (size == 0) return std::nullopt;
        if (rng.Chance(1, 2)) {
          return Take(key.LEdit({end == ListEnd::kHead ? 0 : size - 1}, end, {}, w, ctx));
        } else {
          std::vector<size_t> indexes;
          for (size_t i = 0; i < size; ++i) {
            if (rng.Chance(1, 3)) indexes.push_back(i);
          }
          if (indexes.empty()) return std::nullopt;
          return Take(key.LEdit(indexes, end, {}, w, ctx));
        }
      case 3:  // LINSERT
        if (size == 0) return std::nullopt;
        return Take(key.LInsert(static_cast<size_t>(rng.Uniform(size)), rng.Chance(1, 2),
                                Pick(rng, kValues), w, ctx));
      case 4:  // LSET
        if (size == 0) return std::nullopt;
        return Take(key.LSet(static_cast<size_t>(rng.Uniform(size)), Pick(rng, kValues), w, ctx));
      case 5:  // LMOVE within the key
        if (size == 0) return std::nullopt;
        return Take(key.LEdit({0}, ListEnd::kTail, {std::string(*key.list().At(0))}, w, ctx));
      default:
        return Take(key.Del(w, ctx));
    }
  }
};

// Streams: XADD with IDs from a small domain (so regions collide on IDs), XDEL, XTRIM, XSETID,
// and consumer groups (CREATE/SETID, deliveries and claims, XACK, DELCONSUMER, DESTROY) over two
// groups and two consumers, so concurrent group writes meet often.
struct StreamWorkload {
  static std::optional<KeyOp> Write(Rng& rng, Key& key, const Writer& w, DotContext& ctx) {
    const bool is_stream = key.TypeAt(w.now_ms) == ObjectType::kStream;
    const Stream& stream = key.stream();
    const StreamMeta meta = is_stream ? stream.Meta() : StreamMeta{};
    Key::StreamEdit edit;
    const uint64_t draw = rng.Uniform(9);
    if (draw >= 6) {
      if (!is_stream) return std::nullopt;
      GroupEdit(rng, stream, draw, w.now_ms, edit);
      if (edit.group_write.empty() && edit.group_remove.empty() && edit.group_destroy.empty()) {
        return std::nullopt;
      }
      return Take(key.XEdit(std::move(edit), w, ctx));
    }
    switch (draw) {
      case 0:
      case 1: {  // XADD, maybe with a MAXLEN trim of the oldest entries
        StreamId id = meta.last_id;
        if (rng.Chance(1, 2)) {
          id = StreamId{id.ms + 1, 0};
        } else {
          ++id.seq;
        }
        edit.adds.emplace_back(id, Stream::Fields{Pick(rng, kNames), Pick(rng, kValues)});
        edit.meta = StreamMeta{id, meta.max_deleted, meta.entries_added + 1};
        if (is_stream && rng.Chance(1, 3) && stream.Size() > 1) {
          edit.remove.push_back(stream.entries().begin()->first);
        }
        return Take(key.XEdit(std::move(edit), w, ctx));
      }
      case 2: {  // XDEL of one ID (every entry holding it)
        if (!is_stream || stream.Size() == 0) return std::nullopt;
        auto it = stream.entries().begin();
        std::advance(it, static_cast<long>(rng.Uniform(stream.Size())));
        const StreamId id = it->first.id;
        for (const auto& [entry, fields] : stream.entries()) {
          if (entry.id == id) edit.remove.push_back(entry);
        }
        edit.meta = StreamMeta{meta.last_id, std::max(meta.max_deleted, id), meta.entries_added};
        return Take(key.XEdit(std::move(edit), w, ctx));
      }
      case 3: {  // XTRIM MAXLEN
        if (!is_stream) return std::nullopt;
        const size_t keep = rng.Uniform(3);
        for (const auto& [entry, fields] : stream.entries()) {
          if (edit.remove.size() + keep >= stream.Size()) break;
          edit.remove.push_back(entry);
        }
        if (edit.remove.empty()) return std::nullopt;
        return Take(key.XEdit(std::move(edit), w, ctx));
      }
      case 4: {  // XSETID
        if (!is_stream) return std::nullopt;
        edit.meta = StreamMeta{StreamId{meta.last_id.ms + rng.Uniform(3), 0}, meta.max_deleted,
                               meta.entries_added + rng.Uniform(2)};
        if (edit.meta->last_id < meta.last_id) edit.meta->last_id = meta.last_id;
        return Take(key.XEdit(std::move(edit), w, ctx));
      }
      default:
        return Take(key.Del(w, ctx));
    }
  }

  // The group part of a stream op (draw 6: create/SETID; 7: a delivery or claim; 8: a remove).
  static void GroupEdit(Rng& rng, const Stream& stream, uint64_t draw, int64_t now_ms,
                        Key::StreamEdit& edit) {
    const std::string group = Pick(rng, {"g1", "g2"});
    const std::string consumer = Pick(rng, {"c1", "c2"});
    const GroupSlot group_slot{group};
    const std::optional<GroupValue> current = stream.FindSlot(group_slot);
    const StreamId id{rng.Uniform(6), rng.Uniform(3)};
    const GroupSlot pending{group, GroupPart::kPending, "", id};
    const GroupSlot consumer_slot{group, GroupPart::kConsumer, consumer, StreamId{}};
    if (draw == 6) {
      GroupValue value = current.value_or(GroupValue{});
      value.last_id = StreamId{rng.Uniform(6), 0};
      value.entries_read = static_cast<int64_t>(rng.Uniform(4)) - 1;
      edit.group_write.emplace_back(group_slot, value);
    } else if (draw == 7 && current) {
      GroupValue delivery = stream.FindSlot(pending).value_or(GroupValue{});
      delivery.owner = consumer;
      delivery.seen_ms = now_ms;
      delivery.deliveries += 1;
      GroupValue seen = stream.FindSlot(consumer_slot).value_or(GroupValue{});
      seen.seen_ms = now_ms;
      edit.group_write.emplace_back(group_slot, *current);
      edit.group_write.emplace_back(consumer_slot, seen);
      edit.group_write.emplace_back(pending, delivery);
    } else if (draw == 8 && current) {
      switch (rng.Uniform(3)) {
        case 0:
          edit.group_remove.push_back(pending);  // XACK
          break;
        case 1:
          edit.group_remove.push_back(consumer_slot);  // DELCONSUMER
          stream.ForEachSlot(group, GroupPart::kPending,
                             [&](const GroupSlot& s, const GroupValue& v) {
                               if (v.owner == consumer) edit.group_remove.push_back(s);
                             });
          break;
        default:
          edit.group_destroy.push_back(group);
      }
    }
  }
};

// Adds `by` (mod 2^bits) to the field's bits of `value`, grown to the field's end: what BITFIELD
// INCRBY with OVERFLOW WRAP does (a model independent of crdt/bit_chunks.cc).
inline void AddToFieldModel(std::string& value, const BitField& field, uint64_t by) {
  const size_t end = static_cast<size_t>((field.offset + field.bits - 1) / 8) + 1;
  if (value.size() < end) value.resize(end, '\0');
  uint64_t current = 0;
  for (uint32_t i = 0; i < field.bits; ++i) {
    const uint64_t bit = field.offset + i;
    current = (current << 1) | ((static_cast<uint8_t>(value[bit / 8]) >> (7 - bit % 8)) & 1U);
  }
  const uint64_t next = current + by;
  for (uint32_t i = 0; i < field.bits; ++i) {
    const uint64_t bit = field.offset + i;
    const auto mask = static_cast<char>(1 << (7 - bit % 8));
    const bool on = ((next >> (field.bits - 1 - i)) & 1) != 0;
    value[bit / 8] = static_cast<char>(on ? (value[bit / 8] | mask) : (value[bit / 8] & ~mask));
  }
}

// Bitmaps: SETBIT and SETRANGE as the bitmap family does them (the new whole value and the bytes
// changed, Key::WriteBitmap) over four chunks, BITFIELD INCRBY ... OVERFLOW WRAP (field counters
// when CounterFits, else the chunk write the family falls back to; fields that overlap, straddle
// a chunk boundary or are 64 bits wide), beside SET, APPEND (a whole-value write keeping the
// TTL), BITOP's destination (a whole-value write dropping it) and DEL.
struct BitmapWorkload {
  static std::optional<KeyOp> IncrBy(Rng& rng, Key& key, std::string value, const Writer& w,
                                     DotContext& ctx) {
    static const BitField kFields[] = {{0, 8}, {8, 8}, {0, 16}, {5, 3}, {2040, 16}, {2112, 64}};
    const BitField field = kFields[rng.Uniform(std::size(kFields))];
    const uint64_t by = rng.Chance(1, 4) ? ~uint64_t{0} - rng.Uniform(300) : rng.Uniform(300);
    static const BitChunks kNone{};
    const BitChunks& chunks = key.HasChunks() ? key.rest()->chunks() : kNone;
    if (chunks.CounterFits(field)) return Take(key.IncrBitFields({{field, by}}, w, ctx));
    AddToFieldModel(value, field, by);
    const size_t first = static_cast<size_t>(field.offset / 8);
    return Take(key.WriteBitmap(std::move(value), first,
                                static_cast<size_t>((field.offset + field.bits - 1) / 8) + 1, w,
                                ctx));
  }

  static std::optional<KeyOp> Write(Rng& rng, Key& key, const Writer& w, DotContext& ctx) {
    std::string value = key.TypeAt(w.now_ms) == ObjectType::kString
                            ? key.GetString(w.now_ms).value_or("")
                            : std::string();
    switch (rng.Uniform(10)) {
      case 8:
      case 9:
        return IncrBy(rng, key, std::move(value), w, ctx);
      case 0:
      case 1:
      case 2: {  // SETBIT
        const size_t byte = static_cast<size_t>(rng.Uniform(3 * kChunkBytes + 16));
        if (value.size() <= byte) value.resize(byte + 1, '\0');
        value[byte] = static_cast<char>(value[byte] ^ (1 << rng.Uniform(8)));
        return Take(key.WriteBitmap(std::move(value), byte, byte + 1, w, ctx));
      }
      case 3: {  // SETRANGE across a chunk boundary
        const size_t at = kChunkBytes - 2 + static_cast<size_t>(rng.Uniform(4));
        const std::string patch = Pick(rng, kValues) + "zz";
        if (value.size() < at + patch.size()) value.resize(at + patch.size(), '\0');
        value.replace(at, patch.size(), patch);
        return Take(key.WriteBitmap(std::move(value), at, at + patch.size(), w, ctx));
      }
      case 4:
        return Take(key.Set(Pick(rng, kValues), false, std::nullopt, w, ctx));
      case 5:
        return Take(key.Set(value + "a", true, std::nullopt, w, ctx));  // APPEND
      case 6:
        return Take(key.Set(value.empty() ? "b" : value, false, std::nullopt, w, ctx));  // BITOP
      default:
        return Take(key.Del(w, ctx));
    }
  }
};

// Every type on one key: type conflicts, DEL, expiry and PERSIST.
struct KeyWorkload {
  static std::optional<KeyOp> Write(Rng& rng, Key& key, const Writer& w, DotContext& ctx) {
    switch (rng.Uniform(10)) {
      case 9:
        return BitmapWorkload::Write(rng, key, w, ctx);
      case 8:
        return StreamWorkload::Write(rng, key, w, ctx);
      case 7:
        return ListWorkload::Write(rng, key, w, ctx);
      case 0:
        return StringWorkload::Write(rng, key, w, ctx);
      case 1:
        return SetWorkload::Write(rng, key, w, ctx);
      case 2:
        return HashWorkload::Write(rng, key, w, ctx);
      case 3:
        return ZSetWorkload::Write(rng, key, w, ctx);
      case 4:
        return Take(key.Expire(rng.Chance(1, 4) ? 0 : w.now_ms + rng.Range(1, 20), w, ctx));
      case 5:
        return Take(key.Set(Pick(rng, kValues), true, std::nullopt, w, ctx));
      default:
        return Take(key.Reclaim(w, ctx));
    }
  }
};

// A seeded run: `replicas` replicas, `steps` actions (write, deliver one op, or join a state).
template <typename Workload>
class World {
 public:
  World(uint64_t seed, int replicas) : rng_(seed) {
    for (int i = 0; i < replicas; ++i) {
      replicas_.push_back(Replica{
          Key{}, DotContext{}, DotSource(static_cast<ReplicaId>(i + 1)), HlcClock{1'000'000}, {}});
    }
  }

  void Run(int steps) {
    for (int i = 0; i < steps; ++i) {
      now_ms_ += static_cast<int64_t>(rng_.Uniform(3));
      const uint64_t action = rng_.Uniform(10);
      if (action < 5) {
        Write(rng_.Uniform(replicas_.size()));
      } else if (action < 9) {
        DeliverOne(rng_.Uniform(replicas_.size()));
      } else {
        JoinState(rng_.Uniform(replicas_.size()), rng_.Uniform(replicas_.size()));
      }
    }
  }

  void Write(size_t at) {
    Replica& r = replicas_[at];
    r.applied.resize(log_.size(), false);
    Writer w{&r.dots, r.clock.Now(static_cast<uint64_t>(now_ms_)), now_ms_, RandomPolicies(rng_)};
    auto op = Workload::Write(rng_, r.key, w, r.context);
    if (!op || op->dot_count == 0) {
      return;
    }
    log_.push_back(Recorded{*op, r.applied});
    r.applied.push_back(true);
  }

  // The purge of Keyspace::CompactSome: if the key at `at` is garbage at `stable` and falls to
  // it, ships the DEL that removes it (recorded like any op). Returns whether it did.
  bool PurgeIfGarbage(size_t at, const VersionVector& stable) {
    Replica& r = replicas_[at];
    if (r.key.PurgeableBy(stable) != r.dots.replica()) {
      return false;
    }
    r.applied.resize(log_.size(), false);
    Writer w{&r.dots, r.clock.Now(static_cast<uint64_t>(now_ms_)), now_ms_, {}};
    std::optional<KeyOp> op = r.key.Del(w, r.context);
    if (!op || op->dot_count == 0) {
      return false;
    }
    log_.push_back(Recorded{*op, r.applied});
    r.applied.push_back(true);
    return true;
  }

  static bool Deliverable(const Recorded& rec, const std::vector<bool>& applied) {
    for (size_t i = 0; i < rec.deps.size(); ++i) {
      if (rec.deps[i] && (i >= applied.size() || !applied[i])) {
        return false;
      }
    }
    return true;
  }

  // Applies one causally ready op that `at` has not applied yet, if any.
  void DeliverOne(size_t at) {
    Replica& r = replicas_[at];
    r.applied.resize(log_.size(), false);
    std::vector<size_t> ready;
    for (size_t i = 0; i < log_.size(); ++i) {
      if (!r.applied[i] && Deliverable(log_[i], r.applied)) {
        ready.push_back(i);
      }
    }
    if (ready.empty()) {
      return;
    }
    const size_t pick = ready[rng_.Uniform(ready.size())];
    r.key.Apply(log_[pick].op, r.context);
    (void)r.clock.Update(log_[pick].op.hlc, static_cast<uint64_t>(now_ms_));
    r.applied[pick] = true;
  }

  void JoinState(size_t into, size_t from) {
    if (into == from) {
      return;
    }
    Replica& a = replicas_[into];
    const Replica& b = replicas_[from];
    a.key.Join(b.key, a.context, b.context);
    a.context.Join(b.context);
    a.applied.resize(log_.size(), false);
    for (size_t i = 0; i < b.applied.size(); ++i) {
      a.applied[i] = a.applied[i] || b.applied[i];
    }
  }

  // A fresh replica that applies every op, in a random causal order.
  std::pair<Key, DotContext> ApplyAllInRandomOrder(Rng& rng) const {
    std::pair<Key, DotContext> out;
    std::vector<bool> applied(log_.size(), false);
    for (size_t done = 0; done < log_.size(); ++done) {
      std::vector<size_t> ready;
      for (size_t i = 0; i < log_.size(); ++i) {
        if (!applied[i] && Deliverable(log_[i], applied)) {
          ready.push_back(i);
        }
      }
      const size_t pick = ready[rng.Uniform(ready.size())];
      out.first.Apply(log_[pick].op, out.second);
      applied[pick] = true;
    }
    return out;
  }

  std::pair<Key, DotContext> State(size_t i) const {
    return {replicas_[i].key, replicas_[i].context};
  }
  std::vector<Replica>& replicas() { return replicas_; }
  const std::vector<Recorded>& log() const { return log_; }
  int64_t now_ms() const { return now_ms_; }

 private:
  Rng rng_;
  std::vector<Replica> replicas_;
  std::vector<Recorded> log_;
  int64_t now_ms_ = 1000;
};

}  // namespace lattice::crdt::testing

namespace lattice::crdt::testing {

// One region holding one key, for hand-written two-region scenarios.
struct Node {
  explicit Node(ReplicaId id) : dots(id) {}
  Writer W(uint64_t hlc_ms, Policies policies = {}, int64_t now_ms = 1000) {
    return Writer{&dots, MakeHlc(hlc_ms, 0), now_ms, policies};
  }
  void Apply(const KeyOp& op) { key.Apply(op, context); }
  std::string Get(int64_t now_ms = 1000) const { return key.GetString(now_ms).value_or("(nil)"); }

  Key key;
  DotContext context;
  DotSource dots;
};

template <typename R>
KeyOp Ok(R result) {
  REQUIRE(result);
  return std::move(*result);
}

}  // namespace lattice::crdt::testing
