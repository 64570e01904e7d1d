#include "server/notify.h"

#include <algorithm>
#include <initializer_list>

#include "absl/container/flat_hash_map.h"
#include "lattice/common/assert.h"
#include "lattice/crdt/expiry.h"
#include "server/command.h"
#include "server/pubsub.h"
#include "store/keyspace.h"
#include "util/ascii.h"

namespace lattice::server {
namespace {

// How a command's events follow from its arguments and the key's state afterwards.
enum class Rule : uint8_t {
  kEach,       // the event on every key written; `del` after it when a collection emptied
  kStore,      // the event when the destination exists afterwards, else `del`
  kSetExpire,  // `set`, then `expire` when EX/PX/EXAT/PXAT was given (SET)
  kSetAndTtl,  // `set`, then `expire` (SETEX, PSETEX)
  kGetEx,      // `expire` with EX/PX/EXAT/PXAT, `persist` with PERSIST
  kExpire,     // `expire`, or `del` when the time was in the past and the key went
  kRename,     // rename_from on the source, rename_to on the destination
  kSMove,      // srem on the source (and `del`), sadd on the destination
  kPerKey,     // the event once per key argument, repeats included (MSET k 1 k 2: two `set`)
  kPopPush,    // RPOPLPUSH: lpush on the destination, then rpop on the source (and `del`)
  kLMove,      // LMOVE/BLMOVE: lpush|rpush per whereto, then lpop|rpop per wherefrom
  kMPop,       // LMPOP/ZMPOP...: lpop|rpop or zpopmin|zpopmax per LEFT/RIGHT/MIN/MAX
  kMove,       // move_from in the source db, move_to in the destination db
  kCopy,       // copy_to on the destination
  kZAdd,       // zadd, or zincr with INCR
  kHGetEx,     // hexpire with EX/PX/EXAT/PXAT, hpersist with PERSIST
};

}  // namespace

struct Notifier::EventSpec {
  uint32_t event_class = 0;
  std::string_view event;
  Rule rule = Rule::kEach;
  bool quiet_on_zero = false;  // nothing raised when the first key reads as before
};

namespace {

using EventSpec = Notifier::EventSpec;
using EventTable =
    absl::flat_hash_map<std::string, EventSpec, CaseInsensitiveHash, CaseInsensitiveEq>;

// Valkey's event per command (the notifyKeyspaceEvent calls of its t_*.c and db.c).
const EventTable& Events() {
  static const EventTable* table = [] {
    auto* events = new EventTable;
    auto add = [&](std::initializer_list<std::string_view> names, uint32_t event_class,
                   std::string_view event, Rule rule = Rule::kEach) {
      for (std::string_view name : names) {
        events->emplace(std::string(name), EventSpec{event_class, event, rule});
      }
    };
    constexpr uint32_t g = kNotifyGeneric, s = kNotifyString, l = kNotifyList;
    constexpr uint32_t set = kNotifySet, h = kNotifyHash, z = kNotifyZSet;
    add({"set"}, s, "set", Rule::kSetExpire);
    add({"setex", "psetex"}, s, "set", Rule::kSetAndTtl);
    add({"setnx", "getset"}, s, "set");
    add({"mset", "msetnx"}, s, "set", Rule::kPerKey);
    add({"append"}, s, "append");
    add({"setrange"}, s, "setrange");
    add({"pfadd", "pfmerge"}, s, "pfadd");
    add({"pfcount", "pfdebug"}, 0, "");  // a cache refresh or encoding change: Valkey raises none
    add({"setbit", "bitfield"}, s, "setbit");
    add({"bitop"}, s, "set", Rule::kStore);
    add({"incr", "decr", "incrby", "decrby"}, s, "incrby");
    add({"incrbyfloat"}, s, "incrbyfloat");
    add({"getex"}, g, "expire", Rule::kGetEx);
    add({"del", "unlink", "getdel"}, g, "del");
    add({"expire", "pexpire", "expireat", "pexpireat"}, g, "expire", Rule::kExpire);
    add({"persist"}, g, "persist");
    add({"rename", "renamenx"}, g, "rename", Rule::kRename);
    add({"move"}, g, "move", Rule::kMove);
    add({"copy"}, g, "copy_to", Rule::kCopy);
    add({"restore"}, g, "restore");
    add({"lpush", "lpushx"}, l, "lpush");
    add({"rpush", "rpushx"}, l, "rpush");
    add({"lpop", "blpop"}, l, "lpop");
    add({"rpop", "brpop"}, l, "rpop");
    add({"linsert"}, l, "linsert");
    add({"lset"}, l, "lset");
    add({"ltrim"}, l, "ltrim");
    add({"lrem"}, l, "lrem");
    add({"rpoplpush", "brpoplpush"}, l, "rpop", Rule::kPopPush);
    add({"lmove", "blmove"}, l, "lmove", Rule::kLMove);
    add({"lmpop", "blmpop"}, l, "lpop", Rule::kMPop);
    add({"sadd"}, set, "sadd");
    add({"srem"}, set, "srem");
    add({"spop"}, set, "spop");
    add({"smove"}, set, "smove", Rule::kSMove);
    add({"sinterstore"}, set, "sinterstore", Rule::kStore);
    add({"sunionstore"}, set, "sunionstore", Rule::kStore);
    add({"sdiffstore"}, set, "sdiffstore", Rule::kStore);
    add({"hset", "hsetnx", "hmset"}, h, "hset");
    add({"hdel", "hgetdel"}, h, "hdel");
    add({"hincrby"}, h, "hincrby");
    add({"hincrbyfloat"}, h, "hincrbyfloat");
    add({"hexpire", "hpexpire", "hexpireat", "hpexpireat"}, h, "hexpire");
    add({"hpersist"}, h, "hpersist");
    add({"hgetex"}, h, "hexpire", Rule::kHGetEx);
    add({"zadd"}, z, "zadd", Rule::kZAdd);
    add({"zincrby"}, z, "zincr");
    add({"zrem"}, z, "zrem");
    add({"zremrangebyscore"}, z, "zremrangebyscore");
    add({"zremrangebyrank"}, z, "zremrangebyrank");
    add({"zremrangebylex"}, z, "zremrangebylex");
    add({"zpopmin", "bzpopmin"}, z, "zpopmin");
    add({"zpopmax", "bzpopmax"}, z, "zpopmax");
    add({"zmpop", "bzmpop"}, z, "zpopmin", Rule::kMPop);
    add({"zinterstore"}, z, "zinterstore", Rule::kStore);
    add({"zunionstore"}, z, "zunionstore", Rule::kStore);
    add({"zdiffstore"}, z, "zdiffstore", Rule::kStore);
    add({"zrangestore"}, z, "zrangestore", Rule::kStore);
    add({"sort"}, l, "sortstore", Rule::kStore);
    add({"geoadd"}, z, "zadd", Rule::kZAdd);
    add({"geosearchstore"}, z, "geosearchstore", Rule::kStore);
    add({"georadius", "georadiusbymember"}, z, "georadiusstore", Rule::kStore);
    // Commands that may write an op while Valkey changes nothing (they reply 0 or nil there).
    // (Not EXPIRE: within one event-loop turn it may set the same time again, which Valkey
    // reports.)
    constexpr std::string_view kQuiet[] = {"del",
                                           "unlink",
                                           "getdel",
                                           "setnx",
                                           "msetnx",
                                           "persist",
                                           "renamenx",
                                           "copy",
                                           "lpushx",
                                           "rpushx",
                                           "lrem",
                                           "sadd",
                                           "srem",
                                           "smove",
                                           "hsetnx",
                                           "hdel",
                                           "zrem",
                                           "zremrangebyscore",
                                           "zremrangebyrank",
                                           "zremrangebylex"};
    for (std::string_view name : kQuiet) {
      events->find(name)->second.quiet_on_zero = true;
    }
    return events;
  }();
  return *table;
}

bool HasArg(ArgList args, std::initializer_list<std::string_view> names, size_t from = 1) {
  for (size_t i = from; i < args.size(); ++i) {
    for (std::string_view name : names) {
      if (EqualsIgnoreCase(args[i], name)) return true;
    }
  }
  return false;
}

bool IsCollectionClass(uint32_t event_class) {
  return (event_class & (kNotifyList | kNotifySet | kNotifyHash | kNotifyZSet)) != 0;
}

// Argument positions holding `key` (a command may name one key twice: RPOPLPUSH k k).
std::vector<size_t> PositionsOf(ArgList args, std::string_view key) {
  std::vector<size_t> positions;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == key) positions.push_back(i);
  }
  return positions;
}

}  // namespace

