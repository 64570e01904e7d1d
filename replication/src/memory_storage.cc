#include "lattice/repl/memory_storage.h"

#include <algorithm>
#include <utility>

#include "lattice/common/assert.h"

namespace lattice::repl {

namespace {

constexpr char kDiskFull[] = "No space left on device";

struct FileData {
  std::string bytes;
  uint64_t durable = 0;  // bytes[0, durable) survive a crash
};

Unexpected NotFound(const std::string& name) {
  return Unexpected(ErrorCode::kIo, name + ": No such file or directory");
}

}  // namespace

struct MemoryStorage::State {
  std::map<std::string, FileData> files;
  uint64_t epoch = 0;  // bumped by every crash: handles from an older epoch are dead
  bool fail_writes = false;
  bool crash_in_next_write_atomically = false;
  uint64_t crash_bytes_written = 0;
  uint64_t sync_count = 0;
};

// An AppendFile over one entry of the shared State. It looks the file up on every call, so a
// Remove or a crash is seen at once.
class MemoryStorage::File final : public AppendFile {
 public:
  File(std::shared_ptr<State> state, std::string name)
      : state_(std::move(state)), name_(std::move(name)), epoch_(state_->epoch) {}

  Result<void> Append(std::string_view data) override {
    Result<FileData*> file = Lookup();
    if (!file.ok()) {
      return Unexpected(file.error());
    }
    if (state_->fail_writes) {
      return Unexpected(ErrorCode::kIo, name_ + ": " + kDiskFull);
    }
    (*file)->bytes.append(data);
    return {};
  }

  Result<void> Sync() override {
    Result<FileData*> file = Lookup();
    if (!file.ok()) {
      return Unexpected(file.error());
    }
    if (state_->fail_writes) {
      return Unexpected(ErrorCode::kIo, name_ + ": " + kDiskFull);
    }
    (*file)->durable = (*file)->bytes.size();
    ++state_->sync_count;
    return {};
  }

  uint64_t size() const override {
    auto it = state_->files.find(name_);
    return it == state_->files.end() ? 0 : it->second.bytes.size();
  }

 private:
  Result<FileData*> Lookup() {
    if (epoch_ != state_->epoch) {
      return Unexpected(ErrorCode::kIo, name_ + ": file handle from before a crash");
    }
    auto it = state_->files.find(name_);
    if (it == state_->files.end()) {
      return NotFound(name_);
    }
    return &it->second;
  }

  std::shared_ptr<State> state_;
  std::string name_;
  uint64_t epoch_;
};

MemoryStorage::MemoryStorage() : state_(std::make_shared<State>()) {}
MemoryStorage::~MemoryStorage() = default;

Result<std::unique_ptr<AppendFile>> MemoryStorage::OpenAppend(const std::string& name) {
  LATTICE_ASSERT(IsValidStorageName(name));
  state_->files.try_emplace(name);  // creation is durable at once, as FileStorage syncs the dir
  return std::unique_ptr<AppendFile>(std::make_unique<File>(state_, name));
}

Result<std::string> MemoryStorage::ReadAll(const std::string& name) {
  LATTICE_ASSERT(IsValidStorageName(name));
  auto it = state_->files.find(name);
  if (it == state_->files.end()) {
    return NotFound(name);
  }
  return it->second.bytes;
}

Result<void> MemoryStorage::WriteAtomically(const std::string& name, std::string_view bytes) {
  LATTICE_ASSERT(IsValidStorageName(name));
  if (state_->fail_writes) {
    return Unexpected(ErrorCode::kIo, name + ": " + kDiskFull);
  }
  const std::string temp = name + ".tmp";
  if (state_->crash_in_next_write_atomically) {
    // The temporary file got part of its bytes (even durably), the rename never happened.
    state_->crash_in_next_write_atomically = false;
    const uint64_t written = std::min<uint64_t>(state_->crash_bytes_written, bytes.size());
    state_->files[temp] = FileData{std::string(bytes.substr(0, written)), written};
    Crash();
    return Unexpected(ErrorCode::kIo, name + ": simulated crash during an atomic write");
  }
  state_->files.erase(temp);
  state_->files[name] = FileData{std::string(bytes), bytes.size()};
  return {};
}

Result<std::vector<std::string>> MemoryStorage::List() {
  std::vector<std::string> names;
  names.reserve(state_->files.size());
  for (const auto& [name, file] : state_->files) {
    names.push_back(name);  // std::map: already sorted
  }
  return names;
}

Result<void> MemoryStorage::Remove(const std::string& name) {
  LATTICE_ASSERT(IsValidStorageName(name));
  if (state_->files.erase(name) == 0) {
    return NotFound(name);
  }
  return {};
}

Result<void> MemoryStorage::Truncate(const std::string& name, uint64_t size) {
  LATTICE_ASSERT(IsValidStorageName(name));
  auto it = state_->files.find(name);
  if (it == state_->files.end()) {
    return NotFound(name);
  }
  if (state_->fail_writes) {
    return Unexpected(ErrorCode::kIo, name + ": " + kDiskFull);
  }
  FileData& file = it->second;
  LATTICE_ASSERT(size <= file.bytes.size());
  file.bytes.resize(size);
  file.durable = size;  // FileStorage syncs after ftruncate: what is left is durable
  return {};
}

void MemoryStorage::Crash() {
  for (auto& [name, file] : state_->files) {
    file.bytes.resize(file.durable);
  }
  ++state_->epoch;
}

void MemoryStorage::CrashTorn(Rng& rng) {
  for (auto& [name, file] : state_->files) {
    const uint64_t volatile_size = file.bytes.size() - file.durable;
    file.bytes.resize(file.durable + rng.Uniform(volatile_size + 1));
    file.durable = file.bytes.size();
  }
  ++state_->epoch;
}

void MemoryStorage::FailWrites(bool fail) { state_->fail_writes = fail; }

void MemoryStorage::CrashInNextWriteAtomically(uint64_t bytes_written) {
  state_->crash_in_next_write_atomically = true;
  state_->crash_bytes_written = bytes_written;
}

uint64_t MemoryStorage::sync_count() const { return state_->sync_count; }

uint64_t MemoryStorage::volatile_bytes(const std::string& name) const {
  auto it = state_->files.find(name);
  return it == state_->files.end() ? 0 : it->second.bytes.size() - it->second.durable;
}

}  // namespace lattice::repl
