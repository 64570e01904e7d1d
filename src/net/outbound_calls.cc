#include "net/outbound_calls.h"

#include <chrono>
#include <utility>
#include <vector>

#include "net/endpoint.h"

namespace lattice::net {

struct OutboundCalls::Conn {
  explicit Conn(asio::io_context& io) : socket(io), deadline(io) {}
  tcp::socket socket;
  asio::steady_timer deadline;
};

namespace {

// Closes the socket if the next step takes longer than `timeout_ms` (the step then fails).
void Arm(const std::shared_ptr<OutboundCalls::Conn>& conn, int64_t timeout_ms);

}  // namespace

void OutboundCalls::Exchange(const std::string& host, int port, std::string request, size_t replies,
                             int64_t timeout_ms, Done done) {
  auto conn = std::make_shared<Conn>(io_);
  asio::co_spawn(io_,
                 Run(conn, host, port, std::move(request), replies, timeout_ms, std::move(done)),
                 asio::detached);
}

namespace {

void Arm(const std::shared_ptr<OutboundCalls::Conn>& conn, int64_t timeout_ms) {
  conn->deadline.expires_after(std::chrono::milliseconds(timeout_ms));
  conn->deadline.async_wait([conn](const boost::system::error_code& waited) {
    if (!waited) {
      boost::system::error_code ignored;
      conn->socket.close(ignored);
    }
  });
}

// Reads until `count` whole replies are decoded; an error text when the connection fails, times
// out or sends what is not RESP.
asio::awaitable<Result<std::vector<server::RespValue>>> ReadReplies(
    std::shared_ptr<OutboundCalls::Conn> conn, size_t count, int64_t timeout_ms) {
  std::vector<server::RespValue> replies;
  std::string pending;
  std::vector<char> buffer(64 * 1024);
  boost::system::error_code ec;
  while (replies.size() < count) {
    size_t used = 0;
    Result<server::RespValue> reply = server::DecodeReply(pending, &used);
    if (reply.ok()) {
      replies.push_back(std::move(*reply));
      pending.erase(0, used);
      continue;
    }
    if (reply.error().message != "incomplete reply") {
      co_return Unexpected(std::string(server::Outbound::kReadError));
    }
    Arm(conn, timeout_ms);
    const size_t n = co_await conn->socket.async_read_some(
        asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
    conn->deadline.cancel();
    if (ec) co_return Unexpected(std::string(server::Outbound::kReadError));
    pending.append(buffer.data(), n);
  }
  co_return replies;
}

}  // namespace

asio::awaitable<void> OutboundCalls::Run(std::shared_ptr<Conn> conn, std::string host, int port,
                                         std::string request, size_t replies, int64_t timeout_ms,
                                         Done done) {
  const std::shared_ptr<bool> stopped = stopped_;
  Result<std::vector<server::RespValue>> result =
      Unexpected(std::string(server::Outbound::kConnectError));
  boost::system::error_code ec = co_await DialWithin(conn, host, port, timeout_ms);
  if (!ec) {
    Arm(conn, timeout_ms);
    co_await asio::async_write(conn->socket, asio::buffer(request),
                               asio::redirect_error(asio::use_awaitable, ec));
    conn->deadline.cancel();
    // (not a conditional expression: GCC 12 miscompiles co_await inside one)
    if (ec) {
      result = Unexpected(std::string(server::Outbound::kWriteError));
    } else {
      result = co_await ReadReplies(conn, replies, timeout_ms);
    }
  }
  boost::system::error_code ignored;
  conn->socket.close(ignored);
  if (*stopped) co_return;
  done(std::move(result));
  node_.EndOfBatch();
}

}  // namespace lattice::net
