#include "net/node_timer.h"

#include <chrono>

#include "net/busy_period.h"

namespace lattice::net {

void NodeTimer::Stop() {
  stopping_ = true;
  timer_.cancel();
}

void NodeTimer::Run() {
  if (stopping_) return;
  if (node_.busy()) {  // a script holds the command path (busy_period.h)
    PostWhenNotBusy(timer_.get_executor(), node_, [this] { Run(); });
    return;
  }
  const int64_t next_ms = node_.Tick();
  node_.EndOfBatch();
  timer_.expires_after(std::chrono::milliseconds(next_ms));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) Run();
  });
}

}  // namespace lattice::net
