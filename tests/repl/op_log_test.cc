// OpLog, MemoryStorage and ReplicaIdentity (replication/): framing, segments, recovery of torn
// and corrupt tails, the fsync policies, compaction, the memory ring, snapshots.

#include "lattice/repl/op_log.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "lattice/common/rng.h"
#include "lattice/repl/crc32c.h"
#include "lattice/repl/memory_storage.h"

namespace lattice::repl {
namespace {

std::string RandomPayload(Rng& rng, size_t size_max) {
  std::string payload(rng.Uniform(size_max + 1), '\0');
  for (char& c : payload) {
    c = static_cast<char>(rng.Uniform(256));
  }
  return payload;
}

std::vector<std::string> SegmentNames(Storage& storage) {
  std::vector<std::string> out;
  Result<std::vector<std::string>> names = storage.List();  // named: a range-for temporary dies
  REQUIRE(names.ok());
  for (const std::string& name : *names) {
    if (name.starts_with("oplog-")) {
      out.push_back(name);
    }
  }
  return out;
}

// Opens and recovers a log over `storage`, requiring success.
Recovery RecoverOk(OpLog& log) {
  Result<Recovery> recovery = log.Recover();
  if (!recovery.ok()) {
    FAIL(recovery.error().message);
  }
  return std::move(*recovery);
}

// A log with `count` records of `payload_bytes` each, flushed and synced; returns the payloads.
std::vector<std::string> Fill(OpLog& log, size_t count, size_t payload_bytes) {
  std::vector<std::string> payloads;
  for (size_t i = 0; i < count; ++i) {
    std::string payload = "r" + std::to_string(i) + ":";
    payload.resize(payload_bytes, static_cast<char>('a' + i % 26));
    const uint64_t expected_index = log.next_index();
    REQUIRE(*log.Append(payload) == expected_index);
    payloads.push_back(payload);
  }
  REQUIRE(log.Sync().ok());
  return payloads;
}

TEST_CASE("CRC32C matches the standard check value and extends", "[storage]") {
  CHECK(Crc32c("123456789") == 0xE3069283u);
  CHECK(Crc32c("") == 0u);
  CHECK(Crc32cExtend(Crc32c("1234"), "56789") == 0xE3069283u);
  CHECK(Crc32c(std::string(32, '\0')) == 0x8A9136AAu);  // RFC 3720 B.4: 32 bytes of zeros
}

TEST_CASE("fsync policy names parse like appendfsync", "[storage]") {
  CHECK(ParseFsyncPolicy("always") == FsyncPolicy::kAlways);
  CHECK(ParseFsyncPolicy("EverySec") == FsyncPolicy::kEverySec);
  CHECK(ParseFsyncPolicy("no") == FsyncPolicy::kNo);
  CHECK_FALSE(ParseFsyncPolicy("sometimes").has_value());
  CHECK(FsyncPolicyName(FsyncPolicy::kEverySec) == "everysec");
}

TEST_CASE("op log round-trips records over many segments", "[storage]") {
  const uint64_t seed = GENERATE(take(20, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  MemoryStorage storage;
  std::vector<std::string> expected;
  {
    OpLog log(storage, {.segment_bytes_max = 512, .ring_bytes_max = 256});
    CHECK(RecoverOk(log).payloads.empty());
    const size_t count = rng.Uniform(300) + 50;
    for (size_t i = 0; i < count; ++i) {
      expected.push_back(RandomPayload(rng, rng.Chance(1, 20) ? 2000 : 100));  // some oversized
      REQUIRE(*log.Append(expected.back()) == i + 1);
      if (rng.Chance(1, 4)) {
        REQUIRE(log.Flush(FsyncPolicy::kAlways).ok());
      }
    }
    REQUIRE(log.Sync().ok());
    CHECK(log.segment_count() > 3);
    CHECK(log.segment_count() == SegmentNames(storage).size());
  }
  CHECK(SegmentNames(storage).front() == "oplog-00000000000000000001.seg");
  OpLog reopened(storage, {.segment_bytes_max = 512});
  Recovery recovery = RecoverOk(reopened);
  CHECK(recovery.first_index == 1);
  CHECK_FALSE(recovery.torn_tail.has_value());
  CHECK(recovery.payloads == expected);
  CHECK(reopened.next_index() == expected.size() + 1);
  CHECK(*reopened.Append("after") == expected.size() + 1);
}

TEST_CASE("after a crash, synced records survive and the rest is a clean prefix", "[storage]") {
  const uint64_t seed = GENERATE(take(100, random<uint64_t>(0, UINT64_MAX)));
  const bool torn = GENERATE(false, true);
  CAPTURE(seed, torn);
  Rng rng(seed);
  MemoryStorage storage;
  std::vector<std::string> appended;
  size_t durable = 0;  // records covered by a successful sync
  {
    OpLog log(storage, {.segment_bytes_max = 1024});
    RecoverOk(log);
    const size_t steps = rng.Uniform(200) + 1;
    for (size_t i = 0; i < steps; ++i) {
      appended.push_back(RandomPayload(rng, 60));
      REQUIRE(log.Append(appended.back()).ok());
      const uint64_t action = rng.Uniform(10);
      if (action == 0) {
        REQUIRE(log.Flush(FsyncPolicy::kAlways).ok());
        durable = appended.size();
      } else if (action < 4) {
        REQUIRE(log.Flush(FsyncPolicy::kNo).ok());
      }
    }
    torn ? storage.CrashTorn(rng) : storage.Crash();
  }
  OpLog log(storage, {.segment_bytes_max = 1024});
  Recovery recovery = RecoverOk(log);
  REQUIRE(recovery.payloads.size() >= durable);
  REQUIRE(recovery.payloads.size() <= appended.size());
  for (size_t i = 0; i < recovery.payloads.size(); ++i) {
    REQUIRE(recovery.payloads[i] == appended[i]);
  }
  // Appendable after, and what is appended next is read back after it.
  REQUIRE(*log.Append("next") == recovery.payloads.size() + 1);
  REQUIRE(log.Sync().ok());
  OpLog again(storage, {.segment_bytes_max = 1024});
  Recovery second = RecoverOk(again);
  CHECK_FALSE(second.torn_tail.has_value());
  REQUIRE(second.payloads.size() == recovery.payloads.size() + 1);
  CHECK(second.payloads.back() == "next");
}

TEST_CASE("a torn tail at every byte offset of the last record is cut", "[storage]") {
  MemoryStorage storage;
  std::vector<std::string> payloads;
  uint64_t before_last = 0;
  {
    OpLog log(storage, {});
    RecoverOk(log);
    payloads = Fill(log, 4, 20);
    before_last = storage.ReadAll(SegmentNames(storage).back())->size();
    payloads.push_back("the last record, whose tail is torn");
    REQUIRE(log.Append(payloads.back()).ok());
    REQUIRE(log.Sync().ok());
  }
  const std::string segment = SegmentNames(storage).back();
  const std::string full = *storage.ReadAll(segment);
  REQUIRE(full.size() == before_last + 8 + payloads.back().size());
  for (uint64_t cut = 0; cut < full.size() - before_last; ++cut) {
    CAPTURE(cut);
    REQUIRE(storage.WriteAtomically(segment, full.substr(0, before_last + cut)).ok());
    OpLog log(storage, {});
    Recovery recovery = RecoverOk(log);
    CHECK(recovery.payloads == std::vector<std::string>(payloads.begin(), payloads.end() - 1));
    if (cut == 0) {
      CHECK_FALSE(recovery.torn_tail.has_value());
    } else {
      REQUIRE(recovery.torn_tail.has_value());
      CHECK(recovery.torn_tail->segment == segment);
      CHECK(recovery.torn_tail->offset == before_last);
      CHECK(recovery.torn_tail->bytes_cut == cut);
      CHECK(recovery.torn_tail->reason == (cut < 8 ? "short length" : "short payload"));
    }
    CHECK(storage.ReadAll(segment)->size() == before_last);
    REQUIRE(*log.Append("again") == payloads.size());
    REQUIRE(log.Sync().ok());
    OpLog reopened(storage, {});
    Recovery after = RecoverOk(reopened);
    CHECK_FALSE(after.torn_tail.has_value());
    CHECK(after.payloads.back() == "again");
    CHECK(after.payloads.size() == payloads.size());
  }
}

TEST_CASE("a bit flip anywhere in the last record is caught by the CRC", "[storage]") {
  MemoryStorage storage;
  std::vector<std::string> payloads;
  {
    OpLog log(storage, {});
    RecoverOk(log);
    payloads = Fill(log, 3, 40);
  }
  const std::string segment = SegmentNames(storage).back();
  const std::string full = *storage.ReadAll(segment);
  const size_t last_start = full.size() - 8 - 40;
  for (size_t bit = 0; bit < (full.size() - last_start) * 8; ++bit) {
    CAPTURE(bit);
    std::string damaged = full;
    damaged[last_start + bit / 8] ^= static_cast<char>(1 << (bit % 8));
    REQUIRE(storage.WriteAtomically(segment, damaged).ok());
    OpLog log(storage, {});
    Recovery recovery = RecoverOk(log);
    CHECK(recovery.payloads.size() == 2);
    REQUIRE(recovery.torn_tail.has_value());
    // A flipped length bit may instead point past the end of the file.
    CHECK((recovery.torn_tail->reason == "bad checksum" ||
           recovery.torn_tail->reason == "short payload"));
    CHECK(recovery.torn_tail->bytes_cut == 48);
  }
}

TEST_CASE("a zero-filled tail is not read as records", "[storage]") {
  MemoryStorage storage;
  {
    OpLog log(storage, {});
    RecoverOk(log);
    Fill(log, 2, 10);
  }
  const std::string segment = SegmentNames(storage).back();
  std::string bytes = *storage.ReadAll(segment);
  REQUIRE(storage.WriteAtomically(segment, bytes + std::string(4096, '\0')).ok());
  OpLog log(storage, {});
  Recovery recovery = RecoverOk(log);
  CHECK(recovery.payloads.size() == 2);
  REQUIRE(recovery.torn_tail.has_value());
  CHECK(recovery.torn_tail->reason == "bad checksum");
  CHECK(recovery.torn_tail->bytes_cut == 4096);
}

TEST_CASE("corruption in a non-final segment or a missing segment is an error", "[storage]") {
  MemoryStorage storage;
  {
    OpLog log(storage, {.segment_bytes_max = 100});
    RecoverOk(log);
    Fill(log, 30, 20);
    REQUIRE(log.segment_count() >= 4);
  }
  const std::vector<std::string> names = SegmentNames(storage);
  SECTION("a bad checksum in the middle") {
    std::string bytes = *storage.ReadAll(names[1]);
    bytes[10] ^= 0x40;
    REQUIRE(storage.WriteAtomically(names[1], bytes).ok());
    OpLog log(storage, {.segment_bytes_max = 100});
    Result<Recovery> recovery = log.Recover();
    REQUIRE_FALSE(recovery.ok());
    CHECK_THAT(recovery.error().message, Catch::Contains(names[1]) &&
                                             Catch::Contains("bad checksum") &&
                                             Catch::Contains("not the last segment"));
  }
  SECTION("a torn non-final segment") {
    std::string bytes = *storage.ReadAll(names[2]);
    REQUIRE(storage.Truncate(names[2], bytes.size() - 3).ok());
    OpLog log(storage, {.segment_bytes_max = 100});
    CHECK_FALSE(log.Recover().ok());
  }
  SECTION("a missing segment") {
    REQUIRE(storage.Remove(names[1]).ok());
    OpLog log(storage, {.segment_bytes_max = 100});
    Result<Recovery> recovery = log.Recover();
    REQUIRE_FALSE(recovery.ok());
    CHECK_THAT(recovery.error().message, Catch::Contains("missing"));
  }
}

TEST_CASE("appendfsync always syncs on every Flush; no never does", "[storage]") {
  MemoryStorage storage;
  OpLog log(storage, {});
  RecoverOk(log);
  REQUIRE(log.Append("a").ok());
  REQUIRE(log.Flush(FsyncPolicy::kNo).ok());
  CHECK(storage.sync_count() == 0);
  CHECK(log.has_unsynced());
  REQUIRE(log.Append("b").ok());
  REQUIRE(log.Flush(FsyncPolicy::kAlways).ok());
  CHECK(storage.sync_count() == 1);
  CHECK_FALSE(log.has_unsynced());
  REQUIRE(log.Flush(FsyncPolicy::kAlways).ok());  // nothing new: no sync
  CHECK(storage.sync_count() == 1);
  REQUIRE(log.Append("c").ok());  // buffered only: lost in a crash, never acknowledged
  storage.Crash();
  OpLog reopened(storage, {});
  CHECK(RecoverOk(reopened).payloads == std::vector<std::string>{"a", "b"});
}

TEST_CASE("appendfsync everysec syncs at most once a second of passed-in time", "[storage]") {
  MemoryStorage storage;
  OpLog log(storage, {});
  RecoverOk(log);
  const int64_t t0 = 1'700'000'000'000;
  CHECK_FALSE(*log.MaybeSync(t0));  // nothing to sync
  REQUIRE(log.Append("a").ok());
  REQUIRE(log.Flush(FsyncPolicy::kEverySec).ok());
  CHECK(storage.sync_count() == 0);
  CHECK(*log.MaybeSync(t0));  // first sync: nothing to wait for
  CHECK(storage.sync_count() == 1);
  REQUIRE(log.Append("b").ok());
  CHECK_FALSE(*log.MaybeSync(t0 + 999));  // written, not synced
  CHECK(storage.volatile_bytes(SegmentNames(storage).back()) == 9);
  CHECK(*log.MaybeSync(t0 + 1000));
  CHECK(storage.sync_count() == 2);
  REQUIRE(log.Append("c").ok());
  REQUIRE(log.Flush(FsyncPolicy::kEverySec).ok());
  CHECK_FALSE(*log.MaybeSync(t0 + 1500));
  storage.Crash();  // "c" was written within the second: lost, "a" and "b" kept
  OpLog reopened(storage, {});
  CHECK(RecoverOk(reopened).payloads == std::vector<std::string>{"a", "b"});
}

TEST_CASE("rollover syncs the full segment whatever the policy", "[storage]") {
  MemoryStorage storage;
  OpLog log(storage, {.segment_bytes_max = 64});
  RecoverOk(log);
  for (int i = 0; i < 20; ++i) {
    REQUIRE(log.Append(std::string(20, 'x')).ok());
    REQUIRE(log.Flush(FsyncPolicy::kNo).ok());
  }
  const std::vector<std::string> names = SegmentNames(storage);
  REQUIRE(names.size() == 10);
  for (size_t i = 0; i + 1 < names.size(); ++i) {
    CHECK(storage.volatile_bytes(names[i]) == 0);
  }
  CHECK(storage.volatile_bytes(names.back()) > 0);
  storage.Crash();
  OpLog reopened(storage, {.segment_bytes_max = 64});
  CHECK(RecoverOk(reopened).payloads.size() == 18);  // only the last segment's 2 are lost
}

TEST_CASE("TruncatePrefix drops whole segments below an index, never the active one", "[storage]") {
  MemoryStorage storage;
  std::vector<std::string> payloads;
  OpLog log(storage, {.segment_bytes_max = 100});
  RecoverOk(log);
  payloads = Fill(log, 40, 20);  // 28-byte frames: 3 per segment
  const size_t segments = log.segment_count();
  REQUIRE(segments == 14);
  REQUIRE(log.TruncatePrefix(1).ok());
  CHECK(log.segment_count() == segments);
  REQUIRE(log.TruncatePrefix(8).ok());  // records 1-6 fill the first two segments
  CHECK(log.first_index() == 7);
  CHECK(log.segment_count() == segments - 2);
  CHECK(SegmentNames(storage).front() == "oplog-00000000000000000007.seg");
  CHECK(*log.Read(7, 2) == std::vector<std::string>{payloads[6], payloads[7]});
  REQUIRE(log.TruncatePrefix(log.next_index()).ok());
  CHECK(log.segment_count() == 1);
  CHECK(log.first_index() == 40);
  OpLog reopened(storage, {.segment_bytes_max = 100});
  Recovery recovery = RecoverOk(reopened);
  CHECK(recovery.first_index == 40);
  CHECK(recovery.payloads == std::vector<std::string>{payloads.back()});
  CHECK(*reopened.Append("x") == 41);
}

TEST_CASE("Read serves the memory ring and falls back to the segments", "[storage]") {
  const uint64_t seed = GENERATE(take(10, random<uint64_t>(0, UINT64_MAX)));
  CAPTURE(seed);
  Rng rng(seed);
  MemoryStorage storage;
  OpLog log(storage, {.segment_bytes_max = 300, .ring_bytes_max = 200});
  RecoverOk(log);
  std::vector<std::string> payloads;
  for (int i = 0; i < 100; ++i) {
    payloads.push_back(RandomPayload(rng, 30));
    REQUIRE(log.Append(payloads.back()).ok());
    if (rng.Chance(1, 3)) {
      REQUIRE(log.Flush(FsyncPolicy::kNo).ok());
    }
  }
  for (int trial = 0; trial < 50; ++trial) {
    const uint64_t from = rng.Uniform(101) + 1;
    const size_t count = rng.Uniform(20) + 1;
    CAPTURE(from, count);
    std::vector<std::string> got = *log.Read(from, count);
    const size_t expected = std::min<size_t>(count, 101 - from);
    REQUIRE(got.size() == expected);
    for (size_t i = 0; i < got.size(); ++i) {
      REQUIRE(got[i] == payloads[from - 1 + i]);
    }
  }
  // bytes_max stops after the record that reaches it (empty payloads do not count).
  std::vector<std::string> capped = *log.Read(1, 100, 1);
  REQUIRE_FALSE(capped.empty());
  size_t before_last_bytes = 0;
  for (size_t i = 0; i + 1 < capped.size(); ++i) {
    CHECK(capped[i] == payloads[i]);
    before_last_bytes += capped[i].size();
  }
  CHECK(before_last_bytes == 0);
}

TEST_CASE("a failed write makes the log refuse writes until recovery", "[storage]") {
  MemoryStorage storage;
  {
    OpLog log(storage, {});
    RecoverOk(log);
    REQUIRE(log.Append("a").ok());
    REQUIRE(log.Sync().ok());
    REQUIRE(log.Append("b").ok());
    storage.FailWrites(true);
    Result<void> flushed = log.Flush(FsyncPolicy::kAlways);
    REQUIRE_FALSE(flushed.ok());
    CHECK_THAT(flushed.error().message, Catch::Contains("No space left on device"));
    storage.FailWrites(false);
    CHECK_FALSE(log.Append("c").ok());
    CHECK_FALSE(log.Flush(FsyncPolicy::kAlways).ok());
  }
  OpLog log(storage, {});
  CHECK(RecoverOk(log).payloads == std::vector<std::string>{"a"});
}

TEST_CASE("snapshots are replaced atomically", "[storage]") {
  MemoryStorage storage;
  OpLog log(storage, {});
  CHECK_FALSE(log.ReadSnapshot()->has_value());
  REQUIRE(log.WriteSnapshot("state one", 10).ok());
  std::optional<Snapshot> snapshot = *log.ReadSnapshot();
  REQUIRE(snapshot.has_value());
  CHECK(snapshot->bytes == "state one");
  CHECK(snapshot->covers_index == 10);
  REQUIRE(log.WriteSnapshot(std::string(1000, 's'), 20).ok());
  CHECK(log.ReadSnapshot()->value().covers_index == 20);

  const uint64_t written = GENERATE(0, 1, 27, 500, 1027);
  CAPTURE(written);
  storage.CrashInNextWriteAtomically(written);
  CHECK_FALSE(log.WriteSnapshot("state three", 30).ok());
  OpLog reopened(storage, {});
  snapshot = *reopened.ReadSnapshot();
  REQUIRE(snapshot.has_value());
  CHECK(snapshot->bytes == std::string(1000, 's'));
  CHECK(snapshot->covers_index == 20);
  REQUIRE(reopened.WriteSnapshot("state three", 30).ok());  // the leftover temp is overwritten
  CHECK(reopened.ReadSnapshot()->value().bytes == "state three");
}

TEST_CASE("a damaged snapshot is an error", "[storage]") {
  MemoryStorage storage;
  OpLog log(storage, {});
  REQUIRE(log.WriteSnapshot("some state", 5).ok());
  std::string bytes = *storage.ReadAll("snapshot");
  const size_t position = GENERATE(0, 8, 16, 24, 30);
  CAPTURE(position);
  bytes[position] ^= 1;
  REQUIRE(storage.WriteAtomically("snapshot", bytes).ok());
  CHECK_FALSE(log.ReadSnapshot().ok());
}

TEST_CASE("the replica id is created once and read back", "[storage]") {
  MemoryStorage storage;
  CHECK_FALSE(ReplicaIdentity::Load(storage)->has_value());
  CHECK(*ReplicaIdentity::LoadOrCreate(storage, 0x1234abcd5678ef01ull) == 0x1234abcd5678ef01ull);
  CHECK(*ReplicaIdentity::LoadOrCreate(storage, 42) == 0x1234abcd5678ef01ull);
  CHECK(*storage.ReadAll("replica-id") == "lattice-replica-id 1234abcd5678ef01 " + [] {
    char crc[9];
    std::snprintf(crc, sizeof(crc), "%08x", Crc32c("1234abcd5678ef01"));
    return std::string(crc);
  }() + "\n");
  storage.Crash();  // written atomically: survives
  CHECK(ReplicaIdentity::Load(storage)->value() == 0x1234abcd5678ef01ull);

  std::string text = *storage.ReadAll("replica-id");
  text[20] = text[20] == '0' ? '1' : '0';  // one digit of the id
  REQUIRE(storage.WriteAtomically("replica-id", text).ok());
  Result<ReplicaId> damaged = ReplicaIdentity::LoadOrCreate(storage, 7);
  REQUIRE_FALSE(damaged.ok());
  CHECK_THAT(damaged.error().message, Catch::Contains("damaged"));
}

TEST_CASE("MemoryStorage: handles die in a crash; truncate and remove are durable", "[storage]") {
  MemoryStorage storage;
  std::unique_ptr<AppendFile> file = storage.OpenAppend("f").value();
  REQUIRE(file->Append("durable").ok());
  REQUIRE(file->Sync().ok());
  REQUIRE(file->Append(" volatile").ok());
  CHECK(file->size() == 16);
  CHECK(storage.volatile_bytes("f") == 9);
  storage.Crash();
  CHECK(*storage.ReadAll("f") == "durable");
  CHECK_FALSE(file->Append("x").ok());
  file = storage.OpenAppend("f").value();
  CHECK(file->size() == 7);
  REQUIRE(file->Append("++").ok());
  REQUIRE(storage.Truncate("f", 3).ok());
  storage.Crash();
  CHECK(*storage.ReadAll("f") == "dur");
  REQUIRE(storage.Remove("f").ok());
  CHECK_FALSE(storage.ReadAll("f").ok());
  CHECK_FALSE(storage.Remove("f").ok());
  CHECK(storage.List()->empty());
}

}  // namespace
}  // namespace lattice::repl
