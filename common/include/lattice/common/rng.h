#pragma once
// Rng is a small, fast, seedable pseudo-random generator (xoshiro256**, seeded through
// splitmix64; Blackman and Vigna 2018). Every random choice in crdt/ tests, replication/ and
// sim/ comes from an Rng built from a seed that the caller passes in and prints, so any run
// replays bit for bit. Never seeded from a clock or std::random_device inside the libraries.
// Not thread-safe: one Rng per thread or per simulated actor.

#include <cstdint>

#include "lattice/common/assert.h"

namespace lattice {

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t x = seed;
    for (auto& word : state_) {
      word = SplitMix64(x);
    }
  }

  uint64_t Next() {
    const uint64_t result = Rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, bound), bound > 0. Lemire's multiply-shift; the tiny bias is irrelevant here.
  uint64_t Uniform(uint64_t bound) {
    LATTICE_ASSERT(bound > 0);
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * bound) >> 64);
  }

  // Uniform in [low, high], low <= high.
  int64_t Range(int64_t low, int64_t high) {
    LATTICE_ASSERT(low <= high);
    const uint64_t span = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
    if (span == UINT64_MAX) {
      return static_cast<int64_t>(Next());
    }
    return static_cast<int64_t>(static_cast<uint64_t>(low) + Uniform(span + 1));
  }

  // True with probability numerator/denominator.
  bool Chance(uint64_t numerator, uint64_t denominator) { return Uniform(denominator) < numerator; }

  // Uniform in [0, 1).
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  // A new generator whose stream is independent of this one's future output.
  Rng Fork() { return Rng(Next()); }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t SplitMix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  uint64_t state_[4];
};

}  // namespace lattice