uint32_t ParseNotifyFlags(std::string_view text) {
  uint32_t flags = 0;
  for (const char c : text) {
    switch (c) {
      case 'A':
        flags |= kNotifyGeneric | kNotifyString | kNotifyList | kNotifySet | kNotifyHash |
                 kNotifyZSet | kNotifyExpired | kNotifyEvicted | kNotifyStream | kNotifyModule;
        break;
      case 'K':
        flags |= kNotifyKeyspace;
        break;
      case 'E':
        flags |= kNotifyKeyevent;
        break;
      case 'g':
        flags |= kNotifyGeneric;
        break;
      case '$':
        flags |= kNotifyString;
        break;
      case 'l':
        flags |= kNotifyList;
        break;
      case 's':
        flags |= kNotifySet;
        break;
      case 'h':
        flags |= kNotifyHash;
        break;
      case 'z':
        flags |= kNotifyZSet;
        break;
      case 'x':
        flags |= kNotifyExpired;
        break;
      case 'e':
        flags |= kNotifyEvicted;
        break;
      case 't':
        flags |= kNotifyStream;
        break;
      case 'm':
        flags |= kNotifyKeyMiss;
        break;
      case 'd':
        flags |= kNotifyModule;
        break;
      case 'n':
        flags |= kNotifyNew;
        break;
      default:
        break;
    }
  }
  return flags;
}

