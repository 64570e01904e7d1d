#include "world.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "fmt/format.h"
#include "lattice/repl/codec.h"
#include "lattice/repl/frame.h"
#include "resp/reply_decoder.h"

namespace lattice::sim {

World* g_current_world = nullptr;

namespace {

constexpr int64_t kTickMs = 50;
constexpr int64_t kClusterTickMs = 10;
constexpr size_t kTraceKept = 4000;

std::string Describe(const repl::Message& message) {
  struct Visitor {
    std::string operator()(const repl::Hello& m) const {
      return "Hello applied=" + m.applied.ToString();
    }
    std::string operator()(const repl::OpBatch& m) const {
      std::string text = fmt::format("OpBatch[{}]", m.ops.size());
      for (size_t i = 0; i < m.ops.size() && i < 4; ++i) {
        text += fmt::format(" {:x}:{}", m.ops[i].op.first_dot.replica & 0xfff,
                            m.ops[i].op.first_dot.seq);
      }
      return text;
    }
    std::string operator()(const repl::Ack& m) const { return "Ack " + m.applied.ToString(); }
    std::string operator()(const repl::Heartbeat&) const { return "Heartbeat"; }
    std::string operator()(const repl::SnapshotChunk& m) const {
      return fmt::format("SnapshotChunk id={} keys={}{}", m.snapshot_id, m.keys.size(),
                         m.last ? " last" : "");
    }
    std::string operator()(const repl::Goodbye& m) const { return "Goodbye " + m.reason; }
    std::string operator()(const repl::LinkProof&) const { return "LinkProof"; }
    std::string operator()(const repl::Publish& m) const { return "Publish " + m.channel; }
  };
  return std::visit(Visitor{}, message);
}

// The check a refused link fails: a bad frame, an undecodable message, or the handshake.
std::string RefusalCheck(const std::string& reason) {
  if (reason.starts_with("bad frame")) return "frame";
  if (reason.starts_with("undecodable")) return "codec";
  return "handshake";
}

}  // namespace

Region::Region(World& world, int index, ReplicaId id, repl::FsyncPolicy fsync)
    : index(index), id(id), fsync(fsync), clock(world.now_ms()) {}

void Region::Send(ReplicaId to, const repl::Message& message) { outbox.emplace_back(to, message); }

void Region::Close(ReplicaId to) { closes.push_back(to); }

World::World(const SimOptions& options, Rng& rng)
    : options_(options),
      rng_(rng),
      shard_secret_(options.seed % 2 == 1 ? "sim-shard-secret" : ""),
      handshake_rng_(options.seed ^ 0x6c696e6b73ULL) {
  for (int i = 0; i < options.regions * options.shards; ++i) {
    // Random ids: the replica tie-break of last-writer-wins must not follow region order.
    const ReplicaId id = (rng_.Next() | 1) & ~(uint64_t{1} << 63);
    const uint64_t draw = rng_.Uniform(6);
    const repl::FsyncPolicy fsync = i == 0 || draw < 3 ? repl::FsyncPolicy::kAlways
                                    : draw < 5         ? repl::FsyncPolicy::kEverySec
                                                       : repl::FsyncPolicy::kNo;
    regions_.push_back(std::make_unique<Region>(*this, i, id, fsync));
  }
  for (int a = 0; a < size(); ++a) {
    for (int b = a + 1; b < size(); ++b) {
      if (!SameShard(a, b)) continue;  // shards replicate only within themselves
      Link& l = links_[{a, b}];
      const bool latency = (options.faults & kFaultLatency) != 0;
      l.latency_ms = latency ? rng_.Range(1, 150) : 1;
      l.jitter_ms = latency ? rng_.Range(0, l.latency_ms / 3 + 2) : 0;
    }
  }
  g_current_world = this;
}

World::~World() { g_current_world = nullptr; }

// ---- regions ----------------------------------------------------------------------------

void World::Start(Region& region) {
  server::Config config;
  std::string text = fmt::format(
      "hz 10\nshard-id {}\nregion r{}\nappendfsync {}\nauto-aof-rewrite-min-size {}\n"
      "crdt-backlog-ops {}\n",
      sharded() ? ShardName(ShardOf(region.index)) : "sim", region.index % regions_per_shard(),
      repl::FsyncPolicyName(region.fsync), rewrite_min_bytes, max_retained_ops);
  if (sharded()) {
    // Distinct ports give the topology distinct addresses; the bus finds nodes by port.
    text += fmt::format("cluster-enabled yes\nport {}\ncluster-announce-ip 127.0.0.1\n",
                        PortOf(region.index));
    if (region.bus == nullptr) region.bus = std::make_unique<SimBus>(*this, region.index);
  }
  if (Result<void> loaded = config.LoadText(text, "sim"); !loaded.ok()) {
    Fail("config", loaded.error().message);
    return;
  }
  auto opened = server::Node::Open(
      server::NodeOptions{.config = std::move(config),
                          .replica = region.id,
                          .rng_seed = rng_.Next(),
                          .fresh_node_id = NodeIdOf(region.index),
                          .on_log_failure =
                              [&region](const Error& error, const server::Config&) {
                                region.log_failure = error.message;
                              }},
      server::NodeSeams{.clock = region.clock,
                        .storage = &region.storage,
                        .transport = &region,
                        .bus = region.bus.get()});
  if (!opened.ok()) {
    Fail("recovery",
         fmt::format("r{} could not restart: {}", region.index, opened.error().message));
    return;
  }
  region.node = std::move(*opened);
  // Installs in slices of 1-4 keys (from the region's id: no draw from the run's stream), so a
  // snapshot's install takes many steps, between which clients write and peers' ops arrive.
  region.replication().set_install_keys_per_step(1 + region.id % 4);
  // And applies at most 2-9 buffered ops a turn, so an install's end (or a gap filled) releases
  // the ops it held over several turns, between which clients write and more ops arrive.
  region.replication().set_max_drain_ops(2 + region.id % 8);
  // The simulated clock does not pass within a step, so the node's step budget never runs out
  // here: every 3rd-7th ask says it has (from the region's id), so received ops often wait in
  // the buffer for the next turns, as a server's do once a step has used its 2 ms.
  region.replication().set_step_spent(
      [asked = uint64_t{0}, every = uint64_t{3} + region.id % 5]() mutable {
        return ++asked % every == 0;
      });
  region.client = std::make_unique<server::ClientState>();
  region.client->id = region.server().NextClientId();
  region.client->authenticated = true;
  region.server().RegisterClient(region.client.get());
  region.bus_client = std::make_unique<server::ClientState>();
  region.bus_client->id = region.server().NextClientId();
  region.bus_client->authenticated = true;
  region.server().RegisterClient(region.bus_client.get());
  region.syncs_seen = region.storage.sync_count();
  region.busy_until_ms = now_ms_;
  ++region.starts;
  Trace(fmt::format("r{} start #{}: recovered {} records, {} keys, applied {}", region.index,
                    region.starts, region.replication().stats().recovered_records,
                    region.replication().stats().recovered_keys,
                    region.replication().replicator().applied().ToString()));
  for (int other = 0; other < size(); ++other) {
    if (other != region.index && SameShard(other, region.index)) {
      ScheduleConnect(region.index, other, rng_.Range(1, 30));
    }
  }
}

void World::Crash(Region& region, bool power_cut) {
  if (!region.up()) return;
  ++crashes;
  if (power_cut) {
    if (rng_.Chance(1, 2)) {
      region.storage.CrashTorn(rng_);
    } else {
      region.storage.Crash();
    }
  }
  Trace(fmt::format("r{} {}", region.index, power_cut ? "POWER CUT" : "process killed"));
  region.server().UnregisterClient(region.client.get());
  region.client.reset();
  region.server().UnregisterClient(region.bus_client.get());
  region.bus_client.reset();
  region.node.reset();
  region.outbox.clear();
  region.closes.clear();
  // The peers notice the broken links (the region is down first, so it is not told).
  for (int other = 0; other < size(); ++other) {
    if (other != region.index && SameShard(other, region.index)) LinkDown(region.index, other);
  }
}

std::pair<std::string, bool> World::Execute(Region& region, const std::vector<std::string>& args) {
  // A region can go down between the commands of one workload step (its op log failed at the
  // end of the previous batch: a MULTI's queued SET): the rest of the step is not run.
  if (!region.up()) return {std::string(), false};
  std::vector<std::string_view> views(args.begin(), args.end());
  std::string out;
  server::ReplyBuilder reply(&out);
  reply.set_protocol(region.client->protocol);
  region.server().Execute(*region.client, views, reply);
  const bool durable = EndOfBatch(region);
  return {std::move(out), durable};
}

bool World::EndOfBatch(Region& region) {
  if (!region.up()) return false;
  region.storage.FailWrites(region.disk_full_until_ms > now_ms_);
  const bool done = region.node->EndOfBatch();
  region.storage.FailWrites(false);
  if (!done) {
    Trace(fmt::format("r{} op log failed ({}): exits", region.index, region.log_failure));
    Crash(region, /*power_cut=*/false);
    At(std::max(now_ms_, region.disk_full_until_ms) + rng_.Range(50, 500), EventKind::kRestart,
       region.index, nullptr);
    return false;
  }
  if (region.storage.sync_count() != region.syncs_seen) {
    region.syncs_seen = region.storage.sync_count();
    region.busy_until_ms = std::max(region.busy_until_ms, now_ms_ + region.disk_latency_ms);
  }
  CheckRegion(region);
  Release(region);
  return true;
}

// Invariants after every batch: the keyspace's context never runs ahead of what the engine
// applied (causal delivery: an op's context names only dots of ops applied before it), or of that
// and the cut of a snapshot being installed (its context covers the cut from the install's
// beginning, the applied vector from its end), and the engine reported no lost own ops or
// protocol errors.
void World::CheckRegion(Region& region) {
  if (!options_.watch_key.empty()) WatchKey(region);
  const crdt::DotContext& context = region.keyspace().context();
  crdt::VersionVector applied = region.replication().replicator().applied();
  applied.Join(region.replication().replicator().install_cut());
  if (sharded() ? !ShardCausal(region)
                : !context.cloud().empty() || !context.vector().LessOrEqual(applied)) {
    Fail("causal delivery",
         fmt::format("r{}: keyspace context {} (cloud {}) is ahead of the applied vector {}",
                     region.index, context.vector().ToString(), context.cloud().size(),
                     applied.ToString()));
  }
  const std::string& event = region.replication().stats().last_event;
  if (event != region.last_event) {
    region.last_event = event;
    Trace(fmt::format("r{} event: {}", region.index, event));
    if (event.starts_with("lost_own_ops") || event.starts_with("protocol_error")) {
      Fail("engine event", fmt::format("r{}: {}", region.index, event));
    }
    if (event.starts_with("snapshot_installed")) ++snapshots;
  }
  if (batch_check) batch_check(region);
}

// Sharded runs: a migration imports keys with the dots of another shard's replicas, so the
// context may hold foreign dots (and a cloud of them); only this shard's replicas are compared.
bool World::ShardCausal(Region& region) {
  const crdt::VersionVector& context = region.keyspace().context().vector();
  crdt::VersionVector applied = region.replication().replicator().applied();
  applied.Join(region.replication().replicator().install_cut());
  const int first = ShardOf(region.index) * regions_per_shard();
  for (int n = first; n < first + regions_per_shard(); ++n) {
    const ReplicaId id = this->region(n).id;
    if (context.Get(id) > applied.Get(id)) return false;
  }
  return true;
}

// --watch KEY: traces every change of the key's state at each region and every op on it that
// arrives, to debug a failing seed.
void World::WatchKey(Region& region) {
  const std::string& name = options_.watch_key;
  server::KeyRef key = region.keyspace().Find(0, name, region.clock.NowMs());
  std::string state = key == nullptr
                          ? "none"
                          : fmt::format("type={} expiry={}", static_cast<int>(key->Type()),
                                        key->ExpiryMs().value_or(-1));
  if (key != nullptr) {
    for (const auto& [member, dots] : key->set().adds()) {
      state += " " + member + ":";
      for (crdt::Dot dot : dots.dots())
        state += fmt::format("{:x}.{},", dot.replica & 0xfff, dot.seq);
    }
    const crdt::Key whole = key->ToKey();
    if (const crdt::RegisterEntry<std::string>* winner = whole.string().Winner()) {
      state += " string=" + winner->value;
    }
  }
  std::string& last = watched_[region.index];
  if (state != last) {
    last = state;
    Trace(fmt::format("watch r{} {}: {}", region.index, name, state));
  }
}

void World::WatchOps(Region& to, int from, const repl::Message& message) {
  const auto* batch = std::get_if<repl::OpBatch>(&message);
  if (batch == nullptr) return;
  for (const repl::OpRecord& op : batch->ops) {
    if (op.key != options_.watch_key) continue;
    std::string what;
    if (const crdt::KeyRest* rest = op.op.delta.rest()) {
      for (const auto& e : rest->expiry().Entries()) {
        what +=
            fmt::format(" expiry({:x}.{} at {})", e.dot.replica & 0xfff, e.dot.seq, e.value.at_ms);
      }
      for (const std::string& member : rest->set().Members()) what += " +" + member;
    }
    Trace(fmt::format("watch r{} <- r{} op {:x}.{}x{} context {} cloud {}{}", to.index, from,
                      op.op.first_dot.replica & 0xfff, op.op.first_dot.seq, op.op.dot_count,
                      op.op.context.vector().ToString(), op.op.context.cloud().size(), what));
  }
}

// ---- network ----------------------------------------------------------------------------

Link& World::link(int a, int b) { return links_.at({std::min(a, b), std::max(a, b)}); }

int World::RegionIndexOf(ReplicaId id) const {
  for (int r = 0; r < size(); ++r) {
    if (regions_[static_cast<size_t>(r)]->id == id) return r;
  }
  return -1;
}

void World::Release(Region& region) {
  const int64_t leave_ms = std::max(now_ms_, region.busy_until_ms);
  std::map<int, std::string> chunks;  // by receiver, in send order
  for (const auto& [to, message] : region.outbox) {
    if (const int r = RegionIndexOf(to); r >= 0) {
      repl::AppendFrame(repl::Encode(message), chunks[r]);
      if (options_.verbose || !std::holds_alternative<repl::Heartbeat>(message)) {
        Trace(fmt::format("r{} -> r{} {}", region.index, r, Describe(message)));
      }
    }
  }
  region.outbox.clear();
  for (auto& [to, bytes] : chunks) {
    SendChunk(region.index, to, std::move(bytes), /*hello=*/false, leave_ms);
  }
  std::vector<ReplicaId> closes = std::move(region.closes);
  region.closes.clear();
  for (ReplicaId id : closes) {
    if (const int r = RegionIndexOf(id); r >= 0) {
      Trace(fmt::format("r{} closes its link to r{}", region.index, r));
      LinkDown(region.index, r);
      ScheduleConnect(region.index, r, rng_.Range(50, 500));
    }
  }
}

void World::SendChunk(int from, int to, std::string bytes, bool hello, int64_t leave_ms) {
  Link& l = link(from, to);
  const int direction = from < to ? 0 : 1;
  if (!l.up) return;
  ++messages;
  int copies = 1;
  if (!hello) {
    if (rng_.Chance(net.loss_per_mille, 1000)) {
      Trace(fmt::format("r{} -> r{} chunk lost", from, to));
      return;
    }
    if (rng_.Chance(net.duplicate_per_mille, 1000)) copies = 2;
  }
  for (int copy = 0; copy < copies; ++copy) {
    int64_t at = leave_ms + l.latency_ms + (l.jitter_ms > 0 ? rng_.Range(0, l.jitter_ms) : 0);
    if (!net.reorder) at = std::max(at, l.last_arrival_ms[direction]);
    at = std::max(at, l.hello_arrival_ms[direction]);  // the link's Hello always comes first
    if (hello) l.hello_arrival_ms[direction] = at;
    l.last_arrival_ms[direction] = std::max(l.last_arrival_ms[direction], at);
    Event event;
    event.at_ms = at;
    event.kind = EventKind::kDeliver;
    event.region = to;
    event.peer = from;
    event.epoch = l.epoch;
    event.bytes = bytes;
    Schedule(std::move(event));
  }
}

void World::SetPartitioned(int a, int b, bool partitioned) {
  Link& l = link(a, b);
  if (l.partitioned == partitioned) return;
  l.partitioned = partitioned;
  Trace(fmt::format("link r{}-r{} {}", a, b, partitioned ? "PARTITIONED" : "healed"));
  if (partitioned) {
    LinkDown(a, b);
  } else {
    ScheduleConnect(a, b, rng_.Range(1, 100));
  }
}

void World::SetRegionsPartitioned(int a, int b, bool partitioned) {
  region_cut_[{std::min(a, b), std::max(a, b)}] = partitioned;
  for (int shard = 0; shard < shards(); ++shard) {
    SetPartitioned(shard * regions_per_shard() + a, shard * regions_per_shard() + b, partitioned);
  }
}

// The link breaks: in-flight chunks are lost, and each end that had completed its side of the
// handshake is told (as PeerLinks::Disconnect does).
void World::LinkDown(int a, int b) {
  Link& l = link(a, b);
  if (!l.up) return;
  l.up = false;
  ++l.epoch;
  const int ends[2] = {std::min(a, b), std::max(a, b)};
  for (int side = 0; side < 2; ++side) {
    Region& self = region(ends[side]);
    Region& other = region(ends[1 - side]);
    const bool handshaken = l.hello_seen[1 - side];  // self received other's Hello
    if (self.up() && handshaken) {
      self.replication().OnDisconnected(other.id, self.clock.NowMs());
      EndOfBatch(self);
    }
  }
}

void World::ScheduleConnect(int a, int b, int64_t delay_ms) {
  Event event;
  event.at_ms = now_ms_ + delay_ms;
  event.kind = EventKind::kConnect;
  event.region = a;
  event.peer = b;
  Schedule(std::move(event));
}

repl::LinkOptions World::HandshakeOptions(Region& region, bool dialed, const std::string& binding) {
  repl::LinkOptions options;
  options.hello = region.replication().LinkHello();
  options.role = dialed ? repl::LinkRole::kDialed : repl::LinkRole::kAccepted;
  options.secret = shard_secret_;
  options.binding = binding;
  if (!shard_secret_.empty()) {
    options.nonce.resize(repl::kLinkNonceBytes);
    for (char& c : options.nonce) c = static_cast<char>(handshake_rng_.Uniform(256));
  }
  return options;
}

// Both ends are up and not partitioned: the link comes up and each end starts the production
// handshake (its Hello first), as PeerLinks::RunLink does. The handshake's frames travel like a
// Hello: never lost, duplicated or overtaken.
void World::Connect(int a, int b) {
  Link& l = link(a, b);
  if (l.up || l.partitioned || !region(a).up() || !region(b).up()) return;
  l.up = true;
  l.hello_seen[0] = l.hello_seen[1] = false;
  l.hello_arrival_ms[0] = l.hello_arrival_ms[1] = 0;
  Trace(fmt::format("link r{}-r{} up (epoch {})", a, b, l.epoch));
  // One pair of regions has one link, so the handshake's duplicate rule never applies here.
  const std::string binding =
      shard_secret_.empty() ? "" : fmt::format("tls-exporter-{}", handshake_rng_.Next());
  for (int from : {a, b}) {
    const int to = from == a ? b : a;
    auto& end = l.handshake[to < from ? 0 : 1];  // receives to -> from
    end = std::make_unique<repl::LinkHandshake>(
        HandshakeOptions(region(from), /*dialed=*/from == a, binding));
    SendChunk(from, to, end->TakeOutput(), /*hello=*/true, now_ms_);
  }
}

void World::Deliver(Region& to, int from, uint64_t epoch, const std::string& bytes) {
  Link& l = link(from, to.index);
  if (!to.up() || !l.up || l.epoch != epoch) return;
  const int direction = from < to.index ? 0 : 1;
  const ReplicaId peer = region(from).id;
  repl::LinkHandshake& end = *l.handshake[direction];
  end.Feed(bytes);
  for (;;) {
    const repl::LinkHandshake::Step step = end.Next();
    if (std::string reply = end.TakeOutput(); !reply.empty()) {
      SendChunk(to.index, from, std::move(reply), /*hello=*/true, now_ms_);  // a LinkProof
    }
    if (step == repl::LinkHandshake::Step::kNeedMore) break;
    if (step != repl::LinkHandshake::Step::kAdmitted &&
        step != repl::LinkHandshake::Step::kMessage) {
      // Simulated peers send only good frames: any refusal is a bug.
      Fail(RefusalCheck(end.reason()),
           fmt::format("r{} refused r{}: {}", to.index, from, end.reason()));
      return;
    }
    const int64_t now = to.clock.NowMs();
    std::optional<repl::Message> hello;  // admitted: the engine gets the Hello first
    if (step == repl::LinkHandshake::Step::kAdmitted) {
      l.hello_seen[direction] = true;
      Trace(fmt::format("r{} admits r{}{}", to.index, from,
                        shard_secret_.empty() ? "" : " (shard secret proven)"));
      to.replication().OnConnected(peer, now);
      hello.emplace(end.peer_hello());
    }
    const repl::Message& message = hello.has_value() ? *hello : end.message();
    if (!options_.watch_key.empty()) WatchOps(to, from, message);
    to.replication().OnMessage(peer, message, now);
    if (!to.up()) return;
  }
  EndOfBatch(to);
}

// ---- events -----------------------------------------------------------------------------

void World::Schedule(Event event) {
  event.seq = next_seq_++;
  queue_.push(std::move(event));
}

void World::At(int64_t at_ms, EventKind kind, int region, std::function<void()> action) {
  Event event;
  event.at_ms = at_ms;
  event.kind = kind;
  event.region = region;
  event.action = std::move(action);
  Schedule(std::move(event));
}

void World::OnTick(Region& region) {
  // Sharded runs tick every 10 ms: the cluster's gossip and migration steps run that often.
  At(now_ms_ + (sharded() ? kClusterTickMs : kTickMs), EventKind::kTick, region.index, nullptr);
  if (!region.up()) return;
  region.node->Tick();  // replication every tick, the server cron at hz 10
  EndOfBatch(region);
}

void World::Dispatch(Event& event) {
  Region& target = region(event.region);
  const bool needs_disk = event.kind == EventKind::kDeliver || event.kind == EventKind::kTick ||
                          event.kind == EventKind::kClient;
  if (needs_disk && target.up() && target.busy_until_ms > now_ms_) {
    event.at_ms = target.busy_until_ms;  // a slow fsync holds the event loop
    queue_.push(std::move(event));       // same seq: the region's events keep their order
    return;
  }
  switch (event.kind) {
    case EventKind::kDeliver:
      Deliver(target, event.peer, event.epoch, event.bytes);
      break;
    case EventKind::kTick:
      OnTick(target);
      break;
    case EventKind::kConnect:
      Connect(event.region, event.peer);
      break;
    case EventKind::kRestart:
      if (!target.up()) Start(target);
      break;
    case EventKind::kClient:
    case EventKind::kFault:
      if (event.action) event.action();
      break;
  }
}

bool World::RunUntil(int64_t until_ms) {
  while (!failure_.has_value() && !queue_.empty() && queue_.top().at_ms <= until_ms) {
    Event event = queue_.top();
    queue_.pop();
    now_ms_ = std::max(now_ms_, event.at_ms);
    Dispatch(event);
  }
  now_ms_ = std::max(now_ms_, until_ms);
  return !failure_.has_value();
}

// ---- failures and trace -----------------------------------------------------------------

void World::Fail(std::string check, std::string details) {
  if (failure_.has_value()) return;
  Trace("FAILED " + check + ": " + details);
  failure_ = Failure{std::move(check), std::move(details)};
}

void World::Trace(std::string line) {
  if (trace_.size() == kTraceKept) trace_.pop_front();
  trace_.push_back(fmt::format("[{:>7} ms] {}", now_ms_, line));
}

std::string World::TraceText(size_t lines) const {
  std::string text;
  const size_t first = trace_.size() > lines ? trace_.size() - lines : 0;
  for (size_t i = first; i < trace_.size(); ++i) {
    text += trace_[i];
    text += '\n';
  }
  return text;
}

}  // namespace lattice::sim

