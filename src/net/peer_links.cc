#include "net/peer_links.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <optional>
#include <vector>

#include "cluster/cluster.h"
#include "lattice/common/assert.h"
#include "lattice/repl/codec.h"
#include "lattice/repl/frame.h"
#include "lattice/repl/link_handshake.h"
#include "net/busy_period.h"
#include "net/endpoint.h"
#include "net/tls.h"
#include "spdlog/spdlog.h"
#include "store/clock.h"

namespace lattice::net {
namespace {

// What one read takes from a peer link (Valkey's client reads take 16 KiB too): the ops it
// completes are applied before the next turn, and at 64 KiB a read of SADDs of a hundred members
// cost 16 ms of CPU (crdt_step_cpu_max_us, two regions, 30,000 elements loaded in one).
constexpr size_t kReadChunk = 16 * 1024;
// An op batch is handed to the engine this many ops at a time, each part a step of its own as a
// frame's decoding is: while a checkpoint's child runs, every page the parent writes first is
// copied (a 20 us fault on this kind of machine), and a batch of 64 ops took 12-21 ms of CPU to
// apply, 16 of them up to 6 ms, and 8 SADDs of a hundred members 9 ms. So a part also ends
// once its ops hold kItemsPerDelivery items (repl::OpItems; at least one op a part), as the
// engine's drain of buffered ops does (ReplicatorConfig::max_drain_items).
constexpr size_t kOpsPerDelivery = 8;
constexpr size_t kItemsPerDelivery = 256;
constexpr int64_t kBackoffMinMs = 100;
constexpr int64_t kBackoffMaxMs = 5000;
constexpr int64_t kConnectTimeoutMs = 5000;
constexpr int64_t kLinkedPollMs = 1000;  // a dialer whose peer dialed us checks this often
// A peer that does not read what we send (stalled, or far slower than our writes) is cut off
// once this much is queued for it, like Valkey's output buffer limit for replicas; it resumes
// from its vector when it reconnects (or gets a snapshot).
constexpr size_t kOutboxLimitBytes = 256u << 20;
// A link's queue is kept in parts of about this size: a frame is appended to the last part, so
// nothing queued is moved, and the parts are freed once written (a quiet region holds no memory
// for a burst that ended: issue #17's churn residue). One growing buffer was copied into one
// twice its size, whose fresh pages then faulted in, within a single Send: 5-13 ms of CPU every
// few hundred chunks of a snapshot, as it filled its 4 MiB on the link again and again (a page
// fault costs 14-20 us on this kind of machine).
constexpr size_t kOutPartBytes = 256 * 1024;

std::string ReplicaText(ReplicaId replica) { return server::ReplicaIdText(replica); }

// An address as admission compares it: an IPv4-mapped IPv6 address as plain IPv4.
asio::ip::address Plain(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return address;
}

}  // namespace

// Frames queued for a link, in parts (kOutPartBytes).
class LinkOutQueue {
 public:
  // Appends through `append(std::string& part)` to the last part, or to a new one when about
  // `bytes` more would take the last past kOutPartBytes.
  template <typename Appender>
  void Append(size_t bytes, Appender&& append) {
    if (parts_.empty() ||
        (!parts_.back().empty() && parts_.back().size() + bytes > kOutPartBytes)) {
      parts_.emplace_back();
    }
    std::string& part = parts_.back();
    const size_t before = part.size();
    append(part);
    bytes_ += part.size() - before;
  }
  size_t bytes() const { return bytes_; }
  bool empty() const { return bytes_ == 0; }
  void clear() {
    parts_.clear();
    bytes_ = 0;
  }
  // Moves every part to `out` (the write about to start) and leaves this empty.
  void TakeAll(std::vector<std::string>& out) {
    for (std::string& part : parts_) {
      if (!part.empty()) out.push_back(std::move(part));
    }
    clear();
  }

