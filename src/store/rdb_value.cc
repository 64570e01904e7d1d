#include "store/rdb_value.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "lattice/common/assert.h"
#include "store/listpack.h"
#include "store/rdb_stream.h"
#include "util/rdb.h"

namespace lattice::server {
namespace {

using crdt::ObjectType;

// RDB type bytes (Valkey's rdb.h).
enum RdbType : uint8_t {
  kString = 0,
  kList = 1,
  kSet = 2,
  kZSet = 3,
  kHash = 4,
  kZSet2 = 5,
  kHashZipmap = 9,
  kListZiplist = 10,
  kSetIntset = 11,
  kZSetZiplist = 12,
  kHashZiplist = 13,
  kListQuicklist = 14,
  kHashListpack = 16,
  kZSetListpack = 17,
  kListQuicklist2 = 18,
  kSetListpack = 20,
  kHash2 = 22,  // Valkey 9 (RDB 80): a hash whose fields carry their own expiry
};

constexpr uint64_t kStringMax = uint64_t{512} << 20;  // proto-max-bulk-len's default
constexpr uint64_t kQuicklistPlain = 1;               // a node holding one large element
constexpr uint64_t kQuicklistPacked = 2;              // a node holding a listpack

using Strings = std::vector<std::string>;

Unexpected Corrupt() { return Unexpected(ErrorCode::kCorrupt, "Bad data format"); }

// One ziplist entry's encoding and data at blob[pos] (after its prevlen).
bool ZiplistData(std::string_view blob, size_t pos, std::string* out, size_t* size) {
  const size_t left = blob.size() - pos;
  if (left < 1) return false;
  const auto e = static_cast<uint8_t>(blob[pos]);
  size_t header = 1;
  uint64_t text = 0;
  int int_bytes = 0;
  switch (e >> 6) {
    case 0:
      text = e & 0x3f;
      break;
    case 1:
      if (left < 2) return false;
      header = 2;
      text = ((e & 0x3fu) << 8) | static_cast<uint8_t>(blob[pos + 1]);
      break;
    case 2:
      if (e != 0x80 || left < 5) return false;
      header = 5;
      for (size_t i = 1; i <= 4; ++i) text = (text << 8) | static_cast<uint8_t>(blob[pos + i]);
      break;
    default:
      if (e >= 0xf1 && e <= 0xfd) {
        *out = std::to_string((e & 0x0f) - 1);
        *size = 1;
        return true;
      }
      int_bytes = e == 0xc0 ? 2 : e == 0xd0 ? 4 : e == 0xe0 ? 8 : e == 0xf0 ? 3 : e == 0xfe ? 1 : 0;
      if (int_bytes == 0) return false;
  }
  const size_t body = int_bytes != 0 ? static_cast<size_t>(int_bytes) : text;
  if (body > left - header) return false;
  if (int_bytes != 0) {
    *out = std::to_string(SignExtend(LoadLittleEndian(blob.substr(pos + 1, body)), 8 * int_bytes));
  } else {
    out->assign(blob.substr(pos + header, body));
  }
  *size = header + body;
  return true;
}

// A ziplist: total bytes (u32 LE), tail offset (u32), count (u16, 65535 = unknown), entries each
// behind its previous entry's length (1 byte, or 0xfe and 4 bytes), then 0xff.
bool ParseZiplist(std::string_view blob, Strings* out) {
  if (blob.size() < 11 || LoadLittleEndian(blob.substr(0, 4)) != blob.size() ||
      static_cast<uint8_t>(blob.back()) != 0xff) {
    return false;
  }
  const uint64_t count = LoadLittleEndian(blob.substr(8, 2));
  const std::string_view entries = blob.substr(0, blob.size() - 1);
  const size_t first = out->size();
  for (size_t pos = 10; pos < entries.size();) {
    const size_t prevlen = static_cast<uint8_t>(entries[pos]) == 0xfe ? 5 : 1;
    if (static_cast<uint8_t>(entries[pos]) == 0xff || prevlen > entries.size() - pos) return false;
    pos += prevlen;
    size_t size = 0;
    std::string value;
    if (!ZiplistData(entries, pos, &value, &size)) return false;
    out->push_back(std::move(value));
    pos += size;
  }
  return count == 65535 || count == out->size() - first;
}

// An intset: the integer width (u32 LE: 2, 4 or 8), the count (u32 LE), the integers (LE).
bool ParseIntset(std::string_view blob, Strings* out) {
  if (blob.size() < 8) return false;
  const uint64_t width = LoadLittleEndian(blob.substr(0, 4));
  const uint64_t count = LoadLittleEndian(blob.substr(4, 4));
  if ((width != 2 && width != 4 && width != 8) || (blob.size() - 8) / width != count ||
      (blob.size() - 8) % width != 0) {
    return false;
  }
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t raw = LoadLittleEndian(blob.substr(8 + i * width, width));
    out->push_back(std::to_string(SignExtend(raw, static_cast<int>(8 * width))));
  }
  return true;
}

// Valkey's string2d: the whole text, no NaN.
bool ParseScore(const std::string& text, double* out) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && !std::isnan(*out);
}

