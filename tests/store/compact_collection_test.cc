// Compact collections (docs/architecture.md, "Storage of keys") against the full form: random
// histories of hash, set and sorted-set writes (local and a peer's, applied in between) run
// through a keyspace that stores small collections compact and one that never does (limits of
// zero entries); after every step both must hold identical state (every key expanded, the shard
// context, the next dot) and must have shipped identical ops, and the KeyRef reads of the
// compact keys must agree with the full state. Also: the encoding round-trips every element
// shape, and ineligible states stay full.

#include "store/compact_collection.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "lattice/common/rng.h"
#include "store/keyspace.h"
#include "store/keyspace_test_util.h"

namespace lattice::server {
namespace {

constexpr int64_t kStart = 1'700'000'000'000;

using testing::Collector;
using testing::RequireSameKeyspaces;

template <typename Mutate>
Result<void> Run(Keyspace& ks, const std::string& key, int64_t now, Mutate mutate) {
  return ks.Write(0, key, now, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return mutate(k, w, c);
  });
}

void NeverCompact(Keyspace& ks) {
  for (auto type : {crdt::ObjectType::kHash, crdt::ObjectType::kSet, crdt::ObjectType::kZSet}) {
    ks.set_compact_limits(type, CompactLimits{.max_entries = 0});
  }
}

// Keyspace::SAdd, whose count must be SADD's reply: how many distinct members the set did not
// hold (Contains: a remove-wins token hides a member) before; another type is refused.
Result<void> CheckedSAdd(Keyspace& ks, const std::string& key,
                         const std::vector<std::string>& members, int64_t now) {
  const Result<KeyRef> set = ks.FindTyped(0, key, crdt::ObjectType::kSet, now);
  size_t expected = 0;
  for (const std::string& member : std::set<std::string>(members.begin(), members.end())) {
    expected += set.ok() && *set != nullptr && (*set)->SetContains(member) ? 0 : 1;
  }
  const Result<size_t> added = ks.SAdd(0, key, members, now);
  REQUIRE(added.ok() == set.ok());
  if (!added.ok()) {
    CHECK(added.error().code == ErrorCode::kWrongType);
    return Unexpected(added.error());
  }
  CHECK(*added == expected);
  return {};
}

// One random write of any collection type (or DEL, EXPIRE, a string SET) on `ks`: HSET, SADD
// and ZADD through the keyspace's in-place entry points when `direct`, else the mutators.
Result<void> RandomWrite(Keyspace& ks, Rng& rng, const std::string& key, uint64_t what,
                         const std::vector<std::string>& names, int64_t now, bool direct) {
  auto name = [&] { return names[rng.Uniform(names.size())]; };
  auto some = [&] {
    std::vector<std::string> out(1 + rng.Uniform(3));
    for (std::string& n : out) n = name();
    return out;
  };
  using crdt::DotContext;
  using crdt::Key;
  using crdt::Writer;
  switch (what) {
    case 0:
    case 1: {
      std::vector<std::pair<std::string, std::string>> pairs;
      for (const std::string& field : some()) pairs.emplace_back(field, name() + "v");
      if (direct) return ks.HSetMany(0, key, pairs, false, now);
      return Run(ks, key, now, [&](Key& k, const Writer& w, DotContext& c) {
        return k.HSetMany(pairs, false, w, c);
      });
    }
    case 2:
      return Run(ks, key, now,
                 [&](Key& k, const Writer& w, DotContext& c) { return k.HDel(some(), w, c); });
    case 3:
    case 4: {
      const std::vector<std::string> members = some();
      if (direct) return CheckedSAdd(ks, key, members, now);
      return Run(ks, key, now,
                 [&](Key& k, const Writer& w, DotContext& c) { return k.SAdd(members, w, c); });
    }
    case 5:
      return Run(ks, key, now,
                 [&](Key& k, const Writer& w, DotContext& c) { return k.SRem(some(), w, c); });
    case 6:
    case 7: {
      std::vector<std::pair<std::string, double>> pairs;
      for (const std::string& member : some()) {
        pairs.emplace_back(member, static_cast<double>(rng.Uniform(7)) - 2.5);
      }
      if (direct) return ks.ZAddMany(0, key, pairs, now);
      return Run(ks, key, now,
                 [&](Key& k, const Writer& w, DotContext& c) { return k.ZAddMany(pairs, w, c); });
    }
    case 8:
      return Run(ks, key, now,
                 [&](Key& k, const Writer& w, DotContext& c) { return k.ZRem(some(), w, c); });
    case 9:
      return Run(ks, key, now, [&](Key& k, const Writer& w, DotContext& c) {
        return k.ZIncrBy(name(), 1.5, w, c);
      });
    case 10:
      return Run(ks, key, now, [&](Key& k, const Writer& w, DotContext& c) {
        return k.HIncrBy(name(), 2, w, c);
      });
    case 11:
      return Run(ks, key, now, [&](Key& k, const Writer& w, DotContext& c) {
        return k.HExpire(name(), now + 1 + static_cast<int64_t>(rng.Uniform(4)), w, c);
      });
    case 12:
      (void)ks.Delete(0, key, now);
      return {};
    case 13:
      return Run(ks, key, now, [&](Key& k, const Writer& w, DotContext& c) {
        return k.Expire(now + static_cast<int64_t>(rng.Uniform(5)), w, c);
      });
    default:
      ks.SetString(0, key, name(), false, now);
      return {};
  }
}

// The KeyRef reads of `ref` (either form) agree with the full state it stands for.
void CheckReads(const KeyRef& ref, const std::vector<std::string>& names, int64_t now) {
  const crdt::Key whole = ref->ToKey();
  CHECK(ref->TypeAt(now) == whole.TypeAt(now));
  CHECK(ref->ExpiryMs() == whole.ExpiryMs());
  CHECK(ref->GetString(now) == whole.GetString(now));
  CHECK(ReadVisible(ref, now) == ReadVisible(whole, now));
  CHECK(ref->hash() == whole.hash());
  CHECK(ref->set() == whole.set());
  CHECK(ref->zset() == whole.zset());
  size_t alive = 0;
  for (const auto& [field, cell] : whole.hash().fields()) alive += cell.Alive() ? 1 : 0;
  CHECK(ref->HashLen() == alive);
  CHECK(ref->SetSize() == whole.set().Size());
  CHECK(ref->ZSize() == whole.zset().Size());
  for (const std::string& name : names) {
    CHECK(ref->HashGet(name, now) == whole.hash().Get(name, now));
    CHECK(ref->SetContains(name) == whole.set().Contains(name));
    CHECK(ref->ZScore(name) == whole.zset().Score(name));
  }
}

void RunHistory(uint64_t seed, crdt::SetRule rule) {
  INFO("seed " << seed << " set rule " << static_cast<int>(rule));
  Rng rng(seed);
  Keyspace fast(7, 1);
  Keyspace reference(7, 1);
  Keyspace peer(9, 1);
  NeverCompact(reference);
  crdt::Policies policies;
  policies.set = rule;
  policies.zset = rule;
  for (Keyspace* ks : {&fast, &reference, &peer}) ks->set_policies(policies);
  // Small limits, so growing past them and shrinking back happens.
  for (auto type : {crdt::ObjectType::kHash, crdt::ObjectType::kSet, crdt::ObjectType::kZSet}) {
    fast.set_compact_limits(type, CompactLimits{.max_entries = 5, .max_value = 8});
  }
  Collector fast_ops, reference_ops, peer_ops;
  fast.AddObserver(&fast_ops);
  reference.AddObserver(&reference_ops);
  peer.AddObserver(&peer_ops);
  const std::vector<std::string> keys = {"h", "s", "z", "{h}x"};
  const std::vector<std::string> names = {"a", "b", "c", "d", "e", "f", "", "long-name-over-8"};
  int64_t now = kStart;
  size_t delivered_to_peer = 0;
  size_t compact_seen = 0;
  for (int step = 0; step < 300; ++step) {
    now += static_cast<int64_t>(rng.Uniform(3));
    const std::string& key = keys[rng.Uniform(keys.size())];
    // Mostly the key's own type, so collections grow; sometimes anything.
    uint64_t what = rng.Uniform(17);
    if (what < 14 && rng.Uniform(3) != 0) {
      what = key == "s" ? 3 + rng.Uniform(3) : key == "z" ? 6 + rng.Uniform(4) : rng.Uniform(3);
    }
    INFO("step " << step << " op " << what << " key " << key);
    if (what <= 14) {
      const uint64_t fork = rng.Next();  // both keyspaces draw the same names
      Rng a(fork), b(fork);
      const Result<void> x = RandomWrite(fast, a, key, what, names, now, /*direct=*/true);
      const Result<void> y = RandomWrite(reference, b, key, what, names, now, /*direct=*/false);
      REQUIRE(x.ok() == y.ok());
    } else if (what == 15) {
      (void)RandomWrite(peer, rng, key, rng.Uniform(15), names, now, rng.Uniform(2) == 0);
    } else {
      // The peer's ops reach us (both keyspaces alike), and ours reach the peer.
      for (const auto& [db, name, op] : peer_ops.ops) {
        fast.ApplyRemote(db, name, op);
        reference.ApplyRemote(db, name, op);
      }
      peer_ops.ops.clear();
      for (; delivered_to_peer < reference_ops.ops.size(); ++delivered_to_peer) {
        const auto& [db, name, op] = reference_ops.ops[delivered_to_peer];
        peer.ApplyRemote(db, name, op);
      }
    }
    RequireSameKeyspaces(fast, fast_ops, reference, reference_ops);
    for (const std::string& name : keys) {
      const KeyRef a = fast.Find(0, name, now);
      REQUIRE((a == nullptr) == (reference.Find(0, name, now) == nullptr));
      if (a != nullptr) {
        const bool compact = a->full() == nullptr && a->Type() != crdt::ObjectType::kString;
        compact_seen += compact ? 1 : 0;
        CheckReads(a, names, now);
      }
    }
    fast.ReleaseIterations();
    REQUIRE(fast.held_reads() == 0);
  }
  CHECK(compact_seen > 0);
}

TEST_CASE("Compact collections equal the full form on random histories", "[keyspace][compact]") {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    RunHistory(seed, seed % 3 == 0 ? crdt::SetRule::kRemoveWins : crdt::SetRule::kAddWins);
  }
}

