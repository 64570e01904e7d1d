#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>
#include <cstring>
#include <vector>

#include "lattice/common/assert.h"
#include "spdlog/spdlog.h"

namespace lattice::net {
namespace {

// This thread's queued OpenSSL errors as text, oldest first (the queue is emptied).
std::string OpenSslError() {
  std::string errors;
  while (const unsigned long code = ERR_get_error()) {
    std::array<char, 256> text{};
    ERR_error_string_n(code, text.data(), text.size());
    errors += (errors.empty() ? "" : "; ") + std::string(text.data());
  }
  return errors.empty() ? "unknown error" : errors;
}

std::string Lower(std::string_view text) {
  std::string lowered(text);
  for (char& c : lowered) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lowered;
}

// tls-protocols ("TLSv1.2 TLSv1.3", case-insensitive) as SSL_OP_NO_* options; empty means
// TLSv1.2 and TLSv1.3, as in Valkey.
Result<uint64_t> ProtocolOptions(std::string_view protocols) {
  struct Version {
    std::string_view name;
    uint64_t no_option;
  };
  static constexpr Version kVersions[] = {{"tlsv1", SSL_OP_NO_TLSv1},
                                          {"tlsv1.1", SSL_OP_NO_TLSv1_1},
                                          {"tlsv1.2", SSL_OP_NO_TLSv1_2},
                                          {"tlsv1.3", SSL_OP_NO_TLSv1_3}};
  if (protocols.empty()) {
    protocols = "TLSv1.2 TLSv1.3";
  }
  uint64_t options = SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3;
  for (const Version& version : kVersions) options |= version.no_option;
  bool any = false;
  size_t start = 0;
  while (start < protocols.size()) {
    size_t end = protocols.find(' ', start);
    if (end == std::string_view::npos) end = protocols.size();
    const std::string token = Lower(protocols.substr(start, end - start));
    start = end + 1;
    if (token.empty()) continue;
    bool known = false;
    for (const Version& version : kVersions) {
      if (token == version.name) {
        options &= ~version.no_option;
        known = any = true;
      }
    }
    if (!known) {
      any = false;
      break;
    }
  }
  if (!any) {
    return Unexpected(
        "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' "
        "and 'TLSv1.3'.");
  }
  return options;
}

// What both contexts share: protocols, ciphers, the CA, the node's certificate and key.
Result<void> Configure(ssl::context& context, const server::Config& config,
                       const std::string& cert_file, const std::string& key_file,
                       const std::string& key_pass) {
  SSL_CTX* ctx = context.native_handle();
  Result<uint64_t> options = ProtocolOptions(config.tls_protocols());
  if (!options.ok()) {
    return Unexpected(options.error());
  }
  SSL_CTX_set_options(ctx, *options | SSL_OP_NO_COMPRESSION);
  if (config.ValueOf("tls-prefer-server-ciphers") == "yes") {
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  }
  // Session resumption with client certificates needs a session id context.
  static constexpr unsigned char kSessionContext[] = "lattice";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  if (!key_pass.empty()) {
    SSL_CTX_set_default_passwd_cb_userdata(ctx, const_cast<char*>(key_pass.c_str()));
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) <= 0) {
    return Unexpected("Failed to load certificate: " + cert_file + ": " + OpenSslError());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) <= 0) {
    SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);
    return Unexpected("Failed to load private key: " + key_file + ": " + OpenSslError());
  }
  SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);  // key_pass does not outlive the call
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Unexpected("Private key does not match the certificate: " + key_file + ": " +
                      OpenSslError());
  }
  const std::string ca_file = config.tls_ca_cert_file();
  const std::string ca_dir = config.tls_ca_cert_dir();
  if ((!ca_file.empty() || !ca_dir.empty()) &&
      SSL_CTX_load_verify_locations(ctx, ca_file.empty() ? nullptr : ca_file.c_str(),
                                    ca_dir.empty() ? nullptr : ca_dir.c_str()) <= 0) {
    return Unexpected("Failed to configure CA certificate(s) file/directory: " + OpenSslError());
  }
  const std::string ciphers = config.tls_ciphers();
  if (!ciphers.empty() && SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
    return Unexpected("Failed to configure ciphers: " + OpenSslError());
  }
  const std::string suites = config.tls_ciphersuites();
  if (!suites.empty() && SSL_CTX_set_ciphersuites(ctx, suites.c_str()) != 1) {
    return Unexpected("Failed to configure ciphersuites: " + OpenSslError());
  }
  return {};
}

}  // namespace

bool Tls::Wanted(const server::Config& config) {
  return config.tls_port() != 0 || config.tls_replication();
}

