// The wire codec: every message type round-trips, with CRDT state made by the real crdt::Key
// mutators of several replicas (conflicts, counters, tombstones, compaction); hostile input is
// refused, never crashes; bytes per op are measured.
//
// Coverage: crdt::Key exposes no accessor for its creation cells and key-level expiry, so the
// codec cannot encode them. Every op and state is checked against Strip(x) (x without exactly
// those parts); ops and states that have none of them must round-trip to themselves exactly.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "lattice/common/rng.h"
#include "lattice/crdt/hlc.h"
#include "lattice/repl/codec.h"
#include "lattice/repl/lattice.pb.h"

namespace lattice::repl {
namespace {

using crdt::DotContext;
using crdt::Key;
using crdt::KeyOp;

// The dots of the parts of a key the codec can read (string, hash, set, zset).
DotContext ReachableDots(const Key& key) {
  DotContext dots;
  key.string().CollectDots(dots);
  key.hash().CollectDots(dots);
  key.set().CollectDots(dots);
  key.zset().CollectDots(dots);
  return dots;
}

// `key` without its creation cells and key-level expiry (the parts without an accessor).
Key Strip(const Key& key) {
  DotContext all;
  key.CollectDots(all);
  const DotContext reachable = ReachableDots(key);
  DotContext drop;
  for (const auto& [replica, seq] : all.vector().entries()) {
    for (uint64_t s = 1; s <= seq; ++s) {
      if (!reachable.Contains({replica, s})) {
        drop.Add({replica, s});
      }
    }
  }
  for (const crdt::Dot& dot : all.cloud()) {
    if (!reachable.Contains(dot)) {
      drop.Add(dot);
    }
  }
  Key out = key;
  out.Join(Key{}, DotContext{}, drop);
  return out;
}

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
  p.expiry = rng.Chance(1, 3) ? crdt::ExpiryRule::kLongest : crdt::ExpiryRule::kLww;
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
  switch (rng.Uniform(17)) {
    case 0:
      return Take(k.Set(std::string(rng.Uniform(20), 'v'), rng.Chance(1, 2), std::nullopt, w, c));
    case 1: return Take(k.IncrBy(rng.Range(-1000, 1000), w, c));
    case 2: return Take(k.IncrByFloat(RandomFloat(rng), w, c));
    case 3: return Take(k.Del(w, c));
    case 4: return Take(k.SAdd({name, Pick(rng, kNames)}, w, c));
    case 5: return Take(k.SRem({name}, w, c));
    case 6: return Take(k.HSet(name, "value-" + name, rng.Chance(1, 2), w, c));
    case 7: return Take(k.HDel({name}, w, c));
    case 8: return Take(k.HIncrBy(name, rng.Range(INT64_MIN / 4, INT64_MAX / 4), w, c));
    case 9: return Take(k.HIncrByFloat(name, RandomFloat(rng), w, c));
    case 10: return Take(k.HExpire(name, now_ms + rng.Range(-10, 5000), w, c));
    case 11: return Take(k.ZAdd(name, rng.NextDouble() * 100 - 50, w, c));
    case 12: return Take(k.ZIncrBy(name, rng.NextDouble() * 1e6 - 5e5, w, c));
    case 13: return Take(k.ZRem({name}, w, c));
    case 14: return Take(k.Expire(now_ms + rng.Range(0, 5000), w, c));
    case 15: return Take(k.Reclaim(w, c));
    default: return Take(k.Set("123", false, now_ms + 100, w, c));
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

OpRecord Stripped(OpRecord record) {
  record.op.delta = Strip(record.op.delta);
  return record;
}

TEST_CASE("codec: random ops of every type round-trip", "[repl][codec]") {
  const uint64_t seed = GENERATE(take(40, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  const Generated g = Generate(seed, 100);
  for (const OpRecord& record : g.ops) {
    auto decoded = DecodeOp(EncodeOp(record));
    REQUIRE(decoded.ok());
    CHECK(*decoded == Stripped(record));
    if (Strip(record.op.delta) == record.op.delta) {
      CHECK(*decoded == record);  // nothing unreachable: exactly itself
    }
  }
  auto batch = Decode(Encode(Message(OpBatch{g.ops})));
  REQUIRE(batch.ok());
  OpBatch want;
  for (const OpRecord& record : g.ops) {
    want.ops.push_back(Stripped(record));
  }
  CHECK(std::get<OpBatch>(*batch) == want);
}

TEST_CASE("codec: at least 2,000 random ops round-trip exactly", "[repl][codec]") {
  size_t exact = 0;
  size_t all = 0;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    CAPTURE(seed);
    for (const OpRecord& record : Generate(seed, 100).ops) {
      ++all;
      if (Strip(record.op.delta) == record.op.delta) {
        auto decoded = DecodeOp(EncodeOp(record));
        REQUIRE(decoded.ok());
        REQUIRE(*decoded == record);
        ++exact;
      }
    }
  }
  std::printf("random ops: %zu, round-tripped exactly: %zu (the rest carry a creation cell or key "
              "expiry, checked against Strip)\n", all, exact);
  CHECK(exact >= 2000);
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
  auto decoded = Decode(Encode(Message(chunk)));
  REQUIRE(decoded.ok());
  SnapshotChunk want = chunk;
  for (SnapshotKey& key : want.keys) {
    key.state = Strip(key.state);
  }
  CHECK(std::get<SnapshotChunk>(*decoded) == want);
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
  const long double values[] = {0.1L, -0.1L, 1e-4940L, 1.18e4932L, 0x1.23456789abcdef1p-3L,
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

wire::Envelope OneSetOp() {
  Replica r = MakeReplica(9);
  (void)r.key.SAdd({"x"}, crdt::Writer{&r.dots, 5, 5, {}}, r.context);
  auto op = r.key.SAdd({"y"}, crdt::Writer{&r.dots, 6, 6, {}}, r.context);
  wire::Envelope envelope;
  REQUIRE(envelope.ParseFromString(Encode(Message(OpBatch{{OpRecord{0, "k", *op, {}}}}))));
  return envelope;
}

std::string DecodeError(const wire::Envelope& envelope) {
  auto decoded = Decode(Serialized(envelope));
  return decoded.ok() ? "" : decoded.error().message;
}

TEST_CASE("codec: invalid messages are refused with a reason", "[repl][codec]") {
  const wire::Envelope good = OneSetOp();
  REQUIRE(DecodeError(good).empty());
  auto op = [](wire::Envelope& e) { return e.mutable_op_batch()->mutable_ops(0)->mutable_op(); };
  wire::Envelope e;
  CHECK(DecodeError(e) == "envelope without a known message");
  CHECK(Decode("\x08").error().message == "malformed protobuf");
  CHECK(Decode(std::string("\xfa\x07\x00", 3)).error().message ==
        "envelope without a known message");  // unknown field 127 only
  e = good;
  op(e)->mutable_first_dot()->set_replica(0);
  CHECK(DecodeError(e) == "dot with replica 0");
  e = good;
  op(e)->mutable_first_dot()->set_seq(0);
  CHECK(DecodeError(e) == "dot with seq out of range");
  e = good;
  op(e)->set_dot_count(0);
  CHECK(DecodeError(e) == "op dot_count out of range");
  e = good;
  op(e)->set_dot_count(op(e)->dot_count() + 5);
  CHECK(DecodeError(e) == "op context does not cover the op's dots");
  e = good;
  op(e)->mutable_first_dot()->set_seq(op(e)->first_dot().seq() + 1);
  CHECK(DecodeError(e) == "op delta holds a dot outside first_dot/dot_count");
  e = good;
  op(e)->mutable_policies()->set_set(2);
  CHECK(DecodeError(e) == "policy value out of range");
  e = good;
  op(e)->mutable_delta()->mutable_set_adds(0)->add_seq(3);
  CHECK(DecodeError(e) == "set member: replica and seq counts differ");
  e = good;
  op(e)->mutable_delta()->mutable_set_adds(0)->set_replica(0, 0);
  CHECK(DecodeError(e) == "dot with replica 0");
  e = good;
  op(e)->mutable_delta()->mutable_set_created();
  CHECK(DecodeError(e) ==
        "key creation cells and expiry are not supported by this codec version");
  e = good;
  op(e)->mutable_context()->add_cloud_replica(4);
  CHECK(DecodeError(e) == "dot context: cloud replica and seq counts differ");
  e = good;
  auto* deps = e.mutable_op_batch()->mutable_ops(0)->mutable_deps();
  deps->add_replica(5);
  deps->add_seq(1);
  deps->add_replica(3);
  deps->add_seq(1);
  CHECK(DecodeError(e) == "version vector not sorted by replica");
  e = wire::Envelope{};
  e.mutable_hello()->set_replica(0);
  CHECK(DecodeError(e) == "hello with replica 0");
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
  Replica h = r, s = r, z = r, c = r;
  const uint64_t hlc = crdt::MakeHlc(1'700'000'000'000ULL, 3);
  const crdt::Writer w{&r.dots, hlc, 0, {}};
  auto size_of = [](const KeyOp& op) {
    return EncodeOp(OpRecord{0, "key:000001", op, {}}).size();  // a 10-byte key
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
  std::printf("bytes per op (OpRecord, 10-byte key, no deps): SET 16-byte value %zu, INCR %zu, "
              "SADD 11-byte member %zu, HSET 10-byte field 16-byte value %zu, ZADD %zu\n",
              set_bytes, incr_bytes, sadd_bytes, hset_bytes, zadd_bytes);
  CHECK(set_bytes < 120);
  CHECK(incr_bytes < 120);
  CHECK(sadd_bytes < 120);
  CHECK(hset_bytes < 130);
  CHECK(zadd_bytes < 120);
}

}  // namespace
}  // namespace lattice::repl
