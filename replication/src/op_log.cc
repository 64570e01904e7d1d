#include "lattice/repl/op_log.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <utility>

#include "lattice/common/assert.h"
#include "lattice/common/mutation.h"
#include "lattice/repl/crc32c.h"

namespace lattice::repl {

namespace {

constexpr size_t kHeaderBytes = 8;  // length + CRC
constexpr uint64_t kRecordBytesMax = 1ull << 30;
constexpr std::string_view kSegmentPrefix = "oplog-";
constexpr std::string_view kSegmentSuffix = ".seg";
constexpr size_t kIndexDigits = 20;
constexpr char kSnapshotName[] = "snapshot";
constexpr std::string_view kSnapshotMagic = "LATSNAP1";
constexpr char kIdentityName[] = "replica-id";
constexpr int64_t kEverySecMs = 1000;

void StoreFixed32(char* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) {
    out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  }
}

void PutFixed32(std::string& out, uint32_t value) {
  char bytes[4];
  StoreFixed32(bytes, value);
  out.append(bytes, 4);
}

void PutFixed64(std::string& out, uint64_t value) {
  PutFixed32(out, static_cast<uint32_t>(value));
  PutFixed32(out, static_cast<uint32_t>(value >> 32));
}

uint32_t GetFixed32(std::string_view in) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) {
    value = (value << 8) | static_cast<uint8_t>(in[i]);
  }
  return value;
}

uint64_t GetFixed64(std::string_view in) {
  return GetFixed32(in) | (static_cast<uint64_t>(GetFixed32(in.substr(4))) << 32);
}

// The CRC of a record covers its length field too: a run of zero bytes (what some file systems
// expose after a crash) would otherwise read as valid empty records.
uint32_t RecordCrc(std::string_view length_bytes, std::string_view payload) {
  return Crc32cExtend(Crc32c(length_bytes), payload);
}

void AppendRecord(std::string& out, std::string_view payload) {
  char header[8];  // length, then the CRC; appended in one piece (this runs per op)
  StoreFixed32(header, static_cast<uint32_t>(payload.size()));
  StoreFixed32(header + 4, RecordCrc(std::string_view(header, 4), payload));
  out.append(header, 8);
  out.append(payload);
}

// The records of one segment, up to the first bad one.
struct ParsedSegment {
  std::vector<std::string_view> payloads;
  uint64_t valid_bytes = 0;
  std::string error;  // empty when every byte parsed
};

ParsedSegment ParseSegment(std::string_view bytes) {
  ParsedSegment parsed;
  size_t offset = 0;
  while (offset < bytes.size()) {
    std::string_view rest = bytes.substr(offset);
    if (rest.size() < kHeaderBytes) {
      parsed.error = "short length";
      break;
    }
    const uint32_t length = GetFixed32(rest);
    if (rest.size() - kHeaderBytes < length) {
      parsed.error = "short payload";
      break;
    }
    std::string_view payload = rest.substr(kHeaderBytes, length);
    if (GetFixed32(rest.substr(4)) != RecordCrc(rest.substr(0, 4), payload)) {
      parsed.error = "bad checksum";
      break;
    }
    parsed.payloads.push_back(payload);
    offset += kHeaderBytes + length;
  }
  parsed.valid_bytes = offset;
  return parsed;
}

std::string SegmentName(uint64_t first_index) {
  char digits[kIndexDigits + 1];
  std::snprintf(digits, sizeof(digits), "%020" PRIu64, first_index);
  return std::string(kSegmentPrefix) + digits + std::string(kSegmentSuffix);
}

// The first index named by a segment file name; nullopt for any other file.
std::optional<uint64_t> ParseSegmentName(std::string_view name) {
  if (name.size() != kSegmentPrefix.size() + kIndexDigits + kSegmentSuffix.size() ||
      !name.starts_with(kSegmentPrefix) || !name.ends_with(kSegmentSuffix)) {
    return std::nullopt;
  }
  uint64_t index = 0;
  for (char c : name.substr(kSegmentPrefix.size(), kIndexDigits)) {
    if (c < '0' || c > '9' || index > (UINT64_MAX - 9) / 10) {
      return std::nullopt;
    }
    index = index * 10 + static_cast<uint64_t>(c - '0');
  }
  return index;
}

