// Tests of the replication engine (lattice::repl::Replicator) over a deterministic in-test
// network: three regions, each a Replicator over a real server::Keyspace, exchanging messages
// through a seeded fake network with loss, duplication, reordering, partitions that heal and
// link flaps. Every run prints (CAPTUREs) the seed that replays it. The Applier asserts causal
// delivery (an op's deps and its origin's earlier ops are applied before it).

#include "lattice/repl/replicator.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lattice/common/rng.h"
#include "lattice/repl/codec.h"
#include "store/keyspace.h"

namespace lattice::repl {
namespace {

using server::Keyspace;
using server::VisibleValue;

constexpr int kDatabases = 16;
constexpr int64_t kStepMs = 5;

struct Faults {
  uint64_t loss_percent = 0;
  uint64_t duplicate_percent = 0;
  int64_t delay_max_ms = 1;
  uint64_t flap_per_mille = 0;  // per step, chance that one random link changes state
};

class Network;

// One region: a Keyspace (the state), its Replicator, and the seams between them.
class Node final : public Transport,
                   public Applier,
                   public Observer,
                   public server::KeyspaceObserver {
 public:
  Node(Network& network, ReplicaId id, const ReplicatorConfig& config)
      : ks(id, kDatabases), network_(network), id_(id) {
    ks.AddObserver(this);
    rep = std::make_unique<Replicator>(config, ks.context().vector(), *this, *this, this);
  }

  ReplicaId id() const { return id_; }

  // Transport
  void Send(ReplicaId to, const Message& message) override;
  void Close(ReplicaId to) override;

  // Applier: checks causal delivery against the keyspace's own context, then applies.
  void Apply(const OpRecord& record) override {
    const crdt::VersionVector& have = ks.context().vector();
    const crdt::Dot first = record.op.first_dot;
    if (!record.deps.LessOrEqual(have) || have.Get(first.replica) + 1 != first.seq) {
      ++causal_violations;
    }
    ks.ApplyRemote(static_cast<int>(record.db), record.key, record.op);
  }
  std::vector<SnapshotChunk> TakeSnapshot(size_t keys_per_chunk) override {
    std::vector<SnapshotChunk> chunks(1);
    for (int db = 0; db < kDatabases; ++db) {
      ks.ForEach(db, [&](const std::string& key, const crdt::Key& value) {
        if (chunks.back().keys.size() == keys_per_chunk) {
          chunks.emplace_back();
        }
        chunks.back().keys.push_back(SnapshotKey{static_cast<uint32_t>(db), key, value});
      });
    }
    chunks.back().last = true;
    chunks.back().context = ks.context();
    return chunks;
  }
  void InstallSnapshot(const std::vector<SnapshotChunk>& chunks) override;

  // Observer
  void OnEvent(const Event& event) override {
    ++event_counts[event.kind];
    events.push_back(event);
  }

  // KeyspaceObserver: the keyspace's local ops go to the engine.
  void OnLocalOp(int db, std::string_view key, const crdt::KeyOp& op) override {
    rep->OnLocalOp(static_cast<uint32_t>(db), key, op);
  }

  int64_t now_ms = 0;
  Keyspace ks;
  std::unique_ptr<Replicator> rep;
  uint64_t causal_violations = 0;
  std::map<EventKind, uint64_t> event_counts;
  std::vector<Event> events;

 private:
  Network& network_;
  ReplicaId id_;
};

void Node::InstallSnapshot(const std::vector<SnapshotChunk>& chunks) {
  const crdt::DotContext& theirs = chunks.back().context;
  const crdt::DotContext mine = ks.context();  // the pre-install context for every key's join
  std::set<std::pair<int, std::string>> in_snapshot;
  for (const SnapshotChunk& chunk : chunks) {
    for (const SnapshotKey& entry : chunk.keys) {
      const int db = static_cast<int>(entry.db);
      ks.Open(db, entry.key, now_ms).Join(entry.state, mine, theirs);
      ks.Close(db, entry.key);
      in_snapshot.emplace(db, entry.key);
    }
  }
  for (int db = 0; db < kDatabases; ++db) {
    std::vector<std::string> absent;
    ks.ForEach(db, [&](const std::string& key, const crdt::Key&) {
      if (!in_snapshot.contains({db, key})) {
        absent.push_back(key);
      }
    });
    for (const std::string& key : absent) {
      ks.Open(db, key, now_ms).Join(crdt::Key(), mine, theirs);
      ks.Close(db, key);
    }
  }
  ks.context().Join(theirs);
}

// The fake network: per link a desired state (the test's partitions and flaps) and an actual
// one; a link that goes down loses what is in flight on it (as a TCP connection does).
class Network {
 public:
  explicit Network(uint64_t seed) : rng_(seed) {}

