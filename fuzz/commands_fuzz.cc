// Fuzz target: whatever an authenticated client can make the server do. The bytes go through
// the RESP request parser, with the limits the server sets for the client (CONFIG SET can change
// them), and every command runs through Server::Execute on a node with replication and an op log
// over a MemoryStorage, as src/net/client_listener.cc runs them: then the batch ends (log write,
// engine flush) and the server's cron runs. The clock moves on by a step the first byte chose
// after each command, so keys and hash fields expire along the way. proto-max-bulk-len is 1mb
// (the minimum), and a few commands are skipped (see Skipped).
//
// Checked, besides "never crashes, never asserts, never leaks, never hangs":
// - every command gets a well-formed reply (one or more whole RESP values, nothing left over),
//   unless it blocked (CRDT.WAIT), which ends the run as it holds the connection;
// - after every command, the replication engine's applied vector is the keyspace's;
// - at the end, a node recovered from the op log holds the same dataset and applied vector:
//   every write a command made was logged, and replaying it rebuilds the same state.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input.h"
#include "fuzz_node.h"
#include "lattice/common/numbers.h"
#include "lattice/repl/memory_storage.h"
#include "resp/reply_decoder.h"
#include "resp/request_parser.h"

namespace lattice::fuzz {
namespace {

// Commands the harness skips: work a client may legitimately ask for, as from Valkey, but that
// would only show up here as a timeout or an out-of-memory report: SRANDMEMBER s -1000000000
// replies with a billion members, and raising proto-max-bulk-len lets SETRANGE make a 512 MB
// string.
constexpr int64_t kCountMax = 10'000;

bool Skipped(std::span<const std::string_view> args) {
  using server::EqualsIgnoreCase;
  const std::string_view name = args[0];
  if (EqualsIgnoreCase(name, "CONFIG") && args.size() > 2 && EqualsIgnoreCase(args[1], "SET")) {
    for (size_t i = 2; i < args.size(); ++i) {
      if (EqualsIgnoreCase(args[i], "proto-max-bulk-len")) {
        return true;
      }
    }
  }
  const bool random_count = EqualsIgnoreCase(name, "SRANDMEMBER") ||
                            EqualsIgnoreCase(name, "HRANDFIELD") ||
                            EqualsIgnoreCase(name, "ZRANDMEMBER");
  if (random_count && args.size() > 2) {
    const std::optional<int64_t> count = ParseInt64Strict(args[2]);
    return count.has_value() && (*count <= -kCountMax || *count >= kCountMax);
  }
  return false;
}

// Runs one parsed command as the connection does; false when the connection would end here.
bool RunOne(FuzzNode& node, server::RequestParser& parser) {
  if (Skipped(parser.args())) {
    return true;
  }
  server::ClientState& client = node.client();
  std::string out;
  server::ReplyBuilder reply(&out);
  reply.set_protocol(client.protocol);
  node.server().Execute(client, parser.args(), reply);
  parser.set_limits(node.server().LimitsFor(client));
  if (node.server().blocking().IsBlocked(&client) || client.killed) {
    node.server().blocking().Remove(&client);  // the connection ends: its reply builder goes
    return false;
  }
  Result<std::vector<server::RespValue>> replies = server::DecodeReplies(out);
  LATTICE_ASSERT_MSG(replies.ok() && !replies->empty(), "a command's reply is malformed");
  return !client.close_after_reply;
}

void Run(FuzzInput& in) {
  const int64_t step_us = int64_t{1000} << (in.Byte() % 16);  // 1 ms .. 33 s per command
  std::string_view stream = in.Rest();
  repl::MemoryStorage storage;
  FuzzClock clock;
  FuzzNode node(storage, clock);
  LATTICE_ASSERT_MSG(node.ok(), "an empty data dir opens");
  node.Run({"CONFIG", "SET", "proto-max-bulk-len", "1mb"});
  server::RequestParser parser;
  parser.set_limits(node.server().LimitsFor(node.client()));
  bool open = true;
  while (open) {
    size_t consumed = 0;
    const server::RequestParser::Status status = parser.Parse(stream, &consumed);
    stream.remove_prefix(consumed);
    if (status != server::RequestParser::Status::kCommand) {
      break;  // the rest is a partial command or a protocol error: the connection waits or ends
    }
    open = RunOne(node, parser);
    node.EndOfBatch();
    clock.now_us += step_us;
    node.server().Cron();
    node.EndOfBatch();
    CheckEngineMatchesKeyspace(node);
  }
  FuzzNode recovered(storage, clock);
  CheckSameState(recovered, node, "replaying the op log must rebuild what the commands did");
}

}  // namespace
}  // namespace lattice::fuzz

LATTICE_FUZZ_TARGET(lattice::fuzz::Run)