Unexpected WithContext(const std::string& context, const Error& error) {
  return Unexpected(Error{error.code, context + ": " + error.message});
}

}  // namespace

std::optional<FsyncPolicy> ParseFsyncPolicy(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "always") {
    return FsyncPolicy::kAlways;
  }
  if (lower == "everysec") {
    return FsyncPolicy::kEverySec;
  }
  if (lower == "no") {
    return FsyncPolicy::kNo;
  }
  return std::nullopt;
}

std::string_view FsyncPolicyName(FsyncPolicy policy) {
  switch (policy) {
    case FsyncPolicy::kAlways:
      return "always";
    case FsyncPolicy::kEverySec:
      return "everysec";
    case FsyncPolicy::kNo:
      return "no";
  }
  return "unknown";
}

OpLog::OpLog(Storage& storage, OpLogOptions options) : storage_(storage), options_(options) {
  LATTICE_ASSERT(options_.segment_bytes_max > 0);
}

OpLog::~OpLog() = default;

uint64_t OpLog::first_index() const {
  return segments_.empty() ? next_index_ : segments_.front().first_index;
}

Result<void> OpLog::CheckUsable() const {
  LATTICE_ASSERT_MSG(recovered_, "OpLog used before Recover()");
  if (failed_.has_value()) {
    return Unexpected(*failed_);
  }
  return {};
}

Result<void> OpLog::Fail(const Error& error) {
  failed_ = error;
  return Unexpected(error);
}

// ---- Recovery ----

Result<Recovery> OpLog::Recover() {
  LATTICE_ASSERT_MSG(!recovered_, "OpLog::Recover() called twice");
  Result<std::vector<std::string>> names = storage_.List();
  if (!names.ok()) {
    return WithContext("op log: list", names.error());
  }
  for (const std::string& name : *names) {
    if (std::optional<uint64_t> first = ParseSegmentName(name)) {
      segments_.push_back({*first, name});
    }
  }
  std::sort(segments_.begin(), segments_.end(),
            [](const Segment& a, const Segment& b) { return a.first_index < b.first_index; });
  Recovery recovery;
  uint64_t next = segments_.empty() ? 1 : segments_.front().first_index;
  recovery.first_index = next;
  ring_first_index_ = next;
  for (size_t i = 0; i < segments_.size(); ++i) {
    Result<std::string> bytes = storage_.ReadAll(segments_[i].name);
    if (!bytes.ok()) {
      return WithContext("op log: read", bytes.error());
    }
    if (Result<void> r = RecoverSegment(i, *bytes, recovery, next); !r.ok()) {
      return Unexpected(r.error());
    }
  }
  next_index_ = next;
  if (segments_.empty()) {
    segments_.push_back({next_index_, SegmentName(next_index_)});
  }
  if (Result<void> r = OpenActive(segments_.back().name); !r.ok()) {
    return Unexpected(r.error());
  }
  recovered_ = true;
  if (MutationInjected(Mutation::kDropLastOpOnRestart) && !recovery.payloads.empty()) {
    recovery.payloads.pop_back();  // injected bug: the last durable record is forgotten
  }
  return recovery;
}

// Parses segment `position`, appends its payloads to `recovery`, and cuts its tail if it is the
// last segment and torn. `next` is the index its first record must have.
Result<void> OpLog::RecoverSegment(size_t position, std::string_view bytes, Recovery& recovery,
                                   uint64_t& next) {
  const Segment& segment = segments_[position];
  if (segment.first_index != next) {
    return Unexpected(ErrorCode::kCorrupt, "op log: segment " + segment.name +
                                               " should start at record " + std::to_string(next) +
                                               ": a segment is missing");
  }
  ParsedSegment parsed = ParseSegment(bytes);
  const bool last = position + 1 == segments_.size();
  if (!parsed.error.empty() && !last) {
    return Unexpected(ErrorCode::kCorrupt, "op log: corrupt record in " + segment.name +
                                               " at offset " + std::to_string(parsed.valid_bytes) +
                                               " (" + parsed.error +
                                               "), and it is not the last segment");
  }
  for (std::string_view payload : parsed.payloads) {
    recovery.payloads.emplace_back(payload);
    PushRing(payload);
  }
  next += parsed.payloads.size();
  if (!parsed.error.empty()) {
    if (Result<void> r = storage_.Truncate(segment.name, parsed.valid_bytes); !r.ok()) {
      return WithContext("op log: cutting the torn tail", r.error());
    }
    recovery.torn_tail = TornTail{.segment = segment.name,
                                  .offset = parsed.valid_bytes,
                                  .bytes_cut = bytes.size() - parsed.valid_bytes,
                                  .reason = parsed.error};
  }
  return {};
}