// `count` strings (each at least one byte, so a count beyond the input fails at once).
bool ReadStrings(RdbReader& in, uint64_t count, Strings* out) {
  if (count > in.remaining()) return false;
  out->reserve(out->size() + count);
  for (uint64_t i = 0; i < count; ++i) {
    std::string value;
    if (!in.String(&value, kStringMax)) return false;
    out->push_back(std::move(value));
  }
  return true;
}

// A string holding a packed container, parsed by `parse`.
template <typename Parse>
bool ReadPacked(RdbReader& in, Parse parse, Strings* out) {
  std::string blob;
  return in.String(&blob, kStringMax) && parse(blob, out);
}

bool ReadQuicklist(RdbReader& in, bool version2, Strings* out) {
  uint64_t nodes = 0;
  if (!in.Length(&nodes) || nodes > in.remaining()) return false;
  for (uint64_t i = 0; i < nodes; ++i) {
    uint64_t container = kQuicklistPacked;
    if (version2 && (!in.Length(&container) ||
                     (container != kQuicklistPlain && container != kQuicklistPacked))) {
      return false;
    }
    if (container == kQuicklistPlain) {
      if (!ReadStrings(in, 1, out)) return false;
    } else if (!ReadPacked(in, version2 ? ParseListpack : ParseZiplist, out)) {
      return false;
    }
  }
  return true;
}

// The plain sorted sets: member then score, as text (3: a length byte, 253 NaN, 254 +inf, 255
// -inf) or as a binary double (5).
bool ReadZSet(RdbReader& in, bool binary, VisibleValue* value) {
  uint64_t count = 0;
  if (!in.Length(&count) || count > in.remaining() / 2) return false;
  for (uint64_t i = 0; i < count; ++i) {
    std::string member;
    double score = 0;
    if (!in.String(&member, kStringMax)) return false;
    if (binary) {
      uint64_t raw = 0;
      if (!in.LittleEndian(8, &raw)) return false;
      std::memcpy(&score, &raw, sizeof score);
    } else {
      uint8_t len = 0;
      std::string_view text;
      if (!in.Byte(&len) || len == 253) return false;
      if (len >= 254) {
        score = len == 254 ? HUGE_VAL : -HUGE_VAL;
      } else if (!in.Take(len, &text) || !ParseScore(std::string(text), &score)) {
        return false;
      }
    }
    if (std::isnan(score)) return false;
    value->zset.emplace_back(std::move(member), score);
  }
  return true;
}

bool PairsToZSet(Strings flat, VisibleValue* value) {
  if (flat.size() % 2 != 0) return false;
  for (size_t i = 0; i < flat.size(); i += 2) {
    double score = 0;
    if (!ParseScore(flat[i + 1], &score)) return false;
    value->zset.emplace_back(std::move(flat[i]), score);
  }
  return true;
}

