#include "workload.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "fmt/format.h"
#include "lattice/crdt/hll.h"
#include "store/keyspace.h"

namespace lattice::sim {
namespace {

constexpr int kKeysPerFamily = 3;
constexpr int kMembers = 5;
constexpr int kGroupKeys = 8;

// Writer `writer`'s group keys: one hash tag, so one slot (a sharded run routes them together).
std::string GroupKey(int writer, int n) { return fmt::format("{{g{}}}:{}", writer, n); }

const std::vector<std::string>& Families() {
  static const std::vector<std::string> kFamilies = {"ctr", "reg", "oset", "str", "h",  "s",
                                                     "z",   "mix", "l",    "cc",  "ch", "cz",
                                                     "hll", "bm",  "bits", "x"};
  return kFamilies;
}

std::string Pick(Rng& rng, std::initializer_list<const char*> options) {
  return *(options.begin() + rng.Uniform(options.size()));
}

std::string Member(Rng& rng) { return fmt::format("m{}", rng.Uniform(kMembers)); }
std::string Num(Rng& rng, int64_t low, int64_t high) {
  return std::to_string(rng.Range(low, high));
}

std::vector<std::string> KeyCommand(Rng& rng, const std::string& key) {
  const std::string cmd = Pick(rng, {"DEL", "EXPIRE", "PEXPIRE", "PERSIST", "TTL", "TYPE"});
  if (cmd == "EXPIRE") return {cmd, key, Num(rng, 1, 8)};
  if (cmd == "PEXPIRE") return {cmd, key, Num(rng, 100, 6000)};
  return {cmd, key};
}

std::vector<std::string> StringCommand(Rng& rng, const std::string& key, const std::string& value) {
  const std::string cmd =
      Pick(rng, {"SET", "SET", "INCR", "INCRBY", "INCRBYFLOAT", "APPEND", "GET", "SETEX", "KEY"});
  if (cmd == "SET") return {cmd, key, value};
  if (cmd == "INCR" || cmd == "GET") return {cmd, key};
  if (cmd == "INCRBY") return {cmd, key, Num(rng, -10, 30)};
  if (cmd == "INCRBYFLOAT") return {cmd, key, Pick(rng, {"0.5", "1.25", "-3.75", "10"})};
  if (cmd == "APPEND") return {cmd, key, value};
  if (cmd == "SETEX") return {"SET", key, value, "PX", Num(rng, 200, 8000)};
  return KeyCommand(rng, key);
}

// Field TTLs (HEXPIRE, HPERSIST) are in every run since the active-expiry double free they found
// was fixed (docs/simulation.md, "Bugs found").
std::vector<std::string> HashCommand(Rng& rng, const std::string& key, const std::string& value) {
  const std::string field = fmt::format("f{}", rng.Uniform(kMembers));
  const std::string cmd = Pick(rng, {"HSET", "HSET", "HDEL", "HINCRBY", "HINCRBYFLOAT", "HEXPIRE",
                                     "HPERSIST", "HGETALL", "KEY"});
  if (cmd == "HSET") return {cmd, key, field, value};
  if (cmd == "HDEL") return {cmd, key, field};
  if (cmd == "HINCRBY") return {cmd, key, field, Num(rng, -5, 20)};
  if (cmd == "HINCRBYFLOAT") return {cmd, key, field, Pick(rng, {"0.25", "-1.5", "2"})};
  if (cmd == "HEXPIRE") return {cmd, key, Num(rng, 1, 8), "FIELDS", "1", field};
  if (cmd == "HPERSIST") return {cmd, key, "FIELDS", "1", field};
  if (cmd == "HGETALL") return {cmd, key};
  return KeyCommand(rng, key);
}

std::vector<std::string> SetCommand(Rng& rng, const std::string& key) {
  const std::string cmd = Pick(rng, {"SADD", "SADD", "SREM", "SPOP", "SMEMBERS", "KEY"});
  if (cmd == "SADD") return {cmd, key, Member(rng), Member(rng)};
  if (cmd == "SREM") return {cmd, key, Member(rng)};
  if (cmd == "SPOP" || cmd == "SMEMBERS") return {cmd, key};
  return KeyCommand(rng, key);
}

std::vector<std::string> ZSetCommand(Rng& rng, const std::string& key) {
  const std::string cmd = Pick(rng, {"ZADD", "ZADD", "ZINCRBY", "ZREM", "ZRANGE", "KEY"});
  if (cmd == "ZADD") return {cmd, key, Num(rng, -5, 50), Member(rng)};
  if (cmd == "ZINCRBY") return {cmd, key, Pick(rng, {"1", "2.5", "-4", "0.125"}), Member(rng)};
  if (cmd == "ZREM") return {cmd, key, Member(rng)};
  if (cmd == "ZRANGE") return {cmd, key, "0", "-1", "WITHSCORES"};
  return KeyCommand(rng, key);
}

// Lists: pushes at both ends, pops (with counts), LINSERT next to a pivot that may be gone,
// LSET, LREM, LTRIM, LMOVE within and between keys of the family, and the reads.
std::vector<std::string> ListCommand(Rng& rng, const std::string& key) {
  const std::string cmd = Pick(rng, {"LPUSH", "RPUSH", "RPUSH", "LPOP", "RPOP", "LINSERT", "LSET",
                                     "LREM", "LTRIM", "LMOVE", "LRANGE", "KEY"});
  if (cmd == "LPUSH" || cmd == "RPUSH") return {cmd, key, Member(rng), Member(rng)};
  if (cmd == "LPOP" || cmd == "RPOP") {
    return rng.Chance(1, 2) ? std::vector<std::string>{cmd, key}
                            : std::vector<std::string>{cmd, key, Num(rng, 0, 3)};
  }
  if (cmd == "LINSERT") {
    return {cmd, key, Pick(rng, {"BEFORE", "AFTER"}), Member(rng), Member(rng)};
  }
  if (cmd == "LSET") return {cmd, key, Num(rng, -3, 3), Member(rng)};
  if (cmd == "LREM") return {cmd, key, Num(rng, -2, 2), Member(rng)};
  if (cmd == "LTRIM") return {cmd, key, Num(rng, -4, 2), Num(rng, -3, 4)};
  if (cmd == "LMOVE") {
    return {cmd, key, fmt::format("l:{}", rng.Uniform(kKeysPerFamily)),
            Pick(rng, {"LEFT", "RIGHT"}), Pick(rng, {"LEFT", "RIGHT"})};
  }
  if (cmd == "LRANGE") return {cmd, key, "0", "-1"};
  return KeyCommand(rng, key);
}

// Consumer groups on a stream: two groups and two consumers, so regions deliver, claim, ack and
// destroy the same group state concurrently; COPY ... REPLACE writes a whole stream with its
// groups over the key (Keyspace::WriteVisible, the write RESTORE makes), concurrently with the
// group commands of other regions (docs/semantics.md, "RESTORE of a stream with groups").
std::vector<std::string> StreamGroupCommand(Rng& rng, const std::string& key,
                                            const std::string& id) {
  const std::string cmd = Pick(rng, {"CREATE", "READ", "READ", "ACK", "CLAIM", "AUTOCLAIM",
                                     "DESTROY", "DELCONSUMER", "SETID", "PENDING", "COPY"});
  if (cmd == "COPY") {
    const std::string family = key.substr(0, key.find(':'));
    return {"COPY", fmt::format("{}:{}", family, rng.Uniform(kKeysPerFamily)), key, "REPLACE"};
  }
  const std::string group = Pick(rng, {"g1", "g2"});
  const std::string consumer = Pick(rng, {"c1", "c2"});
  if (cmd == "CREATE") return {"XGROUP", "CREATE", key, group, Pick(rng, {"$", "0"}), "MKSTREAM"};
  if (cmd == "READ") {
    return {"XREADGROUP", "GROUP", group,
            consumer,     "COUNT", "2",
            "STREAMS",    key,     Pick(rng, {">", ">", "0"})};
  }
  if (cmd == "ACK") return {"XACK", key, group, id};
  if (cmd == "CLAIM") return {"XCLAIM", key, group, consumer, "0", id};
  if (cmd == "AUTOCLAIM") return {"XAUTOCLAIM", key, group, consumer, "0", "0", "COUNT", "2"};
  if (cmd == "DESTROY") return {"XGROUP", "DESTROY", key, group};
  if (cmd == "DELCONSUMER") return {"XGROUP", "DELCONSUMER", key, group, consumer};
  if (cmd == "SETID") return {"XGROUP", "SETID", key, group, id};
  return {"XPENDING", key, group};
}

// Streams: XADD with auto IDs (regions' clocks collide) and explicit IDs from a small domain (equal
// IDs from two regions), MAXLEN/MINID trims, XDEL, XTRIM, XSETID, the reads, and consumer groups.
std::vector<std::string> StreamCommand(Rng& rng, const std::string& key) {
  const std::string cmd = Pick(rng, {"XADD", "XADD", "XADD", "XADDID", "XADDTRIM", "XDEL", "XTRIM",
                                     "XSETID", "XRANGE", "XLEN", "KEY", "GROUP", "GROUP"});
  const std::string id = fmt::format("{}-{}", rng.Uniform(6), rng.Uniform(3));
  if (cmd == "GROUP") return StreamGroupCommand(rng, key, id);
  if (cmd == "XADD") return {cmd, key, "*", "f", Member(rng)};
  if (cmd == "XADDID") return {"XADD", key, id, "f", Member(rng)};
  if (cmd == "XADDTRIM") {
    return {"XADD", key, "MAXLEN", Pick(rng, {"=", "~"}), Num(rng, 0, 4), "*", "f", Member(rng)};
  }
  if (cmd == "XDEL") return {cmd, key, id, fmt::format("{}-{}", rng.Uniform(6), rng.Uniform(3))};
  if (cmd == "XTRIM") {
    return rng.Chance(1, 2) ? std::vector<std::string>{cmd, key, "MAXLEN", Num(rng, 0, 4)}
                            : std::vector<std::string>{cmd, key, "MINID", id};
  }
  if (cmd == "XSETID") return {cmd, key, fmt::format("{}-0", 10 + rng.Uniform(5))};
  if (cmd == "XRANGE") return {cmd, key, "-", "+"};
  if (cmd == "XLEN") return {cmd, key};
  return KeyCommand(rng, key);
}

// HyperLogLogs: PFADD (elements of a small universe, so concurrent adds often hit the same
// registers), PFDEBUG TODENSE and the reads; the model checks every acknowledged element is
// counted.
std::vector<std::string> HllCommand(Rng& rng, const std::string& key) {
  const uint64_t draw = rng.Uniform(12);
  if (draw < 8) {
    std::vector<std::string> cmd = {"PFADD", key};
    for (uint64_t i = rng.Uniform(4); i > 0; --i)
      cmd.push_back(fmt::format("e{}", rng.Uniform(300)));
    return cmd;
  }
  // A dense value: the PFADDs after it ship only the registers they raise (crdt/hll_key.h).
  if (draw < 9) return {"PFDEBUG", "TODENSE", key};
  if (draw < 11) return {"PFCOUNT", key};
  return {"GET", key};
}

// The bits:N counter field: a 16-bit field in chunk 60, which no bits:N SETBIT writes (OwnBit).
const char* const kBitsFieldOffset = "122896";

// Bitmaps: SETBIT, BITFIELD SET/INCRBY, BITOP into the key, APPEND/SETRANGE and the key commands
// (convergence only; bits:N checks that concurrent SETBITs in different chunks all survive).
std::vector<std::string> BitmapCommand(Rng& rng, const std::string& key) {
  const std::string cmd =
      Pick(rng, {"SETBIT", "SETBIT", "BITFIELD", "BITOP", "SETRANGE", "BITCOUNT", "KEY"});
  if (cmd == "SETBIT") return {cmd, key, Num(rng, 0, 200), Num(rng, 0, 1)};
  if (cmd == "BITFIELD") {
    return {cmd,
            key,
            "OVERFLOW",
            Pick(rng, {"WRAP", "SAT", "FAIL"}),
            Pick(rng, {"INCRBY", "SET"}),
            Pick(rng, {"u8", "i5", "u16"}),
            fmt::format("#{}", rng.Uniform(8)),
            Num(rng, -40, 300)};
  }
  if (cmd == "BITOP") {
    return {cmd, Pick(rng, {"OR", "AND", "XOR"}), key,
            fmt::format("bm:{}", rng.Uniform(kKeysPerFamily)), key};
  }
  if (cmd == "SETRANGE") return {cmd, key, Num(rng, 0, 20), "\x0f"};
  if (cmd == "BITCOUNT") return {cmd, key};
  return KeyCommand(rng, key);
}

// CRDT.POLICY SET/DEL on the convergence-only families (never ctr/reg/oset, whose models assume
// the default rules): policy changes race with conflicting writes, and every op must still merge
// alike everywhere, as it carries the rules in force where it was made.
std::vector<std::string> PolicyCommand(Rng& rng) {
  const std::string pattern =
      Pick(rng, {"str:*", "h:*", "s:*", "z:*", "mix:*", "str:1", "h:0", "s:2", "z:1", "mix:0"});
  const std::string type = Pick(rng, {"string", "hash", "set", "zset", "expiry", "type"});
  if (rng.Chance(1, 4)) return {"CRDT.POLICY", "DEL", pattern, type};
  std::string rule;
  if (type == "string" || type == "hash") rule = Pick(rng, {"counter", "lww"});
  if (type == "set" || type == "zset") rule = Pick(rng, {"add-wins", "remove-wins"});
  if (type == "expiry") rule = Pick(rng, {"lww", "longest", "shortest"});
  if (type == "type") rule = Pick(rng, {"newest-creator-wins", "fixed-precedence"});
  return {"CRDT.POLICY", "SET", pattern, type, rule};
}

bool IsError(const std::string& reply) { return !reply.empty() && reply[0] == '-'; }

std::string Brief(std::string reply) {
  std::replace(reply.begin(), reply.end(), '\r', ' ');
  std::replace(reply.begin(), reply.end(), '\n', ' ');
  return reply.size() > 80 ? reply.substr(0, 80) + "..." : reply;
}

}  // namespace

std::vector<std::string> Workload::RandomCommand(Rng& rng, const std::string& family) {
  const std::string key = fmt::format("{}:{}", family, rng.Uniform(kKeysPerFamily));
  const std::string value = fmt::format("v{}", rng.Uniform(1000));
  if (family == "ctr") {
    // DECRBY brings counters to exactly 0, where a since-fixed bug lost concurrent increments.
    const std::string cmd = Pick(rng, {"INCR", "INCRBY", "DECRBY"});
    return cmd == "INCR" ? std::vector<std::string>{cmd, key}
                         : std::vector<std::string>{cmd, key, Num(rng, 1, 25)};
  }
  // Counter churn: increments then DEL (or a short TTL) of the same few names, so deleted
  // counters are purged once stable (Keyspace::CompactSome) and written again, under every fault.
  if (family == "cc") {
    const uint64_t draw = rng.Uniform(10);
    if (draw < 5) return {"INCRBY", key, Num(rng, -3, 9)};
    if (draw < 8) return {"DEL", key};
    return {"PEXPIRE", key, Num(rng, 50, 800)};
  }
  if (family == "ch") {
    const std::string field = fmt::format("f{}", rng.Uniform(2));
    const uint64_t draw = rng.Uniform(10);
    if (draw < 5) return {"HINCRBY", key, field, Num(rng, -3, 9)};
    if (draw < 8) return {"HDEL", key, field};
    return {"DEL", key};
  }
  if (family == "cz") {
    const std::string member = fmt::format("m{}", rng.Uniform(2));
    const uint64_t draw = rng.Uniform(10);
    if (draw < 5) return {"ZINCRBY", key, Pick(rng, {"1", "2.5", "-4"}), member};
    if (draw < 8) return {"ZREM", key, member};
    return {"DEL", key};
  }
  if (family == "reg") return {"SET", key, value};
  if (family == "oset") {
    const uint64_t draw = rng.Uniform(20);
    if (draw < 12) return {"SADD", key, Member(rng)};
    if (draw < 19) return {"SREM", key, Member(rng)};
    return {"DEL", key};
  }
  if (family == "hll") return HllCommand(rng, key);
  if (family == "bm") return BitmapCommand(rng, key);
  if (family == "bits") {  // the bit is chosen by the writing region (OwnBit)
    const uint64_t draw = rng.Uniform(12);
    if (draw < 2) return {"BITCOUNT", key};
    if (draw < 5) {
      return {"BITFIELD",       key,
              "OVERFLOW",       "WRAP",
              "INCRBY",         Pick(rng, {"u16", "i16"}),
              kBitsFieldOffset, Num(rng, -40000, 40000)};
    }
    return {"SETBIT", key, "", "1"};
  }
  std::string kind = family;
  if (family == "mix") kind = Pick(rng, {"str", "h", "s", "z", "l", "x"});
  if (kind == "l") return ListCommand(rng, key);
  if (kind == "x") return StreamCommand(rng, key);
  if (kind == "str") return StringCommand(rng, key, value);
  if (kind == "h") return HashCommand(rng, key, value);
  if (kind == "s") return SetCommand(rng, key);
  return ZSetCommand(rng, key);
}

void Workload::Step(Region& region) {
  // Sharded runs leave out policies (a shard's own table) and oset (its model reads the removing
  // region's context, which does not cover dots a migration brought in).
  const bool policy = world_.rng().Chance(1, 40);
  if (policy && !world_.sharded()) {
    Issue(region, PolicyCommand(world_.rng()));
    return;
  }
  std::string family = Families()[world_.rng().Uniform(Families().size())];
  if (world_.sharded() && family == "oset") family = "reg";
  std::vector<std::string> args = RandomCommand(world_.rng(), family);
  OwnBit(region, args);
  Issue(region, std::move(args));
}

void Workload::ConflictBurst() {
  Rng& rng = world_.rng();
  std::string family = Families()[rng.Uniform(Families().size())];
  if (world_.sharded() && family == "oset") family = "reg";
  const uint64_t key_draw = rng.Next();
  for (int i = 0; i < world_.size(); ++i) {
    Region& region = world_.region(i);
    if (!region.up()) continue;
    Rng local(key_draw);  // the same key at every region; the command differs
    std::vector<std::string> args = RandomCommand(local, family);
    std::vector<std::string> own = RandomCommand(rng, family);
    own[1] = args[1];
    OwnBit(region, own);
    Issue(region, std::move(own));
  }
}

// A bits:N SETBIT's bit: in a chunk of 256 bytes only this writer (the region's place in its
// shard) writes, among kBitChunks chunks, so concurrent SETBITs never share a chunk and stay
// within crdt::kChunksMax.
void Workload::OwnBit(Region& region, std::vector<std::string>& args) {
  constexpr uint64_t kBitChunks = 48;
  if (args.size() != 4 || args[0] != "SETBIT" || !args[1].starts_with("bits:")) return;
  const auto writers = static_cast<uint64_t>(world_.regions_per_shard());
  const auto writer = static_cast<uint64_t>(region.index) % writers;
  const uint64_t chunk = writer + writers * world_.rng().Uniform(kBitChunks / writers);
  args[2] = std::to_string(chunk * 256 * 8 + world_.rng().Uniform(256 * 8));
}

void Workload::Group(Region& region) {
  Rng& rng = world_.rng();
  const int writer = region.index % world_.regions_per_shard();
  const std::string value = fmt::format("g{}", ++groups_);
  std::vector<std::string> keys;
  for (int n = 0; n < kGroupKeys; ++n) keys.push_back(GroupKey(writer, n));
  const uint64_t how = rng.Uniform(world_.sharded() ? 3 : 4);
  std::vector<std::string> args;
  if (how == 0) {
    args = {"EVAL", "for _, k in ipairs(KEYS) do redis.call('SET', k, ARGV[1]) end",
            std::to_string(kGroupKeys)};
    args.insert(args.end(), keys.begin(), keys.end());
    args.push_back(value);
  } else if (how == 1) {
    args = {"MSET"};
    for (const std::string& key : keys) {
      args.push_back(key);
      args.push_back(value);
    }
  } else if (how == 2) {
    args = {"DEL"};
    args.insert(args.end(), keys.begin(), keys.end());
  } else {
    // MULTI/EXEC (one shard: its commands run here); the SETs are queued, EXEC runs them.
    world_.Execute(region, {"MULTI"});
    for (const std::string& key : keys) world_.Execute(region, {"SET", key, value});
    ++commands;
    auto [reply, durable] = world_.Execute(region, {"EXEC"});
    world_.Trace(fmt::format("r{} MULTI SET {}..{} {} EXEC -> {}{}", region.index, keys.front(),
                             keys.back(), value, Brief(reply),
                             durable ? "" : " (NOT acknowledged)"));
    return;
  }
  Issue(region, std::move(args));
}

void Workload::CheckGroups(Region& region) {
  // A slot migration moves a group's keys to another shard one key at a time (docs/cluster.md),
  // so sharded runs check convergence only.
  if (world_.sharded() || !region.up()) return;
  const int64_t now_ms = region.clock.NowMs();
  for (int writer = 0; writer < world_.regions_per_shard(); ++writer) {
    std::string first;
    for (int n = 0; n < kGroupKeys; ++n) {
      server::KeyRef found = region.keyspace().Find(0, GroupKey(writer, n), now_ms);
      const std::string value =
          found == nullptr ? "(nil)" : server::ReadVisible(*found, now_ms).string;
      if (n == 0) {
        first = value;
      } else if (value != first) {
        world_.Fail(
            "op groups",
            fmt::format("r{} shows part of a group of r{}: {} is '{}' but {} is '{}'", region.index,
                        writer, GroupKey(writer, 0), first, GroupKey(writer, n), value));
        return;
      }
    }
  }
}

void Workload::Route(Routed command, int index) {
  Region& node = world_.region(index);
  if (!node.up()) {
    Record(node, command.args, "-ERR (sim) the owning node is down", false, 0, {});
    return;
  }
  auto [reply, durable] = world_.Execute(node, command.args);
  if (node.up() && !node.client->paused_command.empty()) {
    Hold(std::move(command), node);
    return;
  }
  const bool moved = reply.starts_with("-MOVED ");
  if (command.hops < 3 && (moved || reply.starts_with("-ASK "))) {
    // "-MOVED <slot> <ip>:<port>": the owning shard; its node in this client's region answers.
    const size_t colon = reply.rfind(':');
    const int owner =
        colon == std::string::npos ? -1 : std::atoi(reply.c_str() + colon + 1) - World::PortOf(0);
    if (owner >= 0 && owner < world_.size()) {
      const int next = world_.Peer(command.client, world_.ShardOf(owner));
      if (!moved && world_.region(next).up()) world_.Execute(world_.region(next), {"ASKING"});
      ++command.hops;
      Route(std::move(command), next);
      return;
    }
  }
  Record(node, command.args, reply, durable, 0, {});
}

void Workload::Hold(Routed command, Region& node) {
  // Production holds a paused client for at most 30,000 retries of 1 ms, then answers TRYAGAIN.
  constexpr int kMaxHolds = 30'000;
  node.client->paused_command.clear();  // the sim keeps it here, in `command`
  if (command.holds == kMaxHolds) {
    Record(node, command.args, "-TRYAGAIN Slot paused for a migration handoff", true, 0, {});
    return;
  }
  if (command.holds++ == 0) {
    std::string line = fmt::format("r{}", node.index);
    for (const std::string& arg : command.args) line += " " + arg;
    world_.Trace(line + " -> held: its slot is paused for a migration handoff");
  }
  ++held_;
  const uint64_t start = node.starts;
  world_.At(world_.now_ms() + 1, EventKind::kClient, node.index,
            [this, command = std::move(command), index = node.index, start]() mutable {
              --held_;
              Region& at = world_.region(index);
              if (!at.up() || at.starts != start) {  // the connection died with the node
                Record(at, command.args, "-ERR (sim) connection lost while held", false, 0, {});
                return;
              }
              Route(std::move(command), index);
            });
}

void Workload::Issue(Region& client, std::vector<std::string> args) {
  ++commands;
  if (world_.sharded()) {
    Route(Routed{.client = client.index, .args = std::move(args)}, client.index);
    return;
  }
  const uint64_t before = client.replication().replicator().applied().Get(client.id);
  const std::string& key = args[1];
  // What a remove observes is decided before it runs.
  std::vector<Tag*> removes;
  if (key.starts_with("oset:") && (args[0] == "SREM" || args[0] == "DEL")) {
    const crdt::DotContext& seen = client.keyspace().context();
    for (auto& [member, tags] : set_tags_[key]) {
      if (args[0] == "SREM" && member != args[2]) continue;
      for (Tag& tag : tags) {
        if (seen.Contains(tag.dot)) removes.push_back(&tag);
      }
    }
  }
  auto [reply, durable] = world_.Execute(client, args);
  Record(client, args, reply, durable, before, removes);
}

void Workload::Record(Region& region, const std::vector<std::string>& args,
                      const std::string& reply, bool durable, uint64_t seq_before,
                      const std::vector<Tag*>& removes) {
  std::string line = fmt::format("r{}", region.index);
  for (const std::string& arg : args) line += " " + arg;
  world_.Trace(line + " -> " + Brief(reply) + (durable ? "" : " (NOT acknowledged)"));
  if (!durable) return;
  if (IsError(reply)) {
    if (!world_.sharded()) ++acknowledged;  // as before; a redirect or refusal acknowledges nothing
    return;
  }
  if (reply.empty()) {  // a held command must not count: it ran nothing (yet)
    world_.Fail("reply", line + " was acknowledged without a reply");
    return;
  }
  if (world_.sharded()) ++acknowledged;
  const std::string& key = args[1];
  if (key.starts_with("ctr:")) {
    const int64_t by = args[0] == "INCR" ? 1 : std::stoll(args[2]);
    counter_sums_[key] += args[0] == "DECRBY" ? -by : by;
  } else if (key.starts_with("reg:")) {
    register_values_[key].insert(args[2]);
  } else if (key.starts_with("bits:") && args[0] == "SETBIT") {
    set_bits_[key].insert(std::stoull(args[2]));
  } else if (key.starts_with("bits:") && args[0] == "BITFIELD") {
    field_sums_[key] += static_cast<uint64_t>(std::stoll(args.back()));
  } else if (key.starts_with("hll:") && args[0] == "PFADD") {
    std::set<std::string>& added = hll_elements_[key];
    added.insert(args.begin() + 2, args.end());
  } else if (key.starts_with("oset:") && args[0] == "SADD") {
    const uint64_t after = region.replication().replicator().applied().Get(region.id);
    if (after > seq_before) {
      set_tags_[key][args[2]].push_back(Tag{crdt::Dot{region.id, seq_before + 1}});
    }
  }
  for (Tag* tag : removes) tag->removed = true;
}

void Workload::Check(Region& region, int64_t now_ms,
                     const std::function<bool(const std::string&)>& owned) {
  auto visible = [&](const std::string& key) {
    server::KeyRef found = region.keyspace().Find(0, key, now_ms);
    return found == nullptr ? server::VisibleValue{} : server::ReadVisible(*found, now_ms);
  };
  for (const auto& [key, sum] : counter_sums_) {
    if (owned && !owned(key)) continue;
    const server::VisibleValue value = visible(key);
    if (value.string != std::to_string(sum)) {
      world_.Fail(
          "acknowledged increments",
          fmt::format("{} is '{}' but acknowledged increments sum to {}", key, value.string, sum));
      return;
    }
  }
  for (const auto& [key, values] : register_values_) {
    if (owned && !owned(key)) continue;
    const server::VisibleValue value = visible(key);
    if (!values.contains(value.string)) {
      world_.Fail("acknowledged SET",
                  fmt::format("{} is '{}' (type {}), not one of the {} "
                              "acknowledged values",
                              key, value.string, static_cast<int>(value.type), values.size()));
      return;
    }
  }
  for (const auto& [key, elements] : hll_elements_) {
    if (owned && !owned(key)) continue;
    const server::VisibleValue value = visible(key);
    crdt::hll::Registers registers{};
    if (!crdt::hll::Valid(value.string) || !crdt::hll::MaxInto(registers, value.string)) {
      world_.Fail("acknowledged PFADD", fmt::format("{} is not a HyperLogLog", key));
      return;
    }
    for (const std::string& element : elements) {
      int index = 0;
      uint8_t rank = 0;
      crdt::hll::PatternOf(element, &index, &rank);
      if (registers[static_cast<size_t>(index)] < rank) {
        world_.Fail("acknowledged PFADD",
                    fmt::format("{}: register {} is {} but acknowledged '{}' needs {}", key, index,
                                registers[static_cast<size_t>(index)], element, rank));
        return;
      }
    }
  }
  for (const auto& [key, bits] : set_bits_) {
    if (owned && !owned(key)) continue;
    const std::string value = visible(key).string;
    for (uint64_t bit : bits) {
      const size_t byte = static_cast<size_t>(bit / 8);
      if (byte >= value.size() || ((static_cast<uint8_t>(value[byte]) >> (7 - bit % 8)) & 1) == 0) {
        world_.Fail("acknowledged SETBIT",
                    fmt::format("{}: bit {} is 0 but an acknowledged SETBIT set it ({} bytes)", key,
                                bit, value.size()));
        return;
      }
    }
  }
  for (const auto& [key, sum] : field_sums_) {
    if (owned && !owned(key)) continue;
    const std::string value = visible(key).string;
    const uint64_t at = std::stoull(kBitsFieldOffset) / 8;
    const uint64_t field = value.size() < at + 2
                               ? 0
                               : static_cast<uint64_t>(static_cast<uint8_t>(value[at])) * 256 +
                                     static_cast<uint8_t>(value[at + 1]);
    if (value.size() < at + 2 || field != (sum & 0xffff)) {
      world_.Fail("acknowledged BITFIELD INCRBY",
                  fmt::format("{}: the u16 at bit {} is {} ({} bytes) but acknowledged WRAP "
                              "increments sum to {} (mod 65536)",
                              key, kBitsFieldOffset, field, value.size(), sum & 0xffff));
      return;
    }
  }
  for (const auto& [key, members] : set_tags_) {
    if (owned && !owned(key)) continue;
    std::vector<std::string> expected;
    for (const auto& [member, tags] : members) {
      if (std::any_of(tags.begin(), tags.end(), [](const Tag& t) { return !t.removed; })) {
        expected.push_back(member);
      }
    }
    const server::VisibleValue value = visible(key);
    if (value.set != expected) {
      world_.Fail("add-wins set model",
                  fmt::format("{} has {{{}}} but the observed-remove model says {{{}}}", key,
                              fmt::join(value.set, ","), fmt::join(expected, ",")));
      return;
    }
  }
}

}  // namespace lattice::sim
