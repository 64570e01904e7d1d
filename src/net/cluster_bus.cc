#include "net/cluster_bus.h"

#include "net/busy_period.h"
#include "net/endpoint.h"
#include "resp/reply_decoder.h"
#include "spdlog/spdlog.h"

namespace lattice::net {
namespace {

constexpr int64_t kConnectTimeoutMs = 2000;
constexpr int64_t kReplyTimeoutMs = 30'000;
constexpr size_t kMaxReplyBytes = 64 << 20;  // a gossip reply is a few KB; bound what we buffer

void AppendCommand(std::string& out, const std::vector<std::string>& args) {
  out += "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& arg : args) {
    out += "$" + std::to_string(arg.size()) + "\r\n";
    out += arg;
    out += "\r\n";
  }
}

}  // namespace

struct ClusterBusLinks::Conn {
  explicit Conn(asio::io_context& io) : socket(io), wake(io), deadline(io) {}
  std::string key;
  std::string ip;
  int port = 0;
  tcp::socket socket;
  asio::steady_timer wake;      // cancelled when a command is queued
  asio::steady_timer deadline;  // connect and reply timeouts
  std::deque<std::pair<std::vector<std::string>, server::ClusterBus::ReplyHandler>> queued;
  std::deque<server::ClusterBus::ReplyHandler> awaiting;
  bool closed = false;
};

ClusterBusLinks::ClusterBusLinks(asio::io_context& io) : io_(io) {}

ClusterBusLinks::~ClusterBusLinks() = default;

void ClusterBusLinks::Stop() {
  stopping_ = true;
  const auto conns = conns_;
  for (const auto& [key, conn] : conns) Fail(conn, "shutting down");
}

void ClusterBusLinks::Send(const std::string& ip, int port, std::string_view channel,
                           std::vector<std::string> args, ReplyHandler done) {
  if (stopping_) {
    done(Unexpected(std::string("shutting down")));
    return;
  }
  const std::string key = ip + ":" + std::to_string(port) + "/" + std::string(channel);
  std::shared_ptr<Conn>& conn = conns_[key];
  if (conn == nullptr) {
    conn = std::make_shared<Conn>(io_);
    conn->key = key;
    conn->ip = ip;
    conn->port = port;
    const server::Config& config = node_->server().config();
    const std::string password =
        !config.masterauth().empty() ? config.masterauth() : config.requirepass();
    if (!password.empty()) {
      conn->queued.emplace_back(std::vector<std::string>{"AUTH", password},
                                [](Result<server::RespValue>) {});
    }
    asio::co_spawn(io_, Run(conn), asio::detached);
  }
  conn->queued.emplace_back(std::move(args), std::move(done));
  conn->wake.cancel();
}

// Closes the connection and hands every waiting command an error, in order. The map entry goes
// first, so a handler that sends again dials a fresh connection.
void ClusterBusLinks::Fail(const std::shared_ptr<Conn>& conn, const std::string& why) {
  if (conn->closed) return;
  conn->closed = true;
  auto it = conns_.find(conn->key);
  if (it != conns_.end() && it->second == conn) conns_.erase(it);
  boost::system::error_code ignored;
  conn->socket.close(ignored);
  conn->wake.cancel();
  conn->deadline.cancel();
  spdlog::debug("Cluster bus link {} closed: {}", conn->key, why);
  std::deque<ReplyHandler> handlers = std::move(conn->awaiting);
  for (auto& [args, handler] : conn->queued) handlers.push_back(std::move(handler));
  conn->queued.clear();
  const std::string message =
      "cluster bus link to " + conn->ip + ":" + std::to_string(conn->port) + " failed: " + why;
  for (ReplyHandler& handler : handlers) handler(Unexpected(message));
  node_->EndOfBatch();
}

asio::awaitable<void> ClusterBusLinks::Run(std::shared_ptr<Conn> conn) {
  boost::system::error_code ec =
      co_await DialWithin(conn, conn->ip, conn->port, kConnectTimeoutMs);  // net/endpoint.h
  if (ec || conn->closed) {
    Fail(conn, ec ? ec.message() : "closed");
    co_return;
  }
  conn->socket.set_option(tcp::no_delay(true), ec);
  std::string out;
  std::string in;
  std::vector<char> buffer(64 * 1024);
  while (!conn->closed && !stopping_) {
    if (conn->queued.empty()) {
      conn->wake.expires_after(std::chrono::hours(24));
      co_await conn->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    out.clear();
    for (auto& [args, handler] : conn->queued) {
      AppendCommand(out, args);
      conn->awaiting.push_back(std::move(handler));
    }
    conn->queued.clear();
    co_await asio::async_write(conn->socket, asio::buffer(out),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec || conn->closed) break;
    // Read every reply of this batch; a peer that does not answer in time fails the link.
    conn->deadline.expires_after(std::chrono::milliseconds(kReplyTimeoutMs));
    conn->deadline.async_wait([conn](const boost::system::error_code& waited) {
      if (!waited) {
        boost::system::error_code ignored;
        conn->socket.close(ignored);
      }
    });
    while (!conn->awaiting.empty() && !conn->closed) {
      size_t consumed = 0;
      Result<server::RespValue> reply = server::DecodeReply(in, &consumed);
      if (reply.ok()) {
        in.erase(0, consumed);
        ReplyHandler handler = std::move(conn->awaiting.front());
        conn->awaiting.pop_front();
        handler(std::move(reply));
        continue;
      }
      if (reply.error().message != "incomplete reply") {
        ec = asio::error::invalid_argument;
        spdlog::warn("Cluster bus link {}: {}", conn->key, reply.error().message);
        break;
      }
      if (in.size() > kMaxReplyBytes) {
        ec = asio::error::message_size;
        break;
      }
      const size_t n = co_await conn->socket.async_read_some(
          asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
      if (node_->busy()) co_await AwaitNotBusy(*node_);  // busy_period.h
      if (ec) break;
      in.append(buffer.data(), n);
    }
    conn->deadline.cancel();
    node_->EndOfBatch();
    if (ec) break;
  }
  Fail(conn, ec ? ec.message() : "closed");
}

}  // namespace lattice::net
