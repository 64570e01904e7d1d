#include "net/replica_client.h"

#include <chrono>
#include <vector>

#include "net/busy_period.h"
#include "net/endpoint.h"

namespace lattice::net {
namespace {

constexpr int64_t kConnectTimeoutMs = 5000;

}  // namespace

struct ReplicaClient::Conn {
  explicit Conn(asio::io_context& io) : socket(io), deadline(io) {}
  tcp::socket socket;
  asio::steady_timer deadline;
  std::string out;  // waiting to be written
  bool writing = false;
  bool closed = false;
};

ReplicaClient::ReplicaClient(asio::io_context& io, server::Node& node) : io_(io), node_(node) {}

ReplicaClient::~ReplicaClient() { Close(); }

void ReplicaClient::Connect(const std::string& host, int port) {
  Close();
  if (stopping_) return;
  conn_ = std::make_shared<Conn>(io_);
  asio::co_spawn(io_, Run(conn_, host, port), asio::detached);
}

void ReplicaClient::Send(std::string_view bytes) {
  if (conn_ == nullptr || conn_->closed) return;
  conn_->out.append(bytes);
  if (!conn_->writing && conn_->socket.is_open()) {
    conn_->writing = true;
    asio::co_spawn(io_, Write(conn_), asio::detached);
  }
}

void ReplicaClient::Close() {
  if (conn_ == nullptr) return;
  conn_->closed = true;
  boost::system::error_code ignored;
  conn_->socket.close(ignored);
  conn_->deadline.cancel();
  conn_.reset();
}

void ReplicaClient::Stop() {
  stopping_ = true;
  Close();
}

asio::awaitable<void> ReplicaClient::Write(std::shared_ptr<Conn> conn) {
  boost::system::error_code ec;
  while (!conn->closed && !conn->out.empty()) {
    const std::string batch = std::move(conn->out);
    conn->out.clear();
    co_await asio::async_write(conn->socket, asio::buffer(batch),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      boost::system::error_code ignored;
      conn->socket.close(ignored);  // the read loop reports the drop
      break;
    }
  }
  conn->writing = false;
}

asio::awaitable<void> ReplicaClient::Run(std::shared_ptr<Conn> conn, std::string host, int port) {
  server::ReplicaOf& replica = node_.server().replica_of();
  const auto now_ms = [this] { return node_.clock().NowMs(); };
  boost::system::error_code ec = co_await DialWithin(conn, host, port, kConnectTimeoutMs);
  if (conn->closed) co_return;
  if (ec) {
    replica.OnClosed("can't connect: " + ec.message(), now_ms());
    node_.EndOfBatch();
    co_return;
  }
  conn->socket.set_option(tcp::no_delay(true), ec);
  replica.OnConnected(now_ms());
  node_.EndOfBatch();
  std::vector<char> buffer(256 * 1024);
  while (!conn->closed) {
    const size_t n = co_await conn->socket.async_read_some(
        asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
    if (node_.busy()) co_await AwaitNotBusy(node_);  // busy_period.h
    if (conn->closed) co_return;
    if (ec) break;
    replica.OnBytes(std::string_view(buffer.data(), n), now_ms());
    node_.EndOfBatch();
  }
  if (conn->closed) co_return;
  replica.OnClosed(ec ? ec.message() : "closed", now_ms());
  node_.EndOfBatch();
}

}  // namespace lattice::net
