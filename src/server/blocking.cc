#include "server/blocking.h"

#include <climits>
#include <cmath>

#include "lattice/crdt/numeric.h"
#include "server/cluster_routing.h"
#include "server/server.h"

namespace lattice::server {

void BlockOrServe(CommandContext& ctx, ArgList args, std::string_view timeout,
                  const std::function<bool(CommandContext&)>& now, BlockRequest request) {
  const Result<int64_t> deadline_ms = ParseBlockTimeout(timeout, ctx.now_ms);
  if (!deadline_ms.ok()) {
    ctx.reply.Error(deadline_ms.error());
    return;
  }
  if (now(ctx)) {
    return;
  }
  if (!ctx.server.MayBlock()) {
    request.timed_out ? request.timed_out(ctx) : ctx.reply.NullArray();
    return;
  }
  request.deadline_ms = *deadline_ms;
  ctx.server.blocking().Block(ctx, args, std::move(request));
}

Result<int64_t> ParseBlockTimeout(std::string_view text, int64_t now_ms) {
  const std::optional<long double> seconds = crdt::ParseLongDouble(text);
  if (!seconds.has_value()) {
    return Unexpected(std::string("ERR timeout is not a float or out of range"));
  }
  const long double ms = *seconds * 1000.0L;
  if (ms > static_cast<long double>(LLONG_MAX)) {
    return Unexpected(std::string("ERR timeout is out of range"));
  }
  // Valkey rounds up: -0.0001 s is 0 ms, i.e. no timeout.
  const long double rounded = std::ceil(ms);
  if (rounded < 0) {
    return Unexpected(std::string("ERR timeout is negative"));
  }
  const int64_t timeout_ms = static_cast<int64_t>(rounded);
  if (timeout_ms == 0) {
    return int64_t{0};
  }
  if (timeout_ms > LLONG_MAX - now_ms) {
    return Unexpected(std::string("ERR timeout is out of range"));
  }
  return now_ms + timeout_ms;
}

void BlockedClients::Block(CommandContext& ctx, ArgList args, BlockRequest request) {
  ClientState* client = &ctx.client;
  Remove(client);  // blocked again while being served: the new wait replaces the old one
  auto entry = std::make_shared<Entry>();
  entry->client = client;
  entry->command = &ctx.command;
  entry->reply = &ctx.reply;
  entry->args.assign(args.begin(), args.end());
  entry->db = ctx.db();
  entry->order = next_order_++;
  entry->request = std::move(request);
  if (entry->request.channel == BlockChannel::kKeys) {
    for (const std::string& key : entry->request.keys) {
      std::list<const ClientState*>& list = waiting_[KeyId(entry->db, key)];
      if (list.empty() || list.back() != client) list.push_back(client);  // BZPOPMIN k k
    }
  } else {
    ChannelList(entry->request.channel).push_back(client);
  }
  if (entry->request.deadline_ms != 0) {
    deadlines_.emplace(entry->request.deadline_ms, entry->order);
  }
  by_order_[entry->order] = client;
  entries_[client] = std::move(entry);
}

int64_t BlockedClients::DeadlineOf(const ClientState* client) const {
  auto it = entries_.find(client);
  return it == entries_.end() ? 0 : it->second->request.deadline_ms;
}

void BlockedClients::MarkReady(int db, std::string_view key) {
  KeyId id(db, std::string(key));
  if (waiting_.contains(id) && ready_set_.insert(id).second) {
    ready_keys_.push_back(std::move(id));
  }
}

void BlockedClients::WakeAllKeys() {
  for (const auto& [id, clients] : waiting_) {
    if (ready_set_.insert(id).second) ready_keys_.push_back(id);
  }
}

void BlockedClients::Remove(const ClientState* client) {
  auto it = entries_.find(client);
  if (it == entries_.end()) return;
  const Entry& entry = *it->second;
  if (entry.request.channel == BlockChannel::kKeys) {
    for (const std::string& key : entry.request.keys) {
      auto waiting = waiting_.find(KeyId(entry.db, key));
      if (waiting == waiting_.end()) continue;
      waiting->second.remove(client);
      if (waiting->second.empty()) waiting_.erase(waiting);
    }
  } else {
    ChannelList(entry.request.channel).remove(client);
  }
  deadlines_.erase({entry.request.deadline_ms, entry.order});
  by_order_.erase(entry.order);
  entries_.erase(it);
}

void BlockedClients::Finish(const ClientState* client) {
  auto it = entries_.find(client);
  if (it == entries_.end()) return;
  ClientState* owner = it->second->client;
  Remove(client);
  if (owner->wake_hook) owner->wake_hook();
}

// In cluster mode a keyed waiter is routed again first: a slot that moved away redirects it
// (-MOVED, or -CLUSTERDOWN for an unassigned slot) as Valkey's clusterRedirectBlockedClient-
// IfNeeded does; a paused or unconfirmed slot keeps it waiting.
bool BlockedClients::TryServe(const std::shared_ptr<Entry>& entry) {
  CommandContext ctx(server_, *entry->client, *entry->reply, *entry->command,
                     server_.clock().NowMs());
  if (entry->request.channel == BlockChannel::kKeys && server_.cluster() != nullptr) {
    std::string* out = entry->reply->buffer();
    const size_t start = out->size();
    const std::vector<std::string_view> views(entry->args.begin(), entry->args.end());
    if (!RouteCommand(*server_.cluster(), server_.registry(), *entry->client, *entry->command,
                      views, *entry->reply, /*inside_exec=*/false)) {
      entry->client->paused_command.clear();
      if (std::string_view(*out).substr(start).starts_with("-TRYAGAIN")) out->resize(start);
      return out->size() > start;
    }
  }
  return entry->request.serve(ctx);
}

void BlockedClients::ServeList(std::vector<const ClientState*> clients) {
  for (const ClientState* client : clients) {
    auto it = entries_.find(client);
    if (it == entries_.end()) continue;
    const std::shared_ptr<Entry> entry = it->second;  // kept alive if its wait is replaced
    if (TryServe(entry)) {
      auto now = entries_.find(client);
      if (now != entries_.end() && now->second == entry) Finish(client);
    }
  }
}

void BlockedClients::ServeReady() {
  if (serving_) return;
  serving_ = true;
  while (has_ready()) {
    const uint32_t channels = std::exchange(ready_channels_, 0);
    for (BlockChannel channel :
         {BlockChannel::kAcks, BlockChannel::kUnpause, BlockChannel::kOutbound}) {
      if (channels & (1U << static_cast<unsigned>(channel))) {
        const std::list<const ClientState*>& list = ChannelList(channel);
        ServeList({list.begin(), list.end()});
      }
    }
    std::vector<KeyId> keys = std::move(ready_keys_);
    ready_keys_.clear();
    ready_set_.clear();
    for (const KeyId& key : keys) {
      auto it = waiting_.find(key);
      if (it != waiting_.end()) ServeList({it->second.begin(), it->second.end()});
    }
  }
  serving_ = false;
}

void BlockedClients::ExpireDue(int64_t now_ms) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now_ms) {
    End(*entries_.at(by_order_.at(deadlines_.begin()->second)), {});
  }
}

bool BlockedClients::Unblock(ClientState* client, std::string_view error) {
  auto it = entries_.find(client);
  if (it == entries_.end() || !it->second->request.unblockable) return false;
  End(*it->second, error);
  return true;
}

void BlockedClients::End(Entry& entry, std::string_view error) {
  const std::shared_ptr<Entry> keep = entries_.at(entry.client);
  CommandContext ctx(server_, *entry.client, *entry.reply, *entry.command, server_.clock().NowMs());
  if (!error.empty()) {
    ctx.reply.Error(error);
  } else if (entry.request.timed_out) {
    entry.request.timed_out(ctx);
  } else {
    ctx.reply.NullArray();
  }
  Finish(entry.client);
}

}  // namespace lattice::server
