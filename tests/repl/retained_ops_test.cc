// The retained ops (lattice/repl/retained_ops.h) and the engine's byte bound: the ring keeps
// exact encodings and reuses its chunks, the engine streams those bytes unchanged, stays within
// max_retained_bytes and moves a peer that falls behind it to a snapshot; bytes per retained op
// are measured against the former representation (a deque of decoded OpRecords).
#include "lattice/repl/retained_ops.h"

#include <malloc.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "lattice/crdt/hlc.h"
#include "lattice/repl/codec.h"
#include "lattice/repl/frame.h"
#include "lattice/repl/replicator.h"
#include "repl/engine_test_util.h"

namespace lattice::repl {
namespace {

TEST_CASE("retained ops: the ring keeps each op's exact encoding and its index", "[repl][ring]") {
  RetainedOpRing ring(/*chunk_bytes=*/256);
  OpMaker maker;
  std::vector<OpRecord> records;
  uint64_t bytes = 0;
  for (int i = 0; i < 40; ++i) {
    records.push_back(
        Record(maker.Set(static_cast<size_t>(1 + (i * 37) % 120)), "key:" + std::to_string(i)));
    if (i % 2 == 0) {
      CacheWire(records.back());  // set or not: the same bytes are kept
    }
    ring.Append(records.back());
    bytes += EncodeOp(records.back()).size() + RetainedOpRing::kEntryBytes;
  }
  CHECK(ring.first() == 0);
  CHECK(ring.end() == 40);
  CHECK(ring.bytes() == bytes);
  for (int drop = 0; drop < 10; ++drop) {
    bytes -= EncodeOp(records[static_cast<size_t>(drop)]).size() + RetainedOpRing::kEntryBytes;
    ring.DropFront();
  }
  CHECK(ring.first() == 10);
  CHECK(ring.bytes() == bytes);
  for (uint64_t p = ring.first(); p < ring.end(); ++p) {
    const OpRecord& record = records[p];
    const RetainedOpView view = ring.At(p);
    CHECK(view.wire == EncodeOp(record));
    CHECK(view.origin == kSelf);
    CHECK(view.first_seq == record.op.first_dot.seq);
    CHECK(view.last_seq == record.op.first_dot.seq + record.op.dot_count - 1);
    CHECK(view.hlc == record.op.hlc);
    Result<OpRecord> decoded = DecodeOp(view.wire);
    REQUIRE(decoded.ok());
    CHECK(*decoded == record);
  }
  while (ring.size() > 0) {
    ring.DropFront();
  }
  CHECK(ring.bytes() == 0);
  CHECK(ring.chunks() == 0);
}

TEST_CASE("retained ops: a steady backlog cycles through the same chunks", "[repl][ring]") {
  constexpr size_t kChunk = 1024;
  RetainedOpRing ring(kChunk);
  OpMaker maker;
  uint64_t max_allocated = 0;
  uint64_t appended = 0;
  for (int i = 0; i < 5000; ++i) {
    ring.Append(Record(maker.Set(static_cast<size_t>(8 + i % 64))));
    ++appended;
    while (ring.bytes() > 3000) {
      ring.DropFront();
    }
    max_allocated = std::max(max_allocated, ring.allocated_bytes());
    REQUIRE(ring.end() == appended);
  }
  // About 3000 bytes held: at most 5 chunks in use (ops never straddle) plus the spare.
  CHECK(max_allocated <= 6 * kChunk);
}

TEST_CASE("retained ops: the index grows and shrinks across its blocks without losing an op",
          "[repl][ring]") {
  // 5,000 ops span five blocks of the index; drops and appends interleave across the block
  // boundaries, and every op read back is the one appended at its position.
  RetainedOpRing ring;
  OpMaker maker;
  std::map<uint64_t, uint64_t> seq_at;  // position -> first seq
  auto append = [&] {
    const OpRecord op = Record(maker.Set());
    seq_at[ring.end()] = op.op.first_dot.seq;
    ring.Append(op);
  };
  auto check_all = [&] {
    for (uint64_t position = ring.first(); position < ring.end(); ++position) {
      REQUIRE(ring.At(position).first_seq == seq_at.at(position));
    }
  };
  for (int i = 0; i < 5000; ++i) append();
  check_all();
  for (int i = 0; i < 3000; ++i) ring.DropFront();  // the first blocks empty
  CHECK(ring.first() == 3000);
  for (int i = 0; i < 2500; ++i) append();
  check_all();
  while (ring.end() - ring.first() > 0) ring.DropFront();  // empty: no block left in use
  CHECK(ring.bytes() == 0);
  for (int i = 0; i < 1100; ++i) append();  // and it starts over
  CHECK(ring.first() == 7500);
  CHECK(ring.end() == 8600);
  check_all();
}

TEST_CASE("retained ops: an op larger than a chunk gets its own, released once dropped",
          "[repl][ring]") {
  RetainedOpRing ring(/*chunk_bytes=*/512);
  OpMaker maker;
  const OpRecord small = Record(maker.Set(10));
  const OpRecord large = Record(maker.Set(5000));
  ring.Append(small);
  ring.Append(large);
  ring.Append(small);  // the index does not care that seqs repeat
  CHECK(ring.chunks() == 3);
  CHECK(ring.At(1).wire == EncodeOp(large));
  CHECK(ring.allocated_bytes() >= 512 + 5000);
  ring.DropFront();  // the first small chunk becomes the spare
  ring.DropFront();  // the large one is released
  CHECK(ring.allocated_bytes() == 2 * 512);
  CHECK(ring.At(2).wire == EncodeOp(small));
}

// --- the engine over the ring ----------------------------------------------------------------

TEST_CASE("retained ops: batches are the same bytes as batches of the full records",
          "[repl][ring]") {
  RecordingTransport transport;
  CountingApplier applier;
  Replicator engine(EngineConfig(uint64_t{1} << 30), {}, transport, applier);
  Connect(engine, kPeerA, 1);
  OpMaker maker;
  std::vector<OpRecord> made;
  crdt::VersionVector applied;
  for (int i = 0; i < 50; ++i) {
    const crdt::KeyOp op = i % 3 == 0 ? *maker.counter.IncrBy(1, maker.Writer(), maker.context)
                                      : maker.Set(static_cast<size_t>(1 + i));
    made.push_back(Record(op, "key:" + std::to_string(i % 7), applied));
    applied.Set(kSelf, op.first_dot.seq + op.dot_count - 1);
    engine.OnLocalOp(0, made.back().key, op);
  }
  engine.Flush();
  // Rebuild what the old engine sent, batch by batch, from full records.
  size_t next = 0;
  for (const std::string& bytes : transport.batches[kPeerA]) {
    Result<Message> decoded = Decode(bytes, kSelf);  // our own ops travel without an origin
    REQUIRE(decoded.ok());
    const OpBatch& batch = std::get<OpBatch>(*decoded);
    OpBatch full{.ops = {}, .sender = kSelf, .receiver_has = {}};
    for (size_t i = 0; i < batch.ops.size(); ++i) {
      REQUIRE(next < made.size());
      CHECK(batch.ops[i] == made[next]);
      full.ops.push_back(made[next++]);
    }
    CHECK(bytes == Encode(full));
  }
  CHECK(next == made.size());
}

TEST_CASE("retained ops: a lagging peer past the byte bound is moved to a snapshot",
          "[repl][ring]") {
  constexpr uint64_t kBound = 4096;
  RecordingTransport transport;
  CountingApplier applier;
  RecordingObserver observer;
  Replicator engine(EngineConfig(kBound), {}, transport, applier, &observer);
  Connect(engine, kPeerA, 1);  // connected but never acknowledges; kPeerB stays down
  OpMaker maker;
  uint64_t max_bytes = 0;
  for (int i = 0; i < 400; ++i) {
    engine.OnLocalOp(0, "key:" + std::to_string(i), maker.Set(32));
    max_bytes = std::max(max_bytes, engine.retained_bytes());
    REQUIRE(engine.retained_bytes() <= kBound);
  }
  CHECK(max_bytes > kBound - 200);  // it did fill up to the bound
  CHECK(engine.retained_ops() < 400);
  CHECK(engine.Status(2).backlog_bytes == engine.retained_bytes());
  CHECK(observer.Count(EventKind::kPeerStale, kPeerA) == 1);
  CHECK(observer.Count(EventKind::kPeerStale, kPeerB) == 1);
  // The connected stale peer gets a snapshot at the next tick; once it acknowledges everything,
  // it is no longer stale and the backlog empties (the down peer still holds nothing back: it
  // is stale, and will get a snapshot too when it returns).
  engine.Tick(10);
  CHECK(applier.snapshots == 1);
  CHECK(observer.Count(EventKind::kSnapshotSent, kPeerA) == 1);
  engine.OnMessage(kPeerA, Ack{engine.applied()}, 11);
  const ReplicatorStatus status = engine.Status(12);
  CHECK(status.peers[0].state == PeerState::kConnected);
  CHECK(status.peers[1].state == PeerState::kStale);
}

TEST_CASE("retained ops: one op larger than the bound is still kept and streamed", "[repl][ring]") {
  RecordingTransport transport;
  CountingApplier applier;
  Replicator engine(EngineConfig(/*max_bytes=*/256), {}, transport, applier);
  Connect(engine, kPeerA, 1);
  OpMaker maker;
  engine.OnLocalOp(0, "big", maker.Set(1000));
  engine.Flush();
  CHECK(engine.retained_ops() == 1);
  CHECK(transport.ops_sent[kPeerA] == 1);
}

// --- bytes per retained op --------------------------------------------------------------------

size_t HeapInUse() { return mallinfo2().uordblks; }

struct PerOp {
  double before = 0;
  double after = 0;
};

// Heap per op of kOps retained copies of `make`'s ops: as the former MemoryRetainedOps held them
// in the server (a deque of OpRecords, each with its cached encoding) and as the ring holds them.
PerOp Measure(const std::function<crdt::KeyOp(int)>& make) {
  constexpr int kOps = 20'000;
  crdt::VersionVector deps;  // three regions, deep into their sequences
  deps.Set(kSelf, 1'000'000);
  deps.Set(kPeerA, 2'000'000);
  deps.Set(kPeerB, 3'000'000);
  std::vector<crdt::KeyOp> ops;
  std::vector<std::string> keys;
  for (int i = 0; i < kOps; ++i) {
    ops.push_back(make(i));
    char key[16];
    std::snprintf(key, sizeof key, "key:%08d", i);  // 12 bytes
    keys.emplace_back(key);
  }
  PerOp result;
  {
    const size_t start = HeapInUse();
    std::deque<OpRecord> old;
    for (int i = 0; i < kOps; ++i) {
      OpRecord record = Record(ops[static_cast<size_t>(i)], keys[static_cast<size_t>(i)], deps);
      CacheWire(record);
      old.push_back(std::move(record));
    }
    result.before = static_cast<double>(HeapInUse() - start) / kOps;
  }
  {
    const size_t start = HeapInUse();
    RetainedOpRing ring;
    for (int i = 0; i < kOps; ++i) {
      OpRecord record = Record(ops[static_cast<size_t>(i)], keys[static_cast<size_t>(i)], deps);
      CacheWire(record);  // as the server's log does before the ring copies the bytes
      ring.Append(std::move(record));
    }
    result.after = static_cast<double>(HeapInUse() - start) / kOps;
  }
  return result;
}

TEST_CASE("retained ops: bytes per retained op, before and after", "[repl][ring]") {
  OpMaker set, hset, sadd, zadd;
  const std::string value(16, 'v');
  const PerOp set_bytes = Measure([&](int) { return set.Set(16); });
  const PerOp hset_bytes = Measure([&](int i) {
    return *hset.key.HSet("field-" + std::to_string(i), value, false, hset.Writer(), hset.context);
  });
  const PerOp sadd_bytes = Measure([&](int i) {
    return *sadd.key.SAdd({"member-" + std::to_string(i)}, sadd.Writer(), sadd.context);
  });
  const PerOp zadd_bytes = Measure([&](int i) {
    return *zadd.key.ZAdd("member-" + std::to_string(i), i * 0.5, zadd.Writer(), zadd.context);
  });
  std::printf(
      "heap bytes per retained op (12-byte key, 3-region deps), deque of OpRecords -> byte ring: "
      "SET 16-byte value %.0f -> %.0f, HSET %.0f -> %.0f, SADD %.0f -> %.0f, ZADD %.0f -> %.0f\n",
      set_bytes.before, set_bytes.after, hset_bytes.before, hset_bytes.after, sadd_bytes.before,
      sadd_bytes.after, zadd_bytes.before, zadd_bytes.after);
  for (const PerOp& m : {set_bytes, hset_bytes, sadd_bytes, zadd_bytes}) {
    CHECK(m.after * 2 < m.before);
    CHECK(m.after < 250);
  }
}

}  // namespace
}  // namespace lattice::repl
