#include "server/sync_replicas.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <initializer_list>

#include "server/server.h"
#include "spdlog/spdlog.h"
#include "store/rdb_value.h"
#include "store/rdb_writer.h"
#include "util/allocator.h"

namespace lattice::server {
namespace {

constexpr size_t kLowWaterBytes = size_t{4} << 20;     // top up a replica's output below this
constexpr size_t kChunkBytes = size_t{1} << 20;        // pushed at a time
constexpr size_t kBehindMaxBytes = size_t{256} << 20;  // Valkey's replica hard limit
constexpr int64_t kPingPeriodMs = 10'000;              // repl-ping-replica-period
constexpr int64_t kNewlinePeriodMs = 1'000;
constexpr int64_t kBacklogTtlMs = 3'600'000;  // repl-backlog-ttl

void AppendCommand(std::string& out, std::initializer_list<std::string_view> args) {
  AppendRequest(out, args);
}

// One changed key as the command that gives a replica its state.
void AppendKeyState(std::string& out, std::string_view key, const VisibleValue& value) {
  if (value.type == crdt::ObjectType::kNone) {
    AppendCommand(out, {"DEL", key});
  } else if (value.type == crdt::ObjectType::kString) {
    if (value.expiry_ms.has_value()) {
      AppendCommand(out, {"SET", key, value.string, "PXAT", std::to_string(*value.expiry_ms)});
    } else {
      AppendCommand(out, {"SET", key, value.string});
    }
  } else {
    const std::string expiry = std::to_string(value.expiry_ms.value_or(0));
    AppendCommand(out, {"RESTORE", key, expiry, EncodeDumpPayload(value), "REPLACE", "ABSTTL"});
  }
}

}  // namespace

SyncReplicas::SyncReplicas(Server& server)
    : server_(server), children_(std::make_unique<ForkChildProcesses>()) {}

SyncReplicas::~SyncReplicas() {
  if (observing_) server_.keyspace().RemoveObserver(this);
  for (auto& replica : replicas_) {
    if (replica->fd >= 0) ::close(replica->fd);
  }
  if (child_ >= 0) {
    children_->Kill(child_);
    ::unlink(child_path_.c_str());
  }
}

size_t SyncReplicas::online() const {
  return std::count_if(replicas_.begin(), replicas_.end(),
                       [](const auto& r) { return r->state == State::kOnline; });
}

namespace {
template <typename Settings>
auto& SettingsOf(Settings& all, uint64_t id) {
  for (auto& [client, settings] : all) {
    if (client == id) return settings;
  }
  return all.emplace_back(id, typename Settings::value_type::second_type{}).second;
}
}  // namespace

void SyncReplicas::SetListeningPort(const ClientState& client, int port) {
  SettingsOf(pending_settings_, client.id).listening_port = port;
}

void SyncReplicas::SetIp(const ClientState& client, std::string ip) {
  SettingsOf(pending_settings_, client.id).ip = std::move(ip);
}

void SyncReplicas::SetRdbOnly(const ClientState& client, bool rdb_only) {
  SettingsOf(pending_settings_, client.id).rdb_only = rdb_only;
}

bool SyncReplicas::Ack(const ClientState& client, int64_t offset, int64_t now_ms) {
  for (auto& replica : replicas_) {
    if (replica->client == &client) {
      replica->ack_offset = offset;
      replica->ack_ms = now_ms;
      return true;
    }
  }
  return false;
}

bool SyncReplicas::IsReplica(const ClientState* client) const {
  return std::any_of(replicas_.begin(), replicas_.end(),
                     [client](const auto& r) { return r->client == client; });
}

Result<void> SyncReplicas::Attach(ClientState& client, bool psync, int64_t now_ms,
                                  std::string_view replid, int64_t wanted) {
  if (IsReplica(&client)) return Unexpected(std::string("ERR the client is already a replica"));
  if (!client.push_hook) {
    return Unexpected(std::string("ERR SYNC needs a connection that can receive pushed bytes"));
  }
  auto replica = std::make_unique<Replica>();
  replica->client = &client;
  replica->psync = psync;
  replica->ack_ms = now_ms;
  for (auto it = pending_settings_.begin(); it != pending_settings_.end(); ++it) {
    if (it->first == client.id) {
      replica->listening_port = it->second.listening_port;
      replica->ip = it->second.ip;
      replica->rdb_only = it->second.rdb_only;
      pending_settings_.erase(it);
      break;
    }
  }
  if (replica->ip.empty()) replica->ip = client.addr.substr(0, client.addr.rfind(':'));
  if (replid_.empty()) replid_ = server_.run_id();
  alone_since_ms_ = -1;
  // The replica has the stream up to wanted - 1: what follows is in the backlog, or it is not.
  const int64_t have = wanted - 1;
  if (psync && observing_ && replid == replid_ && have >= backlog_start_ && have <= offset_) {
    Flush();  // what is due goes to the others first; this replica gets it from the backlog
    replica->state = State::kOnline;
    replica->child = -2;  // none: it continues
    Push(*replica, "+CONTINUE " + replid_ + "\r\n");
    replica->pending = backlog_.substr(static_cast<size_t>(have - backlog_start_));
    ++partial_syncs_;
    spdlog::info("Partial resynchronization request from {} accepted, {} bytes of backlog",
                 client.addr, replica->pending.size());
    replicas_.push_back(std::move(replica));
    Pump(*replicas_.back());
    return {};
  }
  replicas_.push_back(std::move(replica));
  if (!observing_ && !replicas_.back()->rdb_only) {  // a backup alone needs no stream
    server_.keyspace().AddObserver(this);
    observing_ = true;
  }
  spdlog::info("Replica {} asks for synchronization ({})", client.addr, psync ? "PSYNC" : "SYNC");
  if (child_ < 0) StartChild(now_ms);
  return {};
}

std::string SyncReplicas::SyncPath() {
  std::string dir = server_.config().dir();
  if (dir.empty()) dir = ".";
  return dir + "/temp-sync-" + std::to_string(::getpid()) + "-" + std::to_string(++sync_files_) +
         ".rdb";
}

void SyncReplicas::StartChild(int64_t now_ms) {
  // The changes made before the fork are in the file; what the stream holds for the others is
  // not sent to the new replicas (Append reaches them from here on).
  Flush();
  RdbWriteOptions options;
  options.ctime_s = now_ms / 1000;
  options.used_mem = util::AllocatedBytes();
  options.repl_id = replid_;
  options.repl_offset = offset_;
  const std::string path = SyncPath();
  const Keyspace& keyspace = server_.keyspace();
  Result<int64_t> child = children_->Start([&keyspace, now_ms, options,
                                            path]() -> Result<std::string> {
    Result<RdbWriteSummary> written = WriteRdbFile(keyspace, now_ms, options, path);
    if (!written.ok()) return Unexpected(written.error());
    return std::to_string(written->keys) + " keys, " + std::to_string(written->bytes) + " bytes";
  });
  if (!child.ok()) {
    for (auto& replica : replicas_) {
      if (replica->state == State::kWaitChild && replica->child < 0) {
        Drop(*replica, "cannot fork: " + child.error().message);
      }
    }
    return;
  }
  child_ = *child;
  child_path_ = path;
  stream_db_ = -1;  // the new replicas' stream starts with a SELECT
  const std::string fullresync = "+FULLRESYNC " + replid_ + " " + std::to_string(offset_) + "\r\n";
  for (auto& replica : replicas_) {
    if (replica->state != State::kWaitChild || replica->child >= 0) continue;
    replica->child = child_;
    if (replica->psync) Push(*replica, fullresync);
  }
  spdlog::info("Starting BGSAVE for SYNC with target: disk (child {})", child_);
  // An inline child (tests) has ended already.
  if (std::optional<Result<std::string>> ended = children_->Poll(child_); ended.has_value()) {
    const int64_t id = child_;
    child_ = -1;
    ChildEnded(id, *ended, now_ms);
  }
}

void SyncReplicas::ChildEnded(int64_t child, const Result<std::string>& result, int64_t now_ms) {
  if (result.ok()) {
    spdlog::info("Background RDB for SYNC done: {}", *result);
  } else {
    spdlog::warn("Background RDB for SYNC failed: {}", result.error().message);
  }
  for (auto& replica : replicas_) {
    if (replica->child != child || replica->state != State::kWaitChild) continue;
    if (!result.ok()) {
      Drop(*replica, result.error().message);
      continue;
    }
    replica->fd = ::open(child_path_.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (replica->fd < 0 || ::fstat(replica->fd, &st) != 0) {
      Drop(*replica, "cannot open the RDB file " + child_path_);
      continue;
    }
    replica->state = State::kTransfer;
    Push(*replica, "$" + std::to_string(st.st_size) + "\r\n");
  }
  ::unlink(child_path_.c_str());  // the replicas read it through their descriptors
  child_path_.clear();
  Forget(now_ms);
  const bool waiting = std::any_of(replicas_.begin(), replicas_.end(), [](const auto& r) {
    return r->state == State::kWaitChild && r->child < 0;
  });
  if (waiting) StartChild(now_ms);
  for (auto& replica : replicas_) Pump(*replica);
}

void SyncReplicas::Push(Replica& replica, std::string_view bytes) {
  server_.PushTo(*replica.client, bytes);
}

void SyncReplicas::Pump(Replica& replica) {
  const auto output = [&replica] {
    return replica.client->output_bytes ? replica.client->output_bytes() : size_t{0};
  };
  while (replica.client != nullptr && !replica.client->killed && output() < kLowWaterBytes) {
    if (replica.state == State::kTransfer) {
      std::string chunk(kChunkBytes, '\0');
      const ssize_t n = ::read(replica.fd, chunk.data(), chunk.size());
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        chunk.resize(static_cast<size_t>(n));
        Push(replica, chunk);
        continue;
      }
      ::close(replica.fd);
      replica.fd = -1;
      if (n < 0) {
        Drop(replica, "cannot read the RDB file");
        return;
      }
      replica.state = replica.rdb_only ? State::kDone : State::kOnline;
      if (replica.rdb_only) replica.pending.clear();
      ++full_syncs_;
      spdlog::info("Synchronization with replica {} succeeded", replica.client->addr);
    } else if (replica.state == State::kOnline && replica.pending_pos < replica.pending.size()) {
      const size_t n = std::min(kChunkBytes, replica.pending.size() - replica.pending_pos);
      Push(replica, std::string_view(replica.pending).substr(replica.pending_pos, n));
      replica.pending_pos += n;
      if (replica.pending_pos == replica.pending.size()) {
        replica.pending.clear();
        replica.pending_pos = 0;
      }
    } else {
      return;
    }
  }
}

void SyncReplicas::Append(std::string_view bytes) {
  offset_ += static_cast<int64_t>(bytes.size());
  backlog_.append(bytes);
  if (backlog_.size() > 2 * kBacklogBytes) {  // trimmed now and then, to its size
    const size_t cut = backlog_.size() - kBacklogBytes;
    backlog_.erase(0, cut);
    backlog_start_ += static_cast<int64_t>(cut);
  }
  for (auto& replica : replicas_) {
    if (replica->child < 0 && replica->state == State::kWaitChild) continue;  // not forked yet
    if (replica->state == State::kDone || replica->rdb_only) continue;
    if (replica->state == State::kOnline && replica->pending.empty() &&
        (!replica->client->output_bytes || replica->client->output_bytes() < kLowWaterBytes)) {
      Push(*replica, bytes);
      continue;
    }
    replica->pending.append(bytes);
    if (replica->pending.size() - replica->pending_pos > kBehindMaxBytes) {
      Drop(*replica, "it fell more than 256 MB behind");
    }
  }
}

void SyncReplicas::Drop(Replica& replica, const std::string& why) {
  if (replica.state == State::kDone) return;
  spdlog::warn("Disconnecting replica {}: {}", replica.client->addr, why);
  replica.state = State::kDone;
  replica.failed = why;
  replica.pending.clear();
  replica.pending_pos = 0;
  if (replica.fd >= 0) {
    ::close(replica.fd);
    replica.fd = -1;
  }
  if (replica.client->close_hook) replica.client->close_hook();
}

void SyncReplicas::Forget(int64_t now_ms) {
  if (replicas_.empty() && alone_since_ms_ < 0) alone_since_ms_ = now_ms;
}

void SyncReplicas::Remove(const ClientState* client) {
  std::erase_if(pending_settings_, [client](const auto& s) { return s.first == client->id; });
  for (auto it = replicas_.begin(); it != replicas_.end(); ++it) {
    if ((*it)->client != client) continue;
    if ((*it)->fd >= 0) ::close((*it)->fd);
    spdlog::info("Connection with replica {} lost", client->addr);
    replicas_.erase(it);
    break;
  }
  Forget(server_.clock().NowMs());
}

void SyncReplicas::MarkDirty(int db, std::string_view key) {
  if (db == server_.keyspace().system_db()) return;
  std::pair<int, std::string> entry(db, std::string(key));
  if (dirty_set_.insert(entry).second) dirty_.push_back(std::move(entry));
}

void SyncReplicas::OnLocalOp(int db, std::string_view key, const crdt::KeyOp&) {
  MarkDirty(db, key);
}
void SyncReplicas::OnRemoteOp(int db, std::string_view key, const crdt::KeyOp&) {
  MarkDirty(db, key);
}
void SyncReplicas::OnKeyChanged(int db, std::string_view key) { MarkDirty(db, key); }

void SyncReplicas::Flush() {
  if (!dirty_.empty()) {
    const int64_t now_ms = server_.clock().NowMs();
    const Keyspace& keyspace = server_.keyspace();
    std::string out;
    for (const auto& [db, key] : dirty_) {
      if (db != stream_db_) {
        AppendCommand(out, {"SELECT", std::to_string(db)});
        stream_db_ = db;
      }
      const KeyRef found = keyspace.Find(db, key, now_ms);
      AppendKeyState(out, key, found == nullptr ? VisibleValue{} : ReadVisible(found, now_ms));
    }
    dirty_.clear();
    dirty_set_.clear();
    Append(out);
  }
  for (auto& replica : replicas_) Pump(*replica);
}

void SyncReplicas::Cron(int64_t now_ms) {
  if (alone_since_ms_ >= 0 && now_ms - alone_since_ms_ >= kBacklogTtlMs && child_ < 0) {
    // No replica for an hour: stop following the keyspace; the next stream has a new id (what
    // changed meanwhile is in no backlog, so no PSYNC may continue the old one).
    server_.keyspace().RemoveObserver(this);
    observing_ = false;
    alone_since_ms_ = -1;
    dirty_.clear();
    dirty_set_.clear();
    backlog_.clear();
    backlog_start_ = offset_;
    char id[41];
    std::snprintf(id, sizeof id, "%016llx%016llx%08x",
                  static_cast<unsigned long long>(server_.rng().Next()),
                  static_cast<unsigned long long>(server_.rng().Next()),
                  static_cast<unsigned>(server_.rng().Next()));
    replid_ = id;
    return;
  }
  if (child_ >= 0) {
    if (std::optional<Result<std::string>> ended = children_->Poll(child_); ended.has_value()) {
      const int64_t id = child_;
      child_ = -1;
      ChildEnded(id, *ended, now_ms);
    }
  }
  if (now_ms - last_newline_ms_ >= kNewlinePeriodMs) {
    last_newline_ms_ = now_ms;
    for (auto& replica : replicas_) {
      if (replica->state == State::kWaitChild && replica->child >= 0) Push(*replica, "\n");
    }
  }
  if (online() > 0 && now_ms - last_ping_ms_ >= kPingPeriodMs) {
    last_ping_ms_ = now_ms;
    std::string ping;
    AppendCommand(ping, {"PING"});
    Append(ping);
  }
  Flush();
}

}  // namespace lattice::server
