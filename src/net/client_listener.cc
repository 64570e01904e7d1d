#include "net/client_listener.h"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frames (its operator new
// and operator delete are a matching pair in awaitable_frame_base) once a coroutine awaits
// another coroutine defined in the same file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <type_traits>

#include "net/endpoint.h"
#include "net/tls.h"
#include "spdlog/spdlog.h"
#include "store/replication.h"

namespace lattice::net {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kUnauthenticatedQueryBufferLimit = 1024 * 1024;
constexpr size_t kKeepOutputCapacity = 64 * 1024;
constexpr int64_t kTlsHandshakeTimeoutMs = 10'000;

tcp::socket& Lowest(tcp::socket& socket) { return socket; }
tcp::socket& Lowest(TlsStream& stream) { return stream.next_layer(); }

}  // namespace

ClientListener::ClientListener(asio::io_context& io, server::Node& node, LoopTurn& turn)
    : io_(io),
      node_(node),
      turn_(turn),
      server_(node.server()),
      cron_timer_(io),
      busy_(io, node),
      reader_(io) {}

Result<void> ClientListener::Listen(const std::vector<std::string>& bind, int port) {
  if (port != 0) {
    Result<int> bound =
        ListenAll(io_, bind, port, server_.config().tcp_backlog(), "tcp", acceptors_,
                  [this](tcp::acceptor& acceptor) { return AcceptLoop(acceptor, false); });
    if (!bound.ok()) {
      return Unexpected(bound.error());
    }
    bound_port_ = *bound;
  }
  Cron();
  return {};
}

Result<void> ClientListener::ListenTls(const std::vector<std::string>& bind, int port, Tls* tls) {
  tls_ = tls;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  Result<int> bound =
      ListenAll(io_, bind, port, server_.config().tcp_backlog(), "tls", acceptors,
                [this](tcp::acceptor& acceptor) { return AcceptLoop(acceptor, true); });
  if (!bound.ok()) {
    return Unexpected(bound.error());
  }
  for (auto& acceptor : acceptors) acceptors_.push_back(std::move(acceptor));
  bound_tls_port_ = *bound;
  return {};
}

void ClientListener::Stop() {
  stopping_ = true;
  boost::system::error_code ec;
  for (auto& acceptor : acceptors_) {
    acceptor->close(ec);
  }
  cron_timer_.cancel();
  const auto clients = server_.clients();  // copy: close hooks unregister clients
  for (const auto& [id, client] : clients) {
    client->killed = true;
    if (client->close_hook) client->close_hook();
  }
}

asio::awaitable<void> ClientListener::AcceptLoop(tcp::acceptor& acceptor, bool tls) {
  while (!stopping_) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) co_return;
      spdlog::warn("Accepting client connection: {}", ec.message());
      continue;
    }
    asio::co_spawn(io_, tls ? TlsSession(std::move(socket)) : PlainSession(std::move(socket)),
                   asio::detached);
  }
}

asio::awaitable<void> ClientListener::PlainSession(tcp::socket socket) { co_await Session(socket); }

