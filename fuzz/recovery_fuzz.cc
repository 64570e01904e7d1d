// Fuzz target: restarting on a data dir that a crash, a bad disk or a hostile hand left behind.
// The bytes build a MemoryStorage; then a node recovers from it (Replication::Open: snapshot,
// op log segments, torn tails, the peers file) and ReplicaIdentity::Load reads the replica-id
// file. Recovery must either fail with an error or succeed, never crash.
//
// Input: a sequence of steps, each led by a tag byte. Most build the dir with the real writers,
// so checksums are right and the fuzzer reaches the decoders:
//   record:    a 16-bit-sized payload appended to the op log (OpLog::Append, then Flush), in
//              segments of a size the first byte chose
//   chunk:     a 16-bit-sized payload framed into the snapshot being built
//   snapshot:  the snapshot built so far is written (OpLog::WriteSnapshot) as covering the
//              records up to a chosen index
//   crash:     a power cut (MemoryStorage::Crash or CrashTorn: unsynced bytes lost or torn)
// and some damage it the way a disk or an operator could:
//   append:    raw bytes appended to one of the files
//   truncate:  one file cut to a chosen length
//   remove:    one file removed
//   write:     a file (snapshot, replica-id, peers, or a segment name) replaced by raw bytes
// Checked when recovery succeeds: the engine starts from what the keyspace holds, the node serves
// commands, and after a write and a checkpoint a second recovery of the same storage shows the
// same dataset and applied vector.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input.h"
#include "fuzz_node.h"
#include "fuzz_tags.h"
#include "lattice/common/rng.h"
#include "lattice/repl/frame.h"
#include "lattice/repl/memory_storage.h"
#include "lattice/repl/op_log.h"

namespace lattice::fuzz {
namespace {

using namespace recovery;  // the step tags (fuzz_tags.h)

constexpr uint64_t kSegmentChoices[] = {64ull << 20, 64, 200, 1};

std::string ChooseFile(repl::Storage& storage, FuzzInput& in) {
  Result<std::vector<std::string>> names = storage.List();
  LATTICE_ASSERT(names.ok());
  const uint8_t choice = in.Byte();
  if (names->empty()) {
    return "snapshot";
  }
  return (*names)[choice % names->size()];
}

std::string ChooseName(FuzzInput& in) {
  switch (in.Byte() % 5) {
    case 0:
      return "snapshot";
    case 1:
      return "replica-id";
    case 2:
      return "peers";
    case 3:
      return "oplog-00000000000000000001.seg";
    default: {
      const std::string index = std::to_string(in.Byte());
      return "oplog-" + std::string(20 - index.size(), '0') + index + ".seg";
    }
  }
}

// Builds the data dir. The writer's own log handle lives only while building, as the process
// that wrote the dir is gone when it restarts.
void BuildDir(repl::MemoryStorage& storage, FuzzInput& in) {
  repl::OpLogOptions options;
  options.segment_bytes_max = kSegmentChoices[in.Byte() % 4];
  auto writer = std::make_unique<repl::OpLog>(storage, options);
  bool writable = writer->Recover().ok();
  std::string snapshot;
  while (!in.empty()) {
    switch (in.Byte() % kTagCount) {
      case kRecord: {
        const std::string_view payload = in.Sized();
        writable = writable && writer->Append(payload).ok() &&
                   writer->Flush(repl::FsyncPolicy::kEverySec).ok();
        break;
      }
      case kChunk:
        repl::AppendFrame(in.Sized(), snapshot);
        break;
      case kSnapshot:
        (void)writer->WriteSnapshot(snapshot, in.Byte());
        snapshot.clear();
        break;
      case kCrash:
        if (in.Byte() % 2 == 0) {
          storage.Crash();
        } else {
          Rng rng(in.Byte());
          storage.CrashTorn(rng);
        }
        writable = false;  // the writer's files died with it
        break;
      case kAppend: {
        const std::string name = ChooseFile(storage, in);
        Result<std::unique_ptr<repl::AppendFile>> file = storage.OpenAppend(name);
        if (file.ok()) {
          (void)(*file)->Append(in.Sized());
          (void)(*file)->Sync();
        }
        break;
      }
      case kTruncate: {
        const std::string name = ChooseFile(storage, in);
        Result<std::string> bytes = storage.ReadAll(name);
        const uint16_t size = in.U16();
        if (bytes.ok() && size <= bytes->size()) {
          (void)storage.Truncate(name, size);
        }
        break;
      }
      case kRemove:
        (void)storage.Remove(ChooseFile(storage, in));
        break;
      case kWrite: {
        const std::string name = ChooseName(in);
        (void)storage.WriteAtomically(name, in.Sized());
        break;
      }
    }
  }
  if (writable) {
    (void)writer->Sync();
  }
}

void Run(FuzzInput& in) {
  repl::MemoryStorage storage;
  BuildDir(storage, in);
  (void)repl::ReplicaIdentity::Load(storage);
  FuzzClock clock;
  FuzzNode node(storage, clock);
  if (!node.ok()) {
    return;  // refused with an error: fine
  }
  CheckEngineMatchesKeyspace(node);
  node.Run({"SET", "after-restart", "1"});
  node.Run({"INCR", "counter-after-restart"});
  node.EndOfBatch();
  const Result<void> checkpoint = node.replication().Checkpoint(clock.NowMs());
  LATTICE_ASSERT_MSG(checkpoint.ok(), "a checkpoint to memory cannot fail");
  FuzzNode again(storage, clock);
  CheckSameState(again, node, "a recovered node's own checkpoint must load the same state");
}

}  // namespace
}  // namespace lattice::fuzz

LATTICE_FUZZ_TARGET(lattice::fuzz::Run)
