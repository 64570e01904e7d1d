// Frames: CRC32C check values, incremental parsing under every fragmentation, and rejection of
// corrupt, truncated and oversized frames with the right reason.
#include "lattice/repl/frame.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "lattice/common/rng.h"
#include "lattice/repl/crc32c.h"

namespace lattice::repl {
namespace {

using Status = FrameReader::Status;

// Feeds `stream` in the given pieces and collects every frame until the reader needs more.
struct Drained {
  std::vector<std::string> frames;
  bool error = false;
  std::string reason;
};

Drained Drain(FrameReader& reader, const std::vector<std::string_view>& pieces) {
  Drained out;
  for (std::string_view piece : pieces) {
    reader.Feed(piece);
    for (;;) {
      const Status status = reader.Next();
      if (status == Status::kFrame) {
        out.frames.emplace_back(reader.payload());
      } else if (status == Status::kError) {
        out.error = true;
        out.reason = reader.error();
        return out;
      } else {
        break;
      }
    }
  }
  return out;
}

std::string RandomBytes(Rng& rng, size_t n) {
  std::string out(n, '\0');
  for (char& c : out) {
    c = static_cast<char>(rng.Uniform(256));
  }
  return out;
}

TEST_CASE("crc32c check values", "[repl][frame]") {
  CHECK(Crc32c("123456789") == 0xE3069283u);
  CHECK(Crc32c("") == 0u);
  CHECK(Crc32c(std::string(32, '\0')) == 0x8A9136AAu);  // RFC 3720 B.4
  CHECK(Crc32c(std::string(32, '\xFF')) == 0x62A8AB43u);
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<char>(i);
  }
  CHECK(Crc32c(ascending) == 0x46DD794Eu);
  // Extending piece by piece equals one pass, at every split (exercises the 8-byte loop).
  for (size_t split = 0; split <= ascending.size(); ++split) {
    const std::string_view all(ascending);
    CHECK(Crc32cExtend(Crc32c(all.substr(0, split)), all.substr(split)) == 0x46DD794Eu);
  }
}

TEST_CASE("crc32c: the hardware and the software implementations agree", "[repl][frame]") {
  const uint64_t seed = 0xC0FFEE;
  INFO("seed " << seed << ", hardware " << Crc32cHardwareAvailable());
  Rng rng(seed);
  if (!Crc32cHardwareAvailable()) {
    SUCCEED("no SSE4.2 on this CPU: only the software implementation runs");
    return;
  }
  CHECK(Crc32cExtendHardware(0, "123456789") == 0xE3069283u);
  for (int i = 0; i < 2000; ++i) {
    const std::string bytes = RandomBytes(rng, rng.Uniform(300));
    const auto start = static_cast<uint32_t>(rng.Next());
    REQUIRE(Crc32cExtendHardware(start, bytes) == Crc32cExtendSoftware(start, bytes));
    // Misaligned starts and every length modulo 8.
    const size_t skip = std::min<size_t>(bytes.size(), rng.Uniform(8));
    const std::string_view tail = std::string_view(bytes).substr(skip);
    REQUIRE(Crc32cExtendHardware(start, tail) == Crc32cExtendSoftware(start, tail));
  }
}

TEST_CASE("frame layout: length and checksum little-endian, then the payload", "[repl][frame]") {
  const std::string frame = EncodeFrame("123456789");
  REQUIRE(frame.size() == kFrameHeaderBytes + 9);
  CHECK(frame.substr(0, 4) == std::string("\x09\x00\x00\x00", 4));
  CHECK(frame.substr(4, 4) == std::string("\x83\x92\x06\xE3", 4));
  CHECK(frame.substr(8) == "123456789");
}

TEST_CASE("frame reader: every split point and byte by byte", "[repl][frame]") {
  const std::vector<std::string> payloads = {"", "a", "hello frames", std::string(300, 'x'), ""};
  std::string stream;
  for (const auto& p : payloads) {
    AppendFrame(p, stream);
  }
  for (size_t split = 0; split <= stream.size(); ++split) {
    CAPTURE(split);
    FrameReader reader;
    const std::string_view all(stream);
    auto got = Drain(reader, {all.substr(0, split), all.substr(split)});
    CHECK_FALSE(got.error);
    CHECK(got.frames == payloads);
    CHECK(reader.buffered_bytes() == 0);
  }
  for (size_t a = 0; a <= 40; ++a) {
    for (size_t b = a; b <= 40; ++b) {
      FrameReader reader;
      const std::string_view all(stream);
      auto got = Drain(reader, {all.substr(0, a), all.substr(a, b - a), all.substr(b)});
      REQUIRE(got.frames == payloads);
    }
  }
  FrameReader reader;
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < stream.size(); ++i) {
    bytes.push_back(std::string_view(stream).substr(i, 1));
  }
  CHECK(Drain(reader, bytes).frames == payloads);
}

