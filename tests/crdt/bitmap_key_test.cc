// Bitmap chunks beside a string's base (crdt/bit_chunks.h): one test per rule of the Bitmaps
// table in docs/semantics.md, plus the law test over random SETBIT/SETRANGE/SET/APPEND/DEL
// histories that also checks every region reads the same bytes.
#include <catch2/catch.hpp>

#include "crdt/crdt_test_util.h"
#include "lattice/crdt/hll.h"
#include "lattice/crdt/hll_key.h"

namespace lattice::crdt::testing {
namespace {

// SETBIT as the bitmap family does it: the value grown to hold the bit, the bit set, and the op
// of that byte's chunk.
KeyOp SetBit(Node& node, uint64_t bit, bool on, uint64_t hlc_ms, int64_t now_ms = 1000) {
  std::string value = node.key.GetString(now_ms).value_or("");
  const size_t byte = static_cast<size_t>(bit >> 3);
  if (value.size() <= byte) value.resize(byte + 1, '\0');
  const auto mask = static_cast<char>(1 << (7 - (bit & 7)));
  value[byte] = static_cast<char>(on ? (value[byte] | mask) : (value[byte] & ~mask));
  return Ok(node.key.WriteBitmap(std::move(value), byte, byte + 1, node.W(hlc_ms, {}, now_ms),
                                 node.context));
}

bool BitOf(const std::string& value, uint64_t bit) {
  const size_t byte = static_cast<size_t>(bit >> 3);
  return byte < value.size() && ((static_cast<uint8_t>(value[byte]) >> (7 - (bit & 7))) & 1) != 0;
}

// Two regions that share `value` (written at HLC 10 by region 1) and then write concurrently.
void Share(Node& n1, Node& n2, const std::string& value) {
  n2.Apply(Ok(n1.key.Set(value, false, std::nullopt, n1.W(10), n1.context)));
}

void Exchange(Node& n1, const KeyOp& from1, Node& n2, const KeyOp& from2) {
  n1.Apply(from2);
  n2.Apply(from1);
  REQUIRE(n1.Get() == n2.Get());
  REQUIRE(n1.key == n2.key);
}

TEST_CASE("bitmap: concurrent SETBITs in different chunks both survive", "[crdt][bitmap]") {
  Node n1(1), n2(2);
  Share(n1, n2, std::string(1024, '\0'));
  const KeyOp a = SetBit(n1, 3, true, 20);
  const KeyOp b = SetBit(n2, 8 * 600 + 1, true, 21);
  // Each op carries its one chunk, not the 1024-byte value.
  REQUIRE(a.delta.rest()->chunks().size() == 1);
  REQUIRE(a.delta.string().empty());
  REQUIRE(a.delta.rest()->chunks().items()[0].second.Winner()->value.size() == kChunkBytes);
  Exchange(n1, a, n2, b);
  const std::string v = n1.Get();
  REQUIRE(v.size() == 1024);
  REQUIRE(BitOf(v, 3));
  REQUIRE(BitOf(v, 8 * 600 + 1));
}

TEST_CASE("bitmap: concurrent SETBITs in one chunk are LWW per chunk", "[crdt][bitmap]") {
  Node n1(1), n2(2);
  Share(n1, n2, std::string(16, '\0'));
  const KeyOp a = SetBit(n1, 1, true, 20);
  const KeyOp b = SetBit(n2, 7, true, 21);  // later: its chunk wins
  Exchange(n1, a, n2, b);
  REQUIRE(n1.Get() == std::string("\x01", 1) + std::string(15, '\0'));
}

TEST_CASE("bitmap: writes past the end grow the string to the longest", "[crdt][bitmap]") {
  Node n1(1), n2(2);
  Share(n1, n2, "ab");
  const KeyOp a = SetBit(n1, 8 * 300, true, 20);   // chunk 1, length 301
  const KeyOp b = SetBit(n2, 8 * 1000, true, 21);  // chunk 3, length 1001
  Exchange(n1, a, n2, b);
  const std::string v = n1.Get();
  REQUIRE(v.size() == 1001);
  REQUIRE(v.substr(0, 2) == "ab");
  REQUIRE(BitOf(v, 8 * 300));
  REQUIRE(BitOf(v, 8 * 1000));
}

TEST_CASE("bitmap: SET || SETBIT: the later write wins per chunk", "[crdt][bitmap]") {
  SECTION("SETBIT later: its chunk shows over the SET's value") {
    Node n1(1), n2(2);
    Share(n1, n2, std::string(600, 'x'));
    const KeyOp set = Ok(n1.key.Set("hello", false, std::nullopt, n1.W(20), n1.context));
    const KeyOp bit = SetBit(n2, 8 * 512, true, 21);  // chunk 2: bytes 512..599 of 'x' and 0x80
    Exchange(n1, set, n2, bit);
    const std::string v = n1.Get();
    REQUIRE(v.size() == 600);
    REQUIRE(v.substr(0, 5) == "hello");
    REQUIRE(v.substr(5, 507) == std::string(507, '\0'));
    REQUIRE(static_cast<uint8_t>(v[512]) == static_cast<uint8_t>('x' | 0x80));
  }
  SECTION("SET later: the SET's value alone") {
    Node n1(1), n2(2);
    Share(n1, n2, std::string(600, 'x'));
    const KeyOp bit = SetBit(n2, 8 * 512, true, 20);
    const KeyOp set = Ok(n1.key.Set("hello", false, std::nullopt, n1.W(21), n1.context));
    Exchange(n1, set, n2, bit);
    REQUIRE(n1.Get() == "hello");
  }
  SECTION("a SET after a SETBIT it saw observes the chunk: a plain string again") {
    Node n1(1);
    SetBit(n1, 8 * 300, true, 20);
    REQUIRE(n1.key.HasChunks());
    Ok(n1.key.Set("v", false, std::nullopt, n1.W(21), n1.context));
    REQUIRE_FALSE(n1.key.HasChunks());
    REQUIRE(n1.key.PlainString());
  }
}

TEST_CASE("bitmap: DEL || SETBIT: the SETBIT's chunk survives over zero bytes", "[crdt][bitmap]") {
  Node n1(1), n2(2);
  Share(n1, n2, std::string(700, 'x'));
  const KeyOp del = *n1.key.Del(n1.W(30), n1.context);
  const KeyOp bit = SetBit(n2, 8 * 520, true, 20);  // older HLC: observed remove, not LWW
  Exchange(n1, del, n2, bit);
  const std::string v = n1.Get();
  REQUIRE(v.size() == 700);
  REQUIRE(v.substr(0, 512) == std::string(512, '\0'));
  REQUIRE(static_cast<uint8_t>(v[520]) == static_cast<uint8_t>('x' | 0x80));
  REQUIRE(v[519] == 'x');  // the chunk as the writer saw it
}

TEST_CASE("bitmap: APPEND and BITOP's destination are whole-value writes", "[crdt][bitmap]") {
  Node n1(1), n2(2);
  Share(n1, n2, std::string(300, '\0'));
  const KeyOp bit = SetBit(n1, 8 * 260, true, 20);
  n1.Apply(Ok(n2.key.Expire(5000, n2.W(19), n2.context)));
  n2.Apply(bit);
  // APPEND: the whole new value, observing the chunk; the TTL stays.
  const std::string appended = n1.Get() + "tail";
  const KeyOp append = Ok(n1.key.Set(appended, true, std::nullopt, n1.W(30), n1.context));
  REQUIRE_FALSE(n1.key.HasChunks());
  n2.Apply(append);
  REQUIRE(n2.Get() == appended);
  REQUIRE(n2.key.ExpiryMs() == 5000);
  // BITOP's destination: a SET without KEEPTTL.
  n2.Apply(SetBit(n1, 8 * 270, true, 31));
  n2.Apply(Ok(n1.key.Set("dst", false, std::nullopt, n1.W(32), n1.context)));
  REQUIRE(n2.Get() == "dst");
  REQUIRE_FALSE(n2.key.ExpiryMs().has_value());
  REQUIRE(n2.key == n1.key);
}

TEST_CASE("bitmap: SETBIT keeps the TTL; a SETBIT on a missing key makes chunks only",
          "[crdt][bitmap]") {
  Node n1(1);
  SetBit(n1, 8 * 5000, true, 20);
  REQUIRE(n1.key.string().empty());
  REQUIRE(n1.key.TypeAt(1000) == ObjectType::kString);
  REQUIRE(n1.Get().size() == 5001);
  Ok(n1.key.Expire(9000, n1.W(21), n1.context));
  SetBit(n1, 3, true, 22);
  REQUIRE(n1.key.ExpiryMs() == 9000);
  REQUIRE(n1.key.TypeAt(9000) == ObjectType::kNone);  // expired
}

TEST_CASE("bitmap: past kChunksMax chunks a bitmap write is a whole-value write",
          "[crdt][bitmap]") {
  Node n1(1), n2(2);
  for (uint64_t i = 0; i < kChunksMax; ++i) {
    n2.Apply(SetBit(n1, 8 * kChunkBytes * i, true, 20 + i));
  }
  REQUIRE(n1.key.rest()->chunks().size() == kChunksMax);
  REQUIRE(n1.key.string().empty());
  const std::string before = n1.Get();
  const KeyOp whole = SetBit(n1, 8 * kChunkBytes * kChunksMax, true, 100);
  REQUIRE_FALSE(n1.key.HasChunks());
  REQUIRE(whole.delta.string().Winner()->value.size() == kChunkBytes * kChunksMax + 1);
  n2.Apply(whole);
  REQUIRE(n2.key == n1.key);
  REQUIRE(n2.Get().substr(0, before.size()) == before);
  // A write to a chunk already present does not count: chunks again from here.
  SetBit(n1, 1, true, 101);
  REQUIRE(n1.key.rest()->chunks().size() == 1);
}

TEST_CASE("bitmap: other writes on a chunked string", "[crdt][bitmap]") {
  Node n1(1);
  Ok(n1.key.WriteBitmap(std::string(300, '\0').replace(280, 2, "12"), 280, 282, n1.W(10),
                        n1.context));
  SECTION("INCR reads the composed value and writes it whole") {
    REQUIRE_FALSE(n1.key.IncrBy(1, n1.W(11), n1.context).ok());  // not an integer
    Node n2(2);
    Ok(n2.key.WriteBitmap("12", 0, 2, n2.W(10), n2.context));
    Ok(n2.key.IncrBy(5, n2.W(11), n2.context));
    REQUIRE(n2.Get() == "17");
    REQUIRE_FALSE(n2.key.HasChunks());
  }
  SECTION("a hash write is WRONGTYPE, DEL removes the chunks") {
    REQUIRE(n1.key.HSet("f", "v", false, n1.W(11), n1.context).error().code ==
            ErrorCode::kWrongType);
    REQUIRE(n1.key.Del(n1.W(12), n1.context).has_value());
    REQUIRE(n1.key.TypeAt(1000) == ObjectType::kNone);
    REQUIRE(n1.key.empty());
  }
  SECTION("a PFADD never raises registers beside chunks") {
    REQUIRE_FALSE(hll::RaiseEntries(n1.key, 1000).has_value());
  }
}

TEST_CASE("bitmap: random histories converge and every region reads the same bytes",
          "[crdt][laws][bitmap]") {
  for (uint64_t i = 0; i < 2000; ++i) {
    const uint64_t seed = 0xb17a9000ULL + i * 7919;
    CAPTURE(seed);
    World<BitmapWorkload> world(seed, 3);
    world.Run(30);
    const auto all = Joined(Joined(world.State(0), world.State(1)), world.State(2));
    Rng order_rng(seed ^ 0x5e7b17);
    const auto applied = world.ApplyAllInRandomOrder(order_rng);
    REQUIRE(applied == all);
    REQUIRE(applied.first.GetString(world.now_ms()) == all.first.GetString(world.now_ms()));
  }
}

TEST_CASE("bitmap: concurrent SETBITs on distinct bits in distinct chunks all survive",
          "[crdt][bitmap]") {
  const uint64_t seed = 0xb175ULL;
  CAPTURE(seed);
  Rng rng(seed);
  for (int round = 0; round < 200; ++round) {
    Node nodes[] = {Node(1), Node(2), Node(3)};
    std::vector<KeyOp> ops;
    std::vector<uint64_t> bits;
    for (int r = 0; r < 3; ++r) {
      // Region r writes in chunks r, r+3, r+6...: never a chunk another region writes.
      const uint64_t chunk = static_cast<uint64_t>(r) + 3 * rng.Uniform(5);
      const uint64_t bit = chunk * kChunkBytes * 8 + rng.Uniform(kChunkBytes * 8);
      bits.push_back(bit);
      ops.push_back(SetBit(nodes[r], bit, true, 100 + rng.Uniform(3)));
    }
    for (int r = 0; r < 3; ++r) {
      for (int o = 0; o < 3; ++o) {
        if (o != r) nodes[r].Apply(ops[static_cast<size_t>(o)]);
      }
    }
    for (int r = 0; r < 3; ++r) {
      const std::string v = nodes[r].Get();
      for (uint64_t bit : bits) REQUIRE(BitOf(v, bit));
      REQUIRE(v == nodes[0].Get());
    }
  }
}

// BITFIELD k OVERFLOW WRAP INCRBY <field> <by> as the bitmap family does it when the counter fits.
KeyOp IncrField(Node& node, BitField field, int64_t by, uint64_t hlc_ms, int64_t now_ms = 1000) {
  const BitChunks none;
  REQUIRE((node.key.HasChunks() ? node.key.rest()->chunks() : none).CounterFits(field));
  return Ok(node.key.IncrBitFields({{field, static_cast<uint64_t>(by)}}, node.W(hlc_ms, {}, now_ms),
                                   node.context));
}

uint8_t ByteOf(const std::string& value, size_t at) {
  return at < value.size() ? static_cast<uint8_t>(value[at]) : 0;
}

TEST_CASE("bitfield: concurrent WRAP INCRBYs of one field all count", "[crdt][bitmap][counter]") {
  Node n1(1), n2(2);
  Share(n1, n2, std::string(4, '\0'));
  const KeyOp a = IncrField(n1, {8, 8}, 5, 20);
  const KeyOp b = IncrField(n2, {8, 8}, 5, 21);
  // The op is the counter's chain alone: no chunk, no value.
  REQUIRE(a.delta.rest()->chunks().size() == 0);
  REQUIRE(a.delta.rest()->chunks().counters().size() == 1);
  REQUIRE(n1.Get() == std::string("\0\x05\0\0", 4));
  Exchange(n1, a, n2, b);
  REQUIRE(n1.Get() == std::string("\0\x0a\0\0", 4));
  SECTION("modulo 2^width, as WRAP") {
    const KeyOp c = IncrField(n1, {8, 8}, 250, 30);
    const KeyOp d = IncrField(n2, {8, 8}, -3, 31);
    Exchange(n1, c, n2, d);
    REQUIRE(ByteOf(n1.Get(), 1) == static_cast<uint8_t>(10 + 250 - 3));
  }
}

TEST_CASE("bitfield: three regions' repeated increments all count", "[crdt][bitmap][counter]") {
  Node n1(1), n2(2), n3(3);
  Node* nodes[] = {&n1, &n2, &n3};
  std::vector<KeyOp> ops;  // in causal order: each region's op follows its previous one
  for (int round = 0; round < 4; ++round) {
    for (Node* n : nodes) ops.push_back(IncrField(*n, {0, 16}, 30000, 50 + round));
  }
  for (Node* n : nodes) {
    for (const KeyOp& op : ops) n->Apply(op);
  }
  REQUIRE(n1.key == n2.key);
  REQUIRE(n2.key == n3.key);
  REQUIRE(ByteOf(n1.Get(), 0) * 256 + ByteOf(n1.Get(), 1) == (12 * 30000) % 65536);
}

TEST_CASE("bitfield: a 64-bit signed field wraps as i64", "[crdt][bitmap][counter]") {
  Node n1(1), n2(2);
  const KeyOp a = IncrField(n1, {64, 64}, INT64_MAX, 20);
  const KeyOp b = IncrField(n2, {64, 64}, 2, 21);
  Exchange(n1, a, n2, b);
  const std::string v = n1.Get();
  REQUIRE(v.size() == 16);
  uint64_t field = 0;
  for (size_t i = 8; i < 16; ++i) field = (field << 8) | ByteOf(v, i);
  REQUIRE(static_cast<int64_t>(field) == INT64_MIN + 1);  // INT64_MAX + 2 wrapped
}

TEST_CASE("bitfield: SET || INCRBY gives the SET's value plus the increment it had not seen",
          "[crdt][bitmap][counter]") {
  Node n1(1), n2(2);
  n2.Apply(IncrField(n1, {0, 8}, 7, 10));
  const KeyOp set = Ok(n2.key.Set("abc", false, std::nullopt, n2.W(30), n2.context));
  const KeyOp incr = IncrField(n1, {0, 8}, 3, 20);  // earlier stamp: it counts all the same
  REQUIRE(n2.Get() == "abc");                       // the SET reset the 7 it saw
  Exchange(n1, incr, n2, set);
  REQUIRE(n1.Get() == "dbc");
  SECTION("a later SET that saw every increment shows its value") {
    const KeyOp again = Ok(n1.key.Set("xyz", false, std::nullopt, n1.W(40), n1.context));
    n2.Apply(again);
    REQUIRE(n2.Get() == "xyz");
    REQUIRE(n1.key == n2.key);
  }
}

TEST_CASE(
    "bitfield: a SETBIT that saw the counter resets it; a concurrent increment counts over it",
    "[crdt][bitmap][counter]") {
  Node n1(1), n2(2);
  n2.Apply(IncrField(n1, {0, 8}, 5, 10));     // byte 0 = 0b101
  const KeyOp bit = SetBit(n1, 6, true, 20);  // 0b111: its chunk holds the counter's 5
  REQUIRE(n1.Get() == "\x07");
  REQUIRE_FALSE(n1.key.rest()->chunks().CounterAt({0, 8}).Alive());
  const KeyOp incr = IncrField(n2, {0, 8}, 1, 21);
  Exchange(n1, bit, n2, incr);
  REQUIRE(n1.Get() == "\x08");  // the chunk's 7 plus the increment it had not seen
  SECTION("a SETBIT in another chunk leaves the counter alone") {
    const KeyOp far = SetBit(n1, 8 * 300, true, 30);
    n2.Apply(far);
    REQUIRE(ByteOf(n2.Get(), 0) == 8);
    REQUIRE(n2.key.rest()->chunks().CounterAt({0, 8}).Alive());
  }
}

TEST_CASE("bitfield: DEL || INCRBY keeps the increment over zero bytes",
          "[crdt][bitmap][counter]") {
  Node n1(1), n2(2);
  Share(n1, n2, "hello");
  n2.Apply(IncrField(n1, {16, 8}, 4, 15));
  const std::optional<KeyOp> del = n1.key.Del(n1.W(20), n1.context);
  REQUIRE(del);
  const KeyOp incr = IncrField(n2, {16, 8}, 2, 21);
  Exchange(n1, *del, n2, incr);
  REQUIRE(n1.Get() == std::string("\0\0\x02", 3));
}

TEST_CASE("bitfield: which increments merge as counters", "[crdt][bitmap][counter]") {
  Node n1(1);
  IncrField(n1, {0, 16}, 1, 10);
  const BitChunks& chunks = n1.key.rest()->chunks();
  CHECK(chunks.CounterFits({0, 16}));
  CHECK_FALSE(chunks.CounterFits({8, 8}));  // overlaps a live counter of another field
  CHECK(chunks.CounterFits({16, 8}));
  CHECK_FALSE(chunks.CounterFits({2040, 16}));  // straddles chunks 0 and 1
  CHECK_FALSE(chunks.CounterFits({0, 65}));
  CHECK_FALSE(chunks.CounterFits({kChunkIndexEnd * kChunkBytes * 8, 8}));
  // A chunk write resets the counter: the overlapping field may count then.
  SetBit(n1, 100, true, 11);
  CHECK(n1.key.rest()->chunks().CounterFits({8, 8}));
  SECTION("at most kCountersMax counters") {
    Node n2(2);
    for (uint64_t i = 0; i < kCountersMax; ++i) IncrField(n2, {i * 8, 8}, 1, 20);
    CHECK_FALSE(n2.key.rest()->chunks().CounterFits({kCountersMax * 8, 8}));
    CHECK(n2.key.rest()->chunks().CounterFits({0, 8}));
  }
}

TEST_CASE("bitfield: one region's counter reads equal sequential WRAP increments",
          "[crdt][bitmap][counter]") {
  const uint64_t seed = 0xb1f1e1dULL;
  CAPTURE(seed);
  Rng rng(seed);
  for (int round = 0; round < 100; ++round) {
    Node n(1);
    std::string model;
    for (int step = 0; step < 40; ++step) {
      const BitField field{rng.Uniform(64) * (rng.Chance(1, 2) ? 1 : 33),
                           static_cast<uint32_t>(1 + rng.Uniform(64))};
      const uint64_t by = rng.Next();
      const BitChunks none;
      const BitChunks& chunks = n.key.HasChunks() ? n.key.rest()->chunks() : none;
      std::string next = model;
      AddToFieldModel(next, field, by);
      if (chunks.CounterFits(field)) {
        Ok(n.key.IncrBitFields({{field, by}}, n.W(10 + step), n.context));
      } else if (rng.Chance(1, 2)) {
        const size_t first = static_cast<size_t>(field.offset / 8);
        const size_t end = static_cast<size_t>((field.offset + field.bits - 1) / 8) + 1;
        Ok(n.key.WriteBitmap(next, first, end, n.W(10 + step), n.context));
      } else {
        continue;
      }
      model = std::move(next);
      REQUIRE(n.Get() == model);
    }
  }
}

}  // namespace
}  // namespace lattice::crdt::testing
