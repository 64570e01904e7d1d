#pragma once
// Replication frames: how encoded messages (lattice/repl/codec.h) travel over a byte stream.
//
//   offset 0: uint32 little-endian  payload length n
//   offset 4: uint32 little-endian  CRC32C (Castagnoli) of the n payload bytes
//   offset 8: n payload bytes       one encoded Message
//
// The length is checked against a maximum BEFORE any payload is buffered for it, so a corrupt or
// hostile length cannot make the reader allocate. A checksum or size failure is fatal for the
// link: the reader stays in the error state and the owner closes the connection with the reason
// (a bad frame never reaches the state). Value types; not thread-safe (one reader per link).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lattice::repl {

inline constexpr size_t kFrameHeaderBytes = 8;
inline constexpr uint32_t kDefaultMaxFrameBytes = 64u << 20;  // 64 MiB of payload

// The frame of one payload. Asserts payload.size() fits in 32 bits (a programmer error: callers
// keep messages far below the peer's maximum).
std::string EncodeFrame(std::string_view payload);
// Appends the frame of `payload` to `out` (batching several frames into one write).
void AppendFrame(std::string_view payload, std::string& out);
// Appends the frame of the payload `head` + `tail` (without joining them first).
void AppendFrame(std::string_view head, std::string_view tail, std::string& out);

// Incremental frame parser: Feed() any fragment of the stream, then call Next() until it
// returns kNeedMore (or kError). Correct under any fragmentation of the input.
class FrameReader {
 public:
  enum class Status { kFrame, kNeedMore, kError };

  explicit FrameReader(uint32_t max_frame_bytes = kDefaultMaxFrameBytes)
      : max_frame_bytes_(max_frame_bytes) {}

  // Buffers bytes from the stream. Ignored once the reader is in the error state.
  void Feed(std::string_view bytes);

  // kFrame: payload() holds the next frame's payload (valid until the next Next() or Feed()).
  // kNeedMore: no complete frame is buffered. kError: error() says why ("frame too large: ...",
  // "checksum mismatch"); every later call returns kError too.
  Status Next();

  std::string_view payload() const { return payload_; }
  const std::string& error() const { return error_; }
  // Bytes fed but not yet consumed by a returned frame.
  size_t buffered_bytes() const { return buffer_.size() - consumed_; }

 private:
  Status Fail(std::string reason);

  uint32_t max_frame_bytes_;
  std::string buffer_;
  size_t consumed_ = 0;  // bytes of buffer_ already returned as frames
  std::string_view payload_;
  std::string error_;
};

}  // namespace lattice::repl
