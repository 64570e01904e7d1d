#include "store/rdb_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "fmt/format.h"
#include "store/rdb_file.h"
#include "store/rdb_value.h"
#include "util/rdb.h"

namespace lattice::server {
namespace {

constexpr size_t kChunkBytes = 64 * 1024;

// Buffers the file's bytes, keeps the running CRC-64 and hands full chunks on.
class Writer {
 public:
  explicit Writer(const std::function<bool(std::string_view)>& out) : out_(out) {}

  std::string& buffer() { return buffer_; }
  // Hands the buffer on once it holds a chunk.
  bool Spill() { return buffer_.size() < kChunkBytes || Drain(); }
  bool Drain() {
    crc_ = Crc64(crc_, buffer_);
    bytes_ += buffer_.size();
    const bool ok = buffer_.empty() || out_(buffer_);
    buffer_.clear();
    return ok;
  }
  uint64_t crc() const { return crc_; }
  uint64_t bytes() const { return bytes_; }

 private:
  const std::function<bool(std::string_view)>& out_;
  std::string buffer_;
  uint64_t crc_ = 0;
  uint64_t bytes_ = 0;
};

void PutLittleEndian(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}

void PutAux(std::string& out, std::string_view name, std::string_view value) {
  out.push_back(static_cast<char>(RdbOp::kAux));
  RdbPutString(out, name);
  RdbPutString(out, value);
}

Unexpected WriteFailed() { return Unexpected(ErrorCode::kIo, "the RDB output failed"); }

Error SystemError(const char* call, const std::string& path) {
  return Error{ErrorCode::kIo, std::string(call) + " " + path + ": " + std::strerror(errno)};
}

// Whether some stream has a consumer whose active time differs from its seen time: it is written
// as type 21 (store/rdb_stream.h), which needs RDB version 11 in the header. Reads only the
// streams' consumer slots.
bool AnyStreamNeedsType21(const Keyspace& keyspace) {
  bool found = false;
  for (int db = 0; db < keyspace.databases() && !found; ++db) {
    keyspace.ForEach(db, [&](const std::string&, const crdt::Key& stored) {
      if (found || stored.Type() != crdt::ObjectType::kStream) return;
      const crdt::Stream& stream = stored.stream();
      if (stream.group_items().empty()) return;
      for (const std::string& group : stream.GroupNames()) {
        stream.ForEachSlot(group, crdt::GroupPart::kConsumer,
                           [&](const crdt::GroupSlot&, const crdt::GroupValue& value) {
                             found |= value.active_ms != value.seen_ms;
                           });
      }
    });
    keyspace.ReleaseIterations();
  }
  return found;
}

}  // namespace

Result<RdbWriteSummary> WriteRdb(const Keyspace& keyspace, int64_t now_ms,
                                 const RdbWriteOptions& options,
                                 const std::function<bool(std::string_view)>& out) {
  RdbWriteSummary summary;
  bool field_ttls = false;
  for (int db = 0; db < keyspace.databases(); ++db) field_ttls |= keyspace.FieldTtlKeyCount(db) > 0;
  summary.version = field_ttls                       ? kFieldTtlRdbVersion
                    : AnyStreamNeedsType21(keyspace) ? kStream3RdbVersion
                                                     : kDumpRdbVersion;

  Writer w(out);
  std::string& buf = w.buffer();
  buf += field_ttls ? "VALKEY080" : fmt::format("REDIS{:04}", summary.version);
  PutAux(buf, "redis-ver", options.redis_ver);
  PutAux(buf, "redis-bits", "64");
  PutAux(buf, "ctime", std::to_string(options.ctime_s));
  PutAux(buf, "used-mem", std::to_string(options.used_mem));
  if (!options.repl_id.empty()) {
    PutAux(buf, "repl-stream-db", "0");
    PutAux(buf, "repl-id", options.repl_id);
    PutAux(buf, "repl-offset", std::to_string(options.repl_offset));
  }
  PutAux(buf, "aof-base", "0");

  bool ok = true;
  for (int db = 0; db < keyspace.databases() && ok; ++db) {
    const uint64_t size = keyspace.Size(db);
    if (size == 0) continue;
    buf.push_back(static_cast<char>(RdbOp::kSelectDb));
    RdbPutLength(buf, static_cast<uint64_t>(db));
    buf.push_back(static_cast<char>(RdbOp::kResizeDb));
    RdbPutLength(buf, size);
    RdbPutLength(buf, keyspace.VolatileCount(db));
    keyspace.ForEach(db, [&](const std::string& key, const crdt::Key& stored) {
      if (!ok) return;
      const VisibleValue value = ReadVisible(stored, now_ms);
      if (value.type == crdt::ObjectType::kNone) return;  // expired, or a tombstone
      if (!field_ttls && HasFieldTtls(value)) {           // FieldTtlKeyCount said none could: never
        ok = false;
        return;
      }
      if (value.expiry_ms.has_value()) {
        buf.push_back(static_cast<char>(RdbOp::kExpireTimeMs));
        PutLittleEndian(buf, static_cast<uint64_t>(*value.expiry_ms), 8);
      }
      std::string encoded = EncodeRdbValue(value);
      buf.push_back(encoded[0]);  // the type byte, then the key, then the value
      RdbPutString(buf, key);
      buf.append(encoded, 1);
      ++summary.keys;
      ok = w.Spill();
    });
    keyspace.ReleaseIterations();
  }
  if (!ok) return WriteFailed();
  buf.push_back(static_cast<char>(RdbOp::kEof));
  if (!w.Drain()) return WriteFailed();
  PutLittleEndian(buf, w.crc(), 8);
  if (!w.Drain()) return WriteFailed();
  summary.bytes = w.bytes();
  return summary;
}

Result<RdbWriteSummary> WriteRdbFile(const Keyspace& keyspace, int64_t now_ms,
                                     const RdbWriteOptions& options, const std::string& path) {
  const std::string temp = path + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Unexpected(SystemError("open", temp));
  Error failure;
  const auto write_all = [&](std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        failure = SystemError("write", temp);
        return false;
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  };
  Result<RdbWriteSummary> written = WriteRdb(keyspace, now_ms, options, write_all);
  if (written.ok() && ::fsync(fd) != 0) failure = SystemError("fsync", temp);
  ::close(fd);
  if (!written.ok() || !failure.message.empty()) {
    ::unlink(temp.c_str());
    return Unexpected(failure.message.empty() ? written.error() : failure);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const Error error = SystemError("rename", path);
    ::unlink(temp.c_str());
    return Unexpected(error);
  }
  return written;
}

}  // namespace lattice::server