  Node& AddNode(ReplicaId id, ReplicatorConfig config) {
    nodes_.push_back(std::make_unique<Node>(*this, id, config));
    return *nodes_.back();
  }
  Node& node(size_t i) { return *nodes_[i]; }
  size_t size() const { return nodes_.size(); }
  Rng& rng() { return rng_; }
  int64_t now_ms() const { return now_ms_; }
  Faults faults;

  void SetDesired(ReplicaId a, ReplicaId b, bool up) { links_[Key(a, b)].desired = up; }
  void SetAllDesired(bool up) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      for (size_t j = i + 1; j < nodes_.size(); ++j) {
        SetDesired(nodes_[i]->id(), nodes_[j]->id(), up);
      }
    }
  }

  // Op batches cross as bytes, as on a real link: the engine sends retained ops as shells (their
  // encoding only, messages.h).
  void Send(ReplicaId from, ReplicaId to, const Message& sent) {
    const LinkState& link = links_[Key(from, to)];
    if (!link.up || rng_.Chance(faults.loss_percent, 100)) {
      return;
    }
    Message message = sent;
    if (std::holds_alternative<OpBatch>(sent)) {
      Result<Message> decoded = Decode(Encode(sent), from);
      REQUIRE(decoded.ok());
      message = std::move(*decoded);
    }
    const int copies = rng_.Chance(faults.duplicate_percent, 100) ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
      queue_.push_back(Envelope{from, to, message,
                                now_ms_ + rng_.Range(1, std::max<int64_t>(1, faults.delay_max_ms)),
                                link.epoch});
    }
  }

  // A replica closed the link: down now, both sides told at the next step, retried later.
  void Close(ReplicaId from, ReplicaId to) {
    LinkState& link = links_[Key(from, to)];
    if (link.up) {
      link.up = false;
      ++link.epoch;
      link.notify_down = true;
    }
    link.retry_at_ms = now_ms_ + 50;
  }

  // One step: link changes, message delivery in random order, ticks.
  void Step() {
    now_ms_ += kStepMs;
    for (auto& node : nodes_) {
      node->now_ms = now_ms_;
    }
    Flap();
    UpdateLinks();
    Deliver();
    for (auto& node : nodes_) {
      node->rep->Tick(now_ms_);
    }
  }

  bool QueueEmpty() const { return queue_.empty(); }

 private:
  struct Envelope {
    ReplicaId from;
    ReplicaId to;
    Message message;
    int64_t deliver_at_ms;
    uint64_t epoch;
  };
  struct LinkState {
    bool desired = true;
    bool up = false;
    bool notify_down = false;
    uint64_t epoch = 0;
    int64_t retry_at_ms = 0;
  };
  static std::pair<ReplicaId, ReplicaId> Key(ReplicaId a, ReplicaId b) {
    return {std::min(a, b), std::max(a, b)};
  }
  Node& Find(ReplicaId id) {
    for (auto& node : nodes_) {
      if (node->id() == id) {
        return *node;
      }
    }
    FAIL("no node " << id);
    return *nodes_.front();
  }

  void Flap() {
    if (links_.empty() || !rng_.Chance(faults.flap_per_mille, 1000)) {
      return;
    }
    auto it = links_.begin();
    std::advance(it, static_cast<long>(rng_.Uniform(links_.size())));
    it->second.desired = !it->second.desired;
  }

  void UpdateLinks() {
    for (auto& [ends, link] : links_) {
      Node& a = Find(ends.first);
      Node& b = Find(ends.second);
      if (link.notify_down || (link.up && !link.desired)) {
        link.up = false;
        link.notify_down = false;
        ++link.epoch;
        link.retry_at_ms = std::max(link.retry_at_ms, now_ms_ + 20);
        a.rep->OnDisconnected(b.id(), now_ms_);
        b.rep->OnDisconnected(a.id(), now_ms_);
      } else if (!link.up && link.desired && now_ms_ >= link.retry_at_ms) {
        link.up = true;
        a.rep->OnConnected(b.id(), now_ms_);
        b.rep->OnConnected(a.id(), now_ms_);
      }
    }
  }

  void Deliver() {
    std::vector<Envelope> due;
    for (size_t i = 0; i < queue_.size();) {
      if (queue_[i].deliver_at_ms <= now_ms_) {
        due.push_back(std::move(queue_[i]));
        queue_[i] = std::move(queue_.back());
        queue_.pop_back();
      } else {
        ++i;
      }
    }
    for (size_t i = due.size(); i > 1; --i) {  // Fisher-Yates: delivery order is random
      std::swap(due[i - 1], due[rng_.Uniform(i)]);
    }
    for (Envelope& envelope : due) {
      const LinkState& link = links_[Key(envelope.from, envelope.to)];
      if (link.up && link.epoch == envelope.epoch) {
        Find(envelope.to).rep->OnMessage(envelope.from, envelope.message, now_ms_);
      }
    }
  }

  Rng rng_;
  int64_t now_ms_ = 1'700'000'000'000;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::map<std::pair<ReplicaId, ReplicaId>, LinkState> links_;
  std::vector<Envelope> queue_;
};

