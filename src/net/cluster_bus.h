#pragma once
// ClusterBusLinks is the production server::ClusterBus: it carries cluster gossip and slot
// migration between nodes as ordinary RESP commands on their client ports (CLUSTER
// LATTICE-GOSSIP, CLUSTER SYNCSLOTS), one TCP connection per (address, channel), so commands of
// one channel arrive in the order sent. It authenticates with masterauth (or requirepass) when
// the node requires a password. A connection that fails (connect, write, a reply that does not
// parse, no reply within the timeout) is closed and every command waiting on it gets an error
// in order; the next Send dials again. It also runs the cluster's timer (Cluster::Tick, every
// 10 ms).
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
#include "server/server.h"

namespace lattice::net {

class ClusterBusLinks final : public server::ClusterBus {
 public:
  ClusterBusLinks(asio::io_context& io, server::Server& server, server::Cluster& cluster);
  ~ClusterBusLinks() override;
  ClusterBusLinks(const ClusterBusLinks&) = delete;
  ClusterBusLinks& operator=(const ClusterBusLinks&) = delete;

  void Start();  // the cluster timer
  void Stop();   // closes every connection; pending commands get an error

  void Send(const std::string& ip, int port, std::string_view channel,
            std::vector<std::string> args, ReplyHandler done) override;

 private:
  struct Conn;
  asio::awaitable<void> Run(std::shared_ptr<Conn> conn);
  void Fail(const std::shared_ptr<Conn>& conn, const std::string& why);
  void Tick();

  asio::io_context& io_;
  server::Server& server_;
  server::Cluster& cluster_;
  asio::steady_timer tick_timer_;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<Conn>> conns_;  // by "ip:port/channel"
};

}  // namespace lattice::net
