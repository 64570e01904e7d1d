#include "server/rdb_import.h"

#include <charconv>
#include <optional>
#include <utility>

#include "fmt/format.h"
#include "lattice/common/assert.h"
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
    if (name == "used-mem") {
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), used_mem);
      if (ec != std::errc() || end != value.data() + value.size()) used_mem = 0;
    }
  }
  void Db(int db) { db_max = std::max(db_max, db); }

  int db_max = 0;
  std::string version;
  uint64_t used_mem = 0;
};

class LoadSink final : public RdbFileSink {
 public:
  LoadSink(Server& server, RdbImportSummary& summary) : server_(server), summary_(summary) {}

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

  void Aux(std::string_view, std::string_view) override {}

 private:
  Server& server_;
  RdbImportSummary& summary_;
};

}  // namespace

Result<void> RequireEmpty(Server& server) {
  Keyspace& keyspace = server.keyspace();
  for (int db = 0; db < keyspace.databases(); ++db) {
    if (keyspace.Size(db) != 0) {
      return Unexpected(ErrorCode::kInvalid,
                        fmt::format("the region is not empty (db {} holds {} keys): an RDB "
                                    "file is imported only into an empty region",
                                    db, keyspace.Size(db)));
    }
  }
  return {};
}

// The two passes over the file: the check (nothing written), then the load.
struct RdbLoad::Passes {
  Passes(Server& server, std::string_view bytes, RdbImportSummary& summary)
      : load(server, summary) {
    reader.emplace(bytes, check);
  }
  CheckSink check;
  LoadSink load;
  std::optional<RdbFileReader> reader;
  bool loading = false;    // in the load pass
  uint64_t check_end = 0;  // the check pass's last position
};

RdbLoad::RdbLoad(Server& server, std::string bytes, RdbImportOptions options)
    : server_(server), bytes_(std::move(bytes)), options_(std::move(options)) {
  passes_ = std::make_unique<Passes>(server_, bytes_, summary_);
}

RdbLoad::~RdbLoad() = default;

uint64_t RdbLoad::loaded_bytes() const {
  if (!passes_->loading) return passes_->reader->position() / 2;
  return (passes_->check_end + passes_->reader->position()) / 2;
}

uint64_t RdbLoad::rdb_used_mem() const { return passes_->check.used_mem; }

Result<bool> RdbLoad::Step(int64_t budget_us) {
  constexpr uint64_t kRecordsPerClockRead = 32;
  const Clock& clock = server_.clock();
  const int64_t now_us = clock.MonotonicUs();
  if (!started_) {
    started_ = true;
    start_us_ = now_us;
    if (options_.require_empty) {
      if (Result<void> empty = RequireEmpty(server_); !empty.ok()) return Unexpected(empty.error());
    }
  }
  const int64_t deadline_us = now_us + budget_us;
  do {
    Result<bool> done = passes_->reader->Step(kRecordsPerClockRead);
    if (!done.ok()) return Unexpected(done.error());
    if (*done) return Finish();
  } while (clock.MonotonicUs() < deadline_us);
  return false;
}

// The end of a pass: the check pass's end starts the load; the load's end is the end.
Result<bool> RdbLoad::Finish() {
  Passes& passes = *passes_;
  if (passes.loading) {
    summary_.file = passes.reader->summary();
    summary_.seconds = static_cast<double>(server_.clock().MonotonicUs() - start_us_) / 1e6;
    return true;
  }
  if (passes.check.db_max >= server_.keyspace().databases()) {
    return Unexpected(ErrorCode::kInvalid,
                      fmt::format("the RDB file has keys in db {}, beyond the {} databases "
                                  "configured (databases)",
                                  passes.check.db_max, server_.keyspace().databases()));
  }
  summary_.source_version = passes.check.version;
  passes.check_end = passes.reader->position();
  passes.loading = true;
  passes.reader.emplace(bytes_, passes.load);
  if (options_.on_write_start) options_.on_write_start();
  return false;
}

void DatasetLoading::Start(std::unique_ptr<RdbLoad> load, Done done) {
  LATTICE_ASSERT(!active());
  load_ = std::move(load);
  done_ = std::move(done);
  start_ms_ = server_.clock().NowMs();
  start_us_ = server_.clock().MonotonicUs();
  if (slice_hook_) {
    slice_hook_();
    return;
  }
  while (Slice()) {
  }
}

bool DatasetLoading::Slice() {
  if (!active()) return false;
  Result<bool> step = load_->Step(kSliceUs);
  if (step.ok() && !*step) return true;
  Result<RdbImportSummary> result = Unexpected(ErrorCode::kOther);
  if (step.ok()) {
    result = load_->summary();
  } else {
    result = Unexpected(step.error());
  }
  load_.reset();  // no longer loading when `done` runs (a replica applies its stream)
  Done done = std::move(done_);
  done_ = nullptr;
  done(result);
  return false;
}

std::vector<std::pair<std::string, std::string>> DatasetLoading::InfoFields() const {
  if (!active()) return {};
  const uint64_t total = load_->total_bytes();
  const uint64_t loaded = load_->loaded_bytes();
  const double perc =
      total == 0 ? 0 : static_cast<double>(loaded) / static_cast<double>(total) * 100;
  // Valkey's estimate: the elapsed seconds scaled by what remains (1 before a second passed).
  const int64_t elapsed_s = (server_.clock().MonotonicUs() - start_us_) / 1'000'000;
  const uint64_t remaining = total == 0 ? 1 : total - loaded;
  const int64_t eta_s = elapsed_s == 0 ? 1
                                       : static_cast<int64_t>(static_cast<double>(elapsed_s) *
                                                              static_cast<double>(remaining) /
                                                              static_cast<double>(loaded + 1));
  return {{"loading_start_time", std::to_string(start_ms_ / 1000)},
          {"loading_total_bytes", std::to_string(total)},
          {"loading_rdb_used_mem", std::to_string(load_->rdb_used_mem())},
          {"loading_loaded_bytes", std::to_string(loaded)},
          {"loading_loaded_perc", fmt::format("{:.2f}", perc)},
          {"loading_eta_seconds", std::to_string(eta_s)}};
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
  if (file.stream_groups != 0) {
    lines.push_back(fmt::format("Stream consumer groups: {} in {} stream keys", file.stream_groups,
                                file.stream_group_keys));
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
