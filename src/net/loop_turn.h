#pragma once
// LoopTurn ends each turn of the event loop once, as Valkey's beforeSleep does, instead of once
// per client read batch. A turn is what the io_context runs between two looks at the sockets:
// the handlers whose sockets were ready. The first input handled in a turn (a client batch, peer
// frames, the cluster bus, the timer: whatever calls Node::EndOfBatch) posts one end-of-turn
// handler, which Asio queues behind every handler already ready. That handler calls
// Node::EndOfTurn once (the migration stream flushed, the op log written and synced per
// appendfsync, then the peer sends) and only then releases the clients that wait to write their
// replies (AsyncWaitEnd), so one write(2) to the op log covers the ops of every client of the turn
// and log-before-reply and log-before-send still hold.
//
// It also keeps the turn's time: the wall clock and the monotonic clock are read once, when the
// first input of the turn asks for them (Node::TurnNow), and forgotten at the end of the turn.
//
// Ownership: installs itself as the Node's end-of-turn hook for its lifetime; the Node and the
// io_context must outlive it. Event-loop thread only.

#include <memory>
#include <utility>
#include <vector>

#include "net/asio.h"
#include "node/node.h"

namespace lattice::net {

class LoopTurn {
 public:
  LoopTurn(asio::io_context& io, server::Node& node);
  ~LoopTurn();
  LoopTurn(const LoopTurn&) = delete;
  LoopTurn& operator=(const LoopTurn&) = delete;

  // Asks for the end of this turn; only the first request of a turn posts the handler.
  void Request();

  // Completes (void()) once the end of the current turn has run: every op executed before the
  // call is in the op log, so replies written after it may leave.
  template <typename CompletionToken>
  auto AsyncWaitEnd(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void()>(
        [this](auto handler) {
          waiters_.push_back(std::make_unique<Waiter<decltype(handler)>>(std::move(handler)));
          Request();
        },
        token);
  }

 private:
  struct WaiterBase {
    virtual ~WaiterBase() = default;
    virtual void Release() = 0;
  };
  template <typename Handler>
  struct Waiter final : WaiterBase {
    explicit Waiter(Handler h) : handler(std::move(h)) {}
    void Release() override { std::move(handler)(); }
    Handler handler;
  };

  void End();

  asio::io_context& io_;
  server::Node& node_;
  bool posted_ = false;
  std::vector<std::unique_ptr<WaiterBase>> waiters_;
  std::vector<std::unique_ptr<WaiterBase>> releasing_;  // reused between turns
};

}  // namespace lattice::net