// Valkey 9's hash with field TTLs: the count, then each field, its value and its absolute
// expiry in ms (8 bytes little-endian, -1 for none).
bool ReadHash2(RdbReader& in, VisibleValue* value) {
  uint64_t count = 0;
  if (!in.Length(&count) || count > in.remaining() / 10) return false;
  for (uint64_t i = 0; i < count; ++i) {
    VisibleValue::HashEntry entry;
    uint64_t raw = 0;
    if (!in.String(&entry.field, kStringMax) || !in.String(&entry.value, kStringMax) ||
        !in.LittleEndian(8, &raw)) {
      return false;
    }
    const auto expiry = static_cast<int64_t>(raw);
    if (expiry != -1) entry.ttl_at_ms = std::max<int64_t>(expiry, 1);  // 0 here means none
    value->hash.push_back(std::move(entry));
  }
  return true;
}

bool PairsToHash(Strings flat, VisibleValue* value) {
  if (flat.size() % 2 != 0) return false;
  for (size_t i = 0; i < flat.size(); i += 2) {
    value->hash.push_back({std::move(flat[i]), std::move(flat[i + 1]), 0});
  }
  return true;
}

ObjectType TypeOf(uint8_t rdb_type) {
  switch (rdb_type) {
    case kString:
      return ObjectType::kString;
    case kList:
    case kListZiplist:
    case kListQuicklist:
    case kListQuicklist2:
      return ObjectType::kList;
    case kSet:
    case kSetIntset:
    case kSetListpack:
      return ObjectType::kSet;
    case kZSet:
    case kZSet2:
    case kZSetZiplist:
    case kZSetListpack:
      return ObjectType::kZSet;
    case kHash:
    case kHashZiplist:
    case kHashListpack:
    case kHash2:
      return ObjectType::kHash;
    case kRdbStreamListpacks:
    case kRdbStreamListpacks2:
    case kRdbStreamListpacks3:
      return ObjectType::kStream;
    default:
      return ObjectType::kNone;  // kHashZipmap, modules, functions
  }
}

bool ReadBody(RdbReader& in, uint8_t rdb_type, VisibleValue* value, RdbStreamGroups* groups) {
  uint64_t count = 0;
  Strings flat;
  switch (rdb_type) {
    case kString:
      return in.String(&value->string, kStringMax);
    case kList:
      return in.Length(&count) && ReadStrings(in, count, &value->list);
    case kListZiplist:
      return ReadPacked(in, ParseZiplist, &value->list);
    case kListQuicklist:
    case kListQuicklist2:
      return ReadQuicklist(in, rdb_type == kListQuicklist2, &value->list);
    case kSet:
      return in.Length(&count) && ReadStrings(in, count, &value->set);
    case kSetIntset:
      return ReadPacked(in, ParseIntset, &value->set);
    case kSetListpack:
      return ReadPacked(in, ParseListpack, &value->set);
    case kZSet:
    case kZSet2:
      return ReadZSet(in, rdb_type == kZSet2, value);
    case kZSetZiplist:
    case kZSetListpack:
      return ReadPacked(in, rdb_type == kZSetZiplist ? ParseZiplist : ParseListpack, &flat) &&
             PairsToZSet(std::move(flat), value);
    case kHash:
      return in.Length(&count) && count <= in.remaining() / 2 &&
             ReadStrings(in, 2 * count, &flat) && PairsToHash(std::move(flat), value);
    case kHashZiplist:
    case kHashListpack:
      return ReadPacked(in, rdb_type == kHashZiplist ? ParseZiplist : ParseListpack, &flat) &&
             PairsToHash(std::move(flat), value);
    case kHash2:
      return ReadHash2(in, value);
    case kRdbStreamListpacks:
    case kRdbStreamListpacks2:
    case kRdbStreamListpacks3:
      return ReadRdbStream(in, rdb_type, value, groups);
    default:
      return false;
  }
}

// Valkey refuses an empty collection in a payload (rdbLoadObject's empty keys).
bool Empty(const VisibleValue& value) {
  switch (value.type) {
    case ObjectType::kList:
      return value.list.empty();
    case ObjectType::kSet:
      return value.set.empty();
    case ObjectType::kZSet:
      return value.zset.empty();
    case ObjectType::kHash:
      return value.hash.empty();
    default:
      return false;
  }
}

