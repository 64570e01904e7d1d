#pragma once
// Clock is the server's only source of time, so that the simulator can drive the same command
// code with simulated time. SystemClock reads the real clocks; it lives in src/ because crdt/,
// replication/ and sim/ may never read a clock themselves. Implementations are thread-safe.

#include <chrono>
#include <cstdint>

namespace lattice::server {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;        // wall clock, ms since the Unix epoch
  virtual int64_t NowUs() const = 0;        // wall clock, µs since the Unix epoch
  virtual int64_t MonotonicUs() const = 0;  // for durations only
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override { return NowUs() / 1000; }
  int64_t NowUs() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t MonotonicUs() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace lattice::server