 private:
  std::deque<std::string> parts_;
  size_t bytes_ = 0;
};

struct PeerLinks::Link {
  explicit Link(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;  // a plain link; moved into `tls` on a TLS link
  std::unique_ptr<TlsStream> tls;
  tcp::socket& Lowest() { return tls ? tls->next_layer() : socket; }
  bool securing = false;  // TLS handshake in progress: nothing may be written
  std::string binding;    // the TLS channel binding ("" on plain TCP)
  // Every byte read goes through it: the Hello exchange, the proof, then the engine's frames.
  std::optional<repl::LinkHandshake> handshake;
  LinkOutQueue outbox;               // frames queued, not yet handed to a write
  std::vector<std::string> writing;  // frames of the write in progress, in parts
  size_t writing_bytes = 0;
  bool write_pending = false;
  bool kick_posted = false;
  bool closing = false;  // close once the outbox is written (after a Goodbye)
  bool closed = false;
  bool dialed = false;      // this node dialed it
  bool handshaken = false;  // it became the active link of its peer
  ReplicaId peer = kNoReplica;
  std::string region;  // the peer's, from its Hello
  std::string remote;  // "ip:port"
  asio::ip::address remote_ip;
  std::string goodbye;  // the reason of the Goodbye the engine sent on it, if any
  // An op batch received and not yet handed to the engine whole (kOpsPerDelivery a part).
  std::optional<repl::OpBatch> rest;
  size_t rest_next = 0;
};

struct PeerLinks::Dialer {
  explicit Dialer(asio::io_context& io) : timer(io) {}
  std::string address;
  std::string host;
  std::string port;
  std::vector<asio::ip::address> ips;  // the host's addresses (a literal, or last resolved)
  ReplicaId replica = kNoReplica;      // learned from its Hello
  std::string state = "connecting";
  std::string last_error;
  bool removed = false;
  LinkPtr link;
  asio::steady_timer timer;
};

PeerLinks::PeerLinks(asio::io_context& io) : io_(io) {}

PeerLinks::~PeerLinks() = default;

void PeerLinks::Attach(server::Node& node) {
  LATTICE_ASSERT(node.replication() != nullptr);
  node_ = &node;
  server_ = &node.server();
  replication_ = node.replication();
}

Result<void> PeerLinks::Listen(const std::vector<std::string>& bind, int port) {
  if (port <= 0 || port > 65535) {
    return Unexpected("Replication port " + std::to_string(port) +
                      " is out of range: set replication-port (default: port + 10000)");
  }
  Result<int> bound =
      ListenAll(io_, bind, port, server_->config().tcp_backlog(), "replication", acceptors_,
                [this](tcp::acceptor& acceptor) { return AcceptLoop(acceptor); });
  if (!bound.ok()) {
    return Unexpected(bound.error());
  }
  bound_port_ = *bound;
  return {};
}

void PeerLinks::Start(const std::vector<std::string>& addresses) {
  for (const std::string& address : addresses) {
    if (Result<void> added = AddAddress(address); !added.ok()) {
      spdlog::warn("Peer {}: {}", address, added.error().message);
    }
  }
}

void PeerLinks::Stop() {
  stopping_ = true;
  boost::system::error_code ec;
  for (auto& acceptor : acceptors_) {
    acceptor->close(ec);
  }
  for (auto& [address, dialer] : dialers_) {
    dialer->removed = true;
    dialer->timer.cancel();
  }
  for (const LinkPtr& link : std::vector<LinkPtr>(links_.begin(), links_.end())) {
    link->closed = true;
    link->Lowest().close(ec);
  }
}

asio::awaitable<void> PeerLinks::AcceptLoop(tcp::acceptor& acceptor) {
  while (!stopping_) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) co_return;
      spdlog::warn("Accepting replication connection: {}", ec.message());
      continue;
    }
    auto link = std::make_shared<Link>(std::move(socket));
    asio::co_spawn(io_, RunLink(std::move(link)), asio::detached);
  }
}