void Node::Send(ReplicaId to, const Message& message) { network_.Send(id_, to, message); }
void Node::Close(ReplicaId to) { network_.Close(id_, to); }

ReplicatorConfig ConfigFor(ReplicaId id, const std::vector<ReplicaId>& all) {
  ReplicatorConfig config;
  config.shard_id = "shard-1";
  config.replica = id;
  config.region = "region-" + std::to_string(id);
  for (ReplicaId other : all) {
    if (other != id) {
      config.peers.push_back(other);
    }
  }
  config.databases = kDatabases;
  config.heartbeat_interval_ms = 100;
  config.ack_interval_ms = 10;
  config.resend_timeout_ms = 100;
  config.peer_timeout_ms = 3000;
  config.max_batch_ops = 16;
  config.max_inflight_ops = 256;
  config.max_buffered_ops = 2048;
  config.snapshot_keys_per_chunk = 4;
  return config;
}

// A random write of one of several types on a small key space (so writes conflict, including
// across types), through the keyspace's write protocol.
void RandomWrite(Node& node, Rng& rng) {
  const int db = static_cast<int>(rng.Uniform(2));
  const std::string key = "k" + std::to_string(rng.Uniform(8));
  const std::string member = "m" + std::to_string(rng.Uniform(6));
  const int64_t now = node.now_ms;
  Keyspace& ks = node.ks;
  const uint64_t kind = rng.Uniform(11);
  if (kind == 10) {
    (void)ks.Delete(db, key, now);
    return;
  }
  crdt::Key& k = ks.Open(db, key, now);
  const crdt::Writer writer = ks.BeginWrite(now);
  Result<crdt::KeyOp> op = Unexpected("unset");
  switch (kind) {
    case 0:
      op =
          k.Set("v" + std::to_string(rng.Uniform(1000)), false, std::nullopt, writer, ks.context());
      break;
    case 1:
      op = k.IncrBy(rng.Range(-5, 5), writer, ks.context());
      break;
    case 2:
      op = k.SAdd({member, "m" + std::to_string(rng.Uniform(6))}, writer, ks.context());
      break;
    case 3:
      op = k.SRem({member}, writer, ks.context());
      break;
    case 4:
      op = k.HSet("f" + std::to_string(rng.Uniform(4)), member, false, writer, ks.context());
      break;
    case 5:
      op = k.HDel({"f" + std::to_string(rng.Uniform(4))}, writer, ks.context());
      break;
    case 6:
      op = k.HIncrBy("c", rng.Range(1, 9), writer, ks.context());
      break;
    case 7:
      op = k.ZAdd(member, static_cast<double>(rng.Range(0, 50)), writer, ks.context());
      break;
    case 8:
      op = k.ZIncrBy(member, static_cast<double>(rng.Range(-3, 3)), writer, ks.context());
      break;
    default:
      op = k.ZRem({member}, writer, ks.context());
      break;
  }
  if (op.ok()) {
    ks.Commit(db, key, std::move(op.value()));
  } else {
    ks.Close(db, key);
  }
}

