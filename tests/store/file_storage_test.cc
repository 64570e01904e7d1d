// FileStorage: the POSIX Storage under a real temporary directory (mkdtemp under /tmp, removed
// after), with real fsync calls; the op log, snapshot and replica id over it, including a torn
// tail made by truncating the segment file behind the log's back.

#include "store/file_storage.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lattice/common/rng.h"
#include "lattice/repl/op_log.h"

namespace lattice::server {
namespace {

// A fresh directory under /tmp, removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/lattice-storage-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<FileStorage> OpenStorage(const std::string& dir) {
  Result<std::unique_ptr<FileStorage>> storage = FileStorage::Open(dir);
  if (!storage.ok()) {
    FAIL(storage.error().message);
  }
  return std::move(storage).value();
}

uint64_t FileSize(const std::string& path) {
  struct stat info;
  REQUIRE(::stat(path.c_str(), &info) == 0);
  return static_cast<uint64_t>(info.st_size);
}

TEST_CASE("FileStorage: append, sync, read, list, truncate, remove", "[storage]") {
  TempDir dir;
  std::unique_ptr<FileStorage> storage = OpenStorage(dir.path() + "/data");  // created
  CHECK(storage->List()->empty());
  {
    std::unique_ptr<repl::AppendFile> file = storage->OpenAppend("b").value();
    CHECK(file->size() == 0);
    REQUIRE(file->Append("hello ").ok());
    REQUIRE(file->Append("world").ok());
    REQUIRE(file->Sync().ok());
    CHECK(file->size() == 11);
  }
  {
    std::unique_ptr<repl::AppendFile> file = storage->OpenAppend("b").value();
    CHECK(file->size() == 11);  // reopened at its end
    REQUIRE(file->Append("!").ok());
    REQUIRE(file->Sync().ok());
  }
  CHECK(*storage->ReadAll("b") == "hello world!");
  CHECK(FileSize(dir.path() + "/data/b") == 12);
  REQUIRE(storage->WriteAtomically("a", "whole").ok());
  CHECK(*storage->List() == std::vector<std::string>{"a", "b"});  // no temp file left
  REQUIRE(storage->Truncate("b", 5).ok());
  CHECK(*storage->ReadAll("b") == "hello");
  REQUIRE(storage->Remove("b").ok());
  CHECK(*storage->List() == std::vector<std::string>{"a"});

  Result<std::string> missing = storage->ReadAll("b");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message, Catch::Contains("No such file or directory") &&
                                          Catch::Contains(dir.path() + "/data/b"));
  CHECK_FALSE(storage->Remove("b").ok());
  CHECK_FALSE(storage->Truncate("b", 0).ok());
}

TEST_CASE("FileStorage: WriteAtomically replaces a file; reads a large one whole", "[storage]") {
  TempDir dir;
  std::unique_ptr<FileStorage> storage = OpenStorage(dir.path());
  REQUIRE(storage->WriteAtomically("s", "old").ok());
  std::string big(300 * 1024 + 7, '\0');
  for (size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>(i * 131);
  }
  REQUIRE(storage->WriteAtomically("s", big).ok());
  CHECK(*storage->ReadAll("s") == big);
  REQUIRE(storage->WriteAtomically("s", "").ok());
  CHECK(storage->ReadAll("s")->empty());
}

TEST_CASE("FileStorage: errors carry the path and the system's reason", "[storage]") {
  TempDir dir;
  { std::ofstream(dir.path() + "/plain") << "x"; }
  Result<std::unique_ptr<FileStorage>> not_dir = FileStorage::Open(dir.path() + "/plain");
  REQUIRE_FALSE(not_dir.ok());
  CHECK_THAT(not_dir.error().message, Catch::Contains("not a directory"));
  Result<std::unique_ptr<FileStorage>> no_parent = FileStorage::Open(dir.path() + "/x/y/z");
  REQUIRE_FALSE(no_parent.ok());
  CHECK_THAT(no_parent.error().message,
             Catch::StartsWith("mkdir ") && Catch::Contains("No such file or directory"));
}