asio::awaitable<void> PeerLinks::Sleep(asio::steady_timer& timer, int64_t ms) {
  boost::system::error_code ec;
  timer.expires_after(std::chrono::milliseconds(ms));
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<void> PeerLinks::Dial(std::shared_ptr<Dialer> dialer) {
  int64_t backoff = kBackoffMinMs;
  tcp::resolver resolver(io_);
  while (!stopping_ && !dialer->removed) {
    if (dialer->replica != kNoReplica && active_.contains(dialer->replica)) {
      dialer->state = "connected";  // the peer dialed us
      co_await Sleep(dialer->timer, kLinkedPollMs);
      continue;
    }
    dialer->state = "connecting";
    boost::system::error_code ec;
    auto endpoints = co_await resolver.async_resolve(dialer->host, dialer->port,
                                                     asio::redirect_error(asio::use_awaitable, ec));
    tcp::socket socket(io_);
    if (!ec) {
      dialer->ips.clear();
      for (const auto& entry : endpoints) dialer->ips.push_back(Plain(entry.endpoint().address()));
      // A connect that hangs (a peer behind a black hole) is cut by a timer.
      asio::steady_timer deadline(io_);
      deadline.expires_after(std::chrono::milliseconds(kConnectTimeoutMs));
      deadline.async_wait([&socket](const boost::system::error_code& waited) {
        if (!waited) {
          boost::system::error_code ignored;
          socket.close(ignored);
        }
      });
      co_await asio::async_connect(socket, endpoints,
                                   asio::redirect_error(asio::use_awaitable, ec));
      deadline.cancel();
      if (!ec && !socket.is_open()) ec = asio::error::timed_out;
    }
    if (stopping_ || dialer->removed) break;
    if (ec) {
      dialer->last_error = ec.message();
      dialer->state = "backoff";
      spdlog::debug("Connecting to peer {}: {}", dialer->address, ec.message());
      // Jitter: uniform in [backoff/2, backoff], so regions restarted together spread out.
      const int64_t wait = backoff / 2 + server_->rng().Range(0, backoff / 2);
      backoff = std::min(backoff * 2, kBackoffMaxMs);
      co_await Sleep(dialer->timer, wait);
      continue;
    }
    auto link = std::make_shared<Link>(std::move(socket));
    link->dialed = true;
    dialer->link = link;
    co_await RunLink(link);
    dialer->link = nullptr;
    if (link->peer != kNoReplica) dialer->replica = link->peer;
    if (stopping_ || dialer->removed) break;
    // A link that completed its handshake resets the backoff; a refused one (another shard,
    // a duplicate) keeps growing it, so a misconfigured peer is retried ever less often.
    backoff = link->handshaken ? kBackoffMinMs : std::min(backoff * 2, kBackoffMaxMs);
    dialer->state = link->handshaken ? "connecting" : "backoff";
    co_await Sleep(dialer->timer, backoff / 2 + server_->rng().Range(0, backoff / 2));
  }
  dialer->state = "removed";
}

asio::awaitable<void> PeerLinks::RunLink(LinkPtr link) {
  boost::system::error_code ec;
  link->socket.set_option(tcp::no_delay(true), ec);
  const tcp::endpoint remote = link->socket.remote_endpoint(ec);
  link->remote = EndpointText(remote);
  link->remote_ip = Plain(remote.address());
  links_.insert(link);
  if (std::string refusal = AdmissionRefusal(*link); !refusal.empty()) {
    Refuse(link, refusal);  // a Goodbye and no Hello: it learns nothing of this replica
    Disconnect(link);
    co_return;
  }
  if (server_->config().tls_replication() && !co_await Secure(link)) {
    Disconnect(link);
    co_return;
  }
  link->handshake.emplace(HandshakeOptions(*link));
  TakeOutput(link);
  std::vector<char> buffer(kReadChunk);
  while (!link->closed && !link->closing) {
    size_t n = 0;
    if (link->tls) {
      n = co_await link->tls->async_read_some(asio::buffer(buffer),
                                              asio::redirect_error(asio::use_awaitable, ec));
    } else {
      n = co_await link->socket.async_read_some(asio::buffer(buffer),
                                                asio::redirect_error(asio::use_awaitable, ec));
    }
    // No region's op interleaves with a running script: its frames wait (busy_period.h).
    if (node_->busy()) co_await AwaitNotBusy(*node_);
    if (ec || link->closed) break;
    if (link->peer != kNoReplica) bytes_in_[link->peer] += n;
    // Decoding and applying what arrived: the latency monitor's "crdt-peer-batch" event. A read
    // holds several frames; once the node's step budget is spent (Node::StepSpent) the step ends
    // (its ops logged) and the rest waits behind what else the event loop has ready: an op that
    // copies a slot for an export or joins one for an install costs 50-100 us, and one read of
    // them took 23 ms.
    link->handshake->Feed(std::string_view(buffer.data(), n));
    bool more = true;
    while (more) {
      const int64_t start_us = server_->clock().MonotonicUs();
      const int64_t start_cpu_us = server::ThreadCpuUs();
      node_->BeginStep();
      while ((more = Receive(link)) && !node_->StepSpent()) {
      }
      server_->AddLatencySample("crdt-peer-batch", server_->clock().MonotonicUs() - start_us);
      server_->AddStepCpu("crdt-peer-batch", server::ThreadCpuUs() - start_cpu_us);
      node_->EndOfBatch();
      if (more) {
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        if (node_->busy()) co_await AwaitNotBusy(*node_);
        if (link->closed) break;
      }
    }
  }
  Disconnect(link);
}

// Protected mode for peer links (docs/security.md): a link that nothing authenticates (no
// crdt-shard-secret, no tls-replication) is accepted only from the address of a configured peer
// (`peer`, CRDT.PEER ADD, or in cluster mode a node of this shard in the topology) and, under
// crdt-peer-protected-mode yes (the default), only over loopback. A dialed link goes to a
// configured address already.
std::string PeerLinks::AdmissionRefusal(const Link& link) const {
  const server::Config& config = server_->config();
  if (link.dialed || !config.crdt_shard_secret().empty() || config.tls_replication()) {
    return "";
  }
  if (config.crdt_peer_protected_mode() && !link.remote_ip.is_loopback()) {
    return "peer link from a non-loopback address refused: without crdt-shard-secret or "
           "tls-replication, crdt-peer-protected-mode yes accepts peer links on loopback only";
  }
  if (!Configured(link.remote_ip)) {
    return "peer link from an address that is not a configured peer refused: without "
           "crdt-shard-secret or tls-replication, only the addresses of `peer` and CRDT.PEER ADD "
           "may link";
  }
  return "";
}

bool PeerLinks::Configured(const asio::ip::address& ip) const {
  for (const auto& [address, dialer] : dialers_) {
    if (std::find(dialer->ips.begin(), dialer->ips.end(), ip) != dialer->ips.end()) return true;
  }
  if (const server::Cluster* cluster = node_->cluster()) {
    const server::ClusterNode& myself = cluster->myself();
    for (const auto& [id, node] : cluster->topology().nodes()) {
      boost::system::error_code ec;
      const asio::ip::address node_ip = asio::ip::make_address(node.ip, ec);
      if (!ec && id != myself.id && node.shard == myself.shard && Plain(node_ip) == ip) {
        return true;
      }
    }
  }
  return false;
}

repl::LinkOptions PeerLinks::HandshakeOptions(const Link& link) {
  repl::LinkOptions options;
  options.hello = replication_->LinkHello();
  options.role = link.dialed ? repl::LinkRole::kDialed : repl::LinkRole::kAccepted;
  options.secret = server_->config().crdt_shard_secret();
  if (!options.secret.empty()) options.nonce = RandomBytes(repl::kLinkNonceBytes);
  options.binding = link.binding;
  options.active_link = [this](ReplicaId peer) -> std::optional<repl::LinkRole> {
    auto active = active_.find(peer);
    if (active == active_.end()) return std::nullopt;
    return active->second->dialed ? repl::LinkRole::kDialed : repl::LinkRole::kAccepted;
  };
  return options;
}

void PeerLinks::TakeOutput(const LinkPtr& link) {
  if (std::string bytes = link->handshake->TakeOutput(); !bytes.empty()) {
    link->outbox.Append(bytes.size(), [&](std::string& part) { part += bytes; });
    PostKick(link);
  }
}

bool PeerLinks::Receive(const LinkPtr& link) {
  if (link->rest.has_value()) {
    DeliverPart(link);
    return true;
  }
  repl::LinkHandshake& handshake = *link->handshake;
  const repl::LinkHandshake::Step step = handshake.Next();
  TakeOutput(link);
  switch (step) {
    case repl::LinkHandshake::Step::kNeedMore:
    case repl::LinkHandshake::Step::kClosed:
      return false;
    case repl::LinkHandshake::Step::kRefused:
      link->peer = handshake.peer();  // known when refused as a duplicate: the dialer waits
      CloseAfterGoodbye(link, handshake.reason(), handshake.expected());
      return false;
    case repl::LinkHandshake::Step::kPeerGoodbye:
      RefusedByPeer(link, handshake.reason());
      return false;
    case repl::LinkHandshake::Step::kAdmitted:
      if (replication_->Retired(handshake.peer_hello().replica, NowMs())) {
        // A node of this shard that was FORGOTTEN, still dialing with its old identity.
        link->peer = handshake.peer_hello().replica;
        Refuse(link, "replica removed from this shard (CLUSTER FORGET)", /*expected=*/true);
        return false;
      }
      Activate(link, handshake.peer_hello(), handshake.replaces_active());
      return true;
    case repl::LinkHandshake::Step::kMessage: {
      auto active = active_.find(link->peer);
      if (active == active_.end() || active->second != link) {
        return false;  // replaced by another link, or closed by the engine
      }
      repl::Message message = handshake.TakeMessage();
      if (auto* batch = std::get_if<repl::OpBatch>(&message);
          batch != nullptr && batch->ops.size() > 1) {  // in parts (DeliverPart)
        link->rest = std::move(*batch);                 // its decoding was a step's worth already
        link->rest_next = 0;
        return true;
      }
      replication_->OnMessage(link->peer, std::move(message), NowMs());
      return true;
    }
  }
  return false;
}

// The next ops of the batch held in link->rest (kOpsPerDelivery, fewer when they reach
// kItemsPerDelivery items), as an OpBatch of their own (the engine takes each op of a batch on
// its own; only when it drains and relays changes).
void PeerLinks::DeliverPart(const LinkPtr& link) {
  repl::OpBatch& rest = *link->rest;
  const size_t last = std::min(rest.ops.size(), link->rest_next + kOpsPerDelivery);
  repl::OpBatch part;
  part.sender = rest.sender;
  part.receiver_has = rest.receiver_has;
  size_t items = 0;
  size_t end = link->rest_next;
  while (end < last && (end == link->rest_next || items < kItemsPerDelivery)) {
    items += repl::OpItems(rest.ops[end]);
    part.ops.push_back(std::move(rest.ops[end++]));
  }
  link->rest_next = end;
  if (end == rest.ops.size()) link->rest.reset();
  auto active = active_.find(link->peer);
  if (active == active_.end() || active->second != link) {
    link->rest.reset();  // replaced by another link, or closed by the engine
    return;
  }
  replication_->OnMessage(link->peer, repl::Message(std::move(part)), NowMs());
}

asio::awaitable<bool> PeerLinks::Secure(LinkPtr link) {
  if (tls_ == nullptr || !tls_->loaded()) {
    spdlog::warn("Refusing replication link {}: tls-replication is on but TLS is not configured",
                 link->remote);
    co_return false;
  }
  std::shared_ptr<ssl::context> context =
      link->dialed ? tls_->client_context() : tls_->server_context();
  link->tls = std::make_unique<TlsStream>(std::move(link->socket), *context);
  boost::system::error_code ec;
  link->tls->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
  link->securing = true;
  asio::steady_timer deadline(io_);
  deadline.expires_after(std::chrono::milliseconds(kConnectTimeoutMs));
  deadline.async_wait([link](const boost::system::error_code& waited) {
    boost::system::error_code ignored;
    if (!waited) link->Lowest().close(ignored);
  });
  co_await link->tls->async_handshake(
      link->dialed ? ssl::stream_base::client : ssl::stream_base::server,
      asio::redirect_error(asio::use_awaitable, ec));
  deadline.cancel();
  link->securing = false;
  if (ec || link->closed) {
    if (!stopping_ && !link->closed) {
      const std::string reason = "TLS handshake failed: " + HandshakeFailure(*link->tls, ec);
      spdlog::warn("Refusing replication link {}: {}", link->remote, reason);
      for (auto& [address, dialer] : dialers_) {
        if (dialer->link == link) dialer->last_error = reason;
      }
    }
    co_return false;
  }
  link->binding = ChannelBinding(*link->tls);
  if (std::string reason = CheckPeerShard(*link->tls, server_->config().shard_id());
      !reason.empty()) {
    Refuse(link, reason);
    co_return false;
  }
  PostKick(link);  // a Goodbye queued during the handshake
  co_return true;
}

void PeerLinks::RefusedByPeer(const LinkPtr& link, const std::string& reason) {
  spdlog::warn("Replication link {} refused by the peer: {}", link->remote, reason);
  for (auto& [address, dialer] : dialers_) {
    if (dialer->link == link) dialer->last_error = "refused by the peer: " + reason;
  }
  link->closing = true;  // nothing more is read from it
  PostKick(link);
}

void PeerLinks::Activate(const LinkPtr& link, const repl::Hello& hello, bool replaces) {
  const ReplicaId peer = hello.replica;
  if (auto existing = active_.find(peer); replaces && existing != active_.end()) {
    LinkPtr replaced = existing->second;
    active_.erase(existing);
    Refuse(replaced, "replaced by a newer link", /*expected=*/true);
  }
  link->peer = peer;
  link->region = hello.region;
  link->handshaken = true;
  active_[peer] = link;
  for (auto& [address, dialer] : dialers_) {
    if (dialer->link == link) {
      dialer->replica = peer;
      dialer->state = "connected";
      dialer->last_error.clear();
    }
  }
  spdlog::info("Replication link to replica {} (region '{}') at {} ({})", ReplicaText(peer),
               hello.region, link->remote, link->dialed ? "dialed" : "accepted");
  replication_->OnConnected(peer, NowMs());
  replication_->OnMessage(peer, repl::Message(hello), NowMs());
}

void PeerLinks::Queue(Link& link, const repl::Message& message) {
  const std::string payload = repl::Encode(message);
  link.outbox.Append(payload.size() + repl::kFrameHeaderBytes,
                     [&](std::string& part) { repl::AppendFrame(payload, part); });
}

void PeerLinks::Send(ReplicaId to, const repl::Message& message) {
  if (LinkPtr link = Writable(to)) {
    if (const auto* goodbye = std::get_if<repl::Goodbye>(&message)) link->goodbye = goodbye->reason;
    Queue(*link, message);
    Queued(link);
  }
}

void PeerLinks::SendOps(ReplicaId to, const repl::EncodedOpBatch& batch) {
  if (LinkPtr link = Writable(to)) {
    // The ops' retained bytes, framed as they are.
    link->outbox.Append(batch.ops.size() + 64,
                        [&](std::string& part) { repl::AppendOpBatchFrame(batch, part); });
    Queued(link);
  }
}

PeerLinks::LinkPtr PeerLinks::Writable(ReplicaId to) const {
  auto it = active_.find(to);
  if (it == active_.end() || it->second->closing || it->second->closed) {
    return nullptr;  // best effort: the engine resends after reconnecting
  }
  return it->second;
}

uint64_t PeerLinks::QueuedBytes(ReplicaId to) const {
  const LinkPtr link = Writable(to);
  return link == nullptr ? 0 : link->outbox.bytes() + link->writing_bytes;
}

void PeerLinks::Queued(const LinkPtr& link) {
  if (link->outbox.bytes() + link->writing_bytes > kOutboxLimitBytes) {
    // It does not read: a Goodbye would wait behind the rest. Close now (the pending write is
    // cancelled) and let it resume when it reconnects.
    // Done from a posted handler: Send runs inside the engine, which must not be re-entered.
    spdlog::warn(
        "Closing replication link {} (replica {}, region '{}'): too slow, over {} MiB queued for "
        "it",
        link->remote, ReplicaText(link->peer), link->region, kOutboxLimitBytes >> 20);
    link->outbox.clear();
    link->closing = true;  // Send drops what comes next
    asio::post(io_, [this, link] {
      if (Deactivate(link)) {
        node_->EndOfBatch();
      }
      link->closed = true;
      boost::system::error_code ignored;
      link->Lowest().close(ignored);
    });
    return;
  }
  PostKick(link);
}

void PeerLinks::Close(ReplicaId to) {
  auto it = active_.find(to);
  if (it == active_.end()) {
    return;
  }
  LinkPtr link = it->second;
  active_.erase(it);
  if (!link->goodbye.empty()) {  // the engine refused what the peer sent (Replicator::Fail)
    spdlog::warn("Closing replication link {} (replica {}, region '{}'): {}", link->remote,
                 ReplicaText(to), link->region, link->goodbye);
  }
  link->closing = true;  // after the Goodbye the engine queued
  PostKick(link);
}

void PeerLinks::PostKick(const LinkPtr& link) {
  if (link->kick_posted) {
    return;
  }
  link->kick_posted = true;
  asio::post(io_, [this, link] {
    link->kick_posted = false;
    Kick(link);
  });
}

void PeerLinks::Kick(const LinkPtr& link) {
  if (link->write_pending || link->closed || link->securing) {
    return;
  }
  if (link->outbox.empty()) {
    if (link->closing) {
      boost::system::error_code ignored;
      link->Lowest().shutdown(tcp::socket::shutdown_both, ignored);
      link->Lowest().close(ignored);
      link->closed = true;
    }
    return;
  }
  link->writing_bytes = link->outbox.bytes();
  link->outbox.TakeAll(link->writing);
  link->write_pending = true;
  auto written = [this, link](const boost::system::error_code& ec, size_t n) {
    link->write_pending = false;
    link->writing.clear();
    link->writing_bytes = 0;
    if (link->peer != kNoReplica) bytes_out_[link->peer] += n;
    if (ec) {
      boost::system::error_code ignored;
      link->Lowest().close(ignored);
      link->closed = true;
      return;
    }
    Kick(link);
    // A snapshot being taken for this peer waits for room on its link (it is not "pending work"
    // while the link is full): the write that made room asks for a turn, which takes the next
    // chunk.
    if (link->peer != kNoReplica && replication_->taking_snapshot_for(link->peer)) {
      node_->EndOfBatch();
    }
  };
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(link->writing.size());
  for (const std::string& part : link->writing) buffers.push_back(asio::buffer(part));
  if (link->tls) {
    asio::async_write(*link->tls, buffers, written);
  } else {
    asio::async_write(link->socket, buffers, written);
  }
}

bool PeerLinks::Deactivate(const LinkPtr& link) {
  auto active = active_.find(link->peer);
  if (active == active_.end() || active->second != link) {
    return false;
  }
  active_.erase(active);
  replication_->OnDisconnected(link->peer, NowMs());
  return true;
}

void PeerLinks::Refuse(const LinkPtr& link, const std::string& reason, bool expected) {
  Queue(*link, repl::Goodbye{reason});
  CloseAfterGoodbye(link, reason, expected);
}

void PeerLinks::CloseAfterGoodbye(const LinkPtr& link, const std::string& reason, bool expected) {
  spdlog::log(expected ? spdlog::level::debug : spdlog::level::warn,
              "Closing replication link {} (replica {}): {}", link->remote,
              link->peer == kNoReplica ? std::string("unknown") : ReplicaText(link->peer), reason);
  for (auto& [address, dialer] : dialers_) {
    if (dialer->link == link) dialer->last_error = reason;
  }
  Deactivate(link);
  link->closing = true;
  PostKick(link);
}

void PeerLinks::Disconnect(const LinkPtr& link) {
  if (Deactivate(link)) {
    spdlog::info("Replication link to replica {} (region '{}') at {} closed",
                 ReplicaText(link->peer), link->region, link->remote);
    node_->EndOfBatch();
  }
  links_.erase(link);
  if (!link->closing) {
    boost::system::error_code ignored;
    link->Lowest().close(ignored);
    link->closed = true;
  }
}

Result<void> PeerLinks::AddAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return Unexpected("Invalid peer address '" + address + "', expected host:port");
  }
  if (dialers_.contains(address)) {
    return Unexpected("Peer " + address + " is already configured");
  }
  auto dialer = std::make_shared<Dialer>(io_);
  dialer->address = address;
  dialer->host = address.substr(0, colon);
  if (dialer->host.size() >= 2 && dialer->host.front() == '[' && dialer->host.back() == ']') {
    dialer->host = dialer->host.substr(1, dialer->host.size() - 2);
  }
  dialer->port = address.substr(colon + 1);
  boost::system::error_code ec;
  if (const asio::ip::address literal = asio::ip::make_address(dialer->host, ec); !ec) {
    dialer->ips.push_back(Plain(literal));  // admission knows it before the first dial
  }
  dialers_[address] = dialer;
  asio::co_spawn(io_, Dial(dialer), asio::detached);
  return {};
}