using VisibleState = std::map<std::pair<int, std::string>, VisibleValue>;

VisibleState Visible(const Node& node) {
  VisibleState state;
  for (int db = 0; db < kDatabases; ++db) {
    node.ks.ForEach(db, [&](const std::string& key, const crdt::Key& value) {
      VisibleValue visible = server::ReadVisible(value, node.now_ms);
      if (visible.type != crdt::ObjectType::kNone) {
        state.emplace(std::make_pair(db, key), std::move(visible));
      }
    });
  }
  return state;
}

bool AllApplied(Network& net) {
  crdt::VersionVector all;
  for (size_t i = 0; i < net.size(); ++i) {
    all.Join(net.node(i).rep->applied());
  }
  for (size_t i = 0; i < net.size(); ++i) {
    if (!(net.node(i).rep->applied() == all) || net.node(i).rep->buffered_ops() != 0) {
      return false;
    }
  }
  return true;
}

// Runs until every replica applied every op (bounded), then lets acks settle.
bool Quiesce(Network& net, int steps_max) {
  for (int step = 0; step < steps_max; ++step) {
    net.Step();
    if (AllApplied(net)) {
      for (int settle = 0; settle < 60; ++settle) {
        net.Step();
      }
      return true;
    }
  }
  return false;
}

void CheckConverged(Network& net) {
  const VisibleState first = Visible(net.node(0));
  for (size_t i = 0; i < net.size(); ++i) {
    Node& node = net.node(i);
    CAPTURE(node.id());
    CHECK(node.causal_violations == 0);
    CHECK(node.rep->applied() == net.node(0).rep->applied());
    CHECK(node.ks.context().vector() == net.node(0).ks.context().vector());
    CHECK(Visible(node) == first);
  }
}

std::unique_ptr<Network> ThreeRegions(uint64_t seed, size_t max_retained_ops,
                                      uint64_t max_retained_bytes = uint64_t{64} << 20) {
  auto net = std::make_unique<Network>(seed);
  const std::vector<ReplicaId> ids = {11, 22, 33};
  for (ReplicaId id : ids) {
    ReplicatorConfig config = ConfigFor(id, ids);
    config.max_retained_ops = max_retained_ops;
    config.max_retained_bytes = max_retained_bytes;
    net->AddNode(id, config);
  }
  net->SetAllDesired(true);
  return net;
}