namespace lattice::sim {

// ---- cluster bus (sharded runs) ---------------------------------------------------------

void SimBus::Send(const std::string& /*ip*/, int port, std::string_view channel,
                  std::vector<std::string> args, ReplyHandler done) {
  world_.BusSend(from_, port, channel, std::move(args), std::move(done));
}

std::string World::NodeIdOf(int node) { return fmt::format("{:040x}", 0xc0de0000 + node); }

// Fixed per ordered pair: one connection's requests, and its replies, arrive in order.
int64_t World::BusLatency(int from, int to) {
  auto [it, fresh] = bus_latency_.try_emplace({from, to}, 1);
  if (fresh && (options_.faults & kFaultLatency) != 0) it->second = rng_.Range(1, 60);
  return it->second;
}

void World::BusSend(int from, int port, std::string_view channel, std::vector<std::string> args,
                    server::ClusterBus::ReplyHandler done) {
  const int to = port - PortOf(0);
  if (to < 0 || to >= size()) {
    Fail("cluster bus", fmt::format("n{} sent to unknown port {}", from, port));
    return;
  }
  BusConnection connection{from, to, std::string(channel)};
  const uint64_t epoch = bus_epoch_[connection];
  const uint64_t start = region(from).starts;
  At(now_ms_ + BusLatency(from, to), EventKind::kClient, to,
     [this, from, start, connection, epoch, args = std::move(args), done = std::move(done)] {
       BusDeliver(from, start, connection, epoch, args, done);
     });
}

// Runs the command on the target, unless the connection broke (target down, partition, loss);
// a lost reply breaks the connection after the command ran.
void World::BusDeliver(int from, uint64_t start, const BusConnection& connection, uint64_t epoch,
                       const std::vector<std::string>& args,
                       server::ClusterBus::ReplyHandler done) {
  const int to = std::get<1>(connection);
  const int64_t latency = BusLatency(to, from);
  Region& target = region(to);
  const int ra = from % regions_per_shard();
  const int rb = to % regions_per_shard();
  const bool cut = ra != rb && region_cut_[{std::min(ra, rb), std::max(ra, rb)}];
  uint64_t& current = bus_epoch_[connection];
  if (epoch != current || !target.up() || cut || rng_.Chance(net.loss_per_mille, 1000)) {
    if (epoch == current) ++current;
    BusReply(from, start, latency, Unexpected(std::string("cluster bus link failed: sim")),
             std::move(done));
    return;
  }
  std::vector<std::string_view> views(args.begin(), args.end());
  std::string out;
  server::ReplyBuilder reply(&out);
  target.server().Execute(*target.bus_client, views, reply);
  const bool durable = EndOfBatch(target);
  if (!durable || rng_.Chance(net.loss_per_mille, 1000)) {
    ++current;
    Trace(fmt::format("n{} -> n{} bus reply lost: {}", from, to, args.size() > 2 ? args[2] : ""));
    BusReply(from, start, latency, Unexpected(std::string("cluster bus link failed: sim")),
             std::move(done));
    return;
  }
  BusReply(from, start, latency, server::DecodeReply(out), std::move(done));
}

// The reply reaches the sender unless it restarted since (its Cluster, and the handler, died
// with the crash).
void World::BusReply(int from, uint64_t start, int64_t latency_ms, Result<server::RespValue> reply,
                     server::ClusterBus::ReplyHandler done) {
  At(now_ms_ + latency_ms, EventKind::kClient, from,
     [this, from, start, reply = std::move(reply), done = std::move(done)]() mutable {
       Region& sender = region(from);
       if (!sender.up() || sender.starts != start) return;
       done(std::move(reply));
       EndOfBatch(sender);
     });
}

}  // namespace lattice::sim