void Notifier::set_flags(uint32_t flags) {
  flags_ = flags;
  const uint32_t classes = flags & ~(kNotifyKeyspace | kNotifyKeyevent);
  enabled_ = (flags & (kNotifyKeyspace | kNotifyKeyevent)) != 0 && classes != 0;
}

void Notifier::Notify(uint32_t event_class, std::string_view event, int db, std::string_view key) {
  if (!enabled_ || (flags_ & event_class) == 0) return;
  const std::string db_text = std::to_string(db);
  pubsub_.Hold(hold_client_, held_);
  if (flags_ & kNotifyKeyspace) {
    std::string channel = "__keyspace@" + db_text + "__:";
    channel.append(key);
    pubsub_.Publish(channel, event, /*sharded=*/false);
  }
  if (flags_ & kNotifyKeyevent) {
    std::string channel = "__keyevent@" + db_text + "__:";
    channel.append(event);
    pubsub_.Publish(channel, key, /*sharded=*/false);
  }
  pubsub_.Hold(nullptr, nullptr);
}

void Notifier::Evicted(int db, std::string_view key) {
  Notify(kNotifyEvicted, "evicted", db, key);
  if (enabled_) evicted_.emplace_back(db, std::string(key));
}

bool Notifier::Consumed(int db, std::string_view key) {
  for (auto it = evicted_.begin(); it != evicted_.end(); ++it) {
    if (it->first == db && it->second == key) {
      evicted_.erase(it);
      return true;
    }
  }
  return false;
}

void Notifier::BeginCommand(const Command& command, ArgList args, int db, const Keyspace& keyspace,
                            int64_t now_ms) {
  auto spec = Events().find(command.full_name);
  frames_.push_back(
      Frame{pending_.size(), absent_.size(), spec == Events().end() ? nullptr : &spec->second});
  std::vector<std::pair<std::string, VisibleValue>>& before = frames_.back().before;
  if (spec != Events().end() && spec->second.quiet_on_zero) {
    // The first key (both of SMOVE) as it reads now, to tell at the end whether it changed.
    const size_t keys = spec->second.rule == Rule::kSMove ? 2 : 1;
    for (size_t i = 1; i <= keys && i < args.size(); ++i) {
      const KeyRef now = keyspace.Find(db, args[i], now_ms);
      before.emplace_back(std::string(args[i]),
                          now != nullptr ? ReadVisible(now, now_ms) : VisibleValue{});
    }
  }
  if ((flags_ & kNotifyNew) == 0) return;
  if (const std::optional<std::vector<size_t>> keys = KeyPositions(command, args)) {
    for (size_t position : *keys) {
      if (keyspace.Find(db, args[position], now_ms) == nullptr) {
        absent_.emplace_back(db, std::string(args[position]));
      }
    }
  }
}

void Notifier::OnLocal(int db, std::string_view key, const crdt::KeyOp& op,
                       const Keyspace& keyspace, int64_t now_ms) {
  if (!evicted_.empty() && Consumed(db, key)) return;
  if (keyspace.reclaiming() == Keyspace::Reclaiming::kPurge) return;  // garbage: nothing visible
  Kind kind = Kind::kOp;
  if (keyspace.reclaiming() != Keyspace::Reclaiming::kNone) {
    kind =
        keyspace.reclaiming() == Keyspace::Reclaiming::kKey ? Kind::kExpired : Kind::kFieldsExpired;
  }
  if (frames_.empty() || (kind == Kind::kOp && frames_.back().spec == nullptr)) {
    // Outside a command (the active expiry cycle, a served blocked client), or a command the
    // table does not name: the op's own events, now.
    if (kind == Kind::kOp) {
      RaiseDerived(db, key, op, keyspace, now_ms);
    } else {
      RaiseExpired(Touched{db, std::string(key), kind}, keyspace, now_ms);
    }
    return;
  }
  if (kind == Kind::kOp) {
    for (size_t i = frames_.back().pending; i < pending_.size(); ++i) {
      const Touched& seen = pending_[i];
      if (seen.kind == Kind::kOp && seen.db == db && seen.key == key) return;
    }
  }
  pending_.push_back(Touched{db, std::string(key), kind});
}

