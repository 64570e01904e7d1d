// Fuzz target: what a peer region sends over a replication link, from the bytes to the state.
// The harness plays the part of src/net/peer_links.cc (which it cannot link: Asio): bytes go
// through a FrameReader, each payload through repl::Decode, each message into the node's
// Replication (engine, causal delivery, Keyspace::ApplyRemote, snapshots, op log), exactly as
// RunLink does; a bad frame or message closes the link, and the peer reconnects with a fresh
// reader and a Hello.
//
// Input: a sequence of steps, each led by a tag byte:
//   frame:    a 16-bit-sized payload, framed with a correct CRC (so the fuzzer reaches Decode)
//   raw:      16-bit-sized bytes appended to the stream as they are (torn or corrupt frames)
//   deliver:  the pending stream is fed to the link in fragments of a chosen size
//   command:  a local write (SET, INCR, SADD, HSET, ZADD, DEL, EXPIRE on one of four keys),
//             so acks, resends and snapshots have own ops to work on
//   tick:     the clock moves on by a chosen number of ms; timers run
//   relink:   the link drops and the peer reconnects
// Checked, besides "never crashes, never asserts, never leaks":
// - every message Decode accepts re-encodes to bytes that decode to the same message;
// - after every step, the engine's applied vector is the keyspace's;
// - the state is consistent with what was made durable: a second node recovered from the same
//   storage (op log replay), and a third one recovered after a checkpoint (snapshot), show the
//   same dataset (DEBUG DIGEST) and the same applied vector as the live node;
// - the acknowledgement rules (docs/replication.md, "What a peer may acknowledge"): whatever
//   the peer sends (Hello, Ack, Heartbeat, snapshot), no peer counts as holding an op of this
//   replica beyond the last one it issued, and CRDT.WAIT (RegionsHaving) never counts a region
//   for an op not issued yet.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fuzz_input.h"
#include "fuzz_node.h"
#include "fuzz_tags.h"
#include "lattice/repl/codec.h"
#include "lattice/repl/frame.h"
#include "lattice/repl/memory_storage.h"

namespace lattice::fuzz {
namespace {

// Small enough that a short input reaches "frame too large".
constexpr uint32_t kMaxFrameBytes = 1u << 16;

using namespace repl_messages;  // the step tags (fuzz_tags.h)

repl::Hello PeerHello() {
  repl::Hello hello;
  hello.shard_id = kShard;
  hello.replica = kPeer;
  hello.region = "peer";
  return hello;
}

void CheckRoundTrip(const repl::Message& message) {
  const std::string bytes = repl::Encode(message);
  Result<repl::Message> again = repl::Decode(bytes);
  LATTICE_ASSERT_MSG(again.ok(), "an accepted message re-encodes to bytes Decode refuses");
  LATTICE_ASSERT_MSG(*again == message, "an accepted message does not round-trip");
}

// One link from the peer, as PeerLinks::RunLink handles it.
class Link {
 public:
  explicit Link(FuzzNode& node, FuzzClock& clock) : node_(node), clock_(clock) { Connect(); }

  void Connect() {
    reader_ = repl::FrameReader(kMaxFrameBytes);
    const repl::Hello hello = PeerHello();
    LATTICE_ASSERT_MSG(node_.replication().replicator().RefusalOf(hello).empty(),
                       "the peer's Hello is fine");
    node_.replication().OnConnected(kPeer, clock_.NowMs());
    node_.replication().OnMessage(kPeer, hello, clock_.NowMs());
    up_ = true;
  }

  void Drop() {
    if (up_) {
      node_.replication().OnDisconnected(kPeer, clock_.NowMs());
      up_ = false;
    }
  }

  void Deliver(std::string_view stream, size_t fragment) {
    while (!stream.empty()) {
      if (!up_) {
        Connect();
      }
      const std::string_view piece = stream.substr(0, fragment);
      stream.remove_prefix(piece.size());
      reader_.Feed(piece);
      ReadFrames();
      node_.EndOfBatch();
    }
  }

