#pragma once
// A whole RDB file, as redis-server 2.6 to 7.2 and Valkey 7.2 to 9 write it (SAVE, BGSAVE, a
// primary's full resync), read into a stream of keys for an importer:
// - the header: "REDIS" and four digits (versions 1 to 12) or "VALKEY" and three (80, 81);
// - the opcodes: AUX (name and value, handed on), SELECTDB, RESIZEDB, EXPIRETIME (seconds) and
//   EXPIRETIME_MS before a key, IDLE/FREQ (the eviction hints: skipped), SLOT_INFO (skipped),
//   FUNCTION2 (a function library's code, handed on), MODULE_AUX (skipped, counted), EOF;
// - each key's value through store/rdb_value.h's ReadRdbValue (no second decoder), a stream's
//   consumer groups in its value, and again after its key; a module value (7) is parsed and
//   reported per key as skipped, with its type's name (its 9-character module name);
// - the trailing CRC-64 (version 5 and later; 0 means the writer had rdbchecksum off).
// Anything else (a truncated file, an unknown opcode or type, a value that does not decode, a
// checksum that does not match, bytes after the checksum) is refused with a kCorrupt error
// naming the byte offset where reading failed. The reader reports keys as it goes, so a caller
// that must load nothing of a corrupt file reads it twice: once to check (RdbCountingSink), then
// to load. RdbFileReader reads in steps of a few records (a large file loads in slices);
// ReadRdbFile reads it whole.
//
// Every length and count is checked against the bytes given; pure functions of the input (no
// clock: a key's expiry is handed on as the file says, and the caller judges it).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "lattice/common/result.h"
#include "store/keyspace.h"
#include "store/rdb_stream.h"
#include "util/rdb.h"

namespace lattice::server {

// Opcodes (Valkey's rdb.h), read here and written by store/rdb_writer.h; they share the type
// byte's place and count down from 255.
struct RdbOp {
  enum : uint8_t {
    kSlotInfo = 244,
    kFunction2 = 245,
    kModuleAux = 247,
    kIdle = 248,
    kFreq = 249,
    kAux = 250,
    kResizeDb = 251,
    kExpireTimeMs = 252,
    kExpireTime = 253,
    kSelectDb = 254,
    kEof = 255,
  };
};

// What an RDB file's reader hands on, in file order.
class RdbFileSink {
 public:
  virtual ~RdbFileSink() = default;
  // A key of a type Lattice holds; value.expiry_ms is the file's EXPIRETIME, if any.
  virtual void Key(int db, std::string key, VisibleValue value) = 0;
  // The consumer groups of the stream just handed to Key(), whose value holds them too, in RDB
  // form (only when it has some; counted in the summary).
  virtual void StreamGroups(int /*db*/, std::string_view /*key*/, RdbStreamGroups /*groups*/) {}
  // A key of a type Lattice does not hold ("module:<name>").
  virtual void Skipped(int db, std::string_view key, std::string_view type) = 0;
  // A function library (FUNCTION2): its code, as FUNCTION LOAD takes it.
  virtual void Function(std::string code) = 0;
  virtual void Aux(std::string_view name, std::string_view value) = 0;
};

struct RdbFileSummary {
  int version = 0;
  bool valkey_magic = false;                // "VALKEY" rather than "REDIS"
  uint64_t keys = 0;                        // handed to Key()
  uint64_t stream_group_keys = 0;           // of those, streams with consumer groups
  uint64_t stream_groups = 0;               // their groups, handed to StreamGroups()
  std::map<std::string, uint64_t> skipped;  // Skipped() by type name
  uint64_t functions = 0;
  uint64_t module_aux = 0;   // MODULE_AUX records skipped
  bool checksummed = false;  // a non-zero CRC-64 was checked
  uint64_t bytes = 0;
};

// Reads one RDB file in steps, so that a caller can load a large file in slices between other
// work (server/rdb_import.h's RdbLoad serves clients between them). `bytes` and `sink` must
// outlive the reader.
class RdbFileReader {
 public:
  RdbFileReader(std::string_view bytes, RdbFileSink& sink);

  // Reads up to `records` more records (a key, or an opcode such as SELECTDB or AUX): true once
  // the end of the file (and its checksum) is read, false when more remains. An error is final:
  // the reader is not stepped again.
  Result<bool> Step(uint64_t records);
  size_t position() const { return in_.pos(); }  // bytes read so far
  const RdbFileSummary& summary() const { return summary_; }

 private:
  bool Need(bool ok, const char* what);
  Unexpected Fail() const;
  bool Header();
  bool Footer();
  bool Record(uint8_t type);
  bool Auxiliary(uint8_t type);
  bool KeyValue(uint8_t type, int db, std::optional<int64_t> expiry);
  static std::string ModuleName(uint64_t id);
  bool SkipModuleElements();
  bool Lengths(int count);

  std::string_view bytes_;
  RdbReader in_;
  RdbFileSink& sink_;
  RdbFileSummary summary_;
  std::string what_;  // why reading failed
  bool started_ = false;
  int db_ = 0;                     // the last SELECTDB
  std::optional<int64_t> expiry_;  // the EXPIRETIME before the next key
};

// Reads the whole of `bytes` (one RDB file, nothing after it) into `sink`.
Result<RdbFileSummary> ReadRdbFile(std::string_view bytes, RdbFileSink& sink);

// A sink that keeps nothing: for checking a file before loading it.
class RdbCountingSink : public RdbFileSink {
 public:
  void Key(int, std::string, VisibleValue) override {}
  void Skipped(int, std::string_view, std::string_view) override {}
  void Function(std::string) override {}
  void Aux(std::string_view, std::string_view) override {}
};

}  // namespace lattice::server