TEST_CASE("op log over FileStorage: always-synced records survive reopen", "[storage]") {
  const uint64_t seed = GENERATE(take(3, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  TempDir dir;
  std::vector<std::string> payloads;
  {
    std::unique_ptr<FileStorage> storage = OpenStorage(dir.path());
    repl::OpLog log(*storage, {.segment_bytes_max = 4096});
    REQUIRE(log.Recover().ok());
    for (int i = 0; i < 300; ++i) {
      payloads.push_back(std::string(rng.Uniform(100), static_cast<char>('a' + i % 26)));
      REQUIRE(log.Append(payloads.back()).ok());
      REQUIRE(log.Flush(repl::FsyncPolicy::kAlways).ok());  // a real fdatasync per record
    }
    CHECK(log.segment_count() > 3);
  }
  std::unique_ptr<FileStorage> storage = OpenStorage(dir.path());
  repl::OpLog log(*storage, {.segment_bytes_max = 4096});
  Result<repl::Recovery> recovery = log.Recover();
  REQUIRE(recovery.ok());
  CHECK_FALSE(recovery->torn_tail.has_value());
  CHECK(recovery->payloads == payloads);
}

TEST_CASE("op log over FileStorage: a tail torn by truncating the file is cut", "[storage]") {
  TempDir dir;
  std::string segment_path;
  {
    std::unique_ptr<FileStorage> storage = OpenStorage(dir.path());
    repl::OpLog log(*storage, {});
    REQUIRE(log.Recover().ok());
    for (const char* payload : {"one", "two", "three"}) {
      REQUIRE(log.Append(payload).ok());
    }
    REQUIRE(log.Sync().ok());
  }
  segment_path = dir.path() + "/oplog-00000000000000000001.seg";
  const uint64_t full = FileSize(segment_path);
  REQUIRE(full == 3 * 8 + 3 + 3 + 5);
  REQUIRE(::truncate(segment_path.c_str(), static_cast<off_t>(full - 2)) == 0);

  std::unique_ptr<FileStorage> storage = OpenStorage(dir.path());
  {
    repl::OpLog log(*storage, {});
    Result<repl::Recovery> recovery = log.Recover();
    REQUIRE(recovery.ok());
    CHECK(recovery->payloads == std::vector<std::string>{"one", "two"});
    REQUIRE(recovery->torn_tail.has_value());
    CHECK(recovery->torn_tail->reason == "short payload");
    CHECK(recovery->torn_tail->bytes_cut == 8 + 5 - 2);
    CHECK(FileSize(segment_path) == 2 * 8 + 3 + 3);
    REQUIRE(*log.Append("four") == 3);
    REQUIRE(log.Flush(repl::FsyncPolicy::kAlways).ok());
  }
  repl::OpLog log(*storage, {});
  Result<repl::Recovery> recovery = log.Recover();
  REQUIRE(recovery.ok());
  CHECK_FALSE(recovery->torn_tail.has_value());
  CHECK(recovery->payloads == std::vector<std::string>{"one", "two", "four"});
}

TEST_CASE("snapshot, compaction and replica id over FileStorage", "[storage]") {
  TempDir dir;
  std::unique_ptr<FileStorage> storage = OpenStorage(dir.path());
  CHECK(*repl::ReplicaIdentity::LoadOrCreate(*storage, 0xfeedull) == 0xfeedull);
  CHECK(*repl::ReplicaIdentity::LoadOrCreate(*storage, 0xbeefull) == 0xfeedull);
  repl::OpLog log(*storage, {.segment_bytes_max = 64});
  REQUIRE(log.Recover().ok());
  for (int i = 0; i < 10; ++i) {
    REQUIRE(log.Append(std::string(20, 'x')).ok());
  }
  REQUIRE(log.WriteSnapshot("state", 6).ok());
  REQUIRE(log.TruncatePrefix(7).ok());
  CHECK(log.first_index() == 7);  // 2 records per segment: segments 1, 3 and 5 go
  CHECK(std::filesystem::exists(dir.path() + "/oplog-00000000000000000007.seg"));
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/oplog-00000000000000000005.seg"));
  std::optional<repl::Snapshot> snapshot = *log.ReadSnapshot();
  REQUIRE(snapshot.has_value());
  CHECK(snapshot->bytes == "state");
  CHECK(snapshot->covers_index == 6);
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/snapshot.tmp"));
}

}  // namespace
}  // namespace lattice::server
