#pragma once
// Listening and endpoint text shared by the client port (client_listener.h) and the replication
// port (peer_links.h). Event-loop thread only.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/result.h"
#include "net/asio.h"

namespace lattice::net {

// "ip:port" as Valkey shows it (an IPv4-mapped IPv6 address as plain IPv4).
std::string EndpointText(const tcp::endpoint& endpoint);

// Binds and listens on every address of `bind` (Valkey's `bind` list: "*" is 0.0.0.0, "::*" IPv6
// any, a leading '-' marks an address that may be unavailable) on `port` (0: one ephemeral port,
// reused for every address). `what` names the listener in errors ("tcp", "replication").
Result<std::vector<std::unique_ptr<tcp::acceptor>>> OpenAcceptors(
    asio::io_context& io, const std::vector<std::string>& bind, int port, int backlog,
    std::string_view what);

// OpenAcceptors into `acceptors`, then spawns `loop(acceptor)` (an awaitable accept loop) on
// `io` for each. Returns the port bound.
template <typename Loop>
Result<int> ListenAll(asio::io_context& io, const std::vector<std::string>& bind, int port,
                      int backlog, std::string_view what,
                      std::vector<std::unique_ptr<tcp::acceptor>>& acceptors, Loop loop) {
  auto opened = OpenAcceptors(io, bind, port, backlog, what);
  if (!opened.ok()) {
    return Unexpected(opened.error());
  }
  acceptors = std::move(*opened);
  for (auto& acceptor : acceptors) {
    asio::co_spawn(io, loop(*acceptor), asio::detached);
  }
  return static_cast<int>(acceptors.front()->local_endpoint().port());
}

}  // namespace lattice::net
