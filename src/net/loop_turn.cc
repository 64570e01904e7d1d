#include "net/loop_turn.h"

#include "net/busy_period.h"

namespace lattice::net {

LoopTurn::LoopTurn(asio::io_context& io, server::Node& node) : io_(io), node_(node) {
  node_.set_end_of_turn_hook([this] { Request(); });
}

LoopTurn::~LoopTurn() { node_.set_end_of_turn_hook(nullptr); }

void LoopTurn::Request() {
  if (posted_) return;
  posted_ = true;
  // Behind every handler already queued: the rest of this turn's ready sockets run first.
  asio::post(io_, [this] { End(); });
}

// Log before reply: Node::EndOfTurn writes (and syncs per appendfsync) the op log before any
// waiting client is released to write its replies. A released client only writes; a client that
// runs commands again does so in a later handler, and waits for the next turn's end.
void LoopTurn::End() {
  if (node_.busy()) {  // a script holds the command path: the turn ends after it (busy_period.h)
    PostWhenNotBusy(io_.get_executor(), node_, [this] { End(); });
    return;
  }
  posted_ = false;
  node_.EndOfTurn();
  releasing_.swap(waiters_);
  for (std::unique_ptr<WaiterBase>& waiter : releasing_) {
    waiter->Release();
  }
  releasing_.clear();
}

}  // namespace lattice::net
