#pragma once
// OutboundCalls is the production server::Outbound: each Exchange dials a new TCP connection,
// writes the request, reads the expected replies and closes. After `done` it ends the batch on
// the node (Node::EndOfBatch), so the blocked clients its result wakes are served at once.
//
// Event-loop thread only; Stop() before the io_context stops (calls in flight then end without
// calling back).

#include <cstdint>
#include <memory>
#include <string>

#include "net/asio.h"
#include "node/node.h"
#include "server/outbound.h"

namespace lattice::net {

class OutboundCalls final : public server::Outbound {
 public:
  OutboundCalls(asio::io_context& io, server::Node& node) : io_(io), node_(node) {}
  OutboundCalls(const OutboundCalls&) = delete;
  OutboundCalls& operator=(const OutboundCalls&) = delete;

  void Exchange(const std::string& host, int port, std::string request, size_t replies,
                int64_t timeout_ms, Done done) override;
  void Stop() { *stopped_ = true; }
  struct Conn;  // one exchange's socket and deadline timer

 private:
  asio::awaitable<void> Run(std::shared_ptr<Conn> conn, std::string host, int port,
                            std::string request, size_t replies, int64_t timeout_ms, Done done);

  asio::io_context& io_;
  server::Node& node_;
  std::shared_ptr<bool> stopped_ = std::make_shared<bool>(false);
};

}  // namespace lattice::net
