// The RDB value codec (store/rdb_value.h): round trips of every type, the compact encodings
// Valkey and older Redis write (ziplist, intset, listpack, quicklist, text scores) built by
// hand, and payloads refused: bad footer, truncated, trailing bytes, lying lengths, empty
// collections. Differential round trips with redis-server are in
// tests/integration/test_dump_restore.py.

#include "store/rdb_value.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "lattice/common/rng.h"
#include "util/rdb.h"

namespace lattice::server {
namespace {

using crdt::ObjectType;

VisibleValue RoundTrip(const VisibleValue& value) {
  Result<VisibleValue> back = DecodeDumpPayload(EncodeDumpPayload(value), false);
  REQUIRE(back.ok());
  return *back;
}

std::string Payload(std::string body) { return RdbSealPayload(std::move(body), 10); }

// A ziplist of short strings and int8 / immediate integers.
std::string Ziplist(const std::vector<std::string>& entries) {
  std::string body;
  size_t prev = 0;
  for (const std::string& e : entries) {
    const size_t start = body.size();
    body.push_back(static_cast<char>(prev));
    if (e == "7") {
      body.push_back(static_cast<char>(0xf1 + 7));  // immediate 0..12
    } else if (e == "-100") {
      body.push_back(static_cast<char>(0xfe));  // int8
      body.push_back(static_cast<char>(-100));
    } else {
      body.push_back(static_cast<char>(e.size()));
      body += e;
    }
    prev = body.size() - start;
  }
  std::string out(10, '\0');
  out += body;
  out.push_back(static_cast<char>(0xff));
  const auto total = static_cast<uint32_t>(out.size());
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(total >> (8 * i));
  out[8] = static_cast<char>(entries.size());
  return out;
}

// A listpack of short strings and 7-bit / 13-bit / int16 integers.
std::string Listpack(const std::vector<std::string>& entries) {
  std::string out(6, '\0');
  for (const std::string& e : entries) {
    size_t len = 0;
    if (e == "5") {
      out.push_back(5);
      len = 1;
    } else if (e == "-3000") {  // 13-bit: 0xc0 | high bits, low byte
      const auto v = static_cast<uint16_t>(-3000 & 0x1fff);
      out.push_back(static_cast<char>(0xc0 | (v >> 8)));
      out.push_back(static_cast<char>(v & 0xff));
      len = 2;
    } else if (e == "30000") {
      out.push_back(static_cast<char>(0xf1));
      out.push_back(static_cast<char>(30000 & 0xff));
      out.push_back(static_cast<char>(30000 >> 8));
      len = 3;
    } else {
      out.push_back(static_cast<char>(0x80 | e.size()));
      out += e;
      len = 1 + e.size();
    }
    out.push_back(static_cast<char>(len));
  }
  out.push_back(static_cast<char>(0xff));
  const auto total = static_cast<uint32_t>(out.size());
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(total >> (8 * i));
  out[4] = static_cast<char>(entries.size());
  return out;
}

std::string Typed(uint8_t type, const std::string& blob) {
  std::string body(1, static_cast<char>(type));
  RdbPutString(body, blob);
  return body;
}

TEST_CASE("every type round-trips through a DUMP payload", "[rdb]") {
  VisibleValue s{.type = ObjectType::kString, .string = std::string("x\0y", 3)};
  CHECK(RoundTrip(s) == s);
  VisibleValue l{.type = ObjectType::kList, .list = {"a", "", "123", std::string(70000, 'z')}};
  CHECK(RoundTrip(l) == l);
  VisibleValue set{.type = ObjectType::kSet, .set = {"1", "b"}};
  CHECK(RoundTrip(set) == set);
  VisibleValue z{.type = ObjectType::kZSet, .zset = {{"a", 1.5}, {"b", -HUGE_VAL}, {"c", 1e300}}};
  CHECK(RoundTrip(z) == z);
  VisibleValue h{.type = ObjectType::kHash, .hash = {{"f", "v", 0}, {"g", "", 0}}};
  CHECK(RoundTrip(h) == h);
  CHECK(EncodeDumpPayload(s).substr(EncodeDumpPayload(s).size() - 10, 2) ==
        std::string("\x0a\0", 2));
}

TEST_CASE("the compact encodings decode", "[rdb]") {
  const std::vector<std::string> items = {"a", "7", "-100", "hello"};
  Result<VisibleValue> list = DecodeRdbValue(Typed(10, Ziplist(items)));
  REQUIRE(list.ok());
  CHECK(list->list == items);

  std::string quicklist(1, 14);  // quicklist of ziplists
  RdbPutLength(quicklist, 2);
  RdbPutString(quicklist, Ziplist({"a"}));
  RdbPutString(quicklist, Ziplist({"b", "7"}));
  REQUIRE(DecodeRdbValue(quicklist).ok());
  CHECK(DecodeRdbValue(quicklist)->list == std::vector<std::string>{"a", "b", "7"});

  std::string quicklist2(1, 18);  // a packed node and a plain one
  RdbPutLength(quicklist2, 2);
  RdbPutLength(quicklist2, 2);
  RdbPutString(quicklist2, Listpack({"5", "-3000", "30000", "q"}));
  RdbPutLength(quicklist2, 1);
  RdbPutString(quicklist2, "plain");
  REQUIRE(DecodeRdbValue(quicklist2).ok());
  CHECK(DecodeRdbValue(quicklist2)->list ==
        std::vector<std::string>{"5", "-3000", "30000", "q", "plain"});

  Result<VisibleValue> zset = DecodeRdbValue(Typed(12, Ziplist({"m", "7", "n", "-100"})));
  REQUIRE(zset.ok());
  CHECK(zset->zset == std::vector<std::pair<std::string, double>>{{"m", 7}, {"n", -100}});
  Result<VisibleValue> hash = DecodeRdbValue(Typed(16, Listpack({"f", "5", "g", "q"})));
  REQUIRE(hash.ok());
  CHECK(hash->hash.size() == 2);
  CHECK(hash->hash[1].value == "q");
  Result<VisibleValue> set = DecodeRdbValue(Typed(20, Listpack({"q", "5"})));
  REQUIRE(set.ok());
  CHECK(set->set == std::vector<std::string>{"q", "5"});

  std::string intset = {4, 0, 0, 0, 2, 0, 0, 0};  // width 4, two members
  intset += std::string("\xff\xff\xff\xff\x10\x00\x00\x00", 8);
  Result<VisibleValue> ints = DecodeRdbValue(Typed(11, intset));
  REQUIRE(ints.ok());
  CHECK(ints->set == std::vector<std::string>{"-1", "16"});

  std::string text_zset(1, 3);  // text scores: 254 is +inf
  RdbPutLength(text_zset, 2);
  RdbPutString(text_zset, "a");
  text_zset += std::string(
      "\x03"
      "2.5",
      4);
  RdbPutString(text_zset, "b");
  text_zset.push_back(static_cast<char>(254));
  REQUIRE(DecodeRdbValue(text_zset).ok());
  CHECK(DecodeRdbValue(text_zset)->zset[1].second == HUGE_VAL);
}

TEST_CASE("bad payloads are refused with Valkey's reasons", "[rdb]") {
  const VisibleValue s{.type = ObjectType::kString, .string = "value"};
  std::string good = EncodeDumpPayload(s);
  std::string bad_crc = good;
  bad_crc.back() ^= 1;
  CHECK(DecodeDumpPayload(bad_crc, false).error().code == ErrorCode::kInvalid);
  CHECK(DecodeDumpPayload(bad_crc, false).error().message ==
        "DUMP payload version or checksum are wrong");
  CHECK(DecodeDumpPayload(Payload(std::string("\x00\x05value", 7)), false).ok());
  CHECK_FALSE(DecodeDumpPayload(RdbSealPayload(std::string("\x00\x01x", 3), 12), false).ok());
  CHECK(DecodeDumpPayload(RdbSealPayload(std::string("\x00\x01x", 3), 12), true).ok());
  CHECK(DecodeDumpPayload(RdbSealPayload(std::string("\x00\x01x", 3), 80), false).ok());
  CHECK(DecodeDumpPayload("short", false).error().code == ErrorCode::kInvalid);

  const auto corrupt = [](const std::string& body) {
    Result<VisibleValue> value = DecodeDumpPayload(Payload(body), false);
    return !value.ok() && value.error().code == ErrorCode::kCorrupt &&
           value.error().message == "Bad data format";
  };
  CHECK(corrupt(std::string("\x00\x06value", 7)));             // truncated
  CHECK(corrupt(std::string("\x00\x01vv", 4)));                // trailing byte
  CHECK(corrupt(std::string("\x01\x00", 2)));                  // empty list
  CHECK(corrupt(std::string("\x01\x80\xff\xff\xff\xff", 6)));  // a count beyond the input
  CHECK(corrupt(std::string("\x07\x00", 2)));                  // a module
  CHECK(corrupt(std::string("\x09\x00", 2)));                  // zipmap: not read
  CHECK(corrupt(std::string("\x00\xc3\x02\x7f\x00", 5)));      // LZF claiming 127 bytes from 2
  std::string ziplist = Ziplist({"a", "b"});
  ziplist[0] += 1;  // total bytes no longer the blob's size
  CHECK(corrupt(Typed(10, ziplist)));
  std::string listpack = Listpack({"a", "b"});
  listpack[4] = 3;  // wrong count
  CHECK(corrupt(Typed(16, listpack)));
  CHECK(corrupt(Typed(12, Ziplist({"m", "notanumber"}))));
}

TEST_CASE("random bytes never crash the decoder", "[rdb]") {
  const uint64_t seed = GENERATE(take(5, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  const VisibleValue z{.type = ObjectType::kZSet, .zset = {{"a", 1}, {"b", 2}}};
  const std::string good = EncodeRdbValue(z);
  for (int i = 0; i < 2000; ++i) {
    std::string mutated = good;
    mutated[rng.Uniform(mutated.size())] = static_cast<char>(rng.Uniform(256));
    (void)DecodeRdbValue(mutated);
    (void)DecodeRdbValue(mutated.substr(0, rng.Uniform(mutated.size())));
  }
}

}  // namespace
}  // namespace lattice::server
