#include "server/migrate.h"

#include <memory>
#include <utility>

#include "server/outbound.h"
#include "server/server.h"
#include "store/rdb_value.h"

namespace lattice::server {
namespace {

// What the wait shares with the exchange's callback.
struct Pending {
  bool done = false;
  Result<std::vector<RespValue>> replies = std::vector<RespValue>{};
};

struct Request {
  std::string bytes;
  std::vector<std::string> keys;  // the keys sent, in RESTORE order
};

// AUTH (when given), SELECT, then one RESTORE per live key; null when no key exists.
std::optional<Request> BuildRequest(CommandContext& ctx, const MigrateArgs& migrate, bool cluster) {
  Request request;
  for (std::string_view key : migrate.keys) {
    KeyRef found = ctx.keyspace().Find(ctx.db(), key, ctx.now_ms);
    if (found == nullptr) continue;
    const VisibleValue value = ReadVisible(found, ctx.now_ms);
    int64_t ttl_ms = 0;
    if (value.expiry_ms.has_value()) {
      ttl_ms = std::max<int64_t>(1, *value.expiry_ms - ctx.now_ms);
    }
    const std::string payload = EncodeDumpPayload(value);
    const std::string ttl = std::to_string(ttl_ms);
    const std::string_view restore = cluster ? "RESTORE-ASKING" : "RESTORE";
    if (migrate.replace) {
      AppendRequest(request.bytes, {restore, key, ttl, payload, "REPLACE"});
    } else {
      AppendRequest(request.bytes, {restore, key, ttl, payload});
    }
    request.keys.emplace_back(key);
  }
  if (request.keys.empty()) return std::nullopt;
  std::string head;
  if (migrate.password.has_value()) {
    if (migrate.username.has_value()) {
      AppendRequest(head, {"AUTH", *migrate.username, *migrate.password});
    } else {
      AppendRequest(head, {"AUTH", *migrate.password});
    }
  }
  AppendRequest(head, {"SELECT", std::to_string(migrate.db)});
  request.bytes.insert(0, head);
  return request;
}

// The reply once the target answered: Valkey deletes each key the target restored (unless
// COPY) and reports the first error the target gave.
void Finish(CommandContext& ctx, const std::vector<RespValue>& replies,
            const std::vector<std::string>& keys, bool copy) {
  const size_t head = replies.size() - keys.size();  // AUTH and SELECT
  for (size_t i = 0; i < head; ++i) {
    if (replies[i].type == RespValue::Type::kError) {
      ctx.reply.Error("ERR Target instance replied with error: " + replies[i].text);
      return;
    }
  }
  std::optional<std::string> error;
  for (size_t i = 0; i < keys.size(); ++i) {
    const RespValue& reply = replies[head + i];
    if (reply.type == RespValue::Type::kError) {
      if (!error) error = "ERR Target instance replied with error: " + reply.text;
    } else if (!copy) {
      ctx.keyspace().Delete(ctx.db(), keys[i], ctx.now_ms);
    }
  }
  if (error) {
    ctx.reply.Error(*error);
  } else {
    ctx.reply.Ok();
  }
}

}  // namespace

Result<MigrateArgs> ParseMigrateArgs(ArgList args) {
  MigrateArgs out;
  out.host = std::string(args[1]);
  if (!args[3].empty()) out.keys.push_back(args[3]);
  for (size_t i = 6; i < args.size(); ++i) {
    const size_t more = args.size() - 1 - i;
    if (EqualsIgnoreCase(args[i], "copy")) {
      out.copy = true;
    } else if (EqualsIgnoreCase(args[i], "replace")) {
      out.replace = true;
    } else if (EqualsIgnoreCase(args[i], "auth") && more >= 1) {
      out.password = std::string(args[++i]);
    } else if (EqualsIgnoreCase(args[i], "auth2") && more >= 2) {
      out.username = std::string(args[++i]);
      out.password = std::string(args[++i]);
    } else if (EqualsIgnoreCase(args[i], "keys")) {
      if (!args[3].empty()) {
        return Unexpected(
            "ERR When using MIGRATE KEYS option, the key argument must be set to the empty "
            "string");
      }
      out.keys.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    } else {
      return Unexpected(std::string(errors::kSyntax));
    }
  }
  if (!ParseInt64(args[5], &out.timeout_ms) || !ParseInt64(args[4], &out.db)) {
    return Unexpected(std::string(errors::kNotInteger));
  }
  if (out.timeout_ms <= 0) out.timeout_ms = 1000;
  // Valkey reads the port with atoi: text that is not a number dials port 0 and fails to connect.
  if (!ParseInt64(args[2], &out.port) || out.port < 0 || out.port > 65535) out.port = 0;
  return out;
}

void MigrateValues(CommandContext& ctx, ArgList args, const MigrateArgs& migrate) {
  Outbound* outbound = ctx.server.outbound();
  std::optional<Request> request = BuildRequest(ctx, migrate, ctx.server.cluster() != nullptr);
  if (!request) {
    ctx.reply.SimpleString("NOKEY");
    return;
  }
  if (outbound == nullptr) {
    ctx.reply.Error(std::string(Outbound::kConnectError));  // nowhere to dial from here
    return;
  }
  if (!ctx.server.MayBlock()) {  // the reply comes later: it cannot be part of EXEC or a script
    ctx.reply.Error("ERR MIGRATE to another server can not run inside MULTI or a script");
    return;
  }
  auto pending = std::make_shared<Pending>();
  Server& server = ctx.server;
  const size_t expected = request->keys.size() + (migrate.password ? 2 : 1);
  outbound->Exchange(migrate.host, static_cast<int>(migrate.port), std::move(request->bytes),
                     expected, migrate.timeout_ms,
                     [pending, &server](Result<std::vector<RespValue>> replies) {
                       pending->done = true;
                       pending->replies = std::move(replies);
                       server.blocking().Wake(BlockChannel::kOutbound);
                     });
  BlockRequest wait{.channel = BlockChannel::kOutbound, .unblockable = false};
  wait.serve = [pending, keys = std::move(request->keys),
                copy = migrate.copy](CommandContext& served) {
    if (!pending->done) return false;
    if (!pending->replies.ok()) {
      served.reply.Error(pending->replies.error().message);
    } else {
      Finish(served, *pending->replies, keys, copy);
    }
    return true;
  };
  server.blocking().Block(ctx, args, std::move(wait));
}

}  // namespace lattice::server
