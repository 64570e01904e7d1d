#pragma once
// The step tags of the replication fuzz targets' inputs (each target's header comment says what
// a step does), shared with make_seeds.cc, which writes their seed corpora. A tag is the step's
// byte modulo kTagCount: renumbering one changes what every stored input means.

#include <cstdint>

namespace lattice::fuzz {

namespace repl_messages {
enum Tag : uint8_t { kFrame, kRaw, kDeliver, kCommand, kTick, kRelink, kTagCount };
}  // namespace repl_messages

namespace recovery {
enum Tag : uint8_t {
  kRecord,
  kChunk,
  kSnapshot,
  kCrash,
  kAppend,
  kTruncate,
  kRemove,
  kWrite,
  kTagCount
};
}  // namespace recovery

}  // namespace lattice::fuzz
