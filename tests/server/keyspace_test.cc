// Keyspace: slot function, SCAN's guarantee under concurrent changes, bounded active expiry,
// FLUSHDB, and the visible-value rebuild used by RENAME/COPY/MOVE (incl. under concurrency).

#include "store/keyspace.h"

#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "lattice/common/rng.h"
#include "server/server_test_util.h"

namespace lattice::server {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;

template <typename Mutate>
void Write(Keyspace& ks, int db, const std::string& key, int64_t now, const Mutate& mutate) {
  crdt::Key& value = ks.Open(db, key, now);
  Result<crdt::KeyOp> op = mutate(value, ks.BeginWrite(now), ks.context());
  REQUIRE(op.ok());
  ks.Commit(db, key, std::move(*op));
}

void PutString(Keyspace& ks, const std::string& key, const std::string& value, int64_t now = kNow,
               std::optional<int64_t> expire_at = std::nullopt) {
  Write(ks, 0, key, now, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.Set(value, false, expire_at, w, c);
  });
}

void AddMember(Keyspace& ks, const std::string& key, const std::string& member,
               int64_t now = kNow) {
  Write(ks, 0, key, now, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.SAdd({member}, w, c);
  });
}

using Sink = server::testing::OpCollector;

TEST_CASE("KeySlot matches Valkey Cluster's check values", "[generic][keyspace]") {
  CHECK(KeySlot("123456789") == (0x31C3 & 16383));
  CHECK(KeySlot("somekey") == 11058);
  CHECK(KeySlot("foo{hash_tag}") == 2515);
  CHECK(KeySlot("bar{hash_tag}") == 2515);
  CHECK(KeySlot("hash_tag") == 2515);
  // An empty tag hashes the whole key; only the first '{' and the first '}' after it count.
  CHECK(KeySlot("foo{}{bar}") != KeySlot("bar"));
  CHECK(KeySlot("foo{{bar}}zap") == KeySlot("{bar"));
  CHECK(KeySlot("foo{bar}{zap}") == KeySlot("bar"));
  CHECK(KeySlot("") == 0);
  CHECK(KeySlot("{") == KeySlot("{"));
}

