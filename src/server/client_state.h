#pragma once
// ClientState is what the server knows about one client connection: identity, selected db,
// protocol, authentication, names set by CLIENT SETNAME/SETINFO, timing and the flags the
// network layer acts on after a reply (close, kill). The network layer owns the socket and one
// ClientState per connection; the Server keeps a non-owning index of all of them for CLIENT
// LIST/KILL. Only the event-loop thread touches a ClientState.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "resp/reply_builder.h"

namespace lattice::server {

struct AclUser;

struct ClientState {
  uint64_t id = 0;
  std::string addr;   // "127.0.0.1:54321"
  std::string laddr;  // "127.0.0.1:6379"
  int fd = -1;
  std::string name;
  std::string lib_name;
  std::string lib_ver;
  int db = 0;
  Protocol protocol = Protocol::kResp2;
  bool authenticated = true;
  std::string user = "default";
  const AclUser* acl_user = nullptr;  // the user's permissions (server/acl.h); null: default
  // The peer is loopback (or the client is in-process): protected mode and the "local" setting
  // of enable-protected-configs / enable-debug-command let it through.
  bool is_local = true;
  // The stream of the primary this region follows (server/replica_of.h): its writes pass the
  // READONLY refusal.
  bool primary_link = false;
  int64_t created_ms = 0;
  int64_t last_interaction_ms = 0;
  std::string last_command = "NULL";  // full name of the last command, for CLIENT LIST cmd=
  size_t query_buffer_bytes = 0;      // pending request bytes, for CLIENT LIST qbuf=
  // CLIENT LIST tot-net-in, tot-net-out (the network layer counts) and tot-cmds (Execute).
  uint64_t net_input_bytes = 0;
  uint64_t net_output_bytes = 0;
  uint64_t commands_processed = 0;
  // The reply bytes waiting to be written (set by the network layer): CLIENT LIST obl/oll/omem.
  std::function<size_t()> output_bytes;

  // MULTI/EXEC state. `multi_dirty`: a command failed to queue, so EXEC aborts.
  // `watch_dirty`: a watched key was written (here or by a peer region), so EXEC returns null.
  bool in_multi = false;
  bool multi_dirty = false;
  std::vector<std::vector<std::string>> queued;
  struct WatchedKey {
    int db = 0;
    std::string key;
    bool existed = false;  // visible at WATCH time: an expiry before EXEC counts as a change
  };
  std::vector<WatchedKey> watched;
  bool watch_dirty = false;

  // CRDT.WAIT: this replica's sequence number of the client's last write (0: none yet).
  uint64_t last_write_seq = 0;
  // Blocking commands (server/blocking.h): while the client waits in the Server's registry
  // (Server::blocking().IsBlocked), the network layer holds its further commands and installs
  // `wake_hook`, which the registry calls once the client is served, timed out or unblocked
  // (and the close hook calls when the client is closed).
  std::function<void()> wake_hook;

  // Cluster mode: ASKING applies to the next command; READONLY is kept for READWRITE. A write to
  // a slot paused for a migration handoff is not run: the command is kept here and the network
  // layer blocks the client until the slot is served again (Server::HoldPaused).
  bool asking = false;
  bool readonly = false;
  std::vector<std::string> paused_command;
  // The held command waits for CLIENT PAUSE to end (server/client_pause.h), not for a slot.
  bool held_by_client_pause = false;

  // CLIENT REPLY OFF / SKIP (the next command's reply only), CLIENT NO-EVICT.
  bool reply_off = false;
  bool reply_skip_next = false;
  bool reply_skip = false;
  bool no_evict = false;

  // Pub/Sub: how many channels, patterns and shard channels the client subscribed to, indexed
  // by PubSub::Kind (server/pubsub.h keeps the names). A RESP2 client with any is in subscribed
  // mode (Valkey's CLIENT_PUBSUB flag: flags=P, only (P|S)(UN)SUBSCRIBE, PING, QUIT, RESET).
  size_t subscriptions[3] = {0, 0, 0};
  bool subscribed() const { return subscriptions[0] + subscriptions[1] + subscriptions[2] > 0; }
  // Installed by the network layer: queues pushed bytes (a Pub/Sub message) behind the client's
  // pending replies, enforcing client-output-buffer-limit pubsub. Unset: pushes are dropped.
  std::function<void(std::string_view)> push_hook;

  // CLIENT TRACKING (server/tracking.h): the mode, and CLIENT CACHING's answer, which applies to
  // the next command (or the next transaction).
  struct Tracking {
    bool on = false;
    bool bcast = false;
    bool optin = false;
    bool optout = false;
    bool noloop = false;
    bool caching = false;               // CLIENT CACHING YES (optin) or NO (optout) was given
    bool broken_redirect = false;       // the redirect target went away
    uint64_t redirect = 0;              // 0: none
    std::vector<std::string> prefixes;  // BCAST; none: every key
  } tracking;

  // Set by QUIT, SHUTDOWN or CLIENT KILL of oneself: flush the pending replies, then close.
  bool close_after_reply = false;
  // Set when another client killed this one: close at once, without flushing.
  bool killed = false;
  // Installed by the network layer: closes the socket from outside the connection's coroutine
  // (CLIENT KILL, idle timeout, shutdown). Runs on the event-loop thread.
  std::function<void()> close_hook;
};

}  // namespace lattice::server
