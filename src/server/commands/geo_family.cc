// The geo command family: GEOADD, GEODIST, GEOHASH, GEOPOS, GEOSEARCH, GEOSEARCHSTORE and the
// GEORADIUS* forms, over sorted sets.
//
// A geo set is a sorted set whose scores are 52-bit geohashes (util/geohash.h), as in Valkey: no
// new CRDT type. GEOADD is a ZADD of encoded scores (ZAddScores), the *STORE forms a zset store
// (ZStoreScores), so the sorted set's merge rules carry over unchanged (docs/semantics.md).
//
// A search walks the nine geohash cells of util::geo::SearchAreas in Valkey's order, each cell a
// score range of the OrderIndex, and keeps the points inside the shape; unsorted replies come in
// that walk order, sorted ones by a stable sort on distance, so replies match redis-server.
// Parsing follows Valkey's geo.c, including the order in which errors are detected.

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/commands/keyword_keys.h"
#include "server/server.h"
#include "util/geohash.h"

namespace lattice::server {
namespace {

namespace geo = util::geo;

constexpr std::string_view kNoMember = "ERR could not decode requested zset member";

// One point found by a search.
struct Hit {
  std::string member;
  double score = 0;
  geo::Point point;
  double distance = 0;  // metres until the reply converts it
};

// The zset at `key` for a read: nullptr when missing; nullopt after replying WRONGTYPE.
std::optional<const crdt::SortedSet*> ReadGeoSet(CommandContext& ctx, std::string_view key) {
  Result<KeyRef> found = ctx.Read(key, crdt::ObjectType::kZSet);
  if (!found.ok()) {
    ctx.reply.Error(errors::kWrongType);
    return std::nullopt;
  }
  return *found == nullptr ? nullptr : &(*found)->zset();
}

// Valkey's extractUnitOrReply: metres per unit, or nullopt after replying the error.
std::optional<double> ParseUnit(CommandContext& ctx, std::string_view unit) {
  if (EqualsIgnoreCase(unit, "m")) return 1;
  if (EqualsIgnoreCase(unit, "km")) return 1000;
  if (EqualsIgnoreCase(unit, "ft")) return 0.3048;
  if (EqualsIgnoreCase(unit, "mi")) return 1609.34;
  ctx.reply.Error("ERR unsupported unit provided. please use M, KM, FT, MI");
  return std::nullopt;
}

bool ParseDoubleOrReply(CommandContext& ctx, std::string_view text, double* value,
                        std::string_view error = errors::kNotFloat) {
  if (ParseDouble(text, value)) {
    return true;
  }
  ctx.reply.Error(error);
  return false;
}

// Valkey's extractLongLatOrReply over args[0] (longitude) and args[1] (latitude).
bool ParsePoint(CommandContext& ctx, ArgList args, geo::Point* point) {
  if (!ParseDoubleOrReply(ctx, args[0], &point->longitude) ||
      !ParseDoubleOrReply(ctx, args[1], &point->latitude)) {
    return false;
  }
  if (!geo::ValidPosition(*point)) {
    char text[256];
    std::snprintf(text, sizeof(text), "ERR invalid longitude,latitude pair %f,%f", point->longitude,
                  point->latitude);
    ctx.reply.Error(text);
    return false;
  }
  return true;
}

// The position of `member`, if it is in the set.
std::optional<geo::Point> MemberPoint(const crdt::SortedSet& zset, std::string_view member) {
  const std::optional<double> score = zset.Score(std::string(member));
  if (!score.has_value()) {
    return std::nullopt;
  }
  return geo::Decode(*score);
}

// Valkey's fixed four decimals for distances.
std::string FormatDistance(double distance) {
  char text[128];
  const int length = std::snprintf(text, sizeof(text), "%.4f", distance);
  return std::string(text, static_cast<size_t>(length));
}

// Valkey's "human" long double text for coordinates: %.17Lf without trailing zeros.
std::string FormatCoordinate(double value) {
  char text[128];
  int length = std::snprintf(text, sizeof(text), "%.17Lf", static_cast<long double>(value));
  if (std::string_view(text, static_cast<size_t>(length)).find('.') != std::string_view::npos) {
    while (text[length - 1] == '0') {
      --length;
    }
    if (text[length - 1] == '.') {
      --length;
    }
  }
  if (length == 2 && text[0] == '-' && text[1] == '0') {
    return "0";
  }
  return std::string(text, static_cast<size_t>(length));
}

void ReplyCoordinate(ReplyBuilder& reply, double value) {
  const std::string text = FormatCoordinate(value);
  if (reply.protocol() == Protocol::kResp2) {
    reply.Bulk(text);
    return;
  }
  std::string* out = reply.buffer();  // a RESP3 double in the same text (no shortest form)
  out->push_back(',');
  out->append(text);
  out->append("\r\n");
}

// ---- the search ------------------------------------------------------------------------------

// Appends the points of one cell's score range inside `shape`, in score order.
void ScanCell(const crdt::SortedSet& zset, const geo::Cell& cell, const geo::Shape& shape,
              size_t limit, std::vector<Hit>* hits) {
  uint64_t min = 0;
  uint64_t max = 0;
  geo::ScoreRange(cell, &min, &max);
  const crdt::OrderIndex& index = zset.index();
  const size_t first = index.CountBelow(static_cast<double>(min), /*inclusive=*/false);
  const size_t last = index.CountBelow(static_cast<double>(max), /*inclusive=*/false);
  if (first >= last) {
    return;
  }
  for (auto& [score, member] : index.Range(first, last - first)) {
    if (auto inside = geo::InShape(shape, score)) {
      hits->push_back({std::move(member), score, inside->first, inside->second});
    }
    if (limit != 0 && hits->size() >= limit) {
      return;
    }
  }
}

// Valkey's membersOfAllNeighbors: the cells in order, a cell equal to the one scanned just
// before skipped (huge radii make neighbours coincide), stopping at `limit` hits (0: none).
std::vector<Hit> Search(const crdt::SortedSet& zset, const geo::Shape& shape, size_t limit) {
  const std::array<geo::Cell, 9> cells = geo::SearchAreas(shape);
  std::vector<Hit> hits;
  size_t last_scanned = 0;  // as in Valkey, 0 (the centre) never counts as "just before"
  for (size_t i = 0; i < cells.size(); ++i) {
    if (!cells[i].used()) {
      continue;
    }
    if (last_scanned != 0 && cells[i] == cells[last_scanned]) {
      continue;
    }
    if (limit != 0 && hits.size() >= limit) {
      break;
    }
    ScanCell(zset, cells[i], shape, limit, &hits);
    last_scanned = i;
  }
  return hits;
}

// ---- GEOSEARCH and the GEORADIUS forms -------------------------------------------------------

enum SearchFlag : uint32_t {
  kFromCoords = 1U << 0,  // GEORADIUS: key lon lat radius unit
  kFromMember = 1U << 1,  // GEORADIUSBYMEMBER: key member radius unit
  kNoStore = 1U << 2,     // the _RO forms
  kSearch = 1U << 3,      // GEOSEARCH syntax
  kSearchStore = 1U << 4  // GEOSEARCHSTORE
};

enum class Order { kNone, kAsc, kDesc };

struct SearchRequest {
  geo::Shape shape;
  bool with_dist = false;
  bool with_hash = false;
  bool with_coord = false;
  bool any = false;
  int64_t count = 0;  // 0: no limit
  Order order = Order::kNone;
  std::optional<std::string_view> store;
  bool store_dist = false;
  bool from_member = false;
  bool from_point = false;
  bool by_radius = false;
  bool by_box = false;
};

// BYRADIUS / the GEORADIUS radius: args[0] radius, args[1] unit.
bool ParseRadius(CommandContext& ctx, ArgList args, geo::Shape* shape) {
  double radius = 0;
  if (!ParseDoubleOrReply(ctx, args[0], &radius, "ERR need numeric radius")) {
    return false;
  }
  if (radius < 0) {
    ctx.reply.Error("ERR radius cannot be negative");
    return false;
  }
  const std::optional<double> unit = ParseUnit(ctx, args[1]);
  if (!unit.has_value()) {
    return false;
  }
  shape->box = false;
  shape->radius = radius;
  shape->to_meters = *unit;
  return true;
}

// BYBOX: args[0] width, args[1] height, args[2] unit.
bool ParseBox(CommandContext& ctx, ArgList args, geo::Shape* shape) {
  double width = 0;
  double height = 0;
  if (!ParseDoubleOrReply(ctx, args[0], &width, "ERR need numeric width") ||
      !ParseDoubleOrReply(ctx, args[1], &height, "ERR need numeric height")) {
    return false;
  }
  if (height < 0 || width < 0) {
    ctx.reply.Error("ERR height or width cannot be negative");
    return false;
  }
  const std::optional<double> unit = ParseUnit(ctx, args[2]);
  if (!unit.has_value()) {
    return false;
  }
  shape->box = true;
  shape->width = width;
  shape->height = height;
  shape->to_meters = *unit;
  return true;
}

// The leading arguments of GEORADIUS / GEORADIUSBYMEMBER; false after replying an error.
bool ParseRadiusHead(CommandContext& ctx, ArgList args, uint32_t flags, const crdt::SortedSet* zset,
                     SearchRequest* req) {
  if (flags & kFromCoords) {
    return ParsePoint(ctx, args.subspan(2, 2), &req->shape.centre) &&
           ParseRadius(ctx, args.subspan(4, 2), &req->shape);
  }
  if (zset == nullptr) {
    return true;  // parse the options anyway, to choose the empty reply
  }
  const std::optional<geo::Point> centre = MemberPoint(*zset, args[2]);
  if (!centre.has_value()) {
    ctx.reply.Error(kNoMember);
    return false;
  }
  req->shape.centre = *centre;
  return ParseRadius(ctx, args.subspan(3, 2), &req->shape);
}

// One option at args[i] (advancing i past its operands); false after replying an error.
bool ParseSearchOption(CommandContext& ctx, ArgList args, size_t& i, uint32_t flags,
                       const crdt::SortedSet* zset, SearchRequest* req) {
  const std::string_view arg = args[i];
  const size_t left = args.size() - i - 1;  // operands available after the option
  const bool search = (flags & kSearch) != 0;
  const bool can_store = !(flags & kNoStore) && !search;
  if (EqualsIgnoreCase(arg, "withdist")) {
    req->with_dist = true;
  } else if (EqualsIgnoreCase(arg, "withhash")) {
    req->with_hash = true;
  } else if (EqualsIgnoreCase(arg, "withcoord")) {
    req->with_coord = true;
  } else if (EqualsIgnoreCase(arg, "any")) {
    req->any = true;
  } else if (EqualsIgnoreCase(arg, "asc")) {
    req->order = Order::kAsc;
  } else if (EqualsIgnoreCase(arg, "desc")) {
    req->order = Order::kDesc;
  } else if (EqualsIgnoreCase(arg, "count") && left >= 1) {
    if (!ParseInt64(args[i + 1], &req->count)) {
      ctx.reply.Error(errors::kNotInteger);
      return false;
    }
    if (req->count <= 0) {
      ctx.reply.Error("ERR COUNT must be > 0");
      return false;
    }
    i += 1;
  } else if ((EqualsIgnoreCase(arg, "store") || EqualsIgnoreCase(arg, "storedist")) && left >= 1 &&
             can_store) {
    req->store = args[i + 1];
    req->store_dist = EqualsIgnoreCase(arg, "storedist");
    i += 1;
  } else if (EqualsIgnoreCase(arg, "storedist") && (flags & kSearchStore)) {
    req->store_dist = true;
  } else if (EqualsIgnoreCase(arg, "frommember") && left >= 1 && search && !req->from_point) {
    if (zset != nullptr) {
      const std::optional<geo::Point> centre = MemberPoint(*zset, args[i + 1]);
      if (!centre.has_value()) {
        ctx.reply.Error(kNoMember);
        return false;
      }
      req->shape.centre = *centre;
    }
    req->from_member = true;
    i += 1;
  } else if (EqualsIgnoreCase(arg, "fromlonlat") && left >= 2 && search && !req->from_member) {
    if (!ParsePoint(ctx, args.subspan(i + 1, 2), &req->shape.centre)) {
      return false;
    }
    req->from_point = true;
    i += 2;
  } else if (EqualsIgnoreCase(arg, "byradius") && left >= 2 && search && !req->by_box) {
    if (!ParseRadius(ctx, args.subspan(i + 1, 2), &req->shape)) {
      return false;
    }
    req->by_radius = true;
    i += 2;
  } else if (EqualsIgnoreCase(arg, "bybox") && left >= 3 && search && !req->by_radius) {
    if (!ParseBox(ctx, args.subspan(i + 1, 3), &req->shape)) {
      return false;
    }
    req->by_box = true;
    i += 3;
  } else {
    ctx.reply.Error(errors::kSyntax);
    return false;
  }
  return true;
}

// The checks Valkey makes after the options, in its order.
bool CheckSearchRequest(CommandContext& ctx, ArgList args, uint32_t flags,
                        const SearchRequest& req) {
  if (req.store.has_value() && (req.with_dist || req.with_hash || req.with_coord)) {
    ctx.reply.Error(std::string("ERR ") +
                    ((flags & kSearchStore) ? "GEOSEARCHSTORE" : "STORE option in GEORADIUS") +
                    " is not compatible with WITHDIST, WITHHASH and WITHCOORD options");
    return false;
  }
  if ((flags & kSearch) && !(req.from_member || req.from_point)) {
    ctx.reply.Error("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for " +
                    std::string(args[0]));
    return false;
  }
  if ((flags & kSearch) && !(req.by_radius || req.by_box)) {
    ctx.reply.Error("ERR exactly one of BYRADIUS and BYBOX can be specified for " +
                    std::string(args[0]));
    return false;
  }
  if (req.any && req.count == 0) {
    ctx.reply.Error("ERR the ANY argument requires COUNT argument");
    return false;
  }
  return true;
}

void ReplyHits(ReplyBuilder& reply, const SearchRequest& req, const std::vector<Hit>& hits,
               size_t returned) {
  const size_t extras =
      (req.with_dist ? 1 : 0) + (req.with_hash ? 1 : 0) + (req.with_coord ? 1 : 0);
  reply.Array(returned);
  for (size_t i = 0; i < returned; ++i) {
    const Hit& hit = hits[i];
    if (extras != 0) {
      reply.Array(extras + 1);
    }
    reply.Bulk(hit.member);
    if (req.with_dist) {
      reply.Bulk(FormatDistance(hit.distance / req.shape.to_meters));
    }
    if (req.with_hash) {
      reply.Integer(static_cast<int64_t>(hit.score));
    }
    if (req.with_coord) {
      reply.Array(2);
      ReplyCoordinate(reply, hit.point.longitude);
      ReplyCoordinate(reply, hit.point.latitude);
    }
  }
}

void StoreHits(CommandContext& ctx, const SearchRequest& req, const std::vector<Hit>& hits,
               size_t returned) {
  std::vector<std::pair<double, std::string>> items;
  items.reserve(returned);
  for (size_t i = 0; i < returned; ++i) {
    const double distance = hits[i].distance / req.shape.to_meters;
    items.emplace_back(req.store_dist ? distance : hits[i].score, hits[i].member);
  }
  ZStoreScores(ctx, *req.store, items);
  ctx.reply.Integer(static_cast<int64_t>(returned));
}

// Runs the parsed search on an existing set and replies (or stores).
void RunSearch(CommandContext& ctx, const crdt::SortedSet& zset, SearchRequest& req) {
  if (req.count != 0 && req.order == Order::kNone && !req.any) {
    req.order = Order::kAsc;  // COUNT alone means the nearest
  }
  std::vector<Hit> hits = Search(zset, req.shape, req.any ? static_cast<size_t>(req.count) : 0);
  if (hits.empty() && !req.store.has_value()) {
    ctx.reply.Array(0);
    return;
  }
  if (req.order == Order::kAsc) {
    std::stable_sort(hits.begin(), hits.end(),
                     [](const Hit& a, const Hit& b) { return a.distance < b.distance; });
  } else if (req.order == Order::kDesc) {
    std::stable_sort(hits.begin(), hits.end(),
                     [](const Hit& a, const Hit& b) { return a.distance > b.distance; });
  }
  const size_t returned =
      req.count == 0 ? hits.size() : std::min(hits.size(), static_cast<size_t>(req.count));
  if (req.store.has_value()) {
    StoreHits(ctx, req, hits, returned);
  } else {
    ReplyHits(ctx.reply, req, hits, returned);
  }
}

// Valkey's georadiusGeneric: `source` is the index of the source key.
void GeoSearchCommand(CommandContext& ctx, ArgList args, size_t source, uint32_t flags) {
  const std::optional<const crdt::SortedSet*> zset = ReadGeoSet(ctx, args[source]);
  if (!zset.has_value()) {
    return;
  }
  SearchRequest req;
  size_t first_option = 2;
  if (flags & (kFromCoords | kFromMember)) {
    if (!ParseRadiusHead(ctx, args, flags, *zset, &req)) {
      return;
    }
    first_option = (flags & kFromCoords) ? 6 : 5;
  } else if (flags & kSearchStore) {
    first_option = 3;
    req.store = args[1];
  }
  for (size_t i = first_option; i < args.size(); ++i) {
    if (!ParseSearchOption(ctx, args, i, flags, *zset, &req)) {
      return;
    }
  }
  if (!CheckSearchRequest(ctx, args, flags, req)) {
    return;
  }
  if ((flags & kSearchStore) == 0 && req.store.has_value() &&
      !DestinationInSourceSlot(ctx, args[source], *req.store)) {
    return;
  }
  if (*zset == nullptr) {
    if (req.store.has_value()) {
      ctx.keyspace().Delete(ctx.db(), *req.store, ctx.now_ms);
      ctx.reply.Integer(0);
    } else {
      ctx.reply.Array(0);
    }
    return;
  }
  RunSearch(ctx, **zset, req);
}

void CmdGeoRadius(CommandContext& ctx, ArgList args) {
  GeoSearchCommand(ctx, args, 1, kFromCoords);
}
void CmdGeoRadiusByMember(CommandContext& ctx, ArgList args) {
  GeoSearchCommand(ctx, args, 1, kFromMember);
}
void CmdGeoRadiusRo(CommandContext& ctx, ArgList args) {
  GeoSearchCommand(ctx, args, 1, kFromCoords | kNoStore);
}
void CmdGeoRadiusByMemberRo(CommandContext& ctx, ArgList args) {
  GeoSearchCommand(ctx, args, 1, kFromMember | kNoStore);
}
void CmdGeoSearch(CommandContext& ctx, ArgList args) { GeoSearchCommand(ctx, args, 1, kSearch); }
void CmdGeoSearchStore(CommandContext& ctx, ArgList args) {
  GeoSearchCommand(ctx, args, 2, kSearch | kSearchStore);
}

// ---- GEOADD, GEODIST, GEOHASH, GEOPOS --------------------------------------------------------

void CmdGeoAdd(CommandContext& ctx, ArgList args) {
  bool nx = false;
  bool xx = false;
  bool ch = false;
  size_t i = 2;
  for (; i < args.size(); ++i) {
    bool* flag = EqualsIgnoreCase(args[i], "nx")   ? &nx
                 : EqualsIgnoreCase(args[i], "xx") ? &xx
                 : EqualsIgnoreCase(args[i], "ch") ? &ch
                                                   : nullptr;
    if (flag == nullptr) {
      break;
    }
    *flag = true;
  }
  if ((args.size() - i) % 3 != 0 || (nx && xx) || i == args.size()) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  std::vector<std::pair<double, std::string>> pairs;
  pairs.reserve((args.size() - i) / 3);
  for (; i < args.size(); i += 3) {
    geo::Point point;
    if (!ParsePoint(ctx, args.subspan(i, 2), &point)) {
      return;
    }
    pairs.emplace_back(static_cast<double>(geo::Encode(point)), std::string(args[i + 2]));
  }
  ZAddScores(ctx, args[1], nx, xx, ch, pairs);
}

void CmdGeoDist(CommandContext& ctx, ArgList args) {
  double to_meters = 1;
  if (args.size() == 5) {
    const std::optional<double> unit = ParseUnit(ctx, args[4]);
    if (!unit.has_value()) {
      return;
    }
    to_meters = *unit;
  } else if (args.size() > 5) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  const std::optional<const crdt::SortedSet*> zset = ReadGeoSet(ctx, args[1]);
  if (!zset.has_value()) {
    return;
  }
  const std::optional<geo::Point> a =
      *zset == nullptr ? std::nullopt : MemberPoint(**zset, args[2]);
  const std::optional<geo::Point> b =
      *zset == nullptr ? std::nullopt : MemberPoint(**zset, args[3]);
  if (!a.has_value() || !b.has_value()) {
    ctx.reply.Null();
    return;
  }
  ctx.reply.Bulk(FormatDistance(geo::Distance(*a, *b) / to_meters));
}

// GEOHASH and GEOPOS: one entry per member, `missing` for a member not in the set.
template <typename Reply, typename Missing>
void ForEachMemberPoint(CommandContext& ctx, ArgList args, Reply reply, Missing missing) {
  const std::optional<const crdt::SortedSet*> zset = ReadGeoSet(ctx, args[1]);
  if (!zset.has_value()) {
    return;
  }
  ctx.reply.Array(args.size() - 2);
  for (size_t i = 2; i < args.size(); ++i) {
    const std::optional<geo::Point> point =
        *zset == nullptr ? std::nullopt : MemberPoint(**zset, args[i]);
    if (point.has_value()) {
      reply(*point);
    } else {
      missing();
    }
  }
}

void CmdGeoHash(CommandContext& ctx, ArgList args) {
  ForEachMemberPoint(
      ctx, args, [&](const geo::Point& point) { ctx.reply.Bulk(geo::GeohashText(point)); },
      [&] { ctx.reply.Null(); });
}

void CmdGeoPos(CommandContext& ctx, ArgList args) {
  ForEachMemberPoint(
      ctx, args,
      [&](const geo::Point& point) {
        ctx.reply.Array(2);
        ReplyCoordinate(ctx.reply, point.longitude);
        ReplyCoordinate(ctx.reply, point.latitude);
      },
      [&] { ctx.reply.NullArray(); });
}

}  // namespace

void RegisterGeoFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr KeySpec kOne{.first = 1, .last = 1, .step = 1};
  constexpr uint32_t kRead = kAclRead | kAclGeo;
  constexpr uint32_t kWriteAcl = kAclWrite | kAclGeo;
  const auto add = [&](std::string_view name, int arity, uint32_t flags, KeySpec keys,
                       uint32_t acl, CommandHandler handler, std::string_view since,
                       std::string_view summary, std::string_view complexity) {
    registry.Add({.name = name, .arity = arity, .flags = flags, .keys = keys, .acl = acl,
                  .handler = handler, .group = "geo", .summary = summary, .since = since,
                  .complexity = complexity});
  };
  add("geoadd", -5, kWrite | kDenyOom, kOne, kWriteAcl | kAclSlow, &CmdGeoAdd, "3.2.0",
      "Adds one or more members to a geospatial index. The key is created if it doesn't exist.",
      "O(log(N)) for each item added, where N is the number of elements in the sorted set.");
  add("geodist", -4, kReadOnly, kOne, kRead | kAclSlow, &CmdGeoDist, "3.2.0",
      "Returns the distance between two members of a geospatial index.", "O(1)");
  add("geohash", -2, kReadOnly, kOne, kRead | kAclSlow, &CmdGeoHash, "3.2.0",
      "Returns members from a geospatial index as geohash strings.", "O(1) for each member requested.");
  add("geopos", -2, kReadOnly, kOne, kRead | kAclSlow, &CmdGeoPos, "3.2.0",
      "Returns the longitude and latitude of members from a geospatial index.",
      "O(1) for each member requested.");
  add("georadius", -6, kWrite | kDenyOom, kOne, kWriteAcl | kAclSlow, &CmdGeoRadius, "3.2.0",
      "Queries a geospatial index for members within a distance from a coordinate, optionally "
      "stores the result.", "O(N+log(M)) where N is the number of elements inside the bounding "
      "box of the circular area delimited by center and radius and M is the number of items "
      "inside the index.");
  add("georadiusbymember", -5, kWrite | kDenyOom, kOne, kWriteAcl | kAclSlow,
      &CmdGeoRadiusByMember, "3.2.0",
      "Queries a geospatial index for members within a distance from a member, optionally "
      "stores the result.", "O(N+log(M)) where N is the number of elements inside the bounding "
      "box of the circular area delimited by center and radius and M is the number of items "
      "inside the index.");
  add("georadius_ro", -6, kReadOnly, kOne, kRead | kAclSlow, &CmdGeoRadiusRo, "3.2.10",
      "Returns members from a geospatial index that are within a distance from a coordinate.",
      "O(N+log(M)) where N is the number of elements inside the bounding box of the circular "
      "area delimited by center and radius and M is the number of items inside the index.");
  add("georadiusbymember_ro", -5, kReadOnly, kOne, kRead | kAclSlow, &CmdGeoRadiusByMemberRo,
      "3.2.10", "Returns members from a geospatial index that are within a distance from a "
      "member.", "O(N+log(M)) where N is the number of elements inside the bounding box of the "
      "circular area delimited by center and radius and M is the number of items inside the "
      "index.");
  add("geosearch", -7, kReadOnly, kOne, kRead | kAclSlow, &CmdGeoSearch, "6.2.0",
      "Queries a geospatial index for members inside an area of a box or a circle.",
      "O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area "
      "around the shape provided as the filter and M is the number of items inside the shape");
  add("geosearchstore", -8, kWrite | kDenyOom, KeySpec{.first = 1, .last = 2, .step = 1},
      kWriteAcl | kAclSlow, &CmdGeoSearchStore, "6.2.0",
      "Queries a geospatial index for members inside an area of a box or a circle, optionally "
      "stores the result.", "O(N+log(M)) where N is the number of elements in the grid-aligned "
      "bounding box area around the shape provided as the filter and M is the number of items "
      "inside the shape");
  // clang-format on
}

}  // namespace lattice::server
