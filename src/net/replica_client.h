#pragma once
// ReplicaClient is the production server::PrimaryLink: the client side of the RESP connection a
// region following a Valkey or Redis primary (REPLICAOF) keeps to it. It only moves bytes: it
// dials, hands what arrives to the Server's ReplicaOf (server/replica_of.h, where the protocol
// lives), writes what that sends, and says when the connection drops. Each Connect() starts a
// new connection; Close() ends the current one without a callback. Under tls-replication yes
// the connection is TLS (net/tls.h's client context: our certificate presented, the primary's
// verified against the CA), as Valkey's replica dials its primary.
//
// Event-loop thread only, like the Node; Stop() before the io_context stops.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/asio.h"
#include "net/tls.h"
#include "node/node.h"
#include "server/replica_of.h"

namespace lattice::net {

class ReplicaClient final : public server::PrimaryLink {
 public:
  ReplicaClient(asio::io_context& io, server::Node& node);
  ~ReplicaClient() override;
  ReplicaClient(const ReplicaClient&) = delete;
  ReplicaClient& operator=(const ReplicaClient&) = delete;

  void Connect(const std::string& host, int port) override;
  void Send(std::string_view bytes) override;
  void Close() override;
  void Stop();
  // The TLS contexts (main's); needed only under tls-replication yes.
  void set_tls(Tls* tls) { tls_ = tls; }

 private:
  struct Conn;
  asio::awaitable<void> Run(std::shared_ptr<Conn> conn, std::string host, int port);
  asio::awaitable<void> Write(std::shared_ptr<Conn> conn);
  asio::awaitable<std::string> Secure(std::shared_ptr<Conn> conn);
  static asio::awaitable<size_t> ReadSome(std::shared_ptr<Conn> conn, std::vector<char>& buffer,
                                          boost::system::error_code& ec);

  asio::io_context& io_;
  server::Node& node_;
  Tls* tls_ = nullptr;
  std::shared_ptr<Conn> conn_;  // the current connection; null when none
  bool stopping_ = false;
};

}  // namespace lattice::net
