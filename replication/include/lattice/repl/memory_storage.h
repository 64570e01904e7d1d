#pragma once
// MemoryStorage is a Storage held in memory that models what survives a crash, for tests and the
// simulator (leveldb's in-memory and fault-injecting Env). Each file keeps its bytes and how many
// of them are durable: Append adds volatile bytes, Sync makes them durable, and Crash() drops every
// volatile byte of every file, as a power cut drops the page cache. OpenAppend, WriteAtomically,
// Remove and Truncate are durable at once, as FileStorage makes them (it syncs the directory).
//
// After a crash the AppendFiles opened before it are dead: every call on them fails, as the
// process that held them is gone. Reopen with OpenAppend.
//
// Faults are injected explicitly, never at random inside: CrashTorn takes the caller's Rng,
// FailWrites makes writes fail as a full disk does, CrashInNextWriteAtomically crashes in the
// middle of a whole-file replacement. Not thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/rng.h"
#include "lattice/repl/storage.h"

namespace lattice::repl {

class MemoryStorage final : public Storage {
 public:
  MemoryStorage();
  ~MemoryStorage() override;
  MemoryStorage(const MemoryStorage&) = delete;
  MemoryStorage& operator=(const MemoryStorage&) = delete;

  Result<std::unique_ptr<AppendFile>> OpenAppend(const std::string& name) override;
  Result<std::string> ReadAll(const std::string& name) override;
  Result<void> WriteAtomically(const std::string& name, std::string_view bytes) override;
  Result<std::vector<std::string>> List() override;
  Result<void> Remove(const std::string& name) override;
  Result<void> Truncate(const std::string& name, uint64_t size) override;

  // A power cut: every file loses the bytes appended after its last Sync; open AppendFiles die.
  void Crash();

  // A power cut during which the disk wrote part of the volatile bytes: each file keeps its
  // durable bytes plus a prefix, of a length drawn from `rng`, of its volatile bytes.
  void CrashTorn(Rng& rng);

  // While set, Append, Sync, WriteAtomically and Truncate fail with "No space left on device" and
  // change nothing.
  void FailWrites(bool fail);

  // The next WriteAtomically writes only the first `bytes_written` bytes of its temporary file,
  // then the machine crashes (Crash()) and the call fails.
  void CrashInNextWriteAtomically(uint64_t bytes_written);

  // Number of successful AppendFile::Sync calls, for tests of the fsync policies.
  uint64_t sync_count() const;

  // Bytes of `name` not yet durable (0 for a missing file).
  uint64_t volatile_bytes(const std::string& name) const;

 private:
  struct State;
  class File;
  std::shared_ptr<State> state_;  // shared with open AppendFiles
};

}  // namespace lattice::repl
