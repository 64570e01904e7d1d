#pragma once
// ConflictLog: what the merge rules decided when a peer's op met a concurrent local write
// (CRDT.CONFLICTS, INFO crdt). Keyspace::ApplyRemote captures the few values a conflict needs
// before applying the op (Capture), and Record compares them with the result. Recognised:
// - string: two concurrent assignments (SET, or INCR under the lww rule): last writer wins;
// - hash field: the same per field;
// - type: a key written with different types concurrently (newest creator or fixed precedence);
// - set / zset member under remove-wins: an SREM/ZREM and a concurrent SADD/ZADD/ZINCRBY of the
//   same member met, and the member is gone (the add is what was lost).
// Counters that merge (summed increments) and add-wins/observed-remove sets are merges, not
// conflicts: nothing is lost, so nothing is recorded. A bounded ring keeps the most recent
// conflicts (crdt-conflicts-max-len); counters by type and rule are kept for INFO; a log line
// goes out at most crdt-conflicts-log-rate times a second. Pure; event-loop thread.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lattice/common/ids.h"
#include "lattice/crdt/key.h"

namespace lattice::server {

struct Conflict {
  int64_t time_ms = 0;  // HLC physical time of the replica when it applied the op
  int db = 0;
  std::string key;
  std::string field;  // hash field or set/zset member, "" otherwise
  std::string type;   // "string", "hash", "set", "zset", "type"
  std::string rule;   // "lww", "remove-wins", "newest-creator-wins", "fixed-precedence"
  ReplicaId winner = kNoReplica;
  uint64_t winner_hlc = 0;
  ReplicaId loser = kNoReplica;
  uint64_t loser_hlc = 0;
  std::string winner_value;  // for a type conflict: the winning type's name
  std::string loser_value;   // what the loser would have written
};

class ConflictLog {
 public:
  // Values of the local state an op may conflict with, taken before the op is applied.
  struct Before {
    crdt::ObjectType type = crdt::ObjectType::kNone;
    std::optional<crdt::RegisterEntry<std::string>> string_winner;
    std::vector<std::pair<std::string, crdt::RegisterEntry<std::string>>> fields;
    // Remove-wins: a member whose remove (token) met a concurrent add; `remover` is the replica
    // that removed it, `adder` the one whose add it beat, `remote_removed` whose side removed.
    struct Removal {
      bool zset = false;
      std::string member;
      ReplicaId remover = kNoReplica;
      ReplicaId adder = kNoReplica;
      bool remote_removed = false;
    };
    std::vector<Removal> removals;
  };
  // What the local state is judged against: a peer's op, or a peer's whole key state (a snapshot
  // being installed) seen as one op whose origin is the creator of its type. A view: nothing is
  // copied, so it must not outlive what it names.
  struct Remote {
    const crdt::Key& delta;
    const crdt::DotContext& context;
    crdt::Dot origin;  // the op's first dot, or the dot of the state's type creator
    uint64_t hlc = 0;
    crdt::TypeRule type_rule = crdt::TypeRule::kNewestCreator;
    static Remote Of(const crdt::KeyOp& op);
    static Remote OfState(const crdt::Key& state, const crdt::DotContext& context);
  };
  static Before Capture(const crdt::Key* local, const Remote& remote);
  void Record(int db, std::string_view key, const Before& before, const Remote& remote,
              const crdt::Key& after, int64_t now_ms);

  void set_capacity(size_t capacity);
  // At most `lines_per_sec` conflict log lines a second (0: none); the rest are counted.
  void set_log_rate(int64_t lines_per_sec) { log_rate_ = lines_per_sec; }
  // The most recent `count` conflicts, newest first.
  std::vector<Conflict> Recent(size_t count) const;
  void Reset();
  const std::map<std::string, uint64_t>& counts() const { return counts_; }  // "type/rule"
  uint64_t total() const { return total_; }

 private:
  void Add(Conflict conflict);

  size_t capacity_ = 128;
  std::deque<Conflict> ring_;
  std::map<std::string, uint64_t> counts_;
  uint64_t total_ = 0;
  int64_t log_rate_ = 1;
  int64_t window_ms_ = 0;  // start of the current one-second log window
  int64_t window_lines_ = 0;
  uint64_t unlogged_ = 0;
};

}  // namespace lattice::server
