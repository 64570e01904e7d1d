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
  tcp::socket socket;                         // the plain connection; moved into `tls` under TLS
  std::unique_ptr<TlsStream> tls;             // tls-replication yes
  std::shared_ptr<ssl::context> tls_context;  // held for the connection's life
  asio::steady_timer deadline;
  std::string out;  // waiting to be written
  bool writing = false;
  bool closed = false;
  tcp::socket& Lowest() { return tls ? tls->next_layer() : socket; }
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
  if (!conn_->writing && conn_->Lowest().is_open()) {
    conn_->writing = true;
    asio::co_spawn(io_, Write(conn_), asio::detached);
  }
}

void ReplicaClient::Close() {
  if (conn_ == nullptr) return;
  conn_->closed = true;
  boost::system::error_code ignored;
  conn_->Lowest().close(ignored);
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
    if (conn->tls) {
      co_await asio::async_write(*conn->tls, asio::buffer(batch),
                                 asio::redirect_error(asio::use_awaitable, ec));
    } else {
      co_await asio::async_write(conn->socket, asio::buffer(batch),
                                 asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) {
      boost::system::error_code ignored;
      conn->Lowest().close(ignored);  // the read loop reports the drop
      break;
    }
  }
  conn->writing = false;
}

// tls-replication yes: the TLS handshake as a client, the primary's certificate verified against
// tls-ca-cert-file/-dir (as Valkey's replica: no host name check), ours presented. Empty, or why
// it failed.
asio::awaitable<std::string> ReplicaClient::Secure(std::shared_ptr<Conn> conn) {
  if (tls_ == nullptr || !tls_->loaded()) {
    co_return "tls-replication is on but TLS is not configured";
  }
  conn->tls_context = tls_->client_context();
  conn->tls = std::make_unique<TlsStream>(std::move(conn->socket), *conn->tls_context);
  boost::system::error_code ec;
  conn->tls->set_verify_mode(ssl::verify_peer, ec);
  conn->deadline.expires_after(std::chrono::milliseconds(kConnectTimeoutMs));
  conn->deadline.async_wait([conn](const boost::system::error_code& waited) {
    boost::system::error_code ignored;
    if (!waited) conn->Lowest().close(ignored);
  });
  co_await conn->tls->async_handshake(ssl::stream_base::client,
                                      asio::redirect_error(asio::use_awaitable, ec));
  conn->deadline.cancel();
  if (conn->closed) co_return "closed";
  if (ec) co_return "TLS handshake failed: " + HandshakeFailure(*conn->tls, ec);
  co_return "";
}

asio::awaitable<size_t> ReplicaClient::ReadSome(std::shared_ptr<Conn> conn,
                                                std::vector<char>& buffer,
                                                boost::system::error_code& ec) {
  if (conn->tls) {
    co_return co_await conn->tls->async_read_some(asio::buffer(buffer),
                                                  asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return co_await conn->socket.async_read_some(asio::buffer(buffer),
                                                  asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<void> ReplicaClient::Run(std::shared_ptr<Conn> conn, std::string host, int port) {
  server::ReplicaOf& replica = node_.server().replica_of();
  const auto now_ms = [this] { return node_.clock().NowMs(); };
  boost::system::error_code ec = co_await DialWithin(conn, host, port, kConnectTimeoutMs);
  if (conn->closed) co_return;
  std::string failure = ec ? "can't connect: " + ec.message() : "";
  if (!ec) conn->socket.set_option(tcp::no_delay(true), ec);
  if (failure.empty() && node_.server().config().tls_replication()) {
    failure = co_await Secure(conn);
    if (conn->closed) co_return;
  }
  if (!failure.empty()) {
    replica.OnClosed(failure, now_ms());
    node_.EndOfBatch();
    co_return;
  }
  replica.OnConnected(now_ms());
  node_.EndOfBatch();
  std::vector<char> buffer(256 * 1024);
  while (!conn->closed) {
    const size_t n = co_await ReadSome(conn, buffer, ec);
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
