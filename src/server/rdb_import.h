#pragma once
// Loads an RDB file (store/rdb_file.h) into a Server as ordinary local writes: every key is
// Keyspace::WriteVisible (as RESTORE), so the ops are logged and replicate to the shard's other
// regions like any client's writes, and every FUNCTION2 library is FUNCTION LOAD REPLACE'd
// (replicated through the system db). Used by `lattice-server --import-rdb FILE` and by a
// replica's full resync (REPLICAOF).
//
// A load is an RdbLoad job run in slices of a few milliseconds (Step), so that the event loop
// serves clients between them; DatasetLoading is the server's load in progress, which makes
// Execute answer -LOADING (server.cc) and INFO persistence show loading:1 with its progress, as
// Valkey while it loads its dataset.
//
// Nothing half-loaded: the file is read through once to check it (structure, values,
// checksum, database numbers) before the first write. Keys whose TTL has already passed are
// not loaded (as Valkey's loading as a primary), nor hash fields whose TTL has passed; keys of
// types Lattice does not hold (modules) are counted and logged, never dropped silently. A
// stream's consumer groups load with it (VisibleValue::stream_groups).
// Not thread-safe: the event-loop thread owns the Server.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/result.h"
#include "store/rdb_file.h"

namespace lattice::server {

class Server;

struct RdbImportSummary {
  RdbFileSummary file;
  std::map<std::string, uint64_t> loaded;  // keys written, by type name ("string", "hash", ...)
  uint64_t expired = 0;                    // keys whose TTL had passed: not written
  uint64_t functions_loaded = 0;
  std::vector<std::string> function_errors;  // libraries FUNCTION LOAD refused, with why
  std::string source_version;                // the writer's redis-ver / valkey-ver aux field
  double seconds = 0;
};

struct RdbImportOptions {
  // Refuse when any client-visible database holds a key (--import-rdb's rule).
  bool require_empty = true;
  // Called once the file is checked, before the first write (a replica's FLUSHALL).
  std::function<void()> on_write_start;
};

// kInvalid when a client-visible database of `server` holds a key (--import-rdb's rule).
Result<void> RequireEmpty(Server& server);

// One load of one file, in steps: a check pass over the whole file, then the load pass.
class RdbLoad {
 public:
  RdbLoad(Server& server, std::string bytes, RdbImportOptions options);
  ~RdbLoad();
  RdbLoad(const RdbLoad&) = delete;
  RdbLoad& operator=(const RdbLoad&) = delete;

  // Runs the load for about `budget_us` of the server's monotonic clock (at least one record).
  // True once done (summary() is whole), false while more remains. An error is final and comes
  // before anything was written: kCorrupt for a file that does not read, kInvalid when the
  // region is not empty (require_empty) or a key's database is beyond `databases`.
  Result<bool> Step(int64_t budget_us);
  uint64_t total_bytes() const { return bytes_.size(); }
  // Progress, in bytes of the file: the file is read twice (checked, then loaded), so this is
  // half the check pass's position plus half the load pass's.
  uint64_t loaded_bytes() const;
  // The file's used-mem aux field (what its writer held), 0 when it has none.
  uint64_t rdb_used_mem() const;
  const RdbImportSummary& summary() const { return summary_; }

 private:
  struct Passes;
  Result<bool> Finish();

  Server& server_;
  std::string bytes_;
  RdbImportOptions options_;
  std::unique_ptr<Passes> passes_;
  RdbImportSummary summary_;
  bool started_ = false;
  int64_t start_us_ = 0;
};

// The server's dataset load in progress (at most one): --import-rdb's file or a replica's full
// resync. While one is active the server is loading (Execute answers -LOADING to commands
// without Valkey's loading flag).
class DatasetLoading {
 public:
  using Done = std::function<void(const Result<RdbImportSummary>&)>;
  explicit DatasetLoading(const Server& server) : server_(server) {}

  bool active() const { return load_ != nullptr; }
  // Starts `load`; `done` runs once it ends. With a slice hook the hook is called, and the event
  // loop calls Slice() until it returns false; without one (unit tests, the simulator) the load
  // runs to its end here.
  void Start(std::unique_ptr<RdbLoad> load, Done done);
  // One slice of the load (about kSliceUs); false once it ended (or none was active).
  bool Slice();
  void set_slice_hook(std::function<void()> hook) { slice_hook_ = std::move(hook); }

  // INFO persistence while active: Valkey's loading_* fields, as (name, value).
  std::vector<std::pair<std::string, std::string>> InfoFields() const;

  static constexpr int64_t kSliceUs = 10'000;

 private:
  const Server& server_;
  std::unique_ptr<RdbLoad> load_;
  Done done_;
  std::function<void()> slice_hook_;
  int64_t start_ms_ = 0;  // wall clock
  int64_t start_us_ = 0;  // monotonic
};

// The summary as log lines: version, keys by type, skipped types with counts, functions, time.
std::vector<std::string> DescribeImport(const RdbImportSummary& summary);

}  // namespace lattice::server
