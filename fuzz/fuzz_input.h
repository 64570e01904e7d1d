#pragma once
// FuzzInput reads a fuzzer's byte string as the choices a target makes (flags, lengths, split
// points) followed by payloads. Every read is total: past the end it yields zeros or an empty
// view, so any input, the empty one included, is a valid run. Checks in targets use
// LATTICE_ASSERT_MSG, which aborts in every build: libFuzzer and the regression replay both see
// an abort as a failure. Not thread-safe; one per run.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lattice/common/assert.h"

namespace lattice::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : bytes_(reinterpret_cast<const char*>(data), size) {}

  bool empty() const { return pos_ == bytes_.size(); }

  uint8_t Byte() { return empty() ? 0 : static_cast<uint8_t>(bytes_[pos_++]); }

  uint16_t U16() {
    const uint16_t low = Byte();
    return static_cast<uint16_t>(low | (Byte() << 8));
  }

  uint64_t U64() {
    uint64_t value = 0;
    for (int i = 0; i < 8; ++i) {
      value |= static_cast<uint64_t>(Byte()) << (8 * i);
    }
    return value;
  }

  // Up to `count` bytes (fewer at the end).
  std::string_view Bytes(size_t count) {
    const size_t take = std::min(count, bytes_.size() - pos_);
    const std::string_view out = bytes_.substr(pos_, take);
    pos_ += take;
    return out;
  }

  // A payload led by its 16-bit length.
  std::string_view Sized() { return Bytes(U16()); }

  std::string_view Rest() { return Bytes(bytes_.size() - pos_); }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

}  // namespace lattice::fuzz

// Defines libFuzzer's entry point (also what replay_main.cc calls) as `run(FuzzInput&)`.
#define LATTICE_FUZZ_TARGET(run)                                            \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { \
    ::lattice::fuzz::FuzzInput in(data, size);                              \
    run(in);                                                                \
    return 0;                                                               \
  }
