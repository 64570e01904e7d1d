// The link handshake (lattice/repl/link_handshake.h): two ends wired back to back are admitted,
// with and without a shard secret, under any fragmentation; every wrong Hello, proof or byte is
// a refusal with its reason and a Goodbye, never an assertion; and the rule that picks one of two
// links to the same peer.
#include "lattice/repl/link_handshake.h"

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lattice/common/rng.h"
#include "lattice/common/sha256.h"
#include "lattice/repl/codec.h"
#include "lattice/repl/frame.h"

namespace lattice::repl {
namespace {

using Step = LinkHandshake::Step;

constexpr ReplicaId kA = 0x1111;
constexpr ReplicaId kB = 0x2222;

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : bytes) {
    hex += kDigits[c >> 4];
    hex += kDigits[c & 15];
  }
  return hex;
}

LinkOptions Options(ReplicaId self, LinkRole role, std::string secret = "", char nonce_byte = 'n') {
  LinkOptions options;
  options.hello.shard_id = "s1";
  options.hello.replica = self;
  options.hello.region = self == kA ? "east" : "west";
  options.hello.applied.Set(self, 7);
  options.role = role;
  options.secret = std::move(secret);
  if (!options.secret.empty()) options.nonce = std::string(kLinkNonceBytes, nonce_byte);
  options.binding = "channel";
  return options;
}

std::string Frame(const Message& message) { return EncodeFrame(Encode(message)); }

// Every step of `end` until it needs more input or is done.
std::vector<Step> Drain(LinkHandshake& end) {
  std::vector<Step> steps;
  for (;;) {
    const Step step = end.Next();
    if (step == Step::kNeedMore || step == Step::kClosed) return steps;
    steps.push_back(step);
  }
}

// The messages `end` wants sent, decoded (frames are well formed: ours).
std::vector<Message> Sent(LinkHandshake& end) {
  std::vector<Message> messages;
  FrameReader reader;
  reader.Feed(end.TakeOutput());
  while (reader.Next() == FrameReader::Status::kFrame) {
    Result<Message> message = Decode(reader.payload());
    REQUIRE(message.ok());
    messages.push_back(*message);
  }
  return messages;
}

// Two ends back to back: each one's output is fed to the other, `chunk` bytes at a time, until
// neither has anything left to say.
struct Wire {
  LinkHandshake a;
  LinkHandshake b;
  std::vector<Step> a_steps;
  std::vector<Step> b_steps;

  Wire(LinkOptions a_options, LinkOptions b_options)
      : a(std::move(a_options)), b(std::move(b_options)) {}

  void Run(size_t chunk = SIZE_MAX) {
    for (int round = 0; round < 10; ++round) {
      const std::string to_b = a.TakeOutput();
      const std::string to_a = b.TakeOutput();
      if (to_a.empty() && to_b.empty()) return;
      Pass(to_b, b, b_steps, chunk);
      Pass(to_a, a, a_steps, chunk);
    }
    FAIL("the handshake does not settle");
  }

  static void Pass(std::string_view bytes, LinkHandshake& to, std::vector<Step>& steps,
                   size_t chunk) {
    for (size_t at = 0; at < bytes.size(); at += chunk) {
      to.Feed(bytes.substr(at, chunk));
      for (Step step : Drain(to)) steps.push_back(step);
    }
  }
};