TEST_CASE("three regions converge under loss, duplication, reordering, partitions and flaps",
          "[replicator]") {
  uint64_t snapshots = 0;
  uint64_t overflows = 0;
  uint64_t resends = 0;
  uint64_t duplicates = 0;
  for (uint64_t seed = 1; seed <= 500; ++seed) {
    CAPTURE(seed);
    Rng plan(seed * 7919);
    // Every third seed runs with a small backlog bound, so partitions force snapshots.
    const size_t bound = seed % 3 == 0 ? 40 : 100'000;
    auto net = ThreeRegions(seed, bound);
    net->faults = Faults{.loss_percent = plan.Uniform(20),
                         .duplicate_percent = plan.Uniform(10),
                         .delay_max_ms = plan.Range(1, 60),
                         .flap_per_mille = 40};
    for (int step = 0; step < 300; ++step) {
      net->Step();
      for (size_t i = 0; i < net->size(); ++i) {
        if (plan.Chance(1, 3)) {
          RandomWrite(net->node(i), plan);
        }
        // The bound, times install_backlog_factor while a peer installs a snapshot and lacks
        // the oldest op (docs/replication.md, "Retained for an install").
        REQUIRE(net->node(i).rep->retained_ops() <=
                bound * ReplicatorConfig{}.install_backlog_factor);
      }
    }
    net->faults = Faults{.delay_max_ms = 20};
    net->SetAllDesired(true);
    REQUIRE(Quiesce(*net, 4000));
    CheckConverged(*net);
    for (size_t i = 0; i < net->size(); ++i) {
      Node& node = net->node(i);
      CHECK(node.rep->StableVector() == node.rep->applied());
      CHECK(node.rep->retained_ops() == 0);  // every peer acknowledged everything
      snapshots += node.event_counts[EventKind::kSnapshotInstalled];
      overflows += node.event_counts[EventKind::kBufferOverflow];
      const ReplicatorStatus status = node.rep->Status(net->now_ms());
      duplicates += status.duplicate_ops;
      for (const PeerStatus& peer : status.peers) {
        resends += peer.resends;
      }
    }
  }
  // The faults exercised every repair path.
  CHECK(snapshots > 0);
  CHECK(resends > 0);
  CHECK(duplicates > 0);
  WARN("500 seeds: snapshots installed " << snapshots << ", resends " << resends
                                         << ", duplicates ignored " << duplicates
                                         << ", buffer overflows " << overflows);
}

TEST_CASE("relaying: with the A-B link down, B gets A's ops through C", "[replicator]") {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    Rng plan(seed);
    auto net = ThreeRegions(seed, 100'000);
    Node& a = net->node(0);
    Node& b = net->node(1);
    net->SetDesired(a.id(), b.id(), false);
    net->faults = Faults{.loss_percent = 10, .duplicate_percent = 5, .delay_max_ms = 30};
    for (int step = 0; step < 200; ++step) {
      net->Step();
      if (plan.Chance(1, 2)) {
        RandomWrite(a, plan);
      }
      if (plan.Chance(1, 4)) {
        RandomWrite(b, plan);
      }
    }
    net->faults = Faults{.delay_max_ms = 10};
    REQUIRE(Quiesce(*net, 4000));
    CHECK(b.rep->applied().Get(a.id()) == a.rep->applied().Get(a.id()));
    CHECK(a.rep->applied().Get(a.id()) > 0);
    CheckConverged(*net);
    const ReplicatorStatus status = a.rep->Status(net->now_ms());
    REQUIRE(status.peers.size() == 2);
    CHECK(status.peers[0].replica == b.id());
    CHECK(status.peers[0].state == PeerState::kDown);
    CHECK(status.peers[1].state == PeerState::kConnected);
  }
}

// Region C (node 2) is cut off from A and B on a lossy network for 200 steps while every region
// (C too) writes at random; `check` sees each node's engine after every step.
void WriteWithCCutOff(Network& net, Rng& plan,
                      const std::function<void(const Replicator&)>& check) {
  const ReplicaId c = net.node(2).id();
  net.SetDesired(net.node(0).id(), c, false);
  net.SetDesired(net.node(1).id(), c, false);
  net.faults = Faults{.loss_percent = 5, .duplicate_percent = 5, .delay_max_ms = 20};
  for (int step = 0; step < 200; ++step) {
    net.Step();
    for (size_t i = 0; i < net.size(); ++i) {
      if (plan.Chance(1, 2)) {
        RandomWrite(net.node(i), plan);
      }
      check(*net.node(i).rep);
    }
  }
}

// Heals every link: the regions converge, C by installing a snapshot.
void HealAndCheckSnapshot(Network& net) {
  net.SetAllDesired(true);
  REQUIRE(Quiesce(net, 4000));
  CheckConverged(net);
  CHECK(net.node(2).event_counts[EventKind::kSnapshotInstalled] >= 1);
}

