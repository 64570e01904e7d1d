#pragma once
// BusyPeriod serves clients while a Lua script runs past busy-reply-threshold, as Valkey's
// processEventsWhileBlocked does. The script engine calls its poll hook from the script's count
// hook (every 100,000 VM instructions once the script timed out); the hook runs the io_context's
// ready handlers once (a nested io_context::poll): accepts, reads, the parse of each command and
// its reply. The context must not use concurrency hint 1: in that one-thread mode a nested poll
// runs the handlers the running one posted without moving their outstanding-work count, which
// then drifts down by one each time until the context stops by itself (src/main.cc). Execute
// refuses every command but the allow-busy ones with BUSY (ScriptEngine::RefuseWhileBusy), and
// those (SCRIPT KILL, FUNCTION KILL, SHUTDOWN NOSAVE, AUTH, HELLO, MULTI, WATCH...) write no op, so
// the replies of the busy period leave at once, without waiting for the end of the turn.
//
// Re-entrancy: the script holds the command path (the caller's Execute is on the stack below
// the hook), so nothing that runs commands, applies ops or ends the turn may run from the poll.
// Every handler that would checks Node::busy() first and waits for the end of the busy period
// (AwaitNotBusy, Node::AfterBusy): the end of the turn (the op log write, the peer sends, the
// blocked clients served), Node::Tick (server cron, replication and cluster timers), peer link
// input (no region's op may interleave with a running script: its frames wait in the socket and
// the link's buffer), cluster bus replies, the client cron and blocked clients' deadlines. A
// client session only parses and executes, which is safe: every command of another client is
// refused or allow-busy, and a second script cannot start (EVAL is not allow-busy).
//
// Shutdown in the busy period (SHUTDOWN NOSAVE, SIGTERM): the stop handler stops the io_context;
// the hook sees it stopped and exits the process at once, without the rest of the script and
// without writing the turn's op log buffer (none of its ops was acknowledged or sent).
//
// Ownership: installs the engine's poll hook for its lifetime; the io_context and the Node must
// outlive it. Event-loop thread only.

#include <functional>

#include "net/asio.h"
#include "node/node.h"

namespace lattice::net {

// Returns at once when `node` is not busy; otherwise once its busy period ended.
asio::awaitable<void> AwaitNotBusy(server::Node& node);

// Posts `work` to run now when `node` is not busy, or once its busy period ended.
void PostWhenNotBusy(const asio::any_io_executor& executor, server::Node& node,
                     std::function<void()> work);

class BusyPeriod {
 public:
  BusyPeriod(asio::io_context& io, server::Node& node);
  ~BusyPeriod();
  BusyPeriod(const BusyPeriod&) = delete;
  BusyPeriod& operator=(const BusyPeriod&) = delete;

 private:
  void Poll();

  asio::io_context& io_;
  server::Node& node_;
};

}  // namespace lattice::net
