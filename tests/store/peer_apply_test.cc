// A peer's apply path (Keyspace::ApplyRemote): the direct paths for the common op shapes (a SET,
// a counter increment, HSET / SADD / ZADD of plain elements, on full and compact keys) against
// the generic delta join they replace. Random op streams from three origin replicas (concurrent
// and causally related writes, removes, DEL, expiries, several policies) are encoded and decoded
// as a peer receives them and applied to two peer keyspaces, one with the direct paths and one
// forced through the join; after every op both must hold identical state (every key, its stored
// form), shard context, conflict log and observer calls. Also (hidden, [.bench]): a cost loop
// for callgrind, one op kind at a time.

#include <array>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "lattice/common/rng.h"
#include "lattice/repl/codec.h"
#include "store/keyspace.h"
#include "store/keyspace_test_util.h"

namespace lattice::server {
namespace {

constexpr int64_t kStart = 1'700'000'000'000;

using testing::Collector;

// What a peer receives: the op as the origin encoded it, decoded again.
[[maybe_unused]] crdt::KeyOp OverTheWire(const std::string& key, const crdt::KeyOp& op) {
  std::string record;
  repl::AppendOpRecord(0, key, op, crdt::VersionVector{}, record);
  Result<repl::OpRecord> decoded = repl::DecodeOp(record);
  REQUIRE(decoded.ok());
  REQUIRE(decoded->key == key);
  return std::move(decoded->op);
}

// Records what a keyspace's observers see: its own ops, and the remote ops it applied.
class Recorder final : public KeyspaceObserver {
 public:
  void OnLocalOp(int db, std::string_view key, const crdt::KeyOp& op) override {
    local.emplace_back(db, std::string(key), op);
  }
  void OnRemoteOp(int db, std::string_view key, const crdt::KeyOp& op) override {
    remote.emplace_back(db, std::string(key), op);
  }
  std::vector<std::tuple<int, std::string, crdt::KeyOp>> local;
  std::vector<std::tuple<int, std::string, crdt::KeyOp>> remote;
};

// One origin region: its keyspace and the ops it made, in order.
struct Origin {
  Origin(ReplicaId id, const crdt::Policies& policies) : ks(id, 1) {
    ks.AddObserver(&seen);
    ks.set_policies(policies);
    ks.conflicts().set_log_rate(0);
  }
  Keyspace ks;
  Recorder seen;
  size_t shipped = 0;  // of seen.local, moved to the stream
  size_t applied = 0;  // position in the stream up to which it applied the others' ops
};

std::string Pick(Rng& rng, const std::vector<std::string>& pool) {
  return pool[rng.Uniform(pool.size())];
}

// One random write on `origin` (errors such as WRONGTYPE are part of the history).
void RandomWrite(Keyspace& ks, Rng& rng, int64_t now) {
  static const std::vector<std::string> kNames = {"a", "b", "c", "d", "e", "f"};
  const uint64_t command = rng.Uniform(14);
  // Mostly a key of the command's type (s*: strings, h*: hashes, t*: sets, z*: sorted sets),
  // sometimes any key: type conflicts.
  static const char kPrefix[14] = {'s', 's', 's', 'h', 't', 'z', 't',
                                   'h', 'z', 's', 's', 'h', 's', 't'};
  const char prefix = rng.Uniform(8) == 0 ? "shtz"[rng.Uniform(4)] : kPrefix[command];
  const std::string key = prefix + std::to_string(rng.Uniform(3));
  const std::string name = Pick(rng, kNames);
  auto generic = [&](auto mutate) {
    (void)ks.Write(0, key, now, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
      return mutate(k, w, c);
    });
  };
  switch (command) {
    case 0:
      ks.SetString(0, key, "v" + std::to_string(rng.Uniform(100)), rng.Uniform(4) == 0, now);
      break;
    case 1:
    case 2:
      (void)ks.IncrString(0, key, static_cast<int64_t>(rng.Uniform(11)) - 5, now);
      break;
    case 3: {
      std::vector<std::pair<std::string, std::string>> pairs{{name, std::to_string(now)}};
      if (rng.Uniform(3) == 0) pairs.emplace_back(Pick(rng, kNames), "w");
      (void)ks.HSetMany(0, key, std::move(pairs), false, now);
      break;
    }
    case 4: {
      std::vector<std::string> members{name};
      if (rng.Uniform(3) == 0) members.push_back(Pick(rng, kNames));
      (void)ks.SAdd(0, key, members, now);
      break;
    }
    case 5:
      (void)ks.ZAddMany(0, key, {{name, static_cast<double>(rng.Uniform(10))}}, now);
      break;
    case 6:
      generic([&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
        return k.SRem({name}, w, c);
      });
      break;
    case 7:
      generic([&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
        return k.HDel({name}, w, c);
      });
      break;
    case 8:
      generic([&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
        return k.ZRem({name}, w, c);
      });
      break;
    case 9:
      (void)ks.Delete(0, key, now);
      break;
    case 10:
      generic([&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
        return k.Expire(now + static_cast<int64_t>(rng.Uniform(200)), w, c);
      });
      break;
    case 11:
      generic([&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
        return k.HExpire(name, now + static_cast<int64_t>(rng.Uniform(200)), w, c);
      });
      break;
    case 12:
      generic([&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
        return k.IncrByFloat(0.5, w, c);
      });
      break;
    default: {  // a burst: outgrows small compact limits
      std::vector<std::string> members;
      for (int i = 0; i < 10; ++i) members.push_back("m" + std::to_string(rng.Uniform(40)));
      (void)ks.SAdd(0, key, members, now);
      break;
    }
  }
}

// The two peers hold the same keys in the same stored form, the same context and conflict log,
// and their observers saw the same remote ops.
void RequireSamePeers(const Keyspace& fast, const Recorder& fast_seen, const Keyspace& reference,
                      const Recorder& reference_seen) {
  const auto state = testing::StateOf(fast);
  REQUIRE(state == testing::StateOf(reference));
  for (const auto& [key, value] : state) {
    const KeyRef a = fast.Find(0, key, 0);
    const KeyRef b = reference.Find(0, key, 0);
    REQUIRE((a == nullptr) == (b == nullptr));
    if (a != nullptr) REQUIRE((a.full() == nullptr) == (b.full() == nullptr));
  }
  REQUIRE(fast.context() == reference.context());
  REQUIRE(fast.Size(0) == reference.Size(0));
  REQUIRE(fast.VolatileCount(0) == reference.VolatileCount(0));
  REQUIRE(fast.FieldTtlKeyCount(0) == reference.FieldTtlKeyCount(0));
  REQUIRE(fast.conflicts().total() == reference.conflicts().total());
  REQUIRE(fast.conflicts().counts() == reference.conflicts().counts());
  REQUIRE(fast_seen.remote == reference_seen.remote);
  REQUIRE(fast_seen.local.empty());
  REQUIRE(reference_seen.local.empty());
}

// The stored form of `key` before an op: what picks the direct path that applies it.
// (A stored key of no type, which Find hides, counts as missing: it is rare.)
enum class Form { kMissing, kString, kCounter, kCollection, kFull, kCount };

Form FormOf(const Keyspace& ks, const std::string& key) {
  const KeyRef ref = ks.Find(0, key, 0);
  if (ref == nullptr) {
    return Form::kMissing;
  }
  const StoredKey& stored = *ref.stored();
  return !stored.compact()     ? Form::kFull
         : stored.collection() ? Form::kCollection
         : stored.counter()    ? Form::kCounter
                               : Form::kString;
}

// How many ops each stored form took, and how many of those a direct path applied.
struct Tally {
  std::array<size_t, static_cast<size_t>(Form::kCount)> ops{};
  std::array<size_t, static_cast<size_t>(Form::kCount)> direct{};
};

// One random history of `seed`: three origins, two peers (direct and join), compared after
// every op.
void RunHistory(uint64_t seed, Tally& tally) {
  INFO("seed " << seed);
  Rng rng(seed);
  crdt::Policies remove_wins;
  remove_wins.set = crdt::SetRule::kRemoveWins;
  remove_wins.zset = crdt::SetRule::kRemoveWins;
  remove_wins.string = crdt::StringRule::kLww;
  std::vector<std::unique_ptr<Origin>> origins;
  origins.push_back(std::make_unique<Origin>(11, crdt::Policies{}));
  origins.push_back(std::make_unique<Origin>(12, crdt::Policies{}));
  origins.push_back(std::make_unique<Origin>(13, seed % 3 == 0 ? remove_wins : crdt::Policies{}));
  Keyspace fast(2, 1);
  Keyspace reference(2, 1);
  reference.set_direct_apply_for_testing(false);
  if (seed % 2 == 0) {  // small compact collections: the forms convert often
    for (auto type : {crdt::ObjectType::kHash, crdt::ObjectType::kSet, crdt::ObjectType::kZSet}) {
      fast.set_compact_limits(type, CompactLimits{.max_entries = 4, .max_value = 64});
      reference.set_compact_limits(type, CompactLimits{.max_entries = 4, .max_value = 64});
    }
  }
  Recorder fast_seen;
  Recorder reference_seen;
  fast.conflicts().set_log_rate(0);
  reference.conflicts().set_log_rate(0);
  fast.AddObserver(&fast_seen);
  reference.AddObserver(&reference_seen);
  // Every op, in the order made: delivered in this order to anyone, it is delivered causally.
  std::vector<std::pair<std::string, crdt::KeyOp>> stream;
  size_t peers_applied = 0;
  auto apply_peers = [&](size_t count) {
    for (; count > 0 && peers_applied < stream.size(); --count, ++peers_applied) {
      const auto& [key, op] = stream[peers_applied];
      const crdt::KeyOp received = OverTheWire(key, op);
      REQUIRE(received.delta == op.delta);  // the decoder's direct deltas are the mutators'
      const auto form = static_cast<size_t>(FormOf(fast, key));
      const uint64_t direct_before = fast.stats().remote_in_place;
      fast.ApplyRemote(0, key, received);
      ++tally.ops[form];
      tally.direct[form] += fast.stats().remote_in_place - direct_before;
      reference.ApplyRemote(0, key, received);
      RequireSamePeers(fast, fast_seen, reference, reference_seen);
    }
  };
  int64_t now = kStart;
  for (int step = 0; step < 500; ++step) {
    now += static_cast<int64_t>(rng.Uniform(20));
    Origin& origin = *origins[rng.Uniform(origins.size())];
    const uint64_t action = rng.Uniform(10);
    if (action < 5) {
      RandomWrite(origin.ks, rng, now);
      for (; origin.shipped < origin.seen.local.size(); ++origin.shipped) {
        const auto& [db, key, op] = origin.seen.local[origin.shipped];
        stream.emplace_back(key, op);
      }
    } else if (action < 8) {  // the origin catches up on others' ops (causally related writes)
      for (uint64_t n = rng.Uniform(16); n > 0 && origin.applied < stream.size(); --n) {
        const auto& [key, op] = stream[origin.applied++];
        if (op.first_dot.replica != origin.ks.replica()) {
          origin.ks.ApplyRemote(0, key, OverTheWire(key, op));
        }
      }
    } else {
      apply_peers(rng.Uniform(8));
    }
  }
  apply_peers(stream.size());
  INFO("ops " << stream.size() << ", in place " << fast.stats().remote_in_place);
  REQUIRE(fast.stats().remote_ops == stream.size());
  REQUIRE(reference.stats().remote_in_place == 0);
  REQUIRE(fast.stats().remote_in_place * 10 >= stream.size());  // the direct paths ran
}

TEST_CASE("peer apply: the direct paths give the join's state", "[store][peer_apply]") {
  const uint64_t seed = GENERATE(range(uint64_t{1}, uint64_t{41}));
  Tally tally;
  RunHistory(seed, tally);
}

// Every stored form has a direct path, and the histories above reach each of them (so the
// comparison covers every path): a missing key (SET, INCR), a compact string (SET), a compact
// counter (INCR), a compact collection (HSET, SADD, ZADD) and a full key.
TEST_CASE("peer apply: every direct path runs", "[store][peer_apply]") {
  Tally tally;
  for (uint64_t seed = 1; seed <= 40; ++seed) RunHistory(seed, tally);
  for (size_t form = 0; form < tally.ops.size(); ++form) {
    INFO("form " << form << ": " << tally.direct[form] << " of " << tally.ops[form] << " direct");
    CHECK(tally.direct[form] * 20 >= tally.ops[form]);
    CHECK(tally.direct[form] > 0);
  }
}

// The cost loop: `ops` writes of one kind made on an origin, then applied on a peer (decode and
// ApplyRemote). Run one kind under callgrind with --toggle-collect on those two functions:
//   LATTICE_PEER_APPLY_KIND=HSET valgrind --tool=callgrind
//     --toggle-collect='lattice::repl::DecodeOp*' --toggle-collect='*Keyspace::ApplyRemote*'
//     build/bin/store_tests '[.bench]'
TEST_CASE("peer apply: cost loop", "[.bench]") {
  const char* env = std::getenv("LATTICE_PEER_APPLY_KIND");
  const std::string kind = env != nullptr ? env : "INCR";
  const int ops = 20000;
  Keyspace origin(1, 1);
  Keyspace peer(2, 1);
  Collector made;
  origin.AddObserver(&made);
  Rng rng(7);
  for (int i = 0; i < ops; ++i) {
    const std::string n = std::to_string(rng.Uniform(100000));
    const int64_t now = kStart + i;
    if (kind == "SET") {
      origin.SetString(0, "key:" + n, "xxxxxxxxxxxxxxxx", false, now);
    } else if (kind == "INCR") {
      REQUIRE(origin.IncrString(0, "counter:" + n, 1, now).ok());
    } else if (kind == "HSET") {
      REQUIRE(origin.HSetMany(0, "myhash", {{"element:" + n, "xxx"}}, false, now).ok());
    } else if (kind == "SADD") {
      REQUIRE(origin.SAdd(0, "myset", {"element:" + n}, now).ok());
    } else {
      REQUIRE(origin.ZAddMany(0, "myzset", {{"element:" + n, 0}}, now).ok());
    }
  }
  (void)peer.BeginWrite(kStart);  // the peer's clock runs as the origin's: no drift refusals
  std::vector<std::string> records;
  for (const auto& [db, key, op] : made.ops) {
    repl::AppendOpRecord(0, key, op, crdt::VersionVector{}, records.emplace_back());
  }
  for (const std::string& record : records) {
    Result<repl::OpRecord> op = repl::DecodeOp(record);
    REQUIRE(op.ok());
    peer.ApplyRemote(0, op->key, op->op);
  }
  REQUIRE(peer.context() == origin.context());
}

}  // namespace
}  // namespace lattice::server
