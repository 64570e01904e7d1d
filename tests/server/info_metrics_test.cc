// InfoMetrics: Valkey's instantaneous rates (samples every 100 ms, mean of the last 16) and the
// used_memory peak.
#include "server/info_metrics.h"

#include <catch2/catch.hpp>

namespace lattice::server {
namespace {

TEST_CASE("instantaneous rates are the mean of the last 16 samples", "[info]") {
  InfoMetrics metrics(1000);
  CHECK(metrics.PerSecond(InfoMetrics::kCommands) == 0);
  metrics.Sample(0, {0, 0, 0});  // the baseline
  CHECK(metrics.PerSecond(InfoMetrics::kCommands) == 0);
  metrics.Sample(100, {50, 1024, 0});  // 500 commands/s, 10 KiB/s in
  CHECK(metrics.PerSecond(InfoMetrics::kCommands) == Approx(500));
  CHECK(metrics.PerSecond(InfoMetrics::kNetInputBytes) == Approx(10240));
  metrics.Sample(150, {1000, 1024, 0});  // under 100 ms since the last sample: ignored
  CHECK(metrics.PerSecond(InfoMetrics::kCommands) == Approx(500));
  metrics.Sample(200, {150, 1024, 0});  // 1000 commands/s
  CHECK(metrics.PerSecond(InfoMetrics::kCommands) == Approx(750));
  // After 16 samples at 0/s the early rates have left the window.
  for (int i = 1; i <= 16; ++i) {
    metrics.Sample(200 + 100 * i, {150, 1024, 0});
  }
  CHECK(metrics.PerSecond(InfoMetrics::kCommands) == 0);
  // A counter that went down (CONFIG RESETSTAT) counts as no growth, not a huge rate.
  metrics.Sample(2000, {0, 0, 0});
  CHECK(metrics.PerSecond(InfoMetrics::kCommands) == 0);
}

TEST_CASE("the memory peak only rises", "[info]") {
  InfoMetrics metrics(1000);
  CHECK(metrics.startup() == 1000);
  CHECK(metrics.peak() == 1000);
  CHECK(metrics.ObserveMemory(5000) == 5000);
  CHECK(metrics.ObserveMemory(3000) == 5000);
  CHECK(metrics.peak() == 5000);
}

}  // namespace
}  // namespace lattice::server