Result<ReplicaId> PeerLinks::RemoveAddress(const std::string& address) {
  auto it = dialers_.find(address);
  if (it == dialers_.end()) {
    return Unexpected("ERR no such peer '" + address + "'");
  }
  std::shared_ptr<Dialer> dialer = it->second;
  dialers_.erase(it);
  dialer->removed = true;
  dialer->timer.cancel();
  const ReplicaId replica = dialer->link != nullptr ? dialer->link->peer : dialer->replica;
  if (replica != kNoReplica) {
    auto active = active_.find(replica);
    if (active != active_.end()) {
      // A copy: Refuse deactivates the link, which erases this entry of active_.
      const LinkPtr link = active->second;
      Refuse(link, "peer removed by CRDT.PEER REMOVE", /*expected=*/true);
    }
  }
  // A copy: Refuse takes a reference, and what it calls may reset dialer->link.
  if (const LinkPtr link = dialer->link; link != nullptr && !link->closing) {
    Refuse(link, "peer removed by CRDT.PEER REMOVE", /*expected=*/true);
  }
  return replica;
}

std::vector<server::PeerDirectory::Address> PeerLinks::Addresses() const {
  std::vector<Address> out;
  for (const auto& [address, dialer] : dialers_) {
    out.push_back(Address{address, dialer->replica, dialer->state, dialer->last_error});
  }
  return out;
}

uint64_t PeerLinks::BytesIn(ReplicaId replica) const {
  auto it = bytes_in_.find(replica);
  return it == bytes_in_.end() ? 0 : it->second;
}

uint64_t PeerLinks::BytesOut(ReplicaId replica) const {
  auto it = bytes_out_.find(replica);
  return it == bytes_out_.end() ? 0 : it->second;
}

}  // namespace lattice::net
