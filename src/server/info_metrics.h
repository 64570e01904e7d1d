#pragma once
// What INFO reports that needs history: Valkey's instantaneous rates (a counter sampled every
// 100 ms; the rate is the mean of the last 16 sample-to-sample rates, as Valkey's
// trackInstantaneousMetric), the peak of used_memory, and used_memory at startup. The server's
// cron feeds it; INFO reads it. Not thread-safe: the event-loop thread owns it.

#include <array>
#include <cstddef>
#include <cstdint>

namespace lattice::server {

class InfoMetrics {
 public:
  enum Metric : size_t { kCommands, kNetInputBytes, kNetOutputBytes, kMetricCount };
  using Totals = std::array<uint64_t, kMetricCount>;
  static constexpr int kSamples = 16;
  static constexpr int64_t kPeriodMs = 100;

  explicit InfoMetrics(uint64_t startup_used_memory)
      : startup_(startup_used_memory), peak_(startup_used_memory) {}

  // Takes a sample of every counter when kPeriodMs passed since the last one (the first call
  // only sets the baseline).
  void Sample(int64_t now_ms, const Totals& totals);
  // The mean rate per second of `metric` over the samples taken (0 before two samples).
  double PerSecond(Metric metric) const;
  // Raises the peak to `used` if it is higher; returns the peak.
  uint64_t ObserveMemory(uint64_t used);
  uint64_t peak() const { return peak_; }
  uint64_t startup() const { return startup_; }

 private:
  struct Series {
    std::array<double, kSamples> rates{};
    int index = 0;
    int filled = 0;
  };

  uint64_t startup_;
  uint64_t peak_;
  int64_t last_ms_ = -1;
  Totals last_{};
  std::array<Series, kMetricCount> series_{};
};

}  // namespace lattice::server
