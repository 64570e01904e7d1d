#pragma once
// NodeTimer runs a Node's periodic work on the event loop: it calls Node::Tick when the Node says
// the next work is due (server cron at hz, replication every 50 ms, cluster every 10 ms), then
// ends the batch, as any other input does. The work itself is the Node's; this is only the timer.
//
// Event-loop thread only; the Node must outlive the timer's last wait (Stop() first).

#include <cstdint>

#include "net/asio.h"
#include "node/node.h"

namespace lattice::net {

class NodeTimer {
 public:
  NodeTimer(asio::io_context& io, server::Node& node) : node_(node), timer_(io) {}
  NodeTimer(const NodeTimer&) = delete;
  NodeTimer& operator=(const NodeTimer&) = delete;

  void Start() { Run(); }
  void Stop();

 private:
  void Run();

  server::Node& node_;
  asio::steady_timer timer_;
  bool stopping_ = false;
};

}  // namespace lattice::net
