#include "lattice/repl/frame.h"

#include <utility>

#include "lattice/common/assert.h"
#include "lattice/repl/crc32c.h"

namespace lattice::repl {

namespace {

// The capacity FrameReader keeps between frames (a read chunk is 64 KiB).
constexpr size_t kFrameReaderKeepBytes = 256 * 1024;

void PutFixed32(uint32_t value, std::string& out) {
  const char bytes[4] = {static_cast<char>(value), static_cast<char>(value >> 8),
                         static_cast<char>(value >> 16), static_cast<char>(value >> 24)};
  out.append(bytes, 4);
}

uint32_t GetFixed32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{u[0]} | uint32_t{u[1]} << 8 | uint32_t{u[2]} << 16 | uint32_t{u[3]} << 24;
}

}  // namespace

void AppendFrame(std::string_view payload, std::string& out) {
  LATTICE_ASSERT(payload.size() <= UINT32_MAX);
  out.reserve(out.size() + kFrameHeaderBytes + payload.size());
  PutFixed32(static_cast<uint32_t>(payload.size()), out);
  PutFixed32(Crc32c(payload), out);
  out.append(payload);
}

void AppendFrame(std::string_view head, std::string_view tail, std::string& out) {
  LATTICE_ASSERT(head.size() <= UINT32_MAX && tail.size() <= UINT32_MAX - head.size());
  out.reserve(out.size() + kFrameHeaderBytes + head.size() + tail.size());
  PutFixed32(static_cast<uint32_t>(head.size() + tail.size()), out);
  PutFixed32(Crc32cExtend(Crc32c(head), tail), out);
  out.append(head);
  out.append(tail);
}

std::string EncodeFrame(std::string_view payload) {
  std::string out;
  AppendFrame(payload, out);
  return out;
}

void FrameReader::Feed(std::string_view bytes) {
  if (!error_.empty()) {
    return;
  }
  // Drop the frames already handed out before growing, so the buffer holds at most one partial
  // frame plus the new bytes.
  if (consumed_ > 0) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  // A large frame (a snapshot chunk) grew the buffer: once nothing of it is left, the capacity
  // goes too, so a quiet link holds none of a burst.
  if (buffer_.empty() && buffer_.capacity() > kFrameReaderKeepBytes) {
    std::string().swap(buffer_);
  }
  payload_ = {};
  buffer_.append(bytes);
}

FrameReader::Status FrameReader::Next() {
  if (!error_.empty()) {
    return Status::kError;
  }
  payload_ = {};
  const size_t available = buffer_.size() - consumed_;
  if (available < kFrameHeaderBytes) {
    return Status::kNeedMore;
  }
  const char* header = buffer_.data() + consumed_;
  const uint32_t length = GetFixed32(header);
  // Checked on the header alone: a huge length is refused before anything waits for its bytes.
  if (length > max_frame_bytes_) {
    return Fail("frame too large: " + std::to_string(length) + " bytes (max " +
                std::to_string(max_frame_bytes_) + ")");
  }
  if (available - kFrameHeaderBytes < length) {
    return Status::kNeedMore;
  }
  const std::string_view payload(header + kFrameHeaderBytes, length);
  if (Crc32c(payload) != GetFixed32(header + 4)) {
    return Fail("checksum mismatch");
  }
  consumed_ += kFrameHeaderBytes + length;
  payload_ = payload;
  return Status::kFrame;
}

FrameReader::Status FrameReader::Fail(std::string reason) {
  error_ = std::move(reason);
  buffer_.clear();
  consumed_ = 0;
  payload_ = {};
  return Status::kError;
}

}  // namespace lattice::repl
