#pragma once
// LoadSlices runs the server's dataset load (server/rdb_import.h's DatasetLoading: --import-rdb,
// a replica's full resync) on the event loop one slice at a time, as Valkey serves events while
// it loads: each slice (about 10 ms of loading) is posted behind the handlers already ready, so
// the clients (answered -LOADING or served), the peers and the timer run between slices, and
// each slice ends its batch like any other input (the op log is written once per turn, and the
// ops reach the other regions as the load goes).
//
// Ownership: installs the slice hook for its lifetime; the io_context and the Node must outlive
// it. Event-loop thread only.

#include "net/asio.h"
#include "node/node.h"

namespace lattice::net {

class LoadSlices {
 public:
  LoadSlices(asio::io_context& io, server::Node& node);
  ~LoadSlices();
  LoadSlices(const LoadSlices&) = delete;
  LoadSlices& operator=(const LoadSlices&) = delete;

 private:
  void Post();

  asio::io_context& io_;
  server::Node& node_;
};

}  // namespace lattice::net
