#pragma once
// PubSub is one node's registry of Pub/Sub subscriptions: channels (SUBSCRIBE), patterns
// (PSUBSCRIBE) and shard channels (SSUBSCRIBE), each with its subscribers in subscription order,
// and, per client, what it subscribed to in that order. Publish builds each message once per
// protocol (a RESP2 array or a RESP3 push) and hands it to every receiver's
// ClientState::push_hook, which the network layer installs (it queues the bytes behind the
// client's pending replies and enforces client-output-buffer-limit pubsub). A client without a
// push hook (an in-process client) receives nothing but still counts as a receiver.
//
// Messages from other regions (docs/semantics.md, "Pub/Sub across regions") are delivered here
// the same way; forwarding them is the Server's job, not this registry's.
//
// Ownership: the Server owns one PubSub; it holds non-owning ClientState pointers that the Server
// removes (UnsubscribeAll) before a client goes away. Event-loop thread only.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "server/client_state.h"

namespace lattice::server {

class PubSub {
 public:
  enum Kind : uint8_t { kChannel = 0, kPattern = 1, kShard = 2 };
  static constexpr size_t kKinds = 3;

  // Adds `client` to `name`'s subscribers; false when it already was one.
  bool Subscribe(ClientState& client, Kind kind, std::string_view name);
  // Removes it; false when it was not subscribed.
  bool Unsubscribe(ClientState& client, Kind kind, std::string_view name);
  // What `client` subscribed to, in subscription order.
  std::vector<std::string> Subscriptions(const ClientState& client, Kind kind) const;
  // Drops every subscription of `client` without replying (RESET, disconnection).
  void UnsubscribeAll(ClientState& client);

  // Delivers `message` on `channel` to the local subscribers: a shard channel's when `sharded`,
  // else the channel's and then every matching pattern's (one pmessage per pattern). Returns
  // the number of receivers, as PUBLISH replies.
  int64_t Publish(std::string_view channel, std::string_view message, bool sharded);

  // While set, what would go to `client` is appended to `held` instead (keyspace notifications
  // and invalidations for the client running a command follow its reply; the Server flushes).
  void Hold(ClientState* client, std::string* held) {
    hold_client_ = client;
    held_ = held;
  }

  // PUBSUB CHANNELS / SHARDCHANNELS: the active names of `kind` matching `pattern` (every one
  // when `all`), sorted (Valkey's order is its dict's; sorting keeps replies deterministic).
  std::vector<std::string> Active(Kind kind, std::string_view pattern, bool all) const;
  // PUBSUB NUMSUB / SHARDNUMSUB: subscribers of one name.
  int64_t Subscribers(Kind kind, std::string_view name) const;
  // Distinct names of `kind` with subscribers (PUBSUB NUMPAT, INFO pubsub_channels...).
  size_t Count(Kind kind) const { return subscribers_[kind].size(); }
  // Clients with at least one subscription (INFO pubsub_clients).
  size_t clients() const { return by_client_.size(); }

 private:
  using Clients = std::vector<ClientState*>;
  // A push hook only queues bytes (or closes the client later): it never changes subscriptions,
  // so the lists are walked without a copy.
  void Deliver(const Clients& receivers, std::string_view kind, const std::string* pattern,
               std::string_view channel, std::string_view message);

  absl::flat_hash_map<std::string, Clients> subscribers_[kKinds];
  struct Subscribed {
    std::vector<std::string> names[kKinds];
  };
  absl::flat_hash_map<const ClientState*, Subscribed> by_client_;
  ClientState* hold_client_ = nullptr;
  std::string* held_ = nullptr;
};

// The RESP bytes of one pushed Pub/Sub message: [kind, pattern, channel, message] (no pattern
// unless `has_pattern`) as a RESP2 array or a RESP3 push.
std::string PubSubMessage(Protocol protocol, std::string_view kind, std::string_view pattern,
                          std::string_view channel, std::string_view message, bool has_pattern);

}  // namespace lattice::server
