#pragma once
// Outbound is the seam through which a command talks to another server: MIGRATE's copy of
// values to any Valkey-compatible server. The server layer does no I/O, so the network layer
// implements it (net/outbound_calls.h) and installs it with Server::set_outbound; without one
// (the simulator, unit tests) such commands reply an error.
//
// Event-loop thread only: `done` runs on it, later, never inside Exchange.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/result.h"
#include "resp/reply_decoder.h"

namespace lattice::server {

class Outbound {
 public:
  // The error texts of a failed exchange (Valkey's MIGRATE wording).
  static constexpr std::string_view kConnectError =
      "IOERR error or timeout connecting to the client";
  static constexpr std::string_view kWriteError =
      "IOERR error or timeout writing to target instance";
  static constexpr std::string_view kReadError =
      "IOERR error or timeout reading from target instance";

  using Done = std::function<void(Result<std::vector<RespValue>>)>;
  virtual ~Outbound() = default;
  // Connects to host:port within `timeout_ms`, writes `request` (RESP commands) and reads
  // `replies` replies, each within `timeout_ms` of the previous progress; then calls `done` with
  // them, or with one of the errors above. The connection is closed afterwards.
  virtual void Exchange(const std::string& host, int port, std::string request, size_t replies,
                        int64_t timeout_ms, Done done) = 0;
};

}  // namespace lattice::server
