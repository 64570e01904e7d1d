#include "server/pubsub.h"

#include <algorithm>

#include "resp/reply_builder.h"
#include "util/glob.h"

namespace lattice::server {
namespace {

// Debian's abseil has its own string_view: heterogeneous lookups take that one.
absl::string_view Key(std::string_view name) { return {name.data(), name.size()}; }

}  // namespace

std::string PubSubMessage(Protocol protocol, std::string_view kind, std::string_view pattern,
                          std::string_view channel, std::string_view message, bool has_pattern) {
  std::string out;
  out.reserve(48 + pattern.size() + channel.size() + message.size());
  ReplyBuilder reply(&out);
  reply.set_protocol(protocol);
  reply.Push(has_pattern ? 4 : 3);
  reply.Bulk(kind);
  if (has_pattern) reply.Bulk(pattern);
  reply.Bulk(channel);
  reply.Bulk(message);
  return out;
}

bool PubSub::Subscribe(ClientState& client, Kind kind, std::string_view name) {
  Clients& clients = subscribers_[kind][Key(name)];
  if (std::find(clients.begin(), clients.end(), &client) != clients.end()) return false;
  clients.push_back(&client);
  by_client_[&client].names[kind].emplace_back(name);
  ++client.subscriptions[kind];
  return true;
}

bool PubSub::Unsubscribe(ClientState& client, Kind kind, std::string_view name) {
  auto it = subscribers_[kind].find(Key(name));
  if (it == subscribers_[kind].end() || std::erase(it->second, &client) == 0) return false;
  if (it->second.empty()) subscribers_[kind].erase(it);
  auto mine = by_client_.find(&client);
  std::vector<std::string>& names = mine->second.names[kind];
  names.erase(std::find(names.begin(), names.end(), name));
  --client.subscriptions[kind];
  if (!client.subscribed()) by_client_.erase(mine);
  return true;
}

std::vector<std::string> PubSub::Subscriptions(const ClientState& client, Kind kind) const {
  auto it = by_client_.find(&client);
  return it == by_client_.end() ? std::vector<std::string>{} : it->second.names[kind];
}

void PubSub::UnsubscribeAll(ClientState& client) {
  auto mine = by_client_.find(&client);
  if (mine == by_client_.end()) return;
  for (size_t kind = 0; kind < kKinds; ++kind) {
    for (const std::string& name : mine->second.names[kind]) {
      auto it = subscribers_[kind].find(Key(name));
      std::erase(it->second, &client);
      if (it->second.empty()) subscribers_[kind].erase(it);
    }
    client.subscriptions[kind] = 0;
  }
  by_client_.erase(mine);
}

void PubSub::Deliver(const Clients& receivers, std::string_view kind, const std::string* pattern,
                     std::string_view channel, std::string_view message) {
  std::string encoded[2];  // RESP2, RESP3: built once each, when a receiver needs it
  for (ClientState* client : receivers) {
    if (!client->push_hook) continue;
    const bool resp3 = client->protocol == Protocol::kResp3;
    std::string& bytes = encoded[resp3 ? 1 : 0];
    if (bytes.empty()) {
      bytes = PubSubMessage(client->protocol, kind, pattern != nullptr ? *pattern : "", channel,
                            message, pattern != nullptr);
    }
    if (client == hold_client_) {
      held_->append(bytes);
    } else {
      client->push_hook(bytes);
    }
  }
}

int64_t PubSub::Publish(std::string_view channel, std::string_view message, bool sharded) {
  int64_t receivers = 0;
  const Kind kind = sharded ? kShard : kChannel;
  if (auto it = subscribers_[kind].find(Key(channel)); it != subscribers_[kind].end()) {
    receivers += static_cast<int64_t>(it->second.size());
    Deliver(it->second, sharded ? "smessage" : "message", nullptr, channel, message);
  }
  if (sharded) return receivers;
  for (const auto& [pattern, clients] : subscribers_[kPattern]) {
    if (!GlobMatch(pattern, channel)) continue;
    receivers += static_cast<int64_t>(clients.size());
    Deliver(clients, "pmessage", &pattern, channel, message);
  }
  return receivers;
}

std::vector<std::string> PubSub::Active(Kind kind, std::string_view pattern, bool all) const {
  std::vector<std::string> names;
  for (const auto& [name, clients] : subscribers_[kind]) {
    if (all || GlobMatch(pattern, name)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

int64_t PubSub::Subscribers(Kind kind, std::string_view name) const {
  auto it = subscribers_[kind].find(Key(name));
  return it == subscribers_[kind].end() ? 0 : static_cast<int64_t>(it->second.size());
}

}  // namespace lattice::server
