#include "store/conflict_log.h"

#include <algorithm>

#include "lattice/crdt/hll.h"
#include "spdlog/spdlog.h"
#include "store/keyspace.h"

namespace lattice::server {
namespace {

std::string ValueText(const crdt::RegisterEntry<std::string>& entry) { return entry.value; }

// The replica of the first of `dots` (a set member's add dots or remove tokens) that the remote
// side did not observe: a concurrent add or a concurrent remove; kNoReplica if it saw them all.
ReplicaId UnseenReplica(const crdt::DotSet& dots, const ConflictLog::Remote& op) {
  for (const crdt::Dot& dot : dots.dots()) {
    if (!op.context.Contains(dot)) return dot.replica;
  }
  return kNoReplica;
}

// The same for the dots of a sorted-set member's score cell.
ReplicaId UnseenReplica(const crdt::ScoreCell& cell, const ConflictLog::Remote& op) {
  ReplicaId unseen = kNoReplica;
  cell.ForEachDot([&](crdt::Dot dot) {
    if (unseen == kNoReplica && !op.context.Contains(dot)) unseen = dot.replica;
  });
  return unseen;
}

void CaptureRemovals(const crdt::Key& local, const ConflictLog::Remote& op,
                     ConflictLog::Before& before) {
  using Removal = ConflictLog::Before::Removal;
  const crdt::OrSet& mine = local.set();
  const crdt::OrSet& theirs = op.delta.set();
  for (const auto& [member, tokens] : theirs.removes()) {  // their remove vs my add
    if (auto add = mine.adds().find(member); add != mine.adds().end()) {
      if (ReplicaId adder = UnseenReplica(add->second, op); adder != kNoReplica) {
        before.removals.push_back(
            Removal{false, member, tokens.dots().front().replica, adder, true});
      }
    }
  }
  for (const auto& [member, adds] : theirs.adds()) {  // my remove vs their add
    if (auto token = mine.removes().find(member); token != mine.removes().end()) {
      if (ReplicaId remover = UnseenReplica(token->second, op); remover != kNoReplica) {
        before.removals.push_back(
            Removal{false, member, remover, adds.dots().front().replica, false});
      }
    }
  }
  const crdt::SortedSet& zmine = local.zset();
  const crdt::SortedSet& ztheirs = op.delta.zset();
  for (const auto& [member, tokens] : ztheirs.removes()) {
    if (const crdt::ScoreCell* cell = zmine.Find(member); cell != nullptr) {
      if (ReplicaId adder = UnseenReplica(*cell, op); adder != kNoReplica) {
        before.removals.push_back(
            Removal{true, member, tokens.dots().front().replica, adder, true});
      }
    }
  }
  ztheirs.ForEachMember([&](std::string_view name, const crdt::ScoreCell& cell) {
    const std::string member(name);
    if (ztheirs.removes().contains(member) || !cell.Alive()) return;
    if (auto token = zmine.removes().find(member); token != zmine.removes().end()) {
      if (ReplicaId remover = UnseenReplica(token->second, op); remover != kNoReplica) {
        before.removals.push_back(Removal{true, member, remover, op.origin.replica, false});
      }
    }
  });
}

}  // namespace

ConflictLog::Before ConflictLog::Capture(const crdt::Key* local, const Remote& op) {
  Before before;
  if (local == nullptr) {
    return before;
  }
  before.type = local->Type();
  if (const auto* winner = local->string().Winner();
      winner != nullptr && op.delta.string().Winner() != nullptr) {
    before.string_winner = *winner;
  }
  CaptureRemovals(*local, op, before);
  if (!op.delta.hash().empty() && !local->hash().empty()) {
    for (const auto& [field, cell] : op.delta.hash().fields()) {
      if (!cell.Winner().has_value()) continue;
      const crdt::FieldNode* mine = local->hash().Find(field);
      if (mine == nullptr) continue;
      if (const auto winner = mine->Winner()) {
        before.fields.emplace_back(std::string(field), winner->ToEntry());
      }
    }
    std::sort(before.fields.begin(), before.fields.end(),  // not by the delta's table layout
              [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  return before;
}

ConflictLog::Remote ConflictLog::Remote::Of(const crdt::KeyOp& op) {
  return Remote{op.delta, op.context, op.first_dot, op.hlc, op.policies.type};
}

ConflictLog::Remote ConflictLog::Remote::OfState(const crdt::Key& state,
                                                 const crdt::DotContext& context) {
  Remote remote{state, context, crdt::Dot{}};
  const crdt::RegisterEntry<uint8_t>* creator = nullptr;
  if (const crdt::KeyRest* rest = state.rest()) {
    switch (state.Type()) {
      case crdt::ObjectType::kHash:
        creator = rest->hash_created().Winner();
        break;
      case crdt::ObjectType::kSet:
        creator = rest->set_created().Winner();
        break;
      case crdt::ObjectType::kZSet:
        creator = rest->zset_created().Winner();
        break;
      case crdt::ObjectType::kList:
        creator = rest->list_created().Winner();
        break;
      case crdt::ObjectType::kStream:
        creator = rest->stream_created().Winner();
        break;
      default:
        break;
    }
  }
  if (creator != nullptr) {
    remote.origin = creator->dot;
    remote.hlc = creator->hlc;
    if ((creator->value & crdt::kFixedPrecedenceFlag) != 0) {
      remote.type_rule = crdt::TypeRule::kFixedPrecedence;
    }
  } else if (const auto* winner = state.string().Winner()) {
    remote.origin = winner->dot;
    remote.hlc = winner->hlc;
  }
  return remote;
}

void ConflictLog::Record(int db, std::string_view key, const Before& before, const Remote& op,
                         const crdt::Key& after, int64_t now_ms) {
  auto lww = [&](const std::string& type, const std::string& field,
                 const crdt::RegisterEntry<std::string>& local,
                 const crdt::RegisterEntry<std::string>& remote,
                 const crdt::RegisterEntry<std::string>* winner) {
    if (op.context.Contains(local.dot) || winner == nullptr) {
      return;  // the op saw our write: a plain overwrite, not a conflict
    }
    if (type == "string" && crdt::hll::Valid(local.value) && crdt::hll::Valid(remote.value)) {
      return;  // two HyperLogLogs read as their register-wise max: a merge, nothing lost
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
    const crdt::FieldNode* theirs = op.delta.hash().Find(field);
    const crdt::FieldNode* now = after.hash().Find(field);
    if (theirs == nullptr || now == nullptr) continue;
    if (const auto remote = theirs->Winner()) {
      const auto winner = now->Winner();
      const auto won = winner ? std::optional(winner->ToEntry()) : std::nullopt;
      lww("hash", field, local, remote->ToEntry(), won ? &*won : nullptr);
    }
  }
  for (const Before::Removal& removal : before.removals) {
    const bool gone = removal.zset ? !after.zset().Score(removal.member).has_value()
                                   : !after.set().Contains(removal.member);
    if (!gone) continue;
    const uint64_t remote_hlc = op.hlc;
    Add(Conflict{now_ms, db, std::string(key), removal.member, removal.zset ? "zset" : "set",
                 "remove-wins", removal.remover, removal.remote_removed ? remote_hlc : 0,
                 removal.adder, removal.remote_removed ? 0 : remote_hlc, "(removed)",
                 removal.member});
  }
  const crdt::ObjectType theirs = op.delta.Type();
  if (before.type != crdt::ObjectType::kNone && theirs != crdt::ObjectType::kNone &&
      theirs != before.type) {
    const crdt::ObjectType now = after.Type();
    const bool remote_won = now == theirs;
    const bool fixed = op.type_rule == crdt::TypeRule::kFixedPrecedence;
    Add(Conflict{now_ms, db, std::string(key), "", "type",
                 fixed ? "fixed-precedence" : "newest-creator-wins",
                 remote_won ? op.origin.replica : kNoReplica, remote_won ? op.hlc : 0,
                 remote_won ? kNoReplica : op.origin.replica, remote_won ? 0 : op.hlc,
                 std::string(TypeName(now)),
                 std::string(TypeName(remote_won ? before.type : theirs))});
  }
}

// The same decision can be met twice: a snapshot and the op stream may overlap (a peer that
// catches up from a snapshot also receives the ops it covers), and each join judges it again.
static bool SameDecision(const Conflict& a, const Conflict& b) {
  return a.db == b.db && a.key == b.key && a.field == b.field && a.type == b.type &&
         a.winner == b.winner && a.winner_hlc == b.winner_hlc && a.loser == b.loser &&
         a.loser_hlc == b.loser_hlc && a.winner_value == b.winner_value &&
         a.loser_value == b.loser_value;
}

void ConflictLog::Add(Conflict conflict) {
  constexpr size_t kRecentToCompare = 32;
  size_t compared = 0;
  for (auto it = ring_.rbegin(); it != ring_.rend() && compared < kRecentToCompare;
       ++it, ++compared) {
    if (SameDecision(*it, conflict)) return;
  }
  ++total_;
  ++counts_[conflict.type + "/" + conflict.rule];
  if (conflict.time_ms - window_ms_ >= 1000 || conflict.time_ms < window_ms_) {
    window_ms_ = conflict.time_ms;
    window_lines_ = 0;
  }
  if (window_lines_ < log_rate_) {
    ++window_lines_;
    spdlog::info("Conflict on db {} key '{}'{}: {} by {} ({} more since the last line)",
                 conflict.db, conflict.key,
                 conflict.field.empty() ? "" : " field '" + conflict.field + "'", conflict.type,
                 conflict.rule, unlogged_);
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
