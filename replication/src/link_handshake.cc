#include "lattice/repl/link_handshake.h"

#include <algorithm>
#include <utility>

#include "lattice/common/assert.h"
#include "lattice/common/sha256.h"
#include "lattice/repl/codec.h"

namespace lattice::repl {

std::string HelloRefusal(std::string_view shard_id, ReplicaId self, const Hello& hello) {
  if (hello.shard_id != shard_id) {
    return "wrong shard: '" + hello.shard_id + "', expected '" + std::string(shard_id) + "'";
  }
  if (hello.protocol_version != kProtocolVersion) {
    return "unsupported protocol version " + std::to_string(hello.protocol_version);
  }
  if (hello.replica == self) {
    return "peer has our own replica id";
  }
  if (hello.replica == kNoReplica) {
    return "peer has no replica id";
  }
  return "";
}

bool KeepsOldLink(ReplicaId self, ReplicaId peer, LinkRole old_link, LinkRole new_link) {
  const ReplicaId old_dialer = old_link == LinkRole::kDialed ? self : peer;
  const ReplicaId new_dialer = new_link == LinkRole::kDialed ? self : peer;
  return old_dialer != new_dialer && old_dialer == std::min(self, peer);
}

std::string LinkProofOf(std::string_view secret, std::string_view own_nonce,
                        std::string_view other_nonce, ReplicaId own_id, ReplicaId other_id,
                        std::string_view binding) {
  std::string data = "lattice-link-proof-v1";
  auto put = [&data](std::string_view part) {
    const auto size = static_cast<uint32_t>(part.size());
    for (int shift = 24; shift >= 0; shift -= 8) data += static_cast<char>(size >> shift);
    data += part;
  };
  auto put_id = [&data](uint64_t id) {
    for (int shift = 56; shift >= 0; shift -= 8) data += static_cast<char>(id >> shift);
  };
  put(own_nonce);
  put(other_nonce);
  put_id(own_id);
  put_id(other_id);
  put(binding);
  return HmacSha256(secret, data);
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  unsigned char differ = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    differ |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return differ == 0;
}

LinkHandshake::LinkHandshake(LinkOptions options)
    : options_(std::move(options)), reader_(options_.max_frame_bytes) {
  LATTICE_ASSERT(options_.secret.empty() || options_.nonce.size() == kLinkNonceBytes);
  options_.hello.auth_nonce = options_.secret.empty() ? "" : options_.nonce;
  Send(options_.hello);
}

void LinkHandshake::Feed(std::string_view bytes) {
  if (!done_) reader_.Feed(bytes);
}

LinkHandshake::Step LinkHandshake::Next() {
  if (done_) {
    return Step::kClosed;
  }
  for (;;) {
    const FrameReader::Status status = reader_.Next();
    if (status == FrameReader::Status::kNeedMore) {
      return Step::kNeedMore;
    }
    if (status == FrameReader::Status::kError) {
      return Refuse("bad frame: " + reader_.error());
    }
    Result<Message> message =
        Decode(reader_.payload(), hello_received_ ? peer_hello_.replica : kNoReplica);
    if (!message.ok()) {
      return Refuse("undecodable message: " + message.error().message);
    }
    if (std::optional<Step> step = Handle(std::move(*message))) {
      return *step;
    }
  }
}

// One decoded frame; nullopt when it is consumed silently (a Hello awaiting its proof).
std::optional<LinkHandshake::Step> LinkHandshake::Handle(Message message) {
  if (admitted_) {
    message_ = std::move(message);
    return Step::kMessage;
  }
  if (const auto* goodbye = std::get_if<Goodbye>(&message)) {
    reason_ = goodbye->reason;
    done_ = true;
    return Step::kPeerGoodbye;
  }
  if (!hello_received_) {
    const auto* hello = std::get_if<Hello>(&message);
    if (hello == nullptr) {
      return Refuse("expected Hello as the first message");
    }
    return OnHello(*hello);
  }
  const auto* proof = std::get_if<LinkProof>(&message);
  if (proof == nullptr) {
    return Refuse("expected the shard secret proof after Hello");
  }
  return OnProof(*proof);
}

std::optional<LinkHandshake::Step> LinkHandshake::OnHello(const Hello& hello) {
  const Hello& ours = options_.hello;
  if (std::string reason = HelloRefusal(ours.shard_id, ours.replica, hello); !reason.empty()) {
    return Refuse(std::move(reason));
  }
  hello_received_ = true;
  peer_hello_ = hello;
  if (options_.secret.empty()) {
    if (!hello.auth_nonce.empty()) {
      return Refuse("the peer uses a shard secret and crdt-shard-secret is not set here");
    }
    return Admit();
  }
  if (hello.auth_nonce.size() != kLinkNonceBytes) {
    return Refuse("the peer proves no shard secret (crdt-shard-secret is not set there)");
  }
  Send(LinkProof{LinkProofOf(options_.secret, options_.nonce, hello.auth_nonce, ours.replica,
                             hello.replica, options_.binding)});
  return std::nullopt;
}

std::optional<LinkHandshake::Step> LinkHandshake::OnProof(const LinkProof& proof) {
  const std::string expected =
      LinkProofOf(options_.secret, peer_hello_.auth_nonce, options_.nonce, peer_hello_.replica,
                  options_.hello.replica, options_.binding);
  if (!ConstantTimeEqual(proof.proof, expected)) {
    return Refuse("wrong shard secret (crdt-shard-secret)");
  }
  return Admit();
}

LinkHandshake::Step LinkHandshake::Admit() {
  const ReplicaId peer = peer_hello_.replica;
  peer_ = peer;  // known even when refused as a duplicate: the owner's dialer learns it
  const std::optional<LinkRole> active =
      options_.active_link ? options_.active_link(peer) : std::nullopt;
  if (active.has_value()) {
    if (KeepsOldLink(options_.hello.replica, peer, *active, options_.role)) {
      return Refuse("duplicate link", /*expected=*/true);
    }
    replaces_active_ = true;
  }
  admitted_ = true;
  return Step::kAdmitted;
}

LinkHandshake::Step LinkHandshake::Refuse(std::string reason, bool expected) {
  reason_ = std::move(reason);
  expected_ = expected;
  done_ = true;
  Send(Goodbye{reason_});
  return Step::kRefused;
}

void LinkHandshake::Send(const Message& message) { AppendFrame(Encode(message), output_); }

}  // namespace lattice::repl
