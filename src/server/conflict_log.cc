#include "server/conflict_log.h"

#include "server/keyspace.h"
#include "spdlog/spdlog.h"

namespace lattice::server {
namespace {

constexpr int64_t kLogIntervalMs = 1000;  // at most one log line per second

std::string ValueText(const crdt::RegisterEntry<std::string>& entry) { return entry.value; }

}  // namespace

ConflictLog::Before ConflictLog::Capture(const crdt::Key* local, const crdt::KeyOp& op) {
  Before before;
  if (local == nullptr) {
    return before;
  }
  before.type = local->Type();
  if (const auto* winner = local->string().Winner(); winner != nullptr &&
                                                     op.delta.string().Winner() != nullptr) {
    before.string_winner = *winner;
  }
  if (!op.delta.hash().empty() && !local->hash().empty()) {
    for (const auto& [field, cell] : op.delta.hash().fields()) {
      if (cell.value.Winner() == nullptr) continue;
      auto mine = local->hash().fields().find(field);
      if (mine == local->hash().fields().end()) continue;
      if (const auto* winner = mine->second.value.Winner()) {
        before.fields.emplace_back(field, *winner);
      }
    }
  }
  return before;
}

void ConflictLog::Record(int db, std::string_view key, const Before& before,
                         const crdt::KeyOp& op, const crdt::Key& after, int64_t now_ms) {
  auto lww = [&](const std::string& type, const std::string& field,
                 const crdt::RegisterEntry<std::string>& local,
                 const crdt::RegisterEntry<std::string>& remote,
                 const crdt::RegisterEntry<std::string>* winner) {
    if (op.context.Contains(local.dot) || winner == nullptr) {
      return;  // the op saw our write: a plain overwrite, not a conflict
    }
    const bool local_won = winner->dot == local.dot;
    const auto& lost = local_won ? remote : local;
    const auto& won = local_won ? local : remote;
    Add(Conflict{now_ms, db, std::string(key), field, type, "lww", won.dot.replica, won.hlc,
                 lost.dot.replica, lost.hlc, ValueText(won), ValueText(lost)});
  };
  if (before.string_winner.has_value()) {
    if (const auto* remote = op.delta.string().Winner()) {
      lww("string", "", *before.string_winner, *remote, after.string().Winner());
    }
  }
  for (const auto& [field, local] : before.fields) {
    auto theirs = op.delta.hash().fields().find(field);
    auto now = after.hash().fields().find(field);
    if (theirs == op.delta.hash().fields().end() || now == after.hash().fields().end()) continue;
    if (const auto* remote = theirs->second.value.Winner()) {
      lww("hash", field, local, *remote, now->second.value.Winner());
    }
  }
  const crdt::ObjectType theirs = op.delta.Type();
  if (before.type != crdt::ObjectType::kNone && theirs != crdt::ObjectType::kNone &&
      theirs != before.type) {
    const crdt::ObjectType now = after.Type();
    const bool remote_won = now == theirs;
    Add(Conflict{now_ms, db, std::string(key), "", "type", "newest-creator-wins",
                 remote_won ? op.first_dot.replica : kNoReplica, remote_won ? op.hlc : 0,
                 remote_won ? kNoReplica : op.first_dot.replica, remote_won ? 0 : op.hlc,
                 std::string(TypeName(now)),
                 std::string(TypeName(remote_won ? before.type : theirs))});
  }
}

void ConflictLog::Add(Conflict conflict) {
  ++total_;
  ++counts_[conflict.type + "/" + conflict.rule];
  if (conflict.time_ms - last_log_ms_ >= kLogIntervalMs) {
    spdlog::info("Conflict on db {} key '{}'{}: {} by {} ({} more since the last line)",
                 conflict.db, conflict.key,
                 conflict.field.empty() ? "" : " field '" + conflict.field + "'", conflict.type,
                 conflict.rule, unlogged_);
    last_log_ms_ = conflict.time_ms;
    unlogged_ = 0;
  } else {
    ++unlogged_;
  }
  ring_.push_back(std::move(conflict));
  while (ring_.size() > capacity_) ring_.pop_front();
}

void ConflictLog::set_capacity(size_t capacity) {
  capacity_ = capacity;
  while (ring_.size() > capacity_) ring_.pop_front();
}

std::vector<Conflict> ConflictLog::Recent(size_t count) const {
  std::vector<Conflict> out;
  for (auto it = ring_.rbegin(); it != ring_.rend() && out.size() < count; ++it) {
    out.push_back(*it);
  }
  return out;
}

void ConflictLog::Reset() {
  ring_.clear();
  counts_.clear();
  total_ = 0;
}

}  // namespace lattice::server
