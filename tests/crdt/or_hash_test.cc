// Hashes: HSET vs HDEL, field counters, field TTL vs HSET.
#include <algorithm>
#include <catch2/catch.hpp>

#include "crdt/crdt_test_util.h"

namespace lattice::crdt::testing {
namespace {

TEST_CASE("HSET concurrent with HDEL of the field: add wins", "[crdt][hash]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.HSet("f", "1", false, a.W(1), a.context)));
  auto del = Ok(a.key.HDel({"f"}, a.W(5), a.context));
  auto set = Ok(b.key.HSet("f", "2", false, b.W(4), b.context));
  a.Apply(set);
  b.Apply(del);
  CHECK(a.key.hash().Get("f", 1000) == "2");
  CHECK(a.key == b.key);
}

TEST_CASE("HINCRBY from two regions adds up; HINCRBYFLOAT formats as Valkey", "[crdt][hash]") {
  Node a(1), b(2);
  auto x = Ok(a.key.HIncrBy("n", 5, a.W(1), a.context));
  auto y = Ok(b.key.HIncrBy("n", 6, b.W(1), b.context));
  a.Apply(y);
  b.Apply(x);
  CHECK(a.key.hash().Get("n", 1000) == "11");
  b.Apply(Ok(a.key.HIncrByFloat("n", 0.5L, a.W(2), a.context)));
  CHECK(b.key.hash().Get("n", 1000) == "11.5");
  auto bad = a.key.HIncrBy("n", 1, a.W(3), a.context);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == ErrorCode::kNotInteger);
}

TEST_CASE("field TTL: hidden at now_ms; HSET clears the TTL it saw, KEEPTTL and HINCRBY keep it",
          "[crdt][hash][expiry]") {
  Node a(1);
  Ok(a.key.HSet("f", "v", false, a.W(1), a.context));
  Ok(a.key.HSet("g", "v", false, a.W(1), a.context));
  Ok(a.key.HExpire("f", 2000, a.W(2), a.context));
  Ok(a.key.HExpire("g", 2000, a.W(2), a.context));
  CHECK(a.key.hash().Get("f", 1999) == "v");
  CHECK(a.key.hash().Get("f", 2000) == std::nullopt);
  Ok(a.key.HSet("f", "w", /*keep_ttl=*/true, a.W(3), a.context));
  CHECK(a.key.hash().FieldExpiry("f") == 2000);
  Ok(a.key.HSet("f", "w", /*keep_ttl=*/false, a.W(4), a.context));
  CHECK(a.key.hash().FieldExpiry("f") == std::nullopt);
  Ok(a.key.HIncrBy("n", 1, a.W(5), a.context));
  Ok(a.key.HExpire("n", 3000, a.W(6), a.context));
  Ok(a.key.HIncrBy("n", 1, a.W(7), a.context));
  CHECK(a.key.hash().FieldExpiry("n") == 3000);
}

TEST_CASE("field TTL concurrent with HSET: the write the reclaim did not see survives",
          "[crdt][hash][expiry]") {
  Node a(1), b(2);
  b.Apply(Ok(a.key.HSet("f", "old", false, a.W(1), a.context)));
  b.Apply(Ok(a.key.HSet("other", "x", false, a.W(1), a.context)));
  b.Apply(Ok(a.key.HExpire("f", 2000, a.W(2), a.context)));
  auto set = Ok(b.key.HSet("f", "new", false, b.W(3, {}, 1500), b.context));  // clears TTL
  auto reclaim = a.key.Reclaim(a.W(4, {}, 2000), a.context);
  REQUIRE(reclaim);
  a.Apply(set);
  b.Apply(*reclaim);
  CHECK(a.key == b.key);
  CHECK(a.key.hash().Get("f", 5000) == "new");
  CHECK(a.key.hash().FieldExpiry("f") == std::nullopt);
}

}  // namespace