void Notifier::RaiseExpired(const Touched& touched, const Keyspace& keyspace, int64_t now_ms) {
  if (touched.kind == Kind::kExpired) {
    Notify(kNotifyExpired, "expired", touched.db, touched.key);
    return;
  }
  Notify(kNotifyHash, "hexpired", touched.db, touched.key);
  if (keyspace.Find(touched.db, touched.key, now_ms) == nullptr) {
    Notify(kNotifyGeneric, "del", touched.db, touched.key);
  }
}

void Notifier::EndCommand(const Command& command, ArgList args, int db, const Keyspace& keyspace,
                          int64_t now_ms) {
  LATTICE_ASSERT(!frames_.empty());
  const Frame frame = std::move(frames_.back());
  frames_.pop_back();
  const std::vector<std::pair<std::string, VisibleValue>>& before = frame.before;
  std::vector<Touched> touched(pending_.begin() + static_cast<ptrdiff_t>(frame.pending),
                               pending_.end());
  pending_.resize(frame.pending);
  std::vector<std::pair<int, std::string>> absent(
      absent_.begin() + static_cast<ptrdiff_t>(frame.absent), absent_.end());
  absent_.resize(frame.absent);
  (void)command;
  // Expiry first (it happened when the command opened the key), then the keys written in the
  // order the command names them (Valkey raises rename_from before rename_to).
  for (const Touched& entry : touched) {
    if (entry.kind != Kind::kOp) RaiseExpired(entry, keyspace, now_ms);
  }
  if (frame.spec == nullptr) return;  // its ops raised their own events as they came

  std::erase_if(touched, [](const Touched& entry) { return entry.kind != Kind::kOp; });
  // A move raises the destination's push before the source's pop (Valkey's lmoveHandlePush).
  const bool destination_first =
      frame.spec->rule == Rule::kLMove || frame.spec->rule == Rule::kPopPush;
  std::stable_sort(touched.begin(), touched.end(), [&](const Touched& a, const Touched& b) {
    const std::vector<size_t> pa = PositionsOf(args, a.key), pb = PositionsOf(args, b.key);
    const size_t first_a = pa.empty() ? args.size() : pa.front();
    const size_t first_b = pb.empty() ? args.size() : pb.front();
    return destination_first ? first_a > first_b : first_a < first_b;
  });
  for (const Touched& entry : touched) {
    const KeyRef after = keyspace.Find(entry.db, entry.key, now_ms);
    const bool exists = after != nullptr;
    // These commands changed nothing for Valkey, which raises nothing, when the key reads as
    // it did before; the CRDT may still have written an op (SADD re-adds a member
    // with a new dot, DEL removes an entry that held only metadata).
    auto same = [&](const std::pair<std::string, VisibleValue>& seen) {
      return seen.first == entry.key &&
             seen.second == (exists ? ReadVisible(after, now_ms) : VisibleValue{});
    };
    if (entry.db == db && std::any_of(before.begin(), before.end(), same)) continue;
    if (exists && std::find(absent.begin(), absent.end(),
                            std::pair<int, std::string>(entry.db, entry.key)) != absent.end()) {
      Notify(kNotifyNew, "new", entry.db, entry.key);
    }
    RaiseForCommand(*frame.spec, args, db, entry, exists);
  }
}

