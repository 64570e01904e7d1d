// The wire codec: every message type round-trips, with CRDT state made by the real crdt::Key
// mutators of several replicas (conflicts, counters, tombstones, compaction); hostile input is
// refused, never crashes; bytes per op are measured.
//
// Every op and state must round-trip to itself exactly, creation cells and key expiry included.
#include "lattice/repl/codec.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "lattice/common/rng.h"
#include "lattice/crdt/hlc.h"
#include "lattice/crdt/hll.h"
#include "lattice/crdt/hll_key.h"
#include "lattice/repl/lattice.pb.h"

namespace lattice::repl {
namespace {

using crdt::DotContext;
using crdt::Key;
using crdt::KeyOp;

struct Replica {
  Key key;
  DotContext context;
  crdt::DotSource dots;
  crdt::HlcClock clock{1'000'000};
  size_t delivered = 0;  // ops of the shared log applied here, in log order (causal)
};

Replica MakeReplica(ReplicaId id, uint64_t next_seq = 1) {
  return Replica{Key{}, DotContext{}, crdt::DotSource(id, next_seq), crdt::HlcClock(1'000'000), 0};
}

const std::vector<std::string> kNames = {"a", "b", "c", "field-with-a-longer-name"};

std::string Pick(Rng& rng, const std::vector<std::string>& from) {
  return from[rng.Uniform(from.size())];
}

crdt::Policies RandomPolicies(Rng& rng) {
  crdt::Policies p;
  p.set = rng.Chance(1, 3) ? crdt::SetRule::kRemoveWins : crdt::SetRule::kAddWins;
  p.string = rng.Chance(1, 4) ? crdt::StringRule::kLww : crdt::StringRule::kCounter;
  p.hash_field = rng.Chance(1, 4) ? crdt::StringRule::kLww : crdt::StringRule::kCounter;
  p.expiry = static_cast<crdt::ExpiryRule>(rng.Uniform(3));  // lww, longest, shortest
  return p;
}

// Long doubles that use the whole 64-bit mantissa, so a lossy encoding would show.
long double RandomFloat(Rng& rng) {
  return static_cast<long double>(static_cast<int64_t>(rng.Next() >> 8)) / 3.0L /
         static_cast<long double>(1 + rng.Uniform(1000));
}

template <typename R>
std::optional<KeyOp> Take(R result) {
  if (!result) {
    return std::nullopt;
  }
  return std::move(*result);
}

std::optional<KeyOp> RandomWrite(Rng& rng, Replica& r, int64_t now_ms) {
  const crdt::Writer w{&r.dots, r.clock.Now(static_cast<uint64_t>(now_ms)), now_ms,
                       RandomPolicies(rng)};
  Key& k = r.key;
  DotContext& c = r.context;
  const std::string name = Pick(rng, kNames);
  const size_t list_size = k.TypeAt(now_ms) == crdt::ObjectType::kList ? k.list().Size() : 0;
  const crdt::ListEnd end = rng.Chance(1, 2) ? crdt::ListEnd::kHead : crdt::ListEnd::kTail;
  const bool is_stream = k.TypeAt(now_ms) == crdt::ObjectType::kStream;
  switch (rng.Uniform(27)) {
    case 25:
    case 26: {  // SETBIT (one byte) or SETRANGE (across a chunk boundary): bitmap chunks
      if (k.TypeAt(now_ms) != crdt::ObjectType::kString &&
          k.TypeAt(now_ms) != crdt::ObjectType::kNone) {
        return std::nullopt;
      }
      std::string value = k.GetString(now_ms).value_or("");
      const size_t at = static_cast<size_t>(rng.Uniform(3 * crdt::kChunkBytes));
      const size_t length = rng.Chance(1, 2) ? 1 : crdt::kChunkBytes;
      if (value.size() < at + length) value.resize(at + length, '\0');
      value.replace(at, length, std::string(length, static_cast<char>(rng.Uniform(256))));
      return Take(k.WriteBitmap(std::move(value), at, at + length, w, c));
    }
    case 23: {  // a consumer-group write: the group, a consumer and a pending entry
      if (!is_stream) return std::nullopt;
      const std::string group = rng.Chance(1, 2) ? "g" : "grp-" + name;
      crdt::GroupValue g;
      g.last_id = crdt::StreamId{rng.Next(), rng.Uniform(3)};
      g.entries_read = rng.Range(-1, 1000);
      crdt::GroupValue consumer;
      consumer.seen_ms = now_ms;
      consumer.active_ms = rng.Chance(1, 2) ? -1 : now_ms;
      crdt::GroupValue pending;
      pending.owner = name;
      pending.seen_ms = now_ms - rng.Range(0, 1000);
      pending.deliveries = rng.Uniform(5);
      Key::StreamEdit edit;
      edit.group_write = {
          {crdt::GroupSlot{group}, g},
          {crdt::GroupSlot{group, crdt::GroupPart::kConsumer, name, {}}, consumer},
          {crdt::GroupSlot{group, crdt::GroupPart::kPending, "", {rng.Uniform(4), 0}}, pending}};
      return Take(k.XEdit(std::move(edit), w, c));
    }
    case 24: {  // XACK of a pending entry, or XGROUP DESTROY
      if (!is_stream || k.stream().group_items().empty()) return std::nullopt;
      Key::StreamEdit edit;
      const crdt::GroupSlot& slot = k.stream().group_items().begin()->first.slot;
      if (rng.Chance(1, 2)) {
        edit.group_destroy.push_back(slot.group);
      } else {
        edit.group_remove.push_back(
            crdt::GroupSlot{slot.group, crdt::GroupPart::kPending, "", {rng.Uniform(4), 0}});
      }
      return Take(k.XEdit(std::move(edit), w, c));
    }
    case 21: {  // XADD (IDs from a small domain: regions collide), maybe trimming the oldest
      const crdt::StreamMeta meta = is_stream ? k.stream().Meta() : crdt::StreamMeta{};
      const crdt::StreamId id{meta.last_id.ms + rng.Uniform(2), meta.last_id.seq + 1};
      Key::StreamEdit edit;
      edit.adds.emplace_back(id, crdt::Stream::Fields{name, std::string(rng.Uniform(5), 'v')});
      edit.meta = crdt::StreamMeta{id, meta.max_deleted, meta.entries_added + 1};
      if (is_stream && k.stream().Size() > 2 && rng.Chance(1, 2)) {
        edit.remove.push_back(k.stream().entries().begin()->first);
      }
      return Take(k.XEdit(std::move(edit), w, c));
    }
    case 22: {  // XDEL of the newest entry
      if (!is_stream || k.stream().Size() == 0) return std::nullopt;
      Key::StreamEdit edit;
      edit.remove.push_back(k.stream().entries().LastKey());
      crdt::StreamMeta meta = k.stream().Meta();
      meta.max_deleted = edit.remove.back().id;
      edit.meta = meta;
      return Take(k.XEdit(std::move(edit), w, c));
    }
    case 17:
      return Take(k.LEdit({}, end, {name, Pick(rng, kNames)}, w, c));
    case 18:
      if (list_size == 0) return std::nullopt;
      return Take(k.LEdit({end == crdt::ListEnd::kHead ? 0 : list_size - 1}, end, {}, w, c));
    case 19:
      if (list_size == 0) return std::nullopt;
      return Take(k.LInsert(rng.Uniform(list_size), rng.Chance(1, 2), name, w, c));
    case 20:
      if (list_size == 0) return std::nullopt;
      return Take(k.LSet(rng.Uniform(list_size), "set-" + name, w, c));
    case 0:
      return Take(k.Set(std::string(rng.Uniform(20), 'v'), rng.Chance(1, 2), std::nullopt, w, c));
    case 1:
      return Take(k.IncrBy(rng.Range(-1000, 1000), w, c));
    case 2:
      return Take(k.IncrByFloat(RandomFloat(rng), w, c));
    case 3:
      return Take(k.Del(w, c));
    case 4:
      return Take(k.SAdd({name, Pick(rng, kNames)}, w, c));
    case 5:
      return Take(k.SRem({name}, w, c));
    case 6:
      return Take(k.HSet(name, "value-" + name, rng.Chance(1, 2), w, c));
    case 7:
      return Take(k.HDel({name}, w, c));
    case 8:
      return Take(k.HIncrBy(name, rng.Range(INT64_MIN / 4, INT64_MAX / 4), w, c));
    case 9:
      return Take(k.HIncrByFloat(name, RandomFloat(rng), w, c));
    case 10:
      return Take(k.HExpire(name, now_ms + rng.Range(-10, 5000), w, c));
    case 11:
      return Take(k.ZAdd(name, rng.NextDouble() * 100 - 50, w, c));
    case 12:
      return Take(k.ZIncrBy(name, rng.NextDouble() * 1e6 - 5e5, w, c));
    case 13:
      return Take(k.ZRem({name}, w, c));
    case 14:
      return Take(k.Expire(now_ms + rng.Range(0, 5000), w, c));
    case 15:
      return Take(k.Reclaim(w, c));
    default:
      return Take(k.Set("123", false, now_ms + 100, w, c));
  }
}

struct Generated {
  std::vector<OpRecord> ops;
  std::vector<Replica> replicas;
};

// A shard of 2-3 replicas writing one key, each applying the others' ops in log order at random
// times, and compacting at the stable vector now and then (bare tombstones, trimmed offsets).
Generated Generate(uint64_t seed, int ops) {
  Rng rng(seed);
  Generated g;
  const size_t count = 2 + rng.Uniform(2);
  for (size_t i = 0; i < count; ++i) {
    // Small ids too, so the decoder's scratch replica has to step around them.
    const ReplicaId id = rng.Chance(1, 3) ? i + 1 : rng.Next() | 1;
    g.replicas.push_back(MakeReplica(id));
  }
  for (int step = 0; step < ops * 3 && static_cast<int>(g.ops.size()) < ops; ++step) {
    Replica& r = g.replicas[rng.Uniform(count)];
    const int64_t now_ms = 1'000 + step * 10;
    if (rng.Chance(1, 3)) {
      const size_t upto = r.delivered + rng.Uniform(g.ops.size() - r.delivered + 1);
      for (; r.delivered < upto; ++r.delivered) {
        const OpRecord& record = g.ops[r.delivered];
        if (record.op.first_dot.replica != r.dots.replica()) {
          r.key.Apply(record.op, r.context);
        }
      }
      continue;
    }
    if (rng.Chance(1, 15)) {
      crdt::VersionVector stable = g.replicas[0].context.vector();
      for (const Replica& other : g.replicas) {
        stable.Meet(other.context.vector());
      }
      r.key.Compact(stable);
    }
    const crdt::VersionVector deps = r.context.vector();
    if (auto op = RandomWrite(rng, r, now_ms)) {
      const auto db = static_cast<uint32_t>(rng.Uniform(16));
      g.ops.push_back(OpRecord{db, "key:" + std::to_string(seed % 97), std::move(*op), deps});
    }
  }
  return g;
}

TEST_CASE("codec: random ops of every type round-trip", "[repl][codec]") {
  const uint64_t seed = GENERATE(take(40, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  const Generated g = Generate(seed, 100);
  for (const OpRecord& record : g.ops) {
    auto decoded = DecodeOp(EncodeOp(record));
    REQUIRE(decoded.ok());
    CHECK(*decoded == record);
  }
  auto batch = Decode(Encode(Message(OpBatch{g.ops})));
  REQUIRE(batch.ok());
  CHECK(std::get<OpBatch>(*batch).ops == g.ops);
}

// A batch of retained ops (shells: the op record bytes and the header fields) is the same bytes
// as the batch of the full records; the sender's own ops travel without their origin, and deps
// the receiver reported are left out.
TEST_CASE("codec: op batches from shells, implicit origins and omitted deps", "[repl][codec]") {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    std::vector<OpRecord> ops = Generate(seed, 60).ops;
    const std::string full = Encode(Message(OpBatch{ops}));
    for (size_t i = 0; i < ops.size(); i += 2) {
      CHECK(CacheWire(ops[i]) == EncodeOp(ops[i]));  // half cached
    }
    CHECK(Encode(Message(OpBatch{ops})) == full);
    auto decoded = Decode(full);
    REQUIRE(decoded.ok());
    CHECK(std::get<OpBatch>(*decoded).ops == ops);
    // Received ops keep their body: encoding them again reuses it, byte for byte.
    for (const OpRecord& op : std::get<OpBatch>(*decoded).ops) {
      REQUIRE(!op.body.empty());
      OpRecord fresh = op;
      fresh.body.clear();
      CHECK(EncodeOp(op) == EncodeOp(fresh));
    }
    const ReplicaId sender = ops.front().op.first_dot.replica;
    const std::string implicit =
        Encode(Message(OpBatch{.ops = ops, .sender = sender, .receiver_has = {}}));
    CHECK(implicit.size() < full.size());
    CHECK(!Decode(implicit).ok());  // the link's peer is needed to read it
    auto with_sender = Decode(implicit, sender);
    REQUIRE(with_sender.ok());
    CHECK(std::get<OpBatch>(*with_sender).ops == ops);
    crdt::VersionVector has;
    for (const OpRecord& op : ops) {
      has.Join(op.deps);
    }
    auto omitted =
        Decode(Encode(Message(OpBatch{.ops = ops, .sender = sender, .receiver_has = has})), sender);
    REQUIRE(omitted.ok());
    for (size_t i = 0; i < ops.size(); ++i) {
      const OpRecord& op = std::get<OpBatch>(*omitted).ops[i];
      CHECK(op.op == ops[i].op);
      // Only the origin's own entry (implied) remains.
      CHECK(op.deps.entries().size() <= 1);
      CHECK(op.deps.Get(op.op.first_dot.replica) == ops[i].deps.Get(op.op.first_dot.replica));
    }
  }
  CHECK(Decode(Encode(Message(OpBatch{}))).ok());
}

// A SET's delta (one string entry) is decoded by building that entry directly, not by running
// the mutator on a scratch key: it must be the very delta Key::Set made, over any history.
TEST_CASE("codec: SET ops decode to the mutator's delta", "[repl][codec]") {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    Rng rng(seed);
    crdt::Key key;
    crdt::DotContext context;
    context.Add(crdt::Dot{77, 3});  // another replica's dot: a context extra
    crdt::DotSource dots{static_cast<ReplicaId>(1 + rng.Uniform(1000)), 1 + rng.Uniform(1000)};
    uint64_t hlc = crdt::MakeHlc(1'700'000'000'000ULL + rng.Uniform(1000), 0);
    for (int i = 0; i < 50; ++i) {
      std::string value(rng.Uniform(3) == 0 ? rng.Uniform(300) : rng.Uniform(20), '\0');
      for (char& c : value) c = static_cast<char>(rng.Uniform(256));
      hlc += rng.Uniform(3) << 16;
      auto op = key.Set(value, false, std::nullopt, crdt::Writer{&dots, hlc, 0, {}}, context);
      REQUIRE(op.ok());
      const OpRecord record{0, "k", *op, context.vector()};
      auto decoded = DecodeOp(EncodeOp(record));
      REQUIRE(decoded.ok());
      CHECK(decoded->op.delta == op->delta);
      CHECK(*decoded == record);
    }
  }
}

// LPUSH/RPUSH on an existing list take the list push kind: a few bytes besides each value, and
// the decoded delta equals the mutator's (elements, positions, stamps).
TEST_CASE("codec: list pushes round-trip as their own kind", "[repl][codec]") {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    Rng rng(seed);
    crdt::Key key;
    crdt::DotContext context;
    crdt::DotSource dots{static_cast<ReplicaId>(1 + rng.Uniform(1000)), 1 + rng.Uniform(1000)};
    uint64_t hlc = crdt::MakeHlc(1'700'000'000'000ULL + rng.Uniform(1000), 0);
    for (int i = 0; i < 60; ++i) {
      const auto end = rng.Chance(1, 2) ? crdt::ListEnd::kHead : crdt::ListEnd::kTail;
      std::vector<std::string> values(1 + rng.Uniform(3));
      for (std::string& value : values) value = "value-" + std::to_string(rng.Uniform(1000));
      hlc += rng.Uniform(3) << 16;
      auto op = key.LEdit({}, end, values, crdt::Writer{&dots, hlc, 0, {}}, context);
      REQUIRE(op.ok());
      const OpRecord record{0, "k", *op, {}};
      const std::string bytes = EncodeOp(record);
      auto decoded = DecodeOp(bytes);
      REQUIRE(decoded.ok());
      CHECK(decoded->op.delta == op->delta);
      CHECK(*decoded == record);
      if (i > 0) {  // not the creating push: values, and about 3 bytes each, besides the header
        size_t payload = 0;
        for (const std::string& value : values) payload += value.size() + 4;
        CHECK(bytes.size() <= 40 + payload);
      }
    }
  }
}

TEST_CASE("codec: every random op round-trips exactly, key cells included", "[repl][codec]") {
  size_t all = 0;
  size_t created = 0;  // ops whose delta holds a creation event
  size_t expiry = 0;   // ops whose delta holds a key expiry entry
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    CAPTURE(seed);
    for (const OpRecord& record : Generate(seed, 100).ops) {
      ++all;
      auto decoded = DecodeOp(EncodeOp(record));
      REQUIRE(decoded.ok());
      REQUIRE(*decoded == record);
      if (const crdt::KeyRest* rest = record.op.delta.rest()) {
        created += rest->hash_created().empty() && rest->set_created().empty() &&
                           rest->zset_created().empty() && rest->list_created().empty() &&
                           rest->stream_created().empty()
                       ? 0
                       : 1;
        expiry += rest->expiry().empty() ? 0 : 1;
      }
    }
  }
  std::printf(
      "random ops: %zu, all round-tripped exactly; with a creation event: %zu, with a key "
      "expiry entry: %zu\n",
      all, created, expiry);
  // List, XDEL and consumer-group writes on a key of another type write nothing.
  CHECK(all >= 2800);
  CHECK(created >= 300);
  CHECK(expiry >= 300);
}

