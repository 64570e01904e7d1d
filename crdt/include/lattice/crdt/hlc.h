#pragma once
// Hybrid logical clock (Kulkarni, Demirbas et al., "Logical physical clocks", 2014). A timestamp
// is 64 bits: physical milliseconds in the high 48 bits, a logical counter in the low 16, so
// timestamps compare as integers and stay close to wall time. Every op takes Now(); every remote
// timestamp passes through Update() so that later local ops order after what was observed.
// Last-writer-wins orders by (hlc, replica id): see Stamp in causal.h.
//
// The clock never reads time: the caller passes physical_ms in. A remote timestamp more than
// max_drift_ms ahead of the local physical clock is refused with an error (and not absorbed),
// so one region with a bad clock cannot drag every other region's clock into the future. The
// bound is the wall clock, never the clock's own last timestamp: otherwise remotes each a little
// ahead of the last one would ratchet it forward without limit. wall_ms() is the latest physical
// time the owner passed in (Now, SetWall), for owners that observe a remote without a reading
// of their own at hand (Keyspace::ApplyRemote).
// One HlcClock per replica; not thread-safe. Invariant: Now() is strictly increasing.

#include <cstdint>

#include "lattice/common/result.h"

namespace lattice::crdt {

inline constexpr int kHlcLogicalBits = 16;
inline constexpr uint64_t kHlcLogicalMask = (uint64_t{1} << kHlcLogicalBits) - 1;

constexpr uint64_t MakeHlc(uint64_t physical_ms, uint64_t logical) {
  return (physical_ms << kHlcLogicalBits) | (logical & kHlcLogicalMask);
}
constexpr uint64_t HlcPhysicalMs(uint64_t hlc) { return hlc >> kHlcLogicalBits; }
constexpr uint64_t HlcLogical(uint64_t hlc) { return hlc & kHlcLogicalMask; }

class HlcClock {
 public:
  explicit HlcClock(uint64_t max_drift_ms = 60'000) : max_drift_ms_(max_drift_ms) {}

  // A timestamp for a local event, greater than every timestamp issued or observed so far.
  uint64_t Now(uint64_t physical_ms);

  // Observes a remote timestamp. Returns the new local time, or an error (and leaves the clock
  // unchanged) when the remote is more than max_drift_ms ahead of physical_ms.
  Result<uint64_t> Update(uint64_t remote, uint64_t physical_ms);
  // The current wall time, without an event (the bound Update(remote, wall_ms()) uses).
  void SetWall(uint64_t physical_ms) { wall_ms_ = physical_ms; }
  uint64_t wall_ms() const { return wall_ms_; }

  uint64_t last() const { return last_; }
  uint64_t max_drift_ms() const { return max_drift_ms_; }
  uint64_t drift_rejections() const { return drift_rejections_; }

 private:
  uint64_t Advance(uint64_t floor, uint64_t physical_ms);

  uint64_t last_ = 0;
  uint64_t wall_ms_ = 0;
  uint64_t max_drift_ms_;
  uint64_t drift_rejections_ = 0;
};

}  // namespace lattice::crdt
