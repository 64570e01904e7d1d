#include "server/info_metrics.h"

#include <algorithm>

namespace lattice::server {

void InfoMetrics::Sample(int64_t now_ms, const Totals& totals) {
  if (last_ms_ >= 0 && now_ms - last_ms_ < kPeriodMs) {
    return;
  }
  if (last_ms_ >= 0) {
    const auto elapsed_ms = static_cast<double>(now_ms - last_ms_);
    for (size_t i = 0; i < kMetricCount; ++i) {
      Series& series = series_[i];
      const uint64_t grown = totals[i] >= last_[i] ? totals[i] - last_[i] : 0;  // reset: 0
      series.rates[static_cast<size_t>(series.index)] =
          static_cast<double>(grown) * 1000.0 / elapsed_ms;
      series.index = (series.index + 1) % kSamples;
      series.filled = std::min(series.filled + 1, kSamples);
    }
  }
  last_ms_ = now_ms;
  last_ = totals;
}

double InfoMetrics::PerSecond(Metric metric) const {
  const Series& series = series_[metric];
  if (series.filled == 0) {
    return 0;
  }
  double sum = 0;
  for (int i = 0; i < series.filled; ++i) {
    sum += series.rates[static_cast<size_t>(i)];
  }
  return sum / series.filled;
}

uint64_t InfoMetrics::ObserveMemory(uint64_t used) {
  peak_ = std::max(peak_, used);
  return peak_;
}

}  // namespace lattice::server