TEST_CASE("A small collection is stored compact and converts as writes change it",
          "[keyspace][compact]") {
  Keyspace ks(7, 1);
  auto hset = [&](const std::string& field, const std::string& value) {
    return Run(ks, "h", kStart, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
      return k.HSet(field, value, false, w, c);
    });
  };
  for (int i = 0; i < 10; ++i) REQUIRE(hset("f" + std::to_string(i), "v").ok());
  KeyRef ref = ks.Find(0, "h", kStart);
  REQUIRE(ref != nullptr);
  CHECK(ref->full() == nullptr);
  CHECK(ref->Type() == crdt::ObjectType::kHash);
  CHECK(ref->HashGet("f3", kStart) == "v");
  CHECK(ref->HashLen() == 10);
  // A field TTL needs the full form; so does a value over the limit.
  REQUIRE(Run(ks, "h", kStart, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
            return k.HExpire("f1", kStart + 1000, w, c);
          }).ok());
  CHECK(ks.Find(0, "h", kStart)->full() != nullptr);
  CHECK(ks.FieldTtlKeyCount(0) == 1);
  REQUIRE(hset("f1", "again").ok());  // HSET clears the TTL: compact again
  CHECK(ks.Find(0, "h", kStart)->full() == nullptr);
  CHECK(ks.FieldTtlKeyCount(0) == 0);
  REQUIRE(hset("big", std::string(65, 'x')).ok());
  CHECK(ks.Find(0, "h", kStart)->full() != nullptr);
  // 128 members fit, the 129th does not.
  for (int i = 0; i < 128; ++i) {
    REQUIRE(Run(ks, "s", kStart, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
              return k.SAdd({"m" + std::to_string(i)}, w, c);
            }).ok());
  }
  CHECK(ks.Find(0, "s", kStart)->full() == nullptr);
  CHECK(ks.Find(0, "s", kStart)->SetSize() == 128);
  REQUIRE(Run(ks, "s", kStart, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
            return k.SAdd({"one more"}, w, c);
          }).ok());
  CHECK(ks.Find(0, "s", kStart)->full() != nullptr);
  // DEL of a compact collection removes it.
  CHECK(ks.Delete(0, "s", kStart));
  CHECK(ks.Find(0, "s", kStart) == nullptr);
  // A read that needs the crdt object holds its copy until the end of the turn, writes or not.
  ks.ReleaseIterations();
  REQUIRE(Run(ks, "z", kStart, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
            return k.ZAdd("m", 1.5, w, c);
          }).ok());
  const crdt::SortedSet& zset = ks.Find(0, "z", kStart)->zset();
  CHECK(ks.held_reads() == 1);
  CHECK(ks.Find(0, "z", kStart)->zset().Size() == 1);
  CHECK(ks.held_reads() == 1);  // the same key again: the same copy
  REQUIRE(hset("f2", "w").ok());
  CHECK(zset.Score("m") == 1.5);
  ks.ReleaseIterations();
  CHECK(ks.held_reads() == 0);
}

