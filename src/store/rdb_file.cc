#include "store/rdb_file.h"

#include <optional>
#include <string>
#include <utility>

#include "store/rdb_value.h"
#include "util/rdb.h"

namespace lattice::server {
namespace {

// The value type read here rather than by rdb_value: parsed to its end, then skipped.
constexpr uint8_t kModule2 = 7;

// Module values' self-describing elements (RDB_TYPE_MODULE_2 and MODULE_AUX).
enum ModuleOpcode : uint64_t {
  kModuleEof = 0,
  kModuleSint = 1,
  kModuleUint = 2,
  kModuleFloat = 3,
  kModuleDouble = 4,
  kModuleString = 5,
};

constexpr uint64_t kStringMax = uint64_t{512} << 20;
constexpr int kDbMax = 1 << 20;  // a SELECTDB beyond any configured databases is refused later

}  // namespace

RdbFileReader::RdbFileReader(std::string_view bytes, RdbFileSink& sink)
    : bytes_(bytes), in_(bytes), sink_(sink) {
  summary_.bytes = bytes_.size();
}

Result<bool> RdbFileReader::Step(uint64_t records) {
  if (!started_) {
    started_ = true;
    if (!Header()) return Fail();
  }
  for (uint64_t read = 0; read < records; ++read) {
    uint8_t type = 0;
    if (!Need(in_.Byte(&type), "truncated before the end-of-file marker")) return Fail();
    if (type == RdbOp::kEof) {
      if (!Footer()) return Fail();
      return true;
    }
    if (!Record(type)) return Fail();
  }
  return false;
}

bool RdbFileReader::Record(uint8_t type) {
  switch (type) {
    case RdbOp::kSelectDb: {
      uint64_t index = 0;
      if (!Need(in_.Length(&index) && index < kDbMax, "bad SELECTDB")) return false;
      db_ = static_cast<int>(index);
      return true;
    }
    case RdbOp::kResizeDb:
      return Need(Lengths(2), "bad RESIZEDB");
    case RdbOp::kSlotInfo:
      return Need(Lengths(3), "bad SLOT_INFO");
    case RdbOp::kExpireTimeMs:
    case RdbOp::kExpireTime: {
      uint64_t raw = 0;
      if (!Need(in_.LittleEndian(type == RdbOp::kExpireTime ? 4 : 8, &raw), "bad EXPIRETIME")) {
        return false;
      }
      expiry_ =
          type == RdbOp::kExpireTime ? static_cast<int64_t>(raw) * 1000 : static_cast<int64_t>(raw);
      return true;
    }
    case RdbOp::kIdle:
      return Need(Lengths(1), "bad IDLE");
    case RdbOp::kFreq: {
      uint8_t ignored = 0;
      return Need(in_.Byte(&ignored), "bad FREQ");
    }
    case RdbOp::kAux:
    case RdbOp::kFunction2:
    case RdbOp::kModuleAux:
      return Auxiliary(type);
    default: {
      const bool read = KeyValue(type, db_, expiry_);
      expiry_.reset();
      return read;
    }
  }
}

// The records that are not keys and carry data: AUX, FUNCTION2, MODULE_AUX.
bool RdbFileReader::Auxiliary(uint8_t type) {
  if (type == RdbOp::kAux) {
    std::string name;
    std::string value;
    if (!Need(in_.String(&name, kStringMax) && in_.String(&value, kStringMax), "bad AUX")) {
      return false;
    }
    sink_.Aux(name, value);
    return true;
  }
  if (type == RdbOp::kFunction2) {
    std::string code;
    if (!Need(in_.String(&code, kStringMax), "bad FUNCTION2")) return false;
    ++summary_.functions;
    sink_.Function(std::move(code));
    return true;
  }
  uint64_t module_id = 0;
  uint64_t when_opcode = 0;
  uint64_t when = 0;
  if (!Need(in_.Length(&module_id) && in_.Length(&when_opcode) && when_opcode == kModuleUint &&
                in_.Length(&when) && SkipModuleElements(),
            "bad MODULE_AUX")) {
    return false;
  }
  ++summary_.module_aux;
  return true;
}

bool RdbFileReader::Need(bool ok, const char* what) {
  if (!ok && what_.empty()) what_ = what;
  return ok;
}

Unexpected RdbFileReader::Fail() const {
  return Unexpected(ErrorCode::kCorrupt,
                    "Bad RDB file at byte offset " + std::to_string(in_.pos()) + ": " + what_);
}

bool RdbFileReader::Header() {
  std::string_view magic;
  std::string_view digits;
  if (bytes_.starts_with("REDIS")) {
    if (!in_.Take(5, &magic) || !in_.Take(4, &digits)) return Need(false, "truncated header");
  } else if (bytes_.starts_with("VALKEY")) {
    summary_.valkey_magic = true;
    if (!in_.Take(6, &magic) || !in_.Take(3, &digits)) return Need(false, "truncated header");
  } else {
    return Need(false, "not an RDB file (no REDIS or VALKEY magic)");
  }
  int version = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return Need(false, "bad RDB version");
    version = version * 10 + (c - '0');
  }
  const bool known =
      summary_.valkey_magic ? version >= 80 && version <= 81 : version >= 1 && version <= 12;
  summary_.version = version;
  return Need(known, "unsupported RDB version");
}

