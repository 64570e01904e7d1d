#pragma once
// TurnClock is the Clock a Node hands to its Server and Cluster: it passes reads through to the
// seam's clock, except that while caching (production's event loop, net/loop_turn.h) the wall
// clock is read once per event-loop turn: the first read of a turn caches it and asks for the
// end of the turn (on_first_read), whose handler calls Forget(). So every command of a turn sees
// one time, as a command and a Lua script see one time in Valkey, and a turn pays for one clock
// read instead of one per command. The monotonic clock is never cached: it measures durations
// (command statistics, a script's busy time) that end inside the turn.
//
// Not thread-safe: the event-loop thread (or the simulator) owns it, with the Node.

#include <cstdint>
#include <functional>
#include <optional>
#include <utility>

#include "store/clock.h"

namespace lattice::server {

class TurnClock final : public Clock {
 public:
  explicit TurnClock(const Clock& source) : source_(source) {}

  // Caching on: `on_first_read` runs at the first wall-clock read after each Forget(). Null:
  // caching off (every read goes to the source).
  void set_caching(std::function<void()> on_first_read) {
    on_first_read_ = std::move(on_first_read);
    cached_us_.reset();
  }
  // The turn ended: the next wall-clock read reads the source again.
  void Forget() { cached_us_.reset(); }

  int64_t NowMs() const override { return NowUs() / 1000; }
  int64_t NowUs() const override {
    if (!on_first_read_) return source_.NowUs();
    if (!cached_us_.has_value()) {
      cached_us_ = source_.NowUs();
      on_first_read_();
    }
    return *cached_us_;
  }
  int64_t MonotonicUs() const override { return source_.MonotonicUs(); }

 private:
  const Clock& source_;
  std::function<void()> on_first_read_;
  mutable std::optional<int64_t> cached_us_;
};

}  // namespace lattice::server
