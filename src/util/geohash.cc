#include "util/geohash.h"

#include <cmath>

namespace lattice::util::geo {
namespace {

constexpr double kEarthRadiusMeters = 6372797.560856;
constexpr double kMercatorMax = 20037726.37;
constexpr double kDegreesToRadians = M_PI / 180.0;
constexpr uint64_t kEvenBits = 0x5555555555555555ULL;  // latitude
constexpr uint64_t kOddBits = 0xaaaaaaaaaaaaaaaaULL;   // longitude

struct Range {
  double min = 0;
  double max = 0;
};
constexpr Range kLongitudes{kLongitudeMin, kLongitudeMax};
constexpr Range kLatitudes{kLatitudeMin, kLatitudeMax};

struct Area {
  Range longitude;
  Range latitude;
};

double Radians(double degrees) { return degrees * kDegreesToRadians; }
double Degrees(double radians) { return radians / kDegreesToRadians; }

// Spreads the 32 bits of `v` over the even bits of a 64-bit word.
uint64_t Spread(uint32_t v) {
  uint64_t x = v;
  x = (x | (x << 16)) & 0x0000FFFF0000FFFFULL;
  x = (x | (x << 8)) & 0x00FF00FF00FF00FFULL;
  x = (x | (x << 4)) & 0x0F0F0F0F0F0F0F0FULL;
  x = (x | (x << 2)) & 0x3333333333333333ULL;
  x = (x | (x << 1)) & kEvenBits;
  return x;
}

// The inverse of Spread: the even bits of `x`, packed.
uint32_t Gather(uint64_t x) {
  x &= kEvenBits;
  x = (x | (x >> 1)) & 0x3333333333333333ULL;
  x = (x | (x >> 2)) & 0x0F0F0F0F0F0F0F0FULL;
  x = (x | (x >> 4)) & 0x00FF00FF00FF00FFULL;
  x = (x | (x >> 8)) & 0x0000FFFF0000FFFFULL;
  x = (x | (x >> 16)) & 0x00000000FFFFFFFFULL;
  return static_cast<uint32_t>(x);
}

// The cell of `step` holding the point, over the given ranges (the point is valid). The offsets
// are truncated to integers as Valkey's conversion to uint32_t does.
Cell EncodeIn(const Range& longitudes, const Range& latitudes, const Point& point, int step) {
  const double scale = static_cast<double>(uint64_t{1} << step);
  const double lat = (point.latitude - latitudes.min) / (latitudes.max - latitudes.min) * scale;
  const double lon = (point.longitude - longitudes.min) / (longitudes.max - longitudes.min) * scale;
  return {Spread(static_cast<uint32_t>(lat)) | (Spread(static_cast<uint32_t>(lon)) << 1), step};
}

Area DecodeArea(const Cell& cell) {
  const uint32_t lat = Gather(cell.bits);
  const uint32_t lon = Gather(cell.bits >> 1);
  const double scale = static_cast<double>(uint64_t{1} << cell.step);
  const double lat_span = kLatitudes.max - kLatitudes.min;
  const double lon_span = kLongitudes.max - kLongitudes.min;
  Area area;
  area.latitude.min = kLatitudes.min + (lat * 1.0 / scale) * lat_span;
  area.latitude.max = kLatitudes.min + (static_cast<uint32_t>(lat + 1) * 1.0 / scale) * lat_span;
  area.longitude.min = kLongitudes.min + (lon * 1.0 / scale) * lon_span;
  area.longitude.max = kLongitudes.min + (static_cast<uint32_t>(lon + 1) * 1.0 / scale) * lon_span;
  return area;
}

// Moves a cell one step along the bits of `mask` (kOddBits: east/west, kEvenBits: north/south):
// the other axis's bits are filled with ones so that the carry crosses them.
Cell Move(Cell cell, uint64_t mask, int direction) {
  if (direction == 0) {
    return cell;
  }
  const int shift = 64 - cell.step * 2;
  uint64_t axis = cell.bits & mask;
  const uint64_t other = cell.bits & ~mask;
  const uint64_t fill = (~mask) >> shift;
  if (direction > 0) {
    axis += fill + 1;
  } else {
    axis = (axis | fill) - (fill + 1);
  }
  axis &= mask >> shift;
  return {axis | other, cell.step};
}

Cell Neighbour(const Cell& cell, int east, int north) {
  return Move(Move(cell, kOddBits, east), kEvenBits, north);
}

// Valkey's step estimate: halve the cell until it is about the radius, coarser near the poles.
int EstimateStep(double range_meters, double latitude) {
  if (range_meters == 0) {
    return kStepMax;
  }
  int step = 1;
  while (range_meters < kMercatorMax) {
    range_meters *= 2;
    ++step;
  }
  step -= 2;
  if (latitude > 66 || latitude < -66) {
    --step;
    if (latitude > 80 || latitude < -80) {
      --step;
    }
  }
  return step < 1 ? 1 : (step > kStepMax ? kStepMax : step);
}

// The shape's bounding box: the longitude span is taken at the latitude edge nearer a pole.
Area BoundingBox(const Shape& shape) {
  const double height = shape.to_meters * (shape.box ? shape.height / 2 : shape.radius);
  const double width = shape.to_meters * (shape.box ? shape.width / 2 : shape.radius);
  const double lon = shape.centre.longitude;
  const double lat = shape.centre.latitude;
  const double lat_delta = Degrees(height / kEarthRadiusMeters);
  const double top = Degrees(width / kEarthRadiusMeters / std::cos(Radians(lat + lat_delta)));
  const double bottom = Degrees(width / kEarthRadiusMeters / std::cos(Radians(lat - lat_delta)));
  const double lon_delta = lat < 0 ? bottom : top;
  return {{lon - lon_delta, lon + lon_delta}, {lat - lat_delta, lat + lat_delta}};
}

double LatitudeDistance(double lat1, double lat2) {
  return kEarthRadiusMeters * std::fabs(Radians(lat2) - Radians(lat1));
}

}  // namespace

bool ValidPosition(const Point& point) {
  return !(point.longitude < kLongitudeMin || point.longitude > kLongitudeMax ||
           point.latitude < kLatitudeMin || point.latitude > kLatitudeMax);
}

uint64_t Encode(const Point& point) {
  return EncodeIn(kLongitudes, kLatitudes, point, kStepMax).bits;
}

Point Decode(double score) {
  uint64_t bits = 0;
  if (score >= 0 && score < 18446744073709551616.0) {
    bits = static_cast<uint64_t>(score);
  } else if (score < 0 && score > -9223372036854775808.0) {
    bits = static_cast<uint64_t>(static_cast<int64_t>(score));
  } else {
    bits = uint64_t{1} << 63;  // what an x86 conversion yields for NaN and out-of-range values
  }
  const Area area = DecodeArea({bits, kStepMax});
  Point point{(area.longitude.min + area.longitude.max) / 2,
              (area.latitude.min + area.latitude.max) / 2};
  point.longitude = std::fmin(std::fmax(point.longitude, kLongitudeMin), kLongitudeMax);
  point.latitude = std::fmin(std::fmax(point.latitude, kLatitudeMin), kLatitudeMax);
  return point;
}

std::string GeohashText(const Point& point) {
  static constexpr char kAlphabet[] = "0123456789bcdefghjkmnpqrstuvwxyz";
  const Cell cell = EncodeIn({-180, 180}, {-90, 90}, point, kStepMax);
  std::string text(11, '0');
  for (int i = 0; i < 10; ++i) {
    text[i] = kAlphabet[(cell.bits >> (52 - (i + 1) * 5)) & 0x1f];
  }
  return text;  // 52 bits fill ten characters; the eleventh is always '0', as in Valkey
}

double Distance(const Point& a, const Point& b) {
  const double v = std::sin((Radians(b.longitude) - Radians(a.longitude)) / 2);
  if (v == 0.0) {
    return LatitudeDistance(a.latitude, b.latitude);
  }
  const double lat1 = Radians(a.latitude);
  const double lat2 = Radians(b.latitude);
  const double u = std::sin((lat2 - lat1) / 2);
  const double h = u * u + std::cos(lat1) * std::cos(lat2) * v * v;
  return 2.0 * kEarthRadiusMeters * std::asin(std::sqrt(h));
}

std::array<Cell, 9> SearchAreas(const Shape& shape) {
  const Area bounds = BoundingBox(shape);
  const double radius = (shape.box ? std::sqrt((shape.width / 2) * (shape.width / 2) +
                                               (shape.height / 2) * (shape.height / 2))
                                   : shape.radius) *
                        shape.to_meters;
  int step = EstimateStep(radius, shape.centre.latitude);
  Cell centre = EncodeIn(kLongitudes, kLatitudes, shape.centre, step);
  // Near a cell's edge the estimate can leave the box outside the nine cells: one step coarser.
  const bool too_fine = DecodeArea(Neighbour(centre, 0, 1)).latitude.max < bounds.latitude.max ||
                        DecodeArea(Neighbour(centre, 0, -1)).latitude.min > bounds.latitude.min ||
                        DecodeArea(Neighbour(centre, 1, 0)).longitude.max < bounds.longitude.max ||
                        DecodeArea(Neighbour(centre, -1, 0)).longitude.min > bounds.longitude.min;
  if (step > 1 && too_fine) {
    --step;
    centre = EncodeIn(kLongitudes, kLatitudes, shape.centre, step);
  }
  // Valkey's order: centre, N, S, E, W, NE, NW, SE, SW.
  static constexpr int kMoves[9][2] = {{0, 0}, {0, 1},  {0, -1}, {1, 0},  {-1, 0},
                                       {1, 1}, {-1, 1}, {1, -1}, {-1, -1}};
  std::array<Cell, 9> cells;
  for (int i = 0; i < 9; ++i) {
    cells[i] = Neighbour(centre, kMoves[i][0], kMoves[i][1]);
  }
  if (step >= 2) {  // drop the cells wholly outside the bounding box
    const Area area = DecodeArea(centre);
    for (int i = 1; i < 9; ++i) {
      const int east = kMoves[i][0];
      const int north = kMoves[i][1];
      if ((north < 0 && area.latitude.min < bounds.latitude.min) ||
          (north > 0 && area.latitude.max > bounds.latitude.max) ||
          (east < 0 && area.longitude.min < bounds.longitude.min) ||
          (east > 0 && area.longitude.max > bounds.longitude.max)) {
        cells[i] = Cell{};
      }
    }
  }
  return cells;
}

void ScoreRange(const Cell& cell, uint64_t* min, uint64_t* max) {
  const int shift = 52 - cell.step * 2;
  *min = cell.bits << shift;
  *max = (cell.bits + 1) << shift;
}

std::optional<std::pair<Point, double>> InShape(const Shape& shape, double score) {
  const Point point = Decode(score);
  if (!shape.box) {
    const double distance = Distance(shape.centre, point);
    if (distance > shape.radius * shape.to_meters) {
      return std::nullopt;
    }
    return std::make_pair(point, distance);
  }
  const double width = shape.width * shape.to_meters;
  const double height = shape.height * shape.to_meters;
  if (LatitudeDistance(point.latitude, shape.centre.latitude) > height / 2) {
    return std::nullopt;
  }
  if (Distance(point, {shape.centre.longitude, point.latitude}) > width / 2) {
    return std::nullopt;
  }
  return std::make_pair(point, Distance(shape.centre, point));
}

}  // namespace lattice::util::geo