// The TLS handshake (bounded in time), with the client certificate required, optional or not
// asked for as tls-auth-clients says; then the same session as on the plain port.
asio::awaitable<void> ClientListener::TlsSession(tcp::socket socket) {
  boost::system::error_code ec;
  const std::string addr = EndpointText(socket.remote_endpoint(ec));
  const std::string laddr = EndpointText(socket.local_endpoint(ec));
  std::shared_ptr<ssl::context> context = tls_->server_context();  // kept across a reload
  TlsStream stream(std::move(socket), *context);
  stream.set_verify_mode(ClientVerifyMode(server_.config().tls_auth_clients()), ec);
  asio::steady_timer deadline(io_);
  deadline.expires_after(std::chrono::milliseconds(kTlsHandshakeTimeoutMs));
  deadline.async_wait([&stream](const boost::system::error_code& waited) {
    boost::system::error_code ignored;
    if (!waited) stream.next_layer().close(ignored);
  });
  co_await stream.async_handshake(ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
  deadline.cancel();
  if (ec || stopping_) {
    spdlog::debug("Error accepting a client connection: {} (addr={} laddr={})",
                  HandshakeFailure(stream, ec), addr, laddr);
    co_return;
  }
  co_await Session(stream);
}

// Closes idle clients (config `timeout`) once per cron tick (1000/hz ms); the server's own cron
// is the Node's (net/node_timer.h).
void ClientListener::Cron() {
  const int hz = std::max(1, server_.config().hz());
  cron_timer_.expires_after(std::chrono::milliseconds(1000 / hz));
  cron_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    const int64_t timeout_s = server_.config().timeout();
    if (timeout_s > 0 && !node_.busy()) {  // (the script's own caller may look idle)
      const int64_t now_ms = server_.clock().NowMs();
      const auto clients = server_.clients();
      for (const auto& [id, client] : clients) {
        if (now_ms - client->last_interaction_ms > timeout_s * 1000 && client->close_hook &&
            !server_.blocking().IsBlocked(client)) {  // Valkey spares blocked clients
          client->killed = true;
          client->close_hook();
        }
      }
    }
    Cron();
  });
}

// What a session has to write. Replies and pushed messages queue in `out` (the ReplyBuilder's
// buffer); a write moves them to `wire` first, so whatever is pushed during the write (another
// client's PUBLISH) queues behind it. The session writes after each read batch; while it waits
// for input, a push starts a Flush of its own. The two never write at once: the session waits
// for a running Flush to end (`flushed` is cancelled then), and a Flush stops once the session
// has input again.
struct ClientListener::Outbox {
  explicit Outbox(asio::io_context& io) : flushed(io) {}
  std::string out;
  std::string wire;
  bool reading = false;        // the session waits for input
  bool flushing = false;       // a Flush runs
  int64_t soft_since_ms = -1;  // over the soft output limit since (-1: not over it)
  asio::steady_timer flushed;
};

// client-output-buffer-limit pubsub, checked as Valkey's checkClientOutputBufferLimits: over the
// hard limit at once, over the soft limit once it stayed over it longer than its seconds.
bool ClientListener::OverOutputLimit(Outbox& box) {
  const server::Config::OutputBufferLimit limit = server_.config().pubsub_output_buffer_limit();
  const uint64_t pending = box.out.size() + box.wire.size();
  if (limit.hard_bytes != 0 && pending >= limit.hard_bytes) return true;
  if (limit.soft_bytes == 0 || pending < limit.soft_bytes) {
    box.soft_since_ms = -1;
    return false;
  }
  const int64_t now_ms = server_.clock().NowMs();
  if (box.soft_since_ms < 0) {
    box.soft_since_ms = now_ms;
    return false;
  }
  return now_ms - box.soft_since_ms > limit.soft_seconds * 1000;
}

template <typename Stream>
void ClientListener::InstallPushHook(Stream& stream, server::ClientState& client, Outbox& box) {
  client.push_hook = [this, &stream, &client, &box](std::string_view bytes) {
    if (client.killed) return;
    box.out.append(bytes);
    if (OverOutputLimit(box)) {
      ++server_.stats().client_output_buffer_limit_disconnections;
      spdlog::warn(
          "Client id={} addr={} scheduled to be closed ASAP for overcoming of output "
          "buffer limits.",
          client.id, client.addr);
      client.killed = true;
      if (client.close_hook) client.close_hook();
      return;
    }
    if (box.reading && !box.flushing) {
      box.flushing = true;
      asio::co_spawn(io_, Flush(stream, client, box), asio::detached);
    }
  };
}

// Writes `out` (by way of `wire`); false when the write failed.
template <typename Stream>
asio::awaitable<bool> ClientListener::WriteOut(Stream& stream, server::ClientState& client,
                                               Outbox& box) {
  box.wire.swap(box.out);
  boost::system::error_code ec;
  co_await asio::async_write(stream, asio::buffer(box.wire),
                             asio::redirect_error(asio::use_awaitable, ec));
  Wrote(client, box.wire.size());
  box.wire.clear();
  if (box.wire.capacity() > kKeepOutputCapacity) box.wire.shrink_to_fit();
  if (!ec) LeftSoftLimit(box);
  co_return !ec;
}

