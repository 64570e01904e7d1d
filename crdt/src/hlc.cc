#include "lattice/crdt/hlc.h"

#include <algorithm>
#include <string>

namespace lattice::crdt {

// The smallest timestamp > floor that is >= the physical clock. The logical counter carries into
// the millisecond field when it would overflow, which keeps timestamps strictly increasing.
uint64_t HlcClock::Advance(uint64_t floor, uint64_t physical_ms) {
  last_ = std::max(floor + 1, MakeHlc(physical_ms, 0));
  return last_;
}

uint64_t HlcClock::Now(uint64_t physical_ms) {
  wall_ms_ = physical_ms;
  return Advance(last_, physical_ms);
}

Result<uint64_t> HlcClock::Update(uint64_t remote, uint64_t physical_ms) {
  wall_ms_ = physical_ms;
  if (HlcPhysicalMs(remote) > physical_ms + max_drift_ms_) {
    ++drift_rejections_;
    return Unexpected(ErrorCode::kInvalid, "remote HLC " + std::to_string(HlcPhysicalMs(remote)) +
                                               "ms is more than " + std::to_string(max_drift_ms_) +
                                               "ms ahead of local clock " +
                                               std::to_string(physical_ms) + "ms");
  }
  return Advance(std::max(last_, remote), physical_ms);
}

}  // namespace lattice::crdt
