#include "server/latency.h"

#include <algorithm>
#include <bit>

#include "fmt/format.h"
#include "util/ascii.h"

namespace lattice::server {

// ---- LatencyHistogram --------------------------------------------------------------------------

size_t LatencyHistogram::IndexOf(uint64_t value_ns) {
  const uint64_t value = std::clamp(value_ns, kMinNs, kMaxNs);
  const int shift = std::bit_width(value) - 8;  // leaves 8 significant bits: 128..255
  const uint64_t sub = value >> shift;
  return static_cast<size_t>(shift - kFirstShift) * kSubBuckets + (sub - kSubBuckets);
}

uint64_t LatencyHistogram::HighestEquivalent(size_t index) {
  const int shift = static_cast<int>(index / kSubBuckets) + kFirstShift;
  const uint64_t lowest = (index % kSubBuckets + kSubBuckets) << shift;
  return lowest + (uint64_t{1} << shift) - 1;
}

void LatencyHistogram::Record(uint64_t duration_ns) {
  if (counts_ == nullptr) {
    counts_ = std::make_unique<std::array<uint64_t, kShifts * kSubBuckets>>();
  }
  ++(*counts_)[IndexOf(duration_ns)];
  ++total_;
}

uint64_t LatencyHistogram::ValueAtPercentile(double percentile) const {
  if (total_ == 0) {
    return 0;
  }
  const double wanted = std::min(percentile, 100.0) / 100.0 * static_cast<double>(total_) + 0.5;
  const uint64_t target = std::max<uint64_t>(1, static_cast<uint64_t>(wanted));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_->size(); ++i) {
    seen += (*counts_)[i];
    if (seen >= target) {
      const uint64_t width = uint64_t{1} << (i / kSubBuckets + kFirstShift);
      return percentile == 0.0 ? HighestEquivalent(i) + 1 - width : HighestEquivalent(i);
    }
  }
  return HighestEquivalent(counts_->size() - 1);
}

void LatencyHistogram::ForEachBucket(
    const std::function<void(uint64_t usec, uint64_t cumulative)>& emit) const {
  if (total_ == 0) {
    return;
  }
  // Each power of two from 1024 ns starts a run of kSubBuckets sub-buckets; the value reported
  // for a level is the highest equivalent of its first sub-bucket (1031 ns -> 1 us, 33023 -> 33).
  uint64_t cumulative = 0;
  uint64_t previous = 0;
  for (int shift = 0; shift < kShifts && previous < total_; ++shift) {
    const size_t first = static_cast<size_t>(shift) * kSubBuckets;
    cumulative += (*counts_)[first];
    if (cumulative > previous) {
      emit(HighestEquivalent(first) / 1000, cumulative);
    }
    previous = cumulative;
    for (size_t i = first + 1; i < first + kSubBuckets; ++i) cumulative += (*counts_)[i];
  }
}

// ---- LatencyMonitor ----------------------------------------------------------------------------

std::vector<LatencySample> LatencyMonitor::Series::History() const {
  std::vector<LatencySample> out;
  for (size_t j = 0; j < kHistoryLen; ++j) {
    const LatencySample& sample = samples[(next + j) % kHistoryLen];
    if (sample.time_s != 0) out.push_back(sample);
  }
  return out;
}

void LatencyMonitor::Add(std::string_view event, int64_t now_s, uint64_t latency_ms) {
  auto it = events_.find(event);
  if (it == events_.end()) {
    it = events_.emplace(std::string(event), Series{}).first;
  }
  Series& series = it->second;
  series.max_ms = std::max(series.max_ms, latency_ms);
  series.sum_ms += latency_ms;
  ++series.count;
  LatencySample& last = series.samples[(series.next + kHistoryLen - 1) % kHistoryLen];
  if (last.time_s == now_s) {
    last.latency_ms = std::max(last.latency_ms, latency_ms);
    return;
  }
  series.samples[series.next] = {now_s, latency_ms};
  series.next = (series.next + 1) % kHistoryLen;
}

size_t LatencyMonitor::Reset(std::string_view event) {
  for (auto it = events_.begin(); it != events_.end(); ++it) {
    if (EqualsIgnoreCase(it->first, event)) {
      events_.erase(it);
      return 1;
    }
  }
  return 0;
}

size_t LatencyMonitor::ResetAll() {
  const size_t count = events_.size();
  events_.clear();
  return count;
}

const LatencyMonitor::Series* LatencyMonitor::Find(std::string_view event) const {
  auto it = events_.find(event);
  return it == events_.end() ? nullptr : &it->second;
}

// ---- LATENCY GRAPH -----------------------------------------------------------------------------

namespace {

std::string AgeLabel(int64_t elapsed_s) {
  if (elapsed_s < 60) return fmt::format("{}s", elapsed_s);
  if (elapsed_s < 3600) return fmt::format("{}m", elapsed_s / 60);
  if (elapsed_s < 86400) return fmt::format("{}h", elapsed_s / 3600);
  return fmt::format("{}d", elapsed_s / 86400);
}

}  // namespace

