#pragma once
// Listening and endpoint text shared by the client port (client_listener.h) and the replication
// port (peer_links.h). Event-loop thread only.

#include <chrono>
#include <cstdint>
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

// Resolves host:port and connects conn->socket, closing it if that takes longer than
// `timeout_ms` (conn->deadline is the timer; it holds `conn` while it waits). The error:
// timed_out when the deadline closed the socket. Conn: a struct with `socket` and `deadline`.
template <typename Conn>
asio::awaitable<boost::system::error_code> DialWithin(std::shared_ptr<Conn> conn,
                                                      const std::string& host, int port,
                                                      int64_t timeout_ms) {
  boost::system::error_code ec;
  tcp::resolver resolver(conn->socket.get_executor());
  auto endpoints = co_await resolver.async_resolve(host, std::to_string(port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return ec;
  conn->deadline.expires_after(std::chrono::milliseconds(timeout_ms));
  conn->deadline.async_wait([conn](const boost::system::error_code& waited) {
    if (!waited) {
      boost::system::error_code ignored;
      conn->socket.close(ignored);
    }
  });
  co_await asio::async_connect(conn->socket, endpoints,
                               asio::redirect_error(asio::use_awaitable, ec));
  conn->deadline.cancel();
  if (!ec && !conn->socket.is_open()) ec = asio::error::timed_out;
  co_return ec;
}

}  // namespace lattice::net