TEST_CASE("codec: snapshots of random states round-trip", "[repl][codec]") {
  const uint64_t seed = GENERATE(take(40, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  const Generated g = Generate(seed, 120);
  SnapshotChunk chunk;
  chunk.snapshot_id = seed;
  for (const Replica& r : g.replicas) {
    chunk.keys.push_back(SnapshotKey{3, "k" + std::to_string(r.dots.replica()), r.key});
    chunk.context.Join(r.context);
  }
  chunk.last = true;
  const std::string bytes = Encode(Message(chunk));
  auto decoded = Decode(bytes);
  REQUIRE(decoded.ok());
  CHECK(std::get<SnapshotChunk>(*decoded) == chunk);
  // The same chunk encoded from references is the same bytes.
  std::vector<SnapshotKeyRef> refs;
  for (const SnapshotKey& key : chunk.keys) refs.push_back({key.db, key.key, &key.state});
  CHECK(EncodeSnapshotChunk(chunk.snapshot_id, refs, chunk.context, chunk.last) == bytes);
}

// A set's added members are rebuilt by runs of consecutive dots (one SADD a run), and dot by dot
// when a run would not rebuild the key exactly: three regions' multi-member SADDs, concurrent
// adds of one member (two dots), removes and re-adds, names that are prefixes of each other and
// of the scratch seed's tildes.
TEST_CASE("codec: large sets from several regions round-trip exactly", "[repl][codec]") {
  const uint64_t seed = GENERATE(take(20, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  std::vector<Replica> regions;
  for (ReplicaId id : {ReplicaId{11}, ReplicaId{22}, ReplicaId{33}}) {
    regions.push_back(MakeReplica(id));
  }
  const std::vector<std::string> shapes = {"m", "m~", "~", "~~", "", "x"};
  for (int step = 0; step < 60; ++step) {
    Replica& r = regions[rng.Uniform(regions.size())];
    const crdt::Writer w{&r.dots, crdt::MakeHlc(1'700'000'000'000ULL + step, 0), 0, {}};
    std::vector<std::string> names;
    const size_t count = 1 + rng.Uniform(120);
    for (size_t i = 0; i < count; ++i) {
      names.push_back(Pick(rng, shapes) + std::to_string(rng.Uniform(300)));
    }
    Result<KeyOp> op =
        rng.Chance(1, 5) ? r.key.SRem(names, w, r.context) : r.key.SAdd(names, w, r.context);
    REQUIRE(op.ok());
    if (rng.Chance(1, 2)) {  // delivered at once to another region; otherwise concurrent
      Replica& other = regions[rng.Uniform(regions.size())];
      if (&other != &r) other.key.Apply(*op, other.context);
    }
  }
  SnapshotChunk chunk;
  chunk.snapshot_id = seed;
  for (const Replica& r : regions) {
    chunk.keys.push_back(SnapshotKey{0, "set" + std::to_string(r.dots.replica()), r.key});
    chunk.context.Join(r.context);
  }
  Key merged;
  DotContext merged_context;
  for (const Replica& r : regions) {
    merged.Join(r.key, merged_context, r.context);
    merged_context.Join(r.context);
  }
  chunk.keys.push_back(SnapshotKey{0, "merged", merged});
  chunk.last = true;
  auto decoded = Decode(Encode(Message(chunk)));
  REQUIRE(decoded.ok());
  CHECK(std::get<SnapshotChunk>(*decoded) == chunk);
}

// A hash's fields sit in a hash table whose iteration order follows its history (growth,
// erasures): equal states must encode to the same bytes whatever their tables look like.
TEST_CASE("codec: a hash state's bytes do not depend on its table's layout", "[repl][codec]") {
  Replica r = MakeReplica(1);
  for (int i = 0; i < 1000; ++i) {
    const crdt::Writer w{&r.dots, crdt::MakeHlc(1, 0), 1000, {}};
    REQUIRE(r.key.HSet("f" + std::to_string(i), "v", false, w, r.context).ok());
  }
  std::vector<std::string> gone;
  for (int i = 0; i < 1000; ++i) {
    if (i % 10 != 3) gone.push_back("f" + std::to_string(i));
  }
  const crdt::Writer w{&r.dots, crdt::MakeHlc(2, 0), 1000, {}};
  REQUIRE(r.key.HDel(gone, w, r.context).ok());
  Key rebuilt;  // the same state grown from empty, in the first table's order
  rebuilt.Join(r.key, DotContext{}, r.context);
  REQUIRE(rebuilt == r.key);
  SnapshotChunk one;
  one.keys.push_back(SnapshotKey{0, "h", r.key});
  one.context = r.context;
  SnapshotChunk two = one;
  two.keys[0].state = rebuilt;
  CHECK(Encode(Message(one)) == Encode(Message(two)));
}

// Ships `op` from a replica to `to` through the codec, as the replicator does.
void Ship(const KeyOp& op, Replica& to) {
  auto decoded = DecodeOp(EncodeOp(OpRecord{0, "k", op, {}}));
  REQUIRE(decoded.ok());
  REQUIRE(decoded->op == op);
  to.key.Apply(decoded->op, to.context);
}

TEST_CASE("codec: key expiry and creation events replicate", "[repl][codec]") {
  Replica a = MakeReplica(1);
  Replica b = MakeReplica(2);
  const crdt::Writer wa{&a.dots, 100, 10, {}};
  const crdt::Writer wb{&b.dots, 50, 10, {}};
  SECTION("SET EX, EXPIRE, PERSIST") {
    Ship(*a.key.Set("v", false, 5'000, wa, a.context), b);
    CHECK(b.key.ExpiryMs() == 5'000);
    Ship(*a.key.Expire(9'000, wa, a.context), b);
    CHECK(b.key.ExpiryMs() == 9'000);
    CHECK(b.key.TypeAt(9'000) == crdt::ObjectType::kNone);
    Ship(*a.key.Expire(0, wa, a.context), b);  // PERSIST
    CHECK(b.key.ExpiryMs() == std::nullopt);
    CHECK(b.key == a.key);
  }
  SECTION("longest-wins expiry under concurrency") {
    Ship(*a.key.Set("v", false, std::nullopt, wa, a.context), b);
    crdt::Writer longest = wa;
    longest.policies.expiry = crdt::ExpiryRule::kLongest;
    const KeyOp from_a = *a.key.Expire(7'000, longest, a.context);
    const KeyOp from_b =
        *b.key.Expire(3'000, crdt::Writer{&b.dots, 200, 10, longest.policies}, b.context);
    Ship(from_a, b);
    Ship(from_b, a);
    CHECK(a.key.ExpiryMs() == 7'000);
    CHECK(a.key == b.key);
  }
  SECTION("a type conflict is decided by the shipped creation stamp") {
    const KeyOp hset = *a.key.HSet("f", "x", false, wa, a.context);  // creates a hash, hlc 100
    const KeyOp set = *b.key.Set("s", false, std::nullopt, wb, b.context);  // hlc 50
    REQUIRE(hset.delta.rest() != nullptr);
    CHECK_FALSE(hset.delta.rest()->hash_created().empty());
    Ship(hset, b);
    Ship(set, a);
    CHECK(a.key.Type() == crdt::ObjectType::kHash);
    CHECK(b.key.Type() == crdt::ObjectType::kHash);
    CHECK(a.key == b.key);
    // A DEL that observed both incarnations removes their creation events too.
    const KeyOp del = *a.key.Del(wa, a.context);
    Ship(del, b);
    CHECK(b.key.Type() == crdt::ObjectType::kNone);
    CHECK(a.key == b.key);
  }
  SECTION("first SADD and ZADD create their incarnation") {
    Ship(*a.key.SAdd({"m"}, wa, a.context), b);
    CHECK(b.key.rest()->set_created().Winner()->value == uint8_t{3});
    Replica c = MakeReplica(3);
    Replica d = MakeReplica(4);
    Ship(*c.key.ZAdd("m", 1, crdt::Writer{&c.dots, 300, 10, {}}, c.context), d);
    CHECK(d.key.rest()->zset_created().Winner()->value == uint8_t{4});
    CHECK(d.key.Type() == crdt::ObjectType::kZSet);
  }
}

TEST_CASE("codec: control messages round-trip", "[repl][codec]") {
  const uint64_t seed = GENERATE(take(20, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  crdt::VersionVector vector;
  for (int i = 0; i < 5; ++i) {
    vector.Set(rng.Next() | 1, 1 + rng.Uniform(1'000'000));
  }
  const std::vector<Message> messages = {
      Hello{"shard-" + std::to_string(rng.Uniform(9)), rng.Next() | 1, "eu-west", kProtocolVersion,
            vector},
      Hello{std::string("\xff\x00 binary", 9), 1, "", 7, {}},
      Hello{"s", 2, "r", kProtocolVersion, vector, std::string("\x00nonce\xff", 7)},
      Hello{"s", 3, "r", kProtocolVersion, vector, "", kFeaturePubSub},
      Publish{"news", std::string("\x00bin\xff", 5), false},
      Publish{"", "", true},
      LinkProof{std::string(32, '\x07')},
      LinkProof{},
      Ack{vector},
      Ack{},
      Heartbeat{static_cast<int64_t>(rng.Next()), vector},
      Heartbeat{-5, {}},
      Goodbye{"wrong shard"},
      Goodbye{},
      OpBatch{},
      SnapshotChunk{},
  };
  for (const Message& m : messages) {
    auto decoded = Decode(Encode(m));
    REQUIRE(decoded.ok());
    CHECK(*decoded == m);
  }
}

TEST_CASE("codec: long double totals round-trip bit for bit", "[repl][codec]") {
  Replica r = MakeReplica(42);
  const long double values[] = {0.1L,
                                -0.1L,
                                1e-4940L,
                                1.18e4932L,
                                0x1.23456789abcdef1p-3L,
                                static_cast<long double>(INT64_MAX) + 0.5L};
  for (long double v : values) {
    auto op = r.key.IncrByFloat(v, crdt::Writer{&r.dots, 1, 1, {}}, r.context);
    if (!op) {
      continue;  // overflow to infinity is refused by the command
    }
    auto decoded = DecodeOp(EncodeOp(OpRecord{0, "f", *op, {}}));
    REQUIRE(decoded.ok());
    CHECK(decoded->op == *op);
  }
}

// --- hostile input -------------------------------------------------------------------------

std::string Serialized(const wire::Envelope& envelope) { return envelope.SerializeAsString(); }

std::string DecodeError(const wire::Envelope& envelope) {
  auto decoded = Decode(Serialized(envelope));
  return decoded.ok() ? "" : decoded.error().message;
}

std::string DecodeError(std::string_view bytes) {
  auto decoded = Decode(bytes);
  return decoded.ok() ? "" : decoded.error().message;
}

std::string OpDecodeError(const OpRecord& op) {
  auto decoded = DecodeOp(EncodeOp(op));
  return decoded.ok() ? "" : decoded.error().message;
}

OpRecord OneSetOp() {
  Replica r = MakeReplica(9);
  (void)r.key.SAdd({"x"}, crdt::Writer{&r.dots, 5, 5, {}}, r.context);
  auto op = r.key.SAdd({"y"}, crdt::Writer{&r.dots, 6, 6, {}}, r.context);
  return OpRecord{0, "k", *op, {}};
}

TEST_CASE("codec: invalid messages are refused with a reason", "[repl][codec]") {
  const OpRecord good = OneSetOp();
  const std::string batch = Encode(Message(OpBatch{{good}}));
  REQUIRE(DecodeError(batch).empty());
  wire::Envelope e;
  CHECK(DecodeError(e) == "envelope without a known message");
  CHECK(Decode("\x08").error().message == "malformed protobuf");
  CHECK(Decode(std::string("\xfa\x07\x00", 3)).error().message ==
        "envelope without a known message");  // unknown field 127 only
  // Protocol 1's protobuf OpBatch (field 2) is not read.
  CHECK(Decode(std::string("\x12\x00", 2)).error().message == "envelope without a known message");
  // Every truncation of a batch is refused, never read past its end.
  REQUIRE(batch.size() < 128);
  for (size_t cut = 3; cut < batch.size(); ++cut) {
    std::string bytes = batch.substr(0, cut);
    bytes[1] = static_cast<char>(cut - 2);  // the envelope's length says what is there
    CAPTURE(cut);
    CHECK(!DecodeError(bytes).empty());
  }
  CHECK(DecodeError(batch + "x") == "malformed protobuf");
  OpRecord op = good;
  op.op.first_dot.replica = 0;
  CHECK(OpDecodeError(op) == "op without a valid first dot");
  op = good;
  op.op.first_dot.seq = 0;
  CHECK(OpDecodeError(op) == "op without a valid first dot");
  op = good;
  op.op.dot_count = 0;
  CHECK(OpDecodeError(op) == "op dot_count out of range");
  op = good;
  op.op.dot_count = 1'000'000;
  CHECK(OpDecodeError(op) == "op dot_count out of range");
  op = good;
  op.op.first_dot.seq += 1;  // the delta's dot is no longer the op's own
  CHECK(OpDecodeError(op) == "op delta holds a dot outside first_dot/dot_count");
  op = good;
  op.op.policies.type = static_cast<crdt::TypeRule>(2);
  CHECK(OpDecodeError(op) == "policy value out of range");
  op = good;
  op.deps.Set(5, 1);
  const std::string bytes = EncodeOp(op);
  CHECK(DecodeOp(bytes).ok());
  CHECK(DecodeOp(bytes.substr(1)).error().message ==
        "op record of another format (an op log written before protocol 2?)");
  CHECK(DecodeOp(bytes + "x").error().message == "trailing bytes after an op");
  CHECK(DecodeOp(bytes.substr(0, bytes.size() - 1)).error().code == ErrorCode::kCorrupt);
  CHECK(DecodeOp(bytes.substr(0, 12)).error().message == "op truncated");
  e = wire::Envelope{};
  e.mutable_hello()->set_replica(0);
  CHECK(DecodeError(e) == "hello with replica 0");
  e = wire::Envelope{};
  e.mutable_heartbeat()->add_connected(5);
  e.mutable_heartbeat()->add_connected(3);
  CHECK(DecodeError(e) == "heartbeat: connected replicas not sorted or 0");
}

TEST_CASE("codec: invalid crdt state is refused", "[repl][codec]") {
  wire::Envelope e;
  auto* key = e.mutable_snapshot_chunk()->add_keys()->mutable_state();
  auto* entry = key->mutable_string()->add_entries();
  entry->set_value("v");
  entry->set_hlc(10);
  entry->mutable_dot()->set_replica(7);
  entry->mutable_dot()->set_seq(1);
  REQUIRE(DecodeError(e).empty());
  SECTION("entries out of stamp order") {
    auto* second = key->mutable_string()->add_entries();
    *second = *entry;
    second->set_hlc(20);
    second->mutable_dot()->set_seq(2);
    CHECK(DecodeError(e) == "key state is not canonical or not representable");
  }
  SECTION("duplicate dot") {
    *key->mutable_string()->add_entries() = *entry;
    CHECK(DecodeError(e) == "key state is not canonical or not representable");
  }
  SECTION("non-canonical float text, NaN score, orphan offsets") {
    auto* inc = key->mutable_string()->mutable_meta()->add_incs();
    inc->mutable_dot()->set_replica(7);
    inc->mutable_dot()->set_seq(2);
    inc->set_ftotal("0x1p+0");
    CHECK(DecodeError(e) == "float total is not canonical %La text");
    inc->set_ftotal("nan");
    CHECK(DecodeError(e) == "float total is not canonical %La text");
    inc->set_ftotal("0x8p-3");
    CHECK(DecodeError(e).empty());
    auto* observed = key->mutable_string()->mutable_meta()->add_observed();
    observed->mutable_owner()->set_replica(7);
    observed->mutable_owner()->set_seq(99);
    auto* offset = observed->add_offsets();
    offset->set_replica(7);
    offset->set_seq(2);
    CHECK(DecodeError(e) == "key state is not canonical or not representable");
    auto* member = key->add_zset();
    member->set_name("m");
    auto* score = member->mutable_score()->add_entries();
    score->set_value(std::nan(""));
    score->mutable_dot()->set_replica(7);
    score->mutable_dot()->set_seq(8);
    CHECK(DecodeError(e) == "NaN score");
  }
  SECTION("expiry rule out of range") {
    auto* field = key->add_hash();
    field->set_name("f");
    auto* ttl = field->mutable_ttl()->add_entries();
    ttl->set_rule(9);
    ttl->mutable_dot()->set_replica(7);
    ttl->mutable_dot()->set_seq(5);
    CHECK(DecodeError(e) == "expiry rule out of range");
  }
}

TEST_CASE("codec: invalid list elements are refused", "[repl][codec]") {
  wire::Envelope e;
  auto* key = e.mutable_snapshot_chunk()->add_keys()->mutable_state();
  auto add = [&](int64_t n, uint64_t seq) {
    wire::ListElement* element = key->add_list();
    element->set_n(n);
    element->mutable_id()->set_replica(7);
    element->mutable_id()->set_seq(seq);
    element->set_value("v" + std::to_string(seq));
    element->set_hlc(10);
    return element;
  };
  add(1, 1);
  add(2, 2);
  REQUIRE(DecodeError(e).empty());
  SECTION("out of position order") {
    add(0, 3);
    CHECK(DecodeError(e) == "list elements not in position order");
  }
  SECTION("a repeated identity") {
    add(3, 2);
    CHECK(DecodeError(e) == "list element identity repeated");
  }
  SECTION("prefix arrays of different lengths, a bad dot") {
    wire::ListElement* element = add(3, 3);
    element->add_prefix_n(1);
    CHECK(DecodeError(e) == "list element: prefix array lengths differ");
    element->add_prefix_replica(0);
    element->add_prefix_seq(5);
    CHECK(DecodeError(e) == "dot with replica 0");
    element->set_prefix_seq(0, 0);                                   // no dot: a valid prefix digit
    CHECK(DecodeError(e) == "list elements not in position order");  // (1, none) < (2, 7.2)
  }
  SECTION("a value dot equal to the identity is not canonical") {
    wire::ListElement* element = add(3, 3);
    element->mutable_value_dot()->set_replica(7);
    element->mutable_value_dot()->set_seq(3);
    CHECK(DecodeError(e) == "key state is not canonical or not representable");
  }
  SECTION("a creation entry of another type") {
    auto* created = key->mutable_list_created()->add_entries();
    created->set_type(3);
    created->mutable_dot()->set_replica(7);
    created->mutable_dot()->set_seq(9);
    CHECK(DecodeError(e) == "creation entry type does not match its cell");
  }
}

TEST_CASE("codec: invalid creation cells and key expiry are refused", "[repl][codec]") {
  wire::Envelope e;
  auto* key = e.mutable_snapshot_chunk()->add_keys()->mutable_state();
  auto* member = key->add_set_adds();
  member->set_name("m");
  member->add_replica(7);
  member->add_seq(2);
  auto set_dot = [](auto* entry, ReplicaId replica, uint64_t seq) {
    entry->mutable_dot()->set_replica(replica);
    entry->mutable_dot()->set_seq(seq);
  };
  auto* created = key->mutable_set_created()->add_entries();
  created->set_type(3);
  created->set_hlc(10);
  set_dot(created, 7, 1);
  auto* concurrent = key->mutable_set_created()->add_entries();  // a lower stamp: second
  concurrent->set_type(3);
  concurrent->set_hlc(9);
  set_dot(concurrent, 8, 1);
  auto* expiry = key->mutable_expiry()->add_entries();
  expiry->set_at_ms(5'000);
  expiry->set_hlc(11);
  set_dot(expiry, 7, 3);
  {
    auto decoded = Decode(Serialized(e));
    REQUIRE(decoded.ok());
    const Key& state = std::get<SnapshotChunk>(*decoded).keys.at(0).state;
    CHECK(state.Type() == crdt::ObjectType::kSet);
    CHECK(state.ExpiryMs() == 5'000);
    CHECK(state.rest()->set_created().Entries().size() == 2);
  }
  SECTION("bad dots") {
    created->mutable_dot()->set_replica(0);
    CHECK(DecodeError(e) == "dot with replica 0");
    set_dot(created, 7, 0);
    CHECK(DecodeError(e) == "dot with seq out of range");
    set_dot(created, 7, (uint64_t{1} << 62) + 1);
    CHECK(DecodeError(e) == "dot with seq out of range");
    set_dot(created, 7, 1);
    expiry->mutable_dot()->set_replica(0);
    CHECK(DecodeError(e) == "dot with replica 0");
    expiry->clear_dot();
    CHECK(DecodeError(e) == "dot with replica 0");
  }
  SECTION("duplicate dot, entries out of stamp order, an empty cell") {
    set_dot(concurrent, 7, 1);
    CHECK(DecodeError(e) == "key state is not canonical or not representable");
    set_dot(concurrent, 8, 1);
    concurrent->set_hlc(20);
    CHECK(DecodeError(e) == "key state is not canonical or not representable");
    concurrent->set_hlc(9);
    key->mutable_zset_created();
    CHECK(DecodeError(e) == "key state is not canonical or not representable");
  }
  SECTION("type and rule values") {
    created->set_type(2);
    CHECK(DecodeError(e) == "creation entry type does not match its cell");
    created->set_type(1u << 31);
    CHECK(DecodeError(e) == "creation entry type does not match its cell");
    created->set_type(3);
    *key->mutable_hash_created()->add_entries() = *created;
    CHECK(DecodeError(e) == "creation entry type does not match its cell");
    key->clear_hash_created();
    expiry->set_rule(3);  // lww 0, longest 1, shortest 2
    CHECK(DecodeError(e) == "expiry rule out of range");
  }
  SECTION("counter metadata, too many entries") {
    set_dot(key->mutable_set_created()->mutable_meta()->add_tombs(), 7, 9);
    CHECK(DecodeError(e) == "creation cell with counter metadata or too many entries");
    key->mutable_set_created()->clear_meta();
    set_dot(key->mutable_expiry()->mutable_meta()->add_incs(), 7, 9);
    CHECK(DecodeError(e) == "expiry cell with counter metadata or too many entries");
    key->mutable_expiry()->clear_meta();
    REQUIRE(DecodeError(e).empty());
    for (uint64_t seq = 10; seq < 10 + 1024; ++seq) {
      auto* more = key->mutable_expiry()->add_entries();
      *more = *expiry;
      set_dot(more, 9, seq);
    }
    CHECK(DecodeError(e) == "expiry cell with counter metadata or too many entries");
    key->clear_expiry();
    for (uint64_t seq = 10; seq < 10 + 1025; ++seq) {
      auto* more = key->mutable_zset_created()->add_entries();
      more->set_type(4);
      set_dot(more, 9, seq);
    }
    CHECK(DecodeError(e) == "creation cell with counter metadata or too many entries");
  }
}

TEST_CASE("codec: an op's creation and expiry dots must be its own", "[repl][codec]") {
  Replica r = MakeReplica(9);
  const crdt::Writer w{&r.dots, 5, 5, {}};
  const KeyOp create = *r.key.HSet("f", "v", false, w, r.context);
  const KeyOp expire = *r.key.Expire(1'000, w, r.context);
  for (const KeyOp& op : {create, expire}) {
    OpRecord record{0, "k", op, {}};
    REQUIRE(OpDecodeError(record).empty());
    record.op.first_dot.seq += 100;
    record.op.context.Add(record.op.first_dot);
    CHECK(OpDecodeError(record) == "op delta holds a dot outside first_dot/dot_count");
  }
}

TEST_CASE("codec: random garbage never crashes", "[repl][codec]") {
  Rng rng(0xC0DEC);
  size_t accepted = 0;
  for (int i = 0; i < 10'000; ++i) {
    std::string bytes(rng.Uniform(200), '\0');
    for (char& c : bytes) {
      c = static_cast<char>(rng.Uniform(256));
    }
    accepted += Decode(bytes).ok() ? 1 : 0;
  }
  // Bit flips and truncations of real encodings reach much deeper into the decoder.
  const Generated g = Generate(7, 60);
  const std::string valid = Encode(Message(OpBatch{g.ops}));
  for (int i = 0; i < 5'000; ++i) {
    std::string bytes = valid;
    const int flips = 1 + static_cast<int>(rng.Uniform(3));
    for (int f = 0; f < flips; ++f) {
      bytes[rng.Uniform(bytes.size())] ^= static_cast<char>(1 << rng.Uniform(8));
    }
    if (rng.Chance(1, 4)) {
      bytes.resize(rng.Uniform(bytes.size()));
    }
    auto decoded = Decode(bytes);
    if (decoded.ok()) {
      ++accepted;
      auto again = Decode(Encode(*decoded));  // whatever is accepted re-encodes faithfully
      REQUIRE(again.ok());
      CHECK(*again == *decoded);
    }
  }
  std::printf("garbage inputs accepted as some valid message: %zu of 15000\n", accepted);
}

// --- bytes per op ---------------------------------------------------------------------------

TEST_CASE("codec: bytes per op", "[repl][codec]") {
  // A replica id and HLC as in production (random 64-bit id, ms << 16), deep into the sequence.
  Replica r = MakeReplica(0x9E3779B97F4A7C15ULL, 1'000'000);
  Replica h = r, s = r, z = r, c = r, n = r, x = r;
  const uint64_t hlc = crdt::MakeHlc(1'700'000'000'000ULL, 3);
  const crdt::Writer w{&r.dots, hlc, 0, {}};
  std::vector<size_t> link_bytes;  // the same op as one batch on a link, framed
  auto size_of = [&](const KeyOp& op) {
    const OpRecord record{0, "key:000001", op, {}};  // a 10-byte key
    const OpBatch batch{.ops = {record}, .sender = op.first_dot.replica, .receiver_has = {}};
    link_bytes.push_back(Encode(Message(batch)).size() + 8);
    return EncodeOp(record).size();
  };
  const std::string value(16, 'v');
  auto set = *r.key.Set(value, false, std::nullopt, w, r.context);
  const size_t set_bytes = size_of(set);
  const crdt::Writer wc{&c.dots, hlc, 0, {}};
  (void)c.key.IncrBy(1, wc, c.context);
  const size_t incr_bytes = size_of(*c.key.IncrBy(1, wc, c.context));
  const crdt::Writer ws{&s.dots, hlc, 0, {}};
  (void)s.key.SAdd({"member-0001"}, ws, s.context);
  const size_t sadd_bytes = size_of(*s.key.SAdd({"member-0002"}, ws, s.context));
  const crdt::Writer wh{&h.dots, hlc, 0, {}};
  (void)h.key.HSet("field-0001", value, false, wh, h.context);
  const size_t hset_bytes = size_of(*h.key.HSet("field-0002", value, false, wh, h.context));
  const crdt::Writer wz{&z.dots, hlc, 0, {}};
  (void)z.key.ZAdd("member-0001", 1.5, wz, z.context);
  const size_t zadd_bytes = size_of(*z.key.ZAdd("member-0002", 2.5, wz, z.context));
  // Key expiry: EXPIRE on the string key is one expiry entry; SET EX is a SET plus that entry.
  const int64_t at_ms = 1'700'000'060'000;
  const size_t expire_bytes = size_of(*r.key.Expire(at_ms, w, r.context));
  const crdt::Writer wx{&x.dots, hlc, 0, {}};
  const size_t set_ex_bytes = size_of(*x.key.Set(value, false, at_ms, wx, x.context));
  // The first write of a key of its type also ships the incarnation's creation event.
  const crdt::Writer wn{&n.dots, hlc, 0, {}};
  const size_t create_sadd_bytes = size_of(*n.key.SAdd({"member-0001"}, wn, n.context));
  Replica m = MakeReplica(0x9E3779B97F4A7C15ULL, 1'000'000);
  const crdt::Writer wm{&m.dots, hlc, 0, {}};
  const size_t create_hset_bytes = size_of(*m.key.HSet("field-0001", value, false, wm, m.context));
  std::printf(
      "bytes per op (OpRecord, 10-byte key, no deps): SET 16-byte value %zu, INCR %zu, "
      "SADD 11-byte member %zu, HSET 10-byte field 16-byte value %zu, ZADD %zu, "
      "EXPIRE %zu, SET EX %zu, SADD creating the key %zu, HSET creating the key %zu\n",
      set_bytes, incr_bytes, sadd_bytes, hset_bytes, zadd_bytes, expire_bytes, set_ex_bytes,
      create_sadd_bytes, create_hset_bytes);
  std::printf("the same ops, each alone in a frame on a link:");
  for (size_t bytes : link_bytes) {
    std::printf(" %zu", bytes);
  }
  std::printf("\n");
  REQUIRE(link_bytes.size() == 9);
  CHECK(link_bytes[0] <= 60);  // SET: redis-server's stream takes 55 for a 12-byte key
  CHECK(link_bytes[1] <= 48);  // INCR: 42
  CHECK(link_bytes[2] <= 54);  // SADD: 49
  CHECK(link_bytes[3] <= 68);  // HSET: 72
  CHECK(link_bytes[4] <= 60);  // ZADD: 59
  CHECK(set_bytes < 60);
  CHECK(incr_bytes < 50);
  CHECK(sadd_bytes < 55);
  CHECK(hset_bytes < 70);
  CHECK(zadd_bytes < 60);
  CHECK(expire_bytes < 80);
  CHECK(set_ex_bytes < 125);
  CHECK(create_sadd_bytes < 105);
  CHECK(create_hset_bytes < 135);
}

// The encoded size of `op` as one op record, after checking it decodes to the same record.
size_t RoundTripSize(const KeyOp& op) {
  const OpRecord record{0, "key:000001", op, {}};
  auto decoded = DecodeOp(EncodeOp(record));
  REQUIRE(decoded.ok());
  CHECK(*decoded == record);
  return EncodeOp(record).size();
}

// PFADD on a dense HyperLogLog: the whole-value write ships the 12304-byte value; the raise
// (crdt/hll_key.h) ships a sparse HyperLogLog of the registers it raised, and round-trips exactly.
TEST_CASE("codec: a PFADD raise ships its registers, not the dense value", "[repl][codec][hll]") {
  Replica r = MakeReplica(0x9E3779B97F4A7C15ULL, 1'000'000);
  const uint64_t hlc = crdt::MakeHlc(1'700'000'000'000ULL, 3);
  const crdt::Writer w{&r.dots, hlc, 0, {}};
  std::string dense = crdt::hll::NewSparse();
  for (int i = 0; i < 5000; ++i) (void)crdt::hll::Add(dense, std::to_string(i), 3000);
  REQUIRE(crdt::hll::ToDense(dense));
  const size_t whole_bytes = RoundTripSize(*r.key.Set(dense, true, std::nullopt, w, r.context));
  size_t raise_bytes = 0;  // (a bitmap's chunk write: "codec: a SETBIT ships its chunk")
  for (int i = 0; raise_bytes == 0 && i < 1000; ++i) {
    const std::string element = "new:" + std::to_string(i);
    const std::string_view view = element;
    auto entries = crdt::hll::RaiseEntries(r.key, 0);
    REQUIRE(entries);
    crdt::hll::AddPlan plan = crdt::hll::PlanAdd(*entries, std::span(&view, 1));
    if (plan.kind != crdt::hll::AddPlan::Kind::kRaise) continue;
    raise_bytes = RoundTripSize(crdt::hll::AddBeside(r.key, std::move(plan.raise), w, r.context));
  }
  std::printf(
      "bytes per PFADD op on a dense HyperLogLog (10-byte key): whole value %zu, "
      "raise of one register %zu\n",
      whole_bytes, raise_bytes);
  CHECK(whole_bytes > crdt::hll::kDenseSize);
  CHECK(raise_bytes > 0);
  CHECK(raise_bytes < 80);
}

// The replica's key sent in a snapshot chunk and decoded.
Key SnapshotRoundTrip(const Replica& r) {
  SnapshotChunk chunk;
  chunk.keys.push_back(SnapshotKey{0, "bm", r.key});
  chunk.context = r.context;
  chunk.last = true;
  auto decoded = Decode(Encode(Message(chunk)));
  REQUIRE(decoded.ok());
  return std::get<SnapshotChunk>(*decoded).keys[0].state;
}

TEST_CASE("codec: a SETBIT on a 1 MB bitmap ships its chunk, not the value",
          "[repl][codec][bitmap]") {
  Replica r = MakeReplica(0x9E3779B97F4A7C15ULL, 1'000'000);
  const crdt::Writer w{&r.dots, crdt::MakeHlc(1'700'000'000'000ULL, 3), 0, {}};
  std::string value(1 << 20, '\x55');
  const size_t whole_bytes = RoundTripSize(*r.key.Set(value, true, std::nullopt, w, r.context));
  value[700'000] = '\x57';  // SETBIT k 5600006 1
  const size_t chunk_bytes =
      RoundTripSize(*r.key.WriteBitmap(value, 700'000, 700'001, w, r.context));
  std::printf("bytes per SETBIT op on a 1 MB bitmap (10-byte key): whole value %zu, chunk %zu\n",
              whole_bytes, chunk_bytes);
  CHECK(whole_bytes > (1 << 20));
  CHECK(chunk_bytes < crdt::kChunkBytes + 100);
  // The state (base and chunk) round-trips through a snapshot and reads as the value.
  const Key state = SnapshotRoundTrip(r);
  CHECK(state == r.key);
  CHECK(state.GetString(0) == value);
}

TEST_CASE("codec: invalid bitmap chunks are refused", "[repl][codec][bitmap]") {
  wire::Envelope e;
  auto* key = e.mutable_snapshot_chunk()->add_keys()->mutable_state();
  auto* chunk = key->add_chunks();
  chunk->set_index(3);
  auto* entry = chunk->mutable_cell()->add_entries();
  entry->set_value(std::string(256, 'x'));
  entry->set_hlc(10);
  entry->mutable_dot()->set_replica(7);
  entry->mutable_dot()->set_seq(1);
  REQUIRE(DecodeError(e).empty());
  SECTION("a chunk longer than 256 bytes") {
    entry->set_value(std::string(257, 'x'));
    CHECK(DecodeError(e) == "bitmap chunk too long");
  }
  SECTION("an index past the end") {
    chunk->set_index(crdt::kChunkIndexEnd);
    CHECK(DecodeError(e) == "bitmap chunk index out of range");
  }
  SECTION("counter metadata") {
    chunk->mutable_cell()->mutable_meta()->add_tombs()->mutable_dot()->set_replica(7);
    CHECK(DecodeError(e) == "bitmap chunk cell with counter metadata or too many entries");
  }
  SECTION("indexes out of order, repeated, or an empty chunk") {
    auto* second = key->add_chunks();
    second->set_index(1);
    *second->mutable_cell()->add_entries() = *entry;
    second->mutable_cell()->mutable_entries(0)->mutable_dot()->set_seq(2);
    CHECK(DecodeError(e) == "key state is not canonical or not representable");
    second->set_index(3);
    CHECK(DecodeError(e) == "key state is not canonical or not representable");
    second->set_index(4);
    CHECK(DecodeError(e).empty());
    second->mutable_cell()->clear_entries();
    CHECK(DecodeError(e) == "key state is not canonical or not representable");
  }
}

// A state holding every part of a field counter: two regions' increment chains, the tombstone
// of a SETBIT that reset one of them (with its offsets) and a later chain on that tombstone.
TEST_CASE("codec: bitmap field counters round-trip as ops and state", "[repl][codec][bitmap]") {
  Replica a = MakeReplica(0x9E3779B97F4A7C15ULL, 1'000'000);
  Replica b = MakeReplica(0x1234567ULL, 1);
  const crdt::BitField field{8, 16};
  auto writer = [](Replica& r, uint64_t ms) {
    return crdt::Writer{&r.dots, crdt::MakeHlc(1'700'000'000'000ULL + ms, 0), 0, {}};
  };
  auto apply = [](Replica& to, const KeyOp& op) {
    to.key.Apply(op, to.context);
    return op;
  };
  std::vector<KeyOp> ops;
  ops.push_back(apply(b, *a.key.IncrBitFields({{field, 70000}}, writer(a, 1), a.context)));
  ops.push_back(*b.key.IncrBitFields({{field, ~uint64_t{0}}}, writer(b, 2), b.context));
  std::string value = *a.key.GetString(0);
  value[0] = '\x01';
  ops.push_back(*a.key.WriteBitmap(value, 0, 1, writer(a, 3), a.context));  // resets the counter
  ops.push_back(*a.key.IncrBitFields({{field, 9}, {{40, 3}, 5}}, writer(a, 4), a.context));
  a.key.Apply(ops[1], a.context);
  std::printf(
      "bytes per bitmap counter op (key:000001): increment, increment, chunk write with "
      "a reset, two increments:");
  for (const KeyOp& op : ops) {
    const size_t bytes = RoundTripSize(op);
    std::printf(" %zu", bytes);
    CHECK(bytes < 160);
  }
  std::printf("\n");
  const crdt::BitChunks& chunks = a.key.rest()->chunks();
  REQUIRE(chunks.CounterAt(field).rest() != nullptr);
  CHECK(chunks.CounterAt(field).rest()->tombs.size() == 1);
  CHECK(chunks.CounterAt(field).rest()->incs.size() == 2);
  CHECK(chunks.CounterAt(field).rest()->observed.size() == 1);
  const Key state = SnapshotRoundTrip(a);
  CHECK(state == a.key);
  CHECK(state.GetString(0) == a.key.GetString(0));
}

TEST_CASE("codec: invalid bitmap counters are refused", "[repl][codec][bitmap]") {
  wire::Envelope e;
  auto* key = e.mutable_snapshot_chunk()->add_keys()->mutable_state();
  auto* counter = key->add_counters();
  counter->set_offset(8);
  counter->set_bits(16);
  auto* inc = counter->mutable_cell()->mutable_meta()->add_incs();
  inc->set_total(5);
  inc->mutable_dot()->set_replica(7);
  inc->mutable_dot()->set_seq(1);
  REQUIRE(DecodeError(e).empty());
  SECTION("a field across a chunk boundary, too wide, or empty") {
    counter->set_offset(2040);
    CHECK(DecodeError(e) == "bitmap counter field out of range");
    counter->set_offset(8);
    counter->set_bits(65);
    CHECK(DecodeError(e) == "bitmap counter field out of range");
    counter->set_bits(0);
    CHECK(DecodeError(e) == "bitmap counter field out of range");
  }
  SECTION("an entry, a float total, a repeated chain") {
    auto* entry = counter->mutable_cell()->add_entries();
    entry->mutable_dot()->set_replica(7);
    entry->mutable_dot()->set_seq(2);
    CHECK(DecodeError(e) == "bitmap counter with entries");
    counter->mutable_cell()->clear_entries();
    inc->set_ftotal("0x8p-3");
    CHECK(DecodeError(e) == "counter increment repeated or not an integer");
    inc->clear_ftotal();
    auto* again = counter->mutable_cell()->mutable_meta()->add_incs();
    *again = *inc;
    again->mutable_dot()->set_seq(3);
    CHECK(DecodeError(e) == "counter chain repeated");
  }
  SECTION("counters out of order, repeated, or an empty counter") {
    auto* second = key->add_counters();
    *second = *counter;
    second->mutable_cell()->mutable_meta()->mutable_incs(0)->mutable_dot()->set_seq(2);
    CHECK(DecodeError(e) == "key state is not canonical or not representable");
    second->set_offset(0);
    second->set_bits(8);
    CHECK(DecodeError(e) == "key state is not canonical or not representable");
    second->set_offset(64);
    CHECK(DecodeError(e).empty());
    second->clear_cell();
    CHECK(DecodeError(e) == "key state is not canonical or not representable");
  }
}

}  // namespace
}  // namespace lattice::repl

namespace lattice::repl {
namespace {

// Not run by default: decode cost per op kind, for callgrind (bench "[.decode]" with the kind).
// Decoding a snapshot chunk of sets of a hundred members (hidden: a cost to read, not a test):
// `repl_tests "[.decode-snapshot]" --durations yes`.
TEST_CASE("codec: decode cost of a snapshot chunk of sets", "[.decode-snapshot]") {
  Replica r = MakeReplica(0x9E3779B97F4A7C15ULL);
  const crdt::Writer w{&r.dots, crdt::MakeHlc(1'700'000'000'000ULL, 3), 0, {}};
  SnapshotChunk chunk;
  for (int k = 0; k < 50; ++k) {
    Key key;
    std::vector<std::string> names;
    for (int m = 0; m < 100; ++m) names.push_back("m" + std::to_string(m));
    REQUIRE(key.SAdd(names, w, r.context).ok());
    chunk.keys.push_back(SnapshotKey{0, "s:" + std::to_string(k), key});
  }
  chunk.context = r.context;
  chunk.last = true;
  const std::string bytes = Encode(Message(chunk));
  for (int round = 0; round < 20; ++round) {
    auto decoded = Decode(bytes);
    REQUIRE(decoded.ok());
    CHECK(std::get<SnapshotChunk>(*decoded).keys.size() == 50);
  }
}

TEST_CASE("codec: decode cost per op", "[.decode]") {
  const char* kind = std::getenv("LATTICE_DECODE_KIND");
  const std::string which = kind != nullptr ? kind : "SET";
  Replica r = MakeReplica(0x9E3779B97F4A7C15ULL, 1'000'000);
  const crdt::Writer w{&r.dots, crdt::MakeHlc(1'700'000'000'000ULL, 3), 0, {}};
  std::vector<OpRecord> ops;
  for (int i = 0; i < 2000; ++i) {
    const std::string name = "member:" + std::to_string(i);
    Result<KeyOp> op = which == "HSET" ? r.key.HSet(name, std::string(16, 'v'), false, w, r.context)
                       : which == "SADD" ? r.key.SAdd({name}, w, r.context)
                       : which == "ZADD"
                           ? r.key.ZAdd(name, i, w, r.context)
                           : r.key.Set(std::string(16, 'v'), false, std::nullopt, w, r.context);
    REQUIRE(op.ok());
    ops.push_back(OpRecord{0, "key:00000001", *op, {}});
  }
  const std::string bytes = Encode(Message(OpBatch{ops}));
  size_t decoded = 0;
  for (int round = 0; round < 5; ++round) {
    auto batch = Decode(bytes);
    REQUIRE(batch.ok());
    decoded += std::get<OpBatch>(*batch).ops.size();
  }
  CHECK(decoded == 10'000);
}

}  // namespace
}  // namespace lattice::repl
