#pragma once
// Clock is the server's only source of time, so that the simulator can drive the same command
// code with simulated time. SystemClock reads the real clocks; it lives in src/ because crdt/,
// replication/ and sim/ may never read a clock themselves. Implementations are thread-safe.

#include <time.h>

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

// CPU time this thread has used, in µs (CLOCK_THREAD_CPUTIME_ID): what a step of the event loop
// cost, whatever the machine's load makes its wall time (INFO crdt_step_cpu_max_us).
inline int64_t ThreadCpuUs() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<int64_t>(now.tv_sec) * 1'000'000 + now.tv_nsec / 1000;
}

}  // namespace lattice::server
