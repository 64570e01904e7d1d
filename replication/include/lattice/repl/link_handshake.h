#pragma once
// LinkHandshake is the sans-I/O protocol of one replication link: the owner (src/net/peer_links.h
// over TCP/TLS, the simulator over its fake network) feeds it the bytes the peer sent and writes
// what TakeOutput() returns; the handshake decides whether the peer is admitted. It reads no
// clock and draws no randomness: the nonce and the TLS channel binding are handed in.
//
// The protocol (docs/replication.md, "Handshake"; wire format unchanged):
// - Both ends send their Hello at once (the constructor puts ours in the output). The first frame
//   received must be the peer's Hello; one of another shard, another protocol version, this
//   replica's own id or none is refused.
// - With a shard secret, each Hello carries a kLinkNonceBytes nonce, and each end answers the
//   peer's Hello with a LinkProof (LinkProofOf below); the frame after the peer's Hello must be
//   its proof, checked in constant time. A secret on one end only is refused by both.
// - A verified peer may already have an admitted link (two regions that dial each other, or a
//   redial): LinkOptions::active_link tells which, and KeepsOldLink decides, the same way on
//   both ends, which link survives.
// - Then every later frame is a message for the engine (Step::kMessage), the Hello and proofs
//   included, as before this class existed.
// - Any bad frame, undecodable message or unexpected message is a refusal: reason(), and a
//   Goodbye in the output; the owner closes the link once it is written. Peer input is never
//   asserted on. A Goodbye received before admission ends the link too (kPeerGoodbye).
//
// Value type owning its frame reader and output buffer; not thread-safe (one per link).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "lattice/common/ids.h"
#include "lattice/repl/frame.h"
#include "lattice/repl/messages.h"

namespace lattice::repl {

inline constexpr size_t kLinkNonceBytes = 32;

// Which end opened the link.
enum class LinkRole { kDialed, kAccepted };

// Why a peer's Hello must be refused by replica `self` of shard `shard_id` (another shard,
// another protocol version, this replica's own id or none), or "" if it may be accepted.
std::string HelloRefusal(std::string_view shard_id, ReplicaId self, const Hello& hello);

// Two admitted links to one peer: true if both ends keep the older one. A redial from the same
// side means the older link is stale (replaced); otherwise both keep the link dialed by the
// smaller replica id.
bool KeepsOldLink(ReplicaId self, ReplicaId peer, LinkRole old_link, LinkRole new_link);

// The proof one end sends: HMAC-SHA256(secret, label | own nonce | other nonce | own id |
// other id | binding), each string length-prefixed. `binding` is the TLS exporter value of the
// session ("" on plain TCP), so a proof is useless on another connection.
std::string LinkProofOf(std::string_view secret, std::string_view own_nonce,
                        std::string_view other_nonce, ReplicaId own_id, ReplicaId other_id,
                        std::string_view binding);

// Equality in time independent of where the inputs differ.
bool ConstantTimeEqual(std::string_view a, std::string_view b);

struct LinkOptions {
  Hello hello;  // ours (Replication::LinkHello()); auth_nonce is set from `nonce`
  LinkRole role = LinkRole::kAccepted;
  std::string secret;   // crdt-shard-secret; "" = none
  std::string nonce;    // kLinkNonceBytes from the owner's randomness; used only with a secret
  std::string binding;  // the TLS channel binding; "" on plain TCP
  uint32_t max_frame_bytes = kDefaultMaxFrameBytes;
  // The role of the admitted link the owner already has to `peer`, if any. Asked once, when the
  // peer is verified; unset = never any.
  std::function<std::optional<LinkRole>(ReplicaId peer)> active_link;
};

class LinkHandshake {
 public:
  enum class Step {
    kNeedMore,     // every buffered frame is consumed: Feed more
    kAdmitted,     // peer_hello() is the verified peer; see replaces_active()
    kMessage,      // after kAdmitted: message() is the next message for the engine
    kRefused,      // reason(); a Goodbye is in the output: write it, then close
    kPeerGoodbye,  // the peer refused us before admission: reason() is its reason
    kClosed,       // after kRefused or kPeerGoodbye: nothing more is read
  };

  // Asserts that a secret comes with a nonce of kLinkNonceBytes (the owner's duty).
  explicit LinkHandshake(LinkOptions options);

  void Feed(std::string_view bytes);
  // Consumes buffered frames until one is worth reporting. Call until kNeedMore (or a terminal
  // step), taking the output after each call.
  Step Next();
  // Bytes to write to the peer, in order (our Hello, LinkProof, Goodbye); empties the buffer.
  std::string TakeOutput() { return std::exchange(output_, {}); }

  bool admitted() const { return admitted_; }
  // The peer's replica once admitted, or refused as a duplicate link; else kNoReplica.
  ReplicaId peer() const { return peer_; }
  const Hello& peer_hello() const { return peer_hello_; }
  // With kAdmitted: the owner's link to this peer that was active must be closed ("replaced by
  // a newer link"), as the peer closes its end of it.
  bool replaces_active() const { return replaces_active_; }
  const Message& message() const { return message_; }
  // message(), moved out (its ops are then the engine's without a copy).
  Message TakeMessage() { return std::move(message_); }
  const std::string& reason() const { return reason_; }
  // With kRefused: routine (a duplicate link), worth a debug line rather than a warning.
  bool expected() const { return expected_; }

 private:
  std::optional<Step> Handle(Message message);
  std::optional<Step> OnHello(const Hello& hello);
  std::optional<Step> OnProof(const LinkProof& proof);
  Step Admit();
  Step Refuse(std::string reason, bool expected = false);
  void Send(const Message& message);

  LinkOptions options_;
  FrameReader reader_;
  std::string output_;
  bool hello_received_ = false;
  bool admitted_ = false;
  bool done_ = false;  // a terminal step was reported
  bool replaces_active_ = false;
  bool expected_ = false;
  ReplicaId peer_ = kNoReplica;
  Hello peer_hello_;
  Message message_;
  std::string reason_;
};

}  // namespace lattice::repl