Result<void> OpLog::OpenActive(const std::string& name) {
  Result<std::unique_ptr<AppendFile>> file = storage_.OpenAppend(name);
  if (!file.ok()) {
    return WithContext("op log: open " + name, file.error());
  }
  active_ = std::move(*file);
  active_bytes_ = active_->size();
  unsynced_ = false;
  return {};
}

// ---- Writing ----

Result<uint64_t> OpLog::Append(std::string_view payload) {
  if (Result<void> r = CheckUsable(); !r.ok()) {
    return Unexpected(r.error());
  }
  if (payload.size() > kRecordBytesMax) {
    return Unexpected(ErrorCode::kInvalid, "op log: record of " + std::to_string(payload.size()) +
                                               " bytes exceeds the limit of " +
                                               std::to_string(kRecordBytesMax));
  }
  const uint64_t frame_bytes = kHeaderBytes + payload.size();
  if (active_bytes_ > 0 && active_bytes_ + frame_bytes > options_.segment_bytes_max) {
    if (Result<void> r = RollOver(); !r.ok()) {
      return Unexpected(r.error());
    }
  }
  AppendRecord(buffer_, payload);
  active_bytes_ += frame_bytes;
  PushRing(payload);
  return next_index_++;
}

// Writes the buffer out, syncs the full segment whatever the policy (so that only the last
// segment can ever be torn, and recovery can call damage anywhere else an error), and opens the
// next segment, named after the next record's index.
Result<void> OpLog::RollOver() {
  if (Result<void> r = WriteBuffer(); !r.ok()) {
    return r;
  }
  if (Result<void> r = SyncActive(); !r.ok()) {
    return r;
  }
  const std::string name = SegmentName(next_index_);
  if (Result<void> r = OpenActive(name); !r.ok()) {
    return Fail(r.error());
  }
  segments_.push_back({next_index_, name});
  return {};
}

Result<void> OpLog::WriteBuffer() {
  if (buffer_.empty()) {
    return {};
  }
  if (Result<void> r = active_->Append(buffer_); !r.ok()) {
    // Part of the buffer may be in the file: appending more after it would bury a torn record
    // in the middle of the log. Stop here; recovery cuts the torn tail.
    return Fail(WithContext("op log: write " + segments_.back().name, r.error()).error);
  }
  buffer_.clear();
  unsynced_ = true;
  return {};
}

void OpLog::ReleaseIdleBuffer() {
  constexpr size_t kKeepBytes = 64 * 1024;
  if (buffer_.empty() && buffer_.capacity() > kKeepBytes) {
    std::string().swap(buffer_);
  }
}

Result<void> OpLog::SyncActive() {
  if (!unsynced_) {
    return {};
  }
  if (Result<void> r = active_->Sync(); !r.ok()) {
    return Fail(WithContext("op log: sync " + segments_.back().name, r.error()).error);
  }
  unsynced_ = false;
  return {};
}

Result<void> OpLog::Flush(FsyncPolicy policy) {
  if (Result<void> r = CheckUsable(); !r.ok()) {
    return r;
  }
  if (Result<void> r = WriteBuffer(); !r.ok()) {
    return r;
  }
  return policy == FsyncPolicy::kAlways ? SyncActive() : Result<void>();
}

Result<bool> OpLog::MaybeSync(int64_t now_ms) {
  if (Result<void> r = Flush(FsyncPolicy::kNo); !r.ok()) {
    return Unexpected(r.error());
  }
  if (!unsynced_ || (last_sync_ms_.has_value() && now_ms - *last_sync_ms_ < kEverySecMs)) {
    return false;
  }
  if (Result<void> r = SyncActive(); !r.ok()) {
    return Unexpected(r.error());
  }
  last_sync_ms_ = now_ms;
  return true;
}