void ClientListener::Wrote(server::ClientState& client, size_t bytes) {
  server_.stats().total_net_output_bytes += bytes;
  client.net_output_bytes += bytes;
}

// After a write: a subscriber that was over the soft output limit and is now under it starts
// afresh (only one that was over it reads the limit: the common write never parses it).
void ClientListener::LeftSoftLimit(Outbox& box) {
  if (box.soft_since_ms >= 0 &&
      box.out.size() < server_.config().pubsub_output_buffer_limit().soft_bytes) {
    box.soft_since_ms = -1;
  }
}

// A plain TCP session's replies go out with one non-blocking send from the session itself, as
// Valkey writes them: no asynchronous operation, no completion handler, no suspension. Whatever
// the socket does not take at once (a full send buffer) is left in `out` for WriteOut, which
// waits for the socket. kWritten, kFailed, or kPartial (WriteOut writes the rest). TLS sessions
// always go through WriteOut (the TLS stream does the writing).
template <typename Stream>
ClientListener::WriteNow ClientListener::TryWriteNow(Stream& stream, server::ClientState& client,
                                                     Outbox& box) {
  if constexpr (!std::is_same_v<Stream, tcp::socket>) {
    return WriteNow::kPartial;
  } else {
    const ssize_t sent =
        ::send(stream.native_handle(), box.out.data(), box.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0) {
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? WriteNow::kPartial
                                                                       : WriteNow::kFailed;
    }
    const size_t bytes = static_cast<size_t>(sent);
    Wrote(client, bytes);
    if (bytes < box.out.size()) {
      box.out.erase(0, bytes);
      return WriteNow::kPartial;
    }
    box.out.clear();
    if (box.out.capacity() > kKeepOutputCapacity) box.out.shrink_to_fit();
    LeftSoftLimit(box);
    return WriteNow::kWritten;
  }
}

// Pushed messages for a session that waits for input: written once the turn ended (the ops of
// a keyspace notification are logged first), until the session has input again.
template <typename Stream>
asio::awaitable<void> ClientListener::Flush(Stream& stream, server::ClientState& client,
                                            Outbox& box) {
  while (box.reading && !box.out.empty() && !client.killed && !stopping_) {
    co_await turn_.AsyncWaitEnd(asio::use_awaitable);
    if (!box.reading || client.killed) break;
    const bool written = co_await WriteOut(stream, client, box);  // (GCC 12: no co_await in a ||)
    if (!written) break;
  }
  box.flushing = false;
  box.flushed.cancel();
}

