#include "net/load_slices.h"

#include "net/busy_period.h"
#include "server/rdb_import.h"

namespace lattice::net {

LoadSlices::LoadSlices(asio::io_context& io, server::Node& node) : io_(io), node_(node) {
  node_.server().loading().set_slice_hook([this] { Post(); });
}

LoadSlices::~LoadSlices() { node_.server().loading().set_slice_hook(nullptr); }

void LoadSlices::Post() {
  PostWhenNotBusy(io_.get_executor(), node_, [this] {
    const bool more = node_.server().loading().Slice();
    node_.EndOfBatch();
    if (more) Post();
  });
}

}  // namespace lattice::net