Result<TlsContexts> Tls::Build(const server::Config& config) {
  if (config.tls_cert_file().empty()) {
    return Unexpected("No tls-cert-file configured!");
  }
  if (config.tls_key_file().empty()) {
    return Unexpected("No tls-key-file configured!");
  }
  if ((config.tls_auth_clients() != "no" || config.tls_replication()) &&
      config.tls_ca_cert_file().empty() && config.tls_ca_cert_dir().empty()) {
    return Unexpected(
        "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, "
        "tls-replication or tls-auth-clients are enabled!");
  }
  TlsContexts contexts;
  contexts.server = std::make_shared<ssl::context>(ssl::context::tls_server);
  if (Result<void> done = Configure(*contexts.server, config, config.tls_cert_file(),
                                    config.tls_key_file(), config.tls_key_file_pass());
      !done.ok()) {
    return Unexpected(done.error());
  }
  std::string client_cert = config.ValueOf("tls-client-cert-file");
  std::string client_key = config.ValueOf("tls-client-key-file");
  std::string client_pass = config.ValueOf("tls-client-key-file-pass");
  if (client_cert.empty()) {
    client_cert = config.tls_cert_file();
    client_key = config.tls_key_file();
    client_pass = config.tls_key_file_pass();
  } else if (client_key.empty()) {
    return Unexpected("No tls-client-key-file configured!");
  }
  contexts.client = std::make_shared<ssl::context>(ssl::context::tls_client);
  if (Result<void> done = Configure(*contexts.client, config, client_cert, client_key, client_pass);
      !done.ok()) {
    return Unexpected(done.error());
  }
  contexts.client->set_verify_mode(ssl::verify_peer);
  return contexts;
}

Result<void> Tls::Reload(const server::Config& config) {
  Result<TlsContexts> built = Build(config);
  if (!built.ok()) {
    return Unexpected(built.error());
  }
  contexts_ = std::move(*built);
  return {};
}

Result<void> Tls::ApplyConfigChange(const server::Config& config, std::string_view name) {
  if (!IsTlsContextDirective(name) || !Wanted(config)) {
    return {};
  }
  if (Result<void> reloaded = Reload(config); !reloaded.ok()) {
    spdlog::warn(
        "Failed applying new configuration. Possibly related to new {} setting. "
        "Restoring previous settings. {}",
        name, reloaded.error().message);
    return Unexpected("Unable to update TLS configuration. Check server logs.");
  }
  spdlog::info("TLS configuration reloaded ({} changed)", name);
  return {};
}

bool IsTlsContextDirective(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "tls-cert-file",        "tls-key-file",        "tls-key-file-pass",
      "tls-client-cert-file", "tls-client-key-file", "tls-client-key-file-pass",
      "tls-ca-cert-file",     "tls-ca-cert-dir",     "tls-protocols",
      "tls-ciphers",          "tls-ciphersuites",    "tls-prefer-server-ciphers",
      "tls-auth-clients",     "tls-replication"};
  for (std::string_view known : kNames) {
    if (known == name) return true;
  }
  return false;
}

ssl::verify_mode ClientVerifyMode(std::string_view auth_clients) {
  if (auth_clients == "no") return ssl::verify_none;
  if (auth_clients == "optional") return ssl::verify_peer;
  return ssl::verify_peer | ssl::verify_fail_if_no_peer_cert;
}

std::string ShardIdentity(std::string_view shard_id) {
  return std::string(shard_id) + ".shard.lattice";
}

std::string CheckPeerShard(TlsStream& stream, std::string_view shard_id) {
  X509* cert = SSL_get1_peer_certificate(stream.native_handle());
  if (cert == nullptr) {
    return "peer presented no certificate";
  }
  const std::string name = ShardIdentity(shard_id);
  const int matched =
      X509_check_host(cert, name.data(), name.size(), X509_CHECK_FLAG_NO_WILDCARDS, nullptr);
  std::array<char, 256> subject{};
  X509_NAME_oneline(X509_get_subject_name(cert), subject.data(), subject.size());
  X509_free(cert);
  if (matched != 1) {
    return "peer certificate (" + std::string(subject.data()) + ") does not name shard '" +
           std::string(shard_id) + "' (expected DNS:" + name + ")";
  }
  return "";
}

std::string HandshakeFailure(TlsStream& stream, const boost::system::error_code& ec) {
  std::string reason = ec.message();
  const long verified = SSL_get_verify_result(stream.native_handle());
  if (verified != X509_V_OK) {
    reason += std::string(" (") + X509_verify_cert_error_string(verified) + ")";
  }
  return reason;
}

std::string RandomBytes(size_t size) {
  std::string bytes(size, '\0');
  const int done =
      RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(size));
  LATTICE_ASSERT(done == 1);
  return bytes;
}

std::string ChannelBinding(TlsStream& stream) {
  static constexpr std::string_view kLabel = "EXPORTER-lattice-shard-secret";
  std::string out(32, '\0');
  if (SSL_export_keying_material(stream.native_handle(),
                                 reinterpret_cast<unsigned char*>(out.data()), out.size(),
                                 kLabel.data(), kLabel.size(), nullptr, 0, 0) != 1) {
    ERR_clear_error();
    return "";
  }
  return out;
}

}  // namespace lattice::net
