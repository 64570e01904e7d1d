#pragma once
// Notifier raises keyspace notifications (notify-keyspace-events): for each event on a key it
// publishes `__keyspace@<db>__:<key>` with the event name (class K) and `__keyevent@<db>__:<event>`
// with the key name (class E) to this node's local subscribers, as Valkey's notifyKeyspaceEvent.
//
// Where the events come from (docs/commands/pubsub.md, "Keyspace notifications"):
// - Local commands: while a command runs, the keyspace's fan-out (Server::OnLocalOp) hands each
//   op here (Collect); when the command finishes (Server::ExecuteOne), EndCommand names the
//   events from the table in notify.cc (command -> class, event, and a rule for the commands whose
//   events depend on arguments or on the key's state afterwards: RENAME, SMOVE, LMOVE, SET EX,
//   the *STORE commands, pops that empty a collection...). A key the command wrote without an op
//   raises nothing, as Valkey raises nothing for a write that changed nothing. Commands missing
//   from the table take the events the op itself shows (below).
// - Expiry: a reclaim op (Keyspace::reclaiming()) raises `expired` (or Valkey 9's `hexpired` for
//   hash fields, then `del` when it emptied the hash), in a command or from the active cycle.
// - Ops applied from other regions (OnRemote): the event is derived from the op and the key's
//   state after it: set / incrby, hset / hdel, sadd / srem, zadd / zrem, rpush / lrem, expire /
//   persist, del. A region raises its own notifications for the ops it applies; they are not
//   Pub/Sub messages sent between regions.
// - Eviction: Evicted() (called by maxmemory eviction before it deletes the key).
//
// Cost when notify-keyspace-events is empty: the Server tests enabled() (one load and branch)
// before calling anything here.
//
// Ownership: the Server owns one Notifier; it publishes through the Server's PubSub. Event-loop
// thread only.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lattice/crdt/key.h"
#include "resp/request_parser.h"
#include "store/keyspace.h"

namespace lattice::server {

struct Command;
class Keyspace;
class PubSub;
struct ClientState;

// Valkey's NOTIFY_* classes, one bit per character of notify-keyspace-events.
enum NotifyClass : uint32_t {
  kNotifyKeyspace = 1U << 0,  // K
  kNotifyKeyevent = 1U << 1,  // E
  kNotifyGeneric = 1U << 2,   // g
  kNotifyString = 1U << 3,    // $
  kNotifyList = 1U << 4,      // l
  kNotifySet = 1U << 5,       // s
  kNotifyHash = 1U << 6,      // h
  kNotifyZSet = 1U << 7,      // z
  kNotifyExpired = 1U << 8,   // x
  kNotifyEvicted = 1U << 9,   // e
  kNotifyStream = 1U << 10,   // t
  kNotifyKeyMiss = 1U << 11,  // m
  kNotifyModule = 1U << 12,   // d
  kNotifyNew = 1U << 13,      // n
};

// The flags of a notify-keyspace-events value (already validated by the config parser).
uint32_t ParseNotifyFlags(std::string_view text);

class Notifier {
 public:
  explicit Notifier(PubSub& pubsub) : pubsub_(pubsub) {}

  void set_flags(uint32_t flags);
  // Something can be published: K or E, and at least one class.
  bool enabled() const { return enabled_; }
  uint32_t flags() const { return flags_; }

  // Publishes one event now (Valkey's notifyKeyspaceEvent), if its class is on. Messages for
  // `hold_client` (the client running the current command) are appended to `held` instead, so
  // they follow its reply (Server flushes them).
  void Notify(uint32_t event_class, std::string_view event, int db, std::string_view key);

  // Maxmemory eviction: raises `evicted` for `key`; the delete op that follows raises nothing.
  void Evicted(int db, std::string_view key);

  // A command starts. With `n` on, remembers which of its keys are missing, for `new`.
  void BeginCommand(const Command& command, ArgList args, int db, const Keyspace& keyspace,
                    int64_t now_ms);
  // An op this node committed. Inside a command the table names, it is kept for EndCommand;
  // otherwise (the active expiry cycle, a blocked client served later, a command the table does
  // not name) its events are raised at once.
  void OnLocal(int db, std::string_view key, const crdt::KeyOp& op, const Keyspace& keyspace,
               int64_t now_ms);
  // The command BeginCommand started finished: raises the events of the keys it wrote.
  void EndCommand(const Command& command, ArgList args, int db, const Keyspace& keyspace,
                  int64_t now_ms);
  // An op applied from another region (or imported by a migration).
  void OnRemote(int db, std::string_view key, const crdt::KeyOp& op, const Keyspace& keyspace,
                int64_t now_ms);

  // Where messages to the running command's client go meanwhile (Server sets and flushes).
  void Hold(ClientState* client, std::string* held) {
    hold_client_ = client;
    held_ = held;
  }

 public:
  struct EventSpec;  // notify.cc: a command's class, event and rule

 private:
  enum class Kind : uint8_t { kOp, kExpired, kFieldsExpired };
  struct Touched {
    int db = 0;
    std::string key;
    Kind kind = Kind::kOp;
  };
  // One running command (EXEC and scripts nest them): where its entries start.
  struct Frame {
    size_t pending = 0;
    size_t absent = 0;
    const EventSpec* spec = nullptr;  // null: a command the table does not name
    // Its first key (both of SMOVE) as it read when the command started, for commands that
    // raise nothing when the key reads the same after (quiet_on_zero).
    std::vector<std::pair<std::string, VisibleValue>> before;
  };
  // The events an op shows by itself (remote ops, commands missing from the table).
  void RaiseDerived(int db, std::string_view key, const crdt::KeyOp& op, const Keyspace& keyspace,
                    int64_t now_ms);
  void RaiseForCommand(const EventSpec& spec, ArgList args, int db, const Touched& entry,
                       bool exists);
  void RaiseExpired(const Touched& touched, const Keyspace& keyspace, int64_t now_ms);
  bool Consumed(int db, std::string_view key);

  PubSub& pubsub_;
  uint32_t flags_ = 0;
  bool enabled_ = false;
  std::vector<Frame> frames_;
  std::vector<Touched> pending_;
  // Keys of the running commands missing when they started (only with `n` on).
  std::vector<std::pair<int, std::string>> absent_;
  std::vector<std::pair<int, std::string>> evicted_;  // delete ops that raise nothing
  ClientState* hold_client_ = nullptr;
  std::string* held_ = nullptr;
};

}  // namespace lattice::server
