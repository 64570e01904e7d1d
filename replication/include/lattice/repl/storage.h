#pragma once
// Storage is the seam between replication/ and the disk, leveldb's Env idea cut down to what the
// op log, the snapshot and the replica identity need: append-only files with explicit Sync, and
// whole files replaced atomically. replication/ does no I/O itself; it is handed a Storage.
// Implementations: FileStorage over POSIX in src/server/file_storage.h (one directory, the
// server's --dir) and MemoryStorage (lattice/repl/memory_storage.h), which can simulate a crash,
// for tests and the simulator.
//
// Names are plain file names inside the storage's one flat directory: not empty, no '/', not "."
// or "..". Every failure caused by the outside world (a full disk, a missing file, EIO) is
// returned as a Result with a readable message; nothing throws.
//
// Durability contract, which both implementations keep and the op log relies on:
// - bytes given to AppendFile::Append are durable only after a successful Sync on that file;
// - a file created by OpenAppend exists after a crash once OpenAppend returned (its directory
//   entry is made durable there), though its unsynced bytes may not;
// - WriteAtomically, Remove and Truncate are durable when they return, and a crash during
//   WriteAtomically leaves either the old content or the new, never a mix.
//
// Thread safety: a Storage may be called from several threads (FileStorage is a thin layer over
// system calls; MemoryStorage is not and must stay on one thread). One AppendFile is used by one
// thread at a time.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/result.h"

namespace lattice::repl {

// A file open for appending. Owned by whoever opened it; closed when destroyed.
class AppendFile {
 public:
  virtual ~AppendFile() = default;

  // Appends `data` at the end of the file. On failure a prefix of `data` may have been written.
  virtual Result<void> Append(std::string_view data) = 0;

  // Makes every byte appended so far durable (fsync/fdatasync).
  virtual Result<void> Sync() = 0;

  // The file's size in bytes: its size when opened plus what this handle appended.
  virtual uint64_t size() const = 0;
};

class Storage {
 public:
  virtual ~Storage() = default;

  // Opens `name` for appending at its end, creating it empty if missing.
  virtual Result<std::unique_ptr<AppendFile>> OpenAppend(const std::string& name) = 0;

  // The whole content of `name`; an error if it does not exist.
  virtual Result<std::string> ReadAll(const std::string& name) = 0;

  // Replaces `name` with `bytes` atomically and durably: write a temporary file ("<name>.tmp"),
  // sync it, rename it over `name`, sync the directory.
  virtual Result<void> WriteAtomically(const std::string& name, std::string_view bytes) = 0;

  // Every file name in the storage, sorted (leftover temporary files included).
  virtual Result<std::vector<std::string>> List() = 0;

  // Removes `name`; an error if it does not exist.
  virtual Result<void> Remove(const std::string& name) = 0;

  // Cuts `name` to its first `size` bytes (size <= its current size) and syncs it.
  virtual Result<void> Truncate(const std::string& name, uint64_t size) = 0;
};

// True if `name` is a valid storage file name (see the contract above).
inline bool IsValidStorageName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

}  // namespace lattice::repl
