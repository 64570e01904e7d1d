#pragma once
// TLS for the client port (tls-port) and the replication links (tls-replication), through
// OpenSSL and Asio's ssl streams.
//
// - Tls owns the current OpenSSL contexts, built from the tls-* directives with Valkey's checks
//   and wording: one server context (client port and accepted replication links) and one client
//   context (replication links this node dials; tls-client-cert-file/-key-file when set, else
//   tls-cert-file/-key-file). Reload() builds a new pair and swaps it in only if every file
//   loads, so CONFIG SET of a bad file keeps the old contexts. Connections hold a shared_ptr to
//   the context they started with: a reload affects new connections only.
// - Shard identity (replication): a node's certificate names its shard as the subjectAltName
//   DNS:<shard-id>.shard.lattice (or, when it has no DNS name at all, as its CN). Both ends of a
//   replication link verify the other's certificate against the CA and check this name.
// - Shard secret (crdt-shard-secret): each end proves it knows the secret with the proof of
//   lattice/repl/link_handshake.h, bound to the TLS exporter value of the session
//   (ChannelBinding; empty on plain TCP). The secret never travels; a proof is useless on another
//   connection.
//
// Event-loop thread only.

#include <boost/asio/ssl.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "lattice/common/result.h"
#include "net/asio.h"
#include "server/config.h"

namespace lattice::net {

namespace ssl = asio::ssl;
using TlsStream = ssl::stream<tcp::socket>;

struct TlsContexts {
  std::shared_ptr<ssl::context> server;
  std::shared_ptr<ssl::context> client;
};

class Tls {
 public:
  // Whether the configuration asks for TLS at all (a TLS port or TLS replication).
  static bool Wanted(const server::Config& config);
  // Builds both contexts from `config`. The error is the reason, in Valkey's words.
  static Result<TlsContexts> Build(const server::Config& config);

  // Builds and swaps in new contexts; on error the current ones stay.
  Result<void> Reload(const server::Config& config);
  // CONFIG SET's apply step (Config::set_on_apply) for directive `name`, already stored in
  // `config`: a TLS directive, while TLS is wanted, rebuilds the contexts for new connections.
  // A failure is logged with its reason and returned in Valkey's words ("Unable to update TLS
  // configuration. Check server logs."); the old contexts stay.
  Result<void> ApplyConfigChange(const server::Config& config, std::string_view name);
  bool loaded() const { return contexts_.server != nullptr; }
  std::shared_ptr<ssl::context> server_context() const { return contexts_.server; }
  std::shared_ptr<ssl::context> client_context() const { return contexts_.client; }

 private:
  TlsContexts contexts_;
};

// Whether a config directive is one whose change rebuilds the TLS contexts.
bool IsTlsContextDirective(std::string_view name);

// The verify mode for a client connection under tls-auth-clients (no | yes | optional).
ssl::verify_mode ClientVerifyMode(std::string_view auth_clients);

// The name a replication certificate carries for `shard_id` (see the header comment).
std::string ShardIdentity(std::string_view shard_id);
// Empty when the peer of `stream` presented a certificate naming `shard_id`; else the reason.
std::string CheckPeerShard(TlsStream& stream, std::string_view shard_id);

// Why a TLS handshake failed: the error ("wrong version number", "certificate verify failed")
// and, when the certificate check failed, OpenSSL's reason ("unable to get local issuer
// certificate").
std::string HandshakeFailure(TlsStream& stream, const boost::system::error_code& ec);

// `size` cryptographically random bytes.
std::string RandomBytes(size_t size);
// The session's exporter value (RFC 5705/8446) for the shard-secret proof: 32 bytes.
std::string ChannelBinding(TlsStream& stream);

}  // namespace lattice::net