void PutStrings(std::string& out, const Strings& strings) {
  RdbPutLength(out, strings.size());
  for (const std::string& s : strings) RdbPutString(out, s);
}

}  // namespace

bool HasFieldTtls(const VisibleValue& value) {
  return std::any_of(value.hash.begin(), value.hash.end(),
                     [](const VisibleValue::HashEntry& entry) { return entry.ttl_at_ms != 0; });
}

uint16_t RdbVersionFor(const VisibleValue& value) {
  if (HasFieldTtls(value)) return kFieldTtlRdbVersion;
  const bool stream3 =
      value.type == ObjectType::kStream &&
      RdbStreamTypeFor(RdbGroupsFromVisible(value.stream_groups)) == kRdbStreamListpacks3;
  return stream3 ? kStream3RdbVersion : kDumpRdbVersion;
}

std::string EncodeRdbValue(const VisibleValue& value) {
  std::string out;
  switch (value.type) {
    case ObjectType::kString:
      out.push_back(static_cast<char>(kString));
      RdbPutString(out, value.string);
      break;
    case ObjectType::kList:
      out.push_back(static_cast<char>(kList));
      PutStrings(out, value.list);
      break;
    case ObjectType::kSet:
      out.push_back(static_cast<char>(kSet));
      PutStrings(out, value.set);
      break;
    case ObjectType::kZSet:
      out.push_back(static_cast<char>(kZSet2));
      RdbPutLength(out, value.zset.size());
      for (const auto& [member, score] : value.zset) {
        RdbPutString(out, member);
        uint64_t raw = 0;
        std::memcpy(&raw, &score, sizeof raw);
        for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(raw >> (8 * i)));
      }
      break;
    case ObjectType::kHash: {
      const bool field_ttls = HasFieldTtls(value);
      out.push_back(static_cast<char>(field_ttls ? kHash2 : kHash));
      RdbPutLength(out, value.hash.size());
      for (const auto& entry : value.hash) {
        RdbPutString(out, entry.field);
        RdbPutString(out, entry.value);
        if (field_ttls) {
          const auto expiry = static_cast<uint64_t>(entry.ttl_at_ms != 0 ? entry.ttl_at_ms : -1);
          for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(expiry >> (8 * i)));
        }
      }
      break;
    }
    case ObjectType::kStream: {
      const RdbStreamGroups groups = RdbGroupsFromVisible(value.stream_groups);
      const uint8_t type = RdbStreamTypeFor(groups);
      out.push_back(static_cast<char>(type));
      PutRdbStream(out, value, groups, type);
      break;
    }
    case ObjectType::kNone:
      LATTICE_ASSERT(false);
  }
  return out;
}

bool RdbValueTypeKnown(uint8_t rdb_type) { return TypeOf(rdb_type) != ObjectType::kNone; }

bool ReadRdbValue(RdbReader& in, uint8_t rdb_type, VisibleValue* value, RdbStreamGroups* groups) {
  *value = VisibleValue{};
  value->type = TypeOf(rdb_type);
  RdbStreamGroups dropped;
  if (groups == nullptr) groups = &dropped;
  groups->clear();
  return value->type != ObjectType::kNone && ReadBody(in, rdb_type, value, groups) &&
         !Empty(*value);
}

Result<VisibleValue> DecodeRdbValue(std::string_view bytes, RdbStreamGroups* groups) {
  RdbReader in(bytes);
  uint8_t rdb_type = 0;
  VisibleValue value;
  if (!in.Byte(&rdb_type) || !ReadRdbValue(in, rdb_type, &value, groups) || !in.done()) {
    if (groups != nullptr) groups->clear();
    return Corrupt();
  }
  return value;
}

std::string EncodeDumpPayload(const VisibleValue& value) {
  return RdbSealPayload(EncodeRdbValue(value), RdbVersionFor(value));
}

Result<VisibleValue> DecodeDumpPayload(std::string_view payload, bool relaxed,
                                       RdbStreamGroups* groups) {
  Result<std::string_view> body = RdbOpenPayload(payload, relaxed);
  if (!body.ok()) return Unexpected(body.error());
  return DecodeRdbValue(*body, groups);
}

}  // namespace lattice::server
