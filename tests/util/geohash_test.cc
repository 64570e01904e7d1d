// Tests of the geohash arithmetic against the values Valkey's documentation shows for its
// GEOADD/GEOPOS/GEODIST/GEOHASH examples (Palermo and Catania), and of the search cells'
// invariants: every point inside a shape lies in one of the nine cells, for seeded random shapes.

#include "util/geohash.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <string>

#include "lattice/common/rng.h"

namespace lattice::util::geo {
namespace {

constexpr Point kPalermo{13.361389, 38.115556};
constexpr Point kCatania{15.087269, 37.502669};

std::string Fixed(double value, const char* format) {
  char text[64];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

TEST_CASE("scores are Valkey's 52-bit geohashes", "[geohash]") {
  CHECK(Encode(kPalermo) == 3479099956230698ULL);
  CHECK(Encode(kCatania) == 3479447370796909ULL);
  CHECK(ValidPosition({180, 85.05112878}));
  CHECK_FALSE(ValidPosition({180.0001, 0}));
  CHECK_FALSE(ValidPosition({0, -85.06}));
}

TEST_CASE("decoded positions are the cell centres Valkey prints", "[geohash]") {
  const Point palermo = Decode(3479099956230698.0);
  CHECK(Fixed(palermo.longitude, "%.17f").substr(0, 19) == "13.3613893389701843");
  CHECK(Fixed(palermo.latitude, "%.17f").substr(0, 19) == "38.1155563954962985");
}

TEST_CASE("distances and geohash text match Valkey's examples", "[geohash]") {
  const Point a = Decode(static_cast<double>(Encode(kPalermo)));
  const Point b = Decode(static_cast<double>(Encode(kCatania)));
  CHECK(Fixed(Distance(a, b), "%.4f") == "166274.1516");
  CHECK(Fixed(Distance(a, b) / 1000, "%.4f") == "166.2742");
  CHECK(Distance(a, b) == Distance(b, a));
  CHECK(Distance(a, a) == 0);
  CHECK(GeohashText(a) == "sqc8b49rny0");
  CHECK(GeohashText(b) == "sqdtr74hyu0");
}

TEST_CASE("the nine cells cover every point inside a random shape", "[geohash]") {
  const uint64_t seed = GENERATE(1, 2, 3, 4, 5);
  Rng rng(seed);
  INFO("seed " << seed);
  for (int round = 0; round < 200; ++round) {
    Shape shape;
    shape.centre = {rng.NextDouble() * 360 - 180, rng.NextDouble() * 160 - 80};
    shape.box = rng.Uniform(2) == 1;
    shape.radius = std::pow(10.0, rng.NextDouble() * 6);
    shape.width = std::pow(10.0, rng.NextDouble() * 6);
    shape.height = std::pow(10.0, rng.NextDouble() * 6);
    const auto cells = SearchAreas(shape);
    for (int i = 0; i < 50; ++i) {
      const double spread = shape.box ? std::max(shape.width, shape.height) : shape.radius;
      const double degrees = spread / 111000.0;
      Point p{shape.centre.longitude + (rng.NextDouble() * 2 - 1) * degrees,
              shape.centre.latitude + (rng.NextDouble() * 2 - 1) * degrees};
      if (!ValidPosition(p)) {
        continue;
      }
      const uint64_t score = Encode(p);
      if (!InShape(shape, static_cast<double>(score)).has_value()) {
        continue;
      }
      bool covered = false;
      for (const Cell& cell : cells) {
        uint64_t min = 0;
        uint64_t max = 0;
        if (cell.used()) {
          ScoreRange(cell, &min, &max);
          covered = covered || (score >= min && score < max);
        }
      }
      // Valkey's cells can miss points near the antimeridian and the poles; elsewhere they cover.
      if (std::fabs(shape.centre.longitude) < 150 && std::fabs(shape.centre.latitude) < 60) {
        CHECK(covered);
      }
    }
  }
}

}  // namespace
}  // namespace lattice::util::geo
