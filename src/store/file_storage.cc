#include "store/file_storage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <thread>
#include <utility>

#include "lattice/common/assert.h"

namespace lattice::server {

namespace {

// "<call> <path>: <strerror text>" for the current errno. std::error_code's message is
// strerror's text without strerror's shared buffer.
Unexpected SystemError(std::string_view call, const std::string& path) {
  const int error = errno;
  return Unexpected(ErrorCode::kIo, std::string(call) + " " + path + ": " +
                    std::error_code(error, std::generic_category()).message());
}

// open(2), retried on EINTR. Returns the descriptor or -1 with errno set.
int OpenRetrying(const std::string& path, int flags, mode_t mode = 0644) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// Owns a descriptor; close(2) is not retried on EINTR (on Linux the descriptor is gone anyway).
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Writes all of `data`, continuing short writes and retrying EINTR. False with errno on failure.
bool WriteFully(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    data.remove_prefix(static_cast<size_t>(written));
  }
  return true;
}

// fdatasync on Linux (the file's data and size, not its timestamps: what recovery needs, and
// what Valkey's appendfsync uses); fsync elsewhere. fsync-family calls are not retried on EINTR
// blindly: Linux never returns EINTR from them, and a retry after a real error could hide it.
bool SyncData(int fd) {
#ifdef __linux__
  return ::fdatasync(fd) == 0;
#else
  return ::fsync(fd) == 0;
#endif
}

class PosixAppendFile final : public repl::AppendFile {
 public:
  PosixAppendFile(int fd, std::string path, uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size) {}

  Result<void> Append(std::string_view data) override {
    if (!WriteFully(fd_.get(), data)) {
      return SystemError("write", path_);
    }
    size_ += data.size();
    // Valkey's incremental fsync (aof-rewrite-incremental-fsync): writeback of each written
    // MiB starts now, without waiting for it, so the next fdatasync finds little left. An
    // install's records synced in one fdatasync held the event loop 101 ms of CPU at 1M.
    if (size_ - range_start_ >= kRangeSyncBytes) {
      (void)::sync_file_range(fd_.get(), static_cast<off_t>(range_start_),
                              static_cast<off_t>(size_ - range_start_), SYNC_FILE_RANGE_WRITE);
      range_start_ = size_;
    }
    return {};
  }

  Result<void> Sync() override {
    if (!SyncData(fd_.get())) {
      return SystemError("fdatasync", path_);
    }
    range_start_ = size_;
    return {};
  }

  uint64_t size() const override { return size_; }

 private:
  static constexpr uint64_t kRangeSyncBytes = 1 << 20;
  Descriptor fd_;
  std::string path_;
  uint64_t size_;
  uint64_t range_start_ = size_;  // written since the last sync or range sync began here
};

}  // namespace

Result<std::unique_ptr<FileStorage>> FileStorage::Open(const std::string& dir, bool create) {
  LATTICE_ASSERT(!dir.empty());
  if (create && ::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return SystemError("mkdir", dir);
  }
  struct stat info;
  if (::stat(dir.c_str(), &info) != 0) {
    return SystemError("stat", dir);
  }
  if (!S_ISDIR(info.st_mode)) {
    return Unexpected(ErrorCode::kIo, "storage: " + dir + " is not a directory");
  }
  return std::unique_ptr<FileStorage>(new FileStorage(dir));
}

Result<FileStorage::FileAt> FileStorage::OpenFileAt(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (!repl::IsValidStorageName(name)) {
    return Unexpected("storage: '" + path + "' does not name a file");
  }
  Result<std::unique_ptr<FileStorage>> storage = Open(dir, /*create=*/false);
  if (!storage.ok()) return Unexpected(storage.error());
  return FileAt{std::move(*storage), std::move(name)};
}

std::string FileStorage::PathOf(const std::string& name) const {
  LATTICE_ASSERT(repl::IsValidStorageName(name));
  return dir_ + "/" + name;
}

