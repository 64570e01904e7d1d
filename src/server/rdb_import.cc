#include "server/rdb_import.h"

#include <chrono>
#include <utility>

#include "fmt/format.h"
#include "server/scripting/script_engine.h"
#include "server/server.h"
#include "spdlog/spdlog.h"

namespace lattice::server {
namespace {

// The check pass: counts, the writer's version, the highest database named.
class CheckSink final : public RdbFileSink {
 public:
  void Key(int db, std::string, VisibleValue) override { Db(db); }
  void Skipped(int db, std::string_view, std::string_view) override { Db(db); }
  void Function(std::string) override {}
  void Aux(std::string_view name, std::string_view value) override {
    if (name == "valkey-ver" || (name == "redis-ver" && version.empty())) version = value;
  }
  void Db(int db) { db_max = std::max(db_max, db); }

  int db_max = 0;
  std::string version;
};

class LoadSink final : public RdbFileSink {
 public:
  LoadSink(Server& server, const RdbImportOptions& options, RdbImportSummary& summary)
      : server_(server), options_(options), summary_(summary) {}

  void Key(int db, std::string key, VisibleValue value) override {
    const int64_t now_ms = server_.clock().NowMs();
    if (value.expiry_ms.has_value() && *value.expiry_ms <= now_ms) {
      ++summary_.expired;
      return;
    }
    if (value.type == crdt::ObjectType::kHash) {
      std::erase_if(value.hash, [now_ms](const VisibleValue::HashEntry& entry) {
        return entry.ttl_at_ms != 0 && entry.ttl_at_ms <= now_ms;
      });
      if (value.hash.empty()) {
        ++summary_.expired;
        return;
      }
    }
    server_.keyspace().WriteVisible(db, key, value, now_ms);
    ++summary_.loaded[std::string(TypeName(value.type))];
    if (++written_ % options_.batch == 0 && options_.on_batch) options_.on_batch();
  }

  void Skipped(int db, std::string_view key, std::string_view type) override {
    spdlog::warn("RDB import: key '{}' in db {} is a {}, a type Lattice does not hold: skipped",
                 key, db, type);
  }

  void Function(std::string code) override {
    Result<std::string> name =
        server_.scripting().LoadLibrary(code, /*replace=*/true, server_.clock().NowMs());
    if (name.ok()) {
      ++summary_.functions_loaded;
    } else {
      summary_.function_errors.push_back(name.error().message);
    }
  }

  void StreamGroups(int db, std::string_view key, RdbStreamGroups groups) override {
    if (ApplyStreamGroups(server_, db, key, groups, server_.clock().NowMs())) return;
    ++summary_.stream_groups_not_loaded;
    spdlog::warn(
        "RDB import: stream '{}' in db {} has {} consumer groups, which Lattice does not "
        "load yet: its entries are loaded, its groups are not",
        key, db, groups.size());
  }

  void Aux(std::string_view, std::string_view) override {}

 private:
  Server& server_;
  const RdbImportOptions& options_;
  RdbImportSummary& summary_;
  uint64_t written_ = 0;
};

}  // namespace

bool ApplyStreamGroups(Server& /*server*/, int /*db*/, std::string_view /*key*/,
                       const RdbStreamGroups& /*groups*/, int64_t /*now_ms*/) {
  return kStreamGroupsLoaded;  // nothing to apply them to yet
}

Result<RdbImportSummary> ImportRdb(Server& server, std::string_view bytes,
                                   const RdbImportOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  Keyspace& keyspace = server.keyspace();
  if (options.require_empty) {
    for (int db = 0; db < keyspace.databases(); ++db) {
      if (keyspace.Size(db) != 0) {
        return Unexpected(ErrorCode::kInvalid,
                          fmt::format("the region is not empty (db {} holds {} keys): an RDB "
                                      "file is imported only into an empty region",
                                      db, keyspace.Size(db)));
      }
    }
  }
  CheckSink check;
  Result<RdbFileSummary> checked = ReadRdbFile(bytes, check);
  if (!checked.ok()) return Unexpected(checked.error());
  if (check.db_max >= keyspace.databases()) {
    return Unexpected(ErrorCode::kInvalid,
                      fmt::format("the RDB file has keys in db {}, beyond the {} databases "
                                  "configured (databases)",
                                  check.db_max, keyspace.databases()));
  }
  RdbImportSummary summary;
  summary.source_version = check.version;
  LoadSink load(server, options, summary);
  Result<RdbFileSummary> loaded = ReadRdbFile(bytes, load);
  if (!loaded.ok()) return Unexpected(loaded.error());  // unreachable: the same bytes read
  summary.file = std::move(*loaded);
  if (options.on_batch) options.on_batch();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

std::vector<std::string> DescribeImport(const RdbImportSummary& summary) {
  std::vector<std::string> lines;
  const RdbFileSummary& file = summary.file;
  lines.push_back(fmt::format("RDB version {} ({}{}), {} bytes, checksum {}", file.version,
                              file.valkey_magic ? "Valkey" : "Redis",
                              summary.source_version.empty() ? "" : " " + summary.source_version,
                              file.bytes, file.checksummed ? "verified" : "absent"));
  uint64_t loaded = 0;
  std::string by_type;
  for (const auto& [type, count] : summary.loaded) {
    loaded += count;
    by_type += fmt::format("{}{}={}", by_type.empty() ? "" : " ", type, count);
  }
  lines.push_back(fmt::format("Loaded {} keys ({}) in {:.3f} s", loaded,
                              by_type.empty() ? "none" : by_type, summary.seconds));
  if (summary.expired != 0) {
    lines.push_back(fmt::format("Not loaded: {} keys already expired", summary.expired));
  }
  for (const auto& [type, count] : file.skipped) {
    lines.push_back(
        fmt::format("Skipped: {} keys of type {} (Lattice has no such type)", count, type));
  }
  if (summary.stream_groups_not_loaded != 0) {
    lines.push_back(
        fmt::format("Not loaded: the consumer groups of {} stream keys ({} groups; "
                    "Lattice does not hold consumer groups yet)",
                    summary.stream_groups_not_loaded, file.stream_groups));
  }
  if (file.module_aux != 0) {
    lines.push_back(fmt::format("Skipped: {} module aux records", file.module_aux));
  }
  if (file.functions != 0) {
    lines.push_back(fmt::format("Function libraries: {} loaded, {} refused",
                                summary.functions_loaded, summary.function_errors.size()));
  }
  for (const std::string& error : summary.function_errors) {
    lines.push_back("Function library refused: " + error);
  }
  return lines;
}

}  // namespace lattice::server
