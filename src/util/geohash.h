#pragma once
// Geohash arithmetic for the geo commands, as Valkey's geo.c computes it, so that scores,
// positions, distances and search results match redis-server bit for bit.
//
// A position is a 52-bit interleaved geohash (26 bits of latitude in the even bits, 26 bits of
// longitude in the odd bits) over longitudes [-180, 180] and latitudes [-85.05112878,
// 85.05112878] (the Web Mercator limits); Valkey stores it as a sorted-set score, which a double
// holds exactly. Distances are haversine on a sphere of radius 6372797.560856 m.
//
// A search (radius or box) covers the query with the geohash cell of the centre and its eight
// neighbours at a step chosen from the radius (SearchAreas); the callers scan each cell's score
// range [min, max) in the order of Cells() and keep the points that InShape accepts.
//
// Pure functions; thread-safe.

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace lattice::util::geo {

inline constexpr double kLongitudeMin = -180;
inline constexpr double kLongitudeMax = 180;
inline constexpr double kLatitudeMin = -85.05112878;
inline constexpr double kLatitudeMax = 85.05112878;
inline constexpr int kStepMax = 26;  // 52 bits

struct Point {
  double longitude = 0;
  double latitude = 0;
};

// A geohash cell: `bits` holds 2*step interleaved bits. step 0 marks an unused cell.
struct Cell {
  uint64_t bits = 0;
  int step = 0;
  bool used() const { return bits != 0 || step != 0; }
  friend bool operator==(const Cell&, const Cell&) = default;
};

// True when the pair is inside the indexable range (GEOADD's check).
bool ValidPosition(const Point& point);
// The 52-bit score of a valid position.
uint64_t Encode(const Point& point);
// The centre of the 52-bit cell `score` names (a score is converted as Valkey's (uint64_t)).
Point Decode(double score);
// Valkey's GEOHASH text: 11 characters of the standard [-90, 90] geohash of the position.
std::string GeohashText(const Point& point);
// Haversine distance in metres.
double Distance(const Point& a, const Point& b);

// A search shape: a circle of `radius` or a box of width x height, in units of `to_meters`.
struct Shape {
  Point centre;
  bool box = false;
  double radius = 0;
  double width = 0;
  double height = 0;
  double to_meters = 1;
};

// The nine cells to scan for `shape` (centre, N, S, E, W, NE, NW, SE, SW), unused ones zeroed.
std::array<Cell, 9> SearchAreas(const Shape& shape);
// The score range [min, max) of a cell's points.
void ScoreRange(const Cell& cell, uint64_t* min, uint64_t* max);
// Whether the point of `score` is inside `shape`; its position and distance (metres) from the
// centre when it is.
std::optional<std::pair<Point, double>> InShape(const Shape& shape, double score);

}  // namespace lattice::util::geo
