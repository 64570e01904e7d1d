#pragma once
// ClusterBusLinks is the production server::ClusterBus: it carries cluster gossip and slot
// migration between nodes as ordinary RESP commands on their client ports (CLUSTER
// LATTICE-GOSSIP, CLUSTER SYNCSLOTS), one TCP connection per (address, channel), so commands of
// one channel arrive in the order sent. It authenticates with masterauth (or requirepass) when
// the node requires a password. A connection that fails (connect, write, a reply that does not
// parse, no reply within the timeout) is closed and every command waiting on it gets an error
// in order; the next Send dials again. The cluster's timer is the Node's (net/node_timer.h).
//
// Event-loop thread only, like the Server.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cluster/cluster.h"
#include "net/asio.h"
#include "node/node.h"

namespace lattice::net {

class ClusterBusLinks final : public server::ClusterBus {
 public:
  // Built before the Node it is the bus of; Attach() it before anything is sent.
  explicit ClusterBusLinks(asio::io_context& io);
  ~ClusterBusLinks() override;
  ClusterBusLinks(const ClusterBusLinks&) = delete;
  ClusterBusLinks& operator=(const ClusterBusLinks&) = delete;

  void Attach(server::Node& node) { node_ = &node; }
  void Stop();  // closes every connection; pending commands get an error

  void Send(const std::string& ip, int port, std::string_view channel,
            std::vector<std::string> args, ReplyHandler done) override;

 private:
  struct Conn;
  asio::awaitable<void> Run(std::shared_ptr<Conn> conn);
  void Fail(const std::shared_ptr<Conn>& conn, const std::string& why);

  asio::io_context& io_;
  server::Node* node_ = nullptr;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<Conn>> conns_;  // by "ip:port/channel"
};

}  // namespace lattice::net
