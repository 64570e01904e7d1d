// Tests of net/tls.h's pure parts: the shard-secret proof's HMAC-SHA256 against OpenSSL's, the
// shard identity name, tls-auth-clients, and the configuration checks that refuse a TLS setup
// before any file is read. The proof itself is tested in tests/repl/link_handshake_test.cc.

#include "net/tls.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/sha256.h"
#include "lattice/repl/link_handshake.h"

namespace lattice::net {
namespace {

std::string BuildError(std::vector<std::string_view> args) {
  server::Config config;
  REQUIRE(config.ApplyArgs(args).ok());
  auto built = Tls::Build(config);
  REQUIRE_FALSE(built.ok());
  return built.error().message;
}

TEST_CASE("tls: the shard-secret proof's HMAC-SHA256 is OpenSSL's, and so is the nonce source",
          "[net][tls]") {
  // The link proof moved from OpenSSL's HMAC to lattice/common/sha256.h: same bytes on the wire.
  for (size_t key_size : {0, 1, 20, 32, 63, 64, 65, 131}) {
    for (size_t data_size : {0, 1, 55, 56, 64, 119, 1000}) {
      const std::string key = RandomBytes(key_size);
      const std::string data = RandomBytes(data_size);
      std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
      unsigned int size = 0;
      REQUIRE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                   reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
                   &size) != nullptr);
      CHECK(HmacSha256(key, data) == std::string(reinterpret_cast<const char*>(out.data()), size));
    }
  }
  const std::string a = RandomBytes(repl::kLinkNonceBytes);
  CHECK(a.size() == repl::kLinkNonceBytes);
  CHECK(a != RandomBytes(repl::kLinkNonceBytes));
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