Result<void> OpLog::Sync() { return Flush(FsyncPolicy::kAlways); }

// ---- Reading and compaction ----

void OpLog::PushRing(std::string_view payload) {
  if (options_.ring_bytes_max == 0) {
    ++ring_first_index_;  // no memory ring: Read() serves every record from the segments
    return;
  }
  ring_.emplace_back(payload);
  ring_bytes_ += payload.size();
  // Keep at least the newest record, however big, so the ring always ends at next_index_ - 1.
  while (ring_.size() > 1 && ring_bytes_ > options_.ring_bytes_max) {
    ring_bytes_ -= ring_.front().size();
    ring_.pop_front();
    ++ring_first_index_;
  }
}

Result<std::vector<std::string>> OpLog::Read(uint64_t from, size_t count_max, size_t bytes_max) {
  if (Result<void> r = CheckUsable(); !r.ok()) {
    return Unexpected(r.error());
  }
  LATTICE_ASSERT(from >= first_index() && from <= next_index_);
  if (from < ring_first_index_) {
    return ReadFromSegments(from, count_max, bytes_max);
  }
  std::vector<std::string> out;
  size_t bytes = 0;
  for (uint64_t i = from; i < next_index_ && out.size() < count_max; ++i) {
    if (!out.empty() && bytes >= bytes_max) {
      break;
    }
    out.push_back(ring_[i - ring_first_index_]);
    bytes += out.back().size();
  }
  return out;
}

Result<std::vector<std::string>> OpLog::ReadFromSegments(uint64_t from, size_t count_max,
                                                         size_t bytes_max) {
  if (Result<void> r = WriteBuffer(); !r.ok()) {  // the records may still be buffered
    return Unexpected(r.error());
  }
  auto it = std::upper_bound(segments_.begin(), segments_.end(), from,
                             [](uint64_t i, const Segment& s) { return i < s.first_index; });
  std::vector<std::string> out;
  size_t bytes = 0;
  for (--it; it != segments_.end() && out.size() < count_max; ++it) {
    Result<std::string> data = storage_.ReadAll(it->name);
    if (!data.ok()) {
      return WithContext("op log: read", data.error());
    }
    ParsedSegment parsed = ParseSegment(*data);
    if (!parsed.error.empty()) {
      return Unexpected(ErrorCode::kCorrupt,
                        "op log: corrupt record in " + it->name + " (" + parsed.error + ")");
    }
    for (size_t k = from > it->first_index ? from - it->first_index : 0;
         k < parsed.payloads.size() && out.size() < count_max; ++k) {
      if (!out.empty() && bytes >= bytes_max) {
        return out;
      }
      out.emplace_back(parsed.payloads[k]);
      bytes += parsed.payloads[k].size();
    }
  }
  return out;
}

Result<void> OpLog::TruncatePrefix(uint64_t index) {
  if (Result<void> r = CheckUsable(); !r.ok()) {
    return r;
  }
  LATTICE_ASSERT(index <= next_index_);
  // Segment i holds records [first_index(i), first_index(i + 1)): removable when that is < index.
  size_t removable = 0;
  while (removable + 1 < segments_.size() && segments_[removable + 1].first_index <= index) {
    ++removable;
  }
  for (size_t i = 0; i < removable; ++i) {
    if (Result<void> r = storage_.Remove(segments_.front().name); !r.ok()) {
      return WithContext("op log: compaction", r.error());
    }
    segments_.erase(segments_.begin());  // one at a time: a failure leaves the list true
  }
  return {};
}

// ---- Snapshot: "LATSNAP1" [covers_index u64][length u64][CRC32C u32 of the 16 bytes + data]

Result<void> OpLog::WriteSnapshot(std::string_view bytes, uint64_t covers_index) {
  std::string file(kSnapshotMagic);
  std::string fields;
  PutFixed64(fields, covers_index);
  PutFixed64(fields, bytes.size());
  file += fields;
  PutFixed32(file, Crc32cExtend(Crc32c(fields), bytes));
  file.append(bytes);
  if (Result<void> r = storage_.WriteAtomically(kSnapshotName, file); !r.ok()) {
    return WithContext("snapshot: write", r.error());
  }
  return {};
}

