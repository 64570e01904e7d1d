#pragma once
// Helpers of the engine tests (tests/repl): this replica's ops made with the real crdt
// mutators, a transport that records what the engine sends, an applier that counts, an observer
// that records events, and a configuration with two peers.

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "lattice/crdt/hlc.h"
#include "lattice/repl/codec.h"
#include "lattice/repl/frame.h"
#include "lattice/repl/replicator.h"

namespace lattice::repl {

constexpr ReplicaId kSelf = 0x9E3779B97F4A7C15ULL;
constexpr ReplicaId kPeerA = 22;
constexpr ReplicaId kPeerB = 33;

// Makes the ops of `replica` (this one by default) with the real crdt mutators, in sequence order.
struct OpMaker {
  explicit OpMaker(ReplicaId replica = kSelf) : dots(replica, 1) {}
  crdt::Key key;
  crdt::Key counter;  // INCRs go here: `key` holds strings
  crdt::DotContext context;
  crdt::DotSource dots;
  uint64_t hlc = crdt::MakeHlc(1'700'000'000'000ULL, 0);
  int n = 0;

  crdt::Writer Writer() { return crdt::Writer{&dots, hlc += 1 << 16, 0, {}}; }
  // A SET of a `size`-byte value (an overwrite after the first).
  crdt::KeyOp Set(size_t size = 16) {
    return *key.Set(std::string(size, static_cast<char>('a' + n++ % 26)), false, std::nullopt,
                    Writer(), context);
  }
};

inline OpRecord Record(const crdt::KeyOp& op, std::string key = "key:00000001",
                       crdt::VersionVector deps = {}) {
  return OpRecord{.db = 0, .key = std::move(key), .op = op, .deps = std::move(deps)};
}

class RecordingTransport final : public Transport {
 public:
  void Send(ReplicaId to, const Message& message) override { sent.emplace_back(to, message); }
  // The bytes a link carries; then the default (decoded, to Send) for `sent`.
  void SendOps(ReplicaId to, const EncodedOpBatch& batch) override {
    const std::string bytes = EncodeOpBatch(batch);
    batches[to].push_back(bytes);
    ops_sent[to] += batch.count;
    std::string frame;
    AppendOpBatchFrame(batch, frame);
    CHECK(frame == EncodeFrame(bytes));  // framed without joining the parts first
    Transport::SendOps(to, batch);
    CHECK(Encode(sent.back().second) == bytes);  // the decoded batch encodes to the same bytes
  }
  void Close(ReplicaId) override {}
  uint64_t QueuedBytes(ReplicaId) const override { return queued; }
  uint64_t queued = 0;  // what QueuedBytes reports for every peer
  // The messages of type T sent to `to`, in order.
  template <typename T>
  std::vector<T> SentTo(ReplicaId to) const {
    std::vector<T> out;
    for (const auto& [peer, message] : sent) {
      if (peer == to && std::holds_alternative<T>(message)) out.push_back(std::get<T>(message));
    }
    return out;
  }
  std::map<ReplicaId, std::vector<std::string>> batches;  // encoded, as a link carries them
  std::map<ReplicaId, size_t> ops_sent;
  std::vector<std::pair<ReplicaId, Message>> sent;
};

class CountingApplier final : public Applier {
 public:
  void Apply(const OpRecord&) override { ++applied; }
  std::vector<SnapshotChunk> TakeSnapshot(size_t) override {
    ++snapshots;
    SnapshotChunk chunk;
    chunk.last = true;
    return {chunk};
  }
  void InstallSnapshot(const std::vector<SnapshotChunk>&) override {}
  int snapshots = 0;
  int applied = 0;
};

class RecordingObserver final : public Observer {
 public:
  void OnEvent(const Event& event) override { events.push_back(event); }
  size_t Count(EventKind kind, ReplicaId peer) const {
    return static_cast<size_t>(std::count_if(events.begin(), events.end(), [&](const Event& e) {
      return e.kind == kind && e.peer == peer;
    }));
  }
  std::vector<Event> events;
};

inline ReplicatorConfig EngineConfig(uint64_t max_bytes) {
  ReplicatorConfig config;
  config.shard_id = "shard-1";
  config.replica = kSelf;
  config.region = "here";
  config.peers = {kPeerA, kPeerB};
  config.max_retained_ops = 1'000'000;
  config.max_retained_bytes = max_bytes;
  config.max_batch_ops = 8;
  config.max_inflight_ops = 1'000'000;
  return config;
}

// Connects `peer`, which says in its Hello that it applied `applied`.
inline void Connect(Replicator& engine, ReplicaId peer, int64_t now_ms,
                    crdt::VersionVector applied = {}) {
  engine.OnConnected(peer, now_ms);
  Hello hello;
  hello.shard_id = "shard-1";
  hello.replica = peer;
  hello.applied = std::move(applied);
  engine.OnMessage(peer, hello, now_ms);
}

// The seqs first..last, to compare with the seqs an engine applied or sent.
inline std::vector<uint64_t> SeqRange(uint64_t first, uint64_t last) {
  std::vector<uint64_t> seqs;
  for (uint64_t seq = first; seq <= last; ++seq) seqs.push_back(seq);
  return seqs;
}

}  // namespace lattice::repl