std::string LatencyGraph(std::string_view event, const LatencyMonitor::Series& series,
                         int64_t now_s) {
  constexpr size_t kColumns = 80;
  constexpr int kRows = 4;
  constexpr std::string_view kMarks = "_-`";  // three heights within a row
  std::vector<LatencySample> samples = series.History();
  if (samples.size() > kColumns) samples.erase(samples.begin(), samples.end() - kColumns);
  uint64_t low = samples.empty() ? 0 : samples.front().latency_ms;
  uint64_t high = low;
  for (const LatencySample& s : samples) {
    low = std::min(low, s.latency_ms);
    high = std::max(high, s.latency_ms);
  }
  std::string out = fmt::format("{} - high {} ms, low {} ms (all time high {} ms)\n", event, high,
                                low, series.max_ms);
  out.append(kColumns, '-').push_back('\n');
  // Each sample is one column: its height in (kRows * 3) steps, the top step drawn with a mark
  // and the rows below it filled with '|'.
  const int steps = kRows * static_cast<int>(kMarks.size());
  std::vector<std::string> rows(kRows, std::string(samples.size(), ' '));
  for (size_t c = 0; c < samples.size(); ++c) {
    const double range = static_cast<double>(high - low);
    const double scaled =
        range == 0 ? 0.5 : static_cast<double>(samples[c].latency_ms - low) / range;
    const int level = std::min(steps - 1, static_cast<int>(scaled * (steps - 1) + 0.5));
    const int top_row = level / static_cast<int>(kMarks.size());
    rows[kRows - 1 - top_row][c] = kMarks[static_cast<size_t>(level) % kMarks.size()];
    for (int r = 0; r < top_row; ++r) rows[kRows - 1 - r][c] = '|';
  }
  for (const std::string& row : rows) out.append(row).push_back('\n');
  // The labels, written downwards one character per line under their columns.
  std::vector<std::string> labels;
  size_t longest = 0;
  for (const LatencySample& s : samples) {
    labels.push_back(AgeLabel(now_s - s.time_s));
    longest = std::max(longest, labels.back().size());
  }
  for (size_t line = 0; line < longest; ++line) {
    for (const std::string& label : labels) out.push_back(line < label.size() ? label[line] : ' ');
    out.push_back('\n');
  }
  return out;
}

// ---- LATENCY DOCTOR ----------------------------------------------------------------------------

namespace {

struct EventSummary {
  size_t samples = 0;
  uint64_t average_ms = 0;
  uint64_t deviation_ms = 0;  // mean absolute deviation
  int64_t period_s = 0;       // since the oldest sample, at least 1
};

EventSummary Summarize(const LatencyMonitor::Series& series, int64_t now_s) {
  EventSummary summary;
  const std::vector<LatencySample> samples = series.History();
  if (samples.empty()) return summary;
  uint64_t sum = 0;
  int64_t oldest = samples.front().time_s;
  for (const LatencySample& s : samples) {
    sum += s.latency_ms;
    oldest = std::min(oldest, s.time_s);
  }
  summary.samples = samples.size();
  summary.average_ms = sum / samples.size();
  uint64_t deviations = 0;
  for (const LatencySample& s : samples) {
    deviations += s.latency_ms > summary.average_ms ? s.latency_ms - summary.average_ms
                                                    : summary.average_ms - s.latency_ms;
  }
  summary.deviation_ms = deviations / samples.size();
  summary.period_s = std::max<int64_t>(1, now_s - oldest);
  return summary;
}

}  // namespace

std::string LatencyDoctor(const LatencyMonitor& monitor, int64_t now_s, int64_t threshold_ms,
                          int64_t slowlog_threshold_us, int64_t slowlog_max_len) {
  if (monitor.events().empty() && threshold_ms == 0) {
    return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Lattice "
           "instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in "
           "order to enable it.\n";
  }
  if (monitor.events().empty()) {
    return "No latency spike was observed during the lifetime of this Lattice instance, not in "
           "the slightest bit.\n";
  }
  std::string report = "Latency spikes are observed in this Lattice instance.\n\n";
  bool slow_commands = false, fast_commands = false, fsync_always = false, disk = false;
  int number = 0;
  for (const auto& [event, series] : monitor.events()) {
    const EventSummary s = Summarize(series, now_s);
    report += fmt::format(
        "{}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2f} sec). Worst "
        "all time event {}ms.\n",
        ++number, event, s.samples, s.average_ms, s.deviation_ms,
        s.samples == 0 ? 0.0 : static_cast<double>(s.period_s) / static_cast<double>(s.samples),
        series.max_ms);
    slow_commands = slow_commands || event == "command";
    fast_commands = fast_commands || event == "fast-command";
    fsync_always = fsync_always || event == "aof-fsync-always";
    disk = disk || event == "aof-write";
  }
  report += "\nHere is some advice for you:\n\n";
  if (slow_commands && (slowlog_threshold_us < 0 || slowlog_max_len == 0)) {
    report += fmt::format(
        "- There are latency issues with potentially slow commands you are using. Try to enable "
        "the Slow Log using the command 'CONFIG SET slowlog-log-slower-than {}'.\n",
        threshold_ms * 1000);
  } else if (slow_commands && slowlog_threshold_us / 1000 > threshold_ms) {
    report += fmt::format(
        "- Your current Slow Log configuration only logs events that are slower than your "
        "configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than "
        "{}'.\n",
        threshold_ms * 1000);
  }
  if (slow_commands) {
    report +=
        "- Check your Slow Log to understand what are the commands you are running which are too "
        "slow to execute (SLOWLOG GET).\n"
        "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a "
        "blocking operation. Avoid very large keys, or split them into smaller ones.\n";
  }
  if (fast_commands) {
    report +=
        "- The system is slow to execute code paths not containing system calls. This usually "
        "means the system does not provide Lattice CPU time to run for long periods. Check the "
        "scheduler, the load of the machine and its intrinsic latency (redis-cli "
        "--intrinsic-latency).\n";
  }
  if (fsync_always) {
    report +=
        "- Syncing the op log after every write (appendfsync always) is slow: consider "
        "appendfsync everysec.\n";
  }
  if (disk) {
    report +=
        "- Writes to the op log are slow: use a local disk (an SSD if you can) and keep other "
        "processes from contending for it.\n";
  }
  return report;
}

}  // namespace lattice::server
