// Fuzz target: the first bytes a stranger sends on a replication link, through
// repl::LinkHandshake (lattice/repl/link_handshake.h), as src/net/peer_links.cc and the simulator
// feed them.
//
// Input: a flags byte, a fragment size byte, then the peer's bytes.
//   flags bit 0: this end has a shard secret (nonce and binding fixed, so a proof can be right)
//   flags bit 1: this end already has an admitted link to the peer (dialed or accepted: bit 2)
//   flags bit 3: this end dialed the link
//   flags bit 4: the peer's bytes start with a well-formed Hello (with a nonce when bit 0 is set)
//   flags bit 5: ... followed by the right LinkProof, so the fuzzer starts past the handshake
// Checked, besides "never crashes, never asserts":
// - the steps are a valid sequence: at most one kAdmitted, kMessage only after it, nothing but
//   kClosed after kRefused or kPeerGoodbye;
// - an admitted peer passed the checks: this shard, this protocol, another replica id, and a
//   nonce exactly when a secret is set; a kAdmitted with a secret had the right proof;
// - what the handshake sends is well-formed frames, and a refusal ends with Goodbye{reason}.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fuzz_input.h"
#include "lattice/repl/codec.h"
#include "lattice/repl/frame.h"
#include "lattice/repl/link_handshake.h"

namespace lattice::fuzz {
namespace {

using repl::LinkHandshake;
using Step = LinkHandshake::Step;

constexpr ReplicaId kSelf = 0x51;
constexpr ReplicaId kPeer = 0x1e1;
constexpr std::string_view kSecret = "fuzz-secret";
constexpr std::string_view kBinding = "fuzz-channel";

repl::Hello HelloOf(ReplicaId replica, bool secret, char nonce_byte) {
  repl::Hello hello;
  hello.shard_id = "fuzz";
  hello.replica = replica;
  hello.region = "r";
  if (secret) hello.auth_nonce = std::string(repl::kLinkNonceBytes, nonce_byte);
  return hello;
}

repl::LinkOptions Options(uint8_t flags) {
  repl::LinkOptions options;
  const bool secret = (flags & 1) != 0;
  options.hello = HelloOf(kSelf, false, 0);
  options.role = (flags & 8) != 0 ? repl::LinkRole::kDialed : repl::LinkRole::kAccepted;
  if (secret) {
    options.secret = std::string(kSecret);
    options.nonce = std::string(repl::kLinkNonceBytes, 'o');
    options.binding = std::string(kBinding);
  }
  options.max_frame_bytes = 1 << 16;  // a short input reaches "frame too large"
  if ((flags & 2) != 0) {
    const repl::LinkRole active =
        (flags & 4) != 0 ? repl::LinkRole::kDialed : repl::LinkRole::kAccepted;
    options.active_link = [active](ReplicaId) { return std::optional<repl::LinkRole>(active); };
  }
  return options;
}

// The well-formed start flags bits 4 and 5 ask for.
std::string PeerPrefix(uint8_t flags) {
  const bool secret = (flags & 1) != 0;
  std::string bytes;
  if ((flags & 16) == 0) return bytes;
  const repl::Hello hello = HelloOf(kPeer, secret, 'p');
  repl::AppendFrame(repl::Encode(hello), bytes);
  if ((flags & 32) != 0 && secret) {
    const std::string proof = repl::LinkProofOf(
        kSecret, hello.auth_nonce, std::string(repl::kLinkNonceBytes, 'o'), kPeer, kSelf, kBinding);
    repl::AppendFrame(repl::Encode(repl::LinkProof{proof}), bytes);
  }
  return bytes;
}

// Every frame of `bytes` decodes; the last message, if any.
std::optional<repl::Message> CheckOutput(const std::string& bytes) {
  repl::FrameReader reader;
  reader.Feed(bytes);
  std::optional<repl::Message> last;
  repl::FrameReader::Status status;
  while ((status = reader.Next()) == repl::FrameReader::Status::kFrame) {
    Result<repl::Message> message = repl::Decode(reader.payload());
    LATTICE_ASSERT_MSG(message.ok(), "the handshake sends what decodes");
    last = std::move(*message);
  }
  LATTICE_ASSERT_MSG(status == repl::FrameReader::Status::kNeedMore, "whole frames only");
  LATTICE_ASSERT_MSG(reader.buffered_bytes() == 0, "whole frames only");
  return last;
}

void CheckAdmitted(const LinkHandshake& end, uint8_t flags, const std::string& sent) {
  const repl::Hello& hello = end.peer_hello();
  LATTICE_ASSERT_MSG(hello.shard_id == "fuzz", "admitted from another shard");
  LATTICE_ASSERT_MSG(hello.protocol_version == repl::kProtocolVersion, "another protocol");
  LATTICE_ASSERT_MSG(hello.replica != kSelf && hello.replica != kNoReplica, "bad replica id");
  LATTICE_ASSERT_MSG(end.peer() == hello.replica, "peer() is the Hello's replica");
  const bool secret = (flags & 1) != 0;
  LATTICE_ASSERT_MSG(hello.auth_nonce.size() == (secret ? repl::kLinkNonceBytes : 0),
                     "a nonce exactly when a secret is set");
  if (secret) {
    // The proof it accepted is the one only a holder of the secret can make.
    const std::string expected =
        repl::LinkProofOf(kSecret, hello.auth_nonce, std::string(repl::kLinkNonceBytes, 'o'),
                          hello.replica, kSelf, kBinding);
    LATTICE_ASSERT_MSG(sent.find(expected) != std::string::npos, "admitted without the proof");
  }
}

void Run(FuzzInput& in) {
  const uint8_t flags = in.Byte();
  const size_t fragment = in.Byte() + 1;
  LinkHandshake end(Options(flags));
  const std::string peer_bytes = PeerPrefix(flags) + std::string(in.Rest());
  std::string output = end.TakeOutput();
  bool admitted = false;
  std::optional<Step> terminal;
  for (size_t at = 0; at < peer_bytes.size(); at += fragment) {
    end.Feed(std::string_view(peer_bytes).substr(at, fragment));
    for (;;) {
      const Step step = end.Next();
      output += end.TakeOutput();
      if (step == Step::kNeedMore) break;
      if (step == Step::kClosed) {
        LATTICE_ASSERT_MSG(terminal.has_value(), "kClosed only after a terminal step");
        break;
      }
      LATTICE_ASSERT_MSG(!terminal.has_value(), "nothing after a terminal step");
      if (step == Step::kAdmitted) {
        LATTICE_ASSERT_MSG(!admitted, "admitted twice");
        admitted = true;
        CheckAdmitted(end, flags, peer_bytes);
      } else if (step == Step::kMessage) {
        LATTICE_ASSERT_MSG(admitted, "a message before admission");
      } else {
        terminal = step;
        LATTICE_ASSERT_MSG(step == Step::kRefused || !admitted, "kPeerGoodbye after admission");
      }
    }
  }
  const std::optional<repl::Message> last = CheckOutput(output);
  LATTICE_ASSERT_MSG(last.has_value(), "our Hello at least");
  const auto* goodbye = std::get_if<repl::Goodbye>(&*last);
  if (terminal == Step::kRefused) {
    LATTICE_ASSERT_MSG(goodbye != nullptr && goodbye->reason == end.reason(),
                       "a refusal ends with Goodbye{reason}");
  } else {
    LATTICE_ASSERT_MSG(goodbye == nullptr, "a Goodbye only with a refusal");
  }
}

}  // namespace
}  // namespace lattice::fuzz

LATTICE_FUZZ_TARGET(lattice::fuzz::Run)
