#pragma once
// FileStorage is the real Storage (lattice/repl/storage.h) over POSIX: one directory (the
// server's --dir) holding flat files. It keeps the seam's durability contract with system calls:
// Sync is fdatasync (fsync off Linux); OpenAppend syncs the directory after creating a file, so
// a synced record in a new segment is never lost with the segment's directory entry;
// WriteAtomically writes "<name>.tmp", syncs it, renames it over <name> and syncs the directory;
// Remove and Truncate sync what they change. Interrupted calls (EINTR) are retried and short
// writes continued; any other failure is returned with the call, the path and strerror's text.
//
// Thread safety: the Storage methods may be called from any thread (each is a few system calls on
// its own descriptors). An AppendFile is used by one thread at a time.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lattice/repl/storage.h"

namespace lattice::server {

class FileStorage final : public repl::Storage {
 public:
  // Uses `dir`, creating it (one level, mode 0755) if it does not exist and `create` is set.
  static Result<std::unique_ptr<FileStorage>> Open(const std::string& dir, bool create = true);

  // A file anywhere (the ACL file): the storage of its folder and its name there.
  struct FileAt {
    std::unique_ptr<FileStorage> storage;
    std::string name;
  };
  static Result<FileAt> OpenFileAt(const std::string& path);

  Result<std::unique_ptr<repl::AppendFile>> OpenAppend(const std::string& name) override;
  Result<std::string> ReadAll(const std::string& name) override;
  Result<void> WriteAtomically(const std::string& name, std::string_view bytes) override;
  Result<std::vector<std::string>> List() override;
  Result<void> Remove(const std::string& name) override;
  Result<void> Truncate(const std::string& name, uint64_t size) override;

  const std::string& dir() const { return dir_; }

 private:
  explicit FileStorage(std::string dir) : dir_(std::move(dir)) {}
  std::string PathOf(const std::string& name) const;
  Result<void> SyncDir();

  std::string dir_;
};

}  // namespace lattice::server