TEST_CASE("frame reader: random frames under random fragmentation", "[repl][frame]") {
  const uint64_t seed = GENERATE(take(20, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  std::vector<std::string> payloads;
  std::string stream;
  for (int i = 0; i < 50; ++i) {
    payloads.push_back(RandomBytes(rng, rng.Uniform(2000)));
    AppendFrame(payloads.back(), stream);
  }
  std::vector<std::string_view> pieces;
  for (size_t at = 0; at < stream.size();) {
    const size_t n = std::min<size_t>(stream.size() - at, rng.Uniform(3000) + 1);
    pieces.push_back(std::string_view(stream).substr(at, n));
    at += n;
  }
  FrameReader reader;
  CHECK(Drain(reader, pieces).frames == payloads);
}

TEST_CASE("frame reader: corrupt frames are refused with the reason", "[repl][frame]") {
  const std::string good = EncodeFrame("payload of a frame");
  SECTION("every bit flip in the checksum or the payload: checksum mismatch") {
    for (size_t bit = 32; bit < good.size() * 8; ++bit) {
      std::string bad = good;
      bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
      FrameReader reader;
      auto got = Drain(reader, {bad});
      CAPTURE(bit);
      CHECK(got.error);
      CHECK(got.reason == "checksum mismatch");
      CHECK(got.frames.empty());
    }
  }
  SECTION("every bit flip in the length: too large, checksum mismatch, or waiting for bytes") {
    for (size_t bit = 0; bit < 32; ++bit) {
      std::string bad = good;
      bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
      FrameReader reader(/*max_frame_bytes=*/1024);
      auto got = Drain(reader, {bad});
      CAPTURE(bit);
      CHECK(got.frames.empty());
      const uint32_t length = static_cast<uint32_t>(18) ^ (1u << bit);
      if (length > 1024) {
        CHECK(got.reason.rfind("frame too large", 0) == 0);
      } else if (length + kFrameHeaderBytes <= bad.size()) {
        CHECK(got.reason == "checksum mismatch");
      } else {
        CHECK_FALSE(got.error);  // a longer frame: the reader waits for the rest
        CHECK(reader.Next() == Status::kNeedMore);
      }
    }
  }
  SECTION("truncated: never a frame, always waiting for more") {
    for (size_t n = 0; n < good.size(); ++n) {
      FrameReader reader;
      auto got = Drain(reader, {std::string_view(good).substr(0, n)});
      CHECK_FALSE(got.error);
      CHECK(got.frames.empty());
    }
  }
  SECTION("oversized: refused on the header, before its payload arrives") {
    FrameReader reader(/*max_frame_bytes=*/16);
    auto got = Drain(reader, {std::string_view(good).substr(0, kFrameHeaderBytes)});
    CHECK(got.error);
    CHECK(got.reason == "frame too large: 18 bytes (max 16)");
    const std::string huge("\xFF\xFF\xFF\xFF\0\0\0\0", 8);
    FrameReader big;
    auto got_big = Drain(big, {huge});
    CHECK(got_big.reason == "frame too large: 4294967295 bytes (max 67108864)");
    CHECK(big.buffered_bytes() == 0);
  }
  SECTION("the error is sticky: later good frames are not delivered") {
    std::string bad = good;
    bad.back() = static_cast<char>(bad.back() ^ 1);
    FrameReader reader;
    auto got = Drain(reader, {good, bad, good});
    CHECK(got.frames.size() == 1);
    CHECK(got.error);
    reader.Feed(good);
    CHECK(reader.Next() == Status::kError);
  }
}

}  // namespace
}  // namespace lattice::repl