TEST_CASE("a peer down past the backlog bound is stale, then catches up by snapshot",
          "[replicator]") {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    Rng plan(seed);
    constexpr size_t kBound = 25;
    auto net = ThreeRegions(seed, kBound);
    Node& a = net->node(0);
    Node& c = net->node(2);
    WriteWithCCutOff(*net, plan, [&](const Replicator& rep) {
      REQUIRE(rep.retained_ops() <= kBound * ReplicatorConfig{}.install_backlog_factor);
    });
    ReplicatorStatus status = a.rep->Status(net->now_ms());
    CHECK(status.peers[1].replica == c.id());
    CHECK(status.peers[1].state == PeerState::kStale);
    CHECK(status.peers[1].lag_ops == a.rep->retained_ops());
    CHECK(a.event_counts[EventKind::kPeerStale] >= 1);

    HealAndCheckSnapshot(*net);
    status = a.rep->Status(net->now_ms());
    CHECK(status.peers[1].state == PeerState::kConnected);
    CHECK(status.peers[1].lag_ops == 0);
  }
}

TEST_CASE("a peer down past the backlog's byte bound is stale, then catches up by snapshot",
          "[replicator]") {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    CAPTURE(seed);
    Rng plan(seed);
    constexpr uint64_t kBound = 3000;  // a few dozen ops
    auto net = ThreeRegions(seed, /*max_retained_ops=*/1'000'000, kBound);
    Node& a = net->node(0);
    WriteWithCCutOff(*net, plan, [&](const Replicator& rep) {
      REQUIRE((rep.retained_bytes() <= kBound || rep.retained_ops() == 1));
    });
    const ReplicatorStatus status = a.rep->Status(net->now_ms());
    CHECK(status.backlog_bytes <= kBound);
    CHECK(status.peers[1].state == PeerState::kStale);
    HealAndCheckSnapshot(*net);
    CHECK(a.rep->Status(net->now_ms()).peers[1].state == PeerState::kConnected);
  }
}

TEST_CASE("a permanently down peer keeps retained ops within the bound", "[replicator]") {
  constexpr size_t kBound = 50;
  auto net = ThreeRegions(/*seed=*/7, kBound);
  Rng plan(7);
  Node& a = net->node(0);
  Node& c = net->node(2);
  net->SetDesired(a.id(), c.id(), false);
  net->SetDesired(net->node(1).id(), c.id(), false);
  size_t retained_max = 0;
  for (int step = 0; step < 400; ++step) {
    net->Step();
    RandomWrite(a, plan);
    RandomWrite(net->node(1), plan);
    retained_max = std::max<size_t>(retained_max, a.rep->retained_ops());
    REQUIRE(a.rep->retained_ops() <= kBound);
  }
  CHECK(retained_max == kBound);
  const ReplicatorStatus status = a.rep->Status(net->now_ms());
  CHECK(status.backlog_ops == a.rep->retained_ops());
  CHECK(status.peers[0].state == PeerState::kConnected);
  CHECK(status.peers[1].state == PeerState::kStale);
  CHECK(status.peers[1].lag_ms > 0);
  // C holds back causal stability: nothing of A's or B's is stable while C has not seen it.
  CHECK(a.rep->StableVector().Get(a.id()) == 0);
}

// A transport that records what the engine sends, for handshake tests without a network.
class RecordingTransport final : public Transport {
 public:
  void Send(ReplicaId to, const Message& message) override { sent.emplace_back(to, message); }
  void Close(ReplicaId to) override { closed.push_back(to); }
  std::vector<std::pair<ReplicaId, Message>> sent;
  std::vector<ReplicaId> closed;
};

class NullApplier final : public Applier {
 public:
  void Apply(const OpRecord&) override { ++applied; }
  std::vector<SnapshotChunk> TakeSnapshot(size_t) override {
    SnapshotChunk chunk;
    chunk.last = true;
    return {chunk};
  }
  void InstallSnapshot(const std::vector<SnapshotChunk>&) override {}
  int applied = 0;
};

