#include "resp/reply_builder.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <string>

#include "lattice/common/rng.h"

namespace lattice::server {
namespace {

// The bytes one builder call writes in RESP2 and in RESP3.
struct Encodings {
  std::string resp2;
  std::string resp3;
};

Encodings Encode(const std::function<void(ReplyBuilder&)>& write) {
  Encodings out;
  ReplyBuilder resp2(&out.resp2);
  write(resp2);
  ReplyBuilder resp3(&out.resp3);
  resp3.set_protocol(Protocol::kResp3);
  write(resp3);
  return out;
}

void CheckEncodes(const std::function<void(ReplyBuilder&)>& write, const std::string& resp2,
                  const std::string& resp3) {
  const Encodings got = Encode(write);
  CHECK(got.resp2 == resp2);
  CHECK(got.resp3 == resp3);
}

TEST_CASE("replies that are the same in RESP2 and RESP3", "[resp][builder]") {
  CheckEncodes([](ReplyBuilder& b) { b.SimpleString("PONG"); }, "+PONG\r\n", "+PONG\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Ok(); }, "+OK\r\n", "+OK\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Error("ERR syntax error"); }, "-ERR syntax error\r\n",
               "-ERR syntax error\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Integer(0); }, ":0\r\n", ":0\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Integer(-42); }, ":-42\r\n", ":-42\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Integer(INT64_MIN); }, ":-9223372036854775808\r\n",
               ":-9223372036854775808\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Integer(INT64_MAX); }, ":9223372036854775807\r\n",
               ":9223372036854775807\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Bulk("hello"); }, "$5\r\nhello\r\n", "$5\r\nhello\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Bulk(""); }, "$0\r\n\r\n", "$0\r\n\r\n");
  const std::string binary("a\r\n\0b", 5);
  CheckEncodes([&](ReplyBuilder& b) { b.Bulk(binary); }, "$5\r\n" + binary + "\r\n",
               "$5\r\n" + binary + "\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Array(0); }, "*0\r\n", "*0\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Array(3); }, "*3\r\n", "*3\r\n");
}

TEST_CASE("replies that RESP2 downgrades", "[resp][builder]") {
  CheckEncodes([](ReplyBuilder& b) { b.Null(); }, "$-1\r\n", "_\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.NullArray(); }, "*-1\r\n", "_\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Map(2); }, "*4\r\n", "%2\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Map(0); }, "*0\r\n", "%0\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Set(3); }, "*3\r\n", "~3\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Push(3); }, "*3\r\n", ">3\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Double(1.5); }, "$3\r\n1.5\r\n", ",1.5\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Double(3); }, "$1\r\n3\r\n", ",3\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Double(-INFINITY); }, "$4\r\n-inf\r\n", ",-inf\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Double(NAN); }, "$3\r\nnan\r\n", ",nan\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Bool(true); }, ":1\r\n", "#t\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Bool(false); }, ":0\r\n", "#f\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Verbatim("a:b\r\nc"); }, "$6\r\na:b\r\nc\r\n",
               "=10\r\ntxt:a:b\r\nc\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Verbatim("# md", "mkd"); }, "$4\r\n# md\r\n",
               "=8\r\nmkd:# md\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.BigNumber("3492890328409238509324850943850943825024385"); },
               "$43\r\n3492890328409238509324850943850943825024385\r\n",
               "(3492890328409238509324850943850943825024385\r\n");
}

TEST_CASE("error and status text cannot break the framing", "[resp][builder]") {
  CheckEncodes([](ReplyBuilder& b) { b.Error("ERR bad\r\nthing\n"); }, "-ERR bad  thing \r\n",
               "-ERR bad  thing \r\n");
  CheckEncodes([](ReplyBuilder& b) { b.Error("-WRONGTYPE x"); }, "-WRONGTYPE x\r\n",
               "-WRONGTYPE x\r\n");
  CheckEncodes([](ReplyBuilder& b) { b.SimpleString("a\rb"); }, "+a b\r\n", "+a b\r\n");
  std::string out;
  ReplyBuilder builder(&out);
  CHECK(builder.errors_written() == 0);
  builder.Error("ERR one");
  builder.Ok();
  builder.Error("ERR two");
  CHECK(builder.errors_written() == 2);
  CHECK(out == "-ERR one\r\n+OK\r\n-ERR two\r\n");
}

TEST_CASE("a nested RESP3 reply downgrades element by element", "[resp][builder]") {
  CheckEncodes(
      [](ReplyBuilder& b) {
        b.Map(1);
        b.Bulk("m");
        b.Array(2);
        b.Double(0.5);
        b.Null();
      },
      "*2\r\n$1\r\nm\r\n*2\r\n$3\r\n0.5\r\n$-1\r\n", "%1\r\n$1\r\nm\r\n*2\r\n,0.5\r\n_\r\n");
}

TEST_CASE("FormatDouble prints like Valkey's d2string", "[resp][builder]") {
  const std::pair<double, const char*> cases[] = {
      {0.0, "0"},
      {-0.0, "-0"},
      {1, "1"},
      {-3, "-3"},
      {1.5, "1.5"},
      {0.1, "0.1"},
      {-0.25, "-0.25"},
      {0.1 + 0.2, "0.30000000000000004"},
      {3.14159, "3.14159"},
      {123.456, "123.456"},
      {1e-5, "0.00001"},
      {1e-6, "0.000001"},
      {1e-7, "1e-7"},
      {1.5e-7, "1.5e-7"},
      {-2.5e-10, "-2.5e-10"},
      {1.234e-6, "1.234e-6"},
      {123456789012.5, "123456789012.5"},
      // Integral values within +-LLONG_MAX/2 print as integers.
      {1e17, "100000000000000000"},
      {4611686018427387904.0, "4611686018427387904"},
      {-1e18, "-1000000000000000000"},
      // Beyond that, fpconv's layout: plain digits while the exponent is small, else e+N.
      {9223372036854775808.0, "9223372036854776000"},
      {1.2345678901234568e21, "1234567890123456800000"},
      {5e18, "5e+18"},
      {1e20, "1e+20"},
      {1e21, "1e+21"},
      {1e300, "1e+300"},
      {-1.5e105, "-1.5e+105"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {5e-324, "5e-324"},
      // fpconv writes exponent form once the fraction needs 7+ digits and the value is >= 1e4.
      {1234567890.1234567, "1.2345678901234567e+9"},
      {12345.125, "12345.125"},
      {INFINITY, "inf"},
      {-INFINITY, "-inf"},
      {NAN, "nan"},
      {-NAN, "nan"},
  };
  for (const auto& [value, text] : cases) {
    CAPTURE(value);
    CHECK(FormatDouble(value) == text);
  }
}

TEST_CASE("FormatDouble round-trips every finite double", "[resp][builder]") {
  const uint64_t seed = GENERATE(take(5, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t bits = rng.Next();
    double value = 0;
    std::memcpy(&value, &bits, sizeof(value));
    if (!std::isfinite(value)) {
      continue;
    }
    const std::string text = FormatDouble(value);
    CAPTURE(bits, text);
    CHECK(std::strtod(text.c_str(), nullptr) == value);
    CHECK(text.size() <= 25);  // "-" + 17 digits + up to 7 zeros
  }
}

}  // namespace
}  // namespace lattice::server