bool RdbFileReader::Footer() {
  if (summary_.version < 5) return Need(in_.done(), "bytes after the end-of-file marker");
  const size_t covered = in_.pos();
  uint64_t expected = 0;
  if (!in_.LittleEndian(8, &expected)) return Need(false, "truncated checksum");
  if (expected != 0) {
    summary_.checksummed = true;
    if (Crc64(0, bytes_.substr(0, covered)) != expected) return Need(false, "checksum mismatch");
  }
  return Need(in_.done(), "bytes after the checksum");
}

bool RdbFileReader::KeyValue(uint8_t type, int db, std::optional<int64_t> expiry) {
  std::string key;
  if (!Need(in_.String(&key, kStringMax), "bad key")) return false;
  if (RdbValueTypeKnown(type)) {
    VisibleValue value;
    RdbStreamGroups groups;
    if (!Need(ReadRdbValue(in_, type, &value, &groups), "bad value")) return false;
    value.expiry_ms = expiry;
    ++summary_.keys;
    if (groups.empty()) {
      sink_.Key(db, std::move(key), std::move(value));
      return true;
    }
    ++summary_.stream_group_keys;
    summary_.stream_groups += groups.size();
    sink_.Key(db, key, std::move(value));
    sink_.StreamGroups(db, key, std::move(groups));
    return true;
  }
  std::string name;
  if (type == kModule2) {
    uint64_t module_id = 0;
    if (!Need(in_.Length(&module_id) && SkipModuleElements(), "bad module value")) return false;
    name = "module:" + ModuleName(module_id);
  } else {
    what_ = "unknown value type " + std::to_string(type);
    return false;
  }
  ++summary_.skipped[name];
  sink_.Skipped(db, key, name);
  return true;
}

// A module id is the module's 9-character name (6 bits each from the top) and a 10-bit
// encoding version.
std::string RdbFileReader::ModuleName(uint64_t id) {
  static constexpr char kCharset[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string name;
  for (int i = 0; i < 9; ++i) name.push_back(kCharset[(id >> (58 - 6 * i)) & 63]);
  return name;
}

bool RdbFileReader::SkipModuleElements() {
  for (;;) {
    uint64_t opcode = 0;
    uint64_t ignored = 0;
    std::string_view raw;
    std::string text;
    if (!in_.Length(&opcode)) return false;
    switch (opcode) {
      case kModuleEof:
        return true;
      case kModuleSint:
      case kModuleUint:
        if (!in_.Length(&ignored)) return false;
        break;
      case kModuleFloat:
        if (!in_.Take(4, &raw)) return false;
        break;
      case kModuleDouble:
        if (!in_.Take(8, &raw)) return false;
        break;
      case kModuleString:
        if (!in_.String(&text, kStringMax)) return false;
        break;
      default:
        return false;
    }
  }
}

bool RdbFileReader::Lengths(int count) {
  uint64_t ignored = 0;
  for (int i = 0; i < count; ++i) {
    if (!in_.Length(&ignored)) return false;
  }
  return true;
}

Result<RdbFileSummary> ReadRdbFile(std::string_view bytes, RdbFileSink& sink) {
  RdbFileReader reader(bytes, sink);
  Result<bool> done = reader.Step(UINT64_MAX);
  if (!done.ok()) return Unexpected(done.error());
  return reader.summary();
}

}  // namespace lattice::server
