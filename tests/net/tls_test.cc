// Tests of net/tls.h's pure parts: HMAC-SHA256 (RFC 4231 vectors), the link proof's binding to
// both nonces, both ids, direction and channel, the shard identity name, tls-auth-clients, and
// the configuration checks that refuse a TLS setup before any file is read.

#include "net/tls.h"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace lattice::net {
namespace {

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : bytes) {
    hex += kDigits[c >> 4];
    hex += kDigits[c & 15];
  }
  return hex;
}

std::string BuildError(std::vector<std::string_view> args) {
  server::Config config;
  REQUIRE(config.ApplyArgs(args).ok());
  auto built = Tls::Build(config);
  REQUIRE_FALSE(built.ok());
  return built.error().message;
}

TEST_CASE("tls: HMAC-SHA256 matches RFC 4231", "[net][tls]") {
  CHECK(Hex(HmacSha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(Hex(HmacSha256(std::string(20, '\x0b'), "Hi There")) ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST_CASE("tls: a link proof covers both nonces, both ids, the direction and the channel",
          "[net][tls]") {
  const std::string a = RandomBytes(32);
  const std::string b = RandomBytes(32);
  REQUIRE(a != b);
  REQUIRE(a.size() == 32);
  const std::string proof = LinkProof("secret", a, b, 1, 2, "channel");
  CHECK(proof.size() == 32);
  CHECK(proof == LinkProof("secret", a, b, 1, 2, "channel"));
  CHECK(proof != LinkProof("secret", b, a, 2, 1, "channel"));  // the other direction
  CHECK(proof != LinkProof("Secret", a, b, 1, 2, "channel"));
  CHECK(proof != LinkProof("secret", a, RandomBytes(32), 1, 2, "channel"));
  CHECK(proof != LinkProof("secret", a, b, 1, 3, "channel"));
  CHECK(proof != LinkProof("secret", a, b, 1, 2, "other channel"));
  CHECK(proof != LinkProof("secret", a, b, 1, 2, ""));
  CHECK(ConstantTimeEqual(proof, LinkProof("secret", a, b, 1, 2, "channel")));
  CHECK_FALSE(ConstantTimeEqual(proof, proof.substr(1)));
  CHECK_FALSE(ConstantTimeEqual(proof, LinkProof("secret", a, b, 1, 2, "")));
}

TEST_CASE("tls: shard identity and client verification modes", "[net][tls]") {
  CHECK(ShardIdentity("default") == "default.shard.lattice");
  CHECK(ClientVerifyMode("no") == ssl::verify_none);
  CHECK(ClientVerifyMode("optional") == ssl::verify_peer);
  CHECK(ClientVerifyMode("yes") == (ssl::verify_peer | ssl::verify_fail_if_no_peer_cert));
  CHECK(IsTlsContextDirective("tls-cert-file"));
  CHECK_FALSE(IsTlsContextDirective("tls-port"));
}

TEST_CASE("tls: configuration errors read as Valkey's", "[net][tls]") {
  server::Config plain;
  CHECK_FALSE(Tls::Wanted(plain));
  CHECK(BuildError({"--tls-port", "7443"}) == "No tls-cert-file configured!");
  CHECK(BuildError({"--tls-port", "7443", "--tls-cert-file", "a.crt"}) ==
        "No tls-key-file configured!");
  CHECK(BuildError({"--tls-cert-file", "a.crt", "--tls-key-file", "a.key"}) ==
        "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, "
        "tls-replication or tls-auth-clients are enabled!");
  CHECK(BuildError({"--tls-cert-file", "a.crt", "--tls-key-file", "a.key", "--tls-auth-clients",
                    "no", "--tls-protocols", "TLSv1.2 SSLv3"}) ==
        "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' "
        "and 'TLSv1.3'.");
  CHECK(BuildError({"--tls-cert-file", "/nonexistent/a.crt", "--tls-key-file", "a.key",
                    "--tls-auth-clients", "no"})
            .starts_with("Failed to load certificate: /nonexistent/a.crt: "));
}

}  // namespace
}  // namespace lattice::net
