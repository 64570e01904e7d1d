#pragma once
// What LATENCY and INFO latencystats report.
//
// LatencyHistogram is one command's distribution of call durations (latency-tracking), bucketed
// as Valkey's HdrHistogram with two significant figures: a duration in nanoseconds, clamped to
// [1024 ns, 1 s], falls in a sub-bucket of 1/128 of its power of two. Percentiles report the
// highest value equivalent to the sub-bucket reached (INFO latencystats); LATENCY HISTOGRAM
// reports cumulative counts at each power of two from 1024 ns. The counts are allocated on the
// first sample, so a command never called costs one pointer.
//
// LatencyMonitor keeps, per event ("command", "fast-command", "aof-fsync-always", ...), the last
// 160 seconds that had a sample at or above latency-monitor-threshold (the worst sample of each
// second), the all-time worst, and the sum and count of every sample (LATENCY LATEST, HISTORY,
// GRAPH, DOCTOR, RESET). Time is passed in. Neither class is thread-safe: the event-loop thread
// owns them.

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lattice::server {

class LatencyHistogram {
 public:
  static constexpr uint64_t kMinNs = 1024;
  static constexpr uint64_t kMaxNs = 1'000'000'000;

  LatencyHistogram() = default;
  LatencyHistogram(LatencyHistogram&&) = default;
  LatencyHistogram& operator=(LatencyHistogram&&) = default;

  void Record(uint64_t duration_ns);
  uint64_t total() const { return total_; }
  // The highest value (ns) equivalent to the sample at `percentile` (0..100): HdrHistogram's
  // hdr_value_at_percentile. 0 with no samples.
  uint64_t ValueAtPercentile(double percentile) const;
  // Calls `emit(usec, cumulative_count)` at each power of two from 1024 ns where the cumulative
  // count grew, until every sample is counted: LATENCY HISTOGRAM's histogram_usec.
  void ForEachBucket(const std::function<void(uint64_t usec, uint64_t cumulative)>& emit) const;

 private:
  static constexpr int kSubBuckets = 128;  // per power of two: two significant figures
  static constexpr int kFirstShift = 3;    // 1024 ns = 128 << 3
  static constexpr int kShifts = 20;       // up to 2^30 ns > kMaxNs
  static size_t IndexOf(uint64_t value_ns);
  static uint64_t HighestEquivalent(size_t index);

  std::unique_ptr<std::array<uint64_t, kShifts * kSubBuckets>> counts_;
  uint64_t total_ = 0;
};

struct LatencySample {
  int64_t time_s = 0;  // 0: an empty slot
  uint64_t latency_ms = 0;
};

class LatencyMonitor {
 public:
  static constexpr size_t kHistoryLen = 160;

  struct Series {
    std::array<LatencySample, kHistoryLen> samples{};
    size_t next = 0;  // the slot the next second's sample goes to
    uint64_t max_ms = 0;
    uint64_t sum_ms = 0;
    uint64_t count = 0;
    const LatencySample& latest() const { return samples[(next + kHistoryLen - 1) % kHistoryLen]; }
    // The non-empty samples, oldest first.
    std::vector<LatencySample> History() const;
  };

  // Adds a sample of `latency_ms` at `now_s`: a second's samples keep their maximum.
  void Add(std::string_view event, int64_t now_s, uint64_t latency_ms);
  // Forgets `event` (case-insensitive); returns how many events were forgotten (0 or 1).
  size_t Reset(std::string_view event);
  size_t ResetAll();
  const Series* Find(std::string_view event) const;
  const std::map<std::string, Series, std::less<>>& events() const { return events_; }

 private:
  std::map<std::string, Series, std::less<>> events_;
};

// LATENCY GRAPH's text: the header line, a rule, and an 80-column sparkline of the samples with
// their age ("12s", "3m", "2h", "1d") as labels.
std::string LatencyGraph(std::string_view event, const LatencyMonitor::Series& series,
                         int64_t now_s);

// LATENCY DOCTOR's text: one line per event (spikes, average, mean deviation, period, worst) and
// advice for the events Lattice records. `threshold_ms` is latency-monitor-threshold;
// `slowlog_threshold_us` and `slowlog_max_len` the slow log's settings.
std::string LatencyDoctor(const LatencyMonitor& monitor, int64_t now_s, int64_t threshold_ms,
                          int64_t slowlog_threshold_us, int64_t slowlog_max_len);

}  // namespace lattice::server