class RecordingObserver final : public Observer {
 public:
  void OnEvent(const Event& event) override { events.push_back(event); }
  std::vector<Event> events;
};

Hello MakeHello(std::string shard, ReplicaId replica, uint32_t version = kProtocolVersion) {
  Hello hello;
  hello.shard_id = std::move(shard);
  hello.replica = replica;
  hello.protocol_version = version;
  return hello;
}

TEST_CASE("a Hello of the wrong shard, version or id is refused with a reason", "[replicator]") {
  struct Case {
    Hello hello;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {MakeHello("shard-2", 22), "wrong shard"},
      {MakeHello("shard-1", 22, 99), "protocol version"},
      {MakeHello("shard-1", 11), "our own replica id"},
      {MakeHello("shard-1", 33), "replica id mismatch"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.reason);
    RecordingTransport transport;
    NullApplier applier;
    RecordingObserver observer;
    Replicator rep(ConfigFor(11, {11, 22}), {}, transport, applier, &observer);
    rep.OnConnected(22, 1000);
    REQUIRE(transport.sent.size() == 1);
    CHECK(std::get<Hello>(transport.sent[0].second).shard_id == "shard-1");
    rep.OnMessage(22, c.hello, 1001);
    REQUIRE(transport.sent.size() == 2);
    const auto* goodbye = std::get_if<Goodbye>(&transport.sent[1].second);
    REQUIRE(goodbye != nullptr);
    CHECK(goodbye->reason.find(c.reason) != std::string::npos);
    CHECK(transport.closed == std::vector<ReplicaId>{22});
    REQUIRE(observer.events.size() == 1);
    CHECK(observer.events[0].kind == EventKind::kPeerRefused);
    CHECK(observer.events[0].peer == 22);
    CHECK(observer.events[0].detail == goodbye->reason);
    const ReplicatorStatus status = rep.Status(1002);
    CHECK(status.peers[0].state == PeerState::kDown);
    CHECK(status.peers[0].last_error == goodbye->reason);
  }
}

TEST_CASE("wrong-shard regions in the network refuse each other", "[replicator]") {
  Network net(1);
  std::vector<ReplicaId> ids = {11, 22};
  Node& a = net.AddNode(11, ConfigFor(11, ids));
  ReplicatorConfig other = ConfigFor(22, ids);
  other.shard_id = "shard-9";
  Node& b = net.AddNode(22, other);
  net.SetAllDesired(true);
  for (int step = 0; step < 60; ++step) {
    net.Step();
  }
  // Each attempt is refused by whichever side reads the other's Hello first; the link is
  // retried and refused again.
  CHECK(a.event_counts[EventKind::kPeerRefused] + b.event_counts[EventKind::kPeerRefused] >= 2);
  CHECK(a.event_counts[EventKind::kPeerConnected] == 0);
  CHECK(b.event_counts[EventKind::kPeerConnected] == 0);
  for (const Node* node : {&a, &b}) {
    for (const Event& event : node->events) {
      if (event.kind == EventKind::kPeerRefused) {
        CHECK(event.detail.find("wrong shard") != std::string::npos);
      }
    }
  }
}