// The fields live in a hash table of one-allocation nodes: equality, copies and every ordered
// view must not depend on the table's layout (insertion order, growth, erasures).
TEST_CASE("hash table layout: equality, copies and sorted views ignore insertion order",
          "[crdt][hash]") {
  const uint64_t seed = GENERATE(take(5, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  std::vector<std::string> names;
  for (int i = 0; i < 300; ++i) names.push_back("field:" + std::to_string(i));
  names.push_back("");                         // an empty name
  names.push_back(std::string("nul\0in", 6));  // a NUL inside
  names.push_back(std::string(300, 'x'));      // a long name
  std::vector<std::string> shuffled = names;
  for (size_t i = shuffled.size(); i > 1; --i) std::swap(shuffled[i - 1], shuffled[rng.Uniform(i)]);
  // Two replicas write the same fields in different orders, then exchange states.
  Node a(1), b(2);
  for (const std::string& name : names) Ok(a.key.HSet(name, "a" + name, false, a.W(1), a.context));
  for (const std::string& name : shuffled)
    Ok(b.key.HSet(name, "b" + name, false, b.W(2), b.context));
  const Key a_key = a.key;  // copies own their nodes
  const DotContext a_context = a.context;
  a.key.Join(b.key, a.context, b.context);
  a.context.Join(b.context);
  b.key.Join(a_key, b.context, a_context);
  b.context.Join(a_context);
  CHECK(a.key == b.key);  // set equality over differently grown tables
  CHECK(a.key.hash().size() == names.size());
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());
  const auto all = a.key.hash().GetAll(1000);
  REQUIRE(all.size() == sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) {
    CHECK(all[i].first == sorted[i]);
    CHECK(all[i].second == "b" + sorted[i]);  // the later stamp wins
  }
  const auto nodes = a.key.hash().SortedFields();
  REQUIRE(nodes.size() == sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) CHECK(nodes[i]->name() == sorted[i]);
  // The same fields built in another order compare equal; one differing cell does not.
  Node c(1), d(1);
  for (const std::string& name : names) Ok(c.key.HSet(name, "v", false, c.W(1), c.context));
  for (const std::string& name : names) Ok(d.key.HSet(name, "v", false, d.W(1), d.context));
  CHECK(c.key == d.key);
  Key moved = std::move(d.key);
  CHECK(d.key.hash().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  CHECK(moved == c.key);
  Ok(c.key.HDel({names[7]}, c.W(2), c.context));
  CHECK_FALSE(c.key == moved);
  CHECK(c.key.hash().size() == names.size() - 1);
  CHECK_FALSE(c.key.hash().Visible(names[7], 1000));
  CHECK(c.key.hash().Visible(names[8], 1000));
}
}  // namespace lattice::crdt::testing

namespace lattice::crdt::testing {
namespace {

// Whether `field` of `node`'s hash is stored packed (one allocation: header, name, value).
bool Packed(const Node& node, const std::string& field) {
  const FieldNode* found = node.key.hash().Find(field);
  REQUIRE(found != nullptr);
  return found->packed();
}

}  // namespace

TEST_CASE("packed fields: a plain field is one 32-byte header plus its bytes", "[crdt][hash]") {
  Node a(1);
  const std::string name = "field:00000042";  // the memory benchmark's shape: 14 + 16 bytes
  const std::string value(16, 'v');
  Ok(a.key.HSet(name, value, false, a.W(1), a.context));
  const FieldNode* node = a.key.hash().Find(name);
  REQUIRE(node != nullptr);
  CHECK(node->packed());
  CHECK(node->full() == nullptr);
  CHECK(node->AllocatedBytes() == 32 + name.size() + value.size());  // 62: jemalloc's 64 class
  CHECK(node->AllocatedBytes() <= 64);
  CHECK(node->ttl() == nullptr);
  CHECK(node->Alive());
  REQUIRE(node->Winner().has_value());
  CHECK(node->Winner()->value == value);
  CHECK(node->Plain()->dot == node->Winner()->dot);
  CHECK(node->MetadataItems() == 1);
  // The rebuilt cells are the register a full field would hold.
  const HashField cells = node->cells();
  REQUIRE(cells.value.Winner() != nullptr);
  CHECK(cells.value.Winner()->value == value);
  CHECK(cells.value.rest() == nullptr);
  CHECK(a.key.hash().Get(name, 1000) == value);
  CHECK(a.key.hash().GetAll(1000) ==
        std::vector<std::pair<std::string, std::string>>{{name, value}});
  // An overwrite of the same length stays in the node; a longer one moves it.
  Ok(a.key.HSet(name, std::string(16, 'w'), false, a.W(2), a.context));
  CHECK(a.key.hash().Get(name, 1000) == std::string(16, 'w'));
  Ok(a.key.HSet(name, std::string(100, 'x'), false, a.W(3), a.context));
  CHECK(a.key.hash().Get(name, 1000) == std::string(100, 'x'));
  CHECK(Packed(a, name));
  Ok(a.key.HSet(name, "", false, a.W(4), a.context));
  CHECK(a.key.hash().Get(name, 1000) == "");
  CHECK(Packed(a, name));
}

TEST_CASE("packed fields: TTLs, counters and concurrent writes unpack; plain writes repack",
          "[crdt][hash][expiry]") {
  Node a(1), b(2);
  const auto set = Ok(a.key.HSet("f", "v", false, a.W(1), a.context));
  b.Apply(set);
  CHECK(Packed(a, "f"));
  CHECK(Packed(b, "f"));  // joined from a peer's op
  // A TTL unpacks it; an HSET that clears the TTL packs it again.
  Ok(a.key.HExpire("f", 5000, a.W(2), a.context));
  CHECK_FALSE(Packed(a, "f"));
  CHECK(a.key.hash().FieldExpiry("f") == 5000);
  Ok(a.key.HSet("f", "w", /*keep_ttl=*/false, a.W(3), a.context));
  CHECK(Packed(a, "f"));
  CHECK(a.key.hash().FieldExpiry("f") == std::nullopt);
  // Concurrent HSETs keep both entries (full) until a later write observes them (compaction
  // drops no entry: docs/crdt.md, "Compaction").
  Node c(1), d(2);
  const auto x = Ok(c.key.HSet("g", "x", false, c.W(5), c.context));
  const auto y = Ok(d.key.HSet("g", "y", false, d.W(6), d.context));
  c.Apply(y);
  d.Apply(x);
  CHECK_FALSE(Packed(c, "g"));
  CHECK(c.key == d.key);
  CHECK(c.key.hash().Get("g", 1000) == "y");
  VersionVector stable;
  stable.Set(1, 100);
  stable.Set(2, 100);
  c.key.Compact(stable);
  CHECK_FALSE(Packed(c, "g"));
  Ok(c.key.HSet("g", "y", false, c.W(6), c.context));
  CHECK(Packed(c, "g"));
  CHECK(c.key.hash().Get("g", 1000) == "y");
  // A counter is full; an HSET over it is plain once its offsets are compacted away.
  Ok(c.key.HIncrBy("n", 5, c.W(7), c.context));
  CHECK_FALSE(Packed(c, "n"));
  CHECK(c.key.hash().Get("n", 1000) == "5");
}

TEST_CASE("packed fields: FindMutable unpacks, equality and copies ignore the form",
          "[crdt][hash]") {
  Node a(1);
  for (int i = 0; i < 20; ++i) {
    Ok(a.key.HSet("f" + std::to_string(i), "value" + std::to_string(i), false, a.W(1), a.context));
  }
  const OrHash before = a.key.hash();
  OrHash unpacked = before;
  HashField* cells = unpacked.FindMutable("f3");
  REQUIRE(cells != nullptr);
  CHECK_FALSE(unpacked.Find("f3")->packed());
  CHECK(unpacked == before);  // one full node, one packed: the same cells
  CHECK(before == unpacked);
  const OrHash copy = unpacked;  // copies pack what is plain
  CHECK(copy.Find("f3")->packed());
  CHECK(copy == before);
  cells->value = StringCell::OfEntry({"other", 5, Dot{1, 99}});
  CHECK_FALSE(unpacked == before);
  unpacked.Put("f3", before.Find("f3")->cells().value);  // Put packs a plain cell again
  CHECK(unpacked.Find("f3")->packed());
  CHECK(unpacked == before);
  DotContext dots;
  before.CollectDots(dots);
  CHECK(before.MetadataItems() == 20);
}

}  // namespace lattice::crdt::testing