asio::awaitable<void> ClientListener::WaitFlushed(Outbox& box) {
  while (box.flushing) {
    box.flushed.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ec;
    co_await box.flushed.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

template <typename Stream>
asio::awaitable<void> ClientListener::Session(Stream& stream) {
  boost::system::error_code ec;
  tcp::socket& socket = Lowest(stream);
  if (static_cast<int>(server_.clients().size()) >= server_.config().maxclients()) {
    ++server_.stats().rejected_connections;
    static constexpr std::string_view kFull = "-ERR max number of clients reached\r\n";
    co_await asio::async_write(stream, asio::buffer(kFull.data(), kFull.size()),
                               asio::redirect_error(asio::use_awaitable, ec));
    co_return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  server::ClientState client;
  client.id = server_.NextClientId();
  client.addr = EndpointText(socket.remote_endpoint(ec));
  client.laddr = EndpointText(socket.local_endpoint(ec));
  client.is_local = server::IsLoopbackAddress(socket.remote_endpoint(ec).address().to_string());
  if (server::DeniedByProtectedMode(server_.config().protected_mode(), server_.acl().default_user(),
                                    client.is_local)) {
    ++server_.stats().rejected_connections;
    co_await asio::async_write(
        stream,
        asio::buffer(server::kProtectedModeDenied.data(), server::kProtectedModeDenied.size()),
        asio::redirect_error(asio::use_awaitable, ec));
    co_return;
  }
  client.fd = socket.native_handle();
  client.authenticated = !server_.auth_required();
  client.created_ms = client.last_interaction_ms = server_.clock().NowMs();
  client.close_hook = [&socket, &client] {
    boost::system::error_code ignored;
    socket.close(ignored);
    if (client.wake_hook) client.wake_hook();  // a blocked client (server/blocking.h)
  };
  server_.RegisterClient(&client);

  server::RequestParser parser;
  std::vector<char> buffer(kReadChunk);
  Outbox box(io_);
  std::string& out = box.out;
  server::ReplyBuilder reply(&out);
  InstallPushHook(stream, client, box);
  client.output_bytes = [&box] { return box.out.size() + box.wire.size(); };
  server::ServerStats& stats = server_.stats();
  std::string held;  // input after a command that blocked, run once it is served
  PendingRead read;  // a read started while blocked
  asio::steady_timer wake(io_);
  for (bool open = true; open;) {
    size_t n = 0;
    box.reading = true;
    if (read.outstanding) {  // a read started while the client was blocked
      while (!read.done) {
        wake.expires_at(asio::steady_timer::time_point::max());
        co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      read.outstanding = read.done = false;
      ec = read.ec;
      n = read.bytes;
    } else if constexpr (std::is_same_v<Stream, tcp::socket>) {  // net/read_available.h
      n = co_await reader_.AsyncRead(stream, asio::buffer(buffer),
                                     asio::redirect_error(asio::use_awaitable, ec));
    } else {
      n = co_await stream.async_read_some(asio::buffer(buffer),
                                          asio::redirect_error(asio::use_awaitable, ec));
    }
    box.reading = false;
    if (ec || client.killed) break;
    stats.total_net_input_bytes += n;
    client.net_input_bytes += n;
    client.last_interaction_ms = server_.clock().NowMs();
    parser.set_limits(server_.LimitsFor(client));
    std::string_view input(buffer.data(), n);
    for (bool blocked = true; blocked && open;) {
      blocked = false;
      // Pushed messages queued before this batch may come from a busy script's writes: they
      // wait for the end of the turn, and so do the replies behind them.
      const bool nothing_queued = out.empty();
      for (;;) {
        size_t consumed = 0;
        const auto status = parser.Parse(input, &consumed);
        input.remove_prefix(consumed);
        if (status == server::RequestParser::Status::kNeedMore) break;
        if (status == server::RequestParser::Status::kError) {
          reply.Error(parser.error());
          ++stats.protocol_error_disconnections;
          spdlog::debug("Protocol error from client {}: {}", client.addr, parser.error());
          open = false;
          break;
        }
        const bool was_authenticated = client.authenticated;
        const uint64_t next_seq = server_.keyspace().next_seq();
        server_.Execute(client, parser.args(), reply);
        if (server_.keyspace().next_seq() != next_seq) {
          client.last_write_seq = server_.keyspace().next_seq() - 1;  // for CRDT.WAIT
        }
        if (client.close_after_reply || client.killed) {
          open = false;
          break;
        }
        if (client.authenticated != was_authenticated) parser.set_limits(server_.LimitsFor(client));
        if (!client.paused_command.empty()) server_.HoldPaused(client, reply);
        if (server_.blocking().IsBlocked(&client)) {
          std::string rest(input);  // the pipeline after it waits (input may point into held)
          held.swap(rest);
          input = held;
          blocked = true;
          break;
        }
      }
      if (!blocked) {
        client.query_buffer_bytes = parser.pending_bytes();
        const uint64_t limit = client.authenticated ? server_.config().client_query_buffer_limit()
                                                    : kUnauthenticatedQueryBufferLimit;
        if (parser.pending_bytes() > limit) {
          spdlog::warn("Closing client that reached max query buffer length (id={} addr={})",
                       client.id, client.addr);
          ++stats.client_query_buffer_limit_disconnections;
          open = false;
          break;
        }
      }
      if (out.empty() || client.killed) {
        node_.EndOfBatch();
      } else if (node_.busy() && nothing_queued) {
        // In the busy period no command of this batch wrote an op: its replies leave at once.
      } else if (!node_.busy() && node_.AllLogged()) {
        // Every op so far is in the op log (a batch of reads, in a turn whose writes were
        // logged already): the replies may leave now, and the turn still ends as usual.
        node_.EndOfBatch();
      } else {
        // Log before reply: the replies leave once the end of the turn wrote the op log.
        co_await turn_.AsyncWaitEnd(asio::use_awaitable);
      }
      if (box.flushing) co_await WaitFlushed(box);
      // Messages pushed during a write queue behind it: written after the next end of turn.
      // (QUIT has cleared `open`: its reply is still written.)
      bool written = true;
      while (!out.empty() && !client.killed && written) {
        const WriteNow now = TryWriteNow(stream, client, box);
        if (now == WriteNow::kPartial) {
          written = co_await WriteOut(stream, client, box);
        } else {
          written = now == WriteNow::kWritten;
        }
        if (written && !out.empty()) co_await turn_.AsyncWaitEnd(asio::use_awaitable);
      }
      if (!written) {
        open = false;
        break;
      }
      if (blocked) {
        open = co_await WaitWhileBlocked(stream, client, buffer, held, read, wake);
        input = held;
      }
    }
  }
  server_.UnregisterClient(&client);  // forgets a wait it was still in
  client.close_hook = nullptr;
  client.push_hook = nullptr;
  client.output_bytes = nullptr;
  socket.close(ec);
  while (read.outstanding && !read.done) {  // the read's handler refers to this frame
    wake.expires_at(asio::steady_timer::time_point::max());
    co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (box.flushing) co_await WaitFlushed(box);  // a Flush uses the stream and the outbox
}

template <typename Stream>
asio::awaitable<bool> ClientListener::WaitWhileBlocked(Stream& stream, server::ClientState& client,
                                                       std::vector<char>& buffer, std::string& held,
                                                       PendingRead& read,
                                                       asio::steady_timer& wake) {
  client.wake_hook = [&wake] { wake.cancel(); };
  bool open = true;
  while (open && server_.blocking().IsBlocked(&client)) {
    if (client.killed || stopping_) {
      open = false;
      break;
    }
    if (read.done) {
      read.outstanding = read.done = false;
      open = !read.ec;  // the client went away: the session drops its wait
      held.append(buffer.data(), read.bytes);
      server_.stats().total_net_input_bytes += read.bytes;
      client.net_input_bytes += read.bytes;
      client.last_interaction_ms = server_.clock().NowMs();
      if (held.size() > server_.config().client_query_buffer_limit()) {
        spdlog::warn("Closing client that reached max query buffer length (id={} addr={})",
                     client.id, client.addr);
        ++server_.stats().client_query_buffer_limit_disconnections;
        open = false;
      }
      continue;
    }
    if (!read.outstanding) {
      read.outstanding = true;
      stream.async_read_some(asio::buffer(buffer),
                             [&read, &wake](const boost::system::error_code& ec, size_t bytes) {
                               read.done = true;
                               read.ec = ec;
                               read.bytes = bytes;
                               wake.cancel();
                             });
    }
    const int64_t deadline_ms = server_.blocking().DeadlineOf(&client);
    const int64_t now_ms = server_.clock().NowMs();
    if (deadline_ms != 0 && now_ms >= deadline_ms) {
      if (node_.busy()) {  // timeouts are served after the script, as Valkey's
        co_await AwaitNotBusy(node_);
        continue;
      }
      server_.blocking().ExpireDue(now_ms);  // replies to every client due, wakes them
      continue;
    }
    constexpr int64_t kIdleWaitMs = 3'600'000;  // no deadline: only a wake-up ends the wait
    wake.expires_after(
        std::chrono::milliseconds(deadline_ms != 0 ? deadline_ms - now_ms : kIdleWaitMs));
    boost::system::error_code ec;
    co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  client.wake_hook = nullptr;
  co_return open;
}

}  // namespace lattice::net