// Makes the directory's entries (created, renamed, removed files) durable.
Result<void> FileStorage::SyncDir() {
  Descriptor fd(OpenRetrying(dir_, O_RDONLY | O_DIRECTORY));
  if (fd.get() < 0) {
    return SystemError("open", dir_);
  }
  if (::fsync(fd.get()) != 0) {
    return SystemError("fsync", dir_);
  }
  return {};
}

Result<std::unique_ptr<repl::AppendFile>> FileStorage::OpenAppend(const std::string& name) {
  const std::string path = PathOf(name);
  const int fd = OpenRetrying(path, O_WRONLY | O_CREAT | O_APPEND);
  if (fd < 0) {
    return SystemError("open", path);
  }
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    Unexpected error = SystemError("fstat", path);
    ::close(fd);
    return error;
  }
  auto file = std::make_unique<PosixAppendFile>(fd, path, static_cast<uint64_t>(info.st_size));
  if (Result<void> r = SyncDir(); !r.ok()) {
    return Unexpected(r.error());
  }
  return std::unique_ptr<repl::AppendFile>(std::move(file));
}

Result<std::string> FileStorage::ReadAll(const std::string& name) {
  const std::string path = PathOf(name);
  Descriptor fd(OpenRetrying(path, O_RDONLY));
  if (fd.get() < 0) {
    return SystemError("open", path);
  }
  std::string data;
  char chunk[64 * 1024];
  while (true) {
    const ssize_t got = ::read(fd.get(), chunk, sizeof(chunk));
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      return SystemError("read", path);
    }
    if (got == 0) {
      return data;
    }
    data.append(chunk, static_cast<size_t>(got));
  }
}

Result<void> FileStorage::WriteAtomically(const std::string& name, std::string_view bytes) {
  const std::string path = PathOf(name);
  const std::string temp = path + ".tmp";
  {
    Descriptor fd(OpenRetrying(temp, O_WRONLY | O_CREAT | O_TRUNC));
    if (fd.get() < 0) {
      return SystemError("open", temp);
    }
    if (!WriteFully(fd.get(), bytes)) {
      return SystemError("write", temp);
    }
    // Synced before the rename, or a crash could leave the new name on empty or partial data.
    if (::fsync(fd.get()) != 0) {
      return SystemError("fsync", temp);
    }
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return SystemError("rename", temp);
  }
  return SyncDir();
}

Result<std::vector<std::string>> FileStorage::List() {
  DIR* dir = ::opendir(dir_.c_str());
  if (dir == nullptr) {
    return SystemError("opendir", dir_);
  }
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") {
      names.push_back(std::move(name));
    }
  }
  const int error = errno;
  ::closedir(dir);
  if (error != 0) {
    errno = error;
    return SystemError("readdir", dir_);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<void> FileStorage::Remove(const std::string& name) {
  const std::string path = PathOf(name);
  // Valkey's bg_unlink: the file is unlinked while open, and closed on a thread of its own. The
  // last close frees the file's pages, which for an op log segment of tens of MB cost the event
  // loop 8-17 ms of CPU (issue #17's storm test); a file that cannot be opened is unlinked here.
  const int fd = OpenRetrying(path, O_RDONLY);
  if (::unlink(path.c_str()) != 0) {
    Unexpected error = SystemError("unlink", path);  // errno, before close may change it
    if (fd >= 0) ::close(fd);
    return error;
  }
  if (fd >= 0) {
    std::thread([fd] { ::close(fd); }).detach();
  }
  return SyncDir();
}

Result<void> FileStorage::Truncate(const std::string& name, uint64_t size) {
  const std::string path = PathOf(name);
  Descriptor fd(OpenRetrying(path, O_WRONLY));
  if (fd.get() < 0) {
    return SystemError("open", path);
  }
  int result;
  do {
    result = ::ftruncate(fd.get(), static_cast<off_t>(size));
  } while (result != 0 && errno == EINTR);
  if (result != 0) {
    return SystemError("ftruncate", path);
  }
  if (::fsync(fd.get()) != 0) {
    return SystemError("fsync", path);
  }
  return {};
}

}  // namespace lattice::server