TEST_CASE("The compact encoding round-trips every element shape", "[keyspace][compact]") {
  ReplicaIndex replicas(7);
  Rng rng(11);
  for (int round = 0; round < 200; ++round) {
    INFO("round " << round);
    const uint64_t hlc = rng.Next() >> 1;
    const crdt::Dot created{rng.Uniform(3) == 0 ? 9u : 7u, 1 + rng.Uniform(1000)};
    const auto type = static_cast<crdt::ObjectType>(2 + rng.Uniform(3));
    crdt::OrHash hash;
    crdt::OrSet set;
    crdt::SortedSet zset;
    const size_t count = 1 + rng.Uniform(12);
    uint64_t seq = created.seq;
    for (size_t i = 0; i < count; ++i) {
      const crdt::Dot dot{rng.Uniform(4) == 0 ? 9u + rng.Uniform(3) : 7u,
                          rng.Uniform(3) == 0 ? rng.Next() & ReplicaIndex::kSeqMask : ++seq};
      const uint64_t at = rng.Uniform(2) == 0 ? hlc : hlc + rng.Next() % 1000 - 500;
      const std::string name(rng.Uniform(10), static_cast<char>('a' + i));
      if (type == crdt::ObjectType::kHash) {
        hash.Put(name, crdt::StringCell::OfEntry({std::string(rng.Uniform(64), 'v'), at, dot}));
      } else if (type == crdt::ObjectType::kSet) {
        set.Put(name, dot);
      } else {
        const double score = rng.Uniform(4) == 0 ? -0.0 : std::ldexp(rng.Next() >> 11, -20);
        zset.Put(name, crdt::ScoreCell::OfEntry({score, at, dot}));
      }
    }
    const crdt::CreationCell cell =
        crdt::CreationCell::OfEntry({static_cast<uint8_t>(type), hlc, created});
    const crdt::Key key = type == crdt::ObjectType::kHash  ? crdt::Key::OfHash(cell, hash)
                          : type == crdt::ObjectType::kSet ? crdt::Key::OfSet(cell, set)
                                                           : crdt::Key::OfZSet(cell, zset);
    const std::optional<CompactCollection> compact = EncodeCompact(key, replicas, {});
    REQUIRE(compact.has_value());
    CHECK(DecodeCompact(compact->blob, compact->hlc, compact->packed_dot, replicas) == key);
  }
}

}  // namespace
}  // namespace lattice::server