TEST_CASE("ops are applied in causal order whatever order they arrive in", "[replicator]") {
  RecordingTransport transport;
  NullApplier applier;
  Replicator rep(ConfigFor(11, {11, 22, 33}), {}, transport, applier);
  rep.OnConnected(22, 0);
  rep.OnMessage(22, MakeHello("shard-1", 22), 1);
  auto op = [](ReplicaId origin, uint64_t seq, uint64_t count, crdt::VersionVector deps) {
    OpRecord record;
    record.op.first_dot = crdt::Dot{origin, seq};
    record.op.dot_count = count;
    deps.Set(origin, seq - 1);
    record.deps = deps;
    return record;
  };
  crdt::VersionVector after_22;
  after_22.Set(22, 3);
  // 33's op depends on 22's two ops (seqs 1 and 2..3); they arrive in reverse, 22 relays.
  rep.OnMessage(22, OpBatch{{op(33, 1, 1, after_22)}}, 2);
  rep.OnMessage(22, OpBatch{{op(22, 2, 2, {})}}, 3);
  CHECK(applier.applied == 0);
  CHECK(rep.buffered_ops() == 2);
  rep.OnMessage(22, OpBatch{{op(22, 1, 1, {}), op(22, 1, 1, {})}}, 4);  // with a duplicate
  CHECK(applier.applied == 3);
  CHECK(rep.buffered_ops() == 0);
  CHECK(rep.applied().Get(22) == 3);
  CHECK(rep.applied().Get(33) == 1);
  CHECK(rep.Status(5).duplicate_ops == 1);
  // A malformed op (no dots) is a protocol error: Goodbye and close, nothing applied.
  OpRecord bad = op(22, 4, 1, {});
  bad.op.dot_count = 0;
  rep.OnMessage(22, OpBatch{{bad}}, 6);
  CHECK(applier.applied == 3);
  CHECK(transport.closed == std::vector<ReplicaId>{22});
  CHECK(std::holds_alternative<Goodbye>(transport.sent.back().second));
}

TEST_CASE("an op naming dots outside its causal past is refused, imported foreign dots are not",
          "[replicator]") {
  auto op = [](uint64_t seq, crdt::Dot observed) {
    OpRecord record;
    record.op.first_dot = crdt::Dot{22, seq};
    record.op.dot_count = 1;
    record.deps.Set(22, seq - 1);
    record.op.context.Add(observed);
    return record;
  };
  struct Case {
    crdt::Dot observed;
    bool accepted;
  };
  const std::vector<Case> cases = {
      {crdt::Dot{22, 1}, true},    // its own earlier dot
      {crdt::Dot{22, 2}, true},    // its own dot
      {crdt::Dot{22, 43}, false},  // the origin's future: the fuzzer's find
      {crdt::Dot{11, 5}, false},   // ours, beyond what its deps say it saw
      {crdt::Dot{77, 9}, true},    // a replica outside the stream (a slot-migration import)
  };
  for (const Case& c : cases) {
    CAPTURE(c.observed.replica, c.observed.seq);
    RecordingTransport transport;
    NullApplier applier;
    Replicator rep(ConfigFor(11, {11, 22}), {}, transport, applier);
    rep.OnConnected(22, 0);
    rep.OnMessage(22, MakeHello("shard-1", 22), 1);
    rep.OnMessage(22, OpBatch{{op(1, crdt::Dot{22, 1})}}, 2);
    REQUIRE(applier.applied == 1);
    rep.OnMessage(22, OpBatch{{op(2, c.observed)}}, 3);
    CHECK(applier.applied == (c.accepted ? 2 : 1));
    CHECK(transport.closed.empty() == c.accepted);
  }
}

// Simulator seed 5 --shards 3 (and 13, the class of seed 97), before the CheckOp fix on main:
// a replication snapshot, or a restart, puts the keyspace context into applied, and that context
// holds dots of another shard's replicas that slot imports brought (here 77 up to 3). Imports
// then bring more of 77's dots (6) into keys, without ops, so a peer's op that observes one
// names a dot beyond what its deps say of 77. 77 is outside the stream: not judged.
TEST_CASE("an op observing imported dots beyond its deps' entry for that replica is accepted",
          "[replicator]") {
  RecordingTransport transport;
  NullApplier applier;
  crdt::VersionVector applied;
  applied.Set(77, 3);
  Replicator rep(ConfigFor(11, {11, 22}), applied, transport, applier);
  rep.OnConnected(22, 0);
  rep.OnMessage(22, MakeHello("shard-1", 22), 1);
  OpRecord record;
  record.op.first_dot = crdt::Dot{22, 1};
  record.op.dot_count = 1;
  record.deps.Set(77, 3);
  record.op.context.Add(crdt::Dot{77, 6});
  rep.OnMessage(22, OpBatch{{record}}, 2);
  CHECK(applier.applied == 1);
  CHECK(transport.closed.empty());
}

}  // namespace
}  // namespace lattice::repl