void Notifier::RaiseForCommand(const EventSpec& spec, ArgList args, int db, const Touched& entry,
                               bool exists) {
  const uint32_t c = spec.event_class;
  auto raise = [&](uint32_t event_class, std::string_view event) {
    Notify(event_class, event, entry.db, entry.key);
  };
  auto emptied = [&] {
    if (!exists) raise(kNotifyGeneric, "del");
  };
  const std::vector<size_t> positions = PositionsOf(args, entry.key);
  auto at = [&](size_t position) {
    return std::find(positions.begin(), positions.end(), position) != positions.end();
  };
  switch (spec.rule) {
    case Rule::kEach:
      raise(c, spec.event);
      if (IsCollectionClass(c)) emptied();
      break;
    case Rule::kStore:
      raise(exists ? c : kNotifyGeneric, exists ? spec.event : "del");
      break;
    case Rule::kSetExpire:
      raise(c, "set");
      if (HasArg(args, {"ex", "px", "exat", "pxat"}, 3)) raise(kNotifyGeneric, "expire");
      break;
    case Rule::kSetAndTtl:
      raise(c, "set");
      raise(kNotifyGeneric, "expire");
      break;
    case Rule::kGetEx:
      raise(kNotifyGeneric, HasArg(args, {"persist"}, 2) ? "persist" : "expire");
      break;
    case Rule::kExpire:
      raise(kNotifyGeneric, exists ? "expire" : "del");
      break;
    case Rule::kRename:
      if (at(1)) raise(c, "rename_from");
      if (at(2)) raise(c, "rename_to");
      break;
    case Rule::kSMove:
      if (at(1)) {
        raise(c, "srem");
        if (!at(2)) emptied();
      }
      if (at(2)) raise(c, "sadd");
      break;
    case Rule::kPerKey:
      for (size_t position = 1; position < args.size(); position += 2) {
        if (at(position)) raise(c, spec.event);
      }
      break;
    case Rule::kPopPush:
    case Rule::kLMove: {
      const bool lmove = spec.rule == Rule::kLMove;
      const bool from_left = lmove && args.size() > 3 && EqualsIgnoreCase(args[3], "left");
      const bool to_left = !lmove || (args.size() > 4 && EqualsIgnoreCase(args[4], "left"));
      if (at(2)) raise(c, to_left ? "lpush" : "rpush");
      if (at(1)) {
        raise(c, from_left ? "lpop" : "rpop");
        if (!at(2)) emptied();
      }
      break;
    }
    case Rule::kMPop: {
      const bool list = c == kNotifyList;
      const bool first = HasArg(args, {list ? "left" : "min"});
      raise(c, list ? (first ? "lpop" : "rpop") : (first ? "zpopmin" : "zpopmax"));
      emptied();
      break;
    }
    case Rule::kMove:
      raise(c, entry.db == db ? "move_from" : "move_to");
      break;
    case Rule::kCopy:
      if (at(2)) raise(c, "copy_to");
      break;
    case Rule::kZAdd:
      raise(c, HasArg(args, {"incr"}, 2) ? "zincr" : "zadd");
      break;
    case Rule::kHGetEx:
      raise(c, HasArg(args, {"persist"}, 2) ? "hpersist" : "hexpire");
      emptied();
      break;
  }
}

void Notifier::OnRemote(int db, std::string_view key, const crdt::KeyOp& op,
                        const Keyspace& keyspace, int64_t now_ms) {
  RaiseDerived(db, key, op, keyspace, now_ms);
}

void Notifier::RaiseDerived(int db, std::string_view key, const crdt::KeyOp& op,
                            const Keyspace& keyspace, int64_t now_ms) {
  const crdt::ObjectType type = keyspace.TypeOf(db, key, now_ms);
  auto raise = [&](uint32_t event_class, std::string_view event) {
    Notify(event_class, event, db, key);
  };
  if (type == crdt::ObjectType::kNone) {
    raise(kNotifyGeneric, "del");
    return;
  }
  const crdt::Key& delta = op.delta;
  const crdt::KeyRest* rest = delta.rest();
  if (delta.Type() == crdt::ObjectType::kNone && delta.string().empty() && rest != nullptr &&
      rest->expiry().Winner() != nullptr) {
    raise(kNotifyGeneric, crdt::ExpiryAt(rest->expiry()).has_value() ? "expire" : "persist");
    return;
  }
  const bool adds = op.dot_count > 0;
  switch (type) {
    case crdt::ObjectType::kString:
      raise(kNotifyString, delta.string().Winner() != nullptr ? "set"
                           : delta.HasChunks()                ? "setbit"
                                                              : "incrby");
      break;
    case crdt::ObjectType::kHash:
      raise(kNotifyHash, adds ? "hset" : "hdel");
      break;
    case crdt::ObjectType::kSet:
      raise(kNotifySet, adds ? "sadd" : "srem");
      break;
    case crdt::ObjectType::kZSet:
      raise(kNotifyZSet, adds ? "zadd" : "zrem");
      break;
    case crdt::ObjectType::kList:
      raise(kNotifyList, adds ? "rpush" : "lrem");
      break;
    default:
      break;
  }
}

}  // namespace lattice::server