Result<std::optional<Snapshot>> OpLog::ReadSnapshot() {
  Result<std::vector<std::string>> names = storage_.List();
  if (!names.ok()) {
    return WithContext("snapshot: list", names.error());
  }
  if (!std::binary_search(names->begin(), names->end(), std::string(kSnapshotName))) {
    return std::optional<Snapshot>();
  }
  Result<std::string> file = storage_.ReadAll(kSnapshotName);
  if (!file.ok()) {
    return WithContext("snapshot: read", file.error());
  }
  std::string_view view = *file;
  constexpr size_t kFixedBytes = 8 + 16 + 4;
  if (view.size() < kFixedBytes || !view.starts_with(kSnapshotMagic)) {
    return Unexpected(ErrorCode::kCorrupt,
                      "snapshot: not a snapshot file (bad magic or too short)");
  }
  std::string_view fields = view.substr(8, 16);
  std::string_view data = view.substr(kFixedBytes);
  if (GetFixed64(fields.substr(8)) != data.size()) {
    return Unexpected(ErrorCode::kCorrupt, "snapshot: length mismatch");
  }
  if (GetFixed32(view.substr(24)) != Crc32cExtend(Crc32c(fields), data)) {
    return Unexpected(ErrorCode::kCorrupt, "snapshot: bad checksum");
  }
  return std::optional<Snapshot>(Snapshot{std::string(data), GetFixed64(fields)});
}

// ---- Replica identity: "lattice-replica-id <16 hex digits> <8 hex digits of CRC32C>\n"

namespace {

std::string IdentityLine(ReplicaId id) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016" PRIx64, id);
  char crc[9];
  std::snprintf(crc, sizeof(crc), "%08" PRIx32, Crc32c(hex));
  return std::string("lattice-replica-id ") + hex + " " + crc + "\n";
}

}  // namespace

Result<std::optional<ReplicaId>> ReplicaIdentity::Load(Storage& storage) {
  Result<std::vector<std::string>> names = storage.List();
  if (!names.ok()) {
    return WithContext("replica id: list", names.error());
  }
  if (!std::binary_search(names->begin(), names->end(), std::string(kIdentityName))) {
    return std::optional<ReplicaId>();
  }
  Result<std::string> text = storage.ReadAll(kIdentityName);
  if (!text.ok()) {
    return WithContext("replica id: read", text.error());
  }
  unsigned long long id = 0;  // NOLINT: sscanf's type
  char line_end = 0;
  if (std::sscanf(text->c_str(), "lattice-replica-id %16llx %*8x%c", &id, &line_end) != 2 ||
      line_end != '\n' || id == kNoReplica || IdentityLine(id) != *text) {
    return Unexpected(ErrorCode::kCorrupt, "replica id: the file '" + std::string(kIdentityName) +
                                               "' is damaged (bad format or checksum)");
  }
  return std::optional<ReplicaId>(id);
}

Result<ReplicaId> ReplicaIdentity::LoadOrCreate(Storage& storage, ReplicaId fresh_id) {
  LATTICE_ASSERT_MSG(fresh_id != kNoReplica, "0 is not a replica id: draw another");
  Result<std::optional<ReplicaId>> stored = Load(storage);
  if (!stored.ok()) {
    return Unexpected(stored.error());
  }
  if (stored->has_value()) {
    return **stored;
  }
  if (Result<void> r = storage.WriteAtomically(kIdentityName, IdentityLine(fresh_id)); !r.ok()) {
    return WithContext("replica id: write", r.error());
  }
  return fresh_id;
}

Result<void> ReplicaIdentity::Replace(Storage& storage, ReplicaId fresh_id) {
  LATTICE_ASSERT_MSG(fresh_id != kNoReplica, "0 is not a replica id: draw another");
  if (Result<void> r = storage.WriteAtomically(kIdentityName, IdentityLine(fresh_id)); !r.ok()) {
    return WithContext("replica id: write", r.error());
  }
  return {};
}

}  // namespace lattice::repl
