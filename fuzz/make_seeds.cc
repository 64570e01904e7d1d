// Writes the seed corpora of the replication fuzz targets (fuzz/corpus/repl_messages/ and
// fuzz/corpus/recovery/) from real traffic: a peer node (replica kPeer) runs writes of every
// type, and what its engine sends to kSelf (Hello, OpBatches, Heartbeats, Acks), its snapshot
// chunks and its encoded ops are laid out in each target's input format. Run by hand after a
// wire or log format change: build/bin/fuzz_make_seeds fuzz/corpus. Deterministic (fake clock,
// fixed seed), so rerunning it rewrites the same files.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz_node.h"
#include "fuzz_tags.h"
#include "lattice/repl/codec.h"
#include "lattice/repl/memory_storage.h"
#include "lattice/repl/replicator.h"

namespace lattice::fuzz {
namespace {

// The step tags of repl_messages_fuzz.cc and recovery_fuzz.cc, as input bytes.
constexpr char kMessagesFrame = repl_messages::kFrame;
constexpr char kMessagesDeliver = repl_messages::kDeliver;
constexpr char kMessagesTick = repl_messages::kTick;
constexpr char kRecoveryRecord = recovery::kRecord;
constexpr char kRecoveryChunk = recovery::kChunk;
constexpr char kRecoverySnapshot = recovery::kSnapshot;

class RecordingTransport final : public repl::Transport {
 public:
  void Send(ReplicaId, const repl::Message& message) override { sent.push_back(message); }
  void Close(ReplicaId) override {}
  std::vector<repl::Message> sent;
};

void PutSized(std::string& out, std::string_view payload) {
  out.push_back(static_cast<char>(payload.size() & 0xff));
  out.push_back(static_cast<char>(payload.size() >> 8));
  out.append(payload);
}

void WriteFile(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
  std::printf("%s: %zu bytes\n", path.c_str(), bytes.size());
}

const std::vector<std::vector<std::string>>& Writes() {
  static const std::vector<std::vector<std::string>> writes = {
      {"SET", "s", "hello"},
      {"APPEND", "s", "!"},
      {"INCR", "c"},
      {"INCRBYFLOAT", "f", "1.5"},
      {"SADD", "set", "a", "b"},
      {"SREM", "set", "a"},
      {"HSET", "h", "f1", "v", "f2", "w"},
      {"HINCRBY", "h", "n", "3"},
      {"HDEL", "h", "f2"},
      {"HEXPIRE", "h", "100", "FIELDS", "1", "f1"},
      {"ZADD", "z", "1", "m", "2", "n"},
      {"ZINCRBY", "z", "5", "m"},
      {"ZREM", "z", "n"},
      {"RPUSH", "l", "a", "b", "c"},
      {"LPUSH", "l", "z"},
      {"LINSERT", "l", "BEFORE", "b", "ab"},
      {"LSET", "l", "0", "zz"},
      {"LPOP", "l"},
      {"RPUSH", "l", "d", "e"},
      {"RPOP", "l"},
      {"LREM", "l", "1", "c"},
      {"PEXPIRE", "s", "50000"},
      {"PERSIST", "s"},
      {"XADD", "x", "1-1", "f", "v"},
      {"XADD", "x", "2-1", "f", "w"},
      {"XGROUP", "CREATE", "x", "g", "0"},
      {"XREADGROUP", "GROUP", "g", "c", "STREAMS", "x", ">"},
      {"XACK", "x", "g", "1-1"},
      {"XCLAIM", "x", "g", "d", "0", "2-1"},
      {"XGROUP", "CREATE", "x", "h", "$"},
      {"XGROUP", "DESTROY", "x", "h"},
      {"SETBIT", "bm", "2100", "1"},  // a bitmap chunk (wire Key field 17)
      {"BITFIELD", "bm", "OVERFLOW", "WRAP", "INCRBY", "u8", "0", "200", "INCRBY", "i16", "#3",
       "-7"},  // field counters (field 18)
      {"BITFIELD", "bm", "INCRBY", "u8", "0", "100"},
      {"SETBIT", "bm", "5", "1"},                    // resets chunk 0's counters: tombstones
      {"BITFIELD", "bm", "INCRBY", "u8", "0", "1"},  // a chain on the tombstone
      {"SELECT", "1"},
      {"SET", "db1", "x"},
      {"DEL", "db1"},
  };
  return writes;
}

}  // namespace
}  // namespace lattice::fuzz