TEST_CASE("link handshake: HMAC-SHA256 matches RFC 4231", "[repl][handshake]") {
  CHECK(Hex(HmacSha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(Hex(HmacSha256(std::string(20, '\x0b'), "Hi There")) ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  CHECK(Hex(HmacSha256(std::string(131, '\xaa'),
                       "Test Using Larger Than Block-Size Key - Hash Key First")) ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST_CASE("link handshake: a proof covers both nonces, both ids, the direction and the channel",
          "[repl][handshake]") {
  const std::string a(32, 'a');
  const std::string b(32, 'b');
  const std::string proof = LinkProofOf("secret", a, b, 1, 2, "channel");
  CHECK(proof.size() == 32);
  CHECK(proof == LinkProofOf("secret", a, b, 1, 2, "channel"));
  CHECK(proof != LinkProofOf("secret", b, a, 2, 1, "channel"));  // the other direction
  CHECK(proof != LinkProofOf("Secret", a, b, 1, 2, "channel"));
  CHECK(proof != LinkProofOf("secret", a, std::string(32, 'c'), 1, 2, "channel"));
  CHECK(proof != LinkProofOf("secret", a, b, 1, 3, "channel"));
  CHECK(proof != LinkProofOf("secret", a, b, 1, 2, "other channel"));
  CHECK(proof != LinkProofOf("secret", a, b, 1, 2, ""));
  CHECK(ConstantTimeEqual(proof, LinkProofOf("secret", a, b, 1, 2, "channel")));
  CHECK_FALSE(ConstantTimeEqual(proof, proof.substr(1)));
  CHECK_FALSE(ConstantTimeEqual(proof, LinkProofOf("secret", a, b, 1, 2, "")));
  CHECK(ConstantTimeEqual("", ""));
}

TEST_CASE("link handshake: both ends admit each other, then pass messages through",
          "[repl][handshake]") {
  const std::string secret = GENERATE(std::string(), std::string("s3cret"));
  const size_t chunk = GENERATE(size_t{1}, size_t{7}, SIZE_MAX);
  Wire wire(Options(kA, LinkRole::kDialed, secret, 'x'),
            Options(kB, LinkRole::kAccepted, secret, 'y'));
  wire.Run(chunk);
  CHECK(wire.a_steps == std::vector<Step>{Step::kAdmitted});
  CHECK(wire.b_steps == std::vector<Step>{Step::kAdmitted});
  CHECK(wire.a.admitted());
  CHECK(wire.a.peer() == kB);
  CHECK(wire.a.peer_hello().region == "west");
  CHECK(wire.a.peer_hello().applied.Get(kB) == 7);
  CHECK(wire.b.peer() == kA);
  CHECK_FALSE(wire.a.replaces_active());
  if (secret.empty()) {
    CHECK(wire.a.peer_hello().auth_nonce.empty());
  } else {
    CHECK(wire.a.peer_hello().auth_nonce == std::string(kLinkNonceBytes, 'y'));
  }
  // After admission every frame is the engine's, a second Hello and a Goodbye included.
  wire.a.Feed(Frame(Ack{}) + Frame(Options(kB, LinkRole::kAccepted).hello) + Frame(Goodbye{"bye"}));
  CHECK(Drain(wire.a) == std::vector<Step>{Step::kMessage, Step::kMessage, Step::kMessage});
  CHECK(std::holds_alternative<Goodbye>(wire.a.message()));
  CHECK(wire.a.TakeOutput().empty());
}

// What one end does with a peer's bytes that are not a good handshake.
struct Refusal {
  std::string reason;
  std::vector<Message> sent;  // after our Hello
};

Refusal RefusalOf(LinkOptions options, const std::string& bytes) {
  LinkHandshake end(std::move(options));
  REQUIRE(Sent(end).size() == 1);  // our Hello
  end.Feed(bytes);
  const std::vector<Step> steps = Drain(end);
  REQUIRE(steps == std::vector<Step>{Step::kRefused});
  CHECK(end.Next() == Step::kClosed);
  end.Feed(Frame(Ack{}));  // ignored once refused
  CHECK(end.Next() == Step::kClosed);
  CHECK_FALSE(end.admitted());
  return Refusal{end.reason(), Sent(end)};
}

Hello PeerHello() { return Options(kB, LinkRole::kAccepted).hello; }

TEST_CASE("link handshake: a wrong Hello is refused with a Goodbye", "[repl][handshake]") {
  Hello hello = PeerHello();
  std::string expected;
  std::optional<std::string> direct;  // HelloRefusal's, when it differs
  SECTION("another shard") {
    hello.shard_id = "s2";
    expected = "wrong shard: 's2', expected 's1'";
  }
  SECTION("a newer protocol version") {
    hello.protocol_version = kProtocolVersion + 1;
    expected = "unsupported protocol version " + std::to_string(kProtocolVersion + 1);
  }
  SECTION("protocol 1 (protobuf ops): mixed versions refuse cleanly") {
    hello.protocol_version = 1;
    expected = "unsupported protocol version 1";
  }
  SECTION("our own replica id") {
    hello.replica = kA;
    expected = "peer has our own replica id";
  }
  SECTION("no replica id") {
    hello.replica = kNoReplica;
    expected = "undecodable message: hello with replica 0";  // the codec is first
    direct = "peer has no replica id";
  }
  SECTION("a secret there, none here") {
    hello.auth_nonce = std::string(kLinkNonceBytes, 'z');
    expected = "the peer uses a shard secret and crdt-shard-secret is not set here";
    direct = "";
  }
  const Refusal refusal = RefusalOf(Options(kA, LinkRole::kDialed), Frame(hello));
  CHECK(refusal.reason == expected);
  REQUIRE(refusal.sent.size() == 1);
  CHECK(refusal.sent[0] == Message(Goodbye{expected}));
  CHECK(HelloRefusal("s1", kA, hello) == direct.value_or(expected));
}

TEST_CASE("link handshake: the first message must be a Hello", "[repl][handshake]") {
  CHECK(RefusalOf(Options(kA, LinkRole::kDialed), Frame(Ack{})).reason ==
        "expected Hello as the first message");
  CHECK(RefusalOf(Options(kA, LinkRole::kDialed, "s"), Frame(LinkProof{"x"})).reason ==
        "expected Hello as the first message");
}

TEST_CASE("link handshake: a missing, wrong or replayed proof is refused", "[repl][handshake]") {
  Hello hello = PeerHello();
  hello.auth_nonce = std::string(kLinkNonceBytes, 'y');
  const LinkOptions ours = Options(kA, LinkRole::kDialed, "s3cret", 'x');
  const std::string our_nonce(kLinkNonceBytes, 'x');
  const std::string good = LinkProofOf("s3cret", hello.auth_nonce, our_nonce, kB, kA, "channel");

  SECTION("the right proof is admitted") {
    LinkHandshake end(ours);
    end.Feed(Frame(hello) + Frame(LinkProof{good}));
    CHECK(Drain(end) == std::vector<Step>{Step::kAdmitted});
    const std::vector<Message> sent = Sent(end);
    REQUIRE(sent.size() == 2);  // our Hello, then our proof
    CHECK(sent[1] == Message(LinkProof{
                         LinkProofOf("s3cret", our_nonce, hello.auth_nonce, kA, kB, "channel")}));
  }
  SECTION("no proof after the Hello") {
    const Refusal refusal = RefusalOf(ours, Frame(hello) + Frame(Ack{}));
    CHECK(refusal.reason == "expected the shard secret proof after Hello");
    REQUIRE(refusal.sent.size() == 2);  // our proof, then the Goodbye
    CHECK(refusal.sent[1] == Message(Goodbye{refusal.reason}));
  }
  SECTION("a wrong proof") {
    for (const std::string& proof :
         {LinkProofOf("other", hello.auth_nonce, our_nonce, kB, kA, "channel"),
          LinkProofOf("s3cret", hello.auth_nonce, our_nonce, kB, kA, "another channel"),
          LinkProofOf("s3cret", our_nonce, hello.auth_nonce, kA, kB, "channel"),  // ours, echoed
          std::string(), good.substr(1)}) {
      CHECK(RefusalOf(ours, Frame(hello) + Frame(LinkProof{proof})).reason ==
            "wrong shard secret (crdt-shard-secret)");
    }
  }
  SECTION("no secret there") {
    hello.auth_nonce.clear();
    CHECK(RefusalOf(ours, Frame(hello)).reason ==
          "the peer proves no shard secret (crdt-shard-secret is not set there)");
  }
  SECTION("a nonce of the wrong size") {
    hello.auth_nonce = "short";
    CHECK(RefusalOf(ours, Frame(hello)).reason ==
          "the peer proves no shard secret (crdt-shard-secret is not set there)");
  }
}

TEST_CASE("link handshake: different secrets or channels refuse on both ends",
          "[repl][handshake]") {
  LinkOptions b = Options(kB, LinkRole::kAccepted, "secret-b", 'y');
  SECTION("secrets") {}
  SECTION("channels") {
    b.secret = "secret-a";
    b.binding = "a man in the middle";
  }
  Wire wire(Options(kA, LinkRole::kDialed, "secret-a", 'x'), b);
  wire.Run();
  CHECK(wire.a_steps.front() == Step::kRefused);
  CHECK(wire.b_steps.front() == Step::kRefused);
  CHECK(wire.a.reason() == "wrong shard secret (crdt-shard-secret)");
}

TEST_CASE("link handshake: a Goodbye before admission ends the link", "[repl][handshake]") {
  LinkHandshake end(Options(kA, LinkRole::kDialed));
  end.Feed(Frame(Goodbye{"wrong shard"}) + Frame(PeerHello()));
  CHECK(Drain(end) == std::vector<Step>{Step::kPeerGoodbye});
  CHECK(end.reason() == "wrong shard");
  CHECK_FALSE(end.admitted());
  CHECK(Sent(end).size() == 1);  // only our Hello: no Goodbye back
}

TEST_CASE("link handshake: of two links to one peer, both ends keep the same one",
          "[repl][handshake]") {
  // Both dialed: the one dialed by the smaller id survives, whichever end asks.
  CHECK(KeepsOldLink(kA, kB, LinkRole::kDialed, LinkRole::kAccepted));
  CHECK_FALSE(KeepsOldLink(kA, kB, LinkRole::kAccepted, LinkRole::kDialed));
  CHECK(KeepsOldLink(kB, kA, LinkRole::kAccepted, LinkRole::kDialed));
  CHECK_FALSE(KeepsOldLink(kB, kA, LinkRole::kDialed, LinkRole::kAccepted));
  // The same dialer again: a redial, the old link is stale.
  for (LinkRole role : {LinkRole::kDialed, LinkRole::kAccepted}) {
    CHECK_FALSE(KeepsOldLink(kA, kB, role, role));
    CHECK_FALSE(KeepsOldLink(kB, kA, role, role));
  }

  // Through the handshake: A already has a link it accepted from B; A also dialed B.
  LinkOptions a = Options(kA, LinkRole::kDialed);
  LinkOptions b = Options(kB, LinkRole::kAccepted);
  int asked = 0;
  a.active_link = [&asked](ReplicaId peer) -> std::optional<LinkRole> {
    ++asked;
    CHECK(peer == kB);
    return LinkRole::kAccepted;
  };
  b.active_link = [](ReplicaId) -> std::optional<LinkRole> { return LinkRole::kDialed; };
  Wire wire(a, b);
  wire.Run();
  CHECK(asked == 1);
  // A dialed the new link and has the smaller id: both ends keep it, and close the old one.
  CHECK(wire.a_steps.front() == Step::kAdmitted);
  CHECK(wire.a.replaces_active());
  CHECK(wire.b_steps.front() == Step::kAdmitted);
  CHECK(wire.b.replaces_active());

  // Mirrored: B (the larger id) dialed the new link while A's dialed one is live.
  LinkOptions a2 = Options(kA, LinkRole::kAccepted);
  a2.active_link = [](ReplicaId) -> std::optional<LinkRole> { return LinkRole::kDialed; };
  LinkOptions b2 = Options(kB, LinkRole::kDialed);
  b2.active_link = [](ReplicaId) -> std::optional<LinkRole> { return LinkRole::kAccepted; };
  Wire refused(a2, b2);
  refused.Run();
  CHECK(refused.a_steps.front() == Step::kRefused);
  CHECK(refused.a.reason() == "duplicate link");
  CHECK(refused.a.expected());
  CHECK(refused.a.peer() == kB);  // known, so the owner's dialer waits for the live link
  CHECK_FALSE(refused.a.admitted());
}

TEST_CASE("link handshake: garbage is refused, before and after admission", "[repl][handshake]") {
  CHECK(RefusalOf(Options(kA, LinkRole::kDialed), std::string(16, '\xff'))
            .reason.starts_with("bad frame: frame too large"));
  std::string corrupt = Frame(PeerHello());
  corrupt.back() ^= 1;
  CHECK(RefusalOf(Options(kA, LinkRole::kDialed), corrupt).reason ==
        "bad frame: checksum mismatch");
  CHECK(RefusalOf(Options(kA, LinkRole::kDialed), EncodeFrame("\xff\xff\xff"))
            .reason.starts_with("undecodable message: "));

  LinkHandshake end(Options(kA, LinkRole::kDialed));
  end.Feed(Frame(PeerHello()) + EncodeFrame("not protobuf \xff"));
  CHECK(Drain(end) == std::vector<Step>{Step::kAdmitted, Step::kRefused});
  CHECK(end.reason().starts_with("undecodable message: "));
  CHECK(Sent(end).back() == Message(Goodbye{end.reason()}));

  // Random bytes, with and without a secret, in random pieces: any verdict but a crash.
  Rng rng(42);
  for (int round = 0; round < 2000; ++round) {
    LinkHandshake random(Options(kA, LinkRole::kDialed, round % 2 ? "s" : "", 'x'));
    std::string bytes = rng.Chance(1, 2) ? Frame(PeerHello()) : "";
    const size_t size = rng.Uniform(64);
    for (size_t i = 0; i < size; ++i) bytes += static_cast<char>(rng.Uniform(256));
    if (rng.Chance(1, 2)) bytes = EncodeFrame(bytes.substr(0, size));
    random.Feed(bytes);
    const std::vector<Step> steps = Drain(random);
    CHECK(random.TakeOutput().size() > 0);
    if (!steps.empty() && steps.back() == Step::kRefused) CHECK_FALSE(random.reason().empty());
  }
}

}  // namespace
}  // namespace lattice::repl
