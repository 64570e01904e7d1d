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

class FileReader {
 public:
  FileReader(std::string_view bytes, RdbFileSink& sink) : bytes_(bytes), in_(bytes), sink_(sink) {}

  Result<RdbFileSummary> Read() {
    summary_.bytes = bytes_.size();
    if (!Header()) return Fail();
    int db = 0;
    std::optional<int64_t> expiry;
    for (;;) {
      uint8_t type = 0;
      if (!Need(in_.Byte(&type), "truncated before the end-of-file marker")) return Fail();
      switch (type) {
        case RdbOp::kEof:
          if (!Footer()) return Fail();
          return std::move(summary_);
        case RdbOp::kSelectDb: {
          uint64_t index = 0;
          if (!Need(in_.Length(&index) && index < kDbMax, "bad SELECTDB")) return Fail();
          db = static_cast<int>(index);
          continue;
        }
        case RdbOp::kResizeDb: {
          uint64_t ignored = 0;
          if (!Need(in_.Length(&ignored) && in_.Length(&ignored), "bad RESIZEDB")) return Fail();
          continue;
        }
        case RdbOp::kSlotInfo: {
          uint64_t ignored = 0;
          if (!Need(in_.Length(&ignored) && in_.Length(&ignored) && in_.Length(&ignored),
                    "bad SLOT_INFO")) {
            return Fail();
          }
          continue;
        }
        case RdbOp::kExpireTimeMs:
        case RdbOp::kExpireTime: {
          uint64_t raw = 0;
          if (!Need(in_.LittleEndian(type == RdbOp::kExpireTime ? 4 : 8, &raw), "bad EXPIRETIME")) {
            return Fail();
          }
          expiry = type == RdbOp::kExpireTime ? static_cast<int64_t>(raw) * 1000
                                              : static_cast<int64_t>(raw);
          continue;
        }
        case RdbOp::kIdle: {
          uint64_t ignored = 0;
          if (!Need(in_.Length(&ignored), "bad IDLE")) return Fail();
          continue;
        }
        case RdbOp::kFreq: {
          uint8_t ignored = 0;
          if (!Need(in_.Byte(&ignored), "bad FREQ")) return Fail();
          continue;
        }
        case RdbOp::kAux: {
          std::string name;
          std::string value;
          if (!Need(in_.String(&name, kStringMax) && in_.String(&value, kStringMax), "bad AUX")) {
            return Fail();
          }
          sink_.Aux(name, value);
          continue;
        }
        case RdbOp::kFunction2: {
          std::string code;
          if (!Need(in_.String(&code, kStringMax), "bad FUNCTION2")) return Fail();
          ++summary_.functions;
          sink_.Function(std::move(code));
          continue;
        }
        case RdbOp::kModuleAux: {
          uint64_t module_id = 0;
          uint64_t when_opcode = 0;
          uint64_t when = 0;
          if (!Need(in_.Length(&module_id) && in_.Length(&when_opcode) &&
                        when_opcode == kModuleUint && in_.Length(&when) && SkipModuleElements(),
                    "bad MODULE_AUX")) {
            return Fail();
          }
          ++summary_.module_aux;
          continue;
        }
        default:
          if (!KeyValue(type, db, expiry)) return Fail();
          expiry.reset();
      }
    }
  }

 private:
  bool Need(bool ok, const char* what) {
    if (!ok && what_.empty()) what_ = what;
    return ok;
  }

  Unexpected Fail() const {
    return Unexpected(ErrorCode::kCorrupt,
                      "Bad RDB file at byte offset " + std::to_string(in_.pos()) + ": " + what_);
  }

  bool Header() {
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

  bool Footer() {
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

  bool KeyValue(uint8_t type, int db, std::optional<int64_t> expiry) {
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
  static std::string ModuleName(uint64_t id) {
    static constexpr char kCharset[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string name;
    for (int i = 0; i < 9; ++i) name.push_back(kCharset[(id >> (58 - 6 * i)) & 63]);
    return name;
  }

  bool SkipModuleElements() {
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

  std::string_view bytes_;
  RdbReader in_;
  RdbFileSink& sink_;
  RdbFileSummary summary_;
  std::string what_;
};

}  // namespace

Result<RdbFileSummary> ReadRdbFile(std::string_view bytes, RdbFileSink& sink) {
  return FileReader(bytes, sink).Read();
}

}  // namespace lattice::server