// Valkey's promise: a key present for the whole iteration is returned at least once, whatever
// is inserted or deleted between the calls.
TEST_CASE("SCAN returns every key present for the whole scan", "[generic][keyspace]") {
  const uint64_t seed = GENERATE(take(20, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  Keyspace ks(1, 1);
  std::set<std::string> stable, churn;
  int next_id = 0;
  auto new_key = [&] {
    // Half the keys share a few hash tags, so slots hold many keys and the in-slot cursor
    // (hash threshold) is exercised as well as the slot part.
    const int id = next_id++;
    return rng.Uniform(2) == 0 ? "{t" + std::to_string(rng.Uniform(4)) + "}" + std::to_string(id)
                               : "k" + std::to_string(id);
  };
  for (int i = 0; i < 300; ++i) {
    const std::string key = new_key();
    PutString(ks, key, "v");
    (rng.Uniform(3) == 0 ? churn : stable).insert(key);
  }
  std::set<std::string> seen;
  uint64_t cursor = 0;
  int calls = 0;
  do {
    const size_t count = 1 + rng.Uniform(20);
    cursor = ks.Scan(0, cursor, count,
                     [&](const std::string& key, const crdt::Key&) { seen.insert(key); });
    ++calls;
    // Between calls: inserts (which may grow and rehash tables) and deletes of churn keys.
    for (uint64_t n = rng.Uniform(30); n > 0; --n) {
      const std::string key = new_key();
      PutString(ks, key, "v");
      churn.insert(key);
    }
    for (uint64_t n = rng.Uniform(10); n > 0 && !churn.empty(); --n) {
      auto it = churn.begin();
      std::advance(it, static_cast<long>(rng.Uniform(churn.size())));
      CHECK(ks.Delete(0, *it, kNow));
      churn.erase(it);
    }
  } while (cursor != 0 && calls < 100'000);
  CHECK(cursor == 0);
  for (const std::string& key : stable) {
    CHECK(seen.count(key) == 1);
  }
}

TEST_CASE("active expiry does bounded work per call and reclaims everything eventually",
          "[generic][keyspace]") {
  Keyspace ks(1, 2);
  Sink sink;
  ks.AddObserver(&sink);
  for (int i = 0; i < 500; ++i) {
    PutString(ks, "e" + std::to_string(i), "v", kNow, kNow + 10 + i % 7);
  }
  for (int i = 0; i < 50; ++i) {
    PutString(ks, "p" + std::to_string(i), "v");
  }
  PutString(ks, "late", "v", kNow, kNow + 1'000'000);
  CHECK(ks.Size(0) == 551);
  CHECK(ks.VolatileCount(0) == 501);
  CHECK(ks.ActiveExpireCycle(kNow, 100) == 0);  // nothing due yet
  sink.ops.clear();
  const int64_t later = kNow + 100;
  size_t rounds = 0;
  uint64_t expired_before = ks.stats().expired_keys;
  while (ks.stats().expired_keys < 500 && rounds < 100) {
    const size_t visited = ks.ActiveExpireCycle(later, 64);
    CHECK(visited <= 64);
    CHECK(ks.stats().expired_keys - expired_before <= 64);
    expired_before = ks.stats().expired_keys;
    ++rounds;
  }
  CHECK(rounds == 8);  // ceil(500 / 64)
  CHECK(ks.stats().expired_keys == 500);
  CHECK(ks.Size(0) == 51);
  CHECK(ks.VolatileCount(0) == 1);
  CHECK(sink.ops.size() == 500);  // each reclaim ships an observed-remove DEL
  CHECK(ks.ActiveExpireCycle(later, 64) == 0);
  CHECK(ks.NextExpiryMs() == kNow + 1'000'000);
}

TEST_CASE("FlushDb removes one database and replicates as observed-removes",
          "[generic][keyspace]") {
  Keyspace a(1, 3), b(2, 3);
  Sink sink;
  a.AddObserver(&sink);
  for (int i = 0; i < 100; ++i) {
    PutString(a, "k" + std::to_string(i), "v");
  }
  Write(a, 1, "other", kNow, [](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.Set("x", false, std::nullopt, w, c);
  });
  sink.DeliverTo(b);
  CHECK(b.Size(0) == 100);
  a.FlushDb(0, kNow);
  CHECK(a.Size(0) == 0);
  CHECK(a.Size(1) == 1);
  CHECK(sink.ops.size() == 100);
  sink.DeliverTo(b);
  CHECK(b.Size(0) == 0);
  CHECK(b.Size(1) == 1);
  a.FlushAll(kNow);
  CHECK(a.Size(1) == 0);
}

TEST_CASE("ReadVisible and WriteVisible rebuild every type", "[generic][keyspace]") {
  Keyspace ks(1, 2);
  PutString(ks, "s", "text", kNow, kNow + 5000);
  Write(ks, 0, "h", kNow, [](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.HSet("f", "1", false, w, c);
  });
  Write(ks, 0, "h", kNow, [](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.HSet("g", "2", false, w, c);
  });
  Write(ks, 0, "h", kNow, [](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.HExpire("g", kNow + 9000, w, c);
  });
  AddMember(ks, "set", "a");
  AddMember(ks, "set", "b");
  Write(ks, 0, "z", kNow, [](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& c) {
    return k.ZAdd("m", 2.5, w, c);
  });
  for (const char* key : {"s", "h", "set", "z"}) {
    const VisibleValue value = ReadVisible(*ks.Find(0, key, kNow), kNow);
    ks.WriteVisible(1, std::string(key) + "-copy", value, kNow);
    CHECK(ReadVisible(*ks.Find(1, std::string(key) + "-copy", kNow), kNow) == value);
  }
  const VisibleValue h = ReadVisible(*ks.Find(0, "h", kNow), kNow);
  REQUIRE(h.hash.size() == 2);
  CHECK(h.hash[1].ttl_at_ms == kNow + 9000);
  CHECK(ReadVisible(*ks.Find(0, "s", kNow), kNow).expiry_ms == kNow + 5000);
  // Writing a value over an existing key replaces it entirely (type included).
  ks.WriteVisible(0, "set", ReadVisible(*ks.Find(0, "z", kNow), kNow), kNow);
  CHECK(ks.TypeOf(0, "set", kNow) == crdt::ObjectType::kZSet);
  CHECK(ks.Find(0, "set", kNow)->set().Size() == 0);
  // A kNone value only deletes.
  ks.WriteVisible(0, "s", VisibleValue{}, kNow);
  CHECK(ks.Find(0, "s", kNow) == nullptr);
}

// RENAME as Lattice runs it: snapshot the source, rebuild the destination, observed-remove the
// source. Region B adds to the source concurrently: its add survives in the source everywhere
// (add wins over the rename's DEL), and the destination holds what A saw.
TEST_CASE("RENAME concurrent with a remote write to the source converges", "[generic][keyspace]") {
  Keyspace a(1, 1), b(2, 1);
  Sink sink_a, sink_b;
  a.AddObserver(&sink_a);
  b.AddObserver(&sink_b);
  AddMember(a, "k", "x");
  sink_a.DeliverTo(b);
  AddMember(b, "k", "y");  // concurrent with the rename below
  const VisibleValue snapshot = ReadVisible(*a.Find(0, "k", kNow), kNow);
  a.WriteVisible(0, "k2", snapshot, kNow);
  CHECK(a.Delete(0, "k", kNow));
  sink_a.DeliverTo(b);
  sink_b.DeliverTo(a);
  for (Keyspace* ks : {&a, &b}) {
    REQUIRE(ks->Find(0, "k", kNow) != nullptr);
    CHECK(ks->Find(0, "k", kNow)->set().Members() == std::vector<std::string>{"y"});
    CHECK(ks->Find(0, "k2", kNow)->set().Members() == std::vector<std::string>{"x"});
  }
}

// COPY ... REPLACE concurrent with a remote write to the destination: the replace DEL removes
// only what it observed, so the remote member survives next to the copied ones.
TEST_CASE("COPY REPLACE concurrent with a remote write to the destination converges",
          "[generic][keyspace]") {
  Keyspace a(1, 1), b(2, 1);
  Sink sink_a, sink_b;
  a.AddObserver(&sink_a);
  b.AddObserver(&sink_b);
  AddMember(a, "src", "s");
  AddMember(a, "dst", "old");
  sink_a.DeliverTo(b);
  AddMember(b, "dst", "remote");
  a.WriteVisible(0, "dst", ReadVisible(*a.Find(0, "src", kNow), kNow), kNow);
  sink_a.DeliverTo(b);
  sink_b.DeliverTo(a);
  for (Keyspace* ks : {&a, &b}) {
    CHECK(ks->Find(0, "dst", kNow)->set().Members() == std::vector<std::string>{"remote", "s"});
  }
}

}  // namespace
}  // namespace lattice::server

namespace lattice::server {
namespace {

TEST_CASE("DBSIZE does not count entries that hold only CRDT metadata", "[generic]") {
  testing::TestServer t;
  CHECK(t.Run({"incr", "counter"}) == "1");
  CHECK(t.Run({"set", "plain", "v"}) == "OK");
  CHECK(t.Run({"dbsize"}) == "2");
  CHECK(t.Run({"del", "counter"}) == "1");  // leaves the increments it observed, hidden
  CHECK(t.Run({"dbsize"}) == "1");
  CHECK(t.Run({"exists", "counter"}) == "0");
  CHECK(t.Run({"incr", "counter"}) == "1");  // visible again: counted again
  CHECK(t.Run({"dbsize"}) == "2");
}

TEST_CASE("CompactSome purges deleted counters once stable, round-robin and bounded",
          "[generic][keyspace]") {
  testing::TestServer t;
  for (int i = 0; i < 50; ++i) {
    const std::string key = "counter" + std::to_string(i);
    CHECK(t.Run({"incr", key}) == "1");
    CHECK(t.Run({"del", key}) == "1");  // leaves the increments it observed, hidden
  }
  CHECK(t.Run({"set", "plain", "v"}) == "OK");
  Keyspace& ks = t.server().keyspace();
  auto entries = [&] {
    size_t count = 0;
    ks.ForEach(0, [&](const std::string&, const crdt::Key&) { ++count; });
    return count;
  };
  REQUIRE(entries() == 51);
  // Not stable for a peer that has seen nothing: the metadata must stay.
  crdt::VersionVector nothing;
  size_t visited = 0;
  for (int call = 0; call < 100 && visited < 51; ++call) visited += ks.CompactSome(nothing, 10);
  CHECK(entries() == 51);
  // Stable everywhere: every hidden entry goes, the visible key stays; each call is bounded.
  const crdt::VersionVector stable = ks.context().vector();
  for (int call = 0; call < 2 * static_cast<int>(kSlotCount) && entries() > 1; ++call) {
    CHECK(ks.CompactSome(stable, 5) <= 5 + 50);  // stops after the slot that passed the bound
  }
  CHECK(entries() == 1);
  CHECK(ks.stats().purged_keys == 50);  // each freed by a DEL op of its own (no event)
  CHECK(t.Run({"get", "plain"}) == "\"v\"");
  CHECK(t.Run({"dbsize"}) == "1");
}

}  // namespace
}  // namespace lattice::server

namespace lattice::server {
namespace {

// Found by the simulator (seed 36): when a hash's last field expired, the active cycle erased
// the key (unindexing it) and then erased field_ttl_keys.find(key) == end(): a double free.
TEST_CASE("active expiry of a hash's last field TTLs leaves the index intact", "[keyspace]") {
  testing::TestServer t;
  for (int i = 0; i < 20; ++i) {
    const std::string key = "h" + std::to_string(i);
    CHECK(t.Run({"hset", key, "f", "v"}) == "1");
    CHECK(t.Run({"hpexpire", key, "10", "fields", "1", "f"}) == "[1]");
  }
  CHECK(t.Run({"hset", "keep", "f", "v", "g", "w"}) == "2");
  CHECK(t.Run({"hpexpire", "keep", "10", "fields", "1", "f"}) == "[1]");
  t.clock().now_us += 1'000'000;
  for (int i = 0; i < 10; ++i) t.server().Cron();
  CHECK(t.Run({"dbsize"}) == "1");
  CHECK(t.Run({"hgetall", "keep"}) == "[\"g\", \"w\"]");
  CHECK(t.server().keyspace().FieldTtlKeyCount(0) == 0);
}

// Found by the simulator (seed 88): an INCR that brought a counter to 0 was written as SET "0",
// so two regions doing it concurrently kept one SET and lost the other's increment.
TEST_CASE("concurrent increments that each reach 0 are both kept", "[keyspace]") {
  testing::Region a(1), b(2);
  CHECK(a.Run({"decrby", "c", "1"}) == "-1");
  a.sink.DeliverTo(b.keyspace());
  CHECK(a.Run({"incr", "c"}) == "0");
  CHECK(b.Run({"incr", "c"}) == "0");
  a.sink.DeliverTo(b.keyspace());
  b.sink.DeliverTo(a.keyspace());
  CHECK(a.Run({"get", "c"}) == "\"1\"");
  CHECK(b.Run({"get", "c"}) == "\"1\"");
  CHECK(a.Run({"incr", "z"}) == "1");
  CHECK(a.Run({"decr", "z"}) == "0");
  CHECK(a.Run({"exists", "z"}) == "1");  // a counter at 0 still exists, as in Valkey
}

}  // namespace
}  // namespace lattice::server

namespace lattice::server {
namespace {

TEST_CASE("Keyspace: hidden slots are not counted or listed; dropped slots freed lazily",
          "[keyspace][cluster]") {
  testing::TestServer t;
  Keyspace& ks = t.server().keyspace();
  const int64_t now = t.clock().NowMs();
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < 20; ++i) {
    // The first five share one slot ({t}).
    const std::string key = (i < 5 ? "{t}" : "k") + std::to_string(i);
    REQUIRE(t.Run({"set", key, "v"}) == "OK");
    keys.push_back(key);
  }
  const uint16_t slot = KeySlot(keys[0]);
  const uint64_t in_slot = ks.CountKeysInSlot(0, slot);
  REQUIRE(in_slot >= 5);
  REQUIRE(ks.Size(0) == 20);
  ks.SetSlotHidden(slot, true);
  CHECK(ks.slot_hidden(slot));
  CHECK(ks.Size(0) == 20 - in_slot);
  CHECK(ks.CountKeysInSlot(0, slot) == in_slot);  // COUNTKEYSINSLOT still counts them
  size_t listed = 0;
  ks.ForEachListed(0, [&](const std::string& key, const crdt::Key&) {
    CHECK(KeySlot(key) != slot);
    ++listed;
  });
  CHECK(listed == 20 - in_slot);
  size_t scanned = 0;
  uint64_t cursor = 0;
  for (int round = 0; round < 100; ++round) {
    cursor = ks.Scan(0, cursor, 3, [&](const std::string& key, const crdt::Key&) {
      CHECK(KeySlot(key) != slot);
      ++scanned;
    });
    if (cursor == 0) break;
  }
  CHECK(cursor == 0);
  CHECK(scanned == 20 - in_slot);
  ks.SetSlotHidden(slot, false);
  CHECK(ks.Size(0) == 20);

  CHECK(ks.DropSlot(0, slot) == in_slot);
  CHECK(ks.Size(0) == 20 - in_slot);
  CHECK(ks.Find(0, keys[0], now) == nullptr);
  CHECK(ks.dropped_pending() == in_slot);
  CHECK(ks.FreeDropped(1) == 1);
  CHECK(ks.dropped_pending() == in_slot - 1);
  CHECK(ks.FreeDropped(1000) == in_slot - 1);
  CHECK(ks.dropped_pending() == 0);
  CHECK(ks.FreeDropped(1000) == 0);
}

}  // namespace
}  // namespace lattice::server
