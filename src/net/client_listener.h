#pragma once
// ClientListener accepts RESP client connections, on the plain port and (with a Tls) on the TLS
// port, and runs one coroutine per connection on the event-loop thread that owns the Server. The
// session loop is one template over the byte stream (a TCP socket or a TLS stream over one). Each
// connection reads into a reused buffer, parses every complete command in it, executes them in
// order, waits for the end of the event-loop turn (net/loop_turn.h: the op log written for every
// client of the turn) and writes all their replies with one write (pipelining). Protocol errors
// reply and close; a client over client-query-buffer-limit is closed without a reply, as Valkey
// does. A Pub/Sub message for a client (ClientState::push_hook) queues behind its replies; while
// the client waits for input a flush of its own writes it once the turn ended, and a subscriber
// whose pending output passes client-output-buffer-limit pubsub is closed. While a script is busy
// the sessions keep serving (net/busy_period.h): each command then gets BUSY or is allow-busy,
// neither writes an op, and the replies leave at once. Not thread-safe:
// everything runs on one io_context thread.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lattice/common/result.h"
#include "net/asio.h"
#include "net/busy_period.h"
#include "net/loop_turn.h"
#include "net/read_available.h"
#include "node/node.h"
#include "server/server.h"

namespace lattice::net {

class Tls;

class ClientListener {
 public:
  // `turn` ends the event-loop turns of `node`; both must outlive the listener.
  ClientListener(asio::io_context& io, server::Node& node, LoopTurn& turn);

  // Binds every address of `bind` (Valkey's `bind` list; "*" is 0.0.0.0, "-::*" / "::*" IPv6
  // any, a leading '-' marks an address that may be unavailable) on `port`; port 0 opens no
  // plain TCP listener, as in Valkey. Starts the client cron either way.
  Result<void> Listen(const std::vector<std::string>& bind, int port);
  // The TLS port (tls-port), with the contexts of `tls` (which must be loaded and outlive this).
  Result<void> ListenTls(const std::vector<std::string>& bind, int port, Tls* tls);

  // Closes the acceptors and every client connection.
  void Stop();

  // The port actually bound (for --port 0 in tests).
  int bound_port() const { return bound_port_; }
  int bound_tls_port() const { return bound_tls_port_; }

 private:
  asio::awaitable<void> AcceptLoop(tcp::acceptor& acceptor, bool tls);
  asio::awaitable<void> PlainSession(tcp::socket socket);
  asio::awaitable<void> TlsSession(tcp::socket socket);
  template <typename Stream>
  asio::awaitable<void> Session(Stream& stream);
  // A read of the client's socket that may still be in flight when the coroutine that started it
  // moves on (one started while the client was blocked). Its handler cancels `wake`.
  struct PendingRead {
    bool outstanding = false;
    bool done = false;
    boost::system::error_code ec;
    size_t bytes = 0;
  };
  // Holds a blocked client (server/blocking.h) until the registry served it, its deadline
  // passed, or it closed; reads (and keeps in `held`) what it sends meanwhile, so a client that
  // disconnects while blocked is noticed and removed. False: the connection ends.
  template <typename Stream>
  asio::awaitable<bool> WaitWhileBlocked(Stream& stream, server::ClientState& client,
                                         std::vector<char>& buffer, std::string& held,
                                         PendingRead& read, asio::steady_timer& wake);
  // Pushed messages (Pub/Sub) and their writes outside a read batch: client_listener.cc.
  struct Outbox;
  template <typename Stream>
  void InstallPushHook(Stream& stream, server::ClientState& client, Outbox& box);
  template <typename Stream>
  asio::awaitable<void> Flush(Stream& stream, server::ClientState& client, Outbox& box);
  template <typename Stream>
  asio::awaitable<bool> WriteOut(Stream& stream, server::ClientState& client, Outbox& box);
  enum class WriteNow { kWritten, kPartial, kFailed };
  template <typename Stream>
  WriteNow TryWriteNow(Stream& stream, server::ClientState& client, Outbox& box);
  void Wrote(server::ClientState& client, size_t bytes);
  void LeftSoftLimit(Outbox& box);
  asio::awaitable<void> WaitFlushed(Outbox& box);
  bool OverOutputLimit(Outbox& box);
  void Cron();

  asio::io_context& io_;
  server::Node& node_;
  LoopTurn& turn_;
  server::Server& server_;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  asio::steady_timer cron_timer_;
  Tls* tls_ = nullptr;
  int bound_port_ = 0;
  int bound_tls_port_ = 0;
  bool stopping_ = false;
  BusyPeriod busy_;       // serves clients while a script is busy (net/busy_period.h)
  ReadAvailable reader_;  // plain TCP reads (net/read_available.h)
};

}  // namespace lattice::net
