// Fuzz target: what a primary sends to a region that follows it (REPLICAOF, server/replica_of.h):
// the handshake replies, the RDB transfer header and body, the command stream. The input is cut
// into chunks (a length byte, then that many bytes), each handed to ReplicaOf::OnBytes as one
// read; a chunk of length 0 drops the link and redials (the next chunks start a new handshake).
// Checked: never crashes, never reads past its input, never allocates without bound; after the
// input, the node's engine and keyspace agree (what the stream wrote is ordinary local writes),
// and REPLICAOF NO ONE leaves a region that takes writes.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fuzz_node.h"
#include "lattice/repl/memory_storage.h"
#include "server/replica_of.h"

namespace {

class NullLink final : public lattice::server::PrimaryLink {
 public:
  void Connect(const std::string&, int) override {}
  void Send(std::string_view) override {}
  void Close() override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lattice;
  repl::MemoryStorage storage;
  fuzz::FuzzClock clock;
  fuzz::FuzzNode node(storage, clock);
  if (!node.ok()) std::abort();
  NullLink link;
  server::ReplicaOf& replica = node.server().replica_of();
  replica.set_link(&link);
  if (node.Run({"REPLICAOF", "127.0.0.1", "6400"}) != "+OK\r\n") std::abort();
  replica.OnConnected(clock.NowMs());
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for (size_t pos = 0; pos < input.size();) {
    const size_t chunk = static_cast<uint8_t>(input[pos++]);
    if (chunk == 0) {
      replica.OnClosed("fuzz drop", clock.NowMs());
      clock.now_us += 1'000'000;
      replica.Tick(clock.NowMs());
      replica.OnConnected(clock.NowMs());
      continue;
    }
    replica.OnBytes(input.substr(pos, chunk), clock.NowMs());
    pos += std::min(chunk, input.size() - pos);
    node.EndOfBatch();
  }
  fuzz::CheckEngineMatchesKeyspace(node);
  if (node.Run({"REPLICAOF", "NO", "ONE"}) != "+OK\r\n") std::abort();
  if (node.Run({"SET", "after-cut-over", "x"}) != "+OK\r\n") std::abort();
  return 0;
}
