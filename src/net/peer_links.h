#pragma once
// PeerLinks is the production repl::Transport: TCP links between the regions of a shard, carrying
// replication frames (lattice/repl/frame.h) of encoded messages (lattice/repl/codec.h).
//
// - It listens on the replication port and dials every configured peer address (`peer`,
//   CRDT.PEER ADD), reconnecting with jittered exponential backoff (100 ms doubling to 5 s).
// - With tls-replication, every link is TLS with mutual authentication: both ends verify the
//   other's certificate against the CA and check that it names this shard (net/tls.h). A failed
//   handshake or a certificate of another shard closes the link, logged with the reason.
// - Every byte a link reads goes through its repl::LinkHandshake (lattice/repl/link_handshake.h),
//   which owns the protocol: the Hello exchange, the shard, version and replica id checks, the
//   crdt-shard-secret proof (bound to the TLS exporter value here), and which of two links to
//   one replica both ends keep. This class moves the bytes, supplies the nonce and the binding,
//   and acts on the verdict: a refused link gets its Goodbye written and is closed, before any
//   op is read; an admitted one becomes its peer's active link, and the engine
//   (server::Replication) gets OnConnected, the Hello and every later message.
// - Protected mode: without crdt-shard-secret or tls-replication, an accepted link is refused
//   (a Goodbye, no Hello, logged with its address) unless it comes from the address of a
//   configured peer, and under crdt-peer-protected-mode yes (the default) over loopback.
// - A dialer whose peer already has a live link waits instead of dialing.
// - A frame that fails its length or checksum check, or a message that does not decode, closes
//   that link with a logged reason; nothing of it reaches the state.
// - Send() only queues bytes: writes start from a handler posted to the event loop, so they run
//   after the current handler ended its batch (Node::EndOfBatch wrote and synced the op log).
//   Flow control is the engine's window (max_inflight_ops per peer).
//
// Event-loop thread only, like the Server.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "lattice/common/result.h"
#include "lattice/repl/link_handshake.h"
#include "lattice/repl/replicator.h"
#include "net/asio.h"
#include "node/node.h"
#include "server/server.h"
#include "store/replication.h"

namespace lattice::net {

class Tls;

class PeerLinks final : public repl::Transport, public server::PeerDirectory {
 public:
  // Built before the Node it is the transport of; Attach() it before Listen/Start.
  explicit PeerLinks(asio::io_context& io);
  ~PeerLinks() override;
  PeerLinks(const PeerLinks&) = delete;
  PeerLinks& operator=(const PeerLinks&) = delete;

  // The node whose engine the links carry (it must have a Replication).
  void Attach(server::Node& node);
  // The TLS contexts, required (loaded) when tls-replication is yes; must outlive this.
  void set_tls(Tls* tls) { tls_ = tls; }
  Result<void> Listen(const std::vector<std::string>& bind, int port);
  // Dials `addresses`.
  void Start(const std::vector<std::string>& addresses);
  void Stop();
  int bound_port() const { return bound_port_; }

  // repl::Transport
  void Send(ReplicaId to, const repl::Message& message) override;
  void SendOps(ReplicaId to, const repl::EncodedOpBatch& batch) override;
  void Close(ReplicaId to) override;
  // What the engine paces a snapshot's chunks by (0 when there is no writable link).
  uint64_t QueuedBytes(ReplicaId to) const override;

  // server::PeerDirectory
  Result<void> AddAddress(const std::string& address) override;
  Result<ReplicaId> RemoveAddress(const std::string& address) override;
  std::vector<Address> Addresses() const override;
  uint64_t BytesIn(ReplicaId replica) const override;
  uint64_t BytesOut(ReplicaId replica) const override;

 private:
  struct Link;
  struct Dialer;
  using LinkPtr = std::shared_ptr<Link>;

  asio::awaitable<void> AcceptLoop(tcp::acceptor& acceptor);
  asio::awaitable<void> Dial(std::shared_ptr<Dialer> dialer);
  asio::awaitable<void> RunLink(LinkPtr link);
  // The TLS handshake and the peer's shard identity. False: the link is refused (logged).
  asio::awaitable<bool> Secure(LinkPtr link);
  // Why an accepted link is refused before any Hello (protected mode), or "".
  std::string AdmissionRefusal(const Link& link) const;
  // Whether `ip` is the address of a configured peer (or of a node of this shard, in cluster mode).
  bool Configured(const asio::ip::address& ip) const;
  repl::LinkOptions HandshakeOptions(const Link& link);
  // Acts on the link's next handshake step. False: nothing more to read for now.
  bool Receive(const LinkPtr& link);
  void DeliverPart(const LinkPtr& link);
  // Queues what the handshake has to send.
  void TakeOutput(const LinkPtr& link);
  void RefusedByPeer(const LinkPtr& link, const std::string& reason);
  asio::awaitable<void> Sleep(asio::steady_timer& timer, int64_t ms);
  // Registers the link of an admitted peer, closing the one it replaces.
  void Activate(const LinkPtr& link, const repl::Hello& hello, bool replaces);
  void Queue(Link& link, const repl::Message& message);
  // The active link to `to` if bytes may be queued on it, else nullptr.
  LinkPtr Writable(ReplicaId to) const;
  // After bytes were queued on `link`: starts the write, or closes a link that does not read.
  void Queued(const LinkPtr& link);
  void PostKick(const LinkPtr& link);
  void Kick(const LinkPtr& link);
  // Sends Goodbye{reason} and closes once it is written; logged as a warning unless expected
  // (a duplicate link, a removed peer).
  void Refuse(const LinkPtr& link, const std::string& reason, bool expected = false);
  // Refuse, when the Goodbye is already queued (by the handshake).
  void CloseAfterGoodbye(const LinkPtr& link, const std::string& reason, bool expected);
  void Disconnect(const LinkPtr& link);
  // If `link` is its peer's active link: no longer, and the engine hears OnDisconnected.
  bool Deactivate(const LinkPtr& link);
  int64_t NowMs() const { return server_->clock().NowMs(); }

  asio::io_context& io_;
  server::Node* node_ = nullptr;
  server::Server* server_ = nullptr;
  server::Replication* replication_ = nullptr;
  Tls* tls_ = nullptr;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  int bound_port_ = 0;
  bool stopping_ = false;
  std::set<LinkPtr> links_;                                 // every open link
  std::map<ReplicaId, LinkPtr> active_;                     // the link the engine uses, per peer
  std::map<std::string, std::shared_ptr<Dialer>> dialers_;  // by address
  std::map<ReplicaId, uint64_t> bytes_in_;
  std::map<ReplicaId, uint64_t> bytes_out_;
};

}  // namespace lattice::net