 private:
  void ReadFrames() {
    while (up_) {
      const repl::FrameReader::Status status = reader_.Next();
      if (status == repl::FrameReader::Status::kNeedMore) {
        return;
      }
      if (status == repl::FrameReader::Status::kError) {
        Drop();
        return;
      }
      // The link's peer is the origin of the ops that travel without one (as LinkHandshake).
      Result<repl::Message> message = repl::Decode(reader_.payload(), kPeer);
      if (!message.ok()) {
        Drop();
        return;
      }
      CheckRoundTrip(*message);
      node_.replication().OnMessage(kPeer, *message, clock_.NowMs());
    }
  }

  FuzzNode& node_;
  FuzzClock& clock_;
  repl::FrameReader reader_;
  bool up_ = false;
};

void RunCommand(FuzzNode& node, FuzzInput& in) {
  static const char* const kKeys[] = {"k", "counter", "{k}set", "h"};
  const std::string key = kKeys[in.Byte() % 4];
  const std::string value = std::to_string(in.Byte());
  switch (in.Byte() % 7) {
    case 0:
      node.Run({"SET", key, value});
      break;
    case 1:
      node.Run({"INCRBY", key, value});
      break;
    case 2:
      node.Run({"SADD", key, value});
      break;
    case 3:
      node.Run({"HSET", key, value, value});
      break;
    case 4:
      node.Run({"ZADD", key, value, value});
      break;
    case 5:
      node.Run({"DEL", key});
      break;
    default:
      node.Run({"PEXPIRE", key, value});
      break;
  }
  node.EndOfBatch();
}

void CheckAcknowledgements(FuzzNode& node) {
  const repl::ReplicatorStatus status = node.replication().Status(0);
  const uint64_t issued = status.applied.Get(kSelf);
  for (const repl::PeerStatus& peer : status.peers) {
    LATTICE_ASSERT_MSG(peer.acked.Get(kSelf) <= issued,
                       "a peer counts as holding an op of ours that was never issued");
  }
  LATTICE_ASSERT_MSG(node.replication().RegionsHaving(issued + 1) == 0,
                     "CRDT.WAIT counts a region for an op not issued yet");
}

// A node recovered from `storage` must hold what `live` holds.
void CheckRecovers(repl::Storage& storage, FuzzClock& clock, FuzzNode& live, const char* how) {
  FuzzNode recovered(storage, clock);
  CheckSameState(recovered, live, how);
}

void Run(FuzzInput& in) {
  repl::MemoryStorage storage;
  FuzzClock clock;
  FuzzNode node(storage, clock);
  LATTICE_ASSERT_MSG(node.ok(), "an empty data dir opens");
  Link link(node, clock);
  std::string stream;
  while (!in.empty()) {
    switch (in.Byte() % kTagCount) {
      case kFrame:
        repl::AppendFrame(in.Sized(), stream);
        break;
      case kRaw:
        stream += in.Sized();
        break;
      case kDeliver:
        link.Deliver(stream, in.U16() % 512 + 1);
        stream.clear();
        break;
      case kCommand:
        RunCommand(node, in);
        break;
      case kTick:
        clock.now_us += static_cast<int64_t>(in.U16()) * 1000;
        node.replication().Tick(clock.NowMs());
        node.EndOfBatch();
        break;
      case kRelink:
        link.Drop();
        link.Connect();
        break;
    }
    CheckEngineMatchesKeyspace(node);
    CheckAcknowledgements(node);
  }
  link.Deliver(stream, stream.size() + 1);
  CheckEngineMatchesKeyspace(node);
  CheckAcknowledgements(node);
  CheckRecovers(storage, clock, node, "replaying the op log must rebuild the live state");
  const Result<void> checkpoint = node.replication().Checkpoint(clock.NowMs());
  LATTICE_ASSERT_MSG(checkpoint.ok(), "a checkpoint to memory cannot fail");
  CheckRecovers(storage, clock, node, "loading the checkpoint must rebuild the live state");
}

}  // namespace
}  // namespace lattice::fuzz

LATTICE_FUZZ_TARGET(lattice::fuzz::Run)