int main(int argc, char** argv) {
  using namespace lattice;
  using namespace lattice::fuzz;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  spdlog::set_level(spdlog::level::off);
  FuzzClock clock;
  repl::MemoryStorage storage;
  RecordingTransport transport;
  FuzzNode peer(storage, clock, {.replica = kPeer, .region = "peer", .rng_seed = 2}, &transport);
  LATTICE_ASSERT(peer.ok());
  server::Replication& replication = peer.replication();
  repl::Hello hello;
  hello.shard_id = kShard;
  hello.replica = kSelf;
  hello.region = "self";
  replication.OnConnected(kSelf, clock.NowMs());
  replication.OnMessage(kSelf, hello, clock.NowMs());

  std::string messages;           // repl_messages input: every sent message, framed, then delivered
  std::string recovery(1, '\0');  // recovery input: default segment size, then the steps
  for (const std::vector<std::string>& write : Writes()) {
    const std::string out = peer.Run(write);
    LATTICE_ASSERT_MSG(out[0] != '-', out.c_str());
    peer.EndOfBatch();
  }
  clock.now_us += 2'000'000;
  replication.Tick(clock.NowMs());
  peer.EndOfBatch();
  std::string group;  // the ops of the first batch again, as one group record (OpsOfLogRecord)
  for (const repl::Message& message : transport.sent) {
    messages.push_back(kMessagesFrame);
    PutSized(messages, repl::Encode(message));
    if (const auto* batch = std::get_if<repl::OpBatch>(&message)) {
      for (const repl::OpRecord& op : batch->ops) {
        recovery.push_back(kRecoveryRecord);
        PutSized(recovery, repl::EncodeOp(op));
        if (group.size() < 30'000) repl::AppendToGroupLogRecord(repl::EncodeOp(op), group);
      }
    }
  }
  if (!group.empty()) {
    recovery.push_back(kRecoveryRecord);
    PutSized(recovery, group);
  }
  messages += std::string{kMessagesDeliver, '\x00', '\x00'};  // in fragments of 1 byte
  messages += std::string{kMessagesTick, '\xe8', '\x03'};
  WriteFile(dir / "repl_messages" / "peer-traffic", messages);

  std::string snapshot_messages;
  std::string snapshot_recovery(1, '\x02');  // small segments
  uint64_t index = 0;
  // The same snapshot as a sliced install logs it (Replication::LogInstall): its keys (first 1,
  // then 2), the last record beginning the install with the cut.
  std::string install_recovery(1, '\0');
  for (repl::SnapshotChunk chunk : replication.TakeSnapshot(/*keys_per_chunk=*/3)) {
    chunk.snapshot_id = install_recovery.size() == 1 ? 1 : 2;
    install_recovery.push_back(kRecoveryRecord);
    PutSized(install_recovery, "\x5B" + repl::Encode(repl::Message(chunk)));
  }
  install_recovery += recovery.substr(1);
  WriteFile(dir / "recovery" / "install-and-log", install_recovery);
  for (repl::SnapshotChunk& chunk : replication.TakeSnapshot(/*keys_per_chunk=*/3)) {
    chunk.snapshot_id = (uint64_t{1} << repl::kSnapshotChunkBits) | index++;  // as the engine
    const std::string bytes = repl::Encode(repl::Message(chunk));
    snapshot_messages.push_back(kMessagesFrame);
    PutSized(snapshot_messages, bytes);
    snapshot_recovery.push_back(kRecoveryChunk);
    PutSized(snapshot_recovery, bytes);
  }
  snapshot_messages += std::string{kMessagesDeliver, '\x40', '\x00'};  // of 65 bytes
  WriteFile(dir / "repl_messages" / "peer-snapshot", snapshot_messages);
  snapshot_recovery += std::string{kRecoverySnapshot, '\x00'};
  snapshot_recovery += recovery.substr(1);
  WriteFile(dir / "recovery" / "snapshot-and-log", snapshot_recovery);
  WriteFile(dir / "recovery" / "log-only", recovery);
  return 0;
}
